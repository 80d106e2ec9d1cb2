package caddymodule

import (
	"math"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("upload_progress", parseCaddyfile)
	// After the auth directives, so they guard the status endpoints too, and
	// before handle/route/reverse_proxy, so the endpoints answer whatever
	// routes the site has and uploads are counted on their way to the proxy.
	httpcaddyfile.RegisterDirectiveOrder("upload_progress", httpcaddyfile.Before, "encode")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	upload_progress [<matcher>] {
//		protocol <name...>
//		protocol <name> {
//			key            <template>
//			owner          <template> | off
//			status_path    <path>
//			websocket_path <path...>
//			upload_path    <path>
//		}
//		zone            <name>
//		retain          <duration>
//		max_keys        <n>
//		max_watchers    <n>
//		max_watchers_per_key <n>
//		idle_timeout    <duration>
//		key             <template>
//		owner           <template> | off
//		origin_patterns <pattern...>
//		exists_probe    [<method>] <url> {
//			forward_headers <name...>
//			cache_for       <duration>
//			timeout         <duration>
//		}
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "protocol", "protocols":
			ps, err := unmarshalProtocols(d)
			if err != nil {
				return err
			}
			h.Protocols = append(h.Protocols, ps...)
		case "zone":
			if err := oneArg(d, &h.Zone); err != nil {
				return err
			}
		case "retain":
			if err := durationArg(d, &h.Retain); err != nil {
				return err
			}
		case "max_keys":
			if err := positiveArg(d, &h.MaxKeys); err != nil {
				return err
			}
		case "max_watchers":
			if err := positiveArg(d, &h.MaxWatchers); err != nil {
				return err
			}
		case "max_watchers_per_key":
			if err := positiveArg(d, &h.MaxWatchersPerKey); err != nil {
				return err
			}
		case "max_file_details":
			if err := sizeArg(d, &h.MaxFileDetails); err != nil {
				return err
			}
		case "idle_timeout":
			if err := durationArg(d, &h.IdleTimeout); err != nil {
				return err
			}
		case "update_interval":
			if err := intervalArg(d, &h.UpdateInterval); err != nil {
				return err
			}
		case "key_updates_per_second":
			if err := rateArg(d, &h.KeyUpdatesPerSecond); err != nil {
				return err
			}
		case "ping_interval":
			if err := durationArg(d, &h.PingInterval); err != nil {
				return err
			}
		case "watcher_timeout":
			if err := durationArg(d, &h.WatcherTimeout); err != nil {
				return err
			}
		case "key":
			if err := oneArg(d, &h.Key); err != nil {
				return err
			}
		case "owner":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			if s == "off" {
				h.DisableOwnerCheck = true
			} else {
				h.Owner = s
			}
		case "origin_patterns":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			h.OriginPatterns = append(h.OriginPatterns, args...)
		case "exists_probe":
			p, err := unmarshalExistsProbe(d)
			if err != nil {
				return err
			}
			h.ExistsProbe = p
		default:
			return d.Errf("unknown upload_progress option %q", d.Val())
		}
	}
	return nil
}

// unmarshalProtocols reads `protocol <name...>`, or `protocol <name> { … }`.
func unmarshalProtocols(d *caddyfile.Dispenser) ([]ProtocolConfig, error) {
	names := d.RemainingArgs()
	if len(names) == 0 {
		return nil, d.ArgErr()
	}
	ps := make([]ProtocolConfig, len(names))
	for i, n := range names {
		ps[i].Name = n
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if len(ps) != 1 {
			return nil, d.Errf("a protocol block configures one protocol; name it alone: protocol %s { … }", names[0])
		}
		p := &ps[0]
		switch d.Val() {
		case "key":
			if err := oneArg(d, &p.Key); err != nil {
				return nil, err
			}
		case "owner":
			var s string
			if err := oneArg(d, &s); err != nil {
				return nil, err
			}
			if s == "off" {
				p.DisableOwnerCheck = true
			} else {
				p.Owner = s
			}
		case "status_path":
			if err := oneArg(d, &p.StatusPath); err != nil {
				return nil, err
			}
		case "upload_path":
			if err := oneArg(d, &p.UploadPath); err != nil {
				return nil, err
			}
		case "websocket_path", "websocket_paths":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			p.WebSocketPaths = append(p.WebSocketPaths, args...)
		default:
			return nil, d.Errf("unknown option %q for protocol %s", d.Val(), p.Name)
		}
	}
	return ps, nil
}

func unmarshalExistsProbe(d *caddyfile.Dispenser) (*ExistsProbe, error) {
	p := new(ExistsProbe)
	switch args := d.RemainingArgs(); len(args) {
	case 1:
		p.URL = args[0]
	case 2:
		p.Method, p.URL = args[0], args[1]
	default:
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "forward_headers":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			p.ForwardHeaders = append(p.ForwardHeaders, args...)
		case "cache_for":
			if err := durationArg(d, &p.CacheFor); err != nil {
				return nil, err
			}
		case "timeout":
			if err := durationArg(d, &p.Timeout); err != nil {
				return nil, err
			}
		default:
			return nil, d.Errf("unknown exists_probe option %q", d.Val())
		}
	}
	return p, nil
}

// oneArg reads exactly one argument into dst.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// parsedArg reads exactly one argument into dst through parse; want says
// what the argument must be, for the error.
func parsedArg[T any](d *caddyfile.Dispenser, dst *T, want string, parse func(string) (T, bool)) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, ok := parse(s)
	if !ok {
		return d.Errf("%s must be %s, not %q", name, want, s)
	}
	*dst = v
	return nil
}

// positiveArg reads exactly one positive whole number into dst.
func positiveArg(d *caddyfile.Dispenser, dst *int) error {
	return parsedArg(d, dst, "a positive whole number", parsePositive)
}

// rateArg reads a positive whole number, or off (-1: no bound), into dst.
func rateArg(d *caddyfile.Dispenser, dst *int) error {
	return parsedArg(d, dst, "a positive whole number or off", func(s string) (int, bool) {
		if s == "off" {
			return -1, true
		}
		return parsePositive(s)
	})
}

// sizeArg reads a size in bytes (64MiB, 100MB, 1048576), as Caddy's own
// size options take it, into dst.
func sizeArg(d *caddyfile.Dispenser, dst *int64) error {
	return parsedArg(d, dst, "a size such as 64MiB", func(s string) (int64, bool) {
		n, err := humanize.ParseBytes(s)
		return int64(n), err == nil && n >= 1 && n <= math.MaxInt64
	})
}

func parsePositive(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 1
}

// durationArg reads exactly one duration into dst.
func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	return parseDuration(d, s, dst)
}

// parseDuration parses s into dst, with the error at d's position.
func parseDuration(d *caddyfile.Dispenser, s string, dst *caddy.Duration) error {
	v, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("bad duration %q: %v", s, err)
	}
	*dst = caddy.Duration(v)
	return nil
}

// intervalArg reads a duration into dst, or `off`, which is stored as a
// negative duration.
func intervalArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	if s == "off" {
		*dst = -1
		return nil
	}
	return parseDuration(d, s, dst)
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)
