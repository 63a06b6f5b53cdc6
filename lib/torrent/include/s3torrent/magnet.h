/* magnet.h — magnet links (BEP 9, BEP 52): btih for v1, btmh for v2, both for hybrids; and the
 * v1-only form (btih alone) for clients that refuse both or misread a hybrid's btmh. */
#ifndef S3TORRENT_MAGNET_H
#define S3TORRENT_MAGNET_H

#include "s3torrent/metainfo.h"

/* Returns a new magnet URI with xt, dn, tr and ws parameters (caller frees), or NULL when out
 * of memory. */
char *magnet_from_metainfo(const struct metainfo *m);

/* The v1-only magnet of a torrent with a v1 info-hash (v1 or hybrid): xt=urn:btih alone, so
 * rTorrent 0.9 and aria2 1.36 take a hybrid's (docs/DESIGN.md §6). Returns it (caller frees), or
 * NULL when out of memory or m has no v1 info-hash. */
char *magnet_v1_from_metainfo(const struct metainfo *m);

/* The same from its parts: ih1 (20 bytes) and ih2 (32 bytes) may each be NULL for a torrent
 * without that version. */
char *magnet_make(const uint8_t *ih1, const uint8_t *ih2, const char *name,
                  const char *const *trackers, size_t ntrackers, const char *const *webseeds,
                  size_t nwebseeds);

#endif
