#!/usr/bin/python3
"""s3torrent serve against hostile clients, on S3 (s3rver, or RGW with S3T_S3=rgw): what
http.client cannot send, sent on raw sockets (absolute-form targets, no Host, an HTTP/0.9 line,
binary bytes, a 100 KiB header line, 1000 headers, a 64 KiB request line, NUL bytes); huge and
malformed ranges (RFC 9110 §14); 200 slowloris connections; 10,000 connections at once against
--max-connections 1024; 50 clients leaving a 64 MiB answer after 1 MiB. After each case a normal
GET still works; each test has its own server, whose log must hold no sanitizer report and which
must exit 0 on SIGTERM (docs/DESIGN.md §14). Every wait is bounded.
S3TORRENT names the binary under test."""
import os
import re
import resource
import selectors
import socket
import subprocess
import tempfile
import time
import unittest

from services import S3, aws_env, content, daemon_log, free_port, wait_port

S3T = os.path.abspath(os.environ.get("S3TORRENT", "build/tools/s3torrent"))
BUCKET = "hostilebucket"
OTHER = "hostileother"
SMALL = "rec/plain.bin"
BIG = "rec/big.bin"
SMALL_SIZE = 300001
BIG_SIZE = 64 << 20
TIMEOUT = 30  # seconds any one wait may take
# a sanitizer build keeps freed memory in quarantine (256 MiB by default) and shadow pages
with open(S3T, "rb") as _f:
    SANITIZED = b"__asan_init" in _f.read()
RSS_MAX_MIB = 768 if SANITIZED else 256


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1)) / 1024


class Server:
    """s3torrent serve on a free loopback port; stop() returns its exit status and log."""

    def __init__(self, s3, *extra):
        self.port = free_port()
        self.log = daemon_log()
        self.proc = subprocess.Popen(
            [S3T, "serve", "--endpoint-url", s3.url, "--listen", f"127.0.0.1:{self.port}",
             "--no-cache", *extra, f"{BUCKET}:rec/"],
            env=aws_env(), stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, "s3torrent serve")

    def connect(self, timeout=TIMEOUT):
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(timeout=60)
        self.log.seek(0)
        log = self.log.read().decode(errors="replace")
        self.log.close()
        return rc, log


def read_answer(sock, head_only=False):
    """One HTTP answer from sock: (status, headers, body), or None when the server closed the
    connection before answering (or reset it)."""
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            d = sock.recv(65536)
            if not d:
                return None
            buf += d
    except ConnectionResetError:
        return None
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = 0 if head_only else int(headers.get("content-length", "0"))
    while len(body) < n:
        d = sock.recv(min(1 << 20, n - len(body)))
        if not d:
            break
        body += d
    return status, headers, body


def raw(srv, data):
    """Sends data on a new connection; returns read_answer's result."""
    with srv.connect() as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return None  # closed while we were still sending: a refusal
        return read_answer(s)


def get(srv, target=f"/{BUCKET}/{SMALL}", headers=None):
    """A well-formed GET: (status, headers, body)."""
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with srv.connect() as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        return read_answer(s)


def metric(srv, name):
    _, _, body = get(srv, "/metrics")
    return int(re.search(rf"^{re.escape(name)} (\d+)$", body.decode(), re.M).group(1))


