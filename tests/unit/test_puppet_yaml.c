/* test_puppet_yaml.c - the bounded readers of Puppet's summary and report:
 * real files (tests/data/), malformed YAML with exact messages, limits
 * (file size, nesting, token and string lengths, list caps) and a 50 MB
 * generated report read with bounded memory. */
#include "cmocka_setup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agent/puppet_yaml.h"
#include "core/xalloc.h"

#define DATA CHOIR_SOURCE_DIR "/tests/data/"

/* ASan's quarantine of freed blocks makes RSS meaningless there. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_MEASURED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_MEASURED 0
#endif
#endif
#ifndef RSS_MEASURED
#define RSS_MEASURED 1
#endif
#define NOW 1800000000

static json_t *summary_of(const char *text)
{
    struct choir_error err = {0, ""};
    json_t *j = NULL;

    if (puppet_yaml_summary_text(text, strlen(text), "t.yaml", NULL, NOW, &j, &err) != 0)
        fail_msg("%s", err.msg);
    return j;
}

static json_t *report_of(const char *text, const struct puppet_yaml_limits *l)
{
    struct choir_error err = {0, ""};
    json_t *j = NULL;

    if (puppet_yaml_report_text(text, strlen(text), "r.yaml", l, &j, &err) != 0)
        fail_msg("%s", err.msg);
    return j;
}

/* The error message of a summary read of text. */
static const char *summary_error(const char *text, const struct puppet_yaml_limits *l)
{
    static struct choir_error err;
    json_t *j = NULL;

    memset(&err, 0, sizeof(err));
    assert_int_equal(puppet_yaml_summary_text(text, strlen(text), "t.yaml", l, NOW, &j, &err), -1);
    assert_null(j);
    return err.msg;
}

static json_int_t geti(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    return json_integer_value(v);
}

static const char *gets(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    if (!s)
        fail_msg("%s is not a string", key);
    return s;
}

/* ---- real summaries ----------------------------------------------------------- */

static void test_summary_mcollective_fixture(void **state)
{
    struct choir_error err = {0, ""};
    json_t *s = NULL;
    int errnum = -1;

    (void)state;
    assert_int_equal(puppet_yaml_summary_file(DATA "last_run_summary.mcollective-puppet-agent-fixture.yaml",
                                              NULL, NOW, &s, &err, &errnum), 0);
    assert_int_equal(errnum, 0);
    assert_int_equal(geti(s, "total_resources"), 7);
    assert_int_equal(geti(s, "failed_resources"), 0);
    assert_int_equal(geti(s, "corrected_resources"), 2);
    assert_int_equal(geti(s, "lastrun"), 1347903297);
    assert_int_equal(geti(s, "since_lastrun"), NOW - 1347903297);
    assert_string_equal(gets(s, "config_version"), "1347903296");
    assert_string_equal(gets(s, "puppet_version"), "2.7.17");
    assert_true(json_is_true(json_object_get(s, "resources_present")));
    assert_true(json_real_value(json_object_get(s, "config_retrieval_time")) > 0.0827);
    assert_int_equal(geti(json_object_get(json_object_get(s, "summary"), "resources"), "skipped"), 6);
    assert_int_equal(json_array_size(json_object_get(s, "logs")), 0);
    assert_int_equal(json_object_size(json_object_get(s, "type_distribution")), 0);
    json_decref(s);
}

static void test_summary_puppet6_and_7(void **state)
{
    struct choir_error err = {0, ""};
    json_t *s = NULL;

    (void)state;
    assert_int_equal(puppet_yaml_summary_file(DATA "last_run_summary.theforeman-puppet-6.9.0-fixture.yaml",
                                              NULL, NOW, &s, &err, NULL), 0);
    assert_int_equal(geti(s, "total_resources"), 3902);
    assert_int_equal(geti(s, "lastrun"), 1571832278);
    assert_string_equal(gets(s, "config_version"), "puppet6server1-production-f2b1bf4a994");
    assert_int_equal(json_object_size(json_object_get(json_object_get(s, "summary"), "time")), 42);
    json_decref(s);
    assert_int_equal(puppet_yaml_summary_file(DATA "last_run_summary.puppet-7.23.0-failed.yaml",
                                              NULL, NOW, &s, &err, NULL), 0);
    assert_int_equal(geti(s, "failed_resources"), 1);
    assert_int_equal(geti(s, "changed_resources"), 1);
    assert_int_equal(geti(s, "out_of_sync_resources"), 2);
    assert_int_equal(geti(s, "total_resources"), 9);
    assert_int_equal(geti(s, "lastrun"), 1795563352);
    assert_string_equal(gets(s, "config_version"), "1795563351");
    json_decref(s);
}

