/* test_dirt.c — the mount's directory torrents (fs/dirtorrents.c) over the in-memory store and
 * a real sqlite cache: the bytes equal the multi-file torrent of the prefix's objects (v1 and
 * hybrid with a web seed), the size stat gives before hashing equals them, keys that cannot be
 * paths are left out, a directory with no byte or a path no torrent can hold has none, the
 * cache serves it again (also to a new mount) without reading an object, a changed ETag of the
 * same size makes a new one, concurrent readers hash once, and stat lists once per TTL. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "dirtorrents.h"
#include "s3torrent/store_mem.h"
#include "testutil.h"

#define B "fsb"

static struct store *store;
static struct cache *cache;
static struct dirt *dirt;
static struct fs_settings set;
static struct live live;
static char dir[64], db[96];

static void add(const char *key, size_t n, unsigned seed)
{
    uint8_t *p = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + seed);
    ck_assert_int_eq(store_mem_add(store, B, key, p, n, 1700000000 + (int64_t)seed), 0);
    free(p);
}

static struct dirt *new_dirt(void)
{
    struct dirt_config c = {.store = store, .bucket = B, .cache = cache, .live = &live};
    struct dirt *d = dirt_new(&c);
    ck_assert_ptr_nonnull(d);
    return d;
}

static void setup(void)
{
    memset(&set, 0, sizeof(set));
    set.recipe.meta = TORRENT_V1;
    set.ttl = 3600;
    set.max_generations = 2;
    live_init(&live, &set);
    store = store_mem_new();
    ck_assert_ptr_nonnull(store);
    add("rec/s1/cam.bin", 300001, 1);
    add("rec/s1/audio/track 1.wav", 70000, 2);
    add("rec/s1/empty", 0, 3);
    add("rec/s1/a//b", 5, 4); /* an empty segment: left out */
    add("rec/s1/../up", 5, 5);
    add("rec/zeros/z", 0, 6);
    add("rec/ctl/x\x01y", 10, 7); /* a path no torrent can hold */
    snprintf(dir, sizeof(dir), "/tmp/test_dirt.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(db, sizeof(db), "%s/c/torrents.db", dir);
    err_t err = {0};
    ck_assert_msg(cache_open(db, 0, &cache, &err) == 0, "%s", err.msg);
    dirt = new_dirt();
}

static void teardown(void)
{
    char p[128];
    dirt_free(dirt);
    cache_close(cache);
    store_free(store);
    const char *files[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", db, files[i]);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/c", dir);
    rmdir(p);
    rmdir(dir);
}

/* The torrent create makes of the prefix's objects (store_prefix_scan, the recipe's set options,
 * the torrent's order, no cache) into out. Returns the newest object's date. */
