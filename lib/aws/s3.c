/* s3.c — the S3 client: builds each request (path- or virtual-hosted addressing, the key
 * URI-encoded once) and reads S3's error documents; aws_send signs and retries it. Ranged GETs
 * become a byte source for the hasher, resumed where a body broke off. */
#include "s3torrent/s3.h"
#include "s3torrent/aws.h"
#include "s3torrent/config.h"
#include "s3torrent/sigv4.h"
#include "s3torrent/uri.h"
#include "s3torrent/util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_QUERY   8
#define MAX_HEADERS 24
/* The smallest ranged GET a hasher makes (its source's span): the hasher starts with parts
 * up to 16 times larger (fewer requests) and shrinks them to this as the object runs out, so the
 * streams finish together (docs/DESIGN.md §4, Ranged GETs). */
#define PART_MIN (8u << 20)

struct s3_client {
    struct s3_config cfg;
    struct config_service svc;
    char *trace_id;
    unsigned read_attempts, write_attempts, part_attempts;
    struct aws *aws;
};

struct s3_req {
    const char *method;
    const char *bucket;
    const char *key; /* NULL: a bucket request */
    struct sigv4_pair query[MAX_QUERY];
    size_t nquery;
    struct sigv4_pair headers[MAX_HEADERS]; /* besides Host and the signature's own */
    size_t nheaders;
    const void *body;
    size_t body_len;
    const char *payload_hash; /* NULL: hashed by the signer */
    unsigned attempts;
};

/* The backoff of the byte source's resumes, the same as aws_send's. */
static struct http_retry policy(const struct s3_client *s3, unsigned attempts)
{
    struct http_retry r = {attempts, s3->cfg.http, s3->cfg.random, s3->cfg.sleep_ms};
    return r;
}

int s3_client_new(const struct s3_config *cfg, struct s3_client **out, err_t *err)
{
    struct s3_client *s3 = calloc(1, sizeof(*s3));
    int rc = 0;
    *out = NULL;
    if (s3 == NULL)
        return err_set(err, ENOMEM, "out of memory");
    s3->cfg = *cfg;
    if ((rc = config_service("S3", "s3", "AWS_ENDPOINT_URL_S3", cfg->endpoint, cfg->region,
                             cfg->max_attempts, &s3->svc, err)))
        goto fail;
    s3->trace_id = cfg->trace_id ? strdup(cfg->trace_id) : NULL;
    if (cfg->trace_id && !s3->trace_id) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto fail;
    }
    struct aws_config ac = {
        .http = cfg->http,
        .creds = cfg->no_sign ? NULL : cfg->creds,
        .region = s3->svc.region,
        .service = "s3",
        .opt = SIGV4_OPTIONS_S3,
        .trace_id = s3->trace_id,
        .now = cfg->now,
        .random = cfg->random,
        .sleep_ms = cfg->sleep_ms,
    };
    if ((rc = aws_new(&ac, &s3->aws, err)))
        goto fail;
    unsigned max = s3->svc.max_attempts;
    s3->write_attempts = max ? max : 3;
    s3->read_attempts = max ? max : 5;
    s3->part_attempts = max ? max : 10;
    *out = s3;
    return 0;
fail:
    s3_client_free(s3);
    return rc;
}

void s3_client_free(struct s3_client *s3)
{
    if (s3 == NULL)
        return;
    aws_free(s3->aws);
    config_service_free(&s3->svc);
    free(s3->trace_id);
    free(s3);
}

struct http_counters *s3_counters(struct s3_client *s3)
{
    return http_client_counters(s3->cfg.http);
}

