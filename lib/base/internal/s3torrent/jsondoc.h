/* jsondoc.h — the one strict reader of JSON bodies from AWS and Transmission endpoints: exactly
 * one object, valid UTF-8, bounded nesting and size, nothing after it. */
#ifndef S3TORRENT_JSONDOC_H
#define S3TORRENT_JSONDOC_H

#include <json-c/json.h>
#include <stddef.h>

#include "s3torrent/err.h"

/* Parses body[0, len). what names the source in messages ("ECS container credentials").
 * Returns 0 with *out set (the caller releases it with json_object_put), EFBIG past max bytes,
 * EPROTO for an empty body, invalid JSON, trailing data or a non-object, or ENOMEM; err says
 * "<what>: the response ..." in one line. */
int jsondoc_parse(const char *what, const void *body, size_t len, size_t max, int depth,
                  json_object **out, err_t *err);

/* The same for a document of any type (an array, a string, a number, null...). */
int jsondoc_parse_any(const char *what, const void *body, size_t len, size_t max, int depth,
                      json_object **out, err_t *err);

#endif
