/* prom.h — the Prometheus text exposition format (version 0.0.4), written once for every
 * program that exposes counters (`s3torrent serve`'s /metrics, the mount's metrics file). */
#ifndef S3TORRENT_PROM_H
#define S3TORRENT_PROM_H

#include "s3torrent/buf.h"

/* The # HELP and # TYPE lines of a metric; type is "counter" or "gauge". help is one line. */
void prom_family(struct buf *b, const char *name, const char *type, const char *help);
/* One sample: name, its labels as written between braces (NULL or "" for none: the caller
 * quotes the values, which must not hold '"', '\\' or a newline), and the value. */
void prom_sample(struct buf *b, const char *name, const char *labels, unsigned long long v);
/* A sample of a real value (ratios); NaN and infinities as Prometheus spells them. */
void prom_sample_real(struct buf *b, const char *name, const char *labels, double v);
/* prom_family and one unlabelled sample. */
void prom_counter(struct buf *b, const char *name, const char *help, unsigned long long v);
void prom_gauge(struct buf *b, const char *name, const char *help, unsigned long long v);

#endif
