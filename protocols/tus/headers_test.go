package tus

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestByteCount(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  int64
		ok    bool
	}{
		{"0", 0, true},
		{"12345", 12345, true},
		{"0000000000000000001", 1, true}, // 19 digits
		{"9223372036854775807", 1<<63 - 1, true},
		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{" 5", 0, false},
		{"5 ", 0, false},
		{"1 2", 0, false},
		{"1,000", 0, false},
		{"1.5", 0, false},
		{"1e3", 0, false},
		{"0x10", 0, false},
		{"١٢", 0, false},                   // digits, but not ASCII ones
		{"00000000000000000001", 0, false}, // 20 digits, even if small
		{"12345678901234567890", 0, false},
		{"9223372036854775808", 0, false}, // overflows int64
		{"9999999999999999999", 0, false},
	} {
		h := http.Header{}
		h[hdrUploadOffset] = []string{tc.value}
		n, ok := ByteCount(h, hdrUploadOffset)
		if n != tc.want || ok != tc.ok {
			t.Errorf("ByteCount(%q) = %d, %v; want %d, %v", tc.value, n, ok, tc.want, tc.ok)
		}
	}
	if n, ok := ByteCount(http.Header{}, hdrUploadOffset); n != 0 || ok {
		t.Errorf("ByteCount of a missing header = %d, %v; want 0, false", n, ok)
	}
	// The header's name is canonical whatever its spelling on the wire.
	h := http.Header{}
	h.Set("upload-length", "7")
	if n, ok := ByteCount(h, hdrUploadLength); n != 7 || !ok {
		t.Errorf("ByteCount of upload-length: 7 = %d, %v", n, ok)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUploadPath(t *testing.T) {
	endpoint := mustURL(t, "/files/")
	noSlash := mustURL(t, "/files")
	absolute := mustURL(t, "http://proxy.example/files/")
	long := "/" + strings.Repeat("a", maxUploadURL-1)
	for _, tc := range []struct {
		name string
		ref  string
		base *url.URL
		want string // "" when it must report false
	}{
		{"path", "/files/24e533e0", nil, "/files/24e533e0"},
		{"absolute URL", "http://tus.example/files/24e533e0", nil, "/files/24e533e0"},
		{"absolute URL with port, query, fragment", "https://tus.example:8443/files/abc?x=1#f", nil, "/files/abc"},
		{"absolute URL with a base", "http://tus.example/files/abc", endpoint, "/files/abc"},
		{"other host", "//other.example/files/abc", endpoint, "/files/abc"},
		{"escaped", "/files/a%20b", nil, "/files/a b"},
		{"relative to the endpoint", "abc", endpoint, "/files/abc"},
		{"relative to the endpoint with a host", "abc", absolute, "/files/abc"},
		// RFC 3986: relative to /files, abc replaces its last segment.
		{"relative to an endpoint without slash", "abc", noSlash, "/abc"},
		{"query only", "?x=1", mustURL(t, "/files/abc"), "/files/abc"},
		{"dot segments with a base", "/files/../uploads/abc", endpoint, "/uploads/abc"},
		{"relative dot segments", "../uploads/abc", endpoint, "/uploads/abc"},
		{"dot segments above the root", "/../../abc", endpoint, "/abc"},
		{"dot segments without a base", "/files/x/../abc", nil, "/files/abc"},
		{"dot segment without a base", "/files/./abc", nil, "/files/abc"},
		{"URL with dot segments", "http://tus.example/files/x/../abc", nil, "/files/abc"},
		{"longest", long, nil, long},
		{"relative without a base", "abc", nil, ""},
		{"relative path without a base", "files/abc", nil, ""},
		{"empty", "", nil, ""},
		{"empty with a base", "", endpoint, ""},
		{"root", "/", nil, ""},
		{"root with a base", "/", endpoint, ""},
		{"up to the root", "..", endpoint, ""},
		{"host only", "http://tus.example", nil, ""},
		{"host and root", "http://tus.example/", nil, ""},
		{"opaque", "mailto:a@b", nil, ""},
		{"bad escape", "/files/%zz", nil, ""},
		{"control character", "/files/a\x00b", nil, ""},
		{"too long", long + "a", nil, ""},
	} {
		got, ok := UploadPath(tc.ref, tc.base)
		if tc.want == "" {
			if ok || got != "" {
				t.Errorf("%s: UploadPath(%.40q) = %q, %v; want false", tc.name, tc.ref, got, ok)
			}
			continue
		}
		if !ok || got != tc.want {
			t.Errorf("%s: UploadPath(%.40q) = %.40q, %v; want %.40q", tc.name, tc.ref, got, ok, tc.want)
		}
	}
}

// b64 is s in base64, as Upload-Metadata carries values.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestParseMetadata(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value string
		want  Metadata
	}{
		// The example of the tus 1.0 specification.
		{"spec", "filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential",
			Metadata{"filename": "world_domination_plan.pdf", "is_confidential": ""}},
		{"tus-js-client", "filename " + b64("video.mp4") + ",filetype " + b64("video/mp4"),
			Metadata{"filename": "video.mp4", "filetype": "video/mp4"}},
		{"empty value with a space", "k ", Metadata{"k": ""}},
		{"spaces around pairs", " a " + b64("1") + " , b " + b64("2") + " ", Metadata{"a": "1", "b": "2"}},
		{"two spaces", "a  " + b64("1"), Metadata{"a": "1"}},
		{"unicode", "name " + b64("vidéo 文.mp4"), Metadata{"name": "vidéo 文.mp4"}},
		{"last of a key wins", "a " + b64("1") + ",a " + b64("2"), Metadata{"a": "2"}},
		{"invalid base64 skipped", "a !!!,b " + b64("2"), Metadata{"b": "2"}},
		{"unpadded base64 skipped", "a YQ,b " + b64("2"), Metadata{"b": "2"}},
		{"third field skipped", "a YQ== YQ==,b " + b64("2"), Metadata{"b": "2"}},
		{"tab in the key skipped", "a\tb YQ==,c " + b64("3"), Metadata{"c": "3"}},
		{"blank pair skipped", " ,c " + b64("3"), Metadata{"c": "3"}},
		{"empty pairs skipped", ",,a " + b64("1") + ",,", Metadata{"a": "1"}},
		{"empty", "", nil},
		{"only commas", ",,,", nil},
		{"only invalid", "a !!!", nil},
	} {
		got := ParseMetadata(tc.value)
		if !maps.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("%s: ParseMetadata(%q) = %#v, want %#v", tc.name, tc.value, got, tc.want)
		}
	}
}

