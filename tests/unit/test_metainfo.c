/* test_metainfo.c — loading torrents: libtorrent's valid set with its published info-hashes,
 * its invalid set each rejected with a reason, and magnet links. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/magnet.h"
#include "s3torrent/metainfo.h"
#include "s3torrent/util.h"
#include "testutil.h"

static struct metainfo *load(const char *rel, err_t *err, int *rc)
{
    size_t len;
    uint8_t *raw = tu_read_data(rel, &len);
    struct metainfo *m = NULL;
    *rc = metainfo_parse(raw, len, &m, err);
    free(raw);
    return m;
}

/* Expected hashes from tests/data/torrents/README.md ("-": not that version). */
START_TEST(test_valid_hashes)
{
    static const struct {
        const char *file, *v1, *v2;
    } v[] = {
        {"libtorrent/valid/v2.torrent", "c14199bbec64d0e9e439aa3b6b7639e666b86eca",
         "597b180c1a170a585dfc5e85d834d69013ceda174b8f357d5bb1a0ca509faf0a"},
        {"libtorrent/valid/v2_multipiece_file.torrent", "6c68c1bcc24c65b6fef4724d8234b67e0e9ac6a4",
         "108ac2c3718ce722e6896edc56c4afa98f1d711ecaace7aad74fca418ebd03de"},
        {"libtorrent/valid/v2_only.torrent", "-",
         "95e04d0c4bad94ab206efa884666fd89777dbe4f7bd9945af1829037a85c6192"},
        {"libtorrent/valid/v2_no_piece_layers.torrent", "-",
         "95e04d0c4bad94ab206efa884666fd89777dbe4f7bd9945af1829037a85c6192"},
        {"libtorrent/valid/v2_empty_file.torrent", "fdc8263736f65efc8da8948f2e9f64ad92ad614a",
         "e56591511c519faf6c41547bb6fdb6bfdfe32abdfaabdee90ea595e3719fdc43"},
        {"libtorrent/valid/empty-files-1.torrent", "59ee9eb4b6ab57918cc3837e1b217409f4a10845",
         "ee87fd27c23ad6ef1992b46ebee21b4a164e205c35bba38667ee1f79721a9f21"},
        {"libtorrent/valid/v2_hybrid.torrent", "514c76c1f27ec61ca8b37851bcd1cbf0b26cf120",
         "518fbaf39b37020c896e8768a967da6d76bbd5ef7a02c761021b65a72c6cfa11"},
        {"libtorrent/valid/v2_invalid_filename.torrent", "-",
         "6d4ea61c26943995185aa8b2e9d6fc8126afa6dbef1305968e66fa9de32898c9"},
        {"libtorrent/valid/parent_path.torrent", "9e1111f1", "-"},
        {"libtorrent/valid/absolute_filename.torrent", "da9d54da", "-"},
        {"libtorrent/valid/slash_path.torrent", "f520f7af", "-"},
        {"generated/multi.torrent", "88c002a7840e4aa6625d926458791ecca3882ab9",
         "07b42ee32eb74cc7957ebe11b574859d212e5090335b768f3bd8c74f7432f013"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char rel[256], hex[65];
        err_t err = {0};
        int rc;
        snprintf(rel, sizeof(rel), "torrents/%s", v[i].file);
        struct metainfo *m = load(rel, &err, &rc);
        ck_assert_msg(rc == 0, "%s: %s", v[i].file, err.msg);
        ck_assert_int_eq(m->v1, strcmp(v[i].v1, "-") != 0);
        ck_assert_int_eq(m->v2, strcmp(v[i].v2, "-") != 0);
        if (m->v1)
            ck_assert_msg(strncmp(util_hex(m->ih1, 20, hex), v[i].v1, strlen(v[i].v1)) == 0,
                          "%s: v1 %s", v[i].file, hex);
        if (m->v2)
            ck_assert_msg(strcmp(util_hex(m->ih2, 32, hex), v[i].v2) == 0, "%s: v2 %s", v[i].file,
                          hex);
        metainfo_free(m);
    }
}
END_TEST

START_TEST(test_multi_file_layout)
{
    err_t err = {0};
    int rc;
    struct metainfo *m = load("torrents/generated/multi.torrent", &err, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert(m->multi);
    ck_assert_str_eq(m->name, "dir");
    ck_assert_uint_eq(m->nfiles, 3);
    ck_assert_str_eq(m->files[0].path, "x.txt");
    ck_assert_uint_eq(m->files[1].length, 70000);
    ck_assert(!m->files[2].has_root);
    char hex[65];
    ck_assert_str_eq(util_hex(m->files[0].root, 32, hex),
                     "69dbee893909fa17d1be397e0c07691336fe42049c29d403467d3d4a1fc3b5a1");
    metainfo_free(m);
}
END_TEST

/* libtorrent's invalid set: each is rejected, with a reason close to libtorrent's error. */
START_TEST(test_invalid_rejected)
{
    static const struct {
        const char *file, *reason;
    } v[] = {
        {"v2_unordered_files.torrent", "unsorted dictionary key"},
        {"v2_overlong_integer.torrent", "leading zero"},
        {"v2_deep_recursion.torrent", "nesting deeper than 100"},
        {"v2_zero_root.torrent", "all-zero pieces root"},
        {"v2_zero_root_small.torrent", "all-zero pieces root"},
        {"v2_piece_size.torrent", "piece length"},
        {"v2_no_power2_piece.torrent", "not a power of two"},
        {"v2_invalid_pad_file.torrent", "pad file"},
        {"v2_large_file.torrent", "too large"},
        {"v2_invalid_piece_layer.torrent", "piece layer is not a string"},
        {"v2_non_multiple_piece_layer.torrent", "not a multiple of 32"},
        {"v2_mismatching_metadata.torrent", "v1 and v2 parts describe different files"},
        {"v2_empty_filename.torrent", ""},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char rel[256];
        err_t err = {0};
        int rc;
        snprintf(rel, sizeof(rel), "torrents/libtorrent/invalid/%s", v[i].file);
        struct metainfo *m = load(rel, &err, &rc);
        ck_assert_msg(rc != 0, "%s was accepted", v[i].file);
        ck_assert_ptr_null(m);
        ck_assert_msg(err.msg[0] && strstr(err.msg, v[i].reason), "%s: '%s'", v[i].file, err.msg);
        ck_assert_ptr_null(strchr(err.msg, '\n'));
    }
}
END_TEST

START_TEST(test_hostile_inputs)
{
    static const char *const bad[] = {
        "le",
        "d4:infoi1ee",
        "d4:infod4:name1:a12:piece lengthi16384e6:lengthi5e6:pieces19:xxxxxxxxxxxxxxxxxxxee",
        "d4:infod4:name1:a12:piece lengthi0e6:lengthi5e6:pieces20:xxxxxxxxxxxxxxxxxxxxee",
        "d4:infod4:name0:12:piece lengthi16384e6:lengthi5e6:pieces20:xxxxxxxxxxxxxxxxxxxxee",
        "d4:infod6:lengthi-5e4:name1:a12:piece lengthi16384e6:pieces20:xxxxxxxxxxxxxxxxxxxxee",
        "d4:infod5:filesle4:name1:a12:piece lengthi16384e6:pieces0:ee",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct metainfo *m;
        err_t err = {0};
        ck_assert_msg(metainfo_parse((const uint8_t *)bad[i], strlen(bad[i]), &m, &err) != 0,
                      "accepted: %s", bad[i]);
        ck_assert_msg(err.msg[0] != '\0', "no reason for %s", bad[i]);
    }
}
END_TEST

START_TEST(test_magnet)
{
    const char *t = "d8:announce13:udp://t:1/a b13:announce-listll13:udp://t:1/a bel8:http://uee"
                    "4:infod6:lengthi5e4:name5:a b&c12:piece lengthi16384e6:pieces20:"
                    "xxxxxxxxxxxxxxxxxxxxe8:url-list9:http://w/e";
    struct metainfo *m;
    err_t err = {0};
    ck_assert_msg(metainfo_parse((const uint8_t *)t, strlen(t), &m, &err) == 0, "%s", err.msg);
    char *u = magnet_from_metainfo(m), hex[41];
    char want[512];
    snprintf(want, sizeof(want),
             "magnet:?xt=urn:btih:%s&dn=a%%20b%%26c&tr=udp%%3A%%2F%%2Ft%%3A1%%2Fa%%20b"
             "&tr=http%%3A%%2F%%2Fu&ws=http%%3A%%2F%%2Fw%%2F",
             util_hex(m->ih1, 20, hex));
    ck_assert_str_eq(u, want);
    ck_assert_uint_eq(m->tiers[1], 1);
    free(u);
    metainfo_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metainfo");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_valid_hashes);
    tcase_add_test(tc, test_multi_file_layout);
    tcase_add_test(tc, test_invalid_rejected);
    tcase_add_test(tc, test_hostile_inputs);
    tcase_add_test(tc, test_magnet);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
