package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// adapter speaks one protocol's status API: how to ask it, and what its
// answers mean.
type adapter interface {
	// status is the REST status request of the watched upload.
	status(ctx context.Context) (*http.Request, error)
	// socket is the WebSocket endpoint's URL and headers; "" when the
	// protocol has none here.
	socket() (string, http.Header)
	// decode normalises an answer: a REST reply, a WebSocket message
	// (code 200), or the body of a refused WebSocket handshake. An
	// answer that is no upload's state is an *answerError.
	decode(code int, body []byte) (Update, error)
}

// target is what a watch asks the server about, from the flags.
type target struct {
	server  *url.URL    // scheme, host and any path prefix
	key     string      // the protocol's own name of the upload
	apiKey  string      // the protocol's own credential; "" for none
	headers http.Header // --header, on every request
	// statusPath and wsPath replace the protocol's default paths (the
	// status_path and websocket_path options of the module).
	statusPath, wsPath string
}

// newAdapters makes a protocol's adapter of t.
var newAdapters = map[string]func(t target) adapter{
	"shard":   newShard,
	"pcloud":  newPcloud,
	"nginx":   newNginx,
	"tus":     newTus,
	"sandbox": newSandbox,
	"dstor":   newDstor,
}

// protocolNames lists the protocols watch knows, for usage and errors.
func protocolNames() string {
	var names []string
	for n := range newAdapters {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// url is the server's URL of path (joined to the server's own path) with
// query q.
func (t target) url(path string, q url.Values) string {
	u := *t.server
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = q.Encode()
	return u.String()
}

// wsURL is url with the WebSocket scheme of the server's.
func (t target) wsURL(path string, q url.Values) string {
	u := t.url(path, q)
	if rest, ok := strings.CutPrefix(u, "https:"); ok {
		return "wss:" + rest
	}
	return "ws:" + strings.TrimPrefix(u, "http:")
}

// pathOr is the override p if set, else def.
func pathOr(p, def string) string {
	if p != "" {
		return p
	}
	return def
}

// header is the --header headers plus the protocol's own.
func (t target) header(kv ...string) http.Header {
	h := t.headers.Clone()
	if h == nil {
		h = http.Header{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			h.Set(kv[i], kv[i+1])
		}
	}
	return h
}

// get is a GET of u with h.
func get(ctx context.Context, u string, h http.Header) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	return req, nil
}

// answerError is an answer that is no upload's state: a refusal of the
// request, or an answer in another shape. Exit is the exit code it ends
// the watch with.
type answerError struct {
	exit int
	msg  string
}

func (e *answerError) Error() string { return e.msg }

// refused is the error of a request the server refused for what the
// user gave: a missing credential, a malformed key (exit 2).
func refused(code int, why string) error {
	return &answerError{exit: exitUsage, msg: fmt.Sprintf("the server refused the request (%d): %s", code, why)}
}

// unexpected is the error of an answer in no shape the protocol has (the
// protocol is not served there, a proxy in between answered).
func unexpected(proto string, code int, body []byte) error {
	b := string(body)
	if len(b) > 200 {
		b = b[:200] + "…"
	}
	return &answerError{exit: exitFailed, msg: fmt.Sprintf("the server's answer %d is not %s's progress reply: %q (is upload_progress with protocol %s in front?)", code, proto, b, proto)}
}

// unmarshal decodes body into v, reporting whether it was a JSON object
// that fits.
func unmarshal(body []byte, v any) bool {
	return len(body) > 0 && body[0] == '{' && json.Unmarshal(body, v) == nil
}

// errorMessage is the message of the shapes the status APIs refuse with:
// {"error":"…"}, {"error":{"message":"…"}}, {"errorExplanation":"…"}.
func errorMessage(body []byte) string {
	var v struct {
		Error            json.RawMessage `json:"error"`
		ErrorExplanation string          `json:"errorExplanation"`
	}
	if !unmarshal(body, &v) {
		return strings.TrimSpace(string(body))
	}
	var s string
	if json.Unmarshal(v.Error, &s) == nil && s != "" {
		return s
	}
	var o struct{ Message string }
	if json.Unmarshal(v.Error, &o) == nil && o.Message != "" {
		return o.Message
	}
	if v.ErrorExplanation != "" {
		return v.ErrorExplanation
	}
	return strings.TrimSpace(string(body))
}
