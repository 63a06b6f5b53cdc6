/* cache.c — the sqlite cache of generated torrents: one WAL-mode connection per handle behind a
 * mutex, a versioned schema, LRU eviction to a byte budget, files private to their owner. */
#include "cache.h"
#include "s3torrent/maker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SCHEMA_VERSION  1
#define BUSY_TIMEOUT_MS 5000 /* how long a writer waits for another process's transaction */
#define BUSY_RETRY_MS   10
#define PATH_LEN        4096

/* migrations[v] takes the schema from user_version v to v + 1; all run in one transaction.
 * meta holds running totals (kept by triggers, so puts and stats never scan the table) and
 * put_tick, the `used` value of the newest put (see cache_get). Puts never use INSERT OR
 * REPLACE: REPLACE's implicit deletes do not fire the delete trigger. */
static const char *const migrations[] = {
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta (name, value) VALUES ('bytes', 0), ('entries', 0), ('put_tick', 0);"
    "CREATE TABLE torrents ("
    " id INTEGER PRIMARY KEY,"
    " bucket TEXT NOT NULL, object_key TEXT NOT NULL, fingerprint TEXT NOT NULL,"
    " etag TEXT NOT NULL,"
    " size INTEGER NOT NULL,"      /* length of torrent */
    " used INTEGER NOT NULL,"      /* LRU order: larger is more recent, unique */
    " stored_at INTEGER NOT NULL," /* Unix seconds, for people reading the file */
    " torrent BLOB NOT NULL,"
    " UNIQUE (bucket, object_key, fingerprint, etag));"
    "CREATE INDEX torrents_lru ON torrents (used);"
    "CREATE TRIGGER torrents_added AFTER INSERT ON torrents BEGIN"
    " UPDATE meta SET value = value + NEW.size WHERE name = 'bytes';"
    " UPDATE meta SET value = value + 1 WHERE name = 'entries'; END;"
    "CREATE TRIGGER torrents_dropped AFTER DELETE ON torrents BEGIN"
    " UPDATE meta SET value = value - OLD.size WHERE name = 'bytes';"
    " UPDATE meta SET value = value - 1 WHERE name = 'entries'; END;",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == SCHEMA_VERSION,
               "one migration per schema version");

enum stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_GET,
    ST_TOUCH,
    ST_DROP_OBJECT,
    ST_INSERT,
    ST_SET_PUT_TICK,
    ST_BYTES,
    ST_OLDEST,
    ST_EVICT,
    ST_STATS,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    /* IMMEDIATE: take the write lock first, so waiting for it goes through the busy timeout
     * instead of failing with SQLITE_BUSY when a read would have to become a write. */
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_GET] = "SELECT id, used, torrent, (SELECT value FROM meta WHERE name = 'put_tick')"
               " FROM torrents"
               " WHERE bucket = ?1 AND object_key = ?2 AND fingerprint = ?3 AND etag = ?4",
    [ST_TOUCH] = "UPDATE torrents SET used = (SELECT max(used) FROM torrents) + 1"
                 " WHERE id = ?1 AND used <= (SELECT value FROM meta WHERE name = 'put_tick')",
    [ST_DROP_OBJECT] = "DELETE FROM torrents"
                       " WHERE bucket = ?1 AND object_key = ?2 AND fingerprint = ?3",
    [ST_INSERT] = "INSERT INTO torrents"
                  " (bucket, object_key, fingerprint, etag, size, used, stored_at, torrent)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, (SELECT coalesce(max(used), 0) + 1 FROM torrents),"
                  " ?6, ?7)",
    [ST_SET_PUT_TICK] = "UPDATE meta SET value = (SELECT used FROM torrents WHERE id = ?1)"
                        " WHERE name = 'put_tick'",
    [ST_BYTES] = "SELECT value FROM meta WHERE name = 'bytes'",
    [ST_OLDEST] = "SELECT id, size FROM torrents WHERE id <> ?1 ORDER BY used, id LIMIT 1",
    [ST_EVICT] = "DELETE FROM torrents WHERE id = ?1",
    [ST_STATS] = "SELECT (SELECT value FROM meta WHERE name = 'entries'),"
                 " (SELECT value FROM meta WHERE name = 'bytes')",
};

