/* status.c — status items in DynamoDB: each write is an UpdateItem whose ConditionExpression
 * admits only the same object version or an older one, so racing writers settle on the newest. */
#include "s3torrent/status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPR_MAX     4096 /* bytes of one update or condition expression */
#define WRITE_ROUNDS 3    /* pairs of conditional writes tried while the item keeps changing */
#define POLL_MS      500
#define POLL_MAX     240 /* DescribeTable polls: two minutes */

enum op { OP_BEGIN, OP_READY, OP_FAILED };

/* Which versions of the item a write may touch: none or an older one (FRESH), this one
 * (SAME), this one unless it is READY already (SAME_NOT_READY). The three are disjoint. */
enum cond { COND_FRESH, COND_SAME, COND_SAME_NOT_READY };

static const char *const op_status[] = {"HASHING", "READY", "FAILED"};

/* Attributes a write owns besides the version ones; a write removes those it does not set, so
 * an older version's torrent fields or error never outlive it. */
static const char *const optional_attrs[] = {
    "torrent_key",  "info_hash",   "info_hash_v2",   "magnet", "magnet_v1",
    "piece_length", "piece_count", "meta_version",   "error",  "lease_until",
    "runs",         "runs_done",   "assemble_until",
};

static const char *const all_attrs[] = {
    "status",      "bucket",       "object_key",     "etag",      "size",          "object_mtime",
    "torrent_key", "info_hash",    "info_hash_v2",   "magnet",    "magnet_v1",     "piece_length",
    "piece_count", "meta_version", "attempts",       "error",     "source",        "updated_at",
    "lease_until", "file_count",   "files",          "stale_new", "stale_changed", "stale_removed",
    "runs",        "runs_done",    "assemble_until",
};

/* The place of name in optional_attrs (which holds it). */
static size_t opt_index(const char *name)
{
    size_t i = 0;
    while (strcmp(optional_attrs[i], name) != 0)
        i++;
    return i;
}

/* An UpdateItem being built: expression texts, and the placeholders they use (DynamoDB
 * refuses unused ones, so a placeholder is registered when first written). */
struct upd {
    struct buf set, remove, add, cond;
    json_object *names, *values;
    int err;
};

static void upd_init(struct upd *u)
{
    buf_init(&u->set, EXPR_MAX);
    buf_init(&u->remove, EXPR_MAX);
    buf_init(&u->add, EXPR_MAX);
    buf_init(&u->cond, EXPR_MAX);
    u->names = json_object_new_object();
    u->values = json_object_new_object();
    u->err = u->names && u->values ? 0 : ENOMEM;
}

static void upd_free(struct upd *u)
{
    buf_free(&u->set);
    buf_free(&u->remove);
    buf_free(&u->add);
    buf_free(&u->cond);
    json_object_put(u->names);
    json_object_put(u->values);
}

/* Writes "#ph" into b, mapping it to attribute attr. */
static void name_ref(struct upd *u, struct buf *b, const char *ph, const char *attr)
{
    char key[64];
    snprintf(key, sizeof(key), "#%s", ph);
    buf_put(b, key, strlen(key));
    if (u->err == 0 && !json_object_object_get_ex(u->names, key, NULL))
        u->err = ddb_add(u->names, key, json_object_new_string(attr));
}

/* Writes ":ph" into b, mapping it to v (taken; dropped when ph is already mapped). */
static void val_ref(struct upd *u, struct buf *b, const char *ph, json_object *v)
{
    char key[64];
    snprintf(key, sizeof(key), ":%s", ph);
    buf_put(b, key, strlen(key));
    if (v == NULL && u->err == 0)
        u->err = ENOMEM;
    if (u->err || json_object_object_get_ex(u->values, key, NULL))
        json_object_put(v);
    else
        u->err = ddb_add(u->values, key, v);
}

static void upd_set(struct upd *u, const char *attr, json_object *v)
{
    if (u->set.len)
        buf_put(&u->set, ", ", 2);
    name_ref(u, &u->set, attr, attr);
    buf_put(&u->set, " = ", 3);
    val_ref(u, &u->set, attr, v);
}

static void upd_remove(struct upd *u, const char *attr)
{
    if (u->remove.len)
        buf_put(&u->remove, ", ", 2);
    name_ref(u, &u->remove, attr, attr);
}

