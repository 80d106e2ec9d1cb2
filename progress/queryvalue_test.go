package progress

import (
	"net/url"
	"testing"
)

// QueryValue must agree with url.Values.Get on what a query names.
func TestQueryValueAgreesWithParseQuery(t *testing.T) {
	for _, raw := range []string{
		"", "a=1", "a=1&a=2", "b=1&a=2", "a", "a=", "&&a=x&&", "a=%2Ffiles%2Fx", "a=x+y",
		"%61=enc", "a=%zz&a=ok", "path=/a&informProgress=true", "a=1;b=2", "x=1&a=%",
	} {
		q, _ := url.ParseQuery(raw)
		_, want := q["a"]
		got, ok := QueryValue(raw, "a")
		if ok != want || got != q.Get("a") {
			t.Errorf("QueryValue(%q) = %q %v, url.ParseQuery says %q %v", raw, got, ok, q.Get("a"), want)
		}
	}
}

func FuzzQueryValue(f *testing.F) {
	f.Add("path=/a&informProgress=true", "path")
	f.Add("%70ath=%2F&path=x", "path")
	f.Fuzz(func(t *testing.T, raw, name string) {
		q, _ := url.ParseQuery(raw)
		_, want := q[name]
		got, ok := QueryValue(raw, name)
		if ok != want || got != q.Get(name) {
			t.Fatalf("QueryValue(%q, %q) = %q %v, url.ParseQuery says %q %v", raw, name, got, ok, q.Get(name), want)
		}
	})
}

func TestQueryValueAllocatesNothing(t *testing.T) {
	raw := "path=/files/big.bin&informProgress=true&overwrite=true"
	if n := testing.AllocsPerRun(100, func() { QueryValue(raw, "informProgress") }); n != 0 {
		t.Fatalf("QueryValue allocates %v times", n)
	}
}
