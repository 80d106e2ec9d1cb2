package multinode

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/ssetest"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// keyHeader is the shard credential, for a request that sends it.
var keyHeader = http.Header{"X-User-Api-Key": {apiKey}}

// refusedStream asks n for an event stream at path that must be refused,
// and returns the refusal's status and body.
func refusedStream(t *testing.T, n *caddyNode, path string) (int, string) {
	t.Helper()
	return ssetest.Refused(t, http.DefaultClient, n.url+path, nil)
}

// followTo reads progress events of an upload in flight until one shows
// want bytes uploaded, failing the test on anything else: another event,
// another status, or a count that goes back or past want.
func followTo(t *testing.T, s *ssetest.Stream, want float64) {
	t.Helper()
	last := -1.0
	for {
		ev := s.Next(t)
		v := ev.JSON()
		if ev.Event != "progress" || v["status"] != "uploading" || uploaded(v) < last || uploaded(v) > want {
			t.Fatalf("following the upload to %v bytes, after %v: %s %s", want, last, ev.Event, ev.Data)
		}
		if last = uploaded(v); last == want {
			return
		}
	}
}

// followToEnd reads progress events until the end event, which it
// returns, failing the test on an event that is neither the upload going
// on nor its completed state.
func followToEnd(t *testing.T, s *ssetest.Stream) ssetest.Event {
	t.Helper()
	for {
		ev := s.Next(t)
		v := ev.JSON()
		switch {
		case ev.Event == "end":
			return ev
		case ev.Event != "progress" || (v["status"] != "uploading" && v["status"] != "completed"):
			t.Fatalf("following the upload to its end: %s %s", ev.Event, ev.Data)
		}
	}
}

func TestWatchTokenOfOneNodeOnTheOther(t *testing.T) {
	c := startCluster(t, "shard")
	a, b := c.node(t), c.node(t)
	// A watcher hears of every MiB more (updatingRate, unitOfMeasurement).
	const piece = 1 << 20
	body := testkit.RandomBytes(4*piece, 11)
	u := startShardUpload(t, a, "/token.bin", len(body))
	u.write(t, body[:piece])
	a.waitFor(t, "/progress?path=/token.bin", "uploading", func(code int, v map[string]any) bool { return uploaded(v) == piece })

	// The page asks the node carrying the upload for a token, once, with
	// its key; a load balancer sends its watch to the other node.
	code, v := a.get(t, "/progress?path=/token.bin&watch_token=1")
	token, _ := v["watch_token"].(string)
	if code != http.StatusOK || token == "" || uploaded(v) != piece {
		t.Fatalf("asking the carrying node for a watch token: %d %v", code, v)
	}
	byToken := "path=/token.bin&watch_token=" + token
	b.waitForAs(t, "/progress?"+byToken, "", "uploading, asked with the token alone", func(code int, v map[string]any) bool {
		return code == http.StatusOK && v["status"] == "uploading" && uploaded(v) == piece
	})
	// It is good for that upload only, on the other node as well.
	const refusal = `{"error":"watch_token is not valid for this upload"}`
	if code, v := b.getAs(t, "/progress?path=/other.bin&watch_token="+token, ""); code != http.StatusUnauthorized || fmt.Sprint(v) != "map[error:watch_token is not valid for this upload]" {
		t.Fatalf("a token for another upload, on the other node: %d %v", code, v)
	}
	if code, reply := refusedStream(t, b, "/ws/progress?path=/other.bin&watch_token="+token); code != http.StatusUnauthorized || reply != refusal {
		t.Fatalf("an event stream with a token for another upload, on the other node: %d %s", code, reply)
	}

	s := openSSE(t, b, "/ws/progress?"+byToken, nil)
	followTo(t, s, piece)
	for i := 2; i < 4; i++ {
		u.write(t, body[(i-1)*piece:i*piece])
		followTo(t, s, float64(i*piece))
	}
	if code := u.finish(t, body[3*piece:]); code != http.StatusCreated {
		t.Fatalf("upload answered %d", code)
	}
	end := followToEnd(t, s)
	s.Ended(t)
	want := a.waitFor(t, "/progress?path=/token.bin", "completed", func(code int, v map[string]any) bool { return v["status"] == "completed" })
	if got := end.JSON(); fmt.Sprint(got) != fmt.Sprint(want) || uploaded(got) != float64(len(body)) {
		t.Fatalf("the end event on the other node: %s; the carrying node answers %v", end.Data, want)
	}
	if v := b.waitForAs(t, "/progress?"+byToken, "", "completed, asked with the token alone", func(code int, v map[string]any) bool {
		return code == http.StatusOK && v["status"] == "completed"
	}); fmt.Sprint(v) != fmt.Sprint(want) {
		t.Fatalf("the other node, asked with the token alone, shows %v; the carrying node %v", v, want)
	}
}

