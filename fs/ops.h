/* ops.h — the FUSE operations of s3torrentfs. */
#ifndef S3TORRENTFS_OPS_H
#define S3TORRENTFS_OPS_H

#define FUSE_USE_VERSION 35
#include <fuse.h>

/* The kernel's read-ahead window the mount asks for: FUSE reads of up to this many bytes (the
 * kernel splits them at 1 MiB, libfuse's largest request). */
#define OPS_KERNEL_READAHEAD (4u << 20)

/* The operation table; fuse's private_data is the struct fs. */
extern const struct fuse_operations ops_table;

#endif
