/* test_recipe.c — the one size grammar, the one switch grammar and the one recipe builder every
 * front end goes through (docs/DESIGN.md §7): tables of inputs, what is accepted, what it means,
 * and the exact message of each refusal. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/config.h"
#include "s3torrent/recipe.h"
#include "s3torrent/s3.h"
#include "testutil.h"

#define NOT_A_SIZE "is not a size (digits with an optional K, M, G or T suffix, e.g. 256K or 4MiB)"

/* The size table: the strings tests/integration/test_recipe.py gives every front end. */
static const struct {
    const char *s;
    int ok;
    uint64_t v;
} sizes[] = {
    {"0", 1, 0},
    {"16384", 1, 16384},
    {"256B", 1, 256},
    {"256b", 1, 256},
    {"16K", 1, 16384},
    {"16k", 1, 16384},
    {"16KB", 1, 16384},
    {"16kb", 1, 16384},
    {"16Ki", 1, 16384},
    {"16KiB", 1, 16384},
    {"16KIB", 1, 16384},
    {"16kib", 1, 16384},
    {"4M", 1, 4u << 20},
    {"4MiB", 1, 4u << 20},
    {"4Mi", 1, 4u << 20},
    {"4MB", 1, 4u << 20},
    {"1G", 1, 1ull << 30},
    {"1GiB", 1, 1ull << 30},
    {"2T", 1, 2ull << 40},
    {"2TiB", 1, 2ull << 40},
    {"16777215T", 1, 16777215ull << 40},
    {"18446744073709551615", 1, UINT64_MAX},
    {"18446744073709551616", 0, 0},
    {"16777216T", 0, 0},
    {"", 0, 0},
    {"K", 0, 0},
    {"B", 0, 0},
    {" 256K", 0, 0},
    {"256K ", 0, 0},
    {"+256K", 0, 0},
    {"-1", 0, 0},
    {"1x", 0, 0},
    {"1P", 0, 0},
    {"1KK", 0, 0},
    {"1iB", 0, 0},
    {"1Bi", 0, 0},
    {"1KBi", 0, 0},
    {"1.5M", 0, 0},
    {"0x10", 0, 0},
    {"1_000", 0, 0},
};

START_TEST(test_sizes)
{
    uint64_t v = 42;
    err_t err = {0};
    int rc = config_parse_size("piece_length", sizes[_i].s, &v, &err);
    if (sizes[_i].ok) {
        ck_assert_msg(rc == 0, "'%s' refused: %s", sizes[_i].s, err.msg);
        ck_assert_uint_eq(v, sizes[_i].v);
    } else {
        char want[256];
        snprintf(want, sizeof(want), "piece_length: \"%s\" " NOT_A_SIZE, sizes[_i].s);
        ck_assert_msg(rc == EINVAL, "'%s' accepted", sizes[_i].s);
        ck_assert_str_eq(err.msg, want);
        ck_assert_uint_eq(v, 42);
    }
}
END_TEST

