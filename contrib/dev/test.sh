#!/usr/bin/env bash
# Runs every test tier on a fresh Debian machine: installs what is missing, builds, then runs the
# unit tests, the cross-checks against real peers, the S3 tests against a real local S3 server,
# the sanitizer build and short fuzz runs.
set -euo pipefail
cd "$(dirname "$0")/../.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
passed=0
failed=0
started=$SECONDS
tier() { # tier NAME COMMAND...: runs one tier, counts it and prints how long it took
  local name=$1 t0=$SECONDS
  shift
  echo "=== $name"
  if "$@"; then
    passed=$((passed + 1))
    echo "--- $name: passed ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1))
    echo "--- $name: FAILED ($((SECONDS - t0)) s)"
  fi
}

# Tiers that mostly wait (on retries, timeouts, the network) run in the background beside
# others: bg_tier starts one, bg_join waits for all started, shows their output and counts
# them. Each uses its own servers, ports and buckets, so they do not meet.
bg_pids=()
bg_logs=()
bg_tier() { # bg_tier NAME COMMAND...
  local name=$1 log
  shift
  log="build-logs/bg-${#bg_pids[@]}-$$.log"
  (
    t0=$SECONDS
    echo "=== $name (beside the tiers around it)"
    if "$@"; then
      echo "--- $name: passed ($((SECONDS - t0)) s)"
    else
      echo "--- $name: FAILED ($((SECONDS - t0)) s)"
      exit 1
    fi
  ) >"$log" 2>&1 &
  bg_pids+=($!)
  bg_logs+=("$log")
}
bg_join() {
  local i
  for i in "${!bg_pids[@]}"; do
    if wait "${bg_pids[$i]}"; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
    fi
    cat "${bg_logs[$i]}"
    rm -f "${bg_logs[$i]}"
  done
  bg_pids=()
  bg_logs=()
}

contrib/dev/deps.sh
mkdir -p build-logs

tier "build (release)" contrib/dev/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DS3T_TESTS=ON
tier "unit tests" ctest --test-dir build --output-on-failure
bg_tier "s3torrent sync against s3rver and dynalite" env S3TORRENT=build/tools/s3torrent \
  S3TORRENTFS=build/fs/s3torrentfs /usr/bin/python3 tests/integration/test_sync.py
tier "cross-checks against mktorrent, libtorrent, transmission-show" \
  env S3TORRENT=build/tools/s3torrent /usr/bin/python3 tests/integration/test_peers.py
tier "multi-file torrents (create DIR) against mktorrent, transmission-create, libtorrent; a 4 GiB \
sparse file" \
  env S3TORRENT=build/tools/s3torrent /usr/bin/python3 tests/integration/test_multifile.py

tier "S3 against s3rver: same bytes as files, listings, faults, secrets" \
  env S3TORRENT=build/tools/s3torrent /usr/bin/python3 tests/integration/test_s3.py
tier "create s3://BUCKET/PREFIX/ against s3rver: same bytes as create DIR, key rules, a replaced \
object" \
  env S3TORRENT=build/tools/s3torrent /usr/bin/python3 tests/integration/test_prefix.py

tier "odd keys through create, verify, the mount, the Lambda and sync, against s3rver" \
  env S3TORRENT=build/tools/s3torrent S3TORRENTFS=build/fs/s3torrentfs \
  S3TORRENT_LAMBDA=build/lambda-sync/s3torrent-lambda /usr/bin/python3 \
  tests/integration/test_oddkeys.py

tier "one recipe: create, the mount's -o and config file, the Lambda agree on options, against s3rver" \
  env S3TORRENT=build/tools/s3torrent S3TORRENTFS=build/fs/s3torrentfs \
  S3TORRENT_LAMBDA=build/lambda-sync/s3torrent-lambda /usr/bin/python3 \
  tests/integration/test_recipe.py

tier "s3torrentfs mounted against s3rver" env S3TORRENT=build/tools/s3torrent \
  S3TORRENTFS=build/fs/s3torrentfs /usr/bin/python3 tests/integration/test_fs.py

