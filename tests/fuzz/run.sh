#!/usr/bin/env bash
# Runs one libFuzzer target briefly: run.sh BUILD_DIR TARGET SECONDS. The seed corpus is the
# test vectors (torrents, bencode cases; the XML or JSON fixtures for s3xml, credjson, ddbjson, trpc) plus
# the target's kept
# regression inputs.
set -euo pipefail
build=$1 target=$2 seconds=$3
here=$(dirname "$0")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
find "$here/../data/torrents" -name '*.torrent' -exec cp {} "$work/corpus/" \;
grep -v '^#' "$here/../data/bencode/cases.tsv" | cut -f1 | head -40 |
  awk '{ f = sprintf("%s/corpus/case%02d", "'"$work"'", NR); printf "%s", $0 > f; close(f) }'
case "$target" in
s3xml) cp "$here/../data/fixtures/"*.xml "$work/corpus/" ;;
credjson | ddbjson | trpc | events) cp "$here/../data/fixtures/"*.json "$work/corpus/" ;;
esac
if [ "$target" = trpc ]; then
  # answers of Transmission 3.00, as seen on the wire
  h=4dcd0922792ece6fd9d87fd70763b2bc24f2b4a0
  printf '{"arguments":{"torrent-added":{"hashString":"%s","id":1,"name":"x.bin"}},"result":"success","tag":7}' $h >"$work/corpus/trpc-added"
  printf '{"arguments":{"torrent-duplicate":{"hashString":"%s","id":1,"name":"x.bin"}},"result":"success"}' $h >"$work/corpus/trpc-dup"
  printf '{"arguments":{"torrents":[{"downloadDir":"/tmp/dl","hashString":"%s","id":1,"name":"x.bin"}]},"result":"success"}' $h >"$work/corpus/trpc-get"
  printf '{"arguments":{},"result":"invalid or corrupt torrent file"}' >"$work/corpus/trpc-bad"
fi
if [ -d "$here/regressions/$target" ]; then
  cp "$here/regressions/$target"/* "$work/corpus/" 2>/dev/null || true
fi
"$build/tests/fuzz_$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
  -print_final_stats=1 "$work/corpus" 2>"$work/log" || { tail -50 "$work/log"; exit 1; }
grep -E "^stat::number_of_executed_units|^Done" "$work/log" | tr '\n' ' '
echo
