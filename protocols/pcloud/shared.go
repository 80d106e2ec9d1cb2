package pcloud

import (
	"encoding/json"
	"slices"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// The origin's description of the stored files travels with the record
// through a shared store, so that every proxy shows it.
func init() {
	progress.RegisterDetailCodec(detailCodec)
}

var detailCodec = progress.DetailCodec{
	Name: "pcloud",
	Encode: func(v any) (json.RawMessage, bool) {
		f, ok := v.(originFiles)
		return json.RawMessage(f), ok && json.Valid(f)
	},
	Decode: func(b json.RawMessage) (any, error) { return originFiles(slices.Clone(b)), nil },
}
