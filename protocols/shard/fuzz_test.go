package shard

import (
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
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
		"path=/" + strings.Repeat("x", progress.MaxKeyLen),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw) // a partly bad query still yields values
		sq, f := ParseQuery(q)
		if f != nil {
			if f.Kind != progress.BadRequest || f.Message == "" {
				t.Fatalf("failure %+v, want a BadRequest with a message", f)
			}
			return
		}
		if !strings.HasPrefix(sq.Key, "/") {
			t.Fatalf("accepted path %q does not start with /", sq.Key)
		}
		if err := progress.CheckKey(sq.Key); err != nil {
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
