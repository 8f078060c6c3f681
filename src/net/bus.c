/* bus.c - the message bus: AMQP 0-9-1 to RabbitMQ with librabbitmq.
 *
 * Contract: see bus.h.  Implementation notes:
 *
 * - One connection, one channel (BUS_CHANNEL).  Every consumer on it uses
 *   manual acks under a basic.qos prefetch window.
 * - Receiving reads frames (amqp_simple_wait_frame_noblock) instead of
 *   amqp_consume_message, because the latter allocates the announced body
 *   size before reading it: here the size is checked against max_body
 *   first and an oversized body is read frame by frame into nothing.  The
 *   library's pool memory is released after every frame, so a dropped
 *   message never costs more than one frame (frame_max) of memory.  A
 *   message half read when bus_receive times out stays in struct rx and
 *   the next call goes on with it.
 * - librabbitmq sends and checks heartbeats inside its frame wait, so a
 *   long bus_receive timeout is safe; time spent outside bus_* is not.
 * - TLS: librabbitmq's own checks are replaced by OpenSSL's: the peer is
 *   verified during the handshake (SSL_VERIFY_PEER) against certs/ca.pem
 *   and the host name or IP address we dialled, with a verify callback
 *   that keeps the first failure so that the error can say what was wrong.
 *   When the broker refuses our certificate, TLS 1.3 reports it only at
 *   the first read (during login): the OpenSSL error queue then holds the
 *   broker's alert, which is turned into words, unless the connection
 *   reset that follows the alert wiped it first; then the message says
 *   the broker hung up right after the handshake.
 * - librabbitmq does not keep the errno of a failed TCP connect; after a
 *   failure we connect once more ourselves to learn it (refused, timed out,
 *   unreachable) for the message.
 * - A broker's channel.close (a refused declare, bind or consume) is
 *   answered and the channel opened again with its consumers, so the
 *   connection stays usable; connection.close and socket errors make the
 *   connection lost. */
#include "net/bus.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/file.h"
#include "core/hostport.h"
#include "core/xalloc.h"

#define BUS_CHANNEL 1
#define FRAME_MAX 131072
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define CLOSE_TIMEOUT_S 2
#define PATH_SIZE 4096
#define HOST_MAX 255
#define AGENT_MAX 64
#define TEXT_MAX 200    /* how much of the broker's own text we quote */

struct broker {
    char host[HOST_MAX + 1];
    int port;
    char text[HOST_MAX + 10];   /* "host:port" for messages */
};

enum rx_state { RX_IDLE, RX_HEADER, RX_BODY };
enum rx_mode { RX_KEEP, RX_DROP, RX_SKIP };

/* The delivery being read. */
struct rx {
    enum rx_state state;
    enum rx_mode mode;
    uint64_t tag;
    int redelivered;
    char *exchange;
    char *routing_key;
    char *reply_to;
    char *body;
    uint64_t size, got;
};

struct tls_verify {
    int error;          /* first X509_V_ERR_* seen, 0 if none */
    int depth;
    char subject[256];
};

struct bus {
    struct broker *brokers;
    size_t nbrokers;
    size_t current;
    int tls;
    char *ssldir, *certname, *user, *password, *vhost, *collective, *conn_name;
    char ca[PATH_SIZE], cert[PATH_SIZE], key[PATH_SIZE];
    int heartbeat;
    long connect_timeout, reconnect_timeout;
    size_t max_body;
    unsigned prefetch;

    amqp_connection_state_t conn;
    char broadcast[BUS_NAME_MAX + 1];
    char directed[BUS_NAME_MAX + 1];
    char events[BUS_NAME_MAX + 1];

    int serving;
    char *identity;             /* the node queue's name part */
    char **identities;          /* every identity bound to it */
    size_t nidentities;
    char **agents;
    size_t nagents;
    char node_queue[BUS_NAME_MAX + 1];

    int replying;
    char reply_queue[BUS_NAME_MAX + 1];
    char **event_keys;          /* bindings of the reply queue to the events exchange */
    size_t nevent_keys;

    struct rx rx;
    struct tls_verify verify;
    char lost_msg[sizeof(((struct choir_error *)0)->msg)];  /* a loss not yet reported */
    int lost_pending;
    unsigned long reconnects, dropped;
    uint64_t rng;
};

/* ---- small helpers ------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint64_t rng_next(struct bus *bus)
{
    uint64_t x = bus->rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    bus->rng = x;
    return x;
}

static char *xstrdup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* Copies broker text (not NUL-terminated, maybe binary) for a message. */
static void printable(char *buf, size_t size, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t o = 0;

    for (size_t i = 0; i < len && o + 1 < size; i++)
        buf[o++] = (p[i] < 0x20 || p[i] >= 0x7f) ? '?' : (char)p[i];
    buf[o] = '\0';
}

static char *bytes_dup(amqp_bytes_t b)
{
    char *s = xmalloc(b.len + 1);

    if (b.len)
        memcpy(s, b.bytes, b.len);
    s[b.len] = '\0';
    return s;
}

static const char *broker_text(const struct bus *bus)
{
    return bus->nbrokers ? bus->brokers[bus->current].text : "(none)";
}

/* The innermost OpenSSL reason, or NULL; leaves the queue alone. */
static const char *openssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();

    return e ? ERR_reason_error_string(e) : NULL;
}

/* ---- names -------------------------------------------------------------- */

static int all_in(const char *s, const char *set)
{
    return *s && strspn(s, set) == strlen(s);
}

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789_"
#define CERTNAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

static int bad_name(const char *what, const char *name, struct choir_error *err)
{
    char shown[80];

    printable(shown, sizeof(shown), name ? name : "", name ? strlen(name) : 0);
    error_set(err, CHOIR_EXIT_INPUT, "invalid %s '%s'", what, shown);
    return -1;
}

static int check_agent(const char *agent, struct choir_error *err)
{
    if (agent && strlen(agent) <= AGENT_MAX && all_in(agent, LOWER_DIGITS))
        return 0;
    return bad_name("agent name (lowercase letters, digits and '_')", agent, err);
}

static int check_identity(const struct bus *bus, const char *identity, struct choir_error *err)
{
    size_t room = BUS_NAME_MAX - strlen(bus->collective) - strlen(".node.");

    if (identity && strlen(identity) <= room && identity[0] != '.' && identity[0] != '-' &&
        all_in(identity, CERTNAME_CHARS))
        return 0;
    return bad_name("node identity", identity, err);
}

/* A queue name from outside (reply-to): printable ASCII, no spaces. */
static int check_queue_name(const char *name, struct choir_error *err)
{
    if (name && *name && strlen(name) <= BUS_NAME_MAX) {
        const unsigned char *p = (const unsigned char *)name;

        while (*p > 0x20 && *p < 0x7f)
            p++;
        if (!*p)
            return 0;
    }
    return bad_name("reply queue name", name, err);
}

