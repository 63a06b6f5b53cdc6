/* test_blocks.c — the block cache (lib/store/blocks.c) over the in-memory store: bytes at any
 * offset, hits and the counters, LRU eviction, one fetch for concurrent readers of a block,
 * read-ahead in one ranged read, many readers within the budget, a replaced object, faults (an
 * error, a short read) that are never cached, and whole blocks taken out for a long stream. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/blocks.h"
#include "s3torrent/store_mem.h"
#include "testutil.h"

#define B    "bkt"
#define BS   65536
#define SIZE (16 * BS + 1234)

static struct store *st;
static uint8_t *data;
static struct store_object pin;

static void setup(void)
{
    st = store_mem_new();
    data = malloc(SIZE);
    for (size_t i = 0; i < SIZE; i++)
        data[i] = (uint8_t)(i * 31 + i / 251);
    ck_assert_int_eq(store_mem_add(st, B, "obj", data, SIZE, 1), 0);
    ck_assert_int_eq(store_head(st, B, "obj", &pin, NULL, NULL), 0);
}

static void teardown(void)
{
    store_free(st);
    free(data);
}

static unsigned reads(void)
{
    return store_mem_calls(st, STORE_OP_READ, NULL);
}

static void read_ok(struct blocks *b, struct blocks_obj *o, uint64_t off, size_t len)
{
    uint8_t *got = malloc(len);
    long n = blocks_read(b, o, off, len, got, 0);
    size_t want = off >= SIZE ? 0 : (len < SIZE - off ? len : SIZE - off);
    ck_assert_int_eq(n, (long)want);
    ck_assert_msg(memcmp(got, data + off, want) == 0, "bytes at %llu differ",
                  (unsigned long long)off);
    free(got);
}

START_TEST(test_bytes_and_hits)
{
    struct blocks *b = blocks_new(st, B, NULL, 64 * BS, BS, 2);
    struct blocks_obj *o = blocks_obj_get(b, "obj", &pin);
    read_ok(b, o, 0, 100);
    ck_assert_uint_eq(reads(), 1);
    read_ok(b, o, 1000, 5000); /* same block: a hit */
    ck_assert_uint_eq(reads(), 1);
    read_ok(b, o, BS - 10, 20); /* across a boundary: one more block */
    ck_assert_uint_eq(reads(), 2);
    read_ok(b, o, SIZE - 100, 4096); /* the end: short */
    read_ok(b, o, SIZE, 10);         /* past the end: nothing */
    ck_assert_uint_eq(reads(), 3);
    /* a second open of the same version shares the blocks */
    struct blocks_obj *o2 = blocks_obj_get(b, "obj", &pin);
    ck_assert_ptr_eq(o, o2);
    read_ok(b, o2, 10, 10);
    ck_assert_uint_eq(reads(), 3);
    /* the counters say the same: 3 GETs of 2 full blocks and the short last one; blocks read:
     * 0 (miss), 0 (hit), 0 and 1 (hit, miss), 16 (miss), 0 (hit) */
    struct blocks_stats bs;
    blocks_stats(b, &bs);
    ck_assert_uint_eq(bs.gets, 3);
    ck_assert_uint_eq(bs.fetched, 2 * BS + 1234);
    ck_assert_uint_eq(bs.misses, 3);
    ck_assert_uint_eq(bs.hits, 3);
    blocks_obj_release(b, o2);
    blocks_obj_release(b, o);
    blocks_free(b);
}
END_TEST

START_TEST(test_lru_eviction)
{
    struct blocks *b = blocks_new(st, B, NULL, 4 * BS, BS, 1);
    struct blocks_obj *o = blocks_obj_get(b, "obj", &pin);
    for (unsigned i = 0; i < 4; i++)
        read_ok(b, o, (uint64_t)i * BS, 1);
    read_ok(b, o, 0, 1); /* block 0 is now the most recent */
    ck_assert_uint_eq(reads(), 4);
    read_ok(b, o, 4 * BS, 1); /* evicts block 1, the least recent */
    ck_assert_uint_eq(reads(), 5);
    read_ok(b, o, 0, 1);
    ck_assert_uint_eq(reads(), 5);
    read_ok(b, o, 1 * BS, 1);
    ck_assert_uint_eq(reads(), 6);
    blocks_obj_release(b, o);
    blocks_free(b);
}
END_TEST

struct reader {
    struct blocks *b;
    struct blocks_obj *o;
    long n;
    uint8_t got[100];
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    r->n = blocks_read(r->b, r->o, 3 * BS + 7, sizeof(r->got), r->got, 0);
    return NULL;
}

