/* main.c — s3torrentfs: mounts BUCKET[:PREFIX] read-only, every object beside its synthetic
 * .torrent. Resolves the options (settings.c), builds the shared state, runs FUSE. */
#include "s3torrent/blocks.h"
#include "dirtorrents.h"
#include "fs.h"
#include "meta.h"
#include "ops.h"
#include "settings.h"
#include "torrents.h"

#include "s3torrent/config.h"
#include "s3torrent/cred.h"
#include "s3torrent/diskcache.h"
#include "s3torrent/version.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define BLOCK_SIZE (1u << 20)

static void usage(const char *prog)
{
    printf("Usage: %s [options] BUCKET[:PREFIX] MOUNTPOINT\n"
           "       %s [options] -o config=FILE MOUNTPOINT   (the file says bucket = ...)\n"
           "\n"
           "Mounts an S3 bucket (or a prefix of it) read-only. Beside every object k is a\n"
           "synthetic k.torrent, made on first read by hashing k streamed from S3 and kept in\n"
           "a sqlite cache. From fstab: BUCKET:PREFIX /mnt fuse.s3torrentfs ro,_netdev,... 0 0\n"
           "\n"
           "Settings come from -o options, then the environment, then the config file, then\n"
           "the defaults below. SIGHUP rereads the config file and drops cached listings;\n"
           "bucket, S3 access, cache, block_cache, disk_cache, prefetch_torrents and\n"
           "metrics_file change only at mount.\n"
           "    -o config=FILE         config file: one 'name = value' per line, the names of\n"
           "                           these options, plus 'bucket = BUCKET[:PREFIX]' (then\n"
           "                           only MOUNTPOINT is given) (default: $S3TORRENT_CONFIG)\n"
           "S3 access (credentials from the AWS chain: environment, shared files, ECS, IMDS):\n"
           "    -o endpoint=URL        S3 endpoint (default: $AWS_ENDPOINT_URL_S3,\n"
           "                           $AWS_ENDPOINT_URL, else AWS for the region)\n"
           "    -o region=R            region (default: $AWS_REGION, else us-east-1)\n"
           "    -o profile=P           credentials profile (default: $AWS_PROFILE)\n"
           "    -o path_style          path-style requests (automatic for custom endpoints);\n"
           "                           nopath_style overrides the config file's\n"
           "    -o addressing_style=S  auto (default), path or virtual (BUCKET.HOST even for a\n"
           "                           custom endpoint); beats path_style\n"
           "Cache:\n"
           "    -o cache=PATH          torrent cache database (default:\n"
           "                           $XDG_CACHE_HOME/s3torrent/torrents.db, for root\n"
           "                           /var/cache/s3torrent/torrents.db)\n"
           "    -o cache_max=SIZE      cache budget, least recently used evicted (default 1G)\n"
           "Metadata freshness:\n"
           "    -o ttl=SECONDS         listings and attributes (default 60)\n"
           "    -o negative_ttl=SECONDS  how long a missing name stays missing (default 5)\n"
           "Torrents (the same bytes as `s3torrent create` with these options):\n"
           "    -o trackers=URL\\,URL   announce URLs (default: $TRACKERS, else built-in)\n"
           "    -o webseed=BASE        web seed base (default: $WEBSEED_BASE)\n"
           "    -o piece_length=SIZE   fixed piece length, a power of two from 16K to 256M\n"
           "                           (default: automatic)\n"
           "    -o meta_version=V      v1 (default), v2 or hybrid\n"
           "    -o private             set the private flag (noprivate: not, whatever the\n"
           "                           config file says)\n"
           "    -o source=S            set the info source field\n"
           "    -o comment=C           set the comment\n"
           "    -o no_date             omit the creation date (default: Last-Modified)\n"
           "Ownership:\n"
           "    -o uid=N -o gid=N      owner of every file (default: the mounting user)\n"
           "    -o umask=OOO           mode mask, octal (default 022)\n"
           "    -o allow_other         let other users in (default_permissions is always on)\n"
           "Reads:\n"
           "    -o read_ahead=SIZE     read-ahead of a sequential reader, at most; it grows\n"
           "                           with the stream (default 32M)\n"
           "    -o block_cache=SIZE    object data held in memory (default 64M)\n"
           "    -o disk_cache=DIR      also keep object data in DIR (made 0700; kept across\n"
           "                           mounts, each file checked before use) (default: none)\n"
           "    -o disk_cache_max=SIZE bytes of DIR's files, at most (default 1G); 5%% of the\n"
           "                           disk (at least 64M) is always left free\n"
           "Warm-up:\n"
           "    -o prefetch_torrents[=N]  make torrents of listed objects in the background,\n"
           "                           N at a time (default off; 2 when given without N)\n"
           "    -o max_generations=N   torrents hashed at once on demand (default 2)\n"
           "Directory torrents:\n"
           "    -o dir_torrents=DEPTH  beside each directory DEPTH levels below the mount's\n"
           "                           root (1: those in the root), a synthetic DIR.torrent:\n"
           "                           the multi-file torrent `s3torrent create\n"
           "                           s3://BUCKET/PREFIX/` makes of the objects below it\n"
           "                           (default 0: none)\n"
           "Metrics (Prometheus text, for node_exporter's textfile collector):\n"
           "    -o metrics_file=PATH   write the mount's counters to PATH (atomically) every\n"
           "                           metrics_interval seconds and at unmount (default off)\n"
           "    -o metrics_interval=SECONDS  (default 15)\n"
           "Running:\n"
           "    -f                     stay in the foreground (logs on stderr)\n"
           "    -d                     debug: foreground, and FUSE's own trace\n"
           "    -s                     single-threaded\n"
           "    -h, --help             this help\n"
           "    -V, --version          the version\n"
           "\n"
           "Any other -o option is passed to FUSE (see fuse(8)). See s3torrentfs(8).\n",
           prog, prog);
}

