/* lamlog.h — the runtime's log lines as Lambda's advanced logging controls want them
 * (docs/DESIGN.md §10): AWS_LAMBDA_LOG_FORMAT=JSON makes every line one JSON object with
 * timestamp, level, message, requestId and, while an object is worked on, its URI (and, on the
 * line that ends it, the outcome); Text keeps "s3torrent-lambda: level: message".
 * AWS_LAMBDA_LOG_LEVEL (TRACE, DEBUG, INFO, WARN, ERROR, FATAL) drops lines below it. Lines go to
 * standard error, one write each. */
#ifndef S3TORRENT_LAMBDA_LAMLOG_H
#define S3TORRENT_LAMBDA_LAMLOG_H

#include <stdbool.h>

#include "s3torrent/err.h"
#include "s3torrent/log.h"

/* Reads the two variables (either may be NULL or empty: Text, INFO). Returns 0, or EINVAL with
 * err set for a value Lambda does not define. */
int lamlog_init(const char *format, const char *level, err_t *err);
/* Whether lines are JSON. */
bool lamlog_json(void);
/* The logger that writes them. */
struct logger lamlog_logger(void);

/* What the calling thread's lines are about: the invocation's request id, the object's
 * s3://BUCKET/KEY, and the outcome of the line that ends it (NULL: none). */
void lamlog_request(const char *request_id);
/* The calling thread's request id ("" when none). */
const char *lamlog_current_request(void);
void lamlog_object(const char *bucket, const char *key);
void lamlog_outcome(const char *outcome);

/* Writes one line as it is (a metrics document), at any level. */
void lamlog_raw(const char *line);

#endif
