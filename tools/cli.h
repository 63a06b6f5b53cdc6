/* cli.h — helpers shared by the s3torrent subcommands: options, progress bar, output files. */
#ifndef S3TORRENT_CLI_H
#define S3TORRENT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "s3torrent/log.h"
#include "s3torrent/recipe.h"
#include "s3torrent/s3.h"
#include "s3torrent/source.h"
#include "s3torrent/torrent.h"
#include "s3torrent/deluge.h"
#include "s3torrent/qbt.h"
#include "s3torrent/seedc.h"
#include "s3torrent/trpc.h"

/* Exit codes: 0 success, 1 failure (or mismatch), 2 usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Prints "s3torrent: <message>" on stderr; returns code. */
int cli_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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

/* Writes data to path with outfile_write (a file atomically, a device, FIFO or symlink in
 * place; an existing file only with force). "-" writes stdout. Returns 0 or an errno, with a
 * message printed. */
int cli_write_output(const char *path, const void *data, size_t len, bool force);

/* S3 access shared by the subcommands that read objects: the global options, and the client
 * made from them on first use. */
struct cli_s3 {
    const char *endpoint, *region, *profile, *addressing;
    bool no_sign, debug;
    struct logger log;
    struct http_client *http;
    struct cred_chain *creds;
    struct s3_client *s3;
};

enum {
    CLI_OPT_ENDPOINT = 1000,
    CLI_OPT_REGION,
    CLI_OPT_PROFILE,
    CLI_OPT_NO_SIGN,
    CLI_OPT_DEBUG,
    CLI_OPT_ADDRESSING
};

/* getopt_long entries of the global options, to splice into a command's table. */
#define CLI_S3_OPTIONS                                                                             \
    {"endpoint-url", required_argument, NULL, CLI_OPT_ENDPOINT},                                   \
        {"region", required_argument, NULL, CLI_OPT_REGION},                                       \
        {"profile", required_argument, NULL, CLI_OPT_PROFILE},                                     \
        {"no-sign-request", no_argument, NULL, CLI_OPT_NO_SIGN},                                   \
        {"addressing-style", required_argument, NULL, CLI_OPT_ADDRESSING},                         \
    {                                                                                              \
        "debug", no_argument, NULL, CLI_OPT_DEBUG                                                  \
    }

/* The help lines for CLI_S3_OPTIONS. */
#define CLI_S3_HELP                                                                                \
    "S3 options (for s3://bucket/key arguments):\n"                                                \
    "      --endpoint-url URL     S3 endpoint (default: $AWS_ENDPOINT_URL_S3,\n"                   \
    "                             $AWS_ENDPOINT_URL, else AWS for the region)\n"                   \
    "      --region R             region (default: $AWS_REGION, $AWS_DEFAULT_REGION,\n"            \
    "                             else us-east-1)\n"                                               \
    "      --profile P            credentials profile (default: $AWS_PROFILE, else default)\n"     \
    "      --no-sign-request      anonymous requests, for public buckets\n"                        \
    "      --addressing-style S   auto (default: virtual-hosted BUCKET.HOST on AWS, path-style\n"  \
    "                             HOST/BUCKET for custom endpoints), path or virtual\n"            \
    "      --debug                log requests (never credentials or signatures) on stderr\n"

/* Writes s to f with control bytes as \\xNN, so that a key never breaks a line of output. */
void cli_print_escaped(FILE *f, const char *s);

/* Handles one global option; returns true when c was one. */
bool cli_s3_option(struct cli_s3 *g, int c, const char *arg);
/* Opens FILE or s3://bucket/key as a byte source, connecting to S3 on first use. *key gets the
 * object key (the file name for files; the caller frees it). Returns 0 or an errno, err set. */
int cli_open_source(struct cli_s3 *g, const char *arg, struct source **src, char **key, err_t *err);
/* Connects to S3 with the global options (once) and hands out the client. Returns 0 or an
 * errno with err set. */
int cli_s3_connect(struct cli_s3 *g, struct s3_client **s3, err_t *err);
/* Frees what cli_open_source made. */
void cli_s3_close(struct cli_s3 *g);

/* The torrent options shared by create and sync (docs/DESIGN.md §3), built by lib/'s one recipe
 * builder; b.r is the recipe once cli_recipe_finish has run. */
struct cli_recipe {
    struct recipe b;
};

#define CLI_RECIPE_SHORT "l:m:t:w:ps:c:d"
#define CLI_RECIPE_OPTIONS                                                                         \
    {"piece-length", required_argument, NULL, 'l'},                                                \
        {"meta-version", required_argument, NULL, 'm'}, {"tracker", required_argument, NULL, 't'}, \
        {"webseed", required_argument, NULL, 'w'}, {"private", no_argument, NULL, 'p'},            \
        {"source", required_argument, NULL, 's'}, {"comment", required_argument, NULL, 'c'},       \
    {                                                                                              \
        "no-date", no_argument, NULL, 'd'                                                          \
    }

