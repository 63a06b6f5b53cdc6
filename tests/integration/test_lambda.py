#!/usr/bin/python3
"""s3torrent-lambda, the real binary, through a local Runtime API (fake_lambda_api.py) against
real s3rver and dynalite: S3 events (skipped .torrent keys, form-encoded odd keys), SQS batches
with a poisoned message, Batch Operations 1.0 and 2.0, a malformed event followed by a good one,
a deadline too short to start anything, init errors, one-shot --event, and the peak RSS of one
large object. Torrents are compared with `s3torrent create` of the same object (what `sync`
writes). S3TORRENT_LAMBDA and S3TORRENT name the binaries under test."""
import datetime
import json
import os
import random
import re
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

from fake_lambda_api import FakeLambdaApi
from faultproxy import FaultProxy
from services import AWS, SECRET, Dynalite, S3, aws_env, outer_digest, wait_for

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))
LAMBDA = os.path.abspath(os.environ.get("S3TORRENT_LAMBDA",
                                        "build/lambda-sync/s3torrent-lambda"))
BUCKET = "lambdabucket"
TABLE = "torrent-status"
# size of the one large object (the figure is 2048; CI uses 256 to save time)
RSS_MIB = max(1, int(os.environ.get("LAMBDA_RSS_MIB", "256")))


def content(size, seed):
    rnd = random.Random(seed)
    block = bytes(rnd.getrandbits(8) for _ in range(4096))
    return (block * (size // 4096 + 1))[:size]


def s3_record(key, bucket=BUCKET, size=None, name="ObjectCreated:Put"):
    obj = {"key": urllib.parse.quote_plus(key, safe="/"), "sequencer": "00"}
    if size is not None:
        obj["size"] = size
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventName": name, "s3": {"s3SchemaVersion": "1.0", "configurationId": "t",
                                      "bucket": {"name": bucket,
                                                 "arn": f"arn:aws:s3:::{bucket}"},
                                      "object": obj}}


