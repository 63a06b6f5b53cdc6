/* torrent.c — builds torrents exactly as docs/DESIGN.md §3 fixes them. Every byte but the hashes
 * is decided by (name, size, options), so the same encoder also measures the size up front. */
#include "s3torrent/torrent.h"
#include "s3torrent/bencode.h"
#include "s3torrent/merkle.h"
#include "s3torrent/uri.h"
#include "s3torrent/version.h"
#include "s3torrent/util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t torrent_auto_piece_length(uint64_t size)
{
    uint64_t p = 256u * 1024;
    while (p < 16u * 1024 * 1024 && (size + p - 1) / p > 2048)
        p <<= 1;
    return p;
}

int torrent_parse_meta(const char *s, enum torrent_meta *out)
{
    if (strcmp(s, "v1") == 0)
        *out = TORRENT_V1;
    else if (strcmp(s, "v2") == 0)
        *out = TORRENT_V2;
    else if (strcmp(s, "hybrid") == 0)
        *out = TORRENT_HYBRID;
    else
        return EINVAL;
    return 0;
}

const char *torrent_meta_name(enum torrent_meta m)
{
    return m == TORRENT_V1 ? "v1" : m == TORRENT_V2 ? "v2" : "hybrid";
}

int torrent_check_name(const char *name, err_t *err)
{
    size_t n = strlen(name);
    if (n == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return err_set(err, EINVAL, "invalid torrent name \"%s\"", name);
    if (n > 255)
        return err_set(err, EINVAL, "torrent name is %zu bytes, over the limit of 255", n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || util_is_ctl(c))
            return err_set(err, EINVAL, "torrent name contains '/' or a control character");
    }
    return 0;
}

int torrent_resolve(uint64_t size, const struct torrent_opts *opts, uint64_t *plen, err_t *err)
{
    uint64_t p = opts->piece_length ? opts->piece_length : torrent_auto_piece_length(size);
    if (p < TORRENT_MIN_PIECE || p > TORRENT_MAX_PIECE || (p & (p - 1)) != 0)
        return err_set(err, EINVAL,
                       "piece length %llu is not a power of two from 16 KiB to 256 MiB",
                       (unsigned long long)p);
    if (opts->meta != TORRENT_V1 && opts->meta != TORRENT_V2 && opts->meta != TORRENT_HYBRID)
        return err_set(err, EINVAL, "unknown meta version");
    if (size == 0)
        return err_set(err, EINVAL, "zero-byte object, nothing to share");
    if (size / MERKLE_BLOCK >= 0x3fffffff)
        return err_set(err, EFBIG, "object of %llu bytes is too large for a torrent",
                       (unsigned long long)size);
    *plen = p;
    return 0;
}

/* Appends n bytes of hashes, or n zero bytes when p is NULL. */
static void put_hashes(struct buf *b, const uint8_t *p, size_t n)
{
    static const uint8_t zero[64];
    if (p != NULL || b->count_only) {
        buf_put(b, p, n);
        return;
    }
    for (; n > 0; n -= n < sizeof(zero) ? n : sizeof(zero))
        buf_put(b, zero, n < sizeof(zero) ? n : sizeof(zero));
}

static void put_key(struct buf *b, const char *k)
{
    bencode_put_cstr(b, k);
}

/* The info dict from "meta version" on, in bencode's key order, and its end: what single-file
 * and multi-file torrents share after their file fields. v1_pieces (NULL: zeros of the same
 * width) holds npieces SHA-1s. */
static void put_info_tail(struct buf *b, const struct torrent_opts *o, bool v1, bool v2,
                          const char *name, uint64_t plen, const uint8_t *v1_pieces,
                          uint64_t npieces)
{
    if (v2) {
        put_key(b, "meta version");
        bencode_put_int(b, 2);
    }
    put_key(b, "name");
    bencode_put_cstr(b, name);
    put_key(b, "piece length");
    bencode_put_int(b, (int64_t)plen);
    if (v1) {
        put_key(b, "pieces");
        buf_printf(b, "%llu:", (unsigned long long)(npieces * 20));
        put_hashes(b, v1_pieces, npieces * 20);
    }
    if (o->private_) {
        put_key(b, "private");
        bencode_put_int(b, 1);
    }
    if (o->source) {
        put_key(b, "source");
        bencode_put_cstr(b, o->source);
    }
    bencode_end(b);
}

/* The top-level entries before "info" (sorted keys: announce .. creation date), all decided by
 * the options. */