static void test_summary_without_resources(void **state)
{
    json_t *s = summary_of("---\nversion:\n  config: \n  puppet: 7.23.0\ntime:\n  last_run: 5\n");

    (void)state;
    assert_false(json_is_true(json_object_get(s, "resources_present")));
    assert_int_equal(geti(s, "failed_resources"), -1);
    assert_int_equal(geti(s, "changed_resources"), -1);
    assert_int_equal(geti(s, "total_resources"), 0);
    assert_int_equal(geti(s, "lastrun"), 5);
    assert_string_equal(gets(s, "config_version"), "");
    json_decref(s);
}

static void test_summary_missing_file(void **state)
{
    struct choir_error err = {0, ""};
    json_t *s = NULL;
    int errnum = 0;

    (void)state;
    assert_int_equal(puppet_yaml_summary_file("/nonexistent/last_run_summary.yaml", NULL, NOW, &s,
                                              &err, &errnum), -1);
    assert_int_equal(errnum, ENOENT);
    assert_string_equal(err.msg, "/nonexistent/last_run_summary.yaml: cannot open: No such file or directory");
}

static void test_malformed(void **state)
{
    (void)state;
    assert_string_equal(summary_error("resources:\n  failed: [1, 2\n", NULL),
                        "t.yaml:3:1: did not find expected ',' or ']' (while parsing a flow sequence at line 2)");
    assert_string_equal(summary_error("time:\n  last_run: 1\n bad: 2\n", NULL),
                        "t.yaml:3:2: did not find expected key (while parsing a block mapping at line 1)");
    assert_string_equal(summary_error("- a\n- b\n", NULL),
                        "t.yaml:1: not a Puppet summary (the document is not a mapping)");
    assert_string_equal(summary_error("", NULL), "t.yaml: empty file, not a Puppet summary");
    assert_string_equal(summary_error("a: \"unterminated\n", NULL),
                        "t.yaml:2:1: found unexpected end of stream (while scanning a quoted scalar at line 1)");
    assert_string_equal(summary_error("a: \xff\xfe\n", NULL),
                        "t.yaml: invalid leading UTF-8 octet at byte 3");
}

/* ---- limits --------------------------------------------------------------------- */

