/* events.c — invocation payloads into work items, and work outcomes into the response each
 * event source expects (Lambda summary, SQS batchItemFailures, Batch Operations results). */
#include "events.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/uri.h"
#include "s3torrent/util.h"

const char *events_kind_name(enum events_kind k)
{
    switch (k) {
    case EVENTS_S3:
        return "s3";
    case EVENTS_SQS:
        return "sqs";
    case EVENTS_BATCH:
        return "batch";
    case EVENTS_EVENTBRIDGE:
        return "eventbridge";
    }
    return "?";
}

/* The string member name of o, or NULL when absent or not a string; *len its length. */
static const char *member_str(json_object *o, const char *name, size_t *len)
{
    json_object *v;
    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    if (len)
        *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

static json_object *member(json_object *o, const char *name, json_type type)
{
    json_object *v;
    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, type))
        return NULL;
    return v;
}

/* Parses len bytes as exactly one JSON value (whitespace around it allowed). */
static int parse_json(const void *data, size_t len, size_t max, const char *what, json_object **out,
                      err_t *err)
{
    *out = NULL;
    if (len > max)
        return err_set(err, EFBIG, "%s: %zu bytes, over the limit of %zu", what, len, max);
    if (len > 0 && memchr(data, '\0', len) != NULL)
        return err_set(err, EINVAL, "%s: not JSON (a NUL byte)", what);
    json_tokener *tok = json_tokener_new_ex(EVENTS_JSON_DEPTH);
    if (tok == NULL)
        return err_set(err, ENOMEM, "out of memory");
    json_object *o = json_tokener_parse_ex(tok, data, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (o == NULL || je != json_tokener_success) {
        json_object_put(o);
        return err_set(err, EINVAL, "%s: not JSON (%s)", what,
                       je == json_tokener_continue ? "cut short" : json_tokener_error_desc(je));
    }
    for (const char *p = (const char *)data + used; p < (const char *)data + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            json_object_put(o);
            return err_set(err, EINVAL, "%s: not JSON (data after the value)", what);
        }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return err_set(err, EINVAL, "%s: not a JSON object", what);
    }
    *out = o;
    return 0;
}

static void item_free(struct events_item *it)
{
    free(it->bucket);
    free(it->key);
    free(it->etag);
    free(it->id);
    free(it->error);
    memset(it, 0, sizeof(*it));
}

void events_free(struct events_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        item_free(&b->items[i]);
    free(b->items);
    free(b->schema);
    free(b->invocation_id);
    memset(b, 0, sizeof(*b));
}

/* A new empty item at the end of b. Returns it, or NULL with err set. */
static struct events_item *item_add(struct events_batch *b, size_t record, err_t *err)
{
    if (b->n >= EVENTS_MAX_ITEMS) {
        err_set(err, EFBIG, "more than %d objects in one invocation", EVENTS_MAX_ITEMS);
        return NULL;
    }
    if ((b->n & (b->n - 1)) == 0) { /* grow at powers of two */
        size_t cap = b->n ? b->n * 2 : 4;
        struct events_item *v = realloc(b->items, cap * sizeof(*v));
        if (v == NULL) {
            err_set(err, ENOMEM, "out of memory");
            return NULL;
        }
        b->items = v;
    }
    struct events_item *it = &b->items[b->n++];
    memset(it, 0, sizeof(*it));
    it->record = record;
    return it;
}

static bool bucket_ok(const char *s, size_t n)
{
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || s[i] == '/' || s[i] == 0x7f)
            return false;
    return true;
}

/* Fills it's bucket, key and etag; the key is form-decoded when encoded. Returns 0 or EINVAL /
 * ENOMEM with err set (what names the record). */
static int item_set(struct events_item *it, const char *what, const char *bucket, size_t blen,
                    const char *key, size_t klen, bool encoded, const char *etag, err_t *err)
{
    if (bucket == NULL || !bucket_ok(bucket, blen))
        return err_set(err, EINVAL, "%s: no valid bucket name", what);
    if (key == NULL || klen == 0)
        return err_set(err, EINVAL, "%s: no object key", what);
    size_t dlen = klen;
    if (encoded) {
        it->key = uri_decode(key, klen, true, &dlen);
        if (it->key == NULL)
            return err_set(err, EINVAL, "%s: object key '%.200s' is not validly URL-encoded", what,
                           key);
    } else {
        if (strlen(key) != klen)
            return err_set(err, EINVAL, "%s: object key holds a NUL byte", what);
        it->key = strndup(key, klen);
    }
    if (it->key && (dlen == 0 || dlen > EVENTS_MAX_KEY))
        return err_set(err, EINVAL, "%s: object key of %zu bytes (S3 allows 1 to %d)", what, dlen,
                       EVENTS_MAX_KEY);
    it->bucket = strndup(bucket, blen);
    if (etag) {
        size_t el = strlen(etag);
        if (el >= 2 && etag[0] == '"' && etag[el - 1] == '"') {
            etag++;
            el -= 2;
        }
        if (el > 0 && el < 128)
            it->etag = strndup(etag, el);
    }
    if (it->key == NULL || it->bucket == NULL)
        return err_set(err, ENOMEM, "out of memory");
    return 0;
}

