package tus

import (
	"encoding/base64"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/progresstest"
	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{
		"",
		"filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential",
		"filename dmlkZW8ubXA0,filetype dmlkZW8vbXA0",
		"k ",
		" a MQ== , b Mg== ",
		"a !!!,b Mg==",
		"a YQ",
		"a YQ== YQ==",
		"a\tb YQ==",
		",,,",
		"a MQ==,a Mg==",
		"name dmlkw6kg5paHLm1wNA==",
		"bytes //4=",
		"a " + strings.Repeat("eHh4", 1365) + ",b eQ==",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		md := ParseMetadata(v)
		if md == nil {
			return
		}
		if len(md) == 0 || len(md) > maxMetadataPairs {
			t.Fatalf("%d pairs kept, want 1 to %d", len(md), maxMetadataPairs)
		}
		size := 0
		for k, val := range md {
			if k == "" || strings.ContainsAny(k, " \t,") {
				t.Fatalf("key %q kept", k)
			}
			if !strings.Contains(v, k) {
				t.Fatalf("key %q is not in the header %q", k, v)
			}
			size += len(k) + len(val)
		}
		if size > maxMetadataBytes {
			t.Fatalf("%d bytes of keys and values kept, want at most %d", size, maxMetadataBytes)
		}
		if md.size() <= int64(size) {
			t.Fatalf("size %d does not cover the %d bytes kept", md.size(), size)
		}
		// Written again as a client writes it, it reads the same, unless a
		// key has whitespace the pair's trimming would take.
		if slices.ContainsFunc(slices.Collect(maps.Keys(md)), hasSpaceOrControl) {
			return
		}
		var pairs []string
		for _, k := range slices.Sorted(maps.Keys(md)) {
			pairs = append(pairs, k+" "+base64.StdEncoding.EncodeToString([]byte(md[k])))
		}
		if again := ParseMetadata(strings.Join(pairs, ",")); !maps.Equal(again, md) {
			t.Fatalf("%q reads %q; written again, %q", v, md, again)
		}
	})
}

func hasSpaceOrControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

func FuzzParseConcat(f *testing.F) {
	for _, s := range []string{
		"",
		"partial",
		"final;/files/a /files/b",
		"final; /files/a  /files/b ",
		"final;http://tus.example/files/a https://other.example/files/b",
		"final;a ../b",
		"final;",
		"final;/files/a /",
		"final;/files/%zz",
		"final /files/a",
		"partial;/files/a",
		"final;" + strings.Repeat(" /files/p", maxPartials+1),
	} {
		f.Add(s)
	}
	base := &url.URL{Path: "/files/"}
	f.Fuzz(func(t *testing.T, v string) {
		c := ParseConcat(v, base)
		if c.Partial && (c.Final || v != "partial") {
			t.Fatalf("%q reads %+v", v, c)
		}
		if !c.Final {
			if c.Partials != nil {
				t.Fatalf("%q is no final upload but has partials %q", v, c.Partials)
			}
			return
		}
		if !strings.HasPrefix(v, "final;") {
			t.Fatalf("%q reads as a final upload", v)
		}
		if len(c.Partials) > maxPartials {
			t.Fatalf("%d partials read, want at most %d", len(c.Partials), maxPartials)
		}
		if c.Partials != nil && len(c.Partials) != len(strings.Fields(v[len("final;"):])) {
			t.Fatalf("%q: %d partials of %d URLs", v, len(c.Partials), len(strings.Fields(v[len("final;"):])))
		}
		for _, p := range c.Partials {
			if !strings.HasPrefix(p, "/") || p == "/" {
				t.Fatalf("%q: partial %q is no upload path", v, p)
			}
		}
	})
}

func FuzzUploadPath(f *testing.F) {
	for _, s := range [][2]string{
		{"/files/24e533e0", ""},
		{"http://tus.example/files/24e533e0", ""},
		{"https://tus.example:8443/files/abc?x=1#f", "/files/"},
		{"abc", "/files/"},
		{"abc", "/files"},
		{"abc", ""},
		{"../uploads/abc", "/files/"},
		{"/files/x/../abc", ""},
		{"/files/%2E%2E/abc", ""},
		{"/files/a%2Fb", ""},
		{"//other.example/files/abc", "http://proxy.example/files/"},
		{"/", ""},
		{"..", "/files/"},
		{"?x=1", "/files/abc"},
		{"mailto:a@b", ""},
		{"/files/%zz", ""},
		{"/" + strings.Repeat("a", maxUploadURL-1), ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, ref, rawBase string) {
		var base *url.URL
		if rawBase != "" {
			if b, err := url.Parse(rawBase); err == nil {
				base = b
			}
		}
		p, ok := UploadPath(ref, base)
		if !ok {
			if p != "" {
				t.Fatalf("UploadPath(%q, %q) = %q with false", ref, rawBase, p)
			}
			return
		}
		if !strings.HasPrefix(p, "/") || p == "/" {
			t.Fatalf("UploadPath(%q, %q) = %q, not an upload path", ref, rawBase, p)
		}
		if ref == "" || len(ref) > maxUploadURL {
			t.Fatalf("UploadPath(%q, %q) = %q: an empty or too long URL taken", ref, rawBase, p)
		}
		// A plain absolute path is its own upload path, with or without a base.
		if plainPath(ref) {
			if p != ref {
				t.Fatalf("UploadPath(%q, %q) = %q, want it unchanged", ref, rawBase, p)
			}
		}
	})
}

