/* fuzz_serve.c — libFuzzer target for the request rules of `s3torrent serve` (serve/route.c,
 * serve/cond.c; docs/DESIGN.md §14), as the server calls them: the method and target, then the
 * validators and Range against the object found. Any request gets one route of a known kind:
 * an error of a known status with one printable line, or a bucket served and a key that is a
 * clean path (no empty, "." or ".." segment, no control byte) with one pin at most, or for a
 * feed or a prefix's torrent a prefix served (a prefix's torrent: never the bucket, no pin);
 * and the bytes a 206 or 200 names lie inside the object.
 *
 * Input: "METHOD TARGET\n", then up to six lines (Range, If-Range, If-Match, If-None-Match,
 * If-Modified-Since, If-Unmodified-Since; an empty line is an absent header), then the rest
 * picks the object's size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cond.h"
#include "route.h"
#include "s3torrent/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINE_MAX_ (ROUTE_TARGET_MAX + 64)

static const struct route_scope scopes[] = {{"media", ""}, {"rec", "public/"}};

/* The next line of [*p, end) into out (NUL-terminated, cut); false at the end. */
static bool next_line(const char **p, const char *end, char *out, size_t cap)
{
    if (*p >= end)
        return false;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = (size_t)((nl ? nl : end) - *p);
    size_t c = n < cap ? n : cap - 1;
    memcpy(out, *p, c);
    out[c] = '\0';
    *p = nl ? nl + 1 : end;
    return true;
}

static void check_key(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > ROUTE_KEY_MAX || key[0] == '/' || key[n - 1] == '/' || strstr(key, "//"))
        abort();
    for (const char *c = key; *c; c++)
        if (util_is_ctl((unsigned char)*c))
            abort();
    for (const char *s = key; s; s = strchr(s, '/') ? strchr(s, '/') + 1 : NULL) {
        size_t len = strcspn(s, "/");
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            abort();
    }
}

/* A feed's prefix: served, "" or ending in '/', clean segments. */
static void check_prefix(const struct route *r)
{
    size_t n = strlen(r->key);
    if (n > 0 && r->key[n - 1] != '/')
        abort();
    if (strcmp(r->bucket, "media") != 0 &&
        !(strcmp(r->bucket, "rec") == 0 && strncmp(r->key, "public/", 7) == 0))
        abort();
    if (n > 0) {
        char k[ROUTE_KEY_MAX + 1];
        memcpy(k, r->key, n - 1);
        k[n - 1] = '\0';
        check_key(k);
    }
}

static void check_route(const struct route *r)
{
    switch (r->kind) {
    case ROUTE_ERROR:
        if (r->status != 400 && r->status != 404 && r->status != 405 && r->status != 414)
            abort();
        if (r->text[0] == '\0')
            abort();
        for (const char *c = r->text; *c; c++)
            if (util_is_ctl((unsigned char)*c))
                abort();
        break;
    case ROUTE_PREFLIGHT:
        if (r->bucket[0] == '\0') /* OPTIONS /metrics */
            break;
        if (r->key[0] == '\0' || r->key[strlen(r->key) - 1] == '/') { /* OPTIONS of a feed */
            check_prefix(r);
            break;
        }
        /* fall through */
    case ROUTE_OBJECT:
    case ROUTE_TORRENT:
        if (r->newest < -1 || (r->newest >= 0 && (r->etag[0] || r->version[0])))
            abort(); /* one pin at most, and a time is never negative */
        if (strcmp(r->bucket, "media") != 0 &&
            !(strcmp(r->bucket, "rec") == 0 && strncmp(r->key, "public/", 7) == 0))
            abort();
        check_key(r->key);
        break;
    case ROUTE_RSS:
    case ROUTE_MANIFEST:
        if (r->head)
            abort();
        check_prefix(r);
        break;
    case ROUTE_PREFIX_TORRENT: /* a prefix, never the whole bucket, and no pin */
        if (r->key[0] == '\0' || r->etag[0] || r->version[0] || r->newest >= 0)
            abort();
        check_prefix(r);
        break;
    case ROUTE_METRICS:
        break;
    default:
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char first[LINE_MAX_], hdr[6][512];
    const char *p = (const char *)data, *end = p + size;
    if (!next_line(&p, end, first, sizeof(first)))
        return 0;
    char *sp = strchr(first, ' ');
    const char *method = "GET", *target = first;
    if (sp != NULL) {
        *sp = '\0';
        method = first;
        target = sp + 1;
    }
    struct route r;
    enum route_kind k = route_parse(scopes, 2, method, target, &r);
    if (k != r.kind)
        abort();
    check_route(&r);

    const char *h[6] = {NULL};
    for (int i = 0; i < 6 && next_line(&p, end, hdr[i], sizeof(hdr[i])); i++)
        h[i] = hdr[i][0] ? hdr[i] : NULL;
    uint64_t osize = 0;
    for (; p < end; p++)
        osize = osize * 257 + (uint8_t)*p;
    struct cond_request rq = {.head = r.head,
                              .range = h[0],
                              .if_range = h[1],
                              .if_match = h[2],
                              .if_none_match = h[3],
                              .if_modified_since = h[4],
                              .if_unmodified_since = h[5]};
    struct cond_object o = {"0123abcd-2", osize, 784111777};
    struct cond_answer a;
    cond_decide(&rq, &o, &a);
    switch (a.status) {
    case 200:
        if (a.first != 0 || a.len != osize)
            abort();
        break;
    case 206:
        if (a.len == 0 || a.first >= osize || a.len > osize - a.first)
            abort();
        break;
    case 304:
    case 412:
    case 416:
        break;
    default:
        abort();
    }
    return 0;
}