static void syslog_write(void *arg, int level, const char *line)
{
    (void)arg;
    syslog(level, "%s", line);
}

static int setup(struct fs *fs)
{
    struct fs_config *cfg = &fs->cfg;
    err_t err = {0};
    int rc;
    struct http_opts ho = {.ca_bundle = getenv("AWS_CA_BUNDLE"), .log = &fs->log};
    if (ho.ca_bundle && !*ho.ca_bundle)
        ho.ca_bundle = NULL;
    if ((fs->http = http_client_new(&ho)) == NULL)
        return ENOMEM;
    struct cred_chain_opts co = {.profile = cfg->profile, .http = fs->http};
    if ((fs->creds = cred_chain_new(&co)) == NULL)
        return ENOMEM;
    struct s3_config sc = {
        .endpoint = cfg->endpoint,
        .region = cfg->region,
        .addressing = cfg->addressing,
        .http = fs->http,
        .creds = fs->creds,
    };
    if ((rc = s3_client_new(&sc, &fs->s3, &err))) {
        fprintf(stderr, "s3torrentfs: %s\n", err.msg);
        return rc;
    }
    if ((fs->store = store_s3_new(fs->s3)) == NULL)
        return ENOMEM;

    char defpath[4096];
    if (cfg->cache_path == NULL) {
        if (cache_default_path(defpath, sizeof(defpath)) != 0) {
            fprintf(stderr, "s3torrentfs: no default cache path (set HOME or -o cache=PATH)\n");
            return EINVAL;
        }
        cfg->cache_path = strdup(defpath);
    }
    if ((rc = cache_open(cfg->cache_path, cfg->cache_max, &fs->cache, &err))) {
        fprintf(stderr, "s3torrentfs: %s\n", err.msg);
        return rc;
    }
    struct meta_config mc = {.store = fs->store,
                             .bucket = cfg->bucket,
                             .prefix = cfg->prefix,
                             .max_entries = cfg->max_entries,
                             .log = &fs->log,
                             .live = &fs->live};
    if ((fs->meta = meta_new(&mc)) == NULL)
        return ENOMEM;
    if (cfg->disk_cache) { /* opened here, so that a refusal reaches the terminal */
        struct diskcache_config dc = {.dir = cfg->disk_cache,
                                      .max = cfg->disk_cache_max,
                                      .block_size = BLOCK_SIZE,
                                      .log = &fs->log};
        if ((rc = diskcache_open(&dc, &fs->disk, &err))) {
            fprintf(stderr, "s3torrentfs: %s\n", err.msg);
            return rc;
        }
    }
    return 0;
}

/* Whether mountinfo's field f (spaces, tabs, newlines and backslashes as \ooo) names path. */
static bool mountinfo_is(const char *f, const char *path)
{
    while (*f && *path) {
        char c = *f++;
        if (c == '\\' && f[0] >= '0' && f[0] <= '3' && f[1] >= '0' && f[1] <= '7' && f[2] >= '0' &&
            f[2] <= '7') {
            c = (char)((f[0] - '0') * 64 + (f[1] - '0') * 8 + (f[2] - '0'));
            f += 3;
        }
        if (c != *path++)
            return false;
    }
    return *f == '\0' && *path == '\0';
}

/* Widens the kernel's read-ahead window of the mount at mountpoint to OPS_KERNEL_READAHEAD: a new
 * bdi starts at 128 KiB, and the kernel never sends a read larger than its window, so a
 * sequential reader costs the daemon one request per 128 KiB (docs/DESIGN.md §16). Written before
 * the kernel's INIT is answered, which keeps the smaller of the two (op_init asks for the same).
 * The sysfs file is root's: for other users this logs and leaves the window as it is. */
