#!/usr/bin/python3
"""s3torrent serve: the server as a web seed and as S3's retired ?torrent, on S3 (s3rver, or
RGW with S3T_S3=rgw, where the bucket is private and the server the only way in).
- Torrents from /BUCKET/KEY?torrent and /BUCKET/KEY.torrent have the info-hash of `create s3://`
  with the same options; their web seed is the server's URL pinned to the object's ETag; the aws
  CLI's get-object-torrent (S3's GetObjectTorrent) gets the same torrent.
- Web seed only (no tracker answering, no peer): aria2c and python3-libtorrent download v1 and
  hybrid torrents through the server, sha256 equal, for keys with spaces, '+', '%' and unicode;
  libtorrent v2-only ones too (the web seed is then the pinned directory URL).
- HTTP: HEAD, Range (206, suffix, 416, several ranges ignored), If-None-Match (304), If-Match
  (412), If-Range; refused targets (path escapes, encoded slashes, control bytes, other buckets,
  keys outside the prefix, unknown queries, other methods) get their status and one line.
- An overwritten object: the old pinned URL answers 410 and never a byte of the new object, and
  a client of the old torrent gets no bytes; a new torrent downloads the new bytes. On a
  versioned bucket (RGW) the web seed names the version: the old torrent still downloads the
  old bytes after the overwrite, until that version is deleted (410).
- Feeds: ?rss (the newest, newest first, enclosures that are the torrents, info-hashes and
  magnets equal to create's) and ?manifest (every object), read with Python's XML and JSON
  parsers; zero-byte and .torrent keys left out; a hashing budget of 0 lists only torrents
  made.
- 8 clients reading one object at once cost one read of it (the block cache).
- /metrics counts what the test did.
- A wildcard --listen without --public-url is refused; port 0 gives torrents the port bound.
- With no cache of its own, the server lays a torrent out from the .torrent sync wrote for the
  same version (same info-hash, nothing hashed), and not from one of an older version.
- --config: settings and buckets from a file, the command line winning, one line per error.
- --redirect: object GETs are 302s to presigned S3 URLs (no-store) that urllib (curl -L),
  aria2c and libtorrent follow, sha256 equal; HEAD, failed validators, torrents stay here; a
  changed ETag is 410; on RGW the bucket stays private, the URL expires (--redirect-expires 1)
  and a version pinned by /~v/ survives an overwrite; /metrics counts redirects; no signature,
  credential or session token in the server's log.
S3TORRENT names the binary under test."""
import hashlib
import http.client
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET

import libtorrent as lt

from services import (KEY, S3, SECRET, aws_env, content, daemon_log, free_port,
                      libtorrent_download, sha256_file, terminate, wait_for, wait_port)

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))
BUCKET = "servebucket"
OTHER = "otherbucket"
REDIR = "redirbucket"
TIMEOUT = 120  # seconds; every wait is bounded
KEYS = {
    "rec/plain.bin": 3 * 1048576 + 11,
    "rec/take one été 录音 +.bin": 2 * 1048576 + 5,
    "rec/percent%20literal%.bin": 300001,
}
ON_RGW = os.environ.get("S3T_S3", "s3rver") == "rgw"


def quote_key(key):
    return "/".join(urllib.parse.quote(seg, safe="") for seg in key.split("/"))


def download_aria2c(tpath, parent):
    """aria2c downloads the torrent at tpath into a new folder under parent, from its web seed
    alone (no DHT, LSD or PEX); gives up after 20 s without progress. Returns (process, folder)."""
    dl = tempfile.mkdtemp(dir=parent)
    p = subprocess.run(
        ["aria2c", "--seed-time=0", f"--dir={dl}", "--enable-dht=false",
         "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
         "--bt-tracker-connect-timeout=2", "--bt-tracker-timeout=2",
         "--bt-stop-timeout=20", "--listen-port", str(free_port()), "--summary-interval=0",
         "--console-log-level=warn", "--allow-overwrite=true", tpath],
        capture_output=True, text=True, timeout=TIMEOUT)
    return p, dl


def metric_of(srv, name):
    """A counter of the server's /metrics."""
    _, _, body = srv.request("GET", "/metrics")
    m = re.search(rf"^{re.escape(name)} (\d+)$", body.decode(), re.M)
    assert m, name
    return int(m.group(1))


