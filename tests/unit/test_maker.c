/* test_maker.c — the one torrent maker over the in-memory store: info-hashes equal to
 * libtorrent's for the same bytes, the cache keeps only what hashing learned (a re-upload, a
 * new tracker or web seed cost no read and never serve a stale outer field), and faults of the
 * store (errors, short reads, an object replaced mid-hash) never leave a torrent or a cache
 * entry behind. */
#include <check.h>
#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/maker.h"
#include "s3torrent/metainfo.h"
#include "s3torrent/store_mem.h"
#include "testutil.h"

#define B "bkt"

/* A cache of one map in memory, counting its calls. */
struct memcache {
    struct entry {
        char *id;
        struct buf v;
    } e[64];
    size_t n;
    unsigned gets, hits, puts;
};

static char *ident(const char *bucket, const char *key, const char *etag, const char *fp)
{
    size_t n = strlen(bucket) + strlen(key) + strlen(etag) + strlen(fp) + 4;
    char *s = malloc(n);
    snprintf(s, n, "%s\n%s\n%s\n%s", bucket, key, etag, fp);
    return s;
}

/* The maker calls its cache from hashing threads (a multi-file torrent's files), as the sqlite
 * cache allows: one lock, like it. */
static pthread_mutex_t mc_lock = PTHREAD_MUTEX_INITIALIZER;

static int mc_get(void *arg, const char *bucket, const char *key, const char *etag, const char *fp,
                  struct buf *out, err_t *err)
{
    struct memcache *c = arg;
    char *id = ident(bucket, key, etag, fp);
    int rc = ENOENT;
    (void)err;
    pthread_mutex_lock(&mc_lock);
    c->gets++;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].id, id) == 0) {
            buf_put(out, c->e[i].v.data, c->e[i].v.len);
            c->hits++;
            rc = 0;
        }
    pthread_mutex_unlock(&mc_lock);
    free(id);
    return rc;
}

static int mc_put(void *arg, const char *bucket, const char *key, const char *etag, const char *fp,
                  const uint8_t *data, size_t len, err_t *err)
{
    struct memcache *c = arg;
    (void)err;
    char *id = ident(bucket, key, etag, fp);
    size_t i = 0;
    pthread_mutex_lock(&mc_lock);
    c->puts++;
    while (i < c->n && strcmp(c->e[i].id, id) != 0)
        i++;
    if (i == c->n) { /* a new entry; else it replaces the one there, as the sqlite cache does */
        ck_assert_uint_lt(c->n, 64);
        c->e[c->n++].id = id;
        id = NULL;
    } else {
        buf_free(&c->e[i].v);
    }
    buf_init(&c->e[i].v, 1u << 30);
    buf_put(&c->e[i].v, data, len);
    pthread_mutex_unlock(&mc_lock);
    free(id);
    return 0;
}

static void mc_free(struct memcache *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].id);
        buf_free(&c->e[i].v);
    }
}

/* Content byte i = i mod 251, as tests/data/torrents/generated was made. */
static uint8_t *content(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i + seed) % 251);
    return p;
}

static struct store *st;
static struct memcache mc;
static struct maker_cache mcache;
static struct maker mk;

static void setup(void)
{
    st = store_mem_new();
    memset(&mc, 0, sizeof(mc));
    mcache = (struct maker_cache){mc_get, mc_put, &mc};
    mk = (struct maker){.store = st, .cache = &mcache, .threads = 2};
}

static void teardown(void)
{
    store_free(st);
    mc_free(&mc);
}

static struct buf make(const char *key, const struct torrent_recipe *r, struct maker_result *res,
                       int want_rc)
{
    struct store_object o;
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1u << 30);
    ck_assert_msg(store_head(st, B, key, &o, NULL, &err) == 0, "%s", err.msg);
    int rc = maker_make(&mk, B, key, &o, r, NULL, &b, res, &err);
    ck_assert_msg(rc == want_rc, "%s: rc %d, wanted %d: %s", key, rc, want_rc, err.msg);
    if (rc)
        ck_assert_uint_eq(b.len, 0);
    return b;
}

/* The info-hashes libtorrent gave these bytes (tests/data/torrents/generated), whatever the
 * outer fields the maker adds. */
