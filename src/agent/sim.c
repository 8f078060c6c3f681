/* sim.c - see sim.h. */
#include "agent/sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent/puppet_state.h"
#include "agent/runner.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/names.h"
#include "core/xalloc.h"

#define SIM_NAME_SIZE 32

struct sim_node {
    char name[SIM_NAME_SIZE];
    struct rpc_identity rid;
    struct security_identity *cert;   /* loaded on first use */
    struct puppet_paths paths;        /* made on first use */
    struct puppet_agent agent;
    struct sim *sim;
    /* the run going, if any */
    int running, fail, noop;
    char job_id[NAMES_JOB_ID_MAX + 1];
    char run_id[WIRE_REQUESTID_LEN + 1];
    long long started_ms, ends_ms;    /* wall clock, monotonic */
    unsigned long seq;
};

struct sim {
    struct sim_opts o;
    char *dir;
    struct security *sec;
    struct rpc_server *srv;
    struct sim_node *nodes;
    const char **names;
    struct sim_node **heap;           /* running nodes, soonest end first */
    size_t nheap;
    unsigned long long rng;
};

/* xorshift64*: cheap, repeatable with a seed. */
static double sim_random(struct sim *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (double)((s->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* ---- the run heap ------------------------------------------------------------ */

static void heap_swap(struct sim *s, size_t a, size_t b)
{
    struct sim_node *t = s->heap[a];

    s->heap[a] = s->heap[b];
    s->heap[b] = t;
}

static void heap_push(struct sim *s, struct sim_node *n)
{
    size_t i = s->nheap++;

    s->heap[i] = n;
    while (i > 0 && s->heap[(i - 1) / 2]->ends_ms > s->heap[i]->ends_ms) {
        heap_swap(s, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static struct sim_node *heap_pop(struct sim *s)
{
    struct sim_node *top = s->heap[0];
    size_t i = 0;

    s->heap[0] = s->heap[--s->nheap];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < s->nheap && s->heap[l]->ends_ms < s->heap[m]->ends_ms)
            m = l;
        if (r < s->nheap && s->heap[r]->ends_ms < s->heap[m]->ends_ms)
            m = r;
        if (m == i)
            return top;
        heap_swap(s, i, m);
        i = m;
    }
}

/* ---- nodes ------------------------------------------------------------------- */

static char *sim_path(const struct sim *s, const char *name, const char *sub)
{
    size_t n = strlen(s->dir) + strlen(name) + strlen(sub) + 8;
    char *p = xmalloc(n);

    snprintf(p, n, "%s/%s%s", s->dir, name, sub);
    return p;
}

static int sim_mkdirs(const char *const *dirs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (mkdir(dirs[i], 0700) < 0 && errno != EEXIST)
            return -1;
    return 0;
}

/* The node's Puppet files: made the first time the node is asked anything. */
static int sim_node_paths(struct sim_node *n)
{
    struct choir_error err = {0};
    char *node = sim_path(n->sim, n->name, ""), *var = sim_path(n->sim, n->name, "/var");
    char *state = sim_path(n->sim, n->name, "/var/state");
    char *pub = sim_path(n->sim, n->name, "/var/public"), *run = sim_path(n->sim, n->name, "/run");
    const char *dirs[] = {node, var, state, pub, run};
    int rc = 0;

    if (!n->paths.lastrunfile &&
        (sim_mkdirs(dirs, 5) < 0 || puppet_paths_from_dir(&n->paths, var, run, pub, &err) < 0))
        rc = -1;
    free(node);
    free(var);
    free(state);
    free(pub);
    free(run);
    return rc;
}

static const struct rpc_identity *sim_node_identity(struct sim_node *n)
{
    struct choir_error err = {0};

    if (!n->cert) {
        if (security_identity_open(n->sim->sec, n->name, &n->cert, &err) < 0) {
            if (n->sim->srv->log)
                n->sim->srv->log(n->sim->srv->ctx, err.msg);
            return NULL;
        }
        n->rid.signer = security_identity_signer(n->cert);
    }
    return &n->rid;
}

/* "sim-00042" -> its node, or NULL. */
static struct sim_node *sim_lookup(struct sim *s, const char *name)
{
    size_t plen = strlen(SIM_PREFIX);
    char *end;
    unsigned long i;

    if (strncmp(name, SIM_PREFIX, plen) != 0 || strlen(name) != plen + 5)
        return NULL;
    i = strtoul(name + plen, &end, 10);
    if (*end || i < 1 || i > s->o.count)
        return NULL;
    return &s->nodes[i - 1];
}

const struct rpc_identity *sim_identity_find(void *ctx, const char *name)
{
    struct sim_node *n = sim_lookup(ctx, name);

    return n ? sim_node_identity(n) : NULL;
}

const struct rpc_identity *sim_identity_at(void *ctx, size_t i)
{
    struct sim *s = ctx;

    return i < s->o.count ? sim_node_identity(&s->nodes[i]) : NULL;
}

/* ---- events ------------------------------------------------------------------ */

static void sim_send(struct sim_node *n, const char *kind, json_t *ev)
{
    struct sim *s = n->sim;
    struct choir_error err = {0};

    json_object_set_new(ev, "event", json_string(kind));
    json_object_set_new(ev, "job_id", json_string(n->job_id));
    json_object_set_new(ev, "run_id", json_string(n->run_id));
    json_object_set_new(ev, "seq", json_integer((json_int_t)++n->seq));
    json_object_set_new(ev, "time", json_integer(clock_wall_ms()));
    if (rpc_publish_event(s->srv, &n->rid.signer, n->name, n->run_id, n->job_id, ev, &err) < 0 &&
        s->srv->log)
        s->srv->log(s->srv->ctx, err.msg);
    json_decref(ev);
}

/* ---- runonce ------------------------------------------------------------------- */

static const char *sim_running(void *ctx)
{
    struct sim_node *n = ctx;

    return n->running ? n->job_id : NULL;
}

static int sim_runonce(void *ctx, json_t *in, json_t *out, char *msg, size_t size)
{
    struct sim_node *n = ctx;
    struct sim *s = n->sim;
    const char *job = json_string_value(json_object_get(in, "job_id"));
    struct choir_error err = {0};
    long span = s->o.dur_max_ms - s->o.dur_min_ms;

    if (n->running) {
        snprintf(msg, size, "Run of Puppet configuration client already in progress; skipping "
                 "(job %s started by choird)", n->job_id);
        return AGENT_ABORTED;
    }
    if (wire_requestid_new(n->run_id, &err) < 0) {
        snprintf(msg, size, "Could not make a run id: %s", err.msg);
        return AGENT_UNKNOWN_ERROR;
    }
    snprintf(n->job_id, sizeof(n->job_id), "%s", job ? job : n->run_id);
    n->running = 1;
    n->noop = json_is_true(json_object_get(in, "noop"));
    n->fail = !n->noop && sim_random(s) < s->o.fail_rate;
    n->seq = 0;
    n->started_ms = clock_wall_ms();
    n->ends_ms = clock_mono_ms() + s->o.dur_min_ms + (long long)(sim_random(s) * (double)span);
    heap_push(s, n);
    sim_send(n, "started", json_pack("{s:s, s:b}", "command", "simulated puppet run",
                                     "carries_job_id", 1));
    json_object_set_new(out, "summary", json_sprintf("Started a Puppet run for job %s", n->job_id));
    json_object_set_new(out, "initiated_at", json_integer(n->started_ms / 1000));
    json_object_set_new(out, "job_id", json_string(n->job_id));
    json_object_set_new(out, "run_id", json_string(n->run_id));
    snprintf(msg, size, "OK");
    return AGENT_OK;
}

void sim_handle(void *ctx, const char *caller, const char *agent, const char *action,
                json_t *data, json_t **out, int *statuscode, char *statusmsg, size_t msgsize)
{
    struct sim_node *n = ctx;

    (void)caller;
    if (strcmp(agent, "puppet") != 0) {
        *statuscode = RPC_UNKNOWN_ACTION;
        snprintf(statusmsg, msgsize, "unknown agent %s", agent);
        return;
    }
    if (sim_node_paths(n) < 0) {
        *statuscode = RPC_UNKNOWN_ERROR;
        snprintf(statusmsg, msgsize, "cannot make the simulated node's files: %s",
                 strerror(errno));
        return;
    }
    agent_puppet_call(&n->agent, action, data, out, statuscode, statusmsg, msgsize);
}

/* ---- ending a run ----------------------------------------------------------------- */

static void sim_write_summary(struct sim_node *n, int changed, int failed, double secs)
{
    char text[1024];

    snprintf(text, sizeof(text),
             "---\nversion:\n  config: \"%s\"\n  puppet: \"choird-sim\"\n"
             "resources:\n  changed: %d\n  corrective_change: 0\n  failed: %d\n"
             "  failed_to_restart: 0\n  out_of_sync: %d\n  restarted: 0\n  scheduled: 0\n"
             "  skipped: 0\n  total: 10\n"
             "time:\n  config_retrieval: 0.01\n  total: %.3f\n  last_run: %lld\n"
             "changes:\n  total: %d\nevents:\n  failure: %d\n  success: %d\n  total: %d\n",
             n->job_id, changed, failed, changed + failed, secs, clock_wall_ms() / 1000, changed,
             failed, changed, changed + failed);
    file_write_atomic(n->paths.lastrunfile, text, strlen(text), 0644);
}

static void sim_write_report(struct sim_node *n, int changed, int failed, const char *when)
{
    char text[2048];
    const char *status = failed ? "failed" : changed ? "changed" : "unchanged";

    snprintf(text, sizeof(text),
             "--- !ruby/object:Puppet::Transaction::Report\nhost: %s\ntime: '%s'\n"
             "configuration_version: \"%s\"\ntransaction_uuid: %.8s-%.4s-%.4s-%.4s-%.12s\n"
             "job_id: %s\nreport_format: 12\npuppet_version: choird-sim\nstatus: %s\n"
             "transaction_completed: true\nnoop: %s\nenvironment: production\n"
             "cached_catalog_status: not_used\nlogs:\n"
             "- level: %s\n  message: \"%s\"\n  source: Puppet\n  time: '%s'\n"
             "resource_statuses:\n  File[/etc/sim]:\n    resource: File[/etc/sim]\n"
             "    resource_type: File\n    title: /etc/sim\n    failed: %s\n    changed: %s\n"
             "    events: []\n",
             n->name, when, n->job_id, n->run_id, n->run_id + 8, n->run_id + 12, n->run_id + 16,
             n->run_id + 20, n->job_id, status, n->noop ? "true" : "false",
             failed ? "err" : "notice",
             failed ? "change from 'absent' to 'file' failed: simulated failure"
                    : "Applied catalog (simulated)",
             when, failed ? "true" : "false", changed ? "true" : "false");
    file_write_atomic(n->paths.lastrunreport, text, strlen(text), 0644);
}

static void sim_finish(struct sim_node *n)
{
    int changed = !n->noop && !n->fail, failed = n->fail;
    int exit_code = failed ? 6 : changed ? 2 : 0;
    long long dur = clock_wall_ms() - n->started_ms;
    time_t started = (time_t)(n->started_ms / 1000);
    char when[64];
    struct tm tm;
    json_t *ev;

    gmtime_r(&started, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S.000 +00:00", &tm);
    sim_write_summary(n, changed, failed, (double)dur / 1000.0);
    sim_write_report(n, changed, failed, when);
    sim_send(n, "output", json_pack("{s:[{s:s, s:s}], s:i, s:i}", "lines", "level",
                                    failed ? "err" : "notice", "text",
                                    failed ? "/Stage[main]/Main/File[/etc/sim]/ensure: change "
                                             "from 'absent' to 'file' failed: simulated failure"
                                           : "Applied catalog (simulated)",
                                    "first_line", 1, "skipped", 0));
    ev = json_pack("{s:i, s:i, s:I, s:i, s:i}", "exit_code", exit_code, "signal", 0,
                   "duration_ms", (json_int_t)dur, "output_lines", 1, "output_skipped", 0);
    runner_judge(&n->paths, exit_code, n->job_id, started, ev);
    n->running = 0;
    sim_send(n, "finished", ev);
}

long sim_tick(struct sim *s)
{
    long long now = clock_mono_ms();

    while (s->nheap > 0 && s->heap[0]->ends_ms <= now)
        sim_finish(heap_pop(s));
    if (s->nheap == 0)
        return -1;
    return (long)(s->heap[0]->ends_ms - now);
}

/* ---- set-up ------------------------------------------------------------------------- */

int sim_parse_duration(const char *text, long *min_ms, long *max_ms, char *why, size_t n)
{
    char *end;
    const char *second;
    double lo = strtod(text, &end), hi;

    if (end == text || *end != ':') {
        snprintf(why, n, "\"%.64s\" is not MIN:MAX seconds", text);
        return -1;
    }
    second = end + 1;
    hi = strtod(second, &end);
    /* written so that NaN fails every test */
    if (end == second || *end || !(lo >= 0 && hi >= lo && hi <= 86400)) {
        snprintf(why, n, "\"%.64s\" is not MIN:MAX seconds with 0 <= MIN <= MAX <= 86400", text);
        return -1;
    }
    *min_ms = (long)(lo * 1000);
    *max_ms = (long)(hi * 1000);
    return 0;
}

static int sim_check_certs(struct sim *s, struct choir_error *err)
{
    size_t ends[2] = {0, s->o.count - 1};

    for (size_t i = 0; i < 2; i++) {
        struct sim_node *n = &s->nodes[ends[i]];

        if (security_identity_open(s->sec, n->name, &n->cert, err) < 0)
            return -1;
        n->rid.signer = security_identity_signer(n->cert);
    }
    return 0;
}

int sim_open(struct sim **out, const struct sim_opts *o, const char *state_dir,
             struct security *sec, struct rpc_server *srv, struct choir_error *err)
{
    struct sim *s = xcalloc(1, sizeof(*s));
    size_t n = strlen(state_dir) + 8;

    *out = NULL;
    if (o->count < 1 || o->count > SIM_MAX) {
        error_set(err, CHOIR_EXIT_INPUT, "--simulate: %zu nodes, not 1 to %d", o->count, SIM_MAX);
        free(s);
        return -1;
    }
    s->o = *o;
    s->sec = sec;
    s->srv = srv;
    s->rng = o->seed ? o->seed : (unsigned long long)clock_wall_ms() | 1;
    s->dir = xmalloc(n);
    snprintf(s->dir, n, "%s/sim", state_dir);
    if ((mkdir(state_dir, 0700) < 0 && errno != EEXIST) || (mkdir(s->dir, 0700) < 0 && errno != EEXIST)) {
        error_set(err, CHOIR_EXIT_INPUT, "cannot create %s: %s", s->dir, strerror(errno));
        sim_free(s);
        return -1;
    }
    s->nodes = xcalloc(o->count, sizeof(*s->nodes));
    s->names = xcalloc(o->count, sizeof(*s->names));
    s->heap = xcalloc(o->count, sizeof(*s->heap));
    for (size_t i = 0; i < o->count; i++) {
        struct sim_node *node = &s->nodes[i];

        snprintf(node->name, sizeof(node->name), SIM_PREFIX "%05zu", i + 1);
        node->sim = s;
        node->rid = (struct rpc_identity){node->name, {0}, node};
        node->agent = (struct puppet_agent){&node->paths, sim_runonce, sim_running, node};
        s->names[i] = node->name;
    }
    if (sim_check_certs(s, err) < 0) {
        sim_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void sim_free(struct sim *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->nodes && i < s->o.count; i++) {
        security_identity_free(s->nodes[i].cert);
        puppet_paths_done(&s->nodes[i].paths);
    }
    free(s->nodes);
    free(s->names);
    free(s->heap);
    free(s->dir);
    free(s);
}

const char *const *sim_names(const struct sim *s)
{
    return s->names;
}

size_t sim_count(const struct sim *s)
{
    return s->o.count;
}
