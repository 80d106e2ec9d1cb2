// The fallbacks, against a front that refuses the WebSocket (UP_EXPECT=sse:
// the client must use Server-Sent Events) or the WebSocket and SSE both
// (UP_EXPECT=poll: the client must poll), at shard's /ws/progress.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { uploadWithProgress } from '../../../clients/js/upload-progress.js'
import { WebSocket, checkProgress, collector, credential, gated, pattern, record, server, testTimeout, unique } from './support.mjs'

const expect = process.env.UP_EXPECT
if (expect !== 'sse' && expect !== 'poll') throw new Error('UP_EXPECT must be sse or poll')

const size = 3 << 20

test(`shard: the WebSocket refused, the client falls back to ${expect}`, { timeout: testTimeout }, async () => {
  const path = `/js/${unique(`fallback-${expect}`)}.bin`
  const bytes = pattern(size, 50)
  const gate = gated(bytes, size / 2)
  const c = collector(gate)
  await uploadWithProgress(gate.body, {
    server, protocol: 'shard', key: path, credential, size, WebSocket, pollInterval: 100, query: { overwrite: 'true' },
    onProgress: c.onProgress, onEnd: c.onEnd, onTransport: c.onTransport,
  })
  const end = await c.ended
  assert.equal(end.error, null, `the watch ended with ${end.error}`)
  checkProgress(c.events, size)
  assert.deepEqual(c.tried, expect === 'sse' ? ['websocket', 'sse'] : ['websocket', 'sse', 'poll'])
  assert.deepEqual([...new Set(c.transports)], [expect])
  record('shard', path, bytes)
})
