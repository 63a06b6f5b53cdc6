/* maker.c — the one torrent maker: hashes from the cache or the store, outer fields from the
 * recipe (docs/DESIGN.md §3, §13). */
#include "s3torrent/maker.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/metainfo.h"
#include "s3torrent/util.h"

static void fingerprint(enum torrent_meta meta, uint64_t plen, char out[64])
{
    snprintf(out, 64, "s3th1/%s/%llu", torrent_meta_name(meta), (unsigned long long)plen);
}

void maker_fingerprint(const struct torrent_recipe *r, uint64_t size, char out[64])
{
    fingerprint(r->meta, r->piece_length ? r->piece_length : torrent_auto_piece_length(size), out);
}

void maker_result_free(struct maker_result *res)
{
    if (res)
        hasher_result_free(&res->hashes);
}

/* The cached hashes of the object, when they are there and fit it. */
static bool from_cache(const struct maker *mk, const char *bucket, const char *key,
                       const struct store_object *obj, const char *fp, struct hasher_result *h)
{
    struct buf b;
    err_t cerr = {0};
    bool ok = false;
    buf_init(&b, TORRENT_MAX_SIZE);
    int rc = mk->cache->get(mk->cache->arg, bucket, key, obj->etag, fp, &b, &cerr);
    if (rc == 0) {
        ok = hasher_result_unpack(b.data, b.len, h, &cerr) == 0 && h->size == obj->size;
        if (!ok) {
            hasher_result_free(h);
            log_msg(mk->log, LOG_WARNING,
                    "torrent cache: s3://%s/%s: unusable entry, hashing "
                    "again: %s",
                    bucket, key, cerr.msg[0] ? cerr.msg : "size differs");
        }
    } else if (rc != ENOENT) {
        log_msg(mk->log, LOG_WARNING, "torrent cache: %s", cerr.msg);
    }
    buf_free(&b);
    return ok;
}

/* Keeps of h what a torrent of meta needs: false (h freed) when that is not there. */
static bool fit(struct hasher_result *h, enum torrent_meta meta)
{
    bool v1 = meta & TORRENT_V1, v2 = meta & TORRENT_V2;
    if ((v1 && h->v1_pieces == NULL) || (v2 && h->v2_layer == NULL)) {
        hasher_result_free(h);
        return false;
    }
    if (!v1) {
        free(h->v1_pieces);
        h->v1_pieces = NULL;
        h->has_v1_padded = false;
    }
    if (!v2) {
        free(h->v2_layer);
        h->v2_layer = NULL;
    }
    return true;
}

/* The cached hashes a torrent of meta at piece length plen needs: its own entry, else a hybrid
 * torrent's (which has both versions). */
static bool from_cache_as(const struct maker *mk, const char *bucket, const char *key,
                          const struct store_object *obj, enum torrent_meta meta, uint64_t plen,
                          struct hasher_result *h)
{
    char fp[64];
    fingerprint(meta, plen, fp);
    if (from_cache(mk, bucket, key, obj, fp, h) && fit(h, meta))
        return true;
    if (meta == TORRENT_HYBRID)
        return false;
    fingerprint(TORRENT_HYBRID, plen, fp);
    return from_cache(mk, bucket, key, obj, fp, h) && fit(h, meta);
}

static void to_cache(const struct maker *mk, const char *bucket, const char *key,
                     const struct store_object *obj, const char *fp, const struct hasher_result *h)
{
    struct buf b;
    err_t cerr = {0};
    buf_init(&b, TORRENT_MAX_SIZE);
    if (hasher_result_pack(h, &b) != 0)
        err_set(&cerr, b.err, "packing hashes: out of memory");
    else
        mk->cache->put(mk->cache->arg, bucket, key, obj->etag, fp, b.data, b.len, &cerr);
    if (cerr.code)
        log_msg(mk->log, LOG_WARNING, "torrent cache: %s", cerr.msg);
    buf_free(&b);
}

