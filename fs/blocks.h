/* blocks.h — object data for the mount: a bounded cache of fixed-size blocks filled by ranged
 * GETs, shared by every open file, with read-ahead for sequential readers. BitTorrent's 16 KiB
 * reads at random offsets land in blocks, so a piece costs one GET, not one per request. */
#ifndef S3TORRENTFS_BLOCKS_H
#define S3TORRENTFS_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "fs.h"
#include "s3torrent/source.h"

/* An open object: the S3 source every block of it is read from, and what identifies its
 * version in the cache. */
struct blocks_obj {
    struct source *src; /* an S3 source pinned to one ETag */
    char *ident;        /* "key\nETag" */
    int refs;
};

/* Returns a new block cache of about budget bytes in blocks of block_size bytes, with
 * fetchers threads for read-ahead, or NULL when it cannot start. */
struct blocks *blocks_new(struct fs *fs, uint64_t budget, size_t block_size, unsigned fetchers);
void blocks_free(struct blocks *b);

/* Copies object bytes [off, off + len) into dst (fewer at the end of the object), fetching the
 * blocks that are missing; with ahead > 0 also queues the next ahead bytes for read-ahead.
 * Returns the number of bytes copied, or a negative errno (-EIO on a failed fetch, whose
 * reason is logged). */
long blocks_read(struct blocks *b, struct blocks_obj *o, uint64_t off, size_t len, uint8_t *dst,
                 uint64_t ahead);

/* Reference counting of open objects (the last release frees the source). */
void blocks_obj_ref(struct blocks *b, struct blocks_obj *o);
void blocks_obj_release(struct blocks *b, struct blocks_obj *o);

#endif
