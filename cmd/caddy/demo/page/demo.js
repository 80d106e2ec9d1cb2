// The demo page: picks or drops files, uploads each through Caddy with the
// chosen protocol, and draws one card per upload fed by Caddy's count (the
// protocol's progress endpoint). /?watch=<protocol>:<key> watches an upload
// made elsewhere (another tab, curl).

import { watchUpload, protocolNames } from './watch.js'
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
    this.el.dataset.status = status
    const words = { waiting: 'waiting for Caddy to see it', unreachable: 'cannot reach Caddy' }
    $('.status', this.el).textContent = words[status] || status
  }

  // server draws an event of watchUpload.
  server(ev) {
    this.setStatus(ev.status)
    if (Number.isFinite(ev.uploaded)) {
      setMeter($('.server', this.el), ev.uploaded, ev.total)
      const parts = [Number.isFinite(ev.total) && ev.total >= 0 ? `${fmt.bytes(ev.uploaded)} of ${fmt.bytes(ev.total)}` : fmt.bytes(ev.uploaded)]
      if (ev.status === 'uploading') parts.push(fmt.rate(ev.rate), fmt.eta(ev.eta))
      $('.numbers', this.el).textContent = parts.filter(Boolean).join(' · ')
    }
    const detail = []
    if (ev.currentFile) detail.push(`current file: ${ev.currentFile}`)
    if (ev.files?.length) detail.push(`finished: ${ev.files.join(', ')}`)
    $('.detail', this.el).textContent = detail.join(' · ')
    $('.detail', this.el).hidden = detail.length === 0
    this.error(ev.error)
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

// watch follows key on card until the upload ends; after the upload's own
// answer it is ended by that answer if Caddy never saw the upload (an
// empty file carries no bytes to count).
function watch(card, protocol, key) {
  card.setKey(key)
  let last = null
  const w = watchUpload({
    protocol,
    key,
    credential: credential(),
    onProgress: (ev) => {
      last = ev
      card.server(ev)
    },
    onEnd: () => {},
  })
  return {
    // answered is the upload's own outcome: an error is shown as such,
    // and a success ends a watch that still waits.
    answered(err) {
      if (err) {
        w.stop()
        card.setStatus('failed')
        card.error(err.message)
      } else if (!last || last.status === 'waiting') {
        w.stop()
        card.setStatus('completed')
        card.error('')
        $('.numbers', card.el).textContent = 'the origin stored it; Caddy counted no bytes of it'
      }
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
const drop = $('#drop')
drop.addEventListener('dragover', (e) => {
  e.preventDefault()
  drop.classList.add('over')
})
drop.addEventListener('dragleave', () => drop.classList.remove('over'))
drop.addEventListener('drop', (e) => {
  e.preventDefault()
  drop.classList.remove('over')
  for (const f of e.dataTransfer.files) upload(f)
})

// The watch form opens the watch URL of a key.
$('#watch-form').addEventListener('submit', (e) => {
  e.preventDefault()
  const target = `${$('#watch-protocol').value}:${$('#watch-key').value.trim()}`
  location.search = `?watch=${encodeURIComponent(target)}`
})

// /?watch=<protocol>:<key>: a card that watches it.
const target = new URLSearchParams(location.search).get('watch')
if (target) {
  const i = target.indexOf(':')
  const protocol = target.slice(0, i)
  const key = target.slice(i + 1)
  if (i > 0 && protocolNames.includes(protocol) && key) {
    $('#watch-protocol').value = protocol
    $('#watch-key').value = key
    const card = new Card(key, protocol)
    watch(card, protocol, key)
    document.title = `Watching ${target}`
  } else {
    const card = new Card(target, '?')
    card.setStatus('failed')
    card.error(`watch=<protocol>:<key>, with a protocol of ${protocolNames.join(', ')}`)
  }
}