int s3_check_bucket(const char *bucket, size_t len, err_t *err)
{
    bool ok = len >= 1 && len <= 255;
    for (size_t i = 0; ok && i < len; i++) {
        char c = bucket[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '.' || c == '_';
    }
    if (!ok)
        return err_set(err, EINVAL,
                       "\"%.*s\" is not a bucket name (1 to 255 letters, digits, '.', '-' or '_')",
                       (int)(len < 255 ? len : 255), bucket);
    return 0;
}

int s3_parse_uri(const char *uri, char **bucket, char **key, err_t *err)
{
    *bucket = *key = NULL;
    if (strncmp(uri, "s3://", 5) != 0)
        return err_set(err, EINVAL, "'%s' is not an s3://bucket/key URI", uri);
    const char *b = uri + 5, *slash = strchr(b, '/');
    size_t bl = slash ? (size_t)(slash - b) : strlen(b);
    if (s3_check_bucket(b, bl, err))
        return err_prefix(err, "'%s'", uri);
    const char *k = slash ? slash + 1 : "";
    if (strlen(k) > 1024)
        return err_set(err, EINVAL, "'%s': S3 keys are at most 1024 bytes", uri);
    *bucket = strndup(b, bl);
    *key = strdup(k);
    if (*bucket == NULL || *key == NULL) {
        free(*bucket);
        free(*key);
        *bucket = *key = NULL;
        return err_set(err, ENOMEM, "out of memory");
    }
    return 0;
}

int s3_addressing_parse(const char *s, enum s3_addressing *out, err_t *err)
{
    static const char *const names[] = {"auto", "path", "virtual"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum s3_addressing)i;
            return 0;
        }
    }
    return err_set(err, EINVAL, "addressing style '%.32s' is none of auto, path, virtual", s);
}

static bool path_style(const struct s3_client *s3, const char *bucket)
{
    if (s3->cfg.addressing != S3_ADDRESSING_AUTO)
        return s3->cfg.addressing == S3_ADDRESSING_PATH;
    /* names no host name can carry (legacy ones: '_', upper case) go path-style too */
    return s3->svc.custom || strpbrk(bucket, "._ABCDEFGHIJKLMNOPQRSTUVWXYZ") != NULL;
}

/* Builds the URL, the signed path and the Host of r. */
static int build_target(const struct s3_client *s3, const struct s3_req *r, struct buf *url,
                        struct buf *path, char *host, size_t hostlen)
{
    bool ps = path_style(s3, r->bucket);
    if (ps)
        snprintf(host, hostlen, "%s", s3->svc.host);
    else
        snprintf(host, hostlen, "%s.%s", r->bucket, s3->svc.host);
    buf_printf(path, "/");
    if (ps) {
        buf_put(path, r->bucket, strlen(r->bucket));
        buf_put(path, "/", 1);
    }
    if (r->key)
        buf_put(path, r->key, strlen(r->key));
    buf_put(path, "", 1);
    buf_printf(url, "%s://%s", s3->svc.scheme, host);
    uri_encode(url, (const char *)path->data, path->len - 1, true);
    if (r->nquery > 0) {
        buf_put(url, "?", 1);
        sigv4_canonical_query(url, r->query, r->nquery);
    }
    buf_put(url, "", 1);
    return url->err ? url->err : path->err;
}

int s3_object_url(const struct s3_client *s3, const char *bucket, const char *key, struct buf *b)
{
    struct s3_req r = {.method = "GET", .bucket = bucket, .key = key};
    struct buf path;
    char host[512];
    buf_init(&path, 8192);
    int rc = build_target(s3, &r, b, &path, host, sizeof(host));
    buf_free(&path);
    if (rc == 0)
        b->len--; /* no NUL inside the caller's buffer */
    return rc;
}

/* Fills doc's times from the answer's Date header and the local clock, and its message when
 * the server gave none, as S3 writes them for RequestTimeTooSkewed. Returns false when the
 * Date is missing or within S3's 15 minutes of the local clock. */
