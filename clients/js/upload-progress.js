// upload-progress.js: the browser and Node client of caddy-upload-progress.
//
// One ES module without dependencies. watchUpload follows an upload's
// progress as Caddy counts it, over WebSocket, then Server-Sent Events,
// then polling the protocol's REST status endpoint, reconnecting with
// backoff, and reports every protocol's replies as one event:
//
//   {uploaded, total, status, currentFile, files, rate, eta}
//
// uploadWithProgress sends a file through Caddy with fetch and reports the
// server's count of it, not the browser's.
//
// Browsers cannot set headers on a WebSocket or an EventSource: where the
// protocol's credential is a header, a page gets a watch token from the
// REST status endpoint (with the header, through fetch) and opens the
// WebSocket with ?watch_token=; Server-Sent Events are then read through
// fetch, which can send the header. Node sends headers directly.

/** The statuses of the normalised event that end a watch. */
export const FINAL_STATUSES = Object.freeze(['completed', 'failed', 'aborted', 'expired'])

const FINAL = new Set(FINAL_STATUSES)

const inNode = typeof process === 'object' && process !== null && typeof process.versions?.node === 'string' &&
  typeof window === 'undefined'

// Each protocol: where its status and its stream are, how its credential
// travels, and how its replies read as the normalised event.
const PROTOCOLS = {
  shard: {
    statusPath: '/progress',
    websocketPath: '/ws/progress',
    keyParam: 'path',
    headers: (o) => (o.credential ? { 'x-user-api-key': o.credential } : {}),
    normalise: shardEvent,
  },
  pcloud: {
    statusPath: '/uploadprogress',
    websocketPath: '/uploadprogress/ws',
    keyParam: 'progresshash',
    // pCloud's credential is a parameter: a WebSocket and an EventSource
    // can carry it.
    query: (o) => (o.credential ? { auth: o.credential } : {}),
    normalise: pcloudEvent,
  },
  nginx: {
    statusPath: '/progress',
    websocketPath: null, // nginx's module has none; the websocketPath option adds one
    keyParam: 'X-Progress-ID',
    normalise: nginxEvent,
  },
  tus: {
    statusPath: '/tus/progress',
    websocketPath: '/tus/progress/ws',
    keyParam: 'upload',
    headers: (o) => (o.credential ? { Authorization: o.credential } : {}),
    normalise: tusEvent,
  },
  sandbox: {
    // The key is the session URL: its status route, and …/ws under it.
    statusURL: (o) => new URL(o.key, o.server),
    streamURL: (o) => new URL(new URL(o.key, o.server).pathname.replace(/\/+$/, '') + '/ws', o.server),
    headers: (o) => (o.credential ? { Authorization: bearer(o.credential) } : {}),
    normalise: sandboxEvent,
  },
  dstor: {
    prefix: '/v1/upload',
    statusURL: (o) => new URL(joinPath(o.prefix, '/get-status/'), o.server),
    streamURL: (o) => new URL(o.websocketPath ?? joinPath(o.prefix, '/get-status/ws'), o.server),
    headers: (o) => {
      const h = { 'x-dstor-upload-token': o.key }
      if (o.credential) h.Authorization = o.credential
      return h
    },
    // With a watch token in place of the headers, the upload token goes
    // in the query.
    tokenQuery: (o) => ({ token: o.key }),
    normalise: dstorEvent,
  },
}

/** The protocols this client speaks. */
export const PROTOCOL_NAMES = Object.freeze(Object.keys(PROTOCOLS))

function bearer(token) {
  return /^bearer\s/i.test(token) ? token : `Bearer ${token}`
}

function joinPath(prefix, path) {
  return prefix.replace(/\/+$/, '') + path
}

// ---------------------------------------------------------------------------
// The normalised event, protocol by protocol. Each returns the event
// without rate and eta, or {refusal} for a reply that refuses the watch.

function num(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : null
}

function size(v) {
  const n = num(v)
  return n !== null && n >= 0 ? n : null
}

function shardEvent(r, prev) {
  if (typeof r.status !== 'string') return { refusal: r.error || 'not a progress reply' }
  const status = { uploading: 'uploading', completed: 'completed', failed: 'failed', not_exist: 'waiting' }[r.status]
  if (!status) return { refusal: `unknown status ${r.status}` }
  if (status === 'waiting') return base('waiting', prev)
  return { ...base(status, prev), uploaded: num(r.uploaded) ?? 0, total: size(r.total_size) }
}

function pcloudEvent(r, prev) {
  if (r.result === 1900) return base('waiting', prev)
  if (r.result === 5000) return { retry: r.error || 'internal error' }
  if (r.result !== 0) return { refusal: r.error || `result ${r.result}` }
  const status = !r.finished ? 'uploading' : r.error ? 'failed' : 'completed'
  return {
    ...base(status, prev),
    uploaded: num(r.uploaded) ?? 0,
    total: size(r.total),
    currentFile: typeof r.currentfile === 'string' ? r.currentfile : null,
    files: Array.isArray(r.files) ? r.files.length : null,
  }
}