static void widen_readahead(struct fs *fs, const char *mountpoint)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[8192], dev[32] = "";
    while (f && fgets(line, sizeof(line), f)) {
        char mm[32], point[4096];
        /* ID PARENT MAJOR:MINOR ROOT POINT ...; the last match is the mount on top */
        if (sscanf(line, "%*s %*s %31s %*s %4095s", mm, point) == 2 &&
            mountinfo_is(point, mountpoint))
            snprintf(dev, sizeof(dev), "%s", mm);
    }
    if (f)
        fclose(f);
    if (*dev == '\0') {
        log_msg(&fs->log, LOG_INFO, "read-ahead: %s not in /proc/self/mountinfo", mountpoint);
        return;
    }
    char path[96];
    snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
    FILE *w = fopen(path, "w");
    int ok = w && fprintf(w, "%u\n", OPS_KERNEL_READAHEAD >> 10) > 0;
    if (w && fclose(w) != 0)
        ok = 0;
    if (ok)
        log_msg(&fs->log, LOG_DEBUG, "read-ahead: %s is %u", path, OPS_KERNEL_READAHEAD >> 10);
    else
        log_msg(&fs->log, LOG_INFO,
                "read-ahead: cannot write %s (%s): the kernel reads 128 KiB at a time", path,
                strerror(errno));
}

/* The parts with threads of their own: the block cache's fetchers and the torrent prefetchers.
 * Started once the daemon has detached, as fork keeps only the thread that calls it. */
static int start_workers(struct fs *fs)
{
    const struct fs_config *cfg = &fs->cfg;
    struct tgen_config tc = {.store = fs->store,
                             .bucket = cfg->bucket,
                             .cache = fs->cache,
                             .log = &fs->log,
                             .live = &fs->live,
                             .prefetchers = cfg->prefetch_torrents};
    fs->blocks = blocks_new(fs->store, cfg->bucket, &fs->log, cfg->block_cache, BLOCK_SIZE, 8);
    fs->tgen = tgen_new(&tc);
    struct dirt_config dc = {.store = fs->store,
                             .bucket = cfg->bucket,
                             .cache = fs->cache,
                             .log = &fs->log,
                             .live = &fs->live};
    fs->dirt = dirt_new(&dc);
    if (!fs->blocks || !fs->tgen || !fs->dirt)
        return ENOMEM;
    if (fs->disk)
        blocks_set_disk(fs->blocks, fs->disk);
    return cfg->metrics_file ? fsmetrics_start(fs, cfg->metrics_file, cfg->metrics_interval) : 0;
}

static void teardown(struct fs *fs)
{
    ops_close_all(fs);
    pthread_mutex_destroy(&fs->handles_lock);
    dirt_free(fs->dirt);
    tgen_free(fs->tgen);
    blocks_free(fs->blocks);
    diskcache_free(fs->disk);
    meta_free(fs->meta);
    cache_close(fs->cache);
    store_free(fs->store);
    s3_client_free(fs->s3);
    cred_chain_free(fs->creds);
    http_client_free(fs->http);
    settings_retire_all(&fs->live);
    fs_config_clear(&fs->cfg);
}

