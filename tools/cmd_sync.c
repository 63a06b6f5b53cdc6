/* cmd_sync.c — `s3torrent sync` and `s3torrent status`: materialise k.torrent objects beside
 * their sources in S3, record each object's status in DynamoDB, and show a status item. */
#include "cli.h"
#include "cache.h"
#include "s3torrent/cred.h"
#include "s3torrent/ddb.h"
#include "s3torrent/status.h"
#include "s3torrent/store.h"
#include "s3torrent/sync.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fputs("Usage: s3torrent sync [OPTIONS] s3://BUCKET/KEY | s3://BUCKET/PREFIX/ ...\n"
          "\n"
          "Makes sure every object has an up-to-date KEY.torrent beside it in S3, with the\n"
          "metadata s3torrent-source-etag, -source-mtime, -infohash(-v2), -version and\n"
          "-outer (a digest of the trackers, web seed, comment, creator and date):\n"
          "up to date (source ETag matches, the options lay out the same torrent, as\n"
          "-outer tells without reading it): nothing to do; the same bytes uploaded\n"
          "again (a new date), or new trackers, web seed, comment or creator for the\n"
          "same info-hash: rewritten from the old torrent's hashes, the object not\n"
          "read; a foreign .torrent (no such\n"
          "metadata, e.g. made by transmission-create) that verifies against the object:\n"
          "adopted byte for byte; one that does not, or a stale one: replaced; none: created.\n"
          "A URI ending in '/' (or a bare bucket) means every object below it.\n"
          "\n"
          "Prefix torrents (a session's files as one multi-file torrent):\n"
          "      --prefix-torrents DEPTH  every prefix of DEPTH segments (1: a/, 2: a/b/; 1 to\n"
          "                             16) under which an object is synced also gets\n"
          "                             PREFIX.torrent (a/b.torrent for a/b/), of every object\n"
          "                             below it but keys ending in .torrent: the torrent that\n"
          "                             `create --exclude '*.torrent' s3://BUCKET/PREFIX/` makes\n"
          "                             with the same options. Its metadata\n"
          "                             s3torrent-source-set (a digest of the sorted keys and\n"
          "                             ETags) and -source-count tell from the listing alone\n"
          "                             when a new, changed or removed key makes it stale; it\n"
          "                             is then made again, and its status item (key\n"
          "                             s3://BUCKET/PREFIX/) names those keys\n"
          "\n" CLI_RECIPE_HELP "\n"
          "Running:\n"
          "  -j, --jobs N               objects in parallel (default 2)\n"
          "      --threads N            hashing threads per object (default: all cores)\n"
          "      --from-file PATH       hash this local copy of the (single) object instead of\n"
          "                             downloading it; its size must match the object's, and\n"
          "                             its ETag: the MD5, or for a multipart upload (md5-N)\n"
          "                             the MD5 of its parts' MD5s, parts sized as S3 says\n"
          "      --cache PATH           torrent cache shared with s3torrentfs (default: the\n"
          "                             mount's default, see s3torrentfs(8))\n"
          "      --no-cache             hash everything, store nothing locally\n"
          "  -n, --dry-run              say what would be done, change nothing\n"
          "      --json                 one JSON object per line: key, action, info-hashes,\n"
          "                             error\n"
          "\n"
          "Status in DynamoDB (one item per object):\n"
          "      --ddb-table T          the table (default: $DDB_TABLE; none: no status)\n"
          "      --ddb-key-attr A       partition key attribute (default s3_uri)\n"
          "      --ddb-endpoint-url URL DynamoDB endpoint (default: $AWS_ENDPOINT_URL_DYNAMODB,\n"
          "                             $AWS_ENDPOINT_URL, else AWS)\n"
          "      --create-table         create the table first if missing (development)\n"
          "\n"
          "Seeding (as `s3torrent seed`, for every object synced):\n"
          "      --seed                 hand each torrent to a daemon that seeds it from the\n"
          "                             s3torrentfs mount\n" CLI_SEED_HELP
          "      --mount-root DIR       where s3torrentfs mounts the bucket\n"
          "      --mount-prefix P       the prefix the mount shows at DIR (default: none)\n"
          "  -h, --help                 show this help\n"
          "\n" CLI_S3_HELP "\n"
          "Exit status: 0 all fine, 1 some failed, 2 usage error.\n",
          f);
}

enum {
    OPT_JSON = 300,
    OPT_THREADS,
    OPT_FROM_FILE,
    OPT_CACHE,
    OPT_NO_CACHE,
    OPT_TABLE,
    OPT_KEY_ATTR,
    OPT_DDB_ENDPOINT,
    OPT_CREATE_TABLE,
    OPT_SEED,
    OPT_MOUNT_ROOT,
    OPT_MOUNT_PREFIX,
    OPT_PREFIX_TORRENTS,
};

/* Objects flow from the listing to the workers through a ring of SYNC_WINDOW items, so memory
 * follows the window and not the number of keys (docs/DESIGN.md §8: memory is capped): the
 * listing waits while the ring is full. */
