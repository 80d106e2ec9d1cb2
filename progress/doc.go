// Package progress is the core of caddy-upload-progress: it counts the bytes
// of uploads as they stream through a proxy and answers "how far is it?".
//
// It imports nothing from Caddy. The pieces are:
//
//   - Record: one upload's live state. Its counters are atomics so the upload
//     path never takes a lock; watchers are woken through a lazily made
//     broadcast channel only when a byte threshold they asked for is crossed
//     or the state changes.
//   - Body: the io.ReadCloser that wraps a request body and counts into a Record.
//   - Tracker: where records live, keyed by owner and key, and how watchers
//     subscribe to a key. MemoryTracker is the in-process implementation.
//   - Judge: turns what happened to a request (body read error, proxy error,
//     response status) into the upload's final state.
//   - Protocol renderers (shard.go, ...): parse status requests and render
//     snapshots in each API's own JSON shape.
package progress
