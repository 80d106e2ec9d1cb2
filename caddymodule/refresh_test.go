package caddymodule

import (
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// TestRefreshGate: the watchers of one session share one turn to ask its
// origin, once a second at most, only while the session is idle.
func TestRefreshGate(t *testing.T) {
	var rs refreshes
	k := refreshKey{progress.Anyone, "/sandboxes/sb/uploads/u1"}
	g1, g2 := rs.join(k), rs.join(k)
	if g1 != g2 || g1.watchers != 2 {
		t.Fatalf("two watchers of a session have gates %p and %p (%d watchers)", g1, g2, g1.watchers)
	}
	other := rs.join(refreshKey{progress.Anyone, "/sandboxes/sb/uploads/u2"})
	if other == g1 {
		t.Fatal("two sessions share a gate")
	}

	t0 := time.Now()
	if ask, _ := rs.claim(g1, false, t0); ask {
		t.Error("a session a request is passing through is asked about")
	}
	if ask, _ := rs.claim(g1, true, t0); !ask {
		t.Fatal("the first watcher of an idle session does not ask")
	}
	// While it asks, and for a second after it asked, nobody else does.
	if ask, _ := rs.claim(g1, true, t0.Add(2*time.Second)); ask {
		t.Error("a second request while the first is out")
	}
	rs.done(g1, "")
	if ask, _ := rs.claim(g1, true, t0.Add(999*time.Millisecond)); ask {
		t.Error("asked again within a second")
	}
	if ask, _ := rs.claim(other, true, t0.Add(time.Millisecond)); !ask {
		t.Error("another session's watcher waits for this one's turn")
	}
	if ask, _ := rs.claim(g1, true, t0.Add(time.Second)); !ask {
		t.Fatal("not asked again after a second")
	}

	// Refused: every watcher of the session is told why, and the origin
	// is asked no more.
	rs.done(g1, "the origin answered 404 Not Found for this upload session")
	for _, at := range []time.Duration{0, 5 * time.Second} {
		if ask, refused := rs.claim(g1, true, t0.Add(at)); ask || refused != "the origin answered 404 Not Found for this upload session" {
			t.Errorf("after a refusal: ask %v, refused %q", ask, refused)
		}
	}

	// The gate goes with its last watcher; a new watcher starts afresh.
	rs.leave(k, g1)
	if rs.gates[k] != g1 {
		t.Error("the gate went while a watcher remains")
	}
	rs.leave(k, g2)
	if _, ok := rs.gates[k]; ok {
		t.Error("the gate outlived its watchers")
	}
	if g := rs.join(k); g == g1 || g.refused != "" {
		t.Errorf("a new watcher gets the old gate (refused %q)", g.refused)
	}
}
