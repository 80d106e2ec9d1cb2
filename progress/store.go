package progress

import (
	"context"
	"errors"
	"time"
)

// Store is where the proxies that serve one zone share its records, so
// that each of them answers for uploads the others carry (see
// SharedTracker). A node writes only the records it carries, each as one
// entry of its own under the record's owner and key; readers merge the
// entries of every node. The store moves bytes: the entries' encoding, and
// what they mean, are the tracker's.
//
// A Store is used by one tracker; its methods are safe for concurrent use.
type Store interface {
	// Write keeps each entry under its record, replacing what its node
	// wrote before, for the entry's TTL, and tells the other nodes
	// listening. It is called with all of a flush at once, so that a
	// store can send it in one round trip.
	Write(ctx context.Context, entries []StoreEntry) error
	// Read returns the entries every node keeps under owner's key.
	Read(ctx context.Context, owner Owner, key string) ([][]byte, error)
	// Listen calls deliver with each entry written, by any node, until ctx
	// ends; up is called with false when the store stops delivering and
	// with true when it delivers again. It returns when ctx ends.
	Listen(ctx context.Context, deliver func(data []byte), up func(bool))
	// Ping reports whether the store can be reached.
	Ping(ctx context.Context) error
	// Close lets go of the store's connections.
	Close() error
}

// StoreEntry is one node's state of one record.
type StoreEntry struct {
	Owner Owner
	Key   string
	// Node names the writer; each node has one entry per record.
	Node string
	Data []byte
	// TTL is how long the store keeps the record after this write.
	TTL time.Duration
}

// ErrStoreUnavailable is why a lookup that only the shared store could
// answer has no answer.
var ErrStoreUnavailable = errors.New("progress store unavailable")

// NodeGone is the error of an upload whose proxy stopped renewing its
// record in the shared store: it died, or lost the store for longer than
// the lease.
const NodeGone = "proxy node went away"
