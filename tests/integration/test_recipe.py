"""The front ends agree on torrent options (docs/DESIGN.md §7): one table of sizes and a few option
sets go through `s3torrent create`, the mount's -o options, its config file and the Lambda's
environment; each front end must accept the same values, refuse the others with the same text
after the option's name, and make the same torrent bytes. One s3rver, one small object.
Run with S3TORRENT, S3TORRENTFS and S3TORRENT_LAMBDA pointing at the build."""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

from mount import FS, Mount
from services import S3, aws_env

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))
LAMBDA = os.path.abspath(os.environ.get("S3TORRENT_LAMBDA", "build/lambda-sync/s3torrent-lambda"))
BUCKET = "recipebucket"
KEY = "obj.bin"
RECIPE_ENV = ("TRACKERS", "WEBSEED_BASE", "META_VERSION", "PIECE_LENGTH", "PRIVATE", "SOURCE",
              "COMMENT", "NO_DATE", "S3TORRENT_CONFIG")

NOT_A_SIZE = "is not a size (digits with an optional K, M, G or T suffix, e.g. 256K or 4MiB)"
NOT_A_PIECE = "is not a power of two from 16K to 256M"

# (piece length as typed, what every front end must say: None accepted, else the refusal)
SIZES = [
    ("16K", None), ("16KiB", None), ("16Ki", None), ("16kib", None), ("16384", None),
    ("64KB", None), ("1M", None), ("256B", NOT_A_PIECE), (" 256K", NOT_A_SIZE),
    ("+256K", NOT_A_SIZE), ("1x", NOT_A_SIZE), ("0", NOT_A_PIECE), ("3K", NOT_A_PIECE),
    ("512M", NOT_A_PIECE), ("16 K", NOT_A_SIZE), ("1.5M", NOT_A_SIZE),
]

# option sets: (fields, None accepted, or (field refused, the refusal after its name))
SETS = [
    ({"meta": "v1"}, None),
    ({"meta": "v2", "piece_length": "32K"}, None),
    ({"meta": "hybrid", "piece_length": "16KiB"}, None),
    ({"trackers": ["http://a.example/announce", "udp://b.example:1337/announce"],
      "webseed": "http://w.example/pre/"}, None),
    ({"private": True, "source": "SRC", "comment": "a comment", "no_date": True}, None),
    ({"meta": "v3"}, ("meta", '"v3" is not a meta version (v1, v2 or hybrid)')),
    ({"trackers": ["nope"]}, ("trackers", '"nope" is not a URL (scheme://host...)')),
    ({"webseed": "w.example/pre/"}, ("webseed", '"w.example/pre/" is not a URL (scheme://host...)')),
]

# each front end's spelling of a field
NAMES = {
    "cli": {"meta": "--meta-version", "piece_length": "--piece-length", "trackers": "--tracker",
            "webseed": "--webseed"},
    "mount": {"meta": "meta_version", "piece_length": "piece_length", "trackers": "trackers",
              "webseed": "webseed"},
    "lambda": {"meta": "META_VERSION", "piece_length": "PIECE_LENGTH", "trackers": "TRACKERS",
               "webseed": "WEBSEED_BASE"},
}


def clean_env(extra=None):
    e = aws_env(extra)
    for k in RECIPE_ENV:
        if extra is None or k not in extra:
            e.pop(k, None)
    return e


def mount_options(o):
    """The -o options (a config file's lines without the escaping) of option set o."""
    opts = []
    for f, name in (("meta", "meta_version"), ("piece_length", "piece_length"),
                    ("webseed", "webseed"), ("source", "source"), ("comment", "comment")):
        if f in o:
            opts.append((name, o[f]))
    if "trackers" in o:
        opts.append(("trackers", ",".join(o["trackers"])))
    if o.get("private"):
        opts.append(("private", None))
    if o.get("no_date"):
        opts.append(("no_date", None))
    return opts


