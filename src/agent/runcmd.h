/* runcmd.h - the command line of a Puppet run (PROTOCOL.md §5 runonce).
 *
 * Contract: a run's command comes from a template (config key run.command,
 * by default `puppet agent --onetime --no-daemonize --color=false
 * --show_diff --verbose --no-splay --no-use_cached_catalog
 * --detailed-exitcodes --job-id {job_id}`)
 * and the runonce request's inputs, never through a shell.
 * - The template is split on blanks (space, tab) into at most
 *   RUNCMD_ARGS_MAX words; there is no quoting.  The text {job_id} inside
 *   a word is replaced by the job id (e.g. "--job-id {job_id}" or
 *   "--job_id={job_id}"); a template without it runs Puppet without a job
 *   id (`puppet apply` has none), and the run is then correlated by the
 *   spawned process and the report time (verdict.h).
 * - After the template's words come the options the request asked for, in
 *   this order: --noop or --no-noop (noop true/false), --use_cached_catalog
 *   (use_cached_catalog true; the default template says
 *   --no-use_cached_catalog), --tags T, --skip_tags T, --environment E,
 *   --server S.  Inputs are validated before (puppet_state.c's table);
 *   runcmd only builds.  force, splay and splaylimit are accepted by the
 *   agent for compatibility and change nothing: runs never splay.
 * - A job id follows names_job_id_ok: it is used in routing keys.
 * Errors are one line in why. */
#ifndef CHOIR_RUNCMD_H
#define CHOIR_RUNCMD_H

#include <stddef.h>

#include <jansson.h>

#include "core/names.h"

#define RUNCMD_ARGS_MAX 128
#define RUNCMD_JOB_ID_MAX NAMES_JOB_ID_MAX
#define RUNCMD_JOB_ID_VAR "{job_id}"

/* 0 when the template has 1..RUNCMD_ARGS_MAX words, else -1 with why. */
int runcmd_check_template(const char *tmpl, char *why, size_t n);
/* True when the template passes the job id to Puppet. */
int runcmd_carries_job_id(const char *tmpl);
/* Builds a NULL-terminated heap argv (free with runcmd_free).  in is the
 * request's data (NULL = {}).  Returns 0, or -1 with why. */
int runcmd_build(const char *tmpl, const json_t *in, const char *job_id, char ***argv, char *why,
                 size_t n);
void runcmd_free(char **argv);
/* argv as one line for logs: words joined by spaces, cut to fit. */
void runcmd_format(char *const *argv, char *buf, size_t size);

#endif
