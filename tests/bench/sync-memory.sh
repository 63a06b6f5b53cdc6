#!/usr/bin/env bash
# Peak memory of `s3torrent sync --dry-run` over prefixes of many keys on s3rver: it should not
# grow with the number of keys (the listing feeds the workers through a bounded window).
#
# Usage: tests/bench/sync-memory.sh
#   BENCH_KEYS          the prefix sizes to measure, in keys (default "10000 100000")
#   BENCH_OBJECT_BYTES  bytes per object (default 1: each object is HEADed for its .torrent and
#                       counted "created"; 0 makes them zero-byte, which sync skips unread)
#   BENCH_MAX_RSS_MIB   the peak RSS S3TORRENT must stay under at every size (default 64)
#   S3TORRENT           s3torrent binary to measure (default: Release build in $BUILD_DIR)
#   S3TORRENT_BASE      optional: another s3torrent (say, an older commit's) measured the same way
#   BUILD_DIR           build dir, relative to the repo root (default build-bench)
#   BENCH_DIR           where to make the temporary work dir (default $TMPDIR or /tmp)
# Needs: cmake, python3, GNU time, and s3rver in node_modules (contrib/dev/deps.sh).
# The keys are written straight into s3rver's store (its file layout: KEY._S3rver_object, .md5
# and ._S3rver_metadata.json, a thousand keys a directory) instead of PUT one by one; the script
# checks that s3rver lists every one, with its size and MD5 ETag, before measuring.
set -euo pipefail

source "$(dirname "$0")/common.sh"
bench_init S3TORRENT S3TORRENT_BASE

KEYS_LIST=${BENCH_KEYS:-10000 100000}
BYTES=${BENCH_OBJECT_BYTES:-1}
MAX_MIB=${BENCH_MAX_RSS_MIB:-64}
BUCKET=bench

bench_need "$PY" /usr/bin/time "$S3RVER"
for n in $KEYS_LIST; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_KEYS holds positive integers, not '$n'" >&2; exit 2; }
done
[[ "$BYTES" == 0 || "$BYTES" == 1 ]] || { echo "BENCH_OBJECT_BYTES is 0 or 1" >&2; exit 2; }
bench_load
bench_build S3TORRENT=tools/s3torrent
bench_aws_env
unset DDB_TABLE # no status items: the listing and the workers only

S3PID=""
cleanup() {
    bench_server_stop
    rm -rf "$WORK"
}
bench_work s3t-syncmem
trap cleanup EXIT
echo "starting s3rver in $WORK/s3rver ..."
bench_s3rver "$BUCKET" --silent

# make_keys PREFIX N: N objects PREFIX/dDDD/kNNNNNNN, BYTES bytes each, in s3rver's store
make_keys() {
    "$PY" - "$WORK/s3rver/$BUCKET" "$1" "$2" "$BYTES" <<'EOF'
import hashlib, os, sys
root, prefix, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
body = b"x" * size
md5 = hashlib.md5(body).hexdigest()
for i in range(n):
    d = os.path.join(root, prefix, f"d{i // 1000:04d}")
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    base = os.path.join(d, f"k{i:07d}._S3rver_")
    with open(base + "object", "wb") as f:
        f.write(body)
    with open(base + "object.md5", "w") as f:
        f.write(md5)
    with open(base + "metadata.json", "w") as f:
        f.write('{\n  "content-type": "application/octet-stream"\n}')
EOF
}

# check_listing PREFIX N: s3rver lists N keys under PREFIX/, each of BYTES bytes with the MD5 ETag
check_listing() {
    local md5 bad
    md5=$(printf '%*s' "$BYTES" '' | tr ' ' x | md5sum | cut -d' ' -f1)
    "$S3TORRENT" ls -r --endpoint-url "$URL" "s3://$BUCKET/$1/" >"ls-$1.txt"
    bad=$(awk -v b="$BYTES" -v m="$md5" '$1 != b || $3 != m' "ls-$1.txt" | wc -l)
    if [[ $(wc -l <"ls-$1.txt") != "$2" || $bad != 0 ]]; then
        echo "s3rver lists $(wc -l <"ls-$1.txt") keys under $1/ ($bad unlike the others)," \
            "not the $2 written" >&2
        exit 1
    fi
}

# measure NAME BINARY PREFIX: one dry run; prints a table row and sets RSS_MIB
measure() {
    local name=$1 bin=$2 prefix=$3 kb wall user sys summary
    if ! /usr/bin/time -v -o "time-$name-$prefix.txt" "$bin" sync --dry-run --no-cache -j 2 \
        --endpoint-url "$URL" "s3://$BUCKET/$prefix/" >"out-$name-$prefix.txt" \
        2>"err-$name-$prefix.txt"; then
        echo "s3torrent sync ($name) failed:" >&2
        tail -5 "err-$name-$prefix.txt" >&2
        exit 1
    fi
    kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "time-$name-$prefix.txt")
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "time-$name-$prefix.txt")
    user=$(sed -n 's/.*User time (seconds): //p' "time-$name-$prefix.txt")
    sys=$(sed -n 's/.*System time (seconds): //p' "time-$name-$prefix.txt")
    wall=$(awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }' <<<"$wall")
    summary=$(sed -n 's/^s3torrent: \([0-9]* objects: .*\) (dry run.*/\1/p' \
        "err-$name-$prefix.txt")
    RSS_MIB=$(calc "$kb / 1024")
    printf '| %-8s | %7s | %12.1f | %6.2f | %6.2f | %s |\n' "$name" "${prefix#keys-}" "$RSS_MIB" \
        "$wall" "$(calc "$user + $sys")" "$summary"
}

for n in $KEYS_LIST; do
    printf 'writing %s keys of %s byte(s) under keys-%s/ ...\n' "$n" "$BYTES" "$n"
    make_keys "keys-$n" "$n"
    check_listing "keys-$n" "$n"
done
echo "s3rver lists every key written, with its size and ETag"
echo
echo "s3torrent sync --dry-run --no-cache -j 2 (no status table), on $NPROC cores:"
echo "| binary   |    keys | peak RSS MiB | wall s | CPU s  | summary |"
echo "|----------|---------|--------------|--------|--------|---------|"
over=0
for n in $KEYS_LIST; do
    if [[ -n "${S3TORRENT_BASE:-}" ]]; then measure base "$S3TORRENT_BASE" "keys-$n"; fi
    measure current "$S3TORRENT" "keys-$n"
    if (($(calc "$RSS_MIB >= $MAX_MIB"))); then
        echo "peak RSS of $RSS_MIB MiB at $n keys: not under $MAX_MIB MiB" >&2
        over=1
    fi
done
exit "$over"
