/* listen_http.c — `--listen` on libmicrohttpd: one internal polling thread that reads requests,
 * asks listen_decide what each deserves, runs the work inline (LISTEN_THREADS at a time) and
 * answers; the caller's thread waits for SIGTERM or SIGINT and stops the daemon. */
#include "listen_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/netaddr.h"
#include "s3torrent/buf.h"

/* What a connection's request has brought so far. */
struct pending {
    struct buf body; /* at most EVENTS_MAX_PAYLOAD bytes */
    unsigned long long seen;
    bool over; /* the body went over the cap: the rest is discarded */
};

/* Queues r (and body instead of r's text when body is set) and logs the request's one line. */
static enum MHD_Result answer(const struct listen_opts *o, struct MHD_Connection *c,
                              const struct listen_request *rq, const struct listen_reply *r,
                              const char *body)
{
    char line[LISTEN_MAX_TEXT + 2], method[40], path[LISTEN_MAX_PATH + 8];
    const char *type = "application/json";
    enum MHD_Result res = MHD_NO;
    if (body == NULL) {
        snprintf(line, sizeof(line), "%s\n", r->text);
        body = line;
        type = "text/plain; charset=utf-8";
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        goto out;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES ||
        (r->status == 405 &&
         MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST") != MHD_YES))
        goto out;
    res = MHD_queue_response(c, r->status, resp);
out:
    MHD_destroy_response(resp);
    log_msg(o->log, r->status >= 500 ? LOG_WARNING : LOG_INFO, "%s %s %u: %s",
            listen_printable(rq->method, 16, method, sizeof(method)),
            listen_printable(rq->path, LISTEN_MAX_PATH, path, sizeof(path)), r->status,
            res == MHD_YES ? r->text : "could not send the answer");
    return res;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    const struct listen_opts *o = cls;
    struct pending *p = *con_cls;
    struct listen_request rq = {
        .method = method,
        .path = url,
        .content_length =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH),
    };
    struct listen_reply r;
    struct events_batch b;
    char *json = NULL;
    (void)version;
    if (p == NULL) { /* the headers: an early answer needs no body */
        if (listen_decide(&rq, NULL, &r) == LISTEN_REPLY)
            return answer(o, c, &rq, &r, NULL);
        if ((p = calloc(1, sizeof(*p))) == NULL)
            return MHD_NO;
        buf_init(&p->body, EVENTS_MAX_PAYLOAD);
        *con_cls = p;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        p->seen += *upload_data_size;
        if (!p->over && buf_put(&p->body, upload_data, *upload_data_size) != 0) {
            p->over = true; /* answered 413 once it has all come */
            buf_free(&p->body);
        }
        *upload_data_size = 0;
        /* a body that keeps coming without a Content-Length (chunked): libmicrohttpd cannot
         * answer in the middle of an upload, so past twice the cap the connection is closed */
        return p->seen > 2ull * EVENTS_MAX_PAYLOAD ? MHD_NO : MHD_YES;
    }
    rq.body = p->body.data ? (const void *)p->body.data : "";
    rq.len = p->body.len;
    rq.over_cap = p->over;
    if (listen_decide(&rq, &b, &r) == LISTEN_WORK) {
        struct listen_tally t = {0};
        err_t err = {0};
        int rc = o->work(o->arg, &b, &t, &json, &err);
        listen_after(&t, rc, err.msg, &r);
        events_free(&b);
    }
    enum MHD_Result res = answer(o, c, &rq, &r, r.status == 200 ? json : NULL);
    free(json);
    return res;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct pending *p = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (p) {
        buf_free(&p->body);
        free(p);
        *con_cls = NULL;
    }
}

/* libmicrohttpd's own messages (bind failures, protocol errors), one line each. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    const struct listen_opts *o = cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\r\n")] = '\0';
    log_msg(o->log, LOG_WARNING, "http: %s", line);
}

int listen_serve(const struct listen_opts *o, err_t *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    struct MHD_Daemon *d = NULL;
    char host[INET6_ADDRSTRLEN] = "?";
    int rc, sig;

    if ((rc = netaddr_parse(o->addr, &ss, &sl, err)))
        return rc;
    bool v6 = ss.ss_family == AF_INET6;
    uint16_t port =
        ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
            (v6 ? MHD_USE_IPv6 : 0),
        port, NULL, NULL, on_request, (void *)o,
        /* first, so that every message of libmicrohttpd goes there */
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, (void *)o, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)LISTEN_TIMEOUT_S,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)LISTEN_CONNECTIONS, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)LISTEN_THREADS, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (d == NULL)
        return err_set(err, EADDRNOTAVAIL, "--listen %s: cannot serve there (see above)", o->addr);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    inet_ntop(ss.ss_family,
              v6 ? (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                 : (void *)&((struct sockaddr_in *)&ss)->sin_addr,
              host, sizeof(host));
    log_msg(o->log, LOG_INFO,
            "listening on %s%s%s:%u for S3 event notifications (POST), %d requests at a time",
            v6 ? "[" : "", host, v6 ? "]" : "", di ? di->port : port, LISTEN_THREADS);
    do {
        rc = sigwait(o->stop, &sig);
    } while (rc == EINTR);
    if (rc == 0)
        log_msg(o->log, LOG_INFO, "%s: stopping after the request in progress", strsignal(sig));
    MHD_stop_daemon(d);
    if (rc)
        return err_set(err, rc, "sigwait: %s", strerror(rc));
    return 0;
}
