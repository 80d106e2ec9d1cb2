package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// caddyPkg is the Caddy build with the module.
const caddyPkg = "github.com/caddy-upload-progress/caddy-upload-progress/cmd/caddy"

// respondPath is the TRACKED site's static route that W5 compares status
// replies with.
const respondPath = "/static-status"

// buildCaddy builds caddyPkg into dir and returns the binary's path.
func buildCaddy(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "caddy")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, caddyPkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w", caddyPkg, err)
	}
	return out, nil
}

// caddyInstance is the one Caddy process, with its sites.
type caddyInstance struct {
	*child
	plain, tracked               string // base URLs of the sites
	tusPlain, tusTracked         string // base URLs of W7's sites, "" without tusd
	sandboxPlain, sandboxTracked string // base URLs of W8's sites, "" without the sandbox origin
	dstorPlain, dstorTracked     string // base URLs of W9's sites, "" without the dStor origin
	redisTracked                 string // base URL of R1-R3's site, "" without Redis
	log                          string // path of its log (stderr)
	admin                        string // base URL of the admin endpoint, "" when off
}

// caddySpec is what the Caddy config is made of.
type caddySpec struct {
	plainPort, trackedPort int
	origin                 string // the sink origin's address
	respondBody            string // W5's static route's body
	// With tusd (its address) set, two more sites in front of it for W7:
	// PLAIN-tus on tusPlainPort, TRACKED-tus on tusTrackedPort.
	tusd                         string
	tusPlainPort, tusTrackedPort int
	// With sandbox (the reference origin's address) set, two more for
	// W8: PLAIN-sandbox on sandboxPlainPort, TRACKED-sandbox on
	// sandboxTrackedPort.
	sandbox                              string
	sandboxPlainPort, sandboxTrackedPort int
	// With dstor (the reference origin's address) set, two more for W9:
	// PLAIN-dstor on dstorPlainPort, TRACKED-dstor on dstorTrackedPort.
	dstor                            string
	dstorPlainPort, dstorTrackedPort int
	// With redis (a redis-server's address) set, one more for R1-R3:
	// TRACKED-redis on redisTrackedPort, TRACKED's handler with its zone
	// in that Redis.
	redis            string
	redisTrackedPort int
	adminAddr        string // "": admin off
	logLevel         string // "": Caddy's default logging
	// manyWatchers lifts TRACKED's watcher limits for W10, whose watchers
	// go past the defaults (10,000, and 1,024 per key).
	manyWatchers bool
}

