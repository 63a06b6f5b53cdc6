/* fuzz_fanout.c — libFuzzer target for the fan-out's messages (lambda-sync/fanout.c): an SQS
 * event whose records are run messages, and one run message alone. Whatever the input, a parsed
 * run lies inside its object (whole pieces, the last run taking the rest) and writes back to a
 * message that parses to the same run; a refusal is one line. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fanout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_run(const struct fanout_run *r)
{
    uint64_t npieces = (r->size + r->piece_length - 1) / r->piece_length;
    if (r->runs < 2 || r->run >= r->runs || r->run_pieces < 2 ||
        r->run_pieces > FANOUT_MAX_RUN_PIECES || npieces / r->run_pieces != r->runs ||
        r->bucket[0] == '\0' || r->key[0] == '\0' || r->etag[0] == '\0')
        abort();
    char *json = NULL;
    struct fanout_run back;
    err_t err = {0};
    if (fanout_run_json(r, &json) != 0 || fanout_parse_run(json, strlen(json), &back, &err) != 0 ||
        memcmp(&back, r, sizeof(back)) != 0)
        abort();
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fanout_batch b;
    struct fanout_run r;
    err_t err = {0};
    int rc = fanout_parse_event(data, size, &b, &err);
    if (rc == 0) {
        if (b.n == 0)
            abort();
        for (size_t i = 0; i < b.n; i++)
            check_run(&b.runs[i]);
        fanout_batch_free(&b);
    } else if (rc != ENOENT && (err.msg[0] == '\0' || strchr(err.msg, '\n'))) {
        abort();
    }
    memset(&err, 0, sizeof(err));
    rc = fanout_parse_run(data, size, &r, &err);
    if (rc == 0)
        check_run(&r);
    else if (rc != ENOENT && (err.msg[0] == '\0' || strchr(err.msg, '\n')))
        abort();
    return 0;
}
