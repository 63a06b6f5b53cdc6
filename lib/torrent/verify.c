/* verify.c — piece-by-piece verification of a single-file torrent against a byte source. */
#include "s3torrent/verify.h"
#include "s3torrent/hasher.h"

#include <errno.h>
#include <string.h>

int verify_source(const struct metainfo *m, struct source *src, const struct verify_opts *opts,
                  uint64_t *bad_piece, err_t *err)
{
    struct hasher_result h;
    int rc;
    *bad_piece = VERIFY_NO_PIECE;
    if (m->multi)
        return err_set(err, ENOTSUP, "multi-file torrents cannot be verified yet");
    if (m->total_size != src->size)
        return err_set(
            err, EBADMSG, "%s: size differs: the torrent says %llu bytes, the data has %llu",
            src->display, (unsigned long long)m->total_size, (unsigned long long)src->size);
    struct hasher_opts ho = {
        .piece_length = m->piece_length,
        .v1 = m->v1,
        .v2 = m->v2,
        .threads = opts->threads,
        .progress = opts->progress,
        .progress_arg = opts->progress_arg,
    };
    if ((rc = hasher_run(src, &ho, &h, err)))
        return rc;
    uint64_t first = VERIFY_NO_PIECE;
    bool root_bad = false;
    const struct metainfo_file *f = &m->files[0];
    for (uint64_t i = 0; m->v1 && i < h.npieces; i++)
        if (memcmp(h.v1_pieces + 20 * i, m->pieces + 20 * i, 20) != 0) {
            first = i;
            break;
        }
    if (m->v2) {
        if (f->layer != NULL) {
            for (uint64_t i = 0; i < h.npieces && i < first; i++)
                if (memcmp(h.v2_layer + 32 * i, f->layer + 32 * i, 32) != 0) {
                    first = i;
                    break;
                }
        } else if (h.npieces == 1 && memcmp(h.v2_root, f->root, 32) != 0) {
            first = 0;
        }
        root_bad = memcmp(h.v2_root, f->root, 32) != 0;
    }
    hasher_result_free(&h);
    if (first != VERIFY_NO_PIECE) {
        *bad_piece = first;
        return err_set(err, EBADMSG, "%s: piece %llu of %llu does not match the torrent",
                       src->display, (unsigned long long)first, (unsigned long long)m->npieces);
    }
    if (root_bad)
        return err_set(err, EBADMSG, "%s: pieces root does not match the torrent", src->display);
    return 0;
}
