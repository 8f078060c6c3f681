/* engine.c - see engine.h.  The core thread's loop: commands, the next
 * step, timers, then journal flush and wake of the front end, then wait
 * for the bus, the command pipe or the control socket. */
#include "core/clock.h"
#include "core/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/ctl.h"
#include "core/exitcode.h"
#include "core/strtab.h"
#include "core/verdict.h"
#include "core/xalloc.h"
#include "net/netconf.h"
#include "net/rpc.h"

#define ENGINE_IDLE_WAIT_MS 2000   /* between status polls while waiting for idle nodes */
#define ENGINE_POLL_MS 1000

struct engine_cmd {
    char *command, *arg, *actor;
};

struct engine {
    /* the core thread's own */
    const struct config *cfg;
    struct job *job;
    char *plan_text;              /* job_plan_json, for the journal's jobs row */
    struct journal *journal;
    struct security *sec;
    struct bus *bus;
    struct rpc_client client;
    struct ctl_server *ctl;
    struct strtab names;          /* node name -> index (ids = job order) */
    int resume, want_ctl;
    long ttl;
    int rpc_timeout_ms;
    char lock_message[160];
    uint32_t *step;               /* node indexes of the step in flight */
    uint32_t nstep;
    uint32_t *scratch;            /* changed-node lists */
    int stop_reason;              /* 0, JOB_STOP_FAILED, JOB_STOP_BUDGET; or -1 for abort */
    json_t *pending;              /* events not yet flushed to the journal and the queue */
    long long started_ms;
    int exit_code;
    pthread_t thread;
    int started;
    /* shared with the front end, under mu */
    pthread_mutex_t mu;
    int wake[2];                  /* core -> front end */
    int cmdpipe[2];               /* front end -> core */
    json_t *queue;
    size_t qhead;                 /* queue[qhead..] not taken yet */
    unsigned long dropped;
    struct engine_cmd *cmds;
    size_t ncmds;
    int finished;
    int linger, stop;             /* linger: answer commands after the end until stop */
};

/* ---- events: journal first, then the front end ------------------------------ */

/* A new event of type `type` with the common fields; the caller adds more
 * and hands it to engine_emit. */
static json_t *engine_event(struct engine *e, const char *type)
{
    return json_pack("{s:i, s:s, s:I, s:s}", "v", ENGINE_SCHEMA_VERSION, "type", type, "time",
                     (json_int_t)clock_wall_ms(), "job", e->job->id);
}

static void engine_emit(struct engine *e, json_t *ev, const char *actor)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *node = json_string_value(json_object_get(ev, "node"));

    /* output, the plan and reports are bulky and kept elsewhere */
    if (strcmp(type, "output") != 0 && strcmp(type, "plan") != 0 && strcmp(type, "report") != 0) {
        char *detail = json_dumps(ev, JSON_COMPACT);

        journal_event(e->journal, e->job->id, json_integer_value(json_object_get(ev, "time")),
                      actor ? actor : "engine", type, node ? node : "", detail);
        free(detail);
    }
    json_array_append_new(e->pending, ev);
}

/* The plan does not change once the engine has the job: its text is made
 * once (engine_open), not at every change of the job's state. */
static void engine_put_job(struct engine *e)
{
    struct journal_job j = {
        e->job->id, (char *)job_state_name(e->job->state), e->job->reason, e->job->caller,
        e->job->environment, e->plan_text, e->job->created_ms, clock_wall_ms(),
    };

    journal_job_put(e->journal, &j);
}

static void engine_put_node(struct engine *e, uint32_t i)
{
    struct job_node *n = &e->job->nodes[i];
    char *failed = n->failed ? json_dumps(n->failed, JSON_COMPACT) : NULL;
    struct journal_node jn = {
        e->job->id, n->name, (int)n->group, (int)n->step, (char *)node_state_name(n->state),
        n->reason, n->verdict, n->run_id, n->exit_code, n->locked, n->attempts,
        failed ? failed : "[]", n->started_ms, n->finished_ms,
    };

    journal_node_put(e->journal, &jn);
    free(failed);
}

static void engine_node_changed(struct engine *e, uint32_t i)
{
    const struct job_node *n = &e->job->nodes[i];
    json_t *ev = engine_event(e, "node");

    engine_put_node(e, i);
    json_object_set_new(ev, "node", json_string(n->name));
    json_object_set_new(ev, "group", json_integer(n->group));
    json_object_set_new(ev, "state", json_string(node_state_name(n->state)));
    json_object_set_new(ev, "reason", json_string(n->reason));
    json_object_set_new(ev, "locked", json_boolean(n->locked));
    if (n->verdict[0])
        json_object_set_new(ev, "verdict", json_string(n->verdict));
    if (node_state_final(n->state) && n->exit_code >= -1 && n->finished_ms)
        json_object_set_new(ev, "exit_code", json_integer(n->exit_code));
    if (n->failed)
        json_object_set(ev, "failed", n->failed);
    engine_emit(e, ev, NULL);
}

__attribute__((format(printf, 3, 4)))
static void engine_job_state(struct engine *e, enum job_state s, const char *fmt, ...)
{
    json_t *ev;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(e->job->reason, sizeof(e->job->reason), fmt, ap);
    va_end(ap);
    e->job->state = s;
    engine_put_job(e);
    ev = engine_event(e, "job");
    json_object_set_new(ev, "state", json_string(job_state_name(s)));
    json_object_set_new(ev, "reason", json_string(e->job->reason));
    engine_emit(e, ev, NULL);
}

/* Journal flush, then the events go to the front end. */
static void engine_publish(struct engine *e)
{
    struct choir_error err = {0};
    size_t n = json_array_size(e->pending);
    char one = 1;

    if (journal_flush(e->journal, &err) < 0) {
        json_t *ev = engine_event(e, "warning");

        json_object_set_new(ev, "message", json_string(err.msg));
        json_array_append_new(e->pending, ev);
        n++;
    }
    if (n == 0)
        return;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_array_get(e->pending, i);
        const char *type = json_string_value(json_object_get(ev, "type"));

        if (json_array_size(e->queue) - e->qhead >= ENGINE_QUEUE_MAX &&
            strcmp(type, "output") == 0) {
            e->dropped++;
            continue;
        }
        json_array_append(e->queue, ev);
    }
    pthread_mutex_unlock(&e->mu);
    json_array_clear(e->pending);
    if (write(e->wake[1], &one, 1) < 0 && errno != EAGAIN) {
        /* nothing to do: the front end reads the queue when it wakes */
    }
}

/* ---- talking to nodes --------------------------------------------------------- */

