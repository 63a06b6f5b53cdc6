/* status.h — the status item of docs/DESIGN.md §6, one per object in DynamoDB, written with
 * conditions so that a writer on an older version never overwrites a newer one and READY never
 * goes back. */
#ifndef S3TORRENT_STATUS_H
#define S3TORRENT_STATUS_H

#include <stdint.h>
#include <time.h>

#include "s3torrent/ddb.h"
#include "s3torrent/err.h"

#define STATUS_KEY_ATTR_DEFAULT "s3_uri"

/* Where status items live. Borrowed by every call; nothing is allocated. */
struct status_store {
    struct ddb_client *ddb;
    const char *table;
    const char *key_attr; /* partition key attribute (--ddb-key-attr); NULL: "s3_uri" */
    /* injectable for tests; NULL: time() and nanosleep */
    time_t (*now)(void);
    void (*sleep_ms)(long ms);
};

/* The object version a write is about. An item's version is (object_mtime, etag): a write for
 * (M, E) replaces an item of a lower object_mtime (or none), and updates one of the same M and
 * E; anything else is a newer version (or a same-second twin that got there first) and wins. */
struct status_object {
    const char *bucket;
    const char *key;
    const char *etag; /* without quotes */
    uint64_t size;
    int64_t mtime;      /* the object's Last-Modified, Unix seconds (stored as object_mtime) */
    const char *source; /* "sync" or "lambda" */
    int64_t lease_until; /* HASHING: Unix seconds until which the hashing is this writer's
                          * (0: now + STATUS_LEASE_DEFAULT) */
};

#define STATUS_LEASE_DEFAULT 900 /* seconds a HASHING lease lasts when the writer names none */

/* What a READY item records. */
struct status_torrent {
    const char *torrent_key;  /* key + ".torrent" */
    const char *info_hash;    /* v1 hex; NULL for a v2-only torrent */
    const char *info_hash_v2; /* v2 hex (full SHA-256); NULL for v1 */
    const char *magnet;
    const char *magnet_v1; /* btih alone (v1 and hybrid; NULL for v2-only): magnet_v1 */
    uint64_t piece_length;
    uint64_t piece_count;
    const char *meta_version; /* "v1", "v2", "hybrid" */
    uint64_t runs; /* the runs the Lambda's fan-out hashed it in (docs/DESIGN.md §10); 0: one */
};

/* HASHING: sets the version attributes, source and updated_at, and adds 1 to attempts
 * atomically (starting at 1 for a new version); drops a previous version's torrent fields.
 * Returns 0; EEXIST when the item is for a newer version or is already READY for this one
 * (nothing changed; err says which); or another errno with err set. */
int status_begin(const struct status_store *st, const struct status_object *o, err_t *err);

/* READY: records the torrent's fields. Call it only after the .torrent object for o->etag is in
 * S3. Returns 0, EEXIST when a newer version's status is there, or another errno. */
int status_ready(const struct status_store *st, const struct status_object *o,
                 const struct status_torrent *t, err_t *err);

/* FAILED with error (one line). A READY item of the same version stays READY. Returns 0,
 * EEXIST (newer version, or READY already), or another errno. */
int status_failed(const struct status_store *st, const struct status_object *o, const char *error,
                  err_t *err);

/* A prefix's item (docs/DESIGN.md §6): an object's attributes for the set of objects below the
 * prefix (the key is s3://BUCKET/PREFIX/, etag the set digest, size the bytes of all, object_mtime
 * the newest Last-Modified), plus these. Its version is the digest alone: a write for another set
 * replaces the item unless another writer's HASHING lease runs. */
#define STATUS_STALE_MAX 100         /* keys kept in each stale_ list */
#define STATUS_FILES_MAX (256 << 10) /* bytes of keys and ETags over which the map is left out */
struct status_set {
    uint64_t file_count;
    /* the files map, relative key -> ETag, written on READY (the torrent's set) */
    const char *const *rel, *const *etags;
    size_t nfiles;
    /* the keys whose change made the torrent stale (stale_new, stale_changed, stale_removed) */
    const char *const *added, *const *changed, *const *removed;
    size_t nadded, nchanged, nremoved;
};

/* status_begin, status_ready and status_failed for a prefix's item. Return 0, EBUSY when another
 * writer's lease runs, EEXIST (READY already for this set; for READY, another set's item), or
 * another errno with err set. */
int status_set_begin(const struct status_store *st, const struct status_object *o,
                     const struct status_set *set, err_t *err);
int status_set_ready(const struct status_store *st, const struct status_object *o,
                     const struct status_torrent *t, const struct status_set *set, err_t *err);
int status_set_failed(const struct status_store *st, const struct status_object *o,
                      const struct status_set *set, const char *error, err_t *err);

/* Calls each(arg, relative key, ETag) for the files map of the item of s3://bucket/prefix, in no
 * order, stopping at a non-zero return (returned). Returns 0, ENOENT when there is no item or no
 * map, or another errno with err set. */
int status_set_files(const struct status_store *st, const char *bucket, const char *prefix,
                     int (*each)(void *arg, const char *rel, const char *etag), void *arg,
                     err_t *err);

/* status_set_files over an item already read (item may be NULL: ENOENT); uri names it in err. */
int status_item_files(json_object *item, const char *uri,
                      int (*each)(void *arg, const char *rel, const char *etag), void *arg,
                      err_t *err);

/* One item as read back. Absent attributes are "" or 0. */
struct status_item {
    char uri[1100];
    char status[16]; /* PENDING, HASHING, READY, FAILED */
    char bucket[64];
    char object_key[1025];
    char etag[128];
    uint64_t size;
    int64_t object_mtime;
    char torrent_key[1040];
    char info_hash[41];
    char info_hash_v2[65];
    char magnet[8192];
    char magnet_v1[8192];
    uint64_t piece_length;
    uint64_t piece_count;
    char meta_version[16];
    uint64_t attempts;
    uint64_t runs; /* READY after a fan-out: its runs; 0 otherwise */
    char error[1024];
    char source[16];
    char updated_at[32]; /* 2024-05-01T12:00:00Z */
    uint64_t file_count; /* a prefix's */
};

/* Reads the item of s3://bucket/key (a strongly consistent read). Returns 0 with *out filled,
 * ENOENT when there is none, EOVERFLOW when an attribute does not fit its field, EPROTO for an
 * attribute of the wrong type, or another errno; err is set on failure. */
int status_get(const struct status_store *st, const char *bucket, const char *key,
               struct status_item *out, err_t *err);

/* Development: creates the table (PAY_PER_REQUEST, partition key key_attr of type S) unless it
 * exists, then polls DescribeTable until it is ACTIVE (every 500 ms, for at most 2 minutes).
 * Returns 0, EINVAL when an existing table has another partition key, ETIMEDOUT, or another
 * errno with err set. */
int status_create_table(const struct status_store *st, err_t *err);

#endif
