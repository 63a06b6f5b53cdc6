#!/usr/bin/env bash
# Benchmark of the s3torrentfs mount against s3fs and rclone mount on one server, s3rver or Ceph
# RGW (a production S3): sequential and piece-shaped random reads, a 10,000-object listing, first
# and cached reads of a .torrent, RSS; one table for each server.
#
# Usage: tests/bench/fs.sh   (as root: it mounts FUSE file systems)
#   BENCH_SERVER       s3rver, rgw or both, one after the other (default both)
#   BENCH_SIZE_MB      size of the big object in MiB (default 2048 on s3rver, 1024 on RGW: its
#                      memstore keeps it in RAM, sized for it unless RGW_MEMSTORE_BYTES is set)
#   BENCH_OBJECTS      tiny objects in the listed directory (default 10000)
#   BENCH_RUNS         fresh-mount runs per contender and measurement, the fastest kept (default 3)
#   BENCH_TIMEOUT      seconds after which one read, listing or create counts as hung (default 900)
#   BENCH_DROP_CACHES  1: also drop the whole kernel page cache before every timed run (default 0)
#   BENCH_DIR          where to make the temporary work dir (default $TMPDIR or /tmp)
#   BENCH_KEEP         1: keep the work dir (logs of the server and of each contender, the data)
#   S3TORRENTFS, S3TORRENT  binaries to use (default: Release build in $BUILD_DIR)
#   BUILD_DIR          build dir, relative to the repo root (default build-bench)
# Needs: cmake, openssl, curl, python3, s3fs, rclone, fuse3 (fusermount3), awscli (/usr/bin/aws),
# GNU time, s3rver in node_modules and Ceph's RGW (contrib/dev/deps.sh).
#
# Every timed read is on a fresh mount; unmounting discards the kernel's page cache of the mounted
# files, so no contender is served from a previous run's cache. s3rver's own store is kept in the
# page cache, RGW's memstore is RAM (every contender is served from memory the same way).
# BENCH_DROP_CACHES=1 drops the global page cache too (echo 3 >/proc/sys/vm/drop_caches, root only;
# it also slows every other program on the machine) and reads s3rver's store back in before the run.
# On RGW the object is private: curl's GETs use a presigned URL.
# Times are wall clock from bash's $EPOCHREALTIME (no fork, unlike `date +%s.%N`), except the
# random reads, which the reader times itself around open and pread.
set -euo pipefail

source "$(dirname "$0")/common.sh"
bench_init S3TORRENTFS S3TORRENT

if ((EUID != 0)); then
    echo "run as root: FUSE mounts, and s3fs's and rclone's need /dev/fuse" >&2
    exit 1
fi
bench_need cmake openssl curl python3 s3fs rclone fusermount3 mountpoint timeout "$AWS" \
    /usr/bin/time
bench_load
bench_build S3TORRENTFS=fs/s3torrentfs S3TORRENT=tools/s3torrent
bench_servers

SIZE_MB=${BENCH_SIZE_MB:-$SERVER_MB}
SIZE=$((SIZE_MB * 1048576))
NOBJ=${BENCH_OBJECTS:-10000}
RUNS=${BENCH_RUNS:-3}
TMO=${BENCH_TIMEOUT:-900}
BUCKET=bench # requests() below depends on this name's length
KEY=obj.bin
PREFIX=many
PIECE=1048576 # the random reads: BitTorrent pieces of 1 MiB, read in blocks of 16 KiB
BLOCK=16384
NPIECES=31 # 31 x 64 = 1,984 reads
SEED=20240611
CONTENDERS=(s3torrentfs s3fs rclone)

# rclone refuses to start with AWS_CA_BUNDLE set; it is gone with the rest of AWS_*, and unset
# again where rclone starts.
bench_aws_env

MPID="" MNTP="" CUR=""
cleanup() {
    local m
    for m in "$WORK"/mnt-*; do
        if mountpoint -q "$m"; then
            fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null || umount -l "$m" || true
        fi
    done
    if [[ -n "$MPID" ]]; then
        kill "$MPID" 2>/dev/null || true
        wait "$MPID" 2>/dev/null || true
    fi
    bench_server_stop
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
        echo "kept $WORK" >&2
    else
        rm -rf --one-file-system "$WORK" # never into a mount that would not go
    fi
}
bench_work s3t-fsbench
trap cleanup EXIT
mkdir mnt-s3torrentfs mnt-s3fs mnt-rclone mnt-floor

# s3rver not --silent: its log of responses is how the requests of each run are counted (s3rver's
# response logger runs either way; --silent only stops the printing). RGW logs every request.
bench_server "$BUCKET" "$SIZE"
OBJ_URL=$(bench_obj_url "$BUCKET" "$KEY")

# The peers' configuration: only what they need to reach the server.
echo "S3RVER:S3RVER" >passwd-s3fs
chmod 600 passwd-s3fs
cat >rclone.conf <<EOF
[s3]
type = s3
provider = Other
access_key_id = S3RVER
secret_access_key = S3RVER
endpoint = $URL
EOF