class Recipe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = S3(buckets=(BUCKET,))
        cls.tmp = tempfile.TemporaryDirectory()
        path = os.path.join(cls.tmp.name, KEY)
        with open(path, "wb") as f:
            f.write(bytes(i % 251 for i in range(150000)))
        cls.s3.put(BUCKET, KEY, path)
        cls.mnt = os.path.join(cls.tmp.name, "mnt")
        os.mkdir(cls.mnt)
        cls.conf = os.path.join(cls.tmp.name, "s3torrentfs.conf")
        # one mount for the config file, re-read on SIGHUP for every set; ttl=0 from the command
        # line so that the new recipe's torrent (and size) shows at once
        with open(cls.conf, "w") as f:
            f.write("")
        cls.file_mount = Mount(cls.s3.url, BUCKET, options=[f"config={cls.conf}", "ttl=0"],
                               env=clean_env())
        cls.reloads = 0

    @classmethod
    def tearDownClass(cls):
        problems = cls.file_mount.stop()
        cls.s3.stop()
        cls.tmp.cleanup()
        if problems:
            raise AssertionError(f"the mount logged: {problems}")

    # ---- the four front ends: each returns ("ok", torrent bytes) or ("refused", (name, text))

    def cli(self, o):
        args = [S3T, "create", "--endpoint-url", self.s3.url, "-o", "-"]
        for f, opt in (("meta", "-m"), ("piece_length", "-l"), ("webseed", "-w"),
                       ("source", "-s"), ("comment", "-c")):
            if f in o:
                args += [opt, o[f]]
        for t in o.get("trackers", []):
            args += ["-t", t]
        args += ["-p"] if o.get("private") else []
        args += ["-d"] if o.get("no_date") else []
        p = subprocess.run(args + [f"s3://{BUCKET}/{KEY}"], capture_output=True,
                           env=clean_env(), timeout=60)
        if p.returncode == 0:
            return "ok", p.stdout
        self.assertEqual(p.returncode, 2, p.stderr)
        return "refused", self.split(p.stderr.decode(), "s3torrent: ")

    def lambda_(self, o):
        env = {"AWS_ENDPOINT_URL_S3": self.s3.url}
        for f, var in (("meta", "META_VERSION"), ("piece_length", "PIECE_LENGTH"),
                       ("webseed", "WEBSEED_BASE"), ("source", "SOURCE"),
                       ("comment", "COMMENT")):
            if f in o:
                env[var] = o[f]
        if "trackers" in o:
            env["TRACKERS"] = ",".join(o["trackers"])
        if o.get("private"):
            env["PRIVATE"] = "true"
        if o.get("no_date"):
            env["NO_DATE"] = "1"
        event = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
                              "eventName": "ObjectCreated:Put",
                              "s3": {"bucket": {"name": BUCKET}, "object": {"key": KEY}}}]}
        p = subprocess.run([LAMBDA, "--event", "-"], input=json.dumps(event).encode(),
                           capture_output=True, env=clean_env(env), timeout=60)
        if p.returncode == 0:
            self.assertEqual(json.loads(p.stdout)["results"][0]["action"], "created", p.stdout)
            url = f"{self.s3.url}/{BUCKET}/{KEY}.torrent"
            with urllib.request.urlopen(url, timeout=10) as r:
                body = r.read()
            # gone again, so that the next set makes its own (an up-to-date one is kept)
            urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10)
            return "ok", body
        self.assertEqual(p.returncode, 2, p.stderr)
        return "refused", self.split(p.stderr.decode(), "s3torrent-lambda: init: ")

    def mount_o(self, o):
        opts = []
        for name, value in mount_options(o):
            opts.append(name if value is None else f"{name}={value.replace(',', chr(92) + ',')}")
        p = subprocess.run([FS, "-f", "-o", ",".join([f"endpoint={self.s3.url}", *opts]),
                            BUCKET, self.mnt], capture_output=True, env=clean_env(),
                           timeout=10) if self.refused_by_cli else None
        if p is not None:  # refused at start, before anything is mounted
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertFalse(os.path.ismount(self.mnt))
            return "refused", self.split(p.stderr.decode(), "s3torrentfs: ")
        m = Mount(self.s3.url, BUCKET, options=opts, env=clean_env())
        try:
            with open(m.path(KEY + ".torrent"), "rb") as f:
                return "ok", f.read()
        finally:
            self.assertEqual(m.stop(), [])

    def mount_file(self, o, want):
        text = "".join(f"{n}\n" if v is None else f"{n} = {v}\n" for n, v in mount_options(o))
        path = os.path.join(self.tmp.name, "refused.conf")
        if want[0] == "refused":  # a file the mount refuses at start
            with open(path, "w") as f:
                f.write(text)
            p = subprocess.run([FS, "-f", "-o", f"endpoint={self.s3.url},config={path}", BUCKET,
                                self.mnt], capture_output=True, env=clean_env(), timeout=30)
            self.assertEqual(p.returncode, 1, p.stderr)
            return "refused", self.split(p.stderr.decode(), f"s3torrentfs: {path}:1: ")
        with open(self.conf, "w") as f:
            f.write(text)
        m = self.file_mount
        m.proc.send_signal(signal.SIGHUP)
        type(self).reloads += 1
        deadline = time.monotonic() + 10
        while m.output().count("SIGHUP: configuration reread") < self.reloads:
            self.assertLess(time.monotonic(), deadline, m.output())
            time.sleep(0.02)
        # the first read after the reload is whole: torrents are served past the size the
        # kernel may still hold from before it (docs/DESIGN.md §13)
        with open(m.path(KEY + ".torrent"), "rb") as f:
            return "ok", f.read()

    def split(self, stderr, prefix):
        """The one line of a refusal, as (option name, the text after it)."""
        self.assertEqual(stderr.count("\n"), 1, stderr)
        self.assertTrue(stderr.startswith(prefix), stderr)
        name, _, text = stderr[len(prefix):].rstrip("\n").partition(": ")
        return name, text

    # ---- the agreement

    def agree(self, o, refusal, label):
        want = ("refused", refusal) if refusal else ("ok", None)
        self.refused_by_cli = refusal is not None
        got = {"cli": self.cli(o), "lambda": self.lambda_(o), "mount -o": self.mount_o(o)}
        if want[0] == "ok":
            want = ("ok", got["cli"][1])
        # a config file trims its values: a leading or trailing space cannot be written there
        if all(v == v.strip() for v in o.values() if isinstance(v, str)):
            got["mount file"] = self.mount_file(o, want)
        for fe, (kind, value) in got.items():
            with self.subTest(label=label, front_end=fe):
                self.assertEqual(kind, want[0], value)
                if kind == "refused":
                    field, text = refusal
                    names = NAMES["cli" if fe == "cli" else "lambda" if fe == "lambda"
                                  else "mount"]
                    self.assertEqual(value, (names[field], text))
        if want[0] == "ok":
            bodies = {fe: v for fe, (_, v) in got.items()}
            self.assertTrue(bodies["cli"].startswith(b"d8:announce"), label)
            for fe, body in bodies.items():
                with self.subTest(label=label, front_end=fe):
                    self.assertEqual(body, bodies["cli"], f"{fe} made other bytes than create")

    def test_sizes(self):
        for s, why in SIZES:
            self.agree({"piece_length": s}, ("piece_length", f'"{s}" {why}') if why else None,
                       f"piece_length {s!r}")

    def test_option_sets(self):
        for o, refusal in SETS:
            self.agree(o, refusal, json.dumps(o))


if __name__ == "__main__":
    unittest.main()
