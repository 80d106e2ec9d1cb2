package sandbox

import (
	"encoding/json"
	"slices"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// The origin's last upload object travels with the session through a
// shared store, so that every proxy overlays the same.
func init() {
	progress.RegisterDetailCodec(detailCodec)
}

var detailCodec = progress.DetailCodec{
	Name: "sandbox",
	Encode: func(v any) (json.RawMessage, bool) {
		o, ok := v.(originObject)
		return json.RawMessage(o), ok && json.Valid(o)
	},
	Decode: func(b json.RawMessage) (any, error) { return originObject(slices.Clone(b)), nil },
}