START_TEST(test_same_info_hash_as_libtorrent)
{
    size_t vlen;
    uint8_t *vec = tu_read_data("torrents/generated/five-pieces.torrent", &vlen);
    struct metainfo *m;
    err_t err = {0};
    ck_assert(metainfo_parse(vec, vlen, &m, &err) == 0);
    uint8_t *data = content(150000, 0);
    ck_assert_int_eq(store_mem_add(st, B, "dir/e.bin", data, 150000, 1700000000), 0);
    const char *tr[] = {"http://tracker.example/announce"};
    struct torrent_recipe r = {.meta = TORRENT_HYBRID,
                               .piece_length = 32768,
                               .trackers = tr,
                               .ntrackers = 1,
                               .webseed_base = "https://h.example/"};
    struct maker_result res;
    struct buf b = make("dir/e.bin", &r, &res, 0);
    ck_assert(res.v1 && res.v2 && !res.cached);
    ck_assert_mem_eq(res.ih1, m->ih1, 20);
    ck_assert_mem_eq(res.ih2, m->ih2, 32);
    ck_assert_uint_eq(res.piece_length, 32768);
    ck_assert_uint_eq(res.npieces, 5);
    ck_assert_uint_eq(res.hashes.npieces, 5);
    /* the bytes say what the recipe says outside the info dict */
    struct metainfo *got;
    ck_assert(metainfo_parse(b.data, b.len, &got, &err) == 0);
    ck_assert_str_eq(got->name, "e.bin");
    ck_assert_int_eq(got->creation_date, 1700000000);
    ck_assert_str_eq(got->trackers[0], tr[0]);
    ck_assert_str_eq(got->webseeds[0], "https://h.example/dir/e.bin");
    /* and have the size stat reports before any hashing */
    struct torrent_opts o;
    char *ws;
    ck_assert_int_eq(torrent_recipe_opts(&r, "dir/e.bin", 1700000000, &o, &ws), 0);
    ck_assert_uint_eq(b.len, torrent_size("e.bin", 150000, &o));
    free(ws);
    metainfo_free(got);
    maker_result_free(&res);
    metainfo_free(m);
    buf_free(&b);
    free(vec);
    free(data);
}
END_TEST

/* What a fresh maker with no cache makes of the store's object now: the reference. */
static struct buf fresh(const char *key, const struct torrent_recipe *r)
{
    const struct maker_cache *keep = mk.cache;
    mk.cache = NULL;
    struct buf b = make(key, r, NULL, 0);
    mk.cache = keep;
    return b;
}

static void assert_same(const struct buf *a, const struct buf *b)
{
    ck_assert_uint_eq(a->len, b->len);
    ck_assert(memcmp(a->data, b->data, a->len) == 0);
}

/* The cache keeps hashes, not bytes: a second make, a re-upload of the same bytes (same ETag, new
 * Last-Modified), new trackers and a new web seed each read nothing, and each gives exactly
 * what a maker without cache gives now. */
