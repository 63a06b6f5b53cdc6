/* metainfo.c — loads and validates torrents. The rules follow BEP 3/47/52 and the checks
 * libtorrent applies (its invalid test torrents are our regression set). */
#include "s3torrent/metainfo.h"
#include "s3torrent/merkle.h"
#include "s3torrent/torrent.h"
#include "s3torrent/util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PIECE_LENGTH (1u << 29)
#define MAX_FILES        1000000

/* A C string copy of a bencoded string; NUL bytes become '?' so display stays one line. */
static char *dup_str(const struct bencode_doc *d, const struct bencode_node *n)
{
    char *s = malloc(n->slen + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, bencode_str(d, n), n->slen);
    for (size_t i = 0; i < n->slen; i++)
        if (s[i] == '\0')
            s[i] = '?';
    s[n->slen] = '\0';
    return s;
}

static const struct bencode_node *get(const struct metainfo *m, const struct bencode_node *d,
                                      const char *k, enum bencode_type t)
{
    const struct bencode_node *v = bencode_dict_get(&m->doc, d, k);
    return v != NULL && v->type == t ? v : NULL;
}

static int add_file(struct metainfo *m, size_t *cap, struct metainfo_file **out, err_t *err)
{
    if (m->nfiles >= MAX_FILES)
        return err_set(err, E2BIG, "more than %d files", MAX_FILES);
    if (m->nfiles == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct metainfo_file *f = realloc(m->files, nc * sizeof(*f));
        if (f == NULL)
            return err_set(err, ENOMEM, "out of memory");
        m->files = f;
        *cap = nc;
    }
    *out = &m->files[m->nfiles++];
    memset(*out, 0, sizeof(**out));
    return 0;
}

static int check_length(int64_t len, err_t *err)
{
    if (len < 0)
        return err_set(err, EINVAL, "negative file length");
    if ((uint64_t)len / MERKLE_BLOCK >= 0x3fffffff)
        return err_set(err, EINVAL, "file length %lld is too large", (long long)len);
    return 0;
}

/* Appends "/elem" (or "elem") to a path being built. */
static char *join(const char *prefix, const struct bencode_doc *d, const struct bencode_node *e)
{
    size_t pl = prefix ? strlen(prefix) : 0;
    char *s = malloc(pl + 1 + e->slen + 1), *p = s;
    if (s == NULL)
        return NULL;
    if (pl) {
        memcpy(p, prefix, pl);
        p += pl;
        *p++ = '/';
    }
    memcpy(p, bencode_str(d, e), e->slen);
    for (size_t i = 0; i < e->slen; i++)
        if (p[i] == '\0')
            p[i] = '?';
    p[e->slen] = '\0';
    return s;
}

struct v1_files {
    struct metainfo_file *files;
    size_t n, cap;
};

