#!/usr/bin/python3
"""The seedbox benchmark's driver (tests/bench/seedbox.sh runs it): one seeding host, an
s3torrentfs mount and qbittorrent-nox on it, and 8 python3-libtorrent clients that download the
same object from it one after another (part 1); then the time to the first seeded byte once 200
torrents are added at once, with qBittorrent, Deluge and Transmission (part 2). Prints the
tables; exits 1 when a download fails its SHA-256 or a wait runs out.

Environment: S3TORRENT, S3TORRENTFS (the binaries), S3T_S3 (s3rver, the default, or rgw: the
server of tests/integration/services.py), BENCH_SIZE_MB (default 256), BENCH_CLIENTS (8),
BENCH_TORRENTS (200), BENCH_BLOCK_CACHE (16M), BENCH_TIMEOUT (seconds one download or one wait
may take, default 900), BENCH_DIR (where the work dir goes), BENCH_PARTS (the parts to run,
"1,2" by default: "2" alone neither makes the big object nor downloads it)."""
import hashlib
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import libtorrent as lt  # noqa: E402
from mount import Mount  # noqa: E402
from services import (S3, Deluge, Qbittorrent, Transmission, aws_env,  # noqa: E402
                      proc_memory, read_metrics, sha256_file, wait_for)

S3T = os.path.abspath(os.environ["S3TORRENT"])
SIZE_MB = int(os.environ.get("BENCH_SIZE_MB", "256"))
SIZE = SIZE_MB * 1048576
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
NTORRENTS = int(os.environ.get("BENCH_TORRENTS", "200"))
BLOCK_CACHE = os.environ.get("BENCH_BLOCK_CACHE", "16M")
TMO = int(os.environ.get("BENCH_TIMEOUT", "900"))
PARTS = {p.strip() for p in os.environ.get("BENCH_PARTS", "1,2").split(",")}
BUCKET = "seedbox"
BIG = "big.bin"
SMALL = 100003  # bytes of the small objects, a little more each
USER, PASSWORD = "bench", "bench pa55"
CLIENT_ENV = {"QBITTORRENT_USERNAME": USER, "QBITTORRENT_PASSWORD": PASSWORD,
              "DELUGE_WEB_PASSWORD": PASSWORD,
              "TRANSMISSION_RPC_USERNAME": USER, "TRANSMISSION_RPC_PASSWORD": PASSWORD}
SEED_CLIENTS = ("qbittorrent", "deluge", "transmission")  # part 2's, in this order


def log(msg):
    print(msg, flush=True)


def run_ok(args):
    p = subprocess.run(args, env=aws_env(CLIENT_ENV), capture_output=True, text=True,
                       timeout=TMO)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p


def random_file(path, size, seed):
    """size pseudo-random bytes (AES-CTR, as the other benches make them); their SHA-256."""
    key = hashlib.sha256(seed.encode()).hexdigest()[:32]
    with open(path, "wb") as f:
        subprocess.run(f"head -c {size} /dev/zero | openssl enc -aes-128-ctr -K {key} "
                       "-iv 00000000000000000000000000000000", shell=True, stdout=f, check=True)
    return sha256_file(path)


def session(address="127.0.0.1"):
    """A python3-libtorrent session listening on, and dialling from, the loopback address."""
    return lt.session({"enable_dht": False, "enable_lsd": False, "enable_upnp": False,
                       "enable_natpmp": False, "listen_interfaces": f"{address}:0",
                       "outgoing_interfaces": address})


def download(ti, save, peer):
    """A fresh python3-libtorrent session downloads ti from peer alone: (seconds, status)."""
    ses = session()
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = save
    t0 = time.monotonic()
    h = ses.add_torrent(atp)
    dialled = 0.0
    while not h.status().is_seeding and time.monotonic() - t0 < TMO:
        if h.status().num_peers == 0 and time.monotonic() - dialled > 1:
            h.connect_peer(peer)
            dialled = time.monotonic()
        time.sleep(0.05)
    return time.monotonic() - t0, h.status()


