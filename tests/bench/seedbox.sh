#!/usr/bin/env bash
# Benchmark of a seedbox: one host seeding an object of S3 from an s3torrentfs mount through
# qbittorrent-nox, to 8 python3-libtorrent clients that download it one after another (each a
# fresh session, qBittorrent its only peer, the SHA-256 checked). Two tables: the S3 bytes the
# mount fetched over the bytes qBittorrent uploaded, without and with a disk cache (target
# <= 1.1/8 with it), the mount daemon's peak RSS, wall and CPU seconds (part 1); then the time
# to the first seeded byte once 200 torrents are added in one `s3torrent seed`, with qBittorrent
# (skip_checking) and Deluge (seed mode), which seed without reading, and Transmission 3.00,
# which checks every byte first (part 2; the downloader dials Deluge from 127.0.0.2).
# The block cache is small (16M) so that memory cannot hold the object.
#
# Usage: tests/bench/seedbox.sh   (as root: it mounts a FUSE file system)
#   BENCH_SIZE_MB      size of the object in MiB (default 256)
#   BENCH_CLIENTS      downloading clients, one after another (default 8)
#   BENCH_TORRENTS     torrents added for the time to the first byte (default 200)
#   BENCH_PARTS        the parts to run: 1, 2 or 1,2 (default 1,2); BENCH_PARTS=2 runs the
#                      200 torrents alone, without making or downloading the big object
#   BENCH_BLOCK_CACHE  the mount's block_cache (default 16M)
#   BENCH_TIMEOUT      seconds one download or wait may take before the run fails (default 900)
#   S3T_S3             the server: s3rver (default) or rgw (a Ceph RGW of contrib/dev/rgw.sh,
#                      as the integration tests start it)
#   BENCH_DIR          where to make the temporary work dir (default $TMPDIR or /tmp)
#   S3TORRENTFS, S3TORRENT  binaries to use (default: Release build in $BUILD_DIR)
#   BUILD_DIR          build dir, relative to the repo root (default build-bench)
# Needs: cmake, openssl, fuse3 (fusermount3), awscli (/usr/bin/aws), s3rver in node_modules,
# qbittorrent-nox, deluged and deluge-web, transmission-daemon, python3-libtorrent.
# The driver is tests/bench/seedbox.py (with tests/integration/services.py's start-up helpers).
# Not a test: contrib/dev/test.sh does not run it.
set -euo pipefail

source "$(dirname "$0")/common.sh"
bench_init S3TORRENTFS S3TORRENT

if ((EUID != 0)); then
    echo "run as root: it mounts s3torrentfs (FUSE)" >&2
    exit 1
fi
bench_need cmake openssl fusermount3 "$AWS" qbittorrent-nox deluged deluge-web transmission-daemon \
    "$PY"
"$PY" -c 'import libtorrent' 2>/dev/null || { echo "missing: python3-libtorrent" >&2; exit 1; }
bench_load
bench_build S3TORRENTFS=fs/s3torrentfs S3TORRENT=tools/s3torrent
export S3TORRENTFS S3TORRENT LOAD_START

exec "$PY" "$ROOT/tests/bench/seedbox.py"
