/* netaddr.h — the ADDR:PORT a server listens on (`s3torrent serve --listen`,
 * `s3torrent-lambda --listen`), parsed one way for both. */
#ifndef S3TORRENT_NETADDR_H
#define S3TORRENT_NETADDR_H

#include <sys/socket.h>

#include "s3torrent/err.h"

/* Parses ADDR:PORT: a numeric IPv4 address, or an IPv6 one in brackets ([::1]:8080), and a port
 * from 0 (any free one) to 65535. Returns 0 with *ss and *len set, or EINVAL with err set (one
 * line naming what is wrong, e.g. a missing port). */
int netaddr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len, err_t *err);

#endif
