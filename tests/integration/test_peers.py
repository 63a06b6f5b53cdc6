#!/usr/bin/python3
"""Cross-checks s3torrent against independent implementations: mktorrent (v1),
python3-libtorrent (v2, hybrid, magnet links) and transmission-show, plus the command's
behaviour on bad input. Run with Debian's /usr/bin/python3 (it has the libtorrent binding);
S3TORRENT names the binary under test."""
import json
import os
import stat
import subprocess
import tempfile
import unittest

import libtorrent as lt

from services import libtorrent_check

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))


def run(*args, check=True, **kw):
    p = subprocess.run([S3T, *args], capture_output=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"s3torrent {' '.join(args)} failed: {p.stderr.decode()}")
    return p


def content(path, size, seed=0):
    """Writes size bytes of a reproducible pattern (byte i = (i * 7 + seed) mod 253)."""
    block = bytes((i * 7 + seed) % 253 for i in range(253 * 1024))
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)


def rd(path):
    with open(path, "rb") as f:
        return f.read()


def wr(path, data):
    with open(path, "wb") as f:
        f.write(data)


def lt_hashes(data):
    ti = lt.torrent_info(lt.bdecode(data))
    ih = ti.info_hashes()
    v1 = str(ih.v1) if ih.has_v1() else None
    v2 = str(ih.v2) if ih.has_v2() else None
    return v1, v2


def lt_create(path, piece_length, v2_only=False):
    fs = lt.file_storage()
    lt.add_files(fs, path)
    flags = lt.create_torrent.v2_only if v2_only else 0
    ct = lt.create_torrent(fs, piece_length, flags=flags)
    lt.set_piece_hashes(ct, os.path.dirname(path))
    return lt.bencode(ct.generate())


