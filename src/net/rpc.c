/* rpc.c - see rpc.h.  The RPC body is {"agent", "action", "caller",
 * "data"}; the reply body {"statuscode", "statusmsg", "data"}. */
#include "net/rpc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/xalloc.h"

#define RPC_ACTION_MAX 64

/* ---- shared ------------------------------------------------------------ */

static int rpc_action_ok(const char *s)
{
    size_t len = strlen(s);

    return len > 0 && len <= RPC_ACTION_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
}

/* ---- node side --------------------------------------------------------- */

__attribute__((format(printf, 2, 3)))
static void rpc_log(struct rpc_server *srv, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (!srv->log)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    srv->log(srv->ctx, line);
}

/* The body's action if it names one well-formed, else "" (for the policy
 * check, which runs before the body is trusted). */
static void rpc_peek_action(const struct wire_request *rq, char *action, size_t size)
{
    json_t *body = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, NULL);
    const char *a = json_string_value(json_object_get(body, "action"));

    snprintf(action, size, "%s", a && rpc_action_ok(a) ? a : "");
    json_decref(body);
}

/* Parses and checks the RPC body against the envelope.  On success
 * `action` holds the action and *data a new reference to the data object. */
static int rpc_body_parse(const struct wire_request *rq, char action_out[RPC_ACTION_MAX + 1],
                          json_t **data, char *why, size_t n)
{
    json_t *body = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, NULL);
    const char *agent = json_string_value(json_object_get(body, "agent"));
    const char *action = json_string_value(json_object_get(body, "action"));
    const char *caller = json_string_value(json_object_get(body, "caller"));
    json_t *d = json_object_get(body, "data");

    *data = NULL;
    if (!json_is_object(body))
        snprintf(why, n, "the RPC body is not a JSON object");
    else if (!agent || strcmp(agent, rq->env.agent) != 0)
        snprintf(why, n, "the RPC body's \"agent\" is not the envelope's agent");
    else if (!action || !rpc_action_ok(action))
        snprintf(why, n, "the RPC body's \"action\" is missing or not [a-z0-9_]+");
    else if (!caller || strcmp(caller, rq->env.callerid) != 0)
        snprintf(why, n, "the RPC body's \"caller\" is not the envelope's callerid");
    else if (d && !json_is_object(d))
        snprintf(why, n, "the RPC body's \"data\" is not an object");
    else {
        *data = d ? json_incref(d) : json_object();
        snprintf(action_out, RPC_ACTION_MAX + 1, "%s", action);
    }
    json_decref(body);
    return *data ? 0 : -1;
}

static char *rpc_reply_body(int statuscode, const char *statusmsg, json_t *data)
{
    json_t *body = json_pack("{s:i, s:s, s:o}", "statuscode", statuscode, "statusmsg", statusmsg,
                             "data", data ? json_incref(data) : json_object());
    char *text = json_dumps(body, JSON_COMPACT);

    json_decref(body);
    return text;
}

static const char *rpc_reply_to(const struct wire_transport *t, const struct bus_message *msg)
{
    const char *to = t->headers.reply_to[0] ? t->headers.reply_to : msg->reply_to;

    return to && *to ? to : NULL;
}

/* Packs body as a signed reply from identity with the given request id. */
static int rpc_pack_signed(const struct wire_signer *signer, const char *identity,
                           const char *requestid, const char *agent, const char *body,
                           char **out, size_t *len, struct choir_error *err)
{
    struct wire_reply rep = {0};
    struct wire_headers headers = {0};
    int rc = -1;

    snprintf(rep.requestid, sizeof(rep.requestid), "%s", requestid);
    snprintf(rep.senderid, sizeof(rep.senderid), "%s", identity);
    snprintf(rep.agent, sizeof(rep.agent), "%s", agent);
    rep.time = (long long)time(NULL);
    snprintf(headers.sender, sizeof(headers.sender), "%s", identity);
    if (wire_reply_set_body(&rep, body, strlen(body), err) == 0)
        rc = wire_pack_reply(&rep, signer, &headers, out, len, err);
    wire_reply_clear(&rep);
    return rc;
}

