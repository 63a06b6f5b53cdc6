/* test_sync.c — the sync decision table over the in-memory store (docs/DESIGN.md §4): missing,
 * up to date, changed, foreign valid (adopted byte for byte), foreign stale, not a torrent,
 * zero-byte, a .torrent key, a key no torrent can name; dry runs change nothing; a failed PUT
 * is FAILED with the store's reason; the .torrent handed back is the one stored; new outer
 * fields rewrite the .torrent from its own hashes; the s3torrent-outer metadata spares reading
 * an up-to-date one. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/metainfo.h"
#include "s3torrent/store_mem.h"
#include "s3torrent/sync.h"
#include "s3torrent/util.h"
#include "testutil.h"

#define B "bkt"

static struct store *st;
static struct maker mk;
static struct torrent_recipe recipe = {.meta = TORRENT_V1};
static struct sync_config sc;

static void setup(void)
{
    recipe = (struct torrent_recipe){.meta = TORRENT_V1};
    st = store_mem_new();
    mk = (struct maker){.store = st, .threads = 2};
    sc = (struct sync_config){.maker = &mk, .recipe = &recipe, .source = "sync"};
}

static void teardown(void)
{
    store_free(st);
}

static void add(const char *key, size_t n, unsigned seed)
{
    uint8_t *p = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 7 + seed) % 253);
    ck_assert_int_eq(store_mem_add(st, B, key, p, n, 1700000000 + seed), 0);
    free(p);
}

static enum sync_action sync1(const char *key, struct buf *torrent, struct sync_result *res)
{
    struct sync_result mine;
    if (res == NULL)
        res = &mine;
    sync_object(&sc, B, key, NULL, NULL, res, torrent);
    return res->action;
}

/* The stored KEY.torrent's bytes and metadata. */
static const uint8_t *stored(const char *key, size_t *len, struct store_meta *meta)
{
    char tkey[256];
    snprintf(tkey, sizeof(tkey), "%s.torrent", key);
    return store_mem_data(st, B, tkey, len, meta);
}

START_TEST(test_missing_then_up_to_date)
{
    add("a/x.bin", 100000, 1);
    struct buf t;
    struct sync_result res;
    buf_init(&t, 1u << 26);
    ck_assert_int_eq(sync1("a/x.bin", &t, &res), SYNC_CREATED);
    size_t len;
    struct store_meta meta;
    const uint8_t *p = stored("a/x.bin", &len, &meta);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(len, t.len);
    ck_assert(memcmp(p, t.data, len) == 0);
    struct store_object o;
    ck_assert_int_eq(store_head(st, B, "a/x.bin", &o, NULL, NULL), 0);
    ck_assert_str_eq(store_meta_get(&meta, "s3torrent-source-etag"), o.etag);
    ck_assert_str_eq(store_meta_get(&meta, "s3torrent-infohash"), res.info_hash);
    ck_assert_str_eq(meta.content_type, "application/x-bittorrent");
    /* the info-hash reported is the one of the bytes */
    struct metainfo *m;
    char hex[41];
    ck_assert_int_eq(metainfo_parse(t.data, t.len, &m, NULL), 0);
    ck_assert_str_eq(util_hex(m->ih1, 20, hex), res.info_hash);
    metainfo_free(m);

    unsigned puts = store_mem_calls(st, STORE_OP_PUT, NULL);
    unsigned reads = store_mem_calls(st, STORE_OP_READ, NULL);
    ck_assert_int_eq(sync1("a/x.bin", NULL, &res), SYNC_UP_TO_DATE);
    ck_assert_str_eq(store_meta_get(&meta, "s3torrent-infohash"), res.info_hash);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_PUT, NULL), puts);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), reads);
    /* its s3torrent-outer metadata is the recipe's: nothing is read, not even the .torrent */
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_GET, NULL), 0);
    char outer[TORRENT_OUTER_HEX];
    ck_assert_int_eq(torrent_outer_digest_of(t.data, t.len, outer), 0);
    ck_assert_str_eq(store_meta_get(&meta, "s3torrent-outer"), outer);
    /* asked for the bytes, it reads the .torrent (only) */
    buf_free(&t);
    buf_init(&t, 1u << 26);
    ck_assert_int_eq(sync1("a/x.bin", &t, &res), SYNC_UP_TO_DATE);
    ck_assert(t.len == len && memcmp(t.data, p, len) == 0);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_GET, NULL), 1);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_GET, "x.bin.torrent"), 1);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), reads);
    buf_free(&t);
}
END_TEST

