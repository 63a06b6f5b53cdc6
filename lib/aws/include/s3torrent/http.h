/* http.h — the HTTP layer on libcurl: a pool of reusable connections, timeouts, capped bodies,
 * request counters, and pull-style streaming of response bodies (a reader asks for the next n
 * bytes; the transfer pauses while nobody reads, so memory stays bounded). */
#ifndef S3TORRENT_HTTP_H
#define S3TORRENT_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3torrent/buf.h"
#include "s3torrent/err.h"
#include "s3torrent/log.h"

struct http_client;
struct http_stream;

struct http_opts {
    long connect_timeout_ms; /* 0: 5000 */
    long low_speed_time_s;   /* abort when slower than 1 KiB/s for this long; 0: 30 */
    long timeout_ms;         /* whole transfer, 0: none (streams are long) */
    const char *ca_bundle;   /* NULL: the system's; TLS verification is always on */
    const struct logger *log;
};

struct http_header {
    const char *name, *value;
};

/* One part of a multipart/form-data body (RFC 7578), built by libcurl's MIME API. */
struct http_part {
    const char *name;     /* the form field */
    const char *filename; /* NULL: a plain field; else sent as a file of this name */
    const char *type;     /* NULL: libcurl's default */
    const void *data;
    size_t len;
};

struct http_request {
    const char *method; /* GET, HEAD, PUT, POST */
    const char *url;
    const struct http_header *headers;
    size_t nheaders;
    const void *body; /* PUT/POST payload, may be NULL */
    size_t body_len;
    const struct http_part *parts; /* nparts > 0: a multipart/form-data POST instead of body */
    size_t nparts;
};

/* Requests by method, in the order of http_method_names. */
enum { HTTP_GET, HTTP_HEAD, HTTP_PUT, HTTP_POST, HTTP_OTHER, HTTP_METHODS };
extern const char *const http_method_names[HTTP_METHODS]; /* "GET" ... "other" */

/* What a client did: requests sent (retries included, by method), retries, transport
 * failures, and response body bytes received. */
struct http_counters {
    atomic_ullong requests, by_method[HTTP_METHODS], retries, transport_errors, bytes_in;
};

/* Returns a new client, or NULL when out of memory. Free it with http_client_free once no
 * stream is open. */
struct http_client *http_client_new(const struct http_opts *opts);
void http_client_free(struct http_client *c);
/* The client's counters, live. */
struct http_counters *http_client_counters(struct http_client *c);
const struct logger *http_client_log(struct http_client *c);

/* Sends req and waits for the response head. Returns 0 with *out open (any HTTP status), or a
 * positive errno for transport failures (ECONNREFUSED, ETIMEDOUT, ECONNRESET, EIO) with err
 * set. The caller closes *out. */
int http_stream_open(struct http_client *c, const struct http_request *req,
                     struct http_stream **out, err_t *err);
/* The response's status code. */
long http_stream_status(const struct http_stream *s);
/* The value of the first response header called name (case-insensitive), or NULL. */
const char *http_stream_header(const struct http_stream *s, const char *name);
/* The i-th response header (from 0): 0 with *name and *value set, or ENOENT past the end. */
int http_stream_header_at(const struct http_stream *s, size_t i, const char **name,
                          const char **value);
/* Copies the value of the cookie called name from the response's Set-Cookie headers into out
 * (len bytes, NUL-terminated). Returns 0, ENOENT when none sets it, or E2BIG / EPROTO when its
 * value does not fit or holds control bytes, spaces or ';'. */
int http_stream_cookie(const struct http_stream *s, const char *name, char *out, size_t len);
/* Reads up to n body bytes into dst, blocking until n bytes or the end; *got < n only at the
 * end of the body. Returns 0 or a positive errno (ECONNRESET, ETIMEDOUT, EPIPE for a body cut
 * short, EIO) with err set. */
int http_stream_read(struct http_stream *s, uint8_t *dst, size_t n, size_t *got, err_t *err);
/* As http_stream_read, but hands the bytes to sink as they arrive, straight from libcurl's
 * receive buffer, instead of copying them. */
int http_stream_feed(struct http_stream *s, size_t n, buf_sink_fn sink, void *arg, size_t *got,
                     err_t *err);
/* Reads the rest of the body into b (whose max caps it: EFBIG past it). Returns 0 or errno. */
int http_stream_read_all(struct http_stream *s, struct buf *b, err_t *err);
/* Ends the exchange. An unfinished transfer drops its connection instead of pooling it. */
void http_stream_close(struct http_stream *s);

/* True when url is http:// or https://HOST... without user:password@, spaces or control bytes:
 * the form the daemon clients take (credentials come apart, never inside a URL that may be
 * printed). */
bool http_url_plain(const char *url);

/* Full-jitter exponential backoff (AWS standard retry mode): a delay in [0, min(cap,
 * base * 2^attempt)) milliseconds, from the random value r in [0, 1). */
long http_backoff_ms(unsigned attempt, long base_ms, long cap_ms, double r);

/* The AWS standard retry mode, shared by the S3 and DynamoDB clients: bounded attempts with
 * full-jitter backoff (up to 100 ms * 2^attempt, at most 20 s) between them. */
struct http_retry {
    unsigned max_attempts;
    struct http_client *http; /* its counters and logger */
    double (*random)(void);   /* injectable for tests; NULL: arc4random */
    void (*sleep_ms)(long ms); /* injectable for tests; NULL: nanosleep */
};

/* One attempt of a request (signed afresh each time). Returns 0 on success, or a positive
 * errno with err set and *retryable telling whether another attempt may succeed. */
typedef int (*http_attempt_fn)(void *arg, bool *retryable, err_t *err);

/* Runs fn until it succeeds, fails for good, or max_attempts have run, sleeping between
 * attempts. Returns fn's last result; err gets "after N attempts: " when more than one ran. */
int http_retry_run(const struct http_retry *r, http_attempt_fn fn, void *arg, err_t *err);

/* Sleeps the backoff that follows failed attempt number attempt (from 1). */
void http_retry_sleep(const struct http_retry *r, unsigned attempt);

/* True for the transport errnos of http_stream_open/read that a retry may cure (refused,
 * reset, timed out, cut short, unreachable). */
bool http_transport_retryable(int e);

#endif