class Server:
    """s3torrent serve on a free loopback port, over the test's S3."""

    def __init__(self, s3, scopes, *extra):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = daemon_log()
        self.proc = subprocess.Popen(
            [S3T, "serve", "--endpoint-url", s3.url, "--listen", f"127.0.0.1:{self.port}",
             *([] if "--cache" in extra else ["--no-cache"]), *extra, *scopes],
            env=aws_env(), stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, "s3torrent serve")

    def request(self, method, target, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        c.request(method, target, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body

    def stop_checked(self, test):
        """Stops the server; test fails unless it exited 0 with no sanitizer report. Returns its
        log."""
        rc, log = self.stop()
        test.assertEqual(rc, 0, log[-2000:])
        return log

    def stop(self):
        """Stops the server; returns its exit status, or 1 when its log holds a sanitizer report
        (ASan, UBSan, TSan builds), and its log."""
        self.proc.terminate()
        rc = self.proc.wait(timeout=30)
        self.log.seek(0)
        log = self.log.read().decode(errors="replace")
        if "Sanitizer" in log or "runtime error" in log:
            rc = rc or 1
        return rc, log


class Serve(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="serve-")
        cls.s3 = S3(buckets=(BUCKET, OTHER))  # private on RGW
        cls.data = {}
        for i, (key, size) in enumerate(KEYS.items()):
            cls.put(key, content(size, i))
        cls.put("elsewhere/x.bin", b"outside the prefix served")
        cls.srv = Server(cls.s3, [f"{BUCKET}:rec/"], "--piece-length", "256K")

    @classmethod
    def tearDownClass(cls):
        rc, log = cls.srv.stop()
        cls.s3.stop()
        cls.tmp.cleanup()
        assert rc == 0, log[-2000:]

    @classmethod
    def put(cls, key, data):
        path = os.path.join(cls.tmp.name, "up.bin")
        with open(path, "wb") as f:
            f.write(data)
        cls.s3.put(BUCKET, key, path)
        cls.data[key] = data

    def s3t(self, *args):
        p = subprocess.run([S3T, *args], env=aws_env(), capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout

    def torrent(self, key, suffix=False):
        target = f"/{BUCKET}/{quote_key(key)}" + (".torrent" if suffix else "?torrent")
        status, h, body = self.srv.request("GET", target)
        self.assertEqual(status, 200, body)
        self.assertEqual(h["content-type"], "application/x-bittorrent")
        return body

    def download_aria2c(self, tpath):
        return download_aria2c(tpath, self.tmp.name)

    def test_torrent_matches_create(self):
        for key in KEYS:
            with self.subTest(key=key):
                body = self.torrent(key)
                self.assertEqual(body, self.torrent(key, suffix=True))
                ti = lt.torrent_info(lt.bdecode(body))
                made = self.s3t("create", "--endpoint-url", self.s3.url, "--piece-length", "256K",
                                "-o", "-", f"s3://{BUCKET}/{key}")
                self.assertEqual(str(ti.info_hashes().v1),
                                 str(lt.torrent_info(lt.bdecode(made)).info_hashes().v1))
                etag = self.s3.aws("s3api", "head-object", "--bucket", BUCKET, "--key",
                                   key).stdout.decode()
                etag = re.search(r'"ETag": "\\"([^\\]+)\\""', etag).group(1)
                urls = [w["url"] for w in ti.web_seeds()]
                self.assertEqual(urls, [f"{self.srv.url}/~e/{etag}/{BUCKET}/{quote_key(key)}"])

    def test_get_object_torrent_of_the_aws_cli(self):
        key = "rec/plain.bin"
        out = os.path.join(self.tmp.name, "cli.torrent")
        p = subprocess.run([ "/usr/bin/aws", "s3api", "get-object-torrent", "--no-sign-request",
                            "--endpoint-url", self.srv.url, "--bucket", BUCKET, "--key", key,
                            out], env=aws_env(), capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        with open(out, "rb") as f:
            self.assertEqual(f.read(), self.torrent(key))

    def test_web_seed_only_aria2c(self):
        for key in KEYS:
            with self.subTest(key=key):
                t = os.path.join(self.tmp.name, "ws.torrent")
                with open(t, "wb") as f:
                    f.write(self.torrent(key))
                p, dl = self.download_aria2c(t)
                self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
                self.assertEqual(sha256_file(os.path.join(dl, key.rsplit("/", 1)[-1])),
                                 hashlib.sha256(self.data[key]).hexdigest())

    def test_web_seed_only_libtorrent(self):
        key = "rec/take one été 录音 +.bin"
        ti = lt.torrent_info(lt.bdecode(self.torrent(key)))
        save = tempfile.mkdtemp(dir=self.tmp.name)
        st = libtorrent_download(ti, save, TIMEOUT, check_errors=True)
        self.assertTrue(st.is_seeding, "libtorrent did not complete from the web seed")
        self.assertEqual(sha256_file(os.path.join(save, ti.name())),
                         hashlib.sha256(self.data[key]).hexdigest())

    def test_ranges_and_validators(self):
        key = "rec/plain.bin"
        data = self.data[key]
        t = f"/{BUCKET}/{quote_key(key)}"
        status, h, body = self.srv.request("HEAD", t)
        self.assertEqual((status, body, int(h["content-length"])), (200, b"", len(data)))
        self.assertEqual(h["accept-ranges"], "bytes")
        etag = h["etag"]
        self.assertEqual(h["access-control-allow-origin"], "*")
        cases = [
            ({"Range": "bytes=10-19"}, 206, data[10:20], f"bytes 10-19/{len(data)}"),
            ({"Range": "bytes=-7"}, 206, data[-7:], f"bytes {len(data) - 7}-{len(data) - 1}/{len(data)}"),
            ({"Range": f"bytes={len(data) - 3}-"}, 206, data[-3:], None),
            ({"Range": f"bytes=0-{10 * len(data)}"}, 206, data, None),
            ({"Range": f"bytes={len(data)}-"}, 416, b"", f"bytes */{len(data)}"),
            ({"Range": "bytes=0-1,5-6"}, 200, data, None),
            ({"Range": "bytes=99999999999999999999-"}, 416, b"", f"bytes */{len(data)}"),
            ({"Range": "lines=1-2"}, 200, data, None),
            ({"If-None-Match": etag}, 304, b"", None),
            ({"If-Match": '"not-it"'}, 412, b"", None),
            ({"If-Match": etag, "Range": "bytes=1-2"}, 206, data[1:3], None),
            ({"If-Range": '"not-it"', "Range": "bytes=1-2"}, 200, data, None),
            ({"If-Range": etag, "Range": "bytes=1-2"}, 206, data[1:3], None),
        ]
        for headers, want, body_want, crange in cases:
            with self.subTest(headers=headers):
                status, h, body = self.srv.request("GET", t, headers)
                self.assertEqual(status, want, body[:200])
                self.assertEqual(body, body_want)
                if crange:
                    self.assertEqual(h["content-range"], crange)

    def test_refused_requests(self):
        ok = f"/{BUCKET}/rec/plain.bin"
        cases = [
            ("GET", f"/{BUCKET}/rec/../elsewhere/x.bin", 400),
            ("GET", f"/{BUCKET}/rec%2F..%2Felsewhere/x.bin", 400),
            ("GET", f"/{BUCKET}/rec//plain.bin", 400),
            ("GET", f"/{BUCKET}/rec/%00plain.bin", 400),
            ("GET", f"/{BUCKET}/rec/%0aplain.bin", 400),
            ("GET", f"/{BUCKET}/rec/%zzplain.bin", 400),
            ("GET", f"/{BUCKET}/elsewhere/x.bin", 404),
            ("GET", f"/{OTHER}/rec/plain.bin", 404),
            ("GET", f"/{BUCKET}/rec/", 404),
            ("GET", f"/{BUCKET}/rec/missing.bin", 404),
            ("GET", "/", 404),
            ("GET", f"{ok}?list-type=2", 400),
            ("GET", f"{ok}?versionId=1", 400),
            ("GET", f"/~e/0123abc/{BUCKET}/rec/plain.bin", 410),
            ("GET", f"/~e/bad%22etag/{BUCKET}/rec/plain.bin", 400),
            ("POST", ok, 405),
            ("PUT", ok, 405),
            ("DELETE", ok, 405),
            ("GET", "/" + "a" * 9000, 414),
        ]
        for method, target, want in cases:
            with self.subTest(method=method, target=target[:80]):
                status, h, body = self.srv.request(method, target)
                self.assertEqual(status, want, body)
                text = body.decode()
                self.assertTrue(text.endswith("\n") and text.count("\n") == 1, text)
        status, _, _ = self.srv.request("OPTIONS", ok, {"Origin": "http://x",
                                                        "Access-Control-Request-Method": "GET"})
        self.assertEqual(status, 204)

    def test_overwritten_object(self):
        key = "rec/changing.bin"
        self.put(key, content(600000, "old"))
        old = self.torrent(key)
        old_ti = lt.torrent_info(lt.bdecode(old))
        pinned = urllib.parse.urlparse(old_ti.web_seeds()[0]["url"]).path
        status, _, body = self.srv.request("GET", pinned, {"Range": "bytes=0-9"})
        self.assertEqual((status, body), (206, self.data[key][:10]))
        self.put(key, content(600000, "new"))
        for headers in ({}, {"Range": "bytes=0-9"}):
            status, _, body = self.srv.request("GET", pinned, headers)
            self.assertEqual(status, 410, body)
            self.assertNotIn(self.data[key][:10], body)
        t = os.path.join(self.tmp.name, "old.torrent")
        with open(t, "wb") as f:
            f.write(old)
        p, dl = self.download_aria2c(t)
        self.assertNotEqual(p.returncode, 0)
        got = os.path.join(dl, "changing.bin")
        if os.path.exists(got):  # preallocated, perhaps; never a byte of the new object
            with open(got, "rb") as f:
                self.assertNotIn(self.data[key][:4096], f.read())
        t = os.path.join(self.tmp.name, "new.torrent")
        with open(t, "wb") as f:
            f.write(self.torrent(key))
        p, dl = self.download_aria2c(t)
        self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
        self.assertEqual(sha256_file(os.path.join(dl, "changing.bin")),
                         hashlib.sha256(self.data[key]).hexdigest())

    def metric(self, name):
        return metric_of(self.srv, name)

    def test_eight_clients_cost_one_read(self):
        """8 clients reading the same object at once, in 256 KiB ranges as web seeds ask: every
        byte comes out right, and the store is read once (one GET per 1 MiB block)."""
        key, size = "rec/shared.bin", 5 * 1048576 + 3
        self.put(key, content(size, "shared"))
        before = {m: self.metric(f"s3torrent_serve_{m}_total")
                  for m in ("store_bytes", "bytes_served", "store_reads")}
        errors = []

        def client(i):
            c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=TIMEOUT)
            got = bytearray()
            offs = list(range(0, size, 262144))
            offs = offs[i % len(offs):] + offs[:i % len(offs)]  # each starts elsewhere
            parts = {}
            for off in offs:
                end = min(off + 262144, size) - 1
                c.request("GET", f"/{BUCKET}/{key}", headers={"Range": f"bytes={off}-{end}"})
                r = c.getresponse()
                body = r.read()
                if r.status != 206 or len(body) != end - off + 1:
                    errors.append((i, off, r.status, len(body)))
                parts[off] = body
            for off in sorted(parts):
                got += parts[off]
            if bytes(got) != self.data[key]:
                errors.append((i, "bytes differ"))
            c.close()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
        self.assertEqual(errors, [])
        fetched = self.metric("s3torrent_serve_store_bytes_total") - before["store_bytes"]
        served = self.metric("s3torrent_serve_bytes_served_total") - before["bytes_served"]
        self.assertEqual(served, 8 * size)
        self.assertEqual(fetched, size, f"store bytes / bytes served = {fetched / served:.3f}")
        # 6 blocks of 1 MiB, each fetched once, some in one read-ahead GET
        self.assertLessEqual(self.metric("s3torrent_serve_store_reads_total") -
                             before["store_reads"], 6)

    def test_metrics_count(self):
        metric = self.metric
        n404 = 's3torrent_serve_requests_total{route="other",status="4xx"}'
        n206 = 's3torrent_serve_requests_total{route="object",status="2xx"}'
        a404, a206, served = (metric(n404), metric(n206),
                              metric("s3torrent_serve_bytes_served_total"))
        for _ in range(3):
            self.srv.request("GET", f"/{OTHER}/x")
        for _ in range(2):
            self.srv.request("GET", f"/{BUCKET}/rec/plain.bin", {"Range": "bytes=0-99"})
        self.assertEqual(metric(n404) - a404, 3)
        self.assertEqual(metric(n206) - a206, 2)
        self.assertEqual(metric("s3torrent_serve_bytes_served_total") - served, 200)

    if ON_RGW:
        def test_bucket_is_private(self):
            key = "rec/plain.bin"
            c = http.client.HTTPConnection("127.0.0.1", self.s3.port, timeout=TIMEOUT)
            c.request("GET", f"/{BUCKET}/{quote_key(key)}")
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 403)


if ON_RGW:
    class Versioned(unittest.TestCase):
        """On a versioned bucket the web seed names the version: after an overwrite the old
        torrent still downloads the old bytes, the new one the new bytes; a deleted version
        answers 410."""

        def test_old_torrent_survives_an_overwrite(self):
            bucket, key = "servever", "v/take 1 +.bin"
            s3 = S3(buckets=(bucket,), versioned=True)
            srv = None
            with tempfile.TemporaryDirectory(prefix="serve-v-") as tmp:
                try:
                    old, new = content(1048576 + 77, "old"), content(1048576 + 77, "new")
                    path = os.path.join(tmp, "up.bin")
                    with open(path, "wb") as f:
                        f.write(old)
                    s3.put(bucket, key, path)
                    srv = Server(s3, [bucket])
                    target = f"/{bucket}/{quote_key(key)}?torrent"
                    status, _, old_t = srv.request("GET", target)
                    self.assertEqual(status, 200, old_t)
                    old_url = lt.bdecode(old_t)[b"url-list"]
                    old_url = (old_url[0] if isinstance(old_url, list) else old_url).decode()
                    vid = json.loads(s3.aws("s3api", "head-object", "--bucket", bucket, "--key",
                                            key).stdout)["VersionId"]
                    self.assertIn(f"/~v/{urllib.parse.quote(vid, safe='')}/{bucket}/", old_url)
                    with open(path, "wb") as f:
                        f.write(new)
                    s3.put(bucket, key, path)
                    status, _, new_t = srv.request("GET", target)
                    self.assertEqual(status, 200, new_t)
                    self.assertNotEqual(lt.torrent_info(lt.bdecode(new_t)).info_hashes().v1,
                                        lt.torrent_info(lt.bdecode(old_t)).info_hashes().v1)
                    for t, data in ((old_t, old), (new_t, new)):
                        tpath = os.path.join(tmp, "t.torrent")
                        with open(tpath, "wb") as f:
                            f.write(t)
                        p, dl = download_aria2c(tpath, tmp)
                        self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
                        self.assertEqual(sha256_file(os.path.join(dl, "take 1 +.bin")),
                                         hashlib.sha256(data).hexdigest())
                    # the old version deleted: its web seed is gone
                    s3.aws("s3api", "delete-object", "--bucket", bucket, "--key", key,
                           "--version-id=" + vid)
                    status, _, body = srv.request(
                        "GET", urllib.parse.urlsplit(old_url).path + "take%201%20%2B.bin")
                    self.assertEqual(status, 410, body)
                finally:
                    if srv:
                        srv.stop_checked(self)
                    s3.stop()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Lets a 3xx through as an answer, to look at it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


NO_PROXY = urllib.request.ProxyHandler({})
FOLLOW = urllib.request.build_opener(NO_PROXY)  # follows redirects, as curl -L does
STAY = urllib.request.build_opener(NO_PROXY, NoRedirect)


def fetch(opener, url, headers=None):
    """(status, headers with lower-case names, body) of a GET of url through opener."""
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}),
                         timeout=TIMEOUT) as r:
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


