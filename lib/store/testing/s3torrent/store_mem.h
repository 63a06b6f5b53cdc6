/* store_mem.h — an in-memory object store with a fault schedule, for tests (docs/DESIGN.md §13):
 * buckets of objects held in memory, ETags that are MD5s as S3's are, per-operation call
 * counters, and faults injected by operation and key: an errno, a delay, a short read, or the
 * object replaced under a reader. */
#ifndef S3TORRENT_STORE_MEM_H
#define S3TORRENT_STORE_MEM_H

#include "s3torrent/store.h"

enum store_op {
    STORE_OP_HEAD = 1,
    STORE_OP_LIST = 2,
    STORE_OP_READ = 4, /* read_at, and every stream read of a source */
    STORE_OP_GET = 8,  /* get_all */
    STORE_OP_PUT = 16,
};

struct store_mem_fault {
    unsigned ops;        /* enum store_op bits it applies to */
    const char *key;     /* NULL: every key; else keys that contain it */
    unsigned skip;       /* matching calls that pass before it fires */
    unsigned times;      /* calls it fires on; 0: every one after skip */
    int error;           /* the errno returned (0: none, e.g. for a delay alone) */
    long delay_ms;       /* slept before the call goes on */
    bool short_read;     /* READ: half the bytes arrive, then the connection drops (EIO) */
    const void *replace; /* the object's bytes become these (a new version) before the call */
    size_t replace_len;
};

/* A new empty store; free with store_free. NULL when out of memory. */
struct store *store_mem_new(void);

/* Puts an object directly (no fault, not counted): its ETag is the MD5 of data. Returns 0 or
 * ENOMEM. */
int store_mem_add(struct store *st, const char *bucket, const char *key, const void *data,
                  size_t len, int64_t mtime);

/* Removes an object; 0 or ENOENT. */
int store_mem_remove(struct store *st, const char *bucket, const char *key);

/* Adds a fault to the schedule (copied, replace bytes included). Returns 0 or ENOMEM. */
int store_mem_fault(struct store *st, const struct store_mem_fault *f);

/* Calls of the operations in ops (bits) so far whose key contains key_part (NULL: any). */
unsigned store_mem_calls(struct store *st, unsigned ops, const char *key_part);

/* The bytes and user metadata of an object as stored (borrowed until it changes), or NULL. */
const uint8_t *store_mem_data(struct store *st, const char *bucket, const char *key, size_t *len,
                              struct store_meta *meta);

#endif
