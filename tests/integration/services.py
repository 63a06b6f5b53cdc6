"""Real local services for the integration tests: s3rver (S3) and dynalite (DynamoDB) from the
repository's pinned npm packages, on free loopback ports with temporary directories, plus the
Debian aws CLI pointed at them. Every wait is for a condition (a port answering), bounded."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, "node_modules", ".bin")
# Debian's awscli (DESIGN §10); another `aws` earlier on PATH may be a different major version
AWS = os.environ.get("AWS_CLI", "/usr/bin/aws")
KEY = SECRET = "S3RVER"


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
