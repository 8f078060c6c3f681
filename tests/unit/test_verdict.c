/* test_verdict.c - the success rules (src/core/verdict.h) over real
 * Puppet 7.23 summaries and reports (tests/data/) and variants made by
 * editing copies of them: failed resources, no resources section, a cached
 * catalog, another job's report, a stale report, a missing report. */
#include "cmocka_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/puppet_yaml.h"
#include "core/verdict.h"
#include "core/file.h"
#include "core/xalloc.h"

#define DATA CHOIR_SOURCE_DIR "/tests/data/"
#define CLEAN_TIME 1795563349   /* the clean run's last_run and report time */
#define FAILED_TIME 1795563352

/* The text of a data file with every `from` replaced by `to` (from NULL:
 * unchanged; to may be longer). */
static char *data_edit(const char *name, const char *from, const char *to)
{
    char path[512], *buf, *out, *p;
    size_t len, cap;

    snprintf(path, sizeof(path), DATA "%s", name);
    assert_int_equal(file_read(path, 1 << 20, &buf, &len), 0);
    if (!from)
        return buf;
    cap = len * 2 + strlen(to) * 8 + 1;
    out = xmalloc(cap);
    out[0] = '\0';
    for (p = buf; *p;) {
        char *hit = strstr(p, from);

        if (!hit) {
            strcat(out, p);
            break;
        }
        strncat(out, p, (size_t)(hit - p));
        strcat(out, to);
        p = hit + strlen(from);
    }
    free(buf);
    return out;
}

static json_t *summary_text(char *text)
{
    struct choir_error err = {0, ""};
    json_t *j = NULL;

    if (puppet_yaml_summary_text(text, strlen(text), "s.yaml", NULL, FAILED_TIME, &j, &err))
        fail_msg("%s", err.msg);
    free(text);
    return j;
}

static json_t *report_text(char *text)
{
    struct choir_error err = {0, ""};
    json_t *j = NULL;

    if (puppet_yaml_report_text(text, strlen(text), "r.yaml", NULL, &j, &err))
        fail_msg("%s", err.msg);
    free(text);
    return j;
}

/* Decides over the named files (after one edit of each) and checks kind. */
static struct verdict judge(json_t *summary, json_t *report, int exit_code, const char *job,
                            time_t started, enum verdict_kind want)
{
    struct verdict_run run = {exit_code, job, started};
    struct verdict v;

    verdict_decide(&run, summary, report, &v);
    if (v.kind != want)
        fail_msg("got %s (%s), want %s", verdict_name(v.kind), v.reason, verdict_name(want));
    json_decref(summary);
    json_decref(report);
    return v;
}

static json_t *clean_summary(void)
{
    return summary_text(data_edit("last_run_summary.puppet-7.23.0-clean.yaml", NULL, NULL));
}

static json_t *clean_report(void)
{
    return report_text(data_edit("last_run_report.puppet-7.23.0-clean.yaml", NULL, NULL));
}

static void test_real_runs(void **state)
{
    struct verdict v;

    (void)state;
    v = judge(clean_summary(), clean_report(), 0, NULL, CLEAN_TIME - 5, VERDICT_OK);
    assert_int_equal(v.by, VERDICT_BY_SPAWNED_RUN);
    assert_string_equal(v.reason, "no changes, 8 resources in sync; exit 0 (no changes); "
                                  "matched as the run choird spawned at 1795563344");
    v = judge(summary_text(data_edit("last_run_summary.puppet-7.23.0-changed.yaml", NULL, NULL)),
              report_text(data_edit("last_run_report.puppet-7.23.0-changed.yaml", NULL, NULL)), 2,
              NULL, 0, VERDICT_CHANGED);
    assert_int_equal(v.by, VERDICT_BY_NONE);
    v = judge(summary_text(data_edit("last_run_summary.puppet-7.23.0-failed.yaml", NULL, NULL)),
              report_text(data_edit("last_run_report.puppet-7.23.0-failed.yaml", NULL, NULL)), 6,
              NULL, FAILED_TIME, VERDICT_FAILED_RESOURCES);
    assert_string_equal(v.reason, "1 of 9 resources failed; exit 6 (changes and failures); "
                                  "matched as the run choird spawned at 1795563352");
}

static void test_exit_codes(void **state)
{
    (void)state;
    judge(clean_summary(), clean_report(), 1, NULL, 0, VERDICT_FAILED_EXIT);
    judge(clean_summary(), clean_report(), -1, NULL, 0, VERDICT_FAILED_EXIT);
    judge(clean_summary(), clean_report(), 137, NULL, 0, VERDICT_FAILED_EXIT);
    /* exit 4 says failures even when the files do not */
    judge(clean_summary(), clean_report(), 4, NULL, 0, VERDICT_FAILED_RESOURCES);
    judge(clean_summary(), clean_report(), 2, NULL, 0, VERDICT_CHANGED);
}

static void test_failed_resources_edited(void **state)
{
    (void)state;
    /* the summary alone says a resource failed (exit code 0 notwithstanding) */
    judge(summary_text(data_edit("last_run_summary.puppet-7.23.0-clean.yaml", "  failed: 0",
                                 "  failed: 3")),
          clean_report(), 0, NULL, 0, VERDICT_FAILED_RESOURCES);
    judge(summary_text(data_edit("last_run_summary.puppet-7.23.0-clean.yaml",
                                 "  failed_to_restart: 0", "  failed_to_restart: 1")),
          clean_report(), 0, NULL, 0, VERDICT_FAILED_RESOURCES);
    /* the report alone lists one */
    judge(clean_summary(),
          report_text(data_edit("last_run_report.puppet-7.23.0-clean.yaml", "    failed: false",
                                "    failed: true")),
          0, NULL, 0, VERDICT_FAILED_RESOURCES);
}

