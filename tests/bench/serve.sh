#!/usr/bin/env bash
# Benchmark of `s3torrent serve` in front of Ceph RGW (a private bucket, memstore): (1) a 1 GiB
# object in 4 parallel ranged GETs through the server vs the same GETs signed, straight from
# RGW; (2) random 16 KiB ranges of a hot 64 MiB object with wrk; (3) 8 clients downloading the
# same cold 64 MiB object at once: bytes read from S3 per byte served (docs/DESIGN.md §14).
#
# Usage: tests/bench/serve.sh
#   BENCH_SIZE_MB  size of the big object in MiB (default 1024)
#   BENCH_SECONDS  how long wrk runs (default 10)
#   BENCH_DIR      where to make the temporary work dir (default $TMPDIR or /tmp)
#   S3TORRENT      s3torrent binary to use (default: Release build in $BUILD_DIR)
#   BUILD_DIR      build dir, relative to the repo root (default build-bench)
# Needs: cmake, openssl, curl, wrk, awscli (/usr/bin/aws) and Ceph's RGW (contrib/dev/deps.sh).
# Not a test: contrib/dev/test.sh does not run it.
set -euo pipefail

source "$(dirname "$0")/common.sh"
bench_init S3TORRENT

SIZE_MB=${BENCH_SIZE_MB:-1024}
SIZE=$((SIZE_MB * 1048576))
HOT_SIZE=$((64 * 1048576))
WRK_SECONDS=${BENCH_SECONDS:-10}
BUCKET=bench
BIG=big.bin
HOT=hot.bin
SAME=same.bin # cold until (3)
# shellcheck disable=SC2034 # read by common.sh (bench_server, bench_obj_url)
SERVER=rgw # a private bucket: the server is the only anonymous way in

bench_need openssl curl wrk "$AWS" ceph-mon ceph-osd radosgw radosgw-admin
bench_load
bench_build S3TORRENT=tools/s3torrent
bench_aws_env

SERVE_PID=""
cleanup() {
    if [[ -n "$SERVE_PID" ]]; then
        kill "$SERVE_PID" 2>/dev/null || true
        wait "$SERVE_PID" 2>/dev/null || true
    fi
    bench_server_stop
    rm -rf "$WORK"
}
bench_work s3t-servebench
trap cleanup EXIT

bench_server "$BUCKET" $((SIZE + 2 * HOT_SIZE))

echo "making a $SIZE_MB MiB and two 64 MiB objects of pseudo-random data and uploading them ..."
random_bytes() {
    head -c "$1" /dev/zero |
        openssl enc -aes-128-ctr -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000
}
random_bytes "$SIZE" >"$BIG"
random_bytes "$HOT_SIZE" >"$HOT"
"$AWS" --endpoint-url "$URL" s3 cp --only-show-errors "$BIG" "s3://$BUCKET/$BIG"
"$AWS" --endpoint-url "$URL" s3 cp --only-show-errors "$HOT" "s3://$BUCKET/$HOT"
"$AWS" --endpoint-url "$URL" s3 cp --only-show-errors "$HOT" "s3://$BUCKET/$SAME"
rm -f "$BIG" "$HOT"

"$S3TORRENT" serve --endpoint-url "$URL" --listen 127.0.0.1:0 --no-cache "$BUCKET" \
    >serve.log 2>&1 &
SERVE_PID=$!
SPORT=$(bench_wait_log "$SERVE_PID" serve.log 's/.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p')
if [[ -z "$SPORT" ]]; then
    echo "s3torrent serve did not start:" >&2
    cat serve.log >&2
    exit 1
fi
SURL=http://127.0.0.1:$SPORT