static void size_set(struct events_item *it, json_object *v)
{
    if (v && json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0) {
        it->size = (uint64_t)json_object_get_int64(v);
        it->has_size = true;
    }
}

/* Adds the object that d names: d.bucket.name, d.object.key (percent-encoded in AWS's and
 * MinIO's S3 notifications, plain in RGW's and in EventBridge), d.object.<etag_member> and
 * d.object.size, with the message id when there is one. Returns 0 or an errno with err set. */
static int add_object(struct events_batch *b, size_t idx, const char *id, const char *what,
                      json_object *d, bool encoded, const char *etag_member, err_t *err)
{
    json_object *bk = member(d, "bucket", json_type_object);
    json_object *ob = member(d, "object", json_type_object);
    size_t bl = 0, kl = 0;
    const char *bucket = member_str(bk, "name", &bl), *key = member_str(ob, "key", &kl);
    struct events_item *it = item_add(b, idx, err);
    if (it == NULL)
        return err->code;
    if (id && (it->id = strdup(id)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    int rc =
        item_set(it, what, bucket, bl, key, kl, encoded, member_str(ob, etag_member, NULL), err);
    if (rc == 0)
        size_set(it, member(ob, "size", json_type_int));
    return rc;
}

/* The senders of S3 notification records (eventSource), and how each writes them. */
struct s3_source {
    const char *name;
    bool encoded;   /* s3.object.key is form-encoded ('+' a space, %XX a byte) */
    bool s3_prefix; /* eventName may also read "s3:ObjectCreated:Put" */
};

static const struct s3_source s3_sources[] = {
    /* AWS: encoded keys; eventName is always "ObjectCreated:Put", never with "s3:" */
    {"aws:s3", true, false},
    /* Ceph RGW bucket notifications: the key as it is, so '+' and "%41" are themselves;
     * eventName with or without "s3:" (releases differ) */
    {"ceph:s3", false, true},
    /* MinIO webhooks: keys encoded as AWS does; eventName "s3:ObjectCreated:Put" */
    {"minio:s3", true, true},
};

/* The sender called es, or NULL when es (may be NULL) is none of s3_sources. */
static const struct s3_source *s3_source_find(const char *es)
{
    for (size_t i = 0; es && i < sizeof(s3_sources) / sizeof(s3_sources[0]); i++)
        if (strcmp(es, s3_sources[i].name) == 0)
            return &s3_sources[i];
    return NULL;
}

/* One S3 notification record from src. Returns 0 (added or ignored) or an errno with err set. */
static int parse_s3_record(struct events_batch *b, json_object *rec, size_t idx, const char *id,
                           const struct s3_source *src, err_t *err)
{
    char what[64];
    snprintf(what, sizeof(what), "record %zu", idx);
    const char *name = member_str(rec, "eventName", NULL);
    if (name == NULL)
        return err_set(err, EINVAL, "%s: no eventName", what);
    if (src->s3_prefix && strncmp(name, "s3:", 3) == 0)
        name += 3;
    if (strncmp(name, "ObjectCreated:", 14) != 0) {
        b->ignored++;
        return 0;
    }
    return add_object(b, idx, id, what, member(rec, "s3", json_type_object), src->encoded, "eTag",
                      err);
}

/* The records of one S3 notification, all from the sender of the first: a payload that mixes
 * senders is refused whole. id is the SQS messageId the records came in (each item then gets
 * sqs_idx as its record), or NULL at the top level (each item gets its own record's index).
 * Returns 0 or an errno with err set. */
static int parse_s3_records(struct events_batch *b, json_object *recs, const char *id,
                            size_t sqs_idx, err_t *err)
{
    const struct s3_source *first = NULL;
    size_t n = json_object_array_length(recs);
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_array_get_idx(recs, i);
        const char *es = member_str(r, "eventSource", NULL);
        const struct s3_source *src = s3_source_find(es);
        if (src == NULL)
            return err_set(err, EINVAL,
                           "record %zu: eventSource '%.64s' is not aws:s3, ceph:s3 or minio:s3", i,
                           es ? es : "");
        if (first && src != first)
            return err_set(err, EINVAL, "record %zu: eventSource '%s' among records from '%s'", i,
                           src->name, first->name);
        first = src;
        int rc = parse_s3_record(b, r, id ? sqs_idx : i, id, src, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* An EventBridge event from aws.s3. Returns 0 (added or ignored) or an errno with err set. */
static int parse_eventbridge(struct events_batch *b, json_object *o, size_t idx, const char *id,
                             err_t *err)
{
    const char *src = member_str(o, "source", NULL), *type = member_str(o, "detail-type", NULL);
    if (src == NULL || strcmp(src, "aws.s3") != 0 || type == NULL)
        return err_set(err, EINVAL, "EventBridge event: not from aws.s3 (source '%.64s')",
                       src ? src : "");
    if (strcmp(type, "Object Created") != 0) {
        b->ignored++;
        return 0;
    }
    return add_object(b, idx, id, "EventBridge event", member(o, "detail", json_type_object), false,
                      "etag", err);
}

static bool is_test_event(json_object *o)
{
    const char *ev = member_str(o, "Event", NULL);
    return ev && strcmp(ev, "s3:TestEvent") == 0;
}

/* An S3 notification or EventBridge event inside an SQS message. */
static int parse_notification(struct events_batch *b, json_object *o, size_t idx, const char *id,
                              err_t *err)
{
    if (is_test_event(o)) {
        b->ignored++;
        return 0;
    }
    if (member(o, "detail-type", json_type_string))
        return parse_eventbridge(b, o, idx, id, err);
    json_object *recs = member(o, "Records", json_type_array);
    if (recs == NULL)
        return err_set(err, EINVAL, "not an S3 event notification (no Records)");
    return parse_s3_records(b, recs, id, idx, err);
}

/* One SQS message: its failures stay its own. */
static int parse_sqs_record(struct events_batch *b, json_object *rec, size_t idx, err_t *err)
{
    const char *id = member_str(rec, "messageId", NULL);
    size_t blen = 0;
    const char *body = member_str(rec, "body", &blen);
    if (id == NULL || *id == '\0')
        return err_set(err, EINVAL, "SQS record %zu: no messageId", idx);
    size_t first = b->n;
    err_t merr = {0};
    json_object *doc = NULL;
    int rc = body ? parse_json(body, blen, EVENTS_MAX_BODY, "message body", &doc, &merr)
                  : err_set(&merr, EINVAL, "no body");
    if (rc == 0)
        rc = parse_notification(b, doc, idx, id, &merr);
    json_object_put(doc);
    if (rc == ENOMEM || (rc == EFBIG && b->n >= EVENTS_MAX_ITEMS)) {
        err_set(err, rc, "%s", merr.msg);
        return rc;
    }
    if (rc == 0)
        return 0;
    while (b->n > first) /* the message fails as a whole */
        item_free(&b->items[--b->n]);
    struct events_item *it = item_add(b, idx, err);
    if (it == NULL)
        return err->code;
    char line[600];
    snprintf(line, sizeof(line), "SQS message %s: %s", id, merr.msg);
    util_scrub(line);
    it->id = strdup(id);
    it->error = strdup(line);
    if (it->id == NULL || it->error == NULL)
        return err_set(err, ENOMEM, "out of memory");
    return 0;
}

/* The bucket of an S3 bucket ARN (arn:aws:s3:::NAME): what follows the last ':'. */
static const char *arn_bucket(const char *arn, size_t *len)
{
    if (arn == NULL || strncmp(arn, "arn:", 4) != 0)
        return NULL;
    const char *c = strrchr(arn, ':');
    *len = strlen(c + 1);
    return c + 1;
}

static int parse_batch(struct events_batch *b, json_object *o, err_t *err)
{
    const char *schema = member_str(o, "invocationSchemaVersion", NULL);
    const char *inv = member_str(o, "invocationId", NULL);
    json_object *tasks = member(o, "tasks", json_type_array);
    if (schema == NULL || (strcmp(schema, "1.0") != 0 && strcmp(schema, "2.0") != 0))
        return err_set(err, EINVAL,
                       "S3 Batch Operations event: invocationSchemaVersion '%.16s' "
                       "is not 1.0 or 2.0",
                       schema ? schema : "");
    if (inv == NULL || tasks == NULL)
        return err_set(err, EINVAL, "S3 Batch Operations event: no %s",
                       inv == NULL ? "invocationId" : "tasks");
    b->kind = EVENTS_BATCH;
    b->schema = strdup(schema);
    b->invocation_id = strdup(inv);
    if (b->schema == NULL || b->invocation_id == NULL)
        return err_set(err, ENOMEM, "out of memory");
    bool v2 = schema[0] == '2';
    size_t n = json_object_array_length(tasks);
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(tasks, i);
        const char *id = member_str(t, "taskId", NULL);
        if (id == NULL || *id == '\0')
            return err_set(err, EINVAL, "S3 Batch Operations task %zu: no taskId", i);
        struct events_item *it = item_add(b, i, err);
        if (it == NULL)
            return err->code;
        if ((it->id = strdup(id)) == NULL)
            return err_set(err, ENOMEM, "out of memory");
        size_t bl = 0, kl = 0;
        const char *bucket = v2 ? member_str(t, "s3Bucket", &bl) : NULL;
        if (bucket == NULL)
            bucket = arn_bucket(member_str(t, "s3BucketArn", NULL), &bl);
        const char *key = member_str(t, "s3Key", &kl);
        char what[300];
        snprintf(what, sizeof(what), "task %.256s", id);
        err_t terr = {0};
        /* schema 1.0 carries the manifest's URL-encoded key (AWS's example decodes it with
         * unquote_plus); 2.0 carries the key as it is */
        int rc = item_set(it, what, bucket, bl, key, kl, !v2, NULL, &terr);
        if (rc == ENOMEM)
            return err_set(err, rc, "%s", terr.msg);
        if (rc) {
            util_scrub(terr.msg);
            free(it->bucket);
            free(it->key);
            free(it->etag);
            it->bucket = it->key = it->etag = NULL;
            if ((it->error = strdup(terr.msg)) == NULL)
                return err_set(err, ENOMEM, "out of memory");
        }
    }
    return 0;
}

int events_parse(const void *data, size_t len, struct events_batch *out, err_t *err)
{
    json_object *o = NULL;
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = parse_json(data, len, EVENTS_MAX_PAYLOAD, "event", &o, err)))
        goto out;
    json_object *recs = member(o, "Records", json_type_array);
    if (recs) {
        size_t n = json_object_array_length(recs);
        const char *es =
            n ? member_str(json_object_array_get_idx(recs, 0), "eventSource", NULL) : "aws:s3";
        if (es && strcmp(es, "aws:sqs") == 0) {
            out->kind = EVENTS_SQS;
            for (size_t i = 0; i < n && rc == 0; i++) {
                json_object *r = json_object_array_get_idx(recs, i);
                const char *s = member_str(r, "eventSource", NULL);
                if (s == NULL || strcmp(s, "aws:sqs") != 0)
                    rc = err_set(err, EINVAL, "record %zu: eventSource is not aws:sqs", i);
                else
                    rc = parse_sqs_record(out, r, i, err);
            }
        } else if (s3_source_find(es)) {
            out->kind = EVENTS_S3;
            rc = parse_s3_records(out, recs, NULL, 0, err);
        } else {
            rc = err_set(err, EINVAL,
                         "event: records from '%.64s', neither S3 notifications (aws:s3, ceph:s3, "
                         "minio:s3) nor aws:sqs",
                         es ? es : "");
        }
    } else if (member(o, "invocationSchemaVersion", json_type_string)) {
        rc = parse_batch(out, o, err);
    } else if (member(o, "detail-type", json_type_string)) {
        out->kind = EVENTS_EVENTBRIDGE;
        rc = parse_eventbridge(out, o, 0, NULL, err);
    } else if (is_test_event(o)) {
        out->kind = EVENTS_S3;
        out->ignored++;
    } else {
        rc = err_set(err, EINVAL,
                     "event: not an S3 notification, SQS batch, S3 Batch Operations "
                     "job or EventBridge event");
    }
out:
    json_object_put(o);
    if (rc) {
        events_free(out);
        if (err)
            util_scrub(err->msg);
    }
    return rc;
}

bool events_errno_temporary(int e)
{
    switch (e) {
    case ENOENT: /* the object is gone (NoSuchKey) */
    case EINVAL: /* validation: a bad key, a bad torrent, a mismatch */
    case EACCES: /* access denied: another attempt gets the same answer */
    case EPERM:
    case ENAMETOOLONG:
    case EFBIG:
    case EBADMSG:
        return false;
    default: /* EAGAIN, EIO (5xx), ETIMEDOUT, ECONNRESET, ESTALE (changed while hashing), ... */
        return true;
    }
}

static int add_str(json_object *o, const char *name, const char *v)
{
    json_object *s = json_object_new_string(v ? v : "");
    if (s == NULL || json_object_object_add(o, name, s) != 0) {
        json_object_put(s);
        return ENOMEM;
    }
    return 0;
}

static int add_obj(json_object *o, const char *name, json_object *v)
{
    if (v == NULL || json_object_object_add(o, name, v) != 0) {
        json_object_put(v);
        return ENOMEM;
    }
    return 0;
}

static int arr_add(json_object *a, json_object *v)
{
    if (v == NULL || json_object_array_add(a, v) != 0) {
        json_object_put(v);
        return ENOMEM;
    }
    return 0;
}

static bool failed(enum events_outcome_code c)
{
    return c == EVENTS_TEMPORARY || c == EVENTS_PERMANENT || c == EVENTS_NOT_DONE;
}

static int response_sqs(const struct events_batch *b, const struct events_outcome *outs,
                        json_object *r)
{
    json_object *a = json_object_new_array();
    int rc = add_obj(r, "batchItemFailures", a);
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        if (!failed(outs[i].code))
            continue;
        bool seen = false; /* one entry per message, however many records it held */
        for (size_t j = 0; j < i && !seen; j++)
            seen = failed(outs[j].code) && strcmp(b->items[j].id, b->items[i].id) == 0;
        if (seen)
            continue;
        json_object *e = json_object_new_object();
        if ((rc = arr_add(a, e)) == 0)
            rc = add_str(e, "itemIdentifier", b->items[i].id);
    }
    return rc;
}

