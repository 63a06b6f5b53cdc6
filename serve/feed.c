/* feed.c — RSS and manifest feeds (feed.h). */
#include "feed.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3torrent/err.h"
#include "s3torrent/magnet.h"
#include "s3torrent/torrent.h"
#include "s3torrent/uri.h"
#include "s3torrent/util.h"

void feed_init(struct feed *f, const char *bucket, const char *prefix, size_t max, bool newest)
{
    memset(f, 0, sizeof(*f));
    f->bucket = bucket;
    f->prefix = prefix;
    f->max = max < 1 ? 1 : max > FEED_ITEMS_MAX ? FEED_ITEMS_MAX : max;
    f->newest = newest;
}

bool feed_shows(const char *key, uint64_t size)
{
    size_t n = strlen(key);
    if (size == 0 || n == 0 || (n >= 8 && strcmp(key + n - 8, ".torrent") == 0))
        return false;
    for (size_t i = 0; i < n;) {
        size_t l = util_utf8_len((const unsigned char *)key + i, n - i);
        if (l == 0 || util_is_ctl((unsigned char)key[i]))
            return false;
        i += l;
    }
    const char *seg = key;
    for (;;) { /* no empty, "." or ".." segment (the server could not route it) */
        size_t l = strcspn(seg, "/");
        if (l == 0 || (l == 1 && seg[0] == '.') || (l == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        if (seg[l] == '\0')
            return torrent_check_name(seg, NULL) == 0; /* the last one names the torrent */
        seg += l + 1;
    }
}

/* Order of the RSS feed: newer first, then by key. */
static int newer_first(const struct feed_item *a, const struct feed_item *b)
{
    if (a->obj.mtime != b->obj.mtime)
        return a->obj.mtime > b->obj.mtime ? -1 : 1;
    return strcmp(a->key, b->key);
}

static int cmp_newest(const void *a, const void *b)
{
    return newer_first(a, b);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(((const struct feed_item *)a)->key, ((const struct feed_item *)b)->key);
}

/* The newest-max items are kept in a heap whose root is the oldest of them. */
static void sift_down(struct feed_item *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && newer_first(&h[l], &h[m]) > 0)
            m = l;
        if (r < n && newer_first(&h[r], &h[m]) > 0)
            m = r;
        if (m == i)
            return;
        struct feed_item t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(struct feed_item *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (newer_first(&h[i], &h[p]) <= 0)
            return;
        struct feed_item t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

int feed_add(struct feed *f, const char *key, const struct store_object *obj)
{
    if (!feed_shows(key, obj->size)) {
        f->skipped++;
        return 0;
    }
    struct feed_item it = {.obj = *obj};
    if (f->n == f->max) {
        f->truncated = true;
        if (!f->newest)
            return 0; /* the first max in key order are kept */
        it.key = (char *)key;
        if (newer_first(&it, &f->items[0]) >= 0)
            return 0; /* not newer than the oldest kept */
        char *k = strdup(key);
        if (k == NULL)
            return ENOMEM;
        free(f->items[0].key);
        it.key = k;
        f->items[0] = it;
        sift_down(f->items, f->n, 0);
        return 0;
    }
    if (f->items == NULL && (f->items = calloc(f->max, sizeof(*f->items))) == NULL)
        return ENOMEM;
    if ((it.key = strdup(key)) == NULL)
        return ENOMEM;
    f->items[f->n++] = it;
    if (f->newest)
        sift_up(f->items, f->n - 1);
    return 0;
}

void feed_done(struct feed *f)
{
    if (f->n > 1)
        qsort(f->items, f->n, sizeof(*f->items), f->newest ? cmp_newest : cmp_key);
}

void feed_free(struct feed *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->items[i].key);
    free(f->items);
    f->items = NULL;
    f->n = 0;
}

/* s with &, <, >, " and ' escaped for XML text and attributes (the feed shows no control
 * byte and only valid UTF-8). */
static void xml_put(struct buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            buf_printf(b, "&amp;");
            break;
        case '<':
            buf_printf(b, "&lt;");
            break;
        case '>':
            buf_printf(b, "&gt;");
            break;
        case '"':
            buf_printf(b, "&quot;");
            break;
        case '\'':
            buf_printf(b, "&apos;");
            break;
        default:
            buf_put(b, s, 1);
        }
    }
}

/* The URL of the item's torrent: base/BUCKET/KEY?torrent, the key encoded per segment. */
static void torrent_url(struct buf *b, const char *base, const char *bucket, const char *key)
{
    buf_printf(b, "%s/", base);
    uri_encode(b, bucket, strlen(bucket), false);
    buf_put(b, "/", 1);
    uri_encode(b, key, strlen(key), true);
    buf_printf(b, "?torrent");
}

/* Appends URL-ish text as XML. */
static void xml_url(struct buf *b, const char *base, const char *bucket, const char *key)
{
    struct buf u;
    buf_init(&u, 16384);
    torrent_url(&u, base, bucket, key);
    buf_put(&u, "", 1);
    if (u.err)
        b->err = u.err;
    else
        xml_put(b, (const char *)u.data);
    buf_free(&u);
}

static const char *last_segment(const char *key)
{
    const char *s = strrchr(key, '/');
    return s ? s + 1 : key;
}

static char *item_magnet(const struct feed_item *it)
{
    return magnet_make(it->v1 ? it->ih1 : NULL, it->v2 ? it->ih2 : NULL, last_segment(it->key),
                       NULL, 0, NULL, 0);
}

