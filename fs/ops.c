/* ops.c — FUSE operations: a read-only view of the bucket (docs/DESIGN.md §5). Lookups go
 * through the listing cache, object reads through the block cache, synthetic torrents through
 * the torrent service; every call that would change something is EROFS. */
#include "ops.h"
#include "s3torrent/blocks.h"
#include "dirtorrents.h"
#include "fs.h"
#include "meta.h"
#include "torrents.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* One open file or directory: an object (its blocks), a synthetic torrent (its bytes) or a
 * listing snapshot (opendir). A directory's torrent is a META_TORRENT handle too. */
struct handle {
    enum meta_kind kind;
    struct meta_dir *dir;   /* META_DIR: the listing snapshot an opendir reads */
    struct blocks_obj *obj; /* META_FILE */
    /* the kernel may send reads of one handle in parallel: the read-ahead heuristic below is
     * the only mutable state of a handle, and this lock guards it */
    pthread_mutex_t lock;
    uint64_t next_off; /* where the stream continues */
    uint64_t run;      /* bytes read in a row up to next_off */
    uint8_t *bytes;    /* META_TORRENT */
    size_t len;
    struct lru_node node; /* on fs->handles, under fs->handles_lock */
};

static struct fs *ctx(void)
{
    return fuse_get_context()->private_data;
}

/* Asks for the kernel's largest reads: libfuse already offers requests of 1 MiB (max_pages from
 * its buffer), and the kernel's read-ahead window, the smaller of the mount's bdi read_ahead_kb
 * and this reply, bounds every read it sends (docs/DESIGN.md §16). */
static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)cfg;
    conn->max_readahead = OPS_KERNEL_READAHEAD;
    return ctx();
}

static void fill_stat(struct fs *fs, const struct meta_entry *e, struct stat *st)
{
    const struct fs_settings *set = live_get(&fs->live);
    memset(st, 0, sizeof(*st));
    st->st_uid = set->uid;
    st->st_gid = set->gid;
    if (e->kind == META_DIR) {
        st->st_mode = S_IFDIR | (0555 & ~set->umask);
        st->st_nlink = 2;
    } else {
        st->st_mode = S_IFREG | (0444 & ~set->umask);
        st->st_nlink = 1;
        st->st_size = (off_t)e->size;
        st->st_blocks = (blkcnt_t)((e->size + 511) / 512);
    }
    st->st_mtime = st->st_ctime = st->st_atime = (time_t)e->mtime;
    st->st_blksize = 1 << 20;
}

/* meta_lookup, with a directory torrent's size and date (not in the listing) filled in. */
static int lookup(struct fs *fs, const char *path, struct meta_entry *e, err_t *err)
{
    int rc = meta_lookup(fs->meta, path, e, err);
    if (rc == 0 && e->kind == META_DIR_TORRENT &&
        (rc = dirt_stat(fs->dirt, e->key, &e->size, &e->mtime, err)) != 0)
        meta_entry_clear(e);
    return rc;
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    struct fs *fs = ctx();
    struct meta_entry e;
    err_t err = {0};
    (void)fi;
    int rc = lookup(fs, path, &e, &err);
    if (rc == ENOENT)
        return -ENOENT;
    if (rc) {
        log_msg(&fs->log, LOG_ERR, "%s", err.msg);
        return -EIO;
    }
    fill_stat(fs, &e, st);
    meta_entry_clear(&e);
    return 0;
}

/* Puts h on the list of open handles, or takes it off (see ops_close_all). */
static void handle_track(struct fs *fs, struct handle *h, bool on)
{
    pthread_mutex_lock(&fs->handles_lock);
    if (on)
        lru_touch(&fs->handles, &h->node);
    else
        lru_remove(&fs->handles, &h->node);
    pthread_mutex_unlock(&fs->handles_lock);
}

