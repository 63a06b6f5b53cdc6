/* s3.h — the S3 client: addressing (endpoint, region, path- or virtual-hosted style), SigV4
 * signing on every attempt, the AWS standard retry mode, and the operations the programs use:
 * HeadObject, ranged GetObject with If-Match (streamed), PutObject, ListObjectsV2. */
#ifndef S3TORRENT_S3_H
#define S3TORRENT_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include "s3torrent/cred.h"
#include "s3torrent/err.h"
#include "s3torrent/http.h"
#include "s3torrent/s3xml.h"
#include "s3torrent/source.h"

/* How requests name the bucket: AUTO is virtual-hosted (BUCKET.HOST) on AWS and path-style
 * (HOST/BUCKET) for custom endpoints and dotted bucket names; PATH and VIRTUAL force one. */
enum s3_addressing { S3_ADDRESSING_AUTO, S3_ADDRESSING_PATH, S3_ADDRESSING_VIRTUAL };

/* Parses "auto", "path" or "virtual" (the aws CLI's addressing_style values). Returns 0, or
 * EINVAL with err naming the bad value. */
int s3_addressing_parse(const char *s, enum s3_addressing *out, err_t *err);

struct s3_config {
    const char *endpoint; /* NULL: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS's */
    const char *region;   /* NULL: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1 */
    enum s3_addressing addressing;
    bool no_sign;          /* anonymous requests (public buckets) */
    unsigned max_attempts; /* reads; 0: AWS_MAX_ATTEMPTS, else 5 (writes use 3 at most) */
    struct http_client *http;
    struct cred_chain *creds; /* unused with no_sign */
    const char *trace_id;     /* sent as X-Amzn-Trace-Id when set (Lambda) */
    /* injectable for tests; NULL: time(), random(), nanosleep */
    time_t (*now)(void);
    double (*random)(void);
    void (*sleep_ms)(long ms);
};

struct s3_client;

/* Returns 0 with *out ready, or EINVAL (bad endpoint) / ENOMEM with err set. The config's
 * pointers are borrowed and must outlive the client; strings are copied. */
int s3_client_new(const struct s3_config *cfg, struct s3_client **out, err_t *err);
void s3_client_free(struct s3_client *s3);
/* The X-Amzn-Trace-Id of the client's requests from now on (NULL: none): a warm client serves
 * each Lambda invocation with that invocation's trace. */
void s3_client_set_trace_id(struct s3_client *s3, const char *trace_id);

/* The one bucket-name rule of every front end (docs/DESIGN.md §4): 1 to 255 bytes of letters,
 * digits, '.', '-' and '_', the names any S3 server (AWS's legacy ones, Ceph RGW, MinIO) may
 * hold; the server judges the rest. Returns 0 or EINVAL with err set. */
int s3_check_bucket(const char *bucket, size_t len, err_t *err);

/* Splits "s3://bucket/key" into new strings (key may be "" for a bucket or prefix URI).
 * Returns 0 or EINVAL with err set; the caller frees both. */
int s3_parse_uri(const char *uri, char **bucket, char **key, err_t *err);

/* Appends the URL requests for bucket/key go to (key may be NULL for the bucket) to b:
 * path-style or virtual-hosted, the key URI-encoded once. Returns 0 or b's error. */
int s3_object_url(const struct s3_client *s3, const char *bucket, const char *key, struct buf *b);

/* Appends, NUL-terminated, a URL anyone can GET bucket/key with for expires seconds (1 to
 * 604800, SigV4's limit): the client's endpoint and addressing, pinned to version_id when it
 * names one (?versionId=; NULL, "" or "null" for the current version), presigned with the
 * client's credentials (X-Amz-* parameters, the session token among them), or unsigned for an
 * anonymous client. No request is made. The URL is a credential until it expires: never log
 * it. Returns 0 or a positive errno with err set (EINVAL for expires out of range). */
int s3_presign_get(struct s3_client *s3, const char *bucket, const char *key,
                   const char *version_id, unsigned expires, struct buf *b, err_t *err);

#define S3_MAX_META 8
#define S3_MAX_KEY  1024 /* bytes of a key, S3's limit */

