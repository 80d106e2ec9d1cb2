package pcloud

import (
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/protocoltest"
)

// The detail another node reads back from the store is the one written.
func TestDetailTravels(t *testing.T) {
	protocoltest.DetailTravels(t, detailCodec, originFiles(`{"metadata":[{"name":"a.bin","size":3}]}`))
}
