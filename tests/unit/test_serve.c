/* test_serve.c — the rules of `s3torrent serve` without its server (docs/DESIGN.md §14): request
 * targets to routes (serve/route.c) and validators and Range to a status and bytes
 * (serve/cond.c), and which objects a feed shows, in which order and text (serve/feed.c). The
 * expected answers are RFC 9110's, read off the RFC, not off the code. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cond.h"
#include "feed.h"
#include "route.h"
#include "testutil.h"

static const struct route_scope scopes[] = {
    {"media", ""},
    {"rec", "public/"},
};
#define NSCOPES (sizeof(scopes) / sizeof(scopes[0]))

START_TEST(test_routes)
{
    static const struct {
        const char *method, *target;
        enum route_kind kind;
        const char *bucket, *key, *etag; /* for the object and torrent routes */
        unsigned status;                 /* for ROUTE_ERROR */
    } cases[] = {
        {"GET", "/media/a.bin", ROUTE_OBJECT, "media", "a.bin", "", 0},
        {"HEAD", "/media/a.bin", ROUTE_OBJECT, "media", "a.bin", "", 0},
        {"GET", "/media/dir/sub/a.bin", ROUTE_OBJECT, "media", "dir/sub/a.bin", "", 0},
        {"GET", "/media/a%20b%2Bc+d.bin", ROUTE_OBJECT, "media", "a b+c+d.bin", "", 0},
        {"GET", "/media/%C3%BC.bin", ROUTE_OBJECT, "media", "\xc3\xbc.bin", "", 0},
        {"GET", "/media/a.bin?torrent", ROUTE_TORRENT, "media", "a.bin", "", 0},
        {"GET", "/media/a.bin?torrent=", ROUTE_TORRENT, "media", "a.bin", "", 0},
        {"GET", "/media/a.bin.torrent", ROUTE_TORRENT, "media", "a.bin", "", 0},
        /* an object whose own name ends in .torrent, asked for with ?torrent */
        {"GET", "/media/x.torrent?torrent", ROUTE_TORRENT, "media", "x.torrent", "", 0},
        /* a name that is only ".torrent" after "." or "..": no torrent of "." or ".." is
         * named (found by the fuzz target), so the object of that name is */
        {"GET", "/media/..torrent", ROUTE_OBJECT, "media", "..torrent", "", 0},
        {"GET", "/media/dir/...torrent", ROUTE_OBJECT, "media", "dir/...torrent", "", 0},
        {"GET", "/media/dir/.torrent", ROUTE_OBJECT, "media", "dir/.torrent", "", 0},
        {"GET", "/media/.x.torrent", ROUTE_TORRENT, "media", ".x", "", 0},
        {"GET", "/~e/0123abcd-2/media/a.bin", ROUTE_OBJECT, "media", "a.bin", "0123abcd-2", 0},
        {"GET", "/~v/3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY+MT=/media/a.bin", ROUTE_OBJECT, "media",
         "a.bin", "", 0},
        {"GET", "/~v/v1_2-3/media/a.bin?torrent", ROUTE_TORRENT, "media", "a.bin", "", 0},
        {"GET", "/~v/a%2Fb/media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~v/a\"b/media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~v//media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~v/0123456789012345678901234567890123456789012345678901234567890123/media/a",
         ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~v/v1/media/?rss", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/rec/public/t.mkv", ROUTE_OBJECT, "rec", "public/t.mkv", "", 0},
        {"OPTIONS", "/media/a.bin", ROUTE_PREFLIGHT, "media", "a.bin", "", 0},
        {"GET", "/metrics", ROUTE_METRICS, "", "", "", 0},
        /* feeds: of a prefix ending in '/', or of the bucket, inside what is served */
        {"GET", "/media/?rss", ROUTE_RSS, "media", "", "", 0},
        {"GET", "/media?rss", ROUTE_RSS, "media", "", "", 0},
        {"GET", "/media/dir/sub/?rss", ROUTE_RSS, "media", "dir/sub/", "", 0},
        {"GET", "/media/a%20b/?manifest", ROUTE_MANIFEST, "media", "a b/", "", 0},
        {"GET", "/media/?manifest=", ROUTE_MANIFEST, "media", "", "", 0},
        {"GET", "/rec/public/?rss", ROUTE_RSS, "rec", "public/", "", 0},
        {"GET", "/rec/public/2026/?rss", ROUTE_RSS, "rec", "public/2026/", "", 0},
        {"GET", "/rec/?rss", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"GET", "/rec/private/?rss", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"GET", "/media/dir?rss", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"GET", "/media/a.bin?rss&torrent", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/?rss=1", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~e/abc/media/?rss", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"HEAD", "/media/?rss", ROUTE_ERROR, NULL, NULL, NULL, 405},
        {"GET", "/media/../?rss", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media//?rss", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/other/?rss", ROUTE_ERROR, NULL, NULL, NULL, 404},
        /* a bucket named "metrics" is not shadowed: /metrics alone is the counters */
        {"GET", "/metrics/x", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"POST", "/media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 405},
        {"PUT", "/media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 405},
        {"DELETE", "/media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 405},
        {"GET", "media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "*", ROUTE_ERROR, NULL, NULL, NULL, 400},
        /* the absolute form, which a server must accept (RFC 9112 §3.2.2): its path routes */
        {"GET", "http://host:80/media/a.bin", ROUTE_OBJECT, "media", "a.bin", "", 0},
        {"GET", "HTTPS://host/media/a.bin?torrent", ROUTE_TORRENT, "media", "a.bin", "", 0},
        {"GET", "http://host/other/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"GET", "http://host/media/../other/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "http://host", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "http:///media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "ftp://host/media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"GET", "/media", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"GET", "/media/", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"GET", "/media/dir/", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"GET", "/other/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"GET", "/rec/private/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"GET", "/rec/public", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"GET", "/media//a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/./a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/../media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/%2E%2E/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/a%2Fb", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/a%2fb", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/a%00b", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/a%0Ab", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/a%7Fb", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/a%zzb", ROUTE_ERROR, NULL, NULL, NULL, 400},
        /* S3 keys are UTF-8: a byte sequence that is not names no object */
        {"GET", "/media/a%FFb", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/\xff\xfe.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/%C3", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/%ED%A0%80.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/%C0%AF.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/%FFmedia/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/a%4", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/a.bin#frag", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/a.bin?acl", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/a.bin?torrent&versionId=1", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~e/abc\"def/media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~e/%22abc%22/media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~e//media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~e/abc", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"GET", "/~e/abc/other/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 404},
        /* a prefix's torrent, and the web seed of its files pinned to a Last-Modified */
        {"GET", "/media/dir/sub/?torrent", ROUTE_PREFIX_TORRENT, "media", "dir/sub/", "", 0},
        {"HEAD", "/media/a%20b/?torrent=", ROUTE_PREFIX_TORRENT, "media", "a b/", "", 0},
        {"GET", "/rec/public/take/?torrent", ROUTE_PREFIX_TORRENT, "rec", "public/take/", "", 0},
        {"GET", "/rec/public/?torrent", ROUTE_PREFIX_TORRENT, "rec", "public/", "", 0},
        {"OPTIONS", "/media/dir/?torrent", ROUTE_PREFLIGHT, "media", "dir/", "", 0},
        {"GET", "/media/?torrent", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"GET", "/rec/?torrent", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"GET", "/rec/private/?torrent", ROUTE_ERROR, NULL, NULL, NULL, 404},
        {"GET", "/media/dir//?torrent", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/media/../?torrent", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~e/abc/media/dir/?torrent", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~m/1700000000/media/dir/?torrent", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~m/1700000000/media/dir/a.bin", ROUTE_OBJECT, "media", "dir/a.bin", "", 0},
        {"HEAD", "/~m/0/rec/public/a.bin", ROUTE_OBJECT, "rec", "public/a.bin", "", 0},
        {"GET", "/~m/1700000000/media/?rss", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~m/01/media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~m/-1/media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~m/1e9/media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~m/1234567890123/media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~m//media/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 400},
        {"GET", "/~m/17/other/a.bin", ROUTE_ERROR, NULL, NULL, NULL, 404},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct route r;
        enum route_kind k = route_parse(scopes, NSCOPES, cases[i].method, cases[i].target, &r);
        ck_assert_msg(k == cases[i].kind && r.kind == k, "%s %s: kind %d", cases[i].method,
                      cases[i].target, (int)k);
        if (k != ROUTE_ERROR)
            ck_assert(r.head == (strcmp(cases[i].method, "HEAD") == 0));
        if (k == ROUTE_ERROR) {
            ck_assert_msg(r.status == cases[i].status, "%s %s: status %u (%s)", cases[i].method,
                          cases[i].target, r.status, r.text);
            ck_assert(r.text[0] != '\0' && strchr(r.text, '\n') == NULL);
        } else if (k != ROUTE_METRICS) {
            ck_assert_str_eq(r.bucket, cases[i].bucket);
            ck_assert_str_eq(r.key, cases[i].key);
            ck_assert_str_eq(r.etag, cases[i].etag);
            ck_assert(r.newest == (strncmp(cases[i].target, "/~m/", 4) == 0
                                       ? strtoll(cases[i].target + 4, NULL, 10)
                                       : -1));
        }
    }
}
END_TEST

START_TEST(test_route_limits)
{
    struct route r;
    /* a version pin keeps the id as sent, decoded */
    ck_assert_int_eq(route_parse(scopes, NSCOPES, "GET", "/~v/a.b_c-d%2Be%3D/media/x.bin", &r),
                     ROUTE_OBJECT);
    ck_assert_str_eq(r.version, "a.b_c-d+e=");
    ck_assert_str_eq(r.etag, "");
    char target[ROUTE_TARGET_MAX + 64];
    /* a key of exactly 1024 bytes is served; 1025 is refused with 414 */
    strcpy(target, "/media/");
    memset(target + 7, 'k', ROUTE_KEY_MAX);
    target[7 + ROUTE_KEY_MAX] = '\0';
    ck_assert_int_eq(route_parse(scopes, NSCOPES, "GET", target, &r), ROUTE_OBJECT);
    ck_assert_uint_eq(strlen(r.key), ROUTE_KEY_MAX);
    strcpy(target, "/media/a/");
    memset(target + 9, 'k', ROUTE_KEY_MAX - 1);
    target[9 + ROUTE_KEY_MAX - 1] = '\0';
    ck_assert_int_eq(route_parse(scopes, NSCOPES, "GET", target, &r), ROUTE_ERROR);
    ck_assert_uint_eq(r.status, 414);
    /* a target past 8 KiB */
    target[0] = '/';
    memset(target + 1, 'a', ROUTE_TARGET_MAX + 10);
    target[ROUTE_TARGET_MAX + 11] = '\0';
    ck_assert_int_eq(route_parse(scopes, NSCOPES, "GET", target, &r), ROUTE_ERROR);
    ck_assert_uint_eq(r.status, 414);
    /* many segments, each legal: still a key of at most 1024 bytes */
    strcpy(target, "/media");
    for (int i = 0; i < 600; i++)
        strcat(target, "/a");
    ck_assert_int_eq(route_parse(scopes, NSCOPES, "GET", target, &r), ROUTE_ERROR);
    ck_assert_uint_eq(r.status, 414);
}
END_TEST

/* An object of 1000 bytes, ETag "abc", last modified at Sun, 06 Nov 1994 08:49:37 GMT. */
static const struct cond_object obj = {"abc", 1000, 784111777};
#define LM     "Sun, 06 Nov 1994 08:49:37 GMT"
#define BEFORE "Sun, 06 Nov 1994 08:49:36 GMT"
#define AFTER  "Sun, 06 Nov 1994 08:49:38 GMT"

START_TEST(test_conditionals)
{
    static const struct {
        struct cond_request rq;
        unsigned status;
        uint64_t first, len;
    } cases[] = {
        {{.head = false}, 200, 0, 1000},
        /* If-Match: strong comparison only (RFC 9110 §13.1.1) */
        {{.if_match = "\"abc\""}, 200, 0, 1000},
        {{.if_match = "\"x\", \"abc\""}, 200, 0, 1000},
        {{.if_match = "*"}, 200, 0, 1000},
        {{.if_match = "W/\"abc\""}, 412, 0, 0},
        {{.if_match = "\"abd\""}, 412, 0, 0},
        {{.if_match = "abc"}, 412, 0, 0},
        /* If-Unmodified-Since, ignored when If-Match is there or the date is bad */
        {{.if_unmodified_since = BEFORE}, 412, 0, 0},
        {{.if_unmodified_since = LM}, 200, 0, 1000},
        {{.if_unmodified_since = "yesterday"}, 200, 0, 1000},
        {{.if_match = "\"abc\"", .if_unmodified_since = BEFORE}, 200, 0, 1000},
        /* If-None-Match: weak comparison (§13.1.2) */
        {{.if_none_match = "\"abc\""}, 304, 0, 0},
        {{.if_none_match = "W/\"abc\""}, 304, 0, 0},
        {{.if_none_match = "*"}, 304, 0, 0},
        {{.if_none_match = "\"x\""}, 200, 0, 1000},
        /* If-Modified-Since, ignored when If-None-Match is there */
        {{.if_modified_since = LM}, 304, 0, 0},
        {{.if_modified_since = AFTER}, 304, 0, 0},
        {{.if_modified_since = BEFORE}, 200, 0, 1000},
        {{.if_none_match = "\"x\"", .if_modified_since = LM}, 200, 0, 1000},
        /* 412 wins over 304 */
        {{.if_match = "\"x\"", .if_none_match = "\"abc\""}, 412, 0, 0},
        /* one range (§14.1.2) */
        {{.range = "bytes=0-99"}, 206, 0, 100},
        {{.range = "bytes=990-"}, 206, 990, 10},
        {{.range = "bytes=990-5000"}, 206, 990, 10},
        {{.range = "bytes=-10"}, 206, 990, 10},
        {{.range = "bytes=-5000"}, 206, 0, 1000},
        {{.range = "bytes=999-999"}, 206, 999, 1},
        {{.range = "Bytes = 5-6"}, 206, 5, 2},
        {{.range = "bytes=1000-"}, 416, 0, 0},
        {{.range = "bytes=-0"}, 416, 0, 0},
        /* ignored: several ranges, another unit, bad syntax, a backwards range */
        {{.range = "bytes=0-1,5-6"}, 200, 0, 1000},
        {{.range = "items=0-1"}, 200, 0, 1000},
        {{.range = "bytes=a-b"}, 200, 0, 1000},
        {{.range = "bytes=5-4"}, 200, 0, 1000},
        /* beyond 64 bits: a last-pos is the end, a first-pos past it (RFC 9110 §14.1.2) */
        {{.range = "bytes=0-99999999999999999999"}, 206, 0, 1000},
        {{.range = "bytes=-99999999999999999999"}, 206, 0, 1000},
        {{.range = "bytes=99999999999999999999-"}, 416, 0, 0},
        {{.range = "bytes="}, 200, 0, 1000},
        /* HEAD ignores Range (range handling is defined for GET only) */
        {{.head = true, .range = "bytes=0-9"}, 200, 0, 1000},
        /* If-Range: a strong ETag or exactly the Last-Modified date */
        {{.range = "bytes=0-9", .if_range = "\"abc\""}, 206, 0, 10},
        {{.range = "bytes=0-9", .if_range = "\"old\""}, 200, 0, 1000},
        {{.range = "bytes=0-9", .if_range = "W/\"abc\""}, 200, 0, 1000},
        {{.range = "bytes=0-9", .if_range = LM}, 206, 0, 10},
        {{.range = "bytes=0-9", .if_range = AFTER}, 200, 0, 1000},
        {{.range = "bytes=0-9", .if_range = "garbage"}, 200, 0, 1000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cond_answer a;
        cond_decide(&cases[i].rq, &obj, &a);
        ck_assert_msg(a.status == cases[i].status, "case %zu: status %u", i, a.status);
        if (a.status == 200 || a.status == 206)
            ck_assert_msg(a.first == cases[i].first && a.len == cases[i].len,
                          "case %zu: [%llu, +%llu)", i, (unsigned long long)a.first,
                          (unsigned long long)a.len);
    }
}
END_TEST

START_TEST(test_empty_object)
{
    static const struct cond_object empty = {"e", 0, 0};
    struct cond_answer a;
    struct cond_request rq = {.range = "bytes=0-"};
    cond_decide(&rq, &empty, &a);
    ck_assert_uint_eq(a.status, 416);
    rq.range = "bytes=-1";
    cond_decide(&rq, &empty, &a);
    ck_assert_uint_eq(a.status, 416);
    rq.range = NULL;
    cond_decide(&rq, &empty, &a);
    ck_assert_uint_eq(a.status, 200);
    ck_assert_uint_eq(a.len, 0);
}
END_TEST

START_TEST(test_feed_shows)
{
    static const struct {
        const char *key;
        uint64_t size;
        bool shown;
    } cases[] = {
        {"a.bin", 1, true},
        {"dir/take one \xc3\xa9 & <x>.wav", 10, true},
        {"a.bin", 0, false},          /* zero bytes: no torrent */
        {"a.bin.torrent", 10, false}, /* a torrent has no torrent */
        {"dir/", 10, false},          /* a trailing '/' names nothing */
        {"a//b", 10, false},          /* the server could not route these */
        {"a/./b", 10, false},
        {"../b", 10, false},
        {"a\x01b", 10, false}, /* a control byte */
        {"a\x7f", 10, false},
        {"a\xc3", 10, false},             /* cut UTF-8 */
        {"a\xc0\xaf", 10, false},         /* overlong */
        {"a\xed\xa0\x80", 10, false},     /* a surrogate */
        {"a\xf4\x90\x80\x80", 10, false}, /* past U+10FFFF */
        {"\xf0\x9f\x8e\xb5.flac", 10, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(feed_shows(cases[i].key, cases[i].size) == cases[i].shown, "case %zu", i);
}
END_TEST

static struct store_object at(int64_t mtime)
{
    struct store_object o = {.size = 100, .mtime = mtime};
    strcpy(o.etag, "0123456789abcdef0123456789abcdef");
    return o;
}

START_TEST(test_feed_newest)
{
    /* 1000 objects, kept: the newest 10, newest first, ties by key */
    struct feed f;
    feed_init(&f, "media", "rec/", 10, true);
    for (int i = 0; i < 1000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "rec/%04d.bin", (i * 7919) % 1000);
        struct store_object o = at(1700000000 + ((i * 7919) % 1000) / 2);
        ck_assert_int_eq(feed_add(&f, key, &o), 0);
    }
    struct store_object z = at(1800000000);
    z.size = 0;
    ck_assert_int_eq(feed_add(&f, "rec/zero.bin", &z), 0);
    feed_done(&f);
    ck_assert_uint_eq(f.n, 10);
    ck_assert(f.truncated);
    ck_assert_uint_eq(f.skipped, 1);
    static const char *const want[] = {
        "rec/0998.bin", "rec/0999.bin", "rec/0996.bin", "rec/0997.bin", "rec/0994.bin",
        "rec/0995.bin", "rec/0992.bin", "rec/0993.bin", "rec/0990.bin", "rec/0991.bin"};
    for (size_t i = 0; i < 10; i++)
        ck_assert_str_eq(f.items[i].key, want[i]);
    feed_free(&f);

    /* the manifest: the first max in key order */
    feed_init(&f, "media", "", 3, false);
    static const char *const keys[] = {"d", "a", "c", "b", "e"};
    for (size_t i = 0; i < 5; i++) {
        struct store_object o = at(1700000000);
        ck_assert_int_eq(feed_add(&f, keys[i], &o), 0);
    }
    feed_done(&f);
    ck_assert_uint_eq(f.n, 3);
    ck_assert(f.truncated);
    ck_assert_str_eq(f.items[0].key, "a");
    ck_assert_str_eq(f.items[1].key, "c");
    ck_assert_str_eq(f.items[2].key, "d");
    feed_free(&f);
}
END_TEST

START_TEST(test_feed_text)
{
    struct feed f;
    struct buf b;
    feed_init(&f, "media", "rec/", 10, true);
    struct store_object o = at(784111777);
    ck_assert_int_eq(feed_add(&f, "rec/a & <b> \"c\" 'd' \xc3\xa9.bin", &o), 0);
    o.mtime++;
    ck_assert_int_eq(feed_add(&f, "rec/pending.bin", &o), 0);
    feed_done(&f);
    /* the older one has its torrent; the newer one is pending and not in the RSS */
    ck_assert_str_eq(f.items[1].key, "rec/a & <b> \"c\" 'd' \xc3\xa9.bin");
    f.items[1].have = f.items[1].v1 = true;
    memset(f.items[1].ih1, 0xab, 20);
    f.items[1].torrent_size = 321;
    buf_init(&b, 1 << 20);
    ck_assert_int_eq(feed_rss(&f, "https://seed.example", 784111777, &b), 0);
    buf_put(&b, "", 1);
    const char *x = (const char *)b.data;
    ck_assert_ptr_nonnull(strstr(x, "<title>rec/a &amp; &lt;b&gt; &quot;c&quot; &apos;d&apos; "
                                    "\xc3\xa9.bin</title>"));
    ck_assert_ptr_nonnull(
        strstr(x, "<enclosure url=\"https://seed.example/media/rec/"
                  "a%20%26%20%3Cb%3E%20%22c%22%20%27d%27%20%C3%A9.bin?torrent\" length=\"321\" "
                  "type=\"application/x-bittorrent\"/>"));
    ck_assert_ptr_nonnull(strstr(x, "<pubDate>Sun, 06 Nov 1994 08:49:37 GMT</pubDate>"));
    ck_assert_ptr_nonnull(strstr(x, "<torrent:infoHash>abababababababababababababababababababab"
                                    "</torrent:infoHash>"));
    ck_assert_ptr_nonnull(
        strstr(x, "magnet:?xt=urn:btih:abababababababababababababababababababab"));
    ck_assert_ptr_null(strstr(x, "pending.bin"));
    buf_free(&b);
    buf_init(&b, 1 << 20);
    ck_assert_int_eq(feed_manifest(&f, "https://seed.example", 784111777, &b), 0);
    buf_put(&b, "", 1);
    x = (const char *)b.data;
    ck_assert_ptr_nonnull(strstr(x, "\"key\":\"rec/pending.bin\""));
    ck_assert_ptr_nonnull(strstr(x, "\"info_hash_v1\":null"));
    ck_assert_ptr_nonnull(
        strstr(x, "\"info_hash_v1\":\"abababababababababababababababababababab\""));
    ck_assert_ptr_nonnull(strstr(x, "\"pending\":1"));
    ck_assert_ptr_nonnull(strstr(x, "\"generated\":\"1994-11-06T08:49:37Z\""));
    buf_free(&b);
    feed_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("serve");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_routes);
    tcase_add_test(tc, test_route_limits);
    tcase_add_test(tc, test_conditionals);
    tcase_add_test(tc, test_empty_object);
    tcase_add_test(tc, test_feed_shows);
    tcase_add_test(tc, test_feed_newest);
    tcase_add_test(tc, test_feed_text);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
