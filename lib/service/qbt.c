/* qbt.c — the qBittorrent Web API v2 client: a form login whose SID cookie goes with every later
 * call, torrents/info and a multipart torrents/add; the password never leaves the login body. */
#include "s3torrent/qbt.h"
#include "s3torrent/jsondoc.h"
#include "s3torrent/uri.h"
#include "s3torrent/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#define SID_MAX 256 /* bytes of a session cookie we accept */

struct qbt_client {
    char *url; /* without a trailing '/' */
    char *username, *password;
    struct http_client *http;
    char cookie[SID_MAX + 8]; /* "SID=..." once logged in */
};

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

int qbt_client_new(const struct qbt_config *cfg, struct qbt_client **out, err_t *err)
{
    const char *url = cfg->url && *cfg->url ? cfg->url : QBT_DEFAULT_URL;
    struct qbt_client *c = NULL;
    int rc = 0;
    *out = NULL;
    if (!http_url_plain(url)) {
        rc = err_set(err, EINVAL,
                     "qBittorrent: the Web UI URL must be http:// or https://HOST[:PORT][/PATH], "
                     "without spaces or user:password@ (credentials come from "
                     "QBITTORRENT_USERNAME and QBITTORRENT_PASSWORD)");
        goto fail;
    }
    if (cfg->username && (strlen(cfg->username) > QBT_CRED_MAX ||
                          (cfg->password && strlen(cfg->password) > QBT_CRED_MAX))) {
        rc = err_set(err, EINVAL, "qBittorrent: the user name or password is over %d bytes",
                     QBT_CRED_MAX);
        goto fail;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL || (c->url = strdup(url)) == NULL ||
        (cfg->username && ((c->username = strdup(cfg->username)) == NULL ||
                           (c->password = strdup(cfg->password ? cfg->password : "")) == NULL))) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto fail;
    }
    size_t n = strlen(c->url);
    while (n > 0 && c->url[n - 1] == '/')
        c->url[--n] = '\0';
    c->http = cfg->http;
    *out = c;
    return 0;
fail:
    qbt_client_free(c);
    return rc;
}

void qbt_client_free(struct qbt_client *c)
{
    if (c == NULL)
        return;
    wipe_free(c->username);
    wipe_free(c->password);
    OPENSSL_cleanse(c->cookie, sizeof(c->cookie));
    free(c->url);
    free(c);
}

const char *qbt_client_url(const struct qbt_client *c)
{
    return c->url;
}

/* One exchange with api (after /api/v2/): a GET when neither form nor parts, else a POST of the
 * form (urlencoded) or the parts. Returns 0 with body holding a 200 answer, or an errno with err
 * set. A login (set_cookie) keeps the SID cookie the answer sets. */
