/* test_s3xml.c — the S3 XML parsers against tests/data/fixtures (encoded listing, error
 * documents, billion laughs) and generated pages, fed whole and byte by byte; the errno map. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3torrent/aws.h"
#include "s3torrent/buf.h"
#include "s3torrent/s3xml.h"
#include "s3torrent/uri.h"
#include "testutil.h"

/* What a listing delivered, one line per entry, so two parses compare with memcmp. */
struct collect {
    struct buf out;
    size_t objects, prefixes;
    uint32_t last_parts;
    int stop_after; /* > 0: fail the callback at that entry */
};

static int on_object(void *ctx, const struct s3xml_object *o, err_t *err)
{
    struct collect *c = ctx;
    ck_assert_uint_eq(strlen(o->key), o->key_len);
    c->objects++;
    c->last_parts = o->etag_parts;
    if (c->stop_after > 0 && c->objects == (size_t)c->stop_after)
        return err_set(err, ECANCELED, "stopped at %s", o->key);
    buf_printf(&c->out, "O %s|%llu|%s|%u|%lld|%s\n", o->key, (unsigned long long)o->size, o->etag,
               o->etag_parts, (long long)o->last_modified, o->storage_class);
    return 0;
}

static int on_prefix(void *ctx, const char *p, size_t len, err_t *err)
{
    struct collect *c = ctx;
    (void)err;
    ck_assert_uint_eq(strlen(p), len);
    c->prefixes++;
    buf_printf(&c->out, "P %s\n", p);
    return 0;
}

static void collect_init(struct collect *c)
{
    memset(c, 0, sizeof(*c));
    buf_init(&c->out, 1 << 24);
}

/* Parses doc fed in chunks of `chunk` bytes (0: whole). Returns the parser (caller frees) or
 * NULL with *rc and err set. */
static struct s3xml *parse_list(const char *doc, size_t len, size_t chunk, size_t cap,
                                struct collect *c, int *rc, err_t *err)
{
    struct s3xml_list_opts o = {cap, on_object, on_prefix, c, NULL};
    struct s3xml *x;
    ck_assert_int_eq(s3xml_list_new(&o, &x, err), 0);
    *rc = 0;
    for (size_t off = 0; off < len && *rc == 0;) {
        size_t n = chunk == 0 || len - off < chunk ? len - off : chunk;
        *rc = s3xml_feed(x, doc + off, n, err);
        off += n;
    }
    if (*rc == 0)
        *rc = s3xml_finish(x, err);
    if (*rc != 0) {
        ck_assert_msg(err->msg[0] != '\0', "error %d without a message", *rc);
        ck_assert_ptr_null(strchr(err->msg, '\n'));
        ck_assert_ptr_null(s3xml_list_page(x));
        s3xml_free(x);
        return NULL;
    }
    return x;
}

/* Parses a string expected to be refused; returns the errno, the message in err. */
static int refuse(const char *doc, err_t *err)
{
    struct collect c;
    collect_init(&c);
    int rc;
    struct s3xml *x = parse_list(doc, strlen(doc), 0, 0, &c, &rc, err);
    ck_assert_msg(x == NULL, "accepted: %s", doc);
    buf_free(&c.out);
    return rc;
}

static const char fixture_expect[] =
    "O photos/red flower+1 \xc3\xa9t\xc3\xa9.jpg|1305107|b21b84d653bb07b05b1e6b33684dc11b|0|"
    "1567539447|STANDARD\n"
    "O photos/multipart.bin|15728640|d41d8cd98f00b204e9800998ecf8427e-3|3|1567539601|STANDARD\n"
    "O photos/ctl\x01"
    "char.txt|43|9e107d9d372bb6826bd81d3542a419d6|0|1567539660|STANDARD\n"
    "P photos/2019/\n";

