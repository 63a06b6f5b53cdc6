/* verify.c — piece-by-piece verification of a torrent against a byte source, or against one
 * source per file of a multi-file torrent. */
#include "s3torrent/verify.h"
#include "s3torrent/hasher.h"

#include <errno.h>
#include <stdio.h>
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

/* v1: the files end to end (pads as zeros), piece by piece; a bad piece names the files it
 * spans. */
static int verify_v1_files(const struct metainfo *m, const struct source_part *parts,
                           const struct hasher_opts *ho, size_t *bad_file, uint64_t *bad_piece,
                           err_t *err)
{
    struct source *src = NULL;
    struct hasher_result h;
    int rc;
    if ((rc = source_concat_open(m->name, m->name, parts, m->nfiles, &src, err)) ||
        (rc = hasher_run(src, ho, &h, err))) {
        source_free(src);
        return rc;
    }
    source_free(src);
    uint64_t bad = VERIFY_NO_PIECE;
    for (uint64_t i = 0; i < h.npieces; i++)
        if (memcmp(h.v1_pieces + 20 * i, m->pieces + 20 * i, 20) != 0) {
            bad = i;
            break;
        }
    hasher_result_free(&h);
    if (bad == VERIFY_NO_PIECE)
        return 0;
    /* the files with bytes in [bad * plen, (bad + 1) * plen) */
    uint64_t lo = bad * m->piece_length, hi = lo + m->piece_length, off = 0;
    char names[400] = "";
    size_t used = 0, count = 0;
    *bad_file = SIZE_MAX;
    for (size_t i = 0; i < m->nfiles; off += m->files[i++].length) {
        const struct metainfo_file *f = &m->files[i];
        if (f->pad || f->length == 0 || off + f->length <= lo || off >= hi)
            continue;
        if (*bad_file == SIZE_MAX)
            *bad_file = i;
        if (count++ < 3 && used < sizeof(names))
            used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
                                     count > 1 ? ", " : "", parts[i].path);
    }
    if (count > 3 && used < sizeof(names))
        snprintf(names + used, sizeof(names) - used, " and %zu more", count - 3);
    *bad_piece = bad;
    return err_set(err, EBADMSG, "%s: piece %llu of %llu does not match the torrent", names,
                   (unsigned long long)bad, (unsigned long long)m->npieces);
}

int verify_files(const struct metainfo *m, const struct source_part *parts,
                 const struct verify_opts *opts, size_t *bad_file, uint64_t *bad_piece, err_t *err)
{
    struct hasher_opts ho = {
        .piece_length = m->piece_length,
        .v1 = !m->v2,
        .v2 = m->v2,
        .threads = opts->threads,
        .progress = opts->progress,
        .progress_arg = opts->progress_arg,
    };
    int rc = 0;
    *bad_file = SIZE_MAX;
    *bad_piece = VERIFY_NO_PIECE;
    for (size_t i = 0; i < m->nfiles; i++)
        if (!m->files[i].pad && parts[i].size != m->files[i].length)
            return err_set(err, EINVAL, "%s: not the size the torrent gives", parts[i].path);
    if (!m->v2)
        return verify_v1_files(m, parts, &ho, bad_file, bad_piece, err);
    /* v2 and hybrid: each file against its own hashes (v2, the stronger) */
    for (size_t i = 0; i < m->nfiles && rc == 0; i++) {
        const struct metainfo_file *f = &m->files[i];
        struct source *src = NULL;
        struct hasher_result h;
        if (f->pad || f->length == 0)
            continue;
        if ((rc = parts[i].open(parts[i].arg, &src, err)) == 0 && src->size != f->length)
            rc =
                err_set(err, EBADMSG,
                        "%s: size differs: the torrent says %llu bytes, the data "
                        "has %llu",
                        src->display, (unsigned long long)f->length, (unsigned long long)src->size);
        if (rc == 0)
            rc = hasher_run(src, &ho, &h, err);
        source_free(src);
        if (rc)
            break;
        uint64_t bad = VERIFY_NO_PIECE;
        for (uint64_t k = 0; f->layer != NULL && k < h.npieces; k++)
            if (memcmp(h.v2_layer + 32 * k, f->layer + 32 * k, 32) != 0) {
                bad = k;
                break;
            }
        if (bad == VERIFY_NO_PIECE && memcmp(h.v2_root, f->root, 32) != 0)
            bad = f->layer == NULL && h.npieces == 1 ? 0 : VERIFY_NO_PIECE;
        bool root_bad = memcmp(h.v2_root, f->root, 32) != 0;
        uint64_t np = h.npieces;
        hasher_result_free(&h);
        if (bad != VERIFY_NO_PIECE) {
            *bad_file = i;
            *bad_piece = bad;
            rc = err_set(err, EBADMSG, "%s: piece %llu of %llu does not match the torrent",
                         parts[i].path, (unsigned long long)bad, (unsigned long long)np);
        } else if (root_bad) {
            *bad_file = i;
            rc = err_set(err, EBADMSG, "%s: pieces root does not match the torrent", parts[i].path);
        }
    }
    return rc;
}
