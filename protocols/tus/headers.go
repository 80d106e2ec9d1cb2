package tus

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The tus headers the proxy reads.
const (
	hdrUploadOffset   = "Upload-Offset"
	hdrUploadLength   = "Upload-Length"
	hdrDeferLength    = "Upload-Defer-Length"
	hdrUploadMetadata = "Upload-Metadata"
	hdrUploadExpires  = "Upload-Expires"
	hdrUploadConcat   = "Upload-Concat"
)

// ByteCount reads a header holding a byte count or offset: a non-negative
// decimal integer, as tus requires. false when it is missing or malformed.
func ByteCount(h http.Header, name string) (int64, bool) {
	v := h.Get(name)
	if v == "" || len(v) > 19 || strings.TrimLeft(v, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		// Past int64: ParseInt gives its bound, which is no count.
		return 0, false
	}
	return n, true
}

// UploadPath returns the path of an upload URL as given in a Location
// header, an Upload-Concat list or a status request: absolute, or relative
// to base (the request it came with). false when it names no path.
func UploadPath(ref string, base *url.URL) (string, bool) {
	if ref == "" || len(ref) > maxUploadURL {
		return "", false
	}
	u, err := url.Parse(ref)
	if err != nil {
		return "", false
	}
	switch {
	case base != nil:
		u = base.ResolveReference(u)
	case strings.HasPrefix(u.Path, "/"):
		// Its dot segments resolved, as they are against a base: the
		// same upload URL names the same record, however it is spelled.
		u = u.ResolveReference(&url.URL{})
	}
	if !strings.HasPrefix(u.Path, "/") || u.Path == "/" {
		return "", false
	}
	return u.Path, true
}

// maxUploadURL bounds an upload URL the proxy reads.
const maxUploadURL = 2048

// Metadata is an upload's Upload-Metadata, decoded.
type Metadata map[string]string

// Bounds of the metadata kept with a record: it lives as long as the
// record, and a client chooses it.
const (
	maxMetadataPairs = 32
	maxMetadataBytes = 4 << 10
)

// ParseMetadata decodes an Upload-Metadata header: comma-separated pairs
// of a key and, after a space, its value in base64 (the value may be
// absent). Pairs that are malformed are skipped, and what lies past the
// bounds is dropped: metadata is shown, never relied on.
func ParseMetadata(v string) Metadata {
	if v == "" {
		return nil
	}
	md := Metadata{}
	size := 0
	for pair := range strings.SplitSeq(v, ",") {
		pair = strings.TrimSpace(pair)
		k, enc, _ := strings.Cut(pair, " ")
		if k == "" || strings.ContainsAny(k, " \t") {
			continue
		}
		val, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
		if err != nil {
			continue
		}
		size += len(k) + len(val)
		if len(md) >= maxMetadataPairs || size > maxMetadataBytes {
			break
		}
		md[k] = string(val)
	}
	if len(md) == 0 {
		return nil
	}
	return md
}

// size is about the memory md holds.
func (md Metadata) size() int64 {
	n := int64(48)
	for k, v := range md {
		n += int64(len(k)+len(v)) + 32
	}
	return n
}

// Concat is an Upload-Concat header: "partial", or "final;" and the upload
// URLs of the partial uploads, separated by spaces.
type Concat struct {
	Partial  bool
	Final    bool
	Partials []string // the paths of a final upload's partials
}

// maxPartials bounds the partial uploads of a final upload the proxy reads.
const maxPartials = 1024

// ParseConcat reads an Upload-Concat header; base resolves relative URLs.
// A final upload with a URL that names no path, or too many, has no
// Partials: its length is then unknown until an answer says it.
func ParseConcat(v string, base *url.URL) Concat {
	switch {
	case v == "partial":
		return Concat{Partial: true}
	case strings.HasPrefix(v, "final;"):
		c := Concat{Final: true}
		fields := strings.Fields(strings.TrimPrefix(v, "final;"))
		if len(fields) == 0 || len(fields) > maxPartials {
			return c
		}
		for _, f := range fields {
			p, ok := UploadPath(f, base)
			if !ok {
				return Concat{Final: true}
			}
			c.Partials = append(c.Partials, p)
		}
		return c
	}
	return Concat{}
}

// Expires reads an Upload-Expires header (an HTTP date); zero if missing
// or malformed.
func Expires(h http.Header) time.Time {
	v := h.Get(hdrUploadExpires)
	if v == "" {
		return time.Time{}
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