static int64_t reference(const char *prefix, struct buf *out)
{
    struct source_dir d;
    struct torrent_opts o;
    char *ws;
    err_t err = {0};
    ck_assert_int_eq(store_prefix_scan(store, B, prefix, NULL, 0, NULL, 0, NULL, NULL, &d, &err),
                     0);
    char *key = strndup(prefix, strlen(prefix) - 1);
    ck_assert_int_eq(torrent_recipe_set_opts(&set.recipe, d.name, key, d.mtime, &o, &ws), 0);
    ck_assert_int_eq(torrent_files_order(d.parts, d.n, o.meta, false, &err), 0);
    ck_assert_msg(torrent_create_files(d.name, d.parts, d.n, &o, out, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    free(key);
    free(ws);
    int64_t newest = d.mtime;
    source_dir_free(&d);
    return newest;
}

static void equal_to_reference(void)
{
    struct buf want, got;
    uint64_t size;
    int64_t mtime;
    err_t err = {0};
    buf_init(&want, 1u << 30);
    buf_init(&got, 1u << 30);
    int64_t newest = reference("rec/s1/", &want);
    unsigned reads = store_mem_calls(store, STORE_OP_READ, NULL);
    ck_assert_msg(dirt_stat(dirt, "rec/s1/", &size, &mtime, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(store_mem_calls(store, STORE_OP_READ, NULL), reads); /* no byte read */
    ck_assert_msg(dirt_get(dirt, "rec/s1/", &got, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(size, got.len);
    ck_assert_int_eq(mtime, newest); /* the newest object's */
    ck_assert_uint_eq(got.len, want.len);
    ck_assert_mem_eq(got.data, want.data, want.len);
    buf_free(&want);
    buf_free(&got);
}

START_TEST(test_v1_equals_the_prefix_torrent)
{
    equal_to_reference();
}
END_TEST

START_TEST(test_hybrid_with_a_web_seed)
{
    set.recipe.meta = TORRENT_HYBRID;
    set.recipe.piece_length = 32768;
    set.recipe.webseed_base = "http://seed.example/base/";
    equal_to_reference();
    struct buf got;
    err_t err = {0};
    buf_init(&got, 1u << 30);
    ck_assert_int_eq(dirt_get(dirt, "rec/s1/", &got, &err), 0);
    /* BEP 19 for a set: the prefix's parent, which clients complete with NAME/PATH */
    ck_assert_ptr_nonnull(memmem(got.data, got.len, "29:http://seed.example/base/rec/", 32));
    buf_free(&got);
}
END_TEST

START_TEST(test_none)
{
    uint64_t size;
    int64_t mtime;
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1u << 30);
    ck_assert_int_eq(dirt_stat(dirt, "rec/zeros/", &size, &mtime, &err), ENOENT);
    ck_assert_int_eq(dirt_get(dirt, "rec/zeros/", &b, &err), ENOENT);
    ck_assert_int_eq(dirt_stat(dirt, "rec/ctl/", &size, &mtime, &err), ENOENT);
    ck_assert_int_eq(dirt_get(dirt, "rec/ctl/", &b, &err), ENOENT);
    ck_assert_int_eq(dirt_stat(dirt, "rec/nothing/", &size, &mtime, &err), ENOENT);
    ck_assert_uint_eq(b.len, 0);
    buf_free(&b);
}
END_TEST

START_TEST(test_cached_and_remounted)
{
    struct buf first, again;
    err_t err = {0};
    struct dirt_stats st;
    buf_init(&first, 1u << 30);
    buf_init(&again, 1u << 30);
    ck_assert_int_eq(dirt_get(dirt, "rec/s1/", &first, &err), 0);
    unsigned reads = store_mem_calls(store, STORE_OP_READ, NULL);
    ck_assert_uint_gt(reads, 0);
    ck_assert_int_eq(dirt_get(dirt, "rec/s1/", &again, &err), 0);
    dirt_free(dirt);
    dirt = new_dirt(); /* a remount over the same cache */
    again.len = 0;
    ck_assert_int_eq(dirt_get(dirt, "rec/s1/", &again, &err), 0);
    ck_assert_uint_eq(store_mem_calls(store, STORE_OP_READ, NULL), reads);
    ck_assert_uint_eq(again.len, first.len);
    ck_assert_mem_eq(again.data, first.data, first.len);
    dirt_stats(dirt, &st);
    ck_assert_uint_eq(st.cached, 1);
    ck_assert_uint_eq(st.hashed, 0);
    buf_free(&first);
    buf_free(&again);
}
END_TEST

START_TEST(test_changed_etag)
{
    struct buf first, now;
    uint64_t size;
    int64_t mtime;
    err_t err = {0};
    buf_init(&first, 1u << 30);
    buf_init(&now, 1u << 30);
    ck_assert_int_eq(dirt_get(dirt, "rec/s1/", &first, &err), 0);
    add("rec/s1/audio/track 1.wav", 70000, 9); /* same size and date order, other bytes */
    ck_assert_int_eq(dirt_get(dirt, "rec/s1/", &now, &err), 0);
    ck_assert_uint_eq(now.len, first.len);
    ck_assert(memcmp(now.data, first.data, first.len) != 0);
    equal_to_reference();
    ck_assert_int_eq(dirt_stat(dirt, "rec/s1/", &size, &mtime, &err), 0);
    ck_assert_uint_eq(size, now.len);
    buf_free(&first);
    buf_free(&now);
}
END_TEST

START_TEST(test_stat_lists_once_per_ttl)
{
    uint64_t size;
    int64_t mtime;
    err_t err = {0};
    struct dirt_stats st;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(dirt_stat(dirt, "rec/s1/", &size, &mtime, &err), 0);
    dirt_stats(dirt, &st);
    ck_assert_uint_eq(st.lists, 1);
    set.ttl = 0;
    ck_assert_int_eq(dirt_stat(dirt, "rec/s1/", &size, &mtime, &err), 0);
    dirt_stats(dirt, &st);
    ck_assert_uint_eq(st.lists, 2);
}
END_TEST

struct reader {
    struct buf b;
    int rc;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    err_t err = {0};
    buf_init(&r->b, 1u << 30);
    r->rc = dirt_get(dirt, "rec/s1/", &r->b, &err);
    return NULL;
}

START_TEST(test_concurrent_readers_hash_once)
{
    enum { N = 6 };
    pthread_t th[N];
    struct reader r[N];
    struct dirt_stats st;
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &r[i]), 0);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(r[i].rc, 0);
        ck_assert_uint_eq(r[i].b.len, r[0].b.len);
        ck_assert_mem_eq(r[i].b.data, r[0].b.data, r[0].b.len);
    }
    for (int i = 0; i < N; i++)
        buf_free(&r[i].b);
    dirt_stats(dirt, &st);
    ck_assert_uint_eq(st.hashed, 1);
    ck_assert_uint_eq(st.cached, N - 1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("dirt");
    TCase *t = tcase_create("dirt");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_v1_equals_the_prefix_torrent);
    tcase_add_test(t, test_hybrid_with_a_web_seed);
    tcase_add_test(t, test_none);
    tcase_add_test(t, test_cached_and_remounted);
    tcase_add_test(t, test_changed_etag);
    tcase_add_test(t, test_stat_lists_once_per_ttl);
    tcase_add_test(t, test_concurrent_readers_hash_once);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
