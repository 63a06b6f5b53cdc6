/* blocks.c — the block cache. A block is LOADING (one fetch, others wait), READY, or gone;
 * failed fetches are not cached, so the next read tries again. Ready blocks are evicted least
 * recently used first once the budget is passed; read-ahead is a bounded queue served by a few
 * fetcher threads, which keeps several ranged GETs in flight for a sequential reader. */
#include "blocks.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 8192
#define QUEUE_MAX 256

enum state { LOADING, READY };

struct block {
    struct blocks_obj *obj; /* referenced while the block exists */
    uint64_t index;
    enum state state;
    int readers;            /* copying out; not evictable */
    uint8_t *data;
    size_t len;
    struct block *hnext, *prev, *next;
};

struct job {
    struct blocks_obj *obj;
    uint64_t index;
};

struct blocks {
    struct fs *fs;
    size_t block_size;
    uint64_t budget, used;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a block finished loading */
    pthread_cond_t work;    /* a job was queued, or shutdown */
    struct block *table[NBUCKETS];
    struct block *lru_head, *lru_tail;
    struct job queue[QUEUE_MAX];
    size_t qhead, qlen;
    bool stop;
    pthread_t *threads;
    unsigned nthreads;
};

static unsigned hash(const struct blocks_obj *o, uint64_t index)
{
    uintptr_t p = (uintptr_t)o;
    uint64_t h = (p >> 4) * 0x9E3779B97F4A7C15ull ^ index * 0xC2B2AE3D27D4EB4Full;
    return (unsigned)(h >> 40) % NBUCKETS;
}

static struct block *find(struct blocks *b, struct blocks_obj *o, uint64_t index)
{
    for (struct block *k = b->table[hash(o, index)]; k; k = k->hnext)
        if (k->obj == o && k->index == index)
            return k;
    return NULL;
}

static void lru_unlink(struct blocks *b, struct block *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else if (b->lru_head == k)
        b->lru_head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else if (b->lru_tail == k)
        b->lru_tail = k->prev;
    k->prev = k->next = NULL;
}

static void lru_front(struct blocks *b, struct block *k)
{
    lru_unlink(b, k);
    k->next = b->lru_head;
    if (b->lru_head)
        b->lru_head->prev = k;
    b->lru_head = k;
    if (b->lru_tail == NULL)
        b->lru_tail = k;
}

static void obj_release_locked(struct blocks *b, struct blocks_obj *o)
{
    (void)b;
    if (--o->refs > 0)
        return;
    source_free(o->src);
    free(o->ident);
    free(o);
}

void blocks_obj_ref(struct blocks *b, struct blocks_obj *o)
{
    pthread_mutex_lock(&b->lock);
    o->refs++;
    pthread_mutex_unlock(&b->lock);
}

void blocks_obj_release(struct blocks *b, struct blocks_obj *o)
{
    pthread_mutex_lock(&b->lock);
    obj_release_locked(b, o);
    pthread_mutex_unlock(&b->lock);
}

static void unhash(struct blocks *b, struct block *k)
{
    struct block **pp = &b->table[hash(k->obj, k->index)];
    while (*pp != k)
        pp = &(*pp)->hnext;
    *pp = k->hnext;
    lru_unlink(b, k);
}

/* Frees a block that is no longer in the table. Lock held. */
static void destroy(struct blocks *b, struct block *k)
{
    b->used -= k->data ? b->block_size : 0;
    obj_release_locked(b, k->obj);
    free(k->data);
    free(k);
}

/* Evicts ready, unused blocks, least recently used first, until under budget. Lock held. */
static void evict(struct blocks *b)
{
    struct block *k = b->lru_tail;
    while (k && b->used > b->budget) {
        struct block *prev = k->prev;
        if (k->state == READY && k->readers == 0) {
            unhash(b, k);
            destroy(b, k);
        }
        k = prev;
    }
}

/* Claims block index of o: returns it LOADING and owned by the caller (*fetch set), or the
 * existing one. Lock held; NULL when out of memory. */
static struct block *claim(struct blocks *b, struct blocks_obj *o, uint64_t index, bool *fetch)
{
    struct block *k = find(b, o, index);
    *fetch = false;
    if (k != NULL)
        return k;
    if ((k = calloc(1, sizeof(*k))) == NULL)
        return NULL;
    k->obj = o;
    k->index = index;
    k->state = LOADING;
    o->refs++;
    unsigned h = hash(o, index);
    k->hnext = b->table[h];
    b->table[h] = k;
    lru_front(b, k);
    *fetch = true;
    return k;
}

/* Fetches a claimed block without the lock; publishes it, or drops it on failure. */
static int load(struct blocks *b, struct block *k)
{
    struct blocks_obj *o = k->obj;
    uint64_t off = k->index * b->block_size;
    size_t len = o->src->size - off < b->block_size ? (size_t)(o->src->size - off) : b->block_size;
    uint8_t *data = malloc(b->block_size);
    err_t err = {0};
    int rc = data ? source_s3_read_range(o->src, off, data, len, &err)
                  : err_set(&err, ENOMEM, "out of memory");
    if (rc)
        log_msg(&b->fs->log, LOG_ERR, "%s", err.msg);
    pthread_mutex_lock(&b->lock);
    if (rc == 0) {
        k->data = data;
        k->len = len;
        k->state = READY;
        b->used += b->block_size;
        evict(b);
    } else {
        unhash(b, k);
        k->state = READY; /* waiters see it gone from the table and retry or fail */
        k->len = 0;
        free(data);
        destroy(b, k);
    }
    pthread_cond_broadcast(&b->changed);
    pthread_mutex_unlock(&b->lock);
    return rc;
}

