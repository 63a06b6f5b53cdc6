/* cred.c — the AWS credential provider chain (environment, shared credentials/config files, ECS
 * container credentials, EC2 IMDSv2), cached under a mutex and refreshed before it expires. */
#include "s3torrent/cred.h"
#include "s3torrent/jsondoc.h"
#include "s3torrent/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define REFRESH_AHEAD_S    300
#define INI_MAX            (1024 * 1024) /* a credentials or config file */
#define TOKEN_FILE_MAX     (16 * 1024)   /* the container authorization token file */
#define AUTH_TOKEN_MAX     4096          /* its trimmed value: http.c caps a header line at 8 KiB */
#define BODY_MAX           (64 * 1024)   /* an ECS or IMDS response */
#define URL_MAX            2048
#define PATH_LEN           4096
#define ECS_RELATIVE_BASE  "http://169.254.170.2"
#define IMDS_ENDPOINT      "http://169.254.169.254"
#define IMDS_ENDPOINT_IPV6 "http://[fd00:ec2::254]"
#define IMDS_TTL_S         "21600"
#define IMDS_TOKEN_MAX     1024
#define IMDS_ROLE_MAX      128

enum source { SRC_NONE, SRC_ENV, SRC_FILE, SRC_ECS, SRC_IMDS };

static const char *const source_names[] = {NULL, "environment", "shared-file", "ecs", "imds"};

struct cred_chain {
    struct cred_chain_opts opts; /* strings point at the copies below */
    char *profile, *ecs_base;
    const struct logger *log;
    pthread_mutex_t lock;
    struct http_client *quick; /* short timeouts, for IMDS; made on first use */
    struct cred cached;
    bool have;
    _Atomic int source;
};

struct cred_chain *cred_chain_new(const struct cred_chain_opts *opts)
{
    struct cred_chain *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if (opts)
        c->opts = *opts;
    if (c->opts.profile && (c->profile = strdup(c->opts.profile)) == NULL)
        goto fail;
    if (c->opts.ecs_relative_base && (c->ecs_base = strdup(c->opts.ecs_relative_base)) == NULL)
        goto fail;
    c->opts.profile = c->profile;
    c->opts.ecs_relative_base = c->ecs_base;
    c->log = c->opts.http ? http_client_log(c->opts.http) : NULL;
    if (pthread_mutex_init(&c->lock, NULL) != 0)
        goto fail;
    return c;
fail:
    free(c->profile);
    free(c->ecs_base);
    free(c);
    return NULL;
}

void cred_chain_free(struct cred_chain *c)
{
    if (c == NULL)
        return;
    cred_wipe(&c->cached);
    http_client_free(c->quick);
    pthread_mutex_destroy(&c->lock);
    free(c->profile);
    free(c->ecs_base);
    free(c);
}

const char *cred_chain_source(const struct cred_chain *c)
{
    int s = atomic_load(&c->source);
    return source_names[s];
}

void cred_wipe(struct cred *c)
{
    if (c)
        explicit_bzero(c, sizeof(*c));
}

/* ---- small helpers ---------------------------------------------------------------------- */

/* The variable's value, or NULL when it is unset or empty (the AWS SDKs treat both alike). */
static const char *env(const struct cred_chain *c, const char *name)
{
    const char *v = c->opts.getenv ? c->opts.getenv(name) : getenv(name);
    return v && *v ? v : NULL;
}