/* Copies known into *h when it fits the recipe for an object of size bytes. */
static bool take_known(const struct hasher_result *known, const struct torrent_recipe *r,
                       uint64_t size, uint64_t plen, struct hasher_result *h)
{
    if (known == NULL || known->size != size || known->piece_length != plen ||
        (known->v1_pieces != NULL) != ((r->meta & TORRENT_V1) != 0) ||
        (known->v2_layer != NULL) != ((r->meta & TORRENT_V2) != 0))
        return false;
    *h = *known;
    h->v1_pieces = h->v2_layer = NULL;
    if ((known->v1_pieces && (h->v1_pieces = malloc(20 * known->npieces)) == NULL) ||
        (known->v2_layer && (h->v2_layer = malloc(32 * known->npieces)) == NULL)) {
        hasher_result_free(h);
        return false;
    }
    if (known->v1_pieces)
        memcpy(h->v1_pieces, known->v1_pieces, 20 * known->npieces);
    if (known->v2_layer)
        memcpy(h->v2_layer, known->v2_layer, 32 * known->npieces);
    return true;
}

/* maker_make, maker_cached and maker_make_known: with cached_only, a cache miss is ENOENT and
 * nothing is read; hashes learned from known go to the cache as hashed ones do, so the next
 * call needs neither. */
static int make(const struct maker *mk, const char *bucket, const char *key,
                const struct store_object *obj, const struct torrent_recipe *r, struct source *src,
                const struct hasher_result *known, bool cached_only, struct buf *out,
                struct maker_result *res, err_t *err)
{
    struct maker_result mine, *x = res ? res : &mine;
    struct source *opened = NULL;
    struct torrent_opts o;
    char *ws = NULL, fp[64];
    const char *slash = strrchr(key, '/'), *name = slash ? slash + 1 : key;
    bool cache = mk->cache && src == NULL;
    int rc;

    memset(x, 0, sizeof(*x));
    if ((rc = torrent_check_name(name, err)))
        return err_prefix(err, "s3://%s/%s", bucket, key);
    if (obj->size == 0)
        return err_set(err, EINVAL, "s3://%s/%s: zero-byte object: nothing to share", bucket, key);
    if ((rc = torrent_recipe_opts(r, key, obj->mtime, &o, &ws)))
        return err_set(err, rc, "out of memory");
    o.threads = mk->threads;
    maker_fingerprint(r, obj->size, fp);
    uint64_t plen = r->piece_length ? r->piece_length : torrent_auto_piece_length(obj->size);
    bool learned = take_known(known, r, obj->size, plen, &x->hashes);
    x->cached =
        learned || (cache && from_cache_as(mk, bucket, key, obj, r->meta, plen, &x->hashes));
    if (learned && cache)
        to_cache(mk, bucket, key, obj, fp, &x->hashes);
    if (!x->cached && cached_only) {
        rc = ENOENT;
        goto out;
    }
    if (!x->cached) {
        if (src == NULL &&
            (rc = store_open_source(mk->store, bucket, key, obj, mk->parallel, &opened, err)))
            goto out;
        if ((rc = torrent_hash(src ? src : opened, &o, &x->hashes, err)))
            goto out;
        if (cache)
            to_cache(mk, bucket, key, obj, fp, &x->hashes);
    }
    x->v1 = r->meta & TORRENT_V1;
    x->v2 = r->meta & TORRENT_V2;
    x->piece_length = x->hashes.piece_length;
    x->npieces = x->hashes.npieces;
    rc = torrent_encode_hashed(name, &o, &x->hashes, out, x->v1 ? x->ih1 : NULL,
                               x->v2 ? x->ih2 : NULL, err);
out:
    source_free(opened);
    free(ws);
    if (rc || res == NULL)
        maker_result_free(x);
    return rc;
}

int maker_make(const struct maker *mk, const char *bucket, const char *key,
               const struct store_object *obj, const struct torrent_recipe *r, struct source *src,
               struct buf *out, struct maker_result *res, err_t *err)
{
    return make(mk, bucket, key, obj, r, src, NULL, false, out, res, err);
}