static long engine_index(const struct engine *e, const char *name)
{
    uint32_t id = strtab_find(&e->names, name, strlen(name));

    return id == STRTAB_NONE ? -1 : (long)id;
}

/* One RPC to the nodes ids[0..n); -1 when the bus is gone for good. */
static int engine_rpc(struct engine *e, const char *action, json_t *data, const uint32_t *ids,
                      uint32_t n, int idempotent, struct rpc_result *res)
{
    const char **nodes = xcalloc(n ? n : 1, sizeof(*nodes));
    struct rpc_call_opts o = {
        .agent = "puppet", .action = action, .data = data, .nodes = nodes, .nnodes = n,
        .ttl = e->ttl, .timeout_ms = e->rpc_timeout_ms, .idempotent = idempotent,
    };
    struct choir_error err = {0};
    int rc;

    for (uint32_t i = 0; i < n; i++)
        nodes[i] = e->job->nodes[ids[i]].name;
    rc = n ? rpc_call(&e->client, &o, res, &err) : (memset(res, 0, sizeof(*res)), 0);
    free(nodes);
    if (rc < 0) {
        json_t *ev = engine_event(e, "warning");

        json_object_set_new(ev, "message", json_string(err.msg));
        engine_emit(e, ev, NULL);
    }
    return rc;
}

static json_t *engine_lock_data(const struct engine *e)
{
    return json_pack("{s:s}", "message", e->lock_message);
}

/* Disables (lock = 1) or enables (lock = 0) the nodes; a node that was
 * already so counts as done.  Returns how many failed; each failure is in
 * the node's reason when note is set. */
static uint32_t engine_set_lock(struct engine *e, const uint32_t *ids, uint32_t n, int lock)
{
    struct rpc_result res;
    json_t *data = lock ? engine_lock_data(e) : NULL;
    uint32_t failed = 0;

    if (engine_rpc(e, lock ? "disable" : "enable", data, ids, n, 1, &res) < 0) {
        json_decref(data);
        return n;
    }
    for (uint32_t k = 0; k < n; k++) {
        struct job_node *nd = &e->job->nodes[ids[k]];
        const struct rpc_reply *r = rpc_result_find(&res, nd->name);
        int ok = r && (r->statuscode == 0 || strstr(r->statusmsg, lock ? "already disabled"
                                                                       : "already enabled"));

        /* a disable without a reply may still land (it waits in the node's
         * queue for rpc.ttl): count the node held; unlock checks first */
        if ((ok || (lock && !r)) && nd->locked != lock) {
            json_t *ev = engine_event(e, "lock");

            nd->locked = lock;
            engine_put_node(e, ids[k]);
            json_object_set_new(ev, "node", json_string(nd->name));
            json_object_set_new(ev, "locked", json_boolean(lock));
            engine_emit(e, ev, NULL);
        }
        failed += !ok;
    }
    rpc_result_clear(&res);
    json_decref(data);
    return failed;
}

/* ---- preflight and lock ---------------------------------------------------------- */

static uint32_t *engine_all(const struct engine *e)
{
    uint32_t *ids = xmalloc((e->job->nnodes + 1) * sizeof(*ids));

    for (uint32_t i = 0; i < e->job->nnodes; i++)
        ids[i] = i;
    return ids;
}

/* What keeps a node from taking part, or NULL. */
static const char *engine_problem(const struct engine *e, const struct rpc_reply *r, char *buf,
                                  size_t size)
{
    const char *msg;

    if (!r)
        return "unreachable: no reply to status";
    if (r->statuscode != 0) {
        snprintf(buf, size, "status failed: %s", r->statusmsg);
        return buf;
    }
    msg = json_string_value(json_object_get(r->data, "disable_message"));
    if (json_is_false(json_object_get(r->data, "enabled")) &&
        !(e->resume && msg && strstr(msg, e->job->id))) {
        snprintf(buf, size, "disabled by someone else: %s", msg && *msg ? msg : "(no reason)");
        return buf;
    }
    if (json_is_true(json_object_get(r->data, "applying")))
        return "already applying a catalog";
    return NULL;
}

static int engine_preflight(struct engine *e)
{
    uint32_t *ids = engine_all(e), bad = 0;
    struct rpc_result res;
    json_t *ev, *problems = json_array();
    char buf[JOB_REASON_MAX];

    engine_job_state(e, JOB_PREFLIGHT, "asking %u nodes for their status", e->job->nnodes);
    engine_publish(e);
    if (engine_rpc(e, "status", NULL, ids, e->job->nnodes, 1, &res) < 0) {
        free(ids);
        json_decref(problems);
        engine_job_state(e, JOB_UNREACHABLE, "the broker cannot be reached");
        return -1;
    }
    for (uint32_t i = 0; i < e->job->nnodes; i++) {
        const char *why = engine_problem(e, rpc_result_find(&res, e->job->nodes[i].name), buf,
                                         sizeof(buf));

        if (why) {
            json_array_append_new(problems, json_pack("{s:s, s:s}", "node", e->job->nodes[i].name,
                                                      "problem", why));
            bad++;
        }
    }
    rpc_result_clear(&res);
    free(ids);
    ev = engine_event(e, "preflight");
    json_object_set_new(ev, "nodes", json_integer(e->job->nnodes));
    json_object_set_new(ev, "problems", problems);
    engine_emit(e, ev, NULL);
    if (bad) {
        engine_job_state(e, JOB_REFUSED, "preflight: %u of %u nodes cannot take part", bad,
                         e->job->nnodes);
        return -1;
    }
    return 0;
}

/* Status until no node applies (a scheduled run that started before the
 * lock), at most start_timeout_s. */
static int engine_wait_idle(struct engine *e, uint32_t *ids)
{
    long long deadline = clock_mono_ms() + e->job->opt.start_timeout_s * 1000;

    for (;;) {
        struct rpc_result res;
        uint32_t busy = 0;

        if (engine_rpc(e, "status", NULL, ids, e->job->nnodes, 1, &res) < 0)
            return -1;
        for (uint32_t i = 0; i < res.nreplies; i++)
            busy += json_is_true(json_object_get(res.replies[i].data, "applying"));
        rpc_result_clear(&res);
        if (busy == 0)
            return 0;
        if (clock_mono_ms() > deadline) {
            engine_job_state(e, JOB_REFUSED, "%u nodes were still applying a catalog after %ld s",
                             busy, e->job->opt.start_timeout_s);
            return -1;
        }
        usleep(ENGINE_IDLE_WAIT_MS * 1000);
    }
}