#define SYNC_WINDOW 1024

/* An object to sync: what the listing said of it (the struct store_object is built on the
 * worker's stack). */
struct item {
    const char *bucket; /* the argument's; outlives the run */
    char *key;
    char etag[128];
    uint64_t size;
    int64_t mtime;
    bool known; /* listed; else sync_object asks S3 */
    char tetag[128]; /* the listed KEY.torrent's ETag; "" when none was listed */
};

struct run {
    struct sync_config sc;
    const char *from_file;
    bool json;
    /* the window: q_len items from q_head on, handed out in listing order */
    struct item *ring;
    size_t q_head, q_len;
    bool q_closed;       /* nothing more will be queued */
    unsigned workers;    /* 0: the lister syncs each item itself */
    atomic_size_t n;     /* objects queued so far */
    atomic_bool listing; /* more may come: n is not the total yet */
    pthread_mutex_t q_lock;
    pthread_cond_t q_not_full, q_not_empty;
    pthread_mutex_t out_lock;
    size_t counts[SYNC_FAILED + 1];
    uint64_t bytes_done;
    struct cli_progress prog;
    struct seedc *client;      /* --seed */
    pthread_mutex_t seed_lock; /* one RPC exchange at a time */
    const char *mount_root;
    char *mount_prefix; /* normalised: "" or ends with '/' */
    /* --prefix-torrents: the prefixes the listed keys are under, each once, synced after the
     * objects (listing order keeps a prefix's keys together) */
    struct ruled {
        const char *bucket;
        char *prefix;
    } * ruled;
    size_t nruled;
    size_t pcounts[SYNC_FAILED + 1];
};

/* Notes the prefix the rule puts key under, once. Returns 0 or ENOMEM. */
static int note_prefix(struct run *r, const char *bucket, const char *key)
{
    size_t len = sync_rule_prefix(key, r->sc.prefix_depth);
    if (len == 0)
        return 0;
    for (size_t i = r->nruled; i-- > 0;)
        if (strcmp(r->ruled[i].bucket, bucket) == 0 && strlen(r->ruled[i].prefix) == len &&
            strncmp(r->ruled[i].prefix, key, len) == 0)
            return 0;
    struct ruled *n = realloc(r->ruled, (r->nruled + 1) * sizeof(*n));
    if (n == NULL)
        return ENOMEM;
    r->ruled = n;
    if ((n[r->nruled].prefix = strndup(key, len)) == NULL)
        return ENOMEM;
    n[r->nruled++].bucket = bucket;
    return 0;
}

/* --seed: hands the object's .torrent (now in S3, bytes t) to the daemon, with the object's
 * directory under the mount as its download dir. Returns 0 or an errno with err set. */
static int seed_one(struct run *r, const struct item *it, const struct buf *t, char *what,
                    size_t wlen, err_t *err)
{
    size_t pl = strlen(r->mount_prefix), kl = strlen(it->key);
    if (kl < pl || strncmp(it->key, r->mount_prefix, pl) != 0)
        return err_set(err, EINVAL, "s3://%s/%s: not under --mount-prefix %s", it->bucket, it->key,
                       r->mount_prefix);
    const char *rel = it->key + pl, *slash = strrchr(rel, '/');
    char dir[4096];
    struct seedc_result res;
    if (t->len == 0)
        return err_set(err, EIO, "s3://%s/%s.torrent: no bytes to seed", it->bucket, it->key);
    snprintf(dir, sizeof(dir), "%s%s%.*s", r->mount_root, slash ? "/" : "",
             slash ? (int)(slash - rel) : 0, rel);
    pthread_mutex_lock(&r->seed_lock);
    int rc = seedc_seed(r->client, t->data, t->len, dir, &res, err);
    pthread_mutex_unlock(&r->seed_lock);
    if (rc == 0)
        snprintf(what, wlen, "%s", res.added ? "added" : "already seeding");
    return rc;
}

static void sync_item(struct run *r, struct item *it);

/* Queues an object (key copied), waiting while the window is full; with no workers, syncs it
 * here. Returns 0 or ENOMEM. */
static int queue_item(struct run *r, const char *bucket, const char *key, const struct item *from)
{
    struct item it = {.bucket = bucket, .key = strdup(key)};
    if (it.key == NULL)
        return ENOMEM;
    if (from) {
        memcpy(it.etag, from->etag, sizeof(it.etag));
        memcpy(it.tetag, from->tetag, sizeof(it.tetag));
        it.size = from->size;
        it.mtime = from->mtime;
        it.known = true;
    }
    atomic_fetch_add(&r->n, 1);
    if (r->workers == 0) {
        sync_item(r, &it);
        free(it.key);
        return 0;
    }
    pthread_mutex_lock(&r->q_lock);
    while (r->q_len == SYNC_WINDOW)
        pthread_cond_wait(&r->q_not_full, &r->q_lock);
    r->ring[(r->q_head + r->q_len) % SYNC_WINDOW] = it;
    r->q_len++;
    pthread_cond_signal(&r->q_not_empty);
    pthread_mutex_unlock(&r->q_lock);
    return 0;
}

