/* qbt.h — a small qBittorrent Web API v2 client: the SID cookie of auth/login, torrents/info
 * to find a torrent, torrents/add (multipart) to hand it one to seed without checking. */
#ifndef S3TORRENT_QBT_H
#define S3TORRENT_QBT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3torrent/err.h"
#include "s3torrent/http.h"

#define QBT_DEFAULT_URL  "http://localhost:8080"
#define QBT_RESPONSE_MAX (16u << 20) /* bytes of one answer held in memory */
#define QBT_JSON_DEPTH   64
#define QBT_CRED_MAX     1024 /* bytes of a user name or password */

struct qbt_config {
    const char *url;      /* the Web UI's base URL; NULL or "": QBT_DEFAULT_URL */
    const char *username; /* NULL: no login (the Web UI lets this address in without one) */
    const char *password; /* NULL: "" */
    struct http_client *http;
};

struct qbt_client;

/* A torrent as qBittorrent names it. Its id is libtorrent's get_best(): a v2 info-hash's first
 * 20 bytes when the torrent has one (hybrids too), else the v1 info-hash. */
struct qbt_torrent {
    char hash[41];  /* the id, lower-case hex */
    char name[256]; /* control bytes replaced by '?' */
    char save_path[4096];
};

/* Returns 0 with *out ready, or EINVAL (bad URL, over-long credentials) / ENOMEM with err set.
 * The password is copied and wiped on free; http is borrowed and must outlive the client. Not
 * thread-safe: one exchange at a time. */
int qbt_client_new(const struct qbt_config *cfg, struct qbt_client **out, err_t *err);
void qbt_client_free(struct qbt_client *c);
const char *qbt_client_url(const struct qbt_client *c);

/* Logs in when a user name was given (keeping the SID cookie), then reads app/version into
 * version (len bytes, e.g. "v4.5.2"). Returns 0, EACCES when the login is refused ("Fails.",
 * 401, 403: banned after too many failures), or an errno with err set to one line that never
 * holds the credentials. */
int qbt_login(struct qbt_client *c, char *version, size_t len, err_t *err);

/* torrents/info for the torrent whose id is hash (40 hex digits). Returns 0 with *found, and
 * *t (may be NULL) filled when found; or an errno with err set. */
int qbt_find(struct qbt_client *c, const char *hash, bool *found, struct qbt_torrent *t,
             err_t *err);

struct qbt_add {
    const char *savepath; /* absolute; the torrent's data is already there */
    const char *category; /* NULL or "": none */
    const char *tags;     /* comma-separated; NULL or "": none */
};

/* torrents/add of torrent (len bytes) with skip_checking, not paused, automatic torrent
 * management off (savepath is where the data is). Returns 0 when qBittorrent answered "Ok.",
 * EEXIST when it answered "Fails." (a torrent it has already, or one it cannot read: the caller
 * tells which with qbt_find), EINVAL for HTTP 415, or an errno with err set. */
int qbt_add(struct qbt_client *c, const uint8_t *torrent, size_t len, const struct qbt_add *a,
            err_t *err);

/* ---- parsing (exposed for tests and the fuzzer) ---- */

/* Reads a torrents/info answer (a JSON array of objects, at most max bytes) and looks for the
 * torrent with id hash (lower-case hex). Returns 0 with *found and *t (may be NULL) set, or
 * EPROTO / EFBIG / ENOMEM with err set. */
int qbt_parse_info(const void *body, size_t len, size_t max, const char *hash, bool *found,
                   struct qbt_torrent *t, err_t *err);

#endif
