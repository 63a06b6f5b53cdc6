/* test_tgen.c — the mount's torrents (fs/torrents.c) over the in-memory store: eight readers of
 * one uncached torrent share one generation (the object is read once, every reader gets the
 * same bytes, equal to the maker's), and a torrent whose length differs from what stat said is
 * never served. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "s3torrent/store_mem.h"
#include "testutil.h"
#include "torrents.h"

#define B    "fsb"
#define SIZE (2 * 1024 * 1024 + 77)

static struct fs fs;
static struct fs_settings set;
static struct meta_entry entry;

static void setup(void)
{
    memset(&fs, 0, sizeof(fs));
    memset(&set, 0, sizeof(set));
    fs.store = store_mem_new();
    fs.cfg.bucket = B;
    fs.cfg.prefix = "";
    set.recipe.meta = TORRENT_HYBRID;
    set.max_generations = 2;
    atomic_store(&fs.live, &set);
    uint8_t *p = malloc(SIZE);
    for (size_t i = 0; i < SIZE; i++)
        p[i] = (uint8_t)(i * 13 / 7);
    ck_assert_int_eq(store_mem_add(fs.store, B, "m/obj.bin", p, SIZE, 1700000000), 0);
    free(p);
    struct store_object o;
    ck_assert_int_eq(store_head(fs.store, B, "m/obj.bin", &o, NULL, NULL), 0);
    entry = (struct meta_entry){.name = "obj.bin.torrent",
                                .kind = META_TORRENT,
                                .key = "m/obj.bin",
                                .etag = strdup(o.etag),
                                .mtime = o.mtime,
                                .object_size = SIZE};
    entry.size = meta_torrent_size(&fs, entry.key, SIZE, o.mtime);
    fs.tgen = tgen_new(&fs);
    ck_assert_ptr_nonnull(fs.tgen);
}

static void teardown(void)
{
    tgen_free(fs.tgen);
    free(entry.etag);
    store_free(fs.store);
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
    r->rc = tgen_get(fs.tgen, &entry, &r->b, &err);
    return NULL;
}

START_TEST(test_single_flight)
{
    /* the reference: the maker's bytes, and how many reads one generation takes */
    struct maker mk = {.store = fs.store};
    struct store_object o = {.size = SIZE, .mtime = entry.mtime};
    strcpy(o.etag, entry.etag);
    struct buf want;
    buf_init(&want, 1u << 30);
    ck_assert_int_eq(maker_make(&mk, B, entry.key, &o, &set.recipe, NULL, &want, NULL, NULL), 0);
    unsigned one = store_mem_calls(fs.store, STORE_OP_READ, NULL);
    ck_assert_uint_gt(one, 0);
    ck_assert_uint_eq(want.len, entry.size);
    /* slow reads, so that the eight readers overlap */
    struct store_mem_fault slow = {.ops = STORE_OP_READ, .delay_ms = 100};
    ck_assert_int_eq(store_mem_fault(fs.store, &slow), 0);
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
    ck_assert_uint_eq(store_mem_calls(fs.store, STORE_OP_READ, NULL), 2 * one);
    buf_free(&want);
}
END_TEST

START_TEST(test_wrong_size_never_served)
{
    entry.size += 1; /* what stat said differs from the bytes */
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1u << 30);
    ck_assert_int_eq(tgen_get(fs.tgen, &entry, &b, &err), EIO);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "stat said"));
    buf_free(&b);
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
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
