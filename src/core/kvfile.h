/* kvfile.h - the `key = value` text format of configuration and theme files.
 *
 * Contract: kvfile_parse splits untrusted text into lines (LF or CRLF, an
 * optional UTF-8 byte-order mark), skips blank lines and lines whose first
 * non-blank character is '#', and calls fn(ctx, key, value, line, err) for
 * each "key = value" line with both sides trimmed.  A value in double
 * quotes keeps its spaces and may escape \" and \\; there are no inline
 * comments.  Lines longer than KVFILE_MAX_LINE, NUL bytes, invalid UTF-8,
 * a line without '=' or an empty key are errors "ORIGIN:LINE: reason"
 * (class CHOIR_EXIT_INPUT).  fn returns 0, or -1 after filling err
 * (kvfile_fail gives the same format).  Parsing stops at the first error. */
#ifndef CHOIR_KVFILE_H
#define CHOIR_KVFILE_H

#include <stddef.h>

#include "core/error.h"

#define KVFILE_MAX_LINE 4096

typedef int kvfile_fn(void *ctx, const char *key, const char *value, unsigned line,
                      struct choir_error *err);

int kvfile_parse(const char *buf, size_t len, const char *origin, kvfile_fn *fn, void *ctx,
                 struct choir_error *err);

/* Fills err with "ORIGIN:LINE: reason", or "ORIGIN: reason" for line 0. */
void kvfile_fail(struct choir_error *err, const char *origin, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