echo "making a $SIZE_MB MiB object of pseudo-random data and uploading it (aws s3 cp, multipart) ..."
SHA_EXPECTED=$(head -c "$SIZE" /dev/zero |
    openssl enc -aes-128-ctr -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000 |
    tee data.bin | sha256sum | cut -d' ' -f1)
"$AWS" --endpoint-url "$URL" s3 cp --only-show-errors data.bin "s3://$BUCKET/$KEY"

bench_warm_store
bench_server_idle

# proc_ticks PID: "utime stime" of PID in clock ticks ("0 0" without a PID).
proc_ticks() {
    if [[ -n "$1" && -r /proc/$1/stat ]]; then
        sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'
    else
        echo "0 0"
    fi
}

# requests FROM: the server's requests logged after line FROM of SERVER_LOG, as "GET n, LIST n,
# HEAD n, X MiB asked" (s3rver: the object GETs' Content-Length) or "X MiB sent" (RGW: the bytes of
# their bodies it sent).
requests() {
    if [[ $SERVER == rgw ]]; then requests_rgw "$1"; else requests_s3rver "$1"; fi
}
# RGW logs a request as "beast: ADDR: IP - USER [TIME] "METHOD TARGET HTTP/1.1" STATUS BYTES ...",
# from its logging thread: a moment for the last lines to be written. TARGET is /BUCKET/KEY for an
# object, /BUCKET, /BUCKET/ or either with "?..." for a listing (path style, as every client here).
requests_rgw() {
    sleep 0.2
    tail -n "+$(($1 + 1))" "$SERVER_LOG" | awk -v b="/$BUCKET" '
        !/ beast: / { next }
        {
            split($0, q, "\""); split(q[2], r, " "); split(q[3], st, " ")
            t = r[2]; sub(/\?.*/, "", t)
        }
        r[1] == "HEAD" { head++ }
        r[1] == "GET" && (t == b || t == b "/") { list++ }
        r[1] == "GET" && index(t, b "/") == 1 && length(t) > length(b) + 1 { get++; sent += st[2] }
        END { printf "GET %d, LIST %d, HEAD %d, %.1f MiB sent\n", get, list, head, sent / 1048576 }'
}
# s3rver logs a response as "info: ", the request line less its first 16 characters
# ("  --> GET /bench"), the status, the time and the length ("16.5kb", 2 decimals). With this
# bucket's name an object GET starts with "/" and a name, a bucket GET (a listing) with "/?", "?"
# or the status, and a HEAD with "h" (as a POST would; there are none here).
requests_s3rver() {
    tail -n "+$(($1 + 1))" "$SERVER_LOG" | sed 's/\x1b\[[0-9;]*m//g' | awk '
        $1 != "info:" || NF < 4 || $(NF - 2) !~ /^[0-9][0-9][0-9]$/ { next }
        $2 ~ /^\/\?/ || $2 == "/" || $2 ~ /^\?/ || $2 ~ /^[0-9][0-9][0-9]$/ { list++ }
        $2 ~ /^h/ { head++ }
        $2 ~ /^\/[^?]/ {
            get++
            n = $NF; unit = n; sub(/^[0-9.]+/, "", unit); sub(/[a-z]+$/, "", n)
            f = unit == "kb" ? 1024 : unit == "mb" ? 1048576 : unit == "gb" ? 1073741824 : 1
            sent += n * f
        }
        END { printf "GET %d, LIST %d, HEAD %d, %.1f MiB asked\n", get, list, head, sent / 1048576 }'
}

drop_caches() {
    if [[ "${BENCH_DROP_CACHES:-0}" == 1 ]]; then
        sync
        echo 3 >/proc/sys/vm/drop_caches
        bench_warm_store
    fi
}

NMOUNTS=0 LOG0=0 PHASE=""
declare -A HWM # s3torrentfs's peak RSS (VmHWM, KiB) per phase
# mount_fs NAME [CACHE]: mounts contender NAME on mnt-NAME (s3torrentfs with the torrent cache
# CACHE), in the foreground of a background job, and waits (bounded) until the mount is live.
mount_fs() {
    local name=$1 mnt=$WORK/mnt-$1 log=$WORK/$1.log
    NMOUNTS=$((NMOUNTS + 1))
    touch "$log"
    LOG0=$(wc -l <"$log")
    case $name in
    s3torrentfs)
        "$S3TORRENTFS" -f -o "endpoint=$URL,cache=${2:-$WORK/cache/torrents.db}" "$BUCKET" "$mnt" \
            >>"$log" 2>&1 &
        ;;
    s3fs)
        s3fs "$BUCKET" "$mnt" -f -o "url=$URL,use_path_request_style,passwd_file=$WORK/passwd-s3fs,ro" \
            >>"$log" 2>&1 &
        ;;
    rclone)
        env -u AWS_CA_BUNDLE rclone --config "$WORK/rclone.conf" mount "s3:$BUCKET" "$mnt" \
            --read-only >>"$log" 2>&1 &
        ;;
    esac
    MPID=$! MNTP=$mnt CUR=$name
    for _ in $(seq 600); do # up to 30 s
        mountpoint -q "$mnt" && return 0
        kill -0 "$MPID" 2>/dev/null || break
        sleep 0.05
    done
    echo "$name did not mount on $mnt; its output:" >&2
    tail -n "+$((LOG0 + 1))" "$log" >&2
    exit 1
}

