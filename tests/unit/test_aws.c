/* test_aws.c — the signed request S3 and DynamoDB share, against a scripted local HTTP server:
 * what is retried (5xx, throttling, cut connections, a body that broke off) and what is not
 * (other 4xx, a judge's final answer), a fresh signature on every attempt, anonymous requests,
 * and the one table of AWS error codes with its hints. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "awsfix.h"
#include "s3torrent/aws.h"
#include "testutil.h"

static struct aws *aws;
static time_t clock_now = 1440938160; /* 2015-08-30T12:36:00Z, moved by tests */

static time_t fake_now(void)
{
    return clock_now++; /* every attempt signs at a later second */
}

static struct aws *make(struct cred_chain *creds)
{
    struct aws_config cfg = {
        .http = awsfix.http,
        .creds = creds,
        .region = "eu-west-1",
        .service = "dynamodb",
        .opt = SIGV4_OPTIONS_GENERIC,
        .trace_id = "Root=1-abc",
        .now = fake_now,
        .random = awsfix_half,
        .sleep_ms = awsfix_record_sleep,
    };
    struct aws *a;
    err_t err = {0};
    ck_assert_msg(aws_new(&cfg, &a, &err) == 0, "%s", err.msg);
    return a;
}

static void setup(void)
{
    awsfix_setup();
    aws = make(awsfix.creds);
}

static void teardown(void)
{
    aws_free(aws);
    awsfix_teardown();
}

static struct aws_request request(const char *url)
{
    static char host[64];
    snprintf(host, sizeof(host), "127.0.0.1:%d", fakehttp_port(awsfix.fake));
    struct aws_request r = {
        .method = "POST",
        .url = url,
        .host = host,
        .path = "/",
        .body = "{}",
        .body_len = 2,
        .attempts = 3,
        .what = "Test op",
    };
    return r;
}

static char url[128];

static const char *root(void)
{
    snprintf(url, sizeof(url), "%s/", fakehttp_url(awsfix.fake));
    return url;
}

/* A judge as a service would write one: the X-Test-Code header is the error code. */
static int judge(void *ctx, struct http_stream *hs, bool *retry, err_t *err)
{
    (void)ctx;
    const char *code = http_stream_header(hs, "x-test-code");
    int rc = aws_error_errno((int)http_stream_status(hs), code, retry);
    return err_set(err, rc, "Test op: %s%s", code ? code : "none", aws_error_hint(code));
}

START_TEST(test_success_hands_the_stream_over)
{
    fakehttp_add(awsfix.fake, "POST", "/", 200, "hello");
    struct aws_request r = request(root());
    struct http_stream *hs = NULL;
    err_t err = {0};
    ck_assert_msg(aws_send(aws, &r, &hs, &err) == 0, "%s", err.msg);
    ck_assert_ptr_nonnull(hs);
    ck_assert_int_eq(http_stream_status(hs), 200);
    http_stream_close(hs);
    const struct fakehttp_request *q = fakehttp_request(awsfix.fake, 0);
    ck_assert_ptr_nonnull(
        strstr(fakehttp_header(q, "authorization"),
               "Credential=AKIDEXAMPLE/20150830/eu-west-1/dynamodb/aws4_request"));
    ck_assert_str_eq(fakehttp_header(q, "x-amzn-trace-id"), "Root=1-abc");
    ck_assert_uint_eq(awsfix.nsleeps, 0);
}
END_TEST

