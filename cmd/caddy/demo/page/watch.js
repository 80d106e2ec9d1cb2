// watchUpload follows one upload by polling the REST progress endpoint of
// its protocol on Caddy, with the same options and events as the
// JavaScript client's watchUpload (clients/js/upload-progress.js), for the
// protocols the page uploads with:
//
//   onProgress({uploaded, total, status, currentFile, files, rate, eta}, reply, 'poll')
//   onEnd(lastEvent, error)
//
// status is 'waiting' (Caddy does not know the key yet), 'uploading',
// 'paused' (tus, between PATCHes), 'staged' or 'completing' (sandbox), or
// an end: 'completed', 'failed', 'aborted', 'expired'. total is null
// while unknown; rate is bytes a second, eta seconds left. It returns
// {stop()}.

const FINAL = new Set(['completed', 'failed', 'aborted', 'expired'])

// The status request of each protocol, and its reply as an event (or
// {refusal} for a reply that refuses the watch).
const protocols = {
  // GET /progress?path=<path>, x-user-api-key header.
  shard: {
    request: (o) => [`/progress?path=${encodeURIComponent(o.key)}`, { 'x-user-api-key': o.credential }],
    event: (r) => {
      if (typeof r.status !== 'string') return { refusal: r.error || 'not a progress reply' }
      return r.status === 'not_exist' ? { status: 'waiting' } : { status: r.status, uploaded: r.uploaded, total: r.total_size }
    },
  },
  // GET /uploadprogress?progresshash=<hash>&auth=<credential>.
  pcloud: {
    request: (o) => [`/uploadprogress?progresshash=${encodeURIComponent(o.key)}&auth=${encodeURIComponent(o.credential)}`, {}],
    event: (r) => {
      if (r.result === 1900) return { status: 'waiting' }
      if (r.result !== 0) return { refusal: r.error || `result ${r.result}` }
      return {
        status: !r.finished ? 'uploading' : r.error ? 'failed' : 'completed',
        uploaded: r.uploaded,
        total: r.total,
        currentFile: r.currentfile ?? null,
        files: Array.isArray(r.files) ? r.files.length : null,
      }
    },
  },
  // GET /tus/progress?upload=<upload URL or its path>; the upload URL is
  // the capability, no credential.
  tus: {
    request: (o) => [`/tus/progress?upload=${encodeURIComponent(o.key)}`, {}],
    event: (r) => {
      if (typeof r.status !== 'string') return { refusal: r.error || 'not a progress reply' }
      const status = { created: 'waiting', not_exist: 'waiting', terminated: 'aborted' }[r.status] ?? r.status
      return { status, uploaded: r.received ?? 0, total: r.length, currentFile: r.metadata?.filename ?? null }
    },
  },
  // GET <the session's path>, Authorization: Bearer: the origin's answer
  // with Caddy's live view laid over it.
  sandbox: {
    request: (o) => [o.key, { Authorization: `Bearer ${o.credential}` }],
    event: (r) => {
      if (r.error) return r.error.code === 'not_found' ? { status: 'waiting' } : { refusal: r.error.message || r.error.code || String(r.error) }
      if (typeof r.status !== 'string') return { refusal: 'not an upload session' }
      const uploaded = r.received_bytes ?? r.accepted_bytes ?? 0
      const status = r.status === 'created' ? (uploaded > 0 ? 'uploading' : 'waiting') : r.status
      return { status, uploaded, total: r.content_length, currentFile: r.target_path ?? null }
    },
  },
}

export function watchUpload({ protocol, key, credential = '', pollInterval = 1000, onProgress, onEnd }) {
  const p = protocols[protocol]
  if (!p) throw new TypeError(`unknown protocol ${protocol}`)
  let stopped = false
  let timer = 0
  let last = null
  let sample = null

  const end = (error = null) => {
    stopped = true
    onEnd?.(last, error)
  }

  const poll = async () => {
    let reply
    try {
      const [url, headers] = p.request({ key, credential })
      const res = await fetch(url, { headers, cache: 'no-store' })
      reply = await res.json()
    } catch {
      reply = null // Caddy unreachable for now: ask again
    }
    if (stopped) return
    if (reply !== null) {
      const ev = p.event(reply)
      if (ev.refusal !== undefined) return end(new Error(ev.refusal))
      last = pace({ uploaded: last?.uploaded ?? 0, total: null, currentFile: null, files: null, ...ev })
      onProgress?.(last, reply, 'poll')
      if (FINAL.has(last.status)) return end()
    }
    timer = setTimeout(poll, pollInterval)
  }

  // pace adds rate (bytes a second, smoothed) and eta (seconds).
  const pace = (ev) => {
    if (!(ev.total >= 0)) ev.total = null
    const now = performance.now()
    let rate = last?.rate ?? null
    if (sample === null) {
      sample = { t: now, uploaded: ev.uploaded }
    } else if (ev.uploaded !== sample.uploaded && now > sample.t) {
      const inst = Math.max(0, ev.uploaded - sample.uploaded) / ((now - sample.t) / 1000)
      rate = rate === null ? inst : 0.7 * rate + 0.3 * inst
      sample = { t: now, uploaded: ev.uploaded }
    }
    ev.rate = rate
    ev.eta = ev.status === 'completed' ? 0 : rate > 0 && ev.total !== null && ev.status === 'uploading' ? Math.max(0, ev.total - ev.uploaded) / rate : null
    return ev
  }

  poll()
  return {
    stop() {
      stopped = true
      clearTimeout(timer)
    },
  }
}
