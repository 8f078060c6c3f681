/* test_job.c - the job model and its policies (src/core/job.h) on jobs made
 * from real plans: groups strictly in order, batch slicing in plan order,
 * the canary, the default stop, failure budgets (count and percentage),
 * --contain on a diamond and a chain, retry, state names, the plan as JSON
 * and back (and damaged JSON refused), and a job restored from journal
 * rows. */
#include "cmocka_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/job.h"
#include "core/journal.h"
#include "core/plan.h"
#include "core/site.h"

#define EXAMPLES CHOIR_SOURCE_DIR "/examples/"

/* ---- jobs from sites --------------------------------------------------------------- */

/* A site of one application from "node:produces:consumes;..." (capability
 * lists comma separated, "-" for none), one component per entry. */
static char *site_text(const char *desc)
{
    json_t *comps = json_object();
    char copy[4096], *save = NULL;
    json_t *site;
    char *text;
    int k = 0;

    snprintf(copy, sizeof(copy), "%s", desc);
    for (char *c = strtok_r(copy, ";", &save); c; c = strtok_r(NULL, ";", &save)) {
        char *fs = NULL, *node = strtok_r(c, ":", &fs), *lists[2], name[64];
        json_t *caps[2];

        lists[0] = strtok_r(NULL, ":", &fs);
        lists[1] = strtok_r(NULL, ":", &fs);
        for (int l = 0; l < 2; l++) {
            char *ls = NULL;

            caps[l] = json_array();
            if (!lists[l] || strcmp(lists[l], "-") == 0)
                continue;
            for (char *cap = strtok_r(lists[l], ",", &ls); cap; cap = strtok_r(NULL, ",", &ls))
                json_array_append_new(caps[l], json_string(cap));
        }
        snprintf(name, sizeof(name), "Comp[%d]", k++);
        json_object_set_new(comps, name, json_pack("{s:s, s:o, s:o}", "node", node, "produces",
                                                   caps[0], "consumes", caps[1]));
    }
    site = json_pack("{s:s, s:{s:o}}", "environment", "production", "applications", "App[t]",
                     comps);
    text = json_dumps(site, JSON_COMPACT);
    json_decref(site);
    return text;
}

static struct job *job_of_site(struct site *site, const struct job_options *o)
{
    struct plan_options po = {NULL, 0};
    struct plan *plan;
    struct choir_error err = {0};
    struct job *job;

    if (plan_compute(&plan, site, &po, &err) < 0)
        fail_msg("plan: %s", err.msg);
    job = job_from_plan(plan, "J1", "alice.mcollective", "production", o);
    plan_free(plan);
    site_free(site);
    return job;
}

static struct job *job_desc(const char *desc, const struct job_options *o)
{
    char *text = site_text(desc);
    struct site *site;
    struct choir_error err = {0};

    if (site_parse(&site, text, strlen(text), "t.json", &err) < 0)
        fail_msg("site: %s\n%s", err.msg, text);
    free(text);
    return job_of_site(site, o);
}

static struct job *job_sample(const struct job_options *o)
{
    struct site *site;
    struct choir_error err = {0};

    if (site_load_file(&site, EXAMPLES "sample_app.json", 1 << 20, &err) < 0)
        fail_msg("%s", err.msg);
    return job_of_site(site, o);
}

static struct job_options opts(void)
{
    struct job_options o;

    job_options_default(&o);
    return o;
}

/* ---- running steps by hand ------------------------------------------------------------ */

/* "a b | c" : names of the nodes ids[0..n). */
static const char *names_of(const struct job *job, const uint32_t *ids, uint32_t n)
{
    static char buf[1024];
    size_t len = 0;

    buf[0] = '\0';
    for (uint32_t k = 0; k < n; k++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", k ? " " : "",
                                job->nodes[ids[k]].name);
    return buf;
}

/* The next step, its nodes set in flight; checks the group-order contract:
 * no node of a group before the step's is waiting or in flight, and every
 * node of the step is in that group. */
static uint32_t step(struct job *job, uint32_t *ids)
{
    uint32_t n = job_next_step(job, ids);

    for (uint32_t k = 0; k < n; k++) {
        uint32_t g = job->nodes[ids[k]].group;

        assert_int_equal(g, job->nodes[ids[0]].group);
        assert_int_equal(job->nodes[ids[k]].state, NODE_WAITING);
        assert_int_equal(job->nodes[ids[k]].step, job->steps);
        for (uint32_t i = 0; i < job->nnodes; i++)
            if (job->nodes[i].group < g)
                assert_false(job->nodes[i].state == NODE_WAITING ||
                             node_state_in_flight(job->nodes[i].state));
    }
    for (uint32_t k = 0; k < n; k++)
        job_node_set(job, ids[k], NODE_RUNNING, "running");
    return n;
}

/* Ends the step ids[0..n): the nodes named in `failing` (space separated)
 * fail, the others succeed; returns job_after_step's decision. */