static bool skew_from_date(const struct http_stream *hs, struct s3xml_error *doc)
{
    int64_t server_s = 0;
    time_t now = time(NULL);
    if (!aws_date_skewed(hs, now, &server_s))
        return false;
    time_t server = (time_t)server_s;
    if (doc->message[0] == '\0')
        snprintf(doc->message, sizeof(doc->message),
                 "The difference between the request time and the current time is too large.");
    struct tm tm;
    strftime(doc->server_time, sizeof(doc->server_time), "%Y%m%dT%H%M%SZ", gmtime_r(&server, &tm));
    strftime(doc->request_time, sizeof(doc->request_time), "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
    doc->server_time_unix = server;
    doc->request_time_unix = now;
    return true;
}

/* What aws_send hands the callbacks of an S3 request. */
struct s3_call {
    const struct s3_req *r;
    void *arg; /* the ok callback's own */
};

/* aws_send's judge of a non-2xx answer: S3's error document (when there is one) says why. */
static int s3_fail(void *ctx, struct http_stream *hs, bool *retry, err_t *err)
{
    const struct s3_req *r = ((struct s3_call *)ctx)->r;
    long status = http_stream_status(hs);
    struct buf body;
    struct s3xml_error doc;
    bool have_doc = false;
    buf_init(&body, S3XML_ERROR_DEFAULT_MAX);
    if (strcmp(r->method, "HEAD") != 0 && http_stream_read_all(hs, &body, NULL) == 0)
        have_doc = s3xml_error_parse(body.data, body.len, 0, &doc, NULL) == 0;
    buf_free(&body);
    if (!have_doc && status == 403) {
        /* a 403 without a body (HEAD answers have none) whose Date is far off: the
         * RequestTimeTooSkewed S3 could not spell out */
        memset(&doc, 0, sizeof(doc));
        snprintf(doc.code, sizeof(doc.code), "RequestTimeTooSkewed");
        have_doc = skew_from_date(hs, &doc);
    } else if (have_doc && strcmp(doc.code, "RequestTimeTooSkewed") == 0 &&
               doc.server_time_unix == 0) {
        skew_from_date(hs, &doc); /* RGW says neither time, nor a message */
    }
    int rc = s3xml_error_report(err, (int)status, have_doc ? &doc : NULL, r->bucket, r->key);
    aws_error_errno((int)status, have_doc ? doc.code : NULL, retry);
    return rc;
}

/* Sends r through aws_send: with r->ok NULL, 0 with *out open on a 2xx answer; else r->ok has
 * read it. Or a positive errno with err set to one line (S3's code and message when it sent
 * one). */
static int exchange_with(struct s3_client *s3, const struct s3_req *r, aws_answer_fn ok,
                         void *ok_arg, struct http_stream **out, err_t *err)
{
    struct buf url, path;
    char host[512], what[300];
    struct s3_call call = {r, ok_arg};
    int rc;
    buf_init(&url, 16384);
    buf_init(&path, 8192);
    snprintf(what, sizeof(what), "s3://%s/%s", r->bucket, r->key ? r->key : "");
    if ((rc = build_target(s3, r, &url, &path, host, sizeof(host)))) {
        rc = err_set(err, rc, "%s: request too large", what);
        goto out;
    }
    struct aws_request ar = {
        .method = r->method,
        .url = (const char *)url.data,
        .host = host,
        .path = (const char *)path.data,
        .path_is_raw = true,
        .query = r->query,
        .nquery = r->nquery,
        .headers = r->headers,
        .nheaders = r->nheaders,
        .body = r->body,
        .body_len = r->body_len,
        .payload_hash = r->payload_hash,
        .attempts = r->attempts,
        .what = what,
        .ok = ok,
        .fail = s3_fail,
        .ctx = &call,
    };
    rc = aws_send(s3->aws, &ar, out, err);
out:
    buf_free(&url);
    buf_free(&path);
    return rc;
}

static int exchange(struct s3_client *s3, const struct s3_req *r, struct http_stream **out,
                    err_t *err)
{
    return exchange_with(s3, r, NULL, NULL, out, err);
}

static void unquote(char *dst, size_t len, const char *etag)
{
    size_t n = etag ? strlen(etag) : 0;
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
        etag++;
        n -= 2;
    }
    if (n >= len)
        n = len - 1;
    memcpy(dst, etag ? etag : "", n);
    dst[n] = '\0';
}

/* Copies an x-amz-version-id (v, may be NULL) whole into dst (len bytes), or leaves dst "" when
 * it does not fit or holds a control byte. */
