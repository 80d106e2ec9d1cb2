// watchUpload follows one upload by polling the REST progress endpoint of
// its protocol on Caddy, and reports each answer normalised:
//
//   {uploaded, total, status, currentFile, files, rate, eta, error}
//
// status is 'waiting' (the proxy does not know the key yet), 'uploading',
// 'paused' (tus: between PATCHes), 'completing' (sandbox: the origin is
// assembling the parts), 'completed' or 'failed'. rate is bytes per
// second over the last few seconds, eta seconds left. onEnd gets the
// last event once the upload completed or failed; polling stops then, or
// at stop().

const pollInterval = 250 // ms: the proxy's own update_interval
const retryInterval = 1000 // ms, after a failed poll
const rateWindow = 3000 // ms of samples the rate is measured over

// The progress endpoint of each protocol: the request for a key, and the
// answer normalised.
const protocols = {
  // shard: GET /progress?path=<path>, x-user-api-key header.
  shard: {
    request: (server, key, credential) => [
      `${server}/progress?path=${encodeURIComponent(key)}`,
      { headers: { 'x-user-api-key': credential } },
    ],
    parse: (body) => ({
      uploaded: body.uploaded,
      total: body.total_size,
      status: body.status === 'not_exist' ? 'waiting' : body.status,
      error: body.error || '',
    }),
  },
  // pcloud: GET /uploadprogress?progresshash=<hash>&auth=<credential>.
  pcloud: {
    request: (server, key, credential) => [
      `${server}/uploadprogress?progresshash=${encodeURIComponent(key)}&auth=${encodeURIComponent(credential)}`,
      {},
    ],
    parse: (body) => {
      if (body.result === 1900 && !('total' in body)) return { status: 'waiting', uploaded: 0, total: NaN, error: '' }
      if (body.result !== 0) return { status: 'failed', uploaded: 0, total: NaN, error: body.error || `result ${body.result}` }
      return {
        uploaded: body.uploaded,
        total: body.total,
        status: !body.finished ? 'uploading' : body.error ? 'failed' : 'completed',
        currentFile: body.currentfile || '',
        files: (body.files || []).map((f) => f.name),
        error: body.error || '',
      }
    },
  },
  // tus: GET /tus/progress?upload=<upload URL or its path>.
  tus: {
    request: (server, key) => [`${server}/tus/progress?upload=${encodeURIComponent(key)}`, {}],
    parse: (body) => {
      const ended = { completed: 'completed', terminated: 'failed', expired: 'failed', failed: 'failed' }
      return {
        uploaded: body.received ?? 0,
        total: body.length ?? NaN,
        status: body.status === 'not_exist' ? 'waiting' : ended[body.status] || (body.status === 'paused' ? 'paused' : 'uploading'),
        currentFile: body.metadata?.filename || '',
        error: body.error || (body.status === 'terminated' ? 'terminated' : ''),
      }
    },
  },
  // sandbox: GET <the session's path>, Authorization: Bearer; the
  // origin's answer with the proxy's live view laid over it.
  sandbox: {
    request: (server, key, credential) => [`${server}${key}`, { headers: { Authorization: `Bearer ${credential}` } }],
    parse: (body) => {
      if (body.error) return { status: body.error.code === 'not_found' ? 'waiting' : 'failed', uploaded: 0, total: NaN, error: body.error.message || '' }
      const ended = { completed: 'completed', failed: 'failed', aborted: 'failed', expired: 'failed' }
      return {
        uploaded: body.received_bytes ?? body.accepted_bytes ?? 0,
        total: body.content_length,
        status: ended[body.status] || (body.status === 'completing' ? 'completing' : 'uploading'),
        currentFile: body.target_path || '',
        error: body.status === 'completed' ? '' : body.error_message || (ended[body.status] ? body.status : ''),
      }
    },
  },
}

// protocolNames are the protocols watchUpload knows.
export const protocolNames = Object.keys(protocols)

export function watchUpload({ server = '', protocol, key, credential = '', onProgress = () => {}, onEnd = () => {} }) {
  const p = protocols[protocol]
  if (!p) throw new Error(`unknown protocol ${protocol}`)
  let stopped = false
  let timer = 0
  const samples = []

  const poll = async () => {
    let next = pollInterval
    try {
      const [url, init] = p.request(server, key, credential)
      const resp = await fetch(url, { ...init, cache: 'no-store' })
      const body = await resp.json()
      if (stopped) return
      const ev = { currentFile: '', files: [], ...p.parse(body, resp.status) }
      measure(ev)
      onProgress(ev)
      if (ev.status === 'completed' || ev.status === 'failed') {
        stopped = true
        onEnd(ev)
        return
      }
    } catch (err) {
      if (stopped) return
      onProgress({ uploaded: NaN, total: NaN, status: 'unreachable', currentFile: '', files: [], rate: NaN, eta: NaN, error: `cannot ask Caddy: ${err.message}` })
      next = retryInterval
    }
    if (!stopped) timer = setTimeout(poll, next)
  }

  // measure adds rate and eta from the samples of the last rateWindow.
  const measure = (ev) => {
    const now = performance.now()
    samples.push([now, ev.uploaded])
    while (samples.length > 2 && now - samples[0][0] > rateWindow) samples.shift()
    const [t0, u0] = samples[0]
    const seconds = (now - t0) / 1000
    ev.rate = seconds > 0.2 && ev.status === 'uploading' ? (ev.uploaded - u0) / seconds : NaN
    ev.eta = ev.rate > 0 && ev.total > 0 ? (ev.total - ev.uploaded) / ev.rate : NaN
  }

  poll()
  return {
    stop() {
      stopped = true
      clearTimeout(timer)
    },
  }
}
