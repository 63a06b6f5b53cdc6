/* magnet.c — magnet URIs from a loaded torrent. */
#include "s3torrent/magnet.h"

#include <string.h>

int magnet_query_escape(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            buf_put(b, p, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_put(b, e, 3);
        }
    }
    return b->err;
}

char *magnet_from_metainfo(const struct metainfo *m)
{
    struct buf b;
    char hex[65];
    const char *sep = "?";
    buf_init(&b, 1u << 20);
    buf_printf(&b, "magnet:");
    if (m->v1) {
        buf_printf(&b, "%sxt=urn:btih:%s", sep, metainfo_hex(m->ih1, 20, hex));
        sep = "&";
    }
    if (m->v2) {
        buf_printf(&b, "%sxt=urn:btmh:1220%s", sep, metainfo_hex(m->ih2, 32, hex));
        sep = "&";
    }
    buf_printf(&b, "&dn=");
    magnet_query_escape(&b, m->name);
    for (size_t i = 0; i < m->ntrackers; i++) {
        buf_printf(&b, "&tr=");
        magnet_query_escape(&b, m->trackers[i]);
    }
    for (size_t i = 0; i < m->nwebseeds; i++) {
        buf_printf(&b, "&ws=");
        magnet_query_escape(&b, m->webseeds[i]);
    }
    buf_put(&b, "", 1);
    if (b.err) {
        buf_free(&b);
        return NULL;
    }
    return (char *)buf_steal(&b, NULL);
}
