/* hostport.c - see hostport.h. */
#include "core/hostport.h"

#include <stdlib.h>
#include <string.h>

#define HOSTPORT_NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"

/* A name, or an IPv6 address with an optional %zone (an interface name). */
static int hostport_host_ok(const char *host, int ipv6)
{
    size_t addr = ipv6 ? strspn(host, "0123456789abcdefABCDEF:.") : strspn(host, HOSTPORT_NAME_CHARS);

    if (addr == 0)
        return 0;
    if (ipv6 && host[addr] == '%' && host[addr + 1])
        return strspn(host + addr + 1, HOSTPORT_NAME_CHARS) == strlen(host + addr + 1);
    return host[addr] == '\0';
}

static int hostport_port(const char *text, unsigned *port)
{
    unsigned long v;

    if (!*text || strlen(text) > 5 || strspn(text, "0123456789") != strlen(text))
        return -1;
    v = strtoul(text, NULL, 10);
    if (v < 1 || v > 65535)
        return -1;
    *port = (unsigned)v;
    return 0;
}

int hostport_parse(const char *text, unsigned default_port, struct hostport *hp)
{
    const char *host = text, *port = NULL, *colon = strchr(text, ':');
    size_t hostlen;

    hp->ipv6 = 0;
    hp->port = default_port;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');

        if (!close || (close[1] && close[1] != ':'))
            return -1;
        host = text + 1;
        hostlen = (size_t)(close - host);
        port = close[1] ? close + 2 : NULL;
        hp->ipv6 = 1;
    } else if (colon && colon == strrchr(text, ':')) {
        port = colon + 1;
        hostlen = (size_t)(colon - text);
    } else {
        hostlen = strlen(text);
        hp->ipv6 = colon != NULL;
    }
    if (hostlen == 0 || hostlen > HOSTPORT_HOST_MAX)
        return -1;
    memcpy(hp->host, host, hostlen);
    hp->host[hostlen] = '\0';
    if (!hostport_host_ok(hp->host, hp->ipv6))
        return -1;
    return port ? hostport_port(port, &hp->port) : 0;
}
