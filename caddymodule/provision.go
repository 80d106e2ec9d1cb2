package caddymodule

import (
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
	defaultZone       = "default"
	defaultProtocol   = "shard"
	defaultStatusPath = "/progress"
)

var defaultWebSocketPaths = []string{"/ws/progress", "/progress/ws"}

// Provision sets defaults, checks the templates and joins the zone.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.Zone == "" {
		h.Zone = defaultZone
	}
	if len(h.Protocols) == 0 {
		h.Protocols = []string{defaultProtocol}
	}
	if h.StatusPath == "" {
		h.StatusPath = defaultStatusPath
	}
	if len(h.WebSocketPaths) == 0 {
		h.WebSocketPaths = slices.Clone(defaultWebSocketPaths)
	}

	h.protocols = h.protocols[:0]
	for _, name := range h.Protocols {
		p, ok := protocols[name]
		if !ok {
			return fmt.Errorf("unknown protocol %q (known: %s)", name, strings.Join(knownProtocolNames(), ", "))
		}
		if h.Key != "" {
			p.key = h.Key
		}
		if h.Owner != "" {
			p.owner = h.Owner
		}
		if err := checkTemplate(p.key); err != nil {
			return fmt.Errorf("protocol %s: key: %v", name, err)
		}
		if !h.DisableOwnerCheck {
			if err := checkTemplate(p.owner); err != nil {
				return fmt.Errorf("protocol %s: owner: %v", name, err)
			}
		}
		h.protocols = append(h.protocols, p)
	}

	if h.ExistsProbe != nil {
		if err := h.ExistsProbe.provision(); err != nil {
			return fmt.Errorf("exists_probe: %v", err)
		}
	}

	z, err := loadZone(h.Zone, progress.Options{Retain: time.Duration(h.Retain), MaxKeys: h.MaxKeys})
	if err != nil {
		return err
	}
	h.zone = z
	return registerMetrics(ctx.GetMetricsRegistry())
}

// Validate checks the configuration for values that cannot work.
func (h *Handler) Validate() error {
	if h.Retain < 0 {
		return fmt.Errorf("retain must not be negative")
	}
	if h.MaxKeys < 0 {
		return fmt.Errorf("max_keys must not be negative")
	}
	paths := append([]string{h.StatusPath}, h.WebSocketPaths...)
	for i, p := range paths {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("endpoint path %q must start with /", p)
		}
		if slices.Contains(paths[:i], p) {
			return fmt.Errorf("endpoint path %q is used twice", p)
		}
	}
	return nil
}

// Cleanup lets go of the zone; the last handler to do so closes it.
func (h *Handler) Cleanup() error {
	if h.zone == nil {
		return nil
	}
	_, err := zones.Delete(h.Zone)
	return err
}

// checkTemplate refuses a template that is empty or names a placeholder
// Caddy does not know, so that a typo such as {http.request.heder.X} is a
// configuration error rather than every upload sharing the key "".
func checkTemplate(tpl string) error {
	if strings.TrimSpace(tpl) == "" {
		return fmt.Errorf("must not be empty")
	}
	if !strings.Contains(tpl, "{") {
		return fmt.Errorf("%q has no placeholder, so every request would share it", tpl)
	}
	req := httptest.NewRequest("GET", "/", nil)
	repl := caddyhttp.NewTestReplacer(req)
	if _, err := repl.ReplaceOrErr(tpl, false, true); err != nil {
		return fmt.Errorf("%q: %v", tpl, err)
	}
	return nil
}

func knownProtocolNames() []string {
	names := make([]string, 0, len(protocols))
	for n := range protocols {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
