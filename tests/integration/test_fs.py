#!/usr/bin/python3
"""s3torrentfs mounted for real against s3rver: data reads back byte for byte, every synthetic
k.torrent equals `s3torrent create s3://...` and is checked by transmission-show and libtorrent
against the mounted data, one generation serves 32 concurrent readers, the cache survives a
remount, odd keys follow docs/DESIGN.md §5, and the mount refuses writes. S3TORRENT and S3TORRENTFS
name the binaries under test."""
import concurrent.futures
import errno
import hashlib
import os
import re
import signal
import stat
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

import libtorrent as lt

from faultproxy import FaultProxy
from mount import Mount
from services import S3, aws_env, libtorrent_check, read_metrics, wait_for

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))
BUCKET = "fsbucket"


def content(size, seed):
    block = bytes((i * 31 + seed) % 256 for i in range(65536))
    return (block * (size // len(block) + 1))[:size]


def create(endpoint, key, *opts):
    """The torrent `s3torrent create` makes of s3://BUCKET/key: what the mount must serve."""
    p = subprocess.run([S3T, "create", "--endpoint-url", endpoint, "-o", "-", *opts,
                        f"s3://{BUCKET}/{key}"], env=aws_env(), capture_output=True)
    if p.returncode != 0:
        raise AssertionError(f"s3torrent create {key}: {p.stderr.decode()}")
    return p.stdout


def object_gets():
    """A FaultProxy hook that records the key of every GET of object data (not listings), with
    the list it fills and the lock that guards it."""
    gets, lock = [], threading.Lock()

    def hook(method, path, headers):
        if method == "GET" and "?" not in path:
            with lock:
                gets.append(urllib.parse.unquote(path.split("/", 2)[2]))
    return gets, lock, hook


def bencode_date(torrent):
    """The creation date of a torrent's bytes (a field of its outer dict)."""
    i = torrent.index(b"13:creation datei") + len(b"13:creation datei")
    return int(torrent[i:torrent.index(b"e", i)])


def rd(path):
    with open(path, "rb") as f:
        return f.read()


OBJECTS = {
    "plain.bin": 3 * 1024 * 1024 + 17,
    "rec/with space.bin": 700000,
    "rec/plus+sign.bin": 123457,
    "rec/été 录音.bin": 99999,
    "rec/deep/er/small.bin": 1,
    # s3rver lists a prefix as a CommonPrefix only when an object sits right below it (real S3
    # does not need this): without it, "rec/deep/" would be missing from the "rec/" listing
    "rec/deep/mid.bin": 2,
    "big/forty.bin": 40 * 1024 * 1024 + 5,
    "empty.bin": 0,
    "c": 10,          # a file and a directory of the same name: the directory wins
    "c/inside.bin": 20,
    "real.bin": 5000,
    "real.bin.torrent": 0,    # replaced below by a real torrent object
}


class FsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = S3(buckets=(BUCKET,))
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data = {}
        for key, size in OBJECTS.items():
            path = os.path.join(cls.tmp.name, "up.bin")
            data = content(size, len(key))
            if key == "real.bin.torrent":
                data = b"d4:infod6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:" + \
                    b"x" * 20 + b"ee"
            with open(path, "wb") as f:
                f.write(data)
            cls.s3.put(BUCKET, key, path)
            cls.data[key] = data
        # a directory marker object
        cls.s3.aws("s3api", "put-object", "--bucket", BUCKET, "--key", "marked/")
        cls.proxy = FaultProxy(cls.s3.port)
        cls.cache = os.path.join(cls.tmp.name, "cache", "torrents.db")
        cls.mnt = Mount(cls.proxy.url, BUCKET, cache=cls.cache)

    @classmethod
    def tearDownClass(cls):
        problems = cls.mnt.stop()
        cls.proxy.stop()
        cls.s3.stop()
        cls.tmp.cleanup()
        # the daemon must not have logged an error no test asked for, nor a sanitizer report
        if problems or cls.mnt.proc.returncode != 0:
            raise AssertionError(f"daemon exit {cls.mnt.proc.returncode}: {problems}")

    def create(self, key):
        return create(self.s3.url, key)

    def test_data_reads_back(self):
        for key, data in self.data.items():
            if key in ("c",):
                continue
            with self.subTest(key=key[:40]):
                got = rd(self.mnt.path(key))
                self.assertEqual(hashlib.sha256(got).hexdigest(),
                                 hashlib.sha256(data).hexdigest())

    def test_random_reads_like_a_client(self):
        data = self.data["big/forty.bin"]
        with open(self.mnt.path("big/forty.bin"), "rb") as f:
            for off in (5 * 1048576, 17, 39 * 1048576 + 12345, 1048576 - 100, 40 * 1048576):
                f.seek(off)
                self.assertEqual(f.read(16384), data[off:off + 16384])

    def test_torrents_equal_create_and_stat(self):
        for key, data in self.data.items():
            # a real k.torrent object replaces the synthetic one (test_path_rules)
            if not data or key.endswith(".torrent") or key + ".torrent" in OBJECTS or key == "c":
                continue
            with self.subTest(key=key):
                path = self.mnt.path(key + ".torrent")
                size = os.stat(path).st_size
                got = rd(path)
                self.assertEqual(size, len(got))
                self.assertEqual(got, self.create(key))

    def test_clients_accept_the_mounted_torrent(self):
        t = self.mnt.path("rec/with space.bin.torrent")
        show = subprocess.run(["transmission-show", t], capture_output=True, text=True)
        self.assertEqual(show.returncode, 0, show.stderr)
        self.assertIn("Name: with space.bin", show.stdout)
        # read here, not by libtorrent: its call holds the GIL, and the proxy is a thread of ours
        st = libtorrent_check(lt.torrent_info(lt.bdecode(rd(t))), self.mnt.path("rec"))
        self.assertEqual(st.progress, 1.0)

    def test_reopen_reads_cached_blocks(self):
        key = "rec/plus+sign.bin"
        self.assertEqual(rd(self.mnt.path(key)), self.data[key])
        gets = []
        self.proxy.hook = lambda m, p, h: gets.append(p) if m == "GET" and "Range" in h else None
        try:
            # every open of the same version shares its cached blocks
            for _ in range(3):
                self.assertEqual(rd(self.mnt.path(key)), self.data[key])
        finally:
            self.proxy.hook = None
        self.assertEqual(gets, [])

    def test_single_flight(self):
        key = "big/forty.bin"
        gets = []
        lock = threading.Lock()

        def hook(method, path, headers):
            if method == "GET" and "forty.bin" in path and "Range" in headers:
                with lock:
                    gets.append(headers["Range"])

        self.proxy.hook = hook
        try:
            # what one generation costs: `s3torrent create` of the object through the proxy
            p = subprocess.run([S3T, "create", "--endpoint-url", self.proxy.url, "-o", "-",
                                f"s3://{BUCKET}/{key}"], env=aws_env(), capture_output=True)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            one = sorted(gets)
            gets.clear()
            with concurrent.futures.ThreadPoolExecutor(32) as ex:
                results = list(ex.map(lambda _: rd(self.mnt.path(key + ".torrent")), range(32)))
        finally:
            self.proxy.hook = None
        self.assertEqual(len(set(results)), 1)
        self.assertEqual(results[0], p.stdout)
        # 32 readers, one generation: the same ranged GETs as one create, not 32 times them
        self.assertGreater(len(one), 1)
        self.assertEqual(sorted(gets), one)

    def test_persistence_across_remount(self):
        keys = ["plain.bin", "rec/plus+sign.bin"]
        before = {k: rd(self.mnt.path(k + ".torrent")) for k in keys}
        m2proxy = FaultProxy(self.s3.port)
        objects = []
        m2proxy.hook = lambda method, path, h: objects.append(path) if (
            method == "GET" and "list-type" not in path) else None
        m2 = Mount(m2proxy.url, BUCKET, cache=self.cache)
        try:
            after = {k: rd(m2.path(k + ".torrent")) for k in keys}
        finally:
            problems = m2.stop()
            m2proxy.stop()
        self.assertEqual(problems, [])
        self.assertEqual(before, after)
        self.assertEqual(objects, [])

    def test_path_rules(self):
        names = set(os.listdir(self.mnt.path()))
        self.assertIn("c", names)
        self.assertTrue(os.path.isdir(self.mnt.path("c")))  # the directory wins
        self.assertIn("marked", names)
        self.assertEqual(os.listdir(self.mnt.path("marked")), [])
        self.assertNotIn("empty.bin.torrent", names)  # nothing to share
        self.assertIn("empty.bin", names)
        # the real torrent object is shown as it is, and there is no synthetic twin
        self.assertEqual(rd(self.mnt.path("real.bin.torrent")), self.data["real.bin.torrent"])
        self.assertNotIn("real.bin.torrent.torrent", names)
        rec = set(os.listdir(self.mnt.path("rec")))
        self.assertEqual(rec, {"with space.bin", "with space.bin.torrent", "plus+sign.bin",
                               "plus+sign.bin.torrent", "été 录音.bin", "été 录音.bin.torrent",
                               "deep"})

    def test_writes_are_refused(self):
        for action in (lambda: open(self.mnt.path("new.bin"), "wb"),
                       lambda: open(self.mnt.path("plain.bin"), "r+b"),
                       lambda: os.mkdir(self.mnt.path("newdir")),
                       lambda: os.unlink(self.mnt.path("plain.bin")),
                       lambda: os.rename(self.mnt.path("plain.bin"), self.mnt.path("x")),
                       lambda: os.chmod(self.mnt.path("plain.bin"), 0o777)):
            with self.assertRaises(OSError) as cm:
                action()
            self.assertIn(cm.exception.errno, (errno.EROFS, errno.EACCES))

    def test_missing_names(self):
        self.assertFalse(os.path.exists(self.mnt.path("no-such-file")))
        self.assertFalse(os.path.exists(self.mnt.path("rec/no/such")))


class ChangedObject(unittest.TestCase):
    def test_new_etag_new_torrent_after_ttl(self):
        s3 = S3(buckets=(BUCKET,))
        tmp = tempfile.TemporaryDirectory()
        path = os.path.join(tmp.name, "v.bin")
        m = None
        try:
            with open(path, "wb") as f:
                f.write(content(300000, 1))
            s3.put(BUCKET, "v.bin", path)
            m = Mount(s3.url, BUCKET, options=["ttl=1", "negative_ttl=1"])
            t = m.path("v.bin.torrent")
            first = rd(t)
            with open(path, "wb") as f:
                f.write(content(450000, 2))  # another version, another size
            s3.put(BUCKET, "v.bin", path)
            want = subprocess.run([S3T, "create", "--endpoint-url", s3.url, "-o", "-",
                                   f"s3://{BUCKET}/v.bin"], env=aws_env(),
                                  capture_output=True).stdout
            # once the TTL has passed, stat and content move together to the new version
            deadline = time.monotonic() + 30
            while os.stat(m.path("v.bin")).st_size != 450000:
                self.assertLess(time.monotonic(), deadline, "the new version never showed")
                time.sleep(0.2)
            got = rd(t)
            self.assertNotEqual(got, first)
            self.assertEqual(got, want)
            self.assertEqual(os.stat(t).st_size, len(got))
            self.assertEqual(rd(m.path("v.bin")), content(450000, 2))
        finally:
            if m:
                self.assertEqual(m.stop(), [])
            s3.stop()
            tmp.cleanup()


DIRS_BUCKET = "fsdirs"

# the objects of the directory-torrent tests: a session of several files (nested, a space and
# unicode, an empty file), a nested directory (depth 2), a directory
# with a real DIR.torrent object, one with only an empty object, and one changed by a test
SESSION = {
    "sess/cam1.bin": 300001,
    "sess/audio/track 1.wav": 70000,
    "sess/été/notes.txt": 100,
    "sess/empty": 0,
    "top/readme.txt": 50,  # s3rver lists top/ only with an object right below it
    "top/mid/leaf.bin": 5000,
    "top/mid/other.bin": 6000,
    "coll/a.bin": 1000,
    "coll.torrent": 64,
    "zeros/z": 0,
    "live/a.bin": 200000,
    "live/b.bin": 9000,
}
MANY = 1200  # objects of many/: more than a listing's page of 1000, as a session can have


def create_prefix(endpoint, prefix, *opts):
    """The torrent `s3torrent create s3://BUCKET/PREFIX/` makes: what DIR.torrent must be."""
    p = subprocess.run([S3T, "create", "--no-cache", "--endpoint-url", endpoint, "-o", "-", *opts,
                        f"s3://{DIRS_BUCKET}/{prefix}"], env=aws_env(), capture_output=True)
    if p.returncode != 0:
        raise AssertionError(f"s3torrent create {prefix}: {p.stderr.decode()}")
    return p.stdout


class DirTorrents(unittest.TestCase):
    """-o dir_torrents=1: each directory of the mount's root has a DIR.torrent equal to `create
    s3://BUCKET/PREFIX/` with the same options, its size known before it is read; libtorrent
    checks the mounted directory with it; a changed object changes it; a remount reads it from
    the cache; off by default."""
    HYBRID = ["--meta-version", "hybrid", "--piece-length", "64K",
              "--webseed", "http://seed.example/base/"]

    @classmethod
    def setUpClass(cls):
        cls.s3 = S3(buckets=(DIRS_BUCKET,))
        cls.tmp = tempfile.TemporaryDirectory()
        path = os.path.join(cls.tmp.name, "up.bin")
        for key, size in SESSION.items():
            with open(path, "wb") as f:
                f.write(content(size, len(key)))
            cls.s3.put(DIRS_BUCKET, key, path)
        many = os.path.join(cls.tmp.name, "many")
        os.mkdir(many)
        for i in range(MANY):
            with open(os.path.join(many, f"f{i:04d}.bin"), "wb") as f:
                f.write(content(1 + i * 7, i))
        cls.s3.aws("s3", "cp", "--only-show-errors", "--recursive", many,
                   f"s3://{DIRS_BUCKET}/many/")
        cls.proxy = FaultProxy(cls.s3.port)
        cls.cache = os.path.join(cls.tmp.name, "cache", "torrents.db")
        cls.v1 = Mount(cls.proxy.url, DIRS_BUCKET, cache=cls.cache,
                       options=["dir_torrents=1", "ttl=1", "negative_ttl=1"])
        cls.hybrid = Mount(cls.proxy.url, DIRS_BUCKET,
                           options=["dir_torrents=1", "meta_version=hybrid", "piece_length=64K",
                                    "webseed=http://seed.example/base/"])

    @classmethod
    def tearDownClass(cls):
        problems = cls.v1.stop() + cls.hybrid.stop()
        cls.proxy.stop()
        cls.s3.stop()
        cls.tmp.cleanup()
        if problems:
            raise AssertionError(f"daemon log: {problems}")

    def test_equal_to_create_and_size_before_reading(self):
        for m, opts in ((self.v1, []), (self.hybrid, self.HYBRID)):
            for d in ("sess", "top", "many"):
                with self.subTest(dir=d, opts=opts):
                    t = m.path(d + ".torrent")
                    size = os.stat(t).st_size  # before any read: laid out, not hashed
                    got = rd(t)
                    self.assertEqual(size, len(got))
                    self.assertEqual(got, create_prefix(self.s3.url, d + "/", *opts))
                    self.assertEqual(os.stat(t).st_size, len(got))

    def test_listed_at_the_depth_asked_only(self):
        names = os.listdir(self.v1.path())
        for d in ("sess", "top", "many", "live"):
            self.assertIn(d + ".torrent", names)
        self.assertNotIn("mid.torrent", os.listdir(self.v1.path("top")))
        self.assertFalse(os.path.exists(self.v1.path("top", "mid.torrent")))
        # only empty objects: nothing to share, no torrent (as for a zero-byte object)
        self.assertFalse(os.path.exists(self.v1.path("zeros.torrent")))
        info = lt.bdecode(rd(self.v1.path("sess.torrent")))[b"info"]
        paths = sorted(b"/".join(f[b"path"]).decode() for f in info[b"files"])
        self.assertEqual(paths, ["audio/track 1.wav", "cam1.bin", "empty", "été/notes.txt"])
        self.assertEqual(info[b"name"], b"sess")

    def test_a_real_object_wins(self):
        self.assertEqual(rd(self.v1.path("coll.torrent")), content(64, len("coll.torrent")))

    def test_libtorrent_checks_the_mounted_directory(self):
        for m in (self.v1, self.hybrid):
            with self.subTest(meta=m is self.v1 and "v1" or "hybrid"):
                ti = lt.torrent_info(lt.bdecode(rd(m.path("sess.torrent"))))
                st = libtorrent_check(ti, m.path(), timeout_s=120)
                self.assertEqual(st.progress, 1.0)

    def test_remount_reads_no_object(self):
        want = rd(self.v1.path("sess.torrent"))
        gets, lock, hook = object_gets()
        m2 = Mount(self.proxy.url, DIRS_BUCKET, cache=self.cache, options=["dir_torrents=1"])
        self.proxy.hook = hook
        try:
            got = rd(m2.path("sess.torrent"))
        finally:
            self.proxy.hook = None
            self.assertEqual(m2.stop(), [])
        self.assertEqual(got, want)
        with lock:
            self.assertEqual(gets, [])

    def test_a_changed_object_changes_it(self):
        t = self.v1.path("live.torrent")
        first = rd(t)
        self.assertEqual(first, create_prefix(self.s3.url, "live/"))
        # the same size, other bytes: only the ETag says it changed
        path = os.path.join(self.tmp.name, "new.bin")
        with open(path, "wb") as f:
            f.write(content(9000, 99))
        self.s3.put(DIRS_BUCKET, "live/b.bin", path)
        want = create_prefix(self.s3.url, "live/")
        self.assertNotEqual(want, first)
        # the DIR.torrent is listed again when opened: the new version at once, and stat after
        # it says the size that was read
        got = rd(t)
        self.assertEqual(got, want)
        self.assertEqual(os.stat(t).st_size, len(got))
        ti = lt.torrent_info(lt.bdecode(got))
        wait_for("the new object in the mount",
                 lambda: rd(self.v1.path("live", "b.bin")) == content(9000, 99))
        self.assertEqual(libtorrent_check(ti, self.v1.path()).progress, 1.0)

    def test_off_by_default(self):
        m = Mount(self.s3.url, DIRS_BUCKET)
        try:
            self.assertIn("sess", os.listdir(m.path()))
            self.assertNotIn("sess.torrent", os.listdir(m.path()))
            self.assertFalse(os.path.exists(m.path("sess.torrent")))
        finally:
            self.assertEqual(m.stop(), [])


class HiddenKeys(unittest.TestCase):
    """Keys s3rver cannot store (a//b, .., names over 255 bytes) come through a rewritten
    listing."""

    def test_hidden_keys(self):
        s3 = S3(buckets=(BUCKET,))
        listing = (
            b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>fsbucket</Name>'
            b'<Prefix></Prefix><Delimiter>%2F</Delimiter><EncodingType>url</EncodingType>'
            b'<IsTruncated>false</IsTruncated>'
            b'<Contents><Key>ok.bin</Key><Size>3</Size><ETag>&quot;e1&quot;</ETag>'
            b'<LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>'
            b'<Contents><Key>..</Key><Size>3</Size><ETag>&quot;e2&quot;</ETag>'
            b'<LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>'
            b'<Contents><Key>' + b"x" * 300 + b'</Key><Size>3</Size><ETag>&quot;e3&quot;</ETag>'
            b'<LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>'
            b'<Contents><Key>' + b"n" * 250 + b'</Key><Size>3</Size><ETag>&quot;e4&quot;</ETag>'
            b'<LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>'
            b'<Contents><Key>ctl%01%0A.bin</Key><Size>3</Size><ETag>&quot;e5&quot;</ETag>'
            b'<LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>'
            b'<Contents><Key>..%2F..%2Fetc%2Fpasswd</Key><Size>3</Size><ETag>&quot;e6&quot;</ETag>'
            b'<LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>'
            b'<CommonPrefixes><Prefix>%2F</Prefix></CommonPrefixes>'
            b'<CommonPrefixes><Prefix>.%2F</Prefix></CommonPrefixes>'
            b'<CommonPrefixes><Prefix>a%2F</Prefix></CommonPrefixes>'
            b'</ListBucketResult>')
        # the root listing only (it carries no prefix= parameter)
        proxy = FaultProxy(s3.port, override=lambda m, p: (200, listing)
                           if "list-type" in p and "prefix=" not in p else None)
        m = Mount(proxy.url, BUCKET)
        try:
            names = sorted(os.listdir(m.point))
            # "..", a 300-byte name and the empty and "." directories are hidden, and so is
            # "../../etc/passwd" (its ".." segments); a 250-byte name is shown, but its .torrent
            # would pass 255 bytes and is not; a name with control bytes is a file name but
            # cannot be a torrent's name, so it has no .torrent
            self.assertEqual(names, ["a", "ctl\x01\n.bin", "n" * 250, "ok.bin",
                                     "ok.bin.torrent"])
            self.assertIn("hidden", m.output())
        finally:
            m.stop()
            proxy.stop()
            s3.stop()


def announce(torrent):
    return next(iter(lt.torrent_info(lt.bdecode(torrent)).trackers())).url


class ConfigFile(unittest.TestCase):
    """-o config=FILE: precedence (command line > environment > file > default), errors at
    start, and SIGHUP rereading it and dropping cached listings."""

    @classmethod
    def setUpClass(cls):
        cls.s3 = S3(buckets=(BUCKET,))
        cls.tmp = tempfile.TemporaryDirectory()
        cls.up = os.path.join(cls.tmp.name, "up.bin")
        with open(cls.up, "wb") as f:
            f.write(content(200000, 3))
        cls.s3.put(BUCKET, "v.bin", cls.up)

    @classmethod
    def tearDownClass(cls):
        cls.s3.stop()
        cls.tmp.cleanup()

    def write_config(self, text):
        path = os.path.join(self.tmp.name, "fs.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def create(self, *args):
        return create(self.s3.url, "v.bin", *args)

    def wait_log(self, m, text):
        deadline = time.monotonic() + 30
        while text not in m.output():
            self.assertLess(time.monotonic(), deadline, f"never logged {text!r}: {m.output()}")
            time.sleep(0.05)

    def test_sighup_rereads_config_and_drops_listings(self):
        conf = self.write_config("# the seedbox mount\nbucket = fsbucket\nttl = 3600\n"
                                 "negative_ttl = 3600\ntrackers = http://a.example/announce\n")
        m = Mount(self.s3.url, None, options=[f"config={conf}"])
        try:
            t = rd(m.path("v.bin.torrent"))
            self.assertEqual(t, self.create("--tracker", "http://a.example/announce"))
            self.assertEqual(sorted(os.listdir(m.point)), ["v.bin", "v.bin.torrent"])
            self.s3.put(BUCKET, "w.bin", self.up)
            # a listing held for an hour does not show the new object
            self.assertEqual(sorted(os.listdir(m.point)), ["v.bin", "v.bin.torrent"])
            self.write_config("bucket = fsbucket\nttl = 3600\nnegative_ttl = 3600\n"
                              "trackers = http://b.example/announce, http://c.example/a\n")
            os.kill(m.proc.pid, signal.SIGHUP)
            self.wait_log(m, "SIGHUP: configuration reread from")
            self.assertTrue(os.path.ismount(m.point))
            self.assertEqual(sorted(os.listdir(m.point)),
                             ["v.bin", "v.bin.torrent", "w.bin", "w.bin.torrent"])
            want = self.create("--tracker", "http://b.example/announce",
                               "--tracker", "http://c.example/a")
            self.assertEqual(os.stat(m.path("v.bin.torrent")).st_size, len(want))
            self.assertEqual(rd(m.path("v.bin.torrent")), want)
        finally:
            self.s3.aws("s3", "rm", f"s3://{BUCKET}/w.bin")
            self.assertEqual(m.stop(), [])

    def test_new_outer_fields_cost_no_get(self):
        """The cache keeps what hashing learned, not bytes: new trackers and a web seed (SIGHUP),
        then a re-upload of the same bytes (same ETag, a later Last-Modified), each give exactly
        what create gives now, and none reads the object again."""
        key = "outer.bin"
        self.s3.put(BUCKET, key, self.up)
        gets, lock, hook = object_gets()
        proxy = FaultProxy(self.s3.port, hook=hook)
        conf = self.write_config("ttl = 3600\ntrackers = http://a.example/announce\n")
        m = Mount(proxy.url, BUCKET, options=[f"config={conf}"])
        try:
            t = m.path(key + ".torrent")
            self.assertEqual(rd(t), create(self.s3.url, key, "--tracker",
                                           "http://a.example/announce"))
            with lock:
                self.assertEqual(gets, [key])
            self.write_config("ttl = 3600\ntrackers = http://b.example/announce, "
                              "http://c.example/a\nwebseed = https://cdn.example/media/\n")
            os.kill(m.proc.pid, signal.SIGHUP)
            self.wait_log(m, "SIGHUP: configuration reread from")
            args = ("--tracker", "http://b.example/announce", "--tracker", "http://c.example/a",
                    "--webseed", "https://cdn.example/media/")
            want = create(self.s3.url, key, *args)
            self.assertEqual(rd(t), want)
            # the same bytes uploaded again in a later second: same ETag, a new date
            date = bencode_date(want)
            while int(time.time()) <= date:
                time.sleep(0.05)
            self.s3.put(BUCKET, key, self.up)
            again = create(self.s3.url, key, *args)
            self.assertGreater(bencode_date(again), date)
            self.assertEqual(rd(t), again)
            with lock:
                self.assertEqual(gets, [key], "the object was read again")
        finally:
            self.s3.aws("s3", "rm", f"s3://{BUCKET}/{key}")
            self.assertEqual(m.stop(), [])
            proxy.stop()

    def test_bad_config_on_sighup_keeps_running(self):
        conf = self.write_config("bucket = fsbucket\n")
        m = Mount(self.s3.url, None, options=[f"config={conf}"])
        try:
            self.write_config("bucket = fsbucket\nttl = soon\n")
            os.kill(m.proc.pid, signal.SIGHUP)
            self.wait_log(m, "the running configuration stays")
            self.assertEqual(rd(m.path("v.bin")), content(200000, 3))
        finally:
            problems = m.stop()
        self.assertEqual(problems, [f"s3torrentfs: error: SIGHUP: {conf}:2: ttl=soon is not a "
                                    "number of seconds; the running configuration stays"])

    def test_precedence(self):
        conf = self.write_config("trackers = http://file.example/a\nttl = 5\n")
        # the environment beats the file
        m = Mount(self.s3.url, BUCKET, options=[f"config={conf}"],
                  env={"TRACKERS": "http://env.example/a"})
        try:
            self.assertEqual(announce(rd(m.path("v.bin.torrent"))), "http://env.example/a")
        finally:
            self.assertEqual(m.stop(), [])
        # the command line beats both
        m = Mount(self.s3.url, BUCKET, options=[f"config={conf}", "trackers=http://cmd.example/a"],
                  env={"TRACKERS": "http://env.example/a"})
        try:
            self.assertEqual(announce(rd(m.path("v.bin.torrent"))), "http://cmd.example/a")
        finally:
            self.assertEqual(m.stop(), [])
        # the file beats the default
        m = Mount(self.s3.url, BUCKET, options=[f"config={conf}"])
        try:
            self.assertEqual(announce(rd(m.path("v.bin.torrent"))), "http://file.example/a")
        finally:
            self.assertEqual(m.stop(), [])

    def test_command_line_turns_off_a_switch_of_the_file(self):
        conf = self.write_config("private\npath_style = true\n")
        m = Mount(self.s3.url, BUCKET, options=[f"config={conf}"])
        try:
            self.assertEqual(rd(m.path("v.bin.torrent")), self.create("--private"))
        finally:
            self.assertEqual(m.stop(), [])
        m = Mount(self.s3.url, BUCKET, options=[f"config={conf}", "noprivate", "nopath_style"])
        try:
            # a custom endpoint is path-style whatever the switch says: the mount still serves
            self.assertEqual(rd(m.path("v.bin.torrent")), self.create())
        finally:
            self.assertEqual(m.stop(), [])

    def test_bad_config_at_start(self):
        mnt = tempfile.mkdtemp(dir=self.tmp.name)
        cases = {
            "bucket = fsbucket\ntll = 5\n": ":2: unknown setting 'tll'",
            "cache_max = lots\n": ":1: cache_max: \"lots\" is not a size (digits with an optional "
                                  "K, M, G or T suffix, e.g. 256K or 4MiB)",
            "private = maybe\n": ":1: private: \"maybe\" is not a switch (true or false)",
            "ttl = 1\nttl = 2\n": ":2: ttl is set twice",
            "just words here\n": ":1: expected 'name = value'",
            "config = /etc/passwd\n": ":1: a config file cannot name another one",
            "path_style,ttl = 5\n": ":1: 'path_style,ttl' is not a setting name (lower-case "
                                    "letters and '_')",
            "trackers = ,\n": ":1: trackers: \",\" names no URL",
        }
        for text, why in cases.items():
            conf = self.write_config(text)
            p = subprocess.run([os.path.abspath(os.environ.get("S3TORRENTFS",
                                                               "build/fs/s3torrentfs")),
                                "-f", "-o", f"config={conf}", BUCKET, mnt],
                               capture_output=True, env=aws_env(), timeout=30)
            self.assertEqual(p.returncode, 1, text)
            self.assertEqual(p.stderr.decode(), f"s3torrentfs: {conf}{why}\n")
            self.assertFalse(os.path.ismount(mnt))
        fs_bin = os.path.abspath(os.environ.get("S3TORRENTFS", "build/fs/s3torrentfs"))
        conf = self.write_config("bucket = :studio/\n")
        p = subprocess.run([fs_bin, "-f", "-o", f"config={conf}", mnt], capture_output=True,
                           env=aws_env(), timeout=30)
        self.assertEqual((p.returncode, p.stderr.decode()),
                         (1, "s3torrentfs: ':studio/' names no bucket: give BUCKET[:PREFIX]\n"))
        p = subprocess.run([fs_bin, "-f", BUCKET, mnt, "extra"], capture_output=True,
                           env=aws_env(), timeout=30)
        self.assertEqual((p.returncode, p.stderr.decode()),
                         (2, "s3torrentfs: unexpected argument 'extra' (see --help)\n"))
        p = subprocess.run([fs_bin,
                            "-f", "-o", "config=/nonexistent/fs.conf", BUCKET, mnt],
                           capture_output=True, env=aws_env(), timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.decode(), "s3torrentfs: cannot open config file "
                         "/nonexistent/fs.conf: No such file or directory\n")


def as_user(uid, *cmd):
    """Runs cmd as uid (and gid) with no supplementary groups, as another local user would."""
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                           *cmd], capture_output=True, text=True, errors="replace", timeout=60)


def ours_in_ps(m):
    """What `ps` shows any user of the processes this mount made: the daemon, whatever it
    started, and anything naming the mount point. Other processes on the host (a CI runner's
    own, say) are not ours to judge."""
    rows = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True,
                          check=True).stdout.splitlines()
    procs = {}
    for row in rows:
        pid, ppid, args = (row.split(None, 2) + [""])[:3]
        procs[int(pid)] = (int(ppid), args)
    mine = {m.proc.pid}
    grew = True
    while grew:
        kids = {pid for pid, (ppid, _) in procs.items() if ppid in mine} - mine
        grew = bool(kids)
        mine |= kids
    mine |= {pid for pid, (_, args) in procs.items() if m.point in args}
    return "\n".join(procs[pid][1] for pid in sorted(mine) if pid in procs)


