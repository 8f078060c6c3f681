/* runonce.h - run Puppet now on named nodes and follow each run to its
 * verdict: `choir runonce`, and the smallest piece of the job engine.
 *
 * Contract: runonce_execute binds the client's reply queue to the job's
 * run events (<job_id>.#) BEFORE it sends the signed runonce request, so
 * no event of the job is missed; then it collects the replies (at most
 * reply_timeout_ms) and the events of every node that accepted, until each
 * one's finished event came or run_timeout_ms passed since the request.
 * Events are authentic (rpc_event_take), of this job, from a named node;
 * anything else is ignored.  A node's verdict is the one in its own
 * finished event.  Every reply and event goes to the sink as it arrives.
 * Returns 0 when it could talk to the bus (node failures are data in the
 * result), -1 with err (class CHOIR_EXIT_SERVER) otherwise. */
#ifndef CHOIR_RUNONCE_H
#define CHOIR_RUNONCE_H

#include <stddef.h>

#include <jansson.h>

#include "core/error.h"
#include "net/rpc.h"

#define RUNONCE_STATES(X)                                                          \
    X(RUNONCE_WAITING, "waiting")                                                  \
    X(RUNONCE_REFUSED, "refused")                                                  \
    X(RUNONCE_NO_REPLY, "no_reply")                                                \
    X(RUNONCE_RUNNING, "running")                                                  \
    X(RUNONCE_SUCCEEDED, "succeeded")                                              \
    X(RUNONCE_FAILED, "failed")                                                    \
    X(RUNONCE_TIMED_OUT, "timed_out")

enum runonce_state {
#define RUNONCE_ENUM(id, name) id,
    RUNONCE_STATES(RUNONCE_ENUM)
#undef RUNONCE_ENUM
};

struct runonce_opts {
    const char *job_id;           /* [A-Za-z0-9_-]{1,64} */
    json_t *inputs;               /* borrowed: noop, tags, ...; NULL = {} */
    const char *const *nodes;
    size_t nnodes;
    long ttl;                     /* seconds; 0: the default */
    int reply_timeout_ms;
    int run_timeout_ms;
};

struct runonce_node {
    const char *node;             /* borrowed from opts */
    enum runonce_state state;
    char *statusmsg;              /* the runonce reply's, or NULL */
    json_t *finished;             /* the finished event, or NULL */
    unsigned long events;
};

struct runonce_sink {
    void (*reply)(void *ctx, const char *node, int statuscode, const char *statusmsg);
    void (*event)(void *ctx, const char *node, const json_t *event);
    void *ctx;
};

struct runonce_result {
    struct runonce_node *nodes;   /* in opts order */
    size_t nnodes;
    size_t succeeded, failed;     /* failed: refused, no reply, failed, timed out */
};

const char *runonce_state_name(enum runonce_state s);
int runonce_execute(struct rpc_client *c, const struct runonce_opts *o,
                    const struct runonce_sink *sink, struct runonce_result *res,
                    struct choir_error *err);
void runonce_result_clear(struct runonce_result *res);

#endif
