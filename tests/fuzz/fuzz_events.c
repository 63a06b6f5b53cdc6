/* fuzz_events.c — libFuzzer target for Lambda invocation payloads (json-c underneath): any input
 * is either work items with valid fields or one one-line reason, and every response builds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct events_batch b;
    err_t err = {0};
    if (events_parse(data, size, &b, &err) != 0) {
        if (b.n != 0 || b.items != NULL || err.msg[0] == '\0' || strchr(err.msg, '\n') != NULL)
            abort();
        return 0;
    }
    struct events_outcome *outs = calloc(b.n ? b.n : 1, sizeof(*outs));
    if (outs == NULL)
        abort();
    for (size_t i = 0; i < b.n; i++) {
        const struct events_item *it = &b.items[i];
        if (it->error == NULL &&
            (it->bucket == NULL || it->key == NULL || it->key[0] == '\0' ||
             strlen(it->key) > EVENTS_MAX_KEY || strchr(it->bucket, '/') != NULL))
            abort();
        if (it->error != NULL && (it->id == NULL || strchr(it->error, '\n') != NULL))
            abort();
        if ((b.kind == EVENTS_SQS || b.kind == EVENTS_BATCH) && it->id == NULL)
            abort();
        outs[i] = (struct events_outcome){(enum events_outcome_code)(i % 5), "failed", "", "x"};
    }
    json_object *resp = NULL;
    bool fail;
    if (events_response(&b, outs, &resp, &fail) != 0 || resp == NULL)
        abort();
    json_object_put(resp);
    free(outs);
    events_free(&b);
    return 0;
}
