/* sigv4.h — AWS Signature Version 4 (AWS4-HMAC-SHA256): canonical request, string to sign,
 * signature, Authorization header and presigned-URL query, under S3 or generic-service rules. */
#ifndef S3TORRENT_SIGV4_H
#define S3TORRENT_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "s3torrent/buf.h"
#include "s3torrent/err.h"

/* The module keeps no state of its own, reads no clock and logs nothing. Its outputs can hold
 * a session token and its inputs a secret key: never print them (docs/DESIGN.md §9). */

#define SIGV4_ALGORITHM        "AWS4-HMAC-SHA256"
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_MAX_EXPIRES      604800 /* seven days: the longest a presigned URL may live */
#define SIGV4_DATE_LEN         16     /* "20150830T123600Z" */
#define SIGV4_HEX_LEN          64     /* a SHA-256 in lower-case hex */
#define SIGV4_MAX_ADD          4      /* headers sigv4_sign_headers asks the caller to send */

/* A header (name: value) or a query parameter (name=value). */
struct sigv4_pair {
    const char *name;
    const char *value; /* NULL is the empty string */
};

struct sigv4_request {
    const char *method; /* "GET", "PUT", ... as sent */
    /* The absolute path without the query. When path_is_raw it holds unencoded bytes (an S3
     * key after '/') that are URI-encoded once here ('/' kept); otherwise it is the path as
     * sent on the wire. */
    const char *path;
    bool path_is_raw;
    /* Query parameters with decoded names and values; the order does not matter. */
    const struct sigv4_pair *query;
    size_t nquery;
    /* Every header given is signed; Host is required. A name may repeat: its values are joined
     * by ',' in the order given. Values must not contain CR, LF or other control bytes. */
    const struct sigv4_pair *headers;
    size_t nheaders;
    /* The payload's SHA-256 in lower-case hex, or a literal such as UNSIGNED-PAYLOAD; when
     * NULL the payload_len bytes at payload are hashed here. */
    const char *payload_hash;
    const void *payload;
    size_t payload_len;
};

struct sigv4_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL or "" when there is none */
};

struct sigv4_options {
    /* Generic services: drop "." and ".." segments (RFC 3986 5.2.4) and empty segments from
     * the path. S3 must not: "a//b" and "a/./b" are distinct keys. */
    bool normalize_path;
    /* Generic services: URI-encode each segment of the wire path once more ("%20" is signed as
     * "%2520"). S3 signs the wire path as it is (single encoding). */
    bool double_encode_path;
    /* Header form: add and sign x-amz-content-sha256 carrying the payload hash (context.json's
     * sign_body). S3 requires it on every request. */
    bool sign_body;
    /* Attach X-Amz-Security-Token after signing instead of signing it (some services). */
    bool omit_session_token;
};

#define SIGV4_OPTIONS_S3 ((struct sigv4_options){.sign_body = true})
#define SIGV4_OPTIONS_GENERIC                                                                      \
    ((struct sigv4_options){.normalize_path = true, .double_encode_path = true})

/* The signing key of one (date, region, service, secret), kept so that the four HMACs run
 * once a day instead of once a request. Zero-initialise it; it is not thread-safe, so give
 * each thread (or each lock holder) its own. The secret is remembered only as a digest. */
struct sigv4_key_cache {
    bool valid;
    char date[9];
    char region[64];
    char service[64];
    uint8_t secret_digest[32];
    uint8_t key[32];
};

/* Everything one signature needs. cache may be NULL (the key is then derived every time). */
struct sigv4_signer {
    struct sigv4_credentials creds;
    const char *region;  /* "us-east-1" */
    const char *service; /* "s3", "dynamodb", ... */
    time_t now;          /* the signing time, from the caller's (injectable) clock */
    struct sigv4_options opt;
    struct sigv4_key_cache *cache;
};

/* What a signature produced. All strings are NUL-terminated and owned by the result; free
 * them with sigv4_result_free. canonical_request and string_to_sign are kept for tests and for
 * explaining SignatureDoesNotMatch answers; they may contain the session token. */
