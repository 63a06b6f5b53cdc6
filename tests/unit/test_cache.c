/* test_cache.c — the sqlite torrent cache: round trips, ETag replacement, LRU eviction, file modes
 * and refusals, persistence, two connections used from many threads, damaged files, buffer caps. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "testutil.h"

#define FP "fp-v1-default" /* a recipe fingerprint */

/* A private temporary directory; db is a path two levels below it, not yet created. */
struct tmp {
    char dir[64];
    char sub[96];
    char db[128];
};

static void tmp_make(struct tmp *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/s3t-cache-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    snprintf(t->sub, sizeof(t->sub), "%s/a/s3torrent", t->dir);
    snprintf(t->db, sizeof(t->db), "%s/torrents.db", t->sub);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void tmp_remove(struct tmp *t)
{
    nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct cache *open_ok(const char *path, uint64_t max)
{
    struct cache *c = NULL;
    err_t err = {0};
    int rc = cache_open(path, max, &c, &err);
    ck_assert_msg(rc == 0, "cache_open %s: %d %s", path, rc, err.msg);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* len bytes, byte i = (i * 7 + seed) mod 256. Caller frees. */
static uint8_t *payload(size_t len, unsigned seed)
{
    uint8_t *p = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 7 + seed);
    return p;
}

static void put_ok(struct cache *c, const char *key, const char *etag, size_t len, unsigned seed)
{
    uint8_t *p = payload(len, seed);
    err_t err = {0};
    int rc = cache_put(c, "bkt", key, etag, FP, p, len, &err);
    ck_assert_msg(rc == 0, "cache_put %s: %d %s", key, rc, err.msg);
    free(p);
}

/* Returns cache_get's code; on 0 checks the bytes against payload(len, seed). */
static int get_check(struct cache *c, const char *key, const char *etag, size_t len, unsigned seed)
{
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1 << 20);
    int rc = cache_get(c, "bkt", key, etag, FP, &b, &err);
    if (rc == 0) {
        uint8_t *want = payload(len, seed);
        ck_assert_uint_eq(b.len, len);
        ck_assert_msg(len == 0 || memcmp(b.data, want, len) == 0, "%s: wrong bytes", key);
        free(want);
    } else {
        ck_assert_msg(rc == ENOENT, "cache_get %s: %d %s", key, rc, err.msg);
    }
    buf_free(&b);
    return rc;
}

static struct cache_stats stats(struct cache *c)
{
    struct cache_stats s;
    err_t err = {0};
    ck_assert_int_eq(cache_stats(c, &s, &err), 0);
    return s;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
    ck_assert_int_eq(fchmod(fd, mode), 0);
    close(fd);
}

START_TEST(test_round_trip)
{
    struct tmp t;
    tmp_make(&t);
    struct cache *c = open_ok(t.db, 0);
    put_ok(c, "rec/a.mkv", "\"etag1\"", 5000, 1);
    ck_assert_int_eq(get_check(c, "rec/a.mkv", "\"etag1\"", 5000, 1), 0);
    /* a get appends to what the buffer holds */
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1 << 20);
    buf_put(&b, "xy", 2);
    ck_assert_int_eq(cache_get(c, "bkt", "rec/a.mkv", "\"etag1\"", FP, &b, &err), 0);
    ck_assert_uint_eq(b.len, 5002);
    ck_assert_int_eq(memcmp(b.data, "xy", 2), 0);
    buf_free(&b);
    /* an empty torrent is stored and returned as such */
    ck_assert_int_eq(cache_put(c, "bkt", "empty", "e", FP, NULL, 0, &err), 0);
    ck_assert_int_eq(get_check(c, "empty", "e", 0, 0), 0);
    struct cache_stats s = stats(c);
    ck_assert_uint_eq(s.entries, 2);
    ck_assert_uint_eq(s.bytes, 5000);
    ck_assert_uint_eq(s.hits, 3);
    ck_assert_uint_eq(s.misses, 0);
    ck_assert_int_eq(cache_put(c, NULL, "k", "e", FP, NULL, 0, &err), EINVAL);
    cache_close(c);
    tmp_remove(&t);
}
END_TEST