metric() { # metric NAME: a counter of the server's /metrics
    curl -sf "$SURL/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# (1) the big object in 4 ranged GETs, each a quarter, through the server and signed from RGW
RANGES=()
CHUNK=$(((SIZE + 3) / 4))
for i in 0 1 2 3; do
    start=$((i * CHUNK))
    end=$(((i + 1) * CHUNK < SIZE ? (i + 1) * CHUNK - 1 : SIZE - 1))
    ((start <= end)) && RANGES+=("$start-$end")
done
four_gets() { # four_gets URL: prints the bytes downloaded
    local pids=() r i=0
    for r in "${RANGES[@]}"; do
        curl -sf -o /dev/null -w "%{size_download}\n" -r "$r" "$1" >"got.$i" &
        pids+=($!)
        i=$((i + 1))
    done
    for p in "${pids[@]}"; do wait "$p"; done
    cat got.* | awk '{ s += $1 } END { printf "%.0f\n", s }'
    rm -f got.*
}
declare -A WALL CPU RGWCPU
# fetch NAME URL: 3 runs, the first cold; WALL[NAME] the fastest, CPU[NAME] the server's CPU s
# and RGWCPU[NAME] RGW's (radosgw + ceph-osd) in that run
fetch() {
    local name=$1 url=$2 t0 t1 c0 c1 r0 r1 got t run
    for run in 1 2 3; do
        c0=$(bench_ticks "$SERVE_PID")
        r0=$(bench_server_ticks)
        t0=$EPOCHREALTIME
        got=$(four_gets "$url")
        t1=$EPOCHREALTIME
        c1=$(bench_ticks "$SERVE_PID")
        r1=$(bench_server_ticks)
        if ((got != SIZE)); then
            echo "$name: downloaded $got bytes, expected $SIZE" >&2
            exit 1
        fi
        t=$(calc "$t1 - $t0")
        printf '  %-34s run %d: %7.3f s\n' "$name" "$run" "$t"
        if [[ -z "${WALL[$name]:-}" ]] || (($(calc "$t < ${WALL[$name]}"))); then
            WALL[$name]=$t
            CPU[$name]=$(calc "($c1 - $c0) / $CLK_TCK")
            RGWCPU[$name]=$(calc "($r1 - $r0) / $CLK_TCK")
        fi
    done
}
echo "(1) $SIZE_MB MiB in 4 parallel ranged GETs (best of 3, the first cold) ..."
fetch serve "$SURL/$BUCKET/$BIG"
fetch rgw "$(bench_obj_url "$BUCKET" "$BIG")" # presigned: a signed GET straight from RGW

# (2) random 16 KiB ranges of the hot object with wrk
cat >ranges.lua <<'EOF'
-- a random aligned 16 KiB range of an object of OBJ_SIZE bytes per request
local size = tonumber(os.getenv("OBJ_SIZE"))
local blocks = math.floor(size / 16384)
math.randomseed(os.time())
request = function()
    local first = math.random(0, blocks - 1) * 16384
    return wrk.format("GET", nil, {Range = "bytes=" .. first .. "-" .. (first + 16383)})
end
EOF
curl -sf -o /dev/null "$SURL/$BUCKET/$HOT" # hot: read once through the server before
echo "(2) wrk, random 16 KiB ranges of a hot 64 MiB object, ${WRK_SECONDS}s ..."
b0=$(metric s3torrent_serve_bytes_served_total)
c0=$(bench_ticks "$SERVE_PID")
r0=$(bench_server_ticks)
OBJ_SIZE=$HOT_SIZE wrk -t 2 -c 16 -d "${WRK_SECONDS}s" -s ranges.lua "$SURL/$BUCKET/$HOT" >wrk.txt
c1=$(bench_ticks "$SERVE_PID")
r1=$(bench_server_ticks)
b1=$(metric s3torrent_serve_bytes_served_total)
sed 's/^/  /' wrk.txt
RPS=$(awk '/^Requests\/sec:/ { print $2 }' wrk.txt)
ERRS=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' wrk.txt)
WRK_BYTES=$((b1 - b0))
WRK_CPU=$(calc "($c1 - $c0) / $CLK_TCK")
WRK_RGW=$(calc "($r1 - $r0) / $CLK_TCK")

# the same ranges straight from RGW, the reference (a presigned URL: Range is not signed)
echo "    the same, straight from RGW (presigned) ..."
r0=$(bench_server_ticks)
OBJ_SIZE=$HOT_SIZE wrk -t 2 -c 16 -d "${WRK_SECONDS}s" -s ranges.lua \
    "$(bench_obj_url "$BUCKET" "$HOT")" >wrk-rgw.txt
r1=$(bench_server_ticks)
sed 's/^/  /' wrk-rgw.txt
RGW_RPS=$(awk '/^Requests\/sec:/ { print $2 }' wrk-rgw.txt)
RGW_ERRS=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' wrk-rgw.txt)
RGW_REQS=$(awk '/requests in/ { print $1 }' wrk-rgw.txt)
WRK_RGW_DIRECT=$(calc "($r1 - $r0) / $CLK_TCK")

# (3) 8 clients downloading the same object at once
echo "(3) 8 clients downloading the same cold 64 MiB object at once ..."
s0=$(metric s3torrent_serve_store_bytes_total)
b0=$(metric s3torrent_serve_bytes_served_total)
t0=$EPOCHREALTIME
pids=()
for i in 1 2 3 4 5 6 7 8; do
    curl -sf -o /dev/null -w "%{size_download}\n" "$SURL/$BUCKET/$SAME" >"same.$i" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
t1=$EPOCHREALTIME
got=$(cat same.* | awk '{ s += $1 } END { printf "%.0f\n", s }')
if ((got != 8 * HOT_SIZE)); then
    echo "(3) downloaded $got bytes, expected $((8 * HOT_SIZE))" >&2
    exit 1
fi
s1=$(metric s3torrent_serve_store_bytes_total)
b1=$(metric s3torrent_serve_bytes_served_total)
SAME_S3=$((s1 - s0))
SAME_SERVED=$((b1 - b0))
SAME_SECS=$(calc "$t1 - $t0")

GIB=$(calc "$SIZE / 1073741824")
echo
printf 's3torrent serve in front of %s, %s cores, load average %s at start, %s at the end\n' \
    "Ceph RGW (loopback, memstore, private bucket)" "$NPROC" "$LOAD_START" \
    "$(cut -d' ' -f1 /proc/loadavg)"
echo
echo "(1) $SIZE_MB MiB, 4 parallel ranged GETs (curl -r), best of 3:"
printf '  %-34s %8s %8s %16s %14s\n' path 'wall s' 'MB/s' 'serve CPU s/GiB' 'RGW CPU s/GiB'
printf '  %-34s %8.3f %8.0f %16.2f %14.2f\n' "through s3torrent serve" "${WALL[serve]}" \
    "$(calc "$SIZE / ${WALL[serve]} / 1e6")" "$(calc "${CPU[serve]} / $GIB")" \
    "$(calc "${RGWCPU[serve]} / $GIB")"
printf '  %-34s %8.3f %8.0f %16s %14.2f\n' "straight from RGW (presigned)" "${WALL[rgw]}" \
    "$(calc "$SIZE / ${WALL[rgw]} / 1e6")" - "$(calc "${RGWCPU[rgw]} / $GIB")"
printf '  serve / RGW wall = %.2f (target <= 1.3)\n' "$(calc "${WALL[serve]} / ${WALL[rgw]}")"
echo
echo "(2) wrk -t 2 -c 16, random 16 KiB ranges of a hot 64 MiB object, ${WRK_SECONDS} s:"
printf '  requests/s %.0f; non-2xx answers %s; served %.1f MB; serve CPU %.2f s/GB served; RGW CPU %.2f s/GB\n' \
    "$RPS" "${ERRS:-0}" "$(calc "$WRK_BYTES / 1e6")" "$(calc "$WRK_CPU / ($WRK_BYTES / 1e9)")" \
    "$(calc "$WRK_RGW / ($WRK_BYTES / 1e9)")"
printf '  straight from RGW: requests/s %.0f; non-2xx answers %s; RGW CPU %.2f s/GB\n' \
    "$RGW_RPS" "${RGW_ERRS:-0}" "$(calc "$WRK_RGW_DIRECT / ($RGW_REQS * 16384 / 1e9)")"
printf '  serve / RGW requests/s = %.2f (the server HEADs the object per answer; the ranges come from its block cache)\n' \
    "$(calc "$RPS / $RGW_RPS")"
echo
echo "(3) 8 clients, the same cold 64 MiB object at once:"
printf '  %.3f s; S3 bytes read %d, bytes served %d: %.3f S3 bytes per byte served (target <= %.3f = 1.2/8)\n' \
    "$SAME_SECS" "$SAME_S3" "$SAME_SERVED" "$(calc "$SAME_S3 / $SAME_SERVED")" "$(calc "1.2 / 8")"
