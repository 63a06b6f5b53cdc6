/* fanout.c — objects of any size on Lambda: the plan, the runs, their items and the assembly
 * (docs/DESIGN.md §10, "Fan-out"). */
#include "fanout.h"
#include "events.h"
#include "handler.h"
#include "lamlog.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3torrent/hasher.h"
#include "s3torrent/torrent.h"

#define RUN_JSON_MAX   (64 * 1024) /* bytes of a run message's body */
#define EVENT_JSON_MAX (6 * 1024 * 1024)
#define JSON_DEPTH     16
#define RUN_ITEM_TTL_S (7 * 86400) /* a run's item outlives its fan-out by a week at most */
#define SQS_BATCH      10          /* entries of one SendMessageBatch */

/* ---- messages ---- */

static json_object *parse_json(const void *data, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return NULL;
    json_tokener *tok = json_tokener_new_ex(JSON_DEPTH);
    if (tok == NULL)
        return NULL;
    json_object *o = json_tokener_parse_ex(tok, data, (int)len);
    bool whole = json_tokener_get_error(tok) == json_tokener_success &&
                 json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    if (o && (!whole || !json_object_is_type(o, json_type_object))) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

static bool get_str(json_object *o, const char *name, char *dst, size_t cap)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
        return false;
    size_t n = (size_t)json_object_get_string_len(v);
    const char *s = json_object_get_string(v);
    if (n == 0 || n >= cap || memchr(s, '\0', n))
        return false;
    memcpy(dst, s, n + 1);
    return true;
}

static bool get_int(json_object *o, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_int))
        return false;
    errno = 0;
    int64_t n = json_object_get_int64(v);
    if (errno || n < lo || n > hi)
        return false;
    *out = n;
    return true;
}

/* The pieces of run r: [*first, *first + *count). */
static void run_span(const struct fanout_run *r, uint64_t *first, uint64_t *count)
{
    uint64_t npieces = (r->size + r->piece_length - 1) / r->piece_length;
    *first = r->run * r->run_pieces;
    *count = r->run + 1 == r->runs ? npieces - *first : r->run_pieces;
}

int fanout_parse_run(const void *body, size_t len, struct fanout_run *out, err_t *err)
{
    memset(out, 0, sizeof(*out));
    json_object *doc = parse_json(body, len, RUN_JSON_MAX), *o;
    if (doc == NULL || !json_object_object_get_ex(doc, "s3torrent_run", &o)) {
        json_object_put(doc);
        return ENOENT;
    }
    int64_t size, mtime, plen, run, runs, rp;
    char meta[16];
    enum torrent_meta m;
    const char *bad = NULL;
    if (!json_object_is_type(o, json_type_object))
        bad = "not an object";
    else if (!get_str(o, "bucket", out->bucket, sizeof(out->bucket)) ||
             !get_str(o, "key", out->key, sizeof(out->key)) ||
             !get_str(o, "etag", out->etag, sizeof(out->etag)))
        bad = "bucket, key and etag are strings of the right length";
    else if (!get_int(o, "size", 1, INT64_MAX, &size) ||
             !get_int(o, "mtime", INT64_MIN, INT64_MAX, &mtime) ||
             !get_int(o, "piece_length", 16384, 1 << 30, &plen) || (plen & (plen - 1)) != 0)
        bad = "size, mtime and piece_length (a power of two from 16 KiB) are integers";
    else if (!get_str(o, "meta", meta, sizeof(meta)) || torrent_parse_meta(meta, &m) != 0)
        bad = "meta is v1, v2 or hybrid";
    else if (!get_int(o, "runs", 2, 1000000, &runs) || !get_int(o, "run", 0, runs - 1, &run) ||
             !get_int(o, "run_pieces", 2, FANOUT_MAX_RUN_PIECES, &rp))
        bad = "run, runs and run_pieces are out of range";
    if (bad == NULL) {
        out->size = (uint64_t)size;
        out->mtime = mtime;
        out->piece_length = (uint64_t)plen;
        out->meta = (unsigned)m;
        out->run = (uint64_t)run;
        out->runs = (uint64_t)runs;
        out->run_pieces = (uint64_t)rp;
        uint64_t npieces = (out->size + out->piece_length - 1) / out->piece_length;
        if (npieces / out->run_pieces != out->runs)
            bad = "runs is not the object's pieces over run_pieces";
    }
    json_object_put(doc);
    if (bad) {
        memset(out, 0, sizeof(*out));
        return err_set(err, EINVAL, "run message: %s", bad);
    }
    return 0;
}

