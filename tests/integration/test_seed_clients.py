#!/usr/bin/python3
"""`s3torrent seed --client` with every daemon it drives, all real and on loopback: s3rver holds
the objects, s3torrentfs mounts them, and
- qbittorrent-nox (Web API v2, a login required) is handed a hybrid and a v2-only torrent with
  skip_checking; python3-libtorrent, given qBittorrent's listen port as its only peer,
  downloads each and gets the object's bytes;
- Deluge (deluged behind deluge-web's JSON-RPC, the web UI not yet connected to the daemon)
  is handed a v1 torrent in seed mode and seeds it from the mount, announced to opentracker;
  aria2c, finding it through the tracker, downloads the object's bytes from it;
- transmission-daemon 3.00 is refused a hybrid torrent before anything is added, in one line
  that names the clients that take it;
- the v1-only magnet of the hybrid (`magnet --v1-only`) holds urn:btih alone, with the v1
  info-hash, and aria2c takes it and fetches the torrent's metadata from qBittorrent through
  opentracker (rTorrent 0.9 is not driven: it has no scriptable one-shot mode);
- `sync --seed --client qbittorrent` makes a torrent and has qBittorrent seed it;
- zero-read start: 200 objects of about 100 kB with their .torrent objects in S3, behind a
  counting proxy under a second mount that writes its metrics file: qBittorrent (skip_checking)
  and Deluge (seed mode) start seeding all 200 having read at most one piece (16 KiB) of each
  object, Transmission reads every byte of every one; the proxy counts each object's bytes, the
  mount's metrics the fetches and bytes read (they show the proxy's bytes fetched);
- the daemons' passwords never appear in s3torrent's output, --debug included, and a wrong one
  is one line naming the variable to check.
Every wait polls a condition, bounded. S3TORRENT and S3TORRENTFS name the binaries under test."""
import hashlib
import json
import os
import subprocess
import tempfile
import unittest
import urllib.parse

import libtorrent as lt

from faultproxy import FaultProxy
from mount import Mount
from services import (Deluge, Opentracker, Qbittorrent, S3rver, Transmission, aws_env, content,
                      free_port, libtorrent_download, read_metrics, sha256_file, wait_for)

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))
BUCKET = "clientsbucket"
TIMEOUT = 120  # seconds; every wait is bounded
HYBRID = "qbt/hybrid take.bin"  # a materialized hybrid k.torrent in S3
V2 = "qbt/v2 only.bin"          # a materialized v2-only k.torrent in S3
V1 = "deluge/v1 é.bin"          # the mount's synthetic v1 torrent
SYNCED = "sync/synced.bin"      # sync --seed makes its hybrid torrent
MANY = [f"many/{i:03d}.bin" for i in range(200)]  # the zero-read start's objects
MANY_PIECE = 16384  # their torrents' piece length
MANY_TIMEOUT = 600  # seconds for a client to take the 200 and seed them
SIZES = {HYBRID: 3 * 1048576 + 17, V2: 2 * 1048576 + 5, V1: 1048576 + 99, SYNCED: 700001}
QBT_USER, QBT_PASSWORD = "seeder", "qb pa55:w0rd secret"
DELUGE_PASSWORD = "deluge pa55 w0rd secret"
TR_USER, TR_PASSWORD = "tr", "tr pa55 w0rd secret"
SECRETS = (QBT_PASSWORD, DELUGE_PASSWORD, TR_PASSWORD,
           urllib.parse.quote(QBT_PASSWORD), urllib.parse.quote_plus(QBT_PASSWORD))

S = {}  # the module's S3, mount, tracker and daemons (setUpModule)


def rd(path):
    with open(path, "rb") as f:
        return f.read()


def setUpModule():
    S["tmp"] = tempfile.TemporaryDirectory(prefix="seed-clients-")
    t = S["tmp"].name
    S["daemons"] = []
    S["s3"] = S3rver(buckets=(BUCKET,))
    S["mnt"] = S["mnt2"] = None
    try:
        start(t)
    except BaseException:
        tearDownModule()
        raise


