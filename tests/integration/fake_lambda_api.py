"""A local Lambda Runtime API (2018-06-01) for testing a custom runtime, following AWS's documented
protocol: GET /runtime/invocation/next blocks until an event is queued and answers with the
Lambda-Runtime-* headers; POST .../{id}/response, .../{id}/error and /runtime/init/error record
what they get and answer 202 (400 for an unknown or already answered request id)."""
import http.server
import itertools
import json
import queue
import sys
import threading
import time
import uuid

PREFIX = "/2018-06-01"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:s3torrent"


class FakeLambdaApi:
    """start() serves on 127.0.0.1:<free port>; `api` is the AWS_LAMBDA_RUNTIME_API value."""

    def __init__(self, deadline_ms=300000):
        self.deadline_ms = deadline_ms
        self.pending = queue.Queue()
        self.cond = threading.Condition()
        self.outcomes = {}     # request id -> (kind, body bytes, headers dict)
        self.open = set()      # request ids handed out and not yet answered
        self.init_errors = []  # (body, headers)
        self.nexts = 0         # GET next requests received
        self._ids = itertools.count(1)
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Lambda's API does

            def log_message(self, *args):
                pass

            def _send(self, code, doc):
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != PREFIX + "/runtime/invocation/next":
                    return self._send(404, {"errorType": "NotFound"})
                with api.cond:
                    api.nexts += 1
                    api.cond.notify_all()
                rid, event, deadline, trace = api.pending.get()  # long poll: no timeout
                if rid is None:  # stop(): the runtime may be gone already
                    self.close_connection = True
                    try:
                        self._send(500, {"errorType": "Shutdown"})
                    except OSError:
                        pass
                    return
                with api.cond:
                    api.open.add(rid)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(event)))
                self.send_header("Lambda-Runtime-Aws-Request-Id", rid)
                self.send_header("Lambda-Runtime-Deadline-Ms",
                                 str(int(time.time() * 1000) + deadline))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
                self.send_header("Lambda-Runtime-Trace-Id", trace)
                self.end_headers()
                self.wfile.write(event)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                headers = {k.lower(): v for k, v in self.headers.items()}
                p = self.path
                if p == PREFIX + "/runtime/init/error":
                    with api.cond:
                        api.init_errors.append((body, headers))
                        api.cond.notify_all()
                    return self._send(202, {"status": "OK"})
                base = PREFIX + "/runtime/invocation/"
                if not p.startswith(base) or p.count("/") != 5:
                    return self._send(404, {"errorType": "NotFound"})
                rid, kind = p[len(base):].split("/")
                if kind not in ("response", "error"):
                    return self._send(404, {"errorType": "NotFound"})
                with api.cond:
                    if rid not in api.open:
                        return self._send(400, {"errorMessage": "invalid request id",
                                                "errorType": "InvalidRequestID"})
                    api.open.discard(rid)
                    api.outcomes[rid] = (kind, body, headers)
                    api.cond.notify_all()
                return self._send(202, {"status": "OK"})

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
                    return  # a runtime killed at the end of a test hangs up its long poll
                super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.api = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def invoke(self, event, deadline_ms=None, trace_id=None):
        """Queues an event (bytes, str or a JSON-able object); returns its request id."""
        if not isinstance(event, (bytes, str)):
            event = json.dumps(event)
        if isinstance(event, str):
            event = event.encode()
        rid = f"{next(self._ids):04d}-{uuid.uuid4()}"
        trace = trace_id or f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
        self.pending.put((rid, event, self.deadline_ms if deadline_ms is None else deadline_ms,
                          trace))
        return rid

    def wait(self, rid, timeout=120):
        """Waits for the runtime's answer to rid: (kind, body bytes, headers)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while rid not in self.outcomes:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no answer to invocation {rid} within {timeout}s")
                self.cond.wait(left)
            return self.outcomes[rid]

    def wait_init_error(self, timeout=30):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.init_errors:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no init error")
                self.cond.wait(left)
            return self.init_errors[0]

    def stop(self):
        for _ in range(4):  # release long polls still waiting
            self.pending.put((None, b"", 0, ""))
        self.server.shutdown()
        self.server.server_close()
