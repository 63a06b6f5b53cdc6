/* events.h — the invocation payloads s3torrent-lambda understands (S3 notifications from AWS,
 * Ceph RGW or MinIO, SQS-wrapped ones, S3 Batch Operations 1.0/2.0, EventBridge "Object
 * Created") and the responses it sends. */
#ifndef S3TORRENT_LAMBDA_EVENTS_H
#define S3TORRENT_LAMBDA_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "s3torrent/err.h"
#include "s3torrent/s3.h"

#define EVENTS_MAX_PAYLOAD (6u * 1024 * 1024) /* Lambda's synchronous payload limit */
#define EVENTS_MAX_BODY    (256u * 1024)      /* an SQS message body */
#define EVENTS_MAX_ITEMS   10000              /* work items of one invocation */
#define EVENTS_JSON_DEPTH  64
#define EVENTS_MAX_KEY     S3_MAX_KEY

enum events_kind {
    EVENTS_S3,          /* an S3 notification (or s3:TestEvent) invoked directly or pushed */
    EVENTS_SQS,         /* SQS records whose bodies are S3 notifications */
    EVENTS_BATCH,       /* S3 Batch Operations, schema 1.0 or 2.0 */
    EVENTS_EVENTBRIDGE, /* EventBridge "Object Created" from aws.s3 */
};

/* One object to sync, or (error set) one unusable message or task. */
struct events_item {
    char *bucket, *key; /* decoded (RGW's come raw); NULL when error is set */
    char *etag;         /* the event's ETag, quotes stripped; NULL when absent */
    uint64_t size;
    bool has_size;
    char *id;      /* SQS messageId or Batch taskId; NULL for S3 and EventBridge */
    size_t record; /* index of the record, message or task in the payload */
    char *error;   /* why this message or task cannot be done (one line), else NULL */
};

struct events_batch {
    enum events_kind kind;
    char *schema;        /* Batch: invocationSchemaVersion ("1.0" or "2.0"), else NULL */
    char *invocation_id; /* Batch: invocationId, else NULL */
    struct events_item *items;
    size_t n;
    size_t ignored; /* records that ask for no work: other event names, test events */
};

/* Parses an invocation payload of len bytes (at most EVENTS_MAX_PAYLOAD). Returns 0 with *out
 * filled (free it with events_free), or EINVAL / EFBIG / ENOMEM with err set to one line and
 * *out empty. A payload whose kind cannot be told, or a direct S3 / EventBridge record that is
 * malformed, fails the whole payload; a bad SQS message or Batch task becomes an item with
 * error set, so that only it fails. S3 notification records come from aws:s3 or minio:s3
 * (form-encoded keys) or ceph:s3 (raw keys), all of one payload (or SQS message) from the same
 * eventSource, else it fails; MinIO's and RGW's "s3:ObjectCreated:*" event names count as
 * ObjectCreated, AWS's never carry that prefix. */
int events_parse(const void *data, size_t len, struct events_batch *out, err_t *err);

/* Frees what events_parse allocated and empties b. */
void events_free(struct events_batch *b);

/* The name of a kind ("s3", "sqs", "batch", "eventbridge"). */
const char *events_kind_name(enum events_kind k);

/* What became of one item. */
enum events_outcome_code {
    EVENTS_DONE,      /* created, up to date, adopted or replaced */
    EVENTS_SKIPPED,   /* by rule: .torrent key, excluded prefix, bucket not allowed, empty */
    EVENTS_TEMPORARY, /* failed; another attempt may succeed (throttling, 5xx, changed) */
    EVENTS_PERMANENT, /* failed for good (no such object, access denied, invalid) */
    EVENTS_NOT_DONE,  /* not started: the invocation's deadline was too close */
};

struct events_outcome {
    enum events_outcome_code code;
    const char *action;    /* sync_action_name, "skipped" or "not-done"; borrowed */
    const char *info_hash; /* v1 hex or "" (v2 hex for v2-only); borrowed */
    const char *message;   /* the error or skip reason, or "" ; borrowed */
};

/* True when errno e is worth another attempt (transport, throttling, 5xx, a changed object). */
bool events_errno_temporary(int e);

/* Builds the response to b given one outcome per item (outs[i] for b->items[i]):
 *   S3 / EventBridge: {"results":[{bucket,key,action,info_hash,error}], "not_done":[...]}
 *   SQS: {"batchItemFailures":[{"itemIdentifier": messageId}]}, each failed or not-done
 *        message once;
 *   Batch: {invocationSchemaVersion, treatMissingKeysAs, invocationId, results:[{taskId,
 *        resultCode, resultString}]}.
 * *fail is set when the invocation itself should be reported as failed so that Lambda retries
 * it: only for S3 / EventBridge, when an object failed temporarily or was not done. Returns 0
 * with *out set (the caller puts it), or ENOMEM. */
int events_response(const struct events_batch *b, const struct events_outcome *outs,
                    json_object **out, bool *fail);

#endif
