/* job.h - a deploy job: its nodes in plan order, their states and
 * reasons, and the policies that decide what runs next (DESIGN.md "Job
 * lifecycle", docs/operator-guide.md "Running a plan").  Pure: no I/O, no
 * clock, no bus; the engine (engine.h) drives it and the journal stores
 * it.
 *
 * Contract:
 * - Groups run in order: a node of group g+1 is never started while a
 *   node of group g is waiting or in flight.  Inside a group, nodes run in
 *   steps (batches) of opt.batch nodes in plan order (0: the whole group);
 *   with opt.canary N the very first step is the first N nodes alone, and
 *   the job then pauses for approval.
 * - One step is in flight at a time; job_next_step picks the next one.
 * - After a step (job_after_step): over the failure budget
 *   (opt.max_failures, a count or a percentage of all nodes) the job
 *   stops (JOB_STOP_BUDGET); without a budget and without --contain it
 *   stops after the step that had the first failure (JOB_STOP_FAILED);
 *   with --contain a failure only skips the nodes that depend on the
 *   failed node, transitively (job_node_finished does it at once, with
 *   the reason "blocked: depends on X which failed").
 * - Nodes a stopped job did not reach stay waiting ("not reached"), so
 *   retry and resume can continue them; job_retry puts failed nodes and
 *   the nodes blocked by them back to waiting.
 * - Every change of a node's state goes through job_node_set, which
 *   returns whether anything changed (the engine journals and shows those).
 * Names of states come from the X-macros (job_state_name, node_state_name)
 * and parse back (job_state_parse, node_state_parse). */
#ifndef CHOIR_JOB_H
#define CHOIR_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/error.h"
#include "core/names.h"
#include "core/plan.h"

#define JOB_STATES(X)                                                              \
    X(JOB_PLANNED, "planned")                                                      \
    X(JOB_PREFLIGHT, "preflight")                                                  \
    X(JOB_LOCKING, "locking")                                                      \
    X(JOB_RUNNING, "running")                                                      \
    X(JOB_PAUSED, "paused")                                                        \
    X(JOB_STOPPING, "stopping")                                                    \
    X(JOB_SUCCEEDED, "succeeded")                                                  \
    X(JOB_FAILED, "failed")                                                        \
    X(JOB_ABORTED, "aborted")                                                      \
    X(JOB_REFUSED, "refused")                                                      \
    X(JOB_UNREACHABLE, "unreachable")

enum job_state {
#define JOB_ENUM(id, name) id,
    JOB_STATES(JOB_ENUM)
#undef JOB_ENUM
};

#define NODE_STATES(X)                                                             \
    X(NODE_WAITING, "waiting")                                                     \
    X(NODE_STARTING, "starting")                                                   \
    X(NODE_RUNNING, "running")                                                     \
    X(NODE_SUCCEEDED, "succeeded")                                                 \
    X(NODE_FAILED, "failed")                                                       \
    X(NODE_SKIPPED, "skipped")

enum node_state {
#define NODE_ENUM(id, name) id,
    NODE_STATES(NODE_ENUM)
#undef NODE_ENUM
};

/* What job_after_step decided. */
enum job_decision { JOB_CONTINUE, JOB_PAUSE_CANARY, JOB_STOP_FAILED, JOB_STOP_BUDGET };

#define JOB_REASON_MAX 256
#define JOB_VERDICT_MAX 32

struct job_options {
    uint32_t batch;            /* nodes per step; 0: a whole group */
    uint32_t canary;           /* first step of N nodes, then pause; 0: none */
    long max_failures;         /* -1: no budget */
    int max_failures_pct;      /* max_failures is a percentage of all nodes */
    int contain;
    int noop;
    long start_timeout_s, run_timeout_s;
};

struct job_node {
    char *name;
    uint32_t group, step;      /* step: 1-based number of the step it ran in, 0 = none */
    enum node_state state;
    char reason[JOB_REASON_MAX];
    char verdict[JOB_VERDICT_MAX];
    char run_id[33];
    int exit_code;             /* -1 while unknown */
    bool locked;               /* this job holds its Puppet lock */
    int attempts;
    json_t *failed;            /* failed resource names, or NULL */
    long long started_ms, finished_ms;
    long long deadline_ms;     /* engine timer (monotonic), 0 = none */
    uint32_t *dependents;      /* nodes that consume what this one produces */
    uint32_t ndependents;
    char *apps;                /* the application instances it serves, ", "-joined */
};

struct job {
    char id[NAMES_JOB_ID_MAX + 1];
    char caller[NAMES_MAX + 1];
    char environment[NAMES_MAX + 1];
    struct job_options opt;
    struct job_node *nodes;    /* plan order: group by group, by name */
    uint32_t nnodes, ngroups;
    enum job_state state;
    char reason[JOB_REASON_MAX * 2];
    uint32_t steps;            /* steps started so far */
    bool canary_done;
    long long created_ms;
};

const char *job_state_name(enum job_state s);
const char *node_state_name(enum node_state s);
int job_state_parse(const char *name, enum job_state *out);
int node_state_parse(const char *name, enum node_state *out);
bool job_state_final(enum job_state s);
bool node_state_final(enum node_state s);
bool node_state_in_flight(enum node_state s);

void job_options_default(struct job_options *o);

/* A job of every node of the plan, all waiting. */
struct job *job_from_plan(const struct plan *plan, const char *id, const char *caller,
                          const char *environment, const struct job_options *opt);
void job_free(struct job *job);

/* The plan part as JSON (nodes with group and dependents, options,
 * caller, environment) for the journal, and back.  job_from_json checks
 * what it reads (bounded, indexes in range) and fails with err. */
json_t *job_plan_json(const struct job *job);
/* The options part of it alone. */
json_t *job_options_json(const struct job_options *o);
struct job *job_from_json(const char *id, const json_t *plan, struct choir_error *err);

/* A job as the journal has it: the plan (job_from_json) with every node's
 * state, verdict, lock and times from the journal's rows, and the job's
 * own state.  Errors name the job and what is damaged. */
struct journal_job;
struct journal_node;
struct job *job_restore(const struct journal_job *jj, const struct journal_node *rows, size_t n,
                        struct choir_error *err);

/* Index of a node by name, or -1. */
long job_find(const struct job *job, const char *name);

/* Sets a node's state and reason; true when either changed. */
bool job_node_set(struct job *job, uint32_t i, enum node_state s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A node's run ended: succeeded or failed with verdict and reason.  With
 * --contain, a failure blocks its dependents (changed[] gets the indexes
 * of every node whose state changed, including i; returns how many). */
uint32_t job_node_finished(struct job *job, uint32_t i, bool success, const char *verdict,
                           const char *reason, uint32_t *changed);

/* The next step: writes the node indexes into ids (room for nnodes) and
 * returns how many; 0 when a step is in flight, the job is not running,
 * or nothing is left (then job_remaining says whether anything waits). */
uint32_t job_next_step(struct job *job, uint32_t *ids);
uint32_t job_remaining(const struct job *job);
uint32_t job_count(const struct job *job, enum node_state s);
/* After the last node of a step was judged. */
enum job_decision job_after_step(struct job *job);
/* The failure budget in nodes, or -1 without one. */
long job_budget(const struct job *job);

/* Failed nodes, and the waiting/skipped nodes blocked by them, back to
 * waiting; returns how many. */
uint32_t job_retry(struct job *job);

#endif
