/* feed.h — the feeds of `s3torrent serve` (docs/DESIGN.md §14): the objects of a prefix, as
 * a listing gives them, in; an RSS 2.0 feed of the newest torrents, or a JSON manifest of every
 * object's info-hashes, out. Which objects a feed shows, their order and bound, and the text
 * are here and pure; the server fills in each item's torrent (info-hashes, size) between
 * feed_done and the rendering.
 *
 * A feed shows an object when the server can serve its torrent: more than zero bytes, a key
 * not ending in ".torrent", valid UTF-8 with no control byte, no empty, "." or ".." segment,
 * and a last segment a torrent can be named after. */
#ifndef S3TORRENT_SERVE_FEED_H
#define S3TORRENT_SERVE_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3torrent/buf.h"
#include "s3torrent/store.h"

#define FEED_ITEMS_MAX 10000 /* objects in one manifest (and the most --feed-items allows) */

struct feed_item {
    char *key;
    struct store_object obj;
    /* the torrent, filled by the server: have false when none could be made in time */
    bool have, v1, v2;
    uint8_t ih1[20], ih2[32];
    uint64_t torrent_size;
};

struct feed {
    const char *bucket, *prefix;
    size_t max;  /* items kept */
    bool newest; /* the newest max (RSS: newest first); else the first max in key order */
    struct feed_item *items;
    size_t n;
    bool truncated;   /* more objects than max were shown */
    uint64_t skipped; /* objects no feed shows (see above) */
};

/* An empty feed of bucket/prefix keeping at most max (1 to FEED_ITEMS_MAX) items. */
void feed_init(struct feed *f, const char *bucket, const char *prefix, size_t max, bool newest);

/* True when a feed shows the object at key of size bytes. */
bool feed_shows(const char *key, uint64_t size);

/* Takes one listed object. Returns 0 or ENOMEM. */
int feed_add(struct feed *f, const char *key, const struct store_object *obj);

/* Puts the items in their order: newest first (by Last-Modified, then key), or key order. */
void feed_done(struct feed *f);

/* Appends the RSS 2.0 feed (items whose torrent is known) to out; base is the server's public
 * URL (no trailing '/'). Returns 0 or ENOMEM. */
int feed_rss(const struct feed *f, const char *base, int64_t now, struct buf *out);

/* Appends the JSON manifest (every item; info-hashes null when not known) to out. */
int feed_manifest(const struct feed *f, const char *base, int64_t now, struct buf *out);

void feed_free(struct feed *f);

#endif