static void put_outer_head(struct buf *b, const struct torrent_opts *o)
{
    if (o->ntrackers > 0) {
        put_key(b, "announce");
        bencode_put_cstr(b, o->trackers[0]);
    }
    if (o->ntrackers > 1) {
        put_key(b, "announce-list");
        bencode_begin_list(b);
        for (size_t i = 0; i < o->ntrackers; i++) {
            bencode_begin_list(b);
            bencode_put_cstr(b, o->trackers[i]);
            bencode_end(b);
        }
        bencode_end(b);
    }
    if (o->comment) {
        put_key(b, "comment");
        bencode_put_cstr(b, o->comment);
    }
    if (o->created_by) {
        put_key(b, "created by");
        bencode_put_cstr(b, o->created_by);
    }
    if (!o->no_date) {
        put_key(b, "creation date");
        bencode_put_int(b, o->creation_date);
    }
}

/* The top-level entries after "info" and "piece layers": the web seeds. */
static void put_outer_tail(struct buf *b, const struct torrent_opts *o)
{
    if (o->nwebseeds > 0) {
        put_key(b, "url-list");
        bencode_begin_list(b);
        for (size_t i = 0; i < o->nwebseeds; i++)
            bencode_put_cstr(b, o->webseeds[i]);
        bencode_end(b);
    }
}

static int encode(const char *name, uint64_t size, const struct torrent_opts *o,
                  const struct hasher_result *h, struct buf *b, size_t *info_start,
                  size_t *info_end, err_t *err)
{
    uint64_t plen;
    int rc;
    if ((rc = torrent_resolve(size, o, &plen, err)) || (rc = torrent_check_name(name, err)))
        return rc;
    uint64_t npieces = (size + plen - 1) / plen;
    bool v1 = o->meta & TORRENT_V1, v2 = o->meta & TORRENT_V2;
    if (h != NULL && (h->piece_length != plen || h->npieces != npieces ||
                      (v1 && h->v1_pieces == NULL) || (v2 && h->v2_layer == NULL)))
        return err_set(err, EINVAL, "hashes do not match the torrent options");
    const uint8_t *root = h ? h->v2_root : NULL;

    bencode_begin_dict(b);
    put_outer_head(b, o);
    put_key(b, "info");
    *info_start = b->len;
    bencode_begin_dict(b);
    if (v2) {
        put_key(b, "file tree");
        bencode_begin_dict(b);
        bencode_put_cstr(b, name);
        bencode_begin_dict(b);
        put_key(b, "");
        bencode_begin_dict(b);
        put_key(b, "length");
        bencode_put_int(b, (int64_t)size);
        put_key(b, "pieces root");
        buf_printf(b, "32:");
        put_hashes(b, root, 32);
        bencode_end(b);
        bencode_end(b);
        bencode_end(b);
    }
    if (v1) {
        put_key(b, "length");
        bencode_put_int(b, (int64_t)size);
    }
    put_info_tail(b, o, v1, v2, name, plen, h ? h->v1_pieces : NULL, npieces);
    *info_end = b->len;
    if (v2) {
        put_key(b, "piece layers");
        bencode_begin_dict(b);
        if (npieces > 1) {
            buf_printf(b, "32:");
            put_hashes(b, root, 32);
            buf_printf(b, "%llu:", (unsigned long long)(npieces * 32));
            put_hashes(b, h ? h->v2_layer : NULL, npieces * 32);
        }
        bencode_end(b);
    }
    put_outer_tail(b, o);
    bencode_end(b);
    if (b->err)
        return err_set(err, b->err, "torrent too large to build: %s", strerror(b->err));
    return 0;
}

int torrent_encode(const char *name, uint64_t size, const struct torrent_opts *opts,
                   const struct hasher_result *hashes, struct buf *out, err_t *err)
{
    size_t s, e;
    return encode(name, size, opts, hashes, out, &s, &e, err);
}

uint64_t torrent_size(const char *name, uint64_t size, const struct torrent_opts *opts)
{
    struct buf b;
    size_t s, e;
    buf_init_counter(&b);
    if (encode(name, size, opts, NULL, &b, &s, &e, NULL) != 0)
        return 0;
    return b.len;
}

/* Hex of the first TORRENT_OUTER_HEX / 2 bytes of the SHA-256 of b, or EIO / b's error. */
static int outer_hex(const struct buf *b, char out[TORRENT_OUTER_HEX])
{
    uint8_t md[32];
    if (b->err)
        return b->err;
    if (EVP_Digest(b->data, b->len, md, NULL, EVP_sha256(), NULL) != 1)
        return EIO;
    util_hex(md, TORRENT_OUTER_HEX / 2, out);
    return 0;
}