static void upd_add(struct upd *u, const char *attr, json_object *v)
{
    if (u->add.len)
        buf_put(&u->add, ", ", 2);
    name_ref(u, &u->add, attr, attr);
    buf_put(&u->add, " ", 1);
    val_ref(u, &u->add, attr, v);
}

static time_t now(const struct status_store *st);

/* "no HASHING lease of another writer runs" (the lease clause of a BEGIN) */
static void cond_no_lease(struct upd *u, const struct status_store *st)
{
    struct buf *b = &u->cond;
    buf_printf(b, "(");
    name_ref(u, b, "status", "status");
    buf_printf(b, " <> ");
    val_ref(u, b, "hashing", ddb_s("HASHING"));
    buf_printf(b, " OR attribute_not_exists(");
    name_ref(u, b, "lease_until", "lease_until");
    buf_printf(b, ") OR ");
    name_ref(u, b, "lease_until", "lease_until");
    buf_printf(b, " < ");
    val_ref(u, b, "now", ddb_n_i64((int64_t)now(st)));
    buf_printf(b, ")");
}

/* A prefix's item (docs/DESIGN.md §6): its version is the set digest alone (a removed key has
 * no date), so FRESH is no item, or another set's with no lease running; SAME is this set's. */
static void upd_cond_set(struct upd *u, enum cond c, enum op op, const struct status_object *o,
                         const struct status_store *st, const char *key_attr)
{
    struct buf *b = &u->cond;
    if (c == COND_FRESH) {
        buf_printf(b, "attribute_not_exists(");
        name_ref(u, b, "k", key_attr);
        buf_printf(b, ") OR (");
        name_ref(u, b, "etag", "etag");
        buf_printf(b, " <> ");
        val_ref(u, b, "etag", ddb_s(o->etag));
        buf_printf(b, " AND ");
        cond_no_lease(u, st);
        buf_printf(b, ")");
        return;
    }
    name_ref(u, b, "etag", "etag");
    buf_printf(b, " = ");
    val_ref(u, b, "etag", ddb_s(o->etag));
    if (c == COND_SAME_NOT_READY) {
        buf_printf(b, " AND ");
        name_ref(u, b, "status", "status");
        buf_printf(b, " <> ");
        val_ref(u, b, "ready", ddb_s("READY"));
    }
    if (c == COND_SAME_NOT_READY && op == OP_BEGIN) {
        buf_printf(b, " AND ");
        cond_no_lease(u, st);
    }
}

static void upd_cond(struct upd *u, enum cond c, enum op op, const struct status_object *o,
                     const struct status_store *st, const char *key_attr)
{
    struct buf *b = &u->cond;
    const char *both = " AND ";
    if (c == COND_FRESH) {
        /* no item, an item without a version (not ours), or an older version */
        buf_printf(b, "attribute_not_exists(");
        name_ref(u, b, "k", key_attr);
        buf_printf(b, ") OR attribute_not_exists(");
        name_ref(u, b, "object_mtime", "object_mtime");
        buf_printf(b, ") OR ");
        name_ref(u, b, "object_mtime", "object_mtime");
        buf_printf(b, " < ");
        val_ref(u, b, "object_mtime", ddb_n_i64(o->mtime));
        return;
    }
    name_ref(u, b, "object_mtime", "object_mtime");
    buf_printf(b, " = ");
    val_ref(u, b, "object_mtime", ddb_n_i64(o->mtime));
    buf_put(b, both, strlen(both));
    name_ref(u, b, "etag", "etag");
    buf_printf(b, " = ");
    val_ref(u, b, "etag", ddb_s(o->etag));
    if (c == COND_SAME_NOT_READY) {
        /* a duplicate run must not flip READY back */
        buf_put(b, both, strlen(both));
        name_ref(u, b, "status", "status");
        buf_printf(b, " <> ");
        val_ref(u, b, "ready", ddb_s("READY"));
    }
    if (c == COND_SAME_NOT_READY && op == OP_BEGIN) {
        /* a lease: a version being hashed by another writer whose lease runs is left to it */
        buf_put(b, both, strlen(both));
        cond_no_lease(u, st);
    }
}

