"""Real local services for the integration tests: s3rver (S3) and dynalite (DynamoDB) from the
repository's pinned npm packages, Ceph RGW (a production S3, contrib/dev/rgw.sh), on free
loopback ports with temporary directories, plus the Debian aws CLI pointed at them. Every wait
is for a condition (a port answering), bounded.

S3(...) is the S3 a test uses: s3rver, or buckets on one RGW cluster shared by the whole test
process when S3T_S3=rgw; both answer to the same interface (url, port, aws, put, stop)."""
import atexit
import base64
import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, "node_modules", ".bin")
# Debian's awscli (docs/DESIGN.md §11); another `aws` earlier on PATH may be a different
# major version
AWS = os.environ.get("AWS_CLI", "/usr/bin/aws")
KEY = SECRET = "S3RVER"


# The odd-key set every front end is tested with, on s3rver and on RGW: spaces, '+', '%' and
# '%41' (a literal, never decoded), '?', '#', XML's specials, unicode, and 1,024 bytes (S3's
# limit; no segment over 255 bytes, which s3rver, storing keys as files, could not hold).
ODD_KEYS = [
    "plain.bin",
    "with space/rec ording 1.bin",
    "plus+sign+.bin",
    "percent%20literal%.bin",
    "pct%41/take %41.bin",
    "question?mark.bin",
    "hash#tag.bin",
    "xml/&amp;<b>\"q\" 'a'.bin",
    "unicode/été-录音-🎵.bin",
    "deep/" + "/".join(["d" * 200] * 4) + "/" + "k" * (1024 - 5 - 4 * 201 - 4) + ".bin",
]


