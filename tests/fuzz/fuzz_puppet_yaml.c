/* fuzz_puppet_yaml.c - libFuzzer target for the Puppet summary and report
 * readers (src/agent/puppet_yaml.h) and the verdict over what they read.
 *
 * Feeds the input to puppet_yaml_summary_text and puppet_yaml_report_text
 * with small limits (so caps and truncation are reached), checks that an
 * error is one line, that an object always serialises (valid UTF-8 only),
 * and runs verdict_decide over the pair. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/puppet_yaml.h"
#include "core/verdict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int rc, json_t *j, const struct choir_error *err)
{
    char *s;

    if (rc != 0) {
        if (j || memchr(err->msg, '\n', strnlen(err->msg, sizeof(err->msg))))
            abort();
        return;
    }
    if (!json_is_object(j) || !(s = json_dumps(j, JSON_COMPACT)))
        abort();
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct puppet_yaml_limits l;
    struct choir_error err = {0, ""};
    struct verdict_run run = {2, "job", 1};
    struct verdict v;
    json_t *summary = NULL, *report = NULL, *vj;
    int rc;

    puppet_yaml_limits_default(&l);
    l.file_max = 1024 * 1024;
    l.token_max = 64 * 1024;
    l.string_max = 256;
    l.depth_max = 16;
    l.logs_max = 4;
    l.resources_max = 4;
    l.events_max = 2;
    rc = puppet_yaml_summary_text((const char *)data, size, "fuzz", &l, 1800000000, &summary, &err);
    check(rc, summary, &err);
    rc = puppet_yaml_report_text((const char *)data, size, "fuzz", &l, &report, &err);
    check(rc, report, &err);
    verdict_decide(&run, summary, report, &v);
    vj = verdict_json(&v);
    if (!vj)
        abort();
    json_decref(vj);
    json_decref(summary);
    json_decref(report);
    return 0;
}
