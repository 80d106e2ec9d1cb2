package cli

import (
	"context"
	"net/http"
	"net/url"
	"testing"
)

// Each protocol asks its own endpoints, with the key and the credential
// where the protocol has them; --header goes on every request.
func TestRequests(t *testing.T) {
	server, _ := url.Parse("http://h:8080/base/")
	for _, tc := range []struct {
		protocol, key   string
		status, socket  string
		header, want    string // the credential's header and value
		tokenHeaderWant string // dstor's token header
	}{
		{"shard", "/a b.bin", "http://h:8080/base/progress?path=%2Fa+b.bin", "ws://h:8080/base/ws/progress?path=%2Fa+b.bin", "X-User-Api-Key", "K", ""},
		{"pcloud", "h1", "http://h:8080/base/uploadprogress?auth=K&progresshash=h1", "ws://h:8080/base/uploadprogress/ws?auth=K&progresshash=h1", "X-User-Api-Key", "", ""},
		{"nginx", "n1", "http://h:8080/base/progress?X-Progress-ID=n1", "", "X-User-Api-Key", "K", ""},
		{"tus", "http://h:8080/files/abc", "http://h:8080/base/tus/progress?upload=http%3A%2F%2Fh%3A8080%2Ffiles%2Fabc", "ws://h:8080/base/tus/progress/ws?upload=http%3A%2F%2Fh%3A8080%2Ffiles%2Fabc", "X-User-Api-Key", "K", ""},
		{"sandbox", "http://h:8080/v1/sandboxes/sb/uploads/up_1", "http://h:8080/base/v1/sandboxes/sb/uploads/up_1", "ws://h:8080/base/v1/sandboxes/sb/uploads/up_1/ws", "Authorization", "Bearer K", ""},
		{"dstor", "tok", "http://h:8080/base/v1/upload/get-status/", "ws://h:8080/base/v1/upload/get-status/ws", "Authorization", "K", "tok"},
	} {
		ad := newAdapters[tc.protocol](target{server: server, key: tc.key, apiKey: "K", headers: http.Header{"X-Extra": {"1"}}})
		req, err := ad.status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		sock, h := ad.socket()
		if req.URL.String() != tc.status || sock != tc.socket {
			t.Errorf("%s: asks %s and %s, want %s and %s", tc.protocol, req.URL, sock, tc.status, tc.socket)
		}
		for _, hh := range []http.Header{req.Header, h} {
			if hh == nil {
				continue
			}
			if hh.Get(tc.header) != tc.want || hh.Get("X-Extra") != "1" || hh.Get("X-Dstor-Upload-Token") != tc.tokenHeaderWant {
				t.Errorf("%s: headers %v, want %s: %q and X-Extra", tc.protocol, hh, tc.header, tc.want)
			}
		}
	}
}
