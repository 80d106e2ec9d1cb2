package caddymodule

import (
	"crypto/rand"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
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
	// watchKey signs the zone's watch tokens: random per zone, so that a
	// token is good only where it was issued.
	watchKey [32]byte
}

// signingKey is the key that signs and checks the zone's watch tokens.
func (z *zone) signingKey() []byte { return z.watchKey[:] }

// Destruct closes the tracker when the last handler using the zone is
// cleaned up: its watchers are told the server is going away.
func (z *zone) Destruct() error {
	z.tracker.Close()
	return nil
}

// loadZone returns the zone of name, creating it if this is its first
// user, and applies opts to it.
func loadZone(name string, opts progress.Options) (*zone, error) {
	v, _, err := zones.LoadOrNew(name, func() (caddy.Destructor, error) {
		z := &zone{name: name}
		if _, err := rand.Read(z.watchKey[:]); err != nil {
			return nil, err
		}
		z.tracker = progress.NewMemoryTracker(opts)
		return z, nil
	})
	if err != nil {
		return nil, err
	}
	z := v.(*zone)
	z.tracker.Configure(opts)
	return z, nil
}

// rangeZones calls f for each live zone; metrics read them at scrape time.
func rangeZones(f func(*zone)) {
	zones.Range(func(_, v any) bool {
		f(v.(*zone))
		return true
	})
}
