/* fuzz_trpc.c — libFuzzer target for Transmission RPC answers (json-c underneath): any input is
 * an answer with a result string, or a one-line reason; torrent objects in it parse or fail. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/trpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *doc, *args, *list, *o;
    const char *result;
    err_t err = {0};
    if (trpc_parse_response(data, size, 0, &doc, &result, &args, &err) != 0) {
        if (err.msg[0] == '\0' || strchr(err.msg, '\n') != NULL)
            abort();
        return 0;
    }
    if (result == NULL)
        abort();
    struct trpc_torrent t;
    if (args && json_object_object_get_ex(args, "torrents", &list) &&
        json_object_is_type(list, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(list); i++)
            if (trpc_torrent_from_json(json_object_array_get_idx(list, i), &t, &err) == 0 &&
                (strlen(t.hash) != 40 || strchr(t.name, '\n') || strchr(t.download_dir, '\n')))
                abort();
    }
    if (args && (json_object_object_get_ex(args, "torrent-added", &o) ||
                 json_object_object_get_ex(args, "torrent-duplicate", &o)))
        if (trpc_torrent_from_json(o, &t, &err) == 0 && strlen(t.hash) != 40)
            abort();
    json_object_put(doc);
    return 0;
}