START_TEST(test_changed_object_is_replaced)
{
    add("x.bin", 50000, 1);
    ck_assert_int_eq(sync1("x.bin", NULL, NULL), SYNC_CREATED);
    add("x.bin", 50000, 2);
    struct buf t;
    buf_init(&t, 1u << 26);
    ck_assert_int_eq(sync1("x.bin", &t, NULL), SYNC_REPLACED);
    size_t len;
    const uint8_t *p = stored("x.bin", &len, NULL);
    ck_assert(len == t.len && memcmp(p, t.data, len) == 0);
    buf_free(&t);
}
END_TEST

/* A foreign torrent (no metadata) that verifies is kept byte for byte, whatever its name and
 * piece length; one that does not verify, or that is no torrent, is replaced. */
START_TEST(test_foreign)
{
    add("f/take.wav", 300000, 4);
    /* made by another tool: another name, another piece length, no s3torrent metadata */
    struct torrent_recipe other = {
        .meta = TORRENT_V1, .piece_length = 16384, .comment = "made elsewhere"};
    struct store_object o;
    struct buf foreign;
    err_t err = {0};
    struct maker plain = {.store = st};
    buf_init(&foreign, 1u << 26);
    /* the maker names the torrent after the key: make it under that key, then move it */
    add("f/take 7 (old job).wav", 300000, 4);
    ck_assert_int_eq(store_head(st, B, "f/take 7 (old job).wav", &o, NULL, NULL), 0);
    ck_assert_int_eq(
        maker_make(&plain, B, "f/take 7 (old job).wav", &o, &other, NULL, &foreign, NULL, &err), 0);
    ck_assert_int_eq(store_put(st, B, "f/take.wav.torrent", foreign.data, foreign.len,
                               "application/x-bittorrent", NULL, 0, &err),
                     0);
    struct sync_result res;
    ck_assert_int_eq(sync1("f/take.wav", NULL, &res), SYNC_ADOPTED);
    size_t len;
    struct store_meta meta;
    const uint8_t *p = stored("f/take.wav", &len, &meta);
    ck_assert(len == foreign.len && memcmp(p, foreign.data, len) == 0);
    ck_assert_ptr_nonnull(store_meta_get(&meta, "s3torrent-source-etag"));
    ck_assert_int_eq(sync1("f/take.wav", NULL, NULL), SYNC_UP_TO_DATE);

    /* stale: the foreign torrent of other bytes */
    add("g.wav", 300000, 5);
    ck_assert_int_eq(
        store_put(st, B, "g.wav.torrent", foreign.data, foreign.len, "", NULL, 0, &err), 0);
    ck_assert_int_eq(sync1("g.wav", NULL, NULL), SYNC_REPLACED);
    p = stored("g.wav", &len, &meta);
    ck_assert(!(len == foreign.len && memcmp(p, foreign.data, len) == 0));
    /* not a torrent at all */
    add("h.wav", 1000, 6);
    ck_assert_int_eq(store_put(st, B, "h.wav.torrent", "garbage", 7, "", NULL, 0, &err), 0);
    ck_assert_int_eq(sync1("h.wav", NULL, NULL), SYNC_REPLACED);
    buf_free(&foreign);
}
END_TEST

START_TEST(test_skipped_by_rule)
{
    add("empty", 0, 0);
    add("a.torrent", 10, 0);
    add("ctl\x01key", 10, 0);
    const char *keys[] = {"empty", "a.torrent", "ctl\x01key"};
    const char *why[] = {"zero-byte", "a .torrent object", "no torrent can be named"};
    for (size_t i = 0; i < 3; i++) {
        struct sync_result res;
        ck_assert_int_eq(sync1(keys[i], NULL, &res), SYNC_SKIPPED);
        ck_assert_msg(strstr(res.why, why[i]), "%s: %s", keys[i], res.why);
    }
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_PUT | STORE_OP_READ, NULL), 0);
    /* a missing object is FAILED with the store's reason */
    struct sync_result res;
    ck_assert_int_eq(sync1("nope", NULL, &res), SYNC_FAILED);
    ck_assert_ptr_nonnull(strstr(res.why, "no such object"));
}
END_TEST

