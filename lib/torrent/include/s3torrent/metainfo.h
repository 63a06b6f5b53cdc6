/* metainfo.h — the read side of torrents: loads a .torrent (v1, v2 or hybrid, single- or
 * multi-file), validates it as strictly as libtorrent, and exposes what show/magnet/verify need. */
#ifndef S3TORRENT_METAINFO_H
#define S3TORRENT_METAINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3torrent/bencode.h"
#include "s3torrent/err.h"
#include "s3torrent/hasher.h"

struct metainfo_file {
    char *path; /* '/'-joined path inside the torrent (the name for single-file) */
    uint64_t length;
    bool pad;      /* a BEP 47 pad file (v1 part of a hybrid) */
    bool has_root; /* v2: pieces root present (non-empty file) */
    uint8_t root[32];
    const uint8_t *layer; /* v2: piece layer inside the raw bytes, or NULL */
    size_t layer_len;
};

struct metainfo {
    uint8_t *raw; /* owned copy of the torrent bytes */
    size_t raw_len;
    struct bencode_doc doc;
    bool v1, v2;
    uint8_t ih1[20]; /* SHA-1 of the info dict as stored (v1 and hybrid) */
    uint8_t ih2[32]; /* SHA-256 of the same bytes (v2 and hybrid) */
    char *name;
    bool multi; /* multi-file torrent */
    uint64_t piece_length, total_size, npieces;
    const uint8_t *pieces; /* v1: 20 * npieces bytes inside raw */
    struct metainfo_file *files;
    size_t nfiles;
    char **trackers; /* flattened announce-list, or announce */
    size_t *tiers;   /* tier number of each tracker, from 0 */
    size_t ntrackers;
    char **webseeds;
    size_t nwebseeds;
    char *comment, *created_by, *source; /* NULL when absent */
    bool has_date;
    int64_t creation_date;
    bool private_;
    bool has_piece_layers;
};

/* Parses and validates a torrent from memory (copied). Returns 0 or EINVAL/ENOMEM with err
 * giving the reason in one line; the caller frees *out with metainfo_free. */
int metainfo_parse(const uint8_t *buf, size_t len, struct metainfo **out, err_t *err);

/* Reads a torrent file (at most TORRENT_MAX_SIZE bytes) and parses it; errors name the path. */
int metainfo_load(const char *path, struct metainfo **out, err_t *err);

void metainfo_free(struct metainfo *m);

/* What hashing learned, as a single-file torrent carries it (v1 pieces; v2 root and piece
 * layer): enough to lay out the same info dict again with other outer fields. Returns 0 (free
 * out with hasher_result_free) or EINVAL/ENOMEM with err set. */
int metainfo_hashes(const struct metainfo *m, struct hasher_result *out, err_t *err);

#endif
