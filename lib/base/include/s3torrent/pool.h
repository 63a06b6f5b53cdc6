/* pool.h — a few worker threads running queued jobs, under the caller's mutex: the queue and
 * the jobs in flight are guarded by the lock that guards the caller's own state, so a caller
 * can look for a job (single flight), take it back, or queue one in the same critical section. */
#ifndef S3TORRENT_POOL_H
#define S3TORRENT_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "s3torrent/lru.h"

/* Embedded in the caller's job, which the caller allocates. */
struct pool_job {
    struct lru_node node; /* the pool's */
    bool running;         /* the pool's: a worker runs it now */
};

struct pool_config {
    pthread_mutex_t *lock; /* the caller's; guards the queue and the jobs in flight */
    unsigned threads;      /* workers to start; 0: a queue that only pool_take empties */
    size_t max_queued;     /* pool_submit refuses past this many queued jobs */
    /* Runs j on a worker. Called with *lock held; may release it while it works and returns
     * with it held. */
    void (*run)(struct pool_job *j, void *arg);
    /* Frees j: after run, and at pool_free for each job still queued. Called with *lock held. */
    void (*release)(struct pool_job *j, void *arg);
    void *arg;
};

/* Returns a pool running c's jobs on up to c->threads workers (fewer when a thread cannot
 * start; see pool_threads), or NULL when out of memory. c is copied; *c->lock is borrowed. */
struct pool *pool_new(const struct pool_config *c);
/* Stops the workers after the jobs they are running, waits for them, and releases the jobs
 * still queued. Called without the lock; while it runs, pool_submit refuses jobs. NULL is
 * ignored. */
void pool_free(struct pool *p);

/* The workers started. */
unsigned pool_threads(const struct pool *p);

/* The following are called with the lock held. */

/* Queues j and wakes a worker. Returns true, the pool owning j until it releases it, or false
 * (the queue is full, or the pool stops) with j still the caller's. */
bool pool_submit(struct pool *p, struct pool_job *j);
/* The first job, queued (oldest first) or running, for which match(j, key) is true, or NULL.
 * The job stays the pool's: use it only while the lock is held. */
struct pool_job *pool_find(struct pool *p, bool (*match)(const struct pool_job *j, const void *key),
                           const void *key);
/* Takes j out of the queue. Returns true with j the caller's again (to run or free), or false
 * when a worker already runs it. */
bool pool_take(struct pool *p, struct pool_job *j);
/* Jobs queued, not yet running. */
size_t pool_queued(const struct pool *p);

#endif
