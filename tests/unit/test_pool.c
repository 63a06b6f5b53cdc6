/* test_pool.c — the worker pool (lib/base/pool.c): every job runs once on a worker holding the
 * caller's lock and is released once; pool_find sees queued and running jobs, pool_take hands
 * back only queued ones; shutdown finishes the running job and releases the queued ones without
 * running them; and many workers with many submitters lose and repeat nothing. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3torrent/pool.h"
#include "testutil.h"

#define MAX_JOBS 4096

struct tjob {
    struct pool_job job; /* first */
    int id;
    bool wait_gate; /* run waits (without the lock) until the gate opens */
};

/* Shared by the tests; guarded by lock, an error-checking mutex, so that unlocking it proves
 * the caller held it. */
static pthread_mutex_t lock;
static pthread_cond_t cv;
static bool gate;
static int ran[MAX_JOBS], released[MAX_JOBS];
static int running_id; /* a job waiting for the gate; -1: none */
static int bad;        /* run or release called without the lock */

static void reset(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&lock, &a);
    pthread_mutexattr_destroy(&a);
    pthread_cond_init(&cv, NULL);
    gate = false;
    memset(ran, 0, sizeof(ran));
    memset(released, 0, sizeof(released));
    running_id = -1;
    bad = 0;
}

static void done(void)
{
    pthread_cond_destroy(&cv);
    pthread_mutex_destroy(&lock);
}

static void run(struct pool_job *j, void *arg)
{
    struct tjob *t = (struct tjob *)j;
    (void)arg;
    if (pthread_mutex_unlock(&lock) != 0) { /* EPERM: not held */
        bad++;
        return;
    }
    pthread_mutex_lock(&lock);
    ran[t->id]++;
    if (t->wait_gate) {
        running_id = t->id;
        pthread_cond_broadcast(&cv);
        while (!gate)
            pthread_cond_wait(&cv, &lock); /* the lock is free meanwhile */
        running_id = -1;
    }
    pthread_cond_broadcast(&cv);
}

static void release(struct pool_job *j, void *arg)
{
    struct tjob *t = (struct tjob *)j;
    (void)arg;
    if (pthread_mutex_unlock(&lock) != 0)
        bad++;
    else
        pthread_mutex_lock(&lock);
    released[t->id]++;
    pthread_cond_broadcast(&cv);
    free(t);
}

static struct pool *start(unsigned threads, size_t max_queued)
{
    struct pool_config c = {.lock = &lock,
                            .threads = threads,
                            .max_queued = max_queued,
                            .run = run,
                            .release = release};
    struct pool *p = pool_new(&c);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(pool_threads(p), threads);
    return p;
}

static struct tjob *job(int id, bool wait_gate)
{
    struct tjob *t = calloc(1, sizeof(*t));
    ck_assert_ptr_nonnull(t);
    t->id = id;
    t->wait_gate = wait_gate;
    return t;
}

/* Submits job id; lock held. */
static bool submit(struct pool *p, int id, bool wait_gate)
{
    struct tjob *t = job(id, wait_gate);
    if (pool_submit(p, &t->job))
        return true;
    free(t);
    return false;
}

static bool is_id(const struct pool_job *j, const void *key)
{
    return ((const struct tjob *)j)->id == *(const int *)key;
}

static int sum(const int *v, int n)
{
    int s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return s;
}

START_TEST(test_jobs_run)
{
    reset();
    struct pool *p = start(3, 100);
    pthread_mutex_lock(&lock);
    for (int i = 0; i < 50; i++)
        ck_assert(submit(p, i, false));
    while (sum(released, 50) < 50)
        pthread_cond_wait(&cv, &lock);
    for (int i = 0; i < 50; i++)
        ck_assert(ran[i] == 1 && released[i] == 1);
    ck_assert_uint_eq(pool_queued(p), 0);
    int id = 7;
    ck_assert_ptr_null(pool_find(p, is_id, &id)); /* done and gone */
    pthread_mutex_unlock(&lock);
    pool_free(p);
    ck_assert_int_eq(bad, 0);
    done();
}
END_TEST