function nginxEvent(r, prev) {
  switch (r.state) {
    case 'starting':
      return base('waiting', prev)
    case 'uploading':
      return { ...base('uploading', prev), uploaded: num(r.received) ?? 0, total: size(r.size) }
    case 'done':
      // nginx's "done" carries no counts: the last ones seen stand, and the
      // upload is whole.
      return { ...base('completed', prev) }
    case 'error':
      if (r.error) return { refusal: r.error } // a refused status request
      return { ...base('failed', prev) }
  }
  return { refusal: `unknown state ${r.state}` }
}

function tusEvent(r, prev) {
  if (typeof r.status !== 'string') return { refusal: r.error || 'not a progress reply' }
  const status = {
    created: 'waiting', uploading: 'uploading', paused: 'paused', completed: 'completed',
    terminated: 'aborted', expired: 'expired', failed: 'failed', not_exist: 'waiting',
  }[r.status]
  if (!status) return { refusal: `unknown status ${r.status}` }
  if (r.status === 'not_exist') return base('waiting', prev)
  const filename = r.metadata && typeof r.metadata.filename === 'string' ? r.metadata.filename : null
  return {
    ...base(status, prev),
    uploaded: num(r.received) ?? num(r.offset) ?? 0,
    total: size(r.length),
    currentFile: filename,
  }
}

function sandboxEvent(r, prev) {
  if (typeof r.status !== 'string') return { refusal: r.error?.message || 'not an upload session' }
  const status = {
    created: 'waiting', uploading: 'uploading', staged: 'staged', completing: 'completing',
    completed: 'completed', aborted: 'aborted', expired: 'expired', failed: 'failed',
  }[r.status] ?? r.status
  let uploaded = num(r.received_bytes) ?? num(r.accepted_bytes) ?? 0
  if (status === 'waiting' && uploaded > 0) return { ...sandboxCounts(r, prev, 'uploading'), uploaded }
  return { ...sandboxCounts(r, prev, status), uploaded }
}

function sandboxCounts(r, prev, status) {
  return {
    ...base(status, prev),
    total: size(r.content_length),
    currentFile: typeof r.target_path === 'string' ? r.target_path : null,
  }
}

// dstor's proxy says ERROR at the UPLOADING stage for a refused chunk, an
// error the upload gets past when the chunk is sent again: paused, not
// failed. The end of an idle session is its expiry.
const dstorIdle = "no request for the session's idle time"

function dstorEvent(r, prev) {
  if (typeof r.status !== 'string') return { refusal: r.errorExplanation || r.message || 'not a status reply' }
  let status
  switch (r.status) {
    case 'UPLOADING':
      if (r.chunksNumber > 0 && r.chunksUploaded >= r.chunksNumber && !r.chunksInFlight) status = 'completing' // the origin's turn
      else status = r.chunksUploaded || r.chunksInFlight || r.bytesUploaded ? 'uploading' : 'waiting'
      break
    case 'DONE':
      status = 'completed'
      break
    case 'ERROR':
      if (r.errorExplanation === dstorIdle) status = 'expired'
      else if (r.errorAtStage === 'UPLOADING' && r.chunksNumber !== undefined && r.chunksUploaded < r.chunksNumber) status = 'paused'
      else status = 'failed'
      break
    default: // PENDING, ADDING_TO_IPFS, SAVING_DATA: the origin's stages after the last chunk
      status = 'completing'
  }
  return {
    ...base(status, prev),
    uploaded: num(r.bytesUploaded) ?? prev?.uploaded ?? 0,
    currentFile: typeof r.currentFile === 'string' ? r.currentFile : null,
    files: num(r.filesUploaded),
  }
}

// base is an event of status carrying over what the last one knew.
function base(status, prev) {
  return {
    uploaded: prev?.uploaded ?? 0,
    total: prev?.total ?? null,
    status,
    currentFile: null,
    files: prev?.files ?? null,
  }
}

/**
 * normalise reads one reply of a protocol's status endpoint (parsed JSON)
 * as the normalised event, without rate and eta. prev is the last event,
 * for what a reply does not repeat; total, the upload's size where the
 * protocol reports none (dstor). It returns {refusal: message} for a
 * reply that refuses the watch.
 */
export function normalise(protocol, reply, prev = null, total = null) {
  const p = PROTOCOLS[protocol]
  if (!p) throw new TypeError(`unknown protocol ${protocol}`)
  if (reply === null || typeof reply !== 'object' || Array.isArray(reply)) return { refusal: 'not a JSON object' }
  const ev = p.normalise(reply, prev)
  if (ev.refusal !== undefined || ev.retry !== undefined) return ev
  if (ev.total === null && total !== null) ev.total = total
  if (ev.status === 'completed') {
    // A completed upload is whole: its size where it was not known, its
    // count where the reply gave none (nginx's done).
    if (ev.total === null) ev.total = ev.uploaded
    else if (ev.uploaded < ev.total && (protocol === 'nginx' || protocol === 'dstor')) ev.uploaded = ev.total
  }
  return ev
}

// ---------------------------------------------------------------------------
// Options.