// plainPath reports whether s is an absolute path that needs no decoding
// or resolving: no escapes, query, fragment, dot segments or bytes a URL
// may not hold.
func plainPath(s string) bool {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || s == "/" || strings.ContainsAny(s, "%?#") {
		return false
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
		return false
	}
	for seg := range strings.SplitSeq(s, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func FuzzByteCount(f *testing.F) {
	for _, s := range []string{
		"0", "12345", "-1", "+1", " 5", "5 ", "1e3", "0x10", "١٢",
		"0000000000000000001", "00000000000000000001",
		"9223372036854775807", "9223372036854775808", "99999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{hdrUploadOffset: {v}}
		n, ok := ByteCount(h, hdrUploadOffset)
		digits := v != "" && strings.Trim(v, "0123456789") == ""
		if !ok {
			if n != 0 {
				t.Fatalf("ByteCount(%q) = %d with false", v, n)
			}
			// What is refused is not a count tus allows in an int64.
			if digits && len(v) <= 19 {
				if _, err := strconv.ParseInt(v, 10, 64); err == nil {
					t.Fatalf("ByteCount(%q) refused a count", v)
				}
			}
			return
		}
		if !digits || len(v) > 19 || n < 0 {
			t.Fatalf("ByteCount(%q) = %d, true", v, n)
		}
		if want := strings.TrimLeft(v, "0"); strconv.FormatInt(n, 10) != want && !(n == 0 && want == "") {
			t.Fatalf("ByteCount(%q) = %d", v, n)
		}
	})
}

func FuzzParseTusQuery(f *testing.F) {
	for _, s := range []string{
		"",
		"upload=/files/24e533e0",
		"upload=http://tus.example/files/24e533e0",
		"upload=https%3A%2F%2Ftus.example%3A8443%2Ffiles%2Fabc%3Fx%3D1",
		"upload=",
		"upload=/files/a&upload=/files/b",
		"upload=abc",
		"upload=/",
		"upload=/files/%25zz",
		"upload=/files/a%00b",
		"upload=/files/a%2500b",
		"upload=/files/%25FF",
		"upload=/files/x/../abc",
		"upload=/files/%E6%96%87",
		"upload=%",
		"Upload=/files/a",
		"upload=/" + strings.Repeat("a", maxUploadURL),
	} {
		f.Add(s)
	}
	tu := &Tus{UploadPath: "/files/"}
	f.Fuzz(func(t *testing.T, raw string) {
		r := progresstest.StatusRequest("/tus/progress", raw)
		sq, fl := ParseQuery(r)
		if fl != nil {
			if fl.Kind != progress.BadRequest || fl.Message == "" {
				t.Fatalf("failure %+v, want a BadRequest with a message", fl)
			}
			if sq != (progress.StatusQuery{}) {
				t.Fatalf("failure %+v came with a query %+v", fl, sq)
			}
			if code, body := FailureReply(fl); code != http.StatusBadRequest || body.(ErrorReply).Error != fl.Message {
				t.Fatalf("FailureReply(%+v) = %d, %+v", fl, code, body)
			}
			return
		}
		if err := progress.CheckKey(sq.Key); err != nil {
			t.Fatalf("accepted key %q fails CheckKey: %v", sq.Key, err)
		}
		if !strings.HasPrefix(sq.Key, "/") || sq.Key == "/" || sq.Step != 1 {
			t.Fatalf("accepted %+v", sq)
		}
		vs := r.URL.Query()["upload"]
		if len(vs) != 1 {
			t.Fatalf("accepted key %q, query has %q", sq.Key, vs)
		}
		if p, ok := UploadPath(vs[0], nil); !ok || p != sq.Key {
			t.Fatalf("accepted key %q, the upload URL %q is %q, %v", sq.Key, vs[0], p, ok)
		}
		// The requests of an upload with that path are tracked under this key.
		if strings.HasPrefix(sq.Key, "/files/") && len(sq.Key) > len("/files/") {
			patch := &http.Request{Method: http.MethodPatch, URL: &url.URL{Path: sq.Key}, Header: http.Header{}}
			if ex, ok := tu.Exchange(patch); !ok || ex.Key != sq.Key || tu.Key(patch) != sq.Key {
				t.Fatalf("a PATCH of %q: exchange %v, key %q; status key %q", sq.Key, ok, tu.Key(patch), sq.Key)
			}
		}
	})
}
