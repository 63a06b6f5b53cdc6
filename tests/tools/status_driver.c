/* status_driver.c — a command-line front of lib/service/status.c for the integration tests: one status
 * operation per run against a real DynamoDB endpoint, the outcome printed as one JSON object. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/ddb.h"
#include "s3torrent/s3.h"
#include "s3torrent/status.h"

/* exit codes the tests read */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_EXISTS = 3, EXIT_NOENT = 4, EXIT_BUSY = 5 };

static time_t fixed_time; /* --now: a test tool may keep this one global */

static time_t fixed_now(void)
{
    return fixed_time;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: status_driver --endpoint URL --table T [--key-attr A] [--region R]\n"
        "                     [--now UNIX] create|begin|ready|failed|get [s3://bucket/key]\n"
        "  begin, ready, failed: --etag E --mtime M [--size N] [--source sync|lambda]\n"
        "                        [--lease-until UNIX] (begin)\n"
        "  ready:  --torrent-key K --info-hash H [--info-hash-v2 H2] --magnet M [--magnet-v1 M1]\n"
        "          --piece-length N --piece-count N --meta-version v1|v2|hybrid\n"
        "  failed: --error MESSAGE\n"
        "Prints one JSON object. Exit 0 ok, 1 failure, 2 usage, 3 EEXIST, 4 ENOENT, 5 EBUSY.\n");
}

static int report(int rc, const err_t *err)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(rc == 0));
    if (rc) {
        json_object_object_add(o, "errno", json_object_new_int(rc));
        json_object_object_add(o, "error", json_object_new_string(strerrorname_np(rc)));
        json_object_object_add(o, "message", json_object_new_string(err->msg));
    }
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    if (rc)
        fprintf(stderr, "status_driver: %s\n", err->msg);
    return rc == 0        ? EXIT_OK
           : rc == EEXIST ? EXIT_EXISTS
           : rc == ENOENT ? EXIT_NOENT
           : rc == EBUSY  ? EXIT_BUSY
                          : EXIT_FAIL;
}

static void put_s(json_object *o, const char *name, const char *v)
{
    if (*v)
        json_object_object_add(o, name, json_object_new_string(v));
}

static void put_n(json_object *o, const char *name, int64_t v)
{
    json_object_object_add(o, name, json_object_new_int64(v));
}

