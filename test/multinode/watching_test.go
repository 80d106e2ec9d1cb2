package multinode

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/redistest"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// keyHeader is the shard credential, for a request that sends it.
var keyHeader = http.Header{"X-User-Api-Key": {apiKey}}

// refusedStream asks n for an event stream at path that must be refused,
// and returns the refusal's status and body.
func refusedStream(t *testing.T, n *caddyNode, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		t.Fatalf("%s%s: an event stream, want a refusal", n.url, path)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// followTo reads progress events of an upload in flight until one shows
// want bytes uploaded, failing the test on anything else: another event,
// another status, or a count that goes back or past want.
func followTo(t *testing.T, s *sseStream, want float64) {
	t.Helper()
	last := -1.0
	for {
		ev := s.next(t)
		v := ev.json()
		if ev.event != "progress" || v["status"] != "uploading" || uploaded(v) < last || uploaded(v) > want {
			t.Fatalf("following the upload to %v bytes, after %v: %s %s", want, last, ev.event, ev.data)
		}
		if last = uploaded(v); last == want {
			return
		}
	}
}

// followToEnd reads progress events until the end event, which it
// returns, failing the test on an event that is neither the upload going
// on nor its completed state.
func followToEnd(t *testing.T, s *sseStream) sseEvent {
	t.Helper()
	for {
		ev := s.next(t)
		v := ev.json()
		switch {
		case ev.event == "end":
			return ev
		case ev.event != "progress" || (v["status"] != "uploading" && v["status"] != "completed"):
			t.Fatalf("following the upload to its end: %s %s", ev.event, ev.data)
		}
	}
}

func TestWatchTokenOfOneNodeOnTheOther(t *testing.T) {
	srv := redistest.Start(t)
	originAddr, _ := startOrigin(t)
	a := startNode(t, "shard", srv.Addr, originAddr)
	b := startNode(t, "shard", srv.Addr, originAddr)
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
	s.ended(t)
	want := a.waitFor(t, "/progress?path=/token.bin", "completed", func(code int, v map[string]any) bool { return v["status"] == "completed" })
	if got := end.json(); fmt.Sprint(got) != fmt.Sprint(want) || uploaded(got) != float64(len(body)) {
		t.Fatalf("the end event on the other node: %s; the carrying node answers %v", end.data, want)
	}
	if v := b.waitForAs(t, "/progress?"+byToken, "", "completed, asked with the token alone", func(code int, v map[string]any) bool {
		return code == http.StatusOK && v["status"] == "completed"
	}); fmt.Sprint(v) != fmt.Sprint(want) {
		t.Fatalf("the other node, asked with the token alone, shows %v; the carrying node %v", v, want)
	}
}

func TestTusEventStreamOnTheOtherNode(t *testing.T) {
	srv := redistest.Start(t)
	originAddr, _ := startOrigin(t)
	a := startNode(t, "tus", srv.Addr, originAddr)
	b := startNode(t, "tus", srv.Addr, originAddr)
	const size = 1 << 20
	upload := tusCreate(t, a, size)
	s := openSSE(t, b, "/tus/progress/ws?upload="+upload, nil)
	if ev := s.next(t); ev.event != "progress" || ev.json()["status"] != "created" || num(ev.json(), "length") != size {
		t.Fatalf("first event on the other node: %s %s", ev.event, ev.data)
	}
	p := tusPatch(t, a, upload, 0, size)
	p.write(t, make([]byte, size/2))
	for {
		ev := s.next(t)
		v := ev.json()
		if ev.event != "progress" || v["status"] != "uploading" {
			t.Fatalf("following the PATCH on the other node: %s %s", ev.event, ev.data)
		}
		if num(v, "received") == size/2 {
			break
		}
	}
	if code := p.finish(t, make([]byte, size/2)); code != http.StatusNoContent {
		t.Fatalf("PATCH answered %d", code)
	}
	end := followToEnd(t, s)
	s.ended(t)
	want := a.waitFor(t, "/tus/progress?upload="+upload, "completed", func(code int, v map[string]any) bool { return v["status"] == "completed" })
	if got := end.json(); fmt.Sprint(got) != fmt.Sprint(want) || num(got, "offset") != size {
		t.Fatalf("the end event on the other node: %s; the carrying node answers %v", end.data, want)
	}
}

func TestEventStreamThroughAStoreOutage(t *testing.T) {
	srv := redistest.Start(t)
	originAddr, _ := startOrigin(t)
	a := startNode(t, "shard", srv.Addr, originAddr)
	b := startNode(t, "shard", srv.Addr, originAddr)
	const path = "/ws/progress?path=/outage-sse.bin"
	u := startShardUpload(t, a, "/outage-sse.bin", 3<<20)
	u.write(t, make([]byte, 1<<20))
	b.waitFor(t, "/progress?path=/outage-sse.bin", "uploading", func(code int, v map[string]any) bool { return uploaded(v) == 1<<20 })
	before := openSSE(t, b, path, keyHeader)
	followTo(t, before, 1<<20)

	srv.Kill()
	killed := time.Now()
	// Only the store knows of the upload on b: both the watcher that was
	// there and one that comes now hear that it cannot be reached, in the
	// protocol's shape, and stay.
	const unavailable = `{"error":"progress store unavailable"}`
	for ev := before.next(t); ev.data != unavailable; ev = before.next(t) {
		if ev.event != "progress" || ev.json()["status"] != "uploading" {
			t.Fatalf("the watcher, the store gone: %s %s", ev.event, ev.data)
		}
	}
	during := openSSE(t, b, path, keyHeader)
	if ev := during.next(t); ev.event != "progress" || ev.data != unavailable {
		t.Fatalf("a watcher coming while the store is down: %s %s", ev.event, ev.data)
	}
	u.write(t, make([]byte, 1<<20))
	a.waitFor(t, "/progress?path=/outage-sse.bin", "right on its own node", func(code int, v map[string]any) bool { return uploaded(v) == 2<<20 })
	// The store stays down longer than a lease: the lease of a's last
	// write before the outage runs out meanwhile, which must not read as
	// a's death once the store is back. This wait is the outage's length,
	// not a synchronisation.
	time.Sleep(time.Until(killed.Add(lease + 100*time.Millisecond)))

	srv.Restart()
	for _, s := range []*sseStream{before, during} {
		followTo(t, s, 2<<20)
	}
	if code := u.finish(t, make([]byte, 1<<20)); code != http.StatusCreated {
		t.Fatalf("upload answered %d", code)
	}
	for _, s := range []*sseStream{before, during} {
		if v := followToEnd(t, s).json(); v["status"] != "completed" || uploaded(v) != 3<<20 {
			t.Fatalf("the end event: %v", v)
		}
		s.ended(t)
	}
}