static int rpc_send_reply(struct rpc_server *srv, const struct rpc_identity *as,
                          const char *reply_to, const struct wire_request *rq, const char *body,
                          struct choir_error *err)
{
    struct wire_signer own = security_signer(srv->sec);
    char *out = NULL;
    size_t len;
    int rc = rpc_pack_signed(as ? &as->signer : &own, as ? as->name : srv->identity,
                             rq->env.requestid, rq->env.agent, body, &out, &len, err);

    if (rc == 0)
        rc = bus_publish_reply(srv->bus, reply_to, out, len, err);
    free(out);
    return rc;
}

int rpc_publish_event(struct rpc_server *srv, const struct wire_signer *signer,
                      const char *identity, const char *run_id, const char *job_id,
                      const json_t *event, struct choir_error *err)
{
    struct wire_signer own = security_signer(srv->sec);
    char key[RPC_EVENT_KEY_MAX + 2], *body = json_dumps(event, JSON_COMPACT), *out = NULL;
    size_t len;
    int rc;

    identity = identity ? identity : srv->identity;
    snprintf(key, sizeof(key), "%s.%s", job_id, identity);
    rc = rpc_pack_signed(signer ? signer : &own, identity, run_id, "puppet", body, &out, &len,
                         err);
    if (rc == 0)
        rc = bus_publish_event(srv->bus, key, out, len, err);
    free(out);
    free(body);
    return rc;
}

/* Runs the handler for an authentic request; returns the reply body. */
static char *rpc_dispatch(struct rpc_server *srv, const struct rpc_identity *as,
                          const struct wire_request *rq)
{
    char statusmsg[RPC_STATUSMSG_MAX] = "OK", action[RPC_ACTION_MAX + 1];
    int statuscode = RPC_OK;
    json_t *data = NULL, *out = NULL;
    char *reply;

    if (rpc_body_parse(rq, action, &data, statusmsg, sizeof(statusmsg)) < 0)
        return rpc_reply_body(RPC_INVALID_DATA, statusmsg, NULL);
    srv->handle(as ? as->ctx : srv->ctx, rq->env.callerid + strlen(WIRE_CALLERID_PREFIX), rq->env.agent, action,
                data, &out, &statuscode, statusmsg, sizeof(statusmsg));
    reply = rpc_reply_body(statuscode, statusmsg, out);
    json_decref(out);
    json_decref(data);
    return reply;
}

/* Answers rq as one identity (NULL: the server's own). */
static int rpc_answer(struct rpc_server *srv, const struct rpc_identity *as, const char *reply_to,
                      const struct wire_request *rq, struct choir_error *err)
{
    char *reply = rpc_dispatch(srv, as, rq);
    int rc = rpc_send_reply(srv, as, reply_to, rq, reply, err);

    if (rc == 0)
        srv->served++;
    free(reply);
    return rc;
}

static int rpc_is_directed(const struct bus_message *msg)
{
    size_t n = msg->exchange ? strlen(msg->exchange) : 0;

    return n > 9 && strcmp(msg->exchange + n - 9, "_directed") == 0;
}

/* A server of several identities: each one the request selects answers. */
static int rpc_answer_many(struct rpc_server *srv, const struct bus_message *msg,
                           const char *reply_to, const struct wire_request *rq,
                           struct choir_error *err)
{
    const struct wire_filter *f = &rq->env.filter;
    const struct rpc_identity *as;
    int rc = 0;

    if (rpc_is_directed(msg)) {
        as = msg->routing_key ? srv->identity_find(srv->identities_ctx, msg->routing_key) : NULL;
        for (size_t i = 0; as && f->identity_count && i < f->identity_count; i++)
            if (strcmp(f->identity[i], as->name) == 0)
                return rpc_answer(srv, as, reply_to, rq, err);
        srv->rejected++;
        rpc_log(srv, "rejected request %s from %s: not_for_this_node: directed to \"%s\"",
                rq->env.requestid, rq->env.callerid, msg->routing_key ? msg->routing_key : "");
        return 0;
    }
    if (f->identity_count == 0) {
        for (size_t i = 0; i < srv->nidentities && rc == 0; i++)
            if ((as = srv->identity_at(srv->identities_ctx, i)))
                rc = rpc_answer(srv, as, reply_to, rq, err);
        return rc;
    }
    for (size_t i = 0; i < f->identity_count && rc == 0; i++)
        if ((as = srv->identity_find(srv->identities_ctx, f->identity[i])))
            rc = rpc_answer(srv, as, reply_to, rq, err);
    return rc;
}

