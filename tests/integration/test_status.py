#!/usr/bin/python3
"""Status items (docs/DESIGN.md §6) against a real dynalite: tests/tools/status_driver runs one
status_* call per process; the Debian aws CLI reads the items back as an independent reader. Older
versions never overwrite newer ones, READY never goes back, attempts count atomically, and
concurrent writers of two versions settle on the newer. STATUS_DRIVER names the driver."""
import json
import os
import re
import subprocess
import threading
import unittest

from services import AWS, Dynalite, aws_env

DRIVER = os.path.abspath(os.environ.get("STATUS_DRIVER", "build/tests/status_driver"))
TABLE = "s3torrent-status"
BUCKET = "recordings"
NOW = 1714564800  # 2024-05-01T12:00:00Z
HASH1 = "a" * 40
HASH2 = "b" * 64

# every attribute of a READY item, with its DynamoDB type (docs/DESIGN.md §6)
READY_ATTRS = {
    "s3_uri": "S", "status": "S", "bucket": "S", "object_key": "S", "etag": "S", "size": "N",
    "object_mtime": "N", "torrent_key": "S", "info_hash": "S", "info_hash_v2": "S",
    "magnet": "S", "magnet_v1": "S", "piece_length": "N", "piece_count": "N", "meta_version": "S",
    "attempts": "N", "source": "S", "updated_at": "S",
}
EXISTS = 3  # the driver's exit code for EEXIST
BUSY = 5  # and for EBUSY: a running lease
LEASE_DEFAULT = 900  # STATUS_LEASE_DEFAULT


class StatusTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ddb = Dynalite()
        cls.run_driver(None, "create")

    @classmethod
    def tearDownClass(cls):
        cls.ddb.stop()

    @classmethod
    def run_driver(cls, want, cmd, *args, table=TABLE, key_attr=None, now=NOW):
        """Runs the driver; asserts its exit code when want is not None. Returns (code, JSON)."""
        argv = [DRIVER, "--endpoint", cls.ddb.url, "--table", table, "--now", str(now)]
        if key_attr:
            argv += ["--key-attr", key_attr]
        p = subprocess.run(argv + [cmd, *args], env=aws_env(), capture_output=True, text=True,
                           timeout=120)
        if want is not None and p.returncode != want:
            raise AssertionError(f"status_driver {cmd} {args}: exit {p.returncode}, want {want}:"
                                 f" {p.stdout} {p.stderr}")
        if p.returncode not in (0, EXISTS, BUSY) and want is None:
            raise AssertionError(f"status_driver {cmd} {args} failed: {p.stderr}")
        return p.returncode, json.loads(p.stdout) if p.stdout.strip() else None

    def uri(self, key):
        return f"s3://{BUCKET}/{key}"

    def version(self, etag, mtime, size=1000):
        return ["--etag", etag, "--mtime", str(mtime), "--size", str(size)]

    def begin(self, key, etag, mtime, want=0, **kw):
        return self.run_driver(want, "begin", self.uri(key), *self.version(etag, mtime), **kw)

    def ready(self, key, etag, mtime, want=0, v2=True, **kw):
        args = self.version(etag, mtime) + [
            "--torrent-key", key + ".torrent", "--info-hash", HASH1,
            "--magnet", f"magnet:?xt=urn:btih:{HASH1}&dn={key}",
            "--magnet-v1", f"magnet:?xt=urn:btih:{HASH1}&dn={key}", "--piece-length", "262144",
            "--piece-count", "4", "--meta-version", "hybrid" if v2 else "v1"]
        if v2:
            args += ["--info-hash-v2", HASH2]
        return self.run_driver(want, "ready", self.uri(key), *args, **kw)

    def failed(self, key, etag, mtime, error, want=0):
        return self.run_driver(want, "failed", self.uri(key), *self.version(etag, mtime),
                               "--error", error)

    def get(self, key, **kw):
        return self.run_driver(0, "get", self.uri(key), **kw)[1]

    def cli_item(self, key, table=TABLE, key_attr="s3_uri"):
        """The item as the aws CLI sees it: {name: {type: value}}, or None."""
        p = subprocess.run([AWS, "--endpoint-url", self.ddb.url, "dynamodb", "get-item",
                            "--table-name", table, "--consistent-read", "--output", "json",
                            "--key", json.dumps({key_attr: {"S": self.uri(key)}})],
                           env=aws_env(), capture_output=True, text=True, check=True, timeout=60)
        out = json.loads(p.stdout) if p.stdout.strip() else {}
        return out.get("Item")

    def test_create_table_is_idempotent_and_checks_the_key(self):
        self.run_driver(0, "create")
        code, out = self.run_driver(1, "create", key_attr="object_uri")
        self.assertIn(f"table {TABLE} exists with partition key s3_uri, not object_uri",
                      out["message"])
        p = subprocess.run([AWS, "--endpoint-url", self.ddb.url, "dynamodb", "describe-table",
                            "--table-name", TABLE, "--output", "json"], env=aws_env(),
                           capture_output=True, text=True, check=True)
        t = json.loads(p.stdout)["Table"]
        self.assertEqual(t["TableStatus"], "ACTIVE")
        self.assertEqual(t["KeySchema"], [{"AttributeName": "s3_uri", "KeyType": "HASH"}])
        self.assertEqual(t["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST")

    def test_begin_counts_attempts(self):
        self.begin("count.bin", "e1", 100)
        item = self.get("count.bin")
        self.assertEqual((item["status"], item["attempts"]), ("HASHING", 1))
        # the first writer's lease (15 minutes when it names none) still runs: left to it
        _, out = self.begin("count.bin", "e1", 100, want=BUSY, now=NOW + LEASE_DEFAULT - 1)
        self.assertIn("is being hashed by another worker, whose lease runs until "
                      "2024-05-01T12:15:00Z", out["message"])
        self.assertEqual(self.get("count.bin")["attempts"], 1)
        # past it, the version is taken over
        self.begin("count.bin", "e1", 100, now=NOW + LEASE_DEFAULT + 1)
        item = self.get("count.bin")
        self.assertEqual((item["status"], item["attempts"]), ("HASHING", 2))
        self.assertEqual(self.cli_item("count.bin")["attempts"], {"N": "2"})
        self.assertEqual(self.cli_item("count.bin")["lease_until"],
                         {"N": str(NOW + 2 * LEASE_DEFAULT + 1)})

    def test_lease_named_by_the_writer_and_dropped_when_done(self):
        """A writer's own lease (the Lambda's deadline): a duplicate before it backs off, the
        holder's READY ends it, and READY is never taken back by a later HASHING."""
        self.run_driver(0, "begin", self.uri("lease.bin"), *self.version("e1", 100),
                        "--lease-until", str(NOW + 10))
        self.begin("lease.bin", "e1", 100, want=BUSY, now=NOW + 10)
        self.ready("lease.bin", "e1", 100, now=NOW + 5)
        self.assertNotIn("lease_until", self.cli_item("lease.bin"))
        self.begin("lease.bin", "e1", 100, want=EXISTS, now=NOW + 6)
        # a new version is not held back by an old version's lease
        self.run_driver(0, "begin", self.uri("lease2.bin"), *self.version("e1", 100),
                        "--lease-until", str(NOW + 100))
        self.begin("lease2.bin", "e2", 200, now=NOW + 1)
        self.assertEqual(self.get("lease2.bin")["etag"], "e2")

    def test_ready_has_every_attribute(self):
        key = "rec/2024/é t+1.bin"
        self.begin(key, "0123456789abcdef0123456789abcdef-3", 1714560000)
        self.ready(key, "0123456789abcdef0123456789abcdef-3", 1714560000)
        item = self.cli_item(key)
        self.assertEqual({k: next(iter(v)) for k, v in item.items()}, READY_ATTRS)
        value = {k: next(iter(v.values())) for k, v in item.items()}
        self.assertEqual(value, {
            "s3_uri": self.uri(key), "status": "READY", "bucket": BUCKET, "object_key": key,
            "etag": "0123456789abcdef0123456789abcdef-3", "size": "1000",
            "object_mtime": "1714560000", "torrent_key": key + ".torrent",
            "info_hash": HASH1, "info_hash_v2": HASH2,
            "magnet": f"magnet:?xt=urn:btih:{HASH1}&dn={key}",
            "magnet_v1": f"magnet:?xt=urn:btih:{HASH1}&dn={key}", "piece_length": "262144",
            "piece_count": "4", "meta_version": "hybrid", "attempts": "1", "source": "sync",
            "updated_at": "2024-05-01T12:00:00Z"})
        self.assertRegex(value["updated_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # the C reader agrees
        mine = self.get(key)
        self.assertEqual((mine["status"], mine["info_hash_v2"], mine["size"], mine["magnet_v1"]),
                         ("READY", HASH2, 1000, f"magnet:?xt=urn:btih:{HASH1}&dn={key}"))

    def test_v1_ready_has_no_v2_hash(self):
        self.ready("v1only.bin", "e1", 100, v2=False)
        item = self.cli_item("v1only.bin")
        self.assertNotIn("info_hash_v2", item)
        self.assertEqual(item["meta_version"], {"S": "v1"})
        # written without a begin: it made one attempt
        self.assertEqual(item["attempts"], {"N": "1"})

    def test_older_writer_after_newer_ready_changes_nothing(self):
        key = "versions.bin"
        self.begin(key, "new", 2000)
        self.ready(key, "new", 2000)
        before = self.cli_item(key)
        for op in ("begin", "ready", "failed"):
            if op == "begin":
                code, out = self.begin(key, "old", 1000, want=EXISTS)
            elif op == "ready":
                code, out = self.ready(key, "old", 1000, want=EXISTS)
            else:
                code, out = self.failed(key, "old", 1000, "late failure", want=EXISTS)
            self.assertEqual(out["error"], "EEXIST")
            self.assertIn("a newer version's status is there (ETag new", out["message"])
            self.assertEqual(self.cli_item(key), before, op)
        # another ETag in the same second: the first one stays
        code, out = self.begin(key, "twin", 2000, want=EXISTS)
        self.assertIn("the same second", out["message"])
        self.assertEqual(self.cli_item(key), before)

    def test_same_etag_after_ready_does_not_downgrade(self):
        key = "dup.bin"
        self.begin(key, "e1", 100)
        self.ready(key, "e1", 100)
        before = self.cli_item(key)
        code, out = self.begin(key, "e1", 100, want=EXISTS)
        self.assertIn("it is READY for this version already", out["message"])
        self.failed(key, "e1", 100, "duplicate run failed", want=EXISTS)
        self.assertEqual(self.cli_item(key), before)
        # a duplicate READY of the same torrent is harmless
        self.ready(key, "e1", 100)
        self.assertEqual(self.get(key)["status"], "READY")

    def test_failed_carries_error_and_retry_clears_it(self):
        key = "fail.bin"
        self.begin(key, "e1", 100)
        self.failed(key, "e1", 100, "s3://recordings/fail.bin: object changed while hashing")
        item = self.cli_item(key)
        self.assertEqual(item["status"], {"S": "FAILED"})
        self.assertEqual(item["error"],
                         {"S": "s3://recordings/fail.bin: object changed while hashing"})
        self.assertNotIn("info_hash", item)
        self.begin(key, "e1", 100)
        item = self.cli_item(key)
        self.assertEqual((item["status"], item["attempts"]), ({"S": "HASHING"}, {"N": "2"}))
        self.assertNotIn("error", item)

    def test_new_version_starts_afresh(self):
        key = "replaced.bin"
        self.begin(key, "e1", 100)
        self.begin(key, "e1", 100, now=NOW + LEASE_DEFAULT + 1)  # the first lease ran out
        self.ready(key, "e1", 100)
        self.begin(key, "e2", 200)
        item = self.cli_item(key)
        self.assertEqual(item["etag"], {"S": "e2"})
        self.assertEqual(item["attempts"], {"N": "1"})
        for gone in ("info_hash", "info_hash_v2", "magnet", "magnet_v1", "torrent_key",
                     "piece_length",
                     "piece_count", "meta_version", "error"):
            self.assertNotIn(gone, item)

    def test_custom_key_attribute(self):
        table = "s3torrent-status-custom"
        self.run_driver(0, "create", table=table, key_attr="object_uri")
        self.run_driver(0, "begin", self.uri("c.bin"), *self.version("e", 5), table=table,
                        key_attr="object_uri")
        item = self.cli_item("c.bin", table=table, key_attr="object_uri")
        self.assertEqual(item["object_uri"], {"S": self.uri("c.bin")})
        self.assertNotIn("s3_uri", item)
        self.assertEqual(self.get("c.bin", table=table, key_attr="object_uri")["status"],
                         "HASHING")

    def test_missing_item(self):
        code, out = self.run_driver(4, "get", self.uri("never.bin"))
        self.assertEqual(out["error"], "ENOENT")

    def test_concurrent_writers_settle_on_newest(self):
        key = "race.bin"
        jobs = [("old", 1000), ("new", 2000)] * 10
        codes, errors = [], []
        lock = threading.Lock()
        start = threading.Barrier(len(jobs))

        def writer(etag, mtime):
            try:
                start.wait(timeout=60)
                got = [self.begin(key, etag, mtime, want=None)[0],
                       self.ready(key, etag, mtime, want=None)[0]]
                with lock:
                    codes.append((etag, got))
            except Exception as e:  # reported below: a thread cannot fail the test itself
                with lock:
                    errors.append(repr(e))

        threads = [threading.Thread(target=writer, args=j) for j in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(codes), 20)
        # every new-version READY lands (its begin may find READY already, or another writer's
        # running lease); old writes land only before the first new one
        for etag, (b, r) in codes:
            self.assertIn(b, (0, EXISTS, BUSY), codes)
            self.assertEqual(r, 0, codes) if etag == "new" else self.assertIn(r, (0, EXISTS))
        item = self.cli_item(key)
        self.assertEqual((item["etag"], item["object_mtime"], item["status"]),
                         ({"S": "new"}, {"N": "2000"}, {"S": "READY"}))
        self.assertTrue(re.fullmatch(r"[1-9]\d*", item["attempts"]["N"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
