/* bus_transport.c - net/bus.c against a real RabbitMQ.
 *
 * Run by tests/e2e/bus_transport.sh, which starts a private broker
 * (tests/e2e/rabbitmq.sh) and passes it in the environment:
 *   RMQ_HOST RMQ_PORT RMQ_TLS_PORT RMQ_USER RMQ_PASS RMQ_VHOST RMQ_CA_DIR
 *   BUS_TEST_CLOSED_PORT     a loopback port nobody listens on
 *   BUS_TEST_WRONG_CA_SSLDIR alice's ssldir, but trusting another CA
 *   BUS_TEST_RESTART         a shell command that restarts the broker
 * Prints one "ok - ..." or "FAIL - ..." line per check and a final
 * "bus_transport: N passed, M failed"; exits 1 when anything failed. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "net/bus.h"

static int passed, failed;
static const char *current_case = "";

static void check(int ok, const struct choir_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void check(int ok, const struct choir_error *err, const char *fmt, ...)
{
    va_list ap;

    printf("%s - %s: ", ok ? "ok" : "FAIL", current_case);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!ok && err && err->msg[0])
        printf("       error: %s\n", err->msg);
    fflush(stdout);
    if (ok)
        passed++;
    else
        failed++;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);

    if (!v || !*v) {
        fprintf(stderr, "bus_transport: %s is not set (run me from bus_transport.sh)\n", name);
        exit(2);
    }
    return v;
}

static int contains(const char *text, const char *part)
{
    return text && strstr(text, part) != NULL;
}

/* ---- connections ------------------------------------------------------- */

static char plain_broker[64], tls_broker[64], closed_broker[64];

static void set_brokers(void)
{
    snprintf(plain_broker, sizeof(plain_broker), "%s:%s", env("RMQ_HOST"), env("RMQ_PORT"));
    snprintf(tls_broker, sizeof(tls_broker), "%s:%s", env("RMQ_HOST"), env("RMQ_TLS_PORT"));
    snprintf(closed_broker, sizeof(closed_broker), "127.0.0.1:%s", env("BUS_TEST_CLOSED_PORT"));
}

static struct bus_config plain_config(const char *const *brokers, size_t n)
{
    struct bus_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.brokers = brokers;
    cfg.nbrokers = n;
    cfg.tls = 0;
    cfg.user = env("RMQ_USER");
    cfg.password = env("RMQ_PASS");
    cfg.vhost = env("RMQ_VHOST");
    cfg.connect_timeout = 5;
    cfg.reconnect_timeout = 60;
    return cfg;
}

static char ssldir_buf[8][4096];

static const char *ssldir_of(const char *certname)
{
    static int next;
    char *buf = ssldir_buf[next++ % 8];

    snprintf(buf, sizeof(ssldir_buf[0]), "%s/%s/ssl", env("RMQ_CA_DIR"), certname);
    return buf;
}

static struct bus_config tls_config(const char *const *brokers, const char *ssldir,
                                    const char *certname, int with_password)
{
    struct bus_config cfg = plain_config(brokers, 1);

    cfg.tls = 1;
    cfg.ssldir = ssldir;
    cfg.certname = certname;
    if (!with_password) {
        cfg.user = NULL;
        cfg.password = NULL;
    }
    return cfg;
}

static struct bus *open_plain(const char *name)
{
    const char *brokers[] = {plain_broker};
    struct bus_config cfg = plain_config(brokers, 1);
    struct choir_error err = {0};
    struct bus *bus = NULL;

    cfg.connection_name = name;
    if (bus_open(&bus, &cfg, &err) != 0) {
        check(0, &err, "open a plain connection for %s", name);
        return NULL;
    }
    return bus;
}

static struct bus *open_node(const char *identity, const char *const *agents, size_t n,
                             size_t max_body)
{
    const char *brokers[] = {plain_broker};
    struct bus_config cfg = plain_config(brokers, 1);
    struct choir_error err = {0};
    struct bus *bus = NULL;

    cfg.max_body = max_body;
    cfg.connection_name = identity;
    if (bus_open(&bus, &cfg, &err) != 0 || bus_serve(bus, identity, agents, n, &err) != 0) {
        check(0, &err, "node %s serves its queue", identity);
        bus_free(bus);
        return NULL;
    }
    return bus;
}