int feed_rss(const struct feed *f, const char *base, int64_t now, struct buf *out)
{
    char date[40], hex[65];
    buf_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<rss version=\"2.0\" xmlns:torrent=\"http://xmlns.ezrss.it/0.1/\">\n"
                    "<channel>\n<title>s3://");
    xml_put(out, f->bucket);
    buf_put(out, "/", 1);
    xml_put(out, f->prefix);
    buf_printf(out, "</title>\n<link>%s/", base);
    struct buf self;
    buf_init(&self, 16384);
    uri_encode(&self, f->bucket, strlen(f->bucket), false);
    buf_put(&self, "/", 1);
    uri_encode(&self, f->prefix, strlen(f->prefix), true);
    buf_printf(&self, "?rss");
    buf_put(&self, "", 1);
    if (self.err == 0)
        xml_put(out, (const char *)self.data);
    buf_free(&self);
    buf_printf(out, "</link>\n<description>The newest torrents of the objects under s3://");
    xml_put(out, f->bucket);
    buf_put(out, "/", 1);
    xml_put(out, f->prefix);
    buf_printf(out,
               "</description>\n<generator>s3torrent serve</generator>\n"
               "<lastBuildDate>%s</lastBuildDate>\n",
               util_http_date_format(now, date, sizeof(date)));
    for (size_t i = 0; i < f->n; i++) {
        const struct feed_item *it = &f->items[i];
        if (!it->have)
            continue;
        char *magnet = item_magnet(it);
        if (magnet == NULL)
            return ENOMEM;
        buf_printf(out, "<item>\n<title>");
        xml_put(out, it->key);
        buf_printf(out, "</title>\n<link>");
        xml_url(out, base, f->bucket, it->key);
        buf_printf(out, "</link>\n<guid isPermaLink=\"false\">%s</guid>\n",
                   it->v1 ? util_hex(it->ih1, 20, hex) : util_hex(it->ih2, 32, hex));
        buf_printf(out, "<pubDate>%s</pubDate>\n<enclosure url=\"",
                   util_http_date_format(it->obj.mtime, date, sizeof(date)));
        xml_url(out, base, f->bucket, it->key);
        buf_printf(out,
                   "\" length=\"%" PRIu64 "\" type=\"application/x-bittorrent\"/>\n"
                   "<torrent:contentLength>%" PRIu64 "</torrent:contentLength>\n"
                   "<torrent:infoHash>%s</torrent:infoHash>\n<torrent:magnetURI>",
                   it->torrent_size, it->obj.size,
                   it->v1 ? util_hex(it->ih1, 20, hex) : util_hex(it->ih2, 32, hex));
        xml_put(out, magnet);
        buf_printf(out, "</torrent:magnetURI>\n</item>\n");
        free(magnet);
    }
    buf_printf(out, "</channel>\n</rss>\n");
    return out->err;
}

/* An ISO 8601 UTC time. */
static char *iso_time(int64_t t, char *out, size_t n)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL)
        tm = (struct tm){.tm_year = 70, .tm_mday = 1};
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out;
}

static json_object *item_json(const struct feed *f, const struct feed_item *it, const char *base)
{
    char hex[65], when[32];
    struct buf u;
    json_object *o = json_object_new_object();
    if (o == NULL)
        return NULL;
    buf_init(&u, 16384);
    torrent_url(&u, base, f->bucket, it->key);
    buf_put(&u, "", 1);
    char *magnet = it->have ? item_magnet(it) : NULL;
    json_object_object_add(o, "key", json_object_new_string(it->key));
    json_object_object_add(o, "size", json_object_new_int64((int64_t)it->obj.size));
    json_object_object_add(o, "etag", json_object_new_string(it->obj.etag));
    json_object_object_add(o, "last_modified",
                           json_object_new_string(iso_time(it->obj.mtime, when, sizeof(when))));
    json_object_object_add(o, "torrent",
                           u.err ? NULL : json_object_new_string((const char *)u.data));
    json_object_object_add(o, "info_hash_v1",
                           it->have && it->v1 ? json_object_new_string(util_hex(it->ih1, 20, hex))
                                              : NULL);
    json_object_object_add(o, "info_hash_v2",
                           it->have && it->v2 ? json_object_new_string(util_hex(it->ih2, 32, hex))
                                              : NULL);
    json_object_object_add(o, "magnet", magnet ? json_object_new_string(magnet) : NULL);
    free(magnet);
    buf_free(&u);
    return o;
}

int feed_manifest(const struct feed *f, const char *base, int64_t now, struct buf *out)
{
    char when[32];
    int rc = 0;
    size_t pending = 0;
    json_object *root = json_object_new_object(), *objs = json_object_new_array();
    if (root == NULL || objs == NULL) {
        json_object_put(root);
        json_object_put(objs);
        return ENOMEM;
    }
    json_object_object_add(root, "bucket", json_object_new_string(f->bucket));
    json_object_object_add(root, "prefix", json_object_new_string(f->prefix));
    json_object_object_add(root, "generated",
                           json_object_new_string(iso_time(now, when, sizeof(when))));
    for (size_t i = 0; i < f->n && rc == 0; i++) {
        json_object *o = item_json(f, &f->items[i], base);
        if (o == NULL || json_object_array_add(objs, o) != 0) {
            json_object_put(o);
            rc = ENOMEM;
        }
        pending += !f->items[i].have;
    }
    json_object_object_add(root, "objects", objs);
    json_object_object_add(root, "pending", json_object_new_int64((int64_t)pending));
    json_object_object_add(root, "truncated", json_object_new_boolean(f->truncated));
    if (rc == 0) {
        const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
        if (s == NULL)
            rc = ENOMEM;
        else
            buf_printf(out, "%s\n", s);
    }
    json_object_put(root);
    return rc ? rc : out->err;
}
