/* runner.h - a node's Puppet runs as signed run events: runonce starts a
 * run (run.h), and while it goes the runner streams its output, then
 * judges it (verdict.h) and sends the finished event (docs/protocol.md
 * §11).
 *
 * Contract:
 * - runner_runonce is the `puppet` agent's runonce (agent_runonce_fn):
 *   inputs already checked; job_id given or made up (32 hex); the command
 *   comes from the run.command template (runcmd.h).  It answers with
 *   summary, initiated_at, job_id, run_id and command, after the started
 *   event went out.
 * - runner_tick is called from choird's loop; it returns how many ms it
 *   wants to wait at most before the next tick (-1: nothing going).  It
 *   publishes output events (runevents.h limits, rate = run.output_rate)
 *   and, once the run ended, one finished event.  Every event carries
 *   "event", "job_id", "run_id", "seq" (1, 2, ... per run; an adopted
 *   run goes on from 1 with "adopted": true) and "time" (ms since the
 *   epoch).
 * - A finished event that could not be published is tried again on every
 *   tick, also after a choird restart (run.h keeps it unreported), and
 *   never sent twice once it went out.
 * - The finished event: exit_code, signal, duration_ms, output_lines,
 *   output_skipped, adopted, lost (why the end is unknown, or absent),
 *   verdict (verdict_json), summary (figures of last_run_summary.yaml, or
 *   null), report (identity of last_run_report.yaml: job_id,
 *   transaction_uuid, status, cached_catalog_status, noop, time_epoch,
 *   environment, puppet_version; or null), both null when the files on
 *   disk are not this run's (an earlier run's, another job's), failed (up to
 *   RUNNER_FAILED_MAX failed resource names), and summary_error /
 *   report_error when a file could not be read. */
#ifndef CHOIR_RUNNER_H
#define CHOIR_RUNNER_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "agent/puppet_paths.h"
#include "core/error.h"

#define RUNNER_FAILED_MAX 20
#define RUNNER_DEFAULT_RATE 2000     /* output lines per second */

/* Sends one event; 0 when it was handed to the bus. */
typedef int runner_publish_fn(void *ctx, const char *run_id, const char *job_id,
                              const json_t *event, struct choir_error *err);
typedef void runner_log_fn(void *ctx, const char *line);

struct runner_config {
    const struct puppet_paths *paths;
    const char *state_dir;
    const char *command;              /* the run.command template */
    size_t rate;                      /* 0: RUNNER_DEFAULT_RATE */
    runner_publish_fn *publish;
    runner_log_fn *log;               /* NULL: silent */
    void *ctx;
};

struct runner;

/* Opens the state directory and adopts a run an earlier choird left. */
int runner_open(struct runner **out, const struct runner_config *cfg, struct choir_error *err);
void runner_free(struct runner *r);

int runner_runonce(void *runner, json_t *in, json_t *out, char *msg, size_t n);
/* The job id of the run going, or NULL (agent_running_fn). */
const char *runner_running(void *runner);
long runner_tick(struct runner *r);

/* The finished event's judgement part, shared with simulated nodes:
 * fields verdict, summary, report, failed (and *_error) of a run with
 * exit_code, job_id, started (seconds), judged from the files. */
void runner_judge(const struct puppet_paths *paths, int exit_code, const char *job_id,
                  time_t started, json_t *event);

#endif
