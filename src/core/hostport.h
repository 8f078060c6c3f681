/* hostport.h - "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6
 * address, as written in configuration and on command lines.
 *
 * Contract: hostport_parse splits text into a host (without brackets; at
 * most HOSTPORT_HOST_MAX bytes of letters, digits, '.', '-', '_', or for
 * IPv6 hex digits, ':' and '.' with an optional %zone) and a port 1..65535 (default_port
 * when none is given).  It returns 0, or -1 when the text is none of the
 * forms above; it never prints. */
#ifndef CHOIR_HOSTPORT_H
#define CHOIR_HOSTPORT_H

#define HOSTPORT_HOST_MAX 255

struct hostport {
    char host[HOSTPORT_HOST_MAX + 1];
    unsigned port;
    int ipv6;
};

int hostport_parse(const char *text, unsigned default_port, struct hostport *hp);

#endif
