#!/usr/bin/env bash
# Installs the JavaScript clients the tests drive the server with (npm ci from the lock
# file), once per lock file: tests that run at the same time wait for one another here.
# With --browser, also Debian's Chromium for the GraphiQL test.
set -euo pipefail
cd "$(dirname "$0")"
if [[ "${1:-}" == "--browser" ]] && ! command -v chromium >/dev/null; then
  apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
fi
exec 9>.install.lock
flock 9
hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ "$(cat node_modules/.installed 2>/dev/null)" != "$hash" ]]; then
  npm ci --no-audit --no-fund >&2
  echo "$hash" > node_modules/.installed
fi
