package sandbox

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The origin moves a session on its own (completing to completed, expiry):
// the proxy asks its status route for the session's watchers, at most once
// a second, one request for all of them, only while no request of the
// session passes.

// statusOrigin is the origin's status route, as the proxy's own requests
// reach it: it answers from a script, in turn, the last answer again and
// again. An answer of status 0 hangs up without answering.
type statusOrigin struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	script []answer
	asked  []asked
}

// asked is a request the origin got.
type asked struct {
	at                         time.Time
	method, path, auth, accept string
}

func newStatusOrigin(t *testing.T, script ...answer) *statusOrigin {
	o := &statusOrigin{t: t, script: script}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *statusOrigin) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.asked = append(o.asked, asked{time.Now(), r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Accept")})
	a := o.script[0]
	if len(o.script) > 1 {
		o.script = o.script[1:]
	}
	o.mu.Unlock()
	if a.Status == 0 {
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
		return
	}
	a.Write(w)
}

// requests returns what the origin was asked so far.
func (o *statusOrigin) requests() []asked {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]asked(nil), o.asked...)
}

// waitAsked waits, 10 s at most, until the origin has been asked n times.
func (o *statusOrigin) waitAsked(n int) []asked {
	o.t.Helper()
	for range 1000 {
		if got := o.requests(); len(got) >= n {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	o.t.Fatalf("the origin was asked %d times in 10 s, want %d", len(o.requests()), n)
	return nil
}

// refreshingProxy is a proxy whose sandbox asks o, with u1 created for
// alice and its 4 parts accepted.
func refreshingProxy(t *testing.T, o *statusOrigin) *proxy {
	p := newProxy(t, `{"name":"sandbox","origin":"`+o.srv.URL+`"}`)
	p.created()
	for i, next := range []int{2, 3, 4, 0} {
		p.Send("PUT", partOf(itoa(i+1)), ascii(10), answered(http.StatusOK, object("uploading", int64(10*(i+1)), next)), alice...)
	}
	return p
}

func TestRefreshCompletion(t *testing.T) {
	done := strings.Replace(object("completed", 40, 0), `,"next_part":0}`, `,"next_part":0,"whole_checksum_sha256":"9f86d0"}`, 1)
	o := newStatusOrigin(t, answered(http.StatusOK, object("completing", 40, 0)), answered(http.StatusOK, done))
	p := refreshingProxy(t, o)
	p.Send("POST", up+"/complete", "", answered(http.StatusAccepted, object("completing", 40, 0)), alice...)
	start := time.Now()
	var ws3 []*watcher
	for range 3 {
		w := p.watch(ws, alice...)
		w.until("completing")
		ws3 = append(ws3, w)
	}
	for i, w := range ws3 {
		p.sameView("a watcher", w.until("completed"), overlaid(done, "completed", lastByteTime, 40, "[]"))
		if code, reason := w.Closed(); code != websocket.StatusNormalClosure || reason != "completed" {
			t.Errorf("watcher %d was closed %d %q, want 1000 completed", i, code, reason)
		}
	}
	// Two requests a second apart, at most.
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the watchers learned of the completion after %v", took)
	}
	got := o.requests()
	if len(got) != 2 {
		t.Errorf("the origin was asked %d times, want 2 (completing, then completed)", len(got))
	}
	for _, a := range got {
		if a.method != "GET" || a.path != up || a.auth != "Bearer alice" || a.accept != "application/json" {
			t.Errorf("the origin was asked %s %s with Authorization %q, Accept %q; want GET %s with the watcher's token", a.method, a.path, a.auth, a.accept, up)
		}
	}
}

func TestRefreshSharedByWatchers(t *testing.T) {
	o := newStatusOrigin(t, answered(http.StatusOK, object("completing", 40, 0)))
	p := refreshingProxy(t, o)
	p.Send("POST", up+"/complete", "", answered(http.StatusAccepted, object("completing", 40, 0)), alice...)
	for range 3 {
		p.watch(ws, alice...).Next()
	}
	// A window of 2.5 s: what the origin is asked in it is the measure.
	time.Sleep(2500 * time.Millisecond)
	got := o.requests()
	if len(got) < 1 || len(got) > 4 {
		t.Errorf("3 watchers of one session asked the origin %d times in 2.5 s, want 1 to 4 (one a second, shared)", len(got))
	}
	// A second apart when asked; the way to the origin may take some of
	// it on a busy machine.
	for i := 1; i < len(got); i++ {
		if gap := got[i].at.Sub(got[i-1].at); gap < 500*time.Millisecond {
			t.Errorf("the origin was asked twice within %v", gap)
		}
	}
}

func TestRefreshNotWhileAPartStreams(t *testing.T) {
	o := newStatusOrigin(t, answered(http.StatusOK, object("uploading", 10, 2)))
	p := newProxy(t, `{"name":"sandbox","origin":"`+o.srv.URL+`"}`)
	p.created()
	release := p.Streaming("PUT", partOf("1"), ascii(10), 4, answered(http.StatusOK, object("uploading", 10, 2)), alice...)
	w := p.watch(ws, alice...)
	w.until("uploading")
	// The part's answer will say more, and sooner.
	time.Sleep(2500 * time.Millisecond)
	if got := o.requests(); len(got) != 0 {
		t.Errorf("the origin was asked %d times while a part streamed", len(got))
	}
	release()
	// Idle again: the origin is asked.
	o.waitAsked(1)
}

func TestRefreshRefused(t *testing.T) {
	for _, tc := range []struct {
		status int
		reason string
	}{
		{http.StatusNotFound, "the origin answered 404 Not Found for this session"},
		{http.StatusUnauthorized, "the origin answered 401 Unauthorized for this session"},
		{http.StatusForbidden, "the origin answered 403 Forbidden for this session"},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			o := newStatusOrigin(t, answered(tc.status, errorBody("refused", "no")))
			p := refreshingProxy(t, o)
			w1, w2 := p.watch(ws, alice...), p.watch(ws, alice...)
			for i, w := range []*watcher{w1, w2} {
				if code, reason := w.Closed(); code != websocket.StatusPolicyViolation || reason != tc.reason {
					t.Errorf("watcher %d was closed %d %q, want 1008 %q", i, code, reason, tc.reason)
				}
			}
			if got := o.requests(); len(got) != 1 {
				t.Errorf("the origin was asked %d times, want once for both watchers", len(got))
			}
		})
	}
}

