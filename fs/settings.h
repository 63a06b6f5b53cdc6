/* settings.h — what s3torrentfs is told to do: -o options, the environment and an optional
 * config file (-o config=FILE), resolved with the precedence of docs/DESIGN.md §7 into the fixed
 * part of a mount (struct fs_config) and the part SIGHUP can change (struct fs_settings). */
#ifndef S3TORRENTFS_SETTINGS_H
#define S3TORRENTFS_SETTINGS_H

#include "fs.h"

#include <fuse_opt.h>

/* What one source (the command line, or the config file) said; NULL: it said nothing. */
struct settings_opts {
    char *bucket, *config;
    char *endpoint, *region, *profile;
    char *cache, *cache_max;
    char *ttl, *negative_ttl;
    char *trackers, *webseed, *piece_length, *meta_version, *source, *comment;
    char *uid, *gid, *umask;
    char *read_ahead, *block_cache, *prefetch_torrents, *max_generations, *dir_torrents;
    char *disk_cache, *disk_cache_max;
    char *addressing_style;
    char *metrics_file, *metrics_interval;
    int path_style, private_, no_date, prefetch_flag;
    int show_help, show_version;
    char *nonopt[2]; /* BUCKET[:PREFIX] MOUNTPOINT, as given (command line only) */
    unsigned nnonopt;
};

/* Parses the command line into cmd; the mount point stays in args for FUSE, the rest of the
 * FUSE options too. Returns 0 or -1 (FUSE has printed why). */
int settings_parse_args(struct fuse_args *args, struct settings_opts *cmd);

/* Reads a config file: one "name = value" per line, the names of the -o options (plus
 * "bucket = BUCKET[:PREFIX]"). Returns 0 or an errno with err set ("FILE:LINE: why"). */
int settings_read_file(const char *path, struct settings_opts *out, err_t *err);

/* Resolves cmd > environment > file > default into *fixed (when not NULL: bucket, prefix,
 * endpoint, cache, ...) and a new *live (free with settings_free). Returns 0 or EINVAL/ENOMEM
 * with err naming the bad option. */
int settings_resolve(const struct settings_opts *cmd, const struct settings_opts *file,
                     struct fs_config *fixed, struct fs_settings **live, err_t *err);
void settings_free(struct fs_settings *s);
void settings_opts_clear(struct settings_opts *o);
void fs_config_clear(struct fs_config *c);

/* Publishes live as l's current settings; the old ones stay valid (readers may hold them)
 * and are freed with the mount, by settings_retire_all, which frees every one of them. */
void settings_publish(struct live *l, struct fs_settings *live);
void settings_retire_all(struct live *l);

/* SIGHUP: rereads the config file (when there is one), publishes the new settings and drops
 * the listing cache. Settings that only a remount can change are reported, not applied; a bad
 * file is reported and the running settings are kept. cmd must outlive the watcher. */
int settings_watch_start(struct fs *fs, const struct settings_opts *cmd, const char *path);
void settings_watch_stop(void);

#endif
