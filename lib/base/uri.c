/* uri.c — percent-encoding and decoding. */
#include "s3torrent/uri.h"

#include <errno.h>
#include <stdlib.h>

int uri_encode(struct buf *b, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
            buf_put(b, &c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_put(b, e, 3);
        }
    }
    return b->err;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int uri_decode_to(const char *in, size_t n, bool form, char *out, size_t *out_len, err_t *err)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '+' && form) {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)in[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return err_set(err, EPROTO, "bad %%-escape at offset %zu", i);
            c = (unsigned char)(hi * 16 + lo);
            if (c == 0)
                return err_set(err, EPROTO, "encoded NUL byte (%%00) at offset %zu", i);
            i += 2;
        } else if (c == 0) {
            return err_set(err, EPROTO, "NUL byte at offset %zu", i);
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return 0;
}

char *uri_decode(const char *s, size_t n, bool form, size_t *len)
{
    char *out = malloc(n + 1);
    if (out && uri_decode_to(s, n, form, out, len, NULL) != 0) {
        free(out);
        return NULL;
    }
    return out;
}
