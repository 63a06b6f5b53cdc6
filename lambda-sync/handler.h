/* handler.h — what the Lambda does with one object an event names (docs/DESIGN.md §10): the
 * skip rules (a .torrent key, EXCLUDE_PREFIXES, the S3_BUCKET allowlist), the deadline check,
 * a HEAD that pins the version, then sync_object, and an outcome for the response. It takes the
 * interfaces it needs (rules, a sync configuration over any store, a logger), so it is tested
 * over the in-memory store. */
#ifndef S3TORRENT_LAMBDA_HANDLER_H
#define S3TORRENT_LAMBDA_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "s3torrent/log.h"
#include "s3torrent/sync.h"

/* Start no object unless this much time is left, and more for big objects: hashing streams at
 * well over 50 MB/s on a function of 1 GB or more (docs/DESIGN.md §10: one object, one pass). */
#define HANDLER_MIN_TIME_LEFT_MS 10000
#define HANDLER_BYTES_PER_MS     (50ull * 1000 * 1000 / 1000)

/* Which objects are left alone by rule. */
struct handler_rules {
    char **allow, **exclude; /* S3_BUCKET (empty: any bucket), EXCLUDE_PREFIXES */
    size_t nallow, nexclude;
};

/* Whether a failed item's FAILED status is on record (--listen). */
enum handler_record {
    HANDLER_REC_NONE,    /* not failed, or not asked to record */
    HANDLER_REC_DONE,    /* the status item says FAILED, or a newer state */
    HANDLER_REC_NOWHERE, /* no table, or no ETag to name the version by */
    HANDLER_REC_ERROR,   /* the write failed */
};

/* Per-item storage behind a struct events_outcome. */
struct handler_slot {
    struct sync_result res;
    char msg[600];
    bool headed; /* etag, mtime and size are the object's, as HEAD saw it */
    char etag[128];
    int64_t mtime;
    uint64_t size;
    enum handler_record rec;
};

/* Does one item: fills *o, whose strings point into *s (zeroed by the caller) or are static.
 * deadline_ms is the invocation's deadline in Unix milliseconds (0: none). Logs nothing of the
 * outcome: see handler_log. */
void handler_item(const struct handler_rules *rules, const struct sync_config *sc,
                  int64_t deadline_ms, const struct events_item *it, struct events_outcome *o,
                  struct handler_slot *s);

/* Logs the one line that says what became of item it (handler_item logs nothing of its own
 * outcome, so that the caller can say which object and outcome the line is about). */
void handler_log(const struct logger *log, const struct events_item *it,
                 const struct events_outcome *o);

/* The time now in Unix milliseconds, as deadlines are given. */
int64_t handler_now_ms(void);

#endif
