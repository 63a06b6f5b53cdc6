"""A local SQS queue and Lambda event source mapping for testing the fan-out, following AWS's
documented protocols for what the runtime uses.

FakeSqs serves the SQS JSON protocol (AWS JSON 1.0): POST / with Content-Type
application/x-amz-json-1.0, X-Amz-Target AmazonSQS.SendMessage or AmazonSQS.SendMessageBatch, a
SigV4 Authorization header scoped to the service "sqs", and a body naming the QueueUrl. Answers
and errors are those of the API reference: SendMessage {"MD5OfMessageBody", "MessageId"};
SendMessageBatch {"Successful": [...], "Failed": [...]}; errors as HTTP 400 with
{"__type": "com.amazonaws.sqs#<Code>", "message": ...} (QueueDoesNotExist,
EmptyBatchRequest, TooManyEntriesInBatchRequest, BatchEntryIdsNotDistinct,
InvalidBatchEntryId, MissingParameter, InvalidAction, InvalidSecurity for an unsigned request).

EventSourceMapping does what Lambda's SQS poller does with the queue: `concurrency` pollers each
take up to `batch_size` visible messages (hidden for `visibility_timeout` seconds, their
ApproximateReceiveCount raised), invoke the function with an aws:sqs event through a
FakeLambdaApi, and on an answer delete the messages that are not named in batchItemFailures
(FunctionResponseTypes ReportBatchItemFailures); an error answer, or no answer by the
function's deadline, leaves the whole batch to come back once its visibility timeout ends."""
import hashlib
import http.server
import itertools
import json
import re
import sys
import threading
import time
import uuid

ACCOUNT = "123456789012"
REGION = "us-east-1"
BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
MAX_BODY = 262144  # bytes of one message (and of a batch's bodies together)


class Message:
    def __init__(self, body):
        self.id = str(uuid.uuid4())
        self.body = body
        self.md5 = hashlib.md5(body.encode()).hexdigest()
        self.sent = int(time.time() * 1000)
        self.visible_at = 0.0
        self.receives = 0
        self.receipt = None
        self.first_receive = 0


