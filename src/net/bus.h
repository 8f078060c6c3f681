/* bus.h - the message bus: AMQP 0-9-1 to RabbitMQ (librabbitmq), in
 * MCollective's RabbitMQ layout (PROTOCOL.md §4).
 *
 * Topology, declared again on every (re)connection:
 *   exchange <collective>_broadcast   topic,  durable; routing key = agent
 *   exchange <collective>_directed    direct, durable; routing key = identity
 *   exchange <collective>_events      topic,  durable; key = <job_id>.<identity>
 *   node queue <collective>.node.<identity>   (bus_serve)
 *       durable, not exclusive, not auto-delete, x-expires 30 min; bound to
 *       <identity> on the directed exchange and to every served agent on
 *       the broadcast exchange; consumed exclusively, so a second process
 *       serving the same identity is refused (after a network split the
 *       broker holds the old consumer until it misses two heartbeats, and
 *       bus_reconnect keeps retrying meanwhile).  It outlives a choird restart or a broker
 *       restart, so requests sent meanwhile wait for the node (each one
 *       still dies at its own `expiration`); a node that goes away for good
 *       leaves no queue behind: the broker deletes a queue nobody has used
 *       for 30 minutes.  Durable because RabbitMQ 3.13+ deprecates transient
 *       non-exclusive queues.  Messages are published transient
 *       (delivery_mode 1): a broker restart drops queued requests, which
 *       is what their short expiration would do anyway.
 *   reply queue (bus_reply_queue): server-named, exclusive, auto-delete;
 *       it gets a NEW name after every reconnection (bus_reply_queue_name).
 *
 * Delivery: every consumer uses manual acknowledgements with a prefetch
 * window (cfg.prefetch), so a burst of thousands of replies is flow
 * controlled by the broker instead of piling up in our socket buffer.
 * A message is acknowledged as soon as bus_receive has copied it out
 * (at-most-once): a request is never redelivered to a restarted choird,
 * because running `runonce` twice is worse than a request that times out;
 * the console decides what to retry.  A message whose body is larger than
 * cfg.max_body is never allocated: its frames are read and thrown away, it
 * is rejected without requeue (dead-lettered if the broker is set up so)
 * and counted (bus_dropped_count).
 *
 * Security: tls = 1 is amqps with the Puppet ssldir: the broker must
 * present a certificate that chains to <ssldir>/certs/ca.pem and names the
 * host we dialled (DNS name or IP address); we present
 * certs/<certname>.pem with private_keys/<certname>.pem.  Login over TLS
 * uses user/password when a user is configured, else SASL EXTERNAL (the
 * broker maps the certificate's CN to a user: rabbitmq_auth_mechanism_ssl
 * with ssl_cert_login_from = common_name).  tls = 0 is plain TCP with
 * user/password, for development.  Broker text (routing keys, reply-to)
 * is untrusted and bounded; bodies are bounded by max_body.
 *
 * Heartbeats: negotiated at login (cfg.heartbeat).  librabbitmq sends ours
 * and checks the broker's only while we are inside a bus_* call, so a
 * caller that sleeps in poll() on bus_fd() must wake at least every
 * bus_idle_ms() and call bus_receive(…, 0).  Data may already be buffered
 * inside the library: call bus_receive(…, 0) until it returns 0 (or check
 * bus_pending()) before sleeping in poll().
 *
 * Failures: functions return 0 (or 1 for a message) on success, -1 on an
 * error that leaves the connection usable (bad argument, a name the broker
 * cannot take) and BUS_LOST when the connection is gone (socket error,
 * heartbeat timeout, the broker closed the connection or our channel).
 * After BUS_LOST call bus_reconnect(): it retries the broker list with
 * exponential backoff (100 ms doubling to 5 s, with jitter) for at most
 * cfg.reconnect_timeout seconds and declares the topology again.  Messages
 * bus_receive already returned are the caller's; a message half read when
 * the connection dropped was not acknowledged, so the broker keeps it for
 * the node queue.  A publish that returned 0 was written to the socket,
 * not confirmed by the broker (no publisher confirms).
 *
 * Errors are one line that names the broker host:port and what failed: TCP
 * connect (refused, timed out, no such host), the TLS check (which ssldir
 * file, what the broker said about our certificate), the login (the
 * broker's reply text), a declare or bind (the broker's reply code and
 * text).  Class CHOIR_EXIT_SERVER, or CHOIR_EXIT_INPUT for bad
 * configuration and bad names.
 *
 * One bus is used by one thread at a time. */
#ifndef CHOIR_BUS_H
#define CHOIR_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define BUS_LOST (-2)

#define BUS_DEFAULT_COLLECTIVE "mcollective"
#define BUS_DEFAULT_HEARTBEAT 30            /* seconds */
#define BUS_DEFAULT_CONNECT_TIMEOUT 10      /* seconds, per broker attempt */
#define BUS_DEFAULT_RECONNECT_TIMEOUT 60    /* seconds, per bus_reconnect call */
#define BUS_DEFAULT_MAX_BODY ((size_t)16 << 20)
#define BUS_DEFAULT_PREFETCH 100
#define BUS_DEFAULT_TLS_PORT 5671
#define BUS_DEFAULT_PLAIN_PORT 5672
#define BUS_NODE_QUEUE_EXPIRES_MS 1800000   /* x-expires of node queues */
#define BUS_NAME_MAX 255                    /* AMQP short string */