func TestParseMetadataBounds(t *testing.T) {
	// 33 pairs: the first 32 are kept.
	var pairs []string
	for i := range maxMetadataPairs + 1 {
		pairs = append(pairs, fmt.Sprintf("k%02d %s", i, b64("v")))
	}
	md := ParseMetadata(strings.Join(pairs, ","))
	if len(md) != maxMetadataPairs {
		t.Errorf("33 pairs: %d kept, want %d", len(md), maxMetadataPairs)
	}
	if _, ok := md["k31"]; !ok {
		t.Error("33 pairs: the 32nd is not kept")
	}
	if _, ok := md["k32"]; ok {
		t.Error("33 pairs: the 33rd is kept")
	}

	// 4 KiB of keys and values is kept; past it, the pair that crosses it
	// and all that follow are dropped.
	at := "a " + b64(strings.Repeat("x", maxMetadataBytes-1))
	if md := ParseMetadata(at); len(md["a"]) != maxMetadataBytes-1 {
		t.Errorf("a pair of 4 KiB: value of %d bytes kept, want %d", len(md["a"]), maxMetadataBytes-1)
	}
	over := "a " + b64(strings.Repeat("x", maxMetadataBytes))
	if md := ParseMetadata(over); md != nil {
		t.Errorf("a pair of 4 KiB + 1: kept %d pairs, want none", len(md))
	}
	md = ParseMetadata("a " + b64(strings.Repeat("x", 3000)) + ",b " + b64(strings.Repeat("y", 2000)) + ",c " + b64("z"))
	if len(md) != 1 || len(md["a"]) != 3000 {
		t.Errorf("3000 + 2000 bytes: kept %v, want only a", slices.Sorted(maps.Keys(md)))
	}
}