#define CLI_RECIPE_HELP                                                                            \
    "Torrent options:\n"                                                                           \
    "  -l, --piece-length SIZE    piece length, a power of two from 16K to 256M\n"                 \
    "                             (default: smallest >= 256K giving <= 2048 pieces,\n"             \
    "                             at most 16M)\n"                                                  \
    "  -m, --meta-version V       v1 (default), v2 or hybrid (BEP 52)\n"                           \
    "  -t, --tracker URL          announce URL; repeat for more, each its own tier\n"              \
    "                             (default: $TRACKERS, comma-separated, else a\n"                  \
    "                             built-in list of public UDP trackers)\n"                         \
    "  -w, --webseed BASE         web seed: BASE + the percent-encoded key (the file\n"            \
    "                             name for local files) (BEP 19) (default: $WEBSEED_BASE)\n"       \
    "  -p, --private              set the private flag\n"                                          \
    "  -s, --source S             set the info 'source' field\n"                                   \
    "  -c, --comment C            set the comment\n"                                               \
    "  -d, --no-date              omit the creation date (default: the object's\n"                 \
    "                             Last-Modified, the file's mtime)\n"

void cli_recipe_init(struct cli_recipe *r);
/* Handles one torrent option: 1 when c was one, 0 when not, -1 after printing a usage error. */
int cli_recipe_option(struct cli_recipe *r, int c, const char *arg);
/* Applies the environment (TRACKERS, WEBSEED_BASE) and the defaults once options are parsed.
 * Returns 0, or CLI_USAGE after printing why a variable is refused. */
int cli_recipe_finish(struct cli_recipe *r);
void cli_recipe_free(struct cli_recipe *r);

/* Seeding through a daemon (cmd_seed.c; sync --seed uses it too): --client and its address,
 * credentials from the environment only. */
struct cli_seed_opts {
    enum seedc_kind kind;        /* --client; default SEEDC_TRANSMISSION */
    const char *url;             /* --rpc; NULL: the client's variable, else its default */
    const char *category, *tags; /* qBittorrent's --category and --tags */
};

#define CLI_SEED_HELP                                                                              \
    "  -C, --client NAME          the daemon: transmission (default), qbittorrent or deluge\n"     \
    "  -r, --rpc URL              its address (default: the variable below, else the\n"            \
    "                             client's default)\n"                                             \
    "                               transmission: $TRANSMISSION_RPC_URL, else\n"                   \
    "                               " TRPC_DEFAULT_URL ";\n"                                       \
    "                               user and password from $TRANSMISSION_RPC_USERNAME and\n"       \
    "                               $TRANSMISSION_RPC_PASSWORD\n"                                  \
    "                               qbittorrent: the Web UI, $QBITTORRENT_URL, else\n"             \
    "                               " QBT_DEFAULT_URL "; user and password from\n"                 \
    "                               $QBITTORRENT_USERNAME and $QBITTORRENT_PASSWORD (none:\n"      \
    "                               no login)\n"                                                   \
    "                               deluge: deluge-web's JSON-RPC, $DELUGE_WEB_URL, else\n"        \
    "                               " DELUGE_DEFAULT_URL "; password from\n"                       \
    "                               $DELUGE_WEB_PASSWORD (default: deluge)\n"                      \
    "      --category C           qbittorrent: put the torrents in category C\n"                   \
    "      --tags T1,T2           qbittorrent: tag the torrents\n"

enum { CLI_OPT_CATEGORY = 400, CLI_OPT_TAGS };
#define CLI_SEED_OPTIONS                                                                           \
    {"client", required_argument, NULL, 'C'}, {"rpc", required_argument, NULL, 'r'},               \
        {"category", required_argument, NULL, CLI_OPT_CATEGORY},                                   \
    {                                                                                              \
        "tags", required_argument, NULL, CLI_OPT_TAGS                                              \
    }

/* Takes one seeding option (c, from getopt_long): 0 when taken, -1 when c is not one, CLI_USAGE
 * after saying why its value is refused. */
int cli_seed_option(struct cli_seed_opts *o, int c, const char *arg);
/* The checks between seeding options once parsed: 0, or CLI_USAGE after saying why. */
int cli_seed_check(const struct cli_seed_opts *o);

/* Connects the daemon o names, with the credentials of its environment variables; http is
 * borrowed. Returns 0 or an errno with err set (EINVAL: a bad URL or credentials, nothing
 * tried); the caller frees *out with seedc_free. */
int cli_seed_connect(const struct cli_seed_opts *o, struct http_client *http, struct seedc **out,
                     err_t *err);

/* A mount's prefix as keys start with it: no leading '/', one trailing '/' ("" stays ""). The
 * caller frees the result; NULL when out of memory. */
char *cli_mount_prefix(const char *p);

/* The subcommands. */
int cmd_create(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_magnet(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_seed(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* The torrent cache shared with s3torrentfs at path (NULL: the default), or NULL after a
 * warning on stderr: it only saves work. */
struct cache;
struct cache *cli_open_cache(const char *path);

#endif
