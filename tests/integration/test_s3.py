#!/usr/bin/python3
"""S3 end to end against a real s3rver: `create s3://...` gives the same bytes as `create FILE`
for odd keys, multipart uploads and an object over 4 GiB; listings paginate and decode; faults
injected by a proxy never change a torrent; secrets never reach the output. Objects are uploaded
with the aws CLI, as users do. S3TORRENT names the binary under test."""
import json
import os
import re
import subprocess
import tempfile
import threading
import unittest
from datetime import datetime
from urllib.parse import quote

from faultproxy import FaultProxy
from services import ODD_KEYS, S3, aws_env

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))
BUCKET = "test"
SECRET = "S3RVER"
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "data", "fixtures")


def content(path, size, seed=0):
    block = bytes((i * 13 + seed) % 256 for i in range(65536))
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)


def rd(path):
    with open(path, "rb") as f:
        return f.read()


class S3Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = S3(buckets=(BUCKET,))
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name

    @classmethod
    def tearDownClass(cls):
        cls.s3.stop()
        cls.tmp.cleanup()

    def run_s3t(self, *args, endpoint=None, env=None, check=True):
        e = aws_env(env)
        extra = [] if args[0] == "show" else ["--endpoint-url", endpoint or self.s3.url]
        p = subprocess.run([S3T, *args[:1], *extra, *args[1:]], env=e, capture_output=True,
                           cwd=self.dir)
        if check and p.returncode != 0:
            raise AssertionError(f"s3torrent {args} failed: {p.stderr.decode()}")
        return p

    def local(self, name, size, seed=0):
        path = os.path.join(self.dir, name)
        content(path, size, seed)
        return path

    def create_bytes(self, target, *opts, endpoint=None, env=None):
        out = os.path.join(self.dir, "out.torrent")
        self.run_s3t("create", "--force", "--no-date", "-o", out, *opts, target,
                     endpoint=endpoint, env=env)
        return rd(out)


