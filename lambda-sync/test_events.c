/* test_events.c — unit tests (check) of the Lambda event parser and responses: every event
 * shape, the form-decoding trap of S3 keys, poisoned SQS messages, Batch result codes. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "testutil.h"

static int parse(const char *s, struct events_batch *b, err_t *err)
{
    return events_parse(s, strlen(s), b, err);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char *d = calloc(1, 1 << 16);
    *len = fread(d, 1, (1 << 16) - 1, f);
    fclose(f);
    return d;
}

static char *respond(const struct events_batch *b, const struct events_outcome *o, bool *fail)
{
    json_object *r;
    ck_assert_int_eq(events_response(b, o, &r, fail), 0);
    char *s = strdup(
        json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(r);
    return s;
}

START_TEST(fixture_key_form_decoded)
{
    size_t len;
    char *d = slurp(S3T_TEST_DATA "/fixtures/s3-event-put-encoded-key.json", &len);
    struct events_batch b;
    err_t err = {0};
    ck_assert_int_eq(events_parse(d, len, &b, &err), 0);
    ck_assert_int_eq(b.kind, EVENTS_S3);
    ck_assert_uint_eq(b.n, 1);
    ck_assert_str_eq(b.items[0].bucket, "examplebucket");
    ck_assert_str_eq(b.items[0].key, "photos/red flower+1 \xc3\xa9t\xc3\xa9.jpg");
    ck_assert_str_eq(b.items[0].etag, "b21b84d653bb07b05b1e6b33684dc11b");
    ck_assert(b.items[0].has_size);
    ck_assert_uint_eq(b.items[0].size, 1305107);
    events_free(&b);
    free(d);
}
END_TEST

static const struct {
    const char *json;
    int rc;
    enum events_kind kind;
    size_t n, ignored;
    const char *key0; /* NULL: item 0 has error set (or no items) */
} cases[] = {
    {"{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectRemoved:Delete\"}]}", 0,
     EVENTS_S3, 0, 1, NULL},
    {"{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\"}", 0, EVENTS_S3, 0, 1, NULL},
    {"{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
     "\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"a%2Fb+c\"}}}]}",
     0, EVENTS_S3, 1, 0, "a/b c"},
    {"{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
     "\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"bad%zz\"}}}]}",
     EINVAL, EVENTS_S3, 0, 0, NULL},
    {"{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
     "\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"x%00\"}}}]}",
     EINVAL, EVENTS_S3, 0, 0, NULL},
    {"{\"version\":\"0\",\"detail-type\":\"Object Created\",\"source\":\"aws.s3\",\"detail\":{"
     "\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"a+b%41\",\"size\":5,\"etag\":\"e\"}}}",
     0, EVENTS_EVENTBRIDGE, 1, 0, "a+b%41"},
    {"{\"version\":\"0\",\"detail-type\":\"Object Deleted\",\"source\":\"aws.s3\"}", 0,
     EVENTS_EVENTBRIDGE, 0, 1, NULL},
    {"{\"invocationSchemaVersion\":\"1.0\",\"invocationId\":\"i\",\"job\":{\"id\":\"j\"},"
     "\"tasks\":[{\"taskId\":\"t\",\"s3Key\":\"a+b%2B\",\"s3BucketArn\":\"arn:aws:s3:::bk\"}]}",
     0, EVENTS_BATCH, 1, 0, "a b+"},
    {"{\"invocationSchemaVersion\":\"2.0\",\"invocationId\":\"i\",\"job\":{\"id\":\"j\"},"
     "\"tasks\":[{\"taskId\":\"t\",\"s3Key\":\"a+b%2B\",\"s3Bucket\":\"bk\"}]}",
     0, EVENTS_BATCH, 1, 0, "a+b%2B"},
    {"{\"invocationSchemaVersion\":\"1.0\",\"invocationId\":\"i\",\"tasks\":[{\"taskId\":\"t\","
     "\"s3Key\":\"k\"}]}",
     0, EVENTS_BATCH, 1, 0, NULL},
    {"{\"invocationSchemaVersion\":\"3.0\",\"invocationId\":\"i\",\"tasks\":[]}", EINVAL, EVENTS_S3,
     0, 0, NULL},
    {"{\"Records\":[{\"eventSource\":\"aws:sqs\",\"messageId\":\"m\",\"body\":\"{]\"}]}", 0,
     EVENTS_SQS, 1, 0, NULL},
    {"{\"Records\":[{\"eventSource\":\"aws:sqs\",\"body\":\"{}\"}]}", EINVAL, EVENTS_S3, 0, 0,
     NULL},
    {"{\"Records\":[{\"eventSource\":\"aws:dynamodb\"}]}", EINVAL, EVENTS_S3, 0, 0, NULL},
    {"[1,2]", EINVAL, EVENTS_S3, 0, 0, NULL},
    {"{} x", EINVAL, EVENTS_S3, 0, 0, NULL},
    {"{\"a\":", EINVAL, EVENTS_S3, 0, 0, NULL},
    {"", EINVAL, EVENTS_S3, 0, 0, NULL},
};

START_TEST(shapes)
{
    struct events_batch b;
    err_t err = {0};
    int rc = parse(cases[_i].json, &b, &err);
    ck_assert_msg(rc == cases[_i].rc, "case %d: rc %d (%s)", _i, rc, err.msg);
    if (rc) {
        ck_assert(err.msg[0] != '\0' && strchr(err.msg, '\n') == NULL);
        ck_assert_uint_eq(b.n, 0);
        return;
    }
    ck_assert_int_eq(b.kind, cases[_i].kind);
    ck_assert_uint_eq(b.n, cases[_i].n);
    ck_assert_uint_eq(b.ignored, cases[_i].ignored);
    if (cases[_i].key0)
        ck_assert_str_eq(b.items[0].key, cases[_i].key0);
    else if (b.n)
        ck_assert_ptr_nonnull(b.items[0].error);
    events_free(&b);
}
END_TEST

