/* ops.h — the FUSE operations of s3torrentfs. */
#ifndef S3TORRENTFS_OPS_H
#define S3TORRENTFS_OPS_H

#define FUSE_USE_VERSION 35
#include <fuse.h>

/* The operation table; fuse's private_data is the struct fs. */
extern const struct fuse_operations ops_table;

#endif
