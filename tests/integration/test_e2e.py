#!/usr/bin/python3
"""End to end with real clients, on loopback. (The swarm, transmission-daemon seeding from the
mount through opentracker to aria2c, is test_seed.py.)
- Web seed only: a torrent made with --webseed pointing at s3rver's anonymous URL of the object;
  aria2c downloads it from S3 alone, with no tracker and no peer, for plain keys and for keys
  with spaces, '+' and unicode (the percent-encoding of the URL).
- Web seed only, every meta version: libtorrent downloads v1, v2 and hybrid torrents from S3
  alone (a v2 web seed is the key's directory URL); --name is refused where it would break it.
- Hybrid from the mount: the mount's k.torrent with meta_version=hybrid is loaded and fully
  checked by libtorrent against the data on the mount, and its magnet link (s3torrent magnet)
  gives libtorrent the same v1 and v2 info-hashes.
S3TORRENT and S3TORRENTFS name the binaries under test."""
import hashlib
import os
import subprocess
import tempfile
import unittest

import libtorrent as lt

from mount import Mount
from services import (S3, aws_env, content, free_port, libtorrent_check, libtorrent_download,
                      sha256_file)

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))
BUCKET = "e2ebucket"
TIMEOUT = 120  # seconds; every wait is bounded
KEYS = {
    "rec/plain.bin": 3 * 1048576 + 11,
    "rec/take one été 录音 +.bin": 2 * 1048576 + 5,
    "top level (1).bin": 70001,
}


class E2E(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="e2e-")
        cls.s3 = S3(buckets=(BUCKET,), public=True)  # aria2c reads the web seed anonymously
        cls.data = {}
        for i, (key, size) in enumerate(KEYS.items()):
            path = os.path.join(cls.tmp.name, "up.bin")
            cls.data[key] = content(size, i)
            with open(path, "wb") as f:
                f.write(cls.data[key])
            cls.s3.put(BUCKET, key, path)

    @classmethod
    def tearDownClass(cls):
        cls.s3.stop()
        cls.tmp.cleanup()

    def s3t(self, *args):
        p = subprocess.run([S3T, *args], env=aws_env(), capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout

    def test_web_seed_only(self):
        base = f"{self.s3.url}/{BUCKET}/"
        # a tracker that answers nothing (a closed port): the only source is the web seed
        dead_tracker = f"http://127.0.0.1:{free_port()}/announce"
        for key in KEYS:
            with self.subTest(key=key):
                t = os.path.join(self.tmp.name, "ws.torrent")
                self.s3t("create", "--endpoint-url", self.s3.url, "--webseed", base, "-t",
                         dead_tracker, "--piece-length", "256K", "-f", "-o", t,
                         f"s3://{BUCKET}/{key}")
                info = lt.torrent_info(t)
                urls = [w["url"] for w in info.web_seeds()]
                self.assertEqual(len(urls), 1)
                # the key, percent-encoded per segment: no raw space, '+' or non-ASCII byte
                self.assertTrue(urls[0].startswith(base))
                self.assertRegex(urls[0][len(base):], r"^[A-Za-z0-9._~%/-]+$")
                dl = tempfile.mkdtemp(dir=self.tmp.name)
                p = subprocess.run(
                    ["aria2c", "--seed-time=0", f"--dir={dl}", "--enable-dht=false",
                     "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
                     "--bt-tracker-connect-timeout=2", "--bt-tracker-timeout=2",
                     "--bt-stop-timeout=20",  # no progress for 20 s: give up, exit non-zero
                     "--listen-port", str(free_port()), "--summary-interval=0",
                     "--console-log-level=warn", "--allow-overwrite=true", t],
                    capture_output=True, text=True, timeout=TIMEOUT)
                self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
                got = os.path.join(dl, key.rsplit("/", 1)[-1])
                self.assertEqual(sha256_file(got), hashlib.sha256(self.data[key]).hexdigest())

    def test_web_seed_only_libtorrent_every_meta_version(self):
        """libtorrent reads a v2-only torrent as a directory: its web seed is the key's
        directory URL (ending in '/'), completed with the name; v1 and hybrid name the key."""
        base = f"{self.s3.url}/{BUCKET}/"
        for meta in ("v1", "v2", "hybrid"):
            for key in ("rec/take one été 录音 +.bin", "top level (1).bin"):
                with self.subTest(meta=meta, key=key):
                    t = self.s3t("create", "--endpoint-url", self.s3.url, "--webseed", base,
                                 "--meta-version", meta, "--piece-length", "64K", "-o", "-",
                                 f"s3://{BUCKET}/{key}")
                    ti = lt.torrent_info(lt.bdecode(t))
                    url = ti.web_seeds()[0]["url"]
                    if meta == "v2":
                        self.assertTrue(url.endswith("/"), url)
                    dl = tempfile.mkdtemp(dir=self.tmp.name)
                    st = libtorrent_download(ti, dl, TIMEOUT)
                    self.assertTrue(st.is_seeding, f"{meta} {url}: progress {st.progress}")
                    got = os.path.join(dl, key.rsplit("/", 1)[-1])
                    self.assertEqual(sha256_file(got), hashlib.sha256(self.data[key]).hexdigest())

    def test_v2_web_seed_needs_the_keys_name(self):
        p = subprocess.run([S3T, "create", "--endpoint-url", self.s3.url, "--webseed",
                            f"{self.s3.url}/{BUCKET}/", "--meta-version", "v2", "--name",
                            "other.bin", "-o", "-", f"s3://{BUCKET}/rec/plain.bin"],
                           env=aws_env(), capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stdout, "")
        self.assertIn("--name other.bin with --webseed and --meta-version v2", p.stderr)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)

    def test_hybrid_from_the_mount(self):
        key = "rec/take one été 录音 +.bin"
        m = Mount(self.s3.url, BUCKET, options=["meta_version=hybrid", "piece_length=64K"])
        try:
            tpath = m.path(key + ".torrent")
            with open(tpath, "rb") as f:
                torrent = f.read()
            self.assertEqual(torrent, self.s3t("create", "--endpoint-url", self.s3.url,
                                               "--meta-version", "hybrid", "--piece-length",
                                               "64K", "-o", "-", f"s3://{BUCKET}/{key}"))
            ti = lt.torrent_info(lt.bdecode(torrent))
            hashes = ti.info_hashes()
            self.assertTrue(hashes.has_v1() and hashes.has_v2())
            st = libtorrent_check(ti, os.path.dirname(m.path(key)), TIMEOUT)
            self.assertEqual(st.progress, 1.0)
            self.assertTrue(st.is_seeding)
            self.assertEqual(st.num_pieces, ti.num_pieces())

            # the magnet of the mounted torrent names the same torrent to libtorrent
            magnet = self.s3t("magnet", tpath).decode().strip()
            mp = lt.parse_magnet_uri(magnet)
            self.assertEqual(str(mp.info_hashes.v1), str(hashes.v1))
            self.assertEqual(str(mp.info_hashes.v2), str(hashes.v2))
            self.assertEqual(mp.name, key.rsplit("/", 1)[-1])
        finally:
            self.assertEqual(m.stop(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