START_TEST(sqs_failures_named_once)
{
    const char *ev =
        "{\"Records\":["
        "{\"eventSource\":\"aws:sqs\",\"messageId\":\"m1\",\"body\":\"{\\\"Records\\\":["
        "{\\\"eventSource\\\":\\\"aws:s3\\\",\\\"eventName\\\":\\\"ObjectCreated:Put\\\","
        "\\\"s3\\\":{\\\"bucket\\\":{\\\"name\\\":\\\"b\\\"},\\\"object\\\":{\\\"key\\\":\\\"k1"
        "\\\"}}},"
        "{\\\"eventSource\\\":\\\"aws:s3\\\",\\\"eventName\\\":\\\"ObjectCreated:Put\\\","
        "\\\"s3\\\":{\\\"bucket\\\":{\\\"name\\\":\\\"b\\\"},\\\"object\\\":{\\\"key\\\":\\\"k2"
        "\\\"}}}]}\"},"
        "{\"eventSource\":\"aws:sqs\",\"messageId\":\"m2\",\"body\":\"poison\"}]}";
    struct events_batch b;
    err_t err = {0};
    ck_assert_int_eq(parse(ev, &b, &err), 0);
    ck_assert_uint_eq(b.n, 3);
    struct events_outcome o[3] = {{EVENTS_TEMPORARY, "failed", "", "x"},
                                  {EVENTS_NOT_DONE, "not-done", "", ""},
                                  {EVENTS_PERMANENT, "failed", "", "y"}};
    bool fail;
    char *s = respond(&b, o, &fail);
    ck_assert_str_eq(s, "{\"batchItemFailures\":[{\"itemIdentifier\":\"m1\"},"
                        "{\"itemIdentifier\":\"m2\"}]}");
    ck_assert(!fail);
    free(s);
    o[0].code = o[1].code = EVENTS_DONE;
    s = respond(&b, o, &fail);
    ck_assert_str_eq(s, "{\"batchItemFailures\":[{\"itemIdentifier\":\"m2\"}]}");
    free(s);
    events_free(&b);
}
END_TEST

START_TEST(batch_result_codes)
{
    const char *ev = "{\"invocationSchemaVersion\":\"2.0\",\"invocationId\":\"inv\",\"tasks\":["
                     "{\"taskId\":\"t1\",\"s3Key\":\"a\",\"s3Bucket\":\"b\"},"
                     "{\"taskId\":\"t2\",\"s3Key\":\"c\",\"s3Bucket\":\"b\"},"
                     "{\"taskId\":\"t3\",\"s3Key\":\"d\",\"s3Bucket\":\"b\"}]}";
    struct events_batch b;
    err_t err = {0};
    ck_assert_int_eq(parse(ev, &b, &err), 0);
    struct events_outcome o[3] = {{EVENTS_DONE, "created", "abc", ""},
                                  {EVENTS_TEMPORARY, "failed", "", "slow down"},
                                  {EVENTS_PERMANENT, "failed", "", "no such key"}};
    bool fail;
    char *s = respond(&b, o, &fail);
    ck_assert_str_eq(
        s, "{\"invocationSchemaVersion\":\"2.0\",\"treatMissingKeysAs\":\"PermanentFailure\","
           "\"invocationId\":\"inv\",\"results\":["
           "{\"taskId\":\"t1\",\"resultCode\":\"Succeeded\",\"resultString\":\"created abc\"},"
           "{\"taskId\":\"t2\",\"resultCode\":\"TemporaryFailure\",\"resultString\":\"failed: "
           "slow down\"},"
           "{\"taskId\":\"t3\",\"resultCode\":\"PermanentFailure\",\"resultString\":\"failed: no "
           "such key\"}]}");
    ck_assert(!fail);
    free(s);
    events_free(&b);
}
END_TEST

START_TEST(summary_fails_only_for_retryable)
{
    const char *ev = "{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:"
                     "Put\",\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"k\"}}}]}";
    struct events_batch b;
    err_t err = {0};
    ck_assert_int_eq(parse(ev, &b, &err), 0);
    struct events_outcome o = {EVENTS_PERMANENT, "failed", "", "gone"};
    bool fail;
    char *s = respond(&b, &o, &fail);
    ck_assert(!fail);
    free(s);
    o.code = EVENTS_NOT_DONE;
    s = respond(&b, &o, &fail);
    ck_assert(fail);
    ck_assert(strstr(s, "\"not_done\":[{\"bucket\":\"b\",\"key\":\"k\"") != NULL);
    free(s);
    events_free(&b);
}
END_TEST

START_TEST(errno_classes)
{
    ck_assert(!events_errno_temporary(ENOENT));
    ck_assert(!events_errno_temporary(EACCES));
    ck_assert(!events_errno_temporary(EINVAL));
    ck_assert(events_errno_temporary(EAGAIN));
    ck_assert(events_errno_temporary(EIO));
    ck_assert(events_errno_temporary(ESTALE));
    ck_assert(events_errno_temporary(ETIMEDOUT));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("events");
    TCase *tc = tcase_create("events");
    tcase_add_test(tc, fixture_key_form_decoded);
    tcase_add_loop_test(tc, shapes, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(tc, sqs_failures_named_once);
    tcase_add_test(tc, batch_result_codes);
    tcase_add_test(tc, summary_fails_only_for_retryable);
    tcase_add_test(tc, errno_classes);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
