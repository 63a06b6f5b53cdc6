/* sigv4.c — AWS Signature Version 4 on OpenSSL's SHA-256 and HMAC: canonical forms built in
 * capped buffers, the signing key cached in a struct the caller owns. Nothing is logged. */
#include "s3torrent/sigv4.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/uri.h"
#include "s3torrent/util.h"

#define MAX_TEXT   (256 * 1024) /* any canonical part or result string */
#define MAX_ITEMS  1024         /* headers, or query parameters, in one request */
#define MAX_KEY_ID 128
#define MAX_SECRET 256
#define MAX_TOKEN  16384
#define MAX_SCOPE  63 /* region or service name */

static const char *const auth_params[] = {
    "X-Amz-Algorithm",     "X-Amz-Credential",     "X-Amz-Date",      "X-Amz-Expires",
    "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature",
};

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ASCII case-insensitive comparison that orders like the lower-cased strings do. */
static int lower_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)lower(*a), y = (unsigned char)lower(*b);
        if (x != y || x == 0)
            return x - y;
    }
}

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_token(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

/* True when s holds a control byte; HTAB counts only when tab_ok is false. */
static bool has_ctl(const char *s, bool tab_ok)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (util_is_ctl(c) && !(tab_ok && c == '\t'))
            return true;
    }
    return false;
}

/* Region and service names: what AWS uses, and nothing that could break the scope. */
static bool is_scope_part(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > MAX_SCOPE)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

static int sha256(const void *p, size_t n, uint8_t md[32])
{
    unsigned int len = 0;
    if (EVP_Digest(n ? p : "", n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return EIO;
    return 0;
}

static int hmac(const void *key, size_t klen, const void *msg, size_t n, uint8_t out[32])
{
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), key, (int)klen, n ? msg : "", n, out, &len) == NULL || len != 32)
        return EIO;
    return 0;
}

static void wipe_free(char *p)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, strlen(p));
        free(p);
    }
}

static void buf_wipe_free(struct buf *b)
{
    if (b->data != NULL)
        OPENSSL_cleanse(b->data, b->len);
    buf_free(b);
}

/* Moves b's bytes into a new NUL-terminated string. Returns 0 or b's sticky error. */
static int buf_to_str(struct buf *b, char **out)
{
    buf_put(b, "", 1);
    if (b->err)
        return b->err;
    *out = (char *)buf_steal(b, NULL);
    return 0;
}

/* Leaves a NUL after b's bytes without counting it, so b->data reads as a C string. */
static int buf_terminate(struct buf *b)
{
    if (buf_put(b, "", 1) == 0)
        b->len--;
    return b->err;
}

int sigv4_amz_date(time_t t, char out[SIGV4_DATE_LEN + 1])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 1970 || tm.tm_year + 1900 > 9999)
        return EINVAL;
    if (strftime(out, SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != SIGV4_DATE_LEN)
        return EINVAL;
    return 0;
}

/* RFC 3986 5.2.4 dot-segment removal that also drops empty segments ("//"), as the generic
 * services expect. The input is a wire path starting with '/'. */
static int normalize_path(struct buf *out, const char *p, size_t n)
{
    bool trailing = n > 0 && p[n - 1] == '/';
    for (size_t i = 0; i < n;) {
        while (i < n && p[i] == '/')
            i++;
        size_t start = i;
        while (i < n && p[i] != '/')
            i++;
        size_t len = i - start;
        const char *seg = p + start;
        if (len == 0)
            continue;
        bool last = i >= n;
        if (len == 1 && seg[0] == '.') {
            trailing |= last;
        } else if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            while (out->len > 0 && out->data[out->len - 1] != '/')
                out->len--;
            if (out->len > 0)
                out->len--; /* the '/' before the dropped segment */
            trailing |= last;
        } else {
            buf_put(out, "/", 1);
            buf_put(out, seg, len);
        }
    }
    if (out->len == 0 || trailing)
        buf_put(out, "/", 1);
    return out->err;
}