/* Receives one message within timeout_ms; 1 got one, 0 none, < 0 error. */
static int receive(struct bus *bus, struct bus_message *msg, int timeout_ms,
                   struct choir_error *err)
{
    return bus_receive(bus, msg, timeout_ms, err);
}

/* Whether nothing arrives within timeout_ms. */
static int quiet(struct bus *bus, int timeout_ms)
{
    struct bus_message msg = {0};
    struct choir_error err = {0};
    int rc = receive(bus, &msg, timeout_ms, &err);

    if (rc == 1) {
        printf("       unexpected message: %.*s (key %s)\n", (int)msg.len, msg.body,
               msg.routing_key);
        bus_message_clear(&msg);
    }
    return rc == 0;
}

/* ---- cases --------------------------------------------------------------- */

static void test_tls(void)
{
    const char *brokers[] = {tls_broker};
    struct choir_error err = {0};
    struct bus *bus = NULL;
    struct bus_config cfg;
    char localhost[80];
    const char *by_name[] = {localhost};

    current_case = "TLS";
    cfg = tls_config(brokers, ssldir_of("alice.mcollective"), "alice.mcollective", 1);
    check(bus_open(&bus, &cfg, &err) == 0, &err, "valid client certificate, password login");
    check(bus_connected(bus) && bus_fd(bus) >= 0, NULL, "connected, with a socket to poll");
    bus_free(bus);
    bus = NULL;

    cfg = tls_config(brokers, ssldir_of("alice.mcollective"), "alice.mcollective", 0);
    check(bus_open(&bus, &cfg, &err) == 0, &err, "certificate login (SASL EXTERNAL)");
    bus_free(bus);
    bus = NULL;

    snprintf(localhost, sizeof(localhost), "localhost:%s", env("RMQ_TLS_PORT"));
    cfg = tls_config(by_name, ssldir_of("alice.mcollective"), "alice.mcollective", 1);
    check(bus_open(&bus, &cfg, &err) == 0, &err, "broker dialled by DNS name (localhost)");
    bus_free(bus);
    bus = NULL;

    current_case = "TLS refused";
    cfg = tls_config(brokers, ssldir_of("mallory.mcollective"), "mallory.mcollective", 1);
    check(bus_open(&bus, &cfg, &err) == -1 && bus == NULL, NULL,
          "a certificate from another CA is refused");
    check(contains(err.msg, tls_broker) && contains(err.msg, "TLS") &&
          contains(err.msg, "certs/mallory.mcollective.pem"), &err,
          "error names the broker, TLS and our certificate");
    printf("       (%s)\n", err.msg);
    check(err.code == CHOIR_EXIT_SERVER, &err, "class SERVER");

    cfg = tls_config(brokers, ssldir_of("alice.mcollective"), "nobody.mcollective", 1);
    check(bus_open(&bus, &cfg, &err) == -1 &&
          contains(err.msg, "certs/nobody.mcollective.pem: No such file or directory"), &err,
          "no client certificate: the missing ssldir file is named");
    printf("       (%s)\n", err.msg);

    cfg = tls_config(brokers, env("BUS_TEST_WRONG_CA_SSLDIR"), "alice.mcollective", 1);
    check(bus_open(&bus, &cfg, &err) == -1 && contains(err.msg, "failed verification against") &&
          contains(err.msg, "certs/ca.pem"), &err,
          "a broker our CA did not sign: the CA file is named");
    printf("       (%s)\n", err.msg);
}

static void test_plain(void)
{
    const char *brokers[] = {plain_broker};
    const char *failover[] = {closed_broker, plain_broker};
    const char *closed[] = {closed_broker};
    struct choir_error err = {0};
    struct bus *bus = NULL;
    struct bus_config cfg;

    current_case = "plain";
    cfg = plain_config(brokers, 1);
    check(bus_open(&bus, &cfg, &err) == 0, &err, "user and password");
    bus_free(bus);
    bus = NULL;

    cfg.password = "wrong";
    check(bus_open(&bus, &cfg, &err) == -1 && contains(err.msg, "ACCESS_REFUSED") &&
          contains(err.msg, "login as"), &err, "a wrong password: the broker's reason");
    printf("       (%s)\n", err.msg);

    cfg = plain_config(closed, 1);
    check(bus_open(&bus, &cfg, &err) == -1 && contains(err.msg, closed_broker) &&
          contains(err.msg, "Connection refused"), &err, "nobody listening: connection refused");
    printf("       (%s)\n", err.msg);

    cfg = plain_config(failover, 2);
    check(bus_open(&bus, &cfg, &err) == 0 && strcmp(bus_broker(bus), plain_broker) == 0, &err,
          "failover to the second broker");
    bus_free(bus);
}