func TestMetadataSizeGrowsWithContent(t *testing.T) {
	small := Metadata{"a": "b"}.size()
	big := Metadata{"a": strings.Repeat("b", 1000)}.size()
	if small <= 0 || big-small != 999 {
		t.Errorf("size of 1 and 1000 byte values: %d and %d", small, big)
	}
}

func TestParseConcat(t *testing.T) {
	endpoint := mustURL(t, "/files/")
	many := func(n int) string {
		var b strings.Builder
		b.WriteString("final;")
		for i := range n {
			fmt.Fprintf(&b, " /files/p%d", i)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name  string
		value string
		want  Concat
	}{
		{"partial", "partial", Concat{Partial: true}},
		{"final", "final;/files/a /files/b", Concat{Final: true, Partials: []string{"/files/a", "/files/b"}}},
		{"final spaced", "final; /files/a   /files/b ", Concat{Final: true, Partials: []string{"/files/a", "/files/b"}}},
		{"final absolute", "final;http://tus.example/files/a https://other.example/files/b",
			Concat{Final: true, Partials: []string{"/files/a", "/files/b"}}},
		{"final relative", "final;a ../files/b", Concat{Final: true, Partials: []string{"/files/a", "/files/b"}}},
		{"final empty", "final;", Concat{Final: true}},
		{"final blank", "final;   ", Concat{Final: true}},
		// One URL that names no upload, and the length is unknown.
		{"final with a bad URL", "final;/files/a /", Concat{Final: true}},
		{"final with a bad escape", "final;/files/a /files/%zz", Concat{Final: true}},
		{"too many partials", many(maxPartials + 1), Concat{Final: true}},
		{"empty", "", Concat{}},
		{"partial with a list", "partial;/files/a", Concat{}},
		{"other case", "Partial", Concat{}},
		{"final without semicolon", "final /files/a", Concat{}},
		{"finals", "finals;/files/a", Concat{}},
		{"garbage", "🙂;;", Concat{}},
	} {
		got := ParseConcat(tc.value, endpoint)
		if got.Partial != tc.want.Partial || got.Final != tc.want.Final || !slices.Equal(got.Partials, tc.want.Partials) {
			t.Errorf("%s: ParseConcat(%.60q) = %+v, want %+v", tc.name, tc.value, got, tc.want)
		}
	}
	if got := ParseConcat(many(maxPartials), endpoint); len(got.Partials) != maxPartials {
		t.Errorf("%d partials: %d read", maxPartials, len(got.Partials))
	}
}

func TestExpires(t *testing.T) {
	want := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		value string
		want  time.Time
	}{
		{"Mon, 07 Dec 2026 10:00:00 GMT", want},  // what tusd sends (RFC 9110 IMF-fixdate)
		{"Monday, 07-Dec-26 10:00:00 GMT", want}, // obsolete RFC 850
		{"Mon Dec  7 10:00:00 2026", want},       // obsolete asctime
		{"", time.Time{}},
		{"tomorrow", time.Time{}},
		{"2026-12-07T10:00:00Z", time.Time{}}, // RFC 3339 is no HTTP date
		{"Mon, 07 Dec 2026 10:00:00 +0100", time.Time{}},
		{"1796637600", time.Time{}},
	} {
		h := http.Header{}
		if tc.value != "" {
			h.Set(hdrUploadExpires, tc.value)
		}
		got := Expires(h)
		if !got.Equal(tc.want) {
			t.Errorf("Expires(%q) = %v, want %v", tc.value, got, tc.want)
		}
		if !got.IsZero() && got.Location() != time.UTC {
			t.Errorf("Expires(%q) is in %v, want UTC", tc.value, got.Location())
		}
	}
}