int fanout_run_json(const struct fanout_run *r, char **out)
{
    json_object *doc = json_object_new_object(), *o = json_object_new_object();
    *out = NULL;
    int rc = doc && o ? 0 : ENOMEM;
    if (rc == 0 && (rc = ddb_add(doc, "s3torrent_run", o)) != 0)
        o = NULL;
    else if (rc)
        json_object_put(o);
    if (rc == 0)
        rc = ddb_add(o, "bucket", json_object_new_string(r->bucket)) ||
                     ddb_add(o, "key", json_object_new_string(r->key)) ||
                     ddb_add(o, "etag", json_object_new_string(r->etag)) ||
                     ddb_add(o, "size", json_object_new_int64((int64_t)r->size)) ||
                     ddb_add(o, "mtime", json_object_new_int64(r->mtime)) ||
                     ddb_add(o, "piece_length", json_object_new_int64((int64_t)r->piece_length)) ||
                     ddb_add(o, "meta", json_object_new_string(torrent_meta_name(r->meta))) ||
                     ddb_add(o, "run", json_object_new_int64((int64_t)r->run)) ||
                     ddb_add(o, "runs", json_object_new_int64((int64_t)r->runs)) ||
                     ddb_add(o, "run_pieces", json_object_new_int64((int64_t)r->run_pieces))
                 ? ENOMEM
                 : 0;
    if (rc == 0 && (*out = strdup(json_object_to_json_string_ext(
                        doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE))) == NULL)
        rc = ENOMEM;
    json_object_put(doc);
    return rc;
}

int fanout_parse_event(const void *data, size_t len, struct fanout_batch *out, err_t *err)
{
    memset(out, 0, sizeof(*out));
    json_object *doc = parse_json(data, len, EVENT_JSON_MAX), *recs;
    int rc = ENOENT;
    if (doc == NULL || !json_object_object_get_ex(doc, "Records", &recs) ||
        !json_object_is_type(recs, json_type_array) || json_object_array_length(recs) == 0)
        goto out;
    size_t n = json_object_array_length(recs);
    out->runs = calloc(n, sizeof(*out->runs));
    out->ids = calloc(n, sizeof(*out->ids));
    if (out->runs == NULL || out->ids == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_array_get_idx(recs, i), *body;
        char src[16];
        if (!json_object_is_type(r, json_type_object) ||
            !get_str(r, "eventSource", src, sizeof(src)) || strcmp(src, "aws:sqs") != 0 ||
            !get_str(r, "messageId", out->ids[i], sizeof(out->ids[i])) ||
            !json_object_object_get_ex(r, "body", &body) ||
            !json_object_is_type(body, json_type_string)) {
            rc = ENOENT;
            goto out;
        }
        err_t perr = {0};
        rc = fanout_parse_run(json_object_get_string(body),
                              (size_t)json_object_get_string_len(body), &out->runs[i], &perr);
        if (rc == EINVAL)
            err_set(err, rc, "record %zu: %s", i, perr.msg);
        if (rc)
            goto out;
        out->n = i + 1;
    }
    rc = 0;
out:
    json_object_put(doc);
    if (rc)
        fanout_batch_free(out);
    return rc;
}

void fanout_batch_free(struct fanout_batch *b)
{
    free(b->runs);
    free(b->ids);
    memset(b, 0, sizeof(*b));
}

/* ---- items ---- */

static const char *key_attr(const struct status_store *st)
{
    return st->key_attr && *st->key_attr ? st->key_attr : STATUS_KEY_ATTR_DEFAULT;
}

