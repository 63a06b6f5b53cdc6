#!/usr/bin/python3
"""s3torrent-lambda's fan-out (docs/DESIGN.md §10): a 1 GiB object whose hashing does not fit one
invocation (a 30 s deadline at a planned 8 MB/s fits less than a quarter of it) is handed out as
runs through the function's own SQS queue (fake_sqs.py: the queue and Lambda's event source
mapping) to 4 runtime processes polling one local Runtime API (fake_lambda_api.py). The torrent
is byte-identical to `s3torrent create` of the object, READY is written once, and the status item
records the runs; a runtime killed (SIGKILL) in the middle of a run leaves that run to come back
after its visibility timeout, with the same result; a run S3 denies records the object FAILED
and is not retried. S3TORRENT_LAMBDA and S3TORRENT name the
binaries under test; FANOUT_MIB overrides the object's size (default 1024)."""
import json
import os
import re
import signal
import subprocess
import threading
import unittest

from fake_lambda_api import FakeLambdaApi
from fake_sqs import EventSourceMapping, FakeSqs
from faultproxy import FaultProxy
from services import SECRET, wait_for
from test_lambda import BUCKET, LAMBDA, S3T, SESSION_TOKEN, LambdaBase, content, s3_record

MIB = max(64, int(os.environ.get("FANOUT_MIB", "1024")))
DEADLINE_MS = 30000
RATE = "8M"  # planned: 30 s at 8 MiB/s is 240 MiB per invocation, under a quarter of 1 GiB