int torrent_outer_digest(const struct torrent_opts *opts, char out[TORRENT_OUTER_HEX])
{
    struct buf b;
    buf_init(&b, TORRENT_MAX_SIZE);
    bencode_begin_dict(&b);
    put_outer_head(&b, opts);
    put_outer_tail(&b, opts);
    bencode_end(&b);
    int rc = outer_hex(&b, out);
    buf_free(&b);
    return rc;
}

int torrent_outer_digest_of(const uint8_t *p, size_t n, char out[TORRENT_OUTER_HEX])
{
    struct bencode_doc doc = {0};
    struct buf b;
    int rc;
    buf_init(&b, TORRENT_MAX_SIZE);
    if ((rc = bencode_decode(p, n, NULL, &doc, NULL)))
        goto out;
    const struct bencode_node *root = &doc.nodes[0];
    if (root->type != BENCODE_DICT) {
        rc = EINVAL;
        goto out;
    }
    /* keys are sorted, so each entry kept is copied as it is stored: key then value */
    bencode_begin_dict(&b);
    const struct bencode_node *k = bencode_child(&doc, root);
    while (k) {
        const struct bencode_node *v = bencode_sibling(&doc, root, k);
        if (!bencode_str_eq(&doc, k, "info") && !bencode_str_eq(&doc, k, "piece layers"))
            buf_put(&b, p + k->start, v->end - k->start);
        k = bencode_sibling(&doc, root, v);
    }
    bencode_end(&b);
    rc = outer_hex(&b, out);
out:
    bencode_doc_free(&doc);
    buf_free(&b);
    return rc;
}

int torrent_hash(struct source *src, const struct torrent_opts *opts, struct hasher_result *h,
                 err_t *err)
{
    uint64_t plen = 0;
    int rc;
    if ((rc = torrent_resolve(src->size, opts, &plen, err))) {
        err_prefix(err, "%s", src->display);
        return rc;
    }
    struct hasher_opts ho = {
        .piece_length = plen,
        .v1 = opts->meta & TORRENT_V1,
        .v2 = opts->meta & TORRENT_V2,
        .v1_padded = opts->meta & TORRENT_V1, /* for the cache: composing a padded session */
        .threads = opts->threads,
        .progress = opts->progress,
        .progress_arg = opts->progress_arg,
    };
    return hasher_run(src, &ho, h, err);
}

int torrent_encode_hashed(const char *name, const struct torrent_opts *opts,
                          const struct hasher_result *h, struct buf *out, uint8_t ih1[20],
                          uint8_t ih2[32], err_t *err)
{
    size_t s, e, before = out->len;
    int rc = encode(name, h->size, opts, h, out, &s, &e, err);
    if (rc) {
        out->len = before;
        return rc;
    }
    if (ih1)
        EVP_Digest(out->data + s, e - s, ih1, NULL, EVP_sha1(), NULL);
    if (ih2)
        EVP_Digest(out->data + s, e - s, ih2, NULL, EVP_sha256(), NULL);
    return 0;
}

int torrent_create(struct source *src, const char *name, const struct torrent_opts *opts,
                   struct buf *out, uint8_t ih1[20], uint8_t ih2[32], err_t *err)
{
    struct hasher_result h;
    int rc;
    if (name == NULL)
        name = src->name;
    if ((rc = torrent_check_name(name, err)))
        return err_prefix(err, "%s", src->display);
    if ((rc = torrent_hash(src, opts, &h, err)))
        return rc;
    rc = torrent_encode_hashed(name, opts, &h, out, ih1, ih2, err);
    hasher_result_free(&h);
    return rc;
}

/* base + the first n bytes of key, encoded. */
static char *webseed_url(const char *base, const char *key, size_t n)
{
    struct buf b;
    buf_init(&b, 64 * 1024);
    buf_put(&b, base, strlen(base));
    uri_encode(&b, key, n, true);
    buf_put(&b, "", 1);
    if (b.err) {
        buf_free(&b);
        return NULL;
    }
    return (char *)buf_steal(&b, NULL);
}

char *torrent_webseed_url(const char *base, const char *key)
{
    return webseed_url(base, key, strlen(key));
}

char *torrent_webseed_for(const char *base, const char *key, enum torrent_meta meta)
{
    if (meta != TORRENT_V2)
        return webseed_url(base, key, strlen(key));
    const char *slash = strrchr(key, '/');
    return webseed_url(base, key, slash ? (size_t)(slash - key) + 1 : 0);
}

