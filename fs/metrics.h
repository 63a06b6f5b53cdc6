/* metrics.h — what the mount did, in Prometheus text (docs/DESIGN.md §16): readers' reads and
 * bytes by file kind, S3 requests by method and the bytes they brought, block cache hits and
 * misses, torrents made, errors and open files, and the ratio that says whether seeding from S3
 * pays: bytes served to readers over bytes fetched. Written atomically to a file
 * (-o metrics_file=PATH) every metrics_interval seconds and at unmount, for node_exporter's
 * textfile collector or any scraper that reads files. */
#ifndef S3TORRENTFS_METRICS_H
#define S3TORRENTFS_METRICS_H

#include <stdatomic.h>

#include "s3torrent/buf.h"

struct fs;

enum { FSM_DATA, FSM_TORRENT, FSM_KINDS };

/* The counters ops.c keeps (in struct fs). */
struct fsmetrics {
    atomic_ullong reads[FSM_KINDS], read_bytes[FSM_KINDS], read_errors[FSM_KINDS];
    atomic_ullong opens[FSM_KINDS], open_errors;
    atomic_llong open_files;
};

/* The mount's metrics in Prometheus text, appended to b. */
void fsmetrics_render(struct fs *fs, struct buf *b);

/* Starts the thread that writes the metrics to path every interval_s seconds (path borrowed:
 * it outlives the writer). Returns 0 or an errno. */
int fsmetrics_start(struct fs *fs, const char *path, unsigned interval_s);
/* Writes the file a last time and stops the thread (nothing when not started). */
void fsmetrics_stop(void);

/* Writes the metrics to path now: a temporary file renamed over it, or written into a device, a
 * FIFO or a symlink (outfile_write). Returns 0 or an errno. */
int fsmetrics_write(struct fs *fs, const char *path);

#endif
