#!/usr/bin/env bash
# Builds the Debian package: a Release build in build-pkg/ installed under /usr, packed by
# CPack. Prints the path of the .deb. Usage: contrib/dev/package.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
contrib/dev/build.sh build-pkg -DCMAKE_BUILD_TYPE=Release -DS3T_TESTS=OFF \
  -DCMAKE_INSTALL_PREFIX=/usr -DS3T_SYSTEMD_UNITDIR=/lib/systemd/system >&2
(cd build-pkg && cpack -G DEB >&2)
ls "$PWD"/build-pkg/s3torrent_*.deb
