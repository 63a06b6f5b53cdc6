/* fuzz_ddbjson.c — libFuzzer target for DynamoDB answers and error bodies (json-c underneath):
 * any input is a JSON object or a one-line reason, and error fields stay one line; a prefix
 * item's files map is walked as sync does. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/aws.h"
#include "s3torrent/ddb.h"
#include "s3torrent/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* what sync's prefix torrents take from a prefix's item: strings, one line of error */
static int each_file(void *arg, const char *rel, const char *etag)
{
    *(size_t *)arg += strlen(rel) + strlen(etag);
    return 0;
}

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
            size_t n = 0;
            int rc = status_item_files(item, "s3://b/p/", each_file, &n, &err);
            if (rc != 0 && rc != ENOENT && (err.msg[0] == '\0' || strchr(err.msg, '\n')))
                abort();
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