function settle(opts) {
  if (!opts || typeof opts !== 'object') throw new TypeError('watchUpload needs options')
  const protocol = opts.protocol ?? 'shard'
  const p = PROTOCOLS[protocol]
  if (!p) throw new TypeError(`unknown protocol ${JSON.stringify(protocol)}; one of ${PROTOCOL_NAMES.join(', ')}`)
  if (typeof opts.key !== 'string' || opts.key === '') throw new TypeError('key is required: the upload\'s key in its protocol')
  let server = opts.server
  if (server === undefined && typeof location === 'object' && location !== null) server = location.origin
  if (!server) throw new TypeError('server is required: the base URL of Caddy, e.g. https://files.example.com')
  const o = {
    ...opts,
    protocol,
    p,
    server: String(server),
    prefix: opts.prefix ?? p.prefix ?? '',
    pollInterval: opts.pollInterval ?? 1000,
    minBackoff: opts.minBackoff ?? 250,
    maxBackoff: opts.maxBackoff ?? 10000,
    maxRetries: opts.maxRetries ?? 10,
    total: opts.total ?? null,
    fetch: opts.fetch ?? globalThis.fetch?.bind(globalThis),
    WebSocket: opts.WebSocket ?? globalThis.WebSocket,
    EventSource: opts.EventSource ?? (inNode ? undefined : globalThis.EventSource),
  }
  if (!o.fetch) throw new TypeError('no fetch: pass one as the fetch option')
  o.headers = { ...(p.headers?.(o) ?? {}), ...(opts.headers ?? {}) }
  o.query = p.query?.(o) ?? {}
  o.statusURL = p.statusURL ? p.statusURL(o) : withQuery(new URL(opts.statusPath ?? p.statusPath, o.server), { [p.keyParam]: o.key, ...o.query })
  const wsPath = opts.websocketPath ?? p.websocketPath
  o.streamURL = p.streamURL ? p.streamURL(o) : wsPath ? withQuery(new URL(wsPath, o.server), { [p.keyParam]: o.key, ...o.query }) : null
  const all = ['websocket', 'sse', 'poll']
  o.transports = (opts.transports ?? all).filter((t) => {
    if (!all.includes(t)) throw new TypeError(`unknown transport ${t}; one of ${all.join(', ')}`)
    return t === 'poll' || o.streamURL !== null
  })
  if (o.transports.length === 0) throw new TypeError('no transport left: this protocol has no stream endpoint, allow poll')
  // A token the caller holds (a page whose server got it) stands in for
  // the credential at the REST endpoint too.
  o.pollURL = new URL(o.statusURL)
  if (typeof opts.watchToken === 'string' && opts.watchToken !== '') {
    o.pollURL.searchParams.set('watch_token', opts.watchToken)
    for (const [k, v] of Object.entries(p.tokenQuery?.(o) ?? {})) o.pollURL.searchParams.set(k, v)
  }
  return o
}

function withQuery(url, params) {
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
  return url
}

function wsScheme(url) {
  const u = new URL(url)
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:'
  return u
}

// ---------------------------------------------------------------------------
// watchUpload.

/**
 * watchUpload follows one upload's progress until it ends.
 *
 * Options: server (Caddy's base URL; in a page, the page's origin by
 * default), protocol (shard, pcloud, nginx, tus, sandbox, dstor), key and
 * credential (the protocol's own: shard the path and the API key, pcloud
 * the progresshash and the auth token, nginx the X-Progress-ID, tus the
 * upload URL, sandbox the session URL and the bearer token, dstor the
 * upload token and the Authorization credential), watchToken (a token
 * already obtained, used at every endpoint in place of the credential, or
 * true to get one even where headers can be sent),
 * onProgress(event, reply, transport) for every reply (reply: the
 * protocol's own JSON; transport: 'websocket', 'sse' or 'poll'),
 * onEnd(event, error) once (event: the last one, null if none came;
 * error: null when the upload reached a final status or the server ended
 * the stream, else why watching stopped: a refusal, or maxRetries
 * failures in a row), onTransport(name) at each attempt of a transport.
 * More: transports (the order to try, default ['websocket', 'sse',
 * 'poll']), pollInterval (ms, 1000), minBackoff and maxBackoff (ms, 250
 * and 10000), maxRetries (consecutive failures before giving up, 10),
 * total (the upload's size where the protocol reports none), statusPath,
 * websocketPath, prefix (dstor), headers, fetch, WebSocket, EventSource.
 *
 * It returns {stop()}: stop ends the watch without calling onEnd.
 */
export function watchUpload(opts) {
  const w = new Watch(settle(opts))
  w.run()
  return { stop: () => w.stop() }
}

class Watch {
  constructor(o) {
    this.o = o
    this.ended = false
    this.last = null
    this.stopper = new AbortController()
    this.closeCurrent = null
    this.token = typeof o.watchToken === 'string' ? o.watchToken : null
    this.sseRetry = null
    this.lastEventID = null
    this.samples = null
    this.nudging = false
  }

  stop() {
    this.ended = true
    this.stopper.abort()
    this.closeCurrent?.()
  }

  // finish ends the watch once, with the last event and why it ended early.
  finish(error = null) {
    if (this.ended) return
    this.ended = true
    this.stopper.abort()
    this.closeCurrent?.()
    this.o.onEnd?.(this.last, error)
  }

