/* server.h — `s3torrent serve` (docs/DESIGN.md §14): an HTTP server on libmicrohttpd that makes
 * the buckets and prefixes it serves a web seed (BEP 19) and answers S3's retired `?torrent`,
 * reading objects through the store seam and making torrents with the one maker. It keeps no
 * state that must be shared, so many can run behind one load balancer or CDN. */
#ifndef S3TORRENT_SERVE_SERVER_H
#define S3TORRENT_SERVE_SERVER_H

#include <signal.h>
#include <stddef.h>

#include "route.h"
#include "s3torrent/err.h"
#include "s3torrent/log.h"
#include "s3torrent/maker.h"
#include "s3torrent/torrent.h"

#define SERVER_BLOCK (1u << 20) /* bytes of a block of the cache: one GET */
#define SERVER_AHEAD    (16u << 20) /* bytes read ahead for an answer still being sent */
#define SERVER_FETCHERS 8           /* read-ahead GETs in flight per bucket */

struct server_config {
    const char *listen;     /* ADDR:PORT */
    const char *public_url; /* how clients reach this server, no trailing '/'; NULL: http:// and
                             * the address bound (refused for a wildcard address) */
    const struct route_scope *scopes;
    size_t nscopes;
    const struct maker *maker;           /* its store is what is served */
    const struct torrent_recipe *recipe; /* webseed_base is set per torrent */
    const struct logger *log;
    unsigned threads;     /* connections served at once */
    unsigned connections; /* open at once, at most */
    uint64_t block_cache; /* bytes of object blocks kept, shared by all answers */
    const char *disk_cache;  /* a directory of blocks behind them (docs/DESIGN.md §15), or NULL */
    uint64_t disk_cache_max; /* bytes of its files, at most */
    unsigned timeout_s;   /* an idle connection is closed after this */
    unsigned header_timeout_s; /* a request's head must be in within this (guard.h) */
    unsigned feed_items;  /* items of an RSS feed (1 to FEED_ITEMS_MAX) */
    double feed_hash_s;   /* seconds a feed request may spend making torrents */
    /* 0: object GETs are answered with the bytes; else with a 302 to a presigned store URL
     * valid this many seconds (1 to 604800), so the store carries the bytes */
    unsigned redirect_s;
    const sigset_t *stop; /* waits for one of these, then stops */
};

/* Serves until a signal of c->stop arrives. Returns 0, or an errno with err set when it cannot
 * start (a bad or busy --listen address). */
int server_run(const struct server_config *c, err_t *err);

#endif
