/* cmd_create.c — `s3torrent create`: hash a file or an S3 object into a .torrent. */
#include "cache.h"
#include "cli.h"
#include "s3torrent/maker.h"
#include "s3torrent/metainfo.h"
#include "s3torrent/s3.h"
#include "s3torrent/store.h"
#include "s3torrent/torrent.h"
#include "s3torrent/util.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    fputs("Usage: s3torrent create [OPTIONS] FILE|DIR|s3://BUCKET/KEY|s3://BUCKET/PREFIX/\n"
          "\n"
          "Hash a local file, or an S3 object streamed through parallel ranged GETs (no\n"
          "temporary file), and write its torrent. A directory makes one multi-file torrent\n"
          "named after it, of every regular file below it (dot-files and empty files included;\n"
          "symbolic links and empty directories left out), in the order of their paths. A\n"
          "prefix (a URI ending in '/'; s3://BUCKET/ is the whole bucket) makes the same\n"
          "torrent of every object below it, named after its last segment: zero-byte objects\n"
          "are empty files; directory markers, keys that cannot be paths (an empty, '.' or\n"
          "'..' segment, one over 255 bytes) and a key that is also a directory of others are\n"
          "left out, each with a warning. An object changed while hashed fails the torrent.\n"
          "\n" CLI_RECIPE_HELP "\n"
          "Directories and prefixes:\n"
          "      --include PATTERN      keep only files whose path below DIR (or the prefix)\n"
          "                             matches PATTERN (fnmatch(3), '*' matches '/' too);\n"
          "                             repeat for more\n"
          "      --exclude PATTERN      leave out files and directories whose path below DIR\n"
          "                             (or the prefix) matches PATTERN; repeat for more\n"
          "      --cache PATH           prefixes: the torrent cache shared with s3torrentfs and\n"
          "                             sync (default: the mount's, see s3torrentfs(8)); a v2,\n"
          "                             hybrid or padded v1 torrent takes each object's hashes\n"
          "                             from its single-file torrent's entry at the same piece\n"
          "                             length, reading no byte of it, and leaves theirs there.\n"
          "                             s3://BUCKET/KEY: only when given, the object's hashes\n"
          "                             from and into that cache\n"
          "      --no-cache             prefixes: read every object, store nothing locally\n"
          "      --pad                  v1: BEP 47 pad files after every file, so each starts a\n"
          "                             piece (v2 and hybrid always have them; plain v1 equals\n"
          "                             mktorrent's and transmission-create's)\n"
          "\n"
          "Output:\n"
          "  -n, --name N               torrent name (default: the last segment of the key or\n"
          "                             prefix, the file's or directory's name)\n"
          "  -j, --threads N            hashing threads (default: all cores; for S3, 4 ranged\n"
          "                             GETs in flight at first, one more while each added\n"
          "                             one raises the throughput, up to 16; with N, N)\n"
          "  -o, --output OUT           write to OUT, '-' for stdout (default: NAME.torrent)\n"
          "  -f, --force                overwrite OUT if it exists\n"
          "      --json                 print info-hashes, piece length, piece count and size\n"
          "                             as JSON on stdout\n"
          "  -h, --help                 show this help\n"
          "\n" CLI_S3_HELP,
          f);
}

enum { OPT_JSON = 256, OPT_INCLUDE, OPT_EXCLUDE, OPT_PAD, OPT_CACHE, OPT_NO_CACHE };

#define MAX_PATTERNS 256