static time_t now(const struct status_store *st)
{
    return st->now ? st->now() : time(NULL);
}

static void iso8601(time_t t, char out[32])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "1970-01-01T00:00:00Z");
}

static const char *key_attr(const struct status_store *st)
{
    return st->key_attr && *st->key_attr ? st->key_attr : STATUS_KEY_ATTR_DEFAULT;
}

static int check_store(const struct status_store *st, err_t *err)
{
    const char *k = key_attr(st);
    if (st->ddb == NULL || st->table == NULL || *st->table == '\0')
        return err_set(err, EINVAL, "status: no DynamoDB client or table given");
    if (strlen(k) > 255)
        return err_set(err, EINVAL, "status: key attribute name over 255 bytes");
    for (size_t i = 0; i < sizeof(all_attrs) / sizeof(all_attrs[0]); i++)
        if (strcmp(k, all_attrs[i]) == 0)
            return err_set(err, EINVAL,
                           "status: the key attribute cannot be '%s', a status attribute", k);
    return 0;
}

/* The item's key: {key_attr: {"S": "s3://bucket/key"}}, or NULL when out of memory. */
static json_object *item_key(const struct status_store *st, const char *uri)
{
    json_object *k = json_object_new_object();
    if (k && ddb_add(k, key_attr(st), ddb_s(uri)) != 0) {
        json_object_put(k);
        k = NULL;
    }
    return k;
}

static char *make_uri(const char *bucket, const char *key)
{
    size_t n = strlen(bucket) + strlen(key) + 7;
    char *uri = malloc(n);
    if (uri)
        snprintf(uri, n, "s3://%s/%s", bucket, key);
    return uri;
}

/* Reads the item of uri (consistent). Returns 0 with *item (NULL when there is none; the
 * caller puts *doc, which owns it), or an errno with err set. */
static int get_item(const struct status_store *st, const char *uri, json_object **doc,
                    json_object **item, err_t *err)
{
    json_object *req = json_object_new_object();
    int rc = 0;
    *doc = *item = NULL;
    if (req == NULL || ddb_add(req, "TableName", json_object_new_string(st->table)) ||
        ddb_add(req, "Key", item_key(st, uri)) ||
        ddb_add(req, "ConsistentRead", json_object_new_boolean(1))) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = ddb_call(st->ddb, "GetItem", req, doc, err)))
        goto out;
    json_object *it;
    if (json_object_object_get_ex(*doc, "Item", &it) && json_object_is_type(it, json_type_object))
        *item = it;
out:
    json_object_put(req);
    return rc;
}

/* {"L": [{"S": key}, ...]} of at most STATUS_STALE_MAX keys, or NULL when out of memory. */
static json_object *key_list(const char *const *keys, size_t n)
{
    json_object *l = json_object_new_array(), *v = json_object_new_object();
    for (size_t i = 0; l && i < n && i < STATUS_STALE_MAX; i++)
        if (json_object_array_add(l, ddb_s(keys[i])) != 0) {
            json_object_put(l);
            l = NULL;
        }
    if (v == NULL || ddb_add(v, "L", l) != 0) {
        json_object_put(v);
        return NULL;
    }
    return v;
}

/* {"M": {rel: {"S": etag}, ...}}, or NULL when out of memory. */
static json_object *files_map(const struct status_set *set)
{
    json_object *m = json_object_new_object(), *v = json_object_new_object();
    for (size_t i = 0; m && i < set->nfiles; i++)
        if (ddb_add(m, set->rel[i], ddb_s(set->etags[i])) != 0) {
            json_object_put(m);
            m = NULL;
        }
    if (v == NULL || ddb_add(v, "M", m) != 0) {
        json_object_put(v);
        return NULL;
    }
    return v;
}

/* A prefix's attributes besides an object's: the file count, the files map on READY (a BEGIN
 * or FAILED keeps the map of the torrent still in S3), and the keys that made it stale. */