START_TEST(test_outer_fields_never_stale)
{
    uint8_t *data = content(700001, 3);
    ck_assert_int_eq(store_mem_add(st, B, "a/take.wav", data, 700001, 1796108250), 0);
    struct torrent_recipe r = {.meta = TORRENT_V1};
    struct maker_result res;
    struct buf first = make("a/take.wav", &r, &res, 0);
    ck_assert(!res.cached);
    maker_result_free(&res);
    unsigned reads = store_mem_calls(st, STORE_OP_READ, NULL);
    ck_assert_uint_gt(reads, 0);
    ck_assert_uint_eq(mc.puts, 1);

    struct buf again = make("a/take.wav", &r, &res, 0);
    ck_assert(res.cached);
    maker_result_free(&res);
    assert_same(&first, &again);

    /* re-upload: same bytes, same ETag, three seconds later */
    ck_assert_int_eq(store_mem_add(st, B, "a/take.wav", data, 700001, 1796108253), 0);
    struct buf reup = make("a/take.wav", &r, &res, 0);
    ck_assert(res.cached);
    maker_result_free(&res);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), reads);
    struct buf want = fresh("a/take.wav", &r);
    assert_same(&reup, &want);
    struct metainfo *m;
    err_t err = {0};
    ck_assert(metainfo_parse(reup.data, reup.len, &m, &err) == 0);
    ck_assert_int_eq(m->creation_date, 1796108253);
    metainfo_free(m);
    buf_free(&want);
    reads = store_mem_calls(st, STORE_OP_READ, NULL);

    /* new trackers, a web seed, a comment, private, a source: no read either */
    const char *tr[] = {"udp://t1.example:6969/announce", "http://t2.example/announce"};
    struct torrent_recipe r2 = {.meta = TORRENT_V1,
                                .trackers = tr,
                                .ntrackers = 2,
                                .webseed_base = "https://cdn.example/x/",
                                .comment = "c",
                                .private_ = true,
                                .source = "SRC"};
    struct buf other = make("a/take.wav", &r2, &res, 0);
    ck_assert(res.cached);
    maker_result_free(&res);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), reads);
    want = fresh("a/take.wav", &r2);
    assert_same(&other, &want);
    buf_free(&want);

    /* a new piece length or meta version is new hashing */
    reads = store_mem_calls(st, STORE_OP_READ, NULL);
    struct torrent_recipe r3 = {.meta = TORRENT_HYBRID};
    struct buf hy = make("a/take.wav", &r3, &res, 0);
    ck_assert(!res.cached);
    maker_result_free(&res);
    ck_assert_uint_gt(store_mem_calls(st, STORE_OP_READ, NULL), reads);

    buf_free(&first);
    buf_free(&again);
    buf_free(&reup);
    buf_free(&other);
    buf_free(&hy);
    free(data);
}
END_TEST

/* maker_cached reads nothing: ENOENT before hashing, the torrent after. */
START_TEST(test_cached_only)
{
    uint8_t *data = content(50000, 1);
    ck_assert_int_eq(store_mem_add(st, B, "k", data, 50000, 5), 0);
    struct torrent_recipe r = {.meta = TORRENT_V2};
    struct store_object o;
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1u << 30);
    ck_assert_int_eq(store_head(st, B, "k", &o, NULL, &err), 0);
    ck_assert_int_eq(maker_cached(&mk, B, "k", &o, &r, &b, NULL, &err), ENOENT);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), 0);
    ck_assert_int_eq(maker_make(&mk, B, "k", &o, &r, NULL, &b, NULL, &err), 0);
    size_t n = b.len;
    ck_assert_int_eq(maker_cached(&mk, B, "k", &o, &r, &b, NULL, &err), 0);
    ck_assert_uint_eq(b.len, 2 * n);
    ck_assert(memcmp(b.data, b.data + n, n) == 0);
    buf_free(&b);
    free(data);
}
END_TEST

/* Faults: an error, a short read, and an object replaced while it is hashed each fail the make
 * with the store's reason, serve nothing and cache nothing; the next make after the fault
 * succeeds. */
START_TEST(test_faults_leave_nothing)
{
    uint8_t *data = content(3 << 20, 9), *other = content(3 << 20, 10);
    ck_assert_int_eq(store_mem_add(st, B, "f.bin", data, 3 << 20, 7), 0);
    struct torrent_recipe r = {.meta = TORRENT_V1, .piece_length = 262144};
    struct store_mem_fault faults[] = {
        {.ops = STORE_OP_READ, .skip = 1, .times = 1, .error = EIO},
        {.ops = STORE_OP_READ, .skip = 2, .times = 1, .short_read = true},
        {.ops = STORE_OP_READ, .skip = 1, .times = 1, .replace = other, .replace_len = 3 << 20},
    };
    const int want[] = {EIO, EIO, ESTALE};
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
        ck_assert_int_eq(store_mem_fault(st, &faults[i]), 0);
        struct buf b = make("f.bin", &r, NULL, want[i]);
        buf_free(&b);
        ck_assert_uint_eq(mc.puts, 0);
        if (faults[i].replace) /* the next one is about the original bytes again */
            ck_assert_int_eq(store_mem_add(st, B, "f.bin", data, 3 << 20, 7), 0);
    }
    struct maker_result res;
    struct buf ok = make("f.bin", &r, &res, 0);
    ck_assert(!res.cached);
    ck_assert_uint_eq(mc.puts, 1);
    maker_result_free(&res);
    buf_free(&ok);
    free(data);
    free(other);
}
END_TEST

