#!/usr/bin/env bash
# Runs a command with one radosgw for all of it (YOKE_TEST_S3_* set), so test files share a server instead
# of booting one each. Without the Ceph binaries, or with YOKE_TEST_S3_ENDPOINT already set, it only runs it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ -n "${YOKE_TEST_S3_ENDPOINT:-}" ] || ! command -v radosgw >/dev/null || ! command -v ceph-osd >/dev/null; then
  exec "$@"
fi
dir="$(mktemp -d "${TMPDIR:-/tmp}/yoke-rgw-XXXXXX")"
trap 'bash "$here/radosgw.sh" stop "$dir"' EXIT
started="$(bash "$here/radosgw.sh" start "$dir")"
for pair in $started; do
  case "$pair" in
    endpoint=*) export YOKE_TEST_S3_ENDPOINT="${pair#endpoint=}" ;;
    access_key=*) export YOKE_TEST_S3_ACCESS_KEY="${pair#access_key=}" ;;
    secret_key=*) export YOKE_TEST_S3_SECRET_KEY="${pair#secret_key=}" ;;
  esac
done
echo "radosgw for the tests at $YOKE_TEST_S3_ENDPOINT" >&2
"$@"
