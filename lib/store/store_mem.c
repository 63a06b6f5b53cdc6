/* store_mem.c — the in-memory object store of store_mem.h: a sorted array of objects behind one
 * lock, a call log for the counters, and the fault schedule checked on every call. */
#include "s3torrent/store_mem.h"
#include "s3torrent/util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIST_PAGE 1000 /* keys per page, as S3's */

struct mobj {
    char *bucket, *key;
    uint8_t *data;
    size_t len;
    struct store_object o;
    struct store_meta meta;
};

struct mfault {
    struct store_mem_fault f;
    char *key;
    void *replace;
    unsigned seen, fired;
};

struct mcall {
    unsigned op;
    char *key;
};

struct store_mem {
    struct store base;
    pthread_mutex_t lock;
    struct mobj *objs;
    size_t n, cap;
    bool sorted;
    unsigned versions;
    struct mfault *faults;
    size_t nfaults;
    struct mcall *calls;
    size_t ncalls, capcalls;
};

struct msource {
    struct source base;
    struct store_mem *m;
    char *bucket, *key;
    struct store_object pin;
};

static struct store_mem *mem(struct store *st)
{
    return (struct store_mem *)st;
}

static int cmp_obj(const void *a, const void *b)
{
    const struct mobj *x = a, *y = b;
    int c = strcmp(x->bucket, y->bucket);
    return c ? c : strcmp(x->key, y->key);
}

/* Sorts when needed; the lock is held. */
static void sort(struct store_mem *m)
{
    if (!m->sorted)
        qsort(m->objs, m->n, sizeof(*m->objs), cmp_obj);
    m->sorted = true;
}

/* The first object at or after (bucket, key); the lock is held. */
static size_t lower(struct store_mem *m, const char *bucket, const char *key)
{
    sort(m);
    size_t lo = 0, hi = m->n;
    struct mobj probe = {.bucket = (char *)bucket, .key = (char *)key};
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_obj(&m->objs[mid], &probe) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct mobj *find(struct store_mem *m, const char *bucket, const char *key)
{
    size_t i = lower(m, bucket, key);
    return i < m->n && strcmp(m->objs[i].bucket, bucket) == 0 && strcmp(m->objs[i].key, key) == 0
               ? &m->objs[i]
               : NULL;
}

/* Replaces o's bytes, making a new version (ETag = MD5, as S3's single-part ETags). */
static int set_data(struct store_mem *m, struct mobj *o, const void *data, size_t len,
                    int64_t mtime)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return ENOMEM;
    if (len)
        memcpy(copy, data, len);
    unsigned char md[16];
    EVP_Digest(data ? data : "", len, md, NULL, EVP_md5(), NULL);
    free(o->data);
    o->data = copy;
    o->len = len;
    util_hex(md, 16, o->o.etag);
    o->o.size = len;
    o->o.mtime = mtime;
    snprintf(o->o.version_id, sizeof(o->o.version_id), "v%u", ++m->versions);
    return 0;
}

/* Finds or makes (bucket, key); the lock is held. NULL when out of memory. */
static struct mobj *upsert(struct store_mem *m, const char *bucket, const char *key)
{
    struct mobj *o = m->n ? find(m, bucket, key) : NULL;
    if (o)
        return o;
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        struct mobj *a = realloc(m->objs, cap * sizeof(*a));
        if (a == NULL)
            return NULL;
        m->objs = a;
        m->cap = cap;
    }
    o = &m->objs[m->n];
    memset(o, 0, sizeof(*o));
    if ((o->bucket = strdup(bucket)) == NULL || (o->key = strdup(key)) == NULL) {
        free(o->bucket);
        return NULL;
    }
    m->n++;
    m->sorted = m->n == 1 || (m->sorted && cmp_obj(&m->objs[m->n - 2], o) < 0);
    return o;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Logs the call and applies the schedule: 0 to go on, or the fault's errno with err set.
 * *short_read tells a READ to deliver half. Takes and releases the lock. */
