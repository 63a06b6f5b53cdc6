/* emf.c — the Embedded Metric Format document (emf.h). The rules followed: a root "_aws"
 * object with Timestamp (Unix milliseconds) and CloudWatchMetrics, an array of one directive
 * with Namespace, Dimensions (an array of arrays of member names) and Metrics (Name and a
 * CloudWatch Unit); every dimension and metric named is a member of the root, dimensions as
 * strings and metrics as numbers. */
#include "emf.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void emf_count(struct emf_counts *c, const struct events_outcome *o, const struct sync_result *res,
               double elapsed_ms)
{
    switch (o->code) {
    case EVENTS_DONE:
        if (res && res->handed_out)
            c->fanned_out++;
        else if (res && res->action == SYNC_CREATED)
            c->created++;
        else if (res && res->action == SYNC_UP_TO_DATE)
            c->up_to_date++;
        else if (res && res->action == SYNC_ADOPTED)
            c->adopted++;
        else if (res && res->action == SYNC_REPLACED)
            c->replaced++;
        break;
    case EVENTS_SKIPPED:
        c->skipped++;
        break;
    case EVENTS_TEMPORARY:
        c->failed_temporary++;
        break;
    case EVENTS_PERMANENT:
        c->failed_permanent++;
        break;
    case EVENTS_NOT_DONE:
        c->deferred++;
        break;
    }
    if (res && res->hashed > 0) {
        c->runs++;
        c->bytes_hashed += res->hashed;
        c->hash_ms += elapsed_ms;
    }
}

static int add_metric(json_object *root, json_object *list, const char *name, const char *unit,
                      double v)
{
    json_object *m = json_object_new_object();
    if (m == NULL)
        return -1;
    json_object_object_add(m, "Name", json_object_new_string(name));
    json_object_object_add(m, "Unit", json_object_new_string(unit));
    json_object_array_add(list, m);
    /* whole numbers as integers ("1", not "1.0") */
    json_object *n =
        v == (double)(int64_t)v ? json_object_new_int64((int64_t)v) : json_object_new_double(v);
    return json_object_object_add(root, name, n);
}

char *emf_document(const char *function_name, int64_t timestamp_ms, const struct emf_counts *c,
                   double duration_ms)
{
    json_object *root = json_object_new_object(), *aws = json_object_new_object(),
                *dirs = json_object_new_array(), *dir = json_object_new_object(),
                *dims = json_object_new_array(), *dimset = json_object_new_array(),
                *metrics = json_object_new_array();
    char *out = NULL;
    if (!root || !aws || !dirs || !dir || !dims || !dimset || !metrics) {
        json_object_put(root);
        json_object_put(aws);
        json_object_put(dirs);
        json_object_put(dir);
        json_object_put(dims);
        json_object_put(dimset);
        json_object_put(metrics);
        return NULL;
    }
    json_object_array_add(dimset, json_object_new_string("FunctionName"));
    json_object_array_add(dims, dimset);
    json_object_object_add(dir, "Namespace", json_object_new_string("s3torrent"));
    json_object_object_add(dir, "Dimensions", dims);
    json_object_object_add(dir, "Metrics", metrics);
    json_object_array_add(dirs, dir);
    json_object_object_add(aws, "Timestamp", json_object_new_int64(timestamp_ms));
    json_object_object_add(aws, "CloudWatchMetrics", dirs);
    json_object_object_add(root, "_aws", aws);
    json_object_object_add(root, "FunctionName", json_object_new_string(function_name));
    const struct {
        const char *name;
        unsigned v;
    } counts[] = {
        {"ObjectsCreated", c->created},
        {"ObjectsUpToDate", c->up_to_date},
        {"ObjectsAdopted", c->adopted},
        {"ObjectsReplaced", c->replaced},
        {"ObjectsSkipped", c->skipped},
        {"ObjectsFailedTemporary", c->failed_temporary},
        {"ObjectsFailedPermanent", c->failed_permanent},
        {"DeadlineDeferrals", c->deferred},
        {"HashingRuns", c->runs},
        {"ObjectsFannedOut", c->fanned_out},
        {"FanOutRunsDone", c->runs_done},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
        bad |= add_metric(root, metrics, counts[i].name, "Count", counts[i].v);
    bad |= add_metric(root, metrics, "BytesHashed", "Bytes", (double)c->bytes_hashed);
    if (c->bytes_hashed > 0 && c->hash_ms > 0)
        bad |= add_metric(root, metrics, "HashingThroughput", "Megabytes/Second",
                          (double)c->bytes_hashed / 1e6 / (c->hash_ms / 1000.0));
    bad |= add_metric(root, metrics, "Duration", "Milliseconds", duration_ms);
    if (bad == 0) {
        const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
        out = s ? strdup(s) : NULL;
    }
    json_object_put(root);
    return out;
}
