#!/usr/bin/python3
"""A soak of the seedbox: s3torrentfs with a disk cache well under the data it serves, and
qBittorrent seeding 50 torrents from it, under faults on S3; 3 downloaders take them from it
again and again.

S3 (s3rver, or RGW with S3T_S3=rgw) sits behind the fault proxy of fs_soak.py: 5% of GETs and
HEADs are answered 503 SlowDown or 500, 1% reset in the middle of the body, 2% delayed by a
second. The mount has block_cache=16M and disk_cache_max=24M for 50 objects of 89 MiB in all, so
both caches evict all the time, and writes its metrics file. qbittorrent-nox seeds the mount's
own torrents of the objects (`s3torrent seed --client qbittorrent`: added without a check, so
every byte it sends is read through the mount when a peer asks), announced to opentracker.
3 python3-libtorrent downloaders, each a fresh session per torrent, take random torrents, find
qBittorrent through the tracker (or dial it, when the tracker does not have it yet) and download
them whole; a downloader never unchokes a peer, so all their bytes come from qBittorrent.
Meanwhile, as memory pressure on a host seeding terabytes would, the kernel's page cache of the
objects is dropped every 2 s, so qBittorrent's reads reach the daemon; every 10 s qBittorrent
drops 5 idle torrents and `s3torrent seed` adds them again; a torrent the client stopped on a
read error is resumed and counted.

Wrong bytes are bytes read from the mount unlike the object's, wherever a check finds them:
qBittorrent (which added the torrents unchecked) checks each piece the first time a peer asks
for it, and drops one that fails, so its torrent is no longer complete; the downloaders'
libtorrent refuses pieces that fail the torrent's hashes (total_failed_bytes); and a finished
file is compared with the uploaded object (byte for byte when its SHA-256 differs). A fault
may slow a download, never fail it: a download not done within DL_TIMEOUT s fails the soak.

Bounds, sampled all along (every 0.2 s) and at the end:
- the disk cache directory's files (temporaries included: a write reserves its room first)
  never hold more than disk_cache_max (docs/DESIGN.md §15);
- the daemon's peak RSS (VmHWM) stays within the memory budget of docs/DESIGN.md §16: the
  block cache (16 MiB) plus two blocks (1 MiB each) per concurrent reader, the readers being
  libfuse's worker threads (at most 10), so 36 MiB of block buffers; plus 64 MiB for all the
  rest the daemon holds whatever the load: its code and libraries (libcurl, OpenSSL, sqlite,
  libfuse), the eight fetchers' and the FUSE threads' stacks, malloc's per-thread arenas,
  sqlite's page cache, the disk cache's index (about 80 bytes a file), listings and the open
  torrents (about 20 bytes a piece): 100 MiB (its RSS right after mounting is 13 MiB; the
  rest is slack for malloc's arenas and fragmentation). Not checked on a sanitizer build, whose
  quarantine alone keeps 256 MiB of freed memory.

Prints one summary line; exits 1 on a wrong byte, a stalled download, an RSS or disk cache
over its bound, a dead daemon or a sanitizer report in its log.

Usage: tests/soak/seedbox_soak.py [--seconds N] (default 600). S3TORRENT and S3TORRENTFS name
the binaries (default build/)."""
import argparse
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import libtorrent as lt  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402
from mount import FS, Mount  # noqa: E402
from services import (S3, Opentracker, Qbittorrent, aws_env, content, free_port,  # noqa: E402
                      libtorrent_download, proc_memory, read_metrics, wait_for)

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))
BUCKET = "seedboxsoak"
PREFIX = "seed/"
OBJECTS = 50
# 256 KiB to 3.3 MiB, 89 MiB in all: more than both caches together
SIZES = [262144 + i * 65536 + i for i in range(OBJECTS)]
MIB = 1048576
BLOCK_CACHE = 16 * MIB
DISK_CACHE_MAX = 24 * MIB
FUSE_THREADS = 10  # libfuse 3.12+'s default max_threads for fuse_loop_mt
RSS_BOUND = BLOCK_CACHE + 2 * MIB * FUSE_THREADS + 64 * MIB
DOWNLOADERS = 3
DL_TIMEOUT = 180  # seconds one download may take, faults and all
SLOW = 30  # a download that took longer is described on stderr
ROTATE_EVERY, ROTATE = 10, 5
EVICT_EVERY = 2
USER, PASSWORD = "soak", "soak pa55 w0rd"
with open(FS, "rb") as _f:
    SANITIZED = b"__asan_init" in _f.read()


