/* config.h — settings shared by every program: defaults and environment (docs/DESIGN.md §7). */
#ifndef S3TORRENT_CONFIG_H
#define S3TORRENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3torrent/err.h"

/* The built-in public UDP trackers used when neither --tracker nor TRACKERS is given. */
extern const char *const config_default_trackers[];
extern const size_t config_default_ntrackers;

/* Splits a comma-separated list (as in TRACKERS) into trimmed, non-empty items. Returns the
 * item count; *out is one allocation the caller frees (the strings live inside it). */
size_t config_split_list(const char *s, char ***out);

/* Parses a size (docs/DESIGN.md §7): decimal digits, then optionally one suffix, any case:
 * K, KB, Ki, KiB (and the same with M, G, T), all binary (K = 1024), or B alone for bytes. No
 * space, no sign. name (the option as the user spells it) starts the message. Returns 0 with
 * *out set, or EINVAL (also on overflow) with err set. */
int config_parse_size(const char *name, const char *s, uint64_t *out, err_t *err);

/* Parses a switch: NULL (given alone) or true, yes, on, 1 is on; false, no, off, 0 is off.
 * Returns 0 with *out set, or EINVAL with err set ("NAME: \"x\" is not a switch ..."). */
int config_parse_switch(const char *name, const char *value, bool *out, err_t *err);

/* Where an AWS service is and how hard to try it (docs/DESIGN.md §7), resolved once per client. */
struct config_service {
    char *scheme;          /* "http" or "https" */
    char *host;            /* host[:port] */
    char *region;
    bool custom;           /* an endpoint was given (path-style addressing for S3) */
    unsigned max_attempts; /* the caller's, else AWS_MAX_ATTEMPTS, else 0 (the client decides) */
};

/* Resolves: endpoint > $env_endpoint (AWS_ENDPOINT_URL_S3, ...) > $AWS_ENDPOINT_URL >
 * https://SERVICE.REGION.amazonaws.com; region > $AWS_REGION > $AWS_DEFAULT_REGION >
 * us-east-1; max_attempts > $AWS_MAX_ATTEMPTS. what names the service in messages. Returns 0,
 * EINVAL (an endpoint that is not scheme://host[:port], a bad AWS_MAX_ATTEMPTS) or ENOMEM with
 * err set; the caller frees out with config_service_free. */
int config_service(const char *what, const char *service, const char *env_endpoint,
                   const char *endpoint, const char *region, unsigned max_attempts,
                   struct config_service *out, err_t *err);
void config_service_free(struct config_service *s);

/* A configuration file (docs/DESIGN.md §7: below the command line and the environment, above the
 * defaults): UTF-8 text, one "name = value" (or a bare "name" for a switch) per line, blank
 * lines and lines starting with '#' ignored, at most 1 MiB. Calls fn for every setting in file
 * order, with value NULL for a bare name. fn returns 0, or an errno with err set to what is
 * wrong with that one setting; the reader then prefixes "PATH:LINE: " and stops. Returns 0,
 * ENOENT (no such file), or another errno with err set. */
typedef int (*config_file_fn)(void *arg, const char *name, const char *value, err_t *err);
int config_file_read(const char *path, config_file_fn fn, void *arg, err_t *err);

#endif
