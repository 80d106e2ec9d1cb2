package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

var zoneSeq atomic.Int64

// uniqueZone names a zone no other test uses, so tests sharing the
// process-wide zone pool do not see each other's records.
func uniqueZone(t *testing.T) string {
	return fmt.Sprintf("test-%s-%d", t.Name(), zoneSeq.Add(1))
}

// newTestContext is a Caddy context as Caddy's own module tests make it;
// it is cancelled when the test ends.
func newTestContext(t *testing.T) caddy.Context {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

// provisionHandler provisions h and returns a Cleanup that runs at most
// once, and Provision's error; the test's end runs it if the test did not.
func provisionHandler(t *testing.T, h *Handler) (func() error, error) {
	t.Helper()
	err := h.Provision(newTestContext(t))
	if h.logger != nil {
		h.logger = zap.NewNop() // the test context's logger is a noisy dev logger
	}
	var once sync.Once
	var cerr error
	cleanup := func() error {
		once.Do(func() { cerr = h.Cleanup() })
		return cerr
	}
	t.Cleanup(func() { _ = cleanup() })
	return cleanup, err
}

// provisionForTest provisions and validates h, failing the test on errors,
// and cleans it up when the test ends.
func provisionForTest(t *testing.T, h *Handler) {
	t.Helper()
	_, err := provisionHandler(t, h)
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestProvisionDefaults(t *testing.T) {
	h := &Handler{}
	provisionForTest(t, h)
	if h.Zone != "default" {
		t.Errorf("Zone = %q, want default", h.Zone)
	}
	if len(h.protocols) != 1 || h.protocols[0].name != "shard" {
		t.Fatalf("resolved protocols = %+v", h.protocols)
	}
	p := h.protocols[0]
	if p.statusPath != "/progress" {
		t.Errorf("status path = %q, want /progress", p.statusPath)
	}
	if want := []string{"/ws/progress", "/progress/ws"}; !reflect.DeepEqual(p.webSocketPaths, want) {
		t.Errorf("websocket paths = %q, want %q", p.webSocketPaths, want)
	}
	if p.ownerless {
		t.Error("shard is ownerless by default; it must check x-user-api-key")
	}
	if want := (progress.Pace{Interval: 250 * time.Millisecond, KeyRate: 250}); h.pace != want {
		t.Errorf("pace = %+v, want %+v", h.pace, want)
	}
	if h.pingInterval != 30*time.Second || h.watcherTimeout != 10*time.Second {
		t.Errorf("ping_interval %v, watcher_timeout %v; want 30s and 10s", h.pingInterval, h.watcherTimeout)
	}
	if h.watchTokenTTL != 10*time.Minute {
		t.Errorf("watch_token_ttl %v, want 10m", h.watchTokenTTL)
	}
	if h.zone == nil || h.tracker() == nil {
		t.Fatal("no tracker after Provision")
	}
	if refs, ok := zones.References("default"); !ok || refs < 1 {
		t.Errorf("zone default has %d references (present %v)", refs, ok)
	}
}

func TestProvisionNginxIsOwnerlessByDefault(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t), ProtocolsRaw: protos(t, `{"name":"nginx"}`, `{"name":"shard"}`)}
	provisionForTest(t, h)
	if !h.protocols[0].ownerless {
		t.Error("nginx should be ownerless by default")
	}
	if h.protocols[1].ownerless {
		t.Error("shard should check its owner by default")
	}
	// nginx tells its requests apart, so it is asked first at the shared path.
	if h.endpoints[0].name != "nginx" || h.endpoints[1].name != "shard" {
		t.Errorf("endpoint order = %s, %s; want nginx first", h.endpoints[0].name, h.endpoints[1].name)
	}
	if !h.protocols[0].shared || !h.protocols[1].shared {
		t.Error("nginx and shard share /progress but are not marked shared")
	}
}

