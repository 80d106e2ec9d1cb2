package dstor

import (
	"encoding/json"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// sharedUpload is an upload's detail as it travels through a shared store.
type sharedUpload struct {
	Chunks int    `json:"chunks"`
	Folder string `json:"folder"`
	Origin []byte `json:"origin,omitempty"`
}

// The folder upload's detail travels with the session through a shared
// store, so that every proxy answers get-status alike.
func init() {
	progress.RegisterDetailCodec(detailCodec)
}

var detailCodec = progress.DetailCodec{
	Name: "dstor",
	Encode: func(v any) (json.RawMessage, bool) {
		u, ok := v.(*upload)
		if !ok || u == nil {
			return nil, false
		}
		b, err := json.Marshal(sharedUpload{Chunks: u.chunks, Folder: u.folder, Origin: u.origin})
		return b, err == nil
	},
	Decode: func(b json.RawMessage) (any, error) {
		var s sharedUpload
		err := json.Unmarshal(b, &s)
		return &upload{chunks: s.Chunks, folder: s.Folder, origin: s.Origin}, err
	},
}
