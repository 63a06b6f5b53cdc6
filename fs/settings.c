/* settings.c — the options of s3torrentfs from the command line, the environment and the config
 * file (docs/DESIGN.md §7: command line > environment > file > default), and SIGHUP reloading. */
#include "settings.h"
#include "meta.h"

#include "s3torrent/config.h"
#include "s3torrent/recipe.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OPT(t, p)                                                                                  \
    {                                                                                              \
        t, offsetof(struct settings_opts, p), 1                                                    \
    }
/* a switch's "no" form: -1 records "off" so that it beats the file's "on" */
#define OFF(t, p)                                                                                  \
    {                                                                                              \
        t, offsetof(struct settings_opts, p), -1                                                   \
    }
static const struct fuse_opt opt_spec[] = {
    OPT("config=%s", config),
    OPT("bucket=%s", bucket),
    OPT("endpoint=%s", endpoint),
    OPT("region=%s", region),
    OPT("profile=%s", profile),
    OPT("path_style", path_style),
    OFF("nopath_style", path_style),
    OPT("addressing_style=%s", addressing_style),
    OPT("cache=%s", cache),
    OPT("cache_max=%s", cache_max),
    OPT("ttl=%s", ttl),
    OPT("negative_ttl=%s", negative_ttl),
    OPT("trackers=%s", trackers),
    OPT("webseed=%s", webseed),
    OPT("piece_length=%s", piece_length),
    OPT("meta_version=%s", meta_version),
    OPT("private", private_),
    OFF("noprivate", private_),
    OPT("source=%s", source),
    OPT("comment=%s", comment),
    OPT("no_date", no_date),
    OPT("uid=%s", uid),
    OPT("gid=%s", gid),
    OPT("umask=%s", umask),
    OPT("read_ahead=%s", read_ahead),
    OPT("block_cache=%s", block_cache),
    OPT("disk_cache=%s", disk_cache),
    OPT("disk_cache_max=%s", disk_cache_max),
    OPT("prefetch_torrents=%s", prefetch_torrents),
    OPT("prefetch_torrents", prefetch_flag),
    OPT("max_generations=%s", max_generations),
    OPT("dir_torrents=%s", dir_torrents),
    OPT("metrics_file=%s", metrics_file),
    OPT("metrics_interval=%s", metrics_interval),
    OPT("-h", show_help),
    OPT("--help", show_help),
    OPT("-V", show_version),
    OPT("--version", show_version),
    FUSE_OPT_END,
};

/* The string options, for merging and freeing them alike. */
static const size_t str_fields[] = {
    offsetof(struct settings_opts, bucket),
    offsetof(struct settings_opts, config),
    offsetof(struct settings_opts, endpoint),
    offsetof(struct settings_opts, region),
    offsetof(struct settings_opts, profile),
    offsetof(struct settings_opts, cache),
    offsetof(struct settings_opts, cache_max),
    offsetof(struct settings_opts, ttl),
    offsetof(struct settings_opts, negative_ttl),
    offsetof(struct settings_opts, trackers),
    offsetof(struct settings_opts, webseed),
    offsetof(struct settings_opts, piece_length),
    offsetof(struct settings_opts, meta_version),
    offsetof(struct settings_opts, source),
    offsetof(struct settings_opts, comment),
    offsetof(struct settings_opts, uid),
    offsetof(struct settings_opts, gid),
    offsetof(struct settings_opts, umask),
    offsetof(struct settings_opts, read_ahead),
    offsetof(struct settings_opts, block_cache),
    offsetof(struct settings_opts, disk_cache),
    offsetof(struct settings_opts, disk_cache_max),
    offsetof(struct settings_opts, prefetch_torrents),
    offsetof(struct settings_opts, max_generations),
    offsetof(struct settings_opts, dir_torrents),
    offsetof(struct settings_opts, addressing_style),
    offsetof(struct settings_opts, metrics_file),
    offsetof(struct settings_opts, metrics_interval),
};
#define NSTR (sizeof(str_fields) / sizeof(str_fields[0]))

static char **str_at(struct settings_opts *o, size_t i)
{
    return (char **)((char *)o + str_fields[i]);
}

void settings_opts_clear(struct settings_opts *o)
{
    for (size_t i = 0; i < NSTR; i++)
        free(*str_at(o, i));
    for (unsigned i = 0; i < o->nnonopt; i++)
        free(o->nonopt[i]);
    memset(o, 0, sizeof(*o));
}

