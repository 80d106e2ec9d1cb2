// support.mjs: what the client's tests share. They run under node --test,
// started by test/jsclient_test.go against a real Caddy in front of the
// reference origin, which it names in the environment:
//
//   UP_SERVER   Caddy's base URL (http://127.0.0.1:port)
//   UP_RESULTS  a file to append, one JSON line per upload, what the
//               origin must now hold ({protocol, stored, sha256}): the Go
//               test checks the origin's files against it
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { appendFileSync } from 'node:fs'
import WebSocket from 'ws'

export { WebSocket }

export const server = process.env.UP_SERVER
if (!server) throw new Error('UP_SERVER is not set: run these tests from test/jsclient_test.go')

// credential is one of the API keys the test's origin accepts.
export const credential = 'test-key'

// A test's upload and its watch end within this.
export const testTimeout = 60_000

export const eventKeys = ['currentFile', 'eta', 'files', 'rate', 'status', 'total', 'uploaded']

let seq = 0

// unique names a key or file of this run.
export function unique(prefix) {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${++seq}`
}

// pattern is n bytes that differ from one seed to another.
export function pattern(n, seed) {
  const b = new Uint8Array(n)
  let x = (seed * 2654435761) >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    b[i] = x & 0xff
  }
  return b
}

// gated is a stream of bytes that sends the first `first` bytes, then
// waits for open() before the rest: the upload cannot be over before the
// server has reported part of it.
export function gated(bytes, first, chunk = 64 << 10) {
  let open
  const opened = new Promise((resolve) => {
    open = resolve
  })
  async function* body() {
    for (let at = 0; at < bytes.length; at += chunk) {
      if (at >= first) await opened
      yield bytes.subarray(at, Math.min(bytes.length, at + chunk))
    }
  }
  return { body: body(), open }
}

export function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex')
}

// record tells the Go test what the origin must hold now.
export function record(protocol, stored, bytes) {
  appendFileSync(process.env.UP_RESULTS, `${JSON.stringify({ protocol, stored, sha256: sha256(bytes) })}\n`)
}

// collector gathers a watch's events and its end; opens the gate of an
// upload, if given, once the server reports bytes of it.
export function collector(gate = null) {
  const c = { events: [], transports: [], tried: [], end: null }
  c.ended = new Promise((resolve) => {
    c.onEnd = (event, error) => {
      gate?.open() // a watch that ended early must not hold the upload
      c.end = { event, error }
      resolve(c.end)
    }
  })
  c.onProgress = (event, reply, transport) => {
    assert.deepEqual(Object.keys(event).sort(), eventKeys, `event ${JSON.stringify(event)} has other fields than the normalised event's`)
    assert.equal(typeof reply, 'object')
    c.events.push(event)
    c.transports.push(transport)
    if (gate && event.status === 'uploading' && event.uploaded > 0) gate.open()
  }
  c.onTransport = (name) => c.tried.push(name)
  return c
}

// checkProgress asserts what a user of a progress bar would: the server
// reported the upload part way (0 < uploaded < total, uploading), its
// count never went back, and the last event is completed with uploaded ==
// total == size (size: the bytes the server counts).
export function checkProgress(events, size) {
  assert.ok(events.length >= 2, `only ${events.length} events: ${JSON.stringify(events)}`)
  const mid = events.find((e) => e.status === 'uploading' && e.uploaded > 0 && e.uploaded < size)
  assert.ok(mid, `no intermediate uploading event below ${size} bytes: ${JSON.stringify(events)}`)
  for (let i = 1; i < events.length; i++) {
    assert.ok(events[i].uploaded >= events[i - 1].uploaded, `uploaded went back at event ${i}: ${JSON.stringify(events.slice(i - 1, i + 1))}`)
  }
  const last = events.at(-1)
  assert.equal(last.status, 'completed', `last event ${JSON.stringify(last)}`)
  assert.equal(last.uploaded, size, `last event ${JSON.stringify(last)}`)
  assert.equal(last.total, size, `last event ${JSON.stringify(last)}`)
  assert.equal(last.eta, 0)
  assert.ok(events.some((e) => typeof e.rate === 'number' && e.rate > 0), 'no event had a rate')
}