def dir_bytes(path):
    """Bytes of the files in path. One listing (a single getdents for a directory this small)
    is a snapshot of the names; a file evicted before its stat is not counted, and one written
    meanwhile is not in the listing, so the sum never exceeds what was there at one moment."""
    total = 0
    for name in os.listdir(path):
        try:
            total += os.stat(os.path.join(path, name)).st_size
        except FileNotFoundError:
            pass
    return total


def wrong_bytes(path, want):
    """Bytes of the file at path that differ from want (a missing or extra byte counts)."""
    with open(path, "rb") as f:
        got = f.read()
    return sum(a != b for a, b in zip(got, want)) + abs(len(got) - len(want))


class Soak:
    """The services of one run, started in order and stopped in reverse by stop()."""

    def __init__(self, work):
        self.work = work
        self.s3 = self.proxy = self.mnt = self.tracker = self.qbt = None
        self.lock = threading.Lock()
        self.stats = {"downloads": 0, "bytes": 0, "wrong": 0, "stalled": 0, "slowest": 0.0,
                      "rotations": 0, "resumed": 0, "evictions": 0, "evict_errors": 0,
                      "disk_peak": 0}
        self.problems = []  # what fails the soak, as it happened
        self.inflight = {}  # key -> downloads of it running now
        self.rotating = set()  # keys qBittorrent is dropping and getting again
        self.refused = {}  # qBittorrent's id -> bytes its piece checks refused

    def start(self):
        self.s3 = S3(buckets=(BUCKET,))
        up = os.path.join(self.work, "up")
        os.mkdir(up)
        self.data, self.digest = {}, {}
        for i, size in enumerate(SIZES):
            key = f"{PREFIX}obj{i:02d}.bin"
            self.data[key] = content(size, f"seedbox-soak{i}")
            self.digest[key] = hashlib.sha256(self.data[key]).hexdigest()
            with open(os.path.join(up, os.path.basename(key)), "wb") as f:
                f.write(self.data[key])
        # one aws CLI for all (it uploads in parallel): 50 of them take half a minute
        self.s3.aws("s3", "cp", "--recursive", "--only-show-errors", up,
                    f"s3://{BUCKET}/{PREFIX}")
        subprocess.run(["rm", "-rf", up], check=True)
        self.proxy = FaultProxy(self.s3.port, seed=11, methods=("GET", "HEAD"),
                                faults={"slowdown": 0.025, "internal": 0.025, "reset": 0.01,
                                        "delay": 0.02}, delay_s=1.0)
        # the tracker's URL goes into the torrents before it starts: its whitelist needs them
        tracker_port = free_port()
        tracker_url = f"http://127.0.0.1:{tracker_port}/announce"
        self.disk_cache = os.path.join(self.work, "disk-cache")
        self.mfile = os.path.join(self.work, "metrics.prom")
        self.mnt = Mount(self.proxy.url, BUCKET, options=[
            f"trackers={tracker_url}", f"block_cache={BLOCK_CACHE}",
            f"disk_cache={self.disk_cache}", f"disk_cache_max={DISK_CACHE_MAX}",
            f"metrics_file={self.mfile}", "metrics_interval=5"])
        # the mount's own torrents, made through the faults: the ones qBittorrent gets
        self.ti = {}
        for key in self.data:
            with open(self.mnt.path(key + ".torrent"), "rb") as f:
                self.ti[key] = lt.torrent_info(lt.bdecode(f.read()))
        self.tid = {k: str(ti.info_hashes().v1) for k, ti in self.ti.items()}
        self.key_of = {t: k for k, t in self.tid.items()}
        self.tracker = Opentracker(self.work, list(self.tid.values()), tracker_port)
        self.qbt = Qbittorrent(self.work, USER, PASSWORD)
        self.seed(f"s3://{BUCKET}/{PREFIX}")
        for t in self.tid.values():
            wait_for(f"qBittorrent seeding {self.key_of[t]}", lambda: self.qbt.seeding(t),
                     self.qbt.logs, timeout=DL_TIMEOUT)

    def seed(self, *uris):
        """`s3torrent seed --client qbittorrent` of uris: each must be added."""
        p = subprocess.run([S3T, "seed", "--client", "qbittorrent", "--rpc", self.qbt.url,
                            "--endpoint-url", self.proxy.url, "--mount-root", self.mnt.point,
                            *uris], env=aws_env({"QBITTORRENT_USERNAME": USER,
                                                 "QBITTORRENT_PASSWORD": PASSWORD}),
                           capture_output=True, text=True, timeout=DL_TIMEOUT)
        want = OBJECTS if uris[0].endswith("/") else len(uris)
        if p.returncode != 0 or p.stdout.count(": added (") != want:
            raise AssertionError(f"seed: exit {p.returncode}\n{p.stdout}{p.stderr}")

    def fail(self, what):
        print(f"seedbox soak: {what}", file=sys.stderr, flush=True)
        with self.lock:
            self.problems.append(what)

    def guarded(self, fn, *args):
        """Runs a thread's body; an exception it raises fails the soak instead of ending the
        thread unseen."""
        def run():
            try:
                fn(*args)
            except Exception as e:
                self.fail(f"{fn.__name__}: {e!r}")
        return threading.Thread(target=run)

    def downloader(self, n, stop):
        rng = random.Random(n)
        keys = sorted(self.data)
        peer = ("127.0.0.1", self.qbt.peer_port)
        while time.monotonic() < stop:
            with self.lock:
                key = rng.choice([k for k in keys if k not in self.rotating])
                self.inflight[key] = self.inflight.get(key, 0) + 1
            save = tempfile.mkdtemp(prefix=f"dl{n}-", dir=self.work)
            # it finds qBittorrent through the tracker, or dials it when the tracker has no
            # peer yet (a torrent just added again); it never unchokes a peer, so another
            # downloader's bytes all come from qBittorrent
            t0 = time.monotonic()
            st = libtorrent_download(self.ti[key], save, DL_TIMEOUT, peers=[peer],
                                     settings={"unchoke_slots_limit": 0})
            took = time.monotonic() - t0
            with self.lock:
                self.inflight[key] -= 1
            if took > SLOW:  # not a failure: what it looked like, for whoever reads the log
                print(f"seedbox soak: {key} took {took:.0f} s: {st.num_peers} peers, "
                      f"{st.total_payload_download} bytes received, "
                      f"{st.total_redundant_bytes} redundant; qBittorrent: "
                      f"{self.qbt.torrents(hashes=self.tid[key])}", file=sys.stderr, flush=True)
            wrong = st.total_failed_bytes
            if not st.is_seeding:
                self.fail(f"{key}: not downloaded within {DL_TIMEOUT} s (progress "
                          f"{st.progress:.3f}, {st.num_peers} peers)")
                with self.lock:
                    self.stats["stalled"] += 1
            else:
                path = os.path.join(save, os.path.basename(key))
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    h.update(f.read())
                if h.hexdigest() != self.digest[key]:
                    wrong += wrong_bytes(path, self.data[key])
            if wrong:
                self.fail(f"{key}: {wrong} wrong bytes")
            with self.lock:
                self.stats["wrong"] += wrong
                if st.is_seeding:
                    self.stats["downloads"] += 1
                    self.stats["bytes"] += len(self.data[key])
                    self.stats["slowest"] = max(self.stats["slowest"], took)
            subprocess.run(["rm", "-rf", save], check=True)

    def check_client(self):
        """Resumes the torrents qBittorrent stopped on a read error; counts the bytes of those
        it no longer has whole: added without a check, it checks a piece the first time a peer
        asks for it, and one that fails (bytes read from the mount unlike the object's) is
        dropped and left to download, never sent."""
        errored = []
        for t in self.qbt.torrents():
            if t["state"] == "error":
                errored.append(t["hash"])
            elif t["progress"] < 1 and not t["state"].startswith("checking"):
                if t["hash"] not in self.refused:
                    self.fail(f"{self.key_of[t['hash']]}: qBittorrent's piece check refused "
                              f"{t['amount_left']} bytes read from the mount")
                self.refused[t["hash"]] = max(self.refused.get(t["hash"], 0), t["amount_left"])
        if errored:
            print(f"seedbox soak: qBittorrent stopped on errors: {errored}", file=sys.stderr)
            self.qbt.call("torrents/resume", {"hashes": "|".join(errored)})
            self.stats["resumed"] += len(errored)

    def rotator(self, stop):
        """Every ROTATE_EVERY s: checks the client's torrents (check_client), and has it drop
        ROTATE idle torrents (files kept) that `s3torrent seed` then adds again."""
        rng = random.Random(99)
        while time.monotonic() < stop:
            time.sleep(min(ROTATE_EVERY, max(0, stop - time.monotonic())))
            if time.monotonic() >= stop:
                break
            self.check_client()
            with self.lock:
                idle = [k for k in sorted(self.data) if not self.inflight.get(k)]
                picked = rng.sample(idle, min(ROTATE, len(idle)))
                self.rotating.update(picked)
            try:
                self.qbt.call("torrents/delete", {"hashes": "|".join(self.tid[k] for k in picked),
                                                  "deleteFiles": "false"})
                wait_for("qBittorrent dropping the torrents",
                         lambda: not self.qbt.torrents(hashes="|".join(
                             self.tid[k] for k in picked)), self.qbt.logs, timeout=60)
                self.seed(*(f"s3://{BUCKET}/{k}" for k in picked))
                # complete again; not waiting for its announce (tens of seconds after a stop):
                # a downloader dials qBittorrent meanwhile
                for k in picked:
                    wait_for(f"qBittorrent seeding {k} again",
                             lambda: self.qbt.seeding(self.tid[k], announced=False),
                             self.qbt.logs, timeout=DL_TIMEOUT)
                self.stats["rotations"] += 1
            except (AssertionError, OSError) as e:
                self.fail(f"re-adding {picked}: {e}")
            with self.lock:
                self.rotating.difference_update(picked)

    def evictor(self, stop):
        """Every EVICT_EVERY s, drops the kernel's page cache of every object in the mount, as
        memory pressure on a host seeding terabytes would: an open of a FUSE file without
        keep_cache invalidates its pages, those qBittorrent maps included, and the advice drops
        what is left. So qBittorrent's next read of a piece reaches the daemon."""
        while time.monotonic() < stop:
            for key in self.data:
                try:
                    fd = os.open(self.mnt.path(key), os.O_RDONLY)
                except OSError:  # an S3 fault the daemon gave up on: the next round
                    self.stats["evict_errors"] += 1
                    continue
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                os.close(fd)
            self.stats["evictions"] += 1
            time.sleep(min(EVICT_EVERY, max(0, stop - time.monotonic())))

    def sampler(self, stop):
        """The daemon's RSS and the disk cache's bytes, every 0.2 s."""
        pid = self.mnt.proc.pid
        while time.monotonic() < stop:
            try:
                rss = proc_memory(pid)["VmRSS"]
            except (OSError, KeyError):
                self.fail("s3torrentfs is gone")
                return
            disk = dir_bytes(self.disk_cache)
            with self.lock:
                self.stats["disk_peak"] = max(self.stats["disk_peak"], disk)
            if disk > DISK_CACHE_MAX:
                self.fail(f"the disk cache holds {disk} bytes, over its cap {DISK_CACHE_MAX}")
            if rss > RSS_BOUND and not SANITIZED:
                self.fail(f"s3torrentfs's RSS is {rss / MIB:.1f} MiB, over {RSS_BOUND / MIB:.0f}")
            time.sleep(0.2)

    def stop(self):
        """Stops everything; returns the daemon's log lines no soak expects."""
        problems = []
        for d in (self.qbt, self.tracker):  # qBittorrent holds files of the mount open
            if d:
                d.stop()
        if self.mnt:
            problems = self.mnt.stop()  # writes the metrics file a last time
        if self.proxy:
            self.proxy.stop()
        if self.s3:
            self.s3.stop()
        return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=600)
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="seedbox-soak-")
    # opentracker and qBittorrent, started as root, may read in there as another user
    os.chmod(tmp.name, 0o755)
    s = Soak(tmp.name)
    try:
        s.start()
        t0 = time.monotonic()
        stop = t0 + args.seconds
        threads = [s.guarded(s.downloader, i, stop) for i in range(DOWNLOADERS)]
        threads += [s.guarded(f, stop) for f in (s.rotator, s.evictor, s.sampler)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - t0
        s.check_client()
        alive = s.mnt.proc.poll() is None
        hwm = proc_memory(s.mnt.proc.pid)["VmHWM"] if alive else 0
        disk_end = dir_bytes(s.disk_cache)
    finally:
        logged = s.stop()
        m = read_metrics(s.mfile) if s.mnt else {}  # written a last time at unmount
        tmp.cleanup()
    st = s.stats
    st["disk_peak"] = max(st["disk_peak"], disk_end)
    fetched = m.get("s3torrentfs_data_fetched_bytes_total", 0)
    served = m.get('s3torrentfs_read_bytes_total{file="data"}', 0)
    refused = sum(s.refused.values())
    disk_hits = m.get('s3torrentfs_block_cache_hits_total{tier="disk"}', 0)
    bound = "not checked: sanitizer build" if SANITIZED else f"bound {RSS_BOUND / MIB:.0f}"
    print(f"seedbox soak: {took:.0f} s, {DOWNLOADERS} downloaders, {OBJECTS} torrents seeded by "
          f"qBittorrent from the mount: {st['downloads']} downloads, "
          f"{st['bytes'] / MIB:.0f} MiB verified, {st['wrong'] + refused} wrong bytes ({refused} "
          f"refused by qBittorrent's piece checks, {st['wrong']} by the downloaders'), "
          f"{st['stalled']} stalled, the slowest took {st['slowest']:.1f} s; "
          f"{s.proxy.counts['requests']} S3 requests, "
          f"{s.proxy.counts['faults']} faults injected {s.proxy.injected}; "
          f"{st['rotations'] * ROTATE} torrents dropped and added again, {st['resumed']} resumed "
          f"after an error, page cache dropped {st['evictions']} times ({st['evict_errors']} "
          f"opens failed); s3torrentfs: peak RSS {hwm / MIB:.1f} MiB ({bound}), "
          f"disk cache peak {st['disk_peak'] / MIB:.1f} MiB (cap {DISK_CACHE_MAX / MIB:.0f}, "
          f"{m.get('s3torrentfs_disk_cache_evictions_total', 0):.0f} evictions, "
          f"{disk_hits:.0f} hits), "
          f"S3 data fetched {fetched / MIB:.0f} MiB for {served / MIB:.0f} MiB read from the "
          f"mount, {m.get('s3torrentfs_s3_retries_total', 0):.0f} S3 retries", flush=True)
    if hwm > RSS_BOUND and not SANITIZED:
        s.problems.append(f"peak RSS {hwm / MIB:.1f} MiB over {RSS_BOUND / MIB:.0f} MiB")
    unexpected = [p for p in logged if "Sanitizer" in p or "runtime error" in p]
    if s.problems or unexpected or not alive or st["downloads"] == 0:
        print(f"seedbox soak: FAILED (daemon alive: {alive}; {s.problems[:5]} {unexpected[:5]})",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