tier "DynamoDB status items against dynalite" \
  env STATUS_DRIVER=build/tests/status_driver /usr/bin/python3 tests/integration/test_status.py

tier "seeding: s3torrent seed, transmission-daemon, opentracker, aria2c" \
  env S3TORRENT=build/tools/s3torrent S3TORRENTFS=build/fs/s3torrentfs \
  /usr/bin/python3 tests/integration/test_seed.py

tier "seed clients: qBittorrent (hybrid, v2) and Deluge (v1, to aria2c) from the mount, \
Transmission 3 refusing hybrids, a v1-only magnet for aria2c, 200 torrents' zero-read start" env S3TORRENT=build/tools/s3torrent \
  S3TORRENTFS=build/fs/s3torrentfs /usr/bin/python3 tests/integration/test_seed_clients.py

tier "end to end: web seed only (aria2c from s3rver), hybrid from the mount (libtorrent), magnet" \
  env S3TORRENT=build/tools/s3torrent S3TORRENTFS=build/fs/s3torrentfs \
  /usr/bin/python3 tests/integration/test_e2e.py

tier "s3torrent-lambda through a local Runtime API, against s3rver and dynalite" \
  env S3TORRENT=build/tools/s3torrent S3TORRENT_LAMBDA=build/lambda-sync/s3torrent-lambda \
  /usr/bin/python3 tests/integration/test_lambda.py

# a 1 GiB object hashed in runs by 4 runtimes (4 minutes here, mostly waiting on timeouts)
bg_tier "s3torrent-lambda fan-out: 1 GiB in runs through a fake SQS to 4 runtimes, one killed" \
  env S3TORRENT=build/tools/s3torrent S3TORRENT_LAMBDA=build/lambda-sync/s3torrent-lambda \
  /usr/bin/python3 tests/integration/test_lambda_fanout.py

tier "s3torrent-lambda --listen (RGW/MinIO pushes over HTTP) against s3rver and dynalite" \
  env S3TORRENT=build/tools/s3torrent S3TORRENT_LAMBDA=build/lambda-sync/s3torrent-lambda \
  /usr/bin/python3 tests/integration/test_listen.py

tier "s3torrent serve against s3rver: ?torrent, web seeds for aria2c and libtorrent, HTTP rules" \
  env S3TORRENT=build/tools/s3torrent /usr/bin/python3 tests/integration/test_serve.py
tier "disk block cache: serve restarted and the mount remounted read no data from s3rver, \
damaged files fetched again, the cap kept" env S3TORRENT=build/tools/s3torrent \
  S3TORRENTFS=build/fs/s3torrentfs /usr/bin/python3 tests/integration/test_disk_cache.py
tier "s3torrent serve as real clients' only source, against s3rver: qBittorrent (v1, hybrid, \
v2-only, its RSS reader), Transmission, WebTorrent" \
  env S3TORRENT=build/tools/s3torrent /usr/bin/python3 tests/integration/test_serve_clients.py
tier "s3torrent serve of a prefix's multi-file torrent, against s3rver: libtorrent and qBittorrent \
(padded hybrid) and aria2c (v1) download a session from web seeds alone" \
  env S3TORRENT=build/tools/s3torrent /usr/bin/python3 tests/integration/test_serve_sessions.py
tier "s3torrent serve against hostile clients (raw requests, ranges, slowloris, 10,000 connections, \
clients leaving mid-answer), against s3rver" \
  env S3TORRENT=build/tools/s3torrent /usr/bin/python3 tests/integration/test_serve_hostile.py

# Ceph RGW, a production S3: its own semantics (test_rgw.py), then the S3, mount, sync, Lambda
# and end-to-end tiers again, on one cluster started for them all (services.S3 picks it)
bg_join

