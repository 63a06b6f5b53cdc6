/* bencode.h — a strict bencode decoder that keeps every value's byte span (so an info-hash is
 * taken over the bytes as stored), and a small encoder writing into a struct buf. */
#ifndef S3TORRENT_BENCODE_H
#define S3TORRENT_BENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3torrent/buf.h"
#include "s3torrent/err.h"

enum bencode_type { BENCODE_INT = 1, BENCODE_STR, BENCODE_LIST, BENCODE_DICT };

/* One decoded value. Containers are followed by their children in document order; `next` is
 * the index of the first node after the whole subtree. */
struct bencode_node {
    enum bencode_type type;
    uint32_t next;
    size_t start, end; /* the value's bytes: buf[start, end) */
    int64_t ival;      /* BENCODE_INT */
    size_t sstart;     /* BENCODE_STR: payload offset */
    size_t slen;       /* BENCODE_STR: payload length */
};

struct bencode_doc {
    const uint8_t *buf; /* borrowed: the caller keeps the input alive */
    size_t len;
    struct bencode_node *nodes; /* owned; nodes[0] is the root */
    size_t count;
};

struct bencode_limits {
    unsigned max_depth; /* nesting of lists and dicts; libtorrent's default is 100 */
    size_t max_tokens;  /* number of values; libtorrent's default is 2,000,000 */
};

#define BENCODE_DEFAULT_LIMITS                                                                     \
    {                                                                                              \
        100, 2000000                                                                               \
    }

/* Decodes buf[0, len) as exactly one canonical value: sorted unique dict keys, no leading
 * zeros, no -0, int64 range, no trailing bytes. lim may be NULL for the defaults.
 * Returns 0 or EINVAL/E2BIG/ENOMEM with err naming the offset; on success the caller frees
 * doc with bencode_doc_free. */
int bencode_decode(const uint8_t *buf, size_t len, const struct bencode_limits *lim,
                   struct bencode_doc *doc, err_t *err);
void bencode_doc_free(struct bencode_doc *doc);

/* The value stored under key in dict node d, or NULL. */
const struct bencode_node *bencode_dict_get(const struct bencode_doc *doc,
                                            const struct bencode_node *d, const char *key);
/* Iteration over a list's items or a dict's keys and values alike: the first child of c, and
 * the sibling after n inside c; both return NULL at the end. */
const struct bencode_node *bencode_child(const struct bencode_doc *doc,
                                         const struct bencode_node *c);
const struct bencode_node *bencode_sibling(const struct bencode_doc *doc,
                                           const struct bencode_node *c,
                                           const struct bencode_node *n);
/* The payload of a string node (not NUL-terminated). */
static inline const uint8_t *bencode_str(const struct bencode_doc *doc,
                                         const struct bencode_node *n)
{
    return doc->buf + n->sstart;
}
/* True when n is a string equal to the C string s. */
bool bencode_str_eq(const struct bencode_doc *doc, const struct bencode_node *n, const char *s);

/* Encoder: each appends one value (or a dict/list delimiter) to b. The caller writes dict keys
 * in sorted order. They return b's sticky error. */
int bencode_put_int(struct buf *b, int64_t v);
int bencode_put_str(struct buf *b, const void *p, size_t n);
int bencode_put_cstr(struct buf *b, const char *s);
int bencode_begin_dict(struct buf *b);
int bencode_begin_list(struct buf *b);
int bencode_end(struct buf *b);

#endif