static void check_fixture_page(const struct s3xml_list_page *pg)
{
    ck_assert_ptr_nonnull(pg);
    ck_assert_str_eq(pg->name, "examplebucket");
    ck_assert_str_eq(pg->prefix, "photos%2F"); /* as received */
    ck_assert_str_eq(pg->delimiter, "%2F");
    ck_assert_str_eq(pg->start_after, "");
    ck_assert_str_eq(pg->encoding_type, "url");
    ck_assert(pg->is_truncated);
    ck_assert_str_eq(pg->next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    ck_assert_str_eq(pg->continuation_token, "");
    ck_assert(pg->has_key_count);
    ck_assert_uint_eq(pg->key_count, 3);
    ck_assert_uint_eq(pg->max_keys, 3);
    ck_assert_uint_eq(pg->objects, 3);
    ck_assert_uint_eq(pg->prefixes, 1);
}

START_TEST(test_encoded_listing_fixture)
{
    size_t len;
    char *doc = (char *)tu_read_data("fixtures/s3-list-objects-v2-encoded.xml", &len);
    struct collect c;
    collect_init(&c);
    err_t err = {0};
    int rc;
    struct s3xml *x = parse_list(doc, len, 0, 0, &c, &rc, &err);
    ck_assert_msg(x != NULL, "%s", err.msg);
    check_fixture_page(s3xml_list_page(x));
    ck_assert_ptr_null(s3xml_error_doc(x));
    ck_assert_uint_eq(c.out.len, strlen(fixture_expect));
    ck_assert_int_eq(memcmp(c.out.data, fixture_expect, c.out.len), 0);
    s3xml_free(x);
    buf_free(&c.out);
    free(doc);
}
END_TEST

START_TEST(test_one_byte_at_a_time)
{
    size_t len;
    char *doc = (char *)tu_read_data("fixtures/s3-list-objects-v2-encoded.xml", &len);
    for (size_t chunk = 1; chunk <= 7; chunk += 3) {
        struct collect c;
        collect_init(&c);
        err_t err = {0};
        int rc;
        struct s3xml *x = parse_list(doc, len, chunk, 0, &c, &rc, &err);
        ck_assert_msg(x != NULL, "chunk %zu: %s", chunk, err.msg);
        check_fixture_page(s3xml_list_page(x));
        ck_assert_uint_eq(c.out.len, strlen(fixture_expect));
        ck_assert_int_eq(memcmp(c.out.data, fixture_expect, c.out.len), 0);
        s3xml_free(x);
        buf_free(&c.out);
    }
    free(doc);
}
END_TEST

/* A 1000-entry page; EncodingType first (as S3 sends it), last (as some servers do), or absent
 * (s3rver, which ignores encoding-type=url and sends keys as they are). */
enum enc_pos { ENC_FIRST, ENC_LAST, ENC_NONE };

static char *make_page(enum enc_pos pos, size_t *len)
{
    struct buf b;
    buf_init(&b, 1 << 24);
    buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult "
                   "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name>"
                   "<Prefix>d%%2F</Prefix><StartAfter>d%%2Fa+b</StartAfter>"
                   "<ContinuationToken>t/+=</ContinuationToken><KeyCount>1000</KeyCount>"
                   "<MaxKeys>1000</MaxKeys>");
    if (pos == ENC_FIRST)
        buf_printf(&b, "<EncodingType>url</EncodingType>");
    buf_printf(&b, "<IsTruncated>false</IsTruncated>");
    for (int i = 0; i < 1000; i++)
        buf_printf(&b,
                   "<Contents><Key>d%%2Ff+%04d%%2B%%25</Key><LastModified>2024-02-29T23:59:%02d."
                   "123Z</LastModified><ETag>&quot;%032x&quot;</ETag><Size>%d</Size>"
                   "<Owner><ID>x</ID></Owner><StorageClass>STANDARD</StorageClass></Contents>",
                   i, i % 60, i, i * 1000);
    if (pos == ENC_LAST)
        buf_printf(&b, "<EncodingType>url</EncodingType>");
    buf_printf(&b, "</ListBucketResult>\n");
    ck_assert_int_eq(b.err, 0);
    buf_put(&b, "", 1);
    char *doc = (char *)buf_steal(&b, len);
    (*len)--; /* not the NUL */
    return doc;
}

START_TEST(test_generated_1000_entries)
{
    static const enum enc_pos positions[] = {ENC_FIRST, ENC_LAST, ENC_NONE};
    for (size_t p = 0; p < 3; p++) {
        size_t len;
        char *doc = make_page(positions[p], &len);
        struct collect c;
        collect_init(&c);
        struct s3xml_list_opts o = {0, on_object, on_prefix, &c, NULL};
        struct s3xml *x;
        err_t err = {0};
        ck_assert_int_eq(s3xml_list_new(&o, &x, &err), 0);
        /* everything but the root's end tag: entries stream once the encoding is known */
        const char *end = strstr(doc, "</ListBucketResult>");
        ck_assert_int_eq(s3xml_feed(x, doc, (size_t)(end - doc), &err), 0);
        ck_assert_uint_eq(c.objects, positions[p] == ENC_NONE ? 0 : 1000);
        ck_assert_int_eq(s3xml_feed(x, end, len - (size_t)(end - doc), &err), 0);
        ck_assert_int_eq(s3xml_finish(x, &err), 0);
        ck_assert_uint_eq(c.objects, 1000);
        const struct s3xml_list_page *pg = s3xml_list_page(x);
        ck_assert_uint_eq(pg->objects, 1000);
        ck_assert(!pg->is_truncated);
        ck_assert_str_eq(pg->encoding_type, positions[p] == ENC_NONE ? "" : "url");
        /* echoed request fields come as received, encoded or not (RGW echoes them raw) */
        ck_assert_str_eq(pg->prefix, "d%2F");
        ck_assert_str_eq(pg->start_after, "d%2Fa+b");
        ck_assert_str_eq(pg->continuation_token, "t/+="); /* tokens are never decoded */
        /* the last entry: 2024 is a leap year; "+" is a space, "%2B" a plus, "%25" a percent */
        char want[256];
        snprintf(want, sizeof(want), "O %s|999000|%032x|0|%lld|STANDARD\n",
                 positions[p] == ENC_NONE ? "d%2Ff+0999%2B%25" : "d/f 0999+%", 999,
                 1709251140LL + 999 % 60);
        size_t wl = strlen(want);
        ck_assert_uint_ge(c.out.len, wl);
        ck_assert_msg(memcmp(c.out.data + c.out.len - wl, want, wl) == 0, "last entry of %zu", p);
        s3xml_free(x);
        buf_free(&c.out);
        free(doc);
    }
}
END_TEST

