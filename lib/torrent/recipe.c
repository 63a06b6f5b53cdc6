/* recipe.c — options to a torrent recipe, one field at a time, with one set of checks and
 * messages for the command line, the mount and the Lambda (docs/DESIGN.md §3, §7). */
#include "s3torrent/recipe.h"
#include "s3torrent/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void recipe_init(struct recipe *b)
{
    memset(b, 0, sizeof(*b));
    b->r.meta = TORRENT_V1;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int recipe_check_url(const char *name, const char *url, err_t *err)
{
    const char *p = url;
    bool ok = is_alpha(*p);
    while (ok && (is_alpha(*p) || (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))
        p++;
    ok = ok && strncmp(p, "://", 3) == 0 && p[3] != '\0';
    for (const unsigned char *c = (const unsigned char *)url; ok && *c; c++)
        ok = *c > 0x20 && *c != 0x7f;
    if (!ok)
        return err_set(err, EINVAL, "%s: \"%.200s\" is not a URL (scheme://host...)", name, url);
    return 0;
}

static int add_tracker(struct recipe *b, const char *url, err_t *err)
{
    if (b->ntrackers == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 4;
        char **t = realloc(b->trackers, cap * sizeof(char *));
        if (t == NULL)
            return err_set(err, ENOMEM, "out of memory");
        b->trackers = t;
        b->cap = cap;
    }
    if ((b->trackers[b->ntrackers] = strdup(url)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    b->ntrackers++;
    return 0;
}

static void drop_trackers(struct recipe *b, size_t from)
{
    while (b->ntrackers > from)
        free(b->trackers[--b->ntrackers]);
}

/* Sets the whole list from a comma-separated value: all of it, or nothing. */
static int set_trackers(struct recipe *b, const char *name, const char *value, err_t *err)
{
    char **v = NULL;
    size_t n = config_split_list(value, &v), old = b->ntrackers;
    int rc = v == NULL ? err_set(err, ENOMEM, "out of memory") : 0;
    if (rc == 0 && n == 0)
        rc = err_set(err, EINVAL, "%s: \"%.200s\" names no URL", name, value);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = recipe_check_url(name, v[i], err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = add_tracker(b, v[i], err);
    if (rc == 0) { /* the new ones replace the old */
        for (size_t i = 0; i < old; i++)
            free(b->trackers[i]);
        memmove(b->trackers, b->trackers + old, n * sizeof(char *));
        b->ntrackers = n;
        b->trackers_set = true;
    } else {
        drop_trackers(b, old);
    }
    free(v);
    return rc;
}

static int set_text(char **slot, const char *value, err_t *err)
{
    char *d = strdup(value);
    if (d == NULL)
        return err_set(err, ENOMEM, "out of memory");
    free(*slot);
    *slot = d;
    return 0;
}

int recipe_set(struct recipe *b, enum recipe_field f, const char *name, const char *value,
               err_t *err)
{
    uint64_t plen;
    bool on;
    int rc;
    if (f != RECIPE_PRIVATE && f != RECIPE_NO_DATE && (value == NULL || *value == '\0'))
        return err_set(err, EINVAL, "%s: no value", name);
    switch (f) {
    case RECIPE_META:
        if (torrent_parse_meta(value, &b->r.meta) != 0)
            return err_set(err, EINVAL, "%s: \"%.64s\" is not a meta version (v1, v2 or hybrid)",
                           name, value);
        return 0;
    case RECIPE_PIECE_LENGTH:
        if ((rc = config_parse_size(name, value, &plen, err)) != 0)
            return rc;
        if (plen < TORRENT_MIN_PIECE || plen > TORRENT_MAX_PIECE || (plen & (plen - 1)) != 0)
            return err_set(err, EINVAL, "%s: \"%.64s\" is not a power of two from 16K to 256M",
                           name, value);
        b->r.piece_length = plen;
        return 0;
    case RECIPE_TRACKER:
        if ((rc = recipe_check_url(name, value, err)) || (rc = add_tracker(b, value, err)))
            return rc;
        b->trackers_set = true;
        return 0;
    case RECIPE_TRACKERS:
        return set_trackers(b, name, value, err);
    case RECIPE_WEBSEED:
        if ((rc = recipe_check_url(name, value, err)))
            return rc;
        return set_text(&b->webseed, value, err);
    case RECIPE_SOURCE:
        return set_text(&b->source, value, err);
    case RECIPE_COMMENT:
        return set_text(&b->comment, value, err);
    case RECIPE_PRIVATE:
        if ((rc = config_parse_switch(name, value, &on, err)) == 0)
            b->r.private_ = on;
        return rc;
    case RECIPE_NO_DATE:
        if ((rc = config_parse_switch(name, value, &on, err)) == 0)
            b->r.no_date = on;
        return rc;
    }
    return err_set(err, EINVAL, "%s: not a torrent option", name);
}

void recipe_finish(struct recipe *b)
{
    if (b->trackers_set) {
        b->r.trackers = (const char *const *)b->trackers;
        b->r.ntrackers = b->ntrackers;
    } else {
        b->r.trackers = config_default_trackers;
        b->r.ntrackers = config_default_ntrackers;
    }
    b->r.webseed_base = b->webseed;
    b->r.source = b->source;
    b->r.comment = b->comment;
}

void recipe_free(struct recipe *b)
{
    drop_trackers(b, 0);
    free(b->trackers);
    free(b->webseed);
    free(b->source);
    free(b->comment);
    memset(b, 0, sizeof(*b));
}
