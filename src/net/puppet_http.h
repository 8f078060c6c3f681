/* puppet_http.h - PuppetServer over mutual TLS (libcurl).
 *
 * Fetches `GET /puppet/v3/environment/<env>` with the Puppet ssldir layout:
 * certs/<certname>.pem, private_keys/<certname>.pem, certs/ca.pem, crl.pem
 * (the CRL is used when present).  Server: opts->server ("host[:port]",
 * port 8140 by default); when NULL, the SRV record _x-puppet._tcp.<domain>
 * (opts->srv_domain, else the host's DNS domain), else puppet:8140.
 *
 * Errors are one line naming what failed: a missing or unreadable ssldir
 * file by path, the TLS check that failed, the URL and HTTP status with
 * Puppet's JSON "message"; a 403 tells the user to add an auth.conf rule
 * for the endpoint.  Classes: CHOIR_EXIT_INPUT for a 404 (unknown
 * environment) and for an invalid environment name, CHOIR_EXIT_SERVER for
 * everything that means the server could not be reached, refused us, or
 * failed.  The body is bounded by opts->max_bytes. */
#ifndef CHOIR_PUPPET_HTTP_H
#define CHOIR_PUPPET_HTTP_H

#include <stddef.h>

#include "core/error.h"

struct puppet_http_opts {
    const char *server;      /* "host[:port]" or NULL */
    const char *srv_domain;  /* NULL: the host's domain */
    const char *ssldir;
    const char *certname;
    long connect_timeout;    /* seconds */
    long timeout;            /* seconds, whole transfer */
    size_t max_bytes;        /* body bound */
};

/* On success *body is a NUL-terminated heap buffer of *len bytes (caller
 * frees) and `url` (if not NULL) receives the URL that answered. */
int puppet_fetch_environment(const struct puppet_http_opts *opts, const char *environment,
                             char **body, size_t *len, char *url, size_t urlsize,
                             struct choir_error *err);

#endif
