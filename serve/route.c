/* route.c — request targets to routes (route.h). */
#include "route.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "s3torrent/err.h"
#include "s3torrent/uri.h"
#include "s3torrent/util.h"

#define TORRENT_SUFFIX ".torrent"

static enum route_kind fail(struct route *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum route_kind fail(struct route *r, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
    util_scrub(r->text);
    r->kind = ROUTE_ERROR;
    r->status = status;
    return ROUTE_ERROR;
}

/* Decodes one path segment [s, s + n) into out (cap bytes), refusing what would change the
 * path. Returns the decoded length, or -1 with the route failed. */
static long segment(struct route *r, const char *s, size_t n, char *out, size_t cap)
{
    size_t len;
    if (n == 0)
        return fail(r, 400, "an empty path segment (//) names no key"), -1;
    if (n >= cap)
        return fail(r, 414, "a path segment longer than %zu bytes", cap - 1), -1;
    if (uri_decode_to(s, n, false, out, &len, NULL) != 0)
        return fail(r, 400, "a malformed percent-escape in the path"), -1;
    if (memchr(out, '/', len) != NULL)
        return fail(r, 400, "an encoded '/' (%%2F) in a path segment"), -1;
    for (size_t i = 0, l; i < len; i += l) {
        if (util_is_ctl((unsigned char)out[i]))
            return fail(r, 400, "a control byte in the path"), -1;
        /* S3 keys are UTF-8: another byte names no object (RGW would answer 400) */
        if ((l = util_utf8_len((const unsigned char *)out + i, len - i)) == 0)
            return fail(r, 400, "a path that is not UTF-8"), -1;
    }
    if (strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
        return fail(r, 400, "'.' and '..' segments are refused"), -1;
    return (long)len;
}

enum want { WANT_OBJECT, WANT_TORRENT, WANT_RSS, WANT_MANIFEST };

/* The query: "torrent", "rss" or "manifest" (with no value, or an empty one), at most one of
 * them. Sets *w. Returns 0 or -1. */
static int query(struct route *r, const char *q, enum want *w)
{
    static const struct {
        const char *name;
        enum want w;
    } known[] = {{"torrent", WANT_TORRENT}, {"rss", WANT_RSS}, {"manifest", WANT_MANIFEST}};
    const size_t nknown = sizeof(known) / sizeof(known[0]);
    *w = WANT_OBJECT;
    while (q && *q) {
        size_t n = strcspn(q, "&"), name = strcspn(q, "=&"), i;
        for (i = 0; i < nknown; i++)
            if (name == strlen(known[i].name) && memcmp(q, known[i].name, name) == 0 &&
                (n == name || n == name + 1))
                break;
        if (i < nknown) {
            if (*w != WANT_OBJECT && *w != known[i].w)
                return fail(r, 400, "?torrent, ?rss and ?manifest do not go together"), -1;
            *w = known[i].w;
        } else if (n > 0) {
            return fail(r, 400,
                        "an unsupported query parameter (?torrent, ?rss and ?manifest "
                        "are served)"),
                   -1;
        }
        q += n + (q[n] == '&');
    }
    return 0;
}

static const struct route_scope *find_scope(const struct route_scope *scopes, size_t n,
                                            const char *bucket, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(scopes[i].bucket, bucket) == 0 &&
            strncmp(key, scopes[i].prefix, strlen(scopes[i].prefix)) == 0)
            return &scopes[i];
    return NULL;
}

static bool bucket_served(const struct route_scope *scopes, size_t n, const char *bucket)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(scopes[i].bucket, bucket) == 0)
            return true;
    return false;
}

/* A pin: /~e/ETAG/... (ETags are hex digits and '-' (md5-N) on S3, letters and digits on
 * other stores) or /~v/VERSION/... (S3 and RGW version ids: letters, digits, '.', '_', '-',
 * and '+' and '=' of base64). Nothing else goes in a path we write. */
