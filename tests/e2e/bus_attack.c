/* bus_attack.c - negative tests of the signed RPC bus, end to end: crafted
 * requests and forged replies against a real choird over a real RabbitMQ.
 *
 * Run by tests/e2e/bus_attack.sh, which starts the broker and the nodes
 * and sets:
 *   ATTACK_BROKER       host:port of the broker's amqps listener
 *   ATTACK_VHOST        the vhost
 *   ATTACK_CA_DIR       a scripts/testca DIR: DIR/<name>/ssl is <name>'s ssldir
 *   ATTACK_COLLECTIVE   the collective the nodes serve (default mcollective)
 *   ATTACK_TARGET       the node under attack
 *   ATTACK_TARGET_PID   its choird's pid (paused while a forged reply is
 *                       planted, so that the forgery surely arrives first)
 *   ATTACK_OTHER        another node: its certificate signs forged replies
 *   ATTACK_LOCKFILE     the target's agent_disabled_lockfile
 *   ATTACK_CALLER       an operator the allow list admits (alice.mcollective)
 *   ATTACK_OUTSIDER     an operator it does not admit (bob.example.net)
 *   ATTACK_FOREIGN, ATTACK_REVOKED, ATTACK_EXPIRED  identities whose
 *                       certificate is of another CA, revoked, expired
 *   ATTACK_PLAIN_BROKER, ATTACK_USER, ATTACK_PASS   a password login on
 *                       plain AMQP, for the eavesdropper that plays the forger
 *   ATTACK_EXPECT       a file this program writes for the script:
 *                       "verdict REQUESTID VERDICT" per request the node must
 *                       log as rejected, "malformed TEXT" per message it must
 *                       log as malformed (TEXT is part of the reason), and
 *                       "rejected N", the number of rejections in all
 *
 * Contract:
 * - `bus_attack` runs every case once, prints "ok - ..." / "FAIL - ..."
 *   lines and "bus_attack: N passed, M failed", and exits 1 on failures.
 * - Every attack is the baseline request (an authentic `disable` with a
 *   message, directed to the target, signed by the caller with its own
 *   certificate) with exactly ONE thing wrong, published to the target's
 *   directed queue with a private reply queue.  The baseline is shown to
 *   work (a `status` first, a `disable` last, both statuscode 0), so each
 *   refusal is due to that one thing, and the lock file an accepted attack
 *   would write is checked to be absent after every case.
 * - Silence is proven without guessing a timeout: after each attack a valid
 *   `status` (the sentinel) follows on the same channel.  The node handles
 *   its queue in order and answers on one channel, so a reply to the attack
 *   would arrive before the sentinel's; once the sentinel's reply is in,
 *   the attack has been judged and the node still serves.
 * - `bus_attack loop SECONDS READY_FILE` is a long-lived console: rpc_call
 *   `status` of the target again and again while the script restarts the
 *   broker.  It creates READY_FILE after the first answer and passes when
 *   the bus reconnected and three calls in a row were answered after that. */
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/xalloc.h"
#include "net/bus.h"
#include "net/rpc.h"
#include "net/security.h"
#include "net/wire.h"

#define HUGE_BODY ((size_t)10 << 20)
#define REPLY_WAIT_MS 15000
#define MAX_SEEN 16

/* ---- reporting --------------------------------------------------------- */

static int passed, failed;
static FILE *expect_file;
static unsigned long expected_rejections;