int rpc_serve_one(struct rpc_server *srv, const struct bus_message *msg, struct choir_error *err)
{
    struct wire_transport t = {0};
    struct wire_secure s = {0};
    struct wire_request rq = {0};
    struct choir_error why = {0};
    struct security_check check = {srv->agents, srv->nagents, NULL, srv->nidentities > 0, NULL};
    char action[RPC_ACTION_MAX + 1], reason[SECURITY_REASON_SIZE];
    enum security_verdict v;
    int rc = 0;

    if (wire_unpack_request(msg->body, msg->len, &t, &s, &rq, &why) < 0) {
        srv->rejected++;
        rpc_log(srv, "rejected a message: malformed: %s", why.msg);
        return 0;
    }
    rpc_peek_action(&rq, action, sizeof(action));
    check.action = action[0] ? action : NULL;
    if (srv->nidentities && rpc_is_directed(msg))
        check.target = msg->routing_key;
    v = security_verify_request(srv->sec, &s, &rq, &check, reason, sizeof(reason));
    if (v != SECURITY_OK) {
        srv->rejected++;
        rpc_log(srv, "rejected request %s from %s: %s: %s", rq.env.requestid, rq.env.callerid,
                security_verdict_name(v), reason);
    } else if (!rpc_reply_to(&t, msg)) {
        srv->rejected++; /* nobody could learn the outcome: do not act */
        rpc_log(srv, "rejected request %s from %s: no reply-to", rq.env.requestid, rq.env.callerid);
    } else if (srv->nidentities) {
        rc = rpc_answer_many(srv, msg, rpc_reply_to(&t, msg), &rq, err);
    } else {
        rc = rpc_answer(srv, NULL, rpc_reply_to(&t, msg), &rq, err);
    }
    wire_request_clear(&rq);
    wire_secure_clear(&s);
    wire_transport_clear(&t);
    return rc;
}

/* ---- console side ------------------------------------------------------ */

static int rpc_from_events(const struct rpc_client *c, const struct bus_message *m)
{
    size_t n = strlen(c->collective);

    return m->exchange && strncmp(m->exchange, c->collective, n) == 0 &&
           strcmp(m->exchange + n, "_events") == 0;
}

int rpc_event_take(struct rpc_client *c, const struct bus_message *m, struct rpc_event *ev)
{
    struct wire_transport t = {0};
    struct wire_secure s = {0};
    struct wire_reply rep = {0};
    struct choir_error why = {0};
    int rc = -1;

    memset(ev, 0, sizeof(*ev));
    if (!rpc_from_events(c, m))
        return 0;
    if (wire_unpack_reply(m->body, m->len, &t, &s, &rep, &why) == 0 &&
        security_verify_reply(c->sec, &s, &rep, NULL, 0) == SECURITY_OK) {
        ev->body = json_loadb(rep.body, rep.body_len, JSON_REJECT_DUPLICATES, NULL);
        if (json_is_string(json_object_get(ev->body, "event"))) {
            snprintf(ev->node, sizeof(ev->node), "%s", rep.senderid);
            snprintf(ev->run_id, sizeof(ev->run_id), "%s", rep.requestid);
            rc = 1;
        }
    }
    if (rc < 0) {
        rpc_event_clear(ev);
        c->events_rejected++;
    }
    wire_reply_clear(&rep);
    wire_secure_clear(&s);
    wire_transport_clear(&t);
    return rc;
}

void rpc_event_clear(struct rpc_event *ev)
{
    json_decref(ev->body);
    memset(ev, 0, sizeof(*ev));
}

