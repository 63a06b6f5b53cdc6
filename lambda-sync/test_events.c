/* test_events.c — unit tests (check) of the Lambda event parser and responses: every event
 * shape, the form-decoding trap of S3 keys (and RGW's raw ones), poisoned SQS messages, Batch
 * result codes; and the answers of --listen (listen.c). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "fanout.h"
#include "listen.h"
#include "s3torrent/netaddr.h"
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

/* What an RGW 16.2 topic pushes (abridged from a real one): every extra field is ignored. */
START_TEST(rgw_push)
{
    const char *ev =
        "{\"Records\":[{\"eventVersion\":\"2.2\",\"eventSource\":\"ceph:s3\",\"awsRegion\":\"\","
        "\"eventTime\":\"2026-01-02T03:04:05.678Z\",\"eventName\":\"ObjectCreated:Put\","
        "\"userIdentity\":{\"principalId\":\"test\"},\"requestParameters\":{"
        "\"sourceIPAddress\":\"\"},\"responseElements\":{\"x-amz-request-id\":\"r\","
        "\"x-amz-id-2\":\"i\"},\"s3\":{\"s3SchemaVersion\":\"1.0\",\"configurationId\":\"n1\","
        "\"bucket\":{\"name\":\"bkt\",\"ownerIdentity\":{\"principalId\":\"test\"},"
        "\"arn\":\"arn:aws:s3:::bkt\",\"id\":\"5d3f.4137.1\"},\"object\":{\"key\":"
        "\"rec/take 1+\u00fc %41.bin\",\"size\":123,\"eTag\":\"0123456789abcdef0123456789abcdef\","
        "\"versionId\":\"\",\"sequencer\":\"9F4DA65D\",\"metadata\":[],\"tags\":[]}},"
        "\"eventId\":\"1.2\",\"opaqueData\":\"\"}]}";
    struct events_batch b;
    err_t err = {0};
    ck_assert_int_eq(parse(ev, &b, &err), 0);
    ck_assert_int_eq(b.kind, EVENTS_S3);
    ck_assert_uint_eq(b.n, 1);
    ck_assert_str_eq(b.items[0].bucket, "bkt");
    ck_assert_str_eq(b.items[0].key, "rec/take 1+\xc3\xbc %41.bin");
    ck_assert_str_eq(b.items[0].etag, "0123456789abcdef0123456789abcdef");
    ck_assert(b.items[0].has_size);
    ck_assert_uint_eq(b.items[0].size, 123);
    events_free(&b);
}
END_TEST

/* EVENTS_MAX_KEY holds for raw keys as for encoded ones. */
START_TEST(rgw_key_limit)
{
    char ev[2200], key[1100];
    struct events_batch b;
    err_t err = {0};
    for (size_t n = EVENTS_MAX_KEY; n <= EVENTS_MAX_KEY + 1; n++) {
        memset(key, 'k', n);
        key[n] = '\0';
        snprintf(ev, sizeof(ev),
                 "{\"Records\":[{\"eventSource\":\"ceph:s3\",\"eventName\":\"ObjectCreated:Put\","
                 "\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"%s\"}}}]}",
                 key);
        int rc = parse(ev, &b, &err);
        ck_assert_int_eq(rc, n == EVENTS_MAX_KEY ? 0 : EINVAL);
        if (rc == 0)
            ck_assert_uint_eq(strlen(b.items[0].key), EVENTS_MAX_KEY);
        events_free(&b);
    }
}
END_TEST

