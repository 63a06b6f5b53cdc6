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
    OPT_BLOCK_CACHE
};

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

    cli_recipe_init(&rec);
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
    if (optind >= argc) {
        cli_error(CLI_USAGE, "serve needs at least one BUCKET[:PREFIX] (see --help)");
        goto out;
    }
    if ((scopes = calloc((size_t)(argc - optind), sizeof(*scopes))) == NULL) {
        rc = cli_error(CLI_FAIL, "out of memory");
        goto out;
    }
    for (int i = optind; i < argc; i++)
        if (parse_scope(argv[i], &scopes[i - optind], &err) != 0) {
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
    sc.nscopes = (size_t)(argc - optind);
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
    return rc;
}
