/* test_ddb.c — the DynamoDB client against a scripted local HTTP server: the request on the wire
 * (POST /, target, content type, SigV4 scope), error bodies mapped to errno and retry, the
 * standard retry mode with injected backoff, ConditionalCheckFailed as an answer, the body cap. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awsfix.h"
#include "s3torrent/aws.h"
#include "s3torrent/ddb.h"
#include "testutil.h"

static struct ddb_client *ddb;

static time_t fixed_now(void)
{
    return 1440938160; /* 2015-08-30T12:36:00Z */
}

static struct ddb_client *client(const char *endpoint, const char *region)
{
    struct ddb_config cfg = {
        .endpoint = endpoint,
        .region = region,
        .http = awsfix.http,
        .creds = awsfix.creds,
        .now = fixed_now,
        .random = awsfix_half,
        .sleep_ms = awsfix_record_sleep,
    };
    struct ddb_client *c;
    err_t err = {0};
    ck_assert_msg(ddb_client_new(&cfg, &c, &err) == 0, "%s", err.msg);
    return c;
}

static void setup(void)
{
    awsfix_setup();
    ddb = client(fakehttp_url(awsfix.fake), "eu-west-1");
}

static void teardown(void)
{
    ddb_client_free(ddb);
    awsfix_teardown();
}

static const char *fixture(const char *name)
{
    static char text[4096];
    char rel[256];
    size_t len;
    snprintf(rel, sizeof(rel), "fixtures/%s", name);
    uint8_t *d = tu_read_data(rel, &len);
    ck_assert_uint_lt(len, sizeof(text));
    memcpy(text, d, len);
    text[len] = '\0';
    free(d);
    return text;
}

/* {"TableName": "T", "Item": {"k": {"S": "s3://b/k"}, "n": {"N": "42"}, "ok": {"BOOL": true}}} */
static json_object *put_request(void)
{
    json_object *req = json_object_new_object(), *item = json_object_new_object();
    ck_assert_int_eq(ddb_add(item, "k", ddb_s("s3://b/k")), 0);
    ck_assert_int_eq(ddb_add(item, "n", ddb_n_u64(42)), 0);
    ck_assert_int_eq(ddb_add(item, "neg", ddb_n_i64(-7)), 0);
    ck_assert_int_eq(ddb_add(item, "ok", ddb_bool(true)), 0);
    ck_assert_int_eq(ddb_add(req, "TableName", json_object_new_string("T")), 0);
    ck_assert_int_eq(ddb_add(req, "Item", item), 0);
    return req;
}

START_TEST(test_attribute_values)
{
    json_object *req = put_request();
    ck_assert_str_eq(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN),
                     "{\"TableName\":\"T\",\"Item\":{\"k\":{\"S\":\"s3:\\/\\/b\\/k\"},"
                     "\"n\":{\"N\":\"42\"},\"neg\":{\"N\":\"-7\"},\"ok\":{\"BOOL\":true}}}");
    json_object *item;
    ck_assert(json_object_object_get_ex(req, "Item", &item));
    ck_assert_str_eq(ddb_item_s(item, "k"), "s3://b/k");
    ck_assert_ptr_null(ddb_item_s(item, "n"));
    int64_t v;
    ck_assert_int_eq(ddb_item_i64(item, "n", &v), 0);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(ddb_item_i64(item, "neg", &v), 0);
    ck_assert_int_eq(v, -7);
    ck_assert_int_eq(ddb_item_i64(item, "k", &v), EPROTO);
    ck_assert_int_eq(ddb_item_i64(item, "missing", &v), ENOENT);
    ck_assert_int_eq(ddb_add(item, "x", NULL), ENOMEM);
    json_object_put(req);
}
END_TEST

