/* torrents.c — synthetic torrents. A generation is keyed by (key, ETag): the first reader
 * starts it, later ones wait on it, and everyone gets the same bytes. At most max_generations
 * hash at once; the rest of the filesystem carries on meanwhile. */
#include "torrents.h"
#include "cache.h"
#include "s3torrent/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
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

/* A queued background generation. */
struct prefetch {
    struct pool_job job; /* first */
    struct meta_entry e;
};

struct tgen {
    struct tgen_config cfg;
    struct maker_cache mcache;
    struct maker maker; /* over the mount's store and cache */
    pthread_mutex_t lock;
    pthread_cond_t cv; /* a flight finished, or a slot freed */
    struct flight *flights;
    unsigned running;  /* generations hashing now */
    struct tgen_stats stats; /* under lock */
    struct pool *pool; /* background generations; NULL: none */
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
    const char *bucket = t->cfg.bucket;
    struct store_object o = pin(e);
    size_t before = out->len;
    const struct fs_settings *set = live_get(t->cfg.live);
    int rc = cached_only
                 ? maker_cached(&t->maker, bucket, e->key, &o, &set->recipe, out, NULL, err)
                 : maker_make(&t->maker, bucket, e->key, &o, &set->recipe, NULL, out, NULL, err);
    if (rc == 0 && out->len - before != e->size) {
        rc = err_set(err, EIO, "s3://%s/%s: torrent of %zu bytes, but stat said %llu", bucket,
                     e->key, out->len - before, (unsigned long long)e->size);
        out->len = before;
    }
    pthread_mutex_lock(&t->lock);
    if (rc == 0)
        ++*(cached_only ? &t->stats.cached : &t->stats.hashed);
    else if (!(cached_only && rc == ENOENT))
        t->stats.failed++;
    pthread_mutex_unlock(&t->lock);
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
    int rc;
    err_t cerr = {0};
    /* cached hashes cost no slot: only generations that read the object wait for one */
    if ((rc = generate(t, e, true, out, &cerr)) == 0)
        return 0;
    if (rc != ENOENT)
        log_msg(t->cfg.log, LOG_WARNING, "%s", cerr.msg);
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
    while (t->running >= live_get(t->cfg.live)->max_generations)
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

/* A pool job: the lock is held on entry and exit, not while the torrent is made. */
static void prefetch_run(struct pool_job *j, void *arg)
{
    struct tgen *t = arg;
    struct prefetch *p = (struct prefetch *)j;
    struct buf b;
    err_t err = {0};
    buf_init(&b, (size_t)1 << 30);
    pthread_mutex_unlock(&t->lock);
    if (tgen_get(t, &p->e, &b, &err) != 0)
        log_msg(t->cfg.log, LOG_WARNING, "prefetching a torrent: %s", err.msg);
    buf_free(&b);
    pthread_mutex_lock(&t->lock);
}

static void prefetch_release(struct pool_job *j, void *arg)
{
    struct prefetch *p = (struct prefetch *)j;
    (void)arg;
    meta_entry_clear(&p->e);
    free(p);
}

static bool same_version(const struct pool_job *j, const void *key)
{
    const struct meta_entry *a = &((const struct prefetch *)j)->e, *b = key;
    return strcmp(a->key, b->key) == 0 && strcmp(a->etag, b->etag) == 0;
}

void tgen_prefetch(struct tgen *t, const struct meta_entry *e)
{
    if (t->pool == NULL || pool_threads(t->pool) == 0)
        return;
    struct buf probe;
    buf_init(&probe, (size_t)1 << 30);
    int cached = generate(t, e, true, &probe, NULL);
    buf_free(&probe);
    if (cached == 0)
        return;
    struct prefetch *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return;
    p->e = *e;
    p->e.name = strdup(e->name);
    p->e.key = strdup(e->key);
    p->e.etag = strdup(e->etag);
    bool queued = false;
    pthread_mutex_lock(&t->lock);
    if (p->e.name && p->e.key && p->e.etag && pool_find(t->pool, same_version, &p->e) == NULL)
        queued = pool_submit(t->pool, &p->job);
    if (!queued)
        prefetch_release(&p->job, t);
    pthread_mutex_unlock(&t->lock);
}

struct tgen *tgen_new(const struct tgen_config *c)
{
    struct tgen *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->cfg = *c;
    if (c->cache)
        cache_as_maker_cache(c->cache, &t->mcache);
    t->maker = (struct maker){c->store, c->cache ? &t->mcache : NULL, 0, 0, c->log};
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (c->prefetchers > 0 && c->cache) {
        struct pool_config pc = {.lock = &t->lock,
                                 .threads = c->prefetchers,
                                 .max_queued = PREFETCH_QUEUE,
                                 .run = prefetch_run,
                                 .release = prefetch_release,
                                 .arg = t};
        if ((t->pool = pool_new(&pc)) == NULL) {
            tgen_free(t);
            return NULL;
        }
    }
    return t;
}

void tgen_free(struct tgen *t)
{
    if (t == NULL)
        return;
    pool_free(t->pool);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void tgen_stats(struct tgen *t, struct tgen_stats *out)
{
    pthread_mutex_lock(&t->lock);
    *out = t->stats;
    pthread_mutex_unlock(&t->lock);
}
