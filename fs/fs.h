/* fs.h — the state s3torrentfs shares between its parts: configuration, the S3 client, the
 * torrent cache, and the three caches of the daemon (directory listings, data blocks, torrents). */
#ifndef S3TORRENTFS_FS_H
#define S3TORRENTFS_FS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache.h"
#include "live.h"
#include "metrics.h"
#include "s3torrent/log.h"
#include "s3torrent/lru.h"
#include "s3torrent/s3.h"
#include "s3torrent/store.h"

struct meta;
struct blocks;
struct diskcache;
struct tgen;
struct dirt;

/* What a mount keeps from start to unmount. */
struct fs_config {
    char *bucket;
    char *prefix; /* "" or ends with '/' */
    char *endpoint, *region, *profile;
    enum s3_addressing addressing;
    char *cache_path;
    uint64_t cache_max;         /* bytes; 0: no cap */
    uint64_t block_cache;       /* bytes of object data held in memory */
    char *disk_cache;           /* a directory of blocks behind it (docs/DESIGN.md §15), or NULL */
    uint64_t disk_cache_max;    /* bytes of its files, at most */
    unsigned prefetch_torrents; /* background generations; 0: off */
    uint64_t max_entries;       /* directory entries held in memory */
    char *metrics_file;         /* NULL: no metrics written */
    unsigned metrics_interval;  /* seconds between two writes of metrics_file */
};

struct fs {
    struct fs_config cfg;
    struct live live; /* what SIGHUP can change */
    struct logger log;
    struct http_client *http;
    struct cred_chain *creds;
    struct s3_client *s3;
    struct store *store; /* over s3: what meta, blocks and torrents read through */
    struct cache *cache;
    struct meta *meta;
    struct blocks *blocks;
    struct diskcache *disk; /* behind blocks, or NULL */
    struct tgen *tgen;
    struct dirt *dirt;        /* directories' DIR.torrent (dir_torrents) */
    struct fsmetrics metrics; /* what readers did (metrics.h) */
    /* files and directories open now (ops.c): the kernel drops their releases when the
     * connection ends, so the daemon frees what is left itself (ops_close_all) */
    pthread_mutex_t handles_lock;
    struct lru handles;
};

#endif
