#!/usr/bin/python3
"""Installing s3torrent as an operator does: `cmake --install` puts every program, man page,
the bash completion, the systemd template unit and the examples in place, and they work from
there; the Debian package made by CPack is lintian-clean, installs with apt into a clean
Debian root made by debootstrap, runs there, mounts through fuse3's mount helper
(`mount -t fuse.s3torrentfs`), and removes cleanly. BUILD names the build tree to install
(default: build); S3TORRENT the host's s3torrent, to compare output."""
import gzip
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from services import S3rver, aws_env

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.environ.get("BUILD", os.path.join(ROOT, "build")))
S3T = os.path.abspath(os.environ.get("S3TORRENT", os.path.join(BUILD, "tools", "s3torrent")))
VERSION = re.search(r"project\(s3torrent VERSION (\S+)",
                    open(os.path.join(ROOT, "CMakeLists.txt")).read()).group(1)
PROGRAMS = ("s3torrent", "s3torrentfs", "s3torrent-lambda")


def run(*args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(list(args), **kw)


def man_text(path):
    with gzip.open(path, "rt") as f:
        return f.read()


class CmakeInstall(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dest = cls.tmp.name
        p = run("cmake", "--install", BUILD, "--prefix", "/usr",
                env={**os.environ, "DESTDIR": cls.dest})
        if p.returncode != 0:
            raise AssertionError(p.stdout + p.stderr)
        cls.usr = os.path.join(cls.dest, "usr")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_files(self):
        got = sorted(os.path.relpath(os.path.join(d, f), self.dest)
                     for d, _, fs in os.walk(self.dest) for f in fs)
        self.assertEqual(got, sorted([
            "usr/bin/s3torrent", "usr/bin/s3torrentfs", "usr/bin/s3torrent-lambda",
            "usr/lib/systemd/system/s3torrentfs@.service",
            "usr/lib/systemd/system/s3torrent-serve.service",
            "usr/share/bash-completion/completions/s3torrent",
            "usr/share/doc/s3torrent/changelog.gz", "usr/share/doc/s3torrent/copyright",
            "usr/share/doc/s3torrent/examples/fstab.example",
            "usr/share/doc/s3torrent/examples/mnt-recordings.mount",
            "usr/share/doc/s3torrent/examples/s3torrentfs.conf",
            "usr/share/doc/s3torrent/examples/s3torrent-serve.conf",
            "usr/share/man/man1/s3torrent.1.gz", "usr/share/man/man1/s3torrent-lambda.1.gz",
            "usr/share/man/man8/s3torrentfs.8.gz"]))

    def test_programs_run_from_the_install(self):
        for prog in PROGRAMS:
            exe = os.path.join(self.usr, "bin", prog)
            p = run(exe, "--version")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(p.stdout.startswith(f"{prog} {VERSION}"), p.stdout)
            p = run(exe, "--help")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("Usage:", p.stdout)
            if prog == "s3torrent":  # and every command's --help: the usage alone, status 0
                for cmd in re.findall(r"^  ([a-z]+)  ", p.stdout, re.M):
                    h = run(exe, cmd, "--help")
                    self.assertEqual((h.returncode, h.stderr), (0, ""), cmd)
                    self.assertIn("Usage:", h.stdout)

    def test_man_pages_render_and_cover_every_option(self):
        pages = {"s3torrent": "man1/s3torrent.1.gz", "s3torrentfs": "man8/s3torrentfs.8.gz",
                 "s3torrent-lambda": "man1/s3torrent-lambda.1.gz"}
        for prog, rel in pages.items():
            path = os.path.join(self.usr, "share", "man", rel)
            p = run("man", "--warnings", "-l", path, env={**os.environ, "MANWIDTH": "80"})
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stderr, "", f"{rel}: groff warnings")
            self.assertIn("NAME", p.stdout)
            # every long option of --help (of each command) is in the page
            exe = os.path.join(self.usr, "bin", prog)
            helps = [run(exe, "--help").stdout]
            if prog == "s3torrent":
                cmds = re.findall(r"^  ([a-z]+)  ", helps[0], re.M)
                self.assertIn("sync", cmds)
                for c in cmds:  # each command's --help is an answer, not an error
                    h = run(exe, c, "--help")
                    self.assertEqual((h.returncode, h.stderr), (0, ""), c)
                    helps.append(h.stdout)
            page = p.stdout.replace("\u2010", "-").replace("\u2212", "-")
            page = re.sub(r"-\n\s*", "-", page)
            for h in helps:
                opts = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", h))
                if prog == "s3torrentfs":
                    opts = {o for o in re.findall(r"-o ([a-z_]+)", h)}
                for o in sorted(opts):
                    self.assertIn(o, page, f"{rel} does not document {o}")

    def complete(self, line):
        script = os.path.join(self.usr, "share", "bash-completion", "completions", "s3torrent")
        words = line.split(" ")
        prog = [f"COMP_WORDS=({' '.join(repr(w) for w in words)})",
                f"COMP_CWORD={len(words) - 1}",
                f"PATH={os.path.join(self.usr, 'bin')}:$PATH", f"source {script}",
                "_s3torrent", 'printf "%s\\n" "${COMPREPLY[@]}"']
        p = run("bash", "-c", "\n".join(prog))
        self.assertEqual(p.returncode, 0, p.stderr)
        return sorted(w for w in p.stdout.split("\n") if w)

    def test_bash_completion(self):
        self.assertEqual(self.complete("s3torrent cr"), ["create"])
        self.assertEqual(self.complete("s3torrent s"), ["seed", "serve", "show", "status", "sync"])
        self.assertEqual(self.complete("s3torrent create --piece"), ["--piece-length"])
        self.assertEqual(self.complete("s3torrent create -m h"), ["hybrid"])
        self.assertEqual(self.complete("s3torrent create --exc"), ["--exclude"])
        self.assertEqual(self.complete("s3torrent create --include "), [])  # a pattern
        self.assertEqual(self.complete("s3torrent sync --ddb-"),
                         ["--ddb-endpoint-url", "--ddb-key-attr", "--ddb-table"])
        self.assertEqual(self.complete("s3torrent serve --feed"),
                         ["--feed-hash-seconds", "--feed-items"])
        self.assertEqual(self.complete("s3torrent serve --redi"),
                         ["--redirect", "--redirect-expires"])
        self.assertEqual(self.complete("s3torrent --ver"), ["--version"])
        self.assertEqual(self.complete("s3torrent seed --client q"), ["qbittorrent"])
        self.assertEqual(self.complete("s3torrent sync -C "),
                         ["deluge", "qbittorrent", "transmission"])
        self.assertEqual(self.complete("s3torrent magnet --v1"), ["--v1-only"])
        here = os.getcwd()
        try:
            os.chdir(self.usr)
            self.assertEqual(self.complete("s3torrent seed -m sh"), ["share"])
            # a number follows, not a file name
            self.assertEqual(self.complete("s3torrent serve --redirect-expires s"), [])
        finally:
            os.chdir(here)


def apt_mirror():
    """The Debian mirror this machine's apt uses (deb822 or one-line sources)."""
    for path in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        if os.path.exists(path):
            with open(path) as f:
                text = f.read()
            m = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or \
                re.search(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+/debian)\s+bookworm", text, re.M)
            if m:
                return m.group(1)
    return "http://deb.debian.org/debian"


class DebPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        p = run(os.path.join(ROOT, "contrib", "dev", "package.sh"), cwd=ROOT)
        if p.returncode != 0:
            raise AssertionError(p.stdout + p.stderr)
        cls.deb = p.stdout.strip().splitlines()[-1]

    def test_control(self):
        fields = run("dpkg-deb", "-f", self.deb).stdout
        self.assertIn(f"Version: {VERSION}", fields)
        depends = re.search(r"^Depends: (.*)$", fields, re.M).group(1)
        for lib in ("fuse3", "libfuse3-3", "libcurl4", "libssl3", "libsqlite3-0", "libjson-c5",
                    "libexpat1", "libc6"):
            self.assertRegex(depends, rf"(^|, ){re.escape(lib)}( |,|$)", depends)
        files = run("dpkg-deb", "-c", self.deb).stdout
        for f in ("./usr/bin/s3torrentfs", "./lib/systemd/system/s3torrentfs@.service",
                  "./usr/share/man/man8/s3torrentfs.8.gz",
                  "./usr/share/bash-completion/completions/s3torrent"):
            self.assertIn(f, files)

    def test_lintian_clean(self):
        p = run("lintian", "--no-tag-display-limit", self.deb)
        self.assertEqual((p.returncode, p.stdout), (0, ""))

    def test_installs_runs_mounts_and_removes_in_a_clean_root(self):
        if os.geteuid() != 0:
            self.fail("this test builds a Debian root with debootstrap and must run as root")
        root = tempfile.mkdtemp(prefix="s3t-debroot-")
        mounted = []
        s3 = None
        try:
            p = run("debootstrap", "--variant=minbase", "bookworm", root, apt_mirror())
            self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
            shutil.copy(self.deb, os.path.join(root, "tmp", "s3torrent.deb"))

            def chroot(*args, env=None):
                return run("chroot", root, *args,
                           env=env or {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                       "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8"})
            p = chroot("apt-get", "install", "-y", "-q", "--no-install-recommends",
                       "/tmp/s3torrent.deb", "systemd", "man-db")
            self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-3000:])
            for prog in PROGRAMS:
                p = chroot(prog, "--version")
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertTrue(p.stdout.startswith(f"{prog} {VERSION}"), p.stdout)
            self.assertEqual(chroot("man", "-w", "s3torrentfs").stdout.strip(),
                             "/usr/share/man/man8/s3torrentfs.8.gz")
            for unit in ("s3torrentfs@srv-recordings.service", "s3torrent-serve.service"):
                p = chroot("systemd-analyze", "verify", unit)
                self.assertEqual((p.returncode, p.stderr), (0, ""), unit)

            # the installed programs make the same torrent as the tree under test
            with open(os.path.join(root, "tmp", "rec.bin"), "wb") as f:
                f.write(os.urandom(300000))
            want = subprocess.run([S3T, "create", "-t", "http://t.example/a", "-o", "-",
                                   os.path.join(root, "tmp", "rec.bin")], capture_output=True)
            self.assertEqual(want.returncode, 0)
            p2 = subprocess.run(["chroot", root, "s3torrent", "create", "-t", "http://t.example/a",
                                 "-o", "-", "/tmp/rec.bin"], capture_output=True)
            self.assertEqual(p2.stdout, want.stdout)

            # fstab's way: mount -t fuse.s3torrentfs goes through fuse3's mount helper
            s3 = S3rver(buckets=("pkgbucket",))
            s3.put("pkgbucket", "rec.bin", os.path.join(root, "tmp", "rec.bin"))
            for what, fstype in (("/dev", None), ("/proc", "proc")):
                target = os.path.join(root, what.lstrip("/"))
                if fstype:
                    subprocess.run(["mount", "-t", fstype, fstype, target], check=True)
                else:
                    subprocess.run(["mount", "--bind", what, target], check=True)
                mounted.insert(0, target)
            os.makedirs(os.path.join(root, "srv", "recordings"))
            env = aws_env({"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
            p = chroot("mount", "-t", "fuse.s3torrentfs", "pkgbucket", "/srv/recordings", "-o",
                       f"ro,endpoint={s3.url},trackers=http://t.example/a", env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
            mounted.insert(0, os.path.join(root, "srv", "recordings"))
            self.assertEqual(sorted(os.listdir(mounted[0])), ["rec.bin", "rec.bin.torrent"])
            want = subprocess.run([S3T, "create", "--endpoint-url", s3.url, "-t",
                                   "http://t.example/a", "-o", "-", "s3://pkgbucket/rec.bin"],
                                  capture_output=True, env=aws_env())
            self.assertEqual(want.returncode, 0, want.stderr)
            with open(os.path.join(mounted[0], "rec.bin.torrent"), "rb") as f:
                self.assertEqual(f.read(), want.stdout)
            with open("/proc/mounts") as f:  # the mount helper gave it our type
                types = [line.split()[2] for line in f if line.split()[1] == mounted[0]]
            self.assertEqual(types, ["fuse.s3torrentfs"])
            self.assertEqual(chroot("umount", "/srv/recordings").returncode, 0)
            mounted.pop(0)

            p = chroot("apt-get", "purge", "-y", "-q", "s3torrent")
            self.assertEqual(p.returncode, 0, p.stderr)
            for f in ("usr/bin/s3torrent", "usr/bin/s3torrentfs", "usr/bin/s3torrent-lambda",
                      "lib/systemd/system/s3torrentfs@.service", "usr/share/doc/s3torrent"):
                self.assertFalse(os.path.exists(os.path.join(root, f)), f)
        finally:
            for m in mounted:
                subprocess.run(["umount", "-l", m], capture_output=True)
            if s3:
                s3.stop()
            if not any(os.path.ismount(os.path.join(root, d)) for d in ("dev", "proc")):
                shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