int rpc_client_init(struct rpc_client *c, struct bus *bus, struct security *sec,
                    const char *collective, struct choir_error *err)
{
    char name[BUS_NAME_MAX + 1];

    memset(c, 0, sizeof(*c));
    c->bus = bus;
    c->sec = sec;
    c->collective = collective;
    return bus_reply_queue(bus, name, sizeof(name), err);
}

/* Where a call stands: which named nodes answered.  Named nodes go in
 * chunks of RPC_CHUNK, each with its own request naming only its nodes,
 * so a call to N nodes costs N messages of one chunk's size, not N of N
 * names; a broadcast is one chunk without names. */
struct rpc_pending {
    const struct rpc_call_opts *o;
    struct wire_request *rqs;      /* one per chunk; requestid "" when not sent */
    size_t nchunks;
    unsigned char *answered;       /* per named node */
    size_t nanswered;
};

static size_t rpc_chunk_end(const struct rpc_pending *p, size_t k)
{
    size_t end = (k + 1) * RPC_CHUNK;

    return end < p->o->nnodes ? end : p->o->nnodes;
}

/* Builds chunk k's request for its nodes still to answer; 1 when there is
 * none (nothing to send), 0 when built, -1 on error. */
static int rpc_build_request(struct rpc_client *c, struct rpc_pending *p, size_t k,
                             struct choir_error *err)
{
    const struct rpc_call_opts *o = p->o;
    const char *me = security_certname(c->sec);
    struct wire_request *rq = &p->rqs[k];
    size_t left = 0;
    json_t *body;
    char *text;
    int rc;

    wire_request_clear(rq);
    for (size_t i = k * RPC_CHUNK; i < rpc_chunk_end(p, k); i++)
        left += !p->answered[i];
    if (o->nnodes && left == 0)
        return 1;
    if (wire_envelope_init(&rq->env, me, me, c->collective, o->agent, o->ttl, err) < 0)
        return -1;
    for (size_t i = k * RPC_CHUNK; i < rpc_chunk_end(p, k); i++)
        if (!p->answered[i])
            wire_filter_add_identity(&rq->env.filter, o->nodes[i]);
    wire_filter_add_agent(&rq->env.filter, o->agent);
    body = json_pack("{s:s, s:s, s:s, s:o}", "agent", o->agent, "action", o->action, "caller",
                     rq->env.callerid, "data", o->data ? json_incref(o->data) : json_object());
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    rc = wire_request_set_body(rq, text, strlen(text), err);
    free(text);
    return rc;
}

/* Signs and publishes chunk k's request to its nodes still to answer (or
 * broadcasts it). */
static int rpc_publish(struct rpc_client *c, struct rpc_pending *p, size_t k,
                       struct choir_error *err)
{
    const struct rpc_call_opts *o = p->o;
    const struct wire_request *rq = &p->rqs[k];
    struct wire_signer signer = security_signer(c->sec);
    struct wire_headers headers = {0};
    unsigned long expiration = bus_request_expiration_ms((unsigned)rq->env.ttl);
    char *out = NULL;
    size_t len;
    int rc = 0;

    snprintf(headers.reply_to, sizeof(headers.reply_to), "%s", bus_reply_queue_name(c->bus));
    snprintf(headers.sender, sizeof(headers.sender), "%s", security_certname(c->sec));
    if (wire_pack_request(rq, &signer, &headers, &out, &len, err) < 0)
        return -1;
    if (o->nnodes == 0)
        rc = bus_publish_broadcast(c->bus, o->agent, out, len, headers.reply_to, expiration, err);
    for (size_t i = k * RPC_CHUNK; i < rpc_chunk_end(p, k) && rc == 0; i++)
        if (!p->answered[i])
            rc = bus_publish_directed(c->bus, o->nodes[i], out, len, headers.reply_to, expiration,
                                      err);
    free(out);
    return rc;
}

