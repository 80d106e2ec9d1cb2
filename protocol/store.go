package protocol

import (
	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// StoreNamespace is the Caddy module namespace of shared stores: where
// proxies serving one zone together keep its records (see
// progress.SharedTracker). Without one, a zone lives in its proxy's memory.
const StoreNamespace = "http.handlers.upload_progress.stores"

// Store is a shared store's module, named by the handler's "store".
type Store interface {
	caddy.Module
	// Open connects to the store for zone. It is called once per zone,
	// when its first handler loads; the zone's tracker then owns what it
	// returns and closes it.
	Open(zone string) (progress.Store, error)
	// OwnerSecret is the key owners' credentials are hashed under, the same
	// on every proxy.
	OwnerSecret() []byte
	// Shared is how the zone's tracker uses the store.
	Shared() progress.SharedOptions
	// Identity names the store and its settings: handlers that share a
	// zone must give the same.
	Identity() string
}
