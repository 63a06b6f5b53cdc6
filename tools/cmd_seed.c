/* cmd_seed.c — `s3torrent seed`: hands the torrents of S3 objects to a daemon (Transmission,
 * qBittorrent or Deluge, lib/service/seedc.c), so that it seeds them straight from the
 * s3torrentfs mount. Idempotent. */
#include "cli.h"
#include "s3torrent/metainfo.h"
#include "s3torrent/torrent.h"
#include "s3torrent/trpc.h"
#include "s3torrent/util.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SEED_MAX_OBJECTS 1000000 /* objects one prefix argument may name */

static void usage(FILE *f)
{
    fputs(
        "Usage: s3torrent seed [OPTIONS] --mount-root DIR s3://BUCKET/KEY|s3://BUCKET/PREFIX/ ...\n"
        "\n"
        "Hand the torrents of S3 objects to a BitTorrent daemon (Transmission, qBittorrent or\n"
        "Deluge), so that it seeds them straight from an s3torrentfs mount of the bucket at\n"
        "DIR. A PREFIX/ argument (one ending in '/', or a bare bucket) names every object below "
        "it, at most 1000000, except\n"
        ".torrent keys and zero-byte objects. Each object's torrent is the S3 object KEY.torrent,\n"
        "or when there is none the mount's synthetic DIR/KEY.torrent; the daemon seeds from the\n"
        "object's directory in the mount. An info-hash the daemon has already is reported, not\n"
        "added again. qBittorrent adds with skip_checking and Deluge in seed mode: they start\n"
        "seeding without reading the data; Transmission checks every byte first. Transmission\n"
        "before 4.0 takes no v2 or hybrid torrent (refused here, before adding). One line per\n"
        "object: added, already seeding, skipped, or failed: why.\n"
        "\n" CLI_SEED_HELP
        "  -m, --mount-root DIR       where s3torrentfs mounts the bucket (required)\n"
        "      --mount-prefix P       the mount shows s3://BUCKET/P as DIR (default: the whole\n"
        "                             bucket, as with s3torrentfs BUCKET:P)\n"
        "      --json                 print one JSON object per line instead\n"
        "  -h, --help                 show this help\n"
        "\n" CLI_S3_HELP "\n"
        "Exit status: 0 when every object was added, already seeding or skipped; 1 when one\n"
        "failed; 2 for a usage error.\n",
        f);
}

struct seed_ctx {
    struct s3_client *s3;
    struct seedc *client;
    const char *root;   /* the mount root, absolute */
    const char *prefix; /* the mount's prefix, "" or ending in '/' */
    bool json;
    unsigned failed;
};

/* Reports one object: status is "added", "already seeding", "skipped" or "failed". */
static void report(struct seed_ctx *x, const char *bucket, const char *key, const char *status,
                   const struct seedc_result *res, const char *from, const char *why)
{
    if (x->json) {
        json_object *o = json_object_new_object();
        size_t n = strlen(bucket) + strlen(key) + 7;
        char *uri = malloc(n);
        if (uri)
            snprintf(uri, n, "s3://%s/%s", bucket, key);
        json_object_object_add(o, "uri", json_object_new_string(uri ? uri : key));
        free(uri);
        json_object_object_add(o, "status", json_object_new_string(status));
        if (res) {
            json_object_object_add(o, "info_hash", json_object_new_string(res->info_hash));
            json_object_object_add(o, "client",
                                   json_object_new_string(seedc_kind_name(seedc_kind(x->client))));
            if (seedc_kind(x->client) == SEEDC_TRANSMISSION)
                json_object_object_add(o, "id", json_object_new_int64(strtoll(res->id, NULL, 10)));
            else
                json_object_object_add(o, "id", json_object_new_string(res->id));
            json_object_object_add(o, "name", json_object_new_string(res->name));
            json_object_object_add(o, "download_dir", json_object_new_string(res->download_dir));
            json_object_object_add(o, "torrent_from", json_object_new_string(from));
        }
        if (why)
            json_object_object_add(o, strcmp(status, "failed") == 0 ? "error" : "reason",
                                   json_object_new_string(why));
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    } else {
        printf("s3://%s/", bucket);
        cli_print_escaped(stdout, key);
        printf(": %s", status);
        if (res && seedc_kind(x->client) == SEEDC_TRANSMISSION)
            printf(" (info-hash %s, Transmission id %s, torrent from %s)", res->info_hash, res->id,
                   from);
        else if (res)
            printf(" (info-hash %s, %s, torrent from %s)", res->info_hash,
                   seedc_kind_name(seedc_kind(x->client)), from);
        if (why) {
            /* messages of the S3 client may start with the object's URI: said already */
            size_t bl = strlen(bucket), kl = strlen(key);
            if (strncmp(why, "s3://", 5) == 0 && strncmp(why + 5, bucket, bl) == 0 &&
                why[5 + bl] == '/' && strncmp(why + 6 + bl, key, kl) == 0 &&
                strncmp(why + 6 + bl + kl, ": ", 2) == 0)
                why += 8 + bl + kl;
            fputs(": ", stdout);
            cli_print_escaped(stdout, why);
        }
        putchar('\n');
    }
    fflush(stdout);
}

