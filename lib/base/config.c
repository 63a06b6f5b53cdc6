/* config.c — shared defaults and environment parsing. */
#include "s3torrent/config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const config_default_trackers[] = {
    "udp://tracker.opentrackr.org:1337/announce",
    "udp://open.stealth.si:80/announce",
    "udp://tracker.torrent.eu.org:451/announce",
};
const size_t config_default_ntrackers =
    sizeof(config_default_trackers) / sizeof(config_default_trackers[0]);

size_t config_split_list(const char *s, char ***out)
{
    size_t len = strlen(s), max = 1;
    for (const char *p = s; *p; p++)
        max += *p == ',';
    /* the pointer array and a copy of the text share one block */
    char **v = malloc(max * sizeof(char *) + len + 1);
    size_t n = 0;
    *out = v;
    if (v == NULL)
        return 0;
    char *text = (char *)(v + max);
    memcpy(text, s, len + 1);
    for (char *tok = text; tok != NULL;) {
        char *comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*tok)
            v[n++] = tok;
        tok = comma ? comma + 1 : NULL;
    }
    return n;
}

int config_parse_size(const char *name, const char *s, uint64_t *out, err_t *err)
{
    /* K M G T, each with an optional i and an optional B, any case, all binary; or a B alone */
    static const char units[] = "KMGT";
    const char *p = s;
    uint64_t v = 0, mult = 1;
    bool ok = *p >= '0' && *p <= '9';
    for (; ok && *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            ok = false;
        else
            v = v * 10 + d;
    }
    const char *u = ok && *p ? strchr(units, *p & ~0x20) : NULL;
    if (u != NULL) {
        mult = 1ull << (10 * (u - units + 1));
        p++;
        if (*p == 'i' || *p == 'I')
            p++;
        if (*p == 'b' || *p == 'B')
            p++;
    } else if (ok && (*p == 'b' || *p == 'B')) {
        p++;
    }
    if (!ok || *p != '\0' || v > UINT64_MAX / mult)
        return err_set(err, EINVAL,
                       "%s: \"%.64s\" is not a size (digits with an optional K, M, G or T suffix, "
                       "e.g. 256K or 4MiB)",
                       name, s);
    *out = v * mult;
    return 0;
}

int config_parse_switch(const char *name, const char *value, bool *out, err_t *err)
{
    static const char *const on[] = {"true", "yes", "on", "1"};
    static const char *const off[] = {"false", "no", "off", "0"};
    if (value == NULL) {
        *out = true;
        return 0;
    }
    for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
        if (strcmp(value, on[i]) == 0 || strcmp(value, off[i]) == 0) {
            *out = strcmp(value, on[i]) == 0;
            return 0;
        }
    }
    return err_set(err, EINVAL, "%s: \"%.64s\" is not a switch (true or false)", name, value);
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int config_service(const char *what, const char *service, const char *env_endpoint,
                   const char *endpoint, const char *region, unsigned max_attempts,
                   struct config_service *out, err_t *err)
{
    char dflt[256];
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if (region == NULL && (region = env("AWS_REGION")) == NULL &&
        (region = env("AWS_DEFAULT_REGION")) == NULL)
        region = "us-east-1";
    const char *ep = endpoint;
    if (ep == NULL && (ep = env(env_endpoint)) == NULL)
        ep = env("AWS_ENDPOINT_URL");
    out->custom = ep != NULL;
    if (ep == NULL) {
        snprintf(dflt, sizeof(dflt), "https://%s.%s.amazonaws.com", service, region);
        ep = dflt;
    }
    const char *sep = strstr(ep, "://");
    size_t hl = sep ? strcspn(sep + 3, "/?#") : 0;
    if (sep == NULL || (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0))
        return err_set(err, EINVAL, "%s endpoint URL '%s' must start with http:// or https://",
                       what, ep);
    if (hl == 0 || sep[3 + hl] == '?' || sep[3 + hl] == '#' ||
        (sep[3 + hl] == '/' && sep[4 + hl] != '\0'))
        return err_set(err, EINVAL, "%s endpoint URL '%s' must be scheme://host[:port]", what, ep);
    if (max_attempts == 0 && env("AWS_MAX_ATTEMPTS")) {
        char *end;
        unsigned long v = strtoul(env("AWS_MAX_ATTEMPTS"), &end, 10);
        if (*end || v == 0 || v > 100)
            return err_set(err, EINVAL, "AWS_MAX_ATTEMPTS must be a number from 1 to 100");
        max_attempts = (unsigned)v;
    }
    out->max_attempts = max_attempts;
    out->scheme = strndup(ep, (size_t)(sep - ep));
    out->host = strndup(sep + 3, hl);
    out->region = strdup(region);
    if (!out->scheme || !out->host || !out->region) {
        config_service_free(out);
        rc = err_set(err, ENOMEM, "out of memory");
    }
    return rc;
}

void config_service_free(struct config_service *s)
{
    free(s->scheme);
    free(s->host);
    free(s->region);
    memset(s, 0, sizeof(*s));
}

#define CONFIG_FILE_MAX (1024 * 1024)

static char *trim_in_place(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        *--end = '\0';
    return s;
}

int config_file_read(const char *path, config_file_fn fn, void *arg, err_t *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return err_set(err, errno, "cannot open config file %s: %s", path, strerror(errno));
    char *text = malloc(CONFIG_FILE_MAX + 1);
    size_t len = text ? fread(text, 1, CONFIG_FILE_MAX + 1, f) : 0;
    int rc = 0;
    if (text == NULL)
        rc = err_set(err, ENOMEM, "out of memory reading %s", path);
    else if (ferror(f))
        rc = err_set(err, EIO, "cannot read config file %s", path);
    else if (len > CONFIG_FILE_MAX)
        rc = err_set(err, EFBIG, "config file %s is larger than 1 MiB", path);
    fclose(f);
    if (rc == 0 && memchr(text, '\0', len) != NULL)
        rc = err_set(err, EINVAL, "config file %s is not text (it holds a NUL byte)", path);
    if (rc) {
        free(text);
        return rc;
    }
    text[len] = '\0';
    char *p = text;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    for (unsigned line = 1; rc == 0 && p != NULL; line++) {
        char *eol = strchr(p, '\n');
        if (eol)
            *eol = '\0';
        char *s = trim_in_place(p), *value = NULL;
        p = eol ? eol + 1 : NULL;
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq) {
            *eq = '\0';
            value = trim_in_place(eq + 1);
            s = trim_in_place(s);
        }
        if (*s == '\0' || strcspn(s, " \t") != strlen(s)) {
            rc = err_set(err, EINVAL, "%s:%u: expected 'name = value'", path, line);
        } else if ((rc = fn(arg, s, value, err)) != 0) {
            if (err)
                err_prefix(err, "%s:%u", path, line);
        }
    }
    free(text);
    return rc;
}