  // take handles one reply; it returns false for a reply that is no
  // progress (then the transport decides), true otherwise.
  take(reply, via) {
    if (this.ended) return true
    const ev = normalise(this.o.protocol, reply, this.last, this.o.total)
    if (ev.refusal !== undefined) {
      this.finish(new Error(ev.refusal))
      return true
    }
    if (ev.retry !== undefined) return false
    this.pace(ev)
    this.last = ev
    this.o.onProgress?.(ev, reply, via)
    if (FINAL.has(ev.status)) this.finish()
    else if (ev.status === 'completing' && this.token && via !== 'poll') this.nudge()
    return true
  }

  // nudge polls the status endpoint with the credential while a session
  // watched with a watch token is completing: the proxy asks the origin
  // how a session stands only for a watcher that holds the credential, so
  // the end the origin reaches by itself comes to a token's watchers
  // through a status request that passes to the origin.
  async nudge() {
    if (this.nudging) return
    this.nudging = true
    try {
      while (!this.ended && this.last?.status === 'completing') {
        await sleep(this.o.pollInterval, this.stopper.signal)
        if (this.ended) break
        const res = await this.o.fetch(this.o.statusURL, { headers: this.o.headers, signal: this.stopper.signal, cache: 'no-store' })
        const reply = await readJSON(res)
        if (res.ok && reply !== null) this.take(reply, 'poll')
      }
    } catch {
      // The stream goes on; a failed nudge is tried at the next completing.
    } finally {
      this.nudging = false
    }
  }

  // pace adds rate (bytes a second, smoothed) and eta (seconds) to ev.
  pace(ev) {
    const now = Date.now()
    const prev = this.last
    let rate = prev?.rate ?? null
    if (this.samples === null) {
      this.samples = { t: now, uploaded: ev.uploaded }
    } else if (ev.uploaded !== this.samples.uploaded && now > this.samples.t) {
      const inst = Math.max(0, ev.uploaded - this.samples.uploaded) / ((now - this.samples.t) / 1000)
      rate = rate === null ? inst : 0.7 * rate + 0.3 * inst
      this.samples = { t: now, uploaded: ev.uploaded }
    }
    ev.rate = rate
    if (ev.status === 'completed') ev.eta = 0
    else if (rate > 0 && ev.total !== null && ev.status === 'uploading') ev.eta = Math.max(0, ev.total - ev.uploaded) / rate
    else ev.eta = null
  }

  async run() {
    const o = this.o
    let i = 0
    let failures = 0
    while (!this.ended) {
      const transport = o.transports[i]
      o.onTransport?.(transport)
      let outcome
      try {
        outcome = await this[transport]()
      } catch (err) {
        outcome = { next: 'fallback', error: err }
      }
      if (this.ended) return
      if (outcome.gotMessage) failures = 0
      if (outcome.next === 'fallback' && i < o.transports.length - 1) {
        i++
        continue
      }
      failures++
      if (failures > o.maxRetries) {
        this.finish(new Error(`gave up after ${o.maxRetries} retries: ${outcome.error?.message ?? 'no answer'}`))
        return
      }
      const wait = Math.min(o.maxBackoff, (transport === 'sse' && this.sseRetry) || o.minBackoff * 2 ** (failures - 1))
      await sleep(wait * (0.75 + Math.random() / 2), this.stopper.signal)
    }
  }

  // streamURL is the stream endpoint's URL, with the watch token if one
  // stands in for the credential.
  streamURL(scheme) {
    let u = new URL(this.o.streamURL)
    if (this.token) {
      u.searchParams.set('watch_token', this.token)
      for (const [k, v] of Object.entries(this.o.p.tokenQuery?.(this.o) ?? {})) u.searchParams.set(k, v)
    }
    if (scheme === 'ws') u = wsScheme(u)
    return u.toString()
  }

  needsHeaders() {
    return Object.keys(this.o.headers).length > 0
  }