static enum job_decision finish(struct job *job, const uint32_t *ids, uint32_t n,
                                const char *failing)
{
    uint32_t *changed = calloc(job->nnodes, sizeof(*changed));

    for (uint32_t k = 0; k < n; k++) {
        const char *name = job->nodes[ids[k]].name;
        const char *hit = strstr(failing, name);
        bool fails = hit && (hit == failing || hit[-1] == ' ') &&
                     (hit[strlen(name)] == '\0' || hit[strlen(name)] == ' ');

        if (job->nodes[ids[k]].state == NODE_RUNNING)
            job_node_finished(job, ids[k], !fails, fails ? "failed" : "changed",
                              fails ? "the run failed" : "the run changed something", changed);
    }
    free(changed);
    return job_after_step(job);
}

/* Runs the job to its end, every step succeeding except the nodes in
 * `failing`; the steps as "a b | c | d" (each step's nodes). */
static const char *run_all(struct job *job, const char *failing)
{
    static char out[2048];
    uint32_t *ids = calloc(job->nnodes + 1, sizeof(*ids)), n;
    size_t len = 0;

    out[0] = '\0';
    job->state = JOB_RUNNING;
    while ((n = step(job, ids)) > 0) {
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", len ? " | " : "",
                                names_of(job, ids, n));
        if (finish(job, ids, n, failing) != JOB_CONTINUE)
            break;
    }
    free(ids);
    return out;
}

static struct job_node *node(struct job *job, const char *name)
{
    long i = job_find(job, name);

    if (i < 0)
        fail_msg("no node %s", name);
    return &job->nodes[i];
}

/* Three layers: a, b (group 0); c, d, e (group 1, consuming from a and b);
 * f (group 2, consuming from c). */
#define LAYERS "a:A:-;b:B:-;c:C:A;d:-:B;e:-:A,B;f:-:C"

/* ---- tests ----------------------------------------------------------------------------- */

static void test_state_names(void **state)
{
    (void)state;
#define JOB_ROUND(id, name)                                                              \
    {                                                                                    \
        enum job_state s = JOB_PLANNED;                                                  \
        assert_string_equal(job_state_name(id), name);                                   \
        assert_int_equal(job_state_parse(name, &s), 0);                                  \
        assert_int_equal(s, id);                                                         \
    }
    JOB_STATES(JOB_ROUND)
#undef JOB_ROUND
#define NODE_ROUND(id, name)                                                             \
    {                                                                                    \
        enum node_state s = NODE_SKIPPED;                                                \
        assert_string_equal(node_state_name(id), name);                                  \
        assert_int_equal(node_state_parse(name, &s), 0);                                 \
        assert_int_equal(s, id);                                                         \
    }
    NODE_STATES(NODE_ROUND)
#undef NODE_ROUND
    enum job_state js = JOB_PAUSED;
    enum node_state ns = NODE_RUNNING;

    assert_int_equal(job_state_parse("Running", &js), -1);
    assert_int_equal(job_state_parse("", &js), -1);
    assert_int_equal(job_state_parse(NULL, &js), -1);
    assert_int_equal(js, JOB_PAUSED);
    assert_int_equal(node_state_parse("done", &ns), -1);
    assert_int_equal(node_state_parse("waiting ", &ns), -1);
    assert_int_equal(ns, NODE_RUNNING);
    assert_string_equal(job_state_name((enum job_state)99), "?");
    assert_string_equal(node_state_name((enum node_state)99), "?");
    assert_true(node_state_final(NODE_SKIPPED) && !node_state_final(NODE_RUNNING));
    assert_true(node_state_in_flight(NODE_STARTING) && !node_state_in_flight(NODE_WAITING));
    assert_true(job_state_final(JOB_REFUSED) && !job_state_final(JOB_PAUSED));
}

static void test_from_plan_sample(void **state)
{
    struct job_options o = opts();
    struct job *job = job_sample(&o);

    (void)state;
    assert_int_equal(job->nnodes, 4);
    assert_int_equal(job->ngroups, 2);
    assert_string_equal(job->id, "J1");
    assert_string_equal(job->caller, "alice.mcollective");
    assert_string_equal(job->environment, "production");
    assert_int_equal(job->state, JOB_PLANNED);
    const char *want[] = {"dev1.devco.net", "dev2.devco.net", "dev3.devco.net", "dev4.devco.net"};
    for (uint32_t i = 0; i < 4; i++) {
        assert_string_equal(job->nodes[i].name, want[i]);
        assert_int_equal(job->nodes[i].group, i == 0 ? 0 : 1);
        assert_int_equal(job->nodes[i].state, NODE_WAITING);
        assert_int_equal(job->nodes[i].exit_code, -1);
        assert_int_equal(job->nodes[i].step, 0);
        assert_int_equal(job->nodes[i].ndependents, i == 0 ? 3 : 0);
    }
    for (uint32_t d = 0; d < 3; d++)
        assert_int_equal(job->nodes[0].dependents[d], d + 1);
    assert_int_equal(job_find(job, "dev3.devco.net"), 2);
    assert_int_equal(job_find(job, "dev5.devco.net"), -1);
    assert_int_equal(job_remaining(job), 4);
    assert_int_equal(job_budget(job), -1);
    /* the whole group is one step; the web group waits for the database */
    assert_string_equal(run_all(job, ""),
                        "dev1.devco.net | dev2.devco.net dev3.devco.net dev4.devco.net");
    assert_int_equal(job_count(job, NODE_SUCCEEDED), 4);
    assert_int_equal(job_remaining(job), 0);
    job_free(job);
}