static void check(int ok, const struct choir_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void check(int ok, const struct choir_error *err, const char *fmt, ...)
{
    va_list ap;

    printf("%s - ", ok ? "ok" : "FAIL");
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

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void note(const char *fmt, ...)
{
    va_list ap;

    printf("       ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static void die(const char *what, const struct choir_error *err) __attribute__((noreturn));

static void die(const char *what, const struct choir_error *err)
{
    fprintf(stderr, "bus_attack: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    exit(2);
}

/* The node must log the request `rid` as rejected with `verdict`. */
static void expect_verdict(const char *rid, const char *verdict)
{
    fprintf(expect_file, "verdict %s %s\n", rid, verdict);
    fflush(expect_file);
    expected_rejections++;
}

/* The node must log a malformed message whose reason holds `text`. */
static void expect_malformed(const char *text)
{
    fprintf(expect_file, "malformed %s\n", text);
    fflush(expect_file);
    expected_rejections++;
}

/* ---- settings ---------------------------------------------------------- */

static const char *env(const char *name)
{
    const char *v = getenv(name);

    if (!v || !*v) {
        fprintf(stderr, "bus_attack: %s is not set (run me from bus_attack.sh)\n", name);
        exit(2);
    }
    return v;
}

static const char *collective(void)
{
    const char *c = getenv("ATTACK_COLLECTIVE");

    return c && *c ? c : BUS_DEFAULT_COLLECTIVE;
}

/* The operator the allow list admits: the attacks' baseline signer. */
static const char *caller(void)
{
    return env("ATTACK_CALLER");
}

static void ssldir_of(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s/ssl", env("ATTACK_CA_DIR"), name);
}

static const char *str_or(const char *s, const char *otherwise)
{
    return s ? s : otherwise;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- identities: the security context of each certname --------------- */

struct identity {
    char name[WIRE_NAME_MAX + 1];
    struct security *sec;
};

static struct identity identities[16];
static size_t nidentities;

/* Opens name's ssldir once (the key and certificate, whatever their
 * standing with the CA: security_open does not judge its own). */
static struct security *ident(const char *name)
{
    struct security_config cfg;
    struct choir_error err = {0};
    char ssldir[4096];

    for (size_t i = 0; i < nidentities; i++)
        if (strcmp(identities[i].name, name) == 0)
            return identities[i].sec;
    if (nidentities == sizeof(identities) / sizeof(identities[0]))
        die("too many identities", NULL);
    ssldir_of(name, ssldir, sizeof(ssldir));
    security_config_init(&cfg);
    cfg.ssldir = ssldir;
    cfg.certname = name;
    cfg.collective = collective();
    snprintf(identities[nidentities].name, sizeof(identities[0].name), "%s", name);
    if (security_open(&identities[nidentities].sec, &cfg, &err) < 0)
        die(name, &err);
    return identities[nidentities++].sec;
}

static void identities_free(void)
{
    for (size_t i = 0; i < nidentities; i++)
        security_free(identities[i].sec);
    nidentities = 0;
}

/* ---- the bus ----------------------------------------------------------- */

/* A TLS connection as `certname` (SASL EXTERNAL with its certificate). */
static struct bus *open_bus(const char *certname, long reconnect_timeout)
{
    const char *brokers[] = {env("ATTACK_BROKER")};
    struct bus_config cfg;
    struct choir_error err = {0};
    struct bus *bus = NULL;
    char ssldir[4096];

    ssldir_of(certname, ssldir, sizeof(ssldir));
    memset(&cfg, 0, sizeof(cfg));
    cfg.brokers = brokers;
    cfg.nbrokers = 1;
    cfg.tls = 1;
    cfg.ssldir = ssldir;
    cfg.certname = certname;
    cfg.vhost = env("ATTACK_VHOST");
    cfg.collective = collective();
    cfg.reconnect_timeout = reconnect_timeout;
    cfg.connection_name = "bus_attack";
    if (bus_open(&bus, &cfg, &err) < 0)
        die("cannot connect to the broker", &err);
    return bus;
}

/* The attacker's connection and its private reply queue. */
static struct bus *attacker;
static char reply_queue[BUS_NAME_MAX + 1];

static void publish_request(const char *body, size_t len)
{
    struct choir_error err = {0};

    if (bus_publish_directed(attacker, env("ATTACK_TARGET"), body, len, reply_queue,
                             bus_request_expiration_ms(WIRE_TTL_DEFAULT), &err) < 0)
        die("cannot publish", &err);
}

/* ---- crafting requests ------------------------------------------------- */

/* The one thing wrong with a request. */
enum tamper {
    T_NONE,
    T_FLIP_SIG,            /* one bit of the signature flipped */
    T_EMPTY_SIG,           /* "signature": "" */
    T_NO_SIG,              /* no "signature" key */
    T_EXTRA_KEY,           /* an extra envelope key, properly signed */
    T_TRANSPORT_NOT_JSON,  /* the AMQP body is not JSON */
    T_DATA_NOT_BASE64,     /* transport "data" is not base64 */
    T_SECURE_NOT_JSON,     /* the secure document is not JSON */
    T_MESSAGE_NOT_JSON,    /* the request (secure "message") is not JSON, signed */
    T_HUGE                 /* a 10 MB transport document */
};

struct craft {
    const char *signer;      /* whose key signs and whose certificate is sent */
    const char *caller;      /* the certname in callerid; NULL: the signer */
    const char *coll;        /* the envelope's collective; NULL: the served one */
    const char *agent;       /* the envelope's and body's agent; NULL: puppet */
    const char *filter_node; /* the identity filter; NULL: the target */
    const char *action;      /* "status", "disable", "enable" */
    const char *message;     /* disable's input; NULL: none */
    long long age;           /* the envelope's time is now - age */
    const char *requestid;   /* NULL: a fresh one */
    enum tamper tamper;
};

struct crafted {
    char requestid[WIRE_REQUESTID_LEN + 1];
    char *body;
    size_t len;
};

static const char *craft_caller(const struct craft *c)
{
    return c->caller ? c->caller : c->signer;
}

static const char *craft_agent(const struct craft *c)
{
    return c->agent ? c->agent : "puppet";
}

/* The RPC body: {"agent", "action", "caller", "data"}. */
static char *rpc_body(const struct craft *c, const char *callerid)
{
    json_t *data = json_object();
    json_t *body;
    char *text;

    if (c->message)
        json_object_set_new(data, "message", json_string(c->message));
    body = json_pack("{s:s, s:s, s:s, s:o}", "agent", craft_agent(c), "action", c->action, "caller",
                     callerid, "data", data);
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

/* Adds "extra" to the envelope of request text (a JSON object). */
static char *add_envelope_key(char *text)
{
    json_t *root = json_loads(text, 0, NULL);
    char *out;

    if (!root || !json_is_object(json_object_get(root, "envelope")))
        die("cannot re-read my own request", NULL);
    json_object_set_new(json_object_get(root, "envelope"), "extra", json_string("1"));
    out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    free(text);
    return out;
}

/* The request layer's JSON text; rid gets its request id. */
static char *request_text(const struct craft *c, char rid[WIRE_REQUESTID_LEN + 1])
{
    struct wire_request rq = {0};
    struct choir_error err = {0};
    const char *caller = craft_caller(c);
    char *body, *text = NULL;
    size_t len;

    if (wire_envelope_init(&rq.env, caller, caller, c->coll ? c->coll : collective(),
                           craft_agent(c), WIRE_TTL_DEFAULT, &err) < 0)
        die("wire_envelope_init", &err);
    rq.env.time -= c->age;
    if (c->requestid)
        snprintf(rq.env.requestid, sizeof(rq.env.requestid), "%s", c->requestid);
    wire_filter_add_identity(&rq.env.filter,
                             c->filter_node ? c->filter_node : env("ATTACK_TARGET"));
    wire_filter_add_agent(&rq.env.filter, craft_agent(c));
    body = rpc_body(c, rq.env.callerid);
    if (wire_request_set_body(&rq, body, strlen(body), &err) < 0 ||
        wire_request_encode(&rq, &text, &len, &err) < 0)
        die("cannot encode a request", &err);
    free(body);
    memcpy(rid, rq.env.requestid, WIRE_REQUESTID_LEN + 1);
    wire_request_clear(&rq);
    if (c->tamper == T_EXTRA_KEY)
        text = add_envelope_key(text);
    if (c->tamper == T_MESSAGE_NOT_JSON) {
        free(text);
        text = xstrdup("this is not JSON {");
    }
    return text;
}

/* The secure request layer: message signed by the signer. */
static char *secure_text(const struct craft *c, const char *message)
{
    struct security *sec = ident(c->signer);
    struct choir_error err = {0};
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    char *sig64, *out;
    json_t *doc;

    if (c->tamper == T_SECURE_NOT_JSON)
        return xstrdup("{\"protocol\":\"choria:secure:request:1\", this is not JSON");
    if (security_sign(sec, message, strlen(message), &sig, &sig_len, &err) < 0)
        die("security_sign", &err);
    if (c->tamper == T_FLIP_SIG)
        sig[sig_len / 2] ^= 0x01;
    sig64 = wire_base64_encode(sig, sig_len, NULL);
    doc = json_pack("{s:s, s:s}", "protocol", WIRE_PROTO_SECURE_REQUEST, "message", message);
    if (c->tamper != T_NO_SIG)
        json_object_set_new(doc, "signature", json_string(c->tamper == T_EMPTY_SIG ? "" : sig64));
    json_object_set_new(doc, "pubcert", json_string(security_pubcert_pem(sec)));
    out = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    free(sig64);
    free(sig);
    return out;
}

/* A well-formed transport document whose data is 10 MB of base64. */
static char *huge_text(const char *sender, size_t *len)
{
    const char *head = "{\"protocol\":\"choria:transport:1\",\"data\":\"";
    char tail[1024], *out;
    size_t hlen = strlen(head), tlen;

    tlen = (size_t)snprintf(tail, sizeof(tail),
                            "\",\"headers\":{\"reply-to\":\"%s\",\"mc_sender\":\"%s\"}}",
                            reply_queue, sender);
    *len = hlen + HUGE_BODY + tlen;
    out = xmalloc(*len + 1);
    memcpy(out, head, hlen);
    memset(out + hlen, 'A', HUGE_BODY);
    memcpy(out + hlen + HUGE_BODY, tail, tlen + 1);
    return out;
}

/* The transport layer around the secure document. */
static char *transport_text(const struct craft *c, const char *secure)
{
    char *data, *out;
    json_t *doc;

    if (c->tamper == T_TRANSPORT_NOT_JSON)
        return xstrdup("choria:transport:1 {this is not JSON");
    data = c->tamper == T_DATA_NOT_BASE64 ? xstrdup("%%% this is not base64 %%%")
                                          : wire_base64_encode(secure, strlen(secure), NULL);
    doc = json_pack("{s:s, s:s, s:{s:s, s:s}}", "protocol", WIRE_PROTO_TRANSPORT, "data", data,
                    "headers", "reply-to", reply_queue, "mc_sender", craft_caller(c));
    out = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    free(data);
    return out;
}

static struct crafted craft(const struct craft *c)
{
    struct crafted m = {{0}, NULL, 0};
    char *request, *secure;

    request = request_text(c, m.requestid);
    if (c->tamper == T_HUGE) {
        m.body = huge_text(craft_caller(c), &m.len);
        free(request);
        return m;
    }
    secure = secure_text(c, request);
    m.body = transport_text(c, secure);
    m.len = strlen(m.body);
    free(secure);
    free(request);
    return m;
}

static void crafted_free(struct crafted *m)
{
    free(m->body);
    m->body = NULL;
}

/* ---- replies ----------------------------------------------------------- */

struct seen {
    char requestid[WIRE_REQUESTID_LEN + 1];
    char senderid[WIRE_NAME_MAX + 1];
    int statuscode;
    char statusmsg[256];
};

/* Decodes and verifies a reply the way the console does.  0 when it is an
 * authentic reply; -1 (and a note) otherwise. */
static int take_reply(const struct bus_message *msg, struct seen *s)
{
    struct wire_transport t = {0};
    struct wire_secure sec = {0};
    struct wire_reply rep = {0};
    struct choir_error err = {0};
    char reason[SECURITY_REASON_SIZE];
    json_t *body = NULL;
    int rc = -1;

    if (wire_unpack_reply(msg->body, msg->len, &t, &sec, &rep, &err) < 0)
        note("a reply that does not decode: %s", err.msg);
    else if (security_verify_reply(ident(caller()), &sec, &rep, reason, sizeof(reason)) !=
             SECURITY_OK)
        note("a reply that does not verify: %s", reason);
    else if (!(body = json_loadb(rep.body, rep.body_len, 0, NULL)))
        note("a reply body that is not JSON");
    else {
        memcpy(s->requestid, rep.requestid, sizeof(s->requestid));
        snprintf(s->senderid, sizeof(s->senderid), "%s", rep.senderid);
        s->statuscode = (int)json_integer_value(json_object_get(body, "statuscode"));
        snprintf(s->statusmsg, sizeof(s->statusmsg), "%s",
                 str_or(json_string_value(json_object_get(body, "statusmsg")), ""));
        rc = 0;
    }
    json_decref(body);
    wire_reply_clear(&rep);
    wire_secure_clear(&sec);
    wire_transport_clear(&t);
    return rc;
}

/* Collects replies in arrival order until the one to `until` is in (1) or
 * REPLY_WAIT_MS passed (0).  Replies that do not verify count as seen too
 * (with an empty request id). */
static int collect(const char *until, struct seen *seen, size_t *n)
{
    long long deadline = now_ms() + REPLY_WAIT_MS;

    *n = 0;
    while (now_ms() < deadline) {
        struct bus_message msg = {0};
        struct choir_error err = {0};
        struct seen s = {{0}, {0}, -1, {0}};
        int r = bus_receive(attacker, &msg, (int)(deadline - now_ms()), &err);

        if (r < 0)
            die("bus_receive", &err);
        if (r == 0)
            break;
        take_reply(&msg, &s);
        bus_message_clear(&msg);
        if (*n < MAX_SEEN)
            seen[(*n)++] = s;
        if (strcmp(s.requestid, until) == 0)
            return 1;
    }
    return 0;
}

/* ---- cases ------------------------------------------------------------- */

static int lock_absent(void)
{
    return access(env("ATTACK_LOCKFILE"), F_OK) != 0 && errno == ENOENT;
}

/* Sends the sentinel (a valid status) and collects until its reply. */
static int sentinel(struct seen *seen, size_t *n)
{
    struct craft c = {.signer = caller(), .action = "status"};
    struct crafted m = craft(&c);
    int answered;

    publish_request(m.body, m.len);
    answered = collect(m.requestid, seen, n);
    crafted_free(&m);
    return answered;
}

/* Publishes m; passes when the node does not answer it (the sentinel's
 * reply comes first) and writes no lock. */
static void expect_silence(const char *what, const struct crafted *m)
{
    struct seen seen[MAX_SEEN];
    size_t n;
    int answered;

    publish_request(m->body, m->len);
    answered = sentinel(seen, &n);
    check(answered && n == 1, NULL, "%s: no reply, and the node still answers the next request",
          what);
    if (!answered)
        note("the sentinel status request was not answered within %d ms", REPLY_WAIT_MS);
    for (size_t i = 0; i + 1 < n; i++)
        note("unexpected reply %s from %s: statuscode %d (%s)", seen[i].requestid,
             seen[i].senderid, seen[i].statuscode, seen[i].statusmsg);
    check(lock_absent(), NULL, "%s: the action did not run (no lock file)", what);
}

/* An attack the node must log with a verdict (by request id). */
static void refused(const char *what, const struct craft *c, const char *verdict)
{
    struct crafted m = craft(c);

    expect_silence(what, &m);
    expect_verdict(m.requestid, verdict);
    crafted_free(&m);
}

/* An attack the node must log as malformed, with `reason` in the log. */
static void malformed(const char *what, const struct craft *c, const char *reason)
{
    struct crafted m = craft(c);

    expect_silence(what, &m);
    expect_malformed(reason);
    crafted_free(&m);
}

/* Publishes m and waits for its reply; returns its statuscode or -1. */
static int answered(const struct crafted *m, struct seen *reply)
{
    struct seen seen[MAX_SEEN];
    size_t n;

    publish_request(m->body, m->len);
    if (!collect(m->requestid, seen, &n))
        return -1;
    *reply = seen[n - 1];
    return n == 1 ? reply->statuscode : -1;
}

static void test_baseline(void)
{
    struct craft c = {.signer = caller(), .action = "status"};
    struct crafted m = craft(&c);
    struct seen r;
    int code = answered(&m, &r);

    check(code == 0, NULL, "baseline: a crafted status request is answered (statuscode %d)", code);
    check(code >= 0 && strcmp(r.senderid, env("ATTACK_TARGET")) == 0, NULL,
          "baseline: the reply comes from the target, signed by it");
    check(lock_absent(), NULL, "baseline: the target is enabled (no lock file)");
    crafted_free(&m);
}

/* The baseline attack: an authentic disable, with one thing changed. */
static struct craft attack(enum tamper t)
{
    struct craft c = {.signer = caller(), .action = "disable", .message = "pwned by bus_attack",
                      .tamper = t};

    return c;
}

static void test_signatures(void)
{
    struct craft c = attack(T_FLIP_SIG);

    refused("bad signature (one bit flipped)", &c, "bad_signature");
    c = attack(T_EMPTY_SIG);
    malformed("unsigned (empty signature)", &c, "\"signature\" is empty");
    c = attack(T_NO_SIG);
    malformed("unsigned (no signature key)", &c, "missing key \"signature\"");
}

static void test_certificates(void)
{
    struct craft c = attack(T_NONE);

    c.signer = env("ATTACK_FOREIGN");
    refused("certificate of another CA", &c, "untrusted_certificate");
    c.signer = env("ATTACK_REVOKED");
    refused("revoked certificate", &c, "revoked");
    c.signer = env("ATTACK_EXPIRED");
    refused("expired certificate", &c, "certificate_expired");
}

static void test_callers(void)
{
    struct craft c = attack(T_NONE);

    c.caller = "carol.mcollective";
    refused("callerid is not the certificate's CN", &c, "callerid_mismatch");
    c.signer = env("ATTACK_OUTSIDER");
    c.caller = caller();
    refused("an outsider's certificate claiming an allowed callerid", &c, "callerid_mismatch");
    c.caller = NULL;
    refused("a caller not in the allow list", &c, "caller_not_allowed");
}

static void test_envelope(void)
{
    struct craft c = attack(T_NONE);

    c.age = WIRE_TTL_DEFAULT + 120;
    refused("expired ttl (time = now - ttl - 120)", &c, "expired");
    c.age = -3600;
    refused("time an hour in the future", &c, "from_the_future");
    c.age = 0;
    c.coll = "othercollective";
    refused("wrong collective", &c, "wrong_collective");
    c.coll = NULL;
    c.agent = "shell";
    refused("an agent the node does not serve", &c, "unknown_agent");
    c.agent = NULL;
    c.filter_node = env("ATTACK_OTHER");
    refused("an identity filter naming another node", &c, "not_for_this_node");
    c = attack(T_EXTRA_KEY);
    malformed("an extra envelope key, properly signed", &c, "unexpected key \"extra\"");
}

static void test_replay(void)
{
    struct craft c = {.signer = caller(), .action = "status"};
    struct crafted m = craft(&c);
    struct seen r;

    check(answered(&m, &r) == 0, NULL, "replay: the first status request is answered");
    expect_silence("replay: the same request again", &m);
    expect_verdict(m.requestid, "replayed");
    crafted_free(&m);
}

static void test_malformed_layers(void)
{
    struct craft c = attack(T_TRANSPORT_NOT_JSON);

    malformed("transport is not JSON", &c, "transport: invalid JSON");
    c = attack(T_DATA_NOT_BASE64);
    malformed("transport data is not base64", &c, "\"data\" is not valid base64");
    c = attack(T_SECURE_NOT_JSON);
    malformed("secure document is not JSON", &c, "secure request: invalid JSON");
    c = attack(T_MESSAGE_NOT_JSON);
    malformed("request message is not JSON (signed)", &c,
              "request: neither a JSON object nor base64 of one");
    c = attack(T_HUGE);
    {
        /* Past choird's body limit (1 MiB, the largest valid document) the
         * bus drops it unread: no reply, and counted as dropped, not as a
         * rejection (the script checks the count in choird's stop line). */
        struct crafted m = craft(&c);

        expect_silence("a 10 MB body", &m);
        crafted_free(&m);
        fprintf(expect_file, "dropped 1\n");
        fflush(expect_file);
    }
}

/* Authentic requests with shell metacharacters in disable's message. */
static void test_shell_metacharacters(void)
{
    static const char *const messages[] = {
        "rm -rf /; echo", "`id`", "$(id)", "a | mail x", "true && reboot", "x > /etc/passwd",
        "x < /etc/shadow",
    };

    for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
        struct craft c = {.signer = caller(), .action = "disable", .message = messages[i]};
        struct crafted m = craft(&c);
        struct seen r;
        int code = answered(&m, &r);

        check(code == RPC_INVALID_DATA, NULL,
              "shell metacharacters in disable's message %s: statuscode 4 (got %d)",
              messages[i], code);
        check(lock_absent(), NULL, "shell metacharacters %s: no lock file", messages[i]);
        crafted_free(&m);
    }
}

/* The control: the very same request, untampered, does disable. */
static void test_control(void)
{
    struct craft c = attack(T_NONE);
    struct crafted m = craft(&c);
    struct seen r;
    int code = answered(&m, &r);

    check(code == 0, NULL, "control: the untampered attack request does disable (statuscode %d)",
          code);
    check(!lock_absent(), NULL, "control: and writes the lock file");
    crafted_free(&m);
    c.action = "enable";
    c.message = NULL;
    m = craft(&c);
    code = answered(&m, &r);
    check(code == 0 && lock_absent(), NULL, "control: enable removes it again (statuscode %d)",
          code);
    crafted_free(&m);
}

static void test_still_serving(void)
{
    struct craft c = {.signer = caller(), .action = "status"};
    struct crafted m = craft(&c);
    struct seen r;

    check(answered(&m, &r) == 0, NULL, "after all attacks a valid status is still answered");
    crafted_free(&m);
}

/* ---- forged replies ---------------------------------------------------- */

/* A reply to rid claiming to come from `claimed`, signed by `signer` (NULL:
 * unsigned, a plain Choria v1 reply). */
static char *forge_reply(const char *rid, const char *claimed, const char *signer, size_t *len)
{
    static const char body[] = "{\"statuscode\":0,\"statusmsg\":\"OK\",\"data\":"
                               "{\"status\":\"forged\",\"enabled\":true,\"applying\":false}}";
    struct wire_reply rep = {0};
    struct wire_headers headers = {{0}, {0}};
    struct wire_signer s;
    struct choir_error err = {0};
    char *out = NULL;

    snprintf(rep.requestid, sizeof(rep.requestid), "%s", rid);
    snprintf(rep.senderid, sizeof(rep.senderid), "%s", claimed);
    snprintf(rep.agent, sizeof(rep.agent), "puppet");
    rep.time = (long long)time(NULL);
    snprintf(headers.sender, sizeof(headers.sender), "%s", claimed);
    if (signer)
        s = security_signer(ident(signer));
    if (wire_reply_set_body(&rep, body, strlen(body), &err) < 0 ||
        wire_pack_reply(&rep, signer ? &s : NULL, &headers, &out, len, &err) < 0)
        die("cannot forge a reply", &err);
    wire_reply_clear(&rep);
    return out;
}

/* Publishes a forged reply to our own queue, takes it back from the broker
 * and returns what the console's verification says about it. */
static enum security_verdict forged_verdict(const char *claimed, const char *signer)
{
    struct bus_message msg = {0};
    struct wire_transport t = {0};
    struct wire_secure sec = {0};
    struct wire_reply rep = {0};
    struct choir_error err = {0};
    char rid[WIRE_REQUESTID_LEN + 1], reason[SECURITY_REASON_SIZE];
    enum security_verdict v = SECURITY_MALFORMED;
    size_t len;
    char *body;

    if (wire_requestid_new(rid, &err) < 0)
        die("wire_requestid_new", &err);
    body = forge_reply(rid, claimed, signer, &len);
    if (bus_publish_reply(attacker, reply_queue, body, len, &err) < 0 ||
        bus_receive(attacker, &msg, REPLY_WAIT_MS, &err) != 1)
        die("cannot pass a forged reply through the broker", &err);
    if (wire_unpack_reply(msg.body, msg.len, &t, &sec, &rep, &err) == 0)
        v = security_verify_reply(ident(caller()), &sec, &rep, reason, sizeof(reason));
    note("%s signed by %s: %s (%s)", claimed, signer ? signer : "nobody",
         security_verdict_name(v), v == SECURITY_MALFORMED ? err.msg : reason);
    wire_reply_clear(&rep);
    wire_secure_clear(&sec);
    wire_transport_clear(&t);
    bus_message_clear(&msg);
    free(body);
    return v;
}

static void test_forged_reply_verdicts(void)
{
    const char *target = env("ATTACK_TARGET"), *other = env("ATTACK_OTHER");

    check(forged_verdict(target, other) == SECURITY_REPLY_IDENTITY_MISMATCH, NULL,
          "forged reply: senderid %s signed by %s -> reply_identity_mismatch", target, other);
    check(forged_verdict(other, other) == SECURITY_OK, NULL,
          "forged reply control: %s's own reply signed by %s -> ok", other, other);
    check(forged_verdict(target, NULL) == SECURITY_BAD_SIGNATURE, NULL,
          "forged reply: an unsigned (hash only) reply from %s -> bad_signature", target);
    check(forged_verdict(env("ATTACK_FOREIGN"), env("ATTACK_FOREIGN")) ==
              SECURITY_UNTRUSTED_CERTIFICATE,
          NULL, "forged reply: a reply signed by another CA's identity -> untrusted_certificate");
}

/* ---- the forger: an eavesdropper with a broker login ------------------- */

/* A plain AMQP connection with a private queue bound to the target's key
 * on the directed exchange: it receives a copy of every request directed
 * to the target. */
static amqp_connection_state_t tap_open(void)
{
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    char host[256], exchange[BUS_NAME_MAX + 1], *colon;
    amqp_queue_declare_ok_t *q;
    amqp_rpc_reply_t r;

    snprintf(host, sizeof(host), "%s", env("ATTACK_PLAIN_BROKER"));
    colon = strrchr(host, ':');
    if (!sock || !colon)
        die("tap: bad ATTACK_PLAIN_BROKER", NULL);
    *colon = '\0';
    if (amqp_socket_open(sock, host, atoi(colon + 1)) != AMQP_STATUS_OK)
        die("tap: cannot connect", NULL);
    r = amqp_login(conn, env("ATTACK_VHOST"), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                   env("ATTACK_USER"), env("ATTACK_PASS"));
    if (r.reply_type != AMQP_RESPONSE_NORMAL || !amqp_channel_open(conn, 1))
        die("tap: cannot log in", NULL);
    q = amqp_queue_declare(conn, 1, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
    snprintf(exchange, sizeof(exchange), "%s_directed", collective());
    if (!q || !amqp_queue_bind(conn, 1, q->queue, amqp_cstring_bytes(exchange),
                               amqp_cstring_bytes(env("ATTACK_TARGET")), amqp_empty_table) ||
        !amqp_basic_consume(conn, 1, q->queue, amqp_empty_bytes, 0, 1, 1, amqp_empty_table))
        die("tap: cannot bind a queue to the directed exchange", NULL);
    return conn;
}

/* Waits for the next request on the tap: its request id and reply-to. */
static int tap_request(amqp_connection_state_t conn, char rid[WIRE_REQUESTID_LEN + 1],
                       char reply_to[WIRE_NAME_MAX + 1])
{
    struct timeval tv = {REPLY_WAIT_MS / 1000, 0};
    amqp_envelope_t e;
    struct wire_transport t = {0};
    struct wire_secure s = {0};
    struct wire_request rq = {0};
    struct choir_error err = {0};
    amqp_rpc_reply_t r;
    int rc;

    amqp_maybe_release_buffers(conn);
    r = amqp_consume_message(conn, &e, &tv, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return -1;
    rc = wire_unpack_request(e.message.body.bytes, e.message.body.len, &t, &s, &rq, &err);
    if (rc == 0) {
        memcpy(rid, rq.env.requestid, WIRE_REQUESTID_LEN + 1);
        snprintf(reply_to, WIRE_NAME_MAX + 1, "%s", t.headers.reply_to);
    }
    wire_request_clear(&rq);
    wire_secure_clear(&s);
    wire_transport_clear(&t);
    amqp_destroy_envelope(&e);
    return rc;
}

/* The forger's process: tell the parent it listens, catch the request,
 * plant a reply from the target signed by ANOTHER node, then let the
 * (paused) target go on.  Exit status 0 when the forgery was sent. */
static int forger(int ready_fd, pid_t target_pid)
{
    amqp_connection_state_t conn = tap_open();
    char rid[WIRE_REQUESTID_LEN + 1], reply_to[WIRE_NAME_MAX + 1], *body = NULL;
    size_t len = 0;
    int rc = 1;

    if (write(ready_fd, "R", 1) != 1)
        return 1;
    if (tap_request(conn, rid, reply_to) == 0) {
        amqp_bytes_t b;

        body = forge_reply(rid, env("ATTACK_TARGET"), env("ATTACK_OTHER"), &len);
        b.bytes = body;
        b.len = len;
        rc = amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(reply_to), 0, 0,
                                NULL, b) == AMQP_STATUS_OK ? 0 : 1;
        free(body);
        usleep(300 * 1000); /* the forgery is in the queue before the real reply */
    }
    kill(target_pid, SIGCONT);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    return rc;
}

/* Forks the forger and waits until it listens: its pid, or -1. */
static pid_t spawn_forger(pid_t target_pid)
{
    int fds[2], listens;
    pid_t child;
    char c;

    if (pipe(fds) < 0 || (child = fork()) < 0)
        die("pipe/fork", NULL);
    if (child == 0) {
        close(fds[0]);
        _exit(forger(fds[1], target_pid));
    }
    close(fds[1]);
    listens = read(fds[0], &c, 1) == 1;
    close(fds[0]);
    if (listens)
        return child;
    waitpid(child, NULL, 0);
    return -1;
}

/* What rpc_call returned when the forgery came first. */
static void check_real_reply(int rc, const struct choir_error *err, const struct rpc_result *res,
                             const struct rpc_client *client)
{
    const struct rpc_reply *r = rpc_result_find(res, env("ATTACK_TARGET"));
    const char *status = r ? str_or(json_string_value(json_object_get(r->data, "status")), "?")
                           : "none";

    check(rc == 0 && r && r->statuscode == 0 && res->nreplies == 1 && res->nmissing == 0, err,
          "forged reply via rpc_call: the result holds exactly one reply, the target's");
    check(r && strcmp(status, "forged") != 0 && json_object_get(r->data, "daemon_present"), NULL,
          "forged reply via rpc_call: it is the real reply, not the forgery (status \"%s\")",
          status);
    check(client->rejected == 1, NULL,
          "forged reply via rpc_call: the client counted one rejected reply (%lu)",
          client->rejected);
}

/* rpc_call(status) of the target while a forged reply arrives first: the
 * target is paused until the forger has planted its reply. */
static void test_forged_reply_rpc_call(void)
{
    const char *target = env("ATTACK_TARGET");
    pid_t target_pid = (pid_t)atol(env("ATTACK_TARGET_PID")), forger_pid;
    struct bus *bus = open_bus(caller(), 0);
    struct rpc_client client;
    struct rpc_result res = {0};
    struct rpc_call_opts o = {.agent = "puppet", .action = "status", .nodes = &target,
                              .nnodes = 1, .timeout_ms = REPLY_WAIT_MS, .idempotent = 1};
    struct choir_error err = {0};
    int status = -1, rc = -1;

    ident(env("ATTACK_OTHER"));
    if (rpc_client_init(&client, bus, ident(caller()), collective(), &err) < 0)
        die("rpc_client_init", &err);
    forger_pid = spawn_forger(target_pid);
    check(forger_pid > 0, NULL,
          "forged reply via rpc_call: the forger listens to the target's requests");
    if (forger_pid > 0) {
        kill(target_pid, SIGSTOP);
        rc = rpc_call(&client, &o, &res, &err);
        kill(target_pid, SIGCONT);
        waitpid(forger_pid, &status, 0);
    }
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, NULL,
          "forged reply via rpc_call: the forger caught the request and planted its reply first");
    check_real_reply(rc, &err, &res, &client);
    rpc_result_clear(&res);
    bus_free(bus);
}

/* ---- the long-lived console across a broker restart -------------------- */

static int status_answered(struct rpc_client *client, const char *target)
{
    struct rpc_call_opts o = {.agent = "puppet", .action = "status", .nodes = &target,
                              .nnodes = 1, .timeout_ms = 3000, .idempotent = 1};
    struct rpc_result res = {0};
    struct choir_error err = {0};
    const struct rpc_reply *r;
    int ok;

    ok = rpc_call(client, &o, &res, &err) == 0 && (r = rpc_result_find(&res, target)) &&
         r->statuscode == 0;
    if (!ok && err.msg[0])
        note("rpc_call: %s", err.msg);
    rpc_result_clear(&res);
    return ok;
}

static int loop_main(long seconds, const char *ready_file)
{
    const char *target = env("ATTACK_TARGET");
    struct bus *bus = open_bus(caller(), 120);
    struct rpc_client client;
    struct choir_error err = {0};
    long long deadline = now_ms() + seconds * 1000;
    unsigned long calls = 0, answers = 0;
    int streak = 0, ready = 0;

    if (rpc_client_init(&client, bus, ident(caller()), collective(), &err) < 0)
        die("rpc_client_init", &err);
    while (now_ms() < deadline && streak < 3) {
        unsigned long reconnects = bus_reconnect_count(bus);
        long long started = now_ms();
        int ok = status_answered(&client, target);

        calls++;
        note("call %lu: %s in %lld ms%s", calls, ok ? "answered" : "NOT answered",
             now_ms() - started,
             bus_reconnect_count(bus) > reconnects ? ", after a reconnection" : "");
        answers += (unsigned long)ok;
        if (ok && !ready) {
            int fd = open(ready_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);

            ready = fd >= 0;
            if (fd >= 0)
                close(fd);
        }
        if (bus_reconnect_count(bus) > 0)
            streak = ok ? streak + 1 : 0;
        usleep(ok ? 200 * 1000 : 500 * 1000);
    }
    check(ready, NULL, "loop: status answered before the restart");
    check(bus_reconnect_count(bus) > 0, NULL, "loop: the console's bus reconnected (%lu times)",
          bus_reconnect_count(bus));
    check(streak >= 3, NULL,
          "loop: rpc_call answered again after the restart (%lu calls, %lu answered)", calls,
          answers);
    bus_free(bus);
    identities_free();
    printf("bus_attack: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* ---- main -------------------------------------------------------------- */

static void attacks(void)
{
    struct choir_error err = {0};

    attacker = open_bus(caller(), 0);
    if (bus_reply_queue(attacker, reply_queue, sizeof(reply_queue), &err) < 0)
        die("bus_reply_queue", &err);
    test_baseline();
    test_signatures();
    test_certificates();
    test_callers();
    test_envelope();
    test_replay();
    test_malformed_layers();
    test_shell_metacharacters();
    test_forged_reply_verdicts();
    test_forged_reply_rpc_call();
    test_control();
    test_still_serving();
    bus_free(attacker);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 4 && strcmp(argv[1], "loop") == 0)
        return loop_main(atol(argv[2]), argv[3]);
    if (argc != 1) {
        fprintf(stderr, "usage: bus_attack [loop SECONDS READY_FILE]\n");
        return 2;
    }
    expect_file = fopen(env("ATTACK_EXPECT"), "w");
    if (!expect_file)
        die("cannot write ATTACK_EXPECT", NULL);
    attacks();
    fprintf(expect_file, "rejected %lu\n", expected_rejections);
    fclose(expect_file);
    identities_free();
    printf("bus_attack: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