static int exchange(struct qbt_client *c, const char *api, const char *query, const char *form,
                    const struct http_part *parts, size_t nparts, bool set_cookie, struct buf *body,
                    err_t *err)
{
    struct buf url;
    struct http_stream *hs = NULL;
    struct http_header hh[2];
    size_t nh = 0;
    err_t herr = {0};
    int rc;
    buf_init(&url, 1u << 16);
    buf_printf(&url, "%s/api/v2/%s%s%s", c->url, api, query ? "?" : "", query ? query : "");
    buf_put(&url, "", 1);
    if (url.err) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    if (c->cookie[0])
        hh[nh++] = (struct http_header){"Cookie", c->cookie};
    if (form)
        hh[nh++] = (struct http_header){"Content-Type", "application/x-www-form-urlencoded"};
    struct http_request hr = {
        .method = form || nparts ? "POST" : "GET",
        .url = (const char *)url.data,
        .headers = hh,
        .nheaders = nh,
        .body = form,
        .body_len = form ? strlen(form) : 0,
        .parts = parts,
        .nparts = nparts,
    };
    if ((rc = http_stream_open(c->http, &hr, &hs, &herr))) {
        err_set(err, rc, "qBittorrent at %s: %s: %s", c->url, api, herr.msg);
        goto out;
    }
    long status = http_stream_status(hs);
    if (status == 401 || status == 403) {
        rc = err_set(err, EACCES,
                     "qBittorrent: %s: HTTP %ld (%s; check QBITTORRENT_USERNAME and "
                     "QBITTORRENT_PASSWORD)",
                     api, status,
                     status == 403 && set_cookie
                         ? "banned for too many failed logins"
                         : (c->username ? "the login was refused"
                                        : "the Web UI wants a user name and password"));
        goto out;
    }
    if (status == 415) {
        rc = err_set(err, EINVAL, "qBittorrent: %s: the torrent is not valid (HTTP 415)", api);
        goto out;
    }
    if (status != 200) {
        rc = err_set(err, EIO, "qBittorrent at %s: %s: HTTP %ld", c->url, api, status);
        goto out;
    }
    if ((rc = http_stream_read_all(hs, body, &herr))) {
        if (rc == EFBIG)
            err_set(err, rc, "qBittorrent: %s: answer larger than %zu bytes", api, body->max);
        else
            err_set(err, rc, "qBittorrent at %s: %s: %s", c->url, api, herr.msg);
        goto out;
    }
    if (set_cookie) {
        char sid[SID_MAX];
        if (http_stream_cookie(hs, "SID", sid, sizeof(sid)) == 0)
            snprintf(c->cookie, sizeof(c->cookie), "SID=%s", sid);
        OPENSSL_cleanse(sid, sizeof(sid));
    }
out:
    http_stream_close(hs);
    buf_free(&url);
    return rc;
}

/* True when the body is qBittorrent's "Fails." (with or without a newline). */
static bool says(const struct buf *b, const char *word)
{
    size_t n = strlen(word), len = b->len;
    while (len > 0 && (b->data[len - 1] == '\n' || b->data[len - 1] == '\r'))
        len--;
    return len == n && memcmp(b->data, word, n) == 0;
}

int qbt_login(struct qbt_client *c, char *version, size_t len, err_t *err)
{
    struct buf form, body;
    int rc = 0;
    buf_init(&form, 4 * QBT_CRED_MAX + 64);
    buf_init(&body, 4096);
    if (c->username) {
        buf_printf(&form, "username=");
        uri_encode(&form, c->username, strlen(c->username), false);
        buf_printf(&form, "&password=");
        uri_encode(&form, c->password, strlen(c->password), false);
        buf_put(&form, "", 1);
        if (form.err) {
            rc = err_set(err, ENOMEM, "out of memory");
            goto out;
        }
        c->cookie[0] = '\0';
        if ((rc = exchange(c, "auth/login", NULL, (const char *)form.data, NULL, 0, true, &body,
                           err)))
            goto out;
        if (!says(&body, "Ok.") || c->cookie[0] == '\0') {
            rc = err_set(err, EACCES,
                         "qBittorrent: auth/login: the user name or password was refused (check "
                         "QBITTORRENT_USERNAME and QBITTORRENT_PASSWORD)");
            goto out;
        }
    }
    body.len = 0;
    if ((rc = exchange(c, "app/version", NULL, NULL, NULL, 0, false, &body, err)))
        goto out;
    if (version && len)
        util_scrub_copy(version, len, (const char *)body.data, body.len);
out:
    if (form.data)
        OPENSSL_cleanse(form.data, form.len);
    buf_free(&form);
    buf_free(&body);
    return rc;
}