START_TEST(test_dry_run_changes_nothing)
{
    add("d.bin", 5000, 1);
    sc.dry_run = true;
    struct sync_result res;
    ck_assert_int_eq(sync1("d.bin", NULL, &res), SYNC_CREATED);
    ck_assert(res.dry_run);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_PUT | STORE_OP_READ, NULL), 0);
    ck_assert_ptr_null(stored("d.bin", &(size_t){0}, NULL));
}
END_TEST

START_TEST(test_failed_put)
{
    add("p.bin", 5000, 1);
    struct store_mem_fault f = {.ops = STORE_OP_PUT, .error = EACCES};
    ck_assert_int_eq(store_mem_fault(st, &f), 0);
    struct sync_result res;
    ck_assert_int_eq(sync1("p.bin", NULL, &res), SYNC_FAILED);
    ck_assert_msg(strstr(res.why, "p.bin.torrent") && strstr(res.why, "ermission"), "%s", res.why);
    ck_assert_ptr_null(stored("p.bin", &(size_t){0}, NULL));
}
END_TEST

/* The same bytes uploaded again (same ETag, a later Last-Modified): the .torrent is made again
 * with the new date, equal to what a fresh maker makes now, with the same info-hash, from the
 * old torrent's hashes: no byte of the object is read. One piece and three, v1 and v2. */
START_TEST(test_reupload_new_date_no_read)
{
    recipe.meta = TORRENT_HYBRID;
    const size_t sizes[] = {100000, 600000};
    for (size_t i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof(key), "re/%zu.bin", i);
        add(key, sizes[i], 3);
        struct sync_result first, again;
        ck_assert_int_eq(sync1(key, NULL, &first), SYNC_CREATED);
        unsigned reads = store_mem_calls(st, STORE_OP_READ, NULL);
        size_t len;
        const uint8_t *d = store_mem_data(st, B, key, &len, NULL);
        ck_assert_int_eq(store_mem_add(st, B, key, d, len, 1800000000), 0); /* a later date */
        struct buf t;
        buf_init(&t, 1u << 26);
        ck_assert_int_eq(sync1(key, &t, &again), SYNC_REPLACED);
        ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), reads);
        ck_assert_str_eq(again.info_hash, first.info_hash);
        ck_assert_str_eq(again.info_hash_v2, first.info_hash_v2);
        /* what a maker with nothing known makes of the object now */
        struct store_object o;
        struct buf want;
        buf_init(&want, 1u << 26);
        ck_assert_int_eq(store_head(st, B, key, &o, NULL, NULL), 0);
        ck_assert_int_eq(maker_make(&mk, B, key, &o, &recipe, NULL, &want, NULL, NULL), 0);
        ck_assert(t.len == want.len && memcmp(t.data, want.data, t.len) == 0);
        ck_assert_int_eq(sync1(key, NULL, NULL), SYNC_UP_TO_DATE);
        buf_free(&t);
        buf_free(&want);
    }
}
END_TEST

/* The recipe's outer fields changed since the .torrent was written (trackers, then a web seed
 * and a comment), its info dict did not: the .torrent is rewritten, equal to what a fresh maker
 * makes now, with the same info-hash, laid out from the old torrent's hashes: the .torrent is
 * read, never the object. A change of the info dict (private) keeps the ETag rule: up to date. */
