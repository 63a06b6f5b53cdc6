/* s3xml.h — streaming parsers (expat) for the XML bodies S3 answers with: ListObjectsV2 pages
 * and error documents, and the one line that reports an S3 error (aws_error_errno maps it). */
#ifndef S3TORRENT_S3XML_H
#define S3TORRENT_S3XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3torrent/err.h"

#define S3XML_LIST_DEFAULT_MAX  (16u << 20) /* listing body cap when the caller gives 0 */
#define S3XML_ERROR_DEFAULT_MAX (64u << 10) /* error document cap when the caller gives 0 */
#define S3XML_KEY_MAX           4096        /* Key/Prefix/StartAfter/token text as received */
#define S3XML_MAX_DEPTH         16          /* element nesting; S3 documents are 4 deep */

/*
 * Parsing, in general: create a parser, feed it the body chunk by chunk as it arrives (a libcurl
 * write callback can call s3xml_feed directly), then s3xml_finish. Every function returns 0 or a
 * positive errno with a one-line reason in err: EPROTO for a body that is not a well-formed S3
 * document (malformed XML, any DOCTYPE or entity declaration, nesting deeper than
 * S3XML_MAX_DEPTH, an over-long field, a bad %-escape), EFBIG when the body passes the byte cap,
 * ENOMEM, or whatever a listing callback returned. Errors are sticky: once feed or finish has
 * failed, every later call returns the same error. Unknown elements are ignored.
 */
struct s3xml;

/* One <Contents> entry of a listing. Strings belong to the parser and are valid only during the
 * callback. */
struct s3xml_object {
    const char *key;           /* decoded; never contains a NUL byte; never empty */
    size_t key_len;            /* strlen(key) */
    uint64_t size;             /* <Size> */
    const char *etag;          /* quotes stripped, entities decoded; "" when absent */
    uint32_t etag_parts;       /* N of a multipart "md5-N" ETag (not an MD5 then), else 0 */
    int64_t last_modified;     /* <LastModified> in Unix seconds UTC; 0 when absent */
    const char *storage_class; /* "" when absent */
};

/* Listing callbacks: return 0 to go on, or a positive errno (and optionally set err) to stop the
 * parse, which then returns that errno. */
typedef int (*s3xml_object_fn)(void *ctx, const struct s3xml_object *obj, err_t *err);
/* prefix is one decoded <CommonPrefixes><Prefix>, NUL-free, valid only during the call. */
typedef int (*s3xml_prefix_fn)(void *ctx, const char *prefix, size_t len, err_t *err);

/*
 * Entries are delivered through callbacks, in document order, so a 1,000-entry page is never
 * stored whole: each is delivered as soon as its element ends once the encoding is known. Key
 * and CommonPrefixes/Prefix are form-decoded (see uri_decode_to) when and only when the
 * response says <EncodingType>url</EncodingType>, as S3 does when asked with
 * encoding-type=url; S3 sends that element before <Contents>, but some
 * S3-compatible servers send it last or ignore the request parameter (s3rver), so entries seen
 * before it are held (bounded by the byte cap) and delivered when it arrives or at finish.
 */
struct s3xml_list_opts {
    size_t max_bytes;          /* cap on the whole body; 0 for S3XML_LIST_DEFAULT_MAX */
    s3xml_object_fn on_object; /* may be NULL */
    s3xml_prefix_fn on_prefix; /* may be NULL */
    void *ctx;                 /* passed to every callback */
    /* s3_list only: called after each page's body is read and its connection released, so
     * that a caller may hold entries back until then and take its time over them without
     * keeping a response open; may be NULL. Returns 0 or a positive errno (stops the list). */
    int (*on_page_end)(void *ctx, err_t *err);
};

/* The page-level fields of a listing, known after a successful s3xml_finish. Strings belong to
 * the parser (valid until s3xml_free), are NUL-terminated, and are "" when absent. */
