#!/usr/bin/python3
"""The disk block cache (docs/DESIGN.md §15) behind `s3torrent serve --disk-cache` and the mount's
-o disk_cache, on s3rver through a proxy that counts the GETs of object data:
- An object larger than the memory cache, read once, then again after a restart (serve) or a
  remount with the same directory: the same bytes and not one GET of data; /metrics counts the
  disk hits and writes.
- A cache file with a flipped byte and one truncated: the bytes read are still right, the two
  blocks are fetched again, and /metrics (or the daemon's log) counts them as corrupt.
- The directory stays under --disk-cache-max (the sum of its files' sizes); it is 0700 and its
  files 0600; a directory others may write to is refused with one line.
S3TORRENT and S3TORRENTFS name the binaries under test."""
import hashlib
import http.client
import os
import re
import stat
import subprocess
import tempfile
import threading
import unittest

from faultproxy import FaultProxy
from mount import Mount
from services import S3, aws_env, content, daemon_log, free_port, wait_for, wait_port

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))
BUCKET = "diskbucket"
TIMEOUT = 120
MiB = 1048576


class DataGets:
    """A proxy in front of S3 that counts GETs of object data (not listings or HEADs)."""

    def __init__(self, s3):
        self.n, self.lock = 0, threading.Lock()
        self.proxy = FaultProxy(s3.port, hook=self.hook)
        self.url = self.proxy.url

    def hook(self, method, path, headers):
        if method == "GET" and "?" not in path:
            with self.lock:
                self.n += 1

    def count(self):
        with self.lock:
            return self.n


def cache_files(d):
    return sorted(os.path.join(d, n) for n in os.listdir(d))


def dir_bytes(d):
    return sum(os.stat(p).st_size for p in cache_files(d))


