#!/usr/bin/env bash
# The main job, end to end on this machine: installs what is missing and builds, starts a local
# S3 (s3rver) and DynamoDB (dynalite), uploads recordings with the aws CLI, mounts them with
# s3torrentfs, shows the synthetic .torrent files, runs `s3torrent sync` and prints the status,
# then has transmission-daemon seed one recording from the mount through opentracker, and
# downloads it with aria2c. Last, on a production S3 (Ceph RGW, contrib/dev/rgw.sh), an upload
# alone gets its .torrent and READY item: RGW pushes the bucket's events to
# `s3torrent-lambda --listen`. `contrib/dev/demo.sh --stop` tears everything down.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
state=${DEMO_DIR:-${TMPDIR:-/tmp}/s3torrent-demo}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

stop() {
  if [ -d "$state" ]; then
    # the daemon holds files of the mount open: stop the programs first, then unmount
    for pidfile in "$state"/*.pid; do
      if [ -e "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    done
    for pidfile in "$state"/*.pid; do
      for _ in $(seq 1 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    done
    if mountpoint -q "$state/mnt" 2>/dev/null; then
      fusermount3 -u "$state/mnt" || fusermount3 -uz "$state/mnt" || true
    fi
    contrib/dev/rgw.sh stop "$state/rgw" >/dev/null 2>&1 || true
    rm -rf "$state"
  fi
}

if [ "${1:-}" = "--stop" ]; then
  stop
  echo "demo stopped and cleaned up"
  exit 0
fi
stop

step "Installing missing packages (Debian, npm) and building (build/)"
contrib/dev/deps.sh
contrib/dev/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DS3T_TESTS=ON
s3t=$root/build/tools/s3torrent
s3tfs=$root/build/fs/s3torrentfs
mkdir -p "$state/s3" "$state/mnt" "$state/up"

# free_port: the test helpers' free_port (tests/integration/services.py): a port below the
# kernel's ephemeral range, which no outgoing connection can take before the service binds it
free_port() {
  /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from services import free_port; print(free_port())' \
    "$root/tests/integration"
}
wait_port() {
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "demo: nothing listens on port $1" >&2
  exit 1
}

step "Starting s3rver (S3) and dynalite (DynamoDB) on loopback"
s3port=$(free_port)
ddbport=$(free_port)
NODE_OPTIONS=--openssl-legacy-provider node_modules/.bin/s3rver -d "$state/s3" -a 127.0.0.1 \
  -p "$s3port" --silent --configure-bucket recordings >"$state/s3rver.log" 2>&1 &
echo $! >"$state/s3rver.pid"
node_modules/.bin/dynalite --host 127.0.0.1 --port "$ddbport" >"$state/dynalite.log" 2>&1 &
echo $! >"$state/dynalite.pid"
wait_port "$s3port"
wait_port "$ddbport"
echo "S3 at http://127.0.0.1:$s3port, DynamoDB at http://127.0.0.1:$ddbport"

export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
aws=(/usr/bin/aws --endpoint-url "http://127.0.0.1:$s3port")

step "Uploading three sample recordings with the aws CLI"
head -c $((48 * 1024 * 1024)) /dev/urandom >"$state/up/take 1.wav"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$state/up/take 2 (alt).wav"
head -c 777777 /dev/urandom >"$state/up/notes é.txt"
"${aws[@]}" s3 cp --only-show-errors --recursive "$state/up" s3://recordings/studio/2026-11/
"${aws[@]}" s3 ls s3://recordings/studio/2026-11/

# (s3rver lists a common prefix only when an object sits right below it, so the demo mounts the
# studio/ prefix; real S3 has no such limit)
trport=$(free_port)
tracker="http://127.0.0.1:$trport/announce"
step "Mounting s3://recordings/studio/ with s3torrentfs at $state/mnt (tracker $tracker)"
"$s3tfs" -o "endpoint=http://127.0.0.1:$s3port,cache=$state/cache/torrents.db,trackers=$tracker" \
  recordings:studio/ "$state/mnt"
for _ in $(seq 1 300); do mountpoint -q "$state/mnt" && break; sleep 0.1; done
ls -l "$state/mnt/2026-11"

step "s3torrent show of a synthetic .torrent (hashed on this first read, then cached)"
"$s3t" show "$state/mnt/2026-11/take 1.wav.torrent"

step "s3torrent sync: materialise the .torrent objects in S3 and record their status"
"$s3t" sync -j 2 --tracker "$tracker" --endpoint-url "http://127.0.0.1:$s3port" \
  --ddb-endpoint-url "http://127.0.0.1:$ddbport" --ddb-table torrent-status --create-table \
  --cache "$state/cache/torrents.db" s3://recordings/studio/
"${aws[@]}" s3 ls s3://recordings/studio/2026-11/

step "The DynamoDB item of one recording"
"$s3t" status --ddb-endpoint-url "http://127.0.0.1:$ddbport" --ddb-table torrent-status \
  "s3://recordings/studio/2026-11/take 1.wav"

step "Checking the mount's data against the torrent, piece by piece"
"$s3t" verify "$state/mnt/2026-11/take 1.wav.torrent" "$state/mnt/2026-11/take 1.wav"

step "Starting opentracker (whitelisting the recording's info-hash) and transmission-daemon"
hash=$("$s3t" magnet "$state/mnt/2026-11/take 1.wav.torrent" | sed -n 's/.*urn:btih:\([0-9a-f]\{40\}\).*/\1/p')
mkdir -p "$state/tracker" "$state/transmission" "$state/dl"
echo "$hash" >"$state/tracker/whitelist"
chmod 755 "$state" "$state/tracker" # opentracker, started as root, reads the list as nobody
chmod 644 "$state/tracker/whitelist"
if ! setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$state/tracker/whitelist"; then
  echo "demo: opentracker runs as nobody and cannot read $state/tracker/whitelist:" \
    "give DEMO_DIR a path whose parents others may enter" >&2
  exit 1
fi
opentracker -i 127.0.0.1 -p "$trport" -P "$trport" -w "$state/tracker/whitelist" \
  >"$state/opentracker.log" 2>&1 &
echo $! >"$state/opentracker.pid"
rpcport=$(free_port)
export TRANSMISSION_RPC_USERNAME=demo TRANSMISSION_RPC_PASSWORD=demo-password
transmission-daemon -f -g "$state/transmission" --rpc-bind-address 127.0.0.1 -p "$rpcport" \
  -t -u "$TRANSMISSION_RPC_USERNAME" -v "$TRANSMISSION_RPC_PASSWORD" --no-dht --no-lpd \
  --no-portmap --peerport "$(free_port)" -w "$state/transmission" >"$state/transmission.log" 2>&1 &
echo $! >"$state/transmission.pid"
wait_port "$trport"
wait_port "$rpcport"
echo "opentracker at $tracker, Transmission RPC at http://127.0.0.1:$rpcport/transmission/rpc"

step "s3torrent seed: the daemon seeds take 1.wav straight from the mount"
"$s3t" seed --endpoint-url "http://127.0.0.1:$s3port" \
  --rpc "http://127.0.0.1:$rpcport/transmission/rpc" --mount-root "$state/mnt" \
  --mount-prefix studio/ "s3://recordings/studio/2026-11/take 1.wav"
remote=(transmission-remote "$rpcport" -n "$TRANSMISSION_RPC_USERNAME:$TRANSMISSION_RPC_PASSWORD")
for i in $(seq 1 600); do
  # verified to 100% and seeding ("Idle" is Transmission 3's word for seeding with no peer yet)
  info=$("${remote[@]}" -t "$hash" -i)
  if grep -q "Percent Done: 100%" <<<"$info" && grep -qE "State: (Seeding|Idle)" <<<"$info"; then
    break
  fi
  if [ "$i" -eq 600 ]; then
    echo "demo: transmission-daemon did not verify and seed within 60 s" >&2
    exit 1
  fi
  sleep 0.1
done
"${remote[@]}" -t "$hash" -i | grep -E "Name:|Location:|Percent Done:|State:"

step "aria2c downloads take 1.wav from the daemon, through the tracker"
aria2c --seed-time=0 --dir="$state/dl" --enable-dht=false --enable-dht6=false \
  --bt-enable-lpd=false --enable-peer-exchange=false --disable-ipv6=true \
  --listen-port="$(free_port)" --bt-stop-timeout=120 --summary-interval=0 \
  --console-log-level=warn --no-conf "$state/mnt/2026-11/take 1.wav.torrent"
want=$(sha256sum <"$state/up/take 1.wav" | cut -d' ' -f1)
got=$(sha256sum <"$state/dl/take 1.wav" | cut -d' ' -f1)
echo "sha256 of the original:   $want"
echo "sha256 of the download:   $got"
if [ "$want" != "$got" ]; then
  echo "demo: the downloaded recording differs from the original" >&2
  exit 1
fi

step "Automatic torrents on upload: Ceph RGW (a production S3) pushes its events to s3torrent-lambda --listen"
rgw=$(contrib/dev/rgw.sh start "$state/rgw" | tail -1)
raws=(/usr/bin/aws --endpoint-url "$rgw")
"${raws[@]}" s3 mb s3://uploads >/dev/null
lport=$(free_port)
AWS_ENDPOINT_URL_S3=$rgw AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$ddbport DDB_TABLE=torrent-status \
  S3_BUCKET=uploads TRACKERS=$tracker "$root/build/lambda-sync/s3torrent-lambda" \
  --listen "127.0.0.1:$lport" >"$state/listen.log" 2>&1 &
echo $! >"$state/listen.pid"
wait_port "$lport"
# a persistent topic: RGW queues each push, so the upload does not wait for the hashing
arn=$("${raws[@]}" sns create-topic --name torrents --query TopicArn --output text --attributes \
  "{\"push-endpoint\": \"http://127.0.0.1:$lport/\", \"persistent\": \"true\"}")
"${raws[@]}" s3api put-bucket-notification-configuration --bucket uploads \
  --notification-configuration "{\"TopicConfigurations\": [{\"Id\": \"torrents\",
    \"TopicArn\": \"$arn\", \"Events\": [\"s3:ObjectCreated:*\"]}]}"
echo "RGW at $rgw; its topic pushes to s3torrent-lambda --listen 127.0.0.1:$lport"
echo "\$ aws s3 cp 'take 2 (alt).wav' s3://uploads/studio/2026-11/   # and nothing else"
"${raws[@]}" s3 cp --only-show-errors "$state/up/take 2 (alt).wav" s3://uploads/studio/2026-11/
uri="s3://uploads/studio/2026-11/take 2 (alt).wav"
status=()
for i in $(seq 1 600); do
  if status=$("$s3t" status --ddb-endpoint-url "http://127.0.0.1:$ddbport" --ddb-table \
    torrent-status "$uri" 2>/dev/null) && grep -qE "status: (READY|FAILED)" <<<"$status"; then
    break
  fi
  if [ "$i" -eq 600 ]; then
    echo "demo: no READY item for $uri within 60 s (see $state/listen.log)" >&2
    exit 1
  fi
  sleep 0.1
done
"${raws[@]}" s3 ls s3://uploads/studio/2026-11/
echo "$status"
grep -q "status: READY" <<<"$status" && grep -q "source: lambda" <<<"$status"
"${raws[@]}" s3 cp --only-show-errors "$uri.torrent" "$state/auto.torrent"
"$s3t" show "$state/auto.torrent" | head -4
echo "the upload got its .torrent and a READY item by itself"

step "Done. Everything still runs; contrib/dev/demo.sh --stop tears it down."
