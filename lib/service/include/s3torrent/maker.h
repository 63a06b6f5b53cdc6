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

/* The multi-file torrent named name of the objects below bucket/prefix that store_prefix_scan
 * listed in dir (put in order here by torrent_files_order), made as o says (the caller sets its
 * web seeds, pad and progress; threads come from mk), appended to out (docs/DESIGN.md §3, §13):
 * the torrent's own cache entry when this listing (every path, size and ETag) was made with the
 * same options before (key prefix, ETag a digest of the listing, fingerprint "s3tset1/" and a
 * digest of the options), else hashed with each object's hashes composed from the cache
 * (maker_files_hooks) and kept there. res (may be NULL) gets the versions, the info-hashes and
 * whether it was cached. Returns 0 or an errno with err set: EINVAL when the files hold no
 * byte or a path cannot be in a torrent, ESTALE when an object changed while it was read. */
int maker_make_prefix(const struct maker *mk, const char *bucket, const char *prefix,
                      const char *name, struct source_dir *dir, const struct torrent_opts *o,
                      struct buf *out, struct maker_result *res, err_t *err);

/* Like maker_make_prefix, from the torrent's own cache entry alone: ENOENT (err untouched) when
 * it is not cached (or there is no cache), and no object is read. */
int maker_prefix_cached(const struct maker *mk, const char *bucket, const char *prefix,
                        const char *name, struct source_dir *dir, const struct torrent_opts *o,
                        struct buf *out, struct maker_result *res, err_t *err);

/* How a set's torrent is made beyond the recipe (docs/DESIGN.md §3). */
struct maker_set {
    const char *ws_key;              /* a prefix without its '/': the web seed is BASE plus its
                                      * parent; NULL: BASE/ (a directory) */
    const struct maker_files *files; /* composes from the cache (maker_files_hooks); may be NULL */
    const char *bucket, *prefix;     /* with files: the objects' prefix (ending in '/', or ""):
                                      * the torrent is maker_make_prefix's, cached whole */
    bool pad;                        /* v1: BEP 47 pad files */
    unsigned threads;                /* 0: all cores */
    void (*progress)(void *arg, uint64_t done, uint64_t total); /* may be NULL */
    void *progress_arg;
};

/* Appends the multi-file torrent of dir's files (source_dir_scan's or store_prefix_scan's; sorted
 * here into the torrent's order), named name and made as recipe r says, dated with the newest
 * file, to out; ih1 and ih2 (either may be NULL) get the info-hashes. The one way `create DIR`,
 * `create s3://BUCKET/PREFIX/` and sync's prefix torrents make one, so they agree byte for byte.
 * Returns 0, ENODATA when the files hold no byte (nothing to share), or an errno with err set. */
int maker_make_set(const struct maker_set *s, struct source_dir *dir, const char *name,
                   const struct torrent_recipe *r, struct buf *out, uint8_t ih1[20],
                   uint8_t ih2[32], err_t *err);

/* The s3torrent-outer digest (docs/DESIGN.md §4) that maker_make_set would give dir's torrent,
 * without hashing. Returns 0 or ENOMEM with err set. */
int maker_set_outer(const struct source_dir *dir, const char *name, const struct torrent_recipe *r,
                    const char *ws_key, char out[TORRENT_OUTER_HEX], err_t *err);

/* The cache key part of the hashes of a torrent: the meta version and the piece length that
 * recipe r resolves to for an object of size bytes ("s3th1/v1/262144"); out holds 64 bytes. */
void maker_fingerprint(const struct torrent_recipe *r, uint64_t size, char out[64]);

#endif