static bool pin_ok(const char *e, bool version)
{
    if (*e == '\0')
        return false;
    for (; *e; e++)
        if (!((*e >= '0' && *e <= '9') || (*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') ||
              *e == '-' || (version && strchr("._+=", *e) != NULL)))
            return false;
    return true;
}

/* KEY.torrent names the torrent of KEY: strips the suffix from key (keylen bytes) when what is
 * left is a key that could be served (not empty, not ending in "/", "." or ".."). */
static bool strip_suffix(char *key, size_t keylen)
{
    size_t sl = strlen(TORRENT_SUFFIX);
    if (keylen <= sl || strcmp(key + keylen - sl, TORRENT_SUFFIX) != 0)
        return false;
    size_t n = keylen - sl;
    const char *last = key;
    for (size_t i = 0; i < n; i++)
        if (key[i] == '/')
            last = key + i + 1;
    size_t ll = (size_t)(key + n - last);
    if (ll == 0 || (ll == 1 && last[0] == '.') || (ll == 2 && last[0] == '.' && last[1] == '.'))
        return false;
    key[n] = '\0';
    return true;
}

/* A pin of the newest Last-Modified: Unix seconds, decimal digits with no leading zero (so a
 * time has one URL). Returns the seconds, or -1. */
static long long pin_seconds(const char *e)
{
    long long v = 0;
    if (*e == '\0' || (*e == '0' && e[1] != '\0') || strlen(e) > 12) /* past the year 30000 */
        return -1;
    for (; *e; e++) {
        if (*e < '0' || *e > '9')
            return -1;
        v = v * 10 + (*e - '0');
    }
    return v;
}

/* The torrent of a prefix, /BUCKET/PREFIX/?torrent: r->key holds PREFIX without its last '/'
 * (keylen bytes). */
static enum route_kind prefix_torrent(const struct route_scope *scopes, size_t nscopes,
                                      struct route *r, size_t keylen)
{
    if (r->etag[0] || r->version[0] || r->newest >= 0)
        return fail(r, 400, "a prefix's torrent is of its current objects: no pin");
    if (keylen == 0)
        return fail(r, 404, "a bucket has no torrent: name a prefix (/BUCKET/PREFIX/?torrent)");
    if (keylen + 1 > ROUTE_KEY_MAX)
        return fail(r, 414, "a prefix longer than %d bytes", ROUTE_KEY_MAX - 1);
    r->key[keylen++] = '/';
    r->key[keylen] = '\0';
    if (find_scope(scopes, nscopes, r->bucket, r->key) == NULL)
        return fail(r, 404, "this prefix is outside the prefixes served");
    r->kind = ROUTE_PREFIX_TORRENT;
    return r->kind;
}

/* The feed of a prefix, /BUCKET/ or /BUCKET/PREFIX/: r->key holds PREFIX without its last
 * '/' (keylen bytes; slash_end: the path ended in '/'). */
static enum route_kind feed_path(const struct route_scope *scopes, size_t nscopes, struct route *r,
                                 size_t keylen, bool slash_end, enum want w)
{
    if (r->etag[0] || r->version[0] || r->newest >= 0)
        return fail(r, 400, "a feed is of the current objects: no /~e/, /~v/ or /~m/ pin");
    if (keylen > 0 && !slash_end)
        return fail(r, 404, "a feed is of a prefix, ending in '/'");
    if (keylen + 1 > ROUTE_KEY_MAX)
        return fail(r, 414, "a prefix longer than %d bytes", ROUTE_KEY_MAX - 1);
    if (keylen > 0)
        r->key[keylen++] = '/';
    r->key[keylen] = '\0';
    for (size_t i = 0; i < nscopes; i++) /* inside a prefix served */
        if (strcmp(scopes[i].bucket, r->bucket) == 0 &&
            strncmp(r->key, scopes[i].prefix, strlen(scopes[i].prefix)) == 0) {
            r->kind = w == WANT_RSS ? ROUTE_RSS : ROUTE_MANIFEST;
            return r->kind;
        }
    return fail(r, 404, "this prefix is outside the prefixes served");
}

/* Routes the path [p, end) (after the leading '/'): [~e/ETAG/]BUCKET/KEY, or for a feed
 * BUCKET/[PREFIX/]. */
static enum route_kind object_path(const struct route_scope *scopes, size_t nscopes,
                                   struct route *r, const char *p, const char *end, enum want w)
{
    char seg[ROUTE_KEY_MAX + 1];
    enum { PIN_OR_BUCKET, ETAG, VERSION, NEWEST, BUCKET, KEY } want = PIN_OR_BUCKET;
    size_t keylen = 0;
    bool torrent = w == WANT_TORRENT, feed = w == WANT_RSS || w == WANT_MANIFEST;
    while (p <= end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        size_t n = slash ? (size_t)(slash - p) : (size_t)(end - p);
        if (n == 0 && slash == NULL && want == KEY && feed)
            return feed_path(scopes, nscopes, r, keylen, keylen > 0, w);
        if (n == 0 && slash == NULL && want == KEY && torrent)
            return prefix_torrent(scopes, nscopes, r, keylen);
        if (n == 0 && slash == NULL && (want == KEY || want == PIN_OR_BUCKET))
            return fail(r, 404,
                        keylen > 0 ? "a prefix, not an object (see ?torrent, ?rss and ?manifest)"
                                   : "no object named (/BUCKET/KEY)");
        long len = segment(r, p, n, seg, sizeof(seg));
        if (len < 0)
            return ROUTE_ERROR;
        switch (want) {
        case PIN_OR_BUCKET:
            if (strcmp(seg, "~e") == 0 || strcmp(seg, "~v") == 0 || strcmp(seg, "~m") == 0) {
                want = seg[1] == 'e' ? ETAG : seg[1] == 'v' ? VERSION : NEWEST;
                break;
            }
            /* fall through */
        case BUCKET:
            if ((size_t)len >= sizeof(r->bucket) || !bucket_served(scopes, nscopes, seg))
                return fail(r, 404, "no such bucket is served here");
            memcpy(r->bucket, seg, (size_t)len + 1);
            want = KEY;
            break;
        case ETAG:
            if ((size_t)len >= sizeof(r->etag) || !pin_ok(seg, false))
                return fail(r, 400, "a malformed ETag after /~e/");
            memcpy(r->etag, seg, (size_t)len + 1);
            want = BUCKET;
            break;
        case VERSION:
            if ((size_t)len >= sizeof(r->version) || !pin_ok(seg, true))
                return fail(r, 400, "a malformed version id after /~v/");
            memcpy(r->version, seg, (size_t)len + 1);
            want = BUCKET;
            break;
        case NEWEST:
            if ((r->newest = pin_seconds(seg)) < 0)
                return fail(r, 400, "a malformed time after /~m/ (Unix seconds)");
            want = BUCKET;
            break;
        case KEY:
            if (keylen + (keylen > 0) + (size_t)len > ROUTE_KEY_MAX)
                return fail(r, 414, "a key longer than %d bytes", ROUTE_KEY_MAX);
            if (keylen > 0)
                r->key[keylen++] = '/';
            memcpy(r->key + keylen, seg, (size_t)len + 1);
            keylen += (size_t)len;
            break;
        }
        if (slash == NULL)
            break;
        p = slash + 1;
    }
    if (want == KEY && feed)
        return feed_path(scopes, nscopes, r, keylen, false, w);
    if (want != KEY || keylen == 0)
        return fail(r, 404, "no object named (/BUCKET/KEY)");
    if (!torrent && strip_suffix(r->key, keylen))
        torrent = true;
    if (find_scope(scopes, nscopes, r->bucket, r->key) == NULL)
        return fail(r, 404, "this key is outside the prefixes served");
    r->kind = torrent ? ROUTE_TORRENT : ROUTE_OBJECT;
    return r->kind;
}

/* The absolute form http[s]://AUTHORITY/PATH, which a server must accept (RFC 9112 §3.2.2):
 * moves *target to its PATH (the host plays no part in routing). Returns 0, or -1 for one
 * with no authority or no path. Another target is left as it is. */
static int absolute_form(const char **target, size_t *tl)
{
    const char *t = *target;
    size_t scheme = strncasecmp(t, "http://", 7) == 0    ? 7
                    : strncasecmp(t, "https://", 8) == 0 ? 8
                                                         : 0;
    if (scheme == 0)
        return 0;
    size_t authority = strcspn(t + scheme, "/?#");
    if (authority == 0 || t[scheme + authority] != '/')
        return -1;
    *target = t + scheme + authority;
    *tl -= scheme + authority;
    return 0;
}

enum route_kind route_parse(const struct route_scope *scopes, size_t nscopes, const char *method,
                            const char *target, struct route *r)
{
    memset(r, 0, sizeof(*r));
    r->newest = -1;
    bool preflight = false;
    enum want w;
    if (strcmp(method, "HEAD") == 0)
        r->head = true;
    else if (strcmp(method, "OPTIONS") == 0)
        preflight = true;
    else if (strcmp(method, "GET") != 0)
        return fail(r, 405, "only GET, HEAD and OPTIONS are served");
    size_t tl = strnlen(target, ROUTE_TARGET_MAX + 1);
    if (tl > ROUTE_TARGET_MAX)
        return fail(r, 414, "a request target longer than %d bytes", ROUTE_TARGET_MAX);
    if (absolute_form(&target, &tl) != 0)
        return fail(r, 400, "an absolute-form target (http://HOST/PATH) without a host or path");
    if (target[0] != '/')
        return fail(r, 400, "the request target is not an absolute path");
    if (strchr(target, '#') != NULL)
        return fail(r, 400, "a fragment (#) in the request target");
    const char *q = strchr(target, '?');
    const char *end = q ? q : target + tl;
    if (query(r, q ? q + 1 : NULL, &w) != 0)
        return ROUTE_ERROR;
    if (end - target == 8 && memcmp(target, "/metrics", 8) == 0 && w == WANT_OBJECT)
        r->kind = ROUTE_METRICS;
    else if (object_path(scopes, nscopes, r, target + 1, end, w) == ROUTE_ERROR)
        return ROUTE_ERROR;
    if (r->head && (r->kind == ROUTE_RSS || r->kind == ROUTE_MANIFEST))
        return fail(r, 405, "feeds are answered to GET only");
    if (preflight)
        r->kind = ROUTE_PREFLIGHT;
    return r->kind;
}