static int parse_v1(struct metainfo *m, const struct bencode_node *info, struct v1_files *out,
                    uint64_t *total, err_t *err)
{
    const struct bencode_node *len = get(m, info, "length", BENCODE_INT);
    const struct bencode_node *files = get(m, info, "files", BENCODE_LIST);
    struct metainfo tmp = {0};
    size_t cap = 0;
    int rc = 0;
    uint64_t sum = 0;

    tmp.doc = m->doc;
    if (len != NULL && files == NULL) {
        struct metainfo_file *f = NULL;
        if ((rc = check_length(len->ival, err)) || (rc = add_file(&tmp, &cap, &f, err)))
            goto out;
        f->length = (uint64_t)len->ival;
        f->path = strdup(m->name);
        sum = f->length;
        if (f->path == NULL)
            rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    if (files == NULL || len != NULL) {
        rc = err_set(err, EINVAL, "info needs exactly one of 'length' and 'files'");
        goto out;
    }
    for (const struct bencode_node *e = bencode_child(&m->doc, files); e;
         e = bencode_sibling(&m->doc, files, e)) {
        const struct bencode_node *fl = get(m, e, "length", BENCODE_INT);
        const struct bencode_node *path = get(m, e, "path", BENCODE_LIST);
        const struct bencode_node *attr = get(m, e, "attr", BENCODE_STR);
        struct metainfo_file *f = NULL;
        if (fl == NULL || path == NULL || bencode_child(&m->doc, path) == NULL) {
            rc = err_set(err, EINVAL, "file entry without length or path");
            goto out;
        }
        if ((rc = check_length(fl->ival, err)) || (rc = add_file(&tmp, &cap, &f, err)))
            goto out;
        f->length = (uint64_t)fl->ival;
        f->pad = attr && memchr(bencode_str(&m->doc, attr), 'p', attr->slen);
        for (const struct bencode_node *el = bencode_child(&m->doc, path); el;
             el = bencode_sibling(&m->doc, path, el)) {
            if (el->type != BENCODE_STR || el->slen == 0) {
                rc = err_set(err, EINVAL, "empty or non-string path element");
                goto out;
            }
            char *p = join(f->path, &m->doc, el);
            if (p == NULL) {
                rc = err_set(err, ENOMEM, "out of memory");
                goto out;
            }
            free(f->path);
            f->path = p;
        }
        if (sum + f->length < sum) {
            rc = err_set(err, EINVAL, "total size overflows");
            goto out;
        }
        sum += f->length;
    }
    if (tmp.nfiles == 0)
        rc = err_set(err, EINVAL, "empty file list");
out:
    out->files = tmp.files;
    out->n = tmp.nfiles;
    out->cap = cap;
    *total = sum;
    return rc;
}

/* Walks a v2 file tree directory, appending files in key order. */
static int walk_tree(struct metainfo *m, const struct bencode_node *dir, const char *prefix,
                     size_t *cap, err_t *err)
{
    for (const struct bencode_node *k = bencode_child(&m->doc, dir); k;) {
        const struct bencode_node *v = bencode_sibling(&m->doc, dir, k);
        int rc;
        if (k->slen == 0)
            return err_set(err, EINVAL, "empty file name in the file tree");
        if (v->type != BENCODE_DICT)
            return err_set(err, EINVAL, "file tree entry is not a dictionary");
        char *path = join(prefix, &m->doc, k);
        if (path == NULL)
            return err_set(err, ENOMEM, "out of memory");
        const struct bencode_node *props = bencode_dict_get(&m->doc, v, "");
        if (props != NULL) {
            struct metainfo_file *f;
            const struct bencode_node *len = get(m, props, "length", BENCODE_INT);
            const struct bencode_node *root = get(m, props, "pieces root", BENCODE_STR);
            const struct bencode_node *attr = get(m, props, "attr", BENCODE_STR);
            if (props->type != BENCODE_DICT || len == NULL || v->next != props->next) {
                free(path);
                return err_set(err, EINVAL, "malformed file entry in the file tree");
            }
            if ((rc = check_length(len->ival, err)) || (rc = add_file(m, cap, &f, err))) {
                free(path);
                return rc;
            }
            f->path = path;
            f->length = (uint64_t)len->ival;
            if (attr && memchr(bencode_str(&m->doc, attr), 'p', attr->slen))
                return err_set(err, EINVAL, "pad file '%s' in a v2 file tree", path);
            if (f->length > 0) {
                static const uint8_t zero[32];
                if (root == NULL || root->slen != 32)
                    return err_set(err, EINVAL, "file '%s' has no valid pieces root", path);
                if (memcmp(bencode_str(&m->doc, root), zero, 32) == 0)
                    return err_set(err, EINVAL, "file '%s' has an all-zero pieces root", path);
                memcpy(f->root, bencode_str(&m->doc, root), 32);
                f->has_root = true;
            }
        } else {
            rc = walk_tree(m, v, path, cap, err);
            free(path);
            if (rc)
                return rc;
        }
        k = bencode_sibling(&m->doc, dir, v);
    }
    return 0;
}

static int check_layers(struct metainfo *m, err_t *err)
{
    const struct bencode_node *root = &m->doc.nodes[0];
    const struct bencode_node *layers = bencode_dict_get(&m->doc, root, "piece layers");
    struct merkle *mk = NULL;
    uint8_t *scratch = NULL;
    int rc = 0;
    if (layers == NULL)
        return 0;
    if (layers->type != BENCODE_DICT)
        return err_set(err, EINVAL, "'piece layers' is not a dictionary");
    m->has_piece_layers = true;
    for (const struct bencode_node *k = bencode_child(&m->doc, layers); k;) {
        const struct bencode_node *v = bencode_sibling(&m->doc, layers, k);
        if (v->type != BENCODE_STR)
            return err_set(err, EINVAL, "piece layer is not a string");
        if (v->slen % 32 != 0)
            return err_set(err, EINVAL, "piece layer of %zu bytes is not a multiple of 32",
                           v->slen);
        k = bencode_sibling(&m->doc, layers, v);
    }
    if ((mk = merkle_new()) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    uint8_t pad[32];
    merkle_pad(mk, merkle_log2(m->piece_length / MERKLE_BLOCK), pad);
    for (size_t i = 0; i < m->nfiles && rc == 0; i++) {
        struct metainfo_file *f = &m->files[i];
        if (f->length <= m->piece_length)
            continue;
        uint64_t np = (f->length + m->piece_length - 1) / m->piece_length;
        const struct bencode_node *l = NULL;
        for (const struct bencode_node *k = bencode_child(&m->doc, layers); k;) {
            const struct bencode_node *v = bencode_sibling(&m->doc, layers, k);
            if (k->slen == 32 && memcmp(bencode_str(&m->doc, k), f->root, 32) == 0)
                l = v;
            k = bencode_sibling(&m->doc, layers, v);
        }
        if (l == NULL) {
            rc = err_set(err, EINVAL, "no piece layer for file '%s'", f->path);
            break;
        }
        if (l->slen != np * 32) {
            rc = err_set(err, EINVAL, "piece layer of '%s' has %zu hashes, expected %llu", f->path,
                         l->slen / 32, (unsigned long long)np);
            break;
        }
        uint8_t got[32];
        free(scratch);
        if ((scratch = malloc(l->slen)) == NULL) {
            rc = err_set(err, ENOMEM, "out of memory");
            break;
        }
        merkle_root(mk, bencode_str(&m->doc, l), np, merkle_pow2(np), pad, scratch, got);
        if (memcmp(got, f->root, 32) != 0)
            rc =
                err_set(err, EINVAL, "piece layer of '%s' does not match its pieces root", f->path);
        f->layer = bencode_str(&m->doc, l);
        f->layer_len = l->slen;
    }
    free(scratch);
    merkle_free(mk);
    return rc;
}

static int parse_top(struct metainfo *m, err_t *err)
{
    const struct bencode_node *root = &m->doc.nodes[0];
    const struct bencode_node *al = get(m, root, "announce-list", BENCODE_LIST);
    const struct bencode_node *an = get(m, root, "announce", BENCODE_STR);
    const struct bencode_node *ul = bencode_dict_get(&m->doc, root, "url-list");
    const struct bencode_node *n;
    size_t cap = 0, tier = 0;

    if (al != NULL)
        for (const struct bencode_node *t = bencode_child(&m->doc, al); t;
             t = bencode_sibling(&m->doc, al, t)) {
            if (t->type != BENCODE_LIST)
                continue;
            bool any = false;
            for (const struct bencode_node *u = bencode_child(&m->doc, t); u;
                 u = bencode_sibling(&m->doc, t, u)) {
                if (u->type != BENCODE_STR || u->slen == 0)
                    continue;
                if (m->ntrackers == cap) {
                    cap = cap ? cap * 2 : 8;
                    char **nt = realloc(m->trackers, cap * sizeof(*nt));
                    size_t *ti = realloc(m->tiers, cap * sizeof(*ti));
                    if (nt)
                        m->trackers = nt;
                    if (ti)
                        m->tiers = ti;
                    if (nt == NULL || ti == NULL)
                        return err_set(err, ENOMEM, "out of memory");
                }
                if ((m->trackers[m->ntrackers] = dup_str(&m->doc, u)) == NULL)
                    return err_set(err, ENOMEM, "out of memory");
                m->tiers[m->ntrackers++] = tier;
                any = true;
            }
            tier += any;
        }
    if (m->ntrackers == 0 && an != NULL && an->slen > 0) {
        m->trackers = malloc(sizeof(char *));
        m->tiers = calloc(1, sizeof(size_t));
        if (m->trackers == NULL || m->tiers == NULL ||
            (m->trackers[0] = dup_str(&m->doc, an)) == NULL)
            return err_set(err, ENOMEM, "out of memory");
        m->ntrackers = 1;
    }
    if (ul != NULL) {
        size_t count = ul->type == BENCODE_STR ? 1 : 0;
        if (ul->type == BENCODE_LIST)
            for (n = bencode_child(&m->doc, ul); n; n = bencode_sibling(&m->doc, ul, n))
                count++;
        m->webseeds = calloc(count ? count : 1, sizeof(char *));
        if (m->webseeds == NULL)
            return err_set(err, ENOMEM, "out of memory");
        if (ul->type == BENCODE_STR && ul->slen > 0)
            m->webseeds[m->nwebseeds++] = dup_str(&m->doc, ul);
        else if (ul->type == BENCODE_LIST)
            for (n = bencode_child(&m->doc, ul); n; n = bencode_sibling(&m->doc, ul, n))
                if (n->type == BENCODE_STR && n->slen > 0)
                    m->webseeds[m->nwebseeds++] = dup_str(&m->doc, n);
    }
    if ((n = get(m, root, "comment", BENCODE_STR)) != NULL)
        m->comment = dup_str(&m->doc, n);
    if ((n = get(m, root, "created by", BENCODE_STR)) != NULL)
        m->created_by = dup_str(&m->doc, n);
    if ((n = get(m, root, "creation date", BENCODE_INT)) != NULL) {
        m->has_date = true;
        m->creation_date = n->ival;
    }
    return 0;
}

static int parse(struct metainfo *m, err_t *err)
{
    int rc;
    const struct bencode_node *root, *info, *n;
    struct v1_files v1f = {0};
    uint64_t v1_total = 0;

    if ((rc = bencode_decode(m->raw, m->raw_len, NULL, &m->doc, err)))
        return rc;
    root = &m->doc.nodes[0];
    if (root->type != BENCODE_DICT)
        return err_set(err, EINVAL, "not a dictionary");
    if ((info = get(m, root, "info", BENCODE_DICT)) == NULL)
        return err_set(err, EINVAL, "no info dictionary");
    EVP_Digest(m->raw + info->start, info->end - info->start, m->ih1, NULL, EVP_sha1(), NULL);
    EVP_Digest(m->raw + info->start, info->end - info->start, m->ih2, NULL, EVP_sha256(), NULL);

    if ((n = get(m, info, "name", BENCODE_STR)) == NULL || n->slen == 0)
        return err_set(err, EINVAL, "info has no name");
    if ((m->name = dup_str(&m->doc, n)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    if ((n = get(m, info, "piece length", BENCODE_INT)) == NULL)
        return err_set(err, EINVAL, "info has no piece length");
    if (n->ival <= 0 || n->ival > MAX_PIECE_LENGTH)
        return err_set(err, EINVAL, "invalid piece length %lld", (long long)n->ival);
    m->piece_length = (uint64_t)n->ival;
    const struct bencode_node *mv = bencode_dict_get(&m->doc, info, "meta version");
    const struct bencode_node *tree = get(m, info, "file tree", BENCODE_DICT);
    const struct bencode_node *pieces = get(m, info, "pieces", BENCODE_STR);
    if (mv != NULL && (mv->type != BENCODE_INT || mv->ival != 2))
        return err_set(err, EINVAL, "unsupported meta version");
    m->v2 = mv != NULL;
    m->v1 = pieces != NULL;
    if (m->v2 && tree == NULL)
        return err_set(err, EINVAL, "meta version 2 without a file tree");
    if (!m->v1 && !m->v2)
        return err_set(err, EINVAL, "info has neither pieces nor a file tree");
    if (m->v2 && (m->piece_length < MERKLE_BLOCK || (m->piece_length & (m->piece_length - 1))))
        return err_set(err, EINVAL, "piece length %llu is not a power of two >= 16 KiB",
                       (unsigned long long)m->piece_length);
    if ((n = get(m, info, "private", BENCODE_INT)) != NULL && n->ival == 1)
        m->private_ = true;
    if ((n = get(m, info, "source", BENCODE_STR)) != NULL &&
        (m->source = dup_str(&m->doc, n)) == NULL)
        return err_set(err, ENOMEM, "out of memory");

    if (m->v1) {
        if ((rc = parse_v1(m, info, &v1f, &v1_total, err)))
            goto out;
        if (v1_total == 0) {
            rc = err_set(err, EINVAL, "torrent has no data");
            goto out;
        }
        uint64_t np = (v1_total + m->piece_length - 1) / m->piece_length;
        if (pieces->slen % 20 != 0 || pieces->slen / 20 != np) {
            rc = err_set(err, EINVAL, "'pieces' holds %zu bytes, expected %llu hashes",
                         pieces->slen, (unsigned long long)np);
            goto out;
        }
        m->pieces = bencode_str(&m->doc, pieces);
        m->npieces = np;
        m->total_size = 0; /* the files' bytes, pads left out */
        for (size_t i = 0; i < v1f.n; i++)
            m->total_size += v1f.files[i].pad ? 0 : v1f.files[i].length;
        m->multi = get(m, info, "files", BENCODE_LIST) != NULL;
    }
    if (m->v2) {
        size_t cap = 0;
        if ((rc = walk_tree(m, tree, NULL, &cap, err)))
            goto out;
        if (m->nfiles == 0) {
            rc = err_set(err, EINVAL, "empty file tree");
            goto out;
        }
        uint64_t total = 0, np = 0;
        for (size_t i = 0; i < m->nfiles; i++) {
            total += m->files[i].length;
            np += (m->files[i].length + m->piece_length - 1) / m->piece_length;
        }
        if (total == 0) {
            rc = err_set(err, EINVAL, "torrent has no data");
            goto out;
        }
        bool single = m->nfiles == 1 && strchr(m->files[0].path, '/') == NULL &&
                      strcmp(m->files[0].path, m->name) == 0;
        if (m->v1) {
            /* a hybrid's two halves must describe the same files */
            size_t j = 0;
            bool same = single == !m->multi;
            for (size_t i = 0; same && i < v1f.n; i++) {
                if (v1f.files[i].pad)
                    continue;
                const char *p1 = v1f.files[i].path;
                const char *p2 = m->files[j].path;
                same = j < m->nfiles && strcmp(p1, p2) == 0 &&
                       v1f.files[i].length == m->files[j].length;
                j++;
            }
            if (!same || j != m->nfiles) {
                rc = err_set(err, EINVAL, "the v1 and v2 parts describe different files");
                goto out;
            }
        } else {
            m->total_size = total;
            m->npieces = np;
            m->multi = !single;
        }
        if ((rc = check_layers(m, err)))
            goto out;
    }
    if (!m->v2) {
        m->files = v1f.files;
        m->nfiles = v1f.n;
        v1f.files = NULL;
        v1f.n = 0;
    }
    rc = parse_top(m, err);
out:
    for (size_t i = 0; i < v1f.n; i++)
        free(v1f.files[i].path);
    free(v1f.files);
    return rc;
}

int metainfo_parse(const uint8_t *buf, size_t len, struct metainfo **out, err_t *err)
{
    struct metainfo *m = calloc(1, sizeof(*m));
    int rc;
    *out = NULL;
    if (m == NULL || (m->raw = malloc(len ? len : 1)) == NULL) {
        free(m);
        return err_set(err, ENOMEM, "out of memory");
    }
    memcpy(m->raw, buf, len);
    m->raw_len = len;
    if ((rc = parse(m, err))) {
        metainfo_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int metainfo_load(const char *path, struct metainfo **out, err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    struct stat st;
    uint8_t *data = NULL;
    *out = NULL;
    if (fd < 0)
        return err_set(err, errno, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = err_set(err, errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = err_set(err, EISDIR, "%s: is a directory, not a torrent", path);
        goto out;
    }
    if (st.st_size > TORRENT_MAX_SIZE) {
        rc = err_set(err, EFBIG, "%s: larger than %u bytes, not a torrent", path, TORRENT_MAX_SIZE);
        goto out;
    }
    size_t len = 0, cap = (size_t)st.st_size + 1;
    if ((data = malloc(cap)) == NULL) {
        rc = err_set(err, ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, data + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = err_set(err, errno, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap) {
            if (cap > TORRENT_MAX_SIZE) {
                rc = err_set(err, EFBIG, "%s: larger than %u bytes, not a torrent", path,
                             TORRENT_MAX_SIZE);
                goto out;
            }
            uint8_t *nd = realloc(data, cap * 2);
            if (nd == NULL) {
                rc = err_set(err, ENOMEM, "%s: out of memory", path);
                goto out;
            }
            data = nd;
            cap *= 2;
        }
    }
    if ((rc = metainfo_parse(data, len, out, err)))
        err_prefix(err, "%s: invalid torrent", path);
out:
    free(data);
    close(fd);
    return rc;
}

void metainfo_free(struct metainfo *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nfiles; i++)
        free(m->files[i].path);
    free(m->files);
    for (size_t i = 0; i < m->ntrackers; i++)
        free(m->trackers[i]);
    free(m->trackers);
    free(m->tiers);
    for (size_t i = 0; i < m->nwebseeds; i++)
        free(m->webseeds[i]);
    free(m->webseeds);
    free(m->comment);
    free(m->created_by);
    free(m->source);
    free(m->name);
    bencode_doc_free(&m->doc);
    free(m->raw);
    free(m);
}

int metainfo_hashes(const struct metainfo *m, struct hasher_result *out, err_t *err)
{
    memset(out, 0, sizeof(*out));
    if (m->multi || m->nfiles != 1)
        return err_set(err, EINVAL, "not a single-file torrent");
    const struct metainfo_file *f = &m->files[0];
    out->size = m->total_size;
    out->piece_length = m->piece_length;
    out->npieces = m->npieces;
    if (m->v2 &&
        (!f->has_root || (m->npieces > 1 && (f->layer == NULL || f->layer_len != 32 * m->npieces))))
        return err_set(err, EINVAL, "no piece layer for the file");
    if ((m->v1 && (out->v1_pieces = malloc(20 * m->npieces)) == NULL) ||
        (m->v2 && (out->v2_layer = malloc(32 * m->npieces)) == NULL)) {
        hasher_result_free(out);
        return err_set(err, ENOMEM, "out of memory");
    }
    if (m->v1)
        memcpy(out->v1_pieces, m->pieces, 20 * m->npieces);
    if (m->v2) {
        memcpy(out->v2_root, f->root, 32);
        /* a one-piece file carries no layer: its root stands in (only the root is written) */
        memcpy(out->v2_layer, m->npieces > 1 ? f->layer : f->root,
               32 * (m->npieces > 1 ? m->npieces : 1));
    }
    return 0;
}