static void print_json(const char *name, const char *out, const struct metainfo *m,
                       const struct torrent_opts *to, const struct buf *tb, const uint8_t *ih1,
                       const uint8_t *ih2)
{
    char hex[65];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "output", json_object_new_string(out));
    json_object_object_add(o, "size", json_object_new_int64((int64_t)m->total_size));
    json_object_object_add(o, "piece_length", json_object_new_int64((int64_t)m->piece_length));
    json_object_object_add(o, "piece_count", json_object_new_int64((int64_t)m->npieces));
    size_t nfiles = 0;
    for (size_t i = 0; i < m->nfiles; i++)
        nfiles += !m->files[i].pad;
    json_object_object_add(o, "file_count", json_object_new_int64((int64_t)nfiles));
    json_object_object_add(o, "meta_version", json_object_new_string(torrent_meta_name(to->meta)));
    if (to->meta & TORRENT_V1)
        json_object_object_add(o, "info_hash", json_object_new_string(util_hex(ih1, 20, hex)));
    if (to->meta & TORRENT_V2)
        json_object_object_add(o, "info_hash_v2", json_object_new_string(util_hex(ih2, 32, hex)));
    json_object_object_add(o, "torrent_size", json_object_new_int64((int64_t)tb->len));
    /* with the torrent itself on stdout, the summary goes to stderr */
    FILE *jf = strcmp(out, "-") == 0 ? stderr : stdout;
    fprintf(jf, "%s\n",
            json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

/* Writes the torrent in tb to out (NULL: NAME.torrent) and prints the --json summary. Returns
 * an exit code. */
static int write_out(const char *name, const char *out, bool force, bool json,
                     const struct torrent_opts *to, const struct buf *tb, const uint8_t *ih1,
                     const uint8_t *ih2)
{
    char *outpath = NULL;
    struct metainfo *m = NULL;
    err_t err = {0};
    int rc = CLI_FAIL;
    if (out == NULL) {
        size_t n = strlen(name) + sizeof(".torrent");
        if ((outpath = malloc(n)) == NULL) {
            cli_error(CLI_FAIL, "out of memory");
            goto out;
        }
        snprintf(outpath, n, "%s.torrent", name);
        out = outpath;
    }
    if (cli_write_output(out, tb->data, tb->len, force) != 0)
        goto out;
    if (json) {
        if (metainfo_parse(tb->data, tb->len, &m, &err) != 0) {
            cli_error(CLI_FAIL, "%s", err.msg);
            goto out;
        }
        print_json(name, out, m, to, tb, ih1, ih2);
    }
    rc = CLI_OK;
out:
    metainfo_free(m);
    free(outpath);
    return rc;
}

/* A multi-file torrent of a directory's files or a prefix's objects (docs/DESIGN.md §3). ws_key:
 * for a prefix, the path the web seed's directory URL is made from (NULL: BASE/). mk: for a
 * prefix (bucket/prefix, ending in '/' or ""), the maker; NULL for a directory. */
static int create_set(struct source_dir *dir, const char *name, struct cli_recipe *rec,
                      const char *ws_key, const struct maker *mk, const char *bucket,
                      const char *prefix, bool pad, unsigned threads, const char *out, bool force,
                      bool json)
{
    struct torrent_opts to;
    struct buf tb;
    char *ws = NULL;
    err_t err = {0};
    int rc = CLI_FAIL;
    buf_init(&tb, (size_t)1 << 30);
    if (name == NULL)
        name = dir->name;
    if (torrent_check_name(name, &err) != 0) {
        cli_error(CLI_FAIL, "%s: %s (use --name)", dir->display, err.msg);
        goto out;
    }
    struct cli_progress prog;
    cli_progress_init(&prog, "hashing");
    struct maker_files mf = {mk, dir->parts};
    struct maker_set ms = {ws_key, mk ? &mf : NULL, bucket,          prefix,
                           pad,    threads,         cli_progress_cb, &prog};
    uint8_t ih1[20], ih2[32];
    int hr = maker_make_set(&ms, dir, name, &rec->b.r, &tb, ih1, ih2, &err);
    cli_progress_end(&prog);
    if (hr == ENODATA) {
        /* docs/DESIGN.md §3: as for a zero-byte file, say so, don't fail */
        fprintf(stderr, "s3torrent: %s; no torrent written\n", err.msg);
        rc = CLI_OK;
        goto out;
    }
    if (hr != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
    /* what write_out shows (--json): the options the torrent was made with */
    if (torrent_recipe_opts(&rec->b.r, name, dir->mtime, &to, &ws) != 0) {
        cli_error(CLI_FAIL, "out of memory");
        goto out;
    }
    rc = write_out(name, out, force, json, &to, &tb, ih1, ih2);
out:
    free(ws);
    buf_free(&tb);
    return rc;
}

static void skipped(void *arg, const char *key, const char *why)
{
    fprintf(stderr, "s3torrent: s3://%s/%s: left out: %s\n", (const char *)arg, key, why);
}

/* `create s3://BUCKET/KEY --cache PATH`: the object's hashes from the cache, else hashed (as to
 * says, with its progress) from the version HEAD gave and kept there through the maker
 * (docs/DESIGN.md §13), for the mount, sync and a session of the same piece length to compose
 * from. Returns 0 with *h filled (the caller frees it) or an errno with err set. */
static int hash_object(struct cli_s3 *g, const char *uri, const struct torrent_recipe *r,
                       const struct torrent_opts *to, struct cache *cache, struct hasher_result *h,
                       err_t *err)
{
    struct s3_client *s3;
    struct store *st = NULL;
    struct store_object obj;
    struct maker_cache mcache;
    struct maker_result res;
    struct source *src = NULL;
    struct buf b;
    char *bucket = NULL, *key = NULL;
    int rc;
    buf_init(&b, TORRENT_MAX_SIZE);
    memset(h, 0, sizeof(*h));
    if ((rc = s3_parse_uri(uri, &bucket, &key, err)) || (rc = cli_s3_connect(g, &s3, err)))
        goto out;
    if ((st = store_s3_new(s3)) == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = store_head(st, bucket, key, &obj, NULL, err)))
        goto out;
    cache_as_maker_cache(cache, &mcache);
    struct maker mk = {.store = st, .cache = &mcache, .threads = to->threads, .log = &g->log};
    err_t kerr = {0};
    if (maker_cached(&mk, bucket, key, &obj, r, &b, &res, &kerr) == 0) {
        *h = res.hashes;
        memset(&res.hashes, 0, sizeof(res.hashes));
        maker_result_free(&res);
        goto out;
    }
    if ((rc = store_open_source(st, bucket, key, &obj, 0, &src, err)) ||
        (rc = torrent_hash(src, to, h, err)))
        goto out;
    /* kept in the cache; a failure there only costs the next call a read */
    if (maker_make_known(&mk, bucket, key, &obj, r, h, &b, NULL, &kerr) != 0)
        fprintf(stderr, "s3torrent: warning: %s; not kept in the cache\n", kerr.msg);
out:
    if (rc)
        hasher_result_free(h);
    source_free(src);
    buf_free(&b);
    store_free(st);
    free(bucket);
    free(key);
    return rc;
}

/* `create s3://BUCKET/PREFIX/`: one multi-file torrent of the objects below the prefix. */
static int create_prefix(struct cli_s3 *g, const char *uri, const char *name,
                         struct cli_recipe *rec, const char *const *include, size_t ninclude,
                         const char *const *exclude, size_t nexclude, const char *cache_path,
                         bool no_cache, bool pad, unsigned threads, const char *out, bool force,
                         bool json)
{
    struct source_dir dir = {0};
    struct s3_client *s3;
    struct store *st = NULL;
    struct cache *cache = NULL;
    struct maker_cache mcache;
    char *bucket = NULL, *prefix = NULL, *parent = NULL;
    err_t err = {0};
    int rc = CLI_FAIL;
    if (s3_parse_uri(uri, &bucket, &prefix, &err) != 0 || cli_s3_connect(g, &s3, &err) != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
    if ((st = store_s3_new(s3)) == NULL) {
        cli_error(CLI_FAIL, "out of memory");
        goto out;
    }
    if (store_prefix_scan(st, bucket, prefix, include, ninclude, exclude, nexclude, skipped, bucket,
                          &dir, &err) != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
    if (rec->b.r.webseed_base && name && strcmp(name, dir.name) != 0) {
        /* clients fetch NAME/PATH below the web seed */
        rc = cli_error(CLI_USAGE,
                       "--name %s with --webseed: clients fetch a multi-file torrent's files "
                       "as the web seed plus NAME/PATH, so the name must be the prefix's last "
                       "segment, %s",
                       name, dir.name);
        goto out;
    }
    /* the web seed is BASE plus the prefix's parent; a bucket has none to point at */
    size_t pl = strlen(prefix);
    if (rec->b.r.webseed_base && pl == 0) {
        rc = cli_error(CLI_USAGE, "--webseed needs a prefix: clients would fetch "
                                  "BASE/NAME/PATH, and a whole bucket has no NAME in its keys");
        goto out;
    }
    if (pl && (parent = strndup(prefix, pl - 1)) == NULL) {
        rc = cli_error(CLI_FAIL, "out of memory");
        goto out;
    }
    if (!no_cache)
        cache = cli_open_cache(cache_path);
    cache_as_maker_cache(cache, &mcache);
    struct maker mk = {st, cache ? &mcache : NULL, threads, 0, &g->log};
    rc = create_set(&dir, name, rec, parent, &mk, bucket, prefix, pad, threads, out, force, json);
out:
    free(parent);
    cache_close(cache);
    source_dir_free(&dir);
    store_free(st);
    free(bucket);
    free(prefix);
    return rc;
}

int cmd_create(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_RECIPE_OPTIONS,
        {"name", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 'j'},
        {"output", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'f'},
        {"json", no_argument, NULL, OPT_JSON},
        {"include", required_argument, NULL, OPT_INCLUDE},
        {"exclude", required_argument, NULL, OPT_EXCLUDE},
        {"pad", no_argument, NULL, OPT_PAD},
        {"cache", required_argument, NULL, OPT_CACHE},
        {"no-cache", no_argument, NULL, OPT_NO_CACHE},
        {"help", no_argument, NULL, 'h'},
        CLI_S3_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli_recipe rec;
    struct cli_s3 g = {0};
    struct source *src = NULL;
    struct torrent_opts to;
    const char *out = NULL, *name = NULL;
    char *key = NULL, *ws = NULL;
    unsigned threads = 0;
    const char *cache_path = NULL;
    bool force = false, json = false, pad = false, no_cache = false;
    const char *include[MAX_PATTERNS], *exclude[MAX_PATTERNS];
    size_t ninclude = 0, nexclude = 0;
    struct stat st;
    struct buf tb;
    int rc = CLI_USAGE, c;
    err_t err = {0};

    buf_init(&tb, (size_t)1 << 30);
    cli_recipe_init(&rec);
    optind = 1;
    while ((c = getopt_long(argc, argv, CLI_RECIPE_SHORT "n:j:o:fh", opts, NULL)) != -1) {
        int r = cli_recipe_option(&rec, c, optarg);
        if (r < 0)
            goto out;
        if (r > 0 || cli_s3_option(&g, c, optarg))
            continue;
        switch (c) {
        case 'n': name = optarg; break;
        case 'j':
            if (cli_parse_uint(optarg, 256, &threads) != 0) {
                cli_error(CLI_USAGE, "--threads must be a number from 1 to 256, not '%s'", optarg);
                goto out;
            }
            break;
        case 'o': out = optarg; break;
        case 'f': force = true; break;
        case OPT_JSON: json = true; break;
        case OPT_INCLUDE:
        case OPT_EXCLUDE:
            if ((c == OPT_INCLUDE ? ninclude : nexclude) == MAX_PATTERNS) {
                cli_error(CLI_USAGE, "more than %d --include or --exclude patterns", MAX_PATTERNS);
                goto out;
            }
            if (c == OPT_INCLUDE)
                include[ninclude++] = optarg;
            else
                exclude[nexclude++] = optarg;
            break;
        case OPT_PAD:
            pad = true;
            break;
        case OPT_CACHE:
            cache_path = optarg;
            break;
        case OPT_NO_CACHE:
            no_cache = true;
            break;
        case 'h':
            usage(stdout);
            rc = CLI_OK;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (optind != argc - 1) {
        cli_error(CLI_USAGE,
                  "create needs exactly one FILE, DIR, s3://BUCKET/KEY or s3://BUCKET/PREFIX/ (see "
                  "s3torrent create --help)");
        goto out;
    }
    if (name != NULL && torrent_check_name(name, &err) != 0) {
        cli_error(CLI_USAGE, "--name: %s", err.msg);
        goto out;
    }
    if (cli_recipe_finish(&rec) != 0)
        goto out;
    const char *arg = argv[optind];
    bool is_s3 = strncmp(arg, "s3://", 5) == 0;
    /* s3://BUCKET/PREFIX/ (and s3://BUCKET/, s3://BUCKET): the objects below it */
    const char *after = is_s3 ? strchr(arg + 5, '/') : NULL;
    bool is_prefix = is_s3 && (after == NULL || after[strlen(after) - 1] == '/');
    bool is_dir = !is_s3 && stat(arg, &st) == 0 && S_ISDIR(st.st_mode);
    if (!is_dir && !is_prefix && (ninclude || nexclude || pad)) {
        cli_error(CLI_USAGE, "--include, --exclude and --pad apply to a directory or a prefix");
        goto out;
    }
    rc = CLI_FAIL;
    if (is_prefix) {
        rc = create_prefix(&g, arg, name, &rec, include, ninclude, exclude, nexclude, cache_path,
                           no_cache, pad, threads, out, force, json);
        goto out;
    }
    if (is_dir) {
        struct source_dir dir;
        if (source_dir_scan(arg, include, ninclude, exclude, nexclude, &dir, &err) != 0)
            cli_error(CLI_FAIL, "%s", err.msg);
        else
            rc = create_set(&dir, name, &rec, NULL, NULL, NULL, NULL, pad, threads, out, force,
                            json);
        source_dir_free(&dir);
        goto out;
    }
    if (cli_open_source(&g, argv[optind], &src, &key, &err) != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
    if (name == NULL)
        name = src->name;
    if (src->size == 0) {
        /* docs/DESIGN.md §3: say so, don't fail */
        fprintf(stderr, "s3torrent: %s: zero-byte %s, nothing to share; no torrent written\n",
                src->display, is_s3 ? "object" : "file");
        rc = CLI_OK;
        goto out;
    }
    /* the web seed names the object's key; for a local file, the torrent's name. A v2 web seed
     * is the key's directory, which clients complete with the torrent's name (docs/DESIGN.md
     * §3): another --name would send them to another object. */
    if (is_s3 && rec.b.r.webseed_base && rec.b.r.meta == TORRENT_V2 &&
        strcmp(name, strrchr(key, '/') ? strrchr(key, '/') + 1 : key) != 0) {
        rc = cli_error(
            CLI_USAGE,
            "--name %s with --webseed and --meta-version v2: clients fetch a v2 torrent's "
            "web seed as its directory URL plus the torrent's name, so the name must be "
            "the key's last segment (or use v1 or hybrid)",
            name);
        goto out;
    }
    if (torrent_recipe_opts(&rec.b.r, is_s3 ? key : name, src->mtime, &to, &ws) != 0) {
        cli_error(CLI_FAIL, "out of memory");
        goto out;
    }
    to.threads = threads;
    struct cli_progress prog;
    cli_progress_init(&prog, "hashing");
    to.progress = cli_progress_cb;
    to.progress_arg = &prog;
    uint8_t ih1[20], ih2[32];
    int hr;
    /* an object with an explicit cache: hashes from it, or hashed into it */
    struct cache *cache = is_s3 && cache_path && !no_cache ? cli_open_cache(cache_path) : NULL;
    if (cache) {
        struct hasher_result h;
        if ((hr = hash_object(&g, arg, &rec.b.r, &to, cache, &h, &err)) == 0)
            hr = torrent_encode_hashed(name, &to, &h, &tb, ih1, ih2, &err);
        hasher_result_free(&h);
        cache_close(cache);
    } else {
        hr = torrent_create(src, name, &to, &tb, ih1, ih2, &err);
    }
    cli_progress_end(&prog);
    if (hr != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
    rc = write_out(name, out, force, json, &to, &tb, ih1, ih2);
out:
    free(ws);
    free(key);
    buf_free(&tb);
    source_free(src);
    cli_recipe_free(&rec);
    cli_s3_close(&g);
    return rc;
}