/* "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address. */
static int parse_broker(const char *text, int default_port, struct broker *b,
                        struct choir_error *err)
{
    struct hostport hp;

    if (hostport_parse(text, (unsigned)default_port, &hp) < 0)
        return bad_name("broker (expected HOST:PORT or [IPV6]:PORT)", text, err);
    memcpy(b->host, hp.host, sizeof(b->host));
    b->port = (int)hp.port;
    snprintf(b->text, sizeof(b->text), hp.ipv6 ? "[%s]:%d" : "%s:%d", b->host, b->port);
    return 0;
}

/* ---- configuration -------------------------------------------------------- */

/* Checks that an ssldir file can be read, for a clear message. */
static int check_readable(const struct bus *bus, const char *path, const char *rel,
                          struct choir_error *err)
{
    int e = file_readable(path);

    if (!e)
        return 0;
    error_set(err, CHOIR_EXIT_SERVER, "ssldir %s: %s: %s", bus->ssldir, rel, strerror(e));
    return -1;
}

static int setup_ssl_paths(struct bus *bus, struct choir_error *err)
{
    char rel[300];

    if (!bus->ssldir || !*bus->ssldir) {
        error_set(err, CHOIR_EXIT_INPUT, "bus: TLS needs an ssldir (set puppet.ssldir)");
        return -1;
    }
    if (!bus->certname || !*bus->certname || bus->certname[0] == '.' ||
        !all_in(bus->certname, CERTNAME_CHARS) || strlen(bus->certname) > HOST_MAX)
        return bad_name("certname", bus->certname, err);
    if (snprintf(bus->ca, PATH_SIZE, "%s/certs/ca.pem", bus->ssldir) >= PATH_SIZE ||
        snprintf(bus->cert, PATH_SIZE, "%s/certs/%s.pem", bus->ssldir,
                 bus->certname) >= PATH_SIZE ||
        snprintf(bus->key, PATH_SIZE, "%s/private_keys/%s.pem", bus->ssldir,
                 bus->certname) >= PATH_SIZE) {
        error_set(err, CHOIR_EXIT_INPUT, "ssldir %s: path too long", bus->ssldir);
        return -1;
    }
    if (check_readable(bus, bus->ca, "certs/ca.pem", err))
        return -1;
    snprintf(rel, sizeof(rel), "certs/%s.pem", bus->certname);
    if (check_readable(bus, bus->cert, rel, err))
        return -1;
    snprintf(rel, sizeof(rel), "private_keys/%s.pem", bus->certname);
    return check_readable(bus, bus->key, rel, err);
}

static int copy_config(struct bus *bus, const struct bus_config *cfg, struct choir_error *err)
{
    int default_port = cfg->tls ? BUS_DEFAULT_TLS_PORT : BUS_DEFAULT_PLAIN_PORT;

    bus->tls = cfg->tls != 0;
    bus->ssldir = xstrdup_or_null(cfg->ssldir);
    bus->certname = xstrdup_or_null(cfg->certname);
    bus->user = xstrdup_or_null(cfg->user);
    bus->password = xstrdup(cfg->password ? cfg->password : "");
    bus->vhost = xstrdup(cfg->vhost && *cfg->vhost ? cfg->vhost : "/");
    bus->collective = xstrdup(cfg->collective && *cfg->collective ? cfg->collective
                                                                   : BUS_DEFAULT_COLLECTIVE);
    bus->conn_name = xstrdup(cfg->connection_name ? cfg->connection_name : "choir");
    bus->heartbeat = cfg->heartbeat == 0 ? BUS_DEFAULT_HEARTBEAT :
                     cfg->heartbeat < 0 ? 0 : cfg->heartbeat;
    bus->connect_timeout = cfg->connect_timeout > 0 ? cfg->connect_timeout
                                                    : BUS_DEFAULT_CONNECT_TIMEOUT;
    bus->reconnect_timeout = cfg->reconnect_timeout > 0 ? cfg->reconnect_timeout
                                                        : BUS_DEFAULT_RECONNECT_TIMEOUT;
    bus->max_body = cfg->max_body ? cfg->max_body : BUS_DEFAULT_MAX_BODY;
    bus->prefetch = cfg->prefetch ? cfg->prefetch : BUS_DEFAULT_PREFETCH;
    if (bus->prefetch > 65535)
        bus->prefetch = 65535;
    bus->rng = (uint64_t)now_ms() * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid() ^
               (uint64_t)(uintptr_t)bus;
    if (!bus->rng)
        bus->rng = 1;

    if (!all_in(bus->collective, LOWER_DIGITS) || strlen(bus->collective) > AGENT_MAX)
        return bad_name("collective (lowercase letters, digits and '_')", bus->collective, err);
    snprintf(bus->broadcast, sizeof(bus->broadcast), "%s_broadcast", bus->collective);
    snprintf(bus->directed, sizeof(bus->directed), "%s_directed", bus->collective);
    snprintf(bus->events, sizeof(bus->events), "%s_events", bus->collective);
    if (strlen(bus->vhost) > BUS_NAME_MAX)
        return bad_name("vhost", bus->vhost, err);
    if (!cfg->brokers || cfg->nbrokers == 0) {
        error_set(err, CHOIR_EXIT_INPUT, "bus: no broker configured");
        return -1;
    }
    bus->brokers = xcalloc(cfg->nbrokers, sizeof(*bus->brokers));
    bus->nbrokers = cfg->nbrokers;
    for (size_t i = 0; i < cfg->nbrokers; i++) {
        const char *text = cfg->brokers[i] ? cfg->brokers[i] : "";

        if (parse_broker(text, default_port, &bus->brokers[i], err))
            return -1;
    }
    if (!bus->tls && (!bus->user || !*bus->user)) {
        error_set(err, CHOIR_EXIT_INPUT, "bus: plain TCP needs a user and password (or use TLS)");
        return -1;
    }
    return bus->tls ? setup_ssl_paths(bus, err) : 0;
}

/* ---- connection loss ------------------------------------------------------ */

static void rx_reset(struct rx *rx)
{
    free(rx->exchange);
    free(rx->routing_key);
    free(rx->reply_to);
    free(rx->body);
    memset(rx, 0, sizeof(*rx));
}

static void drop_connection(struct bus *bus)
{
    if (bus->conn) {
        amqp_destroy_connection(bus->conn);
        bus->conn = NULL;
    }
    rx_reset(&bus->rx);
}

