package dstor

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/caddymodule"
)

// statusOrigin is the origin's get-status route as the proxy's `origin`
// option reaches it: it answers each request with the next of its
// answers (the last one again once they run out), and notes the requests.
type statusOrigin struct {
	t       *testing.T
	mu      sync.Mutex
	answers []answer
	asked   []*http.Request
}

func (s *statusOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.asked = append(s.asked, r.Clone(r.Context()))
	a := s.answers[min(len(s.asked), len(s.answers))-1]
	s.mu.Unlock()
	if r.Method != http.MethodGet || r.URL.Path != "/v1/upload/get-status/" {
		s.t.Errorf("the proxy asked the origin %s %s, want GET /v1/upload/get-status/", r.Method, r.URL.Path)
	}
	a.Write(w)
}

// requests returns the requests the origin got so far.
func (s *statusOrigin) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.asked...)
}

// refreshedProxy is a proxy whose `origin` is an HTTP server on
// 127.0.0.1 answering get-status with answers; both end with the test.
func refreshedProxy(t *testing.T, answers ...answer) (*proxy, *statusOrigin) {
	t.Helper()
	so := &statusOrigin{t: t, answers: answers}
	srv := httptest.NewServer(so)
	t.Cleanup(srv.Close)
	// The proxy's client is closed with the handler, before the server.
	return newProxy(t, fmt.Sprintf(`{"name":"dstor","origin":%q}`, srv.URL)), so
}

// noNext is the next handler of a proxy's server that only watchers reach.
func noNext(t *testing.T) caddyhttp.Handler {
	return caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		t.Errorf("%s %s was passed on", r.Method, r.URL)
		return nil
	})
}

// TestRefreshFollowsTheOrigin: once every chunk is in, a watcher follows
// the origin's stages to DONE by itself, no client asking get-status.
func TestRefreshFollowsTheOrigin(t *testing.T) {
	p, so := refreshedProxy(t,
		answered(http.StatusOK, `{"status":"ADDING_TO_IPFS"}`),
		answered(http.StatusOK, `{"status":"SAVING_DATA"}`),
		answered(http.StatusOK, `{"status":"DONE","data":{"folderPath":"/photos","files":[]}}`))
	srv := p.Server(noNext(t))
	p.token("tok", 2, "/photos", alice...)
	c1 := newChunk(file{"2024/a.jpg", 1000})
	p.chunk("tok", c1, accepted, alice...)

	// While chunks are expected the origin knows nothing: nobody asks it.
	w := watch(t, srv, "tok")
	w.until(uploading(2, 1, 0, len(c1.body), 1, "", "/photos"), 1)

	c2 := newChunk(file{"b.txt", 10})
	p.chunk("tok", c2, accepted, alice...)
	size := len(c1.body) + len(c2.body)
	final := fmt.Sprintf(`"chunksNumber":2,"chunksUploaded":2,"bytesUploaded":%d,"filesUploaded":2,"folderPath":"/photos"}`, size)
	if n := len(so.requests()); n != 0 {
		t.Errorf("the origin was asked %d times before the last chunk", n)
	}
	started := time.Now()
	w.until(`{"status":"ADDING_TO_IPFS",`+final, 3)
	w.until(`{"status":"SAVING_DATA",`+final, 2)
	w.until(`{"status":"DONE","data":{"folderPath":"/photos","files":[]},`+final, 2)
	w.closed(websocket.StatusNormalClosure, "completed")

	asked := so.requests()
	if len(asked) != 3 {
		t.Errorf("the origin was asked %d times for its three stages", len(asked))
	}
	// Once a second at most.
	if took := time.Since(started); took < 1500*time.Millisecond {
		t.Errorf("three stages followed in %v: the origin was asked more than once a second", took)
	}
	for _, r := range asked {
		if r.Header.Get("Authorization") != "Bearer alice-key" || r.Header.Get(HeaderToken) != "tok" {
			t.Errorf("the origin was asked with Authorization %q, token %q; want the watcher's", r.Header.Get("Authorization"), r.Header.Get(HeaderToken))
		}
	}
	// The session has ended: get-status now passes to the origin.
	if code, body, _ := p.statusFromOrigin("tok", answered(http.StatusOK, `{"status":"DONE"}`)); code != http.StatusOK || body != `{"status":"DONE",`+final {
		t.Errorf("get-status after DONE: %d %s", code, body)
	}
}