rgw_dir=$(mktemp -d)
rgw_stop() { contrib/dev/rgw.sh stop "$rgw_dir/cluster" >/dev/null 2>&1 || true; rm -rf "$rgw_dir"; }
trap rgw_stop EXIT
if contrib/dev/rgw.sh start "$rgw_dir/cluster" >build-logs/rgw-start.log 2>&1; then
  on_rgw() { env S3T_S3=rgw RGW_DIR="$rgw_dir/cluster" S3TORRENT=build/tools/s3torrent \
    S3TORRENTFS=build/fs/s3torrentfs S3TORRENT_LAMBDA=build/lambda-sync/s3torrent-lambda "$@"; }
  tier "RGW: signatures, a real 412, md5-N ETags, %-prefixes, control keys on a page boundary, \
versioning, private objects, replaced objects" on_rgw /usr/bin/python3 tests/integration/test_rgw.py
  bg_tier "s3torrent sync against RGW and dynalite" on_rgw /usr/bin/python3 \
    tests/integration/test_sync.py
  # the 4 GiB object is hashed against s3rver above (the cluster keeps objects in 3 GiB of RAM)
  tier "S3 against RGW" on_rgw /usr/bin/python3 tests/integration/test_s3.py SameAsFile Listing \
    Faults Secrets ClockSkew Tls
  tier "odd keys through every front end, against RGW" on_rgw /usr/bin/python3 \
    tests/integration/test_oddkeys.py
  tier "create s3://BUCKET/PREFIX/ against RGW" on_rgw /usr/bin/python3 \
    tests/integration/test_prefix.py
  tier "s3torrentfs mounted against RGW" on_rgw /usr/bin/python3 tests/integration/test_fs.py
  tier "s3torrent-lambda against RGW and dynalite" on_rgw /usr/bin/python3 \
    tests/integration/test_lambda.py
  tier "s3torrent-lambda --listen against RGW and dynalite" on_rgw /usr/bin/python3 \
    tests/integration/test_listen.py
  tier "end to end against RGW (web seed from a public-read bucket)" on_rgw /usr/bin/python3 \
    tests/integration/test_e2e.py
  tier "s3torrent serve against RGW (a private bucket, served only through it)" on_rgw \
    /usr/bin/python3 tests/integration/test_serve.py
  tier "s3torrent serve to qBittorrent, Transmission, WebTorrent against RGW (a private bucket)" \
    on_rgw /usr/bin/python3 tests/integration/test_serve_clients.py
  tier "s3torrent serve of a prefix's multi-file torrent to libtorrent, qBittorrent and aria2c \
against RGW (a private bucket)" on_rgw /usr/bin/python3 tests/integration/test_serve_sessions.py
  bg_join
else
  tier "RGW starts (contrib/dev/rgw.sh)" sh -c 'cat build-logs/rgw-start.log; false'
fi
rgw_stop
trap - EXIT

# the seedbox soak waits on its downloads as much as it works: beside the other soak and the demo
bg_tier "seedbox soak: qBittorrent seeds 50 torrents from the mount (disk cache at its cap, 5% 5xx, \
1% resets) to 3 libtorrent downloaders; 0 wrong bytes, RSS bounded (${SOAK_SECONDS:-60}s)" \
  env S3TORRENT=build/tools/s3torrent S3TORRENTFS=build/fs/s3torrentfs \
  /usr/bin/python3 tests/soak/seedbox_soak.py --seconds "${SOAK_SECONDS:-60}"
tier "soak: 8 readers of the mount under 5% 5xx, 1% resets, latency spikes (${SOAK_SECONDS:-60}s)" \
  env S3TORRENT=build/tools/s3torrent S3TORRENTFS=build/fs/s3torrentfs \
  /usr/bin/python3 tests/soak/fs_soak.py --seconds "${SOAK_SECONDS:-60}"