static int args_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    struct settings_opts *o = data;
    (void)outargs;
    if (key != FUSE_OPT_KEY_NONOPT)
        return 1; /* a FUSE option */
    if (o->nnonopt == sizeof(o->nonopt) / sizeof(o->nonopt[0])) {
        fprintf(stderr, "s3torrentfs: unexpected argument '%s' (see --help)\n", arg);
        return -1;
    }
    if ((o->nonopt[o->nnonopt] = strdup(arg)) == NULL)
        return -1;
    o->nnonopt++;
    return 0; /* kept aside: main gives FUSE the mount point */
}

int settings_parse_args(struct fuse_args *args, struct settings_opts *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    return fuse_opt_parse(args, cmd, opt_spec, args_proc);
}

/* ---- the config file ---- */

static int check_values(const struct settings_opts *o, err_t *err);

/* Anything the option table does not know is an unknown setting. */
static int file_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    (void)data;
    (void)arg;
    (void)key;
    (void)outargs;
    return -1;
}

static bool is_switch(const char *name)
{
    return strcmp(name, "path_style") == 0 || strcmp(name, "private") == 0 ||
           strcmp(name, "no_date") == 0;
}

static int file_setting(void *arg, const char *name, const char *value, err_t *err)
{
    struct settings_opts *out = arg;
    if (strspn(name, "abcdefghijklmnopqrstuvwxyz_") != strlen(name))
        return err_set(err, EINVAL, "'%s' is not a setting name (lower-case letters and '_')",
                       name);
    if (strcmp(name, "config") == 0)
        return err_set(err, EINVAL, "a config file cannot name another one");
    if (is_switch(name) && value != NULL) {
        bool on;
        if (config_parse_switch(name, value, &on, err))
            return EINVAL;
        if (!on)
            return 0;
        value = NULL;
    }
    if (value != NULL && *value == '\0')
        return err_set(err, EINVAL, "%s has no value", name);
    /* the same option parser as -o, on "name=value" with FUSE's comma escaped */
    size_t nl = strlen(name), vl = value ? strlen(value) : 0;
    char *opt = malloc(nl + 2 * vl + 2);
    if (opt == NULL)
        return err_set(err, ENOMEM, "out of memory");
    char *w = opt + nl;
    memcpy(opt, name, nl);
    if (value) {
        *w++ = '=';
        for (const char *r = value; *r; r++) {
            if (*r == ',' || *r == '\\')
                *w++ = '\\';
            *w++ = *r;
        }
    }
    *w = '\0';
    struct settings_opts one = {0};
    char *argv[] = {"s3torrentfs", "-o", opt, NULL};
    struct fuse_args a = FUSE_ARGS_INIT(3, argv);
    int prc = fuse_opt_parse(&a, &one, opt_spec, file_proc);
    fuse_opt_free_args(&a);
    free(opt);
    int rc = 0;
    if (prc != 0 || one.show_help || one.show_version)
        rc = err_set(err, EINVAL, "unknown setting '%s'%s", name,
                     value == NULL && !is_switch(name) ? " (or it needs '= value')" : "");
    else
        rc = check_values(&one, err); /* here, so that the message has the line */
    for (size_t i = 0; rc == 0 && i < NSTR; i++) {
        char **from = str_at(&one, i), **to = str_at(out, i);
        if (*from && *to)
            rc = err_set(err, EINVAL, "%s is set twice", name);
        else if (*from) {
            *to = *from;
            *from = NULL;
        }
    }
    if (one.path_style)
        out->path_style = one.path_style;
    if (one.private_)
        out->private_ = one.private_;
    if (one.no_date)
        out->no_date = one.no_date;
    out->prefetch_flag |= one.prefetch_flag;
    settings_opts_clear(&one);
    return rc;
}

int settings_read_file(const char *path, struct settings_opts *out, err_t *err)
{
    memset(out, 0, sizeof(*out));
    int rc = config_file_read(path, file_setting, out, err);
    if (rc)
        settings_opts_clear(out);
    return rc;
}

/* ---- resolving ---- */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static const char *pick(const char *cmd, const char *file)
{
    return cmd ? cmd : file;
}

/* An option the environment can also give: the file's value only when the environment is
 * silent (the environment itself is read where the setting is used, or here). */