class SameAsFile(S3Base):
    def test_odd_keys_same_torrent_as_file(self):
        for i, key in enumerate(ODD_KEYS):
            with self.subTest(key=key[:60]):
                self.assertLessEqual(len(key.encode()), 1024)
                path = self.local("src.bin", 300000 + i * 7777, seed=i)
                self.s3.put(BUCKET, key, path)
                name = key.rsplit("/", 1)[-1]
                for meta in ("v1", "hybrid"):
                    want = self.create_bytes(path, "--name", name, "-m", meta, "-w",
                                             "http://w.example/")
                    got = self.create_bytes(f"s3://{BUCKET}/{key}", "-m", meta, "-w",
                                            "http://w.example/")
                    # the web seed names the whole key, the file only its name
                    want = want.replace(self.ws(name), self.ws(key))
                    self.assertEqual(got, want)

    def ws(self, key):
        url = ("http://w.example/" + quote(key, safe="/-._~")).encode()
        return str(len(url)).encode() + b":" + url

    def test_multipart_upload_and_verify(self):
        path = self.local("multi.bin", 20 * 1024 * 1024 + 12345, seed=9)
        self.s3.put(BUCKET, "rec/multipart.bin", path)  # over 8 MiB: multipart
        for meta in ("v1", "v2", "hybrid"):
            want = self.create_bytes(path, "-m", meta, "--name", "multipart.bin")
            got = self.create_bytes(f"s3://{BUCKET}/rec/multipart.bin", "-m", meta)
            self.assertEqual(got, want)
            t = os.path.join(self.dir, "v.torrent")
            with open(t, "wb") as f:
                f.write(got)
            ok = self.run_s3t("verify", t, f"s3://{BUCKET}/rec/multipart.bin")
            self.assertIn(b"OK,", ok.stdout)

    def test_creation_date_is_last_modified(self):
        path = self.local("dated.bin", 1000)
        self.s3.put(BUCKET, "dated.bin", path)
        head = self.s3.aws("s3api", "head-object", "--bucket", BUCKET, "--key", "dated.bin")
        lm = json.loads(head.stdout)["LastModified"]
        out = os.path.join(self.dir, "d.torrent")
        self.run_s3t("create", "--force", "-o", out, f"s3://{BUCKET}/dated.bin")
        show = json.loads(self.run_s3t("show", "--json", out).stdout)
        self.assertEqual(show["creation_date"], int(datetime.fromisoformat(lm).timestamp()))

    def test_errors_are_one_line(self):
        cases = [
            (f"s3://{BUCKET}/no/such/key.bin", "404"),
            ("s3://no-such-bucket/key.bin", "404"),
            ("s3://x!/key", "is not a bucket name (1 to 255 letters"),
            ("s3://no-such-bucket/dir/", "NoSuchBucket"),  # a prefix (test_prefix.py): listed
        ]
        for target, needle in cases:
            with self.subTest(target=target):
                p = self.run_s3t("create", "-o", "-", target, check=False)
                err = p.stderr.decode()
                self.assertEqual(p.returncode, 1, err)
                self.assertEqual(err.count("\n"), 1, err)
                self.assertIn(needle, err)
        # nothing listens here: bounded retries, then one line
        p = self.run_s3t("create", "-o", "-", f"s3://{BUCKET}/plain.bin",
                         endpoint="http://127.0.0.1:9", env={"AWS_MAX_ATTEMPTS": "2"},
                         check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("after 2 attempts", p.stderr.decode())
        self.assertEqual(p.stderr.decode().count("\n"), 1)

    def test_zero_byte_object(self):
        path = self.local("zero.bin", 0)
        self.s3.put(BUCKET, "zero.bin", path)
        p = self.run_s3t("create", "-o", "-", f"s3://{BUCKET}/zero.bin")
        self.assertEqual(p.stdout, b"")
        self.assertIn(b"zero-byte object, nothing to share", p.stderr)


class Listing(S3Base):
    def test_2500_objects_paginate(self):
        src = os.path.join(self.dir, "many")
        os.makedirs(src)
        keys = set()
        for i in range(2500):
            name = f"k {i:04d}+é.txt"
            with open(os.path.join(src, name), "w") as f:
                f.write(str(i))
            keys.add(f"many/{name}")
        self.s3.aws("s3", "cp", "--recursive", "--only-show-errors", src, f"s3://{BUCKET}/many/")
        proxy = FaultProxy(self.s3.port)
        try:
            p = self.run_s3t("ls", "--recursive", f"s3://{BUCKET}/many/", endpoint=proxy.url)
            lists = proxy.by_method.get("GET", 0)
        finally:
            proxy.stop()
        got = [re.split(r"\s+", line.strip(), maxsplit=3)[3] for line in p.stdout.decode().splitlines()]
        self.assertEqual(set(got), keys)
        self.assertEqual(len(got), 2500)
        self.assertEqual(lists, 3)  # 1000 + 1000 + 500

    def test_delimiter_shows_prefixes(self):
        for key in ("d/a/1.bin", "d/b/2.bin", "d/top.bin"):
            self.s3.put(BUCKET, key, self.local("x.bin", 10))
        out = self.run_s3t("ls", f"s3://{BUCKET}/d/").stdout.decode()
        self.assertRegex(out, r"PRE\s+d/a/")
        self.assertRegex(out, r"PRE\s+d/b/")
        self.assertRegex(out, r"\s10 .* d/top.bin")

    def test_encoded_listing_fixture(self):
        body = rd(os.path.join(FIXTURES, "s3-list-objects-v2-encoded.xml"))
        served = []

        def override(method, path):
            if method == "GET" and "list-type=2" in path:
                served.append(path)
                if "continuation-token" in path:
                    return (200, b'<?xml version="1.0"?><ListBucketResult><Name>test</Name>'
                                 b'<IsTruncated>false</IsTruncated><EncodingType>url'
                                 b'</EncodingType></ListBucketResult>')
                return (200, body)
            return None

        proxy = FaultProxy(self.s3.port, override=override)
        try:
            p = self.run_s3t("ls", "--recursive", f"s3://{BUCKET}/", endpoint=proxy.url)
        finally:
            proxy.stop()
        out = p.stdout.decode()
        self.assertIn("photos/red flower+1 été.jpg", out)
        self.assertIn("\\x01", out)  # the key with U+0001, escaped on output
        self.assertEqual(len(served), 2)
        self.assertIn("continuation-token=", served[1])

    def test_hostile_listings_fail_cleanly(self):
        laughs = rd(os.path.join(FIXTURES, "xml-billion-laughs.xml"))
        big = (b'<?xml version="1.0"?><ListBucketResult><Name>test</Name>'
               + b"<Contents><Key>k</Key><Size>1</Size></Contents>" * 400000
               + b"<IsTruncated>false</IsTruncated></ListBucketResult>")
        for name, doc, needle in [("billion laughs", laughs, "DOCTYPE"),
                                  ("over the cap", big, "cap")]:
            with self.subTest(name):
                proxy = FaultProxy(self.s3.port,
                                   override=lambda m, p, d=doc: (200, d) if "list-type" in p else None)
                try:
                    p = self.run_s3t("ls", f"s3://{BUCKET}/", endpoint=proxy.url, check=False)
                finally:
                    proxy.stop()
                err = p.stderr.decode()
                self.assertEqual(p.returncode, 1, err)
                self.assertEqual(err.count("\n"), 1, err)
                self.assertIn(needle, err)


class Faults(S3Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.path = os.path.join(cls.dir, "faulty.bin")
        content(cls.path, 40 * 1024 * 1024 + 999, seed=4)
        cls.s3.put(BUCKET, "faulty.bin", cls.path)

    def test_faults_never_change_the_torrent(self):
        clean = self.create_bytes(f"s3://{BUCKET}/faulty.bin", "-m", "hybrid")
        self.assertEqual(clean, self.create_bytes(self.path, "-m", "hybrid"))
        outcomes = {"same": 0, "failed": 0}
        for seed in range(6):
            for fault in ("slowdown", "internal", "reset", "truncate", "delay"):
                with self.subTest(seed=seed, fault=fault):
                    proxy = FaultProxy(self.s3.port, faults={fault: 0.3}, seed=seed,
                                       methods=("GET", "HEAD"))
                    out = os.path.join(self.dir, "f.torrent")
                    try:
                        p = self.run_s3t("create", "--force", "--no-date", "-m", "hybrid", "-o",
                                         out, f"s3://{BUCKET}/faulty.bin", endpoint=proxy.url,
                                         check=False)
                    finally:
                        proxy.stop()
                    if p.returncode == 0:
                        self.assertEqual(rd(out), clean)
                        outcomes["same"] += 1
                    else:
                        err = p.stderr.decode()
                        self.assertEqual(p.returncode, 1)
                        self.assertEqual(err.count("\n"), 1, err)
                        self.assertRegex(err, r"after \d+ attempts|reading bytes")
                        outcomes["failed"] += 1
        # the retries must actually carry most runs through
        self.assertGreater(outcomes["same"], outcomes["failed"])

    def test_object_replaced_mid_hash(self):
        key = "replaced.bin"
        self.s3.put(BUCKET, key, self.path)
        other = self.local("other.bin", 40 * 1024 * 1024 + 999, seed=5)
        gets = []
        lock = threading.Lock()

        def hook(method, path, headers):
            with lock:
                if method == "GET" and key in path and "Range" in headers:
                    gets.append(path)
                    if len(gets) == 2:
                        self.s3.put(BUCKET, key, other)

        proxy = FaultProxy(self.s3.port, hook=hook)
        try:
            p = self.run_s3t("create", "-o", "-", f"s3://{BUCKET}/{key}", endpoint=proxy.url,
                             check=False)
        finally:
            proxy.stop()
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 1, err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn("object changed while hashing", err)
        self.assertEqual(p.stdout, b"")


    def test_precondition_failed_is_object_changed(self):
        ranged = []

        def override(method, path):
            # what S3 answers a GET whose If-Match no longer holds
            if method == "GET" and "faulty.bin" in path:
                ranged.append(path)
                if len(ranged) == 2:
                    return (412, b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>'
                                 b'PreconditionFailed</Code><Message>At least one of the '
                                 b'pre-conditions you specified did not hold</Message>'
                                 b'<RequestId>R</RequestId></Error>')
            return None

        proxy = FaultProxy(self.s3.port, override=override)
        try:
            p = self.run_s3t("create", "-o", "-", f"s3://{BUCKET}/faulty.bin",
                             endpoint=proxy.url, check=False)
        finally:
            proxy.stop()
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 1, err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn("object changed while hashing", err)


class Secrets(S3Base):
    def test_debug_output_has_no_secrets(self):
        path = self.local("s.bin", 100000)
        self.s3.put(BUCKET, "s.bin", path)
        token = "SessionTokenValue1234567890"
        env = {"AWS_SESSION_TOKEN": token}  # s3rver ignores it; we must still hide it
        p = self.run_s3t("create", "--debug", "-o", "-", f"s3://{BUCKET}/s.bin", env=env,
                         check=False)
        text = p.stdout.decode("latin-1") + p.stderr.decode("latin-1")
        self.assertIn("HTTP GET", p.stderr.decode())  # debug logging was on
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        for secret in (SECRET, token, "Signature=", "Authorization",
                       "X-Amz-Security-Token", "AWS4-HMAC-SHA256"):
            self.assertNotIn(secret, text)


class ClockSkew(S3Base):
    """A clock more than 15 minutes off: the server refuses the signature (RequestTimeTooSkewed;
    RGW's answer has neither times nor a message, so the Date header tells), and the one line
    says by how much the local clock is off and what to do. libfaketime moves
    the clock of s3torrent alone."""

    def test_clock_skew_is_one_clear_line(self):
        path = self.local("k.bin", 5000)
        self.s3.put(BUCKET, "k.bin", path)
        for offset, seconds, side in (("-1h", 3600, "behind"), ("+20m", 1200, "ahead of")):
            for cmd in (("create", "-o", "-"), ("ls",)):
                with self.subTest(offset=offset, cmd=cmd[0]):
                    target = f"s3://{BUCKET}/k.bin" if cmd[0] == "create" else f"s3://{BUCKET}/"
                    p = subprocess.run(["faketime", "-f", offset, S3T, cmd[0], "--endpoint-url",
                                        self.s3.url, *cmd[1:], target], env=aws_env(),
                                       capture_output=True, text=True, timeout=120)
                    self.assertEqual(p.returncode, 1)
                    self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
                    # HEAD (create) has no body: the skew comes from the Date header; a LIST
                    # answer carries S3's own RequestTime and ServerTime
                    m = re.fullmatch(
                        r"s3torrent: s3://test(/k\.bin)?: RequestTimeTooSkewed: The difference "
                        r"between the request time and the current time is too large"
                        r"(\. \(request id [^)]+\))?; the local "
                        r"clock is (\d+) s (behind|ahead of) the server's \(request signed at "
                        r"[0-9TZ:-]+, server time [0-9TZ:-]+\): fix the system clock \(NTP\)\n",
                        p.stderr)
                    self.assertIsNotNone(m, p.stderr)
                    self.assertLess(abs(int(m.group(3)) - seconds), 60)
                    self.assertEqual(m.group(4), side)


class Tls(S3Base):
    """TLS verification is always on: a local HTTPS endpoint with a self-signed certificate is
    refused in one line until its CA is given with AWS_CA_BUNDLE, and there is no switch to
    turn verification off."""

    def test_self_signed_endpoint_needs_aws_ca_bundle(self):
        cert, key = os.path.join(self.dir, "ca.pem"), os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        path = self.local("tls.bin", 300000)
        self.s3.put(BUCKET, "tls.bin", path)
        proxy = FaultProxy(self.s3.port, tls=(cert, key))
        try:
            target = f"s3://{BUCKET}/tls.bin"
            for env in ({}, {"AWS_CA_BUNDLE": ""}):
                p = self.run_s3t("create", "-o", "-", target, endpoint=proxy.url, env=env,
                                 check=False)
                err = p.stderr.decode()
                self.assertEqual(p.returncode, 1, err)
                self.assertEqual(err.count("\n"), 1, err)
                self.assertRegex(err, r"^s3torrent: s3://test/tls\.bin: HTTP: SSL certificate "
                                 r"problem: .* \(TLS verification is always on: give the "
                                 r"endpoint's CA in AWS_CA_BUNDLE\)\n$")
            # a CA bundle that does not exist is an error, not a silent fallback
            p = self.run_s3t("create", "-o", "-", target, endpoint=proxy.url,
                             env={"AWS_CA_BUNDLE": os.path.join(self.dir, "missing.pem")},
                             check=False)
            self.assertEqual(p.returncode, 1)
            self.assertEqual(p.stderr.decode().count("\n"), 1, p.stderr.decode())
            # aws-cli's switches to turn verification off do not exist here
            for switch in ("--no-verify-ssl", "--insecure", "-k"):
                p = self.run_s3t("create", switch, "-o", "-", target, endpoint=proxy.url,
                                 check=False)
                self.assertEqual(p.returncode, 2, switch)
            with_ca = self.create_bytes(target, endpoint=proxy.url, env={"AWS_CA_BUNDLE": cert})
            self.assertEqual(with_ca, self.create_bytes(target))
        finally:
            proxy.stop()


class Beyond4GiB(S3Base):
    def test_object_over_4gib(self):
        path = os.path.join(self.dir, "big.bin")
        with open(path, "wb") as f:
            f.truncate(4 * 1024 ** 3 + 1024 ** 2)
            f.seek(4 * 1024 ** 3 + 5)
            f.write(b"data past four gibibytes")
            f.seek(12345)
            f.write(b"and near the start")
        self.s3.put(BUCKET, "big/over-4gib.bin", path)
        got = self.create_bytes(f"s3://{BUCKET}/big/over-4gib.bin")
        want = self.create_bytes(path, "--name", "over-4gib.bin")
        self.assertEqual(got, want)


if __name__ == "__main__":
    unittest.main(verbosity=2)