int torrent_recipe_opts(const struct torrent_recipe *r, const char *key, int64_t mtime,
                        struct torrent_opts *opts, char **webseed)
{
    memset(opts, 0, sizeof(*opts));
    *webseed = NULL;
    opts->meta = r->meta;
    opts->piece_length = r->piece_length;
    opts->trackers = r->trackers;
    opts->ntrackers = r->ntrackers;
    opts->private_ = r->private_;
    opts->source = r->source;
    opts->comment = r->comment;
    opts->created_by = S3T_CREATED_BY;
    opts->no_date = r->no_date;
    opts->creation_date = mtime;
    if (r->webseed_base) {
        if ((*webseed = torrent_webseed_for(r->webseed_base, key, r->meta)) == NULL)
            return ENOMEM;
        opts->webseeds = (const char *const *)webseed;
        opts->nwebseeds = 1;
    }
    return 0;
}

int torrent_recipe_set_opts(const struct torrent_recipe *r, const char *name,
                            const char *prefix_key, int64_t mtime, struct torrent_opts *opts,
                            char **webseed)
{
    struct torrent_recipe bare = *r;
    bare.webseed_base = NULL;
    int rc = torrent_recipe_opts(&bare, name, mtime, opts, webseed);
    if (rc != 0 || r->webseed_base == NULL)
        return rc;
    /* clients add NAME/PATH to a set's web seed (BEP 19): BASE/ for local files; for objects,
     * BASE plus the prefix's parent, as for a v2 object at prefix_key */
    *webseed = prefix_key ? torrent_webseed_for(r->webseed_base, prefix_key, TORRENT_V2)
                          : torrent_webseed_dir(r->webseed_base);
    if (*webseed == NULL)
        return ENOMEM;
    opts->webseeds = (const char *const *)webseed;
    opts->nwebseeds = 1;
    return 0;
}

/* --- multi-file torrents (docs/DESIGN.md §3) --- */

/* BEP 52's order: segment by segment, each compared by its bytes; a path before the paths it is
 * a prefix of (a file "a" before "a/b" cannot happen in a directory; torrent_files_order refuses
 * it). */
static int tree_cmp(const char *a, const char *b)
{
    for (;;) {
        size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
        int c = memcmp(a, b, la < lb ? la : lb);
        if (c != 0)
            return c;
        if (la != lb)
            return la < lb ? -1 : 1;
        if (a[la] == '\0' || b[lb] == '\0')
            return (a[la] != '\0') - (b[lb] != '\0');
        a += la + 1;
        b += lb + 1;
    }
}

static int cmp_tree(const void *x, const void *y)
{
    return tree_cmp(((const struct source_part *)x)->path, ((const struct source_part *)y)->path);
}

static int cmp_bytes(const void *x, const void *y)
{
    return strcmp(((const struct source_part *)x)->path, ((const struct source_part *)y)->path);
}

/* Whether files are padded: BEP 47 pads follow every non-empty file not ending on a piece
 * boundary, the last one too, in torrents of more than one file (libtorrent 2.0's layout). */
static bool padded(size_t n, const struct torrent_opts *o)
{
    return n > 1 && ((o->meta & TORRENT_V2) || o->pad);
}

int torrent_files_order(struct source_part *files, size_t n, enum torrent_meta meta, bool pad,
                        err_t *err)
{
    bool tree = meta != TORRENT_V1 || pad;
    qsort(files, n, sizeof(*files), tree ? cmp_tree : cmp_bytes);
    for (size_t i = 0; i < n; i++) {
        const char *p = files[i].path;
        for (const char *seg = p;;) {
            size_t len = strcspn(seg, "/");
            char one[256 + 1];
            int rc;
            if (len > 256) {
                return err_set(err, EINVAL,
                               "%s: a path segment of %zu bytes, over the limit of 255", p, len);
            }
            memcpy(one, seg, len);
            one[len] = '\0';
            if ((rc = torrent_check_name(one, err)))
                return err_prefix(err, "%s: not a valid path segment", p);
            /* BEP 3 paths are UTF-8; libtorrent rewrites other bytes, so its peers would look
             * for another file */
            for (size_t k = 0, l; k < len; k += l)
                if ((l = util_utf8_len((const unsigned char *)one + k, len - k)) == 0)
                    return err_set(err, EINVAL, "%s: not a valid path segment: not UTF-8", p);
            if (seg[len] == '\0')
                break;
            seg += len + 1;
        }
        if (i > 0 && strcmp(files[i - 1].path, p) == 0)
            return err_set(err, EINVAL, "%s: listed twice", p);
    }
    /* a file that is also a directory: in tree order its files follow it at once */
    if (!tree)
        qsort(files, n, sizeof(*files), cmp_tree);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++) {
        size_t l = strlen(files[i - 1].path);
        if (strncmp(files[i - 1].path, files[i].path, l) == 0 && files[i].path[l] == '/')
            rc = err_set(err, EINVAL, "%s: both a file and a directory", files[i - 1].path);
    }
    if (!tree)
        qsort(files, n, sizeof(*files), cmp_bytes);
    return rc;
}

