/* hasher.c — parallel piece hashing. Jobs are runs of whole pieces handed out by an atomic
 * counter; a worker streams its run through one chunk buffer, feeding SHA-1 per piece and
 * SHA-256 per 16 KiB leaf, then folds the leaves into the piece's merkle hash. */
#include "s3torrent/hasher.h"
#include "s3torrent/merkle.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK       (1u << 20) /* bytes read per call: a multiple of MERKLE_BLOCK */
#define MAX_THREADS 256
#define GUIDED_MAX  16 /* a network source's largest part, in spans */
/* A network source's streams: each holds about 1 MiB (libcurl's 256 KiB receive buffer, the
 * 512 KiB spill behind a paused transfer, the response head), so at most 16 MiB of them. */
#define STREAMS_MAX  16
#define RAMP_TICK_MS 150  /* how often the ramp measures throughput */
#define RAMP_GAIN    1.10 /* a stream more stays only if throughput grew by this much */

static const uint8_t zero_chunk[CHUNK]; /* what pads hash as */

/* The streams of every run in this process that may ramp, all together: a process hashing many
 * objects at once (sync -j, the Lambda, the mount's prefetchers) grows to STREAMS_MAX streams in
 * all, not to that many per object; each run's first streams always start. */
static atomic_uint streams_now;

/* One stream more from the process's budget; false when it is spent. */
static bool ramp_reserve(void)
{
    unsigned cur = atomic_load(&streams_now);
    do {
        if (cur >= STREAMS_MAX)
            return false;
    } while (!atomic_compare_exchange_weak(&streams_now, &cur, cur + 1));
    return true;
}

struct run {
    struct source *src;
    const struct hasher_opts *opts;
    struct hasher_result *res;
    uint64_t pieces_per_job; /* a job's pieces (the least, for a network source) */
    _Atomic unsigned nthreads; /* workers started (grows for a network source) */
    atomic_uint_fast64_t next_piece;
    pthread_mutex_t ctl;  /* guards running, with ended */
    pthread_cond_t ended; /* a worker ended */
    unsigned running;
    atomic_uint_fast64_t done_bytes;
    atomic_int failed;
    pthread_mutex_t lock; /* guards err and progress calls */
    err_t err;
    struct timespec last_progress;
};

struct worker {
    struct run *run;
    pthread_t tid;
};

static void fail(struct run *r, const err_t *e)
{
    pthread_mutex_lock(&r->lock);
    if (!atomic_load(&r->failed)) {
        r->err = *e;
        atomic_store(&r->failed, 1);
    }
    pthread_mutex_unlock(&r->lock);
}

static void report(struct run *r, uint64_t add)
{
    uint64_t done = atomic_fetch_add(&r->done_bytes, add) + add;
    if (r->opts->progress == NULL || pthread_mutex_trylock(&r->lock) != 0)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double dt = (double)(now.tv_sec - r->last_progress.tv_sec) +
                (double)(now.tv_nsec - r->last_progress.tv_nsec) / 1e9;
    if (dt >= 0.1) {
        r->last_progress = now;
        r->opts->progress(r->opts->progress_arg, done, r->res->size);
    }
    pthread_mutex_unlock(&r->lock);
}

/* The last piece's SHA-1 as if zeros filled it to the piece length, from sha1 holding its bytes
 * (pad, a context of its own, is left with the copy). */
static void padded_last(struct hasher_result *res, const EVP_MD_CTX *sha1, EVP_MD_CTX *pad)
{
    uint64_t plen = res->piece_length, tail = res->size % plen;
    EVP_MD_CTX_copy_ex(pad, sha1);
    for (uint64_t z = tail ? plen - tail : 0; z > 0;) {
        size_t zn = z < CHUNK ? (size_t)z : CHUNK;
        EVP_DigestUpdate(pad, zero_chunk, zn);
        z -= zn;
    }
    EVP_DigestFinal_ex(pad, res->v1_padded, NULL);
    res->has_v1_padded = true;
}

/* One job's hashing state: bytes go in by consume, in pieces of any size, in order. */
struct feed {
    struct run *r;
    uint64_t pos, end, piece, piece_end;
    EVP_MD_CTX *sha1, *pad;
    const EVP_MD *md1;
    struct merkle *m;
    uint8_t *leaves;
    size_t nleaves;
    uint8_t carry[MERKLE_BLOCK]; /* v2: the start of a leaf that arrived split */
    size_t ncarry;
};