  // getToken asks the REST status endpoint for a watch token, with the
  // credential's headers; its reply is progress too.
  async getToken() {
    const u = new URL(this.o.statusURL)
    u.searchParams.set('watch_token', '1')
    const res = await this.o.fetch(u, { headers: this.o.headers, signal: this.stopper.signal, cache: 'no-store' })
    const reply = await readJSON(res)
    if (!res.ok || reply === null) {
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        this.finish(new Error(refusalMessage(res, reply)))
      }
      return null
    }
    this.take(reply, 'poll')
    return typeof reply.watch_token === 'string' && reply.watch_token !== '' ? reply.watch_token : null
  }

  websocket() {
    const o = this.o
    const WS = o.WebSocket
    if (typeof WS !== 'function') return { next: 'fallback', error: new Error('no WebSocket') }
    const run = async () => {
      // Headers go with the handshake in Node (ws, undici); a page needs a token.
      // A server that offers no token needs none here (an ownerless
      // protocol), or has none to give: the bare WebSocket tells which.
      const headerless = !inNode || o.watchToken === true
      if (this.needsHeaders() && headerless && !this.token) {
        this.token = await this.getToken()
        if (this.ended) return { next: 'end' }
      }
      const url = this.streamURL('ws')
      const withHeaders = this.needsHeaders() && !this.token && !headerless
      return new Promise((resolve) => {
        let socket
        try {
          socket = withHeaders ? new WS(url, { headers: o.headers }) : new WS(url)
        } catch (err) {
          resolve({ next: 'fallback', error: err })
          return
        }
        let opened = false
        let gotMessage = false
        let errored = null
        this.closeCurrent = () => socket.close(1000)
        socket.onopen = () => {
          opened = true
        }
        socket.onerror = (e) => {
          errored = e?.error ?? new Error(e?.message ?? 'WebSocket error')
        }
        socket.onmessage = (e) => {
          let reply
          try {
            reply = JSON.parse(typeof e.data === 'string' ? e.data : new TextDecoder().decode(e.data))
          } catch {
            return
          }
          gotMessage = true
          this.take(reply, 'websocket')
        }
        socket.onclose = (e) => {
          this.closeCurrent = null
          if (this.ended) return resolve({ next: 'end', gotMessage })
          if (e.code === 1000 && gotMessage) {
            // The server closes normally after the final state.
            this.finish()
            return resolve({ next: 'end', gotMessage })
          }
          if (e.code === 1008) {
            this.finish(new Error(e.reason || 'the server refused the watcher'))
            return resolve({ next: 'end', gotMessage })
          }
          if (this.token && typeof o.watchToken !== 'string') this.token = null // may have expired
          const error = errored ?? new Error(`WebSocket closed with ${e.code} ${e.reason ?? ''}`.trim())
          resolve({ next: opened && gotMessage ? 'retry' : 'fallback', gotMessage, error })
        }
      })
    }
    return run()
  }

  sse() {
    const o = this.o
    if (!this.needsHeaders() && typeof o.EventSource === 'function') return this.eventSource()
    return this.fetchStream()
  }

  // eventSource reads the stream with the browser's EventSource, where
  // no header is needed.
  eventSource() {
    return new Promise((resolve) => {
      const es = new this.o.EventSource(this.streamURL('http'))
      let gotMessage = false
      const done = (outcome) => {
        es.close()
        this.closeCurrent = null
        resolve(outcome)
      }
      this.closeCurrent = () => done({ next: 'end', gotMessage })
      es.addEventListener('progress', (e) => {
        gotMessage = true
        this.takeText(e.data)
      })
      es.addEventListener('refused', (e) => {
        this.finish(new Error(refusalText(e.data)))
        done({ next: 'end', gotMessage })
      })
      es.addEventListener('end', (e) => {
        gotMessage = true
        this.takeText(e.data)
        this.finish()
        done({ next: 'end', gotMessage })
      })
      es.onerror = () => done({ next: gotMessage ? 'retry' : 'fallback', gotMessage, error: new Error('EventSource failed') })
    })
  }

  takeText(data) {
    let reply
    try {
      reply = JSON.parse(data)
    } catch {
      return
    }
    this.take(reply, 'sse')
  }

  // fetchStream reads the stream through fetch, with the headers.
  async fetchStream() {
    const o = this.o
    const ctl = new AbortController()
    const onStop = () => ctl.abort()
    this.stopper.signal.addEventListener('abort', onStop)
    this.closeCurrent = onStop
    const headers = { Accept: 'text/event-stream', ...(this.token ? {} : o.headers) }
    if (this.lastEventID !== null) headers['Last-Event-ID'] = this.lastEventID
    let gotMessage = false
    try {
      const res = await o.fetch(this.streamURL('http'), { headers, signal: ctl.signal, cache: 'no-store' })
      const type = res.headers.get('content-type') ?? ''
      if (!res.ok || !type.startsWith('text/event-stream') || !res.body) {
        await res.body?.cancel().catch(() => {})
        return { next: 'fallback', error: new Error(`no event stream: ${res.status} ${type}`) }
      }
      let ended = false
      await readEventStream(res.body, (ev) => {
        if (ev.retry !== undefined) this.sseRetry = ev.retry
        if (ev.id !== undefined) this.lastEventID = ev.id
        if (ev.event === 'progress' || ev.event === 'end' || ev.event === 'message') {
          gotMessage = true
          this.takeText(ev.data)
        }
        if (ev.event === 'end') {
          ended = true
          this.finish()
          ctl.abort()
        }
        if (ev.event === 'refused') {
          // The origin refused the session's credential: the protocol's
          // error reply.
          ended = true
          this.finish(new Error(refusalText(ev.data)))
          ctl.abort()
        }
      })
      if (ended || this.ended) return { next: 'end', gotMessage }
      return { next: gotMessage ? 'retry' : 'fallback', gotMessage, error: new Error('event stream ended early') }
    } catch (err) {
      if (this.ended) return { next: 'end', gotMessage }
      return { next: gotMessage ? 'retry' : 'fallback', gotMessage, error: err }
    } finally {
      this.stopper.signal.removeEventListener('abort', onStop)
      this.closeCurrent = null
    }
  }

  // poll asks the REST status endpoint every pollInterval until the end.
  async poll() {
    const o = this.o
    let gotMessage = false
    while (!this.ended) {
      let res
      try {
        res = await o.fetch(o.pollURL, { headers: o.headers, signal: this.stopper.signal, cache: 'no-store' })
      } catch (err) {
        return { next: 'retry', gotMessage, error: err }
      }
      const reply = await readJSON(res).catch(() => null)
      if (this.ended) break
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        this.finish(new Error(refusalMessage(res, reply)))
        break
      }
      if (!res.ok || reply === null) return { next: 'retry', gotMessage, error: new Error(`status ${res.status}`) }
      if (!this.take(reply, 'poll')) return { next: 'retry', gotMessage, error: new Error('the server is busy') }
      gotMessage = true
      if (this.ended) break
      await sleep(o.pollInterval, this.stopper.signal)
    }
    return { next: 'end', gotMessage }
  }
}

