/* cond.c — conditional and range requests (cond.h). */
#include "cond.h"

#include <string.h>
#include <strings.h>

#include "s3torrent/util.h"

static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

bool cond_etag_matches(const char *v, const char *etag, bool weak)
{
    size_t el = strlen(etag);
    v = skip_ows(v);
    if (strcmp(v, "*") == 0)
        return true;
    while (*v) {
        bool is_weak = false;
        if (v[0] == 'W' && v[1] == '/') {
            is_weak = true;
            v += 2;
        }
        if (*v != '"')
            return false; /* not a list of entity tags: matches nothing */
        const char *close = strchr(v + 1, '"');
        if (close == NULL)
            return false;
        size_t n = (size_t)(close - v - 1);
        if ((weak || !is_weak) && n == el && memcmp(v + 1, etag, n) == 0)
            return true;
        v = skip_ows(close + 1);
        if (*v == ',')
            v = skip_ows(v + 1);
        else if (*v != '\0')
            return false;
    }
    return false;
}

/* A decimal of one digit or more at *s (moved past it); one beyond 64 bits is UINT64_MAX, as
 * large as any length (RFC 9110 §14.1.1: a last-pos past the end means the end, a first-pos
 * past it is unsatisfiable). Returns false when there is no digit. */
static bool number(const char **s, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = *s;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *s = p;
    *out = v;
    return true;
}

/* Parses "bytes=A-B", "bytes=A-" or "bytes=-N" into a (first, last inclusive or suffix).
 * Returns 1 for one valid range, 0 for a Range to ignore. */
static int parse_range(const char *v, bool *suffix, uint64_t *a, uint64_t *b, bool *open)
{
    v = skip_ows(v);
    if (strncasecmp(v, "bytes", 5) != 0)
        return 0;
    v = skip_ows(v + 5);
    if (*v++ != '=')
        return 0;
    v = skip_ows(v);
    *suffix = *v == '-';
    *open = false;
    if (*suffix) {
        v++;
        if (!number(&v, b))
            return 0;
    } else {
        if (!number(&v, a) || *v++ != '-')
            return 0;
        if (*v >= '0' && *v <= '9') {
            if (!number(&v, b) || *b < *a)
                return 0;
        } else {
            *open = true;
        }
    }
    v = skip_ows(v);
    return *v == '\0'; /* a ',' means several ranges: ignored */
}

static bool if_range_holds(const char *v, const struct cond_object *o)
{
    int64_t t;
    v = skip_ows(v);
    if (*v == '"' || (v[0] == 'W' && v[1] == '/'))
        return cond_etag_matches(v, o->etag, false);
    return util_http_date(v, &t) == 0 && t == o->mtime;
}

void cond_decide(const struct cond_request *rq, const struct cond_object *o, struct cond_answer *a)
{
    int64_t t;
    a->status = 200;
    a->first = 0;
    a->len = o->size;
    if (rq->if_match) {
        if (!cond_etag_matches(rq->if_match, o->etag, false)) {
            a->status = 412;
            return;
        }
    } else if (rq->if_unmodified_since && util_http_date(rq->if_unmodified_since, &t) == 0 &&
               o->mtime > t) {
        a->status = 412;
        return;
    }
    if (rq->if_none_match) {
        if (cond_etag_matches(rq->if_none_match, o->etag, true)) {
            a->status = 304;
            return;
        }
    } else if (rq->if_modified_since && util_http_date(rq->if_modified_since, &t) == 0 &&
               o->mtime <= t) {
        a->status = 304;
        return;
    }
    if (rq->head || rq->range == NULL || (rq->if_range && !if_range_holds(rq->if_range, o)))
        return;
    bool suffix, open;
    uint64_t first = 0, last = 0;
    if (!parse_range(rq->range, &suffix, &first, &last, &open))
        return;
    if (suffix) {
        if (last == 0 || o->size == 0) {
            a->status = 416;
            return;
        }
        a->first = o->size - (last < o->size ? last : o->size);
        a->len = o->size - a->first;
    } else {
        if (first >= o->size) {
            a->status = 416;
            return;
        }
        if (open || last >= o->size)
            last = o->size - 1;
        a->first = first;
        a->len = last - first + 1;
    }
    a->status = 206;
}
