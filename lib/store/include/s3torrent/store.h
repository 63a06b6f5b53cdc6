/* store.h — the object-store seam (docs/DESIGN.md §13): the few operations the torrent maker,
 * sync, the mount and the Lambda need from wherever objects live. S3 is one implementation
 * (store_s3_new); an in-memory store with a fault schedule (store_mem.h) is another, for tests.
 * Every operation is thread-safe and returns 0 or a positive errno with err set: ENOENT (no such
 * object), EACCES, ESTALE (the object is no longer the version pinned), EAGAIN (throttled past
 * the retries), EIO or EPROTO (the service failed or answered nonsense). */
#ifndef S3TORRENT_STORE_H
#define S3TORRENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "s3torrent/buf.h"
#include "s3torrent/err.h"
#include "s3torrent/http.h"
#include "s3torrent/source.h"

#define STORE_ETAG_MAX 128 /* bytes of an ETag, NUL included */
#define STORE_META_MAX 8

/* A version of an object: what a listing or a HEAD says, small enough to keep many of. */
struct store_object {
    char etag[STORE_ETAG_MAX]; /* quotes stripped */
    uint64_t size;
    int64_t mtime;       /* Last-Modified, Unix seconds */
    char version_id[64]; /* "" when the store does not version (or a listing) */
};

/* What a HEAD says beyond the version: content type and user metadata (names without the
 * x-amz-meta- prefix, lower-case; longer values than fit are dropped). */
struct store_meta {
    char content_type[128];
    struct {
        char name[64];
        char value[256];
    } item[STORE_META_MAX];
    size_t n;
};

/* Listing callbacks: called in key order, one page at a time (a page is never held whole by
 * the store); key and prefix are valid only during the call. Return 0 to go on, or a positive
 * errno (optionally setting err) to stop the listing, which then returns it. */
struct store_list_cb {
    int (*object)(void *ctx, const char *key, const struct store_object *obj, err_t *err);
    int (*prefix)(void *ctx, const char *prefix, err_t *err); /* with a delimiter; may be NULL */
    void *ctx;
};

struct store;

struct store_ops {
    /* The object's current version; meta may be NULL. */
    int (*head)(struct store *st, const char *bucket, const char *key, struct store_object *out,
                struct store_meta *meta, err_t *err);
    /* One version of the object (version_id from a HEAD); ENOENT when it is gone. May be
     * NULL: ENOTSUP. */
    int (*head_version)(struct store *st, const char *bucket, const char *key,
                        const char *version_id, struct store_object *out, err_t *err);
    /* Every object under prefix ("" for all); delimiter NULL for a recursive listing. */
    int (*list)(struct store *st, const char *bucket, const char *prefix, const char *delimiter,
                const struct store_list_cb *cb, err_t *err);
    /* Bytes [off, off + total) of the version pinned by obj (its ETag, and its version id when
     * it names one), all of them, into the iovcnt buffers of iov one after the other (total is
     * the sum of their lengths): one ranged read, scattered, so a run of cache blocks is read
     * with one GET and no copy. */
    int (*read_at)(struct store *st, const char *bucket, const char *key,
                   const struct store_object *obj, uint64_t off, const struct iovec *iov,
                   unsigned iovcnt, err_t *err);
    /* A byte source over the version pinned by obj, for the hasher; parallel: streams worth
     * running at once (0: the store's default). Free with source_free. */
    int (*open_source)(struct store *st, const char *bucket, const char *key,
                       const struct store_object *obj, unsigned parallel, struct source **out,
                       err_t *err);
    /* The whole object (at most b's maximum, else EFBIG) appended to b; etag (may be NULL)
     * pins the version. */
    int (*get_all)(struct store *st, const char *bucket, const char *key, const char *etag,
                   struct buf *b, err_t *err);
    /* Stores body under key with a content type and user metadata. */
    int (*put)(struct store *st, const char *bucket, const char *key, const void *body, size_t len,
               const char *content_type, const struct http_header *meta, size_t nmeta, err_t *err);
    /* The size of part `part` of a multipart upload and the part count (EPROTO when the store
     * does not say). May be NULL: EPROTO. */
    int (*head_part)(struct store *st, const char *bucket, const char *key, const char *etag,
                     unsigned part, uint64_t *part_size, unsigned *parts, err_t *err);
    /* A URL a client without credentials can GET the object with for expires seconds,
     * pinned to obj's version id when it names one (the ETag cannot be pinned: a URL carries
     * no If-Match), appended to b NUL-terminated. It is a credential: never log it. May be
     * NULL: ENOTSUP. */
    int (*presign_get)(struct store *st, const char *bucket, const char *key,
                       const struct store_object *obj, unsigned expires, struct buf *b, err_t *err);
    void (*destroy)(struct store *st);
};

