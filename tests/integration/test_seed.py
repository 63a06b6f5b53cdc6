#!/usr/bin/python3
"""`s3torrent seed` end to end, all real and on loopback: s3rver holds the objects, s3torrentfs
mounts them, `seed` hands their torrents (the mount's synthetic one, or a materialized k.torrent
object) to a transmission-daemon with RPC auth, which verifies the mounted data and seeds it
through an opentracker in whitelist mode to an aria2c leecher that gets the same bytes. Run with
Debian's /usr/bin/python3; S3TORRENT and S3TORRENTFS name the binaries under test."""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

import libtorrent as lt

from mount import Mount
from services import S3rver, aws_env, free_port, terminate, wait_for, wait_port

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))
BUCKET = "seedbucket"
USER, PASSWORD = "seeder", "pa55 w0rd:secret"
BIG = "rec/take one.bin"      # no k.torrent object: its torrent comes from the mount
SMALL = "rec/small.bin"       # has a materialized k.torrent object in S3
DEBUG = "dbg/debug.bin"       # seeded only by the --debug test (outside rec/, which others list)
TIMEOUT = 120                 # every wait below is bounded by this many seconds
TR_STATUS_SEED = 6            # rpc-spec.md: torrent-get "status"


def content(size, seed):
    block = bytes((i * 13 + seed) % 256 for i in range(65536))
    return (block * (size // len(block) + 1))[:size]


def rd(path):
    with open(path, "rb") as f:
        return f.read()


def info_hash(torrent):
    return str(lt.torrent_info(lt.bdecode(torrent)).info_hash())


class Rpc:
    """A minimal Transmission RPC client of our own (independent of lib/service/trpc.c), for checks."""

    def __init__(self, url, user, password):
        self.url = url
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.sid = None
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method, **arguments):
        body = json.dumps({"method": method, "arguments": arguments}).encode()
        for _ in range(3):
            headers = {"Content-Type": "application/json", "Authorization": self.auth}
            if self.sid:
                headers["X-Transmission-Session-Id"] = self.sid
            req = urllib.request.Request(self.url, data=body, headers=headers)
            try:
                with self.opener.open(req, timeout=10) as r:
                    answer = json.load(r)
            except urllib.error.HTTPError as e:
                if e.code == 409:
                    self.sid = e.headers["X-Transmission-Session-Id"]
                    continue
                raise
            if answer["result"] != "success":
                raise AssertionError(f"{method}: {answer['result']}")
            return answer["arguments"]
        raise AssertionError(f"{method}: 409 three times")

    def torrent(self, ih):
        got = self.call("torrent-get", ids=[ih],
                        fields=["hashString", "id", "name", "downloadDir", "percentDone",
                                "status", "error", "errorString", "recheckProgress",
                                "trackerStats"])["torrents"]
        return got[0] if got else None


SYNCED = "sync/synced.bin"


class SeedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.procs = []
        cls.tmp = tempfile.TemporaryDirectory(prefix="seed-")
        t = cls.tmp.name
        cls.s3 = S3rver(buckets=(BUCKET,))
        cls.mnt = None
        try:
            cls._start(t)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _start(cls, t):
        cls.data = {BIG: content(5 * 1048576 + 333, 1), SMALL: content(700001, 2),
                    "rec/empty.bin": b"", SYNCED: content(300001, 3), DEBUG: content(99999, 4)}
        for key, data in cls.data.items():
            path = os.path.join(t, "up.bin")
            with open(path, "wb") as f:
                f.write(data)
            cls.s3.put(BUCKET, key, path)
        cls.tracker_port = free_port()
        cls.tracker = f"http://127.0.0.1:{cls.tracker_port}/announce"
        # a materialized torrent for SMALL, as `sync` would leave it
        small_torrent = os.path.join(t, "small.torrent")
        subprocess.run([S3T, "create", "--endpoint-url", cls.s3.url, "-t", cls.tracker, "-o",
                        small_torrent, f"s3://{BUCKET}/{SMALL}"], env=aws_env(), check=True,
                       capture_output=True)
        cls.s3.put(BUCKET, SMALL + ".torrent", small_torrent)

        cls.mnt = Mount(cls.s3.url, BUCKET, options=[f"trackers={cls.tracker}"])
        cls.big_torrent = rd(cls.mnt.path(BIG + ".torrent"))
        cls.hashes = {BIG: info_hash(cls.big_torrent), SMALL: info_hash(rd(small_torrent))}

        # opentracker tracks only whitelisted info-hashes; started as root it reads the list as
        # nobody, so the list must be readable by others (the temporary directory is 0700)
        os.chmod(t, 0o711)
        wl_dir = os.path.join(t, "tracker")
        os.mkdir(wl_dir, 0o755)
        wl = os.path.join(wl_dir, "whitelist")
        with open(wl, "w") as f:
            f.write("".join(h + "\n" for h in cls.hashes.values()))
        os.chmod(wl, 0o644)
        cls.opentracker = cls._spawn(["opentracker", "-i", "127.0.0.1", "-p",
                                      str(cls.tracker_port), "-P", str(cls.tracker_port),
                                      "-w", wl], "opentracker")
        wait_port(cls.tracker_port, cls.opentracker, "opentracker")

        cls.rpc_port, cls.peer_port = free_port(), free_port()
        cls.rpc_url = f"http://127.0.0.1:{cls.rpc_port}/transmission/rpc"
        cfg, dl = os.path.join(t, "tr-config"), os.path.join(t, "tr-download")
        os.mkdir(cfg)
        os.mkdir(dl)
        cls.daemon = cls._spawn(
            ["transmission-daemon", "-f", "-g", cfg, "--rpc-bind-address", "127.0.0.1",
             "-p", str(cls.rpc_port), "-t", "-u", USER, "-v", PASSWORD, "--no-dht", "--no-lpd",
             "--no-portmap", "--peerport", str(cls.peer_port), "--no-incomplete-dir", "-w", dl],
            "transmission-daemon")
        cls.rpc = Rpc(cls.rpc_url, USER, PASSWORD)

        def answers():
            if cls.daemon.proc.poll() is not None:
                raise AssertionError(f"transmission-daemon exited: {cls.daemon.output()}")
            try:
                return cls.rpc.call("session-get")["version"]
            except (OSError, urllib.error.URLError):
                return None
        cls.version = wait_for("transmission-daemon RPC answering", answers)

    class _Proc:
        def __init__(self, args, name, log):
            self.name, self.log = name, log
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

        def poll(self):
            return self.proc.poll()

        def output(self):
            self.log.flush()
            self.log.seek(0)
            return self.log.read().decode(errors="replace")

        def stop(self):
            terminate(self.proc)
            self.log.close()

    @classmethod
    def _spawn(cls, args, name):
        log = open(os.path.join(cls.tmp.name, name + ".log"), "w+b")
        p = cls._Proc(args, name, log)
        cls.procs.append(p)
        return p

    @classmethod
    def tearDownClass(cls):
        # the daemon holds files of the mount open: stop it before unmounting
        for p in reversed(cls.procs):
            p.stop()
        problems = cls.mnt.stop() if cls.mnt else []
        cls.s3.stop()
        cls.tmp.cleanup()
        if problems:
            raise AssertionError(f"s3torrentfs logged: {problems}")

    def seed(self, *args, password=PASSWORD):
        env = aws_env({"TRANSMISSION_RPC_USERNAME": USER, "TRANSMISSION_RPC_PASSWORD": password})
        env.pop("TRANSMISSION_RPC_URL", None)
        return subprocess.run([S3T, "seed", "--endpoint-url", self.s3.url, "--rpc", self.rpc_url,
                               "--mount-root", self.mnt.point, *args], env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)

    def test_seed_end_to_end(self):
        big = f"s3://{BUCKET}/{BIG}"
        # 1. the first run adds the torrent the mount makes
        r = self.seed(big)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.count("\n"), 1, r.stdout)
        self.assertIn(f"{big}: added (info-hash {self.hashes[BIG]}", r.stdout)
        self.assertIn("torrent from mount", r.stdout)
        # 2. idempotent: the same object again is reported, not added
        r = self.seed(big)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"{big}: already seeding (info-hash {self.hashes[BIG]}", r.stdout)
        # 3. a prefix: the .torrent object and the zero-byte object are not objects to seed;
        # SMALL's torrent is its materialized k.torrent object
        r = self.seed("--json", f"s3://{BUCKET}/rec/")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = [json.loads(line) for line in r.stdout.splitlines()]
        by_uri = {o["uri"]: o for o in lines}
        self.assertEqual(set(by_uri), {big, f"s3://{BUCKET}/{SMALL}"}, lines)
        self.assertEqual(by_uri[big]["status"], "already seeding")
        small = by_uri[f"s3://{BUCKET}/{SMALL}"]
        self.assertEqual((small["status"], small["torrent_from"], small["info_hash"]),
                         ("added", "s3", self.hashes[SMALL]))
        self.assertEqual(small["download_dir"], self.mnt.path("rec"))

        # 4. the daemon checks the mounted data to 100% and seeds it
        for key in (BIG, SMALL):
            def seeding(key=key):
                t = self.rpc.torrent(self.hashes[key])
                self.assertIsNotNone(t, key)
                self.assertEqual(t["error"], 0, t["errorString"])
                return t if t["percentDone"] == 1 and t["status"] == TR_STATUS_SEED else None
            t = wait_for(f"{key} verified and seeding", seeding)
            self.assertEqual(t["downloadDir"], self.mnt.path("rec"))
            self.assertEqual(t["name"], os.path.basename(key))
        # and it announced itself to our tracker
        stats = []

        def announced():
            stats[:] = self.rpc.torrent(self.hashes[BIG])["trackerStats"]
            return any(s["lastAnnounceSucceeded"] for s in stats)
        try:
            wait_for("the daemon's announce", announced)
        except AssertionError as e:
            raise AssertionError(f"{e}: {stats}") from None

        # 5. a leecher gets the object from the daemon, through the tracker
        dl = os.path.join(self.tmp.name, "leech")
        os.mkdir(dl)
        tfile = os.path.join(self.tmp.name, "big.torrent")
        shutil.copyfile(self.mnt.path(BIG + ".torrent"), tfile)
        a = subprocess.run(
            ["aria2c", "--seed-time=0", f"--dir={dl}", "--enable-dht=false",
             "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
             "--disable-ipv6=true", f"--listen-port={free_port()}", "--file-allocation=none",
             "--bt-tracker-connect-timeout=10", "--bt-tracker-timeout=10",
             f"--bt-stop-timeout={TIMEOUT}", "--summary-interval=0",
             "--console-log-level=warn", "--no-conf", tfile],
            capture_output=True, text=True, timeout=TIMEOUT + 30)
        self.assertEqual(a.returncode, 0, a.stdout + a.stderr)
        got = rd(os.path.join(dl, "take one.bin"))
        self.assertEqual(hashlib.sha256(got).hexdigest(),
                         hashlib.sha256(self.data[BIG]).hexdigest())
        # the bytes came from the daemon (the only peer), which uploaded them
        up = self.rpc.call("torrent-get", ids=[self.hashes[BIG]], fields=["uploadedEver"])
        self.assertGreaterEqual(up["torrents"][0]["uploadedEver"], len(self.data[BIG]))

    def test_sync_then_seed(self):
        # sync --seed: the .torrent goes to S3, then to the daemon, seeding from the mount
        env = aws_env({"TRANSMISSION_RPC_USERNAME": USER, "TRANSMISSION_RPC_PASSWORD": PASSWORD})
        r = subprocess.run([S3T, "sync", "--json", "--no-cache", "--seed", "--rpc", self.rpc_url,
                            "--mount-root", self.mnt.point, "--endpoint-url", self.s3.url,
                            "-t", self.tracker, f"s3://{BUCKET}/{SYNCED}"], env=env,
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        res = json.loads(r.stdout)
        self.assertEqual((res["action"], res["seeded"]), ("created", "added"))

        def seeding():
            t = self.rpc.torrent(res["info_hash"])
            return t if t and t["percentDone"] == 1 and t["status"] == TR_STATUS_SEED else None
        t = wait_for("the synced object verified and seeding", seeding)
        self.assertEqual(t["downloadDir"], self.mnt.path(os.path.dirname(SYNCED)))

    def test_wrong_password_is_one_clear_line(self):
        r = self.seed(f"s3://{BUCKET}/{BIG}", password="not-the-password")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        self.assertIn("HTTP 401", r.stderr)
        self.assertNotIn("not-the-password", r.stderr)

    def test_rpc_credentials_never_logged(self):
        # --debug logs every request, the RPC ones too, but never the user name and password
        for password in (PASSWORD, "not-the-password"):
            r = self.seed("--debug", f"s3://{BUCKET}/{DEBUG}", password=password)
            self.assertEqual(r.returncode, 0 if password == PASSWORD else 1, r.stderr)
            text = r.stdout + r.stderr
            self.assertIn("HTTP", r.stderr)  # debug logging was on
            basic = base64.b64encode(f"{USER}:{password}".encode()).decode()
            for secret in (password, basic, "Authorization", "X-Transmission-Session-Id: "):
                self.assertNotIn(secret, text)

    def test_object_missing_from_the_mount_fails(self):
        # the mount shows the bucket's root, not this prefix: the daemon would find nothing
        r = self.seed("--mount-prefix", "rec", f"s3://{BUCKET}/{SMALL}")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"s3://{BUCKET}/{SMALL}: failed: ", r.stdout)
        self.assertIn("small.bin", r.stdout)
        # and nothing was added for it
        self.assertIn(": failed:", r.stdout)

    def test_usage(self):
        r = subprocess.run([S3T, "seed", f"s3://{BUCKET}/x"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--mount-root", r.stderr)
        r = subprocess.run([S3T, "seed", "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        for opt in ("--rpc", "--mount-root", "--mount-prefix", "--json", "--endpoint-url"):
            self.assertIn(opt, r.stdout)


if __name__ == "__main__":
    unittest.main()
