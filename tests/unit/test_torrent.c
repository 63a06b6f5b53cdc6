/* test_torrent.c — the torrent contract: published vectors reproduced byte for byte, exact size
 * known before hashing, determinism across runs and thread counts, verification, the outer
 * digest. */
#include <check.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "s3torrent/hasher.h"
#include "s3torrent/metainfo.h"
#include "s3torrent/store_mem.h"
#include "s3torrent/torrent.h"
#include "s3torrent/verify.h"
#include "testutil.h"

static struct buf make(const char *path, const char *name, const struct torrent_opts *o)
{
    struct source *src;
    struct buf b;
    err_t err = {0};
    ck_assert_msg(source_file_open(path, &src, &err) == 0, "%s", err.msg);
    buf_init(&b, 1u << 30);
    ck_assert_msg(torrent_create(src, name, o, &b, NULL, NULL, &err) == 0, "%s", err.msg);
    source_free(src);
    return b;
}

/* tests/data/torrents/generated: content byte i = i mod 251, made by python3-libtorrent with
 * no creation date and no creator. We build the same and compare every byte. */
START_TEST(test_generated_vectors)
{
    static const struct {
        const char *file, *name;
        uint64_t size, plen;
        enum torrent_meta meta;
    } v[] = {
        {"one-byte.torrent", "a.bin", 1, 16384, TORRENT_HYBRID},
        {"one-block.torrent", "b.bin", 16384, 16384, TORRENT_HYBRID},
        {"block-plus-1.torrent", "c.bin", 16385, 65536, TORRENT_HYBRID},
        {"three-blocks.torrent", "d.bin", 40000, 65536, TORRENT_HYBRID},
        {"five-pieces.torrent", "e.bin", 150000, 32768, TORRENT_HYBRID},
        {"five-pieces-v2only.torrent", "e.bin", 150000, 32768, TORRENT_V2},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char rel[256];
        size_t len;
        snprintf(rel, sizeof(rel), "torrents/generated/%s", v[i].file);
        uint8_t *want = tu_read_data(rel, &len);
        char *path = tu_make_file(v[i].size, 0);
        struct torrent_opts o = {.meta = v[i].meta, .piece_length = v[i].plen, .no_date = true};
        struct buf b = make(path, v[i].name, &o);
        ck_assert_msg(b.len == len && memcmp(b.data, want, len) == 0, "%s differs", v[i].file);
        ck_assert_uint_eq(torrent_size(v[i].name, v[i].size, &o), len);
        buf_free(&b);
        unlink(path);
        free(path);
        free(want);
    }
}
END_TEST

/* libtorrent's own v2 test torrents describe files of zeros: our verifier must accept them,
 * which checks piece layers and roots computed independently of our builder. */
START_TEST(test_libtorrent_zero_files_verify)
{
    static const struct {
        const char *file;
        uint64_t size;
    } v[] = {
        {"torrents/libtorrent/valid/v2.torrent", 65536},
        {"torrents/libtorrent/valid/v2_multipiece_file.torrent", 1048576},
        {"torrents/libtorrent/valid/v2_only.torrent", 1048576},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t len;
        uint8_t *raw = tu_read_data(v[i].file, &len);
        struct metainfo *m;
        err_t err = {0};
        ck_assert_msg(metainfo_parse(raw, len, &m, &err) == 0, "%s: %s", v[i].file, err.msg);
        char *path = strdup("/tmp/s3t-zero-XXXXXX");
        int fd = mkstemp(path);
        ck_assert_int_eq(ftruncate(fd, (off_t)v[i].size), 0);
        close(fd);
        struct source *src;
        ck_assert_int_eq(source_file_open(path, &src, &err), 0);
        struct verify_opts vo = {0};
        uint64_t bad;
        ck_assert_msg(verify_source(m, src, &vo, &bad, &err) == 0, "%s: %s", v[i].file, err.msg);
        source_free(src);
        unlink(path);
        free(path);
        metainfo_free(m);
        free(raw);
    }
}
END_TEST

START_TEST(test_auto_piece_length)
{
    const uint64_t M = 1024 * 1024;
    ck_assert_uint_eq(torrent_auto_piece_length(1), 256 * 1024);
    ck_assert_uint_eq(torrent_auto_piece_length(512 * M), 256 * 1024);
    ck_assert_uint_eq(torrent_auto_piece_length(512 * M + 1), 512 * 1024);
    ck_assert_uint_eq(torrent_auto_piece_length(2048 * M), 1 * M);
    ck_assert_uint_eq(torrent_auto_piece_length(32768 * M), 16 * M);
    ck_assert_uint_eq(torrent_auto_piece_length(102400 * M), 16 * M);
}
END_TEST

/* The size promised before hashing equals the size built, over many sizes and options. */
START_TEST(test_size_precomputed)
{
    static const char *const tr[] = {"udp://a.example:1/announce", "http://b.example/ann"};
    static const char *const ws[] = {"http://s3.example/bucket/x%20y"};
    unsigned seed = 12345;
    for (int i = 0; i < 300; i++) {
        seed = seed * 1103515245u + 12345u;
        uint64_t size = 1 + ((uint64_t)seed << 7 ^ seed) % (i % 3 == 0 ? 70000 : 6000000000ull);
        struct torrent_opts o = {
            .meta = (enum torrent_meta)(1 + seed % 3),
            .piece_length = seed % 4 == 0 ? 0 : 16384u << (seed % 9),
            .trackers = tr,
            .ntrackers = seed % 3,
            .webseeds = ws,
            .nwebseeds = seed % 2,
            .private_ = seed & 8,
            .source = seed & 16 ? "SRC" : NULL,
            .comment = seed & 32 ? "a comment" : NULL,
            .created_by = "s3torrent test",
            .no_date = seed & 64,
            .creation_date = 1700000000 + (int64_t)(seed % 100000),
        };
        uint64_t want = torrent_size("name.bin", size, &o);
        ck_assert_uint_gt(want, 0);
        /* build with zero hashes of the right widths: every other byte is decided already */
        struct hasher_result h = {.size = size};
        uint64_t plen;
        ck_assert_int_eq(torrent_resolve(size, &o, &plen, NULL), 0);
        h.piece_length = plen;
        h.npieces = (size + plen - 1) / plen;
        h.v1_pieces = calloc(h.npieces, 20);
        h.v2_layer = calloc(h.npieces, 32);
        struct buf b;
        buf_init(&b, 1u << 30);
        ck_assert_int_eq(torrent_encode("name.bin", size, &o, &h, &b, NULL), 0);
        ck_assert_uint_eq(b.len, want);
        struct metainfo *m;
        err_t err = {0};
        /* zero hashes make the v2 layer inconsistent with its root; parse only v1-only ones */
        if (o.meta == TORRENT_V1) {
            ck_assert_msg(metainfo_parse(b.data, b.len, &m, &err) == 0, "%s", err.msg);
            ck_assert_uint_eq(m->total_size, size);
            metainfo_free(m);
        }
        buf_free(&b);
        hasher_result_free(&h);
    }
    /* and with real hashes for a few files */
    for (uint64_t size = 1; size < 3000000; size = size * 7 + 3) {
        char *path = tu_make_file(size, (unsigned)size);
        struct torrent_opts o = {.meta = TORRENT_HYBRID,
                                 .piece_length = 16384,
                                 .trackers = tr,
                                 .ntrackers = 2,
                                 .created_by = "x"};
        struct buf b = make(path, "f", &o);
        ck_assert_uint_eq(b.len, torrent_size("f", size, &o));
        buf_free(&b);
        unlink(path);
        free(path);
    }
}
END_TEST

