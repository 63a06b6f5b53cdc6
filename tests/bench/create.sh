#!/usr/bin/env bash
# Benchmark of `s3torrent create` against mktorrent, transmission-create and libtorrent
# on one page-cached file, and against mktorrent and libtorrent on a page-cached directory of
# many files (issue 16's session case), measured against this machine's SHA-1/SHA-256 limits
# (openssl speed).
#
# Usage: tests/bench/create.sh
#   BENCH_CASES    which cases: "file", "dir" or "file dir" (default)
#   BENCH_SIZE_MB  size of the test file in MiB (default 2048)
#   BENCH_DIR_MB   bytes of the directory in MiB (default 4096)
#   BENCH_DIR_FILES
#                  files in the directory (default 1000): sizes from 1 KiB to 64 MiB (or an
#                  eighth of BENCH_DIR_MB, if less), spread nearly log-uniformly, the same tree
#                  every run, in nested folders
#   BENCH_ROUNDS   rounds (default 5): each runs every tool once, and each ratio is the median
#                  of the rounds' ratios (paired runs)
#   BENCH_DIR      where to make the temporary work dir (default $TMPDIR or /tmp)
#   S3TORRENT      s3torrent binary to use (default: Release build in $BUILD_DIR)
#   BUILD_DIR      build dir, relative to the repo root (default build-bench)
# Needs: cmake, openssl, mktorrent, transmission-cli, python3-libtorrent, GNU time.
set -euo pipefail

source "$(dirname "$0")/common.sh"
bench_init S3TORRENT

CASES=${BENCH_CASES:-file dir}
SIZE_MB=${BENCH_SIZE_MB:-2048}
SIZE=$((SIZE_MB * 1048576))
DIR_MB=${BENCH_DIR_MB:-4096}
DIR_FILES=${BENCH_DIR_FILES:-1000}
PIECE=1048576

bench_need openssl mktorrent transmission-create /usr/bin/time "$PY"
"$PY" -c 'import libtorrent' || { echo "missing: python3-libtorrent" >&2; exit 1; }
bench_load
bench_build S3TORRENT=tools/s3torrent

bench_work s3t-bench
trap 'rm -rf "$WORK"' EXIT

# random_bytes N: N pseudo-random bytes on stdout (AES-CTR of zeros: the same every run)
random_bytes() {
    head -c "$1" /dev/zero |
        openssl enc -aes-128-ctr -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000
}

# sha_rate ALG: bytes/s of ALG over 1 MiB buffers on all cores, from openssl speed (2 s).
# The last line looks like "sha1   3186622.46k" (1000s of bytes per second).
sha_rate() {
    local kb
    kb=$(openssl speed -evp "$1" -multi "$NPROC" -bytes 1048576 -seconds 2 2>/dev/null |
        awk 'tolower($1) ~ /^(evp|sha)/ && $NF ~ /^[0-9.]+k$/ { v = $NF } END { sub(/k$/, "", v); print v }')
    [[ -n "$kb" ]] || { echo "cannot parse openssl speed output for $1" >&2; exit 1; }
    calc "$kb * 1000"
}

ROUNDS=${BENCH_ROUNDS:-5}
declare -A TIMES CPUS RSS
# run NAME OUT CMD...: one timed run of CMD (OUT removed first). Appends its wall seconds to
# TIMES[NAME] and its CPU seconds (user + system) to CPUS[NAME], one word a round, and keeps the
# largest peak RSS (KiB) in RSS[NAME]. Every round runs every tool once, one after the other, so
# a ratio is taken within a round (paired) and the table gives the median over the rounds.
run() {
    local name=$1 out=$2 wall rss u sy
    shift 2
    rm -f "$out"
    bench_timed "$name" "$@"
    read -r wall rss u sy <<<"$TIMED"
    TIMES[$name]+="$wall "
    CPUS[$name]+="$(calc "$u + $sy") "
    if ((rss > ${RSS[$name]:-0})); then RSS[$name]=$rss; fi
}