struct store {
    const struct store_ops *ops;
};

/* Calls through the interface (a missing head_part is EPROTO, a missing head_version or
 * presign_get ENOTSUP). */
int store_head(struct store *st, const char *bucket, const char *key, struct store_object *out,
               struct store_meta *meta, err_t *err);
int store_head_version(struct store *st, const char *bucket, const char *key,
                       const char *version_id, struct store_object *out, err_t *err);
int store_list(struct store *st, const char *bucket, const char *prefix, const char *delimiter,
               const struct store_list_cb *cb, err_t *err);
int store_read_at(struct store *st, const char *bucket, const char *key,
                  const struct store_object *obj, uint64_t off, uint8_t *dst, size_t n, err_t *err);
/* store_read_at into several buffers, one after the other (the read_at op). */
int store_read_atv(struct store *st, const char *bucket, const char *key,
                   const struct store_object *obj, uint64_t off, const struct iovec *iov,
                   unsigned iovcnt, err_t *err);
int store_open_source(struct store *st, const char *bucket, const char *key,
                      const struct store_object *obj, unsigned parallel, struct source **out,
                      err_t *err);
int store_get_all(struct store *st, const char *bucket, const char *key, const char *etag,
                  struct buf *b, err_t *err);
int store_put(struct store *st, const char *bucket, const char *key, const void *body, size_t len,
              const char *content_type, const struct http_header *meta, size_t nmeta, err_t *err);
int store_head_part(struct store *st, const char *bucket, const char *key, const char *etag,
                    unsigned part, uint64_t *part_size, unsigned *parts, err_t *err);
int store_presign_get(struct store *st, const char *bucket, const char *key,
                      const struct store_object *obj, unsigned expires, struct buf *b, err_t *err);

/* The objects below prefix ("" for the whole bucket, else ending in '/'), as the parts of a
 * multi-file torrent named after the prefix's last segment (the bucket for ""), paths relative
 * to the prefix, each opened through store_open_source pinned to the version listed (no HEAD;
 * a change while it is read is ESTALE). Directory markers (keys ending in '/') are left out
 * silently; keys that cannot be paths (an empty, '.' or '..' segment, a segment over 255 bytes)
 * and a file that is also a directory of other keys (the directory wins) are left out with a
 * call to skip (may be NULL): the mount's rules (docs/DESIGN.md §5). include and exclude are
 * source_path_kept's. Zero-byte objects are empty files. Returns 0 or an errno with err set; the
 * caller frees out with source_dir_free (also after a failure); st must outlive out. */
int store_prefix_scan(struct store *st, const char *bucket, const char *prefix,
                      const char *const *include, size_t ninclude, const char *const *exclude,
                      size_t nexclude, void (*skip)(void *arg, const char *key, const char *why),
                      void *skip_arg, struct source_dir *out, err_t *err);

/* The object a part of store_prefix_scan's is (borrowed from it): true, or false for another
 * kind of part. */
bool store_prefix_part(const struct source_part *p, const char **bucket, const char **key,
                       const struct store_object **obj);

/* Frees a store of any kind (NULL is fine). */
void store_free(struct store *st);

/* The value of user metadata name in m, or NULL. */
const char *store_meta_get(const struct store_meta *m, const char *name);

/* A store over an S3 client (borrowed: it must outlive the store). Returns NULL when out of
 * memory. */
struct s3_client;
struct store *store_s3_new(struct s3_client *s3);

#endif
