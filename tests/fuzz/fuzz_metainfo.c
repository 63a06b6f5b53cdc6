/* fuzz_metainfo.c — libFuzzer target for the torrent loader behind `show`, `magnet` and
 * `verify` (and the hashes a re-upload reuses), single- and multi-file (seeds in seeds/metainfo/):
 * any input is a torrent or a one-line reason, never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/magnet.h"
#include "s3torrent/metainfo.h"
#include "s3torrent/torrent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct metainfo *m;
    err_t err = {0};
    if (metainfo_parse(data, size, &m, &err) != 0) {
        if (err.msg[0] == '\0' || strchr(err.msg, '\n') != NULL)
            abort();
        return 0;
    }
    char *u = magnet_from_metainfo(m);
    free(u);
    /* a multi-file torrent's size is its files' bytes, pads left out */
    uint64_t sum = 0;
    for (size_t i = 0; i < m->nfiles; i++)
        sum += m->files[i].pad ? 0 : m->files[i].length;
    if (sum != m->total_size || m->nfiles == 0)
        abort();
    /* what a re-upload reuses (lib/service/sync.c): the hashes of a single-file torrent lay out a
     * torrent of the size torrent_size predicts */
    struct hasher_result h;
    if (metainfo_hashes(m, &h, &err) == 0) {
        enum torrent_meta meta = (m->v1 ? TORRENT_V1 : 0) | (m->v2 ? TORRENT_V2 : 0);
        struct torrent_opts o = {.meta = meta, .piece_length = m->piece_length, .no_date = true};
        struct buf b;
        buf_init(&b, TORRENT_MAX_SIZE);
        if (torrent_encode_hashed("x", &o, &h, &b, NULL, NULL, &err) == 0 &&
            b.len != torrent_size("x", h.size, &o))
            abort();
        buf_free(&b);
        hasher_result_free(&h);
    }
    metainfo_free(m);
    return 0;
}
