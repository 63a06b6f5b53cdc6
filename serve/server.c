/* server.c — `s3torrent serve` on libmicrohttpd (server.h): a pool of polling threads; each
 * request is routed (route.c), checked against its validators (cond.c), and answered from the
 * bucket's block cache (one ranged GET per block, shared by every answer, with read-ahead),
 * or with a torrent from the maker. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cond.h"
#include "feed.h"
#include "guard.h"
#include "s3torrent/metainfo.h"
#include "s3torrent/blocks.h"
#include "s3torrent/diskcache.h"
#include "s3torrent/buf.h"
#include "s3torrent/netaddr.h"
#include "s3torrent/prom.h"
#include "s3torrent/sync.h"
#include "s3torrent/uri.h"
#include "s3torrent/util.h"

#define TORRENT_MAX (64u << 20) /* bytes of a torrent answered */
#define CORS_EXPOSE "Accept-Ranges, Content-Length, Content-Range, ETag, Last-Modified"
#define CORS_ALLOW                                                                                 \
    "Range, If-Match, If-None-Match, If-Range, If-Modified-Since, If-Unmodified-Since"

/* What /metrics counts (docs/DESIGN.md §14). */
enum { K_OBJECT, K_TORRENT, K_FEED, K_METRICS, K_OTHER, K_KINDS };
static const char *const kind_names[K_KINDS] = {"object", "torrent", "feed", "metrics", "other"};
enum { C_2XX, C_3XX, C_4XX, C_5XX, C_CLASSES };

struct metrics {
    atomic_ullong requests[K_KINDS][C_CLASSES];
    atomic_ullong bytes_served;  /* body bytes of object answers */
    atomic_ullong redirects;     /* object GETs sent to a presigned URL (--redirect) */
    atomic_ullong store_errors;  /* reads or HEADs that failed (not ENOENT) */
    atomic_ullong torrents_made; /* by the maker (hashing or from its cache) */
    atomic_ullong torrents_hashed;
};

/* A torrent being made: later requests for the same object wait for it (single flight). */
struct flight {
    char id[ROUTE_KEY_MAX + 512]; /* bucket, key, ETag, version id */
    int rc;
    bool done;
    unsigned waiters;
    struct buf bytes;
    struct flight *next;
};

struct server {
    const struct server_config *c;
    const char *public_url; /* c->public_url, or the address bound: set under lock once the
                             * daemon is bound, read after taking lock (make_torrent) */
    struct metrics m;
    struct blocks **blocks; /* a block cache per bucket served (nblocks), as c->scopes name them */
    const char **block_buckets;
    size_t nblocks;
    struct diskcache *disk; /* behind every bucket's block cache, or NULL */
    pthread_mutex_t lock;
    pthread_cond_t landed;
    struct flight *flights;
    struct guard *guard; /* the header deadline */
};

/* One request: its target as the client sent it (the URI log callback keeps it). */
struct req {
    char *target;
    bool seen;
};

/* An object answer's body, read through the bucket's block cache. */
struct stream {
    struct server *s;
    struct blocks *b;
    struct blocks_obj *o; /* the version answered, referenced */
    uint64_t first, len;  /* the bytes answered */
};

static unsigned status_class(unsigned status)
{
    return status >= 500 ? C_5XX : status >= 400 ? C_4XX : status >= 300 ? C_3XX : C_2XX;
}

static void count(struct server *s, int kind, unsigned status)
{
    atomic_fetch_add(&s->m.requests[kind][status_class(status)], 1);
}

/* Logs one line per answer: method, target (escaped), status, and why. */
static void log_answer(struct server *s, const char *method, const char *target, unsigned status,
                       const char *why)
{
    char m[24], t[300];
    log_msg(s->c->log, status >= 500 ? LOG_WARNING : LOG_INFO, "%s %s %u%s%s",
            util_escape(m, sizeof(m), method, 16), util_escape(t, sizeof(t), target, 256), status,
            why ? ": " : "", why ? why : "");
}

static bool add_headers(struct MHD_Response *r, const char *const *kv)
{
    for (; kv[0]; kv += 2)
        if (kv[1] && MHD_add_response_header(r, kv[0], kv[1]) != MHD_YES)
            return false;
    return true;
}

/* Queues a short answer: status, one line of text (or body of type), and headers (pairs). */
static enum MHD_Result answer_text(struct MHD_Connection *con, unsigned status, const char *type,
                                   const void *body, size_t len, const char *const *headers)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result res = MHD_NO;
    if (r == NULL)
        return MHD_NO;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_YES &&
        MHD_add_response_header(r, "Access-Control-Allow-Origin", "*") == MHD_YES &&
        (headers == NULL || add_headers(r, headers)))
        res = MHD_queue_response(con, status, r);
    MHD_destroy_response(r);
    return res;
}

static enum MHD_Result answer_error(struct server *s, struct MHD_Connection *con, int kind,
                                    const char *method, const char *target, unsigned status,
                                    const char *why)
{
    char line[200];
    const char *const allow[] = {MHD_HTTP_HEADER_ALLOW, "GET, HEAD, OPTIONS", NULL};
    snprintf(line, sizeof(line), "%s\n", why);
    count(s, kind, status);
    log_answer(s, method, target, status, why);
    return answer_text(con, status, "text/plain; charset=utf-8", line, strlen(line),
                       status == 405 ? allow : NULL);
}

