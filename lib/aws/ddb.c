/* ddb.c — the DynamoDB client: each call is one POST of a JSON body to "/" with its X-Amz-Target,
 * sent by aws_send (signed, retried); answers and error bodies are capped and parsed here. */
#include "s3torrent/ddb.h"
#include "s3torrent/aws.h"
#include "s3torrent/config.h"
#include "s3torrent/jsondoc.h"
#include "s3torrent/sigv4.h"
#include "s3torrent/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ddb_client {
    struct ddb_config cfg;
    struct config_service svc;
    struct ddb_service api; /* cfg.service, or DynamoDB's */
    char *url; /* scheme://host/ */
    char *trace_id;
    unsigned attempts;
    struct aws *aws;
};

int ddb_client_new(const struct ddb_config *cfg, struct ddb_client **out, err_t *err)
{
    struct ddb_client *c = calloc(1, sizeof(*c));
    int rc = 0;
    *out = NULL;
    if (c == NULL)
        return err_set(err, ENOMEM, "out of memory");
    c->cfg = *cfg;
    c->api = cfg->service ? *cfg->service
                          : (struct ddb_service){"DynamoDB", "dynamodb",
                                                 "AWS_ENDPOINT_URL_DYNAMODB", DDB_TARGET};
    if ((rc = config_service(c->api.name, c->api.signing, c->api.endpoint_env, cfg->endpoint,
                             cfg->region, cfg->max_attempts, &c->svc, err)))
        goto fail;
    c->trace_id = cfg->trace_id ? strdup(cfg->trace_id) : NULL;
    size_t ul = strlen(c->svc.scheme) + strlen(c->svc.host) + 5;
    c->url = malloc(ul);
    if (!c->url || (cfg->trace_id && !c->trace_id)) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto fail;
    }
    snprintf(c->url, ul, "%s://%s/", c->svc.scheme, c->svc.host);
    struct aws_config ac = {
        .http = cfg->http,
        .creds = cfg->creds,
        .region = c->svc.region,
        .service = c->api.signing,
        .opt = SIGV4_OPTIONS_GENERIC,
        .trace_id = c->trace_id,
        .now = cfg->now,
        .random = cfg->random,
        .sleep_ms = cfg->sleep_ms,
    };
    if ((rc = aws_new(&ac, &c->aws, err)))
        goto fail;
    unsigned max = c->svc.max_attempts;
    c->attempts = max ? max : 3;
    *out = c;
    return 0;
fail:
    ddb_client_free(c);
    return rc;
}

void ddb_client_free(struct ddb_client *c)
{
    if (c == NULL)
        return;
    aws_free(c->aws);
    config_service_free(&c->svc);
    free(c->url);
    free(c->trace_id);
    free(c);
}

struct http_counters *ddb_counters(struct ddb_client *c)
{
    return http_client_counters(c->cfg.http);
}

/* ---- parsing ---- */

int ddb_parse_body(const void *body, size_t len, json_object **out, err_t *err)
{
    return jsondoc_parse("DynamoDB", body, len, DDB_RESPONSE_MAX, DDB_JSON_DEPTH, out, err);
}

int ddb_parse_error(const void *body, size_t len, struct ddb_error *out, err_t *err)
{
    json_object *doc = NULL, *type = NULL, *msg = NULL;
    memset(out, 0, sizeof(*out));
    int rc = ddb_parse_body(body, len, &doc, err);
    if (rc)
        return rc;
    if (json_object_object_get_ex(doc, "__type", &type) &&
        json_object_is_type(type, json_type_string)) {
        const char *t = json_object_get_string(type), *hash = strrchr(t, '#');
        const char *code = hash ? hash + 1 : t;
        util_scrub_copy(out->code, sizeof(out->code), code, strcspn(code, ":"));
    }
    if ((json_object_object_get_ex(doc, "message", &msg) ||
         json_object_object_get_ex(doc, "Message", &msg)) &&
        json_object_is_type(msg, json_type_string))
        util_scrub_copy(out->message, sizeof(out->message), json_object_get_string(msg),
                        (size_t)json_object_get_string_len(msg));
    json_object_put(doc);
    return 0;
}

/* ---- attribute values ---- */