static void test_groups_strictly_in_order(void **state)
{
    struct job_options o = opts();
    struct job *job;
    uint32_t ids[8], n, changed[8];

    (void)state;
    o.batch = 2;
    job = job_desc(LAYERS, &o);
    assert_int_equal(job->ngroups, 3);
    /* not running: no step */
    assert_int_equal(job_next_step(job, ids), 0);
    assert_int_equal(job->steps, 0);
    job->state = JOB_RUNNING;
    n = step(job, ids);
    assert_string_equal(names_of(job, ids, n), "a b");
    /* a step in flight: nothing more, even once one node of it is done */
    assert_int_equal(job_next_step(job, ids + n), 0);
    job_node_finished(job, ids[0], true, "changed", "ok", changed);
    assert_int_equal(job_next_step(job, ids + n), 0);
    job_node_set(job, ids[1], NODE_STARTING, "starting");
    assert_int_equal(job_next_step(job, ids + n), 0);
    /* paused: no step */
    job_node_finished(job, ids[1], true, "changed", "ok", changed);
    assert_int_equal(job_after_step(job), JOB_CONTINUE);
    job->state = JOB_PAUSED;
    assert_int_equal(job_next_step(job, ids), 0);
    job->state = JOB_RUNNING;
    n = step(job, ids);
    assert_string_equal(names_of(job, ids, n), "c d");
    assert_int_equal(job->nodes[ids[0]].step, 2);
    assert_int_equal(finish(job, ids, n, ""), JOB_CONTINUE);
    n = step(job, ids);
    assert_string_equal(names_of(job, ids, n), "e");
    /* group 2 (f) waits while e runs */
    assert_int_equal(job_next_step(job, ids + n), 0);
    assert_int_equal(finish(job, ids, n, ""), JOB_CONTINUE);
    n = step(job, ids);
    assert_string_equal(names_of(job, ids, n), "f");
    assert_int_equal(finish(job, ids, n, ""), JOB_CONTINUE);
    assert_int_equal(job_next_step(job, ids), 0);
    assert_int_equal(job->steps, 4);
    assert_int_equal(job_count(job, NODE_SUCCEEDED), 6);
    job_free(job);
}

static void test_group_waits_for_a_waiting_node(void **state)
{
    struct job_options o = opts();
    struct job *job;
    uint32_t ids[8], n;

    (void)state;
    o.batch = 1;
    job = job_desc(LAYERS, &o);
    job->state = JOB_RUNNING;
    n = step(job, ids);
    assert_string_equal(names_of(job, ids, n), "a");
    assert_int_equal(finish(job, ids, n, ""), JOB_CONTINUE);
    /* b still waits: group 1 must not start */
    n = step(job, ids);
    assert_string_equal(names_of(job, ids, n), "b");
    assert_int_equal(finish(job, ids, n, ""), JOB_CONTINUE);
    /* a node skipped by an operator no longer holds its group back */
    job_node_set(job, (uint32_t)job_find(job, "c"), NODE_SKIPPED, "skipped by bob");
    job_node_set(job, (uint32_t)job_find(job, "d"), NODE_SKIPPED, "skipped by bob");
    job_node_set(job, (uint32_t)job_find(job, "e"), NODE_SKIPPED, "skipped by bob");
    n = step(job, ids);
    assert_string_equal(names_of(job, ids, n), "f");
    job_free(job);
}

static void test_batch_slicing(void **state)
{
    struct job_options o = opts();
    struct job *job;

    (void)state;
    o.batch = 2;
    /* names out of order in the site: plan order is by certname per group */
    job = job_desc("n5:P:-;n3:-:-;n1:-:-;n4:-:-;n2:-:-;w2:-:P;w1:-:P;w3:-:P", &o);
    assert_string_equal(run_all(job, ""), "n1 n2 | n3 n4 | n5 | w1 w2 | w3");
    assert_int_equal(node(job, "n5")->step, 3);
    assert_int_equal(node(job, "w3")->step, 5);
    job_free(job);

    o.batch = 3;
    job = job_desc("n5:P:-;n3:-:-;n1:-:-;n4:-:-;n2:-:-;w2:-:P;w1:-:P;w3:-:P", &o);
    assert_string_equal(run_all(job, ""), "n1 n2 n3 | n4 n5 | w1 w2 w3");
    job_free(job);

    o.batch = 100;
    job = job_desc("n5:P:-;n3:-:-;n1:-:-;n4:-:-;n2:-:-;w2:-:P;w1:-:P;w3:-:P", &o);
    assert_string_equal(run_all(job, ""), "n1 n2 n3 n4 n5 | w1 w2 w3");
    job_free(job);
}

