"""A fault-injecting HTTP proxy for the integration tests. It sits between our client and a real
server (s3rver, dynalite), forwards requests unchanged (the Host header too, so signatures still
verify), counts what passes, and on a seeded, reproducible schedule answers 503 SlowDown or 500,
resets the connection in the middle of a body, truncates a body, or delays a response."""
import http.client
import http.server
import random
import socket
import struct
import threading
import time

SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            b'<Message>Please reduce your request rate.</Message>'
            b'<RequestId>FAULTPROXY</RequestId></Error>')
INTERNAL = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
            b'<Message>We encountered an internal error. Please try again.</Message>'
            b'<RequestId>FAULTPROXY</RequestId></Error>')

FAULTS = ("slowdown", "internal", "reset", "truncate", "delay")


class FaultProxy:
    """Proxy on 127.0.0.1:<free port> to upstream_port (see __init__ for hook and override).

    faults: fault name -> probability per request (applied to requests whose method is in
    `methods`); `only_first` makes at most that many faults in all. Counters: requests,
    by method, faults injected, bytes of GET bodies sent."""

    def __init__(self, upstream_port, faults=None, seed=1, methods=("GET", "HEAD", "PUT", "POST"),
                 only_first=None, delay_s=0.5, hook=None, override=None, tls=None):
        self.upstream_port = upstream_port
        self.faults = dict(faults or {})
        self.rng = random.Random(seed)
        self.methods = methods
        self.only_first = only_first
        self.delay_s = delay_s
        # hook(method, path, headers): called before forwarding (e.g. to replace an object)
        self.hook = hook
        # override(method, path): (status, body) to answer instead of the upstream, or None
        self.override = override
        # tls: (certfile, keyfile) to answer HTTPS instead of HTTP
        self.lock = threading.Lock()
        self.counts = {"requests": 0, "faults": 0, "get_body_bytes": 0, "outage_resets": 0,
                       "inflight_max": 0, "inflight_get_max": 0}
        self.inflight = self.inflight_get = 0  # requests (GETs) being answered now
        self.down_until = 0.0
        self.by_method = {}
        self.injected = {f: 0 for f in FAULTS}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_any(self):
                with proxy.lock:
                    proxy.inflight += 1
                    proxy.counts["inflight_max"] = max(proxy.counts["inflight_max"],
                                                       proxy.inflight)
                    self.get_inflight = self.command == "GET"
                    if self.get_inflight:
                        proxy.inflight_get += 1
                        proxy.counts["inflight_get_max"] = max(
                            proxy.counts["inflight_get_max"], proxy.inflight_get)
                try:
                    self.handle_one()
                finally:
                    with proxy.lock:
                        proxy.inflight -= 1
                    self.get_answered()

            def get_answered(self):
                """A GET stops counting as in flight once its answer is ready to go: the
                client may send its next GET as soon as it has the bytes, before this thread
                runs again."""
                with proxy.lock:
                    if self.get_inflight:
                        proxy.inflight_get -= 1
                        self.get_inflight = False

            def handle_one(self):
                if time.monotonic() < proxy.down_until:
                    # an outage: every request is answered by a reset connection
                    with proxy.lock:
                        proxy.counts["outage_resets"] += 1
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = proxy._pick(self.command)
                if proxy.hook:
                    proxy.hook(self.command, self.path, self.headers)
                canned = proxy.override(self.command, self.path) if proxy.override else None
                if canned is not None:
                    status, payload = canned
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if fault == "delay":
                    time.sleep(proxy.delay_s)
                if fault in ("slowdown", "internal"):
                    payload = SLOWDOWN if fault == "slowdown" else INTERNAL
                    self.send_response(503 if fault == "slowdown" else 500)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                up = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items()}
                up.putrequest(self.command, self.path, skip_host=True,
                              skip_accept_encoding=True)
                for k, v in headers.items():
                    up.putheader(k, v)
                up.endheaders(body)
                resp = up.getresponse()
                self.send_response_only(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "keep-alive", "transfer-encoding"):
                        self.send_header(k, v)
                data = resp.read() if self.command != "HEAD" else b""
                up.close()
                if self.command != "HEAD" and resp.getheader("Content-Length") is None:
                    self.send_header("Content-Length", str(len(data)))
                self.get_answered()
                self.end_headers()
                if fault in ("reset", "truncate") and len(data) > 1:
                    cut = len(data) // 2
                    self.wfile.write(data[:cut])
                    self.wfile.flush()
                    if fault == "reset":
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                   struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR) if fault == "truncate" else None
                    self.connection.close()
                    return
                self.wfile.write(data)
                if self.command == "GET":
                    with proxy.lock:
                        proxy.counts["get_body_bytes"] += len(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_any

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # clients that hang up (killed, or after an injected reset) are expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        if tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            # the handshake happens in the handler's thread, so a client that refuses the
            # certificate does not stall the server
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True,
                                                 do_handshake_on_connect=False)
            self.url = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _pick(self, method):
        with self.lock:
            self.counts["requests"] += 1
            self.by_method[method] = self.by_method.get(method, 0) + 1
            if method not in self.methods:
                return None
            if self.only_first is not None and self.counts["faults"] >= self.only_first:
                return None
            for name, p in self.faults.items():
                if self.rng.random() < p:
                    self.counts["faults"] += 1
                    self.injected[name] += 1
                    return name
            return None

    def reset_counts(self):
        with self.lock:
            self.counts = {"requests": 0, "faults": 0, "get_body_bytes": 0, "outage_resets": 0,
                           "inflight_max": 0, "inflight_get_max": 0}
            self.by_method = {}
            self.injected = {f: 0 for f in FAULTS}

    def outage(self, seconds):
        """From now on, for seconds, the upstream is unreachable: every request is reset."""
        self.down_until = time.monotonic() + seconds

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