struct s3_object {
    char etag[128]; /* quotes stripped */
    uint64_t size;
    int64_t mtime; /* Last-Modified, Unix seconds */
    /* x-amz-version-id as sent ("null" too: versioning suspended); "" when absent, longer than
     * fits or holding a control byte, since a cut or altered id names no version */
    char version_id[64];
    char content_type[128];
    struct {
        char name[64]; /* after x-amz-meta-, lower-case */
        char value[256];
    } meta[S3_MAX_META]; /* user metadata (HEAD only); longer values are dropped */
    size_t nmeta;
};

/* The value of user metadata name (without x-amz-meta-) in o, or NULL. */
const char *s3_object_meta(const struct s3_object *o, const char *name);

/* HeadObject. Returns 0, or a positive errno (ENOENT, EACCES, ...) with err naming the object. */
int s3_head(struct s3_client *s3, const char *bucket, const char *key, struct s3_object *out,
            err_t *err);

/* HeadObject of one version (?versionId=, unless version_id is "" or "null": the current
 * one). A version deleted or never there is ENOENT. */
int s3_head_version(struct s3_client *s3, const char *bucket, const char *key,
                    const char *version_id, struct s3_object *out, err_t *err);

/* HeadObject ?partNumber=part of the version etag (If-Match): *part_size gets that part's
 * length, *parts the object's part count (x-amz-mp-parts-count). Returns 0, ESTALE when the
 * object changed, EPROTO when the answer lacks either, or another positive errno; err set. */
int s3_head_part(struct s3_client *s3, const char *bucket, const char *key, const char *etag,
                 unsigned part, uint64_t *part_size, unsigned *parts, err_t *err);

/* PutObject of an in-memory body with a content type and user metadata (x-amz-meta-NAME:
 * VALUE pairs; names without the prefix). etag_out (may be NULL, 128 bytes) gets the new ETag.
 * Returns 0 or a positive errno with err set. */
int s3_put(struct s3_client *s3, const char *bucket, const char *key, const void *body, size_t len,
           const char *content_type, const struct http_header *meta, size_t nmeta, char *etag_out,
           err_t *err);

/* Reads the whole object (at most max bytes, else EFBIG) into b. etag (may be NULL) pins the
 * version with If-Match. Returns 0 or a positive errno. */
int s3_get_all(struct s3_client *s3, const char *bucket, const char *key, const char *etag,
               struct buf *b, err_t *err);

/* ListObjectsV2 over prefix (may be ""), with delimiter (NULL for a recursive listing), all
 * pages, always with encoding-type=url; entries arrive through the callbacks of opts (its
 * max_bytes caps each page). Returns 0 or a positive errno. */
int s3_list(struct s3_client *s3, const char *bucket, const char *prefix, const char *delimiter,
            const struct s3xml_list_opts *opts, err_t *err);

/* Opens an S3 object as a byte source for the hasher: a HEAD pins the ETag, size and mtime;
 * every ranged GET then carries If-Match, a failed part is retried on its own from where it
 * stopped, and a changed object is ESTALE "object changed while hashing". parallel: ranged
 * GETs in flight (0: 4). The caller frees *out with source_free; s3 must outlive it. */
int source_s3_open(struct s3_client *s3, const char *bucket, const char *key, unsigned parallel,
                   struct source **out, err_t *err);

/* Like source_s3_open, for an object already known from a listing or HEAD (no request is
 * made): obj's ETag, size and Last-Modified pin the version, and its version id, when it
 * names one, is sent with every GET (?versionId=), so a versioned object's bytes are read
 * even after it was overwritten. */
int source_s3_open_known(struct s3_client *s3, const char *bucket, const char *key,
                         const struct s3_object *obj, unsigned parallel, struct source **out,
                         err_t *err);

/* Reads bytes from off of an S3 source into the iovcnt buffers of iov, one after the other,
 * with one ranged GET (If-Match, retried and resumed like the hasher's parts). Thread-safe.
 * Returns 0 or a positive errno (ESTALE when the object changed) with err set. */
int source_s3_read_range(struct source *s, uint64_t off, const struct iovec *iov, unsigned iovcnt,
                         err_t *err);

/* Request counters of the client's HTTP layer. */
struct http_counters *s3_counters(struct s3_client *s3);

#endif
