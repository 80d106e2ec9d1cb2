package pcloud

import (
	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// The origin's description of the stored files travels with the record
// through a shared store, so that every proxy shows it.
func init() {
	progress.RegisterDetailCodec(detailCodec)
}

var detailCodec = protocol.RawJSONDetail[originFiles]("pcloud")