/* Takes the oldest queued object into *out (the caller frees its key). Returns false once the
 * queue is closed and empty. */
static bool next_item(struct run *r, struct item *out)
{
    pthread_mutex_lock(&r->q_lock);
    while (r->q_len == 0 && !r->q_closed)
        pthread_cond_wait(&r->q_not_empty, &r->q_lock);
    bool got = r->q_len > 0;
    if (got) {
        *out = r->ring[r->q_head];
        r->q_head = (r->q_head + 1) % SYNC_WINDOW;
        r->q_len--;
        pthread_cond_signal(&r->q_not_full);
    }
    pthread_mutex_unlock(&r->q_lock);
    return got;
}

static void close_queue(struct run *r)
{
    pthread_mutex_lock(&r->q_lock);
    r->q_closed = true;
    pthread_cond_broadcast(&r->q_not_empty);
    pthread_mutex_unlock(&r->q_lock);
}

/* A listing gives each object's ETag and its KEY.torrent's, which sorts after KEY with few keys
 * between (KEY.a, KEY.b/...): an object is held back until the listing has passed the place of
 * its .torrent, so that sync knows both without a HEAD (docs/DESIGN.md §4). At most HOLD_MAX
 * wait; the oldest then goes without (a HEAD finds its .torrent). */
#define HOLD_MAX 64

struct list_ctx {
    struct run *r;
    const char *bucket;
    size_t torrents;
    struct item held[HOLD_MAX]; /* in listing order from held[0]; keys owned */
    size_t nheld;
};

/* strcmp(KEY ".torrent", other) */
static int tkey_cmp(const char *key, const char *other)
{
    size_t kl = strlen(key);
    int c = strncmp(key, other, kl);
    return c != 0 ? c : strcmp(".torrent", other + kl);
}

/* Queues the held objects whose .torrent sorts before key (NULL: all of them), and the oldest
 * anyway while more than keep are held. Returns 0 or ENOMEM. */
static int release_held(struct list_ctx *l, const char *key, size_t keep)
{
    size_t n = 0;
    int rc = 0;
    while (n < l->nheld &&
           (key == NULL || l->nheld - n > keep || tkey_cmp(l->held[n].key, key) < 0)) {
        struct item *it = &l->held[n++];
        if (rc == 0)
            rc = queue_item(l->r, l->bucket, it->key, it);
        free(it->key);
    }
    memmove(l->held, l->held + n, (l->nheld - n) * sizeof(l->held[0]));
    l->nheld -= n;
    return rc;
}