func TestProvisionOwnerOff(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t), DisableOwnerCheck: true, Owner: "{http.request.header.X}"}
	provisionForTest(t, h)
	if !h.protocols[0].ownerless {
		t.Error("owner off at the handler must turn the owner check off for shard")
	}
	h2 := &Handler{Zone: uniqueZone(t), ProtocolsRaw: protos(t, `{"name":"shard","disable_owner_check":true}`)}
	provisionForTest(t, h2)
	if !h2.protocols[0].ownerless {
		t.Error("owner off in the protocol must turn the owner check off")
	}
}

func TestProvisionTemplatesPrecedence(t *testing.T) {
	h := &Handler{
		Zone:         uniqueZone(t),
		Key:          "{http.request.header.X-Key}",
		Owner:        "{http.request.header.X-Owner}",
		ProtocolsRaw: protos(t, `{"name":"shard","key":"{http.request.uri.query.file}"}`, `{"name":"nginx","owner":"{http.request.header.Authorization}","status_path":"/np"}`),
	}
	provisionForTest(t, h)
	shard, nginx := h.protocols[0], h.protocols[1]
	if shard.keyTemplate != "{http.request.uri.query.file}" || shard.ownerTemplate != "{http.request.header.X-Owner}" {
		t.Errorf("shard templates = %q, %q", shard.keyTemplate, shard.ownerTemplate)
	}
	if nginx.keyTemplate != "{http.request.header.X-Key}" || nginx.ownerTemplate != "{http.request.header.Authorization}" {
		t.Errorf("nginx templates = %q, %q", nginx.keyTemplate, nginx.ownerTemplate)
	}
	if nginx.ownerless {
		t.Error("nginx with an owner template must check owners")
	}
	if shard.credentialLabel != "credential" {
		t.Errorf("credential label with an owner template = %q, want credential", shard.credentialLabel)
	}
}

