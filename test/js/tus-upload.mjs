// tus-upload.mjs uploads one file with tus-js-client's Node API, for the
// end-to-end tests (test/) to drive a real tus client through Caddy.
//
//   node tus-upload.mjs <endpoint URL> <file path> <chunkSize bytes, 0 = one PATCH> [metadata filename]
//
// stdout, one line each, for the test to read line by line:
//   url <upload URL>                   as soon as the server has created the upload
//   progress <bytesUploaded> <bytesTotal>  only with TUS_PROGRESS=1, at most every 100 ms
//   done <upload URL>                  when the last PATCH was accepted; exit 0
// An error goes to stderr and the exit code is 1 (2 for wrong arguments).
// There are no retries: a failure is the test's to see.
import { createReadStream, statSync } from 'node:fs'
import { basename } from 'node:path'
import { Upload } from 'tus-js-client'

const usage = 'usage: node tus-upload.mjs <endpoint URL> <file path> <chunkSize bytes, 0 = one PATCH> [metadata filename]'

function fail(code, msg) {
  process.stderr.write(`${msg}\n`, () => process.exit(code))
}

function out(line) {
  process.stdout.write(`${line}\n`)
}

const args = process.argv.slice(2)
if (args.length < 3 || args.length > 4) {
  fail(2, usage)
} else {
  const [endpoint, path, chunkArg, filename = basename(path)] = args
  const chunk = Number(chunkArg)
  if (!Number.isSafeInteger(chunk) || chunk < 0) {
    fail(2, `chunkSize ${JSON.stringify(chunkArg)} is not a whole number of bytes\n${usage}`)
  } else {
    run(endpoint, path, chunk, filename)
  }
}

function run(endpoint, path, chunk, filename) {
  try {
    statSync(path)
  } catch (err) {
    fail(1, `tus-upload: ${err.message}`)
    return
  }
  const showProgress = process.env.TUS_PROGRESS === '1'
  let lastProgress = 0

  // An fs.ReadStream that names its file is read by tus-js-client's Node
  // build from the path, one slice per PATCH; it needs no chunkSize.
  const upload = new Upload(createReadStream(path), {
    endpoint,
    chunkSize: chunk === 0 ? Number.POSITIVE_INFINITY : chunk,
    retryDelays: [],
    removeFingerprintOnSuccess: true,
    metadata: { filename },
    onUploadUrlAvailable() {
      out(`url ${upload.url}`)
    },
    onProgress(bytesUploaded, bytesTotal) {
      if (!showProgress) return
      const now = Date.now()
      if (now - lastProgress < 100 && bytesUploaded !== bytesTotal) return
      lastProgress = now
      out(`progress ${bytesUploaded} ${bytesTotal}`)
    },
    onSuccess() {
      // Exit once the line is written: idle keep-alive sockets must not
      // hold the process open while the test waits for it.
      process.stdout.write(`done ${upload.url}\n`, () => process.exit(0))
    },
    onError(err) {
      fail(1, `tus-upload: ${err.message ?? err}`)
    },
  })
  upload.start()
}