static void upd_set_attrs(struct upd *u, enum op op, const struct status_set *set)
{
    upd_set(u, "file_count", ddb_n_u64(set->file_count));
    size_t bytes = 0;
    for (size_t i = 0; i < set->nfiles; i++)
        bytes += strlen(set->rel[i]) + strlen(set->etags[i]);
    if (op == OP_READY && set->nfiles > 0 && bytes <= STATUS_FILES_MAX)
        upd_set(u, "files", files_map(set));
    else if (op == OP_READY)
        upd_remove(u, "files");
    const struct {
        const char *attr;
        const char *const *keys;
        size_t n;
    } lists[] = {{"stale_new", set->added, set->nadded},
                 {"stale_changed", set->changed, set->nchanged},
                 {"stale_removed", set->removed, set->nremoved}};
    for (size_t i = 0; i < 3; i++)
        if (lists[i].n)
            upd_set(u, lists[i].attr, key_list(lists[i].keys, lists[i].n));
        else
            upd_remove(u, lists[i].attr);
}

/* One conditional UpdateItem (set: a prefix's, else NULL). Returns 0, EEXIST when its condition
 * failed, or another errno. */
static int write_once(const struct status_store *st, const char *uri, const struct status_object *o,
                      enum op op, enum cond c, const struct status_torrent *t,
                      const struct status_set *pset, const char *error, err_t *err)
{
    struct upd u;
    json_object *req = NULL;
    char when[32];
    int rc = 0;

    upd_init(&u);
    iso8601(now(st), when);
    upd_set(&u, "status", ddb_s(op_status[op]));
    upd_set(&u, "bucket", ddb_s(o->bucket));
    upd_set(&u, "object_key", ddb_s(o->key));
    upd_set(&u, "etag", ddb_s(o->etag));
    upd_set(&u, "size", ddb_n_u64(o->size));
    upd_set(&u, "object_mtime", ddb_n_i64(o->mtime));
    if (o->source && *o->source)
        upd_set(&u, "source", ddb_s(o->source));
    upd_set(&u, "updated_at", ddb_s(when));
    bool set[sizeof(optional_attrs) / sizeof(optional_attrs[0])] = {false};
    if (op == OP_READY) {
        const char *sv[] = {t->torrent_key, t->info_hash, t->info_hash_v2, t->magnet, t->magnet_v1};
        for (size_t i = 0; i < sizeof(sv) / sizeof(sv[0]); i++)
            if (sv[i] && *sv[i]) {
                upd_set(&u, optional_attrs[i], ddb_s(sv[i]));
                set[i] = true;
            }
        upd_set(&u, "piece_length", ddb_n_u64(t->piece_length));
        upd_set(&u, "piece_count", ddb_n_u64(t->piece_count));
        upd_set(&u, "meta_version", ddb_s(t->meta_version));
        set[opt_index("piece_length")] = set[opt_index("piece_count")] =
            set[opt_index("meta_version")] = true;
        if (t->runs) {
            upd_set(&u, "runs", ddb_n_u64(t->runs));
            set[opt_index("runs")] = true;
        }
    } else if (op == OP_FAILED) {
        upd_set(&u, "error", ddb_s(error));
        set[opt_index("error")] = true;
    } else if (op == OP_BEGIN) {
        upd_set(
            &u, "lease_until",
            ddb_n_i64(o->lease_until ? o->lease_until : (int64_t)now(st) + STATUS_LEASE_DEFAULT));
        set[opt_index("lease_until")] = true;
    }
    for (size_t i = 0; i < sizeof(optional_attrs) / sizeof(optional_attrs[0]); i++)
        if (!set[i])
            upd_remove(&u, optional_attrs[i]);
    if (pset)
        upd_set_attrs(&u, op, pset);
    /* attempts count tries at this version: a new version starts again at 1 */
    if (c == COND_FRESH)
        upd_set(&u, "attempts", ddb_n_u64(1));
    else if (op == OP_BEGIN)
        upd_add(&u, "attempts", ddb_n_u64(1));
    if (pset)
        upd_cond_set(&u, c, op, o, st, key_attr(st));
    else
        upd_cond(&u, c, op, o, st, key_attr(st));

    struct buf expr;
    buf_init(&expr, 3 * EXPR_MAX);
    buf_printf(&expr, "SET %.*s", (int)u.set.len, (const char *)u.set.data);
    if (u.remove.len)
        buf_printf(&expr, " REMOVE %.*s", (int)u.remove.len, (const char *)u.remove.data);
    if (u.add.len)
        buf_printf(&expr, " ADD %.*s", (int)u.add.len, (const char *)u.add.data);
    buf_put(&expr, "", 1);
    buf_put(&u.cond, "", 1);
    if (u.err || expr.err || u.set.err || u.remove.err || u.add.err || u.cond.err) {
        rc = err_set(err, u.err ? u.err : ENOMEM, "status of %s: request too large", uri);
        goto out;
    }
    req = json_object_new_object();
    if (req == NULL || ddb_add(req, "TableName", json_object_new_string(st->table)) ||
        ddb_add(req, "Key", item_key(st, uri)) ||
        ddb_add(req, "UpdateExpression", json_object_new_string((const char *)expr.data)) ||
        ddb_add(req, "ConditionExpression", json_object_new_string((const char *)u.cond.data)) ||
        ddb_add(req, "ExpressionAttributeNames", json_object_get(u.names)) ||
        ddb_add(req, "ExpressionAttributeValues", json_object_get(u.values))) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    rc = ddb_call(st->ddb, "UpdateItem", req, NULL, err);
out:
    buf_free(&expr);
    json_object_put(req);
    upd_free(&u);
    return rc;
}

