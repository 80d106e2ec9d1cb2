package caddymodule

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

func TestWatchTokenSignVerify(t *testing.T) {
	signingKey := bytes.Repeat([]byte{7}, 32)
	tr := progress.NewMemoryTracker(progress.Options{})
	defer tr.Close()
	owner := tr.Owner(testAPIKey)
	now := time.Unix(1_800_000_000, 0)
	tok := signWatchToken(signingKey, "shard", owner, "/a.bin", now.Add(10*time.Minute))

	if len(tok) != watchTokenLen || strings.ContainsAny(tok, "+/=") {
		t.Fatalf("token %q: want %d base64url characters", tok, watchTokenLen)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	for _, secret := range []string{testAPIKey, "/a.bin"} {
		if bytes.Contains(raw, []byte(secret)) || strings.Contains(tok, secret) {
			t.Errorf("the token holds %q", secret)
		}
	}
	if got, err := verifyWatchToken(signingKey, "shard", "/a.bin", tok, now); err != nil || got != owner {
		t.Fatalf("verify = %x, %v; want the owner", got, err)
	}
	if _, err := verifyWatchToken(signingKey, "shard", "/a.bin", tok, now.Add(9*time.Minute+59*time.Second)); err != nil {
		t.Errorf("before its expiry: %v", err)
	}

	otherKey := bytes.Repeat([]byte{8}, 32)
	for _, tc := range []struct {
		name, protocol, key, token string
		signingKey                 []byte
		at                         time.Time
		want                       error
	}{
		{"expired", "shard", "/a.bin", tok, signingKey, now.Add(10 * time.Minute), errTokenExpired},
		{"another key", "shard", "/b.bin", tok, signingKey, now, errTokenInvalid},
		{"another protocol", "pcloud", "/a.bin", tok, signingKey, now, errTokenInvalid},
		{"another zone's signing key", "shard", "/a.bin", tok, otherKey, now, errTokenInvalid},
		{"signed with another signing key", "shard", "/a.bin", signWatchToken(otherKey, "shard", owner, "/a.bin", now.Add(time.Hour)), signingKey, now, errTokenInvalid},
		{"expiry moved", "shard", "/a.bin", flip(t, tok, 8), signingKey, now, errTokenInvalid},
		{"owner changed", "shard", "/a.bin", flip(t, tok, 20), signingKey, now, errTokenInvalid},
		{"signature changed", "shard", "/a.bin", flip(t, tok, 72), signingKey, now, errTokenInvalid},
		{"another version", "shard", "/a.bin", flip(t, tok, 0), signingKey, now, errTokenMalformed},
		{"empty", "shard", "/a.bin", "", signingKey, now, errTokenMalformed},
		{"cut short", "shard", "/a.bin", tok[:len(tok)-1], signingKey, now, errTokenMalformed},
		{"padded", "shard", "/a.bin", tok + "=", signingKey, now, errTokenMalformed},
		{"the API key", "shard", "/a.bin", testAPIKey, signingKey, now, errTokenMalformed},
		{"a byte not base64url", "shard", "/a.bin", "+" + tok[1:], signingKey, now, errTokenMalformed},
	} {
		if _, err := verifyWatchToken(tc.signingKey, tc.protocol, tc.key, tc.token, tc.at); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// flip changes byte i of a token's decoded bytes.
func flip(t *testing.T, tok string, i int) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	raw[i] ^= 1
	return base64.RawURLEncoding.EncodeToString(raw)
}

func TestAddWatchToken(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":1}`, `{"a":1,"watch_token":"T"}`},
		{"{}\n", `{"watch_token":"T"}`},
		{` { "a" : [1, 2] } `, `{ "a" : [1, 2] ,"watch_token":"T"}`},
		{`[1]`, ""},
		{`{"a":`, ""},
		{`{"watch_token":"x"}`, ""},
		{``, ""},
	} {
		if got := string(addWatchToken([]byte(tc.in), "T")); got != tc.want {
			t.Errorf("addWatchToken(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseWatchToken: whatever a URL brings, the parser neither panics
// nor accepts two spellings of one token, and only a token signed with
// the key verifies.
func FuzzParseWatchToken(f *testing.F) {
	signingKey := bytes.Repeat([]byte{7}, 32)
	now := time.Unix(1_800_000_000, 0)
	good := signWatchToken(signingKey, "shard", progress.Owner{1}, "/a.bin", now.Add(time.Minute))
	f.Add(good)
	f.Add("1")
	f.Add("")
	f.Add(strings.Repeat("A", watchTokenLen))
	f.Add(good[:len(good)-1] + "B")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parseWatchToken(s)
		if err != nil {
			return
		}
		var raw [watchTokenRaw]byte
		raw[0] = watchTokenVersion
		raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7], raw[8] = byte(tok.expires>>56), byte(tok.expires>>48), byte(tok.expires>>40), byte(tok.expires>>32), byte(tok.expires>>24), byte(tok.expires>>16), byte(tok.expires>>8), byte(tok.expires)
		copy(raw[9:], tok.owner[:])
		copy(raw[9+32:], tok.mac[:])
		if again := base64.RawURLEncoding.EncodeToString(raw[:]); again != s {
			t.Fatalf("%q parses, but its bytes spell %q", s, again)
		}
		if _, err := verifyWatchToken(signingKey, "shard", "/a.bin", s, now); err == nil && s != good {
			t.Fatalf("%q verifies, but was never signed", s)
		}
	})
}
