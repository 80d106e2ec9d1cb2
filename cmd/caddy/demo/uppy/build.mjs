// Bundles entry.mjs (Uppy's core and its tus uploader) into one minified
// ES module for the demo page, ../page/vendor/uppy.mjs, and writes the
// licence of every package that ends up in it to
// ../page/vendor/uppy.LICENSES.txt. Run by build.sh after `npm ci`.
import { build } from 'esbuild'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const out = '../page/vendor/uppy.mjs'
const result = await build({
  entryPoints: ['entry.mjs'],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  legalComments: 'none',
  metafile: true,
  outfile: out,
  banner: { js: '/* Uppy (@uppy/core, @uppy/tus) and tus-js-client, MIT licensed: see uppy.LICENSES.txt beside this file. */' },
})

// The packages whose code is in the bundle, from the inputs esbuild used.
const packages = new Set()
for (const [input, { bytesInOutput }] of Object.entries(result.metafile.outputs[out].inputs)) {
  const m = input.match(/^node_modules\/((?:@[^/]+\/)?[^/]+)\//)
  if (m && bytesInOutput > 0) packages.add(m[1])
}

let text = 'The demo page\'s uppy.mjs bundles these packages, each under its own licence, reproduced below.\n'
for (const name of [...packages].sort()) {
  const dir = join('node_modules', name)
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f))
  if (!pkg.license) throw new Error(`${name} states no licence`)
  const author = typeof pkg.author === 'object' ? pkg.author.name : pkg.author
  const body = file
    ? readFileSync(join(dir, file), 'utf8').trim()
    : `The package ships no licence file; its package.json says ${pkg.license}${author ? `, by ${author}` : ''}.`
  text += `\n==== ${pkg.name} ${pkg.version} (${pkg.license})\n\n${body}\n`
}
writeFileSync('../page/vendor/uppy.LICENSES.txt', text)
console.log(`${out}: ${readFileSync(out).length} bytes, ${packages.size} packages`)
