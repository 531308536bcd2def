#!/usr/bin/env bash
# The Node test suites: every test file once on the embedded default, then the HTTP suite again with every
# test server on PostgreSQL + S3 (radosgw), the shape several processes share (docs/DEPLOYMENT.md). That second
# pass needs PostgreSQL's server binaries and a radosgw; without them it is skipped, saying so. test/all.sh runs
# this inside test/services/with-radosgw.sh and with-postgres.ts: one radosgw and one PostgreSQL cluster serve
# every file. The first pass includes test/e2e, the web interface in headless Chromium and Firefox
# (/usr/bin/chromium, /usr/bin/firefox-esr; each skipped, saying so, without it).
set -euo pipefail
cd "$(dirname "$0")/.."
# A test file's process ends when its tests have, not when the last pooled connection (PostgreSQL, S3) times out:
# that wait was about 9 s a file on PostgreSQL + S3. The flag exists from Node 20.14.
force_exit=()
if node --help | grep -q -- '--test-force-exit'; then force_exit=(--test-force-exit); fi
node --import tsx --test "${force_exit[@]}" test/*/*.test.ts
have_postgres() {
  [ -n "${YOKE_TEST_DATABASE_URL:-}" ] || command -v initdb >/dev/null || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
if [ -n "${YOKE_TEST_S3_ENDPOINT:-}" ] && have_postgres; then
  echo "The HTTP suite again, every server on PostgreSQL + S3 ($YOKE_TEST_S3_ENDPOINT)" >&2
  # Files that test the HTTP layer alone (parsers, limits, timeouts, schemas, the spec) run in the first pass only.
  store_independent='multipart-limits|protocol-errors|schemas|slow-body|openapi|fuzz'
  mapfile -t files < <(ls test/http/*.test.ts | grep -Ev "/($store_independent)\.test\.ts$")
  YOKE_TEST_META=postgres YOKE_TEST_BLOBS=s3 node --import tsx --test "${force_exit[@]}" "${files[@]}"
else
  echo "SKIPPED: the HTTP suite on PostgreSQL + S3 (needs PostgreSQL's server binaries and radosgw: apt-get install postgresql radosgw ceph-mon ceph-osd ceph-common)" >&2
fi
