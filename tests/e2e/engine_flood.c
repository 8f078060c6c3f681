/* engine_flood.c - the pipe (DESIGN.md "Threads and the pipe"): the job
 * engine runs real jobs over a real broker against `choird --simulate`.
 *
 * Run by tests/e2e/engine_flood.sh, which starts the broker and the
 * simulator and writes the operator's config and the sites:
 *   engine_flood flood CONFIG JOURNAL_DIR SITE NODES GROUPS
 *   engine_flood read CONFIG JOURNAL_DIR SITE NODES GROUPS
 * Both plan SITE, build a job (job_from_plan), open the journal
 * JOURNAL_DIR/journal.db and start the engine.
 * - flood (whole groups): the consumer does not read at all.  It shrinks
 *   the wake pipe to one page and waits in engine_wait until the core
 *   thread has run the job and ended on its own (at most LIMIT_S: then
 *   SIGALRM fails the test); then it takes everything.  (engine_finished
 *   cannot be the signal: it is true only once every event was taken.)
 * - read (--canary 10 --batch 25): the consumer reads while the core
 *   works (so TSan sees both sides of the queue at once); when the
 *   canary pauses the job it asks for the status and resumes it (commands
 *   only then: a command that comes after the core's last look at them is
 *   not answered).
 * Then the checks:
 * - the result event: succeeded, NODES nodes, all succeeded, none locked;
 * - the journal: every node succeeded with a verdict, once, unlocked;
 * - nothing lost: every node's last node event taken is its final state
 *   (succeeded), node events taken + engine_dropped() cover the journal's;
 * - the order: per the journal, no node of group g+1 started before every
 *   node of group g finished; the stream shows the same, and its steps are
 *   the ones the job's policy makes (job.h);
 * - read: no step started while the job was paused; every command was
 *   answered "ok" and journaled with its actor.
 * Prints "ok - ..." / "FAIL - ..." per check and a closing
 * "engine_flood: N passed, M failed"; exits 1 when anything failed. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/engine.h"
#include "core/exitcode.h"
#include "core/job.h"
#include "core/journal.h"
#include "core/plan.h"
#include "core/site.h"

#define LIMIT_S 600
#define TAKE_MAX 4096
#define ACTOR "engine_flood"
#define READ_CANARY 10
#define READ_BATCH 25

static int passed, failed;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void check(int ok, const char *fmt, ...)
{
    va_list ap;

    printf("%s - ", ok ? "ok" : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (ok)
        passed++;
    else
        failed++;
}

static void die(const char *what, const struct choir_error *err)
{
    fprintf(stderr, "engine_flood: %s: %s\n", what, err ? err->msg : "");
    exit(2);
}

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- what the consumer took ------------------------------------------------------ */

/* What the taken events said about one node. */
struct seen {
    int events;            /* node events */
    int last;              /* its last node event's state, -1 none */
    int last_verdict;      /* that event had a verdict */
    int backwards;         /* a state that went back (e.g. running after succeeded) */
    long first_start;      /* index in the stream of its first starting/running event */
    long last_final;       /* index of its last final event */
};

struct taken {
    const struct job *shape;   /* the job as planned (ours, not the engine's) */
    struct engine *e;          /* read mode: where commands go; NULL: none */
    long index;
    size_t total, node, output, step;
    json_t *result;
    json_t *steps;             /* [group, nodes] of every step event, in order */
    struct seen *seen;
    /* read mode */
    int paused, pauses, resumed;
    size_t steps_while_paused, commands, replies, replies_ok;
};

static int state_rank(enum node_state s)
{
    return s == NODE_WAITING ? 0 : s == NODE_STARTING ? 1 : s == NODE_RUNNING ? 2 : 3;
}

static void command(struct taken *t, const char *cmd)
{
    engine_command(t->e, cmd, "", ACTOR);
    t->commands++;
}

/* read mode: the job's own state changes and the operator's answers. */
static void take_control(struct taken *t, const char *type, const json_t *ev)
{
    const char *state = json_string_value(json_object_get(ev, "state"));
    const char *reply = json_string_value(json_object_get(ev, "reply"));

    if (strcmp(type, "job") == 0 && state && strcmp(state, "paused") == 0) {
        t->paused = 1;
        t->pauses++;
        command(t, "status");
        command(t, "resume");
    } else if (strcmp(type, "job") == 0 && state && strcmp(state, "running") == 0 && t->paused) {
        t->paused = 0;
        t->resumed++;
    } else if (strcmp(type, "step") == 0) {
        t->steps_while_paused += t->paused;
    } else if (strcmp(type, "operator") == 0) {
        t->replies++;
        t->replies_ok += reply && strncmp(reply, "ok:", 3) == 0;
        if (!reply || strncmp(reply, "ok:", 3) != 0)
            printf("#   %s answered: %s\n", json_string_value(json_object_get(ev, "command")),
                   reply ? reply : "(nothing)");
    }
}

