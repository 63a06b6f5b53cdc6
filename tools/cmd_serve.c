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
        "      --timeout SECONDS      closes a connection idle this long (default 60)\n"
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
    OPT_HASH_THREADS,
    OPT_CACHE,
    OPT_NO_CACHE,
    OPT_FEED_ITEMS,
    OPT_FEED_HASH_SECONDS,
    OPT_BLOCK_CACHE,
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

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_RECIPE_OPTIONS,
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"public-url", required_argument, NULL, OPT_PUBLIC_URL},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"max-connections", required_argument, NULL, OPT_CONNECTIONS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"hash-threads", required_argument, NULL, OPT_HASH_THREADS},
        {"cache", required_argument, NULL, OPT_CACHE},
        {"no-cache", no_argument, NULL, OPT_NO_CACHE},
        {"feed-items", required_argument, NULL, OPT_FEED_ITEMS},
        {"feed-hash-seconds", required_argument, NULL, OPT_FEED_HASH_SECONDS},
        {"block-cache", required_argument, NULL, OPT_BLOCK_CACHE},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"help", no_argument, NULL, 'h'},
        CLI_S3_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli_recipe rec;
    struct cli_s3 g = {0};
    struct server_config sc = {.listen = "127.0.0.1:8080",
                               .threads = 16,
                               .connections = 1024,
                               .timeout_s = 60,
                               .feed_items = 50,
                               .block_cache = 256u << 20};
    unsigned feed_hash_s = 20;
    struct route_scope *scopes = NULL;
    struct cache *cache = NULL;
    struct maker_cache mcache;
    struct maker maker = {0};
    struct store *store = NULL;
    struct s3_client *s3;
    const char *cache_path = NULL, *public_url = NULL;
    char *own_url = NULL;
    bool no_cache = false;
    unsigned hash_threads = 0;
    err_t err = {0};
    int c, rc = CLI_USAGE;

    struct conf_args conf = {.opts = opts};
    char **scope_args;
    int nscope_args;
    cli_recipe_init(&rec);
    const char *conf_file = conf_path(argc, argv);
    if (conf_file) {
        if ((rc = conf_read(&conf, conf_file, argc, argv)) != 0)
            goto out;
        rc = CLI_USAGE;
        argc = conf.argc;
        argv = conf.argv;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, CLI_RECIPE_SHORT "h", opts, NULL)) != -1) {
        if (c == 'w') {
            cli_error(CLI_USAGE, "serve writes its own web seed (--public-url); --webseed is "
                                 "not taken");
            goto out;
        }
        int rr = cli_recipe_option(&rec, c, optarg);
        if (rr < 0)
            goto out;
        if (rr > 0 || cli_s3_option(&g, c, optarg))
            continue;
        switch (c) {
        case OPT_LISTEN:
            sc.listen = optarg;
            break;
        case OPT_PUBLIC_URL:
            public_url = optarg;
            break;
        case OPT_THREADS:
            if (cli_parse_uint(optarg, 1024, &sc.threads) != 0) {
                cli_error(CLI_USAGE, "--threads must be a number from 1 to 1024, not '%s'", optarg);
                goto out;
            }
            break;
        case OPT_CONNECTIONS:
            if (cli_parse_uint(optarg, 65536, &sc.connections) != 0) {
                cli_error(CLI_USAGE, "--max-connections must be a number from 1 to 65536, not '%s'",
                          optarg);
                goto out;
            }
            break;
        case OPT_TIMEOUT:
            if (cli_parse_uint(optarg, 86400, &sc.timeout_s) != 0) {
                cli_error(CLI_USAGE, "--timeout must be 1 to 86400 seconds, not '%s'", optarg);
                goto out;
            }
            break;
        case OPT_HASH_THREADS:
            if (cli_parse_uint(optarg, 256, &hash_threads) != 0) {
                cli_error(CLI_USAGE, "--hash-threads must be a number from 1 to 256, not '%s'",
                          optarg);
                goto out;
            }
            break;
        case OPT_CACHE:
            cache_path = optarg;
            break;
        case OPT_FEED_ITEMS:
            if (cli_parse_uint(optarg, FEED_ITEMS_MAX, &sc.feed_items) != 0) {
                cli_error(CLI_USAGE, "--feed-items must be 1 to %d, not '%s'", FEED_ITEMS_MAX,
                          optarg);
                goto out;
            }
            break;
        case OPT_FEED_HASH_SECONDS:
            if (strcmp(optarg, "0") == 0) {
                feed_hash_s = 0;
            } else if (cli_parse_uint(optarg, 3600, &feed_hash_s) != 0) {
                cli_error(CLI_USAGE, "--feed-hash-seconds must be 0 to 3600, not '%s'", optarg);
                goto out;
            }
            break;
        case OPT_BLOCK_CACHE:
            if (config_parse_size("--block-cache", optarg, &sc.block_cache, &err) != 0) {
                cli_error(CLI_USAGE, "%s", err.msg);
                goto out;
            }
            if (sc.block_cache < 16 * SERVER_BLOCK) {
                cli_error(CLI_USAGE, "--block-cache must be at least 16M, not '%s'", optarg);
                goto out;
            }
            break;
        case OPT_CONFIG: /* read before the others */
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
    scope_args = argv + optind; /* the command line's scopes, else the config file's */
    nscope_args = argc - optind;
    if (nscope_args == 0) {
        scope_args = conf.buckets;
        nscope_args = conf.nbuckets;
    }
    if (nscope_args == 0) {
        cli_error(CLI_USAGE, "serve needs at least one BUCKET[:PREFIX] (see --help)");
        goto out;
    }
    if ((scopes = calloc((size_t)nscope_args, sizeof(*scopes))) == NULL) {
        rc = cli_error(CLI_FAIL, "out of memory");
        goto out;
    }
    for (int i = 0; i < nscope_args; i++)
        if (parse_scope(scope_args[i], &scopes[i], &err) != 0) {
            cli_error(CLI_USAGE, "%s", err.msg);
            goto out;
        }
    if (public_url && strncmp(public_url, "http://", 7) != 0 &&
        strncmp(public_url, "https://", 8) != 0) {
        cli_error(CLI_USAGE, "--public-url must start with http:// or https://, not '%s'",
                  public_url);
        goto out;
    }
    if (public_url &&
        public_url[strlen(public_url) - 1] == '/') { /* one spelling: no trailing '/' */
        if (own_url == NULL && (own_url = strdup(public_url)) == NULL) {
            rc = cli_error(CLI_FAIL, "out of memory");
            goto out;
        }
        own_url[strlen(own_url) - 1] = '\0';
        public_url = own_url;
    }
    if (cli_recipe_finish(&rec) != 0)
        goto out;
    rc = CLI_FAIL;
    if (cli_s3_connect(&g, &s3, &err) != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
    if (!no_cache)
        cache = cli_open_cache(cache_path);
    if ((store = store_s3_new(s3)) == NULL) {
        cli_error(CLI_FAIL, "out of memory");
        goto out;
    }
    cache_as_maker_cache(cache, &mcache);
    maker = (struct maker){store, cache ? &mcache : NULL, hash_threads, 0, &g.log};
    sigset_t stop, block;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    block = stop;
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    sc.public_url = public_url;
    sc.feed_hash_s = feed_hash_s;
    sc.scopes = scopes;
    sc.nscopes = (size_t)nscope_args;
    sc.maker = &maker;
    sc.recipe = &rec.b.r;
    struct logger slog = log_stderr("s3torrent serve", g.debug ? LOG_DEBUG : LOG_INFO);
    sc.log = &slog;
    sc.stop = &stop;
    if (server_run(&sc, &err) != 0)
        cli_error(CLI_FAIL, "%s", err.msg);
    else
        rc = CLI_OK;
out:
    store_free(store);
    if (cache)
        cache_close(cache);
    cli_s3_close(&g);
    cli_recipe_free(&rec);
    free(scopes);
    free(own_url);
    conf_free(&conf);
    return rc;
}
