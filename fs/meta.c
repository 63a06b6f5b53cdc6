/* meta.c — directory listings for the mount. Each directory is one ListObjectsV2 with a '/'
 * delimiter, made into a sorted, immutable snapshot (docs/DESIGN.md §5: hidden keys,
 * directories over files, real .torrent objects over synthetic ones), shared by reference and
 * kept for the TTL.
 * At most one fetch per directory runs at a time; memory is bounded by an entry budget. */
#include "meta.h"
#include "s3torrent/lru.h"
#include "s3torrent/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS       4096
#define NAME_MAX_BYTES 255

struct snapshot {
    struct meta_dir d; /* first: meta_dir pointers are snapshot pointers */
    int refs;
};

struct rec {
    char *prefix;
    struct snapshot *snap;
    double fetched; /* monotonic seconds */
    bool loading;
    bool warned; /* hidden keys already logged */
    struct rec *hnext;
    struct lru_node lru;
};

#define REC(n) LRU_ENTRY(n, struct rec, lru)

struct meta {
    struct meta_config cfg;
    pthread_mutex_t lock;
    pthread_cond_t loaded;
    struct rec *table[NBUCKETS];
    struct lru lru;
    uint64_t entries; /* held in snapshots that records point at */
    uint64_t flushes; /* meta_flush calls: a listing fetched across one is stale */
};

static char *prefix_of(struct meta *m, const char *path);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % NBUCKETS;
}

void meta_entry_clear(struct meta_entry *e)
{
    free(e->name);
    free(e->key);
    free(e->etag);
    memset(e, 0, sizeof(*e));
}

static void snap_unref(struct snapshot *s)
{
    if (s == NULL || --s->refs > 0)
        return;
    for (size_t i = 0; i < s->d.n; i++)
        meta_entry_clear(&s->d.entries[i]);
    free(s->d.entries);
    free(s);
}

struct meta *meta_new(const struct meta_config *c)
{
    struct meta *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->cfg = *c;
    lru_init(&m->lru);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->loaded, NULL);
    return m;
}

/* Drops r's snapshot from the cache (readers holding it keep it alive). Lock held. */
static void drop_snapshot(struct meta *m, struct rec *r)
{
    if (r->snap) {
        m->entries -= r->snap->d.n;
        snap_unref(r->snap);
        r->snap = NULL;
    }
}

void meta_flush(struct meta *m)
{
    pthread_mutex_lock(&m->lock);
    m->flushes++; /* listings being fetched now are refetched when they arrive */
    for (struct lru_node *n = lru_oldest(&m->lru); n; n = n->newer)
        if (!REC(n)->loading)
            drop_snapshot(m, REC(n));
    pthread_mutex_unlock(&m->lock);
}

void meta_forget(struct meta *m, const char *path)
{
    const char *slash = strrchr(path, '/');
    char *parent = slash && slash != path ? strndup(path, (size_t)(slash - path)) : strdup("/");
    char *prefix = parent ? prefix_of(m, parent) : NULL;
    free(parent);
    if (prefix == NULL)
        return; /* out of memory: the TTL still ends it */
    pthread_mutex_lock(&m->lock);
    struct rec *r = m->table[hash(prefix)];
    while (r && strcmp(r->prefix, prefix) != 0)
        r = r->hnext;
    if (r)
        r->fetched = -1e300; /* a fetch under way now may predate the change: also too old */
    pthread_mutex_unlock(&m->lock);
    free(prefix);
}

void meta_free(struct meta *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < NBUCKETS; i++)
        for (struct rec *r = m->table[i], *n; r; r = n) {
            n = r->hnext;
            snap_unref(r->snap);
            free(r->prefix);
            free(r);
        }
    pthread_cond_destroy(&m->loaded);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

uint64_t meta_torrent_size(const struct fs_settings *set, const char *key, uint64_t size,
                           int64_t mtime)
{
    struct torrent_opts o;
    char *ws = NULL;
    const char *slash = strrchr(key, '/');
    uint64_t n = 0;
    if (torrent_recipe_opts(&set->recipe, key, mtime, &o, &ws) == 0)
        n = torrent_size(slash ? slash + 1 : key, size, &o);
    free(ws);
    return n;
}

/* ---- building a snapshot from one listing ---- */

struct listing {
    const struct meta_config *cfg;
    const struct fs_settings *set; /* torrent sizes */
    const char *prefix;
    size_t plen;
    unsigned depth; /* of the directories listed: 1 for those in the mount's root */
    struct meta_entry *v;
    size_t n, cap;
    size_t hidden;
    bool warned;
    bool failed;
};

