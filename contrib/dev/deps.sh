#!/usr/bin/env bash
# Installs what building, testing and the demo need on a Debian 12 machine (run as root, or
# with sudo available). Idempotent: it installs only what is missing.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libssl-dev libcurl4-openssl-dev libjson-c-dev libexpat1-dev libsqlite3-dev libfuse3-dev
  check fuse3 libmicrohttpd-dev
  # independent implementations the tests compare against, and users' S3 client
  mktorrent transmission-cli python3-libtorrent awscli
  # a real swarm for the seed tests: the daemon seeding from the mount, a tracker, a leecher
  transmission-daemon opentracker aria2
  # more clients downloading from `s3torrent serve`'s web seeds alone (test_serve_clients.py)
  qbittorrent-nox
  # the daemons `s3torrent seed --client` drives (test_seed_clients.py): qbittorrent-nox
  # above, Deluge's daemon and its web UI's JSON-RPC
  deluged deluge-web
  # measuring; a clock moved for one process (the clock-skew tests); the mounts the benchmarks
  # compare with (tests/bench/fs.sh)
  time faketime s3fs rclone
  # HTTP load for the serve benchmark (tests/bench/serve.sh)
  wrk
  # a production S3 for the tests: Ceph RGW on a one-node memstore cluster (contrib/dev/rgw.sh)
  radosgw ceph-mon ceph-osd ceph-common
  # packaging the Lambda zip (contrib/lambda/package.sh)
  patchelf zip
  # the .deb and its checks: lintian, a clean Debian root, man pages rendered
  debootstrap lintian man-db
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# The local S3 and DynamoDB servers (s3rver, dynalite) and a BitTorrent client in Node.js
# (webtorrent-cli), pinned by package-lock.json.
if ! command -v npm >/dev/null; then
  echo "deps: installing nodejs and npm"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
cd "$(dirname "$0")/../.."
if ! cmp -s package-lock.json node_modules/.package-lock.stamp 2>/dev/null; then
  echo "deps: npm ci (s3rver, dynalite, webtorrent-cli)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  cp package-lock.json node_modules/.package-lock.stamp
fi
