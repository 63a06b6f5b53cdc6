/* merkle.h — BEP 52 merkle trees: SHA-256 over 16 KiB leaves, padded to a power of two. */
#ifndef S3TORRENT_MERKLE_H
#define S3TORRENT_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_BLOCK 16384u

struct merkle; /* a reusable SHA-256 context; one per thread */

/* Returns a new context, or NULL when out of memory. Free it with merkle_free. */
struct merkle *merkle_new(void);
void merkle_free(struct merkle *m);

/* out = SHA-256(p[0, n)). */
void merkle_leaf(struct merkle *m, const void *p, size_t n, uint8_t out[32]);

/* The hash of a tree of 2^height leaves that are all 32 zero bytes (height 0: zero bytes). */
void merkle_pad(struct merkle *m, unsigned height, uint8_t out[32]);

/* Root of the tree whose bottom row is hashes[0, n) (32 bytes each) followed by copies of
 * pad up to width entries (a power of two >= n); each level up pads with H(pad || pad).
 * scratch holds at least n * 32 bytes and may alias hashes. */
void merkle_root(struct merkle *m, const uint8_t *hashes, size_t n, size_t width,
                 const uint8_t pad[32], uint8_t *scratch, uint8_t out[32]);

/* Smallest power of two >= n (n >= 1), and log2 of a power of two. */
uint64_t merkle_pow2(uint64_t n);
unsigned merkle_log2(uint64_t pow2);

#endif
