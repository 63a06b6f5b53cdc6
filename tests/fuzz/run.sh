#!/usr/bin/env bash
# Runs one libFuzzer target: run.sh BUILD_DIR TARGET SECONDS [RUNS]. With RUNS it stops after
# that many executions instead (the long campaigns: RUNS=10000000, SECONDS then only a ceiling).
# The seed corpus is the test vectors (torrents, bencode cases; the XML or JSON fixtures for s3xml,
# credjson, ddbjson, trpc, events, listen; RGW and MinIO notifications and whole requests for
# events and listen; requests with validators and ranges for serve, listings for feed, keys and
# version ids for presign) plus the target's kept seeds (tests/fuzz/seeds/TARGET/) and regression
# inputs. A crash, leak or timeout fails the run; the input that caused it is copied to
# fuzz-findings/TARGET/, to be kept under tests/fuzz/regressions/TARGET/ once fixed.
set -euo pipefail
build=$1 target=$2 seconds=$3 runs=${4:-}
here=$(dirname "$0")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
find "$here/../data/torrents" -name '*.torrent' -exec cp {} "$work/corpus/" \;
grep -v '^#' "$here/../data/bencode/cases.tsv" | cut -f1 | head -40 |
  awk '{ f = sprintf("%s/corpus/case%02d", "'"$work"'", NR); printf "%s", $0 > f; close(f) }'
case "$target" in
s3xml) cp "$here/../data/fixtures/"*.xml "$work/corpus/" ;;
credjson | ddbjson | trpc | events | listen | fanout) cp "$here/../data/fixtures/"*.json "$work/corpus/" ;;
fsconfig)
  cp "$here/../../contrib/config/s3torrentfs.conf" "$work/corpus/"
  printf 'bucket = b:p/\nprivate = false\ntrackers = http://a/x, udp://b:1/y\numask = 077\n' >"$work/corpus/c1"
  printf 'ttl = 1e308\nnegative_ttl = nan\npiece_length = 16Ki\nmeta_version = hybrid\n' >"$work/corpus/c2"
  printf 'dir_torrents = 64\nmax_generations = 1\n' >"$work/corpus/c3"
  ;;
recipe)
  # the first byte picks the field (meta, piece length, tracker, trackers, web seed, ...)
  printf '\001256Ki' >"$work/corpus/r1"
  printf '\000hybrid' >"$work/corpus/r2"
  printf '\003http://a.example/announce, udp://b:1/x' >"$work/corpus/r3"
  printf '\004https://cdn.example/media/' >"$work/corpus/r4"
  ;;
hashes)
  # packed hashes (docs/DESIGN.md §13): one v1 piece of 1000 bytes, and two hybrid pieces
  python3 -c 'import sys,struct; sys.stdout.buffer.write(b"s3th1" + struct.pack(">QQQB", 1000, 16384, 1, 1) + bytes(20))' >"$work/corpus/h1"
  python3 -c 'import sys,struct; sys.stdout.buffer.write(b"s3th1" + struct.pack(">QQQB", 20000, 16384, 2, 3) + bytes(40 + 64 + 32))' >"$work/corpus/h2"
  # with flag 4: the padded last v1 piece follows (a short last piece), v1 and hybrid
  python3 -c 'import sys,struct; sys.stdout.buffer.write(b"s3th1" + struct.pack(">QQQB", 1000, 16384, 1, 5) + bytes(40))' >"$work/corpus/h3"
  python3 -c 'import sys,struct; sys.stdout.buffer.write(b"s3th1" + struct.pack(">QQQB", 20000, 16384, 2, 7) + bytes(40 + 64 + 32 + 20))' >"$work/corpus/h4"
  ;;
diskcache)
  # disk cache files (lib/store/internal/diskcache_file.h): a 1000-byte block and an empty one
  for n in 1000 0; do
    python3 -c 'import sys,struct,hashlib
n = int(sys.argv[1])
f = lambda s: struct.pack("<I", len(s)) + s
ident = f(b"bkt") + f("k/\u00fc.bin".encode()) + f(b"0123abcd") + f(b"") + struct.pack("<QQ", 1 << 20, 3)
data = bytes(i % 251 for i in range(n))
sys.stdout.buffer.write(b"S3TBLK\r\n" + struct.pack("<IIQ", 1, len(ident), n) +
                        hashlib.sha256(ident + data).digest() + ident + data)' "$n" >"$work/corpus/d$n"
  done
  ;;
esac
if [ "$target" = trpc ]; then
  # answers of Transmission 3.00, as seen on the wire
  h=4dcd0922792ece6fd9d87fd70763b2bc24f2b4a0
  printf '{"arguments":{"torrent-added":{"hashString":"%s","id":1,"name":"x.bin"}},"result":"success","tag":7}' $h >"$work/corpus/trpc-added"
  printf '{"arguments":{"torrent-duplicate":{"hashString":"%s","id":1,"name":"x.bin"}},"result":"success"}' $h >"$work/corpus/trpc-dup"
  printf '{"arguments":{"torrents":[{"downloadDir":"/tmp/dl","hashString":"%s","id":1,"name":"x.bin"}]},"result":"success"}' $h >"$work/corpus/trpc-get"
  printf '{"arguments":{},"result":"invalid or corrupt torrent file"}' >"$work/corpus/trpc-bad"
