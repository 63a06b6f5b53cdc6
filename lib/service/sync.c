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

/* What a status item records of the torrent m, named tkey (ih1, ih2: room for the hex). */
static void status_of(const struct made *m, const char *tkey, char ih1[41], char ih2[65],
                      struct status_torrent *t)
{
    *t = (struct status_torrent){
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
    };
}

/* READY, with everything §6 records about the torrent. */
static int mark_ready(const struct sync_config *c, const struct status_object *so, const char *tkey,
                      const struct made *m, err_t *err)
{
    if (c->status == NULL || c->dry_run)
        return 0;
    char ih1[41], ih2[65];
    struct status_torrent t;
    status_of(m, tkey, ih1, ih2, &t);
    t.runs = c->known ? c->known_runs : 0;
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

/* True when have (may be NULL), a .torrent's outer digest, is that of the outer fields the
 * recipe gives this object now (docs/DESIGN.md §4): it is up to date without being read. */
static bool outer_is(const struct job *j, const char *have)
{
    char want[TORRENT_OUTER_HEX];
    struct torrent_opts o;
    char *ws = NULL;
    bool same = have && torrent_recipe_opts(j->c->recipe, j->key, j->obj.mtime, &o, &ws) == 0 &&
                torrent_outer_digest(&o, want) == 0 && strcmp(have, want) == 0;
    free(ws);
    return same;
}

static bool same_outer(const struct job *j, const struct store_meta *tmeta)
{
    return outer_is(j, store_meta_get(tmeta, META_OUTER));
}

/* --- what this host's cache knows of the .torrent objects it wrote or found up to date ---
 *
 * The entry (bucket, KEY.torrent, that .torrent's ETag, "sync-seen:TABLE") says the .torrent of
 * that ETag is ours for the object's version (source ETag, Last-Modified), with that outer
 * digest and those info-hashes, and that TABLE ("" with no status table) records it READY. A
 * listing gives both ETags, so an up-to-date object then costs no request of its own
 * (docs/DESIGN.md §4); whatever the entry does not match takes the HEAD path. */
#define SEEN_FIELDS 5

static void seen_fingerprint(const struct sync_config *c, char *fp, size_t n)
{
    snprintf(fp, n, "sync-seen:%s", c->status ? c->status->table : "");
}

/* Records that the .torrent of ETag tetag, with outer digest outer, is up to date for j's object
 * (j->out has its info-hashes) and READY in the status table. A failure only costs a HEAD. */
static void remember(const struct job *j, const char *tetag, const char *outer)
{
    const struct maker_cache *mc = j->c->maker->cache;
    if (mc == NULL || j->c->dry_run || tetag == NULL || outer == NULL)
        return;
    char fp[320];
    struct buf v;
    err_t err = {0};
    seen_fingerprint(j->c, fp, sizeof(fp));
    buf_init(&v, 4096);
    buf_printf(&v, "%s\n%lld\n%s\n%s\n%s\n", j->obj.etag, (long long)j->obj.mtime, outer,
               j->out->info_hash, j->out->info_hash_v2);
    if (v.err == 0 && mc->put(mc->arg, j->bucket, j->tkey, tetag, fp, v.data, v.len, &err) != 0)
        log_msg(j->c->log, LOG_WARNING, "cache: %s", err.msg);
    buf_free(&v);
}

/* True when the cache knows the listed .torrent (ETag tetag) as up to date for j's object and
 * recipe, and READY in the status table: j->out then says up-to-date, with no request made. */
static bool seen_up_to_date(struct job *j, const char *tetag)
{
    const struct maker_cache *mc = j->c->maker->cache;
    char fp[320], *f[SEEN_FIELDS];
    size_t n = 0;
    struct buf v;
    err_t err = {0};
    bool ok = false;
    if (mc == NULL || tetag == NULL || tetag[0] == '\0')
        return false;
    seen_fingerprint(j->c, fp, sizeof(fp));
    buf_init(&v, 4096);
    if (mc->get(mc->arg, j->bucket, j->tkey, tetag, fp, &v, &err) != 0 || buf_put(&v, "", 1) != 0)
        goto out;
    for (char *s = (char *)v.data, *nl; n < SEEN_FIELDS && (nl = strchr(s, '\n')); s = nl + 1) {
        *nl = '\0';
        f[n++] = s;
    }
    ok = n == SEEN_FIELDS && strcmp(f[0], j->obj.etag) == 0 &&
         (j->c->recipe->no_date || strtoll(f[1], NULL, 10) == j->obj.mtime) && outer_is(j, f[2]) &&
         strlen(f[3]) < sizeof(j->out->info_hash) && strlen(f[4]) < sizeof(j->out->info_hash_v2) &&
         (f[3][0] || f[4][0]);
    if (ok) {
        j->out->action = SYNC_UP_TO_DATE;
        snprintf(j->out->info_hash, sizeof(j->out->info_hash), "%s", f[3]);
        snprintf(j->out->info_hash_v2, sizeof(j->out->info_hash_v2), "%s", f[4]);
    }
out:
    buf_free(&v);
    return ok;
}

/* The ETag S3 gives a single-part PUT of bytes (their MD5, in hex): what a later listing shows
 * for the .torrent just written, unless the bucket encrypts with KMS (then the HEAD path
 * learns the real one). */
static void put_etag(const struct buf *bytes, char out[33])
{
    unsigned char md[16];
    unsigned int mdlen = 0;
    if (EVP_Digest(bytes->data, bytes->len, md, &mdlen, EVP_md5(), NULL) && mdlen == 16)
        util_hex(md, 16, out);
    else
        out[0] = '\0';
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
        if (*rc == 0 && same) /* and READY: it was, or was recorded just now */
            remember(j, tobj->etag, store_meta_get(tmeta, META_OUTER));
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
        char tetag[33], outer[TORRENT_OUTER_HEX];
        fill_hashes(j->out, &made);
        hand_back(j->torrent, &bytes);
        put_etag(&bytes, tetag);
        if (tetag[0] && torrent_outer_digest_of(bytes.data, bytes.len, outer) == 0)
            remember(j, tetag, outer);
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
                     const struct store_object *known, const char *listed_tetag,
                     const char *from_file, struct sync_result *out, struct buf *torrent)
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

    if (known && listed_tetag && torrent == NULL && from_file == NULL &&
        seen_up_to_date(&j, listed_tetag))
        goto out;
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

int sync_listed(const struct sync_config *c, const char *bucket, const char *key,
                const struct store_object *known, const char *torrent_etag, const char *from_file,
                struct sync_result *out, struct buf *torrent)
{
    for (unsigned round = 0;; round++) {
        int rc = sync_once(c, bucket, key, known, torrent_etag, from_file, out, torrent);
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
        torrent_etag = NULL;
    }
}

int sync_object(const struct sync_config *c, const char *bucket, const char *key,
                const struct store_object *known, const char *from_file, struct sync_result *out,
                struct buf *torrent)
{
    return sync_listed(c, bucket, key, known, NULL, from_file, out, torrent);
}

/* Prefix torrents (docs/DESIGN.md §4, §6): PREFIX.torrent, the multi-file torrent of the objects
 * below PREFIX/ (its own .torrent objects left out), kept up to date by the digest of the set of
 * (key, ETag) it covers, which the listing alone gives. */

#define META_SOURCE_SET   "s3torrent-source-set"
#define META_SOURCE_COUNT "s3torrent-source-count"

size_t sync_rule_prefix(const char *key, unsigned depth)
{
    size_t len = 0;
    if (depth == 0 || sync_is_torrent_key(key))
        return 0;
    for (unsigned d = 0; d < depth; d++) {
        const char *slash = strchr(key + len, '/');
        if (slash == NULL || slash == key + len)
            return 0; /* too shallow, or an empty segment: no prefix a torrent can be named after */
        len = (size_t)(slash - key) + 1;
    }
    return key[len] ? len : 0; /* "a/" itself is a directory marker, not a key below it */
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const struct sync_set_file *)a)->rel, ((const struct sync_set_file *)b)->rel);
}

