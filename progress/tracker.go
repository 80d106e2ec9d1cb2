package progress

import (
	"context"
	"errors"
	"time"
)

// Tracker keeps the records of uploads and lets status requests and
// watchers find them. The handler holds a Tracker and uses nothing else of
// it, so a store shared by several proxies can replace the in-memory one.
//
// Every method is safe for concurrent use. None of them is on the upload's
// hot path: that is Record.add, reached through Body.
type Tracker interface {
	// Owner turns a credential into the Owner records are bound to.
	Owner(credential string) Owner
	// Begin starts tracking an upload of total bytes (-1 if unknown) under
	// owner and key, replacing what the key showed before; watchers of the key
	// follow the new record. When it returns an error the upload must still
	// pass, untracked.
	Begin(owner Owner, key string, total int64) (*Record, error)
	// End ends rec as ev says, judged with what rec saw of its body (its
	// read error and count), unless rec has ended already (stalled). It
	// returns how rec ended, whoever ended it, and true for the one call
	// that is to report the ending (count it, log it): every record is
	// reported exactly once by the request that tracked it.
	End(rec *Record, ev Event) (Outcome, bool)
	// OpenSession returns the session record owner has under key, making
	// one with spec if the key holds none (nothing, or the record of one
	// request, which it replaces); true when it made it. A session that
	// has ended is returned as it is until its retention is over.
	OpenSession(owner Owner, key string, spec SessionSpec) (*Record, bool, error)
	// FindSession returns the session record owner has under key, or nil.
	FindSession(owner Owner, key string) *Record
	// EndSession ends a session record as o says, unless it has ended
	// already; it reports whether this call ended it. Its requests still
	// in flight go on counting into it until they end.
	EndSession(rec *Record, o Outcome) bool
	// Lookup returns what owner can see under key now.
	Lookup(owner Owner, key string) Snapshot
	// Subscribe lets owner follow key, across re-uploads, until Close.
	Subscribe(owner Owner, key string) (Subscription, error)
	// Stats returns the tracker's current counts.
	Stats() Stats
	// Configure applies new options to the running tracker (a reload).
	Configure(Options)
	// Close ends every subscription with ErrClosed and stops background work.
	Close()
}

// Subscription follows one key of one owner.
type Subscription interface {
	// Current returns what the key shows now.
	Current() Snapshot
	// Next blocks until the key shows something worth sending after prev:
	// another record, another state, or at least step more bytes. It returns
	// ctx's error when ctx ends and ErrClosed when the tracker closes.
	Next(ctx context.Context, prev Snapshot, step int64) (Snapshot, error)
	// Watchers is how many subscriptions the key has now, this one included.
	Watchers() int
	// Close ends the subscription; it is safe to call more than once.
	Close()
}

// Stats are a tracker's counts at one moment.
type Stats struct {
	// InFlight is the number of uploads being received now.
	InFlight int64
	// Keys is the number of keys that hold a record or a watcher.
	Keys int
	// Watchers is the number of open subscriptions.
	Watchers int64
	// FileDetailBytes is the memory the file details of finished records
	// hold now, and FileDetailsDropped how many finished records have
	// dropped theirs for want of room (see Options.MaxFileDetails).
	FileDetailBytes    int64
	FileDetailsDropped int64
	// Evicted is how many finished records were forgotten before the end
	// of their retention to make room for new keys (see Options.MaxKeys).
	Evicted int64
}

// Options configure a tracker. Zero values mean the defaults.
type Options struct {
	// Retain is how long a finished upload stays queryable. Default 5m.
	Retain time.Duration
	// MaxKeys is how many keys the tracker holds at most. When it is
	// full, the finished records closest to the end of their retention
	// are forgotten first to make room; new uploads pass untracked only
	// when uploads in flight and watched keys alone fill it. Default 100,000.
	MaxKeys int
	// MaxWatchers is how many subscriptions the tracker holds at most, and
	// MaxWatchersPerKey how many one key may have. Defaults 10,000 and 1,024.
	MaxWatchers       int
	MaxWatchersPerKey int
	// IdleTimeout fails an upload whose client has sent no byte for that
	// long while its body is incomplete, so that no record says uploading
	// forever. An upload whose body is complete waits for its origin as
	// long as the proxy does. Default 10m.
	IdleTimeout time.Duration
	// MaxFileDetails bounds the bytes that the file details of finished
	// records (file names, content types, the origin's description of the
	// stored files) hold in all; a record that finishes past it keeps its
	// counts and drops the names. Default 64 MiB.
	MaxFileDetails int64
	// OwnerSecret is the key owners' credentials are hashed under (see
	// Owner). Empty: a random one of the tracker's own. Proxies sharing a
	// store must share it to find each other's records. It is read once,
	// when the tracker is made; Configure ignores it.
	OwnerSecret []byte
}

// Defaults for Options.
const (
	DefaultRetain            = 5 * time.Minute
	DefaultMaxKeys           = 100_000
	DefaultMaxWatchers       = 10_000
	DefaultMaxWatchersPerKey = 1024
	DefaultIdleTimeout       = 10 * time.Minute
	DefaultMaxFileDetails    = 64 << 20
)

func (o Options) withDefaults() Options {
	if o.Retain <= 0 {
		o.Retain = DefaultRetain
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.MaxWatchers <= 0 {
		o.MaxWatchers = DefaultMaxWatchers
	}
	if o.MaxWatchersPerKey <= 0 {
		o.MaxWatchersPerKey = DefaultMaxWatchersPerKey
	}
	if o.MaxFileDetails <= 0 {
		o.MaxFileDetails = DefaultMaxFileDetails
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	return o
}

var (
	// ErrFull is returned by Begin and Subscribe when the tracker holds as
	// many keys as it may.
	ErrFull = errors.New("progress: tracker is full")
	// ErrTooManyWatchers is returned by Subscribe at a watcher limit.
	ErrTooManyWatchers = errors.New("progress: too many watchers")
	// ErrClosed is returned once the tracker has been closed.
	ErrClosed = errors.New("progress: tracker closed")
)
