/* fuzz_presign.c — libFuzzer target for the presigned URLs of `s3torrent serve --redirect`
 * (s3_presign_get; docs/DESIGN.md §14), which go out in a Location header: for any key and
 * version id, the URL is one line of RFC 3986 characters (no byte a header could be split or
 * a URL be cut at), its path decodes to exactly /BUCKET/KEY, its query names the version when
 * one is pinned and decodes back to it, and it ends with the signature.
 *
 * Input: the version id, a newline, then the key (bytes as they are; a NUL ends it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/cred.h"
#include "s3torrent/http.h"
#include "s3torrent/s3.h"
#include "s3torrent/uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ENDPOINT "http://127.0.0.1:9"

static const char *env(const char *name)
{
    if (strcmp(name, "AWS_ACCESS_KEY_ID") == 0)
        return "AKIDEXAMPLE";
    if (strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0)
        return "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    if (strcmp(name, "AWS_SESSION_TOKEN") == 0)
        return "tok/en+=%";
    return NULL;
}

static time_t fixed_now(void)
{
    return 1369353600;
}

/* One client for the whole run: no request is ever made. */
static struct s3_client *client(void)
{
    static struct s3_client *s3;
    if (s3 == NULL) {
        struct http_client *http = http_client_new(NULL);
        struct cred_chain_opts co = {.getenv = env, .http = http};
        struct cred_chain *creds = cred_chain_new(&co);
        struct s3_config cfg = {.endpoint = ENDPOINT,
                                .region = "us-east-1",
                                .http = http,
                                .creds = creds,
                                .now = fixed_now};
        if (http == NULL || creds == NULL || s3_client_new(&cfg, &s3, NULL) != 0)
            abort();
    }
    return s3;
}

/* The decoded value of parameter name in query (up to '\0'), or NULL when absent. */
static char *param(const char *query, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = query; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
        if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t len;
            return uri_decode(v, strcspn(v, "&"), false, &len);
        }
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    if (nl == NULL)
        return 0;
    char *version = strndup((const char *)data, (size_t)(nl - (const char *)data));
    char *key = strndup(nl + 1, size - (size_t)(nl + 1 - (const char *)data));
    struct buf b;
    buf_init(&b, 1u << 16);
    int rc = s3_presign_get(client(), "bucket", key, version, 300, &b, NULL);
    if (rc != 0) {
        /* only a URL past the request's cap (16 KiB, the escapes included) may fail */
        if (strlen(key) + strlen(version) < 4096)
            abort();
        goto out;
    }
    const char *url = (const char *)b.data;
    if (b.len == 0 || url[b.len - 1] != '\0' || strlen(url) != b.len - 1)
        abort();
    for (const char *p = url; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr("\"<>\\^`{|}#", *p))
            abort();
    if (strncmp(url, ENDPOINT "/bucket/", strlen(ENDPOINT "/bucket/")) != 0)
        abort();
    const char *path = url + strlen(ENDPOINT), *q = strchr(path, '?');
    size_t len;
    char *dp = q ? uri_decode(path, (size_t)(q - path), false, &len) : NULL;
    if (dp == NULL || strncmp(dp, "/bucket/", 8) != 0 || strcmp(dp + 8, key) != 0)
        abort();
    free(dp);
    char *v = param(q + 1, "versionId");
    bool pinned = version[0] && strcmp(version, "null") != 0;
    if (pinned != (v != NULL) || (v && strcmp(v, version) != 0))
        abort();
    free(v);
    const char *sig = strstr(q, "&X-Amz-Signature=");
    if (sig == NULL || strlen(sig + 17) != 64 || strspn(sig + 17, "0123456789abcdef") != 64)
        abort();
    char *tok = param(q + 1, "X-Amz-Security-Token");
    if (tok == NULL || strcmp(tok, "tok/en+=%") != 0)
        abort();
    free(tok);
out:
    buf_free(&b);
    free(version);
    free(key);
    return 0;
}
