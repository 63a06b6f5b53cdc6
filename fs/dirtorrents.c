/* dirtorrents.c — directory torrents. A plan lists the directory's objects as `create` does
 * (store_prefix_scan) and lays the torrent out with zeroed hashes (its exact size, before any
 * byte is read); the maker makes it as `create s3://BUCKET/PREFIX/` does (maker_make_prefix:
 * cached whole, keyed by the listing). One generation per directory at a time, at most
 * max_generations at once. */
#include "dirtorrents.h"
#include "cache.h"
#include "s3torrent/maker.h"
#include "s3torrent/torrent.h"
#include "s3torrent/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS 256 /* directories whose size is remembered (direct-mapped) */

/* What the last listing of one directory said its torrent is. */
struct slot {
    char *prefix;
    const struct fs_settings *set; /* the settings it was made with: SIGHUP forgets it */
    double at;                     /* monotonic seconds */
    int rc;                        /* 0 or ENOENT */
    uint64_t size;
    int64_t mtime;
};

/* A directory whose torrent is being made. */
struct busy {
    const char *prefix; /* the caller's */
    struct busy *next;
};

struct dirt {
    struct dirt_config cfg;
    struct maker_cache mcache;
    struct maker maker; /* for the per-object hashes of v2 and hybrid torrents */
    pthread_mutex_t lock;
    pthread_cond_t cv; /* a generation finished */
    struct slot slots[SLOTS];
    struct busy *busy;
    unsigned running;
    struct dirt_stats stats;
};