int maker_cached(const struct maker *mk, const char *bucket, const char *key,
                 const struct store_object *obj, const struct torrent_recipe *r, struct buf *out,
                 struct maker_result *res, err_t *err)
{
    return make(mk, bucket, key, obj, r, NULL, NULL, true, out, res, err);
}

int maker_make_known(const struct maker *mk, const char *bucket, const char *key,
                     const struct store_object *obj, const struct torrent_recipe *r,
                     const struct hasher_result *known, struct buf *out, struct maker_result *res,
                     err_t *err)
{
    return make(mk, bucket, key, obj, r, NULL, known, false, out, res, err);
}

/* --- multi-file torrents composed from the cache --- */

static bool files_known(void *arg, size_t i, enum torrent_meta need, uint64_t plen,
                        struct hasher_result *h)
{
    const struct maker_files *mf = arg;
    const char *bucket, *key;
    const struct store_object *obj;
    if (mf->mk->cache == NULL || !store_prefix_part(&mf->files[i], &bucket, &key, &obj))
        return false;
    return from_cache_as(mf->mk, bucket, key, obj, need, plen, h);
}

static void files_learned(void *arg, size_t i, const struct hasher_result *h)
{
    const struct maker_files *mf = arg;
    const char *bucket, *key;
    const struct store_object *obj;
    char fp[64];
    if (mf->mk->cache == NULL || !store_prefix_part(&mf->files[i], &bucket, &key, &obj))
        return;
    /* what the file's own torrent of these versions hashes (its v1 pieces are unpadded; the
     * padded last one rides along) */
    fingerprint(
        (enum torrent_meta)((h->v1_pieces ? TORRENT_V1 : 0) | (h->v2_layer ? TORRENT_V2 : 0)),
        h->piece_length, fp);
    to_cache(mf->mk, bucket, key, obj, fp, h);
}

void maker_files_hooks(const struct maker_files *mf, struct torrent_opts *o)
{
    if (mf->mk->cache == NULL)
        return;
    o->known = files_known;
    o->learned = files_learned;
    o->known_arg = (void *)mf;
}

/* --- the torrent of a prefix --- */

/* The cache key of a prefix's torrent: etag, the hex SHA-256 of the name and the listing (every
 * path, size and ETag, in torrent order); fp, "s3tset1/" and 32 hex digits of a digest of what
 * else decides its bytes (the info dict's options and the outer digest). Returns 0 or EIO. */
static int set_key(const char *name, const struct source_dir *dir, const struct torrent_opts *o,
                   char etag[65], char fp[64])
{
    uint8_t md[32];
    char outer[TORRENT_OUTER_HEX], opts[256];
    unsigned len;
    int rc = EIO;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c == NULL || torrent_outer_digest(o, outer) != 0 ||
        EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(c, name, strlen(name) + 1) != 1)
        goto out;
    for (size_t i = 0; i < dir->n; i++) {
        const char *bucket, *key;
        const struct store_object *obj;
        char size[24];
        const struct source_part *p = &dir->parts[i];
        snprintf(size, sizeof(size), "%llu", (unsigned long long)p->size);
        if (!store_prefix_part(p, &bucket, &key, &obj) ||
            EVP_DigestUpdate(c, p->path, strlen(p->path) + 1) != 1 ||
            EVP_DigestUpdate(c, size, strlen(size) + 1) != 1 ||
            EVP_DigestUpdate(c, obj->etag, strlen(obj->etag) + 1) != 1)
            goto out;
    }
    if (EVP_DigestFinal_ex(c, md, &len) != 1)
        goto out;
    util_hex(md, 32, etag);
    snprintf(opts, sizeof(opts), "%s\n%s\n%llu\n%d\n%d\n%s", outer, torrent_meta_name(o->meta),
             (unsigned long long)o->piece_length, o->pad, o->private_, o->source ? o->source : "");
    if (EVP_Digest(opts, strlen(opts), md, NULL, EVP_sha256(), NULL) != 1)
        goto out;
    memcpy(fp, "s3tset1/", 8);
    util_hex(md, 16, fp + 8);
    rc = 0;
out:
    EVP_MD_CTX_free(c);
    return rc;
}