// caddyConfig is the JSON config: admin off (or on adminAddr when it is set,
// for its /debug/pprof/), PLAIN = reverse_proxy only, TRACKED =
// upload_progress (owner check off) + reverse_proxy, plus on TRACKED a
// static route answering respondBody, the size of a status reply. With
// tusd set, PLAIN-tus = reverse_proxy to tusd and TRACKED-tus =
// `upload_progress { protocol tus }` + reverse_proxy to tusd, sites of
// their own so that W1-W6's sites stay as they are. With sandbox set, the
// same pair in front of the reference origin for W8: PLAIN-sandbox and
// TRACKED-sandbox (`upload_progress { protocol sandbox }`); with dstor set,
// the same for W9: PLAIN-dstor and TRACKED-dstor
// (`upload_progress { protocol dstor }`). With logLevel set, the
// upload_progress logger writes at that level (to stderr, like every other
// logger), so that a run can tell what its line per finished upload costs.
func caddyConfig(s caddySpec) ([]byte, error) {
	proxyTo := func(upstream string) map[string]any {
		return map[string]any{
			"handler":   "reverse_proxy",
			"upstreams": []any{map[string]any{"dial": upstream}},
		}
	}
	proxy := proxyTo(s.origin)
	server := func(port int, routes ...any) map[string]any {
		return map[string]any{
			"listen":          []string{"127.0.0.1:" + strconv.Itoa(port)},
			"routes":          routes,
			"automatic_https": map[string]any{"disable": true},
		}
	}
	admin := map[string]any{"disabled": true, "config": map[string]any{"persist": false}}
	if s.adminAddr != "" {
		admin = map[string]any{"listen": s.adminAddr, "config": map[string]any{"persist": false}}
	}
	tracked := map[string]any{"handler": "upload_progress", "disable_owner_check": true,
		"protocols": []any{map[string]any{"name": "shard"}, map[string]any{"name": "pcloud"}}}
	if s.manyWatchers {
		tracked["max_watchers"], tracked["max_watchers_per_key"] = 1_000_000, 1_000_000
	}
	servers := map[string]any{
		"plain": server(s.plainPort, map[string]any{"handle": []any{proxy}}),
		"tracked": server(s.trackedPort,
			map[string]any{
				"match": []any{map[string]any{"path": []string{respondPath}}},
				"handle": []any{map[string]any{
					"handler":     "static_response",
					"status_code": 200,
					// The same headers as a status reply.
					"headers": map[string][]string{
						"Content-Type":  {"application/json"},
						"Cache-Control": {"no-store"},
					},
					"body": s.respondBody,
				}},
				"terminal": true,
			},
			map[string]any{"handle": []any{
				// pcloud too, so that W3's multipart uploads are
				// scanned for their files (shard does not need them).
				tracked,
				proxy,
			}},
		),
	}
	if s.tusd != "" {
		servers["plain-tus"] = server(s.tusPlainPort, map[string]any{"handle": []any{proxyTo(s.tusd)}})
		// What `upload_progress { protocol tus }` adapts to: the defaults.
		servers["tracked-tus"] = server(s.tusTrackedPort, map[string]any{"handle": []any{
			map[string]any{"handler": "upload_progress", "protocols": []any{map[string]any{"name": "tus"}}},
			proxyTo(s.tusd),
		}})
	}
	if s.sandbox != "" {
		servers["plain-sandbox"] = server(s.sandboxPlainPort, map[string]any{"handle": []any{proxyTo(s.sandbox)}})
		// What `upload_progress { protocol sandbox }` adapts to: the defaults.
		servers["tracked-sandbox"] = server(s.sandboxTrackedPort, map[string]any{"handle": []any{
			map[string]any{"handler": "upload_progress", "protocols": []any{map[string]any{"name": "sandbox"}}},
			proxyTo(s.sandbox),
		}})
	}
	if s.dstor != "" {
		servers["plain-dstor"] = server(s.dstorPlainPort, map[string]any{"handle": []any{proxyTo(s.dstor)}})
		// What `upload_progress { protocol dstor }` adapts to: the defaults.
		servers["tracked-dstor"] = server(s.dstorTrackedPort, map[string]any{"handle": []any{
			map[string]any{"handler": "upload_progress", "protocols": []any{map[string]any{"name": "dstor"}}},
			proxyTo(s.dstor),
		}})
	}
	if s.redis != "" {
		servers["tracked-redis"] = server(s.redisTrackedPort, map[string]any{"handle": []any{
			map[string]any{"handler": "upload_progress", "disable_owner_check": true, "zone": sharedZone,
				"protocols": []any{map[string]any{"name": "shard"}, map[string]any{"name": "pcloud"}},
				"store":     map[string]any{"name": "redis", "address": []string{s.redis}, "secret": sharedSecret}},
			proxy,
		}})
	}
	cfg := map[string]any{
		"admin": admin,
		"apps": map[string]any{"http": map[string]any{
			"grace_period": "2s",
			"servers":      servers,
		}},
	}
	if s.logLevel != "" {
		const logger = "http.handlers.upload_progress"
		cfg["logging"] = map[string]any{"logs": map[string]any{
			"default":         map[string]any{"exclude": []string{logger}},
			"upload_progress": map[string]any{"include": []string{logger}, "level": strings.ToUpper(s.logLevel)},
		}}
	}
	return json.MarshalIndent(cfg, "", "\t")
}

