/* magnet.c — magnet URIs from a loaded torrent. */
#include "s3torrent/magnet.h"
#include "s3torrent/uri.h"
#include "s3torrent/util.h"

#include <string.h>

char *magnet_from_metainfo(const struct metainfo *m)
{
    struct buf b;
    char hex[65];
    const char *sep = "?";
    buf_init(&b, 1u << 20);
    buf_printf(&b, "magnet:");
    if (m->v1) {
        buf_printf(&b, "%sxt=urn:btih:%s", sep, util_hex(m->ih1, 20, hex));
        sep = "&";
    }
    if (m->v2) {
        buf_printf(&b, "%sxt=urn:btmh:1220%s", sep, util_hex(m->ih2, 32, hex));
        sep = "&";
    }
    buf_printf(&b, "&dn=");
    uri_encode(&b, m->name, strlen(m->name), false);
    for (size_t i = 0; i < m->ntrackers; i++) {
        buf_printf(&b, "&tr=");
        uri_encode(&b, m->trackers[i], strlen(m->trackers[i]), false);
    }
    for (size_t i = 0; i < m->nwebseeds; i++) {
        buf_printf(&b, "&ws=");
        uri_encode(&b, m->webseeds[i], strlen(m->webseeds[i]), false);
    }
    buf_put(&b, "", 1);
    if (b.err) {
        buf_free(&b);
        return NULL;
    }
    return (char *)buf_steal(&b, NULL);
}
