/* store_prefix.c — the objects below an S3 prefix as parts of a concatenated source: what
 * `create s3://BUCKET/PREFIX/` lays out as a multi-file torrent (docs/DESIGN.md §3, §5). */
#include "s3torrent/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEGMENT_MAX 255
#define SPAN        (8u << 20) /* a ranged GET of megabytes, as one object's source has at least */
#define PARALLEL    8          /* GETs in flight: small objects are latency, not bandwidth */

/* A part's opener argument: the listed version, so opening costs no HEAD. */
struct pinned {
    struct store *st;
    struct store_object obj;
    const char *key; /* into name */
    char name[];     /* "BUCKET\0KEY\0" */
};

static int open_pinned(void *arg, struct source **out, err_t *err)
{
    struct pinned *p = arg;
    return store_open_source(p->st, p->name, p->key, &p->obj, 0, out, err);
}

bool store_prefix_part(const struct source_part *p, const char **bucket, const char **key,
                       const struct store_object **obj)
{
    if (p->open != open_pinned)
        return false;
    const struct pinned *a = p->arg;
    *bucket = a->name;
    *key = a->key;
    *obj = &a->obj;
    return true;
}

struct scan {
    struct store *st;
    const char *bucket;
    size_t plen; /* the prefix's length: keys relative to it start there */
    const char *const *include, *const *exclude;
    size_t ninclude, nexclude;
    void (*skip)(void *arg, const char *key, const char *why);
    void *skip_arg;
    struct source_dir *out;
};

/* Why rel cannot be a path (the mount's rules), or NULL when it can. */
static const char *unpathable(const char *rel)
{
    for (const char *seg = rel;;) {
        size_t len = strcspn(seg, "/");
        if (len == 0)
            return "an empty path segment";
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return "a '.' or '..' path segment";
        if (len > SEGMENT_MAX)
            return "a path segment over 255 bytes";
        if (seg[len] == '\0')
            return NULL;
        seg += len + 1;
    }
}

static int on_object(void *ctx, const char *key, const struct store_object *obj, err_t *err)
{
    struct scan *s = ctx;
    const char *rel = key + s->plen, *why;
    size_t rlen = strlen(rel), blen = strlen(s->bucket);
    if (rlen == 0 || rel[rlen - 1] == '/')
        return 0; /* a directory marker */
    if ((why = unpathable(rel)) != NULL) {
        if (s->skip)
            s->skip(s->skip_arg, key, why);
        return 0;
    }
    if (!source_path_kept(s->include, s->ninclude, s->exclude, s->nexclude, rel))
        return 0;
    struct source_part *p;
    int rc = source_dir_push(s->out, &p, err);
    if (rc)
        return rc;
    struct pinned *a = malloc(sizeof(*a) + blen + 1 + strlen(key) + 1);
    if (a == NULL || (p->path = strdup(rel)) == NULL) {
        free(a);
        return err_set(err, ENOMEM, "out of memory");
    }
    a->st = s->st;
    a->obj = *obj;
    memcpy(a->name, s->bucket, blen + 1);
    a->key = a->name + blen + 1;
    strcpy(a->name + blen + 1, key);
    p->arg = a;
    p->open = open_pinned;
    p->size = obj->size;
    p->mtime = obj->mtime;
    if (p->mtime > s->out->mtime)
        s->out->mtime = p->mtime;
    return 0;
}

static int cmp_path(const void *x, const void *y)
{
    return strcmp(((const struct source_part *)x)->path, ((const struct source_part *)y)->path);
}

/* The mount's rule for a key that is both a file and a directory: the directory wins. */
static void drop_shadowed(struct scan *s)
{
    struct source_dir *d = s->out;
    bool *gone = d->n ? calloc(d->n, sizeof(*gone)) : NULL;
    if (gone == NULL)
        return; /* torrent_files_order then refuses the pair */
    qsort(d->parts, d->n, sizeof(*d->parts), cmp_path);
    for (size_t i = 0; i < d->n; i++) {
        char *dir = strdup(d->parts[i].path); /* its directories, one by one */
        for (char *slash = dir ? strchr(dir, '/') : NULL; slash; slash = strchr(slash + 1, '/')) {
            *slash = '\0';
            struct source_part key = {.path = dir};
            struct source_part *f = bsearch(&key, d->parts, d->n, sizeof(*d->parts), cmp_path);
            *slash = '/';
            if (f != NULL && !gone[f - d->parts]) {
                gone[f - d->parts] = true;
                if (s->skip)
                    s->skip(s->skip_arg, ((struct pinned *)f->arg)->key,
                            "a file and a directory both: the directory is kept");
            }
        }
        free(dir);
    }
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (gone[i]) {
            free(d->parts[i].path);
            free(d->parts[i].arg);
        } else {
            d->parts[n++] = d->parts[i];
        }
    }
    d->n = n;
    free(gone);
}

int store_prefix_scan(struct store *st, const char *bucket, const char *prefix,
                      const char *const *include, size_t ninclude, const char *const *exclude,
                      size_t nexclude, void (*skip)(void *arg, const char *key, const char *why),
                      void *skip_arg, struct source_dir *out, err_t *err)
{
    struct scan s = {st,       bucket,   strlen(prefix), include,  exclude,
                     ninclude, nexclude, skip,           skip_arg, out};
    memset(out, 0, sizeof(*out));
    size_t plen = s.plen;
    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    size_t dl = strlen(bucket) + plen + 7;
    if ((out->display = malloc(dl)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    snprintf(out->display, dl, "s3://%s/%.*s", bucket, (int)plen, prefix);
    if (plen == 0) /* s3://BUCKET/: named after the bucket */
        out->display[dl - 2] = '\0';
    if ((out->name = strdup(strrchr(out->display, '/') + 1)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    if (s.plen > 0 && prefix[s.plen - 1] != '/')
        return err_set(err, EINVAL, "%s: a prefix ends in '/'", out->display);
    struct store_list_cb cb = {on_object, NULL, &s};
    int rc = store_list(st, bucket, prefix, NULL, &cb, err);
    if (rc == 0)
        drop_shadowed(&s);
    /* a stream over several objects reads megabytes per GET, several GETs in flight */
    out->span = SPAN;
    out->parallel = PARALLEL;
    return rc;
}
