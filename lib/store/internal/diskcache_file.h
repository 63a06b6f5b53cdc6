/* diskcache_file.h — the layout of one disk cache file (lib/store/diskcache.c), for the cache
 * and its tests and fuzz target: a fixed header, the identity, then the data.
 *
 *   magic "S3TBLK\r\n" | u32 version | u32 identity length | u64 data length |
 *   SHA-256 of identity and data (32 bytes) | identity | data        (integers little-endian)
 *
 * The identity is bucket, key, ETag and version id, each as a u32 length and its bytes, then the
 * u64 block size and block index. */
#ifndef S3TORRENT_DISKCACHE_FILE_H
#define S3TORRENT_DISKCACHE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "s3torrent/buf.h"
#include "s3torrent/diskcache.h"

#define DISKCACHE_MAGIC     "S3TBLK\r\n"
#define DISKCACHE_VERSION   1
#define DISKCACHE_HEADER    56 /* bytes before the identity */
#define DISKCACHE_IDENT_MAX 4096

struct diskcache_header {
    uint32_t version, ident_len;
    uint64_t data_len;
    uint8_t sum[32];
};

/* Appends the identity of id to b. Returns 0 or ENOMEM (b over its cap, or a field too long). */
int diskcache_ident(const struct diskcache_id *id, struct buf *b);

/* Writes the header of a file holding ident and data into out (DISKCACHE_HEADER bytes). */
void diskcache_header_make(const uint8_t *ident, size_t ident_len, const uint8_t *data,
                           size_t data_len, uint8_t out[DISKCACHE_HEADER]);

/* Reads the DISKCACHE_HEADER bytes at p. Returns 0, or EBADMSG for a wrong magic or version or
 * lengths past the maxima. */
int diskcache_header_parse(const uint8_t *p, struct diskcache_header *h);

/* Whether the checksum of h matches ident and data. */
int diskcache_sum_ok(const struct diskcache_header *h, const uint8_t *ident, const uint8_t *data);

/* Checks a whole file image of n bytes: header, lengths adding up to n, checksum. Returns 0 with
 * *ident / *data pointing into p, or EBADMSG. */
int diskcache_file_parse(const uint8_t *p, size_t n, const uint8_t **ident, size_t *ident_len,
                         const uint8_t **data, size_t *data_len);

#endif
