/* torrents.c — synthetic torrents. A generation is keyed by (key, ETag): the first reader
 * starts it, later ones wait on it, and everyone gets the same bytes. At most max_generations
 * hash at once; the rest of the filesystem carries on meanwhile. */
#include "torrents.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PREFETCH_QUEUE 1024

struct flight {
    char *key, *etag;
    bool done;
    int rc;
    err_t err;
    struct buf bytes;
    int waiters; /* besides the generator */
    struct flight *next;
};

struct tgen {
    struct fs *fs;
    struct maker_cache mcache;
    struct maker maker; /* over the mount's store and cache */
    pthread_mutex_t lock;
    pthread_cond_t cv;    /* a flight finished, or a slot freed, or queue work */
    struct flight *flights;
    unsigned running;     /* generations hashing now */
    struct meta_entry queue[PREFETCH_QUEUE];
    size_t qhead, qlen;
    bool stop;
    pthread_t *threads;
    unsigned nthreads;
};

/* The entry's object version, as the maker pins it. */
static struct store_object pin(const struct meta_entry *e)
{
    struct store_object o = {.size = e->object_size, .mtime = e->mtime};
    snprintf(o.etag, sizeof(o.etag), "%s", e->etag);
    return o;
}

/* The torrent of e made now (cache or hashing), never of another size than stat said. */
static int generate(struct tgen *t, const struct meta_entry *e, bool cached_only, struct buf *out,
                    err_t *err)
{
    struct fs *fs = t->fs;
    struct store_object o = pin(e);
    size_t before = out->len;
    const struct fs_settings *set = fs_settings(fs);
    int rc =
        cached_only
            ? maker_cached(&t->maker, fs->cfg.bucket, e->key, &o, &set->recipe, out, NULL, err)
            : maker_make(&t->maker, fs->cfg.bucket, e->key, &o, &set->recipe, NULL, out, NULL, err);
    if (rc == 0 && out->len - before != e->size) {
        rc = err_set(err, EIO, "s3://%s/%s: torrent of %zu bytes, but stat said %llu",
                     fs->cfg.bucket, e->key, out->len - before, (unsigned long long)e->size);
        out->len = before;
    }
    return rc;
}

static void flight_free(struct flight *f)
{
    free(f->key);
    free(f->etag);
    buf_free(&f->bytes);
    free(f);
}