static int on_object(void *ctx, const char *key, const struct store_object *o, err_t *err)
{
    struct list_ctx *l = ctx;
    if (sync_is_torrent_key(key)) {
        l->torrents++; /* outputs, not inputs: its ETag goes to its object, if held */
        size_t bl = strlen(key) - strlen(".torrent");
        for (size_t i = 0; i < l->nheld; i++)
            if (strlen(l->held[i].key) == bl && strncmp(l->held[i].key, key, bl) == 0)
                snprintf(l->held[i].tetag, sizeof(l->held[i].tetag), "%s", o->etag);
    }
    if (note_prefix(l->r, l->bucket, key) != 0 || release_held(l, key, HOLD_MAX - 1) != 0)
        return err_set(err, ENOMEM, "out of memory");
    if (sync_is_torrent_key(key))
        return 0;
    struct item *it = &l->held[l->nheld];
    *it = (struct item){.bucket = l->bucket, .size = o->size, .mtime = o->mtime, .known = true};
    snprintf(it->etag, sizeof(it->etag), "%s", o->etag);
    if ((it->key = strdup(key)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    l->nheld++;
    return 0;
}

/* One line of what became of an object, or of a prefix's torrent (it->key ends in '/'). */
static void report(struct run *r, const struct item *it, const struct sync_result *res,
                   const char *seeded)
{
    size_t kl = strlen(it->key);
    bool prefix = kl > 0 && it->key[kl - 1] == '/';
    /* a prefix's why names the keys that made its torrent stale */
    const char *reason =
        res->action == SYNC_SKIPPED || (prefix && res->action == SYNC_REPLACED) ? res->why : "";
    pthread_mutex_lock(&r->out_lock);
    (prefix ? r->pcounts : r->counts)[res->action]++;
    r->bytes_done += res->size;
    cli_progress_end(&r->prog);
    if (r->json) {
        json_object *o = json_object_new_object();
        char uri[1200];
        snprintf(uri, sizeof(uri), "s3://%s/%s", it->bucket, it->key);
        json_object_object_add(o, "uri", json_object_new_string(uri));
        json_object_object_add(o, "key", json_object_new_string(it->key));
        json_object_object_add(o, "action", json_object_new_string(sync_action_name(res->action)));
        if (res->dry_run)
            json_object_object_add(o, "dry_run", json_object_new_boolean(1));
        if (res->info_hash[0])
            json_object_object_add(o, "info_hash", json_object_new_string(res->info_hash));
        if (res->info_hash_v2[0])
            json_object_object_add(o, "info_hash_v2", json_object_new_string(res->info_hash_v2));
        json_object_object_add(o, "size", json_object_new_int64((int64_t)res->size));
        if (seeded && seeded[0])
            json_object_object_add(o, "seeded", json_object_new_string(seeded));
        if (prefix) {
            char tkey[1100];
            snprintf(tkey, sizeof(tkey), "%.*s.torrent", (int)kl - 1, it->key);
            json_object_object_add(o, "torrent_key", json_object_new_string(tkey));
        }
        if (res->action == SYNC_FAILED)
            json_object_object_add(o, "error", json_object_new_string(res->why));
        else if (reason[0])
            json_object_object_add(o, "reason", json_object_new_string(reason));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    } else if (res->action == SYNC_FAILED) {
        fprintf(stderr, "s3torrent: %s\n", res->why);
    } else {
        printf("%-11s s3://%s/", sync_action_name(res->action), it->bucket);
        cli_print_escaped(stdout, it->key);
        printf("%s%s%s%s%s%s\n", res->info_hash[0] || res->info_hash_v2[0] ? " " : "",
               res->info_hash[0] ? res->info_hash : res->info_hash_v2, reason[0] ? ": " : "",
               reason, seeded && seeded[0] ? ", seeding: " : "", seeded ? seeded : "");
    }
    fflush(stdout);
    size_t done = 0, n = atomic_load(&r->n);
    bool listing = atomic_load(&r->listing);
    for (int a = 0; a <= SYNC_FAILED; a++)
        done += r->counts[a];
    if (r->prog.enabled && done < n) {
        char label[64];
        snprintf(label, sizeof(label), "%zu/%zu%s objects", done, n, listing ? "+" : "");
        r->prog.label = label;
        cli_progress_cb(&r->prog, done, n);
        r->prog.label = "";
    }
    pthread_mutex_unlock(&r->out_lock);
}

static void sync_item(struct run *r, struct item *it)
{
    struct store_object obj = {.size = it->size, .mtime = it->mtime};
    struct sync_result res;
    struct buf t;
    char seeded[64] = "";
    memcpy(obj.etag, it->etag, sizeof(obj.etag));
    buf_init(&t, TORRENT_MAX_SIZE);
    sync_listed(&r->sc, it->bucket, it->key, it->known ? &obj : NULL,
                it->known && it->tetag[0] ? it->tetag : NULL, r->from_file, &res,
                r->client ? &t : NULL);
    if (r->client && !res.dry_run && res.action != SYNC_FAILED && res.action != SYNC_SKIPPED) {
        err_t err = {0};
        if (seed_one(r, it, &t, seeded, sizeof(seeded), &err) != 0) {
            res.action = SYNC_FAILED;
            snprintf(res.why, sizeof(res.why), "seeding: %.490s", err.msg);
        }
    }
    buf_free(&t);
    report(r, it, &res, seeded);
}

static void *worker(void *arg)
{
    struct run *r = arg;
    struct item it;
    while (next_item(r, &it)) {
        sync_item(r, &it);
        free(it.key);
    }
    return NULL;
}

struct ddb_setup {
    struct ddb_client *ddb;
    struct status_store st;
};

static int open_status(struct cli_s3 *g, const char *table, const char *key_attr,
                       const char *endpoint, struct ddb_setup *d, err_t *err)
{
    struct s3_client *s3;
    int rc = cli_s3_connect(g, &s3, err); /* the HTTP client and credentials are shared */
    if (rc)
        return rc;
    struct ddb_config dc = {
        .endpoint = endpoint, .region = g->region, .http = g->http, .creds = g->creds};
    if ((rc = ddb_client_new(&dc, &d->ddb, err)))
        return rc;
    d->st = (struct status_store){.ddb = d->ddb, .table = table, .key_attr = key_attr};
    return 0;
}

/* Syncs the objects of the arguments (buckets[i], keys[i]: an object, or a prefix to list) with
 * jobs workers, which start on the first object while the listings stream in. After a failed
 * listing, what was listed is still synced and counted. Returns 0 or the listing's errno (err
 * set). */
static int run_objects(struct run *r, struct store *store, const struct logger *log, char **args,
                       char **buckets, char **keys, int nargs, unsigned jobs, err_t *err)
{
    pthread_t *tids = calloc(jobs, sizeof(pthread_t));
    int lr = 0;
    atomic_store(&r->listing, true);
    for (; tids && r->workers < jobs; r->workers++)
        if (pthread_create(&tids[r->workers], NULL, worker, r) != 0)
            break;
    for (int i = 0; i < nargs && lr == 0; i++) {
        size_t kl = strlen(keys[i]);
        if (kl == 0 || keys[i][kl - 1] == '/') {
            struct list_ctx *l = calloc(1, sizeof(*l));
            if (l == NULL) {
                lr = err_set(err, ENOMEM, "out of memory");
                break;
            }
            *l = (struct list_ctx){.r = r, .bucket = buckets[i]};
            struct store_list_cb cb = {.object = on_object, .ctx = l};
            lr = store_list(store, buckets[i], keys[i], NULL, &cb, err);
            if (release_held(l, NULL, 0) != 0 && lr == 0) /* what was listed is synced */
                lr = err_set(err, ENOMEM, "out of memory");
            log_msg(log, LOG_INFO, "%s: %zu .torrent objects left out", args[i], l->torrents);
            free(l);
        } else if (note_prefix(r, buckets[i], keys[i]) != 0 ||
                   queue_item(r, buckets[i], keys[i], NULL) != 0) {
            lr = err_set(err, ENOMEM, "out of memory");
        }
    }
    atomic_store(&r->listing, false);
    close_queue(r);
    for (unsigned i = 0; i < r->workers; i++)
        pthread_join(tids[i], NULL);
    free(tids);
    cli_progress_end(&r->prog);
    /* then the prefixes' torrents, once their objects are done (what a v2 prefix torrent is
     * composed from is in the cache by then), one at a time: each hashes with every thread */
    for (size_t i = 0; i < r->nruled; i++) {
        struct item it = {.bucket = r->ruled[i].bucket, .key = r->ruled[i].prefix};
        struct sync_result res;
        sync_prefix(&r->sc, it.bucket, it.key, &res);
        report(r, &it, &res, NULL);
    }
    return lr;
}

static void print_summary(const struct run *r)
{
    fprintf(stderr,
            "s3torrent: %zu objects: %zu created, %zu up-to-date, %zu adopted, %zu replaced, "
            "%zu skipped, %zu failed%s\n",
            atomic_load(&r->n), r->counts[SYNC_CREATED], r->counts[SYNC_UP_TO_DATE],
            r->counts[SYNC_ADOPTED], r->counts[SYNC_REPLACED], r->counts[SYNC_SKIPPED],
            r->counts[SYNC_FAILED], r->sc.dry_run ? " (dry run: nothing changed)" : "");
    if (r->sc.prefix_depth)
        fprintf(stderr,
                "s3torrent: %zu prefix torrents: %zu created, %zu up-to-date, %zu replaced, "
                "%zu skipped, %zu failed\n",
                r->nruled, r->pcounts[SYNC_CREATED], r->pcounts[SYNC_UP_TO_DATE],
                r->pcounts[SYNC_REPLACED], r->pcounts[SYNC_SKIPPED], r->pcounts[SYNC_FAILED]);
}

/* What sync's command line says, and what its run holds: one struct, so that parsing, checking,
 * connecting and running are each a function of it. */
struct sync_cmd {
    struct cli_recipe rec;
    struct cli_s3 g;
    struct cli_seed_opts so;
    const char *cache_path, *table, *key_attr, *ddb_endpoint, *mount_prefix;
    bool seed, no_cache, create_table;
    unsigned jobs, threads;
    struct run r; /* also holds --from-file, --dry-run, --json and --mount-root */
    struct ddb_setup d;
    struct cache *cache;
    struct maker_cache mcache;
    struct maker maker;
    struct store *store;
    char **buckets, **keys; /* of each argument */
    int nargs;
};

static void sync_cmd_init(struct sync_cmd *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->r.out_lock, NULL);
    pthread_mutex_init(&s->r.seed_lock, NULL);
    pthread_mutex_init(&s->r.q_lock, NULL);
    pthread_cond_init(&s->r.q_not_full, NULL);
    pthread_cond_init(&s->r.q_not_empty, NULL);
    s->table = getenv("DDB_TABLE");
    s->mount_prefix = "";
    s->jobs = 2;
    cli_recipe_init(&s->rec);
}

static void sync_cmd_free(struct sync_cmd *s)
{
    for (int i = 0; i < s->nargs && s->buckets && s->keys; i++) {
        free(s->buckets[i]);
        free(s->keys[i]);
    }
    free(s->buckets);
    free(s->keys);
    free(s->r.ring);
    cache_close(s->cache);
    store_free(s->store);
    ddb_client_free(s->d.ddb);
    seedc_free(s->r.client);
    free(s->r.mount_prefix);
    for (size_t i = 0; i < s->r.nruled; i++)
        free(s->r.ruled[i].prefix);
    free(s->r.ruled);
    cli_recipe_free(&s->rec);
    cli_s3_close(&s->g);
    pthread_mutex_destroy(&s->r.out_lock);
    pthread_mutex_destroy(&s->r.seed_lock);
    pthread_mutex_destroy(&s->r.q_lock);
    pthread_cond_destroy(&s->r.q_not_full);
    pthread_cond_destroy(&s->r.q_not_empty);
}

/* Takes one of sync's own options (c, from getopt_long). Returns 0, CLI_USAGE after saying why
 * its value is refused, or -1 for an option sync does not know. */
static int sync_option(struct sync_cmd *s, int c, const char *arg)
{
    switch (c) {
    case 'j':
        if (cli_parse_uint(arg, 64, &s->jobs) != 0)
            return cli_error(CLI_USAGE, "--jobs must be a number from 1 to 64, not '%s'", arg);
        return 0;
    case OPT_THREADS:
        if (cli_parse_uint(arg, 256, &s->threads) != 0)
            return cli_error(CLI_USAGE, "--threads must be a number from 1 to 256, not '%s'", arg);
        return 0;
    case OPT_FROM_FILE:
        s->r.from_file = arg;
        return 0;
    case OPT_CACHE:
        s->cache_path = arg;
        return 0;
    case OPT_NO_CACHE:
        s->no_cache = true;
        return 0;
    case 'n':
        s->r.sc.dry_run = true;
        return 0;
    case OPT_JSON:
        s->r.json = true;
        return 0;
    case OPT_TABLE:
        s->table = arg;
        return 0;
    case OPT_KEY_ATTR:
        s->key_attr = arg;
        return 0;
    case OPT_DDB_ENDPOINT:
        s->ddb_endpoint = arg;
        return 0;
    case OPT_CREATE_TABLE:
        s->create_table = true;
        return 0;
    case OPT_SEED:
        s->seed = true;
        return 0;
    case OPT_MOUNT_ROOT:
        s->r.mount_root = arg;
        return 0;
    case OPT_MOUNT_PREFIX:
        s->mount_prefix = arg;
        return 0;
    case OPT_PREFIX_TORRENTS:
        if (cli_parse_uint(arg, 16, &s->r.sc.prefix_depth) != 0)
            return cli_error(CLI_USAGE, "--prefix-torrents must be a number from 1 to 16, not '%s'",
                             arg);
        return 0;
    default:
        return cli_seed_option(&s->so, c, arg);
    }
}

/* Reads the options into s. Returns -1 to go on, or the exit status: CLI_OK after --help,
 * CLI_USAGE after saying what is wrong. */
static int sync_parse(struct sync_cmd *s, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_RECIPE_OPTIONS,
        {"jobs", required_argument, NULL, 'j'},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"from-file", required_argument, NULL, OPT_FROM_FILE},
        {"cache", required_argument, NULL, OPT_CACHE},
        {"no-cache", no_argument, NULL, OPT_NO_CACHE},
        {"dry-run", no_argument, NULL, 'n'},
        {"json", no_argument, NULL, OPT_JSON},
        {"ddb-table", required_argument, NULL, OPT_TABLE},
        {"ddb-key-attr", required_argument, NULL, OPT_KEY_ATTR},
        {"ddb-endpoint-url", required_argument, NULL, OPT_DDB_ENDPOINT},
        {"create-table", no_argument, NULL, OPT_CREATE_TABLE},
        {"seed", no_argument, NULL, OPT_SEED},
        CLI_SEED_OPTIONS,
        {"mount-root", required_argument, NULL, OPT_MOUNT_ROOT},
        {"mount-prefix", required_argument, NULL, OPT_MOUNT_PREFIX},
        {"prefix-torrents", required_argument, NULL, OPT_PREFIX_TORRENTS},
        {"help", no_argument, NULL, 'h'},
        CLI_S3_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, CLI_RECIPE_SHORT "j:nhC:r:", opts, NULL)) != -1) {
        int rr = cli_recipe_option(&s->rec, c, optarg);
        if (rr < 0)
            return CLI_USAGE;
        if (rr > 0 || cli_s3_option(&s->g, c, optarg))
            continue;
        if (c == 'h') {
            usage(stdout);
            return CLI_OK;
        }
        int taken = sync_option(s, c, optarg);
        if (taken < 0)
            usage(stderr);
        if (taken != 0)
            return CLI_USAGE;
    }
    return -1;
}

