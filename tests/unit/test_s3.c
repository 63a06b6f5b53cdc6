/* test_s3.c — the S3 client against a scripted local HTTP server: addressing and key encoding,
 * SigV4 headers on the wire, the standard retry mode (which answers retry, how often, with what
 * backoff), metadata on PUT, the version id a HEAD keeps (and the store over the client), and
 * the ranged-GET byte source's If-Match and ETag checks. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awsfix.h"
#include "s3torrent/s3.h"
#include "s3torrent/sigv4.h"
#include "s3torrent/store.h"
#include "testutil.h"

static struct s3_client *s3;

static struct s3_client *client(const char *endpoint, const char *region)
{
    struct s3_config cfg = {
        .endpoint = endpoint,
        .region = region,
        .http = awsfix.http,
        .creds = awsfix.creds,
        .random = awsfix_half,
        .sleep_ms = awsfix_record_sleep,
    };
    struct s3_client *c;
    err_t err = {0};
    ck_assert_msg(s3_client_new(&cfg, &c, &err) == 0, "%s", err.msg);
    return c;
}

static void setup(void)
{
    awsfix_setup();
    s3 = client(fakehttp_url(awsfix.fake), "eu-west-1");
}

static void teardown(void)
{
    s3_client_free(s3);
    awsfix_teardown();
}

static const char *url_of(struct s3_client *c, const char *bucket, const char *key)
{
    static char out[4096];
    struct buf b;
    buf_init(&b, sizeof(out) - 1);
    ck_assert_int_eq(s3_object_url(c, bucket, key, &b), 0);
    memcpy(out, b.data, b.len);
    out[b.len] = '\0';
    buf_free(&b);
    return out;
}

START_TEST(test_addressing)
{
    struct s3_client *aws = client(NULL, "eu-west-1");
    unsetenv("AWS_ENDPOINT_URL_S3");
    unsetenv("AWS_ENDPOINT_URL");
    ck_assert_str_eq(url_of(aws, "recordings", "a b+c/é?#%.bin"),
                     "https://recordings.s3.eu-west-1.amazonaws.com/a%20b%2Bc/%C3%A9%3F%23%25.bin");
    /* dotted buckets cannot be virtual hosts under TLS */
    ck_assert_str_eq(url_of(aws, "my.bucket", "k"),
                     "https://s3.eu-west-1.amazonaws.com/my.bucket/k");
    s3_client_free(aws);
    /* custom endpoints are path-style; "a//b" and "./" stay as they are */
    char want[256];
    snprintf(want, sizeof(want), "%s/b/a//b/./c", fakehttp_url(awsfix.fake));
    ck_assert_str_eq(url_of(s3, "b", "a//b/./c"), want);

    struct s3_client *bad;
    struct s3_config cfg = {.endpoint = "ftp://x", .http = awsfix.http, .creds = awsfix.creds};
    err_t err = {0};
    ck_assert_int_eq(s3_client_new(&cfg, &bad, &err), EINVAL);
    ck_assert_msg(strstr(err.msg, "http:// or https://") != NULL, "%s", err.msg);
}
END_TEST

START_TEST(test_parse_uri)
{
    char *b, *k;
    err_t err = {0};
    ck_assert_int_eq(s3_parse_uri("s3://bucket/a/b c", &b, &k, &err), 0);
    ck_assert_str_eq(b, "bucket");
    ck_assert_str_eq(k, "a/b c");
    free(b);
    free(k);
    ck_assert_int_eq(s3_parse_uri("s3://bucket", &b, &k, &err), 0);
    ck_assert_str_eq(k, "");
    free(b);
    free(k);
    ck_assert_int_eq(s3_parse_uri("http://bucket/k", &b, &k, &err), EINVAL);
    /* one rule for every front end (docs/DESIGN.md §4): legacy and short names pass */
    ck_assert_int_eq(s3_parse_uri("s3://Legacy_Bucket/k", &b, &k, &err), 0);
    ck_assert_str_eq(b, "Legacy_Bucket");
    free(b);
    free(k);
    ck_assert_int_eq(s3_parse_uri("s3://xc/k", &b, &k, &err), 0);
    free(b);
    free(k);
    ck_assert_int_eq(s3_parse_uri("s3:///k", &b, &k, &err), EINVAL);
    ck_assert_int_eq(s3_parse_uri("s3://a b/k", &b, &k, &err), EINVAL);
    ck_assert_int_eq(s3_parse_uri("s3://a:b/k", &b, &k, &err), EINVAL);
    ck_assert_str_eq(err.msg, "'s3://a:b/k': \"a:b\" is not a bucket name (1 to 255 letters, "
                              "digits, '.', '-' or '_')");
}
END_TEST