def start(t):
    S["data"] = {}
    for i, (key, size) in enumerate(SIZES.items()):
        S["data"][key] = content(size, f"sc{i}")
        path = os.path.join(t, "up.bin")
        with open(path, "wb") as f:
            f.write(S["data"][key])
        S["s3"].put(BUCKET, key, path)
    # the tracker's URL goes into the torrents before it starts: its whitelist needs their hashes
    tracker_port = free_port()
    S["tracker_url"] = f"http://127.0.0.1:{tracker_port}/announce"
    S["torrent"] = {}
    for key, meta in ((HYBRID, "hybrid"), (V2, "v2")):
        path = os.path.join(t, meta + ".torrent")
        run_ok([S3T, "create", "--endpoint-url", S["s3"].url, "-m", meta, "-l", "64K", "-t",
                S["tracker_url"], "-o", path, f"s3://{BUCKET}/{key}"])
        S["s3"].put(BUCKET, key + ".torrent", path)
        S["torrent"][key] = rd(path)
    S["mnt"] = Mount(S["s3"].url, BUCKET, options=[f"trackers={S['tracker_url']}"])
    S["torrent"][V1] = rd(S["mnt"].path(V1 + ".torrent"))
    # the zero-read start's objects, one level deep (s3rver lists deeper keys wrongly), in one
    # upload
    many = os.path.join(t, "many")
    os.mkdir(many)
    for i, key in enumerate(MANY):
        S["data"][key] = content(100001 + i, f"many{i}")
        with open(os.path.join(t, key), "wb") as f:
            f.write(S["data"][key])
    S["s3"].aws("s3", "cp", "--only-show-errors", "--recursive", many, f"s3://{BUCKET}/many/")
    # their .torrent objects, as sync leaves them (read straight from s3rver, not counted)
    run_ok([S3T, "sync", "--no-cache", "--endpoint-url", S["s3"].url, "-l",
            str(MANY_PIECE), f"s3://{BUCKET}/many/"], timeout=MANY_TIMEOUT)
    # the mount the zero-read test seeds from reads S3 through a counting proxy: the key and
    # byte range of every GET of an object (a version of it, not a listing); it writes its
    # metrics
    S["reads"] = []

    def count(method, path, headers):
        key = urllib.parse.unquote(path.split("?", 1)[0]).split("/", 2)[2:]
        if method == "GET" and key and key[0]:
            S["reads"].append((key[0], headers.get("Range")))
    S["proxy"] = FaultProxy(S["s3"].port, hook=count)
    S["metrics"] = os.path.join(t, "s3torrentfs.prom")
    S["mnt2"] = Mount(S["proxy"].url, BUCKET,
                      options=[f"metrics_file={S['metrics']}", "metrics_interval=1"])
    S["ti"] = {k: lt.torrent_info(lt.bdecode(v)) for k, v in S["torrent"].items()}
    # what clients announce: v1 info-hashes, and v2 ones truncated to 20 bytes
    hashes = [str(S["ti"][k].info_hashes().v1) for k in (HYBRID, V1)]
    hashes += [str(S["ti"][k].info_hashes().v2)[:40] for k in (HYBRID, V2)]
    S["daemons"].append(Opentracker(t, hashes, tracker_port))
    S["qbt"] = Qbittorrent(t, QBT_USER, QBT_PASSWORD)
    S["daemons"].append(S["qbt"])
    S["deluge"] = Deluge(t, DELUGE_PASSWORD)
    S["daemons"].append(S["deluge"])
    S["tr"] = Transmission(t, TR_USER, TR_PASSWORD)
    S["daemons"].append(S["tr"])


def tearDownModule():
    # the daemons hold files of the mount open: stop them before unmounting
    for d in reversed(S.get("daemons", [])):
        d.stop()
    problems = S["mnt"].stop() if S.get("mnt") else []
    if S.get("mnt2"):
        problems += S["mnt2"].stop()
    if S.get("proxy"):
        S["proxy"].stop()
    S["s3"].stop()
    S["tmp"].cleanup()
    assert not problems, f"s3torrentfs logged: {problems}"


def run_ok(args, timeout=TIMEOUT, **kw):
    p = subprocess.run(args, env=aws_env(), capture_output=True, text=True, timeout=timeout, **kw)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def client_env(**extra):
    env = aws_env({"QBITTORRENT_USERNAME": QBT_USER, "QBITTORRENT_PASSWORD": QBT_PASSWORD,
                   "DELUGE_WEB_PASSWORD": DELUGE_PASSWORD,
                   "TRANSMISSION_RPC_USERNAME": TR_USER, "TRANSMISSION_RPC_PASSWORD": TR_PASSWORD})
    for k in ("QBITTORRENT_URL", "DELUGE_WEB_URL", "TRANSMISSION_RPC_URL"):
        env.pop(k, None)
    env.update(extra)
    return env