START_TEST(test_generated_page_byte_by_byte)
{
    size_t len;
    char *doc = make_page(ENC_LAST, &len);
    struct collect whole, bytes;
    collect_init(&whole);
    collect_init(&bytes);
    err_t err = {0};
    int rc;
    struct s3xml *a = parse_list(doc, len, 0, 0, &whole, &rc, &err);
    ck_assert_msg(a != NULL, "%s", err.msg);
    struct s3xml *b = parse_list(doc, len, 1, 0, &bytes, &rc, &err);
    ck_assert_msg(b != NULL, "%s", err.msg);
    ck_assert_uint_eq(whole.out.len, bytes.out.len);
    ck_assert_int_eq(memcmp(whole.out.data, bytes.out.data, whole.out.len), 0);
    ck_assert_str_eq(s3xml_list_page(a)->prefix, s3xml_list_page(b)->prefix);
    s3xml_free(a);
    s3xml_free(b);
    buf_free(&whole.out);
    buf_free(&bytes.out);
    free(doc);
}
END_TEST

START_TEST(test_byte_cap)
{
    size_t len;
    char *doc = (char *)tu_read_data("fixtures/s3-list-objects-v2-encoded.xml", &len);
    struct collect c;
    collect_init(&c);
    err_t err = {0};
    int rc;
    ck_assert_ptr_null(parse_list(doc, len, 100, 512, &c, &rc, &err));
    ck_assert_int_eq(rc, EFBIG);
    ck_assert_str_eq(err.msg, "listing larger than the 512-byte cap");
    /* exactly at the cap is fine */
    struct s3xml *x = parse_list(doc, len, 0, len, &c, &rc, &err);
    ck_assert_msg(x != NULL, "%s", err.msg);
    s3xml_free(x);
    /* the error-document parser has its own cap */
    struct s3xml_error e;
    size_t elen;
    char *edoc = (char *)tu_read_data("fixtures/s3-error-slowdown.xml", &elen);
    ck_assert_int_eq(s3xml_error_parse(edoc, elen, 64, &e, &err), EFBIG);
    ck_assert_str_eq(err.msg, "error document larger than the 64-byte cap");
    buf_free(&c.out);
    free(doc);
    free(edoc);
}
END_TEST

