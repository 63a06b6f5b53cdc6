#!/usr/bin/python3
"""Multi-file torrents downloaded from web seeds alone (docs/DESIGN.md §3, §14; issue 16), on S3
(s3rver, or RGW with S3T_S3=rgw, where the bucket is private and the server the only way in).
A recording session is a prefix of several files: nested directories, a space, '+' and unicode
in names, an empty file, sizes that are no multiple of the piece length. No peer exists and the
only tracker is a closed loopback port: every byte comes from the web seed (BEP 19: the client
adds the torrent's name and each file's path to the url-list's directory URL).
- `s3torrent serve` answers GET /BUCKET/PREFIX/?torrent with the prefix's multi-file torrent:
  the info-hash of `create s3://BUCKET/PREFIX/` with the same options, its web seed the server
  pinned to the newest Last-Modified listed (/~m/SECONDS/BUCKET/ and the prefix's parent); a
  second request is answered from the cache (nothing hashed).
- python3-libtorrent and qbittorrent-nox (which honour BEP 47 pads) download the padded hybrid
  torrent from the server; aria2c downloads the unpadded v1 one; sha256 of every file equal,
  the empty file there and empty.
- A file overwritten after the torrent was made: its pinned URL answers 410 and no byte of the
  new content; the other files still download; the new torrent's pin serves the new bytes.
- `create --webseed URL/BUCKET/` of a prefix with the server's plain (unpinned) object URLs as
  the base: libtorrent downloads the hybrid torrent, aria2c the v1 one, sha256 equal.
Every wait polls a condition, bounded. S3TORRENT names the binary under test."""
import email.utils
import hashlib
import os
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import libtorrent as lt

from services import (S3, aws_env, content, free_port, libtorrent_download, sha256_file,
                      wait_for)
from test_serve import S3T, Server, download_aria2c, metric_of, quote_key
from test_serve_clients import Qbt

BUCKET = "sessionbucket"
PREFIX = "shows/session-1/"
NAME = "session-1"
PIECE = "64K"
FILES = {  # path below the prefix: size
    "cam/front view.mp4": 700001,
    "cam/été 录音/track 1 +.wav": 300007,
    "a/b/c/deep.bin": 1048576 + 3,
    "notes.txt": 1234,
    "empty.txt": 0,
}
TIMEOUT = 120  # seconds; every wait is bounded

S = {}  # the module's S3, servers and objects (setUpModule)


def setUpModule():
    S["tmp"] = tempfile.TemporaryDirectory(prefix="serve-sessions-")
    S["s3"] = S3(buckets=(BUCKET,))  # private on RGW
    S["data"] = {}
    for i, (path, size) in enumerate(FILES.items()):
        put(PREFIX + path, content(size, f"s{i}"))
    # a tracker no one answers: a loopback port closed (free_port's socket is gone)
    S["dead"] = f"http://127.0.0.1:{free_port()}/announce"
    S["cache"] = os.path.join(S["tmp"].name, "cache.db")
    S["srv"] = {
        meta: Server(S["s3"], [BUCKET], "--meta-version", meta, "--piece-length", PIECE,
                     "--tracker", S["dead"], *(("--cache", S["cache"]) if meta == "hybrid" else ()))
        for meta in ("v1", "hybrid")}


def tearDownModule():
    logs = []
    for meta, srv in S.get("srv", {}).items():
        rc, log = srv.stop()
        if rc != 0:
            logs.append(f"serve --meta-version {meta} exited {rc}: {log[-2000:]}")
    S["s3"].stop()
    S["tmp"].cleanup()
    assert not logs, "\n".join(logs)


def put(key, data):
    path = os.path.join(S["tmp"].name, "up.bin")
    with open(path, "wb") as f:
        f.write(data)
    S["s3"].put(BUCKET, key, path)
    S["data"][key] = data


def session_torrent(meta, prefix=PREFIX):
    status, h, body = S["srv"][meta].request("GET", f"/{BUCKET}/{quote_key(prefix)}?torrent")
    assert status == 200 and h["content-type"] == "application/x-bittorrent", (status, body)
    return body


