/* source_dir.c — the regular files below a local directory, as parts of a concatenated source:
 * what `create DIR` lays out as a multi-file torrent (docs/DESIGN.md §3). */
#include "s3torrent/source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_PARTS 1000000 /* what metainfo_ reads back */
#define MAX_DEPTH 256

struct walk {
    const char *const *include, *const *exclude;
    size_t ninclude, nexclude;
    struct source_dir *out;
};

static bool matches(const char *const *pats, size_t n, const char *rel)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(pats[i], rel, 0) == 0)
            return true;
    return false;
}

/* a/b joined, or b alone when a is empty; NULL when out of memory */
static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + 1 + lb + 1);
    if (s == NULL)
        return NULL;
    if (la) {
        memcpy(s, a, la);
        s[la++] = '/';
    }
    memcpy(s + la, b, lb + 1);
    return s;
}

bool source_path_kept(const char *const *include, size_t ninclude, const char *const *exclude,
                      size_t nexclude, const char *rel)
{
    if (matches(exclude, nexclude, rel))
        return false;
    if (nexclude) {
        char *dir = strdup(rel);
        bool out = dir == NULL;
        for (char *s = dir ? strrchr(dir, '/') : NULL; s != NULL && !out; s = strrchr(dir, '/')) {
            *s = '\0';
            out = matches(exclude, nexclude, dir);
        }
        free(dir);
        if (out)
            return false;
    }
    return ninclude == 0 || matches(include, ninclude, rel);
}

int source_dir_push(struct source_dir *d, struct source_part **p, err_t *err)
{
    if (d->n == MAX_PARTS)
        return err_set(err, E2BIG, "%s: more than %d files", d->display, MAX_PARTS);
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 64;
        struct source_part *np = realloc(d->parts, nc * sizeof(*np));
        if (np == NULL)
            return err_set(err, ENOMEM, "out of memory");
        d->parts = np;
        d->cap = nc;
    }
    *p = &d->parts[d->n++];
    memset(*p, 0, sizeof(**p));
    return 0;
}

static int add(struct walk *w, char *full, char *rel, const struct stat *st, err_t *err)
{
    struct source_dir *d = w->out;
    struct source_part *p;
    int rc = source_dir_push(d, &p, err);
    if (rc)
        return rc;
    p->path = rel;
    p->arg = full;
    p->open = source_file_opener;
    p->size = (uint64_t)st->st_size;
    p->mtime = st->st_mtim.tv_sec;
    if (p->mtime > d->mtime)
        d->mtime = p->mtime;
    return 0;
}

static int walk(struct walk *w, const char *full, const char *rel, int depth, err_t *err)
{
    DIR *dir = opendir(full);
    int rc = 0;
    if (dir == NULL)
        return err_set(err, errno, "%s: %s", full, strerror(errno));
    if (depth > MAX_DEPTH) {
        closedir(dir);
        return err_set(err, ELOOP, "%s: more than %d directories deep", full, MAX_DEPTH);
    }
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(dir);
        if (e == NULL) {
            if (errno)
                rc = err_set(err, errno, "%s: %s", full, strerror(errno));
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *f = join(full, e->d_name), *r = join(rel, e->d_name);
        struct stat st;
        if (f == NULL || r == NULL) {
            rc = err_set(err, ENOMEM, "out of memory");
        } else if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = err_set(err, errno, "%s: %s", f, strerror(errno));
        } else if (matches(w->exclude, w->nexclude, r)) {
            /* left out, with everything below it */
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk(w, f, r, depth + 1, err);
        } else if (S_ISREG(st.st_mode) &&
                   (w->ninclude == 0 || matches(w->include, w->ninclude, r))) {
            if ((rc = add(w, f, r, &st, err)) == 0)
                f = r = NULL; /* the part owns them */
        }
        /* symbolic links, sockets, FIFOs and devices are never part of a torrent */
        free(f);
        free(r);
        if (rc)
            break;
    }
    closedir(dir);
    return rc;
}

int source_dir_scan(const char *dir, const char *const *include, size_t ninclude,
                    const char *const *exclude, size_t nexclude, struct source_dir *out, err_t *err)
{
    struct walk w = {include, exclude, ninclude, nexclude, out};
    struct stat st;
    memset(out, 0, sizeof(*out));
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    if ((out->display = strndup(dir, len)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    if (stat(out->display, &st) != 0)
        return err_set(err, errno, "%s: %s", out->display, strerror(errno));
    /* "." and ".." are named after the directory they are */
    char *real = NULL;
    const char *slash = strrchr(out->display, '/'), *base = slash ? slash + 1 : out->display;
    if ((strcmp(base, ".") == 0 || strcmp(base, "..") == 0) &&
        (real = realpath(out->display, NULL)) != NULL)
        base = strrchr(real, '/') + 1;
    out->name = strdup(base);
    free(real);
    if (out->name == NULL)
        return err_set(err, ENOMEM, "out of memory");
    if (!S_ISDIR(st.st_mode))
        return err_set(err, ENOTDIR, "%s: not a directory", out->display);
    return walk(&w, out->display, "", 0, err);
}

void source_dir_free(struct source_dir *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->parts[i].path);
        free(d->parts[i].arg);
    }
    free(d->parts);
    free(d->name);
    free(d->display);
    memset(d, 0, sizeof(*d));
}