static void copy_version_id(char *dst, size_t len, const char *v)
{
    size_t n = v ? strlen(v) : 0;
    dst[0] = '\0';
    if (n > 0 && n < len && !util_has_ctl(v))
        memcpy(dst, v, n + 1);
}

/* A version id worth sending as ?versionId=: S3's "null" names the unversioned version, which
 * a request without versionId reads anyway. */
static bool pins_version(const char *version_id)
{
    return version_id && version_id[0] && strcmp(version_id, "null") != 0;
}

/* HeadObject of the current version, or of version_id when it pins one. */
static int head_object(struct s3_client *s3, const char *bucket, const char *key,
                       const char *version_id, struct s3_object *out, err_t *err)
{
    struct s3_req r = {
        .method = "HEAD", .bucket = bucket, .key = key, .attempts = s3->read_attempts};
    if (pins_version(version_id))
        r.query[r.nquery++] = (struct sigv4_pair){"versionId", version_id};
    struct http_stream *hs;
    int rc = exchange(s3, &r, &hs, err);
    if (rc == EACCES) {
        /* a HEAD answer has no body to say why; a one-byte GET gets S3's reason
         * (SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied, ...) */
        struct s3_req g = {.method = "GET", .bucket = bucket, .key = key, .attempts = 1};
        g.headers[g.nheaders++] = (struct sigv4_pair){"Range", "bytes=0-0"};
        err_t gerr = {0};
        int gr = exchange(s3, &g, &hs, &gerr);
        if (gr == 0)
            http_stream_close(hs);
        else if (gr == EACCES)
            *err = gerr;
    }
    if (rc)
        return rc;
    memset(out, 0, sizeof(*out));
    const char *len = http_stream_header(hs, "content-length");
    unquote(out->etag, sizeof(out->etag), http_stream_header(hs, "etag"));
    out->size = len ? strtoull(len, NULL, 10) : 0;
    if (util_http_date(http_stream_header(hs, "last-modified"), &out->mtime) != 0)
        out->mtime = 0;
    unquote(out->content_type, sizeof(out->content_type), http_stream_header(hs, "content-type"));
    copy_version_id(out->version_id, sizeof(out->version_id),
                    http_stream_header(hs, "x-amz-version-id"));
    const char *hn, *hv;
    for (size_t i = 0; http_stream_header_at(hs, i, &hn, &hv) == 0; i++) {
        size_t nl = strlen(hn);
        if (nl <= 11 || strncasecmp(hn, "x-amz-meta-", 11) != 0 || out->nmeta == S3_MAX_META ||
            nl - 11 >= sizeof(out->meta[0].name) || strlen(hv) >= sizeof(out->meta[0].value))
            continue;
        for (size_t j = 11; j <= nl; j++)
            out->meta[out->nmeta].name[j - 11] = (char)tolower((unsigned char)hn[j]);
        snprintf(out->meta[out->nmeta].value, sizeof(out->meta[0].value), "%s", hv);
        out->nmeta++;
    }
    http_stream_close(hs);
    if (len == NULL || out->etag[0] == '\0')
        return err_set(err, EPROTO, "s3://%s/%s: HEAD answer without Content-Length or ETag",
                       bucket, key);
    return 0;
}

int s3_head(struct s3_client *s3, const char *bucket, const char *key, struct s3_object *out,
            err_t *err)
{
    return head_object(s3, bucket, key, NULL, out, err);
}

int s3_head_version(struct s3_client *s3, const char *bucket, const char *key,
                    const char *version_id, struct s3_object *out, err_t *err)
{
    return head_object(s3, bucket, key, version_id, out, err);
}