START_TEST(test_threads_and_runs_identical)
{
    char *path = tu_make_file(5 * 1024 * 1024 + 12345, 7);
    for (int meta = 1; meta <= 3; meta++) {
        struct torrent_opts o = {.meta = (enum torrent_meta)meta,
                                 .piece_length = 32768,
                                 .created_by = "x",
                                 .threads = 1};
        struct buf one = make(path, NULL, &o);
        o.threads = 7;
        struct buf many = make(path, NULL, &o);
        struct buf again = make(path, NULL, &o);
        ck_assert_uint_eq(one.len, many.len);
        ck_assert_int_eq(memcmp(one.data, many.data, one.len), 0);
        ck_assert_int_eq(memcmp(many.data, again.data, one.len), 0);
        struct metainfo *m;
        ck_assert_int_eq(metainfo_parse(one.data, one.len, &m, NULL), 0);
        metainfo_free(m);
        buf_free(&one);
        buf_free(&many);
        buf_free(&again);
    }
    unlink(path);
    free(path);
}
END_TEST

START_TEST(test_verify_names_first_bad_piece)
{
    for (int meta = 1; meta <= 3; meta++) {
        char *path = tu_make_file(300000, 3);
        struct torrent_opts o = {.meta = (enum torrent_meta)meta, .piece_length = 16384};
        struct buf b = make(path, NULL, &o);
        struct metainfo *m;
        err_t err = {0};
        ck_assert_int_eq(metainfo_parse(b.data, b.len, &m, &err), 0);
        int fd = open(path, O_WRONLY);
        ck_assert_int_eq(pwrite(fd, "\xff", 1, 5 * 16384 + 100), 1);
        ck_assert_int_eq(pwrite(fd, "\xff", 1, 9 * 16384), 1);
        close(fd);
        struct source *src;
        ck_assert_int_eq(source_file_open(path, &src, &err), 0);
        struct verify_opts vo = {.threads = 3};
        uint64_t bad;
        ck_assert_int_eq(verify_source(m, src, &vo, &bad, &err), EBADMSG);
        ck_assert_uint_eq(bad, 5);
        ck_assert_msg(strstr(err.msg, "piece 5 of 19") != NULL, "%s", err.msg);
        source_free(src);
        metainfo_free(m);
        buf_free(&b);
        unlink(path);
        free(path);
    }
}
END_TEST

START_TEST(test_bad_sources)
{
    struct source *src;
    err_t err = {0};
    ck_assert_int_eq(source_file_open("/nonexistent/file", &src, &err), ENOENT);
    ck_assert_msg(strstr(err.msg, "/nonexistent/file: No such file") != NULL, "%s", err.msg);
    ck_assert_int_eq(source_file_open("/tmp", &src, &err), ENOTSUP);
    ck_assert_msg(strstr(err.msg, "is a directory") != NULL, "%s", err.msg);
    char *path = tu_make_file(0, 0);
    ck_assert_int_eq(source_file_open(path, &src, &err), 0);
    struct torrent_opts o = {.meta = TORRENT_V1};
    struct buf b;
    buf_init(&b, 1024);
    ck_assert_int_eq(torrent_create(src, NULL, &o, &b, NULL, NULL, &err), EINVAL);
    ck_assert_msg(strstr(err.msg, "nothing to share") != NULL, "%s", err.msg);
    buf_free(&b);
    source_free(src);
    unlink(path);
    free(path);
}
END_TEST

/* A file of 4 MiB or more is hashed through a mapping: its pieces are the SHA-1 of its bytes
 * (computed here with plain reads), with 1 and 3 threads. */
START_TEST(test_mapped_file)
{
    const uint64_t size = (9u << 20) + 12345;
    char *path = tu_make_file(size, 7);
    uint8_t *want = malloc(20 * 10), *chunk = malloc(1u << 20);
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    for (int i = 0; i < 10; i++) {
        size_t n = fread(chunk, 1, 1u << 20, fp);
        ck_assert_uint_eq(n, i < 9 ? 1u << 20 : 12345);
        ck_assert_int_eq(EVP_Digest(chunk, n, want + 20 * i, NULL, EVP_sha1(), NULL), 1);
    }
    fclose(fp);
    for (unsigned threads = 1; threads <= 3; threads += 2) {
        struct torrent_opts o = {.meta = TORRENT_V1, .piece_length = 1u << 20, .threads = threads};
        struct buf b = make(path, NULL, &o);
        struct metainfo *m;
        err_t err = {0};
        ck_assert_msg(metainfo_parse(b.data, b.len, &m, &err) == 0, "%s", err.msg);
        ck_assert_uint_eq(m->npieces, 10);
        ck_assert_mem_eq(m->pieces, want, 20 * 10);
        metainfo_free(m);
        buf_free(&b);
    }
    free(chunk);
    free(want);
    unlink(path);
    free(path);
}
END_TEST

/* A mapped file truncated while it is hashed (here between the open and the reads): the pages
 * it lost would be a SIGBUS; the create fails with one line instead, and a file that grew fails
 * too. */
START_TEST(test_mapped_file_changes)
{
    static const off_t to[] = {(1 << 20) + 5, 0, (16 << 20) + 1};
    for (size_t i = 0; i < sizeof(to) / sizeof(*to); i++) {
        char *path = tu_make_file(8u << 20, 8);
        struct source *src;
        err_t err = {0};
        ck_assert_int_eq(source_file_open(path, &src, &err), 0);
        ck_assert_int_eq(truncate(path, to[i]), 0);
        struct torrent_opts o = {.meta = TORRENT_HYBRID, .piece_length = 1u << 20, .threads = 2};
        struct buf b;
        buf_init(&b, 1u << 20);
        ck_assert_int_eq(torrent_create(src, NULL, &o, &b, NULL, NULL, &err), ESTALE);
        ck_assert_msg(strstr(err.msg, to[i] < (8 << 20) ? "file shrank while hashing"
                                                        : "file changed while hashing") != NULL,
                      "%s", err.msg);
        ck_assert_ptr_null(strchr(err.msg, '\n'));
        buf_free(&b);
        source_free(src);
        unlink(path);
        free(path);
    }
}
END_TEST