START_TEST(test_misses)
{
    struct tmp t;
    tmp_make(&t);
    struct cache *c = open_ok(t.db, 0);
    put_ok(c, "k", "e1", 100, 2);
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1 << 20);
    ck_assert_int_eq(cache_get(c, "bkt", "k", "e1", "other-fp", &b, &err), ENOENT);
    ck_assert_int_eq(cache_get(c, "bkt", "k", "e2", FP, &b, &err), ENOENT);
    ck_assert_int_eq(cache_get(c, "bkt", "k2", "e1", FP, &b, &err), ENOENT);
    ck_assert_int_eq(cache_get(c, "other", "k", "e1", FP, &b, &err), ENOENT);
    ck_assert_uint_eq(b.len, 0);
    buf_free(&b);
    struct cache_stats s = stats(c);
    ck_assert_uint_eq(s.misses, 4);
    ck_assert_uint_eq(s.hits, 0);
    cache_close(c);
    tmp_remove(&t);
}
END_TEST

START_TEST(test_new_etag_replaces)
{
    struct tmp t;
    tmp_make(&t);
    struct cache *c = open_ok(t.db, 0);
    put_ok(c, "k", "e1", 300, 1);
    put_ok(c, "k", "e1", 400, 2); /* the same four-part key: replaced */
    ck_assert_int_eq(get_check(c, "k", "e1", 400, 2), 0);
    /* another fingerprint of the same object is a different torrent: kept */
    uint8_t *p = payload(50, 9);
    err_t err = {0};
    ck_assert_int_eq(cache_put(c, "bkt", "k", "e1", "fp-v2", p, 50, &err), 0);
    free(p);
    put_ok(c, "k", "e2", 500, 3); /* a new version of the object */
    ck_assert_int_eq(get_check(c, "k", "e1", 0, 0), ENOENT);
    ck_assert_int_eq(get_check(c, "k", "e2", 500, 3), 0);
    struct cache_stats s = stats(c);
    ck_assert_uint_eq(s.entries, 2);
    ck_assert_uint_eq(s.bytes, 550);
    cache_close(c);
    tmp_remove(&t);
}
END_TEST

START_TEST(test_lru_order)
{
    struct tmp t;
    tmp_make(&t);
    struct cache *c = open_ok(t.db, 3000); /* room for three of 1000 bytes */
    put_ok(c, "a", "e", 1000, 1);
    put_ok(c, "b", "e", 1000, 2);
    put_ok(c, "c", "e", 1000, 3);
    ck_assert_int_eq(get_check(c, "a", "e", 1000, 1), 0); /* a is now newer than b and c */
    put_ok(c, "d", "e", 1000, 4);
    ck_assert_int_eq(get_check(c, "b", "e", 0, 0), ENOENT);
    ck_assert_int_eq(stats(c).evictions, 1);
    ck_assert_int_eq(get_check(c, "c", "e", 1000, 3), 0); /* order now: a d c */
    put_ok(c, "e", "e", 1000, 5);
    ck_assert_int_eq(get_check(c, "a", "e", 0, 0), ENOENT);
    ck_assert_int_eq(get_check(c, "c", "e", 1000, 3), 0);
    ck_assert_int_eq(get_check(c, "d", "e", 1000, 4), 0);
    ck_assert_int_eq(get_check(c, "e", "e", 1000, 5), 0);
    /* one put may evict several */
    put_ok(c, "big", "e", 2500, 6);
    struct cache_stats s = stats(c);
    ck_assert_uint_eq(s.entries, 1);
    ck_assert_uint_eq(s.bytes, 2500);
    ck_assert_uint_eq(s.evictions, 5);
    cache_close(c);
    tmp_remove(&t);
}
END_TEST

START_TEST(test_oversized_entry_stays)
{
    struct tmp t;
    tmp_make(&t);
    struct cache *c = open_ok(t.db, 1000);
    put_ok(c, "small", "e", 400, 1);
    put_ok(c, "huge", "e", 5000, 2);
    ck_assert_int_eq(get_check(c, "huge", "e", 5000, 2), 0);
    ck_assert_int_eq(get_check(c, "small", "e", 0, 0), ENOENT);
    struct cache_stats s = stats(c);
    ck_assert_uint_eq(s.entries, 1);
    ck_assert_uint_eq(s.bytes, 5000);
    put_ok(c, "next", "e", 10, 3); /* the next put evicts it */
    ck_assert_int_eq(get_check(c, "huge", "e", 0, 0), ENOENT);
    ck_assert_uint_eq(stats(c).bytes, 10);
    cache_close(c);
    tmp_remove(&t);
}
END_TEST

