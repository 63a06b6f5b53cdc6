#!/usr/bin/env bash
# Benchmark of `s3torrent sync` on a prefix of many objects (s3rver + dynalite) against the old
# per-object pipeline (aws s3 cp, transmission-create, aws s3 cp, aws dynamodb update-item).
#
# Usage: tests/bench/sync.sh
#   BENCH_OBJECTS  number of objects, 1 to 20 MiB each (default 200, about 2 GiB)
#   BENCH_DIR      where to make the temporary work dir (default $TMPDIR or /tmp)
#   S3TORRENT      s3torrent binary to use (default: Release build in $BUILD_DIR)
#   BUILD_DIR      build dir, relative to the repo root (default build-bench)
# Needs: cmake, openssl, transmission-cli, awscli (/usr/bin/aws), python3, GNU time, and
# s3rver and dynalite in node_modules (contrib/dev/deps.sh).
# The objects are uploaded twice: under a/ for the old pipeline and under b/ for s3torrent sync,
# so each starts from objects without torrents. One run of each (the old pipeline takes minutes).
set -euo pipefail

source "$(dirname "$0")/common.sh"
bench_init S3TORRENT

OBJECTS=${BENCH_OBJECTS:-200}
BUCKET=bench
TABLE=torrent-status
JOBS=4

bench_need openssl transmission-create transmission-show "$AWS" "$PY" /usr/bin/time "$S3RVER" \
    "$DYNALITE"
if ! [[ "$OBJECTS" =~ ^[1-9][0-9]*$ ]]; then
    echo "BENCH_OBJECTS must be a positive integer, not '$OBJECTS'" >&2
    exit 2
fi
bench_load
bench_build S3TORRENT=tools/s3torrent
bench_aws_env

