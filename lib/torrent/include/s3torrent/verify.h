/* verify.h — checks data against a loaded torrent, piece by piece (v1 and v2, one file or many). */
#ifndef S3TORRENT_VERIFY_H
#define S3TORRENT_VERIFY_H

#include <stdint.h>

#include "s3torrent/metainfo.h"
#include "s3torrent/source.h"

#define VERIFY_NO_PIECE UINT64_MAX

struct verify_opts {
    unsigned threads; /* 0: all cores */
    void (*progress)(void *arg, uint64_t done, uint64_t total);
    void *progress_arg;
};

/* Hashes src with m's piece length and compares every piece. Returns 0 when all match,
 * EBADMSG on a mismatch (err names the first bad piece, also stored in *bad_piece, or
 * VERIFY_NO_PIECE when only the size or the pieces root differs), or another errno. */
int verify_source(const struct metainfo *m, struct source *src, const struct verify_opts *opts,
                  uint64_t *bad_piece, err_t *err);

/* Checks the files of a multi-file torrent. parts[i] reads m->files[i] (pads: open NULL, read
 * as zeros); their sizes must be m->files' lengths. v1 torrents are hashed as one stream (pieces
 * span files), v2 and hybrid ones file by file against each file's piece layer or root. Returns
 * 0 when all match, EBADMSG on the first mismatch (err names the file, or the files a v1 piece
 * spans, and the piece; *bad_file is the index of the first file holding it and *bad_piece the
 * piece: of the torrent for v1, of the file for v2), or another errno. */
int verify_files(const struct metainfo *m, const struct source_part *parts,
                 const struct verify_opts *opts, size_t *bad_file, uint64_t *bad_piece, err_t *err);

#endif
