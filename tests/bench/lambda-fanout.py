#!/usr/bin/python3
"""Benchmark: one large object (default 4 GiB) made into a torrent by s3torrent-lambda's fan-out
(docs/DESIGN.md §10) through 1 and through 4 runtime processes on one local Runtime API fed by
the fake SQS queue and event source mapping of the tests, against `s3torrent create s3://` of
the same object, on the same s3rver and machine. Checks that every torrent is byte-identical to
create's, and prints wall seconds (S3 event to READY), CPU seconds of the runtimes and the peak
RSS (VmHWM) of each runtime.

Usage: tests/bench/lambda-fanout.py [--mib N] [--run-bytes SIZE] [--meta v1|v2|hybrid]
S3TORRENT and S3TORRENT_LAMBDA name the binaries (default build/tools/s3torrent and
build/lambda-sync/s3torrent-lambda: build Release first)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from fake_lambda_api import FakeLambdaApi  # noqa: E402
from fake_sqs import EventSourceMapping, FakeSqs  # noqa: E402
from services import AWS, Dynalite, S3rver, aws_env, wait_for  # noqa: E402

BUCKET, KEY = "fanbench", "big/recording.bin"
S3T = os.path.abspath(os.environ.get("S3TORRENT", os.path.join(ROOT, "build/tools/s3torrent")))
LAMBDA = os.path.abspath(os.environ.get("S3TORRENT_LAMBDA",
                                        os.path.join(ROOT, "build/lambda-sync/s3torrent-lambda")))
TICK = os.sysconf("SC_CLK_TCK")


def proc_stats(pid):
    """(CPU seconds, peak RSS MiB) of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    rss = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
    return cpu, rss


def s3_event():
    return {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                         "eventName": "ObjectCreated:Put",
                         "s3": {"s3SchemaVersion": "1.0", "configurationId": "b",
                                "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
                                "object": {"key": KEY, "sequencer": "00"}}}]}


def table(ddb, name):
    subprocess.run([AWS, "--endpoint-url", ddb.url, "dynamodb", "create-table", "--table-name",
                    name, "--billing-mode", "PAY_PER_REQUEST", "--attribute-definitions",
                    "AttributeName=s3_uri,AttributeType=S", "--key-schema",
                    "AttributeName=s3_uri,KeyType=HASH"], env=aws_env(), capture_output=True,
                   check=True)


def item(ddb, name):
    p = subprocess.run([AWS, "--endpoint-url", ddb.url, "dynamodb", "get-item", "--table-name",
                        name, "--consistent-read", "--key",
                        json.dumps({"s3_uri": {"S": f"s3://{BUCKET}/{KEY}"}})],
                       env=aws_env(), capture_output=True, check=True)
    return json.loads(p.stdout).get("Item") if p.stdout.strip() else None


def fanout(s3, ddb, work, n, args, reference):
    name = f"status{n}"
    table(ddb, name)
    s3.aws("s3api", "delete-object", "--bucket", BUCKET, "--key", KEY + ".torrent")
    api = FakeLambdaApi(deadline_ms=900000)
    sqs = FakeSqs()
    esm = EventSourceMapping(sqs, api, concurrency=n)
    env = aws_env({"AWS_ENDPOINT_URL_S3": s3.url, "AWS_ENDPOINT_URL_DYNAMODB": ddb.url,
                   "AWS_ENDPOINT_URL_SQS": sqs.url, "DDB_TABLE": name,
                   "AWS_LAMBDA_RUNTIME_API": api.api, "FANOUT_QUEUE_URL": sqs.queue_url,
                   "FANOUT_BYTES": "1G", "RUN_BYTES": args.run_bytes, "META_VERSION": args.meta})
    procs = [subprocess.Popen([LAMBDA], env=env, stdout=open(os.path.join(work, f"rt{n}-{i}.log"),
                                                             "w"), stderr=subprocess.STDOUT)
             for i in range(n)]
    try:
        t0 = time.monotonic()
        rid = api.invoke(s3_event())
        kind, body, _ = api.wait(rid, timeout=600)
        assert kind == "response" and json.loads(body)["results"][0]["action"] == "fanned-out", body
        it = wait_for("READY", lambda: (lambda i: i if i and i["status"]["S"] == "READY" else None)(
            item(ddb, name)), timeout=3600, every=0.5)
        wall = time.monotonic() - t0
        stats = [proc_stats(p.pid) for p in procs]
    finally:
        esm.stop()
        for p in procs:
            p.kill()
            p.wait()
        api.stop()
        sqs.stop()
    got = os.path.join(work, f"got{n}.torrent")
    s3.aws("s3api", "get-object", "--bucket", BUCKET, "--key", KEY + ".torrent", got)
    with open(got, "rb") as f:
        same = f.read() == reference
    return wall, sum(c for c, _ in stats), [r for _, r in stats], int(it["runs"]["N"]), same


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=4096)
    ap.add_argument("--run-bytes", default="512M")
    ap.add_argument("--meta", default="v1")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="s3t-fanbench-") as work:
        s3, ddb = S3rver((BUCKET,)), Dynalite()
        try:
            path = os.path.join(work, "big.bin")
            block = bytes(range(256)) * 4096
            with open(path, "wb") as f:
                for i in range(args.mib):
                    f.write(i.to_bytes(8, "big") + block[8:])
            s3.put(BUCKET, KEY, path)
            os.unlink(path)
            t0 = time.monotonic()
            p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", S3T, "create", "--endpoint-url",
                                s3.url, "--meta-version", args.meta, "-o",
                                os.path.join(work, "ref.torrent"), f"s3://{BUCKET}/{KEY}"],
                               env=aws_env(), capture_output=True, text=True, check=True)
            cwall = time.monotonic() - t0
            u, s_, m = p.stderr.strip().splitlines()[-1].split()
            with open(os.path.join(work, "ref.torrent"), "rb") as f:
                reference = f.read()
            nproc = os.cpu_count()
            print(f"{args.mib} MiB object, {args.meta}, s3rver, {nproc} cores, runs of "
                  f"{args.run_bytes}")
            print(f"{'what':<34} {'wall s':>7} {'CPU s':>7}  peak RSS MiB")
            print(f"{'s3torrent create s3://':<34} {cwall:7.1f} {float(u) + float(s_):7.1f}  "
                  f"{int(m) / 1024:.1f}")
            for n in (1, 4):
                wall, cpu, rss, runs, same = fanout(s3, ddb, work, n, args, reference)
                print(f"{f'lambda fan-out, {n} runtime(s), {runs} runs':<34} {wall:7.1f} "
                      f"{cpu:7.1f}  {' '.join(f'{r:.1f}' for r in rss)}"
                      f"{'' if same else '  TORRENT DIFFERS'}")
                if not same:
                    return 1
        finally:
            s3.stop()
            ddb.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
