/* fuzz_bencode.c — libFuzzer target for the strict bencode decoder: any input must decode or
 * be rejected with a reason, never crash or leak; accepted input must re-walk consistently. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/bencode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bencode_doc doc;
    err_t err = {0};
    struct bencode_limits lim = {100, 100000};
    if (bencode_decode(data, size, &lim, &doc, &err) != 0) {
        if (err.msg[0] == '\0')
            abort();
        return 0;
    }
    /* the root spans the whole input and every node lies inside its parent */
    if (doc.nodes[0].start != 0 || doc.nodes[0].end != size)
        abort();
    for (size_t i = 0; i < doc.count; i++) {
        const struct bencode_node *n = &doc.nodes[i];
        if (n->end > size || n->start >= n->end || n->next <= i || n->next > doc.count)
            abort();
    }
    bencode_doc_free(&doc);
    return 0;
}
