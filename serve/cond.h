/* cond.h — what a GET or HEAD of an object deserves under HTTP's conditional and range rules
 * (RFC 9110 §13 and §14): the request's validators and Range in, a status and the bytes to send
 * out. Pure, for the unit tests and the fuzz target.
 *
 * Order (RFC 9110 §13.2.2): If-Match (strong), else If-Unmodified-Since: 412; If-None-Match
 * (weak), else If-Modified-Since: 304; then Range, for GET only, unless If-Range (a strong
 * ETag, or exactly the Last-Modified date) no longer holds. One byte range is served (206);
 * an unsatisfiable one gets 416; a Range with several ranges, another unit or bad syntax is
 * ignored (200, the whole object), as §14.2 allows. */
#ifndef S3TORRENT_SERVE_COND_H
#define S3TORRENT_SERVE_COND_H

#include <stdbool.h>
#include <stdint.h>

/* The request's headers (NULL when absent) and method. */
struct cond_request {
    bool head;
    const char *range, *if_range;
    const char *if_match, *if_none_match;
    const char *if_modified_since, *if_unmodified_since;
};

/* The version served: its ETag (without quotes), size and Last-Modified (Unix seconds). */
struct cond_object {
    const char *etag;
    uint64_t size;
    int64_t mtime;
};

struct cond_answer {
    unsigned status; /* 200, 206, 304, 412 or 416 */
    uint64_t first;  /* 200 and 206: the bytes [first, first + len) */
    uint64_t len;
};

void cond_decide(const struct cond_request *rq, const struct cond_object *o, struct cond_answer *a);

/* True when the header value (a list of entity tags, or "*") holds etag; weak: W/ tags match
 * too (If-None-Match), else only strong ones (If-Match). */
bool cond_etag_matches(const char *value, const char *etag, bool weak);

#endif
