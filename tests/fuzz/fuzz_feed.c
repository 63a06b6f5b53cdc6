/* fuzz_feed.c — libFuzzer target for the feeds of `s3torrent serve` (serve/feed.c;
 * docs/DESIGN.md §14): any listing gives an RSS feed that expat reads as well-formed XML and
 * a manifest that json-c reads back, with no more items than asked, in their order.
 *
 * Input: one key per line (bytes as they are, a listing may hold any); each key's size and
 * Last-Modified come from its bytes, and every other item has its torrent. */
#include <expat.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_xml(const struct buf *b)
{
    XML_Parser p = XML_ParserCreate("UTF-8");
    if (p == NULL)
        return;
    if (XML_Parse(p, (const char *)b->data, (int)b->len, 1) != XML_STATUS_OK)
        abort();
    XML_ParserFree(p);
}

static void check_json(const struct buf *b, size_t n)
{
    json_object *o = json_tokener_parse((const char *)b->data);
    json_object *objs;
    if (o == NULL || !json_object_object_get_ex(o, "objects", &objs) ||
        json_object_array_length(objs) != n)
        abort();
    json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct feed f;
    struct buf b;
    char key[1100];
    for (int newest = 0; newest < 2; newest++) {
        feed_init(&f, "media", "rec/", 4, newest);
        const uint8_t *p = data, *end = data + size;
        while (p < end) {
            const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = (size_t)((nl ? nl : end) - p);
            if (n >= sizeof(key))
                n = sizeof(key) - 1;
            memcpy(key, p, n);
            key[n] = '\0';
            struct store_object o = {.size = n % 3, .mtime = n > 0 ? p[0] * 1000 + p[n - 1] : 0};
            strcpy(o.etag, "0123456789abcdef0123456789abcdef");
            if (feed_add(&f, key, &o) != 0)
                abort();
            p = nl ? nl + 1 : end;
        }
        feed_done(&f);
        if (f.n > 4)
            abort();
        for (size_t i = 0; i + 1 < f.n; i++) {
            const struct feed_item *a = &f.items[i], *c = &f.items[i + 1];
            if (!feed_shows(a->key, a->obj.size) ||
                (newest ? a->obj.mtime < c->obj.mtime : strcmp(a->key, c->key) > 0))
                abort();
        }
        for (size_t i = 0; i < f.n; i += 2) {
            f.items[i].have = f.items[i].v1 = f.items[i].v2 = true;
            memset(f.items[i].ih1, 0x5a, 20);
            memset(f.items[i].ih2, 0xa5, 32);
        }
        buf_init(&b, 1 << 22);
        if (feed_rss(&f, "http://seed.example", 1700000000, &b) != 0)
            abort();
        check_xml(&b);
        buf_free(&b);
        buf_init(&b, 1 << 22);
        if (feed_manifest(&f, "http://seed.example", 1700000000, &b) != 0 ||
            buf_put(&b, "", 1) != 0)
            abort();
        check_json(&b, f.n);
        buf_free(&b);
        feed_free(&f);
    }
    return 0;
}