static int engine_lock_all(struct engine *e)
{
    uint32_t *ids = engine_all(e), failed;
    int rc = 0;

    engine_job_state(e, JOB_LOCKING, "disabling Puppet on %u nodes", e->job->nnodes);
    engine_publish(e);
    failed = engine_set_lock(e, ids, e->job->nnodes, 1);
    if (failed) {
        uint32_t held = 0;

        for (uint32_t i = 0; i < e->job->nnodes; i++)
            if (e->job->nodes[i].locked)
                ids[held++] = i;
        engine_set_lock(e, ids, held, 0);
        engine_job_state(e, JOB_REFUSED, "could not disable Puppet on %u nodes; released the %u "
                         "locks taken", failed, held);
        rc = -1;
    } else {
        rc = engine_wait_idle(e, ids);
    }
    free(ids);
    return rc;
}

/* ---- judging runs ---------------------------------------------------------------- */

static void engine_finished_node(struct engine *e, uint32_t i, bool ok, const char *verdict,
                                 const char *reason)
{
    uint32_t n = job_node_finished(e->job, i, ok, verdict, reason, e->scratch);

    e->job->nodes[i].finished_ms = clock_wall_ms();
    e->job->nodes[i].deadline_ms = 0;
    for (uint32_t k = 0; k < n; k++)
        engine_node_changed(e, e->scratch[k]);
}

static void engine_on_finished(struct engine *e, uint32_t i, const json_t *body)
{
    struct job_node *n = &e->job->nodes[i];
    const json_t *v = json_object_get(body, "verdict");
    const char *verdict = json_string_value(json_object_get(v, "verdict"));
    const char *reason = json_string_value(json_object_get(v, "reason"));

    n->exit_code = (int)json_integer_value(json_object_get(body, "exit_code"));
    json_decref(n->failed);
    n->failed = json_is_array(json_object_get(body, "failed"))
                    ? json_incref(json_object_get(body, "failed")) : NULL;
    engine_finished_node(e, i, json_is_true(json_object_get(v, "success")),
                         verdict ? verdict : "unknown", reason ? reason : "no reason given");
}

static void engine_on_output(struct engine *e, uint32_t i, const json_t *body)
{
    json_t *ev = engine_event(e, "output");

    json_object_set_new(ev, "node", json_string(e->job->nodes[i].name));
    json_object_set(ev, "lines", json_object_get(body, "lines"));
    json_object_set(ev, "skipped", json_object_get(body, "skipped"));
    engine_emit(e, ev, NULL);
}

/* A verified run event (rpc.h): this job's, from one of its nodes. */
static void engine_on_event(void *ctx, const struct rpc_event *ev)
{
    struct engine *e = ctx;
    const char *kind = json_string_value(json_object_get(ev->body, "event"));
    const char *job = json_string_value(json_object_get(ev->body, "job_id"));
    long i = engine_index(e, ev->node);
    struct job_node *n;

    if (i < 0 || !job || strcmp(job, e->job->id) != 0)
        return;
    n = &e->job->nodes[i];
    if (!node_state_in_flight(n->state) || (n->run_id[0] && strcmp(n->run_id, ev->run_id) != 0))
        return;
    snprintf(n->run_id, sizeof(n->run_id), "%s", ev->run_id);
    if (strcmp(kind, "started") == 0 && n->state == NODE_STARTING) {
        n->deadline_ms = clock_mono_ms() + e->job->opt.run_timeout_s * 1000;
        if (job_node_set(e->job, (uint32_t)i, NODE_RUNNING, "Puppet run %.8s started", ev->run_id))
            engine_node_changed(e, (uint32_t)i);
    } else if (strcmp(kind, "output") == 0) {
        engine_on_output(e, (uint32_t)i, ev->body);
    } else if (strcmp(kind, "finished") == 0) {
        engine_on_finished(e, (uint32_t)i, ev->body);
    }
}

/* A report's status as the exit code Puppet would have given. */
static int engine_exit_from_report(const json_t *report)
{
    const char *s = json_string_value(json_object_get(report, "status"));

    if (!s)
        return -1;
    return strcmp(s, "failed") == 0 ? 4 : strcmp(s, "changed") == 0 ? 2 : 0;
}

/* Judges node i from its report, when the report is this job's. */
static bool engine_judge_report(struct engine *e, uint32_t i, const json_t *summary,
                                const json_t *report)
{
    struct job_node *n = &e->job->nodes[i];
    struct verdict_run run = {engine_exit_from_report(report), e->job->id,
                              (time_t)(n->started_ms / 1000)};
    struct verdict v;
    char reason[JOB_REASON_MAX];

    if (!report || json_is_null(report))
        return false;
    verdict_decide(&run, summary, report, &v);
    if (v.kind == VERDICT_FOREIGN_REPORT || v.kind == VERDICT_STALE_REPORT ||
        v.kind == VERDICT_MISSING_REPORT)
        return false;
    n->exit_code = run.exit_code;
    snprintf(reason, sizeof(reason), "%.200s (from its report: no finished event came)", v.reason);
    engine_finished_node(e, i, verdict_success(v.kind), verdict_name(v.kind), reason);
    return true;
}

static void engine_probe_one(struct engine *e, uint32_t i, const struct rpc_reply *status,
                             const json_t *summary, const json_t *report)
{
    struct job_node *n = &e->job->nodes[i];
    const char *job = status ? json_string_value(json_object_get(status->data, "job_id")) : NULL;
    bool applying = status && json_is_true(json_object_get(status->data, "applying"));
    long long now = clock_mono_ms();

    if (applying && job && strcmp(job, e->job->id) == 0) {
        if (n->state == NODE_STARTING &&
            job_node_set(e->job, i, NODE_RUNNING, "applying this job (no started event came)"))
            engine_node_changed(e, i);
        if (n->started_ms && clock_wall_ms() - n->started_ms > e->job->opt.run_timeout_s * 1000) {
            n->exit_code = -1;
            engine_finished_node(e, i, false, "timeout", "still applying after run_timeout");
        } else {
            n->deadline_ms = now + e->job->opt.start_timeout_s * 1000;
        }
        return;
    }
    if (!status) {
        n->deadline_ms = now + e->job->opt.start_timeout_s * 1000;
        if (n->started_ms && clock_wall_ms() - n->started_ms > e->job->opt.run_timeout_s * 1000)
            engine_finished_node(e, i, false, "timeout", "no reply and no finished event");
        return;
    }
    if (engine_judge_report(e, i, summary, report))
        return;
    engine_finished_node(e, i, false, n->state == NODE_STARTING ? "not_started" : "lost",
                         n->state == NODE_STARTING
                             ? "did not start: no run of this job and no report of it"
                             : "no finished event, and no report of this job");
}

