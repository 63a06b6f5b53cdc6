/* dirtorrents.h — the synthetic DIR.torrent of a directory (-o dir_torrents=DEPTH,
 * docs/DESIGN.md §5): the multi-file torrent `s3torrent create s3://BUCKET/PREFIX/` makes of the
 * objects below the directory, with its exact size before hashing, kept in the sqlite cache
 * keyed by the set of (key, ETag) it covers. */
#ifndef S3TORRENTFS_DIRTORRENTS_H
#define S3TORRENTFS_DIRTORRENTS_H

#include <stdint.h>

#include "live.h"
#include "s3torrent/buf.h"
#include "s3torrent/err.h"
#include "s3torrent/log.h"
#include "s3torrent/store.h"

struct cache;

/* What the directory torrents read through; every pointer is borrowed and outlives them. */
struct dirt_config {
    struct store *store;
    const char *bucket;
    struct cache *cache;      /* whole torrents and per-object hashes; NULL: none */
    const struct logger *log; /* keys left out, cache damage */
    struct live *live;        /* the recipe, the TTL and max_generations */
};

/* Returns the directory torrents over c (copied), or NULL when out of memory. */
struct dirt *dirt_new(const struct dirt_config *c);
void dirt_free(struct dirt *d);

/* The torrent of the directory at prefix (a key prefix ending in '/'), from a listing of it at
 * most the TTL old: its exact size and its date (the newest Last-Modified below it). Returns 0,
 * ENOENT when it has none (no byte below it after the rules of docs/DESIGN.md §5, or a path no
 * torrent can hold), or another errno with err set. */
int dirt_stat(struct dirt *d, const char *prefix, uint64_t *size, int64_t *mtime, err_t *err);

/* Appends to out the torrent of the directory at prefix as it is now (listed again, so a changed
 * object is in it): from the cache, or made by hashing the objects (a v2 one takes each object's
 * hashes from its own torrent's cache entry). Later dirt_stat calls report its size. Returns 0,
 * ENOENT as dirt_stat, or another errno with err set. */
int dirt_get(struct dirt *d, const char *prefix, struct buf *out, err_t *err);

/* What the directory torrents did: listings of a directory's objects, torrents served from the
 * cache, and torrents made by hashing. */
struct dirt_stats {
    unsigned long long lists, cached, hashed;
};
void dirt_stats(struct dirt *d, struct dirt_stats *out);

#endif