class Redirect(unittest.TestCase):
    """serve --redirect: a GET of an object is a 302 to a presigned URL of the version asked
    for, so S3 carries the bytes; HEAD, conditionals that fail, torrents and metrics stay here.
    curl -L (urllib), aria2c and libtorrent download through it, sha256 equal; on RGW the
    bucket is private (the object itself refused to anonymous clients), the URL expires, a
    versioned bucket's /~v/ keeps giving the old bytes after an overwrite. No signature,
    credential or session token ever reaches the server's log."""

    KEYS = {"r/plain.bin": 1048576 + 13, "r/take été 录音 +%.bin": 600001}

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="serve-r-")
        cls.s3 = S3(buckets=(REDIR,))  # private on RGW
        cls.data = {}
        for i, (key, size) in enumerate(cls.KEYS.items()):
            cls.put(key, content(size, f"r{i}"))
        cls.srv = Server(cls.s3, [REDIR], "--redirect", "--piece-length", "256K")

    @classmethod
    def tearDownClass(cls):
        rc, log = cls.srv.stop()
        cls.s3.stop()
        cls.tmp.cleanup()
        assert rc == 0, log[-2000:]
        assert_no_secret(log)

    @classmethod
    def put(cls, key, data):
        path = os.path.join(cls.tmp.name, "up.bin")
        with open(path, "wb") as f:
            f.write(data)
        cls.s3.put(REDIR, key, path)
        cls.data[key] = data

    def location(self, target, headers=None, srv=None):
        """The presigned URL a GET of target is sent to (asserting the 302 and its headers)."""
        status, h, body = (srv or self.srv).request("GET", target, headers)
        self.assertEqual(status, 302, body)
        self.assertEqual(h["cache-control"], "private, no-store")
        self.assertEqual(h["access-control-allow-origin"], "*")
        url = h["location"]
        self.assertTrue(url.startswith(self.s3.url + "/" + REDIR + "/"), url)
        self.assertIn("X-Amz-Signature=", url)
        return url

    def test_get_is_a_redirect_to_the_object(self):
        for key, data in self.data.items():
            with self.subTest(key=key):
                target = f"/{REDIR}/{quote_key(key)}"
                url = self.location(target)
                self.assertEqual(urllib.parse.urlsplit(url).path, f"/{REDIR}/{quote_key(key)}")
                status, _, body = fetch(FOLLOW, self.srv.url + target)  # curl -L
                self.assertEqual(status, 200)
                self.assertEqual(hashlib.sha256(body).hexdigest(),
                                 hashlib.sha256(data).hexdigest())
                # a range goes along with the redirect, and S3 answers it
                status, h, body = fetch(FOLLOW, self.srv.url + target, {"Range": "bytes=5-14"})
                self.assertEqual((status, body), (206, data[5:15]))

    def test_bucket_private_presigned_url_works(self):
        """The presigned URL reads the object; an anonymous GET of it does not on RGW, whose
        bucket is private (s3rver lets anyone read: there it is 200)."""
        key = "r/plain.bin"
        status, _, _ = fetch(STAY, f"{self.s3.url}/{REDIR}/{quote_key(key)}")
        self.assertEqual(status, 403 if ON_RGW else 200)
        status, _, body = fetch(STAY, self.location(f"/{REDIR}/{quote_key(key)}"))
        self.assertEqual((status, body), (200, self.data[key]))

    def test_answered_here(self):
        """HEAD, validators that fail, a range past the end, torrents, refusals: no redirect."""
        key = "r/plain.bin"
        target = f"/{REDIR}/{quote_key(key)}"
        status, h, body = self.srv.request("HEAD", target)
        self.assertEqual((status, int(h["content-length"])), (200, len(self.data[key])))
        self.assertNotIn("location", h)
        etag = h["etag"]
        for headers, want in (({"If-None-Match": etag}, 304), ({"If-Match": '"nope"'}, 412),
                              ({"Range": f"bytes={len(self.data[key])}-"}, 416)):
            status, h, _ = self.srv.request("GET", target, headers)
            self.assertEqual(status, want, headers)
            self.assertNotIn("location", h)
        status, h, body = self.srv.request("GET", target + "?torrent")
        self.assertEqual((status, h["content-type"]), (200, "application/x-bittorrent"))
        status, h, _ = self.srv.request("GET", f"/{REDIR}/r/missing.bin")
        self.assertEqual(status, 404)
        self.assertNotIn("location", h)

    def test_web_seed_clients(self):
        key = "r/take été 录音 +%.bin"
        name = key.rsplit("/", 1)[-1]
        _, _, t = self.srv.request("GET", f"/{REDIR}/{quote_key(key)}?torrent")
        want = hashlib.sha256(self.data[key]).hexdigest()
        tpath = os.path.join(self.tmp.name, "r.torrent")
        with open(tpath, "wb") as f:
            f.write(t)
        p, dl = download_aria2c(tpath, self.tmp.name)
        self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
        self.assertEqual(sha256_file(os.path.join(dl, name)), want)
        dl = tempfile.mkdtemp(dir=self.tmp.name)
        # libtorrent refuses a redirect to a loopback URL with a query (its SSRF guard): the
        # test's S3 is on loopback, a real one is not
        st = libtorrent_download(lt.torrent_info(lt.bdecode(t)), dl, TIMEOUT,
                                 {"ssrf_mitigation": False})
        self.assertTrue(st.is_seeding, f"progress {st.progress}")
        self.assertEqual(sha256_file(os.path.join(dl, name)), want)

    def test_changed_etag_is_gone_not_redirected(self):
        key = "r/changing.bin"
        self.put(key, content(70000, "old"))
        _, h, _ = self.srv.request("HEAD", f"/{REDIR}/{quote_key(key)}")
        pinned = f"/~e/{h['etag'].strip(chr(34))}/{REDIR}/{quote_key(key)}"
        self.location(pinned)
        self.put(key, content(70000, "new"))
        status, h, body = self.srv.request("GET", pinned)
        self.assertEqual(status, 410, body)
        self.assertNotIn("location", h)

    def test_metrics_count_redirects(self):
        n302 = 's3torrent_serve_requests_total{route="object",status="3xx"}'
        before = (metric_of(self.srv, n302),
                  metric_of(self.srv, "s3torrent_serve_redirects_total"))
        for _ in range(3):
            self.location(f"/{REDIR}/r/plain.bin")
        self.srv.request("HEAD", f"/{REDIR}/r/plain.bin")
        self.assertEqual((metric_of(self.srv, n302) - before[0],
                          metric_of(self.srv, "s3torrent_serve_redirects_total") - before[1]),
                         (3, 3))

    def test_log_line(self):
        self.location(f"/{REDIR}/r/plain.bin")
        log = wait_for("the request's log line", lambda: self.log_text()
                       if f"GET /{REDIR}/r/plain.bin 302" in self.log_text() else None)
        assert_no_secret(log)

    def log_text(self):
        self.srv.log.seek(0)
        return self.srv.log.read().decode(errors="replace")

    def test_url_expires(self):
        srv = Server(self.s3, [REDIR], "--redirect", "--redirect-expires", "1")
        try:
            target = f"/{REDIR}/r/plain.bin"
            url = self.location(target, srv=srv)
            self.assertIn("X-Amz-Expires=1&", url)
            wait_for("the presigned URL to expire", lambda: fetch(STAY, url)[0] == 403,
                     timeout=30)
            # a new request gets a new URL that works
            status, _, body = fetch(FOLLOW, srv.url + target)
            self.assertEqual(status, 200)
            self.assertEqual(body, self.data["r/plain.bin"])
        finally:
            assert_no_secret(srv.stop_checked(self))

    def test_session_token_never_logged(self):
        """Temporary credentials: the token is in the URL, and nowhere in the log, even with
        --debug."""
        token = "FQoGZXIvYXdzEXAMPLE+token/" + uuid.uuid4().hex
        log = daemon_log()
        port = free_port()
        proc = subprocess.Popen(
            [S3T, "serve", "--endpoint-url", self.s3.url, "--listen", f"127.0.0.1:{port}",
             "--no-cache", "--redirect", "--debug", REDIR],
            env=aws_env({"AWS_SESSION_TOKEN": token}), stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_port(port, proc, "s3torrent serve")
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
            c.request("GET", f"/{REDIR}/r/plain.bin")
            r = c.getresponse()
            r.read()
            c.close()
            # the store may refuse the token (RGW knows no such session): then the HEAD fails
            if r.status == 302:
                self.assertIn("X-Amz-Security-Token=" + urllib.parse.quote(token, safe=""),
                              r.getheader("location"))
        finally:
            terminate(proc)
        log.seek(0)
        text = log.read().decode(errors="replace")
        log.close()
        self.assertNotIn(token, text)
        self.assertNotIn(urllib.parse.quote(token, safe=""), text)
        assert_no_secret(text)


def assert_no_secret(log):
    """Fails when a server's log shows a presigned URL, a signature or a credential."""
    for secret in ("X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "Signature=",
                   KEY, SECRET):
        assert secret not in log, f"{secret!r} in the server's log:\n{log[-3000:]}"


if ON_RGW:
    class RedirectVersioned(unittest.TestCase):
        """--redirect on a versioned bucket: /~v/VERSION sends to that version (?versionId= is
        signed into the URL), which keeps giving the old bytes after an overwrite; the plain
        key sends to the current version."""

        def test_version_pinned(self):
            bucket, key = "redirver", "v/take 2 +.bin"
            s3 = S3(buckets=(bucket,), versioned=True)
            srv = None
            with tempfile.TemporaryDirectory(prefix="serve-rv-") as tmp:
                try:
                    old, new = content(300007, "old"), content(300007, "new")
                    path = os.path.join(tmp, "up.bin")
                    with open(path, "wb") as f:
                        f.write(old)
                    s3.put(bucket, key, path)
                    vid = json.loads(s3.aws("s3api", "head-object", "--bucket", bucket, "--key",
                                            key).stdout)["VersionId"]
                    srv = Server(s3, [bucket], "--redirect")
                    pinned = f"/~v/{urllib.parse.quote(vid, safe='')}/{bucket}/{quote_key(key)}"
                    with open(path, "wb") as f:
                        f.write(new)
                    s3.put(bucket, key, path)
                    status, h, _ = srv.request("GET", pinned)
                    self.assertEqual(status, 302)
                    self.assertIn("versionId=" + urllib.parse.quote(vid, safe=""), h["location"])
                    self.assertEqual(fetch(FOLLOW, srv.url + pinned)[2], old)
                    self.assertEqual(fetch(FOLLOW, srv.url + f"/{bucket}/{quote_key(key)}")[2],
                                     new)
                    # the old version deleted: gone, not redirected
                    s3.aws("s3api", "delete-object", "--bucket", bucket, "--key", key,
                           "--version-id=" + vid)
                    status, h, body = srv.request("GET", pinned)
                    self.assertEqual(status, 410, body)
                    self.assertNotIn("location", h)
                finally:
                    if srv:
                        assert_no_secret(srv.stop_checked(self))
                    s3.stop()


class Feeds(unittest.TestCase):
    """?rss and ?manifest of a prefix: read with Python's own XML and JSON parsers, every item
    checked against `create s3://` and the listing the aws CLI gives."""

    KEYS = {"feed/a & <b> été.bin": 70000, "feed/sub/c+d.bin": 50000, "feed/e.bin": 90000}

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="serve-f-")
        cls.s3 = S3(buckets=(BUCKET,))
        for i, (key, size) in enumerate(cls.KEYS.items()):
            cls.put(key, content(size, f"f{i}"))
        cls.put("feed/zero.bin", b"")                    # no torrent: not in a feed
        cls.put("feed/e.bin.torrent", b"d1:ai1ee")       # a .torrent: not in a feed
        cls.put("other/x.bin", b"x" * 1000)              # outside the prefix
        cls.srv = Server(cls.s3, [f"{BUCKET}:feed/"], "--feed-items", "2")

    @classmethod
    def put(cls, key, data):
        path = os.path.join(cls.tmp.name, "up.bin")
        with open(path, "wb") as f:
            f.write(data)
        cls.s3.put(BUCKET, key, path)

    @classmethod
    def tearDownClass(cls):
        rc, log = cls.srv.stop()
        cls.s3.stop()
        cls.tmp.cleanup()
        assert rc == 0, log[-2000:]

    def listing(self):
        """(key, Last-Modified to the second, as HTTP dates have it) of the feed's objects, from
        the aws CLI (RGW lists milliseconds)."""
        p = self.s3.aws("s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix", "feed/",
                        "--output", "json")
        out = []
        for o in json.loads(p.stdout)["Contents"]:
            if o["Key"] in self.KEYS:
                out.append((o["Key"], o["LastModified"][:19]))
        return out

    def created(self, key):
        t = subprocess.run([S3T, "create", "--endpoint-url", self.s3.url, "-o", "-",
                            f"s3://{BUCKET}/{key}"], env=aws_env(), capture_output=True,
                           timeout=TIMEOUT, check=True).stdout
        return lt.torrent_info(lt.bdecode(t)).info_hashes().v1.to_bytes().hex()

    def test_rss(self):
        status, h, body = self.srv.request("GET", f"/{BUCKET}/feed/?rss")
        self.assertEqual(status, 200, body)
        self.assertEqual(h["content-type"], "application/rss+xml; charset=utf-8")
        root = ET.fromstring(body)
        self.assertEqual(root.tag, "rss")
        items = root.findall("./channel/item")
        ns = {"t": "http://xmlns.ezrss.it/0.1/"}
        # the newest two (--feed-items 2), newest first: by Last-Modified, then key
        newest = sorted(self.listing(), key=lambda kv: (kv[1], [-ord(c) for c in kv[0]]),
                        reverse=True)[:2]
        self.assertEqual([i.findtext("title") for i in items], [k for k, _ in newest])
        for item in items:
            key = item.findtext("title")
            enc = item.find("enclosure")
            self.assertEqual(enc.get("type"), "application/x-bittorrent")
            self.assertEqual(enc.get("url"), f"{self.srv.url}/{BUCKET}/{quote_key(key)}?torrent")
            ih = self.created(key)
            self.assertEqual(item.findtext("t:infoHash", namespaces=ns), ih)
            self.assertEqual(item.findtext("guid"), ih)
            self.assertEqual(int(item.findtext("t:contentLength", namespaces=ns)),
                             self.KEYS[key])
            mp = lt.parse_magnet_uri(item.findtext("t:magnetURI", namespaces=ns))
            self.assertEqual(mp.info_hashes.v1.to_bytes().hex(), ih)
            # the enclosure is the torrent, of the length announced
            status, _, t = self.srv.request("GET", urllib.parse.urlsplit(enc.get("url"))._replace(
                scheme="", netloc="").geturl())
            self.assertEqual(status, 200)
            self.assertEqual(len(t), int(enc.get("length")))

    def test_manifest(self):
        status, h, body = self.srv.request("GET", f"/{BUCKET}/feed/?manifest")
        self.assertEqual(status, 200, body)
        self.assertEqual(h["content-type"], "application/json")
        m = json.loads(body)
        self.assertEqual((m["bucket"], m["prefix"], m["truncated"], m["pending"]),
                         (BUCKET, "feed/", False, 0))
        self.assertEqual([o["key"] for o in m["objects"]], sorted(self.KEYS))
        for o in m["objects"]:
            self.assertEqual(o["size"], self.KEYS[o["key"]])
            self.assertEqual(o["info_hash_v1"], self.created(o["key"]))
            self.assertIsNone(o["info_hash_v2"])
            self.assertTrue(o["magnet"].startswith("magnet:?xt=urn:btih:" + o["info_hash_v1"]))
        # a sub-prefix; prefixes outside the one served, and objects, are refused
        status, _, body = self.srv.request("GET", f"/{BUCKET}/feed/sub/?manifest")
        self.assertEqual([o["key"] for o in json.loads(body)["objects"]], ["feed/sub/c+d.bin"])
        for target, want in ((f"/{BUCKET}/?manifest", 404), (f"/{BUCKET}/other/?rss", 404),
                             (f"/{BUCKET}/feed?rss", 404), (f"/{BUCKET}/feed/e.bin?rss", 404)):
            with self.subTest(target=target):
                self.assertEqual(self.srv.request("GET", target)[0], want)

    def test_budget_zero_lists_only_torrents_made(self):
        """--feed-hash-seconds 0: the feed hashes nothing; an object appears once its torrent
        has been made (here by a ?torrent request)."""
        srv = Server(self.s3, [f"{BUCKET}:feed/"], "--feed-hash-seconds", "0", "--cache",
                     os.path.join(self.tmp.name, "cache.db"))
        try:
            m = json.loads(srv.request("GET", f"/{BUCKET}/feed/?manifest")[2])
            self.assertEqual(m["pending"], len(self.KEYS))
            self.assertTrue(all(o["info_hash_v1"] is None for o in m["objects"]))
            self.assertEqual(ET.fromstring(srv.request("GET", f"/{BUCKET}/feed/?rss")[2])
                             .findall("./channel/item"), [])
            self.assertEqual(srv.request("GET", f"/{BUCKET}/feed/e.bin?torrent")[0], 200)
            items = ET.fromstring(srv.request("GET", f"/{BUCKET}/feed/?rss")[2]).findall(
                "./channel/item")
            self.assertEqual([i.findtext("title") for i in items], ["feed/e.bin"])
        finally:
            log = srv.stop_checked(self)
            self.assertIn("torrents not made within --feed-hash-seconds", log)