/* Asks the nodes ids[] what became of their runs. */
static void engine_probe(struct engine *e, const uint32_t *ids, uint32_t n)
{
    struct rpc_result st, sum, rep;
    uint32_t *ask = xmalloc((n + 1) * sizeof(*ask)), nask = 0;

    if (engine_rpc(e, "status", NULL, ids, n, 1, &st) < 0) {
        free(ask);
        return;
    }
    /* reports only from nodes that answered: a dead node costs one timeout */
    for (uint32_t k = 0; k < n; k++)
        if (rpc_result_find(&st, e->job->nodes[ids[k]].name))
            ask[nask++] = ids[k];
    if (engine_rpc(e, "last_run_summary", NULL, ask, nask, 1, &sum) < 0 ||
        engine_rpc(e, "last_run_report", NULL, ask, nask, 1, &rep) < 0) {
        rpc_result_clear(&st);
        free(ask);
        return;
    }
    free(ask);
    for (uint32_t k = 0; k < n; k++) {
        const char *name = e->job->nodes[ids[k]].name;
        const struct rpc_reply *s = rpc_result_find(&st, name);
        const struct rpc_reply *a = rpc_result_find(&sum, name);
        const struct rpc_reply *r = rpc_result_find(&rep, name);

        if (node_state_in_flight(e->job->nodes[ids[k]].state))
            engine_probe_one(e, ids[k], s, a && a->statuscode == 0 ? a->data : NULL,
                             r && r->statuscode == 0 ? r->data : NULL);
    }
    rpc_result_clear(&st);
    rpc_result_clear(&sum);
    rpc_result_clear(&rep);
}

/* In-flight nodes whose deadline passed are probed. */
static void engine_timers(struct engine *e)
{
    long long now = clock_mono_ms();
    uint32_t n = 0;

    for (uint32_t k = 0; k < e->nstep; k++) {
        const struct job_node *nd = &e->job->nodes[e->step[k]];

        if (node_state_in_flight(nd->state) && nd->deadline_ms && nd->deadline_ms <= now)
            e->scratch[n++] = e->step[k];
    }
    if (n) {
        uint32_t *ids = xmalloc(n * sizeof(*ids));

        memcpy(ids, e->scratch, n * sizeof(*ids));
        engine_probe(e, ids, n);
        free(ids);
    }
}

static long engine_next_deadline(const struct engine *e)
{
    long long now = clock_mono_ms(), best = -1;

    for (uint32_t k = 0; k < e->nstep; k++) {
        const struct job_node *nd = &e->job->nodes[e->step[k]];

        if (node_state_in_flight(nd->state) && nd->deadline_ms &&
            (best < 0 || nd->deadline_ms < best))
            best = nd->deadline_ms;
    }
    return best < 0 ? -1 : best <= now ? 0 : (long)(best - now);
}

/* ---- steps ------------------------------------------------------------------------ */

static void engine_fail_node(struct engine *e, uint32_t i, const char *verdict, const char *why)
{
    engine_finished_node(e, i, false, verdict, why);
}

/* runonce to the enabled nodes of the step. */
static void engine_runonce(struct engine *e, const uint32_t *ids, uint32_t n)
{
    json_t *data = json_pack("{s:s}", "job_id", e->job->id);
    struct rpc_result res;
    char why[JOB_REASON_MAX];

    if (e->job->opt.noop)
        json_object_set_new(data, "noop", json_true());
    if (engine_rpc(e, "runonce", data, ids, n, 0, &res) < 0)
        memset(&res, 0, sizeof(res));
    for (uint32_t k = 0; k < n; k++) {
        struct job_node *nd = &e->job->nodes[ids[k]];
        const struct rpc_reply *r = rpc_result_find(&res, nd->name);
        const char *run_id = r ? json_string_value(json_object_get(r->data, "run_id")) : NULL;

        if (node_state_final(nd->state)) {
            nd->attempts++; /* accepted: its finished event came during the call */
            engine_put_node(e, ids[k]);
            continue;
        }
        if (r && r->statuscode != 0) {
            snprintf(why, sizeof(why), "refused: %s", r->statusmsg);
            engine_fail_node(e, ids[k], "refused", why);
            continue;
        }
        nd->attempts++;
        if (run_id && !nd->run_id[0])
            snprintf(nd->run_id, sizeof(nd->run_id), "%s", run_id);
        if (nd->state == NODE_STARTING) {
            nd->deadline_ms = clock_mono_ms() + e->job->opt.start_timeout_s * 1000;
            if (!r)
                snprintf(nd->reason, sizeof(nd->reason), "no reply to runonce: waiting for events");
            engine_node_changed(e, ids[k]);
        } else {
            engine_put_node(e, ids[k]); /* running already: journal the attempt */
        }
    }
    rpc_result_clear(&res);
    json_decref(data);
}

static void engine_start_step(struct engine *e, const uint32_t *ids, uint32_t n)
{
    struct rpc_result res;
    uint32_t *ok = xmalloc(n * sizeof(*ok)), nok = 0;
    json_t *ev = engine_event(e, "step"), *names = json_array();

    memcpy(e->step, ids, n * sizeof(*ids));
    e->nstep = n;
    for (uint32_t k = 0; k < n; k++)
        json_array_append_new(names, json_string(e->job->nodes[ids[k]].name));
    json_object_set_new(ev, "group", json_integer(e->job->nodes[ids[0]].group));
    json_object_set_new(ev, "step", json_integer(e->job->steps));
    json_object_set_new(ev, "nodes", names);
    engine_emit(e, ev, NULL);
    if (engine_rpc(e, "enable", NULL, ids, n, 1, &res) < 0)
        memset(&res, 0, sizeof(res));
    for (uint32_t k = 0; k < n; k++) {
        struct job_node *nd = &e->job->nodes[ids[k]];
        const struct rpc_reply *r = rpc_result_find(&res, nd->name);
        char why[JOB_REASON_MAX];

        nd->run_id[0] = '\0';
        if (r && (r->statuscode == 0 || strstr(r->statusmsg, "already enabled"))) {
            nd->locked = false;
            nd->started_ms = clock_wall_ms();
            job_node_set(e->job, ids[k], NODE_STARTING, "starting");
            ok[nok++] = ids[k];
        } else {
            snprintf(why, sizeof(why), "could not enable Puppet: %s",
                     r ? r->statusmsg : "no reply");
            engine_fail_node(e, ids[k], "unreachable", why);
        }
    }
    rpc_result_clear(&res);
    engine_publish(e);
    engine_runonce(e, ok, nok);
    free(ok);
}

