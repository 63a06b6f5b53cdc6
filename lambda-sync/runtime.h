/* runtime.h — a client of the Lambda Runtime API (2018-06-01) for a custom runtime: the next
 * invocation (a long poll), its response or error, and init errors, over the project's HTTP layer.
 */
#ifndef S3TORRENT_LAMBDA_RUNTIME_H
#define S3TORRENT_LAMBDA_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "s3torrent/buf.h"
#include "s3torrent/err.h"
#include "s3torrent/log.h"

#define RUNTIME_MAX_EVENT (6u * 1024 * 1024) /* Lambda's synchronous invocation payload limit */

struct runtime_client;

/* One invocation as /runtime/invocation/next hands it out. */
struct runtime_invocation {
    char request_id[256];   /* Lambda-Runtime-Aws-Request-Id */
    int64_t deadline_ms;    /* Lambda-Runtime-Deadline-Ms (Unix ms); 0 when absent */
    char trace_id[512];     /* Lambda-Runtime-Trace-Id, "" when absent */
    char function_arn[512]; /* Lambda-Runtime-Invoked-Function-Arn, "" when absent */
    struct buf event;       /* the payload, at most RUNTIME_MAX_EVENT bytes */
};

/* A client for api ("host:port", as in $AWS_LAMBDA_RUNTIME_API); log is borrowed. Returns 0 with
 * *out set (free it with runtime_free), or EINVAL (an empty or odd api) / ENOMEM with err set. */
int runtime_new(const char *api, const struct logger *log, struct runtime_client **out, err_t *err);
void runtime_free(struct runtime_client *rt);

/* Waits as long as it takes for the next invocation (GET /runtime/invocation/next, no
 * timeout) and fills *inv (the caller frees it with runtime_invocation_free). Returns 0, or a
 * positive errno with err set: EPROTO for an answer without a request id, EIO for a non-200
 * status (500 means the runtime must exit), a transport errno. */
int runtime_next(struct runtime_client *rt, struct runtime_invocation *inv, err_t *err);
void runtime_invocation_free(struct runtime_invocation *inv);

/* POST /runtime/invocation/{id}/response with body (len bytes, JSON). Returns 0 on 202, else
 * a positive errno with err set (EFBIG for 413, EINVAL for 400/403, EIO otherwise). */
int runtime_respond(struct runtime_client *rt, const char *request_id, const void *body, size_t len,
                    err_t *err);

/* POST /runtime/invocation/{id}/error with {"errorMessage", "errorType"} and the header
 * Lambda-Runtime-Function-Error-Type: type. Returns 0 on 202, else an errno with err set. */
int runtime_error(struct runtime_client *rt, const char *request_id, const char *type,
                  const char *message, err_t *err);

/* POST /runtime/init/error, the same error document, before the first next. Returns 0 on 202,
 * else an errno with err set. */
int runtime_init_error(struct runtime_client *rt, const char *type, const char *message,
                       err_t *err);

/* The error document {"errorMessage": message, "errorType": type} as a new string the caller
 * frees; NULL when out of memory. */
char *runtime_error_json(const char *type, const char *message);

#endif
