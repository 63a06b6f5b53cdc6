/* fuzz_seedc.c — libFuzzer target for the answers of the seed clients beside Transmission's:
 * qBittorrent's torrents/info list and deluge-web's JSON-RPC answers (json-c underneath). Any
 * input parses or gives a one-line reason; what parses holds a well-formed id and name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/deluge.h"
#include "s3torrent/qbt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(const err_t *err)
{
    if (err->msg[0] == '\0' || strchr(err->msg, '\n') != NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char hash[] = "0123456789abcdef0123456789abcdef01234567";
    struct qbt_torrent t;
    json_object *doc, *result;
    err_t err = {0};
    bool found;
    if (qbt_parse_info(data, size, 0, hash, &found, &t, &err) != 0)
        one_line(&err);
    else if (found &&
             (strcmp(t.hash, hash) != 0 || strchr(t.name, '\n') || strchr(t.save_path, '\n')))
        abort();
    memset(&err, 0, sizeof(err));
    if (deluge_parse_response(data, size, 0, 7, &doc, &result, &err) != 0) {
        one_line(&err);
        return 0;
    }
    if (doc == NULL)
        abort();
    json_object_put(doc);
    return 0;
}