static void handle_free(struct fs *fs, struct handle *h)
{
    if (h->dir) {
        meta_dir_release(fs->meta, h->dir);
    } else {
        if (h->obj)
            blocks_obj_release(fs->blocks, h->obj);
        atomic_fetch_sub(&fs->metrics.open_files, 1);
    }
    free(h->bytes);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* What a release does: off the list, then freed. */
static void handle_close(struct fs *fs, struct handle *h)
{
    handle_track(fs, h, false);
    handle_free(fs, h);
}

static int op_opendir(const char *path, struct fuse_file_info *fi)
{
    struct fs *fs = ctx();
    struct meta_entry e;
    struct meta_dir *d;
    err_t err = {0};
    int rc = meta_lookup(fs->meta, path, &e, &err);
    if (rc == 0 && e.kind != META_DIR)
        rc = ENOTDIR;
    if (rc == 0)
        meta_entry_clear(&e);
    if (rc == 0)
        rc = meta_dir_get(fs->meta, path, &d, &err);
    if (rc == ENOENT || rc == ENOTDIR)
        return -rc;
    if (rc) {
        log_msg(&fs->log, LOG_ERR, "%s", err.msg);
        return -EIO;
    }
    /* the handle keeps this snapshot: offsets stay stable however long the listing is */
    struct handle *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        meta_dir_release(fs->meta, d);
        return -ENOMEM;
    }
    h->kind = META_DIR;
    h->dir = d;
    pthread_mutex_init(&h->lock, NULL);
    handle_track(fs, h, true);
    fi->fh = (uint64_t)(uintptr_t)h;
    for (size_t i = 0; i < d->n; i++)
        if (d->entries[i].kind == META_TORRENT)
            tgen_prefetch(fs->tgen, &d->entries[i]);
    return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    struct fs *fs = ctx();
    const struct meta_dir *d = ((struct handle *)(uintptr_t)fi->fh)->dir;
    (void)path;
    bool plus = flags & FUSE_READDIR_PLUS;
    /* offsets: 1 is ".", 2 is "..", 3 + i is entry i */
    if (off < 1 && fill(buf, ".", NULL, 1, 0))
        return 0;
    if (off < 2 && fill(buf, "..", NULL, 2, 0))
        return 0;
    for (size_t i = off > 2 ? (size_t)off - 2 : 0; i < d->n; i++) {
        struct stat st;
        fill_stat(fs, &d->entries[i], &st);
        /* a directory torrent's size takes a listing of its own: the kernel asks for it in a
         * lookup, when it wants it */
        bool attrs = plus && d->entries[i].kind != META_DIR_TORRENT;
        if (fill(buf, d->entries[i].name, &st, (off_t)(i + 3), attrs ? FUSE_FILL_DIR_PLUS : 0))
            break;
    }
    return 0;
}

static int op_releasedir(const char *path, struct fuse_file_info *fi)
{
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    (void)path;
    handle_close(ctx(), h);
    return 0;
}

/* Checks e (a FILE or TORRENT entry from a listing up to a TTL old) against the object now:
 * a replaced object's ETag, size and date replace the listing's (a re-upload of the same bytes
 * changes the date alone, which a torrent carries), and the listing is fetched again on next
 * use. Returns 0 (*resized when the size the kernel was told changed), ENOENT
 * for a deleted object, or another errno with err set. */
static int revalidate(struct fs *fs, const char *path, struct meta_entry *e, bool *resized,
                      err_t *err)
{
    struct store_object now;
    *resized = false;
    int rc = store_head(fs->store, fs->cfg.bucket, e->key, &now, NULL, err);
    if (rc == ENOENT)
        meta_forget(fs->meta, path);
    if (rc || (strcmp(now.etag, e->etag) == 0 && now.mtime == e->mtime))
        return rc;
    char *etag = strdup(now.etag);
    if (etag == NULL)
        return err_set(err, ENOMEM, "out of memory");
    meta_forget(fs->meta, path);
    free(e->etag);
    e->etag = etag;
    e->mtime = now.mtime;
    uint64_t size = now.size;
    if (e->kind == META_TORRENT) {
        if (now.size == 0)
            return ENOENT; /* a zero-byte object has no torrent */
        e->object_size = now.size;
        size = meta_torrent_size(live_get(&fs->live), e->key, now.size, now.mtime);
    }
    *resized = size != e->size;
    e->size = size;
    return 0;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
    struct fs *fs = ctx();
    struct meta_entry e;
    err_t err = {0};
    if ((fi->flags & O_ACCMODE) != O_RDONLY)
        return -EROFS;
    int rc = lookup(fs, path, &e, &err);
    if (rc == ENOENT)
        return -ENOENT;
    if (rc) {
        log_msg(&fs->log, LOG_ERR, "%s", err.msg);
        return -EIO;
    }
    struct handle *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        meta_entry_clear(&e);
        return -ENOMEM;
    }
    h->kind = e.kind == META_DIR_TORRENT ? META_TORRENT : e.kind;
    pthread_mutex_init(&h->lock, NULL);
    bool resized = false;
    if (e.kind == META_DIR) {
        rc = EISDIR;
    } else if (e.kind == META_DIR_TORRENT) {
        /* listed again: a changed object below the directory changes its torrent */
        struct buf b;
        buf_init(&b, (size_t)1 << 30);
        if ((rc = dirt_get(fs->dirt, e.key, &b, &err)) == 0) {
            h->bytes = buf_steal(&b, &h->len);
        } else if (rc != ENOENT) {
            log_msg(&fs->log, LOG_ERR, "%s", err.msg);
            rc = EIO;
        }
        buf_free(&b);
    } else if ((rc = revalidate(fs, path, &e, &resized, &err)) != 0) {
        if (rc != ENOENT) {
            log_msg(&fs->log, LOG_ERR, "%s", err.msg);
            rc = EIO;
        }
    } else if (e.kind == META_TORRENT) {
        struct buf b;
        buf_init(&b, (size_t)1 << 30);
        rc = tgen_get(fs->tgen, &e, &b, &err);
        if (rc) {
            log_msg(&fs->log, LOG_ERR, "%s", err.msg);
            buf_free(&b);
            rc = EIO;
        } else {
            h->bytes = buf_steal(&b, &h->len);
        }
    } else {
        struct store_object pin = {.size = e.size, .mtime = e.mtime};
        snprintf(pin.etag, sizeof(pin.etag), "%s", e.etag);
        if ((h->obj = blocks_obj_get(fs->blocks, e.key, &pin)) == NULL)
            rc = ENOMEM;
    }
    meta_entry_clear(&e);
    if (rc) {
        if (rc != ENOENT && rc != EISDIR)
            atomic_fetch_add(&fs->metrics.open_errors, 1);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return -rc;
    }
    atomic_fetch_add(&fs->metrics.opens[h->kind == META_TORRENT ? FSM_TORRENT : FSM_DATA], 1);
    atomic_fetch_add(&fs->metrics.open_files, 1);
    handle_track(fs, h, true);
    fi->fh = (uint64_t)(uintptr_t)h;
    /* no keep_cache: a new version may have the same size and Last-Modified second as the
     * old one, so the kernel must not serve the old pages; the block cache, keyed by ETag,
     * keeps reopening cheap */
    fi->keep_cache = 0;
    /* the kernel still holds the old size until its attribute timeout: read past it */
    fi->direct_io = resized;
    /* a torrent's size follows the settings too, and the kernel may hold the size from before
     * a SIGHUP for up to its attribute timeout: always read torrents past it */
    if (h->kind == META_TORRENT)
        fi->direct_io = 1;
    return 0;
}

