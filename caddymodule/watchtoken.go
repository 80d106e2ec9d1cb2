package caddymodule

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// A watch token lets a page that holds no credential it can send (a
// browser sets no header on a WebSocket or an EventSource) watch one
// upload: a status request with the credential and watch_token=1 gets one,
// and the watch endpoints and the REST status endpoint take it as the
// query parameter watch_token in place of the credential.
//
// The token is the base64url (unpadded) encoding of 73 bytes:
//
//	version (1) | expiry, Unix seconds, big endian (8) | owner (32) | MAC (32)
//
// where MAC is HMAC-SHA256, under the zone's signing key, of the version,
// the expiry, the owner, the protocol's name and a SHA-256 of the upload's
// key. The owner is already an HMAC of the credential, so the token
// reveals neither the credential nor the key; it is good for that owner's
// upload of that key, in that protocol, until it expires.
const (
	watchTokenParam   = "watch_token"
	watchTokenVersion = 1
	watchTokenRaw     = 1 + 8 + sha256.Size + sha256.Size
)

// watchTokenEncoding is strict: one token has one spelling.
var watchTokenEncoding = base64.RawURLEncoding.Strict()

// watchTokenLen is the length of a token as it appears in a URL.
var watchTokenLen = watchTokenEncoding.EncodedLen(watchTokenRaw)

// Why a watch token is refused. The messages name nothing of the token's
// contents: a forged token and one for another upload read the same.
var (
	errTokenMalformed = errors.New("watch_token is malformed")
	errTokenInvalid   = errors.New("watch_token is not valid for this upload")
	errTokenExpired   = errors.New("watch_token has expired; ask for a new one")
)

// watchToken is a parsed token, not yet checked.
type watchToken struct {
	expires int64
	owner   progress.Owner
	mac     [sha256.Size]byte
}

// parseWatchToken reads a token's fields. It checks only its form.
func parseWatchToken(s string) (watchToken, error) {
	var t watchToken
	if len(s) != watchTokenLen {
		return t, errTokenMalformed
	}
	var raw [watchTokenRaw]byte
	n, err := watchTokenEncoding.Decode(raw[:], []byte(s))
	if err != nil || n != watchTokenRaw || raw[0] != watchTokenVersion {
		return t, errTokenMalformed
	}
	t.expires = int64(binary.BigEndian.Uint64(raw[1:9]))
	copy(t.owner[:], raw[9:9+sha256.Size])
	copy(t.mac[:], raw[9+sha256.Size:])
	return t, nil
}

// watchTokenMAC signs what a token binds.
func watchTokenMAC(signingKey []byte, protocol string, owner progress.Owner, key string, expires int64) [sha256.Size]byte {
	keyHash := sha256.Sum256([]byte(key))
	m := hmac.New(sha256.New, signingKey)
	var head [9]byte
	head[0] = watchTokenVersion
	binary.BigEndian.PutUint64(head[1:], uint64(expires))
	m.Write(head[:])
	m.Write(owner[:])
	m.Write(keyHash[:])
	m.Write([]byte(protocol))
	var mac [sha256.Size]byte
	m.Sum(mac[:0])
	return mac
}

// signWatchToken makes a token for owner's upload of key in protocol,
// good until expires.
func signWatchToken(signingKey []byte, protocol string, owner progress.Owner, key string, expires time.Time) string {
	var raw [watchTokenRaw]byte
	raw[0] = watchTokenVersion
	exp := expires.Unix()
	binary.BigEndian.PutUint64(raw[1:9], uint64(exp))
	copy(raw[9:], owner[:])
	mac := watchTokenMAC(signingKey, protocol, owner, key, exp)
	copy(raw[9+sha256.Size:], mac[:])
	return watchTokenEncoding.EncodeToString(raw[:])
}

// verifyWatchToken returns the owner a token speaks for, if it was signed
// with signingKey for key in protocol and has not expired at now.
func verifyWatchToken(signingKey []byte, protocol, key, s string, now time.Time) (progress.Owner, error) {
	t, err := parseWatchToken(s)
	if err != nil {
		return progress.Owner{}, err
	}
	want := watchTokenMAC(signingKey, protocol, t.owner, key, t.expires)
	if !hmac.Equal(want[:], t.mac[:]) {
		return progress.Owner{}, errTokenInvalid
	}
	if now.Unix() >= t.expires {
		return progress.Owner{}, errTokenExpired
	}
	return t.owner, nil
}

// issueWatchToken makes a token for owner's upload of key in p, good for
// watch_token_ttl.
func (h *Handler) issueWatchToken(p *protocol, owner progress.Owner, key string) string {
	return signWatchToken(h.zone.signingKey(), p.name, owner, key, time.Now().Add(h.watchTokenTTL))
}

// acceptWatchToken returns the owner a token in place of the credential
// speaks for, or a 401 in the protocol's shape.
func (h *Handler) acceptWatchToken(p *protocol, key, token string) (progress.Owner, *progress.Failure) {
	owner, err := verifyWatchToken(h.zone.signingKey(), p.name, key, token, time.Now())
	if err != nil {
		return owner, &progress.Failure{Kind: progress.BadCredential, Message: err.Error()}
	}
	return owner, nil
}

// withWatchToken is a reply with a "watch_token" member added, where the
// reply is a JSON object; any other reply as it is.
func withWatchToken(body any, token string) any {
	b, err := json.Marshal(body)
	if err != nil {
		return body
	}
	if out := addWatchToken(b, token); out != nil {
		return json.RawMessage(out)
	}
	return body
}

// addWatchToken adds a "watch_token" member to a JSON object, or returns
// nil when b is no JSON object (or has the member already).
func addWatchToken(b []byte, token string) []byte {
	b = bytes.TrimSpace(b)
	var obj map[string]json.RawMessage
	if len(b) < 2 || b[0] != '{' || json.Unmarshal(b, &obj) != nil {
		return nil
	}
	if _, ok := obj[watchTokenParam]; ok {
		return nil
	}
	tok, _ := json.Marshal(token)
	out := make([]byte, 0, len(b)+len(tok)+16)
	out = append(out, b[:len(b)-1]...)
	if len(obj) > 0 {
		out = append(out, ',')
	}
	out = append(out, `"`+watchTokenParam+`":`...)
	out = append(out, tok...)
	return append(out, '}')
}
