/* deluge.c — the deluge-web JSON-RPC client: one POST per call with a growing id, the session
 * cookie of auth.login, the web UI connected to its daemon on demand, capped answers. */
#include "s3torrent/deluge.h"
#include "s3torrent/jsondoc.h"
#include "s3torrent/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define COOKIE_NAME    "_session_id"
#define COOKIE_MAX     256
#define ERR_NOT_AUTHED 1 /* deluge-web's error code for a call before auth.login */

struct deluge_client {
    char *url;
    char *password;
    struct http_client *http;
    int64_t id;
    char cookie[COOKIE_MAX + sizeof(COOKIE_NAME) + 1];
};

int deluge_client_new(const struct deluge_config *cfg, struct deluge_client **out, err_t *err)
{
    const char *url = cfg->url && *cfg->url ? cfg->url : DELUGE_DEFAULT_URL;
    const char *pw = cfg->password ? cfg->password : "deluge";
    struct deluge_client *c = NULL;
    int rc = 0;
    *out = NULL;
    if (!http_url_plain(url)) {
        rc = err_set(err, EINVAL,
                     "Deluge: the web UI's JSON-RPC URL must be http:// or "
                     "https://HOST[:PORT]/json, without spaces or user:password@ (the password "
                     "comes from DELUGE_WEB_PASSWORD)");
        goto fail;
    }
    if (strlen(pw) > DELUGE_CRED_MAX) {
        rc = err_set(err, EINVAL, "Deluge: the password is over %d bytes", DELUGE_CRED_MAX);
        goto fail;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL || (c->url = strdup(url)) == NULL ||
        (c->password = strdup(pw)) == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto fail;
    }
    c->http = cfg->http;
    *out = c;
    return 0;
fail:
    deluge_client_free(c);
    return rc;
}

void deluge_client_free(struct deluge_client *c)
{
    if (c == NULL)
        return;
    if (c->password) {
        OPENSSL_cleanse(c->password, strlen(c->password));
        free(c->password);
    }
    OPENSSL_cleanse(c->cookie, sizeof(c->cookie));
    free(c->url);
    free(c);
}

const char *deluge_client_url(const struct deluge_client *c)
{
    return c->url;
}

int deluge_parse_response(const void *body, size_t len, size_t max, int64_t id, json_object **doc,
                          json_object **result, err_t *err)
{
    json_object *d = NULL, *e, *r = NULL, *i, *m;
    int rc;
    *doc = NULL;
    *result = NULL;
    if ((rc = jsondoc_parse("Deluge", body, len, max ? max : DELUGE_RESPONSE_MAX, DELUGE_JSON_DEPTH,
                            &d, err)))
        goto out;
    if (!json_object_object_get_ex(d, "id", &i) || !json_object_is_type(i, json_type_int) ||
        json_object_get_int64(i) != id) {
        rc = err_set(err, EPROTO, "Deluge: the answer's id is not the request's");
        goto out;
    }
    if (json_object_object_get_ex(d, "error", &e) && e != NULL) {
        char text[256] = "";
        if (json_object_is_type(e, json_type_object) &&
            json_object_object_get_ex(e, "message", &m) && json_object_is_type(m, json_type_string))
            util_scrub_copy(text, sizeof(text), json_object_get_string(m),
                            (size_t)json_object_get_string_len(m));
        json_object *code;
        bool authed = !(json_object_is_type(e, json_type_object) &&
                        json_object_object_get_ex(e, "code", &code) &&
                        json_object_is_type(code, json_type_int) &&
                        json_object_get_int(code) == ERR_NOT_AUTHED);
        rc = err_set(err, authed ? EIO : EACCES, "%s",
                     text[0] ? text : "(an error without a message)");
        goto out;
    }
    if (!json_object_object_get_ex(d, "result", &r)) {
        rc = err_set(err, EPROTO, "Deluge: an answer without \"result\"");
        goto out;
    }
    *result = r;
    *doc = d;
    d = NULL;
out:
    json_object_put(d);
    return rc;
}

