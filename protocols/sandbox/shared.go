package sandbox

import (
	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// The origin's last upload object travels with the session through a
// shared store, so that every proxy overlays the same.
func init() {
	progress.RegisterDetailCodec(detailCodec)
}

var detailCodec = protocol.RawJSONDetail[originObject]("sandbox")