/* Drops the connection and reports why: "broker H:P: <what>". */
static int lost(struct bus *bus, struct choir_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int lost(struct bus *bus, struct choir_error *err, const char *fmt, ...)
{
    char what[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    error_set(err, CHOIR_EXIT_SERVER, "broker %s: connection lost: %s", broker_text(bus), what);
    drop_connection(bus);
    return BUS_LOST;
}

/* Whether errno (saved right after a library call) says something useful
 * about a broken connection. */
static int network_errno(int e)
{
    return e == EPIPE || e == ECONNRESET || e == ECONNABORTED || e == ETIMEDOUT ||
           e == EHOSTUNREACH || e == ENETUNREACH || e == ENOTCONN || e == ECONNREFUSED;
}

/* A library status in words, with OpenSSL's reason for TLS errors or the
 * socket's errno when either says more. */
static void status_text(int status, int saved_errno, char *buf, size_t size)
{
    const char *reason = status == AMQP_STATUS_SSL_ERROR ? openssl_reason() : NULL;
    int sock = status == AMQP_STATUS_SSL_ERROR || status == AMQP_STATUS_SOCKET_ERROR ||
               status == AMQP_STATUS_CONNECTION_CLOSED;

    if (reason)
        snprintf(buf, size, "%s (%s)", amqp_error_string2(status), reason);
    else if (sock && network_errno(saved_errno))
        snprintf(buf, size, "%s (%s)", amqp_error_string2(status), strerror(saved_errno));
    else
        snprintf(buf, size, "%s", amqp_error_string2(status));
}

/* Call right after the failed library call: errno is still its. */
static int lost_status(struct bus *bus, int status, struct choir_error *err)
{
    int saved_errno = errno;
    char text[300];

    status_text(status, saved_errno, text, sizeof(text));
    return lost(bus, err, "%s", text);
}

static int not_connected(struct bus *bus, struct choir_error *err)
{
    if (bus->lost_pending) {
        bus->lost_pending = 0;
        error_set(err, CHOIR_EXIT_SERVER, "%s", bus->lost_msg);
    } else {
        error_set(err, CHOIR_EXIT_SERVER, "broker %s: not connected (call bus_reconnect)",
                  broker_text(bus));
    }
    return BUS_LOST;
}

/* ---- broker replies --------------------------------------------------------- */

static void send_close_ok(struct bus *bus, amqp_channel_t channel, amqp_method_number_t id)
{
    if (id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_ok_t ok;

        amqp_send_method(bus->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    } else {
        amqp_channel_close_ok_t ok;

        amqp_send_method(bus->conn, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    }
}

/* "403 ACCESS_REFUSED - ..." from a connection.close or channel.close. */
static void close_text(const amqp_method_t *m, char *buf, size_t size)
{
    char text[TEXT_MAX + 1];
    unsigned code = 0;
    amqp_bytes_t t = {0, NULL};

    if (m->id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *c = m->decoded;

        code = c->reply_code;
        t = c->reply_text;
    } else if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *c = m->decoded;

        code = c->reply_code;
        t = c->reply_text;
    }
    printable(text, sizeof(text), t.bytes, t.len);
    snprintf(buf, size, "%u %s", code, text);
}

static int reopen_channel(struct bus *bus, struct choir_error *err);

/* Checks the last RPC.  A refused request closes our channel: the channel
 * is opened again (with its consumers) and -1 returned; anything worse
 * loses the connection. */
static int rpc_check(struct bus *bus, const char *what, struct choir_error *err)
{
    int saved_errno = errno;
    amqp_rpc_reply_t r = amqp_get_rpc_reply(bus->conn);
    char text[TEXT_MAX + 40];

    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        close_text(&r.reply, text, sizeof(text));
        send_close_ok(bus, BUS_CHANNEL, r.reply.id);
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            struct choir_error again;

            if (reopen_channel(bus, &again) != 0) {
                error_set(err, CHOIR_EXIT_SERVER, "broker %s: %s refused: %s (and then: %s)",
                          broker_text(bus), what, text, again.msg);
                return BUS_LOST;
            }
            error_set(err, CHOIR_EXIT_SERVER, "broker %s: %s refused: %s", broker_text(bus),
                      what, text);
            return -1;
        }
        return lost(bus, err, "%s: the broker closed the connection: %s", what, text);
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        status_text(r.library_error, saved_errno, text, sizeof(text));
        return lost(bus, err, "%s: %s", what, text);
    default:
        return lost(bus, err, "%s: no reply", what);
    }
}

/* ---- topology ------------------------------------------------------------- */

static amqp_table_t empty_table(void)
{
    amqp_table_t t = {0, NULL};

    return t;
}

static int declare_exchange(struct bus *bus, const char *name, const char *type,
                            struct choir_error *err)
{
    char what[BUS_NAME_MAX + 40];

    amqp_exchange_declare(bus->conn, BUS_CHANNEL, amqp_cstring_bytes(name),
                          amqp_cstring_bytes(type), 0, 1, 0, 0, empty_table());
    snprintf(what, sizeof(what), "declare exchange '%s'", name);
    return rpc_check(bus, what, err) ? -1 : 0;
}

static int declare_exchanges(struct bus *bus, struct choir_error *err)
{
    if (declare_exchange(bus, bus->broadcast, "topic", err) ||
        declare_exchange(bus, bus->directed, "direct", err))
        return -1;
    return declare_exchange(bus, bus->events, "topic", err);
}

static int consume(struct bus *bus, const char *queue, int exclusive, struct choir_error *err)
{
    char what[BUS_NAME_MAX + 40];

    amqp_basic_consume(bus->conn, BUS_CHANNEL, amqp_cstring_bytes(queue), amqp_empty_bytes, 0,
                       0, exclusive, empty_table());
    snprintf(what, sizeof(what), "consume queue '%s'", queue);
    return rpc_check(bus, what, err);
}

static int queue_bind(struct bus *bus, const char *queue, const char *exchange, const char *key,
                struct choir_error *err)
{
    char what[3 * BUS_NAME_MAX + 40];

    amqp_queue_bind(bus->conn, BUS_CHANNEL, amqp_cstring_bytes(queue),
                    amqp_cstring_bytes(exchange), amqp_cstring_bytes(key), empty_table());
    snprintf(what, sizeof(what), "bind queue '%s' to '%s' with key '%s'", queue, exchange, key);
    return rpc_check(bus, what, err);
}

/* The node queue: declared, bound, consumed by us alone. */
static int node_setup(struct bus *bus, struct choir_error *err)
{
    amqp_table_entry_t expires;
    amqp_table_t args = {1, &expires};
    char what[BUS_NAME_MAX + 40];
    int rc;

    expires.key = amqp_cstring_bytes("x-expires");
    expires.value.kind = AMQP_FIELD_KIND_I32;
    expires.value.value.i32 = BUS_NODE_QUEUE_EXPIRES_MS;
    amqp_queue_declare(bus->conn, BUS_CHANNEL, amqp_cstring_bytes(bus->node_queue), 0, 1, 0, 0,
                       args);
    snprintf(what, sizeof(what), "declare queue '%s'", bus->node_queue);
    if ((rc = rpc_check(bus, what, err)))
        return rc;
    for (size_t i = 0; i < bus->nidentities; i++)
        if ((rc = queue_bind(bus, bus->node_queue, bus->directed, bus->identities[i], err)))
            return rc;
    for (size_t i = 0; i < bus->nagents; i++)
        if ((rc = queue_bind(bus, bus->node_queue, bus->broadcast, bus->agents[i], err)))
            return rc;
    rc = consume(bus, bus->node_queue, 1, err);
    if (rc && strstr(err->msg, "exclusive use"))
        error_prefix(err, "another process already serves identity '%s'", bus->identity);
    return rc;
}

/* A fresh server-named reply queue, consumed. */
static int reply_setup(struct bus *bus, struct choir_error *err)
{
    amqp_queue_declare_ok_t *ok;
    int rc;

    ok = amqp_queue_declare(bus->conn, BUS_CHANNEL, amqp_empty_bytes, 0, 0, 1, 1, empty_table());
    if ((rc = rpc_check(bus, "declare the reply queue", err)))
        return rc;
    if (!ok || ok->queue.len == 0 || ok->queue.len > BUS_NAME_MAX)
        return lost(bus, err, "declare the reply queue: the broker named no queue");
    memcpy(bus->reply_queue, ok->queue.bytes, ok->queue.len);
    bus->reply_queue[ok->queue.len] = '\0';
    for (size_t i = 0; i < bus->nevent_keys; i++)
        if ((rc = queue_bind(bus, bus->reply_queue, bus->events, bus->event_keys[i], err)))
            return rc;
    return consume(bus, bus->reply_queue, 1, err);
}

static int open_channel(struct bus *bus, struct choir_error *err)
{
    amqp_channel_open(bus->conn, BUS_CHANNEL);
    if (rpc_check(bus, "open channel", err))
        return -1;
    amqp_basic_qos(bus->conn, BUS_CHANNEL, 0, (uint16_t)bus->prefetch, 0);
    return rpc_check(bus, "set the prefetch window", err) ? -1 : 0;
}

/* After the broker closed our channel: open it and consume again (the
 * queues still exist: the reply queue belongs to the connection). */
static int reopen_channel(struct bus *bus, struct choir_error *err)
{
    rx_reset(&bus->rx);
    if (open_channel(bus, err))
        return BUS_LOST;
    if (bus->serving && consume(bus, bus->node_queue, 1, err))
        return BUS_LOST;
    if (bus->replying && consume(bus, bus->reply_queue, 1, err))
        return BUS_LOST;
    return 0;
}

/* Everything a fresh connection needs. */
static int topology(struct bus *bus, struct choir_error *err)
{
    if (open_channel(bus, err) || declare_exchanges(bus, err))
        return -1;
    if (bus->serving && node_setup(bus, err))
        return -1;
    if (bus->replying && reply_setup(bus, err))
        return -1;
    return 0;
}

/* ---- TLS -------------------------------------------------------------------- */

static int verify_cb(int ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct bus *bus = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;

    if (!ok && bus && !bus->verify.error) {
        X509 *cert = X509_STORE_CTX_get_current_cert(store);

        bus->verify.error = X509_STORE_CTX_get_error(store);
        bus->verify.depth = X509_STORE_CTX_get_error_depth(store);
        bus->verify.subject[0] = '\0';
        if (cert)
            X509_NAME_oneline(X509_get_subject_name(cert), bus->verify.subject,
                              sizeof(bus->verify.subject));
    }
    return ok;
}

static int no_password_cb(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)userdata;
    return 0;   /* an encrypted key fails instead of prompting */
}

