/* seedc.c — the seed-client interface: a small vtable over trpc_, qbt_ and deluge_, and the
 * checks every client shares before a torrent is handed over (docs/DESIGN.md §17). */
#include "s3torrent/seedc.h"
#include "s3torrent/deluge.h"
#include "s3torrent/metainfo.h"
#include "s3torrent/qbt.h"
#include "s3torrent/trpc.h"
#include "s3torrent/util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What a client does; impl is its own client struct. find and add fill res's id and name. */
struct seedc_ops {
    int (*find)(void *impl, const char *id, bool *found, struct seedc_result *res, err_t *err);
    int (*add)(struct seedc *c, const struct metainfo *m, const char *id, const char *dir,
               struct seedc_result *res, err_t *err);
    void (*free)(void *impl);
};

struct seedc {
    enum seedc_kind kind;
    const struct seedc_ops *ops;
    void *impl;
    const char *category, *tags; /* borrowed from the config: they outlive the run */
    char version[64];
};

static const char *const kind_names[] = {"transmission", "qbittorrent", "deluge"};
static const char *const kind_titles[] = {"Transmission", "qBittorrent", "Deluge"};

int seedc_kind_parse(const char *s, enum seedc_kind *out)
{
    for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
        if (strcmp(s, kind_names[i]) == 0) {
            *out = (enum seedc_kind)i;
            return 0;
        }
    return EINVAL;
}

const char *seedc_kind_name(enum seedc_kind k)
{
    return kind_titles[k];
}

bool seedc_transmission_takes_v2(const char *version)
{
    /* "3.00 (bb6b5a062e)", "4.0.2 (...)"; BEP 52 came with 4.0 */
    return strtol(version, NULL, 10) >= 4;
}

/* ---- Transmission ---- */

static int tr_find(void *impl, const char *id, bool *found, struct seedc_result *res, err_t *err)
{
    struct trpc_torrent t;
    int rc = trpc_find(impl, id, found, &t, err);
    if (rc == 0 && *found) {
        snprintf(res->id, sizeof(res->id), "%lld", (long long)t.id);
        snprintf(res->name, sizeof(res->name), "%s", t.name);
    }
    return rc;
}

static int tr_add(struct seedc *c, const struct metainfo *m, const char *id, const char *dir,
                  struct seedc_result *res, err_t *err)
{
    struct trpc_add_result add;
    (void)id;
    int rc = trpc_add(c->impl, m->raw, m->raw_len, dir, &add, err);
    if (rc == 0) {
        res->added = !add.duplicate;
        snprintf(res->id, sizeof(res->id), "%lld", (long long)add.torrent.id);
        snprintf(res->name, sizeof(res->name), "%s", add.torrent.name);
    }
    return rc;
}

static void tr_free(void *impl)
{
    trpc_client_free(impl);
}

static const struct seedc_ops tr_ops = {tr_find, tr_add, tr_free};

/* ---- qBittorrent ---- */

static int qb_find(void *impl, const char *id, bool *found, struct seedc_result *res, err_t *err)
{
    struct qbt_torrent t;
    int rc = qbt_find(impl, id, found, &t, err);
    if (rc == 0 && *found) {
        snprintf(res->id, sizeof(res->id), "%s", t.hash);
        snprintf(res->name, sizeof(res->name), "%s", t.name);
    }
    return rc;
}

static int qb_add(struct seedc *c, const struct metainfo *m, const char *id, const char *dir,
                  struct seedc_result *res, err_t *err)
{
    struct qbt_add a = {.savepath = dir, .category = c->category, .tags = c->tags};
    bool found = false;
    int rc = qbt_add(c->impl, m->raw, m->raw_len, &a, err);
    if (rc == EEXIST) {
        /* "Fails.": a duplicate added meanwhile is an answer; anything else is the refusal */
        err_t ferr = {0};
        if (qbt_find(c->impl, id, &found, NULL, &ferr) == 0 && found) {
            err_clear(err);
            rc = 0;
        } else {
            rc = EINVAL;
        }
    }
    if (rc == 0) {
        res->added = !found;
        snprintf(res->id, sizeof(res->id), "%s", id);
        snprintf(res->name, sizeof(res->name), "%s", m->name);
    }
    return rc;
}

static void qb_free(void *impl)
{
    qbt_client_free(impl);
}

static const struct seedc_ops qb_ops = {qb_find, qb_add, qb_free};

/* ---- Deluge ---- */

static int de_find(void *impl, const char *id, bool *found, struct seedc_result *res, err_t *err)
{
    struct deluge_torrent t;
    int rc = deluge_find(impl, id, found, &t, err);
    if (rc == 0 && *found) {
        snprintf(res->id, sizeof(res->id), "%s", t.id);
        snprintf(res->name, sizeof(res->name), "%s", t.name);
    }
    return rc;
}

static int de_add(struct seedc *c, const struct metainfo *m, const char *id, const char *dir,
                  struct seedc_result *res, err_t *err)
{
    char got[41], filename[300];
    snprintf(filename, sizeof(filename), "%.250s.torrent", m->name);
    int rc = deluge_add(c->impl, m->raw, m->raw_len, filename, dir, got, err);
    if (rc == 0) {
        res->added = true;
        snprintf(res->id, sizeof(res->id), "%s", got[0] ? got : id);
        snprintf(res->name, sizeof(res->name), "%s", m->name);
    }
    return rc;
}

static void de_free(void *impl)
{
    deluge_client_free(impl);
}

static const struct seedc_ops de_ops = {de_find, de_add, de_free};

/* ---- the interface ---- */