def first_byte(ti, save, peer, t0, address):
    """Seconds from t0 until a fresh python3-libtorrent session on the loopback address, with
    peer its only peer, has received the first payload byte of ti."""
    ses = session(address)
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = save
    h = ses.add_torrent(atp)
    dialled = 0.0
    while time.monotonic() - t0 < TMO:
        st = h.status()
        if st.total_payload_download > 0:
            return time.monotonic() - t0
        if st.num_peers == 0 and time.monotonic() - dialled > 1:
            h.connect_peer(peer)
            dialled = time.monotonic()
        time.sleep(0.02)
    raise RuntimeError(f"no byte of {ti.name()} from {peer} within {TMO} s")


def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def seedbox(s3, work, ti, digest, disk_cache):
    """One mount (block_cache only, or with a disk cache) and one qBittorrent seeding BIG to
    CLIENTS downloaders in turn: the row of the table."""
    name = "disk cache" if disk_cache else "no disk cache"
    mfile = os.path.join(work, "metrics.prom")
    opts = [f"block_cache={BLOCK_CACHE}", f"metrics_file={mfile}", "metrics_interval=1"]
    if disk_cache:
        opts += [f"disk_cache={os.path.join(work, 'disk-cache')}",
                 f"disk_cache_max={2 * SIZE}"]
    mnt = Mount(s3.url, BUCKET, options=opts)
    qbt = None
    try:
        qbt = Qbittorrent(work, USER, PASSWORD)
        c0, t0 = ticks(mnt.proc.pid), time.monotonic()
        p = run_ok([S3T, "seed", "--client", "qbittorrent", "--rpc", qbt.url, "--endpoint-url",
                    s3.url, "--mount-root", mnt.point, f"s3://{BUCKET}/{BIG}"])
        tid = str(ti.info_hashes().v1)
        if "torrent from s3" not in p.stdout:
            raise RuntimeError(f"not the torrent made for it: {p.stdout}")

        wait_for("qBittorrent seeding the object", lambda: qbt.seeding(tid, announced=False),
                 qbt.logs, timeout=TMO)
        secs = []
        for i in range(CLIENTS):
            save = tempfile.mkdtemp(prefix=f"dl{i}-", dir=work)
            s, st = download(ti, save, ("127.0.0.1", qbt.peer_port))
            if not st.is_seeding:
                raise RuntimeError(f"{name}: client {i + 1}: progress {st.progress} after "
                                   f"{TMO} s\n{qbt.logs()}")
            if sha256_file(os.path.join(save, BIG)) != digest:
                raise RuntimeError(f"{name}: client {i + 1}: wrong SHA-256")
            subprocess.run(["rm", "-rf", save], check=True)
            secs.append(s)
            log(f"  {name}: client {i + 1}/{CLIENTS}: {s:.1f} s")
        wall = time.monotonic() - t0
        cpu = (ticks(mnt.proc.pid) - c0) / os.sysconf("SC_CLK_TCK")
        # uploaded: payload bytes qBittorrent sent, from its own counter (updated about each
        # second): waited for until it has all the clients' bytes
        up = wait_for("qBittorrent counting the uploads",
                      lambda: (lambda u: u if u >= CLIENTS * SIZE else None)(
                          qbt.torrents(hashes=tid)[0]["uploaded"]), qbt.logs, timeout=60)
        rss = proc_memory(mnt.proc.pid)["VmHWM"]
    finally:
        if qbt:
            qbt.stop()  # it holds files of the mount open
        problems = mnt.stop()  # writes the metrics file a last time
    if problems:
        log(f"  s3torrentfs logged: {problems[:5]}")
    m = read_metrics(mfile)
    fetched = m["s3torrentfs_data_fetched_bytes_total"]
    gets = m.get('s3torrentfs_s3_requests_total{method="GET"}', 0)
    return {"name": name, "fetched": fetched, "uploaded": up, "gets": gets,
            "read": m.get('s3torrentfs_read_bytes_total{file="data"}', 0),
            "peak_cache": m.get("s3torrentfs_block_cache_peak_bytes", 0), "rss": rss,
            "wall": wall, "cpu": cpu, "first": secs[0], "rest": sum(secs[1:]) / max(1, len(secs) - 1)}