static bool engine_step_done(const struct engine *e)
{
    for (uint32_t k = 0; k < e->nstep; k++)
        if (!node_state_final(e->job->nodes[e->step[k]].state))
            return false;
    return true;
}

/* The last node of the step was judged: lock them again, apply the policy. */
static void engine_end_step(struct engine *e)
{
    enum job_decision d;
    long budget;

    engine_set_lock(e, e->step, e->nstep, 1);
    for (uint32_t k = 0; k < e->nstep; k++)
        engine_put_node(e, e->step[k]);
    e->nstep = 0;
    d = job_after_step(e->job);
    budget = job_budget(e->job);
    if (d == JOB_STOP_BUDGET) {
        e->stop_reason = JOB_STOP_BUDGET;
        engine_job_state(e, JOB_STOPPING, "failure budget exceeded: %u failed, %ld allowed",
                         job_count(e->job, NODE_FAILED), budget);
    } else if (d == JOB_STOP_FAILED && e->job->state == JOB_RUNNING) {
        e->stop_reason = JOB_STOP_FAILED;
        engine_job_state(e, JOB_STOPPING, "stopped after the step with the first failure");
    } else if (d == JOB_PAUSE_CANARY && e->job->state == JOB_RUNNING) {
        engine_job_state(e, JOB_PAUSED, "canary: %u nodes ran; resume to go on",
                         e->job->opt.canary);
    }
}

/* Not reached: nodes a stopped job leaves waiting say so. */
static void engine_mark_unreached(struct engine *e, const char *why)
{
    for (uint32_t i = 0; i < e->job->nnodes; i++)
        if (e->job->nodes[i].state == NODE_WAITING &&
            job_node_set(e->job, i, NODE_WAITING, "not reached: %s", why))
            engine_node_changed(e, i);
}

/* Whether the job is over: nothing in flight and nothing more to start. */
static bool engine_settle(struct engine *e)
{
    uint32_t failed = job_count(e->job, NODE_FAILED);

    if (e->nstep)
        return false;
    if (e->job->state == JOB_STOPPING) {
        char why[sizeof(e->job->reason)]; /* engine_job_state writes job->reason */

        snprintf(why, sizeof(why), "%s", e->job->reason);
        engine_mark_unreached(e, e->stop_reason < 0 ? "the job was aborted" : "the job stopped");
        if (e->stop_reason < 0)
            engine_job_state(e, JOB_ABORTED, "%s", why);
        else
            engine_job_state(e, JOB_FAILED, "%s", why);
        return true;
    }
    if (e->job->state != JOB_RUNNING || job_remaining(e->job) > 0)
        return false;
    if (failed)
        engine_job_state(e, JOB_FAILED, "%u of %u nodes failed", failed, e->job->nnodes);
    else
        engine_job_state(e, JOB_SUCCEEDED, "%u nodes succeeded", job_count(e->job, NODE_SUCCEEDED));
    return true;
}

static void engine_schedule(struct engine *e)
{
    uint32_t n;

    if (e->nstep && engine_step_done(e))
        engine_end_step(e);
    if (e->nstep || e->job->state != JOB_RUNNING)
        return;
    n = job_next_step(e->job, e->scratch);
    if (n) {
        uint32_t *ids = xmalloc(n * sizeof(*ids));

        memcpy(ids, e->scratch, n * sizeof(*ids));
        engine_start_step(e, ids, n);
        free(ids);
    }
}

/* End of the job: the nodes that succeeded get Puppet back. */
static void engine_release(struct engine *e)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < e->job->nnodes; i++)
        if (e->job->nodes[i].locked && e->job->nodes[i].state == NODE_SUCCEEDED)
            e->scratch[n++] = i;
    if (n) {
        uint32_t *ids = xmalloc(n * sizeof(*ids));

        memcpy(ids, e->scratch, n * sizeof(*ids));
        engine_set_lock(e, ids, n, 0);
        free(ids);
    }
}

static int engine_exit_code(const struct engine *e)
{
    switch (e->job->state) {
    case JOB_SUCCEEDED: return CHOIR_EXIT_OK;
    case JOB_ABORTED: return CHOIR_EXIT_ABORTED;
    case JOB_REFUSED: return CHOIR_EXIT_REFUSED;
    case JOB_UNREACHABLE: return CHOIR_EXIT_SERVER;
    default: return e->stop_reason == JOB_STOP_BUDGET ? CHOIR_EXIT_BUDGET : CHOIR_EXIT_PARTIAL;
    }
}

static void engine_result(struct engine *e)
{
    json_t *ev = engine_event(e, "result");
    uint32_t locked = 0;

    for (uint32_t i = 0; i < e->job->nnodes; i++)
        locked += e->job->nodes[i].locked;
    e->exit_code = engine_exit_code(e);
    json_object_set_new(ev, "state", json_string(job_state_name(e->job->state)));
    json_object_set_new(ev, "reason", json_string(e->job->reason));
    json_object_set_new(ev, "exit_code", json_integer(e->exit_code));
    json_object_set_new(ev, "elapsed_ms", json_integer(clock_wall_ms() - e->started_ms));
    json_object_set_new(ev, "nodes", json_integer(e->job->nnodes));
    json_object_set_new(ev, "succeeded", json_integer(job_count(e->job, NODE_SUCCEEDED)));
    json_object_set_new(ev, "failed", json_integer(job_count(e->job, NODE_FAILED)));
    json_object_set_new(ev, "skipped", json_integer(job_count(e->job, NODE_SKIPPED)));
    json_object_set_new(ev, "not_reached", json_integer(job_count(e->job, NODE_WAITING)));
    json_object_set_new(ev, "locked", json_integer(locked));
    engine_emit(e, ev, NULL);
}

/* ---- what the front end needs to draw ------------------------------------------------ */

/* The whole job once at the start: the tree the front end shows. */
static void engine_plan_event(struct engine *e)
{
    json_t *ev = engine_event(e, "plan"), *nodes = json_array();

    for (uint32_t i = 0; i < e->job->nnodes; i++) {
        const struct job_node *n = &e->job->nodes[i];
        json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:b, s:i}", "node", n->name,
                              "group", (int)n->group, "apps", n->apps ? n->apps : "", "state",
                              node_state_name(n->state), "reason", n->reason, "verdict",
                              n->verdict, "locked", n->locked, "step", (int)n->step);

        json_array_append_new(nodes, o);
    }
    json_object_set_new(ev, "groups", json_integer(e->job->ngroups));
    json_object_set_new(ev, "caller", json_string(e->job->caller));
    json_object_set_new(ev, "environment", json_string(e->job->environment));
    json_object_set_new(ev, "options", job_options_json(&e->job->opt));
    json_object_set_new(ev, "nodes", nodes);
    engine_emit(e, ev, NULL);
}

