#!/usr/bin/env bash
# Installs the Python clients the tests drive the server with into tests/python/.venv, once
# per requirements file: tests that run at the same time wait for one another here.
set -euo pipefail
cd "$(dirname "$0")"
exec 9>.install.lock
flock 9
hash=$(sha256sum requirements.txt | cut -d' ' -f1)
if [[ "$(cat .venv/.installed 2>/dev/null)" != "$hash" ]]; then
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt >&2
  echo "$hash" > .venv/.installed
fi
