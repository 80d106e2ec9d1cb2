// The demo page: picks or drops files, uploads each through Caddy with the
// chosen protocol, and draws one card per upload fed by Caddy's count (the
// protocol's progress endpoints, followed by the JavaScript client that
// upload_progress serves at its client_path). /?watch=<protocol>:<key>
// watches an upload made elsewhere (another tab, curl).

import { watchUpload } from '/upload-progress.js'
import { uploaders } from './uploads.js'
import * as fmt from './format.js'

const $ = (sel, root = document) => root.querySelector(sel)
const credentialInput = $('#credential')
const credentialKey = 'upload-progress-demo.credential'

// The credential is kept for the next visit and for other tabs, which
// must watch with the same one.
credentialInput.value = localStorage.getItem(credentialKey) || credentialInput.value
credentialInput.addEventListener('change', () => localStorage.setItem(credentialKey, credentialInput.value))
const credential = () => credentialInput.value

// Card is one upload's card: Caddy's count, and for tus Uppy's beside it.
class Card {
  constructor(name, protocol) {
    this.el = $('#card').content.firstElementChild.cloneNode(true)
    this.protocol = protocol
    $('.name', this.el).textContent = name
    $('.protocol', this.el).textContent = protocol
    this.el.dataset.protocol = protocol
    const id = `card-${++Card.count}`
    for (const [sel, label] of [['.server', "Caddy's count"], ['.client', "Uppy's count"]]) {
      $(`${sel} progress`, this.el).setAttribute('aria-label', `${name}: ${label}`)
    }
    this.el.id = id
    this.setStatus('waiting')
    $('#empty').hidden = true
    $('#uploads').prepend(this.el)
  }

  // setKey shows the key the upload can be watched by, with a link.
  setKey(key) {
    const full = `${this.protocol}:${key}`
    this.el.dataset.key = full
    $('.key', this.el).textContent = key
    $('.watch-link', this.el).href = `/?watch=${encodeURIComponent(full)}`
    $('.watch', this.el).hidden = false
  }

  setStatus(status) {
    // The watch's end states: failed, and the protocols' other ends.
    const shown = { aborted: 'failed', expired: 'failed' }[status] || status
    this.el.dataset.status = shown
    const words = { waiting: 'waiting for Caddy to see it', aborted: 'aborted', expired: 'expired' }
    $('.status', this.el).textContent = words[status] || status
  }

  // server draws an event of watchUpload, the reason a failed upload
  // gives in its protocol's reply, and how the event came (websocket,
  // sse, poll).
  server(ev, reply, transport) {
    this.setStatus(ev.status)
    const total = ev.total ?? NaN
    setMeter($('.server', this.el), ev.uploaded, total)
    const parts = [total >= 0 ? `${fmt.bytes(ev.uploaded)} of ${fmt.bytes(total)}` : fmt.bytes(ev.uploaded)]
    if (ev.status === 'uploading') parts.push(fmt.rate(ev.rate ?? NaN), fmt.eta(ev.eta ?? NaN))
    $('.numbers', this.el).textContent = parts.filter(Boolean).join(' · ')
    const detail = [`via ${transport === 'poll' ? 'polling' : transport === 'sse' ? 'Server-Sent Events' : 'WebSocket'}`]
    if (ev.currentFile) detail.push(`current file: ${ev.currentFile}`)
    if (ev.files) detail.push(`${ev.files} ${ev.files === 1 ? 'file' : 'files'} finished`)
    $('.detail', this.el).textContent = detail.join(' · ')
    $('.detail', this.el).hidden = false
    const why = typeof reply?.error === 'string' ? reply.error : reply?.error?.message
    this.error(ev.status === 'completed' ? '' : why)
  }

  // client draws Uppy's own count.
  client(uploaded, total) {
    const meter = $('.client', this.el)
    meter.hidden = false
    setMeter(meter, uploaded, total)
  }

  error(message) {
    $('.error', this.el).textContent = message || ''
    $('.error', this.el).hidden = !message
  }
}
Card.count = 0

