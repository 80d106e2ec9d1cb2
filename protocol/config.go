package protocol

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Config holds the options every protocol has. Protocol modules embed it,
// so these options sit beside the protocol's own in its JSON object.
type Config struct {
	// The key uploads are tracked under, with placeholders. An unknown
	// placeholder is a configuration error; an upload whose key comes out
	// empty passes untracked. Default: the handler's key, or else the
	// protocol's own.
	Key string `json:"key,omitempty"`

	// The credential records are bound to, with placeholders. A record is
	// visible only to requests that carry the same credential; only an
	// HMAC of it is kept. Default: the handler's owner, or else the
	// protocol's own.
	Owner string `json:"owner,omitempty"`

	// Turns the owner check off for this protocol: any client can see any
	// upload by its key.
	DisableOwnerCheck bool `json:"disable_owner_check,omitempty"`

	// The path of the REST status endpoint. Default: the protocol's.
	// Protocols may share a path when all but one of them tell their
	// requests apart by their parameters.
	StatusPath string `json:"status_path,omitempty"`

	// The paths of the WebSocket status endpoint. Default: the protocol's.
	WebSocketPaths []string `json:"websocket_paths,omitempty"`
}

// Common implements Protocol.
func (c *Config) Common() *Config { return c }

// SetDefaults fills the endpoint paths a configuration leaves unset.
func (c *Config) SetDefaults(statusPath string, webSocketPaths ...string) {
	if c.StatusPath == "" {
		c.StatusPath = statusPath
	}
	if len(c.WebSocketPaths) == 0 {
		c.WebSocketPaths = webSocketPaths
	}
}

// UnmarshalOption reads the option d is at, if it is one of the common
// options: key, owner, status_path, websocket_path. It reports whether it
// was one.
func (c *Config) UnmarshalOption(d *caddyfile.Dispenser) (bool, error) {
	switch d.Val() {
	case "key":
		return true, OneArg(d, &c.Key)
	case "owner":
		var s string
		if err := OneArg(d, &s); err != nil {
			return true, err
		}
		if s == "off" {
			c.DisableOwnerCheck = true
		} else {
			c.Owner = s
		}
		return true, nil
	case "status_path":
		return true, OneArg(d, &c.StatusPath)
	case "websocket_path", "websocket_paths":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return true, d.ArgErr()
		}
		c.WebSocketPaths = append(c.WebSocketPaths, args...)
		return true, nil
	}
	return false, nil
}

// UnmarshalBlock reads `protocol <name> { … }` from d, positioned at the
// segment's first token: the common options, and the protocol's own through
// own, which reports false for an option it does not know.
func (c *Config) UnmarshalBlock(d *caddyfile.Dispenser, name string, own func(*caddyfile.Dispenser) (bool, error)) error {
	d.Next() // "protocol"
	if !d.NextArg() {
		return d.ArgErr()
	}
	if d.NextArg() {
		return d.Errf("a protocol block configures one protocol; name it alone: protocol %s { … }", name)
	}
	for d.NextBlock(0) {
		ok, err := c.UnmarshalOption(d)
		if !ok && own != nil {
			ok, err = own(d)
		}
		if err != nil {
			return err
		}
		if !ok {
			return d.Errf("unknown option %q for protocol %s", d.Val(), name)
		}
	}
	return nil
}

// OneArg reads exactly one argument into dst.
func OneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// DurationArg reads exactly one duration into dst.
func DurationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	var s string
	if err := OneArg(d, &s); err != nil {
		return err
	}
	v, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("bad duration %q: %v", s, err)
	}
	*dst = caddy.Duration(v)
	return nil
}
