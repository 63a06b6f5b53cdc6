/* log.h — one injected logger with syslog levels, so each program decides where lines go
 * (stderr for the command line and Lambda, syslog for a daemonized mount). */
#ifndef S3TORRENT_LOG_H
#define S3TORRENT_LOG_H

#include <syslog.h>

struct logger {
    /* Receives one formatted line without a trailing newline. */
    void (*write)(void *arg, int level, const char *line);
    void *arg;
    int max_level; /* lines above this syslog level are dropped */
};

/* Formats and sends one line to log (NULL logs nothing). */
void log_msg(const struct logger *log, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A logger writing "s3torrent: level: line" to stderr, up to max_level. The caller owns nothing. */
struct logger log_stderr(const char *prog, int max_level);

#endif