static amqp_socket_t *tls_socket(struct bus *bus, const struct broker *b, struct choir_error *err)
{
    amqp_socket_t *sock = amqp_ssl_socket_new(bus->conn);
    SSL_CTX *ctx;
    X509_VERIFY_PARAM *param;
    unsigned char addr[16];
    int ip;
    char rel[300];

    if (!sock) {
        error_set(err, CHOIR_EXIT_SERVER, "broker %s: TLS: cannot set up OpenSSL: %s", b->text,
                  openssl_reason() ? openssl_reason() : "unknown error");
        return NULL;
    }
    ctx = amqp_ssl_socket_get_context(sock);
    SSL_CTX_set_app_data(ctx, bus);
    SSL_CTX_set_default_passwd_cb(ctx, no_password_cb);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (amqp_ssl_socket_set_cacert(sock, bus->ca) != AMQP_STATUS_OK) {
        error_set(err, CHOIR_EXIT_SERVER, "ssldir %s: certs/ca.pem: cannot load: %s", bus->ssldir,
                  openssl_reason() ? openssl_reason() : "not a PEM certificate");
        return NULL;
    }
    if (amqp_ssl_socket_set_key(sock, bus->cert, bus->key) != AMQP_STATUS_OK) {
        snprintf(rel, sizeof(rel), "certs/%s.pem and private_keys/%s.pem", bus->certname,
                 bus->certname);
        error_set(err, CHOIR_EXIT_SERVER, "ssldir %s: %s: cannot load: %s", bus->ssldir, rel,
                  openssl_reason() ? openssl_reason() : "not a PEM certificate and key");
        return NULL;
    }
    /* OpenSSL checks the chain and the name during the handshake. */
    amqp_ssl_socket_set_verify_peer(sock, 1);
    amqp_ssl_socket_set_verify_hostname(sock, 0);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
    param = SSL_CTX_get0_param(ctx);
    ip = inet_pton(AF_INET, b->host, addr) == 1 || inet_pton(AF_INET6, b->host, addr) == 1;
    if (!(ip ? X509_VERIFY_PARAM_set1_ip_asc(param, b->host)
             : X509_VERIFY_PARAM_set1_host(param, b->host, 0))) {
        error_set(err, CHOIR_EXIT_SERVER, "broker %s: TLS: cannot set the expected name", b->text);
        return NULL;
    }
    return sock;
}

/* What a TLS alert from the broker means for our certificate, or NULL. */
static const char *client_cert_alert(const char *reason)
{
    static const struct {
        const char *alert, *meaning;
    } alerts[] = {
        {"certificate required", "the broker requires a client certificate"},
        {"unknown ca", "the broker does not trust our certificate's CA"},
        {"bad certificate", "the broker rejected our certificate"},
        {"certificate revoked", "the broker says our certificate is revoked"},
        {"certificate expired", "the broker says our certificate has expired"},
        {"certificate unknown", "the broker rejected our certificate"},
        {"unsupported certificate", "the broker rejected our certificate"},
        {"decrypt error", "the broker rejected our certificate"},
        {"access denied", "the broker rejected our certificate"},
    };

    if (!reason)
        return NULL;
    for (size_t i = 0; i < sizeof(alerts) / sizeof(alerts[0]); i++)
        if (strstr(reason, alerts[i].alert))
            return alerts[i].meaning;
    return NULL;
}

