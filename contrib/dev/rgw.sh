#!/usr/bin/env bash
# A production S3 for the tests: Ceph RADOS Gateway on a one-node, in-memory (memstore) cluster,
# all under DIR on free loopback ports. Usage: rgw.sh start DIR (prints the URL) | rgw.sh stop DIR
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }

# alive PID: whether it runs; an exited daemon stays a zombie until its new parent (init, as the
# starting shell is gone) reaps it, which takes seconds on some machines
alive() {
  local s
  s=$(ps -o stat= -p "$1") && [ "${s:0:1}" != Z ]
}

# pid NAME: the pid in NAME's pid file if that process was started with DIR's ceph.conf, so a
# stale pid file never kills a process that reused the pid
pid() {
  local p
  p=$(cat "$dir/run/$1.pid" 2>/dev/null) &&
    grep -qaF "$dir/ceph.conf" "/proc/$p/cmdline" 2>/dev/null && echo "$p"
}

# stop: one daemon after the other, each with SIGTERM, a bounded wait, then SIGKILL; radosgw
# first, as it waits 120 s for the OSD it loses, and the mon last, as the OSD waits for its answer
stop() {
  local n p i
  for n in rgw osd mon; do
    p=$(pid $n) || continue
    kill -TERM "$p" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      alive "$p" || break
      sleep 0.05
    done
    kill -KILL "$p" 2>/dev/null || true
  done
  # only what start made (ceph.conf is its first file); never an unrelated directory
  if [ -e "$dir/ceph.conf" ]; then rm -rf "$dir"; else rmdir "$dir" 2>/dev/null || true; fi
}

# fail MESSAGE [LOG]: one line saying what failed, the log's tail, then nothing left running
fail() {
  trap - ERR
  echo "rgw.sh: $1" >&2
  if [ -s "${2:-}" ]; then tail -n 20 "$2" | sed 's/^/  /' >&2; fi
  stop
  exit 1
}

# daemon NAME COMMAND...: runs a ceph daemon in the foreground (-f) in the background, so its
# pid is known at once and its stdout cannot hold a caller's pipe open
daemon() {
  local name=$1
  shift
  "$@" -c "$dir/ceph.conf" -f </dev/null >"$dir/log/$name.out" 2>&1 &
  echo $! >"$dir/run/$name.pid"
}

start() {
  [ ! -e "$dir" ] || [ -z "$(ls -A "$dir")" ] || { echo "rgw.sh: $dir is not empty" >&2; exit 1; }
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  trap 'fail "failed at line $LINENO"' ERR
  local key=${RGW_ACCESS_KEY:-S3RVER} secret=${RGW_SECRET_KEY:-S3RVER}
  local fsid osd_uuid mon_port rgw_port url deadline
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  # both sockets held at once so the two ports differ
  read -r mon_port rgw_port < <(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
  url=http://127.0.0.1:$rgw_port
  cat >"$dir/ceph.conf" <<EOF
[global]
fsid = $fsid
# msgr2 only: one port per daemon
mon host = v2:127.0.0.1:$mon_port
ms bind msgr1 = false
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.\$pid.asok
# nothing from /etc/ceph
keyring = $dir/keyring
mon data = $dir/mon
osd data = $dir/osd
# no cephx; radosgw finds no auth method towards the mon without the crc mode
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
# a bounded wait rather than the 300 s default when something is down
client mount timeout = 30
# RGW's first start creates its pools one Paxos round each
paxos propose interval = 0.01
# one OSD: one replica, few PGs, no autoscaler, no health warnings about either
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
# a nearly full CI disk must not stop the mon
mon data avail crit = 0
[osd]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
osd objectstore = memstore
memstore device bytes = ${RGW_MEMSTORE_BYTES:-3221225472}
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
# BUCKET.localhost:PORT (virtual-hosted) beside path-style
rgw dns name = localhost
# overwritten and deleted objects give their memory back within a minute, not two hours
rgw gc obj min wait = 30
rgw gc processor period = 30
EOF
  mkdir -p "$dir/run" "$dir/log" "$dir/mon" "$dir/osd"

  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/run/monmap" \
    >"$dir/log/setup.out" 2>&1 || fail "monmaptool failed" "$dir/log/setup.out"
  ceph-mon -c "$dir/ceph.conf" -i a --mkfs --monmap "$dir/run/monmap" >>"$dir/log/setup.out" 2>&1 ||
    fail "ceph-mon --mkfs failed" "$dir/log/setup.out"
  daemon mon ceph-mon -i a
  ceph -c "$dir/ceph.conf" osd new "$osd_uuid" >>"$dir/log/setup.out" 2>&1 ||
    fail "ceph osd new failed (is the mon up?)" "$dir/log/mon.a.log"
  ceph-osd -c "$dir/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$dir/log/setup.out" 2>&1 ||
    fail "ceph-osd --mkfs failed" "$dir/log/setup.out"
  daemon osd ceph-osd -i 0
  daemon rgw radosgw -n client.rgw

  # an anonymous ListBuckets answers 200 once RGW has its pools and serves S3
  local log=$dir/log/client.rgw.log
  deadline=$((SECONDS + ${RGW_START_TIMEOUT:-60}))
  until [ "$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$url/")" = 200 ]; do
    alive "$(cat "$dir/run/rgw.pid")" || fail "radosgw exited" "$log"
    ((SECONDS < deadline)) || fail "radosgw did not answer on port $rgw_port" "$log"
    sleep 0.05
  done

  radosgw-admin -c "$dir/ceph.conf" user create --uid test --display-name test \
    --access-key "$key" --secret-key "$secret" >>"$dir/log/setup.out" 2>&1 ||
    fail "radosgw-admin user create failed" "$dir/log/setup.out"

  printf 'RGW_URL=%s\nRGW_PORT=%s\nRGW_ACCESS_KEY=%q\nRGW_SECRET_KEY=%q\n' \
    "$url" "$rgw_port" "$key" "$secret" >"$dir/env"
  echo "$url"
}

(($# == 2)) || usage
dir=$2
# absolute, as in ceph.conf and the daemons' command lines
[ ! -d "$dir" ] || dir=$(cd "$dir" && pwd)
case $1 in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