/* The status a store error deserves, and the line that says why. */
static unsigned store_status(int rc)
{
    switch (rc) {
    case ENOENT:
        return 404;
    case ESTALE:
        return 410;
    case EACCES:
        return 403;
    case EAGAIN:
        return 503;
    default:
        return 502;
    }
}

/* The version the route names: the one of its version pin, else the current one, which must
 * still have the ETag pinned. */
static int head_pinned(struct server *s, const struct route *rt, struct store_object *obj,
                       err_t *err)
{
    int rc;
    if (rt->version[0]) {
        rc = store_head_version(s->c->maker->store, rt->bucket, rt->key, rt->version, obj, err);
        if (rc == ENOENT)
            return err_set(err, ESTALE, "version %.64s of this object is gone", rt->version);
        if (rc != 0)
            atomic_fetch_add(&s->m.store_errors, 1);
        return rc;
    }
    rc = store_head(s->c->maker->store, rt->bucket, rt->key, obj, NULL, err);
    if (rc != 0) {
        if (rc != ENOENT)
            atomic_fetch_add(&s->m.store_errors, 1);
        return rc;
    }
    if (rt->etag[0] && strcmp(obj->etag, rt->etag) != 0)
        return err_set(err, ESTALE,
                       "the object changed since this URL was made (ETag %.64s, now %.64s)",
                       rt->etag, obj->etag);
    if (rt->newest >= 0 && obj->mtime > rt->newest)
        return err_set(err, ESTALE,
                       "the object changed since this URL's torrent was made (Last-Modified "
                       "%lld, after %lld)",
                       (long long)obj->mtime, rt->newest);
    return 0;
}

