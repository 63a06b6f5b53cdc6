/* bencode.c — strict, span-keeping bencode decoding (BEP 3, with BEP 52's canonical rules) and
 * encoding. The decoder is iterative with a bounded stack, so hostile nesting cannot overflow. */
#include "s3torrent/bencode.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct frame {
    size_t node;      /* index of the open container */
    bool dict;        /* dicts alternate key and value */
    bool want_key;    /* dict: the next value is a key */
    size_t key_start; /* dict: previous key payload, for the ordering check */
    size_t key_len;
    bool has_key;
};

static int push_node(struct bencode_doc *doc, size_t *cap, size_t max_tokens, size_t at, err_t *err)
{
    if (doc->count >= max_tokens)
        return err_set(err, E2BIG, "too many bencode values (limit %zu) at offset %zu", max_tokens,
                       at);
    if (doc->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        if (ncap > max_tokens)
            ncap = max_tokens;
        struct bencode_node *n = realloc(doc->nodes, ncap * sizeof(*n));
        if (n == NULL)
            return err_set(err, ENOMEM, "out of memory decoding bencode");
        doc->nodes = n;
        *cap = ncap;
    }
    memset(&doc->nodes[doc->count], 0, sizeof(doc->nodes[0]));
    doc->nodes[doc->count].start = at;
    doc->count++;
    return 0;
}

/* Parses decimal digits at buf[*pos] up to the terminator; canonical form only. */
static int parse_uint(const uint8_t *buf, size_t len, size_t *pos, uint8_t term, uint64_t limit,
                      uint64_t *out, err_t *err)
{
    size_t p = *pos, first = p;
    uint64_t v = 0;
    while (p < len && buf[p] >= '0' && buf[p] <= '9') {
        unsigned d = buf[p] - '0';
        if (v > (limit - d) / 10)
            return err_set(err, EINVAL, "number too large at offset %zu", first);
        v = v * 10 + d;
        p++;
    }
    if (p == first)
        return err_set(err, EINVAL, "expected a digit at offset %zu", p);
    if (p >= len)
        return err_set(err, EINVAL, "unexpected end of data at offset %zu", p);
    if (buf[p] != term)
        return err_set(err, EINVAL, "expected '%c' at offset %zu", term, p);
    if (buf[first] == '0' && p - first > 1)
        return err_set(err, EINVAL, "leading zero at offset %zu", first);
    *pos = p + 1;
    *out = v;
    return 0;
}

