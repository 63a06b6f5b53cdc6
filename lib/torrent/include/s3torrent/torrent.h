/* torrent.h — the torrent contract of docs/DESIGN.md §3: (bytes, name, options) -> torrent
 * bytes. The exact size is computable from the object's size and the options alone. */
#ifndef S3TORRENT_TORRENT_H
#define S3TORRENT_TORRENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3torrent/buf.h"
#include "s3torrent/err.h"
#include "s3torrent/hasher.h"
#include "s3torrent/source.h"

enum torrent_meta { TORRENT_V1 = 1, TORRENT_V2 = 2, TORRENT_HYBRID = 3 }; /* bit 0: v1, bit 1: v2 */

struct torrent_opts {
    enum torrent_meta meta;
    uint64_t piece_length;       /* 0: torrent_auto_piece_length */
    const char *const *trackers; /* each its own tier (BEP 12) */
    size_t ntrackers;
    const char *const *webseeds; /* full URLs of the file (BEP 19) */
    size_t nwebseeds;
    bool private_;
    const char *source;     /* NULL: none */
    const char *comment;    /* NULL: none */
    const char *created_by; /* NULL: omitted */
    bool no_date;
    int64_t creation_date; /* used unless no_date */
    bool pad; /* multi-file v1: BEP 47 pad files as a hybrid has (docs/DESIGN.md §3) */
    unsigned threads;      /* hashing threads; 0: all cores */
    /* multi-file, when the files are network objects (struct source_dir's): the bytes worth
     * one stream over several of them and the streams (or files) worth reading at once; 0 for
     * local files */
    uint64_t span;
    unsigned parallel;
    /* multi-file v2, hybrid and padded v1: file i's hashes at piece length plen learned before
     * (the cache of its single-file torrent); true with *h filled (size, piece length, and what
     * need says: the v2 layer and root, the v1 pieces with has_v1_padded) skips reading it.
     * May be NULL; never called for plain v1, whose pieces span files. */
    bool (*known)(void *arg, size_t i, enum torrent_meta need, uint64_t plen,
                  struct hasher_result *h);
    /* the same layouts: what hashing file i learned, to keep (v1 pieces as a single-file
     * torrent has them, with v1_padded); may be NULL. Both are called from several threads at
     * once. */
    void (*learned)(void *arg, size_t i, const struct hasher_result *h);
    void *known_arg;
    /* progress of hashing, as in struct hasher_opts; may be NULL */
    void (*progress)(void *arg, uint64_t done, uint64_t total);
    void *progress_arg;
};

#define TORRENT_MIN_PIECE (16u * 1024)
#define TORRENT_MAX_PIECE (256u * 1024 * 1024)
#define TORRENT_MAX_SIZE  (64u * 1024 * 1024) /* cap on a .torrent read into memory */

/* The smallest power of two >= 256 KiB giving at most 2048 pieces, capped at 16 MiB. */
uint64_t torrent_auto_piece_length(uint64_t size);

/* Parses "v1", "v2" or "hybrid". Returns 0 or EINVAL. */
int torrent_parse_meta(const char *s, enum torrent_meta *out);
const char *torrent_meta_name(enum torrent_meta m);

/* Checks a torrent name (one path segment). Returns 0 or EINVAL with err set. */
int torrent_check_name(const char *name, err_t *err);

/* Resolves piece_length (auto when 0) and validates opts for an object of `size` bytes.
 * Returns the piece length in *plen, 0 or EINVAL with err set. */
int torrent_resolve(uint64_t size, const struct torrent_opts *opts, uint64_t *plen, err_t *err);

/* Writes the torrent for (name, size, opts) into out. hashes may be NULL to lay out zeros of
 * the same widths, which is how torrent_size measures. Returns 0 or an errno. */
int torrent_encode(const char *name, uint64_t size, const struct torrent_opts *opts,
                   const struct hasher_result *hashes, struct buf *out, err_t *err);

/* The exact byte size of the torrent torrent_encode would write, or 0 on invalid options. */
uint64_t torrent_size(const char *name, uint64_t size, const struct torrent_opts *opts);

/* The outer digest of docs/DESIGN.md §4: lower-case hex of the first 16 bytes of the SHA-256 of
 * the torrent's top-level dict bencoded without its "info" and "piece layers" entries (trackers,
 * comment, creator, date, web seeds: what the options decide around the hashes). */
#define TORRENT_OUTER_HEX 33 /* 32 hex digits and a NUL */

/* The outer digest of the torrent torrent_encode would write for opts, whatever the object's
 * bytes. Returns 0 or an errno. */
int torrent_outer_digest(const struct torrent_opts *opts, char out[TORRENT_OUTER_HEX]);

/* The outer digest of the torrent p[0, n) as stored (equal to torrent_outer_digest of the
 * options that wrote it). Returns 0, or EINVAL when it is not one canonical bencoded dict. */
int torrent_outer_digest_of(const uint8_t *p, size_t n, char out[TORRENT_OUTER_HEX]);

/* Hashes src as opts say (piece length resolved for src's size, v1 and/or v2): what every torrent
 * of these bytes shares whatever its name and outer fields. Returns 0 or an errno; on success the
 * caller frees h with hasher_result_free. */
int torrent_hash(struct source *src, const struct torrent_opts *opts, struct hasher_result *h,
                 err_t *err);

