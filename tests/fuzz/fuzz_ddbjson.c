/* fuzz_ddbjson.c — libFuzzer target for DynamoDB answers and error bodies (json-c underneath):
 * any input is a JSON object or a one-line reason, and error fields stay one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/aws.h"
#include "s3torrent/ddb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *doc = NULL;
    err_t err = {0};
    if (ddb_parse_body(data, size, &doc, &err) != 0) {
        if (doc != NULL || err.msg[0] == '\0' || strchr(err.msg, '\n') != NULL)
            abort();
    } else {
        if (!json_object_is_type(doc, json_type_object))
            abort();
        /* what status_get does with an item */
        json_object *item = NULL;
        if (json_object_object_get_ex(doc, "Item", &item)) {
            int64_t v;
            (void)ddb_item_s(item, "status");
            (void)ddb_item_i64(item, "size", &v);
        }
        json_object_put(doc);
    }
    struct ddb_error de;
    memset(&de, 0xff, sizeof(de));
    if (ddb_parse_error(data, size, &de, &err) == 0) {
        if (memchr(de.code, '\0', sizeof(de.code)) == NULL ||
            memchr(de.message, '\0', sizeof(de.message)) == NULL ||
            strpbrk(de.code, "\r\n#") != NULL || strpbrk(de.message, "\r\n") != NULL)
            abort();
        bool retry;
        (void)aws_error_errno(400, de.code, &retry);
    }
    return 0;
}
