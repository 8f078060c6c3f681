/* verdict.h - whether a Puppet run succeeded: the success rules of
 * PROTOCOL.md §5 ("Report facts that decide success") and DESIGN.md's job
 * lifecycle step 5, in one place.
 *
 * Contract: verdict_decide looks at the run's exit code (puppet with
 * --detailed-exitcodes: 0 no changes, 2 changes, 4 failures, 6 changes and
 * failures, 1 the run failed; anything else, e.g. -1 for a child killed
 * by a signal, counts as 1), the summary and report objects of
 * puppet_yaml (either may be NULL when the file was missing or
 * unreadable), the job id the run was started with (NULL where Puppet
 * cannot carry one) and the time choird spawned the run (0 = unknown).
 * It never fails and decides, in this order:
 *
 *   1. Whose report is it (the correlation)?
 *      - the report carries a job_id and one was expected: they must be
 *        equal, else foreign_report;                         by = job_id
 *      - otherwise (puppet apply, Puppet 4, no job id given): the run
 *        choird spawned: the report's time and the summary's last_run
 *        must not be older than the spawn time, else stale_report;
 *                                                            by = spawned_run
 *      - no job id and no spawn time: nothing to check;      by = none
 *      A missing summary or report is missing_report.  In all three cases,
 *      a failing exit code (1 or unknown) turns the verdict into
 *      failed_exit, whose reason still says the report was missing, not
 *      this run's or stale: Puppet 7's `puppet apply` writes no summary and
 *      no report when the manifest does not compile, so the files on disk
 *      are the previous run's.
 *   2. The report is this run's:
 *      - no `resources` section in the summary: no_resources (a catalog
 *        that failed to compile, as `puppet agent` records it);
 *      - cached_catalog_status on_failure (or explicitly_requested): the
 *        new catalog was not applied: cached_catalog;
 *      - failed resources (summary failed or failed_to_restart > 0, the
 *        report's failed list, or exit code 4 or 6): failed_resources;
 *      - exit code 1 or unknown: failed_exit;
 *      - changes (exit 2, or changed resources): changed; else ok.
 *
 * Only ok and changed are successes.  reason is one line for people. */
#ifndef CHOIR_VERDICT_H
#define CHOIR_VERDICT_H

#include <stdbool.h>
#include <time.h>

#include <jansson.h>

#define VERDICT_KINDS(X)                                                           \
    X(VERDICT_OK, "ok")                                                            \
    X(VERDICT_CHANGED, "changed")                                                  \
    X(VERDICT_FAILED_EXIT, "failed_exit")                                          \
    X(VERDICT_FAILED_RESOURCES, "failed_resources")                                \
    X(VERDICT_NO_RESOURCES, "no_resources")                                        \
    X(VERDICT_CACHED_CATALOG, "cached_catalog")                                    \
    X(VERDICT_FOREIGN_REPORT, "foreign_report")                                    \
    X(VERDICT_STALE_REPORT, "stale_report")                                        \
    X(VERDICT_MISSING_REPORT, "missing_report")

enum verdict_kind {
#define VERDICT_ENUM(name, text) name,
    VERDICT_KINDS(VERDICT_ENUM)
#undef VERDICT_ENUM
};

#define VERDICT_CORRELATIONS(X)                                                    \
    X(VERDICT_BY_JOB_ID, "job_id")                                                 \
    X(VERDICT_BY_SPAWNED_RUN, "spawned_run")                                       \
    X(VERDICT_BY_NONE, "none")

enum verdict_correlation {
#define VERDICT_ENUM(name, text) name,
    VERDICT_CORRELATIONS(VERDICT_ENUM)
#undef VERDICT_ENUM
};

#define VERDICT_REASON_MAX 640

/* What choird knows about the run it spawned. */
struct verdict_run {
    int exit_code;      /* the child's exit status, -1 when killed */
    const char *job_id; /* NULL where Puppet cannot carry one */
    time_t started;     /* when choird spawned it, 0 = unknown */
};

struct verdict {
    enum verdict_kind kind;
    enum verdict_correlation by;
    bool own_report;    /* the summary and report are this run's */
    char reason[VERDICT_REASON_MAX];
};

const char *verdict_name(enum verdict_kind k);
const char *verdict_correlation_name(enum verdict_correlation c);

/* Parses a verdict name; 0 or -1 when unknown. */
int verdict_parse(const char *name, enum verdict_kind *k);

/* True for ok and changed. */
bool verdict_success(enum verdict_kind k);

void verdict_decide(const struct verdict_run *run, const json_t *summary, const json_t *report,
                    struct verdict *out);

/* {"verdict": name, "success": bool, "correlation": name, "reason": text} */
json_t *verdict_json(const struct verdict *v);

#endif