/* A node's last report, for the front end's drill-down. */
static void engine_report(struct engine *e, const char *node, char *reply, size_t size)
{
    long i = engine_index(e, node);
    uint32_t id;
    struct rpc_result res;
    const struct rpc_reply *r;
    json_t *ev;

    if (i < 0) {
        snprintf(reply, size, "error: %s is not a node of job %s", node, e->job->id);
        return;
    }
    id = (uint32_t)i;
    if (engine_rpc(e, "last_run_report", NULL, &id, 1, 1, &res) < 0) {
        snprintf(reply, size, "error: the bus is gone");
        return;
    }
    r = rpc_result_find(&res, node);
    ev = engine_event(e, "report");
    json_object_set_new(ev, "node", json_string(node));
    json_object_set_new(ev, "statuscode", json_integer(r ? r->statuscode : -1));
    json_object_set_new(ev, "statusmsg", json_string(r ? r->statusmsg : "no reply"));
    json_object_set_new(ev, "data", r ? json_incref(r->data) : json_object());
    engine_emit(e, ev, NULL);
    rpc_result_clear(&res);
    snprintf(reply, size, r ? "ok: the report of %s follows" : "error: %s did not answer", node);
}

/* ---- commands ------------------------------------------------------------------------ */

static void engine_unlock(struct engine *e, char *reply, size_t size)
{
    uint32_t n = 0, failed;

    for (uint32_t i = 0; i < e->job->nnodes; i++) {
        if (node_state_in_flight(e->job->nodes[i].state)) {
            snprintf(reply, size, "error: runs are in flight: pause or abort first");
            return;
        }
        if (e->job->nodes[i].locked)
            e->scratch[n++] = i;
    }
    if (e->job->state == JOB_RUNNING) {
        snprintf(reply, size, "error: the job is running: pause or abort first");
        return;
    }
    failed = engine_set_lock(e, e->scratch, n, 0);
    snprintf(reply, size, "%s: released %u of %u locks", failed ? "error" : "ok", n - failed, n);
}

static void engine_status_line(const struct engine *e, char *reply, size_t size)
{
    const struct job *j = e->job;

    snprintf(reply, size, "ok: %s: %u succeeded, %u failed, %u running, %u waiting, %u skipped",
             job_state_name(j->state), job_count(j, NODE_SUCCEEDED), job_count(j, NODE_FAILED),
             job_count(j, NODE_STARTING) + job_count(j, NODE_RUNNING), job_count(j, NODE_WAITING),
             job_count(j, NODE_SKIPPED));
}

static void engine_skip(struct engine *e, const char *node, const char *actor, char *reply,
                        size_t size)
{
    long i = engine_index(e, node);

    if (i < 0) {
        snprintf(reply, size, "error: %s is not a node of job %s", node, e->job->id);
    } else if (e->job->nodes[i].state != NODE_WAITING) {
        snprintf(reply, size, "error: %s is %s, not waiting", node,
                 node_state_name(e->job->nodes[i].state));
    } else {
        job_node_set(e->job, (uint32_t)i, NODE_SKIPPED, "skipped by %s", actor);
        engine_node_changed(e, (uint32_t)i);
        snprintf(reply, size, "ok: %s skipped", node);
    }
}

static void engine_apply(struct engine *e, const char *cmd, const char *arg, const char *actor,
                         char *reply, size_t size)
{
    enum job_state s = e->job->state;
    bool final = job_state_final(s);

    if (strcmp(cmd, "status") == 0) {
        engine_status_line(e, reply, size);
    } else if (strcmp(cmd, "pause") == 0 && s == JOB_RUNNING) {
        engine_job_state(e, JOB_PAUSED, "paused by %s", actor);
        snprintf(reply, size, "ok: paused; runs in flight finish, no new step starts");
    } else if (strcmp(cmd, "resume") == 0 && s == JOB_PAUSED) {
        engine_job_state(e, JOB_RUNNING, "resumed by %s", actor);
        snprintf(reply, size, "ok: running");
    } else if (strcmp(cmd, "abort") == 0 && !final) {
        e->stop_reason = -1;
        engine_job_state(e, JOB_STOPPING, "aborted by %s", actor);
        snprintf(reply, size, "ok: aborting; runs in flight finish, the job stays resumable");
    } else if (strcmp(cmd, "retry") == 0 && !final && s != JOB_STOPPING) {
        uint32_t n = job_retry(e->job);

        for (uint32_t i = 0; i < e->job->nnodes; i++)
            if (e->job->nodes[i].state == NODE_WAITING)
                engine_put_node(e, i);
        snprintf(reply, size, "ok: %u nodes will run again", n);
    } else if (strcmp(cmd, "skip") == 0 && *arg) {
        engine_skip(e, arg, actor, reply, size);
    } else if (strcmp(cmd, "unlock") == 0) {
        engine_unlock(e, reply, size);
    } else if (strcmp(cmd, "report") == 0 && *arg) {
        engine_report(e, arg, reply, size);
    } else {
        snprintf(reply, size, "error: cannot %s%s%s while the job is %s", cmd, *arg ? " " : "", arg,
                 job_state_name(s));
    }
}

static void engine_operator(struct engine *e, const char *cmd, const char *arg, const char *actor,
                            char *reply, size_t size)
{
    json_t *ev;

    engine_apply(e, cmd, arg, actor, reply, size);
    ev = engine_event(e, "operator");
    json_object_set_new(ev, "actor", json_string(actor));
    json_object_set_new(ev, "command", json_string(cmd));
    if (*arg)
        json_object_set_new(ev, "arg", json_string(arg));
    json_object_set_new(ev, "reply", json_string(reply));
    engine_emit(e, ev, actor);
}

static void engine_on_ctl(void *ctx, const char *cmd, const char *arg, const char *actor,
                          char *reply, size_t size)
{
    engine_operator(ctx, cmd, arg, actor, reply, size);
}

static void engine_commands(struct engine *e)
{
    struct engine_cmd *cmds;
    size_t n;
    char drain[64], reply[CTL_LINE_MAX];

    while (read(e->cmdpipe[0], drain, sizeof(drain)) > 0)
        ;
    pthread_mutex_lock(&e->mu);
    cmds = e->cmds;
    n = e->ncmds;
    e->cmds = NULL;
    e->ncmds = 0;
    pthread_mutex_unlock(&e->mu);
    for (size_t i = 0; i < n; i++) {
        engine_operator(e, cmds[i].command, cmds[i].arg, cmds[i].actor, reply, sizeof(reply));
        free(cmds[i].command);
        free(cmds[i].arg);
        free(cmds[i].actor);
    }
    free(cmds);
}

