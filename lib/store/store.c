/* store.c — calls through the object-store interface, and the S3 implementation of it: a thin
 * adapter over the S3 client (docs/DESIGN.md §13). */
#include "s3torrent/store.h"
#include "s3torrent/s3.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_head(struct store *st, const char *bucket, const char *key, struct store_object *out,
               struct store_meta *meta, err_t *err)
{
    return st->ops->head(st, bucket, key, out, meta, err);
}

int store_list(struct store *st, const char *bucket, const char *prefix, const char *delimiter,
               const struct store_list_cb *cb, err_t *err)
{
    return st->ops->list(st, bucket, prefix, delimiter, cb, err);
}

int store_read_at(struct store *st, const char *bucket, const char *key,
                  const struct store_object *obj, uint64_t off, uint8_t *dst, size_t n, err_t *err)
{
    struct iovec one = {.iov_base = dst, .iov_len = n};
    return st->ops->read_at(st, bucket, key, obj, off, &one, 1, err);
}

int store_read_atv(struct store *st, const char *bucket, const char *key,
                   const struct store_object *obj, uint64_t off, const struct iovec *iov,
                   unsigned iovcnt, err_t *err)
{
    return st->ops->read_at(st, bucket, key, obj, off, iov, iovcnt, err);
}

int store_open_source(struct store *st, const char *bucket, const char *key,
                      const struct store_object *obj, unsigned parallel, struct source **out,
                      err_t *err)
{
    return st->ops->open_source(st, bucket, key, obj, parallel, out, err);
}

int store_get_all(struct store *st, const char *bucket, const char *key, const char *etag,
                  struct buf *b, err_t *err)
{
    return st->ops->get_all(st, bucket, key, etag, b, err);
}

int store_put(struct store *st, const char *bucket, const char *key, const void *body, size_t len,
              const char *content_type, const struct http_header *meta, size_t nmeta, err_t *err)
{
    return st->ops->put(st, bucket, key, body, len, content_type, meta, nmeta, err);
}

int store_head_version(struct store *st, const char *bucket, const char *key,
                       const char *version_id, struct store_object *out, err_t *err)
{
    if (st->ops->head_version == NULL)
        return err_set(err, ENOTSUP, "s3://%s/%s: this store keeps no versions", bucket, key);
    return st->ops->head_version(st, bucket, key, version_id, out, err);
}

int store_head_part(struct store *st, const char *bucket, const char *key, const char *etag,
                    unsigned part, uint64_t *part_size, unsigned *parts, err_t *err)
{
    if (st->ops->head_part == NULL)
        return err_set(err, EPROTO, "s3://%s/%s: the store does not tell part sizes", bucket, key);
    return st->ops->head_part(st, bucket, key, etag, part, part_size, parts, err);
}

int store_presign_get(struct store *st, const char *bucket, const char *key,
                      const struct store_object *obj, unsigned expires, struct buf *b, err_t *err)
{
    if (st->ops->presign_get == NULL)
        return err_set(err, ENOTSUP, "s3://%s/%s: this store makes no presigned URLs", bucket, key);
    return st->ops->presign_get(st, bucket, key, obj, expires, b, err);
}

void store_free(struct store *st)
{
    if (st)
        st->ops->destroy(st);
}

const char *store_meta_get(const struct store_meta *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->item[i].name, name) == 0)
            return m->item[i].value;
    return NULL;
}

/* ---- S3 ---- */

struct store_s3 {
    struct store base;
    struct s3_client *s3;
};

static struct s3_client *client(struct store *st)
{
    return ((struct store_s3 *)st)->s3;
}

_Static_assert(sizeof(((struct store_object *)0)->version_id) ==
                   sizeof(((struct s3_object *)0)->version_id),
               "a version id the S3 client keeps fits a store_object");

/* The S3 client's view of a known version: what source_s3_open_known pins. */
static void to_s3(const struct store_object *o, struct s3_object *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->etag, sizeof(s->etag), "%s", o->etag);
    s->size = o->size;
    s->mtime = o->mtime;
    snprintf(s->version_id, sizeof(s->version_id), "%s", o->version_id);
}

/* What a HEAD says of a version, in the store's terms. */
static void from_s3(const struct s3_object *o, struct store_object *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->etag, sizeof(out->etag), "%s", o->etag);
    out->size = o->size;
    out->mtime = o->mtime;
    snprintf(out->version_id, sizeof(out->version_id), "%s", o->version_id);
}

static int s3_head_op(struct store *st, const char *bucket, const char *key,
                      struct store_object *out, struct store_meta *meta, err_t *err)
{
    struct s3_object *o = malloc(sizeof(*o));
    if (o == NULL)
        return err_set(err, ENOMEM, "out of memory");
    int rc = s3_head(client(st), bucket, key, o, err);
    if (rc == 0) {
        from_s3(o, out);
        if (meta) {
            memset(meta, 0, sizeof(*meta));
            snprintf(meta->content_type, sizeof(meta->content_type), "%s", o->content_type);
            for (size_t i = 0; i < o->nmeta && i < STORE_META_MAX; i++) {
                snprintf(meta->item[i].name, sizeof(meta->item[i].name), "%s", o->meta[i].name);
                snprintf(meta->item[i].value, sizeof(meta->item[i].value), "%s", o->meta[i].value);
                meta->n++;
            }
        }
    }
    free(o);
    return rc;
}

