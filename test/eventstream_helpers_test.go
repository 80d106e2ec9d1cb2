package test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// watchTokenOf asks a status endpoint (url, with watch_token=1) for a
// watch token with the credential in hdr, failing the test unless the
// reply is 200 and has one; it returns the token and the reply.
func watchTokenOf(t testing.TB, client *http.Client, url string, hdr http.Header) (string, map[string]json.RawMessage) {
	t.Helper()
	code, b := getWith(t, client, url, hdr)
	var reply map[string]json.RawMessage
	var token string
	if json.Unmarshal([]byte(b), &reply) != nil || code != 200 || json.Unmarshal(reply["watch_token"], &token) != nil || token == "" {
		t.Fatalf("asking %s for a watch token: %d %s", url, code, b)
	}
	return token, reply
}

// getWith is a GET of url with hdr: the status and the body.
func getWith(t testing.TB, client *http.Client, url string, hdr http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// forged is a watch token with one character changed: the same length
// and alphabet, signed by nobody.
func forged(token string) string {
	i := len(token) / 2
	c := byte('A')
	if token[i] == 'A' {
		c = 'B'
	}
	return token[:i] + string(c) + token[i+1:]
}

// wsRefused dials a WebSocket that must be refused before the upgrade,
// and returns the refusal's status and body.
func wsRefused(t testing.TB, e *env, pathAndQuery string, hdr http.Header) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, resp, err := e.dialWS(ctx, pathAndQuery, hdr)
	if conn != nil {
		conn.CloseNow()
		t.Fatalf("%s: the handshake succeeded", pathAndQuery)
	}
	if resp == nil {
		t.Fatalf("%s: %v", pathAndQuery, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// wsFirst dials a WebSocket and returns its first message.
func wsFirst(t testing.TB, e *env, pathAndQuery string, hdr http.Header) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := e.dialWS(ctx, pathAndQuery, hdr)
	if err != nil {
		t.Fatalf("watching %s: %v", pathAndQuery, err)
	}
	defer conn.CloseNow()
	_, b, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("watching %s: %v", pathAndQuery, err)
	}
	conn.Close(websocket.StatusNormalClosure, "")
	return string(b)
}