async function readJSON(res) {
  const text = await res.text()
  try {
    return JSON.parse(text)
  } catch {
    return null
  }
}

// refusalMessage is why a status request was refused, in the words of the
// protocol's error reply where it has them.
function refusalMessage(res, reply) {
  const e = reply?.error
  const why = typeof e === 'string' ? e : e?.message ?? reply?.errorExplanation ?? reply?.message
  return `${res.status}${why ? `: ${why}` : ''}`
}

// refusalText is the message of an error reply's JSON text.
function refusalText(data) {
  let reply = null
  try {
    reply = JSON.parse(data)
  } catch {}
  const e = reply?.error
  return (typeof e === 'string' ? e : e?.message ?? reply?.errorExplanation ?? reply?.message) || 'the server refused the watch'
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const t = setTimeout(done, ms)
    function done() {
      clearTimeout(t)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done)
  })
}

/**
 * readEventStream parses a text/event-stream body (a ReadableStream of
 * bytes) and calls onEvent({event, data, id, retry}) for each event, as
 * the HTML standard's parser does: event defaults to "message", data lines
 * join with "\n", comment lines are skipped, a retry: field is reported as
 * soon as it is read (as {retry}).
 */
export async function readEventStream(body, onEvent) {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buf = ''
  let ev = { event: '', data: [], id: undefined }
  const line = (l) => {
    if (l === '') {
      if (ev.data.length > 0) onEvent({ event: ev.event || 'message', data: ev.data.join('\n'), id: ev.id })
      ev = { event: '', data: [], id: undefined }
      return
    }
    if (l[0] === ':') return
    const colon = l.indexOf(':')
    const field = colon < 0 ? l : l.slice(0, colon)
    let value = colon < 0 ? '' : l.slice(colon + 1)
    if (value[0] === ' ') value = value.slice(1)
    switch (field) {
      case 'event':
        ev.event = value
        break
      case 'data':
        ev.data.push(value)
        break
      case 'id':
        if (!value.includes('\0')) ev.id = value
        break
      case 'retry':
        if (/^\d+$/.test(value)) onEvent({ retry: Number(value) })
        break
    }
  }
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      buf += decoder.decode(value, { stream: true })
      let start = 0
      for (;;) {
        const m = /\r\n|\r|\n/g
        m.lastIndex = start
        const hit = m.exec(buf)
        // A lone \r at the end may be the first half of \r\n: wait for more.
        if (!hit || (hit[0] === '\r' && hit.index === buf.length - 1)) break
        line(buf.slice(start, hit.index))
        start = hit.index + hit[0].length
      }
      buf = buf.slice(start)
    }
  } finally {
    reader.releaseLock()
  }
}

// ---------------------------------------------------------------------------
// uploadWithProgress.

/** UploadError is a refused upload: response is the answer that refused it. */
export class UploadError extends Error {
  constructor(message, response, event) {
    super(message)
    this.name = 'UploadError'
    this.response = response
    this.event = event
  }
}

/**
 * uploadWithProgress sends body through Caddy in the protocol's way and
 * reports, with onProgress(event, reply), the server's count of it (the
 * same events as watchUpload's).
 *
 * body: a File or Blob, an ArrayBuffer or typed array (a Buffer), a
 * string, or (Node) a stream or any async iterable of bytes, or a
 * ReadableStream; a stream's size goes in the size option.
 *
 * Options are watchUpload's (headers go with every request), plus: name (the file name; a File's own by
 * default), size, signal (an AbortSignal), query (more parameters of the
 * upload request, e.g. {overwrite: 'true'} for shard), uploadPath (shard
 * /fso, pcloud /uploadfile, nginx /upload, tus /files/), settleTimeout
 * (ms the watch may take to see the end once the upload is answered,
 * 10000), and per protocol: shard key (the path) and credential; pcloud
 * key (the progresshash) and credential (auth); nginx key (the
 * X-Progress-ID); tus credential, metadata; sandbox sandbox (its id),
 * credential (the bearer token), targetPath, partSize (8 MiB), conflict
 * (replace); dstor credential, folderPath.
 *
 * It resolves to {response: {status, headers, body}, event, key} once the
 * upload is answered and the watch has seen its end: event is the last
 * normalised event, key the upload's key (tus: its URL; sandbox: its
 * session URL; dstor: its token). A refused upload rejects with an
 * UploadError.
 */
