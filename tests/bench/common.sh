# common.sh — what the benchmark scripts share; sourced by tests/bench/*.sh, not run.
# Before sourcing, a script may set binaries (S3TORRENT, S3TORRENTFS) relative to where it was
# started: bench_init makes them absolute before it moves to the repository root.
#
# bench_init VAR...      absolute paths for the binaries named, then cd to the repository root;
#                        sets ROOT, NPROC, CLK_TCK, AWS, S3RVER, DYNALITE, PY
#                        and stops (bench_sink) when /dev/null is not the null device
# bench_need CMD...      exits with "missing: CMD" unless every CMD is runnable
# calc EXPR              floating-point arithmetic with awk
# bench_load             prints the load average (LOAD_START) and warns when it is high
# bench_build VAR=PATH.. builds the Release tree in $BUILD_DIR (default build-bench) unless every
#                        VAR is already set, then sets the unset ones to $BUILD_DIR/PATH
# bench_aws_env          only the local servers' credentials: no profile or config of this machine
# bench_work NAME        makes and enters WORK (under $BENCH_DIR, $TMPDIR or /tmp); the script's
#                        own EXIT trap removes it
# bench_wait_log PID FILE SED
#                        up to 30 s for PID to print a line in FILE that SED turns into its
#                        port; prints the port, or nothing if it exited first or never did
# bench_ticks PID        CPU time (user + system, in clock ticks) PID has used so far
# bench_s3rver BUCKET [ARG...]
#                        starts s3rver on a free loopback port with its store in $WORK/s3rver
#                        and its log in s3rver.log; sets S3PID, PORT and URL, or exits
# bench_rgw BUCKET BYTES starts Ceph RGW (contrib/dev/rgw.sh) in $WORK/rgw, its memstore sized for
#                        BYTES of objects (unless RGW_MEMSTORE_BYTES is set), and makes BUCKET;
#                        sets RGW_DIR and URL, or exits
#
# The server: BENCH_SERVER=s3rver|rgw|both (default both)
# bench_servers          with both, runs the script again for each server in turn (BENCH_SERVER
#                        set, the binaries bench_build set passed on) and exits as the first that
#                        failed; else sets SERVER, SERVER_NAME and SERVER_DESC (for the tables) and
#                        SERVER_MB (the default object size: RGW keeps its objects in RAM)
# bench_server BUCKET BYTES [ARG...]
#                        starts SERVER with BUCKET (bench_s3rver with the ARGs, or bench_rgw); sets
#                        URL, SERVER_LOG (its log, a line a request) and SERVER_PIDS (whose CPU is
#                        the server's: s3rver's node; radosgw and ceph-osd)
# bench_server_stop      stops it (for the EXIT trap; nothing without one)
# bench_server_ticks     CPU ticks (user + system) the server's processes have used so far
# bench_obj_url BUCKET KEY
#                        a URL that any GET of the object may use: path style on s3rver, which
#                        serves anonymous GETs; presigned (7 days) on RGW, which does not
# bench_warm_store       reads the big objects of s3rver's store into the page cache, so every
#                        contender is served from memory the same way (RGW's memstore is RAM)

bench_init() {
    local v
    for v in "$@"; do
        if [[ -n "${!v:-}" ]]; then printf -v "$v" '%s' "$(realpath "${!v}")"; fi
    done
    BENCH_SCRIPT=$(realpath "$0")
    cd "$(dirname "${BASH_SOURCE[0]}")/../.."
    ROOT=$(pwd)
    export LC_ALL=C # a '.' in $EPOCHREALTIME and in awk's numbers
    NPROC=$(nproc)
    CLK_TCK=$(getconf CLK_TCK)
    AWS=/usr/bin/aws # Debian's awscli; another `aws` earlier on PATH may be another major version
    PY=/usr/bin/python3 # Debian's python3-libtorrent is only importable by the system python
    S3RVER=$ROOT/node_modules/.bin/s3rver
    DYNALITE=$ROOT/node_modules/.bin/dynalite
    bench_sink
}

