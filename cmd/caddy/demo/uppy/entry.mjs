// The demo page's Uppy: its core and the tus uploader, nothing else (the
// page draws its own file list and bars).
export { default as Uppy } from '@uppy/core'
export { default as Tus } from '@uppy/tus'