/* ---- resume ---------------------------------------------------------------------------- */

/* Nodes in flight when the console died: what became of their runs. */
static void engine_resume_probe(struct engine *e)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < e->job->nnodes; i++)
        if (node_state_in_flight(e->job->nodes[i].state))
            e->step[n++] = i;
    e->nstep = n;
    if (n == 0)
        return;
    engine_probe(e, e->step, n);
    for (uint32_t k = 0; k < n; k++) {
        struct job_node *nd = &e->job->nodes[e->step[k]];

        /* "did not start" after a resume means it never ran: run it */
        if (nd->state == NODE_FAILED && strcmp(nd->verdict, "not_started") == 0) {
            nd->verdict[0] = '\0';
            job_node_set(e->job, e->step[k], NODE_WAITING, "never started: runs again");
            engine_node_changed(e, e->step[k]);
        }
    }
    if (engine_step_done(e))
        e->nstep = 0;
}

/* ---- the core thread ---------------------------------------------------------------------- */

/* Handles what the bus has for us; after a lost connection, reconnects and
 * probes every run in flight (its events may be lost). */
static int engine_drain_bus(struct engine *e)
{
    for (;;) {
        struct bus_message m = {0};
        struct choir_error err = {0};
        struct rpc_event ev;
        int r = bus_receive(e->bus, &m, 0, &err);

        if (r == 1 && rpc_event_take(&e->client, &m, &ev) == 1) {
            engine_on_event(e, &ev);
            rpc_event_clear(&ev);
        }
        bus_message_clear(&m);
        if (r == 0)
            return 0;
        if (r == BUS_LOST || (r < 0 && !bus_connected(e->bus))) {
            json_t *warn = engine_event(e, "warning");
            char lost[sizeof(err.msg)];

            snprintf(lost, sizeof(lost), "%s", err.msg);
            if (bus_reconnect(e->bus, &err) < 0) {
                engine_job_state(e, JOB_UNREACHABLE, "lost the broker: %s", err.msg);
                json_decref(warn);
                return -1;
            }
            json_object_set_new(warn, "message", json_sprintf("lost the broker (%s); reconnected "
                                "to %s; asking the nodes in flight what became of their runs",
                                lost, bus_broker(e->bus)));
            engine_emit(e, warn, NULL);
            for (uint32_t k = 0; k < e->nstep; k++)
                e->job->nodes[e->step[k]].deadline_ms = clock_mono_ms();
        }
    }
}

static void engine_wait_io(struct engine *e)
{
    struct pollfd fds[2 + CTL_CLIENTS_MAX + 1];
    int ctl_fds[CTL_CLIENTS_MAX + 1];
    size_t n = 0, nctl = e->ctl ? ctl_server_fds(e->ctl, ctl_fds, CTL_CLIENTS_MAX + 1) : 0;
    long wait = engine_next_deadline(e), idle = bus_idle_ms(e->bus);

    if (wait < 0 || wait > ENGINE_POLL_MS)
        wait = ENGINE_POLL_MS;
    if (idle > 0 && wait > idle)
        wait = idle;
    if (bus_pending(e->bus))
        wait = 0;
    fds[n++] = (struct pollfd){e->cmdpipe[0], POLLIN, 0};
    if (bus_fd(e->bus) >= 0)
        fds[n++] = (struct pollfd){bus_fd(e->bus), POLLIN, 0};
    for (size_t i = 0; i < nctl; i++)
        fds[n++] = (struct pollfd){ctl_fds[i], POLLIN, 0};
    poll(fds, n, (int)wait);
    if (e->ctl)
        ctl_server_poll(e->ctl);
}

static void engine_loop(struct engine *e)
{
    while (!job_state_final(e->job->state)) {
        engine_commands(e);
        if (engine_drain_bus(e) < 0)
            break;
        engine_timers(e);
        engine_schedule(e);
        if (engine_settle(e))
            break;
        engine_publish(e);
        engine_wait_io(e);
    }
}

/* Run events after the end (linger): nobody judges them any more. */
static void engine_discard_bus(struct engine *e)
{
    struct bus_message m = {0};
    struct choir_error err = {0};

    while (bus_receive(e->bus, &m, 0, &err) == 1)
        bus_message_clear(&m);
    bus_message_clear(&m);
}

/* After the end: the front end's commands (a node's report for the
 * console's drill-down, status) until engine_wait says stop. */
static void engine_linger(struct engine *e)
{
    for (uint32_t i = 0; i < e->job->nnodes; i++)
        e->job->nodes[i].deadline_ms = 0;
    for (;;) {
        int stop;

        pthread_mutex_lock(&e->mu);
        stop = e->stop;
        pthread_mutex_unlock(&e->mu);
        if (stop)
            return;
        engine_commands(e);
        engine_publish(e);
        engine_wait_io(e);
        engine_discard_bus(e);
    }
}

static void *engine_main(void *arg)
{
    struct engine *e = arg;
    int ready = 0;

    e->started_ms = clock_wall_ms();
    engine_plan_event(e);
    engine_publish(e);
    if (e->resume) {
        engine_job_state(e, JOB_RUNNING, "resumed by %s", e->job->caller);
        engine_resume_probe(e);
        ready = 1;
    } else if (engine_preflight(e) == 0 && engine_lock_all(e) == 0) {
        engine_job_state(e, JOB_RUNNING, "running %u nodes in %u groups", e->job->nnodes,
                         e->job->ngroups);
        ready = 1;
    }
    if (ready)
        engine_loop(e);
    if (job_state_final(e->job->state) && e->job->state != JOB_REFUSED &&
        e->job->state != JOB_UNREACHABLE)
        engine_release(e);
    engine_result(e);
    engine_publish(e);
    pthread_mutex_lock(&e->mu);
    e->finished = 1;
    pthread_mutex_unlock(&e->mu);
    if (write(e->wake[1], "", 1) < 0) {
        /* the front end also checks engine_finished on its own */
    }
    if (e->linger)
        engine_linger(e);
    return NULL;
}

/* ---- public ------------------------------------------------------------------------------- */

