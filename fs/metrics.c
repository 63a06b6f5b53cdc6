/* metrics.c — the mount's metrics (metrics.h). */
#include "metrics.h"
#include "fs.h"
#include "torrents.h"

#include "s3torrent/blocks.h"
#include "s3torrent/outfile.h"
#include "s3torrent/prom.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const kind_names[FSM_KINDS] = {"data", "torrent"};

/* A family with one sample per file kind. */
static void by_kind(struct buf *b, const char *name, const char *help, atomic_ullong *v)
{
    char labels[32];
    prom_family(b, name, "counter", help);
    for (int k = 0; k < FSM_KINDS; k++) {
        snprintf(labels, sizeof(labels), "file=\"%s\"", kind_names[k]);
        prom_sample(b, name, labels, atomic_load(&v[k]));
    }
}

void fsmetrics_render(struct fs *fs, struct buf *b)
{
    struct fsmetrics *m = &fs->metrics;
    by_kind(b, "s3torrentfs_reads_total", "Reads answered to readers of the mount, by file kind.",
            m->reads);
    by_kind(b, "s3torrentfs_read_bytes_total", "Bytes answered to readers, by file kind.",
            m->read_bytes);
    by_kind(b, "s3torrentfs_read_errors_total", "Reads answered with an error, by file kind.",
            m->read_errors);
    by_kind(b, "s3torrentfs_opens_total", "Files opened, by file kind.", m->opens);
    prom_counter(b, "s3torrentfs_open_errors_total",
                 "Opens that failed for another reason than a missing file.",
                 atomic_load(&m->open_errors));
    long long open_files = atomic_load(&m->open_files);
    prom_gauge(b, "s3torrentfs_open_files", "Files open now.",
               open_files > 0 ? (unsigned long long)open_files : 0);

    struct http_counters *h = s3_counters(fs->s3);
    prom_family(b, "s3torrentfs_s3_requests_total", "counter",
                "HTTP requests sent to S3, by method (retries included; listings are GETs).");
    for (int i = 0; i < HTTP_METHODS; i++) {
        char labels[32];
        snprintf(labels, sizeof(labels), "method=\"%s\"", http_method_names[i]);
        prom_sample(b, "s3torrentfs_s3_requests_total", labels, atomic_load(&h->by_method[i]));
    }
    prom_counter(b, "s3torrentfs_s3_retries_total", "S3 requests retried.",
                 atomic_load(&h->retries));
    prom_counter(b, "s3torrentfs_s3_transport_errors_total",
                 "S3 requests that failed below HTTP (refused, reset, timed out).",
                 atomic_load(&h->transport_errors));
    prom_counter(b, "s3torrentfs_s3_bytes_total",
                 "Response body bytes received from S3 (object data, listings, errors).",
                 atomic_load(&h->bytes_in));

    struct blocks_stats bs = {0};
    if (fs->blocks)
        blocks_stats(fs->blocks, &bs);
    prom_counter(b, "s3torrentfs_data_fetches_total",
                 "Ranged GETs of object data made by the block cache (read-ahead included).",
                 bs.gets);
    prom_counter(b, "s3torrentfs_data_fetched_bytes_total", "Object bytes those GETs brought.",
                 bs.fetched);
    prom_family(b, "s3torrentfs_block_cache_hits_total", "counter",
                "Blocks readers found in the cache (or being fetched already), by tier.");
    prom_sample(b, "s3torrentfs_block_cache_hits_total", "tier=\"memory\"", bs.hits);
    prom_sample(b, "s3torrentfs_block_cache_hits_total", "tier=\"disk\"", bs.disk_hits);
    prom_family(b, "s3torrentfs_block_cache_misses_total", "counter",
                "Blocks not found in a tier: missing from memory (looked for on disk, if there "
                "is a disk cache), missing from the disk cache (fetched from S3).");
    prom_sample(b, "s3torrentfs_block_cache_misses_total", "tier=\"memory\"", bs.misses);
    prom_sample(b, "s3torrentfs_block_cache_misses_total", "tier=\"disk\"", bs.disk_misses);
    prom_counter(b, "s3torrentfs_disk_cache_writes_total", "Blocks written to the disk cache.",
                 bs.disk_writes);
    prom_counter(b, "s3torrentfs_disk_cache_evictions_total",
                 "Files evicted from the disk cache (cap or free-space floor).", bs.disk_evictions);
    prom_counter(b, "s3torrentfs_disk_cache_corrupt_total",
                 "Damaged disk cache files found, deleted and fetched again.", bs.disk_corrupt);

    prom_gauge(b, "s3torrentfs_block_cache_bytes",
               "Memory of object blocks now, cached and being fetched (block_cache bounds it).",
               bs.bytes);
    prom_gauge(b, "s3torrentfs_block_cache_peak_bytes",
               "The most memory of object blocks held at once since the mount.", bs.peak_bytes);

    struct tgen_stats ts = {0};
    if (fs->tgen)
        tgen_stats(fs->tgen, &ts);
    prom_counter(b, "s3torrentfs_torrents_hashed_total",
                 "Torrents made by reading and hashing their object.", ts.hashed);
    prom_counter(b, "s3torrentfs_torrents_cached_total",
                 "Torrents laid out from cached piece hashes, without reading the object.",
                 ts.cached);
    prom_counter(b, "s3torrentfs_torrent_errors_total", "Torrents that could not be made.",
                 ts.failed);

    unsigned long long served = atomic_load(&m->read_bytes[FSM_DATA]);
    prom_family(b, "s3torrentfs_served_per_fetched_ratio", "gauge",
                "Object bytes answered to readers per object byte fetched from S3 (above 1: "
                "the cache saves S3 traffic; NaN before anything was fetched).");
    prom_sample_real(b, "s3torrentfs_served_per_fetched_ratio", NULL,
                     bs.fetched ? (double)served / (double)bs.fetched : (double)NAN);
}

