/* live.h — the settings of a mount that SIGHUP can change, as immutable snapshots behind one
 * atomic pointer: the parts of the mount that read them take a struct live, not the mount. */
#ifndef S3TORRENTFS_LIVE_H
#define S3TORRENTFS_LIVE_H

#include <stdatomic.h>
#include <stdint.h>

#include "s3torrent/recipe.h"
#include "s3torrent/torrent.h"

/* What SIGHUP can change (rereading the config file). Immutable once published: a reader
 * takes live_get once per operation and uses that one snapshot throughout. */
struct fs_settings {
    struct torrent_recipe recipe;
    struct recipe built;      /* owns what recipe points at */
    double ttl, negative_ttl; /* seconds */
    unsigned uid, gid, umask;
    uint64_t read_ahead;       /* bytes prefetched ahead of a sequential reader */
    unsigned max_generations;  /* torrents hashed at once */
    unsigned dir_torrents;     /* depth of the directories given a DIR.torrent; 0: none */
    struct fs_settings *older; /* retired snapshots, freed at unmount */
};

/* The deepest dir_torrents: a path of 64 directories below a mount's root. */
#define DIR_TORRENTS_MAX 64

/* The current snapshot; settings_publish replaces it (the old ones stay valid until unmount). */
struct live {
    struct fs_settings *_Atomic cur;
};

/* Starts l at s (borrowed; a test's fixed settings, or before any reader runs). */
static inline void live_init(struct live *l, struct fs_settings *s)
{
    atomic_init(&l->cur, s);
}

/* The current snapshot, valid until unmount. */
static inline const struct fs_settings *live_get(struct live *l)
{
    return atomic_load_explicit(&l->cur, memory_order_acquire);
}

#endif
