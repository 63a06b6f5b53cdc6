/* maker_set.c — the multi-file torrent of a set of files (a directory's, or the objects below a
 * prefix): what `create DIR`, `create s3://BUCKET/PREFIX/` and sync's prefix torrents share, so
 * that they make the same bytes (docs/DESIGN.md §3). */
#include "s3torrent/maker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The options of the set's torrent: the recipe's, dated with the newest file, with a directory
 * web seed (BASE plus ws_key's parent for a prefix, BASE/ for a directory, since clients append
 * NAME/PATH). *ws is the web seed the options point at (the caller frees it). */
static int set_opts(const struct source_dir *dir, const char *name, const struct torrent_recipe *r,
                    const char *ws_key, struct torrent_opts *to, char **ws, err_t *err)
{
    if (torrent_recipe_set_opts(r, name, ws_key, dir->mtime, to, ws) != 0)
        return err_set(err, ENOMEM, "out of memory");
    to->span = dir->span;
    to->parallel = dir->parallel;
    return 0;
}

int maker_set_outer(const struct source_dir *dir, const char *name, const struct torrent_recipe *r,
                    const char *ws_key, char out[TORRENT_OUTER_HEX], err_t *err)
{
    struct torrent_opts to;
    char *ws = NULL;
    int rc = set_opts(dir, name, r, ws_key, &to, &ws, err);
    if (rc == 0 && torrent_outer_digest(&to, out) != 0)
        rc = err_set(err, ENOMEM, "out of memory");
    free(ws);
    return rc;
}

int maker_make_set(const struct maker_set *s, struct source_dir *dir, const char *name,
                   const struct torrent_recipe *r, struct buf *out, uint8_t ih1[20],
                   uint8_t ih2[32], err_t *err)
{
    struct torrent_opts to;
    char *ws = NULL;
    int rc;
    err_t e = {0};
    if ((rc = torrent_check_name(name, &e))) {
        err_set(err, rc, "%s: %s", dir->display, e.msg);
        goto out;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < dir->n; i++)
        total += dir->parts[i].size;
    if (total == 0) {
        rc = err_set(err, ENODATA, "%s: %s, nothing to share", dir->display,
                     dir->n ? "only empty files" : "no files");
        goto out;
    }
    if ((rc = set_opts(dir, name, r, s->ws_key, &to, &ws, err)))
        goto out;
    to.pad = s->pad;
    to.threads = s->threads;
    to.progress = s->progress;
    to.progress_arg = s->progress_arg;
    if (s->files != NULL && s->bucket != NULL) { /* objects: cached whole, as serve does */
        struct maker_result res;
        if ((rc = maker_make_prefix(s->files->mk, s->bucket, s->prefix, name, dir, &to, out, &res,
                                    err)) == 0) {
            if (ih1)
                memcpy(ih1, res.ih1, 20);
            if (ih2)
                memcpy(ih2, res.ih2, 32);
        }
        goto out;
    }
    if (s->files != NULL)
        maker_files_hooks(s->files, &to);
    if ((rc = torrent_files_order(dir->parts, dir->n, to.meta, s->pad, &e))) {
        err_set(err, rc, "%s/%s", dir->display, e.msg); /* the file's path below it */
        goto out;
    }
    rc = torrent_create_files(name, dir->parts, dir->n, &to, out, ih1, ih2, err);
out:
    free(ws);
    return rc;
}
