#!/usr/bin/python3
"""Multi-file torrents (`s3torrent create DIR`, docs/DESIGN.md §3) against independent
implementations: v1 info-hashes equal mktorrent's (and transmission-create's where its order and
rules agree), v2, hybrid and padded v1 ones equal python3-libtorrent's, libtorrent checks the
directory at 100% with ours; show lists the files and verify names the first bad file and
piece. Run with Debian's /usr/bin/python3; S3TORRENT names the binary under test. The class
Large hashes a 4 GiB sparse file (v1 against mktorrent)."""
import json
import os
import subprocess
import tempfile
import unittest

import libtorrent as lt

from services import content, libtorrent_check

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))

# name -> size: nested directories, empty files, spaces and unicode, dot-files, names whose
# order differs between whole-path byte order (mktorrent) and BEP 52's tree order ("a b/..",
# "a.txt" and "a/.." ), files of one block, under and over a piece, and of several pieces
TREE = {
    "a/x.bin": 70001,
    "a/deep/er/one.bin": 16384,
    "a b/y.bin": 1,
    "a.txt": 33000,
    "B upper.bin": 5,
    "empty.bin": 0,
    "sub/empty too": 0,
    "sub/été 录音 🎵.bin": 200000,
    ".hidden": 17,
    ".dotdir/f": 300,
    "z/last.bin": 65536,
}


def run(*args, check=True):
    p = subprocess.run([S3T, *args], capture_output=True)
    if check and p.returncode != 0:
        raise AssertionError(f"s3torrent {' '.join(args)} failed: {p.stderr.decode()}")
    return p


def rd(path):
    with open(path, "rb") as f:
        return f.read()


def make_tree(root, tree):
    for i, (rel, size) in enumerate(sorted(tree.items())):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content(size, i))
        os.chmod(path, 0o644)  # no BEP 47 'x' attribute from libtorrent


def hashes(data):
    ti = lt.torrent_info(lt.bdecode(data))
    ih = ti.info_hashes()
    return (str(ih.v1) if ih.has_v1() else None, str(ih.v2) if ih.has_v2() else None)


def lt_create(path, piece_length, flags):
    fs = lt.file_storage()
    lt.add_files(fs, path)
    ct = lt.create_torrent(fs, piece_length, flags=flags)
    lt.set_piece_hashes(ct, os.path.dirname(path))
    return lt.bencode(ct.generate())


def files_of(data):
    """The (path, length, attr) of a v1 files list, as stored."""
    info = lt.bdecode(data)[b"info"]
    return [(b"/".join(e[b"path"]).decode(), e[b"length"], e.get(b"attr"))
            for e in info[b"files"]]


