/* runner.c - see runner.h. */
#include "agent/runner.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/puppet_state.h"
#include "agent/puppet_yaml.h"
#include "agent/run.h"
#include "agent/runcmd.h"
#include "agent/runevents.h"
#include "core/clock.h"
#include "core/verdict.h"
#include "core/xalloc.h"

#define RUNNER_TICK_MS 25    /* how often a going run is looked at */

struct runner {
    struct runner_config cfg;
    struct run_mgr *runs;
    struct runevents *out;
    unsigned long seq;
    json_t *finished;         /* built once the run ended, until published */
    int publish_failed;       /* the last publish failed: log once */
};

__attribute__((format(printf, 2, 3)))
static void runner_log(struct runner *r, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (!r->cfg.log)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    r->cfg.log(r->cfg.ctx, line);
}

static void runner_new_stream(struct runner *r)
{
    struct runevents_limits lim;

    runevents_limits_default(&lim);
    lim.rate_lines = r->cfg.rate;
    runevents_free(r->out);
    r->out = runevents_new(&lim);
    r->seq = 0;
}

/* Adds the common fields and publishes; 0 on success. */
static int runner_send(struct runner *r, const char *kind, json_t *event)
{
    const struct run_info *i = run_mgr_info(r->runs);
    struct choir_error err = {0};
    int rc;

    json_object_set_new(event, "event", json_string(kind));
    json_object_set_new(event, "job_id", json_string(i->job_id));
    json_object_set_new(event, "run_id", json_string(i->run_id));
    json_object_set_new(event, "seq", json_integer((json_int_t)++r->seq));
    json_object_set_new(event, "time", json_integer(clock_wall_ms()));
    if (i->adopted)
        json_object_set_new(event, "adopted", json_true());
    rc = r->cfg.publish(r->cfg.ctx, i->run_id, i->job_id, event, &err);
    if (rc != 0 && !r->publish_failed)
        runner_log(r, "could not publish the %s event of job %s: %s", kind, i->job_id, err.msg);
    r->publish_failed = rc != 0;
    return rc;
}

int runner_open(struct runner **out, const struct runner_config *cfg, struct choir_error *err)
{
    struct runner *r = xcalloc(1, sizeof(*r));
    const struct run_info *i;
    char why[256];

    r->cfg = *cfg;
    if (!r->cfg.rate)
        r->cfg.rate = RUNNER_DEFAULT_RATE;
    if (runcmd_check_template(cfg->command, why, sizeof(why)) < 0) {
        error_set(err, CHOIR_EXIT_INPUT, "run.command: %s", why);
        free(r);
        *out = NULL;
        return -1;
    }
    if (run_mgr_open(&r->runs, cfg->state_dir, err) < 0) {
        free(r);
        *out = NULL;
        return -1;
    }
    runner_new_stream(r);
    i = run_mgr_info(r->runs);
    if (i && i->adopted)
        runner_log(r, "adopted the run of job %s (keeper pid %ld)", i->job_id,
                   (long)i->keeper);
    *out = r;
    return 0;
}

void runner_free(struct runner *r)
{
    if (!r)
        return;
    run_mgr_free(r->runs);
    runevents_free(r->out);
    json_decref(r->finished);
    free(r);
}

const char *runner_running(void *runner)
{
    struct runner *r = runner;

    return run_mgr_busy(r->runs) ? run_mgr_info(r->runs)->job_id : NULL;
}

/* ---- runonce --------------------------------------------------------------- */

static int runner_job_id(json_t *in, char *job, size_t size, char *msg, size_t n)
{
    const char *given = json_string_value(json_object_get(in, "job_id"));
    struct choir_error err = {0};
    char made[WIRE_REQUESTID_LEN + 1];

    if (given) {
        snprintf(job, size, "%s", given);
        return 0;
    }
    if (wire_requestid_new(made, &err) < 0) {
        snprintf(msg, n, "Could not make a job id: %s", err.msg);
        return -1;
    }
    snprintf(job, size, "%s", made);
    return 0;
}

