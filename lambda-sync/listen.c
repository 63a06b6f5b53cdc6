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

int listen_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len, err_t *err)
{
    char host[64];
    const char *port, *h = s;
    size_t hl;
    memset(ss, 0, sizeof(*ss));
    *len = 0;
    if (s == NULL || *s == '\0')
        return err_set(err, EINVAL, "--listen needs ADDR:PORT, e.g. 127.0.0.1:8080");
    if (*s == '[') { /* [v6]:port */
        const char *close = strchr(s, ']');
        if (close == NULL)
            return err_set(err, EINVAL, "--listen '%.64s': no ']' after the IPv6 address", s);
        h = s + 1;
        hl = (size_t)(close - h);
        port = close[1] == ':' ? close + 2 : NULL;
        if (port == NULL && close[1] != '\0')
            return err_set(err, EINVAL, "--listen '%.64s': ':' and a port must follow ']'", s);
    } else {
        port = strrchr(s, ':');
        hl = port ? (size_t)(port - s) : strlen(s);
        if (port && memchr(s, ':', hl) != NULL)
            return err_set(err, EINVAL,
                           "--listen '%.64s': an IPv6 address goes in brackets, e.g. [::1]:8080",
                           s);
        if (port)
            port++;
    }
    if (port == NULL)
        return err_set(err, EINVAL, "--listen '%.64s': no port (ADDR:PORT, e.g. 127.0.0.1:8080)",
                       s);
    char *end;
    errno = 0;
    unsigned long p = strtoul(port, &end, 10);
    if (*port < '0' || *port > '9' || *end != '\0' || errno || p > 65535)
        return err_set(err, EINVAL, "--listen '%.64s': port '%.16s' is not 0 to 65535", s, port);
    if (hl == 0 || hl >= sizeof(host))
        return err_set(err, EINVAL, "--listen '%.64s': no address before the port", s);
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (*s != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        *len = sizeof(*v4);
    } else if (*s == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        *len = sizeof(*v6);
    } else {
        return err_set(err, EINVAL,
                       "--listen '%.64s': '%.64s' is not a numeric IPv4 address or a bracketed "
                       "IPv6 one",
                       s, host);
    }
    return 0;
}
