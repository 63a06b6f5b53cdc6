/* listen_http.h — the HTTP front door of `s3torrent-lambda --listen` on libmicrohttpd: S3 event
 * notifications POSTed by Ceph RGW topics, MinIO webhooks and the like, answered as listen.h
 * decides, LISTEN_THREADS requests at a time. Linked into the program only. */
#ifndef S3TORRENT_LAMBDA_LISTEN_HTTP_H
#define S3TORRENT_LAMBDA_LISTEN_HTTP_H

#include <signal.h>

#include "events.h"
#include "listen.h"
#include "s3torrent/err.h"
#include "s3torrent/log.h"

#define LISTEN_TIMEOUT_S   30 /* a connection idle this long is closed */
#define LISTEN_CONNECTIONS 16 /* open at most, each with a body of up to 6 MiB; more wait */
/* requests served at once: RGW pushes the event of our own KEY.torrent PUT synchronously,
 * while the request that PUT it waits, so one thread would wait on itself */
#define LISTEN_THREADS 4

/* Does the work of b: fills *t and sets *json to the response document (a new string the
 * caller frees; it may stay NULL). Returns 0, or an errno with err set when the work could not
 * be done at all (no memory, no S3 client). */
typedef int (*listen_work_fn)(void *arg, const struct events_batch *b, struct listen_tally *t,
                              char **json, err_t *err);

struct listen_opts {
    const char *addr; /* ADDR:PORT, as netaddr_parse takes it */
    listen_work_fn work;
    void *arg;
    const struct logger *log; /* one line per request, at LOG_INFO */
    /* the signals that stop it; the caller has blocked them in every thread, before it started
     * any, so that only the sigwait here sees them */
    const sigset_t *stop;
};

/* Serves o->addr until a signal of o->stop comes, then finishes the request in progress and
 * returns 0. Up to LISTEN_THREADS requests are served at once, each on its own thread of
 * libmicrohttpd's pool, so o->work must be thread-safe. Returns EINVAL (a bad address) or
 * EADDRINUSE-like failures to start as an errno with err set (one line). Everything in o is
 * borrowed. */
int listen_serve(const struct listen_opts *o, err_t *err);

#endif
