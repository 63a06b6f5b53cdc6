/* aws.h — the one signed AWS request the S3 and DynamoDB clients share: SigV4 afresh on every
 * attempt, the AWS standard retry mode, and the one table from AWS error codes to errno, retry
 * and a hint the user can act on (docs/DESIGN.md §8). */
#ifndef S3TORRENT_AWS_H
#define S3TORRENT_AWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "s3torrent/cred.h"
#include "s3torrent/err.h"
#include "s3torrent/http.h"
#include "s3torrent/sigv4.h"

/* Maps a failed request's HTTP status and AWS error code (NULL or "" when the answer named
 * none) to a positive errno: ENOENT (NoSuchKey, ResourceNotFoundException, 404), EACCES
 * (credentials, signature, access; 401, 403), ESTALE (PreconditionFailed, 412), EEXIST
 * (ConditionalCheckFailedException: an answer, never retried), ETIME (RequestTimeTooSkewed),
 * EAGAIN (throttling: SlowDown, Throttling*, ProvisionedThroughputExceeded, 429, 503), EIO
 * (InternalError, other 5xx), ETIMEDOUT (RequestTimeout, 408), EINVAL (ValidationException,
 * other 400s), EBUSY (409, ResourceInUseException), ... The code decides when it is known,
 * else the status. *retryable (may be NULL) tells whether the AWS standard retry mode retries
 * it: throttling, transient codes and 5xx other than 501. */
int aws_error_errno(int http_status, const char *code, bool *retryable);

/* What the user can do about code: "; the access key id is unknown to the server: ..." (it
 * starts with "; " to follow a message), or "" when the table has nothing to say. */
const char *aws_error_hint(const char *code);

/* True when the answer's Date header is more than AWS's 15 minutes away from now; *server
 * (may be NULL) gets that Date in Unix seconds. */
bool aws_date_skewed(const struct http_stream *hs, time_t now, int64_t *server);

/* A service the requests go to. Pointers are borrowed and must outlive the aws handle. */
struct aws_config {
    struct http_client *http;
    struct cred_chain *creds; /* NULL: requests go unsigned (anonymous) */
    const char *region;
    const char *service; /* the signing name: "s3", "dynamodb" */
    struct sigv4_options opt;
    const char *trace_id; /* sent as X-Amzn-Trace-Id when set (Lambda) */
    /* injectable for tests; NULL: time(), arc4random, nanosleep */
    time_t (*now)(void);
    double (*random)(void);
    void (*sleep_ms)(long ms);
};

struct aws;

/* Returns 0 with *out ready (thread-safe), or ENOMEM with err set. Free it with aws_free. */
int aws_new(const struct aws_config *cfg, struct aws **out, err_t *err);
void aws_free(struct aws *a);
/* Sends trace_id (NULL: none) as X-Amzn-Trace-Id from now on: one warm client across Lambda
 * invocations, each with its own trace. */
void aws_set_trace_id(struct aws *a, const char *trace_id);

/* Reads what it needs of an answer (without closing hs). Returns 0 or a positive errno with
 * err set and *retry telling whether another attempt may cure it. */
typedef int (*aws_answer_fn)(void *ctx, struct http_stream *hs, bool *retry, err_t *err);

/* One request; every string is borrowed for the call. */
struct aws_request {
    const char *method;
    const char *url;  /* as sent: scheme://host/path?query */
    const char *host; /* the Host header, signed */
    const char *path; /* as signed: see struct sigv4_request */
    bool path_is_raw;
    const struct sigv4_pair *query;
    size_t nquery;
    const struct sigv4_pair *headers; /* sent and signed, besides Host and the signature's own */
    size_t nheaders;
    const void *body;
    size_t body_len;
    const char *payload_hash; /* NULL: hashed on every attempt */
    unsigned attempts;        /* at most; 0 counts as 1 */
    /* what the request is about ("s3://bucket/key", "DynamoDB PutItem on table T"): failures
     * before an answer (credentials, signing, connection) are prefixed with it */
    const char *what;
    /* a 2xx answer: NULL hands the open stream to the caller; else ok reads it (and its body
     * errors are retried like any other when it says so) and the stream is closed */
    aws_answer_fn ok;
    /* any other answer: fail says why; NULL gives "WHAT: HTTP N" and the status's errno */
    aws_answer_fn fail;
    void *ctx; /* passed to ok and fail */
};

/* Sends r, signed afresh on every attempt, retrying transport errors and what fail marks
 * retryable with full-jitter backoff. Returns 0 (with *out open when r->ok is NULL; the caller
 * closes it), or a positive errno with err set to one line ("after N attempts: " first when
 * more than one ran). */
int aws_send(struct aws *a, const struct aws_request *r, struct http_stream **out, err_t *err);

/* Appends r's URL presigned for expires seconds (1..SIGV4_MAX_EXPIRES) to b, NUL-terminated:
 * SigV4's X-Amz-* query parameters (the session token among them) after r's own query, only
 * Host signed and the payload UNSIGNED-PAYLOAD; r's URL as it is when the service is anonymous
 * (no credentials). Only r's method, url, host, path and query are read. The URL is a
 * credential for its lifetime: never log it. Returns 0 or a positive errno with err set (the
 * message never shows the URL). */
int aws_presign(struct aws *a, const struct aws_request *r, unsigned expires, struct buf *b,
                err_t *err);

#endif
