/* main.c — s3torrentfs: mounts BUCKET[:PREFIX] read-only, every object beside its synthetic
 * .torrent. Parses the -o options into struct fs_config, builds the shared state, runs FUSE. */
#include "blocks.h"
#include "fs.h"
#include "meta.h"
#include "ops.h"
#include "torrents.h"

#include "s3torrent/config.h"
#include "s3torrent/cred.h"
#include "s3torrent/version.h"

#include <errno.h>
#include <signal.h>
#include <fuse_lowlevel.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define BLOCK_SIZE (1u << 20)

struct cmdline {
    struct fs_config cfg;
    char *piece_length, *cache_max, *read_ahead, *block_cache, *umask_s;
    int show_help, show_version, prefetch_flag;
    char *source_arg; /* BUCKET[:PREFIX] */
    unsigned nonopt;
};

#define OPT(t, p) {t, offsetof(struct cmdline, p), 1}
static const struct fuse_opt opt_spec[] = {
    OPT("endpoint=%s", cfg.endpoint),
    OPT("region=%s", cfg.region),
    OPT("profile=%s", cfg.profile),
    OPT("path_style", cfg.path_style),
    OPT("cache=%s", cfg.cache_path),
    OPT("cache_max=%s", cache_max),
    OPT("ttl=%lf", cfg.ttl),
    OPT("negative_ttl=%lf", cfg.negative_ttl),
    OPT("trackers=%s", cfg.trackers),
    OPT("webseed=%s", cfg.webseed),
    OPT("piece_length=%s", piece_length),
    OPT("meta_version=%s", cfg.meta_version),
    OPT("private", cfg.private_),
    OPT("source=%s", cfg.source),
    OPT("uid=%u", cfg.uid),
    OPT("uid=", cfg.uid_set),
    OPT("gid=%u", cfg.gid),
    OPT("gid=", cfg.gid_set),
    OPT("umask=%s", umask_s),
    OPT("read_ahead=%s", read_ahead),
    OPT("block_cache=%s", block_cache),
    OPT("prefetch_torrents=%u", cfg.prefetch_torrents),
    OPT("prefetch_torrents", prefetch_flag),
    OPT("max_generations=%u", cfg.max_generations),
    OPT("-h", show_help),
    OPT("--help", show_help),
    OPT("-V", show_version),
    OPT("--version", show_version),
    FUSE_OPT_END,
};

static void usage(const char *prog)
{
    printf("Usage: %s [options] BUCKET[:PREFIX] MOUNTPOINT\n"
           "\n"
           "Mounts an S3 bucket (or a prefix of it) read-only. Beside every object k is a\n"
           "synthetic k.torrent, made on first read by hashing k streamed from S3 and kept in\n"
           "a sqlite cache. From fstab: BUCKET:PREFIX /mnt fuse.s3torrentfs ro,_netdev,... 0 0\n"
           "\n"
           "S3 access (credentials from the AWS chain: environment, shared files, ECS, IMDS):\n"
           "    -o endpoint=URL        S3 endpoint (default: $AWS_ENDPOINT_URL_S3,\n"
           "                           $AWS_ENDPOINT_URL, else AWS for the region)\n"
           "    -o region=R            region (default: $AWS_REGION, else us-east-1)\n"
           "    -o profile=P           credentials profile\n"
           "    -o path_style          path-style requests (automatic for custom endpoints)\n"
           "Cache:\n"
           "    -o cache=PATH          torrent cache database (default:\n"
           "                           $XDG_CACHE_HOME/s3torrent/torrents.db, for root\n"
           "                           /var/cache/s3torrent/torrents.db)\n"
           "    -o cache_max=SIZE      cache budget, least recently used evicted (default 1G)\n"
           "Metadata freshness:\n"
           "    -o ttl=SECONDS         listings and attributes (default 60)\n"
           "    -o negative_ttl=SECONDS  how long a missing name stays missing (default 5)\n"
           "Torrents (DESIGN: the same bytes as `s3torrent create` with these options):\n"
           "    -o trackers=URL\\,URL   announce URLs (default: $TRACKERS, else built-in)\n"
           "    -o webseed=BASE        web seed base (default: $WEBSEED_BASE)\n"
           "    -o piece_length=SIZE   fixed piece length (default: automatic)\n"
           "    -o meta_version=V      v1 (default), v2 or hybrid\n"
           "    -o private             set the private flag\n"
           "    -o source=S            set the info source field\n"
           "Ownership:\n"
           "    -o uid=N -o gid=N      owner of every file (default: the mounting user)\n"
           "    -o umask=OOO           mode mask, octal (default 022)\n"
           "    -o allow_other         let other users in (default_permissions is always on)\n"
           "Reads:\n"
           "    -o read_ahead=SIZE     read-ahead of sequential readers (default 32M)\n"
           "    -o block_cache=SIZE    object data held in memory (default 64M)\n"
           "Warm-up:\n"
           "    -o prefetch_torrents[=N]  make torrents of listed objects in the background,\n"
           "                           N at a time (default off; 2 when given without N)\n"
           "    -o max_generations=N   torrents hashed at once on demand (default 2)\n"
           "Running:\n"
           "    -f                     stay in the foreground (logs on stderr)\n"
           "    -d                     debug: foreground, and FUSE's own trace\n"
           "    -s                     single-threaded\n"
           "    -h, --help             this help\n"
           "    -V, --version          the version\n"
           "\n"
           "Any other -o option is passed to FUSE (see fuse(8)). See s3torrentfs(8).\n",
           prog);
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    struct cmdline *c = data;
    (void)outargs;
    if (key == FUSE_OPT_KEY_NONOPT && c->nonopt++ == 0) {
        c->source_arg = strdup(arg);
        return 0; /* consumed: the mount point stays for FUSE */
    }
    return 1;
}

