/* s3xml.c — S3 XML bodies parsed with expat as they stream in: ListObjectsV2 pages delivered
 * entry by entry, error documents, and the HTTP status / S3 error code -> errno mapping. */
#include "s3torrent/s3xml.h"

#include <errno.h>
#include <expat.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/aws.h"
#include "s3torrent/buf.h"
#include "s3torrent/uri.h"
#include "s3torrent/util.h"

enum kind { KIND_LIST, KIND_ERROR };

/*
 * XML 1.0 forbids character references to C0 controls (but tab, LF, CR) and to U+FFFE/U+FFFF,
 * and expat refuses them; yet S3 writes such references for keys holding those bytes, RGW
 * for its NextContinuationToken (the raw last key), and s3rver writes the bytes themselves.
 * Before expat sees the body, each such reference or byte becomes two characters of Unicode's last
 * private-use plane: MARK (U+10FFFD), then U+10FF00 + code (codes 0..0x1F; 0x20 for U+FFFE, 0x21
 * for U+FFFF). A MARK the document itself holds, literally or as a reference, becomes MARK MARK.
 * commit_field undoes both, so every key comes through exactly as stored.
 */
#define MARK_UTF8     "\xf4\x8f\xbf\xbd" /* U+10FFFD */
#define MARK_REF      "&#x10FFFD;"
#define MARK_BASE     0x10FF00u
#define FILTER_SLICE  4096u /* input bytes filtered per expat call */
#define RAW_EXPANSION 8u    /* one byte of a field grows to at most 8 (two marks) */
/* one input byte grows to at most two references (a control byte: MARK_REF, then its own) */
#define FILTER_EXPANSION (2u * (sizeof(MARK_REF) - 1))
/* the filter's output for one slice: its bytes, a reference held back from the slice before
 * (flushed by the first byte), and sprintf's NUL after the last reference */
#define FILTER_OUT    ((FILTER_SLICE + 1) * FILTER_EXPANSION + 1)
#define RAW_MAX       (S3XML_KEY_MAX * RAW_EXPANSION)

/* What the element at a given depth is, as far as text collection is concerned. */
enum scope { SC_NONE, SC_LIST, SC_CONTENTS, SC_CPREFIX, SC_ERROR };

enum field {
    F_NONE,
    F_NAME,
    F_PREFIX,
    F_DELIMITER,
    F_START_AFTER,
    F_ENCODING,
    F_TRUNCATED,
    F_CONT,
    F_NEXT,
    F_KEY_COUNT,
    F_MAX_KEYS,
    F_C_KEY,
    F_C_SIZE,
    F_C_ETAG,
    F_C_MTIME,
    F_C_CLASS,
    F_P_PREFIX,
    F_E_CODE,
    F_E_MESSAGE,
    F_E_REQUEST_ID,
    F_E_HOST_ID,
    F_E_KEY,
    F_E_BUCKET,
    F_E_RESOURCE,
    F_E_SERVER_TIME,
    F_E_REQUEST_TIME,
    F_COUNT
};

/* The text fields we keep: where they sit, and how many bytes of text each may have. A listing
 * field over its cap fails the parse (a cut key is a wrong key); an error-document field is cut,
 * since it only informs. */
static const struct fieldspec {
    enum scope scope;
    const char *name;
    size_t cap;
} fields[F_COUNT] = {
    [F_NAME] = {SC_LIST, "Name", 255},
    [F_PREFIX] = {SC_LIST, "Prefix", S3XML_KEY_MAX},
    [F_DELIMITER] = {SC_LIST, "Delimiter", S3XML_KEY_MAX},
    [F_START_AFTER] = {SC_LIST, "StartAfter", S3XML_KEY_MAX},
    [F_ENCODING] = {SC_LIST, "EncodingType", 15},
    [F_TRUNCATED] = {SC_LIST, "IsTruncated", 15},
    [F_CONT] = {SC_LIST, "ContinuationToken", S3XML_KEY_MAX},
    [F_NEXT] = {SC_LIST, "NextContinuationToken", S3XML_KEY_MAX},
    [F_KEY_COUNT] = {SC_LIST, "KeyCount", 31},
    [F_MAX_KEYS] = {SC_LIST, "MaxKeys", 31},
    [F_C_KEY] = {SC_CONTENTS, "Key", S3XML_KEY_MAX},
    [F_C_SIZE] = {SC_CONTENTS, "Size", 31},
    [F_C_ETAG] = {SC_CONTENTS, "ETag", 255},
    [F_C_MTIME] = {SC_CONTENTS, "LastModified", 63},
    [F_C_CLASS] = {SC_CONTENTS, "StorageClass", 63},
    [F_P_PREFIX] = {SC_CPREFIX, "Prefix", S3XML_KEY_MAX},
    [F_E_CODE] = {SC_ERROR, "Code", sizeof(((struct s3xml_error *)0)->code) - 1},
    [F_E_MESSAGE] = {SC_ERROR, "Message", sizeof(((struct s3xml_error *)0)->message) - 1},
    [F_E_REQUEST_ID] = {SC_ERROR, "RequestId", sizeof(((struct s3xml_error *)0)->request_id) - 1},
    [F_E_HOST_ID] = {SC_ERROR, "HostId", sizeof(((struct s3xml_error *)0)->host_id) - 1},
    [F_E_KEY] = {SC_ERROR, "Key", sizeof(((struct s3xml_error *)0)->key) - 1},
    [F_E_BUCKET] = {SC_ERROR, "BucketName", sizeof(((struct s3xml_error *)0)->bucket_name) - 1},
    [F_E_RESOURCE] = {SC_ERROR, "Resource", sizeof(((struct s3xml_error *)0)->resource) - 1},
    [F_E_SERVER_TIME] = {SC_ERROR, "ServerTime",
                         sizeof(((struct s3xml_error *)0)->server_time) - 1},
    [F_E_REQUEST_TIME] = {SC_ERROR, "RequestTime",
                          sizeof(((struct s3xml_error *)0)->request_time) - 1},
};

