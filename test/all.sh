#!/usr/bin/env bash
# `npm test`: the Node suites (test/node.sh, inside one radosgw and one PostgreSQL cluster for all of them) and,
# beside them, the Python suite with Oxen's own client (test/python/run.sh). They share no state (each starts its own
# servers on free ports and data directories); the Python suite spends most of its time waiting on the Oxen client and
# on fsync, so running it beside the CPU-bound Node suites takes its 2-3 minutes off the run. Its output is shown once
# it ends, not interleaved; the exit status is non-zero if either failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash test/python/venv.sh || exit 1
python_log="$(mktemp "${TMPDIR:-/tmp}/yoke-python-tests-XXXXXX")"
bash test/python/run.sh >"$python_log" 2>&1 &
python_pid=$!
bash test/services/with-radosgw.sh node --import tsx test/services/with-postgres.ts bash test/node.sh
node_status=$?
wait "$python_pid"
python_status=$?
echo "--- test/python (Oxen's Python client), run beside the Node suites ---"
cat "$python_log"
rm -f "$python_log"
[ "$node_status" -eq 0 ] && [ "$python_status" -eq 0 ]