demo_check() { # the main job runs to its end, and --stop leaves nothing mounted or running
  local dir
  dir=$(mktemp -d)
  chmod 755 "$dir" # opentracker reads its whitelist in there as nobody
  local ok=0
  DEMO_DIR=$dir/demo contrib/dev/demo.sh >build-logs/demo.log 2>&1 || { tail -30 build-logs/demo.log; ok=1; }
  grep -q "sha256 of the download" build-logs/demo.log || ok=1
  grep -q "the upload got its .torrent and a READY item by itself" build-logs/demo.log || ok=1
  # stopped either way: a failed demo must not leave its mount and servers to the next tiers
  DEMO_DIR=$dir/demo contrib/dev/demo.sh --stop >/dev/null
  [ "$ok" -eq 0 ] || return 1
  ! grep -q "$dir" /proc/mounts && [ ! -e "$dir/demo" ] && rmdir "$dir"
}
tier "the demo (contrib/dev/demo.sh) and its --stop" demo_check

tier "build (ASan+UBSan)" contrib/dev/build.sh build-asan -DS3T_SANITIZE=ON -DS3T_TESTS=ON -DCMAKE_BUILD_TYPE=Debug
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
tier "unit tests under ASan+UBSan" ctest --test-dir build-asan --output-on-failure
bg_tier "s3torrent sync under ASan+UBSan" env S3TORRENT=build-asan/tools/s3torrent \
  S3TORRENTFS=build-asan/fs/s3torrentfs /usr/bin/python3 tests/integration/test_sync.py \
  Foreign FromFile PrefixSync.test_dry_run_changes_nothing PrefixTorrents \
  Robustness.test_concurrent_syncs_agree \
  Streaming
tier "command-line errors under ASan+UBSan" \
  env S3TORRENT=build-asan/tools/s3torrent /usr/bin/python3 tests/integration/test_peers.py BadInput
tier "multi-file torrents under ASan+UBSan" env S3TORRENT=build-asan/tools/s3torrent \
  /usr/bin/python3 tests/integration/test_multifile.py MultiFile
tier "sessions composed from the torrent cache under ASan+UBSan" \
  env S3TORRENT=build-asan/tools/s3torrent /usr/bin/python3 tests/integration/test_prefix.py \
  Prefix.test_composed_from_the_cache Prefix.test_object_from_the_cache
# all S3 tests but the 4 GiB object (hashed by the release build above)
tier "S3 under ASan+UBSan" env S3TORRENT=build-asan/tools/s3torrent /usr/bin/python3 \
  tests/integration/test_s3.py SameAsFile Listing Faults Secrets
tier "DynamoDB status items under ASan+UBSan" \
  env STATUS_DRIVER=build-asan/tests/status_driver /usr/bin/python3 tests/integration/test_status.py
tier "s3torrent-lambda under ASan+UBSan" env S3TORRENT=build-asan/tools/s3torrent \
  S3TORRENT_LAMBDA=build-asan/lambda-sync/s3torrent-lambda /usr/bin/python3 \
  tests/integration/test_lambda.py
bg_tier "s3torrent-lambda fan-out under ASan+UBSan (512 MiB)" env FANOUT_MIB=512 \
  S3TORRENT=build-asan/tools/s3torrent S3TORRENT_LAMBDA=build-asan/lambda-sync/s3torrent-lambda \
  /usr/bin/python3 tests/integration/test_lambda_fanout.py
tier "s3torrent-lambda --listen under ASan+UBSan" env S3TORRENT=build-asan/tools/s3torrent \
  S3TORRENT_LAMBDA=build-asan/lambda-sync/s3torrent-lambda /usr/bin/python3 \
  tests/integration/test_listen.py
tier "s3torrent serve under ASan+UBSan" env S3TORRENT=build-asan/tools/s3torrent \
  /usr/bin/python3 tests/integration/test_serve.py
tier "s3torrent serve of a prefix's multi-file torrent under ASan+UBSan" \
  env S3TORRENT=build-asan/tools/s3torrent /usr/bin/python3 tests/integration/test_serve_sessions.py
tier "s3torrent serve against hostile clients under ASan+UBSan" \
  env S3TORRENT=build-asan/tools/s3torrent /usr/bin/python3 tests/integration/test_serve_hostile.py