/* The broker's certificate failed our check. */
static void describe_verify(struct bus *bus, const struct broker *b, struct choir_error *err)
{
    int e = bus->verify.error;

    if (e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH)
        error_set(err, CHOIR_EXIT_SERVER,
                  "broker %s: TLS: the broker's certificate (%s) does not name %s",
                  b->text, bus->verify.subject, b->host);
    else
        error_set(err, CHOIR_EXIT_SERVER,
                  "broker %s: TLS: the broker's certificate (%s) failed verification against "
                  "%s: %s", b->text, bus->verify.subject, bus->ca,
                  X509_verify_cert_error_string(e));
}

/* ---- connecting --------------------------------------------------------------- */

/* librabbitmq does not say why a TCP connect failed: try once ourselves. */
static void describe_tcp_failure(const struct broker *b, long timeout_s, char *buf, size_t size)
{
    struct addrinfo hints, *res = NULL;
    char port[16];
    int gai, e = 0, fd;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", b->port);
    gai = getaddrinfo(b->host, port, &hints, &res);
    if (gai != 0) {
        snprintf(buf, size, "cannot resolve %s: %s", b->host, gai_strerror(gai));
        return;
    }
    fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, res->ai_protocol);
    if (fd < 0) {
        e = errno;
    } else if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        e = errno;
        if (e == EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            socklen_t len = sizeof(e);

            e = poll(&p, 1, (int)(timeout_s * 1000)) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 ? e : ETIMEDOUT;
        }
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    if (e)
        snprintf(buf, size, "TCP connect: %s", strerror(e));
    else
        snprintf(buf, size, "TCP connect or TLS handshake failed");
}

static void describe_open_failure(struct bus *bus, const struct broker *b, int status,
                                  long timeout_s, struct choir_error *err)
{
    char text[300];
    const char *reason = openssl_reason();

    if (status == AMQP_STATUS_SOCKET_ERROR || status == AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED) {
        describe_tcp_failure(b, timeout_s, text, sizeof(text));
        error_set(err, CHOIR_EXIT_SERVER, "broker %s: %s", b->text, text);
    } else if (status == AMQP_STATUS_TIMEOUT) {
        error_set(err, CHOIR_EXIT_SERVER, "broker %s: %s timed out after %lds", b->text,
                  bus->tls ? "TCP connect or TLS handshake" : "TCP connect", timeout_s);
    } else if (bus->tls && bus->verify.error) {
        describe_verify(bus, b, err);
    } else if (bus->tls && client_cert_alert(reason)) {
        error_set(err, CHOIR_EXIT_SERVER, "broker %s: TLS: %s (%s, certs/%s.pem in ssldir %s)",
                  b->text, client_cert_alert(reason), reason, bus->certname, bus->ssldir);
    } else if (bus->tls) {
        int plain_port = reason && strstr(reason, "wrong version number");

        error_set(err, CHOIR_EXIT_SERVER, "broker %s: TLS handshake failed: %s%s%s%s", b->text,
                  amqp_error_string2(status), reason ? ": " : "", reason ? reason : "",
                  plain_port ? " (is this a plain AMQP port?)" : "");
    } else {
        status_text(status, 0, text, sizeof(text));
        error_set(err, CHOIR_EXIT_SERVER, "broker %s: %s", b->text, text);
    }
}

static void describe_login_failure(struct bus *bus, const struct broker *b, amqp_rpc_reply_t r,
                                   int saved_errno, struct choir_error *err)
{
    char who[BUS_NAME_MAX + 80];
    char text[TEXT_MAX + 40];
    const char *reason = openssl_reason();

    if (bus->user)
        snprintf(who, sizeof(who), "login as '%s' to vhost '%s'", bus->user, bus->vhost);
    else
        snprintf(who, sizeof(who), "certificate login (SASL EXTERNAL) as '%s' to vhost '%s'",
                 bus->certname, bus->vhost);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
        close_text(&r.reply, text, sizeof(text));
        send_close_ok(bus, 0, r.reply.id);
        error_set(err, CHOIR_EXIT_SERVER, "broker %s: %s refused: %s", b->text, who, text);
    } else if (r.library_error == AMQP_STATUS_BROKER_UNSUPPORTED_SASL_METHOD) {
        error_set(err, CHOIR_EXIT_SERVER, "broker %s: %s: the broker does not offer %s%s",
                  b->text, who, bus->user ? "PLAIN" : "EXTERNAL",
                  bus->user ? "" : " (enable rabbitmq_auth_mechanism_ssl, or configure a user "
                                   "and password)");
    } else if (bus->tls && client_cert_alert(reason)) {
        error_set(err, CHOIR_EXIT_SERVER, "broker %s: TLS: %s (%s, certs/%s.pem in ssldir %s)",
                  b->text, client_cert_alert(reason), reason, bus->certname, bus->ssldir);
    } else if (bus->tls && (r.library_error == AMQP_STATUS_SSL_ERROR ||
                            r.library_error == AMQP_STATUS_SOCKET_ERROR ||
                            r.library_error == AMQP_STATUS_CONNECTION_CLOSED)) {
        /* With TLS 1.3 the broker checks our certificate after the handshake;
         * its alert is often lost in the connection reset that follows. */
        error_set(err, CHOIR_EXIT_SERVER, "broker %s: TLS: the broker closed the connection "
                  "right after the handshake%s%s%s: it refused our client certificate "
                  "(certs/%s.pem in ssldir %s: signed by another CA, revoked or expired?) "
                  "or its TLS policy", b->text, reason ? " (" : "", reason ? reason : "",
                  reason ? ")" : "", bus->certname, bus->ssldir);
    } else if (r.library_error == AMQP_STATUS_TIMEOUT) {
        error_set(err, CHOIR_EXIT_SERVER, "broker %s: %s: no answer within %lds", b->text, who,
                  bus->connect_timeout);
    } else {
        int e = r.library_error;
        const char *hint =
            e == AMQP_STATUS_BAD_AMQP_DATA || e == AMQP_STATUS_INCOMPATIBLE_AMQP_VERSION
                ? " (is this an AMQP 0-9-1 broker?)"
            : !bus->tls && (e == AMQP_STATUS_SOCKET_ERROR || e == AMQP_STATUS_CONNECTION_CLOSED)
                ? " (is this a TLS port?)" : "";

        status_text(e, saved_errno, text, sizeof(text));
        error_set(err, CHOIR_EXIT_SERVER, "broker %s: %s failed: %s%s", b->text, who, text,
                  hint);
    }
}