static void test_messaging(void)
{
    const char *puppet[] = {"puppet"};
    const char *puppet_rpc[] = {"puppet", "rpcutil"};
    const char *rpcutil[] = {"rpcutil"};
    struct bus *a = open_node("a.example", puppet, 1, 0);
    struct bus *b = open_node("b.example", puppet_rpc, 2, 0);
    struct bus *c = open_node("c.example", rpcutil, 1, 0);
    struct bus *client = open_plain("client");
    struct choir_error err = {0};
    struct bus_message msg = {0};
    char queue[BUS_NAME_MAX + 1];
    int rc;

    current_case = "messaging";
    if (!a || !b || !c || !client)
        goto out;
    check(bus_reply_queue(client, queue, sizeof(queue), &err) == 0 &&
          strcmp(queue, bus_reply_queue_name(client)) == 0 && queue[0], &err,
          "a server-named reply queue (%s)", queue);

    check(bus_publish_directed(client, "a.example", "to-a", 4, queue,
                               bus_request_expiration_ms(60), &err) == 0, &err, "directed publish");
    rc = receive(a, &msg, 3000, &err);
    check(rc == 1 && msg.len == 4 && memcmp(msg.body, "to-a", 4) == 0, &err,
          "the named node receives it");
    if (rc == 1) {
        check(strcmp(msg.routing_key, "a.example") == 0 &&
              strcmp(msg.exchange, "mcollective_directed") == 0, NULL,
              "routing key = identity on mcollective_directed");
        check(msg.reply_to && strcmp(msg.reply_to, queue) == 0, NULL, "reply_to is the client's queue");
        check(bus_publish_reply(a, msg.reply_to, "reply-a", 7, &err) == 0, &err, "reply published");
        bus_message_clear(&msg);
        rc = receive(client, &msg, 3000, &err);
        check(rc == 1 && msg.len == 7 && memcmp(msg.body, "reply-a", 7) == 0 &&
              strcmp(msg.routing_key, queue) == 0 && msg.exchange[0] == '\0', &err,
              "the reply arrives on the exclusive queue");
        bus_message_clear(&msg);
    }
    check(quiet(b, 300) && quiet(c, 300), NULL, "other nodes receive nothing");

    check(bus_publish_broadcast(client, "puppet", "all", 3, queue, 70000, &err) == 0, &err,
          "broadcast publish to agent puppet");
    rc = receive(a, &msg, 3000, &err);
    check(rc == 1 && strcmp(msg.body, "all") == 0 && strcmp(msg.exchange, "mcollective_broadcast") == 0 &&
          strcmp(msg.routing_key, "puppet") == 0, &err, "node a receives it");
    bus_message_clear(&msg);
    rc = receive(b, &msg, 3000, &err);
    check(rc == 1 && strcmp(msg.body, "all") == 0, &err, "node b receives it");
    bus_message_clear(&msg);
    check(quiet(c, 300), NULL, "node c (no puppet agent) receives nothing");
    check(quiet(a, 200) && quiet(b, 200), NULL, "each node got it once");

    current_case = "names";
    check(bus_publish_directed(client, "bad name", "x", 1, NULL, 0, &err) == -1 &&
          err.code == CHOIR_EXIT_INPUT, &err, "an identity with a space is refused");
    check(bus_publish_broadcast(client, "pup.pet", "x", 1, NULL, 0, &err) == -1, &err,
          "an agent with a dot (a topic pattern) is refused");
    check(bus_publish_reply(client, "", "x", 1, &err) == -1, &err, "an empty reply-to is refused");

    current_case = "exclusive";
    {
        struct bus *twin = open_plain("twin");

        if (twin) {
            check(bus_serve(twin, "a.example", puppet, 1, &err) == -1 &&
                  contains(err.msg, "another process already serves identity 'a.example'"), &err,
                  "a second process cannot serve the same identity");
            printf("       (%s)\n", err.msg);
            check(bus_connected(twin) && bus_reply_queue(twin, NULL, 0, &err) == 0, &err,
                  "the connection stays usable after the refusal");
            bus_free(twin);
        }
    }
out:
    bus_free(a);
    bus_free(b);
    bus_free(c);
    bus_free(client);
}