class Peers(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def p(self, name):
        return os.path.join(self.dir, name)

    def create(self, path, *opts):
        out = self.p("out.torrent")
        r = run("create", "--force", "--json", "-o", out, *opts, path)
        return json.loads(r.stdout), rd(out)

    def test_v1_equals_mktorrent(self):
        for size, log2 in [(1, 15), (16383, 16), (1000000, 18), (3 * 1048576 + 5, 20),
                           (20000000, 21)]:
            with self.subTest(size=size, piece=1 << log2):
                f = self.p("rec ording+1.bin")
                content(f, size, seed=size % 11)
                mk = self.p("mk.torrent")
                if os.path.exists(mk):
                    os.unlink(mk)
                subprocess.run(["mktorrent", "-l", str(log2), "-a", "udp://t.example:1/ann",
                                "-o", mk, f], check=True, capture_output=True)
                ours, _ = self.create(f, "--piece-length", str(1 << log2))
                want, _ = lt_hashes(rd(mk))
                self.assertEqual(ours["info_hash"], want)

    def test_v2_and_hybrid_equal_libtorrent(self):
        sizes = [1, 16383, 16384, 16385, 40000, 1048577, 150000]
        for size in sizes:
            for plen in (16384, 65536, 262144):
                for meta in ("hybrid", "v2"):
                    with self.subTest(size=size, piece=plen, meta=meta):
                        f = self.p("x.bin")
                        content(f, size, seed=3)
                        ref = lt_create(f, plen, v2_only=(meta == "v2"))
                        ref_v1, ref_v2 = lt_hashes(ref)
                        ours, data = self.create(f, "--piece-length", str(plen),
                                                 "--meta-version", meta)
                        self.assertEqual(ours["info_hash_v2"], ref_v2)
                        self.assertEqual(ours.get("info_hash"), ref_v1)
                        # libtorrent loads ours to the same hashes
                        self.assertEqual(lt_hashes(data), (ref_v1, ref_v2))

    def test_libtorrent_checks_hybrid_data(self):
        f = self.p("data.bin")
        content(f, 3 * 1048576 + 777, seed=5)
        _, data = self.create(f, "--meta-version", "hybrid", "--piece-length", "64K")
        st = libtorrent_check(lt.torrent_info(lt.bdecode(data)), self.dir)
        self.assertEqual(st.progress, 1.0)
        self.assertTrue(st.is_seeding)

    def test_transmission_show_parses(self):
        f = self.p("show me.bin")
        content(f, 700000)
        ours, _ = self.create(f, "-t", "udp://a.example:1/announce", "-t",
                              "http://b.example/announce", "-w", "http://w.example/b/",
                              "--comment", "hello", "--source", "SRC", "--private")
        out = subprocess.run(["transmission-show", self.p("out.torrent")], capture_output=True,
                             text=True, check=True).stdout
        self.assertIn(f"Hash: {ours['info_hash']}", out)
        self.assertIn("Name: show me.bin", out)
        self.assertIn("Private torrent", out)
        self.assertIn("http://w.example/b/show%20me.bin", out)
        self.assertIn("Tier #2", out)
        # and our own show says the same things
        mine = run("show", self.p("out.torrent")).stdout.decode()
        for line in (f"Hash: {ours['info_hash']}", "Name: show me.bin", "Private torrent",
                     "http://w.example/b/show%20me.bin", "Tier #2", "Comment: hello",
                     "Piece Count: 3"):
            self.assertIn(line, mine)

    def test_magnet_parsed_by_libtorrent(self):
        f = self.p("m agnet+é.bin")
        content(f, 100000)
        for meta in ("v1", "v2", "hybrid"):
            with self.subTest(meta=meta):
                ours, _ = self.create(f, "--meta-version", meta, "-t", "udp://a.example:1/x",
                                      "-w", "http://w.example/")
                uri = run("magnet", self.p("out.torrent")).stdout.decode().strip()
                atp = lt.parse_magnet_uri(uri)
                ih = atp.info_hashes
                self.assertEqual(str(ih.v1) if ih.has_v1() else None, ours.get("info_hash"))
                self.assertEqual(str(ih.v2) if ih.has_v2() else None, ours.get("info_hash_v2"))
                self.assertEqual(atp.name, "m agnet+é.bin")
                self.assertEqual(list(atp.trackers), ["udp://a.example:1/x"])
                # v2-only: the web seed is the directory, which libtorrent completes with the name
                self.assertEqual(list(atp.url_seeds),
                                 ["http://w.example/" if meta == "v2" else
                                  "http://w.example/m%20agnet%2B%C3%A9.bin"])

    def test_deterministic_and_threads(self):
        f = self.p("d.bin")
        content(f, 9 * 1048576 + 3)
        outs = []
        for threads in ("1", "2", "5"):
            _, data = self.create(f, "--meta-version", "hybrid", "--threads", threads)
            outs.append(data)
        self.assertEqual(outs[0], outs[1])
        self.assertEqual(outs[1], outs[2])
        # the creation date is the file's mtime, so a rerun is byte-identical
        os.utime(f, (1700000000, 1700000000))
        _, a = self.create(f)
        _, b = self.create(f)
        self.assertEqual(a, b)
        self.assertIn(b"13:creation datei1700000000e", a)

    def test_beyond_4gib_sparse(self):
        f = self.p("big.bin")
        with open(f, "wb") as fh:
            fh.truncate(5 * 1024 ** 3)
            fh.seek(4 * 1024 ** 3 + 12345)
            fh.write(b"past four gibibytes")
        mk = self.p("big-mk.torrent")
        subprocess.run(["mktorrent", "-l", "22", "-o", mk, f], check=True, capture_output=True)
        ours, _ = self.create(f, "--piece-length", "4M")
        self.assertEqual(ours["info_hash"], lt_hashes(rd(mk))[0])
        self.assertEqual(ours["size"], 5 * 1024 ** 3)


class BadInput(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def one_line_error(self, r, needle, code=1):
        err = r.stderr.decode()
        self.assertEqual(r.returncode, code, err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn(needle, err)

    def test_missing_unreadable_directory_zero(self):
        self.one_line_error(run("create", os.path.join(self.dir, "nope"), check=False),
                            "No such file or directory")
        # a directory without files: nothing to share, as for a zero-byte file
        r = run("create", self.dir, check=False, cwd=self.dir)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stderr.decode(), f"s3torrent: {self.dir}: no files, nothing to share; "
                         "no torrent written\n")
        self.assertEqual(os.listdir(self.dir), [])
        z = os.path.join(self.dir, "zero")
        wr(z, b"")
        r = run("create", z, check=False, cwd=self.dir)
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"zero-byte file, nothing to share", r.stderr)
        self.assertFalse(os.path.exists(z + ".torrent"))
        if os.geteuid() != 0:  # root reads anything
            u = os.path.join(self.dir, "unreadable")
            content(u, 10)
            os.chmod(u, 0)
            self.one_line_error(run("create", u, check=False), "Permission denied")

    def test_overwrite_refused_without_force(self):
        f = os.path.join(self.dir, "a.bin")
        content(f, 1000)
        run("create", f, cwd=self.dir)
        before = rd(f + ".torrent")
        self.one_line_error(run("create", "-t", "udp://other:1", f, check=False, cwd=self.dir),
                            "already exists (use --force to overwrite)")
        self.assertEqual(rd(f + ".torrent"), before)
        run("create", "--force", "-t", "udp://other:1", f, cwd=self.dir)
        self.assertNotEqual(rd(f + ".torrent"), before)
        r = run("create", "-o", "-", f)
        self.assertTrue(r.stdout.startswith(b"d8:announce"))
        self.assertEqual([n for n in os.listdir(self.dir) if ".tmp." in n], [])

    def test_output_that_is_not_a_file_is_written_into(self):
        """-o naming a FIFO or a character device writes into it, as a shell's `>` does, and
        leaves it what it was: a new file renamed over the path replaced it (as root,
        `-o /dev/null --force` left a regular file where the null device was). A symlink is
        followed; /dev/stdout and /dev/stderr are those descriptors."""
        f = os.path.join(self.dir, "a.bin")
        content(f, 100000)
        want = run("create", "-o", "-", f).stdout
        fifo = os.path.join(self.dir, "fifo")
        os.mkfifo(fifo)
        for force in ((), ("--force",)):
            rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, so the open does not wait
            try:
                run("create", *force, "-o", fifo, f, timeout=60)
                got = b""
                while chunk := os.read(rfd, 1 << 16):
                    got += chunk
            finally:
                os.close(rfd)
            self.assertEqual(got, want, force)
            self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode), force)
        self.assertEqual(run("create", "-o", "/dev/stdout", f, timeout=60).stdout, want)
        self.assertEqual(run("create", "-o", "/dev/stderr", f, timeout=60).stderr, want)
        # a symlink to a file: refused without --force, then the file replaced, the link kept
        target, link = os.path.join(self.dir, "target.torrent"), os.path.join(self.dir, "link")
        wr(target, b"old")
        os.symlink("target.torrent", link)
        self.one_line_error(run("create", "-o", link, f, check=False),
                            "already exists (use --force to overwrite)")
        self.assertEqual(rd(target), b"old")
        run("create", "--force", "-o", link, f)
        self.assertTrue(os.path.islink(link))
        self.assertEqual(rd(target), want)
        # a dangling symlink makes its target; a directory is refused
        os.symlink("made.torrent", os.path.join(self.dir, "dangling"))
        run("create", "-o", os.path.join(self.dir, "dangling"), f)
        self.assertEqual(rd(os.path.join(self.dir, "made.torrent")), want)
        self.one_line_error(run("create", "--force", "-o", self.dir, f, check=False),
                            "is a directory")
        if os.geteuid() == 0:  # only root makes device nodes: a null device of our own
            null = os.path.join(self.dir, "null")
            os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            run("create", "--force", "-o", null, f, timeout=60)
            self.assertTrue(stat.S_ISCHR(os.lstat(null).st_mode))
        self.assertEqual([n for n in os.listdir(self.dir) if ".tmp." in n], [])

    def test_usage_errors(self):
        for args, needle in [(("create",), "exactly one FILE"),
                             (("create", "--piece-length", "3000", "x"), "power of two"),
                             (("create", "--meta-version", "v3", "x"), "v1, v2 or hybrid"),
                             (("create", "--threads", "0", "x"), "--threads"),
                             (("frobnicate",), "unknown command")]:
            with self.subTest(args=args):
                r = run(*args, check=False)
                self.assertEqual(r.returncode, 2)
                self.assertIn(needle, r.stderr.decode())

    def test_bad_torrents(self):
        f = os.path.join(self.dir, "a.bin")
        content(f, 300000)
        t = os.path.join(self.dir, "a.torrent")
        run("create", "-o", t, f)
        good = rd(t)
        cases = {
            "truncated": good[: len(good) // 2],
            "empty": b"",
            "garbage": b"\x00\xff" * 100,
            "deep": b"l" * 5000 + b"e" * 5000,
            "huge-length": b"d4:infod6:lengthi99999999999999999999e4:name1:aee",
            # found by the fuzzer: a file name with a newline, quoted in the message
            "newline-in-name": open(os.path.join(
                os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "regressions",
                "metainfo", "newline-in-pad-file-name.torrent"), "rb").read(),
        }
        for name, data in cases.items():
            with self.subTest(name):
                p = os.path.join(self.dir, name + ".torrent")
                wr(p, data)
                for cmd in (("show",), ("magnet",), ("verify",)):
                    args = (*cmd, p, f) if cmd[0] == "verify" else (*cmd, p)
                    self.one_line_error(run(*args, check=False), "invalid torrent")

    def test_verify_names_first_bad_piece(self):
        f = os.path.join(self.dir, "v.bin")
        content(f, 5 * 262144 + 99)
        t = os.path.join(self.dir, "v.torrent")
        for meta in ("v1", "v2", "hybrid"):
            with self.subTest(meta):
                content(f, 5 * 262144 + 99)
                run("create", "--force", "-m", meta, "-o", t, f)
                self.assertIn(b"OK, 6 pieces match", run("verify", t, f).stdout)
                with open(f, "r+b") as fh:
                    fh.seek(3 * 262144 + 10)
                    fh.write(b"X")
                self.one_line_error(run("verify", t, f, check=False),
                                    "piece 3 of 6 does not match the torrent")
                with open(f, "ab") as fh:
                    fh.write(b"more")
                self.one_line_error(run("verify", t, f, check=False), "size differs")


if __name__ == "__main__":
    unittest.main(verbosity=2)
