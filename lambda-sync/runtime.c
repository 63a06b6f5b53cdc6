/* runtime.c — the Lambda Runtime API over the HTTP layer: its own client (a long poll must not
 * trip the low-speed abort that guards S3 transfers), requests with capped bodies. */
#include "runtime.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/http.h"
#include "s3torrent/uri.h"

#define API_VERSION "2018-06-01"
#define ANSWER_MAX  (64u * 1024)            /* the API's own answers are small JSON documents */
#define LONG_POLL_S (10L * 365 * 24 * 3600) /* "no timeout" for the low-speed check */

struct runtime_client {
    struct http_client *http;
    char base[300]; /* http://host:port/2018-06-01 */
};

int runtime_new(const char *api, const struct logger *log, struct runtime_client **out, err_t *err)
{
    *out = NULL;
    if (api == NULL || *api == '\0' || strlen(api) > 255 || strpbrk(api, "/?#@ \t\r\n") != NULL)
        return err_set(err, EINVAL, "AWS_LAMBDA_RUNTIME_API '%.64s' is not host:port",
                       api ? api : "");
    struct runtime_client *rt = calloc(1, sizeof(*rt));
    struct http_opts ho = {.low_speed_time_s = LONG_POLL_S, .log = log};
    if (rt == NULL || (rt->http = http_client_new(&ho)) == NULL) {
        free(rt);
        return err_set(err, ENOMEM, "out of memory");
    }
    snprintf(rt->base, sizeof(rt->base), "http://%s/" API_VERSION, api);
    *out = rt;
    return 0;
}

void runtime_free(struct runtime_client *rt)
{
    if (rt == NULL)
        return;
    http_client_free(rt->http);
    free(rt);
}

void runtime_invocation_free(struct runtime_invocation *inv)
{
    buf_free(&inv->event);
    memset(inv, 0, sizeof(*inv));
}

static void copy_header(struct http_stream *s, const char *name, char *dst, size_t n)
{
    const char *v = http_stream_header(s, name);
    snprintf(dst, n, "%s", v ? v : "");
}

int runtime_next(struct runtime_client *rt, struct runtime_invocation *inv, err_t *err)
{
    char url[400];
    struct http_stream *s = NULL;
    int rc;
    memset(inv, 0, sizeof(*inv));
    buf_init(&inv->event, RUNTIME_MAX_EVENT);
    snprintf(url, sizeof(url), "%s/runtime/invocation/next", rt->base);
    struct http_request req = {.method = "GET", .url = url};
    if ((rc = http_stream_open(rt->http, &req, &s, err))) {
        err_prefix(err, "Runtime API next");
        goto out;
    }
    long st = http_stream_status(s);
    if ((rc = http_stream_read_all(s, &inv->event, err))) {
        err_prefix(err, "Runtime API next");
        goto out;
    }
    if (st != 200) {
        rc = err_set(err, EIO, "Runtime API next: HTTP %ld%s", st,
                     st == 500 ? " (container error: the runtime must exit)" : "");
        goto out;
    }
    copy_header(s, "Lambda-Runtime-Aws-Request-Id", inv->request_id, sizeof(inv->request_id));
    copy_header(s, "Lambda-Runtime-Trace-Id", inv->trace_id, sizeof(inv->trace_id));
    copy_header(s, "Lambda-Runtime-Invoked-Function-Arn", inv->function_arn,
                sizeof(inv->function_arn));
    const char *d = http_stream_header(s, "Lambda-Runtime-Deadline-Ms");
    if (d) {
        char *end;
        long long v = strtoll(d, &end, 10);
        if (end != d && *end == '\0' && v > 0)
            inv->deadline_ms = v;
    }
    if (inv->request_id[0] == '\0') {
        rc = err_set(err, EPROTO, "Runtime API next: no Lambda-Runtime-Aws-Request-Id");
        goto out;
    }
out:
    http_stream_close(s);
    if (rc)
        runtime_invocation_free(inv);
    return rc;
}

