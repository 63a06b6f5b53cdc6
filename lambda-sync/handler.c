/* handler.c — one object of an event: rules, deadline, HEAD, sync_object, outcome. */
#include "handler.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "s3torrent/s3.h"

int64_t handler_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Why an item is left alone by rule (the recursion guard and the allowlist), or NULL. */
static const char *skip_reason(const struct handler_rules *L, const struct events_item *it)
{
    if (sync_is_torrent_key(it->key))
        return "a .torrent object gets no torrent of its own";
    for (size_t i = 0; i < L->nexclude; i++)
        if (strncmp(it->key, L->exclude[i], strlen(L->exclude[i])) == 0)
            return "under an excluded prefix (EXCLUDE_PREFIXES)";
    if (L->nallow == 0)
        return NULL;
    for (size_t i = 0; i < L->nallow; i++)
        if (strcmp(it->bucket, L->allow[i]) == 0)
            return NULL;
    return "bucket not in S3_BUCKET";
}

/* Whether an object of size bytes (size_known) can still be done before the deadline. */
static bool time_for(int64_t deadline_ms, bool size_known, uint64_t size)
{
    if (deadline_ms <= 0)
        return true;
    int64_t need = HANDLER_MIN_TIME_LEFT_MS;
    if (size_known && (int64_t)(size / HANDLER_BYTES_PER_MS) > need)
        need = (int64_t)(size / HANDLER_BYTES_PER_MS);
    return deadline_ms - handler_now_ms() >= need;
}

static void outcome_errno(struct events_outcome *o, struct handler_slot *s, int e, const char *why)
{
    o->code = events_errno_temporary(e) ? EVENTS_TEMPORARY : EVENTS_PERMANENT;
    o->action = "failed";
    snprintf(s->msg, sizeof(s->msg), "%s", why);
    o->message = s->msg;
}

void handler_item(const struct handler_rules *rules, const struct sync_config *sc,
                  int64_t deadline_ms, const struct events_item *it, struct events_outcome *o,
                  struct handler_slot *s)
{
    const char *why;
    struct store_object obj;
    err_t err = {0};
    o->info_hash = "";
    o->message = "";
    if (it->error) {
        outcome_errno(o, s, EINVAL, it->error);
        return;
    }
    if (s3_check_bucket(it->bucket, strlen(it->bucket), &err)) { /* the rule of every front end */
        outcome_errno(o, s, EINVAL, err.msg);
        return;
    }
    if ((why = skip_reason(rules, it))) {
        o->code = EVENTS_SKIPPED;
        o->action = "skipped";
        o->message = why;
        return;
    }
    /* with the fan-out, an object too big for the time left is handed out in runs */
    bool fanout = sc->hand_out != NULL;
    if (!time_for(deadline_ms, it->has_size && !fanout, it->size))
        goto not_done;
    /* the HEAD pins the version sync_object works on, and tells its size up front */
    int rc = store_head(sc->maker->store, it->bucket, it->key, &obj, NULL, &err);
    if (rc) {
        outcome_errno(o, s, rc, err.msg);
        return;
    }
    s->headed = true; /* the version a FAILED status would be about */
    snprintf(s->etag, sizeof(s->etag), "%s", obj.etag);
    s->mtime = obj.mtime;
    s->size = obj.size;
    if (!time_for(deadline_ms, !fanout, obj.size))
        goto not_done;
    rc = sync_object(sc, it->bucket, it->key, &obj, NULL, &s->res, NULL);
    o->action = sync_action_name(s->res.action);
    o->info_hash = s->res.info_hash[0] ? s->res.info_hash : s->res.info_hash_v2;
    struct sync_result pres; /* then its prefix's torrent, under a prefix rule */
    if (s->res.handed_out) {
        o->code = EVENTS_DONE;
        o->action = "fanned-out";
        o->message = "hashed in runs by other invocations (the fan-out)";
    } else if (s->res.action == SYNC_FAILED) {
        outcome_errno(o, s, rc, s->res.why);
    } else if ((rc = sync_ruled_prefix(sc, it->bucket, it->key, &pres))) {
        outcome_errno(o, s, rc, pres.why);
    } else if (s->res.action == SYNC_SKIPPED) {
        o->code = EVENTS_SKIPPED;
        o->message = s->res.why;
    } else {
        o->code = EVENTS_DONE;
    }
    return;
not_done:
    o->code = EVENTS_NOT_DONE;
    o->action = "not-done";
    o->message = "not started: too little time left before the invocation's deadline";
}

void handler_log(const struct logger *log, const struct events_item *it,
                 const struct events_outcome *o)
{
    switch (o->code) {
    case EVENTS_DONE:
        log_msg(log, LOG_INFO, "%s s3://%s/%s %s", o->action, it->bucket, it->key, o->info_hash);
        break;
    case EVENTS_SKIPPED:
        log_msg(log, LOG_INFO, "skipped s3://%s/%s: %s", it->bucket, it->key, o->message);
        break;
    case EVENTS_NOT_DONE:
        log_msg(log, LOG_WARNING, "not started s3://%s/%s: too close to the deadline", it->bucket,
                it->key);
        break;
    case EVENTS_TEMPORARY:
    case EVENTS_PERMANENT:
        log_msg(log, LOG_ERR, "%s", o->message);
        break;
    }
}