int tgen_get(struct tgen *t, const struct meta_entry *e, struct buf *out, err_t *err)
{
    struct fs *fs = t->fs;
    int rc;
    err_t cerr = {0};
    /* cached hashes cost no slot: only generations that read the object wait for one */
    if ((rc = generate(t, e, true, out, &cerr)) == 0)
        return 0;
    if (rc != ENOENT)
        log_msg(&fs->log, LOG_WARNING, "%s", cerr.msg);
    pthread_mutex_lock(&t->lock);
    struct flight *f = t->flights;
    while (f && !(strcmp(f->key, e->key) == 0 && strcmp(f->etag, e->etag) == 0))
        f = f->next;
    if (f != NULL) {
        /* someone is generating it: wait and share the result */
        f->waiters++;
        while (!f->done)
            pthread_cond_wait(&t->cv, &t->lock);
        rc = f->rc;
        if (rc == 0 && buf_put(out, f->bytes.data, f->bytes.len) != 0)
            rc = err_set(err, ENOMEM, "out of memory");
        else if (rc != 0 && err)
            *err = f->err;
        if (--f->waiters == 0 && f->done && f->next == f) /* detached and last */
            flight_free(f);
        pthread_mutex_unlock(&t->lock);
        return rc;
    }
    if ((f = calloc(1, sizeof(*f))) == NULL || (f->key = strdup(e->key)) == NULL ||
        (f->etag = strdup(e->etag)) == NULL) {
        if (f)
            flight_free(f);
        pthread_mutex_unlock(&t->lock);
        return err_set(err, ENOMEM, "out of memory");
    }
    buf_init(&f->bytes, (size_t)1 << 30);
    f->next = t->flights;
    t->flights = f;
    while (t->running >= fs_settings(fs)->max_generations)
        pthread_cond_wait(&t->cv, &t->lock);
    t->running++;
    pthread_mutex_unlock(&t->lock);

    f->rc = generate(t, e, false, &f->bytes, &f->err);

    pthread_mutex_lock(&t->lock);
    t->running--;
    rc = f->rc;
    if (rc == 0 && buf_put(out, f->bytes.data, f->bytes.len) != 0)
        rc = err_set(err, ENOMEM, "out of memory");
    else if (rc != 0 && err)
        *err = f->err;
    /* unlink the flight; waiters still holding it free it when the last one leaves */
    struct flight **pp = &t->flights;
    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
    f->done = true;
    f->next = f;
    pthread_cond_broadcast(&t->cv);
    if (f->waiters == 0)
        flight_free(f);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

static void *prefetcher(void *arg)
{
    struct tgen *t = arg;
    pthread_mutex_lock(&t->lock);
    for (;;) {
        while (!t->stop && t->qlen == 0)
            pthread_cond_wait(&t->cv, &t->lock);
        if (t->stop)
            break;
        struct meta_entry e = t->queue[t->qhead];
        t->qhead = (t->qhead + 1) % PREFETCH_QUEUE;
        t->qlen--;
        pthread_mutex_unlock(&t->lock);
        struct buf b;
        err_t err = {0};
        buf_init(&b, (size_t)1 << 30);
        if (tgen_get(t, &e, &b, &err) != 0)
            log_msg(&t->fs->log, LOG_WARNING, "prefetching a torrent: %s", err.msg);
        buf_free(&b);
        meta_entry_clear(&e);
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

void tgen_prefetch(struct tgen *t, const struct meta_entry *e)
{
    struct fs *fs = t->fs;
    if (t->nthreads == 0 || fs->cache == NULL)
        return;
    struct buf probe;
    buf_init(&probe, (size_t)1 << 30);
    int cached = generate(t, e, true, &probe, NULL);
    buf_free(&probe);
    if (cached == 0)
        return;
    struct meta_entry c = *e;
    c.name = strdup(e->name);
    c.key = strdup(e->key);
    c.etag = strdup(e->etag);
    pthread_mutex_lock(&t->lock);
    if (c.name && c.key && c.etag && t->qlen < PREFETCH_QUEUE) {
        t->queue[(t->qhead + t->qlen) % PREFETCH_QUEUE] = c;
        t->qlen++;
        pthread_cond_broadcast(&t->cv);
    } else {
        meta_entry_clear(&c);
    }
    pthread_mutex_unlock(&t->lock);
}

struct tgen *tgen_new(struct fs *fs)
{
    struct tgen *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->fs = fs;
    if (fs->cache)
        cache_as_maker_cache(fs->cache, &t->mcache);
    t->maker = (struct maker){fs->store, fs->cache ? &t->mcache : NULL, 0, 0, &fs->log};
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cv, NULL);
    unsigned n = fs->cfg.prefetch_torrents;
    if (n > 0 && (t->threads = calloc(n, sizeof(pthread_t))) != NULL)
        for (unsigned i = 0; i < n; i++) {
            if (pthread_create(&t->threads[i], NULL, prefetcher, t) != 0)
                break;
            t->nthreads++;
        }
    return t;
}

void tgen_free(struct tgen *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->lock);
    for (unsigned i = 0; i < t->nthreads; i++)
        pthread_join(t->threads[i], NULL);
    free(t->threads);
    for (; t->qlen > 0; t->qlen--, t->qhead = (t->qhead + 1) % PREFETCH_QUEUE)
        meta_entry_clear(&t->queue[t->qhead]);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->lock);
    free(t);
}
