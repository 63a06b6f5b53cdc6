#!/usr/bin/python3
"""What only a production S3 can show, on Ceph RGW (contrib/dev/rgw.sh): signatures checked,
a real If-Match 412, multipart md5-N ETags (sync --from-file), encoding-type=url with raw
echoes of '%' prefixes, control-character keys across a 1,000-key page boundary, versioned
buckets, private objects, and a replaced object seen by the next open on the mount.
S3TORRENT and S3TORRENTFS name the binaries under test."""
import json
import os
import re
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from faultproxy import FaultProxy
from mount import Mount
from services import AWS, Dynalite, RgwBuckets, aws_env, free_port, wait_port
from test_sync import content

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))
LAMBDA = os.path.abspath(os.environ.get("S3TORRENT_LAMBDA", "build/lambda-sync/s3torrent-lambda"))
BUCKET = "rgwbucket"
TABLE = "torrent-status"


class RgwBase(unittest.TestCase):
    versioned = False

    @classmethod
    def setUpClass(cls):
        cls.s3 = RgwBuckets(buckets=(BUCKET,), versioned=cls.versioned)
        cls.tmp = tempfile.TemporaryDirectory(prefix="rgw-test-")
        cls.dir = cls.tmp.name

    @classmethod
    def tearDownClass(cls):
        cls.s3.stop()
        cls.tmp.cleanup()

    def put(self, key, data):
        path = os.path.join(self.dir, "up.bin")
        with open(path, "wb") as f:
            f.write(data)
        self.s3.put(BUCKET, key, path)
        return path

    def s3t(self, *args, check=True, env=None, endpoint=None):
        cmd = [S3T, args[0], "--endpoint-url", endpoint or self.s3.url, *args[1:]]
        p = subprocess.run(cmd, env=aws_env(env), capture_output=True, timeout=300)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p

    def create(self, key, **kw):
        return self.s3t("create", "-o", "-", f"s3://{BUCKET}/{key}", **kw).stdout

    def local_torrent(self, path, name):
        """The torrent of a local file under the object's name, for comparison."""
        link = os.path.join(self.dir, "named", name)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(path, link)
        p = subprocess.run([S3T, "create", "--no-date", "-o", "-", link], capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout

    def head(self, key):
        return json.loads(self.s3.aws("s3api", "head-object", "--bucket", BUCKET, "--key",
                                      key).stdout)


class Authentication(RgwBase):
    def test_wrong_secret_is_refused_in_one_line(self):
        self.put("auth/a.bin", content(1000, 1))
        p = self.s3t("create", "-o", "-", f"s3://{BUCKET}/auth/a.bin", check=False,
                     env={"AWS_SECRET_ACCESS_KEY": "not-the-secret"})
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, b"")
        err = p.stderr.decode()
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn("SignatureDoesNotMatch", err)
        self.assertIn("check the secret access key", err)
        self.assertNotIn("not-the-secret", err)

    def test_objects_are_private(self):
        self.put("auth/p.bin", content(1000, 2))
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(f"{self.s3.url}/{BUCKET}/auth/p.bin", timeout=10)
        self.assertEqual(cm.exception.code, 403)
        self.assertTrue(self.create("auth/p.bin"))  # signed: read


class VirtualHosted(RgwBase):
    def test_bucket_localhost_addressing(self):
        # rgw dns name = localhost: BUCKET.localhost:PORT names the bucket in the Host
        key = "vh/take one+.bin"
        self.put(key, content(400000, 3))
        local = "http://localhost:%d" % self.s3.port
        want = self.create(key)
        p = self.s3t("create", "--addressing-style", "virtual", "--debug", "-o", "-",
                     f"s3://{BUCKET}/{key}", endpoint=local)
        self.assertEqual(p.stdout, want)
        self.assertIn(f"http://{BUCKET}.localhost:{self.s3.port}/vh/", p.stderr.decode())
        self.assertNotIn(f"localhost:{self.s3.port}/{BUCKET}/", p.stderr.decode())
        m = Mount(local, BUCKET, options=["addressing_style=virtual"])
        try:
            self.assertEqual(sorted(os.listdir(m.path("vh"))),
                             ["take one+.bin", "take one+.bin.torrent"])
            with open(m.path(key + ".torrent"), "rb") as f:
                self.assertEqual(f.read(), want)
        finally:
            self.assertEqual(m.stop(), [])
        p = self.s3t("ls", "--addressing-style", "sideways", f"s3://{BUCKET}/", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.decode(),
                         "s3torrent: addressing style 'sideways' is none of auto, path, virtual\n")


