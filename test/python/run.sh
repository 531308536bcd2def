#!/usr/bin/env bash
# Runs test/python: Oxen's own Python client (oxenai, pinned in requirements.txt) against a Yoke server
# that conftest.py starts. The client lives in a virtual environment at .venv-oxen/ in the repository root,
# made on the first run and made again whenever requirements.txt changes. Extra arguments go to pytest.
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

cd "$root"
exec "$venv/bin/python" -m pytest -q "$here" "$@"
