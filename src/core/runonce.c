/* runonce.c - see runonce.h. */
#include "core/clock.h"
#include "core/runonce.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/xalloc.h"

static const char *const runonce_names[] = {
#define RUNONCE_NAME(id, name) name,
    RUNONCE_STATES(RUNONCE_NAME)
#undef RUNONCE_NAME
};

const char *runonce_state_name(enum runonce_state s)
{
    return (size_t)s < sizeof(runonce_names) / sizeof(*runonce_names) ? runonce_names[s] : "?";
}

struct runonce_ctx {
    const struct runonce_opts *o;
    const struct runonce_sink *sink;
    struct runonce_result *res;
};

static struct runonce_node *find_node(struct runonce_result *res, const char *name)
{
    for (size_t i = 0; i < res->nnodes; i++)
        if (strcmp(res->nodes[i].node, name) == 0)
            return &res->nodes[i];
    return NULL;
}

static int is_over(enum runonce_state s)
{
    return s != RUNONCE_WAITING && s != RUNONCE_RUNNING;
}

static void on_event(void *ctx, const struct rpc_event *ev)
{
    struct runonce_ctx *x = ctx;
    struct runonce_node *n = find_node(x->res, ev->node);
    const char *job = json_string_value(json_object_get(ev->body, "job_id"));
    const char *kind = json_string_value(json_object_get(ev->body, "event"));

    if (!n || !job || strcmp(job, x->o->job_id) != 0 || is_over(n->state))
        return;
    n->events++;
    if (n->state == RUNONCE_WAITING)
        n->state = RUNONCE_RUNNING;
    if (x->sink && x->sink->event)
        x->sink->event(x->sink->ctx, n->node, ev->body);
    if (strcmp(kind, "finished") == 0) {
        json_t *v = json_object_get(json_object_get(ev->body, "verdict"), "success");

        n->finished = json_incref(ev->body);
        n->state = json_is_true(v) ? RUNONCE_SUCCEEDED : RUNONCE_FAILED;
    }
}

static void take_replies(struct runonce_ctx *x, const struct rpc_result *r)
{
    for (size_t i = 0; i < x->res->nnodes; i++) {
        struct runonce_node *n = &x->res->nodes[i];
        const struct rpc_reply *rep = rpc_result_find(r, n->node);

        if (!rep) {
            if (n->state == RUNONCE_WAITING)
                n->state = RUNONCE_NO_REPLY;
            continue;
        }
        n->statusmsg = xstrdup(rep->statusmsg);
        if (rep->statuscode != 0 && n->state == RUNONCE_WAITING)
            n->state = RUNONCE_REFUSED;
        if (x->sink && x->sink->reply)
            x->sink->reply(x->sink->ctx, n->node, rep->statuscode, rep->statusmsg);
    }
}

static size_t count_going(const struct runonce_result *res)
{
    size_t going = 0;

    for (size_t i = 0; i < res->nnodes; i++)
        going += !is_over(res->nodes[i].state);
    return going;
}

/* Events after the replies, until every run finished or time is up. */
static int follow(struct runonce_ctx *x, struct rpc_client *c, long long deadline,
                  struct choir_error *err)
{
    while (count_going(x->res) > 0) {
        long long left = deadline - clock_mono_ms();
        struct bus_message m = {0};
        struct rpc_event ev;
        int r;

        if (left <= 0)
            break;
        r = bus_receive(c->bus, &m, left > 1000 ? 1000 : (int)left, err);
        if (r == 1 && rpc_event_take(c, &m, &ev) == 1)
            on_event(x, &ev);
        if (r == 1)
            rpc_event_clear(&ev);
        bus_message_clear(&m);
        if (r == BUS_LOST && bus_reconnect(c->bus, err) < 0)
            return -1;
        if (r == -1)
            return -1;
    }
    for (size_t i = 0; i < x->res->nnodes; i++)
        if (!is_over(x->res->nodes[i].state))
            x->res->nodes[i].state = RUNONCE_TIMED_OUT;
    return 0;
}

int runonce_execute(struct rpc_client *c, const struct runonce_opts *o,
                    const struct runonce_sink *sink, struct runonce_result *res,
                    struct choir_error *err)
{
    struct runonce_ctx x = {o, sink, res};
    struct rpc_result r = {0};
    json_t *data = o->inputs ? json_deep_copy(o->inputs) : json_object();
    struct rpc_call_opts call = {
        .agent = "puppet", .action = "runonce", .data = data, .nodes = o->nodes,
        .nnodes = o->nnodes, .ttl = o->ttl, .timeout_ms = o->reply_timeout_ms, .idempotent = 0,
    };
    char key[RPC_EVENT_KEY_MAX + 2];
    long long deadline = clock_mono_ms() + o->run_timeout_ms;
    int rc;

    memset(res, 0, sizeof(*res));
    res->nodes = xcalloc(o->nnodes ? o->nnodes : 1, sizeof(*res->nodes));
    res->nnodes = o->nnodes;
    for (size_t i = 0; i < o->nnodes; i++)
        res->nodes[i].node = o->nodes[i];
    json_object_set_new(data, "job_id", json_string(o->job_id));
    snprintf(key, sizeof(key), "%s.#", o->job_id);
    c->on_event = on_event;
    c->event_ctx = &x;
    rc = bus_bind_events(c->bus, key, err) == 0 ? rpc_call(c, &call, &r, err) : -1;
    if (rc == 0) {
        take_replies(&x, &r);
        rc = follow(&x, c, deadline, err);
    }
    c->on_event = NULL;
    c->event_ctx = NULL;
    for (size_t i = 0; i < res->nnodes; i++)
        res->nodes[i].state == RUNONCE_SUCCEEDED ? res->succeeded++ : res->failed++;
    if (rc < 0)
        err->code = CHOIR_EXIT_SERVER;
    rpc_result_clear(&r);
    json_decref(data);
    return rc;
}

void runonce_result_clear(struct runonce_result *res)
{
    for (size_t i = 0; i < res->nnodes; i++) {
        free(res->nodes[i].statusmsg);
        json_decref(res->nodes[i].finished);
    }
    free(res->nodes);
    memset(res, 0, sizeof(*res));
}
