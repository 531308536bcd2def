#!/usr/bin/env bash
# Makes sure .venv-oxen/ (repository root) holds the pinned client of requirements.txt: made on the first run,
# made again whenever requirements.txt changes. npm test runs it first, so that the Node tests that drive the
# client (test/storage/dir-hashes-db.test.ts) find it too.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.venv-oxen"
requirements="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "test/python: installing $(grep -c '==' "$requirements") pinned packages into .venv-oxen/" >&2
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" >"$stamp"
fi