/* The stream's read-ahead for a read of size bytes at off: 0 until the stream has read
 * STREAM_START bytes in a row (more than the kernel's own read-ahead reads past a piece a client
 * reads in order), then twice the bytes read, up to max. A read within SLACK of its own
 * sizes of where the stream continues is still in the stream: the kernel sends the reads of its
 * window in parallel, and they may arrive out of order. Anything else starts a new stream (a
 * piece-shaped reader: reads of 16 KiB at random places fetch one block each). */
#define STREAM_START (4u << 20)
#define SLACK        4
static uint64_t stream_ahead(struct handle *h, uint64_t off, size_t size, uint64_t max,
                             uint64_t *in_row)
{
    uint64_t slack = (uint64_t)SLACK * size;
    pthread_mutex_lock(&h->lock);
    bool near = h->next_off > 0 && off + size + slack >= h->next_off && off <= h->next_off + slack;
    uint64_t run = near ? h->run : 0;
    if (near && off + size > h->next_off) {
        h->run += off + size - h->next_off;
        h->next_off = off + size;
    } else if (!near) {
        h->run = size;
        h->next_off = off + size;
    }
    pthread_mutex_unlock(&h->lock);
    *in_row = run;
    if (run < STREAM_START)
        return 0;
    return run < max / 2 ? 2 * run : max;
}

/* A read answered with a buffer of our own, which libfuse sends and then frees: a stream that
 * has read more than the block cache holds takes whole blocks out of the cache instead of
 * copying them (they would be evicted before any re-read; the kernel's page cache keeps them),
 * which saves a copy and a fresh buffer per read (docs/DESIGN.md §16). */
