/* test_tgen.c — the mount's torrents (fs/torrents.c) over the in-memory store: eight readers of
 * one uncached torrent share one generation (the object is read once, every reader gets the
 * same bytes, equal to the maker's), a torrent whose length differs from what stat said is
 * never served, and background generation (the worker pool) fills the cache, and stops with
 * work still queued. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "meta.h"
#include "s3torrent/store_mem.h"
#include "testutil.h"
#include "torrents.h"

#define B    "fsb"
#define SIZE (2 * 1024 * 1024 + 77)

static struct store *store;
static struct tgen *tgen;
static struct fs_settings set;
static struct live live;
static struct meta_entry entry;

static void setup(void)
{
    memset(&set, 0, sizeof(set));
    store = store_mem_new();
    ck_assert_ptr_nonnull(store);
    set.recipe.meta = TORRENT_HYBRID;
    set.max_generations = 2;
    live_init(&live, &set);
    uint8_t *p = malloc(SIZE);
    for (size_t i = 0; i < SIZE; i++)
        p[i] = (uint8_t)(i * 13 / 7);
    ck_assert_int_eq(store_mem_add(store, B, "m/obj.bin", p, SIZE, 1700000000), 0);
    free(p);
    struct store_object o;
    ck_assert_int_eq(store_head(store, B, "m/obj.bin", &o, NULL, NULL), 0);
    entry = (struct meta_entry){.name = "obj.bin.torrent",
                                .kind = META_TORRENT,
                                .key = "m/obj.bin",
                                .etag = strdup(o.etag),
                                .mtime = o.mtime,
                                .object_size = SIZE};
    entry.size = meta_torrent_size(&set, entry.key, SIZE, o.mtime);
    struct tgen_config c = {.store = store, .bucket = B, .live = &live}; /* no cache */
    tgen = tgen_new(&c);
    ck_assert_ptr_nonnull(tgen);
}

static void teardown(void)
{
    tgen_free(tgen);
    free(entry.etag);
    store_free(store);
}

struct reader {
    struct buf b;
    int rc;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    err_t err = {0};
    buf_init(&r->b, 1u << 30);
    r->rc = tgen_get(tgen, &entry, &r->b, &err);
    return NULL;
}

START_TEST(test_single_flight)
{
    /* the reference: the maker's bytes, and how many reads one generation takes */
    struct maker mk = {.store = store};
    struct store_object o = {.size = SIZE, .mtime = entry.mtime};
    strcpy(o.etag, entry.etag);
    struct buf want;
    buf_init(&want, 1u << 30);
    ck_assert_int_eq(maker_make(&mk, B, entry.key, &o, &set.recipe, NULL, &want, NULL, NULL), 0);
    unsigned one = store_mem_calls(store, STORE_OP_READ, NULL);
    ck_assert_uint_gt(one, 0);
    ck_assert_uint_eq(want.len, entry.size);
    /* slow reads, so that the eight readers overlap */
    struct store_mem_fault slow = {.ops = STORE_OP_READ, .delay_ms = 100};
    ck_assert_int_eq(store_mem_fault(store, &slow), 0);
    struct reader r[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(r[i].rc, 0);
        ck_assert(r[i].b.len == want.len && memcmp(r[i].b.data, want.data, want.len) == 0);
        buf_free(&r[i].b);
    }
    ck_assert_uint_eq(store_mem_calls(store, STORE_OP_READ, NULL), 2 * one);
    buf_free(&want);
}
END_TEST

START_TEST(test_wrong_size_never_served)
{
    entry.size += 1; /* what stat said differs from the bytes */
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1u << 30);
    ck_assert_int_eq(tgen_get(tgen, &entry, &b, &err), EIO);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "stat said"));
    buf_free(&b);
}
END_TEST

/* A TORRENT entry for a new object key of n bytes. */
static struct meta_entry add_entry(const char *key, size_t n)
{
    uint8_t *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + n);
    ck_assert_int_eq(store_mem_add(store, B, key, p, n, 1700000000), 0);
    free(p);
    struct store_object o;
    ck_assert_int_eq(store_head(store, B, key, &o, NULL, NULL), 0);
    struct meta_entry e = {.name = "x.torrent",
                           .kind = META_TORRENT,
                           .key = (char *)key,
                           .etag = strdup(o.etag),
                           .mtime = o.mtime,
                           .object_size = n};
    e.size = meta_torrent_size(&set, key, n, o.mtime);
    return e;
}

START_TEST(test_prefetch)
{
    char dir[] = "/tmp/s3t-tgen-XXXXXX", db[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(db, sizeof(db), "%s/t.db", dir);
    struct cache *cache;
    err_t err = {0};
    ck_assert_msg(cache_open(db, 0, &cache, &err) == 0, "%s", err.msg);
    struct tgen_config c = {
        .store = store, .bucket = B, .cache = cache, .live = &live, .prefetchers = 1};
    struct tgen *bg = tgen_new(&c);
    ck_assert_ptr_nonnull(bg);
    struct maker_cache mc;
    cache_as_maker_cache(cache, &mc);
    struct maker mk = {.store = store, .cache = &mc};
    struct store_object o = {.size = SIZE, .mtime = entry.mtime};
    strcpy(o.etag, entry.etag);
    struct buf b;
    buf_init(&b, 1u << 30);

    /* a listed object's torrent is made in the background, then served from the cache */
    tgen_prefetch(bg, &entry);
    tgen_prefetch(bg, &entry); /* queued or being made: not queued twice */
    int waited = 0;
    while (maker_cached(&mk, B, entry.key, &o, &set.recipe, &b, NULL, NULL) != 0) {
        ck_assert_int_lt(waited++, 3000);
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    unsigned reads = store_mem_calls(store, STORE_OP_READ, NULL);
    ck_assert_uint_gt(reads, 0);
    b.len = 0;
    ck_assert_int_eq(tgen_get(bg, &entry, &b, &err), 0);
    ck_assert_uint_eq(b.len, entry.size);
    ck_assert_uint_eq(store_mem_calls(store, STORE_OP_READ, NULL), reads);

    /* slow reads: freeing with generations queued finishes the running one, drops the rest */
    struct meta_entry more[3] = {add_entry("m/a.bin", 300000), add_entry("m/b.bin", 300001),
                                 add_entry("m/c.bin", 300002)};
    struct store_mem_fault slow = {.ops = STORE_OP_READ, .delay_ms = 50};
    ck_assert_int_eq(store_mem_fault(store, &slow), 0);
    for (int i = 0; i < 3; i++)
        tgen_prefetch(bg, &more[i]);
    tgen_free(bg);
    reads = store_mem_calls(store, STORE_OP_READ, NULL);
    nanosleep(&(struct timespec){0, 100000000}, NULL);
    ck_assert_uint_eq(store_mem_calls(store, STORE_OP_READ, NULL), reads); /* nothing runs */
    for (int i = 0; i < 3; i++)
        free(more[i].etag);
    buf_free(&b);
    cache_close(cache);
    char wal[80];
    unlink(db);
    snprintf(wal, sizeof(wal), "%s-wal", db);
    unlink(wal);
    snprintf(wal, sizeof(wal), "%s-shm", db);
    unlink(wal);
    rmdir(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tgen");
    TCase *t = tcase_create("tgen");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_single_flight);
    tcase_add_test(t, test_wrong_size_never_served);
    tcase_add_test(t, test_prefetch);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
