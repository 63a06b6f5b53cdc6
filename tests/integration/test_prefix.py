#!/usr/bin/python3
"""`s3torrent create s3://BUCKET/PREFIX/` (docs/DESIGN.md §3, §5): the objects below a prefix
make the same torrent, byte for byte, as `create DIR` of the same files (v1, v2, hybrid,
--pad, --include/--exclude); directory markers, keys that cannot be paths and a file shadowed
by a directory are left out as the mount leaves them out; an object replaced while it is hashed
fails with a clear error; an empty prefix has nothing to share; a v2 or hybrid session whose
objects' hashes are in the cache (from a session before, each object's own `create`, or `sync`)
reads no object and is the torrent made from scratch, and a session made before with the same
options and the same listing (paths, sizes, ETags) is its own cache entry. Runs on s3rver, or on RGW with S3T_S3=rgw. S3TORRENT names the binary under test."""
import os
import subprocess
import tempfile
import threading
import unittest

from faultproxy import FaultProxy
from services import S3, aws_env, content

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))
ON_RGW = os.environ.get("S3T_S3", "s3rver") == "rgw"
BUCKET = "test"

# nested directories, empty files, unicode, spaces, '+' and '%' (query-encoding traps), a
# dot-file, names ordered differently by whole path and by tree ("a b/..", "a.txt", "a/.."),
# and a file of several 16 KiB pieces
TREE = {
    "a/x.bin": 70001,
    "a/deep/er/one.bin": 16384,
    "a b/y.bin": 1,
    "a.txt": 33000,
    "empty.bin": 0,
    "sub/empty too": 0,
    "sub/été 录音 🎵.bin": 200000,
    "plus+and%25 sign.bin": 4097,
    ".hidden": 17,
    "z/last.bin": 65536,
}


# a recording session of 20 files: short last pieces, whole ones, one of a single byte
SESSION = {f"{('cam', 'audio', 'notes')[i % 3]}/take {i:02d}.bin": size
           for i, size in enumerate((1, 100, 16384, 16385, 32768, 40000, 70001, 65536, 5000,
                                     99999, 16383, 49152, 123457, 2, 30000, 81920, 77777, 17,
                                     20000, 163840))}


def write_tree(root, tree):
    for i, (rel, size) in enumerate(sorted(tree.items())):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content(size, i))


def rd(path):
    with open(path, "rb") as f:
        return f.read()