/* The part of a prefix torrent's making both calls share: the options with mk's threads and
 * dir's reads, the files in torrent order, and the cache key (*keyed false: no cache, or no key).
 * Returns 0 or an errno with err set (a path no torrent can hold). */
static int prefix_prepare(const struct maker *mk, const char *name, struct source_dir *dir,
                          const struct torrent_opts *o, struct torrent_opts *to,
                          struct maker_result *x, char etag[65], char fp[64], bool *keyed,
                          err_t *err)
{
    int rc;
    memset(x, 0, sizeof(*x));
    *to = *o;
    to->threads = mk->threads;
    to->span = dir->span;
    to->parallel = dir->parallel;
    x->v1 = o->meta & TORRENT_V1;
    x->v2 = o->meta & TORRENT_V2;
    if ((rc = torrent_files_order(dir->parts, dir->n, o->meta, o->pad, err)) != 0) {
        err_prefix(err, "%s/", dir->display); /* err names the file */
        return rc;
    }
    *keyed = mk->cache && set_key(name, dir, to, etag, fp) == 0;
    return 0;
}

int maker_prefix_cached(const struct maker *mk, const char *bucket, const char *prefix,
                        const char *name, struct source_dir *dir, const struct torrent_opts *o,
                        struct buf *out, struct maker_result *res, err_t *err)
{
    struct maker_result mine, *x = res ? res : &mine;
    struct torrent_opts to;
    struct metainfo *m = NULL;
    struct buf b;
    char etag[65], fp[64];
    bool keyed;
    err_t cerr = {0};
    int rc = prefix_prepare(mk, name, dir, o, &to, x, etag, fp, &keyed, err);
    if (rc != 0 || !keyed)
        return rc ? rc : ENOENT;
    buf_init(&b, TORRENT_MAX_SIZE);
    int g = mk->cache->get(mk->cache->arg, bucket, prefix, etag, fp, &b, &cerr);
    if (g == 0 && metainfo_parse(b.data, b.len, &m, &cerr) == 0) {
        memcpy(x->ih1, m->ih1, sizeof(x->ih1));
        memcpy(x->ih2, m->ih2, sizeof(x->ih2));
        x->cached = true;
        metainfo_free(m);
        rc = buf_put(out, b.data, b.len) ? err_set(err, ENOMEM, "out of memory") : 0;
    } else {
        if (g != ENOENT)
            log_msg(mk->log, LOG_WARNING, "torrent cache: s3://%s/%s: %s", bucket, prefix,
                    cerr.msg[0] ? cerr.msg : "unusable entry, hashing again");
        rc = ENOENT;
    }
    buf_free(&b);
    return rc;
}

int maker_make_prefix(const struct maker *mk, const char *bucket, const char *prefix,
                      const char *name, struct source_dir *dir, const struct torrent_opts *o,
                      struct buf *out, struct maker_result *res, err_t *err)
{
    struct maker_result mine, *x = res ? res : &mine;
    struct maker_files mf = {mk, dir->parts};
    struct torrent_opts to;
    struct buf b;
    char etag[65], fp[64];
    bool keyed;
    int rc = maker_prefix_cached(mk, bucket, prefix, name, dir, o, out, x, err);
    if (rc != ENOENT)
        return rc;
    if ((rc = prefix_prepare(mk, name, dir, o, &to, x, etag, fp, &keyed, err)) != 0)
        return rc;
    buf_init(&b, TORRENT_MAX_SIZE);
    maker_files_hooks(&mf, &to);
    if ((rc = torrent_create_files(name, dir->parts, dir->n, &to, &b, x->ih1, x->ih2, err)) != 0)
        goto out;
    if (keyed) {
        err_t cerr = {0};
        if (mk->cache->put(mk->cache->arg, bucket, prefix, etag, fp, b.data, b.len, &cerr) != 0)
            log_msg(mk->log, LOG_WARNING, "torrent cache: %s", cerr.msg);
    }
    rc = buf_put(out, b.data, b.len) ? err_set(err, ENOMEM, "out of memory") : 0;
out:
    buf_free(&b);
    return rc;
}