START_TEST(test_outer_fields_changed_no_read)
{
    static const char *const ta[] = {"http://tracker-a.example/announce"};
    static const char *const tb[] = {"http://tracker-b.example/announce"};
    const char *key = "outer/take.bin";
    recipe.meta = TORRENT_HYBRID;
    recipe.trackers = ta;
    recipe.ntrackers = 1;
    add(key, 600000, 8);
    struct sync_result first, again;
    ck_assert_int_eq(sync1(key, NULL, &first), SYNC_CREATED);
    unsigned reads = store_mem_calls(st, STORE_OP_READ, NULL);
    for (int step = 0; step < 2; step++) {
        if (step == 0) {
            recipe.trackers = tb;
        } else {
            recipe.webseed_base = "https://seed.example/files/";
            recipe.comment = "a new comment";
        }
        struct buf t;
        buf_init(&t, 1u << 26);
        unsigned gets = store_mem_calls(st, STORE_OP_GET, NULL);
        ck_assert_int_eq(sync1(key, &t, &again), SYNC_REPLACED);
        ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), reads);
        /* its s3torrent-outer metadata differs from the recipe's: the .torrent is read */
        ck_assert_uint_eq(store_mem_calls(st, STORE_OP_GET, NULL), gets + 1);
        ck_assert_str_eq(again.info_hash, first.info_hash);
        ck_assert_str_eq(again.info_hash_v2, first.info_hash_v2);
        struct store_object o;
        struct buf want;
        buf_init(&want, 1u << 26);
        ck_assert_int_eq(store_head(st, B, key, &o, NULL, NULL), 0);
        ck_assert_int_eq(maker_make(&mk, B, key, &o, &recipe, NULL, &want, NULL, NULL), 0);
        reads = store_mem_calls(st, STORE_OP_READ, NULL); /* that maker read it, not sync */
        ck_assert(t.len == want.len && memcmp(t.data, want.data, t.len) == 0);
        size_t len;
        const uint8_t *p = stored(key, &len, NULL);
        ck_assert(len == want.len && memcmp(p, want.data, len) == 0);
        gets = store_mem_calls(st, STORE_OP_GET, NULL);
        ck_assert_int_eq(sync1(key, NULL, NULL), SYNC_UP_TO_DATE);
        ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), reads);
        ck_assert_uint_eq(store_mem_calls(st, STORE_OP_GET, NULL), gets);
        buf_free(&t);
        buf_free(&want);
    }
    unsigned puts = store_mem_calls(st, STORE_OP_PUT, NULL);
    unsigned gets = store_mem_calls(st, STORE_OP_GET, NULL);
    recipe.private_ = true;
    ck_assert_int_eq(sync1(key, NULL, NULL), SYNC_UP_TO_DATE);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_PUT, NULL), puts);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), reads);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_GET, NULL), gets);
}
END_TEST

/* Puts the stored KEY.torrent back with its bytes and its metadata but s3torrent-outer, as a
 * writer older than that key left it. */
static void drop_outer(const char *key)
{
    char tkey[256];
    size_t len, n = 0;
    struct store_meta meta;
    struct http_header h[STORE_META_MAX];
    snprintf(tkey, sizeof(tkey), "%s.torrent", key);
    const uint8_t *p = store_mem_data(st, B, tkey, &len, &meta);
    ck_assert_ptr_nonnull(p);
    uint8_t *copy = malloc(len);
    memcpy(copy, p, len);
    for (size_t i = 0; i < meta.n; i++)
        if (strcmp(meta.item[i].name, "s3torrent-outer") != 0)
            h[n++] = (struct http_header){meta.item[i].name, meta.item[i].value};
    ck_assert_uint_eq(n, meta.n - 1);
    ck_assert_int_eq(store_put(st, B, tkey, copy, len, meta.content_type, h, n, NULL), 0);
    free(copy);
}

/* A .torrent of ours without s3torrent-outer (an older writer): read once to compare, and left
 * as it is when the recipe lays out the same bytes; with a new tracker, rewritten from its
 * hashes (the object not read), now with the digest, so the next run reads nothing. */