# bench_sink: every baseline writes what it reads to /dev/null (curl -o, dd of=, cat >). Once it
# was a regular file on /dev's tmpfs (something had replaced the device), and each of those
# writes went to memory: curl, dd and every mount's cat paid for a copy into tmpfs and its page
# allocations, and the ratios between them meant nothing. Refuse to time anything then.
bench_sink() {
    [[ -c /dev/null ]] && return 0
    echo "/dev/null is not the null device ($(stat -c %F /dev/null)): every write to it would be" \
        "timed as a copy to memory; as root: rm /dev/null && mknod -m 666 /dev/null c 1 3" >&2
    exit 1
}

bench_need() {
    local cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null || { echo "missing: $cmd" >&2; exit 1; }
    done
}

calc() { awk "BEGIN { print ($1) }"; }

bench_load() {
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    echo "load average at start: $LOAD_START ($NPROC cores)"
    if (($(calc "${LOAD_START%% *} > 0.5"))); then
        echo "warning: load average is ${LOAD_START%% *}; other processes may skew the timings" >&2
    fi
}

bench_build() {
    local pair name missing=()
    for pair in "$@"; do
        name=${pair%%=*}
        [[ -n "${!name:-}" ]] || missing+=("$pair")
    done
    ((${#missing[@]})) || return 0
    BUILD_DIR=${BUILD_DIR:-build-bench}
    echo "building (Release) in $BUILD_DIR ..."
    cmake -S "$ROOT" -B "$ROOT/$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DS3T_TESTS=OFF >/dev/null
    cmake --build "$ROOT/$BUILD_DIR" -j"$NPROC" >/dev/null
    for pair in "${missing[@]}"; do
        printf -v "${pair%%=*}" '%s' "$(realpath "$ROOT/$BUILD_DIR/${pair#*=}")"
        export "${pair%%=*}" # for bench_servers' runs
    done
}

bench_aws_env() {
    unset "${!AWS_@}"
    export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 \
        AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
}

bench_work() {
    WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/$1.XXXXXX")
    cd "$WORK"
    export AWS_CONFIG_FILE=$WORK/no-aws-config AWS_SHARED_CREDENTIALS_FILE=$WORK/no-aws-credentials
}

bench_wait_log() {
    local port=""
    for _ in $(seq 300); do
        [[ -f "$2" ]] && port=$(sed -n "$3" "$2")
        [[ -n "$port" ]] && break
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    echo "$port"
}

bench_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

bench_s3rver() {
    local bucket=$1
    shift
    mkdir -p "$WORK/s3rver"
    # s3rver makes continuation tokens with a cipher OpenSSL 3 keeps in its legacy provider
    NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$WORK/s3rver" -a 127.0.0.1 -p 0 \
        --configure-bucket "$bucket" "$@" >"$WORK/s3rver.log" 2>&1 &
    S3PID=$!
    PORT=$(bench_wait_log "$S3PID" "$WORK/s3rver.log" \
        's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p')
    if [[ -z "$PORT" ]]; then
        echo "s3rver did not start:" >&2
        cat "$WORK/s3rver.log" >&2
        exit 1
    fi
    URL=http://127.0.0.1:$PORT
}

bench_rgw() {
    local bucket=$1 bytes=$2 mem
    RGW_DIR=$WORK/rgw # set first: the EXIT trap stops what a failed start left
    # the objects twice over and 2 GiB more (4 GiB for 1 GiB), at least rgw.sh's 3 GiB
    mem=$((2 * bytes + 2147483648))
    ((mem >= 3221225472)) || mem=3221225472
    URL=$(RGW_MEMSTORE_BYTES=${RGW_MEMSTORE_BYTES:-$mem} "$ROOT/contrib/dev/rgw.sh" start "$RGW_DIR" |
        tail -n 1) || URL=""
    if [[ -z "$URL" ]]; then
        echo "RGW did not start (contrib/dev/rgw.sh start $RGW_DIR)" >&2
        exit 1
    fi
    "$AWS" --endpoint-url "$URL" s3 mb "s3://$bucket" >/dev/null
}

bench_servers() {
    SERVER=${BENCH_SERVER:-both}
    case $SERVER in
    s3rver)
        bench_need "$S3RVER"
        SERVER_NAME=s3rver SERVER_DESC="s3rver (loopback, page-cached)" SERVER_MB=2048
        ;;
    rgw)
        bench_need ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph
        SERVER_NAME=RGW SERVER_MB=1024
        SERVER_DESC="Ceph RGW (loopback, memstore; its CPU: radosgw + ceph-osd)"
        ;;
    both)
        local s st rc=0
        for s in s3rver rgw; do
            printf '\n=== BENCH_SERVER=%s ===\n' "$s"
            st=0
            BENCH_SERVER=$s bash "$BENCH_SCRIPT" || st=$?
            ((rc)) || rc=$st
        done
        exit "$rc"
        ;;
    *)
        echo "BENCH_SERVER is s3rver, rgw or both, not '$SERVER'" >&2
        exit 2
        ;;
    esac
}