class Security(unittest.TestCase):
    """What other users and other programs on the host can see: no secret in ps, /proc/mounts
    or the daemon's log at debug level; another uid kept out without allow_other, and the
    mode options enforced with it."""

    @classmethod
    def setUpClass(cls):
        cls.s3 = S3(buckets=(BUCKET,))
        cls.tmp = tempfile.TemporaryDirectory()
        path = os.path.join(cls.tmp.name, "s.bin")
        with open(path, "wb") as f:
            f.write(content(100000, 9))
        cls.s3.put(BUCKET, "s.bin", path)

    @classmethod
    def tearDownClass(cls):
        cls.s3.stop()
        cls.tmp.cleanup()

    def test_no_secrets_in_ps_mounts_or_debug_log(self):
        from services import SECRET
        token = "SessionTokenOfTheMount0123456789"
        m = Mount(self.s3.url, BUCKET, args=["-d"], env={"AWS_SESSION_TOKEN": token})
        try:
            self.assertEqual(rd(m.path("s.bin")), content(100000, 9))
            rd(m.path("s.bin.torrent"))
            ps = ours_in_ps(m)
            with open("/proc/mounts") as f:
                mounts = [line for line in f if m.point in line]
            with open(f"/proc/{m.proc.pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
            self.assertEqual(len(mounts), 1)
            self.assertIn("s3torrentfs", ps)
            self.assertIn(m.point, ps)
            log = m.output()
            self.assertIn("HTTP GET", log)  # debug logging was on
            for where, text in (("ps", ps), ("/proc/mounts", mounts[0]), ("cmdline", cmdline),
                                ("debug log", log)):
                for secret in (SECRET, token, "Signature=", "Authorization", "AWS4-HMAC-SHA256",
                               "X-Amz-Security-Token", "X-Amz-Credential"):
                    self.assertNotIn(secret, text, f"{secret} in {where}")
        finally:
            self.assertEqual(m.stop(), [])

    def test_other_uid_without_allow_other(self):
        m = Mount(self.s3.url, BUCKET)
        try:
            self.assertEqual(rd(m.path("s.bin")), content(100000, 9))  # the owner reads
            p = as_user(65534, "cat", m.path("s.bin"))
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("Permission denied", p.stderr)
            p = as_user(65534, "ls", m.point)
            self.assertIn("Permission denied", p.stderr)
        finally:
            self.assertEqual(m.stop(), [])

    def test_allow_other_enforces_the_mode_options(self):
        # world-readable (0444): another uid reads
        m = Mount(self.s3.url, BUCKET, options=["allow_other"])
        try:
            p = as_user(65534, "sha256sum", m.path("s.bin"))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout.split()[0], hashlib.sha256(content(100000, 9)).hexdigest())
        finally:
            self.assertEqual(m.stop(), [])
        # owned by uid 65534, mode 0400 / 0500: that uid reads, another does not
        m = Mount(self.s3.url, BUCKET, options=["allow_other", "uid=65534", "gid=65534",
                                                "umask=077"])
        try:
            st = os.stat(m.path("s.bin"))
            self.assertEqual((st.st_uid, st.st_mode & 0o777), (65534, 0o400))
            self.assertEqual(as_user(65534, "cat", m.path("s.bin.torrent")).returncode, 0)
            for cmd in (("cat", m.path("s.bin")), ("ls", m.point)):
                p = as_user(65533, *cmd)
                self.assertNotEqual(p.returncode, 0, cmd)
                self.assertIn("Permission denied", p.stderr)
        finally:
            self.assertEqual(m.stop(), [])