/* Reads the torrent of bucket/key: the S3 object key.torrent, else the mount's synthetic
 * torrent at path. *from says which. Returns 0 with *m set, or an errno with err set. */
static int load_torrent(struct seed_ctx *x, const char *bucket, const char *key, const char *path,
                        struct metainfo **m, const char **from, err_t *err)
{
    struct buf tk, tb;
    int rc;
    buf_init(&tk, 1u << 20);
    buf_init(&tb, TORRENT_MAX_SIZE);
    *m = NULL;
    if (buf_printf(&tk, "%s.torrent", key) != 0 || buf_put(&tk, "", 1) != 0) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    rc = s3_get_all(x->s3, bucket, (const char *)tk.data, NULL, &tb, err);
    if (rc == 0) {
        *from = "s3";
        if ((rc = metainfo_parse(tb.data, tb.len, m, err)))
            err_prefix(err, "s3://%s/%s", bucket, (const char *)tk.data);
    } else if (rc == ENOENT) {
        /* no materialized torrent: the mount makes one (hashing the object on first read) */
        err_clear(err);
        *from = "mount";
        rc = metainfo_load(path, m, err);
    }
out:
    buf_free(&tk);
    buf_free(&tb);
    return rc;
}

/* Seeds one object of size bytes. Reports it; counts a failure in x. */
static void seed_object(struct seed_ctx *x, const char *bucket, const char *key, uint64_t size)
{
    struct metainfo *m = NULL;
    struct seedc_result res;
    const char *from = NULL;
    char file[PATH_MAX], tpath[PATH_MAX], dir[PATH_MAX];
    err_t err = {0};
    size_t plen = strlen(x->prefix);
    struct stat st;

    if (size == 0) {
        report(x, bucket, key, "skipped", NULL, NULL, "zero-byte object, nothing to share");
        goto out;
    }
    size_t klen = strlen(key);
    if (klen >= 8 && strcmp(key + klen - 8, ".torrent") == 0) {
        report(x, bucket, key, "skipped", NULL, NULL, "a .torrent key gets no torrent of its own");
        goto out;
    }
    if (strncmp(key, x->prefix, plen) != 0) {
        err_set(&err, EINVAL, "not under the mount's prefix '%s'", x->prefix);
        goto fail;
    }
    const char *rel = key + plen, *slash = strrchr(rel, '/');
    int dn = slash ? (int)(slash - rel) : 0;
    if ((size_t)snprintf(file, sizeof(file), "%s/%s", x->root, rel) >= sizeof(file) ||
        (size_t)snprintf(tpath, sizeof(tpath), "%s/%s.torrent", x->root, rel) >= sizeof(tpath) ||
        (size_t)snprintf(dir, sizeof(dir), "%s%s%.*s", x->root, dn ? "/" : "", dn, rel) >=
            sizeof(dir)) {
        err_set(&err, ENAMETOOLONG, "its path in the mount is too long");
        goto fail;
    }
    /* the mount must show this very object, or the daemon would check other bytes */
    if (stat(file, &st) != 0) {
        int e = errno;
        err_set(&err, e, "%s: %s (is s3://%s/%s mounted at %s?)", file, strerror(e), bucket,
                x->prefix, x->root);
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
        err_set(&err, ESTALE, "%s is not the object (%llu bytes in the mount, %llu in S3)", file,
                (unsigned long long)st.st_size, (unsigned long long)size);
        goto fail;
    }
    if (load_torrent(x, bucket, key, tpath, &m, &from, &err) != 0)
        goto fail;
    const char *base = slash ? slash + 1 : rel;
    if (m->multi || strcmp(m->name, base) != 0 || m->total_size != size) {
        err_set(&err, EINVAL,
                "the torrent (from %s) is not for this object: it names '%.200s' of %llu "
                "bytes",
                from, m->name, (unsigned long long)m->total_size);
        goto fail;
    }
    if (seedc_seed(x->client, m->raw, m->raw_len, dir, &res, &err) != 0)
        goto fail;
    report(x, bucket, key, res.added ? "added" : "already seeding", &res, from, NULL);
    goto out;
fail:
    x->failed++;
    report(x, bucket, key, "failed", NULL, NULL, err.msg);
out:
    metainfo_free(m);
}

