/* validate.h - the input validators of the `puppet` agent (PROTOCOL.md §5).
 *
 * Contract: pure predicates over untrusted input.  Each returns 0 when the
 * value is acceptable, or -1 after writing a one-line reason (no trailing
 * newline, the offending value not repeated at length) into why[0..n).
 * They are the rules of the 2016 MCollective/Choria DDL validators:
 *
 * - shellsafe: no "`", "$", ";", "|", "&&", ">" or "<" anywhere (a single
 *   "&" is allowed, as in MCollective).
 * - puppet_variable: [a-zA-Z0-9_]+, and a single character must be a letter
 *   ("1bad" is accepted: only one-character names are restricted).
 * - tags: shellsafe, then split on "," and each part on "::"; every piece
 *   must be a puppet_variable (so empty pieces, spaces and "a,,b" fail).
 * - server: host[:port].  host is a DNS name (labels of [A-Za-z0-9-], not
 *   starting or ending with "-", the last label starting with a letter, so
 *   "1", "1.2" and "300.1.1.1" are refused), a dotted IPv4 address, a bare
 *   IPv6 address, or "[IPv6]"; port is 1..65535 in decimal.
 * - boolean: a JSON true or false (strings such as "true" are refused, like
 *   MCollective's typecheck).
 * - job_id: [A-Za-z0-9_-]+ (choir's addition to runonce).
 * - count: a JSON integer, not negative.
 * - length: at most max characters (UTF-8 code points, as Ruby counts
 *   String#size); invalid UTF-8 is refused.
 *
 * Every string validator receives a NUL-terminated string; callers reject
 * JSON strings with embedded NUL bytes before calling them. */
#ifndef CHOIR_VALIDATE_H
#define CHOIR_VALIDATE_H

#include <stddef.h>

#include <jansson.h>

/* A validator of string inputs, for the agent's action tables. */
typedef int validate_fn(const char *s, char *why, size_t n);

int validate_shellsafe(const char *s, char *why, size_t n);
int validate_puppet_variable(const char *s, char *why, size_t n);
int validate_tags(const char *s, char *why, size_t n);
int validate_server(const char *s, char *why, size_t n);
int validate_boolean(const json_t *v, char *why, size_t n);
int validate_length(const char *s, size_t max, char *why, size_t n);
/* choir's job ids: [A-Za-z0-9_-]+ (they become routing keys and file
 * names; the length is the caller's table's). */
int validate_job_id(const char *s, char *why, size_t n);
/* A JSON integer >= 0 (splaylimit). */
int validate_count(const json_t *v, char *why, size_t n);

#endif