static void print_item(const struct status_item *it, const char *key_attr)
{
    json_object *o = json_object_new_object();
    put_s(o, key_attr, it->uri);
    put_s(o, "status", it->status);
    put_s(o, "bucket", it->bucket);
    put_s(o, "object_key", it->object_key);
    put_s(o, "etag", it->etag);
    put_n(o, "size", (int64_t)it->size);
    put_n(o, "object_mtime", it->object_mtime);
    put_s(o, "torrent_key", it->torrent_key);
    put_s(o, "info_hash", it->info_hash);
    put_s(o, "info_hash_v2", it->info_hash_v2);
    put_s(o, "magnet", it->magnet);
    put_s(o, "magnet_v1", it->magnet_v1);
    put_n(o, "piece_length", (int64_t)it->piece_length);
    put_n(o, "piece_count", (int64_t)it->piece_count);
    put_s(o, "meta_version", it->meta_version);
    put_n(o, "attempts", (int64_t)it->attempts);
    put_s(o, "error", it->error);
    put_s(o, "source", it->source);
    put_s(o, "updated_at", it->updated_at);
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"endpoint", required_argument, NULL, 'E'},
        {"table", required_argument, NULL, 't'},
        {"key-attr", required_argument, NULL, 'k'},
        {"region", required_argument, NULL, 'r'},
        {"now", required_argument, NULL, 'n'},
        {"etag", required_argument, NULL, 'e'},
        {"mtime", required_argument, NULL, 'm'},
        {"size", required_argument, NULL, 's'},
        {"source", required_argument, NULL, 'S'},
        {"torrent-key", required_argument, NULL, 'T'},
        {"info-hash", required_argument, NULL, 'i'},
        {"info-hash-v2", required_argument, NULL, 'I'},
        {"magnet", required_argument, NULL, 'M'},
        {"magnet-v1", required_argument, NULL, 'V'},
        {"piece-length", required_argument, NULL, 'l'},
        {"piece-count", required_argument, NULL, 'c'},
        {"meta-version", required_argument, NULL, 'v'},
        {"error", required_argument, NULL, 'x'},
        {"lease-until", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *endpoint = NULL, *region = NULL, *error = NULL;
    struct status_store st = {0};
    struct status_object o = {.source = "sync"};
    struct status_torrent t = {0};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'E':
            endpoint = optarg;
            break;
        case 't':
            st.table = optarg;
            break;
        case 'k':
            st.key_attr = optarg;
            break;
        case 'r':
            region = optarg;
            break;
        case 'n':
            fixed_time = (time_t)strtoll(optarg, NULL, 10);
            st.now = fixed_now;
            break;
        case 'e':
            o.etag = optarg;
            break;
        case 'L':
            o.lease_until = strtoll(optarg, NULL, 10);
            break;
        case 'm':
            o.mtime = strtoll(optarg, NULL, 10);
            break;
        case 's':
            o.size = strtoull(optarg, NULL, 10);
            break;
        case 'S':
            o.source = optarg;
            break;
        case 'T':
            t.torrent_key = optarg;
            break;
        case 'i':
            t.info_hash = optarg;
            break;
        case 'I':
            t.info_hash_v2 = optarg;
            break;
        case 'M':
            t.magnet = optarg;
            break;
        case 'V':
            t.magnet_v1 = optarg;
            break;
        case 'l':
            t.piece_length = strtoull(optarg, NULL, 10);
            break;
        case 'c':
            t.piece_count = strtoull(optarg, NULL, 10);
            break;
        case 'v':
            t.meta_version = optarg;
            break;
        case 'x':
            error = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc || st.table == NULL) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[optind];
    const char *uri = optind + 1 < argc ? argv[optind + 1] : NULL;
    if (strcmp(cmd, "create") != 0 && uri == NULL) {
        usage(stderr);
        return EXIT_USAGE;
    }

    err_t err = {0};
    struct logger log = log_stderr("status_driver", LOG_WARNING);
    struct http_opts ho = {.log = &log};
    struct http_client *http = http_client_new(&ho);
    struct cred_chain_opts co = {.http = http};
    struct cred_chain *creds = cred_chain_new(&co);
    struct ddb_config dc = {.endpoint = endpoint, .region = region, .http = http, .creds = creds};
    struct ddb_client *ddb = NULL;
    char *bucket = NULL, *key = NULL;
    int rc, code = EXIT_FAIL;
    if (http == NULL || creds == NULL) {
        rc = err_set(&err, ENOMEM, "out of memory");
        code = report(rc, &err);
        goto out;
    }
    if ((rc = ddb_client_new(&dc, &ddb, &err)) ||
        (uri && (rc = s3_parse_uri(uri, &bucket, &key, &err)))) {
        code = report(rc, &err);
        goto out;
    }
    st.ddb = ddb;
    o.bucket = bucket;
    o.key = key;
    if (strcmp(cmd, "create") == 0) {
        code = report(status_create_table(&st, &err), &err);
    } else if (strcmp(cmd, "begin") == 0) {
        code = report(status_begin(&st, &o, &err), &err);
    } else if (strcmp(cmd, "ready") == 0) {
        code = report(status_ready(&st, &o, &t, &err), &err);
    } else if (strcmp(cmd, "failed") == 0) {
        code = report(status_failed(&st, &o, error, &err), &err);
    } else if (strcmp(cmd, "get") == 0) {
        struct status_item *it = malloc(sizeof(*it));
        if (it == NULL)
            rc = err_set(&err, ENOMEM, "out of memory");
        else
            rc = status_get(&st, bucket, key, it, &err);
        if (rc == 0) {
            print_item(it, st.key_attr ? st.key_attr : STATUS_KEY_ATTR_DEFAULT);
            code = EXIT_OK;
        } else {
            code = report(rc, &err);
        }
        free(it);
    } else {
        usage(stderr);
        code = EXIT_USAGE;
    }
out:
    free(bucket);
    free(key);
    ddb_client_free(ddb);
    cred_chain_free(creds);
    http_client_free(http);
    return code;
}