/* After the conditional writes said no: reads the item to say why. Returns EEXIST with err
 * set (a newer version, or READY already), EAGAIN when the item changed in between so that a
 * write may now pass, or another errno. */
static int why_not(const struct status_store *st, const char *uri, const struct status_object *o,
                   enum op op, err_t *err)
{
    json_object *doc = NULL, *item = NULL;
    int64_t mt = 0;
    int rc = get_item(st, uri, &doc, &item, err);
    if (rc)
        goto out;
    const char *what = op_status[op];
    int mrc = ddb_item_i64(item, "object_mtime", &mt);
    if (item == NULL || mrc == ENOENT || (mrc == 0 && mt < o->mtime)) {
        rc = EAGAIN;
        goto out;
    }
    if (mrc) {
        rc = err_set(err, EPROTO, "the item's object_mtime is not a number");
        goto out;
    }
    const char *etag = ddb_item_s(item, "etag"), *status = ddb_item_s(item, "status");
    int64_t lease = 0;
    if (mt == o->mtime && etag && strcmp(etag, o->etag) == 0) {
        if (op == OP_BEGIN && status && strcmp(status, "HASHING") == 0 &&
            ddb_item_i64(item, "lease_until", &lease) == 0 && lease >= (int64_t)now(st)) {
            char until[32];
            iso8601((time_t)lease, until);
            rc = err_set(err, EBUSY,
                         "%s (ETag %s) is being hashed by another worker, whose lease runs "
                         "until %s: left to it",
                         uri, o->etag, until);
        } else if (op != OP_READY && status && strcmp(status, "READY") == 0)
            rc = err_set(err, EEXIST,
                         "status of %s (ETag %s) not set to %s: it is READY for "
                         "this version already",
                         uri, o->etag, what);
        else
            rc = EAGAIN;
        goto out;
    }
    char when[32];
    iso8601((time_t)mt, when);
    rc = err_set(err, EEXIST,
                 "status of %s (ETag %s) not set to %s: a newer version's status is there "
                 "(ETag %s, Last-Modified %s%s)",
                 uri, o->etag, what, etag ? etag : "?", when,
                 mt == o->mtime ? ", the same second: it was first" : "");
out:
    json_object_put(doc);
    return rc;
}

/* why_not for a prefix's item: EBUSY while another writer's lease runs, EEXIST when it is READY
 * for this set already (or, for READY, another set's item came first), else EAGAIN. */
