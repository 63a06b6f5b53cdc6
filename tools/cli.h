/* cli.h — helpers shared by the s3torrent subcommands: sizes, progress bar, output files. */
#ifndef S3TORRENT_CLI_H
#define S3TORRENT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Exit codes: 0 success, 1 failure (or mismatch), 2 usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Prints "s3torrent: <message>" on stderr; returns code. */
int cli_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses "262144", "256K", "256KiB", "1M", "16MiB", "1G". Returns 0 or EINVAL. */
int cli_parse_size(const char *s, uint64_t *out);
/* Parses a positive integer no larger than max. Returns 0 or EINVAL. */
int cli_parse_uint(const char *s, unsigned max, unsigned *out);
/* Formats a byte count the way transmission-show does ("1.05 MB", "256.0 KiB"). */
const char *cli_human(uint64_t n, bool binary, char *out, size_t len);

/* A progress bar on stderr, drawn only when stderr is a terminal. */
struct cli_progress {
    bool enabled;
    const char *label;
    struct timespec start;
};
void cli_progress_init(struct cli_progress *p, const char *label);
/* Hasher callback: arg is a struct cli_progress. */
void cli_progress_cb(void *arg, uint64_t done, uint64_t total);
void cli_progress_end(struct cli_progress *p);

/* Writes data to path atomically (temporary file, then rename or no-clobber link). "-" writes
 * stdout. Returns 0 or an errno, with a message printed. */
int cli_write_output(const char *path, const void *data, size_t len, bool force);

/* The subcommands. */
int cmd_create(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_magnet(int argc, char **argv);
int cmd_verify(int argc, char **argv);

#endif
