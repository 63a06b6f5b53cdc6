/* recipe.h — the one builder of a torrent recipe (docs/DESIGN.md §3, §7): every front end maps
 * its spelling of an option (--piece-length, piece_length, PIECE_LENGTH) onto one field here, so
 * that what one refuses, all refuse, with the same message after the option's name. */
#ifndef S3TORRENT_RECIPE_H
#define S3TORRENT_RECIPE_H

#include <stdbool.h>
#include <stddef.h>

#include "s3torrent/err.h"
#include "s3torrent/torrent.h"

enum recipe_field {
    RECIPE_META,         /* v1, v2 or hybrid */
    RECIPE_PIECE_LENGTH, /* a size (config_parse_size), a power of two in 16 KiB..256 MiB */
    RECIPE_TRACKER,      /* one announce URL, added after those set before */
    RECIPE_TRACKERS,     /* comma-separated announce URLs, replacing those set before */
    RECIPE_WEBSEED,      /* the web seed base URL */
    RECIPE_PRIVATE,      /* a switch */
    RECIPE_SOURCE,       /* any text but empty */
    RECIPE_COMMENT,      /* any text but empty */
    RECIPE_NO_DATE,      /* a switch */
};

/* A recipe being built, owning copies of every string it points at. */
struct recipe {
    struct torrent_recipe r; /* complete once recipe_finish has run */
    char **trackers;
    size_t ntrackers, cap;
    bool trackers_set; /* a tracker option was given (else: config_default_trackers) */
    char *webseed, *source, *comment;
};

/* Starts an empty recipe: v1, automatic piece length, no trackers yet. */
void recipe_init(struct recipe *b);

/* Sets field f from value, as the option named name gave it. Switches take what config_parse_switch
 * takes. Returns 0, or EINVAL ("NAME: why") or ENOMEM with err set;
 * b is unchanged on error. */
int recipe_set(struct recipe *b, enum recipe_field f, const char *name, const char *value,
               err_t *err);

/* Applies the defaults (the built-in trackers when none was set) and fills b->r. */
void recipe_finish(struct recipe *b);

/* Frees what b owns; b->r must not be used afterwards. */
void recipe_free(struct recipe *b);

/* Checks one URL the way trackers and web seeds are checked: scheme://REST, the scheme a letter
 * then letters, digits, '+', '-' or '.', REST not empty, no space or control byte. Returns 0 or
 * EINVAL with err set ("NAME: \"URL\" is not a URL ..."). */
int recipe_check_url(const char *name, const char *url, err_t *err);

#endif