/* Encodes the torrent of name for bytes already hashed (h, whose piece length must be the one
 * opts resolve to for h->size) into out; ih1/ih2 (either may be NULL) receive the info-hashes.
 * Returns 0 or an errno (out unchanged then). */
int torrent_encode_hashed(const char *name, const struct torrent_opts *opts,
                          const struct hasher_result *h, struct buf *out, uint8_t ih1[20],
                          uint8_t ih2[32], err_t *err);

/* Hashes src and encodes its torrent into out (name NULL: src's name). Returns 0 or an errno;
 * ih1/ih2 (either may be NULL) receive the v1 SHA-1 and v2 SHA-256 info-hashes. */
int torrent_create(struct source *src, const char *name, const struct torrent_opts *opts,
                   struct buf *out, uint8_t ih1[20], uint8_t ih2[32], err_t *err);

/* Multi-file torrents (docs/DESIGN.md §3): files are source_parts (path inside the torrent, size,
 * opener), so the files below a local directory (source_dir_scan) and the objects under an S3
 * prefix (store_prefix_scan) lay out the same way. */

/* Sorts files into the order a torrent of (meta, pad) lists them: plain v1 by the bytes of their
 * whole paths (mktorrent's order), v2, hybrid and padded v1 by BEP 52's file tree (segment by
 * segment, libtorrent's order); then checks that every path segment is a valid name
 * (torrent_check_name) in UTF-8 and that no path is also a directory of another. Returns 0 or
 * EINVAL with err naming the file. */
int torrent_files_order(struct source_part *files, size_t n, enum torrent_meta meta, bool pad,
                        err_t *err);

/* Hashes files (ordered by torrent_files_order; empty ones included, as libtorrent does) and
 * encodes the multi-file torrent named name into out; ih1/ih2 (either may be NULL) receive the
 * info-hashes. Returns 0 or an errno with err set; EINVAL when the files hold no byte. */
int torrent_create_files(const char *name, const struct source_part *files, size_t n,
                         const struct torrent_opts *opts, struct buf *out, uint8_t ih1[20],
                         uint8_t ih2[32], err_t *err);

/* The byte size of the torrent torrent_create_files would write (0 on invalid options). Exact,
 * unless two files of more than one piece have the same bytes and so share one piece layer. */
uint64_t torrent_size_files(const char *name, const struct source_part *files, size_t n,
                            const struct torrent_opts *opts);

/* Writes into out the torrent torrent_create_files would write for files, with every hash
 * zeroed: its length is torrent_size_files's, and its bytes fix everything in the torrent but
 * what the files hold (a cache key, with the files' versions). Returns 0 or an errno with err
 * set (out unchanged then). */
int torrent_layout_files(const char *name, const struct source_part *files, size_t n,
                         const struct torrent_opts *opts, struct buf *out, err_t *err);

/* The web seed (BEP 19) of a multi-file torrent: BASE ending in '/', since clients append the
 * torrent's name and each file's path. The caller frees it; NULL when out of memory. */
char *torrent_webseed_dir(const char *base);

/* What every component agrees on to make an object's torrent (docs/DESIGN.md §3): the options that
 * decide its bytes, before they are applied to one object. */
struct torrent_recipe {
    enum torrent_meta meta;
    uint64_t piece_length; /* 0: the automatic rule */
    const char *const *trackers;
    size_t ntrackers;
    const char *webseed_base; /* NULL: no web seed; else see torrent_webseed_for */
    bool private_;
    const char *source, *comment; /* NULL: none */
    bool no_date;
};

/* Fills opts for the object at key (webseed URL made here: the caller frees *webseed, which
 * opts points at), with created_by set to this version. Returns 0 or ENOMEM. */
int torrent_recipe_opts(const struct torrent_recipe *r, const char *key, int64_t mtime,
                        struct torrent_opts *opts, char **webseed);

/* Fills opts for a multi-file torrent named name of files whose newest mtime is mtime, as
 * torrent_recipe_opts does for an object, with the web seed a directory URL clients complete
 * with NAME/PATH (BEP 19): BASE plus prefix_key's parent for the objects under an S3 prefix
 * (prefix_key: the prefix without its trailing '/', "rec/s1"), BASE/ for local files (NULL).
 * Returns 0 or ENOMEM; the caller frees *webseed, which opts points at. */
int torrent_recipe_set_opts(const struct torrent_recipe *r, const char *name,
                            const char *prefix_key, int64_t mtime, struct torrent_opts *opts,
                            char **webseed);

/* BASE + key, each segment percent-encoded (RFC 3986 unreserved and '/' kept). The caller frees
 * the result; NULL when out of memory. */
char *torrent_webseed_url(const char *base, const char *key);

/* The web seed (BEP 19) of the object at key in the form meta needs (docs/DESIGN.md §3): for v1
 * and hybrid, single-file torrents, BASE + the key (torrent_webseed_url). libtorrent reads a
 * v2-only torrent as a directory of one file and appends "/NAME" to a URL that does not end in
 * '/', so for v2 it is BASE + the key's directory ("" or "dir/sub/"): clients append the
 * torrent's name, which must then be the key's last segment. NULL when out of memory. */
char *torrent_webseed_for(const char *base, const char *key, enum torrent_meta meta);

#endif