static int why_not_set(const struct status_store *st, const char *uri,
                       const struct status_object *o, enum op op, err_t *err)
{
    json_object *doc = NULL, *item = NULL;
    int rc = get_item(st, uri, &doc, &item, err);
    if (rc || item == NULL) {
        json_object_put(doc);
        return rc ? rc : EAGAIN;
    }
    const char *etag = ddb_item_s(item, "etag"), *status = ddb_item_s(item, "status");
    bool ours = etag && strcmp(etag, o->etag) == 0;
    int64_t lease = 0;
    if (status && strcmp(status, "HASHING") == 0 &&
        ddb_item_i64(item, "lease_until", &lease) == 0 && lease >= (int64_t)now(st) &&
        (op == OP_BEGIN || !ours)) {
        char until[32];
        iso8601((time_t)lease, until);
        rc = err_set(err, EBUSY,
                     "%s is being made by another worker (set %.12s), whose lease runs until "
                     "%s: left to it",
                     uri, etag ? etag : "?", until);
    } else if (ours && op != OP_READY && status && strcmp(status, "READY") == 0)
        rc = err_set(err, EEXIST, "status of %s (set %.12s) not set to %s: it is READY already",
                     uri, o->etag, op_status[op]);
    else
        rc = EAGAIN;
    json_object_put(doc);
    return rc;
}