struct listed {
    char **keys;
    uint64_t *sizes;
    size_t n, cap;
};

static int on_listed(void *ctx, const struct s3xml_object *o, err_t *err)
{
    struct listed *l = ctx;
    if (o->size == 0 || (o->key_len >= 8 && strcmp(o->key + o->key_len - 8, ".torrent") == 0))
        return 0;
    if (l->n == SEED_MAX_OBJECTS)
        return err_set(err, EFBIG, "more than %d objects", SEED_MAX_OBJECTS);
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **k = realloc(l->keys, cap * sizeof(*k));
        if (k == NULL)
            return err_set(err, ENOMEM, "out of memory");
        l->keys = k;
        uint64_t *s = realloc(l->sizes, cap * sizeof(*s));
        if (s == NULL)
            return err_set(err, ENOMEM, "out of memory");
        l->sizes = s;
        l->cap = cap;
    }
    if ((l->keys[l->n] = strdup(o->key)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    l->sizes[l->n++] = o->size;
    return 0;
}

/* Seeds every object below prefix (listed first: a seed may take long, a listing should not
 * wait for it). */
static void seed_prefix(struct seed_ctx *x, const char *bucket, const char *prefix)
{
    struct listed l = {0};
    err_t err = {0};
    /* objects outside the mount cannot be seeded from it: list only what both cover */
    const char *list = prefix;
    if (strncmp(x->prefix, prefix, strlen(prefix)) == 0)
        list = x->prefix;
    else if (strncmp(prefix, x->prefix, strlen(x->prefix)) != 0) {
        err_set(&err, EINVAL, "not under the mount's prefix '%s'", x->prefix);
        goto fail;
    }
    struct s3xml_list_opts lo = {.on_object = on_listed, .ctx = &l};
    if (s3_list(x->s3, bucket, list, NULL, &lo, &err) != 0)
        goto fail;
    if (l.n == 0)
        fprintf(stderr, "s3torrent: s3://%s/%s: no objects to seed\n", bucket, list);
    for (size_t i = 0; i < l.n; i++)
        seed_object(x, bucket, l.keys[i], l.sizes[i]);
    goto out;
fail:
    x->failed++;
    report(x, bucket, prefix, "failed", NULL, NULL, err.msg);
out:
    for (size_t i = 0; i < l.n; i++)
        free(l.keys[i]);
    free(l.keys);
    free(l.sizes);
}

int cli_seed_connect(const struct cli_seed_opts *o, struct http_client *http, struct seedc **out,
                     err_t *err)
{
    /* the credentials come from the environment only: never an option, which ps shows */
    static const char *const vars[][3] = {
        [SEEDC_TRANSMISSION] = {"TRANSMISSION_RPC_URL", "TRANSMISSION_RPC_USERNAME",
                                "TRANSMISSION_RPC_PASSWORD"},
        [SEEDC_QBITTORRENT] = {"QBITTORRENT_URL", "QBITTORRENT_USERNAME", "QBITTORRENT_PASSWORD"},
        [SEEDC_DELUGE] = {"DELUGE_WEB_URL", NULL, "DELUGE_WEB_PASSWORD"},
    };
    const char *user = vars[o->kind][1] ? getenv(vars[o->kind][1]) : NULL;
    const char *pass = getenv(vars[o->kind][2]);
    struct seedc_config sc = {
        .kind = o->kind,
        .url = o->url && *o->url ? o->url : getenv(vars[o->kind][0]),
        .username = user && *user ? user : NULL,
        .password = pass && (*pass || o->kind != SEEDC_DELUGE) ? pass : NULL,
        .category = o->category,
        .tags = o->tags,
        .http = http,
    };
    return seedc_connect(&sc, out, err);
}

int cli_seed_option(struct cli_seed_opts *o, int c, const char *arg)
{
    switch (c) {
    case 'C':
        if (seedc_kind_parse(arg, &o->kind) != 0)
            return cli_error(CLI_USAGE, "--client must be " SEEDC_KINDS ", not '%s'", arg);
        return 0;
    case 'r':
        o->url = arg;
        return 0;
    case CLI_OPT_CATEGORY:
        o->category = arg;
        return 0;
    case CLI_OPT_TAGS:
        o->tags = arg;
        return 0;
    default:
        return -1;
    }
}

int cli_seed_check(const struct cli_seed_opts *o)
{
    if ((o->category || o->tags) && o->kind != SEEDC_QBITTORRENT)
        return cli_error(CLI_USAGE, "--category and --tags go with --client qbittorrent");
    return 0;
}

/* Normalises a mount prefix to "" or "p/": the form s3torrentfs BUCKET:PREFIX uses. */
int cmd_seed(int argc, char **argv)
{
    enum { OPT_MOUNT_PREFIX = 1, OPT_JSON };
    static const struct option opts[] = {
        CLI_SEED_OPTIONS,
        {"mount-root", required_argument, NULL, 'm'},
        {"mount-prefix", required_argument, NULL, OPT_MOUNT_PREFIX},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        CLI_S3_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli_s3 g = {0};
    struct seed_ctx x = {0};
    struct cli_seed_opts so = {0};
    const char *mount_root = NULL, *mount_prefix = "";
    char *root = NULL, *prefix = NULL, **buckets = NULL, **keys = NULL;
    int c, rc = CLI_FAIL, nargs = 0;
    err_t err = {0};
    optind = 1;
    while ((c = getopt_long(argc, argv, "C:r:m:h", opts, NULL)) != -1) {
        int taken = cli_seed_option(&so, c, optarg);
        if (taken > 0)
            return taken;
        if (taken == 0)
            continue;
        switch (c) {
        case 'm':
            mount_root = optarg;
            break;
        case OPT_MOUNT_PREFIX:
            mount_prefix = optarg;
            break;
        case OPT_JSON:
            x.json = true;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            if (cli_s3_option(&g, c, optarg))
                break;
            usage(stderr);
            return CLI_USAGE;
        }
    }
    if (cli_seed_check(&so) != 0)
        return CLI_USAGE;
    if (mount_root == NULL)
        return cli_error(CLI_USAGE, "seed needs --mount-root DIR (see s3torrent seed --help)");
    if (optind >= argc)
        return cli_error(CLI_USAGE,
                         "seed needs at least one s3://BUCKET/KEY (see s3torrent seed --help)");
    nargs = argc - optind;
    buckets = calloc((size_t)nargs, sizeof(*buckets));
    keys = calloc((size_t)nargs, sizeof(*keys));
    if (buckets == NULL || keys == NULL) {
        rc = cli_error(CLI_FAIL, "out of memory");
        goto out;
    }
    for (int i = 0; i < nargs; i++) {
        if (s3_parse_uri(argv[optind + i], &buckets[i], &keys[i], &err) != 0) {
            rc = cli_error(CLI_USAGE, "%s", err.msg);
            goto out;
        }
    }
    if ((root = realpath(mount_root, NULL)) == NULL) {
        int e = errno;
        rc = cli_error(CLI_USAGE, "--mount-root %s: %s", mount_root, strerror(e));
        goto out;
    }
    if ((prefix = cli_mount_prefix(mount_prefix)) == NULL) {
        rc = cli_error(CLI_FAIL, "out of memory");
        goto out;
    }
    x.root = root;
    x.prefix = prefix;
    if (cli_s3_connect(&g, &x.s3, &err) != 0) {
        rc = cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
    int e = cli_seed_connect(&so, g.http, &x.client, &err);
    if (e != 0) {
        /* EINVAL: a malformed --rpc URL or over-long credentials, nothing was tried */
        rc = cli_error(e == EINVAL ? CLI_USAGE : CLI_FAIL, "%s", err.msg);
        goto out;
    }
    log_msg(&g.log, LOG_DEBUG, "%s %s at %s", seedc_kind_name(so.kind), seedc_version(x.client),
            seedc_url(x.client));
    for (int i = 0; i < nargs; i++) {
        size_t kl = strlen(keys[i]);
        if (kl == 0 || keys[i][kl - 1] == '/') {
            seed_prefix(&x, buckets[i], keys[i]);
            continue;
        }
        struct s3_object obj;
        if (s3_head(x.s3, buckets[i], keys[i], &obj, &err) != 0) {
            x.failed++;
            report(&x, buckets[i], keys[i], "failed", NULL, NULL, err.msg);
            continue;
        }
        seed_object(&x, buckets[i], keys[i], obj.size);
    }
    rc = x.failed ? CLI_FAIL : CLI_OK;
out:
    for (int i = 0; i < nargs && buckets && keys; i++) {
        free(buckets[i]);
        free(keys[i]);
    }
    free(buckets);
    free(keys);
    free(root);
    free(prefix);
    seedc_free(x.client);
    cli_s3_close(&g);
    return rc;
}