static void test_canary(void **state)
{
    struct job_options o = opts();
    struct job *job;
    uint32_t ids[16], n;

    (void)state;
    o.canary = 1;
    o.batch = 2;
    job = job_desc("n5:P:-;n3:-:-;n1:-:-;n4:-:-;n2:-:-;w2:-:P;w1:-:P;w3:-:P", &o);
    job->state = JOB_RUNNING;
    n = step(job, ids);
    assert_string_equal(names_of(job, ids, n), "n1");
    assert_int_equal(finish(job, ids, n, ""), JOB_PAUSE_CANARY);
    assert_true(job->canary_done);
    /* later steps are of --batch, and pause no more */
    assert_string_equal(run_all(job, ""), "n2 n3 | n4 n5 | w1 w2 | w3");
    job_free(job);

    /* canary 3 without --batch: then whole groups */
    o.canary = 3;
    o.batch = 0;
    job = job_desc("n5:P:-;n3:-:-;n1:-:-;n4:-:-;n2:-:-;w2:-:P;w1:-:P;w3:-:P", &o);
    job->state = JOB_RUNNING;
    n = step(job, ids);
    assert_string_equal(names_of(job, ids, n), "n1 n2 n3");
    assert_int_equal(finish(job, ids, n, ""), JOB_PAUSE_CANARY);
    assert_string_equal(run_all(job, ""), "n4 n5 | w1 w2 w3");
    job_free(job);

    /* a failing canary stops the job (no pause) */
    o.canary = 1;
    job = job_desc("n5:P:-;n3:-:-;n1:-:-;n4:-:-;n2:-:-;w2:-:P;w1:-:P;w3:-:P", &o);
    job->state = JOB_RUNNING;
    n = step(job, ids);
    assert_int_equal(finish(job, ids, n, "n1"), JOB_STOP_FAILED);
    job_free(job);
}

static void test_default_stops_after_failed_step(void **state)
{
    struct job_options o = opts();
    struct job *job;

    (void)state;
    o.batch = 2;
    job = job_desc("n1:P:-;n2:-:-;n3:-:-;n4:-:-;w1:-:P", &o);
    /* the step with the failure runs to its end, then the job stops */
    assert_string_equal(run_all(job, "n2"), "n1 n2");
    assert_int_equal(node(job, "n1")->state, NODE_SUCCEEDED);
    assert_int_equal(node(job, "n2")->state, NODE_FAILED);
    assert_string_equal(node(job, "n2")->verdict, "failed");
    assert_string_equal(node(job, "n2")->reason, "the run failed");
    assert_int_equal(job_after_step(job), JOB_STOP_FAILED);
    /* not reached: still waiting */
    assert_int_equal(node(job, "n3")->state, NODE_WAITING);
    assert_int_equal(node(job, "w1")->state, NODE_WAITING);
    assert_int_equal(job_remaining(job), 3);
    job_free(job);
}

static void test_budget_count(void **state)
{
    const char *site = "n1:P:-;n2:-:-;n3:-:-;n4:-:-;n5:-:-;n6:-:-;w1:-:P;w2:-:P";
    struct job_options o = opts();
    struct job *job;

    (void)state;
    o.batch = 2;
    o.max_failures = 2;
    job = job_desc(site, &o);
    assert_int_equal(job_budget(job), 2);
    /* at the limit (2 failed of 2 allowed) the job goes on, across steps */
    assert_string_equal(run_all(job, "n1 n4"), "n1 n2 | n3 n4 | n5 n6 | w1 w2");
    assert_int_equal(job_count(job, NODE_FAILED), 2);
    assert_int_equal(job_count(job, NODE_SUCCEEDED), 6);
    job_free(job);

    job = job_desc(site, &o);
    /* the third failure is over the budget */
    assert_string_equal(run_all(job, "n1 n4 n5"), "n1 n2 | n3 n4 | n5 n6");
    assert_int_equal(job_after_step(job), JOB_STOP_BUDGET);
    assert_int_equal(job_remaining(job), 2);
    job_free(job);

    o.max_failures = 0;
    job = job_desc(site, &o);
    assert_int_equal(job_budget(job), 0);
    assert_string_equal(run_all(job, "n2"), "n1 n2");
    assert_int_equal(job_after_step(job), JOB_STOP_BUDGET);
    job_free(job);

    o.max_failures = 0;
    job = job_desc(site, &o);
    assert_string_equal(run_all(job, ""), "n1 n2 | n3 n4 | n5 n6 | w1 w2");
    job_free(job);
}