// TestRefreshSharedByWatchers: the watchers of one upload share the
// origin's answers.
func TestRefreshSharedByWatchers(t *testing.T) {
	p, so := refreshedProxy(t,
		answered(http.StatusOK, `{"status":"SAVING_DATA"}`),
		answered(http.StatusOK, `{"status":"ERROR","errorExplanation":"/photos is not a directory","errorAtStage":"SAVING_DATA"}`))
	srv := p.Server(noNext(t))
	size, files := allInSession(p, "tok")
	final := fmt.Sprintf(`"chunksNumber":2,"chunksUploaded":2,"bytesUploaded":%d,"filesUploaded":%d,"folderPath":"/photos"}`, size, files)
	var ws []*watcher
	for range 3 {
		ws = append(ws, watch(t, srv, "tok"))
	}
	for _, w := range ws {
		w.until(`{"status":"ERROR","errorExplanation":"/photos is not a directory","errorAtStage":"SAVING_DATA",`+final, 4)
		w.closed(websocket.StatusNormalClosure, "failed")
	}
	if n := len(so.requests()); n != 2 {
		t.Errorf("three watchers asked the origin %d times for its two answers", n)
	}
}

// TestRefreshRefused: the origin refuses the watcher's credential; its
// watchers are closed with 1008, saying why.
func TestRefreshRefused(t *testing.T) {
	p, _ := refreshedProxy(t, answered(http.StatusUnauthorized, `{"status":"ERROR","errorExplanation":"invalid API key","errorAtStage":"UPLOADING"}`))
	srv := p.Server(noNext(t))
	allInSession(p, "tok")
	w := watch(t, srv, "tok")
	w.Next()
	w.closed(websocket.StatusPolicyViolation, "the origin answered 401 Unauthorized for this session")
}

// TestRefreshLongDone: a DONE longer than what the proxy reads of it ends
// the upload all the same: its status comes first.
func TestRefreshLongDone(t *testing.T) {
	var list []string
	for i := range 3000 {
		list = append(list, fmt.Sprintf(`{"path":"2024/img_%04d.jpg","size":52341,"cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}`, i))
	}
	done := `{"status":"DONE","data":{"folderPath":"/photos","files":[` + strings.Join(list, ",") + `]}}`
	p, _ := refreshedProxy(t, answered(http.StatusOK, done))
	srv := p.Server(noNext(t))
	size, files := allInSession(p, "tok")
	w := watch(t, srv, "tok")
	w.until(fmt.Sprintf(`{"status":"DONE","chunksNumber":2,"chunksUploaded":2,"bytesUploaded":%d,"filesUploaded":%d,"folderPath":"/photos"}`, size, files), 3)
	w.closed(websocket.StatusNormalClosure, "completed")
}

// TestExpiredSessionWatcher: a session whose client stops sending ends
// after session_timeout; its watcher gets ERROR, not a last UPLOADING.
func TestExpiredSessionWatcher(t *testing.T) {
	p := newProxy(t, `{"name":"dstor","session_timeout":300000000}`, func(h *caddymodule.Handler) {
		// The janitor looks every quarter of the retention.
		h.Retain = caddy.Duration(400 * time.Millisecond)
	})
	srv := p.Server(noNext(t))
	p.token("tok", 2, "/photos", alice...)
	c := newChunk(file{"a.jpg", 100})
	p.chunk("tok", c, accepted, alice...)
	w := watch(t, srv, "tok")
	w.until(uploading(2, 1, 0, len(c.body), 1, "", "/photos"), 1)
	w.until(failing("no request for the session's idle time", 2, 1, 0, len(c.body), 1, "/photos"), 2)
	w.closed(websocket.StatusNormalClosure, "expired")
	p.wantNotFound("tok")
}
