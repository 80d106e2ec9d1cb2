package caddymodule

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	protocolapi "github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// Defaults of the handler's configuration.
const (
	defaultZone     = "default"
	defaultProtocol = "shard"

	defaultUpdateInterval      = 250 * time.Millisecond
	defaultKeyUpdatesPerSecond = 250
	defaultPingInterval        = 30 * time.Second
	defaultWatcherTimeout      = 10 * time.Second
	defaultWatchTokenTTL       = 10 * time.Minute
)

// Provision sets defaults, loads the protocols, checks the whole
// configuration and only then joins the zone, so that a configuration that
// is refused changes nothing that is live.
func (h *Handler) Provision(ctx caddy.Context) error {
	// The collectors first: Caddy serves /metrics from this config's
	// registry as soon as it starts to load, even if the load then fails.
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	h.logger = ctx.Logger()
	h.warnings = &warnings{logger: h.logger}
	h.refreshes = new(refreshes)
	if h.Zone == "" {
		h.Zone = defaultZone
	}
	h.pace = progress.Pace{
		Interval: orDefault(h.UpdateInterval, defaultUpdateInterval),
		KeyRate:  cmp.Or(h.KeyUpdatesPerSecond, defaultKeyUpdatesPerSecond),
	}
	h.pingInterval = orDefault(h.PingInterval, defaultPingInterval)
	h.watcherTimeout = orDefault(h.WatcherTimeout, defaultWatcherTimeout)
	h.pinger = &pinger{every: h.pingInterval, timeout: h.watcherTimeout}
	h.frames = new(frameCache)
	h.feeds = new(feeds)
	h.watchTokenTTL = orDefault(h.WatchTokenTTL, defaultWatchTokenTTL)
	if err := h.loadProtocols(ctx); err != nil {
		return err
	}
	if err := h.Validate(); err != nil {
		return err
	}
	var store protocolapi.Store
	if h.StoreRaw != nil {
		mod, err := ctx.LoadModule(h, "StoreRaw")
		if err != nil {
			return fmt.Errorf("loading store: %v", err)
		}
		s, ok := mod.(protocolapi.Store)
		if !ok {
			return fmt.Errorf("store: module %T is not a progress store", mod)
		}
		store = s
	}

	z, err := loadZone(h.Zone, store, progress.Options{
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
	return nil
}

// loadProtocols loads the protocol modules and applies the handler's
// settings to them.
func (h *Handler) loadProtocols(ctx caddy.Context) error {
	if len(h.ProtocolsRaw) == 0 {
		h.ProtocolsRaw = []json.RawMessage{json.RawMessage(`{"name":"` + defaultProtocol + `"}`)}
	}
	names, err := protocolNames(h.ProtocolsRaw)
	if err != nil {
		return err
	}
	for _, tpl := range []struct{ option, value string }{{"key", h.Key}, {"owner", h.Owner}} {
		if tpl.value == "" || tpl.option == "owner" && h.DisableOwnerCheck {
			continue
		}
		if err := checkTemplate(tpl.value); err != nil {
			return fmt.Errorf("%s: %v", tpl.option, err)
		}
	}
	mods, err := ctx.LoadModule(h, "ProtocolsRaw")
	if err != nil {
		return fmt.Errorf("loading protocols: %v", err)
	}
	h.protocols, h.endpoints = nil, nil
	for i, m := range mods.([]any) {
		mod, ok := m.(protocolapi.Protocol)
		if !ok {
			return fmt.Errorf("protocol %s: module %T is not a progress protocol", names[i], m)
		}
		p, err := h.resolve(names[i], mod)
		if err != nil {
			return fmt.Errorf("protocol %s: %v", names[i], err)
		}
		h.protocols = append(h.protocols, p)
	}
	markSharedPaths(h.protocols)
	h.endpoints = slices.Clone(h.protocols)
	slices.SortStableFunc(h.endpoints, func(a, b *protocol) int {
		return boolInt(a.claimer == nil) - boolInt(b.claimer == nil)
	})
	return nil
}

// protocolNames reads the names of the configured protocols, refusing an
// unknown one.
func protocolNames(raws []json.RawMessage) ([]string, error) {
	names := make([]string, len(raws))
	for i, raw := range raws {
		var v struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("protocols: %v", err)
		}
		if _, err := caddy.GetModule(protocolapi.Namespace + "." + v.Name); err != nil || v.Name == "" {
			return nil, fmt.Errorf("unknown protocol %q (known: %s)", v.Name, strings.Join(knownProtocolNames(), ", "))
		}
		names[i] = v.Name
	}
	return names, nil
}

// resolve applies the handler's settings to a loaded protocol.
func (h *Handler) resolve(name string, mod protocolapi.Protocol) (*protocol, error) {
	c := mod.Common()
	p := bind(name, mod)
	p.keyTemplate = firstNonEmpty(c.Key, h.Key)
	if p.sessions != nil {
		if c.Key != "" {
			return nil, fmt.Errorf("key: %s names its sessions itself (from its requests and answers); remove the key option", name)
		}
		p.keyTemplate = ""
	}
	p.ownerTemplate = firstNonEmpty(c.Owner, h.Owner)
	p.statusPath = c.StatusPath
	p.webSocketPaths = c.WebSocketPaths
	p.metrics = newUploadMetrics(h.Zone, name)
	p.ownerless = h.DisableOwnerCheck || c.DisableOwnerCheck || (p.ownerTemplate == "" && p.owned == nil)
	if c.Key != "" {
		if err := checkTemplate(c.Key); err != nil {
			return nil, fmt.Errorf("key: %v", err)
		}
	}
	if p.ownerless {
		return p, nil
	}
	if c.Owner != "" {
		if err := checkTemplate(c.Owner); err != nil {
			return nil, fmt.Errorf("owner: %v", err)
		}
	}
	if p.ownerTemplate != "" {
		p.credentialLabel = "credential"
	} else {
		p.credentialLabel = p.owned.CredentialName()
	}
	return p, nil
}

// endpointPaths lists p's fixed endpoint paths: its REST status path, if it
// has one (a protocol whose status route is the origin's overlaid answer
// has none), and its WebSocket paths.
func (p *protocol) endpointPaths() []string {
	var paths []string
	if p.statusPath != "" {
		paths = append(paths, p.statusPath)
	}
	return append(paths, p.webSocketPaths...)
}

// markSharedPaths marks the protocols that share an endpoint path with
// another one.
func markSharedPaths(ps []*protocol) {
	owners := map[string][]*protocol{}
	for _, p := range ps {
		for _, path := range p.endpointPaths() {
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

// Validate checks the configuration for values that cannot work. Provision
// runs it before joining the zone.
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
	for name, v := range map[string]caddy.Duration{"idle_timeout": h.IdleTimeout, "ping_interval": h.PingInterval, "watcher_timeout": h.WatcherTimeout, "watch_token_ttl": h.WatchTokenTTL} {
		if v < 0 {
			return fmt.Errorf("%s must not be negative", name)
		}
	}
	if h.ClientPath != "" && !strings.HasPrefix(h.ClientPath, "/") {
		return fmt.Errorf("client_path %q must start with /", h.ClientPath)
	}
	seen := map[string]*protocol{}
	for _, p := range h.protocols {
		for i, path := range p.endpointPaths() {
			if !strings.HasPrefix(path, "/") {
				return fmt.Errorf("protocol %s: endpoint path %q must start with /", p.name, path)
			}
			if slices.Contains(p.endpointPaths()[:i], path) {
				return fmt.Errorf("protocol %s: endpoint path %q is used twice", p.name, path)
			}
			// Two protocols may share a path only if one of them tells its
			// requests apart by their parameters.
			if other := seen[path]; other != nil && other != p && other.claimer == nil && p.claimer == nil {
				if other.name == p.name {
					return fmt.Errorf("protocol %s is listed twice and both answer %s; list it once, or give the second its own status_path and websocket_path", p.name, path)
				}
				return fmt.Errorf("protocols %s and %s both answer %s; give one of them another status_path or websocket_path", other.name, p.name, path)
			}
			seen[path] = p
			if path == h.ClientPath {
				return fmt.Errorf("client_path %s is an endpoint of protocol %s; give the client another path", path, p.name)
			}
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

// knownStoreNames lists the store modules this Caddy has.
func knownStoreNames() []string {
	var names []string
	for _, m := range caddy.GetModules(protocolapi.StoreNamespace) {
		names = append(names, m.ID.Name())
	}
	slices.Sort(names)
	return names
}

// knownProtocolNames lists the protocol modules this Caddy has.
func knownProtocolNames() []string {
	var names []string
	for _, m := range caddy.GetModules(protocolapi.Namespace) {
		names = append(names, m.ID.Name())
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