static const char *pick_env(const char *cmd, const char *file, const char *env1, const char *env2)
{
    if (cmd)
        return cmd;
    if (env(env1) || (env2 && env(env2)))
        return NULL;
    return file;
}

static int parse_uint(const char *name, const char *s, int base, unsigned max, unsigned *out,
                      err_t *err)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, base);
    if (errno || end == s || *s == '-' || *end || v > max)
        return err_set(err, EINVAL, "%s=%s is not %s", name, s,
                       base == 8 ? "an octal mask (like 022)" : "a numeric id");
    *out = (unsigned)v;
    return 0;
}

static int parse_count(const char *name, const char *s, unsigned max, unsigned *out, err_t *err)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *s == '-' || *end || v > max)
        return err_set(err, EINVAL, "%s=%s is not a number from 0 to %u", name, s, max);
    *out = (unsigned)v;
    return 0;
}

static int parse_seconds(const char *name, const char *s, double *out, err_t *err)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0)
        return err_set(err, EINVAL, "%s=%s is not a number of seconds", name, s);
    *out = v;
    return 0;
}

static bool switch_on(int cmd, int file);

/* The torrent options of cmd over file (and over TRACKERS and WEBSEED_BASE, with use_env) into
 * a new b, through lib/'s recipe builder, so that they are checked and named as everywhere else.
 * Returns 0, or an errno with err set; the caller frees b either way. */
static int set_recipe(struct recipe *b, const struct settings_opts *cmd,
                      const struct settings_opts *file, bool use_env, err_t *err)
{
    int rc = 0;
    const char *v;
    recipe_init(b);
#define SET(f, name, value) (rc = rc ? rc : recipe_set(b, f, name, value, err))
    if ((v = pick(cmd->meta_version, file->meta_version)))
        SET(RECIPE_META, "meta_version", v);
    if ((v = pick(cmd->piece_length, file->piece_length)))
        SET(RECIPE_PIECE_LENGTH, "piece_length", v);
    if (cmd->trackers)
        SET(RECIPE_TRACKERS, "trackers", cmd->trackers);
    else if (use_env && (v = env("TRACKERS")))
        SET(RECIPE_TRACKERS, "TRACKERS", v);
    else if (file->trackers)
        SET(RECIPE_TRACKERS, "trackers", file->trackers);
    if (cmd->webseed)
        SET(RECIPE_WEBSEED, "webseed", cmd->webseed);
    else if (use_env && (v = env("WEBSEED_BASE")))
        SET(RECIPE_WEBSEED, "WEBSEED_BASE", v);
    else if (file->webseed)
        SET(RECIPE_WEBSEED, "webseed", file->webseed);
    if ((v = pick(cmd->source, file->source)))
        SET(RECIPE_SOURCE, "source", v);
    if ((v = pick(cmd->comment, file->comment)))
        SET(RECIPE_COMMENT, "comment", v);
    if (switch_on(cmd->private_, file->private_))
        SET(RECIPE_PRIVATE, "private", NULL);
    if (cmd->no_date || file->no_date)
        SET(RECIPE_NO_DATE, "no_date", NULL);
#undef SET
    recipe_finish(b);
    return rc;
}

/* Every value o gives, parsed as resolving will parse it. */
static int check_values(const struct settings_opts *o, err_t *err)
{
    uint64_t size;
    unsigned u;
    double d;
    if (o->ttl && parse_seconds("ttl", o->ttl, &d, err))
        return EINVAL;
    if (o->negative_ttl && parse_seconds("negative_ttl", o->negative_ttl, &d, err))
        return EINVAL;
    if ((o->uid && parse_uint("uid", o->uid, 10, 0xfffffffeu, &u, err)) ||
        (o->gid && parse_uint("gid", o->gid, 10, 0xfffffffeu, &u, err)) ||
        (o->umask && parse_uint("umask", o->umask, 8, 0777, &u, err)))
        return EINVAL;
    if ((o->cache_max && config_parse_size("cache_max", o->cache_max, &size, err)) ||
        (o->block_cache && config_parse_size("block_cache", o->block_cache, &size, err)) ||
        (o->disk_cache_max && config_parse_size("disk_cache_max", o->disk_cache_max, &size, err)) ||
        (o->read_ahead && config_parse_size("read_ahead", o->read_ahead, &size, err)))
        return EINVAL;
    if ((o->prefetch_torrents &&
         parse_count("prefetch_torrents", o->prefetch_torrents, 64, &u, err)) ||
        (o->max_generations && parse_count("max_generations", o->max_generations, 64, &u, err)) ||
        (o->dir_torrents &&
         parse_count("dir_torrents", o->dir_torrents, DIR_TORRENTS_MAX, &u, err)) ||
        (o->metrics_interval &&
         parse_count("metrics_interval", o->metrics_interval, 86400, &u, err)))
        return EINVAL;
    struct recipe b;
    static const struct settings_opts none;
    int rc = set_recipe(&b, o, &none, false, err);
    recipe_free(&b);
    return rc;
}

