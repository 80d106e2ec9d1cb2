package sandbox

import (
	"reflect"
	"testing"
)

// The detail another node reads back from the store is the one written.
func TestDetailTravels(t *testing.T) {
	v := any(originObject(`{"upload_id":"up_1","status":"uploading"}`))
	b, ok := detailCodec.Encode(v)
	if !ok {
		t.Fatalf("%T not taken by its codec", v)
	}
	back, err := detailCodec.Decode(b)
	if err != nil || !reflect.DeepEqual(back, v) {
		t.Fatalf("read back %#v (%v), want %#v", back, err, v)
	}
	if _, ok := detailCodec.Encode("another protocol's detail"); ok {
		t.Fatal("the codec takes a detail that is not its protocol's")
	}
}
