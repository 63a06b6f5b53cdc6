/* test_util.c — the shared utility tier: hex, ISO 8601 and HTTP dates (read and written), and the
 * control-byte rule, table-driven; the Prometheus text format; the intrusive LRU list (touch,
 * remove, pop, walking oldest first). */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "s3torrent/lru.h"
#include "s3torrent/prom.h"
#include "s3torrent/util.h"
#include "testutil.h"

/* The Prometheus text format (version 0.0.4): HELP and TYPE lines, labels, and real values as
 * Prometheus spells NaN and the infinities. */
START_TEST(test_prom)
{
    struct buf b;
    buf_init(&b, 4096);
    prom_counter(&b, "x_total", "Things.", 18446744073709551615ull);
    prom_family(&b, "y", "gauge", "A ratio.");
    prom_sample(&b, "y", "k=\"v\"", 0);
    prom_sample_real(&b, "y", NULL, 0.5);
    prom_sample_real(&b, "y", "k=\"n\"", (double)NAN);
    prom_sample_real(&b, "y", "", (double)INFINITY);
    prom_sample_real(&b, "y", NULL, -(double)INFINITY);
    ck_assert_int_eq(buf_put(&b, "", 1), 0);
    ck_assert_str_eq((const char *)b.data, "# HELP x_total Things.\n# TYPE x_total counter\n"
                                           "x_total 18446744073709551615\n"
                                           "# HELP y A ratio.\n# TYPE y gauge\n"
                                           "y{k=\"v\"} 0\ny 0.5\ny{k=\"n\"} NaN\ny +Inf\ny -Inf\n");
    buf_free(&b);
}
END_TEST

START_TEST(test_hex)
{
    static const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char out[2 * sizeof(in) + 1];
    memset(out, 'x', sizeof(out));
    ck_assert_ptr_eq(util_hex(in, sizeof(in), out), out);
    ck_assert_str_eq(out, "00017f80abff");
    ck_assert_str_eq(util_hex(in, 0, out), "");
}
END_TEST