int sync_set_digest(struct sync_set_file *files, size_t n, char out[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char d[32];
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    if (n > 1) /* qsort takes no NULL, even for none */
        qsort(files, n, sizeof(*files), cmp_file);
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(md, files[i].rel, strlen(files[i].rel) + 1) &&
             EVP_DigestUpdate(md, files[i].etag, strlen(files[i].etag)) &&
             EVP_DigestUpdate(md, "\n", 1);
    ok = ok && EVP_DigestFinal_ex(md, d, NULL);
    EVP_MD_CTX_free(md);
    if (!ok)
        return ENOMEM;
    util_hex(d, 32, out);
    return 0;
}

/* Appends s to a list of *n strings at *list. Returns false when out of memory. */
static bool push_str(const char ***list, size_t *n, const char *s)
{
    const char **l = realloc(*list, (*n + 1) * sizeof(*l));
    if (l == NULL)
        return false;
    l[(*n)++] = s;
    *list = l;
    return true;
}

int sync_set_diff(const struct sync_set_file *now, size_t n, struct sync_set_file *before,
                  size_t nb, struct sync_set_diff *out)
{
    size_t i = 0, j = 0;
    bool ok = true;
    memset(out, 0, sizeof(*out));
    if (nb > 1)
        qsort(before, nb, sizeof(*before), cmp_file);
    while (ok && (i < n || j < nb)) {
        int c = i == n ? 1 : j == nb ? -1 : strcmp(now[i].rel, before[j].rel);
        if (c < 0)
            ok = push_str(&out->added, &out->nadded, now[i++].rel);
        else if (c > 0)
            ok = push_str(&out->removed, &out->nremoved, before[j++].rel);
        else {
            if (strcmp(now[i].etag, before[j].etag) != 0)
                ok = push_str(&out->changed, &out->nchanged, now[i].rel);
            i++;
            j++;
        }
    }
    if (!ok) {
        sync_set_diff_free(out);
        return ENOMEM;
    }
    return 0;
}

void sync_set_diff_free(struct sync_set_diff *d)
{
    free(d->added);
    free(d->changed);
    free(d->removed);
    memset(d, 0, sizeof(*d));
}

/* One prefix being synced. */
struct set_job {
    const struct sync_config *c;
    const char *bucket, *prefix;
    char *tkey, *name_key;       /* PREFIX.torrent; the prefix without its '/' */
    struct source_dir dir;       /* store_prefix_scan's */
    struct sync_set_file *files; /* dir's, sorted by relative key */
    char digest[65];
    struct status_object so;
    struct status_set set;
    struct sync_set_file *before; /* the item's files map (strings owned) */
    size_t nbefore;
    struct sync_set_diff diff;
    char **keys; /* the diff's keys, full (prefix + relative) */
    size_t nkeys;
    struct sync_result *out;
};

static void left_out(void *arg, const char *key, const char *why)
{
    const struct set_job *j = arg;
    log_msg(j->c->log, LOG_WARNING, "s3://%s/%s: left out of %s: %s", j->bucket, key, j->tkey, why);
}

static int take_before(void *arg, const char *rel, const char *etag)
{
    struct set_job *j = arg;
    if (j->nbefore % 64 == 0) {
        struct sync_set_file *b = realloc(j->before, (j->nbefore + 64) * sizeof(*b));
        if (b == NULL)
            return ENOMEM;
        j->before = b;
    }
    char *r = strdup(rel), *e = strdup(etag);
    if (r == NULL || e == NULL) {
        free(r);
        free(e);
        return ENOMEM;
    }
    j->before[j->nbefore++] = (struct sync_set_file){r, e};
    return 0;
}

/* The full keys of the diff's list l (n of them) into j->keys, and *full pointing at them. */
static bool full_keys(struct set_job *j, const char **l, size_t n, const char *const **full)
{
    size_t pl = strlen(j->prefix), first = j->nkeys;
    for (size_t i = 0; i < n; i++) {
        char *k = malloc(pl + strlen(l[i]) + 1);
        if (k == NULL)
            return false;
        memcpy(k, j->prefix, pl);
        strcpy(k + pl, l[i]);
        j->keys[j->nkeys++] = k;
    }
    *full = (const char *const *)j->keys + first;
    return true;
}

/* Which change made the torrent stale, from the item's files map (none: nothing to say): into
 * j->set's lists and out->why. A failure only costs the explanation. */
static void explain(struct set_job *j)
{
    err_t err = {0};
    int rc = status_set_files(j->c->status, j->bucket, j->prefix, take_before, j, &err);
    if (rc != 0) {
        if (rc != ENOENT)
            log_msg(j->c->log, LOG_INFO, "s3://%s/%s: which keys changed is unknown: %s", j->bucket,
                    j->prefix, rc == ENOMEM ? "out of memory" : err.msg);
        return;
    }
    if (sync_set_diff(j->files, j->dir.n, j->before, j->nbefore, &j->diff) != 0)
        return;
    size_t total = j->diff.nadded + j->diff.nchanged + j->diff.nremoved;
    if ((j->keys = calloc(total ? total : 1, sizeof(*j->keys))) == NULL ||
        !full_keys(j, j->diff.added, j->diff.nadded, &j->set.added) ||
        !full_keys(j, j->diff.changed, j->diff.nchanged, &j->set.changed) ||
        !full_keys(j, j->diff.removed, j->diff.nremoved, &j->set.removed))
        return;
    j->set.nadded = j->diff.nadded;
    j->set.nchanged = j->diff.nchanged;
    j->set.nremoved = j->diff.nremoved;
    struct buf why;
    buf_init(&why, sizeof(j->out->why) - 1);
    const struct {
        const char *what;
        const char *const *keys;
        size_t n;
    } parts[] = {{"new", j->set.added, j->set.nadded},
                 {"changed", j->set.changed, j->set.nchanged},
                 {"removed", j->set.removed, j->set.nremoved}};
    for (size_t p = 0; p < 3; p++)
        for (size_t i = 0; i < parts[p].n; i++)
            buf_printf(&why, "%s%s%s%s",
                       why.len == 0 ? ""
                       : i == 0     ? "; "
                                    : ", ",
                       i == 0 ? parts[p].what : "", i == 0 ? " " : "", parts[p].keys[i]);
    snprintf(j->out->why, sizeof(j->out->why), "%.*s", (int)why.len, (const char *)why.data);
    buf_free(&why);
}

/* True when the prefix's item says READY for this set. */
static bool set_ready(const struct set_job *j)
{
    struct status_item *it = calloc(1, sizeof(*it));
    bool ready = it && status_get(j->c->status, j->bucket, j->prefix, it, NULL) == 0 &&
                 strcmp(it->status, "READY") == 0 && strcmp(it->etag, j->digest) == 0;
    free(it);
    return ready;
}

/* READY for the set, with the torrent bytes (parsed here) and the files map. */
static int set_mark_ready(struct set_job *j, const struct buf *bytes, err_t *err)
{
    struct metainfo *m = NULL;
    struct made made = {0};
    struct status_torrent t;
    char ih1[41], ih2[65];
    int rc = metainfo_parse(bytes->data, bytes->len, &m, err);
    if (rc == 0 && (rc = made_from_metainfo(m, &made)) != 0)
        err_set(err, rc, "out of memory");
    if (rc == 0) {
        fill_hashes(j->out, &made);
        status_of(&made, j->tkey, ih1, ih2, &t);
        j->set.rel = NULL;
        /* the files map: relative keys and ETags, side by side */
        const char **rel = calloc(j->dir.n + 1, sizeof(*rel)),
                   **etags = calloc(j->dir.n + 1, sizeof(*etags));
        for (size_t i = 0; rel && etags && i < j->dir.n; i++) {
            rel[i] = j->files[i].rel;
            etags[i] = j->files[i].etag;
        }
        if (rel && etags) {
            j->set.rel = rel;
            j->set.etags = etags;
            j->set.nfiles = j->dir.n;
        }
        rc = j->c->status ? status_set_ready(j->c->status, &j->so, &t, &j->set, err) : 0;
        if (rc == EEXIST) {
            log_msg(j->c->log, LOG_INFO, "s3://%s/%s: %s", j->bucket, j->prefix, err->msg);
            rc = 0; /* another listing's item came first: it is not ours to change */
        }
        free(rel);
        free(etags);
        j->set.rel = j->set.etags = NULL;
        j->set.nfiles = 0;
    }
    free(made.magnet);
    free(made.magnet_v1);
    metainfo_free(m);
    return rc;
}

static int put_set_torrent(struct set_job *j, const struct buf *bytes, const uint8_t *ih1,
                           const uint8_t *ih2, err_t *err)
{
    char h1[41], h2[65], mt[24], count[24], outer[TORRENT_OUTER_HEX];
    struct http_header meta[7];
    size_t n = 0;
    meta[n++] = (struct http_header){META_SOURCE_SET, j->digest};
    snprintf(count, sizeof(count), "%zu", j->dir.n);
    meta[n++] = (struct http_header){META_SOURCE_COUNT, count};
    snprintf(mt, sizeof(mt), "%lld", (long long)j->dir.mtime);
    meta[n++] = (struct http_header){META_SOURCE_MTIME, mt};
    if (ih1)
        meta[n++] = (struct http_header){META_INFOHASH, util_hex(ih1, 20, h1)};
    if (ih2)
        meta[n++] = (struct http_header){META_INFOHASH_V2, util_hex(ih2, 32, h2)};
    meta[n++] = (struct http_header){META_VERSION, S3T_VERSION};
    if (torrent_outer_digest_of(bytes->data, bytes->len, outer) == 0)
        meta[n++] = (struct http_header){META_OUTER, outer};
    return store_put(j->c->maker->store, j->bucket, j->tkey, bytes->data, bytes->len,
                     "application/x-bittorrent", meta, n, err);
}

/* Makes the set's torrent and publishes it under the prefix's lease: HASHING, the torrent with
 * its metadata, READY; a failure after HASHING is recorded FAILED. */
static int set_make(struct set_job *j)
{
    const struct sync_config *c = j->c;
    struct maker_files mf = {c->maker, j->dir.parts};
    struct maker_set ms = {.ws_key = j->name_key,
                           .files = &mf,
                           .bucket = j->bucket,
                           .prefix = j->prefix,
                           .threads = c->maker->threads};
    uint8_t ih1[20], ih2[32];
    struct buf bytes;
    err_t err = {0};
    bool began = false;
    int rc = 0;
    if (c->status) {
        int sr = status_set_begin(c->status, &j->so, &j->set, &err);
        if (sr == EEXIST) { /* another worker made this very set meanwhile */
            j->out->action = SYNC_UP_TO_DATE;
            j->out->why[0] = '\0';
            return 0;
        }
        if (sr != 0)
            return fail(j->out, &err, sr);
        began = true;
    }
    buf_init(&bytes, TORRENT_MAX_SIZE);
    if ((rc = maker_make_set(&ms, &j->dir, j->dir.name, c->recipe, &bytes,
                             c->recipe->meta & TORRENT_V1 ? ih1 : NULL,
                             c->recipe->meta & TORRENT_V2 ? ih2 : NULL, &err)) ||
        (rc = put_set_torrent(j, &bytes, c->recipe->meta & TORRENT_V1 ? ih1 : NULL,
                              c->recipe->meta & TORRENT_V2 ? ih2 : NULL, &err)) ||
        (rc = set_mark_ready(j, &bytes, &err))) {
        rc = fail(j->out, &err, rc);
        if (began) {
            err_t ferr = {0};
            if (status_set_failed(c->status, &j->so, &j->set, j->out->why, &ferr) != 0)
                log_msg(c->log, LOG_WARNING, "recording FAILED: %s", ferr.msg);
        }
    } else {
        j->out->hashed = j->out->size; /* at most: the cache may have given some files */
    }
    buf_free(&bytes);
    return rc;
}

/* Settles an existing PREFIX.torrent of this set (its source-set and outer digest are ours):
 * up to date; READY recorded when the item does not say so yet. Returns the errno. */
static int set_up_to_date(struct set_job *j, const struct store_object *tobj,
                          const struct store_meta *tmeta)
{
    const char *h1 = store_meta_get(tmeta, META_INFOHASH);
    const char *h2 = store_meta_get(tmeta, META_INFOHASH_V2);
    struct buf bytes;
    err_t err = {0};
    int rc = 0;
    j->out->action = SYNC_UP_TO_DATE;
    snprintf(j->out->info_hash, sizeof(j->out->info_hash), "%s", h1 ? h1 : "");
    snprintf(j->out->info_hash_v2, sizeof(j->out->info_hash_v2), "%s", h2 ? h2 : "");
    if (j->c->status == NULL || j->c->dry_run || set_ready(j))
        return 0;
    buf_init(&bytes, TORRENT_MAX_SIZE);
    if ((rc = store_get_all(j->c->maker->store, j->bucket, j->tkey, tobj->etag, &bytes, &err)) ||
        (rc = set_mark_ready(j, &bytes, &err)))
        rc = fail(j->out, &err, rc);
    buf_free(&bytes);
    return rc;
}

static int set_once(const struct sync_config *c, const char *bucket, const char *prefix,
                    struct sync_result *out)
{
    static const char *const exclude[] = {"*.torrent"}; /* sync's own outputs: docs/DESIGN.md §4 */
    struct set_job j = {.c = c, .bucket = bucket, .prefix = prefix, .out = out};
    struct store_meta *tmeta = calloc(1, sizeof(*tmeta));
    struct store_object tobj;
    char outer[TORRENT_OUTER_HEX];
    err_t err = {0};
    size_t pl = strlen(prefix);
    int rc = 0;

    memset(out, 0, sizeof(*out));
    out->dry_run = c->dry_run;
    if (pl < 2 || prefix[pl - 1] != '/') {
        err_set(&err, EINVAL, "s3://%s/%s: a prefix torrent needs a prefix ending in '/'", bucket,
                prefix);
        rc = fail(out, &err, EINVAL);
        goto out;
    }
    if (tmeta == NULL || (j.tkey = malloc(pl + 8)) == NULL ||
        (j.name_key = strndup(prefix, pl - 1)) == NULL) {
        err_set(&err, ENOMEM, "out of memory");
        rc = fail(out, &err, ENOMEM);
        goto out;
    }
    snprintf(j.tkey, pl + 8, "%s.torrent", j.name_key);
    if ((rc = store_prefix_scan(c->maker->store, bucket, prefix, NULL, 0, exclude, 1, left_out, &j,
                                &j.dir, &err)) ||
        (j.dir.n && (j.files = calloc(j.dir.n, sizeof(*j.files))) == NULL && (rc = ENOMEM))) {
        if (rc == ENOMEM && err.code == 0)
            err_set(&err, ENOMEM, "out of memory");
        rc = fail(out, &err, rc);
        goto out;
    }
    for (size_t i = 0; i < j.dir.n; i++) {
        const char *b, *k;
        const struct store_object *o;
        store_prefix_part(&j.dir.parts[i], &b, &k, &o);
        j.files[i] = (struct sync_set_file){j.dir.parts[i].path, o->etag};
        out->size += o->size;
    }
    if (sync_set_digest(j.files, j.dir.n, j.digest) != 0) {
        err_set(&err, ENOMEM, "out of memory");
        rc = fail(out, &err, ENOMEM);
        goto out;
    }
    const char *name_bad = NULL;
    if (torrent_check_name(j.dir.name, &err) != 0)
        name_bad = err.msg;
    if (name_bad || out->size == 0 || strlen(j.tkey) > S3_MAX_KEY) {
        out->action = SYNC_SKIPPED;
        snprintf(out->why, sizeof(out->why), "%s",
                 name_bad         ? name_bad
                 : out->size == 0 ? "no byte below the prefix: nothing to share"
                                  : "PREFIX.torrent would pass S3's key limit");
        goto out;
    }
    if ((rc = maker_set_outer(&j.dir, j.dir.name, c->recipe, j.name_key, outer, &err))) {
        rc = fail(out, &err, rc);
        goto out;
    }
    j.so = (struct status_object){bucket,
                                  prefix,
                                  j.digest,
                                  out->size,
                                  j.dir.mtime,
                                  c->source,
                                  c->lease_until ? c->lease_until
                                                 : (int64_t)time(NULL) + SYNC_LEASE_S +
                                                       (int64_t)(out->size / 20000000)};
    j.set.file_count = j.dir.n;
    int hr = store_head(c->maker->store, bucket, j.tkey, &tobj, tmeta, &err);
    if (hr != 0 && hr != ENOENT) {
        rc = fail(out, &err, hr);
        goto out;
    }
    const char *have = hr == 0 ? store_meta_get(tmeta, META_SOURCE_SET) : NULL;
    const char *have_outer = hr == 0 ? store_meta_get(tmeta, META_OUTER) : NULL;
    if (have && strcmp(have, j.digest) == 0 && have_outer && strcmp(have_outer, outer) == 0) {
        rc = set_up_to_date(&j, &tobj, tmeta);
        goto out;
    }
    out->action = hr == 0 ? SYNC_REPLACED : SYNC_CREATED;
    if (hr == 0 && c->status)
        explain(&j);
    if (!c->dry_run)
        rc = set_make(&j);
out:
    for (size_t i = 0; i < j.nkeys; i++)
        free(j.keys[i]);
    free(j.keys);
    sync_set_diff_free(&j.diff);
    for (size_t i = 0; i < j.nbefore; i++) {
        free((char *)j.before[i].rel);
        free((char *)j.before[i].etag);
    }
    free(j.before);
    free(j.files);
    source_dir_free(&j.dir);
    free(j.tkey);
    free(j.name_key);
    free(tmeta);
    return out->action == SYNC_FAILED ? (rc ? rc : EIO) : 0;
}

int sync_prefix(const struct sync_config *c, const char *bucket, const char *prefix,
                struct sync_result *out)
{
    for (unsigned round = 0;; round++) {
        int rc = set_once(c, bucket, prefix, out);
        if (rc != EBUSY || !c->wait_leases)
            return rc;
        if (round == 0)
            log_msg(c->log, LOG_INFO, "s3://%s/%s: waiting for another worker: %s", bucket, prefix,
                    out->why);
        struct timespec pause = {.tv_sec = round < 4 ? 1 << round : 10};
        nanosleep(&pause, NULL);
    }
}

int sync_ruled_prefix(const struct sync_config *c, const char *bucket, const char *key,
                      struct sync_result *out)
{
    size_t len = sync_rule_prefix(key, c->prefix_depth);
    char *prefix = len ? strndup(key, len) : NULL;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    out->action = SYNC_SKIPPED;
    if (len && prefix == NULL) {
        err_t err = {0};
        err_set(&err, ENOMEM, "out of memory");
        return fail(out, &err, ENOMEM);
    }
    if (prefix)
        rc = sync_prefix(c, bucket, prefix, out);
    free(prefix);
    return rc;
}