START_TEST(test_request_shape)
{
    fakehttp_add(awsfix.fake, "POST", "/", 200, "{}");
    json_object *req = put_request(), *resp = NULL;
    err_t err = {0};
    ck_assert_msg(ddb_call(ddb, "PutItem", req, &resp, &err) == 0, "%s", err.msg);
    ck_assert_ptr_nonnull(resp);
    ck_assert_int_eq(json_object_object_length(resp), 0);
    json_object_put(resp);

    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 1);
    const struct fakehttp_request *r = fakehttp_request(awsfix.fake, 0);
    ck_assert_str_eq(r->method, "POST");
    ck_assert_str_eq(r->path, "/");
    ck_assert_str_eq(fakehttp_header(r, "x-amz-target"), "DynamoDB_20120810.PutItem");
    ck_assert_str_eq(fakehttp_header(r, "content-type"), "application/x-amz-json-1.0");
    ck_assert_str_eq(fakehttp_header(r, "x-amz-date"), "20150830T123600Z");
    ck_assert_ptr_null(fakehttp_header(r, "x-amz-security-token"));
    ck_assert_uint_eq(r->body_len,
                      strlen(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN)));
    const char *auth = fakehttp_header(r, "authorization");
    ck_assert_ptr_nonnull(auth);
    const char *want = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/dynamodb/"
                       "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
                       "Signature=";
    ck_assert_msg(strncmp(auth, want, strlen(want)) == 0, "%s", auth);
    ck_assert_uint_eq(strlen(auth), strlen(want) + 64);
    json_object_put(req);

    /* a NULL response pointer discards the answer; bad operation names never go out */
    ck_assert_int_eq(ddb_call(ddb, "DescribeTable", NULL, NULL, &err), 0);
    ck_assert_int_eq(ddb_call(ddb, "Put Item", NULL, NULL, &err), EINVAL);
    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 2);
}
END_TEST

START_TEST(test_endpoints)
{
    struct ddb_client *c;
    err_t err = {0};
    struct ddb_config cfg = {.endpoint = "ftp://x", .http = awsfix.http, .creds = awsfix.creds};
    ck_assert_int_eq(ddb_client_new(&cfg, &c, &err), EINVAL);
    ck_assert_msg(strstr(err.msg, "http:// or https://") != NULL, "%s", err.msg);
    cfg.endpoint = "http://127.0.0.1:1/x";
    ck_assert_int_eq(ddb_client_new(&cfg, &c, &err), EINVAL);
    /* AWS_ENDPOINT_URL_DYNAMODB comes before AWS_ENDPOINT_URL */
    fakehttp_add(awsfix.fake, "POST", "/", 200, "{\"TableNames\":[]}");
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
    char url[128];
    snprintf(url, sizeof(url), "%s/", fakehttp_url(awsfix.fake));
    setenv("AWS_ENDPOINT_URL_DYNAMODB", url, 1);
    cfg.endpoint = NULL;
    ck_assert_int_eq(ddb_client_new(&cfg, &c, &err), 0);
    ck_assert_msg(ddb_call(c, "ListTables", NULL, NULL, &err) == 0, "%s", err.msg);
    ddb_client_free(c);
    unsetenv("AWS_ENDPOINT_URL_DYNAMODB");
    unsetenv("AWS_ENDPOINT_URL");
    setenv("AWS_MAX_ATTEMPTS", "many", 1);
    ck_assert_int_eq(ddb_client_new(&cfg, &c, &err), EINVAL);
    unsetenv("AWS_MAX_ATTEMPTS");
}
END_TEST

START_TEST(test_error_fixtures)
{
    struct ddb_error de;
    bool retry = false;
    const char *pt = fixture("ddb-error-provisioned-throughput.json");
    ck_assert_int_eq(ddb_parse_error(pt, strlen(pt), &de, NULL), 0);
    ck_assert_str_eq(de.code, "ProvisionedThroughputExceededException");
    ck_assert_msg(strncmp(de.message, "The level of configured", 23) == 0, "%s", de.message);
    ck_assert_int_eq(aws_error_errno(400, de.code, &retry), EAGAIN);
    ck_assert(retry);

    const char *cc = fixture("ddb-error-conditional-check.json");
    ck_assert_int_eq(ddb_parse_error(cc, strlen(cc), &de, NULL), 0);
    ck_assert_str_eq(de.code, "ConditionalCheckFailedException");
    ck_assert_str_eq(de.message, "The conditional request failed");
    retry = true;
    ck_assert_int_eq(aws_error_errno(400, de.code, &retry), EEXIST);
    ck_assert(!retry);
}
END_TEST

