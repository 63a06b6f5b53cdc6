#!/usr/bin/env bash
# Benchmark of `s3torrent create s3://...` (parallel ranged GETs, no temporary file) against the old
# pipeline (aws s3 cp to disk, then transmission-create) and against 4 ranged curl GETs, on s3rver
# and on Ceph RGW (a production S3), one table for each.
#
# Usage: tests/bench/s3-create.sh
#   BENCH_SERVER   s3rver, rgw or both, one after the other (default both)
#   BENCH_SIZE_MB  size of the test object in MiB (default 2048 on s3rver, 1024 on RGW: its
#                  memstore keeps the object in RAM, sized for it unless RGW_MEMSTORE_BYTES is set)
#   BENCH_DIR      where to make the temporary work dir (default $TMPDIR or /tmp)
#   S3TORRENT      s3torrent binary to use (default: Release build in $BUILD_DIR)
#   BUILD_DIR      build dir, relative to the repo root (default build-bench)
#   BENCH_RUNS     rounds (default 5): each runs every contender once, in turn, and each ratio
#                  is the median of the rounds' ratios (paired runs)
# Needs: cmake, openssl, mktorrent, transmission-cli, awscli (/usr/bin/aws), curl, strace,
# GNU time, s3rver in node_modules and Ceph's RGW (contrib/dev/deps.sh).
# The old pipeline's time does not include deleting its downloaded copy (done after each run).
# Besides wall time it prints CPU seconds (user + system), which carry over to a machine where
# the server runs elsewhere: s3torrent's against the hash and the transport's own, `openssl dgst
# -sha1` of the same bytes (page-cached) plus the 4 curl GETs'.
set -euo pipefail

source "$(dirname "$0")/common.sh"
bench_init S3TORRENT

bench_need openssl mktorrent transmission-create curl strace "$AWS" /usr/bin/time
bench_load
bench_build S3TORRENT=tools/s3torrent
bench_servers

SIZE_MB=${BENCH_SIZE_MB:-$SERVER_MB}
RUNS=${BENCH_RUNS:-5}
SIZE=$((SIZE_MB * 1048576))
BUCKET=bench
KEY=obj.bin

bench_aws_env

cleanup() {
    bench_server_stop
    rm -rf "$WORK"
}
bench_work s3t-s3bench
trap cleanup EXIT

bench_server "$BUCKET" "$SIZE" --silent
OBJ_URL=$(bench_obj_url "$BUCKET" "$KEY")

# s3torrent's default piece length: the smallest power of two >= 256 KiB giving <= 2048 pieces,
# at most 16 MiB.
PIECE=262144
while ((PIECE < 16777216 && (SIZE + PIECE - 1) / PIECE > 2048)); do PIECE=$((PIECE * 2)); done
PIECE_LOG2=0
while (((1 << PIECE_LOG2) < PIECE)); do PIECE_LOG2=$((PIECE_LOG2 + 1)); done

echo "making a $SIZE_MB MiB object of pseudo-random data and uploading it (aws s3 cp, multipart) ..."
head -c "$SIZE" /dev/zero |
    openssl enc -aes-128-ctr -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000 >"$KEY"
"$AWS" --endpoint-url "$URL" s3 cp --only-show-errors "$KEY" "s3://$BUCKET/$KEY"
# The reference torrent for the info-hash check, made from the same bytes before they go.
mktorrent -t "$NPROC" -l "$PIECE_LOG2" -o mk.torrent "$KEY" >/dev/null
# The SHA-1 limit: openssl's CPU seconds over the same bytes, from the page cache (median run).
SHA_RUNS=()
for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%U %S' -o sha.txt openssl dgst -sha1 "$KEY" >/dev/null
    read -r u s <sha.txt
    SHA_RUNS+=("$(calc "$u + $s")")
done
SHA_CPU=$(printf '%s\n' "${SHA_RUNS[@]}" | sort -g | sed -n "$(((RUNS + 1) / 2))p")
rm -f "$KEY" # from here on the bytes exist only in the server's store
bench_warm_store