# daemon_problems: lines of s3torrentfs's output since it was mounted that no run expects.
daemon_problems() {
    tail -n "+$((LOG0 + 1))" "$WORK/s3torrentfs.log" |
        grep -E ': error:|Sanitizer|runtime error' || true
}

# fail_ours WHAT: s3torrentfs misbehaved; print WHAT and its output, and stop.
fail_ours() {
    echo "s3torrentfs: $1" >&2
    echo "--- its output since mount $NMOUNTS ---" >&2
    tail -n "+$((LOG0 + 1))" "$WORK/s3torrentfs.log" >&2
    exit 1
}

# unmount_fs: unmounts the current contender and waits (bounded) for it to exit; for s3torrentfs,
# keeps its peak RSS and stops on an error exit or error lines in its output.
unmount_fs() {
    local hwm status=0
    if [[ "$CUR" == s3torrentfs ]]; then
        hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$MPID/status" 2>/dev/null || echo 0)
        if ((hwm > ${HWM[$PHASE]:-0})); then HWM[$PHASE]=$hwm; fi
    fi
    fusermount3 -u "$MNTP" 2>/dev/null || umount "$MNTP"
    for _ in $(seq 600); do # up to 30 s
        kill -0 "$MPID" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$MPID" 2>/dev/null; then
        echo "$CUR did not exit within 30 s of its unmount; killing it" >&2
        kill "$MPID"
    fi
    wait "$MPID" || status=$?
    MPID=""
    if [[ "$CUR" == s3torrentfs ]]; then
        ((status == 0)) || fail_ours "exited with status $status"
        [[ -z "$(daemon_problems)" ]] || fail_ours "reported errors"
    fi
}

declare -A SECS USR SYS SRV REQ
LAST="" LAST_USR="" LAST_SYS="" LAST_SRV="" LAST_REQ=""
# measure CMD...: runs CMD (output in out.txt, errors in err.txt) on the current mount, bounded by
# BENCH_TIMEOUT; LAST = its wall time in seconds, LAST_USR/LAST_SYS = the mounted daemon's CPU
# seconds meanwhile, LAST_SRV = the server's, LAST_REQ = the server's requests. Fails as CMD does.
measure() {
    local d0 d1 s0 s1 l0 t0 t1 rc=0
    d0=$(proc_ticks "$MPID") s0=$(bench_server_ticks) l0=$(wc -l <"$SERVER_LOG")
    t0=$EPOCHREALTIME
    timeout "$TMO" "$@" >out.txt 2>err.txt || rc=$?
    t1=$EPOCHREALTIME
    d1=$(proc_ticks "$MPID") s1=$(bench_server_ticks)
    LAST=$(calc "$t1 - $t0")
    LAST_USR=$(calc "(${d1% *} - ${d0% *}) / $CLK_TCK")
    LAST_SYS=$(calc "(${d1#* } - ${d0#* }) / $CLK_TCK")
    LAST_SRV=$(calc "($s1 - $s0) / $CLK_TCK")
    LAST_REQ=$(requests "$l0")
    if ((rc == 124)); then echo "  (no answer within $TMO s: hung?)" >>err.txt; fi
    return "$rc"
}

# keep KEY: keeps the last measurement as KEY's if it is KEY's fastest so far.
keep() {
    if [[ -z "${SECS[$1]:-}" ]] || (($(calc "$LAST < ${SECS[$1]}"))); then
        SECS[$1]=$LAST USR[$1]=$LAST_USR SYS[$1]=$LAST_SYS SRV[$1]=$LAST_SRV REQ[$1]=$LAST_REQ
    fi
}

declare -A FAILED
# peer_failed KEY NAME: a peer's run failed; note it (KEY gets no time) and go on without it.
peer_failed() {
    FAILED[$1]=1
    echo "  $2 failed on $1 (left out):" >&2
    sed 's/^/    /' err.txt >&2
    tail -n 5 "$WORK/$2.log" | sed 's/^/    /' >&2
    unmount_fs
}

# median: the median of the numbers on stdin.
median() {
    sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}

progress() { printf '  %-12s run %d: %s\n' "$1" "$2" "$3"; }

