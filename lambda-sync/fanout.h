/* fanout.h — objects of any size on Lambda (docs/DESIGN.md §10, "Fan-out"): an object whose
 * hashing does not fit one invocation is split into runs of whole pieces, each sent as a message
 * to the function's own SQS queue; every run is hashed by an invocation of its own, its piece
 * hashes kept in a DynamoDB item of the status table, and the invocation that completes the last
 * run lays the torrent out from them (the same maker and sync code as one invocation), PUTs it
 * and writes READY. */
#ifndef S3TORRENT_LAMBDA_FANOUT_H
#define S3TORRENT_LAMBDA_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3torrent/ddb.h"
#include "s3torrent/log.h"
#include "s3torrent/status.h"
#include "s3torrent/sync.h"

#define FANOUT_MAX_RUN_PIECES 6000  /* 52 bytes a piece: a run's item stays under 400 KB */
#define FANOUT_MARGIN_MS      10000 /* what a plan leaves of an invocation for the rest */

/* The settings (FANOUT_QUEUE_URL, FANOUT_BYTES, RUN_BYTES, HASH_RATE) and the SQS client. */
struct fanout {
    struct ddb_client *sqs; /* the JSON protocol client, speaking SQS */
    const char *queue_url;
    uint64_t fanout_bytes; /* objects over this are fanned out even when they fit */
    uint64_t run_bytes;    /* the most a run hashes */
    uint64_t rate;         /* bytes a second a plan counts on */
};

/* One run as its message says. */
struct fanout_run {
    char bucket[64];
    char key[1025];
    char etag[128];
    uint64_t size;
    int64_t mtime;
    uint64_t piece_length;
    unsigned meta; /* enum torrent_meta bits */
    uint64_t run, runs, run_pieces;
};

/* What a run message's body is: a JSON object {"s3torrent_run": {...}}. Parses body[0, len).
 * Returns 0 with *out filled, ENOENT when the body is no run message (an S3 event), or EINVAL
 * with err set for a run message that is not right. */
int fanout_parse_run(const void *body, size_t len, struct fanout_run *out, err_t *err);

/* An SQS event whose every record is a run message: the runs and their message ids. */
struct fanout_batch {
    struct fanout_run *runs;
    char (*ids)[128];
    size_t n;
};

/* Parses an event payload. Returns 0 with *out (free it with fanout_batch_free), ENOENT when it
 * is not an SQS event of runs alone (err untouched: the usual events), or EINVAL / ENOMEM with
 * err set for a batch of runs with one that is not right. */
int fanout_parse_event(const void *data, size_t len, struct fanout_batch *out, err_t *err);
void fanout_batch_free(struct fanout_batch *b);

/* Writes run r's message body (a JSON object) into out (the caller frees it). Returns 0 or
 * ENOMEM. */
int fanout_run_json(const struct fanout_run *r, char **out);

/* What one invocation does with runs: the warm clients and the recipe. */
struct fanout_ctx {
    const struct fanout *f;
    const struct sync_config *sc; /* its maker's store, status store, recipe, log */
    int64_t deadline_ms;          /* 0: none */
};

/* sync_config's hand_out (arg: a struct fanout_ctx): plans the runs of an object that does not
 * fit, records the plan in its status item and sends the runs. ENOTSUP when it fits. */
int fanout_hand_out(void *arg, const struct status_object *so, err_t *err);

/* Does run r: hashes its pieces unless its item has them, records them, counts it done, and
 * assembles the torrent when it was the last. *assembled tells whether this invocation wrote
 * the torrent; *hashed the bytes it read. Returns 0 when the run is done (or void: the object moved
 * on), EBUSY when another invocation holds its lease, or another errno with err set (the message
 * comes back). */
int fanout_do_run(const struct fanout_ctx *x, const struct fanout_run *r, bool *assembled,
                  uint64_t *hashed, err_t *err);

/* What an invocation of runs did. */
struct fanout_tally {
    unsigned done, failed, made; /* runs done, runs to retry, torrents assembled */
    unsigned failed_permanent;   /* runs no retry would help, their object recorded FAILED */
    uint64_t bytes_hashed;
    double hash_ms; /* time spent on the runs that were hashed */
};

/* Does the runs of batch b one after another: *response gets the SQS answer (the caller frees
 * it), {"batchItemFailures": [...]} naming the runs to retry; *t the counts. A run that fails
 * for good (events_errno_temporary: access denied, the object gone, ...) records its object
 * FAILED with the reason, and is not retried; the plan's other runs then find it no longer
 * HASHING and are dropped. Logs a line per run. Returns 0, or ENOMEM with err set. */
int fanout_handle(const struct fanout_ctx *x, const struct fanout_batch *b, char **response,
                  struct fanout_tally *t, err_t *err);

#endif
