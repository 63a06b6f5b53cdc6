/* blocks.c — the block cache. A block is LOADING (one fetch, others wait), READY, or gone;
 * failed fetches are not cached, so the next read tries again. Ready blocks are evicted least
 * recently used first once the budget is passed (an lru_ list); read-ahead is a bounded queue
 * served by a few fetcher threads (a pool_), which keeps several ranged GETs in flight for a
 * sequential reader. With a disk cache, a fetch looks there first and writes there after. */
#include "s3torrent/blocks.h"
#include "s3torrent/diskcache.h"
#include "s3torrent/lru.h"
#include "s3torrent/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS  8192
#define QUEUE_MAX 256
#define RUN_MAX   4 /* read-ahead fetches up to this many adjacent blocks with one GET */
#define SPARES_MAX 32 /* block buffers kept for reuse (memory besides the budget) */

enum state { LOADING, READY };

struct block {
    struct blocks_obj *obj; /* referenced while the block exists */
    uint64_t index;
    enum state state;
    int readers; /* copying out; not evictable */
    bool read;   /* copied out at least once: read-ahead not yet read is evicted last */
    uint8_t *data;
    size_t len;
    struct block *hnext;
    struct lru_node lru;
};

#define BLOCK(n) LRU_ENTRY(n, struct block, lru)

/* A read-ahead: one GET of adjacent blocks, queued on the fetcher pool. */
struct job {
    struct pool_job pj;     /* first */
    struct blocks_obj *obj; /* referenced while the job exists */
    uint64_t index;
    unsigned count; /* adjacent blocks from index */
};

