package caddymodule

import (
	"reflect"
	"slices"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// Every field of a snapshot is in a shared message's key, or makes the
// message its own: a field added to progress.Snapshot must be placed in
// one or the other (frames.go), or watchers of a key would be sent one
// another's messages.
func TestFrameKeyCoversSnapshot(t *testing.T) {
	keyed := []string{"Found", "ID", "Key", "Total", "Received", "State", "Error", "HTTPStatus",
		"Started", "Finished", "Version", "Unavailable"}
	own := []string{"Files", "Detail", "Session"} // rendered for each watcher
	st := reflect.TypeFor[progress.Snapshot]()
	for f := range st.Fields() {
		if !f.IsExported() {
			continue
		}
		if !slices.Contains(keyed, f.Name) && !slices.Contains(own, f.Name) {
			t.Errorf("progress.Snapshot.%s is neither in frameKey nor a reason to render for each watcher", f.Name)
		}
	}
}