int s3_presign_get(struct s3_client *s3, const char *bucket, const char *key,
                   const char *version_id, unsigned expires, struct buf *b, err_t *err)
{
    struct s3_req r = {.method = "GET", .bucket = bucket, .key = key};
    struct buf url, path;
    char host[512], what[300];
    int rc;
    if (pins_version(version_id))
        r.query[r.nquery++] = (struct sigv4_pair){"versionId", version_id};
    buf_init(&url, 16384);
    buf_init(&path, 8192);
    snprintf(what, sizeof(what), "s3://%s/%s", bucket, key);
    if ((rc = build_target(s3, &r, &url, &path, host, sizeof(host)))) {
        rc = err_set(err, rc, "%s: request too large", what);
        goto out;
    }
    struct aws_request ar = {
        .method = r.method,
        .url = (const char *)url.data,
        .host = host,
        .path = (const char *)path.data,
        .path_is_raw = true,
        .query = r.query,
        .nquery = r.nquery,
        .what = what,
    };
    rc = aws_presign(s3->aws, &ar, expires, b, err);
out:
    buf_free(&url);
    buf_free(&path);
    return rc;
}

const char *s3_object_meta(const struct s3_object *o, const char *name)
{
    for (size_t i = 0; i < o->nmeta; i++)
        if (strcasecmp(o->meta[i].name, name) == 0)
            return o->meta[i].value;
    return NULL;
}

int s3_head_part(struct s3_client *s3, const char *bucket, const char *key, const char *etag,
                 unsigned part, uint64_t *part_size, unsigned *parts, err_t *err)
{
    char num[16], quoted[140];
    snprintf(num, sizeof(num), "%u", part);
    snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
    struct s3_req r = {
        .method = "HEAD", .bucket = bucket, .key = key, .attempts = s3->read_attempts};
    r.query[r.nquery++] = (struct sigv4_pair){"partNumber", num};
    r.headers[r.nheaders++] = (struct sigv4_pair){"If-Match", quoted};
    struct http_stream *hs;
    int rc = exchange(s3, &r, &hs, err);
    if (rc == ESTALE)
        return err_set(err, ESTALE, "s3://%s/%s: object changed (ETag is no longer %s)", bucket,
                       key, etag);
    if (rc)
        return rc;
    const char *len = http_stream_header(hs, "content-length");
    const char *count = http_stream_header(hs, "x-amz-mp-parts-count");
    char *end = NULL;
    unsigned long long n = count ? strtoull(count, &end, 10) : 0;
    bool ok = len != NULL && count != NULL && end != count && *end == '\0' && n > 0 && n <= 10000;
    *part_size = len ? strtoull(len, NULL, 10) : 0;
    *parts = (unsigned)n;
    http_stream_close(hs);
    if (!ok)
        return err_set(err, EPROTO,
                       "s3://%s/%s: HEAD of part %u answered without Content-Length or a valid "
                       "x-amz-mp-parts-count",
                       bucket, key, part);
    return 0;
}

int s3_put(struct s3_client *s3, const char *bucket, const char *key, const void *body, size_t len,
           const char *content_type, const struct http_header *meta, size_t nmeta, char *etag_out,
           err_t *err)
{
    struct s3_req r = {.method = "PUT",
                       .bucket = bucket,
                       .key = key,
                       .body = body,
                       .body_len = len,
                       .attempts = s3->write_attempts};
    char names[MAX_HEADERS][160], hash[65];
    unsigned char md[32];
    if (nmeta + 1 > MAX_HEADERS)
        return err_set(err, EINVAL, "s3://%s/%s: too much metadata", bucket, key);
    if (content_type)
        r.headers[r.nheaders++] = (struct sigv4_pair){"Content-Type", content_type};
    for (size_t i = 0; i < nmeta; i++) {
        snprintf(names[i], sizeof(names[i]), "x-amz-meta-%s", meta[i].name);
        r.headers[r.nheaders++] = (struct sigv4_pair){names[i], meta[i].value};
    }
    /* hash the body once, not on every attempt */
    EVP_Digest(body, len, md, NULL, EVP_sha256(), NULL);
    r.payload_hash = util_hex(md, sizeof(md), hash);
    struct http_stream *hs;
    int rc = exchange(s3, &r, &hs, err);
    if (rc)
        return rc;
    if (etag_out)
        unquote(etag_out, 128, http_stream_header(hs, "etag"));
    struct buf sink;
    buf_init(&sink, 65536);
    http_stream_read_all(hs, &sink, NULL);
    buf_free(&sink);
    http_stream_close(hs);
    return 0;
}

