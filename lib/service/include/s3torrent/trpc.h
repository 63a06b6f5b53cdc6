/* trpc.h — a small Transmission RPC client (rpc-spec.md, Transmission 3.00): JSON POSTs with the
 * X-Transmission-Session-Id handshake, Basic auth, capped answers; finds and adds torrents. */
#ifndef S3TORRENT_TRPC_H
#define S3TORRENT_TRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "s3torrent/err.h"
#include "s3torrent/http.h"

#define TRPC_DEFAULT_URL  "http://localhost:9091/transmission/rpc"
#define TRPC_RESPONSE_MAX (16u << 20) /* bytes of one answer held in memory */
#define TRPC_JSON_DEPTH   64
#define TRPC_CRED_MAX     1024 /* bytes of a user name or password */

struct trpc_config {
    const char *url;      /* NULL or "": TRPC_DEFAULT_URL; http(s), no user:password@ in it */
    const char *username; /* NULL: no Authorization header; read by the caller from the env */
    const char *password; /* NULL: "" */
    struct http_client *http;
    size_t max_response; /* 0: TRPC_RESPONSE_MAX */
};

struct trpc_client;

/* A torrent as the daemon knows it. */
struct trpc_torrent {
    char hash[41]; /* hashString, lower-case hex */
    int64_t id;
    char name[256];          /* truncated when longer; control bytes replaced by '?' */
    char download_dir[4096]; /* "" when the answer did not say */
};

/* Returns 0 with *out ready, or EINVAL (bad URL, over-long credentials) / ENOMEM with err set.
 * Strings are copied (the password is wiped on free); http is borrowed and must outlive the
 * client. The client is thread-safe. */
int trpc_client_new(const struct trpc_config *cfg, struct trpc_client **out, err_t *err);
void trpc_client_free(struct trpc_client *c);

/* The RPC URL in use (owned by c). */
const char *trpc_client_url(const struct trpc_client *c);

/* Calls method with arguments (borrowed; may be NULL), doing the session-id handshake on a 409.
 * Returns 0 with *args (may be NULL to discard) set to the answer's "arguments" object, which
 * the caller releases with json_object_put; or a positive errno with err set to one line that
 * never holds the credentials: EACCES (401/403), EIO ("Transmission: METHOD: <result>" for a
 * result other than "success", or another HTTP status), EFBIG (answer over the cap), EPROTO
 * (not an RPC answer), or a transport errno of http_stream_open. */
int trpc_call(struct trpc_client *c, const char *method, json_object *arguments, json_object **args,
              err_t *err);

/* session-get: checks the daemon answers. version (may be NULL) gets its version string
 * ("3.00 (bb6b5a062e)"), truncated to len. Returns 0 or an errno of trpc_call. */
int trpc_ping(struct trpc_client *c, char *version, size_t len, err_t *err);

/* torrent-get of the torrent with v1 info-hash info_hash_hex (40 hex digits). Returns 0 with
 * *found telling whether the daemon has it and *t (may be NULL) filled when it does; EINVAL for
 * a malformed hash, or an errno of trpc_call. */
int trpc_find(struct trpc_client *c, const char *info_hash_hex, bool *found, struct trpc_torrent *t,
              err_t *err);

struct trpc_add_result {
    bool duplicate; /* the daemon had the torrent already (torrent-duplicate) */
    struct trpc_torrent torrent;
};

/* torrent-add of torrent (len bytes, sent base64 as "metainfo"), seeding from download_dir
 * (absolute; NULL: the daemon's default), not paused. A duplicate is an answer, not an error.
 * Returns 0 with *res filled, or an errno of trpc_call (EIO "Transmission: torrent-add:
 * invalid or corrupt torrent file", ...). */
int trpc_add(struct trpc_client *c, const uint8_t *torrent, size_t len, const char *download_dir,
             struct trpc_add_result *res, err_t *err);

/* ---- parsing (exposed for tests and the fuzzer) ---- */

/* Parses an RPC answer of len bytes: one JSON object (nothing after it, at most TRPC_JSON_DEPTH
 * deep, at most max bytes; 0: TRPC_RESPONSE_MAX) with a string "result" and, when present, an
 * object "arguments". Returns 0 with *doc set (the caller puts it), *result and *arguments
 * (NULL when absent) pointing inside it; or EPROTO / EFBIG / ENOMEM with err set. */
int trpc_parse_response(const void *body, size_t len, size_t max, json_object **doc,
                        const char **result, json_object **arguments, err_t *err);

/* Reads a torrent object of an answer (torrent-get's, torrent-added, torrent-duplicate) into *t.
 * Returns 0, or EPROTO when it lacks a 40-hex-digit hashString or an integer id. */
int trpc_torrent_from_json(json_object *o, struct trpc_torrent *t, err_t *err);

#endif
