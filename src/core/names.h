/* names.h - the Puppet name rules choir enforces everywhere.
 *
 * Contract: pure predicates over byte strings.
 * - certname: 1..255 bytes of [a-z0-9._-], not starting with '.' or '-'
 *   (Puppet certnames are lower case; they become file names and routing
 *   keys, so nothing else is allowed).
 * - environment: 1..255 bytes of [a-z0-9_] (Puppet's rule).
 * - job id: 1..NAMES_JOB_ID_MAX bytes of [A-Za-z0-9_-] (choir's rule: job
 *   ids become routing keys and file names). */
#ifndef CHOIR_NAMES_H
#define CHOIR_NAMES_H

#include <stddef.h>

#define NAMES_MAX 255
#define NAMES_JOB_ID_MAX 64

int names_certname_ok(const char *s, size_t len);
int names_environment_ok(const char *s, size_t len);
int names_job_id_ok(const char *s);

#endif
