/* uri.h — percent-encoding (RFC 3986) and form-decoding, the one implementation every module
 * uses: web-seed URLs, magnet links, S3 request paths and queries, event keys. */
#ifndef S3TORRENT_URI_H
#define S3TORRENT_URI_H

#include <stdbool.h>
#include <stddef.h>

#include "s3torrent/buf.h"
#include "s3torrent/err.h"

/* Appends s[0, n) to b with every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~), and '/'
 * when keep_slash, written as %XX (upper-case hex). Returns b's sticky error. */
int uri_encode(struct buf *b, const char *s, size_t n, bool keep_slash);

/* Decodes in[0, n) into out, which has room for n + 1 bytes and may equal in: when form is
 * true '+' becomes a space (S3 event keys and encoding-type=url listings); %XX becomes the byte
 * XX. One left-to-right pass, so "%2B" gives '+', never a space, and "%252B" gives "%2B".
 * Rejects a truncated or non-hex escape and a NUL byte, encoded or not. On success out is
 * NUL-terminated and *out_len (may be NULL) is its length. Returns 0 or EPROTO (err names the
 * offset). */
int uri_decode_to(const char *in, size_t n, bool form, char *out, size_t *out_len, err_t *err);

/* uri_decode_to into a new string (the caller frees it). Returns NULL on a malformed escape, a
 * NUL byte or no memory; *len (may be NULL) gets the length. */
char *uri_decode(const char *s, size_t n, bool form, size_t *len);

#endif
