package tus

import (
	"encoding/json"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// The upload's metadata travels with its record through a shared store,
// so that every proxy shows it.
func init() {
	progress.RegisterDetailCodec(detailCodec)
}

var detailCodec = progress.DetailCodec{
	Name: "tus",
	Encode: func(v any) (json.RawMessage, bool) {
		md, ok := v.(Metadata)
		if !ok {
			return nil, false
		}
		b, err := json.Marshal(map[string]string(md))
		return b, err == nil
	},
	Decode: func(b json.RawMessage) (any, error) {
		var md map[string]string
		err := json.Unmarshal(b, &md)
		return Metadata(md), err
	},
}
