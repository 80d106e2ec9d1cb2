package protocoltest

import (
	"reflect"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// DetailTravels checks that the detail v another node reads back through
// codec is the one written, and that codec takes no other protocol's
// detail.
func DetailTravels(t *testing.T, codec progress.DetailCodec, v any) {
	t.Helper()
	b, ok := codec.Encode(v)
	if !ok {
		t.Fatalf("%T not taken by its codec", v)
	}
	back, err := codec.Decode(b)
	if err != nil || !reflect.DeepEqual(back, v) {
		t.Fatalf("read back %#v (%v), want %#v", back, err, v)
	}
	if _, ok := codec.Encode("another protocol's detail"); ok {
		t.Fatal("the codec takes a detail that is not its protocol's")
	}
}