/* A switch from the command line (1 on, -1 off, 0 not given) beats the file's. */
static bool switch_on(int cmd, int file)
{
    return cmd ? cmd > 0 : file > 0;
}

static char *dup_or_null(const char *s, bool *oom)
{
    char *d = s ? strdup(s) : NULL;
    *oom |= s != NULL && d == NULL;
    return d;
}

void settings_free(struct fs_settings *s)
{
    if (s == NULL)
        return;
    recipe_free(&s->built);
    free(s);
}

void fs_config_clear(struct fs_config *c)
{
    free(c->bucket);
    free(c->prefix);
    free(c->endpoint);
    free(c->region);
    free(c->profile);
    free(c->cache_path);
    free(c->metrics_file);
    free(c->disk_cache);
    memset(c, 0, sizeof(*c));
}

static int resolve_fixed(const struct settings_opts *cmd, const struct settings_opts *file,
                         struct fs_config *c, err_t *err)
{
    int rc = 0;
    bool oom = false;
    memset(c, 0, sizeof(*c));
    c->cache_max = 1ull << 30;
    c->block_cache = 64u << 20;
    c->disk_cache_max = 1ull << 30;
    c->max_entries = 300000;
    const char *bucket = cmd->nnonopt >= 2 ? cmd->nonopt[0] : pick(cmd->bucket, file->bucket);
    if (bucket == NULL || *bucket == '\0')
        return err_set(err, EINVAL,
                       "no bucket: give BUCKET[:PREFIX] (or bucket = in the config "
                       "file)");
    const char *colon = strchr(bucket, ':');
    size_t blen = colon ? (size_t)(colon - bucket) : strlen(bucket);
    if (blen == 0)
        return err_set(err, EINVAL, "'%s' names no bucket: give BUCKET[:PREFIX]", bucket);
    if (s3_check_bucket(bucket, blen, err)) /* the rule of every front end */
        return EINVAL;
    const char *p = colon ? colon + 1 : "";
    while (*p == '/')
        p++;
    size_t n = strlen(p);
    if ((c->bucket = strndup(bucket, blen)) == NULL || (c->prefix = malloc(n + 2)) == NULL) {
        fs_config_clear(c);
        return err_set(err, ENOMEM, "out of memory");
    }
    snprintf(c->prefix, n + 2, "%s%s", p, n > 0 && p[n - 1] != '/' ? "/" : "");
    c->endpoint = dup_or_null(
        pick_env(cmd->endpoint, file->endpoint, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"), &oom);
    c->region =
        dup_or_null(pick_env(cmd->region, file->region, "AWS_REGION", "AWS_DEFAULT_REGION"), &oom);
    c->profile = dup_or_null(pick_env(cmd->profile, file->profile, "AWS_PROFILE", NULL), &oom);
    c->cache_path = dup_or_null(pick(cmd->cache, file->cache), &oom);
    c->metrics_file = dup_or_null(pick(cmd->metrics_file, file->metrics_file), &oom);
    c->metrics_interval = 15;
    c->disk_cache = dup_or_null(pick(cmd->disk_cache, file->disk_cache), &oom);
    /* addressing_style (command line > file) beats the path_style switch */
    const char *s = pick(cmd->addressing_style, file->addressing_style);
    if (s)
        rc = s3_addressing_parse(s, &c->addressing, err);
    else if (switch_on(cmd->path_style, file->path_style))
        c->addressing = S3_ADDRESSING_PATH;
    if ((s = pick(cmd->cache_max, file->cache_max)))
        rc = rc ? rc : config_parse_size("cache_max", s, &c->cache_max, err);
    if ((s = pick(cmd->block_cache, file->block_cache)))
        rc = rc ? rc : config_parse_size("block_cache", s, &c->block_cache, err);
    if ((s = pick(cmd->metrics_interval, file->metrics_interval)))
        rc = rc ? rc : parse_count("metrics_interval", s, 86400, &c->metrics_interval, err);
    if ((s = pick(cmd->disk_cache_max, file->disk_cache_max)))
        rc = rc ? rc : config_parse_size("disk_cache_max", s, &c->disk_cache_max, err);
    /* -o prefetch_torrents[=N] on the command line beats the file's, with or without N */
    const struct settings_opts *pf = cmd->prefetch_torrents || cmd->prefetch_flag ? cmd : file;
    if (pf->prefetch_torrents)
        rc = rc ? rc
                : parse_count("prefetch_torrents", pf->prefetch_torrents, 64, &c->prefetch_torrents,
                              err);
    else if (pf->prefetch_flag)
        c->prefetch_torrents = 2;
    if (rc == 0 && oom)
        rc = err_set(err, ENOMEM, "out of memory");
    if (rc)
        fs_config_clear(c);
    return rc;
}

static int resolve_live(const struct settings_opts *cmd, const struct settings_opts *file,
                        struct fs_settings **out, err_t *err)
{
    struct fs_settings *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return err_set(err, ENOMEM, "out of memory");
    int rc = 0;
    s->ttl = 60;
    s->negative_ttl = 5;
    s->umask = 022;
    s->uid = getuid();
    s->gid = getgid();
    s->read_ahead = 32u << 20;
    s->max_generations = 2;
    const char *v;
#define TRY(call) (rc = rc ? rc : (call))
    if ((v = pick(cmd->ttl, file->ttl)))
        TRY(parse_seconds("ttl", v, &s->ttl, err));
    if ((v = pick(cmd->negative_ttl, file->negative_ttl)))
        TRY(parse_seconds("negative_ttl", v, &s->negative_ttl, err));
    if ((v = pick(cmd->uid, file->uid)))
        TRY(parse_uint("uid", v, 10, 0xfffffffeu, &s->uid, err));
    if ((v = pick(cmd->gid, file->gid)))
        TRY(parse_uint("gid", v, 10, 0xfffffffeu, &s->gid, err));
    if ((v = pick(cmd->umask, file->umask)))
        TRY(parse_uint("umask", v, 8, 0777, &s->umask, err));
    if ((v = pick(cmd->read_ahead, file->read_ahead)))
        TRY(config_parse_size("read_ahead", v, &s->read_ahead, err));
    if ((v = pick(cmd->max_generations, file->max_generations)))
        TRY(parse_count("max_generations", v, 64, &s->max_generations, err));
    if ((v = pick(cmd->dir_torrents, file->dir_torrents)))
        TRY(parse_count("dir_torrents", v, DIR_TORRENTS_MAX, &s->dir_torrents, err));
    if (rc == 0 && s->max_generations == 0)
        rc = err_set(err, EINVAL, "max_generations must be at least 1");

    /* the torrent recipe: the same options, and so the same bytes, as s3torrent create */
    if (rc == 0)
        rc = set_recipe(&s->built, cmd, file, true, err);
    s->recipe = s->built.r;
#undef TRY
    if (rc) {
        settings_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int settings_resolve(const struct settings_opts *cmd, const struct settings_opts *file,
                     struct fs_config *fixed, struct fs_settings **live, err_t *err)
{
    struct fs_config scratch;
    struct fs_config *c = fixed ? fixed : &scratch;
    int rc = resolve_fixed(cmd, file, c, err);
    if (rc == 0 && (rc = resolve_live(cmd, file, live, err)) != 0)
        fs_config_clear(c);
    if (rc == 0 && fixed == NULL)
        fs_config_clear(c);
    return rc;
}

/* ---- publishing and SIGHUP ---- */

static pthread_mutex_t publish_lock = PTHREAD_MUTEX_INITIALIZER;

void settings_publish(struct live *l, struct fs_settings *live)
{
    pthread_mutex_lock(&publish_lock);
    live->older = atomic_load_explicit(&l->cur, memory_order_relaxed);
    atomic_store_explicit(&l->cur, live, memory_order_release);
    pthread_mutex_unlock(&publish_lock);
}

void settings_retire_all(struct live *l)
{
    struct fs_settings *s = atomic_exchange(&l->cur, NULL);
    while (s) {
        struct fs_settings *older = s->older;
        settings_free(s);
        s = older;
    }
}

static struct watch {
    struct fs *fs;
    const struct settings_opts *cmd;
    const char *path;
    sem_t hup;
    atomic_bool stop;
    pthread_t thread;
    bool running;
} watch;

static void on_hup(int sig)
{
    (void)sig;
    int saved = errno;
    sem_post(&watch.hup); /* async-signal-safe */
    errno = saved;
}

static bool differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

static void reload(struct watch *w)
{
    struct fs *fs = w->fs;
    struct settings_opts file = {0};
    struct fs_config fixed;
    struct fs_settings *live = NULL;
    err_t err = {0};
    int rc = w->path ? settings_read_file(w->path, &file, &err) : 0;
    if (rc == 0)
        rc = settings_resolve(w->cmd, &file, &fixed, &live, &err);
    settings_opts_clear(&file);
    if (rc) {
        log_msg(&fs->log, LOG_ERR, "SIGHUP: %s; the running configuration stays", err.msg);
        return;
    }
    const struct fs_config *c = &fs->cfg;
    const char *fixed_changed[12];
    size_t nf = 0;
    if (strcmp(fixed.bucket, c->bucket) != 0 || strcmp(fixed.prefix, c->prefix) != 0)
        fixed_changed[nf++] = "bucket";
    if (differs(fixed.endpoint, c->endpoint))
        fixed_changed[nf++] = "endpoint";
    if (differs(fixed.region, c->region))
        fixed_changed[nf++] = "region";
    if (differs(fixed.profile, c->profile))
        fixed_changed[nf++] = "profile";
    if (fixed.addressing != c->addressing)
        fixed_changed[nf++] = "addressing_style";
    char dflt[4096] = "";
    if (fixed.cache_path == NULL && cache_default_path(dflt, sizeof(dflt)) != 0)
        dflt[0] = '\0';
    if (differs(fixed.cache_path ? fixed.cache_path : dflt, c->cache_path) ||
        fixed.cache_max != c->cache_max)
        fixed_changed[nf++] = "cache";
    if (fixed.block_cache != c->block_cache)
        fixed_changed[nf++] = "block_cache";
    if (differs(fixed.disk_cache, c->disk_cache) || fixed.disk_cache_max != c->disk_cache_max)
        fixed_changed[nf++] = "disk_cache";
    if (fixed.prefetch_torrents != c->prefetch_torrents)
        fixed_changed[nf++] = "prefetch_torrents";
    if (differs(fixed.metrics_file, c->metrics_file) ||
        fixed.metrics_interval != c->metrics_interval)
        fixed_changed[nf++] = "metrics_file";
    for (size_t i = 0; i < nf; i++)
        log_msg(&fs->log, LOG_WARNING, "SIGHUP: %s changed; it takes effect at the next mount",
                fixed_changed[i]);
    fs_config_clear(&fixed);
    settings_publish(&fs->live, live);
    meta_flush(fs->meta);
    log_msg(&fs->log, LOG_INFO, "SIGHUP: configuration %s%s, listings dropped",
            w->path ? "reread from " : "unchanged (no config file)", w->path ? w->path : "");
}

static void *watcher(void *arg)
{
    struct watch *w = arg;
    for (;;) {
        while (sem_wait(&w->hup) != 0)
            ; /* EINTR */
        if (atomic_load(&w->stop))
            return NULL;
        reload(w);
    }
}

int settings_watch_start(struct fs *fs, const struct settings_opts *cmd, const char *path)
{
    watch.fs = fs;
    watch.cmd = cmd;
    watch.path = path;
    atomic_store(&watch.stop, false);
    if (sem_init(&watch.hup, 0, 0) != 0)
        return errno;
    int rc = pthread_create(&watch.thread, NULL, watcher, &watch);
    if (rc) {
        sem_destroy(&watch.hup);
        return rc;
    }
    watch.running = true;
    struct sigaction sa = {.sa_handler = on_hup};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    return sigaction(SIGHUP, &sa, NULL) == 0 ? 0 : errno;
}

void settings_watch_stop(void)
{
    if (!watch.running)
        return;
    signal(SIGHUP, SIG_IGN);
    atomic_store(&watch.stop, true);
    sem_post(&watch.hup);
    pthread_join(watch.thread, NULL);
    sem_destroy(&watch.hup);
    watch.running = false;
}
