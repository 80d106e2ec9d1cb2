package progresstest

import (
	"encoding/json"
	"strings"
	"testing"
)

// WantError checks err, the outcome of what: no error when want is "",
// else one saying want.
func WantError(t testing.TB, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s = %v, want nil", what, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%s = %v, want an error saying %q", what, err, want)
	}
}

// SameJSON checks that got marshals to the JSON of want, and that this
// JSON holds each of members (such as `"name":value`), so that a field's
// JSON name is checked too.
func SameJSON(t testing.TB, got, want any, members ...string) {
	t.Helper()
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("unmarshalled\n got  %s\n want %s", gotJSON, wantJSON)
	}
	for _, m := range members {
		if !strings.Contains(string(gotJSON), m) {
			t.Errorf("JSON %s lacks %s", gotJSON, m)
		}
	}
}
