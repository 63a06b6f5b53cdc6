/* torrents.h — the synthetic k.torrent files of the mount: served from the sqlite cache, or
 * generated once (all readers of an uncached torrent share one generation) by hashing k
 * streamed from S3; optionally warmed in the background for listed objects. */
#ifndef S3TORRENTFS_TORRENTS_H
#define S3TORRENTFS_TORRENTS_H

#include "fs.h"
#include "meta.h"
#include "s3torrent/buf.h"
#include "s3torrent/maker.h"

/* Returns the torrent service, or NULL when it cannot start. */
struct tgen *tgen_new(struct fs *fs);
void tgen_free(struct tgen *t);

/* Appends the torrent of the TORRENT entry e to out: from the cache, or generated now.
 * Returns 0, or a positive errno with err set (the torrent is never served when its size
 * differs from e->size, the size stat reported). */
int tgen_get(struct tgen *t, const struct meta_entry *e, struct buf *out, err_t *err);

/* Queues background generation of e's torrent when it is not cached (bounded queue; a full
 * queue drops the request). */
void tgen_prefetch(struct tgen *t, const struct meta_entry *e);

#endif