def sqs_record(mid, body):
    return {"messageId": mid, "receiptHandle": "rh-" + mid, "body": body,
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
            "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}


SESSION_TOKEN = "IQoJb3JpZ2luX2VjELambdaSessionToken0123456789"


class LambdaBase(unittest.TestCase):
    RUNTIME_ENV = {}  # what a class's runtime process gets besides env()

    @classmethod
    def setUpClass(cls):
        cls.s3 = S3(buckets=(BUCKET, "otherbucket"))
        cls.ddb = Dynalite()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        subprocess.run([AWS, "--endpoint-url", cls.ddb.url, "dynamodb", "create-table",
                        "--table-name", TABLE, "--billing-mode", "PAY_PER_REQUEST",
                        "--attribute-definitions", "AttributeName=s3_uri,AttributeType=S",
                        "--key-schema", "AttributeName=s3_uri,KeyType=HASH"],
                       env=aws_env(), capture_output=True, check=True)
        for _ in range(100):
            p = subprocess.run([AWS, "--endpoint-url", cls.ddb.url, "dynamodb",
                                "describe-table", "--table-name", TABLE], env=aws_env(),
                               capture_output=True, check=True)
            if json.loads(p.stdout)["Table"]["TableStatus"] == "ACTIVE":
                break
            time.sleep(0.1)
        cls.api = FakeLambdaApi()
        cls.log = open(os.path.join(cls.dir, "lambda.log"), "w+")
        cls.proc = subprocess.Popen([LAMBDA], env=cls.env({"AWS_LAMBDA_RUNTIME_API": cls.api.api,
                                                           **cls.RUNTIME_ENV}),
                                    stdout=cls.log, stderr=subprocess.STDOUT)

    @classmethod
    def env(cls, extra=None):
        e = aws_env({"AWS_ENDPOINT_URL_S3": cls.s3.url, "AWS_ENDPOINT_URL_DYNAMODB": cls.ddb.url,
                     "DDB_TABLE": TABLE, "S3_BUCKET": f"{BUCKET}, otherbucket",
                     "EXCLUDE_PREFIXES": "private/",
                     # Lambda always runs with a session token: it must never be logged
                     "AWS_SESSION_TOKEN": SESSION_TOKEN})
        for k in ("TRACKERS", "WEBSEED_BASE", "META_VERSION", "PIECE_LENGTH", "PRIVATE", "SOURCE",
                  "COMMENT", "NO_DATE"):
            e.pop(k, None)
        e.update(extra or {})
        return e

    @classmethod
    def tearDownClass(cls):
        cls.proc.kill()
        cls.proc.wait()
        cls.api.stop()
        cls.log.seek(0)
        log = cls.log.read()
        cls.log.close()
        if os.environ.get("LAMBDA_LOG"):
            print(log)
        for secret in (SECRET, SESSION_TOKEN, "Signature=", "Authorization", "AWS4-HMAC-SHA256"):
            if secret in log:
                raise AssertionError(f"the runtime logged {secret!r}")
        cls.s3.stop()
        cls.ddb.stop()
        cls.tmp.cleanup()

    def put(self, key, data, bucket=BUCKET):
        path = os.path.join(self.dir, "up.bin")
        with open(path, "wb") as f:
            f.write(data)
        self.s3.put(bucket, key, path)

    def get(self, key, bucket=BUCKET):
        out = os.path.join(self.dir, "got.bin")
        p = self.s3.aws("s3api", "get-object", "--bucket", bucket, "--key", key, out,
                        check=False)
        if p.returncode != 0:
            return None
        with open(out, "rb") as f:
            return f.read()

    def create(self, key, bucket=BUCKET):
        """What `s3torrent sync` writes for the object, by the same recipe (docs/DESIGN.md §3)."""
        p = subprocess.run([S3T, "create", "--endpoint-url", self.s3.url, "-o", "-",
                            f"s3://{bucket}/{key}"], env=self.env(), capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout

    @staticmethod
    def text(logs):
        """What the runtimes wrote to their log files so far."""
        out = ""
        for f in logs:
            f.flush()
            f.seek(0)
            out += f.read()
        return out

    @staticmethod
    def end(procs, logs, *servers):
        """Kills the runtime processes, closes their logs and stops the fakes and proxies."""
        for p in procs:
            p.kill()
            p.wait()
        for f in logs:
            f.close()
        for s in servers:
            s.stop()

    def item(self, key, bucket=BUCKET):
        p = subprocess.run([AWS, "--endpoint-url", self.ddb.url, "dynamodb", "get-item",
                            "--table-name", TABLE, "--consistent-read", "--key",
                            json.dumps({"s3_uri": {"S": f"s3://{bucket}/{key}"}})],
                           env=aws_env(), capture_output=True, check=True)
        return json.loads(p.stdout).get("Item") if p.stdout.strip() else None

    def call(self, event, **kw):
        rid = self.api.invoke(event, **kw)
        kind, body, headers = self.api.wait(rid)
        return kind, json.loads(body), headers

    def assert_synced(self, key, bucket=BUCKET):
        t = self.get(key + ".torrent", bucket)
        self.assertIsNotNone(t, key)
        self.assertEqual(t, self.create(key, bucket), key)
        it = self.item(key, bucket)
        self.assertEqual(it["status"]["S"], "READY")
        self.assertEqual(it["source"]["S"], "lambda")
        meta = json.loads(self.s3.aws("s3api", "head-object", "--bucket", bucket, "--key",
                                      key + ".torrent").stdout)
        self.assertEqual(meta["Metadata"]["s3torrent-infohash"], it["info_hash"]["S"])
        self.assertEqual(meta["Metadata"]["s3torrent-outer"], outer_digest(t))


class Runtime(LambdaBase):
    def test_1_s3_event_three_records(self):
        odd = "rec/odd key+plus é 录音 %41.bin"
        self.put("rec/normal.bin", content(300000, 1))
        self.put(odd, content(70000, 2))
        self.put("rec/old.torrent", b"d4:infod4:name1:xee")
        ev = {"Records": [s3_record("rec/old.torrent", size=19), s3_record(odd, size=70000),
                          s3_record("rec/normal.bin", size=300000),
                          s3_record("rec/normal.bin", name="ObjectRemoved:Delete")]}
        kind, resp, _ = self.call(ev)
        self.assertEqual(kind, "response", resp)
        by_key = {r["key"]: r for r in resp["results"]}
        self.assertEqual(resp["not_done"], [])
        self.assertEqual(by_key["rec/old.torrent"]["action"], "skipped")
        self.assertEqual(by_key[odd]["action"], "created")
        self.assertEqual(by_key["rec/normal.bin"]["action"], "created")
        self.assert_synced(odd)
        self.assert_synced("rec/normal.bin")
        self.assertIsNone(self.get("rec/old.torrent.torrent"))
        self.assertIsNone(self.item("rec/old.torrent"))
        # at-least-once delivery: the same event again changes nothing
        kind, resp, _ = self.call(ev)
        self.assertEqual({r["key"]: r["action"] for r in resp["results"]},
                         {"rec/old.torrent": "skipped", odd: "up-to-date",
                          "rec/normal.bin": "up-to-date"})

    def test_2_sqs_batch_with_poisoned_message(self):
        self.put("sqs/a.bin", content(5000, 3))
        self.put("sqs/b c.bin", content(6000, 4))
        good = json.dumps({"Records": [s3_record("sqs/a.bin"), s3_record("sqs/b c.bin")]})
        test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent",
                                 "Bucket": BUCKET})
        guard = json.dumps({"Records": [s3_record("sqs/a.bin.torrent"),
                                        s3_record("private/x.bin"),
                                        s3_record("x.bin", bucket="notallowed")]})
        ev = {"Records": [sqs_record("m-good", good), sqs_record("m-poison", "{\"Records\": [tr"),
                          sqs_record("m-test", test_event), sqs_record("m-guard", guard)]}
        kind, resp, _ = self.call(ev)
        self.assertEqual(kind, "response", resp)
        self.assertEqual(resp, {"batchItemFailures": [{"itemIdentifier": "m-poison"}]})
        self.assert_synced("sqs/a.bin")
        self.assert_synced("sqs/b c.bin")
        self.assertIsNone(self.get("sqs/a.bin.torrent.torrent"))
        self.assertIsNone(self.item("private/x.bin"))

    def batch(self, schema, tasks):
        ev = {"invocationSchemaVersion": schema, "invocationId": "inv-" + schema,
              "job": {"id": "job-1"}, "tasks": tasks}
        if schema == "2.0":
            ev["job"]["userArguments"] = {}
        kind, resp, _ = self.call(ev)
        self.assertEqual(kind, "response", resp)
        self.assertEqual(resp["invocationSchemaVersion"], schema)
        self.assertEqual(resp["invocationId"], "inv-" + schema)
        self.assertEqual(resp["treatMissingKeysAs"], "PermanentFailure")
        return {r["taskId"]: r for r in resp["results"]}

    def test_3_batch_operations_1_0(self):
        key = "batch1/a b+c.bin"
        self.put(key, content(40000, 5))
        arn = f"arn:aws:s3:::{BUCKET}"
        res = self.batch("1.0", [
            {"taskId": "t1", "s3Key": urllib.parse.quote_plus(key, safe="/"),
             "s3VersionId": None, "s3BucketArn": arn},
            {"taskId": "t2", "s3Key": "batch1/missing.bin", "s3VersionId": None,
             "s3BucketArn": arn},
            {"taskId": "t3", "s3Key": "batch1/x.torrent", "s3BucketArn": arn},
            {"taskId": "t4", "s3Key": "x.bin"}])
        self.assertEqual(res["t1"]["resultCode"], "Succeeded", res)
        self.assertEqual(res["t2"]["resultCode"], "PermanentFailure", res)
        self.assertEqual(res["t3"]["resultCode"], "Succeeded", res)
        self.assertIn("skipped", res["t3"]["resultString"])
        self.assertEqual(res["t4"]["resultCode"], "PermanentFailure", res)
        self.assert_synced(key)

    def test_4_batch_operations_2_0(self):
        key = "batch2/a b+c.bin"
        self.put(key, content(50000, 6))
        res = self.batch("2.0", [
            {"taskId": "u1", "s3Bucket": BUCKET, "s3Key": key, "s3VersionId": None},
            {"taskId": "u2", "s3Bucket": BUCKET, "s3Key": "batch2/missing.bin"}])
        self.assertEqual(res["u1"]["resultCode"], "Succeeded", res)
        self.assertEqual(res["u2"]["resultCode"], "PermanentFailure", res)
        self.assert_synced(key)

    def test_5_malformed_event_then_next(self):
        kind, resp, headers = self.call(b"{\"Records\": [")
        self.assertEqual(kind, "error")
        self.assertEqual(resp["errorType"], "S3Torrent.InvalidEvent")
        self.assertEqual(headers["lambda-runtime-function-error-type"], "S3Torrent.InvalidEvent")
        self.assertIn("not JSON", resp["errorMessage"])
        kind, resp, _ = self.call({"hello": "world"})
        self.assertEqual(kind, "error")
        # the runtime carries on
        self.put("after/ok.bin", content(1000, 7))
        kind, resp, _ = self.call({"version": "0", "detail-type": "Object Created",
                                   "source": "aws.s3", "detail": {
                                       "bucket": {"name": BUCKET},
                                       "object": {"key": "after/ok.bin", "size": 1000}}})
        self.assertEqual(kind, "response", resp)
        self.assertEqual(resp["results"][0]["action"], "created")
        self.assert_synced("after/ok.bin")

    def test_6_short_deadline(self):
        keys = ["late/a.bin", "late/b.bin"]
        for i, k in enumerate(keys):
            self.put(k, content(20000, 10 + i))
        ev = {"Records": [s3_record(k, size=20000) for k in keys]}
        kind, resp, _ = self.call(ev, deadline_ms=3000)
        self.assertEqual(kind, "error", resp)  # Lambda retries the event
        self.assertEqual(resp["errorType"], "S3Torrent.ObjectsFailed")
        for k in keys:
            self.assertIn(f"s3://{BUCKET}/{k} (not done)", resp["errorMessage"])
            self.assertIsNone(self.get(k + ".torrent"))  # nothing started
            self.assertIsNone(self.item(k))
        # through SQS, the unfinished messages are named for redelivery
        ev = {"Records": [sqs_record("late-1", json.dumps({"Records": [s3_record(keys[0])]}))]}
        kind, resp, _ = self.call(ev, deadline_ms=3000)
        self.assertEqual(resp, {"batchItemFailures": [{"itemIdentifier": "late-1"}]})
        self.assertIsNone(self.item(keys[0]))
        # with time enough, it is done
        kind, resp, _ = self.call({"Records": [s3_record(k) for k in keys]})
        self.assertEqual(kind, "response", resp)
        for k in keys:
            self.assert_synced(k)

    def test_7_one_shot(self):
        self.put("oneshot/x.bin", content(3000, 20))
        ev = json.dumps({"Records": [s3_record("oneshot/x.bin")]})
        p = subprocess.run([LAMBDA, "--event", "-"], input=ev.encode(), env=self.env(),
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        resp = json.loads(p.stdout)
        self.assertEqual(resp["results"][0]["action"], "created")
        self.assert_synced("oneshot/x.bin")
        p = subprocess.run([LAMBDA, "--event", "-"], input=b"[]", env=self.env(),
                           capture_output=True)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(json.loads(p.stdout)["errorType"], "S3Torrent.InvalidEvent")
        self.assertEqual(len(p.stderr.decode().strip().splitlines()[-1:]), 1)

    def test_8_init_error(self):
        api = FakeLambdaApi()
        try:
            p = subprocess.run([LAMBDA], env=self.env({"AWS_LAMBDA_RUNTIME_API": api.api,
                                                       "META_VERSION": "v3"}),
                               capture_output=True, timeout=60)
            self.assertNotEqual(p.returncode, 0)
            body, headers = api.wait_init_error()
            doc = json.loads(body)
            self.assertEqual(doc["errorType"], "S3Torrent.InitError")
            self.assertIn("META_VERSION", doc["errorMessage"])
            self.assertEqual(headers["lambda-runtime-function-error-type"], "S3Torrent.InitError")
            self.assertEqual(api.nexts, 0)
        finally:
            api.stop()

    def test_8b_trace_id_per_invocation(self):
        """Lambda-Runtime-Trace-Id goes on as X-Amzn-Trace-Id, on S3 and DynamoDB calls alike,
        and each warm invocation sends its own."""
        seen = []
        hook = lambda method, path, headers: seen.append(headers.get("X-Amzn-Trace-Id"))
        s3p, ddbp, api = FaultProxy(self.s3.port, hook=hook), FaultProxy(self.ddb.port, hook=hook), \
            FakeLambdaApi()
        proc = subprocess.Popen([LAMBDA], env=self.env({
            "AWS_LAMBDA_RUNTIME_API": api.api, "AWS_ENDPOINT_URL_S3": s3p.url,
            "AWS_ENDPOINT_URL_DYNAMODB": ddbp.url}), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            for i, tid in enumerate(["Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
                                     "Root=1-5759e989-00000000000000000000abcd;Sampled=0"]):
                self.put(f"trace/{i}.bin", content(2000, 30 + i))
                del seen[:]
                kind, body, _ = self.api_call(api, {"Records": [s3_record(f"trace/{i}.bin")]},
                                              trace_id=tid)
                self.assertEqual(kind, "response", body)
                self.assertGreaterEqual(len(seen), 4)  # HEADs, GET, PUT, UpdateItems
                self.assertEqual(set(seen), {tid})
        finally:
            proc.kill()
            proc.wait()
            api.stop()
            s3p.stop()
            ddbp.stop()

    @staticmethod
    def api_call(api, event, **kw):
        kind, body, headers = api.wait(api.invoke(event, **kw))
        return kind, json.loads(body), headers

    def test_9_peak_rss_of_one_large_object(self):
        key = f"big/{RSS_MIB}mib.bin"
        path = os.path.join(self.dir, "big.bin")
        block = content(1 << 20, 99)
        with open(path, "wb") as f:
            for i in range(RSS_MIB):
                f.write(block[:-8] + i.to_bytes(8, "big"))
        self.s3.put(BUCKET, key, path)
        os.unlink(path)
        ev = os.path.join(self.dir, "big.json")
        with open(ev, "w") as f:
            json.dump({"Records": [s3_record(key, size=RSS_MIB << 20)]}, f)
        t0 = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", LAMBDA, "--event", ev], env=self.env(),
                           capture_output=True)
        secs = time.monotonic() - t0
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
        self.assertEqual(json.loads(p.stdout)["results"][0]["action"], "created")
        rss_kib = int(p.stderr.decode().strip().splitlines()[-1])
        print(f"\n[lambda] one {RSS_MIB} MiB object: peak RSS {rss_kib / 1024:.1f} MiB, "
              f"{secs:.1f} s", flush=True)
        self.assertEqual(self.item(key)["status"]["S"], "READY")
        # it must fit a 256 MB function whatever the object's size (a bound, not a timing)
        self.assertLess(rss_kib, 128 * 1024)


class PrefixRule(LambdaBase):
    """PREFIX_TORRENTS=1: an event for a key below a prefix makes its object torrent, then the
    prefix's PREFIX.torrent (equal to `create --exclude '*.torrent' s3://BUCKET/PREFIX/`), under
    the prefix's lease, with a READY item that names a new key; the same event again writes
    nothing; a key at the top is in no prefix."""
    RUNTIME_ENV = {"PREFIX_TORRENTS": "1"}

    def create_prefix(self, prefix):
        p = subprocess.run([S3T, "create", "--endpoint-url", self.s3.url, "-o", "-",
                            "--exclude", "*.torrent", f"s3://{BUCKET}/{prefix}"],
                           env=self.env(), capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout

    def head(self, key):
        return json.loads(self.s3.aws("s3api", "head-object", "--bucket", BUCKET, "--key",
                                      key).stdout)

    def test_event_makes_the_prefix_torrent_again(self):
        self.put("sess/a.wav", content(300000, "a"))
        self.put("sess/b.wav", content(200000, "b"))
        self.put("top.bin", content(1000, "top"))
        kind, resp, _ = self.call({"Records": [s3_record("sess/a.wav"), s3_record("top.bin")]})
        self.assertEqual(kind, "response", resp)
        self.assertEqual({r["key"]: r["action"] for r in resp["results"]},
                         {"sess/a.wav": "created", "top.bin": "created"})
        self.assert_synced("sess/a.wav")
        self.assertEqual(self.get("sess.torrent"), self.create_prefix("sess/"))
        it = self.item("sess/")
        self.assertEqual((it["status"]["S"], it["source"]["S"], it["file_count"]["N"]),
                         ("READY", "lambda", "2"))
        self.assertEqual(it["etag"]["S"], self.head("sess.torrent")["Metadata"]
                         ["s3torrent-source-set"])
        self.assertNotIn("lease_until", it)
        self.assertIsNone(self.get("top.torrent"))

        self.put("sess/c.wav", content(100000, "c"))
        kind, resp, _ = self.call({"Records": [s3_record("sess/c.wav")]})
        self.assertEqual((kind, resp["results"][0]["action"]), ("response", "created"), resp)
        self.assertEqual(self.get("sess.torrent"), self.create_prefix("sess/"))
        it = self.item("sess/")
        self.assertEqual((it["status"]["S"], it["file_count"]["N"]), ("READY", "3"))
        self.assertEqual(it["stale_new"], {"L": [{"S": "sess/c.wav"}]})
        after = self.head("sess.torrent")["LastModified"]

        # delivered again, a second later (Last-Modified and updated_at are in seconds): both
        # torrents are up to date, and nothing is written to S3 or the item
        made = datetime.datetime.fromisoformat(after).timestamp()
        while time.time() < made + 1.1:
            time.sleep(0.05)
        kind, resp, _ = self.call({"Records": [s3_record("sess/c.wav")]})
        self.assertEqual((kind, resp["results"][0]["action"]), ("response", "up-to-date"), resp)
        self.assertEqual(self.head("sess.torrent")["LastModified"], after)
        self.assertEqual(self.item("sess/")["updated_at"], it["updated_at"])

    def put_item(self, item):
        subprocess.run([AWS, "--endpoint-url", self.ddb.url, "dynamodb", "put-item",
                        "--table-name", TABLE, "--item", json.dumps(item)],
                       env=aws_env(), capture_output=True, check=True)

    def test_a_running_lease_is_left_alone(self):
        """Another worker's HASHING lease on the prefix (for another set): the object's torrent
        is made, the prefix's is left to it, and the SQS message comes back; once the lease has
        run out, the redelivery makes it."""
        self.put("lease/a.bin", content(5000, "lease"))
        held = {"s3_uri": {"S": f"s3://{BUCKET}/lease/"}, "status": {"S": "HASHING"},
                "bucket": {"S": BUCKET}, "object_key": {"S": "lease/"},
                "etag": {"S": "0" * 64}, "size": {"N": "1"}, "object_mtime": {"N": "1"},
                "attempts": {"N": "1"}, "lease_until": {"N": str(int(time.time()) + 3600)}}
        self.put_item(held)
        body = json.dumps({"Records": [s3_record("lease/a.bin")]})
        kind, resp, _ = self.call({"Records": [sqs_record("m-lease", body)]})
        self.assertEqual((kind, resp), ("response",
                                        {"batchItemFailures": [{"itemIdentifier": "m-lease"}]}))
        self.assert_synced("lease/a.bin")
        self.assertIsNone(self.get("lease.torrent"))
        self.assertEqual(self.item("lease/")["etag"]["S"], "0" * 64)
        held["lease_until"] = {"N": str(int(time.time()) - 1)}
        self.put_item(held)
        kind, resp, _ = self.call({"Records": [sqs_record("m-lease", body)]})
        self.assertEqual((kind, resp), ("response", {"batchItemFailures": []}))
        self.assertEqual(self.get("lease.torrent"), self.create_prefix("lease/"))
        it = self.item("lease/")
        self.assertEqual((it["status"]["S"], it["attempts"]["N"]), ("READY", "1"))


class Concurrency(LambdaBase):
    """A batch of 10 objects is worked on by several threads (OBJECT_CONCURRENCY, default 4):
    every torrent is right, each line and status item as for one object; the time against 10
    single invocations in sequence is printed (a report, not an assertion)."""

    def test_batch_of_ten(self):
        size = 2 * 1048576 + 3
        for i in range(20):
            self.put(f"conc/{i}.bin", content(size, 100 + i))
        t0 = time.monotonic()
        for i in range(10):
            kind, resp, _ = self.call({"Records": [s3_record(f"conc/{i}.bin")]})
            self.assertEqual((kind, resp["results"][0]["action"]), ("response", "created"))
        single = time.monotonic() - t0
        t0 = time.monotonic()
        kind, resp, _ = self.call({"Records": [s3_record(f"conc/{i}.bin") for i in range(10, 20)]})
        batch = time.monotonic() - t0
        self.assertEqual(kind, "response", resp)
        self.assertEqual(sorted((r["key"], r["action"]) for r in resp["results"]),
                         sorted((f"conc/{i}.bin", "created") for i in range(10, 20)))
        for i in range(20):
            self.assert_synced(f"conc/{i}.bin")
        print(f"  10 objects of {size} bytes: 10 invocations in sequence {single:.2f} s, one "
              f"batch {batch:.2f} s: {single / batch:.2f}x")


class DuplicateDelivery(LambdaBase):
    """S3 and SQS deliver at least once: the same SQS message given to two runtimes at once is
    hashed once. The first invocation's HASHING status is a lease until its deadline; the second
    backs off (its message is a batch item failure, so SQS brings it back), and the redelivery
    finds the torrent up to date. Object GETs pass through a counting proxy that holds them
    until the second invocation has answered, so the two overlap for sure."""

    def test_two_runtimes_one_hashing(self):
        key, size = "dup/big.bin", 3 * 1048576 + 5
        data = content(size, 41)
        self.put(key, data)
        release = threading.Event()
        ranges, lock = [], threading.Lock()

        def hook(method, path, headers):
            if method == "GET" and "?" not in path and path.endswith("/dup/big.bin"):
                a, b = headers.get("Range", "").removeprefix("bytes=").split("-")
                with lock:
                    ranges.append(int(b) - int(a) + 1)
                release.wait(120)
        proxy = FaultProxy(self.s3.port, hook=hook)
        api = FakeLambdaApi()
        logs, procs = [], []
        try:
            for i in range(2):
                logs.append(open(os.path.join(self.dir, f"dup{i}.log"), "w+"))
                procs.append(subprocess.Popen(
                    [LAMBDA], env=self.env({"AWS_LAMBDA_RUNTIME_API": api.api,
                                            "AWS_ENDPOINT_URL_S3": proxy.url}),
                    stdout=logs[-1], stderr=subprocess.STDOUT))
            ev = {"Records": [sqs_record("m-dup", json.dumps({"Records": [s3_record(key)]}))]}
            rid1 = api.invoke(ev)
            wait_for("the first invocation's HASHING status",
                     lambda: (self.item(key) or {}).get("status", {}).get("S") == "HASHING",
                     timeout=60)
            rid2 = api.invoke(ev)
            kind2, body2, _ = api.wait(rid2)
            release.set()
            kind1, body1, _ = api.wait(rid1)
            self.assertEqual((kind1, json.loads(body1)), ("response", {"batchItemFailures": []}))
            self.assertEqual((kind2, json.loads(body2)),
                             ("response", {"batchItemFailures": [{"itemIdentifier": "m-dup"}]}))
            self.assert_synced(key)
            item = self.item(key)
            self.assertEqual(item["attempts"]["N"], "1")
            self.assertNotIn("lease_until", item)
            with lock:
                self.assertEqual(sum(ranges), size, "the object was not read exactly once")
            rid3 = api.invoke(ev)  # SQS brings the message back
            kind3, body3, _ = api.wait(rid3)
            self.assertEqual((kind3, json.loads(body3)), ("response", {"batchItemFailures": []}))
            with lock:
                self.assertEqual(sum(ranges), size, "the redelivery read the object again")
            text = self.text(logs)
            self.assertIn("is being hashed by another worker", text)
            for secret in (SECRET, SESSION_TOKEN, "Signature="):
                self.assertNotIn(secret, text)
        finally:
            release.set()
            self.end(procs, logs, api, proxy)


# CloudWatch's units (the Embedded Metric Format takes these and no other)
CW_UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
            "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
            "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
            "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
            "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def check_emf(test, doc, function_name):
    """Holds doc to the Embedded Metric Format's rules; returns {metric: value}."""
    aws = doc["_aws"]
    test.assertIsInstance(aws["Timestamp"], int)
    test.assertLess(abs(aws["Timestamp"] / 1000 - time.time()), 600)
    directives = aws["CloudWatchMetrics"]
    test.assertEqual(len(directives), 1)
    d = directives[0]
    test.assertIsInstance(d["Namespace"], str)
    test.assertTrue(1 <= len(d["Namespace"]) <= 255)
    test.assertEqual(d["Dimensions"], [["FunctionName"]])
    test.assertEqual(doc["FunctionName"], function_name)
    test.assertTrue(0 < len(d["Metrics"]) <= 100)
    out = {}
    for m in d["Metrics"]:
        test.assertEqual(set(m), {"Name", "Unit"})
        test.assertIn(m["Unit"], CW_UNITS, m)
        test.assertTrue(1 <= len(m["Name"]) <= 255)
        test.assertIsInstance(doc[m["Name"]], (int, float), m)
        out[m["Name"]] = doc[m["Name"]]
    return out


class JsonLogs(LambdaBase):
    """AWS_LAMBDA_LOG_FORMAT=JSON: every line the runtime writes is one JSON object with
    timestamp, level and message, requestId within an invocation, the object's URI while it is
    worked on and the outcome on the line that ends it; one EMF document per invocation whose
    counts are what the invocation did. AWS_LAMBDA_LOG_LEVEL=WARN drops the info lines."""
    RUNTIME_ENV = {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_FUNCTION_NAME": "s3t-json"}

    def lines(self):
        self.log.flush()
        with open(self.log.name) as f:
            return [ln for ln in f.read().splitlines() if ln.strip()]

    def test_lines_and_metrics(self):
        data = content(300000, 31)
        self.put("json/a.bin", data)
        ev = {"Records": [s3_record("json/a.bin"), s3_record("json/a.bin.torrent"),
                          s3_record("json/missing.bin")]}
        rid1 = self.api.invoke(ev)
        kind1, body1, _ = self.api.wait(rid1)
        rid2 = self.api.invoke({"Records": [s3_record("json/a.bin")]})
        kind2, _, _ = self.api.wait(rid2)
        self.assertEqual(kind2, "response")
        self.assert_synced("json/a.bin")
        docs = []
        for ln in self.lines():
            try:
                docs.append(json.loads(ln))
            except ValueError:
                self.fail(f"not one JSON object: {ln!r}")
            self.assertIsInstance(docs[-1], dict, ln)
        logs = [d for d in docs if "_aws" not in d]
        emf = {}
        for d in logs:
            self.assertTrue(ISO_MS.match(d["timestamp"]), d)
            self.assertIn(d["level"], {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"})
            self.assertIsInstance(d["message"], str)
            if "object" in d:
                self.assertIn(d["requestId"], (rid1, rid2), d)
        by_outcome = {(d["requestId"], d["object"]): d for d in logs if "outcome" in d}
        self.assertEqual(by_outcome[(rid1, f"s3://{BUCKET}/json/a.bin")]["outcome"], "created")
        self.assertEqual(by_outcome[(rid1, f"s3://{BUCKET}/json/a.bin.torrent")]["outcome"],
                         "skipped")
        missing = by_outcome[(rid1, f"s3://{BUCKET}/json/missing.bin")]
        self.assertEqual((missing["outcome"], missing["level"]), ("failed", "ERROR"))
        self.assertEqual(by_outcome[(rid2, f"s3://{BUCKET}/json/a.bin")]["outcome"],
                         "up-to-date")
        metric_docs = [check_emf(self, d, "s3t-json") for d in docs if "_aws" in d]
        # the two invocations' documents, in order (the runtime handles one at a time)
        first, second = metric_docs[-2:]
        self.assertEqual({k: first[k] for k in ("ObjectsCreated", "ObjectsSkipped",
                                                "ObjectsFailedPermanent", "ObjectsUpToDate",
                                                "HashingRuns", "BytesHashed")},
                         {"ObjectsCreated": 1, "ObjectsSkipped": 1, "ObjectsFailedPermanent": 1,
                          "ObjectsUpToDate": 0, "HashingRuns": 1, "BytesHashed": len(data)})
        self.assertGreater(first["HashingThroughput"], 0)
        self.assertGreater(first["Duration"], 0)
        self.assertEqual((second["ObjectsUpToDate"], second["ObjectsCreated"],
                          second["BytesHashed"]), (1, 0, 0))
        self.assertNotIn("HashingThroughput", second)
        emf = first
        print(f"  EMF of the first invocation: {emf}")

    def test_level_warn_drops_info(self):
        self.put("json/w.bin", content(5000, 32))
        ev = json.dumps({"Records": [s3_record("json/w.bin"), s3_record("json/nothere.bin")]})
        p = subprocess.run([LAMBDA, "--event", "-"], input=ev.encode(),
                           env=self.env({"AWS_LAMBDA_LOG_FORMAT": "JSON",
                                         "AWS_LAMBDA_LOG_LEVEL": "WARN"}),
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        docs = [json.loads(ln) for ln in p.stderr.decode().splitlines() if ln.strip()]
        levels = [d["level"] for d in docs if "_aws" not in d]
        self.assertNotIn("INFO", levels)
        self.assertIn("ERROR", levels)  # the missing object
        self.assertEqual(len([d for d in docs if "_aws" in d]), 1)
        p = subprocess.run([LAMBDA, "--event", "-"], input=ev.encode(),
                           env=self.env({"AWS_LAMBDA_LOG_FORMAT": "XML"}), capture_output=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("AWS_LAMBDA_LOG_FORMAT", p.stderr.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