def damage_two(d):
    """Flips a byte in the data of one cache file and truncates another."""
    files = cache_files(d)
    with open(files[0], "r+b") as f:
        f.seek(-1000, os.SEEK_END)
        b = f.read(1)
        f.seek(-1000, os.SEEK_END)
        f.write(bytes([b[0] ^ 0x55]))
    os.truncate(files[1], os.stat(files[1]).st_size // 2)


class Serve(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="disk-")
        cls.s3 = S3(buckets=(BUCKET,))
        cls.gets = DataGets(cls.s3)
        cls.data = content(20 * MiB + 7, "d")  # more than the 16M memory cache
        path = os.path.join(cls.tmp.name, "up.bin")
        with open(path, "wb") as f:
            f.write(cls.data)
        cls.s3.put(BUCKET, "big.bin", path)

    @classmethod
    def tearDownClass(cls):
        cls.gets.proxy.stop()
        cls.s3.stop()
        cls.tmp.cleanup()

    def serve(self, cache, *extra):
        """Starts serve over the counting proxy; returns (process, port, log)."""
        port, log = free_port(), daemon_log()
        proc = subprocess.Popen(
            [S3T, "serve", "--endpoint-url", self.gets.url, "--listen", f"127.0.0.1:{port}",
             "--no-cache", "--block-cache", "16M", "--disk-cache", cache, *extra, BUCKET],
            env=aws_env(), stdout=log, stderr=subprocess.STDOUT)
        wait_port(port, proc, "s3torrent serve")
        return proc, port, log

    def stop(self, proc, log):
        proc.terminate()
        rc = proc.wait(timeout=30)
        log.seek(0)
        text = log.read().decode(errors="replace")
        log.close()
        self.assertEqual(rc, 0, text[-2000:])
        self.assertNotIn("Sanitizer", text)
        self.assertNotIn("runtime error", text)
        return text

    def get(self, port, target):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        c.request("GET", target)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    def download(self, port):
        status, body = self.get(port, f"/{BUCKET}/big.bin")
        self.assertEqual(status, 200)
        self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(self.data).hexdigest())

    def metrics(self, port):
        _, body = self.get(port, "/metrics")
        return {m.group(1): int(m.group(2)) for m in
                re.finditer(r"^s3torrent_serve_(\w+)_total (\d+)$", body.decode(), re.M)}

    def test_restart_reads_no_data_from_s3(self):
        cache = os.path.join(self.tmp.name, "blocks")
        proc, port, log = self.serve(cache)
        try:
            self.download(port)
            # blocks are written after they are sent: wait for the last writes
            wait_for("21 blocks written", lambda: self.metrics(port)["disk_cache_writes"] == 21)
            # every byte came from S3 once: read-ahead past the memory cache found the rest
            # on disk
            self.assertEqual(self.metrics(port)["store_bytes"],
                             len(self.data))
        finally:
            self.stop(proc, log)
        self.assertEqual(stat.S_IMODE(os.stat(cache).st_mode), 0o700)
        files = cache_files(cache)
        self.assertEqual(len(files), 21)
        for p in files:
            self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600)

        before = self.gets.count()
        proc, port, log = self.serve(cache)
        try:
            self.download(port)
            self.download(port)  # the memory cache holds 16 of 21 blocks: the disk again
            m = self.metrics(port)
        finally:
            self.stop(proc, log)
        self.assertEqual(self.gets.count(), before)
        self.assertEqual(m["store_reads"], 0)
        self.assertGreaterEqual(m["disk_cache_hits"], 21)
        self.assertEqual(m["disk_cache_corrupt"], 0)

        damage_two(cache)
        before = self.gets.count()
        proc, port, log = self.serve(cache)
        try:
            self.download(port)
            wait_for("2 blocks written again",
                     lambda: self.metrics(port)["disk_cache_writes"] == 2)
            m = self.metrics(port)
        finally:
            text = self.stop(proc, log)
        self.assertEqual(m["disk_cache_corrupt"], 2)
        # fetched again: one GET each, or one for both when read-ahead runs hold both
        self.assertIn(m["store_reads"], (1, 2))
        self.assertEqual(self.gets.count(), before + m["store_reads"])
        self.assertEqual(text.count("is damaged; deleted"), 2, text[-2000:])
        self.assertEqual(len(cache_files(cache)), 21)

    def test_stays_under_its_cap(self):
        cache = os.path.join(self.tmp.name, "small")
        proc, port, log = self.serve(cache, "--disk-cache-max", "8M")
        try:
            self.download(port)
            self.download(port)
            m = self.metrics(port)
        finally:
            self.stop(proc, log)
        self.assertLessEqual(dir_bytes(cache), 8 * MiB)
        self.assertGreaterEqual(len(cache_files(cache)), 6)
        self.assertGreater(m["disk_cache_evictions"], 0)
        # a lower cap at the next start (from a config file) evicts down to it
        conf = os.path.join(self.tmp.name, "serve.conf")
        with open(conf, "w") as f:
            f.write("disk_cache_max = 4M\n")
        proc, port, log = self.serve(cache, "--config", conf)
        self.stop(proc, log)
        self.assertLessEqual(dir_bytes(cache), 4 * MiB)

    def test_unsafe_directory_is_refused(self):
        cache = os.path.join(self.tmp.name, "open")
        os.mkdir(cache)
        os.chmod(cache, 0o777)
        p = subprocess.run([S3T, "serve", "--endpoint-url", self.gets.url, "--listen",
                            f"127.0.0.1:{free_port()}", "--no-cache", "--disk-cache", cache,
                            BUCKET], env=aws_env(), capture_output=True, text=True,
                           timeout=TIMEOUT)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stderr, f"s3torrent: disk cache {cache}: group or others may write "
                         "to it (mode 777); chmod 700 it\n")
        p = subprocess.run([S3T, "serve", "--disk-cache-max", "1M", BUCKET], env=aws_env(),
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--disk-cache-max must be at least 4M", p.stderr)


class Fs(unittest.TestCase):
    """The mount with -o disk_cache: a remount reads the file again with no GET of data."""

    def test_remount_reads_no_data_from_s3(self):
        with tempfile.TemporaryDirectory(prefix="disk-fs-") as tmp:
            s3 = S3(buckets=(BUCKET,))
            gets = DataGets(s3)
            data = content(10 * MiB + 3, "f")
            path = os.path.join(tmp, "up.bin")
            with open(path, "wb") as f:
                f.write(data)
            s3.put(BUCKET, "dir/f.bin", path)
            cache = os.path.join(tmp, "blocks")
            opts = [f"disk_cache={cache}", "disk_cache_max=64M", "block_cache=4M"]
            try:
                for round in ("first", "remount", "damaged"):
                    with self.subTest(round=round):
                        if round == "damaged":
                            damage_two(cache)
                        before = gets.count()
                        m = Mount(gets.url, BUCKET, options=opts)
                        try:
                            with open(m.path("dir/f.bin"), "rb") as f:
                                got = f.read()
                            log = m.output()
                        finally:
                            problems = m.stop()
                        self.assertEqual(problems, [])
                        self.assertEqual(hashlib.sha256(got).hexdigest(),
                                         hashlib.sha256(data).hexdigest())
                        used = gets.count() - before
                        if round == "first":
                            self.assertGreater(used, 0)
                        elif round == "remount":
                            self.assertEqual(used, 0)
                        else:  # the two damaged blocks, again (one GET when in one run)
                            self.assertIn(used, (1, 2))
                            self.assertEqual(log.count("is damaged; deleted"), 2, log)
                        self.assertEqual(len(cache_files(cache)), 11)
                        self.assertEqual(stat.S_IMODE(os.stat(cache).st_mode), 0o700)
            finally:
                gets.proxy.stop()
                s3.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