static void take_node(struct taken *t, const json_t *ev)
{
    const char *name = json_string_value(json_object_get(ev, "node"));
    long i = name ? job_find(t->shape, name) : -1;
    enum node_state s;
    struct seen *n;

    t->node++;
    if (i < 0 || node_state_parse(json_string_value(json_object_get(ev, "state")), &s) < 0) {
        check(0, "a node event for a node of the job with a known state: node %s, state %s",
              name ? name : "(none)", json_string_value(json_object_get(ev, "state")));
        return;
    }
    n = &t->seen[i];
    if (n->last >= 0 && state_rank(s) < state_rank((enum node_state)n->last))
        n->backwards++;
    n->events++;
    n->last = (int)s;
    n->last_verdict = json_string_value(json_object_get(ev, "verdict")) != NULL;
    if (node_state_in_flight(s) && n->first_start < 0)
        n->first_start = t->index;
    if (node_state_final(s))
        n->last_final = t->index;
}

static void take_one(struct taken *t, json_t *ev)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    const json_t *problems = json_object_get(ev, "problems");

    t->total++;
    t->index++;
    if (!type)
        type = "";
    if (t->e)
        take_control(t, type, ev);
    if (strcmp(type, "output") == 0)
        t->output++;
    if (strcmp(type, "step") == 0) {
        t->step++;
        json_array_append_new(t->steps, json_pack("[O, i]", json_object_get(ev, "group"),
                                                  (int)json_array_size(json_object_get(ev, "nodes"))));
    }
    if (strcmp(type, "preflight") == 0 && json_array_size(problems))
        printf("# preflight: %zu problems, the first: %s: %s\n", json_array_size(problems),
               json_string_value(json_object_get(json_array_get(problems, 0), "node")),
               json_string_value(json_object_get(json_array_get(problems, 0), "problem")));
    if (strcmp(type, "result") == 0) {
        json_decref(t->result);
        t->result = json_incref(ev);
    }
    if (strcmp(type, "node") == 0)
        take_node(t, ev);
}

/* Takes every event queued now; how many. */
static size_t take_all(struct taken *t, struct engine *e)
{
    json_t *evs[256];
    size_t n, total = 0;

    while ((n = engine_take(e, evs, sizeof(evs) / sizeof(evs[0]))) > 0) {
        for (size_t k = 0; k < n; k++) {
            take_one(t, evs[k]);
            json_decref(evs[k]);
        }
        total += n;
    }
    return total;
}

/* ---- the job ------------------------------------------------------------------------ */

static struct job *make_job(const struct config *cfg, const char *site_path, const char *id,
                            const struct job_options *base)
{
    struct choir_error err = {0};
    struct plan_options po = {NULL, 0};
    struct job_options o = *base;
    struct site *site;
    struct plan *plan;
    struct job *job;

    if (site_load_file(&site, site_path, 64u << 20, &err) < 0)
        die("site", &err);
    if (plan_compute(&plan, site, &po, &err) < 0)
        die("plan", &err);
    o.start_timeout_s = config_get_int(cfg, "job.start_timeout");
    o.run_timeout_s = config_get_int(cfg, "job.run_timeout");
    job = job_from_plan(plan, id, config_get(cfg, "puppet.certname"), site->environment, &o);
    plan_free(plan);
    site_free(site);
    return job;
}

/* The steps the job's policy makes, as [group, nodes] (job.h, every node
 * succeeding). */
static json_t *expected_steps(struct job *model)
{
    uint32_t *ids = calloc(model->nnodes + 1, sizeof(*ids)), n;
    json_t *steps = json_array();

    model->state = JOB_RUNNING;
    while ((n = job_next_step(model, ids)) > 0) {
        uint32_t *ch = calloc(model->nnodes + 1, sizeof(*ch));

        json_array_append_new(steps, json_pack("[i, i]", (int)model->nodes[ids[0]].group, (int)n));
        for (uint32_t k = 0; k < n; k++)
            job_node_finished(model, ids[k], true, "changed", "", ch);
        job_after_step(model);
        free(ch);
    }
    free(ids);
    return steps;
}

