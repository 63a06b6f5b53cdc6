/* sync.h — materialising one object's torrent in S3 (docs/DESIGN.md §4) and its status item
 * (§6): the one code path behind `s3torrent sync` and the Lambda function, so both make the same
 * bytes. */
#ifndef S3TORRENT_SYNC_H
#define S3TORRENT_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "s3torrent/err.h"
#include "s3torrent/log.h"
#include "s3torrent/maker.h"
#include "s3torrent/s3.h"
#include "s3torrent/status.h"
#include "s3torrent/store.h"
#include "s3torrent/torrent.h"

struct sync_config {
    const struct maker *maker; /* makes the bytes; its store holds objects and .torrents */
    const struct torrent_recipe *recipe;
    const struct status_store *status; /* NULL: no status items */
    const char *source;                /* "sync" or "lambda" (the item's source) */
    bool dry_run;                      /* decide and report, change nothing */
    const struct logger *log;
    /* Unix seconds until which a HASHING status is this writer's lease (the Lambda: its
     * deadline); 0: a minute and a second per 20 MB of the object. Another writer leaves a
     * version under a running lease alone (EBUSY, a temporary failure). */
    int64_t lease_until;
    /* A version under another writer's running lease: wait until that writer is done and
     * report what it left (sync: every object done when it exits), instead of failing at once
     * with EBUSY (the Lambda: SQS brings the message back). */
    bool wait_leases;
    /* The Lambda's fan-out (docs/DESIGN.md §10). hand_out (may be NULL) is called once this
     * writer's HASHING lease on the version is taken, for an object it would hash from the
     * store: it returns 0 when the hashing was handed out to runs elsewhere (out->handed_out:
     * no torrent yet, the lease stays), ENOTSUP to hash it here, or an errno with err set. */
    int (*hand_out)(void *arg, const struct status_object *so, err_t *err);
    void *hand_out_arg;
    /* The hashes of this version made elsewhere, in known_runs runs (the fan-out's last run):
     * the torrent is laid out from them with no read, and READY records the runs. The caller
     * holds the version's HASHING lease already, so no HASHING is written. NULL: none. */
    const struct hasher_result *known;
    uint64_t known_runs;
};

enum sync_action {
    SYNC_CREATED,    /* there was no .torrent */
    SYNC_UP_TO_DATE, /* its source-etag metadata matched */
    SYNC_ADOPTED,    /* a foreign .torrent verified against the object: kept byte for byte */
    SYNC_REPLACED,   /* a stale or foreign .torrent that did not verify */
    SYNC_SKIPPED,    /* nothing to do by rule: a .torrent key, a zero-byte object */
    SYNC_FAILED,
};

struct sync_result {
    enum sync_action action;
    bool dry_run;           /* the action is what would have been done */
    char info_hash[41];     /* v1, "" when none */
    char info_hash_v2[65];  /* v2, "" when none */
    uint64_t size;          /* the object's */
    uint64_t hashed;        /* bytes read and hashed (made or verified): 0 when known hashes or
                             * an up-to-date torrent did */
    char why[512];          /* SKIPPED: the rule; FAILED: the error (one line) */
    bool handed_out;        /* the config's hand_out took the hashing: no torrent yet */
};

/* The action's name as reports show it ("created", "up-to-date", ...). */
const char *sync_action_name(enum sync_action a);

/* Brings s3://bucket/key's .torrent and status up to date. known (may be NULL) is the object as
 * a listing saw it (spares a HEAD). from_file (may be NULL) hashes that local copy of the object
 * instead of downloading it: its size must match, and its MD5 when the ETag is one. torrent (may
 * be NULL) gets the bytes of the .torrent now in the store (made, adopted or up to date; nothing
 * on a dry run or when there is none). The result is in *out; returns 0 unless the action is
 * SYNC_FAILED (then the errno). */
int sync_object(const struct sync_config *c, const char *bucket, const char *key,
                const struct store_object *known, const char *from_file, struct sync_result *out,
                struct buf *torrent);

/* True for keys that never get a torrent of their own (docs/DESIGN.md §4). */
bool sync_is_torrent_key(const char *key);

/* The piece hashes of the KEY.torrent that sync or the Lambda wrote for this version of the
 * object (its s3torrent-source-etag is obj's ETag), read with one HEAD and one GET of the
 * .torrent and none of the object: what another front end with no cache of its own lays its
 * torrent out from (maker_make_known). Returns 0 (free out with hasher_result_free), ENOENT
 * when there is no such .torrent, or another errno with err set. */
int sync_known_hashes(struct store *st, const char *bucket, const char *key,
                      const struct store_object *obj, struct hasher_result *out, err_t *err);

#endif
