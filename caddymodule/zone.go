package caddymodule

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	protocolapi "github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// zones holds one tracker per zone name for every handler that names it.
// A usage pool keeps it alive across config reloads: the new config takes
// a reference before the old one lets go of its own, so uploads in flight
// keep their records and their watchers.
var zones = caddy.NewUsagePool()

// zone is a named tracker shared by handlers.
type zone struct {
	name    string
	tracker progress.Tracker
	// store names the shared store the zone's records are kept in (its
	// Identity), "" for memory.
	store string
	// secret is the configured key of the zone's shared store, which
	// every proxy of the zone shares, for what must verify across them
	// (owners, signed tokens); nil for a zone in memory.
	secret []byte
	// watchKey signs the zone's watch tokens: derived from secret where
	// the zone has one, so that every proxy of the zone accepts a token
	// any of them issued; else random, good only where it was issued.
	watchKey [32]byte
}

// signingKey is the key that signs and checks the zone's watch tokens.
func (z *zone) signingKey() []byte { return z.watchKey[:] }

// setWatchKey derives the watch-token key from the shared secret (its own
// key, not the owners' one), or draws a random one.
func (z *zone) setWatchKey() error {
	if z.secret == nil {
		_, err := rand.Read(z.watchKey[:])
		return err
	}
	m := hmac.New(sha256.New, z.secret)
	m.Write([]byte("upload_progress watch tokens"))
	m.Sum(z.watchKey[:0])
	return nil
}

// Destruct closes the tracker when the last handler using the zone is
// cleaned up: its watchers are told the server is going away.
func (z *zone) Destruct() error {
	z.tracker.Close()
	return nil
}

// sharedTracker is what a zone's tracker is when a store holds it.
type sharedTracker interface {
	StoreUp() bool
}

// loadZone returns the zone of name, creating it if this is its first
// user (on store, when not nil), and applies opts to it. A handler naming
// a zone must name the store it was made with.
func loadZone(name string, store protocolapi.Store, opts progress.Options) (*zone, error) {
	identity := ""
	if store != nil {
		identity = store.Identity()
	}
	v, _, err := zones.LoadOrNew(name, func() (caddy.Destructor, error) {
		if store == nil {
			z := &zone{name: name, tracker: progress.NewMemoryTracker(opts)}
			return z, z.setWatchKey()
		}
		s, err := store.Open(name)
		if err != nil {
			return nil, fmt.Errorf("zone %s: store: %v", name, err)
		}
		so := store.Shared()
		so.OnError = func(op string) { storeErrors.WithLabelValues(name, op).Inc() }
		o := opts
		o.OwnerSecret = store.OwnerSecret()
		z := &zone{name: name, tracker: progress.NewSharedTracker(o, s, so), store: identity, secret: store.OwnerSecret()}
		return z, z.setWatchKey()
	})
	if err != nil {
		return nil, err
	}
	z := v.(*zone)
	if z.store != identity {
		_, _ = zones.Delete(name)
		return nil, fmt.Errorf("zone %s is kept in %s, and this handler names %s: handlers sharing a zone must name the same store with the same settings (changing a zone's store takes a restart, or another zone name)",
			name, storeName(z.store), storeName(identity))
	}
	z.tracker.Configure(opts)
	return z, nil
}

func storeName(identity string) string {
	if identity == "" {
		return "memory"
	}
	return "store " + identity
}

// rangeZones calls f for each live zone; metrics read them at scrape time.
func rangeZones(f func(*zone)) {
	zones.Range(func(_, v any) bool {
		f(v.(*zone))
		return true
	})
}
