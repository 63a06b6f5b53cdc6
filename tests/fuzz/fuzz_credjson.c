/* fuzz_credjson.c — libFuzzer target for the JSON credential documents of the ECS and IMDS
 * endpoints (json-c underneath): any input is credentials or a one-line reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/cred.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int want_code = 0; want_code < 2; want_code++) {
        struct cred c;
        err_t err = {0};
        memset(&c, 0, sizeof(c));
        if (cred_parse_document("fuzz", data, size, want_code, &c, &err) != 0) {
            if (err.msg[0] == '\0' || strchr(err.msg, '\n') != NULL)
                abort();
        } else if (c.access_key[0] == '\0' || c.secret_key[0] == '\0') {
            abort();
        }
        cred_wipe(&c);
    }
    return 0;
}