/* The mapping, table-driven: (status, code) -> (errno, retry). */
START_TEST(test_error_mapping)
{
    static const struct {
        int status;
        const char *code;
        int errnum;
        bool retry;
    } cases[] = {
        {400, "ProvisionedThroughputExceededException", EAGAIN, true},
        {400, "ThrottlingException", EAGAIN, true},
        {400, "RequestLimitExceeded", EAGAIN, true},
        {500, "InternalServerError", EIO, true},
        {503, "ServiceUnavailable", EAGAIN, true},
        {500, NULL, EIO, true},
        {502, "", EIO, true},
        {400, "ConditionalCheckFailedException", EEXIST, false},
        {400, "ResourceNotFoundException", ENOENT, false},
        {400, "ResourceInUseException", EBUSY, false},
        {400, "ValidationException", EINVAL, false},
        {400, "AccessDeniedException", EACCES, false},
        {400, "UnrecognizedClientException", EACCES, false},
        {400, "InvalidSignatureException", EACCES, false},
        {400, "SomethingNew", EINVAL, false},
        {403, NULL, EACCES, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool retry = !cases[i].retry;
        int e = aws_error_errno(cases[i].status, cases[i].code, &retry);
        ck_assert_msg(e == cases[i].errnum && retry == cases[i].retry, "case %zu (%s): %d %d", i,
                      cases[i].code ? cases[i].code : "-", e, retry);
    }
}
END_TEST

START_TEST(test_parse_rejections)
{
    static const char *bad[] = {
        "", "[]", "{\"a\":1} x", "{\"a\":", "{\"a\":1,}", "\"s\"", "{\"a\":\"\xff\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_object *doc = NULL;
        err_t err = {0};
        ck_assert_msg(ddb_parse_body(bad[i], strlen(bad[i]), &doc, &err) == EPROTO, "case %zu", i);
        ck_assert_ptr_null(doc);
        ck_assert(err.msg[0] != '\0' && strchr(err.msg, '\n') == NULL);
    }
    /* a code without a namespace, a message with a newline, a code with a trailing URL */
    struct ddb_error de;
    const char *e1 = "{\"__type\":\"ValidationException\",\"Message\":\"two\\nlines\"}";
    ck_assert_int_eq(ddb_parse_error(e1, strlen(e1), &de, NULL), 0);
    ck_assert_str_eq(de.code, "ValidationException");
    ck_assert_str_eq(de.message, "two?lines");
    const char *e2 = "{\"__type\":\"a.b#c#ThrottlingException:http://internal/\"}";
    ck_assert_int_eq(ddb_parse_error(e2, strlen(e2), &de, NULL), 0);
    ck_assert_str_eq(de.code, "ThrottlingException");
    ck_assert_str_eq(de.message, "");
}
END_TEST

START_TEST(test_retry_throttling_then_success)
{
    const char *pt = fixture("ddb-error-provisioned-throughput.json");
    fakehttp_add(awsfix.fake, "POST", "/", 400, pt);
    fakehttp_add(awsfix.fake, "POST", "/", 400, pt);
    fakehttp_add(awsfix.fake, "POST", "/", 200, "{\"Attributes\":{\"n\":{\"N\":\"3\"}}}");
    json_object *req = put_request(), *resp = NULL;
    err_t err = {0};
    ck_assert_msg(ddb_call(ddb, "UpdateItem", req, &resp, &err) == 0, "%s", err.msg);
    json_object *attrs;
    ck_assert(json_object_object_get_ex(resp, "Attributes", &attrs));
    int64_t n;
    ck_assert_int_eq(ddb_item_i64(attrs, "n", &n), 0);
    ck_assert_int_eq(n, 3);
    json_object_put(resp);
    json_object_put(req);
    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 3);
    /* full jitter: random 0.5 of 100 ms * 2^attempt */
    ck_assert_uint_eq(awsfix.nsleeps, 2);
    ck_assert_int_eq(awsfix.sleeps[0], 100);
    ck_assert_int_eq(awsfix.sleeps[1], 200);
    ck_assert_uint_eq(atomic_load(&ddb_counters(ddb)->retries), 2);
    /* each attempt is signed afresh */
    for (size_t i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(fakehttp_header(fakehttp_request(awsfix.fake, i), "authorization"));
}
END_TEST

START_TEST(test_attempts_are_bounded)
{
    fakehttp_add_ex(awsfix.fake, "POST", "/", 400, "x-amzn-RequestId: RID7\r\n",
                    fixture("ddb-error-provisioned-throughput.json"));
    json_object *req = put_request();
    err_t err = {0};
    ck_assert_int_eq(ddb_call(ddb, "PutItem", req, NULL, &err), EAGAIN);
    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 3);
    const char *want = "after 3 attempts: DynamoDB PutItem on table T: "
                       "ProvisionedThroughputExceededException: The level of";
    ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "(request id RID7)") != NULL, "%s", err.msg);
    json_object_put(req);
}
END_TEST