// setMeter sets a meter's bar and percentage; an unknown total makes the
// bar indeterminate.
function setMeter(meter, uploaded, total) {
  const bar = $('progress', meter)
  const pct = fmt.percent(uploaded, total)
  if (Number.isNaN(pct)) {
    bar.removeAttribute('value')
    $('.pct', meter).textContent = ''
  } else {
    bar.value = pct
    $('.pct', meter).textContent = `${pct}%`
  }
  bar.setAttribute('aria-valuetext', total > 0 ? `${fmt.bytes(uploaded)} of ${fmt.bytes(total)}` : fmt.bytes(uploaded))
}

// answerGrace is how long after the upload's own answer a watch that
// still waits may take to see it.
const answerGrace = 2000 // ms

// watch follows key on card until the upload ends. After the upload's own
// answer, a watch that never saw the upload is ended by that answer (an
// empty file carries no bytes to count).
function watch(card, protocol, key) {
  card.setKey(key)
  let last = null
  let ended = false
  const w = watchUpload({
    protocol,
    key,
    // A tus upload URL is the capability to watch it (the demo's tus
    // sessions have no owner): no credential, so the page opens the
    // WebSocket at once.
    credential: protocol === 'tus' ? undefined : credential(),
    pollInterval: 250, // where it polls: as often as Caddy updates
    onProgress: (ev, reply, transport) => {
      last = ev
      card.server(ev, reply, transport)
    },
    onEnd: (ev, err) => {
      ended = true
      if (err) {
        card.setStatus('failed')
        card.error(`watching stopped: ${err.message}`)
      }
    },
  })
  return {
    // answered is the upload's own outcome: an error is shown as such,
    // and a success ends a watch that still waits.
    answered(err) {
      if (err) {
        w.stop()
        card.setStatus('failed')
        card.error(err.message)
        return
      }
      setTimeout(() => {
        if (ended || (last && last.status !== 'waiting')) return
        w.stop()
        card.setStatus('completed')
        card.error('')
        $('.numbers', card.el).textContent = 'the origin stored it; Caddy counted no bytes of it'
      }, answerGrace)
    },
  }
}

function upload(file) {
  const protocol = $('input[name="protocol"]:checked').value
  const card = new Card(file.name, protocol)
  let watcher = null
  const onKey = (key) => { watcher = watch(card, protocol, key) }
  const onClientProgress = (uploaded, total) => card.client(uploaded, total)
  Promise.resolve()
    .then(() => uploaders[protocol](file, { credential: credential(), onKey, onClientProgress }))
    .then(() => watcher?.answered(null), (err) => {
      if (watcher) {
        watcher.answered(err)
      } else {
        card.setStatus('failed')
        card.error(err.message)
      }
    })
}

// Files picked or dropped.
const input = $('#files')
input.addEventListener('change', () => {
  for (const f of input.files) upload(f)
  input.value = ''
})
// Files dropped anywhere on the page upload (rather than the browser
// opening them); the drop zone lights up while files are dragged over.
const drop = $('#drop')
document.addEventListener('dragover', (e) => {
  e.preventDefault()
  drop.classList.add('over')
})
document.addEventListener('dragleave', (e) => {
  if (!e.relatedTarget) drop.classList.remove('over')
})
document.addEventListener('drop', (e) => {
  e.preventDefault()
  drop.classList.remove('over')
  for (const f of e.dataTransfer?.files ?? []) upload(f)
})

// The watch form opens the watch URL of a key.
$('#watch-form').addEventListener('submit', (e) => {
  e.preventDefault()
  const target = `${$('#watch-protocol').value}:${$('#watch-key').value.trim()}`
  location.search = `?watch=${encodeURIComponent(target)}`
})

// /?watch=<protocol>:<key>: a card that watches it, for the protocols the
// page uploads with.
const protocols = ['shard', 'pcloud', 'tus', 'sandbox']
const target = new URLSearchParams(location.search).get('watch')
if (target) {
  const i = target.indexOf(':')
  const protocol = target.slice(0, i)
  const key = target.slice(i + 1)
  if (i > 0 && protocols.includes(protocol) && key) {
    $('#watch-protocol').value = protocol
    $('#watch-key').value = key
    const card = new Card(key, protocol)
    watch(card, protocol, key)
    document.title = `Watching ${target}`
  } else {
    const card = new Card(target, '?')
    card.setStatus('failed')
    $('.status', card.el).textContent = 'not a watch URL'
    $('.server', card.el).hidden = true
    card.error(`/?watch=<protocol>:<key>, with a protocol of ${protocols.join(', ')}`)
  }
}