class Notifications(RgwBase):
    """The seed pipeline's own test, with nothing but an upload: RGW pushes the bucket's
    ObjectCreated events to s3torrent-lambda --listen, which writes KEY.torrent and a READY
    item."""

    def test_upload_gets_its_torrent_and_ready_item(self):
        ddb = Dynalite()
        port = free_port()
        log = open(os.path.join(self.dir, "listen.log"), "w+")
        proc = None
        try:
            env = {"AWS_ENDPOINT_URL_S3": self.s3.url, "AWS_ENDPOINT_URL_DYNAMODB": ddb.url,
                   "DDB_TABLE": TABLE, "S3_BUCKET": BUCKET, "TRACKERS": "udp://t.example:1/a"}
            self.s3t("sync", "--ddb-table", TABLE, "--ddb-endpoint-url", ddb.url,
                     "--create-table", "--dry-run", f"s3://{BUCKET}/none/")
            proc = subprocess.Popen([LAMBDA, "--listen", f"127.0.0.1:{port}"], env=aws_env(env),
                                    stdout=log, stderr=subprocess.STDOUT)
            wait_port(port, proc, "s3torrent-lambda --listen")
            # RGW's default topic: it pushes during the upload, and during the handler's own
            # PUT of KEY.torrent (which another of the listener's threads answers)
            arn = json.loads(self.s3.aws(
                "sns", "create-topic", "--name", "torrents", "--attributes",
                json.dumps({"push-endpoint": f"http://127.0.0.1:{port}/events"})).stdout)[
                "TopicArn"]
            self.s3.aws("s3api", "put-bucket-notification-configuration", "--bucket", BUCKET,
                        "--notification-configuration", json.dumps({"TopicConfigurations": [
                            {"Id": "torrents", "TopicArn": arn,
                             "Events": ["s3:ObjectCreated:*"]}]}))
            key = "rec/take 1+\u00fc %41.bin"
            data = content(5 << 20, "note")
            self.put(key, data)  # the only command: an upload with the aws CLI
            deadline = time.monotonic() + 60
            item = None
            while time.monotonic() < deadline:
                p = subprocess.run([AWS, "--endpoint-url", ddb.url, "dynamodb", "get-item",
                                    "--table-name", TABLE, "--consistent-read", "--key",
                                    json.dumps({"s3_uri": {"S": f"s3://{BUCKET}/{key}"}})],
                                   env=aws_env(), capture_output=True, check=True)
                item = json.loads(p.stdout or b"{}").get("Item")
                if item and item["status"]["S"] in ("READY", "FAILED"):
                    break
                time.sleep(0.2)
            self.assertIsNotNone(item, "no status item within 60 s")
            self.assertEqual(item["status"]["S"], "READY", item)
            got = self.s3.aws("s3", "cp", f"s3://{BUCKET}/{key}.torrent", "-").stdout
            want = self.s3t("create", "-t", "udp://t.example:1/a", "-o", "-",
                            f"s3://{BUCKET}/{key}").stdout
            self.assertEqual(got, want)
            self.assertEqual(item["info_hash"]["S"], self.head(key + ".torrent")["Metadata"][
                "s3torrent-infohash"])
        finally:
            if proc:
                proc.terminate()
                self.assertEqual(proc.wait(timeout=30), 0)
            log.seek(0)
            text = log.read()
            log.close()
            ddb.stop()
            self.assertNotIn("S3RVER", text)  # the secret key is never logged