int seedc_connect(const struct seedc_config *cfg, struct seedc **out, err_t *err)
{
    struct seedc *c = calloc(1, sizeof(*c));
    int rc = 0;
    *out = NULL;
    if (c == NULL)
        return err_set(err, ENOMEM, "out of memory");
    c->kind = cfg->kind;
    c->category = cfg->category;
    c->tags = cfg->tags;
    switch (cfg->kind) {
    case SEEDC_TRANSMISSION: {
        struct trpc_config tc = {.url = cfg->url,
                                 .username = cfg->username,
                                 .password = cfg->password,
                                 .http = cfg->http};
        c->ops = &tr_ops;
        if ((rc = trpc_client_new(&tc, (struct trpc_client **)&c->impl, err)) == 0)
            rc = trpc_ping(c->impl, c->version, sizeof(c->version), err);
        break;
    }
    case SEEDC_QBITTORRENT: {
        struct qbt_config qc = {.url = cfg->url,
                                .username = cfg->username,
                                .password = cfg->password,
                                .http = cfg->http};
        c->ops = &qb_ops;
        if ((rc = qbt_client_new(&qc, (struct qbt_client **)&c->impl, err)) == 0)
            rc = qbt_login(c->impl, c->version, sizeof(c->version), err);
        break;
    }
    case SEEDC_DELUGE: {
        struct deluge_config dc = {.url = cfg->url, .password = cfg->password, .http = cfg->http};
        c->ops = &de_ops;
        if ((rc = deluge_client_new(&dc, (struct deluge_client **)&c->impl, err)) == 0)
            rc = deluge_login(c->impl, c->version, sizeof(c->version), err);
        break;
    }
    default:
        rc = err_set(err, EINVAL, "no such seed client");
    }
    if (rc) {
        seedc_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void seedc_free(struct seedc *c)
{
    if (c == NULL)
        return;
    if (c->impl)
        c->ops->free(c->impl);
    free(c);
}

enum seedc_kind seedc_kind(const struct seedc *c)
{
    return c->kind;
}

const char *seedc_version(const struct seedc *c)
{
    return c->version;
}

const char *seedc_url(const struct seedc *c)
{
    switch (c->kind) {
    case SEEDC_TRANSMISSION:
        return trpc_client_url(c->impl);
    case SEEDC_QBITTORRENT:
        return qbt_client_url(c->impl);
    default:
        return deluge_client_url(c->impl);
    }
}

/* Refuses what this client cannot take. Returns 0 or EINVAL with err set. */
static int check_versions(const struct seedc *c, const struct metainfo *m, err_t *err)
{
    if (c->kind != SEEDC_TRANSMISSION || !m->v2)
        return 0;
    if (!m->v1)
        return err_set(err, EINVAL,
                       "a v2-only torrent: Transmission does not take it; use --client "
                       "qbittorrent or --client deluge");
    if (!seedc_transmission_takes_v2(c->version))
        return err_set(err, EINVAL,
                       "a hybrid torrent: Transmission %s does not take v2 or hybrid torrents "
                       "(4.0 does); use --client qbittorrent or --client deluge",
                       c->version[0] ? c->version : "before 4.0");
    return 0;
}

int seedc_seed(struct seedc *c, const uint8_t *torrent, size_t len, const char *download_dir,
               struct seedc_result *res, err_t *err)
{
    struct metainfo *m = NULL;
    char path[PATH_MAX], id[41];
    struct stat st;
    bool found;
    int rc;
    memset(res, 0, sizeof(*res));
    if ((rc = metainfo_parse(torrent, len, &m, err)))
        goto out;
    if ((rc = check_versions(c, m, err)))
        goto out;
    if (m->v1)
        util_hex(m->ih1, 20, res->info_hash);
    else
        util_hex(m->ih2, 32, res->info_hash);
    /* the id a client gives a torrent: Transmission's hashString is the v1 info-hash; libtorrent
     * 2's clients name it by info_hash_t::get_best(), the v2 one truncated to 20 bytes when the
     * torrent has one (hybrids too), else the v1 */
    if (m->v2 && c->kind != SEEDC_TRANSMISSION)
        util_hex(m->ih2, 20, id);
    else
        memcpy(id, res->info_hash, 41);
    if (download_dir[0] != '/' ||
        (size_t)snprintf(res->download_dir, sizeof(res->download_dir), "%s", download_dir) >=
            sizeof(res->download_dir)) {
        rc = err_set(err, EINVAL, "the download directory must be an absolute path under %d bytes",
                     PATH_MAX);
        goto out;
    }
    if (strchr(m->name, '/') || strcmp(m->name, ".") == 0 || strcmp(m->name, "..") == 0) {
        rc = err_set(err, EINVAL, "the torrent's name '%.200s' is not a file name", m->name);
        goto out;
    }
    /* the daemon would find nothing to seed and wait for peers instead: say so now */
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", download_dir, m->name) >= sizeof(path)) {
        rc = err_set(err, ENAMETOOLONG, "%s/%.200s: path too long", download_dir, m->name);
        goto out;
    }
    if (stat(path, &st) != 0) {
        rc = errno;
        err_set(err, rc, "%s: %s", path, strerror(rc));
        goto out;
    }
    if (m->multi ? !S_ISDIR(st.st_mode)
                 : !S_ISREG(st.st_mode) || (uint64_t)st.st_size != m->total_size) {
        rc = err_set(err, ESTALE, "%s does not hold the torrent's data (%llu bytes)", path,
                     (unsigned long long)m->total_size);
        goto out;
    }
    if ((rc = c->ops->find(c->impl, id, &found, res, err)))
        goto out;
    if (found)
        goto out;
    rc = c->ops->add(c, m, id, download_dir, res, err);
out:
    metainfo_free(m);
    return rc;
}
