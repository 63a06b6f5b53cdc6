#!/usr/bin/python3
"""A soak of s3torrentfs under faults: 8 parallel readers of object data (random ranges) and of
synthetic torrents, through a fault proxy in front of s3rver that answers 5% of requests with
503 SlowDown or 500, resets 1% of connections in the middle of the body, and delays 2% by a
second (latency spikes). Another process keeps evicting the torrent cache, so torrents are
generated again and again under the same faults.

Every byte a reader gets is compared with the truth (the uploaded data; `s3torrent create` run
directly against s3rver for the torrents). Prints the reads done, the errors returned to
readers, and the wrong bytes; exits 1 when any byte was wrong, or the daemon crashed or logged
a sanitizer report.

Usage: tests/soak/fs_soak.py [--seconds N] (default 600). S3TORRENT and S3TORRENTFS name the
binaries (default build/)."""
import argparse
import errno
import hashlib
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from faultproxy import FaultProxy  # noqa: E402
from mount import Mount  # noqa: E402
from services import S3rver, aws_env  # noqa: E402

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))
BUCKET = "soak"
SIZES = [1, 70001, 1048576, 3 * 1048576 + 7, 9 * 1048576 + 1, 17 * 1048576 + 333]
READERS = 8


def content(size, seed):
    return hashlib.shake_256(f"soak{seed}".encode()).digest(size)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=600)
    args = ap.parse_args()

    s3 = S3rver(buckets=(BUCKET,))
    tmp = tempfile.TemporaryDirectory(prefix="soak-")
    data, torrents = {}, {}
    for i, size in enumerate(SIZES):
        key = f"rec/obj{i}.bin"
        data[key] = content(size, i)
        path = os.path.join(tmp.name, "up.bin")
        with open(path, "wb") as f:
            f.write(data[key])
        s3.put(BUCKET, key, path)
        p = subprocess.run([S3T, "create", "--endpoint-url", s3.url, "-o", "-",
                            f"s3://{BUCKET}/{key}"], env=aws_env(), capture_output=True,
                           check=True)
        torrents[key] = p.stdout
    proxy = FaultProxy(s3.port, seed=7, methods=("GET", "HEAD"),
                       faults={"slowdown": 0.025, "internal": 0.025, "reset": 0.01,
                               "delay": 0.02}, delay_s=1.0)
    cache = os.path.join(tmp.name, "cache", "torrents.db")
    # a small block cache and short TTLs: reads keep going to S3, listings are refetched
    m = Mount(proxy.url, BUCKET, cache=cache,
              options=["block_cache=8M", "read_ahead=4M", "ttl=2", "negative_ttl=1"])
    stats = {"data_reads": 0, "torrent_reads": 0, "bytes": 0, "errors": 0, "wrong": 0,
             "evictions": 0}
    errors = {}
    lock = threading.Lock()
    stop = time.monotonic() + args.seconds

    def reader(n):
        rng = random.Random(n)
        keys = sorted(data)
        while time.monotonic() < stop:
            key = rng.choice(keys)
            try:
                if rng.random() < 0.2:
                    with open(m.path(key + ".torrent"), "rb") as f:
                        got = f.read()
                    want = torrents[key]
                    kind = "torrent_reads"
                else:
                    size = len(data[key])
                    off = rng.randrange(size)
                    ln = min(size - off, rng.choice((16384, 131072, 1048576, 4 << 20)))
                    with open(m.path(key), "rb") as f:
                        f.seek(off)
                        got = f.read(ln)
                    want = data[key][off:off + ln]
                    kind = "data_reads"
                with lock:
                    stats[kind] += 1
                    stats["bytes"] += len(got)
                    if got != want:
                        stats["wrong"] += 1
                        print(f"WRONG BYTES: {key} ({kind})", file=sys.stderr)
            except OSError as e:
                with lock:
                    stats["errors"] += 1
                    name = errno.errorcode.get(e.errno, str(e.errno))
                    errors[name] = errors.get(name, 0) + 1

    def evictor():
        # another process sharing the cache (as sync does) drops torrents: they are made again
        while time.monotonic() < stop:
            time.sleep(5)
            try:
                db = sqlite3.connect(cache, timeout=10)
                db.execute("DELETE FROM torrents")
                db.commit()
                db.close()
                stats["evictions"] += 1
            except sqlite3.Error as e:
                print(f"evictor: {e}", file=sys.stderr)

    started = time.monotonic()
    threads = [threading.Thread(target=reader, args=(i,)) for i in range(READERS)]
    threads.append(threading.Thread(target=evictor))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    alive = m.proc.poll() is None
    problems = m.stop()
    proxy.stop()
    s3.stop()
    tmp.cleanup()
    reads = stats["data_reads"] + stats["torrent_reads"]
    print(f"soak: {took:.0f} s, {READERS} readers: {reads} reads ({stats['data_reads']} data, "
          f"{stats['torrent_reads']} torrents, {stats['bytes'] / 1048576:.0f} MiB), "
          f"{stats['errors']} errors returned to readers {errors or ''}, "
          f"{stats['wrong']} wrong; {proxy.counts['requests']} S3 requests, "
          f"{proxy.counts['faults']} faults injected {proxy.injected}; "
          f"{stats['evictions']} cache evictions")
    # an error a reader saw must have been logged by the daemon as an S3 failure, nothing else
    unexpected = [p for p in problems if "Sanitizer" in p or "runtime error" in p]
    if stats["wrong"] or not alive or unexpected or reads == 0:
        print(f"soak: FAILED (daemon alive: {alive}; {unexpected[:5]})", file=sys.stderr)
        if unexpected:  # the sanitizer's report, whole: where it was allocated or went wrong
            log = m.final_output
            report = log[log.find("=="):] if "==" in log else log
            print(report[:20000], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