tier "disk block cache under ASan+UBSan" env S3TORRENT=build-asan/tools/s3torrent \
  S3TORRENTFS=build-asan/fs/s3torrentfs /usr/bin/python3 tests/integration/test_disk_cache.py
tier "s3torrentfs under ASan+UBSan" env S3TORRENT=build-asan/tools/s3torrent \
  S3TORRENTFS=build-asan/fs/s3torrentfs /usr/bin/python3 tests/integration/test_fs.py

bg_tier "seedbox soak under ASan+UBSan (${SOAK_SECONDS:-60}s)" \
  env S3TORRENT=build-asan/tools/s3torrent S3TORRENTFS=build-asan/fs/s3torrentfs \
  /usr/bin/python3 tests/soak/seedbox_soak.py --seconds "${SOAK_SECONDS:-60}"
tier "soak under ASan+UBSan (${SOAK_SECONDS:-60}s)" env S3TORRENT=build-asan/tools/s3torrent \
  S3TORRENTFS=build-asan/fs/s3torrentfs /usr/bin/python3 tests/soak/fs_soak.py \
  --seconds "${SOAK_SECONDS:-60}"

bg_join

tier "build (ThreadSanitizer)" contrib/dev/build.sh build-tsan -DS3T_TSAN=ON -DS3T_TESTS=ON \
  -DCMAKE_BUILD_TYPE=Debug
tier "unit tests of the concurrent parts under TSan (block cache and its disk tier, torrent single \
flight, maker, worker pool, the hasher over files read as one)" \
  env TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure \
  -R "^(blocks|diskcache|tgen|dirt|maker|sync|handler|meta|pool|torrent)$"
tier "s3torrentfs under TSan (64 concurrent torrent opens, SIGHUP, kill -9, ...)" \
  env TSAN_OPTIONS=halt_on_error=0 S3TORRENT=build-tsan/tools/s3torrent \
  S3TORRENTFS=build-tsan/fs/s3torrentfs /usr/bin/python3 tests/integration/test_fs.py

tier "s3torrent serve under TSan (threads, single flight)" env TSAN_OPTIONS=halt_on_error=0 \
  S3TORRENT=build-tsan/tools/s3torrent /usr/bin/python3 tests/integration/test_serve.py

tier "build (libFuzzer)" contrib/dev/build.sh build-fuzz -DS3T_FUZZ=ON -DS3T_TESTS=OFF \
  -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug
# the install tier (mostly apt and debootstrap) beside the fuzz targets, which run two at a time
# (one core each) and for a fixed time whatever the load
bg_tier "install: cmake --install, the .deb (lintian, apt into a debootstrap root, mount helper)" \
  env BUILD=build /usr/bin/python3 tests/integration/test_install.py
fuzz_wait() { # fuzz_wait PID LOG: a fuzz target run in the background: its result
  local rc=0
  wait "$1" || rc=$?
  cat "$2"
  return "$rc"
}
set -- bencode metainfo s3xml credjson ddbjson trpc seedc events fsconfig listen recipe hashes serve \
  feed diskcache presign fanout
while [ $# -gt 0 ]; do
  if [ $# -gt 1 ]; then
    tests/fuzz/run.sh build-fuzz "$2" "$FUZZ_SECONDS" >"build-logs/fuzz-$2.log" 2>&1 &
    fuzz_pid=$!
  fi
  tier "fuzz $1 (${FUZZ_SECONDS}s)" tests/fuzz/run.sh build-fuzz "$1" "$FUZZ_SECONDS"
  if [ $# -gt 1 ]; then
    tier "fuzz $2 (${FUZZ_SECONDS}s, beside $1)" fuzz_wait "$fuzz_pid" "build-logs/fuzz-$2.log"
    shift
  fi
  shift
done
bg_join

echo
echo "$passed passed, $failed failed, $((SECONDS - started)) s"
[ "$failed" -eq 0 ]
