/* main.c — s3torrent-lambda: the Lambda custom runtime (`bootstrap`) that does what `s3torrent
 * sync` does for the objects of each event, through the same sync_object, warm across calls;
 * and the same work for S3 event notifications pushed over HTTP (--listen). */
#include "emf.h"
#include "events.h"
#include "fanout.h"
#include "handler.h"
#include "lamlog.h"
#include "listen.h"
#include "listen_http.h"
#include "runtime.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3torrent/netaddr.h"
#include "s3torrent/config.h"
#include "s3torrent/cred.h"
#include "s3torrent/ddb.h"
#include "s3torrent/http.h"
#include "s3torrent/recipe.h"
#include "s3torrent/s3.h"
#include "s3torrent/status.h"
#include "s3torrent/sync.h"
#include "s3torrent/torrent.h"
#include "s3torrent/version.h"

#define PROG "s3torrent-lambda"
/* What init makes once and every invocation reuses (connections, credentials, the recipe). */
struct lambda {
    struct logger log;
    struct http_client *http;
    struct cred_chain *creds;
    /* warm across invocations: connections, credentials, signing keys */
    struct s3_client *s3;
    struct store *store;    /* over s3 */
    struct ddb_client *ddb; /* NULL without a table */
    const char *table, *key_attr;
    struct handler_rules rules; /* S3_BUCKET, EXCLUDE_PREFIXES */
    struct recipe built; /* owns what recipe points at */
    struct torrent_recipe recipe;
    unsigned prefix_depth; /* PREFIX_TORRENTS: sync_config.prefix_depth */
    /* --listen: a failed object's status item is written FAILED here too (when sync_object
     * could not, or did not get that far), since the sender, answered 200, does not retry */
    bool record_failures;
    struct fanout fanout; /* fanout.sqs NULL: no fan-out (FANOUT_QUEUE_URL unset) */
};