static int s3_head_version_op(struct store *st, const char *bucket, const char *key,
                              const char *version_id, struct store_object *out, err_t *err)
{
    struct s3_object *o = malloc(sizeof(*o));
    if (o == NULL)
        return err_set(err, ENOMEM, "out of memory");
    int rc = s3_head_version(client(st), bucket, key, version_id, o, err);
    if (rc == 0)
        from_s3(o, out);
    free(o);
    return rc;
}

/* A listing page held until its response is read whole: the callbacks may take long (a full
 * window of work waits in them), and a response paused for minutes may be dropped by the
 * server. At most a page: 1,000 entries of keys up to 1,024 bytes. */
struct page {
    const struct store_list_cb *cb;
    struct entry {
        char *name; /* a key, or a common prefix (is_prefix) */
        bool is_prefix;
        struct store_object o;
    } * v;
    size_t n, cap;
};

static int hold(struct page *p, const char *name, const struct store_object *o, err_t *err)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 1024;
        struct entry *v = realloc(p->v, cap * sizeof(*v));
        if (v == NULL)
            return err_set(err, ENOMEM, "out of memory");
        p->v = v;
        p->cap = cap;
    }
    struct entry *e = &p->v[p->n];
    if ((e->name = strdup(name)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    e->is_prefix = o == NULL;
    if (o)
        e->o = *o;
    p->n++;
    return 0;
}

static void drop(struct page *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].name);
    p->n = 0;
}

static int on_object(void *ctx, const struct s3xml_object *x, err_t *err)
{
    struct store_object o = {.size = x->size, .mtime = x->last_modified};
    snprintf(o.etag, sizeof(o.etag), "%s", x->etag);
    return hold(ctx, x->key, &o, err);
}

static int on_prefix(void *ctx, const char *prefix, size_t len, err_t *err)
{
    (void)len;
    return hold(ctx, prefix, NULL, err);
}

static int on_page_end(void *ctx, err_t *err)
{
    struct page *p = ctx;
    const struct store_list_cb *cb = p->cb;
    int rc = 0;
    for (size_t i = 0; i < p->n && rc == 0; i++) {
        struct entry *e = &p->v[i];
        if (e->is_prefix)
            rc = cb->prefix ? cb->prefix(cb->ctx, e->name, err) : 0;
        else
            rc = cb->object ? cb->object(cb->ctx, e->name, &e->o, err) : 0;
    }
    drop(p);
    return rc;
}

static int s3_list_op(struct store *st, const char *bucket, const char *prefix,
                      const char *delimiter, const struct store_list_cb *cb, err_t *err)
{
    struct page p = {.cb = cb};
    struct s3xml_list_opts lo = {
        .on_object = on_object, .on_prefix = on_prefix, .ctx = &p, .on_page_end = on_page_end};
    int rc = s3_list(client(st), bucket, prefix, delimiter, &lo, err);
    drop(&p);
    free(p.v);
    return rc;
}

static int s3_open_op(struct store *st, const char *bucket, const char *key,
                      const struct store_object *obj, unsigned parallel, struct source **out,
                      err_t *err)
{
    struct s3_object *o = malloc(sizeof(*o));
    if (o == NULL)
        return err_set(err, ENOMEM, "out of memory");
    to_s3(obj, o);
    int rc = source_s3_open_known(client(st), bucket, key, o, parallel, out, err);
    free(o);
    return rc;
}

static int s3_read_at_op(struct store *st, const char *bucket, const char *key,
                         const struct store_object *obj, uint64_t off, const struct iovec *iov,
                         unsigned iovcnt, err_t *err)
{
    struct source *src = NULL;
    int rc = s3_open_op(st, bucket, key, obj, 1, &src, err);
    if (rc == 0)
        rc = source_s3_read_range(src, off, iov, iovcnt, err);
    source_free(src);
    return rc;
}

static int s3_get_all_op(struct store *st, const char *bucket, const char *key, const char *etag,
                         struct buf *b, err_t *err)
{
    return s3_get_all(client(st), bucket, key, etag, b, err);
}

static int s3_put_op(struct store *st, const char *bucket, const char *key, const void *body,
                     size_t len, const char *content_type, const struct http_header *meta,
                     size_t nmeta, err_t *err)
{
    return s3_put(client(st), bucket, key, body, len, content_type, meta, nmeta, NULL, err);
}

static int s3_head_part_op(struct store *st, const char *bucket, const char *key, const char *etag,
                           unsigned part, uint64_t *part_size, unsigned *parts, err_t *err)
{
    return s3_head_part(client(st), bucket, key, etag, part, part_size, parts, err);
}

static int s3_presign_get_op(struct store *st, const char *bucket, const char *key,
                             const struct store_object *obj, unsigned expires, struct buf *b,
                             err_t *err)
{
    return s3_presign_get(client(st), bucket, key, obj->version_id, expires, b, err);
}

static void s3_destroy(struct store *st)
{
    free(st);
}

static const struct store_ops s3_ops = {
    .head = s3_head_op,
    .head_version = s3_head_version_op,
    .list = s3_list_op,
    .read_at = s3_read_at_op,
    .open_source = s3_open_op,
    .get_all = s3_get_all_op,
    .put = s3_put_op,
    .head_part = s3_head_part_op,
    .presign_get = s3_presign_get_op,
    .destroy = s3_destroy,
};

struct store *store_s3_new(struct s3_client *s3)
{
    struct store_s3 *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->base.ops = &s3_ops;
    st->s3 = s3;
    return &st->base;
}