static void test_expiration(void)
{
    const char *puppet[] = {"puppet"};
    struct bus *d = open_node("d.example", puppet, 1, 0);
    struct bus *client = open_plain("client-exp");
    struct choir_error err = {0};
    struct bus_message msg = {0};
    int rc;

    current_case = "expiration";
    if (!d || !client)
        goto out;
    bus_free(d);   /* the node goes away; its queue stays */
    d = NULL;
    check(bus_publish_directed(client, "d.example", "expires", 7, NULL, 300, &err) == 0, &err,
          "publish with expiration 300 ms while the node is away");
    check(bus_publish_directed(client, "d.example", "stays", 5, NULL, 60000, &err) == 0, &err,
          "publish with expiration 60 s");
    usleep(1200 * 1000);
    d = open_node("d.example", puppet, 1, 0);
    if (!d)
        goto out;
    rc = receive(d, &msg, 3000, &err);
    check(rc == 1 && strcmp(msg.body, "stays") == 0, &err,
          "the queue outlived the node; the expired request is gone");
    bus_message_clear(&msg);
    check(quiet(d, 300), NULL, "nothing else");
out:
    bus_free(d);
    bus_free(client);
}

static void test_oversized(void)
{
    const char *puppet[] = {"puppet"};
    struct bus *e = open_node("e.example", puppet, 1, 64 * 1024);
    struct bus *client = open_plain("client-big");
    struct choir_error err = {0};
    struct bus_message msg = {0};
    size_t big_len = 200 * 1024;
    char *big = malloc(big_len);
    int rc;

    current_case = "oversized";
    if (!e || !client || !big)
        goto out;
    memset(big, 'x', big_len);
    check(bus_publish_directed(client, "e.example", big, big_len, NULL, 60000, &err) == 0, &err,
          "publish 200 KiB to a node that takes 64 KiB");
    check(bus_publish_directed(client, "e.example", "small", 5, NULL, 60000, &err) == 0, &err,
          "then a small message");
    rc = receive(e, &msg, 3000, &err);
    check(rc == 1 && strcmp(msg.body, "small") == 0, &err, "only the small message arrives");
    bus_message_clear(&msg);
    check(bus_dropped_count(e) == 1, NULL, "the big one was dropped and counted (%lu)",
          bus_dropped_count(e));
    check(bus_connected(e), NULL, "the connection is fine");
    check(bus_publish_directed(e, "e.example", big, big_len, NULL, 0, &err) == -1 &&
          err.code == CHOIR_EXIT_INPUT, &err, "publishing more than max_body is refused");
out:
    free(big);
    bus_free(e);
    bus_free(client);
}

static void test_heartbeat(void)
{
    const char *brokers[] = {plain_broker};
    struct bus_config cfg = plain_config(brokers, 1);
    struct choir_error err = {0};
    struct bus *bus = NULL;
    struct bus_message msg = {0};
    char queue[BUS_NAME_MAX + 1];

    current_case = "heartbeat";
    cfg.heartbeat = 1;
    if (bus_open(&bus, &cfg, &err) != 0 || bus_reply_queue(bus, queue, sizeof(queue), &err)) {
        check(0, &err, "open with a 1 s heartbeat");
        bus_free(bus);
        return;
    }
    check(bus_idle_ms(bus) == 500, NULL, "idle limit is half the heartbeat");
    check(bus_receive(bus, &msg, 4000, &err) == 0 && bus_connected(bus), &err,
          "4 s idle inside bus_receive: still connected");
    check(bus_publish_reply(bus, queue, "self", 4, &err) == 0 &&
          bus_receive(bus, &msg, 3000, &err) == 1 && strcmp(msg.body, "self") == 0, &err,
          "and messages still flow");
    bus_message_clear(&msg);
    /* The other side of the contract: staying away from bus_* longer than
     * two heartbeats lets the broker drop us. */
    sleep(5);
    check(bus_receive(bus, &msg, 2000, &err) == BUS_LOST && !bus_connected(bus), &err,
          "5 s away from bus_*: the broker drops the connection (bus_idle_ms matters)");
    printf("       (%s)\n", err.msg);
    check(bus_reconnect(bus, &err) == 0 && bus_publish_reply(bus, bus_reply_queue_name(bus),
                                                              "back", 4, &err) == 0 &&
          bus_receive(bus, &msg, 3000, &err) == 1 && strcmp(msg.body, "back") == 0, &err,
          "reconnected, with a working reply queue");
    bus_message_clear(&msg);
    bus_free(bus);
}