int main(int argc, char *argv[])
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_cmdline_opts fo = {0};
    static struct settings_opts cmd, file; /* cmd lives as long as the mount: SIGHUP uses it */
    static struct fs fs; /* owned by main for the whole mount; FUSE keeps a pointer */
    struct fuse *fuse = NULL;
    struct fs_settings *live = NULL;
    const char *config = NULL;
    char *config_abs = NULL;
    err_t err = {0};
    int rc = 1;

    pthread_mutex_init(&fs.handles_lock, NULL);
    lru_init(&fs.handles);
    /* Buffers of a megabyte, the blocks and libfuse's buffer for each read, from the heap and
     * kept there once freed, not mapped afresh by malloc each time: filling a new mapping faults
     * every page, a fifth of the daemon's CPU on a sequential read. Two arenas: with one per
     * thread, each would keep its own freed megabytes (docs/DESIGN.md §16). */
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    mallopt(M_ARENA_MAX, 2);
    if (settings_parse_args(&args, &cmd) != 0)
        return 2;
    if (cmd.show_help) {
        usage(argv[0]);
        rc = 0;
        goto out;
    }
    if (cmd.show_version) {
        printf("s3torrentfs %s (libfuse %s)\n", S3T_VERSION, fuse_pkgversion());
        rc = 0;
        goto out;
    }
    config = cmd.config ? cmd.config : getenv("S3TORRENT_CONFIG");
    if (config && *config == '\0')
        config = NULL;
    /* absolute: the daemon changes to / when it detaches, and SIGHUP rereads the file later */
    if (config && (config_abs = realpath(config, NULL)) == NULL) {
        fprintf(stderr, "s3torrentfs: cannot open config file %s: %s\n", config, strerror(errno));
        goto out;
    }
    config = config_abs;
    if (config && settings_read_file(config, &file, &err) != 0) {
        fprintf(stderr, "s3torrentfs: %s\n", err.msg);
        goto out;
    }
    /* BUCKET[:PREFIX] MOUNTPOINT, or only MOUNTPOINT when the config file names the bucket */
    if (cmd.nnonopt == 0 || (cmd.nnonopt == 1 && !file.bucket && !cmd.bucket)) {
        fprintf(stderr, "usage: %s [options] BUCKET[:PREFIX] MOUNTPOINT (see --help)\n", argv[0]);
        goto out;
    }
    fuse_opt_add_arg(&args, cmd.nonopt[cmd.nnonopt - 1]);
    if (fuse_parse_cmdline(&args, &fo) != 0 || fo.mountpoint == NULL) {
        fprintf(stderr, "usage: %s [options] BUCKET[:PREFIX] MOUNTPOINT (see --help)\n", argv[0]);
        goto out;
    }
    if (settings_resolve(&cmd, &file, &fs.cfg, &live, &err) != 0) {
        fprintf(stderr, "s3torrentfs: %s\n", err.msg);
        goto out;
    }
    settings_publish(&fs.live, live);
    fs.log = log_stderr("s3torrentfs", fo.debug ? LOG_DEBUG : LOG_INFO);
    if (!fo.foreground) {
        openlog("s3torrentfs", LOG_PID, LOG_DAEMON);
        fs.log.write = syslog_write;
    }
    if (setup(&fs) != 0)
        goto out;
    /* read-only, permission checks by the kernel, and the daemon's own name in mtab */
    fuse_opt_add_arg(&args, "-oro,default_permissions");
    char fsname[600];
    snprintf(fsname, sizeof(fsname), "-ofsname=s3torrentfs#%s:%s,subtype=s3torrentfs",
             fs.cfg.bucket, fs.cfg.prefix);
    fuse_opt_add_arg(&args, fsname);

    fuse = fuse_new(&args, &ops_table, sizeof(ops_table), &fs);
    if (fuse == NULL)
        goto out;
    if (fuse_mount(fuse, fo.mountpoint) != 0)
        goto out;
    widen_readahead(&fs, fo.mountpoint);
    if (fuse_daemonize(fo.foreground) != 0) {
        fuse_unmount(fuse);
        goto out;
    }
    /* before the metrics writer starts (libfuse ignores it only later): a metrics_file FIFO
     * whose reader leaves mid-write is an error to log, not a signal that ends the mount */
    signal(SIGPIPE, SIG_IGN);
    if ((rc = start_workers(&fs)) != 0) {
        log_msg(&fs.log, LOG_ERR, "cannot start the worker threads: %s", strerror(rc));
        fuse_unmount(fuse);
        rc = 1;
        goto out;
    }
    struct fuse_session *se = fuse_get_session(fuse);
    if (fuse_set_signal_handlers(se) != 0) {
        fuse_unmount(fuse);
        goto out;
    }
    if ((rc = settings_watch_start(&fs, &cmd, config)) != 0) {
        log_msg(&fs.log, LOG_ERR, "cannot start the SIGHUP watcher: %s", strerror(rc));
        fuse_remove_signal_handlers(se);
        fuse_unmount(fuse);
        rc = 1;
        goto out;
    }
    log_msg(&fs.log, LOG_INFO, "mounted s3://%s/%s on %s", fs.cfg.bucket, fs.cfg.prefix,
            fo.mountpoint);
    if (fo.singlethread) {
        rc = fuse_loop(fuse);
    } else {
        struct fuse_loop_config lc = {.clone_fd = fo.clone_fd, .max_idle_threads = 16};
        rc = fuse_loop_mt(fuse, &lc);
    }
    settings_watch_stop();
    fsmetrics_stop(); /* the last figures */
    fuse_remove_signal_handlers(se);
    fuse_unmount(fuse);
    log_msg(&fs.log, LOG_INFO, "unmounted %s", fo.mountpoint);
    /* libfuse reports the signal that ended the loop: a requested stop, not a failure */
    rc = (rc == 0 || rc == SIGTERM || rc == SIGINT) ? 0 : 1;
out:
    if (fuse)
        fuse_destroy(fuse);
    teardown(&fs);
    free(fo.mountpoint);
    settings_opts_clear(&cmd);
    settings_opts_clear(&file);
    free(config_abs);
    fuse_opt_free_args(&args);
    return rc;
}