/* The checks between options and arguments, before anything is connected. Returns true, or
 * false after saying what is wrong (a usage error). */
static bool sync_check(struct sync_cmd *s, int argc, char **argv)
{
    if (optind >= argc) {
        cli_error(CLI_USAGE, "sync needs s3://BUCKET/KEY or s3://BUCKET/PREFIX/ (see s3torrent "
                             "sync --help)");
        return false;
    }
    if (s->table && !*s->table)
        s->table = NULL;
    if (s->r.from_file && (argc - optind != 1 || argv[optind][strlen(argv[optind]) - 1] == '/')) {
        cli_error(CLI_USAGE, "--from-file goes with exactly one s3://BUCKET/KEY");
        return false;
    }
    if (s->seed && (s->r.mount_root == NULL || s->r.mount_root[0] != '/')) {
        cli_error(CLI_USAGE, "--seed needs --mount-root DIR, an absolute path");
        return false;
    }
    if (cli_seed_check(&s->so) != 0)
        return false;
    if (s->create_table && s->table == NULL) {
        cli_error(CLI_USAGE, "--create-table needs --ddb-table or DDB_TABLE");
        return false;
    }
    return cli_recipe_finish(&s->rec) == 0;
}

/* Connects S3, the daemon (--seed) and the status table, opens the cache and sets up the
 * sync configuration. Returns true, or false after saying why (a failure). */