static int response_batch(const struct events_batch *b, const struct events_outcome *outs,
                          json_object *r)
{
    json_object *a = json_object_new_array();
    int rc = add_str(r, "invocationSchemaVersion", b->schema);
    if (rc == 0)
        rc = add_str(r, "treatMissingKeysAs", "PermanentFailure");
    if (rc == 0)
        rc = add_str(r, "invocationId", b->invocation_id);
    if (rc == 0)
        rc = add_obj(r, "results", a);
    else
        json_object_put(a);
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        const struct events_outcome *o = &outs[i];
        const char *code = o->code == EVENTS_PERMANENT ? "PermanentFailure"
                           : o->code == EVENTS_TEMPORARY || o->code == EVENTS_NOT_DONE
                               ? "TemporaryFailure"
                               : "Succeeded";
        char line[700];
        if (o->code == EVENTS_DONE)
            snprintf(line, sizeof(line), "%s %s", o->action, o->info_hash ? o->info_hash : "");
        else
            snprintf(line, sizeof(line), "%s: %s", o->action, o->message ? o->message : "");
        json_object *e = json_object_new_object();
        if ((rc = arr_add(a, e)) == 0 && (rc = add_str(e, "taskId", b->items[i].id)) == 0 &&
            (rc = add_str(e, "resultCode", code)) == 0)
            rc = add_str(e, "resultString", line);
    }
    return rc;
}