START_TEST(test_billion_laughs)
{
    size_t len;
    char *doc = (char *)tu_read_data("fixtures/xml-billion-laughs.xml", &len);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct collect c;
    collect_init(&c);
    err_t err = {0};
    int rc;
    ck_assert_ptr_null(parse_list(doc, len, 0, 0, &c, &rc, &err));
    ck_assert_int_eq(rc, EPROTO);
    ck_assert_msg(strstr(err.msg, "DOCTYPE") != NULL, "%s", err.msg);
    /* fed byte by byte too, and to the error-document parser */
    ck_assert_ptr_null(parse_list(doc, len, 1, 0, &c, &rc, &err));
    ck_assert_int_eq(rc, EPROTO);
    struct s3xml_error e;
    ck_assert_int_eq(s3xml_error_parse(doc, len, 0, &e, &err), EPROTO);
    ck_assert_msg(strstr(err.msg, "DOCTYPE") != NULL, "%s", err.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(secs < 0.5, "took %.3f s", secs);
    ck_assert_uint_eq(c.objects, 0);
    buf_free(&c.out);
    free(doc);
}
END_TEST

START_TEST(test_doctype_and_entities_refused)
{
    err_t err = {0};
    ck_assert_int_eq(refuse("<!DOCTYPE ListBucketResult><ListBucketResult/>", &err), EPROTO);
    ck_assert_msg(strstr(err.msg, "DOCTYPE") != NULL, "%s", err.msg);
    ck_assert_int_eq(refuse("<!DOCTYPE x SYSTEM \"file:///etc/passwd\"><ListBucketResult/>", &err),
                     EPROTO);
    ck_assert_msg(strstr(err.msg, "DOCTYPE") != NULL, "%s", err.msg);
    /* an undeclared entity is plain malformed XML */
    ck_assert_int_eq(refuse("<ListBucketResult><Name>&xxe;</Name></ListBucketResult>", &err),
                     EPROTO);
}
END_TEST

START_TEST(test_malformed)
{
    static const struct {
        const char *doc;
        const char *reason;
    } cases[] = {
        {"", "malformed XML"},
        {"<ListBucketResult>", "malformed XML"},
        {"<ListBucketResult></ListBucket>", "malformed XML"},
        {"<ListBucketResult><Contents><Key>a</Contents></ListBucketResult>", "malformed XML"},
        {"not xml at all", "malformed XML"},
        {"<ListBucketResult/><ListBucketResult/>", "malformed XML"},
        {"<ListBucket\x01Result></ListBucket\x01Result>", "malformed XML"},
        {"<ListBucketResult><Name>\xff</Name></ListBucketResult>", "malformed XML"},
        {"<Error><Code>NoSuchBucket</Code></Error>", "expected an S3 <ListBucketResult>"},
        {"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>", "without"},
        {"<ListBucketResult><Contents><Key>a</Key></Contents></ListBucketResult>", "<Size>"},
        {"<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents></ListBucketResult>",
         "bad <Size>"},
        {"<ListBucketResult><Contents><Key>a</Key><Size>18446744073709551616</Size></Contents>"
         "</ListBucketResult>",
         "bad <Size>"},
        {"<ListBucketResult><Contents><Key></Key><Size>1</Size></Contents></ListBucketResult>",
         "empty <Key>"},
        {"<ListBucketResult><Contents><Key>a</Key><Key>b</Key><Size>1</Size></Contents>"
         "</ListBucketResult>",
         "two <Key>"},
        {"<ListBucketResult><Contents><Key>a</Key><Size>1</Size><LastModified>2019-02-29T00:00:"
         "00Z</LastModified></Contents></ListBucketResult>",
         "bad <LastModified>"},
        {"<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>", "IsTruncated"},
        {"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
         "no NextContinuationToken"},
        {"<ListBucketResult><EncodingType>base64</EncodingType></ListBucketResult>",
         "unsupported EncodingType"},
        {"<ListBucketResult><CommonPrefixes></CommonPrefixes></ListBucketResult>",
         "<CommonPrefixes> without a <Prefix>"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err_t err = {0};
        ck_assert_int_eq(refuse(cases[i].doc, &err), EPROTO);
        ck_assert_msg(strstr(err.msg, cases[i].reason) != NULL, "case %zu: got '%s'", i, err.msg);
    }
}
END_TEST

START_TEST(test_bad_escapes)
{
    static const struct {
        const char *key;
        const char *reason;
    } cases[] = {
        {"photos%2", "bad %-escape at offset 6"},
        {"photos%G1", "bad %-escape at offset 6"},
        {"%", "bad %-escape at offset 0"},
        {"a%00b", "encoded NUL byte"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char doc[512];
        snprintf(doc, sizeof(doc),
                 "<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>%s</Key>"
                 "<Size>1</Size></Contents></ListBucketResult>",
                 cases[i].key);
        err_t err = {0};
        ck_assert_int_eq(refuse(doc, &err), EPROTO);
        ck_assert_msg(strstr(err.msg, cases[i].reason) != NULL && strstr(err.msg, "Key") != NULL,
                      "'%s': got '%s'", cases[i].key, err.msg);
    }
    /* common prefixes are checked too */
    err_t err = {0};
    ck_assert_int_eq(refuse("<ListBucketResult><CommonPrefixes><Prefix>%0</Prefix>"
                            "</CommonPrefixes><EncodingType>url</EncodingType></ListBucketResult>",
                            &err),
                     EPROTO);
    ck_assert_msg(strstr(err.msg, "CommonPrefixes") != NULL, "%s", err.msg);
}
END_TEST

/* RGW echoes <Prefix> and <StartAfter> raw under encoding-type=url: a prefix "100%/" or
 * "p%41/" must neither fail the page nor be decoded into another prefix. */
START_TEST(test_raw_echoed_request_fields)
{
    static const char doc[] =
        "<ListBucketResult><Name>b</Name><Prefix>100%/p%41/</Prefix><StartAfter>100%/p%41/x%"
        "</StartAfter><EncodingType>url</EncodingType><Contents><Key>100%25/p%2541/y</Key>"
        "<Size>1</Size></Contents><IsTruncated>false</IsTruncated></ListBucketResult>";
    struct collect c;
    collect_init(&c);
    int rc;
    err_t err = {0};
    struct s3xml *x = parse_list(doc, strlen(doc), 0, 0, &c, &rc, &err);
    ck_assert_msg(x != NULL, "%s", err.msg);
    ck_assert_str_eq(s3xml_list_page(x)->prefix, "100%/p%41/");
    ck_assert_str_eq(s3xml_list_page(x)->start_after, "100%/p%41/x%");
    buf_put(&c.out, "", 1);
    ck_assert_str_eq((const char *)c.out.data, "O 100%/p%41/y|1||0|0|\n");
    s3xml_free(x);
    buf_free(&c.out);
}
END_TEST

/* XML 1.0 forbids references to C0 controls, U+FFFE and U+FFFF, yet S3 writes them for keys
 * without encoding-type and RGW for its NextContinuationToken: every such key comes through
 * byte for byte, fed whole and byte by byte, and so does a key that holds U+10FFFD (the mark
 * the parser uses for them) literally or as a reference. */
START_TEST(test_forbidden_character_references)
{
    static const char doc[] =
        "<ListBucketResult><Contents><Key>a&#x01;b&#1;&#x1F;&#31;&#xFFFE;&#65535;</Key>"
        "<Size>1</Size></Contents>"
        "<Contents><Key>m\xf4\x8f\xbf\xbd&#x10FFFD;&#1114109;\xf4\x8f\xbc\x81|&amp;&#x41;&#9;"
        "&#x10FF01;</Key><Size>2</Size></Contents>"
        "<Contents><Key>&#x7;&amp;&#x7f;&lt;&#x0A;</Key><Size>3</Size></Contents>"
        "<Contents><Key>raw\x01\x1f\x7f\t</Key><Size>4</Size></Contents>"
        "<IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>k&#x01;&#x2;</NextContinuationToken></ListBucketResult>";
    static const char want[] = "O a\x01"
                               "b\x01\x1f\x1f\xef\xbf\xbe\xef\xbf\xbf|1||0|0|\n"
                               "O "
                               "m\xf4\x8f\xbf\xbd\xf4\x8f\xbf\xbd\xf4\x8f\xbf\xbd\xf4\x8f\xbc\x81|&"
                               "A\t\xf4\x8f\xbc\x81|2||0|"
                               "0|\n"
                               "O \x07&\x7f<\n|3||0|0|\n"
        "O raw\x01\x1f\x7f\t|4||0|0|\n";
    for (size_t chunk = 0; chunk <= 1; chunk++) {
        struct collect c;
        collect_init(&c);
        int rc;
        err_t err = {0};
        struct s3xml *x = parse_list(doc, strlen(doc), chunk, 0, &c, &rc, &err);
        ck_assert_msg(x != NULL, "chunk %zu: %s", chunk, err.msg);
        buf_put(&c.out, "", 1);
        ck_assert_str_eq((const char *)c.out.data, want);
        ck_assert_str_eq(s3xml_list_page(x)->next_continuation_token, "k\x01\x02");
        s3xml_free(x);
        buf_free(&c.out);
    }
    /* a NUL cannot be part of a key; a stray mark cannot come from the filter */
    err_t err = {0};
    ck_assert_int_eq(refuse("<ListBucketResult><Contents><Key>a&#0;</Key><Size>1</Size>"
                            "</Contents></ListBucketResult>",
                            &err),
                     EPROTO);
    ck_assert_msg(strstr(err.msg, "NUL") != NULL, "%s", err.msg);
    /* a key of 1,024 control bytes, the longest S3 allows, fits the cap */
    struct buf b;
    buf_init(&b, 1 << 16);
    buf_printf(&b, "<ListBucketResult><Contents><Key>");
    for (int i = 0; i < 1024; i++)
        buf_printf(&b, "&#x1;");
    buf_printf(&b, "</Key><Size>1</Size></Contents></ListBucketResult>");
    struct collect c;
    collect_init(&c);
    int rc;
    struct s3xml *x = parse_list((const char *)b.data, b.len, 7, 0, &c, &rc, &err);
    ck_assert_msg(x != NULL, "%s", err.msg);
    ck_assert_uint_eq(c.out.len, 2 + 1024 + strlen("|1||0|0|\n"));
    s3xml_free(x);
    buf_free(&c.out);
    buf_free(&b);
    /* three such keys of raw bytes, as s3rver writes them, fed whole: each byte becomes two
     * references (20 bytes) on its way to expat, 60 KiB out of one 4 KiB slice */
    buf_init(&b, 1 << 16);
    buf_printf(&b, "<ListBucketResult>");
    for (int k = 0; k < 3; k++) {
        buf_printf(&b, "<Contents><Key>");
        for (int i = 0; i < 1024; i++)
            buf_put(&b, "\x01", 1);
        buf_printf(&b, "</Key><Size>%d</Size></Contents>", k);
    }
    buf_printf(&b, "</ListBucketResult>");
    collect_init(&c);
    x = parse_list((const char *)b.data, b.len, 0, 0, &c, &rc, &err);
    ck_assert_msg(x != NULL, "%s", err.msg);
    ck_assert_uint_eq(c.objects, 3);
    ck_assert_uint_eq(c.out.len, 3 * (2 + 1024 + strlen("|0||0|0|\n")));
    s3xml_free(x);
    buf_free(&c.out);
    buf_free(&b);
    /* the worst slice: a reference held back from the slice before, flushed by the first of
     * 4,096 control bytes (a key too long, refused; before, a byte past the filter's buffer) */
    buf_init(&b, 1 << 16);
    buf_printf(&b, "<ListBucketResult><Contents><Key>");
    while (b.len < 4096 - 4)
        buf_put(&b, "a", 1);
    buf_printf(&b, "&#1;");
    for (int i = 0; i < 4096; i++)
        buf_put(&b, "\x01", 1);
    buf_printf(&b, "</Key><Size>1</Size></Contents></ListBucketResult>");
    collect_init(&c);
    ck_assert_ptr_null(parse_list((const char *)b.data, b.len, 0, 0, &c, &rc, &err));
    ck_assert_int_eq(rc, EPROTO);
    buf_free(&c.out);
    buf_free(&b);
    /* an error document with such a reference parses too */
    struct s3xml_error edoc_out = {0};
    static const char edoc[] = "<Error><Code>NoSuchKey</Code><Key>a&#x01;</Key></Error>";
    ck_assert_int_eq(s3xml_error_parse(edoc, strlen(edoc), 0, &edoc_out, &err), 0);
    ck_assert_str_eq(edoc_out.key, "a\x01");
}
END_TEST

START_TEST(test_form_decode)
{
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"", ""},
        {"a+b", "a b"},
        {"a%2Bb", "a+b"},
        {"a%2bb", "a+b"},
        {"%2B+", "+ "},
        {"%25%32%42", "%2B"}, /* decoded once, never twice */
        {"%C3%A9", "\xc3\xa9"},
        {"%01", "\x01"},
        {"plain/key.txt", "plain/key.txt"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char out[64];
        size_t n;
        err_t err = {0};
        ck_assert_int_eq(uri_decode_to(ok[i].in, strlen(ok[i].in), true, out, &n, &err), 0);
        ck_assert_str_eq(out, ok[i].out);
        ck_assert_uint_eq(n, strlen(ok[i].out));
    }
    static const char *const bad[] = {"%", "%4", "%4g", "%%41", "a%00", "%-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[64];
        size_t n;
        err_t err = {0};
        ck_assert_int_eq(uri_decode_to(bad[i], strlen(bad[i]), true, out, &n, &err), EPROTO);
        ck_assert(err.msg[0] != '\0');
    }
    char out[8];
    size_t n;
    ck_assert_int_eq(uri_decode_to("a\0b", 3, true, out, &n, NULL), EPROTO);
    /* not form-encoded (a path): '+' is itself; decoding in place */
    char path[] = "a+b%2B%20c";
    ck_assert_int_eq(uri_decode_to(path, strlen(path), false, path, &n, NULL), 0);
    ck_assert_str_eq(path, "a+b+ c");
    ck_assert_uint_eq(n, 6);
    char *dup = uri_decode("x%2By+z", 7, true, &n);
    ck_assert_str_eq(dup, "x+y z");
    free(dup);
    ck_assert_ptr_null(uri_decode("%2", 2, true, NULL));
}
END_TEST

START_TEST(test_limits)
{
    err_t err = {0};
    /* nesting */
    struct buf b;
    buf_init(&b, 4096);
    buf_printf(&b, "<ListBucketResult>");
    for (int i = 0; i < S3XML_MAX_DEPTH; i++)
        buf_printf(&b, "<a>");
    for (int i = 0; i < S3XML_MAX_DEPTH; i++)
        buf_printf(&b, "</a>");
    buf_printf(&b, "</ListBucketResult>");
    buf_put(&b, "", 1);
    ck_assert_int_eq(refuse((const char *)b.data, &err), EPROTO);
    ck_assert_msg(strstr(err.msg, "nested deeper than 16") != NULL, "%s", err.msg);
    buf_free(&b);

    /* a key at the cap passes, one byte more fails */
    for (int over = 0; over <= 1; over++) {
        buf_init(&b, 16384);
        buf_printf(&b, "<ListBucketResult><Contents><Key>");
        for (int i = 0; i < S3XML_KEY_MAX / 3; i++)
            buf_printf(&b, "%%41");
        buf_printf(&b, "%s</Key><Size>0</Size></Contents></ListBucketResult>", over ? "xy" : "x");
        buf_put(&b, "", 1);
        struct collect c;
        collect_init(&c);
        int rc;
        struct s3xml *x = parse_list((const char *)b.data, b.len - 1, 0, 0, &c, &rc, &err);
        if (over) {
            ck_assert_ptr_null(x);
            ck_assert_int_eq(rc, EPROTO);
            ck_assert_str_eq(err.msg, "listing has a <Key> longer than 4096 bytes");
        } else {
            ck_assert_msg(x != NULL, "%s", err.msg);
            ck_assert_uint_eq(c.objects, 1);
            s3xml_free(x);
        }
        buf_free(&c.out);
        buf_free(&b);
    }

    /* unknown elements, attributes, comments, CDATA and namespace prefixes */
    const char *odd = "<?xml version=\"1.0\"?><!-- hi --><s3:ListBucketResult xmlns:s3=\"urn:x\">"
                      "<Unknown><Contents><Key>no</Key></Contents></Unknown>"
                      "<s3:Contents a=\"1\"><s3:Key><![CDATA[a&b]]></s3:Key><Size>7</Size>"
                      "<Future><Size>x</Size></Future></s3:Contents></s3:ListBucketResult>";
    struct collect c;
    collect_init(&c);
    int rc;
    struct s3xml *x = parse_list(odd, strlen(odd), 0, 0, &c, &rc, &err);
    ck_assert_msg(x != NULL, "%s", err.msg);
    ck_assert_uint_eq(c.objects, 1);
    buf_put(&c.out, "", 1);
    ck_assert_str_eq((const char *)c.out.data, "O a&b|7||0|0|\n");
    s3xml_free(x);
    buf_free(&c.out);
}
END_TEST

START_TEST(test_callback_stops_and_errors_stick)
{
    size_t len;
    char *doc = (char *)tu_read_data("fixtures/s3-list-objects-v2-encoded.xml", &len);
    struct collect c;
    collect_init(&c);
    c.stop_after = 2;
    struct s3xml_list_opts o = {0, on_object, on_prefix, &c, NULL};
    struct s3xml *x;
    err_t err = {0};
    ck_assert_int_eq(s3xml_list_new(&o, &x, &err), 0);
    ck_assert_int_eq(s3xml_feed(x, doc, len, &err), ECANCELED);
    ck_assert_str_eq(err.msg, "stopped at photos/multipart.bin");
    ck_assert_uint_eq(c.objects, 2);
    err_clear(&err);
    ck_assert_int_eq(s3xml_feed(x, "", 0, &err), ECANCELED);
    ck_assert_int_eq(s3xml_finish(x, &err), ECANCELED);
    ck_assert_str_eq(err.msg, "stopped at photos/multipart.bin");
    ck_assert_ptr_null(s3xml_list_page(x));
    s3xml_free(x);
    s3xml_free(NULL);
    buf_free(&c.out);
    free(doc);
}
END_TEST

static const struct {
    const char *file;
    int status;
    const char *code, *message, *request_id;
    int errnum;
    bool retryable;
    const char *line; /* s3xml_error_report for s3://examplebucket/photos/missing.jpg */
} error_fixtures[] = {
    {"fixtures/s3-error-nosuchkey.xml", 404, "NoSuchKey",
     "The resource you requested does not exist", "4442587FB7D0A2F9", ENOENT, false,
     "s3://examplebucket/photos/missing.jpg: NoSuchKey: The resource you requested does not "
     "exist (request id 4442587FB7D0A2F9)"},
    {"fixtures/s3-error-slowdown.xml", 503, "SlowDown", "Please reduce your request rate.",
     "4442587FB7D0A2F9", EAGAIN, true,
     "s3://examplebucket/photos/missing.jpg: SlowDown: Please reduce your request rate. (request "
     "id 4442587FB7D0A2F9)"},
    {"fixtures/s3-error-request-time-too-skewed.xml", 403, "RequestTimeTooSkewed",
     "The difference between the request time and the current time is too large.",
     "4442587FB7D0A2F9", ETIME, false,
     "s3://examplebucket/photos/missing.jpg: RequestTimeTooSkewed: The difference between the "
     "request time and the current time is too large. (request id 4442587FB7D0A2F9); the local "
     "clock is 1200 s behind the server's (request signed at 20130524T000000Z, server time "
     "2013-05-24T00:20:00Z): fix the system clock (NTP)"},
};

START_TEST(test_error_fixtures)
{
    for (size_t i = 0; i < sizeof(error_fixtures) / sizeof(error_fixtures[0]); i++) {
        size_t len;
        char *doc = (char *)tu_read_data(error_fixtures[i].file, &len);
        for (size_t chunk = 0; chunk <= 1; chunk++) {
            struct s3xml *x;
            err_t err = {0};
            ck_assert_int_eq(s3xml_error_new(0, &x, &err), 0);
            for (size_t off = 0; off < len;) {
                size_t n = chunk ? 1 : len;
                ck_assert_int_eq(s3xml_feed(x, doc + off, n, &err), 0);
                off += n;
            }
            ck_assert_msg(s3xml_finish(x, &err) == 0, "%s", err.msg);
            const struct s3xml_error *e = s3xml_error_doc(x);
            ck_assert_ptr_nonnull(e);
            ck_assert_ptr_null(s3xml_list_page(x));
            ck_assert_str_eq(e->code, error_fixtures[i].code);
            ck_assert_str_eq(e->message, error_fixtures[i].message);
            ck_assert_str_eq(e->request_id, error_fixtures[i].request_id);
            bool retry = !error_fixtures[i].retryable;
            ck_assert_int_eq(aws_error_errno(error_fixtures[i].status, e->code, &retry),
                             error_fixtures[i].errnum);
            ck_assert_int_eq(retry, error_fixtures[i].retryable);
            err_t line = {0};
            ck_assert_int_eq(s3xml_error_report(&line, error_fixtures[i].status, e, "examplebucket",
                                                "photos/missing.jpg"),
                             error_fixtures[i].errnum);
            ck_assert_int_eq(line.code, error_fixtures[i].errnum);
            ck_assert_str_eq(line.msg, error_fixtures[i].line);
            s3xml_free(x);
        }
        free(doc);
    }
    /* the fields only some documents carry */
    size_t len;
    char *doc = (char *)tu_read_data("fixtures/s3-error-nosuchkey.xml", &len);
    struct s3xml_error e;
    err_t err = {0};
    ck_assert_int_eq(s3xml_error_parse(doc, len, 0, &e, &err), 0);
    ck_assert_str_eq(e.resource, "/examplebucket/photos/missing.jpg");
    ck_assert_str_eq(e.server_time, "");
    free(doc);
    doc = (char *)tu_read_data("fixtures/s3-error-request-time-too-skewed.xml", &len);
    ck_assert_int_eq(s3xml_error_parse(doc, len, 0, &e, &err), 0);
    ck_assert_str_eq(e.server_time, "2013-05-24T00:20:00Z");
    ck_assert_int_eq(e.server_time_unix, 1369354800);
    ck_assert_int_eq(e.request_time_unix, 1369353600);
    free(doc);
    doc = (char *)tu_read_data("fixtures/s3-error-slowdown.xml", &len);
    ck_assert_int_eq(s3xml_error_parse(doc, len, 0, &e, &err), 0);
    ck_assert_str_eq(
        e.host_id, "vlR7PnpV2Ce81l0PRw6jlUpck7Jo5ZsQjryTjKlc5aLWGVHPZLj5NeC6qMa0emYBDXOo6QBU0Wo=");
    free(doc);
}
END_TEST

START_TEST(test_error_documents_odd)
{
    struct s3xml_error e;
    err_t err = {0};
    /* Key and BucketName from the document; secrets of SignatureDoesNotMatch are not kept */
    const char *sig = "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature "
                      "we calculated does not match</Message><AWSAccessKeyId>AKIDEXAMPLE"
                      "</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256\n...</StringToSign>"
                      "<SignatureProvided>deadbeef</SignatureProvided><BucketName>b</BucketName>"
                      "<Key>a\x0d\x0akey</Key><RequestId>R</RequestId></Error>";
    ck_assert_int_eq(s3xml_error_parse(sig, strlen(sig), 0, &e, &err), 0);
    err_t line = {0};
    ck_assert_int_eq(s3xml_error_report(&line, 403, &e, NULL, NULL), EACCES);
    ck_assert_str_eq(line.msg, "s3://b/a\\x0akey: SignatureDoesNotMatch: The request signature we "
                               "calculated does not match (request id R); the signature was "
                               "refused: check the secret access key that goes with the access "
                               "key id");
    ck_assert_ptr_null(strstr(line.msg, "AKIDEXAMPLE"));
    ck_assert_ptr_null(strstr(line.msg, "deadbeef"));

    /* a long Message is cut, not refused */
    struct buf b;
    buf_init(&b, 8192);
    buf_printf(&b, "<Error><Code>InternalError</Code><Message>");
    for (int i = 0; i < 3000; i++)
        buf_printf(&b, "\xc3\xa9");
    buf_printf(&b, "</Message></Error>");
    ck_assert_int_eq(s3xml_error_parse(b.data, b.len, 0, &e, &err), 0);
    ck_assert_uint_eq(strlen(e.message), 1022); /* cut on a character boundary */
    buf_free(&b);

    /* not an error document */
    ck_assert_int_eq(s3xml_error_parse("<ListBucketResult/>", 19, 0, &e, &err), EPROTO);
    ck_assert_msg(strstr(err.msg, "expected an S3 <Error> document") != NULL, "%s", err.msg);
    ck_assert_int_eq(s3xml_error_parse("", 0, 0, &e, &err), EPROTO);

    /* no document at all (a HEAD): the status speaks */
    ck_assert_int_eq(s3xml_error_report(&line, 404, NULL, "b", "k\x01"), ENOENT);
    ck_assert_str_eq(line.msg, "s3://b/k\\x01: HTTP 404 Not Found");
    ck_assert_int_eq(s3xml_error_report(&line, 503, NULL, "b", NULL), EAGAIN);
    ck_assert_str_eq(line.msg, "s3://b: HTTP 503 Service Unavailable");
    ck_assert_int_eq(s3xml_error_report(&line, 500, NULL, NULL, NULL), EIO);
    ck_assert_str_eq(line.msg, "S3: HTTP 500 Internal Server Error");
    memset(&e, 0, sizeof(e));
    strcpy(e.code, "InvalidAccessKeyId");
    ck_assert_int_eq(s3xml_error_report(&line, 403, &e, "b", "k"), EACCES);
    ck_assert_str_eq(line.msg, "s3://b/k: InvalidAccessKeyId (HTTP 403); the access key id is "
                               "unknown to the server: check the credentials in use "
                               "(AWS_ACCESS_KEY_ID, AWS_PROFILE)");
    strcpy(e.code, "RequestTimeTooSkewed");
    ck_assert_int_eq(s3xml_error_report(&line, 403, &e, "b", "k"), ETIME);
    ck_assert_msg(strstr(line.msg, "clock is off") != NULL, "%s", line.msg);
}
END_TEST

START_TEST(test_errno_map)
{
    static const struct {
        int status;
        const char *code;
        int errnum;
        bool retry;
    } cases[] = {
        {404, "NoSuchKey", ENOENT, false},
        {404, "NoSuchBucket", ENOENT, false},
        {404, NULL, ENOENT, false},
        {404, "", ENOENT, false},
        {403, "AccessDenied", EACCES, false},
        {403, NULL, EACCES, false},
        {403, "InvalidAccessKeyId", EACCES, false},
        {403, "SignatureDoesNotMatch", EACCES, false},
        {400, "ExpiredToken", EACCES, false},
        {412, "PreconditionFailed", ESTALE, false},
        {412, NULL, ESTALE, false},
        {403, "RequestTimeTooSkewed", ETIME, false},
        {503, "SlowDown", EAGAIN, true},
        {503, NULL, EAGAIN, true},
        {500, NULL, EIO, true},
        {502, NULL, EIO, true},
        {504, NULL, EIO, true},
        {501, NULL, ENOSYS, false},
        {501, "NotImplemented", ENOSYS, false},
        {500, "InternalError", EIO, true},
        {200, "InternalError", EIO, true},
        {400, "RequestTimeout", ETIMEDOUT, true},
        {400, "Throttling", EAGAIN, true},
        {400, "ThrottlingException", EAGAIN, true},
        {400, "ProvisionedThroughputExceededException", EAGAIN, true},
        /* one AWS table: the code is DynamoDB's (S3 says PreconditionFailed) */
        {400, "ConditionalCheckFailedException", EEXIST, false},
        {429, NULL, EAGAIN, true},
        {400, "InvalidArgument", EINVAL, false},
        {400, NULL, EINVAL, false},
        {416, "InvalidRange", EINVAL, false},
        {409, "BucketNotEmpty", EBUSY, false},
        {418, "Teapot", EIO, false},
        {599, "SomethingNew", EIO, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool retry = !cases[i].retry;
        int e = aws_error_errno(cases[i].status, cases[i].code, &retry);
        ck_assert_msg(e == cases[i].errnum && retry == cases[i].retry, "%d %s: got %d %d",
                      cases[i].status, cases[i].code ? cases[i].code : "(none)", e, retry);
    }
    ck_assert_int_eq(aws_error_errno(404, NULL, NULL), ENOENT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("s3xml");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_encoded_listing_fixture);
    tcase_add_test(tc, test_one_byte_at_a_time);
    tcase_add_test(tc, test_generated_1000_entries);
    tcase_add_test(tc, test_generated_page_byte_by_byte);
    tcase_add_test(tc, test_byte_cap);
    tcase_add_test(tc, test_billion_laughs);
    tcase_add_test(tc, test_doctype_and_entities_refused);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_bad_escapes);
    tcase_add_test(tc, test_raw_echoed_request_fields);
    tcase_add_test(tc, test_forbidden_character_references);
    tcase_add_test(tc, test_form_decode);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_callback_stops_and_errors_stick);
    tcase_add_test(tc, test_error_fixtures);
    tcase_add_test(tc, test_error_documents_odd);
    tcase_add_test(tc, test_errno_map);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
