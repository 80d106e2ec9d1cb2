// Server-Sent Events and watch tokens: every protocol's stream read as
// SSE (through fetch, with the credential's headers; through an
// EventSource where none is needed, as in a browser), and the WebSocket
// opened with a watch token in place of the credential, as a page must.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { EventSource } from 'eventsource'
import { uploadWithProgress } from '../../../clients/js/upload-progress.js'
import { WebSocket, checkProgress, collector, credential, gated, pattern, record, server, testTimeout, unique } from './support.mjs'

const size = 3 << 20
const first = size / 2

// The protocols with a stream, what each upload needs, and where the
// origin stores it.
const protocols = {
  shard: (n) => ({ opts: { key: `/js/${n}.bin`, credential, query: { overwrite: 'true' } }, stored: () => `/js/${n}.bin` }),
  pcloud: (n) => ({ opts: { key: n, credential, name: `${n}.bin` }, stored: () => `/${n}.bin` }),
  tus: (n) => ({ opts: { name: `${n}.bin`, headers: { 'x-user-api-key': credential } }, stored: (r) => `.tus/${r.key.split('/').pop()}` }),
  sandbox: (n) => ({ opts: { sandbox: 'sb1', credential, targetPath: `/js/${n}.bin`, partSize: 1 << 20 }, stored: () => `/js/${n}.bin` }),
  dstor: (n) => ({ opts: { credential, folderPath: `/js/${n}`, name: 'f.bin' }, stored: () => `/js/${n}/f.bin` }),
}

// run uploads size bytes of protocol with extra watch options and
// returns the collector, after the usual checks.
async function run(protocol, seed, extra) {
  const n = unique(`${protocol}-stream`)
  const p = protocols[protocol](n)
  const bytes = pattern(size, seed)
  const gate = gated(bytes, first)
  const c = collector(gate)
  const result = await uploadWithProgress(gate.body, {
    server, protocol, size, maxRetries: 2, minBackoff: 50, ...p.opts, ...extra,
    onProgress: c.onProgress, onEnd: c.onEnd, onTransport: c.onTransport,
  })
  const end = await c.ended
  assert.equal(end.error, null, `the watch ended with ${end.error}`)
  checkProgress(c.events, c.events.at(-1).total)
  record(protocol, p.stored(result), bytes)
  return c
}

for (const [i, protocol] of Object.keys(protocols).entries()) {
  test(`${protocol}: Server-Sent Events through fetch`, { timeout: testTimeout }, async () => {
    const c = await run(protocol, 20 + i, { transports: ['sse'] })
    assert.deepEqual([...new Set(c.transports)], ['sse'])
  })
}

// pcloud's credential is a parameter: no header is needed, so the
// client uses the EventSource it is given, as in a browser.
test('pcloud: Server-Sent Events through an EventSource', { timeout: testTimeout }, async () => {
  const opened = []
  class Spy extends EventSource {
    constructor(url, init) {
      super(url, init)
      opened.push(url)
    }
  }
  const c = await run('pcloud', 30, { transports: ['sse'], EventSource: Spy })
  assert.deepEqual([...new Set(c.transports)], ['sse'])
  assert.equal(opened.length >= 1, true, 'the EventSource was not used')
  assert.match(opened[0], /\/uploadprogress\/ws\?progresshash=.*&auth=test-key$/)
})

// A page's WebSocket cannot carry the credential's header: the client
// gets a watch token over REST, with the header, and opens the WebSocket
// with ?watch_token= and no header.
for (const [i, protocol] of ['shard', 'sandbox', 'dstor'].entries()) {
  test(`${protocol}: the WebSocket with a watch token`, { timeout: testTimeout }, async () => {
    const opened = []
    class Spy extends WebSocket {
      constructor(url, opts) {
        super(url, opts)
        opened.push({ url, headers: opts?.headers })
      }
    }
    const asked = []
    const spyFetch = (url, init) => {
      asked.push(String(url))
      return fetch(url, init)
    }
    const c = await run(protocol, 40 + i, { transports: ['websocket'], watchToken: true, WebSocket: Spy, fetch: spyFetch })
    assert.ok(asked.some((u) => new URL(u).searchParams.get('watch_token') === '1'), `no token request among ${asked}`)
    assert.ok(opened.length >= 1)
    for (const o of opened) {
      assert.ok(new URL(o.url).searchParams.get('watch_token'), `WebSocket opened without a token: ${o.url}`)
      assert.equal(o.headers, undefined, 'a WebSocket opened with a token sends no header')
    }
    assert.ok(c.transports.filter((t) => t === 'websocket').length >= 2, `transports ${c.transports}`)
  })
}

test('a watch token that is not the server\'s is refused with 401 in the protocol\'s shape', { timeout: testTimeout }, async () => {
  const res = await fetch(`${server}/progress?path=/js/x.bin&watch_token=forged`)
  assert.equal(res.status, 401)
  assert.equal(typeof (await res.json()).error, 'string')
})
