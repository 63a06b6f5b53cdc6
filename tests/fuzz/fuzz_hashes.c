/* fuzz_hashes.c — libFuzzer target for the torrent cache's entries (hasher_result_unpack): a
 * damaged or hostile blob is refused with a reason, never a crash; an accepted one lays out a
 * torrent of exactly the size torrent_size predicts for its numbers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/hasher.h"
#include "s3torrent/torrent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hasher_result h;
    err_t err = {0};
    if (hasher_result_unpack(data, size, &h, &err) != 0) {
        if (err.msg[0] == '\0')
            abort();
        return 0;
    }
    enum torrent_meta meta = (h.v1_pieces ? TORRENT_V1 : 0) | (h.v2_layer ? TORRENT_V2 : 0);
    struct torrent_opts o = {.meta = meta, .piece_length = h.piece_length, .no_date = true};
    struct buf b;
    buf_init(&b, TORRENT_MAX_SIZE);
    uint64_t want = torrent_size("x", h.size, &o);
    int rc = torrent_encode_hashed("x", &o, &h, &b, NULL, NULL, &err);
    if (rc == 0 && b.len != want)
        abort();
    struct buf packed;
    buf_init(&packed, TORRENT_MAX_SIZE);
    if (hasher_result_pack(&h, &packed) == 0 &&
        (packed.len != size || memcmp(packed.data, data, size) != 0))
        abort(); /* what is accepted packs back to the same bytes */
    buf_free(&packed);
    buf_free(&b);
    hasher_result_free(&h);
    return 0;
}