struct bus_config {
    const char *const *brokers;   /* "host:port", "[v6]:port" or "host"; tried in order */
    size_t nbrokers;
    int tls;                      /* 1: amqps with the ssldir; 0: plain TCP */
    const char *ssldir;           /* tls: the Puppet ssldir */
    const char *certname;         /* tls: our identity in the ssldir */
    const char *user;             /* plain: required; tls: NULL = SASL EXTERNAL */
    const char *password;
    const char *vhost;            /* NULL: "/" */
    int heartbeat;                /* seconds; 0: default 30; < 0: off */
    const char *collective;       /* NULL: "mcollective" */
    long connect_timeout;         /* seconds; 0: default 10 */
    long reconnect_timeout;       /* seconds; 0: default 60 */
    size_t max_body;              /* 0: default 16 MiB */
    unsigned prefetch;            /* 0: default 100 */
    const char *connection_name;  /* shown by the broker; NULL: "choir" */
};

struct bus;

/* One received message; every string is NUL-terminated heap memory owned
 * by the message (bus_message_clear frees it).  reply_to is NULL when the
 * message had none.  body has a NUL after len bytes too. */
struct bus_message {
    char *body;
    size_t len;
    char *reply_to;
    char *routing_key;
    char *exchange;
    int redelivered;
};

/* Connects to the first broker that answers (one round over the list) and
 * declares the exchanges.  On success *out is the bus; on failure *out is
 * NULL and err names every broker tried. */
int bus_open(struct bus **out, const struct bus_config *cfg, struct choir_error *err);
void bus_free(struct bus *bus);

/* The socket to poll (POLLIN), or -1 while disconnected. */
int bus_fd(const struct bus *bus);
/* 1 when data is buffered inside the library: call bus_receive before poll(). */
int bus_pending(const struct bus *bus);
int bus_connected(const struct bus *bus);
/* The longest a caller may stay away from bus_receive (heartbeat / 2), ms;
 * -1 when heartbeats are off. */
int bus_idle_ms(const struct bus *bus);
/* "host:port" of the broker in use (or last used). */
const char *bus_broker(const struct bus *bus);

/* Node side: declare, bind and consume <collective>.node.<identity>.
 * Agent names are [a-z0-9_]+; the identity is a certname.  Once it has
 * succeeded, bus_reconnect repeats it; a failed call is not remembered. */
int bus_serve(struct bus *bus, const char *identity, const char *const *agents, size_t nagents,
              struct choir_error *err);

/* The same for several identities at once (choird --simulate): one node
 * queue <collective>.node.<name>, bound to every identity on the directed
 * exchange; the routing key of a directed message says which identity it
 * is for. */
int bus_serve_many(struct bus *bus, const char *name, const char *const *identities,
                   size_t nidentities, const char *const *agents, size_t nagents,
                   struct choir_error *err);
/* Client side: an exclusive, auto-delete, server-named reply queue,
 * consumed; its name goes to name_out (size >= BUS_NAME_MAX + 1). */
int bus_reply_queue(struct bus *bus, char *name_out, size_t size, struct choir_error *err);
/* The reply queue's current name ("" when none): changes on reconnection. */
const char *bus_reply_queue_name(const struct bus *bus);

/* Requests carry expiration_ms as the AMQP `expiration` property (0: none);
 * PROTOCOL.md: (ttl + 10) * 1000, see bus_request_expiration_ms. */
int bus_publish_directed(struct bus *bus, const char *identity, const void *body, size_t len,
                         const char *reply_to, unsigned long expiration_ms,
                         struct choir_error *err);
int bus_publish_broadcast(struct bus *bus, const char *agent, const void *body, size_t len,
                          const char *reply_to, unsigned long expiration_ms,
                          struct choir_error *err);
/* A reply: default exchange, routing key = the requester's reply queue. */
int bus_publish_reply(struct bus *bus, const char *reply_to, const void *body, size_t len,
                      struct choir_error *err);
unsigned long bus_request_expiration_ms(unsigned ttl_seconds);
/* Run events (docs/protocol.md §11): published to <collective>_events, a
 * topic exchange, with routing key <job_id>.<identity>; nobody bound, they
 * are dropped.  bus_bind_events binds the reply queue (created if needed)
 * with a topic pattern such as "<job_id>.#"; bindings are made again on
 * every reconnection. */
int bus_publish_event(struct bus *bus, const char *key, const void *body, size_t len,
                      struct choir_error *err);
int bus_bind_events(struct bus *bus, const char *key, struct choir_error *err);

/* Waits up to timeout_ms (0: only what is already there; < 0: forever) for
 * one message: 1 with *msg filled, 0 on timeout, -1 or BUS_LOST. */
int bus_receive(struct bus *bus, struct bus_message *msg, int timeout_ms,
                struct choir_error *err);
void bus_message_clear(struct bus_message *msg);

/* Drops the connection (if any), connects again (backoff, bounded by
 * cfg.reconnect_timeout) and re-creates the exchanges, the node queue with
 * its bindings and the reply queue (with a new name), all consumed. */
int bus_reconnect(struct bus *bus, struct choir_error *err);

unsigned long bus_reconnect_count(const struct bus *bus);
unsigned long bus_dropped_count(const struct bus *bus);

#endif
