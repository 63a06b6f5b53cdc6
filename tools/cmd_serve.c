/* cmd_serve.c — `s3torrent serve`: options to a server_config, then serve/ does the rest
 * (docs/DESIGN.md §14). */
#include "cache.h"
#include "cli.h"
#include "feed.h"
#include "s3torrent/config.h"
#include "server.h"
#include "s3torrent/s3.h"
#include "s3torrent/store.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs(
        "Usage: s3torrent serve [OPTIONS] BUCKET[:PREFIX] ...\n"
        "\n"
        "Serves the objects of the buckets (and only the keys under PREFIX, when given) over\n"
        "HTTP, as a web seed (BEP 19) and with their torrents, so that a private bucket\n"
        "can be a permanent seed:\n"
        "  GET|HEAD /BUCKET/KEY              the object's bytes (Range, If-Match, If-None-Match,\n"
        "                                    If-Range, If-Modified-Since)\n"
        "  GET|HEAD /~e/ETAG/BUCKET/KEY      the same while the object's ETag is ETAG, else 410\n"
        "                                    (the web seed its torrents carry)\n"
        "  GET /BUCKET/KEY?torrent           the object's torrent (S3's GetObjectTorrent)\n"
        "  GET /BUCKET/KEY.torrent           the same\n"
        "  GET /BUCKET/PREFIX/?torrent       one multi-file torrent of every object below\n"
        "                                    PREFIX, as create s3://BUCKET/PREFIX/ makes it\n"
        "  GET|HEAD /~m/SECONDS/BUCKET/KEY   the object's bytes while its Last-Modified is at\n"
        "                                    most SECONDS (Unix time), else 410 (the web seed\n"
        "                                    of a prefix's torrent)\n"
        "  GET /BUCKET/[PREFIX/]?rss         an RSS 2.0 feed of the newest torrents under PREFIX\n"
        "                                    (enclosures of type application/x-bittorrent,\n"
        "                                    info-hashes, magnets), for RSS-reading clients\n"
        "  GET /BUCKET/[PREFIX/]?manifest    a JSON manifest of every object's info-hashes\n"
        "                                    (the first 10000 objects in key order)\n"
        "  GET /metrics                      Prometheus counters\n"
        "Torrents are made as create and sync make them (the same info-hash for the same\n"
        "options), with this server's pinned URL as their web seed.\n"
        "\n"
        "Server options:\n"
        "      --listen ADDR:PORT     where to listen (default 127.0.0.1:8080; port 0: any)\n"
        "      --public-url URL       how clients reach this server, written into torrents\n"
        "                             (default: http:// and the address bound; required when\n"
        "                             --listen is 0.0.0.0 or [::])\n"
        "      --threads N            requests served at once (default 16, at most 1024)\n"
        "      --max-connections N    connections open at once (default 1024)\n"
        "      --block-cache SIZE     object bytes kept in memory, in 1 MiB blocks shared by\n"
        "                             every answer, so peers asking for the same pieces cost\n"
        "                             one GET (default 256M)\n"
        "      --disk-cache DIR       also keep blocks in DIR (made 0700; kept across restarts,\n"
        "                             each file checked before use), least recently used\n"
        "                             deleted first (default: none)\n"
        "      --disk-cache-max SIZE  bytes of DIR's blocks, at most (default 1G); the disk\n"
        "                             keeps 5% (at least 64M) free whatever this says\n"
        "      --redirect             answer GETs of objects with a 302 to a presigned S3\n"
        "                             URL of the version asked for, so S3 carries the bytes\n"
        "                             (HEAD, conditionals that fail, torrents, feeds and\n"
        "                             metrics are still answered here); clients must reach\n"
        "                             the S3 endpoint; the URL is never logged\n"
        "      --redirect-expires SECONDS\n"
        "                             how long a presigned URL works (default 300, at most\n"
        "                             604800)\n"
        "      --timeout SECONDS      closes a connection idle this long (default 60)\n"
        "      --header-timeout SECONDS\n"
        "                             closes a connection whose request has not arrived\n"
        "                             whole this long after it opened or after the previous\n"
        "                             answer ended, however slowly it trickles (default 10)\n"
        "      --hash-threads N       hashing threads per torrent (default: all cores)\n"
        "      --feed-items N         items of an RSS feed, the newest (default 50, at most\n"
        "                             10000)\n"
        "      --feed-hash-seconds S  seconds a feed request may spend hashing objects not\n"
        "                             hashed yet (default 20; 0: list only torrents already\n"
        "                             made); the others appear in a later poll\n"
        "      --cache PATH           torrent cache shared with s3torrentfs and sync (default:\n"
        "                             the user's cache directory)\n"
        "      --no-cache             keep nothing on disk (every torrent is hashed again)\n"
        "      --config FILE          settings from FILE: one \"name = value\" per line, the\n"
        "                             names of these long options (a switch alone or = true),\n"
        "                             and \"bucket = BUCKET[:PREFIX]\" lines, used when the\n"
        "                             command line names none; the command line wins\n"
        "  -h, --help                 show this help\n"
        "\n" CLI_RECIPE_HELP
        "                             (serve writes its own web seed: --webseed is refused)\n"
        "\n" CLI_S3_HELP "\n"
        "It logs one line per request on stderr and stops on SIGINT or SIGTERM.\n"
        "See s3torrent(1).\n",
        f);
}