class CredentialRefresh(unittest.TestCase):
    """Temporary credentials from the ECS container endpoint (a local server that follows the
    protocol) that expire while the mount is busy: they are fetched again before they expire,
    the requests move to the new token, and no read fails."""

    def test_expiring_credentials_are_refreshed_without_a_failed_read(self):
        import datetime
        import http.server
        import json
        s3 = S3(buckets=(BUCKET,))
        tmp = tempfile.TemporaryDirectory()
        path = os.path.join(tmp.name, "c.bin")
        with open(path, "wb") as f:
            f.write(content(70000, 4))
        s3.put(BUCKET, "c.bin", path)
        served = []

        class Ecs(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                # valid for 5 minutes and 2 seconds: inside the 5-minute refresh margin after 2 s
                exp = datetime.datetime.now(datetime.timezone.utc) + \
                    datetime.timedelta(minutes=5, seconds=2)
                token = f"ecs-token-{len(served) + 1}"
                served.append(token)
                body = json.dumps({"AccessKeyId": "S3RVER", "SecretAccessKey": "S3RVER",
                                   "Token": token,
                                   "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        ecs = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ecs)
        threading.Thread(target=ecs.serve_forever, daemon=True).start()
        used = []
        proxy = FaultProxy(s3.port, hook=lambda m, p, h: used.append(
            h.get("X-Amz-Security-Token")))
        env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
               "AWS_CONTAINER_CREDENTIALS_FULL_URI":
               f"http://127.0.0.1:{ecs.server_address[1]}/v2/credentials"}
        m = Mount(proxy.url, BUCKET, options=["ttl=0", "negative_ttl=0"], env=env)
        reads = failures = 0
        try:
            deadline = time.monotonic() + 7
            while time.monotonic() < deadline:
                try:
                    self.assertEqual(sorted(os.listdir(m.point)), ["c.bin", "c.bin.torrent"])
                    self.assertEqual(rd(m.path("c.bin")), content(70000, 4))
                    reads += 1
                except OSError:
                    failures += 1
                time.sleep(0.05)
        finally:
            problems = m.stop()
            proxy.stop()
            ecs.shutdown()
            ecs.server_close()
            s3.stop()
        self.assertEqual(problems, [])
        self.assertEqual(failures, 0)
        self.assertGreater(reads, 20)
        self.assertGreaterEqual(len(served), 3, served)  # fetched again as expiry neared
        tokens = [t for t in used if t]
        self.assertEqual(len(tokens), len(used))  # every request carried a token
        self.assertEqual(tokens[0], "ecs-token-1")
        self.assertEqual(tokens[-1], served[-1])  # and moved to the newest one


class Concurrency(unittest.TestCase):
    """64 concurrent opens of 64 different uncached torrents: every reader gets its exact
    torrent, no deadlock (all finish in bounded time), and the hashing is bounded: with
    max_generations=2 and one-part objects, at most 2 object GETs are ever in flight."""

    def test_64_uncached_torrents_at_once(self):
        s3 = S3(buckets=(BUCKET,))
        tmp = tempfile.TemporaryDirectory()
        keys = [f"many/{i:02d}.bin" for i in range(64)]
        src = os.path.join(tmp.name, "src")
        os.mkdir(src)
        for i, k in enumerate(keys):
            with open(os.path.join(src, k.split("/")[1]), "wb") as f:
                f.write(content(200000 + i * 1009, i))
        s3.aws("s3", "cp", "--only-show-errors", "--recursive", src, f"s3://{BUCKET}/many/")
        want = {k: create(s3.url, k) for k in keys}
        # every object GET is slowed, so that the generations overlap
        proxy = FaultProxy(s3.port, faults={"delay": 1.0}, methods=("GET",), delay_s=0.1)
        m = Mount(proxy.url, BUCKET, options=["max_generations=2"])
        try:
            self.assertEqual(len(os.listdir(m.path("many"))), 128)
            proxy.reset_counts()
            barrier = threading.Barrier(64)

            def read(k):
                barrier.wait()
                return rd(m.path(k + ".torrent"))
            with concurrent.futures.ThreadPoolExecutor(64) as ex:
                futures = {k: ex.submit(read, k) for k in keys}
                got = {k: f.result(timeout=300) for k, f in futures.items()}
            for k in keys:
                self.assertEqual(got[k], want[k], k)
            self.assertEqual(proxy.by_method.get("GET"), 64)
            # (each open checks its object with a HEAD; those are not hashing)
            self.assertLessEqual(proxy.counts["inflight_get_max"], 2)
        finally:
            self.assertEqual(m.stop(), [])
            proxy.stop()
            s3.stop()
            tmp.cleanup()


class Prefetch(unittest.TestCase):
    """-o prefetch_torrents: listing a directory makes its objects' torrents in the background,
    so that reading one later costs no further S3 GET."""

    def test_listing_makes_the_torrents_ahead_of_their_readers(self):
        self.listing_makes_the_torrents(daemon=False)

    def test_detached_daemon_prefetches_too(self):
        """Without -f (fstab, mount(8)) the daemon forks when it detaches: its worker threads
        must be started in the child (they were started before the fork, so read-ahead and
        prefetching never ran in a detached mount)."""
        self.listing_makes_the_torrents(daemon=True)

    def listing_makes_the_torrents(self, daemon):
        s3 = S3(buckets=(BUCKET,))
        tmp = tempfile.TemporaryDirectory()
        keys = [f"pre/{i}.bin" for i in range(6)]
        src = os.path.join(tmp.name, "src")
        os.mkdir(src)
        for i, k in enumerate(keys):
            with open(os.path.join(src, k.split("/")[1]), "wb") as f:
                f.write(content(50000 + i * 777, i + 40))  # one GET each
        s3.aws("s3", "cp", "--only-show-errors", "--recursive", src, f"s3://{BUCKET}/pre/")
        want = {k: create(s3.url, k) for k in keys}
        gets, lock, hook = object_gets()
        proxy = FaultProxy(s3.port, hook=hook)
        m = Mount(proxy.url, BUCKET, options=["prefetch_torrents=3"], daemon=daemon)
        try:
            self.assertEqual(len(os.listdir(m.path("pre"))), 12)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with lock:
                    if sorted(set(gets)) == keys:
                        break
                time.sleep(0.05)
            with lock:
                self.assertEqual(sorted(set(gets)), keys, "not every torrent was prefetched")
            for k in keys:  # waits for a generation still running, never starts another
                self.assertEqual(rd(m.path(k + ".torrent")), want[k], k)
            with lock:
                self.assertEqual(sorted(gets), keys, "an object was fetched twice")
        finally:
            self.assertEqual(m.stop(), [])
            proxy.stop()
            s3.stop()
            tmp.cleanup()


class Metrics(unittest.TestCase):
    """-o metrics_file: the mount's counters equal what a counting proxy in front of S3 saw and
    what the test read (docs/DESIGN.md §16)."""

    def test_metrics_equal_what_the_proxy_saw(self):
        s3 = S3(buckets=(BUCKET,))
        tmp = tempfile.TemporaryDirectory()
        big, small = content(5 << 20 | 12345, 71), content(30000, 72)
        for key, data in (("m/big.bin", big), ("m/small.bin", small)):
            path = os.path.join(tmp.name, "up.bin")
            with open(path, "wb") as f:
                f.write(data)
            s3.put(BUCKET, key, path)
        want_torrent = create(s3.url, "m/small.bin")
        gets, lock, hook = object_gets()
        proxy = FaultProxy(s3.port, hook=hook)
        mfile = os.path.join(tmp.name, "s3torrentfs.prom")
        m = Mount(proxy.url, BUCKET, options=[f"metrics_file={mfile}", "metrics_interval=1",
                                               "block_cache=64M"])
        try:
            self.assertEqual(sorted(os.listdir(m.path("m"))),
                             ["big.bin", "big.bin.torrent", "small.bin", "small.bin.torrent"])
            self.assertEqual(rd(m.path("m/big.bin")), big)
            self.assertEqual(rd(m.path("m/big.bin")), big)  # from the block cache
            self.assertEqual(rd(m.path("m/small.bin.torrent")), want_torrent)
            self.assertFalse(os.path.exists(m.path("m/none.bin")))
            with open(m.path("m/small.bin"), "rb") as held:  # open while the file is written
                self.assertEqual(held.read(), small)

                def settled():
                    got = read_metrics(mfile)
                    with proxy.lock:
                        by_method = dict(proxy.by_method)
                    return got if got and all(
                        got.get(f's3torrentfs_s3_requests_total{{method="{k}"}}') == v
                        for k, v in by_method.items()) else None
                got = wait_for("the metrics file to show the proxy's requests", settled, timeout=30)
                self.assertEqual(got["s3torrentfs_open_files"], 1)
            with proxy.lock:
                by_method, body = dict(proxy.by_method), proxy.counts["get_body_bytes"]
            with lock:
                data_gets = len(gets)
            print(f"  proxy saw {by_method}, {body} GET body bytes, {data_gets} data GETs")
            for method in ("GET", "HEAD", "PUT", "POST"):
                self.assertEqual(got[f's3torrentfs_s3_requests_total{{method="{method}"}}'],
                                 by_method.get(method, 0), method)
            self.assertEqual(got["s3torrentfs_s3_bytes_total"], body)
            # every data GET went through the block cache, and each byte was fetched once
            # (the small object twice: hashed for its torrent, then read through the cache)
            self.assertEqual(got["s3torrentfs_data_fetches_total"]
                             + got["s3torrentfs_torrents_hashed_total"], data_gets)
            self.assertEqual(got["s3torrentfs_data_fetched_bytes_total"],
                             len(big) + min(len(small), 1 << 20))
            self.assertEqual(got['s3torrentfs_read_bytes_total{file="data"}'],
                             2 * len(big) + len(small))
            self.assertEqual(got['s3torrentfs_read_bytes_total{file="torrent"}'],
                             len(want_torrent))
            self.assertEqual(got['s3torrentfs_opens_total{file="data"}'], 3)
            self.assertEqual(got['s3torrentfs_opens_total{file="torrent"}'], 1)
            self.assertEqual(got["s3torrentfs_torrents_hashed_total"], 1)
            self.assertEqual(got['s3torrentfs_read_errors_total{file="data"}'], 0)
            self.assertGreater(got['s3torrentfs_block_cache_hits_total{tier="memory"}'], 0)
            self.assertAlmostEqual(got["s3torrentfs_served_per_fetched_ratio"],
                                   (2 * len(big) + len(small)) / (len(big) + len(small)))
        finally:
            self.assertEqual(m.stop(), [])
            proxy.stop()
            s3.stop()
        # written a last time at unmount: nothing open any more
        self.assertEqual(read_metrics(mfile)["s3torrentfs_open_files"], 0)
        self.assertEqual([f for f in os.listdir(tmp.name) if ".tmp" in f], [])
        tmp.cleanup()

    def test_metrics_into_a_fifo(self):
        """metrics_file naming a FIFO: the counters go through it while someone reads it, a write
        nobody reads is skipped with a warning (the mount never waits for a reader, unmounting
        included), and the FIFO stays a FIFO; a file renamed over it replaced it."""
        s3 = S3(buckets=(BUCKET,))
        tmp = tempfile.TemporaryDirectory()
        fifo = os.path.join(tmp.name, "metrics.fifo")
        os.mkfifo(fifo)
        m = Mount(s3.url, BUCKET, options=[f"metrics_file={fifo}", "metrics_interval=1"])
        try:
            rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            got = []

            def written():
                try:
                    got.append(os.read(rfd, 1 << 20))
                except BlockingIOError:
                    pass
                return b"\ns3torrentfs_open_files 0\n" in b"".join(got)
            try:
                wait_for("the metrics through the FIFO", written, timeout=30)
            finally:
                os.close(rfd)
            # nobody reads it now: the next writes are skipped, and the mount still answers
            seen = len(m.output())
            wait_for("a write nobody reads, skipped",
                     lambda: "metrics: cannot write" in m.output()[seen:], timeout=30)
            self.assertEqual(os.listdir(m.point), [])
        finally:
            t0 = time.monotonic()
            self.assertEqual(m.stop(), [])
            s3.stop()
        # the last write, at unmount, does not wait for a reader either (stop() would give the
        # daemon 30 s before killing it)
        self.assertLess(time.monotonic() - t0, 15)
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))
        self.assertEqual(os.listdir(tmp.name), ["metrics.fifo"])
        tmp.cleanup()