func TestRefreshRetried(t *testing.T) {
	done := object("completed", 40, 0)
	o := newStatusOrigin(t,
		answered(http.StatusInternalServerError, errorBody("internal", "try again")),
		answer{}, // the connection breaks
		answered(http.StatusOK, `<html>maintenance</html>`),
		answered(http.StatusOK, done))
	p := refreshingProxy(t, o)
	w1, w2 := p.watch(ws, alice...), p.watch(ws, alice...)
	// Kept through the failures, and told once the origin answers.
	for i, w := range []*watcher{w1, w2} {
		p.sameView("a watcher", w.until("completed"), overlaid(done, "completed", lastByteTime, 40, "[]"))
		if code, reason := w.Closed(); code != websocket.StatusNormalClosure || reason != "completed" {
			t.Errorf("watcher %d was closed %d %q, want 1000 completed", i, code, reason)
		}
	}
	if got := o.requests(); len(got) != 4 {
		t.Errorf("the origin was asked %d times, want 4 (three failures, then the answer)", len(got))
	}
}

// TestRefreshExpiry: the origin says the session expired.
func TestRefreshExpiry(t *testing.T) {
	o := newStatusOrigin(t, answered(http.StatusOK, object("expired", 10, 2)))
	p := newProxy(t, `{"name":"sandbox","origin":"`+o.srv.URL+`"}`)
	p.created()
	p.Send("PUT", partOf("1"), ascii(10), answered(http.StatusOK, object("uploading", 10, 2)), alice...)
	w := p.watch(ws, alice...)
	p.sameView("the watcher", w.until("expired"), overlaid(object("expired", 10, 2), "expired", lastByteTime, 10, "[]"))
	if code, reason := w.Closed(); code != websocket.StatusNormalClosure || reason != "expired" {
		t.Errorf("the watcher was closed %d %q, want 1000 expired", code, reason)
	}
}
