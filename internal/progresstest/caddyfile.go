package progresstest

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Unmarshal reads the Caddyfile block input into a new T, as Caddy's
// parser does, failing the test if it is refused.
func Unmarshal[T any, P interface {
	*T
	caddyfile.Unmarshaler
}](t testing.TB, input string) *T {
	t.Helper()
	m := new(T)
	if err := P(m).UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatalf("%q: %v", input, err)
	}
	return m
}

// WantCaddyfileError checks that the Caddyfile block input does not
// unmarshal into a T, with an error saying want.
func WantCaddyfileError[T any, P interface {
	*T
	caddyfile.Unmarshaler
}](t testing.TB, input, want string) {
	t.Helper()
	err := P(new(T)).UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%q: error %v, want one saying %q", input, err, want)
	}
}