START_TEST(test_outer_digest_absent)
{
    static const char *const ta[] = {"http://tracker-a.example/announce"};
    static const char *const tb[] = {"http://tracker-b.example/announce"};
    const char *key = "old/take.bin";
    recipe.meta = TORRENT_HYBRID;
    recipe.trackers = ta;
    recipe.ntrackers = 1;
    add(key, 600000, 9);
    ck_assert_int_eq(sync1(key, NULL, NULL), SYNC_CREATED);
    drop_outer(key);
    unsigned reads = store_mem_calls(st, STORE_OP_READ, NULL);
    unsigned puts = store_mem_calls(st, STORE_OP_PUT, NULL);
    unsigned gets = store_mem_calls(st, STORE_OP_GET, NULL);
    ck_assert_int_eq(sync1(key, NULL, NULL), SYNC_UP_TO_DATE);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_GET, NULL), gets + 1);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_GET, "take.bin.torrent"), 1);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_PUT, NULL), puts);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), reads);
    struct store_meta meta;
    ck_assert_ptr_nonnull(stored(key, &(size_t){0}, &meta));
    ck_assert_ptr_null(store_meta_get(&meta, "s3torrent-outer"));

    recipe.trackers = tb;
    struct sync_result res;
    ck_assert_int_eq(sync1(key, NULL, &res), SYNC_REPLACED);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_GET, NULL), gets + 2);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_PUT, NULL), puts + 1);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), reads);
    size_t len;
    const uint8_t *p = stored(key, &len, &meta);
    char outer[TORRENT_OUTER_HEX];
    ck_assert_int_eq(torrent_outer_digest_of(p, len, outer), 0);
    ck_assert_str_eq(store_meta_get(&meta, "s3torrent-outer"), outer);
    ck_assert_int_eq(sync1(key, NULL, NULL), SYNC_UP_TO_DATE);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_GET, NULL), gets + 2);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_PUT, NULL), puts + 1);
}
END_TEST

START_TEST(test_known_hashes_of_our_torrent)
{
    /* what another front end lays its torrent out from: the hashes of our .torrent of this
     * version, read from the .torrent alone; none for another version or no .torrent */
    add("k/x.bin", 300000, 4);
    struct store_object obj;
    struct hasher_result h;
    err_t err = {0};
    ck_assert_int_eq(store_head(st, B, "k/x.bin", &obj, NULL, NULL), 0);
    ck_assert_int_eq(sync_known_hashes(st, B, "k/x.bin", &obj, &h, &err), ENOENT);
    struct buf t;
    buf_init(&t, 1u << 26);
    ck_assert_int_eq(sync1("k/x.bin", &t, NULL), SYNC_CREATED);
    unsigned reads = store_mem_calls(st, STORE_OP_READ, NULL);
    ck_assert_int_eq(sync_known_hashes(st, B, "k/x.bin", &obj, &h, &err), 0);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), reads); /* no object byte */
    struct metainfo *m = NULL;
    ck_assert_int_eq(metainfo_parse(t.data, t.len, &m, &err), 0);
    ck_assert_uint_eq(h.size, 300000);
    ck_assert_uint_eq(h.npieces, m->npieces);
    ck_assert_int_eq(memcmp(h.v1_pieces, m->pieces, 20 * h.npieces), 0);
    metainfo_free(m);
    hasher_result_free(&h);
    struct store_object other = obj;
    strcpy(other.etag, "0123456789abcdef0123456789abcdef");
    ck_assert_int_eq(sync_known_hashes(st, B, "k/x.bin", &other, &h, &err), ENOENT);
    buf_free(&t);
}
END_TEST