def time_to_first_byte(s3, work, client):
    """NTORRENTS torrents added to a fresh client in one `s3torrent seed` of the prefix: seconds
    from the start of that command until a downloader has the first byte of the last object
    (the last one added), and until the client reports all of them seeding. The downloader
    dials Deluge from 127.0.0.2: deluged keeps libtorrent at one connection per IP address (see
    services.Deluge)."""
    mnt = Mount(s3.url, BUCKET, options=[f"block_cache={BLOCK_CACHE}"])
    d = None
    try:
        if client == "qbittorrent":
            d = Qbittorrent(work, USER, PASSWORD)
        elif client == "deluge":
            d = Deluge(work, PASSWORD)
        else:
            d = Transmission(work, USER, PASSWORD)
        keys = [f"many/{i:03d}.bin" for i in range(NTORRENTS)]
        tis = {}
        for k in keys:
            with open(mnt.path(k + ".torrent"), "rb") as f:  # the S3 object KEY.torrent
                tis[k] = lt.torrent_info(lt.bdecode(f.read()))
        ids = [str(tis[k].info_hashes().v1) for k in keys]
        if client in ("qbittorrent", "deluge"):
            peer_port = d.peer_port
        else:
            peer_port = d.call("session-get")["peer-port"]
        t0 = time.monotonic()
        p = run_ok([S3T, "seed", "--client", client, "--rpc", d.url, "--endpoint-url", s3.url,
                    "--mount-root", mnt.point, f"s3://{BUCKET}/many/"])
        added = time.monotonic() - t0
        if p.stdout.count(": added (") != NTORRENTS:
            raise RuntimeError(f"{client}: not {NTORRENTS} added:\n{p.stdout[-2000:]}")
        fb = first_byte(tis[keys[-1]], tempfile.mkdtemp(prefix="fb-", dir=work),
                        ("127.0.0.1", peer_port), t0,
                        "127.0.0.2" if client == "deluge" else "127.0.0.1")

        if client == "qbittorrent":
            def all_seeding():
                got = d.torrents(hashes="|".join(ids))
                return len(got) == NTORRENTS and all(
                    t["progress"] == 1 and t["state"] not in ("checkingUP", "checkingResumeData")
                    for t in got)
        elif client == "deluge":
            def all_seeding():
                got = d.call("core.get_torrents_status", {"id": ids}, ["state"])
                if any(v["state"] == "Error" for v in got.values()):
                    raise RuntimeError(f"Deluge: {got}\n{d.logs()}")
                return len(got) == NTORRENTS and all(v["state"] == "Seeding"
                                                     for v in got.values())
        else:
            def all_seeding():
                got = d.call("torrent-get", ids=ids, fields=["percentDone", "status"])
                return len(got["torrents"]) == NTORRENTS and all(
                    t["percentDone"] == 1 and t["status"] == 6 for t in got["torrents"])
        wait_for(f"{client} seeding all {NTORRENTS}", all_seeding, d.logs, timeout=TMO, every=0.1)
        every = time.monotonic() - t0
    finally:
        if d:
            d.stop()
        mnt.stop()
    return {"client": client, "added": added, "first": fb, "all": every}


