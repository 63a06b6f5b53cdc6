/* uri.h — percent-encoding (RFC 3986) and form-decoding, the one implementation every module
 * uses: web-seed URLs, magnet links, S3 request paths and queries, event keys. */
#ifndef S3TORRENT_URI_H
#define S3TORRENT_URI_H

#include <stdbool.h>
#include <stddef.h>

#include "s3torrent/buf.h"

/* Appends s[0, n) to b with every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~), and '/'
 * when keep_slash, written as %XX (upper-case hex). Returns b's sticky error. */
int uri_encode(struct buf *b, const char *s, size_t n, bool keep_slash);

/* Decodes s[0, n) into a new NUL-terminated string: '+' becomes a space first when form is
 * true (S3 event keys and encoding-type=url listings), then %XX. Returns NULL on a malformed
 * escape, an encoded NUL byte, or no memory; *len (may be NULL) gets the length. */
char *uri_decode(const char *s, size_t n, bool form, size_t *len);

#endif