START_TEST(test_conditional_check_is_an_answer)
{
    fakehttp_add(awsfix.fake, "POST", "/", 400, fixture("ddb-error-conditional-check.json"));
    json_object *req = put_request(), *resp = NULL;
    err_t err = {0};
    ck_assert_int_eq(ddb_call(ddb, "PutItem", req, &resp, &err), EEXIST);
    ck_assert_ptr_null(resp);
    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 1);
    ck_assert_uint_eq(awsfix.nsleeps, 0);
    ck_assert_str_eq(err.msg, "DynamoDB PutItem on table T: ConditionalCheckFailedException: "
                              "The conditional request failed");
    json_object_put(req);
}
END_TEST

START_TEST(test_client_errors_not_retried)
{
    fakehttp_add(awsfix.fake, "POST", "/", 400,
                 "{\"__type\":\"com.amazon.coral.validate#ValidationException\","
                 "\"message\":\"One or more parameter values were invalid\"}");
    json_object *req = put_request();
    err_t err = {0};
    ck_assert_int_eq(ddb_call(ddb, "PutItem", req, NULL, &err), EINVAL);
    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 1);
    ck_assert_str_eq(err.msg, "DynamoDB PutItem on table T: ValidationException: One or more "
                              "parameter values were invalid");
    json_object_put(req);
}
END_TEST

START_TEST(test_5xx_and_transport_retried)
{
    fakehttp_add(awsfix.fake, "POST", "/", 0, NULL); /* connection closed without an answer */
    fakehttp_add(awsfix.fake, "POST", "/", 502, "<html>bad gateway</html>");
    fakehttp_add(awsfix.fake, "POST", "/", 200, "{}");
    json_object *req = put_request();
    err_t err = {0};
    ck_assert_msg(ddb_call(ddb, "PutItem", req, NULL, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 3);
    ck_assert_uint_eq(awsfix.nsleeps, 2);
    json_object_put(req);

    /* nobody listening: a transport error, retried, then reported with the operation */
    struct ddb_client *gone = client("http://127.0.0.1:1", "us-east-1");
    req = put_request();
    ck_assert_int_eq(ddb_call(gone, "PutItem", req, NULL, &err), ECONNREFUSED);
    ck_assert_msg(strstr(err.msg, "after 3 attempts: DynamoDB PutItem on table T: ") == err.msg,
                  "%s", err.msg);
    json_object_put(req);
    ddb_client_free(gone);
}
END_TEST

START_TEST(test_body_cap)
{
    size_t n = DDB_RESPONSE_MAX + 16;
    char *big = malloc(n + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', n);
    memcpy(big, "{\"a\":\"", 6);
    big[n - 2] = '"';
    big[n - 1] = '}';
    big[n] = '\0';
    fakehttp_add(awsfix.fake, "POST", "/", 200, big);
    json_object *req = put_request(), *resp = NULL;
    err_t err = {0};
    ck_assert_int_eq(ddb_call(ddb, "GetItem", req, &resp, &err), EFBIG);
    ck_assert_ptr_null(resp);
    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 1); /* not retried */
    ck_assert_msg(strstr(err.msg, "DynamoDB GetItem on table T") == err.msg, "%s", err.msg);
    /* the parser has the same cap */
    json_object *doc = NULL;
    ck_assert_int_eq(ddb_parse_body(big, n, &doc, NULL), EFBIG);
    free(big);
    json_object_put(req);

    /* and a 200 that is not JSON is a protocol error, not retried */
    fakehttp_stop(awsfix.fake);
    awsfix.fake = fakehttp_start();
    ddb_client_free(ddb);
    ddb = client(fakehttp_url(awsfix.fake), "eu-west-1");
    fakehttp_add(awsfix.fake, "POST", "/", 200, "<html/>");
    req = put_request();
    ck_assert_int_eq(ddb_call(ddb, "GetItem", req, NULL, &err), EPROTO);
    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 1);
    json_object_put(req);
}
END_TEST

