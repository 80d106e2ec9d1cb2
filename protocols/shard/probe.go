package shard

import (
	"context"
	"fmt"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// ExistsProbe asks the origin whether a key the tracker does not know
// exists, so that status requests for a file uploaded earlier (or longer ago
// than the retention) answer completed, as the storage-node API promises.
// It is only ever sent for keys with no record: never while an upload runs.
type ExistsProbe struct {
	// The request method. Default: HEAD.
	Method string `json:"method,omitempty"`

	// The URL to ask, with {key} standing for the key, escaped for where it
	// stands (a query value after ?, a path before it). Required.
	// Example: `http://127.0.0.1:9000/fso?path={key}`.
	URL string `json:"url,omitempty"`

	// Headers of the status request copied onto the probe, so the origin
	// can authenticate it. Default: `["x-user-api-key"]`.
	ForwardHeaders []string `json:"forward_headers,omitempty"`

	// How long an answer is reused for the same owner and key. Default: 5s.
	CacheFor caddy.Duration `json:"cache_for,omitempty"`

	// How long to wait for the origin. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	client *http.Client
	cache  probeCache
}

// provision sets the probe's defaults and checks its URL.
func (p *ExistsProbe) provision() error {
	if p.Method == "" {
		p.Method = http.MethodHead
	}
	if p.URL == "" {
		return fmt.Errorf("url is required")
	}
	if !strings.Contains(p.URL, "{key}") {
		return fmt.Errorf("url %q must contain {key}", p.URL)
	}
	u, err := url.Parse(strings.ReplaceAll(p.URL, "{key}", "k"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q must be an absolute http or https URL", p.URL)
	}
	if p.ForwardHeaders == nil {
		p.ForwardHeaders = []string{APIKeyHeader}
	}
	if p.CacheFor == 0 {
		p.CacheFor = caddy.Duration(5 * time.Second)
	}
	if p.Timeout == 0 {
		p.Timeout = caddy.Duration(5 * time.Second)
	}
	p.client = &http.Client{
		Timeout: time.Duration(p.Timeout),
		// A redirect is an answer in itself; following it could leave the origin.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	p.cache.m = make(map[probeKey]probeAnswer)
	return nil
}

// probeURL puts key into the URL template.
func (p *ExistsProbe) probeURL(key string) string {
	q := strings.Index(p.URL, "?")
	var b strings.Builder
	rest := p.URL
	for {
		i := strings.Index(rest, "{key}")
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:i])
		if q >= 0 && len(p.URL)-len(rest)+i > q {
			b.WriteString(url.QueryEscape(key))
		} else {
			b.WriteString(strings.ReplaceAll(url.PathEscape(key), "%2F", "/"))
		}
		rest = rest[i+len("{key}"):]
	}
}

// lookup returns completed for a key the origin says exists, with its size
// when the origin gives one, and not_exist otherwise, including when the
// origin cannot be asked.
func (p *ExistsProbe) lookup(r *http.Request, owner progress.Owner, key string) progress.Snapshot {
	k := probeKey{owner, key}
	if a, ok := p.cache.get(k, time.Now()); ok {
		return a.snapshot(key)
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(p.Timeout))
	defer cancel()
	a := probeAnswer{}
	req, err := http.NewRequestWithContext(ctx, p.Method, p.probeURL(key), nil)
	if err == nil {
		for _, name := range p.ForwardHeaders {
			if v := r.Header.Values(name); len(v) > 0 {
				req.Header[http.CanonicalHeaderKey(name)] = v
			}
		}
		if resp, err := p.client.Do(req); err == nil {
			resp.Body.Close()
			a.exists = resp.StatusCode >= 200 && resp.StatusCode < 300
			a.size = resp.ContentLength
		}
	}
	a.until = time.Now().Add(time.Duration(p.CacheFor))
	// A copy, not a piece of the request line, which it would keep alive.
	k.key = strings.Clone(k.key)
	p.cache.put(k, a)
	return a.snapshot(key)
}

type probeKey struct {
	owner progress.Owner
	key   string
}

type probeAnswer struct {
	exists bool
	size   int64
	until  time.Time
}

func (a probeAnswer) snapshot(key string) progress.Snapshot {
	if !a.exists {
		return progress.Snapshot{}
	}
	size := max(a.size, 0)
	return progress.Snapshot{Found: true, Key: key, Total: size, Received: size, State: progress.Completed}
}

// probeCacheMax bounds the cache; when full, it starts over.
const probeCacheMax = 10_000

// probeCache remembers recent probe answers.
type probeCache struct {
	mu sync.Mutex
	m  map[probeKey]probeAnswer
}

func (c *probeCache) get(k probeKey, now time.Time) (probeAnswer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[k]
	if ok && now.After(a.until) {
		delete(c.m, k)
		return a, false
	}
	return a, ok
}

func (c *probeCache) put(k probeKey, a probeAnswer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= probeCacheMax {
		clear(c.m)
	}
	c.m[k] = a
}

// unmarshalExistsProbe reads `exists_probe [<method>] <url> { … }`.
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
			if err := protocol.DurationArg(d, &p.CacheFor); err != nil {
				return nil, err
			}
		case "timeout":
			if err := protocol.DurationArg(d, &p.Timeout); err != nil {
				return nil, err
			}
		default:
			return nil, d.Errf("unknown exists_probe option %q", d.Val())
		}
	}
	return p, nil
}