struct s3xml_list_page {
    const char *name; /* bucket */
    /* The request's prefix, delimiter and start-after echoed back, as received and never
     * decoded: S3 encodes them under encoding-type=url, RGW echoes them raw, so only the
     * caller, who sent them, knows what they are. */
    const char *prefix;
    const char *delimiter;
    const char *start_after;
    const char *encoding_type;           /* "url" or "" */
    const char *continuation_token;      /* as sent (tokens are not URL-encoded in responses) */
    const char *next_continuation_token; /* set whenever is_truncated */
    bool is_truncated;
    bool has_key_count;
    uint64_t key_count; /* <KeyCount> as sent (servers differ on what it counts) */
    uint64_t max_keys;
    size_t objects, prefixes; /* entries delivered through the callbacks */
};

/* One S3 error document. Fields are "" when absent and truncated (never rejected) when over
 * long: they only inform. Elements that could carry secrets (StringToSign, SignatureProvided,
 * CanonicalRequest of SignatureDoesNotMatch) are never kept. */
struct s3xml_error {
    char code[128]; /* e.g. NoSuchKey */
    char message[1024];
    char request_id[128];
    char host_id[256];
    char key[1025];
    char bucket_name[256];
    char resource[1025];
    char server_time[64];      /* RequestTimeTooSkewed: the server's clock, as sent */
    char request_time[64];     /* RequestTimeTooSkewed: the time the request was signed with */
    int64_t server_time_unix;  /* server_time parsed, 0 when absent or unparseable */
    int64_t request_time_unix; /* request_time parsed, 0 when absent or unparseable */
};

/* Creates a ListObjectsV2 parser. Returns 0 or ENOMEM; the caller frees *out with s3xml_free. */
int s3xml_list_new(const struct s3xml_list_opts *opts, struct s3xml **out, err_t *err);

/* Creates an error-document parser whose body cap is max_bytes (0 for the default). Returns 0 or
 * ENOMEM; the caller frees *out with s3xml_free. */
int s3xml_error_new(size_t max_bytes, struct s3xml **out, err_t *err);

/* Parses the next len bytes of the body (borrowed for the call only); listing callbacks may run
 * from inside. Returns 0 or a positive errno (see above). */
int s3xml_feed(struct s3xml *x, const void *data, size_t len, err_t *err);

/* Ends the body: checks that the document is complete and coherent (a truncated listing must
 * carry a NextContinuationToken) and delivers any held entries. Returns 0 or a positive errno. */
int s3xml_finish(struct s3xml *x, err_t *err);

/* The listing's page fields after s3xml_finish returned 0, else NULL (also for an error-document
 * parser). The result belongs to x. */
const struct s3xml_list_page *s3xml_list_page(const struct s3xml *x);

/* The parsed error document after s3xml_finish returned 0, else NULL (also for a listing
 * parser). The result belongs to x. */
const struct s3xml_error *s3xml_error_doc(const struct s3xml *x);

/* Frees a parser (NULL is fine). */
void s3xml_free(struct s3xml *x);

/* One-shot: parses a whole error document body of len bytes into *out (cap max_bytes, 0 for the
 * default). Returns 0 or a positive errno; nothing is allocated for the caller. */
int s3xml_error_parse(const void *body, size_t len, size_t max_bytes, struct s3xml_error *out,
                      err_t *err);

/* Fills err with the errno aws_error_errno maps to and one line for a failed request on
 * s3://bucket/key, e.g. "s3://bucket/key: NoSuchKey: The specified key does not exist. (request id
 * ABC)", with a hint for clock skew and credential errors. doc may be NULL (a HEAD, or a body that
 * did not parse): the line then gives the HTTP status. key may be NULL for bucket requests, bucket
 * NULL when unknown. Control bytes are escaped, so the line stays one line. Returns the errno. */
int s3xml_error_report(err_t *err, int http_status, const struct s3xml_error *doc,
                       const char *bucket, const char *key);

#endif