START_TEST(test_find_and_take)
{
    reset();
    struct pool *p = start(1, 3);
    pthread_mutex_lock(&lock);
    ck_assert(submit(p, 0, true));
    while (running_id != 0)
        pthread_cond_wait(&cv, &lock);
    /* 0 runs (waiting for the gate); 1, 2 and 3 wait in the queue, which then is full */
    for (int i = 1; i <= 3; i++)
        ck_assert(submit(p, i, false));
    ck_assert(!submit(p, 4, false));
    ck_assert_uint_eq(pool_queued(p), 3);
    int id = 0;
    struct pool_job *j = pool_find(p, is_id, &id);
    ck_assert_ptr_nonnull(j); /* in flight */
    ck_assert(!pool_take(p, j));
    id = 2;
    ck_assert_ptr_nonnull(j = pool_find(p, is_id, &id));
    ck_assert(pool_take(p, j)); /* the caller's again: it never runs */
    ck_assert_uint_eq(pool_queued(p), 2);
    ck_assert_ptr_null(pool_find(p, is_id, &id));
    free(j);
    id = 4;
    ck_assert_ptr_null(pool_find(p, is_id, &id));
    gate = true;
    pthread_cond_broadcast(&cv);
    while (released[0] + released[1] + released[3] < 3)
        pthread_cond_wait(&cv, &lock);
    ck_assert(ran[0] == 1 && ran[1] == 1 && ran[2] == 0 && ran[3] == 1);
    ck_assert_int_eq(released[2], 0);
    pthread_mutex_unlock(&lock);
    pool_free(p);
    ck_assert_int_eq(bad, 0);
    done();
}
END_TEST

static void *free_main(void *arg)
{
    pool_free(arg);
    return NULL;
}

START_TEST(test_shutdown_with_queued)
{
    /* no workers: every queued job is released, none run */
    reset();
    struct pool *p = start(0, 10);
    pthread_mutex_lock(&lock);
    for (int i = 0; i < 5; i++)
        ck_assert(submit(p, i, false));
    pthread_mutex_unlock(&lock);
    pool_free(p);
    ck_assert_int_eq(sum(ran, 5), 0);
    ck_assert_int_eq(sum(released, 5), 5);
    done();

    /* one worker in a job: it finishes the job, the queued ones are released unrun */
    reset();
    p = start(1, MAX_JOBS);
    pthread_mutex_lock(&lock);
    ck_assert(submit(p, 0, true));
    while (running_id != 0)
        pthread_cond_wait(&cv, &lock);
    for (int i = 1; i <= 5; i++)
        ck_assert(submit(p, i, false));
    pthread_mutex_unlock(&lock);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, free_main, p), 0);
    /* the pool refuses jobs once pool_free has begun: then open the gate */
    int id = 6;
    for (bool stopping = false; !stopping; id++) {
        ck_assert_int_lt(id, MAX_JOBS);
        pthread_mutex_lock(&lock);
        stopping = !submit(p, id, false);
        pthread_mutex_unlock(&lock);
        if (!stopping)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    pthread_mutex_lock(&lock);
    gate = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&lock);
    pthread_join(t, NULL);
    ck_assert_int_eq(ran[0], 1);
    ck_assert_int_eq(sum(ran, id), 1);
    for (int i = 0; i < id - 1; i++)
        ck_assert_msg(released[i] == 1, "job %d released %d times", i, released[i]);
    ck_assert_int_eq(released[id - 1], 0); /* refused: never the pool's */
    ck_assert_int_eq(bad, 0);
    done();
}
END_TEST

#define SUBMITTERS 4
#define PER_SUB    500

static int taken[MAX_JOBS];

static void *submitter(void *arg)
{
    struct pool *p = arg;
    static int next; /* ids, under lock */
    for (int k = 0; k < PER_SUB; k++) {
        pthread_mutex_lock(&lock);
        int id = next++;
        ck_assert(submit(p, id, false)); /* room for every job */
        /* now and then take back an older job that still waits, as a reader would */
        int old = id - 3;
        struct pool_job *j = old >= 0 && k % 5 == 0 ? pool_find(p, is_id, &old) : NULL;
        if (j && pool_take(p, j)) {
            taken[old]++;
            free(j);
        }
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

START_TEST(test_many_threads)
{
    reset();
    memset(taken, 0, sizeof(taken));
    struct pool *p = start(16, SUBMITTERS * PER_SUB);
    pthread_t t[SUBMITTERS];
    for (int i = 0; i < SUBMITTERS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, submitter, p), 0);
    for (int i = 0; i < SUBMITTERS; i++)
        pthread_join(t[i], NULL);
    int n = SUBMITTERS * PER_SUB;
    pthread_mutex_lock(&lock);
    while (sum(released, n) + sum(taken, n) < n)
        pthread_cond_wait(&cv, &lock);
    pthread_mutex_unlock(&lock);
    pool_free(p);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(ran[i] + taken[i] == 1, "job %d ran %d, taken %d", i, ran[i], taken[i]);
        ck_assert_int_eq(released[i], ran[i]);
    }
    ck_assert_int_eq(bad, 0);
    done();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pool");
    TCase *t = tcase_create("pool");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_jobs_run);
    tcase_add_test(t, test_find_and_take);
    tcase_add_test(t, test_shutdown_with_queued);
    tcase_add_test(t, test_many_threads);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
