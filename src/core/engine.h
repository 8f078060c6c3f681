/* engine.h - the job engine: a core thread that runs a job (job.h) over
 * the bus and pushes what happens to the front end (DESIGN.md "Threads and
 * the pipe", "Job lifecycle"; docs/operator-guide.md "Running a plan").
 *
 * Contract:
 * - engine_open connects (certificate, broker, reply queue bound to the
 *   job's run events) in the caller's thread, so set-up errors come back
 *   as one line; engine_start then starts the core thread (signals
 *   blocked in it) which owns the bus, the journal and the job from then
 *   on.  The front end never touches them.
 * - Lifecycle of a new job: preflight (status of every node: unreachable,
 *   disabled by someone else or applying -> refused, with the list),
 *   lock (disable every node with a message naming the job, caller and
 *   time; wait until none applies), then steps (job.h): enable -> runonce
 *   (job id, noop) -> started -> finished event -> verdict -> disable.
 *   A node without a started event in start_timeout_s, or a finished one
 *   in run_timeout_s, or after a broker reconnection, is probed (status,
 *   last_run_summary, last_run_report): a report of this job gives the
 *   verdict, a run still applying this job is waited for, else it failed.
 *   At the end the nodes that succeeded are enabled again; the others
 *   stay locked by this job until `choir unlock`.
 * - Resume (engine_open with a job from the journal): nodes that were in
 *   flight are probed first; a run of this job that finished meanwhile is
 *   judged from its report, one still applying is waited for, one that
 *   never started runs again; then the job goes on.  No node runs twice.
 * - Every change is written to the journal, flushed, and only then
 *   queued for the front end: events are JSON objects (the NDJSON schema
 *   of docs/protocol.md §12), taken with engine_take after the wake fd
 *   turned readable.  The core never blocks on the front end: a queue
 *   over ENGINE_QUEUE_MAX drops output events (counted: engine_dropped);
 *   state events are kept (there are a handful per node), and the journal
 *   has them all.
 * - Commands (engine_command, or `choir ctl` through the control socket
 *   the engine serves): pause, resume, abort, retry, skip NODE, unlock,
 *   status; each one is journaled with its actor and answered in one line.
 * - With linger (the console), the core thread stays once the job is
 *   final and still answers commands (report NODE for the drill-down,
 *   status) until engine_wait tells it to stop; run events that come late
 *   are dropped.
 * - engine_wait returns the job's exit code once the job is final:
 *   CHOIR_EXIT_OK, _PARTIAL (node failures), _BUDGET, _ABORTED, _REFUSED,
 *   _SERVER (the broker lost for good). */
#ifndef CHOIR_ENGINE_H
#define CHOIR_ENGINE_H

#include <stddef.h>

#include <jansson.h>

#include "core/config.h"
#include "core/error.h"
#include "core/job.h"
#include "core/journal.h"

#define ENGINE_QUEUE_MAX 200000
#define ENGINE_SCHEMA_VERSION 1

struct engine_config {
    const struct config *cfg;     /* bus, security, rpc.* keys */
    struct job *job;              /* taken over by the engine */
    struct journal *journal;      /* borrowed; used by the core thread only */
    int resume;                   /* the job comes from the journal */
    int control_socket;           /* serve `choir ctl` */
    int linger;                   /* after the end, answer commands until engine_wait */
};

struct engine;

int engine_open(struct engine **out, const struct engine_config *c, struct choir_error *err);
int engine_start(struct engine *e, struct choir_error *err);
/* Readable when events or the end are waiting. */
int engine_wake_fd(const struct engine *e);
/* Moves up to max queued events into evs (the caller json_decref()s each);
 * returns how many. */
size_t engine_take(struct engine *e, json_t **evs, size_t max);
/* Events dropped or coalesced because the front end was slow. */
unsigned long engine_dropped(const struct engine *e);
/* Queues a command for the core; the answer comes back as an "operator"
 * event. */
void engine_command(struct engine *e, const char *command, const char *arg, const char *actor);
/* True once the job is final and every event was taken (engine_take). */
int engine_finished(const struct engine *e);
/* Joins the core thread; the job's exit code. */
int engine_wait(struct engine *e);
void engine_free(struct engine *e);

#endif