class ReadSizes(unittest.TestCase):
    """The mount's reads (docs/DESIGN.md §16): a sequential reader gets requests of 1 MiB from the
    kernel (the mount widens its read-ahead window; as root, who may write the bdi's
    read_ahead_kb) and read-ahead that grows with the stream, so a file costs a few large GETs,
    each byte fetched once; reads of 16 KiB at random places fetch one block each and no
    read-ahead."""

    SIZE = 24 * 1048576 + 5

    @classmethod
    def setUpClass(cls):
        cls.s3 = S3(buckets=(BUCKET,))
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data = {}
        for key in ("seq.bin", "random.bin"):
            path = os.path.join(cls.tmp.name, "up.bin")
            cls.data[key] = content(cls.SIZE, len(key) + 80)
            with open(path, "wb") as f:
                f.write(cls.data[key])
            cls.s3.put(BUCKET, key, path)
        cls.gets, cls.lock = [], threading.Lock()

        def hook(method, path, headers):
            if method == "GET" and "?" not in path:
                with cls.lock:
                    cls.gets.append((path.rsplit("/", 1)[1], headers.get("Range")))
        cls.proxy = FaultProxy(cls.s3.port, hook=hook)
        cls.mfile = os.path.join(cls.tmp.name, "s3torrentfs.prom")
        # a block cache smaller than the file: read-ahead not yet read must outlive the blocks
        # already read (lib/store/blocks.c evict), or most blocks are fetched twice
        cls.mnt = Mount(cls.proxy.url, BUCKET, options=[f"metrics_file={cls.mfile}",
                                                        "metrics_interval=1", "block_cache=8M"])

    @classmethod
    def tearDownClass(cls):
        problems = cls.mnt.stop()
        cls.proxy.stop()
        cls.s3.stop()
        cls.tmp.cleanup()
        if problems or cls.mnt.proc.returncode != 0:
            raise AssertionError(f"daemon exit {cls.mnt.proc.returncode}: {problems}")

    def ranges(self, key):
        """The byte ranges of the GETs of key so far, as (first, last) pairs."""
        with self.lock:
            got = [r for k, r in self.gets if k == key]
        out = []
        for r in got:
            self.assertIsNotNone(r, f"a GET of {key} without a Range")
            first, last = r[len("bytes="):].split("-")
            out.append((int(first), int(last)))
        return sorted(out)

    def reads(self, want):
        """The mount's data reads, once its metrics file shows want bytes read."""
        got = wait_for("the metrics file to show the reads",
                       lambda: (m := read_metrics(self.mfile)) and
                       m['s3torrentfs_read_bytes_total{file="data"}'] >= want and m, timeout=30)
        return got['s3torrentfs_reads_total{file="data"}']

    def test_a_sequential_read_is_a_few_large_gets(self):
        before = self.reads(0)
        with open(self.mnt.path("seq.bin"), "rb", buffering=0) as f:
            got = b"".join(iter(lambda: f.read(4 << 20), b""))
        self.assertEqual(got, self.data["seq.bin"])
        ranges = self.ranges("seq.bin")
        blocks = (self.SIZE + 1048575) // 1048576
        print(f"  {len(ranges)} GETs for {blocks} blocks: "
              f"{[(b - a + 1) >> 20 for a, b in ranges]} MiB")
        # each byte once, and in runs: at most the first blocks alone (before the stream is
        # known), then runs of 4 MiB (lib/store/blocks.c RUN_MAX)
        covered = 0
        for first, last in ranges:
            self.assertEqual(first, covered, "a gap or a byte fetched twice")
            covered = last + 1
        self.assertEqual(covered, self.SIZE)
        # read-ahead makes runs of several blocks; how many depends on how often the reader
        # catches up with it, so the count is not pinned, only that GETs are not one per block
        self.assertLess(len(ranges), blocks)
        if os.geteuid() == 0:  # the bdi's read_ahead_kb is root's to write
            # requests of 1 MiB, not the kernel's default 128 KiB (which made 8 times as many)
            self.assertLessEqual(self.reads(self.SIZE) - before, blocks + 1)

    def test_random_16k_reads_fetch_one_block_each(self):
        data = self.data["random.bin"]
        offsets = [(i * 7919 % 24) * 1048576 + (i * 104729) % (1048576 - 16384)
                   for i in range(1, 12)]
        self.assertEqual(len({o >> 20 for o in offsets}), len(offsets))
        fd = os.open(self.mnt.path("random.bin"), os.O_RDONLY)
        try:
            for off in offsets:
                self.assertEqual(os.pread(fd, 16384, off), data[off:off + 16384])
        finally:
            os.close(fd)
        ranges = self.ranges("random.bin")
        # one GET of the one block each read is in: no read-ahead
        self.assertEqual(ranges, sorted(((o >> 20) << 20, ((o >> 20) << 20) + 1048575)
                                        for o in offsets))