START_TEST(test_retry_classification)
{
    static const struct {
        int status;
        const char *code; /* X-Test-Code, NULL for none */
        bool judged;      /* through the judge, else the default */
        bool retried;
        int errnum;
    } cases[] = {
        {500, NULL, false, true, EIO},
        {502, NULL, false, true, EIO},
        {503, NULL, false, true, EAGAIN},
        {429, NULL, false, true, EAGAIN},
        {408, NULL, false, true, ETIMEDOUT},
        {501, NULL, false, false, ENOSYS},
        {400, NULL, false, false, EINVAL},
        {403, NULL, false, false, EACCES},
        {404, NULL, false, false, ENOENT},
        {400, "ThrottlingException", true, true, EAGAIN},
        {400, "ProvisionedThroughputExceededException", true, true, EAGAIN},
        {503, "SlowDown", true, true, EAGAIN},
        {500, "InternalError", true, true, EIO},
        {400, "RequestTimeout", true, true, ETIMEDOUT},
        {400, "ConditionalCheckFailedException", true, false, EEXIST},
        {400, "ValidationException", true, false, EINVAL},
        {403, "SignatureDoesNotMatch", true, false, EACCES},
        {403, "RequestTimeTooSkewed", true, false, ETIME},
        {412, "PreconditionFailed", true, false, ESTALE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[32], hdr[128];
        snprintf(path, sizeof(path), "/case%zu", i);
        snprintf(hdr, sizeof(hdr), "X-Test-Code: %s\r\n", cases[i].code ? cases[i].code : "");
        fakehttp_add_ex(awsfix.fake, "POST", path, cases[i].status, cases[i].code ? hdr : NULL, "");
        char u[160];
        snprintf(u, sizeof(u), "%s%s", fakehttp_url(awsfix.fake), path);
        struct aws_request r = request(u);
        r.path = path;
        r.fail = cases[i].judged ? judge : NULL;
        size_t before = fakehttp_count(awsfix.fake);
        awsfix.nsleeps = 0;
        err_t err = {0};
        int rc = aws_send(aws, &r, &(struct http_stream *){NULL}, &err);
        size_t sent = fakehttp_count(awsfix.fake) - before;
        ck_assert_msg(rc == cases[i].errnum, "case %zu: errno %d, want %d (%s)", i, rc,
                      cases[i].errnum, err.msg);
        ck_assert_msg(sent == (cases[i].retried ? 3u : 1u), "case %zu: %zu requests", i, sent);
        ck_assert_uint_eq(awsfix.nsleeps, cases[i].retried ? 2 : 0);
        ck_assert_msg(strchr(err.msg, '\n') == NULL, "case %zu: %s", i, err.msg);
        if (cases[i].retried)
            ck_assert_msg(strncmp(err.msg, "after 3 attempts: Test op: ", 27) == 0, "%s", err.msg);
        else
            ck_assert_msg(strncmp(err.msg, "Test op: ", 9) == 0, "%s", err.msg);
    }
}
END_TEST

START_TEST(test_every_attempt_signed_afresh)
{
    fakehttp_add(awsfix.fake, "POST", "/", 0, NULL); /* closed without an answer */
    fakehttp_add(awsfix.fake, "POST", "/", 503, "");
    fakehttp_add(awsfix.fake, "POST", "/", 200, "");
    struct aws_request r = request(root());
    struct http_stream *hs = NULL;
    err_t err = {0};
    ck_assert_msg(aws_send(aws, &r, &hs, &err) == 0, "%s", err.msg);
    http_stream_close(hs);
    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 3);
    /* full jitter at 0.5: half of 100 ms * 2^attempt */
    ck_assert_uint_eq(awsfix.nsleeps, 2);
    ck_assert_int_eq(awsfix.sleeps[0], 100);
    ck_assert_int_eq(awsfix.sleeps[1], 200);
    const char *d0 = fakehttp_header(fakehttp_request(awsfix.fake, 0), "x-amz-date");
    const char *d2 = fakehttp_header(fakehttp_request(awsfix.fake, 2), "x-amz-date");
    ck_assert_str_ne(d0, d2);
    ck_assert_str_ne(fakehttp_header(fakehttp_request(awsfix.fake, 0), "authorization"),
                     fakehttp_header(fakehttp_request(awsfix.fake, 2), "authorization"));
}
END_TEST

START_TEST(test_transport_error_names_the_request)
{
    struct aws_request r = request("http://127.0.0.1:1/");
    err_t err = {0};
    ck_assert_int_eq(aws_send(aws, &r, &(struct http_stream *){NULL}, &err), ECONNREFUSED);
    ck_assert_msg(strncmp(err.msg, "after 3 attempts: Test op: ", 27) == 0, "%s", err.msg);
    ck_assert_uint_eq(awsfix.nsleeps, 2);
}
END_TEST