int sigv4_canonical_uri(struct buf *b, const char *path, bool path_is_raw,
                        const struct sigv4_options *opt)
{
    struct buf wire, norm;
    const struct buf *cur = &wire;
    int rc;
    buf_init(&wire, MAX_TEXT);
    buf_init(&norm, MAX_TEXT);
    if (path == NULL || path[0] == '\0')
        path = "/";
    if (path[0] != '/' || (!path_is_raw && has_ctl(path, false))) {
        rc = EINVAL;
        goto out;
    }
    rc = path_is_raw ? uri_encode(&wire, path, strlen(path), true)
                     : buf_put(&wire, path, strlen(path));
    if (rc)
        goto out;
    if (opt->normalize_path) {
        rc = normalize_path(&norm, (const char *)wire.data, wire.len);
        if (rc)
            goto out;
        cur = &norm;
    }
    rc = opt->double_encode_path ? uri_encode(b, (const char *)cur->data, cur->len, true)
                                 : buf_put(b, cur->data, cur->len);
out:
    buf_free(&wire);
    buf_free(&norm);
    return rc;
}

struct qent {
    size_t k, v; /* offsets of the encoded name and value, NUL-terminated */
    const char *base;
};

static int qent_cmp(const void *a, const void *b)
{
    const struct qent *x = a, *y = b;
    int c = strcmp(x->base + x->k, y->base + y->k);
    return c ? c : strcmp(x->base + x->v, y->base + y->v);
}

/* The canonical query of two lists taken as one. */
static int canon_query(struct buf *b, const struct sigv4_pair *q1, size_t n1,
                       const struct sigv4_pair *q2, size_t n2)
{
    struct buf enc;
    struct qent *e = NULL;
    size_t n = n1 + n2;
    int rc = 0;
    buf_init(&enc, MAX_TEXT);
    if (n == 0)
        goto out;
    if (n > MAX_ITEMS || (n1 && q1 == NULL) || (n2 && q2 == NULL)) {
        rc = EINVAL;
        goto out;
    }
    e = calloc(n, sizeof(*e));
    if (e == NULL) {
        rc = ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct sigv4_pair *p = i < n1 ? &q1[i] : &q2[i - n1];
        const char *v = p->value ? p->value : "";
        if (p->name == NULL) {
            rc = EINVAL;
            goto out;
        }
        e[i].k = enc.len;
        uri_encode(&enc, p->name, strlen(p->name), false);
        buf_put(&enc, "", 1);
        e[i].v = enc.len;
        uri_encode(&enc, v, strlen(v), false);
        buf_put(&enc, "", 1);
    }
    if ((rc = enc.err) != 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        e[i].base = (const char *)enc.data;
    qsort(e, n, sizeof(*e), qent_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_put(b, "&", 1);
        buf_put(b, enc.data + e[i].k, strlen((const char *)enc.data + e[i].k));
        buf_put(b, "=", 1);
        buf_put(b, enc.data + e[i].v, strlen((const char *)enc.data + e[i].v));
    }
    rc = b->err;
out:
    free(e);
    buf_wipe_free(&enc);
    return rc;
}

int sigv4_canonical_query(struct buf *b, const struct sigv4_pair *q, size_t n)
{
    return canon_query(b, q, n, NULL, 0);
}

struct hent {
    const char *name, *value;
    size_t idx; /* keeps repeated names in the order given */
};

static int hent_cmp(const void *a, const void *b)
{
    const struct hent *x = a, *y = b;
    int c = lower_cmp(x->name, y->name);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Appends v trimmed, with each run of spaces and tabs made one space. */
static void put_value(struct buf *b, const char *v)
{
    bool space = false, any = false;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = any;
            continue;
        }
        if (space)
            buf_put(b, " ", 1);
        buf_put(b, v, 1);
        space = false;
        any = true;
    }
}

