/* trpc.c — the Transmission RPC client: one JSON POST per call, the CSRF session-id handshake
 * (409 answers carry the id to resend), Basic auth kept out of every message, capped answers. */
#include "s3torrent/trpc.h"
#include "s3torrent/jsondoc.h"
#include "s3torrent/util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define SESSION_HEADER "X-Transmission-Session-Id"
#define SESSION_MAX    256 /* bytes of a session id we accept */
#define MAX_ATTEMPTS   3   /* one 409 to learn the id, one more if the daemon restarted */

struct trpc_client {
    char *url;
    char *auth; /* "Basic <base64>" or NULL; wiped on free */
    struct http_client *http;
    size_t max;
    pthread_mutex_t lock; /* guards session and tag */
    char session[SESSION_MAX];
    int64_t tag;
};

/* Makes "Basic base64(user:password)" into *out. Returns 0, EINVAL or ENOMEM with err set. */
static int make_auth(const char *user, const char *pass, char **out, err_t *err)
{
    size_t ul = strlen(user), pl = strlen(pass);
    char *plain = NULL, *enc = NULL;
    int rc = 0;
    *out = NULL;
    if (ul > TRPC_CRED_MAX || pl > TRPC_CRED_MAX) {
        rc = err_set(err, EINVAL, "Transmission: the RPC user name or password is over %d bytes",
                     TRPC_CRED_MAX);
        goto out;
    }
    if (strchr(user, ':') != NULL) {
        rc = err_set(err, EINVAL, "Transmission: an RPC user name cannot hold ':'");
        goto out;
    }
    size_t n = ul + 1 + pl, enc_len = 4 * ((n + 2) / 3) + 1;
    plain = malloc(n + 1);
    enc = malloc(6 + enc_len);
    if (plain == NULL || enc == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    memcpy(plain, user, ul);
    plain[ul] = ':';
    memcpy(plain + ul + 1, pass, pl);
    memcpy(enc, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)enc + 6, (const unsigned char *)plain, (int)n);
    *out = enc;
    enc = NULL;
out:
    if (plain) {
        OPENSSL_cleanse(plain, n + 1);
        free(plain);
    }
    free(enc);
    return rc;
}