START_TEST(test_modes)
{
    struct tmp t;
    tmp_make(&t);
    mode_t old = umask(0); /* the modes must not depend on the umask */
    struct cache *c = open_ok(t.db, 0);
    put_ok(c, "k", "e", 100, 1);
    char p[160];
    ck_assert_uint_eq(mode_of(t.sub), 0700);
    ck_assert_uint_eq(mode_of(t.db), 0600);
    snprintf(p, sizeof(p), "%s-wal", t.db);
    ck_assert_uint_eq(mode_of(p), 0600);
    snprintf(p, sizeof(p), "%s-shm", t.db);
    ck_assert_uint_eq(mode_of(p), 0600);
    cache_close(c);
    umask(077);
    tmp_remove(&t);
    tmp_make(&t);
    c = open_ok(t.db, 0);
    put_ok(c, "k", "e", 100, 1);
    ck_assert_uint_eq(mode_of(t.sub), 0700);
    ck_assert_uint_eq(mode_of(t.db), 0600);
    snprintf(p, sizeof(p), "%s-wal", t.db);
    ck_assert_uint_eq(mode_of(p), 0600);
    cache_close(c);
    umask(old);
    tmp_remove(&t);
}
END_TEST

START_TEST(test_refuses_open_modes)
{
    struct tmp t;
    tmp_make(&t);
    struct cache *c = NULL;
    err_t err = {0};
    char dir[96], db[128];
    snprintf(dir, sizeof(dir), "%s/shared", t.dir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    ck_assert_int_eq(chmod(dir, 0755), 0);
    snprintf(db, sizeof(db), "%s/torrents.db", dir);
    ck_assert_int_eq(cache_open(db, 0, &c, &err), EACCES);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err.msg, "chmod 700") && strstr(err.msg, dir), "%s", err.msg);
    ck_assert_int_eq(access(db, F_OK), -1); /* nothing created */

    ck_assert_int_eq(chmod(dir, 0700), 0);
    write_file(db, "", 0, 0644);
    err_clear(&err);
    ck_assert_int_eq(cache_open(db, 0, &c, &err), EACCES);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err.msg, "chmod 600") && strstr(err.msg, db), "%s", err.msg);
    ck_assert_uint_eq(mode_of(db), 0644); /* refused, not silently changed */

    ck_assert_int_eq(chmod(db, 0600), 0);
    c = open_ok(db, 0);
    cache_close(c);
    tmp_remove(&t);
}
END_TEST

START_TEST(test_persistence)
{
    struct tmp t;
    tmp_make(&t);
    struct cache *c = open_ok(t.db, 0);
    put_ok(c, "k1", "e", 700, 1);
    put_ok(c, "k2", "e", 800, 2);
    cache_close(c);
    c = open_ok(t.db, 0);
    ck_assert_int_eq(get_check(c, "k1", "e", 700, 1), 0);
    ck_assert_int_eq(get_check(c, "k2", "e", 800, 2), 0);
    struct cache_stats s = stats(c);
    ck_assert_uint_eq(s.entries, 2);
    ck_assert_uint_eq(s.bytes, 1500);
    cache_close(c);
    tmp_remove(&t);
}
END_TEST

#define THREADS 8
#define ROUNDS  150

struct worker {
    struct cache *c;
    int id;
    int bad_rc;
    char msg[512];
};

/* Each worker writes and reads its own keys and fights over a few shared ones; any failure other
 * than a miss on a shared key (SQLITE_BUSY surfacing as EBUSY, above all) is recorded. */