static void test_budget_percent(void **state)
{
    /* ten nodes */
    const char *site = "n0:P:-;n1:-:-;n2:-:-;n3:-:-;n4:-:-;n5:-:-;n6:-:-;n7:-:-;w1:-:P;w2:-:P";
    struct job_options o = opts();
    struct job *job;

    (void)state;
    o.batch = 3;
    o.max_failures = 25;
    o.max_failures_pct = 1;
    job = job_desc(site, &o);
    assert_int_equal(job->nnodes, 10);
    /* 25% of 10 nodes is 2.5: rounded down, 2 */
    assert_int_equal(job_budget(job), 2);
    assert_string_equal(run_all(job, "n0 w2"), "n0 n1 n2 | n3 n4 n5 | n6 n7 | w1 w2");
    assert_int_equal(job_count(job, NODE_FAILED), 2);
    job_free(job);

    job = job_desc(site, &o);
    assert_string_equal(run_all(job, "n0 n3 n7"), "n0 n1 n2 | n3 n4 n5 | n6 n7");
    assert_int_equal(job_after_step(job), JOB_STOP_BUDGET);
    job_free(job);

    /* 9% of 10 is 0: the first failure is over */
    o.max_failures = 9;
    job = job_desc(site, &o);
    assert_int_equal(job_budget(job), 0);
    assert_string_equal(run_all(job, "n4"), "n0 n1 n2 | n3 n4 n5");
    assert_int_equal(job_after_step(job), JOB_STOP_BUDGET);
    job_free(job);

    o.max_failures = 100;
    job = job_desc(site, &o);
    assert_int_equal(job_budget(job), 10);
    job_free(job);
}

/* Diamond a -> b, c -> d beside an independent branch e -> f. */
#define DIAMOND "a:A:-;b:B:A;c:C:A;d:-:B,C;e:E:-;f:-:E"

static void test_contain_diamond(void **state)
{
    struct job_options o = opts();
    struct job *job;
    uint32_t ids[8], n, changed[8], nchanged;
    char seen[8] = {0};

    (void)state;
    o.contain = 1;
    job = job_desc(DIAMOND, &o);
    assert_int_equal(job->ngroups, 3);
    job->state = JOB_RUNNING;
    n = step(job, ids);
    assert_string_equal(names_of(job, ids, n), "a e");
    nchanged = job_node_finished(job, (uint32_t)job_find(job, "a"), false, "failed", "boom",
                                 changed);
    /* a and exactly its transitive dependents, each once */
    assert_int_equal(nchanged, 4);
    assert_int_equal(changed[0], job_find(job, "a"));
    for (uint32_t k = 0; k < nchanged; k++) {
        assert_false(seen[changed[k]]);
        seen[changed[k]] = 1;
    }
    assert_true(seen[job_find(job, "b")] && seen[job_find(job, "c")] && seen[job_find(job, "d")]);
    assert_int_equal(node(job, "a")->state, NODE_FAILED);
    assert_string_equal(node(job, "a")->reason, "boom");
    for (const char *const *s = (const char *const[]){"b", "c", "d", NULL}; *s; s++) {
        assert_int_equal(node(job, *s)->state, NODE_SKIPPED);
        assert_string_equal(node(job, *s)->reason, "blocked: depends on a which failed");
    }
    assert_int_equal(node(job, "e")->state, NODE_RUNNING);
    assert_int_equal(node(job, "f")->state, NODE_WAITING);
    job_node_finished(job, (uint32_t)job_find(job, "e"), true, "changed", "ok", changed);
    /* contain without a budget: the job goes on with the independent branch */
    assert_int_equal(job_after_step(job), JOB_CONTINUE);
    n = step(job, ids);
    assert_string_equal(names_of(job, ids, n), "f");
    assert_int_equal(finish(job, ids, n, ""), JOB_CONTINUE);
    assert_int_equal(job_next_step(job, ids), 0);
    assert_int_equal(job_remaining(job), 0);
    assert_int_equal(job_count(job, NODE_SKIPPED), 3);

    /* retry: the failed node and the nodes it blocked, back in group order */
    job_node_set(job, (uint32_t)job_find(job, "f"), NODE_SKIPPED, "skipped by bob");
    assert_int_equal(job_retry(job), 4);
    assert_int_equal(node(job, "a")->state, NODE_WAITING);
    assert_string_equal(node(job, "a")->verdict, "");
    assert_int_equal(node(job, "a")->exit_code, -1);
    assert_int_equal(node(job, "d")->state, NODE_WAITING);
    assert_int_equal(node(job, "e")->state, NODE_SUCCEEDED);
    assert_int_equal(node(job, "f")->state, NODE_SKIPPED);
    assert_string_equal(node(job, "f")->reason, "skipped by bob");
    assert_string_equal(run_all(job, ""), "a | b c | d");
    assert_int_equal(job_count(job, NODE_SUCCEEDED), 5);
    assert_int_equal(job_retry(job), 0);
    job_free(job);
}

