/* puppet_yaml.h - bounded readers of Puppet's last_run_summary.yaml and
 * last_run_report.yaml (PROTOCOL.md §5), over libyaml's streaming event
 * API, producing the JSON objects the `puppet` agent's last_run_summary and
 * last_run_report actions answer with.
 *
 * Contract:
 * - Input is untrusted.  A file larger than limits.file_max is refused
 *   before parsing (and a file that grows while read is cut off there);
 *   nesting deeper than depth_max, and any single YAML token (a scalar,
 *   usually) longer than token_max, are refused with an error, so libyaml
 *   never holds more than a few token_max of text; kept strings are cut to
 *   string_max bytes (on a UTF-8 boundary; invalid UTF-8 becomes '?');
 *   lists are capped (logs_max logs, resources_max failed and as many
 *   changed resources, events_max events per resource) and every capped
 *   list says so ("..._truncated": true, plus the full count).  Memory
 *   therefore stays small whatever the file size: only what the outputs
 *   need is kept, one resource at a time.
 * - Ruby tags (`!ruby/object:Puppet::Transaction::Report`, `!ruby/sym`,
 *   ...) are ignored: a tagged mapping is a mapping, a tagged scalar its
 *   text.  Aliases are not expanded (they read as null).  Only the first
 *   document of a stream is read.
 * - Plain scalars are typed like YAML's core schema (null, booleans,
 *   integers, floats); quoted scalars are strings.
 * - Errors fill a struct choir_error (class CHOIR_EXIT_INPUT) with one
 *   line naming the file: "NAME: cannot open: No such file or directory",
 *   "NAME:LINE:COL: <libyaml's problem> (<its context>)", "NAME:LINE:
 *   nesting deeper than 64 levels", "NAME: 70000000 bytes is over the
 *   limit of 67108864 bytes", ... and set *errnum (when not NULL) to the
 *   errno of a failed open/stat (ENOENT for a missing file), else 0.
 *
 * Summary object (the DDL's last_run_summary output names, puppet-2.5.0):
 *   out_of_sync_resources, failed_resources, corrected_resources,
 *   changed_resources (integers, -1 without a resources section),
 *   total_resources (0 without), config_retrieval_time, total_time (real
 *   numbers, seconds; -1 / 0 when absent), lastrun (time.last_run, 0 when
 *   absent), since_lastrun (now - lastrun, 0 without lastrun),
 *   config_version (version.config as text, "" when absent),
 *   summary (the summary's own sections as a hash: Puppet's data),
 *   type_distribution ({}: filled by the caller from a report), logs ([]:
 *   likewise), plus choir's resources_present (false = the catalog did not
 *   compile) and failed_to_restart_resources, puppet_version.
 *
 * Report object: status, job_id (null when Puppet did not carry one),
 *   transaction_uuid, cached_catalog_status, noop, puppet_version,
 *   configuration_version (text), host, environment, time (as written),
 *   time_epoch (seconds since the epoch, 0 when unparseable),
 *   logs [{level, message, source, time}], logs_total, logs_truncated,
 *   failed_resources / changed_resources [{resource, type, title, file,
 *   line, failed, changed, events: [{property, status, name,
 *   previous_value, desired_value, message}], events_truncated}],
 *   failed_count, changed_count, resources_total, resources_truncated,
 *   type_distribution {Type: count}, metrics {group: {name: value}} (time,
 *   resources, changes, events), truncated (any list capped). */
#ifndef CHOIR_PUPPET_YAML_H
#define CHOIR_PUPPET_YAML_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "core/error.h"

struct puppet_yaml_limits {
    size_t file_max;      /* bytes of one file */
    size_t token_max;     /* bytes of one YAML token */
    size_t string_max;    /* bytes kept of one string */
    size_t depth_max;     /* nesting levels */
    size_t logs_max;      /* logs kept */
    size_t resources_max; /* failed resources kept, and changed ones */
    size_t events_max;    /* events kept per resource */
};

#define PUPPET_YAML_FILE_MAX (64u * 1024 * 1024)
#define PUPPET_YAML_TOKEN_MAX (8u * 1024 * 1024)
#define PUPPET_YAML_STRING_MAX 4096u
#define PUPPET_YAML_DEPTH_MAX 64u
#define PUPPET_YAML_LOGS_MAX 1000u
#define PUPPET_YAML_RESOURCES_MAX 1000u
#define PUPPET_YAML_EVENTS_MAX 100u

/* The defaults above. */
void puppet_yaml_limits_default(struct puppet_yaml_limits *l);

/* Reads a summary file into *out (a new object).  l NULL = defaults.
 * Returns 0, or -1 with err (and *errnum) filled. */
int puppet_yaml_summary_file(const char *path, const struct puppet_yaml_limits *l, time_t now,
                             json_t **out, struct choir_error *err, int *errnum);

/* The same over text in memory; name is used in messages. */
int puppet_yaml_summary_text(const char *text, size_t len, const char *name,
                             const struct puppet_yaml_limits *l, time_t now, json_t **out,
                             struct choir_error *err);

/* Reads a report file into *out (a new object). */
int puppet_yaml_report_file(const char *path, const struct puppet_yaml_limits *l, json_t **out,
                            struct choir_error *err, int *errnum);

int puppet_yaml_report_text(const char *text, size_t len, const char *name,
                            const struct puppet_yaml_limits *l, json_t **out,
                            struct choir_error *err);

/* Seconds since the epoch of a Puppet report time ("2026-11-24T23:35:52.16
 * +00:00", "2013-09-03 14:00:41.473620 +00:00", "...Z"), or 0. */
long long puppet_yaml_time(const char *s);

#endif