static int enter(struct store_mem *m, unsigned op, const char *bucket, const char *key,
                 bool *short_read, err_t *err)
{
    long delay = 0;
    int rc = 0;
    if (short_read)
        *short_read = false;
    pthread_mutex_lock(&m->lock);
    if (m->ncalls == m->capcalls) {
        size_t cap = m->capcalls ? 2 * m->capcalls : 256;
        struct mcall *a = realloc(m->calls, cap * sizeof(*a));
        if (a) {
            m->calls = a;
            m->capcalls = cap;
        }
    }
    if (m->ncalls < m->capcalls)
        m->calls[m->ncalls++] = (struct mcall){op, strdup(key)};
    for (size_t i = 0; i < m->nfaults && rc == 0; i++) {
        struct mfault *f = &m->faults[i];
        if (!(f->f.ops & op) || (f->key && strstr(key, f->key) == NULL))
            continue;
        if (f->seen++ < f->f.skip || (f->f.times && f->fired >= f->f.times))
            continue;
        f->fired++;
        delay += f->f.delay_ms;
        if (f->replace) {
            struct mobj *o = find(m, bucket, key);
            if (o && set_data(m, o, f->replace, f->f.replace_len, o->o.mtime + 1) != 0)
                rc = err_set(err, ENOMEM, "out of memory");
        }
        if (f->f.short_read && short_read)
            *short_read = true;
        if (f->f.error)
            rc = err_set(err, f->f.error, "s3://%s/%s: injected fault: %s", bucket, key,
                         strerror(f->f.error));
    }
    pthread_mutex_unlock(&m->lock);
    if (delay)
        sleep_ms(delay);
    return rc;
}

static int missing(const char *bucket, const char *key, err_t *err)
{
    return err_set(err, ENOENT, "s3://%s/%s: no such object", bucket, key);
}

static int mem_head(struct store *st, const char *bucket, const char *key, struct store_object *out,
                    struct store_meta *meta, err_t *err)
{
    struct store_mem *m = mem(st);
    int rc = enter(m, STORE_OP_HEAD, bucket, key, NULL, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&m->lock);
    struct mobj *o = find(m, bucket, key);
    if (o) {
        *out = o->o;
        if (meta)
            *meta = o->meta;
    }
    pthread_mutex_unlock(&m->lock);
    return o ? 0 : missing(bucket, key, err);
}

/* The in-memory store keeps only the current version: an older version id is gone. */
static int mem_head_version(struct store *st, const char *bucket, const char *key,
                            const char *version_id, struct store_object *out, err_t *err)
{
    int rc = mem_head(st, bucket, key, out, NULL, err);
    if (rc == 0 && strcmp(out->version_id, version_id) != 0)
        rc = err_set(err, ENOENT, "s3://%s/%s: no version %s", bucket, key, version_id);
    return rc;
}

/* Delivers one page of up to LIST_PAGE entries from *pos (the lock is not held during the
 * callbacks: entries are copied out first). Returns 0 with *done set at the end. */