/* An ok reader that fails like a body cut short the first time, then reads. */
static int flaky_reader(void *ctx, struct http_stream *hs, bool *retry, err_t *err)
{
    int *calls = ctx;
    struct buf b;
    buf_init(&b, 1024);
    int rc = http_stream_read_all(hs, &b, err);
    buf_free(&b);
    if (rc == 0 && (*calls)++ == 0) {
        *retry = http_transport_retryable(EPIPE);
        return err_set(err, EPIPE, "Test op: body ended early");
    }
    return rc;
}

START_TEST(test_ok_reader_errors_retried)
{
    int calls = 0;
    fakehttp_add(awsfix.fake, "POST", "/", 200, "body");
    struct aws_request r = request(root());
    r.ok = flaky_reader;
    r.ctx = &calls;
    err_t err = {0};
    ck_assert_msg(aws_send(aws, &r, NULL, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(calls, 2);
    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 2);
}
END_TEST

START_TEST(test_anonymous_unsigned)
{
    struct aws *anon = make(NULL);
    fakehttp_add(awsfix.fake, "POST", "/", 200, "");
    struct aws_request r = request(root());
    struct http_stream *hs = NULL;
    err_t err = {0};
    ck_assert_msg(aws_send(anon, &r, &hs, &err) == 0, "%s", err.msg);
    http_stream_close(hs);
    const struct fakehttp_request *q = fakehttp_request(awsfix.fake, 0);
    ck_assert_ptr_null(fakehttp_header(q, "authorization"));
    ck_assert_ptr_null(fakehttp_header(q, "x-amz-date"));
    aws_free(anon);
}
END_TEST

START_TEST(test_table_and_hints)
{
    bool retry = true;
    ck_assert_int_eq(aws_error_errno(400, "ThrottlingSomethingNew", &retry), EAGAIN);
    ck_assert(retry);
    ck_assert_int_eq(aws_error_errno(200, "NoSuchKey", &retry), ENOENT);
    ck_assert(!retry);
    ck_assert_int_eq(aws_error_errno(599, "", &retry), EIO);
    ck_assert(retry);
    ck_assert_int_eq(aws_error_errno(418, NULL, NULL), EIO);
    /* the same hint whichever service said it */
    ck_assert_str_eq(aws_error_hint("InvalidAccessKeyId"),
                     aws_error_hint("UnrecognizedClientException"));
    ck_assert_str_eq(aws_error_hint("SignatureDoesNotMatch"),
                     aws_error_hint("InvalidSignatureException"));
    ck_assert_str_eq(aws_error_hint("ExpiredToken"), aws_error_hint("ExpiredTokenException"));
    ck_assert(strncmp(aws_error_hint("ExpiredToken"), "; ", 2) == 0);
    ck_assert_str_eq(aws_error_hint("NoSuchKey"), "");
    ck_assert_str_eq(aws_error_hint(NULL), "");
    ck_assert_str_eq(aws_error_hint("SomethingNew"), "");
}
END_TEST

START_TEST(test_date_skew)
{
    fakehttp_add_ex(awsfix.fake, "POST", "/", 200, "Date: Sun, 30 Aug 2015 12:36:00 GMT\r\n", "");
    struct aws_request r = request(root());
    struct http_stream *hs = NULL;
    err_t err = {0};
    ck_assert_msg(aws_send(aws, &r, &hs, &err) == 0, "%s", err.msg);
    int64_t server = 0;
    ck_assert(!aws_date_skewed(hs, 1440938160 + 15 * 60, &server));
    ck_assert_int_eq(server, 1440938160);
    ck_assert(aws_date_skewed(hs, 1440938160 + 15 * 60 + 1, NULL));
    ck_assert(aws_date_skewed(hs, 1440938160 - 3600, NULL));
    http_stream_close(hs);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("aws");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_success_hands_the_stream_over);
    tcase_add_test(tc, test_retry_classification);
    tcase_add_test(tc, test_every_attempt_signed_afresh);
    tcase_add_test(tc, test_transport_error_names_the_request);
    tcase_add_test(tc, test_ok_reader_errors_retried);
    tcase_add_test(tc, test_anonymous_unsigned);
    tcase_add_test(tc, test_table_and_hints);
    tcase_add_test(tc, test_date_skew);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