/* A <Contents> or <CommonPrefixes> waiting for the encoding to be known; its strings follow it
 * in the hold buffer, each NUL-terminated. */
struct held {
    uint8_t is_prefix;
    uint32_t parts;
    uint64_t size;
    int64_t mtime;
    size_t key_len, etag_len, class_len;
};

struct s3xml {
    enum kind kind;
    XML_Parser p;
    size_t max_bytes, fed, hold_max;
    int rc;  /* sticky first error */
    err_t e; /* its message */
    bool in_parse, finished;
    unsigned depth, field_depth;
    enum scope scope[S3XML_MAX_DEPTH + 1];
    enum field field;       /* the text field being collected, or F_NONE */
    uint64_t seen;          /* fields met in the current scope: a repeat is an error in a listing */
    char text[RAW_MAX + 1]; /* a field's text as expat gave it (marks not yet undone) */
    size_t text_len;
    /* the reference filter (see refs_feed): bytes of a possible reference or mark held back
     * until the next byte tells, and the filtered output on its way to expat */
    char pend[16];
    size_t pend_len;
    char *out; /* FILTER_OUT bytes, an allocation of its own so that a sanitizer sees its end */
    char dec[S3XML_KEY_MAX + 1]; /* a key, decoded for delivery */

    /* listing */
    struct s3xml_list_opts opts;
    bool enc_known, url;
    char name[256], encoding[16];
    char prefix[S3XML_KEY_MAX + 1], delimiter[S3XML_KEY_MAX + 1], start_after[S3XML_KEY_MAX + 1];
    char cont[S3XML_KEY_MAX + 1], next[S3XML_KEY_MAX + 1];
    bool truncated, has_key_count;
    uint64_t key_count, max_keys;
    struct {
        char key[S3XML_KEY_MAX + 1];
        size_t key_len;
        uint64_t size;
        char etag[256];
        uint32_t parts;
        int64_t mtime;
        char sclass[64];
    } cur;
    struct buf held;
    struct s3xml_list_page page;

    /* error document */
    struct s3xml_error doc;
};

#define BIT(f) (1ull << (f))