static int write_status(const struct status_store *st, const struct status_object *o, enum op op,
                        const struct status_torrent *t, const struct status_set *set,
                        const char *error, err_t *err)
{
    /* the likely case first: a new version begins, a known one ends */
    static const enum cond order[][2] = {
        [OP_BEGIN] = {COND_FRESH, COND_SAME_NOT_READY},
        [OP_READY] = {COND_SAME, COND_FRESH},
        [OP_FAILED] = {COND_SAME_NOT_READY, COND_FRESH},
    };
    char *uri = NULL;
    int rc;
    if ((rc = check_store(st, err)))
        return rc;
    if (!o->bucket || !*o->bucket || !o->key || !*o->key || !o->etag || !*o->etag)
        return err_set(err, EINVAL, "status: bucket, key and ETag are required");
    if ((uri = make_uri(o->bucket, o->key)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    for (unsigned round = 0; round < WRITE_ROUNDS; round++) {
        for (int i = 0; i < 2; i++) {
            rc = write_once(st, uri, o, op, order[op][i], t, set, error, err);
            if (rc != EEXIST)
                goto out;
        }
        rc = set ? why_not_set(st, uri, o, op, err) : why_not(st, uri, o, op, err);
        if (rc != EAGAIN)
            goto out;
    }
    rc = err_set(err, EAGAIN, "ETag %s: the item kept changing under other writers", o->etag);
out:
    if (rc && rc != EEXIST && rc != EBUSY)
        err_prefix(err, "status of %s", uri);
    free(uri);
    return rc;
}

int status_begin(const struct status_store *st, const struct status_object *o, err_t *err)
{
    return write_status(st, o, OP_BEGIN, NULL, NULL, NULL, err);
}

/* READY needs the torrent's fields: EINVAL (err set) when one is missing, else 0. */
static int torrent_check(const struct status_object *o, const struct status_torrent *t, err_t *err)
{
    if (t == NULL || !t->torrent_key || !*t->torrent_key || !t->magnet || !*t->magnet ||
        !t->meta_version || !*t->meta_version ||
        !((t->info_hash && *t->info_hash) || (t->info_hash_v2 && *t->info_hash_v2)))
        return err_set(err, EINVAL,
                       "status of s3://%s/%s: READY needs the torrent key, an "
                       "info-hash, the magnet link and the meta version",
                       o->bucket ? o->bucket : "", o->key ? o->key : "");
    return 0;
}

int status_ready(const struct status_store *st, const struct status_object *o,
                 const struct status_torrent *t, err_t *err)
{
    if (torrent_check(o, t, err))
        return EINVAL;
    return write_status(st, o, OP_READY, t, NULL, NULL, err);
}

int status_failed(const struct status_store *st, const struct status_object *o, const char *error,
                  err_t *err)
{
    return write_status(st, o, OP_FAILED, NULL, NULL, error && *error ? error : "unknown error",
                        err);
}

int status_set_begin(const struct status_store *st, const struct status_object *o,
                     const struct status_set *set, err_t *err)
{
    return write_status(st, o, OP_BEGIN, NULL, set, NULL, err);
}

int status_set_ready(const struct status_store *st, const struct status_object *o,
                     const struct status_torrent *t, const struct status_set *set, err_t *err)
{
    if (torrent_check(o, t, err))
        return EINVAL;
    return write_status(st, o, OP_READY, t, set, NULL, err);
}

int status_set_failed(const struct status_store *st, const struct status_object *o,
                      const struct status_set *set, const char *error, err_t *err)
{
    return write_status(st, o, OP_FAILED, NULL, set, error && *error ? error : "unknown error",
                        err);
}

int status_item_files(json_object *item, const char *uri,
                      int (*each)(void *arg, const char *rel, const char *etag), void *arg,
                      err_t *err)
{
    json_object *files, *m;
    if (item == NULL || !json_object_object_get_ex(item, "files", &files) ||
        !json_object_object_get_ex(files, "M", &m) || !json_object_is_type(m, json_type_object))
        return ENOENT;
    json_object_object_foreach(m, rel, v)
    {
        json_object *sv;
        int rc;
        if (!json_object_object_get_ex(v, "S", &sv) || !json_object_is_type(sv, json_type_string))
            return err_set(err, EPROTO, "status of %s: files[%.200s] is no string", uri, rel);
        if ((rc = each(arg, rel, json_object_get_string(sv))))
            return rc;
    }
    return 0;
}

int status_set_files(const struct status_store *st, const char *bucket, const char *prefix,
                     int (*each)(void *arg, const char *rel, const char *etag), void *arg,
                     err_t *err)
{
    json_object *doc = NULL, *item = NULL;
    char *uri = NULL;
    int rc;
    if ((rc = check_store(st, err)))
        return rc;
    if ((uri = make_uri(bucket, prefix)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    if ((rc = get_item(st, uri, &doc, &item, err)) == 0)
        rc = status_item_files(item, uri, each, arg, err);
    json_object_put(doc);
    free(uri);
    return rc;
}

/* Copies string attribute name of item into dst; EOVERFLOW when it does not fit. */
static int get_s(json_object *item, const char *name, char *dst, size_t cap)
{
    const char *s = ddb_item_s(item, name);
    dst[0] = '\0';
    if (s == NULL)
        return 0;
    if (strlen(s) >= cap)
        return EOVERFLOW;
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

static int get_n(json_object *item, const char *name, int64_t *v, bool is_unsigned)
{
    *v = 0;
    int rc = ddb_item_i64(item, name, v);
    if (rc == ENOENT) {
        *v = 0;
        return 0;
    }
    if (rc == 0 && is_unsigned && *v < 0)
        return EPROTO;
    return rc;
}

int status_get(const struct status_store *st, const char *bucket, const char *key,
               struct status_item *out, err_t *err)
{
    json_object *doc = NULL, *item = NULL;
    char *uri = NULL;
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = check_store(st, err)))
        return rc;
    if ((uri = make_uri(bucket, key)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    if ((rc = get_item(st, uri, &doc, &item, err))) {
        err_prefix(err, "status of %s", uri);
        goto out;
    }
    if (item == NULL) {
        rc = err_set(err, ENOENT, "status of %s: no item in table %s", uri, st->table);
        goto out;
    }
    snprintf(out->uri, sizeof(out->uri), "%s", uri);
    struct {
        const char *name;
        char *dst;
        size_t cap;
    } strs[] = {
        {"status", out->status, sizeof(out->status)},
        {"bucket", out->bucket, sizeof(out->bucket)},
        {"object_key", out->object_key, sizeof(out->object_key)},
        {"etag", out->etag, sizeof(out->etag)},
        {"torrent_key", out->torrent_key, sizeof(out->torrent_key)},
        {"info_hash", out->info_hash, sizeof(out->info_hash)},
        {"info_hash_v2", out->info_hash_v2, sizeof(out->info_hash_v2)},
        {"magnet", out->magnet, sizeof(out->magnet)},
        {"magnet_v1", out->magnet_v1, sizeof(out->magnet_v1)},
        {"meta_version", out->meta_version, sizeof(out->meta_version)},
        {"error", out->error, sizeof(out->error)},
        {"source", out->source, sizeof(out->source)},
        {"updated_at", out->updated_at, sizeof(out->updated_at)},
    };
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if ((rc = get_s(item, strs[i].name, strs[i].dst, strs[i].cap))) {
            rc = err_set(err, rc, "status of %s: attribute %s is longer than %zu bytes", uri,
                         strs[i].name, strs[i].cap - 1);
            goto out;
        }
    int64_t v[7];
    const char *nums[] = {"size",     "object_mtime", "piece_length", "piece_count",
                          "attempts", "file_count",   "runs"};
    for (size_t i = 0; i < 7; i++)
        if ((rc = get_n(item, nums[i], &v[i], i != 1))) {
            rc = err_set(err, rc, "status of %s: attribute %s is not a number of the right kind",
                         uri, nums[i]);
            goto out;
        }
    out->size = (uint64_t)v[0];
    out->object_mtime = v[1];
    out->piece_length = (uint64_t)v[2];
    out->piece_count = (uint64_t)v[3];
    out->attempts = (uint64_t)v[4];
    out->file_count = (uint64_t)v[5];
    out->runs = (uint64_t)v[6];
out:
    json_object_put(doc);
    free(uri);
    return rc;
}

static void sleep_ms(const struct status_store *st, long ms)
{
    if (st->sleep_ms) {
        st->sleep_ms(ms);
        return;
    }
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* One {AttributeName: name, <kind>: value} entry in a one-element array, or NULL. */
static json_object *one_entry(const char *name, const char *kind, const char *value)
{
    json_object *a = json_object_new_array(), *e = json_object_new_object();
    if (a == NULL || e == NULL || ddb_add(e, "AttributeName", json_object_new_string(name)) ||
        ddb_add(e, kind, json_object_new_string(value)) || json_object_array_add(a, e) != 0) {
        json_object_put(a);
        json_object_put(e);
        return NULL;
    }
    return a;
}

int status_create_table(const struct status_store *st, err_t *err)
{
    json_object *req = NULL, *desc = NULL;
    const char *k = key_attr(st);
    int rc;
    if ((rc = check_store(st, err)))
        return rc;
    req = json_object_new_object();
    if (req == NULL || ddb_add(req, "TableName", json_object_new_string(st->table)) ||
        ddb_add(req, "AttributeDefinitions", one_entry(k, "AttributeType", "S")) ||
        ddb_add(req, "KeySchema", one_entry(k, "KeyType", "HASH")) ||
        ddb_add(req, "BillingMode", json_object_new_string("PAY_PER_REQUEST"))) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    /* ResourceInUseException: it exists (or is being made); check it below */
    rc = ddb_call(st->ddb, "CreateTable", req, NULL, err);
    if (rc && rc != EBUSY)
        goto out;
    json_object_put(req);
    req = json_object_new_object();
    if (req == NULL || ddb_add(req, "TableName", json_object_new_string(st->table))) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    const char *state = "unknown";
    for (int poll = 0; poll < POLL_MAX; poll++) {
        json_object_put(desc);
        desc = NULL;
        if ((rc = ddb_call(st->ddb, "DescribeTable", req, &desc, err)))
            goto out;
        json_object *table, *ts, *ks, *first, *name;
        if (!json_object_object_get_ex(desc, "Table", &table) ||
            !json_object_object_get_ex(table, "TableStatus", &ts)) {
            rc = err_set(err, EPROTO, "DynamoDB DescribeTable on table %s: no TableStatus",
                         st->table);
            goto out;
        }
        state = json_object_get_string(ts);
        if (strcmp(state, "ACTIVE") == 0) {
            const char *have = NULL;
            if (json_object_object_get_ex(table, "KeySchema", &ks) &&
                json_object_is_type(ks, json_type_array) && json_object_array_length(ks) == 1 &&
                (first = json_object_array_get_idx(ks, 0)) != NULL &&
                json_object_object_get_ex(first, "AttributeName", &name))
                have = json_object_get_string(name);
            if (have == NULL)
                rc = err_set(err, EINVAL,
                             "table %s exists with a composite key, not partition "
                             "key %s alone",
                             st->table, k);
            else if (strcmp(have, k) != 0)
                rc = err_set(err, EINVAL, "table %s exists with partition key %.255s, not %s",
                             st->table, have, k);
            goto out;
        }
        sleep_ms(st, POLL_MS);
    }
    rc = err_set(err, ETIMEDOUT, "table %s is not ACTIVE after %d s (it is %s)", st->table,
                 POLL_MAX * POLL_MS / 1000, state);
out:
    json_object_put(desc);
    json_object_put(req);
    return rc;
}
