/* listen.c — the answers of `s3torrent-lambda --listen`, as pure functions of the request and of
 * the work's tally (the fuzz target calls them as the server does), and its address parsing. */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/util.h"

static void reply(struct listen_reply *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply(struct listen_reply *r, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->status = status;
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
    util_scrub(r->text); /* one line, whatever the message quotes */
}

/* The Content-Length v when it is a plain decimal number (ULLONG_MAX when over), else false. */
static bool content_length(const char *s, unsigned long long *v)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return *end == '\0'; /* on ERANGE *v is ULLONG_MAX */
}

enum listen_next listen_decide(const struct listen_request *rq, struct events_batch *b,
                               struct listen_reply *r)
{
    char m[40];
    unsigned long long cl;
    err_t err = {0};
    if (b)
        memset(b, 0, sizeof(*b));
    memset(r, 0, sizeof(*r));
    if (rq->method == NULL || strcmp(rq->method, "POST") != 0) {
        reply(r, 405, "method %s not allowed: POST an S3 event notification",
              listen_printable(rq->method, 16, m, sizeof(m)));
        return LISTEN_REPLY;
    }
    if (rq->over_cap || (content_length(rq->content_length, &cl) && cl > EVENTS_MAX_PAYLOAD)) {
        reply(r, 413, "body over the limit of %u bytes", EVENTS_MAX_PAYLOAD);
        return LISTEN_REPLY;
    }
    if (rq->body == NULL)
        return LISTEN_READ_BODY;
    if (b == NULL) {
        reply(r, 500, "no room for the work");
        return LISTEN_REPLY;
    }
    int rc = events_parse(rq->body, rq->len, b, &err);
    if (rc) {
        reply(r, rc == EINVAL ? 400 : rc == EFBIG ? 413 : 500, "%s", err.msg);
        return LISTEN_REPLY;
    }
    if (b->kind != EVENTS_S3 && b->kind != EVENTS_EVENTBRIDGE) {
        reply(r, 400, "event: an %s event is for the Lambda Runtime API, not --listen",
              b->kind == EVENTS_SQS ? "SQS" : "S3 Batch Operations");
        events_free(b);
        return LISTEN_REPLY;
    }
    return LISTEN_WORK;
}

void listen_after(const struct listen_tally *t, int rc, const char *why, struct listen_reply *r)
{
    memset(r, 0, sizeof(*r));
    if (rc)
        reply(r, 500, "%s", why && *why ? why : strerror(rc));
    else if (t->record_errors)
        reply(r, 500, "%zu of %zu objects failed and could not be recorded FAILED: %s",
              t->record_errors, t->objects, t->record_error[0] ? t->record_error : "?");
    else if (t->unrecorded_retry)
        reply(r, 500,
              "%zu of %zu objects failed for a reason another attempt may cure, with no "
              "status item to record it in",
              t->unrecorded_retry, t->objects);
    else
        reply(r, 200,
              "%zu objects: %zu done, %zu skipped, %zu failed (%zu recorded FAILED); "
              "%zu records ignored",
              t->objects, t->done, t->skipped, t->failed, t->recorded, t->ignored);
}

char *listen_printable(const char *s, size_t max, char *out, size_t n)
{
    size_t len = s ? strlen(s) : 0;
    bool cut = len > max;
    if (cut)
        len = max;
    if (n < 4) {
        if (n)
            out[0] = '\0';
        return out;
    }
    if (len > n - 4) {
        len = n - 4;
        cut = true;
    }
    util_scrub_copy(out, n, s, len);
    if (cut)
        memcpy(out + len, "...", 4);
    return out;
}
