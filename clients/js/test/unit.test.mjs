// The client's parts that need no server: the event-stream parser and
// each protocol's replies read as the normalised event. Run with
// `node --test clients/js/test/` (test/jsclient_test.go does).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { normalise, readEventStream, watchUpload } from '../upload-progress.js'

// stream is a ReadableStream of the given pieces of text.
function stream(...pieces) {
  const enc = new TextEncoder()
  return new ReadableStream({
    start(c) {
      for (const p of pieces) c.enqueue(enc.encode(p))
      c.close()
    },
  })
}

async function events(...pieces) {
  const got = []
  await readEventStream(stream(...pieces), (e) => got.push(e))
  return got
}

test('readEventStream: events, ids, retry, comments, line ends split across reads', async () => {
  const got = await events(
    'retry: 1500\n: heartbeat\n\nevent: progress\ndata: {"a":1}\nid: 1\n\n',
    'event: progress\r',
    '\ndata: {"a":',
    '2}\r\nid: 2\r\n\r',
    '\ndata: line one\ndata: line two\n\nevent: end\ndata: {"done":true}\nid: 3\n\n',
    'event: cut\ndata: never dispatched',
  )
  assert.deepEqual(got, [
    { retry: 1500 },
    { event: 'progress', data: '{"a":1}', id: '1' },
    { event: 'progress', data: '{"a":2}', id: '2' },
    { event: 'message', data: 'line one\nline two', id: undefined },
    { event: 'end', data: '{"done":true}', id: '3' },
  ])
})

test('readEventStream: a field without a colon, a space kept after the first, a bad retry', async () => {
  const got = await events('data\ndata:  two spaces\nretry: soon\n\n')
  assert.deepEqual(got, [{ event: 'message', data: '\n two spaces', id: undefined }])
})

test('readEventStream: the same events however the bytes are cut into reads', async () => {
  const text = 'retry: 2000\r\n: hb\r\n\r\nid: 1\nevent: progress\ndata: {"s":"é"}\n\n' +
    'id: 2\revent: progress\rdata: {"n":2}\r\r: heartbeat\n\nid: 3\r\nevent: end\r\ndata: {"n":3}\r\n\r\n'
  const bytes = new TextEncoder().encode(text)
  const whole = []
  await readEventStream(new Blob([bytes]).stream(), (e) => whole.push(e))
  assert.equal(whole.length, 4)
  let x = 12345
  for (let run = 0; run < 200; run++) {
    const cuts = []
    for (let at = 0; at < bytes.length;) {
      x = (x * 1103515245 + 12345) % 2147483648
      const n = 1 + (x % 7)
      cuts.push(bytes.subarray(at, at + n))
      at += n
    }
    const got = []
    const body = new ReadableStream({ start(c) { for (const b of cuts) c.enqueue(b); c.close() } })
    await readEventStream(body, (e) => got.push(e))
    assert.deepEqual(got, whole, `cut into ${cuts.map((c) => c.length)}`)
  }
})

const MiB = 1 << 20

test('normalise: shard', () => {
  assert.deepEqual(normalise('shard', { total_size: 0, uploaded: 0, status: 'not_exist', error: '' }),
    { uploaded: 0, total: null, status: 'waiting', currentFile: null, files: null })
  assert.deepEqual(normalise('shard', { total_size: 10 * MiB, uploaded: MiB, status: 'uploading', error: '' }),
    { uploaded: MiB, total: 10 * MiB, status: 'uploading', currentFile: null, files: null })
  assert.equal(normalise('shard', { total_size: -1, uploaded: 5, status: 'completed', error: '' }).total, 5)
  assert.equal(normalise('shard', { total_size: 9, uploaded: 5, status: 'failed', error: 'client went away' }).status, 'failed')
  assert.deepEqual(normalise('shard', { error: 'invalid API key' }), { refusal: 'invalid API key' })
})

test('normalise: pcloud', () => {
  assert.equal(normalise('pcloud', { result: 1900, error: 'Upload not found.' }).status, 'waiting')
  assert.deepEqual(normalise('pcloud', { result: 2000, error: 'Log in failed.' }), { refusal: 'Log in failed.' })
  assert.deepEqual(normalise('pcloud', { result: 5000, error: 'too many watchers' }), { retry: 'too many watchers' })
  const r = { result: 0, total: 300, uploaded: 120, currentfile: 'b.jpg', currentfileuploaded: 20, filenumber: 2, finished: false, files: [{ name: 'a.jpg', size: 90 }] }
  assert.deepEqual(normalise('pcloud', r), { uploaded: 120, total: 300, status: 'uploading', currentFile: 'b.jpg', files: 1 })
  const done = normalise('pcloud', { ...r, uploaded: 300, finished: true, currentfile: undefined, files: [{}, {}] })
  assert.deepEqual(done, { uploaded: 300, total: 300, status: 'completed', currentFile: null, files: 2 })
  assert.equal(normalise('pcloud', { ...r, finished: true, error: 'origin refused' }).status, 'failed')
})