class FakeSqs:
    """start: serves on 127.0.0.1:<free port>; `url` is the endpoint (AWS_ENDPOINT_URL_SQS) and
    `queue_url` the one queue's URL."""

    def __init__(self, name="s3torrent-runs"):
        self.name = name
        self.cond = threading.Condition()
        self.messages = []  # in the order sent
        self.sent = 0
        self.requests = []  # (target, number of entries)
        self.receives = {}  # message id -> times received
        sqs = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code, doc):
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                auth = self.headers.get("Authorization", "")
                target = self.headers.get("X-Amz-Target", "")
                ctype = self.headers.get("Content-Type", "")
                if self.path != "/" or ctype != "application/x-amz-json-1.0":
                    return self._plain_error(400, "InvalidAction", "not the JSON protocol")
                if not re.match(r"^AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/[a-z0-9-]+/sqs/"
                                r"aws4_request, SignedHeaders=[^,]*x-amz-target[^,]*, "
                                r"Signature=[0-9a-f]{64}$", auth):
                    return self._plain_error(403, "InvalidSecurity",
                                             "the request is not signed for sqs")
                try:
                    req = json.loads(raw)
                except ValueError:
                    return self._plain_error(400, "InvalidParameterValue", "body is not JSON")
                op = target.removeprefix("AmazonSQS.")
                if not target.startswith("AmazonSQS.") or op not in ("SendMessage",
                                                                      "SendMessageBatch"):
                    return self._plain_error(400, "InvalidAction", f"unknown target {target}")
                if req.get("QueueUrl") != sqs.queue_url:
                    return self._plain_error(400, "QueueDoesNotExist",
                                             "The specified queue does not exist.")
                if op == "SendMessage":
                    body = req.get("MessageBody")
                    if not isinstance(body, str) or not body:
                        return self._plain_error(400, "MissingParameter",
                                                 "MessageBody is required")
                    m = sqs._add([body])[0]
                    with sqs.cond:
                        sqs.requests.append((op, 1))
                    return self._send(200, {"MD5OfMessageBody": m.md5, "MessageId": m.id})
                entries = req.get("Entries")
                if not isinstance(entries, list) or not entries:
                    return self._plain_error(400, "EmptyBatchRequest", "no entries")
                if len(entries) > 10:
                    return self._plain_error(400, "TooManyEntriesInBatchRequest",
                                             "at most 10 entries")
                ids = [e.get("Id") for e in entries]
                if any(not isinstance(i, str) or not BATCH_ID.match(i) for i in ids):
                    return self._plain_error(400, "InvalidBatchEntryId", "bad entry id")
                if len(set(ids)) != len(ids):
                    return self._plain_error(400, "BatchEntryIdsNotDistinct", "ids repeat")
                ok, failed, bodies = [], [], []
                for e in entries:
                    b = e.get("MessageBody")
                    if not isinstance(b, str) or not b or len(b.encode()) > MAX_BODY:
                        failed.append({"Id": e["Id"], "SenderFault": True,
                                       "Code": "InvalidParameterValue",
                                       "Message": "MessageBody is missing or too long"})
                    else:
                        bodies.append((e["Id"], b))
                for (i, b), m in zip(bodies, sqs._add([b for _, b in bodies])):
                    ok.append({"Id": i, "MessageId": m.id, "MD5OfMessageBody": m.md5})
                with sqs.cond:
                    sqs.requests.append((op, len(entries)))
                return self._send(200, {"Successful": ok, "Failed": failed})

            def _plain_error(self, status, code, message):
                body = json.dumps({"__type": f"com.amazonaws.sqs#{code}",
                                   "message": message}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.end_headers()
                self.wfile.write(body)

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
                    return
                super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.queue_url = f"{self.url}/{ACCOUNT}/{name}"
        self.arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _add(self, bodies):
        with self.cond:
            ms = [Message(b) for b in bodies]
            self.messages.extend(ms)
            self.sent += len(ms)
            self.cond.notify_all()
            return ms

    def receive(self, n, visibility_timeout, stop):
        """Waits for visible messages; hides up to n of them for visibility_timeout seconds and
        returns them (empty when stop is set)."""
        with self.cond:
            while not stop.is_set():
                now = time.monotonic()
                vis = [m for m in self.messages if m.visible_at <= now][:n]
                if vis:
                    for m in vis:
                        m.visible_at = now + visibility_timeout
                        m.receives += 1
                        self.receives[m.id] = m.receives
                        m.receipt = str(uuid.uuid4())
                        m.first_receive = m.first_receive or int(time.time() * 1000)
                    return list(vis)
                later = [m.visible_at - now for m in self.messages]
                self.cond.wait(min(later + [0.5]))
            return []

    def delete(self, m, receipt):
        with self.cond:
            if m.receipt == receipt and m in self.messages:
                self.messages.remove(m)
            self.cond.notify_all()

    def release(self, m, receipt):
        """A failed message: visible again once its visibility timeout is over (as Lambda leaves
        it: the timeout is not changed)."""
        with self.cond:
            self.cond.notify_all()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class EventSourceMapping:
    """Delivers fake SQS messages to a FakeLambdaApi as Lambda's SQS event source does."""

    def __init__(self, sqs, api, batch_size=1, concurrency=4, visibility_timeout=None,
                 deadline_ms=None):
        self.sqs, self.api = sqs, api
        self.batch_size = batch_size
        self.deadline_ms = deadline_ms if deadline_ms is not None else api.deadline_ms
        # SQS wants a visibility timeout of at least the function timeout
        self.visibility_timeout = visibility_timeout or self.deadline_ms / 1000
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.invocations = []  # (request id, [message ids], outcome kind or "timeout")
        self._ids = itertools.count()
        self.threads = [threading.Thread(target=self._poll, daemon=True)
                        for _ in range(concurrency)]
        for t in self.threads:
            t.start()

    def _event(self, batch):
        return {"Records": [{
            "messageId": m.id, "receiptHandle": m.receipt, "body": m.body,
            "attributes": {"ApproximateReceiveCount": str(m.receives),
                           "SentTimestamp": str(m.sent), "SenderId": "AIDAFAKE",
                           "ApproximateFirstReceiveTimestamp": str(m.first_receive)},
            "messageAttributes": {}, "md5OfBody": m.md5, "eventSource": "aws:sqs",
            "eventSourceARN": self.sqs.arn, "awsRegion": REGION} for m in batch]}

    def _poll(self):
        while not self.stopping.is_set():
            batch = self.sqs.receive(self.batch_size, self.visibility_timeout, self.stopping)
            if not batch:
                continue
            receipts = [(m, m.receipt) for m in batch]
            rid = self.api.invoke(self._event(batch), deadline_ms=self.deadline_ms)
            try:
                kind, body, _ = self.api.wait(rid, timeout=self.deadline_ms / 1000 + 5)
            except TimeoutError:
                kind, body = "timeout", b""
            failed = set()
            if kind == "response":
                try:
                    doc = json.loads(body)
                    failed = {f["itemIdentifier"] for f in doc.get("batchItemFailures") or []}
                except (ValueError, KeyError, TypeError, AttributeError):
                    failed = {m.id for m in batch}  # an answer Lambda cannot read: all fail
            else:
                failed = {m.id for m in batch}
            for m, receipt in receipts:
                if m.id in failed:
                    self.sqs.release(m, receipt)
                else:
                    self.sqs.delete(m, receipt)
            with self.lock:
                self.invocations.append((rid, [m.id for m in batch], kind))

    def max_receives(self):
        with self.sqs.cond:
            return max(list(self.sqs.receives.values()) + [0])

    def stop(self):
        self.stopping.set()
        with self.sqs.cond:
            self.sqs.cond.notify_all()