def create(*args):
    p = subprocess.run([S3T, "create", "--endpoint-url", S["s3"].url, "--no-cache",
                        "--piece-length", PIECE, "--tracker", S["dead"], "-o", "-", *args],
                       env=aws_env(), capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


def files_of(ti):
    """{path below the torrent's folder: size} of ti's files, pads left out, and how many pads."""
    fs, out, pads = ti.files(), {}, 0
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_storage.flag_pad_file:
            pads += 1
            continue
        out[fs.file_path(i).split(os.sep, 1)[1].replace(os.sep, "/")] = fs.file_size(i)
    return out, pads


class Sessions(unittest.TestCase):
    def assert_files(self, folder):
        """Every file of the session under folder, sha256 equal (the empty one there, empty)."""
        for path in FILES:
            with self.subTest(path=path):
                self.assertEqual(sha256_file(os.path.join(folder, *path.split("/"))),
                                 hashlib.sha256(S["data"][PREFIX + path]).hexdigest())

    def libtorrent(self, body):
        ti = lt.torrent_info(lt.bdecode(body))
        save = tempfile.mkdtemp(dir=S["tmp"].name)
        st = libtorrent_download(ti, save, TIMEOUT, check_errors=True)
        self.assertTrue(st.is_seeding, "libtorrent did not complete from the web seed")
        self.assert_files(os.path.join(save, ti.name()))

    def aria2c(self, body):
        t = os.path.join(tempfile.mkdtemp(dir=S["tmp"].name), "s.torrent")
        with open(t, "wb") as f:
            f.write(body)
        p, dl = download_aria2c(t, S["tmp"].name)
        self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
        self.assert_files(os.path.join(dl, NAME))

    def newest(self, srv, prefix):
        """The newest Last-Modified of the session's objects, as the server HEADs them."""
        times = []
        for path in FILES:
            status, h, _ = srv.request("HEAD", f"/{BUCKET}/{quote_key(prefix + path)}")
            self.assertEqual(status, 200)
            times.append(int(email.utils.parsedate_to_datetime(h["last-modified"]).timestamp()))
        return max(times)

    def test_served_torrent_is_created_ones(self):
        for meta in ("v1", "hybrid"):
            with self.subTest(meta=meta):
                body = session_torrent(meta)
                ti = lt.torrent_info(lt.bdecode(body))
                made = lt.torrent_info(lt.bdecode(create("--meta-version", meta,
                                                         f"s3://{BUCKET}/{PREFIX}")))
                self.assertEqual(str(ti.info_hashes().v1), str(made.info_hashes().v1))
                if meta == "hybrid":
                    self.assertEqual(str(ti.info_hashes().v2), str(made.info_hashes().v2))
                self.assertEqual(ti.name(), NAME)
                files, pads = files_of(ti)
                self.assertEqual(files, FILES)
                # hybrid: every file but the last padded to a piece boundary (BEP 47)
                self.assertEqual(pads > 0, meta == "hybrid")
                seeds = [w.url if hasattr(w, "url") else w["url"] for w in ti.web_seeds()]
                self.assertEqual(len(seeds), 1, seeds)
                base = f"{S['srv'][meta].url}/~m/"
                self.assertTrue(seeds[0].startswith(base), seeds)
                pin, rest = seeds[0][len(base):].split("/", 1)
                self.assertEqual(rest, f"{BUCKET}/shows/")
                self.assertEqual(int(pin), self.newest(S["srv"][meta], PREFIX))

    def test_second_request_is_from_the_cache(self):
        srv = S["srv"]["hybrid"]
        first = session_torrent("hybrid")
        hashed = metric_of(srv, "s3torrent_serve_torrents_hashed_total")
        self.assertEqual(session_torrent("hybrid"), first)
        self.assertEqual(metric_of(srv, "s3torrent_serve_torrents_hashed_total"), hashed)

    def test_libtorrent_hybrid_from_serve(self):
        self.libtorrent(session_torrent("hybrid"))

    def test_qbittorrent_hybrid_from_serve(self):
        body = session_torrent("hybrid")
        v2 = str(lt.torrent_info(lt.bdecode(body)).info_hashes().v2)
        qb = Qbt("qbt-session", S["tmp"].name)
        try:
            save = tempfile.mkdtemp(dir=qb.dir)
            qb.add(body, save)
            t = wait_for(f"qBittorrent {qb.version} downloading the session",
                         lambda: qb.completed(lambda t: t.get("infohash_v2") == v2), qb.logs)
            self.assertEqual(os.path.realpath(t["content_path"]),
                             os.path.realpath(os.path.join(save, NAME)))
            self.assert_files(os.path.join(save, NAME))
        finally:
            qb.stop()

    def test_aria2c_v1_from_serve(self):
        self.aria2c(session_torrent("v1"))

    def test_plain_webseed_of_create(self):
        base = f"{S['srv']['v1'].url}/{BUCKET}/"  # the server's unpinned object URLs
        for meta in ("hybrid", "v1"):
            with self.subTest(meta=meta):
                body = create("--meta-version", meta, "--webseed", base,
                              f"s3://{BUCKET}/{PREFIX}")
                ti = lt.torrent_info(lt.bdecode(body))
                seeds = [w.url if hasattr(w, "url") else w["url"] for w in ti.web_seeds()]
                self.assertEqual(seeds, [base + "shows/"])
                if meta == "hybrid":
                    self.libtorrent(body)
                else:
                    self.aria2c(body)

    def test_changed_file_is_gone(self):
        prefix = "shows/session-2/"
        put(prefix + "one.bin", content(200003, "one"))
        put(prefix + "two.bin", content(100001, "two"))
        srv = S["srv"]["v1"]
        ti = lt.torrent_info(lt.bdecode(session_torrent("v1", prefix)))
        seed = [w.url if hasattr(w, "url") else w["url"] for w in ti.web_seeds()][0]
        pin = int(seed.split("/~m/", 1)[1].split("/", 1)[0])
        path = urllib.parse.urlsplit(seed).path
        one, two = f"{path}session-2/one.bin", f"{path}session-2/two.bin"
        status, _, body = srv.request("GET", one, {"Range": "bytes=0-99"})
        self.assertEqual((status, body), (206, S["data"][prefix + "one.bin"][:100]))
        # a Last-Modified after the pin: the clock past it (S3 dates are whole seconds)
        wait_for("the clock past the torrent's newest Last-Modified",
                 lambda: time.time() >= pin + 1.5)
        put(prefix + "one.bin", content(200003, "one, again"))
        status, _, body = srv.request("GET", one, {"Range": "bytes=0-99"})
        self.assertEqual(status, 410, body)
        self.assertNotIn(S["data"][prefix + "one.bin"][:100], body)
        status, _, body = srv.request("GET", two)
        self.assertEqual((status, body), (200, S["data"][prefix + "two.bin"]))
        # the new torrent pins the new time, and its URL gives the new bytes
        seed = [w.url if hasattr(w, "url") else w["url"]
                for w in lt.torrent_info(lt.bdecode(session_torrent("v1", prefix))).web_seeds()][0]
        self.assertGreater(int(seed.split("/~m/", 1)[1].split("/", 1)[0]), pin)
        status, _, body = srv.request("GET", urllib.parse.urlsplit(seed).path +
                                      "session-2/one.bin")
        self.assertEqual((status, body), (200, S["data"][prefix + "one.bin"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
