/* guard.h — the header deadline of `s3torrent serve` (docs/DESIGN.md §14). libmicrohttpd's
 * connection timeout is an idle timeout: a client that sends one header byte every few seconds
 * keeps its connection, and a few hundred such clients hold every slot (slowloris). The guard
 * gives each request a deadline for its whole head: from the connection's start, or from the end
 * of the previous answer on a kept-alive connection, to the end of its headers. A connection
 * past it is shut down (the server's thread then sees the end of the stream and closes it). */
#ifndef S3TORRENT_SERVE_GUARD_H
#define S3TORRENT_SERVE_GUARD_H

#include <stdint.h>

#include <microhttpd.h>

/* Returns a guard whose watchdog thread cuts connections whose head took longer than
 * header_timeout_s seconds, or NULL when it cannot start. */
struct guard *guard_new(unsigned header_timeout_s);
/* Stops the watchdog; after MHD_stop_daemon (every connection has been closed). */
void guard_free(struct guard *g);

/* MHD_OPTION_NOTIFY_CONNECTION's callback, with the guard as cls. */
void guard_on_connection(void *cls, struct MHD_Connection *con, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe);
/* The request's headers are in: its clock stops. */
void guard_headers_done(struct guard *g, struct MHD_Connection *con);
/* The answer has ended: the clock of the next request on the connection starts. */
void guard_request_done(struct guard *g, struct MHD_Connection *con);

/* Connections cut so far. */
uint64_t guard_cut(struct guard *g);

#endif