/* ---- checks ----------------------------------------------------------------------- */

struct journal_count {
    size_t node, operator_by_us;
};

static int count_event(void *ctx, const struct journal_event *ev)
{
    struct journal_count *c = ctx;

    c->node += strcmp(ev->kind, "node") == 0;
    c->operator_by_us += strcmp(ev->kind, "operator") == 0 && strcmp(ev->actor, ACTOR) == 0;
    return 0;
}

/* The journal after the job: every node succeeded, once, in group order. */
static void check_journal(struct journal *jr, const struct job *shape, const struct taken *t,
                          unsigned long dropped)
{
    struct choir_error err = {0};
    struct journal_node *rows = NULL;
    struct journal_job jj = {0};
    struct journal_count count = {0};
    uint32_t groups = shape->ngroups;
    size_t n = 0, bad = 0, twice = 0, locked = 0, order = 0;
    long long *first_start = calloc(groups + 1, sizeof(long long));
    long long *last_finish = calloc(groups + 1, sizeof(long long));

    if (journal_job_get(jr, shape->id, &jj, &err) < 0 ||
        journal_nodes(jr, shape->id, &rows, &n, &err) < 0 ||
        journal_events(jr, shape->id, 0, count_event, &count, &err) < 0)
        die("journal", &err);
    check(strcmp(jj.state, "succeeded") == 0, "the journal's job is succeeded (%s: %s)", jj.state,
          jj.reason);
    check(n == shape->nnodes, "the journal has %zu nodes (want %u)", n, shape->nnodes);
    for (size_t k = 0; k < n; k++) {
        const struct journal_node *r = &rows[k];
        uint32_t g = (uint32_t)r->group;

        bad += strcmp(r->state, "succeeded") != 0 || !r->verdict[0] || r->exit_code < 0 ||
               !r->started_ms || r->finished_ms < r->started_ms || g >= groups;
        twice += r->attempts != 1;
        locked += r->locked != 0;
        if (g >= groups)
            continue;
        if (!first_start[g] || r->started_ms < first_start[g])
            first_start[g] = r->started_ms;
        if (r->finished_ms > last_finish[g])
            last_finish[g] = r->finished_ms;
        if (bad == 1 && (strcmp(r->state, "succeeded") != 0 || !r->verdict[0]))
            printf("#   first bad node: %s %s verdict '%s' reason '%s'\n", r->node, r->state,
                   r->verdict, r->reason);
    }
    for (uint32_t g = 0; g < groups; g++)
        printf("# group %u: started %lld ms, last verdict %lld ms after the job was created\n",
               g + 1, first_start[g] - jj.created_ms, last_finish[g] - jj.created_ms);
    printf("# the job ended %lld ms after it was created\n", jj.updated_ms - jj.created_ms);
    check(bad == 0, "every node succeeded with a verdict, an exit code and its times (%zu not)", bad);
    check(twice == 0, "every node ran exactly once (%zu with attempts != 1)", twice);
    for (size_t k = 0, shown = 0; k < n && shown < 3; k++)
        if (rows[k].attempts != 1 && ++shown)
            printf("#   %s: attempts %d, run_id %s\n", rows[k].node, rows[k].attempts,
                   rows[k].run_id);
    check(locked == 0, "no node is left locked (%zu are)", locked);
    for (uint32_t g = 0; g + 1 < groups; g++)
        if (first_start[g + 1] < last_finish[g]) {
            order++;
            printf("#   group %u started at %lld, before group %u finished at %lld\n", g + 2,
                   first_start[g + 1], g + 1, last_finish[g]);
        }
    check(order == 0, "groups in order: every node of group g+1 started after every node of "
          "group g finished (journal times)");
    check(t->node <= count.node && t->node + dropped >= count.node,
          "node events: %zu taken + %lu dropped cover the journal's %zu", t->node, dropped,
          count.node);
    if (t->e)
        check(count.operator_by_us == t->commands, "the journal has our %zu commands (%zu)",
              t->commands, count.operator_by_us);
    journal_nodes_free(rows, n);
    journal_job_clear(&jj);
    free(first_start);
    free(last_finish);
}

/* The stream: every node's last node event is its final state; in the
 * order taken, no node of group g+1 starts before group g's last final
 * state; the steps are the policy's. */