enum {
    OPT_LISTEN = 1,
    OPT_PUBLIC_URL,
    OPT_THREADS,
    OPT_CONNECTIONS,
    OPT_TIMEOUT,
    OPT_HEADER_TIMEOUT,
    OPT_HASH_THREADS,
    OPT_CACHE,
    OPT_NO_CACHE,
    OPT_FEED_ITEMS,
    OPT_FEED_HASH_SECONDS,
    OPT_BLOCK_CACHE,
    OPT_DISK_CACHE,
    OPT_DISK_CACHE_MAX,
    OPT_REDIRECT,
    OPT_REDIRECT_EXPIRES,
    OPT_CONFIG
};

/* A --config file read as options (docs/DESIGN.md §14): each "name = value" becomes
 * "--name=value" (a switch "--name"), put before the command line's so that those win;
 * "bucket = BUCKET[:PREFIX]" lines are the scopes when the command line names none. */
struct conf_args {
    const struct option *opts;
    char **argv; /* argv[0], the file's options, then the command line's */
    int argc, cap;
    char **buckets;
    int nbuckets;
};

static int conf_push(char ***v, int *n, int *cap, char *s)
{
    if (s == NULL)
        return ENOMEM;
    if (*n + 1 >= *cap) {
        int nc = *cap ? 2 * *cap : 16;
        char **nv = realloc(*v, (size_t)nc * sizeof(*nv));
        if (nv == NULL) {
            free(s);
            return ENOMEM;
        }
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = s;
    (*v)[*n] = NULL;
    return 0;
}

static int conf_setting(void *arg, const char *name, const char *value, err_t *err)
{
    struct conf_args *ca = arg;
    char opt[64];
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof(opt))
        return err_set(err, EINVAL, "unknown setting '%.64s'", name);
    for (size_t i = 0; i <= n; i++)
        opt[i] = name[i] == '_' ? '-' : name[i]; /* public_url or public-url */
    if (strcmp(opt, "bucket") == 0) {
        if (value == NULL || *value == '\0')
            return err_set(err, EINVAL, "bucket needs a value: BUCKET[:PREFIX]");
        int bcap = ca->nbuckets + 2; /* grows one at a time: a file names a few */
        char **nb = realloc(ca->buckets, (size_t)bcap * sizeof(*nb));
        if (nb == NULL)
            return err_set(err, ENOMEM, "out of memory");
        ca->buckets = nb;
        if ((ca->buckets[ca->nbuckets] = strdup(value)) == NULL)
            return err_set(err, ENOMEM, "out of memory");
        ca->nbuckets++;
        return 0;
    }
    const struct option *o = ca->opts;
    while (o->name && strcmp(o->name, opt) != 0)
        o++;
    if (o->name == NULL || strcmp(opt, "config") == 0 || strcmp(opt, "help") == 0)
        return err_set(err, EINVAL, "unknown setting '%s'", name);
    char *s;
    if (o->has_arg == no_argument) {
        bool on;
        if (config_parse_switch(name, value, &on, err) != 0)
            return EINVAL;
        if (!on)
            return 0;
        s = malloc(n + 3);
        if (s)
            snprintf(s, n + 3, "--%s", opt);
    } else {
        if (value == NULL)
            return err_set(err, EINVAL, "%s needs a value", name);
        size_t l = n + strlen(value) + 4;
        if ((s = malloc(l)) != NULL)
            snprintf(s, l, "--%s=%s", opt, value);
    }
    if (conf_push(&ca->argv, &ca->argc, &ca->cap, s) != 0)
        return err_set(err, ENOMEM, "out of memory");
    return 0;
}