static void test_contain_chain(void **state)
{
    struct job_options o = opts();
    struct job *job;

    (void)state;
    o.contain = 1;
    /* a -> b -> c -> d, and x -> y beside it */
    job = job_desc("a:A:-;b:B:A;c:C:B;d:-:C;x:X:-;y:-:X", &o);
    assert_int_equal(job->ngroups, 4);
    assert_string_equal(run_all(job, "b"), "a x | b y");
    assert_int_equal(node(job, "a")->state, NODE_SUCCEEDED);
    assert_int_equal(node(job, "b")->state, NODE_FAILED);
    assert_int_equal(node(job, "c")->state, NODE_SKIPPED);
    assert_int_equal(node(job, "d")->state, NODE_SKIPPED);
    assert_string_equal(node(job, "c")->reason, "blocked: depends on b which failed");
    assert_string_equal(node(job, "d")->reason, "blocked: depends on b which failed");
    assert_int_equal(node(job, "y")->state, NODE_SUCCEEDED);
    assert_int_equal(job_remaining(job), 0);
    /* retry puts b, c and d back, and they run in order */
    assert_int_equal(job_retry(job), 3);
    assert_string_equal(node(job, "b")->reason, "retry after failure");
    assert_string_equal(run_all(job, ""), "b | c | d");
    job_free(job);

    /* a budget still applies with --contain */
    o.max_failures = 0;
    job = job_desc("a:A:-;b:B:A;c:C:B;d:-:C;x:X:-;y:-:X", &o);
    assert_string_equal(run_all(job, "x"), "a x");
    assert_int_equal(job_after_step(job), JOB_STOP_BUDGET);
    assert_int_equal(node(job, "y")->state, NODE_SKIPPED);
    job_free(job);
}

static void test_retry_without_contain(void **state)
{
    struct job_options o = opts();
    struct job *job;

    (void)state;
    job = job_desc(LAYERS, &o);
    assert_string_equal(run_all(job, "b"), "a b");
    assert_int_equal(job_retry(job), 1);
    assert_int_equal(node(job, "b")->state, NODE_WAITING);
    assert_string_equal(run_all(job, ""), "b | c d e | f");
    job_free(job);
}

static void test_node_set(void **state)
{
    struct job_options o = opts();
    struct job *job = job_desc(LAYERS, &o);

    (void)state;
    assert_false(job_node_set(job, 0, NODE_WAITING, "%s", ""));
    assert_true(job_node_set(job, 0, NODE_WAITING, "waiting: group %d not finished", 1));
    assert_string_equal(job->nodes[0].reason, "waiting: group 1 not finished");
    assert_false(job_node_set(job, 0, NODE_WAITING, "waiting: group %d not finished", 1));
    assert_true(job_node_set(job, 0, NODE_STARTING, "waiting: group %d not finished", 1));
    assert_false(job_node_set(job, 0, NODE_STARTING, "waiting: group 1 not finished"));
    assert_true(job_node_set(job, 0, NODE_STARTING, "starting"));
    assert_int_equal(job->nodes[0].state, NODE_STARTING);
    /* a reason longer than the room is cut, and the same cut is no change */
    char longer[JOB_REASON_MAX * 2];
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_true(job_node_set(job, 0, NODE_STARTING, "%s", longer));
    assert_int_equal(strlen(job->nodes[0].reason), JOB_REASON_MAX - 1);
    assert_false(job_node_set(job, 0, NODE_STARTING, "%s", longer));
    job_free(job);
}

static void assert_same_plan(const struct job *a, const struct job *b)
{
    assert_int_equal(a->nnodes, b->nnodes);
    assert_int_equal(a->ngroups, b->ngroups);
    assert_string_equal(a->caller, b->caller);
    assert_string_equal(a->environment, b->environment);
    for (uint32_t i = 0; i < a->nnodes; i++) {
        assert_string_equal(a->nodes[i].name, b->nodes[i].name);
        assert_int_equal(a->nodes[i].group, b->nodes[i].group);
        assert_int_equal(a->nodes[i].ndependents, b->nodes[i].ndependents);
        for (uint32_t d = 0; d < a->nodes[i].ndependents; d++)
            assert_int_equal(a->nodes[i].dependents[d], b->nodes[i].dependents[d]);
    }
    assert_int_equal(a->opt.batch, b->opt.batch);
    assert_int_equal(a->opt.canary, b->opt.canary);
    assert_int_equal(a->opt.max_failures, b->opt.max_failures);
    assert_int_equal(!!a->opt.max_failures_pct, !!b->opt.max_failures_pct);
    assert_int_equal(!!a->opt.contain, !!b->opt.contain);
    assert_int_equal(!!a->opt.noop, !!b->opt.noop);
    assert_int_equal(a->opt.start_timeout_s, b->opt.start_timeout_s);
    assert_int_equal(a->opt.run_timeout_s, b->opt.run_timeout_s);
}

static void assert_all_waiting(const struct job *job)
{
    for (uint32_t i = 0; i < job->nnodes; i++) {
        assert_int_equal(job->nodes[i].state, NODE_WAITING);
        assert_int_equal(job->nodes[i].exit_code, -1);
        assert_int_equal(job->nodes[i].step, 0);
    }
}

