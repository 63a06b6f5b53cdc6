/* ops.h — the FUSE operations of s3torrentfs. */
#ifndef S3TORRENTFS_OPS_H
#define S3TORRENTFS_OPS_H

#define FUSE_USE_VERSION 35
#include <fuse.h>

/* The kernel's read-ahead window the mount asks for, and so its largest FUSE read (libfuse's
 * largest request is 1 MiB too). A wider window keeps more reads in flight (512 MiB read by dd:
 * 1.5 s with 4 MiB, 2.7 s with 1 MiB), but the kernel then reads megabytes past the pieces of a
 * BitTorrent-shaped reader (31 pieces of 1 MiB, each read in 16 KiB reads in a shuffled order:
 * 310 MiB fetched with 4 MiB, 77 MiB with 1 MiB, 57 MiB with 128 KiB) (docs/DESIGN.md §16). */
#define OPS_KERNEL_READAHEAD (1u << 20)

/* The operation table; fuse's private_data is the struct fs. */
extern const struct fuse_operations ops_table;

struct fs;
/* Frees the handles of files still open once the FUSE loop has ended (their releases never
 * came); before the block cache is freed, as handles hold its objects. */
void ops_close_all(struct fs *fs);

#endif