static bool sync_connect(struct sync_cmd *s)
{
    struct s3_client *s3;
    err_t err = {0};
    if (cli_s3_connect(&s->g, &s3, &err) != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        return false;
    }
    if ((s->r.mount_prefix = cli_mount_prefix(s->mount_prefix)) == NULL) {
        cli_error(CLI_FAIL, "out of memory");
        return false;
    }
    if (s->seed && cli_seed_connect(&s->so, s->g.http, &s->r.client, &err) != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        return false;
    }
    if (s->table) {
        if (open_status(&s->g, s->table, s->key_attr, s->ddb_endpoint, &s->d, &err) != 0 ||
            (s->create_table && status_create_table(&s->d.st, &err) != 0)) {
            cli_error(CLI_FAIL, "%s", err.msg);
            return false;
        }
    }
    if (!s->no_cache && !s->r.sc.dry_run)
        s->cache = cli_open_cache(s->cache_path);
    if ((s->store = store_s3_new(s3)) == NULL) {
        cli_error(CLI_FAIL, "out of memory");
        return false;
    }
    cache_as_maker_cache(s->cache, &s->mcache);
    s->maker = (struct maker){s->store, s->cache ? &s->mcache : NULL, s->threads, 0, &s->g.log};
    s->r.sc.maker = &s->maker;
    s->r.sc.recipe = &s->rec.b.r;
    s->r.sc.status = s->table ? &s->d.st : NULL;
    s->r.sc.source = "sync";
    s->r.sc.wait_leases = true; /* a concurrent sync's object is waited for, not failed */
    s->r.sc.log = &s->g.log;
    return true;
}