class KilledDuringGeneration(unittest.TestCase):
    """kill -9 of the daemon while it hashes a torrent, then a remount on the same cache: the
    cache is intact (what was cached before is served without a GET), and no truncated torrent
    is ever served, neither to the reader that was waiting nor after the remount."""

    def test_kill_9_then_remount(self):
        import sqlite3
        s3 = S3(buckets=(BUCKET,))
        tmp = tempfile.TemporaryDirectory()
        big, small = "big.bin", "small.bin"
        sizes = {big: 24 * 1048576 + 3, small: 300001}
        for i, (key, size) in enumerate(sizes.items()):
            path = os.path.join(tmp.name, "up.bin")
            with open(path, "wb") as f:
                f.write(content(size, i + 20))
            s3.put(BUCKET, key, path)
        want = {key: create(s3.url, key) for key in sizes}
        cache = os.path.join(tmp.name, "cache", "torrents.db")
        gets = []
        started = threading.Event()

        def hook(method, path, headers):
            if method == "GET" and "Range" in headers:
                gets.append(path)
                if big in path:
                    started.set()
        # every GET of the big object is slowed down: the generation takes long enough to kill
        slow = FaultProxy(s3.port, faults={"delay": 1.0}, methods=("GET",), delay_s=0.5,
                          hook=hook)
        m = Mount(slow.url, BUCKET, cache=cache)
        outcome = {}
        try:
            self.assertEqual(rd(m.path(small + ".torrent")), want[small])  # cached now

            def reader():
                try:
                    outcome["bytes"] = rd(m.path(big + ".torrent"))
                except OSError as e:
                    outcome["errno"] = e.errno
            t = threading.Thread(target=reader)
            t.start()
            self.assertTrue(started.wait(60), "the generation never started")
            os.kill(m.proc.pid, signal.SIGKILL)
            t.join(60)
            self.assertFalse(t.is_alive(), "the reader hung after the daemon died")
            # the waiting reader got an error, not a part of the torrent (the slowed generation
            # cannot have finished: it was killed at its first GET)
            self.assertNotIn("bytes", outcome)
            self.assertIn(outcome["errno"], (errno.ENOTCONN, errno.ECONNABORTED, errno.EIO))
        finally:
            m.stop()
            slow.stop()
        # the database survived: intact, and it holds no partial entry (entries are the piece
        # hashes hashing learned, docs/DESIGN.md §13: whole, and only for the finished one)
        db = sqlite3.connect(cache)
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            rows = list(db.execute("SELECT object_key, torrent FROM torrents"))
            self.assertEqual([k for k, _ in rows], [small])
            blob = bytes(rows[0][1])
            self.assertEqual(blob[:5], b"s3th1")
            size, plen, npieces = (int.from_bytes(blob[5 + 8 * i:13 + 8 * i], "big")
                                   for i in range(3))
            self.assertEqual((size, npieces), (sizes[small], -(-sizes[small] // plen)))
            # v1 with a short last piece: the header, the pieces and the padded last piece
            self.assertEqual((blob[29], len(blob)), (1 | 4, 30 + 20 * npieces + 20))
        finally:
            db.close()
        gets.clear()
        proxy = FaultProxy(s3.port, hook=hook)
        m = Mount(proxy.url, BUCKET, cache=cache)
        try:
            self.assertEqual(rd(m.path(small + ".torrent")), want[small])
            self.assertEqual([g for g in gets if small in g], [])  # from the cache, no GET
            self.assertEqual(os.stat(m.path(big + ".torrent")).st_size, len(want[big]))
            self.assertEqual(rd(m.path(big + ".torrent")), want[big])
        finally:
            self.assertEqual(m.stop(), [])
            proxy.stop()
            s3.stop()
            tmp.cleanup()


class Lifecycle(unittest.TestCase):
    def test_sigterm_unmounts(self):
        s3 = S3(buckets=(BUCKET,))
        m = Mount(s3.url, BUCKET)
        try:
            os.kill(m.proc.pid, signal.SIGTERM)
            m.proc.wait(timeout=30)
            self.assertFalse(os.path.ismount(m.point))
            self.assertEqual(m.proc.returncode, 0)
        finally:
            m.stop()
            s3.stop()

    def one_object_mounted(self, size):
        """A server holding o.bin of size bytes, and a mount of its bucket."""
        s3 = S3(buckets=(BUCKET,))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "o.bin")
            with open(path, "wb") as f:
                f.write(content(size, 3))
            s3.put(BUCKET, "o.bin", path)
        return s3, Mount(s3.url, BUCKET)

    def test_sigterm_with_files_open(self):
        """The kernel never sends the releases of files still open when the connection ends: the
        daemon frees them itself (under ASan a handle left behind is a leak report)."""
        s3, m = self.one_object_mounted(300000)
        held = []
        try:
            for name in ("o.bin", "o.bin.torrent"):
                f = open(m.path(name), "rb")
                held.append(f)
                self.assertTrue(f.read(1000))
            os.kill(m.proc.pid, signal.SIGTERM)
            m.proc.wait(timeout=30)
            self.assertFalse(os.path.ismount(m.point))
            self.assertEqual(m.proc.returncode, 0)
        finally:
            problems = m.stop()
            for f in held:
                try:
                    f.close()  # the mount is gone: ENOTCONN
                except OSError:
                    pass
            s3.stop()
        self.assertEqual(problems, [])

    def test_sigterm_with_a_directory_open(self):
        """The same for a directory: the daemon releases the listing snapshot an open directory
        holds. libfuse itself keeps its own buffer of that directory (freed only by the release
        that never comes): under ASan that one leak is libfuse's, and no leak may be ours."""
        s3, m = self.one_object_mounted(1000)
        try:
            with os.scandir(m.point) as dirs:
                self.assertEqual(next(dirs).name, "o.bin")
                os.kill(m.proc.pid, signal.SIGTERM)
                m.proc.wait(timeout=30)
                self.assertFalse(os.path.ismount(m.point))
        finally:
            m.stop()
            s3.stop()
        log = m.final_output
        # a leak report's blocks; ours are the ones with a frame in our sources (file.c:line)
        blocks = re.split(r"\n(?=(?:Direct|Indirect) leak)", log)
        ours = [b for b in blocks[1:] if re.search(r"\.c:\d+", b)]
        self.assertEqual(ours, [])
        self.assertFalse(re.search(r"runtime error|ERROR: AddressSanitizer", log), log)
        # libfuse's leak ends the daemon as LeakSanitizer does: exit 1, or an abort with the
        # suite's abort_on_error
        leaked = "LeakSanitizer" in log
        self.assertIn(m.proc.returncode, (1, -signal.SIGABRT) if leaked else (0,), log)

    def test_cache_file_modes(self):
        s3 = S3(buckets=(BUCKET,))
        m = Mount(s3.url, BUCKET)
        try:
            d = os.path.dirname(m.cache)
            self.assertEqual(os.stat(d).st_mode & 0o777, 0o700)
            db = os.path.basename(m.cache)
            # the database and, in WAL mode, its -wal and -shm files
            self.assertEqual(sorted(os.listdir(d)), [db, db + "-shm", db + "-wal"])
            for f in os.listdir(d):
                self.assertEqual(os.stat(os.path.join(d, f)).st_mode & 0o777, 0o600, f)
        finally:
            m.stop()
            s3.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
