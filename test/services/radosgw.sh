#!/usr/bin/env bash
# A throwaway single-node Ceph cluster with radosgw, the S3 server the tests and benchmarks run against:
# one monitor, one BlueStore OSD on a sparse file under <dir> (32 GiB at most), auth off, pool size 1, radosgw
# (beast) on 127.0.0.1.
#   radosgw.sh start <dir>   boots it under <dir> and prints `endpoint=… access_key=… secret_key=…`
#   radosgw.sh stop <dir>    stops the daemons by their pid files and removes <dir>
# Needs Debian's ceph-mon, ceph-osd, radosgw and ceph-common. Ports: RGW_PORT / MON_PORT, else free ones.
set -euo pipefail

cmd="${1:?usage: radosgw.sh start|stop <dir>}"
dir="${2:?usage: radosgw.sh start|stop <dir>}"
conf="$dir/ceph.conf"

stop() {
  # Read every pid first: a daemon removes its pid file as it exits.
  local pids=() pidfile pid
  for pidfile in "$dir"/run/*.pid; do
    [ -s "$pidfile" ] && pids+=("$(cat "$pidfile")")
  done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Waits until `check` succeeds, or fails naming the daemon log to read: at once if the daemon died.
wait_for() {
  local what="$1" log="$2" tries="$3" pidfile="$dir/run/$4.pid"; shift 4
  local outcome="did not come up"
  for _ in $(seq "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [ -s "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then outcome="died"; break; fi
    # radosgw stays up when its HTTP frontend cannot start (a port taken meanwhile).
    if grep -q 'ERROR: failed initializing frontend' "$log" 2>/dev/null; then outcome="cannot serve HTTP"; break; fi
    sleep 0.5
  done
  echo "radosgw.sh: $what $outcome; last lines of $log:" >&2
  tail -n 20 "$log" >&2 || true
  return 1
}

start() {
  for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool; do
    command -v "$bin" >/dev/null || { echo "radosgw.sh: $bin not found (apt-get install radosgw ceph-mon ceph-osd ceph-common)" >&2; exit 2; }
  done
  mkdir -p "$dir"/{run,log,mon,osd}
  # A start that fails stops whatever it had started.
  trap '[ $? -eq 0 ] || stop' EXIT
  local fsid mon_port rgw_port
  fsid="$(cat /proc/sys/kernel/random/uuid)"
  mon_port="${MON_PORT:-$(free_port)}"
  rgw_port="${RGW_PORT:-$(free_port)}"
  # A fixed port someone already listens on would pass the readiness checks against the wrong server.
  for port in "$mon_port" "$rgw_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "radosgw.sh: port $port is in use" >&2; exit 1; fi
  done
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd objectstore = bluestore
bluestore block create = true
bluestore block size = ${BLUESTORE_BYTES:-34359738368}
bluestore block db create = false
bluestore block wal create = false
bluestore fsck on mkfs = false
osd memory target = 536870912
bluestore cache size = 134217728
osd crush chooseleaf type = 0
osd class update on start = false
osd crush update on start = false
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
mon data = $dir/mon/\$name
osd data = $dir/osd/\$name
keyring = $dir/keyring
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw dns name = 127.0.0.1
CONF
  ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. >/dev/null
  monmaptool --create --add a "v1:127.0.0.1:$mon_port" --fsid "$fsid" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring"
  ceph-mon -c "$conf" -i a
  wait_for "ceph-mon" "$dir/log/mon.a.log" 60 mon.a ceph -c "$conf" --connect-timeout 2 mon stat
  local osd_uuid
  osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
  ceph -c "$conf" osd create "$osd_uuid" >/dev/null
  mkdir -p "$dir/osd/osd.0"
  ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$dir/log/osd-mkfs.log" 2>&1 || { tail -n 20 "$dir/log/osd-mkfs.log" >&2; exit 1; }
  # With auth off the OSD's own start-up CRUSH commands are refused, so it is placed by hand.
  ceph -c "$conf" osd crush add osd.0 1.0 root=default host=localhost >/dev/null 2>&1
  ceph-osd -c "$conf" -i 0 2>>"$dir/log/osd.0.stderr"
  wait_for "ceph-osd" "$dir/log/osd.0.log" 120 osd.0 sh -c "ceph -c '$conf' osd stat | grep -q '1 up'"
  radosgw -c "$conf" -n client.rgw.a
  wait_for "radosgw" "$dir/log/client.rgw.a.log" 180 client.rgw.a curl -sf "http://127.0.0.1:$rgw_port/"
  local access="yoke-test-access" secret="yoke-test-secret-key-0123456789"
  radosgw-admin -c "$conf" user create --uid=yoke --display-name=yoke --access-key="$access" --secret-key="$secret" >/dev/null
  trap - EXIT
  echo "endpoint=http://127.0.0.1:$rgw_port access_key=$access secret_key=$secret"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: radosgw.sh start|stop <dir>" >&2; exit 2 ;;
esac