static amqp_table_entry_t string_entry(const char *key, const char *value)
{
    amqp_table_entry_t e;

    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = amqp_cstring_bytes(value);
    return e;
}

static amqp_table_entry_t bool_entry(const char *key, int value)
{
    amqp_table_entry_t e;

    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_BOOLEAN;
    e.value.value.boolean = value;
    return e;
}

static amqp_rpc_reply_t login(struct bus *bus)
{
    amqp_table_entry_t caps[2], props[4];
    amqp_table_t table = {4, props};

    caps[0] = bool_entry("consumer_cancel_notify", 1);
    caps[1] = bool_entry("authentication_failure_close", 1);
    props[0] = string_entry("product", "choir");
#ifdef CHOIR_VERSION
    props[1] = string_entry("version", CHOIR_VERSION);
#else
    props[1] = string_entry("version", "unknown");
#endif
    props[2] = string_entry("connection_name", bus->conn_name);
    props[3].key = amqp_cstring_bytes("capabilities");
    props[3].value.kind = AMQP_FIELD_KIND_TABLE;
    props[3].value.value.table.num_entries = 2;
    props[3].value.value.table.entries = caps;
    if (bus->user)
        return amqp_login_with_properties(bus->conn, bus->vhost, 0, FRAME_MAX, bus->heartbeat,
                                          &table, AMQP_SASL_METHOD_PLAIN, bus->user,
                                          bus->password);
    return amqp_login_with_properties(bus->conn, bus->vhost, 0, FRAME_MAX, bus->heartbeat,
                                      &table, AMQP_SASL_METHOD_EXTERNAL, bus->certname);
}

/* One attempt at one broker: connect, log in, declare the topology. */
static int connect_broker(struct bus *bus, size_t which, long timeout_s,
                          struct choir_error *err)
{
    const struct broker *b = &bus->brokers[which];
    struct timeval tv = {(time_t)timeout_s, 0};
    amqp_socket_t *sock;
    amqp_rpc_reply_t r;
    int status;

    bus->current = which;
    ERR_clear_error();
    memset(&bus->verify, 0, sizeof(bus->verify));
    bus->conn = amqp_new_connection();
    if (!bus->conn) {
        error_set(err, CHOIR_EXIT_INTERNAL, "bus: out of memory");
        return -1;
    }
    sock = bus->tls ? tls_socket(bus, b, err) : amqp_tcp_socket_new(bus->conn);
    if (!sock) {
        if (!bus->tls)
            error_set(err, CHOIR_EXIT_INTERNAL, "bus: cannot create a socket");
        drop_connection(bus);
        return -1;
    }
    amqp_set_handshake_timeout(bus->conn, &tv);
    amqp_set_rpc_timeout(bus->conn, &tv);
    status = amqp_socket_open_noblock(sock, b->host, b->port, &tv);
    if (status != AMQP_STATUS_OK) {
        describe_open_failure(bus, b, status, timeout_s, err);
        drop_connection(bus);
        return -1;
    }
    r = login(bus);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        describe_login_failure(bus, b, r, errno, err);
        drop_connection(bus);
        return -1;
    }
    if (topology(bus, err)) {
        drop_connection(bus);
        return -1;
    }
    return 0;
}

/* One round over the broker list; err collects every failure. */
static int connect_round(struct bus *bus, long timeout_s, struct choir_error *err)
{
    char all[sizeof(err->msg)] = "";
    enum choir_exit code = CHOIR_EXIT_SERVER;

    for (size_t i = 0; i < bus->nbrokers; i++) {
        struct choir_error one;

        if (connect_broker(bus, i, timeout_s, &one) == 0)
            return 0;
        code = one.code;
        if (bus->nbrokers == 1) {
            *err = one;
            return -1;
        }
        if (*all)
            strncat(all, "; ", sizeof(all) - strlen(all) - 1);
        strncat(all, one.msg, sizeof(all) - strlen(all) - 1);
    }
    error_set(err, code, "no broker answered: %s", all);
    return -1;
}

/* ---- public: life cycle ------------------------------------------------------- */

