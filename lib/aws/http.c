/* http.c — libcurl underneath: each pooled connection is an easy handle inside its own multi
 * handle, so a body can be pulled piecewise (curl pauses the transfer while the reader is busy)
 * and the connection is reused by the next request that takes it from the pool. */
#include "s3torrent/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_HEADERS 64
#define MAX_HEADER_BYTES 16384
#define RECV_BUFFER (256 * 1024) /* fewer, larger reads than curl's 16 KiB default */
#define SPILL (2 * RECV_BUFFER)
#define POOL_MAX 64

struct conn {
    CURL *easy;
    CURLM *multi;
};

struct http_client {
    struct http_opts opts;
    pthread_mutex_t lock;
    struct conn *pool[POOL_MAX];
    size_t npool;
    struct http_counters counters;
};

struct http_stream {
    struct http_client *client;
    struct conn *conn;
    struct curl_slist *hdrs;
    curl_mime *mime; /* a multipart body */
    long status;
    bool headers_done, done, paused, failed_headers;
    CURLcode result;
    /* response headers, stored as "name\0value\0" pairs */
    char hbuf[MAX_HEADER_BYTES];
    size_t hlen;
    const char *hname[MAX_HEADERS], *hvalue[MAX_HEADERS];
    size_t nh;
    /* where the write callback puts body bytes: copied to dst, or handed to sink in place */
    uint8_t *dst;
    buf_sink_fn sink;
    void *sink_arg;
    size_t dst_left;
    uint8_t spill[SPILL];
    size_t spill_off, spill_len;
    char errbuf[CURL_ERROR_SIZE];
};

struct http_client *http_client_new(const struct http_opts *opts)
{
    struct http_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(c);
        return NULL;
    }
    if (opts)
        c->opts = *opts;
    if (c->opts.connect_timeout_ms <= 0)
        c->opts.connect_timeout_ms = 5000;
    if (c->opts.low_speed_time_s <= 0)
        c->opts.low_speed_time_s = 30;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

static void conn_free(struct conn *k)
{
    if (k == NULL)
        return;
    if (k->multi)
        curl_multi_cleanup(k->multi);
    if (k->easy)
        curl_easy_cleanup(k->easy);
    free(k);
}

void http_client_free(struct http_client *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->npool; i++)
        conn_free(c->pool[i]);
    pthread_mutex_destroy(&c->lock);
    free(c);
    curl_global_cleanup();
}

const char *const http_method_names[HTTP_METHODS] = {"GET", "HEAD", "PUT", "POST", "other"};

struct http_counters *http_client_counters(struct http_client *c)
{
    return &c->counters;
}

const struct logger *http_client_log(struct http_client *c)
{
    return c->opts.log;
}

static struct conn *conn_take(struct http_client *c)
{
    struct conn *k = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->npool > 0)
        k = c->pool[--c->npool];
    pthread_mutex_unlock(&c->lock);
    if (k != NULL)
        return k;
    if ((k = calloc(1, sizeof(*k))) == NULL)
        return NULL;
    k->easy = curl_easy_init();
    k->multi = curl_multi_init();
    if (k->easy == NULL || k->multi == NULL) {
        conn_free(k);
        return NULL;
    }
    return k;
}

