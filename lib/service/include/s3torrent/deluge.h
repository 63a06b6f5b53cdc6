/* deluge.h — a small client of deluge-web's JSON-RPC (/json): auth.login (a session cookie),
 * connecting the web UI to a daemon when it is not, finding and adding torrents. */
#ifndef S3TORRENT_DELUGE_H
#define S3TORRENT_DELUGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "s3torrent/err.h"
#include "s3torrent/http.h"

#define DELUGE_DEFAULT_URL  "http://localhost:8112/json"
#define DELUGE_RESPONSE_MAX (16u << 20) /* bytes of one answer held in memory */
#define DELUGE_JSON_DEPTH   64
#define DELUGE_CRED_MAX     1024 /* bytes of the password */

struct deluge_config {
    const char *url;      /* the /json endpoint; NULL or "": DELUGE_DEFAULT_URL */
    const char *password; /* the web UI's; NULL: "deluge", its default */
    struct http_client *http;
};

struct deluge_client;

/* A torrent as the daemon names it. */
struct deluge_torrent {
    char id[41]; /* libtorrent's get_best(): a v2 info-hash's first 20 bytes, else v1's, hex */
    char name[256];
    char save_path[4096];
};

/* Returns 0 with *out ready, or EINVAL (bad URL, over-long password) / ENOMEM with err set.
 * The password is copied and wiped on free; http is borrowed. One exchange at a time. */
int deluge_client_new(const struct deluge_config *cfg, struct deluge_client **out, err_t *err);
void deluge_client_free(struct deluge_client *c);
const char *deluge_client_url(const struct deluge_client *c);

/* auth.login, then web.connected; when the web UI is not connected to a daemon, web.get_hosts
 * and web.connect to the first; then daemon.info into version (len bytes). Returns 0, EACCES
 * when the password is refused, EHOSTUNREACH when no daemon can be reached, or an errno of
 * deluge_call. */
int deluge_login(struct deluge_client *c, char *version, size_t len, err_t *err);

/* Calls method with params (a JSON array, borrowed; NULL: []). Returns 0 with *result (may be
 * NULL to discard; the caller puts it; NULL for a JSON null) set, or an errno with err set to
 * one line without the password: EIO "Deluge: METHOD: <its error message>", EACCES (not logged
 * in), EFBIG, EPROTO, or a transport errno. */
int deluge_call(struct deluge_client *c, const char *method, json_object *params,
                json_object **result, err_t *err);

/* core.get_torrent_status of id (40 hex digits). Returns 0 with *found and *t (may be NULL). */
int deluge_find(struct deluge_client *c, const char *id, bool *found, struct deluge_torrent *t,
                err_t *err);

/* core.add_torrent_file(filename, base64 of torrent, {download_location, seed_mode: true}).
 * Returns 0 with id (41 bytes) set to what the daemon named it, or an errno of deluge_call
 * (EIO "Deluge: core.add_torrent_file: Torrent already in session (...)" for a duplicate). */
int deluge_add(struct deluge_client *c, const uint8_t *torrent, size_t len, const char *filename,
               const char *download_location, char id[41], err_t *err);

/* ---- parsing (exposed for tests and the fuzzer) ---- */

/* Parses a JSON-RPC answer of len bytes (at most max; 0: DELUGE_RESPONSE_MAX) to request id.
 * Returns 0 with *doc set (the caller puts it) and *result pointing inside it (NULL for null);
 * EIO with err set to its error's message; or EPROTO / EFBIG / ENOMEM. */
int deluge_parse_response(const void *body, size_t len, size_t max, int64_t id, json_object **doc,
                          json_object **result, err_t *err);

#endif