START_TEST(test_switches)
{
    static const struct {
        const char *s;
        int rc, on;
    } v[] = {
        {NULL, 0, 1},    {"true", 0, 1},   {"yes", 0, 1},        {"on", 0, 1}, {"1", 0, 1},
        {"false", 0, 0}, {"no", 0, 0},     {"off", 0, 0},        {"0", 0, 0},  {"TRUE", EINVAL, 0},
        {"", EINVAL, 0}, {"2", EINVAL, 0}, {"maybe", EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        bool on = false;
        err_t err = {0};
        ck_assert_int_eq(config_parse_switch("PRIVATE", v[i].s, &on, &err), v[i].rc);
        if (v[i].rc == 0)
            ck_assert_int_eq(on, v[i].on);
        else
            ck_assert_msg(strstr(err.msg, "is not a switch (true or false)") != NULL, "%s",
                          err.msg);
    }
}
END_TEST

/* One field at a time: what the builder keeps, or the whole message it refuses with. */
static const struct {
    enum recipe_field f;
    const char *value, *msg; /* msg NULL: accepted */
} fields[] = {
    {RECIPE_META, "v1", NULL},
    {RECIPE_META, "v2", NULL},
    {RECIPE_META, "hybrid", NULL},
    {RECIPE_META, "v3", "OPT: \"v3\" is not a meta version (v1, v2 or hybrid)"},
    {RECIPE_META, "V1", "OPT: \"V1\" is not a meta version (v1, v2 or hybrid)"},
    {RECIPE_META, "", "OPT: no value"},
    {RECIPE_PIECE_LENGTH, "16K", NULL},
    {RECIPE_PIECE_LENGTH, "16KiB", NULL},
    {RECIPE_PIECE_LENGTH, "16Ki", NULL},
    {RECIPE_PIECE_LENGTH, "16384", NULL},
    {RECIPE_PIECE_LENGTH, "256M", NULL},
    {RECIPE_PIECE_LENGTH, "256B", "OPT: \"256B\" is not a power of two from 16K to 256M"},
    {RECIPE_PIECE_LENGTH, "0", "OPT: \"0\" is not a power of two from 16K to 256M"},
    {RECIPE_PIECE_LENGTH, "3K", "OPT: \"3K\" is not a power of two from 16K to 256M"},
    {RECIPE_PIECE_LENGTH, "512M", "OPT: \"512M\" is not a power of two from 16K to 256M"},
    {RECIPE_PIECE_LENGTH, "8K", "OPT: \"8K\" is not a power of two from 16K to 256M"},
    {RECIPE_PIECE_LENGTH, " 256K", "OPT: \" 256K\" " NOT_A_SIZE},
    {RECIPE_PIECE_LENGTH, "+256K", "OPT: \"+256K\" " NOT_A_SIZE},
    {RECIPE_PIECE_LENGTH, "1x", "OPT: \"1x\" " NOT_A_SIZE},
    {RECIPE_TRACKER, "udp://t.example:1337/announce", NULL},
    {RECIPE_TRACKER, "http://t.example/announce", NULL},
    {RECIPE_TRACKER, "t.example", "OPT: \"t.example\" is not a URL (scheme://host...)"},
    {RECIPE_TRACKER, "http://", "OPT: \"http://\" is not a URL (scheme://host...)"},
    {RECIPE_TRACKER, "http://a b", "OPT: \"http://a b\" is not a URL (scheme://host...)"},
    {RECIPE_TRACKER, "1http://a", "OPT: \"1http://a\" is not a URL (scheme://host...)"},
    {RECIPE_TRACKERS, "http://a/x, udp://b:1/", NULL},
    {RECIPE_TRACKERS, " , ", "OPT: \" , \" names no URL"},
    {RECIPE_TRACKERS, "http://a/x,nope", "OPT: \"nope\" is not a URL (scheme://host...)"},
    {RECIPE_WEBSEED, "https://b.example/pre/", NULL},
    {RECIPE_WEBSEED, "b.example/pre/", "OPT: \"b.example/pre/\" is not a URL (scheme://host...)"},
    {RECIPE_PRIVATE, NULL, NULL},
    {RECIPE_PRIVATE, "false", NULL},
    {RECIPE_PRIVATE, "maybe", "OPT: \"maybe\" is not a switch (true or false)"},
    {RECIPE_NO_DATE, "yes", NULL},
    {RECIPE_SOURCE, "SRC", NULL},
    {RECIPE_SOURCE, "", "OPT: no value"},
    {RECIPE_COMMENT, "a comment, with commas", NULL},
    {RECIPE_COMMENT, NULL, "OPT: no value"},
};

START_TEST(test_fields)
{
    struct recipe b;
    err_t err = {0};
    recipe_init(&b);
    int rc = recipe_set(&b, fields[_i].f, "OPT", fields[_i].value, &err);
    if (fields[_i].msg == NULL) {
        ck_assert_msg(rc == 0, "%s refused: %s", fields[_i].value, err.msg);
    } else {
        ck_assert_int_eq(rc, EINVAL);
        ck_assert_str_eq(err.msg, fields[_i].msg);
        /* a refused value leaves the recipe as it was */
        recipe_finish(&b);
        ck_assert_int_eq(b.r.meta, TORRENT_V1);
        ck_assert_uint_eq(b.r.piece_length, 0);
        ck_assert_uint_eq(b.r.ntrackers, config_default_ntrackers);
        ck_assert_ptr_null(b.r.webseed_base);
        ck_assert_ptr_null(b.r.source);
        ck_assert_ptr_null(b.r.comment);
        ck_assert(!b.r.private_ && !b.r.no_date);
    }
    recipe_free(&b);
}
END_TEST

START_TEST(test_recipe_built)
{
    struct recipe b;
    err_t err = {0};
    recipe_init(&b);
    ck_assert_int_eq(recipe_set(&b, RECIPE_META, "m", "hybrid", &err), 0);
    ck_assert_int_eq(recipe_set(&b, RECIPE_PIECE_LENGTH, "l", "64KiB", &err), 0);
    ck_assert_int_eq(recipe_set(&b, RECIPE_TRACKERS, "t", "http://old/", &err), 0);
    ck_assert_int_eq(recipe_set(&b, RECIPE_TRACKERS, "t", "http://a/,http://b/", &err), 0);
    ck_assert_int_eq(recipe_set(&b, RECIPE_TRACKER, "t", "udp://c:1/", &err), 0);
    ck_assert_int_eq(recipe_set(&b, RECIPE_TRACKERS, "t", "http://a/,bad", &err), EINVAL);
    ck_assert_int_eq(recipe_set(&b, RECIPE_WEBSEED, "w", "http://w/", &err), 0);
    ck_assert_int_eq(recipe_set(&b, RECIPE_PRIVATE, "p", NULL, &err), 0);
    ck_assert_int_eq(recipe_set(&b, RECIPE_SOURCE, "s", "S", &err), 0);
    ck_assert_int_eq(recipe_set(&b, RECIPE_COMMENT, "c", "C", &err), 0);
    ck_assert_int_eq(recipe_set(&b, RECIPE_NO_DATE, "d", "true", &err), 0);
    recipe_finish(&b);
    ck_assert_int_eq(b.r.meta, TORRENT_HYBRID);
    ck_assert_uint_eq(b.r.piece_length, 65536);
    ck_assert_uint_eq(b.r.ntrackers, 3);
    ck_assert_str_eq(b.r.trackers[0], "http://a/");
    ck_assert_str_eq(b.r.trackers[1], "http://b/");
    ck_assert_str_eq(b.r.trackers[2], "udp://c:1/");
    ck_assert_str_eq(b.r.webseed_base, "http://w/");
    ck_assert_str_eq(b.r.source, "S");
    ck_assert_str_eq(b.r.comment, "C");
    ck_assert(b.r.private_ && b.r.no_date);
    recipe_free(&b);

    /* nothing set: the defaults every front end shares */
    recipe_init(&b);
    recipe_finish(&b);
    ck_assert_int_eq(b.r.meta, TORRENT_V1);
    ck_assert_ptr_eq(b.r.trackers, config_default_trackers);
    recipe_free(&b);
}
END_TEST

START_TEST(test_bucket_rule)
{
    static const struct {
        const char *b;
        int rc;
    } v[] = {
        {"xc", 0},     {"x", 0},          {"my-bucket.example", 0}, {"Legacy_Name", 0},
        {"", EINVAL},  {"a b", EINVAL},   {"a/b", EINVAL},          {"a:b", EINVAL},
        {"é", EINVAL}, {"a\x01", EINVAL},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        err_t err = {0};
        ck_assert_int_eq(s3_check_bucket(v[i].b, strlen(v[i].b), &err), v[i].rc);
    }
    char long_name[257];
    memset(long_name, 'a', sizeof(long_name));
    ck_assert_int_eq(s3_check_bucket(long_name, 255, NULL), 0);
    ck_assert_int_eq(s3_check_bucket(long_name, 256, NULL), EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("recipe");
    TCase *tc = tcase_create("recipe");
    tcase_add_loop_test(tc, test_sizes, 0, (int)(sizeof(sizes) / sizeof(sizes[0])));
    tcase_add_test(tc, test_switches);
    tcase_add_loop_test(tc, test_fields, 0, (int)(sizeof(fields) / sizeof(fields[0])));
    tcase_add_test(tc, test_recipe_built);
    tcase_add_test(tc, test_bucket_rule);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