def seed(client, url, *args, env=None):
    return subprocess.run([S3T, "seed", "--client", client, "--rpc", url, "--endpoint-url",
                           S["s3"].url, "--mount-root", S["mnt"].point, *args],
                          env=env or client_env(), capture_output=True, text=True,
                          timeout=TIMEOUT)


class SeedClients(unittest.TestCase):
    def assert_no_secret(self, r):
        for secret in SECRETS:
            self.assertNotIn(secret, r.stdout + r.stderr)

    def qbt_seeding(self, tid, announced=True):
        return wait_for(f"qBittorrent seeding {tid}", lambda: S["qbt"].seeding(tid, announced),
                        S["qbt"].logs)

    def test_qbittorrent_hybrid_and_v2(self):
        for key in (HYBRID, V2):
            uri = f"s3://{BUCKET}/{key}"
            r = seed("qbittorrent", S["qbt"].url, "--debug", "--category", "s3t", "--tags",
                     "a,b", uri)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assert_no_secret(r)
            self.assertIn("HTTP", r.stderr)  # --debug logged the requests
            ti = S["ti"][key]
            h = ti.info_hashes()
            ih = str(h.v1) if h.has_v1() else str(h.v2)
            self.assertEqual(r.stdout, f"{uri}: added (info-hash {ih}, qBittorrent, "
                                       f"torrent from s3)\n")
            tid = str(h.get_best())[:40]
            t = self.qbt_seeding(tid)
            self.assertEqual(t["save_path"].rstrip("/"), S["mnt"].path(os.path.dirname(key)))
            self.assertEqual((t["category"], sorted(t["tags"].split(", "))), ("s3t", ["a", "b"]))
            # again: already seeding, nothing added
            r = seed("qbittorrent", S["qbt"].url, "--json", uri)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            o = json.loads(r.stdout)
            self.assertEqual((o["status"], o["client"], o["info_hash"]),
                             ("already seeding", "qBittorrent", ih))
            self.assertEqual(len(S["qbt"].torrents(hashes=tid)), 1)
            # a leecher whose only peer is qBittorrent gets the object's bytes
            dl = tempfile.mkdtemp(dir=S["tmp"].name)
            st = libtorrent_download(ti, dl, TIMEOUT, peers=[("127.0.0.1", S["qbt"].peer_port)])
            self.assertTrue(st.is_seeding, f"{key}: progress {st.progress}\n{S['qbt'].logs()}")
            self.assertEqual(sha256_file(os.path.join(dl, os.path.basename(key))),
                             hashlib.sha256(S["data"][key]).hexdigest())

    def test_deluge_v1(self):
        uri = f"s3://{BUCKET}/{V1}"
        r = seed("deluge", S["deluge"].url, "--debug", uri)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_no_secret(r)
        ih = str(S["ti"][V1].info_hashes().v1)
        self.assertEqual(r.stdout, f"{uri}: added (info-hash {ih}, Deluge, torrent from mount)\n")
        # s3torrent connected the web UI to its daemon
        self.assertTrue(S["deluge"].call("web.connected"))
        st = S["deluge"].call("core.get_torrent_status", ih, ["state", "save_path", "progress"])
        self.assertEqual(st["save_path"].rstrip("/"), S["mnt"].path(os.path.dirname(V1)))
        r = seed("deluge", S["deluge"].url, uri)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"{uri}: already seeding", r.stdout)

        def seeding():
            s = S["deluge"].call("core.get_torrent_status", ih,
                                 ["state", "progress", "tracker_status"])
            if s.get("state") == "Error":
                raise AssertionError(f"Deluge: {s}\n{S['deluge'].logs()}")
            # seeding, and announced to the tracker, where the leecher finds it
            return s if s.get("state") == "Seeding" and \
                s.get("tracker_status", "").endswith("Announce OK") else None
        st = wait_for("Deluge seeding", seeding, S["deluge"].logs)
        self.assertEqual(st["progress"], 100)
        # aria2c gets the object from Deluge, found through the tracker. It comes from
        # 127.0.0.2: deluged dials its own address, which the tracker hands it, and then takes
        # every other peer from 127.0.0.1 for itself (see services.Deluge)
        dl = tempfile.mkdtemp(dir=S["tmp"].name)
        tfile = os.path.join(dl, "v1.torrent")
        with open(tfile, "wb") as f:
            f.write(S["torrent"][V1])
        a = subprocess.run(
            ["aria2c", "--interface=127.0.0.2", "--seed-time=0", f"--dir={dl}",
             "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
             "--enable-peer-exchange=false", "--disable-ipv6=true",
             f"--listen-port={free_port()}", "--file-allocation=none",
             "--bt-tracker-connect-timeout=10", "--bt-tracker-timeout=10",
             f"--bt-stop-timeout={TIMEOUT}", "--summary-interval=0",
             "--console-log-level=warn", "--no-conf", tfile],
            capture_output=True, text=True, timeout=TIMEOUT + 30)
        self.assertEqual(a.returncode, 0, a.stdout + a.stderr + S["deluge"].logs())
        self.assertEqual(sha256_file(os.path.join(dl, os.path.basename(V1))),
                         hashlib.sha256(S["data"][V1]).hexdigest())
        # the bytes came from Deluge (the only peer), which counts them uploaded (its status
        # is refreshed from libtorrent's a moment later)
        wait_for("Deluge counting the upload", lambda: S["deluge"].call(
            "core.get_torrent_status", ih, ["total_uploaded"])["total_uploaded"] >= SIZES[V1],
            S["deluge"].logs)

    def test_v1_only_magnet_of_a_hybrid(self):
        path = os.path.join(S["tmp"].name, "hybrid-magnet.torrent")
        with open(path, "wb") as f:
            f.write(S["torrent"][HYBRID])
        full = run_ok([S3T, "magnet", path]).stdout.strip()
        v1 = run_ok([S3T, "magnet", "--v1-only", path]).stdout.strip()
        h = S["ti"][HYBRID].info_hashes()
        self.assertIn("xt=urn:btmh:1220" + str(h.v2), full)
        xts = [v for k, v in urllib.parse.parse_qsl(v1[len("magnet:?"):]) if k == "xt"]
        self.assertEqual(xts, ["urn:btih:" + str(h.v1)])
        self.assertNotIn("btmh", v1)
        # everything else is the full magnet's
        self.assertEqual(v1.replace("xt=urn:btih:" + str(h.v1), ""),
                         full.replace("xt=urn:btih:" + str(h.v1), "")
                         .replace("&xt=urn:btmh:1220" + str(h.v2), ""))
        # a v2-only torrent has no v1 form: a clear failure
        p2 = os.path.join(S["tmp"].name, "v2-magnet.torrent")
        with open(p2, "wb") as f:
            f.write(S["torrent"][V2])
        p = subprocess.run([S3T, "magnet", "--v1-only", p2], capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stdout), (1, ""))
        self.assertIn("v2-only torrent has no v1 info-hash", p.stderr)
        # aria2c takes the v1 magnet and gets the torrent's metadata (BEP 9) from qBittorrent,
        # found by the tracker: the same info dict. (It cannot go on to download a hybrid:
        # aria2 1.36 computes another v1 info-hash from the hybrid info dict it was given.)
        r = seed("qbittorrent", S["qbt"].url, f"s3://{BUCKET}/{HYBRID}")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.qbt_seeding(str(h.get_best())[:40])
        dl = tempfile.mkdtemp(dir=S["tmp"].name)
        a = subprocess.run(
            ["aria2c", "--bt-metadata-only=true", "--bt-save-metadata=true", f"--dir={dl}",
             "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
             "--enable-peer-exchange=false", "--disable-ipv6=true",
             f"--listen-port={free_port()}", "--bt-tracker-connect-timeout=10",
             "--bt-tracker-timeout=10", f"--bt-stop-timeout={TIMEOUT}",
             "--summary-interval=0", "--console-log-level=warn", "--no-conf", v1],
            capture_output=True, text=True, timeout=TIMEOUT + 30)
        self.assertEqual(a.returncode, 0, a.stdout + a.stderr + S["qbt"].logs())
        got = lt.torrent_info(os.path.join(dl, f"{h.v1}.torrent"))
        self.assertEqual(str(got.info_hashes().v1), str(h.v1))
        self.assertEqual(got.total_size(), SIZES[HYBRID])

    def test_transmission_3_refuses_hybrid_before_adding(self):
        self.assertTrue(S["tr"].version.startswith("3."), S["tr"].version)
        uri = f"s3://{BUCKET}/{HYBRID}"
        r = seed("transmission", S["tr"].url, "--debug", uri)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assert_no_secret(r)
        self.assertEqual(r.stdout.count("\n"), 1, r.stdout)
        self.assertIn(f"{uri}: failed: a hybrid torrent: Transmission 3.00", r.stdout)
        self.assertIn("use --client qbittorrent or --client deluge", r.stdout)
        self.assertNotIn("torrent-add", r.stderr)  # nothing was sent
        self.assertEqual(S["tr"].call("torrent-get", fields=["id"])["torrents"], [])

    def test_sync_seed_with_qbittorrent(self):
        r = subprocess.run([S3T, "sync", "--json", "--no-cache", "-m", "hybrid", "-t",
                            S["tracker_url"], "--seed", "--client", "qbittorrent", "--rpc",
                            S["qbt"].url, "--mount-root", S["mnt"].point, "--endpoint-url",
                            S["s3"].url, f"s3://{BUCKET}/{SYNCED}"], env=client_env(),
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_no_secret(r)
        res = json.loads(r.stdout)
        self.assertEqual((res["action"], res["seeded"]), ("created", "added"))
        t = self.qbt_seeding(res["info_hash_v2"][:40], announced=False)
        self.assertEqual(t["save_path"].rstrip("/"), S["mnt"].path(os.path.dirname(SYNCED)))

    def test_wrong_passwords_are_one_clear_line(self):
        for client, url, var, needle in (
                ("qbittorrent", S["qbt"].url, "QBITTORRENT_PASSWORD", "QBITTORRENT_PASSWORD"),
                ("deluge", S["deluge"].url, "DELUGE_WEB_PASSWORD", "DELUGE_WEB_PASSWORD"),
                ("transmission", S["tr"].url, "TRANSMISSION_RPC_PASSWORD", "HTTP 401")):
            with self.subTest(client=client):
                r = seed(client, url, "--debug", f"s3://{BUCKET}/{V1}",
                         env=client_env(**{var: "not-the-password"}))
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertEqual(r.stdout, "")
                errors = [line for line in r.stderr.splitlines() if not line.startswith("s3torrent: debug:")]
                self.assertEqual(len(errors), 1, r.stderr)
                self.assertIn(needle, errors[0])
                self.assertNotIn("not-the-password", r.stderr)
                self.assert_no_secret(r)

    def reads(self, since=0):
        """Bytes of each object that the second mount's GETs brought from S3, from the since-th
        GET on (the ranges asked for, within the object): the many/ objects and their .torrent
        objects."""
        got = dict.fromkeys(MANY, 0)
        for key, rng in S["reads"][since:]:
            size = len(S["data"][key]) if key in S["data"] else os.path.getsize(
                S["mnt2"].path(key))
            first, last = 0, size - 1
            if rng is not None:
                first, last = (int(x) for x in rng.split("=", 1)[1].split("-"))
            got[key] = got.get(key, 0) + max(0, min(last, size - 1) - first + 1)
        return got

    def metrics(self):
        """The second mount's metrics once its file (rewritten every second) shows the object
        bytes the proxy saw it fetch."""
        last = {}

        def settled():
            last.clear()
            last.update(read_metrics(S["metrics"]))
            want = sum(self.reads().values())
            return last if last.get("s3torrentfs_data_fetched_bytes_total") == want else None
        try:
            return wait_for("the metrics file to show what the proxy saw", settled, timeout=60)
        except AssertionError as e:
            raise AssertionError(f"{e}: the proxy saw {sum(self.reads().values())} bytes, the "
                                 f"mount's metrics {last}") from None

    def test_zero_read_start(self):
        n = len(MANY)
        uri = f"s3://{BUCKET}/many/"
        mount = ["--mount-root", S["mnt2"].point]
        ids = [str(lt.torrent_info(lt.bdecode(rd(S["mnt2"].path(k + ".torrent"))))
                   .info_hashes().v1) for k in MANY]
        torrents = sum(os.path.getsize(S["mnt2"].path(k + ".torrent")) for k in MANY)
        # qBittorrent (skip_checking) and Deluge (seed mode): every torrent seeding at once
        since, base = len(S["reads"]), self.metrics()
        for client, url in (("qbittorrent", S["qbt"].url), ("deluge", S["deluge"].url)):
            r = subprocess.run([S3T, "seed", "--client", client, "--rpc", url, "--endpoint-url",
                                S["s3"].url, *mount, uri], env=client_env(),
                               capture_output=True, text=True, timeout=MANY_TIMEOUT)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(r.stdout.count(": added ("), n, r.stdout)

        def qbt_all():
            got = S["qbt"].torrents(hashes="|".join(ids))
            return len(got) == n and all(t["progress"] == 1 for t in got)
        wait_for(f"qBittorrent seeding the {n}", qbt_all, S["qbt"].logs, timeout=MANY_TIMEOUT)

        def deluge_all():
            st = S["deluge"].call("core.get_torrents_status", {"id": ids}, ["state"])
            return len(st) == n and all(v["state"] == "Seeding" for v in st.values())
        wait_for(f"Deluge seeding the {n}", deluge_all, S["deluge"].logs, timeout=MANY_TIMEOUT)
        # at most one piece of each object read, by the proxy's count and the mount's own (which
        # counts the .torrent objects the clients were given as data too)
        m = self.metrics()
        reads = self.reads(since)
        over = {k: reads[k] for k in MANY if reads[k] > MANY_PIECE}
        self.assertEqual(over, {}, S["reads"][since:][:50])
        fetches = m["s3torrentfs_data_fetches_total"] - base["s3torrentfs_data_fetches_total"]
        fetched = (m["s3torrentfs_data_fetched_bytes_total"]
                   - base["s3torrentfs_data_fetched_bytes_total"])
        self.assertLessEqual(fetches, 2 * n)
        self.assertLessEqual(fetched, n * MANY_PIECE + torrents)
        print(f"  qBittorrent and Deluge: {sum(reads[k] for k in MANY)} bytes of the {n} objects "
              f"read, {fetched:.0f} fetched with their torrents")
        # Transmission checks every byte of every object before it seeds
        since, base = len(S["reads"]), m
        r = subprocess.run([S3T, "seed", "--client", "transmission", "--rpc", S["tr"].url,
                            "--endpoint-url", S["s3"].url, *mount, uri], env=client_env(),
                           capture_output=True, text=True, timeout=MANY_TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.count(": added ("), n, r.stdout)

        def tr_all():
            got = S["tr"].call("torrent-get", ids=ids, fields=["percentDone", "status"])
            return len(got["torrents"]) == n and all(
                t["percentDone"] == 1 and t["status"] == 6 for t in got["torrents"])
        wait_for(f"Transmission seeding the {n}", tr_all, S["tr"].logs, timeout=MANY_TIMEOUT)
        m = self.metrics()
        reads = self.reads(since)
        short = {k: reads[k] for k in MANY if reads[k] < len(S["data"][k])}
        self.assertEqual(short, {})
        size = sum(len(S["data"][k]) for k in MANY)
        self.assertGreaterEqual(m["s3torrentfs_data_fetched_bytes_total"]
                                - base["s3torrentfs_data_fetched_bytes_total"], size)
        # and the mount answered them all (the file may have been written between the last
        # fetch and the last read)
        data, got = 's3torrentfs_read_bytes_total{file="data"}', []

        def counted():
            got[:] = [read_metrics(S["metrics"])[data] - base[data]]
            return got[0] >= size
        try:
            wait_for("the metrics file to count every byte read", counted, timeout=60)
        except AssertionError as e:
            raise AssertionError(f"{e}: {got[0]:.0f} of {size} bytes") from None

    def test_usage(self):
        r = subprocess.run([S3T, "seed", "--client", "rtorrent", "--mount-root", "/",
                            f"s3://{BUCKET}/x"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--client must be transmission, qbittorrent or deluge", r.stderr)
        r = subprocess.run([S3T, "seed", "--category", "c", "--mount-root", "/",
                            f"s3://{BUCKET}/x"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--category and --tags go with --client qbittorrent", r.stderr)
        for cmd in ("seed", "sync"):
            r = subprocess.run([S3T, cmd, "--help"], capture_output=True, text=True)
            for opt in ("--client", "--rpc", "--category", "--tags", "QBITTORRENT_PASSWORD",
                        "DELUGE_WEB_PASSWORD", "TRANSMISSION_RPC_PASSWORD"):
                self.assertIn(opt, r.stdout, cmd)


if __name__ == "__main__":
    unittest.main(verbosity=2)