int deluge_call(struct deluge_client *c, const char *method, json_object *params,
                json_object **result, err_t *err)
{
    json_object *req = json_object_new_object(), *doc = NULL, *r;
    struct http_stream *hs = NULL;
    const char *text = NULL;
    size_t len = 0;
    struct buf body;
    err_t herr = {0};
    int rc = 0;
    buf_init(&body, DELUGE_RESPONSE_MAX);
    if (result)
        *result = NULL;
    if (req == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    int64_t id = ++c->id;
    json_object_object_add(req, "method", json_object_new_string(method));
    json_object_object_add(req, "params",
                           params ? json_object_get(params) : json_object_new_array());
    json_object_object_add(req, "id", json_object_new_int64(id));
    text = json_object_to_json_string_length(
        req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (text == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    struct http_header hh[2] = {{"Content-Type", "application/json"}, {"Cookie", c->cookie}};
    struct http_request hr = {
        .method = "POST",
        .url = c->url,
        .headers = hh,
        .nheaders = c->cookie[0] ? 2 : 1,
        .body = text,
        .body_len = len,
    };
    if ((rc = http_stream_open(c->http, &hr, &hs, &herr))) {
        err_set(err, rc, "Deluge at %s: %s: %s", c->url, method, herr.msg);
        goto out;
    }
    long status = http_stream_status(hs);
    if (status != 200) {
        rc = err_set(err, EIO, "Deluge at %s: %s: HTTP %ld", c->url, method, status);
        goto out;
    }
    if ((rc = http_stream_read_all(hs, &body, &herr))) {
        if (rc == EFBIG)
            err_set(err, rc, "Deluge: %s: answer larger than %u bytes", method,
                    DELUGE_RESPONSE_MAX);
        else
            err_set(err, rc, "Deluge at %s: %s: %s", c->url, method, herr.msg);
        goto out;
    }
    if ((rc = deluge_parse_response(body.data, body.len, 0, id, &doc, &r, &herr))) {
        if (rc == EACCES)
            err_set(err, rc, "Deluge: %s: %s (check DELUGE_WEB_PASSWORD)", method, herr.msg);
        else if (rc == EIO)
            err_set(err, rc, "Deluge: %s: %s", method, herr.msg);
        else
            err_set(err, rc, "%s", herr.msg);
        goto out;
    }
    if (strcmp(method, "auth.login") == 0) {
        char sid[COOKIE_MAX];
        if (http_stream_cookie(hs, COOKIE_NAME, sid, sizeof(sid)) == 0)
            snprintf(c->cookie, sizeof(c->cookie), COOKIE_NAME "=%s", sid);
        OPENSSL_cleanse(sid, sizeof(sid));
    }
    if (result)
        *result = r ? json_object_get(r) : NULL;
out:
    /* the serialised request may hold the password (auth.login): wipe it before it is freed */
    if (text)
        OPENSSL_cleanse((char *)text, len);
    json_object_put(doc);
    json_object_put(req);
    http_stream_close(hs);
    buf_free(&body);
    return rc;
}

/* Connects the web UI to the first daemon of its host list. Returns 0 or an errno. */
static int connect_daemon(struct deluge_client *c, err_t *err)
{
    json_object *hosts = NULL, *h, *hid, *p = NULL;
    int rc;
    if ((rc = deluge_call(c, "web.get_hosts", NULL, &hosts, err)))
        goto out;
    if (!json_object_is_type(hosts, json_type_array) || json_object_array_length(hosts) == 0 ||
        !json_object_is_type((h = json_object_array_get_idx(hosts, 0)), json_type_array) ||
        !json_object_is_type((hid = json_object_array_get_idx(h, 0)), json_type_string)) {
        rc = err_set(err, EHOSTUNREACH,
                     "Deluge: the web UI is connected to no daemon and knows none to connect to "
                     "(add one in its Connection Manager)");
        goto out;
    }
    if ((p = json_object_new_array()) == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    json_object_array_add(p, json_object_get(hid));
    rc = deluge_call(c, "web.connect", p, NULL, err);
out:
    json_object_put(p);
    json_object_put(hosts);
    return rc;
}

int deluge_login(struct deluge_client *c, char *version, size_t len, err_t *err)
{
    json_object *p = json_object_new_array(), *r = NULL;
    int rc;
    c->cookie[0] = '\0';
    if (p == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    json_object_array_add(p, json_object_new_string(c->password));
    rc = deluge_call(c, "auth.login", p, &r, err);
    /* json-c keeps the password in p: wipe it before it is freed */
    json_object *pw = json_object_array_get_idx(p, 0);
    if (pw)
        OPENSSL_cleanse((char *)json_object_get_string(pw), (size_t)json_object_get_string_len(pw));
    if (rc)
        goto out;
    if (!json_object_is_type(r, json_type_boolean) || !json_object_get_boolean(r) ||
        c->cookie[0] == '\0') {
        rc = err_set(err, EACCES,
                     "Deluge: auth.login: the password was refused (check DELUGE_WEB_PASSWORD)");
        goto out;
    }
    json_object_put(r);
    r = NULL;
    for (int attempt = 0;; attempt++) {
        if ((rc = deluge_call(c, "web.connected", NULL, &r, err)))
            goto out;
        bool connected = json_object_is_type(r, json_type_boolean) && json_object_get_boolean(r);
        json_object_put(r);
        r = NULL;
        if (connected)
            break;
        if (attempt > 0) {
            rc = err_set(err, EHOSTUNREACH,
                         "Deluge: web.connect: the web UI could not reach its daemon");
            goto out;
        }
        if ((rc = connect_daemon(c, err)))
            goto out;
    }
    if (version && len) {
        version[0] = '\0';
        err_t verr = {0};
        if (deluge_call(c, "daemon.info", NULL, &r, &verr) == 0 &&
            json_object_is_type(r, json_type_string))
            util_scrub_copy(version, len, json_object_get_string(r),
                            (size_t)json_object_get_string_len(r));
    }
out:
    json_object_put(r);
    json_object_put(p);
    return rc;
}

static bool is_id(const char *s)
{
    if (strlen(s) != 40)
        return false;
    for (size_t i = 0; i < 40; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return false;
    return true;
}

int deluge_find(struct deluge_client *c, const char *id, bool *found, struct deluge_torrent *t,
                err_t *err)
{
    json_object *p = NULL, *keys = NULL, *r = NULL, *v;
    int rc;
    *found = false;
    if (!is_id(id))
        return err_set(err, EINVAL, "Deluge: '%.64s' is not a torrent id (40 hex digits)", id);
    if ((p = json_object_new_array()) == NULL || (keys = json_object_new_array()) == NULL) {
        json_object_put(keys);
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    json_object_array_add(keys, json_object_new_string("name"));
    json_object_array_add(keys, json_object_new_string("save_path"));
    json_object_array_add(p, json_object_new_string(id));
    json_object_array_add(p, keys);
    if ((rc = deluge_call(c, "core.get_torrent_status", p, &r, err)))
        goto out;
    if (!json_object_is_type(r, json_type_object)) {
        rc = err_set(err, EPROTO, "Deluge: core.get_torrent_status: the answer is not an object");
        goto out;
    }
    /* an unknown id gives {} */
    if (!json_object_object_get_ex(r, "name", &v))
        goto out;
    *found = true;
    if (t == NULL)
        goto out;
    memset(t, 0, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", id);
    if (json_object_is_type(v, json_type_string))
        util_scrub_copy(t->name, sizeof(t->name), json_object_get_string(v),
                        (size_t)json_object_get_string_len(v));
    if (json_object_object_get_ex(r, "save_path", &v) && json_object_is_type(v, json_type_string))
        util_scrub_copy(t->save_path, sizeof(t->save_path), json_object_get_string(v),
                        (size_t)json_object_get_string_len(v));
out:
    json_object_put(r);
    json_object_put(p);
    return rc;
}

int deluge_add(struct deluge_client *c, const uint8_t *torrent, size_t len, const char *filename,
               const char *download_location, char id[41], err_t *err)
{
    json_object *p = NULL, *opts = NULL, *r = NULL;
    char *b64 = NULL;
    int rc;
    id[0] = '\0';
    if (len == 0 || len > INT32_MAX / 2)
        return err_set(err, EINVAL, "Deluge: core.add_torrent_file: a torrent of %zu bytes", len);
    if ((b64 = malloc(4 * ((len + 2) / 3) + 1)) == NULL || (p = json_object_new_array()) == NULL ||
        (opts = json_object_new_object()) == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    int n = EVP_EncodeBlock((unsigned char *)b64, torrent, (int)len);
    json_object_object_add(opts, "download_location", json_object_new_string(download_location));
    json_object_object_add(opts, "seed_mode", json_object_new_boolean(1));
    json_object_object_add(opts, "add_paused", json_object_new_boolean(0));
    json_object_array_add(p, json_object_new_string(filename));
    json_object_array_add(p, json_object_new_string_len(b64, n));
    json_object_array_add(p, opts);
    opts = NULL;
    if ((rc = deluge_call(c, "core.add_torrent_file", p, &r, err)))
        goto out;
    if (!json_object_is_type(r, json_type_string) || !is_id(json_object_get_string(r))) {
        rc = err_set(err, EPROTO,
                     "Deluge: core.add_torrent_file: the answer is not a torrent id (the daemon "
                     "did not add it)");
        goto out;
    }
    memcpy(id, json_object_get_string(r), 41);
out:
    json_object_put(r);
    json_object_put(opts);
    json_object_put(p);
    free(b64);
    return rc;
}