static void fail(struct s3xml *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error and stops expat when inside XML_Parse. */
static void fail(struct s3xml *x, int code, const char *fmt, ...)
{
    if (x->rc != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->e.msg, sizeof(x->e.msg), fmt, ap);
    va_end(ap);
    x->e.code = code;
    x->rc = code;
    if (x->in_parse)
        XML_StopParser(x->p, XML_FALSE);
}

/* Strict unsigned decimal: digits only, no sign, no blanks. */
static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* The N of a multipart ETag "<md5>-N", else 0. */
static uint32_t etag_parts(const char *etag)
{
    const char *dash = strrchr(etag, '-');
    uint64_t n;
    if (dash == NULL || strlen(dash + 1) > 10 || parse_u64(dash + 1, &n) != 0 || n == 0 ||
        n > UINT32_MAX)
        return 0;
    return (uint32_t)n;
}

/* Hands one entry (raw key as received) to the caller's callback, decoding it first when the
 * listing is URL-encoded. */
static int deliver(struct s3xml *x, bool is_prefix, const char *raw, size_t raw_len, uint64_t size,
                   const char *etag, uint32_t parts, int64_t mtime, const char *sclass)
{
    size_t len = raw_len;
    err_t sub = {0};
    if (x->url) {
        if (uri_decode_to(raw, raw_len, true, x->dec, &len, &sub) != 0) {
            char shown[160];
            util_escape(shown, sizeof(shown), raw, 100);
            fail(x, EPROTO, "listing %s '%s': %s", is_prefix ? "CommonPrefixes/Prefix" : "Key",
                 shown, sub.msg);
            return x->rc;
        }
    } else {
        memcpy(x->dec, raw, raw_len + 1);
    }
    int rc = 0;
    if (is_prefix) {
        x->page.prefixes++;
        if (x->opts.on_prefix)
            rc = x->opts.on_prefix(x->opts.ctx, x->dec, len, &sub);
    } else {
        x->page.objects++;
        struct s3xml_object o = {x->dec, len, size, etag, parts, mtime, sclass};
        if (x->opts.on_object)
            rc = x->opts.on_object(x->opts.ctx, &o, &sub);
    }
    if (rc != 0) {
        if (sub.msg[0] == '\0')
            fail(x, rc, "listing callback failed: %s", strerror(rc));
        else
            fail(x, rc, "%s", sub.msg);
    }
    return x->rc;
}

/* Delivers the entries held while the encoding was unknown, then empties the hold. */
static int flush_held(struct s3xml *x)
{
    size_t off = 0;
    while (off < x->held.len && x->rc == 0) {
        struct held h;
        memcpy(&h, x->held.data + off, sizeof(h));
        off += sizeof(h);
        const char *key = (const char *)x->held.data + off;
        off += h.key_len + 1;
        const char *etag = (const char *)x->held.data + off;
        off += h.etag_len + 1;
        const char *sclass = (const char *)x->held.data + off;
        off += h.class_len + 1;
        deliver(x, h.is_prefix, key, h.key_len, h.size, etag, h.parts, h.mtime, sclass);
    }
    buf_free(&x->held);
    buf_init(&x->held, x->hold_max);
    return x->rc;
}

static void hold(struct s3xml *x, bool is_prefix)
{
    struct held h = {is_prefix,
                     x->cur.parts,
                     x->cur.size,
                     x->cur.mtime,
                     x->cur.key_len,
                     is_prefix ? 0 : strlen(x->cur.etag),
                     is_prefix ? 0 : strlen(x->cur.sclass)};
    buf_put(&x->held, &h, sizeof(h));
    buf_put(&x->held, x->cur.key, h.key_len + 1);
    buf_put(&x->held, is_prefix ? "" : x->cur.etag, h.etag_len + 1);
    buf_put(&x->held, is_prefix ? "" : x->cur.sclass, h.class_len + 1);
    if (x->held.err != 0)
        fail(x, x->held.err, "cannot hold listing entries until the encoding is known: %s",
             strerror(x->held.err));
}

static void end_entry(struct s3xml *x, bool is_prefix)
{
    if (is_prefix ? !(x->seen & BIT(F_P_PREFIX)) : !(x->seen & BIT(F_C_KEY))) {
        fail(x, EPROTO, "listing has a <%s> without a <%s>",
             is_prefix ? "CommonPrefixes" : "Contents", is_prefix ? "Prefix" : "Key");
        return;
    }
    if (!is_prefix && !(x->seen & BIT(F_C_SIZE))) {
        fail(x, EPROTO, "listing has a <Contents> without a <Size>");
        return;
    }
    if (x->enc_known)
        deliver(x, is_prefix, x->cur.key, x->cur.key_len, x->cur.size, x->cur.etag, x->cur.parts,
                x->cur.mtime, x->cur.sclass);
    else
        hold(x, is_prefix);
}

static void copy_text(char *dst, size_t dstsz, const char *s, size_t len)
{
    if (len >= dstsz)
        len = dstsz - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

/* Undoes the reference filter's marks in the field's text, in place, then applies the field's
 * cap: a listing field over it fails the parse (a cut key is a wrong key), an error-document
 * field is cut on a UTF-8 boundary. Sets *len; returns 0 or the sticky error. */
static int unmark(struct s3xml *x, size_t *len)
{
    char *t = x->text;
    size_t n = x->text_len, o = 0;
    for (size_t i = 0; i < n;) {
        if (n - i < 4 || memcmp(t + i, MARK_UTF8, 4) != 0) {
            t[o++] = t[i++];
            continue;
        }
        const unsigned char *c = (const unsigned char *)t + i + 4;
        unsigned code = n - i >= 8 && c[0] == 0xf4 && c[1] == 0x8f
                            ? ((unsigned)(c[2] & 0x3f) << 6 | (c[3] & 0x3f)) + 0x10f000u
                            : 0;
        if (code == 0x10fffdu) {
            memcpy(t + o, MARK_UTF8, 4);
            o += 4;
        } else if (code >= MARK_BASE && code <= MARK_BASE + 0x21) {
            unsigned v = code - MARK_BASE;
            if (v == 0) {
                fail(x, EPROTO, "%s has a <%s> holding a NUL character",
                     x->kind == KIND_LIST ? "listing" : "error document", fields[x->field].name);
                return x->rc;
            }
            if (v < 0x20) {
                t[o++] = (char)v;
            } else { /* U+FFFE, U+FFFF */
                memcpy(t + o, v == 0x20 ? "\xef\xbf\xbe" : "\xef\xbf\xbf", 3);
                o += 3;
            }
        } else if (x->kind == KIND_LIST) {
            fail(x, EPROTO, "listing has a <%s> with a stray U+10FFFD", fields[x->field].name);
            return x->rc;
        } else { /* an error document's field was cut inside a pair: drop the lone mark */
            break;
        }
        i += 8;
    }
    size_t cap = fields[x->field].cap;
    if (o > cap) {
        if (x->kind == KIND_LIST) {
            fail(x, EPROTO, "listing has a <%s> longer than %zu bytes", fields[x->field].name, cap);
            return x->rc;
        }
        o = cap;
        while (o > 0 && ((unsigned char)t[o] & 0xc0) == 0x80)
            o--;
    }
    t[o] = '\0';
    *len = o;
    return 0;
}

/* A text field's element has ended: check and store its text. */
static void commit_field(struct s3xml *x)
{
    enum field f = x->field;
    const char *t = x->text;
    size_t n = 0;
    if (unmark(x, &n) != 0)
        return;
    switch (f) {
    case F_NAME:
        copy_text(x->name, sizeof(x->name), t, n);
        break;
    case F_PREFIX:
        copy_text(x->prefix, sizeof(x->prefix), t, n);
        break;
    case F_DELIMITER:
        copy_text(x->delimiter, sizeof(x->delimiter), t, n);
        break;
    case F_START_AFTER:
        copy_text(x->start_after, sizeof(x->start_after), t, n);
        break;
    case F_ENCODING:
        if (strcmp(t, "url") != 0) {
            char shown[64];
            util_escape(shown, sizeof(shown), t, 16);
            fail(x, EPROTO, "listing has an unsupported EncodingType '%s'", shown);
            return;
        }
        copy_text(x->encoding, sizeof(x->encoding), t, n);
        x->enc_known = true;
        x->url = true;
        flush_held(x);
        break;
    case F_TRUNCATED:
        if (strcmp(t, "true") != 0 && strcmp(t, "false") != 0) {
            fail(x, EPROTO, "listing has a bad IsTruncated (neither true nor false)");
            return;
        }
        x->truncated = t[0] == 't';
        break;
    case F_CONT:
        copy_text(x->cont, sizeof(x->cont), t, n);
        break;
    case F_NEXT:
        copy_text(x->next, sizeof(x->next), t, n);
        break;
    case F_KEY_COUNT:
    case F_MAX_KEYS:
        if (parse_u64(t, f == F_KEY_COUNT ? &x->key_count : &x->max_keys) != 0) {
            fail(x, EPROTO, "listing has a bad %s (not a number)", fields[f].name);
            return;
        }
        x->has_key_count |= f == F_KEY_COUNT;
        break;
    case F_C_KEY:
    case F_P_PREFIX:
        if (n == 0 && f == F_C_KEY) {
            fail(x, EPROTO, "listing has an empty <Key>");
            return;
        }
        copy_text(x->cur.key, sizeof(x->cur.key), t, n);
        x->cur.key_len = n;
        break;
    case F_C_SIZE:
        if (parse_u64(t, &x->cur.size) != 0) {
            fail(x, EPROTO, "listing has a bad <Size> (not a number)");
            return;
        }
        break;
    case F_C_ETAG:
        if (n >= 2 && t[0] == '"' && t[n - 1] == '"') {
            t++;
            n -= 2;
        }
        copy_text(x->cur.etag, sizeof(x->cur.etag), t, n);
        x->cur.parts = etag_parts(x->cur.etag);
        break;
    case F_C_MTIME:
        if (util_iso8601(t, &x->cur.mtime) != 0) {
            char shown[96];
            util_escape(shown, sizeof(shown), t, 64);
            fail(x, EPROTO, "listing has a bad <LastModified> '%s'", shown);
            return;
        }
        break;
    case F_C_CLASS:
        copy_text(x->cur.sclass, sizeof(x->cur.sclass), t, n);
        break;
    case F_E_CODE:
        copy_text(x->doc.code, sizeof(x->doc.code), t, n);
        break;
    case F_E_MESSAGE:
        copy_text(x->doc.message, sizeof(x->doc.message), t, n);
        break;
    case F_E_REQUEST_ID:
        copy_text(x->doc.request_id, sizeof(x->doc.request_id), t, n);
        break;
    case F_E_HOST_ID:
        copy_text(x->doc.host_id, sizeof(x->doc.host_id), t, n);
        break;
    case F_E_KEY:
        copy_text(x->doc.key, sizeof(x->doc.key), t, n);
        break;
    case F_E_BUCKET:
        copy_text(x->doc.bucket_name, sizeof(x->doc.bucket_name), t, n);
        break;
    case F_E_RESOURCE:
        copy_text(x->doc.resource, sizeof(x->doc.resource), t, n);
        break;
    case F_E_SERVER_TIME:
        copy_text(x->doc.server_time, sizeof(x->doc.server_time), t, n);
        if (util_iso8601(x->doc.server_time, &x->doc.server_time_unix) != 0)
            x->doc.server_time_unix = 0;
        break;
    case F_E_REQUEST_TIME:
        copy_text(x->doc.request_time, sizeof(x->doc.request_time), t, n);
        if (util_iso8601(x->doc.request_time, &x->doc.request_time_unix) != 0)
            x->doc.request_time_unix = 0;
        break;
    case F_NONE:
    case F_COUNT:
        break;
    }
}

/* The name without any namespace prefix ("s3:Key" -> "Key"); namespace URIs are not checked:
 * S3-compatible servers disagree on them. */
static const char *local_name(const char *name)
{
    const char *c = strrchr(name, ':');
    return c ? c + 1 : name;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    struct s3xml *x = ud;
    (void)attrs;
    if (x->rc != 0)
        return;
    if (x->depth + 1 > S3XML_MAX_DEPTH) {
        fail(x, EPROTO, "XML nested deeper than %d elements", S3XML_MAX_DEPTH);
        return;
    }
    unsigned d = ++x->depth;
    const char *local = local_name(name);
    x->scope[d] = SC_NONE;
    if (d == 1) {
        const char *want = x->kind == KIND_LIST ? "ListBucketResult" : "Error";
        if (strcmp(local, want) != 0) {
            char shown[96];
            util_escape(shown, sizeof(shown), local, 64);
            fail(x, EPROTO, "expected an S3 <%s> document, got <%s>", want, shown);
            return;
        }
        x->scope[d] = x->kind == KIND_LIST ? SC_LIST : SC_ERROR;
        return;
    }
    enum scope parent = x->scope[d - 1];
    if (x->field != F_NONE || parent == SC_NONE)
        return; /* inside a text field, or an element we ignore */
    if (parent == SC_LIST && strcmp(local, "Contents") == 0) {
        x->scope[d] = SC_CONTENTS;
    } else if (parent == SC_LIST && strcmp(local, "CommonPrefixes") == 0) {
        x->scope[d] = SC_CPREFIX;
    } else {
        for (enum field f = F_NAME; f < F_COUNT; f++) {
            if (fields[f].scope != parent || strcmp(fields[f].name, local) != 0)
                continue;
            if (x->kind == KIND_LIST && (x->seen & BIT(f))) {
                fail(x, EPROTO, "listing has two <%s> in one <%s>", local,
                     parent == SC_LIST       ? "ListBucketResult"
                     : parent == SC_CONTENTS ? "Contents"
                                             : "CommonPrefixes");
                return;
            }
            x->seen |= BIT(f);
            x->field = f;
            x->field_depth = d;
            x->text_len = 0;
            return;
        }
        return;
    }
    /* a new entry: forget the previous one's fields */
    for (enum field f = F_C_KEY; f <= F_P_PREFIX; f++)
        x->seen &= ~BIT(f);
    memset(&x->cur, 0, sizeof(x->cur));
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    struct s3xml *x = ud;
    (void)name;
    if (x->rc != 0 || x->depth == 0)
        return;
    unsigned d = x->depth;
    if (x->field != F_NONE && d == x->field_depth) {
        commit_field(x);
        x->field = F_NONE;
    } else if (x->scope[d] == SC_CONTENTS || x->scope[d] == SC_CPREFIX) {
        end_entry(x, x->scope[d] == SC_CPREFIX);
    }
    x->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    struct s3xml *x = ud;
    if (x->rc != 0 || x->field == F_NONE || x->depth != x->field_depth || len <= 0)
        return;
    size_t cap = fields[x->field].cap * RAW_EXPANSION, n = (size_t)len;
    if (x->text_len + n > cap) {
        if (x->kind == KIND_LIST) {
            fail(x, EPROTO, "listing has a <%s> longer than %zu bytes", fields[x->field].name,
                 fields[x->field].cap);
            return;
        }
        n = cap - x->text_len;
        /* cut on a UTF-8 character boundary */
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(x->text + x->text_len, s, n);
    x->text_len += n;
}

/* S3 never sends a DTD: refusing every DOCTYPE and entity declaration is the whole defence
 * against entity expansion (billion laughs) and external entities. */
static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    struct s3xml *x = ud;
    (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
    fail(x, EPROTO, "XML with a DOCTYPE refused (S3 never sends one)");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                              int value_len, const XML_Char *base, const XML_Char *sysid,
                              const XML_Char *pubid, const XML_Char *notation)
{
    struct s3xml *x = ud;
    (void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid, (void)pubid,
        (void)notation;
    fail(x, EPROTO, "XML entity declaration refused");
}

static int create(enum kind kind, size_t max_bytes, struct s3xml **out, err_t *err)
{
    struct s3xml *x = calloc(1, sizeof(*x));
    if (x == NULL)
        goto nomem;
    if ((x->out = malloc(FILTER_OUT)) == NULL)
        goto nomem;
    x->kind = kind;
    x->max_bytes = max_bytes;
    /* a held entry takes a few bytes more than its XML at worst */
    x->hold_max = max_bytes > SIZE_MAX / 2 ? SIZE_MAX : 2 * max_bytes;
    buf_init(&x->held, x->hold_max);
    x->p = XML_ParserCreate(NULL);
    if (x->p == NULL)
        goto nomem;
    XML_SetUserData(x->p, x);
    XML_SetElementHandler(x->p, on_start, on_end);
    XML_SetCharacterDataHandler(x->p, on_text);
    XML_SetStartDoctypeDeclHandler(x->p, on_doctype);
    XML_SetEntityDeclHandler(x->p, on_entity);
    XML_SetParamEntityParsing(x->p, XML_PARAM_ENTITY_PARSING_NEVER);
    *out = x;
    return 0;
nomem:
    s3xml_free(x);
    return err_set(err, ENOMEM, "out of memory creating an XML parser");
}

int s3xml_list_new(const struct s3xml_list_opts *opts, struct s3xml **out, err_t *err)
{
    size_t max = opts && opts->max_bytes ? opts->max_bytes : S3XML_LIST_DEFAULT_MAX;
    int rc = create(KIND_LIST, max, out, err);
    if (rc == 0 && opts != NULL) {
        (*out)->opts = *opts;
        (*out)->opts.max_bytes = max;
    }
    return rc;
}

int s3xml_error_new(size_t max_bytes, struct s3xml **out, err_t *err)
{
    return create(KIND_ERROR, max_bytes ? max_bytes : S3XML_ERROR_DEFAULT_MAX, out, err);
}

/* Returns x's sticky error, copied to err. */
static int result(struct s3xml *x, err_t *err)
{
    if (x->rc != 0)
        err_set(err, x->rc, "%s", x->e.msg);
    return x->rc;
}

static int parse(struct s3xml *x, const char *p, int n, bool final)
{
    x->in_parse = true;
    enum XML_Status st = XML_Parse(x->p, p, n, final);
    x->in_parse = false;
    if (st == XML_STATUS_ERROR && x->rc == 0)
        fail(x, EPROTO, "malformed XML at line %lu, column %lu: %s",
             (unsigned long)XML_GetCurrentLineNumber(x->p),
             (unsigned long)XML_GetCurrentColumnNumber(x->p),
             XML_ErrorString(XML_GetErrorCode(x->p)));
    return x->rc;
}

/* The code of a complete character reference "&#...;" of len bytes, or -1 when r is not one
 * (expat then judges it as it is). */
static long ref_code(const char *r, size_t len)
{
    bool hex = len > 3 && r[2] == 'x';
    size_t i = hex ? 3 : 2;
    long v = 0;
    if (len < i + 2 || r[len - 1] != ';')
        return -1;
    for (; i < len - 1; i++) {
        int d = r[i] >= '0' && r[i] <= '9'          ? r[i] - '0'
                : hex && r[i] >= 'a' && r[i] <= 'f' ? r[i] - 'a' + 10
                : hex && r[i] >= 'A' && r[i] <= 'F' ? r[i] - 'A' + 10
                                                    : -1;
        if (d < 0 || v > 0x10ffff)
            return -1;
        v = v * (hex ? 16 : 10) + d;
    }
    return v;
}

/* Appends to x->out what the held-back bytes stand for, and empties the hold. */
static size_t pend_flush(struct s3xml *x, size_t o)
{
    long code = x->pend[0] == '&' ? ref_code(x->pend, x->pend_len) : -1;
    bool forbidden = (code >= 0 && code < 0x20 && code != 0x9 && code != 0xa && code != 0xd) ||
                     code == 0xfffe || code == 0xffff;
    if (forbidden) {
        unsigned v = code < 0x20 ? (unsigned)code : code == 0xfffe ? 0x20u : 0x21u;
        o += (size_t)sprintf(x->out + o, MARK_REF "&#x%X;", MARK_BASE + v);
    } else if (code == 0x10fffd || (x->pend_len == 4 && memcmp(x->pend, MARK_UTF8, 4) == 0)) {
        o += (size_t)sprintf(x->out + o, MARK_REF MARK_REF);
    } else {
        memcpy(x->out + o, x->pend, x->pend_len);
        o += x->pend_len;
    }
    x->pend_len = 0;
    return o;
}

/* Whether byte c may extend the held-back bytes toward a reference or a literal MARK. */
static bool pend_extends(const struct s3xml *x, unsigned char c)
{
    const char *p = x->pend;
    size_t n = x->pend_len;
    if (p[0] != '&')
        return n < 4 && c == (unsigned char)MARK_UTF8[n];
    if (n == 1)
        return c == '#';
    if (p[n - 1] == ';' || n >= 12)
        return false;
    if (n == 2 && c == 'x')
        return true;
    bool hex = p[2] == 'x';
    return c == ';' ? n > (hex ? 3u : 2u)
                    : (c >= '0' && c <= '9') ||
                          (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')));
}

/* Runs up to FILTER_SLICE input bytes through the reference filter (see MARK) into expat. */
static int refs_feed(struct s3xml *x, const char *in, size_t n, bool final)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (x->pend_len > 0) {
            bool complete = x->pend[0] == '&' ? x->pend[x->pend_len - 1] == ';' : x->pend_len == 4;
            if (!complete && pend_extends(x, c)) {
                x->pend[x->pend_len++] = (char)c;
                continue;
            }
            o = pend_flush(x, o);
        }
        if (c == '&' || c == 0xf4)
            x->pend[x->pend_len++] = (char)c;
        else if (c < 0x20 && c != 0x9 && c != 0xa && c != 0xd)
            o += (size_t)sprintf(x->out + o, MARK_REF "&#x%X;", MARK_BASE + c);
        else
            x->out[o++] = (char)c;
    }
    if (final && x->pend_len > 0)
        o = pend_flush(x, o);
    return parse(x, x->out, (int)o, final);
}

int s3xml_feed(struct s3xml *x, const void *data, size_t len, err_t *err)
{
    if (x->rc != 0)
        return result(x, err);
    if (x->finished)
        return err_set(err, EINVAL, "XML fed after its end");
    if (len > x->max_bytes - x->fed) {
        fail(x, EFBIG, "%s larger than the %zu-byte cap",
             x->kind == KIND_LIST ? "listing" : "error document", x->max_bytes);
        return result(x, err);
    }
    x->fed += len;
    const char *p = data;
    while (len > 0 && x->rc == 0) {
        size_t n = len > FILTER_SLICE ? FILTER_SLICE : len;
        refs_feed(x, p, n, false);
        p += n;
        len -= n;
    }
    return result(x, err);
}

int s3xml_finish(struct s3xml *x, err_t *err)
{
    if (x->rc != 0 || x->finished)
        return result(x, err);
    if (refs_feed(x, NULL, 0, true) != 0)
        return result(x, err);
    x->finished = true;
    if (x->kind == KIND_ERROR)
        return 0;
    if (!x->enc_known) {
        /* no EncodingType at all: the server sent keys as they are (s3rver ignores the
         * encoding-type parameter) */
        x->enc_known = true;
        if (flush_held(x) != 0)
            return result(x, err);
    }
    if (x->truncated && x->next[0] == '\0') {
        fail(x, EPROTO, "listing is truncated but has no NextContinuationToken");
        return result(x, err);
    }
    struct s3xml_list_page *pg = &x->page;
    pg->name = x->name;
    pg->prefix = x->prefix;
    pg->delimiter = x->delimiter;
    pg->start_after = x->start_after;
    pg->encoding_type = x->encoding;
    pg->continuation_token = x->cont;
    pg->next_continuation_token = x->next;
    pg->is_truncated = x->truncated;
    pg->has_key_count = x->has_key_count;
    pg->key_count = x->key_count;
    pg->max_keys = x->max_keys;
    return 0;
}

const struct s3xml_list_page *s3xml_list_page(const struct s3xml *x)
{
    return x && x->kind == KIND_LIST && x->finished && x->rc == 0 ? &x->page : NULL;
}

const struct s3xml_error *s3xml_error_doc(const struct s3xml *x)
{
    return x && x->kind == KIND_ERROR && x->finished && x->rc == 0 ? &x->doc : NULL;
}

void s3xml_free(struct s3xml *x)
{
    if (x == NULL)
        return;
    if (x->p != NULL)
        XML_ParserFree(x->p);
    buf_free(&x->held);
    free(x->out);
    free(x);
}

int s3xml_error_parse(const void *body, size_t len, size_t max_bytes, struct s3xml_error *out,
                      err_t *err)
{
    struct s3xml *x = NULL;
    int rc = s3xml_error_new(max_bytes, &x, err);
    if (rc != 0)
        goto out;
    rc = s3xml_feed(x, body, len, err);
    if (rc == 0)
        rc = s3xml_finish(x, err);
    if (rc == 0)
        *out = x->doc;
out:
    s3xml_free(x);
    return rc;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400:
        return " Bad Request";
    case 401:
        return " Unauthorized";
    case 403:
        return " Forbidden";
    case 404:
        return " Not Found";
    case 405:
        return " Method Not Allowed";
    case 408:
        return " Request Timeout";
    case 409:
        return " Conflict";
    case 411:
        return " Length Required";
    case 412:
        return " Precondition Failed";
    case 416:
        return " Range Not Satisfiable";
    case 429:
        return " Too Many Requests";
    case 500:
        return " Internal Server Error";
    case 501:
        return " Not Implemented";
    case 502:
        return " Bad Gateway";
    case 503:
        return " Service Unavailable";
    case 504:
        return " Gateway Timeout";
    default:
        return "";
    }
}

/* A hint for errors whose cause the user can fix locally; "" otherwise. */
static void hint_for(char *out, size_t outsz, const struct s3xml_error *doc, int e)
{
    const char *code = doc ? doc->code : "";
    out[0] = '\0';
    if (e == ETIME) {
        if (doc && doc->server_time_unix != 0 && doc->request_time_unix != 0) {
            long long d = (long long)(doc->server_time_unix - doc->request_time_unix);
            char st[64], rt[64];
            util_escape(st, sizeof(st), doc->server_time, 40);
            util_escape(rt, sizeof(rt), doc->request_time, 40);
            snprintf(out, outsz,
                     "; the local clock is %lld s %s the server's (request signed at %s, server "
                     "time %s): fix the system clock (NTP)",
                     d < 0 ? -d : d, d < 0 ? "ahead of" : "behind", rt, st);
        } else {
            snprintf(out, outsz, "%s", aws_error_hint("RequestTimeTooSkewed"));
        }
    } else {
        snprintf(out, outsz, "%s", aws_error_hint(code));
    }
}

int s3xml_error_report(err_t *err, int http_status, const struct s3xml_error *doc,
                       const char *bucket, const char *key)
{
    const char *code = doc && doc->code[0] ? doc->code : NULL;
    int e = aws_error_errno(http_status, code, NULL);
    if (bucket == NULL && doc && doc->bucket_name[0])
        bucket = doc->bucket_name;
    if (key == NULL && doc && doc->key[0])
        key = doc->key;

    char b[80], k[200], where[300];
    if (bucket != NULL) {
        util_escape(b, sizeof(b), bucket, 63);
        util_escape(k, sizeof(k), key ? key : "", 150);
        snprintf(where, sizeof(where), "s3://%s%s%s", b, key ? "/" : "", k);
    } else {
        snprintf(where, sizeof(where), "S3");
    }

    char what[300];
    if (code != NULL) {
        char c[80], m[200];
        util_escape(c, sizeof(c), code, 64);
        util_escape(m, sizeof(m), doc->message, 180);
        if (m[0] != '\0')
            snprintf(what, sizeof(what), "%s: %s", c, m);
        else
            snprintf(what, sizeof(what), "%s (HTTP %d)", c, http_status);
    } else {
        snprintf(what, sizeof(what), "HTTP %d%s", http_status, reason_phrase(http_status));
    }

    char rid[100] = "";
    if (doc && doc->request_id[0]) {
        char r[80];
        util_escape(r, sizeof(r), doc->request_id, 64);
        snprintf(rid, sizeof(rid), " (request id %s)", r);
    }

    char hint[300];
    hint_for(hint, sizeof(hint), doc, e);
    size_t wl = strlen(what);
    if (hint[0] != '\0' && rid[0] == '\0' && wl > 0 && what[wl - 1] == '.')
        what[wl - 1] = '\0'; /* "...too large; the local clock is..." */
    return err_set(err, e, "%s: %s%s%s", where, what, rid, hint);
}
