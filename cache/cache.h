/* cache.h — the sqlite cache of what hashing learned (docs/DESIGN.md §13), shared by s3torrentfs
 * and s3torrent sync on one host: blobs keyed by (bucket, key, ETag, fingerprint), WAL mode,
 * LRU-evicted to a byte budget, file 0600 in a 0700 directory, safe for several processes at
 * once. */
#ifndef S3TORRENT_CACHE_H
#define S3TORRENT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "s3torrent/buf.h"
#include "s3torrent/err.h"

struct cache;

/* Opens (creating it and its directory when missing) the cache at path. max_bytes caps the
 * torrents' total size (0: no cap); the least recently used are evicted past it. Refuses a
 * database or directory that others can read or write (EACCES). Returns 0 or a positive errno
 * with err set (EIO: not a database or damaged; ENOTSUP: made by a newer s3torrent); close with
 * cache_close. Thread-safe. */
int cache_open(const char *path, uint64_t max_bytes, struct cache **out, err_t *err);
/* Closes the cache and frees c (NULL is fine). */
void cache_close(struct cache *c);

/* The default path: $XDG_CACHE_HOME/s3torrent/torrents.db, else ~/.cache/s3torrent/..., and
 * /var/cache/s3torrent/torrents.db for root (euid 0, whatever the environment). Returns 0 or
 * ENAMETOOLONG/ENOENT. */
int cache_default_path(char *out, size_t len);

/* Appends the cached torrent for (bucket, key, etag, fingerprint) to out and marks it used.
 * Returns 0, ENOENT when absent (err untouched), EFBIG when out's maximum is reached, or another
 * errno with err set. */
int cache_get(struct cache *c, const char *bucket, const char *key, const char *etag,
              const char *fingerprint, struct buf *out, err_t *err);

/* Stores a torrent (replacing any for the same four-part key, and dropping entries for other
 * ETags of the same object and fingerprint), then evicts past the budget. Atomic: a reader sees
 * the whole torrent or none. Returns 0 or a positive errno with err set. */
int cache_put(struct cache *c, const char *bucket, const char *key, const char *etag,
              const char *fingerprint, const uint8_t *data, size_t len, err_t *err);

/* Counters for tests and logs: entries and total bytes of the file; hits, misses and evictions
 * of this handle since cache_open. Returns 0 or a positive errno with err set. */
struct cache_stats {
    uint64_t entries, bytes, hits, misses, evictions;
};
int cache_stats(struct cache *c, struct cache_stats *out, err_t *err);

/* The cache as the torrent maker's cache of hashes (docs/DESIGN.md §13): out calls cache_get and
 * cache_put on c. */
struct maker_cache;
void cache_as_maker_cache(struct cache *c, struct maker_cache *out);

#endif