/* s3_get_all's reader of a 2xx answer: the whole body into the caller's buffer, from where it
 * stood before the attempt. */
static int read_whole(void *ctx, struct http_stream *hs, bool *retry, err_t *err)
{
    struct s3_call *call = ctx;
    struct buf *b = call->arg;
    size_t before = b->len;
    int rc = http_stream_read_all(hs, b, err);
    if (rc) {
        b->len = before;
        *retry = rc != EFBIG && http_transport_retryable(rc);
        err_prefix(err, "s3://%s/%s", call->r->bucket, call->r->key);
    }
    return rc;
}

int s3_get_all(struct s3_client *s3, const char *bucket, const char *key, const char *etag,
               struct buf *b, err_t *err)
{
    struct s3_req r = {
        .method = "GET", .bucket = bucket, .key = key, .attempts = s3->read_attempts};
    char quoted[140];
    if (etag) {
        snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
        r.headers[r.nheaders++] = (struct sigv4_pair){"If-Match", quoted};
    }
    return exchange_with(s3, &r, read_whole, b, NULL, err);
}

struct list_ctx {
    struct s3xml *x;
    err_t *err;
};

int s3_list(struct s3_client *s3, const char *bucket, const char *prefix, const char *delimiter,
            const struct s3xml_list_opts *opts, err_t *err)
{
    char *token = NULL;
    int rc = 0;
    for (;;) {
        struct s3_req r = {
            .method = "GET", .bucket = bucket, .key = NULL, .attempts = s3->read_attempts};
        r.query[r.nquery++] = (struct sigv4_pair){"list-type", "2"};
        r.query[r.nquery++] = (struct sigv4_pair){"encoding-type", "url"};
        if (prefix && *prefix)
            r.query[r.nquery++] = (struct sigv4_pair){"prefix", prefix};
        if (delimiter)
            r.query[r.nquery++] = (struct sigv4_pair){"delimiter", delimiter};
        if (token)
            r.query[r.nquery++] = (struct sigv4_pair){"continuation-token", token};
        struct http_stream *hs = NULL;
        struct s3xml *x = NULL;
        if ((rc = exchange(s3, &r, &hs, err)))
            break;
        if ((rc = s3xml_list_new(opts, &x, err))) {
            http_stream_close(hs);
            break;
        }
        uint8_t chunk[65536];
        for (;;) {
            size_t got;
            if ((rc = http_stream_read(hs, chunk, sizeof(chunk), &got, err)))
                break;
            if ((rc = s3xml_feed(x, chunk, got, err)))
                break;
            if (got < sizeof(chunk)) {
                rc = s3xml_finish(x, err);
                break;
            }
        }
        http_stream_close(hs);
        const struct s3xml_list_page *page = rc ? NULL : s3xml_list_page(x);
        free(token);
        token = page && page->is_truncated ? strdup(page->next_continuation_token) : NULL;
        bool more = page && page->is_truncated;
        s3xml_free(x);
        if (rc) {
            err_prefix(err, "listing s3://%s/%s", bucket, prefix ? prefix : "");
            break;
        }
        if (opts->on_page_end && (rc = opts->on_page_end(opts->ctx, err)))
            break;
        if (!more)
            break;
        if (token == NULL) {
            rc = err_set(err, ENOMEM, "out of memory");
            break;
        }
    }
    free(token);
    return rc;
}

/* ---- the byte source ---- */

struct s3_source {
    struct source base;
    struct s3_client *s3;
    char *bucket, *key;
    char etag[128];
    char version_id[64]; /* sent as ?versionId= when it pins a version */
};

static const struct source_ops s3_ops;

struct s3_stream {
    uint64_t off, end;
    struct http_stream *hs;
    unsigned failures; /* consecutive failures without progress */
};