static char **dup_list(const char *const *list, size_t n)
{
    char **copy = xcalloc(n ? n : 1, sizeof(*copy));

    for (size_t i = 0; i < n; i++)
        copy[i] = xstrdup(list[i]);
    return copy;
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static void serve_forget(struct bus *bus)
{
    free_list(bus->agents, bus->nagents);
    free_list(bus->identities, bus->nidentities);
    free(bus->identity);
    bus->agents = bus->identities = NULL;
    bus->identity = NULL;
    bus->nagents = bus->nidentities = 0;
}

int bus_open(struct bus **out, const struct bus_config *cfg, struct choir_error *err)
{
    struct bus *bus = xcalloc(1, sizeof(*bus));

    *out = NULL;
    if (copy_config(bus, cfg, err) || connect_round(bus, bus->connect_timeout, err)) {
        bus_free(bus);
        return -1;
    }
    *out = bus;
    return 0;
}

void bus_free(struct bus *bus)
{
    if (!bus)
        return;
    if (bus->conn) {
        struct timeval tv = {CLOSE_TIMEOUT_S, 0};

        amqp_set_rpc_timeout(bus->conn, &tv);
        amqp_connection_close(bus->conn, AMQP_REPLY_SUCCESS);
    }
    drop_connection(bus);
    serve_forget(bus);
    free_list(bus->event_keys, bus->nevent_keys);
    free(bus->brokers);
    free(bus->ssldir);
    free(bus->certname);
    free(bus->user);
    if (bus->password)
        memset(bus->password, 0, strlen(bus->password));
    free(bus->password);
    free(bus->vhost);
    free(bus->collective);
    free(bus->conn_name);
    free(bus);
}

int bus_fd(const struct bus *bus)
{
    return bus && bus->conn ? amqp_get_sockfd(bus->conn) : -1;
}

int bus_pending(const struct bus *bus)
{
    return bus && bus->conn &&
           (amqp_frames_enqueued(bus->conn) || amqp_data_in_buffer(bus->conn));
}

int bus_connected(const struct bus *bus)
{
    return bus && bus->conn != NULL;
}

int bus_idle_ms(const struct bus *bus)
{
    return bus->heartbeat > 0 ? bus->heartbeat * 500 : -1;
}

const char *bus_broker(const struct bus *bus)
{
    return broker_text(bus);
}

unsigned long bus_reconnect_count(const struct bus *bus)
{
    return bus->reconnects;
}

unsigned long bus_dropped_count(const struct bus *bus)
{
    return bus->dropped;
}

const char *bus_reply_queue_name(const struct bus *bus)
{
    return bus->replying ? bus->reply_queue : "";
}

int bus_reconnect(struct bus *bus, struct choir_error *err)
{
    int64_t deadline = now_ms() + (int64_t)bus->reconnect_timeout * 1000;
    int64_t delay = BACKOFF_FIRST_MS;

    drop_connection(bus);
    bus->lost_pending = 0;
    for (;;) {
        int64_t left = deadline - now_ms();
        long attempt_s = bus->connect_timeout;

        if (left < attempt_s * 1000)
            attempt_s = left > 1000 ? (long)(left / 1000) : 1;
        if (connect_round(bus, attempt_s, err) == 0) {
            bus->reconnects++;
            return 0;
        }
        left = deadline - now_ms();
        if (left <= 0) {
            error_prefix(err, "could not reconnect within %lds", bus->reconnect_timeout);
            return BUS_LOST;
        }
        {
            int64_t wait = delay / 2 + (int64_t)(rng_next(bus) % (uint64_t)(delay / 2 + 1));

            sleep_ms(wait < left ? wait : left);
        }
        delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
    }
}

/* ---- public: topology ------------------------------------------------------------ */

int bus_serve_many(struct bus *bus, const char *name, const char *const *identities,
                   size_t nidentities, const char *const *agents, size_t nagents,
                   struct choir_error *err)
{
    int rc;

    if (!bus->conn)
        return not_connected(bus, err);
    if (bus->serving) {
        error_set(err, CHOIR_EXIT_INTERNAL, "bus: already serving '%s'", bus->identity);
        return -1;
    }
    if (check_identity(bus, name, err))
        return -1;
    for (size_t i = 0; i < nidentities; i++)
        if (check_identity(bus, identities[i], err))
            return -1;
    for (size_t i = 0; i < nagents; i++)
        if (check_agent(agents[i], err))
            return -1;
    bus->identity = xstrdup(name);
    bus->identities = dup_list(identities, nidentities);
    bus->nidentities = nidentities;
    bus->agents = dup_list(agents, nagents);
    bus->nagents = nagents;
    snprintf(bus->node_queue, sizeof(bus->node_queue), "%s.node.%s", bus->collective, name);
    rc = node_setup(bus, err);
    if (rc == 0)
        bus->serving = 1;
    else
        serve_forget(bus);
    return rc;
}

int bus_serve(struct bus *bus, const char *identity, const char *const *agents, size_t nagents,
              struct choir_error *err)
{
    return bus_serve_many(bus, identity, &identity, 1, agents, nagents, err);
}

int bus_reply_queue(struct bus *bus, char *name_out, size_t size, struct choir_error *err)
{
    int rc;

    if (!bus->conn)
        return not_connected(bus, err);
    if (!bus->replying) {
        if ((rc = reply_setup(bus, err)))
            return rc;
        bus->replying = 1;
    }
    if (name_out && snprintf(name_out, size, "%s", bus->reply_queue) >= (int)size) {
        error_set(err, CHOIR_EXIT_INTERNAL, "bus: reply queue name buffer too small");
        return -1;
    }
    return 0;
}

/* ---- public: publishing ------------------------------------------------------------ */

unsigned long bus_request_expiration_ms(unsigned ttl_seconds)
{
    return ((unsigned long)ttl_seconds + 10) * 1000;
}

static int publish(struct bus *bus, const char *exchange, const char *key, const void *body,
                   size_t len, const char *reply_to, unsigned long expiration_ms,
                   struct choir_error *err)
{
    amqp_basic_properties_t props;
    char expiration[24];
    amqp_bytes_t content;
    int status;

    if (!bus->conn)
        return not_connected(bus, err);
    if (len > bus->max_body) {
        error_set(err, CHOIR_EXIT_INPUT, "bus: message of %zu bytes is larger than the %zu "
                  "bytes a receiver accepts", len, bus->max_body);
        return -1;
    }
    if (reply_to && check_queue_name(reply_to, err))
        return -1;
    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = 1;   /* transient */
    if (reply_to) {
        props._flags |= AMQP_BASIC_REPLY_TO_FLAG;
        props.reply_to = amqp_cstring_bytes(reply_to);
    }
    if (expiration_ms) {
        snprintf(expiration, sizeof(expiration), "%lu", expiration_ms);
        props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
        props.expiration = amqp_cstring_bytes(expiration);
    }
    content.len = len;
    content.bytes = (void *)body;
    status = amqp_basic_publish(bus->conn, BUS_CHANNEL, amqp_cstring_bytes(exchange),
                                amqp_cstring_bytes(key), 0, 0, &props, content);
    return status == AMQP_STATUS_OK ? 0 : lost_status(bus, status, err);
}

int bus_publish_directed(struct bus *bus, const char *identity, const void *body, size_t len,
                         const char *reply_to, unsigned long expiration_ms,
                         struct choir_error *err)
{
    if (check_identity(bus, identity, err))
        return -1;
    return publish(bus, bus->directed, identity, body, len, reply_to, expiration_ms, err);
}

int bus_publish_broadcast(struct bus *bus, const char *agent, const void *body, size_t len,
                          const char *reply_to, unsigned long expiration_ms,
                          struct choir_error *err)
{
    if (check_agent(agent, err))
        return -1;
    return publish(bus, bus->broadcast, agent, body, len, reply_to, expiration_ms, err);
}

int bus_publish_reply(struct bus *bus, const char *reply_to, const void *body, size_t len,
                      struct choir_error *err)
{
    if (check_queue_name(reply_to, err))
        return -1;
    return publish(bus, "", reply_to, body, len, NULL, 0, err);
}

int bus_publish_event(struct bus *bus, const char *key, const void *body, size_t len,
                      struct choir_error *err)
{
    if (check_queue_name(key, err))
        return -1;
    return publish(bus, bus->events, key, body, len, NULL, 0, err);
}

int bus_bind_events(struct bus *bus, const char *key, struct choir_error *err)
{
    int rc;

    if (check_queue_name(key, err))
        return -1;
    if ((rc = bus_reply_queue(bus, NULL, 0, err)))
        return rc;
    if ((rc = queue_bind(bus, bus->reply_queue, bus->events, key, err)))
        return rc;
    bus->event_keys = xreallocarray(bus->event_keys, bus->nevent_keys + 1,
                                    sizeof(*bus->event_keys));
    bus->event_keys[bus->nevent_keys++] = xstrdup(key);
    return 0;
}

/* ---- public: receiving ---------------------------------------------------------------- */

void bus_message_clear(struct bus_message *msg)
{
    free(msg->body);
    free(msg->reply_to);
    free(msg->routing_key);
    free(msg->exchange);
    memset(msg, 0, sizeof(*msg));
}

static int protocol_error(struct bus *bus, const char *what, struct choir_error *err)
{
    return lost(bus, err, "unexpected %s from the broker", what);
}

static void rx_begin(struct bus *bus, const amqp_method_t *m)
{
    struct rx *rx = &bus->rx;

    rx_reset(rx);
    rx->state = RX_HEADER;
    if (m->id == AMQP_BASIC_DELIVER_METHOD) {
        const amqp_basic_deliver_t *d = m->decoded;

        rx->mode = RX_KEEP;
        rx->tag = d->delivery_tag;
        rx->redelivered = d->redelivered;
        rx->exchange = bytes_dup(d->exchange);
        rx->routing_key = bytes_dup(d->routing_key);
    } else {
        rx->mode = RX_SKIP;   /* basic.return: content follows, nothing to ack */
    }
}

static void rx_header(struct bus *bus, const amqp_frame_t *f)
{
    struct rx *rx = &bus->rx;
    const amqp_basic_properties_t *p = f->payload.properties.decoded;

    rx->size = f->payload.properties.body_size;
    rx->got = 0;
    rx->state = RX_BODY;
    if (rx->mode == RX_KEEP && rx->size > (uint64_t)bus->max_body)
        rx->mode = RX_DROP;
    if (rx->mode != RX_KEEP)
        return;
    rx->body = xmalloc((size_t)rx->size + 1);
    if (p && (p->_flags & AMQP_BASIC_REPLY_TO_FLAG))
        rx->reply_to = bytes_dup(p->reply_to);
}

/* A whole delivery has arrived: hand it out (1) or drop it (0). */
static int rx_finish(struct bus *bus, struct bus_message *msg, struct choir_error *err)
{
    struct rx *rx = &bus->rx;
    enum rx_mode mode = rx->mode;
    uint64_t tag = rx->tag;
    int status = AMQP_STATUS_OK;

    if (mode == RX_SKIP) {
        rx_reset(rx);
        return 0;
    }
    if (mode == RX_DROP) {
        bus->dropped++;
        rx_reset(rx);
        status = amqp_basic_reject(bus->conn, BUS_CHANNEL, tag, 0);
        return status == AMQP_STATUS_OK ? 0 : lost_status(bus, status, err);
    }
    rx->body[rx->size] = '\0';
    msg->body = rx->body;
    msg->len = (size_t)rx->size;
    msg->reply_to = rx->reply_to;
    msg->routing_key = rx->routing_key;
    msg->exchange = rx->exchange;
    msg->redelivered = rx->redelivered;
    memset(rx, 0, sizeof(*rx));
    status = amqp_basic_ack(bus->conn, BUS_CHANNEL, tag, 0);
    if (status != AMQP_STATUS_OK) {
        /* The message is the caller's now; the loss is reported next time. */
        struct choir_error e;

        lost_status(bus, status, &e);
        memcpy(bus->lost_msg, e.msg, sizeof(bus->lost_msg));
        bus->lost_pending = 1;
    }
    return 1;
}

static int rx_body(struct bus *bus, const amqp_frame_t *f, struct bus_message *msg,
                   struct choir_error *err)
{
    struct rx *rx = &bus->rx;
    amqp_bytes_t frag = f->payload.body_fragment;

    if (frag.len > rx->size - rx->got)
        return protocol_error(bus, "message body longer than announced", err);
    if (rx->mode == RX_KEEP && frag.len)
        memcpy(rx->body + rx->got, frag.bytes, frag.len);
    rx->got += frag.len;
    return rx->got == rx->size ? rx_finish(bus, msg, err) : 0;
}

/* A method frame on our channel or on channel 0. */
static int rx_method(struct bus *bus, const amqp_frame_t *f, struct choir_error *err)
{
    const amqp_method_t *m = &f->payload.method;
    char text[TEXT_MAX + 40];

    switch (m->id) {
    case AMQP_BASIC_DELIVER_METHOD:
    case AMQP_BASIC_RETURN_METHOD:
        if (bus->rx.state != RX_IDLE)
            return protocol_error(bus, "delivery in the middle of a message", err);
        rx_begin(bus, m);
        return 0;
    case AMQP_CONNECTION_CLOSE_METHOD:
        close_text(m, text, sizeof(text));
        send_close_ok(bus, 0, m->id);
        return lost(bus, err, "the broker closed the connection: %s", text);
    case AMQP_CHANNEL_CLOSE_METHOD: {
        struct choir_error again;

        close_text(m, text, sizeof(text));
        send_close_ok(bus, f->channel, m->id);
        if (reopen_channel(bus, &again) != 0)
            return lost(bus, err, "the broker closed our channel: %s (and then: %s)", text,
                        again.msg);
        error_set(err, CHOIR_EXIT_SERVER, "broker %s: the broker closed our channel: %s",
                  broker_text(bus), text);
        return -1;
    }
    case AMQP_BASIC_CANCEL_METHOD:
        return lost(bus, err, "the broker cancelled our consumer (was the queue deleted?)");
    default:
        return 0;   /* connection.blocked/unblocked, basic.ack, ...: nothing to do */
    }
}

/* One frame: 1 message complete, 0 go on, < 0 error. */
static int rx_frame(struct bus *bus, const amqp_frame_t *f, struct bus_message *msg,
                    struct choir_error *err)
{
    if (f->channel != BUS_CHANNEL && f->channel != 0)
        return 0;
    switch (f->frame_type) {
    case AMQP_FRAME_METHOD:
        return rx_method(bus, f, err);
    case AMQP_FRAME_HEADER:
        if (bus->rx.state != RX_HEADER)
            return protocol_error(bus, "content header", err);
        rx_header(bus, f);
        return bus->rx.size == 0 ? rx_finish(bus, msg, err) : 0;
    case AMQP_FRAME_BODY:
        if (bus->rx.state != RX_BODY)
            return protocol_error(bus, "content body", err);
        return rx_body(bus, f, msg, err);
    default:
        return 0;
    }
}

int bus_receive(struct bus *bus, struct bus_message *msg, int timeout_ms,
                struct choir_error *err)
{
    int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;

    memset(msg, 0, sizeof(*msg));
    if (!bus->conn)
        return not_connected(bus, err);
    for (;;) {
        amqp_frame_t frame;
        struct timeval tv = {0, 0};
        int status, rc;

        if (timeout_ms > 0) {
            int64_t left = deadline - now_ms();

            if (left < 0)
                left = 0;
            tv.tv_sec = (time_t)(left / 1000);
            tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
        }
        ERR_clear_error();
        status = amqp_simple_wait_frame_noblock(bus->conn, &frame, timeout_ms < 0 ? NULL : &tv);
        if (status == AMQP_STATUS_TIMEOUT)
            return 0;
        if (status != AMQP_STATUS_OK)
            return lost_status(bus, status, err);
        rc = rx_frame(bus, &frame, msg, err);
        if (bus->conn)
            amqp_maybe_release_buffers_on_channel(bus->conn, frame.channel);
        if (rc != 0)
            return rc;
    }
}