static void conn_give(struct http_client *c, struct conn *k)
{
    pthread_mutex_lock(&c->lock);
    if (c->npool < POOL_MAX) {
        c->pool[c->npool++] = k;
        k = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    conn_free(k);
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    struct http_stream *s = arg;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* a new response head (after 100 Continue or similar): start over */
        s->nh = 0;
        s->hlen = 0;
        long code = 0;
        const char *sp = memchr(p, ' ', n);
        if (sp)
            code = strtol(sp + 1, NULL, 10);
        s->status = code;
        return n;
    }
    if (n <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        if (s->status >= 200)
            s->headers_done = true;
        return n;
    }
    const char *colon = memchr(p, ':', n);
    if (colon == NULL || s->nh == MAX_HEADERS)
        return n;
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1, *end = p + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t vl = (size_t)(end - v);
    if (s->hlen + nl + vl + 2 > sizeof(s->hbuf)) {
        s->failed_headers = true;
        return 0; /* aborts the transfer: a head this large is not S3's */
    }
    char *name = s->hbuf + s->hlen;
    memcpy(name, p, nl);
    name[nl] = '\0';
    char *value = name + nl + 1;
    memcpy(value, v, vl);
    value[vl] = '\0';
    s->hlen += nl + vl + 2;
    s->hname[s->nh] = name;
    s->hvalue[s->nh++] = value;
    return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct http_stream *s = arg;
    size_t n = size * nmemb, c = 0;
    s->headers_done = true;
    if (s->dst_left == 0 && s->spill_len > 0) {
        s->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (s->dst_left > 0) {
        c = n < s->dst_left ? n : s->dst_left;
        if (s->sink) {
            s->sink(s->sink_arg, (const uint8_t *)p, c);
        } else {
            memcpy(s->dst, p, c);
            s->dst += c;
        }
        s->dst_left -= c;
    }
    if (c < n) {
        if (c == 0 && s->spill_len + n > SPILL) {
            s->paused = true;
            return CURL_WRITEFUNC_PAUSE;
        }
        if (s->spill_len + (n - c) > SPILL)
            return 0; /* cannot happen: curl hands at most RECV_BUFFER bytes at a time */
        if (s->spill_len == 0)
            s->spill_off = 0;
        memmove(s->spill, s->spill + s->spill_off, s->spill_len);
        s->spill_off = 0;
        memcpy(s->spill + s->spill_len, p + c, n - c);
        s->spill_len += n - c;
    }
    atomic_fetch_add(&s->client->counters.bytes_in, n);
    return n;
}

static int curl_errno(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK: return 0;
    case CURLE_COULDNT_CONNECT: return ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return EHOSTUNREACH;
    case CURLE_OPERATION_TIMEDOUT: return ETIMEDOUT;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING: return ECONNRESET;
    case CURLE_PARTIAL_FILE: return EPIPE;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR: return EPROTO;
    case CURLE_OUT_OF_MEMORY: return ENOMEM;
    default: return EIO;
    }
}

/* Drives the transfer one step: perform, then wait for the socket unless done. */
static int pump(struct http_stream *s, err_t *err)
{
    int running = 0, left;
    CURLMcode mc = curl_multi_perform(s->conn->multi, &running);
    if (mc != CURLM_OK)
        return err_set(err, EIO, "HTTP: %s", curl_multi_strerror(mc));
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(s->conn->multi, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE) {
            s->done = true;
            s->result = msg->data.result;
        }
    if (s->done) {
        if (s->result != CURLE_OK) {
            atomic_fetch_add(&s->client->counters.transport_errors, 1);
            if (s->failed_headers)
                return err_set(err, EPROTO, "HTTP: response head too large");
            const char *hint = "";
            if (s->result == CURLE_PEER_FAILED_VERIFICATION)
                hint = " (TLS verification is always on: give the endpoint's CA in AWS_CA_BUNDLE)";
            else if (s->result == CURLE_SSL_CACERT_BADFILE)
                hint = " (check AWS_CA_BUNDLE)";
            return err_set(err, curl_errno(s->result), "HTTP: %s%s",
                           s->errbuf[0] ? s->errbuf : curl_easy_strerror(s->result), hint);
        }
        return 0;
    }
    if (!s->paused)
        curl_multi_poll(s->conn->multi, NULL, 0, 1000, NULL);
    return 0;
}