static void put_lower(struct buf *b, const char *s)
{
    for (; *s; s++) {
        char c = lower(*s);
        buf_put(b, &c, 1);
    }
}

/* Canonical header lines ("name:v1,v2\n" sorted by name) into lines and the SignedHeaders
 * list into names, from two lists taken as one. */
static int canon_headers(const struct sigv4_pair *h1, size_t n1, const struct sigv4_pair *h2,
                         size_t n2, struct buf *lines, struct buf *names, err_t *err)
{
    size_t n = n1 + n2;
    struct hent *e = NULL;
    bool host = false;
    int rc = 0;
    if (n > MAX_ITEMS || (n1 && h1 == NULL) || (n2 && h2 == NULL)) {
        rc = err_set(err, EINVAL, "signing: too many headers or no header list");
        goto out;
    }
    e = calloc(n ? n : 1, sizeof(*e));
    if (e == NULL) {
        rc = err_set(err, ENOMEM, "signing: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct sigv4_pair *p = i < n1 ? &h1[i] : &h2[i - n1];
        e[i].name = p->name;
        e[i].value = p->value ? p->value : "";
        e[i].idx = i;
        if (!is_token(p->name)) {
            rc = err_set(err, EINVAL, "signing: header #%zu has an invalid name", i + 1);
            goto out;
        }
        /* a CR or LF here would let a value smuggle in a header of its own */
        if (has_ctl(e[i].value, true)) {
            rc = err_set(err, EINVAL, "signing: header %.64s holds a control byte", p->name);
            goto out;
        }
        host |= lower_cmp(p->name, "host") == 0;
    }
    if (!host) {
        rc = err_set(err, EINVAL, "signing: the request has no Host header");
        goto out;
    }
    qsort(e, n, sizeof(*e), hent_cmp);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        put_lower(lines, e[i].name);
        buf_put(lines, ":", 1);
        for (; j < n && lower_cmp(e[j].name, e[i].name) == 0; j++) {
            if (j > i)
                buf_put(lines, ",", 1);
            put_value(lines, e[j].value);
        }
        buf_put(lines, "\n", 1);
        if (names->len > 0)
            buf_put(names, ";", 1);
        put_lower(names, e[i].name);
        i = j;
    }
    buf_terminate(names);
    if ((rc = lines->err ? lines->err : names->err) != 0)
        err_set(err, rc, "signing: the canonical headers are too large");
out:
    free(e);
    return rc;
}

/* method \n uri \n query \n header lines \n signed headers \n payload hash */
static int assemble(const char *method, const struct buf *uri, const struct buf *query,
                    const struct buf *lines, const struct buf *names, const char *payload_hash,
                    char **out, err_t *err)
{
    struct buf b;
    int rc;
    buf_init(&b, MAX_TEXT);
    buf_printf(&b, "%s\n", method);
    buf_put(&b, uri->data, uri->len);
    buf_put(&b, "\n", 1);
    buf_put(&b, query->data, query->len);
    buf_put(&b, "\n", 1);
    buf_put(&b, lines->data, lines->len);
    buf_put(&b, "\n", 1);
    buf_put(&b, names->data, names->len);
    buf_printf(&b, "\n%s", payload_hash);
    rc = buf_to_str(&b, out);
    if (rc)
        err_set(err, rc, "signing: the canonical request is too large");
    buf_wipe_free(&b);
    return rc;
}