/* The file of --config FILE (or --config=FILE) in argv, or NULL. */
static const char *conf_path(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    return NULL;
}

/* Reads --config's file into ca: argv[0], its settings as options, then argv's. Returns 0, or
 * CLI_USAGE after saying why. */
static int conf_read(struct conf_args *ca, const char *path, int argc, char **argv)
{
    err_t err = {0};
    if (conf_push(&ca->argv, &ca->argc, &ca->cap, strdup(argv[0])) != 0)
        return cli_error(CLI_FAIL, "out of memory");
    if (config_file_read(path, conf_setting, ca, &err) != 0)
        return cli_error(CLI_USAGE, "--config %s", err.msg);
    for (int i = 1; i < argc; i++)
        if (conf_push(&ca->argv, &ca->argc, &ca->cap, strdup(argv[i])) != 0)
            return cli_error(CLI_FAIL, "out of memory");
    return 0;
}

static void conf_free(struct conf_args *ca)
{
    for (int i = 0; i < ca->argc; i++)
        free(ca->argv[i]);
    free(ca->argv);
    for (int i = 0; i < ca->nbuckets; i++)
        free(ca->buckets[i]);
    free(ca->buckets);
}

/* BUCKET[:PREFIX] into scope (pointing into arg, which is changed). Returns 0 or EINVAL. */
static int parse_scope(char *arg, struct route_scope *scope, err_t *err)
{
    char *colon = strchr(arg, ':');
    if (colon)
        *colon = '\0';
    scope->bucket = arg;
    scope->prefix = colon ? colon + 1 : "";
    return s3_check_bucket(arg, strlen(arg), err);
}

static const struct option serve_opts[] = {
    CLI_RECIPE_OPTIONS,
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"public-url", required_argument, NULL, OPT_PUBLIC_URL},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"max-connections", required_argument, NULL, OPT_CONNECTIONS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"hash-threads", required_argument, NULL, OPT_HASH_THREADS},
    {"cache", required_argument, NULL, OPT_CACHE},
    {"no-cache", no_argument, NULL, OPT_NO_CACHE},
    {"feed-items", required_argument, NULL, OPT_FEED_ITEMS},
    {"feed-hash-seconds", required_argument, NULL, OPT_FEED_HASH_SECONDS},
    {"block-cache", required_argument, NULL, OPT_BLOCK_CACHE},
    {"disk-cache", required_argument, NULL, OPT_DISK_CACHE},
    {"disk-cache-max", required_argument, NULL, OPT_DISK_CACHE_MAX},
    {"redirect", no_argument, NULL, OPT_REDIRECT},
    {"redirect-expires", required_argument, NULL, OPT_REDIRECT_EXPIRES},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"help", no_argument, NULL, 'h'},
    CLI_S3_OPTIONS,
    {NULL, 0, NULL, 0},
};

/* Everything `serve` holds from its options to its end. */
struct serve_cmd {
    struct cli_recipe rec;
    struct cli_s3 g;
    struct server_config sc;
    struct conf_args conf;
    unsigned feed_hash_s, hash_threads;
    bool redirect, redirect_expires_set;
    unsigned redirect_expires; /* seconds a presigned URL of --redirect works */
    struct route_scope *scopes;
    size_t nscopes;
    const char *cache_path, *public_url;
    char *own_url; /* public_url without its trailing '/' */
    bool no_cache;
    struct cache *cache;
    struct maker_cache mcache;
    struct maker maker;
    struct store *store;
};

/* A number option from 0 (zero_ok) or 1 to max into *out. Returns 0, or CLI_USAGE after
 * saying why. */
static int number_option(const char *name, const char *arg, unsigned max, bool zero_ok,
                         unsigned *out)
{
    if (zero_ok && strcmp(arg, "0") == 0) {
        *out = 0;
        return 0;
    }
    if (cli_parse_uint(arg, max, out) == 0)
        return 0;
    return cli_error(CLI_USAGE, "--%s must be a number from %d to %u, not '%s'", name,
                     zero_ok ? 0 : 1, max, arg);
}