func TestProvisionErrors(t *testing.T) {
	tests := []struct {
		name string
		h    Handler
		want []string
	}{
		{
			name: "unknown protocol lists the known ones",
			h:    Handler{ProtocolsRaw: protos(t, `{"name":"ftp"}`)},
			want: []string{`unknown protocol "ftp"`, "known:", "nginx", "pcloud", "shard"},
		},
		{
			name: "unknown protocol after a good one",
			h:    Handler{ProtocolsRaw: protos(t, `{"name":"shard"}`, `{"name":"Shard"}`)},
			want: []string{`unknown protocol "Shard"`},
		},
		{
			name: "key with no placeholder",
			h:    Handler{Key: "/static.bin"},
			want: []string{"key: ", "no placeholder"},
		},
		{
			name: "key with an unknown placeholder",
			h:    Handler{Key: "{http.request.heder.X}"},
			want: []string{"key: ", "{http.request.heder.X}"},
		},
		{
			name: "a protocol listed twice",
			h:    Handler{ProtocolsRaw: protos(t, `{"name":"pcloud"}`, `{"name":"pcloud"}`)},
			want: []string{"protocol pcloud is listed twice and both answer /uploadprogress"},
		},
		{
			name: "protocol key with an unknown placeholder",
			h:    Handler{ProtocolsRaw: protos(t, `{"name":"nginx","key":"{http.reqest.uri.query.id}"}`)},
			want: []string{"protocol nginx", "key", "{http.reqest.uri.query.id}"},
		},
		{
			name: "blank key",
			h:    Handler{Key: "   "},
			want: []string{"key", "must not be empty"},
		},
		{
			name: "owner with no placeholder",
			h:    Handler{Owner: "secret"},
			want: []string{"owner", "no placeholder"},
		},
		{
			name: "owner with an unknown placeholder",
			h:    Handler{ProtocolsRaw: protos(t, `{"name":"shard","owner":"{http.request.heder.X}"}`)},
			want: []string{"protocol shard", "owner", "{http.request.heder.X}"},
		},
		{
			name: "exists_probe without {key}",
			h:    Handler{ProtocolsRaw: protos(t, `{"name":"shard","exists_probe":{"url":"http://origin/fso"}}`)},
			want: []string{"exists_probe", "{key}"},
		},
		{
			name: "exists_probe not absolute",
			h:    Handler{ProtocolsRaw: protos(t, `{"name":"shard","exists_probe":{"url":"/fso?path={key}"}}`)},
			want: []string{"exists_probe", "absolute http or https"},
		},
		{
			name: "exists_probe without URL",
			h:    Handler{ProtocolsRaw: protos(t, `{"name":"shard","exists_probe":{"method":"GET"}}`)},
			want: []string{"exists_probe", "url is required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			h.Zone = uniqueZone(t)
			_, err := provisionHandler(t, &h)
			if err == nil {
				t.Fatalf("Provision accepted %s", jsonOf(t, &h))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if _, ok := zones.References(h.Zone); ok {
				t.Errorf("a failed Provision left zone %s in the pool", h.Zone)
			}
		})
	}
}

func TestProvisionTemplatesAccepted(t *testing.T) {
	for _, tpl := range []string{
		"{http.request.uri.query.path}",
		"{http.request.header.X-Upload-Id}",
		"{http.request.uri.path}",
		"uploads/{http.request.uri.query.id}",
		"{http.request.uri.path.1}",
	} {
		t.Run(tpl, func(t *testing.T) {
			h := &Handler{Zone: uniqueZone(t), Key: tpl, Owner: "{http.request.header.Authorization}"}
			_, err := provisionHandler(t, h)
			if err != nil {
				t.Errorf("Provision refused key %q: %v", tpl, err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		h    Handler
		want []string // nil: valid
	}{
		{name: "defaults", h: Handler{}},
		{name: "nginx and shard share /progress", h: Handler{ProtocolsRaw: protos(t, `{"name":"nginx"}`, `{"name":"shard"}`)}},
		{name: "shard and nginx share /progress", h: Handler{ProtocolsRaw: protos(t, `{"name":"shard"}`, `{"name":"nginx"}`)}},
		{
			name: "status path without slash",
			h:    Handler{ProtocolsRaw: protos(t, `{"name":"shard","status_path":"progress"}`)},
			want: []string{"protocol shard", `"progress"`, "must start with /"},
		},
		{
			name: "websocket path without slash",
			h:    Handler{ProtocolsRaw: protos(t, `{"name":"shard","websocket_paths":["/ws","ws2"]}`)},
			want: []string{`"ws2"`, "must start with /"},
		},
		{
			name: "websocket path twice",
			h:    Handler{ProtocolsRaw: protos(t, `{"name":"shard","websocket_paths":["/ws","/ws"]}`)},
			want: []string{"protocol shard", `"/ws"`, "used twice"},
		},
		{
			name: "status path also a websocket path",
			h:    Handler{ProtocolsRaw: protos(t, `{"name":"shard","status_path":"/p","websocket_paths":["/p"]}`)},
			want: []string{`"/p"`, "used twice"},
		},
		{
			name: "protocol shard shard",
			h:    Handler{ProtocolsRaw: protos(t, `{"name":"shard"}`, `{"name":"shard"}`)},
			want: []string{"protocol shard is listed twice and both answer /progress"},
		},
		{
			name: "two shards on different paths",
			h:    Handler{ProtocolsRaw: protos(t, `{"name":"shard"}`, `{"name":"shard","status_path":"/v2/progress","websocket_paths":["/v2/ws"]}`)},
		},
		{
			name: "two shards sharing only a websocket path",
			h:    Handler{ProtocolsRaw: protos(t, `{"name":"shard"}`, `{"name":"shard","status_path":"/v2/progress"}`)},
			want: []string{"both answer /ws/progress"},
		},
		{
			name: "negative retain",
			h:    Handler{Retain: caddy.Duration(-time.Second)},
			want: []string{"retain must not be negative"},
		},
		{
			name: "negative max_keys",
			h:    Handler{MaxKeys: -1},
			want: []string{"max_keys must not be negative"},
		},
		{
			name: "negative max_file_details",
			h:    Handler{MaxFileDetails: -1},
			want: []string{"max_file_details must not be negative"},
		},
		{
			name: "negative ping_interval",
			h:    Handler{PingInterval: caddy.Duration(-time.Second)},
			want: []string{"ping_interval must not be negative"},
		},
		{
			name: "negative watcher_timeout",
			h:    Handler{WatcherTimeout: caddy.Duration(-time.Second)},
			want: []string{"watcher_timeout must not be negative"},
		},
		{
			name: "negative watch_token_ttl",
			h:    Handler{WatchTokenTTL: caddy.Duration(-time.Second)},
			want: []string{"watch_token_ttl must not be negative"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			h.Zone = uniqueZone(t)
			// Provision checks the configuration before it joins the zone.
			_, err := provisionHandler(t, &h)
			if tt.want == nil {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %s", jsonOf(t, &h))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestZoneSharedAndClosedByLastCleanup(t *testing.T) {
	zoneName := uniqueZone(t)
	h1 := &Handler{Zone: zoneName}
	h2 := &Handler{Zone: zoneName, ProtocolsRaw: protos(t, `{"name":"nginx"}`), Retain: caddy.Duration(time.Minute)}
	other := &Handler{Zone: uniqueZone(t)}
	cleanup1, err1 := provisionHandler(t, h1)
	cleanup2, err2 := provisionHandler(t, h2)
	if err1 != nil || err2 != nil {
		t.Fatalf("Provision: %v, %v", err1, err2)
	}
	provisionForTest(t, other)

	if h1.zone.tracker != h2.zone.tracker {
		t.Fatal("two handlers naming the same zone got different trackers")
	}
	if h1.zone.tracker == other.zone.tracker {
		t.Fatal("handlers naming different zones share a tracker")
	}
	if refs, _ := zones.References(zoneName); refs != 2 {
		t.Errorf("zone references = %d, want 2", refs)
	}

	// A record made through one handler is visible through the other.
	tr := h1.tracker()
	owner := tr.Owner("k")
	rec, err := tr.Begin(owner, "/shared.bin", 10)
	if err != nil {
		t.Fatal(err)
	}
	if snap := h2.tracker().Lookup(owner, "/shared.bin"); !snap.Found || snap.ID != rec.ID() {
		t.Errorf("record not visible through the other handler: %+v", snap)
	}

	sub, err := tr.Subscribe(owner, "/watched.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	// Cleanup of one handler leaves the tracker open for the other.
	if err := cleanup1(); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if refs, ok := zones.References(zoneName); !ok || refs != 1 {
		t.Errorf("after one Cleanup, zone references = %d (present %v), want 1", refs, ok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err = sub.Next(ctx, sub.Current(), 1)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("after one Cleanup, Next = %v, want the context's deadline (tracker still open)", err)
	}
	if _, err := h2.tracker().Begin(owner, "/after-first-cleanup.bin", 1); err != nil {
		t.Errorf("after one Cleanup, Begin = %v; the tracker must stay open", err)
	}
	if snap := h2.tracker().Lookup(owner, "/shared.bin"); !snap.Found {
		t.Error("after one Cleanup, the record made before is gone")
	}

	// The last Cleanup closes it: a blocked watcher is told ErrClosed.
	nextErr := make(chan error, 1)
	waitCtx := newWaitingContext()
	go func() {
		_, err := sub.Next(waitCtx, sub.Current(), 1)
		nextErr <- err
	}()
	select {
	case <-waitCtx.waiting:
	case err := <-nextErr:
		t.Fatalf("with the tracker open and nothing new, Next = %v; want it to wait", err)
	}
	if err := cleanup2(); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	select {
	case err := <-nextErr:
		if !errors.Is(err, progress.ErrClosed) {
			t.Errorf("after the last Cleanup, Next = %v, want progress.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("after the last Cleanup, a watcher is still blocked")
	}
	if _, ok := zones.References(zoneName); ok {
		t.Error("zone still in the pool after its last Cleanup")
	}
	if _, err := tr.Begin(owner, "/late.bin", 1); !errors.Is(err, progress.ErrClosed) {
		t.Errorf("Begin on a closed zone = %v, want progress.ErrClosed", err)
	}
	if _, err := other.tracker().Begin(owner, "/other.bin", 1); err != nil {
		t.Errorf("another zone was closed too: %v", err)
	}

	// The zone's name can be used again: it gets a new tracker.
	h3 := &Handler{Zone: zoneName}
	provisionForTest(t, h3)
	if h3.zone.tracker == tr {
		t.Error("a zone provisioned after its last Cleanup reuses the closed tracker")
	}
	if _, err := h3.tracker().Begin(owner, "/new.bin", 1); err != nil {
		t.Errorf("new tracker of a reused zone name: %v", err)
	}
}

// TestZoneSurvivesReload mimics a config reload: the new handler is
// provisioned before the old one is cleaned up, and the upload in flight
// keeps its record.
func TestZoneSurvivesReload(t *testing.T) {
	zoneName := uniqueZone(t)
	old := &Handler{Zone: zoneName, MaxKeys: 10}
	cleanupOld, errOld := provisionHandler(t, old)
	if errOld != nil {
		t.Fatal(errOld)
	}
	owner := old.tracker().Owner("k")
	rec, err := old.tracker().Begin(owner, "/inflight.bin", 100)
	if err != nil {
		t.Fatal(err)
	}

	reloaded := &Handler{Zone: zoneName, MaxKeys: 20}
	provisionForTest(t, reloaded)
	if err := cleanupOld(); err != nil {
		t.Fatal(err)
	}
	snap := reloaded.tracker().Lookup(owner, "/inflight.bin")
	if !snap.Found || snap.ID != rec.ID() || snap.State != progress.Uploading {
		t.Errorf("record in flight lost over a reload: %+v", snap)
	}
	if o, report := reloaded.tracker().End(rec, progress.Event{Status: 201}); !report || o.State != progress.Completed {
		t.Errorf("ending the record in flight after the reload: %+v, reported %v", o, report)
	}
}

// TestCleanupWithoutProvision must not touch the pool: Caddy cleans up
// modules whose Provision failed.
func TestCleanupWithoutProvision(t *testing.T) {
	zoneName := uniqueZone(t)
	keep := &Handler{Zone: zoneName}
	provisionForTest(t, keep)

	failed := &Handler{Zone: zoneName, ProtocolsRaw: protos(t, `{"name":"nope"}`)}
	cleanup, err := provisionHandler(t, failed)
	if err == nil {
		t.Fatal("Provision accepted an unknown protocol")
	}
	if err := cleanup(); err != nil {
		t.Fatal(err)
	}
	if refs, ok := zones.References(zoneName); !ok || refs != 1 {
		t.Errorf("Cleanup of a handler whose Provision failed changed the zone: references %d (present %v)", refs, ok)
	}
}

// TestProvisionAcceptsRuntimePlaceholders: placeholders that Caddy sets
// while it handles a request must be accepted in key and owner templates.
//
// These are set by other handlers or the server during the request
// ({http.auth.user.id} by basic_auth/forward_auth, {http.regexp.*} by
// matchers, {http.request.orig_uri.*} from the original request, which made
// Caddy's replacer panic on a stand-in request), so they cannot be resolved
// when the config loads and must not be refused.
func TestProvisionAcceptsRuntimePlaceholders(t *testing.T) {
	for _, h := range []Handler{
		{Owner: "{http.auth.user.id}"},
		{Key: "{http.regexp.upload.1}"},
		{Key: "{http.request.orig_uri.path}"},
	} {
		t.Run(h.Owner+h.Key, func(t *testing.T) {
			h.Zone = uniqueZone(t)
			panicked, err := func() (panicked any, err error) {
				defer func() { panicked = recover() }()
				_, err = provisionHandler(t, &h)
				return nil, err
			}()
			if panicked != nil {
				t.Errorf("Provision panicked: %v", panicked)
			}
			if err != nil {
				t.Errorf("Provision refused a placeholder Caddy sets at request time: %v", err)
			}
		})
	}
}

// waitingContext is a context that tells, by closing waiting, when a Next
// call is about to wait on it: Next asks its context for Done only to wait
// on it, once it found the tracker open and nothing to report.
type waitingContext struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func newWaitingContext() *waitingContext {
	return &waitingContext{Context: context.Background(), waiting: make(chan struct{})}
}

func (c *waitingContext) Done() <-chan struct{} {
	c.once.Do(func() { close(c.waiting) })
	return c.Context.Done()
}