export async function uploadWithProgress(body, opts = {}) {
  const protocol = opts.protocol ?? 'shard'
  const send = UPLOADS[protocol]
  if (!send) throw new TypeError(`unknown protocol ${JSON.stringify(protocol)}; one of ${PROTOCOL_NAMES.join(', ')}`)
  let server = opts.server
  if (server === undefined && typeof location === 'object' && location !== null) server = location.origin
  if (!server) throw new TypeError('server is required: the base URL of Caddy')
  const o = {
    ...opts,
    protocol,
    server: String(server),
    fetch: opts.fetch ?? globalThis.fetch?.bind(globalThis),
    name: opts.name ?? (typeof body?.name === 'string' ? body.name.split(/[\\/]/).pop() : 'upload.bin'),
    size: opts.size ?? byteSize(body),
    settleTimeout: opts.settleTimeout ?? 10000,
  }
  if (!o.fetch) throw new TypeError('no fetch: pass one as the fetch option')
  return send(body, o)
}

function byteSize(body) {
  if (typeof Blob === 'function' && body instanceof Blob) return body.size
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return body.byteLength
  if (typeof body === 'string') return new TextEncoder().encode(body).byteLength
  return null
}

// isStream reports whether body is read as a stream (a Node stream, an
// async iterable, a ReadableStream) rather than a whole value.
function isStream(body) {
  return body !== null && typeof body === 'object' &&
    (typeof body[Symbol.asyncIterator] === 'function' || typeof body.getReader === 'function') &&
    !(typeof Blob === 'function' && body instanceof Blob)
}

// request sends one request and reads its answer whole.
async function request(o, url, init) {
  const headers = { ...(o.headers ?? {}), ...(init.headers ?? {}) }
  const req = { method: init.method ?? 'POST', headers, signal: o.signal, cache: 'no-store' }
  if (init.body !== undefined) {
    req.body = init.body
    if (isStream(init.body)) {
      req.duplex = 'half'
      if (init.size !== null && init.size !== undefined) headers['Content-Length'] = String(init.size)
    }
  }
  const res = await o.fetch(url, req)
  const text = await res.text()
  let json = null
  try {
    json = JSON.parse(text)
  } catch {}
  return { status: res.status, ok: res.ok, headers: res.headers, body: text, json }
}

function refused(what, r, event = null) {
  return new UploadError(`${what} refused: ${r.status} ${r.body.slice(0, 200)}`.trim(), r, event)
}

// tracked runs send while the upload's key is watched, and settles once
// both the upload is answered and the watch has seen the end (or, the
// upload answered, settleTimeout has passed).
function tracked(o, key, send, watchOpts = {}) {
  return new Promise((resolve, reject) => {
    let last = null
    let watchDone = false
    let answer = null
    let settled = false
    let timer = null
    const w = watchUpload({
      ...o,
      ...watchOpts,
      key,
      total: o.size ?? null,
      onProgress: (ev, reply, via) => {
        last = ev
        o.onProgress?.(ev, reply, via)
      },
      onEnd: (ev, err) => {
        watchDone = true
        last = ev ?? last
        o.onEnd?.(ev, err)
        done()
      },
    })
    const done = () => {
      if (settled || answer === null || (!watchDone && timer !== null)) return
      if (!watchDone) {
        timer = setTimeout(() => {
          w.stop()
          watchDone = true
          o.onEnd?.(last, new Error(`the watch saw no end within ${o.settleTimeout} ms of the upload's answer`))
          done()
        }, o.settleTimeout)
        return
      }
      settled = true
      clearTimeout(timer)
      const response = { status: answer.status, headers: answer.headers, body: answer.body }
      if (!answer.ok) reject(refused('upload', answer, last))
      else resolve({ response, event: last, key })
    }
    send().then((a) => {
      answer = a
      done()
    }, (err) => {
      settled = true
      clearTimeout(timer)
      w.stop()
      reject(err)
    })
  })
}

function url(o, path, query = {}) {
  return withQuery(new URL(path, o.server), { ...query, ...(o.query ?? {}) })
}

