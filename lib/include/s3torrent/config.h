/* config.h — settings shared by every program: defaults and environment (DESIGN §7). */
#ifndef S3TORRENT_CONFIG_H
#define S3TORRENT_CONFIG_H

#include <stddef.h>

/* The built-in public UDP trackers used when neither --tracker nor TRACKERS is given. */
extern const char *const config_default_trackers[];
extern const size_t config_default_ntrackers;

/* Splits a comma-separated list (as in TRACKERS) into trimmed, non-empty items. Returns the
 * item count; *out is one allocation the caller frees (the strings live inside it). */
size_t config_split_list(const char *s, char ***out);

#endif
