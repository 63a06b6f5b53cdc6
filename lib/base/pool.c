/* pool.c — the worker pool. Queued and running jobs are two intrusive lists under the caller's
 * lock; a worker takes the oldest queued job, runs it (the job may drop the lock while it
 * works), and releases it. Shutdown finishes what runs and releases what waits. */
#include "s3torrent/pool.h"

#include <stdlib.h>

struct pool {
    struct pool_config cfg;
    pthread_cond_t work; /* a job was queued, or the pool stops */
    struct lru queue;    /* touched on submit: the oldest runs first */
    struct lru running;
    bool stop;
    pthread_t *threads;
    unsigned nthreads;
};

#define JOB(n) LRU_ENTRY(n, struct pool_job, node)

static void *worker(void *arg)
{
    struct pool *p = arg;
    pthread_mutex_lock(p->cfg.lock);
    for (;;) {
        while (!p->stop && p->queue.n == 0)
            pthread_cond_wait(&p->work, p->cfg.lock);
        if (p->stop)
            break;
        struct lru_node *n = lru_pop(&p->queue);
        struct pool_job *j = JOB(n);
        j->running = true;
        lru_touch(&p->running, &j->node);
        p->cfg.run(j, p->cfg.arg);
        lru_remove(&p->running, &j->node);
        j->running = false;
        p->cfg.release(j, p->cfg.arg);
    }
    pthread_mutex_unlock(p->cfg.lock);
    return NULL;
}

struct pool *pool_new(const struct pool_config *c)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    if ((p->threads = calloc(c->threads ? c->threads : 1, sizeof(pthread_t))) == NULL) {
        free(p);
        return NULL;
    }
    p->cfg = *c;
    lru_init(&p->queue);
    lru_init(&p->running);
    pthread_cond_init(&p->work, NULL);
    for (unsigned i = 0; i < c->threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
            break;
        p->nthreads++;
    }
    return p;
}

void pool_free(struct pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(p->cfg.lock);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(p->cfg.lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_lock(p->cfg.lock);
    for (struct lru_node *n; (n = lru_pop(&p->queue)) != NULL;)
        p->cfg.release(JOB(n), p->cfg.arg);
    pthread_mutex_unlock(p->cfg.lock);
    pthread_cond_destroy(&p->work);
    free(p->threads);
    free(p);
}

unsigned pool_threads(const struct pool *p)
{
    return p->nthreads;
}

bool pool_submit(struct pool *p, struct pool_job *j)
{
    if (p->stop || p->queue.n >= p->cfg.max_queued)
        return false;
    j->running = false;
    j->node.newer = j->node.older = NULL;
    lru_touch(&p->queue, &j->node);
    pthread_cond_signal(&p->work);
    return true;
}

struct pool_job *pool_find(struct pool *p, bool (*match)(const struct pool_job *j, const void *key),
                           const void *key)
{
    const struct lru *lists[] = {&p->queue, &p->running};
    for (size_t i = 0; i < 2; i++)
        for (struct lru_node *n = lru_oldest(lists[i]); n; n = n->newer)
            if (match(JOB(n), key))
                return JOB(n);
    return NULL;
}

bool pool_take(struct pool *p, struct pool_job *j)
{
    if (j->running)
        return false;
    lru_remove(&p->queue, &j->node);
    return true;
}

size_t pool_queued(const struct pool *p)
{
    return p->queue.n;
}