def free_port():
    """A port free now, below the kernel's ephemeral range: a port bind(0) hands out and that is
    released may go to an outgoing connection of a test running beside, before the service binds
    it (the demo's aria2c once got "Address already in use" so)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    if low > 10200:
        for port in random.SystemRandom().sample(range(10000, low), 200):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout}s")


def aws_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": ""})
    if extra:
        env.update(extra)
    return env


class S3rver:
    """s3rver on 127.0.0.1:<free port>; stop() kills it and removes its data."""

    def __init__(self, buckets=("test",)):
        self.dir = tempfile.mkdtemp(prefix="s3rver-")
        args = [os.path.join(BIN, "s3rver"), "-d", self.dir, "-a", "127.0.0.1", "-p", "0",
                "--silent"]
        for b in buckets:
            args += ["--configure-bucket", b]
        # s3rver makes continuation tokens with a cipher OpenSSL 3 keeps in its legacy provider
        env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        m, line = None, ""
        for _ in range(20):  # it prints a blank line, then where it listens
            line = self.proc.stdout.readline()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m or not line:
                break
        if not m:
            self.stop()
            raise RuntimeError(f"s3rver did not start: {line!r}")
        self.port = int(m.group(1))
        self.url = f"http://127.0.0.1:{self.port}"
        wait_port(self.port, self.proc, "s3rver")

    def aws(self, *args, check=True, **kw):
        return subprocess.run([AWS, "--endpoint-url", self.url, *args], env=aws_env(),
                              capture_output=True, check=check, **kw)

    def put(self, bucket, key, path):
        """Uploads as users do (multipart above 8 MiB)."""
        self.aws("s3", "cp", "--only-show-errors", path, f"s3://{bucket}/{key}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Rgw:
    """A one-node Ceph RGW cluster (contrib/dev/rgw.sh) in a temporary directory; url, dir."""

    def __init__(self):
        self.parent = tempfile.mkdtemp(prefix="rgw-")
        self.dir = os.path.join(self.parent, "cluster")
        p = subprocess.run([os.path.join(ROOT, "contrib", "dev", "rgw.sh"), "start", self.dir],
                           capture_output=True, text=True)
        if p.returncode != 0:
            self.stop()
            raise RuntimeError(f"RGW did not start: {p.stderr.strip()}")
        self.url = p.stdout.strip().splitlines()[-1]

    def stop(self):
        subprocess.run([os.path.join(ROOT, "contrib", "dev", "rgw.sh"), "stop", self.dir],
                       capture_output=True)
        shutil.rmtree(self.parent, ignore_errors=True)


def rgw_url(cluster_dir):
    """The S3 URL of the RGW cluster started in cluster_dir (from the env file rgw.sh wrote)."""
    with open(os.path.join(cluster_dir, "env")) as f:
        return re.search(r"^RGW_URL=(\S+)$", f.read(), re.M).group(1)


class RgwBuckets:
    """Buckets on the RGW cluster in $RGW_DIR (one started for a whole tier), or else on one
    the process starts on first use and stops at exit, with the S3rver interface. stop()
    purges them, every object version included. versioned turns bucket versioning on; public
    lets anonymous clients read objects (web seeds), as s3rver does."""
    cluster_dir = None

    def __init__(self, buckets=("test",), versioned=False, public=False):
        if RgwBuckets.cluster_dir is None:
            if os.environ.get("RGW_DIR"):
                RgwBuckets.cluster_dir = os.environ["RGW_DIR"]
            else:
                rgw = Rgw()
                atexit.register(rgw.stop)
                RgwBuckets.cluster_dir = rgw.dir
        self.url = rgw_url(RgwBuckets.cluster_dir)
        self.port = int(self.url.rsplit(":", 1)[1])
        self.buckets = []
        for b in buckets:
            self.purge(b)  # what an interrupted run may have left
            p = self.aws("s3api", "create-bucket", "--bucket", b, check=False)
            if p.returncode != 0:
                self.stop()
                raise RuntimeError(f"RGW: cannot create bucket {b}: {p.stderr.decode().strip()}")
            self.buckets.append(b)
            if versioned:
                self.aws("s3api", "put-bucket-versioning", "--bucket", b,
                         "--versioning-configuration", "Status=Enabled")
            if public:
                policy = {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{b}/*"]}]}
                self.aws("s3api", "put-bucket-policy", "--bucket", b, "--policy",
                         json.dumps(policy))

    def purge(self, bucket):
        """Removes bucket with all its objects and versions (radosgw-admin: one call)."""
        subprocess.run(["radosgw-admin", "-c", os.path.join(RgwBuckets.cluster_dir, "ceph.conf"),
                        "bucket", "rm", "--bucket", bucket, "--purge-objects", "--bypass-gc"],
                       capture_output=True, cwd=RgwBuckets.cluster_dir)

    aws = S3rver.aws
    put = S3rver.put

    def stop(self):
        for b in self.buckets:
            self.purge(b)
        self.buckets = []


def S3(buckets=("test",), versioned=False, public=False):
    """The S3 of this run (S3T_S3: s3rver, the default, or rgw) with these buckets. s3rver has
    no versioning and lets anyone read: versioned and public matter on RGW only."""
    if os.environ.get("S3T_S3", "s3rver") == "rgw":
        return RgwBuckets(buckets, versioned=versioned, public=public)
    if versioned:
        raise RuntimeError("s3rver has no versioning: this test needs S3T_S3=rgw")
    return S3rver(buckets)


class Dynalite:
    """dynalite on 127.0.0.1:<free port>."""

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([os.path.join(BIN, "dynalite"), "--host", "127.0.0.1",
                                      "--port", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_port(self.port, self.proc, "dynalite")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def outer_digest(torrent):
    """The s3torrent-outer metadata of a .torrent (docs/DESIGN.md §4), computed here on its own:
    the first 16 bytes of the SHA-256, in hex, of its top-level dict without "info" and "piece
    layers", every other entry as stored."""
    def end(i):  # the offset after the bencoded value at i
        c = torrent[i:i + 1]
        if c == b"i":
            return torrent.index(b"e", i) + 1
        if c in (b"l", b"d"):
            i += 1
            while torrent[i:i + 1] != b"e":
                i = end(i)
            return i + 1
        colon = torrent.index(b":", i)
        return colon + 1 + int(torrent[i:colon])
    assert torrent[:1] == b"d"
    kept, i = b"d", 1
    while torrent[i:i + 1] != b"e":
        k = end(i)
        v = end(k)
        if torrent[torrent.index(b":", i) + 1:k] not in (b"info", b"piece layers"):
            kept += torrent[i:v]
        i = v
    return hashlib.sha256(kept + b"e").hexdigest()[:32]