test('normalise: nginx, whose done and error carry no counts', () => {
  const up = normalise('nginx', { state: 'uploading', received: MiB, size: 2 * MiB })
  assert.deepEqual(up, { uploaded: MiB, total: 2 * MiB, status: 'uploading', currentFile: null, files: null })
  assert.deepEqual(normalise('nginx', { state: 'done' }, up), { uploaded: 2 * MiB, total: 2 * MiB, status: 'completed', currentFile: null, files: null })
  assert.equal(normalise('nginx', { state: 'error', status: 502 }, up).status, 'failed')
  assert.equal(normalise('nginx', { state: 'starting' }).status, 'waiting')
  assert.deepEqual(normalise('nginx', { state: 'error', status: 400, error: 'missing X-Progress-ID' }), { refusal: 'missing X-Progress-ID' })
})

test('normalise: tus, each session state', () => {
  const r = { upload: '/files/a', length: 100, offset: 40, received: 60, status: 'uploading', metadata: { filename: 'v.mp4' }, error: '' }
  assert.deepEqual(normalise('tus', r), { uploaded: 60, total: 100, status: 'uploading', currentFile: 'v.mp4', files: null })
  const words = { created: 'waiting', paused: 'paused', completed: 'completed', terminated: 'aborted', expired: 'expired', failed: 'failed', not_exist: 'waiting' }
  for (const [tus, want] of Object.entries(words)) assert.equal(normalise('tus', { ...r, status: tus }).status, want, tus)
  assert.equal(normalise('tus', { ...r, length: -1 }).total, null)
  assert.deepEqual(normalise('tus', { error: 'upload not found' }), { refusal: 'upload not found' })
})

test('normalise: sandbox, the origin\'s object with the live view', () => {
  const r = { upload_id: 'up_1', target_path: '/sandbox/big.bin', content_length: 200, accepted_bytes: 0, status: 'created', received_bytes: 0, parts_in_flight: [] }
  assert.deepEqual(normalise('sandbox', r), { uploaded: 0, total: 200, status: 'waiting', currentFile: '/sandbox/big.bin', files: null })
  assert.equal(normalise('sandbox', { ...r, status: 'uploading', received_bytes: 50 }).uploaded, 50)
  for (const s of ['staged', 'completing', 'completed', 'aborted', 'expired', 'failed']) assert.equal(normalise('sandbox', { ...r, status: s }).status, s)
  assert.deepEqual(normalise('sandbox', { error: { code: 'not_found', message: 'upload session not found' } }), { refusal: 'upload session not found' })
})

test('normalise: dstor, the proxy\'s object and the origin\'s stages', () => {
  const r = { status: 'UPLOADING', chunksNumber: 3, chunksUploaded: 0, chunksInFlight: 0, bytesUploaded: 0, filesUploaded: 0, folderPath: '/p' }
  assert.equal(normalise('dstor', r).status, 'waiting')
  assert.equal(normalise('dstor', { ...r, chunksUploaded: 3, bytesUploaded: 900 }).status, 'completing') // every chunk in
  const up = normalise('dstor', { ...r, chunksInFlight: 1, bytesUploaded: 500, currentFile: '2024/a.jpg', filesUploaded: 1 }, null, 900)
  assert.deepEqual(up, { uploaded: 500, total: 900, status: 'uploading', currentFile: '2024/a.jpg', files: 1 })
  assert.equal(normalise('dstor', { ...r, status: 'ERROR', errorAtStage: 'UPLOADING', errorExplanation: 'forced failure', chunksUploaded: 2 }).status, 'paused')
  assert.equal(normalise('dstor', { ...r, status: 'ERROR', errorAtStage: 'UPLOADING', errorExplanation: "no request for the session's idle time" }).status, 'expired')
  assert.equal(normalise('dstor', { ...r, status: 'ERROR', errorAtStage: 'SAVING_DATA', chunksUploaded: 3 }).status, 'failed')
  for (const s of ['PENDING', 'ADDING_TO_IPFS', 'SAVING_DATA']) assert.equal(normalise('dstor', { ...r, status: s, chunksUploaded: 3 }).status, 'completing')
  assert.deepEqual(normalise('dstor', { status: 'DONE', chunksNumber: 3, chunksUploaded: 3, bytesUploaded: 900, filesUploaded: 6 }),
    { uploaded: 900, total: 900, status: 'completed', currentFile: null, files: 6 })
})

test('watchUpload: options checked at once', () => {
  assert.throws(() => watchUpload({ server: 'http://x', protocol: 'ftp', key: 'k' }), /unknown protocol "ftp"/)
  assert.throws(() => watchUpload({ server: 'http://x', protocol: 'shard' }), /key is required/)
  assert.throws(() => watchUpload({ protocol: 'shard', key: '/a' }), /server is required/)
  assert.throws(() => watchUpload({ server: 'http://x', protocol: 'nginx', key: 'k', transports: ['websocket'] }), /no transport left/)
})