static int s3_stream_open(struct source *s, uint64_t off, uint64_t len, void **stream, err_t *err)
{
    struct s3_stream *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return err_set(err, ENOMEM, "%s: out of memory", s->display);
    st->off = off;
    st->end = off + len;
    *stream = st;
    return 0;
}

static int open_part(struct s3_source *src, struct s3_stream *st, err_t *err)
{
    char range[64], quoted[140];
    struct s3_req r = {.method = "GET",
                       .bucket = src->bucket,
                       .key = src->key,
                       .attempts = src->s3->part_attempts};
    snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, st->off, st->end - 1);
    snprintf(quoted, sizeof(quoted), "\"%s\"", src->etag);
    r.headers[r.nheaders++] = (struct sigv4_pair){"If-Match", quoted};
    r.headers[r.nheaders++] = (struct sigv4_pair){"Range", range};
    if (pins_version(src->version_id))
        r.query[r.nquery++] = (struct sigv4_pair){"versionId", src->version_id};
    int rc = exchange(src->s3, &r, &st->hs, err);
    if (rc == ESTALE)
        return err_set(err, ESTALE, "%s: object changed while hashing (ETag is no longer %s)",
                       src->base.display, src->etag);

    /* If-Match makes S3 refuse a replaced object; servers that ignore If-Match still say
     * which version they send */
    char got[128];
    if (rc == 0) {
        unquote(got, sizeof(got), http_stream_header(st->hs, "etag"));
        if (strcmp(got, src->etag) != 0) {
            http_stream_close(st->hs);
            st->hs = NULL;
            return err_set(err, ESTALE,
                           "%s: object changed while hashing (ETag %s is no longer %s)",
                           src->base.display, got, src->etag);
        }
    }
    if (rc == 0 && http_stream_status(st->hs) != 206 &&
        !(st->off == 0 && st->end == src->base.size)) {
        rc = err_set(err, EPROTO, "%s: ranged GET answered %ld, not 206", src->base.display,
                     http_stream_status(st->hs));
        http_stream_close(st->hs);
        st->hs = NULL;
    }
    return rc;
}

/* Fills dst[0, n) from the stream (or, with dst NULL, hands the n bytes to sink as they
 * arrive), reopening the ranged GET where a body broke off. */
static int range_read(struct s3_source *src, struct s3_stream *st, uint8_t *dst, buf_sink_fn sink,
                      void *arg, size_t n, err_t *err)
{
    const char *display = src->base.display;
    size_t filled = 0;
    int rc = 0;
    if (n > st->end - st->off)
        return err_set(err, EINVAL, "%s: read past the range", display);
    while (filled < n) {
        if (st->hs == NULL && (rc = open_part(src, st, err)))
            return rc;
        size_t want = n - filled, got = 0;
        rc = dst ? http_stream_read(st->hs, dst + filled, want, &got, err)
                 : http_stream_feed(st->hs, want, sink, arg, &got, err);
        filled += got;
        st->off += got;
        if (got > 0)
            st->failures = 0;
        if (rc == 0 && got == want)
            continue;
        /* the body broke off (or ended early): resume from where it stopped */
        http_stream_close(st->hs);
        st->hs = NULL;
        if (rc == 0)
            rc = err_set(err, EPIPE, "%s: body ended early", display);
        if (!http_transport_retryable(rc) || ++st->failures >= src->s3->part_attempts)
            return err_prefix(err, "%s: reading bytes %" PRIu64 "-%" PRIu64, display, st->off,
                              st->end - 1);
        atomic_fetch_add(&s3_counters(src->s3)->retries, 1);
        log_msg(http_client_log(src->s3->cfg.http), LOG_INFO,
                "%s: resuming at byte %" PRIu64 ": %s", display, st->off, err ? err->msg : "");
        struct http_retry p = policy(src->s3, src->s3->part_attempts);
        http_retry_sleep(&p, st->failures);
        rc = 0;
    }
    return 0;
}

static int s3_stream_next(struct source *s, void *stream, size_t n, uint8_t *scratch,
                          const uint8_t **data, err_t *err)
{
    *data = scratch;
    return range_read((struct s3_source *)s, stream, scratch, NULL, NULL, n, err);
}

