package protocol

import (
	"encoding/json"
	"slices"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// RawJSONDetail is the codec of a protocol whose record detail is the
// origin's own JSON, kept as bytes of type T: it travels through a shared
// store as it is, and is taken only when it is valid JSON of type T.
func RawJSONDetail[T ~[]byte](name string) progress.DetailCodec {
	return progress.DetailCodec{
		Name: name,
		Encode: func(v any) (json.RawMessage, bool) {
			d, ok := v.(T)
			return json.RawMessage(d), ok && json.Valid(d)
		},
		Decode: func(b json.RawMessage) (any, error) { return T(slices.Clone(b)), nil },
	}
}