static int list_page(struct store_mem *m, const char *bucket, const char *prefix,
                     const char *delimiter, const struct store_list_cb *cb, char **after,
                     bool *done, err_t *err)
{
    struct entry {
        char *name;
        bool is_prefix;
        struct store_object o;
    } *page = calloc(LIST_PAGE, sizeof(*page));
    size_t np = 0, plen = strlen(prefix);
    int rc = 0;
    if (page == NULL)
        return err_set(err, ENOMEM, "out of memory");
    pthread_mutex_lock(&m->lock);
    size_t i = lower(m, bucket, *after ? *after : prefix);
    while (i < m->n && np < LIST_PAGE && strcmp(m->objs[i].bucket, bucket) == 0 &&
           strncmp(m->objs[i].key, prefix, plen) == 0) {
        struct mobj *o = &m->objs[i];
        if (*after && strcmp(o->key, *after) <= 0) {
            i++;
            continue;
        }
        const char *d = delimiter && *delimiter ? strstr(o->key + plen, delimiter) : NULL;
        if (d) {
            size_t cut = (size_t)(d - o->key) + strlen(delimiter);
            page[np].name = strndup(o->key, cut);
            page[np].is_prefix = true;
            /* skip every key under this common prefix */
            while (i < m->n && strcmp(m->objs[i].bucket, bucket) == 0 &&
                   strncmp(m->objs[i].key, o->key, cut) == 0)
                i++;
        } else {
            page[np].name = strdup(o->key);
            page[np].o = o->o;
            page[np].o.version_id[0] = '\0'; /* listings do not carry it */
            i++;
        }
        if (page[np++].name == NULL) {
            rc = ENOMEM;
            break;
        }
    }
    *done = !(i < m->n && strcmp(m->objs[i].bucket, bucket) == 0 &&
              strncmp(m->objs[i].key, prefix, plen) == 0);
    pthread_mutex_unlock(&m->lock);
    if (rc)
        err_set(err, rc, "out of memory");
    for (size_t k = 0; k < np && rc == 0; k++) {
        if (page[k].is_prefix)
            rc = cb->prefix ? cb->prefix(cb->ctx, page[k].name, err) : 0;
        else
            rc = cb->object ? cb->object(cb->ctx, page[k].name, &page[k].o, err) : 0;
    }
    if (np > 0 && rc == 0) {
        /* the next page starts after the last key of this one (all of a common prefix) */
        free(*after);
        size_t n = strlen(page[np - 1].name);
        *after = malloc(n + 5);
        if (*after == NULL)
            rc = err_set(err, ENOMEM, "out of memory");
        else if (page[np - 1].is_prefix)
            snprintf(*after, n + 5, "%s\xf4\x8f\xbf\xbf", page[np - 1].name);
        else
            snprintf(*after, n + 5, "%s", page[np - 1].name);
    }
    for (size_t k = 0; k < np; k++)
        free(page[k].name);
    free(page);
    return rc;
}

static int mem_list(struct store *st, const char *bucket, const char *prefix, const char *delimiter,
                    const struct store_list_cb *cb, err_t *err)
{
    struct store_mem *m = mem(st);
    char *after = NULL;
    bool done = false;
    int rc = 0;
    while (!done && rc == 0)
        if ((rc = enter(m, STORE_OP_LIST, bucket, prefix, NULL, err)) == 0)
            rc = list_page(m, bucket, prefix, delimiter, cb, &after, &done, err);
    free(after);
    return rc;
}

