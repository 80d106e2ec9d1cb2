package pcloud

import (
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/progresstest"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

func FuzzParsePcloudQuery(f *testing.F) {
	for _, s := range []string{
		"",
		"progresshash=abc",
		"progresshash=",
		"progresshash=a&progresshash=b",
		"auth=x&progresshash=h&access_token=y",
		"progresshash=a%00b",
		"progresshash=a%0Ab",
		"progresshash=%7F",
		"progresshash=%C2%85",
		"progresshash=%FF",
		"progresshash=%E6%96%87",
		"progresshash=%",
		"progresshash=a;b",
		"progresshash=a+b",
		"PROGRESSHASH=a",
		"progresshash=" + strings.Repeat("h", progress.MaxKeyLen),
		"progresshash=" + strings.Repeat("h", progress.MaxKeyLen+1),
		"progresshash=\x00",
		"progresshash=a b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := progresstest.StatusRequest("/uploadprogress", raw)
		sq, fl := ParseQuery(r)
		if fl != nil {
			if fl.Kind != progress.BadRequest || fl.Message == "" {
				t.Fatalf("failure %+v, want a BadRequest with a message", fl)
			}
			if sq != (progress.StatusQuery{}) {
				t.Fatalf("failure %+v came with a query %+v", fl, sq)
			}
			// pCloud answers it as an unknown upload, with HTTP 200.
			code, body := FailureReply(fl)
			if st, ok := body.(Status); code != http.StatusOK || !ok || st.Result != ResultNotFound {
				t.Fatalf("FailureReply(%+v) = %d, %+v", fl, code, body)
			}
			return
		}
		if err := progress.CheckKey(sq.Key); err != nil {
			t.Fatalf("accepted key %q fails CheckKey: %v", sq.Key, err)
		}
		if sq.Step != MB {
			t.Fatalf("step %d, want %d", sq.Step, MB)
		}
		if vs := r.URL.Query()[HashName]; len(vs) != 1 || vs[0] != sq.Key {
			t.Fatalf("accepted key %q, query has %q", sq.Key, vs)
		}
		// An upload naming the same progresshash is tracked under this key.
		up := httptest.NewRequest(http.MethodPost, "/uploadfile", strings.NewReader("x"))
		up.URL.RawQuery = raw
		if !tracks(up, "/uploadfile") || key(up) != sq.Key {
			t.Fatalf("upload with query %q: tracks %v key %q, status key %q",
				raw, tracks(up, "/uploadfile"), key(up), sq.Key)
		}
	})
}
