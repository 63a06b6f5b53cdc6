/* prom.c — the Prometheus text format (prom.h). */
#include "s3torrent/prom.h"

#include <math.h>

void prom_family(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_sample(struct buf *b, const char *name, const char *labels, unsigned long long v)
{
    if (labels && *labels)
        buf_printf(b, "%s{%s} %llu\n", name, labels, v);
    else
        buf_printf(b, "%s %llu\n", name, v);
}

void prom_sample_real(struct buf *b, const char *name, const char *labels, double v)
{
    const char *open = labels && *labels ? "{" : "", *close = labels && *labels ? "}" : "";
    if (isnan(v))
        buf_printf(b, "%s%s%s%s NaN\n", name, open, labels ? labels : "", close);
    else if (isinf(v))
        buf_printf(b, "%s%s%s%s %cInf\n", name, open, labels ? labels : "", close,
                   v > 0 ? '+' : '-');
    else
        buf_printf(b, "%s%s%s%s %.17g\n", name, open, labels ? labels : "", close, v);
}

void prom_counter(struct buf *b, const char *name, const char *help, unsigned long long v)
{
    prom_family(b, name, "counter", help);
    prom_sample(b, name, NULL, v);
}

void prom_gauge(struct buf *b, const char *name, const char *help, unsigned long long v)
{
    prom_family(b, name, "gauge", help);
    prom_sample(b, name, NULL, v);
}