static void check_stream(const struct taken *t, json_t *want_steps, unsigned long dropped)
{
    const struct job *shape = t->shape;
    size_t missing = 0, not_final = 0, backwards = 0, order = 0;
    uint32_t groups = shape->ngroups;
    long *first_start = malloc((groups + 1) * sizeof(long));
    long *last_final = malloc((groups + 1) * sizeof(long));
    char *want, *got;

    for (uint32_t g = 0; g < groups; g++)
        first_start[g] = last_final[g] = -1;
    for (uint32_t i = 0; i < shape->nnodes; i++) {
        const struct seen *n = &t->seen[i];
        uint32_t g = shape->nodes[i].group;

        if (n->events == 0) {
            missing++;
            continue;
        }
        not_final += n->last != NODE_SUCCEEDED || !n->last_verdict;
        backwards += n->backwards != 0;
        if (n->first_start >= 0 && (first_start[g] < 0 || n->first_start < first_start[g]))
            first_start[g] = n->first_start;
        if (n->last_final > last_final[g])
            last_final[g] = n->last_final;
    }
    for (uint32_t g = 0; g + 1 < groups; g++)
        order += first_start[g + 1] >= 0 && first_start[g + 1] < last_final[g];
    check(missing == 0 || dropped > 0,
          "every node's state reached the consumer (%zu nodes without a node event, %lu dropped)",
          missing, dropped);
    check(not_final == 0, "every node's last node event is succeeded with a verdict (%zu not)",
          not_final);
    check(backwards == 0, "no node's events go backwards (%zu do)", backwards);
    check(order == 0, "in the stream, no node of group g+1 starts before group g's last verdict");
    want = json_dumps(want_steps, JSON_COMPACT);
    got = json_dumps(t->steps, JSON_COMPACT);
    check(strcmp(want, got) == 0, "the steps [group, nodes] are the policy's: %.200s%s", got,
          strlen(got) > 200 ? "..." : "");
    if (strcmp(want, got) != 0)
        printf("#   want %.300s\n", want);
    free(want);
    free(got);
    free(first_start);
    free(last_final);
}

static void check_result(const json_t *r, uint32_t nodes)
{
    const char *state = json_string_value(json_object_get(r, "state"));

    check(r != NULL, "a result event was taken");
    if (!r)
        return;
    check(state && strcmp(state, "succeeded") == 0, "the result says succeeded (%s: %s)",
          state ? state : "(none)", json_string_value(json_object_get(r, "reason")));
    check(json_integer_value(json_object_get(r, "nodes")) == nodes &&
              json_integer_value(json_object_get(r, "succeeded")) == nodes,
          "the result: %lld nodes, %lld succeeded (want %u)",
          (long long)json_integer_value(json_object_get(r, "nodes")),
          (long long)json_integer_value(json_object_get(r, "succeeded")), nodes);
    check(json_integer_value(json_object_get(r, "failed")) == 0 &&
              json_integer_value(json_object_get(r, "skipped")) == 0 &&
              json_integer_value(json_object_get(r, "not_reached")) == 0 &&
              json_integer_value(json_object_get(r, "locked")) == 0 &&
              json_integer_value(json_object_get(r, "exit_code")) == CHOIR_EXIT_OK,
          "the result: none failed, skipped, not reached or locked; exit code 0");
}

/* ---- the two consumers ---------------------------------------------------------------- */

static void on_alarm(int sig)
{
    static const char msg[] = "FAIL - the core thread did not end within the limit\n"
                              "engine_flood: the core is stuck\n";

    (void)sig;
    if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0) {
        /* nothing more to do */
    }
    _exit(1);
}

/* Reads nothing until the core thread ended on its own (engine_wait, at
 * most LIMIT_S), then takes everything. */
static void consume_flood(struct engine *e, struct taken *t)
{
    int pipe_size = fcntl(engine_wake_fd(e), F_SETPIPE_SZ, 4096), queued = -1;
    long long t0 = mono_ms();

    signal(SIGALRM, on_alarm);
    alarm(LIMIT_S);
    engine_wait(e);
    alarm(0);
    check(1, "the core thread finished the job and ended while nobody read (%lld ms)",
          mono_ms() - t0);
    if (ioctl(engine_wake_fd(e), FIONREAD, &queued) < 0)
        queued = -1;
    printf("# wake pipe: %d bytes waiting of %d\n", queued, pipe_size);
    check(!engine_finished(e), "engine_finished is false while events wait to be taken");
    take_all(t, e);
    check(engine_finished(e), "engine_finished is true once they were all taken");
}

/* Reads as the events come, sends commands; 0, or -1 when the job never
 * ended. */
