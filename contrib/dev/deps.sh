#!/usr/bin/env bash
# Installs what building, testing and the demo need on a Debian 12 machine (run as root, or
# with sudo available). Idempotent: it installs only what is missing.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libssl-dev libcurl4-openssl-dev libjson-c-dev libexpat1-dev libsqlite3-dev libfuse3-dev
  check
  # independent implementations the tests compare against
  mktorrent transmission-cli python3-libtorrent
  # measuring
  time
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
