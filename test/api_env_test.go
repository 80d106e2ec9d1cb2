package test

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
)

// testHeader marks the requests a test sends, so that the origin's log
// tells them from the status requests the proxy sends of its own.
const testHeader = "X-Test-Client"

// apiEnv is Caddy with a session protocol (its `origin` option set) in
// front of a reference origin the test configured, whose answers it notes.
type apiEnv struct {
	*env
	origin *origin.Server
	log    *originLog
	// sent numbers the test's requests.
	sent atomic.Int64
}

// newAPIEnv starts an origin with cfg (Dir and APIKeys are the
// harness's), noting every answer it sends, and Caddy in front of it with
// `protocol name`, which asks that origin about watched sessions.
func newAPIEnv(t *testing.T, name string, cfg origin.Config) *apiEnv {
	t.Helper()
	log := &originLog{}
	url, dir, o := startOriginWith(t, cfg, log.wrap)
	block := "protocol " + name + " {\n\torigin http://" + url + "\n}"
	return &apiEnv{env: newEnvAt(t, block, "", false, url, dir), origin: o, log: log}
}

// apiAnswer is an answer as the client got it.
type apiAnswer struct {
	// id is the request's testHeader, which finds the origin's answer
	// to it in the log.
	id     string
	code   int
	header http.Header
	body   []byte
}

// send sends one request of the protocol's API to base (the proxy or the
// origin) with the test's bearer token, or the headers of hdr (an empty
// Authorization sends none), marked as the test's. size is the body's
// length. It does not fail the test, so goroutines may use it.
func (e *apiEnv) send(base, method, path string, body io.Reader, size int64, hdr http.Header) (apiAnswer, error) {
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		return apiAnswer{}, err
	}
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+apiKey)
	for k, v := range hdr {
		req.Header[k] = v
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Del("Authorization")
	}
	id := strconv.FormatInt(e.sent.Add(1), 10)
	req.Header.Set(testHeader, id)
	resp, err := e.client.Do(req)
	if err != nil {
		return apiAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return apiAnswer{id: id, code: resp.StatusCode, header: resp.Header, body: b}, err
}

// originLog notes every answer the origin sends, as it sends it.
type originLog struct {
	mu  sync.Mutex
	got []originAnswer
}

// originAnswer is one request the origin got and its answer.
type originAnswer struct {
	at           time.Time // when the request came
	method, path string
	// id is the testHeader of the test's requests, passed on by the
	// proxy or sent to the origin directly; "" for the proxy's own.
	id     string
	status int
	body   []byte
}

// wrap is origin's handler noting each answer.
func (l *originLog) wrap(origin http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recordingWriter{ResponseWriter: w}
		a := originAnswer{at: time.Now(), method: r.Method, path: r.URL.Path, id: r.Header.Get(testHeader)}
		origin.ServeHTTP(rec, r)
		a.status, a.body = rec.status, rec.body.Bytes()
		if a.status == 0 {
			a.status = http.StatusOK
		}
		l.mu.Lock()
		l.got = append(l.got, a)
		l.mu.Unlock()
	})
}

// answerTo is the origin's answer to the test's request id. The client
// may read an answer before the log has it: it is waited for, 5 s at most.
func (l *originLog) answerTo(t testing.TB, id string) originAnswer {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		i := slices.IndexFunc(l.got, func(a originAnswer) bool { return a.id == id })
		var a originAnswer
		if i >= 0 {
			a = l.got[i]
		}
		l.mu.Unlock()
		if i >= 0 {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("the origin got no request %s of the test", id)
		}
		time.Sleep(time.Millisecond)
	}
}

// proxyAsked lists when the proxy, of its own, asked the origin about the
// session at path, between from and to.
func (l *originLog) proxyAsked(path string, from, to time.Time) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var at []time.Time
	for _, a := range l.got {
		if a.id == "" && a.method == http.MethodGet && a.path == path && !a.at.Before(from) && !a.at.After(to) {
			at = append(at, a.at)
		}
	}
	return at
}

// recordingWriter keeps a copy of the status and body it writes.
type recordingWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *recordingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