/* The refusals name what they saw, on one line. */
START_TEST(unknown_source_named)
{
    struct events_batch b;
    err_t err = {0};
    ck_assert_int_eq(parse("{\"Records\":[{\"eventSource\":\"azure:blob\\nx\"}]}", &b, &err),
                     EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "records from 'azure:blob?x'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "ceph:s3"));
    ck_assert_int_eq(parse("{\"Records\":[{\"eventSource\":\"minio:s3\",\"eventName\":\"x\"},"
                           "{\"eventSource\":\"aws:s3\",\"eventName\":\"x\"}]}",
                           &b, &err),
                     EINVAL);
    ck_assert_str_eq(err.msg, "record 1: eventSource 'aws:s3' among records from 'minio:s3'");
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
    /* Ceph RGW: the key as it is, never decoded: '+', "%41", spaces, UTF-8, control bytes */
    {"{\"Records\":[{\"eventSource\":\"ceph:s3\",\"awsRegion\":\"\",\"eventName\":"
     "\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":"
     "\"rec/take 1+\u00fc.bin\"}}}]}",
     0, EVENTS_S3, 1, 0, "rec/take 1+\xc3\xbc.bin"},
    {"{\"Records\":[{\"eventSource\":\"ceph:s3\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
     "\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"a%41%zz%2B\"}}}]}",
     0, EVENTS_S3, 1, 0, "a%41%zz%2B"},
    {"{\"Records\":[{\"eventSource\":\"ceph:s3\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
     "\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"  two  spaces \"}}}]}",
     0, EVENTS_S3, 1, 0, "  two  spaces "},
    {"{\"Records\":[{\"eventSource\":\"ceph:s3\",\"eventName\":\"s3:ObjectCreated:Copy\",\"s3\""
     ":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"a\\u0001b\\tc\\u007f\"}}}]}",
     0, EVENTS_S3, 1, 0,
     "a\x01"
     "b\tc\x7f"},
    {"{\"Records\":[{\"eventSource\":\"ceph:s3\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
     "\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"a\\u0000b\"}}}]}",
     EINVAL, EVENTS_S3, 0, 0, NULL},
    {"{\"Records\":[{\"eventSource\":\"ceph:s3\",\"eventName\":\"s3:ObjectRemoved:Delete\"},"
     "{\"eventSource\":\"ceph:s3\",\"eventName\":\"ObjectLifecycle:Expiration:Current\"}]}",
     0, EVENTS_S3, 0, 2, NULL},
    /* MinIO: form-encoded as AWS, with "s3:" before the event name */
    {"{\"EventName\":\"s3:ObjectCreated:Put\",\"Key\":\"b/a/b c\",\"Records\":[{"
     "\"eventVersion\":\"2.0\",\"eventSource\":\"minio:s3\",\"awsRegion\":\"\",\"eventName\":"
     "\"s3:ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":"
     "\"a%2Fb+c%41+%C3%BC\",\"size\":3,\"eTag\":\"e\"}}}]}",
     0, EVENTS_S3, 1, 0, "a/b cA \xc3\xbc"},
    /* AWS never sends "s3:" before an event name: such a record asks for nothing */
    {"{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"s3:ObjectCreated:Put\",\"s3\":{"
     "\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"k\"}}}]}",
     0, EVENTS_S3, 0, 1, NULL},
    /* one sender per payload; unknown senders refused */
    {"{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
     "\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"k\"}}},{\"eventSource\":\"ceph:s3\","
     "\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{"
     "\"key\":\"k\"}}}]}",
     EINVAL, EVENTS_S3, 0, 0, NULL},
    {"{\"Records\":[{\"eventSource\":\"ceph:s3x\",\"eventName\":\"ObjectCreated:Put\"}]}", EINVAL,
     EVENTS_S3, 0, 0, NULL},
    {"{\"Records\":[{\"eventSource\":\"gcs\",\"eventName\":\"ObjectCreated:Put\"}]}", EINVAL,
     EVENTS_S3, 0, 0, NULL},
    /* an SQS message whose body is RGW's: judged by its own records */
    {"{\"Records\":[{\"eventSource\":\"aws:sqs\",\"messageId\":\"m\",\"body\":\"{\\\"Records"
     "\\\":[{\\\"eventSource\\\":\\\"ceph:s3\\\",\\\"eventName\\\":\\\"ObjectCreated:Put"
     "\\\",\\\"s3\\\":{\\\"bucket\\\":{\\\"name\\\":\\\"b\\\"},\\\"object\\\":{"
     "\\\"key\\\":\\\"x+y\\\"}}}]}\"}]}",
     0, EVENTS_SQS, 1, 0, "x+y"},
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

static const char *rgw_one =
    "{\"Records\":[{\"eventSource\":\"ceph:s3\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
    "\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"k\"}}}]}";

static const struct {
    const char *method, *content_length, *body; /* body NULL: the headers alone */
    bool over_cap;
    enum listen_next next;
    unsigned status;  /* for LISTEN_REPLY */
    const char *text; /* in the reply's text */
} requests[] = {
    {"GET", NULL, NULL, false, LISTEN_REPLY, 405, "method GET not allowed"},
    {"HEAD", NULL, NULL, false, LISTEN_REPLY, 405, "POST"},
    {"post", NULL, NULL, false, LISTEN_REPLY, 405, "method post"},
    {"PUT", NULL, "{}", false, LISTEN_REPLY, 405, "PUT"},
    {"GE\x01T", NULL, NULL, false, LISTEN_REPLY, 405, "GE?T"},
    {"POST", "6291457", NULL, false, LISTEN_REPLY, 413, "6291456"},
    {"POST", "99999999999999999999999", NULL, false, LISTEN_REPLY, 413, "limit"},
    {"POST", "6291456", NULL, false, LISTEN_READ_BODY, 0, ""},
    {"POST", NULL, NULL, false, LISTEN_READ_BODY, 0, ""},
    {"POST", "x", NULL, false, LISTEN_READ_BODY, 0, ""},
    {"POST", NULL, "", true, LISTEN_REPLY, 413, "limit"},
    {"POST", NULL, "", false, LISTEN_REPLY, 400, "not JSON"},
    {"POST", "5", "{\"a\":", false, LISTEN_REPLY, 400, "not JSON"},
    {"POST", NULL, "{\"hello\":1}", false, LISTEN_REPLY, 400, "not an S3 notification"},
    {"POST", NULL,
     "{\"Records\":[{\"eventSource\":\"aws:sqs\",\"messageId\":\"m\",\"body\":\"{}\"}]}", false,
     LISTEN_REPLY, 400, "SQS"},
    {"POST", NULL, "{\"invocationSchemaVersion\":\"2.0\",\"invocationId\":\"i\",\"tasks\":[]}",
     false, LISTEN_REPLY, 400, "Batch Operations"},
    {"POST", NULL, "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\"}", false, LISTEN_WORK, 0,
     ""},
    {"POST", NULL,
     "{\"version\":\"0\",\"detail-type\":\"Object Created\",\"source\":\"aws.s3\","
     "\"detail\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"k\"}}}",
     false, LISTEN_WORK, 0, ""},
    {"POST", "64", NULL /* rgw_one */, false, LISTEN_WORK, 0, ""},
};

START_TEST(listen_requests)
{
    struct listen_request rq = {.method = requests[_i].method,
                                .path = "/any/path",
                                .content_length = requests[_i].content_length,
                                .body = requests[_i].body,
                                .over_cap = requests[_i].over_cap};
    if (requests[_i].next == LISTEN_WORK && rq.body == NULL)
        rq.body = rgw_one;
    rq.len = rq.body ? strlen(rq.body) : 0;
    struct events_batch b;
    struct listen_reply r;
    enum listen_next next = listen_decide(&rq, &b, &r);
    ck_assert_msg(next == requests[_i].next, "request %d: %d (%u %s)", _i, next, r.status, r.text);
    if (next == LISTEN_REPLY) {
        ck_assert_uint_eq(r.status, requests[_i].status);
        ck_assert_msg(strstr(r.text, requests[_i].text) != NULL, "request %d: %s", _i, r.text);
        ck_assert_ptr_null(strchr(r.text, '\n'));
    }
    if (next != LISTEN_WORK)
        ck_assert_uint_eq(b.n, 0);
    if (requests[_i].body == NULL && next == LISTEN_WORK)
        ck_assert_str_eq(b.items[0].key, "k");
    events_free(&b);
    if (rq.body == NULL) /* the headers phase needs no batch */
        ck_assert_int_eq(listen_decide(&rq, NULL, &r), next);
}
END_TEST

START_TEST(listen_answers_after_work)
{
    struct listen_reply r;
    struct listen_tally t = {.objects = 3, .done = 1, .skipped = 1, .failed = 1, .recorded = 1};
    listen_after(&t, 0, NULL, &r);
    ck_assert_uint_eq(r.status, 200);
    ck_assert_str_eq(r.text, "3 objects: 1 done, 1 skipped, 1 failed (1 recorded FAILED); "
                             "0 records ignored");
    /* a permanent failure with nowhere to record it: another attempt would not help */
    t = (struct listen_tally){.objects = 1, .failed = 1, .unrecorded = 1};
    listen_after(&t, 0, NULL, &r);
    ck_assert_uint_eq(r.status, 200);
    t.unrecorded_retry = 1;
    listen_after(&t, 0, NULL, &r);
    ck_assert_uint_eq(r.status, 500);
    t = (struct listen_tally){.objects = 2, .failed = 2, .recorded = 1, .record_errors = 1};
    snprintf(t.record_error, sizeof(t.record_error), "status of s3://b/k: connection refused");
    listen_after(&t, 0, NULL, &r);
    ck_assert_uint_eq(r.status, 500);
    ck_assert_str_eq(r.text, "1 of 2 objects failed and could not be recorded FAILED: status of "
                             "s3://b/k: connection refused");
    listen_after(&t, ENOMEM, "out of memory\nreally", &r);
    ck_assert_uint_eq(r.status, 500);
    ck_assert_str_eq(r.text, "out of memory?really");
}
END_TEST

START_TEST(listen_printable_lines)
{
    char out[16];
    ck_assert_str_eq(listen_printable("/a\r\nb\x7f", 100, out, sizeof(out)), "/a??b?");
    ck_assert_str_eq(listen_printable(NULL, 100, out, sizeof(out)), "");
    ck_assert_str_eq(listen_printable("abcdef", 3, out, sizeof(out)), "abc...");
    ck_assert_str_eq(listen_printable("0123456789abcdefghij", 100, out, sizeof(out)),
                     "0123456789ab...");
    ck_assert_str_eq(listen_printable("abc", 100, out, 3), "");
}
END_TEST

START_TEST(listen_addresses)
{
    struct sockaddr_storage ss;
    socklen_t len;
    err_t err = {0};
    char host[64];
    ck_assert_int_eq(netaddr_parse("127.0.0.1:8080", &ss, &len, &err), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
    ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
    ck_assert_int_eq(netaddr_parse("[::1]:0", &ss, &len, &err), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(netaddr_parse("0.0.0.0:65535", &ss, &len, &err), 0);
    static const char *bad[][2] = {
        {"127.0.0.1", "no port"},    {"127.0.0.1:", "port '' is not"},
        {"::1:80", "brackets"},      {"[::1]", "no port"},
        {"[::1", "no ']'"},          {"host:80", "not a numeric"},
        {"1.2.3.4:65536", "65536"},  {"1.2.3.4:-1", "'-1'"},
        {":80", "no address"},       {"", "ADDR:PORT"},
        {"[1.2.3.4]:80", "numeric"}, {"1.2.3.4:80 ", "port '80 '"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(netaddr_parse(bad[i][0], &ss, &len, &err), EINVAL);
        ck_assert_msg(strstr(err.msg, bad[i][1]) != NULL, "%s: %s", bad[i][0], err.msg);
    }
}
END_TEST

/* The fan-out's run messages: one read back as written; an SQS event of runs alone is runs,
 * one with an S3 notification is the usual events (ENOENT); a run that does not fit its object is
 * refused with one line. */
START_TEST(fanout_messages)
{
    struct fanout_run r = {.size = (1ull << 30) + 5,
                           .mtime = 1700000000,
                           .piece_length = 524288,
                           .meta = 3,
                           .run = 7,
                           .runs = 8,
                           .run_pieces = 256},
                      back;
    snprintf(r.bucket, sizeof(r.bucket), "b");
    snprintf(r.key, sizeof(r.key), "rec/\"odd\" key é.wav");
    snprintf(r.etag, sizeof(r.etag), "0123456789abcdef0123456789abcdef-8");
    char *json;
    err_t err = {0};
    ck_assert_int_eq(fanout_run_json(&r, &json), 0);
    ck_assert_int_eq(fanout_parse_run(json, strlen(json), &back, &err), 0);
    ck_assert_mem_eq(&back, &r, sizeof(r));
    /* as SQS delivers it: the body a JSON string in each record */
    json_object *body = json_object_new_string(json);
    char ev[8192];
    snprintf(ev, sizeof(ev),
             "{\"Records\": [{\"messageId\": \"m1\", \"eventSource\": \"aws:sqs\", \"body\": %s},"
             " {\"messageId\": \"m2\", \"eventSource\": \"aws:sqs\", \"body\": %s}]}",
             json_object_to_json_string(body), json_object_to_json_string(body));
    struct fanout_batch b;
    ck_assert_int_eq(fanout_parse_event(ev, strlen(ev), &b, &err), 0);
    ck_assert_uint_eq(b.n, 2);
    ck_assert_str_eq(b.ids[1], "m2");
    ck_assert_str_eq(b.runs[0].key, r.key);
    fanout_batch_free(&b);
    snprintf(ev, sizeof(ev),
             "{\"Records\": [{\"messageId\": \"m1\", \"eventSource\": \"aws:sqs\", \"body\": %s},"
             " {\"messageId\": \"m2\", \"eventSource\": \"aws:sqs\", \"body\": "
             "\"{\\\"Records\\\": []}\"}]}",
             json_object_to_json_string(body));
    ck_assert_int_eq(fanout_parse_event(ev, strlen(ev), &b, &err), ENOENT);
    json_object_put(body);
    free(json);
    /* 8 runs of 256 pieces is not 2049 pieces over 300 */
    r.run_pieces = 300;
    ck_assert_int_eq(fanout_run_json(&r, &json), 0);
    ck_assert_int_eq(fanout_parse_run(json, strlen(json), &back, &err), EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "run_pieces"));
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    free(json);
    const char *s3 = "{\"Records\": [{\"eventSource\": \"aws:s3\"}]}";
    ck_assert_int_eq(fanout_parse_run(s3, strlen(s3), &back, &err), ENOENT);
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
    tcase_add_test(tc, rgw_push);
    tcase_add_test(tc, rgw_key_limit);
    tcase_add_test(tc, unknown_source_named);
    tcase_add_test(tc, fanout_messages);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("listen");
    tcase_add_loop_test(tl, listen_requests, 0, (int)(sizeof(requests) / sizeof(requests[0])));
    tcase_add_test(tl, listen_answers_after_work);
    tcase_add_test(tl, listen_printable_lines);
    tcase_add_test(tl, listen_addresses);
    suite_add_tcase(s, tl);
    return tu_run(s);
}
