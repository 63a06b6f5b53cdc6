/* meta.h — directory listings of the mount: one ListObjectsV2 (with a delimiter) per directory,
 * turned into entries by the rules of docs/DESIGN.md §5 and cached for the TTL in bounded
 * memory. */
#ifndef S3TORRENTFS_META_H
#define S3TORRENTFS_META_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "live.h"
#include "s3torrent/err.h"
#include "s3torrent/log.h"
#include "s3torrent/store.h"

/* META_DIR_TORRENT: a directory's synthetic DIR.torrent (dir_torrents, docs/DESIGN.md §5);
 * its size and date are not in the listing (fs/dirtorrents.h has them). */
enum meta_kind { META_DIR, META_FILE, META_TORRENT, META_DIR_TORRENT };

struct meta_entry {
    char *name;
    enum meta_kind kind;
    uint64_t size; /* FILE: the object's; TORRENT: the torrent's exact size */
    int64_t mtime;
    char *key;            /* FILE and TORRENT: the object's key (the source object for TORRENT);
                           * DIR_TORRENT: the directory's prefix, ending in '/' */
    char *etag;           /* FILE and TORRENT: the object's ETag */
    uint64_t object_size; /* TORRENT: the source object's size */
};

/* A snapshot of one directory: immutable once published, shared by reference. */
struct meta_dir {
    struct meta_entry *entries; /* sorted by name (bytewise) */
    size_t n;
    size_t hidden; /* keys that cannot be paths, and files shadowed by directories */
};

/* What a listing cache reads through; every pointer is borrowed and outlives the cache. */
struct meta_config {
    struct store *store;
    const char *bucket;
    const char *prefix;       /* the mount's root: "" or ends with '/' */
    uint64_t max_entries;     /* directory entries held in memory */
    const struct logger *log; /* hidden keys, once per directory */
    struct live *live;        /* the TTLs and the recipe (torrent sizes) */
};

/* Returns a new listing cache over c (copied), or NULL when out of memory. */
struct meta *meta_new(const struct meta_config *c);
void meta_free(struct meta *m);

/* The listing of the directory at path ("/" or "/a/b"), fetched when missing or older than
 * the TTL (at most one fetch per directory at a time). Returns 0 with *out referenced (release
 * it with meta_dir_release), ENOENT, or another errno with err set. */
int meta_dir_get(struct meta *m, const char *path, struct meta_dir **out, err_t *err);
void meta_dir_release(struct meta *m, struct meta_dir *d);

/* Finds path's entry. Returns 0 with a copy in *out (free with meta_entry_clear), ENOENT, or
 * another errno. A miss in a listing older than the negative TTL refetches it once. */
int meta_lookup(struct meta *m, const char *path, struct meta_entry *out, err_t *err);
void meta_entry_clear(struct meta_entry *e);

/* Marks the listing of path's directory as too old, so that the next lookup fetches it again
 * (path's object was found changed or gone). */
void meta_forget(struct meta *m, const char *path);

/* Drops every cached listing (SIGHUP). */
void meta_flush(struct meta *m);

/* The exact size of the torrent of an object under set's recipe (docs/DESIGN.md §3), for stat;
 * 0 when the recipe cannot make one. */
uint64_t meta_torrent_size(const struct fs_settings *set, const char *key, uint64_t size,
                           int64_t mtime);

#endif