class Conditional(RgwBase):
    def test_object_replaced_while_hashing_gets_a_real_412(self):
        key = "cond/big.bin"
        self.put(key, content(3 << 20, 1))
        replaced = []

        def hook(method, path, headers):
            if method == "GET" and "Range" in headers and not replaced:
                replaced.append(path)
                self.put(key, content(3 << 20, 2))  # a new version under the reader's feet
        proxy = FaultProxy(self.s3.port, hook=hook)
        try:
            p = self.s3t("create", "--piece-length", "256K", "-o", "-", f"s3://{BUCKET}/{key}",
                         endpoint=proxy.url, check=False)
        finally:
            proxy.stop()
        self.assertTrue(replaced)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, b"")  # no torrent of mixed versions
        self.assertIn("object changed while hashing", p.stderr.decode())


class Multipart(RgwBase):
    def test_md5_n_etag_checks_the_local_copy(self):
        data = content(20 << 20, "mp")  # aws s3 cp uploads in 8 MiB parts: md5-3
        path = self.put("mp/take.wav", data)
        etag = self.head("mp/take.wav")["ETag"].strip('"')
        self.assertRegex(etag, r"^[0-9a-f]{32}-3$")
        # hashed from RGW, the same torrent as the local file's
        self.assertEqual(self.s3t("create", "--no-date", "-o", "-",
                                  f"s3://{BUCKET}/mp/take.wav").stdout,
                         self.local_torrent(path, "take.wav"))
        ddb = Dynalite()
        try:
            def sync(src, key):
                return self.s3t("sync", "--json", "--no-cache", "--create-table", "--ddb-table",
                                "torrent-status", "--ddb-endpoint-url", ddb.url, "--from-file", src,
                                f"s3://{BUCKET}/{key}", check=False)
            # the right bytes: created, the same torrent as hashing the object
            p = sync(path, "mp/take.wav")
            self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
            self.assertEqual(json.loads(p.stdout)["action"], "created")
            got = self.s3.aws("s3", "cp", f"s3://{BUCKET}/mp/take.wav.torrent", "-").stdout
            self.assertEqual(got, self.create("mp/take.wav"))
            # other bytes of the same size: refused, nothing published
            bad = os.path.join(self.dir, "bad.wav")
            with open(bad, "wb") as f:
                f.write(data[:-1] + bytes([data[-1] ^ 1]))
            self.put("mp/other.wav", data)
            p = sync(bad, "mp/other.wav")
            self.assertEqual(p.returncode, 1)
            res = json.loads(p.stdout)
            self.assertEqual(res["action"], "failed")
            self.assertIn("not the uploaded file", res["error"])
            self.assertNotEqual(self.s3.aws("s3api", "head-object", "--bucket", BUCKET, "--key",
                                            "mp/other.wav.torrent", check=False).returncode, 0)
        finally:
            ddb.stop()