#
# 1. Sequential read of the big object: fresh mount each run; and 4 ranged curl GETs. For
#    information, curl also fetches the object as s3torrentfs does (fs/main.c: blocks of 1 MiB,
#    8 fetchers): one ranged GET a block, 8 in flight on kept-alive connections.
#
PHASE=seq
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
BLOCK_GETS=$WORK/block-gets.curl # a curl config: one ranged GET of each 1 MiB block
for ((i = 0; i * 1048576 < SIZE; i++)); do
    ((i == 0)) || echo next
    end=$(((i + 1) * 1048576 < SIZE ? (i + 1) * 1048576 - 1 : SIZE - 1))
    printf 'url = "%s"\nrange = "%d-%d"\noutput = "/dev/null"\nsilent\nfail\nwrite-out = "%%{size_download}\\n"\n' \
        "$OBJ_URL" "$((i * 1048576))" "$end"
done >"$BLOCK_GETS"

echo
echo "1. sequential read of the $SIZE_MB MiB object (cat >/dev/null; load average $(cut -d' ' -f1 /proc/loadavg)) ..."
for run in $(seq "$RUNS"); do
    drop_caches
    measure /usr/bin/time -f '%U %S' -o time.txt bash -ec "$CURL_GETS" _ "$OBJ_URL" "${RANGES[@]}" || {
        echo "4 ranged curl GETs failed:" >&2
        cat err.txt >&2
        exit 1
    }
    got=$(awk '/^[0-9]+$/ { s += $1 } END { printf "%.0f\n", s }' out.txt)
    ((got == SIZE)) || { echo "curl got $got bytes, expected $SIZE" >&2; exit 1; }
    read -r LAST_USR LAST_SYS < <(tail -n 1 time.txt) # curl's CPU, not a daemon's
    keep seq:curl
    progress curl "$run" "$(printf '%.3f s' "$LAST")"
    drop_caches
    measure /usr/bin/time -f '%U %S' -o time.txt curl --parallel --parallel-max 8 -K "$BLOCK_GETS" || {
        echo "curl's GETs of 1 MiB blocks failed:" >&2
        cat err.txt >&2
        exit 1
    }
    got=$(awk '/^[0-9]+$/ { s += $1 } END { printf "%.0f\n", s }' out.txt)
    ((got == SIZE)) || { echo "curl got $got bytes in 1 MiB blocks, expected $SIZE" >&2; exit 1; }
    read -r LAST_USR LAST_SYS < <(tail -n 1 time.txt)
    keep seq:curl-blocks
    progress curl-blocks "$run" "$(printf '%.3f s' "$LAST")"
    for c in "${CONTENDERS[@]}"; do
        [[ -z "${FAILED[seq:$c]:-}" ]] || continue
        drop_caches
        mount_fs "$c"
        # into /dev/null, as curl's: measure's out.txt is a file on disk, and writing a GiB
        # there (page cache and writeback) doubled every mount's time
        # shellcheck disable=SC2016 # expanded by the inner sh
        if ! measure sh -c 'exec cat "$1" >/dev/null' _ "$MNTP/$KEY"; then
            [[ $c == s3torrentfs ]] && fail_ours "cat of $KEY failed: $(cat err.txt)"
            peer_failed seq:"$c" "$c"
            continue
        fi
        keep seq:"$c"
        progress "$c" "$run" "$(printf '%.3f s' "$LAST")"
        unmount_fs
    done
done
echo "  checking s3torrentfs's bytes (sha256sum on a fresh mount, untimed) ..."
mount_fs s3torrentfs
measure sha256sum "$MNTP/$KEY" || fail_ours "sha256sum of $KEY failed: $(cat err.txt)"
got=$(cut -d' ' -f1 out.txt)
[[ "$got" == "$SHA_EXPECTED" ]] || fail_ours "WRONG DATA: sha256 of $KEY is $got, expected $SHA_EXPECTED"
unmount_fs
echo "  sha256 matches"