median() { # median WORD...: the median of numbers
    printf '%s\n' "$@" | sort -g |
        awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# pratio A B: the median over the rounds of A's time / B's time in the same round
pratio() {
    local -a a b q=()
    read -ra a <<<"${TIMES[$1]}"
    read -ra b <<<"${TIMES[$2]}"
    for i in "${!a[@]}"; do q+=("$(calc "${a[$i]} / ${b[$i]}")"); done
    printf '%.2f' "$(median "${q[@]}")"
}

# rounds: the ratios of one round each, for the record
rounds() { # rounds LABEL A B
    local -a a b
    read -ra a <<<"${TIMES[$2]}"
    read -ra b <<<"${TIMES[$3]}"
    printf '  %-34s' "$1"
    for i in "${!a[@]}"; do printf ' %.2f' "$(calc "${a[$i]} / ${b[$i]}")"; done
    echo
}

info_hash() { # info_hash KEY FILE: a hash from `s3torrent show --json`
    "$S3TORRENT" show --json "$2" | sed -n "s/.*\"$1\":\"\([0-9a-f]*\)\".*/\1/p"
}

LT_CREATE='
import os, sys, libtorrent as lt
path, piece, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fs = lt.file_storage()
lt.add_files(fs, path)
ct = lt.create_torrent(fs, piece)  # libtorrent 2.0 default: hybrid (v1 + v2)
lt.set_piece_hashes(ct, os.path.dirname(path))
with open(out, "wb") as f:
    f.write(lt.bencode(ct.generate()))
'

load=$(cut -d' ' -f1 /proc/loadavg)
if (($(calc "$load > 0.5"))); then
    echo "warning: load average is $load; other processes may skew the timings" >&2
fi

# limits BYTES: appends this round's SHA-1 and SHA-1+SHA-256 times of BYTES on every core
# (openssl speed, measured again each round, so a limit and the tools share the machine's state)
limits() {
    local r1 r256
    r1=$(sha_rate sha1)
    r256=$(sha_rate sha256)
    TIMES[sha1-limit]+="$(calc "$1 / $r1") "
    TIMES[hybrid-limit]+="$(calc "$1 / $r1 + $1 / $r256") "
    SHA_RATES+=" $r1/$r256"
}

row() { # row NAME LIMIT: median wall seconds, MB/s, the paired ratio to LIMIT, RSS, CPU
    local -a t c=()
    read -ra t <<<"${TIMES[$1]}"
    local s rss=- cpu=-
    s=$(median "${t[@]}")
    [[ -n "${RSS[$1]:-}" ]] && rss=$(printf '%.1f' "$(calc "${RSS[$1]} / 1024")")
    if [[ -n "${CPUS[$1]:-}" ]]; then
        read -ra c <<<"${CPUS[$1]}"
        cpu=$(printf '%.3f' "$(median "${c[@]}")")
    fi
    printf '%-22s %9.3f %9.0f %9s %12s %9s\n' "$1" "$s" "$(calc "$SIZE / $s / 1e6")" \
        "$(pratio "$1" "$2")" "$rss" "$cpu"
}
header() {
    printf '%-22s %9s %9s %9s %12s %9s\n' tool 'median s' MB/s 'x limit' 'peak RSS MiB' 'median CPU s'
}

file_case() {
    echo "making a $SIZE_MB MiB file of pseudo-random data in $WORK ..."
    random_bytes "$SIZE" >data.bin
    cat data.bin >/dev/null # into the page cache
    TIMES=() CPUS=() RSS=() SHA_RATES=""
    echo "timing ($ROUNDS rounds, each tool once a round) ..."
    for ((i = 1; i <= ROUNDS; i++)); do
        limits "$SIZE"
        # the cost of reading the page-cached file at all, with no hashing: what no tool avoids
        run read-only-dd none dd if=data.bin of=/dev/null bs=1M status=none
        run s3torrent-v1 out.torrent \
            "$S3TORRENT" create --no-date --piece-length 1M -o out.torrent --force data.bin
        run mktorrent mk.torrent mktorrent -t "$NPROC" -l 20 -o mk.torrent data.bin
        run transmission-create tc.torrent transmission-create -s 1024 -o tc.torrent data.bin
        run s3torrent-hybrid hy.torrent "$S3TORRENT" create --no-date --piece-length 1M \
            --meta-version hybrid -o hy.torrent --force data.bin
        run libtorrent-hybrid lt.torrent "$PY" -c "$LT_CREATE" "$WORK/data.bin" "$PIECE" lt.torrent
    done

    echo
    printf '%s MiB file, piece length 1 MiB, %s cores; SHA-1/SHA-256 bytes/s each round (openssl speed):%s\n' \
        "$SIZE_MB" "$NPROC" "$SHA_RATES"
    echo
    header
    row read-only-dd sha1-limit
    row sha1-limit sha1-limit
    row s3torrent-v1 sha1-limit
    row mktorrent sha1-limit
    row transmission-create sha1-limit
    row hybrid-limit hybrid-limit
    row s3torrent-hybrid hybrid-limit
    row libtorrent-hybrid hybrid-limit
    echo
    echo "each round's ratio:"
    rounds "s3torrent-v1 / mktorrent" s3torrent-v1 mktorrent
    rounds "s3torrent-v1 / sha1-limit" s3torrent-v1 sha1-limit
    rounds "s3torrent-hybrid / hybrid-limit" s3torrent-hybrid hybrid-limit
    echo
    echo "medians of the $ROUNDS paired rounds:"
    echo "v1: s3torrent / mktorrent = $(pratio s3torrent-v1 mktorrent) (target <= 0.95)"
    echo "v1: s3torrent / sha1-limit = $(pratio s3torrent-v1 sha1-limit) (target <= 1.20)"
    echo "hybrid: s3torrent / (sha1+sha256 limit) = $(pratio s3torrent-hybrid hybrid-limit) (target <= 1.10)"
    echo "transmission-create / s3torrent = $(pratio transmission-create s3torrent-v1)"
    echo "libtorrent / s3torrent hybrid = $(pratio libtorrent-hybrid s3torrent-hybrid) (target >= 1.9)"
    printf 'peak RSS of s3torrent = %.1f MiB (target < 64)\n' \
        "$(calc "(${RSS[s3torrent-v1]} > ${RSS[s3torrent-hybrid]} ? ${RSS[s3torrent-v1]} : ${RSS[s3torrent-hybrid]}) / 1024")"
    echo

    # Informational: libtorrent's hybrid torrent of the same file should have the same info-hashes.
    if [[ "$(info_hash info_hash hy.torrent) $(info_hash info_hash_v2 hy.torrent)" == \
        "$(info_hash info_hash lt.torrent) $(info_hash info_hash_v2 lt.torrent)" ]]; then
        echo "hybrid info-hashes, s3torrent vs libtorrent: same"
    else
        echo "hybrid info-hashes, s3torrent vs libtorrent: differ (informational)"
    fi

    ours=$(info_hash info_hash out.torrent)
    theirs=$(info_hash info_hash mk.torrent)
    if [[ -n "$ours" && "$ours" == "$theirs" ]]; then
        echo "v1 info-hash, s3torrent vs mktorrent: MATCH ($ours)"
    else
        echo "v1 info-hash, s3torrent vs mktorrent: MISMATCH (s3torrent '$ours', mktorrent '$theirs')"
        exit 1
    fi
    rm -f data.bin
}

# The directory: DIR_FILES files whose sizes spread (nearly) log-uniformly from 1 KiB to 64 MiB,
# DIR_MB MiB in all, in a fixed order, in folders two deep; the bytes are one pseudo-random
# stream cut into files, so no two files are alike.
make_tree() {
    random_bytes "$((DIR_MB * 1048576))" | "$PY" -c '
import math, os, random, sys
files, total = int(sys.argv[1]), int(sys.argv[2]) * 1048576
lo, hi = 1024, min(64 << 20, total // 8)  # a smaller tree (BENCH_DIR_MB) has smaller files
# quantile q of the spread: lo * (hi/lo)^(q^p), q evenly spaced over [0, 1] (so the smallest
# file is 1 KiB and the largest 64 MiB), p = 1 being log-uniform; p is the one that makes the
# total (1,000 log-uniform files would hold 6 GiB, so p is a little over 1 for 4 GiB)
def spread(p):
    return [int(lo * (hi / lo) ** ((i / (files - 1)) ** p)) for i in range(files)]
p_lo, p_hi = 0.05, 20.0
for _ in range(100):
    p = (p_lo + p_hi) / 2
    if sum(spread(p)) > total:
        p_lo = p
    else:
        p_hi = p
sizes = spread(p_hi)
sizes[files // 2] += total - sum(sizes)  # the rounding, on a middle-sized file
random.Random(16).shuffle(sizes)  # the same order every run
src = sys.stdin.buffer
for i, n in enumerate(sizes):
    d = os.path.join("session", f"cam {i % 7}", f"take-{i % 13:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"clip {i:04d}.bin"), "wb") as f:
        while n:
            b = src.read(min(n, 1 << 20))
            f.write(b)
            n -= len(b)
print(f"{files} files, {min(sizes)} to {max(sizes)} bytes, {sum(sizes)} in all "
      f"(log-uniform spread to the power {p_hi:.3f})")
' "$DIR_FILES" "$DIR_MB"
}

dir_case() {
    local bytes=$((DIR_MB * 1048576))
    echo "making a directory of $DIR_FILES files, $DIR_MB MiB, in $WORK ..."
    make_tree
    find session -type f -exec cat {} + >/dev/null # into the page cache
    TIMES=() CPUS=() RSS=() SHA_RATES=""
    echo "timing ($ROUNDS rounds, each tool once a round) ..."
    for ((i = 1; i <= ROUNDS; i++)); do
        limits "$bytes"
        run read-only-cat none sh -c 'find session -type f -exec cat {} + >/dev/null'
        run s3torrent-v1 dv1.torrent \
            "$S3TORRENT" create --no-date --piece-length 1M -o dv1.torrent --force session
        run mktorrent dmk.torrent mktorrent -t "$NPROC" -l 20 -o dmk.torrent session
        run s3torrent-hybrid dhy.torrent "$S3TORRENT" create --no-date --piece-length 1M \
            --meta-version hybrid -o dhy.torrent --force session
        run libtorrent-hybrid dlt.torrent "$PY" -c "$LT_CREATE" "$WORK/session" "$PIECE" dlt.torrent
    done

    echo
    printf '%s files, %s MiB in all (1 KiB to 64 MiB, nearly log-uniform), piece length 1 MiB, %s cores\n' \
        "$DIR_FILES" "$DIR_MB" "$NPROC"
    echo
    local SIZE=$bytes # for row
    header
    row read-only-cat sha1-limit
    row sha1-limit sha1-limit
    row s3torrent-v1 sha1-limit
    row mktorrent sha1-limit
    row hybrid-limit hybrid-limit
    row s3torrent-hybrid hybrid-limit
    row libtorrent-hybrid hybrid-limit
    echo
    echo "medians of the $ROUNDS paired rounds:"
    echo "directory v1: s3torrent / sha1-limit = $(pratio s3torrent-v1 sha1-limit) (target <= 1.15)"
    echo "directory v1: s3torrent / mktorrent = $(pratio s3torrent-v1 mktorrent) (target <= 1)"
    echo "directory hybrid: s3torrent / (sha1+sha256 limit) = $(pratio s3torrent-hybrid hybrid-limit) (target <= 1.15)"
    echo "directory hybrid: libtorrent / s3torrent = $(pratio libtorrent-hybrid s3torrent-hybrid)"
    if [[ "$(info_hash info_hash dhy.torrent) $(info_hash info_hash_v2 dhy.torrent)" == \
        "$(info_hash info_hash dlt.torrent) $(info_hash info_hash_v2 dlt.torrent)" ]]; then
        echo "directory hybrid info-hashes, s3torrent vs libtorrent: same"
    else
        echo "directory hybrid info-hashes, s3torrent vs libtorrent: differ (informational)"
    fi
    local ours theirs
    ours=$(info_hash info_hash dv1.torrent)
    theirs=$(info_hash info_hash dmk.torrent)
    if [[ -n "$ours" && "$ours" == "$theirs" ]]; then
        echo "directory v1 info-hash, s3torrent vs mktorrent: MATCH ($ours)"
    else
        echo "directory v1 info-hash, s3torrent vs mktorrent: MISMATCH (s3torrent '$ours', mktorrent '$theirs')"
        exit 1
    fi
    rm -rf session
}

for c in $CASES; do
    case $c in
    file) file_case ;;
    dir) dir_case ;;
    *) echo "BENCH_CASES: unknown case '$c' (file, dir)" >&2; exit 2 ;;
    esac
done