declare -A SECS RSS USR SYS CPU SRV
declare -A LABEL=(
    [a]='(a) s3torrent create s3://'
    [b]='(b) aws s3 cp + transmission-create'
    [c]='(c) 4 ranged curl GETs'
)
# once NAME OUT CMD...: one timed run of CMD (OUT removed before it, $SCRATCH after it, untimed);
# appends "wall user sys server" to ROWS[NAME], one line a run, and keeps the largest peak RSS
# (KiB) in RSS[NAME].
declare -A ROWS
once() {
    local name=$1 out=$2 wall rss u s s0 s1
    shift 2
    rm -f "$out"
    s0=$(bench_server_ticks)
    bench_timed "$name" "$@"
    s1=$(bench_server_ticks)
    if [[ -n "${SCRATCH:-}" ]]; then rm -f "$SCRATCH"; fi
    read -r wall rss u s <<<"$TIMED"
    ROWS[$name]+="$wall $u $s $(calc "($s1 - $s0) / $CLK_TCK")"$'\n'
    if ((rss > ${RSS[$name]:-0})); then RSS[$name]=$rss; fi
}

# settle NAME: SECS[NAME] = the median wall time over the rounds; USR, SYS, CPU = the user,
# system and both CPU seconds and SRV = the server's CPU seconds, of the median run.
settle() {
    read -r "SECS[$1]" "USR[$1]" "SYS[$1]" "SRV[$1]" < <(printf '%s' "${ROWS[$1]}" |
        sort -g | sed -n "$(((RUNS + 1) / 2))p")
    CPU[$1]=$(calc "${USR[$1]} + ${SYS[$1]}")
}

# round_ratios X Y: X's wall time over Y's in each round, in round order.
round_ratios() {
    paste -d' ' <(printf '%s' "${ROWS[$1]}" | cut -d' ' -f1) <(printf '%s' "${ROWS[$2]}" | cut -d' ' -f1) |
        awk '{ printf "%.2f ", $1 / $2 }'
}

# median_ratio X Y: the median over the rounds of X's wall time over Y's (paired runs).
median_ratio() {
    round_ratios "$1" "$2" | tr ' ' '\n' | grep . | sort -g | sed -n "$(((RUNS + 1) / 2))p"
}

info_hash() { # info_hash FILE: the v1 info-hash from `s3torrent show --json`
    "$S3TORRENT" show --json "$1" | sed -n 's/.*"info_hash":"\([0-9a-f]*\)".*/\1/p'
}

# The 4 ranged GETs of (c): the object in 4 nearly equal byte ranges.
RANGES=()
CHUNK=$(((SIZE + 3) / 4))
for i in 0 1 2 3; do
    start=$((i * CHUNK))
    end=$(((i + 1) * CHUNK < SIZE ? (i + 1) * CHUNK - 1 : SIZE - 1))
    ((start <= end)) && RANGES+=("$start-$end")
done
# shellcheck disable=SC2016 # expanded by the inner bash
CURL_GETS='url=$1; shift; pids=()
for r; do curl -sf -o /dev/null -w "%{size_download}\n" -r "$r" "$url" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done'
# shellcheck disable=SC2016 # expanded by the inner bash
OLD_PIPELINE='"$1" --endpoint-url "$2" s3 cp --only-show-errors "$3" local.bin
transmission-create -o b.torrent local.bin'

bench_server_idle
LOAD_TIMING=$(cut -d' ' -f1 /proc/loadavg)
echo "timing ($RUNS rounds, each running every contender once, in turn; load average now $LOAD_TIMING) ..."
for ((round = 1; round <= RUNS; round++)); do
    once a a.torrent \
        "$S3TORRENT" create --no-date --force -o a.torrent --endpoint-url "$URL" "s3://$BUCKET/$KEY"
    SCRATCH=local.bin once b b.torrent \
        bash -ec "$OLD_PIPELINE" _ "$AWS" "$URL" "s3://$BUCKET/$KEY"
    once c none \
        bash -ec "$CURL_GETS" _ "$OBJ_URL" "${RANGES[@]}"
    printf '  round %d:' "$round"
    for k in a b c; do printf ' (%s) %.3f s' "$k" "$(printf '%s' "${ROWS[$k]}" | tail -n 1 | cut -d' ' -f1)"; done
    echo