class FanOut(LambdaBase):
    meta = "v1"  # the recipe of the runtimes started last, which create() follows
    nlogs = 0

    def create(self, key, bucket=BUCKET):
        p = subprocess.run([S3T, "create", "--endpoint-url", self.s3.url, "-o", "-",
                            "--meta-version", self.meta, f"s3://{bucket}/{key}"], env=self.env(),
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout

    def big(self, key, seed):
        path = os.path.join(self.dir, "big.bin")
        block = content(1 << 20, seed)
        with open(path, "wb") as f:
            for i in range(MIB):
                f.write(block[:-8] + i.to_bytes(8, "big"))
        self.s3.put(BUCKET, key, path)
        os.unlink(path)

    def start(self, api, sqs, n, meta, extra=None):
        self.meta = meta
        procs, logs = [], []
        for _ in range(n):
            FanOut.nlogs += 1
            logs.append(open(os.path.join(self.dir, f"fan-{FanOut.nlogs}.log"), "w+"))
            env = self.env({"AWS_LAMBDA_RUNTIME_API": api.api, "FANOUT_QUEUE_URL": sqs.queue_url,
                            "AWS_ENDPOINT_URL_SQS": sqs.url, "HASH_RATE": RATE,
                            "META_VERSION": meta, **(extra or {})})
            procs.append(subprocess.Popen([LAMBDA], env=env, stdout=logs[-1],
                                          stderr=subprocess.STDOUT))
        return procs, logs

    def check(self, key, logs, esm, sqs):
        """The torrent, the status item and the logs after the fan-out of key."""
        item = wait_for("READY", lambda: (lambda i: i if i and i["status"]["S"] == "READY"
                                          else None)(self.item(key)), timeout=900, every=1)
        self.assert_synced(key)
        runs = int(item["runs"]["N"])
        self.assertGreaterEqual(runs, 4, "fewer runs than the deadline allows")
        self.assertEqual(sqs.sent, runs)
        for gone in ("runs_done", "assemble_until", "lease_until"):
            self.assertNotIn(gone, item)
        text = self.text(logs)
        if os.environ.get("LAMBDA_LOG"):
            print(text)
        made = re.findall(r"created s3://%s/%s \S+ \(from (\d+) runs\)" % (BUCKET, re.escape(key)),
                          text)
        self.assertEqual(made, [str(runs)], "the torrent was not made exactly once")
        hashed = set(re.findall(r"s3://%s/%s: run (\d+) of %d hashed" % (BUCKET, re.escape(key),
                                                                          runs), text))
        self.assertEqual(hashed, {str(i) for i in range(1, runs + 1)})
        for secret in (SECRET, SESSION_TOKEN, "Signature="):
            self.assertNotIn(secret, text)
        # the metrics lines (Embedded Metric Format) count the plan, the runs and the torrent
        docs = [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]
        self.assertEqual(sum(d["ObjectsFannedOut"] for d in docs), 1)
        self.assertEqual(sum(d["ObjectsCreated"] for d in docs), 1)
        self.assertGreaterEqual(sum(d["FanOutRunsDone"] for d in docs), runs)
        self.assertGreaterEqual(sum(d["BytesHashed"] for d in docs), MIB << 20)
        print(f"\n[fanout] {MIB} MiB in {runs} runs, {len(esm.invocations)} run invocations",
              flush=True)
        return runs

    def test_1_four_runtimes_v1(self):
        key = "fan/v1.bin"
        self.big(key, 7)
        api, sqs = FakeLambdaApi(deadline_ms=DEADLINE_MS), FakeSqs()
        esm = EventSourceMapping(sqs, api, concurrency=4)
        procs, logs = self.start(api, sqs, 4, "v1")
        try:
            kind, resp, _ = self.api_call(api, {"Records": [s3_record(key)]})
            self.assertEqual(kind, "response", resp)
            self.assertEqual(resp["results"][0]["action"], "fanned-out", resp)
            self.check(key, logs, esm, sqs)
            self.assertEqual(esm.max_receives(), 1)  # nothing failed: no run came back
        finally:
            esm.stop()
            self.end(procs, logs, api, sqs)

    def test_2_killed_runtime_hybrid(self):
        """The first runtime reads the object through a proxy that holds its GETs: it is killed
        in the middle of its run for sure; that run comes back to the others."""
        key = "fan/hybrid.bin"
        self.big(key, 8)
        reading, gone = threading.Event(), threading.Event()

        def hook(method, path, headers):
            if method == "GET" and path.split("?")[0].endswith("/" + key) and \
                    "Range" in headers:
                reading.set()
                gone.wait(600)  # until the runtime is gone
        proxy = FaultProxy(self.s3.port, hook=hook)
        api, sqs = FakeLambdaApi(deadline_ms=DEADLINE_MS), FakeSqs()
        esm = EventSourceMapping(sqs, api, concurrency=4)
        victim, vlogs = self.start(api, sqs, 1, "hybrid", {"AWS_ENDPOINT_URL_S3": proxy.url})
        procs, logs = [], []
        try:
            kind, resp, _ = self.api_call(api, {"Records": [s3_record(key)]})
            self.assertEqual(resp["results"][0]["action"], "fanned-out", resp)
            wait_for("the first runtime reading its run", reading.is_set, timeout=120)
            victim[0].send_signal(signal.SIGKILL)
            victim[0].wait()
            gone.set()
            procs, logs = self.start(api, sqs, 3, "hybrid")
            runs = self.check(key, vlogs + logs, esm, sqs)
            self.assertGreaterEqual(esm.max_receives(), 2, "the killed run did not come back")
            self.assertIn("timeout", [k for _, _, k in esm.invocations])
            self.assertGreaterEqual(runs, 4)
        finally:
            gone.set()
            esm.stop()
            self.end(victim + procs, vlogs + logs, api, sqs, proxy)

    def test_3_run_denied_is_recorded_failed(self):
        """A run that fails for good (here S3 denies its ranged GETs: AccessDenied) records the
        object FAILED with the reason, once, and no run comes back: another delivery would get
        the same answer. Before, every run went back to the queue until SQS gave up, and the
        object stayed HASHING until its lease ran out."""
        key = "fan/denied.bin"
        path = os.path.join(self.dir, "denied.bin")
        with open(path, "wb") as f:
            f.write(content(64 << 20, 9))
        self.s3.put(BUCKET, key, path)
        os.unlink(path)
        denied = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                  b'<Message>Access Denied</Message><RequestId>fanout-test</RequestId></Error>')
        proxy = FaultProxy(self.s3.port, override=lambda method, path: (403, denied)
                           if method == "GET" and path.split("?")[0].endswith("/" + key) else None)
        api, sqs = FakeLambdaApi(deadline_ms=DEADLINE_MS), FakeSqs()
        esm = EventSourceMapping(sqs, api, concurrency=2)
        # 1 MiB/s planned: 20 s of each 30 s invocation hash 20 MiB, so 64 MiB is 4 runs
        procs, logs = self.start(api, sqs, 2, "v1",
                                 {"AWS_ENDPOINT_URL_S3": proxy.url, "HASH_RATE": "1M"})
        try:
            kind, resp, _ = self.api_call(api, {"Records": [s3_record(key)]})
            self.assertEqual(resp["results"][0]["action"], "fanned-out", resp)
            item = wait_for("the object recorded FAILED and every run answered",
                            lambda: (lambda i: i if i and i["status"]["S"] == "FAILED"
                                     and not sqs.messages else None)(self.item(key)),
                            timeout=120, every=0.5)
            self.assertGreaterEqual(sqs.sent, 2)
            self.assertRegex(item["error"]["S"], r"^run \d+ of %d: .*AccessDenied" % sqs.sent)
            self.assertNotIn("lease_until", item)
            self.assertEqual(esm.max_receives(), 1, "a run that failed for good came back")
            self.assertIsNone(self.get(key + ".torrent"))
            text = self.text(logs)
            self.assertEqual(len(re.findall(r"recorded FAILED, not retried", text)), 1, text)
            docs = [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]
            self.assertEqual(sum(d.get("ObjectsFailedPermanent", 0) for d in docs), 1)
        finally:
            esm.stop()
            self.end(procs, logs, api, sqs, proxy)

    @staticmethod
    def api_call(api, event, **kw):
        kind, body, headers = api.wait(api.invoke(event, **kw))
        return kind, json.loads(body), headers


if __name__ == "__main__":
    unittest.main()