static bool valid_payload_hash(const char *h)
{
    size_t n = strlen(h), hex = 0, lit = 0;
    for (const char *p = h; *p; p++) {
        hex += (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f');
        lit += (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-';
    }
    /* the literals all name a payload: UNSIGNED-PAYLOAD, STREAMING-...-PAYLOAD[-TRAILER] */
    return (n == SIGV4_HEX_LEN && hex == n) ||
           (n <= SIGV4_HEX_LEN && lit == n && strstr(h, "PAYLOAD") != NULL);
}

/* The payload hash req asks for, into out. */
static int payload_hash(const struct sigv4_request *req, char out[SIGV4_HEX_LEN + 1], err_t *err)
{
    uint8_t md[32];
    if (req->payload_hash != NULL) {
        if (!valid_payload_hash(req->payload_hash))
            return err_set(err, EINVAL, "signing: the payload hash is neither hex nor a literal");
        strcpy(out, req->payload_hash);
        return 0;
    }
    if (req->payload == NULL && req->payload_len > 0)
        return err_set(err, EINVAL, "signing: payload length without a payload");
    if (sha256(req->payload, req->payload_len, md))
        return err_set(err, EIO, "signing: SHA-256 failed");
    util_hex(md, 32, out);
    return 0;
}

static int check_request(const struct sigv4_request *req, err_t *err)
{
    if (!is_token(req->method))
        return err_set(err, EINVAL, "signing: the request method is missing or invalid");
    if ((req->nquery && req->query == NULL) || (req->nheaders && req->headers == NULL))
        return err_set(err, EINVAL, "signing: a count without its list");
    return 0;
}

int sigv4_canonical_request(const struct sigv4_request *req, const struct sigv4_options *opt,
                            char **out, char **signed_headers, err_t *err)
{
    struct buf uri, query, lines, names;
    char hash[SIGV4_HEX_LEN + 1];
    int rc;
    buf_init(&uri, MAX_TEXT);
    buf_init(&query, MAX_TEXT);
    buf_init(&lines, MAX_TEXT);
    buf_init(&names, MAX_TEXT);
    *out = NULL;
    if (signed_headers)
        *signed_headers = NULL;
    if ((rc = check_request(req, err)) != 0 || (rc = payload_hash(req, hash, err)) != 0)
        goto out;
    if ((rc = sigv4_canonical_uri(&uri, req->path, req->path_is_raw, opt)) != 0) {
        err_set(err, rc, "signing: the path is not absolute, holds control bytes or is too long");
        goto out;
    }
    if ((rc = canon_query(&query, req->query, req->nquery, NULL, 0)) != 0) {
        err_set(err, rc, "signing: the query cannot be encoded");
        goto out;
    }
    if ((rc = canon_headers(req->headers, req->nheaders, NULL, 0, &lines, &names, err)) != 0)
        goto out;
    if ((rc = assemble(req->method, &uri, &query, &lines, &names, hash, out, err)) != 0)
        goto out;
    if (signed_headers && (rc = buf_to_str(&names, signed_headers)) != 0) {
        err_set(err, rc, "signing: out of memory");
        free(*out);
        *out = NULL;
    }
out:
    buf_free(&uri);
    buf_wipe_free(&query);
    buf_wipe_free(&lines);
    buf_free(&names);
    return rc;
}

int sigv4_string_to_sign(const char *amz_date, const char *scope, const char *creq, char **out)
{
    uint8_t md[32];
    char hex[SIGV4_HEX_LEN + 1];
    struct buf b;
    int rc;
    buf_init(&b, MAX_TEXT);
    *out = NULL;
    if ((rc = sha256(creq, strlen(creq), md)) != 0)
        goto out;
    util_hex(md, 32, hex);
    buf_printf(&b, "%s\n%s\n%s\n%s", SIGV4_ALGORITHM, amz_date, scope, hex);
    rc = buf_to_str(&b, out);
out:
    buf_free(&b);
    return rc;
}

int sigv4_signing_key(struct sigv4_key_cache *cache, const char *secret, const char *date8,
                      const char *region, const char *service, uint8_t key[32], err_t *err)
{
    uint8_t digest[32], k1[32], k2[32];
    char seed[4 + MAX_SECRET];
    size_t slen = secret ? strlen(secret) : 0;
    int rc = 0;
    if (slen == 0 || slen > MAX_SECRET) {
        rc = err_set(err, EINVAL, "signing: the secret access key is empty or too long");
        goto out;
    }
    if (date8 == NULL || strlen(date8) != 8 || strspn(date8, "0123456789") != 8 ||
        !is_scope_part(region) || !is_scope_part(service)) {
        rc = err_set(err, EINVAL, "signing: bad date, region or service for the scope");
        goto out;
    }
    if (cache != NULL) {
        if ((rc = sha256(secret, slen, digest)) != 0)
            goto crypto;
        if (cache->valid && strcmp(cache->date, date8) == 0 && strcmp(cache->region, region) == 0 &&
            strcmp(cache->service, service) == 0 &&
            CRYPTO_memcmp(cache->secret_digest, digest, 32) == 0) {
            memcpy(key, cache->key, 32);
            goto out;
        }
    }
    memcpy(seed, "AWS4", 4);
    memcpy(seed + 4, secret, slen);
    if ((rc = hmac(seed, 4 + slen, date8, 8, k1)) != 0 ||
        (rc = hmac(k1, 32, region, strlen(region), k2)) != 0 ||
        (rc = hmac(k2, 32, service, strlen(service), k1)) != 0 ||
        (rc = hmac(k1, 32, "aws4_request", 12, k2)) != 0)
        goto crypto;
    memcpy(key, k2, 32);
    if (cache != NULL) {
        sigv4_key_cache_clear(cache);
        memcpy(cache->date, date8, 9);
        /* is_scope_part caps both at MAX_SCOPE, which fits */
        strcpy(cache->region, region);
        strcpy(cache->service, service);
        memcpy(cache->secret_digest, digest, 32);
        memcpy(cache->key, k2, 32);
        cache->valid = true;
    }
    goto out;
crypto:
    err_set(err, rc, "signing: OpenSSL HMAC/SHA-256 failed");
out:
    OPENSSL_cleanse(seed, sizeof(seed));
    OPENSSL_cleanse(k1, sizeof(k1));
    OPENSSL_cleanse(k2, sizeof(k2));
    OPENSSL_cleanse(digest, sizeof(digest));
    return rc;
}

int sigv4_signature(const uint8_t key[32], const char *sts, char hex[SIGV4_HEX_LEN + 1])
{
    uint8_t mac[32];
    int rc = hmac(key, 32, sts, strlen(sts), mac);
    if (rc == 0)
        util_hex(mac, 32, hex);
    return rc;
}

static int check_signer(const struct sigv4_signer *s, err_t *err)
{
    const char *id = s->creds.access_key_id, *tok = s->creds.session_token;
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > MAX_KEY_ID || strpbrk(id, "/, ;=") != NULL || has_ctl(id, false))
        return err_set(err, EINVAL, "signing: the access key id is empty or malformed");
    if (s->creds.secret_access_key == NULL || s->creds.secret_access_key[0] == '\0')
        return err_set(err, EINVAL, "signing: no secret access key");
    if (tok != NULL && (strlen(tok) > MAX_TOKEN || has_ctl(tok, false)))
        return err_set(err, EINVAL, "signing: the session token is too long or malformed");
    if (!is_scope_part(s->region))
        return err_set(err, EINVAL, "signing: region '%.64s' is not valid",
                       s->region ? s->region : "");
    if (!is_scope_part(s->service))
        return err_set(err, EINVAL, "signing: service '%.64s' is not valid",
                       s->service ? s->service : "");
    return 0;
}

static const char *find_header(const struct sigv4_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name && lower_cmp(req->headers[i].name, name) == 0)
            return req->headers[i].name;
    return NULL;
}