static pid_t start_command(const char *command)
{
    pid_t pid = fork();

    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Receives until the connection is lost (or limit_ms passes). */
static int wait_for_loss(struct bus *bus, int limit_ms, struct choir_error *err)
{
    struct bus_message msg = {0};

    for (int waited = 0; waited < limit_ms; waited += 500) {
        int rc = bus_receive(bus, &msg, 500, err);

        if (rc == 1)
            bus_message_clear(&msg);
        else if (rc < 0)
            return rc;
    }
    return 0;
}

static void test_restart(void)
{
    const char *puppet[] = {"puppet"};
    struct bus *node = open_node("f.example", puppet, 1, 0);
    struct bus *client = open_plain("client-restart");
    struct choir_error err = {0};
    struct bus_message msg = {0};
    char before[BUS_NAME_MAX + 1], after[BUS_NAME_MAX + 1];
    pid_t restarter;
    int rc, status = 0;
    struct timespec t0, t1;

    current_case = "broker restart";
    if (!node || !client || bus_reply_queue(client, before, sizeof(before), &err)) {
        check(0, &err, "set up");
        goto out;
    }
    restarter = start_command(env("BUS_TEST_RESTART"));
    rc = wait_for_loss(node, 60000, &err);
    check(rc == BUS_LOST && contains(err.msg, "connection lost"), &err,
          "bus_receive reports the lost connection");
    printf("       (%s)\n", err.msg);
    check(!bus_connected(node) && bus_fd(node) == -1, NULL, "bus_connected says so");
    check(bus_publish_directed(node, "f.example", "x", 1, NULL, 0, &err) == BUS_LOST, &err,
          "publishing while lost says so too");

    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = bus_reconnect(node, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    check(rc == 0 && bus_connected(node), &err, "bus_reconnect succeeds after %.1f s (backoff)",
          (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    check(bus_reconnect_count(node) == 1, NULL, "reconnect count 1");

    rc = wait_for_loss(client, 1000, &err);
    check(rc == BUS_LOST || !bus_connected(client), &err, "the client lost its connection too");
    check(bus_reconnect(client, &err) == 0, &err, "the client reconnects");
    snprintf(after, sizeof(after), "%s", bus_reply_queue_name(client));
    check(after[0] && strcmp(before, after) != 0, NULL, "with a new reply queue (%s -> %s)",
          before, after);

    check(bus_publish_directed(client, "f.example", "again", 5, after, 60000, &err) == 0 &&
          receive(node, &msg, 5000, &err) == 1 && strcmp(msg.body, "again") == 0, &err,
          "directed messages reach the node again");
    if (msg.body) {
        check(bus_publish_reply(node, msg.reply_to, "ok", 2, &err) == 0, &err, "reply sent");
        bus_message_clear(&msg);
        check(receive(client, &msg, 5000, &err) == 1 && strcmp(msg.body, "ok") == 0, &err,
              "the reply reaches the new reply queue");
        bus_message_clear(&msg);
    }
    if (waitpid(restarter, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        check(0, NULL, "the restart command failed (status %d)", status);
out:
    bus_free(node);
    bus_free(client);
}

static void test_config_errors(void)
{
    const char *bad[] = {"127.0.0.1:99999"};
    const char *brokers[] = {plain_broker};
    struct choir_error err = {0};
    struct bus *bus = NULL;
    struct bus_config cfg = plain_config(bad, 1);

    current_case = "configuration";
    check(bus_open(&bus, &cfg, &err) == -1 && err.code == CHOIR_EXIT_INPUT &&
          contains(err.msg, "invalid broker"), &err, "a bad port is an input error");
    cfg = plain_config(brokers, 1);
    cfg.user = NULL;
    check(bus_open(&bus, &cfg, &err) == -1 && err.code == CHOIR_EXIT_INPUT, &err,
          "plain TCP without a user is an input error");
    cfg = plain_config(brokers, 1);
    cfg.collective = "Bad.Collective";
    check(bus_open(&bus, &cfg, &err) == -1 && contains(err.msg, "invalid collective"), &err,
          "a collective that is not a plain name");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    set_brokers();
    test_config_errors();
    test_tls();
    test_plain();
    test_messaging();
    test_expiration();
    test_oversized();
    test_heartbeat();
    test_restart();
    printf("bus_transport: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