static int parse_size(const char *name, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1ull << 10; end++; break;
    case 'm': case 'M': mult = 1ull << 20; end++; break;
    case 'g': case 'G': mult = 1ull << 30; end++; break;
    default: break;
    }
    if (*end == 'i')
        end++;
    if (*end == 'B')
        end++;
    if (errno || end == s || *end || v > UINT64_MAX / mult) {
        fprintf(stderr, "s3torrentfs: -o %s=%s is not a size\n", name, s);
        return EINVAL;
    }
    *out = v * mult;
    return 0;
}

static void syslog_write(void *arg, int level, const char *line)
{
    (void)arg;
    syslog(level, "%s", line);
}

static int setup(struct fs *fs, struct cmdline *c)
{
    struct fs_config *cfg = &fs->cfg;
    err_t err = {0};
    int rc;
    char *colon = strchr(c->source_arg, ':');
    if (colon) {
        *colon = '\0';
        const char *p = colon + 1;
        size_t n = strlen(p);
        while (n > 0 && p[0] == '/') {
            p++;
            n--;
        }
        if ((cfg->prefix = malloc(n + 2)) == NULL)
            return ENOMEM;
        snprintf(cfg->prefix, n + 2, "%s%s", p, n > 0 && p[n - 1] != '/' ? "/" : "");
    } else {
        cfg->prefix = strdup("");
    }
    cfg->bucket = c->source_arg;
    c->source_arg = NULL;

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
        .path_style = cfg->path_style,
        .http = fs->http,
        .creds = fs->creds,
    };
    if ((rc = s3_client_new(&sc, &fs->s3, &err))) {
        fprintf(stderr, "s3torrentfs: %s\n", err.msg);
        return rc;
    }

    /* the torrent recipe: the same options, and so the same bytes, as s3torrent create */
    struct torrent_recipe *r = &fs->recipe;
    r->meta = TORRENT_V1;
    if (cfg->meta_version && torrent_parse_meta(cfg->meta_version, &r->meta) != 0) {
        fprintf(stderr, "s3torrentfs: -o meta_version must be v1, v2 or hybrid\n");
        return EINVAL;
    }
    r->piece_length = cfg->piece_length;
    const char *tr = cfg->trackers ? cfg->trackers : getenv("TRACKERS");
    if (tr && *tr) {
        r->ntrackers = config_split_list(tr, &fs->trackers);
        r->trackers = (const char *const *)fs->trackers;
    } else {
        r->trackers = config_default_trackers;
        r->ntrackers = config_default_ntrackers;
    }
    r->webseed_base = cfg->webseed ? cfg->webseed : getenv("WEBSEED_BASE");
    if (r->webseed_base && !*r->webseed_base)
        r->webseed_base = NULL;
    r->private_ = cfg->private_;
    r->source = cfg->source;
    torrent_recipe_fingerprint(r, fs->fingerprint);

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
    fs->meta = meta_new(fs);
    fs->blocks = blocks_new(fs, cfg->block_cache, BLOCK_SIZE, 8);
    fs->tgen = tgen_new(fs);
    if (!fs->meta || !fs->blocks || !fs->tgen)
        return ENOMEM;
    return 0;
}