def main():
    if not PARTS or PARTS - {"1", "2"}:
        sys.exit(f"BENCH_PARTS is 1, 2 or 1,2, not {os.environ.get('BENCH_PARTS')!r}")
    for k in ("S3TORRENTFS",):
        os.environ[k] = os.path.abspath(os.environ[k])
    work = tempfile.mkdtemp(prefix="s3t-seedbox-", dir=os.environ.get("BENCH_DIR"))
    os.chmod(work, 0o755)  # daemons started as root may read as another user
    server = os.environ.get("S3T_S3", "s3rver")
    s3 = S3(buckets=(BUCKET,))
    rows, ttfb = [], []
    try:
        path = os.path.join(work, BIG)
        if "1" in PARTS:
            log(f"making a {SIZE_MB} MiB object on {server} ...")
            digest = random_file(path, SIZE, "big")
            s3.put(BUCKET, BIG, path)
            tpath = os.path.join(work, BIG + ".torrent")
            # its torrent (v1, 1 MiB pieces) made straight from S3 and stored as KEY.torrent:
            # the mount's counters then see only the seeding client's reads
            run_ok([S3T, "create", "--no-cache", "--endpoint-url", s3.url, "-l", "1M", "-o",
                    tpath, f"s3://{BUCKET}/{BIG}"])
            s3.put(BUCKET, BIG + ".torrent", tpath)
            os.unlink(path)
            ti = lt.torrent_info(tpath)
        if "2" in PARTS:
            log(f"making {NTORRENTS} objects of {SMALL} bytes on {server} ...")
            for i in range(NTORRENTS):
                with open(path, "wb") as f:
                    f.write(hashlib.shake_256(f"small{i}".encode()).digest(SMALL + i))
                s3.put(BUCKET, f"many/{i:03d}.bin", path)
            os.unlink(path)
            run_ok([S3T, "sync", "--no-cache", "--endpoint-url", s3.url, "-l", "64K",
                    f"s3://{BUCKET}/many/"])

        if "1" in PARTS:
            for disk in (False, True):
                log(f"(1) {CLIENTS} clients in turn, {'with' if disk else 'without'} a disk "
                    "cache ...")
                rows.append(seedbox(s3, work, ti, digest, disk))
        if "2" in PARTS:
            for client in SEED_CLIENTS:
                log(f"(2) {NTORRENTS} torrents added to {client} ...")
                ttfb.append(time_to_first_byte(s3, work, client))
    finally:
        s3.stop()
        subprocess.run(["rm", "-rf", "--one-file-system", work], check=False)

    with open("/proc/loadavg") as f:
        load_end = f.read().split()[0]
    print()
    print(f"seedbox: s3torrentfs (block_cache={BLOCK_CACHE}) on {server}, parts "
          f"{','.join(sorted(PARTS))}, {os.cpu_count()} cores, load average "
          f"{os.environ.get('LOAD_START', '?')} at start, {load_end} at the end")
    if rows:
        print()
        print(f"(1) {CLIENTS} python3-libtorrent clients download the same {SIZE_MB} MiB object "
              "one after another (SHA-256 checked), qBittorrent their only peer:")
        print(f"  {'mount':<14} {'S3 bytes':>12} {'uploaded':>12} {'S3/uploaded':>12} "
              f"{'GETs':>6} {'peak RSS MiB':>12} {'cache peak MiB':>14} {'1st s':>7} "
              f"{'next s':>7} {'wall s':>7} {'fs CPU s':>8}")
        for r in rows:
            print(f"  {r['name']:<14} {r['fetched']:12.0f} {r['uploaded']:12.0f} "
                  f"{r['fetched'] / r['uploaded']:12.4f} {r['gets']:6.0f} "
                  f"{r['rss'] / 1048576:12.1f} {r['peak_cache'] / 1048576:14.1f} "
                  f"{r['first']:7.1f} {r['rest']:7.1f} {r['wall']:7.1f} {r['cpu']:8.2f}")
        target = 1.1 / CLIENTS
        disk = rows[1]["fetched"] / rows[1]["uploaded"]
        print(f"  with the disk cache: {disk:.4f} S3 bytes per byte uploaded (target <= "
              f"{target:.4f} = 1.1/{CLIENTS}: {'met' if disk <= target else 'missed'}); "
              f"without: {rows[0]['fetched'] / rows[0]['uploaded']:.4f}")
        print("  (next s: the mean of clients 2..N; peak RSS: the daemon's VmHWM; S3 bytes: "
              "s3torrentfs_data_fetched_bytes_total)")
    if ttfb:
        print()
        print(f"(2) {NTORRENTS} torrents of ~{SMALL // 1000} kB objects added in one `s3torrent "
              "seed s3://BUCKET/many/`; from its start to:")
        print(f"  {'client':<14} {'seed done s':>11} {'first byte of the last s':>25} "
              f"{'all seeding s':>14}")
        for t in ttfb:
            print(f"  {t['client']:<14} {t['added']:11.2f} {t['first']:25.2f} {t['all']:14.2f}")
        print("  (first byte: a fresh python3-libtorrent session, the client its only peer, "
              "receives a payload byte of the last-added torrent, dialling Deluge from "
              "127.0.0.2; all seeding: the client reports every one complete and seeding)")


if __name__ == "__main__":
    main()
