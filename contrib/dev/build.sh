#!/usr/bin/env bash
# Configures and builds one CMake tree: build.sh DIR [CMAKE OPTIONS...]. Quiet unless it fails.
set -euo pipefail
dir=$1
shift
cmake -S . -B "$dir" "$@" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j"$(nproc)" >"$dir.build.log" 2>&1 || { cat "$dir.build.log"; exit 1; }
if grep -q "warning:" "$dir.build.log"; then
  grep "warning:" "$dir.build.log"
  echo "build: warnings in $dir (the build must be warning-free)"
  exit 1
fi