static int engine_pipes(struct engine *e, struct choir_error *err)
{
    if (pipe2(e->wake, O_NONBLOCK | O_CLOEXEC) < 0 || pipe2(e->cmdpipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        error_set(err, CHOIR_EXIT_INTERNAL, "engine: pipe: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void engine_lock_text(struct engine *e)
{
    time_t now = time(NULL);
    struct tm tm;
    char when[20];

    localtime_r(&now, &tm);
    strftime(when, sizeof(when), "%m-%d %H:%M", &tm);
    /* at most 114 characters: disable takes 120 */
    snprintf(e->lock_message, sizeof(e->lock_message), "choir job %.64s by %.24s %s",
             e->job->id, e->job->caller, when);
}

static int engine_connect(struct engine *e, struct choir_error *err)
{
    struct netconf nc;
    char key[RPC_EVENT_KEY_MAX + 2];

    netconf_init(&nc, e->cfg, NULL);
    if (security_open(&e->sec, &nc.sec, err) < 0)
        return -1;
    if (bus_open(&e->bus, &nc.bus, err) < 0 ||
        rpc_client_init(&e->client, e->bus, e->sec, nc.bus.collective, err) < 0) {
        err->code = CHOIR_EXIT_SERVER;
        return -1;
    }
    e->client.on_event = engine_on_event;
    e->client.event_ctx = e;
    snprintf(key, sizeof(key), "%s.#", e->job->id);
    if (bus_bind_events(e->bus, key, err) < 0) {
        err->code = CHOIR_EXIT_SERVER;
        return -1;
    }
    return 0;
}

int engine_open(struct engine **out, const struct engine_config *c, struct choir_error *err)
{
    struct engine *e = xcalloc(1, sizeof(*e));
    json_t *plan;

    *out = e;
    e->cfg = c->cfg;
    e->job = c->job;
    e->journal = c->journal;
    e->resume = c->resume;
    e->want_ctl = c->control_socket;
    e->linger = c->linger;
    e->wake[0] = e->wake[1] = e->cmdpipe[0] = e->cmdpipe[1] = -1;
    e->ttl = config_get_int(c->cfg, "rpc.ttl");
    e->rpc_timeout_ms = (int)config_get_int(c->cfg, "rpc.timeout") * 1000;
    e->step = xcalloc(e->job->nnodes + 1, sizeof(*e->step));
    e->scratch = xcalloc(e->job->nnodes + 1, sizeof(*e->scratch));
    e->pending = json_array();
    e->queue = json_array();
    pthread_mutex_init(&e->mu, NULL);
    strtab_init(&e->names);
    strtab_reserve(&e->names, e->job->nnodes);
    for (uint32_t i = 0; i < e->job->nnodes; i++)
        strtab_intern(&e->names, e->job->nodes[i].name, strlen(e->job->nodes[i].name));
    if (!e->job->created_ms)
        e->job->created_ms = clock_wall_ms();
    engine_lock_text(e);
    plan = job_plan_json(e->job);
    e->plan_text = json_dumps(plan, JSON_COMPACT);
    json_decref(plan);
    if (engine_pipes(e, err) < 0 || engine_connect(e, err) < 0)
        return -1;
    if (e->want_ctl && ctl_server_open(&e->ctl, e->job->id, engine_on_ctl, e, err) < 0)
        return -1;
    engine_put_job(e);
    for (uint32_t i = 0; i < e->job->nnodes; i++)
        engine_put_node(e, i);
    if (journal_flush(e->journal, err) < 0)
        return -1;
    return 0;
}

int engine_start(struct engine *e, struct choir_error *err)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&e->thread, NULL, engine_main, e);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        error_set(err, CHOIR_EXIT_INTERNAL, "engine: cannot start the core thread: %s",
                  strerror(rc));
        return -1;
    }
    e->started = 1;
    return 0;
}

int engine_wake_fd(const struct engine *e)
{
    return e->wake[0];
}

size_t engine_take(struct engine *e, json_t **evs, size_t max)
{
    size_t n;
    char drain[256];

    while (read(e->wake[0], drain, sizeof(drain)) > 0)
        ;
    pthread_mutex_lock(&e->mu);
    n = json_array_size(e->queue) - e->qhead;
    n = n < max ? n : max;
    for (size_t i = 0; i < n; i++)
        evs[i] = json_incref(json_array_get(e->queue, e->qhead + i));
    e->qhead += n;
    if (e->qhead == json_array_size(e->queue)) { /* all taken: start afresh, O(1) per event */
        json_array_clear(e->queue);
        e->qhead = 0;
    }
    pthread_mutex_unlock(&e->mu);
    return n;
}

unsigned long engine_dropped(const struct engine *e)
{
    unsigned long d;

    pthread_mutex_lock((pthread_mutex_t *)&e->mu);
    d = e->dropped;
    pthread_mutex_unlock((pthread_mutex_t *)&e->mu);
    return d;
}

void engine_command(struct engine *e, const char *command, const char *arg, const char *actor)
{
    char one = 1;

    pthread_mutex_lock(&e->mu);
    e->cmds = xreallocarray(e->cmds, e->ncmds + 1, sizeof(*e->cmds));
    e->cmds[e->ncmds++] = (struct engine_cmd){xstrdup(command), xstrdup(arg ? arg : ""),
                                              xstrdup(actor)};
    pthread_mutex_unlock(&e->mu);
    if (write(e->cmdpipe[1], &one, 1) < 0) {
        /* the pipe is full: the core reads the queue anyway */
    }
}

int engine_finished(const struct engine *e)
{
    int f;

    pthread_mutex_lock((pthread_mutex_t *)&e->mu);
    f = e->finished && json_array_size(e->queue) == 0;
    pthread_mutex_unlock((pthread_mutex_t *)&e->mu);
    return f;
}

int engine_wait(struct engine *e)
{
    char one = 1;

    if (e->started) {
        pthread_mutex_lock(&e->mu);
        e->stop = 1;
        pthread_mutex_unlock(&e->mu);
        if (write(e->cmdpipe[1], &one, 1) < 0) {
            /* the pipe is full: the core thread wakes anyway */
        }
        pthread_join(e->thread, NULL);
        e->started = 0;
    }
    return e->exit_code;
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    engine_wait(e);
    ctl_server_close(e->ctl);
    bus_free(e->bus);
    security_free(e->sec);
    job_free(e->job);
    free(e->plan_text);
    strtab_done(&e->names);
    for (size_t i = 0; i < e->ncmds; i++) {
        free(e->cmds[i].command);
        free(e->cmds[i].arg);
        free(e->cmds[i].actor);
    }
    free(e->cmds);
    json_decref(e->pending);
    json_decref(e->queue);
    free(e->step);
    free(e->scratch);
    for (int i = 0; i < 2; i++) {
        if (e->wake[i] >= 0)
            close(e->wake[i]);
        if (e->cmdpipe[i] >= 0)
            close(e->cmdpipe[i]);
    }
    pthread_mutex_destroy(&e->mu);
    free(e);
}