struct cache {
    pthread_mutex_t lock; /* guards everything below: one connection, used by one thread at once */
    bool lock_ready;
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    uint64_t max_bytes;
    uint64_t hits, misses, evictions; /* this handle's, since cache_open */
    char path[PATH_LEN];
};

static int sqlite_errno(sqlite3 *db, int rc)
{
    int sys;
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_NOMEM:
        return ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return EBUSY;
    case SQLITE_FULL:
        return ENOSPC;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return EACCES;
    case SQLITE_TOOBIG:
        return EFBIG;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        sys = db ? sqlite3_system_errno(db) : 0;
        return sys > 0 ? sys : EIO;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
    case SQLITE_CONSTRAINT:
        return EINVAL;
    default: /* SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_PROTOCOL, ... */
        return EIO;
    }
}

/* Records a failed sqlite call: "cache PATH: WHAT: sqlite's message", with a hint when the file
 * is damaged. Returns the errno. */
static int db_fail(const struct cache *c, int rc, err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int db_fail(const struct cache *c, int rc, err_t *err, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    int prim = rc & 0xff;
    const char *hint = prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB
                           ? " (it only holds cached torrents: move it aside or delete it)"
                           : "";
    const char *msg = c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc);
    return err_set(err, sqlite_errno(c->db, rc), "cache %s: %s: %s%s", c->path, what, msg, hint);
}

/* Steps a statement to its end (no rows expected), then resets it. Returns sqlite's code:
 * SQLITE_DONE on success; sqlite3_errmsg still describes a failure after the reset. */