/* v2: the 16 KiB leaves of p[0, n), bytes of the current piece; a partial leaf waits in carry
 * (leaves start at multiples of MERKLE_BLOCK from the piece's start). */
static void feed_leaves(struct feed *f, const uint8_t *p, size_t n)
{
    if (f->ncarry > 0) {
        size_t k = MERKLE_BLOCK - f->ncarry < n ? MERKLE_BLOCK - f->ncarry : n;
        memcpy(f->carry + f->ncarry, p, k);
        f->ncarry += k;
        p += k;
        n -= k;
        if (f->ncarry < MERKLE_BLOCK)
            return;
        merkle_leaf(f->m, f->carry, MERKLE_BLOCK, f->leaves + 32 * f->nleaves++);
        f->ncarry = 0;
    }
    for (; n >= MERKLE_BLOCK; p += MERKLE_BLOCK, n -= MERKLE_BLOCK)
        merkle_leaf(f->m, p, MERKLE_BLOCK, f->leaves + 32 * f->nleaves++);
    memcpy(f->carry, p, n);
    f->ncarry = n;
}

/* Hashes the job's next n bytes (a buf_sink_fn). */
static void consume(void *arg, const uint8_t *p, size_t n)
{
    struct feed *f = arg;
    const struct hasher_opts *o = f->r->opts;
    struct hasher_result *res = f->r->res;
    const uint64_t plen = res->piece_length;
    static const uint8_t zero[32];
    while (n > 0) {
        size_t take = f->piece_end - f->pos < n ? (size_t)(f->piece_end - f->pos) : n;
        if (o->v1)
            EVP_DigestUpdate(f->sha1, p, take);
        if (o->v2)
            feed_leaves(f, p, take);
        f->pos += take;
        p += take;
        n -= take;
        if (f->pos < f->piece_end)
            continue;
        if (o->v1 && o->v1_padded && f->piece_end == res->size)
            padded_last(res, f->sha1, f->pad);
        if (o->v1) {
            EVP_DigestFinal_ex(f->sha1, res->v1_pieces + 20 * f->piece, NULL);
            EVP_DigestInit_ex(f->sha1, f->md1, NULL);
        }
        if (o->v2) {
            if (f->ncarry > 0) /* the file's short last leaf */
                merkle_leaf(f->m, f->carry, f->ncarry, f->leaves + 32 * f->nleaves++);
            f->ncarry = 0;
            /* a file of one piece has a tree only as wide as its own leaves */
            size_t width =
                res->npieces == 1 ? (size_t)merkle_pow2(f->nleaves) : (size_t)(plen / MERKLE_BLOCK);
            merkle_root(f->m, f->leaves, f->nleaves, width, zero, f->leaves,
                        res->v2_layer + 32 * f->piece);
            f->nleaves = 0;
        }
        f->piece++;
        f->piece_end = f->piece_end + plen < f->end ? f->piece_end + plen : f->end;
    }
}

/* Hashes pieces [first, last) into their slots: a source that can feed hands its bytes to the
 * hash where they arrive; the others are read into scratch first. */
static int hash_job(struct run *r, uint64_t first, uint64_t last, uint8_t *scratch, struct feed *f,
                    err_t *err)
{
    struct source *src = r->src;
    const uint64_t plen = r->res->piece_length;
    const uint64_t off = first * plen;
    const uint64_t end = last * plen < r->res->size ? last * plen : r->res->size;
    void *stream = NULL;
    int rc = src->ops->stream_open(src, off, end - off, &stream, err);
    if (rc)
        return rc;

    f->pos = off;
    f->end = end;
    f->piece = first;
    f->piece_end = off + plen < end ? off + plen : end;
    f->nleaves = f->ncarry = 0;
    if (r->opts->v1)
        EVP_DigestInit_ex(f->sha1, f->md1, NULL);
    for (uint64_t pos = off; pos < end && !atomic_load(&r->failed);) {
        size_t n = end - pos < CHUNK ? (size_t)(end - pos) : CHUNK;
        if (src->ops->stream_feed) {
            if ((rc = src->ops->stream_feed(src, stream, n, consume, f, err)))
                break;
        } else {
            const uint8_t *chunk;
            if ((rc = src->ops->stream_next(src, stream, n, scratch, &chunk, err)))
                break;
            consume(f, chunk, n);
        }
        pos += n;
        report(r, n);
    }
    src->ops->stream_close(src, stream);
    return rc;
}

