/* ddb.h — a small DynamoDB client (JSON 1.0 protocol): signed POSTs of one operation each, the
 * AWS standard retry mode, capped and parsed responses, errors mapped to errno. */
#ifndef S3TORRENT_DDB_H
#define S3TORRENT_DDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "s3torrent/cred.h"
#include "s3torrent/err.h"
#include "s3torrent/http.h"

#define DDB_RESPONSE_MAX (1u << 20) /* bytes of one response body held in memory */
#define DDB_JSON_DEPTH   128        /* JSON nesting accepted (items nest up to 32 levels) */
#define DDB_TARGET       "DynamoDB_20120810."
#define DDB_CONTENT_TYPE "application/x-amz-json-1.0"

/* Another AWS service of the same JSON 1.0 protocol (one signed POST to "/" with X-Amz-Target,
 * errors by __type), which this client then speaks instead of DynamoDB: SQS's SendMessageBatch
 * for the Lambda's fan-out (docs/DESIGN.md §10). */
struct ddb_service {
    const char *name;          /* in messages: "SQS" */
    const char *signing;       /* SigV4 service and endpoint prefix: "sqs" */
    const char *endpoint_env;  /* "AWS_ENDPOINT_URL_SQS" */
    const char *target_prefix; /* "AmazonSQS." */
};

struct ddb_config {
    const struct ddb_service *service; /* NULL: DynamoDB */
    /* NULL: AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL, else
     * https://dynamodb.REGION.amazonaws.com */
    const char *endpoint;
    const char *region;    /* NULL: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1 */
    unsigned max_attempts; /* 0: AWS_MAX_ATTEMPTS, else 3 */
    struct http_client *http;
    struct cred_chain *creds;
    const char *trace_id; /* sent as X-Amzn-Trace-Id when set (Lambda) */
    /* injectable for tests; NULL: time(), arc4random, nanosleep */
    time_t (*now)(void);
    double (*random)(void);
    void (*sleep_ms)(long ms);
};

struct ddb_client;

/* Returns 0 with *out ready, or EINVAL (bad endpoint, bad AWS_MAX_ATTEMPTS) / ENOMEM with err
 * set. The config's pointers are borrowed and must outlive the client; strings are copied. The
 * client is thread-safe. */
int ddb_client_new(const struct ddb_config *cfg, struct ddb_client **out, err_t *err);
void ddb_client_free(struct ddb_client *c);
/* As s3_client_set_trace_id. */
void ddb_client_set_trace_id(struct ddb_client *c, const char *trace_id);

/* Calls operation op ("PutItem", "UpdateItem", ...) with request (borrowed), signing every
 * attempt and retrying throttling, 5xx and transport errors. Returns 0 with *response (may be
 * NULL to discard it) set to the parsed answer, which the caller releases with json_object_put;
 * or a positive errno with err set to one line, e.g. "DynamoDB PutItem on table T:
 * ValidationException: <message>": EEXIST (ConditionalCheckFailedException: an answer, never
 * retried), ENOENT (ResourceNotFoundException), EINVAL (ValidationException), EACCES
 * (credentials, signature, access; with the hint of the shared AWS table), ETIME (a refused
 * signature while the answer's Date is over 15 minutes off the local clock), EBUSY
 * (ResourceInUseException), EAGAIN (throttling), EIO
 * (5xx), EFBIG (a body over DDB_RESPONSE_MAX), EPROTO (a body that is not a JSON object). */
int ddb_call(struct ddb_client *c, const char *op, json_object *request, json_object **response,
             err_t *err);

/* Request counters of the client's HTTP layer. */
struct http_counters *ddb_counters(struct ddb_client *c);

/* ---- parsing (exposed for tests and the fuzzer) ---- */

/* What an error body says. Fields are "" when absent, and truncated when over long. */
struct ddb_error {
    char code[128];     /* the text after the last '#' of __type (and before any ':') */
    char message[1024]; /* "message" or "Message"; control bytes replaced by '?' */
};

/* Parses a response body of len bytes: one JSON object, nothing after it, at most
 * DDB_JSON_DEPTH deep and DDB_RESPONSE_MAX long. Returns 0 with *out set (the caller puts
 * it), or EPROTO / EFBIG / ENOMEM with err set. */
int ddb_parse_body(const void *body, size_t len, json_object **out, err_t *err);

/* Parses an error body of len bytes into *out. Returns 0, or EPROTO (not a JSON object) /
 * EFBIG / ENOMEM with err set; *out is zeroed either way. */
int ddb_parse_error(const void *body, size_t len, struct ddb_error *out, err_t *err);

/* ---- attribute values (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/
 * API_AttributeValue.html): each returns a new object the caller owns, or NULL when out of
 * memory ---- */

json_object *ddb_s(const char *s);  /* {"S": s} */
json_object *ddb_n_i64(int64_t v);  /* {"N": "v"} */
json_object *ddb_n_u64(uint64_t v); /* {"N": "v"} */
json_object *ddb_bool(bool v);      /* {"BOOL": v} */

/* Adds name: value to the JSON object obj, taking value. Returns 0, or ENOMEM when value is
 * NULL (a failed constructor) or the insertion fails. */
int ddb_add(json_object *obj, const char *name, json_object *value);

/* The string of attribute name (type S) in item (a map of attribute values), or NULL when it
 * is absent or of another type. The string belongs to item. */
const char *ddb_item_s(json_object *item, const char *name);

/* Attribute name (type N, an integer) of item into *out. Returns 0, ENOENT when absent, or
 * EPROTO when it is not an N holding a 64-bit integer. */
int ddb_item_i64(json_object *item, const char *name, int64_t *out);

#endif