static int run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static void finish(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Creates the directory holding path (its missing parents as mkdir -p would, itself 0700) and
 * refuses one that is not ours or that group or others can enter. Returns 0 or an errno. */
static int make_dir(const char *path, err_t *err)
{
    char dir[PATH_LEN];
    struct stat st;
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';

    if (stat(dir, &st) != 0) {
        if (errno != ENOENT)
            return err_set(err, errno, "cache directory %s: %s", dir, strerror(errno));
        for (char *s = dir + 1; *s; s++) {
            if (*s != '/')
                continue;
            *s = '\0';
            int rc = mkdir(dir, 0777) == 0 || errno == EEXIST ? 0 : errno;
            if (rc)
                return err_set(err, rc, "cannot create directory %s: %s", dir, strerror(rc));
            *s = '/';
        }
        if (mkdir(dir, 0700) == 0) {
            /* mkdir applies the umask; set the mode exactly */
            if (chmod(dir, 0700) != 0)
                return err_set(err, errno, "cannot chmod 700 %s: %s", dir, strerror(errno));
        } else if (errno != EEXIST) {
            return err_set(err, errno, "cannot create cache directory %s: %s", dir,
                           strerror(errno));
        }
        if (stat(dir, &st) != 0)
            return err_set(err, errno, "cache directory %s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return err_set(err, ENOTDIR, "cache directory %s is not a directory", dir);
    if (st.st_uid != geteuid())
        return err_set(err, EACCES, "refusing cache directory %s: it belongs to uid %u, not to %u",
                       dir, (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & 077)
        return err_set(err, EACCES,
                       "refusing cache directory %s (mode %04o): group or others can access it; "
                       "chmod 700 %s",
                       dir, (unsigned)(st.st_mode & 07777), dir);
    return 0;
}

/* Creates the database file 0600 whatever the umask, before sqlite opens it (sqlite then gives
 * -wal and -shm the database's mode), or checks an existing one. Returns 0 or an errno. */
static int make_db_file(const char *path, err_t *err)
{
    struct stat st;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        /* Closing a descriptor drops this process's POSIX locks on the file, sqlite's included;
         * harmless here only because the file did not exist a moment ago. */
        int rc = fchmod(fd, 0600) == 0 ? 0 : errno;
        close(fd);
        if (rc) {
            unlink(path);
            return err_set(err, rc, "cannot chmod 600 %s: %s", path, strerror(rc));
        }
        return 0;
    }
    if (errno != EEXIST)
        return err_set(err, errno, "cannot create cache database %s: %s", path, strerror(errno));
    if (stat(path, &st) != 0)
        return err_set(err, errno, "cache database %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return err_set(err, EINVAL, "cache database %s is not a regular file", path);
    if (st.st_uid != geteuid())
        return err_set(err, EACCES, "refusing cache database %s: it belongs to uid %u, not to %u",
                       path, (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & 077)
        return err_set(err, EACCES,
                       "refusing cache database %s (mode %04o): group or others can access it; "
                       "chmod 600 %s",
                       path, (unsigned)(st.st_mode & 07777), path);
    return 0;
}

/* Makes an existing -wal or -shm file private (an older run or another tool may have widened
 * it). Returns 0 or an errno. */
static int fix_side_file(const char *path, const char *suffix, err_t *err)
{
    char p[PATH_LEN + 8];
    struct stat st;
    snprintf(p, sizeof(p), "%s%s", path, suffix);
    if (stat(p, &st) != 0)
        return errno == ENOENT ? 0 : err_set(err, errno, "%s: %s", p, strerror(errno));
    if (st.st_uid != geteuid())
        return err_set(err, EACCES, "refusing %s: it belongs to uid %u, not to %u", p,
                       (unsigned)st.st_uid, (unsigned)geteuid());
    if ((st.st_mode & 077) && chmod(p, 0600) != 0)
        return err_set(err, errno, "cannot chmod 600 %s: %s", p, strerror(errno));
    return 0;
}

/* Runs a one-row, one-column query (a pragma) and returns its integer in *out. */
static int query_int(struct cache *c, const char *sql, int64_t *out, err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        rc = db_fail(c, rc, err, "running %s", sql);
    }
    sqlite3_finalize(st);
    return rc;
}

static int exec_sql(struct cache *c, const char *sql, const char *what, err_t *err)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_fail(c, rc, err, "%s", what);
}

static int too_new(struct cache *c, int64_t version, err_t *err)
{
    return err_set(err, ENOTSUP,
                   "cache %s has schema version %lld, which this s3torrent does not know (it "
                   "knows up to %d): use a newer s3torrent or another cache file",
                   c->path, (long long)version, SCHEMA_VERSION);
}

/* Brings the schema to SCHEMA_VERSION, refusing a newer or unknown one. Several processes may
 * open a new file at once: the version is read again under the write lock. */
static int migrate(struct cache *c, err_t *err)
{
    int64_t version = 0, tables = 0;
    bool began = false;
    char sql[64];
    int rc = query_int(c, "PRAGMA user_version", &version, err);
    if (rc || version == SCHEMA_VERSION)
        return rc;
    if (version < 0 || version > SCHEMA_VERSION)
        return too_new(c, version, err);
    if ((rc = exec_sql(c, "BEGIN IMMEDIATE", "starting the schema migration", err)))
        goto out;
    began = true;
    if ((rc = query_int(c, "PRAGMA user_version", &version, err)))
        goto out;
    if (version < 0 || version > SCHEMA_VERSION) {
        rc = too_new(c, version, err);
        goto out;
    }
    if (version == 0) {
        rc = query_int(c, "SELECT count(*) FROM sqlite_master", &tables, err);
        if (rc == 0 && tables > 0)
            rc = err_set(err, EINVAL,
                         "cache %s is not an s3torrent cache: it holds other tables and no "
                         "schema version; choose another cache file",
                         c->path);
        if (rc)
            goto out;
    }
    for (int64_t v = version; v < SCHEMA_VERSION; v++) {
        snprintf(sql, sizeof(sql), "migrating the schema to version %lld", (long long)v + 1);
        if ((rc = exec_sql(c, migrations[v], sql, err)))
            goto out;
    }
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
    if ((rc = exec_sql(c, sql, "setting the schema version", err)))
        goto out;
    rc = exec_sql(c, "COMMIT", "committing the schema migration", err);
out:
    if (began && !sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* WAL lets the FUSE daemon read while sync writes; NORMAL syncs only at checkpoints, which in
 * WAL mode can lose the last commits on power loss but never tears a transaction. */
static int configure(struct cache *c, err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    /* Switching a new file to WAL while another process does the same can fail with SQLITE_BUSY
     * without waiting (sqlite's deadlock avoidance): retry it for as long as a busy wait. */
    for (int tries = 0; rc == SQLITE_OK || rc == SQLITE_BUSY; tries++) {
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_BUSY || tries >= BUSY_TIMEOUT_MS / BUSY_RETRY_MS)
            break;
        sqlite3_sleep(BUSY_RETRY_MS);
    }
    /* A file system without shared memory keeps the rollback journal: slower, still correct. */
    rc = rc == SQLITE_ROW ? 0 : db_fail(c, rc, err, "opening");
    sqlite3_finalize(st);
    if (rc == 0)
        rc = exec_sql(c, "PRAGMA synchronous = NORMAL", "setting synchronous = NORMAL", err);
    /* after a checkpoint, shrink a WAL that one large transaction grew */
    if (rc == 0)
        rc = exec_sql(c, "PRAGMA journal_size_limit = 16777216", "limiting the WAL's size", err);
    return rc;
}

int cache_open(const char *path, uint64_t max_bytes, struct cache **out, err_t *err)
{
    struct cache *c = NULL;
    int rc = 0, src;
    if (out == NULL || path == NULL || path[0] == '\0')
        return err_set(err, EINVAL, "cache_open: no cache path given");
    *out = NULL;
    if (strlen(path) >= PATH_LEN)
        return err_set(err, ENAMETOOLONG, "cache path is longer than %d bytes", PATH_LEN - 1);
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return err_set(err, ENOMEM, "opening cache %s: out of memory", path);
    snprintf(c->path, sizeof(c->path), "%s", path);
    c->max_bytes = max_bytes;
    if ((rc = pthread_mutex_init(&c->lock, NULL))) {
        rc = err_set(err, rc, "opening cache %s: cannot create a mutex", path);
        goto fail;
    }
    c->lock_ready = true;
    if ((rc = make_dir(path, err)) || (rc = make_db_file(path, err)))
        goto fail;
    /* NOMUTEX: c->lock already serialises every use of the connection. */
    src = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        rc = db_fail(c, src, err, "opening");
        goto fail;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    if ((rc = configure(c, err)) || (rc = migrate(c, err)))
        goto fail;
    for (int i = 0; i < ST_COUNT; i++) {
        src =
            sqlite3_prepare_v3(c->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->st[i], NULL);
        if (src != SQLITE_OK) {
            rc = db_fail(c, src, err, "preparing a query");
            goto fail;
        }
    }
    if ((rc = fix_side_file(path, "-wal", err)) || (rc = fix_side_file(path, "-shm", err)))
        goto fail;
    *out = c;
    return 0;
fail:
    cache_close(c);
    return rc;
}

void cache_close(struct cache *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close(c->db);
    if (c->lock_ready)
        pthread_mutex_destroy(&c->lock);
    free(c);
}

int cache_default_path(char *out, size_t len)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (geteuid() == 0)
        n = snprintf(out, len, "/var/cache/s3torrent/torrents.db");
    else if (xdg != NULL && xdg[0] == '/') /* the XDG spec: ignore a relative value */
        n = snprintf(out, len, "%s/s3torrent/torrents.db", xdg);
    else if (home != NULL && home[0] != '\0')
        n = snprintf(out, len, "%s/.cache/s3torrent/torrents.db", home);
    else
        return ENOENT;
    if (n < 0 || (size_t)n >= len) {
        if (len > 0)
            out[0] = '\0';
        return ENAMETOOLONG;
    }
    return 0;
}

static bool args_ok(const struct cache *c, const char *bucket, const char *key, const char *etag,
                    const char *fingerprint)
{
    return c != NULL && bucket != NULL && key != NULL && etag != NULL && fingerprint != NULL;
}

/* A get writes (to move the entry to the top of the LRU order) only on the entry's first use
 * since the newest put anywhere, that put's own entry included: eviction happens only in puts,
 * so the order of first uses between two puts is all it needs, and a read-mostly workload stays
 * read-only. */
int cache_get(struct cache *c, const char *bucket, const char *key, const char *etag,
              const char *fingerprint, struct buf *out, err_t *err)
{
    if (!args_ok(c, bucket, key, etag, fingerprint) || out == NULL)
        return err_set(err, EINVAL, "cache_get: missing argument");
    int rc = 0, src, n = 0;
    bool touch = false;
    sqlite3_int64 id = 0;
    const void *p = NULL;
    pthread_mutex_lock(&c->lock);
    sqlite3_stmt *st = c->st[ST_GET];
    if ((src = bind_text(st, 1, bucket)) || (src = bind_text(st, 2, key)) ||
        (src = bind_text(st, 3, fingerprint)) || (src = bind_text(st, 4, etag))) {
        rc = db_fail(c, src, err, "reading s3://%s/%s", bucket, key);
        goto out;
    }
    src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        c->misses++;
        rc = ENOENT;
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = db_fail(c, src, err, "reading s3://%s/%s", bucket, key);
        goto out;
    }
    id = sqlite3_column_int64(st, 0);
    p = sqlite3_column_blob(st, 2);
    n = sqlite3_column_bytes(st, 2);
    if (p == NULL && n > 0) {
        rc = err_set(err, ENOMEM, "cache %s: reading s3://%s/%s: out of memory", c->path, bucket,
                     key);
        goto out;
    }
    if ((rc = buf_put(out, p, (size_t)n))) {
        rc = err_set(err, rc, "cache %s: the torrent of s3://%s/%s (%d bytes) %s", c->path, bucket,
                     key, n, rc == EFBIG ? "is larger than the buffer allows" : "out of memory");
        goto out;
    }
    touch = sqlite3_column_int64(st, 1) <= sqlite3_column_int64(st, 3);
    c->hits++;
out:
    finish(st);
    if (touch) {
        /* Best effort, and never waiting for another process's write: a read that succeeded
         * does not fail or stall for bookkeeping. A skipped touch is retried by the next get. */
        sqlite3_busy_timeout(c->db, 0);
        sqlite3_bind_int64(c->st[ST_TOUCH], 1, id);
        run(c->st[ST_TOUCH]);
        sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* Evicts least recently used entries other than keep until the total fits max_bytes; adds the
 * number evicted to *evicted. Runs inside the put's transaction. */
static int evict(struct cache *c, sqlite3_int64 keep, uint64_t *evicted, err_t *err)
{
    sqlite3_stmt *bytes = c->st[ST_BYTES], *oldest = c->st[ST_OLDEST];
    int src = sqlite3_step(bytes);
    if (src != SQLITE_ROW) {
        finish(bytes);
        return db_fail(c, src, err, "reading the cache's size");
    }
    int64_t total = sqlite3_column_int64(bytes, 0);
    finish(bytes);
    while (total > 0 && (uint64_t)total > c->max_bytes) {
        sqlite3_bind_int64(oldest, 1, keep);
        src = sqlite3_step(oldest);
        if (src == SQLITE_DONE) {
            finish(oldest);
            break; /* only the new entry is left: it stays, even over budget */
        }
        if (src != SQLITE_ROW) {
            finish(oldest);
            return db_fail(c, src, err, "finding the least recently used torrent");
        }
        sqlite3_int64 id = sqlite3_column_int64(oldest, 0);
        int64_t size = sqlite3_column_int64(oldest, 1);
        finish(oldest);
        sqlite3_bind_int64(c->st[ST_EVICT], 1, id);
        if ((src = run(c->st[ST_EVICT])) != SQLITE_DONE)
            return db_fail(c, src, err, "evicting a torrent");
        total -= size;
        (*evicted)++;
    }
    return 0;
}

int cache_put(struct cache *c, const char *bucket, const char *key, const char *etag,
              const char *fingerprint, const uint8_t *data, size_t len, err_t *err)
{
    if (!args_ok(c, bucket, key, etag, fingerprint) || (data == NULL && len > 0))
        return err_set(err, EINVAL, "cache_put: missing argument");
    int rc = 0, src;
    uint64_t evicted = 0;
    sqlite3_int64 id = 0;
    pthread_mutex_lock(&c->lock);
    sqlite3_stmt *drop = c->st[ST_DROP_OBJECT], *ins = c->st[ST_INSERT];
    if ((src = run(c->st[ST_BEGIN])) != SQLITE_DONE) {
        rc = db_fail(c, src, err, "storing the torrent of s3://%s/%s", bucket, key);
        goto out;
    }
    /* the same ETag's old copy and every other ETag's: an object has one current version */
    if ((src = bind_text(drop, 1, bucket)) || (src = bind_text(drop, 2, key)) ||
        (src = bind_text(drop, 3, fingerprint)) || (src = run(drop)) != SQLITE_DONE) {
        finish(drop);
        rc = db_fail(c, src, err, "replacing the torrent of s3://%s/%s", bucket, key);
        goto out;
    }
    if ((src = bind_text(ins, 1, bucket)) || (src = bind_text(ins, 2, key)) ||
        (src = bind_text(ins, 3, fingerprint)) || (src = bind_text(ins, 4, etag)) ||
        (src = sqlite3_bind_int64(ins, 5, (sqlite3_int64)len)) ||
        (src = sqlite3_bind_int64(ins, 6, (sqlite3_int64)time(NULL))) ||
        (src = len ? sqlite3_bind_blob64(ins, 7, data, len, SQLITE_STATIC)
                   : sqlite3_bind_zeroblob(ins, 7, 0)) ||
        (src = run(ins)) != SQLITE_DONE) {
        finish(ins);
        rc = db_fail(c, src, err, "storing the torrent of s3://%s/%s", bucket, key);
        goto out;
    }
    id = sqlite3_last_insert_rowid(c->db);
    sqlite3_bind_int64(c->st[ST_SET_PUT_TICK], 1, id);
    if ((src = run(c->st[ST_SET_PUT_TICK])) != SQLITE_DONE) {
        rc = db_fail(c, src, err, "storing the torrent of s3://%s/%s", bucket, key);
        goto out;
    }
    if (c->max_bytes > 0 && (rc = evict(c, id, &evicted, err)))
        goto out;
    if ((src = run(c->st[ST_COMMIT])) != SQLITE_DONE) {
        rc = db_fail(c, src, err, "committing the torrent of s3://%s/%s", bucket, key);
        goto out;
    }
    c->evictions += evicted;
out:
    if (!sqlite3_get_autocommit(c->db))
        run(c->st[ST_ROLLBACK]);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int cache_stats(struct cache *c, struct cache_stats *out, err_t *err)
{
    if (c == NULL || out == NULL)
        return err_set(err, EINVAL, "cache_stats: missing argument");
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    sqlite3_stmt *st = c->st[ST_STATS];
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        out->entries = (uint64_t)sqlite3_column_int64(st, 0);
        out->bytes = (uint64_t)sqlite3_column_int64(st, 1);
        out->hits = c->hits;
        out->misses = c->misses;
        out->evictions = c->evictions;
    } else {
        rc = db_fail(c, src, err, "reading statistics");
    }
    finish(st);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static int maker_get(void *arg, const char *bucket, const char *key, const char *etag,
                     const char *fp, struct buf *out, err_t *err)
{
    return cache_get(arg, bucket, key, etag, fp, out, err);
}

static int maker_put(void *arg, const char *bucket, const char *key, const char *etag,
                     const char *fp, const uint8_t *data, size_t len, err_t *err)
{
    return cache_put(arg, bucket, key, etag, fp, data, len, err);
}

void cache_as_maker_cache(struct cache *c, struct maker_cache *out)
{
    *out = (struct maker_cache){maker_get, maker_put, c};
}
