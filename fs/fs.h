/* fs.h — the state s3torrentfs shares between its parts: configuration, the S3 client, the
 * torrent cache, and the three caches of the daemon (directory listings, data blocks, torrents). */
#ifndef S3TORRENTFS_FS_H
#define S3TORRENTFS_FS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache.h"
#include "s3torrent/log.h"
#include "s3torrent/recipe.h"
#include "s3torrent/s3.h"
#include "s3torrent/store.h"
#include "s3torrent/torrent.h"

struct meta;
struct blocks;
struct tgen;

/* What a mount keeps from start to unmount. */
struct fs_config {
    char *bucket;
    char *prefix; /* "" or ends with '/' */
    char *endpoint, *region, *profile;
    enum s3_addressing addressing;
    char *cache_path;
    uint64_t cache_max;         /* bytes; 0: no cap */
    uint64_t block_cache;       /* bytes of object data held in memory */
    unsigned prefetch_torrents; /* background generations; 0: off */
    uint64_t max_entries;       /* directory entries held in memory */
};

/* What SIGHUP can change (rereading the config file). Immutable once published: a reader
 * takes fs_settings(fs) once per operation and uses that one snapshot throughout. */
struct fs_settings {
    struct torrent_recipe recipe;
    struct recipe built;      /* owns what recipe points at */
    double ttl, negative_ttl; /* seconds */
    unsigned uid, gid, umask;
    uint64_t read_ahead;       /* bytes prefetched ahead of a sequential reader */
    unsigned max_generations;  /* torrents hashed at once */
    struct fs_settings *older; /* retired snapshots, freed at unmount */
};

struct fs {
    struct fs_config cfg;
    struct fs_settings *_Atomic live;
    struct logger log;
    struct http_client *http;
    struct cred_chain *creds;
    struct s3_client *s3;
    struct store *store; /* over s3: what meta, blocks and torrents read through */
    struct cache *cache;
    struct meta *meta;
    struct blocks *blocks;
    struct tgen *tgen;
};

static inline const struct fs_settings *fs_settings(struct fs *fs)
{
    return atomic_load_explicit(&fs->live, memory_order_acquire);
}

#endif