/* The next job's pieces, [*first, *last); false when none are left. A source read over the
 * network (parallel set) gets parts that shrink as the object runs out: large at first (fewer
 * requests), then down to its span, so the last parts finish together and no long part is
 * left running alone at the end. Local files get runs of span bytes. */
static bool next_job(struct run *r, uint64_t *first, uint64_t *last)
{
    uint64_t cur = atomic_load(&r->next_piece), n = r->res->npieces, take;
    do {
        if (cur >= n || atomic_load(&r->failed))
            return false;
        take = r->pieces_per_job;
        if (r->src->parallel) {
            take = (n - cur) / (2 * atomic_load(&r->nthreads));
            if (take < r->pieces_per_job)
                take = r->pieces_per_job;
            if (take > GUIDED_MAX * r->pieces_per_job)
                take = GUIDED_MAX * r->pieces_per_job;
        }
        if (take > n - cur)
            take = n - cur;
    } while (!atomic_compare_exchange_weak(&r->next_piece, &cur, cur + take));
    *first = cur;
    *last = cur + take;
    return true;
}

static void *worker_main(void *arg)
{
    struct run *r = ((struct worker *)arg)->run;
    err_t err = {0};
    /* a source that feeds needs no read buffer */
    uint8_t *chunk = r->src->ops->stream_feed ? NULL : malloc(CHUNK);
    struct feed *f = calloc(1, sizeof(*f));
    uint8_t *leaves = malloc(r->opts->v2 ? (r->res->piece_length / MERKLE_BLOCK) * 32 : 32);
    EVP_MD_CTX *sha1 = EVP_MD_CTX_new(), *pad = EVP_MD_CTX_new();
    EVP_MD *md1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    struct merkle *m = merkle_new();

    if ((chunk == NULL && !r->src->ops->stream_feed) || f == NULL || leaves == NULL ||
        sha1 == NULL || pad == NULL || md1 == NULL || m == NULL) {
        err_set(&err, ENOMEM, "%s: out of memory for hashing", r->src->display);
        fail(r, &err);
        goto out;
    }
    *f = (struct feed){.r = r, .sha1 = sha1, .pad = pad, .md1 = md1, .m = m, .leaves = leaves};
    uint64_t first, last;
    while (next_job(r, &first, &last))
        if (hash_job(r, first, last, chunk, f, &err)) {
            fail(r, &err);
            break;
        }
out:
    merkle_free(m);
    EVP_MD_free(md1);
    EVP_MD_CTX_free(pad);
    EVP_MD_CTX_free(sha1);
    free(leaves);
    free(f);
    free(chunk);
    pthread_mutex_lock(&r->ctl);
    r->running--;
    pthread_cond_signal(&r->ended);
    pthread_mutex_unlock(&r->ctl);
    return NULL;
}

void hasher_ramp_init(struct hasher_ramp *rp, unsigned n, unsigned max)
{
    /* the first tick sees the streams connect: only the second one counts */
    *rp = (struct hasher_ramp){.n = n, .max = max, .settle = 1, .frozen = n >= max};
}

bool hasher_ramp_tick(struct hasher_ramp *rp, double rate)
{
    if (rp->frozen)
        return false;
    if (rp->settle > 0) { /* the stream added last tick is still connecting */
        rp->settle--;
        return false;
    }
    if (rp->best > 0 && rate < rp->best * RAMP_GAIN) {
        rp->frozen = true; /* the last stream added gave too little: the transport is full */
        return false;
    }
    rp->best = rate > rp->best ? rate : rp->best;
    rp->n++;
    rp->settle = 1;
    rp->frozen = rp->n >= rp->max;
    return true;
}

unsigned hasher_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

static int v2_root_of_layer(struct hasher_result *res);

