#!/usr/bin/env bash
# Regenerates the demo page's Uppy bundle (../page/vendor/uppy.mjs and its
# licences) from the versions pinned in package-lock.json.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
node build.mjs