static json_object *item_key(const struct status_store *st, const char *k)
{
    json_object *o = json_object_new_object();
    if (o && ddb_add(o, key_attr(st), ddb_s(k)) != 0) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

/* The status item's key and a run's item key. */
static void status_uri(const struct fanout_run *r, char *out, size_t cap)
{
    snprintf(out, cap, "s3://%s/%s", r->bucket, r->key);
}

static void run_uri(const struct fanout_run *r, uint64_t run, char *out, size_t cap)
{
    snprintf(out, cap, "s3torrent-run/%s/%s/%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/s3://%s/%s",
             r->etag, torrent_meta_name(r->meta), r->piece_length, r->run_pieces, run, r->bucket,
             r->key);
}

static int64_t lease_of(int64_t deadline_ms)
{
    return deadline_ms > 0 ? deadline_ms / 1000 + 1 : (int64_t)time(NULL) + STATUS_LEASE_DEFAULT;
}

/* One UpdateItem of item k: update and condition texts with placeholders #om #et #st (the
 * version and status attributes, always mapped) and the values given (taken). Returns 0,
 * EEXIST when the condition failed, or another errno with err set; *attrs (may be NULL) gets
 * the answer's Attributes (UPDATED_NEW). */
static int update(const struct status_store *st, const char *k, const char *expr, const char *cond,
                  json_object *values, json_object **answer, err_t *err)
{
    static const char *const map[][2] = {
        {"#om", "object_mtime"}, {"#et", "etag"},      {"#st", "status"},
        {"#lu", "lease_until"},  {"#rd", "runs_done"}, {"#au", "assemble_until"},
        {"#rn", "runs"},         {"#dn", "done"},      {"#ex", "expires_at"},
        {"#v1", "v1"},           {"#v2", "v2"},
    };
    json_object *req = json_object_new_object(), *names = json_object_new_object();
    int rc = 0;
    if (answer)
        *answer = NULL;
    bool bad = req == NULL || names == NULL || values == NULL;
    /* the names the expressions use (DynamoDB refuses others) */
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]) && !bad; i++)
        if (strstr(expr, map[i][0]) || (cond && strstr(cond, map[i][0])))
            bad = ddb_add(names, map[i][0], json_object_new_string(map[i][1])) != 0;
    if (bad || ddb_add(req, "TableName", json_object_new_string(st->table)) ||
        ddb_add(req, "Key", item_key(st, k)) ||
        ddb_add(req, "UpdateExpression", json_object_new_string(expr)) ||
        (cond && ddb_add(req, "ConditionExpression", json_object_new_string(cond)))) {
        json_object_put(values);
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    if (ddb_add(req, "ExpressionAttributeNames", names) ||
        ddb_add(req, "ExpressionAttributeValues", values) ||
        (answer && ddb_add(req, "ReturnValues", json_object_new_string("UPDATED_NEW")))) {
        names = NULL;
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    names = NULL;
    json_object *doc = NULL, *attrs;
    rc = ddb_call(st->ddb, "UpdateItem", req, answer ? &doc : NULL, err);
    if (rc == 0 && answer && json_object_object_get_ex(doc, "Attributes", &attrs))
        *answer = json_object_get(attrs);
    json_object_put(doc);
out:
    json_object_put(names);
    json_object_put(req);
    return rc;
}

/* Values of the version condition ":om", ":et", ":hashing" (and more added by the caller). */
static json_object *version_values(const struct fanout_run *r)
{
    json_object *v = json_object_new_object();
    if (v && (ddb_add(v, ":om", ddb_n_i64(r->mtime)) || ddb_add(v, ":et", ddb_s(r->etag)) ||
              ddb_add(v, ":hashing", ddb_s("HASHING")))) {
        json_object_put(v);
        v = NULL;
    }
    return v;
}

#define SAME_VERSION "#om = :om AND #et = :et AND #st = :hashing"

/* Reads item k (consistent). Returns 0 with *doc (put it; *item inside it, or NULL when there is
 * none), or an errno with err set. */
static int get_item(const struct status_store *st, const char *k, json_object **doc,
                    json_object **item, err_t *err)
{
    json_object *req = json_object_new_object();
    int rc;
    *doc = *item = NULL;
    if (req == NULL || ddb_add(req, "TableName", json_object_new_string(st->table)) ||
        ddb_add(req, "Key", item_key(st, k)) ||
        ddb_add(req, "ConsistentRead", json_object_new_boolean(1)))
        rc = err_set(err, ENOMEM, "out of memory");
    else if ((rc = ddb_call(st->ddb, "GetItem", req, doc, err)) == 0 &&
             (!json_object_object_get_ex(*doc, "Item", item) ||
              !json_object_is_type(*item, json_type_object)))
        *item = NULL;
    json_object_put(req);
    return rc;
}

static json_object *ddb_b(const uint8_t *p, size_t n)
{
    char *b64 = malloc(4 * ((n + 2) / 3) + 1);
    json_object *v = b64 ? json_object_new_object() : NULL;
    if (v) {
        int len = EVP_EncodeBlock((unsigned char *)b64, p, (int)n);
        if (ddb_add(v, "B", json_object_new_string_len(b64, len))) {
            json_object_put(v);
            v = NULL;
        }
    }
    free(b64);
    return v;
}

/* Binary attribute name of item, decoded into a new buffer of *n bytes (want bytes exactly).
 * Returns it, or NULL. */
static uint8_t *item_b(json_object *item, const char *name, size_t want)
{
    json_object *a, *b;
    if (!json_object_object_get_ex(item, name, &a) || !json_object_object_get_ex(a, "B", &b) ||
        !json_object_is_type(b, json_type_string))
        return NULL;
    size_t len = (size_t)json_object_get_string_len(b);
    if (len % 4 != 0 || len / 4 * 3 < want || len / 4 * 3 > want + 2)
        return NULL;
    uint8_t *out = malloc(len / 4 * 3 + 1);
    if (out && EVP_DecodeBlock(out, (const unsigned char *)json_object_get_string(b), (int)len) !=
                   (int)(len / 4 * 3)) {
        free(out);
        out = NULL;
    }
    return out;
}

/* ---- the plan ---- */

static int send_runs(const struct fanout *f, const struct fanout_run *plan, err_t *err)
{
    int rc = 0;
    for (uint64_t i = 0; i < plan->runs && rc == 0; i += SQS_BATCH) {
        json_object *req = json_object_new_object(), *entries = json_object_new_array();
        rc = req && entries ? 0 : ENOMEM;
        for (uint64_t k = i; k < i + SQS_BATCH && k < plan->runs && rc == 0; k++) {
            struct fanout_run r = *plan;
            char id[32], *body = NULL;
            json_object *e = json_object_new_object();
            r.run = k;
            snprintf(id, sizeof(id), "run-%" PRIu64, k);
            if (e == NULL || (rc = fanout_run_json(&r, &body)) ||
                ddb_add(e, "Id", json_object_new_string(id)) ||
                ddb_add(e, "MessageBody", json_object_new_string(body)) ||
                json_object_array_add(entries, e)) {
                json_object_put(e);
                rc = ENOMEM;
            }
            free(body);
        }
        if (rc || ddb_add(req, "QueueUrl", json_object_new_string(f->queue_url)) ||
            ddb_add(req, "Entries", entries)) {
            entries = NULL;
            json_object_put(req);
            return err_set(err, ENOMEM, "out of memory");
        }
        json_object *doc = NULL, *failed;
        if ((rc = ddb_call(f->sqs, "SendMessageBatch", req, &doc, err)) == 0 &&
            json_object_object_get_ex(doc, "Failed", &failed) &&
            json_object_is_type(failed, json_type_array) && json_object_array_length(failed) > 0) {
            json_object *m = NULL, *first = json_object_array_get_idx(failed, 0);
            json_object_object_get_ex(first, "Message", &m);
            rc = err_set(err, EAGAIN, "SQS SendMessageBatch: %zu of the runs not sent: %.200s",
                         json_object_array_length(failed), m ? json_object_get_string(m) : "");
        }
        json_object_put(doc);
        json_object_put(req);
    }
    return rc;
}

int fanout_hand_out(void *arg, const struct status_object *so, err_t *err)
{
    const struct fanout_ctx *x = arg;
    const struct fanout *f = x->f;
    const struct status_store *st = x->sc->status;
    if (f == NULL || f->sqs == NULL || st == NULL)
        return ENOTSUP;
    int64_t left_ms =
        x->deadline_ms > 0 ? x->deadline_ms - handler_now_ms() - FANOUT_MARGIN_MS : INT64_MAX / 2;
    uint64_t rate = f->rate ? f->rate : 1;
    bool fits =
        so->size <= f->fanout_bytes &&
        (x->deadline_ms <= 0 || (left_ms > 0 && so->size / rate <= (uint64_t)left_ms / 1000));
    if (fits)
        return ENOTSUP;
    const struct torrent_recipe *rec = x->sc->recipe;
    struct fanout_run plan = {.size = so->size, .mtime = so->mtime, .meta = rec->meta};
    plan.piece_length = rec->piece_length ? rec->piece_length : torrent_auto_piece_length(so->size);
    uint64_t budget = f->run_bytes;
    if (x->deadline_ms > 0) { /* a run has what this invocation had, and half of it to spare */
        uint64_t whole = (uint64_t)(x->deadline_ms - handler_now_ms()) / 1000 * rate / 2;
        if (whole < budget)
            budget = whole;
    }
    uint64_t npieces = (so->size + plan.piece_length - 1) / plan.piece_length;
    plan.run_pieces = budget / plan.piece_length;
    if (plan.run_pieces < 2)
        plan.run_pieces = 2;
    if (plan.run_pieces > FANOUT_MAX_RUN_PIECES)
        plan.run_pieces = FANOUT_MAX_RUN_PIECES;
    plan.runs = npieces / plan.run_pieces;
    if (plan.runs < 2)
        return ENOTSUP; /* one run: no faster elsewhere */
    if (strlen(so->bucket) >= sizeof(plan.bucket) || strlen(so->key) >= sizeof(plan.key) ||
        strlen(so->etag) >= sizeof(plan.etag))
        return ENOTSUP;
    snprintf(plan.bucket, sizeof(plan.bucket), "%s", so->bucket);
    snprintf(plan.key, sizeof(plan.key), "%s", so->key);
    snprintf(plan.etag, sizeof(plan.etag), "%s", so->etag);

    /* the plan, in the status item under this writer's lease */
    char uri[1200];
    status_uri(&plan, uri, sizeof(uri));
    json_object *v = version_values(&plan);
    if (v)
        ddb_add(v, ":runs", ddb_n_u64(plan.runs));
    int rc = update(st, uri, "SET #rn = :runs REMOVE #rd, #au", SAME_VERSION, v, NULL, err);
    if (rc == EEXIST)
        return err_set(err, EAGAIN, "%s: the status item changed before the plan was recorded",
                       uri);
    if (rc || (rc = send_runs(f, &plan, err)))
        return rc;
    log_msg(x->sc->log, LOG_INFO,
            "%s: %" PRIu64 " bytes handed out as %" PRIu64 " runs of %" PRIu64 " pieces of %" PRIu64
            " bytes",
            uri, plan.size, plan.runs, plan.run_pieces, plan.piece_length);
    return 0;
}

/* ---- a run ---- */

/* A source over [off, off + size) of another (which it owns). */
struct window {
    struct source base;
    struct source *in;
    uint64_t off;
};

static int win_open(struct source *s, uint64_t off, uint64_t len, void **stream, err_t *err)
{
    struct window *w = (struct window *)s;
    return w->in->ops->stream_open(w->in, w->off + off, len, stream, err);
}

static int win_next(struct source *s, void *stream, size_t n, uint8_t *scratch,
                    const uint8_t **data, err_t *err)
{
    struct window *w = (struct window *)s;
    return w->in->ops->stream_next(w->in, stream, n, scratch, data, err);
}

static void win_close(struct source *s, void *stream)
{
    struct window *w = (struct window *)s;
    w->in->ops->stream_close(w->in, stream);
}

static int win_finish(struct source *s, err_t *err)
{
    struct window *w = (struct window *)s;
    return w->in->ops->finish(w->in, err);
}

static void win_destroy(struct source *s)
{
    source_free(((struct window *)s)->in);
}

static int win_feed(struct source *s, void *stream, size_t n, buf_sink_fn sink, void *arg,
                    err_t *err)
{
    struct window *w = (struct window *)s;
    return w->in->ops->stream_feed(w->in, stream, n, sink, arg, err);
}

/* the second for a source that feeds (an S3 object's): its bytes go to the hash uncopied */
static const struct source_ops window_ops = {win_open,  win_next,   NULL,
                                             win_close, win_finish, win_destroy};
static const struct source_ops window_feed_ops = {win_open,  win_next,   win_feed,
                                                  win_close, win_finish, win_destroy};

/* Hashes run r's pieces from the store. Returns 0 (free res) or an errno with err set. */
static int hash_run(const struct fanout_ctx *x, const struct fanout_run *r,
                    struct hasher_result *res, err_t *err)
{
    const struct maker *mk = x->sc->maker;
    struct store_object obj = {.size = r->size, .mtime = r->mtime};
    struct source *in = NULL;
    uint64_t first, count;
    snprintf(obj.etag, sizeof(obj.etag), "%s", r->etag);
    run_span(r, &first, &count);
    int rc = store_open_source(mk->store, r->bucket, r->key, &obj, mk->parallel, &in, err);
    if (rc)
        return rc;
    struct window *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->base.name = strdup(in->name ? in->name : "run")) == NULL ||
        (w->base.display = strdup(in->display ? in->display : "run")) == NULL) {
        if (w)
            free(w->base.name);
        free(w);
        source_free(in);
        return err_set(err, ENOMEM, "out of memory");
    }
    w->base.ops = in->ops->stream_feed ? &window_feed_ops : &window_ops;
    w->in = in;
    w->off = first * r->piece_length;
    w->base.size = first + count == (r->size + r->piece_length - 1) / r->piece_length
                       ? r->size - w->off
                       : count * r->piece_length;
    w->base.mtime = in->mtime;
    w->base.span = in->span;
    w->base.parallel = in->parallel;
    struct hasher_opts ho = {.piece_length = r->piece_length,
                             .v1 = (r->meta & TORRENT_V1) != 0,
                             .v2 = (r->meta & TORRENT_V2) != 0,
                             .threads = mk->threads};
    rc = hasher_run(&w->base, &ho, res, err);
    source_free(&w->base);
    return rc;
}