static bool valid_name(const char *s, size_t n)
{
    return n > 0 && n <= NAME_MAX_BYTES && memchr(s, '/', n) == NULL && !(n == 1 && s[0] == '.') &&
           !(n == 2 && s[0] == '.' && s[1] == '.');
}

static struct meta_entry *push(struct listing *l)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        struct meta_entry *v = realloc(l->v, nc * sizeof(*v));
        if (v == NULL) {
            l->failed = true;
            return NULL;
        }
        l->v = v;
        l->cap = nc;
    }
    memset(&l->v[l->n], 0, sizeof(l->v[0]));
    return &l->v[l->n++];
}

static void hide(struct listing *l, const char *key, const char *why)
{
    l->hidden++;
    if (!l->warned)
        log_msg(l->cfg->log, LOG_WARNING, "s3://%s/%s: hidden: %s (logged once per directory)",
                l->cfg->bucket, key, why);
    l->warned = true;
}

static int on_object(void *ctx, const char *key, const struct store_object *o, err_t *err)
{
    struct listing *l = ctx;
    size_t key_len = strlen(key);
    (void)err;
    if (key_len < l->plen || memcmp(key, l->prefix, l->plen) != 0)
        return 0;
    const char *name = key + l->plen;
    size_t nl = key_len - l->plen;
    if (nl == 0)
        return 0; /* the directory's own marker object */
    if (!valid_name(name, nl)) {
        hide(l, key, "not a valid path (empty, '.' or '..' segment, or over 255 bytes)");
        return 0;
    }
    struct meta_entry *e = push(l);
    if (e == NULL)
        return ENOMEM;
    e->kind = META_FILE;
    e->name = strndup(name, nl);
    e->key = strdup(key);
    e->etag = strdup(o->etag);
    e->size = o->size;
    e->mtime = o->mtime;
    if (!e->name || !e->key || !e->etag) {
        l->failed = true;
        return ENOMEM;
    }
    return 0;
}

static int on_prefix(void *ctx, const char *p, err_t *err)
{
    struct listing *l = ctx;
    size_t len = strlen(p);
    (void)err;
    if (len <= l->plen || memcmp(p, l->prefix, l->plen) != 0)
        return 0;
    const char *name = p + l->plen;
    size_t nl = len - l->plen - 1; /* without the trailing '/' */
    if (!valid_name(name, nl)) {
        hide(l, p, "not a valid path (empty, '.' or '..' segment, or over 255 bytes)");
        return 0;
    }
    struct meta_entry *e = push(l);
    if (e == NULL)
        return ENOMEM;
    e->kind = META_DIR;
    e->name = strndup(name, nl);
    if (!e->name) {
        l->failed = true;
        return ENOMEM;
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct meta_entry *)a)->name, ((const struct meta_entry *)b)->name);
}

static bool ends_with_torrent(const char *s)
{
    size_t n = strlen(s);
    return n >= 8 && strcmp(s + n - 8, ".torrent") == 0;
}

/* Adds a synthetic DIR.torrent beside each directory among the first real entries (dir_torrents
 * names their depth), unless a real object or directory has that name, or DIR cannot be a
 * torrent's name or ends in .torrent (as for objects). Returns 0 or ENOMEM. */
static int add_dir_torrents(struct listing *l, size_t real)
{
    for (size_t i = 0; i < real; i++) {
        const char *name = l->v[i].name;
        if (l->v[i].kind != META_DIR || ends_with_torrent(name) ||
            strlen(name) + 8 > NAME_MAX_BYTES || torrent_check_name(name, NULL) != 0)
            continue;
        char tname[NAME_MAX_BYTES + 1];
        snprintf(tname, sizeof(tname), "%s.torrent", name);
        struct meta_entry key = {.name = tname};
        if (bsearch(&key, l->v, real, sizeof(l->v[0]), by_name) != NULL)
            continue; /* a real object (or directory) of that name wins */
        struct meta_entry *t = push(l);
        if (t == NULL)
            return ENOMEM;
        name = l->v[i].name; /* push may have moved the array */
        t->kind = META_DIR_TORRENT;
        t->name = strdup(tname);
        size_t kl = l->plen + strlen(name) + 2;
        if ((t->key = malloc(kl)) != NULL)
            snprintf(t->key, kl, "%s%s/", l->prefix, name);
        if (!t->name || !t->key)
            return ENOMEM;
    }
    return 0;
}

/* Applies docs/DESIGN.md §5 to the raw entries: directories win over files of the same name, real
 * .torrent objects over synthetic ones; adds a synthetic k.torrent beside each object k. */