static bool is_hash(const char *s)
{
    if (strlen(s) != 40)
        return false;
    for (size_t i = 0; i < 40; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return false;
    return true;
}

int qbt_parse_info(const void *body, size_t len, size_t max, const char *hash, bool *found,
                   struct qbt_torrent *t, err_t *err)
{
    json_object *doc = NULL, *o, *v;
    int rc;
    *found = false;
    if ((rc = jsondoc_parse_any("qBittorrent: torrents/info", body, len,
                                max ? max : QBT_RESPONSE_MAX, QBT_JSON_DEPTH, &doc, err)))
        goto out;
    if (!json_object_is_type(doc, json_type_array)) {
        rc = err_set(err, EPROTO, "qBittorrent: torrents/info: the answer is not a list");
        goto out;
    }
    for (size_t i = 0; i < json_object_array_length(doc); i++) {
        o = json_object_array_get_idx(doc, i);
        if (!json_object_is_type(o, json_type_object) ||
            !json_object_object_get_ex(o, "hash", &v) ||
            !json_object_is_type(v, json_type_string)) {
            rc = err_set(err, EPROTO, "qBittorrent: torrents/info: a torrent without a \"hash\"");
            goto out;
        }
        if (strcasecmp(json_object_get_string(v), hash) != 0)
            continue;
        *found = true;
        if (t == NULL)
            break;
        memset(t, 0, sizeof(*t));
        snprintf(t->hash, sizeof(t->hash), "%s", hash);
        if (json_object_object_get_ex(o, "name", &v) && json_object_is_type(v, json_type_string))
            util_scrub_copy(t->name, sizeof(t->name), json_object_get_string(v),
                            (size_t)json_object_get_string_len(v));
        if (json_object_object_get_ex(o, "save_path", &v) &&
            json_object_is_type(v, json_type_string))
            util_scrub_copy(t->save_path, sizeof(t->save_path), json_object_get_string(v),
                            (size_t)json_object_get_string_len(v));
        break;
    }
out:
    json_object_put(doc);
    return rc;
}

int qbt_find(struct qbt_client *c, const char *hash, bool *found, struct qbt_torrent *t, err_t *err)
{
    struct buf body;
    char q[64];
    int rc;
    *found = false;
    if (!is_hash(hash))
        return err_set(err, EINVAL, "qBittorrent: '%.64s' is not a torrent id (40 hex digits)",
                       hash);
    buf_init(&body, QBT_RESPONSE_MAX);
    snprintf(q, sizeof(q), "hashes=%s", hash);
    if ((rc = exchange(c, "torrents/info", q, NULL, NULL, 0, false, &body, err)) == 0)
        rc = qbt_parse_info(body.data, body.len, QBT_RESPONSE_MAX, hash, found, t, err);
    buf_free(&body);
    return rc;
}

int qbt_add(struct qbt_client *c, const uint8_t *torrent, size_t len, const struct qbt_add *a,
            err_t *err)
{
    struct http_part parts[7];
    size_t n = 0;
    struct buf body;
    int rc;
    buf_init(&body, 4096);
    parts[n++] = (struct http_part){"torrents", "s3torrent.torrent", "application/x-bittorrent",
                                    torrent, len};
    parts[n++] = (struct http_part){"savepath", NULL, NULL, a->savepath, strlen(a->savepath)};
    parts[n++] = (struct http_part){"skip_checking", NULL, NULL, "true", 4};
    parts[n++] = (struct http_part){"paused", NULL, NULL, "false", 5};
    parts[n++] = (struct http_part){"autoTMM", NULL, NULL, "false", 5};
    if (a->category && *a->category)
        parts[n++] = (struct http_part){"category", NULL, NULL, a->category, strlen(a->category)};
    if (a->tags && *a->tags)
        parts[n++] = (struct http_part){"tags", NULL, NULL, a->tags, strlen(a->tags)};
    if ((rc = exchange(c, "torrents/add", NULL, NULL, parts, n, false, &body, err)))
        goto out;
    if (says(&body, "Fails."))
        rc = err_set(err, EEXIST,
                     "qBittorrent: torrents/add: Fails. (it has this torrent already, or cannot "
                     "read it)");
    else if (!says(&body, "Ok."))
        rc = err_set(err, EPROTO, "qBittorrent: torrents/add: an answer neither Ok. nor Fails.");
out:
    buf_free(&body);
    return rc;
}