/* Keeps run r's hashes in its item (the same bytes whoever writes them). */
static int put_run(const struct fanout_ctx *x, const struct fanout_run *r,
                   const struct hasher_result *h, err_t *err)
{
    const struct status_store *st = x->sc->status;
    char k[1400];
    run_uri(r, r->run, k, sizeof(k));
    json_object *v = json_object_new_object();
    int rc = v ? 0 : ENOMEM;
    if (rc == 0 && (ddb_add(v, ":t", ddb_bool(true)) ||
                    ddb_add(v, ":ex", ddb_n_i64((int64_t)time(NULL) + RUN_ITEM_TTL_S)) ||
                    (h->v1_pieces && ddb_add(v, ":v1", ddb_b(h->v1_pieces, 20 * h->npieces))) ||
                    (h->v2_layer && ddb_add(v, ":v2", ddb_b(h->v2_layer, 32 * h->npieces)))))
        rc = ENOMEM;
    if (rc) {
        json_object_put(v);
        return err_set(err, rc, "out of memory");
    }
    char expr[128];
    snprintf(expr, sizeof(expr), "SET #dn = :t, #ex = :ex%s%s REMOVE #lu",
             h->v1_pieces ? ", #v1 = :v1" : "", h->v2_layer ? ", #v2 = :v2" : "");
    return update(st, k, expr, NULL, v, NULL, err);
}

