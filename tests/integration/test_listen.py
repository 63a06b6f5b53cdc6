#!/usr/bin/python3
"""s3torrent-lambda --listen, the real binary, serving S3 event notifications POSTed over HTTP
as Ceph RGW topics and MinIO webhooks push them, against real s3rver (or RGW: S3T_S3=rgw) and
dynalite: a raw RGW key with a space, '+', '%41' and UTF-8 made into the torrent `s3torrent
create` makes, READY; a MinIO (encoded) key; 405 for GET, 400 for garbage, 200 with a FAILED
item for a missing object, 413 for a 7 MiB body (before it is read), 500 when DynamoDB is down
so nothing could be recorded, usage errors, and a clean exit 0 on SIGTERM and SIGINT. The services,
table, environment and helpers are test_lambda.py's (its idle runtime is left waiting).
S3TORRENT_LAMBDA and S3TORRENT name the binaries under test."""
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import unittest
import urllib.parse

import test_lambda as tl
from services import SECRET, free_port, wait_port

BUCKET = tl.BUCKET
SEVEN_MIB = 7 << 20
ETAG = "0123456789abcdef0123456789abcdef"


def rgw_record(key, etag, size, bucket=BUCKET, name="ObjectCreated:Put"):
    """One record as an RGW 16.2 topic pushes it: the key raw, awsRegion empty, extras."""
    return {"eventVersion": "2.2", "eventSource": "ceph:s3", "awsRegion": "",
            "eventTime": "2026-01-02T03:04:05.678Z", "eventName": name,
            "userIdentity": {"principalId": "test"},
            "requestParameters": {"sourceIPAddress": ""},
            "responseElements": {"x-amz-request-id": "r-1", "x-amz-id-2": "i-2"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "n1",
                   "bucket": {"name": bucket, "ownerIdentity": {"principalId": "test"},
                              "arn": f"arn:aws:s3:::{bucket}", "id": "5d3f.4137.1"},
                   "object": {"key": key, "size": size, "eTag": etag, "versionId": "",
                              "sequencer": "9F4DA65D", "metadata": [], "tags": []}},
            "eventId": "1.2", "opaqueData": ""}


def minio_event(key, etag, size, bucket=BUCKET):
    """A MinIO webhook body: the key encoded as Go's url.QueryEscape does."""
    enc = urllib.parse.quote_plus(key, safe="")
    return {"EventName": "s3:ObjectCreated:Put", "Key": f"{bucket}/{key}",
            "Records": [{"eventVersion": "2.0", "eventSource": "minio:s3", "awsRegion": "",
                         "eventTime": "2026-01-02T03:04:05.678Z",
                         "eventName": "s3:ObjectCreated:Put",
                         "s3": {"s3SchemaVersion": "1.0", "configurationId": "Config",
                                "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                                "object": {"key": enc, "size": size, "eTag": etag,
                                           "contentType": "application/octet-stream",
                                           "sequencer": "17A3"}}}]}


def start_listen(env, port, log):
    p = subprocess.Popen([tl.LAMBDA, "--listen", f"127.0.0.1:{port}"], env=env, stdout=log,
                         stderr=subprocess.STDOUT)
    wait_port(port, p, "s3torrent-lambda --listen")
    return p


def request(port, method, path="/", body=None, headers=None):
    """One request on its own connection. Returns (status, headers, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def raw_exchange(port, head, body_chunks):
    """Sends head, then body_chunks from a second thread (the server may answer and close
    before it has all come: a refused write is no failure here), and reads one answer.
    Returns (status, the whole answer, bytes of the body sent)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    sent = [0]

    def send():
        try:
            for chunk in body_chunks:
                s.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass

    try:
        s.sendall(head)
        t = threading.Thread(target=send, daemon=True)
        t.start()
        answer = b""
        while True:
            head_end = answer.find(b"\r\n\r\n")
            if head_end >= 0:  # the answer's own Content-Length says when it is all here
                lines = answer[:head_end].decode("latin-1").split("\r\n")[1:]
                fields = dict(l.split(":", 1) for l in lines if ":" in l)
                length = {k.strip().lower(): v.strip() for k, v in fields.items()}.get(
                    "content-length", "0")
                if len(answer) >= head_end + 4 + int(length):
                    break
            try:
                got = s.recv(65536)
            except ConnectionResetError:
                break
            if not got:
                break
            answer += got
        t.join(timeout=60)
    finally:
        s.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, answer, sent[0]