static void *work(void *arg)
{
    struct worker *w = arg;
    char key[64], etag[32];
    uint8_t data[1500];
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1 << 20);
    for (int i = 0; i < ROUNDS && w->bad_rc == 0; i++) {
        for (size_t j = 0; j < sizeof(data); j++)
            data[j] = (uint8_t)(j + (size_t)i + (size_t)w->id);
        snprintf(key, sizeof(key), "own/%d/%d", w->id, i);
        int rc = cache_put(w->c, "bkt", key, "e", FP, data, sizeof(data), &err);
        if (rc == 0) {
            b.len = 0;
            rc = cache_get(w->c, "bkt", key, "e", FP, &b, &err);
            if (rc == 0 && (b.len != sizeof(data) || memcmp(b.data, data, b.len) != 0))
                rc = err_set(&err, EILSEQ, "%s: wrong bytes", key);
        }
        if (rc == 0) {
            snprintf(key, sizeof(key), "shared/%d", i % 5);
            snprintf(etag, sizeof(etag), "e%d", i % 3);
            rc = cache_put(w->c, "bkt", key, etag, FP, data, (size_t)(100 + i), &err);
        }
        if (rc == 0) {
            snprintf(key, sizeof(key), "shared/%d", (i + 2) % 5);
            b.len = 0;
            rc = cache_get(w->c, "bkt", key, etag, FP, &b, &err);
            if (rc == ENOENT)
                rc = 0;
        }
        if (rc) {
            w->bad_rc = rc;
            snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
        }
    }
    buf_free(&b);
    return NULL;
}

START_TEST(test_two_connections_many_threads)
{
    struct tmp t;
    tmp_make(&t);
    struct cache *c[2] = {open_ok(t.db, 0), open_ok(t.db, 0)};
    struct worker w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.c = c[i % 2], .id = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < THREADS; i++)
        ck_assert_msg(w[i].bad_rc == 0, "worker %d: %d %s", i, w[i].bad_rc, w[i].msg);
    /* every worker's torrents are visible through the other connection */
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1 << 20);
    char key[64];
    for (int i = 0; i < THREADS; i++) {
        for (int r = 0; r < ROUNDS; r++) {
            snprintf(key, sizeof(key), "own/%d/%d", i, r);
            b.len = 0;
            ck_assert_int_eq(cache_get(c[(i + 1) % 2], "bkt", key, "e", FP, &b, &err), 0);
            ck_assert_uint_eq(b.len, 1500);
            ck_assert_uint_eq(b.data[0], (uint8_t)(r + i));
        }
    }
    buf_free(&b);
    /* at most one ETag per shared object survived */
    struct cache_stats s = stats(c[0]);
    ck_assert_uint_le(s.entries, THREADS * ROUNDS + 5);
    ck_assert_uint_ge(s.entries, THREADS * ROUNDS + 1);
    cache_close(c[0]);
    cache_close(c[1]);
    tmp_remove(&t);
}
END_TEST

struct opener {
    const char *path;
    int id, rc;
    char msg[512];
};

/* Opens a cache (a new file: every opener races to create and migrate it), stores, closes. */
static void *open_put_close(void *arg)
{
    struct opener *o = arg;
    struct cache *c = NULL;
    err_t err = {0};
    char key[32];
    uint8_t data[64] = {0};
    snprintf(key, sizeof(key), "opener/%d", o->id);
    o->rc = cache_open(o->path, 0, &c, &err);
    if (o->rc == 0)
        o->rc = cache_put(c, "bkt", key, "e", FP, data, sizeof(data), &err);
    if (o->rc)
        snprintf(o->msg, sizeof(o->msg), "%s", err.msg);
    cache_close(c);
    return NULL;
}