/* The block cache of bucket (one of the buckets served). */
static struct blocks *blocks_of(const struct server *s, const char *bucket)
{
    for (size_t i = 0; i < s->nblocks; i++)
        if (strcmp(s->block_buckets[i], bucket) == 0)
            return s->blocks[i];
    return NULL;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct stream *st = cls;
    if (pos >= st->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    uint64_t left = st->len - pos;
    size_t want = left < max ? (size_t)left : max;
    /* read ahead what this answer still needs, up to SERVER_AHEAD */
    uint64_t ahead = left - want < SERVER_AHEAD ? left - want : SERVER_AHEAD;
    long n = blocks_read(st->b, st->o, st->first + pos, want, (uint8_t *)out, ahead);
    if (n <= 0) { /* the reason is logged by the cache (a changed object, a failed GET) */
        atomic_fetch_add(&st->s->m.store_errors, 1);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    atomic_fetch_add(&st->s->m.bytes_served, (unsigned long long)n);
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct stream *st = cls;
    blocks_obj_release(st->b, st->o);
    free(st);
}

static const char *header(struct MHD_Connection *con, const char *name)
{
    return MHD_lookup_connection_value(con, MHD_HEADER_KIND, name);
}

/* Answers a GET of the object obj (already HEADed and checked against the request's
 * validators) with a 302 to a presigned URL of that version, valid --redirect seconds: the
 * version id of /~v/, else the one the HEAD gave (a versioned bucket). An unversioned /~e/ URL
 * is checked by the HEAD alone (docs/DESIGN.md §14). The URL is never logged: it is a
 * credential until it expires. */
static enum MHD_Result redirect_object(struct server *s, struct MHD_Connection *con,
                                       const struct route *rt, const struct store_object *obj,
                                       const char *method, const char *target)
{
    struct store_object pin = *obj;
    struct buf url;
    err_t err = {0};
    if (rt->version[0])
        snprintf(pin.version_id, sizeof(pin.version_id), "%s", rt->version);
    buf_init(&url, 64u << 10);
    int rc = store_presign_get(s->c->maker->store, rt->bucket, rt->key, &pin, s->c->redirect_s,
                               &url, &err);
    if (rc != 0) {
        buf_free(&url);
        atomic_fetch_add(&s->m.store_errors, 1);
        return answer_error(s, con, K_OBJECT, method, target, store_status(rc), err.msg);
    }
    /* a CDN or proxy must not keep an answer that stops working when the URL expires */
    const char *const headers[] = {MHD_HTTP_HEADER_LOCATION,
                                   (const char *)url.data,
                                   MHD_HTTP_HEADER_CACHE_CONTROL,
                                   "private, no-store",
                                   "Access-Control-Expose-Headers",
                                   CORS_EXPOSE,
                                   NULL};
    enum MHD_Result res = answer_text(con, 302, "text/plain; charset=utf-8", "", 0, headers);
    if (url.data)
        explicit_bzero(url.data, url.len); /* the signature and session token */
    buf_free(&url);
    atomic_fetch_add(&s->m.redirects, 1);
    count(s, K_OBJECT, 302);
    log_answer(s, method, target, 302, NULL);
    return res;
}

static enum MHD_Result serve_object(struct server *s, struct MHD_Connection *con,
                                    const struct route *rt, const char *method, const char *target)
{
    struct store_object obj;
    err_t err = {0};
    int rc = head_pinned(s, rt, &obj, &err);
    if (rc != 0)
        return answer_error(s, con, K_OBJECT, method, target, store_status(rc), err.msg);
    struct cond_request cr = {
        .head = rt->head,
        .range = header(con, MHD_HTTP_HEADER_RANGE),
        .if_range = header(con, MHD_HTTP_HEADER_IF_RANGE),
        .if_match = header(con, MHD_HTTP_HEADER_IF_MATCH),
        .if_none_match = header(con, MHD_HTTP_HEADER_IF_NONE_MATCH),
        .if_modified_since = header(con, MHD_HTTP_HEADER_IF_MODIFIED_SINCE),
        .if_unmodified_since = header(con, MHD_HTTP_HEADER_IF_UNMODIFIED_SINCE),
    };
    struct cond_object co = {.etag = obj.etag, .size = obj.size, .mtime = obj.mtime};
    struct cond_answer a;
    cond_decide(&cr, &co, &a);

    char etag[STORE_ETAG_MAX + 2], date[40], crange[80];
    snprintf(etag, sizeof(etag), "\"%s\"", obj.etag);
    util_http_date_format(obj.mtime, date, sizeof(date));
    if (a.status == 416)
        snprintf(crange, sizeof(crange), "bytes */%" PRIu64, obj.size);
    else
        snprintf(crange, sizeof(crange), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, a.first,
                 a.first + a.len - 1, obj.size);
    const char *const headers[] = {MHD_HTTP_HEADER_ETAG,
                                   etag,
                                   MHD_HTTP_HEADER_LAST_MODIFIED,
                                   date,
                                   MHD_HTTP_HEADER_ACCEPT_RANGES,
                                   "bytes",
                                   MHD_HTTP_HEADER_CACHE_CONTROL,
                                   rt->etag[0] || rt->version[0] || rt->newest >= 0
                                       ? "public, max-age=31536000, immutable"
                                       : "public, no-cache",
                                   "Access-Control-Expose-Headers",
                                   CORS_EXPOSE,
                                   MHD_HTTP_HEADER_CONTENT_RANGE,
                                   a.status == 206 || a.status == 416 ? crange : NULL,
                                   NULL};
    if (a.status != 200 && a.status != 206) {
        count(s, K_OBJECT, a.status);
        log_answer(s, method, target, a.status, NULL);
        return answer_text(con, a.status, "text/plain; charset=utf-8", "", 0, headers);
    }
    if (s->c->redirect_s && !rt->head)
        return redirect_object(s, con, rt, &obj, method, target);
    struct stream *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return MHD_NO;
    st->s = s;
    st->b = blocks_of(s, rt->bucket);
    st->first = a.first;
    st->len = a.len;
    if (st->b == NULL || (st->o = blocks_obj_get(st->b, rt->key, &obj)) == NULL) {
        free(st);
        return MHD_NO;
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(a.len, 64 * 1024, stream_read, st, stream_free);
    if (r == NULL) {
        stream_free(st);
        return MHD_NO;
    }
    enum MHD_Result res = MHD_NO;
    if (add_headers(r, headers) &&
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream") ==
            MHD_YES &&
        MHD_add_response_header(r, "Access-Control-Allow-Origin", "*") == MHD_YES)
        res = MHD_queue_response(con, a.status, r);
    MHD_destroy_response(r);
    count(s, K_OBJECT, a.status);
    log_answer(s, method, target, a.status, NULL);
    return res;
}

/* The public URL, once server_run has published it. */
static const char *public_url(struct server *s)
{
    pthread_mutex_lock(&s->lock);
    const char *u = s->public_url;
    pthread_mutex_unlock(&s->lock);
    return u;
}

/* A version id that names one version (not S3's "null" of an unversioned object). */
static bool pins_version(const struct store_object *obj)
{
    return obj->version_id[0] && strcmp(obj->version_id, "null") != 0;
}

/* The web seed base of bucket's objects at obj: PUBLIC_URL/~v/VERSION/BUCKET/ on a versioned
 * bucket (that version stays readable after an overwrite), else PUBLIC_URL/~e/ETAG/BUCKET/
 * (410 once replaced); into b, NUL-terminated. Returns 0 or ENOMEM. */
static int webseed_base(struct server *s, const char *bucket, const struct store_object *obj,
                        struct buf *b)
{
    buf_init(b, 4096);
    buf_printf(b, "%s/", public_url(s));
    if (pins_version(obj)) {
        buf_printf(b, "~v/");
        uri_encode(b, obj->version_id, strlen(obj->version_id), false);
        buf_put(b, "/", 1);
    } else {
        buf_printf(b, "~e/%s/", obj->etag);
    }
    uri_encode(b, bucket, strlen(bucket), false);
    buf_put(b, "/", 2); /* with the NUL */
    return b->err;
}

/* The torrent of bucket/key at obj as recipe r says, into out: from the cache; else laid out
 * from the hashes of the .torrent sync wrote for this version, if any (docs/DESIGN.md §14);
 * else hashed. */
static int make_bytes(struct server *s, const char *bucket, const char *key,
                      const struct store_object *obj, const struct torrent_recipe *r,
                      struct buf *out, struct maker_result *res, err_t *err)
{
    const struct maker *mk = s->c->maker;
    struct hasher_result known;
    err_t kerr = {0};
    int rc = maker_cached(mk, bucket, key, obj, r, out, res, err);
    if (rc != ENOENT)
        return rc;
    if ((rc = sync_known_hashes(mk->store, bucket, key, obj, &known, &kerr)) == 0) {
        rc = maker_make_known(mk, bucket, key, obj, r, &known, out, res, err);
        hasher_result_free(&known);
        return rc;
    }
    if (rc != ENOENT) {
        char k[300];
        log_msg(s->c->log, LOG_INFO, "s3://%s/%s.torrent: hashing the object instead: %s", bucket,
                util_escape(k, sizeof(k), key, 256), kerr.msg);
    }
    return maker_make(mk, bucket, key, obj, r, NULL, out, res, err);
}

/* Joins the flight id (single flight): when another request is making that torrent, waits for
 * it, appends its bytes to out and returns NULL with *rc its result; else, when create, returns
 * a new flight, which this request makes and then lands (NULL with *rc ENOMEM when out of
 * memory); else returns NULL with *rc -1. */
static struct flight *flight_join(struct server *s, const char *id, bool create, struct buf *out,
                                  int *rc, err_t *err)
{
    struct flight *f;
    pthread_mutex_lock(&s->lock);
    for (f = s->flights; f && strcmp(f->id, id) != 0; f = f->next)
        ;
    if (f != NULL) { /* another request is making it: wait and copy */
        f->waiters++;
        while (!f->done)
            pthread_cond_wait(&s->landed, &s->lock);
        *rc = f->rc == 0 ? buf_put(out, f->bytes.data, f->bytes.len) : f->rc;
        if (f->rc != 0)
            err_set(err, f->rc, "making the torrent failed (see the log)");
        if (--f->waiters == 0) {
            buf_free(&f->bytes);
            free(f);
        }
        pthread_mutex_unlock(&s->lock);
        return NULL;
    }
    if (!create) {
        pthread_mutex_unlock(&s->lock);
        *rc = -1;
        return NULL;
    }
    if ((f = calloc(1, sizeof(*f))) == NULL) {
        pthread_mutex_unlock(&s->lock);
        *rc = err_set(err, ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(f->id, sizeof(f->id), "%s", id);
    buf_init(&f->bytes, TORRENT_MAX);
    f->waiters = 1;
    f->next = s->flights;
    s->flights = f;
    pthread_mutex_unlock(&s->lock);
    return f;
}

/* Ends flight f, made with result rc (its bytes in f->bytes), for the requests waiting. */
static void flight_land(struct server *s, struct flight *f, int rc)
{
    pthread_mutex_lock(&s->lock);
    struct flight **pp = &s->flights;
    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
    f->rc = rc;
    f->done = true;
    pthread_cond_broadcast(&s->landed);
    if (--f->waiters == 0) {
        buf_free(&f->bytes);
        free(f);
    }
    pthread_mutex_unlock(&s->lock);
}

/* Makes the torrent of bucket/key at obj, its web seed this server's URL pinned to obj's ETag,
 * into out. One request makes it; the same request meanwhile waits and shares the bytes.
 * cached_only: answer from the cache (or a generation in flight) alone, else ENOENT. */
static int make_torrent(struct server *s, const char *bucket, const char *key,
                        const struct store_object *obj, bool cached_only, struct buf *out,
                        err_t *err)
{
    struct buf base;
    struct torrent_recipe r = *s->c->recipe;
    struct maker_result res = {0};
    struct flight *f;
    char id[sizeof(f->id)];
    int rc;
    snprintf(id, sizeof(id), "%s\n%s\n%s\n%s", bucket, key, obj->etag, obj->version_id);

    f = flight_join(s, id, !cached_only, out, &rc, err);
    if (f == NULL && rc != -1)
        return rc;
    if (f == NULL) { /* cached_only, and no flight */
        if (webseed_base(s, bucket, obj, &base) != 0) {
            buf_free(&base);
            return err_set(err, ENOMEM, "out of memory");
        }
        r.webseed_base = (const char *)base.data;
        rc = maker_cached(s->c->maker, bucket, key, obj, &r, out, &res, err);
        if (rc == 0)
            atomic_fetch_add(&s->m.torrents_made, 1);
        maker_result_free(&res);
        buf_free(&base);
        return rc;
    }
    if (webseed_base(s, bucket, obj, &base) != 0) {
        rc = err_set(err, ENOMEM, "out of memory");
    } else {
        r.webseed_base = (const char *)base.data;
        rc = make_bytes(s, bucket, key, obj, &r, &f->bytes, &res, err);
    }
    if (rc == 0) {
        atomic_fetch_add(&s->m.torrents_made, 1);
        if (!res.cached)
            atomic_fetch_add(&s->m.torrents_hashed, 1);
        rc = buf_put(out, f->bytes.data, f->bytes.len);
    }
    maker_result_free(&res);
    buf_free(&base);
    flight_land(s, f, rc);
    return rc;
}

/* The answer to a torrent request: t (freed here) when rc is 0, else the error. */
static enum MHD_Result answer_torrent(struct server *s, struct MHD_Connection *con,
                                      const char *method, const char *target, int rc, struct buf *t,
                                      const err_t *err)
{
    if (rc != 0) {
        buf_free(t);
        return answer_error(s, con, K_TORRENT, method, target,
                            rc == EINVAL ? 422 : store_status(rc), err->msg);
    }
    count(s, K_TORRENT, 200);
    log_answer(s, method, target, 200, NULL);
    const char *const headers[] = {MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache", NULL};
    enum MHD_Result res =
        answer_text(con, 200, "application/x-bittorrent", t->data, t->len, headers);
    buf_free(t);
    return res;
}

static enum MHD_Result serve_torrent(struct server *s, struct MHD_Connection *con,
                                     const struct route *rt, const char *method, const char *target)
{
    struct store_object obj;
    struct buf t;
    err_t err = {0};
    if (sync_is_torrent_key(rt->key)) /* docs/DESIGN.md §4: never a torrent of a torrent */
        return answer_error(s, con, K_TORRENT, method, target, 404,
                            "no torrent is made of a .torrent key");
    int rc = head_pinned(s, rt, &obj, &err);
    if (rc != 0)
        return answer_error(s, con, K_TORRENT, method, target, store_status(rc), err.msg);
    buf_init(&t, TORRENT_MAX);
    rc = make_torrent(s, rt->bucket, rt->key, &obj, false, &t, &err);
    return answer_torrent(s, con, method, target, rc, &t, &err);
}

static void prefix_skipped(void *arg, const char *key, const char *why)
{
    struct server *s = arg;
    char k[300];
    log_msg(s->c->log, LOG_INFO, "a prefix's torrent leaves out %s: %s",
            util_escape(k, sizeof(k), key, 256), why);
}

/* The torrent of the objects below bucket/prefix (ending in '/') as `create
 * s3://BUCKET/PREFIX/` makes it with the server's recipe, into out (docs/DESIGN.md §14). Its web
 * seed is PUBLIC_URL/~m/NEWEST/BUCKET/ and the prefix's parent, NEWEST the newest Last-Modified
 * listed: clients add NAME/PATH, so each file is /~m/NEWEST/BUCKET/PREFIX/PATH, which the server
 * answers while the object is no newer than the torrent. Returns 0 or an errno with err set. */
static int make_prefix_torrent(struct server *s, const char *bucket, const char *prefix,
                               struct buf *out, err_t *err)
{
    struct source_dir dir = {0};
    struct torrent_opts to;
    struct torrent_recipe r = *s->c->recipe;
    struct maker_result res = {0};
    struct buf base;
    struct flight *f;
    char *ws = NULL, *parent = NULL, id[sizeof(f->id)];
    int rc;
    buf_init(&base, 4096);
    snprintf(id, sizeof(id), "%s\n%s\n\nprefix", bucket, prefix);
    if ((f = flight_join(s, id, true, out, &rc, err)) == NULL)
        goto out;
    if ((rc = store_prefix_scan(s->c->maker->store, bucket, prefix, NULL, 0, NULL, 0,
                                prefix_skipped, s, &dir, err)) != 0) {
        if (rc != ENOENT)
            atomic_fetch_add(&s->m.store_errors, 1);
        goto land;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < dir.n; i++)
        total += dir.parts[i].size;
    if (total == 0) {
        rc = err_set(err, ENOENT, "s3://%s/%s: %s, no torrent", bucket, prefix,
                     dir.n ? "only empty objects" : "no objects");
        goto land;
    }
    r.webseed_base = NULL;
    if ((rc = torrent_recipe_opts(&r, dir.name, dir.mtime, &to, &ws)) != 0) {
        rc = err_set(err, rc, "out of memory");
        goto land;
    }
    free(ws);
    buf_printf(&base, "%s/~m/%lld/", public_url(s), (long long)dir.mtime);
    uri_encode(&base, bucket, strlen(bucket), false);
    buf_put(&base, "/", 2); /* with the NUL */
    if (base.err || (parent = strndup(prefix, strlen(prefix) - 1)) == NULL ||
        (ws = torrent_webseed_for((const char *)base.data, parent, TORRENT_V2)) == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto land;
    }
    to.webseeds = (const char *const *)&ws;
    to.nwebseeds = 1;
    rc = maker_make_prefix(s->c->maker, bucket, prefix, dir.name, &dir, &to, &f->bytes, &res, err);
    if (rc == 0) {
        atomic_fetch_add(&s->m.torrents_made, 1);
        if (!res.cached)
            atomic_fetch_add(&s->m.torrents_hashed, 1);
        rc = buf_put(out, f->bytes.data, f->bytes.len);
    }
land:
    flight_land(s, f, rc);
out:
    free(ws);
    free(parent);
    buf_free(&base);
    source_dir_free(&dir);
    return rc;
}

static enum MHD_Result serve_prefix_torrent(struct server *s, struct MHD_Connection *con,
                                            const struct route *rt, const char *method,
                                            const char *target)
{
    struct buf t;
    err_t err = {0};
    buf_init(&t, TORRENT_MAX);
    int rc = make_prefix_torrent(s, rt->bucket, rt->key, &t, &err);
    return answer_torrent(s, con, method, target, rc, &t, &err);
}

static int feed_object(void *ctx, const char *key, const struct store_object *obj, err_t *err)
{
    (void)err;
    return feed_add(ctx, key, obj);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The torrent of each item in feed order: made (hashing when needed) while the request is
 * within its hashing budget, then from the cache alone; the others wait for a later poll. */
static void feed_torrents(struct server *s, struct feed *f)
{
    struct timespec t0;
    size_t pending = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < f->n; i++) {
        struct feed_item *it = &f->items[i];
        struct metainfo *m = NULL;
        struct buf t;
        err_t err = {0};
        bool cached_only = seconds_since(&t0) >= s->c->feed_hash_s;
        buf_init(&t, TORRENT_MAX);
        int rc = make_torrent(s, f->bucket, it->key, &it->obj, cached_only, &t, &err);
        if (rc == 0 && (rc = metainfo_parse(t.data, t.len, &m, &err)) == 0) {
            it->have = true;
            it->v1 = m->v1;
            it->v2 = m->v2;
            memcpy(it->ih1, m->ih1, sizeof(it->ih1));
            memcpy(it->ih2, m->ih2, sizeof(it->ih2));
            it->torrent_size = t.len;
            metainfo_free(m);
        } else if (rc == ENOENT && cached_only) {
            pending++;
        } else {
            char k[300];
            log_msg(s->c->log, LOG_WARNING, "s3://%s/%s: no torrent for the feed: %s", f->bucket,
                    util_escape(k, sizeof(k), it->key, 256), err.msg);
        }
        buf_free(&t);
    }
    if (pending > 0)
        log_msg(s->c->log, LOG_INFO,
                "s3://%s/%s: %zu torrents not made within --feed-hash-seconds; a later poll "
                "lists them",
                f->bucket, f->prefix, pending);
}

static enum MHD_Result serve_feed(struct server *s, struct MHD_Connection *con,
                                  const struct route *rt, const char *method, const char *target)
{
    struct feed f;
    struct buf b;
    err_t err = {0};
    bool rss = rt->kind == ROUTE_RSS;
    feed_init(&f, rt->bucket, rt->key, rss ? s->c->feed_items : FEED_ITEMS_MAX, rss);
    struct store_list_cb cb = {.object = feed_object, .ctx = &f};
    int rc = store_list(s->c->maker->store, rt->bucket, rt->key, NULL, &cb, &err);
    if (rc != 0) {
        feed_free(&f);
        if (rc != ENOENT)
            atomic_fetch_add(&s->m.store_errors, 1);
        return answer_error(s, con, K_FEED, method, target, store_status(rc), err.msg);
    }
    feed_done(&f);
    feed_torrents(s, &f);
    buf_init(&b, 256u << 20);
    rc = rss ? feed_rss(&f, public_url(s), (int64_t)time(NULL), &b)
             : feed_manifest(&f, public_url(s), (int64_t)time(NULL), &b);
    feed_free(&f);
    if (rc != 0) {
        buf_free(&b);
        return answer_error(s, con, K_FEED, method, target, 503, "out of memory for the feed");
    }
    count(s, K_FEED, 200);
    log_answer(s, method, target, 200, NULL);
    const char *const headers[] = {MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache", NULL};
    enum MHD_Result res =
        answer_text(con, 200, rss ? "application/rss+xml; charset=utf-8" : "application/json",
                    b.data, b.len, headers);
    buf_free(&b);
    return res;
}

static enum MHD_Result serve_metrics(struct server *s, struct MHD_Connection *con,
                                     const char *method, const char *target)
{
    struct buf b;
    buf_init(&b, 1u << 20);
    prom_family(&b, "s3torrent_serve_requests_total", "counter",
                "Requests answered, by route and status class.");
    count(s, K_METRICS, 200);
    static const char *const classes[C_CLASSES] = {"2xx", "3xx", "4xx", "5xx"};
    for (int k = 0; k < K_KINDS; k++)
        for (int c = 0; c < C_CLASSES; c++) {
            char labels[64];
            snprintf(labels, sizeof(labels), "route=\"%s\",status=\"%s\"", kind_names[k],
                     classes[c]);
            prom_sample(&b, "s3torrent_serve_requests_total", labels,
                        atomic_load(&s->m.requests[k][c]));
        }
    struct blocks_stats bs = {0};
    for (size_t i = 0; i < s->nblocks; i++) {
        struct blocks_stats one;
        blocks_stats(s->blocks[i], &one);
        bs.gets += one.gets;
        bs.fetched += one.fetched;
        bs.hits += one.hits;
        bs.misses += one.misses;
        bs.disk_hits += one.disk_hits;
        bs.disk_misses += one.disk_misses;
        bs.disk_writes += one.disk_writes;
        bs.disk_evictions += one.disk_evictions;
        bs.disk_corrupt += one.disk_corrupt;
    }
    const struct {
        const char *name, *help;
        unsigned long long v;
    } plain[] = {
        {"s3torrent_serve_bytes_served_total", "Object bytes sent to clients.",
         atomic_load(&s->m.bytes_served)},
        {"s3torrent_serve_redirects_total",
         "Object GETs answered with a redirect to a presigned URL (--redirect).",
         atomic_load(&s->m.redirects)},
        {"s3torrent_serve_store_reads_total",
         "Ranged reads (GETs) of the store for object answers, read-ahead included.", bs.gets},
        {"s3torrent_serve_store_bytes_total", "Bytes those reads brought.", bs.fetched},
        {"s3torrent_serve_cache_hits_total",
         "Blocks of object answers found in the block cache (or being fetched already).", bs.hits},
        {"s3torrent_serve_cache_misses_total", "Blocks of object answers fetched for them.",
         bs.misses},
        {"s3torrent_serve_disk_cache_hits_total",
         "Blocks not in memory found in the disk cache (--disk-cache).", bs.disk_hits},
        {"s3torrent_serve_disk_cache_misses_total", "Blocks not in memory nor in the disk cache.",
         bs.disk_misses},
        {"s3torrent_serve_disk_cache_writes_total", "Blocks written to the disk cache.",
         bs.disk_writes},
        {"s3torrent_serve_disk_cache_evictions_total",
         "Disk cache files deleted to stay under its cap and above the free-space floor.",
         bs.disk_evictions},
        {"s3torrent_serve_disk_cache_corrupt_total",
         "Disk cache files found damaged (deleted, the block fetched again).", bs.disk_corrupt},
        {"s3torrent_serve_store_errors_total", "Store requests that failed.",
         atomic_load(&s->m.store_errors)},
        {"s3torrent_serve_torrents_made_total", "Torrents made (hashed or from the cache).",
         atomic_load(&s->m.torrents_made)},
        {"s3torrent_serve_torrents_hashed_total", "Torrents whose object was read and hashed.",
         atomic_load(&s->m.torrents_hashed)},
        {"s3torrent_serve_header_timeouts_total",
         "Connections closed because a request's headers took longer than --header-timeout.",
         guard_cut(s->guard)},
    };
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        prom_counter(&b, plain[i].name, plain[i].help, plain[i].v);
    log_answer(s, method, target, 200, NULL);
    enum MHD_Result res =
        b.err ? MHD_NO : answer_text(con, 200, "text/plain; version=0.0.4", b.data, b.len, NULL);
    buf_free(&b);
    return res;
}

static enum MHD_Result count_host(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    (void)value;
    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
        ++*(unsigned *)cls;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct server *s = cls;
    struct req *rq = *con_cls;
    struct route rt;
    (void)url;
    (void)upload;
    if (rq == NULL)
        return MHD_NO;
    if (!rq->seen) { /* the headers: wait for the end of the request */
        rq->seen = true;
        guard_headers_done(s->guard, con);
        return MHD_YES;
    }
    if (*upload_size > 0) { /* a body nobody asked for: dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    const char *target = rq->target ? rq->target : "";
    unsigned hosts = 0; /* RFC 9112 §3.2: at most one Host, and one in every HTTP/1.1 request */
    MHD_get_connection_values(con, MHD_HEADER_KIND, count_host, &hosts);
    if (hosts > 1 || (hosts == 0 && strcmp(version, MHD_HTTP_VERSION_1_1) == 0))
        return answer_error(s, con, K_OTHER, method, target, 400,
                            "a request needs one Host header (HTTP/1.1), never two");
    switch (route_parse(s->c->scopes, s->c->nscopes, method, target, &rt)) {
    case ROUTE_ERROR:
        return answer_error(s, con, K_OTHER, method, target, rt.status, rt.text);
    case ROUTE_PREFLIGHT: {
        const char *const h[] = {"Access-Control-Allow-Methods",
                                 "GET, HEAD, OPTIONS",
                                 "Access-Control-Allow-Headers",
                                 CORS_ALLOW,
                                 "Access-Control-Max-Age",
                                 "86400",
                                 NULL};
        count(s, K_OTHER, 204);
        return answer_text(con, 204, "text/plain", "", 0, h);
    }
    case ROUTE_METRICS:
        return serve_metrics(s, con, method, target);
    case ROUTE_TORRENT:
        return serve_torrent(s, con, &rt, method, target);
    case ROUTE_PREFIX_TORRENT:
        return serve_prefix_torrent(s, con, &rt, method, target);
    case ROUTE_OBJECT:
        return serve_object(s, con, &rt, method, target);
    case ROUTE_RSS:
    case ROUTE_MANIFEST:
        return serve_feed(s, con, &rt, method, target);
    }
    return MHD_NO;
}

/* Keeps the request target as sent, before libmicrohttpd decodes it. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
    struct req *rq = calloc(1, sizeof(*rq));
    (void)cls;
    (void)con;
    if (rq)
        rq->target = strndup(uri, ROUTE_TARGET_MAX + 1);
    return rq;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct server *s = cls;
    struct req *rq = *con_cls;
    (void)toe;
    guard_request_done(s->guard, con);
    if (rq) {
        free(rq->target);
        free(rq);
        *con_cls = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct server *s = cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\r\n")] = '\0';
    log_msg(s->c->log, LOG_WARNING, "http: %s", util_scrub(line));
}

/* 0.0.0.0 or :: (any address): no URL a client could use. */
static bool is_wildcard(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
}

static void free_blocks(struct server *s)
{
    for (size_t i = 0; i < s->nblocks; i++)
        blocks_free(s->blocks[i]);
    free(s->blocks);
    free(s->block_buckets);
    diskcache_free(s->disk);
}

/* A block cache for each bucket served, sharing c->block_cache bytes, and the disk cache behind
 * them all. Returns 0, ENOMEM, or why the disk cache cannot open. */
static int make_blocks(struct server *s, err_t *err)
{
    const struct server_config *c = s->c;
    s->blocks = calloc(c->nscopes, sizeof(*s->blocks));
    s->block_buckets = calloc(c->nscopes, sizeof(*s->block_buckets));
    if (s->blocks == NULL || s->block_buckets == NULL)
        return err_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < c->nscopes; i++)
        if (blocks_of(s, c->scopes[i].bucket) == NULL)
            s->block_buckets[s->nblocks++] = c->scopes[i].bucket;
    uint64_t each = c->block_cache / s->nblocks;
    for (size_t i = 0; i < s->nblocks; i++)
        if ((s->blocks[i] = blocks_new(c->maker->store, s->block_buckets[i], c->log, each,
                                       SERVER_BLOCK, SERVER_FETCHERS)) == NULL)
            return err_set(err, ENOMEM, "cannot start the block cache of %s", s->block_buckets[i]);
    if (c->disk_cache == NULL)
        return 0;
    struct diskcache_config dc = {
        .dir = c->disk_cache, .max = c->disk_cache_max, .block_size = SERVER_BLOCK, .log = c->log};
    int rc = diskcache_open(&dc, &s->disk, err);
    for (size_t i = 0; rc == 0 && i < s->nblocks; i++)
        blocks_set_disk(s->blocks[i], s->disk);
    return rc;
}

int server_run(const struct server_config *c, err_t *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    struct server s = {.c = c};
    char host[INET6_ADDRSTRLEN] = "?", own_url[INET6_ADDRSTRLEN + 16];
    int rc, sig;
    if ((rc = netaddr_parse(c->listen, &ss, &sl, err)))
        return rc;
    bool v6 = ss.ss_family == AF_INET6;
    if (c->public_url == NULL && is_wildcard(&ss))
        return err_set(err, EINVAL,
                       "--listen %s is every address of this host: give --public-url, the URL "
                       "clients reach this server at, which the torrents carry",
                       c->listen);
    if ((rc = make_blocks(&s, err)) != 0 ||
        ((s.guard = guard_new(c->header_timeout_s)) == NULL &&
         (rc = err_set(err, ENOMEM, "cannot start the header deadline's thread")) != 0)) {
        free_blocks(&s);
        return rc;
    }
    pthread_mutex_init(&s.lock, NULL);
    pthread_mutex_lock(&s.lock); /* until public_url is known (port 0 is resolved by binding) */
    pthread_cond_init(&s.landed, NULL);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
                             (v6 ? MHD_USE_IPv6 : 0),
                         0, NULL, NULL, on_request, &s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, &s,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_URI_LOG_CALLBACK,
                         on_uri, &s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s,
                         MHD_OPTION_NOTIFY_CONNECTION, guard_on_connection, s.guard,
                         MHD_OPTION_CONNECTION_TIMEOUT, c->timeout_s, MHD_OPTION_CONNECTION_LIMIT,
                         c->connections, MHD_OPTION_THREAD_POOL_SIZE, c->threads, MHD_OPTION_END);
    if (d == NULL) {
        pthread_mutex_unlock(&s.lock);
        pthread_cond_destroy(&s.landed);
        pthread_mutex_destroy(&s.lock);
        guard_free(s.guard);
        free_blocks(&s);
        return err_set(err, EADDRNOTAVAIL, "--listen %s: cannot serve there (see above)",
                       c->listen);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    inet_ntop(ss.ss_family,
              v6 ? (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                 : (void *)&((struct sockaddr_in *)&ss)->sin_addr,
              host, sizeof(host));
    snprintf(own_url, sizeof(own_url), "http://%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
             di ? di->port : 0);
    s.public_url = c->public_url ? c->public_url : own_url;
    pthread_mutex_unlock(&s.lock);
    log_msg(c->log, LOG_INFO, "listening on %s as %s, %u threads, %u connections at most",
            own_url + 7, s.public_url, c->threads, c->connections);
    do {
        rc = sigwait(c->stop, &sig);
    } while (rc == EINTR);
    if (rc == 0)
        log_msg(c->log, LOG_INFO, "%s: stopping", strsignal(sig));
    MHD_stop_daemon(d);
    guard_free(s.guard);
    pthread_cond_destroy(&s.landed);
    pthread_mutex_destroy(&s.lock);
    free_blocks(&s);
    if (rc)
        return err_set(err, rc, "sigwait: %s", strerror(rc));
    return 0;
}
