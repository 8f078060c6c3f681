/* yaml_cli.c - a driver over puppet_yaml and verdict for the e2e tests.
 *
 *   yaml_cli summary FILE            prints the summary object
 *   yaml_cli report FILE             prints the report object
 *   yaml_cli verdict SUMMARY REPORT EXIT [JOB_ID|- [STARTED]]
 *       prints {"summary": ..., "report": ..., "verdict": {...}}; a file
 *       that cannot be read counts as missing (its error goes to stderr).
 *
 * Output is one JSON line on stdout.  Exit 0, or 1 when a summary/report
 * file cannot be read, 2 on usage errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/puppet_yaml.h"
#include "core/verdict.h"

static int usage(void)
{
    fprintf(stderr, "usage: yaml_cli summary FILE | report FILE | "
                    "verdict SUMMARY REPORT EXIT [JOB_ID|- [STARTED]]\n");
    return 2;
}

static int print(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);

    if (!s)
        return 1;
    puts(s);
    free(s);
    return 0;
}

/* Reads one file (report when is_report); NULL with the error on stderr. */
static json_t *load(const char *path, int is_report)
{
    struct choir_error err = {0, ""};
    json_t *j = NULL;
    int rc = is_report ? puppet_yaml_report_file(path, NULL, &j, &err, NULL)
                       : puppet_yaml_summary_file(path, NULL, time(NULL), &j, &err, NULL);

    if (rc < 0)
        fprintf(stderr, "yaml_cli: %s\n", err.msg);
    return j;
}

static int verdict_cmd(int argc, char **argv)
{
    json_t *summary = load(argv[2], 0), *report = load(argv[3], 1), *out;
    struct verdict_run run = {atoi(argv[4]), NULL, 0};
    struct verdict v;
    int rc;

    if (argc > 5 && strcmp(argv[5], "-") != 0)
        run.job_id = argv[5];
    if (argc > 6)
        run.started = (time_t)atoll(argv[6]);
    verdict_decide(&run, summary, report, &v);
    out = json_pack("{s:O?, s:O?, s:o}", "summary", summary, "report", report, "verdict",
                    verdict_json(&v));
    rc = print(out);
    json_decref(out);
    json_decref(summary);
    json_decref(report);
    return rc;
}

int main(int argc, char **argv)
{
    json_t *j;
    int rc;

    if (argc >= 5 && !strcmp(argv[1], "verdict"))
        return verdict_cmd(argc, argv);
    if (argc != 3 || (strcmp(argv[1], "summary") && strcmp(argv[1], "report")))
        return usage();
    if (!(j = load(argv[2], !strcmp(argv[1], "report"))))
        return 1;
    rc = print(j);
    json_decref(j);
    return rc;
}
