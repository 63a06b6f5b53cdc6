#!/usr/bin/python3
"""`s3torrent serve` as the only source of real BitTorrent clients (docs/DESIGN.md §14), on S3
(s3rver, or RGW with S3T_S3=rgw, where the bucket is private and the server the only way in).
Each client gets the object's torrent from the server (?torrent) and downloads it from the web
seed alone: the torrent's only tracker is a closed loopback port, DHT, LSD and PEX are off, no
peer exists. The downloaded file's sha256 is the object's, for a plain key, for one with
spaces, '+', '%' and unicode, and on RGW for a 1 GiB object.
- qbittorrent-nox (libtorrent 2.0), headless with a temporary profile, driven through its Web
  API v2: v1, hybrid and v2-only torrents (v2-only: the web seed is the key's directory URL),
  through the server and, made by `create --webseed`, straight from a readable bucket.
- transmission-daemon, through its RPC: v1 (Transmission 3 has no v2).
- webtorrent-cli (npm, pinned in package-lock.json): v1.
- qBittorrent's RSS reader subscribed to a prefix's ?rss feed with an auto-download rule
  matching everything: an object uploaded after subscribing is downloaded by qBittorrent by
  itself, from the enclosure's torrent and the web seed.
Every wait polls a condition, bounded; a failure prints the client's log. S3TORRENT names the
binary under test."""
import base64
import hashlib
import http.client
import json
import os
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

import libtorrent as lt

from services import (ROOT, S3, aws_env, content, free_port, sha256_file, terminate, wait_for,
                      wait_port)
from test_serve import S3T, Server, quote_key

BUCKET = "clientsbucket"
TIMEOUT = 120  # seconds; every wait is bounded
KEYS = {
    "rec/plain.bin": 3 * 1048576 + 17,
    "rec/take one été 录音 +%.bin": 2 * 1048576 + 5,
}
if os.environ.get("S3T_S3", "s3rver") == "rgw":  # a production S3: a 1 GiB object too
    KEYS["rec/one gibibyte.bin"] = 1 << 30
FEED = "feed/"
WEBTORRENT = os.path.join(ROOT, "node_modules", ".bin", "webtorrent")
NO_PROXY_ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

S = {}  # the module's S3, servers and objects (setUpModule)


def setUpModule():
    S["tmp"] = tempfile.TemporaryDirectory(prefix="serve-clients-")
    S["s3"] = S3(buckets=(BUCKET,))  # private on RGW
    S["data"] = {}
    for i, (key, size) in enumerate(KEYS.items()):
        put(key, content(size, f"c{i}"))
    put(FEED + "first.bin", content(400001, "first"))
    # a tracker no one answers: a loopback port closed (free_port's socket is gone)
    S["dead"] = f"http://127.0.0.1:{free_port()}/announce"
    S["srv"] = {}
    for meta in ("v1", "hybrid", "v2"):
        S["srv"][meta] = Server(S["s3"], [BUCKET], "--meta-version", meta, "--piece-length",
                                "256K", "--tracker", S["dead"])


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


def torrent(meta, key):
    status, h, body = S["srv"][meta].request("GET", f"/{BUCKET}/{quote_key(key)}?torrent")
    assert status == 200 and h["content-type"] == "application/x-bittorrent", (status, body)
    return body


def sha256(key):
    return hashlib.sha256(S["data"][key]).hexdigest()