/* Builds and publishes every chunk that has nodes to answer. */
static int rpc_send(struct rpc_client *c, struct rpc_pending *p, struct choir_error *err)
{
    for (size_t k = 0; k < p->nchunks; k++) {
        int rc = rpc_build_request(c, p, k, err);

        if (rc == 1)
            continue;
        if (rc == 0)
            rc = rpc_publish(c, p, k, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void rpc_add_reply(struct rpc_result *res, const char *node, json_t *body)
{
    struct rpc_reply *r;
    json_t *data = json_object_get(body, "data");

    res->replies = xreallocarray(res->replies, res->nreplies + 1, sizeof(*res->replies));
    r = &res->replies[res->nreplies++];
    r->node = xstrdup(node);
    r->statuscode = (int)json_integer_value(json_object_get(body, "statuscode"));
    r->statusmsg = xstrdup(json_string_value(json_object_get(body, "statusmsg")));
    r->data = json_is_object(data) ? json_incref(data) : json_object();
}

/* The chunk whose request this reply answers, or -1. */
static long rpc_chunk_of(const struct rpc_pending *p, const char *requestid)
{
    for (size_t k = 0; k < p->nchunks; k++)
        if (p->rqs[k].env.requestid[0] && strcmp(p->rqs[k].env.requestid, requestid) == 0)
            return (long)k;
    return -1;
}

/* Index of node among chunk k's named ones, or -1 (broadcast: 0 when new). */
static long rpc_expected(const struct rpc_pending *p, size_t k, const struct rpc_result *res,
                         const char *node)
{
    if (p->o->nnodes == 0)
        return rpc_result_find(res, node) ? -1 : 0;
    for (size_t i = k * RPC_CHUNK; i < rpc_chunk_end(p, k); i++)
        if (strcmp(p->o->nodes[i], node) == 0)
            return p->answered[i] ? -1 : (long)i;
    return -1;
}

/* Takes one message from the reply queue: a verified reply to this call
 * from a node we wait for is recorded; anything else is counted. */
static void rpc_take(struct rpc_client *c, struct rpc_pending *p, const struct bus_message *m,
                     struct rpc_result *res)
{
    struct wire_transport t = {0};
    struct wire_secure s = {0};
    struct wire_reply rep = {0};
    struct choir_error why = {0};
    char reason[SECURITY_REASON_SIZE];
    json_t *body = NULL;
    long idx, k;

    if (c->on_event) {
        struct rpc_event ev;
        int r = rpc_event_take(c, m, &ev);

        if (r == 1)
            c->on_event(c->event_ctx, &ev);
        rpc_event_clear(&ev);
        if (r != 0)
            return;
    }
    if (wire_unpack_reply(m->body, m->len, &t, &s, &rep, &why) < 0) {
        c->rejected++;
        return;
    }
    if ((k = rpc_chunk_of(p, rep.requestid)) < 0)
        goto out; /* a late reply to an earlier call */
    if (security_verify_reply(c->sec, &s, &rep, reason, sizeof(reason)) != SECURITY_OK) {
        c->rejected++;
        goto out;
    }
    body = json_loadb(rep.body, rep.body_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_integer(json_object_get(body, "statuscode")) ||
        !json_is_string(json_object_get(body, "statusmsg"))) {
        c->rejected++;
        goto out;
    }
    idx = rpc_expected(p, (size_t)k, res, rep.senderid);
    if (idx >= 0) {
        rpc_add_reply(res, rep.senderid, body);
        if (p->o->nnodes) {
            p->answered[idx] = 1;
            p->nanswered++;
        }
    }
out:
    json_decref(body);
    wire_reply_clear(&rep);
    wire_secure_clear(&s);
    wire_transport_clear(&t);
}

static int rpc_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void rpc_list_missing(const struct rpc_pending *p, struct rpc_result *res)
{
    for (size_t i = 0; i < p->o->nnodes; i++) {
        if (p->answered[i])
            continue;
        res->missing = xreallocarray(res->missing, res->nmissing + 1, sizeof(*res->missing));
        res->missing[res->nmissing++] = xstrdup(p->o->nodes[i]);
    }
    if (res->nmissing > 1)
        qsort(res->missing, res->nmissing, sizeof(*res->missing), rpc_cmp_str);
}

/* After a lost connection: reconnect, and send an idempotent call again
 * (with a new request id) to whoever has not answered. */
static int rpc_recover(struct rpc_client *c, struct rpc_pending *p, struct choir_error *err)
{
    if (bus_reconnect(c->bus, err) < 0)
        return -1;
    if (!p->o->idempotent)
        return 0;
    return rpc_send(c, p, err);
}

static int rpc_collect(struct rpc_client *c, struct rpc_pending *p, struct rpc_result *res,
                       struct choir_error *err)
{
    long long deadline = clock_mono_ms() + p->o->timeout_ms;

    while (p->o->nnodes == 0 || p->nanswered < p->o->nnodes) {
        long long left = deadline - clock_mono_ms();
        struct bus_message m = {0};
        int r;

        if (left <= 0)
            break;
        r = bus_receive(c->bus, &m, (int)left, err);
        if (r == 1)
            rpc_take(c, p, &m, res);
        bus_message_clear(&m);
        if (r == BUS_LOST && rpc_recover(c, p, err) < 0)
            return -1;
        if (r == -1)
            return -1;
    }
    return 0;
}

struct rpc_key {
    const char *node;
    size_t index;
};

static int rpc_cmp_key(const void *a, const void *b)
{
    return strcmp(((const struct rpc_key *)a)->node, ((const struct rpc_key *)b)->node);
}

/* Sorts the replies' indexes by node: rpc_result_find in O(log n). */
static void rpc_index(struct rpc_result *res)
{
    struct rpc_key *keys = xmalloc((res->nreplies + 1) * sizeof(*keys));

    for (size_t i = 0; i < res->nreplies; i++)
        keys[i] = (struct rpc_key){res->replies[i].node, i};
    qsort(keys, res->nreplies, sizeof(*keys), rpc_cmp_key);
    res->by_node = xmalloc((res->nreplies + 1) * sizeof(*res->by_node));
    for (size_t i = 0; i < res->nreplies; i++)
        res->by_node[i] = keys[i].index;
    free(keys);
}

int rpc_call(struct rpc_client *c, const struct rpc_call_opts *o, struct rpc_result *res,
             struct choir_error *err)
{
    struct rpc_pending p = {.o = o};
    int rc;

    memset(res, 0, sizeof(*res));
    p.answered = xcalloc(o->nnodes ? o->nnodes : 1, 1);
    p.nchunks = o->nnodes ? (o->nnodes + RPC_CHUNK - 1) / RPC_CHUNK : 1;
    p.rqs = xcalloc(p.nchunks, sizeof(*p.rqs));
    rc = rpc_send(c, &p, err);
    if (rc == BUS_LOST)
        rc = rpc_recover(c, &p, err);
    if (rc == 0)
        rc = rpc_collect(c, &p, res, err);
    if (rc == 0) {
        rpc_list_missing(&p, res);
        rpc_index(res);
    } else
        err->code = CHOIR_EXIT_SERVER;
    for (size_t k = 0; k < p.nchunks; k++)
        wire_request_clear(&p.rqs[k]);
    free(p.rqs);
    free(p.answered);
    return rc == 0 ? 0 : -1;
}

void rpc_result_clear(struct rpc_result *res)
{
    for (size_t i = 0; i < res->nreplies; i++) {
        free(res->replies[i].node);
        free(res->replies[i].statusmsg);
        json_decref(res->replies[i].data);
    }
    for (size_t i = 0; i < res->nmissing; i++)
        free(res->missing[i]);
    free(res->replies);
    free(res->missing);
    free(res->by_node);
    memset(res, 0, sizeof(*res));
}

const struct rpc_reply *rpc_result_find(const struct rpc_result *res, const char *node)
{
    size_t lo = 0, hi = res->nreplies;

    while (res->by_node && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(res->replies[res->by_node[mid]].node, node);

        if (c == 0)
            return &res->replies[res->by_node[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; !res->by_node && i < res->nreplies; i++)
        if (strcmp(res->replies[i].node, node) == 0)
            return &res->replies[i];
    return NULL;
}
