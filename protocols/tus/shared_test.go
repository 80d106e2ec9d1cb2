package tus

import (
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/protocoltest"
)

// The detail another node reads back from the store is the one written.
func TestDetailTravels(t *testing.T) {
	protocoltest.DetailTravels(t, detailCodec, Metadata{"filename": "big.bin", "type": "video/mp4"})
}
