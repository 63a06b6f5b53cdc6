/* hasher.h — the hashing pipeline: N worker threads pull whole pieces from a byte source and
 * write each piece's SHA-1 (v1) and merkle piece hash (v2) into its own slot, so the result
 * never depends on thread count or timing. Memory is one fixed chunk buffer per worker (none
 * for a source that feeds its bytes: source_ops.stream_feed). */
#ifndef S3TORRENT_HASHER_H
#define S3TORRENT_HASHER_H

#include <stdbool.h>
#include <stdint.h>

#include "s3torrent/buf.h"
#include "s3torrent/err.h"
#include "s3torrent/source.h"

struct hasher_opts {
    uint64_t piece_length; /* power of two >= 16 KiB */
    bool v1, v2;           /* which hashes to compute */
    /* v1: also the SHA-1 of the last piece followed by zeros up to the piece length
     * (hasher_result.v1_padded), what the file's last piece is in a multi-file torrent that
     * pads it (BEP 47); at most one piece of zeros more to hash */
    bool v1_padded;
    unsigned threads;      /* 0: the number of online cores */
    /* Called from worker threads, one at a time, at most about ten times a second, and once
     * at the end with done == total. May be NULL. */
    void (*progress)(void *arg, uint64_t done, uint64_t total);
    void *progress_arg;
};

struct hasher_result {
    uint64_t size, piece_length, npieces;
    uint8_t *v1_pieces; /* 20 * npieces bytes, or NULL without v1 */
    uint8_t *v2_layer;  /* 32 * npieces bytes of piece hashes, or NULL without v2 */
    uint8_t v2_root[32];
    /* v1 with hasher_opts.v1_padded: has_v1_padded, and v1_padded is the SHA-1 of the last
     * piece followed by zeros up to the piece length (v1_pieces ends with the unpadded one, as a
     * single-file torrent has it; the same when the size is a multiple of the piece length) */
    bool has_v1_padded;
    uint8_t v1_padded[20];
};

/* Hashes all of src. Returns 0 or a positive errno with err set; on success the caller frees
 * res with hasher_result_free. A zero-byte source is EINVAL. */
int hasher_run(struct source *src, const struct hasher_opts *opts, struct hasher_result *res,
               err_t *err);
void hasher_result_free(struct hasher_result *res);

/* Joins the results of one file hashed in runs of whole pieces (the Lambda's fan-out,
 * docs/DESIGN.md §10): parts[0, n) in file order, of one piece length and the same versions,
 * every part but a lone one of at least two pieces (a part of one piece is hashed as a file of
 * one piece, whose v2 tree is only as wide as its leaves) and every part but the last a whole
 * number of pieces. out gets their pieces end to end, the file's size and its v2 root: what
 * hasher_run gives for the whole file. Returns 0 (free out with hasher_result_free), or EINVAL
 * / ENOMEM with err set. */
int hasher_result_join(const struct hasher_result *parts, size_t n, struct hasher_result *out,
                       err_t *err);

/* Appends res in a packed form that hasher_result_unpack reads back (what the torrent cache keeps:
 * the part of a torrent only hashing can learn, v1_padded included). Returns 0 or out's error. */
int hasher_result_pack(const struct hasher_result *res, struct buf *out);

/* Reads a packed result, checking that every length agrees; one packed before v1_padded was kept
 * reads with has_v1_padded false when the last piece is short. Returns 0 (free res with
 * hasher_result_free) or EPROTO/ENOMEM with err set. */
int hasher_result_unpack(const uint8_t *p, size_t len, struct hasher_result *res, err_t *err);

/* How hasher_run grows the streams of a network source (hasher_opts.threads 0, source.parallel
 * set; here for tests): it starts n, measures the throughput every tick, and adds a stream while
 * the last one added raised it by 10% or more, up to max; the first tick after a start or an
 * added stream only lets it connect. Once a stream more does not pay, it stays frozen. The runs of
 * a process share the 16: objects hashed at once each start their n, and the ramps add streams
 * only while the process has fewer than 16 in all. */
struct hasher_ramp {
    unsigned n, max, settle;
    double best; /* the best throughput seen, bytes a second */
    bool frozen;
};
void hasher_ramp_init(struct hasher_ramp *rp, unsigned n, unsigned max);
/* One tick's throughput in; true when a stream should be added (rp->n counts it). */
bool hasher_ramp_tick(struct hasher_ramp *rp, double rate);

/* The number of online cores (at least 1). */
unsigned hasher_default_threads(void);

#endif