/* What hashing learned about files, in their order. */
struct files_hashes {
    uint8_t *v1;          /* v1 pieces of the whole torrent, pads included */
    uint8_t (*roots)[32]; /* v2: each file's pieces root (zeros for an empty file) */
    uint8_t **layers;     /* v2: each file's piece layer, or NULL for one piece or none */
};

static void files_hashes_free(struct files_hashes *h, size_t n)
{
    for (size_t i = 0; h->layers && i < n; i++)
        free(h->layers[i]);
    free(h->layers);
    free(h->roots);
    free(h->v1);
}

static uint64_t total_of(const struct source_part *files, size_t n)
{
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += files[i].size;
    return t;
}

/* v1 pieces of the torrent: in a padded layout each file starts a piece of its own. */
static uint64_t v1_pieces_of(const struct source_part *files, size_t n, uint64_t plen, bool pad)
{
    uint64_t np = 0;
    if (!pad)
        return (total_of(files, n) + plen - 1) / plen;
    for (size_t i = 0; i < n; i++)
        np += (files[i].size + plen - 1) / plen;
    return np;
}

/* Appends path's segments as a bencoded list. */
static void put_path(struct buf *b, const char *path)
{
    bencode_begin_list(b);
    for (const char *seg = path;;) {
        size_t len = strcspn(seg, "/");
        bencode_put_str(b, seg, len);
        if (seg[len] == '\0')
            break;
        seg += len + 1;
    }
    bencode_end(b);
}

/* The v2 file tree: files are in tree order, so each directory's entries come out sorted and
 * together; open holds the directory segments of the previous file. */
static void put_file_tree(struct buf *b, const struct source_part *files, size_t n,
                          const struct files_hashes *h)
{
    const char *prev = "";
    size_t open = 0; /* directories open in prev */
    bencode_begin_dict(b);
    for (size_t i = 0; i < n; i++) {
        const char *p = files[i].path;
        /* the directories p shares with prev stay open */
        size_t same = 0, at = 0;
        while (same < open) {
            size_t l = strcspn(p + at, "/");
            if (p[at + l] != '/' || strncmp(p + at, prev + at, l) != 0 || prev[at + l] != '/')
                break;
            same++;
            at += l + 1;
        }
        for (size_t k = same; k < open; k++)
            bencode_end(b);
        open = same;
        for (size_t l; p[at + (l = strcspn(p + at, "/"))] == '/'; at += l + 1, open++) {
            bencode_put_str(b, p + at, l);
            bencode_begin_dict(b);
        }
        bencode_put_cstr(b, p + at);
        bencode_begin_dict(b);
        put_key(b, "");
        bencode_begin_dict(b);
        put_key(b, "length");
        bencode_put_int(b, (int64_t)files[i].size);
        if (files[i].size > 0) {
            put_key(b, "pieces root");
            buf_printf(b, "32:");
            put_hashes(b, h ? h->roots[i] : NULL, 32);
        }
        bencode_end(b);
        bencode_end(b);
        prev = p;
    }
    for (size_t k = 0; k < open; k++)
        bencode_end(b);
    bencode_end(b);
}

static void put_files_list(struct buf *b, const struct source_part *files, size_t n, uint64_t plen,
                           bool pad)
{
    uint64_t off = 0;
    bencode_begin_list(b);
    for (size_t i = 0; i < n; i++) {
        bencode_begin_dict(b);
        put_key(b, "length");
        bencode_put_int(b, (int64_t)files[i].size);
        put_key(b, "path");
        put_path(b, files[i].path);
        bencode_end(b);
        off += files[i].size;
        if (pad && files[i].size > 0 && off % plen != 0) {
            char name[32];
            snprintf(name, sizeof(name), "%llu", (unsigned long long)(plen - off % plen));
            bencode_begin_dict(b);
            put_key(b, "attr");
            bencode_put_cstr(b, "p");
            put_key(b, "length");
            bencode_put_int(b, (int64_t)(plen - off % plen));
            put_key(b, "path");
            bencode_begin_list(b);
            bencode_put_cstr(b, ".pad");
            bencode_put_cstr(b, name);
            bencode_end(b);
            bencode_end(b);
            off += plen - off % plen;
        }
    }
    bencode_end(b);
}

struct layer_ref {
    const uint8_t *root;
    size_t file;
};