static int consume_read(struct engine *e, struct taken *t)
{
    long long t0 = mono_ms();
    size_t wakes = 0;

    t->e = e;
    while (!engine_finished(e) && mono_ms() - t0 < LIMIT_S * 1000LL) {
        struct pollfd p = {engine_wake_fd(e), POLLIN, 0};

        if (poll(&p, 1, 100) > 0)
            wakes++;
        take_all(t, e);
    }
    if (!engine_finished(e)) {
        check(0, "the engine finished within %d s", LIMIT_S);
        return -1;
    }
    take_all(t, e);
    check(1, "the engine finished the job while the consumer read (%lld ms, %zu wake-ups)",
          mono_ms() - t0, wakes);
    check(t->pauses == 1 && t->resumed == 1, "the canary paused the job once and our resume "
          "went on (%d pauses, %d resumed)", t->pauses, t->resumed);
    check(t->steps_while_paused == 0, "no step started while the job was paused (%zu did)",
          t->steps_while_paused);
    check(t->replies == t->commands && t->replies_ok == t->commands,
          "every command was answered ok (%zu sent, %zu answers, %zu ok)", t->commands, t->replies,
          t->replies_ok);
    return 0;
}

int main(int argc, char **argv)
{
    struct choir_error err = {0};
    struct config *cfg;
    struct journal *jr;
    struct job *job, *shape, *model;
    struct engine *e = NULL;
    struct taken t = {0};
    struct job_options o;
    char path[4096];
    int rc, reading;
    unsigned long dropped;
    uint32_t nodes, groups;
    json_t *want_steps;

    if (argc != 7 || (strcmp(argv[1], "flood") != 0 && strcmp(argv[1], "read") != 0)) {
        fprintf(stderr, "usage: engine_flood flood|read CONFIG JOURNAL_DIR SITE NODES GROUPS\n");
        return 2;
    }
    reading = strcmp(argv[1], "read") == 0;
    nodes = (uint32_t)strtoul(argv[5], NULL, 10);
    groups = (uint32_t)strtoul(argv[6], NULL, 10);
    cfg = config_new(CONFIG_CHOIR);
    if (config_load_standard(cfg, argv[2], &err) < 0)
        die("config", &err);
    job_options_default(&o);
    if (reading) {
        o.canary = READ_CANARY;
        o.batch = READ_BATCH;
    }
    job = make_job(cfg, argv[4], reading ? "READ1" : "FLOOD1", &o);
    shape = make_job(cfg, argv[4], job->id, &o);   /* the engine takes job over; this one is ours */
    model = make_job(cfg, argv[4], job->id, &o);
    want_steps = expected_steps(model);
    job_free(model);
    check(job->nnodes == nodes && job->ngroups == groups, "the plan: %u nodes in %u groups",
          job->nnodes, job->ngroups);
    snprintf(path, sizeof(path), "%s/journal.db", argv[3]);
    if (journal_open(&jr, path, &err) < 0)
        die("journal", &err);

    t.shape = shape;
    t.seen = calloc(shape->nnodes, sizeof(*t.seen));
    t.steps = json_array();
    for (uint32_t i = 0; i < shape->nnodes; i++) {
        t.seen[i].last = -1;
        t.seen[i].first_start = t.seen[i].last_final = -1;
    }
    struct engine_config ec = {.cfg = cfg, .job = job, .journal = jr};
    if (engine_open(&e, &ec, &err) < 0 || engine_start(e, &err) < 0)
        die("engine", &err);
    if (!reading) {
        consume_flood(e, &t);
    } else if (consume_read(e, &t) < 0) {
        printf("engine_flood: %d passed, %d failed\n", passed, failed);
        fflush(stdout);
        _exit(1); /* the core thread is still going */
    }
    dropped = engine_dropped(e);
    rc = engine_wait(e);
    printf("# events taken: %zu (%zu node, %zu output, %zu step); dropped %lu\n", t.total, t.node,
           t.output, t.step, dropped);
    check(rc == CHOIR_EXIT_OK, "engine_wait: exit code %d (want 0)", rc);
    check_result(t.result, nodes);
    check_stream(&t, want_steps, dropped);
    check_journal(jr, shape, &t, dropped);

    engine_free(e);
    journal_close(jr);
    job_free(shape);
    json_decref(t.result);
    json_decref(t.steps);
    json_decref(want_steps);
    free(t.seen);
    config_free(cfg);
    printf("engine_flood: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