static int op_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    struct fs *fs = ctx();
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    struct fuse_bufvec *bv = malloc(sizeof(*bv));
    uint8_t *mem = NULL;
    long n = 0;
    (void)path;
    if (bv == NULL)
        return -ENOMEM;
    *bv = (struct fuse_bufvec)FUSE_BUFVEC_INIT(0);
    if (h->kind == META_TORRENT) {
        if ((uint64_t)off < h->len) {
            n = (long)(h->len - (size_t)off < size ? h->len - (size_t)off : size);
            if ((mem = malloc((size_t)n)) == NULL)
                n = -ENOMEM;
            else
                memcpy(mem, h->bytes + off, (size_t)n);
        }
        if (n >= 0) {
            atomic_fetch_add(&fs->metrics.reads[FSM_TORRENT], 1);
            atomic_fetch_add(&fs->metrics.read_bytes[FSM_TORRENT], (unsigned long long)n);
        }
    } else {
        /* read-ahead grows with a sequential stream (docs/DESIGN.md §16) */
        uint64_t in_row;
        uint64_t ahead =
            stream_ahead(h, (uint64_t)off, size, live_get(&fs->live)->read_ahead, &in_row);
        if (in_row > fs->cfg.block_cache)
            n = blocks_take(fs->blocks, h->obj, (uint64_t)off, size, &mem, ahead);
        if (n == 0) {
            if ((mem = malloc(size)) == NULL)
                n = -ENOMEM;
            else
                n = blocks_read(fs->blocks, h->obj, (uint64_t)off, size, mem, ahead);
        }
        atomic_fetch_add(&fs->metrics.reads[FSM_DATA], 1);
        if (n < 0)
            atomic_fetch_add(&fs->metrics.read_errors[FSM_DATA], 1);
        else
            atomic_fetch_add(&fs->metrics.read_bytes[FSM_DATA], (unsigned long long)n);
    }
    if (n < 0) {
        free(mem);
        free(bv);
        return (int)n;
    }
    bv->buf[0].mem = mem;
    bv->buf[0].size = (size_t)n;
    *bufp = bv;
    return 0;
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
    struct fs *fs = ctx();
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    (void)path;
    handle_close(fs, h);
    return 0;
}

void ops_close_all(struct fs *fs)
{
    pthread_mutex_lock(&fs->handles_lock);
    for (struct lru_node *n; (n = lru_pop(&fs->handles)) != NULL;)
        handle_free(fs, LRU_ENTRY(n, struct handle, node));
    pthread_mutex_unlock(&fs->handles_lock);
}

static int op_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    memset(st, 0, sizeof(*st));
    st->f_bsize = st->f_frsize = 1 << 20;
    st->f_namemax = 255;
    st->f_flag = ST_RDONLY;
    return 0;
}

static int op_access(const char *path, int mask)
{
    if (mask & W_OK)
        return -EROFS;
    struct stat st;
    return op_getattr(path, &st, NULL);
}

/* everything that would change the bucket */
static int rofs_path(const char *p)
{
    (void)p;
    return -EROFS;
}
static int rofs_mode(const char *p, mode_t m)
{
    (void)p;
    (void)m;
    return -EROFS;
}
static int rofs_chmod(const char *p, mode_t m, struct fuse_file_info *fi)
{
    (void)p;
    (void)m;
    (void)fi;
    return -EROFS;
}
static int rofs_two(const char *a, const char *b)
{
    (void)a;
    (void)b;
    return -EROFS;
}
static int rofs_rename(const char *a, const char *b, unsigned int flags)
{
    (void)a;
    (void)b;
    (void)flags;
    return -EROFS;
}
static int rofs_chown(const char *p, uid_t u, gid_t g, struct fuse_file_info *fi)
{
    (void)p;
    (void)u;
    (void)g;
    (void)fi;
    return -EROFS;
}
static int rofs_truncate(const char *p, off_t o, struct fuse_file_info *fi)
{
    (void)p;
    (void)o;
    (void)fi;
    return -EROFS;
}
static int rofs_write(const char *p, const char *b, size_t s, off_t o, struct fuse_file_info *fi)
{
    (void)p;
    (void)b;
    (void)s;
    (void)o;
    (void)fi;
    return -EROFS;
}
static int rofs_create(const char *p, mode_t m, struct fuse_file_info *fi)
{
    (void)p;
    (void)m;
    (void)fi;
    return -EROFS;
}
static int rofs_utimens(const char *p, const struct timespec tv[2], struct fuse_file_info *fi)
{
    (void)p;
    (void)tv;
    (void)fi;
    return -EROFS;
}
static int rofs_mknod(const char *p, mode_t m, dev_t d)
{
    (void)p;
    (void)m;
    (void)d;
    return -EROFS;
}
static int rofs_setxattr(const char *p, const char *n, const char *v, size_t s, int f)
{
    (void)p;
    (void)n;
    (void)v;
    (void)s;
    (void)f;
    return -EROFS;
}

const struct fuse_operations ops_table = {
    .init = op_init,
    .getattr = op_getattr,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .open = op_open,
    .read_buf = op_read_buf,
    .release = op_release,
    .statfs = op_statfs,
    .access = op_access,
    .mkdir = rofs_mode,
    .rmdir = rofs_path,
    .unlink = rofs_path,
    .symlink = rofs_two,
    .link = rofs_two,
    .rename = rofs_rename,
    .chmod = rofs_chmod,
    .chown = rofs_chown,
    .truncate = rofs_truncate,
    .write = rofs_write,
    .create = rofs_create,
    .utimens = rofs_utimens,
    .mknod = rofs_mknod,
    .setxattr = rofs_setxattr,
    .removexattr = rofs_two,
};