int hasher_run(struct source *src, const struct hasher_opts *opts, struct hasher_result *res,
               err_t *err)
{
    uint64_t plen = opts->piece_length;
    unsigned nthreads = opts->threads ? opts->threads : hasher_default_threads();
    if (opts->threads == 0 && src->parallel > nthreads)
        nthreads = src->parallel; /* network sources: more streams than cores */
    struct worker *workers = NULL;
    struct run r;
    int rc = 0;

    memset(res, 0, sizeof(*res));
    if (src->size == 0)
        return err_set(err, EINVAL, "%s: zero-byte object, nothing to share", src->display);
    if (plen == 0 || (opts->v2 && (plen < MERKLE_BLOCK || (plen & (plen - 1)) != 0)))
        return err_set(err, EINVAL, "piece length %llu is not a power of two >= 16 KiB",
                       (unsigned long long)plen);
    if (!opts->v1 && !opts->v2)
        return err_set(err, EINVAL, "no hash requested");
    if (nthreads > MAX_THREADS)
        nthreads = MAX_THREADS;

    res->size = src->size;
    res->piece_length = plen;
    res->npieces = (src->size + plen - 1) / plen;
    if (opts->v1 && (res->v1_pieces = calloc(res->npieces, 20)) == NULL)
        goto nomem;
    if (opts->v2 && (res->v2_layer = calloc(res->npieces, 32)) == NULL)
        goto nomem;

    memset(&r, 0, sizeof(r));
    r.src = src;
    r.opts = opts;
    r.res = res;
    /* a job covers whole pieces and at least the span the source wants per stream */
    r.pieces_per_job = src->span > plen ? (src->span + plen - 1) / plen : 1;
    uint64_t njobs = (res->npieces + r.pieces_per_job - 1) / r.pieces_per_job;
    if (nthreads > njobs)
        nthreads = (unsigned)njobs;
    r.nthreads = nthreads;
    pthread_mutex_init(&r.lock, NULL);
    clock_gettime(CLOCK_MONOTONIC, &r.last_progress);

    /* a network source with the thread count left to us starts with its streams and adds one
     * while each added one still raises the throughput (the ramp), up to STREAMS_MAX */
    unsigned cap = nthreads;
    if (opts->threads == 0 && src->parallel && njobs > nthreads)
        cap = njobs < STREAMS_MAX ? (unsigned)njobs : STREAMS_MAX;
    if (cap < nthreads)
        cap = nthreads;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&r.ctl, NULL);
    pthread_cond_init(&r.ended, &ca);
    pthread_condattr_destroy(&ca);
    workers = calloc(cap, sizeof(*workers));
    unsigned started = 0;
    pthread_mutex_lock(&r.ctl);
    for (unsigned i = 0; workers != NULL && i < nthreads; i++) {
        workers[i].run = &r;
        if (pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]) != 0)
            break;
        started = i + 1;
        r.running++;
    }
    atomic_store(&r.nthreads, started);
    if (cap > nthreads)
        atomic_fetch_add(&streams_now, started);
    struct hasher_ramp ramp;
    hasher_ramp_init(&ramp, started, cap);
    uint64_t last_done = 0;
    struct timespec last_tick;
    clock_gettime(CLOCK_MONOTONIC, &last_tick);
    while (r.running > 0) {
        if (ramp.frozen) {
            pthread_cond_wait(&r.ended, &r.ctl);
            continue;
        }
        struct timespec until = last_tick, now;
        until.tv_nsec += RAMP_TICK_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&r.ended, &r.ctl, &until);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec < until.tv_sec ||
            (now.tv_sec == until.tv_sec && now.tv_nsec < until.tv_nsec))
            continue; /* a worker ended before the tick */
        double dt = (double)(now.tv_sec - last_tick.tv_sec) +
                    (double)(now.tv_nsec - last_tick.tv_nsec) / 1e9;
        uint64_t done = atomic_load(&r.done_bytes);
        last_tick = now;
        bool more = hasher_ramp_tick(&ramp, (double)(done - last_done) / dt);
        last_done = done;
        if (!more || atomic_load(&r.next_piece) >= res->npieces || atomic_load(&r.failed))
            continue;
        if (!ramp_reserve()) {
            ramp.frozen = true; /* other runs of this process took the streams */
            continue;
        }
        workers[started].run = &r;
        if (pthread_create(&workers[started].tid, NULL, worker_main, &workers[started]) != 0) {
            atomic_fetch_sub(&streams_now, 1);
            ramp.frozen = true;
            continue;
        }
        r.running++;
        atomic_store(&r.nthreads, ++started);
    }
    pthread_mutex_unlock(&r.ctl);
    for (unsigned i = 0; i < started; i++)
        pthread_join(workers[i].tid, NULL);
    if (cap > nthreads)
        atomic_fetch_sub(&streams_now, started);
    pthread_cond_destroy(&r.ended);
    pthread_mutex_destroy(&r.ctl);
    pthread_mutex_destroy(&r.lock);
    if (started == 0 && !atomic_load(&r.failed)) {
        err_set(&r.err, workers ? EAGAIN : ENOMEM, "%s: cannot start a hashing thread",
                src->display);
        atomic_store(&r.failed, 1);
    }
    free(workers);

    if (atomic_load(&r.failed)) {
        rc = r.err.code ? r.err.code : EIO;
        if (err)
            *err = r.err;
        goto fail;
    }
    if ((rc = src->ops->finish(src, err)))
        goto fail;
    if (opts->v2) {
        if (res->npieces == 1) {
            memcpy(res->v2_root, res->v2_layer, 32);
        } else if (v2_root_of_layer(res) != 0) {
            goto nomem;
        }
    }
    if (opts->progress)
        opts->progress(opts->progress_arg, res->size, res->size);
    return 0;
