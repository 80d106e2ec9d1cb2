// Package redisstore keeps the records of an upload_progress zone in Redis
// 7 or Valkey, single instance or Redis Cluster, so that many proxies
// behind a load balancer answer for every upload: the guest module
// http.handlers.upload_progress.stores.redis and the progress.Store it
// opens.
//
// Layout: each record is one hash, `<prefix>:<zone>:{<tag>}`, whose
// fields are the nodes that wrote it and whose values are their entries;
// the tag is a hash of the owner (itself an HMAC) and the key, so a
// cluster spreads records over its shards and every command of one
// record goes to one shard. Every write is also published on
// `<prefix>:<zone>:updates`, which each proxy subscribes to once.
package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// Store is a progress.Store on Redis.
type Store struct {
	client  redis.UniversalClient
	prefix  string // <prefix>:<zone>
	channel string
	// Commands counts the commands sent, for benchmarks.
	commands atomic.Int64
}

var _ progress.Store = (*Store)(nil)

// idleCheck is how long the subscription may hear nothing before it asks
// the server whether it is still there.
const idleCheck = time.Second

// New returns a Store for zone on client, which it owns from now on.
func New(client redis.UniversalClient, prefix, zone string) *Store {
	p := prefix + ":" + zone
	return &Store{client: client, prefix: p, channel: p + ":updates"}
}

// Commands is how many commands the store has sent.
func (s *Store) Commands() int64 { return s.commands.Load() }

// RecordKey is the Redis key of owner's key.
func (s *Store) RecordKey(owner progress.Owner, key string) string {
	h := sha256.New()
	h.Write(owner[:])
	h.Write([]byte(key))
	// 128 bits tell records apart as well as the whole sum would.
	return s.prefix + ":{" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16]) + "}"
}

// Write implements progress.Store: per entry HSET, PEXPIRE and PUBLISH, in
// one pipeline.
func (s *Store) Write(ctx context.Context, entries []progress.StoreEntry) error {
	pipe := s.client.Pipeline()
	for _, e := range entries {
		k := s.RecordKey(e.Owner, e.Key)
		pipe.HSet(ctx, k, e.Node, e.Data)
		pipe.PExpire(ctx, k, e.TTL)
		pipe.Publish(ctx, s.channel, e.Data)
	}
	s.commands.Add(int64(3 * len(entries)))
	_, err := pipe.Exec(ctx)
	return err
}

// Read implements progress.Store.
func (s *Store) Read(ctx context.Context, owner progress.Owner, key string) ([][]byte, error) {
	s.commands.Add(1)
	m, err := s.client.HGetAll(ctx, s.RecordKey(owner, key)).Result()
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(m))
	for _, v := range m {
		out = append(out, []byte(v))
	}
	return out, nil
}

// Ping implements progress.Store.
func (s *Store) Ping(ctx context.Context) error {
	s.commands.Add(1)
	return s.client.Ping(ctx).Err()
}

// Listen implements progress.Store with one subscription, which go-redis
// makes again after the connection breaks.
func (s *Store) Listen(ctx context.Context, deliver func([]byte), up func(bool)) {
	ps := s.client.Subscribe(ctx, s.channel)
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer ps.Close()
	healthy := true
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, idleCheck)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Quiet, not necessarily gone: ask.
				if err = ps.Ping(ctx); err == nil {
					continue
				}
			}
			if healthy {
				healthy = false
				up(false)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if !healthy {
			healthy = true
			up(true)
		}
		if m, ok := msg.(*redis.Message); ok {
			deliver([]byte(m.Payload))
		}
	}
}

// Close implements progress.Store.
func (s *Store) Close() error { return s.client.Close() }