static int cmp_layer(const void *x, const void *y)
{
    const struct layer_ref *a = x, *b = y;
    int c = memcmp(a->root, b->root, 32);
    return c ? c : (a->file > b->file) - (a->file < b->file);
}

/* "piece layers": one entry per distinct pieces root of a file of more than one piece, sorted
 * by root. Without hashes (measuring) every such file counts as distinct. */
static int put_piece_layers(struct buf *b, const struct source_part *files, size_t n, uint64_t plen,
                            const struct files_hashes *h)
{
    static const uint8_t zero[32];
    struct layer_ref *refs = malloc((n ? n : 1) * sizeof(*refs));
    size_t nr = 0;
    if (refs == NULL)
        return ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (files[i].size > plen)
            refs[nr++] = (struct layer_ref){h ? h->roots[i] : zero, i};
    if (h)
        qsort(refs, nr, sizeof(*refs), cmp_layer);
    bencode_begin_dict(b);
    for (size_t k = 0; k < nr; k++) {
        if (h && k > 0 && memcmp(refs[k].root, refs[k - 1].root, 32) == 0)
            continue;
        uint64_t np = (files[refs[k].file].size + plen - 1) / plen;
        buf_printf(b, "32:");
        put_hashes(b, h ? refs[k].root : NULL, 32);
        buf_printf(b, "%llu:", (unsigned long long)(np * 32));
        put_hashes(b, h ? h->layers[refs[k].file] : NULL, np * 32);
    }
    bencode_end(b);
    free(refs);
    return 0;
}

static int encode_files(const char *name, const struct source_part *files, size_t n,
                        const struct torrent_opts *o, const struct files_hashes *h, struct buf *b,
                        size_t *info_start, size_t *info_end, err_t *err)
{
    uint64_t plen, total = total_of(files, n);
    int rc;
    if ((rc = torrent_resolve(total, o, &plen, err)) || (rc = torrent_check_name(name, err)))
        return rc;
    for (size_t i = 0; i < n; i++)
        if (files[i].size / MERKLE_BLOCK >= 0x3fffffff)
            return err_set(err, EFBIG, "%s: too large for a torrent", files[i].path);
    bool v1 = o->meta & TORRENT_V1, v2 = o->meta & TORRENT_V2, pad = padded(n, o);
    uint64_t np1 = v1_pieces_of(files, n, plen, pad);

    bencode_begin_dict(b);
    put_outer_head(b, o);
    put_key(b, "info");
    *info_start = b->len;
    bencode_begin_dict(b);
    if (v2) {
        put_key(b, "file tree");
        put_file_tree(b, files, n, h);
    }
    if (v1) {
        put_key(b, "files");
        put_files_list(b, files, n, plen, pad);
    }
    put_info_tail(b, o, v1, v2, name, plen, h ? h->v1 : NULL, np1);
    *info_end = b->len;
    if (v2) {
        put_key(b, "piece layers");
        if (put_piece_layers(b, files, n, plen, h))
            return err_set(err, ENOMEM, "out of memory");
    }
    put_outer_tail(b, o);
    bencode_end(b);
    if (b->err)
        return err_set(err, b->err, "torrent too large to build: %s", strerror(b->err));
    return 0;
}

int torrent_layout_files(const char *name, const struct source_part *files, size_t n,
                         const struct torrent_opts *opts, struct buf *out, err_t *err)
{
    size_t s, e, before = out->len;
    int rc = encode_files(name, files, n, opts, NULL, out, &s, &e, err);
    if (rc != 0)
        out->len = before;
    return rc;
}

uint64_t torrent_size_files(const char *name, const struct source_part *files, size_t n,
                            const struct torrent_opts *opts)
{
    struct buf b;
    buf_init_counter(&b);
    return torrent_layout_files(name, files, n, opts, &b, NULL) == 0 ? b.len : 0;
}

/* Progress over several hasher runs: each reports its own bytes; base counts those before. */
struct progress_sum {
    const struct torrent_opts *o;
    uint64_t base, total;
};

static void progress_add(void *arg, uint64_t done, uint64_t total)
{
    struct progress_sum *p = arg;
    (void)total;
    p->o->progress(p->o->progress_arg, p->base + done, p->total);
}

/* Opens part f, which must still have the size it was listed with. */
static int open_part(const struct source_part *f, struct source **src, err_t *err)
{
    int rc = f->open(f->arg, src, err);
    if (rc == 0 && (*src)->size != f->size) {
        rc = err_set(err, ESTALE, "%s: changed since the directory was read", (*src)->display);
        source_free(*src);
        *src = NULL;
    }
    return rc;
}