/* No torrent for a zero-byte object or a key no torrent can be named after. */
START_TEST(test_refusals)
{
    ck_assert_int_eq(store_mem_add(st, B, "empty", "", 0, 1), 0);
    ck_assert_int_eq(store_mem_add(st, B, "dir/", "x", 1, 1), 0);
    ck_assert_int_eq(store_mem_add(st, B, "ctl\x01name", "x", 1, 1), 0);
    struct torrent_recipe r = {.meta = TORRENT_V1};
    const char *keys[] = {"empty", "dir/", "ctl\x01name"};
    for (size_t i = 0; i < 3; i++) {
        struct buf b = make(keys[i], &r, NULL, EINVAL);
        buf_free(&b);
    }
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), 0);
}
END_TEST

/* Hashes known from an existing torrent make the same bytes with no read, and go to the cache,
 * so that the next call needs neither the torrent nor the object. */
START_TEST(test_known_hashes_are_kept)
{
    uint8_t *data = content(500003, 5);
    ck_assert_int_eq(store_mem_add(st, B, "k.bin", data, 500003, 1796108250), 0);
    struct torrent_recipe r = {.meta = TORRENT_HYBRID, .piece_length = 65536};
    struct buf first = make("k.bin", &r, NULL, 0);
    struct metainfo *m = NULL;
    struct hasher_result known;
    err_t err = {0};
    ck_assert_int_eq(metainfo_parse(first.data, first.len, &m, &err), 0);
    ck_assert_int_eq(metainfo_hashes(m, &known, &err), 0);
    metainfo_free(m);
    mc_free(&mc); /* a cache that has never seen this object */
    memset(&mc, 0, sizeof(mc));
    unsigned reads = store_mem_calls(st, STORE_OP_READ, NULL);
    struct store_object o;
    struct buf b;
    struct maker_result res;
    buf_init(&b, 1u << 26);
    ck_assert_int_eq(store_head(st, B, "k.bin", &o, NULL, NULL), 0);
    ck_assert_int_eq(maker_make_known(&mk, B, "k.bin", &o, &r, &known, &b, &res, &err), 0);
    ck_assert(res.cached);
    maker_result_free(&res);
    assert_same(&first, &b);
    ck_assert_uint_eq(mc.puts, 1);
    buf_free(&b);
    buf_init(&b, 1u << 26);
    ck_assert_int_eq(maker_cached(&mk, B, "k.bin", &o, &r, &b, NULL, &err), 0);
    assert_same(&first, &b);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), reads);
    hasher_result_free(&known);
    buf_free(&b);
    buf_free(&first);
    free(data);
}
END_TEST

/* A session of objects (a prefix) composed from the cache: after the single-file v2 torrents of
 * the same piece length were made, a v2 session reads no byte and is the torrent made from
 * scratch; a hybrid session, hashed, leaves v2 entries a single-file v2 torrent is made from
 * without a read. */