START_TEST(test_concurrent_first_open)
{
    struct tmp t;
    tmp_make(&t);
    struct opener o[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        o[i] = (struct opener){.path = t.db, .id = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, open_put_close, &o[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < THREADS; i++)
        ck_assert_msg(o[i].rc == 0, "opener %d: %d %s", i, o[i].rc, o[i].msg);
    struct cache *c = open_ok(t.db, 0);
    ck_assert_uint_eq(stats(c).entries, THREADS);
    cache_close(c);
    tmp_remove(&t);
}
END_TEST

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *commit_later(void *arg)
{
    usleep(300 * 1000);
    ck_assert_int_eq(sqlite3_exec(arg, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    return NULL;
}

/* While another process holds the write lock, a get (even one that wants to record its use)
 * answers at once and a put waits for the lock instead of failing. */
START_TEST(test_reader_never_waits_writer_waits)
{
    struct tmp t;
    tmp_make(&t);
    struct cache *c = open_ok(t.db, 0);
    put_ok(c, "k", "e", 100, 1);
    put_ok(c, "k2", "e", 100, 2); /* so that the next get of k moves it up */
    sqlite3 *other = NULL;
    ck_assert_int_eq(sqlite3_open(t.db, &other), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    double t0 = now_s();
    ck_assert_int_eq(get_check(c, "k", "e", 100, 1), 0);
    ck_assert_msg(now_s() - t0 < 1.0, "a get waited %.2f s for a writer", now_s() - t0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, commit_later, other), 0);
    put_ok(c, "k3", "e", 100, 3);
    ck_assert_msg(now_s() - t0 >= 0.25, "the put did not wait for the lock");
    pthread_join(th, NULL);
    sqlite3_close(other);
    ck_assert_int_eq(get_check(c, "k3", "e", 100, 3), 0);
    cache_close(c);
    tmp_remove(&t);
}
END_TEST

START_TEST(test_thousand_entries)
{
    struct tmp t;
    tmp_make(&t);
    struct cache *c = open_ok(t.db, 0);
    char key[32];
    uint64_t total = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "obj/%04d", i);
        put_ok(c, key, "etag", (size_t)(200 + i), (unsigned)i);
        total += (uint64_t)(200 + i);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "obj/%04d", i);
        ck_assert_int_eq(get_check(c, key, "etag", (size_t)(200 + i), (unsigned)i), 0);
    }
    struct cache_stats s = stats(c);
    ck_assert_uint_eq(s.entries, 1000);
    ck_assert_uint_eq(s.bytes, total);
    ck_assert_uint_eq(s.hits, 1000);
    cache_close(c);

    /* reopened with half the budget, the next put evicts the least recently used half */
    c = open_ok(t.db, total / 2);
    put_ok(c, "new", "etag", 100, 7);
    s = stats(c);
    ck_assert_uint_le(s.bytes, total / 2);
    ck_assert_uint_gt(s.evictions, 400);
    ck_assert_int_eq(get_check(c, "obj/0000", "etag", 0, 0), ENOENT);
    ck_assert_int_eq(get_check(c, "obj/0999", "etag", 1199, 999), 0);
    ck_assert_int_eq(get_check(c, "new", "etag", 100, 7), 0);
    cache_close(c);
    tmp_remove(&t);
}
END_TEST

START_TEST(test_garbage_file)
{
    struct tmp t;
    tmp_make(&t);
    char parent[96];
    snprintf(parent, sizeof(parent), "%s/a", t.dir);
    ck_assert_int_eq(mkdir(parent, 0700), 0);
    ck_assert_int_eq(mkdir(t.sub, 0700), 0);
    const char *cases[] = {"hello, not a database\n", NULL};
    uint8_t junk[8192];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 31 + 7);
    for (int k = 0; k < 2; k++) {
        if (cases[k])
            write_file(t.db, cases[k], strlen(cases[k]), 0600);
        else
            write_file(t.db, junk, sizeof(junk), 0600);
        struct cache *c = NULL;
        err_t err = {0};
        int rc = cache_open(t.db, 0, &c, &err);
        ck_assert_msg(rc == EIO || rc == EINVAL, "case %d: %d %s", k, rc, err.msg);
        ck_assert_ptr_null(c);
        ck_assert_msg(strstr(err.msg, t.db) != NULL, "message names the file: %s", err.msg);
        ck_assert_ptr_null(strchr(err.msg, '\n'));
    }
    tmp_remove(&t);
}
END_TEST

/* Damage in the middle of a valid file: every call fails cleanly or succeeds, nothing crashes. */
START_TEST(test_damaged_pages)
{
    struct tmp t;
    tmp_make(&t);
    struct cache *c = open_ok(t.db, 0);
    char key[32];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "obj/%d", i);
        put_ok(c, key, "e", 3000, (unsigned)i);
    }
    cache_close(c); /* the last close checkpoints the WAL into the file */
    int fd = open(t.db, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    uint8_t junk[4096 * 6];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 13 + 5);
    ck_assert_int_eq(pwrite(fd, junk, sizeof(junk), 4096 * 2), (ssize_t)sizeof(junk));
    close(fd);
    err_t err = {0};
    c = NULL;
    int rc = cache_open(t.db, 0, &c, &err);
    if (rc) {
        ck_assert_msg(rc == EIO && strstr(err.msg, t.db), "%d %s", rc, err.msg);
    } else {
        for (int i = 0; i < 40; i++) {
            struct buf b;
            buf_init(&b, 1 << 20);
            snprintf(key, sizeof(key), "obj/%d", i);
            err_clear(&err);
            rc = cache_get(c, "bkt", key, "e", FP, &b, &err);
            ck_assert_msg(rc == 0 || rc == ENOENT || rc == EIO, "%s: %d %s", key, rc, err.msg);
            if (rc == EIO)
                ck_assert_msg(strstr(err.msg, t.db) != NULL, "%s", err.msg);
            buf_free(&b);
        }
        uint8_t p[100] = {0};
        rc = cache_put(c, "bkt", "obj/new", "e", FP, p, sizeof(p), &err);
        ck_assert_msg(rc == 0 || rc == EIO, "%d %s", rc, err.msg);
        cache_close(c);
    }
    tmp_remove(&t);
}
END_TEST