static int finish_listing(struct listing *l)
{
    if (l->n == 0)
        return 0; /* an empty directory (qsort and bsearch want a real array) */
    qsort(l->v, l->n, sizeof(l->v[0]), by_name);
    /* equal names are adjacent: in each run of them, a directory hides the files (judged
     * before any entry of the run is cleared or moved) */
    size_t w = 0;
    for (size_t i = 0; i < l->n;) {
        size_t end = i + 1;
        bool dir = l->v[i].kind == META_DIR;
        while (end < l->n && strcmp(l->v[end].name, l->v[i].name) == 0)
            dir |= l->v[end++].kind == META_DIR;
        for (size_t j = i; j < end; j++) {
            struct meta_entry *e = &l->v[j];
            if (dir && e->kind == META_FILE) {
                hide(l, e->key, "a directory of the same name wins");
                meta_entry_clear(e);
                continue;
            }
            l->v[w++] = *e;
        }
        i = end;
    }
    l->n = w;
    size_t real = l->n;
    for (size_t i = 0; i < real; i++) {
        struct meta_entry *e = &l->v[i];
        /* a name with a control byte can be a file name but not a torrent's name
         * (docs/DESIGN.md §3): such an object gets no synthetic torrent */
        if (e->kind != META_FILE || e->size == 0 || ends_with_torrent(e->name) ||
            strlen(e->name) + 8 > NAME_MAX_BYTES || util_has_ctl(e->name))
            continue;
        char tname[NAME_MAX_BYTES + 1];
        snprintf(tname, sizeof(tname), "%s.torrent", e->name);
        struct meta_entry key = {.name = tname};
        if (bsearch(&key, l->v, real, sizeof(l->v[0]), by_name) != NULL)
            continue; /* a real .torrent object (or a directory) is there */
        struct meta_entry *t = push(l);
        if (t == NULL)
            return ENOMEM;
        e = &l->v[i]; /* push may have moved the array */
        t->kind = META_TORRENT;
        t->name = strdup(tname);
        t->key = strdup(e->key);
        t->etag = strdup(e->etag);
        t->mtime = e->mtime;
        t->object_size = e->size;
        t->size = meta_torrent_size(l->set, e->key, e->size, e->mtime);
        if (!t->name || !t->key || !t->etag)
            return ENOMEM;
        if (t->size == 0) { /* the recipe cannot make one (e.g. an object too large) */
            meta_entry_clear(t);
            l->n--;
        }
    }
    if (l->set->dir_torrents == l->depth && add_dir_torrents(l, real) != 0)
        return ENOMEM;
    qsort(l->v, l->n, sizeof(l->v[0]), by_name);
    return 0;
}

static int fetch(struct meta *m, struct rec *r, struct snapshot **out, err_t *err)
{
    const struct meta_config *c = &m->cfg;
    struct listing l = {.cfg = c,
                        .set = live_get(c->live),
                        .prefix = r->prefix,
                        .plen = strlen(r->prefix),
                        .depth = 1,
                        .warned = r->warned};
    for (const char *p = r->prefix + strlen(c->prefix); *p; p++)
        l.depth += *p == '/';
    struct store_list_cb cb = {.object = on_object, .prefix = on_prefix, .ctx = &l};
    int rc = store_list(c->store, c->bucket, r->prefix, "/", &cb, err);
    if (rc == 0 && l.failed)
        rc = err_set(err, ENOMEM, "out of memory listing s3://%s/%s", c->bucket, r->prefix);
    if (rc == 0 && (rc = finish_listing(&l)) != 0)
        err_set(err, rc, "out of memory listing s3://%s/%s", c->bucket, r->prefix);
    if (rc == 0) {
        struct snapshot *s = calloc(1, sizeof(*s));
        if (s == NULL) {
            rc = err_set(err, ENOMEM, "out of memory");
        } else {
            s->d.entries = l.v;
            s->d.n = l.n;
            s->d.hidden = l.hidden;
            s->refs = 1;
            *out = s;
            r->warned = l.warned;
            return 0;
        }
    }
    for (size_t i = 0; i < l.n; i++)
        meta_entry_clear(&l.v[i]);
    free(l.v);
    return rc;
}

/* Evicts least recently used listings past the entry budget. Lock held. */
static void evict(struct meta *m, struct rec *keep)
{
    for (struct lru_node *n = lru_oldest(&m->lru); n && m->entries > m->cfg.max_entries;
         n = n->newer) {
        struct rec *r = REC(n);
        if (r != keep && !r->loading && r->snap)
            drop_snapshot(m, r);
    }
}

