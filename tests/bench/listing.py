#!/usr/bin/python3
"""Benchmark: one directory of many objects (default 100,000) listed with `ls -l` through
s3torrentfs and through s3fs, on the same s3rver, each on a fresh mount. Checks that both list
every object (and s3torrentfs a .torrent beside each), and prints the times, the daemons' peak
RSS (VmHWM) and the ratio.

Usage: tests/bench/listing.py [--objects N]   (as root: it mounts FUSE file systems)
S3TORRENTFS names the binary (default build-bench/fs/s3torrentfs, built Release here)."""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from services import S3rver, aws_env  # noqa: E402

BUCKET, PREFIX = "listbench", "many"


def vmhwm_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid):
    """utime + stime of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_mounted(point, proc, what):
    deadline = time.monotonic() + 60
    while not os.path.ismount(point):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not mount")
        time.sleep(0.05)


def ls_l(point):
    t = time.monotonic()
    p = subprocess.run(["ls", "-l", "--", os.path.join(point, PREFIX)], capture_output=True,
                       text=True, errors="replace", timeout=3600)
    took = time.monotonic() - t
    if p.returncode != 0:
        raise SystemExit(f"ls -l failed: {p.stderr[:500]}")
    names = [line.split(None, 8)[8] for line in p.stdout.splitlines()[1:]]
    return took, names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", type=int, default=100000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: it mounts FUSE file systems")
    fs_bin = os.environ.get("S3TORRENTFS")
    if not fs_bin:
        subprocess.run([os.path.join(ROOT, "contrib", "dev", "build.sh"), "build-bench",
                        "-DCMAKE_BUILD_TYPE=Release", "-DS3T_TESTS=OFF"], cwd=ROOT, check=True)
        fs_bin = os.path.join(ROOT, "build-bench", "fs", "s3torrentfs")
    work = tempfile.TemporaryDirectory(prefix="listbench-")
    s3 = S3rver(buckets=(BUCKET,))
    try:
        src = os.path.join(work.name, PREFIX)
        os.mkdir(src)
        want = [f"f{i:06d}" for i in range(args.objects)]
        for name in want:
            with open(os.path.join(src, name), "w") as f:
                f.write(name)
        cfg = os.path.join(work.name, "aws-config")
        with open(cfg, "w") as f:
            f.write("[default]\ns3 =\n  max_concurrent_requests = 32\n")
        t = time.monotonic()
        subprocess.run(["/usr/bin/aws", "--endpoint-url", s3.url, "s3", "cp", "--recursive",
                        "--only-show-errors", src, f"s3://{BUCKET}/{PREFIX}/"],
                       env=aws_env({"AWS_CONFIG_FILE": cfg}), check=True)
        print(f"uploaded {args.objects} objects in {time.monotonic() - t:.0f} s", flush=True)
        results = {}
        env = aws_env()
        # the floor: the same pages of ListObjectsV2 fetched by the aws CLI, nothing else
        t = time.monotonic()
        p = subprocess.run(["/usr/bin/aws", "--endpoint-url", s3.url, "s3api", "list-objects-v2",
                            "--bucket", BUCKET, "--prefix", PREFIX + "/", "--delimiter", "/",
                            "--query", "length(Contents)"], env=env, capture_output=True,
                           text=True, check=True)
        floor = time.monotonic() - t
        if int(p.stdout.strip()) != args.objects:
            raise SystemExit(f"aws listed {p.stdout.strip()} objects")
        # s3torrentfs
        point = os.path.join(work.name, "mnt-s3torrentfs")
        os.mkdir(point)
        p = subprocess.Popen([fs_bin, "-f", "-o", f"endpoint={s3.url},cache={work.name}/c/t.db",
                              BUCKET, point], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        try:
            wait_mounted(point, p, "s3torrentfs")
            took, names = ls_l(point)
            objs = sorted(n for n in names if not n.endswith(".torrent"))
            tors = sorted(n[:-8] for n in names if n.endswith(".torrent"))
            if objs != want or tors != want:
                raise SystemExit(f"s3torrentfs listed {len(objs)} objects, {len(tors)} torrents")
            results["s3torrentfs"] = (took, vmhwm_mib(p.pid), len(names), cpu_s(p.pid))
        finally:
            subprocess.run(["fusermount3", "-u", point])
            p.wait(60)
        # s3fs
        point = os.path.join(work.name, "mnt-s3fs")
        os.mkdir(point)
        pw = os.path.join(work.name, "passwd-s3fs")
        with open(pw, "w") as f:
            f.write("S3RVER:S3RVER\n")
        os.chmod(pw, 0o600)
        p = subprocess.Popen(["s3fs", BUCKET, point, "-f", "-o",
                              f"url={s3.url},use_path_request_style,passwd_file={pw},ro"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_mounted(point, p, "s3fs")
            took, names = ls_l(point)
            if sorted(names) != want:
                raise SystemExit(f"s3fs listed {len(names)} entries")
            results["s3fs"] = (took, vmhwm_mib(p.pid), len(names), cpu_s(p.pid))
        finally:
            subprocess.run(["fusermount3", "-u", point])
            p.wait(60)
    finally:
        s3.stop()
        work.cleanup()
    print(f"{'ls -l of ' + str(args.objects) + ' objects, fresh mount':<44} {'s':>8} "
          f"{'peak RSS MiB':>13} {'entries':>9} {'daemon CPU s':>13}")
    for name, (took, rss, n, cpu) in results.items():
        print(f"{name:<44} {took:8.2f} {rss:13.1f} {n:9d} {cpu:13.2f}")
    print(f"{'floor: aws s3api list-objects-v2 (same pages)':<44} {floor:8.2f}")
    a, b = results["s3torrentfs"], results["s3fs"]
    print(f"s3torrentfs / s3fs time: {a[0] / b[0]:.2f} (lists twice the entries: a .torrent "
          f"beside each object); load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