/* Files hashed on their own (padded and v2 layouts): files of at least BIG_FILE bytes one after
 * another with every thread on each, then the others a file per thread; each file's hashes go
 * to its own slots, so the result never depends on timing. */
#define BIG_FILE (16u << 20)

struct file_run {
    const struct source_part *files;
    size_t n;
    struct hasher_opts ho; /* for the small files: one thread each, no progress */
    struct files_hashes *h;
    const uint64_t *first; /* each file's first v1 piece */
    const struct torrent_opts *o;
    bool pad; /* files are followed by pads (not a lone one) */
    uint64_t total;
    atomic_size_t next;
    atomic_int failed;
    pthread_mutex_t lock; /* guards err, done, last and progress calls */
    uint64_t done;        /* bytes of the files hashed */
    struct timespec last; /* the last progress call */
    err_t err;
};

/* File i's hashes as known before (torrent_opts.known), when they fit it: every hash the
 * torrent needs, v1 ones with the padded last piece when the file is padded. */
static bool known_of(struct file_run *r, size_t i, const struct hasher_opts *ho,
                     struct hasher_result *res)
{
    uint64_t plen = ho->piece_length;
    const struct torrent_opts *o = r->o;
    bool v1 = r->h->v1 != NULL, v2 = r->h->roots != NULL;
    enum torrent_meta need = (enum torrent_meta)((v1 ? TORRENT_V1 : 0) | (v2 ? TORRENT_V2 : 0));
    if (o->known == NULL || !o->known(o->known_arg, i, need, plen, res))
        return false;
    if (res->size == r->files[i].size && res->piece_length == plen &&
        res->npieces == (res->size + plen - 1) / plen && (!v2 || res->v2_layer != NULL) &&
        (!v1 || (res->v1_pieces != NULL && (res->has_v1_padded || !r->pad))))
        return true;
    hasher_result_free(res);
    return false;
}

/* Hashes file i into its slots. Returns 0 or an errno with err set. */
static int hash_one(struct file_run *r, size_t i, const struct hasher_opts *ho, err_t *err)
{
    struct source *src = NULL;
    struct hasher_result res;
    int rc;
    if (!known_of(r, i, ho, &res)) {
        if ((rc = open_part(&r->files[i], &src, err)) == 0)
            rc = hasher_run(src, ho, &res, err);
        source_free(src);
        if (rc)
            return rc;
        if (r->o->learned)
            r->o->learned(r->o->known_arg, i, &res);
    }
    if (r->h->v1) {
        /* a padded file's last piece ends in the pad's zeros (a lone file has no pad) */
        memcpy(r->h->v1 + 20 * r->first[i], res.v1_pieces, 20 * res.npieces);
        if (r->pad)
            memcpy(r->h->v1 + 20 * (r->first[i] + res.npieces - 1), res.v1_padded, 20);
    }
    if (r->h->roots) {
        memcpy(r->h->roots[i], res.v2_root, 32);
        if (res.npieces > 1) {
            r->h->layers[i] = res.v2_layer;
            res.v2_layer = NULL;
        }
    }
    hasher_result_free(&res);
    return 0;
}

