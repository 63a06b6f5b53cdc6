/* emf.h — what an invocation did, in CloudWatch's Embedded Metric Format (docs/DESIGN.md §10):
 * one JSON line per invocation, which CloudWatch turns into metrics an alarm can use. Namespace
 * "s3torrent", one dimension, FunctionName. */
#ifndef S3TORRENT_LAMBDA_EMF_H
#define S3TORRENT_LAMBDA_EMF_H

#include <stdint.h>

#include "events.h"
#include "s3torrent/sync.h"

/* The counts of one invocation. */
struct emf_counts {
    unsigned created, up_to_date, adopted, replaced, skipped;
    unsigned failed_temporary, failed_permanent, deferred; /* deferred: the deadline */
    unsigned runs;                                         /* objects read and hashed */
    unsigned fanned_out; /* objects handed out in runs (the fan-out) */
    unsigned runs_done;  /* fan-out runs done by this invocation (hashed, or found hashed) */
    uint64_t bytes_hashed;
    double hash_ms; /* time spent on the objects that were hashed */
};

/* Counts one object's outcome (res may be NULL when sync_object was not reached). */
void emf_count(struct emf_counts *c, const struct events_outcome *o, const struct sync_result *res,
               double elapsed_ms);

/* The EMF document of c (timestamp in Unix milliseconds, duration of the invocation), as one
 * line without a newline; the caller frees it. NULL when out of memory. */
char *emf_document(const char *function_name, int64_t timestamp_ms, const struct emf_counts *c,
                   double duration_ms);

#endif