/* Whether run k of r's plan is done (its item has its hashes). */
static int run_done(const struct status_store *st, const struct fanout_run *r, uint64_t k,
                    bool *done, err_t *err)
{
    char key[1400];
    json_object *doc, *item, *d, *b;
    run_uri(r, k, key, sizeof(key));
    int rc = get_item(st, key, &doc, &item, err);
    *done = rc == 0 && item && json_object_object_get_ex(item, "done", &d) &&
            json_object_object_get_ex(d, "BOOL", &b) && json_object_get_boolean(b);
    json_object_put(doc);
    return rc;
}

/* Takes run r's lease until the deadline. Returns 0, EBUSY (another's lease runs, or the run
 * is done: *done), or another errno. */
static int take_run(const struct fanout_ctx *x, const struct fanout_run *r, bool *done, err_t *err)
{
    const struct status_store *st = x->sc->status;
    char k[1400];
    run_uri(r, r->run, k, sizeof(k));
    json_object *v = json_object_new_object();
    if (v && (ddb_add(v, ":l", ddb_n_i64(lease_of(x->deadline_ms))) ||
              ddb_add(v, ":now", ddb_n_i64((int64_t)time(NULL))) ||
              ddb_add(v, ":ex", ddb_n_i64((int64_t)time(NULL) + RUN_ITEM_TTL_S)))) {
        json_object_put(v);
        v = NULL;
    }
    int rc = update(st, k, "SET #lu = :l, #ex = :ex",
                    "attribute_not_exists(#dn) AND (attribute_not_exists(#lu) OR #lu < :now)", v,
                    NULL, err);
    *done = false;
    if (rc == EEXIST && (rc = run_done(st, r, r->run, done, err)) == 0 && !*done)
        rc = err_set(err, EBUSY,
                     "s3://%s/%s: run %" PRIu64 " of %" PRIu64
                     " is being hashed by another invocation: left to it",
                     r->bucket, r->key, r->run + 1, r->runs);
    return rc;
}