static char *prefix_of(struct meta *m, const char *path)
{
    const char *root = m->cfg.prefix;
    size_t rl = strlen(root), pl = strlen(path);
    char *p = malloc(rl + pl + 2);
    if (p == NULL)
        return NULL;
    memcpy(p, root, rl);
    if (strcmp(path, "/") == 0) {
        p[rl] = '\0';
    } else {
        memcpy(p + rl, path + 1, pl - 1);
        p[rl + pl - 1] = '/';
        p[rl + pl] = '\0';
    }
    return p;
}

static int dir_get(struct meta *m, const char *path, double max_age, struct meta_dir **out,
                   double *age, err_t *err)
{
    char *prefix = prefix_of(m, path);
    int rc = 0;
    if (prefix == NULL)
        return err_set(err, ENOMEM, "out of memory");
    unsigned h = hash(prefix);
    pthread_mutex_lock(&m->lock);
    struct rec *r = m->table[h];
    while (r && strcmp(r->prefix, prefix) != 0)
        r = r->hnext;
    if (r == NULL) {
        if ((r = calloc(1, sizeof(*r))) == NULL) {
            pthread_mutex_unlock(&m->lock);
            free(prefix);
            return err_set(err, ENOMEM, "out of memory");
        }
        r->prefix = prefix;
        prefix = NULL;
        r->hnext = m->table[h];
        m->table[h] = r;
    }
    free(prefix);
    lru_touch(&m->lru, &r->lru);
    for (;;) {
        while (r->loading)
            pthread_cond_wait(&m->loaded, &m->lock);
        if (r->snap && now_s() - r->fetched < max_age)
            break;
        r->loading = true;
        uint64_t flushes = m->flushes;
        pthread_mutex_unlock(&m->lock);
        struct snapshot *s = NULL;
        rc = fetch(m, r, &s, err);
        pthread_mutex_lock(&m->lock);
        r->loading = false;
        pthread_cond_broadcast(&m->loaded);
        if (rc)
            break;
        drop_snapshot(m, r);
        r->snap = s;
        r->fetched = now_s();
        m->entries += s->d.n;
        evict(m, r);
        if (m->flushes != flushes) {
            /* made with the settings before a SIGHUP (torrent sizes, say): fetch again */
            r->fetched = -1e300;
            continue;
        }
        break;
    }
    if (rc == 0) {
        r->snap->refs++;
        *out = &r->snap->d;
        if (age)
            *age = now_s() - r->fetched;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int meta_dir_get(struct meta *m, const char *path, struct meta_dir **out, err_t *err)
{
    return dir_get(m, path, live_get(m->cfg.live)->ttl, out, NULL, err);
}

void meta_dir_release(struct meta *m, struct meta_dir *d)
{
    pthread_mutex_lock(&m->lock);
    snap_unref((struct snapshot *)d);
    pthread_mutex_unlock(&m->lock);
}

static int copy_entry(const struct meta_entry *e, struct meta_entry *out)
{
    *out = *e;
    out->name = strdup(e->name);
    out->key = e->key ? strdup(e->key) : NULL;
    out->etag = e->etag ? strdup(e->etag) : NULL;
    if (!out->name || (e->key && !out->key) || (e->etag && !out->etag)) {
        meta_entry_clear(out);
        return ENOMEM;
    }
    return 0;
}

int meta_lookup(struct meta *m, const char *path, struct meta_entry *out, err_t *err)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(path, "/") == 0) {
        out->kind = META_DIR;
        out->name = strdup("/");
        return out->name ? 0 : ENOMEM;
    }
    const char *slash = strrchr(path, '/');
    size_t plen = slash == path ? 1 : (size_t)(slash - path);
    char *parent = strndup(path, plen);
    if (parent == NULL)
        return err_set(err, ENOMEM, "out of memory");
    int rc = ENOENT;
    const struct fs_settings *set = live_get(m->cfg.live);
    double max_age = set->ttl;
    for (int pass = 0; pass < 2; pass++) {
        struct meta_dir *d;
        double age = 0;
        if ((rc = dir_get(m, parent, max_age, &d, &age, err)) != 0)
            break;
        struct meta_entry key = {.name = (char *)slash + 1};
        const struct meta_entry *e =
            d->n ? bsearch(&key, d->entries, d->n, sizeof(d->entries[0]), by_name) : NULL;
        rc = e ? copy_entry(e, out) : ENOENT;
        meta_dir_release(m, d);
        /* a name missing from a listing older than the negative TTL: look once more */
        if (rc != ENOENT || age < set->negative_ttl)
            break;
        max_age = set->negative_ttl;
    }
    free(parent);
    return rc;
}