// startCaddy writes the config into dir and runs `caddy run` on it, with
// Caddy's state directories inside dir, and waits until both sites answer.
// With admin set, Caddy's admin endpoint listens on a loopback port
// (admin.go's /debug/pprof/ is what the bench wants of it). With tusd (its
// address) set, Caddy also serves W7's two sites in front of it; with
// sandbox (the reference origin's address) W8's two, and with dstor (the
// reference origin's too) W9's. With manyWatchers, TRACKED takes any
// number of watchers (W10).
func startCaddy(ctx context.Context, bin, dir, origin, tusd, sandbox, dstor, redis, respondBody string, admin bool, logLevel string, manyWatchers bool) (*caddyInstance, error) {
	s := caddySpec{origin: origin, tusd: tusd, sandbox: sandbox, dstor: dstor, redis: redis, respondBody: respondBody, logLevel: logLevel, manyWatchers: manyWatchers}
	ports := []*int{&s.plainPort, &s.trackedPort}
	if redis != "" {
		ports = append(ports, &s.redisTrackedPort)
	}
	if tusd != "" {
		ports = append(ports, &s.tusPlainPort, &s.tusTrackedPort)
	}
	if sandbox != "" {
		ports = append(ports, &s.sandboxPlainPort, &s.sandboxTrackedPort)
	}
	if dstor != "" {
		ports = append(ports, &s.dstorPlainPort, &s.dstorTrackedPort)
	}
	var adminPort int
	if admin {
		ports = append(ports, &adminPort)
	}
	for _, p := range ports {
		var err error
		if *p, err = testkit.FreePort(); err != nil {
			return nil, err
		}
	}
	if admin {
		s.adminAddr = "127.0.0.1:" + strconv.Itoa(adminPort)
	}
	cfg, err := caddyConfig(s)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "caddy.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "caddy.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor

	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(),
		"HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_DATA_HOME="+filepath.Join(dir, "data"))
	c, err := startChild(ctx, "caddy", cmd)
	if err != nil {
		return nil, err
	}
	local := func(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }
	ci := &caddyInstance{child: c, plain: local(s.plainPort), tracked: local(s.trackedPort), log: logPath}
	if tusd != "" {
		ci.tusPlain, ci.tusTracked = local(s.tusPlainPort), local(s.tusTrackedPort)
	}
	if sandbox != "" {
		ci.sandboxPlain, ci.sandboxTracked = local(s.sandboxPlainPort), local(s.sandboxTrackedPort)
	}
	if dstor != "" {
		ci.dstorPlain, ci.dstorTracked = local(s.dstorPlainPort), local(s.dstorTrackedPort)
	}
	if redis != "" {
		ci.redisTracked = local(s.redisTrackedPort)
	}
	if s.adminAddr != "" {
		ci.admin = "http://" + s.adminAddr
	}
	if err := ci.waitReady(ctx, 20*time.Second); err != nil {
		c.stop(5 * time.Second)
		return nil, fmt.Errorf("%w\ncaddy log:\n%s", err, tailFile(logPath, 4096))
	}
	return ci, nil
}

// waitReady polls both sites until they answer through to the origin.
func (ci *caddyInstance) waitReady(ctx context.Context, within time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(within)
	for _, u := range []string{ci.plain + "/ready", ci.tracked + "/ready"} {
		for {
			resp, err := client.Get(u)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					break
				}
				err = fmt.Errorf("%s: %s", u, resp.Status)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("caddy not ready within %v: %v", within, err)
			}
			select {
			case <-ci.exited():
				return ci.exitError()
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// shutdown stops Caddy gracefully, killing it after 10 s.
func (ci *caddyInstance) shutdown() { ci.stop(10 * time.Second) }
