// How the page sends a file through Caddy, one function per protocol.
// Each calls onKey with the key the upload can be watched by, as soon as
// it is known ("shard:/demo/a.bin"), and resolves once the origin has
// answered the upload, or rejects with a readable reason.

import { Uppy, Tus } from './vendor/uppy.mjs'

// The folder of the origin's store the page's uploads go to.
const folder = '/demo'

// sandboxPartSize is the part size of the page's sandbox sessions.
const sandboxPartSize = 8 << 20

export const uploaders = {
  // shard: the raw file as the body of POST /fso.
  async shard(file, { credential, onKey }) {
    const path = `${folder}/${file.name}`
    onKey(path)
    const resp = await fetch(`/fso?path=${encodeURIComponent(path)}&informProgress=true&overwrite=true`, {
      method: 'POST',
      headers: { 'x-user-api-key': credential, 'Content-Type': 'application/octet-stream' },
      body: file,
    })
    if (!resp.ok) throw new Error(`the origin answered ${resp.status}: ${await errorText(resp)}`)
  },

  // pcloud: a multipart/form-data body to uploadfile, with a progresshash.
  async pcloud(file, { credential, onKey }) {
    const hash = `demo-${crypto.randomUUID()}`
    onKey(hash)
    const form = new FormData()
    form.append('file', file, file.name)
    const resp = await fetch(`/uploadfile?progresshash=${hash}&auth=${encodeURIComponent(credential)}`, {
      method: 'POST',
      body: form,
    })
    const body = await resp.json().catch(() => ({}))
    if (!resp.ok || body.result !== 0) {
      throw new Error(`the origin answered ${resp.status}, result ${body.result}: ${body.error || resp.statusText}`)
    }
  },

  // tus: Uppy with its tus uploader, to /files/. onClientProgress gets
  // Uppy's own upload-progress, to show beside the proxy's count.
  tus(file, { credential, onKey, onClientProgress }) {
    const uppy = new Uppy({ id: `tus-${crypto.randomUUID()}` }).use(Tus, {
      endpoint: '/files/',
      headers: { 'x-user-api-key': credential },
      retryDelays: [0, 1000, 3000],
      // Every upload of the page is a new one, never a resumption of an
      // earlier upload of the same file.
      storeFingerprintForResuming: false,
    })
    let keyed = false
    uppy.on('upload-progress', (f, progress) => {
      const url = uppy.getFile(f.id)?.tus?.uploadUrl
      if (url && !keyed) {
        keyed = true
        onKey(new URL(url, location.href).pathname)
      }
      onClientProgress(progress.bytesUploaded, progress.bytesTotal)
    })
    uppy.addFile({ name: file.name, type: file.type, data: file, source: 'demo page' })
    return uppy.upload().then((result) => {
      uppy.destroy()
      if (result?.failed?.length) throw new Error(result.failed[0].error || 'the tus upload failed')
    })
  },

  // sandbox: a resumable upload session, its parts one by one, then its
  // completion.
  async sandbox(file, { credential, onKey }) {
    const auth = { Authorization: `Bearer ${credential}` }
    const created = await fetch('/v1/sandboxes/sb_demo/uploads', {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        target_path: `/sandbox${folder}/${file.name}`,
        content_length: file.size,
        part_size: sandboxPartSize,
        kind: 'file',
        conflict: 'replace',
      }),
    })
    if (created.status !== 201) throw new Error(`creating the session: ${created.status}: ${await errorText(created)}`)
    const session = await created.json()
    const path = `/v1/sandboxes/sb_demo/uploads/${session.upload_id}`
    onKey(path)
    for (let n = 1; n <= session.part_count; n++) {
      const part = file.slice((n - 1) * session.part_size, n * session.part_size)
      const resp = await fetch(`${path}/parts/${n}`, { method: 'PUT', headers: auth, body: part })
      if (!resp.ok) throw new Error(`part ${n}: ${resp.status}: ${await errorText(resp)}`)
    }
    const done = await fetch(`${path}/complete`, { method: 'POST', headers: auth })
    if (!done.ok) throw new Error(`completing the session: ${done.status}: ${await errorText(done)}`)
  },
}

// errorText is the reason an error answer gives, from the shapes the
// origin answers in.
async function errorText(resp) {
  const text = await resp.text().catch(() => '')
  try {
    const body = JSON.parse(text)
    return body.error?.message || body.error || text
  } catch {
    return text || resp.statusText
  }
}