static void put_param(struct buf *b, const char *name, const char *value)
{
    if (b->len > 0)
        buf_put(b, "&", 1);
    uri_encode(b, name, strlen(name), false);
    buf_put(b, "=", 1);
    uri_encode(b, value, strlen(value), false);
}

static int sign_common(const struct sigv4_signer *s, const struct sigv4_request *req, bool presign,
                       unsigned expires, struct sigv4_result *out, err_t *err)
{
    struct buf uri, query, lines, names, aux;
    struct sigv4_pair xh[3], xq[6];
    size_t nxh = 0, nxq = 0;
    char date8[9], scope[8 + 2 * MAX_SCOPE + 20], credential[MAX_KEY_ID + sizeof(scope) + 1];
    char expires_s[24];
    uint8_t key[32];
    const char *token, *dup = NULL;
    bool sign_token;
    int rc;

    memset(out, 0, sizeof(*out));
    buf_init(&uri, MAX_TEXT);
    buf_init(&query, MAX_TEXT);
    buf_init(&lines, MAX_TEXT);
    buf_init(&names, MAX_TEXT);
    buf_init(&aux, MAX_TEXT);
    memset(key, 0, sizeof(key));
    if ((rc = check_signer(s, err)) != 0 || (rc = check_request(req, err)) != 0)
        goto out;
    token = s->creds.session_token && s->creds.session_token[0] ? s->creds.session_token : NULL;
    sign_token = token != NULL && !s->opt.omit_session_token;
    if (sigv4_amz_date(s->now, out->amz_date) != 0) {
        rc = err_set(err, EINVAL, "signing: the clock reads a year outside 1970-9999");
        goto out;
    }
    memcpy(date8, out->amz_date, 8);
    date8[8] = '\0';
    snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date8, s->region, s->service);
    snprintf(credential, sizeof(credential), "%s/%s", s->creds.access_key_id, scope);
    if ((rc = payload_hash(req, out->payload_hash, err)) != 0)
        goto out;
    if ((rc = sigv4_canonical_uri(&uri, req->path, req->path_is_raw, &s->opt)) != 0) {
        err_set(err, rc, "signing: the path is not absolute, holds control bytes or is too long");
        goto out;
    }

    /* the headers (or parameters) signing adds must not come twice */
    if ((dup = find_header(req, "Authorization")) == NULL && !presign) {
        if ((dup = find_header(req, "X-Amz-Date")) == NULL && s->opt.sign_body)
            dup = find_header(req, "x-amz-content-sha256");
        if (dup == NULL && token != NULL)
            dup = find_header(req, "X-Amz-Security-Token");
    }
    if (dup != NULL) {
        rc = err_set(err, EINVAL, "signing: the request already has a %.64s header", dup);
        goto out;
    }
    for (size_t i = 0; presign && i < req->nquery; i++)
        for (size_t j = 0; j < sizeof(auth_params) / sizeof(auth_params[0]); j++)
            if (req->query[i].name && lower_cmp(req->query[i].name, auth_params[j]) == 0) {
                rc = err_set(err, EINVAL, "signing: the query already has %s", auth_params[j]);
                goto out;
            }

    if (!presign) {
        xh[nxh++] = (struct sigv4_pair){"X-Amz-Date", out->amz_date};
        if (s->opt.sign_body)
            xh[nxh++] = (struct sigv4_pair){"x-amz-content-sha256", out->payload_hash};
        if (token != NULL && (out->token_copy = strdup(token)) == NULL) {
            rc = err_set(err, ENOMEM, "signing: out of memory");
            goto out;
        }
        if (sign_token)
            xh[nxh++] = (struct sigv4_pair){"X-Amz-Security-Token", out->token_copy};
        if ((rc = canon_headers(req->headers, req->nheaders, xh, nxh, &lines, &names, err)) != 0)
            goto out;
        rc = canon_query(&query, req->query, req->nquery, NULL, 0);
    } else {
        if (expires < 1 || expires > SIGV4_MAX_EXPIRES) {
            rc = err_set(err, EINVAL, "signing: a presigned URL lives 1 to %d seconds, not %u",
                         SIGV4_MAX_EXPIRES, expires);
            goto out;
        }
        snprintf(expires_s, sizeof(expires_s), "%u", expires);
        if ((rc = canon_headers(req->headers, req->nheaders, NULL, 0, &lines, &names, err)) != 0)
            goto out;
        xq[nxq++] = (struct sigv4_pair){"X-Amz-Algorithm", SIGV4_ALGORITHM};
        xq[nxq++] = (struct sigv4_pair){"X-Amz-Credential", credential};
        xq[nxq++] = (struct sigv4_pair){"X-Amz-Date", out->amz_date};
        xq[nxq++] = (struct sigv4_pair){"X-Amz-Expires", expires_s};
        xq[nxq++] = (struct sigv4_pair){"X-Amz-SignedHeaders", (const char *)names.data};
        if (sign_token)
            xq[nxq++] = (struct sigv4_pair){"X-Amz-Security-Token", token};
        rc = canon_query(&query, req->query, req->nquery, xq, nxq);
    }
    if (rc != 0) {
        err_set(err, rc, "signing: the query cannot be encoded");
        goto out;
    }
    if ((rc = assemble(req->method, &uri, &query, &lines, &names, out->payload_hash,
                       &out->canonical_request, err)) != 0)
        goto out;
    if ((out->signed_headers = strdup((const char *)names.data)) == NULL ||
        sigv4_string_to_sign(out->amz_date, scope, out->canonical_request, &out->string_to_sign) !=
            0) {
        rc = err_set(err, ENOMEM, "signing: out of memory");
        goto out;
    }
    if ((rc = sigv4_signing_key(s->cache, s->creds.secret_access_key, date8, s->region, s->service,
                                key, err)) != 0)
        goto out;
    if ((rc = sigv4_signature(key, out->string_to_sign, out->signature)) != 0) {
        err_set(err, rc, "signing: OpenSSL HMAC failed");
        goto out;
    }

    if (!presign) {
        buf_printf(&aux, "%s Credential=%s, SignedHeaders=%s, Signature=%s", SIGV4_ALGORITHM,
                   credential, out->signed_headers, out->signature);
        if ((rc = buf_to_str(&aux, &out->authorization)) != 0) {
            err_set(err, rc, "signing: out of memory");
            goto out;
        }
        for (size_t i = 0; i < nxh; i++)
            out->add[out->nadd++] = xh[i];
        if (token != NULL && !sign_token)
            out->add[out->nadd++] = (struct sigv4_pair){"X-Amz-Security-Token", out->token_copy};
        out->add[out->nadd++] = (struct sigv4_pair){"Authorization", out->authorization};
    } else {
        for (size_t i = 0; i < nxq; i++)
            put_param(&aux, xq[i].name, xq[i].value);
        if (token != NULL && !sign_token)
            put_param(&aux, "X-Amz-Security-Token", token);
        put_param(&aux, "X-Amz-Signature", out->signature);
        if ((rc = buf_to_str(&aux, &out->query)) != 0) {
            err_set(err, rc, "signing: the presigned query is too large");
            goto out;
        }
    }
out:
    OPENSSL_cleanse(key, sizeof(key));
    buf_free(&uri);
    buf_wipe_free(&query);
    buf_wipe_free(&lines);
    buf_free(&names);
    buf_wipe_free(&aux);
    if (rc != 0)
        sigv4_result_free(out);
    return rc;
}

int sigv4_sign_headers(const struct sigv4_signer *s, const struct sigv4_request *req,
                       struct sigv4_result *out, err_t *err)
{
    return sign_common(s, req, false, 0, out, err);
}

int sigv4_presign(const struct sigv4_signer *s, const struct sigv4_request *req, unsigned expires,
                  struct sigv4_result *out, err_t *err)
{
    return sign_common(s, req, true, expires, out, err);
}

void sigv4_result_free(struct sigv4_result *r)
{
    wipe_free(r->canonical_request);
    wipe_free(r->string_to_sign);
    free(r->signed_headers);
    wipe_free(r->authorization);
    wipe_free(r->query);
    wipe_free(r->token_copy);
    memset(r, 0, sizeof(*r));
}

void sigv4_key_cache_clear(struct sigv4_key_cache *c)
{
    OPENSSL_cleanse(c, sizeof(*c));
    c->valid = false;
}