static void test_no_resources(void **state)
{
    char *text = data_edit("last_run_summary.puppet-7.23.0-clean.yaml", "resources:", "ignored:");
    struct verdict v;

    (void)state;
    v = judge(summary_text(text), clean_report(), 1, NULL, 0, VERDICT_NO_RESOURCES);
    assert_non_null(strstr(v.reason, "no resources section (the catalog did not compile)"));
    /* an agent compile failure writes the summary with only version and time */
    judge(summary_text(xstrdup("---\nversion:\n  config:\n  puppet: 7.23.0\ntime:\n  last_run: 1795563349\n")),
          clean_report(), 1, NULL, 0, VERDICT_NO_RESOURCES);
}

static void test_cached_catalog(void **state)
{
    struct verdict v;

    (void)state;
    v = judge(clean_summary(),
              report_text(data_edit("last_run_report.puppet-7.23.0-clean.yaml",
                                    "cached_catalog_status: not_used",
                                    "cached_catalog_status: on_failure")),
              0, NULL, 0, VERDICT_CACHED_CATALOG);
    assert_non_null(strstr(v.reason, "cached_catalog_status: on_failure"));
    judge(clean_summary(),
          report_text(data_edit("last_run_report.puppet-7.23.0-clean.yaml",
                                "cached_catalog_status: not_used",
                                "cached_catalog_status: explicitly_requested")),
          0, NULL, 0, VERDICT_CACHED_CATALOG);
}

static json_t *report_with_job(const char *job)
{
    char line[128];

    snprintf(line, sizeof(line), "status: unchanged\njob_id: %s\n", job);
    return report_text(data_edit("last_run_report.puppet-7.23.0-clean.yaml", "status: unchanged\n", line));
}

static void test_job_id(void **state)
{
    struct verdict v;

    (void)state;
    v = judge(clean_summary(), report_with_job("job-42"), 0, "job-42", 0, VERDICT_OK);
    assert_int_equal(v.by, VERDICT_BY_JOB_ID);
    assert_non_null(strstr(v.reason, "matched by job_id job-42"));
    v = judge(clean_summary(), report_with_job("job-41"), 0, "job-42", CLEAN_TIME - 5,
              VERDICT_FOREIGN_REPORT);
    assert_string_equal(v.reason, "the report is job job-41's, not job-42's; exit 0 (no changes); "
                                  "matched by job_id job-42");
    /* a report without job_id (puppet apply, Puppet 4): time correlation */
    v = judge(clean_summary(), clean_report(), 0, "job-42", CLEAN_TIME, VERDICT_OK);
    assert_int_equal(v.by, VERDICT_BY_SPAWNED_RUN);
    assert_non_null(strstr(v.reason, "(the report carries no job_id)"));
    /* a failing run with another job's report: the exit code decides */
    judge(clean_summary(), report_with_job("job-41"), 1, "job-42", 0, VERDICT_FAILED_EXIT);
}

static void test_stale_and_missing(void **state)
{
    struct verdict v;

    (void)state;
    v = judge(clean_summary(), clean_report(), 0, NULL, CLEAN_TIME + 1, VERDICT_STALE_REPORT);
    assert_string_equal(v.reason, "the report (1795563349) is older than the run (started 1795563350); "
                                  "exit 0 (no changes); matched as the run choird spawned at 1795563350");
    /* puppet apply of a manifest that does not compile: exit 1, old files */
    v = judge(clean_summary(), clean_report(), 1, NULL, CLEAN_TIME + 60, VERDICT_FAILED_EXIT);
    assert_non_null(strstr(v.reason, "the run failed and the report (1795563349) is older"));
    v = judge(NULL, clean_report(), 0, NULL, 0, VERDICT_MISSING_REPORT);
    assert_non_null(strstr(v.reason, "no summary for this run"));
    v = judge(NULL, NULL, 2, NULL, 0, VERDICT_MISSING_REPORT);
    assert_non_null(strstr(v.reason, "no summary and no report for this run"));
    judge(clean_summary(), NULL, 1, NULL, 0, VERDICT_FAILED_EXIT);
}

static void test_names(void **state)
{
    enum verdict_kind k;
    struct verdict v = {VERDICT_NO_RESOURCES, VERDICT_BY_JOB_ID, true, "why"};
    json_t *j = verdict_json(&v);

    (void)state;
    assert_string_equal(verdict_name(VERDICT_STALE_REPORT), "stale_report");
    assert_string_equal(verdict_correlation_name(VERDICT_BY_SPAWNED_RUN), "spawned_run");
    assert_int_equal(verdict_parse("cached_catalog", &k), 0);
    assert_int_equal(k, VERDICT_CACHED_CATALOG);
    assert_int_equal(verdict_parse("nope", &k), -1);
    assert_true(verdict_success(VERDICT_CHANGED));
    assert_false(verdict_success(VERDICT_FOREIGN_REPORT));
    assert_string_equal(json_string_value(json_object_get(j, "verdict")), "no_resources");
    assert_true(json_is_false(json_object_get(j, "success")));
    assert_string_equal(json_string_value(json_object_get(j, "correlation")), "job_id");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_runs),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_failed_resources_edited),
        cmocka_unit_test(test_no_resources),
        cmocka_unit_test(test_cached_catalog),
        cmocka_unit_test(test_job_id),
        cmocka_unit_test(test_stale_and_missing),
        cmocka_unit_test(test_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