class OddListings(RgwBase):
    def test_percent_prefixes(self):
        keys = {"100%/a.bin": 1, "p%41/b.bin": 2, "pA/c.bin": 3}
        for k, seed in keys.items():
            self.put(k, content(5000, seed))
        for prefix, want in (("100%/", ["100%/a.bin"]), ("p%41/", ["p%41/b.bin"])):
            p = self.s3t("ls", "--recursive", f"s3://{BUCKET}/{prefix}")
            listed = [re.match(r"^ *\d+ \S+ \S+ +(.*)$", line).group(1)
                      for line in p.stdout.decode().splitlines()]
            self.assertEqual(listed, want)
        p = self.s3t("sync", "--json", "--no-cache", f"s3://{BUCKET}/100%/")
        self.assertEqual([json.loads(line)["action"] for line in p.stdout.splitlines()],
                         ["created"])
        m = Mount(self.s3.url, BUCKET)
        try:
            self.assertEqual(sorted(os.listdir(m.path("100%"))), ["a.bin", "a.bin.torrent"])
            self.assertEqual(sorted(os.listdir(m.path("p%41"))), ["b.bin", "b.bin.torrent"])
            with open(m.path("p%41", "b.bin.torrent"), "rb") as f:
                self.assertEqual(f.read(), self.create("p%41/b.bin"))
        finally:
            self.assertEqual(m.stop(), [])

    def test_control_characters_across_a_page_boundary(self):
        # 1,002 keys; the 1,000th, the last of the first page, holds a control character, so
        # RGW writes its NextContinuationToken as "&#x01;", which XML 1.0 forbids
        src = os.path.join(self.dir, "many")
        os.makedirs(src)
        names = [f"k{i:04d}" for i in range(999)] + ["k0999\x01ctl", "k1000", "k1001\x1fz"]
        for n in names:
            with open(os.path.join(src, n), "wb") as f:
                f.write(n.encode())
        self.s3.aws("s3", "cp", "--recursive", "--only-show-errors", src, f"s3://{BUCKET}/ctl/")
        p = self.s3t("ls", "--recursive", f"s3://{BUCKET}/ctl/")
        lines = p.stdout.decode().splitlines()
        self.assertEqual(len(lines), 1002)
        self.assertTrue(lines[999].endswith("ctl/k0999\\x01ctl"), lines[999])
        self.assertTrue(lines[1001].endswith("ctl/k1001\\x1fz"), lines[1001])
        # one rule for keys no torrent can be named after: sync skips and counts them (exit 0),
        # the mount shows the objects without a synthetic torrent
        p = self.s3t("sync", "--json", "--no-cache", "-j", "4", f"s3://{BUCKET}/ctl/")
        res = [json.loads(line) for line in p.stdout.splitlines()]
        skipped = sorted(r["key"] for r in res if r["action"] == "skipped")
        self.assertEqual(skipped, ["ctl/k0999\x01ctl", "ctl/k1001\x1fz"])
        self.assertEqual(sum(r["action"] == "created" for r in res), 1000)
        m = Mount(self.s3.url, BUCKET)
        try:
            names = set(os.listdir(m.path("ctl")))
            # the objects and the 1,000 .torrent objects sync wrote (shown instead of synthetic
            # ones); none for the two control-character keys
            self.assertEqual(len(names), 1002 + 1000)
            self.assertIn("k0999\x01ctl", names)
            self.assertNotIn("k0999\x01ctl.torrent", names)
            with open(m.path("ctl", "k1000.torrent"), "rb") as f:
                self.assertEqual(f.read(), self.create("ctl/k1000"))
        finally:
            self.assertEqual(m.stop(), [])


class ReplacedObject(RgwBase):
    def test_next_open_sees_the_new_version(self):
        key = "rep/v.bin"
        self.put(key, content(300000, 1))
        m = Mount(self.s3.url, BUCKET, options=["ttl=3600", "negative_ttl=3600"])
        try:
            with open(m.path(key), "rb") as f:
                self.assertEqual(f.read(), content(300000, 1))
            with open(m.path(key + ".torrent"), "rb") as f:
                self.assertEqual(f.read(), self.create(key))
            self.put(key, content(450000, 2))  # another version, another size
            # the listing is an hour fresh, yet the next opens see the new version
            with open(m.path(key), "rb") as f:
                self.assertEqual(f.read(), content(450000, 2))
            with open(m.path(key + ".torrent"), "rb") as f:
                self.assertEqual(f.read(), self.create(key))
            # and stat, once the kernel's 1 s attribute cache has passed (not the hour's TTL)
            deadline = time.monotonic() + 10
            while os.stat(m.path(key)).st_size != 450000:
                self.assertLess(time.monotonic(), deadline, "stat kept the old size")
                time.sleep(0.1)
        finally:
            self.assertEqual(m.stop(), [])


class Versioned(RgwBase):
    versioned = True

    def test_torrent_of_the_current_version(self):
        key = "ver/take.bin"
        self.put(key, content(200000, 1))
        self.put(key, content(250000, 2))
        versions = json.loads(self.s3.aws("s3api", "list-object-versions", "--bucket", BUCKET,
                                          "--prefix", key).stdout)["Versions"]
        self.assertEqual(len(versions), 2)
        path = os.path.join(self.dir, "cur.bin")
        with open(path, "wb") as f:
            f.write(content(250000, 2))
        want = self.local_torrent(path, "take.bin")
        self.assertEqual(self.s3t("create", "--no-date", "-o", "-",
                                  f"s3://{BUCKET}/{key}").stdout, want)
        p = self.s3t("sync", "--json", "--no-cache", f"s3://{BUCKET}/{key}")
        self.assertEqual(json.loads(p.stdout)["action"], "created")


if __name__ == "__main__":
    unittest.main(verbosity=2)