/* A SIGBUS that is not a mapped file's still ends the process, as without the guard (by the
 * signal; under a sanitizer, whose handler was there before ours, by its report and an exit, or
 * an abort with abort_on_error). */
START_TEST(test_foreign_sigbus_still_fatal)
{
    char *path = tu_make_file(8u << 20, 9);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct source *src;
        err_t err = {0};
        if (source_file_open(path, &src, &err) != 0) /* the guard is installed now */
            _exit(3);
        raise(SIGBUS);
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFSIGNALED(st) ? WTERMSIG(st) == SIGBUS || WTERMSIG(st) == SIGABRT
                                  : WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 3,
                  "status %d", st);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(test_names_and_webseeds)
{
    ck_assert_int_eq(torrent_check_name("ok name+ü.mp4", NULL), 0);
    ck_assert_int_ne(torrent_check_name("..", NULL), 0);
    ck_assert_int_ne(torrent_check_name("a/b", NULL), 0);
    ck_assert_int_ne(torrent_check_name("a\nb", NULL), 0);
    ck_assert_int_ne(torrent_check_name("", NULL), 0);
    char *u = torrent_webseed_url("http://h:1/b/", "rec/a b+c%é~.mp4");
    ck_assert_str_eq(u, "http://h:1/b/rec/a%20b%2Bc%25%C3%A9~.mp4");
    free(u);
    /* the form each meta version needs: the object's URL for v1 and hybrid, its directory for
     * v2 (libtorrent appends the torrent's name) */
    static const struct {
        enum torrent_meta meta;
        const char *key, *want;
    } ws[] = {
        {TORRENT_V1, "rec/a b.mp4", "http://h:1/b/rec/a%20b.mp4"},
        {TORRENT_HYBRID, "rec/a b.mp4", "http://h:1/b/rec/a%20b.mp4"},
        {TORRENT_V2, "rec/a b.mp4", "http://h:1/b/rec/"},
        {TORRENT_V2, "r c/d+é/a b.mp4", "http://h:1/b/r%20c/d%2B%C3%A9/"},
        {TORRENT_V2, "top.mp4", "http://h:1/b/"},
    };
    for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++) {
        u = torrent_webseed_for("http://h:1/b/", ws[i].key, ws[i].meta);
        ck_assert_str_eq(u, ws[i].want);
        free(u);
    }
}
END_TEST

/* The outer digest (docs/DESIGN.md §4) from the options equals the one of the bytes they encode,
 * whatever the meta version (v2's piece layers are left out with the info dict), and changes
 * with every outer field; known answers for two hand-written outer dicts. */
START_TEST(test_outer_digest)
{
    static const char *const one[] = {"u:1"}, *const two[] = {"u:1", "u:2"};
    static const char *const ws[] = {"w:1"};
    const struct torrent_opts base = {.piece_length = 16384, .created_by = "me"};
    struct torrent_opts o[8];
    for (size_t i = 0; i < 8; i++)
        o[i] = base;
    o[0].no_date = true, o[0].created_by = NULL;
    o[1].trackers = one, o[1].ntrackers = 1, o[1].webseeds = ws, o[1].nwebseeds = 1;
    o[1].creation_date = 5;
    o[2].trackers = two, o[2].ntrackers = 2;
    o[3].comment = "a comment";
    o[4].creation_date = 1700000000;
    o[5].no_date = true;
    o[6].trackers = one, o[6].ntrackers = 1;
    o[7].webseeds = ws, o[7].nwebseeds = 1;
    char got[8][TORRENT_OUTER_HEX];
    for (size_t i = 0; i < 8; i++) {
        for (int m = TORRENT_V1; m <= TORRENT_HYBRID; m++) {
            char from_bytes[TORRENT_OUTER_HEX];
            struct buf b;
            o[i].meta = (enum torrent_meta)m;
            /* private and source are in the info dict: no outer field */
            o[i].private_ = m == TORRENT_V2;
            o[i].source = m == TORRENT_HYBRID ? "src" : NULL;
            buf_init(&b, 1u << 20);
            ck_assert_int_eq(torrent_encode("x.bin", 100000, &o[i], NULL, &b, NULL), 0);
            ck_assert_int_eq(torrent_outer_digest(&o[i], got[i]), 0);
            ck_assert_int_eq(torrent_outer_digest_of(b.data, b.len, from_bytes), 0);
            ck_assert_str_eq(got[i], from_bytes);
            buf_free(&b);
        }
        for (size_t k = 0; k < i; k++)
            ck_assert_str_ne(got[k], got[i]);
    }
    ck_assert_str_eq(got[0], "959a45d44e6fcf58361ed004681556fe"); /* SHA-256 of "de" */
    ck_assert_str_eq(got[1], "e8014328ecaefd3541669e909d684804");
    char x[TORRENT_OUTER_HEX];
    ck_assert_int_eq(torrent_outer_digest_of((const uint8_t *)"garbage", 7, x), EINVAL);
    ck_assert_int_eq(torrent_outer_digest_of((const uint8_t *)"le", 2, x), EINVAL);
}
END_TEST

/* Content of test file i: byte k = (k + seed) mod 251, as tu_make_file writes it. */
static uint8_t *expect_bytes(const uint64_t *sizes, const uint64_t *zeros, size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += sizes[i] + zeros[i];
    uint8_t *p = malloc(total ? total : 1), *q = p;
    for (size_t i = 0; i < n; i++) {
        for (uint64_t k = 0; k < sizes[i]; k++)
            *q++ = (uint8_t)((k + i) % 251);
        memset(q, 0, zeros[i]);
        q += zeros[i];
    }
    *len = total;
    return p;
}

/* source_concat: files and runs of zeros read as one stream by the parallel hasher, whatever the
 * thread count, give the SHA-1 of each piece of the bytes end to end; a part whose size is not
 * the listed one is ESTALE. */
