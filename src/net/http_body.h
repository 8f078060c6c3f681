/* http_body.h - what the libcurl clients (PuppetServer, Puppet CA) share.
 *
 * Contract: http_global_init initialises libcurl once per process
 * (thread-safe) and reports a failure as CHOIR_EXIT_INTERNAL.  An
 * http_body collects a response body, NUL-terminated, up to `max` bytes:
 * past that, or when memory runs out, http_body_write stops the transfer
 * (curl then fails it) and sets too_big or no_memory to say why.  Use
 * http_body_write as CURLOPT_WRITEFUNCTION with the body as WRITEDATA. */
#ifndef CHOIR_HTTP_BODY_H
#define CHOIR_HTTP_BODY_H

#include <stddef.h>

#include "core/error.h"

struct http_body {
    char *buf;
    size_t len, cap, max;
    int too_big, no_memory;
};

int http_global_init(struct choir_error *err);
size_t http_body_write(char *data, size_t size, size_t nmemb, void *body);

#endif
