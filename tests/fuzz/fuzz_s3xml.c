/* fuzz_s3xml.c — libFuzzer target for the S3 XML parsers: any input is a listing, an error
 * document or a one-line reason, never a crash or a leak; and feeding it whole or in pieces
 * gives the same answer. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/aws.h"
#include "s3torrent/s3xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A digest of what a listing delivered, to compare two parses of the same input. */
struct seen {
    uint64_t hash;
    size_t objects, prefixes;
};

static void mix(struct seen *s, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        s->hash = (s->hash ^ b[i]) * 1099511628211ull;
}

static int on_object(void *ctx, const struct s3xml_object *o, err_t *err)
{
    struct seen *s = ctx;
    (void)err;
    if (o->key_len == 0 || strlen(o->key) != o->key_len || o->etag == NULL ||
        o->storage_class == NULL)
        abort();
    s->objects++;
    mix(s, o->key, o->key_len);
    mix(s, &o->size, sizeof(o->size));
    mix(s, o->etag, strlen(o->etag));
    mix(s, &o->last_modified, sizeof(o->last_modified));
    return 0;
}

static int on_prefix(void *ctx, const char *p, size_t len, err_t *err)
{
    struct seen *s = ctx;
    (void)err;
    if (strlen(p) != len)
        abort();
    s->prefixes++;
    mix(s, p, len);
    return 0;
}

static bool one_line(const err_t *err)
{
    return err->msg[0] != '\0' && strchr(err->msg, '\n') == NULL;
}

/* Parses the input as a listing in chunks of `chunk` bytes (0: whole). */
static int list(const uint8_t *data, size_t size, size_t chunk, struct seen *s, err_t *err)
{
    struct s3xml_list_opts o = {1 << 20, on_object, on_prefix, s, NULL};
    struct s3xml *x = NULL;
    int rc = s3xml_list_new(&o, &x, err);
    for (size_t off = 0; rc == 0 && off < size;) {
        size_t n = chunk == 0 || size - off < chunk ? size - off : chunk;
        rc = s3xml_feed(x, data + off, n, err);
        off += n;
    }
    if (rc == 0)
        rc = s3xml_finish(x, err);
    if (rc == 0) {
        const struct s3xml_list_page *pg = s3xml_list_page(x);
        if (pg == NULL || pg->objects != s->objects || pg->prefixes != s->prefixes ||
            (pg->is_truncated && pg->next_continuation_token[0] == '\0'))
            abort();
        mix(s, pg->prefix, strlen(pg->prefix));
        mix(s, pg->next_continuation_token, strlen(pg->next_continuation_token));
    } else if (!one_line(err) || s3xml_list_page(x) != NULL) {
        abort();
    }
    s3xml_free(x);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct seen whole = {14695981039346656037ull, 0, 0};
    struct seen parts = whole;
    err_t e1 = {0}, e2 = {0};
    size_t chunk = size ? 1 + data[0] % 13 : 1;
    int r1 = list(data, size, 0, &whole, &e1);
    int r2 = list(data, size, chunk, &parts, &e2);
    if (r1 != r2 || whole.hash != parts.hash || whole.objects != parts.objects)
        abort();

    struct s3xml_error doc;
    err_t err = {0};
    int rc = s3xml_error_parse(data, size, 0, &doc, &err);
    err_t line = {0};
    if (rc == 0) {
        bool retry;
        int e = aws_error_errno(503, doc.code, &retry);
        if (e <= 0 || s3xml_error_report(&line, 403, &doc, "bucket", NULL) <= 0)
            abort();
    } else {
        if (!one_line(&err))
            abort();
        s3xml_error_report(&line, 404, NULL, "bucket", "key");
    }
    if (!one_line(&line))
        abort();
    return 0;
}