START_TEST(test_concat_source)
{
    static const uint64_t sizes[] = {0, 1, 16383, 100000, 0, 5, 40000};
    static const uint64_t zeros[] = {0, 7, 0, 16384, 0, 0, 3};
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    struct source_part parts[2 * N];
    char *paths[N];
    size_t np = 0, len;
    for (size_t i = 0; i < N; i++) {
        paths[i] = tu_make_file(sizes[i], (unsigned)i);
        parts[np++] = (struct source_part){paths[i], sizes[i], 0, source_file_opener, paths[i]};
        if (zeros[i])
            parts[np++] = (struct source_part){NULL, zeros[i], 0, NULL, NULL};
    }
    uint8_t *want = expect_bytes(sizes, zeros, N, &len);
    for (unsigned threads = 1; threads <= 4; threads += 3) {
        struct source *src;
        struct hasher_result h;
        err_t err = {0};
        ck_assert_int_eq(source_concat_open("all", "all", parts, np, &src, &err), 0);
        ck_assert_uint_eq(src->size, len);
        src->span = 16384; /* a stream per piece: parts are shared and cross streams */
        struct hasher_opts ho = {.piece_length = 16384, .v1 = true, .threads = threads};
        ck_assert_msg(hasher_run(src, &ho, &h, &err) == 0, "%s", err.msg);
        ck_assert_uint_eq(h.npieces, (len + 16383) / 16384);
        for (uint64_t k = 0; k < h.npieces; k++) {
            uint8_t md[20];
            size_t off = k * 16384, n = len - off < 16384 ? len - off : 16384;
            EVP_Digest(want + off, n, md, NULL, EVP_sha1(), NULL);
            ck_assert_msg(memcmp(md, h.v1_pieces + 20 * k, 20) == 0, "piece %llu",
                          (unsigned long long)k);
        }
        hasher_result_free(&h);
        source_free(src);
    }
    /* listed one byte longer than it is */
    struct source *src;
    struct hasher_result h;
    err_t err = {0};
    parts[np - 2].size++;
    ck_assert_int_eq(source_concat_open("all", "all", parts, np, &src, &err), 0);
    struct hasher_opts ho = {.piece_length = 16384, .v1 = true, .threads = 2};
    ck_assert_int_eq(hasher_run(src, &ho, &h, &err), ESTALE);
    ck_assert_msg(strstr(err.msg, paths[N - 1]) != NULL, "%s", err.msg);
    source_free(src);
    free(want);
    for (size_t i = 0; i < N; i++) {
        unlink(paths[i]);
        free(paths[i]);
    }
}
END_TEST

/* A file read through stream_feed, handed to the hasher in fragments of odd sizes (as libcurl
 * hands a body over: never aligned to leaves or pieces). */
struct feeder {
    struct source base;
    struct source *inner;
    unsigned turn;
    long delay_ns; /* before each call: a transport's latency */
};

/* Streams open at once over every feeder, and the most seen (test_ramp_process_budget). */
static unsigned feeds_open, feeds_max;

static int feeder_open(struct source *s, uint64_t off, uint64_t len, void **st, err_t *err)
{
    struct source *in = ((struct feeder *)s)->inner;
    unsigned now = __atomic_add_fetch(&feeds_open, 1, __ATOMIC_SEQ_CST);
    unsigned max = __atomic_load_n(&feeds_max, __ATOMIC_SEQ_CST);
    while (now > max && !__atomic_compare_exchange_n(&feeds_max, &max, now, false, __ATOMIC_SEQ_CST,
                                                     __ATOMIC_SEQ_CST))
        ;
    return in->ops->stream_open(in, off, len, st, err);
}

static int feeder_next(struct source *s, void *st, size_t n, uint8_t *scratch, const uint8_t **data,
                       err_t *err)
{
    struct source *in = ((struct feeder *)s)->inner;
    return in->ops->stream_next(in, st, n, scratch, data, err);
}

static int feeder_feed(struct source *s, void *st, size_t n, buf_sink_fn sink, void *arg,
                       err_t *err)
{
    static const size_t frag[] = {1, 7, 16385, 5000, 65539, 16383};
    struct feeder *f = (struct feeder *)s;
    if (f->delay_ns)
        nanosleep(&(struct timespec){0, f->delay_ns}, NULL);
    uint8_t *scratch = malloc(n);
    const uint8_t *p;
    int rc = f->inner->ops->stream_next(f->inner, st, n, scratch, &p, err);
    for (size_t at = 0; rc == 0 && at < n;) {
        size_t k = frag[__atomic_fetch_add(&f->turn, 1, __ATOMIC_RELAXED) % 6];
        k = k < n - at ? k : n - at;
        sink(arg, p + at, k);
        at += k;
    }
    free(scratch);
    return rc;
}

static void feeder_close(struct source *s, void *st)
{
    struct source *in = ((struct feeder *)s)->inner;
    __atomic_sub_fetch(&feeds_open, 1, __ATOMIC_SEQ_CST);
    in->ops->stream_close(in, st);
}

static int feeder_finish(struct source *s, err_t *err)
{
    struct source *in = ((struct feeder *)s)->inner;
    return in->ops->finish(in, err);
}

static void feeder_destroy(struct source *s)
{
    source_free(((struct feeder *)s)->inner);
}

static const struct source_ops feeder_ops = {feeder_open,  feeder_next,   feeder_feed,
                                             feeder_close, feeder_finish, feeder_destroy};

/* One slow network-like source of the file at path (100 ms a call, 16 KiB pieces: a run lasts
 * long past the ramp's first added stream, which comes on its second tick), hashed with the
 * thread count left to the hasher. */
static void *ramp_run(void *path)
{
    struct feeder *f = calloc(1, sizeof(*f));
    err_t err = {0};
    struct hasher_result h;
    struct hasher_opts ho = {.piece_length = 16384, .v1 = true};
    ck_assert_int_eq(source_file_open(path, &f->inner, &err), 0);
    f->base =
        (struct source){.ops = &feeder_ops, .size = f->inner->size, .span = 16384, .parallel = 4};
    f->delay_ns = 100 * 1000 * 1000;
    ck_assert_msg(hasher_run(&f->base, &ho, &h, &err) == 0, "%s", err.msg);
    hasher_result_free(&h);
    source_free(&f->base);
    return NULL;
}

/* The ramp adds streams to a run alone, but four runs at once (sync -j 4) start their four each,
 * sixteen in all, and none adds more: the process's streams stay within one run's sixteen. */
START_TEST(test_ramp_process_budget)
{
    char *path = tu_make_file(8 << 20, 5);
    feeds_max = 0;
    ramp_run(path);
    ck_assert_msg(feeds_max > 4, "a run alone grew to %u streams", feeds_max);

    pthread_t t[4];
    feeds_max = 0;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, ramp_run, path), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_msg(feeds_max == 16, "four runs at once had %u streams", feeds_max);
    ck_assert_uint_eq(feeds_open, 0);
    unlink(path);
    free(path);
}
END_TEST

/* Bytes fed in fragments that split leaves and pieces anywhere, in parts that shrink as the
 * source runs out (a network source's), hash as the same bytes read whole: v1 (and its padded
 * last piece), v2 and hybrid, with a fixed thread count and with the ramp's. */
