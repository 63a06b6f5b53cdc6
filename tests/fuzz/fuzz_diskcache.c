/* fuzz_diskcache.c — libFuzzer target for the disk block cache's file parser
 * (lib/store/diskcache.c): any bytes are refused or parsed into an identity and data that lie
 * inside the input and match its checksum; a file made from the parsed parts parses the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diskcache_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *ident, *body;
    size_t ni, nd;
    if (diskcache_file_parse(data, size, &ident, &ni, &body, &nd) != 0)
        return 0;
    if (ident < data || body < ident || body + nd != data + size || ni > DISKCACHE_IDENT_MAX ||
        nd > DISKCACHE_DATA_MAX)
        abort();
    uint8_t head[DISKCACHE_HEADER];
    diskcache_header_make(ident, ni, body, nd, head);
    if (memcmp(head, data, DISKCACHE_HEADER) != 0)
        abort();
    return 0;
}