const UPLOADS = {
  shard(body, o) {
    const u = url(o, o.uploadPath ?? '/fso', { path: o.key, informProgress: 'true' })
    const headers = o.credential ? { 'x-user-api-key': o.credential } : {}
    return tracked(o, o.key, () => request(o, u, { body, size: o.size, headers: { ...headers, 'Content-Type': 'application/octet-stream' } }))
  },
  pcloud(body, o) {
    const q = { progresshash: o.key, filename: o.name }
    if (o.credential) q.auth = o.credential
    return tracked(o, o.key, () => request(o, url(o, o.uploadPath ?? '/uploadfile', q), { body, size: o.size, headers: { 'Content-Type': 'application/octet-stream' } }))
  },
  nginx(body, o) {
    const u = url(o, o.uploadPath ?? '/upload', { 'X-Progress-ID': o.key, filename: o.name })
    return tracked(o, o.key, () => request(o, u, { body, size: o.size, headers: { 'Content-Type': 'application/octet-stream' } }))
  },
  async tus(body, o) {
    if (o.size === null) throw new TypeError('tus: the size option is needed for a stream')
    const auth = o.credential ? { Authorization: o.credential } : {}
    const meta = { filename: o.name, ...(o.metadata ?? {}) }
    const created = await request(o, url(o, o.uploadPath ?? '/files/'), {
      headers: {
        ...auth,
        'Tus-Resumable': '1.0.0',
        'Upload-Length': String(o.size),
        'Upload-Metadata': Object.entries(meta).map(([k, v]) => `${k} ${base64(String(v))}`).join(','),
      },
    })
    const loc = created.headers.get('location')
    if (!created.ok || !loc) throw refused('tus creation', created)
    const key = new URL(loc, new URL(o.uploadPath ?? '/files/', o.server)).toString()
    return tracked(o, key, () => request(o, key, {
      method: 'PATCH',
      body,
      size: o.size,
      headers: { ...auth, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    }))
  },
  async sandbox(body, o) {
    if (!o.sandbox) throw new TypeError('sandbox: the sandbox option (its id) is required')
    if (o.size === null) throw new TypeError('sandbox: the size option is needed for a stream')
    const prefix = o.prefix ?? '/v1'
    const auth = o.credential ? { Authorization: bearer(o.credential) } : {}
    const partSize = o.partSize ?? 8 << 20
    const created = await request(o, url(o, joinPath(prefix, `/sandboxes/${encodeURIComponent(o.sandbox)}/uploads`)), {
      body: JSON.stringify({
        target_path: o.targetPath ?? `/${o.name}`, content_length: o.size, part_size: partSize,
        kind: 'file', conflict: o.conflict ?? 'replace',
      }),
      headers: { ...auth, 'Content-Type': 'application/json' },
    })
    if (!created.ok || typeof created.json?.upload_id !== 'string') throw refused('sandbox session creation', created)
    const session = new URL(joinPath(prefix, `/sandboxes/${encodeURIComponent(o.sandbox)}/uploads/${encodeURIComponent(created.json.upload_id)}`), o.server).toString()
    const size = created.json.part_size ?? partSize
    return tracked(o, session, async () => {
      let n = 0
      for await (const part of partsOf(body, size)) {
        n++
        const put = await request(o, `${session}/parts/${n}`, { method: 'PUT', body: part, headers: { ...auth, 'Content-Type': 'application/octet-stream' } })
        if (!put.ok) return put
      }
      return request(o, `${session}/complete`, { headers: auth })
    }, { key: session })
  },
  async dstor(body, o) {
    const prefix = o.prefix ?? '/v1/upload'
    const auth = o.credential ? { Authorization: o.credential } : {}
    const got = await request(o, url(o, joinPath(prefix, '/get-token')), {
      body: JSON.stringify({ chunks_number: 1, folder_path: o.folderPath ?? '/' }),
      headers: { ...auth, 'Content-Type': 'application/json' },
    })
    if (!got.ok || typeof got.json?.token !== 'string') throw refused('dstor get-token', got)
    const token = got.json.token
    const form = multipart(body, o.name, o.size)
    // The count is the chunk's body: the file and its multipart framing.
    const chunk = { ...o, size: form.size }
    return tracked(chunk, token, () => request(o, url(o, joinPath(prefix, '/')), {
      body: form.body,
      size: form.size,
      headers: { ...auth, 'x-dstor-upload-token': token, 'Content-Type': `multipart/form-data; boundary=${form.boundary}` },
    }))
  },
}

function base64(s) {
  const bytes = new TextEncoder().encode(s)
  let bin = ''
  for (const b of bytes) bin += String.fromCharCode(b)
  return btoa(bin)
}

// multipart frames body as one file part of a multipart/form-data body,
// whole (a Blob) or as a stream.
function multipart(body, name, size) {
  const boundary = `----upload-progress-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`
  const enc = new TextEncoder()
  const quoted = name.replace(/["\\\r\n]/g, (c) => encodeURIComponent(c))
  const head = enc.encode(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${quoted}"\r\nContent-Type: application/octet-stream\r\n\r\n`)
  const tail = enc.encode(`\r\n--${boundary}--\r\n`)
  const total = size === null ? null : head.byteLength + size + tail.byteLength
  if (!isStream(body)) return { boundary, body: new Blob([head, body, tail]), size: total }
  async function* framed() {
    yield head
    for await (const chunk of iterate(body)) yield chunk
    yield tail
  }
  return { boundary, body: framed(), size: total }
}

async function* iterate(stream) {
  if (typeof stream[Symbol.asyncIterator] === 'function') {
    for await (const chunk of stream) yield typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk
    return
  }
  const reader = stream.getReader()
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      yield value
    }
  } finally {
    reader.releaseLock()
  }
}

// partsOf cuts body into parts of size bytes (the last may be shorter).
async function* partsOf(body, size) {
  if (!isStream(body)) {
    const whole = typeof body === 'string' ? new TextEncoder().encode(body) : body instanceof ArrayBuffer ? new Uint8Array(body) : body
    const length = whole.size ?? whole.byteLength
    for (let at = 0; at < length; at += size) {
      yield whole.slice ? whole.slice(at, Math.min(length, at + size)) : whole.subarray(at, at + size)
    }
    return
  }
  let buf = new Uint8Array(size)
  let fill = 0
  for await (let chunk of iterate(body)) {
    chunk = chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk)
    while (chunk.byteLength > 0) {
      const n = Math.min(size - fill, chunk.byteLength)
      buf.set(chunk.subarray(0, n), fill)
      fill += n
      chunk = chunk.subarray(n)
      if (fill === size) {
        yield buf
        buf = new Uint8Array(size)
        fill = 0
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill)
}