/* Eight readers of one uncached block while its fetch is slow: one fetch for all. */
START_TEST(test_single_flight)
{
    struct store_mem_fault slow = {.ops = STORE_OP_READ, .delay_ms = 300};
    ck_assert_int_eq(store_mem_fault(st, &slow), 0);
    struct blocks *b = blocks_new(st, B, NULL, 64 * BS, BS, 1);
    struct blocks_obj *o = blocks_obj_get(b, "obj", &pin);
    struct reader r[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (struct reader){.b = b, .o = o};
        ck_assert_int_eq(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(r[i].n, 100);
        ck_assert(memcmp(r[i].got, data + 3 * BS + 7, 100) == 0);
    }
    ck_assert_uint_eq(reads(), 1);
    blocks_obj_release(b, o);
    blocks_free(b);
}
END_TEST

/* A sequential reader's read-ahead fetches aligned runs of four blocks with one ranged read
 * each, whether a fetcher or the reader itself does it. */
START_TEST(test_read_ahead_one_run)
{
    struct blocks *b = blocks_new(st, B, NULL, 64 * BS, BS, 1);
    struct blocks_obj *o = blocks_obj_get(b, "obj", &pin);
    uint8_t got[BS];
    for (unsigned i = 0; i < 8; i++) {
        ck_assert_int_eq(blocks_read(b, o, (uint64_t)i * BS, BS, got, 3 * BS), BS);
        ck_assert(memcmp(got, data + (uint64_t)i * BS, BS) == 0);
    }
    /* blocks 0-3, 4-7, and the read-ahead queued past block 7 (8-11) */
    ck_assert_uint_le(reads(), 3);
    ck_assert_uint_ge(reads(), 2);
    blocks_obj_release(b, o);
    blocks_free(b);
}
END_TEST

/* Sixteen sequential readers of sixteen objects, each asking for far more read-ahead than an
 * eight-block budget holds: every byte is right, and the block buffers (ready and loading) stay
 * within the budget and two blocks per reader (docs/DESIGN.md §16): read-ahead backs off
 * instead of growing memory, and a block a reader fetched is not evicted before it copies it. */
struct seq_reader {
    struct blocks *b;
    struct blocks_obj *o;
    int bad;
};

static void *seq_main(void *arg)
{
    struct seq_reader *r = arg;
    uint8_t got[BS / 2];
    for (uint64_t off = 0; off < SIZE; off += sizeof(got)) {
        long n = blocks_read(r->b, r->o, off, sizeof(got), got, 12 * BS);
        size_t want = SIZE - off < sizeof(got) ? SIZE - off : sizeof(got);
        r->bad += n != (long)want || memcmp(got, data + off, want) != 0;
    }
    return NULL;
}

START_TEST(test_many_readers_bounded)
{
    enum { READERS = 16 };
    const uint64_t budget = 8 * BS;
    struct blocks *b = blocks_new(st, B, NULL, budget, BS, 4);
    struct seq_reader r[READERS];
    pthread_t t[READERS];
    for (int i = 0; i < READERS; i++) {
        char key[16];
        snprintf(key, sizeof(key), "seq%d", i);
        ck_assert_int_eq(store_mem_add(st, B, key, data, SIZE, 1), 0);
        struct store_object p;
        ck_assert_int_eq(store_head(st, B, key, &p, NULL, NULL), 0);
        r[i] = (struct seq_reader){.b = b, .o = blocks_obj_get(b, key, &p)};
        ck_assert_ptr_nonnull(r[i].o);
    }
    for (int i = 0; i < READERS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, seq_main, &r[i]), 0);
    for (int i = 0; i < READERS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(r[i].bad, 0);
        blocks_obj_release(b, r[i].o);
    }
    struct blocks_stats bs;
    blocks_stats(b, &bs);
    printf("many readers: peak %llu KiB of block buffers for a %llu KiB budget, %llu KiB "
           "fetched for %llu KiB read\n",
           (unsigned long long)bs.peak_bytes / 1024, (unsigned long long)budget / 1024,
           (unsigned long long)bs.fetched / 1024, (unsigned long long)READERS * SIZE / 1024);
    ck_assert_uint_le(bs.peak_bytes, budget + 2 * READERS * BS);
    /* no thrashing: a block a reader fetched is its own until copied (before, under this
     * pressure, blocks were evicted between their fetch and their copy, over and over: 2 GB
     * and more fetched for these 16 MB) */
    ck_assert_uint_lt(bs.fetched, 4ull * READERS * SIZE);
    ck_assert_uint_le(bs.bytes, budget);
    blocks_free(b);
}
END_TEST

/* blocks_take hands over a whole cached block nobody has read, and only that: it never fetches,
 * and the block is then gone from the cache (the next read fetches it again). */
