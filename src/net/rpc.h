/* rpc.h - signed RPC over the bus: the node's request handler and the
 * console's call (PROTOCOL.md §3-4, docs/protocol.md).
 *
 * Contract, node side: rpc_serve_one takes one bus message and either
 * rejects it or answers it exactly once.  A message that does not unpack
 * (wire.h) or fails any check of security.h (certificate, caller rules,
 * ttl, replay, collective, agent, identity filter, action policy) is
 * counted, logged with its reason, and gets NO reply.  An authentic request
 * gets one reply signed with the node's certificate: the handler's
 * {statuscode, statusmsg, data}, or statuscode 4 when the RPC body is not
 * {"agent", "action", "caller", "data"} consistent with the envelope.
 *
 * Contract, console side: rpc_call sends a signed request, directed to
 * each named node or broadcast to every node serving the agent when no
 * node is named.  Named nodes go in chunks of RPC_CHUNK: each chunk has a
 * request of its own (its own id) whose identity filter names only that
 * chunk's nodes, so the bytes sent grow linearly with the nodes.  It
 * collects replies until every named node answered or
 * the deadline passed (a broadcast always waits for the deadline).  Each
 * reply must be signed by the replying identity's own certificate, chained
 * to the Puppet CA; others are counted as rejected and ignored.  Nodes that
 * did not answer are listed.  When the broker connection is lost the bus
 * reconnects, and an idempotent call is sent again to the nodes that have
 * not answered; replies already received are kept. */
#ifndef CHOIR_RPC_H
#define CHOIR_RPC_H

#include <jansson.h>
#include <stddef.h>

#include "core/error.h"
#include "net/bus.h"
#include "net/security.h"

/* RPC statuscodes (the MCollective/Choria meanings). */
#define RPC_STATUS_CODES(X)                 \
    X(RPC_OK, 0, "OK")                      \
    X(RPC_ABORTED, 1, "aborted")            \
    X(RPC_UNKNOWN_ACTION, 2, "unknown action") \
    X(RPC_MISSING_DATA, 3, "missing data")  \
    X(RPC_INVALID_DATA, 4, "invalid data")  \
    X(RPC_UNKNOWN_ERROR, 5, "unknown error")

enum rpc_status {
#define RPC_STATUS_ENUM(id, code, text) id = code,
    RPC_STATUS_CODES(RPC_STATUS_ENUM)
#undef RPC_STATUS_ENUM
};

#define RPC_STATUSMSG_MAX 512
#define RPC_CHUNK 64                  /* named nodes per request */

/* Handles one authentic request; fills *out (a JSON object, may stay NULL
 * for {}), *statuscode and statusmsg. */
typedef void rpc_handler_fn(void *ctx, const char *caller, const char *agent, const char *action,
                            json_t *data, json_t **out, int *statuscode, char *statusmsg,
                            size_t msgsize);
typedef void rpc_log_fn(void *ctx, const char *line);

/* One of several identities a server answers as (choird --simulate). */
struct rpc_identity {
    const char *name;
    struct wire_signer signer;    /* signs its replies with its own certificate */
    void *ctx;                    /* the handler's ctx for requests to it */
};

/* The identity by name, or NULL when it is not served here. */
typedef const struct rpc_identity *rpc_identity_find_fn(void *ctx, const char *name);
/* The i-th identity, i < nidentities; NULL when it cannot answer now. */
typedef const struct rpc_identity *rpc_identity_at_fn(void *ctx, size_t i);

struct rpc_server {
    struct bus *bus;
    struct security *sec;
    const char *identity;
    const char *const *agents;
    size_t nagents;
    rpc_handler_fn *handle;
    void *ctx;
    rpc_log_fn *log;              /* NULL: silent */
    unsigned long served, rejected;
    /* Several identities: nidentities > 0.  The security context was
     * opened without an identity and checks everything but the identity
     * filter; a directed request is for the identity of its routing key,
     * a broadcast for every identity the filter selects (all of them
     * without an identity filter).  Each one gets its own reply, signed
     * by its own signer, from the handler called with its ctx. */
    size_t nidentities;
    rpc_identity_find_fn *identity_find;
    rpc_identity_at_fn *identity_at;
    void *identities_ctx;
};

/* 0 when the message was answered or rejected; -1 or BUS_LOST (then
 * reconnect and go on) when publishing the reply failed (err). */
int rpc_serve_one(struct rpc_server *srv, const struct bus_message *msg, struct choir_error *err);

/* ---- run events (docs/protocol.md §11) ----------------------------------
 * A node publishes a run's events as signed replies (wire.h reply layers,
 * senderid = the node, requestid = the run id, agent "puppet") whose body
 * is the event object, to the events exchange with routing key
 * <job_id>.<identity>.  The console verifies them exactly like replies:
 * signed by the sender's own certificate, chained to the Puppet CA. */
#define RPC_EVENT_KEY_MAX (2 * WIRE_NAME_MAX)

struct rpc_event {
    char node[WIRE_NAME_MAX + 1];
    char run_id[WIRE_REQUESTID_LEN + 1];
    json_t *body;                 /* owned: {"event": ..., ...} */
};

/* Publishes one event of job_id's run run_id, signed by signer (NULL: the
 * server's own certificate) as identity (NULL: the server's). */
int rpc_publish_event(struct rpc_server *srv, const struct wire_signer *signer,
                      const char *identity, const char *run_id, const char *job_id,
                      const json_t *event, struct choir_error *err);

typedef void rpc_event_fn(void *ctx, const struct rpc_event *ev);

struct rpc_client {
    struct bus *bus;
    struct security *sec;
    const char *collective;
    unsigned long rejected;       /* forged, foreign or malformed replies */
    unsigned long events_rejected;
    rpc_event_fn *on_event;       /* events that arrive during rpc_call; NULL: dropped */
    void *event_ctx;
};

/* Takes one message of the reply queue that came from the events exchange:
 * 1 with *ev filled (clear with rpc_event_clear) for an authentic event, 0
 * when the message is not from the events exchange, -1 when it is forged
 * or malformed (counted in events_rejected). */
int rpc_event_take(struct rpc_client *c, const struct bus_message *m, struct rpc_event *ev);
void rpc_event_clear(struct rpc_event *ev);

struct rpc_call_opts {
    const char *agent;
    const char *action;
    json_t *data;                 /* borrowed; NULL = {} */
    const char *const *nodes;     /* NULL/0: broadcast discovery */
    size_t nnodes;
    long ttl;                     /* seconds; 0: 60 */
    int timeout_ms;               /* how long to collect replies */
    int idempotent;               /* may be sent again after a reconnect */
};

struct rpc_reply {
    char *node;
    int statuscode;
    char *statusmsg;
    json_t *data;                 /* owned */
};

struct rpc_result {
    struct rpc_reply *replies;    /* in arrival order */
    size_t nreplies;
    char **missing;               /* named nodes that did not answer, sorted */
    size_t nmissing;
    size_t *by_node;              /* reply indexes sorted by node, for rpc_result_find */
};

/* Creates the client's reply queue. */
int rpc_client_init(struct rpc_client *c, struct bus *bus, struct security *sec,
                    const char *collective, struct choir_error *err);

/* -1 only when the request could not be sent at all (err, class
 * CHOIR_EXIT_SERVER); silent nodes are data in res->missing. */
int rpc_call(struct rpc_client *c, const struct rpc_call_opts *o, struct rpc_result *res,
             struct choir_error *err);
void rpc_result_clear(struct rpc_result *res);

/* The reply of `node`, or NULL. */
const struct rpc_reply *rpc_result_find(const struct rpc_result *res, const char *node);

#endif
