/* seedc.h — one interface over the BitTorrent daemons `seed` and `sync --seed` hand torrents to
 * (Transmission RPC, qBittorrent Web API v2, deluge-web JSON-RPC): connect, then seed a torrent
 * whose data is already in a directory, reporting one already there instead of adding it. */
#ifndef S3TORRENT_SEEDC_H
#define S3TORRENT_SEEDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3torrent/err.h"
#include "s3torrent/http.h"

enum seedc_kind { SEEDC_TRANSMISSION, SEEDC_QBITTORRENT, SEEDC_DELUGE };

#define SEEDC_KINDS "transmission, qbittorrent or deluge"

/* Reads a --client value. Returns 0 with *out set, or EINVAL. */
int seedc_kind_parse(const char *s, enum seedc_kind *out);
/* The client's name for messages ("Transmission", "qBittorrent", "Deluge"). */
const char *seedc_kind_name(enum seedc_kind k);

struct seedc_config {
    enum seedc_kind kind;
    const char *url;             /* NULL or "": the client's default */
    const char *username;        /* NULL: none (Deluge has none: only a password) */
    const char *password;        /* NULL: none, or Deluge's default */
    const char *category, *tags; /* qBittorrent only; NULL: none */
    struct http_client *http;    /* borrowed */
};

struct seedc;

/* Makes the client and checks the daemon answers (logging in where it needs to, reading its
 * version). Returns 0 with *out ready; EINVAL for a bad URL or credentials too long (nothing was
 * tried); or an errno of the client (EACCES for refused credentials) with err set to one line
 * that never holds them. The caller frees *out with seedc_free. */
int seedc_connect(const struct seedc_config *cfg, struct seedc **out, err_t *err);
void seedc_free(struct seedc *c);
enum seedc_kind seedc_kind(const struct seedc *c);
/* The daemon's version as it said it ("3.00 (bb6b5a062e)", "v4.5.2", "2.0.3"; "" if unsaid),
 * and its URL; both owned by c. */
const char *seedc_version(const struct seedc *c);
const char *seedc_url(const struct seedc *c);

struct seedc_result {
    bool added;              /* false: the daemon had the torrent already */
    char info_hash[65];      /* v1 (40 hex digits), or v2 (64) for a v2-only torrent */
    char id[41];             /* the daemon's name for it: Transmission's id, else the hash */
    char name[256];          /* as the daemon names it, or the torrent's name */
    char download_dir[4096]; /* where the daemon seeds from */
};

/* Has the daemon seed torrent (len bytes) from download_dir (absolute), which must hold the
 * torrent's data already: reports it as already there when the daemon has it, else adds it, not
 * paused, without a check where the client allows (qBittorrent skip_checking, Deluge seed_mode).
 * Torrents a client cannot take are refused before anything is sent: v2 and hybrid ones for
 * Transmission before 4.0, v2-only ones for any Transmission. Returns 0 with *res filled, or an
 * errno with err set to one line (EINVAL bad torrent or one the client cannot take, ENOENT /
 * ESTALE data missing from download_dir, the daemon's refusal). Not thread-safe. */
int seedc_seed(struct seedc *c, const uint8_t *torrent, size_t len, const char *download_dir,
               struct seedc_result *res, err_t *err);

/* True when Transmission of this version (session-get's "version") takes BEP 52 torrents. */
bool seedc_transmission_takes_v2(const char *version);

#endif
