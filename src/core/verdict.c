/* verdict.c - see verdict.h. */
#include "core/verdict.h"

#include <stdio.h>
#include <string.h>

static const char *const kind_names[] = {
#define VERDICT_NAME(name, text) text,
    VERDICT_KINDS(VERDICT_NAME)
#undef VERDICT_NAME
};

static const char *const correlation_names[] = {
#define VERDICT_NAME(name, text) text,
    VERDICT_CORRELATIONS(VERDICT_NAME)
#undef VERDICT_NAME
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *verdict_name(enum verdict_kind k)
{
    return (size_t)k < COUNT(kind_names) ? kind_names[k] : "unknown";
}

const char *verdict_correlation_name(enum verdict_correlation c)
{
    return (size_t)c < COUNT(correlation_names) ? correlation_names[c] : "unknown";
}

int verdict_parse(const char *name, enum verdict_kind *k)
{
    size_t i;

    for (i = 0; name && i < COUNT(kind_names); i++)
        if (!strcmp(name, kind_names[i])) {
            *k = (enum verdict_kind)i;
            return 0;
        }
    return -1;
}

bool verdict_success(enum verdict_kind k)
{
    return k == VERDICT_OK || k == VERDICT_CHANGED;
}

/* ---- facts ------------------------------------------------------------------ */

static bool exit_failed(int code)
{
    return code != 0 && code != 2 && code != 4 && code != 6;
}

static const char *exit_meaning(int code)
{
    switch (code) {
    case 0: return "no changes";
    case 2: return "changes";
    case 4: return "failures";
    case 6: return "changes and failures";
    case 1: return "the run failed";
    case -1: return "killed";
    default: return "not a detailed exit code";
    }
}

static long long num(const json_t *o, const char *key, long long dflt)
{
    const json_t *v = json_object_get(o, key);

    double d;

    if (json_is_integer(v))
        return (long long)json_integer_value(v);
    if (!json_is_real(v))
        return dflt;
    d = json_real_value(v); /* clamped: casting a huge double is undefined */
    return d >= 9e18 ? (long long)9e18 : d <= -9e18 ? (long long)-9e18 : (long long)d;
}

static const char *text(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Sets the verdict and its reason: "<what>; exit N (meaning); <how matched>". */
static void decide(struct verdict *v, const struct verdict_run *run, const char *how,
                   enum verdict_kind kind, const char *what)
{
    char *c;

    v->kind = kind;
    snprintf(v->reason, sizeof(v->reason), "%s; exit %d (%s); %s", what, run->exit_code,
             exit_meaning(run->exit_code), how);
    for (c = v->reason; *c; c++) /* job ids come from the report: one line, ASCII */
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
}

/* ---- correlation ------------------------------------------------------------- */

/* Checks whose report it is.  Returns true when it is this run's; else
 * fills why and *kind (missing, foreign or stale). */
static bool correlate(const struct verdict_run *run, const json_t *summary, const json_t *report,
                      struct verdict *v, char *how, size_t n, char *why, size_t wn,
                      enum verdict_kind *kind)
{
    const char *got = text(report, "job_id");
    long long rtime = num(report, "time_epoch", 0), last = num(summary, "lastrun", 0);

    if (run->job_id && got) {
        v->by = VERDICT_BY_JOB_ID;
        snprintf(how, n, "matched by job_id %.64s", run->job_id);
    } else if (run->started > 0) {
        v->by = VERDICT_BY_SPAWNED_RUN;
        snprintf(how, n, "matched as the run choird spawned at %lld%s", (long long)run->started,
                 run->job_id ? " (the report carries no job_id)" : "");
    } else {
        v->by = VERDICT_BY_NONE;
        snprintf(how, n, "not correlated (no job id, no spawn time)");
    }
    *kind = VERDICT_MISSING_REPORT;
    if (!summary || !report) {
        snprintf(why, wn, "no %s%s%s for this run", !summary ? "summary" : "",
                 !summary && !report ? " and no " : "", !report ? "report" : "");
        return false;
    }
    if (v->by == VERDICT_BY_JOB_ID && strcmp(got, run->job_id) != 0) {
        *kind = VERDICT_FOREIGN_REPORT;
        snprintf(why, wn, "the report is job %.64s's, not %.64s's", got, run->job_id);
        return false;
    }
    if (v->by == VERDICT_BY_SPAWNED_RUN && (rtime < run->started || last < run->started)) {
        *kind = VERDICT_STALE_REPORT;
        snprintf(why, wn, "the %s (%lld) is older than the run (started %lld)",
                 rtime < run->started ? "report" : "summary",
                 rtime < run->started ? rtime : last, (long long)run->started);
        return false;
    }
    return true;
}

/* ---- the rules ------------------------------------------------------------------ */

/* The rule that applies to the run's own report: its kind, what in words. */
static enum verdict_kind own_kind(const struct verdict_run *run, const json_t *summary,
                                  const json_t *report, char *what, size_t n)
{
    const char *cached = text(report, "cached_catalog_status");
    long long failed = num(summary, "failed_resources", 0) +
                       num(summary, "failed_to_restart_resources", 0);
    long long reported = num(report, "failed_count", 0);
    long long changed = num(summary, "changed_resources", 0);
    long long total = num(summary, "total_resources", 0);

    if (!json_is_true(json_object_get(summary, "resources_present"))) {
        snprintf(what, n, "the summary has no resources section (the catalog did not compile)");
        return VERDICT_NO_RESOURCES;
    }
    if (cached && (!strcmp(cached, "on_failure") || !strcmp(cached, "explicitly_requested"))) {
        snprintf(what, n, "a cached catalog was applied (cached_catalog_status: %.32s)", cached);
        return VERDICT_CACHED_CATALOG;
    }
    if (failed > 0 || reported > 0 || run->exit_code == 4 || run->exit_code == 6) {
        snprintf(what, n, "%lld of %lld resources failed", failed > reported ? failed : reported,
                 total);
        return VERDICT_FAILED_RESOURCES;
    }
    if (exit_failed(run->exit_code)) {
        snprintf(what, n, "Puppet reported the run as failed");
        return VERDICT_FAILED_EXIT;
    }
    if (run->exit_code == 2 || changed > 0) {
        snprintf(what, n, "%lld of %lld resources changed", changed, total);
        return VERDICT_CHANGED;
    }
    snprintf(what, n, "no changes, %lld resources in sync", total);
    return VERDICT_OK;
}

void verdict_decide(const struct verdict_run *run, const json_t *summary, const json_t *report,
                    struct verdict *out)
{
    char how[160], why[256], what[320];
    enum verdict_kind kind;

    memset(out, 0, sizeof(*out));
    if (correlate(run, summary, report, out, how, sizeof(how), why, sizeof(why), &kind)) {
        kind = own_kind(run, summary, report, what, sizeof(what));
        out->own_report = true;
    } else if (exit_failed(run->exit_code)) {
        kind = VERDICT_FAILED_EXIT;
        snprintf(what, sizeof(what), "the run failed and %s", why);
    } else {
        snprintf(what, sizeof(what), "%s", why);
    }
    decide(out, run, how, kind, what);
}

json_t *verdict_json(const struct verdict *v)
{
    return json_pack("{s:s, s:b, s:s, s:s}", "verdict", verdict_name(v->kind), "success",
                     verdict_success(v->kind), "correlation", verdict_correlation_name(v->by),
                     "reason", v->reason);
}