static void runner_started(struct runner *r, json_t *out)
{
    const struct run_info *i = run_mgr_info(r->runs);
    json_t *ev = json_pack("{s:s, s:I, s:b}", "command", i->command, "keeper",
                           (json_int_t)i->keeper, "carries_job_id", i->carries_job_id);

    runner_new_stream(r);
    json_decref(r->finished);
    r->finished = NULL;
    runner_send(r, "started", ev);
    json_decref(ev);
    json_object_set_new(out, "summary", json_sprintf("Started a Puppet run for job %s", i->job_id));
    json_object_set_new(out, "initiated_at", json_integer(i->started_ms / 1000));
    json_object_set_new(out, "job_id", json_string(i->job_id));
    json_object_set_new(out, "run_id", json_string(i->run_id));
    json_object_set_new(out, "command", json_string(i->command));
    runner_log(r, "started job %s: %s", i->job_id, i->command);
}

int runner_runonce(void *runner, json_t *in, json_t *out, char *msg, size_t n)
{
    struct runner *r = runner;
    char job[RUNCMD_JOB_ID_MAX + 1], **argv = NULL;
    struct choir_error err = {0};
    int rc;

    if (run_mgr_busy(r->runs)) {
        snprintf(msg, n, "Run of Puppet configuration client already in progress; skipping "
                 "(job %s started by choird)", run_mgr_info(r->runs)->job_id);
        return AGENT_ABORTED;
    }
    if (run_mgr_unreported(r->runs)) {
        snprintf(msg, n, "The previous run (job %s) is not reported yet; try again shortly",
                 run_mgr_info(r->runs)->job_id);
        return AGENT_ABORTED;
    }
    if (runner_job_id(in, job, sizeof(job), msg, n) < 0)
        return AGENT_UNKNOWN_ERROR;
    if (runcmd_build(r->cfg.command, in, job, &argv, msg, n) < 0)
        return AGENT_INVALID_DATA;
    rc = run_start(r->runs, argv, job, runcmd_carries_job_id(r->cfg.command), &err);
    runcmd_free(argv);
    if (rc < 0) {
        snprintf(msg, n, "Could not start Puppet: %s", err.msg);
        return AGENT_ABORTED;
    }
    runner_started(r, out);
    snprintf(msg, n, "OK");
    return AGENT_OK;
}

/* ---- the finished event -------------------------------------------------------- */

static const char *const runner_summary_keys[] = {
    "total_resources", "changed_resources", "failed_resources", "out_of_sync_resources",
    "corrected_resources", "failed_to_restart_resources", "config_retrieval_time", "total_time",
    "config_version", "lastrun", "resources_present",
};

static const char *const runner_report_keys[] = {
    "job_id", "transaction_uuid", "status", "cached_catalog_status", "noop", "time_epoch",
    "environment", "puppet_version",
};

static json_t *pick(const json_t *from, const char *const *keys, size_t n)
{
    json_t *o = json_object();

    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(from, keys[i]);

        if (v)
            json_object_set(o, keys[i], v);
    }
    return o;
}

static json_t *failed_names(const json_t *report)
{
    json_t *names = json_array(), *res;
    size_t i;

    json_array_foreach(json_object_get(report, "failed_resources"), i, res) {
        if (i >= RUNNER_FAILED_MAX)
            break;
        if (json_is_string(json_object_get(res, "resource")))
            json_array_append(names, json_object_get(res, "resource"));
    }
    return names;
}