struct sigv4_result {
    char amz_date[SIGV4_DATE_LEN + 1];
    char payload_hash[SIGV4_HEX_LEN + 1];
    char signature[SIGV4_HEX_LEN + 1];
    char *canonical_request;
    char *string_to_sign;
    char *signed_headers; /* "host;x-amz-date" */
    /* Header form: the Authorization value, and every header to send besides the request's
     * own (X-Amz-Date, x-amz-content-sha256, X-Amz-Security-Token, Authorization), pointing
     * into this result. NULL / 0 in the presigned form. */
    char *authorization;
    struct sigv4_pair add[SIGV4_MAX_ADD];
    size_t nadd;
    /* Presigned form: the X-Amz-* parameters, encoded and joined by '&', to append to the
     * request's own query (encode that with sigv4_canonical_query). NULL in the header form. */
    char *query;
    char *token_copy; /* private: backs the X-Amz-Security-Token entry of add */
};

/* Formats t (UTC) as an X-Amz-Date into out. Returns 0, or EINVAL for a year outside
 * 1970-9999. */
int sigv4_amz_date(time_t t, char out[SIGV4_DATE_LEN + 1]);

/* Appends the canonical URI of path (see struct sigv4_request) under opt's path rules to b.
 * Returns 0, EINVAL for a path that is not absolute or holds control bytes, or b's error. */
int sigv4_canonical_uri(struct buf *b, const char *path, bool path_is_raw,
                        const struct sigv4_options *opt);

/* Appends the canonical query string of the n decoded parameters to b: names and values
 * URI-encoded (unreserved bytes kept, the rest %XX), pairs sorted by name then value, joined
 * by '&'. It is also a correct wire query. Returns 0, EINVAL (a NULL name, too many
 * parameters), ENOMEM or b's error. */
int sigv4_canonical_query(struct buf *b, const struct sigv4_pair *q, size_t n);

/* Builds the canonical request of req exactly as given (nothing is added) into *out, and its
 * SignedHeaders list into *signed_headers when that is not NULL. Returns 0 or a positive errno
 * with err set; on success the caller frees both strings. */
int sigv4_canonical_request(const struct sigv4_request *req, const struct sigv4_options *opt,
                            char **out, char **signed_headers, err_t *err);

/* Builds "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex SHA-256 of creq>" into *out. Returns 0
 * or ENOMEM; the caller frees *out. */
int sigv4_string_to_sign(const char *amz_date, const char *scope, const char *creq, char **out);

/* Derives the signing key HMAC(HMAC(HMAC(HMAC("AWS4" secret, date8), region), service),
 * "aws4_request") into key, through cache when it is not NULL. Returns 0, EINVAL for a bad
 * argument, or EIO when OpenSSL fails, with err set (never showing the secret). */
int sigv4_signing_key(struct sigv4_key_cache *cache, const char *secret, const char *date8,
                      const char *region, const char *service, uint8_t key[32], err_t *err);

/* Writes the lower-case hex HMAC-SHA256 of sts under key into hex. Returns 0 or EIO. */
int sigv4_signature(const uint8_t key[32], const char *sts, char hex[SIGV4_HEX_LEN + 1]);

/* Signs req for the Authorization-header form: adds X-Amz-Date, x-amz-content-sha256 (when
 * opt.sign_body) and X-Amz-Security-Token (signed unless opt.omit_session_token) and lists
 * them with Authorization in out->add. req must not already carry those headers. Returns 0 or
 * a positive errno with err set; the caller frees *out with sigv4_result_free either way. */
int sigv4_sign_headers(const struct sigv4_signer *s, const struct sigv4_request *req,
                       struct sigv4_result *out, err_t *err);

/* Signs req for the presigned-URL form, valid for expires seconds (1..SIGV4_MAX_EXPIRES):
 * out->query gets X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders,
 * -Security-Token (signed unless opt.omit_session_token) and -Signature. opt.sign_body is
 * ignored: the payload hash only enters the canonical request (S3 uses UNSIGNED-PAYLOAD).
 * Returns 0 or a positive errno with err set; the caller frees *out with sigv4_result_free. */
int sigv4_presign(const struct sigv4_signer *s, const struct sigv4_request *req, unsigned expires,
                  struct sigv4_result *out, err_t *err);

/* Wipes and frees what r owns, leaving it empty. */
void sigv4_result_free(struct sigv4_result *r);

/* Forgets (and wipes) the cached key. */
void sigv4_key_cache_clear(struct sigv4_key_cache *c);

#endif