START_TEST(test_fed_fragments_identical)
{
    const uint64_t plen = 65536;
    char *path = tu_make_file(5 * 1024 * 1024 + 12345, 11);
    /* the last pass: threads left to the hasher, whose ramp may add streams to a source that is
     * slow to answer (what ThreadSanitizer runs through) */
    for (int pass = 0; pass < 4; pass++) {
        int meta = pass < 3 ? pass + 1 : 3;
        bool ramp = pass == 3;
        struct hasher_opts ho = {.piece_length = plen,
                                 .v1 = meta != 2,
                                 .v2 = meta != 1,
                                 .v1_padded = meta != 2,
                                 .threads = 1};
        struct hasher_result want, got;
        struct source *src;
        err_t err = {0};
        ck_assert_int_eq(source_file_open(path, &src, &err), 0);
        ck_assert_msg(hasher_run(src, &ho, &want, &err) == 0, "%s", err.msg);
        source_free(src);

        struct feeder *f = calloc(1, sizeof(*f));
        ck_assert_int_eq(source_file_open(path, &f->inner, &err), 0);
        f->base = (struct source){
            .ops = &feeder_ops, .size = f->inner->size, .span = 2 * plen, .parallel = 3};
        ho.threads = ramp ? 0 : 3;
        if (ramp) {
            f->base.span = plen;
            f->delay_ns = 100 * 1000 * 1000;
        }
        ck_assert_msg(hasher_run(&f->base, &ho, &got, &err) == 0, "%s", err.msg);
        ck_assert_uint_eq(got.npieces, want.npieces);
        if (ho.v1) {
            ck_assert(memcmp(got.v1_pieces, want.v1_pieces, 20 * want.npieces) == 0);
            ck_assert(got.has_v1_padded && memcmp(got.v1_padded, want.v1_padded, 20) == 0);
        }
        if (ho.v2) {
            ck_assert(memcmp(got.v2_layer, want.v2_layer, 32 * want.npieces) == 0);
            ck_assert(memcmp(got.v2_root, want.v2_root, 32) == 0);
        }
        hasher_result_free(&want);
        hasher_result_free(&got);
        source_free(&f->base);
    }
    unlink(path);
    free(path);
}
END_TEST

/* The ramp of a network source's streams: the first tick (streams connecting) is not judged; a
 * stream is added while the one added last raised the throughput by 10%, and never past max;
 * once one does not pay, no more are added. */
START_TEST(test_stream_ramp)
{
    struct hasher_ramp rp;
    hasher_ramp_init(&rp, 4, 6);
    ck_assert(!hasher_ramp_tick(&rp, 10)); /* connecting */
    ck_assert(hasher_ramp_tick(&rp, 100)); /* 5 */
    ck_assert_uint_eq(rp.n, 5);
    ck_assert(!hasher_ramp_tick(&rp, 50)); /* the 5th connecting */
    ck_assert(hasher_ramp_tick(&rp, 120)); /* +20%: 6 */
    ck_assert_uint_eq(rp.n, 6);
    ck_assert(rp.frozen); /* max */
    ck_assert(!hasher_ramp_tick(&rp, 1000));
    ck_assert_uint_eq(rp.n, 6);

    hasher_ramp_init(&rp, 4, 16);
    ck_assert(!hasher_ramp_tick(&rp, 0));
    ck_assert(hasher_ramp_tick(&rp, 100));
    ck_assert(!hasher_ramp_tick(&rp, 100));
    ck_assert(!hasher_ramp_tick(&rp, 105)); /* +5% does not pay: frozen at 5 */
    ck_assert(rp.frozen);
    ck_assert(!hasher_ramp_tick(&rp, 500));
    ck_assert_uint_eq(rp.n, 5);

    hasher_ramp_init(&rp, 8, 8); /* no room: never grows */
    ck_assert(rp.frozen && !hasher_ramp_tick(&rp, 0) && !hasher_ramp_tick(&rp, 100));
}
END_TEST

/* The padded last v1 piece (hasher_opts.v1_padded) is the SHA-1 of the file's tail followed by
 * zeros up to the piece length, whatever the thread count and with v2 or not, while the pieces
 * stay those of the single-file torrent; a whole last piece is its own padded form. */
START_TEST(test_padded_last_piece)
{
    static const uint64_t sizes[] = {1, 16383, 3 * 65536 + 1234, 4 * 65536};
    const uint64_t plen = 65536;
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        char *path = tu_make_file(sizes[s], (unsigned)s);
        uint64_t last = (sizes[s] - 1) / plen * plen, tail = sizes[s] - last;
        uint8_t *piece = calloc(1, plen), want[20], unpadded[20];
        int fd = open(path, O_RDONLY);
        ck_assert_int_eq(pread(fd, piece, tail, (off_t)last), (ssize_t)tail);
        close(fd);
        EVP_Digest(piece, plen, want, NULL, EVP_sha1(), NULL);
        EVP_Digest(piece, tail, unpadded, NULL, EVP_sha1(), NULL);
        for (unsigned threads = 1; threads <= 3; threads += 2)
            for (int v2 = 0; v2 <= 1; v2++) {
                struct source *src;
                struct hasher_result h;
                err_t err = {0};
                struct hasher_opts ho = {.piece_length = plen,
                                         .v1 = true,
                                         .v2 = v2,
                                         .v1_padded = true,
                                         .threads = threads};
                ck_assert_int_eq(source_file_open(path, &src, &err), 0);
                ck_assert_msg(hasher_run(src, &ho, &h, &err) == 0, "%s", err.msg);
                ck_assert(h.has_v1_padded);
                ck_assert_msg(memcmp(h.v1_padded, want, 20) == 0, "size %llu",
                              (unsigned long long)sizes[s]);
                ck_assert(memcmp(h.v1_pieces + 20 * (h.npieces - 1), unpadded, 20) == 0);
                hasher_result_free(&h);
                source_free(src);
            }
        /* not asked for: not there */
        struct source *src;
        struct hasher_result h;
        err_t err = {0};
        struct hasher_opts ho = {.piece_length = plen, .v1 = true, .threads = 1};
        ck_assert_int_eq(source_file_open(path, &src, &err), 0);
        ck_assert_int_eq(hasher_run(src, &ho, &h, &err), 0);
        ck_assert(!h.has_v1_padded);
        hasher_result_free(&h);
        source_free(src);
        free(piece);
        unlink(path);
        free(path);
    }
}
END_TEST

/* The cache's packed form keeps the padded last piece, and an entry packed before it was kept
 * (no flag 4, no trailing 20 bytes) still reads: without it when the last piece is short, with
 * the last piece itself when that is whole. */