START_TEST(test_head_signed_and_parsed)
{
    fakehttp_add_ex(awsfix.fake, "HEAD", "/bucket/rec/a%20b%2Bc.bin", 200,
                    "ETag: \"0123456789abcdef0123456789abcdef-3\"\r\n"
                    "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
                    "Content-Length: 123456789012\r\n",
                    NULL);
    struct s3_object o;
    err_t err = {0};
    ck_assert_msg(s3_head(s3, "bucket", "rec/a b+c.bin", &o, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(o.etag, "0123456789abcdef0123456789abcdef-3");
    ck_assert_uint_eq(o.size, 123456789012ull);
    ck_assert_int_eq(o.mtime, 1445412480);
    const struct fakehttp_request *r = fakehttp_request(awsfix.fake, 0);
    const char *auth = fakehttp_header(r, "authorization");
    ck_assert_ptr_nonnull(auth);
    ck_assert_msg(strncmp(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/", 40) == 0, "%s", auth);
    ck_assert_ptr_nonnull(strstr(auth, "/eu-west-1/s3/aws4_request"));
    ck_assert_ptr_nonnull(strstr(auth, "SignedHeaders=host;x-amz-content-sha256;x-amz-date"));
    ck_assert_str_eq(fakehttp_header(r, "x-amz-content-sha256"),
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ck_assert_ptr_nonnull(fakehttp_header(r, "x-amz-date"));
}
END_TEST

/* x-amz-version-id as the S3 client and the store over it keep it: whole or not at all. */
static const struct {
    const char *header; /* NULL: none sent */
    const char *want;
} version_cases[] = {
    {NULL, ""},
    {"3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"},
    {"null", "null"}, /* versioning suspended: kept as sent */
    {"a\tb", ""},     /* a control byte: no such version */
    {"a\177b", ""},   /* DEL */
    {"0123456789012345678901234567890123456789012345678901234567890123", ""}, /* too long */
    {"012345678901234567890123456789012345678901234567890123456789012",
     "012345678901234567890123456789012345678901234567890123456789012"},
};

START_TEST(test_head_version_id)
{
    char extra[256];
    if (version_cases[_i].header)
        snprintf(extra, sizeof(extra),
                 "ETag: \"abc\"\r\nContent-Length: 5\r\nx-amz-version-id: %s\r\n",
                 version_cases[_i].header);
    else
        snprintf(extra, sizeof(extra), "ETag: \"abc\"\r\nContent-Length: 5\r\n");
    fakehttp_add_ex(awsfix.fake, "HEAD", "/bucket/v.bin", 200, extra, NULL);
    struct s3_object o;
    err_t err = {0};
    ck_assert_msg(s3_head(s3, "bucket", "v.bin", &o, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(o.version_id, version_cases[_i].want);
    struct store *st = store_s3_new(s3);
    struct store_object so;
    ck_assert_ptr_nonnull(st);
    ck_assert_msg(store_head(st, "bucket", "v.bin", &so, NULL, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(so.version_id, version_cases[_i].want);
    ck_assert_str_eq(so.etag, "abc");
    store_free(st);
}
END_TEST

START_TEST(test_retries_throttling_then_success)
{
    fakehttp_add(awsfix.fake, "HEAD", "/bucket/k", 503, NULL);
    fakehttp_add(awsfix.fake, "HEAD", "/bucket/k", 500, NULL);
    fakehttp_add_ex(awsfix.fake, "HEAD", "/bucket/k", 200, "ETag: \"e\"\r\nContent-Length: 5\r\n",
                    NULL);
    struct s3_object o;
    err_t err = {0};
    ck_assert_msg(s3_head(s3, "bucket", "k", &o, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 3);
    /* full jitter: random 0.5 of 100 ms * 2^attempt */
    ck_assert_uint_eq(awsfix.nsleeps, 2);
    ck_assert_int_eq(awsfix.sleeps[0], 100);
    ck_assert_int_eq(awsfix.sleeps[1], 200);
    /* each attempt is signed afresh */
    ck_assert_ptr_nonnull(fakehttp_header(fakehttp_request(awsfix.fake, 2), "authorization"));
}
END_TEST

START_TEST(test_no_retry_on_client_errors)
{
    fakehttp_add(awsfix.fake, "GET", "/bucket/missing", 404,
                 "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist."
                 "</Message><RequestId>RID1</RequestId></Error>");
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1024);
    ck_assert_int_eq(s3_get_all(s3, "bucket", "missing", NULL, &b, &err), ENOENT);
    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 1);
    ck_assert_str_eq(err.msg, "s3://bucket/missing: NoSuchKey: The specified key does not exist. "
                              "(request id RID1)");
    buf_free(&b);
}
END_TEST

START_TEST(test_attempts_are_bounded)
{
    fakehttp_add(awsfix.fake, "GET", "/bucket/busy", 503,
                 "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
                 "</Error>");
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1024);
    ck_assert_int_eq(s3_get_all(s3, "bucket", "busy", NULL, &b, &err), EAGAIN);
    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 5);
    ck_assert_msg(strstr(err.msg, "after 5 attempts") && strstr(err.msg, "SlowDown"), "%s",
                  err.msg);
    buf_free(&b);

    setenv("AWS_MAX_ATTEMPTS", "2", 1);
    struct s3_client *two = client(fakehttp_url(awsfix.fake), "us-east-1");
    buf_init(&b, 1024);
    ck_assert_int_eq(s3_get_all(two, "bucket", "busy", NULL, &b, &err), EAGAIN);
    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 7);
    buf_free(&b);
    s3_client_free(two);
    unsetenv("AWS_MAX_ATTEMPTS");
}
END_TEST

START_TEST(test_put_with_metadata)
{
    fakehttp_add_ex(awsfix.fake, "PUT", "/bucket/rec/a.bin.torrent", 200, "ETag: \"newetag\"\r\n",
                    NULL);
    struct http_header meta[] = {{"s3torrent-source-etag", "abc"}, {"s3torrent-infohash", "0123"}};
    char etag[128];
    err_t err = {0};
    ck_assert_msg(s3_put(s3, "bucket", "rec/a.bin.torrent", "d4:infodee", 10,
                         "application/x-bittorrent", meta, 2, etag, &err) == 0,
                  "%s", err.msg);
    ck_assert_str_eq(etag, "newetag");
    const struct fakehttp_request *r = fakehttp_request(awsfix.fake, 0);
    ck_assert_uint_eq(r->body_len, 10);
    ck_assert_str_eq(fakehttp_header(r, "content-type"), "application/x-bittorrent");
    ck_assert_str_eq(fakehttp_header(r, "x-amz-meta-s3torrent-source-etag"), "abc");
    /* SHA-256("d4:infodee"), from sha256sum */
    ck_assert_str_eq(fakehttp_header(r, "x-amz-content-sha256"),
                     "1d8e39ceeb88df3acd3c61582acaf77c29f2c219e102c674f7088292f669de77");
}
END_TEST

START_TEST(test_range_source_pins_etag)
{
    fakehttp_add_ex(awsfix.fake, "HEAD", "/bucket/obj", 200,
                    "ETag: \"v1\"\r\nContent-Length: 10\r\nLast-Modified: Wed, 21 Oct 2015 "
                    "07:28:00 GMT\r\n",
                    NULL);
    fakehttp_add_ex(awsfix.fake, "GET", "/bucket/obj", 206, "ETag: \"v1\"\r\n", "0123456789");
    fakehttp_add_ex(awsfix.fake, "GET", "/bucket/obj", 206, "ETag: \"v2\"\r\n", "abcdefghij");
    struct source *src;
    err_t err = {0};
    ck_assert_msg(source_s3_open(s3, "bucket", "obj", 1, &src, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(src->size, 10);
    ck_assert_str_eq(src->name, "obj");
    void *st;
    uint8_t scratch[16];
    const uint8_t *data;
    ck_assert_int_eq(src->ops->stream_open(src, 0, 10, &st, &err), 0);
    ck_assert_int_eq(src->ops->stream_next(src, st, 10, scratch, &data, &err), 0);
    ck_assert_int_eq(memcmp(data, "0123456789", 10), 0);
    src->ops->stream_close(src, st);
    const struct fakehttp_request *r = fakehttp_request(awsfix.fake, 1);
    ck_assert_str_eq(fakehttp_header(r, "if-match"), "\"v1\"");
    ck_assert_str_eq(fakehttp_header(r, "range"), "bytes=0-9");
    /* the server now sends another version: never mix two */
    ck_assert_int_eq(src->ops->stream_open(src, 0, 10, &st, &err), 0);
    ck_assert_int_eq(src->ops->stream_next(src, st, 10, scratch, &data, &err), ESTALE);
    ck_assert_msg(strstr(err.msg, "object changed while hashing"), "%s", err.msg);
    src->ops->stream_close(src, st);
    source_free(src);
}
END_TEST

START_TEST(test_version_pins)
{
    /* HEAD of one version, and reads of it: ?versionId=, encoded; S3's "null" is no pin */
    fakehttp_add_ex(awsfix.fake, "HEAD", "/bucket/obj?versionId=v%2B1.x_y", 200,
                    "ETag: \"e1\"\r\nContent-Length: 10\r\nx-amz-version-id: v+1.x_y\r\n", NULL);
    fakehttp_add_ex(awsfix.fake, "HEAD", "/bucket/obj", 200,
                    "ETag: \"e2\"\r\nContent-Length: 4\r\nx-amz-version-id: null\r\n", NULL);
    fakehttp_add(awsfix.fake, "HEAD", "/bucket/obj?versionId=gone", 404, NULL);
    fakehttp_add_ex(awsfix.fake, "GET", "/bucket/obj?versionId=v%2B1.x_y", 206, "ETag: \"e1\"\r\n",
                    "0123456789");
    struct s3_object o;
    err_t err = {0};
    ck_assert_msg(s3_head_version(s3, "bucket", "obj", "v+1.x_y", &o, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(o.etag, "e1");
    ck_assert_str_eq(o.version_id, "v+1.x_y");
    ck_assert_msg(s3_head_version(s3, "bucket", "obj", "null", &o, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(o.etag, "e2");
    ck_assert_int_eq(s3_head_version(s3, "bucket", "obj", "gone", &o, &err), ENOENT);

    struct store *st = store_s3_new(s3);
    struct store_object so = {.size = 10};
    uint8_t buf[10];
    ck_assert_ptr_nonnull(st);
    strcpy(so.etag, "e1");
    strcpy(so.version_id, "v+1.x_y");
    ck_assert_msg(store_read_at(st, "bucket", "obj", &so, 0, buf, 10, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(memcmp(buf, "0123456789", 10), 0);
    const struct fakehttp_request *r = fakehttp_request(awsfix.fake, 3);
    ck_assert_str_eq(r->path, "/bucket/obj?versionId=v%2B1.x_y");
    ck_assert_str_eq(fakehttp_header(r, "if-match"), "\"e1\"");
    store_free(st);
}
END_TEST

/* ---- presigned GET URLs (serve --redirect) ---- */

/* AWS's published presign example (sig-v4-authenticating-requests, "Query string
 * authentication"): keys, time and expected signature as the page prints them. */
#define EX_KEY_ID "AKIAIOSFODNN7EXAMPLE"
#define EX_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EX_TOKEN  "FQoGZXIvYXdzE/a+b%c=="

static time_t ex_now(void)
{
    return 1369353600; /* 2013-05-24T00:00:00Z */
}

static const char *ex_env(const char *name)
{
    if (strcmp(name, "AWS_ACCESS_KEY_ID") == 0)
        return EX_KEY_ID;
    if (strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0)
        return EX_SECRET;
    return NULL;
}

static const char *ex_env_token(const char *name)
{
    return strcmp(name, "AWS_SESSION_TOKEN") == 0 ? EX_TOKEN : ex_env(name);
}

/* A client of endpoint (addressing forced) signing with the example keys at ex_now. */
static struct s3_client *ex_client(const char *endpoint, enum s3_addressing addressing,
                                   struct cred_chain *creds, bool no_sign)
{
    struct s3_config cfg = {.endpoint = endpoint,
                            .region = "us-east-1",
                            .addressing = addressing,
                            .http = awsfix.http,
                            .creds = creds,
                            .no_sign = no_sign,
                            .now = ex_now};
    struct s3_client *c;
    err_t err = {0};
    ck_assert_msg(s3_client_new(&cfg, &c, &err) == 0, "%s", err.msg);
    return c;
}

static char *presign(struct s3_client *c, const char *bucket, const char *key, const char *version,
                     unsigned expires)
{
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1u << 16);
    ck_assert_msg(s3_presign_get(c, bucket, key, version, expires, &b, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(b.data[b.len - 1], '\0');
    return (char *)b.data; /* the caller frees it */
}

START_TEST(test_presign_published)
{
    struct cred_chain_opts co = {.getenv = ex_env, .http = awsfix.http};
    struct cred_chain *creds = cred_chain_new(&co);
    struct s3_client *c =
        ex_client("https://s3.amazonaws.com", S3_ADDRESSING_VIRTUAL, creds, false);
    static const char want[] =
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
    char *u = presign(c, "examplebucket", "test.txt", NULL, 86400);
    ck_assert_str_eq(u, want);
    free(u);
    /* S3's "null" version is the current one: no pin, the same URL */
    u = presign(c, "examplebucket", "test.txt", "null", 86400);
    ck_assert_str_eq(u, want);
    free(u);
    /* SigV4's bounds: 1 second to 7 days */
    struct buf b;
    err_t err = {0};
    buf_init(&b, 1u << 16);
    ck_assert_int_eq(s3_presign_get(c, "examplebucket", "test.txt", NULL, 0, &b, &err), EINVAL);
    ck_assert_int_eq(s3_presign_get(c, "examplebucket", "test.txt", NULL, 604801, &b, &err),
                     EINVAL);
    ck_assert_ptr_null(strstr(err.msg, "X-Amz"));
    buf_free(&b);
    s3_client_free(c);
    /* an anonymous client (public buckets) hands out the plain URL */
    c = ex_client("https://s3.amazonaws.com", S3_ADDRESSING_VIRTUAL, NULL, true);
    u = presign(c, "examplebucket", "test.txt", "v1", 60);
    ck_assert_str_eq(u, "https://examplebucket.s3.amazonaws.com/test.txt?versionId=v1");
    free(u);
    s3_client_free(c);
    cred_chain_free(creds);
}
END_TEST

/* Odd keys and version ids, path-style, with a session token: the URL's path and query are
 * exactly the encoded key and version, and its signature is the one of that wire path and
 * query (signed again here from the URL's own path as sent), so what is sent is what was
 * signed. */
static const struct {
    const char *key, *version;
    const char *want; /* the URL up to the X-Amz-* parameters */
} presign_cases[] = {
    {"a b+c%d.bin", NULL, "http://127.0.0.1:9/media/a%20b%2Bc%25d.bin?"},
    {"dir/\xc3\xbc ber/\xe2\x82\xac.mkv", "3sL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY/MT=",
     "http://127.0.0.1:9/media/dir/%C3%BC%20ber/%E2%82%AC.mkv"
     "?versionId=3sL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY%2FMT%3D&"},
    {"a//b/./c?d#e&f=g", "null", "http://127.0.0.1:9/media/a//b/./c%3Fd%23e%26f%3Dg?"},
    {"~x_y-z.0", "v1", "http://127.0.0.1:9/media/~x_y-z.0?versionId=v1&"},
};

START_TEST(test_presign_odd_keys)
{
    struct cred_chain_opts co = {.getenv = ex_env_token, .http = awsfix.http};
    struct cred_chain *creds = cred_chain_new(&co);
    struct s3_client *c = ex_client("http://127.0.0.1:9", S3_ADDRESSING_AUTO, creds, false);
    const char *key = presign_cases[_i].key, *version = presign_cases[_i].version;
    char *u = presign(c, "media", key, version, 300);
    const char *want = presign_cases[_i].want;
    ck_assert_msg(strncmp(u, want, strlen(want)) == 0, "%s", u);
    const char *x = u + strlen(want);
    ck_assert_msg(strncmp(x,
                          "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" EX_KEY_ID
                          "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                          "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=300"
                          "&X-Amz-SignedHeaders=host"
                          "&X-Amz-Security-Token=FQoGZXIvYXdzE%2Fa%2Bb%25c%3D%3D"
                          "&X-Amz-Signature=",
                          (size_t)(strchr(x, '\0') - x) - 64) == 0,
                  "%s", x);
    ck_assert_ptr_null(strstr(u, EX_SECRET));

    /* sign the wire path again, as S3 would see it */
    char *path = strndup(u + strlen("http://127.0.0.1:9"), strcspn(u + 18, "?"));
    struct sigv4_pair host = {"Host", "127.0.0.1:9"};
    struct sigv4_pair q[1] = {{"versionId", version}};
    bool pinned = version && strcmp(version, "null") != 0;
    struct sigv4_request req = {.method = "GET",
                                .path = path,
                                .query = q,
                                .nquery = pinned ? 1 : 0,
                                .headers = &host,
                                .nheaders = 1,
                                .payload_hash = SIGV4_UNSIGNED_PAYLOAD};
    struct sigv4_signer sg = {.creds = {EX_KEY_ID, EX_SECRET, EX_TOKEN},
                              .region = "us-east-1",
                              .service = "s3",
                              .now = ex_now(),
                              .opt = SIGV4_OPTIONS_S3};
    struct sigv4_result res;
    err_t err = {0};
    ck_assert_msg(sigv4_presign(&sg, &req, 300, &res, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(x, res.query);
    sigv4_result_free(&res);
    free(path);
    free(u);
    s3_client_free(c);
    cred_chain_free(creds);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("s3");
    TCase *tc = tcase_create("client");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_addressing);
    tcase_add_test(tc, test_parse_uri);
    tcase_add_test(tc, test_head_signed_and_parsed);
    tcase_add_loop_test(tc, test_head_version_id, 0,
                        (int)(sizeof(version_cases) / sizeof(version_cases[0])));
    tcase_add_test(tc, test_retries_throttling_then_success);
    tcase_add_test(tc, test_no_retry_on_client_errors);
    tcase_add_test(tc, test_attempts_are_bounded);
    tcase_add_test(tc, test_put_with_metadata);
    tcase_add_test(tc, test_range_source_pins_etag);
    tcase_add_test(tc, test_version_pins);
    tcase_add_test(tc, test_presign_published);
    tcase_add_loop_test(tc, test_presign_odd_keys, 0,
                        (int)(sizeof(presign_cases) / sizeof(presign_cases[0])));
    suite_add_tcase(s, tc);
    return tu_run(s);
}