/* Splits every argument (args, nargs of them) into its bucket and key, before any object is
 * synced; *any_prefix tells whether one names a prefix. Returns CLI_OK, or CLI_USAGE or
 * CLI_FAIL after saying why. */
static int sync_args(struct sync_cmd *s, char **args, int nargs, bool *any_prefix)
{
    err_t err = {0};
    s->nargs = nargs;
    if ((s->buckets = calloc((size_t)nargs, sizeof(*s->buckets))) == NULL ||
        (s->keys = calloc((size_t)nargs, sizeof(*s->keys))) == NULL ||
        (s->r.ring = calloc(SYNC_WINDOW, sizeof(*s->r.ring))) == NULL)
        return cli_error(CLI_FAIL, "out of memory");
    *any_prefix = false;
    for (int i = 0; i < nargs; i++) {
        if (s3_parse_uri(args[i], &s->buckets[i], &s->keys[i], &err) != 0)
            return cli_error(CLI_USAGE, "%s", err.msg);
        size_t kl = strlen(s->keys[i]);
        *any_prefix |= kl == 0 || s->keys[i][kl - 1] == '/';
    }
    return CLI_OK;
}

/* Syncs the objects of the arguments and prints the summary. Returns the exit status. */
static int sync_run(struct sync_cmd *s, char **args, bool any_prefix)
{
    err_t err = {0};
    unsigned jobs = s->jobs;
    cli_progress_init(&s->r.prog, "");
    if (!any_prefix && jobs > (unsigned)s->nargs)
        jobs = (unsigned)s->nargs;
    int lr =
        run_objects(&s->r, s->store, &s->g.log, args, s->buckets, s->keys, s->nargs, jobs, &err);
    if (lr)
        cli_error(CLI_FAIL, "%s", err.msg);
    if (!s->r.json && (lr == 0 || atomic_load(&s->r.n) > 0))
        print_summary(&s->r);
    if (lr)
        return CLI_FAIL;
    return s->r.counts[SYNC_FAILED] || s->r.pcounts[SYNC_FAILED] ? CLI_FAIL : CLI_OK;
}

int cmd_sync(int argc, char **argv)
{
    struct sync_cmd cmd, *s = &cmd;
    bool any_prefix = false;
    int rc;
    sync_cmd_init(s);
    if ((rc = sync_parse(s, argc, argv)) >= 0)
        goto out;
    rc = CLI_USAGE;
    if (!sync_check(s, argc, argv))
        goto out;
    rc = CLI_FAIL;
    if (!sync_connect(s))
        goto out;
    if ((rc = sync_args(s, argv + optind, argc - optind, &any_prefix)) == CLI_OK)
        rc = sync_run(s, argv + optind, any_prefix);
out:
    sync_cmd_free(s);
    return rc;
}

