#!/usr/bin/env bash
# Builds the Lambda deployment zip of s3torrent-lambda for the provided.al2023 runtime:
# bootstrap (the binary) plus the shared libraries it needs in lib/, found through RPATH $ORIGIN/lib.
#
# Usage: contrib/lambda/package.sh [BUILD_DIR] [OUT_ZIP]
#   BUILD_DIR  a CMake build directory (default: build-lambda, configured Release here)
#   OUT_ZIP    the zip to write (default: BUILD_DIR/s3torrent-lambda-ARCH.zip)
#
# Architectures: the zip holds code for the machine that builds it. Build on (or in a container
# of) x86_64 for a function with architectures = ["x86_64"], on arm64 (aarch64, e.g. Graviton or
# `docker run --platform linux/arm64 debian:12`) for architectures = ["arm64"]; Terraform's
# `architecture` variable must match. The libraries come from the build host (Debian 12: glibc
# 2.36), and provided.al2023 ships glibc 2.34, so glibc itself is never bundled and the binary
# must not need symbols newer than 2.34: build in an Amazon Linux 2023 container
# (`docker run -v $PWD:/src amazonlinux:2023`, dnf install the -devel packages) for a zip that
# is certain to load; the script checks the glibc symbol versions and warns.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-lambda}
arch=$(uname -m)
case "$arch" in x86_64) larch=x86_64 ;; aarch64 | arm64) larch=arm64 ;; *) larch=$arch ;; esac
out=${2:-$build/s3torrent-lambda-$larch.zip}
command -v patchelf >/dev/null || { echo "package: needs patchelf (apt-get install patchelf)" >&2; exit 1; }
command -v zip >/dev/null || { echo "package: needs zip (apt-get install zip)" >&2; exit 1; }

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DS3T_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target s3torrent-lambda -j"$(nproc)" >/dev/null
bin=$build/lambda-sync/s3torrent-lambda

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib"
cp "$bin" "$stage/bootstrap"
strip --strip-unneeded "$stage/bootstrap"

# Every shared library ldd resolves, but the C library and the loader: those belong to the
# runtime's own glibc, and a bundled copy would not match its loader.
skip='^(linux-vdso|linux-gate|ld-linux|libc\.so|libm\.so|libpthread\.so|libdl\.so|librt\.so|libresolv\.so)'
ldd "$bin" | awk '/=> \// { print $1, $3 }' | while read -r name path; do
  if [[ $name =~ $skip ]]; then continue; fi
  cp -L "$path" "$stage/lib/$name"
  chmod 0644 "$stage/lib/$name"
  strip --strip-unneeded "$stage/lib/$name" 2>/dev/null || true
  patchelf --set-rpath '$ORIGIN' "$stage/lib/$name"
done
patchelf --set-rpath '$ORIGIN/lib' "$stage/bootstrap"
chmod 0755 "$stage/bootstrap"

# the highest glibc symbol version anything needs, against provided.al2023's 2.34
need=$(objdump -T "$stage/bootstrap" "$stage"/lib/*.so* 2>/dev/null |
  grep -o 'GLIBC_[0-9.]*' | sort -u -V | tail -1 | sed 's/GLIBC_//')
if [ -n "$need" ] && [ "$(printf '%s\n2.34\n' "$need" | sort -V | tail -1)" != 2.34 ]; then
  echo "package: warning: needs glibc $need, provided.al2023 has 2.34: build on Amazon Linux 2023" >&2
fi

# the zip keeps the modes Lambda needs (bootstrap executable)
rm -f "$out"
(cd "$stage" && zip -q -r -X "$out" bootstrap lib)
# a load check: the bundled libraries, found through $ORIGIN/lib, with no system fallbacks
"$stage/bootstrap" --version >/dev/null
echo "package: $out ($(du -h "$out" | cut -f1), $larch, $(ls "$stage/lib" | wc -l) libraries)"