#
# 2. Random 16 KiB reads shaped like a BitTorrent client's: pieces of 1 MiB at random, each read
#    block by block in a shuffled order; the same plan (seed) for every contender.
#
PHASE=random
RANDOM_READS='
import hashlib, os, random, sys, time
path, size, piece, block, npieces, seed = sys.argv[1], *map(int, sys.argv[2:])
rng = random.Random(seed)
plan = []
for p in rng.sample(range(size // piece), min(npieces, size // piece)):
    blocks = list(range(piece // block))
    rng.shuffle(blocks)
    plan += [p * piece + b * block for b in blocks]
got = []
t0 = time.monotonic()
fd = os.open(path, os.O_RDONLY)
for off in plan:
    got.append(os.pread(fd, block, off))
t1 = time.monotonic()
os.close(fd)
short = sum(len(g) != block for g in got)
digest = hashlib.sha256(b"".join(got)).hexdigest()
print(f"{t1 - t0:.6f} {len(plan)} {short} {digest}")
'
read -r _ NREADS _ DIGEST_EXPECTED < <(python3 -c "$RANDOM_READS" data.bin "$SIZE" "$PIECE" "$BLOCK" "$NPIECES" "$SEED")
declare -A WALL
echo
echo "2. $NREADS random reads of 16 KiB in $NPIECES pieces of 1 MiB (load average $(cut -d' ' -f1 /proc/loadavg)) ..."
for run in $(seq "$RUNS"); do
    for c in "${CONTENDERS[@]}"; do
        [[ -z "${FAILED[random:$c]:-}" ]] || continue
        drop_caches
        mount_fs "$c"
        if ! measure python3 -c "$RANDOM_READS" "$MNTP/$KEY" "$SIZE" "$PIECE" "$BLOCK" "$NPIECES" "$SEED"; then
            [[ $c == s3torrentfs ]] && fail_ours "random reads failed: $(cat err.txt)"
            peer_failed random:"$c" "$c"
            continue
        fi
        read -r secs _ short digest <out.txt
        if [[ "$short" != 0 || "$digest" != "$DIGEST_EXPECTED" ]]; then
            [[ $c == s3torrentfs ]] && fail_ours "WRONG DATA in the random reads ($short short reads, sha256 $digest, expected $DIGEST_EXPECTED)"
            echo "  $c: wrong data in the random reads ($short short reads); left out" >&2
            FAILED[random:$c]=1
            unmount_fs
            continue
        fi
        wall=$LAST
        LAST=$secs # the reader's own time, without starting python
        if [[ -z "${SECS[random:$c]:-}" ]] || (($(calc "$LAST < ${SECS[random:$c]}"))); then
            WALL[$c]=$wall
        fi
        keep random:"$c"
        progress "$c" "$run" "$(printf '%.3f s' "$LAST")"
        unmount_fs
    done
done

# The tiny objects go up only now: RGW keeps working for a while after thousands of PUTs
# (its bucket index and logs), which took CPU from the sequential reads when they went first.
echo "uploading $NOBJ tiny objects under $PREFIX/ (aws s3 cp --recursive; this takes a while) ..."
mkdir "$PREFIX"
for ((i = 0; i < NOBJ; i++)); do
    printf -v f '%s/f%05d' "$PREFIX" "$i"
    echo "$i" >"$f"
done
t0=$EPOCHREALTIME
"$AWS" --endpoint-url "$URL" s3 cp --recursive --only-show-errors "$PREFIX" "s3://$BUCKET/$PREFIX/"
printf '  uploaded in %.0f s\n' "$(calc "$EPOCHREALTIME - $t0")"
rm -rf "$PREFIX"

bench_server_idle

#
# 3. ls -l of a directory of NOBJ objects: cold (fresh mount) for all; warm (same mount, within
#    the 60 s TTL) for s3torrentfs, right after its last cold listing.
#
PHASE=list
declare -A ENTRIES
WARM=()
echo
echo "3. ls -l of $PREFIX/ ($NOBJ objects; load average $(cut -d' ' -f1 /proc/loadavg)) ..."
for run in $(seq "$RUNS"); do
    for c in "${CONTENDERS[@]}"; do
        [[ -z "${FAILED[list:$c]:-}" ]] || continue
        drop_caches
        mount_fs "$c"
        if ! measure ls -l "$MNTP/$PREFIX"; then
            [[ $c == s3torrentfs ]] && fail_ours "ls -l failed: $(cat err.txt)"
            peer_failed list:"$c" "$c"
            continue
        fi
        ENTRIES[$c]=$(($(wc -l <out.txt) - 1)) # less the "total" line
        keep list:"$c"
        progress "$c" "$run" "$(printf '%.3f s, %d entries' "$LAST" "${ENTRIES[$c]}")"
        if [[ $c == s3torrentfs ]]; then
            ((${ENTRIES[$c]} == 2 * NOBJ)) ||
                fail_ours "WRONG LISTING: ${ENTRIES[$c]} entries, expected $((2 * NOBJ)) (objects and their .torrent)"
            if ((run == RUNS)); then
                for _ in 1 2 3 4 5; do
                    measure ls -l "$MNTP/$PREFIX" || fail_ours "warm ls -l failed: $(cat err.txt)"
                    WARM+=("$LAST")
                done
                SECS[list-warm]=$(printf '%s\n' "${WARM[@]}" | median)
                progress "$c" "$run" "warm: $(printf '%.1f ms ' "${WARM[@]/%/e3}")"
            fi
        fi
        unmount_fs
    done
done
# The floor of a warm listing: ls -l of as many empty files on a tmpfs, median of 5.
mount -t tmpfs -o size=64m,mode=0755 s3t-fsbench-floor mnt-floor
for ((i = 0; i < 2 * NOBJ; i++)); do : >"mnt-floor/f$i"; done
FLOOR=()
for _ in 1 2 3 4 5; do
    measure ls -l mnt-floor || { echo "ls -l of the tmpfs failed:" >&2; cat err.txt >&2; exit 1; }
    FLOOR+=("$LAST")
done
umount mnt-floor
SECS[list-floor]=$(printf '%s\n' "${FLOOR[@]}" | median)
printf '  the floor, ls -l of %d empty files on a tmpfs: median %.1f ms\n' "$((2 * NOBJ))" \
    "$(calc "${SECS[list-floor]} * 1e3")"

#
# 4. First read of the big object's .torrent (fresh mount, empty torrent cache) against
#    `s3torrent create` of the same object.
#
PHASE=torrent
CREATE_RSS=0
echo
echo "4. first read of $KEY.torrent vs s3torrent create (load average $(cut -d' ' -f1 /proc/loadavg)) ..."
for run in $(seq "$RUNS"); do
    drop_caches
    # -o - and a redirection: `-o /dev/null --force` would rename a file over /dev/null.
    measure /usr/bin/time -f '%M %U %S' -o time.txt \
        "$S3TORRENT" create -o - --endpoint-url "$URL" "s3://$BUCKET/$KEY" || {
        echo "s3torrent create failed:" >&2
        cat err.txt >&2
        exit 1
    }
    cp out.txt create.torrent
    read -r rss LAST_USR LAST_SYS < <(tail -n 1 time.txt)
    if ((rss > CREATE_RSS)); then CREATE_RSS=$rss; fi
    keep create
    progress create "$run" "$(printf '%.3f s' "$LAST")"

    drop_caches
    mount_fs s3torrentfs "$WORK/tcache-$run/torrents.db"
    measure cat "$MNTP/$KEY.torrent" || fail_ours "first read of $KEY.torrent failed: $(cat err.txt)"
    cp out.txt fs.torrent
    keep torrent
    progress s3torrentfs "$run" "$(printf '%.3f s' "$LAST")"
    ((run == RUNS)) || unmount_fs # the last mount stays for the cached reads
done
info_hash() { "$S3TORRENT" show --json "$1" | sed -n 's/.*"info_hash":"\([0-9a-f]*\)".*/\1/p'; }
if cmp -s fs.torrent create.torrent; then
    TORRENT_CHECK="byte for byte the same as s3torrent create's"
else
    ours=$(info_hash fs.torrent)
    theirs=$(info_hash create.torrent)
    [[ -n "$ours" && "$ours" == "$theirs" ]] ||
        fail_ours "WRONG TORRENT: info-hash '$ours', s3torrent create's '$theirs'"
    TORRENT_CHECK="same info-hash as s3torrent create's ($ours), other bytes differ"
fi
echo "  the .torrent is $TORRENT_CHECK"

#
# 5. Cached reads of the .torrent: 20 on the mount that made it, then 20 after a remount (the
#    same torrent cache), each a `cat` timed alone; and a `cat` of a local file, for the floor.
#
# cat_times FILE: 20 wall times (seconds) of `cat FILE >/dev/null`, one a line.
cat_times() {
    local t0 t1
    for _ in $(seq 20); do
        t0=$EPOCHREALTIME
        cat "$1" >/dev/null
        t1=$EPOCHREALTIME
        calc "$t1 - $t0"
    done
}
echo
echo "5. cached reads of $KEY.torrent (load average $(cut -d' ' -f1 /proc/loadavg)) ..."
cat_times "$MNTP/$KEY.torrent" >cached1.txt
cmp -s "$MNTP/$KEY.torrent" fs.torrent || fail_ours "WRONG TORRENT: a cached read differs from the first"
unmount_fs
PHASE=cached
mount_fs s3torrentfs "$WORK/tcache-$RUNS/torrents.db"
cat_times "$MNTP/$KEY.torrent" >cached2.txt
cmp -s "$MNTP/$KEY.torrent" fs.torrent || fail_ours "WRONG TORRENT: after a remount it differs"
unmount_fs
cat_times fs.torrent >floor.txt
SECS[cached]=$(median <cached1.txt)
SECS[remount]=$(median <cached2.txt)
SECS[floor]=$(median <floor.txt)
REMOUNT_FIRST=$(head -n 1 cached2.txt)
printf '  median %.2f ms; after a remount: median %.2f ms (the first %.2f ms); local file %.2f ms\n' \
    "$(calc "${SECS[cached]} * 1e3")" "$(calc "${SECS[remount]} * 1e3")" \
    "$(calc "$REMOUNT_FIRST * 1e3")" "$(calc "${SECS[floor]} * 1e3")"

#
# Results.
#
PEAK=0
for p in seq random list torrent cached; do
    if ((${HWM[$p]:-0} > PEAK)); then PEAK=${HWM[$p]}; fi
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# t KEY [SCALE [FORMAT]]: KEY's time (times SCALE) in FORMAT, or "-" without one.
t() {
    # shellcheck disable=SC2059 # the format is the caller's
    if [[ -n "${SECS[$1]:-}" ]]; then printf "${3:-%.3f}" "$(calc "${SECS[$1]} * ${2:-1}")"; else echo -; fi
}
mbs() { if [[ -n "${SECS[$1]:-}" ]]; then printf '%.0f' "$(calc "$SIZE / ${SECS[$1]} / 1e6")"; else echo -; fi; }

echo
printf '%s MiB object and %s tiny objects on %s; %s cores;\n' \
    "$SIZE_MB" "$NOBJ" "$SERVER_DESC" "$NPROC"
printf 'load average %s at start, %s at the end; fastest of %s fresh-mount runs unless noted\n' \
    "$LOAD_START" "$LOAD_END" "$RUNS"
echo
printf '%-40s %12s %10s %10s %12s\n' measurement s3torrentfs s3fs rclone reference
printf '%-40s %12s %10s %10s %12s  %s\n' "1. sequential read, s" "$(t seq:s3torrentfs)" \
    "$(t seq:s3fs)" "$(t seq:rclone)" "$(t seq:curl)" "4 ranged curl GETs"
printf '%-40s %12s %10s %10s %12s  %s\n' "" "" "" "" "$(t seq:curl-blocks)" \
    "curl, 1 MiB GETs, 8 in flight"
printf '%-40s %12s %10s %10s %12s\n' "   MB/s" "$(mbs seq:s3torrentfs)" "$(mbs seq:s3fs)" \
    "$(mbs seq:rclone)" "$(mbs seq:curl)"
printf '%-40s %12s %10s %10s\n' "2. $NREADS random 16 KiB reads, s" "$(t random:s3torrentfs)" \
    "$(t random:s3fs)" "$(t random:rclone)"
printf '%-40s %12s %10s %10s\n' "3. ls -l, $NOBJ objects, cold, s" "$(t list:s3torrentfs)" \
    "$(t list:s3fs)" "$(t list:rclone)"
printf '%-40s %12s %10s %10s\n' "   entries listed" "${ENTRIES[s3torrentfs]:--}" \
    "${ENTRIES[s3fs]:--}" "${ENTRIES[rclone]:--}"
printf '%-40s %12s %10s %10s %12s  %s\n' "   ls -l warm, median of 5, ms" "$(t list-warm 1e3 %.1f)" - - \
    "$(t list-floor 1e3 %.1f)" "ls -l of $((2 * NOBJ)) files on a tmpfs"
printf '%-40s %12s %10s %10s %12s  %s\n' "4. first read of the .torrent, s" "$(t torrent)" - - \
    "$(t create)" "s3torrent create"
printf '%-40s %12s %10s %10s %12s  %s\n' "5. cached .torrent, median of 20, ms" \
    "$(t cached 1e3 %.2f)" - - "$(t floor 1e3 %.2f)" "cat of a local file"
printf '%-40s %12s\n' "   after a remount, median of 20, ms" "$(t remount 1e3 %.2f)"
printf '%-40s %12.2f\n' "   after a remount, first read, ms" "$(calc "$REMOUNT_FIRST * 1e3")"
printf '%-40s %12.1f %10s %10s %12.1f  %s\n' "6. s3torrentfs peak RSS (VmHWM), MiB" \
    "$(calc "$PEAK / 1024")" - - "$(calc "$CREATE_RSS / 1024")" "s3torrent create"
printf '%-40s' "   per phase, MiB"
for p in seq random list torrent cached; do printf ' %s %.1f' "$p" "$(calc "${HWM[$p]:-0} / 1024")"; done
echo

# ratio A B: SECS[A] / SECS[B], or "-" if either is missing.
ratio() {
    if [[ -n "${SECS[$1]:-}" && -n "${SECS[$2]:-}" ]]; then calc "${SECS[$1]} / ${SECS[$2]}"; else echo -; fi
}
ratio2() { # ratio2 A B: the ratio with 2 decimals
    local r
    r=$(ratio "$1" "$2")
    if [[ "$r" == - ]]; then echo -; else printf '%.2f' "$r"; fi
}
# cpu KEY: KEY's CPU seconds (user + system) of the fastest run, or "-".
cpu() { if [[ -n "${SECS[$1]:-}" ]]; then calc "${USR[$1]} + ${SYS[$1]}"; else echo -; fi; }
# per KEY A B: A over B of KEY's, or "-".
per() { if [[ "$1" != - && "$2" != - ]]; then printf '%.2f' "$(calc "$1 / $2")"; else echo -; fi; }
echo
echo "1. the sequential read, side by side (the fastest run of each): wall time, and CPU seconds of"
echo "   the reading side: the mount's daemon, or curl's processes; ratios against the 4 curl GETs"
printf '   %-40s %8s %8s %10s %10s\n' reader 'wall s' 'CPU s' 'wall/curl' 'CPU/curl'
for k in seq:curl seq:curl-blocks seq:s3torrentfs seq:s3fs seq:rclone; do
    [[ -n "${SECS[$k]:-}" ]] || continue
    case $k in
    seq:curl) what="curl, 4 ranged GETs" ;;
    seq:curl-blocks) what="curl, 1 MiB GETs, 8 in flight" ;;
    *) what="${k#seq:} (cat of the mounted file)" ;;
    esac
    printf '   %-40s %8.3f %8.2f %10s %10s\n' "$what" "${SECS[$k]}" "$(cpu "$k")" \
        "$(ratio2 "$k" seq:curl)" "$(per "$(cpu "$k")" "$(cpu seq:curl)")"
done
# The documented budget (docs/DESIGN.md §16): block_cache (default 64 MiB) + 2 blocks of 1 MiB
# for each of libfuse's 10 worker threads + 64 MiB for the rest.
BUDGET_MB=$((64 + 2 * 10 + 64))
printf '   s3torrentfs peak RSS while reading: %.1f MiB; the documented budget %d MiB\n' \
    "$(calc "${HWM[seq]:-0} / 1024")" "$BUDGET_MB"

echo
echo "where the time went (the fastest run of each): CPU seconds of the contender's process during"
echo "the run, of $SERVER_NAME, and $SERVER_NAME's requests"
printf '%-28s %8s %8s %10s  %s\n' run 'user s' 'sys s' "$SERVER_NAME s" requests
for k in seq:curl seq:curl-blocks seq:s3torrentfs seq:s3fs seq:rclone random:s3torrentfs random:s3fs \
    random:rclone list:s3torrentfs list:s3fs list:rclone create torrent; do
    [[ -n "${SECS[$k]:-}" ]] || continue
    printf '%-28s %8.2f %8.2f %10.2f  %s\n' "$k" "${USR[$k]}" "${SYS[$k]}" "${SRV[$k]}" "${REQ[$k]}"
done
if [[ $SERVER == rgw ]]; then
    echo "(MiB sent: the bytes of the object GETs' bodies RGW logged as sent."
else
    echo "(MiB asked: the Content-Length of the object GETs; a reader that hangs up early gets less."
fi
echo " seq:curl*'s CPU is curl's own and create's the tool's, by GNU time; random:*'s wall"
printf ' time with starting python3:'
for c in "${CONTENDERS[@]}"; do
    [[ -n "${WALL[$c]:-}" ]] && printf ' %s %.3f s' "$c" "${WALL[$c]}"
done
echo ")"

echo
echo "targets"
# target LABEL VALUE OP LIMIT [UNIT]: one line with PASS or MISS (or n/a without a value).
target() {
    local res=n/a
    if [[ -n "$2" && "$2" != - ]]; then
        if (($(calc "$2 $3 $4"))); then res=PASS; else res=MISS; fi
        printf '  %-48s %9.2f %s %-7s %-4s %s\n' "$1" "$2" "$3" "$4" "${5:-}" "$res"
    else
        printf '  %-48s %9s %s %-7s %-4s %s\n' "$1" - "$3" "$4" "${5:-}" "$res"
    fi
}
target "1. s3fs / s3torrentfs, sequential" "$(ratio seq:s3fs seq:s3torrentfs)" '>=' 2
target "1. rclone / s3torrentfs, sequential" "$(ratio seq:rclone seq:s3torrentfs)" '>=' 2
target "1. s3torrentfs / 4 ranged curl GETs" "$(ratio seq:s3torrentfs seq:curl)" '<=' 1.5
echo "     (CPU seconds, s3torrentfs's daemon / curl's: $(per "$(cpu seq:s3torrentfs)" "$(cpu seq:curl)"), for information)"
echo "     (s3torrentfs / curl's 1 MiB GETs, 8 in flight: $(ratio2 seq:s3torrentfs seq:curl-blocks), for information)"
target "2. s3fs / s3torrentfs, random reads" "$(ratio random:s3fs random:s3torrentfs)" '>=' 2
echo "     (rclone / s3torrentfs, random reads: $(ratio2 random:rclone random:s3torrentfs), for information)"
target "3. s3torrentfs / s3fs, cold ls -l" "$(ratio list:s3torrentfs list:s3fs)" '<=' 1
echo "     (s3torrentfs / rclone, cold ls -l: $(ratio2 list:s3torrentfs list:rclone), for information)"
target "3. s3torrentfs warm ls -l, median" "$(t list-warm 1e3 %.3f)" '<' 50 ms
echo "     (s3torrentfs warm / tmpfs floor: $(ratio2 list-warm list-floor), for information)"
target "4. first .torrent read / s3torrent create" "$(ratio torrent create)" '<=' 1.2
target "5. cached .torrent read, median" "$(t cached 1e3 %.4f)" '<' 5 ms
target "5. cached .torrent read after a remount, median" "$(t remount 1e3 %.4f)" '<' 5 ms
target "6. s3torrentfs peak RSS, within the budget" "$(calc "$PEAK / 1024")" '<=' "$BUDGET_MB" MiB
