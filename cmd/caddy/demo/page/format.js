// Numbers as people read them: sizes in binary units (MiB), rates per
// second, times left as m:ss.

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

// bytes formats a byte count: "512 B", "1.5 KiB", "23.4 MiB".
export function bytes(n) {
  if (!Number.isFinite(n) || n < 0) return '?'
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`
}

// rate formats bytes per second: "3.2 MiB/s".
export function rate(perSecond) {
  return Number.isFinite(perSecond) && perSecond > 0 ? `${bytes(perSecond)}/s` : ''
}

// eta formats seconds left: "0:07 left", "1:02:03 left".
export function eta(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return ''
  const s = Math.ceil(seconds)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const ss = String(s % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss} left` : `${m}:${ss} left`
}

// percent is uploaded of total in percent, one decimal, or NaN when the
// total is unknown.
export function percent(uploaded, total) {
  if (!(total > 0)) return total === 0 && uploaded === 0 ? 100 : NaN
  return Math.min(100, Math.floor((uploaded / total) * 1000) / 10)
}