int trpc_client_new(const struct trpc_config *cfg, struct trpc_client **out, err_t *err)
{
    struct trpc_client *c = NULL;
    const char *url = cfg->url && *cfg->url ? cfg->url : TRPC_DEFAULT_URL;
    int rc = 0;
    *out = NULL;
    if (!http_url_plain(url)) {
        /* the URL may carry a password: never echo it */
        rc = err_set(err, EINVAL,
                     "Transmission: the RPC URL must be http:// or https://HOST[:PORT]/PATH, "
                     "without spaces or user:password@ (credentials come from "
                     "TRANSMISSION_RPC_USERNAME and TRANSMISSION_RPC_PASSWORD)");
        goto fail;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL || (c->url = strdup(url)) == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto fail;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->http = cfg->http;
    c->max = cfg->max_response ? cfg->max_response : TRPC_RESPONSE_MAX;
    if (cfg->username &&
        (rc = make_auth(cfg->username, cfg->password ? cfg->password : "", &c->auth, err)))
        goto fail;
    *out = c;
    return 0;
fail:
    trpc_client_free(c);
    return rc;
}

void trpc_client_free(struct trpc_client *c)
{
    if (c == NULL)
        return;
    if (c->url)
        pthread_mutex_destroy(&c->lock);
    if (c->auth) {
        OPENSSL_cleanse(c->auth, strlen(c->auth));
        free(c->auth);
    }
    free(c->url);
    free(c);
}

const char *trpc_client_url(const struct trpc_client *c)
{
    return c->url;
}

/* ---- parsing ---- */

int trpc_parse_response(const void *body, size_t len, size_t max, json_object **doc,
                        const char **result, json_object **arguments, err_t *err)
{
    json_object *d = NULL, *r, *a = NULL;
    int rc = 0;
    *doc = NULL;
    *result = NULL;
    *arguments = NULL;
    if (max == 0)
        max = TRPC_RESPONSE_MAX;
    if ((rc = jsondoc_parse("Transmission", body, len, max, TRPC_JSON_DEPTH, &d, err)))
        goto out;
    if (!json_object_object_get_ex(d, "result", &r) || !json_object_is_type(r, json_type_string)) {
        rc = err_set(err, EPROTO, "answer has no \"result\" string");
        goto out;
    }
    if (json_object_object_get_ex(d, "arguments", &a) &&
        !json_object_is_type(a, json_type_object)) {
        rc = err_set(err, EPROTO, "answer's \"arguments\" is not an object");
        goto out;
    }
    *result = json_object_get_string(r);
    *arguments = a;
    *doc = d;
    d = NULL;
out:
    json_object_put(d);
    return rc;
}

static bool is_hash(const char *s, size_t n)
{
    if (n != 40)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

int trpc_torrent_from_json(json_object *o, struct trpc_torrent *t, err_t *err)
{
    json_object *h, *id, *v;
    memset(t, 0, sizeof(*t));
    if (!json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, "hashString", &h) ||
        !json_object_is_type(h, json_type_string) ||
        !is_hash(json_object_get_string(h), (size_t)json_object_get_string_len(h)))
        return err_set(err, EPROTO, "torrent without a 40-hex-digit \"hashString\"");
    if (!json_object_object_get_ex(o, "id", &id) || !json_object_is_type(id, json_type_int))
        return err_set(err, EPROTO, "torrent without an integer \"id\"");
    const char *hs = json_object_get_string(h);
    for (size_t i = 0; i < 40; i++)
        t->hash[i] = (char)tolower((unsigned char)hs[i]);
    t->id = json_object_get_int64(id);
    if (json_object_object_get_ex(o, "name", &v) && json_object_is_type(v, json_type_string))
        util_scrub_copy(t->name, sizeof(t->name), json_object_get_string(v),
                        (size_t)json_object_get_string_len(v));
    if (json_object_object_get_ex(o, "downloadDir", &v) && json_object_is_type(v, json_type_string))
        util_scrub_copy(t->download_dir, sizeof(t->download_dir), json_object_get_string(v),
                        (size_t)json_object_get_string_len(v));
    return 0;
}

/* ---- calls ---- */

/* Remembers the session id of a 409 answer. Returns 0, or EPROTO when it has none we can use. */
static int take_session(struct trpc_client *c, struct http_stream *hs, const char *method,
                        err_t *err)
{
    const char *id = http_stream_header(hs, SESSION_HEADER);
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= SESSION_MAX)
        return err_set(err, EPROTO, "Transmission: %s: HTTP 409 without a usable %s header", method,
                       SESSION_HEADER);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] <= 0x20 || id[i] == 0x7f)
            return err_set(err, EPROTO, "Transmission: %s: HTTP 409 with a malformed %s header",
                           method, SESSION_HEADER);
    pthread_mutex_lock(&c->lock);
    memcpy(c->session, id, n + 1);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* Reads a 200 answer's body and checks it. Returns 0 with *args (unless args is NULL) holding a
 * reference to the answer's arguments, or an errno with err set. */
static int take_answer(struct trpc_client *c, struct http_stream *hs, const char *method,
                       int64_t tag, json_object **args, err_t *err)
{
    struct buf body;
    json_object *doc = NULL, *a, *t;
    const char *result;
    err_t perr = {0};
    int rc;
    buf_init(&body, c->max);
    const char *cl = http_stream_header(hs, "content-length");
    if (cl && strtoull(cl, NULL, 10) > c->max) {
        rc = err_set(err, EFBIG, "Transmission: %s: answer larger than %zu bytes", method, c->max);
        goto out;
    }
    if ((rc = http_stream_read_all(hs, &body, &perr))) {
        if (rc == EFBIG)
            err_set(err, rc, "Transmission: %s: answer larger than %zu bytes", method, c->max);
        else
            err_set(err, rc, "Transmission at %s: %s: %s", c->url, method, perr.msg);
        goto out;
    }
    if ((rc = trpc_parse_response(body.data, body.len, c->max, &doc, &result, &a, &perr))) {
        err_set(err, rc, "Transmission: %s: %s", method, perr.msg);
        goto out;
    }
    if (json_object_object_get_ex(doc, "tag", &t) &&
        (!json_object_is_type(t, json_type_int) || json_object_get_int64(t) != tag)) {
        rc =
            err_set(err, EPROTO, "Transmission: %s: the answer's tag is not the request's", method);
        goto out;
    }
    /* 3.00 says "success" with torrent-duplicate; older daemons said "duplicate torrent" */
    bool dup = strcmp(method, "torrent-add") == 0 && a &&
               json_object_object_get_ex(a, "torrent-duplicate", NULL);
    if (strcmp(result, "success") != 0 && !dup) {
        char text[256];
        util_scrub_copy(text, sizeof(text), result, strlen(result));
        rc = err_set(err, EIO, "Transmission: %s: %s", method, text[0] ? text : "(empty result)");
        goto out;
    }
    if (args == NULL)
        goto out;
    *args = a ? json_object_get(a) : json_object_new_object();
    if (*args == NULL)
        rc = err_set(err, ENOMEM, "out of memory");
out:
    json_object_put(doc);
    buf_free(&body);
    return rc;
}

