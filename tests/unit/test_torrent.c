/* test_torrent.c — the torrent contract: published vectors reproduced byte for byte, exact size
 * known before hashing, determinism across runs and thread counts, verification, the outer
 * digest. */
#include <check.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s3torrent/metainfo.h"
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
    tcase_add_test(tc, test_names_and_webseeds);
    tcase_add_test(tc, test_outer_digest);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