/* Reads every run's hashes and joins them. Returns 0 (free out) or an errno with err set. */
static int gather(const struct fanout_ctx *x, const struct fanout_run *r, struct hasher_result *out,
                  err_t *err)
{
    const struct status_store *st = x->sc->status;
    struct hasher_result *parts = calloc(r->runs, sizeof(*parts));
    int rc = parts ? 0 : err_set(err, ENOMEM, "out of memory");
    uint64_t npieces = (r->size + r->piece_length - 1) / r->piece_length;
    for (uint64_t k = 0; k < r->runs && rc == 0; k++) {
        struct fanout_run rk = *r;
        uint64_t first, count;
        char key[1400];
        json_object *doc, *item;
        rk.run = k;
        run_span(&rk, &first, &count);
        run_uri(r, k, key, sizeof(key));
        if ((rc = get_item(st, key, &doc, &item, err)))
            break;
        struct hasher_result *p = &parts[k];
        p->piece_length = r->piece_length;
        p->npieces = count;
        p->size =
            first + count == npieces ? r->size - first * r->piece_length : count * r->piece_length;
        if (item && (r->meta & TORRENT_V1))
            p->v1_pieces = item_b(item, "v1", 20 * count);
        if (item && (r->meta & TORRENT_V2))
            p->v2_layer = item_b(item, "v2", 32 * count);
        if (item == NULL || ((r->meta & TORRENT_V1) && !p->v1_pieces) ||
            ((r->meta & TORRENT_V2) && !p->v2_layer))
            rc = err_set(err, EIO, "s3://%s/%s: run %" PRIu64 "'s hashes are missing or cut",
                         r->bucket, r->key, k + 1);
        json_object_put(doc);
    }
    if (rc == 0)
        rc = hasher_result_join(parts, r->runs, out, err);
    for (uint64_t k = 0; parts && k < r->runs; k++)
        hasher_result_free(&parts[k]);
    free(parts);
    return rc;
}