START_TEST(test_iso8601)
{
    static const struct {
        const char *s;
        long long want; /* -1: refused */
    } cases[] = {
        {"2026-11-23T22:00:00Z", 1795471200},
        {"2026-11-23T22:00:00.123Z", 1795471200},
        {"2026-11-23t22:00:00z", 1795471200},
        {"2026-11-23 22:00:00Z", 1795471200},
        {"2026-11-23T23:30:00+01:30", 1795471200},
        {"2026-11-23T20:00:00-0200", 1795471200},
        {"2013-05-24T00:20:00+00:00", 1369354800},
        {"20130524T000000Z", 1369353600},
        {"2024-02-29T12:30:00Z", 1709209800},
        {"1970-01-01T00:00:00Z", 0},
        {"2023-02-29T12:30:00Z", -1},
        {"2019-02-29T00:00:00Z", -1},
        {"2026-11-23 22:00:00", -1},
        {"2026-11-23T22:00:00", -1},
        {"2026-13-01T00:00:00Z", -1},
        {"2026-11-23T24:00:00Z", -1},
        {"2026-11-23T22:00:00.Z", -1},
        {"2026-11-23T22:00:00+24:00", -1},
        {"2026-11-23T22:00:00Zjunk", -1},
        {"2026-1123T220000Z", -1},
        {"20130524 000000Z", -1},
        {"1795471200", -1},
        {"", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t t = -7;
        int rc = util_iso8601(cases[i].s, &t);
        if (cases[i].want < 0)
            ck_assert_msg(rc == EINVAL, "%s: accepted as %lld", cases[i].s, (long long)t);
        else
            ck_assert_msg(rc == 0 && t == cases[i].want, "%s: rc %d, %lld", cases[i].s, rc,
                          (long long)t);
    }
}
END_TEST

START_TEST(test_http_date)
{
    static const struct {
        const char *s;
        long long want; /* -1: refused */
    } cases[] = {
        {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},
        {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777},
        {"Sun Nov  6 08:49:37 1994", 784111777},
        {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
        {"Wed, 21 Oct 2015 07:28:00 GMT", 1445412480},
        {"wed, 21 oct 2015 07:28:00 GMT", 1445412480},
        {"Thursday, 01-Jan-15 00:00:00 GMT", 1420070400},
        {"Wed, 21 Oct 2015 07:28:00", -1},
        {"Wed, 21 Oct 2015 07:28:00 UTC", -1},
        {"Wed, 31 Feb 2015 07:28:00 GMT", -1},
        {"Wed, 21 Okt 2015 07:28:00 GMT", -1},
        {"Wed, 21 Oct 2015 7:28:00 GMT", -1},
        {"2015-10-21T07:28:00Z", -1},
        {"Sun Nov 6 08:49:37 1994", -1},
        {"", -1},
        {NULL, -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t t = -7;
        int rc = util_http_date(cases[i].s, &t);
        const char *s = cases[i].s ? cases[i].s : "(null)";
        if (cases[i].want < 0)
            ck_assert_msg(rc == EINVAL, "%s: accepted as %lld", s, (long long)t);
        else
            ck_assert_msg(rc == 0 && t == cases[i].want, "%s: rc %d, %lld", s, rc, (long long)t);
    }
    /* the IMF-fixdate we write, read back; RFC 9110's own example first */
    static const struct {
        long long t;
        const char *want;
    } out[] = {
        {784111777, "Sun, 06 Nov 1994 08:49:37 GMT"},
        {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
        {1709209800, "Thu, 29 Feb 2024 12:30:00 GMT"},
        {1795471200, "Mon, 23 Nov 2026 22:00:00 GMT"},
    };
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
        char buf[32];
        int64_t back = -1;
        ck_assert_str_eq(util_http_date_format(out[i].t, buf, sizeof(buf)), out[i].want);
        ck_assert_int_eq(util_http_date(buf, &back), 0);
        ck_assert_int_eq(back, out[i].t);
    }
}
END_TEST

START_TEST(test_control_bytes)
{
    ck_assert(util_is_ctl(0x00));
    ck_assert(util_is_ctl('\n'));
    ck_assert(util_is_ctl(0x1f));
    ck_assert(util_is_ctl(0x7f));
    ck_assert(!util_is_ctl(' '));
    ck_assert(!util_is_ctl('~'));
    ck_assert(!util_is_ctl(0x80)); /* UTF-8 bytes stay */
    ck_assert(!util_is_ctl(0xc3));
    ck_assert(util_has_ctl("a\tb"));
    ck_assert(util_has_ctl("\x7f"));
    ck_assert(!util_has_ctl("caf\xc3\xa9 x"));
    ck_assert(!util_has_ctl(""));

    char s[] = "a\nb\rc\x7f\xc3\xa9";
    ck_assert_str_eq(util_scrub(s), "a?b?c?\xc3\xa9");

    char d[8];
    ck_assert_str_eq(util_scrub_copy(d, sizeof(d), "x\ty", 3), "x?y");
    ck_assert_str_eq(util_scrub_copy(d, sizeof(d), "0123456789", 10), "0123456");
    ck_assert_str_eq(util_scrub_copy(d, sizeof(d), "ab\0cd", 5), "ab?cd"); /* NUL too */
    ck_assert_str_eq(util_scrub_copy(d, 1, "abc", 3), "");
}
END_TEST

START_TEST(test_escape)
{
    static const struct {
        const char *s;
        size_t max, outsz;
        const char *want;
    } cases[] = {
        {"plain", 100, 64, "plain"},
        {"a\nb\x7f", 100, 64, "a\\x0ab\\x7f"},
        {"abcdefgh", 4, 64, "abcd..."},
        {"abcdefgh", 100, 8, "abcd..."},
        {"\x01\x02\x03", 100, 12, "\\x01\\x02..."},
        {"", 100, 8, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        util_escape(out, cases[i].outsz, cases[i].s, cases[i].max);
        ck_assert_msg(strcmp(out, cases[i].want) == 0, "case %zu: '%s'", i, out);
        ck_assert(strlen(out) < cases[i].outsz);
    }
}
END_TEST

struct item {
    char name;
    struct lru_node node;
};

/* The names of l's items, oldest first, checked against the newest-first walk and the count. */
static const char *order(const struct lru *l)
{
    static char out[32];
    size_t n = 0;
    for (struct lru_node *p = lru_oldest(l); p && n + 1 < sizeof(out); p = p->newer)
        out[n++] = LRU_ENTRY(p, struct item, node)->name;
    out[n] = '\0';
    ck_assert_uint_eq(n, l->n);
    for (struct lru_node *p = l->newest; p; p = p->older)
        ck_assert_int_eq(LRU_ENTRY(p, struct item, node)->name, out[--n]);
    ck_assert_uint_eq(n, 0);
    return out;
}

START_TEST(test_lru)
{
    struct item it[5] = {{'a', {0}}, {'b', {0}}, {'c', {0}}, {'d', {0}}, {'e', {0}}};
    struct lru l;
    lru_init(&l);
    ck_assert_ptr_null(lru_oldest(&l));
    ck_assert_ptr_null(lru_pop(&l));
    for (int i = 0; i < 4; i++)
        lru_touch(&l, &it[i].node);
    ck_assert_str_eq(order(&l), "abcd");
    lru_touch(&l, &it[1].node); /* the middle: to the newest end */
    ck_assert_str_eq(order(&l), "acdb");
    lru_touch(&l, &it[0].node); /* the oldest */
    ck_assert_str_eq(order(&l), "cdba");
    lru_touch(&l, &it[0].node); /* already the newest */
    ck_assert_str_eq(order(&l), "cdba");
    lru_remove(&l, &it[3].node); /* the middle */
    ck_assert_str_eq(order(&l), "cba");
    lru_remove(&l, &it[3].node); /* on no list: nothing */
    lru_remove(&l, &it[4].node);
    ck_assert_str_eq(order(&l), "cba");
    lru_remove(&l, &it[0].node); /* the newest */
    ck_assert_str_eq(order(&l), "cb");
    ck_assert_ptr_eq(lru_oldest(&l), &it[2].node);
    ck_assert_ptr_eq(lru_pop(&l), &it[2].node);
    ck_assert_ptr_null(it[2].node.newer);
    ck_assert_ptr_null(it[2].node.older);
    ck_assert_str_eq(order(&l), "b");
    ck_assert_ptr_eq(lru_pop(&l), &it[1].node); /* the only one */
    ck_assert_str_eq(order(&l), "");
    ck_assert_ptr_null(l.newest);
    ck_assert_ptr_null(l.oldest);
    lru_touch(&l, &it[4].node); /* reused after pop */
    lru_touch(&l, &it[2].node);
    ck_assert_str_eq(order(&l), "ec");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_hex);
    tcase_add_test(tc, test_prom);
    tcase_add_test(tc, test_iso8601);
    tcase_add_test(tc, test_http_date);
    tcase_add_test(tc, test_control_bytes);
    tcase_add_test(tc, test_escape);
    suite_add_tcase(s, tc);
    TCase *lru = tcase_create("lru");
    tcase_add_test(lru, test_lru);
    suite_add_tcase(s, lru);
    return tu_run(s);
}