/* One directory's torrent as it is now, before hashing. */
struct plan {
    struct source_dir dir;
    struct torrent_opts to;
    char *ws;
    struct buf layout; /* the torrent with zeroed hashes */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct slot *slot_of(struct dirt *d, const char *prefix)
{
    unsigned h = 2166136261u;
    for (const char *s = prefix; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return &d->slots[h % SLOTS];
}

/* Remembers what a listing of prefix said (an allocation failure only forgets it). */
static void remember(struct dirt *d, const char *prefix, const struct fs_settings *set, int rc,
                     uint64_t size, int64_t mtime)
{
    char *copy = strdup(prefix);
    pthread_mutex_lock(&d->lock);
    struct slot *s = slot_of(d, prefix);
    free(s->prefix);
    *s = (struct slot){copy, set, now_s(), rc, size, mtime};
    pthread_mutex_unlock(&d->lock);
}

struct skips {
    const struct dirt *d;
    bool logged;
};

static void skipped(void *arg, const char *key, const char *why)
{
    struct skips *s = arg;
    if (!s->logged)
        log_msg(s->d->cfg.log, LOG_WARNING,
                "s3://%s/%s: left out of its directory's torrent: %s (logged once per listing)",
                s->d->cfg.bucket, key, why);
    s->logged = true;
}

static void plan_free(struct plan *p)
{
    source_dir_free(&p->dir);
    free(p->ws);
    buf_free(&p->layout);
}

/* Lists prefix and lays out its torrent under set. Returns 0, ENOENT when it has none, or
 * another errno with err set; the caller frees p with plan_free (also after a failure). */
static int plan_make(struct dirt *d, const struct fs_settings *set, const char *prefix,
                     struct plan *p, err_t *err)
{
    const struct dirt_config *c = &d->cfg;
    struct skips sk = {d, false};
    err_t why = {0};
    memset(p, 0, sizeof(*p));
    buf_init(&p->layout, (size_t)1 << 30);
    pthread_mutex_lock(&d->lock);
    d->stats.lists++;
    pthread_mutex_unlock(&d->lock);
    int rc = store_prefix_scan(c->store, c->bucket, prefix, NULL, 0, NULL, 0, skipped, &sk, &p->dir,
                               err);
    if (rc)
        return rc;
    uint64_t total = 0;
    for (size_t i = 0; i < p->dir.n; i++)
        total += p->dir.parts[i].size;
    /* no byte to share: no torrent, as for a zero-byte object (docs/DESIGN.md §3) */
    if (total == 0)
        return ENOENT;
    size_t pl = strlen(prefix);
    char *parent_key = strndup(prefix, pl - 1); /* the web seed is made as create makes it */
    if (parent_key == NULL || torrent_recipe_set_opts(&set->recipe, p->dir.name, parent_key,
                                                      p->dir.mtime, &p->to, &p->ws) != 0) {
        free(parent_key);
        return err_set(err, ENOMEM, "out of memory");
    }
    free(parent_key);
    p->to.span = p->dir.span;
    p->to.parallel = p->dir.parallel;
    /* a path no torrent can hold, or options no torrent of this size can have: no torrent */
    if ((rc = torrent_files_order(p->dir.parts, p->dir.n, p->to.meta, false, &why)) != 0 ||
        (rc = torrent_layout_files(p->dir.name, p->dir.parts, p->dir.n, &p->to, &p->layout,
                                   &why)) != 0) {
        if (rc != EINVAL && rc != EFBIG)
            return err_set(err, rc, "%s: %s", p->dir.display, why.msg);
        log_msg(c->log, LOG_WARNING, "%s: no directory torrent: %s", p->dir.display, why.msg);
        return ENOENT;
    }
    return 0;
}

int dirt_stat(struct dirt *d, const char *prefix, uint64_t *size, int64_t *mtime, err_t *err)
{
    const struct fs_settings *set = live_get(d->cfg.live);
    pthread_mutex_lock(&d->lock);
    struct slot *s = slot_of(d, prefix);
    if (s->prefix && strcmp(s->prefix, prefix) == 0 && s->set == set &&
        now_s() - s->at < set->ttl) {
        int rc = s->rc;
        *size = s->size;
        *mtime = s->mtime;
        pthread_mutex_unlock(&d->lock);
        return rc;
    }
    pthread_mutex_unlock(&d->lock);
    struct plan p;
    int rc = plan_make(d, set, prefix, &p, err);
    if (rc == 0) {
        *size = p.layout.len;
        *mtime = p.dir.mtime;
    }
    if (rc == 0 || rc == ENOENT)
        remember(d, prefix, set, rc, p.layout.len, p.dir.mtime);
    plan_free(&p);
    return rc;
}

/* Appends p's torrent from the cache to out: true, or false (out unchanged) when it is not
 * there. */
static bool from_cache(struct dirt *d, const char *prefix, struct plan *p, struct buf *out)
{
    err_t err = {0};
    return maker_prefix_cached(&d->maker, d->cfg.bucket, prefix, p->dir.name, &p->dir, &p->to, out,
                               NULL, &err) == 0;
}

static bool is_busy(const struct dirt *d, const char *prefix)
{
    for (const struct busy *b = d->busy; b; b = b->next)
        if (strcmp(b->prefix, prefix) == 0)
            return true;
    return false;
}

/* Makes p's torrent into out (the maker keeps it in the cache, whole and per object). */
static int make(struct dirt *d, const char *prefix, struct plan *p, struct buf *out, err_t *err)
{
    return maker_make_prefix(&d->maker, d->cfg.bucket, prefix, p->dir.name, &p->dir, &p->to, out,
                             NULL, err);
}

int dirt_get(struct dirt *d, const char *prefix, struct buf *out, err_t *err)
{
    const struct fs_settings *set = live_get(d->cfg.live);
    size_t before = out->len;
    struct plan p;
    bool cached = false;
    int rc = plan_make(d, set, prefix, &p, err);
    if (rc == 0 && !(cached = from_cache(d, prefix, &p, out))) {
        /* one generation per directory: a second reader waits, then finds it cached */
        struct busy me = {prefix, NULL};
        pthread_mutex_lock(&d->lock);
        while (is_busy(d, prefix) || d->running >= set->max_generations)
            pthread_cond_wait(&d->cv, &d->lock);
        me.next = d->busy;
        d->busy = &me;
        d->running++;
        pthread_mutex_unlock(&d->lock);
        if (!(cached = from_cache(d, prefix, &p, out)))
            rc = make(d, prefix, &p, out, err);
        pthread_mutex_lock(&d->lock);
        struct busy **pp = &d->busy;
        while (*pp != &me)
            pp = &(*pp)->next;
        *pp = me.next;
        d->running--;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->lock);
    }
    if (rc == 0) {
        pthread_mutex_lock(&d->lock);
        ++*(cached ? &d->stats.cached : &d->stats.hashed);
        pthread_mutex_unlock(&d->lock);
    }
    /* what stat says from now on is what was read */
    if (rc == 0 || rc == ENOENT)
        remember(d, prefix, set, rc, out->len - before, p.dir.mtime);
    plan_free(&p);
    return rc;
}

void dirt_stats(struct dirt *d, struct dirt_stats *out)
{
    pthread_mutex_lock(&d->lock);
    *out = d->stats;
    pthread_mutex_unlock(&d->lock);
}

struct dirt *dirt_new(const struct dirt_config *c)
{
    struct dirt *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->cfg = *c;
    if (c->cache)
        cache_as_maker_cache(c->cache, &d->mcache);
    d->maker = (struct maker){c->store, c->cache ? &d->mcache : NULL, 0, 0, c->log};
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cv, NULL);
    return d;
}

void dirt_free(struct dirt *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < SLOTS; i++)
        free(d->slots[i].prefix);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