class MultiFile(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.top = self.tmp.name
        self.dir = os.path.join(self.top, "my tree")
        make_tree(self.dir, TREE)

    def tearDown(self):
        self.tmp.cleanup()

    def create(self, *opts, path=None):
        out = os.path.join(self.top, "ours.torrent")
        r = run("create", "--force", "--json", "--no-date", "-o", out, *opts, path or self.dir)
        return json.loads(r.stdout), rd(out)

    def test_v1_equals_mktorrent(self):
        for log2 in (15, 16, 18, 20):  # mktorrent's smallest piece is 32 KiB
            with self.subTest(piece=1 << log2):
                mk = os.path.join(self.top, f"mk{log2}.torrent")
                subprocess.run(["mktorrent", "-l", str(log2), "-o", mk, self.dir],
                               check=True, capture_output=True)
                ours, data = self.create("--piece-length", str(1 << log2))
                self.assertEqual(ours["info_hash"], hashes(rd(mk))[0])
                self.assertEqual(ours["file_count"], len(TREE))
                self.assertEqual(ours["size"], sum(TREE.values()))
                self.assertEqual(files_of(data), files_of(rd(mk)))
                self.assertEqual(len(data), ours["torrent_size"])

    def test_v1_equals_transmission_create(self):
        # transmission-create 3.00 leaves out dot-files and empty files, sorts ASCII case-
        # insensitively with bytes over 0x7f first (on this tree, our order) and writes
        # "private" 0 unless private, where we write nothing: private torrents compare
        tree = {"a/x.bin": 70001, "a b/y.bin": 1, "a.txt": 33000, "m/n/o.bin": 16384,
                "zz.bin": 3}
        d = os.path.join(self.top, "tr")
        make_tree(d, tree)
        tr = os.path.join(self.top, "tr.torrent")
        subprocess.run(["transmission-create", "-p", "-t", "udp://t.example:1/ann", "-s", "32",
                        "-o", tr, d], check=True, capture_output=True)
        ours, data = self.create("--piece-length", "32K", "--private", path=d)
        self.assertEqual(ours["info_hash"], hashes(rd(tr))[0])
        self.assertEqual(files_of(data), files_of(rd(tr)))

    def test_v2_hybrid_and_padded_v1_equal_libtorrent(self):
        C = lt.create_torrent
        cases = [("hybrid", 0, ()), ("v2", C.v2_only, ()),
                 ("v1", C.v1_only | C.canonical_files, ("--pad",))]
        for plen in (16384, 65536, 1 << 20):
            for meta, flags, extra in cases:
                with self.subTest(meta=meta, piece=plen, extra=extra):
                    ref = lt_create(self.dir, plen, flags)
                    ours, data = self.create("--piece-length", str(plen), "--meta-version",
                                             meta, *extra)
                    want = hashes(ref)
                    self.assertEqual((ours.get("info_hash"), ours.get("info_hash_v2")), want)
                    self.assertEqual(hashes(data), want)
                    self.assertEqual(len(data), ours["torrent_size"])
                    if meta != "v2":
                        self.assertEqual(files_of(data), files_of(ref))
                        # BEP 47 pads as libtorrent writes them: attr p, path .pad/N
                        pads = [f for f in files_of(data) if f[2] == b"p"]
                        self.assertTrue(pads)
                        self.assertTrue(all(p == f".pad/{n}" for p, n, _ in pads))

    def test_large_and_small_files(self):
        # files of 16 MiB and more are hashed one after another with every thread, the others
        # a file per thread: both kinds in one torrent, against libtorrent
        d = os.path.join(self.top, "mixed")
        make_tree(d, {"big/one.bin": (17 << 20) + 3, "big/two.bin": 16 << 20, "s1": 1000,
                      "s2/x": 70000, "s3": 0})
        C = lt.create_torrent
        for meta, flags in (("hybrid", 0), ("v2", C.v2_only)):
            for threads in ("1", "3"):
                with self.subTest(meta=meta, threads=threads):
                    ours, data = self.create("--piece-length", "1M", "--meta-version", meta,
                                             "--threads", threads, path=d)
                    self.assertEqual(hashes(data), hashes(lt_create(d, 1 << 20, flags)))

    def test_one_file_in_a_directory(self):
        # still a directory torrent, and (as libtorrent does) no pad for a lone file
        d = os.path.join(self.top, "solo")
        make_tree(d, {"only.bin": 50000})
        for meta, flags in (("hybrid", 0), ("v2", lt.create_torrent.v2_only)):
            ours, data = self.create("--piece-length", "16K", "--meta-version", meta, path=d)
            self.assertEqual(hashes(data), hashes(lt_create(d, 16384, flags)))
        mk = os.path.join(self.top, "solo.torrent")
        subprocess.run(["mktorrent", "-l", "15", "-o", mk, d], check=True, capture_output=True)
        ours, _ = self.create("--piece-length", "32K", path=d)
        self.assertEqual(ours["info_hash"], hashes(rd(mk))[0])

    def test_libtorrent_checks_our_torrents(self):
        for meta, extra in (("hybrid", ()), ("v2", ()), ("v1", ()), ("v1", ("--pad",))):
            with self.subTest(meta=meta, extra=extra):
                _, data = self.create("--piece-length", "16K", "--meta-version", meta, *extra)
                st = libtorrent_check(lt.torrent_info(lt.bdecode(data)), self.top)
                self.assertEqual(st.progress, 1.0)
                self.assertTrue(st.is_seeding)

    def test_show_verify_magnet(self):
        for meta, extra in (("v1", ()), ("v1", ("--pad",)), ("hybrid", ()), ("v2", ())):
            with self.subTest(meta=meta, extra=extra):
                ours, data = self.create("--piece-length", "16K", "--meta-version", meta, *extra)
                t = os.path.join(self.top, "ours.torrent")
                shown = json.loads(run("show", "--json", t).stdout)
                self.assertEqual({f["path"]: f["length"] for f in shown["files"]}, TREE)
                self.assertEqual(shown["total_size"], sum(TREE.values()))
                text = run("show", t).stdout.decode()
                self.assertIn("  my tree/sub/été 录音 🎵.bin (200.0 kB)\n", text)
                self.assertIn("  my tree/empty.bin (0 B)\n", text)
                self.assertNotIn(".pad", text)
                magnet = run("magnet", t).stdout.decode().strip()
                self.assertIn("dn=my%20tree", magnet)
                self.assertEqual(lt.parse_magnet_uri(magnet).info_hashes, lt.torrent_info(
                    lt.bdecode(data)).info_hashes())
                r = run("verify", t, self.dir)
                self.assertRegex(r.stdout.decode(), r"my tree: OK, \d+ pieces of 11 files match")

    def test_verify_names_the_first_bad_file_and_piece(self):
        bad = os.path.join(self.dir, "sub", "été 录音 🎵.bin")
        for meta, extra in (("v1", ()), ("v1", ("--pad",)), ("hybrid", ()), ("v2", ())):
            with self.subTest(meta=meta, extra=extra):
                make_tree(self.dir, TREE)
                self.create("--piece-length", "16K", "--meta-version", meta, *extra)
                t = os.path.join(self.top, "ours.torrent")
                with open(bad, "r+b") as f:  # byte 3 * 16384 + 5 of the file: its piece 3
                    f.seek(3 * 16384 + 5)
                    b = f.read(1)
                    f.seek(3 * 16384 + 5)
                    f.write(bytes([b[0] ^ 0xff]))
                r = run("verify", t, self.dir + "/", check=False)
                self.assertEqual(r.returncode, 1)
                err = r.stderr.decode()
                self.assertEqual(err.count("\n"), 1, err)
                if meta == "v2" or meta == "hybrid":
                    self.assertIn(f"{bad}: piece 3 of 13 does not match the torrent", err)
                else:
                    # v1: the torrent's piece; the file starts mid-piece without pads
                    files = files_of(rd(t))
                    off = 0
                    for p, n, _ in files:
                        if p == "sub/été 录音 🎵.bin":
                            break
                        off += n
                    piece = (off + 3 * 16384 + 5) // 16384
                    self.assertIn(f"{bad}: piece {piece} of ", err)
                # a missing file is named too
                os.unlink(os.path.join(self.dir, "a.txt"))
                r = run("verify", t, self.dir, check=False)
                self.assertEqual(r.returncode, 1)
                self.assertIn("a.txt: No such file or directory", r.stderr.decode())

    def test_walk_rules(self):
        # symbolic links are left out (to a file, a directory, or outside the tree), as are
        # empty directories; --include/--exclude match the path below DIR
        os.symlink("a.txt", os.path.join(self.dir, "link.txt"))
        os.symlink("a", os.path.join(self.dir, "dirlink"))
        os.symlink("/etc/hostname", os.path.join(self.dir, "out"))
        os.makedirs(os.path.join(self.dir, "nothing", "here"))
        _, data = self.create()
        self.assertEqual(sorted(p for p, _, _ in files_of(data)), sorted(TREE))
        _, data = self.create("--exclude", "*.bin", "--exclude", "sub")
        self.assertEqual(sorted(p for p, _, _ in files_of(data)),
                         [".dotdir/f", ".hidden", "a.txt"])
        _, data = self.create("--include", "a/*", "--include", "*.txt")
        self.assertEqual(sorted(p for p, _, _ in files_of(data)),
                         ["a.txt", "a/deep/er/one.bin", "a/x.bin"])
        # patterns belong to directories
        f = os.path.join(self.dir, "a.txt")
        r = run("create", "--exclude", "x", "-o", "-", f, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("apply to a directory", r.stderr.decode())

    def test_web_seed_is_the_directory_url(self):
        # BEP 19: for a multi-file torrent clients fetch URL + name + '/' + path
        for base in ("http://h.example/files", "http://h.example/files/"):
            self.create("--webseed", base)
            d = lt.bdecode(rd(os.path.join(self.top, "ours.torrent")))
            self.assertEqual(d[b"url-list"], [b"http://h.example/files/"])

    def test_refusals(self):
        # a name that cannot be a torrent path segment: one line naming the file, nothing
        # written
        bad = os.path.join(self.dir, "sub", "new\nline")
        with open(bad, "wb") as f:
            f.write(b"x")
        out = os.path.join(self.top, "none.torrent")
        r = run("create", "-o", out, self.dir, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.decode(),
                         f"s3torrent: {self.dir}/sub/new?line: not a valid path segment: "
                         "torrent name contains '/' or a control character\n")
        self.assertFalse(os.path.exists(out))
        os.unlink(bad)
        # not UTF-8 (BEP 3): libtorrent would rename it, and its peers ask for another file
        latin1 = os.path.join(self.dir.encode(), b"caf\xe9")
        with open(latin1, "wb") as f:
            f.write(b"x")
        r = run("create", "-o", out, self.dir, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.count(b"\n"), 1)
        self.assertIn(b"/caf\xe9: not a valid path segment: not UTF-8\n", r.stderr)
        os.unlink(latin1)
        # nothing to share: said, exit 0, nothing written
        for tree in ({}, {"e1": 0, "d/e2": 0}):
            d = tempfile.mkdtemp(dir=self.top)
            make_tree(d, tree)
            r = run("create", "-o", out, d, check=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("nothing to share; no torrent written", r.stderr.decode())
            self.assertFalse(os.path.exists(out))


class Large(unittest.TestCase):
    """A file over 4 GiB (sparse: no disk) between small ones, so v1 pieces span files across
    the 32-bit boundary: the info-hash equals mktorrent's."""

    def test_over_4_gib_equals_mktorrent(self):
        with tempfile.TemporaryDirectory() as top:
            d = os.path.join(top, "large")
            make_tree(d, {"a.bin": 1000, "c.bin": 12345})
            with open(os.path.join(d, "b.huge"), "wb") as f:
                f.truncate((4 << 30) + 777)
                f.seek(3 << 30)
                f.write(b"not only zeros")
            mk = os.path.join(top, "mk.torrent")
            subprocess.run(["mktorrent", "-l", "24", "-o", mk, d], check=True,
                           capture_output=True)
            out = os.path.join(top, "ours.torrent")
            r = run("create", "--json", "-l", "16M", "-o", out, d)
            ours = json.loads(r.stdout)
            self.assertEqual(ours["info_hash"], hashes(rd(mk))[0])
            self.assertEqual(ours["size"], (4 << 30) + 777 + 1000 + 12345)


if __name__ == "__main__":
    unittest.main()