int fsmetrics_write(struct fs *fs, const char *path)
{
    struct buf b;
    buf_init(&b, 1u << 20);
    fsmetrics_render(fs, &b);
    if (b.err) {
        int e = b.err;
        buf_free(&b);
        return e;
    }
    /* never a wait: a FIFO nobody reads would hold the writer, and the unmount behind it */
    int rc = outfile_write(path, b.data, b.len, OUTFILE_REPLACE | OUTFILE_NONBLOCK, NULL);
    buf_free(&b);
    return rc;
}

/* The writer: one per process, like the SIGHUP watcher. */
static struct {
    struct fs *fs;
    const char *path;
    unsigned interval_s;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool running, stopping;
    pthread_t thread;
} writer = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static void write_logged(void)
{
    int rc = fsmetrics_write(writer.fs, writer.path);
    if (rc)
        log_msg(&writer.fs->log, LOG_WARNING, "metrics: cannot write %s: %s", writer.path,
                strerror(rc));
}

static void *write_loop(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&writer.lock);
    while (!writer.stopping) {
        pthread_mutex_unlock(&writer.lock);
        write_logged();
        pthread_mutex_lock(&writer.lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += writer.interval_s;
        while (!writer.stopping &&
               pthread_cond_timedwait(&writer.wake, &writer.lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&writer.lock);
    write_logged(); /* the last figures, at unmount */
    return NULL;
}

int fsmetrics_start(struct fs *fs, const char *path, unsigned interval_s)
{
    writer.fs = fs;
    writer.path = path;
    writer.interval_s = interval_s ? interval_s : 1;
    writer.stopping = false;
    int rc = pthread_create(&writer.thread, NULL, write_loop, NULL);
    writer.running = rc == 0;
    return rc;
}

void fsmetrics_stop(void)
{
    if (!writer.running)
        return;
    pthread_mutex_lock(&writer.lock);
    writer.stopping = true;
    pthread_cond_signal(&writer.wake);
    pthread_mutex_unlock(&writer.lock);
    pthread_join(writer.thread, NULL);
    writer.running = false;
}