fi
if [ "$target" = seedc ]; then
  # answers of qBittorrent 4.5 (torrents/info) and deluge-web 2.0 (JSON-RPC), as on the wire
  h=0123456789abcdef0123456789abcdef01234567
  printf '[{"hash":"%s","name":"x.bin","save_path":"/mnt/rec/","state":"stalledUP"}]' $h >"$work/corpus/qbt-info"
  printf '[]' >"$work/corpus/qbt-empty"
  printf '{"result":true,"error":null,"id":7}' >"$work/corpus/deluge-login"
  printf '{"result":null,"error":{"message":"Not authenticated","code":1},"id":7}' >"$work/corpus/deluge-auth"
  printf '{"result":"%s","error":null,"id":7}' $h >"$work/corpus/deluge-added"
  printf '{"result":[["abc","127.0.0.1",58846,"localclient"]],"error":null,"id":7}' >"$work/corpus/deluge-hosts"
fi
if [ "$target" = events ] || [ "$target" = listen ]; then
  # pushed notifications: Ceph RGW (raw keys) and MinIO (encoded keys, "s3:" event names)
  rec='"s3":{"bucket":{"name":"bkt","arn":"arn:aws:s3:::bkt"},"object":{"key":"%s","size":123,"eTag":"0123456789abcdef0123456789abcdef","metadata":[],"tags":[]}}'
  printf '{"Records":[{"eventVersion":"2.2","eventSource":"ceph:s3","awsRegion":"","eventName":"ObjectCreated:Put",'"$rec"',"opaqueData":""}]}' 'rec/take 1+\u00fc %41.bin' >"$work/corpus/rgw-put"
  printf '{"Records":[{"eventSource":"ceph:s3","eventName":"s3:ObjectRemoved:Delete",'"$rec"'}]}' 'a' >"$work/corpus/rgw-delete"
  printf '{"EventName":"s3:ObjectCreated:Put","Key":"bkt/a b","Records":[{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventName":"s3:ObjectCreated:Put",'"$rec"'}]}' 'a%2Fb+c%41' >"$work/corpus/minio-put"
fi
if [ "$target" = listen ]; then
  # whole requests: "METHOD PATH", headers, an empty line, the body
  printf 'POST /rgw/topic\nContent-Length: 2\nContent-Type: application/json\n\n{}' >"$work/corpus/req-post"
  printf 'GET /\n\n' >"$work/corpus/req-get"
  printf 'POST /\nContent-Length: 7340032\n\n' >"$work/corpus/req-413"
  printf 'POST /\nX-Over-Cap: 1\n\n{"Records":[]}' >"$work/corpus/req-over"
  printf 'POST /a%%00b\n\n{"Service":"Amazon S3","Event":"s3:TestEvent"}' >"$work/corpus/req-test"
fi
if [ "$target" = serve ]; then
  # "METHOD TARGET", then Range, If-Range, If-Match, If-None-Match, If-Modified-Since,
  # If-Unmodified-Since (one per line, empty when absent), then bytes for the object's size
  printf 'GET /media/a%%20b.bin\nbytes=0-99\n\n\n\n\n\n\001\002' >"$work/corpus/s1"
  printf 'HEAD /~e/0123abcd-2/rec/public/x.mkv?torrent\n\n\n"0123abcd-2"\n\n\n\n' >"$work/corpus/s2"
  printf 'GET /media/a.bin.torrent\nbytes=-10\n"0123abcd-2"\n\nW/"x", "0123abcd-2"\n' >"$work/corpus/s3"
  printf 'GET /media/%%2E%%2E/a%%2Fb\nbytes=5-\nSun, 06 Nov 1994 08:49:37 GMT\n*\n\nSun, 06 Nov 1994 08:49:37 GMT\n\n\377' >"$work/corpus/s4"
  printf 'OPTIONS /metrics\n' >"$work/corpus/s5"
  printf 'GET /rec/public/take%%201/?torrent\n' >"$work/corpus/s6"
  printf 'GET /~m/1700000000/media/take/%%C3%%A9t%%C3%%A9.wav\nbytes=0-16383\n' >"$work/corpus/s7"
fi
if [ "$target" = feed ]; then
  # listings: one key per line
  printf 'rec/a.bin\nrec/b & <c> \303\251.bin\nrec/x.torrent\nrec//y\nrec/z\001\n' >"$work/corpus/f1"
  printf 'rec/d/e.bin\nrec/\300\257\nrec/"q".bin\n' >"$work/corpus/f2"
fi
if [ "$target" = presign ]; then
  # a version id, a newline, a key
  printf '\na b+c%%d.bin' >"$work/corpus/p1"
  printf '3sL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY/MT=\ndir/\303\274 ber/\342\202\254.mkv' >"$work/corpus/p2"
  printf 'null\na//b/./c?d#e&f=g\r\n' >"$work/corpus/p3"
fi
if [ -d "$here/seeds/$target" ]; then # seeds kept as files: multi-file torrents for metainfo
  cp "$here/seeds/$target"/* "$work/corpus/"
fi
if [ -d "$here/regressions/$target" ]; then
  cp "$here/regressions/$target"/* "$work/corpus/" 2>/dev/null || true
fi
limit=(-max_total_time="$seconds")
[ -z "$runs" ] || limit+=(-runs="$runs")
mkdir -p "$work/out"
if ! "$build/tests/fuzz_$target" "${limit[@]}" -max_len=65536 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$work/out/" "$work/corpus" 2>"$work/log"; then
  tail -50 "$work/log"
  mkdir -p "fuzz-findings/$target"
  cp "$work/out/"* "fuzz-findings/$target/" 2>/dev/null || true
  echo "fuzz $target: FAILED; inputs kept in fuzz-findings/$target/"
  exit 1
fi
grep -E "^stat::number_of_executed_units|^Done" "$work/log" | tr '\n' ' '
echo