/* Lays the torrent out from the runs' hashes, PUTs it and writes READY (sync_object). */
static int assemble(const struct fanout_ctx *x, const struct fanout_run *r, err_t *err)
{
    struct hasher_result h;
    int rc = gather(x, r, &h, err);
    if (rc)
        return rc;
    struct sync_config c = *x->sc;
    c.known = &h;
    c.known_runs = r->runs;
    c.hand_out = NULL;
    struct store_object obj = {.size = r->size, .mtime = r->mtime};
    snprintf(obj.etag, sizeof(obj.etag), "%s", r->etag);
    struct sync_result res;
    rc = sync_object(&c, r->bucket, r->key, &obj, NULL, &res, NULL);
    hasher_result_free(&h);
    if (rc)
        return err_set(err, rc, "%s", res.why);
    log_msg(x->sc->log, LOG_INFO, "%s s3://%s/%s %s (from %" PRIu64 " runs)",
            sync_action_name(res.action), r->bucket, r->key,
            res.info_hash[0] ? res.info_hash : res.info_hash_v2, r->runs);
    return 0;
}

int fanout_do_run(const struct fanout_ctx *x, const struct fanout_run *r, bool *assembled,
                  uint64_t *hashed, err_t *err)
{
    const struct status_store *st = x->sc->status;
    struct status_item *it = calloc(1, sizeof(*it));
    char uri[1200];
    bool done = false;
    int rc;
    *assembled = false;
    *hashed = 0;
    if (st == NULL) {
        free(it);
        return err_set(err, EINVAL, "a run message, but no status table (DDB_TABLE)");
    }
    if (it == NULL)
        return err_set(err, ENOMEM, "out of memory");
    status_uri(r, uri, sizeof(uri));
    /* a plan of another version, or one done: nothing to do */
    rc = status_get(st, r->bucket, r->key, it, err);
    bool ours = rc == 0 && strcmp(it->etag, r->etag) == 0 && it->object_mtime == r->mtime &&
                strcmp(it->status, "HASHING") == 0;
    free(it);
    if (rc == ENOENT || (rc == 0 && !ours)) {
        log_msg(x->sc->log, LOG_INFO,
                "%s: run %" PRIu64 " of %" PRIu64
                ": the object is no longer being hashed in this plan: dropped",
                uri, r->run + 1, r->runs);
        return 0;
    }
    if (rc)
        return rc;
    /* the object's lease lasts while its runs are hashed (renewed to this deadline) */
    json_object *v = version_values(r);
    if (v)
        ddb_add(v, ":l", ddb_n_i64(lease_of(x->deadline_ms)));
    rc = update(st, uri, "SET #lu = :l", SAME_VERSION " AND #lu < :l", v, NULL, err);
    if (rc && rc != EEXIST)
        return rc;
    if ((rc = take_run(x, r, &done, err)))
        return rc;
    if (!done) {
        struct hasher_result h;
        if ((rc = hash_run(x, r, &h, err)) == ESTALE) {
            /* the object changed under the plan: its new version has an event of its own */
            log_msg(x->sc->log, LOG_WARNING, "%s: run %" PRIu64 " of %" PRIu64 " dropped: %s", uri,
                    r->run + 1, r->runs, err->msg);
            return 0;
        }
        if (rc)
            return rc;
        *hashed = h.size;
        rc = put_run(x, r, &h, err);
        hasher_result_free(&h);
        if (rc)
            return rc;
        log_msg(x->sc->log, LOG_INFO, "%s: run %" PRIu64 " of %" PRIu64 " hashed", uri, r->run + 1,
                r->runs);
    }
    /* counted once whatever the deliveries: a set of run numbers */
    json_object *answer = NULL, *rd, *ns;
    char num[24];
    snprintf(num, sizeof(num), "%" PRIu64, r->run);
    json_object *set = json_object_new_object(), *arr = json_object_new_array();
    v = version_values(r);
    if (set && arr && json_object_array_add(arr, json_object_new_string(num)) == 0 &&
        ddb_add(set, "NS", arr) == 0)
        arr = NULL;
    else {
        json_object_put(arr);
        json_object_put(set);
        set = NULL;
    }
    if (v && set)
        ddb_add(v, ":r", set);
    else
        json_object_put(set);
    rc = update(st, uri, "ADD #rd :r", SAME_VERSION, v, &answer, err);
    if (rc == EEXIST)
        return 0; /* READY already, or a newer version */
    if (rc)
        return rc;
    size_t count = json_object_object_get_ex(answer, "runs_done", &rd) &&
                           json_object_object_get_ex(rd, "NS", &ns) &&
                           json_object_is_type(ns, json_type_array)
                       ? json_object_array_length(ns)
                       : 0;
    json_object_put(answer);
    if (count < r->runs)
        return 0;
    /* the last run: one invocation assembles (a lease, for when it dies) */
    v = version_values(r);
    if (v && (ddb_add(v, ":l", ddb_n_i64(lease_of(x->deadline_ms))) ||
              ddb_add(v, ":now", ddb_n_i64((int64_t)time(NULL))))) {
        json_object_put(v);
        v = NULL;
    }
    rc = update(st, uri, "SET #au = :l",
                SAME_VERSION " AND (attribute_not_exists(#au) OR #au < :now)", v, NULL, err);
    if (rc == EEXIST)
        return 0;
    if (rc || (rc = assemble(x, r, err)))
        return rc;
    *assembled = true;
    return 0;
}

