/* source_concat.c — several sources read as one: what a multi-file torrent hashes (v1 pieces
 * span files; pads are runs of zeros). Parts open on first read and close once fully read. */
#include "s3torrent/source.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    struct source *src; /* open while some of its bytes are unread */
    uint64_t left;      /* bytes no stream has read yet */
    unsigned users;     /* streams inside the part now */
};

struct concat_source {
    struct source base;
    const struct source_part *parts;
    size_t n;
    uint64_t *starts; /* n + 1 offsets: part i is [starts[i], starts[i + 1]) */
    struct slot *slots;
    pthread_mutex_t lock; /* guards slots */
};

struct concat_stream {
    uint64_t off, end;
    size_t part;   /* the part off is in, once entered */
    void *sub;     /* the part's own stream, or NULL */
    uint64_t read; /* bytes read from the current part by this stream */
    bool entered;  /* part is the one holding off */
    bool inside;   /* counted among the part's users (a part with a source) */
};

/* The part holding byte off (< size): the last one starting at or before it. */
static size_t locate(const struct concat_source *c, uint64_t off)
{
    size_t lo = 0, hi = c->n; /* the answer is in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->starts[mid + 1] <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int concat_stream_open(struct source *s, uint64_t off, uint64_t len, void **stream,
                              err_t *err)
{
    struct concat_stream *cs = calloc(1, sizeof(*cs));
    if (cs == NULL)
        return err_set(err, ENOMEM, "%s: out of memory", s->display);
    cs->off = off;
    cs->end = off + len;
    *stream = cs;
    return 0;
}

/* Enters part i: opens its source when no stream has, and its own stream from the offset. */
static int enter(struct concat_source *c, struct concat_stream *cs, size_t i, err_t *err)
{
    const struct source_part *p = &c->parts[i];
    struct slot *sl = &c->slots[i];
    int rc = 0;
    cs->part = i;
    cs->read = 0;
    cs->entered = true;
    if (p->open == NULL)
        return 0;
    pthread_mutex_lock(&c->lock);
    if (sl->src == NULL) {
        struct source *src = NULL;
        if ((rc = p->open(p->arg, &src, err)) == 0 && src->size != p->size) {
            rc = err_set(err, ESTALE, "%s: %llu bytes, expected %llu", src->display,
                         (unsigned long long)src->size, (unsigned long long)p->size);
            source_free(src);
        } else if (rc == 0) {
            sl->src = src;
        }
    }
    if (rc == 0)
        sl->users++;
    pthread_mutex_unlock(&c->lock);
    if (rc)
        return rc;
    cs->inside = true;
    uint64_t rel = cs->off - c->starts[i];
    uint64_t stop = cs->end < c->starts[i + 1] ? cs->end : c->starts[i + 1];
    return sl->src->ops->stream_open(sl->src, rel, stop - cs->off, &cs->sub, err);
}

/* Leaves the current part; the last reader of a fully read part checks and closes it. */
static int leave(struct concat_source *c, struct concat_stream *cs, err_t *err)
{
    struct slot *sl = &c->slots[cs->part];
    struct source *done = NULL;
    int rc = 0;
    cs->entered = false;
    if (!cs->inside)
        return 0;
    if (cs->sub)
        sl->src->ops->stream_close(sl->src, cs->sub);
    cs->sub = NULL;
    cs->inside = false;
    pthread_mutex_lock(&c->lock);
    sl->left -= cs->read;
    if (--sl->users == 0 && sl->left == 0) {
        done = sl->src;
        sl->src = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    if (done) {
        rc = done->ops->finish(done, err);
        source_free(done);
    }
    return rc;
}

static int concat_stream_next(struct source *s, void *stream, size_t n, uint8_t *scratch,
                              const uint8_t **data, err_t *err)
{
    struct concat_source *c = (struct concat_source *)s;
    struct concat_stream *cs = stream;
    size_t at = 0;
    int rc;
    if (n > cs->end - cs->off)
        return err_set(err, EINVAL, "%s: read past the range", s->display);
    *data = scratch;
    while (at < n) {
        if (!cs->entered && (rc = enter(c, cs, locate(c, cs->off), err)))
            return rc;
        size_t i = cs->part;
        uint64_t part_end = c->starts[i + 1];
        size_t take = n - at;
        if (take > part_end - cs->off)
            take = (size_t)(part_end - cs->off);
        if (c->parts[i].open == NULL) {
            memset(scratch + at, 0, take);
        } else {
            const uint8_t *got;
            struct source *sub = c->slots[i].src;
            if ((rc = sub->ops->stream_next(sub, cs->sub, take, scratch + at, &got, err)))
                return rc;
            if (got != scratch + at)
                memcpy(scratch + at, got, take);
        }
        at += take;
        cs->off += take;
        cs->read += take;
        /* a part is left where it ends or where the stream does, so the last reader of it
         * closes it, whichever that is */
        if ((cs->off == part_end || cs->off == cs->end) && (rc = leave(c, cs, err)))
            return rc;
    }
    return 0;
}

static void concat_stream_close(struct source *s, void *stream)
{
    struct concat_source *c = (struct concat_source *)s;
    struct concat_stream *cs = stream;
    if (cs->inside) {
        /* a stream given up on leaves its unread bytes unread: destroy closes the part */
        if (cs->sub)
            c->slots[cs->part].src->ops->stream_close(c->slots[cs->part].src, cs->sub);
        pthread_mutex_lock(&c->lock);
        c->slots[cs->part].left -= cs->read;
        c->slots[cs->part].users--;
        pthread_mutex_unlock(&c->lock);
    }
    free(cs);
}

static int concat_finish(struct source *s, err_t *err)
{
    struct concat_source *c = (struct concat_source *)s;
    for (size_t i = 0; i < c->n; i++)
        if (c->slots[i].src != NULL)
            return err_set(err, EIO, "%s: not read to its end", c->slots[i].src->display);
    return 0;
}

static void concat_destroy(struct source *s)
{
    struct concat_source *c = (struct concat_source *)s;
    for (size_t i = 0; c->slots && i < c->n; i++)
        source_free(c->slots[i].src);
    free(c->slots);
    free(c->starts);
    pthread_mutex_destroy(&c->lock);
}

static const struct source_ops concat_ops = {
    concat_stream_open,  concat_stream_next, NULL,
    concat_stream_close, concat_finish,      concat_destroy,
};

int source_concat_open(const char *name, const char *display, const struct source_part *parts,
                       size_t n, struct source **out, err_t *err)
{
    struct concat_source *c = calloc(1, sizeof(*c));
    *out = NULL;
    if (c == NULL)
        return err_set(err, ENOMEM, "%s: out of memory", display);
    pthread_mutex_init(&c->lock, NULL);
    c->base.ops = &concat_ops;
    c->parts = parts;
    c->n = n;
    c->base.name = strdup(name);
    c->base.display = strdup(display);
    c->starts = malloc((n + 1) * sizeof(*c->starts));
    c->slots = calloc(n ? n : 1, sizeof(*c->slots));
    if (c->base.name == NULL || c->base.display == NULL || c->starts == NULL || c->slots == NULL) {
        source_free(&c->base);
        return err_set(err, ENOMEM, "%s: out of memory", display);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        c->starts[i] = off;
        c->slots[i].left = parts[i].size;
        off += parts[i].size;
        if (parts[i].open != NULL && parts[i].mtime > c->base.mtime)
            c->base.mtime = parts[i].mtime;
    }
    c->starts[n] = off;
    c->base.size = off;
    c->base.span = 1u << 20;
    *out = &c->base;
    return 0;
}