START_TEST(test_take_whole_unread_blocks)
{
    struct blocks *b = blocks_new(st, B, NULL, 64 * BS, BS, 1);
    struct blocks_obj *o = blocks_obj_get(b, "obj", &pin);
    uint8_t *mem = NULL;
    ck_assert_int_eq(blocks_take(b, o, 0, BS, &mem, 0), 0); /* not cached: no fetch */
    ck_assert_uint_eq(reads(), 0);
    /* the reader fetches blocks 0-3 with one GET (its read-ahead run) and reads block 0 */
    uint8_t got[16];
    ck_assert_int_eq(blocks_read(b, o, 0, sizeof(got), got, 3 * BS), (long)sizeof(got));
    ck_assert_uint_eq(reads(), 1);
    ck_assert_int_eq(blocks_take(b, o, 0, BS, &mem, 0), 0);        /* read already: kept */
    ck_assert_int_eq(blocks_take(b, o, BS + 1, BS, &mem, 0), 0);   /* not a block's start */
    ck_assert_int_eq(blocks_take(b, o, BS, BS - 1, &mem, 0), 0);   /* not all of it */
    ck_assert_int_eq(blocks_take(b, o, 2 * SIZE, BS, &mem, 0), 0); /* past the end */
    struct blocks_stats before, after;
    blocks_stats(b, &before);
    ck_assert_int_eq(blocks_take(b, o, BS, 2 * BS, &mem, 0), BS);
    ck_assert_ptr_nonnull(mem);
    ck_assert(memcmp(mem, data + BS, BS) == 0);
    free(mem);
    blocks_stats(b, &after);
    ck_assert_uint_eq(after.bytes, before.bytes - BS);
    ck_assert_uint_eq(reads(), 1);
    read_ok(b, o, BS, 10); /* taken out: fetched again */
    ck_assert_uint_eq(reads(), 2);
    read_ok(b, o, 2 * BS, 10); /* its neighbours are still cached */
    ck_assert_uint_eq(reads(), 2);
    blocks_obj_release(b, o);
    blocks_free(b);
}
END_TEST

/* An error and a short read fail the read and are not cached: the next read fetches again. */
START_TEST(test_faults_not_cached)
{
    struct store_mem_fault f[] = {
        {.ops = STORE_OP_READ, .times = 1, .error = EIO},
        {.ops = STORE_OP_READ, .times = 1, .short_read = true},
    };
    struct blocks *b = blocks_new(st, B, NULL, 64 * BS, BS, 1);
    struct blocks_obj *o = blocks_obj_get(b, "obj", &pin);
    uint8_t got[10];
    ck_assert_int_eq(store_mem_fault(st, &f[0]), 0);
    ck_assert_int_eq(blocks_read(b, o, 5, 10, got, 0), -EIO);
    ck_assert_int_eq(store_mem_fault(st, &f[1]), 0);
    ck_assert_int_eq(blocks_read(b, o, 5, 10, got, 0), -EIO);
    read_ok(b, o, 5, 10);
    ck_assert_uint_eq(reads(), 3);
    blocks_obj_release(b, o);
    blocks_free(b);
}
END_TEST

/* A replaced object: blocks pinned to the old ETag are never filled with the new bytes (the
 * read fails); a handle on the new version reads the new bytes. */
START_TEST(test_replaced_object)
{
    struct blocks *b = blocks_new(st, B, NULL, 64 * BS, BS, 1);
    struct blocks_obj *o = blocks_obj_get(b, "obj", &pin);
    read_ok(b, o, 0, 10); /* block 0 cached from the old version */
    uint8_t *fresh = malloc(SIZE);
    for (size_t i = 0; i < SIZE; i++)
        fresh[i] = (uint8_t)~data[i];
    ck_assert_int_eq(store_mem_add(st, B, "obj", fresh, SIZE, 2), 0);
    uint8_t got[10];
    ck_assert_int_eq(blocks_read(b, o, 2 * BS, 10, got, 0), -EIO);
    struct store_object now;
    ck_assert_int_eq(store_head(st, B, "obj", &now, NULL, NULL), 0);
    struct blocks_obj *o2 = blocks_obj_get(b, "obj", &now);
    ck_assert_ptr_ne(o, o2);
    ck_assert_int_eq(blocks_read(b, o2, 0, 10, got, 0), 10);
    ck_assert(memcmp(got, fresh, 10) == 0);
    blocks_obj_release(b, o2);
    blocks_obj_release(b, o);
    blocks_free(b);
    free(fresh);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("blocks");
    TCase *t = tcase_create("blocks");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 30);
    tcase_add_test(t, test_bytes_and_hits);
    tcase_add_test(t, test_lru_eviction);
    tcase_add_test(t, test_single_flight);
    tcase_add_test(t, test_read_ahead_one_run);
    tcase_add_test(t, test_faults_not_cached);
    tcase_add_test(t, test_many_readers_bounded);
    tcase_add_test(t, test_replaced_object);
    tcase_add_test(t, test_take_whole_unread_blocks);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