/* One option of serve's own (not a recipe or S3 one, nor --help). Returns 0 to go on, or
 * CLI_USAGE after saying why. */
static int serve_option(struct serve_cmd *s, int c, const char *arg)
{
    err_t err = {0};
    switch (c) {
    case OPT_LISTEN:
        s->sc.listen = arg;
        return 0;
    case OPT_PUBLIC_URL:
        s->public_url = arg;
        return 0;
    case OPT_THREADS:
        return number_option("threads", arg, 1024, false, &s->sc.threads);
    case OPT_CONNECTIONS:
        return number_option("max-connections", arg, 65536, false, &s->sc.connections);
    case OPT_TIMEOUT:
        return number_option("timeout", arg, 86400, false, &s->sc.timeout_s);
    case OPT_HEADER_TIMEOUT:
        return number_option("header-timeout", arg, 3600, false, &s->sc.header_timeout_s);
    case OPT_HASH_THREADS:
        return number_option("hash-threads", arg, 256, false, &s->hash_threads);
    case OPT_FEED_ITEMS:
        return number_option("feed-items", arg, FEED_ITEMS_MAX, false, &s->sc.feed_items);
    case OPT_FEED_HASH_SECONDS:
        return number_option("feed-hash-seconds", arg, 3600, true, &s->feed_hash_s);
    case OPT_CACHE:
        s->cache_path = arg;
        return 0;
    case OPT_NO_CACHE:
        s->no_cache = true;
        return 0;
    case OPT_BLOCK_CACHE:
        if (config_parse_size("--block-cache", arg, &s->sc.block_cache, &err) != 0)
            return cli_error(CLI_USAGE, "%s", err.msg);
        if (s->sc.block_cache < 16 * SERVER_BLOCK)
            return cli_error(CLI_USAGE, "--block-cache must be at least 16M, not '%s'", arg);
        return 0;
    case OPT_DISK_CACHE:
        s->sc.disk_cache = arg;
        return 0;
    case OPT_DISK_CACHE_MAX:
        if (config_parse_size("--disk-cache-max", arg, &s->sc.disk_cache_max, &err) != 0)
            return cli_error(CLI_USAGE, "%s", err.msg);
        if (s->sc.disk_cache_max < 4 * SERVER_BLOCK)
            return cli_error(CLI_USAGE, "--disk-cache-max must be at least 4M, not '%s'", arg);
        return 0;
    case OPT_REDIRECT:
        s->redirect = true;
        return 0;
    case OPT_REDIRECT_EXPIRES:
        s->redirect_expires_set = true;
        return number_option("redirect-expires", arg, 604800, false, &s->redirect_expires);
    case OPT_CONFIG: /* read before the others */
        return 0;
    default:
        usage(stderr);
        return CLI_USAGE;
    }
}

/* The options of argv (the config file's first, when there is one). Returns -1 to go on, else
 * the exit status. */
static int serve_parse(struct serve_cmd *s, int argc, char **argv)
{
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, CLI_RECIPE_SHORT "h", serve_opts, NULL)) != -1) {
        if (c == 'h') { /* CLI_OK is 0: serve_option could not say "stop here, fine" */
            usage(stdout);
            return CLI_OK;
        }
        if (c == 'w')
            return cli_error(CLI_USAGE, "serve writes its own web seed (--public-url); "
                                        "--webseed is not taken");
        int rr = cli_recipe_option(&s->rec, c, optarg);
        if (rr < 0)
            return CLI_USAGE;
        if (rr > 0 || cli_s3_option(&s->g, c, optarg))
            continue;
        if ((rr = serve_option(s, c, optarg)) != 0)
            return rr;
    }
    return -1;
}

/* The scopes: the command line's arguments (args, n of them), else the config file's bucket
 * lines. Returns 0, or the exit status after saying why. */