def tail(path, n=4000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode(errors="replace")
    except OSError as e:
        return f"({path}: {e})"


class Qbt:
    """qbittorrent-nox with a temporary profile: the legal notice accepted and the Web UI
    open to localhost without a login in its configuration file, DHT, LSD and PEX off."""

    def __init__(self, name, parent=None):
        """parent: the folder its profile goes in (default: the module's temporary folder)."""
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=parent or S["tmp"].name)
        self.save = os.path.join(self.dir, "downloads")
        os.mkdir(self.save)
        self.port, peer = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v2"
        conf = os.path.join(self.dir, "qBittorrent", "config")
        os.makedirs(conf)
        with open(os.path.join(conf, "qBittorrent.conf"), "w") as f:
            f.write("[LegalNotice]\nAccepted=true\n\n"
                    "[BitTorrent]\nSession\\DHTEnabled=false\nSession\\LSDEnabled=false\n"
                    f"Session\\PeXEnabled=false\nSession\\Port={peer}\n"
                    f"Session\\DefaultSavePath={self.save}\n\n"
                    "[Preferences]\nWebUI\\Address=127.0.0.1\n"
                    f"WebUI\\Port={self.port}\nWebUI\\LocalHostAuth=false\n"
                    "WebUI\\CSRFProtection=false\nWebUI\\HostHeaderValidation=false\n")
        self.logpath = os.path.join(self.dir, "stdout.log")
        self.log = open(self.logpath, "wb")
        env = dict(NO_PROXY_ENV, HOME=self.dir)
        self.proc = subprocess.Popen(["qbittorrent-nox", f"--profile={self.dir}",
                                      f"--webui-port={self.port}"], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_port(self.port, self.proc, "qbittorrent-nox", timeout=60)
            self.version = self.get("app/version").decode()
            self.libtorrent = json.loads(self.get("app/buildInfo"))["libtorrent"]
            self.prefs(dht=False, pex=False, lsd=False, upnp=False, listen_port=peer,
                       save_path=self.save, queueing_enabled=False)
            prefs = json.loads(self.get("app/preferences"))
            assert (prefs["dht"], prefs["pex"], prefs["lsd"]) == (False, False, False), prefs
        except BaseException:
            print(self.logs())
            self.stop()
            raise

    def call(self, api, data=None, ctype=None):
        req = urllib.request.Request(f"{self.url}/{api}", data=data)
        if ctype:
            req.add_header("Content-Type", ctype)
        with OPENER.open(req, timeout=30) as r:
            return r.read()

    def get(self, api, **query):
        return self.call(api + ("?" + urllib.parse.urlencode(query) if query else ""))

    def post(self, api, **form):
        return self.call(api, urllib.parse.urlencode(form).encode(),
                         "application/x-www-form-urlencoded")

    def prefs(self, **prefs):
        self.post("app/setPreferences", json=json.dumps(prefs))

    def add(self, torrent_bytes, savepath):
        """torrents/add with the .torrent file as multipart/form-data."""
        b = uuid.uuid4().hex
        parts = []
        for name, value in (("savepath", savepath), ("paused", "false"),
                            ("root_folder", "false"), ("contentLayout", "Original")):
            parts.append(f'--{b}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                         f"{value}\r\n".encode())
        parts.append(f'--{b}\r\nContent-Disposition: form-data; name="torrents"; '
                     f'filename="t.torrent"\r\nContent-Type: application/x-bittorrent\r\n\r\n'
                     .encode() + torrent_bytes + b"\r\n")
        parts.append(f"--{b}--\r\n".encode())
        answer = self.call("torrents/add", b"".join(parts), f"multipart/form-data; boundary={b}")
        assert answer.strip() == b"Ok.", answer

    def torrents(self):
        return json.loads(self.get("torrents/info"))

    def find(self, pred):
        for t in self.torrents():
            if pred(t):
                return t
        return None

    def completed(self, pred):
        """The torrent matching pred once it has every byte; fails on an error state."""
        t = self.find(pred)
        if t is None:
            return None
        if t["state"] in ("error", "missingFiles"):
            raise AssertionError(f"qBittorrent: torrent in state {t['state']}: {t}\n"
                                 f"{self.logs()}")
        done = t["progress"] == 1 and t["state"].endswith("UP") and t["state"] != "checkingUP"
        return t if done else None

    def logs(self):
        try:
            lines = json.loads(self.get("log/main"))
            main = "\n".join(m["message"] for m in lines[-60:])
        except (OSError, ValueError) as e:
            main = f"(log/main: {e})"
        self.log.flush()
        return (f"--- qbittorrent-nox output\n{tail(self.logpath)}\n--- its log\n{main}\n"
                f"--- its file log\n"
                f"{tail(os.path.join(self.dir, 'qBittorrent', 'data', 'logs', 'qbittorrent.log'))}")

    def stop(self):
        terminate(self.proc)
        self.log.close()


class QBittorrent(unittest.TestCase):
    """qbittorrent-nox downloads v1, hybrid and v2-only torrents from the server alone."""

    @classmethod
    def setUpClass(cls):
        cls.qb = Qbt("qbt")

    @classmethod
    def tearDownClass(cls):
        cls.qb.stop()

    def download(self, meta):
        for key in KEYS:
            with self.subTest(meta=meta, key=key):
                body = torrent(meta, key)
                ih = lt.torrent_info(lt.bdecode(body)).info_hashes()
                self.assertEqual((ih.has_v1(), ih.has_v2()), (meta != "v2", meta != "v1"))
                v1 = str(ih.v1) if ih.has_v1() else None
                v2 = str(ih.v2) if ih.has_v2() else None
                save = tempfile.mkdtemp(dir=self.qb.dir)
                self.qb.add(body, save)

                def ours(t):
                    return ((v1 and t.get("infohash_v1") == v1) or
                            (v2 and t.get("infohash_v2") == v2))
                t = wait_for(f"qBittorrent {self.qb.version} downloading {meta} {key!r}",
                             lambda: self.qb.completed(ours), self.qb.logs)
                path = os.path.join(save, key.rsplit("/", 1)[-1])
                self.assertEqual(os.path.realpath(t["content_path"]), os.path.realpath(path))
                self.assertEqual(sha256_file(path), sha256(key))
                self.qb.post("torrents/delete", hashes=t["hash"], deleteFiles="false")

    def test_v1(self):
        self.download("v1")

    def test_hybrid(self):
        self.download("hybrid")

    def test_v2_only(self):
        self.download("v2")


class QBittorrentStraightFromS3(unittest.TestCase):
    """qbittorrent-nox downloads v1, hybrid and v2-only torrents made by `create --webseed`
    from a bucket clients may read (the web seed is S3's own URL, no server between): the
    form each meta version needs works without serve too."""

    def test_every_meta_version(self):
        bucket, key = "clientspublic", "rec/take one été 录音 +%.bin"
        s3 = S3(buckets=(bucket,), public=True)
        qb = Qbt("qbt-direct")
        try:
            data = content(1048576 + 11, "direct")
            path = os.path.join(S["tmp"].name, "direct.bin")
            with open(path, "wb") as f:
                f.write(data)
            s3.put(bucket, key, path)
            for meta in ("v1", "hybrid", "v2"):
                with self.subTest(meta=meta):
                    body = subprocess.run(
                        [S3T, "create", "--endpoint-url", s3.url, "--webseed",
                         f"{s3.url}/{bucket}/", "--meta-version", meta, "--tracker", S["dead"],
                         "-o", "-", f"s3://{bucket}/{key}"], env=aws_env(), capture_output=True,
                        timeout=TIMEOUT, check=True).stdout
                    ih = lt.torrent_info(lt.bdecode(body)).info_hashes()
                    v1 = str(ih.v1) if ih.has_v1() else None
                    v2 = str(ih.v2) if ih.has_v2() else None
                    save = tempfile.mkdtemp(dir=qb.dir)
                    qb.add(body, save)
                    t = wait_for(f"qBittorrent {qb.version} downloading {meta} from S3",
                                 lambda: qb.completed(
                                     lambda t: (v1 and t.get("infohash_v1") == v1) or
                                     (v2 and t.get("infohash_v2") == v2)), qb.logs)
                    self.assertEqual(sha256_file(os.path.join(save, key.rsplit("/", 1)[-1])),
                                     hashlib.sha256(data).hexdigest())
                    qb.post("torrents/delete", hashes=t["hash"], deleteFiles="true")
        finally:
            qb.stop()
            s3.stop()


class Transmission(unittest.TestCase):
    """transmission-daemon downloads v1 torrents from the server alone."""

    USER, PASSWORD = "tr", "pa55 w0rd"

    @classmethod
    def setUpClass(cls):
        from test_seed import Rpc  # our own minimal RPC client
        cls.dir = tempfile.mkdtemp(prefix="tr-", dir=S["tmp"].name)
        cfg = os.path.join(cls.dir, "config")
        cls.dl = os.path.join(cls.dir, "downloads")
        os.mkdir(cfg)
        os.mkdir(cls.dl)
        rpc_port = free_port()
        cls.logpath = os.path.join(cls.dir, "daemon.log")
        cls.log = open(cls.logpath, "wb")
        cls.proc = subprocess.Popen(
            ["transmission-daemon", "-f", "-g", cfg, "--rpc-bind-address", "127.0.0.1",
             "-p", str(rpc_port), "-t", "-u", cls.USER, "-v", cls.PASSWORD, "--no-dht",
             "--no-lpd", "--no-portmap", "--peerport", str(free_port()), "--no-incomplete-dir",
             "-w", cls.dl, "--log-debug"], stdout=cls.log, stderr=subprocess.STDOUT,
            env=NO_PROXY_ENV)
        cls.rpc = Rpc(f"http://127.0.0.1:{rpc_port}/transmission/rpc", cls.USER, cls.PASSWORD)

        def answers():
            if cls.proc.poll() is not None:
                raise AssertionError(f"transmission-daemon exited: {cls.logs()}")
            try:
                return cls.rpc.call("session-get")["version"]
            except (OSError, urllib.error.URLError):
                return None
        try:
            cls.version = wait_for("transmission-daemon RPC answering", answers, cls.logs)
            cls.rpc.call("session-set", **{"pex-enabled": False, "dht-enabled": False,
                                           "lpd-enabled": False})
            s = cls.rpc.call("session-get")
            assert (s["pex-enabled"], s["dht-enabled"], s["lpd-enabled"]) == (False,) * 3, s
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def logs(cls):
        cls.log.flush()
        return f"--- transmission-daemon\n{tail(cls.logpath)}"

    @classmethod
    def tearDownClass(cls):
        terminate(cls.proc)
        cls.log.close()

    def test_v1(self):
        for key in KEYS:
            with self.subTest(key=key):
                body = torrent("v1", key)
                save = tempfile.mkdtemp(dir=self.dir)
                added = self.rpc.call("torrent-add", metainfo=base64.b64encode(body).decode(),
                                      **{"download-dir": save})
                ih = (added.get("torrent-added") or added["torrent-duplicate"])["hashString"]
                path = os.path.join(save, key.rsplit("/", 1)[-1])

                def done():
                    t = self.rpc.torrent(ih)
                    if t["error"] == 3:  # a local error (rpc-spec.md)
                        raise AssertionError(f"{t['errorString']}\n{self.logs()}")
                    return t if t["percentDone"] == 1 and os.path.exists(path) else None
                wait_for(f"Transmission {self.version} downloading {key!r}", done, self.logs)
                self.assertEqual(sha256_file(path), sha256(key))
                self.rpc.call("torrent-remove", ids=[ih])


class WebTorrent(unittest.TestCase):
    """webtorrent-cli (WebTorrent in Node.js) downloads v1 torrents from the server alone."""

    def test_v1(self):
        self.assertTrue(os.access(WEBTORRENT, os.X_OK),
                        f"{WEBTORRENT}: missing (contrib/dev/deps.sh installs it)")
        version = subprocess.run([WEBTORRENT, "--version"], capture_output=True, text=True,
                                 timeout=TIMEOUT).stdout.strip()
        for key in KEYS:
            with self.subTest(key=key):
                d = tempfile.mkdtemp(prefix="wt-", dir=S["tmp"].name)
                t = os.path.join(d, "t.torrent")
                with open(t, "wb") as f:
                    f.write(torrent("v1", key))
                out = os.path.join(d, "out")
                os.mkdir(out)
                # no DHT option: its bootstrap nodes are on the Internet; the download needs
                # none of it. It quits when the download is done.
                try:
                    p = subprocess.run(
                        [WEBTORRENT, "download", t, "--out", out, "--quiet",
                         "--port", str(free_port()), "--torrent-port", str(free_port()),
                         "--dht-port", str(free_port())],
                        capture_output=True, text=True, timeout=TIMEOUT, env=NO_PROXY_ENV,
                        cwd=d)
                except subprocess.TimeoutExpired as e:
                    raise AssertionError(f"webtorrent {version}: not done within {TIMEOUT} s: "
                                         f"{e.stdout!r} {e.stderr!r}")
                self.assertEqual(p.returncode, 0, f"webtorrent {version}: {p.stdout[-2000:]}"
                                 f"{p.stderr[-2000:]}")
                self.assertEqual(sha256_file(os.path.join(out, key.rsplit("/", 1)[-1])),
                                 sha256(key))


class QBittorrentRss(unittest.TestCase):
    """qBittorrent subscribed to the prefix's feed downloads an object uploaded after it
    subscribed, by itself: the feed's enclosure is the torrent, the web seed the server."""

    def test_auto_download_of_a_new_object(self):
        qb = Qbt("qbt-rss")
        try:
            srv = S["srv"]["v1"]
            feed = f"{srv.url}/{BUCKET}/{FEED}?rss"
            save = os.path.join(qb.dir, "rss-downloads")
            os.mkdir(save)
            qb.prefs(rss_processing_enabled=True, rss_auto_downloading_enabled=True,
                     rss_refresh_interval=1)
            qb.post("rss/addFeed", url=feed, path="serve")
            rule = {"enabled": True, "mustContain": "", "mustNotContain": "", "useRegex": False,
                    "episodeFilter": "", "smartFilter": False, "affectedFeeds": [feed],
                    "savePath": save, "assignedCategory": "", "addPaused": False,
                    "ignoreDays": 0}
            qb.post("rss/setRule", ruleName="everything", ruleDef=json.dumps(rule))

            def titles():
                items = json.loads(qb.get("rss/items", withData="true"))
                f = items.get("serve") or {}
                if f.get("hasError"):
                    raise AssertionError(f"qBittorrent: the feed has an error: {f}\n{qb.logs()}")
                return {a.get("title") for a in f.get("articles", [])}
            wait_for("qBittorrent reading the feed", lambda: FEED + "first.bin" in titles(),
                     qb.logs)
            new = FEED + "new take été 录音 +%.bin"
            put(new, content(1048576 + 3, "new"))
            qb.post("rss/refreshItem", itemPath="serve")
            t = wait_for(f"qBittorrent {qb.version} auto-downloading {new!r} from the feed",
                         lambda: qb.completed(lambda t: t["name"] == new.rsplit("/", 1)[-1]),
                         qb.logs)
            self.assertIn(new, titles())
            self.assertEqual(os.path.realpath(t["save_path"]), os.path.realpath(save))
            self.assertEqual(sha256_file(os.path.join(save, t["name"])), sha256(new))
        finally:
            qb.stop()


if os.environ.get("S3T_S3", "s3rver") == "rgw":
    class PrivateBucket(unittest.TestCase):
        def test_objects_are_not_public(self):
            """On RGW the clients above had no way to the bytes but the server."""
            for key in KEYS:
                with self.subTest(key=key):
                    c = http.client.HTTPConnection("127.0.0.1", S["s3"].port, timeout=TIMEOUT)
                    c.request("GET", f"/{BUCKET}/{quote_key(key)}")
                    r = c.getresponse()
                    r.read()
                    c.close()
                    self.assertEqual(r.status, 403)


if __name__ == "__main__":
    unittest.main(verbosity=2)
