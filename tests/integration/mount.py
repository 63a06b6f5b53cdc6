"""Mounting s3torrentfs for the integration tests: starts the daemon in the foreground on a
temporary mount point, waits (bounded) until the mount is live, and unmounts it cleanly."""
import os
import stat
import subprocess
import tempfile
import time

from services import aws_env, daemon_log

FS = os.path.abspath(os.environ.get("S3TORRENTFS", "build/fs/s3torrentfs"))


class Mount:
    def __init__(self, endpoint, bucket, prefix="", cache=None, options=(), env=None,
                 args=(), daemon=False):
        """daemon: without -f, as fstab and mount(8) start it: the process detaches (forks)
        once mounted, and logs go to syslog."""
        self.dir = tempfile.mkdtemp(prefix="s3tfs-")
        self.point = os.path.join(self.dir, "mnt")
        os.mkdir(self.point)
        # the mount point's parents must let other uids through for the access tests
        os.chmod(self.dir, os.stat(self.dir).st_mode | stat.S_IXOTH)
        self.cache = cache or os.path.join(self.dir, "cache", "torrents.db")
        self.log = daemon_log(os.path.join(self.dir, "daemon.log"))
        opts = [f"endpoint={endpoint}", f"cache={self.cache}", *options]
        # bucket None: the config file (-o config=FILE) names it, only the mount point is given
        source = [] if bucket is None else [f"{bucket}:{prefix}" if prefix else bucket]
        e = aws_env(env)
        fg = [] if daemon else ["-f"]
        self.proc = subprocess.Popen([FS, *fg, *args, "-o", ",".join(opts), *source, self.point],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=e)
        self.daemon_pid = None
        if daemon:  # the parent exits 0 once the detached child has mounted
            rc = self.proc.wait(timeout=30)
            if rc != 0 or not os.path.ismount(self.point):
                raise RuntimeError(f"s3torrentfs exited {rc}: {self.output()}")
            self.daemon_pid = self.find_daemon()
        deadline = time.monotonic() + 30
        while not os.path.ismount(self.point):
            if self.proc.poll() is not None:
                raise RuntimeError(f"s3torrentfs exited {self.proc.returncode}: {self.output()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("s3torrentfs did not mount within 30 s")
            time.sleep(0.02)

    def find_daemon(self):
        """The detached daemon's pid: the s3torrentfs process whose arguments end with this
        mount point."""
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")[:-1]
            except OSError:
                continue
            if argv and os.path.basename(argv[0]) == b"s3torrentfs" and \
                    argv[-1] == self.point.encode():
                return int(pid)
        raise RuntimeError("the detached s3torrentfs is not running")

    def path(self, *parts):
        return os.path.join(self.point, *parts)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def problems(self):
        """Lines of the daemon's log that no test expects: errors and sanitizer reports."""
        return [line for line in self.output().splitlines()
                if ": error:" in line or "Sanitizer" in line or "runtime error" in line]

    def stop(self):
        if os.path.ismount(self.point):
            subprocess.run(["fusermount3", "-u", self.point], check=False, capture_output=True)
        if self.daemon_pid is not None:  # not our child: wait for /proc to lose it
            deadline = time.monotonic() + 30
            while os.path.exists(f"/proc/{self.daemon_pid}") and time.monotonic() < deadline:
                time.sleep(0.05)
            if os.path.exists(f"/proc/{self.daemon_pid}"):
                os.kill(self.daemon_pid, 9)
                raise RuntimeError("the detached s3torrentfs did not exit after unmount")
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.final_output = self.output()  # the log, exit reports included, once closed
        problems = self.problems()
        self.log.close()
        return problems
