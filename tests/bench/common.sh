# common.sh — what the benchmark scripts share; sourced by tests/bench/*.sh, not run.
# Before sourcing, a script may set binaries (S3TORRENT, S3TORRENTFS) relative to where it was
# started: bench_init makes them absolute before it moves to the repository root.
#
# bench_init VAR...      absolute paths for the binaries named, then cd to the repository root;
#                        sets ROOT, NPROC, CLK_TCK, AWS, S3RVER, DYNALITE, PY
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

bench_init() {
    local v
    for v in "$@"; do
        if [[ -n "${!v:-}" ]]; then printf -v "$v" '%s' "$(realpath "${!v}")"; fi
    done
    cd "$(dirname "${BASH_SOURCE[0]}")/../.."
    ROOT=$(pwd)
    export LC_ALL=C # a '.' in $EPOCHREALTIME and in awk's numbers
    NPROC=$(nproc)
    CLK_TCK=$(getconf CLK_TCK)
    AWS=/usr/bin/aws # Debian's awscli; another `aws` earlier on PATH may be another major version
    PY=/usr/bin/python3 # Debian's python3-libtorrent is only importable by the system python
    S3RVER=$ROOT/node_modules/.bin/s3rver
    DYNALITE=$ROOT/node_modules/.bin/dynalite
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