static void *file_worker(void *arg)
{
    struct file_run *r = arg;
    err_t err = {0};
    for (;;) {
        size_t i = atomic_fetch_add(&r->next, 1);
        if (i >= r->n || atomic_load(&r->failed))
            break;
        uint64_t size = r->files[i].size;
        if (size == 0 || size >= BIG_FILE)
            continue;
        if (hash_one(r, i, &r->ho, &err)) {
            pthread_mutex_lock(&r->lock);
            if (!atomic_load(&r->failed))
                r->err = err;
            atomic_store(&r->failed, 1);
            pthread_mutex_unlock(&r->lock);
            break;
        }
        pthread_mutex_lock(&r->lock);
        r->done += size;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        /* as the hasher reports: about ten times a second, one call at a time */
        if (r->o->progress &&
            (now.tv_sec - r->last.tv_sec) * 1000000000L + now.tv_nsec - r->last.tv_nsec >=
                100000000L) {
            r->last = now;
            r->o->progress(r->o->progress_arg, r->done, r->total);
        }
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

static int hash_files(const char *name, const struct source_part *files, size_t n,
                      const struct torrent_opts *o, uint64_t plen, struct files_hashes *h,
                      err_t *err)
{
    bool v1 = o->meta & TORRENT_V1, v2 = o->meta & TORRENT_V2, pad = padded(n, o);
    uint64_t total = total_of(files, n);
    struct progress_sum sum = {o, 0, total};
    struct hasher_opts ho = {
        .piece_length = plen,
        .v1 = v1,
        .v2 = v2,
        .v1_padded = pad || (v2 && o->learned != NULL), /* a lone file's: for the cache */
        .threads = o->threads,
        .progress = o->progress ? progress_add : NULL,
        .progress_arg = &sum,
    };
    struct hasher_result r = {0};
    struct source *src = NULL;
    int rc = 0;
    memset(h, 0, sizeof(*h));
    if (!v2 && !pad) {
        /* pieces span files: hash them as one stream */
        if ((rc = source_concat_open(name, name, files, n, &src, err)) == 0) {
            if (o->span)
                src->span = o->span;
            src->parallel = o->parallel;
        }
        if (rc == 0 && (rc = hasher_run(src, &ho, &r, err)) == 0) {
            h->v1 = r.v1_pieces;
            r.v1_pieces = NULL;
        }
        source_free(src);
        return rc;
    }
    /* padded or v2: every file starts a piece, so each is hashed on its own */
    uint64_t *first = calloc(n + 1, sizeof(*first));
    if (first == NULL ||
        (v1 && (h->v1 = calloc(v1_pieces_of(files, n, plen, true) + 1, 20)) == NULL) ||
        (v2 && ((h->roots = calloc(n, 32)) == NULL ||
                (h->layers = calloc(n, sizeof(uint8_t *))) == NULL))) {
        free(first);
        return err_set(err, ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        first[i + 1] = first[i] + (files[i].size + plen - 1) / plen;
    struct file_run fr = {
        .files = files, .n = n, .h = h, .first = first, .o = o, .pad = pad, .total = total};
    pthread_mutex_init(&fr.lock, NULL);
    /* large files one after another, each with every thread */
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (files[i].size < BIG_FILE)
            continue;
        sum.base = fr.done;
        if ((rc = hash_one(&fr, i, &ho, err)) == 0)
            fr.done += files[i].size;
    }
    /* then the others, a file per thread */
    if (rc == 0) {
        unsigned nthreads = o->threads ? o->threads : hasher_default_threads();
        if (o->threads == 0 && o->parallel > nthreads)
            nthreads = o->parallel; /* network objects: more files in flight than cores */
        size_t small = 0;
        for (size_t i = 0; i < n; i++)
            small += files[i].size > 0 && files[i].size < BIG_FILE;
        if (nthreads > small)
            nthreads = small ? (unsigned)small : 1;
        fr.ho = ho;
        fr.ho.threads = 1;
        fr.ho.progress = NULL;
        pthread_t *tids = calloc(nthreads, sizeof(*tids));
        unsigned started = 0;
        for (unsigned t = 1; tids != NULL && t < nthreads; t++) {
            if (pthread_create(&tids[t], NULL, file_worker, &fr) != 0)
                break;
            started = t;
        }
        file_worker(&fr);
        for (unsigned t = 1; t <= started; t++)
            pthread_join(tids[t], NULL);
        free(tids);
        if (atomic_load(&fr.failed)) {
            rc = fr.err.code ? fr.err.code : EIO;
            if (err)
                *err = fr.err;
        } else if (o->progress) {
            o->progress(o->progress_arg, total, total);
        }
    }
    pthread_mutex_destroy(&fr.lock);
    free(first);
    return rc;
}

int torrent_create_files(const char *name, const struct source_part *files, size_t n,
                         const struct torrent_opts *opts, struct buf *out, uint8_t ih1[20],
                         uint8_t ih2[32], err_t *err)
{
    struct files_hashes h = {0};
    uint64_t plen;
    size_t s, e, before = out->len;
    int rc;
    if ((rc = torrent_check_name(name, err)) ||
        (rc = torrent_resolve(total_of(files, n), opts, &plen, err)))
        return rc;
    if ((rc = hash_files(name, files, n, opts, plen, &h, err)) == 0 &&
        (rc = encode_files(name, files, n, opts, &h, out, &s, &e, err)) == 0) {
        if (ih1)
            EVP_Digest(out->data + s, e - s, ih1, NULL, EVP_sha1(), NULL);
        if (ih2)
            EVP_Digest(out->data + s, e - s, ih2, NULL, EVP_sha256(), NULL);
    }
    if (rc)
        out->len = before;
    files_hashes_free(&h, n);
    return rc;
}

char *torrent_webseed_dir(const char *base)
{
    size_t n = strlen(base);
    bool slash = n > 0 && base[n - 1] == '/';
    char *s = malloc(n + 2);
    if (s == NULL)
        return NULL;
    memcpy(s, base, n);
    if (!slash)
        s[n++] = '/';
    s[n] = '\0';
    return s;
}