static int s3_stream_feed(struct source *s, void *stream, size_t n, buf_sink_fn sink, void *arg,
                          err_t *err)
{
    return range_read((struct s3_source *)s, stream, NULL, sink, arg, n, err);
}

int source_s3_read_range(struct source *s, uint64_t off, const struct iovec *iov, unsigned iovcnt,
                         err_t *err)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < iovcnt; i++)
        n += iov[i].iov_len;
    struct s3_stream st = {.off = off, .end = off + n};
    if (s->ops != &s3_ops)
        return err_set(err, EINVAL, "%s: not an S3 source", s->display);
    if (off > s->size || n > s->size - off)
        return err_set(err, EINVAL, "%s: range past the end", s->display);
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < iovcnt; i++) /* one GET: the stream goes on */
        if (iov[i].iov_len > 0)
            rc = range_read((struct s3_source *)s, &st, iov[i].iov_base, NULL, NULL, iov[i].iov_len,
                            err);
    http_stream_close(st.hs);
    return rc;
}

static void s3_stream_close(struct source *s, void *stream)
{
    (void)s;
    struct s3_stream *st = stream;
    http_stream_close(st->hs);
    free(st);
}

static int s3_finish(struct source *s, err_t *err)
{
    (void)s;
    (void)err;
    return 0; /* every byte came under If-Match: nothing else to check */
}

static void s3_destroy(struct source *s)
{
    struct s3_source *src = (struct s3_source *)s;
    free(src->bucket);
    free(src->key);
}

static const struct source_ops s3_ops = {
    s3_stream_open, s3_stream_next, s3_stream_feed, s3_stream_close, s3_finish, s3_destroy,
};

static int open_source(struct s3_client *s3, const char *bucket, const char *key,
                       const struct s3_object *known, unsigned parallel, struct source **out,
                       err_t *err)
{
    struct s3_source *src = calloc(1, sizeof(*src));
    struct s3_object obj;
    int rc;
    *out = NULL;
    if (src == NULL)
        return err_set(err, ENOMEM, "out of memory");
    src->base.ops = &s3_ops;
    src->s3 = s3;
    src->bucket = strdup(bucket);
    src->key = strdup(key);
    size_t dl = strlen(bucket) + strlen(key) + 7;
    src->base.display = malloc(dl);
    const char *slash = strrchr(key, '/');
    src->base.name = strdup(slash ? slash + 1 : key);
    if (!src->bucket || !src->key || !src->base.display || !src->base.name) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto fail;
    }
    snprintf(src->base.display, dl, "s3://%s/%s", bucket, key);
    if (*key == '\0' || key[strlen(key) - 1] == '/') {
        rc = err_set(err, EISDIR, "%s: a prefix, not an object", src->base.display);
        goto fail;
    }
    if (known == NULL) {
        if ((rc = s3_head(s3, bucket, key, &obj, err)))
            goto fail;
        known = &obj;
    }
    snprintf(src->etag, sizeof(src->etag), "%s", known->etag);
    snprintf(src->version_id, sizeof(src->version_id), "%s", known->version_id);
    src->base.size = known->size;
    src->base.mtime = known->mtime;
    src->base.parallel = parallel ? parallel : 4;
    src->base.span = PART_MIN; /* whole MiB: ranges stay aligned */
    *out = &src->base;
    return 0;
fail:
    source_free(&src->base);
    return rc;
}

int source_s3_open(struct s3_client *s3, const char *bucket, const char *key, unsigned parallel,
                   struct source **out, err_t *err)
{
    return open_source(s3, bucket, key, NULL, parallel, out, err);
}

int source_s3_open_known(struct s3_client *s3, const char *bucket, const char *key,
                         const struct s3_object *obj, unsigned parallel, struct source **out,
                         err_t *err)
{
    return open_source(s3, bucket, key, obj, parallel, out, err);
}

void s3_client_set_trace_id(struct s3_client *c, const char *trace_id)
{
    aws_set_trace_id(c->aws, trace_id);
}