START_TEST(test_packed_round_trip)
{
    static const uint64_t sizes[] = {100000, 131072};
    for (size_t s = 0; s < 2; s++)
        for (int meta = TORRENT_V1; meta <= TORRENT_HYBRID; meta++) {
            char *path = tu_make_file(sizes[s], 3);
            struct source *src;
            struct hasher_result h, back, old;
            struct buf b;
            err_t err = {0};
            struct torrent_opts o = {.meta = (enum torrent_meta)meta, .piece_length = 32768};
            ck_assert_int_eq(source_file_open(path, &src, &err), 0);
            ck_assert_msg(torrent_hash(src, &o, &h, &err) == 0, "%s", err.msg);
            ck_assert(h.has_v1_padded == ((meta & TORRENT_V1) != 0));
            buf_init(&b, 1u << 20);
            ck_assert_int_eq(hasher_result_pack(&h, &b), 0);
            bool extra = (meta & TORRENT_V1) && sizes[s] % 32768 != 0;
            size_t plain = 30 + ((meta & TORRENT_V1) ? 20 * h.npieces : 0) +
                           ((meta & TORRENT_V2) ? 32 * h.npieces + 32 : 0);
            ck_assert_uint_eq(b.len, plain + (extra ? 20 : 0));
            ck_assert_msg(hasher_result_unpack(b.data, b.len, &back, &err) == 0, "%s", err.msg);
            ck_assert(back.has_v1_padded == h.has_v1_padded);
            if (h.has_v1_padded)
                ck_assert(memcmp(back.v1_padded, h.v1_padded, 20) == 0);
            ck_assert((back.v1_pieces == NULL) == (h.v1_pieces == NULL));
            ck_assert((back.v2_layer == NULL) == (h.v2_layer == NULL));
            if (h.v1_pieces)
                ck_assert(memcmp(back.v1_pieces, h.v1_pieces, 20 * h.npieces) == 0);
            if (h.v2_layer)
                ck_assert(memcmp(back.v2_layer, h.v2_layer, 32 * h.npieces) == 0 &&
                          memcmp(back.v2_root, h.v2_root, 32) == 0);
            /* the form of before: flags 1 and 2 only */
            b.data[29] &= 3;
            ck_assert_int_eq(hasher_result_unpack(b.data, plain, &old, &err), 0);
            ck_assert(old.has_v1_padded == ((meta & TORRENT_V1) && !extra));
            if (old.has_v1_padded)
                ck_assert(memcmp(old.v1_padded, h.v1_padded, 20) == 0);
            hasher_result_free(&old);
            /* flag 4 where no padded piece can be: refused */
            b.data[29] |= 4;
            buf_put(&b, h.v1_padded, 20);
            if (!extra)
                ck_assert_int_eq(hasher_result_unpack(b.data, plain + 20, &old, &err), EPROTO);
            hasher_result_free(&back);
            hasher_result_free(&h);
            buf_free(&b);
            source_free(src);
            unlink(path);
            free(path);
        }
}
END_TEST

/* A packed header whose size plus piece length passes 2^64 (found by fuzz_hashes): the piece
 * count it claims, 0, must not pass as that of the wrapped sum. */
START_TEST(test_packed_size_overflow)
{
    uint8_t p[30 + 32 + 32] = "s3th1";
    struct hasher_result res;
    err_t err = {0};
    memset(p + 5, 0xff, 5); /* size 0xffffffffff000000 */
    p[14] = 0x40;           /* piece length 2^54 */
    p[29] = 3;              /* v1 and v2, 0 pieces */
    ck_assert_int_eq(hasher_result_unpack(p, 30 + 32, &res, &err), EPROTO);
    ck_assert_int_eq(hasher_result_unpack(p, 30, &res, &err), EPROTO);
    p[29] = 1;
    ck_assert_int_eq(hasher_result_unpack(p, 30, &res, &err), EPROTO);
    ck_assert_msg(strstr(err.msg, "inconsistent") != NULL, "%s", err.msg);
}
END_TEST

/* The fan-out's runs joined (hasher_result_join) are the whole file hashed at once, v1 and v2:
 * runs of whole pieces, the last one taking the rest; a lone piece among runs is refused. */