// A fake server for the transports' logic: fetch answers from a script.
function scriptedFetch(answers) {
  const asked = []
  const f = async (url, init) => {
    asked.push({ url: String(url), headers: init?.headers })
    const a = answers.shift()
    if (!a) return new Response('{"error":"script ended"}', { status: 503 })
    if (a instanceof Error) throw a
    return new Response(typeof a.body === 'string' ? a.body : JSON.stringify(a.body), { status: a.status ?? 200, headers: a.headers ?? { 'Content-Type': 'application/json' } })
  }
  return { f, asked }
}

function watched(opts) {
  return new Promise((resolve) => {
    const evs = []
    const tried = []
    watchUpload({
      server: 'http://127.0.0.1:1', minBackoff: 1, maxBackoff: 5, pollInterval: 1, ...opts,
      onProgress: (e, _r, via) => evs.push([e.status, e.uploaded, via]),
      onTransport: (t) => tried.push(t),
      onEnd: (e, err) => resolve({ evs, tried, end: e, err }),
    })
  })
}

test('watchUpload: polling through a network error and a 503, to the end', async () => {
  const { f, asked } = scriptedFetch([
    { body: { total_size: 10, uploaded: 0, status: 'not_exist', error: '' } },
    new TypeError('fetch failed'),
    { status: 503, body: { error: 'too many watchers' } },
    { body: { total_size: 10, uploaded: 4, status: 'uploading', error: '' } },
    { body: { total_size: 10, uploaded: 10, status: 'completed', error: '' } },
  ])
  const r = await watched({ protocol: 'shard', key: '/a b', credential: 'k', transports: ['poll'], fetch: f })
  assert.equal(r.err, null)
  assert.deepEqual(r.evs, [['waiting', 0, 'poll'], ['uploading', 4, 'poll'], ['completed', 10, 'poll']])
  assert.equal(asked[0].url, 'http://127.0.0.1:1/progress?path=%2Fa+b')
  assert.deepEqual(asked[0].headers, { 'x-user-api-key': 'k' })
})

test('watchUpload: SSE read through fetch, then end', async () => {
  const body = 'retry: 10\n\nevent: progress\ndata: {"state":"uploading","received":5,"size":9}\nid: 1\n\n' +
    'event: end\ndata: {"state":"done"}\nid: 2\n\n'
  const { f, asked } = scriptedFetch([{ body, headers: { 'Content-Type': 'text/event-stream' } }])
  const r = await watched({ protocol: 'nginx', key: 'n1', websocketPath: '/up/ws', transports: ['sse', 'poll'], fetch: f })
  assert.equal(r.err, null)
  assert.deepEqual(r.evs, [['uploading', 5, 'sse'], ['completed', 9, 'sse']])
  assert.equal(asked[0].url, 'http://127.0.0.1:1/up/ws?X-Progress-ID=n1')
  assert.equal(asked[0].headers.Accept, 'text/event-stream')
})

test('watchUpload: SSE refused, polling; a refusal ends the watch with the protocol\'s words', async () => {
  const { f } = scriptedFetch([
    { status: 426, body: { error: 'upgrade required' } },
    { status: 404, body: { error: { code: 'not_found', message: 'upload session not found' } } },
  ])
  const r = await watched({ protocol: 'sandbox', key: '/v1/sandboxes/s/uploads/u', credential: 't', transports: ['sse', 'poll'], fetch: f })
  assert.deepEqual(r.tried, ['sse', 'poll'])
  assert.equal(r.end, null)
  assert.equal(r.err.message, '404: upload session not found')
})

test('watchUpload: gives up after maxRetries failures in a row', async () => {
  const { f, asked } = scriptedFetch([])
  const r = await watched({ protocol: 'shard', key: '/a', transports: ['poll'], fetch: f, maxRetries: 3 })
  assert.match(r.err.message, /gave up after 3 retries/)
  assert.equal(asked.length, 4)
})

test('watchUpload: a watch token the caller holds goes to the REST endpoint too (dstor names its upload beside it)', async () => {
  const { f, asked } = scriptedFetch([{ body: { status: 'DONE', chunksNumber: 1, chunksUploaded: 1, bytesUploaded: 7, filesUploaded: 1 } }])
  const r = await watched({ protocol: 'dstor', key: 'tok 1', watchToken: 'wt', transports: ['poll'], fetch: f })
  assert.equal(r.err, null)
  assert.deepEqual(r.evs, [['completed', 7, 'poll']])
  assert.equal(asked[0].url, 'http://127.0.0.1:1/v1/upload/get-status/?watch_token=wt&token=tok+1')
})
