/* sync.c — one object's torrent, materialised: decide (up to date, new outer fields, foreign,
 * stale, missing), make the bytes (cache, old hashes, local copy or S3 stream), PUT them with
 * their metadata, and record the status around it so that READY is written only once the
 * .torrent is in S3. */
#include "s3torrent/sync.h"
#include "s3torrent/magnet.h"
#include "s3torrent/maker.h"
#include "s3torrent/metainfo.h"
#include "s3torrent/verify.h"
#include "s3torrent/version.h"
#include "s3torrent/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A sync names no deadline: its lease is a minute and a second per 20 MB of the object, so a
 * sync killed mid-way holds up a rerun for about that long, not for a quarter of an hour. */
#define SYNC_LEASE_S 60
#include <unistd.h>

#define META_SOURCE_ETAG "s3torrent-source-etag"
#define META_INFOHASH    "s3torrent-infohash"
#define META_INFOHASH_V2 "s3torrent-infohash-v2"
#define META_VERSION     "s3torrent-version"
#define META_SOURCE_MTIME "s3torrent-source-mtime"
#define META_OUTER        "s3torrent-outer" /* torrent_outer_digest: docs/DESIGN.md §4 */

int sync_known_hashes(struct store *st, const char *bucket, const char *key,
                      const struct store_object *obj, struct hasher_result *out, err_t *err)
{
    struct store_object tobj;
    struct store_meta *tmeta = malloc(sizeof(*tmeta));
    struct metainfo *m = NULL;
    struct buf tkey, bytes;
    int rc;
    if (tmeta == NULL)
        return err_set(err, ENOMEM, "out of memory");
    buf_init(&tkey, 4096);
    buf_init(&bytes, TORRENT_MAX_SIZE);
    buf_printf(&tkey, "%s.torrent", key);
    buf_put(&tkey, "", 1);
    if (tkey.err)
        rc = err_set(err, ENOMEM, "out of memory");
    else if ((rc = store_head(st, bucket, (const char *)tkey.data, &tobj, tmeta, err)) == 0) {
        const char *src = store_meta_get(tmeta, META_SOURCE_ETAG);
        if (src == NULL || strcmp(src, obj->etag) != 0)
            rc = ENOENT; /* foreign, or of another version */
        else if ((rc = store_get_all(st, bucket, (const char *)tkey.data, tobj.etag, &bytes,
                                     err)) == 0 &&
                 (rc = metainfo_parse(bytes.data, bytes.len, &m, err)) == 0)
            rc = metainfo_hashes(m, out, err);
    }
    metainfo_free(m);
    buf_free(&bytes);
    buf_free(&tkey);
    free(tmeta);
    return rc;
}

const char *sync_action_name(enum sync_action a)
{
    static const char *const names[] = {"created",  "up-to-date", "adopted",
                                        "replaced", "skipped",    "failed"};
    return names[a];
}

bool sync_is_torrent_key(const char *key)
{
    size_t n = strlen(key);
    return n >= 8 && strcmp(key + n - 8, ".torrent") == 0;
}

static int fail(struct sync_result *out, const err_t *err, int rc)
{
    out->action = SYNC_FAILED;
    snprintf(out->why, sizeof(out->why), "%s", err->msg);
    return rc ? rc : EIO;
}

/* The ETag S3 would give a local file, read in order by its own thread while the hasher runs
 * (the page cache serves both, so the file is read from disk once): its MD5, or for an object
 * uploaded in parts, the MD5 of the parts' MD5s followed by "-N", for each candidate part size
 * at once (a server that will not say the part size leaves a few to try). */
#define MD5_CANDIDATES 16

struct md5_way {
    uint64_t part_size; /* 0: a single-part upload */
    uint64_t in_part, nparts;
    EVP_MD_CTX *part, *outer;
    char etag[48];
};

struct md5_job {
    const char *path;
    struct md5_way way[MD5_CANDIDATES];
    size_t nway;
    int rc;
    pthread_t tid;
};

/* Ends the current part of w. Returns false on a digest failure. */
static bool md5_end_part(struct md5_way *w)
{
    unsigned char md[16];
    if (!EVP_DigestFinal_ex(w->part, md, NULL) || !EVP_DigestInit_ex(w->part, EVP_md5(), NULL))
        return false;
    EVP_DigestUpdate(w->outer, md, sizeof(md));
    w->nparts++;
    w->in_part = 0;
    return true;
}