static void test_deep_nesting(void **state)
{
    size_t n = 10 * 1024 * 1024, i;
    char *text = xmalloc(n + 8);

    (void)state;
    memcpy(text, "a: ", 3);
    for (i = 3; i < n; i++)
        text[i] = '[';
    text[n] = '\0';
    assert_string_equal(summary_error(text, NULL), "t.yaml:1: nesting deeper than 64 levels");
    free(text);
    /* 63 levels (the root mapping is the first) pass */
    text = xmalloc(256);
    snprintf(text, 256, "a: %.*s1%.*s\n", 62, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
             62, "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    json_decref(summary_of(text));
    free(text);
}

static void test_huge_strings(void **state)
{
    struct puppet_yaml_limits l;
    size_t n = 100 * 1024, i;
    char *text = xmalloc(n + 200);
    json_t *r, *log;

    (void)state;
    strcpy(text, "status: changed\nlogs:\n- level: notice\n  message: \"");
    i = strlen(text);
    memset(text + i, 'x', n - i);
    strcpy(text + n, "\"\n");
    r = report_of(text, NULL);
    log = json_array_get(json_object_get(r, "logs"), 0);
    assert_int_equal(strlen(gets(log, "message")), PUPPET_YAML_STRING_MAX);
    assert_true(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);
    /* a token over token_max is refused */
    puppet_yaml_limits_default(&l);
    l.token_max = 64 * 1024;
    assert_string_equal(summary_error(text, &l),
                        "t.yaml:4: a YAML token longer than the limit of 65536 bytes");
    free(text);
}

static void test_utf8_cut(void **state)
{
    struct puppet_yaml_limits l;
    json_t *r;

    (void)state;
    puppet_yaml_limits_default(&l);
    l.string_max = 4;
    /* "aé€" is 1 + 2 + 3 bytes: cut to 4 bytes keeps "aé" whole */
    r = report_of("status: \"a\xc3\xa9\xe2\x82\xac\"\n", &l);
    assert_string_equal(gets(r, "status"), "a\xc3\xa9");
    json_decref(r);
}

static void test_aliases_not_expanded(void **state)
{
    json_t *s = summary_of("a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n"
                           "resources:\n  total: 1\n");

    (void)state;
    assert_true(json_is_null(json_array_get(json_object_get(json_object_get(s, "summary"), "c"), 0)));
    assert_int_equal(geti(s, "total_resources"), 1);
    json_decref(s);
}

/* ---- reports --------------------------------------------------------------------- */

static void test_report_mcollective_fixture(void **state)
{
    struct choir_error err = {0, ""};
    json_t *r = NULL, *logs;

    (void)state;
    assert_int_equal(puppet_yaml_report_file(DATA "last_run_report.mcollective-puppet-agent-fixture.yaml",
                                             NULL, &r, &err, NULL), 0);
    logs = json_object_get(r, "logs");
    assert_int_equal(json_array_size(logs), 8);
    assert_string_equal(gets(json_array_get(logs, 0), "level"), "notice");
    assert_string_equal(gets(json_array_get(logs, 1), "message"), "Err level message");
    assert_string_equal(gets(json_array_get(logs, 7), "level"), "emerg");
    assert_string_equal(gets(json_array_get(logs, 7), "time"), "2013-09-03 14:00:41.473620 +00:00");
    assert_true(json_is_null(json_object_get(r, "job_id")));
    assert_true(json_is_null(json_object_get(r, "status")));
    assert_false(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);
}

static void test_report_puppet7_failed(void **state)
{
    struct choir_error err = {0, ""};
    json_t *r = NULL, *failed, *ev;

    (void)state;
    assert_int_equal(puppet_yaml_report_file(DATA "last_run_report.puppet-7.23.0-failed.yaml", NULL,
                                             &r, &err, NULL), 0);
    assert_string_equal(gets(r, "status"), "failed");
    assert_string_equal(gets(r, "transaction_uuid"), "8133b0c6-cfcd-4b1b-8df6-28821af9a1ab");
    assert_string_equal(gets(r, "cached_catalog_status"), "not_used");
    assert_string_equal(gets(r, "puppet_version"), "7.23.0");
    assert_string_equal(gets(r, "configuration_version"), "1795563351");
    assert_int_equal(geti(r, "time_epoch"), 1795563352);
    assert_true(json_is_false(json_object_get(r, "noop")));
    assert_int_equal(geti(r, "failed_count"), 1);
    assert_int_equal(geti(r, "changed_count"), 1);
    assert_int_equal(geti(r, "resources_total"), 9);
    assert_int_equal(geti(json_object_get(r, "type_distribution"), "Schedule"), 6);
    failed = json_array_get(json_object_get(r, "failed_resources"), 0);
    assert_string_equal(gets(failed, "resource"), "Exec[boom]");
    assert_string_equal(gets(failed, "type"), "Exec");
    ev = json_array_get(json_object_get(failed, "events"), 0);
    assert_string_equal(gets(ev, "status"), "failure");
    assert_string_equal(gets(ev, "property"), "returns");
    assert_string_equal(gets(ev, "previous_value"), "notrun");
    assert_string_equal(json_string_value(json_array_get(json_object_get(ev, "desired_value"), 0)), "0");
    assert_int_equal(json_array_size(json_object_get(r, "logs")), 4);
    assert_true(json_real_value(json_object_get(json_object_get(json_object_get(r, "metrics"), "time"),
                                                "config_retrieval")) > 0.3);
    json_decref(r);
}

static void test_report_caps(void **state)
{
    struct puppet_yaml_limits l;
    size_t i, cap = 64 * 1024, used = 0;
    char *text = xmalloc(cap);
    json_t *r;

    (void)state;
    used += (size_t)snprintf(text + used, cap - used, "--- !ruby/object:Puppet::Transaction::Report\nlogs:\n");
    for (i = 0; i < 30; i++)
        used += (size_t)snprintf(text + used, cap - used,
                                 "- !ruby/object:Puppet::Util::Log\n  level: !ruby/sym err\n  message: m%zu\n", i);
    used += (size_t)snprintf(text + used, cap - used, "resource_statuses:\n");
    for (i = 0; i < 30; i++)
        used += (size_t)snprintf(text + used, cap - used,
                                 "  File[/f%zu]:\n    resource_type: File\n    failed: true\n    events:\n"
                                 "    - {status: failure}\n    - {status: failure}\n    - {status: failure}\n", i);
    puppet_yaml_limits_default(&l);
    l.logs_max = 10;
    l.resources_max = 5;
    l.events_max = 2;
    r = report_of(text, &l);
    assert_int_equal(json_array_size(json_object_get(r, "logs")), 10);
    assert_int_equal(geti(r, "logs_total"), 30);
    assert_true(json_is_true(json_object_get(r, "logs_truncated")));
    assert_string_equal(gets(json_array_get(json_object_get(r, "logs"), 9), "message"), "m9");
    assert_int_equal(json_array_size(json_object_get(r, "failed_resources")), 5);
    assert_int_equal(geti(r, "failed_count"), 30);
    assert_true(json_is_true(json_object_get(r, "resources_truncated")));
    assert_int_equal(json_array_size(json_object_get(json_array_get(json_object_get(r, "failed_resources"), 0),
                                                     "events")), 2);
    assert_true(json_is_true(json_object_get(json_array_get(json_object_get(r, "failed_resources"), 0),
                                             "events_truncated")));
    assert_true(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);
    free(text);
}

static void test_report_time(void **state)
{
    (void)state;
    assert_int_equal(puppet_yaml_time("2026-11-24T23:35:52.165963369+00:00"), 1795563352);
    assert_int_equal(puppet_yaml_time("2013-09-03 14:00:41.473620 +00:00"), 1378216841);
    assert_int_equal(puppet_yaml_time("2013-09-03 16:00:41 +02:00"), 1378216841);
    assert_int_equal(puppet_yaml_time("2013-09-03T14:00:41Z"), 1378216841);
    assert_int_equal(puppet_yaml_time("2013-09-03"), 0);
    assert_int_equal(puppet_yaml_time("yesterday"), 0);
    assert_int_equal(puppet_yaml_time("2013-13-03T14:00:41Z"), 0);
}

/* ---- a 50 MB report ---------------------------------------------------------------- */

#define BIG_BYTES (50L * 1024 * 1024)

/* Writes a report of about BIG_BYTES: many logs, then many resources. */
static void write_big_report(const char *path)
{
    FILE *f = fopen(path, "w");
    long i;

    assert_non_null(f);
    fputs("--- !ruby/object:Puppet::Transaction::Report\nstatus: failed\njob_id: big\nlogs:\n", f);
    for (i = 0; ftell(f) < BIG_BYTES / 2; i++)
        fprintf(f, "- level: !ruby/sym notice\n  message: 'log line %ld of a very chatty run, padded "
                   "to look like a real Puppet message about a file'\n  source: Puppet\n  time: "
                   "'2026-11-24T23:35:52.165963369+00:00'\n", i);
    fputs("resource_statuses:\n", f);
    for (i = 0; ftell(f) < BIG_BYTES; i++)
        fprintf(f, "  File[/srv/f%ld]:\n    title: /srv/f%ld\n    resource: File[/srv/f%ld]\n"
                   "    resource_type: File\n    failed: %s\n    changed: true\n    events:\n"
                   "    - property: ensure\n      previous_value: absent\n      desired_value: file\n"
                   "      status: success\n      message: defined content\n",
                i, i, i, i % 7 ? "false" : "true");
    fputs("cached_catalog_status: not_used\n", f);
    fclose(f);
}

static long max_rss_kb(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void test_big_report(void **state)
{
    char path[] = "/tmp/choir-bigreport.XXXXXX";
    struct puppet_yaml_limits l;
    struct choir_error err = {0, ""};
    json_t *r = NULL;
    long before;
    int fd = mkstemp(path), errnum = 0;

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    write_big_report(path);
    puppet_yaml_limits_default(&l);
    l.file_max = 16 * 1024 * 1024;
    assert_int_equal(puppet_yaml_report_file(path, &l, &r, &err, &errnum), -1);
    assert_int_equal(errnum, EFBIG);
    assert_non_null(strstr(err.msg, "bytes is over the limit of 16777216 bytes"));
    before = max_rss_kb();
    assert_int_equal(puppet_yaml_report_file(path, NULL, &r, &err, NULL), 0);
    print_message("50 MB report: peak RSS grew by %ld kB\n", max_rss_kb() - before);
    if (RSS_MEASURED)
        assert_true(max_rss_kb() - before < 32 * 1024);
    assert_int_equal(json_array_size(json_object_get(r, "logs")), PUPPET_YAML_LOGS_MAX);
    assert_true(geti(r, "logs_total") > 100000);
    assert_int_equal(json_array_size(json_object_get(r, "changed_resources")), PUPPET_YAML_RESOURCES_MAX);
    assert_int_equal(json_array_size(json_object_get(r, "failed_resources")), PUPPET_YAML_RESOURCES_MAX);
    assert_true(json_is_true(json_object_get(r, "truncated")));
    assert_string_equal(gets(r, "job_id"), "big");
    assert_string_equal(gets(r, "cached_catalog_status"), "not_used");
    json_decref(r);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_big_report), /* first: its peak RSS is measured */
        cmocka_unit_test(test_summary_mcollective_fixture),
        cmocka_unit_test(test_summary_puppet6_and_7),
        cmocka_unit_test(test_summary_without_resources),
        cmocka_unit_test(test_summary_missing_file),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_huge_strings),
        cmocka_unit_test(test_utf8_cut),
        cmocka_unit_test(test_aliases_not_expanded),
        cmocka_unit_test(test_report_mcollective_fixture),
        cmocka_unit_test(test_report_puppet7_failed),
        cmocka_unit_test(test_report_caps),
        cmocka_unit_test(test_report_time),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