static struct buf session(enum torrent_meta meta, struct source_dir *d, bool hooks)
{
    struct torrent_opts o = {.meta = meta, .piece_length = 16384, .no_date = true, .threads = 1};
    struct maker_files mf = {&mk, d->parts};
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1u << 30);
    if (hooks)
        maker_files_hooks(&mf, &o);
    ck_assert_int_eq(torrent_files_order(d->parts, d->n, meta, false, &err), 0);
    ck_assert_msg(torrent_create_files("p", d->parts, d->n, &o, &b, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    return b;
}

START_TEST(test_session_composed)
{
    static const size_t sizes[] = {50000, 16384, 1, 0, 100000};
    static const char *const keys[] = {"p/a.bin", "p/d/b.bin", "p/c", "p/empty", "p/z.bin"};
    for (size_t i = 0; i < 5; i++) {
        uint8_t *data = content(sizes[i], (unsigned)i);
        ck_assert_int_eq(store_mem_add(st, B, keys[i], data, sizes[i], 7), 0);
        free(data);
    }
    struct source_dir d;
    err_t err = {0};
    ck_assert_int_eq(store_prefix_scan(st, B, "p/", NULL, 0, NULL, 0, NULL, NULL, &d, &err), 0);
    struct buf scratch = session(TORRENT_V2, &d, false);
    /* the single-file v2 torrents first */
    struct torrent_recipe r = {.meta = TORRENT_V2, .piece_length = 16384};
    for (size_t i = 0; i < 5; i++) {
        if (sizes[i] == 0)
            continue;
        struct buf one = make(keys[i], &r, NULL, 0);
        buf_free(&one);
    }
    unsigned reads = store_mem_calls(st, STORE_OP_READ, NULL);
    struct buf composed = session(TORRENT_V2, &d, true);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), reads);
    ck_assert_uint_eq(composed.len, scratch.len);
    ck_assert_int_eq(memcmp(composed.data, scratch.data, scratch.len), 0);
    /* another piece length is not composed: the session reads */
    struct torrent_opts o = {.meta = TORRENT_V2, .piece_length = 32768, .no_date = true};
    struct maker_files mf = {&mk, d.parts};
    struct buf other;
    buf_init(&other, 1u << 30);
    maker_files_hooks(&mf, &o);
    ck_assert_int_eq(torrent_create_files("p", d.parts, d.n, &o, &other, NULL, NULL, &err), 0);
    ck_assert_uint_gt(store_mem_calls(st, STORE_OP_READ, NULL), reads);
    /* a hybrid session, hashed into an empty cache, leaves what a single-file v2 torrent needs */
    mc_free(&mc);
    memset(&mc, 0, sizeof(mc));
    struct buf hybrid = session(TORRENT_HYBRID, &d, true);
    ck_assert_uint_eq(mc.puts, 4);
    reads = store_mem_calls(st, STORE_OP_READ, NULL);
    for (size_t i = 0; i < 5; i++) {
        struct store_object obj;
        struct buf cached, fresh;
        if (sizes[i] == 0)
            continue;
        buf_init(&cached, 1u << 30);
        ck_assert_int_eq(store_head(st, B, keys[i], &obj, NULL, &err), 0);
        ck_assert_msg(maker_cached(&mk, B, keys[i], &obj, &r, &cached, NULL, &err) == 0, "%s",
                      keys[i]);
        const struct maker_cache *keep = mk.cache;
        mk.cache = NULL;
        fresh = make(keys[i], &r, NULL, 0);
        mk.cache = keep;
        ck_assert_uint_eq(cached.len, fresh.len);
        ck_assert_int_eq(memcmp(cached.data, fresh.data, fresh.len), 0);
        buf_free(&cached);
        buf_free(&fresh);
    }
    buf_free(&hybrid);
    buf_free(&other);
    buf_free(&composed);
    buf_free(&scratch);
    source_dir_free(&d);
}
END_TEST

/* A padded session (hybrid, or v1 with pads) composed from the cache: after the single-file
 * hybrid torrents of the same piece length were made, it reads no byte and is the torrent made
 * from scratch (each file's last v1 piece is the padded one the cache kept); so is a v2 session.
 * Entries of before (no padded last piece) cost a read of those files, which leaves entries
 * the next session composes from. */
