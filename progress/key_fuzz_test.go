package progress

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

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