static void *fetcher(void *arg)
{
    struct blocks *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (!b->stop && b->qlen == 0)
            pthread_cond_wait(&b->work, &b->lock);
        if (b->stop)
            break;
        struct job j = b->queue[b->qhead];
        b->qhead = (b->qhead + 1) % QUEUE_MAX;
        b->qlen--;
        bool fetch;
        struct block *k = claim(b, j.obj, j.index, &fetch);
        obj_release_locked(b, j.obj); /* the queue's reference */
        if (k == NULL || !fetch)
            continue;
        pthread_mutex_unlock(&b->lock);
        load(b, k);
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

struct blocks *blocks_new(struct fs *fs, uint64_t budget, size_t block_size, unsigned fetchers)
{
    struct blocks *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->fs = fs;
    b->block_size = block_size;
    b->budget = budget < 4 * block_size ? 4 * block_size : budget;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->changed, NULL);
    pthread_cond_init(&b->work, NULL);
    b->threads = calloc(fetchers ? fetchers : 1, sizeof(pthread_t));
    if (b->threads == NULL) {
        blocks_free(b);
        return NULL;
    }
    for (unsigned i = 0; i < fetchers; i++) {
        if (pthread_create(&b->threads[i], NULL, fetcher, b) != 0)
            break;
        b->nthreads++;
    }
    return b;
}

void blocks_free(struct blocks *b)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&b->lock);
    b->stop = true;
    pthread_cond_broadcast(&b->work);
    pthread_mutex_unlock(&b->lock);
    for (unsigned i = 0; i < b->nthreads; i++)
        pthread_join(b->threads[i], NULL);
    free(b->threads);
    for (; b->qlen > 0; b->qlen--, b->qhead = (b->qhead + 1) % QUEUE_MAX)
        obj_release_locked(b, b->queue[b->qhead].obj);
    for (size_t i = 0; i < NBUCKETS; i++)
        for (struct block *k = b->table[i], *n; k; k = n) {
            n = k->hnext;
            destroy(b, k);
        }
    pthread_cond_destroy(&b->changed);
    pthread_cond_destroy(&b->work);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* Queues read-ahead of blocks [first, last] not yet present. Lock held. */
static void queue_ahead(struct blocks *b, struct blocks_obj *o, uint64_t first, uint64_t last)
{
    for (uint64_t i = first; i <= last && b->qlen < QUEUE_MAX; i++) {
        if (find(b, o, i) != NULL)
            continue;
        bool queued = false;
        for (size_t q = 0; q < b->qlen && !queued; q++) {
            struct job *j = &b->queue[(b->qhead + q) % QUEUE_MAX];
            queued = j->obj == o && j->index == i;
        }
        if (queued)
            continue;
        o->refs++;
        b->queue[(b->qhead + b->qlen) % QUEUE_MAX] = (struct job){o, i};
        b->qlen++;
        pthread_cond_signal(&b->work);
    }
}

long blocks_read(struct blocks *b, struct blocks_obj *o, uint64_t off, size_t len, uint8_t *dst,
                 uint64_t ahead)
{
    uint64_t size = o->src->size;
    if (off >= size || len == 0)
        return 0;
    if (len > size - off)
        len = (size_t)(size - off);
    uint64_t first = off / b->block_size, last = (off + len - 1) / b->block_size;
    uint64_t nblocks = (size + b->block_size - 1) / b->block_size;
    size_t done = 0;
    int rc = 0;

    pthread_mutex_lock(&b->lock);
    if (ahead > 0) {
        uint64_t until = last + (ahead + b->block_size - 1) / b->block_size;
        queue_ahead(b, o, last + 1, until < nblocks ? until : nblocks - 1);
    }
    for (uint64_t i = first; i <= last && rc == 0;) {
        bool fetch;
        struct block *k = claim(b, o, i, &fetch);
        if (k == NULL) {
            rc = -ENOMEM;
            break;
        }
        if (fetch) {
            pthread_mutex_unlock(&b->lock);
            int lr = load(b, k);
            pthread_mutex_lock(&b->lock);
            if (lr) {
                rc = -EIO;
                break;
            }
            continue; /* look it up again: it may already be evicted */
        }
        if (k->state == LOADING) {
            /* someone else fetches it; if that fails, the next pass fetches it here */
            pthread_cond_wait(&b->changed, &b->lock);
            continue;
        }
        /* ready: copy out without the lock */
        k->readers++;
        lru_front(b, k);
        pthread_mutex_unlock(&b->lock);
        uint64_t boff = i * b->block_size;
        size_t from = off + done > boff ? (size_t)(off + done - boff) : 0;
        size_t n = k->len - from < len - done ? k->len - from : len - done;
        memcpy(dst + done, k->data + from, n);
        pthread_mutex_lock(&b->lock);
        k->readers--;
        done += n;
        i++;
    }
    evict(b);
    pthread_mutex_unlock(&b->lock);
    return rc ? rc : (long)done;
}