class Listen(tl.LambdaBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.port = free_port()
        cls.listen_log = open(os.path.join(cls.dir, "listen.log"), "w+")
        cls.listen = start_listen(cls.env(), cls.port, cls.listen_log)

    @classmethod
    def tearDownClass(cls):
        if cls.listen.poll() is None:
            cls.listen.kill()
        cls.listen.wait()
        cls.listen_log.seek(0)
        log = cls.listen_log.read()
        cls.listen_log.close()
        if os.environ.get("LAMBDA_LOG"):
            print(log)
        super().tearDownClass()
        for secret in (SECRET, tl.SESSION_TOKEN, "Signature=", "Authorization",
                       "AWS4-HMAC-SHA256"):
            if secret in log:
                raise AssertionError(f"--listen logged {secret!r}")

    def post(self, doc, port=None, path="/"):
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return request(port or self.port, "POST", path, body,
                       {"Content-Type": "application/json"})

    def put_etag(self, key, data):
        self.put(key, data)
        head = json.loads(self.s3.aws("s3api", "head-object", "--bucket", BUCKET, "--key",
                                      key).stdout)
        return head["ETag"].strip('"')

    def test_1_rgw_raw_key(self):
        key = "rec/take 1+ü %41 录音.bin"
        data = tl.content(90000, 41)
        etag = self.put_etag(key, data)
        st, hdr, body = self.post({"Records": [rgw_record(key, etag, len(data))]},
                                  path="/rgw/topic-1")
        self.assertEqual(st, 200, body)
        self.assertEqual(hdr["content-type"], "application/json")
        res = json.loads(body)["results"]
        self.assertEqual([(r["key"], r["action"]) for r in res], [(key, "created")])
        self.assert_synced(key)  # the bytes of `s3torrent create`, READY, source lambda
        # the key as RGW means it, not decoded: nothing was made for "A" or " "
        self.assertIsNone(self.get("rec/take 1 ü A 录音.bin.torrent"))
        # pushed again (RGW retries): nothing changes
        st, _, body = self.post({"Records": [rgw_record(key, etag, len(data))]})
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["results"][0]["action"], "up-to-date")
        # "s3:" before the event name (older RGW) and other events in one push
        key2 = "rec/b+c.bin"
        etag2 = self.put_etag(key2, tl.content(5000, 42))
        st, _, body = self.post({"Records": [
            rgw_record(key2, etag2, 5000, name="s3:ObjectCreated:CompleteMultipartUpload"),
            rgw_record(key, etag, len(data), name="ObjectRemoved:Delete")]})
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["results"][0]["action"], "created")
        self.assert_synced(key2)

    def test_2_minio_encoded_key(self):
        key = "minio/a b+c %41 é.bin"
        data = tl.content(30000, 43)
        etag = self.put_etag(key, data)
        st, _, body = self.post(minio_event(key, etag, len(data)), path="/minio/webhook")
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["results"][0]["key"], key)
        self.assert_synced(key)

    def test_3_other_methods_405(self):
        for method in ("GET", "PUT", "DELETE", "HEAD"):
            st, hdr, body = request(self.port, method, "/", b"{}" if method == "PUT" else None)
            self.assertEqual(st, 405, method)
            self.assertEqual(hdr["allow"], "POST")
            if method != "HEAD":
                self.assertEqual(body.count(b"\n"), 1, body)

    def test_4_garbage_400(self):
        for doc in (b'{"Records": [', b"", b"\x00\xff", b"[]", {"hello": "world"},
                    {"Records": [{"eventSource": "azure:blob", "eventName": "x"}]},
                    {"Records": [{"eventSource": "aws:sqs", "messageId": "m", "body": "{}"}]}):
            st, hdr, body = self.post(doc)
            self.assertEqual(st, 400, (doc, body))
            self.assertTrue(hdr["content-type"].startswith("text/plain"))
            self.assertEqual(body.count(b"\n"), 1, body)
            self.assertTrue(body.strip())
        st, _, body = self.post({"Records": [{"eventSource": "azure:blob"}]})
        self.assertIn(b"records from 'azure:blob'", body)
        # a test event asks for nothing, and is no error
        st, _, body = self.post({"Service": "Amazon S3", "Event": "s3:TestEvent"})
        self.assertEqual(st, 200, body)

    def test_5_missing_object_recorded_failed(self):
        key = "gone/never put+1.bin"
        st, _, body = self.post({"Records": [rgw_record(key, ETAG, 10)]})
        self.assertEqual(st, 200, body)  # recorded: the sender has nothing to retry
        self.assertEqual(json.loads(body)["results"][0]["action"], "failed")
        it = self.item(key)
        self.assertEqual(it["status"]["S"], "FAILED", it)
        self.assertEqual(it["etag"]["S"], ETAG)
        self.assertEqual(it["source"]["S"], "lambda")
        self.assertTrue(it["error"]["S"])
        self.assertIsNone(self.get(key + ".torrent"))
        # once the object is there, the next push makes it READY
        data = tl.content(7000, 44)
        etag = self.put_etag(key, data)
        st, _, body = self.post({"Records": [rgw_record(key, etag, len(data))]})
        self.assertEqual(st, 200, body)
        self.assert_synced(key)

    def test_6_body_over_cap_413(self):
        # Content-Length over the cap: answered before the body is read
        head = (f"POST /big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {SEVEN_MIB}\r\n\r\n").encode()
        st, answer, _ = raw_exchange(self.port, head, [])
        self.assertEqual(st, 413, answer)
        self.assertIn(b"6291456", answer)
        # the same with the whole body sent: no reading it all
        st, answer, _ = raw_exchange(self.port, head, [b" " * (1 << 20)] * 7)
        self.assertEqual(st, 413, answer)
        # chunked, so that the size shows only as it comes
        head = (b"POST /big HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n" % (1 << 20) + b" " * (1 << 20) + b"\r\n"
        st, answer, _ = raw_exchange(self.port, head, [chunk] * 7 + [b"0\r\n\r\n"])
        self.assertEqual(st, 413, answer)
        # and it goes on serving
        st, _, body = self.post({"Service": "Amazon S3", "Event": "s3:TestEvent"})
        self.assertEqual(st, 200, body)

    def test_7_dynamodb_down_500(self):
        dead = free_port()  # nothing listens there
        port = free_port()
        with open(os.path.join(self.dir, "listen-ddb-down.log"), "w+") as log:
            p = start_listen(self.env({"AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{dead}",
                                       "AWS_MAX_ATTEMPTS": "1"}), port, log)
            try:
                # a missing object: its FAILED status cannot be written
                st, _, body = self.post({"Records": [rgw_record("down/gone.bin", ETAG, 1)]},
                                        port=port)
                self.assertEqual(st, 500, body)
                self.assertIn(b"could not be recorded FAILED", body)
                self.assertEqual(body.count(b"\n"), 1, body)
                # an object that is there: no HASHING status, so no torrent either
                data = tl.content(3000, 45)
                etag = self.put_etag("down/here.bin", data)
                st, _, body = self.post({"Records": [rgw_record("down/here.bin", etag, 3000)]},
                                        port=port)
                self.assertEqual(st, 500, body)
                self.assertIsNone(self.get("down/here.bin.torrent"))
            finally:
                p.send_signal(signal.SIGTERM)
                self.assertEqual(p.wait(timeout=60), 0)
            log.seek(0)
            text = log.read()
            if os.environ.get("LAMBDA_LOG"):
                print(text)
            self.assertIn("POST / 500:", text)
        # with DynamoDB back (the shared listener), the retry goes through
        st, _, body = self.post({"Records": [rgw_record("down/here.bin", etag, 3000)]})
        self.assertEqual(st, 200, body)
        self.assert_synced("down/here.bin")

    def test_8_usage_and_sigint(self):
        for addr, says in (("127.0.0.1", "no port"), ("::1:80", "brackets"),
                           ("localhost:80", "numeric")):
            p = subprocess.run([tl.LAMBDA, "--listen", addr], env=self.env(), capture_output=True,
                               timeout=60)
            self.assertEqual(p.returncode, 2, addr)
            err = p.stderr.decode()
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn(says, err)
        # the port is taken: one line, exit 2
        p = subprocess.run([tl.LAMBDA, "--listen", f"127.0.0.1:{self.port}"], env=self.env(),
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(f"--listen 127.0.0.1:{self.port}", p.stderr.decode())
        p = subprocess.run([tl.LAMBDA, "--help"], capture_output=True, timeout=60)
        self.assertIn(b"--listen ADDR:PORT", p.stdout)
        port = free_port()
        with open(os.devnull, "w") as devnull:
            p = start_listen(self.env(), port, devnull)
            p.send_signal(signal.SIGINT)
            self.assertEqual(p.wait(timeout=60), 0)

    def test_9_sigterm_exits_0_one_line_per_request(self):
        self.listen.send_signal(signal.SIGTERM)
        self.assertEqual(self.listen.wait(timeout=60), 0)
        self.listen_log.seek(0)
        log = self.listen_log.read()
        for line in ("POST /rgw/topic-1 200: 1 objects: 1 done, 0 skipped, 0 failed",
                     "POST /minio/webhook 200: 1 objects: 1 done",
                     "GET / 405: method GET not allowed",
                     "POST / 400: event: not JSON",
                     "POST / 200: 1 objects: 0 done, 0 skipped, 1 failed (1 recorded FAILED)",
                     "POST /big 413: body over the limit of 6291456 bytes",
                     "Terminated: stopping after the request in progress"):
            self.assertIn(line, log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