class FromSync(unittest.TestCase):
    """A server with no cache of its own lays its torrents out from the .torrent sync wrote for
    the same version: the same info-hash, its own web seed, the object never hashed; a
    .torrent of an older version is not used."""

    def test_torrent_from_sync(self):
        s3 = S3(buckets=(BUCKET,))
        srv = None
        with tempfile.TemporaryDirectory(prefix="serve-s-") as tmp:
            try:
                path = os.path.join(tmp, "up.bin")
                for key, seed in (("rec/synced.bin", "s"), ("rec/changed.bin", "c")):
                    with open(path, "wb") as f:
                        f.write(content(700001, seed))
                    s3.put(BUCKET, key, path)
                p = subprocess.run([S3T, "sync", "--endpoint-url", s3.url, "--no-cache",
                                    "--piece-length", "64K", "--json", f"s3://{BUCKET}/rec/"],
                                   env=aws_env(), capture_output=True, text=True,
                                   timeout=TIMEOUT)
                self.assertEqual(p.returncode, 0, p.stderr)
                synced = {o["key"]: o["info_hash"] for o in map(json.loads, p.stdout.split())}
                with open(path, "wb") as f:  # replaced after sync: its .torrent is of the old
                    f.write(content(700001, "c2"))
                s3.put(BUCKET, "rec/changed.bin", path)
                srv = Server(s3, [BUCKET], "--piece-length", "64K")
                status, _, t = srv.request("GET", f"/{BUCKET}/rec/synced.bin?torrent")
                self.assertEqual(status, 200, t)
                ti = lt.torrent_info(lt.bdecode(t))
                self.assertEqual(str(ti.info_hashes().v1), synced["rec/synced.bin"])
                self.assertIn("/~e/", ti.web_seeds()[0]["url"])  # the server's own web seed
                self.assertEqual(metric_of(srv, "s3torrent_serve_torrents_hashed_total"), 0)
                status, _, t = srv.request("GET", f"/{BUCKET}/rec/changed.bin?torrent")
                self.assertEqual(status, 200, t)
                self.assertNotEqual(str(lt.torrent_info(lt.bdecode(t)).info_hashes().v1),
                                    synced["rec/changed.bin"])
                self.assertEqual(metric_of(srv, "s3torrent_serve_torrents_hashed_total"), 1)
            finally:
                if srv:
                    srv.stop_checked(self)
                s3.stop()


