// Each protocol's upload through Caddy with uploadWithProgress, watched
// over the WebSocket (ws, as Node 20 has no global WebSocket) or, where
// the protocol has none (nginx), by polling.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { uploadWithProgress, watchUpload } from '../../../clients/js/upload-progress.js'
import { WebSocket, checkProgress, collector, credential, gated, pattern, record, server, testTimeout, unique } from './support.mjs'

const size = 3 << 20
const first = size / 2

// upload sends a gated stream of size bytes with uploadWithProgress and
// checks the events; it returns the bytes, the result and the collector.
async function upload(protocol, opts, seed) {
  const bytes = pattern(size, seed)
  const gate = gated(bytes, first)
  const c = collector(gate)
  const result = await uploadWithProgress(gate.body, {
    server, protocol, WebSocket, size, pollInterval: 100, ...opts,
    onProgress: c.onProgress, onEnd: c.onEnd, onTransport: c.onTransport,
  })
  const end = await c.ended
  assert.equal(end.error, null, `the watch ended with ${end.error}`)
  assert.deepEqual(result.event, c.events.at(-1))
  return { bytes, result, c }
}

test('shard: uploadWithProgress over the WebSocket', { timeout: testTimeout }, async () => {
  const path = `/js/${unique('shard')}.bin`
  const { bytes, result, c } = await upload('shard', { key: path, credential, query: { overwrite: 'true' } }, 1)
  checkProgress(c.events, size)
  assert.deepEqual([...new Set(c.transports)], ['websocket'])
  assert.equal(result.response.status, 201)
  assert.equal(result.key, path)
  record('shard', path, bytes)
})

test('pcloud: uploadWithProgress over the WebSocket, the file named', { timeout: testTimeout }, async () => {
  const name = `${unique('pcloud')}.bin`
  const { bytes, result, c } = await upload('pcloud', { key: unique('hash'), credential, name }, 2)
  checkProgress(c.events, size)
  assert.deepEqual([...new Set(c.transports)], ['websocket'])
  assert.equal(JSON.parse(result.response.body).result, 0)
  assert.ok(c.events.some((e) => e.currentFile === name), `no event names ${name}: ${JSON.stringify(c.events)}`)
  assert.equal(c.events.at(-1).files, 1)
  record('pcloud', `/${name}`, bytes)
})

test('nginx: uploadWithProgress by polling (nginx has no stream)', { timeout: testTimeout }, async () => {
  const name = `${unique('nginx')}.bin`
  const { bytes, result, c } = await upload('nginx', { key: unique('id'), name, headers: { 'x-user-api-key': credential } }, 3)
  checkProgress(c.events, size)
  assert.deepEqual(c.tried, ['poll'])
  assert.equal(result.response.status, 201)
  record('nginx', `/${name}`, bytes)
})

test('tus: uploadWithProgress creates, watches the upload URL, PATCHes', { timeout: testTimeout }, async () => {
  const name = `${unique('tus')}.bin`
  const { bytes, result, c } = await upload('tus', { name, headers: { 'x-user-api-key': credential } }, 4)
  checkProgress(c.events, size)
  assert.deepEqual([...new Set(c.transports)], ['websocket'])
  assert.ok(c.events.every((e) => e.currentFile === name), 'the metadata filename is the current file')
  assert.equal(result.response.status, 204)
  assert.ok(result.key.startsWith(`${server}/files/`), result.key)
  record('tus', `.tus/${result.key.split('/').pop()}`, bytes)
})

test('sandbox: uploadWithProgress in parts, completed through completing', { timeout: testTimeout }, async () => {
  const target = `/js/${unique('sandbox')}.bin`
  const { bytes, result, c } = await upload('sandbox', { sandbox: 'sb1', credential, targetPath: target, partSize: 1 << 20 }, 5)
  checkProgress(c.events, size)
  assert.deepEqual([...new Set(c.transports)], ['websocket'])
  assert.ok(c.events.every((e) => e.currentFile === target))
  assert.ok([200, 202].includes(result.response.status), `complete answered ${result.response.status}`)
  assert.match(result.key, /\/v1\/sandboxes\/sb1\/uploads\/[^/]+$/)
  record('sandbox', target, bytes)
})

test('dstor: uploadWithProgress as one chunk, completed through the origin stages', { timeout: testTimeout }, async () => {
  const folder = `/js/${unique('dstor')}`
  const name = 'photo.bin'
  const bytes = pattern(size, 6)
  const gate = gated(bytes, first)
  const c = collector(gate)
  const result = await uploadWithProgress(gate.body, {
    server, protocol: 'dstor', WebSocket, size, credential, folderPath: folder, name,
    onProgress: c.onProgress, onEnd: c.onEnd,
  })
  assert.equal((await c.ended).error, null)
  // The server counts the chunk's body: the file in its multipart framing.
  const counted = c.events.at(-1).total
  assert.ok(counted > size && counted < size + 1024, `total ${counted}`)
  checkProgress(c.events, counted)
  assert.deepEqual([...new Set(c.transports)], ['websocket'])
  assert.ok(c.events.some((e) => e.currentFile === name), 'the chunk\'s file is the current file while it streams')
  assert.equal(c.events.at(-1).files, 1)
  assert.equal(result.response.status, 200)
  record('dstor', `${folder}/${name}`, bytes)
})

test('watchUpload follows an upload it did not send, by polling', { timeout: testTimeout }, async () => {
  const path = `/js/${unique('watched')}.bin`
  const bytes = pattern(size, 7)
  const gate = gated(bytes, first)
  const c = collector(gate)
  let firstSeen
  const seen = new Promise((resolve) => { firstSeen = resolve })
  const onProgress = (...args) => { c.onProgress(...args); firstSeen() }
  const w = watchUpload({ server, protocol: 'shard', key: path, credential, transports: ['poll'], pollInterval: 50, onProgress, onEnd: c.onEnd, onTransport: c.onTransport })
  await seen // the upload starts once the watch has had its first answer
  const res = await fetch(`${server}/fso?path=${encodeURIComponent(path)}&informProgress=true`, {
    method: 'POST', body: gate.body, duplex: 'half', headers: { 'x-user-api-key': credential, 'Content-Length': String(size) },
  })
  assert.equal(res.status, 201, await res.text())
  const end = await c.ended
  w.stop()
  assert.equal(end.error, null)
  checkProgress(c.events, size)
  assert.deepEqual(c.tried, ['poll'])
  assert.equal(c.events[0].status, 'waiting') // not_exist: the watch began first
  record('shard', path, bytes)
})

test('a refused credential ends the watch with the protocol\'s error', { timeout: testTimeout }, async () => {
  const c = collector()
  watchUpload({ server, protocol: 'dstor', key: 'no-such-token', credential, WebSocket, onProgress: c.onProgress, onEnd: c.onEnd, maxRetries: 2, minBackoff: 10 })
  const end = await c.ended
  assert.match(String(end.error), /404: upload not found/)
  assert.equal(end.event, null)
})

test('the handler serves this module at client_path', { timeout: testTimeout }, async () => {
  const res = await fetch(`${server}/upload-progress.js`)
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8')
  const served = new Uint8Array(await res.arrayBuffer())
  assert.deepEqual(served, new Uint8Array(readFileSync(new URL('../../../clients/js/upload-progress.js', import.meta.url))))
  const again = await fetch(`${server}/upload-progress.js`, { headers: { 'If-None-Match': res.headers.get('etag') } })
  assert.equal(again.status, 304)
})