START_TEST(test_join_runs)
{
    const uint64_t plen = 32768, len = 37 * plen + 123;
    static const uint64_t runs[][2] = {{0, 10}, {10, 10}, {20, 18}}; /* first piece, pieces */
    char *whole = tu_make_file(len, 5);
    uint8_t *bytes = malloc(len);
    FILE *f = fopen(whole, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(bytes, 1, len, f), len);
    fclose(f);
    struct hasher_opts ho = {.piece_length = plen, .v1 = true, .v2 = true, .threads = 2};
    struct hasher_result want, got, parts[3];
    struct source *src;
    err_t err = {0};
    ck_assert_int_eq(source_file_open(whole, &src, &err), 0);
    ck_assert_msg(hasher_run(src, &ho, &want, &err) == 0, "%s", err.msg);
    source_free(src);
    for (size_t i = 0; i < 3; i++) {
        char path[] = "/tmp/s3t-run-XXXXXX";
        int fd = mkstemp(path);
        uint64_t off = runs[i][0] * plen, n = i == 2 ? len - off : runs[i][1] * plen;
        ck_assert_int_eq(write(fd, bytes + off, n), (ssize_t)n);
        close(fd);
        ck_assert_int_eq(source_file_open(path, &src, &err), 0);
        ck_assert_msg(hasher_run(src, &ho, &parts[i], &err) == 0, "%s", err.msg);
        ck_assert_uint_eq(parts[i].npieces, runs[i][1]);
        source_free(src);
        unlink(path);
    }
    ck_assert_msg(hasher_result_join(parts, 3, &got, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(got.size, want.size);
    ck_assert_uint_eq(got.npieces, want.npieces);
    ck_assert_mem_eq(got.v1_pieces, want.v1_pieces, 20 * want.npieces);
    ck_assert_mem_eq(got.v2_layer, want.v2_layer, 32 * want.npieces);
    ck_assert_mem_eq(got.v2_root, want.v2_root, 32);
    hasher_result_free(&got);
    /* the last run's pieces, a run short: the middle one is not whole pieces */
    parts[1].size -= 1;
    ck_assert_int_eq(hasher_result_join(parts, 3, &got, &err), EINVAL);
    parts[1].size += 1;
    /* a one-piece run among others (its v2 tree would be as narrow as its leaves) */
    parts[2].npieces = 1;
    parts[2].size = plen;
    ck_assert_int_eq(hasher_result_join(parts, 3, &got, &err), EINVAL);
    for (size_t i = 0; i < 3; i++)
        hasher_result_free(&parts[i]);
    hasher_result_free(&want);
    unlink(whole);
    free(whole);
    free(bytes);
}
END_TEST

/* The two orders of docs/DESIGN.md §3 and the names refused. */
START_TEST(test_files_order)
{
    struct source_part p[] = {{.path = "a.txt"},
                              {.path = "a/x"},
                              {.path = "a b/y"},
                              {.path = "B"},
                              {.path = "\xc3\xa9t\xc3\xa9"},
                              {.path = ".h"}};
    enum { N = sizeof(p) / sizeof(p[0]) };
    static const char *bytes[N] = {".h", "B", "a b/y", "a.txt", "a/x", "\xc3\xa9t\xc3\xa9"};
    static const char *tree[N] = {".h", "B", "a/x", "a b/y", "a.txt", "\xc3\xa9t\xc3\xa9"};
    ck_assert_int_eq(torrent_files_order(p, N, TORRENT_V1, false, NULL), 0);
    for (size_t i = 0; i < N; i++)
        ck_assert_str_eq(p[i].path, bytes[i]);
    for (int meta = 1; meta <= 3; meta++) {
        ck_assert_int_eq(torrent_files_order(p, N, (enum torrent_meta)meta, meta == 1, NULL), 0);
        for (size_t i = 0; i < N; i++)
            ck_assert_str_eq(p[i].path, tree[i]);
    }
    err_t err = {0};
    struct source_part bad[] = {{.path = "ok"}, {.path = "d/new\nline"}};
    ck_assert_int_eq(torrent_files_order(bad, 2, TORRENT_V1, false, &err), EINVAL);
    ck_assert_msg(strstr(err.msg, "d/new?line: not a valid path segment") == err.msg, "%s",
                  err.msg);
    struct source_part latin1[] = {{.path = "d/caf\xe9"}};
    ck_assert_int_eq(torrent_files_order(latin1, 1, TORRENT_HYBRID, false, &err), EINVAL);
    ck_assert_msg(strstr(err.msg, "not UTF-8") != NULL, "%s", err.msg);
    struct source_part both[] = {{.path = "a/b"}, {.path = "a b"}, {.path = "a"}};
    ck_assert_int_eq(torrent_files_order(both, 3, TORRENT_V1, false, &err), EINVAL);
    ck_assert_msg(strstr(err.msg, "a: both a file and a directory") != NULL, "%s", err.msg);
}
END_TEST

/* A multi-file hybrid laid out as libtorrent 2.0 does: the v1 list with a pad after every file
 * not ending on a piece boundary (not after empty ones), the file tree with an empty file's
 * length alone, piece layers for files over one piece; torrent_size_files knows the length;
 * verify_files names the file and the piece after a flipped byte. */
START_TEST(test_multi_layout)
{
    static const uint64_t sizes[] = {40000, 0, 16384, 3};
    static const char *names[] = {"d/big", "d/e", "one", "z"};
    enum { N = 4 };
    struct source_part p[N];
    char *paths[N];
    for (size_t i = 0; i < N; i++) {
        paths[i] = tu_make_file(sizes[i], (unsigned)i);
        p[i] = (struct source_part){(char *)names[i], sizes[i], 0, source_file_opener, paths[i]};
    }
    struct torrent_opts o = {.meta = TORRENT_HYBRID, .piece_length = 16384, .no_date = true};
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1u << 20);
    ck_assert_int_eq(torrent_files_order(p, N, o.meta, false, &err), 0);
    ck_assert_msg(torrent_create_files("top", p, N, &o, &b, NULL, NULL, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(b.len, torrent_size_files("top", p, N, &o));
    /* the layout is the same bytes with every hash zeroed */
    struct buf lay;
    size_t differ = 0;
    buf_init(&lay, 1u << 20);
    ck_assert_int_eq(torrent_layout_files("top", p, N, &o, &lay, &err), 0);
    ck_assert_uint_eq(lay.len, b.len);
    for (size_t i = 0; i < b.len; i++)
        if (lay.data[i] != b.data[i]) {
            ck_assert_uint_eq(lay.data[i], 0);
            differ++;
        }
    ck_assert_uint_gt(differ, 20);
    buf_free(&lay);
    /* files hashed a file per thread: the same bytes whatever the thread count */
    for (unsigned threads = 1; threads <= 8; threads *= 8) {
        struct buf again;
        buf_init(&again, 1u << 20);
        o.threads = threads;
        ck_assert_int_eq(torrent_create_files("top", p, N, &o, &again, NULL, NULL, &err), 0);
        ck_assert_uint_eq(again.len, b.len);
        ck_assert_int_eq(memcmp(again.data, b.data, b.len), 0);
        buf_free(&again);
    }
    static const char files[] =
        "5:filesld6:lengthi40000e4:pathl1:d3:bigeed4:attr1:p6:lengthi9152e4:pathl4:.pad4:9152ee"
        "d6:lengthi0e4:pathl1:d1:eeed6:lengthi16384e4:pathl3:oneeed6:lengthi3e4:pathl1:zeed4:"
        "attr1:p6:lengthi16381e4:pathl4:.pad5:16381eee";
    ck_assert_msg(memmem(b.data, b.len, files, sizeof(files) - 1) != NULL, "%.*s", (int)b.len,
                  (const char *)b.data);
    ck_assert(memmem(b.data, b.len, "1:ed0:d6:lengthi0eee", 20) != NULL);
    struct metainfo *m;
    ck_assert_msg(metainfo_parse(b.data, b.len, &m, &err) == 0, "%s", err.msg);
    ck_assert(m->multi && m->v1 && m->v2);
    ck_assert_uint_eq(m->nfiles, N);
    ck_assert_uint_eq(m->total_size, 40000 + 16384 + 3);
    ck_assert_uint_eq(m->npieces, 3 + 1 + 1);
    ck_assert(m->files[0].layer != NULL && m->files[2].layer == NULL);
    int fd = open(paths[0], O_WRONLY);
    ck_assert_int_eq(pwrite(fd, "\xff", 1, 20000), 1);
    close(fd);
    size_t bad_file;
    uint64_t bad_piece;
    struct verify_opts vo = {.threads = 2};
    for (size_t i = 0; i < N; i++)
        p[i].path = paths[i];
    ck_assert_int_eq(verify_files(m, p, &vo, &bad_file, &bad_piece, &err), EBADMSG);
    ck_assert_uint_eq(bad_file, 0);
    ck_assert_uint_eq(bad_piece, 1);
    ck_assert_msg(strstr(err.msg, ": piece 1 of 3 does not match") != NULL, "%s", err.msg);
    metainfo_free(m);
    buf_free(&b);
    for (size_t i = 0; i < N; i++) {
        unlink(paths[i]);
        free(paths[i]);
    }
}
END_TEST

/* A set's options: the recipe's, with the web seed a directory URL (BASE plus the prefix's
 * parent for objects, BASE/ for local files), none without a base. */
START_TEST(test_set_opts)
{
    struct torrent_recipe r = {
        .meta = TORRENT_HYBRID, .webseed_base = "http://h/b/", .comment = "c"};
    struct torrent_opts o;
    char *ws;
    ck_assert_int_eq(torrent_recipe_set_opts(&r, "s1", "rec/s1", 5, &o, &ws), 0);
    ck_assert_uint_eq(o.nwebseeds, 1);
    ck_assert_str_eq(o.webseeds[0], "http://h/b/rec/");
    ck_assert_str_eq(o.comment, "c");
    ck_assert_int_eq(o.creation_date, 5);
    ck_assert_int_eq(o.meta, TORRENT_HYBRID);
    free(ws);
    ck_assert_int_eq(torrent_recipe_set_opts(&r, "s1", "top", 5, &o, &ws), 0);
    ck_assert_str_eq(o.webseeds[0], "http://h/b/");
    free(ws);
    ck_assert_int_eq(torrent_recipe_set_opts(&r, "s1", NULL, 5, &o, &ws), 0);
    char *dir = torrent_webseed_dir("http://h/b/");
    ck_assert_str_eq(o.webseeds[0], dir);
    free(dir);
    free(ws);
    r.webseed_base = NULL;
    ck_assert_int_eq(torrent_recipe_set_opts(&r, "s1", "rec/s1", 5, &o, &ws), 0);
    ck_assert_uint_eq(o.nwebseeds, 0);
    ck_assert_ptr_null(ws);
}
END_TEST

static void count_skip(void *arg, const char *key, const char *why)
{
    (void)key;
    (void)why;
    (*(unsigned *)arg)++;
}

/* store_prefix_scan: the objects below a prefix as parts, by the mount's rules (docs/DESIGN.md
 * §5), opened pinned to the listed version (no HEAD), hashed like local files; a replaced object
 * fails the hash */
START_TEST(test_prefix_scan)
{
    struct store *st = store_mem_new();
    static uint8_t data[70000], other[70000];
    char long_key[300];
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 7 + i / 253);
        other[i] = (uint8_t)~data[i];
    }
    snprintf(long_key, sizeof(long_key), "p/%0256d", 0);
    static const char *const kept[] = {"p/x/1.bin", "p/a/b", "p/zero", "p/.dot"};
    static const char *const skipped[] = {"p/a", "p/e//f", "p/./g", "p/../h"};
    for (size_t i = 0; i < 4; i++) {
        ck_assert_int_eq(store_mem_add(st, "b", kept[i], data, i == 2 ? 0 : 1000 * (i + 1), 5), 0);
        ck_assert_int_eq(store_mem_add(st, "b", skipped[i], data, 10, 5), 0);
    }
    ck_assert_int_eq(store_mem_add(st, "b", long_key, data, 10, 5), 0);
    ck_assert_int_eq(store_mem_add(st, "b", "p/x/", data, 0, 5), 0); /* a directory marker */
    ck_assert_int_eq(store_mem_add(st, "b", "p/big.bin", data, sizeof(data), 9), 0);
    ck_assert_int_eq(store_mem_add(st, "b", "p/sub/no.log", data, 10, 5), 0);
    ck_assert_int_eq(store_mem_add(st, "b", "q/other", data, 10, 5), 0);
    const char *exclude[] = {"sub"};
    struct source_dir d;
    unsigned nskip = 0;
    err_t err = {0};
    ck_assert_msg(
        store_prefix_scan(st, "b", "p/", NULL, 0, exclude, 1, count_skip, &nskip, &d, &err) == 0,
        "%s", err.msg);
    ck_assert_str_eq(d.name, "p");
    ck_assert_str_eq(d.display, "s3://b/p");
    ck_assert_uint_eq(nskip, 5);
    ck_assert_uint_eq(d.n, 5);
    ck_assert_int_eq(d.mtime, 9);
    ck_assert(d.span >= (1u << 20) && d.parallel > 1);
    struct torrent_opts o = {.meta = TORRENT_V1, .piece_length = 16384, .no_date = true};
    ck_assert_int_eq(torrent_files_order(d.parts, d.n, o.meta, false, &err), 0);
    static const char *const order[] = {".dot", "a/b", "big.bin", "x/1.bin", "zero"};
    for (size_t i = 0; i < d.n; i++)
        ck_assert_str_eq(d.parts[i].path, order[i]);
    struct buf b;
    buf_init(&b, 1u << 20);
    ck_assert_msg(torrent_create_files("p", d.parts, d.n, &o, &b, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_HEAD, NULL), 0);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, "zero"), 0);
    /* the object replaced under the reader: the pinned version is gone */
    for (int meta = TORRENT_V1; meta <= TORRENT_V2; meta++) {
        struct store_mem_fault f = {.ops = STORE_OP_READ,
                                    .key = "big.bin",
                                    .times = 1,
                                    .replace = other,
                                    .replace_len = sizeof(other)};
        ck_assert_int_eq(store_mem_fault(st, &f), 0);
        o.meta = (enum torrent_meta)meta;
        b.len = 0;
        ck_assert_int_eq(torrent_create_files("p", d.parts, d.n, &o, &b, NULL, NULL, &err), ESTALE);
        ck_assert_msg(strstr(err.msg, "s3://b/p/big.bin") != NULL, "%s", err.msg);
        ck_assert_int_eq(store_mem_add(st, "b", "p/big.bin", data, sizeof(data), 9), 0);
    }
    buf_free(&b);
    source_dir_free(&d);
    /* a bucket's root is named after the bucket */
    ck_assert_int_eq(store_prefix_scan(st, "b", "", NULL, 0, NULL, 0, NULL, NULL, &d, &err), 0);
    ck_assert_str_eq(d.name, "b");
    ck_assert_str_eq(d.display, "s3://b");
    source_dir_free(&d);
    ck_assert_int_eq(store_prefix_scan(st, "b", "p", NULL, 0, NULL, 0, NULL, NULL, &d, &err),
                     EINVAL);
    source_dir_free(&d);
    store_free(st);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("torrent");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_generated_vectors);
    tcase_add_test(tc, test_libtorrent_zero_files_verify);
    tcase_add_test(tc, test_auto_piece_length);
    tcase_add_test(tc, test_size_precomputed);
    tcase_add_test(tc, test_threads_and_runs_identical);
    tcase_add_test(tc, test_verify_names_first_bad_piece);
    tcase_add_test(tc, test_bad_sources);
    tcase_add_test(tc, test_mapped_file);
    tcase_add_test(tc, test_mapped_file_changes);
    tcase_add_test(tc, test_foreign_sigbus_still_fatal);
    tcase_add_test(tc, test_names_and_webseeds);
    tcase_add_test(tc, test_outer_digest);
    tcase_add_test(tc, test_concat_source);
    tcase_add_test(tc, test_padded_last_piece);
    tcase_add_test(tc, test_fed_fragments_identical);
    tcase_add_test(tc, test_stream_ramp);
    tcase_add_test(tc, test_ramp_process_budget);
    tcase_add_test(tc, test_packed_round_trip);
    tcase_add_test(tc, test_packed_size_overflow);
    tcase_add_test(tc, test_files_order);
    tcase_add_test(tc, test_join_runs);
    tcase_add_test(tc, test_multi_layout);
    tcase_add_test(tc, test_set_opts);
    tcase_add_test(tc, test_prefix_scan);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
