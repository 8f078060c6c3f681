/* job.c - see job.h. */
#include "core/job.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/journal.h"
#include "core/xalloc.h"

#define JOB_NODES_MAX 1000000

static const char *const job_state_names[] = {
#define JOB_NAME(id, name) name,
    JOB_STATES(JOB_NAME)
#undef JOB_NAME
};

static const char *const node_state_names[] = {
#define NODE_NAME(id, name) name,
    NODE_STATES(NODE_NAME)
#undef NODE_NAME
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *job_state_name(enum job_state s)
{
    return (size_t)s < COUNT(job_state_names) ? job_state_names[s] : "?";
}

const char *node_state_name(enum node_state s)
{
    return (size_t)s < COUNT(node_state_names) ? node_state_names[s] : "?";
}

static int parse_name(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

int job_state_parse(const char *name, enum job_state *out)
{
    int i = parse_name(job_state_names, COUNT(job_state_names), name);

    if (i >= 0)
        *out = (enum job_state)i;
    return i >= 0 ? 0 : -1;
}

int node_state_parse(const char *name, enum node_state *out)
{
    int i = parse_name(node_state_names, COUNT(node_state_names), name);

    if (i >= 0)
        *out = (enum node_state)i;
    return i >= 0 ? 0 : -1;
}

bool job_state_final(enum job_state s)
{
    return s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_ABORTED || s == JOB_REFUSED ||
           s == JOB_UNREACHABLE;
}

bool node_state_final(enum node_state s)
{
    return s == NODE_SUCCEEDED || s == NODE_FAILED || s == NODE_SKIPPED;
}

bool node_state_in_flight(enum node_state s)
{
    return s == NODE_STARTING || s == NODE_RUNNING;
}

void job_options_default(struct job_options *o)
{
    memset(o, 0, sizeof(*o));
    o->max_failures = -1;
    o->start_timeout_s = 120;
    o->run_timeout_s = 1800;
}

/* ---- building -------------------------------------------------------------------- */

static struct job *job_alloc(const char *id, uint32_t n)
{
    struct job *job = xcalloc(1, sizeof(*job));

    snprintf(job->id, sizeof(job->id), "%s", id);
    job->nodes = xcalloc(n ? n : 1, sizeof(*job->nodes));
    job->nnodes = n;
    for (uint32_t i = 0; i < n; i++)
        job->nodes[i].exit_code = -1;
    return job;
}

/* "Lamp[app1], Lamp[app2]": the distinct applications of node v's components. */
static char *job_apps_of(const struct plan *plan, uint32_t v)
{
    const struct plan_node *pn = &plan->nodes[v];
    size_t cap = 64, len = 0;
    char *out = xmalloc(cap);
    uint32_t last = UINT32_MAX;

    out[0] = '\0';
    for (uint32_t r = pn->first_ref; r < pn->first_ref + pn->nrefs; r++) {
        const char *name = plan->site->apps[plan->refs[r].app].name;
        size_t need = strlen(name) + 3;

        if (plan->refs[r].app == last)
            continue;
        last = plan->refs[r].app;
        if (len + need >= cap) {
            cap = (len + need) * 2;
            out = xrealloc(out, cap);
        }
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "", name);
    }
    return out;
}

struct job *job_from_plan(const struct plan *plan, const char *id, const char *caller,
                          const char *environment, const struct job_options *opt)
{
    struct job *job = job_alloc(id, plan->nnodes);
    uint32_t *index = xmalloc((plan->nnodes ? plan->nnodes : 1) * sizeof(*index));

    snprintf(job->caller, sizeof(job->caller), "%s", caller ? caller : "");
    snprintf(job->environment, sizeof(job->environment), "%s", environment ? environment : "");
    job->opt = *opt;
    job->ngroups = plan->ngroups;
    for (uint32_t k = 0; k < plan->nnodes; k++)
        index[plan->order[k]] = k;
    for (uint32_t k = 0; k < plan->nnodes; k++) {
        uint32_t v = plan->order[k], first = plan->dependents_start[v];
        struct job_node *n = &job->nodes[k];

        n->name = xstrdup(plan->nodes[v].name);
        n->apps = job_apps_of(plan, v);
        n->group = plan->nodes[v].group;
        n->ndependents = plan->dependents_start[v + 1] - first;
        n->dependents = xcalloc(n->ndependents ? n->ndependents : 1, sizeof(*n->dependents));
        for (uint32_t d = 0; d < n->ndependents; d++)
            n->dependents[d] = index[plan->dependents[first + d]];
    }
    free(index);
    return job;
}

void job_free(struct job *job)
{
    if (!job)
        return;
    for (uint32_t i = 0; i < job->nnodes; i++) {
        free(job->nodes[i].name);
        free(job->nodes[i].apps);
        free(job->nodes[i].dependents);
        json_decref(job->nodes[i].failed);
    }
    free(job->nodes);
    free(job);
}

long job_find(const struct job *job, const char *name)
{
    for (uint32_t i = 0; i < job->nnodes; i++)
        if (strcmp(job->nodes[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* ---- the plan as JSON ----------------------------------------------------------------- */

json_t *job_options_json(const struct job_options *o)
{
    return json_pack("{s:i, s:i, s:I, s:b, s:b, s:b, s:I, s:I}", "batch", (int)o->batch,
                     "canary", (int)o->canary, "max_failures", (json_int_t)o->max_failures,
                     "max_failures_pct", o->max_failures_pct, "contain", o->contain, "noop",
                     o->noop, "start_timeout_s", (json_int_t)o->start_timeout_s,
                     "run_timeout_s", (json_int_t)o->run_timeout_s);
}

json_t *job_plan_json(const struct job *job)
{
    json_t *nodes = json_array();

    for (uint32_t i = 0; i < job->nnodes; i++) {
        const struct job_node *n = &job->nodes[i];
        json_t *deps = json_array();

        for (uint32_t d = 0; d < n->ndependents; d++)
            json_array_append_new(deps, json_integer(n->dependents[d]));
        json_array_append_new(nodes, json_pack("{s:s, s:i, s:s, s:o}", "name", n->name, "group",
                                               (int)n->group, "apps", n->apps ? n->apps : "",
                                               "dependents", deps));
    }
    return json_pack("{s:i, s:s, s:s, s:i, s:o, s:o}", "version", 1, "caller", job->caller,
                     "environment", job->environment, "groups", (int)job->ngroups, "nodes",
                     nodes, "options", job_options_json(&job->opt));
}

static int json_fail(struct choir_error *err, const char *id, const char *what)
{
    error_set(err, CHOIR_EXIT_INPUT, "job %s: the journal's plan is damaged: %s", id, what);
    return -1;
}

static int job_options_from_json(struct job_options *o, const json_t *j)
{
    json_int_t batch = 0, canary = 0, maxf = -1, st = 120, rt = 1800;
    int pct = 0, contain = 0, noop = 0;

    if (json_unpack((json_t *)j, "{s:I, s:I, s:I, s:b, s:b, s:b, s:I, s:I}", "batch", &batch, "canary",
                    &canary, "max_failures", &maxf, "max_failures_pct", &pct, "contain",
                    &contain, "noop", &noop, "start_timeout_s", &st, "run_timeout_s", &rt) < 0 ||
        batch < 0 || canary < 0 || batch > JOB_NODES_MAX || canary > JOB_NODES_MAX)
        return -1;
    *o = (struct job_options){(uint32_t)batch, (uint32_t)canary, (long)maxf, pct, contain, noop,
                              (long)st, (long)rt};
    return 0;
}

static int job_node_from_json(struct job *job, uint32_t i, const json_t *j)
{
    struct job_node *n = &job->nodes[i];
    const char *name = json_string_value(json_object_get(j, "name"));
    json_int_t group = json_integer_value(json_object_get(j, "group"));
    const json_t *deps = json_object_get(j, "dependents"), *d;
    size_t k;

    if (!name || !names_certname_ok(name, strlen(name)) || group < 0 ||
        group >= (json_int_t)job->ngroups || !json_is_array(deps) ||
        json_array_size(deps) > job->nnodes)
        return -1;
    n->name = xstrdup(name);
    n->apps = xstrdup(json_is_string(json_object_get(j, "apps"))
                          ? json_string_value(json_object_get(j, "apps")) : "");
    n->group = (uint32_t)group;
    n->dependents = xcalloc(json_array_size(deps) + 1, sizeof(*n->dependents));
    json_array_foreach(deps, k, d) {
        json_int_t v = json_integer_value(d);

        if (!json_is_integer(d) || v < 0 || v >= (json_int_t)job->nnodes)
            return -1;
        n->dependents[n->ndependents++] = (uint32_t)v;
    }
    return 0;
}

struct job *job_from_json(const char *id, const json_t *plan, struct choir_error *err)
{
    const json_t *nodes = json_object_get(plan, "nodes"), *n;
    json_int_t groups = json_integer_value(json_object_get(plan, "groups"));
    const char *caller = json_string_value(json_object_get(plan, "caller"));
    const char *env = json_string_value(json_object_get(plan, "environment"));
    struct job *job;
    size_t i;

    if (!json_is_array(nodes) || json_array_size(nodes) > JOB_NODES_MAX || groups < 0 ||
        groups > JOB_NODES_MAX || !caller || !env) {
        json_fail(err, id, "no node list, group count, caller or environment");
        return NULL;
    }
    job = job_alloc(id, (uint32_t)json_array_size(nodes));
    job->ngroups = (uint32_t)groups;
    snprintf(job->caller, sizeof(job->caller), "%s", caller);
    snprintf(job->environment, sizeof(job->environment), "%s", env);
    if (job_options_from_json(&job->opt, json_object_get(plan, "options")) < 0) {
        json_fail(err, id, "bad options");
        job_free(job);
        return NULL;
    }
    json_array_foreach(nodes, i, n) {
        if (job_node_from_json(job, (uint32_t)i, n) < 0) {
            json_fail(err, id, "a bad node entry");
            job_free(job);
            return NULL;
        }
    }
    return job;
}

/* ---- node states ---------------------------------------------------------------------- */

bool job_node_set(struct job *job, uint32_t i, enum node_state s, const char *fmt, ...)
{
    struct job_node *n = &job->nodes[i];
    char reason[JOB_REASON_MAX];
    va_list ap;
    bool changed;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    changed = n->state != s || strcmp(n->reason, reason) != 0;
    n->state = s;
    memcpy(n->reason, reason, sizeof(reason));
    return changed;
}

/* With --contain: every node that depends on `from`, transitively, and has
 * not run yet is skipped. */
static uint32_t job_block(struct job *job, uint32_t from, uint32_t *changed, uint32_t count)
{
    uint32_t *queue = xmalloc(job->nnodes * sizeof(*queue)), head = 0, tail = 0;

    queue[tail++] = from;
    while (head < tail) {
        const struct job_node *u = &job->nodes[queue[head++]];

        for (uint32_t d = 0; d < u->ndependents; d++) {
            uint32_t v = u->dependents[d];

            if (job->nodes[v].state != NODE_WAITING)
                continue;
            job_node_set(job, v, NODE_SKIPPED, "blocked: depends on %s which failed",
                         job->nodes[from].name);
            changed[count++] = v;
            queue[tail++] = v;
        }
    }
    free(queue);
    return count;
}

uint32_t job_node_finished(struct job *job, uint32_t i, bool success, const char *verdict,
                           const char *reason, uint32_t *changed)
{
    uint32_t count = 0;

    snprintf(job->nodes[i].verdict, sizeof(job->nodes[i].verdict), "%s", verdict);
    job_node_set(job, i, success ? NODE_SUCCEEDED : NODE_FAILED, "%s", reason);
    changed[count++] = i;
    if (!success && job->opt.contain)
        count = job_block(job, i, changed, count);
    return count;
}

/* ---- scheduling --------------------------------------------------------------------------- */

uint32_t job_count(const struct job *job, enum node_state s)
{
    uint32_t c = 0;

    for (uint32_t i = 0; i < job->nnodes; i++)
        c += job->nodes[i].state == s;
    return c;
}

uint32_t job_remaining(const struct job *job)
{
    return job_count(job, NODE_WAITING);
}

static bool job_in_flight(const struct job *job)
{
    for (uint32_t i = 0; i < job->nnodes; i++)
        if (node_state_in_flight(job->nodes[i].state))
            return true;
    return false;
}

uint32_t job_next_step(struct job *job, uint32_t *ids)
{
    uint32_t size, count = 0, group = UINT32_MAX;

    if (job->state != JOB_RUNNING || job_in_flight(job))
        return 0;
    for (uint32_t i = 0; i < job->nnodes && group == UINT32_MAX; i++)
        if (job->nodes[i].state == NODE_WAITING)
            group = job->nodes[i].group;
    if (group == UINT32_MAX)
        return 0;
    size = job->opt.canary && !job->canary_done ? job->opt.canary : job->opt.batch;
    job->steps++;
    for (uint32_t i = 0; i < job->nnodes && (size == 0 || count < size); i++) {
        struct job_node *n = &job->nodes[i];

        if (n->group == group && n->state == NODE_WAITING) {
            n->step = job->steps;
            ids[count++] = i;
        }
    }
    return count;
}

long job_budget(const struct job *job)
{
    if (job->opt.max_failures < 0)
        return -1;
    if (job->opt.max_failures_pct)
        return (long)((unsigned long long)job->opt.max_failures * job->nnodes / 100);
    return job->opt.max_failures;
}

enum job_decision job_after_step(struct job *job)
{
    uint32_t failed = job_count(job, NODE_FAILED);
    long budget = job_budget(job);
    bool canary = job->opt.canary && !job->canary_done;

    job->canary_done = true;
    if (budget >= 0 && (long)failed > budget)
        return JOB_STOP_BUDGET;
    if (budget < 0 && !job->opt.contain && failed > 0)
        return JOB_STOP_FAILED;
    return canary ? JOB_PAUSE_CANARY : JOB_CONTINUE;
}

uint32_t job_retry(struct job *job)
{
    uint32_t count = 0;

    for (uint32_t i = 0; i < job->nnodes; i++) {
        struct job_node *n = &job->nodes[i];
        bool blocked = n->state == NODE_SKIPPED && strncmp(n->reason, "blocked:", 8) == 0;

        if (n->state == NODE_FAILED || blocked) {
            job_node_set(job, i, NODE_WAITING, "retry%s", n->state == NODE_FAILED ? " after failure" : "");
            n->verdict[0] = '\0';
            n->exit_code = -1;
            count++;
        }
    }
    return count;
}

/* ---- from the journal ---------------------------------------------------------------- */

static int job_restore_node(struct job *job, const struct journal_node *r)
{
    long i = job_find(job, r->node);
    struct job_node *n;

    if (i < 0 || node_state_parse(r->state, &job->nodes[i].state) < 0)
        return -1;
    n = &job->nodes[i];
    snprintf(n->reason, sizeof(n->reason), "%s", r->reason);
    snprintf(n->verdict, sizeof(n->verdict), "%s", r->verdict);
    snprintf(n->run_id, sizeof(n->run_id), "%s", r->run_id);
    n->step = r->batch > 0 ? (uint32_t)r->batch : 0;
    n->exit_code = r->exit_code;
    n->locked = r->locked;
    n->attempts = r->attempts;
    n->started_ms = r->started_ms;
    n->finished_ms = r->finished_ms;
    n->failed = json_loads(r->failed, 0, NULL);
    if (n->step > job->steps)
        job->steps = n->step;
    return 0;
}

struct job *job_restore(const struct journal_job *jj, const struct journal_node *rows, size_t n,
                        struct choir_error *err)
{
    json_t *plan = json_loads(jj->plan, 0, NULL);
    struct job *job = plan ? job_from_json(jj->id, plan, err) : NULL;

    if (!plan)
        json_fail(err, jj->id, "the plan is not JSON");
    json_decref(plan);
    if (!job)
        return NULL;
    if (job_state_parse(jj->state, &job->state) < 0) {
        json_fail(err, jj->id, "an unknown job state");
        job_free(job);
        return NULL;
    }
    snprintf(job->reason, sizeof(job->reason), "%s", jj->reason);
    job->created_ms = jj->created_ms;
    for (size_t k = 0; k < n; k++) {
        if (job_restore_node(job, &rows[k]) < 0) {
            json_fail(err, jj->id, "a node row that is not in the plan");
            job_free(job);
            return NULL;
        }
    }
    job->canary_done = job->opt.canary == 0 || job->steps > 0;
    return job;
}