nomem:
    rc = err_set(err, ENOMEM, "%s: out of memory for hashing", src->display);
fail:
    hasher_result_free(res);
    return rc;
}

/* The v2 root of res from its piece layer (npieces > 1). Returns 0 or ENOMEM. */
static int v2_root_of_layer(struct hasher_result *res)
{
    struct merkle *m = merkle_new();
    uint8_t pad[32], *scratch = malloc(res->npieces * 32);
    int rc = m && scratch ? 0 : ENOMEM;
    if (rc == 0) {
        merkle_pad(m, merkle_log2(res->piece_length / MERKLE_BLOCK), pad);
        merkle_root(m, res->v2_layer, res->npieces, merkle_pow2(res->npieces), pad, scratch,
                    res->v2_root);
    }
    merkle_free(m);
    free(scratch);
    return rc;
}

int hasher_result_join(const struct hasher_result *parts, size_t n, struct hasher_result *out,
                       err_t *err)
{
    memset(out, 0, sizeof(*out));
    if (n == 0)
        return err_set(err, EINVAL, "no runs to join");
    const uint64_t plen = parts[0].piece_length;
    const bool v1 = parts[0].v1_pieces != NULL, v2 = parts[0].v2_layer != NULL;
    for (size_t i = 0; i < n; i++) {
        const struct hasher_result *p = &parts[i];
        if (p->piece_length != plen || (p->v1_pieces != NULL) != v1 ||
            (p->v2_layer != NULL) != v2 || p->npieces == 0 ||
            p->npieces != p->size / plen + (p->size % plen != 0) || (n > 1 && p->npieces < 2) ||
            (i + 1 < n && p->size != p->npieces * plen))
            return err_set(err, EINVAL, "run %zu of %zu does not fit the others", i, n);
        out->size += p->size;
        out->npieces += p->npieces;
    }
    out->piece_length = plen;
    if ((v1 && (out->v1_pieces = malloc(out->npieces * 20)) == NULL) ||
        (v2 && (out->v2_layer = malloc(out->npieces * 32)) == NULL))
        goto nomem;
    for (size_t i = 0, at = 0; i < n; at += parts[i].npieces, i++) {
        if (v1)
            memcpy(out->v1_pieces + 20 * at, parts[i].v1_pieces, 20 * parts[i].npieces);
        if (v2)
            memcpy(out->v2_layer + 32 * at, parts[i].v2_layer, 32 * parts[i].npieces);
    }
    if (v2 && out->npieces == 1)
        memcpy(out->v2_root, out->v2_layer, 32);
    else if (v2 && v2_root_of_layer(out) != 0)
        goto nomem;
    return 0;
nomem:
    hasher_result_free(out);
    return err_set(err, ENOMEM, "out of memory");
}

