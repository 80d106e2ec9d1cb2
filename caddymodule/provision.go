package caddymodule

import (
	"cmp"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// Defaults of the handler's configuration.
const (
	defaultZone     = "default"
	defaultProtocol = "shard"

	defaultUpdateInterval      = 250 * time.Millisecond
	defaultKeyUpdatesPerSecond = 250
	defaultPingInterval        = 30 * time.Second
	defaultWatcherTimeout      = 10 * time.Second
)

// Provision sets defaults, resolves the protocols and joins the zone.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.Zone == "" {
		h.Zone = defaultZone
	}
	if len(h.Protocols) == 0 {
		h.Protocols = []ProtocolConfig{{Name: defaultProtocol}}
	}
	h.pace = progress.Pace{
		Interval: orDefault(h.UpdateInterval, defaultUpdateInterval),
		KeyRate:  cmp.Or(h.KeyUpdatesPerSecond, defaultKeyUpdatesPerSecond),
	}
	h.pingInterval = orDefault(h.PingInterval, defaultPingInterval)
	h.watcherTimeout = orDefault(h.WatcherTimeout, defaultWatcherTimeout)
	h.protocols, h.endpoints = nil, nil
	for _, cfg := range h.Protocols {
		p, err := h.resolve(cfg)
		if err != nil {
			return fmt.Errorf("protocol %s: %v", cfg.Name, err)
		}
		h.protocols = append(h.protocols, p)
	}
	markSharedPaths(h.protocols)
	h.endpoints = slices.Clone(h.protocols)
	slices.SortStableFunc(h.endpoints, func(a, b *protocol) int {
		return boolInt(a.claims == nil) - boolInt(b.claims == nil)
	})

	if h.ExistsProbe != nil {
		if err := h.ExistsProbe.provision(); err != nil {
			return fmt.Errorf("exists_probe: %v", err)
		}
	}

	z, err := loadZone(h.Zone, progress.Options{
		Retain:            time.Duration(h.Retain),
		MaxKeys:           h.MaxKeys,
		MaxWatchers:       h.MaxWatchers,
		MaxWatchersPerKey: h.MaxWatchersPerKey,
		IdleTimeout:       time.Duration(h.IdleTimeout),
		MaxFileDetails:    h.MaxFileDetails,
	})
	if err != nil {
		return err
	}
	h.zone = z
	return registerMetrics(ctx.GetMetricsRegistry())
}

// resolve applies the handler's and the protocol's settings to its kind.
func (h *Handler) resolve(cfg ProtocolConfig) (*protocol, error) {
	kind, ok := protocolKinds[cfg.Name]
	if !ok {
		return nil, fmt.Errorf("unknown protocol %q (known: %s)", cfg.Name, strings.Join(knownProtocolNames(), ", "))
	}
	p := &protocol{
		protocolKind:    kind,
		keyTemplate:     firstNonEmpty(cfg.Key, h.Key),
		ownerTemplate:   firstNonEmpty(cfg.Owner, h.Owner),
		statusPath:      firstNonEmpty(cfg.StatusPath, kind.statusPath),
		uploadPath:      firstNonEmpty(cfg.UploadPath, kind.uploadPath),
		webSocketPaths:  kind.webSocketPaths,
		credentialLabel: kind.credentialName,
		metrics:         newUploadMetrics(h.Zone, kind.name),
	}
	if cfg.UploadPath != "" && kind.uploadPath == "" {
		return nil, fmt.Errorf("upload_path: the %s protocol tracks uploads to any path", kind.name)
	}
	if p.uploadPath != "" && !strings.HasPrefix(p.uploadPath, "/") {
		return nil, fmt.Errorf("upload_path %q must start with /", p.uploadPath)
	}
	if len(cfg.WebSocketPaths) > 0 {
		p.webSocketPaths = cfg.WebSocketPaths
	}
	p.ownerless = h.DisableOwnerCheck || cfg.DisableOwnerCheck || (p.ownerTemplate == "" && kind.credential == nil)
	if p.keyTemplate != "" {
		if err := checkTemplate(p.keyTemplate); err != nil {
			return nil, fmt.Errorf("key: %v", err)
		}
	}
	if p.ownerTemplate != "" && !p.ownerless {
		if err := checkTemplate(p.ownerTemplate); err != nil {
			return nil, fmt.Errorf("owner: %v", err)
		}
		p.credentialLabel = "credential"
	}
	return p, nil
}