struct blocks {
    struct store *store;
    char *bucket;
    const struct logger *log;
    size_t block_size;
    uint64_t budget, used; /* bytes of block buffers: ready blocks and those being loaded */
    uint64_t ahead_blocks; /* blocks of read-ahead queued or being loaded (back-pressure) */
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a block finished loading */
    struct block *table[NBUCKETS];
    struct blocks_obj *objs; /* every object with references */
    struct lru lru;          /* blocks, most recently read last */
    struct pool *pool;       /* read-ahead fetchers, under lock */
    struct diskcache *disk;  /* the second tier, or NULL */
    struct blocks_stats stats;
    void *spares; /* freed block buffers kept for reuse, each holding the next one's address */
    unsigned nspares;
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

static void obj_release_locked(struct blocks *b, struct blocks_obj *o)
{
    if (--o->refs > 0)
        return;
    struct blocks_obj **pp = &b->objs;
    while (*pp != o)
        pp = &(*pp)->next;
    *pp = o->next;
    free(o->key);
    free(o->ident);
    free(o);
}

struct blocks_obj *blocks_obj_get(struct blocks *b, const char *key, const struct store_object *pin)
{
    size_t n = strlen(key) + strlen(pin->etag) + 2;
    char *ident = malloc(n);
    if (ident == NULL)
        return NULL;
    snprintf(ident, n, "%s\n%s", key, pin->etag);
    pthread_mutex_lock(&b->lock);
    struct blocks_obj *o = b->objs;
    while (o && strcmp(o->ident, ident) != 0)
        o = o->next;
    if (o != NULL) {
        o->refs++;
        free(ident);
    } else if ((o = calloc(1, sizeof(*o))) != NULL && (o->key = strdup(key)) != NULL) {
        o->pin = *pin;
        o->ident = ident;
        o->refs = 1;
        o->next = b->objs;
        b->objs = o;
    } else {
        free(o);
        o = NULL;
        free(ident);
    }
    pthread_mutex_unlock(&b->lock);
    return o;
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
    lru_remove(&b->lru, &k->lru);
}

/* A block buffer: a spare one, else a new one. Lock held. A buffer of a megabyte is mapped
 * afresh by malloc each time, and filling it costs a page fault per page: reusing them took a
 * quarter of `serve`'s CPU off a cold read. */
static uint8_t *buffer_take(struct blocks *b)
{
    void *p = b->spares;
    if (p == NULL)
        return malloc(b->block_size);
    memcpy(&b->spares, p, sizeof(void *));
    b->nspares--;
    return p;
}

/* Gives a buffer back: kept while there are fewer than SPARES_MAX spares and they fit in the
 * budget beside the blocks. Lock held. */
static void buffer_give(struct blocks *b, uint8_t *p)
{
    if (p == NULL)
        return;
    if (b->nspares >= SPARES_MAX || b->block_size < sizeof(void *) ||
        b->used + (uint64_t)(b->nspares + 1) * b->block_size > b->budget) {
        free(p);
        return;
    }
    memcpy(p, &b->spares, sizeof(void *));
    b->spares = p;
    b->nspares++;
}

/* Frees a block that is no longer in the table (its buffer, if it has one, was counted in
 * used). Lock held. */
static void destroy(struct blocks *b, struct block *k)
{
    b->used -= k->data ? b->block_size : 0;
    obj_release_locked(b, k->obj);
    buffer_give(b, k->data);
    free(k);
}

/* Evicts ready, unused blocks, least recently used first, until under budget: first those read
 * at least once, then read-ahead nobody has read yet. A block read ahead is claimed before the
 * reader reads the blocks in front of it, so by age alone it went first, and a sequential
 * reader whose read-ahead filled half the budget fetched most blocks twice. Lock held. */
static void evict(struct blocks *b)
{
    for (int pass = 0; pass < 2 && b->used > b->budget; pass++)
        for (struct lru_node *n = lru_oldest(&b->lru), *newer; n && b->used > b->budget;
             n = newer) {
            struct block *k = BLOCK(n);
            newer = n->newer;
            if (k->state == READY && k->readers == 0 && (k->read || pass == 1)) {
                unhash(b, k);
                destroy(b, k);
            }
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
    lru_touch(&b->lru, &k->lru);
    *fetch = true;
    return k;
}

static struct diskcache_id disk_id(const struct blocks *b, const struct block *k)
{
    const struct blocks_obj *o = k->obj;
    return (struct diskcache_id){.bucket = b->bucket,
                                 .key = o->key,
                                 .etag = o->pin.etag,
                                 .version_id = o->pin.version_id,
                                 .block_size = b->block_size,
                                 .index = k->index};
}

/* Bytes of block k: a whole block but at the end of the object. */
static size_t block_len(const struct blocks *b, const struct block *k)
{
    uint64_t boff = k->index * b->block_size, size = k->obj->pin.size;
    return size - boff < b->block_size ? (size_t)(size - boff) : b->block_size;
}

/* Loads n adjacent claimed blocks without the lock: from the disk cache those it has, the rest
 * with one ranged GET; publishes them, or drops them all on failure. Blocks that came from the
 * store are then written to the disk cache, after the waiting readers have them. */
static int load_run(struct blocks *b, struct block **k, unsigned n)
{
    struct blocks_obj *o = k[0]->obj;
    uint8_t *parts[RUN_MAX] = {0};
    bool on_disk[RUN_MAX] = {false};
    struct blocks_stats d = {0}; /* disk counters, added under the lock */
    int rc = 0;
    pthread_mutex_lock(&b->lock);
    for (unsigned i = 0; i < n && rc == 0; i++)
        if ((parts[i] = buffer_take(b)) == NULL)
            rc = ENOMEM;
        else
            b->used += b->block_size; /* counted while loading: the budget bounds it too */
    if (b->used > b->stats.peak_bytes)
        b->stats.peak_bytes = b->used;
    evict(b); /* room for them, from blocks nobody reads */
    pthread_mutex_unlock(&b->lock);
    for (unsigned i = 0; i < n && rc == 0 && b->disk; i++) {
        struct diskcache_id id = disk_id(b, k[i]);
        int dr = diskcache_get(b->disk, &id, parts[i], block_len(b, k[i]));
        on_disk[i] = dr == 0;
        d.disk_hits += dr == 0;
        d.disk_misses += dr != 0;
        d.disk_corrupt += dr == EBADMSG;
    }
    /* one GET of the blocks from the first to the last that the disk did not have */
    unsigned first = 0, last = n;
    while (first < n && on_disk[first])
        first++;
    while (last > first && on_disk[last - 1])
        last--;
    uint64_t off = 0;
    size_t len = 0;
    err_t err = {0};
    if (rc == 0 && first < last) {
        /* straight into the blocks' buffers (those the disk had in between are read again:
         * the same bytes), so a run costs no copy */
        struct iovec iov[RUN_MAX];
        off = k[first]->index * b->block_size;
        for (unsigned i = first; i < last; i++) {
            iov[i - first] = (struct iovec){.iov_base = parts[i], .iov_len = block_len(b, k[i])};
            len += iov[i - first].iov_len;
        }
        rc = store_read_atv(b->store, b->bucket, o->key, &o->pin, off, iov, last - first, &err);
        if (rc)
            log_msg(b->log, LOG_ERR, "%s", err.msg);
    } else if (rc) {
        err_set(&err, rc, "out of memory");
        log_msg(b->log, LOG_ERR, "%s", err.msg);
    }
    pthread_mutex_lock(&b->lock);
    if (first < last) {
        b->stats.gets++;
        if (rc == 0)
            b->stats.fetched += len;
    }
    b->stats.disk_hits += d.disk_hits;
    b->stats.disk_misses += d.disk_misses;
    b->stats.disk_corrupt += d.disk_corrupt;
    for (unsigned i = 0; i < n; i++) {
        if (rc == 0) {
            k[i]->data = parts[i];
            k[i]->len = block_len(b, k[i]);
            k[i]->state = READY;
            k[i]->readers += b->disk && !on_disk[i]; /* kept while written to disk */
        } else {
            b->used -= parts[i] ? b->block_size : 0;
            buffer_give(b, parts[i]);
            unhash(b, k[i]);
            destroy(b, k[i]);
        }
    }
    if (rc == 0)
        evict(b);
    pthread_cond_broadcast(&b->changed);
    pthread_mutex_unlock(&b->lock);
    if (rc != 0 || b->disk == NULL)
        return rc;
    d = (struct blocks_stats){0};
    for (unsigned i = 0; i < n; i++) {
        if (on_disk[i])
            continue;
        struct diskcache_id id = disk_id(b, k[i]);
        unsigned evicted = 0;
        d.disk_writes += diskcache_put(b->disk, &id, k[i]->data, k[i]->len, &evicted) == 0;
        d.disk_evictions += evicted;
    }
    pthread_mutex_lock(&b->lock);
    b->stats.disk_writes += d.disk_writes;
    b->stats.disk_evictions += d.disk_evictions;
    for (unsigned i = 0; i < n; i++)
        if (!on_disk[i]) /* the others may be gone already */
            k[i]->readers--;
    evict(b);
    pthread_mutex_unlock(&b->lock);
    return 0;
}

static int load(struct blocks *b, struct block *k)
{
    return load_run(b, &k, 1);
}

/* Claims a job's blocks (up to the first one someone else has) and fetches them with one GET.
 * The lock is held on entry and exit. Returns 0 or the fetch's errno. */
static int run_job(struct blocks *b, const struct job *j)
{
    struct block *run[RUN_MAX];
    unsigned n = 0;
    for (unsigned i = 0; i < j->count; i++) {
        bool fetch;
        struct block *k = claim(b, j->obj, j->index + i, &fetch);
        if (k == NULL || !fetch)
            break;
        run[n++] = k;
    }
    if (n == 0)
        return 0;
    pthread_mutex_unlock(&b->lock);
    int rc = load_run(b, run, n);
    pthread_mutex_lock(&b->lock);
    return rc;
}

static void job_run(struct pool_job *pj, void *arg)
{
    run_job(arg, (struct job *)pj);
}

static void job_release(struct pool_job *pj, void *arg)
{
    struct job *j = (struct job *)pj;
    ((struct blocks *)arg)->ahead_blocks -= j->count;
    obj_release_locked(arg, j->obj); /* the blocks hold their own references */
    free(j);
}

struct where {
    const struct blocks_obj *obj;
    uint64_t index;
};

static bool covers(const struct pool_job *pj, const void *key)
{
    const struct job *j = (const struct job *)pj;
    const struct where *w = key;
    return j->obj == w->obj && w->index >= j->index && w->index < j->index + j->count;
}

/* Takes the queued job covering block i of o out of the queue, so a reader that caught up with
 * read-ahead fetches the whole run itself; NULL when none waits. Lock held. */
static struct job *steal(struct blocks *b, const struct blocks_obj *o, uint64_t i)
{
    struct where w = {o, i};
    struct pool_job *pj = pool_find(b->pool, covers, &w);
    return pj && pool_take(b->pool, pj) ? (struct job *)pj : NULL;
}

struct blocks *blocks_new(struct store *store, const char *bucket, const struct logger *log,
                          uint64_t budget, size_t block_size, unsigned fetchers)
{
    struct blocks *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    if ((b->bucket = strdup(bucket)) == NULL) {
        free(b);
        return NULL;
    }
    b->store = store;
    b->log = log;
    b->block_size = block_size;
    b->budget = budget < 4 * block_size ? 4 * block_size : budget;
    lru_init(&b->lru);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->changed, NULL);
    struct pool_config pc = {.lock = &b->lock,
                             .threads = fetchers,
                             .max_queued = QUEUE_MAX,
                             .run = job_run,
                             .release = job_release,
                             .arg = b};
    if ((b->pool = pool_new(&pc)) == NULL) {
        blocks_free(b);
        return NULL;
    }
    return b;
}

void blocks_free(struct blocks *b)
{
    if (b == NULL)
        return;
    pool_free(b->pool); /* releases the queued jobs' references */
    for (size_t i = 0; i < NBUCKETS; i++)
        for (struct block *k = b->table[i], *n; k; k = n) {
            n = k->hnext;
            destroy(b, k);
        }
    while (b->spares)
        free(buffer_take(b));
    pthread_cond_destroy(&b->changed);
    pthread_mutex_destroy(&b->lock);
    free(b->bucket);
    free(b);
}

/* Queues read-ahead of [first, last] in aligned groups of RUN_MAX blocks, one GET each. A
 * sliding window meets a new group only every RUN_MAX blocks, so groups go out whole; a group
 * with any block present, queued or being fetched is left to the reader. Lock held. */
static void queue_ahead(struct blocks *b, struct blocks_obj *o, uint64_t first, uint64_t last,
                        uint64_t nblocks)
{
    for (uint64_t g = first / RUN_MAX; g <= last / RUN_MAX; g++) {
        uint64_t start = g * RUN_MAX, end = start + RUN_MAX - 1;
        if (end >= nblocks)
            end = nblocks - 1;
        bool busy = false;
        for (uint64_t i = start; i <= end && !busy; i++) {
            struct where w = {o, i};
            busy = find(b, o, i) != NULL || pool_find(b->pool, covers, &w) != NULL;
        }
        if (busy)
            continue;
        unsigned count = (unsigned)(end - start + 1);
        /* back-pressure: read-ahead in flight stays within half the budget, so many sequential
         * readers share it instead of growing memory (the other half keeps what was read) */
        if ((b->ahead_blocks + count) * b->block_size > b->budget / 2)
            return;
        struct job *j = malloc(sizeof(*j));
        if (j == NULL)
            return;
        *j = (struct job){.obj = o, .index = start, .count = count};
        o->refs++;
        if (!pool_submit(b->pool, &j->pj)) { /* the queue is full */
            o->refs--;
            free(j);
            return;
        }
        b->ahead_blocks += count;
    }
}

/* Queues read-ahead of the ahead bytes after block last. Lock held. */
static void read_ahead(struct blocks *b, struct blocks_obj *o, uint64_t last, uint64_t ahead)
{
    uint64_t nblocks = (o->pin.size + b->block_size - 1) / b->block_size;
    if (ahead == 0 || last + 1 >= nblocks)
        return;
    uint64_t until = last + (ahead + b->block_size - 1) / b->block_size;
    queue_ahead(b, o, last + 1, until < nblocks ? until : nblocks - 1, nblocks);
}

long blocks_take(struct blocks *b, struct blocks_obj *o, uint64_t off, size_t len, uint8_t **out,
                 uint64_t ahead)
{
    if (off >= o->pin.size || off % b->block_size != 0)
        return 0;
    uint64_t i = off / b->block_size;
    long n = 0;
    pthread_mutex_lock(&b->lock);
    read_ahead(b, o, i, ahead);
    struct block *k;
    while ((k = find(b, o, i)) != NULL && k->state == LOADING)
        pthread_cond_wait(&b->changed, &b->lock);
    /* readers also counts a block still being written to the disk cache */
    if (k != NULL && k->readers == 0 && !k->read && k->len <= len) {
        unhash(b, k);
        *out = k->data;
        n = (long)k->len;
        b->used -= b->block_size;
        b->stats.hits++;
        k->data = NULL; /* the caller's now */
        destroy(b, k);
    }
    pthread_mutex_unlock(&b->lock);
    return n;
}

long blocks_read(struct blocks *b, struct blocks_obj *o, uint64_t off, size_t len, uint8_t *dst,
                 uint64_t ahead)
{
    uint64_t size = o->pin.size;
    if (off >= size || len == 0)
        return 0;
    if (len > size - off)
        len = (size_t)(size - off);
    uint64_t first = off / b->block_size, last = (off + len - 1) / b->block_size;
    size_t done = 0;
    int rc = 0;

    pthread_mutex_lock(&b->lock);
    read_ahead(b, o, last, ahead);
    for (uint64_t i = first; i <= last && rc == 0;) {
        struct job *j;
        if (find(b, o, i) == NULL && (j = steal(b, o, i)) != NULL) {
            if (run_job(b, j) != 0)
                rc = -EIO;
            job_release(&j->pj, b);
            continue;
        }
        bool fetch;
        struct block *k = claim(b, o, i, &fetch);
        if (k == NULL) {
            rc = -ENOMEM;
            break;
        }
        if (fetch) {
            /* pinned for this reader from the start: under a full cache, other loads evict
             * idle blocks, and a block fetched here and evicted before it is copied would be
             * fetched again, and again (a load that fails drops the block, pin and all) */
            k->readers++;
            pthread_mutex_unlock(&b->lock);
            int lr = load(b, k);
            pthread_mutex_lock(&b->lock);
            if (lr) {
                rc = -EIO;
                break;
            }
            b->stats.misses++;
        } else if (k->state == LOADING) {
            /* someone else fetches it; if that fails, or it is evicted before the next look,
             * the next pass fetches it here */
            pthread_cond_wait(&b->changed, &b->lock);
            continue;
        } else {
            b->stats.hits++;
            k->readers++;
        }
        /* ready and pinned: copy out without the lock */
        lru_touch(&b->lru, &k->lru);
        pthread_mutex_unlock(&b->lock);
        uint64_t boff = i * b->block_size;
        size_t from = off + done > boff ? (size_t)(off + done - boff) : 0;
        size_t n = k->len - from < len - done ? k->len - from : len - done;
        memcpy(dst + done, k->data + from, n);
        pthread_mutex_lock(&b->lock);
        k->readers--;
        k->read = true;
        done += n;
        i++;
    }
    evict(b);
    pthread_mutex_unlock(&b->lock);
    return rc ? rc : (long)done;
}

void blocks_set_disk(struct blocks *b, struct diskcache *dc)
{
    b->disk = dc;
}

void blocks_stats(struct blocks *b, struct blocks_stats *out)
{
    pthread_mutex_lock(&b->lock);
    *out = b->stats;
    out->bytes = b->used;
    pthread_mutex_unlock(&b->lock);
}