static void teardown(struct fs *fs)
{
    tgen_free(fs->tgen);
    blocks_free(fs->blocks);
    meta_free(fs->meta);
    cache_close(fs->cache);
    s3_client_free(fs->s3);
    cred_chain_free(fs->creds);
    http_client_free(fs->http);
    free(fs->trackers);
    struct fs_config *c = &fs->cfg;
    free(c->bucket);
    free(c->prefix);
    free(c->endpoint);
    free(c->region);
    free(c->profile);
    free(c->cache_path);
    free(c->trackers);
    free(c->webseed);
    free(c->meta_version);
    free(c->source);
}

int main(int argc, char *argv[])
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_cmdline_opts fo = {0};
    struct cmdline c = {0};
    static struct fs fs; /* owned by main for the whole mount; FUSE keeps a pointer */
    struct fuse *fuse = NULL;
    int rc = 1;

    c.cfg.ttl = 60;
    c.cfg.negative_ttl = 5;
    c.cfg.umask = 022;
    c.cfg.max_generations = 2;
    c.cfg.max_entries = 300000;
    c.cfg.read_ahead = 32u << 20;
    c.cfg.block_cache = 64u << 20;
    c.cfg.cache_max = 1ull << 30;
    c.cfg.prefetch_torrents = 0;
    if (fuse_opt_parse(&args, &c, opt_spec, opt_proc) != 0)
        return 2;
    if (c.show_help) {
        usage(argv[0]);
        fuse_opt_free_args(&args);
        return 0;
    }
    if (c.show_version) {
        printf("s3torrentfs %s (libfuse %s)\n", S3T_VERSION, fuse_pkgversion());
        fuse_opt_free_args(&args);
        return 0;
    }
    if (fuse_parse_cmdline(&args, &fo) != 0 || c.source_arg == NULL || fo.mountpoint == NULL) {
        fprintf(stderr, "usage: %s [options] BUCKET[:PREFIX] MOUNTPOINT (see --help)\n", argv[0]);
        goto out;
    }
    if (c.prefetch_flag && c.cfg.prefetch_torrents == 0)
        c.cfg.prefetch_torrents = 2; /* -o prefetch_torrents without a number */
    if ((c.cache_max && parse_size("cache_max", c.cache_max, &c.cfg.cache_max)) ||
        (c.read_ahead && parse_size("read_ahead", c.read_ahead, &c.cfg.read_ahead)) ||
        (c.block_cache && parse_size("block_cache", c.block_cache, &c.cfg.block_cache)) ||
        (c.piece_length && parse_size("piece_length", c.piece_length, &c.cfg.piece_length)))
        goto out;
    if (c.umask_s) {
        char *end;
        unsigned long m = strtoul(c.umask_s, &end, 8);
        if (*end || m > 0777) {
            fprintf(stderr, "s3torrentfs: -o umask=%s is not an octal mask\n", c.umask_s);
            goto out;
        }
        c.cfg.umask = (unsigned)m;
    }
    if (!c.cfg.uid_set)
        c.cfg.uid = getuid();
    if (!c.cfg.gid_set)
        c.cfg.gid = getgid();
    if (c.cfg.ttl < 0 || c.cfg.negative_ttl < 0) {
        fprintf(stderr, "s3torrentfs: ttl and negative_ttl must not be negative\n");
        goto out;
    }
    fs.cfg = c.cfg;
    fs.log = log_stderr("s3torrentfs", fo.debug ? LOG_DEBUG : LOG_INFO);
    if (!fo.foreground) {
        openlog("s3torrentfs", LOG_PID, LOG_DAEMON);
        fs.log.write = syslog_write;
    }
    if (setup(&fs, &c) != 0)
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
    if (fuse_daemonize(fo.foreground) != 0) {
        fuse_unmount(fuse);
        goto out;
    }
    struct fuse_session *se = fuse_get_session(fuse);
    if (fuse_set_signal_handlers(se) != 0) {
        fuse_unmount(fuse);
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
    fuse_remove_signal_handlers(se);
    fuse_unmount(fuse);
    log_msg(&fs.log, LOG_INFO, "unmounted %s", fo.mountpoint);
    /* libfuse reports the signal that ended the loop: a requested stop, not a failure */
    rc = (rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP) ? 0 : 1;
out:
    if (fuse)
        fuse_destroy(fuse);
    teardown(&fs);
    free(fo.mountpoint);
    free(c.source_arg);
    free(c.piece_length);
    free(c.cache_max);
    free(c.read_ahead);
    free(c.block_cache);
    free(c.umask_s);
    fuse_opt_free_args(&args);
    return rc;
}