void runner_judge(const struct puppet_paths *paths, int exit_code, const char *job_id,
                  time_t started, json_t *event)
{
    struct choir_error serr = {0}, rerr = {0};
    json_t *summary = NULL, *report = NULL;
    struct verdict_run run = {exit_code, job_id, started};
    struct verdict v;
    int errnum;

    if (puppet_yaml_summary_file(paths->lastrunfile, NULL, time(NULL), &summary, &serr,
                                 &errnum) < 0)
        json_object_set_new(event, "summary_error", json_string(serr.msg));
    if (puppet_yaml_report_file(paths->lastrunreport, NULL, &report, &rerr, &errnum) < 0)
        json_object_set_new(event, "report_error", json_string(rerr.msg));
    verdict_decide(&run, summary, report, &v);
    json_object_set_new(event, "verdict", verdict_json(&v));
    if (!v.own_report) { /* the files on disk are an earlier run's: show none of it */
        json_decref(summary);
        json_decref(report);
        summary = report = NULL;
    }
    json_object_set_new(event, "summary",
                        summary ? pick(summary, runner_summary_keys,
                                       sizeof(runner_summary_keys) / sizeof(*runner_summary_keys))
                                : json_null());
    json_object_set_new(event, "report",
                        report ? pick(report, runner_report_keys,
                                      sizeof(runner_report_keys) / sizeof(*runner_report_keys))
                               : json_null());
    json_object_set_new(event, "failed", failed_names(report));
    json_decref(summary);
    json_decref(report);
}

static json_t *runner_finished(struct runner *r)
{
    const struct run_info *i = run_mgr_info(r->runs);
    json_t *ev = json_object();

    json_object_set_new(ev, "exit_code", json_integer(i->exit_code));
    json_object_set_new(ev, "signal", json_integer(i->signal));
    json_object_set_new(ev, "duration_ms", json_integer(i->ended_ms - i->started_ms));
    json_object_set_new(ev, "output_lines", json_integer((json_int_t)runevents_lines(r->out)));
    json_object_set_new(ev, "output_skipped",
                        json_integer((json_int_t)runevents_skipped(r->out)));
    if (i->lost[0])
        json_object_set_new(ev, "lost", json_string(i->lost));
    runner_judge(r->cfg.paths, i->signal ? -1 : i->exit_code, i->job_id,
                 (time_t)(i->started_ms / 1000), ev);
    return ev;
}

/* ---- the loop's tick ------------------------------------------------------------ */

static void runner_flush(struct runner *r, int force)
{
    json_t *ev;

    while ((ev = runevents_take(r->out, clock_mono_ms(), force))) {
        runner_send(r, "output", ev);
        json_decref(ev);
    }
}

/* Output as it is read: a full batch goes out before more is fed. */
static void runner_feed(void *ctx, const char *buf, size_t len)
{
    struct runner *r = ctx;

    while (len > 0) {
        size_t n = runevents_feed_some(r->out, buf, len, clock_mono_ms());

        buf += n;
        len -= n;
        if (len > 0)
            runner_flush(r, 0);
    }
}

static void runner_end(struct runner *r)
{
    const struct run_info *i = run_mgr_info(r->runs);
    struct choir_error err = {0};

    if (!r->finished) {
        runevents_eof(r->out, clock_mono_ms());
        runner_flush(r, 1);
        r->finished = runner_finished(r);
        runner_log(r, "job %s ended: exit code %d, %s", i->job_id, i->exit_code,
                   json_string_value(json_object_get(json_object_get(r->finished, "verdict"),
                                                     "reason")));
    }
    if (runner_send(r, "finished", r->finished) != 0) {
        r->seq--; /* the same event goes again */
        return;
    }
    json_decref(r->finished);
    r->finished = NULL;
    if (run_mgr_mark_reported(r->runs, &err) < 0)
        runner_log(r, "%s", err.msg);
}

long runner_tick(struct runner *r)
{
    enum run_poll p = run_mgr_poll(r->runs, runner_feed, r);
    long due;

    if (p == RUN_IDLE)
        return -1;
    if (p == RUN_ENDED) {
        runner_end(r);
        return run_mgr_unreported(r->runs) ? 1000 : -1;
    }
    runner_flush(r, 0);
    if (p == RUN_MORE)
        return 0;
    due = runevents_due_in(r->out, clock_mono_ms());
    return due >= 0 && due < RUNNER_TICK_MS ? due : RUNNER_TICK_MS;
}