static void status_usage(FILE *f)
{
    fputs("Usage: s3torrent status [OPTIONS] s3://BUCKET/KEY | s3://BUCKET/PREFIX/\n"
          "\n"
          "Print the object's status item from DynamoDB (a prefix's: its torrent's, made by\n"
          "sync --prefix-torrents).\n"
          "\n"
          "      --json                 the item as JSON\n"
          "      --ddb-table T          the table (default: $DDB_TABLE)\n"
          "      --ddb-key-attr A       partition key attribute (default s3_uri)\n"
          "      --ddb-endpoint-url URL DynamoDB endpoint\n"
          "  -h, --help                 show this help\n"
          "\n" CLI_S3_HELP,
          f);
}

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"ddb-table", required_argument, NULL, OPT_TABLE},
        {"ddb-key-attr", required_argument, NULL, OPT_KEY_ATTR},
        {"ddb-endpoint-url", required_argument, NULL, OPT_DDB_ENDPOINT},
        {"help", no_argument, NULL, 'h'},
        CLI_S3_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli_s3 g = {0};
    struct ddb_setup d = {0};
    const char *table = getenv("DDB_TABLE"), *key_attr = NULL, *endpoint = NULL;
    bool json = false;
    char *bucket = NULL, *key = NULL;
    struct status_item *it = NULL;
    err_t err = {0};
    int c, rc = CLI_USAGE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_s3_option(&g, c, optarg))
            continue;
        switch (c) {
        case OPT_JSON:
            json = true;
            break;
        case OPT_TABLE:
            table = optarg;
            break;
        case OPT_KEY_ATTR:
            key_attr = optarg;
            break;
        case OPT_DDB_ENDPOINT:
            endpoint = optarg;
            break;
        case 'h':
            status_usage(stdout);
            return CLI_OK;
        default:
            status_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind != argc - 1)
        return cli_error(CLI_USAGE, "status needs one s3://BUCKET/KEY");
    if (table == NULL || !*table)
        return cli_error(CLI_USAGE, "status needs --ddb-table or DDB_TABLE");
    if (s3_parse_uri(argv[optind], &bucket, &key, &err) != 0) {
        cli_error(CLI_USAGE, "%s", err.msg);
        goto out;
    }
    rc = CLI_FAIL;
    if ((it = calloc(1, sizeof(*it))) == NULL) {
        cli_error(CLI_FAIL, "out of memory");
        goto out;
    }
    int sr = open_status(&g, table, key_attr, endpoint, &d, &err);
    if (sr == 0)
        sr = status_get(&d.st, bucket, key, it, &err);
    if (sr == ENOENT) {
        cli_error(CLI_FAIL, "%s: no status item in table %s", argv[optind], table);
        goto out;
    }
    if (sr != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
    if (json) {
        json_object *o = json_object_new_object();
#define S(k, v)                                                                                    \
    if ((v)[0])                                                                                    \
    json_object_object_add(o, k, json_object_new_string(v))
#define N(k, v) json_object_object_add(o, k, json_object_new_int64((int64_t)(v)))
        S("s3_uri", it->uri);
        S("status", it->status);
        S("bucket", it->bucket);
        S("object_key", it->object_key);
        S("etag", it->etag);
        N("size", it->size);
        S("torrent_key", it->torrent_key);
        S("info_hash", it->info_hash);
        S("info_hash_v2", it->info_hash_v2);
        S("magnet", it->magnet);
        S("magnet_v1", it->magnet_v1);
        N("piece_length", it->piece_length);
        N("piece_count", it->piece_count);
        S("meta_version", it->meta_version);
        N("attempts", it->attempts);
        S("error", it->error);
        S("source", it->source);
        S("updated_at", it->updated_at);
        if (it->file_count) /* a prefix's item */
            N("file_count", it->file_count);
#undef S
#undef N
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    } else {
        printf("%s\n  status: %s\n  etag: %s\n  size: %llu\n  attempts: %llu\n  source: %s\n"
               "  updated: %s\n",
               it->uri, it->status, it->etag, (unsigned long long)it->size,
               (unsigned long long)it->attempts, it->source, it->updated_at);
        if (it->torrent_key[0])
            printf("  torrent: s3://%s/%s\n  info-hash: %s\n  info-hash v2: %s\n  meta "
                   "version: %s\n  pieces: %llu x %llu bytes\n  magnet: %s\n",
                   it->bucket, it->torrent_key, it->info_hash[0] ? it->info_hash : "-",
                   it->info_hash_v2[0] ? it->info_hash_v2 : "-", it->meta_version,
                   (unsigned long long)it->piece_count, (unsigned long long)it->piece_length,
                   it->magnet);
        if (it->magnet_v1[0])
            printf("  magnet (v1 only): %s\n", it->magnet_v1);
        if (it->file_count)
            printf("  files: %llu\n", (unsigned long long)it->file_count);
        if (it->error[0])
            printf("  error: %s\n", it->error);
    }
    rc = CLI_OK;
out:
    free(it);
    free(bucket);
    free(key);
    ddb_client_free(d.ddb);
    cli_s3_close(&g);
    return rc;
}