static void test_plan_json_round_trip(void **state)
{
    struct job_options o = opts();
    struct choir_error err = {0};
    struct job *job, *back;
    json_t *j;

    (void)state;
    o.batch = 3;
    o.canary = 2;
    o.max_failures = 10;
    o.max_failures_pct = 1;
    o.contain = 1;
    o.noop = 1;
    o.start_timeout_s = 7;
    o.run_timeout_s = 99;
    job = job_desc(DIAMOND, &o);
    j = job_plan_json(job);
    assert_non_null(j);
    back = job_from_json("J1", j, &err);
    if (!back)
        fail_msg("%s", err.msg);
    assert_string_equal(back->id, "J1");
    assert_same_plan(job, back);
    assert_all_waiting(back);
    assert_true(back->opt.contain && back->opt.noop && back->opt.max_failures_pct);
    assert_int_equal(node(back, "a")->ndependents, 2);
    job_free(back);
    json_decref(j);
    job_free(job);

    /* defaults, and the real sample through JSON text */
    o = opts();
    job = job_sample(&o);
    j = job_plan_json(job);
    char *text = json_dumps(j, JSON_COMPACT);
    json_t *parsed = json_loads(text, 0, NULL);
    back = job_from_json("sample-1", parsed, &err);
    if (!back)
        fail_msg("%s", err.msg);
    assert_same_plan(job, back);
    assert_all_waiting(back);
    assert_int_equal(back->opt.max_failures, -1);
    free(text);
    json_decref(parsed);
    json_decref(j);
    job_free(back);
    job_free(job);
}

/* job_from_json on the diamond's JSON after `damage`; asserts it fails
 * naming the job. */
static void assert_damaged(void (*damage)(json_t *plan), const char *why)
{
    struct job_options o = opts();
    struct job *job = job_desc(DIAMOND, &o), *back;
    struct choir_error err = {0};
    json_t *j = job_plan_json(job);

    damage(j);
    back = job_from_json("J7", j, &err);
    if (back)
        fail_msg("job_from_json accepted a plan with %s", why);
    if (!strstr(err.msg, "job J7") || !strstr(err.msg, "damaged"))
        fail_msg("%s: the error does not name the job: %s", why, err.msg);
    assert_int_equal(err.code, CHOIR_EXIT_INPUT);
    json_decref(j);
    job_free(job);
}

static json_t *plan_node(json_t *plan, size_t i)
{
    return json_array_get(json_object_get(plan, "nodes"), i);
}

static void dep_out_of_range(json_t *p)
{
    json_array_append_new(json_object_get(plan_node(p, 0), "dependents"), json_integer(6));
}
static void dep_negative(json_t *p)
{
    json_array_set_new(json_object_get(plan_node(p, 0), "dependents"), 0, json_integer(-1));
}
static void dep_not_number(json_t *p)
{
    json_array_set_new(json_object_get(plan_node(p, 0), "dependents"), 0, json_string("1"));
}
static void group_out_of_range(json_t *p)
{
    json_object_set_new(plan_node(p, 5), "group", json_integer(3));
}
static void group_negative(json_t *p)
{
    json_object_set_new(plan_node(p, 1), "group", json_integer(-1));
}
static void bad_certname(json_t *p)
{
    json_object_set_new(plan_node(p, 2), "name", json_string("b c"));
}
static void name_missing(json_t *p)
{
    json_object_del(plan_node(p, 2), "name");
}
static void options_missing(json_t *p)
{
    json_object_del(p, "options");
}
static void option_missing(json_t *p)
{
    json_object_del(json_object_get(p, "options"), "contain");
}
static void batch_negative(json_t *p)
{
    json_object_set_new(json_object_get(p, "options"), "batch", json_integer(-2));
}
static void nodes_not_array(json_t *p)
{
    json_object_set_new(p, "nodes", json_object());
}
static void caller_missing(json_t *p)
{
    json_object_del(p, "caller");
}
static void groups_negative(json_t *p)
{
    json_object_set_new(p, "groups", json_integer(-3));
}
static void dependents_missing(json_t *p)
{
    json_object_del(plan_node(p, 0), "dependents");
}

static void test_from_json_refuses_damage(void **state)
{
    (void)state;
    assert_damaged(dep_out_of_range, "a dependent index out of range");
    assert_damaged(dep_negative, "a negative dependent index");
    assert_damaged(dep_not_number, "a dependent that is not a number");
    assert_damaged(dependents_missing, "no dependents list");
    assert_damaged(group_out_of_range, "a group out of range");
    assert_damaged(group_negative, "a negative group");
    assert_damaged(groups_negative, "a negative group count");
    assert_damaged(bad_certname, "a bad certname");
    assert_damaged(name_missing, "a node without a name");
    assert_damaged(options_missing, "no options");
    assert_damaged(option_missing, "an option missing");
    assert_damaged(batch_negative, "a negative batch");
    assert_damaged(nodes_not_array, "nodes that are not an array");
    assert_damaged(caller_missing, "no caller");
}

/* ---- restore ------------------------------------------------------------------------- */

static struct journal_node row(const char *node, int group, int batch, const char *state,
                               const char *reason, const char *verdict, int locked)
{
    return (struct journal_node){
        .job_id = "J1", .node = (char *)node, .group = group, .batch = batch,
        .state = (char *)state, .reason = (char *)reason, .verdict = (char *)verdict,
        .run_id = "", .exit_code = -1, .locked = locked, .attempts = 0, .failed = "[]",
    };
}

