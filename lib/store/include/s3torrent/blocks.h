/* blocks.h — object data for the mount and `s3torrent serve` (docs/DESIGN.md §13, §14): a
 * bounded cache of fixed-size blocks of one bucket's objects, filled by ranged GETs, shared by
 * every reader, with read-ahead for sequential readers. BitTorrent's 16 KiB reads at random
 * offsets land in blocks, so a piece costs one GET, not one per request, and many peers
 * asking for the same pieces cost one GET. A disk cache (diskcache.h, §15) may sit behind it. */
#ifndef S3TORRENT_BLOCKS_H
#define S3TORRENT_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "s3torrent/log.h"
#include "s3torrent/store.h"

/* An object version in the cache, whose blocks are read from the store pinned to its ETag. Every
 * open of the same key and ETag shares one, so a reopened file finds its blocks still cached. */
struct blocks_obj {
    char *key;
    struct store_object pin;
    char *ident; /* "key\nETag" */
    int refs;    /* open files, cached blocks and queued read-ahead */
    struct blocks_obj *next;
};

/* What a cache did: ranged GETs made (read-ahead runs included) and the bytes they brought, and
 * blocks read by blocks_read that were there already (or being fetched by another reader) or
 * that it had to fetch. With a disk tier: blocks found there, not found, written to it, files
 * evicted by those writes, and damaged files found (deleted, the block fetched again). */
struct blocks_stats {
    uint64_t gets, fetched;
    uint64_t hits, misses;
    uint64_t disk_hits, disk_misses, disk_writes, disk_evictions, disk_corrupt;
    uint64_t bytes, peak_bytes; /* of block buffers (ready and loading) now, and at most */
};

/* Returns a new block cache over bucket of store (borrowed, as log) of about budget bytes in
 * blocks of block_size bytes, with fetchers threads for read-ahead, or NULL when it cannot
 * start. Failed fetches are logged to log. */
struct blocks *blocks_new(struct store *store, const char *bucket, const struct logger *log,
                          uint64_t budget, size_t block_size, unsigned fetchers);
void blocks_free(struct blocks *b);

/* Puts the disk cache dc (borrowed: it must outlive b; may be shared by several caches) behind
 * b, before its first read: a block missing from memory is looked for there before the store,
 * and a block fetched from the store is written there. */
struct diskcache;
void blocks_set_disk(struct blocks *b, struct diskcache *dc);

/* Copies object bytes [off, off + len) into dst (fewer at the end of the object), fetching the
 * blocks that are missing; with ahead > 0 also queues the next ahead bytes for read-ahead.
 * Returns the number of bytes copied, or a negative errno (-EIO on a failed fetch, whose
 * reason is logged). */
long blocks_read(struct blocks *b, struct blocks_obj *o, uint64_t off, size_t len, uint8_t *dst,
                 uint64_t ahead);

/* For a sequential reader whose stream outruns the cache (its blocks would be evicted before
 * any re-read): when [off, off + len) starts a block and holds all of it, and that block is
 * cached (or being fetched: it waits) and nobody has read or is reading it, takes the block out
 * of the cache and hands its buffer to the caller, who frees it with free(); *out is set and the
 * block's bytes returned. Queues read-ahead as blocks_read does. Returns 0 when it did not take
 * one (the caller then reads with blocks_read), and never fetches. */
long blocks_take(struct blocks *b, struct blocks_obj *o, uint64_t off, size_t len, uint8_t **out,
                 uint64_t ahead);

/* The shared entry of (key, pin's ETag), referenced for the caller: an existing one or a new one.
 * NULL when out of memory. */
struct blocks_obj *blocks_obj_get(struct blocks *b, const char *key,
                                  const struct store_object *pin);
/* Drops a reference; the last one frees the entry and its source. */
void blocks_obj_release(struct blocks *b, struct blocks_obj *o);

/* A snapshot of the counters. */
void blocks_stats(struct blocks *b, struct blocks_stats *out);

#endif
