/* util.h — the small encoders and parsers every module shares, one of each: lower-case hex,
 * ISO 8601 and HTTP dates, and the control-byte rule that keeps quoted text on one line. */
#ifndef S3TORRENT_UTIL_H
#define S3TORRENT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes the 2n lower-case hex digits of in[0, n) and a NUL into out (2n + 1 bytes). Returns
 * out. */
char *util_hex(const uint8_t *in, size_t n, char *out);

/* Parses an ISO 8601 time: extended (2019-09-03T19:37:27.000Z) or basic (20130524T000000Z),
 * 'T', 't' (or, extended, a space) between date and time, a fraction (dropped), then Z, z or an
 * offset ±hh:mm / ±hhmm. Impossible dates (Feb 30) are refused. Returns 0 with *out in Unix
 * seconds, or EINVAL. */
int util_iso8601(const char *s, int64_t *out);

/* Parses an HTTP date (RFC 9110 §5.6.7): IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", and the
 * obsolete RFC 850 and asctime forms. Locale-independent. Returns 0 with *out in Unix seconds,
 * or EINVAL. */
int util_http_date(const char *s, int64_t *out);

/* Writes t (Unix seconds) as an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT", into out (at least
 * 30 bytes), whatever the locale. Returns out. */
char *util_http_date_format(int64_t t, char *out, size_t n);

/* True for the bytes one-line text may not carry: below 0x20, and DEL (0x7f). */
static inline bool util_is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* True when s holds a control byte (util_is_ctl). */
bool util_has_ctl(const char *s);

/* Length of the UTF-8 sequence at s (n > 0 bytes left): 1 to 4, or 0 when it is invalid
 * (overlong, a surrogate, past U+10FFFF, cut short). */
size_t util_utf8_len(const unsigned char *s, size_t n);

/* Makes s one line in place, whatever it quotes (a key, a file name from a torrent): control
 * bytes become '?'. Every err_t message and log line goes through it. Returns s. */
char *util_scrub(char *s);

/* Copies n bytes of s (fewer when they do not fit) into dst (cap > 0 bytes, NUL-terminated),
 * control bytes as '?'. Returns dst. */
char *util_scrub_copy(char *dst, size_t cap, const char *s, size_t n);

/* Copies at most max bytes of s into out (outsz bytes) for a one-line message: control bytes
 * become \xNN, and a cut (by max or by outsz) is marked with "...". Returns out. */
char *util_escape(char *out, size_t outsz, const char *s, size_t max);

#endif