class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="serve-hostile-")
        cls.s3 = S3(buckets=(BUCKET, OTHER))  # private on RGW
        cls.small = content(SMALL_SIZE, 1)
        cls.big = content(BIG_SIZE, 2)
        for bucket, key, data in ((BUCKET, SMALL, cls.small), (BUCKET, BIG, cls.big),
                                  (OTHER, SMALL, b"another bucket's bytes")):
            path = os.path.join(cls.tmp.name, "up.bin")
            with open(path, "wb") as f:
                f.write(data)
            cls.s3.put(bucket, key, path)
        # 10,000 sockets here and up to --max-connections in the server, which inherits this
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 65536
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))

    @classmethod
    def tearDownClass(cls):
        cls.s3.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.srv = None
        self.t0 = time.monotonic()

    def serve(self, *extra):
        self.srv = Server(self.s3, *extra)
        return self.srv

    def tearDown(self):
        if self.srv is None:
            return
        rc, log = self.srv.stop()
        print(f"  {self.id().rsplit('.', 1)[-1]}: {time.monotonic() - self.t0:.1f} s")
        bad = [ln for ln in log.splitlines() if "Sanitizer" in ln or "runtime error" in ln]
        self.assertEqual(bad, [], log[-4000:])
        self.assertEqual(rc, 0, log[-4000:])

    def assert_serves(self, why=""):
        a = get(self.srv)
        self.assertIsNotNone(a, f"no answer to a normal GET {why}")
        self.assertEqual(a[0], 200, why)
        self.assertEqual(a[2], self.small, why)

    def test_raw_requests(self):
        """Targets and framing http.client cannot send: each gets its status (or a closed
        connection), never another bucket's bytes, and the server keeps serving."""
        srv = self.serve()
        host = b"Host: 127.0.0.1\r\n"
        small = f"/{BUCKET}/{SMALL}".encode()
        other = f"/{OTHER}/{SMALL}".encode()
        CLOSED = None
        cases = [
            # RFC 9112 §3.2: an HTTP/1.1 request with no Host, or two, is 400
            ("no Host", b"GET " + small + b" HTTP/1.1\r\n\r\n", {400}),
            ("two Hosts", b"GET " + small + b" HTTP/1.1\r\n" + host + b"Host: b\r\n\r\n", {400}),
            ("HTTP/1.0 with no Host", b"GET " + small + b" HTTP/1.0\r\n\r\n", {200}),
            ("HTTP/0.9 request line", b"GET " + small + b"\r\n\r\n", {400, CLOSED}),
            ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {400, 505, CLOSED}),
            ("HTTP/9.9", b"GET " + small + b" HTTP/9.9\r\n" + host + b"\r\n", {505, 400}),
            # RFC 9112 §3.2.2: the absolute form is accepted, and routed by its path alone
            ("absolute form", b"GET http://127.0.0.1" + small + b" HTTP/1.1\r\n" + host +
             b"\r\n", {200}),
            ("absolute form, another bucket", b"GET http://127.0.0.1" + other +
             b" HTTP/1.1\r\n" + host + b"\r\n", {404}),
            ("absolute form, escaping", b"GET http://x/" + BUCKET.encode() + b"/rec/../../" +
             OTHER.encode() + b"/rec/plain.bin HTTP/1.1\r\n" + host + b"\r\n", {400}),
            ("absolute form, no path", b"GET http://127.0.0.1 HTTP/1.1\r\n" + host + b"\r\n",
             {400}),
            ("backslashes", b"GET /" + BUCKET.encode() + b"\\..\\" + OTHER.encode() +
             b"/rec/plain.bin HTTP/1.1\r\n" + host + b"\r\n", {404}),
            # S3 keys are UTF-8: these bytes name no object (RGW answers them 400 itself)
            ("bytes that are not UTF-8", b"GET /" + BUCKET.encode() +
             b"/rec/\xff\xfe\x80.bin HTTP/1.1\r\n" + host + b"\r\n", {400}),
            ("an escaped surrogate", b"GET /" + BUCKET.encode() + b"/rec/%ED%A0%80.bin HTTP/1.1\r\n"
             + host + b"\r\n", {400}),
            ("a TLS ClientHello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" +
             bytes(range(256)), {400, CLOSED}),
            ("binary garbage", content(4096, 3) + b"\r\n\r\n", {400, CLOSED}),
            # RFC 9112 §2.2: empty lines before a request line may be ignored
            ("empty lines first", b"\r\n\r\n\r\nGET " + small + b" HTTP/1.1\r\n" + host +
             b"\r\n", {200, 400, CLOSED}),
            ("a 100 KiB header line", b"GET " + small + b" HTTP/1.1\r\n" + host + b"X-Long: " +
             b"a" * 102400 + b"\r\n\r\n", {431, 413, 400, CLOSED}),
            ("1000 headers", b"GET " + small + b" HTTP/1.1\r\n" + host +
             b"".join(b"X-H%d: v\r\n" % i for i in range(1000)) + b"\r\n",
             {431, 413, 400, CLOSED}),
            ("a 64 KiB request line", b"GET /" + BUCKET.encode() + b"/rec/" + b"a" * 65536 +
             b" HTTP/1.1\r\n" + host + b"\r\n", {414, 431, 400, CLOSED}),
            ("a header with no colon", b"GET " + small + b" HTTP/1.1\r\n" + host +
             b"NoColon\r\n\r\n", {400}),
            ("a negative Content-Length", b"GET " + small + b" HTTP/1.1\r\n" + host +
             b"Content-Length: -1\r\n\r\n", {400, CLOSED}),
            ("a 23-digit Content-Length", b"GET " + small + b" HTTP/1.1\r\n" + host +
             b"Content-Length: 99999999999999999999999\r\n\r\n", {400, 413, CLOSED}),
            ("a malformed chunk", b"GET " + small + b" HTTP/1.1\r\n" + host +
             b"Transfer-Encoding: chunked\r\n\r\nzz\r\n\r\n", {400, CLOSED}),
            ("CONNECT", b"CONNECT " + OTHER.encode() + b":443 HTTP/1.1\r\n" + host + b"\r\n",
             {405, 400}),
            ("a lower-case method", b"get " + small + b" HTTP/1.1\r\n" + host + b"\r\n",
             {405, 501}),
            # a NUL ends the C string libmicrohttpd hands over: never another bucket's bytes
            ("NUL in the bucket", b"GET /" + OTHER.encode() + b"\x00/" + BUCKET.encode() +
             b"/rec/plain.bin HTTP/1.1\r\n" + host + b"\r\n", {400, 404, CLOSED}),
        ]
        for name, data, want in cases:
            with self.subTest(name):
                a = raw(srv, data)
                status = a[0] if a else None
                self.assertIn(status, want, f"{name}: {a and a[:2]}")
                if status == 200:
                    self.assertEqual(a[2], self.small, name)
                if a is not None:
                    self.assertNotEqual(a[2], b"another bucket's bytes", name)
                self.assertIsNone(srv.proc.poll(), f"the server died on {name}")
                self.assert_serves(f"after {name}")

    def test_nul_in_target_reaches_nothing_else(self):
        """RFC 9112 §2.2 makes a NUL in the request line invalid. libmicrohttpd 0.9 cuts the
        target at the NUL before the server sees it, so the server cannot answer 400; what it
        answers is a refusal, or the object the part before the NUL names, never what follows
        the NUL (here a path escape to another prefix)."""
        srv = self.serve()
        for tail in (b"/../junk", b"/../../other/x.bin", b"%2F..%2Fjunk"):
            with self.subTest(tail=tail):
                a = raw(srv, f"GET /{BUCKET}/{SMALL}".encode() + b"\x00" + tail +
                        b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if a is not None and a[0] == 200:
                    self.assertEqual(a[2], self.small)
                else:
                    self.assertIn(a and a[0], (400, None))
                self.assert_serves("after a NUL in the target")

    def test_ranges(self):
        """Huge and malformed ranges: 206, 416, or the whole object (200) where RFC 9110
        §14.2 lets a server ignore the header; the body always matches the status."""
        srv = self.serve()
        n, data = SMALL_SIZE, self.small
        many = "bytes=" + ",".join(f"{2 * i}-{2 * i}" for i in range(1000))
        cases = [
            ("bytes=0-99999999999999999999", 206, 0, n - 1),
            ("bytes=-99999999999999999999", 206, 0, n - 1),
            ("bytes=99999999999999999999-", 416, None, None),
            ("bytes=18446744073709551615-18446744073709551615", 416, None, None),
            ("bytes=18446744073709551616-", 416, None, None),
            ("bytes=0-18446744073709551616", 206, 0, n - 1),
            ("bytes=-0", 416, None, None),
            ("bytes=0-0", 206, 0, 0),
            (f"bytes={n - 1}-{n - 1}", 206, n - 1, n - 1),
            (f"bytes={n}-{n}", 416, None, None),
            (many, 200, None, None),  # several ranges: ignored
            ("bytes=" + "0" * 5000 + "1-2", 206, 1, 2),  # leading zeros are still 1
            ("bytes=-1-5", 200, None, None),
            ("bytes=1--5", 200, None, None),
            ("bytes=--5", 200, None, None),
            ("bytes=-", 200, None, None),
            ("bytes=5-3", 200, None, None),  # last < first: invalid, ignored
            ("bytes=+1-2", 200, None, None),
            ("bytes=0x10-0x20", 200, None, None),
            ("bytes=1.5-2", 200, None, None),
            ("bytes=1-2,", 200, None, None),
            ("bytes=,1-2", 200, None, None),
            ("bytes=1 - 2", 200, None, None),
            ("bytes =\t1-2\t", 206, 1, 2),
            ("bytes", 200, None, None),
            ("bytes=" + " " * 4000, 200, None, None),
            ("bytes=" + "9" * 4000 + "-", 416, None, None),
        ]
        for rng, want, first, last in cases:
            with self.subTest(rng[:60]):
                status, h, body = get(srv, headers={"Range": rng})
                self.assertEqual(status, want, rng[:60])
                if want == 206:
                    self.assertEqual(body, data[first:last + 1])
                    self.assertEqual(h["content-range"], f"bytes {first}-{last}/{n}")
                elif want == 416:
                    self.assertEqual(h["content-range"], f"bytes */{n}")
                else:
                    self.assertEqual(body, data)
                    self.assertNotIn("content-range", h)
        self.assert_serves()

    def test_slowloris(self):
        """200 connections send a request line, then a header byte a second, for ever (an idle
        timeout never fires for them): normal GETs are still answered meanwhile, and every one
        of the 200 is closed by the server while it still trickles, once its head has taken
        --header-timeout (3 s); /metrics counts them. A kept-alive connection that trickles its
        second request is closed the same way, and one that sends its requests at once is
        not."""
        srv = self.serve("--timeout", "30", "--header-timeout", "3")
        slow = []
        for _ in range(200):
            s = srv.connect()
            s.sendall(f"GET /{BUCKET}/{SMALL} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".encode())
            s.setblocking(False)
            slow.append(s)
        open_ = set(slow)
        worst = 0.0
        deadline = time.monotonic() + 60  # generous: the server has 3 s and a 1 s watchdog
        while open_ and time.monotonic() < deadline:
            for s in list(open_):
                try:
                    s.send(b"a")
                    if s.recv(1) == b"":
                        open_.discard(s)
                except BlockingIOError:
                    pass
                except OSError:  # reset or broken pipe: closed by the server
                    open_.discard(s)
            t = time.monotonic()
            self.assert_serves("during the slowloris")
            worst = max(worst, time.monotonic() - t)
            time.sleep(1)  # the trickle's pace, not a wait for the server
        print(f"  slowloris: slowest normal GET {worst:.2f} s meanwhile; "
              f"{200 - len(open_)} of 200 trickling connections closed by the server")
        for s in slow:
            s.close()
        self.assertEqual(len(open_), 0, "trickling connections the server left open")
        self.assertGreaterEqual(metric(srv, "s3torrent_serve_header_timeouts_total"), 200)
        # kept alive: a whole request is answered, then a trickled second one is cut
        with srv.connect() as s:
            for _ in range(3):  # several requests sent at once each are answered
                s.sendall(f"GET /{BUCKET}/{SMALL} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                a = read_answer(s)
                self.assertIsNotNone(a)
                self.assertEqual(a[2], self.small)
            s.sendall(f"GET /{BUCKET}/{SMALL} HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode())
            closed = False
            deadline = time.monotonic() + 60
            while not closed and time.monotonic() < deadline:
                try:
                    s.send(b"a")
                    s.settimeout(1)
                    closed = s.recv(1) == b""
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
            self.assertTrue(closed, "a kept-alive connection trickling its next request")
        self.assert_serves("after the slowloris")

    def test_ten_thousand_connections(self):
        """10,000 connections at once (non-blocking connects, in batches) against
        --max-connections 1024: the server stays up, its RSS stays under a bound, and once the
        clients leave, a normal GET is answered."""
        srv = self.serve("--max-connections", "1024", "--timeout", "6")
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        n = min(10000, limit - 1024 - 200)
        socks, refused, peak = [], 0, 0.0
        try:
            for _ in range(0, n, 500):
                for _ in range(500):
                    s = socket.socket()
                    s.setblocking(False)
                    if s.connect_ex(("127.0.0.1", srv.port)) not in (0, 115):  # EINPROGRESS
                        refused += 1
                        s.close()
                        continue
                    socks.append(s)
                self.assertIsNone(srv.proc.poll(), "the server died")
                peak = max(peak, rss_mib(srv.proc.pid))
            # a request on every one that connected; the server answers those it accepted
            for s in socks:
                try:
                    s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                except OSError:
                    pass
            # what each connection got within 4 s (before --timeout frees any): an answer, or
            # closed; no more than --max-connections are answered, the others wait or go
            answered = closed = 0
            sel = selectors.DefaultSelector()
            for s in socks:
                sel.register(s, selectors.EVENT_READ)
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline and answered + closed < len(socks):
                for key, _ in sel.select(timeout=0.5):
                    try:
                        d = key.fileobj.recv(65536)
                    except OSError:
                        d = b""
                    answered += bool(d)
                    closed += not d
                    sel.unregister(key.fileobj)
                peak = max(peak, rss_mib(srv.proc.pid))
            sel.close()
            print(f"  within 4 s: {answered} answered, {closed} closed by the server, "
                  f"{len(socks) - answered - closed} waiting")
            self.assertGreater(answered, 0)
            self.assertLessEqual(answered, 1024)
            self.assertIsNone(srv.proc.poll(), "the server died")
        finally:
            for s in socks:
                s.close()
        print(f"  {n} connections ({refused} refused at connect): server RSS peak "
              f"{peak:.1f} MiB (bound {RSS_MAX_MIB})")
        self.assertLess(peak, RSS_MAX_MIB)
        deadline = time.monotonic() + TIMEOUT
        while True:  # until it has closed what the clients left (at most --timeout)
            try:
                a = get(srv)
                if a and a[0] == 200:
                    break
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, "no normal GET answered afterwards")
            time.sleep(0.2)
        self.assert_serves("after 10,000 connections")
        after = rss_mib(srv.proc.pid)
        print(f"  after: server RSS {after:.1f} MiB")
        self.assertLess(after, RSS_MAX_MIB)

    def test_disconnect_mid_body(self):
        """50 clients read 1 MiB of a 64 MiB answer and leave (half of them with a reset): the
        server keeps serving, reads the store once for them all (the block cache) and little
        more than they took, /metrics counts them, and its memory does not grow with them."""
        srv = self.serve()
        store0 = metric(srv, "s3torrent_serve_store_bytes_total")
        ok0 = self.object_2xx(srv)
        rss = []
        for i in range(50):
            with srv.connect() as s:
                s.sendall(f"GET /{BUCKET}/{BIG} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                status, h, body = read_answer(s, head_only=True)
                self.assertEqual(status, 200)
                self.assertEqual(int(h["content-length"]), BIG_SIZE)
                while len(body) < 1 << 20:
                    d = s.recv(1 << 20)
                    self.assertTrue(d, "the answer ended early")
                    body += d
                self.assertEqual(body[:1 << 20], self.big[:1 << 20])
                if i % 2:  # a reset instead of a FIN
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            if i in (9, 49):
                rss.append(rss_mib(srv.proc.pid))
        self.assert_serves("after 50 clients left mid-answer")
        # the server notices each departure; the counters settle within a bounded wait
        deadline = time.monotonic() + TIMEOUT
        while self.object_2xx(srv) - ok0 < 51 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.object_2xx(srv) - ok0, 51)
        store_total = metric(srv, "s3torrent_serve_store_bytes_total")
        store = store_total - store0
        served = metric(srv, "s3torrent_serve_bytes_served_total")
        self.assertEqual(metric(srv, "s3torrent_serve_store_errors_total"), 0)
        self.assertGreaterEqual(served, 50 << 20)  # each got its 1 MiB at least
        # they all read the same first blocks: through the block cache each block is read from
        # the store once, and only what the sockets' buffers took and the 16 MiB read ahead of
        # that: far from 50 x their share
        self.assertLess(store, 48 << 20, f"read {store} bytes for 50 x the first 1 MiB")
        print(f"  50 clients gone mid-answer: store read {store / 1048576:.1f} MiB in all, "
              f"{served / 1048576:.1f} MiB sent; "
              f"server RSS {rss[0]:.1f} MiB after 10, {rss[1]:.1f} MiB after 50")
        self.assertLess(rss[1] - rss[0], 64 if not SANITIZED else 256)

    @staticmethod
    def object_2xx(srv):
        _, _, body = get(srv, "/metrics")
        return int(re.search(r'^s3torrent_serve_requests_total\{route="object",status="2xx"\} '
                             r"(\d+)$", body.decode(), re.M).group(1))


if __name__ == "__main__":
    unittest.main(verbosity=2)