static struct buf padded_session(enum torrent_meta meta, struct source_dir *d, bool hooks)
{
    struct torrent_opts o = {.meta = meta,
                             .piece_length = 16384,
                             .no_date = true,
                             .threads = 2,
                             .pad = meta == TORRENT_V1};
    struct maker_files mf = {&mk, d->parts};
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1u << 30);
    if (hooks)
        maker_files_hooks(&mf, &o);
    ck_assert_int_eq(torrent_files_order(d->parts, d->n, meta, o.pad, &err), 0);
    ck_assert_msg(torrent_create_files("p", d->parts, d->n, &o, &b, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    return b;
}

static void assert_same_session(enum torrent_meta meta, struct source_dir *d, bool reads)
{
    struct buf scratch = padded_session(meta, d, false);
    unsigned before = store_mem_calls(st, STORE_OP_READ, NULL);
    struct buf composed = padded_session(meta, d, true);
    unsigned after = store_mem_calls(st, STORE_OP_READ, NULL);
    if (reads)
        ck_assert_uint_gt(after, before);
    else
        ck_assert_msg(after == before, "%s: %u reads", torrent_meta_name(meta), after - before);
    ck_assert_uint_eq(composed.len, scratch.len);
    ck_assert_msg(memcmp(composed.data, scratch.data, scratch.len) == 0, "%s",
                  torrent_meta_name(meta));
    buf_free(&composed);
    buf_free(&scratch);
}

START_TEST(test_hybrid_session_composed)
{
    static const size_t sizes[] = {50000, 16384, 1, 0, 100000, 32768, 16385};
    static const char *const keys[] = {"p/a.bin", "p/d/b.bin", "p/c", "p/empty",
                                       "p/z.bin", "p/d/e",     "p/f"};
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    for (size_t i = 0; i < N; i++) {
        uint8_t *data = content(sizes[i], (unsigned)i + 11);
        ck_assert_int_eq(store_mem_add(st, B, keys[i], data, sizes[i], 7), 0);
        free(data);
    }
    struct source_dir d;
    err_t err = {0};
    ck_assert_int_eq(store_prefix_scan(st, B, "p/", NULL, 0, NULL, 0, NULL, NULL, &d, &err), 0);
    /* the single-file hybrid torrents first: the one cache entry each serves every layout */
    struct torrent_recipe r = {.meta = TORRENT_HYBRID, .piece_length = 16384};
    for (size_t i = 0; i < N; i++) {
        if (sizes[i] == 0)
            continue;
        struct buf one = make(keys[i], &r, NULL, 0);
        buf_free(&one);
    }
    assert_same_session(TORRENT_HYBRID, &d, false);
    assert_same_session(TORRENT_V2, &d, false);
    assert_same_session(TORRENT_V1, &d, false);
    /* entries of before: the files whose last piece is short are read, once */
    unsigned puts = mc.puts;
    for (size_t i = 0; i < mc.n; i++) {
        struct buf *v = &mc.e[i].v;
        if (v->data[29] & 4) {
            v->data[29] &= 3;
            v->len -= 20;
        }
    }
    assert_same_session(TORRENT_HYBRID, &d, true);
    ck_assert_uint_eq(mc.puts, puts + 4); /* the four files with a short last piece */
    assert_same_session(TORRENT_HYBRID, &d, false);
    source_dir_free(&d);
    /* a lone file has no pad: its last piece stays the unpadded one, composed or not */
    uint8_t *data = content(50000, 3);
    ck_assert_int_eq(store_mem_add(st, B, "q/only.bin", data, 50000, 7), 0);
    free(data);
    ck_assert_int_eq(store_prefix_scan(st, B, "q/", NULL, 0, NULL, 0, NULL, NULL, &d, &err), 0);
    struct buf one = make("q/only.bin", &r, NULL, 0);
    assert_same_session(TORRENT_HYBRID, &d, false);
    struct buf lone = padded_session(TORRENT_HYBRID, &d, true);
    struct metainfo *m1 = NULL, *m2 = NULL;
    ck_assert_int_eq(metainfo_parse(one.data, one.len, &m1, &err), 0);
    ck_assert_int_eq(metainfo_parse(lone.data, lone.len, &m2, &err), 0);
    ck_assert_uint_eq(m1->npieces, m2->npieces);
    ck_assert_int_eq(memcmp(m1->pieces, m2->pieces, 20 * m1->npieces), 0);
    metainfo_free(m1);
    metainfo_free(m2);
    buf_free(&lone);
    buf_free(&one);
    source_dir_free(&d);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("maker");
    TCase *t = tcase_create("maker");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_same_info_hash_as_libtorrent);
    tcase_add_test(t, test_outer_fields_never_stale);
    tcase_add_test(t, test_cached_only);
    tcase_add_test(t, test_faults_leave_nothing);
    tcase_add_test(t, test_refusals);
    tcase_add_test(t, test_known_hashes_are_kept);
    tcase_add_test(t, test_session_composed);
    tcase_add_test(t, test_hybrid_session_composed);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
