"""Real local services for the integration tests: s3rver (S3) and dynalite (DynamoDB) from the
repository's pinned npm packages, Ceph RGW (a production S3, contrib/dev/rgw.sh), on free
loopback ports with temporary directories, plus the Debian aws CLI pointed at them. Every wait
is for a condition (a port answering), bounded.

S3(...) is the S3 a test uses: s3rver, or buckets on one RGW cluster shared by the whole test
process when S3T_S3=rgw; both answer to the same interface (url, port, aws, put, stop)."""
import atexit
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

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


def libtorrent_download(ti, save_path, timeout_s=60, settings=None):
    """Has python3-libtorrent download torrent_info ti into save_path from its web seeds alone
    (no DHT, LSD or peers; its trackers, if any, are expected to answer nothing); settings are
    more session settings. Returns the torrent's status once seeding, or once timeout_s passed
    without (the caller asserts)."""
    import libtorrent as lt
    ses = lt.session({"enable_dht": False, "enable_lsd": False, "enable_upnp": False,
                      "enable_natpmp": False, "listen_interfaces": "127.0.0.1:0",
                      **(settings or {})})
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = save_path
    h = ses.add_torrent(atp)
    deadline = time.monotonic() + timeout_s
    while not h.status().is_seeding and time.monotonic() < deadline:
        time.sleep(0.1)
    return h.status()


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