static time_t now(const struct cred_chain *c)
{
    return c->opts.now ? c->opts.now() : time(NULL);
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

/* Trims s[0, *n) in place of its pointer and length. */
static const char *trim(const char *s, size_t *n)
{
    while (*n > 0 && is_space(*s)) {
        s++;
        (*n)--;
    }
    while (*n > 0 && is_space(s[*n - 1]))
        (*n)--;
    return s;
}

/* Copies a credential field: it must fit with its NUL and be printable ASCII without spaces,
 * since it ends up in an HTTP header. Returns 0, EOVERFLOW or EINVAL with err set. */
static int put_field(char *dst, size_t cap, const char *v, size_t n, const char *field,
                     const char *where, err_t *err)
{
    if (n >= cap)
        return err_set(err, EOVERFLOW, "%s: %s is longer than %zu bytes", where, field, cap - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
            return err_set(err, EINVAL, "%s: %s contains a space or control character", where,
                           field);
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

/* True when s has no control characters, so it can go into a URL or header line. */
static bool clean(const char *s, bool allow_space)
{
    for (; *s; s++)
        if (util_is_ctl((unsigned char)*s) || (*s == ' ' && !allow_space))
            return false;
    return true;
}

/* Reads a whole file of at most max bytes into a new NUL-terminated buffer (the caller wipes
 * and frees *out). With private_only, a file group or others can access is refused. Returns 0,
 * ENOENT (err untouched) when the file does not exist, or another errno with err set. */
static int read_file(const char *path, size_t max, bool private_only, char **out, size_t *len,
                     err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    char *p = NULL;
    size_t n = 0;
    int rc = 0;
    struct stat st;
    *out = NULL;
    *len = 0;
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return ENOENT;
        return err_set(err, errno, "cannot open %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        rc = err_set(err, errno, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = err_set(err, EINVAL, "%s is not a regular file", path);
        goto out;
    }
    if (private_only && (st.st_mode & 077)) {
        rc = err_set(err, EACCES, "refusing %s (mode %04o): %s by group or others; chmod 600 it",
                     path, (unsigned)(st.st_mode & 07777),
                     (st.st_mode & 044) ? "readable" : "accessible");
        goto out;
    }
    if ((uintmax_t)st.st_size > max) {
        rc = err_set(err, EFBIG, "%s is larger than %zu bytes", path, max);
        goto out;
    }
    if ((p = malloc(max + 1)) == NULL) {
        rc = err_set(err, ENOMEM, "reading %s: out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, p + n, max + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = err_set(err, errno, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            rc = err_set(err, EFBIG, "%s is larger than %zu bytes", path, max);
            goto out;
        }
    }
    p[n] = '\0';
    *out = p;
    *len = n;
    p = NULL;
out:
    if (p) {
        explicit_bzero(p, n);
        free(p);
    }
    close(fd);
    return rc;
}

static void wipe_free(char *p, size_t n)
{
    if (p) {
        explicit_bzero(p, n);
        free(p);
    }
}

/* ---- 1. environment --------------------------------------------------------------------- */

static int from_env(struct cred_chain *c, struct cred *out, bool *found, err_t *err)
{
    const char *ak = env(c, "AWS_ACCESS_KEY_ID"), *sk = env(c, "AWS_SECRET_ACCESS_KEY");
    const char *tok = env(c, "AWS_SESSION_TOKEN");
    const char *where = "environment";
    int rc;
    *found = false;
    if (ak == NULL && sk == NULL)
        return 0;
    if (ak == NULL || sk == NULL)
        return err_set(err, EINVAL, "environment: %s is set but %s is not",
                       ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                       ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
    if ((rc = put_field(out->access_key, sizeof(out->access_key), ak, strlen(ak),
                        "AWS_ACCESS_KEY_ID", where, err)) ||
        (rc = put_field(out->secret_key, sizeof(out->secret_key), sk, strlen(sk),
                        "AWS_SECRET_ACCESS_KEY", where, err)))
        return rc;
    if (tok && (rc = put_field(out->session_token, sizeof(out->session_token), tok, strlen(tok),
                               "AWS_SESSION_TOKEN", where, err)))
        return rc;
    out->expiration = 0;
    *found = true;
    return 0;
}

/* ---- 2. shared credentials and config files --------------------------------------------- */

struct ini_hit {
    bool section;        /* the profile's section exists */
    bool access, secret; /* which keys it gave */
};

/* Scans INI text for the section of profile (in a config file "[profile NAME]", or "[default]"
 * for the default profile) and copies its keys into out; later values win, as in botocore.
 * Lines indented deeper than the key before them continue that key's value (the config file's
 * nested "s3 =" settings) and are skipped. Returns 0, or EOVERFLOW/EINVAL for a bad value. */
static int ini_scan(const char *text, size_t len, const char *profile, bool config,
                    const char *path, struct cred *out, struct ini_hit *hit, err_t *err)
{
    const char *p = text, *end = text + len;
    bool in = false;
    long key_indent = -1;
    char where[600]; /* only ever part of an err_t message */
    snprintf(where, sizeof(where), "profile %.64s in %.512s", profile, path);
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
        const char *line = p;
        p += n + (eol ? 1 : 0);
        long indent = 0;
        while (indent < (long)n && (line[indent] == ' ' || line[indent] == '\t'))
            indent++;
        line = trim(line, &n);
        if (n == 0 || line[0] == '#' || line[0] == ';')
            continue;
        if (line[0] == '[') {
            const char *close = memrchr(line, ']', n);
            key_indent = -1;
            in = false;
            if (close == NULL)
                continue;
            size_t sl = (size_t)(close - line - 1);
            const char *s = trim(line + 1, &sl);
            if (config) {
                if (sl == 7 && memcmp(s, "default", 7) == 0) {
                    /* [default] */
                } else if (sl > 8 && memcmp(s, "profile", 7) == 0 && is_space(s[7])) {
                    s += 8;
                    sl -= 8;
                    s = trim(s, &sl);
                } else {
                    continue; /* [sso-session x], [services x]: not a profile */
                }
            }
            in = strlen(profile) == sl && memcmp(s, profile, sl) == 0;
            hit->section |= in;
            continue;
        }
        if (key_indent >= 0 && indent > key_indent)
            continue;
        size_t d = 0;
        while (d < n && line[d] != '=' && line[d] != ':')
            d++;
        if (d == n)
            continue;
        key_indent = indent;
        if (!in)
            continue;
        size_t kl = d, vl = n - d - 1;
        const char *k = trim(line, &kl), *v = trim(line + d + 1, &vl);
        if (vl == 0)
            continue;
        int rc = 0;
        if (kl == 17 && strncasecmp(k, "aws_access_key_id", kl) == 0) {
            rc = put_field(out->access_key, sizeof(out->access_key), v, vl, "aws_access_key_id",
                           where, err);
            hit->access = true;
        } else if (kl == 21 && strncasecmp(k, "aws_secret_access_key", kl) == 0) {
            rc = put_field(out->secret_key, sizeof(out->secret_key), v, vl, "aws_secret_access_key",
                           where, err);
            hit->secret = true;
        } else if (kl == 17 && strncasecmp(k, "aws_session_token", kl) == 0) {
            rc = put_field(out->session_token, sizeof(out->session_token), v, vl,
                           "aws_session_token", where, err);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* Puts the file's path in dst: the variable's value (a leading "~/" means $HOME), else
 * $HOME/.aws/NAME. Returns 0 (dst empty when there is no home), or ENAMETOOLONG. */
static int shared_path(struct cred_chain *c, const char *var, const char *name, char *dst,
                       size_t cap, err_t *err)
{
    const char *v = env(c, var), *home = env(c, "HOME");
    int n;
    dst[0] = '\0';
    if (v && strncmp(v, "~/", 2) == 0 && home)
        n = snprintf(dst, cap, "%s/%s", home, v + 2);
    else if (v)
        n = snprintf(dst, cap, "%s", v);
    else if (home)
        n = snprintf(dst, cap, "%s/.aws/%s", home, name);
    else
        return 0;
    if (n < 0 || (size_t)n >= cap)
        return err_set(err, ENAMETOOLONG, "the path of the AWS %s file is too long", name);
    return 0;
}

static int from_files(struct cred_chain *c, struct cred *out, bool *found, err_t *err)
{
    const char *aws_profile = env(c, "AWS_PROFILE");
    const char *profile = c->opts.profile ? c->opts.profile : aws_profile ? aws_profile : "default";
    bool named = c->opts.profile != NULL || aws_profile != NULL, section = false;
    char paths[2][PATH_LEN];
    const char *section_path = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;
    *found = false;
    if ((rc = shared_path(c, "AWS_SHARED_CREDENTIALS_FILE", "credentials", paths[0],
                          sizeof(paths[0]), err)) ||
        (rc = shared_path(c, "AWS_CONFIG_FILE", "config", paths[1], sizeof(paths[1]), err)))
        return rc;
    for (int i = 0; i < 2; i++) {
        struct ini_hit hit = {0};
        if (paths[i][0] == '\0')
            continue;
        rc = read_file(paths[i], INI_MAX, true, &text, &len, err);
        if (rc == ENOENT) {
            rc = 0;
            continue;
        }
        if (rc)
            goto out;
        cred_wipe(out);
        rc = ini_scan(text, len, profile, i == 1, paths[i], out, &hit, err);
        wipe_free(text, len);
        text = NULL;
        if (rc)
            goto out;
        if (hit.section && section_path == NULL)
            section_path = paths[i];
        section |= hit.section;
        if (hit.access && hit.secret) {
            out->expiration = 0;
            *found = true;
            log_msg(c->log, LOG_DEBUG, "AWS credentials: profile %s in %s", profile, paths[i]);
            goto out;
        }
        if (hit.access || hit.secret) {
            rc = err_set(err, EINVAL, "profile %s in %s has %s but no %s", profile, paths[i],
                         hit.access ? "aws_access_key_id" : "aws_secret_access_key",
                         hit.access ? "aws_secret_access_key" : "aws_access_key_id");
            goto out;
        }
    }
    cred_wipe(out);
    if (named && paths[0][0] == '\0' && paths[1][0] == '\0')
        rc = err_set(err, ENOENT,
                     "profile %s not found: HOME is not set and neither "
                     "AWS_SHARED_CREDENTIALS_FILE nor AWS_CONFIG_FILE is",
                     profile);
    else if (named && !section)
        rc = err_set(err, ENOENT, "profile %s not found in %s%s%s", profile,
                     paths[0][0] ? paths[0] : paths[1], paths[0][0] && paths[1][0] ? " or " : "",
                     paths[0][0] && paths[1][0] ? paths[1] : "");
    else if (named)
        rc = err_set(err, EINVAL,
                     "profile %s in %s has no aws_access_key_id and aws_secret_access_key "
                     "(role_arn, sso and credential_process profiles are not supported)",
                     profile, section_path);
out:
    if (rc || !*found)
        cred_wipe(out);
    return rc;
}

/* ---- HTTP and JSON, shared by ECS and IMDS ---------------------------------------------- */

/* The errno for an unexpected HTTP status from a credential endpoint. */
static int status_errno(long status)
{
    return status == 401 || status == 403 ? EACCES : EIO;
}

/* Sends one request and reads its body, capped, into b (which the caller frees). Returns 0
 * with *status set, or a transport errno with err set. */
static int fetch(struct http_client *h, const char *method, const char *url,
                 const struct http_header *hdrs, size_t nhdrs, long *status, struct buf *b,
                 err_t *err)
{
    struct http_request req = {.method = method, .url = url, .headers = hdrs, .nheaders = nhdrs};
    struct http_stream *s = NULL;
    int rc = http_stream_open(h, &req, &s, err);
    if (rc)
        return rc;
    *status = http_stream_status(s);
    rc = http_stream_read_all(s, b, err);
    http_stream_close(s);
    return rc;
}

/* Overwrites a string json-c holds, so the secret does not linger in freed memory. */
static void wipe_json_string(struct json_object *o)
{
    if (o && json_object_is_type(o, json_type_string))
        explicit_bzero((char *)json_object_get_string(o), (size_t)json_object_get_string_len(o));
}

int cred_parse_document(const char *what, const uint8_t *body, size_t len, bool want_code,
                           struct cred *out, err_t *err)
{
    struct json_object *doc = NULL, *ak = NULL, *sk = NULL, *tk = NULL, *ex = NULL, *code = NULL;
    int rc = jsondoc_parse(what, body, len, BODY_MAX, 16, &doc, err);
    if (rc)
        goto out;
    json_object_object_get_ex(doc, "AccessKeyId", &ak);
    json_object_object_get_ex(doc, "SecretAccessKey", &sk);
    json_object_object_get_ex(doc, "Token", &tk);
    json_object_object_get_ex(doc, "Expiration", &ex);
    json_object_object_get_ex(doc, "Code", &code);
    if (want_code && (!json_object_is_type(code, json_type_string) ||
                      strcmp(json_object_get_string(code), "Success") != 0)) {
        const char *cs =
            json_object_is_type(code, json_type_string) ? json_object_get_string(code) : "missing";
        rc = err_set(err, EPROTO, "%s: the role credentials have Code %.64s, not Success", what,
                     clean(cs, true) ? cs : "(unprintable)");
        goto out;
    }
    if (!json_object_is_type(ak, json_type_string) || !json_object_is_type(sk, json_type_string) ||
        json_object_get_string_len(ak) == 0 || json_object_get_string_len(sk) == 0) {
        rc = err_set(err, EPROTO, "%s: the response has no AccessKeyId or SecretAccessKey", what);
        goto out;
    }
    if ((tk && !json_object_is_type(tk, json_type_string)) ||
        (ex && !json_object_is_type(ex, json_type_string))) {
        rc = err_set(err, EPROTO, "%s: Token and Expiration must be strings", what);
        goto out;
    }
    if ((rc = put_field(out->access_key, sizeof(out->access_key), json_object_get_string(ak),
                        (size_t)json_object_get_string_len(ak), "AccessKeyId", what, err)) ||
        (rc = put_field(out->secret_key, sizeof(out->secret_key), json_object_get_string(sk),
                        (size_t)json_object_get_string_len(sk), "SecretAccessKey", what, err)))
        goto out;
    if (tk &&
        (rc = put_field(out->session_token, sizeof(out->session_token), json_object_get_string(tk),
                        (size_t)json_object_get_string_len(tk), "Token", what, err)))
        goto out;
    out->expiration = 0;
    if (ex && util_iso8601(json_object_get_string(ex), &out->expiration) != 0) {
        rc = err_set(err, EPROTO, "%s: Expiration is not an ISO 8601 time", what);
        goto out;
    }
    if (out->session_token[0] && out->expiration == 0) {
        rc = err_set(err, EPROTO, "%s: temporary credentials without an Expiration", what);
        goto out;
    }
out:
    wipe_json_string(sk);
    wipe_json_string(tk);
    if (doc)
        json_object_put(doc);
    return rc;
}

/* ---- 3. ECS container credentials ------------------------------------------------------- */

/* True when host (an IP literal without brackets, or a name) is a loopback address or one of
 * the ECS / EKS Pod Identity link-local addresses. */
static bool host_allowed(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6, want;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1) {
        uint32_t a = ntohl(a4.s_addr);
        return (a >> 24) == 127 || a == 0xA9FEAA02u /* 169.254.170.2 */ ||
               a == 0xA9FEAA17u /* 169.254.170.23 */;
    }
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return true;
        inet_pton(AF_INET6, "fd00:ec2::23", &want);
        return memcmp(&a6, &want, sizeof(want)) == 0;
    }
    return false;
}

/* Checks $AWS_CONTAINER_CREDENTIALS_FULL_URI: https anywhere, plain http only to a loopback
 * or ECS link-local host, since the response is a secret and the request may carry a token.
 * The authority is read strictly (no user info, only host characters) so that curl cannot
 * see another host than this check. Returns 0 or EINVAL with err set. */
static int check_full_uri(const char *url, err_t *err)
{
    const char *var = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
    bool https = strncasecmp(url, "https://", 8) == 0;
    const char *a = NULL;
    char host[256];
    if (https)
        a = url + 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        a = url + 7;
    else
        return err_set(err, EINVAL, "%s must be an http or https URL", var);
    size_t alen = strcspn(a, "/?#");
    if (alen == 0 || alen != strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789.-:[]"))
        return err_set(err, EINVAL, "%s has a malformed host part", var);
    const char *hs = a, *he, *rest;
    if (*a == '[') {
        if ((he = memchr(a, ']', alen)) == NULL)
            return err_set(err, EINVAL, "%s has a malformed host part", var);
        hs = a + 1;
        rest = he + 1;
    } else {
        if ((he = memchr(a, ':', alen)) == NULL)
            he = a + alen;
        rest = he;
    }
    size_t rl = (size_t)(a + alen - rest); /* "" or ":PORT" */
    if (rl > 0 && (rest[0] != ':' || rl < 2 || rl > 6 || strspn(rest + 1, "0123456789") < rl - 1 ||
                   atol(rest + 1) > 65535))
        return err_set(err, EINVAL, "%s has a malformed port", var);
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof(host))
        return err_set(err, EINVAL, "%s has a malformed host part", var);
    memcpy(host, hs, hl);
    host[hl] = '\0';
    if (!https && !host_allowed(host))
        return err_set(err, EINVAL,
                       "%s host %s is not allowed: use https, or http to a loopback address or "
                       "169.254.170.2, 169.254.170.23 or [fd00:ec2::23]",
                       var, host);
    return 0;
}

/* Reads the container authorization token (the file, re-read each time since EKS rotates it,
 * else the variable) into tok. Returns 0 (tok empty when none), or an errno with err set. */
static int ecs_auth_token(struct cred_chain *c, char *tok, size_t cap, err_t *err)
{
    const char *file = env(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *v = env(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    char *text = NULL;
    size_t len = 0, n;
    int rc = 0;
    tok[0] = '\0';
    if (file) {
        rc = read_file(file, TOKEN_FILE_MAX, false, &text, &len, err);
        if (rc == ENOENT)
            return err_set(err, ENOENT, "ECS container credentials: token file %s not found", file);
        if (rc)
            return err_prefix(err, "ECS container credentials");
        n = len;
        v = trim(text, &n);
    } else if (v) {
        n = strlen(v);
        v = trim(v, &n);
    } else {
        return 0;
    }
    if (n >= cap) {
        rc = err_set(err, EOVERFLOW,
                     "ECS container credentials: the authorization token is "
                     "longer than %zu bytes",
                     cap - 1);
        goto out;
    }
    memcpy(tok, v, n);
    tok[n] = '\0';
    if (!clean(tok, true)) {
        explicit_bzero(tok, n);
        rc = err_set(err, EINVAL,
                     "ECS container credentials: the authorization token has a "
                     "control character");
    }
out:
    wipe_free(text, len);
    return rc;
}

static struct http_client *quick_client(struct cred_chain *c)
{
    if (c->quick == NULL) {
        struct http_opts o = {
            .connect_timeout_ms = 1000, .low_speed_time_s = 2, .timeout_ms = 2000, .log = c->log};
        c->quick = http_client_new(&o);
    }
    return c->quick;
}

static int from_ecs(struct cred_chain *c, struct cred *out, bool *found, err_t *err)
{
    const char *what = "ECS container credentials";
    const char *rel = env(c, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    char url[URL_MAX], tok[AUTH_TOKEN_MAX + 1];
    struct http_header hdr = {"Authorization", tok};
    struct http_client *h = c->opts.http;
    struct buf body;
    long status = 0;
    int rc = 0, n;
    *found = false;
    tok[0] = '\0';
    buf_init(&body, BODY_MAX);
    if (rel == NULL && full == NULL)
        goto out;
    if (rel) {
        if (rel[0] != '/' || !clean(rel, false)) {
            rc = err_set(err, EINVAL,
                         "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must be a path "
                         "starting with /");
            goto out;
        }
        n = snprintf(url, sizeof(url), "%s%s",
                     c->opts.ecs_relative_base ? c->opts.ecs_relative_base : ECS_RELATIVE_BASE,
                     rel);
    } else {
        if (!clean(full, false)) {
            rc = err_set(err, EINVAL,
                         "AWS_CONTAINER_CREDENTIALS_FULL_URI has a space or control "
                         "character");
            goto out;
        }
        if ((rc = check_full_uri(full, err)))
            goto out;
        n = snprintf(url, sizeof(url), "%s", full);
    }
    if (n < 0 || (size_t)n >= sizeof(url)) {
        rc = err_set(err, ENAMETOOLONG, "%s: the URL is longer than %zu bytes", what,
                     sizeof(url) - 1);
        goto out;
    }
    if ((rc = ecs_auth_token(c, tok, sizeof(tok), err)))
        goto out;
    if (h == NULL && (h = quick_client(c)) == NULL) {
        rc = err_set(err, ENOMEM, "%s: out of memory", what);
        goto out;
    }
    if ((rc = fetch(h, "GET", url, &hdr, tok[0] ? 1 : 0, &status, &body, err))) {
        err_prefix(err, "%s", what);
        goto out;
    }
    if (status != 200) {
        rc = err_set(err, status_errno(status), "%s: HTTP %ld from the credentials endpoint", what,
                     status);
        goto out;
    }
    if ((rc = cred_parse_document(what, body.data, body.len, false, out, err)))
        goto out;
    *found = true;
out:
    explicit_bzero(tok, sizeof(tok));
    if (body.data)
        explicit_bzero(body.data, body.len);
    buf_free(&body);
    return rc;
}

/* ---- 4. EC2 instance metadata (IMDSv2) -------------------------------------------------- */

static int from_imds(struct cred_chain *c, struct cred *out, bool *found, err_t *err)
{
    const char *what = "IMDS", *disabled = env(c, "AWS_EC2_METADATA_DISABLED");
    const char *ep = env(c, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const char *mode = env(c, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    const char *list = "/latest/meta-data/iam/security-credentials/";
    char base[URL_MAX], url[URL_MAX + 256], token[IMDS_TOKEN_MAX], role[IMDS_ROLE_MAX];
    struct http_header hdr;
    struct http_client *h;
    struct buf body;
    long status = 0;
    size_t n;
    int rc = 0;
    *found = false;
    token[0] = '\0';
    buf_init(&body, BODY_MAX);
    if (disabled && strcasecmp(disabled, "true") == 0)
        goto out;
    if (ep == NULL)
        ep = mode && strcasecmp(mode, "IPv6") == 0 ? IMDS_ENDPOINT_IPV6 : IMDS_ENDPOINT;
    n = strlen(ep);
    while (n > 0 && ep[n - 1] == '/')
        n--;
    if (n >= sizeof(base) ||
        (strncasecmp(ep, "http://", 7) != 0 && strncasecmp(ep, "https://", 8) != 0) ||
        !clean(ep, false)) {
        rc = err_set(err, EINVAL,
                     "AWS_EC2_METADATA_SERVICE_ENDPOINT must be an http or https "
                     "URL");
        goto out;
    }
    memcpy(base, ep, n);
    base[n] = '\0';
    if ((h = quick_client(c)) == NULL) {
        rc = err_set(err, ENOMEM, "%s: out of memory", what);
        goto out;
    }

    /* the session token; no answer here means there is no IMDS */
    snprintf(url, sizeof(url), "%s/latest/api/token", base);
    hdr = (struct http_header){"X-aws-ec2-metadata-token-ttl-seconds", IMDS_TTL_S};
    if ((rc = fetch(h, "PUT", url, &hdr, 1, &status, &body, err))) {
        log_msg(c->log, LOG_DEBUG, "IMDS at %s does not answer: %s", base, err ? err->msg : "");
        err_prefix(err, "%s", what);
        rc = 0;
        goto out;
    }
    if (status != 200) {
        rc = err_set(err, status_errno(status), "%s: HTTP %ld on the session token request", what,
                     status);
        goto out;
    }
    n = body.len;
    const char *t = trim((const char *)body.data, &n);
    if (n == 0 || n >= sizeof(token)) {
        rc = err_set(err, EPROTO, "%s: the session token is empty or longer than %zu bytes", what,
                     sizeof(token) - 1);
        goto out;
    }
    memcpy(token, t, n);
    token[n] = '\0';
    if (!clean(token, false)) {
        rc = err_set(err, EPROTO, "%s: the session token has a space or control character", what);
        goto out;
    }
    explicit_bzero(body.data, body.len);
    body.len = 0;

    /* the role name */
    hdr = (struct http_header){"X-aws-ec2-metadata-token", token};
    snprintf(url, sizeof(url), "%s%s", base, list);
    if ((rc = fetch(h, "GET", url, &hdr, 1, &status, &body, err))) {
        err_prefix(err, "%s: listing the instance role", what);
        goto out;
    }
    if (status == 404) {
        rc = err_set(err, ENOENT, "%s: no IAM role is attached to this instance (HTTP 404)", what);
        goto out;
    }
    if (status != 200) {
        rc = err_set(err, status_errno(status), "%s: HTTP %ld listing the instance role", what,
                     status);
        goto out;
    }
    const char *nl = body.data ? memchr(body.data, '\n', body.len) : NULL;
    n = nl ? (size_t)(nl - (const char *)body.data) : body.len;
    const char *r = trim((const char *)body.data, &n);
    if (n == 0 || n >= sizeof(role) ||
        strspn(r, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@_-") < n) {
        rc = err_set(err, EPROTO, "%s: the instance role name is empty or malformed", what);
        goto out;
    }
    memcpy(role, r, n);
    role[n] = '\0';
    body.len = 0;

    /* the role's credentials */
    snprintf(url, sizeof(url), "%s%s%s", base, list, role);
    if ((rc = fetch(h, "GET", url, &hdr, 1, &status, &body, err))) {
        err_prefix(err, "%s: fetching the credentials of role %s", what, role);
        goto out;
    }
    if (status != 200) {
        rc = err_set(err, status_errno(status), "%s: HTTP %ld fetching the credentials of role %s",
                     what, status, role);
        goto out;
    }
    if ((rc = cred_parse_document(what, body.data, body.len, true, out, err)))
        goto out;
    *found = true;
out:
    explicit_bzero(token, sizeof(token));
    if (body.data)
        explicit_bzero(body.data, body.len);
    buf_free(&body);
    return rc;
}

/* ---- the chain -------------------------------------------------------------------------- */

static int run(struct cred_chain *c, enum source s, struct cred *out, bool *found, err_t *err)
{
    int rc;
    cred_wipe(out);
    switch (s) {
    case SRC_ENV:
        rc = from_env(c, out, found, err);
        break;
    case SRC_FILE:
        rc = from_files(c, out, found, err);
        break;
    case SRC_ECS:
        rc = from_ecs(c, out, found, err);
        break;
    case SRC_IMDS:
        rc = from_imds(c, out, found, err);
        break;
    default:
        *found = false;
        return 0;
    }
    if (rc || !*found)
        cred_wipe(out);
    return rc;
}

/* Asks each provider in turn. Returns 0 with *src set, or an errno with err set. */
static int resolve(struct cred_chain *c, struct cred *out, enum source *src, err_t *err)
{
    /* an explicit --profile wins over environment keys, as in the AWS CLI */
    for (int s = c->opts.profile ? SRC_FILE : SRC_ENV; s <= SRC_IMDS; s++) {
        bool found = false;
        int rc = run(c, (enum source)s, out, &found, err);
        if (rc)
            return rc;
        if (found) {
            *src = (enum source)s;
            return 0;
        }
    }
    return err_set(err, ENOENT, "no AWS credentials found (environment, shared files, ECS, IMDS)");
}

int cred_chain_get(struct cred_chain *c, struct cred *out, err_t *err)
{
    struct cred fresh;
    err_t e = {0};
    enum source src = SRC_NONE;
    int rc = 0;
    memset(&fresh, 0, sizeof(fresh));
    pthread_mutex_lock(&c->lock);
    time_t t = now(c);
    if (!c->have) {
        if ((rc = resolve(c, &fresh, &src, &e)) == 0) {
            c->cached = fresh;
            c->have = true;
            atomic_store(&c->source, (int)src);
            log_msg(c->log, LOG_DEBUG, "AWS credentials from %s", source_names[src]);
        }
    } else if (c->cached.expiration != 0 && c->cached.expiration - (int64_t)t < REFRESH_AHEAD_S) {
        bool found = false;
        src = (enum source)atomic_load(&c->source);
        rc = run(c, src, &fresh, &found, &e);
        if (rc == 0 && !found)
            rc = e.code ? e.code
                        : err_set(&e, ENOENT, "%s: the credentials to refresh are gone",
                                  source_names[src]);
        if (rc == 0) {
            cred_wipe(&c->cached);
            c->cached = fresh;
            log_msg(c->log, LOG_DEBUG, "AWS credentials from %s refreshed", source_names[src]);
        } else if (c->cached.expiration > (int64_t)t) {
            /* still valid for a while: keep signing with them and try again next time */
            log_msg(c->log, LOG_WARNING,
                    "refreshing AWS credentials from %s failed, using the current ones: %s",
                    source_names[src], e.msg);
            rc = 0;
        } else {
            err_prefix(&e, "refreshing expired AWS credentials");
        }
    }
    if (rc == 0)
        *out = c->cached;
    pthread_mutex_unlock(&c->lock);
    cred_wipe(&fresh);
    if (rc && err)
        *err = e;
    return rc;
}