START_TEST(test_signature_refused_hint_and_clock)
{
    const char *body = "{\"__type\":\"com.amazon.coral.service#InvalidSignatureException\","
                       "\"message\":\"Signature expired: 20150830T123600Z is now earlier than "
                       "20150830T124100Z\"}";
    /* the same refusal with a Date far from the local clock: the clock is at fault */
    fakehttp_add_ex(awsfix.fake, "POST", "/", 400, "Date: Sun, 30 Aug 2015 12:36:00 GMT\r\n", body);
    json_object *req = put_request();
    err_t err = {0};
    ck_assert_int_eq(ddb_call(ddb, "PutItem", req, NULL, &err), ETIME);
    ck_assert_uint_eq(fakehttp_count(awsfix.fake), 1);
    ck_assert_msg(strstr(err.msg, "DynamoDB PutItem on table T: InvalidSignatureException: "
                                  "Signature expired: ") == err.msg,
                  "%s", err.msg);
    ck_assert_msg(strstr(err.msg, " s ahead of the server's: fix the system clock (NTP)"), "%s",
                  err.msg);
    json_object_put(req);
}
END_TEST

START_TEST(test_signature_refused_hint)
{
    fakehttp_add(awsfix.fake, "POST", "/", 400,
                 "{\"__type\":\"com.amazon.coral.service#UnrecognizedClientException\","
                 "\"message\":\"The security token included in the request is invalid.\"}");
    json_object *req = put_request();
    err_t err = {0};
    ck_assert_int_eq(ddb_call(ddb, "PutItem", req, NULL, &err), EACCES);
    ck_assert_str_eq(err.msg, "DynamoDB PutItem on table T: UnrecognizedClientException: The "
                              "security token included in the request is invalid; the access key "
                              "id is unknown to the server: check the credentials in use "
                              "(AWS_ACCESS_KEY_ID, AWS_PROFILE)");
    json_object_put(req);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ddb");
    TCase *tc = tcase_create("client");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_attribute_values);
    tcase_add_test(tc, test_request_shape);
    tcase_add_test(tc, test_endpoints);
    tcase_add_test(tc, test_error_fixtures);
    tcase_add_test(tc, test_error_mapping);
    tcase_add_test(tc, test_parse_rejections);
    tcase_add_test(tc, test_retry_throttling_then_success);
    tcase_add_test(tc, test_attempts_are_bounded);
    tcase_add_test(tc, test_conditional_check_is_an_answer);
    tcase_add_test(tc, test_client_errors_not_retried);
    tcase_add_test(tc, test_5xx_and_transport_retried);
    tcase_add_test(tc, test_body_cap);
    tcase_add_test(tc, test_signature_refused_hint_and_clock);
    tcase_add_test(tc, test_signature_refused_hint);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
