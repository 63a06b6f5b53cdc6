/* magnet.c — magnet URIs from a loaded torrent. */
#include "s3torrent/magnet.h"
#include "s3torrent/uri.h"
#include "s3torrent/util.h"

#include <string.h>

char *magnet_make(const uint8_t *ih1, const uint8_t *ih2, const char *name,
                  const char *const *trackers, size_t ntrackers, const char *const *webseeds,
                  size_t nwebseeds)
{
    struct buf b;
    char hex[65];
    const char *sep = "?";
    buf_init(&b, 1u << 20);
    buf_printf(&b, "magnet:");
    if (ih1) {
        buf_printf(&b, "%sxt=urn:btih:%s", sep, util_hex(ih1, 20, hex));
        sep = "&";
    }
    if (ih2) {
        buf_printf(&b, "%sxt=urn:btmh:1220%s", sep, util_hex(ih2, 32, hex));
        sep = "&";
    }
    buf_printf(&b, "&dn=");
    uri_encode(&b, name, strlen(name), false);
    for (size_t i = 0; i < ntrackers; i++) {
        buf_printf(&b, "&tr=");
        uri_encode(&b, trackers[i], strlen(trackers[i]), false);
    }
    for (size_t i = 0; i < nwebseeds; i++) {
        buf_printf(&b, "&ws=");
        uri_encode(&b, webseeds[i], strlen(webseeds[i]), false);
    }
    buf_put(&b, "", 1);
    if (b.err) {
        buf_free(&b);
        return NULL;
    }
    return (char *)buf_steal(&b, NULL);
}

char *magnet_from_metainfo(const struct metainfo *m)
{
    return magnet_make(m->v1 ? m->ih1 : NULL, m->v2 ? m->ih2 : NULL, m->name,
                       (const char *const *)m->trackers, m->ntrackers,
                       (const char *const *)m->webseeds, m->nwebseeds);
}

char *magnet_v1_from_metainfo(const struct metainfo *m)
{
    if (!m->v1)
        return NULL;
    return magnet_make(m->ih1, NULL, m->name, (const char *const *)m->trackers, m->ntrackers,
                       (const char *const *)m->webseeds, m->nwebseeds);
}
