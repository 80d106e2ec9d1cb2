package cli

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeServer answers one protocol's REST status from a script (the last
// answer repeats) and its WebSocket as socket says; it counts both.
type fakeServer struct {
	*httptest.Server
	mu      sync.Mutex
	rest    []fakeAnswer
	polls   atomic.Int32
	sockets atomic.Int32
}

type fakeAnswer struct {
	code int
	body string
}

func newFakeServer(t *testing.T, restPath, wsPath string, socket func(n int32, w http.ResponseWriter, r *http.Request), rest ...fakeAnswer) *fakeServer {
	s := &fakeServer{rest: rest}
	mux := http.NewServeMux()
	mux.HandleFunc(restPath, func(w http.ResponseWriter, r *http.Request) {
		s.polls.Add(1)
		s.mu.Lock()
		a := s.rest[0]
		if len(s.rest) > 1 {
			s.rest = s.rest[1:]
		}
		s.mu.Unlock()
		w.WriteHeader(a.code)
		w.Write([]byte(a.body))
	})
	if wsPath != "" {
		mux.HandleFunc(wsPath, func(w http.ResponseWriter, r *http.Request) {
			socket(s.sockets.Add(1), w, r)
		})
	}
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// sendAll accepts the WebSocket, sends msgs, and closes it normally.
func sendAll(w http.ResponseWriter, r *http.Request, msgs ...string) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for _, m := range msgs {
		if c.Write(r.Context(), websocket.MessageText, []byte(m)) != nil {
			return
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// testWatcher is a watcher of key on s in protocol, polling every
// millisecond, noting what it emits.
func testWatcher(s *fakeServer, protocol string, emitted *[]Update) *watcher {
	u, _ := url.Parse(s.URL)
	return &watcher{
		ad:     newAdapters[protocol](target{server: u, key: "/files/1"}),
		client: s.Client(),
		every:  time.Millisecond,
		wait:   30 * time.Second,
		emit:   func(u Update) { *emitted = append(*emitted, u) },
	}
}

func runWatcher(t *testing.T, w *watcher) (Update, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return w.run(ctx)
}

const (
	tusNotExist  = `{"upload":"/files/1","status":"not_exist"}`
	tusUploading = `{"upload":"/files/1","length":10,"offset":0,"received":4,"status":"uploading","error":""}`
	tusCompleted = `{"upload":"/files/1","length":10,"offset":10,"received":10,"status":"completed","error":""}`
)

// A tus WebSocket refuses an upload that does not exist yet: the watcher
// polls until it appears, then opens the WebSocket again and follows it
// to its end there.
func TestWatcherPollsUntilTheSocketTakesIt(t *testing.T) {
	var appeared atomic.Bool
	s := newFakeServer(t, "/tus/progress", "/tus/progress/ws", func(n int32, w http.ResponseWriter, r *http.Request) {
		if !appeared.Load() {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(tusNotExist))
			return
		}
		sendAll(w, r, tusUploading, tusCompleted)
	}, fakeAnswer{404, tusNotExist}, fakeAnswer{404, tusNotExist}, fakeAnswer{200, tusUploading})
	var emitted []Update
	w := testWatcher(s, "tus", &emitted)
	w.emit = func(u Update) {
		emitted = append(emitted, u)
		appeared.Store(u.Status != StatusWaiting)
	}
	last, err := runWatcher(t, w)
	if err != nil || last.Status != StatusCompleted || s.sockets.Load() != 2 || s.polls.Load() != 3 {
		t.Fatalf("%+v %v after %d sockets and %d polls, want completed after 2 and 3", last, err, s.sockets.Load(), s.polls.Load())
	}
	want := []Update{{0, -1, StatusWaiting, ""}, {4, 10, StatusUploading, ""}, {10, 10, StatusCompleted, ""}}
	if len(emitted) != len(want) {
		t.Fatalf("emitted %+v, want %+v", emitted, want)
	}
	for i := range want {
		if emitted[i] != want[i] {
			t.Fatalf("emitted %+v, want %+v", emitted, want)
		}
	}
}

// A WebSocket refused for another reason (426: a proxy dropped the
// Upgrade) is not asked again: the watcher polls to the end.
func TestWatcherFallsBackToPolling(t *testing.T) {
	s := newFakeServer(t, "/tus/progress", "/tus/progress/ws", func(n int32, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUpgradeRequired)
		w.Write([]byte(`{"error":"a WebSocket handshake is required"}`))
	}, fakeAnswer{200, tusUploading}, fakeAnswer{200, tusUploading}, fakeAnswer{200, tusCompleted})
	var emitted []Update
	last, err := runWatcher(t, testWatcher(s, "tus", &emitted))
	if err != nil || last.Status != StatusCompleted || s.sockets.Load() != 1 || len(emitted) != 2 {
		t.Fatalf("%+v %v after %d sockets, emitted %+v", last, err, s.sockets.Load(), emitted)
	}
}

// WebSockets that end before bringing anything, twice in a row, are
// given up for polling.
func TestWatcherLeavesBarrenSockets(t *testing.T) {
	s := newFakeServer(t, "/tus/progress", "/tus/progress/ws", func(n int32, w http.ResponseWriter, r *http.Request) {
		sendAll(w, r)
	}, fakeAnswer{200, tusCompleted})
	var emitted []Update
	last, err := runWatcher(t, testWatcher(s, "tus", &emitted))
	if err != nil || last.Status != StatusCompleted || s.sockets.Load() != 2 || s.polls.Load() != 1 {
		t.Fatalf("%+v %v after %d sockets and %d polls", last, err, s.sockets.Load(), s.polls.Load())
	}
}

// An upload the server stops knowing before its end was seen has failed.
func TestWatcherUploadGone(t *testing.T) {
	s := newFakeServer(t, "/progress", "", nil, fakeAnswer{200, `{"state":"uploading","received":3,"size":9}`}, fakeAnswer{200, `{"state":"starting"}`})
	var emitted []Update
	last, err := runWatcher(t, testWatcher(s, "nginx", &emitted))
	if err != nil || last != (Update{3, 9, StatusFailed, errGone}) {
		t.Fatalf("%+v %v", last, err)
	}
}

// nginx's done carries no counts: the watch keeps the length it saw, all
// of it uploaded.
func TestWatcherKeepsCountsOfDone(t *testing.T) {
	s := newFakeServer(t, "/progress", "", nil, fakeAnswer{200, `{"state":"uploading","received":3,"size":9}`}, fakeAnswer{200, `{"state":"done"}`})
	var emitted []Update
	last, err := runWatcher(t, testWatcher(s, "nginx", &emitted))
	if err != nil || last != (Update{9, 9, StatusCompleted, ""}) {
		t.Fatalf("%+v %v", last, err)
	}
}

// An end reported before the watched upload is live, while fresh says it
// cannot be this upload's (an earlier upload to the key), is passed over;
// the end after the upload was seen live is taken.
func TestWatcherPassesOverAStaleEnd(t *testing.T) {
	s := newFakeServer(t, "/progress", "", nil,
		fakeAnswer{200, `{"state":"done"}`}, fakeAnswer{200, `{"state":"done"}`},
		fakeAnswer{200, `{"state":"uploading","received":3,"size":9}`}, fakeAnswer{200, `{"state":"done"}`})
	var emitted []Update
	w := testWatcher(s, "nginx", &emitted)
	w.fresh = func() bool { return false }
	last, err := runWatcher(t, w)
	if err != nil || last != (Update{9, 9, StatusCompleted, ""}) || len(emitted) != 2 || s.polls.Load() != 4 {
		t.Fatalf("%+v %v, emitted %+v after %d polls", last, err, emitted, s.polls.Load())
	}
}

// A WebSocket that waits for the upload with the watcher (shard's stays
// open on not_exist) is left after --wait: exit code 3.
func TestWatcherWaitsOnTheSocket(t *testing.T) {
	s := newFakeServer(t, "/progress", "/ws/progress", func(n int32, w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.Write(r.Context(), websocket.MessageText, []byte(`{"total_size":0,"uploaded":0,"status":"not_exist","error":""}`))
		c.Read(r.Context()) // until the watcher leaves
	}, fakeAnswer{500, ""})
	var emitted []Update
	w := testWatcher(s, "shard", &emitted)
	w.wait = 50 * time.Millisecond
	_, err := runWatcher(t, w)
	var nap errNotAppeared
	if !errors.As(err, &nap) || s.polls.Load() != 0 || len(emitted) != 1 || emitted[0].Status != StatusWaiting {
		t.Fatalf("%v after %d polls, emitted %+v; want the upload not appeared, over the socket", err, s.polls.Load(), emitted)
	}
}

// --wait 0 looks once: an upload the first answer shows is followed to
// its end, even though the time to wait was over before the answer came.
func TestWatcherWaitZeroTakesTheFirstAnswer(t *testing.T) {
	s := newFakeServer(t, "/tus/progress", "/tus/progress/ws", func(n int32, w http.ResponseWriter, r *http.Request) {
		sendAll(w, r, tusUploading, tusCompleted)
	}, fakeAnswer{500, ""})
	var emitted []Update
	w := testWatcher(s, "tus", &emitted)
	w.wait = 0
	last, err := runWatcher(t, w)
	if err != nil || last.Status != StatusCompleted || s.polls.Load() != 0 {
		t.Fatalf("%+v %v after %d polls", last, err, s.polls.Load())
	}
}

// An nginx upload already done when the watch starts: no counts were ever
// seen, so none are made up.
func TestWatcherDoneUnseen(t *testing.T) {
	s := newFakeServer(t, "/progress", "", nil, fakeAnswer{200, `{"state":"done"}`})
	var emitted []Update
	last, err := runWatcher(t, testWatcher(s, "nginx", &emitted))
	if err != nil || last != (Update{0, -1, StatusCompleted, ""}) {
		t.Fatalf("%+v %v", last, err)
	}
}