int http_stream_open(struct http_client *c, const struct http_request *req,
                     struct http_stream **out, err_t *err)
{
    struct http_stream *s = calloc(1, sizeof(*s));
    int rc = 0;
    *out = NULL;
    if (s == NULL)
        return err_set(err, ENOMEM, "HTTP: out of memory");
    s->client = c;
    if ((s->conn = conn_take(c)) == NULL) {
        free(s);
        return err_set(err, ENOMEM, "HTTP: out of memory");
    }
    CURL *e = s->conn->easy;
    curl_easy_reset(e);
    for (size_t i = 0; i < req->nheaders; i++) {
        char line[8192];
        snprintf(line, sizeof(line), "%s: %s", req->headers[i].name, req->headers[i].value);
        struct curl_slist *l = curl_slist_append(s->hdrs, line);
        if (l == NULL) {
            rc = err_set(err, ENOMEM, "HTTP: out of memory");
            goto fail;
        }
        s->hdrs = l;
    }
    /* no 100-continue round trip, and no Content-Type we did not sign */
    s->hdrs = curl_slist_append(s->hdrs, "Expect:");
    bool has_ct = false;
    for (size_t i = 0; i < req->nheaders; i++)
        has_ct |= strcasecmp(req->headers[i].name, "content-type") == 0;
    if (!has_ct && req->nparts == 0) /* a multipart body's Content-Type names its boundary */
        s->hdrs = curl_slist_append(s->hdrs, "Content-Type:");
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->hdrs);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)RECV_BUFFER);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, c->opts.low_speed_time_s);
    if (c->opts.timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->opts.timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->opts.ca_bundle)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->opts.ca_bundle);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(req->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    }
    if (req->nparts > 0) {
        if ((s->mime = curl_mime_init(e)) == NULL) {
            rc = err_set(err, ENOMEM, "HTTP: out of memory");
            goto fail;
        }
        for (size_t i = 0; i < req->nparts; i++) {
            const struct http_part *p = &req->parts[i];
            curl_mimepart *mp = curl_mime_addpart(s->mime);
            if (mp == NULL || curl_mime_name(mp, p->name) != CURLE_OK ||
                curl_mime_data(mp, p->data, p->len) != CURLE_OK ||
                (p->filename && curl_mime_filename(mp, p->filename) != CURLE_OK) ||
                (p->type && curl_mime_type(mp, p->type) != CURLE_OK)) {
                rc = err_set(err, ENOMEM, "HTTP: out of memory");
                goto fail;
            }
        }
        curl_easy_setopt(e, CURLOPT_MIMEPOST, s->mime);
    } else if (strcmp(req->method, "HEAD") != 0 && strcmp(req->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    if (curl_multi_add_handle(s->conn->multi, e) != CURLM_OK) {
        rc = err_set(err, EIO, "HTTP: cannot start the request");
        goto fail;
    }
    atomic_fetch_add(&c->counters.requests, 1);
    int m = 0;
    while (m < HTTP_OTHER && strcmp(req->method, http_method_names[m]) != 0)
        m++;
    atomic_fetch_add(&c->counters.by_method[m], 1);
    log_msg(c->opts.log, LOG_DEBUG, "HTTP %s %.*s", req->method,
            (int)strcspn(req->url, "?"), req->url); /* never the query: it may be presigned */
    while (!s->headers_done && !s->done)
        if ((rc = pump(s, err)))
            goto fail;
    *out = s;
    return 0;
fail:
    http_stream_close(s);
    return rc;
}

long http_stream_status(const struct http_stream *s)
{
    return s->status;
}

const char *http_stream_header(const struct http_stream *s, const char *name)
{
    for (size_t i = 0; i < s->nh; i++)
        if (strcasecmp(s->hname[i], name) == 0)
            return s->hvalue[i];
    return NULL;
}

int http_stream_header_at(const struct http_stream *s, size_t i, const char **name,
                          const char **value)
{
    if (i >= s->nh)
        return ENOENT;
    *name = s->hname[i];
    *value = s->hvalue[i];
    return 0;
}

/* What http_stream_read and http_stream_feed share: n bytes to dst, or to sink. */
static int take(struct http_stream *s, uint8_t *dst, buf_sink_fn sink, void *arg, size_t n,
                size_t *got, err_t *err)
{
    size_t have = s->spill_len < n ? s->spill_len : n;
    int rc = 0;
    if (have && dst)
        memcpy(dst, s->spill + s->spill_off, have);
    else if (have)
        sink(arg, s->spill + s->spill_off, have);
    s->spill_off += have;
    s->spill_len -= have;
    s->dst = sink ? NULL : dst + have;
    s->sink = sink;
    s->sink_arg = arg;
    s->dst_left = n - have;
    while (s->dst_left > 0 && !s->done) {
        if (s->paused) {
            s->paused = false;
            /* curl delivers the held-back data from inside this call */
            curl_easy_pause(s->conn->easy, CURLPAUSE_CONT);
            continue;
        }
        if ((rc = pump(s, err)))
            break;
    }
    if (rc == 0 && s->done && s->result != CURLE_OK)
        rc = pump(s, err);
    *got = n - s->dst_left;
    s->dst = NULL;
    s->sink = NULL;
    s->sink_arg = NULL;
    s->dst_left = 0;
    return rc;
}

int http_stream_read(struct http_stream *s, uint8_t *dst, size_t n, size_t *got, err_t *err)
{
    return take(s, dst, NULL, NULL, n, got, err);
}

int http_stream_feed(struct http_stream *s, size_t n, buf_sink_fn sink, void *arg, size_t *got,
                     err_t *err)
{
    return take(s, NULL, sink, arg, n, got, err);
}

int http_stream_read_all(struct http_stream *s, struct buf *b, err_t *err)
{
    uint8_t chunk[16384];
    for (;;) {
        size_t got;
        int rc = http_stream_read(s, chunk, sizeof(chunk), &got, err);
        if (rc)
            return rc;
        if (buf_put(b, chunk, got) != 0)
            return err_set(err, b->err, "HTTP: response body larger than %zu bytes", b->max);
        if (got < sizeof(chunk))
            return 0;
    }
}

void http_stream_close(struct http_stream *s)
{
    if (s == NULL)
        return;
    if (s->conn != NULL) {
        curl_multi_remove_handle(s->conn->multi, s->conn->easy);
        if (s->mime)
            curl_easy_setopt(s->conn->easy, CURLOPT_MIMEPOST, NULL);
        if (s->done && s->result == CURLE_OK) {
            conn_give(s->client, s->conn);
        } else {
            /* a half-read body or a failed transfer: the connection is not reusable */
            conn_free(s->conn);
        }
    }
    curl_slist_free_all(s->hdrs);
    curl_mime_free(s->mime);
    free(s);
}

int http_stream_cookie(const struct http_stream *s, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < s->nh; i++) {
        const char *v = s->hvalue[i];
        if (strcasecmp(s->hname[i], "set-cookie") != 0)
            continue;
        v += strspn(v, " \t");
        if (strncmp(v, name, nl) != 0 || v[nl] != '=')
            continue;
        v += nl + 1;
        size_t n = strcspn(v, ";");
        if (n >= len)
            return E2BIG;
        for (size_t j = 0; j < n; j++)
            if ((unsigned char)v[j] <= 0x20 || v[j] == 0x7f)
                return EPROTO;
        memcpy(out, v, n);
        out[n] = '\0';
        return 0;
    }
    return ENOENT;
}

