/* merkle.c — BEP 52 merkle trees on OpenSSL's EVP SHA-256, with a reused context because
 * internal nodes are tiny and per-call setup would dominate. */
#include "s3torrent/merkle.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct merkle {
    EVP_MD_CTX *ctx;
    EVP_MD *md;
};

struct merkle *merkle_new(void)
{
    struct merkle *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->ctx = EVP_MD_CTX_new();
    m->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (m->ctx == NULL || m->md == NULL) {
        merkle_free(m);
        return NULL;
    }
    return m;
}

void merkle_free(struct merkle *m)
{
    if (m == NULL)
        return;
    EVP_MD_CTX_free(m->ctx);
    EVP_MD_free(m->md);
    free(m);
}

void merkle_leaf(struct merkle *m, const void *p, size_t n, uint8_t out[32])
{
    EVP_DigestInit_ex(m->ctx, m->md, NULL);
    EVP_DigestUpdate(m->ctx, p, n);
    EVP_DigestFinal_ex(m->ctx, out, NULL);
}

static void node(struct merkle *m, const uint8_t *l, const uint8_t *r, uint8_t out[32])
{
    EVP_DigestInit_ex(m->ctx, m->md, NULL);
    EVP_DigestUpdate(m->ctx, l, 32);
    EVP_DigestUpdate(m->ctx, r, 32);
    EVP_DigestFinal_ex(m->ctx, out, NULL);
}

void merkle_pad(struct merkle *m, unsigned height, uint8_t out[32])
{
    memset(out, 0, 32);
    while (height-- > 0)
        node(m, out, out, out);
}

void merkle_root(struct merkle *m, const uint8_t *hashes, size_t n, size_t width,
                 const uint8_t pad[32], uint8_t *scratch, uint8_t out[32])
{
    uint8_t p[32];
    memcpy(p, pad, 32);
    if (scratch != hashes)
        memmove(scratch, hashes, n * 32);
    while (width > 1) {
        size_t half = (n + 1) / 2;
        for (size_t i = 0; i < half; i++) {
            const uint8_t *r = 2 * i + 1 < n ? scratch + (2 * i + 1) * 32 : p;
            node(m, scratch + 2 * i * 32, r, scratch + i * 32);
        }
        node(m, p, p, p);
        n = half;
        width /= 2;
    }
    if (n == 0)
        memcpy(out, p, 32);
    else
        memcpy(out, scratch, 32);
}

uint64_t merkle_pow2(uint64_t n)
{
    uint64_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

unsigned merkle_log2(uint64_t pow2)
{
    unsigned h = 0;
    while (pow2 > 1) {
        pow2 >>= 1;
        h++;
    }
    return h;
}