/* The prefix rule: the prefix of DEPTH segments a key is below, or none. */
START_TEST(test_rule_prefix)
{
    static const struct {
        const char *key;
        unsigned depth;
        size_t len;
    } cases[] = {
        {"a/b/c.wav", 1, 2}, {"a/b/c.wav", 2, 4}, {"a/b/c.wav", 3, 0}, {"a.wav", 1, 0},
        {"a/b/c.wav", 0, 0}, {"a//b.wav", 2, 0},  {"/x.wav", 1, 0},    {"a/b.torrent", 1, 0},
        {"a/", 1, 0},        {"a/b/", 1, 2},      {"sess/x y", 1, 5},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(sync_rule_prefix(cases[i].key, cases[i].depth) == cases[i].len, "%s at %u",
                      cases[i].key, cases[i].depth);
}
END_TEST

/* The set digest is SHA-256 over "REL NUL ETAG LF" sorted by the bytes of REL, whatever the
 * order given (the value is Python's hashlib over the same lines). */
START_TEST(test_set_digest)
{
    struct sync_set_file f[] = {{"b/c.bin", "e2"}, {"a.bin", "e1"}, {"a b", "e3"}};
    char d[65];
    ck_assert_int_eq(sync_set_digest(f, 3, d), 0);
    ck_assert_str_eq(d, "eb3712e07837f8e0170eaf1358a495c3912a16780ecce0dfa0baae6f362b182f");
    ck_assert_str_eq(f[0].rel, "a b");
    struct sync_set_file g[] = {{"a.bin", "e1"}, {"a b", "e3"}, {"b/c.bin", "e2x"}};
    char d2[65];
    ck_assert_int_eq(sync_set_digest(g, 3, d2), 0);
    ck_assert_str_ne(d, d2); /* one ETag differs */
    ck_assert_int_eq(sync_set_digest(NULL, 0, d2), 0);
    ck_assert_str_eq(d2, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(test_set_diff)
{
    struct sync_set_file now[] = {{"a", "1"}, {"b", "2"}, {"d", "4"}, {"e", "5"}};
    struct sync_set_file before[] = {{"e", "5"}, {"c", "3"}, {"b", "9"}, {"a", "1"}, {"f", "6"}};
    struct sync_set_diff d;
    ck_assert_int_eq(sync_set_diff(now, 4, before, 5, &d), 0);
    ck_assert_uint_eq(d.nadded, 1);
    ck_assert_str_eq(d.added[0], "d");
    ck_assert_uint_eq(d.nchanged, 1);
    ck_assert_str_eq(d.changed[0], "b");
    ck_assert_uint_eq(d.nremoved, 2);
    ck_assert_str_eq(d.removed[0], "c");
    ck_assert_str_eq(d.removed[1], "f");
    sync_set_diff_free(&d);
    ck_assert_int_eq(sync_set_diff(now, 4, NULL, 0, &d), 0);
    ck_assert_uint_eq(d.nadded, 4);
    ck_assert_uint_eq(d.nchanged + d.nremoved, 0);
    sync_set_diff_free(&d);
}
END_TEST

/* What create --exclude '*.torrent' s3://B/PREFIX/ makes with the recipe (maker_make_set over
 * store_prefix_scan). */
static void expected_set(const char *prefix, struct buf *out)
{
    static const char *const ex[] = {"*.torrent"};
    struct source_dir dir;
    struct maker_set ms = {.threads = 2};
    char ws[64];
    snprintf(ws, sizeof(ws), "%.*s", (int)strlen(prefix) - 1, prefix);
    ms.ws_key = ws;
    ck_assert_int_eq(store_prefix_scan(st, B, prefix, NULL, 0, ex, 1, NULL, NULL, &dir, NULL), 0);
    ck_assert_int_eq(maker_make_set(&ms, &dir, dir.name, &recipe, out, NULL, NULL, NULL), 0);
    source_dir_free(&dir);
}

/* A prefix torrent: made (the objects' own .torrent left out), up to date with one listing and
 * one HEAD (no GET, no PUT), made again for a new, a changed and a removed key; a prefix with
 * no byte is skipped; no rule, nothing. */
START_TEST(test_prefix_torrent)
{
    recipe.meta = TORRENT_HYBRID;
    add("s/a.bin", 70000, 1);
    add("s/b.bin", 40000, 2);
    add("s/empty", 0, 3);
    add("s2.bin", 1000, 4);
    ck_assert_int_eq(sync1("s/a.bin", NULL, NULL), SYNC_CREATED); /* s/a.bin.torrent */
    struct sync_result res;
    ck_assert_int_eq(sync_prefix(&sc, B, "s/", &res), 0);
    ck_assert_int_eq(res.action, SYNC_CREATED);
    ck_assert_uint_eq(res.size, 110000);
    size_t len;
    struct store_meta meta;
    const uint8_t *p = store_mem_data(st, B, "s.torrent", &len, &meta);
    ck_assert_ptr_nonnull(p);
    struct buf want;
    buf_init(&want, 1u << 26);
    expected_set("s/", &want);
    ck_assert(len == want.len && memcmp(p, want.data, len) == 0);
    buf_free(&want);
    ck_assert_str_eq(store_meta_get(&meta, "s3torrent-source-count"), "3");
    ck_assert_str_eq(store_meta_get(&meta, "s3torrent-infohash"), res.info_hash);
    ck_assert_str_eq(store_meta_get(&meta, "s3torrent-infohash-v2"), res.info_hash_v2);
    struct store_object oa, ob, oe;
    ck_assert_int_eq(store_head(st, B, "s/a.bin", &oa, NULL, NULL), 0);
    ck_assert_int_eq(store_head(st, B, "s/b.bin", &ob, NULL, NULL), 0);
    ck_assert_int_eq(store_head(st, B, "s/empty", &oe, NULL, NULL), 0);
    struct sync_set_file f[] = {{"a.bin", oa.etag}, {"b.bin", ob.etag}, {"empty", oe.etag}};
    char d[65];
    ck_assert_int_eq(sync_set_digest(f, 3, d), 0);
    ck_assert_str_eq(store_meta_get(&meta, "s3torrent-source-set"), d);

    unsigned puts = store_mem_calls(st, STORE_OP_PUT, NULL);
    unsigned gets = store_mem_calls(st, STORE_OP_GET | STORE_OP_READ, NULL);
    ck_assert_int_eq(sync_prefix(&sc, B, "s/", &res), 0);
    ck_assert_int_eq(res.action, SYNC_UP_TO_DATE);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_PUT, NULL), puts);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_GET | STORE_OP_READ, NULL), gets);

    /* new, changed, removed: each made again, equal to create's */
    for (int step = 0; step < 3; step++) {
        if (step == 0)
            add("s/c.bin", 30000, 5);
        else if (step == 1)
            add("s/b.bin", 40000, 6);
        else
            ck_assert_int_eq(store_mem_remove(st, B, "s/a.bin"), 0);
        ck_assert_int_eq(sync_prefix(&sc, B, "s/", &res), 0);
        ck_assert_int_eq(res.action, SYNC_REPLACED);
        p = store_mem_data(st, B, "s.torrent", &len, NULL);
        buf_init(&want, 1u << 26);
        expected_set("s/", &want);
        ck_assert(len == want.len && memcmp(p, want.data, len) == 0);
        buf_free(&want);
    }

    /* dry run: decided, not done */
    add("s/d.bin", 1000, 7);
    puts = store_mem_calls(st, STORE_OP_PUT, NULL);
    sc.dry_run = true;
    ck_assert_int_eq(sync_prefix(&sc, B, "s/", &res), 0);
    ck_assert_int_eq(res.action, SYNC_REPLACED);
    ck_assert(res.dry_run);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_PUT, NULL), puts);
    sc.dry_run = false;

    add("z/empty", 0, 8);
    ck_assert_int_eq(sync_prefix(&sc, B, "z/", &res), 0);
    ck_assert_int_eq(res.action, SYNC_SKIPPED);
    ck_assert_ptr_null(store_mem_data(st, B, "z.torrent", &len, NULL));
    ck_assert_int_eq(sync_prefix(&sc, B, "s", &res), EINVAL);
    ck_assert_int_eq(res.action, SYNC_FAILED);

    /* the Lambda's call: the rule's prefix, or nothing */
    ck_assert_int_eq(sync_ruled_prefix(&sc, B, "s/c.bin", &res), 0);
    ck_assert_int_eq(res.action, SYNC_SKIPPED); /* no rule */
    sc.prefix_depth = 1;
    ck_assert_int_eq(sync_ruled_prefix(&sc, B, "s2.bin", &res), 0);
    ck_assert_int_eq(res.action, SYNC_SKIPPED); /* in no prefix */
    ck_assert_int_eq(sync_ruled_prefix(&sc, B, "s/c.bin", &res), 0);
    ck_assert_int_eq(res.action, SYNC_REPLACED); /* s/d.bin is new */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sync");
    TCase *t = tcase_create("decisions");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_missing_then_up_to_date);
    tcase_add_test(t, test_changed_object_is_replaced);
    tcase_add_test(t, test_foreign);
    tcase_add_test(t, test_skipped_by_rule);
    tcase_add_test(t, test_dry_run_changes_nothing);
    tcase_add_test(t, test_failed_put);
    tcase_add_test(t, test_reupload_new_date_no_read);
    tcase_add_test(t, test_outer_fields_changed_no_read);
    tcase_add_test(t, test_outer_digest_absent);
    tcase_add_test(t, test_known_hashes_of_our_torrent);
    tcase_add_test(t, test_rule_prefix);
    tcase_add_test(t, test_set_digest);
    tcase_add_test(t, test_set_diff);
    tcase_add_test(t, test_prefix_torrent);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