/* Copies [off, off + n) of the pinned version under the lock. */
static int copy_out(struct store_mem *m, const char *bucket, const char *key,
                    const struct store_object *pin, uint64_t off, uint8_t *dst, size_t n,
                    bool short_read, err_t *err)
{
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    struct mobj *o = find(m, bucket, key);
    if (o == NULL)
        rc = missing(bucket, key, err);
    else if (strcmp(o->o.etag, pin->etag) != 0)
        rc = err_set(err, ESTALE, "s3://%s/%s: object changed while reading it", bucket, key);
    else if (off > o->len || n > o->len - off)
        rc = err_set(err, EIO, "s3://%s/%s: bytes %llu-%llu are past its end", bucket, key,
                     (unsigned long long)off, (unsigned long long)(off + n));
    else if (short_read) {
        memcpy(dst, o->data + off, n / 2);
        rc = err_set(err, EIO, "s3://%s/%s: the connection dropped after %zu of %zu bytes", bucket,
                     key, n / 2, n);
    } else if (n)
        memcpy(dst, o->data + off, n);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mem_read_at(struct store *st, const char *bucket, const char *key,
                       const struct store_object *obj, uint64_t off, const struct iovec *iov,
                       unsigned iovcnt, err_t *err)
{
    struct store_mem *m = mem(st);
    bool short_read;
    int rc = enter(m, STORE_OP_READ, bucket, key, &short_read, err); /* one read, counted once */
    for (unsigned i = 0; rc == 0 && i < iovcnt; off += iov[i].iov_len, i++)
        rc = copy_out(m, bucket, key, obj, off, iov[i].iov_base, iov[i].iov_len, short_read, err);
    return rc;
}

struct mstream {
    uint64_t off, end;
};

static int src_open(struct source *s, uint64_t off, uint64_t len, void **stream, err_t *err)
{
    (void)s;
    struct mstream *ms = malloc(sizeof(*ms));
    if (ms == NULL)
        return err_set(err, ENOMEM, "out of memory");
    *ms = (struct mstream){off, off + len};
    *stream = ms;
    return 0;
}

static int src_next(struct source *s, void *stream, size_t n, uint8_t *scratch,
                    const uint8_t **data, err_t *err)
{
    struct msource *x = (struct msource *)s;
    struct mstream *ms = stream;
    if (n > ms->end - ms->off)
        return err_set(err, EINVAL, "read past the stream's end");
    int rc = store_read_at(&x->m->base, x->bucket, x->key, &x->pin, ms->off, scratch, n, err);
    if (rc == 0) {
        ms->off += n;
        *data = scratch;
    }
    return rc;
}

static void src_close(struct source *s, void *stream)
{
    (void)s;
    free(stream);
}

static int src_finish(struct source *s, err_t *err)
{
    struct msource *x = (struct msource *)s;
    int rc = 0;
    pthread_mutex_lock(&x->m->lock);
    struct mobj *o = find(x->m, x->bucket, x->key);
    if (o == NULL || strcmp(o->o.etag, x->pin.etag) != 0)
        rc = err_set(err, ESTALE, "s3://%s/%s: object changed while hashing", x->bucket, x->key);
    pthread_mutex_unlock(&x->m->lock);
    return rc;
}

/* Frees what is the in-memory source's own (source_free frees the rest). */
static void src_destroy(struct source *s)
{
    struct msource *x = (struct msource *)s;
    free(x->bucket);
    free(x->key);
}

static const struct source_ops msource_ops = {src_open,  src_next,   NULL,
                                              src_close, src_finish, src_destroy};

static int mem_open_source(struct store *st, const char *bucket, const char *key,
                           const struct store_object *obj, unsigned parallel, struct source **out,
                           err_t *err)
{
    struct msource *x = calloc(1, sizeof(*x));
    const char *slash = strrchr(key, '/');
    size_t dl = strlen(bucket) + strlen(key) + 7;
    if (x == NULL || (x->bucket = strdup(bucket)) == NULL || (x->key = strdup(key)) == NULL ||
        (x->base.name = strdup(slash ? slash + 1 : key)) == NULL ||
        (x->base.display = malloc(dl)) == NULL) {
        if (x) {
            x->base.ops = &msource_ops;
            source_free(&x->base);
        }
        return err_set(err, ENOMEM, "out of memory");
    }
    snprintf(x->base.display, dl, "s3://%s/%s", bucket, key);
    x->base.ops = &msource_ops;
    x->base.size = obj->size;
    x->base.mtime = obj->mtime;
    x->base.span = 1 << 20;
    x->base.parallel = parallel ? parallel : 2;
    x->m = mem(st);
    x->pin = *obj;
    *out = &x->base;
    return 0;
}

static int mem_get_all(struct store *st, const char *bucket, const char *key, const char *etag,
                       struct buf *b, err_t *err)
{
    struct store_mem *m = mem(st);
    int rc = enter(m, STORE_OP_GET, bucket, key, NULL, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&m->lock);
    struct mobj *o = find(m, bucket, key);
    if (o == NULL)
        rc = missing(bucket, key, err);
    else if (etag && strcmp(etag, o->o.etag) != 0)
        rc = err_set(err, ESTALE, "s3://%s/%s: object changed (412 Precondition Failed)", bucket,
                     key);
    else if (buf_put(b, o->data, o->len) != 0)
        rc = err_set(err, b->err, "s3://%s/%s: %zu bytes do not fit", bucket, key, o->len);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mem_put(struct store *st, const char *bucket, const char *key, const void *body,
                   size_t len, const char *content_type, const struct http_header *meta,
                   size_t nmeta, err_t *err)
{
    struct store_mem *m = mem(st);
    int rc = enter(m, STORE_OP_PUT, bucket, key, NULL, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&m->lock);
    struct mobj *o = upsert(m, bucket, key);
    if (o == NULL || set_data(m, o, body, len, (int64_t)time(NULL)) != 0) {
        rc = err_set(err, ENOMEM, "out of memory");
    } else {
        memset(&o->meta, 0, sizeof(o->meta));
        snprintf(o->meta.content_type, sizeof(o->meta.content_type), "%s",
                 content_type ? content_type : "");
        for (size_t i = 0; i < nmeta && i < STORE_META_MAX; i++) {
            snprintf(o->meta.item[i].name, sizeof(o->meta.item[i].name), "%s", meta[i].name);
            snprintf(o->meta.item[i].value, sizeof(o->meta.item[i].value), "%s", meta[i].value);
            o->meta.n++;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static void free_obj(struct mobj *o)
{
    free(o->bucket);
    free(o->key);
    free(o->data);
}

static void mem_destroy(struct store *st)
{
    struct store_mem *m = mem(st);
    for (size_t i = 0; i < m->n; i++)
        free_obj(&m->objs[i]);
    for (size_t i = 0; i < m->nfaults; i++) {
        free(m->faults[i].key);
        free(m->faults[i].replace);
    }
    for (size_t i = 0; i < m->ncalls; i++)
        free(m->calls[i].key);
    free(m->objs);
    free(m->faults);
    free(m->calls);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static const struct store_ops mem_ops = {
    .head = mem_head,
    .head_version = mem_head_version,
    .list = mem_list,
    .read_at = mem_read_at,
    .open_source = mem_open_source,
    .get_all = mem_get_all,
    .put = mem_put,
    .head_part = NULL,
    .destroy = mem_destroy,
};

struct store *store_mem_new(void)
{
    struct store_mem *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->base.ops = &mem_ops;
    m->sorted = true;
    pthread_mutex_init(&m->lock, NULL);
    return &m->base;
}

int store_mem_add(struct store *st, const char *bucket, const char *key, const void *data,
                  size_t len, int64_t mtime)
{
    struct store_mem *m = mem(st);
    pthread_mutex_lock(&m->lock);
    struct mobj *o = upsert(m, bucket, key);
    int rc = o ? set_data(m, o, data, len, mtime) : ENOMEM;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int store_mem_remove(struct store *st, const char *bucket, const char *key)
{
    struct store_mem *m = mem(st);
    pthread_mutex_lock(&m->lock);
    struct mobj *o = m->n ? find(m, bucket, key) : NULL;
    if (o) {
        free_obj(o);
        size_t i = (size_t)(o - m->objs);
        memmove(o, o + 1, (m->n - i - 1) * sizeof(*o));
        m->n--;
    }
    pthread_mutex_unlock(&m->lock);
    return o ? 0 : ENOENT;
}

int store_mem_fault(struct store *st, const struct store_mem_fault *f)
{
    struct store_mem *m = mem(st);
    int rc = ENOMEM;
    pthread_mutex_lock(&m->lock);
    struct mfault *a = realloc(m->faults, (m->nfaults + 1) * sizeof(*a));
    if (a) {
        m->faults = a;
        struct mfault *x = &a[m->nfaults];
        memset(x, 0, sizeof(*x));
        x->f = *f;
        x->key = f->key ? strdup(f->key) : NULL;
        x->replace = f->replace ? malloc(f->replace_len ? f->replace_len : 1) : NULL;
        if ((f->key == NULL || x->key) && (f->replace == NULL || x->replace)) {
            if (x->replace && f->replace_len)
                memcpy(x->replace, f->replace, f->replace_len);
            x->f.key = x->key;
            x->f.replace = x->replace;
            m->nfaults++;
            rc = 0;
        } else {
            free(x->key);
            free(x->replace);
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

unsigned store_mem_calls(struct store *st, unsigned ops, const char *key_part)
{
    struct store_mem *m = mem(st);
    unsigned n = 0;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->ncalls; i++)
        if ((m->calls[i].op & ops) &&
            (key_part == NULL || (m->calls[i].key && strstr(m->calls[i].key, key_part))))
            n++;
    pthread_mutex_unlock(&m->lock);
    return n;
}

const uint8_t *store_mem_data(struct store *st, const char *bucket, const char *key, size_t *len,
                              struct store_meta *meta)
{
    struct store_mem *m = mem(st);
    pthread_mutex_lock(&m->lock);
    struct mobj *o = m->n ? find(m, bucket, key) : NULL;
    if (o) {
        *len = o->len;
        if (meta)
            *meta = o->meta;
    }
    pthread_mutex_unlock(&m->lock);
    return o ? o->data : NULL;
}
