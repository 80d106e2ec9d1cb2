package caddymodule

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	protocolapi "github.com/caddy-upload-progress/caddy-upload-progress/protocol"
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
//			<the protocol's own options>
//		}
//		zone                   <name>
//		store <name> {
//			<the store's own options>
//		}
//		retain                 <duration>
//		max_keys               <n>
//		max_watchers           <n>
//		max_watchers_per_key   <n>
//		max_file_details       <size>
//		idle_timeout           <duration>
//		update_interval        <duration> | off
//		key_updates_per_second <n> | off
//		ping_interval          <duration>
//		watcher_timeout        <duration>
//		watch_token_ttl        <duration>
//		key                    <template>
//		owner                  <template> | off
//		origin_patterns        <pattern...>
//		client_path            <path>
//	}
//
// The protocols' own options: pcloud's `upload_path <path>`, shard's
// `exists_probe [<method>] <url> { forward_headers <header...>;
// cache_for <duration>; timeout <duration> }`.
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
			h.ProtocolsRaw = append(h.ProtocolsRaw, ps...)
		case "zone":
			if err := protocolapi.OneArg(d, &h.Zone); err != nil {
				return err
			}
		case "store":
			raw, err := unmarshalStore(d)
			if err != nil {
				return err
			}
			h.StoreRaw = raw
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
		case "watch_token_ttl":
			if err := durationArg(d, &h.WatchTokenTTL); err != nil {
				return err
			}
		case "key":
			if err := protocolapi.OneArg(d, &h.Key); err != nil {
				return err
			}
		case "owner":
			var s string
			if err := protocolapi.OneArg(d, &s); err != nil {
				return err
			}
			if s == "off" {
				h.DisableOwnerCheck = true
			} else {
				h.Owner = s
			}
		case "client_path":
			if err := protocolapi.OneArg(d, &h.ClientPath); err != nil {
				return err
			}
		case "origin_patterns":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			h.OriginPatterns = append(h.OriginPatterns, args...)
		case "exists_probe":
			return d.Errf("exists_probe is an option of protocol shard: protocol shard { exists_probe … }")
		default:
			return d.Errf("unknown upload_progress option %q", d.Val())
		}
	}
	return nil
}

// unmarshalProtocols reads `protocol <name...>`, or `protocol <name> { … }`,
// whose block the protocol's module reads itself.
func unmarshalProtocols(d *caddyfile.Dispenser) ([]json.RawMessage, error) {
	seg := d.NextSegment()
	sd := caddyfile.NewDispenser(seg)
	sd.Next()
	names := sd.RemainingArgs()
	if len(names) == 0 {
		return nil, d.ArgErr()
	}
	hasBlock := len(seg) > 1+len(names)
	if hasBlock && len(names) > 1 {
		return nil, sd.Errf("a protocol block configures one protocol; name it alone: protocol %s { … }", names[0])
	}
	raws := make([]json.RawMessage, 0, len(names))
	for _, name := range names {
		mod, err := caddy.GetModule(protocolapi.Namespace + "." + name)
		if err != nil {
			return nil, sd.Errf("unknown protocol %q (known: %s)", name, strings.Join(knownProtocolNames(), ", "))
		}
		inst := mod.New()
		if hasBlock {
			unm, ok := inst.(caddyfile.Unmarshaler)
			if !ok {
				return nil, sd.Errf("protocol %s has no options", name)
			}
			if err := unm.UnmarshalCaddyfile(caddyfile.NewDispenser(seg)); err != nil {
				return nil, err
			}
		}
		raws = append(raws, caddyconfig.JSONModuleObject(inst, "name", name, nil))
	}
	return raws, nil
}

// unmarshalStore reads `store <name> { … }`, whose block the store's module
// reads itself.
func unmarshalStore(d *caddyfile.Dispenser) (json.RawMessage, error) {
	seg := d.NextSegment()
	sd := caddyfile.NewDispenser(seg)
	sd.Next()
	if !sd.NextArg() {
		return nil, sd.ArgErr()
	}
	name := sd.Val()
	if sd.NextArg() {
		return nil, sd.ArgErr()
	}
	mod, err := caddy.GetModule(protocolapi.StoreNamespace + "." + name)
	if err != nil {
		return nil, sd.Errf("unknown store %q (known: %s)", name, strings.Join(knownStoreNames(), ", "))
	}
	inst := mod.New()
	if unm, ok := inst.(caddyfile.Unmarshaler); ok {
		// From the store's name on, as Caddy hands a guest module its block.
		if err := unm.UnmarshalCaddyfile(caddyfile.NewDispenser(seg[1:])); err != nil {
			return nil, err
		}
	}
	return caddyconfig.JSONModuleObject(inst, "name", name, nil), nil
}

// parsedArg reads exactly one argument into dst through parse; want says
// what the argument must be, for the error.
func parsedArg[T any](d *caddyfile.Dispenser, dst *T, want string, parse func(string) (T, bool)) error {
	name := d.Val()
	var s string
	if err := protocolapi.OneArg(d, &s); err != nil {
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
	return protocolapi.DurationArg(d, dst)
}

// intervalArg reads a duration into dst, or `off`, which is stored as a
// negative duration.
func intervalArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	var s string
	if err := protocolapi.OneArg(d, &s); err != nil {
		return err
	}
	if s == "off" {
		*dst = -1
		return nil
	}
	v, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("bad duration %q: %v", s, err)
	}
	*dst = caddy.Duration(v)
	return nil
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)