static void usage(FILE *f)
{
    fputs("Usage: " PROG " [--event FILE|- | --listen ADDR:PORT]\n"
          "\n"
          "The AWS Lambda custom runtime of s3torrent (install it as `bootstrap`): for every\n"
          "object an event names, makes KEY.torrent beside it in S3 and records its status in\n"
          "DynamoDB, exactly as `s3torrent sync` does. Events: S3 notifications (ObjectCreated;\n"
          "from AWS, Ceph RGW or MinIO), the same through SQS (answered with batchItemFailures),\n"
          "S3 Batch Operations (schema 1.0 and 2.0) and EventBridge \"Object Created\".\n"
          "\n"
          "  -e, --event FILE|-   handle this one event (a file, or - for stdin) and print the\n"
          "                       response JSON, without the Runtime API\n"
          "  -l, --listen ADDR:PORT\n"
          "                       serve S3 event notifications POSTed over HTTP (Ceph RGW\n"
          "                       topics, MinIO webhooks) on this address only (127.0.0.1:8080,\n"
          "                       [::1]:8080, 0.0.0.0:8080), 4 requests at a time; answers 200\n"
          "                       once the work is done or recorded FAILED, 400 for a bad\n"
          "                       event, 405 for other methods, 413 over 6 MiB, 500 for what\n"
          "                       could not be recorded (the sender retries); stops on SIGTERM\n"
          "  -h, --help           show this help\n"
          "  -V, --version        show the version\n"
          "\n"
          "Environment:\n"
          "  AWS_LAMBDA_RUNTIME_API  the Runtime API (set by Lambda; not for --event, --listen)\n"
          "  S3_BUCKET          comma-separated buckets it may work on (default: any)\n"
          "  EXCLUDE_PREFIXES   comma-separated key prefixes it leaves alone\n"
          "  PREFIX_TORRENTS    DEPTH (1 to 16): after an object's torrent, also makes again\n"
          "                     PREFIX.torrent of the prefix of DEPTH segments it is under\n"
          "                     (a/b/ for a/b/c.wav with 2), when stale, as `s3torrent sync\n"
          "                     --prefix-torrents DEPTH` does (default: none)\n"
          "  DDB_TABLE          status table (default: no status items)\n"
          "  DDB_KEY_ATTR       its partition key attribute (default s3_uri)\n"
          "  TRACKERS           comma-separated announce URLs (default: built-in public list)\n"
          "  WEBSEED_BASE       web seed base URL (default: none)\n"
          "  META_VERSION       v1 (default), v2 or hybrid\n"
          "  PIECE_LENGTH       a power of two from 16K to 256M (default: automatic)\n"
          "  PRIVATE, NO_DATE   true or false (default false): the private flag, no creation\n"
          "                     date\n"
          "  SOURCE, COMMENT    the info source field, the comment (default: none)\n"
          "  OBJECT_CONCURRENCY objects of one event worked on at once (default 4)\n"
          "  FANOUT_QUEUE_URL   the function's own SQS queue: an object too big for the time\n"
          "                     left is hashed there in runs of whole pieces by other\n"
          "                     invocations, the last of which makes the torrent (needs\n"
          "                     DDB_TABLE; default: none, every object in one invocation)\n"
          "  FANOUT_BYTES       fan out objects over this size even when they fit (default 8G)\n"
          "  RUN_BYTES          the most one run hashes (default 2G; less when the time an\n"
          "                     invocation has fits less at HASH_RATE, with half to spare)\n"
          "  HASH_RATE          bytes a second the plan counts on (default 50M)\n"
          "  AWS_LAMBDA_LOG_FORMAT  Text (default) or JSON: one JSON object per line with\n"
          "                     timestamp, level, message, requestId, object and outcome\n"
          "  AWS_LAMBDA_LOG_LEVEL   TRACE, DEBUG, INFO (default), WARN, ERROR or FATAL\n"
          "  AWS_LAMBDA_FUNCTION_NAME  the FunctionName dimension of the metrics line (an\n"
          "                     Embedded Metric Format document per invocation, on stderr)\n"
          "  and the AWS variables: AWS_REGION, AWS_ENDPOINT_URL(_S3, _DYNAMODB), credentials.\n"
          "\n"
          "Exit status: --event: 0 fine, 1 the invocation failed, 2 usage or setup error;\n"
          "--listen: 0 after SIGTERM or SIGINT, 2 usage or setup error (cannot listen).\n",
          f);
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Reads the settings and makes the shared clients. Returns 0 or an errno with err set. */
static int lambda_init(struct lambda *L, err_t *err)
{
    const char *v;
    int rc;
    memset(L, 0, sizeof(*L));
    L->log = lamlog_logger(); /* AWS_LAMBDA_LOG_FORMAT and _LEVEL, read by main */
    /* the same builder as `s3torrent sync` and the mount, so the same checks and bytes */
    static const struct {
        const char *name;
        enum recipe_field f;
    } vars[] = {
        {"META_VERSION", RECIPE_META}, {"PIECE_LENGTH", RECIPE_PIECE_LENGTH},
        {"TRACKERS", RECIPE_TRACKERS}, {"WEBSEED_BASE", RECIPE_WEBSEED},
        {"PRIVATE", RECIPE_PRIVATE},   {"SOURCE", RECIPE_SOURCE},
        {"COMMENT", RECIPE_COMMENT},   {"NO_DATE", RECIPE_NO_DATE},
    };
    recipe_init(&L->built);
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        if ((v = env(vars[i].name)) &&
            (rc = recipe_set(&L->built, vars[i].f, vars[i].name, v, err)))
            return rc;
    recipe_finish(&L->built);
    L->recipe = L->built.r;
    if ((v = env("S3_BUCKET")) &&
        ((L->rules.nallow = config_split_list(v, &L->rules.allow)) == 0 && L->rules.allow == NULL))
        return err_set(err, ENOMEM, "out of memory");
    if ((v = env("EXCLUDE_PREFIXES")) &&
        ((L->rules.nexclude = config_split_list(v, &L->rules.exclude)) == 0 &&
         L->rules.exclude == NULL))
        return err_set(err, ENOMEM, "out of memory");
    if ((v = env("PREFIX_TORRENTS"))) {
        char *end;
        unsigned long d = strtoul(v, &end, 10);
        if (*v < '0' || *v > '9' || *end || d < 1 || d > 16)
            return err_set(err, EINVAL, "PREFIX_TORRENTS must be a number from 1 to 16, not '%s'",
                           v);
        L->prefix_depth = (unsigned)d;
    }
    L->table = env("DDB_TABLE");
    L->key_attr = env("DDB_KEY_ATTR");
    L->fanout = (struct fanout){.queue_url = env("FANOUT_QUEUE_URL"),
                                .fanout_bytes = 8ull << 30,
                                .run_bytes = 2ull << 30,
                                .rate = 50ull * 1000 * 1000};
    if ((v = env("FANOUT_BYTES")) &&
        (rc = config_parse_size("FANOUT_BYTES", v, &L->fanout.fanout_bytes, err)))
        return rc;
    if ((v = env("RUN_BYTES")) &&
        (rc = config_parse_size("RUN_BYTES", v, &L->fanout.run_bytes, err)))
        return rc;
    if ((v = env("HASH_RATE")) && (rc = config_parse_size("HASH_RATE", v, &L->fanout.rate, err)))
        return rc;
    if (L->fanout.rate == 0)
        return err_set(err, EINVAL, "HASH_RATE: must be more than 0");
    if (L->fanout.queue_url && !L->table)
        return err_set(err, EINVAL,
                       "FANOUT_QUEUE_URL needs DDB_TABLE: the runs keep their "
                       "hashes in the status table");

    struct http_opts ho = {.ca_bundle = env("AWS_CA_BUNDLE"), .log = &L->log};
    struct cred_chain_opts co = {.http = NULL};
    if ((L->http = http_client_new(&ho)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    co.http = L->http;
    if ((L->creds = cred_chain_new(&co)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    /* fail at init, not at the first event, on a bad endpoint or missing credentials */
    struct s3_config sc = {.http = L->http, .creds = L->creds};
    if ((rc = s3_client_new(&sc, &L->s3, err)))
        return rc;
    if ((L->store = store_s3_new(L->s3)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    if (L->table) {
        struct ddb_config dc = {.http = L->http, .creds = L->creds};
        if ((rc = ddb_client_new(&dc, &L->ddb, err)))
            return rc;
    }
    if (L->fanout.queue_url) {
        static const struct ddb_service sqs = {"SQS", "sqs", "AWS_ENDPOINT_URL_SQS", "AmazonSQS."};
        struct ddb_config qc = {.http = L->http, .creds = L->creds, .service = &sqs};
        if ((rc = ddb_client_new(&qc, &L->fanout.sqs, err)))
            return rc;
    }
    struct cred c;
    rc = cred_chain_get(L->creds, &c, err);
    cred_wipe(&c);
    if (rc)
        return err_prefix(err, "credentials");
    log_msg(&L->log, LOG_INFO,
            "ready: %s torrents, %zu trackers, buckets: %s, status: %s, fan-out: %s, "
            "credentials: %s",
            torrent_meta_name(L->recipe.meta), L->recipe.ntrackers,
            L->rules.nallow ? env("S3_BUCKET") : "any", L->table ? L->table : "none",
            L->fanout.queue_url ? L->fanout.queue_url : "none", cred_chain_source(L->creds));
    return 0;
}

static void lambda_free(struct lambda *L)
{
    store_free(L->store);
    s3_client_free(L->s3);
    ddb_client_free(L->ddb);
    ddb_client_free(L->fanout.sqs);
    cred_chain_free(L->creds);
    http_client_free(L->http);
    free(L->rules.allow);
    free(L->rules.exclude);
    recipe_free(&L->built);
}

/* --listen: writes the FAILED status of a failed item, for the version HEAD saw or else the one
 * the event names (its ETag; Last-Modified unknown, so 0: any real version supersedes it).
 * Returns what became of it: HANDLER_REC_ERROR with err set when the write failed. */
static enum handler_record record_failure(const struct lambda *L, const struct status_store *st,
                                          const struct events_item *it,
                                          const struct events_outcome *o,
                                          const struct handler_slot *s, err_t *err)
{
    const char *etag = s->headed ? s->etag : it->etag;
    if (st == NULL || it->bucket == NULL || etag == NULL || *etag == '\0')
        return HANDLER_REC_NOWHERE;
    struct status_object so = {
        .bucket = it->bucket,
        .key = it->key,
        .etag = etag,
        .size = s->headed ? s->size : it->size,
        .mtime = s->headed ? s->mtime : 0,
        .source = "lambda",
    };
    int rc = status_failed(st, &so, o->message, err);
    if (rc == 0 || rc == EEXIST)
        return HANDLER_REC_DONE;
    log_msg(&L->log, LOG_ERR, "recording FAILED: %s", err->msg);
    return HANDLER_REC_ERROR;
}

/* Counts what became of b's items into *t (but its record_error). */
static void tally(const struct events_batch *b, const struct events_outcome *outs,
                  const struct handler_slot *slots, struct listen_tally *t)
{
    memset(t, 0, sizeof(*t));
    t->objects = b->n;
    t->ignored = b->ignored;
    for (size_t i = 0; i < b->n; i++) {
        enum events_outcome_code c = outs[i].code;
        if (c == EVENTS_DONE) {
            t->done++;
            continue;
        }
        if (c == EVENTS_SKIPPED) {
            t->skipped++;
            continue;
        }
        t->failed++;
        if (slots[i].rec == HANDLER_REC_DONE) {
            t->recorded++;
        } else if (slots[i].rec == HANDLER_REC_ERROR) {
            t->record_errors++;
        } else {
            t->unrecorded++;
            t->unrecorded_retry += c == EVENTS_TEMPORARY || c == EVENTS_NOT_DONE;
        }
    }
}

/* The objects of one payload, worked on by up to OBJECT_CONCURRENCY threads: an SQS batch or a
 * multi-record event no longer waits for each object in turn (most of an object's time is
 * S3's latency and the hash, and the hasher's threads are not busy all the time). */
struct batch_run {
    const struct lambda *L;
    const struct sync_config *cfg;
    const struct events_batch *b;
    int64_t deadline_ms;
    struct events_outcome *outs;
    struct handler_slot *slots;
    char request_id[128];
    pthread_mutex_t lock; /* the fields below */
    size_t next;
    struct emf_counts counts;
    err_t first_rec; /* the first failure to record FAILED */
};

static void run_item(struct batch_run *r, size_t i)
{
    const struct events_item *it = &r->b->items[i];
    int64_t t0 = handler_now_ms();
    lamlog_object(it->bucket, it->key);
    handler_item(&r->L->rules, r->cfg, r->deadline_ms, it, &r->outs[i], &r->slots[i]);
    lamlog_outcome(r->outs[i].action);
    handler_log(&r->L->log, it, &r->outs[i]);
    lamlog_outcome(NULL);
    lamlog_object(NULL, NULL);
    err_t rerr = {0};
    enum events_outcome_code c = r->outs[i].code;
    if (r->L->record_failures &&
        (c == EVENTS_TEMPORARY || c == EVENTS_PERMANENT || c == EVENTS_NOT_DONE))
        r->slots[i].rec =
            record_failure(r->L, r->cfg->status, it, &r->outs[i], &r->slots[i], &rerr);
    pthread_mutex_lock(&r->lock);
    emf_count(&r->counts, &r->outs[i], &r->slots[i].res, (double)(handler_now_ms() - t0));
    if (r->slots[i].rec == HANDLER_REC_ERROR && r->first_rec.msg[0] == '\0')
        r->first_rec = rerr;
    pthread_mutex_unlock(&r->lock);
}

static void *item_worker(void *arg)
{
    struct batch_run *r = arg;
    lamlog_request(r->request_id[0] ? r->request_id : NULL);
    for (;;) {
        pthread_mutex_lock(&r->lock);
        size_t i = r->next++;
        pthread_mutex_unlock(&r->lock);
        if (i >= r->b->n)
            break;
        run_item(r, i);
    }
    lamlog_request(NULL);
    lamlog_object(NULL, NULL);
    return NULL;
}

/* Works on every item of r->b: on this thread alone for one item, else on up to
 * OBJECT_CONCURRENCY (default 4) threads; a thread that cannot start leaves its share to the
 * others. */
static void run_items(struct batch_run *r)
{
    unsigned want = 4;
    const char *v = env("OBJECT_CONCURRENCY");
    if (v && (want = (unsigned)strtoul(v, NULL, 10)) == 0)
        want = 1;
    if (want > 64)
        want = 64;
    if (want > r->b->n)
        want = (unsigned)r->b->n;
    pthread_t tids[64];
    unsigned started = 0;
    for (unsigned k = 1; k < want; k++)
        if (pthread_create(&tids[started], NULL, item_worker, r) == 0)
            started++;
    item_worker(r);
    lamlog_request(r->request_id[0] ? r->request_id : NULL); /* item_worker cleared it */
    for (unsigned k = 0; k < started; k++)
        pthread_join(tids[k], NULL);
    pthread_mutex_destroy(&r->lock);
}

/* What an invocation works with: the warm clients of L with its trace id, the status store, a
 * maker over L's store (no cache on Lambda: nothing survives, and no temporary files) and the
 * sync configuration, whose lease is the invocation's deadline. */
static void invocation_setup(const struct lambda *L, int64_t deadline_ms, const char *trace_id,
                             struct status_store *st, struct maker *maker, struct sync_config *cfg)
{
    /* the warm clients of L, with this invocation's trace id (runtime mode: one invocation at
     * a time; --listen passes none and leaves them alone) */
    if (trace_id) {
        s3_client_set_trace_id(L->s3, *trace_id ? trace_id : NULL);
        if (L->ddb)
            ddb_client_set_trace_id(L->ddb, *trace_id ? trace_id : NULL);
        if (L->fanout.sqs)
            ddb_client_set_trace_id(L->fanout.sqs, *trace_id ? trace_id : NULL);
    }
    if (L->table)
        *st = (struct status_store){.ddb = L->ddb, .table = L->table, .key_attr = L->key_attr};
    /* no cache on Lambda: nothing survives, and no temporary files */
    *maker = (struct maker){.store = L->store, .log = &L->log};
    *cfg = (struct sync_config){
        .maker = maker,
        .recipe = &L->recipe,
        .status = L->table ? st : NULL,
        .source = "lambda",
        .log = &L->log,
        /* the hashing is this invocation's until its deadline: a second delivery of the same
         * object meanwhile backs off (a temporary failure: SQS brings it back later) */
        .lease_until = deadline_ms > 0 ? deadline_ms / 1000 + 1 : 0,
        .prefix_depth = L->prefix_depth,
    };
}

/* An SQS batch of fan-out runs (fanout.h): answered with the runs to retry; its metrics line
 * counts the runs done, the torrents made and the bytes hashed. */
static int handle_runs(const struct lambda *L, const struct fanout_batch *b, int64_t deadline_ms,
                       const char *trace_id, char **response, err_t *err)
{
    struct status_store st;
    struct maker maker;
    struct sync_config cfg;
    struct fanout_tally t;
    int64_t started = handler_now_ms();
    invocation_setup(L, deadline_ms, trace_id, &st, &maker, &cfg);
    struct fanout_ctx fx = {.f = &L->fanout, .sc = &cfg, .deadline_ms = deadline_ms};
    log_msg(&L->log, LOG_INFO, "fan-out event: %zu runs", b->n);
    int rc = fanout_handle(&fx, b, response, &t, err);
    if (rc)
        return rc;
    if (t.failed)
        log_msg(&L->log, LOG_WARNING, "summary: %s", *response);
    struct emf_counts counts = {.created = t.made,
                                .failed_temporary = t.failed,
                                .failed_permanent = t.failed_permanent,
                                .runs = t.bytes_hashed ? 1 : 0,
                                .runs_done = t.done,
                                .bytes_hashed = t.bytes_hashed,
                                .hash_ms = t.hash_ms};
    char *doc =
        emf_document(env("AWS_LAMBDA_FUNCTION_NAME") ? env("AWS_LAMBDA_FUNCTION_NAME") : PROG,
                     handler_now_ms(), &counts, (double)(handler_now_ms() - started));
    if (doc)
        lamlog_raw(doc);
    free(doc);
    return 0;
}

/* Handles one parsed payload, the work of one invocation or one --listen request: *response
 * gets the JSON to answer with (the caller frees it) and *fail whether the invocation is to be
 * reported failed (its message in fail_msg, which may be NULL with fail_len 0); t (may be NULL)
 * gets the counts. Returns 0, or an
 * errno with err set when nothing could be done (no memory, no clients). */
static int handle_batch(const struct lambda *L, const struct events_batch *b, int64_t deadline_ms,
                        const char *trace_id, char **response, bool *fail, char *fail_msg,
                        size_t fail_len, struct listen_tally *t, err_t *err)
{
    struct status_store st;
    struct events_outcome *outs = NULL;
    struct handler_slot *slots = NULL;
    json_object *resp = NULL;
    err_t first_rec = {0}; /* the first failure to record FAILED */
    int rc;

    int64_t started = handler_now_ms();
    *response = NULL;
    *fail = false;
    if (t)
        memset(t, 0, sizeof(*t));
    log_msg(&L->log, LOG_INFO, "%s event: %zu objects, %zu records ignored",
            events_kind_name(b->kind), b->n, b->ignored);
    struct maker maker;
    struct sync_config cfg;
    invocation_setup(L, deadline_ms, trace_id, &st, &maker, &cfg);
    struct fanout_ctx fx = {.f = &L->fanout, .sc = &cfg, .deadline_ms = deadline_ms};
    if (L->fanout.sqs && L->table) {
        cfg.hand_out = fanout_hand_out;
        cfg.hand_out_arg = &fx;
    }
    outs = calloc(b->n ? b->n : 1, sizeof(*outs));
    slots = calloc(b->n ? b->n : 1, sizeof(*slots));
    if (outs == NULL || slots == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    struct batch_run run = {.L = L,
                            .cfg = &cfg,
                            .b = b,
                            .deadline_ms = deadline_ms,
                            .outs = outs,
                            .slots = slots,
                            .lock = PTHREAD_MUTEX_INITIALIZER};
    snprintf(run.request_id, sizeof(run.request_id), "%s", lamlog_current_request());
    run_items(&run);
    struct emf_counts counts = run.counts;
    first_rec = run.first_rec;
    char *doc =
        emf_document(env("AWS_LAMBDA_FUNCTION_NAME") ? env("AWS_LAMBDA_FUNCTION_NAME") : PROG,
                     handler_now_ms(), &counts, (double)(handler_now_ms() - started));
    if (doc)
        lamlog_raw(doc);
    free(doc);
    if (t) {
        tally(b, outs, slots, t);
        snprintf(t->record_error, sizeof(t->record_error), "%s", first_rec.msg);
    }
    if ((rc = events_response(b, outs, &resp, fail))) {
        err_set(err, rc, "out of memory");
        goto out;
    }
    const char *txt = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE);
    if ((*response = strdup(txt)) == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    if (*fail) {
        size_t nf = 0, nd = 0, off;
        for (size_t i = 0; i < b->n; i++) {
            nf += outs[i].code == EVENTS_TEMPORARY;
            nd += outs[i].code == EVENTS_NOT_DONE;
        }
        off = (size_t)snprintf(fail_msg, fail_len, "%zu of %zu objects failed, %zu not done:", nf,
                               b->n, nd);
        for (size_t i = 0; i < b->n && off < fail_len; i++)
            if (outs[i].code == EVENTS_TEMPORARY || outs[i].code == EVENTS_NOT_DONE)
                off += (size_t)snprintf(fail_msg + off, fail_len - off, " s3://%s/%s (%s);",
                                        b->items[i].bucket, b->items[i].key,
                                        outs[i].code == EVENTS_NOT_DONE ? "not done"
                                                                        : outs[i].message);
        log_msg(&L->log, LOG_WARNING, "summary: %s", txt);
    }
out:
    if (rc) {
        free(*response);
        *response = NULL;
    }
    json_object_put(resp);
    free(outs);
    free(slots);
    return rc;
}

/* Handles one event payload (parsed here, then handle_batch). Returns 0, or EINVAL (a malformed
 * event) / another errno with err set. */
static int handle(const struct lambda *L, const void *event, size_t len, int64_t deadline_ms,
                  const char *trace_id, char **response, bool *fail, char *fail_msg,
                  size_t fail_len, err_t *err)
{
    struct events_batch b;
    struct fanout_batch fb;
    int rc;
    *response = NULL;
    *fail = false;
    if ((rc = fanout_parse_event(event, len, &fb, err)) != ENOENT) {
        if (rc == 0)
            rc = handle_runs(L, &fb, deadline_ms, trace_id, response, err);
        fanout_batch_free(&fb);
        return rc;
    }
    if ((rc = events_parse(event, len, &b, err)) == 0)
        rc = handle_batch(L, &b, deadline_ms, trace_id, response, fail, fail_msg, fail_len, NULL,
                          err);
    events_free(&b);
    return rc;
}

/* --listen's work for one request: handle_batch without a deadline or a trace id. */
static int listen_work(void *arg, const struct events_batch *b, struct listen_tally *t, char **json,
                       err_t *err)
{
    bool fail; /* the answer comes from *t: whether to retry is the sender's, by status */
    return handle_batch(arg, b, 0, NULL, json, &fail, NULL, 0, t, err);
}

static int read_event(const char *path, struct buf *b, err_t *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    uint8_t chunk[65536];
    size_t n;
    int rc = 0;
    buf_init(b, EVENTS_MAX_PAYLOAD);
    if (f == NULL)
        return err_set(err, errno, "%s: %s", path, strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_put(b, chunk, n) != 0) {
            rc = err_set(err, EFBIG, "%s: more than %u bytes", path, EVENTS_MAX_PAYLOAD);
            break;
        }
    if (rc == 0 && ferror(f))
        rc = err_set(err, EIO, "%s: read error", path);
    if (f != stdin)
        fclose(f);
    return rc;
}

static int one_shot(const struct lambda *L, const char *path)
{
    struct buf ev;
    char *resp = NULL, fail_msg[4096] = "";
    bool fail = false;
    err_t err = {0};
    int rc = read_event(path, &ev, &err);
    if (rc == 0)
        rc = handle(L, ev.data ? (const char *)ev.data : "", ev.len, 0, NULL, &resp, &fail,
                    fail_msg, sizeof(fail_msg), &err);
    buf_free(&ev);
    if (rc) {
        char *doc = runtime_error_json(rc == EINVAL ? "S3Torrent.InvalidEvent" : "S3Torrent.Error",
                                       err.msg);
        printf("%s\n", doc ? doc : "{}");
        free(doc);
        fprintf(stderr, PROG ": %s\n", err.msg);
        return 1;
    }
    printf("%s\n", resp);
    free(resp);
    if (fail)
        fprintf(stderr, PROG ": %s\n", fail_msg);
    return fail ? 1 : 0;
}

/* The invocation loop; returns only when the Runtime API fails. */
static int serve(const struct lambda *L, struct runtime_client *rt)
{
    static char fail_msg[8192];
    for (;;) {
        struct runtime_invocation inv;
        err_t err = {0};
        char *resp = NULL;
        bool fail = false;
        if (runtime_next(rt, &inv, &err) != 0) {
            log_msg(&L->log, LOG_ERR, "%s", err.msg);
            return 1;
        }
        if (inv.trace_id[0]) /* what the AWS SDKs read, for anything that looks */
            setenv("_X_AMZN_TRACE_ID", inv.trace_id, 1);
        else
            unsetenv("_X_AMZN_TRACE_ID");
        lamlog_request(inv.request_id);
        log_msg(&L->log, LOG_INFO, "invocation %s", inv.request_id);
        int rc =
            handle(L, inv.event.data ? (const char *)inv.event.data : "", inv.event.len,
                   inv.deadline_ms, inv.trace_id, &resp, &fail, fail_msg, sizeof(fail_msg), &err);
        err_t perr = {0};
        int pr;
        if (rc) {
            log_msg(&L->log, LOG_ERR, "invocation %s: %s", inv.request_id, err.msg);
            pr = runtime_error(rt, inv.request_id,
                               rc == EINVAL ? "S3Torrent.InvalidEvent" : "S3Torrent.Error", err.msg,
                               &perr);
        } else if (fail) {
            log_msg(&L->log, LOG_WARNING, "invocation %s: %s", inv.request_id, fail_msg);
            pr = runtime_error(rt, inv.request_id, "S3Torrent.ObjectsFailed", fail_msg, &perr);
        } else {
            pr = runtime_respond(rt, inv.request_id, resp, strlen(resp), &perr);
            if (pr == EFBIG) /* the answer is over Lambda's limit: say so instead */
                pr = runtime_error(rt, inv.request_id, "S3Torrent.ResponseTooLarge", perr.msg,
                                   &perr);
        }
        if (pr)
            log_msg(&L->log, LOG_ERR, "invocation %s: %s", inv.request_id, perr.msg);
        free(resp);
        runtime_invocation_free(&inv);
        lamlog_request(NULL);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"event", required_argument, NULL, 'e'},
        {"listen", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *event = NULL, *listen_addr = NULL, *api = env("AWS_LAMBDA_RUNTIME_API");
    struct lambda L;
    struct runtime_client *rt = NULL;
    sigset_t stop;
    err_t err = {0};
    int c, rc = 2;

    memset(&L, 0, sizeof(L));
    if (lamlog_init(env("AWS_LAMBDA_LOG_FORMAT"), env("AWS_LAMBDA_LOG_LEVEL"), &err) != 0) {
        fprintf(stderr, PROG ": %s\n", err.msg);
        return 2;
    }
    while ((c = getopt_long(argc, argv, "e:l:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            event = optarg;
            break;
        case 'l':
            listen_addr = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf(PROG " %s\n", S3T_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    if (event && listen_addr) {
        fprintf(stderr, PROG ": --event and --listen do not go together (see --help)\n");
        return 2;
    }
    if (listen_addr) {
        struct sockaddr_storage ss;
        socklen_t sl;
        if (netaddr_parse(listen_addr, &ss, &sl, &err) != 0) {
            fprintf(stderr, PROG ": %s\n", err.msg);
            return 2;
        }
        /* SIGTERM and SIGINT go to listen_serve's sigwait alone: blocked before any thread is
         * started (curl's resolver, the hashers, the server inherit the mask); SIGPIPE too */
        sigemptyset(&stop);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGINT);
        sigset_t block = stop;
        sigaddset(&block, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &block, NULL);
    }
    if (event == NULL && listen_addr == NULL && api == NULL) {
        fprintf(stderr, PROG ": AWS_LAMBDA_RUNTIME_API is not set: run it on Lambda, or give "
                             "--event FILE (see --help)\n");
        return 2;
    }
    if (event == NULL && listen_addr == NULL && runtime_new(api, NULL, &rt, &err) != 0) {
        fprintf(stderr, PROG ": %s\n", err.msg);
        return 2;
    }
    if (lambda_init(&L, &err) != 0) {
        fprintf(stderr, PROG ": init: %s\n", err.msg);
        if (rt) {
            err_t ierr = {0};
            if (runtime_init_error(rt, "S3Torrent.InitError", err.msg, &ierr) != 0)
                fprintf(stderr, PROG ": %s\n", ierr.msg);
        }
        goto out;
    }
    if (listen_addr) {
        L.record_failures = true;
        struct listen_opts lo = {
            .addr = listen_addr, .work = listen_work, .arg = &L, .log = &L.log, .stop = &stop};
        rc = listen_serve(&lo, &err) == 0 ? 0 : 2;
        if (rc)
            fprintf(stderr, PROG ": %s\n", err.msg);
    } else {
        rc = event ? one_shot(&L, event) : serve(&L, rt);
    }
out:
    runtime_free(rt);
    lambda_free(&L);
    return rc;
}
