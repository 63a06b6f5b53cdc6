/* log.c — the injected logger and a stderr backend. */
#include "s3torrent/log.h"
#include "s3torrent/util.h"

#include <stdarg.h>
#include <stdio.h>

void log_msg(const struct logger *log, int level, const char *fmt, ...)
{
    if (log == NULL || log->write == NULL || level > log->max_level)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    util_scrub(line);
    log->write(log->arg, level, line);
}

static void stderr_write(void *arg, int level, const char *line)
{
    static const char *const names[] = {"emerg",   "alert",  "crit", "error",
                                        "warning", "notice", "info", "debug"};
    fprintf(stderr, "%s: %s: %s\n", (const char *)arg, names[level & 7], line);
}

struct logger log_stderr(const char *prog, int max_level)
{
    struct logger l = {stderr_write, (void *)prog, max_level};
    return l;
}
