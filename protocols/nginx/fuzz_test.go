package nginx

import (
	"bytes"
	"encoding/json"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/progresstest"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

func FuzzParseNginxQuery(f *testing.F) {
	for _, s := range []struct{ raw, header string }{
		{"", ""},
		{"", "abc"},
		{"X-Progress-ID=abc", ""},
		{"X-Progress-ID=abc", "def"},
		{"X-Progress-ID=", "def"},
		{"X-Progress-ID=a&X-Progress-ID=b", ""},
		{"X-Progress-ID=abc&callback=jQuery123_456", ""},
		{"X-Progress-ID=abc&callback=alert(1)", ""},
		{"X-Progress-ID=abc&callback=a&callback=b", ""},
		{"callback=cb", "abc"},
		{"X-Progress-ID=a%0Ab", ""},
		{"", "a\x00b"},
		{"", "\xff"},
		{"x-progress-id=abc", ""},
		{"X-Progress-ID=%", "h"},
		{"X-Progress-ID=" + strings.Repeat("i", progress.MaxKeyLen+1), ""},
		{"callback=" + strings.Repeat("c", 129), "abc"},
	} {
		f.Add(s.raw, s.header)
	}
	f.Fuzz(func(t *testing.T, raw, header string) {
		r := progresstest.StatusRequest("/progress", raw)
		if header != "" {
			r.Header.Set(IDName, header)
		}
		sq, fl := ParseQuery(r)
		if fl != nil {
			if fl.Kind != progress.BadRequest || fl.Message == "" {
				t.Fatalf("failure %+v, want a BadRequest with a message", fl)
			}
			code, body := FailureReply(fl)
			if st, ok := body.(Status); code != http.StatusBadRequest || !ok || st.State != "error" || st.Status != code {
				t.Fatalf("FailureReply(%+v) = %d, %+v", fl, code, body)
			}
			return
		}
		if err := progress.CheckKey(sq.Key); err != nil {
			t.Fatalf("accepted id %q fails CheckKey: %v", sq.Key, err)
		}
		if sq.Step != 1 {
			t.Fatalf("step %d, want 1", sq.Step)
		}
		q := r.URL.Query()
		want := header
		if vs := q[IDName]; len(vs) > 1 {
			t.Fatalf("accepted a query with the id given %d times", len(vs))
		} else if len(vs) == 1 && vs[0] != "" {
			want = vs[0]
		}
		if sq.Key != want || id(r) != want {
			t.Fatalf("key %q, id %q, want %q", sq.Key, id(r), want)
		}
		// The callback of an accepted request is usable as is.
		cb, cf := JSONPCallback(q)
		if cf != nil {
			t.Fatalf("accepted a request whose callback fails: %+v", cf)
		}
		fuzzCheckJSONP(t, cb)
	})
}

// jsonpCallbackRE is the grammar of an accepted callback, stated
// independently of JSONPCallback.
var jsonpCallbackRE = regexp.MustCompile(`^[A-Za-z_$.][A-Za-z0-9_$.]*$`)

// fuzzCheckJSONP checks that a reply wrapped in cb is cb(JSON);\n.
func fuzzCheckJSONP(t *testing.T, cb string) {
	t.Helper()
	v := Status{State: "error", Status: 400, Error: ");alert(1)//</script>\u2028"}
	body, ctype, err := EncodeJSONP(cb, v)
	if err != nil {
		t.Fatalf("EncodeJSONP(%q): %v", cb, err)
	}
	inner := body
	if cb == "" {
		if ctype != "application/json" || !bytes.HasSuffix(body, []byte("\n")) {
			t.Fatalf("EncodeJSONP without callback = %q, %q", body, ctype)
		}
		inner = body[:len(body)-1]
	} else {
		if ctype != "application/javascript" {
			t.Fatalf("EncodeJSONP(%q) content type %q", cb, ctype)
		}
		if !bytes.HasPrefix(body, []byte(cb+"(")) || !bytes.HasSuffix(body, []byte(");\n")) {
			t.Fatalf("EncodeJSONP(%q) = %q, want %s(...);\\n", cb, body, cb)
		}
		inner = body[len(cb)+1 : len(body)-3]
	}
	var back Status
	if err := json.Unmarshal(inner, &back); err != nil || back.Error != v.Error {
		t.Fatalf("EncodeJSONP(%q) = %q: the argument is not the JSON reply (%v)", cb, body, err)
	}
	if bytes.Contains(inner, []byte("</")) || bytes.Contains(inner, []byte("\u2028")) {
		t.Fatalf("EncodeJSONP(%q) = %q carries unescaped markup or a line separator", cb, body)
	}
}

func FuzzJSONPCallback(f *testing.F) {
	for _, s := range []string{
		"", "cb", "jQuery123_456", "a.b.c", "$x", "$", "_", ".",
		"1abc", "alert(1)", "a-b", "<script>", " ", "\t", " cb", "cb\n", "é", "\u2028",
		strings.Repeat("c", 128), strings.Repeat("c", 129),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cb string) {
		got, fl := JSONPCallback(map[string][]string{"callback": {cb}})
		valid := len(cb) <= maxCallbackLen && jsonpCallbackRE.MatchString(cb)
		switch {
		case cb == "":
			if got != "" || fl != nil {
				t.Fatalf("empty callback = %q, %+v; want none", got, fl)
			}
		case fl != nil:
			if fl.Kind != progress.BadRequest || fl.Message == "" || got != "" {
				t.Fatalf("JSONPCallback(%q) = %q, %+v; want \"\" and a BadRequest", cb, got, fl)
			}
			if valid {
				t.Fatalf("JSONPCallback(%q) refused a callback of the grammar: %+v", cb, fl)
			}
			return
		default:
			if got != cb {
				t.Fatalf("JSONPCallback(%q) = %q", cb, got)
			}
			if !valid {
				t.Fatalf("JSONPCallback accepted %q (%d bytes), outside the grammar", cb, len(cb))
			}
		}
		fuzzCheckJSONP(t, got)
	})
}