int trpc_call(struct trpc_client *c, const char *method, json_object *arguments, json_object **args,
              err_t *err)
{
    json_object *req = json_object_new_object();
    struct http_stream *hs = NULL;
    char session[SESSION_MAX];
    int rc = 0;
    if (args)
        *args = NULL;
    if (req == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    pthread_mutex_lock(&c->lock);
    int64_t tag = ++c->tag;
    pthread_mutex_unlock(&c->lock);
    json_object_object_add(req, "method", json_object_new_string(method));
    json_object_object_add(req, "arguments",
                           arguments ? json_object_get(arguments) : json_object_new_object());
    json_object_object_add(req, "tag", json_object_new_int64(tag));
    size_t len;
    const char *body = json_object_to_json_string_length(
        req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (body == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    for (unsigned attempt = 1;; attempt++) {
        struct http_header hh[3];
        size_t nh = 0;
        hh[nh++] = (struct http_header){"Content-Type", "application/json"};
        if (c->auth)
            hh[nh++] = (struct http_header){"Authorization", c->auth};
        pthread_mutex_lock(&c->lock);
        memcpy(session, c->session, sizeof(session));
        pthread_mutex_unlock(&c->lock);
        if (session[0])
            hh[nh++] = (struct http_header){SESSION_HEADER, session};
        struct http_request hr = {
            .method = "POST",
            .url = c->url,
            .headers = hh,
            .nheaders = nh,
            .body = body,
            .body_len = len,
        };
        err_t herr = {0};
        if ((rc = http_stream_open(c->http, &hr, &hs, &herr))) {
            err_set(err, rc, "Transmission at %s: %s: %s", c->url, method, herr.msg);
            goto out;
        }
        long status = http_stream_status(hs);
        if (status == 409 && attempt < MAX_ATTEMPTS) {
            if ((rc = take_session(c, hs, method, err)))
                goto out;
            http_stream_close(hs);
            hs = NULL;
            continue;
        }
        if (status == 200) {
            rc = take_answer(c, hs, method, tag, args, err);
        } else if (status == 401) {
            rc = err_set(err, EACCES,
                         "Transmission: %s: HTTP 401 Unauthorized (%s; check "
                         "TRANSMISSION_RPC_USERNAME and TRANSMISSION_RPC_PASSWORD)",
                         method,
                         c->auth ? "the user name or password was refused"
                                 : "the daemon wants a user name and password");
        } else if (status == 403) {
            rc = err_set(err, EACCES,
                         "Transmission: %s: HTTP 403 Forbidden (is this address in the daemon's "
                         "rpc-whitelist?)",
                         method);
        } else if (status == 409) {
            rc = err_set(err, EPROTO, "Transmission: %s: HTTP 409 after %u session-id handshakes",
                         method, attempt - 1);
        } else {
            rc = err_set(err, EIO, "Transmission at %s: %s: HTTP %ld", c->url, method, status);
        }
        goto out;
    }
out:
    http_stream_close(hs);
    json_object_put(req);
    return rc;
}

int trpc_ping(struct trpc_client *c, char *version, size_t len, err_t *err)
{
    json_object *a = json_object_new_object(), *f = json_object_new_array(), *ans = NULL, *v;
    int rc;
    if (a == NULL || f == NULL) {
        json_object_put(f);
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    json_object_array_add(f, json_object_new_string("version"));
    json_object_array_add(f, json_object_new_string("rpc-version"));
    json_object_object_add(a, "fields", f);
    if ((rc = trpc_call(c, "session-get", a, &ans, err)))
        goto out;
    if (version && len) {
        version[0] = '\0';
        if (json_object_object_get_ex(ans, "version", &v) &&
            json_object_is_type(v, json_type_string))
            util_scrub_copy(version, len, json_object_get_string(v),
                            (size_t)json_object_get_string_len(v));
    }
out:
    json_object_put(ans);
    json_object_put(a);
    return rc;
}

int trpc_find(struct trpc_client *c, const char *info_hash_hex, bool *found, struct trpc_torrent *t,
              err_t *err)
{
    static const char *const fields[] = {"hashString", "id", "name", "downloadDir"};
    json_object *a = json_object_new_object(), *f = json_object_new_array(),
                *ids = json_object_new_array(), *ans = NULL, *list;
    struct trpc_torrent tmp;
    char want[41];
    int rc = 0;
    *found = false;
    if (a == NULL || f == NULL || ids == NULL) {
        json_object_put(f);
        json_object_put(ids);
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    json_object_object_add(a, "fields", f);
    json_object_object_add(a, "ids", ids);
    if (!is_hash(info_hash_hex, strlen(info_hash_hex))) {
        rc = err_set(err, EINVAL, "Transmission: '%.64s' is not a v1 info-hash (40 hex digits)",
                     info_hash_hex);
        goto out;
    }
    for (size_t i = 0; i < 40; i++)
        want[i] = (char)tolower((unsigned char)info_hash_hex[i]);
    want[40] = '\0';
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        json_object_array_add(f, json_object_new_string(fields[i]));
    json_object_array_add(ids, json_object_new_string(want));
    if ((rc = trpc_call(c, "torrent-get", a, &ans, err)))
        goto out;
    if (!json_object_object_get_ex(ans, "torrents", &list) ||
        !json_object_is_type(list, json_type_array)) {
        rc = err_set(err, EPROTO, "Transmission: torrent-get: answer without a \"torrents\" list");
        goto out;
    }
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        err_t terr = {0};
        if ((rc = trpc_torrent_from_json(json_object_array_get_idx(list, i), &tmp, &terr))) {
            err_set(err, rc, "Transmission: torrent-get: %s", terr.msg);
            goto out;
        }
        if (strcmp(tmp.hash, want) == 0) {
            *found = true;
            if (t)
                *t = tmp;
            break;
        }
    }
out:
    json_object_put(ans);
    json_object_put(a);
    return rc;
}

int trpc_add(struct trpc_client *c, const uint8_t *torrent, size_t len, const char *download_dir,
             struct trpc_add_result *res, err_t *err)
{
    json_object *a = NULL, *ans = NULL, *o;
    char *b64 = NULL;
    int rc = 0;
    memset(res, 0, sizeof(*res));
    if (len == 0 || len > INT32_MAX / 2) {
        rc = err_set(err, EINVAL, "Transmission: torrent-add: a torrent of %zu bytes", len);
        goto out;
    }
    if ((b64 = malloc(4 * ((len + 2) / 3) + 1)) == NULL || (a = json_object_new_object()) == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    int n = EVP_EncodeBlock((unsigned char *)b64, torrent, (int)len);
    json_object_object_add(a, "metainfo", json_object_new_string_len(b64, n));
    if (download_dir)
        json_object_object_add(a, "download-dir", json_object_new_string(download_dir));
    json_object_object_add(a, "paused", json_object_new_boolean(0));
    if ((rc = trpc_call(c, "torrent-add", a, &ans, err)))
        goto out;
    if (json_object_object_get_ex(ans, "torrent-duplicate", &o))
        res->duplicate = true;
    else if (!json_object_object_get_ex(ans, "torrent-added", &o)) {
        rc = err_set(err, EPROTO,
                     "Transmission: torrent-add: answer names neither torrent-added nor "
                     "torrent-duplicate");
        goto out;
    }
    err_t terr = {0};
    if ((rc = trpc_torrent_from_json(o, &res->torrent, &terr)))
        err_set(err, rc, "Transmission: torrent-add: %s", terr.msg);
out:
    json_object_put(ans);
    json_object_put(a);
    free(b64);
    return rc;
}