/* Run r failed with rc, for good: records its object FAILED (for the plan's version, unless it
 * is READY or a newer version's item is there). Returns whether that was done or not needed,
 * so the run need not come back; false leaves it to SQS to deliver again. */
static bool record_failed(const struct fanout_ctx *x, const struct fanout_run *r, int rc,
                          const char *why)
{
    if (events_errno_temporary(rc))
        return false;
    struct status_object so = {.bucket = r->bucket,
                               .key = r->key,
                               .etag = r->etag,
                               .size = r->size,
                               .mtime = r->mtime,
                               .source = "lambda"};
    char line[1200];
    snprintf(line, sizeof(line), "run %" PRIu64 " of %" PRIu64 ": %s", r->run + 1, r->runs, why);
    err_t ferr = {0};
    int fr = status_failed(x->sc->status, &so, line, &ferr);
    if (fr == 0 || fr == EEXIST)
        return true;
    log_msg(x->sc->log, LOG_ERR, "recording FAILED: %s", ferr.msg);
    return false;
}

int fanout_handle(const struct fanout_ctx *x, const struct fanout_batch *b, char **response,
                  struct fanout_tally *t, err_t *err)
{
    json_object *resp = json_object_new_object(), *fails = json_object_new_array();
    *response = NULL;
    memset(t, 0, sizeof(*t));
    if (resp == NULL || fails == NULL || ddb_add(resp, "batchItemFailures", fails)) {
        json_object_put(resp);
        return err_set(err, ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < b->n; i++) {
        const struct fanout_run *r = &b->runs[i];
        err_t rerr = {0};
        bool assembled;
        uint64_t hashed;
        int64_t t0 = handler_now_ms();
        lamlog_object(r->bucket, r->key);
        int rc = fanout_do_run(x, r, &assembled, &hashed, &rerr);
        if (hashed) {
            t->bytes_hashed += hashed;
            t->hash_ms += (double)(handler_now_ms() - t0);
        }
        lamlog_outcome(rc ? "run-failed" : assembled ? "created" : "run-done");
        if (rc == 0) {
            t->done++;
            t->made += assembled;
            log_msg(x->sc->log, LOG_INFO, "run %" PRIu64 " of %" PRIu64 " of s3://%s/%s done%s",
                    r->run + 1, r->runs, r->bucket, r->key,
                    assembled ? ": the torrent is made" : "");
        } else if (x->sc->status && record_failed(x, r, rc, rerr.msg)) {
            log_msg(x->sc->log, LOG_ERR, "%s: recorded FAILED, not retried", rerr.msg);
            t->failed_permanent++;
        } else {
            /* the message comes back after its visibility timeout: the run alone is retried */
            log_msg(x->sc->log, rc == EBUSY ? LOG_WARNING : LOG_ERR, "%s", rerr.msg);
            json_object *f = json_object_new_object();
            if (f == NULL || ddb_add(f, "itemIdentifier", json_object_new_string(b->ids[i])) ||
                json_object_array_add(fails, f)) {
                json_object_put(f);
                json_object_put(resp);
                return err_set(err, ENOMEM, "out of memory");
            }
            t->failed++;
        }
        lamlog_outcome(NULL);
        lamlog_object(NULL, NULL);
    }
    *response = strdup(json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN));
    json_object_put(resp);
    return *response ? 0 : err_set(err, ENOMEM, "out of memory");
}
