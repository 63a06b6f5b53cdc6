#!/usr/bin/env bash
# The main job, shown end to end on this machine: installs what is missing, builds, then makes a
# torrent of a generated sample recording and shows, links and verifies it.
set -euo pipefail
cd "$(dirname "$0")/../.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Installing missing Debian packages and building (build/)"
contrib/dev/deps.sh
contrib/dev/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo
s3t=$PWD/build/tools/s3torrent

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

step "Generating a 64 MiB sample recording: 'studio recording 01.bin'"
head -c $((64 * 1024 * 1024)) /dev/urandom >"studio recording 01.bin"

step "s3torrent create --meta-version hybrid --webseed http://recordings.example/ ..."
"$s3t" create --meta-version hybrid --webseed http://recordings.example/ \
  --comment "demo recording" --json "studio recording 01.bin"

step "s3torrent show 'studio recording 01.bin.torrent'"
"$s3t" show "studio recording 01.bin.torrent"

step "s3torrent magnet"
"$s3t" magnet "studio recording 01.bin.torrent"

step "s3torrent verify (every piece, v1 and v2)"
"$s3t" verify "studio recording 01.bin.torrent" "studio recording 01.bin"

step "Corrupting one byte in piece 7 and verifying again (expect a failure naming piece 7)"
printf 'X' | dd of="studio recording 01.bin" bs=1 seek=$((7 * 262144 + 5)) conv=notrunc status=none
if "$s3t" verify "studio recording 01.bin.torrent" "studio recording 01.bin"; then
  echo "demo: verify should have failed" >&2
  exit 1
fi

step "Done. The S3, mount, sync and Lambda parts of the demo arrive with their issues."
