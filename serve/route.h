/* route.h — what a request to `s3torrent serve` asks for (docs/DESIGN.md §14): the method and
 * the request target as the client sent it (path and query, still percent-encoded) in, one
 * route out. Pure (no I/O, no allocation), so the unit tests and the fuzz target drive it whole.
 *
 *   /BUCKET/KEY                   the object's bytes (a web seed, BEP 19), current version
 *   /~e/ETAG/BUCKET/KEY           the same, pinned: only while the object's ETag is ETAG
 *   /~v/VERSION/BUCKET/KEY        the same, of that version (versioned buckets)
 *   /~m/SECONDS/BUCKET/KEY        the same, while its Last-Modified is at most SECONDS (Unix
 *                                 time): the web seed of a prefix's torrent
 *   /BUCKET/KEY?torrent           the object's torrent (S3's retired GetObjectTorrent)
 *   /BUCKET/KEY.torrent           the same
 *   /BUCKET/PREFIX/?torrent       the multi-file torrent of every object below PREFIX
 *   /BUCKET/PREFIX/?rss           an RSS 2.0 feed of the newest torrents under PREFIX
 *   /BUCKET/PREFIX/?manifest      a JSON manifest of every object's info-hashes under PREFIX
 *   /metrics                      Prometheus text
 *
 * Each KEY segment is percent-decoded on its own; a segment that is empty, "." or "..", or
 * that decodes to a '/', a control byte or a NUL is refused, so the key a request names is
 * exactly the path it shows. Only the buckets and prefixes served are reachable. */
#ifndef S3TORRENT_SERVE_ROUTE_H
#define S3TORRENT_SERVE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#define ROUTE_TARGET_MAX 8192 /* bytes of a request target */
#define ROUTE_KEY_MAX    1024 /* bytes of a key, as S3 */
#define ROUTE_ETAG_MAX   128
#define ROUTE_VERSION_MAX 64 /* bytes of a version id, with its NUL (as store_object's) */

/* A bucket served, and the key prefix served in it ("" for every key). */
struct route_scope {
    const char *bucket;
    const char *prefix;
};

enum route_kind {
    ROUTE_ERROR,          /* answer status with text */
    ROUTE_OBJECT,         /* the bytes of bucket/key */
    ROUTE_TORRENT,        /* the torrent of bucket/key */
    ROUTE_METRICS,        /* /metrics */
    ROUTE_PREFLIGHT,      /* OPTIONS: a CORS preflight, answered with no body */
    ROUTE_RSS,            /* the feed of bucket/key, key being a prefix ("" or ending in '/') */
    ROUTE_MANIFEST,       /* the manifest of the same */
    ROUTE_PREFIX_TORRENT, /* the multi-file torrent of bucket/key, key a prefix ending in '/' */
};

struct route {
    enum route_kind kind;
    bool head; /* HEAD: the headers of GET without the body */
    char bucket[256];
    char key[ROUTE_KEY_MAX + 1]; /* the key, or the feed's prefix */
    char etag[ROUTE_ETAG_MAX];   /* the pinned ETag; "" for the current version */
    char version[ROUTE_VERSION_MAX]; /* the pinned version id; "" for the current version */
    long long newest;          /* the newest Last-Modified pinned (Unix seconds); -1 for none */
    unsigned status;           /* ROUTE_ERROR: 400, 404, 405 or 414 */
    char text[160];            /* ROUTE_ERROR: one line, printable */
};

/* Routes method and target against the scopes served. Always fills *out; returns its kind. */
enum route_kind route_parse(const struct route_scope *scopes, size_t nscopes, const char *method,
                            const char *target, struct route *out);

#endif
