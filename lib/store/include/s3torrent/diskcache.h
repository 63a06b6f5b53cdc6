/* diskcache.h — a persistent cache of object blocks in one directory (docs/DESIGN.md §15), the
 * second tier behind the memory block cache (blocks.h): a block is one file named by the SHA-256
 * of its identity, holding the identity and a checksum of its bytes, so a damaged or stale file
 * is found and deleted, never served. Least recently used files go first, under a byte cap and
 * above a free-space floor; the index is rebuilt from the directory on open. Thread-safe. */
#ifndef S3TORRENT_DISKCACHE_H
#define S3TORRENT_DISKCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "s3torrent/err.h"
#include "s3torrent/log.h"

/* The floor: a block is written only if the file system keeps at least this share of its size
 * free, and at least DISKCACHE_FLOOR_MIN bytes; older blocks are evicted to make room first. */
#define DISKCACHE_FLOOR_PERCENT 5
#define DISKCACHE_FLOOR_MIN     (64ull << 20)
#define DISKCACHE_DATA_MAX      (64u << 20) /* bytes of one block, at most */

struct diskcache;

struct diskcache_config {
    const char *dir;   /* created 0700 when missing; refused if another user owns it or
                        * group or others may write to it */
    uint64_t max;      /* bytes of files kept, at most */
    size_t block_size; /* the usual block: the index holds at most 4 * max / block_size files */
    uint64_t min_free; /* 0: the floor above; else this many bytes kept free (for tests) */
    const struct logger *log; /* may be NULL */
};

/* Which block a file holds: an object version (version_id "" when the pin names none) and the
 * block_size-byte block index of it. Strings are any bytes but NUL. */
struct diskcache_id {
    const char *bucket, *key, *etag, *version_id;
    uint64_t block_size, index;
};

/* What the cache did since it was opened (files and bytes: what it holds now). */
struct diskcache_stats {
    uint64_t hits, misses, writes, evictions, corrupt, skipped;
    uint64_t files, bytes;
};

/* Opens (or creates) the cache of c (its strings copied), deleting temporary files a crash left
 * and evicting down to the cap. Returns 0 and *out (free with diskcache_free), or an errno with
 * a one-line err. */
int diskcache_open(const struct diskcache_config *c, struct diskcache **out, err_t *err);
void diskcache_free(struct diskcache *dc);

/* Copies block id, exactly len bytes, into dst. Returns 0 on a hit; ENOENT when it is not
 * there; EBADMSG when its file was damaged, truncated or held another block (the file is
 * deleted and counted as corrupt). */
int diskcache_get(struct diskcache *dc, const struct diskcache_id *id, uint8_t *dst, size_t len);

/* Stores len bytes of block id (replacing an older file), evicting least recently used files
 * to stay under the cap and above the floor; *evicted (may be NULL) says how many. Returns 0,
 * ENOSPC when there is no room even with the cache empty, or the errno of a failed write (the
 * block is then simply not cached). */
int diskcache_put(struct diskcache *dc, const struct diskcache_id *id, const uint8_t *data,
                  size_t len, unsigned *evicted);

/* A snapshot of the counters. */
void diskcache_stats(struct diskcache *dc, struct diskcache_stats *out);

#endif