static int serve_scopes(struct serve_cmd *s, char **args, int n)
{
    err_t err = {0};
    if (n == 0) {
        args = s->conf.buckets;
        n = s->conf.nbuckets;
    }
    if (n == 0)
        return cli_error(CLI_USAGE, "serve needs at least one BUCKET[:PREFIX] (see --help)");
    if ((s->scopes = calloc((size_t)n, sizeof(*s->scopes))) == NULL)
        return cli_error(CLI_FAIL, "out of memory");
    for (int i = 0; i < n; i++)
        if (parse_scope(args[i], &s->scopes[i], &err) != 0)
            return cli_error(CLI_USAGE, "%s", err.msg);
    s->nscopes = (size_t)n;
    return 0;
}

/* Checks --public-url and spells it without a trailing '/'. Returns 0 or the exit status. */
static int serve_public_url(struct serve_cmd *s)
{
    const char *u = s->public_url;
    if (u == NULL)
        return 0;
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
        return cli_error(CLI_USAGE, "--public-url must start with http:// or https://, not '%s'",
                         u);
    if (u[strlen(u) - 1] == '/') {
        if ((s->own_url = strdup(u)) == NULL)
            return cli_error(CLI_FAIL, "out of memory");
        s->own_url[strlen(s->own_url) - 1] = '\0';
        s->public_url = s->own_url;
    }
    return 0;
}

/* Connects S3, opens the cache and serves until SIGINT or SIGTERM. Returns the exit status. */
static int serve_run(struct serve_cmd *s)
{
    struct s3_client *s3;
    err_t err = {0};
    if (cli_s3_connect(&s->g, &s3, &err) != 0)
        return cli_error(CLI_FAIL, "%s", err.msg);
    if (!s->no_cache)
        s->cache = cli_open_cache(s->cache_path);
    if ((s->store = store_s3_new(s3)) == NULL)
        return cli_error(CLI_FAIL, "out of memory");
    cache_as_maker_cache(s->cache, &s->mcache);
    s->maker =
        (struct maker){s->store, s->cache ? &s->mcache : NULL, s->hash_threads, 0, &s->g.log};
    sigset_t stop, block;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    block = stop;
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    struct logger slog = log_stderr("s3torrent serve", s->g.debug ? LOG_DEBUG : LOG_INFO);
    s->sc.public_url = s->public_url;
    s->sc.feed_hash_s = s->feed_hash_s;
    s->sc.redirect_s = s->redirect ? s->redirect_expires : 0;
    s->sc.scopes = s->scopes;
    s->sc.nscopes = s->nscopes;
    s->sc.maker = &s->maker;
    s->sc.recipe = &s->rec.b.r;
    s->sc.log = &slog;
    s->sc.stop = &stop;
    if (server_run(&s->sc, &err) != 0)
        return cli_error(CLI_FAIL, "%s", err.msg);
    return CLI_OK;
}

int cmd_serve(int argc, char **argv)
{
    struct serve_cmd cmd = {
        .sc = {.listen = "127.0.0.1:8080",
               .threads = 16,
               .connections = 1024,
               .timeout_s = 60,
               .header_timeout_s = 10,
               .feed_items = 50,
               .block_cache = 256u << 20,
               .disk_cache_max = 1ull << 30},
        .conf = {.opts = serve_opts},
        .feed_hash_s = 20,
        .redirect_expires = 300,
    };
    struct serve_cmd *s = &cmd;
    int rc;
    cli_recipe_init(&s->rec);
    const char *conf_file = conf_path(argc, argv);
    if (conf_file) {
        if ((rc = conf_read(&s->conf, conf_file, argc, argv)) != 0)
            goto out;
        argc = s->conf.argc;
        argv = s->conf.argv;
    }
    if ((rc = serve_parse(s, argc, argv)) >= 0 ||
        (rc = serve_scopes(s, argv + optind, argc - optind)) != 0 ||
        (rc = serve_public_url(s)) != 0)
        goto out;
    if (s->redirect_expires_set && !s->redirect) {
        rc = cli_error(CLI_USAGE, "--redirect-expires is the lifetime of --redirect's URLs: "
                                  "give --redirect too");
        goto out;
    }
    rc = cli_recipe_finish(&s->rec) != 0 ? CLI_USAGE : serve_run(s);
out:
    store_free(s->store);
    if (s->cache)
        cache_close(s->cache);
    cli_s3_close(&s->g);
    cli_recipe_free(&s->rec);
    free(s->scopes);
    free(s->own_url);
    conf_free(&s->conf);
    return rc;
}
