/* util.c — one hex encoder, one ISO 8601 parser, one HTTP-date parser and one control-byte rule
 * for the whole library (docs/DESIGN.md §2): every module that quotes, dates or hexes uses these.
 */
#include "s3torrent/util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

char *util_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

/* Reads exactly n decimal digits at *p into *out and moves *p past them. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's method). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Unix seconds of a UTC date and time, or EINVAL for one that does not exist. */
static int unix_time(int y, int mo, int d, int h, int mi, int se, int64_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) || h > 23 || mi > 59 ||
        se > 60)
        return EINVAL;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}

int util_iso8601(const char *s, int64_t *out)
{
    const char *p = s;
    int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
    if (!digits(&p, 4, &y))
        return EINVAL;
    bool ext = *p == '-';
    if (ext)
        p++;
    if (!digits(&p, 2, &mo) || (ext && *p++ != '-') || !digits(&p, 2, &d))
        return EINVAL;
    if (*p != 'T' && *p != 't' && !(ext && *p == ' '))
        return EINVAL;
    p++;
    if (!digits(&p, 2, &h) || (ext && *p++ != ':') || !digits(&p, 2, &mi) || (ext && *p++ != ':') ||
        !digits(&p, 2, &se))
        return EINVAL;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return EINVAL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
        p++;
    } else if (p[0] == '+' || p[0] == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (!digits(&p, 2, &oh))
            return EINVAL;
        if (*p == ':')
            p++;
        if (!digits(&p, 2, &om))
            return EINVAL;
    } else {
        return EINVAL; /* a time without a zone is no UTC time */
    }
    if (*p != '\0')
        return EINVAL;
    if (oh > 23 || om > 59)
        return EINVAL;
    int64_t t;
    if (unix_time(y, mo, d, h, mi, se, &t))
        return EINVAL;
    *out = t - sign * (int64_t)(oh * 3600 + om * 60);
    return 0;
}

/* Reads a three-letter English month name (any case) at *p into *mo (1-12). */
static const char month_names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

static bool month(const char **p, int *mo)
{
    for (int i = 0; i < 12; i++)
        if (strncasecmp(*p, month_names + 3 * i, 3) == 0) {
            *p += 3;
            *mo = i + 1;
            return true;
        }
    return false;
}

/* Reads "HH:MM:SS" at *p. */
static bool hms(const char **p, int *h, int *mi, int *se)
{
    return digits(p, 2, h) && *(*p)++ == ':' && digits(p, 2, mi) && *(*p)++ == ':' &&
           digits(p, 2, se);
}

int util_http_date(const char *s, int64_t *out)
{
    const char *p = s;
    int y, mo, d, h, mi, se;
    size_t wl = 0;
    if (s == NULL)
        return EINVAL;
    while ((p[wl] >= 'A' && p[wl] <= 'Z') || (p[wl] >= 'a' && p[wl] <= 'z'))
        wl++;
    if (wl < 3)
        return EINVAL;
    p += wl;
    if (p[0] == ',' && p[1] == ' ') {
        p += 2;
        if (!digits(&p, 2, &d))
            return EINVAL;
        if (*p == ' ') { /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
            p++;
            if (!month(&p, &mo) || *p++ != ' ' || !digits(&p, 4, &y))
                return EINVAL;
        } else if (*p == '-') { /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
            p++;
            if (!month(&p, &mo) || *p++ != '-' || !digits(&p, 2, &y))
                return EINVAL;
            y += y < 70 ? 2000 : 1900;
        } else {
            return EINVAL;
        }
        if (*p++ != ' ' || !hms(&p, &h, &mi, &se) || strcmp(p, " GMT") != 0)
            return EINVAL;
    } else if (p[0] == ' ') { /* asctime: Sun Nov  6 08:49:37 1994 */
        p++;
        if (!month(&p, &mo) || *p++ != ' ')
            return EINVAL;
        if (*p == ' ') {
            p++;
            if (!digits(&p, 1, &d))
                return EINVAL;
        } else if (!digits(&p, 2, &d)) {
            return EINVAL;
        }
        if (*p++ != ' ' || !hms(&p, &h, &mi, &se) || *p++ != ' ' || !digits(&p, 4, &y) ||
            *p != '\0')
            return EINVAL;
    } else {
        return EINVAL;
    }
    return unix_time(y, mo, d, h, mi, se, out);
}

bool util_has_ctl(const char *s)
{
    for (; *s; s++)
        if (util_is_ctl((unsigned char)*s))
            return true;
    return false;
}

size_t util_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

char *util_scrub(char *s)
{
    for (char *p = s; *p; p++)
        if (util_is_ctl((unsigned char)*p))
            *p = '?';
    return s;
}

char *util_scrub_copy(char *dst, size_t cap, const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n && i + 1 < cap; i++)
        dst[i] = util_is_ctl((unsigned char)s[i]) ? '?' : s[i];
    dst[i] = '\0';
    return dst;
}

char *util_escape(char *out, size_t outsz, const char *s, size_t max)
{
    size_t o = 0, i = 0;
    for (; s[i] != '\0' && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t need = util_is_ctl(c) ? 4 : 1;
        if (o + need + 4 > outsz)
            break;
        if (need == 4)
            o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    if (s[i] != '\0' && o + 4 <= outsz) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

char *util_http_date_format(int64_t t, char *out, size_t n)
{
    static const char days[] = "SunMonTueWedThuFriSat";
    struct tm tm;
    time_t tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL) {
        snprintf(out, n, "Thu, 01 Jan 1970 00:00:00 GMT");
        return out;
    }
    snprintf(out, n, "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT", days + 3 * tm.tm_wday, tm.tm_mday,
             month_names + 3 * tm.tm_mon, tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return out;
}
