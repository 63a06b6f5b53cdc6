/* fs.h — the state s3torrentfs shares between its parts: configuration, the S3 client, the
 * torrent cache, and the three caches of the daemon (directory listings, data blocks, torrents). */
#ifndef S3TORRENTFS_FS_H
#define S3TORRENTFS_FS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache.h"
#include "s3torrent/log.h"
#include "s3torrent/s3.h"
#include "s3torrent/torrent.h"

struct meta;
struct blocks;
struct tgen;

struct fs_config {
    char *bucket;
    char *prefix;             /* "" or ends with '/' */
    char *endpoint, *region, *profile;
    int path_style;
    char *cache_path;
    uint64_t cache_max;       /* bytes; 0: no cap */
    double ttl, negative_ttl; /* seconds */
    char *trackers;           /* comma-separated */
    char *webseed;
    uint64_t piece_length;
    char *meta_version;
    int private_;
    char *source;
    unsigned uid, gid, umask;
    int uid_set, gid_set;
    uint64_t read_ahead;      /* bytes prefetched ahead of a sequential reader */
    uint64_t block_cache;     /* bytes of object data held in memory */
    unsigned prefetch_torrents; /* background generations; 0: off */
    unsigned max_generations; /* torrents hashed at once */
    uint64_t max_entries;     /* directory entries held in memory */
};

struct fs {
    struct fs_config cfg;
    struct logger log;
    struct http_client *http;
    struct cred_chain *creds;
    struct s3_client *s3;
    struct cache *cache;
    struct torrent_recipe recipe;
    char **trackers; /* backing recipe.trackers */
    char fingerprint[65];
    struct meta *meta;
    struct blocks *blocks;
    struct tgen *tgen;
};

#endif