bool http_url_plain(const char *url)
{
    const char *rest;
    if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    else
        return false;
    size_t auth_len = strcspn(rest, "/?#");
    if (auth_len == 0 || memchr(rest, '@', auth_len) != NULL)
        return false;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

long http_backoff_ms(unsigned attempt, long base_ms, long cap_ms, double r)
{
    long ceiling = cap_ms;
    if (attempt < 30 && base_ms < cap_ms >> attempt)
        ceiling = base_ms << attempt;
    return (long)(r * (double)ceiling);
}

void http_retry_sleep(const struct http_retry *r, unsigned attempt)
{
    double rnd = r->random ? r->random() : (double)arc4random() / 4294967296.0;
    long ms = http_backoff_ms(attempt, 100, 20000, rnd);
    if (r->sleep_ms) {
        r->sleep_ms(ms);
        return;
    }
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

bool http_transport_retryable(int e)
{
    return e == ECONNREFUSED || e == ECONNRESET || e == ETIMEDOUT || e == EPIPE || e == EIO ||
           e == EHOSTUNREACH;
}

int http_retry_run(const struct http_retry *r, http_attempt_fn fn, void *arg, err_t *err)
{
    unsigned a;
    int rc;
    for (a = 1;; a++) {
        bool retry = false;
        rc = fn(arg, &retry, err);
        if (rc == 0 || !retry || a >= r->max_attempts)
            break;
        if (r->http) {
            atomic_fetch_add(&r->http->counters.retries, 1);
            log_msg(r->http->opts.log, LOG_INFO, "retrying (attempt %u of %u): %s", a + 1,
                    r->max_attempts, err ? err->msg : "");
        }
        http_retry_sleep(r, a);
    }
    if (rc != 0 && a > 1 && err)
        err_prefix(err, "after %u attempts", a);
    return rc;
}
