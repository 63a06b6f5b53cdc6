/* source.h — the byte-source interface the hasher reads from: a local file (source_file.c), an
 * S3 object through ranged GETs (s3.c), or several of them read end to end (source_concat.c).
 * Workers open independent streams over disjoint ranges. */
#ifndef S3TORRENT_SOURCE_H
#define S3TORRENT_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3torrent/buf.h"
#include "s3torrent/err.h"

struct source;

struct source_ops {
    /* Starts a sequential read of [off, off + len). Returns 0 or a positive errno. */
    int (*stream_open)(struct source *s, uint64_t off, uint64_t len, void **stream, err_t *err);
    /* Makes the next n bytes of the stream available: either read into scratch (n bytes) or
     * held by the source itself (no copy); *data points at them until the next call or the
     * close. Returns 0 or a positive errno (ESTALE when the object changed under the reader). */
    int (*stream_next)(struct source *s, void *stream, size_t n, uint8_t *scratch,
                       const uint8_t **data, err_t *err);
    /* Optional (NULL: use stream_next): hands the next n bytes of the stream to sink as they
     * arrive, with no copy (an S3 object's bytes straight from the transport's receive
     * buffer). Returns 0 or a positive errno as stream_next; after a failure sink may have
     * seen part of the n bytes. */
    int (*stream_feed)(struct source *s, void *stream, size_t n, buf_sink_fn sink, void *arg,
                       err_t *err);
    void (*stream_close)(struct source *s, void *stream);
    /* Checks, after the last read, that the object is still the one that was read. */
    int (*finish)(struct source *s, err_t *err);
    void (*destroy)(struct source *s);
};

struct source {
    const struct source_ops *ops;
    char *name;    /* the last path segment: the torrent's default name */
    char *display; /* what error messages call the object (path or s3:// URI) */
    uint64_t size;
    int64_t mtime; /* Unix seconds: a file's mtime, an object's Last-Modified */
    uint64_t span;     /* the smallest range worth one stream (ranged GETs want megabytes) */
    unsigned parallel; /* streams worth running at once; 0: one per core */
};

/* Opens a regular local file. Returns 0 or a positive errno with err set; a directory is
 * ENOTSUP (source_dir_scan reads those). The caller frees *out with source_free. */
int source_file_open(const char *path, struct source **out, err_t *err);

/* One file of a set read as one (a directory's files; the objects under an S3 prefix, with an
 * opener around store_open_source: store_prefix_scan): its path inside the set ('/'-separated), its
 * size and mtime as listed, and how to open it when its bytes are first needed. */
struct source_part {
    char *path;    /* relative to the set's root; NULL for a run of zeros (a BEP 47 pad) */
    uint64_t size; /* the bytes the part must have when opened */
    int64_t mtime; /* Unix seconds */
    /* Opens the part; NULL for zeros. Returns 0 or a positive errno with err set. */
    int (*open)(void *arg, struct source **out, err_t *err);
    void *arg; /* the opener's: a local path for source_file_opener */
};

/* An opener for source_part: arg is a local path (a char *), read with pread, never mapped. */
int source_file_opener(void *arg, struct source **out, err_t *err);

/* A source whose bytes are parts[0, n) one after another. Each part is opened on first read
 * and closed, after its finish check, once all its bytes were read, so a stream crosses any
 * number of files with only the ones being read open; a part whose size differs from the
 * listed one is ESTALE (a part's own finish
 * check catches a change while it is read). parts (and their paths and args) must outlive the
 * source; name and display are copied. Returns 0 or ENOMEM with err set; the caller frees *out with
 * source_free. */
int source_concat_open(const char *name, const char *display, const struct source_part *parts,
                       size_t n, struct source **out, err_t *err);

/* The regular files below a local directory, as parts in no particular order (the caller sorts
 * them for its layout). Symbolic links are never followed (a link to a file or a directory is
 * left out); empty directories contribute nothing; dot-files are included. When include has
 * entries a file must match one of them, and a file matching an exclude pattern is left out:
 * fnmatch(3) patterns against the path relative to dir, without FNM_PATHNAME ('*' matches '/'
 * too, so "*.log" is every .log file at any depth). */
struct source_dir {
    char *name;    /* dir's last path segment */
    char *display; /* dir as given */
    int64_t mtime; /* the newest mtime of the files kept */
    struct source_part *parts;
    size_t n, cap;
    /* what hashing the parts wants, for torrent_opts: the bytes worth one stream and the
     * streams worth running at once; 0 for local files (network objects want more) */
    uint64_t span;
    unsigned parallel;
};

/* Whether a file at rel (relative to the set's root) is kept as source_dir_scan keeps it: no
 * exclude pattern matches it or one of its directories, and include is empty or one of its
 * patterns matches it. */
bool source_path_kept(const char *const *include, size_t ninclude, const char *const *exclude,
                      size_t nexclude, const char *rel);

/* Adds a zeroed part at the end of d->parts, in *p. Returns 0, ENOMEM, or E2BIG past the million
 * files a torrent may list, with err set. Its path and arg are freed by source_dir_free. */
int source_dir_push(struct source_dir *d, struct source_part **p, err_t *err);

/* Walks dir. Returns 0, ENOTDIR when dir is not a directory, or another errno with err naming
 * the path that failed; the caller frees out with source_dir_free (also after a failure). */
int source_dir_scan(const char *dir, const char *const *include, size_t ninclude,
                    const char *const *exclude, size_t nexclude, struct source_dir *out,
                    err_t *err);
void source_dir_free(struct source_dir *d);

/* Frees a source of any kind (NULL is fine). */
void source_free(struct source *s);

#endif