static int response_summary(const struct events_batch *b, const struct events_outcome *outs,
                            json_object *r, bool *fail)
{
    json_object *res = json_object_new_array(), *nd = json_object_new_array();
    int rc = add_obj(r, "results", res);
    if (rc == 0)
        rc = add_obj(r, "not_done", nd);
    else
        json_object_put(nd);
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        const struct events_item *it = &b->items[i];
        const struct events_outcome *o = &outs[i];
        json_object *e = json_object_new_object();
        if (o->code == EVENTS_TEMPORARY || o->code == EVENTS_NOT_DONE)
            *fail = true;
        if ((rc = arr_add(o->code == EVENTS_NOT_DONE ? nd : res, e)) == 0 &&
            (rc = add_str(e, "bucket", it->bucket)) == 0 &&
            (rc = add_str(e, "key", it->key)) == 0 && (rc = add_str(e, "action", o->action)) == 0 &&
            (rc = add_str(e, "info_hash", o->info_hash)) == 0)
            rc = o->code == EVENTS_SKIPPED ? add_str(e, "reason", o->message)
                 : failed(o->code)         ? add_str(e, "error", o->message)
                                           : 0;
    }
    return rc;
}

int events_response(const struct events_batch *b, const struct events_outcome *outs,
                    json_object **out, bool *fail)
{
    json_object *r = json_object_new_object();
    int rc = r ? 0 : ENOMEM;
    *fail = false;
    if (rc == 0) {
        switch (b->kind) {
        case EVENTS_SQS:
            rc = response_sqs(b, outs, r);
            break;
        case EVENTS_BATCH:
            rc = response_batch(b, outs, r);
            break;
        case EVENTS_S3:
        case EVENTS_EVENTBRIDGE:
            rc = response_summary(b, outs, r, fail);
            break;
        }
    }
    if (rc) {
        json_object_put(r);
        r = NULL;
    }
    *out = r;
    return rc;
}