/* POSTs body to base + path; 202 is success. */
static int post(struct runtime_client *rt, const char *path, const char *etype, const void *body,
                size_t len, err_t *err)
{
    struct buf url, answer;
    struct http_stream *s = NULL;
    struct http_header h[2] = {{"Content-Type", "application/json"},
                               {"Lambda-Runtime-Function-Error-Type", etype}};
    int rc;
    buf_init(&url, 4096);
    buf_init(&answer, ANSWER_MAX);
    buf_printf(&url, "%s%s", rt->base, path);
    if ((rc = buf_put(&url, "", 1))) {
        err_set(err, rc, "Runtime API: request URL too long");
        goto out;
    }
    struct http_request req = {.method = "POST",
                               .url = (const char *)url.data,
                               .headers = h,
                               .nheaders = etype ? 2 : 1,
                               .body = body,
                               .body_len = len};
    if ((rc = http_stream_open(rt->http, &req, &s, err)) ||
        (rc = http_stream_read_all(s, &answer, err))) {
        err_prefix(err, "Runtime API POST %s", path);
        goto out;
    }
    long st = http_stream_status(s);
    if (st != 202) {
        /* the answer is {"errorMessage": ..., "errorType": ...}: quoted as it is */
        int e = st == 413 ? EFBIG : st == 400 || st == 403 ? EINVAL : EIO;
        rc = err_set(err, e, "Runtime API POST %s: HTTP %ld: %.*s", path, st,
                     (int)(answer.len > 200 ? 200 : answer.len),
                     answer.data ? (const char *)answer.data : "");
        for (char *p = err ? err->msg : ""; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    }
out:
    http_stream_close(s);
    buf_free(&url);
    buf_free(&answer);
    return rc;
}

/* "/runtime/invocation/" + the request id, encoded as one path segment, + tail. */
static int invocation_path(const char *id, const char *tail, struct buf *b)
{
    buf_printf(b, "/runtime/invocation/");
    uri_encode(b, id, strlen(id), false);
    buf_printf(b, "%s", tail);
    return buf_put(b, "", 1);
}

int runtime_respond(struct runtime_client *rt, const char *request_id, const void *body, size_t len,
                    err_t *err)
{
    struct buf path;
    buf_init(&path, 2048);
    int rc = invocation_path(request_id, "/response", &path);
    if (rc)
        err_set(err, rc, "Runtime API: request id too long");
    else
        rc = post(rt, (const char *)path.data, NULL, body, len, err);
    buf_free(&path);
    return rc;
}

char *runtime_error_json(const char *type, const char *message)
{
    json_object *o = json_object_new_object();
    char *out = NULL;
    if (o && json_object_object_add(o, "errorMessage", json_object_new_string(message)) == 0 &&
        json_object_object_add(o, "errorType", json_object_new_string(type)) == 0)
        out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return out;
}

static int post_error(struct runtime_client *rt, const char *path, const char *type,
                      const char *message, err_t *err)
{
    char *doc = runtime_error_json(type, message);
    if (doc == NULL)
        return err_set(err, ENOMEM, "out of memory");
    int rc = post(rt, path, type, doc, strlen(doc), err);
    free(doc);
    return rc;
}

int runtime_error(struct runtime_client *rt, const char *request_id, const char *type,
                  const char *message, err_t *err)
{
    struct buf path;
    buf_init(&path, 2048);
    int rc = invocation_path(request_id, "/error", &path);
    if (rc)
        err_set(err, rc, "Runtime API: request id too long");
    else
        rc = post_error(rt, (const char *)path.data, type, message, err);
    buf_free(&path);
    return rc;
}

int runtime_init_error(struct runtime_client *rt, const char *type, const char *message, err_t *err)
{
    return post_error(rt, "/runtime/init/error", type, message, err);
}
