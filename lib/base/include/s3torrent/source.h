/* source.h — the byte-source interface the hasher reads from: a local file (source_file.c) or
 * an S3 object through ranged GETs (s3.c). Workers open independent streams over disjoint
 * ranges. */
#ifndef S3TORRENT_SOURCE_H
#define S3TORRENT_SOURCE_H

#include <stdint.h>

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
 * ENOTSUP (not supported yet). The caller frees *out with source_free. */
int source_file_open(const char *path, struct source **out, err_t *err);

/* Frees a source of any kind (NULL is fine). */
void source_free(struct source *s);

#endif
