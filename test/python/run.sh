#!/usr/bin/env bash
# Runs test/python: Oxen's own Python client (oxenai, pinned in requirements.txt) against a Yoke server
# that conftest.py starts. The client lives in .venv-oxen/ (see venv.sh). Extra arguments go to pytest.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bash "$here/venv.sh"
cd "$root"
exec "$root/.venv-oxen/bin/python" -m pytest -q "$here" "$@"
