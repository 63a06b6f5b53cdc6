/* torrents.h — the synthetic k.torrent files of the mount: served from the sqlite cache, or
 * generated once (all readers of an uncached torrent share one generation) by hashing k
 * streamed from S3; optionally warmed in the background for listed objects. */
#ifndef S3TORRENTFS_TORRENTS_H
#define S3TORRENTFS_TORRENTS_H

#include "live.h"
#include "meta.h"
#include "s3torrent/buf.h"
#include "s3torrent/log.h"
#include "s3torrent/maker.h"
#include "s3torrent/store.h"

struct cache;

/* What the torrent service reads through; every pointer is borrowed and outlives it. */
struct tgen_config {
    struct store *store;
    const char *bucket;
    struct cache *cache;      /* piece hashes; NULL: none, and no background generation */
    const struct logger *log; /* cache damage and failed background generations */
    struct live *live;        /* the recipe and max_generations */
    unsigned prefetchers;     /* background generations at once; 0: none */
};

/* Returns the torrent service over c (copied), or NULL when out of memory. */
struct tgen *tgen_new(const struct tgen_config *c);
void tgen_free(struct tgen *t);

/* Appends the torrent of the TORRENT entry e to out: from the cache, or generated now.
 * Returns 0, or a positive errno with err set (the torrent is never served when its size
 * differs from e->size, the size stat reported). */
int tgen_get(struct tgen *t, const struct meta_entry *e, struct buf *out, err_t *err);

/* What the service did: torrents laid out from cached hashes, made by hashing their object,
 * and generations that failed. */
struct tgen_stats {
    unsigned long long cached, hashed, failed;
};
void tgen_stats(struct tgen *t, struct tgen_stats *out);

/* Queues background generation of e's torrent when it is not cached and not already queued
 * or generating in the background (bounded queue; a full queue drops the request). */
void tgen_prefetch(struct tgen *t, const struct meta_entry *e);

#endif
