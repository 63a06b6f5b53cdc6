/* cli.c — helpers shared by the s3torrent subcommands. */
#include "cli.h"
#include "cache.h"
#include "s3torrent/cred.h"
#include "s3torrent/http.h"
#include "s3torrent/outfile.h"
#include "s3torrent/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_error(int code, const char *fmt, ...)
{
    va_list ap;
    fputs("s3torrent: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cli_parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return EINVAL;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v == 0 || v > max)
        return EINVAL;
    *out = (unsigned)v;
    return 0;
}

const char *cli_human(uint64_t n, bool binary, char *out, size_t len)
{
    static const char *const si[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    static const char *const iec[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double k = binary ? 1024.0 : 1000.0, v = (double)n;
    int i = 0;
    while (v >= k && i < 5) {
        v /= k;
        i++;
    }
    if (i == 0)
        snprintf(out, len, "%llu %s", (unsigned long long)n, binary ? iec[0] : si[0]);
    else
        snprintf(out, len, v < 100 ? "%.2f %s" : "%.1f %s", v, binary ? iec[i] : si[i]);
    return out;
}

void cli_progress_init(struct cli_progress *p, const char *label)
{
    p->enabled = isatty(STDERR_FILENO);
    p->label = label;
    clock_gettime(CLOCK_MONOTONIC, &p->start);
}

void cli_progress_cb(void *arg, uint64_t done, uint64_t total)
{
    struct cli_progress *p = arg;
    struct timespec now;
    if (!p->enabled || total == 0)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double secs =
        (double)(now.tv_sec - p->start.tv_sec) + (double)(now.tv_nsec - p->start.tv_nsec) / 1e9;
    double rate = secs > 0 ? (double)done / secs : 0;
    double eta = rate > 0 ? (double)(total - done) / rate : 0;
    int pct = (int)(100.0 * (double)done / (double)total);
    int fill = pct * 30 / 100;
    char bar[31];
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '-', (size_t)(30 - fill));
    bar[30] = '\0';
    fprintf(stderr, "\r%s [%s] %3d%%  %7.1f MB/s  ETA %d:%02d ", p->label, bar, pct, rate / 1e6,
            (int)eta / 60, (int)eta % 60);
    fflush(stderr);
}

void cli_progress_end(struct cli_progress *p)
{
    if (p->enabled)
        fputs("\r\033[K", stderr);
}

int cli_write_output(const char *path, const void *data, size_t len, bool force)
{
    if (strcmp(path, "-") == 0) {
        int rc = outfile_write_fd(STDOUT_FILENO, data, len);
        if (rc)
            cli_error(rc, "writing the torrent to standard output: %s", strerror(rc));
        return rc;
    }
    err_t err = {0};
    int rc = outfile_write(path, data, len, OUTFILE_SYNC | (force ? OUTFILE_REPLACE : 0), &err);
    if (rc == EEXIST)
        cli_error(rc, "%s (use --force to overwrite)", err.msg);
    else if (rc)
        cli_error(rc, "%s", err.msg);
    return rc;
}

void cli_print_escaped(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (util_is_ctl(*p))
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
}

bool cli_s3_option(struct cli_s3 *g, int c, const char *arg)
{
    switch (c) {
    case CLI_OPT_ENDPOINT:
        g->endpoint = arg;
        return true;
    case CLI_OPT_REGION:
        g->region = arg;
        return true;
    case CLI_OPT_PROFILE:
        g->profile = arg;
        return true;
    case CLI_OPT_NO_SIGN:
        g->no_sign = true;
        return true;
    case CLI_OPT_ADDRESSING:
        g->addressing = arg;
        return true;
    case CLI_OPT_DEBUG:
        g->debug = true;
        return true;
    default:
        return false;
    }
}

static int s3_connect(struct cli_s3 *g, err_t *err)
{
    g->log = log_stderr("s3torrent", g->debug ? LOG_DEBUG : LOG_WARNING);
    struct http_opts ho = {.ca_bundle = getenv("AWS_CA_BUNDLE"), .log = &g->log};
    if (ho.ca_bundle && !*ho.ca_bundle)
        ho.ca_bundle = NULL;
    if ((g->http = http_client_new(&ho)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    struct cred_chain_opts co = {.profile = g->profile, .http = g->http};
    if (!g->no_sign && (g->creds = cred_chain_new(&co)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    struct s3_config sc = {
        .endpoint = g->endpoint,
        .region = g->region,
        .no_sign = g->no_sign,
        .http = g->http,
        .creds = g->creds,
    };
    int rc = g->addressing ? s3_addressing_parse(g->addressing, &sc.addressing, err) : 0;
    return rc ? rc : s3_client_new(&sc, &g->s3, err);
}

int cli_open_source(struct cli_s3 *g, const char *arg, struct source **src, char **key, err_t *err)
{
    int rc;
    *src = NULL;
    *key = NULL;
    if (strncmp(arg, "s3://", 5) != 0) {
        if ((rc = source_file_open(arg, src, err)))
            return rc;
        if ((*key = strdup((*src)->name)) == NULL)
            return err_set(err, ENOMEM, "out of memory");
        return 0;
    }
    char *bucket;
    if ((rc = s3_parse_uri(arg, &bucket, key, err)))
        return rc;
    struct s3_client *s3;
    if ((rc = cli_s3_connect(g, &s3, err)) == 0)
        rc = source_s3_open(g->s3, bucket, *key, 0, src, err);
    free(bucket);
    return rc;
}

int cli_s3_connect(struct cli_s3 *g, struct s3_client **s3, err_t *err)
{
    int rc = g->s3 ? 0 : s3_connect(g, err);
    *s3 = g->s3;
    return rc;
}

void cli_s3_close(struct cli_s3 *g)
{
    s3_client_free(g->s3);
    cred_chain_free(g->creds);
    http_client_free(g->http);
    g->s3 = NULL;
    g->creds = NULL;
    g->http = NULL;
}

void cli_recipe_init(struct cli_recipe *r)
{
    recipe_init(&r->b);
}

/* The option names of the usage text, which start the messages. */
static int set_one(struct cli_recipe *r, enum recipe_field f, const char *name, const char *value)
{
    err_t err = {0};
    if (recipe_set(&r->b, f, name, value, &err) == 0)
        return 1;
    cli_error(CLI_USAGE, "%s", err.msg);
    return -1;
}

int cli_recipe_option(struct cli_recipe *r, int c, const char *arg)
{
    switch (c) {
    case 'l':
        return set_one(r, RECIPE_PIECE_LENGTH, "--piece-length", arg);
    case 'm':
        return set_one(r, RECIPE_META, "--meta-version", arg);
    case 't':
        return set_one(r, RECIPE_TRACKER, "--tracker", arg);
    case 'w':
        return set_one(r, RECIPE_WEBSEED, "--webseed", arg);
    case 'p':
        return set_one(r, RECIPE_PRIVATE, "--private", NULL);
    case 's':
        return set_one(r, RECIPE_SOURCE, "--source", arg);
    case 'c':
        return set_one(r, RECIPE_COMMENT, "--comment", arg);
    case 'd':
        return set_one(r, RECIPE_NO_DATE, "--no-date", NULL);
    default:
        return 0;
    }
}

int cli_recipe_finish(struct cli_recipe *r)
{
    const char *env = getenv("TRACKERS");
    if (!r->b.trackers_set && env != NULL && *env &&
        set_one(r, RECIPE_TRACKERS, "TRACKERS", env) < 0)
        return CLI_USAGE;
    env = getenv("WEBSEED_BASE");
    if (r->b.webseed == NULL && env != NULL && *env &&
        set_one(r, RECIPE_WEBSEED, "WEBSEED_BASE", env) < 0)
        return CLI_USAGE;
    recipe_finish(&r->b);
    return 0;
}

void cli_recipe_free(struct cli_recipe *r)
{
    recipe_free(&r->b);
}

char *cli_mount_prefix(const char *p)
{
    while (*p == '/')
        p++;
    size_t n = strlen(p);
    char *out = malloc(n + 2);
    if (out)
        snprintf(out, n + 2, "%s%s", p, n > 0 && p[n - 1] != '/' ? "/" : "");
    return out;
}

struct cache *cli_open_cache(const char *path)
{
    char def[4096];
    struct cache *cache = NULL;
    err_t err = {0};
    if (path == NULL && cache_default_path(def, sizeof(def)) == 0)
        path = def;
    if (path && cache_open(path, 1ull << 30, &cache, &err) != 0) {
        fprintf(stderr, "s3torrent: warning: %s; going on without the cache\n", err.msg);
        cache = NULL;
    }
    return cache;
}