static int key_cmp(const uint8_t *buf, size_t a, size_t alen, size_t b, size_t blen)
{
    int c = memcmp(buf + a, buf + b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

int bencode_decode(const uint8_t *buf, size_t len, const struct bencode_limits *lim,
                   struct bencode_doc *doc, err_t *err)
{
    struct bencode_limits def = BENCODE_DEFAULT_LIMITS;
    if (lim == NULL)
        lim = &def;
    unsigned max_depth = lim->max_depth > 1000 ? 1000 : lim->max_depth;
    struct frame *stack = calloc(max_depth + 1, sizeof(*stack));
    size_t depth = 0, pos = 0, cap = 0;
    int rc = 0;

    memset(doc, 0, sizeof(*doc));
    doc->buf = buf;
    doc->len = len;
    if (stack == NULL)
        return err_set(err, ENOMEM, "out of memory decoding bencode");
    if (len == 0) {
        rc = err_set(err, EINVAL, "empty input");
        goto out;
    }

    do {
        if (pos >= len) {
            rc = err_set(err, EINVAL, "unexpected end of data at offset %zu", pos);
            goto out;
        }
        struct frame *top = depth ? &stack[depth - 1] : NULL;
        if (buf[pos] == 'e') {
            if (top == NULL) {
                rc = err_set(err, EINVAL, "unexpected 'e' at offset %zu", pos);
                goto out;
            }
            if (top->dict && !top->want_key) {
                rc = err_set(err, EINVAL, "dictionary key without a value at offset %zu", pos);
                goto out;
            }
            pos++;
            doc->nodes[top->node].end = pos;
            doc->nodes[top->node].next = (uint32_t)doc->count;
            depth--;
            continue;
        }
        bool is_key = top && top->dict && top->want_key;
        if (is_key && !(buf[pos] >= '0' && buf[pos] <= '9')) {
            rc = err_set(err, EINVAL, "dictionary key is not a string at offset %zu", pos);
            goto out;
        }
        if ((rc = push_node(doc, &cap, lim->max_tokens, pos, err)))
            goto out;
        size_t idx = doc->count - 1;
        struct bencode_node *n = &doc->nodes[idx];
        uint8_t c = buf[pos];
        if (c == 'i') {
            size_t p = pos + 1;
            bool neg = p < len && buf[p] == '-';
            uint64_t v;
            if (neg)
                p++;
            if ((rc = parse_uint(buf, len, &p, 'e', neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX, &v,
                                 err)))
                goto out;
            if (neg && v == 0) {
                rc = err_set(err, EINVAL, "negative zero at offset %zu", pos);
                goto out;
            }
            n->type = BENCODE_INT;
            n->ival = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
            pos = p;
        } else if (c >= '0' && c <= '9') {
            size_t p = pos;
            uint64_t slen;
            if ((rc = parse_uint(buf, len, &p, ':', UINT64_MAX, &slen, err)))
                goto out;
            if (slen > len - p) {
                rc = err_set(err, EINVAL,
                             "string of %" PRIu64 " bytes runs past the end at offset %zu", slen,
                             pos);
                goto out;
            }
            n->type = BENCODE_STR;
            n->sstart = p;
            n->slen = (size_t)slen;
            pos = p + (size_t)slen;
            if (is_key) {
                if (top->has_key &&
                    key_cmp(buf, top->key_start, top->key_len, n->sstart, n->slen) >= 0) {
                    bool dup = top->key_len == n->slen &&
                               memcmp(buf + top->key_start, buf + n->sstart, n->slen) == 0;
                    rc = err_set(err, EINVAL, "%s dictionary key at offset %zu",
                                 dup ? "duplicate" : "unsorted", n->start);
                    goto out;
                }
                top->key_start = n->sstart;
                top->key_len = n->slen;
                top->has_key = true;
            }
        } else if (c == 'l' || c == 'd') {
            if (depth >= max_depth) {
                rc = err_set(err, EINVAL, "nesting deeper than %u at offset %zu", max_depth, pos);
                goto out;
            }
            n->type = c == 'l' ? BENCODE_LIST : BENCODE_DICT;
            stack[depth] = (struct frame){.node = idx, .dict = c == 'd', .want_key = true};
            pos++;
        } else {
            rc = err_set(err, EINVAL, "unexpected byte 0x%02x at offset %zu", c, pos);
            goto out;
        }
        if (n->type == BENCODE_INT || n->type == BENCODE_STR) {
            n->end = pos;
            n->next = (uint32_t)doc->count;
        }
        if (top && top->dict)
            top->want_key = !top->want_key;
        /* a container just opened sits on the stack above top */
        if (n->type == BENCODE_LIST || n->type == BENCODE_DICT)
            depth++;
    } while (depth > 0);

    if (pos != len)
        rc = err_set(err, EINVAL, "trailing data at offset %zu", pos);
out:
    free(stack);
    if (rc)
        bencode_doc_free(doc);
    return rc;
}

void bencode_doc_free(struct bencode_doc *doc)
{
    free(doc->nodes);
    doc->nodes = NULL;
    doc->count = 0;
}

const struct bencode_node *bencode_child(const struct bencode_doc *doc,
                                         const struct bencode_node *c)
{
    if (c == NULL || (c->type != BENCODE_LIST && c->type != BENCODE_DICT))
        return NULL;
    size_t i = (size_t)(c - doc->nodes) + 1;
    return i < c->next ? &doc->nodes[i] : NULL;
}

const struct bencode_node *bencode_sibling(const struct bencode_doc *doc,
                                           const struct bencode_node *c,
                                           const struct bencode_node *n)
{
    (void)doc;
    return n->next < c->next ? &doc->nodes[n->next] : NULL;
}

bool bencode_str_eq(const struct bencode_doc *doc, const struct bencode_node *n, const char *s)
{
    size_t l = strlen(s);
    return n != NULL && n->type == BENCODE_STR && n->slen == l &&
           memcmp(doc->buf + n->sstart, s, l) == 0;
}

const struct bencode_node *bencode_dict_get(const struct bencode_doc *doc,
                                            const struct bencode_node *d, const char *key)
{
    if (d == NULL || d->type != BENCODE_DICT)
        return NULL;
    for (const struct bencode_node *k = bencode_child(doc, d); k != NULL;) {
        const struct bencode_node *v = bencode_sibling(doc, d, k);
        if (v == NULL)
            return NULL;
        if (bencode_str_eq(doc, k, key))
            return v;
        k = bencode_sibling(doc, d, v);
    }
    return NULL;
}

int bencode_put_int(struct buf *b, int64_t v)
{
    return buf_printf(b, "i%" PRId64 "e", v);
}

int bencode_put_str(struct buf *b, const void *p, size_t n)
{
    buf_printf(b, "%zu:", n);
    return buf_put(b, p, n);
}

int bencode_put_cstr(struct buf *b, const char *s)
{
    return bencode_put_str(b, s, strlen(s));
}

int bencode_begin_dict(struct buf *b)
{
    return buf_put(b, "d", 1);
}

int bencode_begin_list(struct buf *b)
{
    return buf_put(b, "l", 1);
}

int bencode_end(struct buf *b)
{
    return buf_put(b, "e", 1);
}
