/* buf.h — a growable byte buffer with a hard maximum, and a counting mode that only measures
 * (used to know a torrent's exact size without building it). */
#ifndef S3TORRENT_BUF_H
#define S3TORRENT_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where a producer hands bytes without copying them: in order, in pieces of any size, valid only
 * during the call (a source's stream_feed, the HTTP layer's http_stream_feed). */
typedef void (*buf_sink_fn)(void *arg, const uint8_t *data, size_t len);

struct buf {
    uint8_t *data;
    size_t len, cap, max;
    bool count_only; /* when true nothing is stored; len still grows */
    int err;         /* sticky: first failure (ENOMEM, EFBIG) */
};

/* Initialises an empty buffer that refuses to grow past max bytes. */
void buf_init(struct buf *b, size_t max);
/* Initialises a buffer that only counts bytes. */
void buf_init_counter(struct buf *b);
/* Appends n bytes. Returns 0 or the sticky error. */
int buf_put(struct buf *b, const void *p, size_t n);
/* Appends a formatted string (no NUL stored). Returns 0 or the sticky error. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the bytes to the caller (who frees them) and empties b. */
uint8_t *buf_steal(struct buf *b, size_t *len);
/* Frees the storage. */
void buf_free(struct buf *b);

#endif