class Config(unittest.TestCase):
    """--config FILE: long options as "name = value" lines and "bucket" lines; the command line
    wins; a wrong line is one error naming the file and line."""

    def test_config_file(self):
        s3 = S3(buckets=(BUCKET,))
        with tempfile.TemporaryDirectory(prefix="serve-c-") as tmp:
            path = os.path.join(tmp, "up.bin")
            with open(path, "wb") as f:
                f.write(b"c" * 70000)
            s3.put(BUCKET, "rec/c.bin", path)
            file_port, cli_port = free_port(), free_port()
            conf = os.path.join(tmp, "serve.conf")
            with open(conf, "w") as f:
                f.write(f"# a comment\nbucket = {BUCKET}:rec/\nlisten = 127.0.0.1:{file_port}\n"
                        f"endpoint_url = {s3.url}\ntracker = http://t.example/announce\n"
                        "no_cache\npiece-length = 32K\n")
            proc = subprocess.Popen([S3T, "serve", "--config", conf, "--listen",
                                     f"127.0.0.1:{cli_port}"], env=aws_env(),
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                wait_port(cli_port, proc, "s3torrent serve")
                c = http.client.HTTPConnection("127.0.0.1", cli_port, timeout=TIMEOUT)
                c.request("GET", f"/{BUCKET}/rec/c.bin?torrent")
                r = c.getresponse()
                t = lt.bdecode(r.read())
                self.assertEqual(r.status, 200)
                self.assertEqual(t[b"announce"], b"http://t.example/announce")
                self.assertEqual(t[b"info"][b"piece length"], 32768)
                c.request("GET", f"/{BUCKET}/other/x.bin")  # the file's prefix is the scope
                r = c.getresponse()
                r.read()
                self.assertEqual(r.status, 404)
            finally:
                proc.terminate()
                proc.wait(timeout=TIMEOUT)
                s3.stop()
            for text, want in (("lisen = 127.0.0.1:1\n", "unknown setting 'lisen'"),
                               ("threads\n", "threads needs a value"),
                               ("no_cache = maybe\n", "is not a switch"),
                               ("config = /x\n", "unknown setting 'config'")):
                with self.subTest(text=text):
                    with open(conf, "w") as f:
                        f.write(f"bucket = {BUCKET}\n{text}")
                    p = subprocess.run([S3T, "serve", "--config", conf], env=aws_env(),
                                       capture_output=True, text=True, timeout=TIMEOUT)
                    self.assertEqual(p.returncode, 2, p.stderr)
                    self.assertTrue(p.stderr.startswith(f"s3torrent: --config {conf}:2: "),
                                    p.stderr)
                    self.assertIn(want, p.stderr)
                    self.assertEqual(p.stderr.count("\n"), 1, p.stderr)


class Listen(unittest.TestCase):
    """Where the server listens decides the web seed its torrents carry."""

    def test_wildcard_address_needs_public_url(self):
        for addr in ("0.0.0.0:0", "[::]:0"):
            p = subprocess.run([S3T, "serve", "--endpoint-url", "http://127.0.0.1:9",
                                "--listen", addr, BUCKET], env=aws_env(), capture_output=True,
                               text=True, timeout=TIMEOUT)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertEqual(p.stderr, f"s3torrent: --listen {addr} is every address of this "
                             "host: give --public-url, the URL clients reach this server at, "
                             "which the torrents carry\n")

    def test_port_zero_gives_the_port_bound(self):
        """--listen 127.0.0.1:0: the torrents name the port the system chose, not port 0."""
        s3 = S3(buckets=(BUCKET,))
        with tempfile.TemporaryDirectory(prefix="serve-l-") as tmp, \
                daemon_log() as log:
            path = os.path.join(tmp, "up.bin")
            with open(path, "wb") as f:
                f.write(b"x" * 1000)
            s3.put(BUCKET, "a.bin", path)
            proc = subprocess.Popen([S3T, "serve", "--endpoint-url", s3.url, "--no-cache",
                                     "--listen", "127.0.0.1:0", BUCKET], env=aws_env(),
                                    stdout=log, stderr=subprocess.STDOUT)
            try:
                deadline, m = time.monotonic() + TIMEOUT, None
                while m is None and time.monotonic() < deadline and proc.poll() is None:
                    log.seek(0)
                    m = re.search(rb"listening on 127\.0\.0\.1:(\d+) as "
                                  rb"http://127\.0\.0\.1:(\d+),", log.read())
                    time.sleep(0.05)
                self.assertIsNotNone(m, "no 'listening on' line")
                port = int(m.group(1))
                self.assertNotEqual(port, 0)
                self.assertEqual(int(m.group(2)), port)
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
                c.request("GET", f"/{BUCKET}/a.bin?torrent")
                r = c.getresponse()
                body = r.read()
                self.assertEqual(r.status, 200, body)
                urls = lt.bdecode(body)[b"url-list"]
                urls = urls if isinstance(urls, list) else [urls]
                self.assertTrue(urls[0].decode().startswith(f"http://127.0.0.1:{port}/~e/"),
                                urls)
            finally:
                proc.terminate()
                proc.wait(timeout=TIMEOUT)
                s3.stop()


class Meta(unittest.TestCase):
    """Hybrid and v2-only torrents from the server, downloaded by libtorrent from the web seed
    alone (a v2 torrent's web seed is the pinned directory URL, which libtorrent completes with
    the torrent's name)."""

    def test_hybrid_and_v2_web_seeds(self):
        with tempfile.TemporaryDirectory(prefix="serve-h-") as tmp:
            s3 = S3(buckets=(BUCKET,))
            data = content(1048576 + 333, "h")
            path = os.path.join(tmp, "up.bin")
            with open(path, "wb") as f:
                f.write(data)
            s3.put(BUCKET, "h/x y.bin", path)
            try:
                for meta in ("hybrid", "v2"):
                    with self.subTest(meta=meta):
                        srv = Server(s3, [BUCKET], "--meta-version", meta, "--piece-length",
                                     "64K")
                        try:
                            status, _, body = srv.request("GET", f"/{BUCKET}/h/x%20y.bin?torrent")
                            self.assertEqual(status, 200, body)
                            ti = lt.torrent_info(lt.bdecode(body))
                            self.assertEqual(ti.info_hashes().has_v1(), meta == "hybrid")
                            self.assertTrue(ti.info_hashes().has_v2())
                            url = ti.web_seeds()[0]["url"]
                            self.assertRegex(url, r"/~e/[0-9a-f]+/" + BUCKET + "/h/" +
                                             ("$" if meta == "v2" else r"x%20y\.bin$"))
                            dl = tempfile.mkdtemp(dir=tmp)
                            st = libtorrent_download(ti, dl, TIMEOUT)
                            self.assertTrue(st.is_seeding, f"progress {st.progress}")
                            self.assertEqual(sha256_file(os.path.join(dl, "x y.bin")),
                                             hashlib.sha256(data).hexdigest())
                        finally:
                            srv.stop_checked(self)
            finally:
                s3.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
