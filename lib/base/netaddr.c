/* netaddr.c — listening addresses (netaddr.h). */
#include "s3torrent/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

int netaddr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len, err_t *err)
{
    char host[64];
    const char *port, *h = s;
    size_t hl;
    memset(ss, 0, sizeof(*ss));
    *len = 0;
    if (s == NULL || *s == '\0')
        return err_set(err, EINVAL, "--listen needs ADDR:PORT, e.g. 127.0.0.1:8080");
    if (*s == '[') { /* [v6]:port */
        const char *close = strchr(s, ']');
        if (close == NULL)
            return err_set(err, EINVAL, "--listen '%.64s': no ']' after the IPv6 address", s);
        h = s + 1;
        hl = (size_t)(close - h);
        port = close[1] == ':' ? close + 2 : NULL;
        if (port == NULL && close[1] != '\0')
            return err_set(err, EINVAL, "--listen '%.64s': ':' and a port must follow ']'", s);
    } else {
        port = strrchr(s, ':');
        hl = port ? (size_t)(port - s) : strlen(s);
        if (port && memchr(s, ':', hl) != NULL)
            return err_set(err, EINVAL,
                           "--listen '%.64s': an IPv6 address goes in brackets, e.g. [::1]:8080",
                           s);
        if (port)
            port++;
    }
    if (port == NULL)
        return err_set(err, EINVAL, "--listen '%.64s': no port (ADDR:PORT, e.g. 127.0.0.1:8080)",
                       s);
    char *end;
    errno = 0;
    unsigned long p = strtoul(port, &end, 10);
    if (*port < '0' || *port > '9' || *end != '\0' || errno || p > 65535)
        return err_set(err, EINVAL, "--listen '%.64s': port '%.16s' is not 0 to 65535", s, port);
    if (hl == 0 || hl >= sizeof(host))
        return err_set(err, EINVAL, "--listen '%.64s': no address before the port", s);
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (*s != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        *len = sizeof(*v4);
    } else if (*s == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        *len = sizeof(*v6);
    } else {
        return err_set(err, EINVAL,
                       "--listen '%.64s': '%.64s' is not a numeric IPv4 address or a bracketed "
                       "IPv6 one",
                       s, host);
    }
    return 0;
}
