package progress

import (
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func FuzzParseShardQuery(f *testing.F) {
	for _, s := range []string{
		"",
		"path=/a",
		"path=a",
		"path=/a&path=/b",
		"path=/a&updatingRate=3&unitOfMeasurement=GB",
		"path=/a&updatingRate=1048576&unitOfMeasurement=gb",
		"path=/a&updatingRate=1048577",
		"path=/a&updatingRate=0",
		"path=/a&updatingRate=-1",
		"path=/a&updatingRate=18446744073709551615&unitOfMeasurement=GB",
		"path=/a&unitOfMeasurement=KB",
		"path=%2Fa%00b",
		"path=/a%0Ab",
		"path=/a%FFb",
		"path=/%E6%96%87%E4%BB%B6",
		"path=/%C2%85",
		"path=/a;b=c",
		"path=%",
		"path=/a&informProgress=true",
		"path=/" + strings.Repeat("x", MaxKeyLen),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw) // a partly bad query still yields values
		sq, f := ParseShardQuery(q)
		if f != nil {
			if f.Kind != BadRequest || f.Message == "" {
				t.Fatalf("failure %+v, want a BadRequest with a message", f)
			}
			return
		}
		if !strings.HasPrefix(sq.Key, "/") {
			t.Fatalf("accepted path %q does not start with /", sq.Key)
		}
		if err := CheckKey(sq.Key); err != nil {
			t.Fatalf("accepted path %q fails CheckKey: %v", sq.Key, err)
		}
		if vs := q["path"]; len(vs) != 1 || vs[0] != sq.Key {
			t.Fatalf("accepted path %q, query has %q", sq.Key, vs)
		}
		if sq.Step < 1 {
			t.Fatalf("step %d < 1", sq.Step)
		}
		if sq.Step%MB != 0 || sq.Step > maxUpdatingRate*GB {
			t.Fatalf("step %d is not a whole number of MB up to the maximum", sq.Step)
		}
	})
}

func FuzzCheckKey(f *testing.F) {
	for _, s := range []string{
		"", "/", "/a", "/a\x00", "/a\n", "\x7f", "/\u0085", "/\u2028", "/\xff",
		"/\xed\xa0\x80", // an encoded surrogate is not valid UTF-8
		"/文件", "/\U0001F600",
		strings.Repeat("a", MaxKeyLen), strings.Repeat("a", MaxKeyLen+1),
		strings.Repeat("é", MaxKeyLen/2) + "a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		// An independent statement of the rule: non-empty, at most MaxKeyLen
		// bytes, valid UTF-8, no character of category Cc.
		valid := key != "" && len(key) <= MaxKeyLen
		for i := 0; valid && i < len(key); {
			r, size := utf8.DecodeRuneInString(key[i:])
			if r == utf8.RuneError && size <= 1 {
				valid = false
			}
			if unicode.Is(unicode.Cc, r) {
				valid = false
			}
			i += size
		}
		err := CheckKey(key)
		if valid && err != nil {
			t.Fatalf("CheckKey(%q) = %v, want nil", key, err)
		}
		if !valid && err == nil {
			t.Fatalf("CheckKey(%q) = nil, want an error", key)
		}
	})
}