// markSharedPaths marks the protocols that share an endpoint path with
// another one.
func markSharedPaths(ps []*protocol) {
	owners := map[string][]*protocol{}
	for _, p := range ps {
		for _, path := range append([]string{p.statusPath}, p.webSocketPaths...) {
			owners[path] = append(owners[path], p)
		}
	}
	for _, sharing := range owners {
		if len(sharing) > 1 {
			for _, p := range sharing {
				p.shared = true
			}
		}
	}
}

// Validate checks the configuration for values that cannot work.
func (h *Handler) Validate() error {
	if h.Retain < 0 {
		return fmt.Errorf("retain must not be negative")
	}
	for name, v := range map[string]int{"max_keys": h.MaxKeys, "max_watchers": h.MaxWatchers, "max_watchers_per_key": h.MaxWatchersPerKey} {
		if v < 0 {
			return fmt.Errorf("%s must not be negative", name)
		}
	}
	if h.MaxFileDetails < 0 {
		return fmt.Errorf("max_file_details must not be negative")
	}
	for name, v := range map[string]caddy.Duration{"idle_timeout": h.IdleTimeout, "ping_interval": h.PingInterval, "watcher_timeout": h.WatcherTimeout} {
		if v < 0 {
			return fmt.Errorf("%s must not be negative", name)
		}
	}
	seen := map[string]*protocol{}
	for _, p := range h.protocols {
		paths := append([]string{p.statusPath}, p.webSocketPaths...)
		for i, path := range paths {
			if !strings.HasPrefix(path, "/") {
				return fmt.Errorf("protocol %s: endpoint path %q must start with /", p.name, path)
			}
			if slices.Contains(paths[:i], path) {
				return fmt.Errorf("protocol %s: endpoint path %q is used twice", p.name, path)
			}
			// Two protocols may share a path only if one of them tells its
			// requests apart by their parameters.
			if other := seen[path]; other != nil && other != p && other.claims == nil && p.claims == nil {
				return fmt.Errorf("protocols %s and %s both answer %s", other.name, p.name, path)
			}
			seen[path] = p
		}
	}
	return nil
}

// orDefault is d, or def when d is not set.
func orDefault(d caddy.Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// Cleanup lets go of the zone; the last handler to do so closes it.
func (h *Handler) Cleanup() error {
	if h.zone == nil {
		return nil
	}
	_, err := zones.Delete(h.Zone)
	return err
}

// requestTimePlaceholders are prefixes of placeholders that Caddy sets
// only while it handles a request (authentication, matchers, vars, the
// original request), so they cannot be resolved when the config loads.
var requestTimePlaceholders = []string{
	"http.auth.", "http.regexp.", "http.vars.", "http.matchers.", "http.error",
	"http.request.orig_", "http.reverse_proxy.", "http.handlers.", "vars.",
}

// checkTemplate refuses a template that is empty, has no placeholder, or
// names a placeholder Caddy does not know, so that a typo such as
// {http.request.heder.X} is a configuration error rather than every upload
// sharing the key "".
func checkTemplate(tpl string) error {
	if strings.TrimSpace(tpl) == "" {
		return fmt.Errorf("must not be empty")
	}
	names := placeholders(tpl)
	if len(names) == 0 {
		return fmt.Errorf("%q has no placeholder, so every request would share it", tpl)
	}
	for _, name := range names {
		if slices.ContainsFunc(requestTimePlaceholders, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		if err := resolvable(name); err != nil {
			return fmt.Errorf("%q: %v", tpl, err)
		}
	}
	return nil
}

// placeholders lists the names of the {placeholders} in tpl; \{ escapes.
func placeholders(tpl string) []string {
	var names []string
	for i := 0; i < len(tpl); i++ {
		switch tpl[i] {
		case '\\':
			i++
		case '{':
			end := strings.IndexByte(tpl[i:], '}')
			if end < 0 {
				return names
			}
			names = append(names, tpl[i+1:i+end])
			i += end
		}
	}
	return names
}

// resolvable reports whether Caddy knows the placeholder name, by resolving
// it against a stand-in request.
func resolvable(name string) (err error) {
	defer func() {
		// Some request placeholders need state a stand-in request lacks;
		// Caddy knows them, so they are fine.
		if recover() != nil {
			err = nil
		}
	}()
	req := httptest.NewRequest("GET", "/", nil)
	repl := caddyhttp.NewTestReplacer(req)
	_, err = repl.ReplaceOrErr("{"+name+"}", false, true)
	return err
}

func knownProtocolNames() []string {
	names := make([]string, 0, len(protocolKinds))
	for n := range protocolKinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
