/* lamlog.c — Lambda's log formats and levels (lamlog.h). */
#include "lamlog.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "s3torrent/util.h"

static struct {
    bool json;
    int max_level;
} cfg = {false, LOG_INFO};

static _Thread_local char request_id[128];
static _Thread_local char *object; /* s3://BUCKET/KEY, malloc'd */
static _Thread_local const char *outcome;

static const struct {
    const char *name;
    int level;
} levels[] = {
    {"TRACE", LOG_DEBUG},  {"DEBUG", LOG_DEBUG}, {"INFO", LOG_INFO},
    {"WARN", LOG_WARNING}, {"ERROR", LOG_ERR},   {"FATAL", LOG_CRIT},
};

int lamlog_init(const char *format, const char *level, err_t *err)
{
    cfg.json = false;
    cfg.max_level = LOG_INFO;
    if (format && *format) {
        if (strcasecmp(format, "JSON") == 0)
            cfg.json = true;
        else if (strcasecmp(format, "Text") != 0)
            return err_set(err, EINVAL, "AWS_LAMBDA_LOG_FORMAT: \"%s\" is not Text or JSON",
                           format);
    }
    if (level && *level) {
        size_t i = 0;
        while (i < sizeof(levels) / sizeof(levels[0]) && strcasecmp(level, levels[i].name) != 0)
            i++;
        if (i == sizeof(levels) / sizeof(levels[0]))
            return err_set(err, EINVAL,
                           "AWS_LAMBDA_LOG_LEVEL: \"%s\" is not TRACE, DEBUG, INFO, WARN, ERROR "
                           "or FATAL",
                           level);
        cfg.max_level = levels[i].level;
    }
    return 0;
}

bool lamlog_json(void)
{
    return cfg.json;
}

/* One whole line with one write, so lines of several threads never interleave. */
static void emit(const char *line, size_t n)
{
    char *l = malloc(n + 1);
    if (l == NULL)
        return;
    memcpy(l, line, n);
    l[n] = '\n';
    for (size_t off = 0; off < n + 1;) {
        ssize_t w = write(STDERR_FILENO, l + off, n + 1 - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(l);
}

static const char *level_name(int level)
{
    return level <= LOG_CRIT      ? "FATAL"
           : level <= LOG_ERR     ? "ERROR"
           : level <= LOG_WARNING ? "WARN"
           : level <= LOG_INFO    ? "INFO"
                                  : "DEBUG";
}

static void write_line(void *arg, int level, const char *line)
{
    (void)arg;
    if (level > cfg.max_level)
        return;
    if (!cfg.json) { /* the same line as every program's stderr logger */
        struct logger text = log_stderr("s3torrent-lambda", LOG_DEBUG);
        text.write(text.arg, level, line);
        return;
    }
    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t w = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof(when) - w, ".%03ldZ", ts.tv_nsec / 1000000);
    json_object *o = json_object_new_object();
    if (o == NULL)
        return;
    json_object_object_add(o, "timestamp", json_object_new_string(when));
    json_object_object_add(o, "level", json_object_new_string(level_name(level)));
    json_object_object_add(o, "message", json_object_new_string(line));
    if (request_id[0])
        json_object_object_add(o, "requestId", json_object_new_string(request_id));
    if (object)
        json_object_object_add(o, "object", json_object_new_string(object));
    if (outcome)
        json_object_object_add(o, "outcome", json_object_new_string(outcome));
    size_t n;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    if (s)
        emit(s, n);
    json_object_put(o);
}

struct logger lamlog_logger(void)
{
    return (struct logger){.write = write_line, .arg = NULL, .max_level = LOG_DEBUG};
}

void lamlog_request(const char *id)
{
    snprintf(request_id, sizeof(request_id), "%s", id ? id : "");
}

const char *lamlog_current_request(void)
{
    return request_id;
}

void lamlog_object(const char *bucket, const char *key)
{
    free(object);
    object = NULL;
    if (bucket && key && asprintf(&object, "s3://%s/%s", bucket, key) < 0)
        object = NULL;
}

void lamlog_outcome(const char *o)
{
    outcome = o;
}

void lamlog_raw(const char *line)
{
    emit(line, strlen(line));
}