def content(size, seed):
    """size bytes that differ with seed (none for 0): test objects."""
    return hashlib.shake_256(f"{seed}".encode()).digest(size) if size else b""


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wait_for(what, cond, log=None, timeout=120, every=0.2):
    """Polls cond() until it returns something true, and returns that; fails after timeout
    seconds, with log() (a daemon's output, say) when given."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})" +
                         (f"\n{log()}" if log else ""))


def read_metrics(path):
    """A Prometheus text file (the mount's metrics_file) as {"name{labels}": value}; {} while it
    does not exist."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def proc_memory(pid):
    """A process's resident memory from /proc/PID/status, in bytes: {"VmRSS": now, "VmHWM":
    its peak}."""
    with open(f"/proc/{pid}/status") as f:
        return {m.group(1): int(m.group(2)) * 1024
                for m in re.finditer(r"^(VmRSS|VmHWM):\s+(\d+) kB", f.read(), re.M)}


def daemon_log(path=None):
    """A file for a daemon's stdout and stderr that the test may read while the daemon runs:
    O_APPEND, so the daemon always writes at the end whatever offset the test's reads leave
    on the file they share (without it a seek(0) to read makes the next line overwrite the
    start). A temporary file, or path."""
    f = open(path, "w+b") if path else tempfile.TemporaryFile()
    fcntl.fcntl(f.fileno(), fcntl.F_SETFL, fcntl.fcntl(f.fileno(), fcntl.F_GETFL) | os.O_APPEND)
    return f


def terminate(proc, timeout_s=30):
    """Stops a daemon the way its service manager would: SIGTERM, then SIGKILL after timeout_s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def libtorrent_download(ti, save_path, timeout_s=60, settings=None, peers=(),
                        check_errors=False):
    """Has python3-libtorrent download torrent_info ti into save_path from its web seeds and the
    (host, port) peers given (no DHT, LSD or PEX; its trackers, if any, are expected to answer
    nothing); settings are more session settings. Returns the torrent's status once seeding, or
    once timeout_s passed without (the caller asserts); with check_errors, raises
    AssertionError on the first torrent error. The session has ended when it returns, so the
    files are whole: seeding says every piece passed its hash, and a file read while the
    session lived once missed bytes libtorrent had hashed but not yet written."""
    import libtorrent as lt
    ses = lt.session({"enable_dht": False, "enable_lsd": False, "enable_upnp": False,
                      "enable_natpmp": False, "listen_interfaces": "127.0.0.1:0",
                      "alert_mask": lt.alert_category.error, **(settings or {})})
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = save_path
    h = ses.add_torrent(atp)
    deadline = time.monotonic() + timeout_s
    dialled = 0.0
    while not h.status().is_seeding and time.monotonic() < deadline:
        # a peer that turned the first connection away (a torrent it is still starting) is
        # dialled again, as a tracker's next answer would have it
        if peers and h.status().num_peers == 0 and time.monotonic() - dialled > 1:
            for peer in peers:
                h.connect_peer(peer)
            dialled = time.monotonic()
        ses.wait_for_alert(100)
        for a in ses.pop_alerts():
            if check_errors and isinstance(a, lt.torrent_error_alert):
                raise AssertionError(f"libtorrent: {a.message()}")
    status = h.status()
    del h
    del ses  # the session's destructor waits for its disk thread
    return status


def libtorrent_check(ti, save_path, timeout_s=60):
    """Has python3-libtorrent check the data of torrent_info ti under save_path, as a client
    does before seeding. Returns the torrent's status once checked; raises AssertionError on a
    torrent error or when the check does not finish within timeout_s."""
    import libtorrent as lt
    ses = lt.session({"enable_dht": False, "enable_lsd": False, "enable_upnp": False,
                      "enable_natpmp": False, "listen_interfaces": "127.0.0.1:0",
                      "alert_mask": lt.alert_category.status | lt.alert_category.error})
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = save_path
    h = ses.add_torrent(atp)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ses.wait_for_alert(100)
        for a in ses.pop_alerts():
            if isinstance(a, lt.torrent_error_alert):
                raise AssertionError(f"libtorrent: {a.message()}")
            if isinstance(a, lt.torrent_checked_alert):
                return h.status()
    raise AssertionError("libtorrent never finished checking")


# ---- BitTorrent daemons, each with a temporary profile on loopback ports, DHT, LSD, PEX and
# port mapping off; stop() ends it, logs() is its output for a failing assertion ----

NO_PROXY_ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _tail(path, n=4000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode(errors="replace")
    except OSError as e:
        return f"({path}: {e})"


class _Daemon:
    def _spawn(self, args, name, env=None):
        self.logpath = os.path.join(self.dir, name + ".log")
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env or NO_PROXY_ENV)
        return self.proc

    def logs(self):
        self.log.flush()
        return f"--- {os.path.basename(self.logpath)}\n{_tail(self.logpath)}"

    def stop(self):
        terminate(self.proc)
        self.log.close()


class Opentracker(_Daemon):
    """opentracker on a loopback port tracking the whitelisted v1 info-hashes (hex); url."""

    def __init__(self, parent, hashes, port=None):
        self.dir = tempfile.mkdtemp(prefix="tracker-", dir=parent)
        # started as root it reads the list as nobody: the list and its directories readable
        for d in (parent, self.dir):
            os.chmod(d, os.stat(d).st_mode | 0o011)
        wl = os.path.join(self.dir, "whitelist")
        with open(wl, "w") as f:
            f.write("".join(h + "\n" for h in hashes))
        os.chmod(wl, 0o644)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/announce"
        self._spawn(["opentracker", "-i", "127.0.0.1", "-p", str(self.port), "-P", str(self.port),
                     "-w", wl], "opentracker")
        wait_port(self.port, self.proc, "opentracker")


class Qbittorrent(_Daemon):
    """qbittorrent-nox with its Web UI on url, a login (user, password) required also from
    localhost, and peers on peer_port."""

    def __init__(self, parent, user, password):
        self.dir = tempfile.mkdtemp(prefix="qbt-", dir=parent)
        self.save = os.path.join(self.dir, "downloads")
        os.mkdir(self.save)
        self.port, self.peer_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.user, self.password = user, password
        salt = os.urandom(16)
        key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 100000, 64)
        pbkdf2 = f"@ByteArray({base64.b64encode(salt).decode()}:{base64.b64encode(key).decode()})"
        conf = os.path.join(self.dir, "qBittorrent", "config")
        os.makedirs(conf)
        with open(os.path.join(conf, "qBittorrent.conf"), "w") as f:
            f.write("[LegalNotice]\nAccepted=true\n\n"
                    "[BitTorrent]\nSession\\DHTEnabled=false\nSession\\LSDEnabled=false\n"
                    f"Session\\PeXEnabled=false\nSession\\Port={self.peer_port}\n"
                    "Session\\QueueingSystemEnabled=false\nSession\\MultiConnectionsPerIp=true\n"
                    f"Session\\DefaultSavePath={self.save}\n\n"
                    "[Preferences]\nWebUI\\Address=127.0.0.1\n"
                    f"WebUI\\Port={self.port}\nWebUI\\LocalHostAuth=true\n"
                    f"WebUI\\Username={user}\nWebUI\\Password_PBKDF2=\"{pbkdf2}\"\n"
                    "WebUI\\CSRFProtection=false\nWebUI\\HostHeaderValidation=false\n"
                    "Connection\\UPnP=false\n")
        self._spawn(["qbittorrent-nox", f"--profile={self.dir}", f"--webui-port={self.port}"],
                     "qbittorrent-nox", dict(NO_PROXY_ENV, HOME=self.dir))
        self.cookie = None
        try:
            wait_port(self.port, self.proc, "qbittorrent-nox", timeout=60)
            answer = self.call("auth/login", {"username": user, "password": password})
            assert answer == b"Ok.", answer
        except BaseException:
            print(self.logs())
            self.stop()
            raise

    def call(self, api, form=None):
        """One Web API v2 call (a POST when form is given) with our own session."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(f"{self.url}/api/v2/{api}", data=data)
        if self.cookie:
            req.add_header("Cookie", self.cookie)
        with OPENER.open(req, timeout=30) as r:
            sid = r.headers.get("Set-Cookie", "")
            if sid.startswith("SID="):
                self.cookie = sid.split(";")[0]
            return r.read()

    def torrents(self, **query):
        return json.loads(self.call("torrents/info" +
                                    ("?" + urllib.parse.urlencode(query) if query else "")))

    def seeding(self, tid, announced=True):
        """Torrent tid (qBittorrent's id: libtorrent's get_best(), 40 hex digits) once complete,
        past its checks and, when announced, once its tracker answered (so leechers find it
        there): its torrents/info entry, else None. Raises on an error state."""
        got = self.torrents(hashes=tid)
        if not got:
            return None
        t = got[0]
        if t["state"] in ("error", "missingFiles"):
            raise AssertionError(f"qBittorrent: {t}\n{self.logs()}")
        if t["progress"] != 1 or t["state"] in ("checkingUP", "checkingResumeData"):
            return None
        if not announced:
            return t
        trackers = json.loads(self.call(f"torrents/trackers?hash={tid}"))
        return t if any(tr["status"] == 2 for tr in trackers) else None


class Deluge(_Daemon):
    """deluged and deluge-web (JSON-RPC at url, password web_password) sharing one config
    directory: the web UI knows the daemon (hostlist.conf) but is not connected to it. Peers
    on peer_port, on 127.0.0.1.

    A leecher must come from another loopback address (127.0.0.2): a tracker hands deluged its
    own address, deluged dials itself, and libtorrent, which Deluge 2.0 leaves at one
    connection per IP address, closes every other peer from 127.0.0.1 as that same peer
    ("connected to ourselves")."""

    def __init__(self, parent, web_password):
        self.dir = tempfile.mkdtemp(prefix="deluge-", dir=parent)
        self.cfg = os.path.join(self.dir, "config")
        self.save = os.path.join(self.dir, "downloads")
        os.mkdir(self.cfg)
        os.mkdir(self.save)
        self.daemon_port, self.web_port, self.peer_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.web_port}/json"
        daemon_pw = hashlib.sha1(os.urandom(16)).hexdigest()

        def conf(name, version, values):
            with open(os.path.join(self.cfg, name), "w") as f:
                f.write(json.dumps({"file": version, "format": 1}) + json.dumps(values))
        conf("core.conf", 1, {
            "dht": False, "lsd": False, "upnp": False, "natpmp": False, "utpex": False,
            "random_port": False, "listen_ports": [self.peer_port, self.peer_port],
            "listen_interface": "127.0.0.1", "outgoing_interface": "",
            "download_location": self.save, "new_release_check": False,
            "daemon_port": self.daemon_port, "allow_remote": False,
            "max_active_seeding": -1, "max_active_limit": -1, "max_active_downloading": -1,
            "dont_count_slow_torrents": True})
        salt = hashlib.sha1(os.urandom(16)).hexdigest()
        conf("web.conf", 2, {
            "port": self.web_port, "interface": "127.0.0.1", "https": False,
            "pwd_salt": salt,
            "pwd_sha1": hashlib.sha1((salt + web_password).encode()).hexdigest(),
            "first_login": False, "default_daemon": "", "show_session_speed": False})
        with open(os.path.join(self.cfg, "auth"), "w") as f:
            f.write(f"localclient:{daemon_pw}:10\n")
        conf("hostlist.conf", 3, {"hosts": [[hashlib.sha1(os.urandom(8)).hexdigest(),
                                             "127.0.0.1", self.daemon_port, "localclient",
                                             daemon_pw]]})
        self._spawn(["deluged", "-d", "-c", self.cfg, "-p", str(self.daemon_port), "-u",
                     "127.0.0.1", "-i", "127.0.0.1", "-L", "info"], "deluged")
        self.daemon_proc, self.daemon_logpath, self.daemon_log = self.proc, self.logpath, self.log
        try:
            wait_port(self.daemon_port, self.proc, "deluged", timeout=60)
            self._spawn(["deluge-web", "-d", "-c", self.cfg, "-p", str(self.web_port), "-i",
                         "127.0.0.1", "-L", "info"], "deluge-web")
            wait_port(self.web_port, self.proc, "deluge-web", timeout=60)
        except BaseException:
            print(self.logs())
            self.stop()
            raise
        self.cookie, self.id = None, 0
        assert self.call("auth.login", web_password) is True

    def call(self, method, *params):
        """One JSON-RPC call of our own (independent of lib/service/deluge.c); its result."""
        self.id += 1
        req = urllib.request.Request(self.url, data=json.dumps(
            {"method": method, "params": list(params), "id": self.id}).encode(),
            headers={"Content-Type": "application/json"})
        if self.cookie:
            req.add_header("Cookie", self.cookie)
        with OPENER.open(req, timeout=30) as r:
            c = r.headers.get("Set-Cookie", "")
            if c.startswith("_session_id="):
                self.cookie = c.split(";")[0]
            answer = json.load(r)
        if answer.get("error"):
            raise AssertionError(f"deluge-web: {method}: {answer['error']}")
        return answer["result"]

    def logs(self):
        self.daemon_log.flush()
        web = super().logs() if self.proc is not self.daemon_proc else ""
        return f"--- deluged\n{_tail(self.daemon_logpath)}\n{web}"

    def stop(self):
        if self.proc is not self.daemon_proc:
            super().stop()
        terminate(self.daemon_proc)
        self.daemon_log.close()