int ddb_add(json_object *obj, const char *name, json_object *value)
{
    if (value == NULL)
        return ENOMEM;
    if (json_object_object_add(obj, name, value) != 0) {
        json_object_put(value);
        return ENOMEM;
    }
    return 0;
}

static json_object *typed(const char *type, json_object *v)
{
    json_object *o = v ? json_object_new_object() : NULL;
    if (o == NULL || ddb_add(o, type, v) != 0) {
        json_object_put(o);
        if (o == NULL)
            json_object_put(v);
        return NULL;
    }
    return o;
}

json_object *ddb_s(const char *s)
{
    return typed("S", json_object_new_string(s));
}

json_object *ddb_n_i64(int64_t v)
{
    char num[32];
    snprintf(num, sizeof(num), "%" PRId64, v);
    return typed("N", json_object_new_string(num));
}

json_object *ddb_n_u64(uint64_t v)
{
    char num[32];
    snprintf(num, sizeof(num), "%" PRIu64, v);
    return typed("N", json_object_new_string(num));
}

json_object *ddb_bool(bool v)
{
    return typed("BOOL", json_object_new_boolean(v));
}

static json_object *item_value(json_object *item, const char *name, const char *type)
{
    json_object *attr, *v;
    if (item == NULL || !json_object_object_get_ex(item, name, &attr) ||
        !json_object_is_type(attr, json_type_object) ||
        !json_object_object_get_ex(attr, type, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return v;
}

const char *ddb_item_s(json_object *item, const char *name)
{
    json_object *v = item_value(item, name, "S");
    return v ? json_object_get_string(v) : NULL;
}

int ddb_item_i64(json_object *item, const char *name, int64_t *out)
{
    json_object *attr;
    if (item == NULL || !json_object_object_get_ex(item, name, &attr))
        return ENOENT;
    json_object *v = item_value(item, name, "N");
    if (v == NULL)
        return EPROTO;
    const char *s = json_object_get_string(v);
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno == ERANGE)
        return EPROTO;
    *out = (int64_t)n;
    return 0;
}

/* ---- calls ---- */

struct call {
    const char *what; /* "DynamoDB PutItem on table T" */
    json_object **response;
};

/* Reads an answer's body, capped at DDB_RESPONSE_MAX. Returns 0 or an errno with err set. */
static int read_body(const struct call *k, struct http_stream *hs, struct buf *body, bool *retry,
                     err_t *err)
{
    const char *cl = http_stream_header(hs, "content-length");
    int rc;
    if (cl && strtoull(cl, NULL, 10) > DDB_RESPONSE_MAX)
        rc = err_set(err, EFBIG, "HTTP: response body larger than %u bytes", DDB_RESPONSE_MAX);
    else
        rc = http_stream_read_all(hs, body, err);
    if (rc) {
        *retry = rc != EFBIG && http_transport_retryable(rc);
        err_prefix(err, "%s (HTTP %ld)", k->what, http_stream_status(hs));
    }
    return rc;
}

/* aws_send's reader of a 2xx answer: the parsed JSON into *k->response. */
static int call_ok(void *arg, struct http_stream *hs, bool *retry, err_t *err)
{
    struct call *k = arg;
    struct buf body;
    json_object *doc = NULL;
    err_t perr = {0};
    int rc;
    buf_init(&body, DDB_RESPONSE_MAX);
    if ((rc = read_body(k, hs, &body, retry, err)))
        goto out;
    if ((rc = ddb_parse_body(body.data, body.len, &doc, &perr))) {
        err_set(err, rc, "%s: %s", k->what, perr.msg);
        goto out;
    }
    if (k->response) {
        *k->response = doc;
        doc = NULL;
    }
out:
    json_object_put(doc);
    buf_free(&body);
    return rc;
}

/* aws_send's judge of any other answer: DynamoDB's __type (or x-amzn-ErrorType) and message,
 * mapped by the shared AWS table. */
static int call_fail(void *arg, struct http_stream *hs, bool *retry, err_t *err)
{
    struct call *k = arg;
    struct buf body;
    struct ddb_error de;
    long status = http_stream_status(hs);
    int rc;
    buf_init(&body, DDB_RESPONSE_MAX);
    if ((rc = read_body(k, hs, &body, retry, err)))
        goto out;
    if (ddb_parse_error(body.data, body.len, &de, NULL) != 0 || de.code[0] == '\0') {
        /* a load balancer's page, or an answer without __type: the header may still say */
        const char *et = http_stream_header(hs, "x-amzn-errortype");
        if (et) {
            const char *hash = strrchr(et, '#');
            et = hash ? hash + 1 : et;
            util_scrub_copy(de.code, sizeof(de.code), et, strcspn(et, ":"));
        }
    }
    rc = aws_error_errno((int)status, de.code, retry);
    const char *hint = aws_error_hint(de.code);
    char skew[160];
    int64_t server;
    time_t now = time(NULL);
    if (rc == EACCES && aws_date_skewed(hs, now, &server)) {
        /* DynamoDB refuses a skewed signature as expired (InvalidSignatureException): the
         * answer's Date tells the clock, not the credentials, is at fault */
        long long d = (long long)(server - now);
        snprintf(skew, sizeof(skew),
                 "; the local clock is %lld s %s the server's: fix the system clock (NTP)",
                 d < 0 ? -d : d, d < 0 ? "ahead of" : "behind");
        hint = skew;
        rc = ETIME;
    }
    const char *rid = http_stream_header(hs, "x-amzn-requestid");
    char ridtext[160] = "";
    if (rid)
        snprintf(ridtext, sizeof(ridtext), " (request id %.128s)", rid);
    size_t ml = strlen(de.message);
    if (hint[0] && !rid && ml > 0 && de.message[ml - 1] == '.')
        de.message[ml - 1] = '\0'; /* "...is invalid; the access key id..." */
    if (de.code[0])
        err_set(err, rc, "%s: %s: %s%s%s", k->what, de.code,
                de.message[0] ? de.message : "no message", ridtext, hint);
    else
        err_set(err, rc, "%s: HTTP %ld%s%s", k->what, status, ridtext, hint);
out:
    buf_free(&body);
    return rc;
}

int ddb_call(struct ddb_client *c, const char *op, json_object *request, json_object **response,
             err_t *err)
{
    char what[512], target[128];
    json_object *table = NULL;
    if (response)
        *response = NULL;
    if (json_object_object_get_ex(request, "TableName", &table) &&
        json_object_is_type(table, json_type_string)) {
        char name[256];
        util_scrub_copy(name, sizeof(name), json_object_get_string(table),
                        (size_t)json_object_get_string_len(table));
        snprintf(what, sizeof(what), "%s %.64s on table %s", c->api.name, op, name);
    } else {
        snprintf(what, sizeof(what), "%s %.64s", c->api.name, op);
    }
    if (strlen(op) + strlen(c->api.target_prefix) + 1 > sizeof(target) ||
        strspn(op, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != strlen(op) ||
        *op == '\0')
        return err_set(err, EINVAL, "%s: '%.64s' is not an operation name", c->api.name, op);
    size_t tp = strlen(c->api.target_prefix);
    memcpy(target, c->api.target_prefix, tp);
    memcpy(target + tp, op, strlen(op) + 1);
    size_t len = 2;
    const char *body = "{}";
    if (request)
        body = json_object_to_json_string_length(request, JSON_C_TO_STRING_PLAIN, &len);
    if (body == NULL)
        return err_set(err, ENOMEM, "%s: out of memory", what);
    struct call k = {what, response};
    const struct sigv4_pair headers[] = {
        {"Content-Type", DDB_CONTENT_TYPE},
        {"X-Amz-Target", target},
    };
    struct aws_request r = {
        .method = "POST",
        .url = c->url,
        .host = c->svc.host,
        .path = "/",
        .headers = headers,
        .nheaders = sizeof(headers) / sizeof(headers[0]),
        .body = body,
        .body_len = len,
        .attempts = c->attempts,
        .what = what,
        .ok = call_ok,
        .fail = call_fail,
        .ctx = &k,
    };
    return aws_send(c->aws, &r, NULL, err);
}

void ddb_client_set_trace_id(struct ddb_client *c, const char *trace_id)
{
    aws_set_trace_id(c->aws, trace_id);
}