done
for k in a b c; do settle "$k"; done
got=$(awk '/^[0-9]+$/ { s += $1 } END { printf "%.0f\n", s }' log.txt)
if ((got != SIZE)); then
    echo "(c) downloaded $got bytes, expected $SIZE:" >&2
    cat log.txt >&2
    exit 1
fi

echo "checking for temporary files (strace) ..."
rm -f a.torrent
strace -f -e trace=openat,open,creat -o trace.txt \
    "$S3TORRENT" create --no-date --force -o a.torrent --endpoint-url "$URL" "s3://$BUCKET/$KEY" \
    >/dev/null
# Every file (a) created, but the torrent and its OUT.tmp.PID.N sibling (written, then renamed);
# O_TMPFILE makes an unnamed file without O_CREAT, so it counts too.
TEMPS=$(grep -E 'O_CREAT|O_TMPFILE|creat\(' trace.txt |
    sed -n 's/^[0-9]* *[a-z]*([^"]*"\([^"]*\)".*/\1/p' |
    grep -Ev '^a\.torrent(\.tmp\.[0-9]+\.[0-9]+)?$' || true)

echo
printf '%s MiB object on %s, %s cores, load average %s at start, %s before timing\n' \
    "$SIZE_MB" "$SERVER_DESC" "$NPROC" "$LOAD_START" "$LOAD_TIMING"
echo
printf '%-36s %8s %7s %12s %7s %7s %7s %12s\n' contender seconds MB/s 'peak RSS MiB' 'user s' \
    'sys s' 'CPU s' "$SERVER_NAME CPU s"
row() { # row NAME
    printf '%-36s %8.3f %7.0f %12.1f %7.2f %7.2f %7.2f %12.2f\n' "${LABEL[$1]}" "${SECS[$1]}" \
        "$(calc "$SIZE / ${SECS[$1]} / 1e6")" "$(calc "${RSS[$1]} / 1024")" \
        "${USR[$1]}" "${SYS[$1]}" "${CPU[$1]}" "${SRV[$1]}"
}
row a
row b
row c
printf '%-36s %8s %7s %12s %7s %7s %7.2f\n' '(d) openssl dgst -sha1, page-cached' - - - - - "$SHA_CPU"
echo "(medians of $RUNS rounds; CPU and $SERVER_NAME CPU seconds are those of the median run; (b)'s time excludes deleting its copy)"
echo

LIMIT_CPU=$(calc "$SHA_CPU + ${CPU[c]}")
echo "each round's ratio:"
echo "  (b) / (a)  $(round_ratios b a)"
echo "  (a) / (c)  $(round_ratios a c)"
echo "medians of the $RUNS paired rounds:"
echo "(b) old pipeline / (a) s3torrent = $(median_ratio b a) (target >= 3)"
echo "(a) s3torrent / (c) 4 ranged curl GETs, wall = $(median_ratio a c) (target <= 1.25)"
printf '(a) s3torrent CPU / ((d) SHA-1 + (c) curl CPU) = %.2f / %.2f = %.2f (target <= 1.10)\n' \
    "${CPU[a]}" "$LIMIT_CPU" "$(calc "${CPU[a]} / $LIMIT_CPU")"
printf 'peak RSS of s3torrent = %.1f MiB (target < 64)\n' "$(calc "${RSS[a]} / 1024")"
echo

if [[ -z "$TEMPS" ]]; then
    echo "temporary files: 0"
else
    echo "temporary files: $(wc -l <<<"$TEMPS")"
    while IFS= read -r f; do echo "  $f"; done <<<"$TEMPS"
fi

ours=$(info_hash a.torrent)
theirs=$(info_hash mk.torrent)
if [[ -n "$ours" && "$ours" == "$theirs" ]]; then
    echo "v1 info-hash, s3torrent (s3://) vs mktorrent -l $PIECE_LOG2 (local copy): MATCH ($ours)"
else
    echo "v1 info-hash, s3torrent (s3://) vs mktorrent -l $PIECE_LOG2 (local copy): MISMATCH (s3torrent '$ours', mktorrent '$theirs')"
    exit 1
fi
if [[ -n "$TEMPS" ]]; then exit 1; fi