class Transmission(_Daemon):
    """transmission-daemon with RPC auth (user, password) at url."""

    def __init__(self, parent, user, password):
        self.dir = tempfile.mkdtemp(prefix="tr-", dir=parent)
        cfg, self.save = os.path.join(self.dir, "config"), os.path.join(self.dir, "downloads")
        os.mkdir(cfg)
        os.mkdir(self.save)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/transmission/rpc"
        self._spawn(["transmission-daemon", "-f", "-g", cfg, "--rpc-bind-address", "127.0.0.1",
                     "-p", str(port), "-t", "-u", user, "-v", password, "--no-dht", "--no-lpd",
                     "--no-portmap", "--peerport", str(free_port()), "--no-incomplete-dir",
                     "-w", self.save], "transmission-daemon")
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.sid = None

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError(f"transmission-daemon exited: {self.logs()}")
            try:
                return self.call("session-get")["version"]
            except OSError:
                return None
        try:
            self.version = wait_for("transmission-daemon RPC answering", answers, self.logs)
        except BaseException:
            self.stop()
            raise

    def call(self, method, **arguments):
        """One RPC call of our own (independent of lib/service/trpc.c); its arguments."""
        body = json.dumps({"method": method, "arguments": arguments}).encode()
        for _ in range(3):
            headers = {"Content-Type": "application/json", "Authorization": self.auth}
            if self.sid:
                headers["X-Transmission-Session-Id"] = self.sid
            try:
                with OPENER.open(urllib.request.Request(self.url, data=body, headers=headers),
                                 timeout=10) as r:
                    answer = json.load(r)
            except urllib.error.HTTPError as e:
                if e.code == 409:
                    self.sid = e.headers["X-Transmission-Session-Id"]
                    continue
                raise
            if answer["result"] != "success":
                raise AssertionError(f"{method}: {answer['result']}")
            return answer["arguments"]
        raise AssertionError(f"{method}: 409 three times")
