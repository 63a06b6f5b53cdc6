/* listen.h — what `s3torrent-lambda --listen` answers an HTTP request, decided without the
 * network, S3 or DynamoDB: the request (method, path, Content-Length, body) to a batch of work or
 * an early answer, the work's tally to the final answer, and ADDR:PORT to a socket address. The
 * HTTP server around it (libmicrohttpd) is listen_http.c. */
#ifndef S3TORRENT_LAMBDA_LISTEN_H
#define S3TORRENT_LAMBDA_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "events.h"
#include "s3torrent/err.h"

#define LISTEN_MAX_TEXT 600 /* an answer's one line (body and log), NUL included */
#define LISTEN_MAX_PATH 200 /* bytes of the request path a log line shows */

/* One request as the server has it so far. Everything is borrowed. */
struct listen_request {
    const char *method;         /* as received, e.g. "POST" */
    const char *path;           /* any path is accepted; it is only logged */
    const char *content_length; /* the Content-Length header, NULL when absent */
    const void *body;           /* NULL: only the headers have come; else len bytes */
    size_t len;
    bool over_cap; /* more than EVENTS_MAX_PAYLOAD bytes came (body holds none of them) */
};

/* An answer: the status and one line of text (no newline) for the body and the log. */
struct listen_reply {
    unsigned status; /* 200, 400, 405, 413 or 500 */
    char text[LISTEN_MAX_TEXT];
};

enum listen_next {
    LISTEN_REPLY,     /* answer *r now (for an early answer, without reading the body) */
    LISTEN_READ_BODY, /* the headers are fine: read the body, then ask again */
    LISTEN_WORK,      /* *b is the work: do it, then listen_after */
};

/* Decides what to do with rq. Only POST is served (405 otherwise); a Content-Length or a body
 * over EVENTS_MAX_PAYLOAD gets 413; a body events_parse refuses gets 400 (413 for too many
 * objects, 500 when out of memory), and so do SQS batches and Batch Operations jobs, which
 * only Lambda sends. Returns LISTEN_WORK with *b filled (the caller frees it with events_free;
 * b may be NULL only while rq->body is NULL), else *b is empty and for LISTEN_REPLY *r is set. */
enum listen_next listen_decide(const struct listen_request *rq, struct events_batch *b,
                               struct listen_reply *r);

/* What became of a batch's items, as the work counts them. */
struct listen_tally {
    size_t objects, done, skipped, failed; /* failed = recorded + unrecorded + record_errors */
    size_t ignored;                        /* records that ask for no work */
    size_t recorded;         /* failed, and the status item says FAILED (or a newer state) */
    size_t unrecorded;       /* failed with no status item to record it in (no table or ETag) */
    size_t unrecorded_retry; /* of which another attempt may cure the failure */
    size_t record_errors;    /* failed, and writing FAILED failed too (DynamoDB down) */
    char record_error[512];  /* the first such error, or "" */
};

/* The answer once the work is over: 500 when the work itself failed (rc, an errno; why its
 * message), when a FAILED status could not be written, or when an object failed for a reason
 * another attempt may cure with nowhere to record it; else 200 (failures recorded FAILED, or
 * permanent ones with no table). *r gets the status and a one-line summary. */
void listen_after(const struct listen_tally *t, int rc, const char *why, struct listen_reply *r);

/* Copies s (NULL: "") into out (n > 0 bytes) for a log line: at most max bytes of it, bytes
 * under 0x20 and 0x7f as '?', "..." when cut. Returns out. */
char *listen_printable(const char *s, size_t max, char *out, size_t n);

#endif
