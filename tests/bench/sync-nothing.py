#!/usr/bin/python3
"""Benchmark: `s3torrent sync` with nothing to do over a prefix of many objects (default 20,000)
whose torrents exist, against `aws s3 ls --recursive` of the same prefix, in one run:

  warm: the torrents were made by this host (its cache knows each .torrent by its ETag);
  cold: a new host (an empty cache): a HEAD and a status read per object;

with wall and CPU seconds, peak RSS and requests per object (counted through a proxy in a
separate run of each, so the proxy's cost is not in the timed runs).

Usage: tests/bench/sync-nothing.py [--objects N] [--jobs J]
  S3T_S3=rgw uses Ceph RGW (the fairer transport), else s3rver.
  S3TORRENT names the binary (default build-bench/tools/s3torrent, built Release here)."""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from faultproxy import FaultProxy  # noqa: E402
from services import AWS, S3, Dynalite, aws_env  # noqa: E402

BUCKET, PREFIX, TABLE = "syncnothing", "many/", "torrent-status"


def build():
    exe = os.environ.get("S3TORRENT")
    if exe:
        return os.path.abspath(exe)
    bdir = os.path.join(ROOT, "build-bench")
    subprocess.run([os.path.join(ROOT, "contrib", "dev", "build.sh"), bdir,
                    "-DCMAKE_BUILD_TYPE=Release", "-DS3T_TESTS=OFF"], check=True)
    return os.path.join(bdir, "tools", "s3torrent")


def timed(cmd, env):
    """Runs cmd: (wall s, CPU s, peak RSS MiB, stdout), through GNU time for the RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], env=env, capture_output=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rss = int(p.stderr.decode().strip().splitlines()[-1]) / 1024
    return wall, cpu, rss, p.stdout.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=20000)
    ap.add_argument("--jobs", type=int, default=8)
    a = ap.parse_args()
    s3t = build()
    s3 = S3(buckets=(BUCKET,))
    ddb = Dynalite()
    tmp = tempfile.TemporaryDirectory()
    env = aws_env()
    try:
        src = os.path.join(tmp.name, "src")
        os.mkdir(src)
        for i in range(a.objects):
            with open(os.path.join(src, f"{i:06d}.bin"), "wb") as f:
                f.write(i.to_bytes(4, "big") * 256)  # 1 KiB each
        t0 = time.monotonic()
        s3.aws("s3", "cp", "--recursive", "--only-show-errors", src, f"s3://{BUCKET}/{PREFIX}")
        print(f"uploaded {a.objects} objects in {time.monotonic() - t0:.1f} s", flush=True)

        def sync(cache, s3_url=s3.url, ddb_url=ddb.url, *extra):
            return [s3t, "sync", "--endpoint-url", s3_url, "--ddb-endpoint-url", ddb_url,
                    "--ddb-table", TABLE, "--cache", cache, "-j", str(a.jobs), "--json", *extra,
                    f"s3://{BUCKET}/{PREFIX}"]

        host = os.path.join(tmp.name, "host.db")
        w, c, r, out = timed(sync(host, s3.url, ddb.url, "--create-table"), env)
        made = out.count('"action":"created"')
        if made != a.objects:
            sys.exit(f"the first sync made {made} torrents, not {a.objects}")
        print(f"first sync (made {made} torrents): {w:.1f} s", flush=True)

        rows = []
        ls = timed([AWS, "--endpoint-url", s3.url, "s3", "ls", "--recursive",
                    f"s3://{BUCKET}/{PREFIX}"], env)
        if ls[3].count("\n") != 2 * a.objects:
            sys.exit(f"aws s3 ls listed {ls[3].count(chr(10))} keys, not {2 * a.objects}")
        rows.append(("aws s3 ls --recursive", ls))
        for name, cache in (("sync, warm (this host)", host),
                            ("sync, cold (a new host)", os.path.join(tmp.name, "new.db"))):
            res = timed(sync(cache), env)
            up = res[3].count('"action":"up-to-date"')
            if up != a.objects:
                sys.exit(f"{name}: {up} up to date, not {a.objects}")
            rows.append((name, res))

        # requests per object, through counting proxies (not timed)
        counts = {}
        for name, cache in (("warm", host), ("cold", os.path.join(tmp.name, "counted.db"))):
            sp, dp = FaultProxy(s3.port), FaultProxy(ddb.port)
            try:
                timed(sync(cache, sp.url, dp.url), env)
                counts[name] = (sp.counts["requests"], sp.by_method.get("HEAD", 0),
                                dp.counts["requests"])
            finally:
                sp.stop()
                dp.stop()
    finally:
        s3.stop()
        ddb.stop()
        tmp.cleanup()

    base = rows[0][1][0]
    print(f"\n{a.objects} objects with their .torrent ({'RGW' if os.environ.get('S3T_S3') == 'rgw' else 's3rver'}), sync -j {a.jobs}")
    print(f"  {'':26} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13} {'x aws ls':>9}")
    for name, (w, c, r, _) in rows:
        print(f"  {name:26} {w:8.2f} {c:8.2f} {r:13.1f} {w / base:9.2f}")
    for name, (req, heads, ddbreq) in counts.items():
        print(f"  {name}: {req} S3 requests ({req / a.objects:.3f} per object, {heads} HEAD), "
              f"{ddbreq} DynamoDB requests ({ddbreq / a.objects:.3f} per object)")
    warm = rows[1][1]
    print(f"  warm: {warm[0] / base:.2f}x aws s3 ls (target <= 2), peak RSS {warm[2]:.1f} MiB "
          f"(target < 64): {'met' if warm[0] / base <= 2 and warm[2] < 64 else 'missed'}")


if __name__ == "__main__":
    main()