void hasher_result_free(struct hasher_result *res)
{
    free(res->v1_pieces);
    free(res->v2_layer);
    res->v1_pieces = res->v2_layer = NULL;
}

/* The packed form: "s3th1" then size, piece length and piece count as 8-byte big-endian
 * numbers, a flags byte (1: v1, 2: v2, 4: the padded last v1 piece follows), then the v1
 * pieces, the v2 layer and the v2 root, then the padded last piece. Flag 4 is there only for v1
 * with a short last piece (else the last piece is the padded one), so an entry packed before it
 * existed still reads: it only lacks what composing a padded multi-file torrent needs. */
#define PACK_MAGIC  "s3th1"
#define PACK_HEAD   (5 + 3 * 8 + 1)
#define PACK_PADDED 4

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

int hasher_result_pack(const struct hasher_result *res, struct buf *out)
{
    uint8_t head[PACK_HEAD];
    memcpy(head, PACK_MAGIC, 5);
    put_be64(head + 5, res->size);
    put_be64(head + 13, res->piece_length);
    put_be64(head + 21, res->npieces);
    bool padded = res->v1_pieces && res->has_v1_padded && res->size % res->piece_length != 0;
    head[29] =
        (uint8_t)((res->v1_pieces ? 1 : 0) | (res->v2_layer ? 2 : 0) | (padded ? PACK_PADDED : 0));
    buf_put(out, head, sizeof(head));
    if (res->v1_pieces)
        buf_put(out, res->v1_pieces, 20 * res->npieces);
    if (res->v2_layer) {
        buf_put(out, res->v2_layer, 32 * res->npieces);
        buf_put(out, res->v2_root, 32);
    }
    if (padded)
        buf_put(out, res->v1_padded, 20);
    return out->err;
}

int hasher_result_unpack(const uint8_t *p, size_t len, struct hasher_result *res, err_t *err)
{
    memset(res, 0, sizeof(*res));
    if (len < PACK_HEAD || memcmp(p, PACK_MAGIC, 5) != 0)
        return err_set(err, EPROTO, "packed hashes: bad header");
    res->size = get_be64(p + 5);
    res->piece_length = get_be64(p + 13);
    res->npieces = get_be64(p + 21);
    unsigned flags = p[29];
    uint64_t plen = res->piece_length;
    bool short_tail = plen != 0 && res->size % plen != 0;
    if (res->size == 0 || plen < 16384 || (plen & (plen - 1)) != 0 || (flags & 3) == 0 ||
        flags > 7 || ((flags & PACK_PADDED) && (!(flags & 1) || !short_tail)) ||
        res->npieces != res->size / plen + (res->size % plen != 0) || res->npieces > (1u << 26))
        return err_set(err, EPROTO, "packed hashes: inconsistent numbers");
    size_t want = PACK_HEAD + ((flags & 1) ? 20 * res->npieces : 0) +
                  ((flags & 2) ? 32 * res->npieces + 32 : 0) + ((flags & PACK_PADDED) ? 20 : 0);
    if (len != want)
        return err_set(err, EPROTO, "packed hashes: %zu bytes, expected %zu", len, want);
    p += PACK_HEAD;
    if ((flags & 1) && (res->v1_pieces = malloc(20 * res->npieces)) == NULL)
        return err_set(err, ENOMEM, "out of memory");
    if ((flags & 2) && (res->v2_layer = malloc(32 * res->npieces)) == NULL) {
        hasher_result_free(res);
        return err_set(err, ENOMEM, "out of memory");
    }
    if (flags & 1) {
        memcpy(res->v1_pieces, p, 20 * res->npieces);
        p += 20 * res->npieces;
        /* a whole last piece is its own padded form */
        res->has_v1_padded = !short_tail || (flags & PACK_PADDED);
        memcpy(res->v1_padded, res->v1_pieces + 20 * (res->npieces - 1), 20);
    }
    if (flags & 2) {
        memcpy(res->v2_layer, p, 32 * res->npieces);
        memcpy(res->v2_root, p + 32 * res->npieces, 32);
        p += 32 * res->npieces + 32;
    }
    if (flags & PACK_PADDED)
        memcpy(res->v1_padded, p, 20);
    return 0;
}