static bool md5_feed(struct md5_way *w, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t take = n;
        if (w->part_size && w->part_size - w->in_part < take)
            take = (size_t)(w->part_size - w->in_part);
        EVP_DigestUpdate(w->part, p, take);
        w->in_part += take;
        p += take;
        n -= take;
        if (w->part_size && w->in_part == w->part_size && !md5_end_part(w))
            return false;
    }
    return true;
}

static bool md5_final(struct md5_way *w)
{
    unsigned char md[16];
    char hex[33];
    if (w->part_size && w->in_part > 0 && !md5_end_part(w))
        return false;
    if (!EVP_DigestFinal_ex(w->part_size ? w->outer : w->part, md, NULL))
        return false;
    util_hex(md, 16, hex);
    if (w->part_size)
        snprintf(w->etag, sizeof(w->etag), "%s-%llu", hex, (unsigned long long)w->nparts);
    else
        snprintf(w->etag, sizeof(w->etag), "%s", hex);
    return true;
}

static void *md5_main(void *arg)
{
    struct md5_job *j = arg;
    int fd = open(j->path, O_RDONLY | O_CLOEXEC);
    uint8_t *buf = malloc(1 << 20);
    bool ok = fd >= 0 && buf;
    for (size_t i = 0; i < j->nway && ok; i++) {
        struct md5_way *w = &j->way[i];
        ok = (w->part = EVP_MD_CTX_new()) && (w->outer = EVP_MD_CTX_new()) &&
             EVP_DigestInit_ex(w->part, EVP_md5(), NULL) &&
             EVP_DigestInit_ex(w->outer, EVP_md5(), NULL);
    }
    ssize_t n = 0;
    while (ok && (n = read(fd, buf, 1 << 20)) > 0)
        for (size_t i = 0; i < j->nway && ok; i++)
            ok = md5_feed(&j->way[i], buf, (size_t)n);
    for (size_t i = 0; i < j->nway && ok; i++)
        ok = md5_final(&j->way[i]);
    j->rc = ok && n == 0 ? 0 : EIO;
    for (size_t i = 0; i < j->nway; i++) {
        EVP_MD_CTX_free(j->way[i].part);
        EVP_MD_CTX_free(j->way[i].outer);
    }
    free(buf);
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* The N of a multipart ETag "<32 hex>-N" (1 to 10000), else 0; 0 with *plain set for a plain
 * MD5. Any other ETag (SSE-KMS, SSE-C) is no digest of the bytes. */
static unsigned etag_kind(const char *etag, bool *plain)
{
    size_t n = strlen(etag);
    *plain = false;
    if (n < 32)
        return 0;
    for (size_t i = 0; i < 32; i++)
        if (!isxdigit((unsigned char)etag[i]))
            return 0;
    if (n == 32) {
        *plain = true;
        return 0;
    }
    if (etag[32] != '-' || n > 38)
        return 0;
    unsigned v = 0;
    for (size_t i = 33; i < n; i++) {
        if (!isdigit((unsigned char)etag[i]))
            return 0;
        v = v * 10 + (unsigned)(etag[i] - '0');
    }
    return v <= 10000 ? v : 0;
}

/* How the local file is checked against the object's ETag: its MD5 for a plain one; for a
 * multipart "md5-N", the part size that HEAD ?partNumber=1 gives (S3), or where the server
 * ignores partNumber (RGW 16), whole numbers of MiB that make N parts of obj->size, the upload
 * tools' usual ones first (at most MD5_CANDIDATES). A match under any is the uploaded file: a
 * different file matching an MD5 of MD5s is a collision. *check is false for an ETag that is no
 * digest. Returns 0 or an errno with err set. */
static int plan_md5(const struct sync_config *c, const char *bucket, const char *key,
                    const struct store_object *obj, struct md5_job *j, bool *check, err_t *err)
{
    bool plain;
    unsigned parts = etag_kind(obj->etag, &plain), told = 0;
    uint64_t psize = 0;
    *check = plain || parts > 0;
    j->nway = 0;
    if (plain)
        j->way[j->nway++].part_size = 0;
    if (!parts)
        return 0;
    int rc = store_head_part(c->maker->store, bucket, key, obj->etag, 1, &psize, &told, err);
    if (rc == 0 && told == parts && psize > 0 && (obj->size + psize - 1) / psize == parts) {
        j->way[j->nway++].part_size = psize;
        return 0;
    }
    if (rc != 0 && rc != EPROTO)
        return rc;
    /* the upload tools' usual sizes first (aws CLI 8 MiB, SDKs 5 MiB, ...), then the others */
    static const unsigned usual[] = {8, 5, 16, 15, 64, 100, 128, 10, 25, 32, 50};
    const uint64_t mib = 1 << 20;
    for (size_t i = 0; i < sizeof(usual) / sizeof(usual[0]); i++)
        if ((obj->size + usual[i] * mib - 1) / (usual[i] * mib) == parts)
            j->way[j->nway++].part_size = usual[i] * mib;
    for (uint64_t p = (obj->size / parts + mib - 1) / mib * mib;
         p > 0 && (obj->size + p - 1) / p == parts && j->nway < MD5_CANDIDATES; p += mib) {
        size_t k = 0;
        while (k < j->nway && j->way[k].part_size != p)
            k++;
        if (k == j->nway)
            j->way[j->nway++].part_size = p;
    }
    if (j->nway == 0)
        return err_set(err, EPROTO,
                       "s3://%s/%s: the server does not say the part size of ETag %s, and no "
                       "whole number of MiB makes %u parts of %llu bytes: cannot check %s",
                       bucket, key, obj->etag, parts, (unsigned long long)obj->size, j->path);
    return 0;
}

/* Makes the torrent of the object (the maker: cache or store), or of from_file, a local copy
 * whose size and ETag must match the object's. */
static int make_bytes(const struct sync_config *c, const char *bucket, const char *key,
                      const struct store_object *obj, const char *from_file,
                      const struct hasher_result *known, struct buf *out, struct maker_result *res,
                      err_t *err)
{
    struct source *src = NULL;
    struct md5_job md5 = {.path = from_file};
    bool md5_running = false;
    int rc;

    if (from_file == NULL)
        return maker_make_known(c->maker, bucket, key, obj, c->recipe, known, out, res, err);
    if ((rc = source_file_open(from_file, &src, err)))
        goto out;
    if (src->size != obj->size) {
        rc = err_set(err, EINVAL, "%s: %llu bytes, but s3://%s/%s has %llu: not the uploaded file",
                     from_file, (unsigned long long)src->size, bucket, key,
                     (unsigned long long)obj->size);
        goto out;
    }
    bool check;
    if ((rc = plan_md5(c, bucket, key, obj, &md5, &check, err)))
        goto out;
    if (check) {
        md5_running = pthread_create(&md5.tid, NULL, md5_main, &md5) == 0;
        if (!md5_running) {
            rc = err_set(err, EAGAIN, "cannot start the MD5 check");
            goto out;
        }
    }
    rc = maker_make(c->maker, bucket, key, obj, c->recipe, src, out, res, err);
    if (md5_running) {
        pthread_join(md5.tid, NULL);
        if (rc == 0 && md5.rc != 0)
            rc = err_set(err, EIO, "%s: cannot read it for the MD5 check", from_file);
        else if (rc == 0) {
            size_t i = 0;
            while (i < md5.nway && strcasecmp(md5.way[i].etag, obj->etag) != 0)
                i++;
            if (i == md5.nway)
                rc = err_set(err, EINVAL,
                             "%s: MD5 %s differs from s3://%s/%s's ETag %s: not the uploaded "
                             "file",
                             from_file, md5.way[0].etag, bucket, key, obj->etag);
        }
        if (rc)
            maker_result_free(res);
    }
out:
    source_free(src);
    return rc;
}

/* What §4 and §6 record of a torrent, from the maker's result or a parsed foreign one. */
struct made {
    const uint8_t *ih1, *ih2; /* NULL when the torrent has no such version */
    uint64_t piece_length, npieces;
    char *magnet, *magnet_v1; /* magnet_v1: btih alone, NULL without a v1 info-hash */
};

static int made_from_result(const struct sync_config *c, const char *key,
                            const struct maker_result *r, struct made *out)
{
    struct torrent_opts o;
    char *ws = NULL;
    const char *slash = strrchr(key, '/');
    *out = (struct made){
        r->v1 ? r->ih1 : NULL, r->v2 ? r->ih2 : NULL, r->piece_length, r->npieces, NULL, NULL};
    if (torrent_recipe_opts(c->recipe, key, 0, &o, &ws) == 0) {
        out->magnet = magnet_make(out->ih1, out->ih2, slash ? slash + 1 : key, o.trackers,
                                  o.ntrackers, o.webseeds, o.nwebseeds);
        if (out->ih1)
            out->magnet_v1 = magnet_make(out->ih1, NULL, slash ? slash + 1 : key, o.trackers,
                                         o.ntrackers, o.webseeds, o.nwebseeds);
    }
    free(ws);
    return out->magnet && (out->magnet_v1 || !out->ih1) ? 0 : ENOMEM;
}

static int made_from_metainfo(const struct metainfo *m, struct made *out)
{
    *out = (struct made){m->v1 ? m->ih1 : NULL,   m->v2 ? m->ih2 : NULL,
                         m->piece_length,         m->npieces,
                         magnet_from_metainfo(m), magnet_v1_from_metainfo(m)};
    return out->magnet && (out->magnet_v1 || !m->v1) ? 0 : ENOMEM;
}

static int put_torrent(const struct sync_config *c, const char *bucket, const char *tkey,
                       const char *etag, int64_t mtime, const struct buf *bytes,
                       const struct made *t, err_t *err)
{
    char ih1[41], ih2[65], mt[24], outer[TORRENT_OUTER_HEX];
    struct http_header meta[6];
    size_t n = 0;
    meta[n++] = (struct http_header){META_SOURCE_ETAG, etag};
    snprintf(mt, sizeof(mt), "%lld", (long long)mtime);
    meta[n++] = (struct http_header){META_SOURCE_MTIME, mt};
    if (t->ih1)
        meta[n++] = (struct http_header){META_INFOHASH, util_hex(t->ih1, 20, ih1)};
    if (t->ih2)
        meta[n++] = (struct http_header){META_INFOHASH_V2, util_hex(t->ih2, 32, ih2)};
    meta[n++] = (struct http_header){META_VERSION, S3T_VERSION};
    /* what a later run compares with its recipe's outer fields instead of reading the bytes */
    if (torrent_outer_digest_of(bytes->data, bytes->len, outer) == 0)
        meta[n++] = (struct http_header){META_OUTER, outer};
    return store_put(c->maker->store, bucket, tkey, bytes->data, bytes->len,
                     "application/x-bittorrent", meta, n, err);
}

/* READY, with everything §6 records about the torrent. */
static int mark_ready(const struct sync_config *c, const struct status_object *so, const char *tkey,
                      const struct made *m, err_t *err)
{
    if (c->status == NULL || c->dry_run)
        return 0;
    char ih1[41], ih2[65];
    struct status_torrent t = {
        .torrent_key = tkey,
        .info_hash = m->ih1 ? util_hex(m->ih1, 20, ih1) : NULL,
        .info_hash_v2 = m->ih2 ? util_hex(m->ih2, 32, ih2) : NULL,
        .magnet = m->magnet ? m->magnet : "",
        .magnet_v1 = m->magnet_v1,
        .piece_length = m->piece_length,
        .piece_count = m->npieces,
        .meta_version = m->ih1 && m->ih2 ? "hybrid"
                        : m->ih2         ? "v2"
                                         : "v1",
        .runs = c->known ? c->known_runs : 0,
    };
    int rc = status_ready(c->status, so, &t, err);
    if (rc == EEXIST) {
        log_msg(c->log, LOG_INFO, "s3://%s/%s: %s", so->bucket, so->key, err ? err->msg : "");
        rc = 0; /* a newer version's status is there: it is not ours to change */
    }
    return rc;
}

/* True when the status item already says READY for this version of the object. */
static bool item_ready(const struct status_store *st, const struct status_object *so)
{
    struct status_item *it = calloc(1, sizeof(*it));
    bool ready = it && status_get(st, so->bucket, so->key, it, NULL) == 0 &&
                 strcmp(it->status, "READY") == 0 && strcmp(it->etag, so->etag) == 0 &&
                 it->object_mtime == so->mtime;
    free(it);
    return ready;
}

static void fill_hashes(struct sync_result *out, const struct made *m)
{
    if (m->ih1)
        util_hex(m->ih1, 20, out->info_hash);
    if (m->ih2)
        util_hex(m->ih2, 32, out->info_hash_v2);
}

/* Keeps bytes as the caller's copy of the .torrent now in the store, when asked. */
static void hand_back(struct buf *torrent, const struct buf *bytes)
{
    if (torrent && buf_put(torrent, bytes->data, bytes->len) != 0)
        torrent->len = 0;
}

/* The rules of docs/DESIGN.md §4 that give an object no torrent: the reason, written to why, or
 * NULL. */
static const char *skip_reason(const char *key, const struct store_object *obj, char *why,
                               size_t len)
{
    const char *slash = strrchr(key, '/');
    err_t err = {0};
    if (torrent_check_name(slash ? slash + 1 : key, &err) != 0) {
        /* a key S3 takes but no torrent can name (a control byte, a trailing '/', over 255
         * bytes): the same rule as the mount's, which shows such objects without a torrent */
        snprintf(why, len, "no torrent can be named after this key: %.400s", err.msg);
        return why;
    }
    if (strlen(key) + 8 > S3_MAX_KEY) {
        snprintf(why, len,
                 "KEY.torrent would pass S3's %d-byte key limit: no .torrent object can be "
                 "stored (the mount still serves one)",
                 S3_MAX_KEY);
        return why;
    }
    if (obj->size == 0) {
        snprintf(why, len, "zero-byte object: nothing to share");
        return why;
    }
    return NULL;
}

/* One object being synced. */
struct job {
    const struct sync_config *c;
    const char *bucket, *key, *tkey;
    struct store_object obj;
    struct status_object so;
    struct buf *torrent; /* the caller's, may be NULL */
    struct sync_result *out;
    struct hasher_result known; /* an old torrent's hashes (a re-upload of the same bytes) */
    bool has_known;
};

/* True when the .torrent (ours, for this ETag) was made for an older upload of the same bytes:
 * its creation date is the old Last-Modified. */
static bool redated(const struct job *j, const struct store_meta *tmeta)
{
    const char *v = store_meta_get(tmeta, META_SOURCE_MTIME);
    return v && !j->c->recipe->no_date && strtoll(v, NULL, 10) != j->obj.mtime;
}

/* A re-upload of the same bytes: the old torrent's hashes, so that the new one (a new date)
 * costs no read of the object. A torrent that cannot give them only costs a rehash. */
static void learn_known(struct job *j, const struct store_object *tobj)
{
    struct buf bytes;
    struct metainfo *m = NULL;
    err_t err = {0};
    buf_init(&bytes, TORRENT_MAX_SIZE);
    if (store_get_all(j->c->maker->store, j->bucket, j->tkey, tobj->etag, &bytes, &err) == 0 &&
        metainfo_parse(bytes.data, bytes.len, &m, &err) == 0 &&
        metainfo_hashes(m, &j->known, &err) == 0)
        j->has_known = true;
    else
        log_msg(j->c->log, LOG_INFO, "s3://%s/%s: hashing again: %s", j->bucket, j->tkey, err.msg);
    metainfo_free(m);
    buf_free(&bytes);
}

/* True when m, our torrent of this version of the object (bytes), has the info dict the recipe
 * gives but other outer fields (trackers, web seed, comment, creator, a date left out or not):
 * j->known then holds its hashes, so that the new one costs no read of the object
 * (docs/DESIGN.md §4). Another info dict (piece length, versions, private, source) is no
 * rewrite: the ETag rule keeps it up to date. */
static bool outer_changed(struct job *j, const struct metainfo *m, const struct buf *bytes)
{
    const struct torrent_recipe *r = j->c->recipe;
    uint64_t plen = r->piece_length ? r->piece_length : torrent_auto_piece_length(j->obj.size);
    struct hasher_result h = {0};
    struct maker_result res = {0};
    struct buf now;
    err_t err = {0};
    bool changed = false;

    buf_init(&now, TORRENT_MAX_SIZE);
    if (m->multi || metainfo_hashes(m, &h, &err) != 0)
        goto out;
    /* what maker_make_known takes without reading: anything else would hash the object */
    if (h.size != j->obj.size || h.piece_length != plen ||
        (h.v1_pieces != NULL) != ((r->meta & TORRENT_V1) != 0) ||
        (h.v2_layer != NULL) != ((r->meta & TORRENT_V2) != 0))
        goto out;
    if (maker_make_known(j->c->maker, j->bucket, j->key, &j->obj, r, &h, &now, &res, &err) != 0) {
        log_msg(j->c->log, LOG_INFO, "s3://%s/%s: keeping it: %s", j->bucket, j->tkey, err.msg);
        goto out;
    }
    changed = res.cached && res.v1 == m->v1 && res.v2 == m->v2 &&
              (!m->v1 || memcmp(res.ih1, m->ih1, 20) == 0) &&
              (!m->v2 || memcmp(res.ih2, m->ih2, 32) == 0) &&
              !(now.len == bytes->len && memcmp(now.data, bytes->data, now.len) == 0);
    if (changed) {
        j->known = h;
        j->has_known = true;
        h = (struct hasher_result){0};
    }
out:
    hasher_result_free(&h);
    maker_result_free(&res);
    buf_free(&now);
    return changed;
}

/* True when the .torrent's metadata records the outer fields the recipe gives this object now
 * (docs/DESIGN.md §4): it is up to date without being read. */
static bool same_outer(const struct job *j, const struct store_meta *tmeta)
{
    const char *have = store_meta_get(tmeta, META_OUTER);
    char want[TORRENT_OUTER_HEX];
    struct torrent_opts o;
    char *ws = NULL;
    bool same = have && torrent_recipe_opts(j->c->recipe, j->key, j->obj.mtime, &o, &ws) == 0 &&
                torrent_outer_digest(&o, want) == 0 && strcmp(have, want) == 0;
    free(ws);
    return same;
}

/* What an existing KEY.torrent calls for: up to date (its source ETag is the object's, and the
 * recipe lays out the same bytes from its hashes, which its s3torrent-outer metadata tells
 * without a GET when it equals the recipe's: record READY if the item does not say so yet),
 * or foreign (no such metadata: adopt it byte for byte when the object verifies against
 * it). Returns true when that settled the object (out says how; *rc the errno of a failure),
 * false when a new torrent must replace it (for new outer fields, from its hashes). */
static bool settle_existing(struct job *j, const struct store_object *tobj,
                            const struct store_meta *tmeta, int *rc)
{
    const struct sync_config *c = j->c;
    struct store *st = c->maker->store;
    const char *src_etag = store_meta_get(tmeta, META_SOURCE_ETAG);
    bool ours_current = src_etag && strcmp(src_etag, j->obj.etag) == 0;
    struct metainfo *m = NULL;
    struct made made = {0};
    struct buf bytes;
    err_t err = {0};
    bool settled = false;

    if (ours_current && redated(j, tmeta)) {
        if (!c->dry_run)
            learn_known(j, tobj);
        return false; /* the same bytes uploaded again: a new date */
    }
    if (!ours_current && src_etag != NULL)
        return false; /* ours, of another version: stale */
    buf_init(&bytes, TORRENT_MAX_SIZE);
    /* read it (never the object): to adopt a foreign one; to compare an up-to-date one's outer
     * fields with the recipe's when its metadata does not say they are the same; to record its
     * status when the item does not say READY for this version yet (or to hand it back) */
    bool same = ours_current && same_outer(j, tmeta);
    bool record = same && c->status && !c->dry_run && !item_ready(c->status, &j->so);
    if (!same || record || (j->torrent && !c->dry_run)) {
        if ((*rc = store_get_all(st, j->bucket, j->tkey, tobj->etag, &bytes, &err))) {
            *rc = fail(j->out, &err, *rc);
            settled = true;
            goto out;
        }
        if (metainfo_parse(bytes.data, bytes.len, &m, &err) != 0) {
            if (ours_current) {
                err_prefix(&err, "s3://%s/%s", j->bucket, j->tkey);
                *rc = fail(j->out, &err, EINVAL);
                settled = true;
                goto out;
            }
            log_msg(c->log, LOG_INFO, "s3://%s/%s: not a valid torrent, replacing it: %s",
                    j->bucket, j->tkey, err.msg);
            m = NULL;
        }
    }
    if (ours_current && !same && outer_changed(j, m, &bytes))
        goto out; /* new outer fields: rewritten from its hashes */
    if (ours_current) {
        if (!same) /* read above in any case: the item is asked only now */
            record = c->status && !c->dry_run && !item_ready(c->status, &j->so);
        const char *h1 = store_meta_get(tmeta, META_INFOHASH);
        const char *h2 = store_meta_get(tmeta, META_INFOHASH_V2);
        j->out->action = SYNC_UP_TO_DATE;
        snprintf(j->out->info_hash, sizeof(j->out->info_hash), "%s", h1 ? h1 : "");
        snprintf(j->out->info_hash_v2, sizeof(j->out->info_hash_v2), "%s", h2 ? h2 : "");
        if (m && record &&
            ((*rc = made_from_metainfo(m, &made)) ||
             (*rc = mark_ready(c, &j->so, j->tkey, &made, &err))))
            *rc = fail(j->out, &err, *rc);
        if (*rc == 0 && !c->dry_run)
            hand_back(j->torrent, &bytes);
        settled = true;
        goto out;
    }
    if (m == NULL || m->multi)
        goto out;
    /* foreign: adopt it as it is when the object verifies against it, whatever its name (the
     * old pipeline hashed local files named as it pleased): its info-hash may be a live swarm */
    struct source *src = NULL;
    struct verify_opts vo = {.threads = c->maker->threads};
    uint64_t bad;
    err_t verr = {0};
    int vr = store_open_source(st, j->bucket, j->key, &j->obj, c->maker->parallel, &src, &verr);
    if (vr == 0)
        vr = verify_source(m, src, &vo, &bad, &verr);
    source_free(src);
    j->out->hashed = j->obj.size; /* read whole, whatever it found */
    if (vr == EBADMSG) {
        log_msg(c->log, LOG_INFO, "s3://%s/%s: replacing it: %s", j->bucket, j->tkey, verr.msg);
        goto out;
    }
    settled = true;
    if (vr != 0) {
        *rc = fail(j->out, &verr, vr);
        goto out;
    }
    j->out->action = SYNC_ADOPTED;
    if ((*rc = made_from_metainfo(m, &made))) {
        err_set(&err, *rc, "out of memory");
        *rc = fail(j->out, &err, *rc);
        goto out;
    }
    fill_hashes(j->out, &made);
    if (!c->dry_run && ((*rc = put_torrent(c, j->bucket, j->tkey, j->obj.etag, j->obj.mtime, &bytes,
                                           &made, &err)) ||
                        (*rc = mark_ready(c, &j->so, j->tkey, &made, &err))))
        *rc = fail(j->out, &err, *rc);
    else if (!c->dry_run)
        hand_back(j->torrent, &bytes);
out:
    free(made.magnet);
    free(made.magnet_v1);
    metainfo_free(m);
    buf_free(&bytes);
    return settled;
}

/* Makes the torrent and publishes it: HASHING, the .torrent with its metadata, then READY; a
 * failure after HASHING is recorded FAILED. Returns 0 or the errno (out says why). */
static int make_and_publish(struct job *j, const char *from_file)
{
    const struct sync_config *c = j->c;
    struct maker_result res = {0};
    struct made made = {0};
    struct buf bytes;
    err_t err = {0};
    bool began = false;
    int rc;

    if (c->status && c->known) {
        began = true; /* the fan-out's: its lease is the caller's */
    } else if (c->status) {
        int sr = status_begin(c->status, &j->so, &err);
        if (sr != 0 && sr != EEXIST)
            return fail(j->out, &err, sr);
        began = sr == 0;
    }
    if (c->hand_out && (began || !c->status) && from_file == NULL && !j->has_known && !c->known) {
        rc = c->hand_out(c->hand_out_arg, &j->so, &err);
        if (rc == 0) {
            j->out->handed_out = true;
            return 0;
        }
        if (rc != ENOTSUP) {
            rc = fail(j->out, &err, rc);
            err_t ferr = {0};
            if (began && status_failed(c->status, &j->so, j->out->why, &ferr) != 0)
                log_msg(c->log, LOG_WARNING, "recording FAILED: %s", ferr.msg);
            return rc;
        }
    }
    const struct hasher_result *known = c->known ? c->known : j->has_known ? &j->known : NULL;
    buf_init(&bytes, TORRENT_MAX_SIZE);
    if ((rc = make_bytes(c, j->bucket, j->key, &j->obj, from_file, known, &bytes, &res, &err)) ||
        (rc = made_from_result(c, j->key, &res, &made)) ||
        (rc = put_torrent(c, j->bucket, j->tkey, j->obj.etag, j->obj.mtime, &bytes, &made, &err)) ||
        (rc = mark_ready(c, &j->so, j->tkey, &made, &err))) {
        if (rc == ENOMEM && err.code == 0)
            err_set(&err, rc, "out of memory");
        rc = fail(j->out, &err, rc);
        if (began) {
            err_t ferr = {0};
            if (status_failed(c->status, &j->so, j->out->why, &ferr) != 0)
                log_msg(c->log, LOG_WARNING, "recording FAILED: %s", ferr.msg);
        }
    } else {
        fill_hashes(j->out, &made);
        hand_back(j->torrent, &bytes);
    }
    if (!res.cached && res.piece_length) /* made, and made by reading the object */
        j->out->hashed = j->obj.size;
    free(made.magnet);
    free(made.magnet_v1);
    maker_result_free(&res);
    buf_free(&bytes);
    return rc;
}

static int sync_once(const struct sync_config *c, const char *bucket, const char *key,
                     const struct store_object *known, const char *from_file,
                     struct sync_result *out, struct buf *torrent)
{
    struct store *st = c->maker->store;
    struct job j = {.c = c, .bucket = bucket, .key = key, .torrent = torrent, .out = out};
    struct store_object tobj;
    struct store_meta *tmeta = NULL;
    err_t err = {0};
    char *tkey = NULL;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    out->dry_run = c->dry_run;
    if (sync_is_torrent_key(key)) {
        out->action = SYNC_SKIPPED;
        snprintf(out->why, sizeof(out->why), "a .torrent object gets no torrent of its own");
        return 0;
    }
    if (known)
        j.obj = *known;
    else if ((rc = store_head(st, bucket, key, &j.obj, NULL, &err)))
        return fail(out, &err, rc);
    out->size = j.obj.size;
    if (skip_reason(key, &j.obj, out->why, sizeof(out->why))) {
        out->action = SYNC_SKIPPED;
        return 0;
    }
    size_t kl = strlen(key);
    if ((tkey = malloc(kl + 9)) == NULL || (tmeta = calloc(1, sizeof(*tmeta))) == NULL) {
        err_set(&err, ENOMEM, "out of memory");
        rc = fail(out, &err, ENOMEM);
        goto out;
    }
    snprintf(tkey, kl + 9, "%s.torrent", key);
    j.tkey = tkey;
    j.so = (struct status_object){bucket,
                                  key,
                                  j.obj.etag,
                                  j.obj.size,
                                  j.obj.mtime,
                                  c->source,
                                  c->lease_until ? c->lease_until
                                                 : (int64_t)time(NULL) + SYNC_LEASE_S +
                                                       (int64_t)(j.obj.size / 20000000)};

    int hr = store_head(st, bucket, tkey, &tobj, tmeta, &err);
    if (hr != 0 && hr != ENOENT) {
        rc = fail(out, &err, hr);
        goto out;
    }
    out->action = hr == 0 ? SYNC_REPLACED : SYNC_CREATED;
    if ((hr == 0 && settle_existing(&j, &tobj, tmeta, &rc)) || c->dry_run)
        goto out;
    rc = make_and_publish(&j, from_file);
out:
    hasher_result_free(&j.known);
    free(tmeta);
    free(tkey);
    return out->action == SYNC_FAILED ? (rc ? rc : EIO) : 0;
}

int sync_object(const struct sync_config *c, const char *bucket, const char *key,
                const struct store_object *known, const char *from_file, struct sync_result *out,
                struct buf *torrent)
{
    for (unsigned round = 0;; round++) {
        int rc = sync_once(c, bucket, key, known, from_file, out, torrent);
        if (rc != EBUSY || !c->wait_leases)
            return rc;
        /* another worker hashes this version under a lease that runs: its torrent is what this
         * one would make, so wait for it (READY: up to date; FAILED or an expired lease: ours
         * to take over), polling with a growing pause */
        if (round == 0)
            log_msg(c->log, LOG_INFO, "s3://%s/%s: waiting for another worker: %s", bucket, key,
                    out->why);
        struct timespec pause = {.tv_sec = round < 4 ? 1 << round : 10};
        nanosleep(&pause, NULL);
        known = NULL; /* HEAD again: the version may have changed meanwhile */
    }
}