S3PID=""
DDBPID=""
cleanup() {
    local pid
    for pid in "$S3PID" "$DDBPID"; do
        if [[ -n "$pid" ]]; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
bench_work s3t-syncbench
trap cleanup EXIT

echo "starting s3rver in $WORK/s3rver and dynalite (in memory) ..."
bench_s3rver "$BUCKET" --silent

# dynalite cannot pick its own port (0 means its default, 4567): ask the kernel for a free one,
# and try again should another process take it first.
DDB_PORT=""
for _ in 1 2 3 4 5; do
    port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$DYNALITE" --host 127.0.0.1 --port "$port" >dynalite.log 2>&1 &
    DDBPID=$!
    DDB_PORT=$(bench_wait_log "$DDBPID" dynalite.log \
        "s/.*listening at: http:\/\/127\.0\.0\.1:\($port\)\$/\1/p")
    [[ -n "$DDB_PORT" ]] && break
    wait "$DDBPID" 2>/dev/null || true
    DDBPID=""
done
if [[ -z "$DDB_PORT" ]]; then
    echo "dynalite did not start:" >&2
    cat dynalite.log >&2
    exit 1
fi
DDB_URL=http://127.0.0.1:$DDB_PORT

# The objects: obj-NNN.bin, sizes from 1 MiB to 20 MiB drawn by a fixed-seed LCG (the same in
# every bash), content from AES-CTR with the object's number as IV.
KEYS=()
SIZES=()
TOTAL=0
x=20240601
for ((i = 0; i < OBJECTS; i++)); do
    x=$(((x * 1103515245 + 12345) & 0x7fffffff))
    KEYS+=("$(printf 'obj-%03d.bin' "$i")")
    SIZES+=($((1048576 + x % (19 * 1048576 + 1))))
    TOTAL=$((TOTAL + SIZES[i]))
done
TOTAL_MIB=$(calc "$TOTAL / 1048576")
printf 'making %s objects of pseudo-random data (%.0f MiB in all) ...\n' "$OBJECTS" "$TOTAL_MIB"
mkdir data
for ((i = 0; i < OBJECTS; i++)); do
    head -c "${SIZES[i]}" /dev/zero |
        openssl enc -aes-128-ctr -K 000102030405060708090a0b0c0d0e0f -iv "$(printf '%032x' "$i")" \
            >"data/${KEYS[i]}"
done
echo "uploading them under a/ and b/ (aws s3 cp --recursive, multipart above 8 MiB) ..."
for p in a b; do
    "$AWS" --endpoint-url "$URL" s3 cp --only-show-errors --recursive data "s3://$BUCKET/$p/"
done
rm -rf data # from here on the bytes exist only in s3rver's store
# s3rver keeps each object as a plain file: read them into the page cache so both contenders are
# served from memory the same way.
find s3rver -type f -exec cat {} + >/dev/null

echo "creating the status table $TABLE (s3torrent sync --create-table on an empty prefix) ..."
"$S3TORRENT" sync --create-table --no-cache --ddb-table "$TABLE" --ddb-endpoint-url "$DDB_URL" \
    --endpoint-url "$URL" "s3://$BUCKET/empty/" >create-table.log 2>&1 || {
    cat create-table.log >&2
    exit 1
}
"$AWS" --endpoint-url "$DDB_URL" dynamodb wait table-exists --table-name "$TABLE"

# usec: the time now in microseconds (bash's EPOCHREALTIME without its decimal point).
usec() { echo "${EPOCHREALTIME//[!0-9]/}"; }

# (1) The old entrypoint, once per object: download to disk, transmission-create, upload the
# .torrent, write the status item, delete the local files. STEP[...] sums each step's time (us).
declare -A STEP=([get]=0 [create]=0 [put]=0 [ddb]=0 [rm]=0)
OLD=$WORK/old
mkdir "$OLD"
old_one() { # old_one KEY
    local key=$1 local=$OLD/${1##*/} hash t0 t1 t2 t3 t4 t5
    t0=$(usec)
    "$AWS" --endpoint-url "$URL" s3 cp --only-show-errors "s3://$BUCKET/$key" "$local"
    t1=$(usec)
    transmission-create -o "$local.torrent" "$local" >/dev/null 2>&1
    t2=$(usec)
    "$AWS" --endpoint-url "$URL" s3 cp --only-show-errors "$local.torrent" \
        "s3://$BUCKET/$key.torrent"
    t3=$(usec)
    hash=$(transmission-show "$local.torrent" | sed -n 's/^ *Hash: *\([0-9a-f]\{40\}\)$/\1/p')
    [[ -n "$hash" ]] || { echo "no info hash for $key" >&2; return 1; }
    "$AWS" --endpoint-url "$DDB_URL" dynamodb update-item --table-name "$TABLE" \
        --key "{\"s3_uri\":{\"S\":\"s3://$BUCKET/$key\"}}" \
        --update-expression 'SET #s = :r, info_hash = :h' \
        --expression-attribute-names '{"#s":"status"}' \
        --expression-attribute-values "{\":r\":{\"S\":\"READY\"},\":h\":{\"S\":\"$hash\"}}" \
        >/dev/null
    t4=$(usec)
    rm -f "$local" "$local.torrent"
    t5=$(usec)
    STEP[get]=$((STEP[get] + t1 - t0))
    STEP[create]=$((STEP[create] + t2 - t1))
    STEP[put]=$((STEP[put] + t3 - t2))
    STEP[ddb]=$((STEP[ddb] + t4 - t3))
    STEP[rm]=$((STEP[rm] + t5 - t4))
}
old_loop() {
    local k
    for k in "${KEYS[@]}"; do old_one "a/$k"; done
}

# The start-up cost of one aws CLI call that does nothing (best of 3), for the breakdown.
AWS_START=""
for _ in 1 2 3; do
    t0=$(usec)
    "$AWS" --version >/dev/null
    t=$(($(usec) - t0))
    if [[ -z "$AWS_START" ]] || ((t < AWS_START)); then AWS_START=$t; fi
done

LOAD1=$(cut -d' ' -f1 /proc/loadavg)
echo "(1) old pipeline on a/ ($OBJECTS objects, one after another; load average now $LOAD1) ..."
s0=$(bench_ticks "$S3PID")
d0=$(bench_ticks "$DDBPID")
TIMEFORMAT='%R %U %S'
{ time old_loop; } 2>time1.txt
read -r SECS1 USR1 SYS1 <time1.txt
SRV1=$(calc "($(bench_ticks "$S3PID") - $s0) / $CLK_TCK")
DDB1=$(calc "($(bench_ticks "$DDBPID") - $d0) / $CLK_TCK")
printf '  %.3f s\n' "$SECS1"

# run_sync LOG: s3torrent sync of b/ under GNU time; JSON lines in LOG.json, stderr in LOG.err;
# sets SECS, RSS (KiB), USR, SYS, SRV and DDB (s3rver's and dynalite's CPU seconds).
run_sync() {
    local t0 t1 s0 d0
    s0=$(bench_ticks "$S3PID")
    d0=$(bench_ticks "$DDBPID")
    t0=$(usec)
    if ! /usr/bin/time -f '%M %U %S' -o "$1.time" "$S3TORRENT" sync -j "$JOBS" --no-cache --json \
        --ddb-table "$TABLE" --ddb-endpoint-url "$DDB_URL" --endpoint-url "$URL" \
        "s3://$BUCKET/b/" >"$1.json" 2>"$1.err"; then
        echo "s3torrent sync failed:" >&2
        cat "$1.err" >&2
        exit 1
    fi
    t1=$(usec)
    SECS=$(calc "($t1 - $t0) / 1e6")
    read -r RSS USR SYS < <(tail -n 1 "$1.time")
    SRV=$(calc "($(bench_ticks "$S3PID") - $s0) / $CLK_TCK")
    DDB=$(calc "($(bench_ticks "$DDBPID") - $d0) / $CLK_TCK")
}
# actions LOG: how many objects got each action, e.g. "200 created".
actions() { sed -n 's/.*"action":"\([^"]*\)".*/\1/p' "$1.json" | sort | uniq -c | awk '{ $1 = $1; print }'; }

LOAD2=$(cut -d' ' -f1 /proc/loadavg)
echo "(2) s3torrent sync -j $JOBS --no-cache on b/ (load average now $LOAD2) ..."
run_sync sync1
SECS2=$SECS RSS2=$RSS USR2=$USR SYS2=$SYS SRV2=$SRV DDB2=$DDB
printf '  %.3f s: %s\n' "$SECS2" "$(actions sync1 | paste -sd, | sed 's/,/, /g')"

LOAD3=$(cut -d' ' -f1 /proc/loadavg)
echo "(3) the same again, nothing to do (load average now $LOAD3) ..."
run_sync sync2
SECS3=$SECS RSS3=$RSS USR3=$USR SYS3=$SYS SRV3=$SRV DDB3=$DDB
printf '  %.3f s: %s\n' "$SECS3" "$(actions sync2 | paste -sd, | sed 's/,/, /g')"

echo "checking ..."
FAIL=0
check() { # check WHAT OK: print the check's outcome; a failed one fails the script at the end
    if [[ "$2" == 1 ]]; then echo "  ok    $1"; else echo "  FAIL  $1"; FAIL=1; fi
}
ok() { if "$@"; then echo 1; else echo 0; fi; }

check "(2) created all $OBJECTS objects' torrents" \
    "$(ok test "$(actions sync1)" == "$OBJECTS created")"
check "(3) found all $OBJECTS up-to-date" \
    "$(ok test "$(actions sync2)" == "$OBJECTS up-to-date")"
n=$("$AWS" --endpoint-url "$URL" s3 ls --recursive "s3://$BUCKET/a/" | grep -c '\.torrent$' || true)
check "(1) uploaded $OBJECTS .torrent objects (found $n)" "$(ok test "$n" -eq "$OBJECTS")"

# READY items per prefix, from one scan of the table
"$AWS" --endpoint-url "$DDB_URL" dynamodb scan --table-name "$TABLE" \
    --query "Items[?status.S=='READY'].s3_uri.S" --output text | tr '\t' '\n' >ready.txt
for p in a b; do
    n=$(grep -c "^s3://$BUCKET/$p/" ready.txt || true)
    check "DynamoDB: $n of $OBJECTS items READY under $p/" "$(ok test "$n" -eq "$OBJECTS")"
done

info_hash() { # info_hash FILE: the v1 info-hash from `s3torrent show --json`
    "$S3TORRENT" show --json "$1" | sed -n 's/.*"info_hash":"\([0-9a-f]*\)".*/\1/p'
}
# A few keys: first, middle and last. (2)'s .torrent is byte for byte what `s3torrent create`
# makes of the object, and its item is READY with that torrent's info-hash.
for i in 0 $((OBJECTS / 2)) $((OBJECTS - 1)); do
    key=b/${KEYS[i]}
    "$AWS" --endpoint-url "$URL" s3 cp --only-show-errors "s3://$BUCKET/$key.torrent" synced.torrent
    "$S3TORRENT" create --endpoint-url "$URL" -o - "s3://$BUCKET/$key" >created.torrent 2>/dev/null
    check "$key.torrent equals s3torrent create -o - s3://$BUCKET/$key" \
        "$(ok cmp -s synced.torrent created.torrent)"
    item=$("$AWS" --endpoint-url "$DDB_URL" dynamodb get-item --table-name "$TABLE" \
        --consistent-read --key "{\"s3_uri\":{\"S\":\"s3://$BUCKET/$key\"}}" \
        --query 'Item.[status.S, info_hash.S]' --output text)
    check "$key item: $item" "$(ok test "$item" == "READY	$(info_hash synced.torrent)")"
done

echo
printf '%s objects of 1-20 MiB (%.0f MiB) on s3rver (loopback, page-cached), dynalite, %s cores\n' \
    "$OBJECTS" "$TOTAL_MIB" "$NPROC"
echo "load average: $LOAD_START at start; $LOAD1 before (1), $LOAD2 before (2), $LOAD3 before (3)"
echo
printf '%-40s %9s %7s %12s %8s %8s %9s %10s\n' contender seconds MB/s 'peak RSS MiB' 'user s' \
    'sys s' 's3rver s' 'dynalite s'
printf '%-40s %9.3f %7.0f %12s %8.2f %8.2f %9.2f %10.2f\n' '(1) old pipeline, per object' \
    "$SECS1" "$(calc "$TOTAL / $SECS1 / 1e6")" - "$USR1" "$SYS1" "$SRV1" "$DDB1"
printf '%-40s %9.3f %7.0f %12.1f %8.2f %8.2f %9.2f %10.2f\n' "(2) s3torrent sync -j $JOBS" \
    "$SECS2" "$(calc "$TOTAL / $SECS2 / 1e6")" "$(calc "$RSS2 / 1024")" "$USR2" "$SYS2" "$SRV2" "$DDB2"
printf '%-40s %9.3f %7s %12.1f %8.2f %8.2f %9.2f %10.2f\n' '(3) s3torrent sync again, nothing to do' \
    "$SECS3" - "$(calc "$RSS3 / 1024")" "$USR3" "$SYS3" "$SRV3" "$DDB3"
echo "(user and sys: the contender and every process it started; s3rver and dynalite: their CPU)"
echo
echo "(1) per object, on average (wall ms):"
for s in get create put ddb rm; do
    case $s in
    get) what='aws s3 cp s3://... local (download)' ;;
    create) what='transmission-create' ;;
    put) what='aws s3 cp local.torrent s3://... (upload)' ;;
    ddb) what='transmission-show + aws dynamodb update-item' ;;
    rm) what='rm of the local files' ;;
    esac
    printf '  %-46s %8.1f  (%4.1f%%)\n' "$what" "$(calc "${STEP[$s]} / $OBJECTS / 1000")" \
        "$(calc "100 * ${STEP[$s]} / 1e6 / $SECS1")"
done
printf '  %-46s %8.1f\n' 'start-up of one aws CLI call (aws --version)' "$(calc "$AWS_START / 1000")"
echo

printf '(1) old pipeline / (2) s3torrent sync = %.1f (target >= 20)\n' "$(calc "$SECS1 / $SECS2")"
printf '(3) nothing-to-do rerun of %s objects = %.3f s (target < 2)\n' "$OBJECTS" "$SECS3"
printf 'peak RSS of (2) s3torrent sync -j %s = %.1f MiB\n' "$JOBS" "$(calc "$RSS2 / 1024")"
if ((FAIL)); then
    echo "some checks failed" >&2
    exit 1
fi