class Prefix(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = S3(buckets=(BUCKET,))
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = os.path.join(cls.tmp.name, "set")
        write_tree(cls.dir, TREE)
        cls.s3.aws("s3", "cp", "--recursive", "--only-show-errors", cls.dir,
                   f"s3://{BUCKET}/up/set/")
        # a directory marker, as consoles make for "folders": not a file
        cls.put_empty("up/set/a/")
        session = os.path.join(cls.tmp.name, "sess")
        write_tree(session, SESSION)
        cls.s3.aws("s3", "cp", "--recursive", "--only-show-errors", session,
                   f"s3://{BUCKET}/sess/")

    @classmethod
    def tearDownClass(cls):
        cls.s3.stop()
        cls.tmp.cleanup()

    @classmethod
    def put_empty(cls, key, body=None):
        args = ["s3api", "put-object", "--bucket", BUCKET, "--key", key]
        if body:
            args += ["--body", body]
        cls.s3.aws(*args)

    def run_s3t(self, *args, endpoint=None, cache=None):
        # never the user's cache: one per test run, or the one given
        cache = cache or os.path.join(self.tmp.name, "cache.db")
        return subprocess.run([S3T, args[0], "--endpoint-url", endpoint or self.s3.url,
                               "--cache", cache, *args[1:]], env=aws_env(),
                              capture_output=True, cwd=self.tmp.name)

    def create(self, target, *opts, endpoint=None, cache=None):
        out = os.path.join(self.tmp.name, "out.torrent")
        p = self.run_s3t("create", "--force", "--no-date", "-o", out, *opts, target,
                         endpoint=endpoint, cache=cache)
        if p.returncode != 0:
            raise AssertionError(f"create {target} {opts} failed: {p.stderr.decode()}")
        return rd(out), p.stderr.decode()

    def test_same_bytes_as_dir(self):
        for opts in ([], ["-m", "v2"], ["-m", "hybrid"], ["--pad"], ["-l", "16K"],
                     ["-l", "16K", "-m", "hybrid"], ["-l", "16K", "-m", "v2"],
                     ["-l", "16K", "--pad"], ["--private", "-t", "udp://t.example:1/a"]):
            with self.subTest(opts=opts):
                local, _ = self.create(self.dir, *opts)
                remote, err = self.create(f"s3://{BUCKET}/up/set/", *opts)
                self.assertEqual(remote, local)
                self.assertEqual(err, "")

    def test_include_exclude(self):
        for opts in (["--include", "*.bin"], ["--exclude", "sub"], ["--exclude", "a*"],
                     ["--include", "*.bin", "--exclude", "*/deep/*", "-m", "hybrid"]):
            with self.subTest(opts=opts):
                local, _ = self.create(self.dir, *opts)
                remote, _ = self.create(f"s3://{BUCKET}/up/set/", *opts)
                self.assertEqual(remote, local)

    def test_show_lists_the_objects(self):
        out = os.path.join(self.tmp.name, "shown.torrent")
        p = self.run_s3t("create", "--force", "-m", "hybrid", "-o", out,
                         f"s3://{BUCKET}/up/set/")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        shown = subprocess.run([S3T, "show", out], capture_output=True, check=True).stdout
        self.assertIn("set".encode(), shown)
        for rel in TREE:
            self.assertIn(rel.encode(), shown)

    def test_nothing_to_share(self):
        for prefix, why in (("nothing/", "no files"), ("zeros/", "only empty files")):
            with self.subTest(prefix=prefix):
                if prefix == "zeros/":
                    self.put_empty("zeros/one")
                    self.put_empty("zeros/d/two")
                p = self.run_s3t("create", "-o", "-", f"s3://{BUCKET}/{prefix}")
                self.assertEqual(p.returncode, 0, p.stderr.decode())
                self.assertEqual(p.stdout, b"")
                self.assertIn(f"s3://{BUCKET}/{prefix[:-1]}: {why}, nothing to share",
                              p.stderr.decode())

    def test_unpathable_keys_left_out(self):
        body = os.path.join(self.tmp.name, "body")
        with open(body, "wb") as f:
            f.write(content(1000, 3))
        for key in ("odd/ok.bin", "odd/f", "odd/f/g.bin"):
            self.put_empty(key, body)
        # the mount's rules (docs/DESIGN.md §5): the directory f wins over the file f
        data, err = self.create(f"s3://{BUCKET}/odd/", "-m", "hybrid")
        self.assertIn(f"s3://{BUCKET}/odd/f: left out: a file and a directory both", err)
        self.assertEqual(err.count("\n"), 1, err)
        ref = os.path.join(self.tmp.name, "odd")
        os.makedirs(os.path.join(ref, "f"), exist_ok=True)
        for rel in ("ok.bin", "f/g.bin"):
            with open(os.path.join(ref, rel), "wb") as f:
                f.write(rd(body))
        local, _ = self.create(ref, "-m", "hybrid")
        self.assertEqual(data, local)

    def test_empty_segment_left_out(self):
        body = os.path.join(self.tmp.name, "body2")
        with open(body, "wb") as f:
            f.write(content(500, 4))
        self.put_empty("seg/ok.bin", body)
        p = self.s3.aws("s3api", "put-object", "--bucket", BUCKET, "--key", "seg/x//y.bin",
                        "--body", body, check=False)
        if not ON_RGW:  # s3rver refuses such a key (RGW, as S3 does, keeps it)
            self.assertNotEqual(p.returncode, 0, "s3rver took a key with an empty segment")
            return
        self.assertEqual(p.returncode, 0, p.stderr)
        data, err = self.create(f"s3://{BUCKET}/seg/")
        self.assertIn(f"s3://{BUCKET}/seg/x//y.bin: left out: an empty path segment", err)
        ref = os.path.join(self.tmp.name, "seg")
        os.makedirs(ref, exist_ok=True)
        with open(os.path.join(ref, "ok.bin"), "wb") as f:
            f.write(rd(body))
        # a single file below a set is still a multi-file torrent of one file
        local, _ = self.create(ref)
        self.assertEqual(data, local)

    def test_object_replaced_while_hashing(self):
        big = os.path.join(self.tmp.name, "big.bin")
        other = os.path.join(self.tmp.name, "other.bin")
        with open(big, "wb") as f:
            f.write(content(3 << 20, 5))
        with open(other, "wb") as f:
            f.write(content(3 << 20, 6))
        self.s3.put(BUCKET, "chg/one.bin", big)
        self.s3.put(BUCKET, "chg/two.bin", big)
        for meta in ("v1", "v2"):
            with self.subTest(meta=meta):
                self.s3.put(BUCKET, "chg/two.bin", big)
                gets = []
                lock = threading.Lock()

                def hook(method, path, headers):
                    # replaced as the first GET of it goes out: that GET (If-Match) must fail
                    with lock:
                        if method == "GET" and "chg/two.bin" in path and not gets:
                            gets.append(path)
                            self.s3.put(BUCKET, "chg/two.bin", other)

                proxy = FaultProxy(self.s3.port, hook=hook)
                try:
                    p = self.run_s3t("create", "-m", meta, "-o", "-", f"s3://{BUCKET}/chg/",
                                     endpoint=proxy.url)
                finally:
                    proxy.stop()
                err = p.stderr.decode()
                self.assertTrue(gets, "no GET of the object went out")
                self.assertEqual(p.returncode, 1, err)
                self.assertEqual(err.count("\n"), 1, err)
                self.assertIn(f"s3://{BUCKET}/chg/two.bin: object changed while hashing", err)
                self.assertEqual(p.stdout, b"")

    def test_webseed_is_the_prefix_parent(self):
        # clients append NAME/PATH (BEP 19): NAME is the prefix's last segment
        data, _ = self.create(f"s3://{BUCKET}/up/set/", "-w", "https://h.example/b/")
        self.assertIn(b"8:url-listl23:https://h.example/b/up/e", data)
        p = self.run_s3t("create", "-w", "https://h.example/b", "-n", "other", "-o", "-",
                         f"s3://{BUCKET}/up/set/")
        self.assertEqual(p.returncode, 2, p.stderr.decode())
        self.assertIn("the name must be the prefix's last segment, set", p.stderr.decode())

    def fresh_cache(self):
        return os.path.join(tempfile.mkdtemp(dir=self.tmp.name), "cache.db")

    def delete_torrents(self, prefix):
        self.s3.aws("s3", "rm", "--recursive", "--only-show-errors", "--exclude", "*",
                    "--include", "*.torrent", f"s3://{BUCKET}/{prefix}")

    def ranged_gets(self, target, *opts, cache):
        """The torrent made through a proxy, and how many object GETs it took."""
        gets = []
        lock = threading.Lock()

        def hook(method, path, headers):
            with lock:
                if method == "GET" and "Range" in headers:
                    gets.append(path)

        proxy = FaultProxy(self.s3.port, hook=hook)
        try:
            data, _ = self.create(target, *opts, endpoint=proxy.url, cache=cache)
        finally:
            proxy.stop()
        return data, len(gets)

    def test_composed_from_the_cache(self):
        # a session of 20 objects at 16 KiB pieces: most end in a short piece, which a padded
        # session hashes followed by zeros (BEP 47), some are whole pieces
        target = f"s3://{BUCKET}/sess/"
        for meta in ("v2", "hybrid"):
            opts = ("-l", "16K", "-m", meta)
            scratch, _ = self.create(target, *opts, "--no-cache")
            other, _ = self.create(target, *opts, "-c", "another", "--no-cache")
            with self.subTest(meta=meta, first="the session"):
                # a session hashed before leaves each object's hashes: the next reads nothing
                # (another comment, so that the torrent's own cache entry does not answer)
                cache = self.fresh_cache()
                first, n1 = self.ranged_gets(target, *opts, cache=cache)
                again, n2 = self.ranged_gets(target, *opts, "-c", "another", cache=cache)
                self.assertEqual(first, scratch)
                self.assertEqual(again, other)
                self.assertGreaterEqual(n1, len(SESSION))
                self.assertEqual(n2, 0)
                # the same torrent again: its own entry (the listing's paths, sizes and ETags
                # unchanged), no object read
                same, n4 = self.ranged_gets(target, *opts, cache=cache)
                self.assertEqual((same, n4), (scratch, 0))
            with self.subTest(meta=meta, first="each object's own torrent"):
                cache = self.fresh_cache()
                for key in SESSION:
                    self.create(f"s3://{BUCKET}/sess/{key}", *opts, cache=cache)
                composed, n = self.ranged_gets(target, *opts, cache=cache)
                self.assertEqual(n, 0)
                self.assertEqual(composed, scratch)
            with self.subTest(meta=meta, first="sync"):
                # sync leaves KEY.torrent beside each object, which the session leaves out
                cache = self.fresh_cache()
                p = self.run_s3t("sync", "--no-date", *opts, f"s3://{BUCKET}/sess/", cache=cache)
                self.assertEqual(p.returncode, 0, p.stderr.decode())
                composed, n = self.ranged_gets(target, *opts, "--exclude", "*.torrent",
                                               cache=cache)
                self.assertEqual(n, 0)
                self.assertEqual(composed, scratch)
                self.delete_torrents("sess/")
        # hybrid entries serve a v2 session; v2 ones lack the v1 pieces a hybrid one needs
        cache = self.fresh_cache()
        for key in SESSION:
            self.create(f"s3://{BUCKET}/sess/{key}", "-l", "16K", "-m", "hybrid", cache=cache)
        _, n = self.ranged_gets(target, "-l", "16K", "-m", "v2", cache=cache)
        self.assertEqual(n, 0)
        cache = self.fresh_cache()
        for key in SESSION:
            self.create(f"s3://{BUCKET}/sess/{key}", "-l", "16K", "-m", "v2", cache=cache)
        _, n = self.ranged_gets(target, "-l", "16K", "-m", "hybrid", cache=cache)
        self.assertGreaterEqual(n, len(SESSION))
        # another piece length has other hashes: read again
        _, n3 = self.ranged_gets(target, "-l", "32K", "-m", "v2", cache=cache)
        self.assertGreater(n3, 0)

    def test_object_from_the_cache(self):
        # `create s3://BUCKET/KEY --cache PATH` keeps the object's hashes and takes them back:
        # the same bytes as from scratch, the second time with no GET
        key = f"s3://{BUCKET}/sess/{sorted(SESSION)[3]}"
        cache = self.fresh_cache()
        for meta in ("v1", "v2", "hybrid"):
            with self.subTest(meta=meta):
                opts = ("-l", "16K", "-m", meta)
                scratch, _ = self.create(key, *opts, "--no-cache")
                first, n1 = self.ranged_gets(key, *opts, cache=cache)
                again, n2 = self.ranged_gets(key, *opts, cache=cache)
                self.assertEqual((first, again), (scratch, scratch))
                self.assertGreater(n1, 0)
                self.assertEqual(n2, 0)

    def test_bucket_and_prefix_spellings(self):
        # s3://BUCKET/PREFIX without the '/' is an object; a missing one says so
        p = self.run_s3t("create", "-o", "-", f"s3://{BUCKET}/up/set")
        self.assertEqual(p.returncode, 1)
        self.assertIn("up/set", p.stderr.decode())
        p = self.run_s3t("create", "--pad", "-o", "-", f"s3://{BUCKET}/up/set/a.txt")
        self.assertEqual(p.returncode, 2)
        self.assertIn("apply to a directory or a prefix", p.stderr.decode())


if __name__ == "__main__":
    unittest.main()
