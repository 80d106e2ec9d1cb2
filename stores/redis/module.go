package redisstore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

func init() {
	caddy.RegisterModule(Redis{})
}

// Redis keeps a zone's records in Redis 7 or Valkey, so that every proxy
// naming the same server (or cluster), secret and zone answers for the
// uploads of all of them.
type Redis struct {
	// The server: `host:port` or a `redis://` / `rediss://` URL. Several
	// addresses are the seeds of a Redis Cluster. Default: `127.0.0.1:6379`.
	Address []string `json:"address,omitempty"`
	// Username and password (ACL), if the server wants them. Placeholders
	// such as {env.REDIS_PASSWORD} are replaced when the config loads.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// The key owners' credentials are hashed under (HMAC-SHA256), the same
	// on every proxy: required, at least 16 bytes. Only the hashes reach
	// Redis. Placeholders are replaced when the config loads.
	Secret string `json:"secret,omitempty"`
	// How often each proxy writes the state of the uploads it carries.
	// A status change is written at once. Default: 100ms.
	FlushInterval caddy.Duration `json:"flush_interval,omitempty"`
	// How long an upload's record stays true without its proxy renewing
	// it; past it, every proxy reports the upload failed ("proxy node
	// went away"). Default: 10s.
	Lease caddy.Duration `json:"lease,omitempty"`
	// How long a status request waits for Redis before it is answered
	// 503. Default: 1s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// The prefix of the keys and channel. Default: `upload_progress`.
	Prefix string `json:"prefix,omitempty"`

	password, secret string
}

var (
	_ protocol.Store        = (*Redis)(nil)
	_ caddy.Provisioner     = (*Redis)(nil)
	_ caddy.Validator       = (*Redis)(nil)
	_ caddyfile.Unmarshaler = (*Redis)(nil)
)

// minSecret is the shortest secret taken: shorter ones can be guessed.
const minSecret = 16

// CaddyModule implements caddy.Module.
func (Redis) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  protocol.StoreNamespace + ".redis",
		New: func() caddy.Module { return new(Redis) },
	}
}

// Provision implements caddy.Provisioner.
func (r *Redis) Provision(caddy.Context) error {
	repl := caddy.NewReplacer()
	if len(r.Address) == 0 {
		r.Address = []string{"127.0.0.1:6379"}
	}
	if r.Prefix == "" {
		r.Prefix = "upload_progress"
	}
	r.password = repl.ReplaceKnown(r.Password, "")
	r.secret = repl.ReplaceKnown(r.Secret, "")
	return nil
}

// Validate implements caddy.Validator.
func (r *Redis) Validate() error {
	switch {
	case r.secret == "":
		return fmt.Errorf("store redis: secret is required: the key owners are hashed under, the same on every proxy sharing the store (e.g. secret {env.UPLOAD_PROGRESS_SECRET})")
	case len(r.secret) < minSecret:
		return fmt.Errorf("store redis: secret must be at least %d bytes", minSecret)
	case r.FlushInterval < 0 || r.Lease < 0 || r.Timeout < 0:
		return fmt.Errorf("store redis: flush_interval, lease and timeout must not be negative")
	case r.Lease > 0 && r.FlushInterval > 0 && r.Lease < 3*r.FlushInterval:
		return fmt.Errorf("store redis: lease must be at least three flush_intervals, or live uploads would lapse between writes")
	case strings.ContainsAny(r.Prefix, "{}"):
		return fmt.Errorf("store redis: prefix must not contain { or }")
	}
	if len(r.Address) > 1 {
		for _, a := range r.Address {
			if strings.Contains(a, "://") {
				return fmt.Errorf("store redis: the addresses of a cluster are host:port, not URLs (%s)", a)
			}
		}
	}
	_, err := r.options()
	return err
}

// options are the client's settings.
func (r *Redis) options() (*redis.UniversalOptions, error) {
	timeout := time.Duration(r.Timeout)
	if timeout <= 0 {
		timeout = progress.DefaultReadTimeout
	}
	o := &redis.UniversalOptions{
		Addrs:           r.Address,
		Username:        r.Username,
		Password:        r.password,
		DialTimeout:     timeout,
		ReadTimeout:     timeout,
		WriteTimeout:    timeout,
		MaxRetries:      1,
		DisableIdentity: true,
	}
	if len(r.Address) == 1 && strings.Contains(r.Address[0], "://") {
		u, err := redis.ParseURL(r.Address[0])
		if err != nil {
			return nil, fmt.Errorf("store redis: address: %v", err)
		}
		o.Addrs = []string{u.Addr}
		o.DB = u.DB
		o.TLSConfig = u.TLSConfig
		o.Username = cmpOr(r.Username, u.Username)
		o.Password = cmpOr(r.password, u.Password)
	}
	return o, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Open implements protocol.Store. Several addresses make a cluster client;
// go-redis dials lazily, so a server down at start is no config error:
// the zone starts unavailable and recovers when it is up.
func (r *Redis) Open(zone string) (progress.Store, error) {
	o, err := r.options()
	if err != nil {
		return nil, err
	}
	var c redis.UniversalClient
	if len(r.Address) > 1 {
		c = redis.NewClusterClient(o.Cluster())
	} else {
		c = redis.NewClient(o.Simple())
	}
	return New(c, r.Prefix, zone), nil
}

// OwnerSecret implements protocol.Store.
func (r *Redis) OwnerSecret() []byte { return []byte(r.secret) }

// Shared implements protocol.Store.
func (r *Redis) Shared() progress.SharedOptions {
	return progress.SharedOptions{
		FlushInterval: time.Duration(r.FlushInterval),
		Lease:         time.Duration(r.Lease),
		ReadTimeout:   time.Duration(r.Timeout),
	}
}

// Identity implements protocol.Store: the settings, with the secrets
// hashed.
func (r *Redis) Identity() string {
	sum := sha256.Sum256([]byte(r.Username + "\x00" + r.password + "\x00" + r.secret))
	return fmt.Sprintf("redis %s prefix=%s flush=%v lease=%v timeout=%v auth=%s",
		strings.Join(r.Address, ","), r.Prefix, time.Duration(r.FlushInterval), time.Duration(r.Lease),
		time.Duration(r.Timeout), hex.EncodeToString(sum[:6]))
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens:
//
//	store redis {
//		address        <host:port | redis://…>...
//		username       <name>
//		password       <password>
//		secret         <secret>
//		flush_interval <duration>
//		lease          <duration>
//		timeout        <duration>
//		prefix         <prefix>
//	}
func (r *Redis) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the store's name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "address":
			r.Address = append(r.Address, d.RemainingArgs()...)
			if len(r.Address) == 0 {
				return d.ArgErr()
			}
		case "username", "password", "secret", "prefix":
			if !d.NextArg() {
				return d.ArgErr()
			}
			v := d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			switch opt {
			case "username":
				r.Username = v
			case "password":
				r.Password = v
			case "secret":
				r.Secret = v
			default:
				r.Prefix = v
			}
		case "flush_interval", "lease", "timeout":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("%s: %v", opt, err)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			switch opt {
			case "flush_interval":
				r.FlushInterval = caddy.Duration(dur)
			case "lease":
				r.Lease = caddy.Duration(dur)
			default:
				r.Timeout = caddy.Duration(dur)
			}
		default:
			return d.Errf("unknown store redis option %q", opt)
		}
	}
	return nil
}