static void test_restore(void **state)
{
    struct job_options o = opts();
    struct job *job, *r;
    struct choir_error err = {0};
    char *plan;
    struct journal_node rows[6];

    (void)state;
    o.batch = 2;
    o.canary = 1;
    job = job_desc(LAYERS, &o);
    json_t *pj = job_plan_json(job);
    plan = json_dumps(pj, JSON_COMPACT);
    json_decref(pj);
    struct journal_job jj = {"J1", "running", "running 6 nodes in 3 groups", "alice.mcollective",
                             "production", plan, 1000, 2000};

    rows[0] = row("a", 0, 1, "succeeded", "changed 1 resource", "changed", 1);
    rows[0].exit_code = 2;
    rows[0].attempts = 1;
    rows[0].started_ms = 1100;
    rows[0].finished_ms = 1500;
    rows[0].run_id = "0123456789abcdef0123456789abcdef";
    rows[1] = row("b", 0, 2, "failed", "the run failed", "failed", 1);
    rows[1].failed = "[\"File[/etc/x]\"]";
    rows[1].exit_code = 6;
    rows[2] = row("c", 1, 3, "running", "running", "", 0);
    rows[2].run_id = "fedcba9876543210fedcba9876543210";
    rows[2].started_ms = 1900;
    rows[3] = row("d", 1, 3, "starting", "starting", "", 0);
    rows[4] = row("e", 1, 0, "waiting", "", "", 1);
    rows[5] = row("f", 2, 0, "skipped", "skipped by bob", "", 1);
    r = job_restore(&jj, rows, 6, &err);
    if (!r)
        fail_msg("%s", err.msg);
    assert_int_equal(r->state, JOB_RUNNING);
    assert_string_equal(r->reason, "running 6 nodes in 3 groups");
    assert_int_equal(r->created_ms, 1000);
    assert_int_equal(r->steps, 3);
    assert_true(r->canary_done);
    assert_same_plan(job, r);
    for (int k = 0; k < 6; k++) {
        const struct job_node *n = node(r, rows[k].node);
        enum node_state s;

        assert_int_equal(node_state_parse(rows[k].state, &s), 0);
        assert_int_equal(n->state, s);
        assert_string_equal(n->reason, rows[k].reason);
        assert_string_equal(n->verdict, rows[k].verdict);
        assert_string_equal(n->run_id, rows[k].run_id);
        assert_int_equal(n->locked, rows[k].locked);
        assert_int_equal(n->step, rows[k].batch);
        assert_int_equal(n->exit_code, rows[k].exit_code);
        assert_int_equal(n->attempts, rows[k].attempts);
        assert_int_equal(n->started_ms, rows[k].started_ms);
        assert_int_equal(n->finished_ms, rows[k].finished_ms);
    }
    assert_string_equal(json_string_value(json_array_get(node(r, "b")->failed, 0)), "File[/etc/x]");
    /* the restored job goes on: nothing while c and d are in flight, then e */
    uint32_t ids[8], changed[8];
    assert_int_equal(job_next_step(r, ids), 0);
    job_node_finished(r, (uint32_t)job_find(r, "c"), true, "changed", "ok", changed);
    job_node_finished(r, (uint32_t)job_find(r, "d"), true, "changed", "ok", changed);
    assert_int_equal(job_next_step(r, ids), 1);
    assert_string_equal(r->nodes[ids[0]].name, "e");
    assert_int_equal(r->nodes[ids[0]].step, 4);
    job_free(r);

    /* a canary job with no step yet still owes its canary */
    jj.state = "paused";
    r = job_restore(&jj, NULL, 0, &err);
    assert_non_null(r);
    assert_int_equal(r->state, JOB_PAUSED);
    assert_false(r->canary_done);
    assert_int_equal(r->steps, 0);
    job_free(r);

    /* damage: a node not in the plan, a bad state, a bad job state, no JSON */
    rows[3].node = "zz";
    r = job_restore(&jj, rows, 6, &err);
    assert_null(r);
    assert_non_null(strstr(err.msg, "job J1"));
    rows[3].node = "d";
    rows[2].state = "sleeping";
    assert_null(job_restore(&jj, rows, 6, &err));
    assert_non_null(strstr(err.msg, "job J1"));
    rows[2].state = "running";
    jj.state = "dreaming";
    assert_null(job_restore(&jj, rows, 6, &err));
    assert_non_null(strstr(err.msg, "job J1"));
    jj.state = "running";
    jj.plan = "{\"nodes\": [";
    assert_null(job_restore(&jj, rows, 6, &err));
    assert_non_null(strstr(err.msg, "job J1"));
    free(plan);
    job_free(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_from_plan_sample),
        cmocka_unit_test(test_groups_strictly_in_order),
        cmocka_unit_test(test_group_waits_for_a_waiting_node),
        cmocka_unit_test(test_batch_slicing),
        cmocka_unit_test(test_canary),
        cmocka_unit_test(test_default_stops_after_failed_step),
        cmocka_unit_test(test_budget_count),
        cmocka_unit_test(test_budget_percent),
        cmocka_unit_test(test_contain_diamond),
        cmocka_unit_test(test_contain_chain),
        cmocka_unit_test(test_retry_without_contain),
        cmocka_unit_test(test_node_set),
        cmocka_unit_test(test_plan_json_round_trip),
        cmocka_unit_test(test_from_json_refuses_damage),
        cmocka_unit_test(test_restore),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
