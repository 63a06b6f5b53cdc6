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
    /* The prefix rule (docs/DESIGN.md §4): every prefix of this many segments ("a/" is 1,
     * "a/b/" 2) with objects below it gets PREFIX.torrent (sync_ruled_prefix); 0: none. */
    unsigned prefix_depth;
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

/* Like sync_object, for an object a listing saw (known) together with its KEY.torrent, of ETag
 * torrent_etag (NULL: none listed). When this host's cache (the maker's) knows that .torrent as
 * the one sync wrote or found up to date for this version of the object, with the outer fields
 * the recipe gives now and READY in the same status table, the object is up to date with no
 * request of its own: no HEAD, no status read (docs/DESIGN.md §4). Anything else takes the
 * sync_object path, which teaches the cache. */
int sync_listed(const struct sync_config *c, const char *bucket, const char *key,
                const struct store_object *known, const char *torrent_etag, const char *from_file,
                struct sync_result *out, struct buf *torrent);

/* True for keys that never get a torrent of their own (docs/DESIGN.md §4). */
bool sync_is_torrent_key(const char *key);

/* The piece hashes of the KEY.torrent that sync or the Lambda wrote for this version of the
 * object (its s3torrent-source-etag is obj's ETag), read with one HEAD and one GET of the
 * .torrent and none of the object: what another front end with no cache of its own lays its
 * torrent out from (maker_make_known). Returns 0 (free out with hasher_result_free), ENOENT
 * when there is no such .torrent, or another errno with err set. */
int sync_known_hashes(struct store *st, const char *bucket, const char *key,
                      const struct store_object *obj, struct hasher_result *out, err_t *err);

/* Prefix torrents (docs/DESIGN.md §4): PREFIX.torrent beside the objects below PREFIX/. */

/* The length of the prefix of key that a rule of depth segments covers ("a/b/" of "a/b/c.wav"
 * for 2, including its '/'), or 0 when none does: depth 0 (no rule), a key with no more than
 * depth segments, an empty segment on the way, or a .torrent key. */
size_t sync_rule_prefix(const char *key, unsigned depth);

/* One file of a set: its key relative to the prefix and its ETag (borrowed). */
struct sync_set_file {
    const char *rel, *etag;
};

/* The set digest, s3torrent-source-set: the hex SHA-256 of the lines "REL NUL ETAG LF" of files
 * sorted by the bytes of rel (sorted here, in place), into out. Returns 0 or ENOMEM. */
int sync_set_digest(struct sync_set_file *files, size_t n, char out[65]);

/* Relative keys (borrowed from now and before) that are new, changed (another ETag) or removed
 * in now (sorted by rel) against before (sorted here). Returns 0 or ENOMEM; free out with
 * sync_set_diff_free. */
struct sync_set_diff {
    const char **added, **changed, **removed;
    size_t nadded, nchanged, nremoved;
};
int sync_set_diff(const struct sync_set_file *now, size_t n, struct sync_set_file *before,
                  size_t nb, struct sync_set_diff *out);
void sync_set_diff_free(struct sync_set_diff *d);

/* Brings s3://bucket/PREFIX.torrent (prefix ends in '/') and the prefix's status item up to
 * date: the multi-file torrent of every object below the prefix but keys ending in ".torrent",
 * byte for byte what `create --exclude '*.torrent' s3://BUCKET/PREFIX/` makes with the same
 * recipe. Up to date when its s3torrent-source-set is the listing's digest and its
 * s3torrent-outer the recipe's (one listing and one HEAD); else made again under the prefix's
 * HASHING lease, with the keys that changed in the item and in out->why (REPLACED). SKIPPED: a
 * prefix with no byte or no valid name. Returns 0 unless the action is SYNC_FAILED (the errno). */
int sync_prefix(const struct sync_config *c, const char *bucket, const char *prefix,
                struct sync_result *out);

/* What the Lambda does after an object's torrent: sync_prefix of the prefix c->prefix_depth
 * puts key under (sync_rule_prefix), or nothing (out->action SYNC_SKIPPED) when none does.
 * Returns sync_prefix's result. */
int sync_ruled_prefix(const struct sync_config *c, const char *bucket, const char *key,
                      struct sync_result *out);

#endif
