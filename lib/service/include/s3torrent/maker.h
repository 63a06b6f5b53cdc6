/* maker.h — the one torrent maker every front end calls (docs/DESIGN.md §3, §13): an object of a
 * store and a recipe in, torrent bytes and what hashing learned out. The cache keeps only what
 * hashing learned (piece hashes, keyed by bucket, key, ETag, meta version and piece length), and
 * every field outside it (trackers, web seed, comment, creation date from the object's
 * Last-Modified) is laid out anew from the recipe at each call: a re-upload of the same bytes,
 * or a new tracker or web seed, costs no hashing and never serves a stale outer field. */
#ifndef S3TORRENT_MAKER_H
#define S3TORRENT_MAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "s3torrent/buf.h"
#include "s3torrent/err.h"
#include "s3torrent/hasher.h"
#include "s3torrent/log.h"
#include "s3torrent/store.h"
#include "s3torrent/torrent.h"

/* A cache of hashes (the sqlite cache on a host; none on Lambda). get appends to out and
 * returns 0, or ENOENT; put returns 0 or an errno. A failure only costs a rehash. */
struct maker_cache {
    int (*get)(void *arg, const char *bucket, const char *key, const char *etag,
               const char *fingerprint, struct buf *out, err_t *err);
    int (*put)(void *arg, const char *bucket, const char *key, const char *etag,
               const char *fingerprint, const uint8_t *data, size_t len, err_t *err);
    void *arg;
};

struct maker {
    struct store *store;
    const struct maker_cache *cache; /* NULL: no cache */
    unsigned threads;                /* hashing threads; 0: all cores */
    unsigned parallel;               /* reads in flight per object; 0: the store's default */
    const struct logger *log;        /* cache failures are warnings here; may be NULL */
};

/* What a made torrent is: the info-hashes (of the versions it has), the piece layout, and the
 * piece hashes themselves (owned: free with maker_result_free). */
struct maker_result {
    bool v1, v2;
    uint8_t ih1[20], ih2[32];
    uint64_t piece_length, npieces;
    bool cached; /* the hashes were known (the cache, an old torrent): no byte was read */
    struct hasher_result hashes;
};

/* Appends the torrent of bucket/key at version obj, made as recipe r says, to out. src (may be
 * NULL) hashes those bytes instead of the store's (a local copy; the cache is then neither read
 * nor written, since the caller has still to check the copy). res (may be NULL) gets what the
 * torrent is. Returns 0, or a positive errno with err set (out unchanged): EINVAL when no
 * torrent can be made (a zero-byte object, a name no torrent can have, bad options). */
int maker_make(const struct maker *mk, const char *bucket, const char *key,
               const struct store_object *obj, const struct torrent_recipe *r, struct source *src,
               struct buf *out, struct maker_result *res, err_t *err);

/* Like maker_make, from the cache alone: ENOENT (err untouched) when the hashes are not cached,
 * and no byte of the object is read. */
int maker_cached(const struct maker *mk, const char *bucket, const char *key,
                 const struct store_object *obj, const struct torrent_recipe *r, struct buf *out,
                 struct maker_result *res, err_t *err);

/* Like maker_make, with hashes of these bytes learned elsewhere (known: an existing torrent's,
 * see metainfo_hashes): used, with no read, when they fit what the recipe resolves to (piece
 * length, versions), and kept in the cache for the next call; else the torrent is made as
 * maker_make makes it. */
int maker_make_known(const struct maker *mk, const char *bucket, const char *key,
                     const struct store_object *obj, const struct torrent_recipe *r,
                     const struct hasher_result *known, struct buf *out, struct maker_result *res,
                     err_t *err);

void maker_result_free(struct maker_result *res);

/* A multi-file torrent of objects (store_prefix_scan's parts, in the order they are hashed)
 * composed from the cache (docs/DESIGN.md §3, §13): sets o->known and o->learned so a v2, hybrid
 * or padded v1 session takes each object's hashes from its single-file torrent's cache entry at
 * the session's piece length (bucket, key, ETag, "s3th1/META/PLEN", else "s3th1/hybrid/PLEN"),
 * reading no byte of it (v1 needs an entry that kept the padded last piece), and leaves there
 * what it hashed, for the single-file torrents (create, sync, the mount). mk's cache must be
 * thread-safe (the sqlite one is); without a cache nothing is set. mf, its maker and files must
 * outlive the hashing. */
struct maker_files {
    const struct maker *mk;
    const struct source_part *files;
};
void maker_files_hooks(const struct maker_files *mf, struct torrent_opts *o);

/* The cache key part of the hashes of a torrent: the meta version and the piece length that
 * recipe r resolves to for an object of size bytes ("s3th1/v1/262144"); out holds 64 bytes. */
void maker_fingerprint(const struct torrent_recipe *r, uint64_t size, char out[64]);

#endif