func TestTusEventStreamOnTheOtherNode(t *testing.T) {
	c := startCluster(t, "tus")
	a, b := c.node(t), c.node(t)
	const size = 1 << 20
	upload := tusCreate(t, a, size)
	s := openSSE(t, b, "/tus/progress/ws?upload="+upload, nil)
	if ev := s.Next(t); ev.Event != "progress" || ev.JSON()["status"] != "created" || num(ev.JSON(), "length") != size {
		t.Fatalf("first event on the other node: %s %s", ev.Event, ev.Data)
	}
	p := tusPatch(t, a, upload, 0, size)
	p.write(t, make([]byte, size/2))
	for {
		ev := s.Next(t)
		v := ev.JSON()
		if ev.Event != "progress" || v["status"] != "uploading" {
			t.Fatalf("following the PATCH on the other node: %s %s", ev.Event, ev.Data)
		}
		if num(v, "received") == size/2 {
			break
		}
	}
	if code := p.finish(t, make([]byte, size/2)); code != http.StatusNoContent {
		t.Fatalf("PATCH answered %d", code)
	}
	end := followToEnd(t, s)
	s.Ended(t)
	want := a.waitFor(t, "/tus/progress?upload="+upload, "completed", func(code int, v map[string]any) bool { return v["status"] == "completed" })
	if got := end.JSON(); fmt.Sprint(got) != fmt.Sprint(want) || num(got, "offset") != size {
		t.Fatalf("the end event on the other node: %s; the carrying node answers %v", end.Data, want)
	}
}

func TestEventStreamThroughAStoreOutage(t *testing.T) {
	c := startCluster(t, "shard")
	a, b := c.node(t), c.node(t)
	const path = "/ws/progress?path=/outage-sse.bin"
	u := startShardUpload(t, a, "/outage-sse.bin", 3<<20)
	u.write(t, make([]byte, 1<<20))
	b.waitFor(t, "/progress?path=/outage-sse.bin", "uploading", func(code int, v map[string]any) bool { return uploaded(v) == 1<<20 })
	before := openSSE(t, b, path, keyHeader)
	followTo(t, before, 1<<20)

	c.redis.Kill()
	killed := time.Now()
	// Only the store knows of the upload on b: both the watcher that was
	// there and one that comes now hear that it cannot be reached, in the
	// protocol's shape, and stay.
	const unavailable = `{"error":"progress store unavailable"}`
	for ev := before.Next(t); ev.Data != unavailable; ev = before.Next(t) {
		if ev.Event != "progress" || ev.JSON()["status"] != "uploading" {
			t.Fatalf("the watcher, the store gone: %s %s", ev.Event, ev.Data)
		}
	}
	during := openSSE(t, b, path, keyHeader)
	if ev := during.Next(t); ev.Event != "progress" || ev.Data != unavailable {
		t.Fatalf("a watcher coming while the store is down: %s %s", ev.Event, ev.Data)
	}
	u.write(t, make([]byte, 1<<20))
	a.waitFor(t, "/progress?path=/outage-sse.bin", "right on its own node", func(code int, v map[string]any) bool { return uploaded(v) == 2<<20 })
	// The store stays down longer than a lease: the lease of a's last
	// write before the outage runs out meanwhile, which must not read as
	// a's death once the store is back. This wait is the outage's length,
	// not a synchronisation.
	time.Sleep(time.Until(killed.Add(lease + 100*time.Millisecond)))

	c.redis.Restart()
	for _, s := range []*ssetest.Stream{before, during} {
		followTo(t, s, 2<<20)
	}
	if code := u.finish(t, make([]byte, 1<<20)); code != http.StatusCreated {
		t.Fatalf("upload answered %d", code)
	}
	for _, s := range []*ssetest.Stream{before, during} {
		if v := followToEnd(t, s).JSON(); v["status"] != "completed" || uploaded(v) != 3<<20 {
			t.Fatalf("the end event: %v", v)
		}
		s.Ended(t)
	}
}
