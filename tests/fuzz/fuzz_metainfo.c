/* fuzz_metainfo.c — libFuzzer target for the torrent loader behind `show`, `magnet` and
 * `verify`: any input is a torrent or a one-line reason, never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/magnet.h"
#include "s3torrent/metainfo.h"

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
    metainfo_free(m);
    return 0;
}
