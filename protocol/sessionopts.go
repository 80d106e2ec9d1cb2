package protocol

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// SessionOptions are the options of a protocol whose sessions live under
// the path prefix of an API (sandbox, dstor), and whose origin the proxy
// may ask about watched sessions. Protocol modules embed it, so these
// options sit beside the protocol's own in its JSON object.
type SessionOptions struct {
	// The path prefix of the API. Default: the protocol's.
	Prefix string `json:"prefix,omitempty"`

	// The origin's base URL (scheme and host, as reverse_proxy reaches
	// it), which the proxy asks how a watched session stands where the
	// origin moves it on its own (completing to completed, stages, expiry):
	// at most once a second per watched session, one request for all its
	// watchers, only while none of its requests passes through, with the
	// watcher's credential. Default: none; watchers then learn of those
	// moves only from requests that pass through the proxy.
	Origin string `json:"origin,omitempty"`

	// How long an unfinished session may see no request before the proxy
	// reports it expired, where the origin does not say it expires
	// sooner. Default: 24h.
	SessionTimeout caddy.Duration `json:"session_timeout,omitempty"`

	origin *Origin
}

// ProvisionSessions applies the defaults: defaultPrefix, and the idle
// time. asks is the path under the prefix at which the proxy asks the
// origin, for the error of an origin URL with a path of its own.
func (o *SessionOptions) ProvisionSessions(defaultPrefix, asks string) error {
	if o.Prefix == "" {
		o.Prefix = defaultPrefix
	}
	// Routes add their own slash; "/" leaves "", the API at the root.
	o.Prefix = strings.TrimSuffix(o.Prefix, "/")
	if o.SessionTimeout == 0 {
		o.SessionTimeout = caddy.Duration(progress.DefaultSessionIdle)
	}
	if o.Origin != "" {
		origin, err := NewOrigin(o.Origin, "the proxy asks "+o.Prefix+asks+" on it")
		if err != nil {
			return err
		}
		o.origin = origin
	}
	return nil
}

// ValidateSessions checks the options.
func (o *SessionOptions) ValidateSessions() error {
	if o.Prefix != "" && !strings.HasPrefix(o.Prefix, "/") {
		return fmt.Errorf("prefix %q must start with /", o.Prefix)
	}
	if o.SessionTimeout < 0 {
		return fmt.Errorf("session_timeout must not be negative")
	}
	return nil
}

// UnmarshalSessionOption reads the option d is at, if it is one of
// prefix, origin, session_timeout; it reports whether it was one.
func (o *SessionOptions) UnmarshalSessionOption(d *caddyfile.Dispenser) (bool, error) {
	switch d.Val() {
	case "prefix":
		return true, OneArg(d, &o.Prefix)
	case "origin":
		return true, OneArg(d, &o.Origin)
	case "session_timeout":
		return true, DurationArg(d, &o.SessionTimeout)
	}
	return false, nil
}

// AskedOrigin is the origin the proxy asks about watched sessions, nil
// when none is configured.
func (o *SessionOptions) AskedOrigin() *Origin { return o.origin }

// Idle is how long a session may see no request.
func (o *SessionOptions) Idle() time.Duration { return time.Duration(o.SessionTimeout) }

// CleanupSessions lets go of the origin's idle connections.
func (o *SessionOptions) CleanupSessions() { o.origin.Close() }