START_TEST(test_schema_versions)
{
    struct tmp t;
    tmp_make(&t);
    struct cache *c = open_ok(t.db, 0);
    cache_close(c);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(t.db, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    err_t err = {0};
    c = NULL;
    ck_assert_int_eq(cache_open(t.db, 0, &c, &err), ENOTSUP);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err.msg, "99") && strstr(err.msg, t.db), "%s", err.msg);

    /* someone else's database: tables, no version */
    char other[128];
    snprintf(other, sizeof(other), "%s/other.db", t.sub);
    ck_assert_int_eq(sqlite3_open(other, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(chmod(other, 0600), 0);
    err_clear(&err);
    ck_assert_int_eq(cache_open(other, 0, &c, &err), EINVAL);
    ck_assert_msg(strstr(err.msg, other) != NULL, "%s", err.msg);
    tmp_remove(&t);
}
END_TEST

START_TEST(test_buf_cap)
{
    struct tmp t;
    tmp_make(&t);
    struct cache *c = open_ok(t.db, 0);
    put_ok(c, "k", "e", 100, 1);
    struct buf b;
    err_t err = {0};
    buf_init(&b, 99);
    ck_assert_int_eq(cache_get(c, "bkt", "k", "e", FP, &b, &err), EFBIG);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_msg(strstr(err.msg, "s3://bkt/k") != NULL, "%s", err.msg);
    buf_free(&b);
    buf_init(&b, 100);
    ck_assert_int_eq(cache_get(c, "bkt", "k", "e", FP, &b, &err), 0);
    ck_assert_uint_eq(b.len, 100);
    buf_free(&b);
    cache_close(c);
    tmp_remove(&t);
}
END_TEST

START_TEST(test_default_path)
{
    char p[256];
    char *xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("XDG_CACHE_HOME", "/x/cache", 1);
    setenv("HOME", "/h", 1);
    ck_assert_int_eq(cache_default_path(p, sizeof(p)), 0);
    if (geteuid() == 0) {
        ck_assert_str_eq(p, "/var/cache/s3torrent/torrents.db");
    } else {
        ck_assert_str_eq(p, "/x/cache/s3torrent/torrents.db");
        unsetenv("XDG_CACHE_HOME");
        ck_assert_int_eq(cache_default_path(p, sizeof(p)), 0);
        ck_assert_str_eq(p, "/h/.cache/s3torrent/torrents.db");
        unsetenv("HOME");
        ck_assert_int_eq(cache_default_path(p, sizeof(p)), ENOENT);
        setenv("HOME", "/h", 1);
    }
    ck_assert_int_eq(cache_default_path(p, 10), ENAMETOOLONG);
    if (xdg)
        setenv("XDG_CACHE_HOME", xdg, 1);
    else
        unsetenv("XDG_CACHE_HOME");
    if (home)
        setenv("HOME", home, 1);
    else
        unsetenv("HOME");
    free(xdg);
    free(home);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_misses);
    tcase_add_test(tc, test_new_etag_replaces);
    tcase_add_test(tc, test_lru_order);
    tcase_add_test(tc, test_oversized_entry_stays);
    tcase_add_test(tc, test_modes);
    tcase_add_test(tc, test_refuses_open_modes);
    tcase_add_test(tc, test_persistence);
    tcase_add_test(tc, test_two_connections_many_threads);
    tcase_add_test(tc, test_concurrent_first_open);
    tcase_add_test(tc, test_reader_never_waits_writer_waits);
    tcase_add_test(tc, test_thousand_entries);
    tcase_add_test(tc, test_garbage_file);
    tcase_add_test(tc, test_damaged_pages);
    tcase_add_test(tc, test_schema_versions);
    tcase_add_test(tc, test_buf_cap);
    tcase_add_test(tc, test_default_path);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