bench_server() {
    local bucket=$1 bytes=$2
    shift 2
    if [[ $SERVER == rgw ]]; then
        echo "starting RGW in $WORK/rgw (its log: rgw/log/client.rgw.log) ..."
        bench_rgw "$bucket" "$bytes"
        SERVER_LOG=$RGW_DIR/log/client.rgw.log
        SERVER_PIDS=("$(cat "$RGW_DIR/run/rgw.pid")" "$(cat "$RGW_DIR/run/osd.pid")")
    else
        echo "starting s3rver in $WORK/s3rver (its log: s3rver.log) ..."
        bench_s3rver "$bucket" "$@"
        SERVER_LOG=$WORK/s3rver.log
        SERVER_PIDS=("$S3PID")
    fi
}

bench_server_stop() {
    if [[ -n "${S3PID:-}" ]]; then
        kill "$S3PID" 2>/dev/null || true
        wait "$S3PID" 2>/dev/null || true
        S3PID=""
    fi
    if [[ -n "${RGW_DIR:-}" ]]; then
        # rgw.sh stop removes its directory, logs and all
        if [[ "${BENCH_KEEP:-0}" == 1 && -d "$RGW_DIR/log" ]]; then cp -r "$RGW_DIR/log" "$WORK/rgw-log"; fi
        "$ROOT/contrib/dev/rgw.sh" stop "$RGW_DIR" || true
        RGW_DIR=""
    fi
}

bench_server_ticks() {
    local p sum=0
    for p in "${SERVER_PIDS[@]}"; do sum=$((sum + $(bench_ticks "$p"))); done
    echo "$sum"
}

# bench_timed NAME CMD...: one run of CMD under GNU time, its output in log.txt (a failure
# prints it and stops the bench); TIMED = "WALL_S PEAK_RSS_KIB USER_S SYS_S".
bench_timed() {
    local name=$1 t0 t1 rss u s
    shift
    t0=$EPOCHREALTIME
    if ! /usr/bin/time -f '%M %U %S' -o rss.txt "$@" >log.txt 2>&1; then
        echo "$name failed:" >&2
        cat log.txt >&2
        exit 1
    fi
    t1=$EPOCHREALTIME
    read -r rss u s < <(tail -n 1 rss.txt)
    TIMED="$(calc "$t1 - $t0") $rss $u $s"
}

# bench_server_idle: waits until the server has used under 5% of a core for a whole second (at
# most 120 s), so no contender is timed while it still digests earlier uploads; says how long.
bench_server_idle() {
    local t0=$EPOCHREALTIME s0 s1 i
    for ((i = 0; i < 120; i++)); do
        s0=$(bench_server_ticks)
        sleep 1
        s1=$(bench_server_ticks)
        (((s1 - s0) * 20 < CLK_TCK)) && break
    done
    printf '  server idle after %.0f s (%s CPU-s in its last second)\n' \
        "$(calc "$EPOCHREALTIME - $t0")" "$(calc "($s1 - $s0) / $CLK_TCK")"
}

bench_obj_url() {
    if [[ $SERVER == rgw ]]; then
        "$AWS" --endpoint-url "$URL" s3 presign --expires-in 604800 "s3://$1/$2"
    else
        echo "$URL/$1/$2"
    fi
}

bench_warm_store() {
    if [[ $SERVER == s3rver ]]; then find "$WORK/s3rver" -type f -size +1M -exec cat {} + >/dev/null; fi
}
