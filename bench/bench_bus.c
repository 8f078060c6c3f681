/* bench_bus.c - what does the signed RPC bus cost?
 *
 * Contract: two modes; each prints figures (and ratios between them) and
 * never asserts a timing.
 *
 *   bench_bus crypto --ssldir-node DIR --certname-node N
 *                    --ssldir-caller DIR --certname-caller C [--seconds S]
 *     In one process, no broker, one thread.  Opens the node's and the
 *     caller's security contexts (net/security.h) from their Puppet
 *     ssldirs, then for S seconds (default 3) per phase:
 *     1. requests: the caller builds a `puppet status` request exactly as
 *        rpc_call does (fresh requestid each time, so the node's replay
 *        cache accepts it) and signs it (wire_pack_request); the node
 *        unpacks it (wire_unpack_request) and runs security_verify_request
 *        (chain + CRL, signature, caller rules, ttl, replay, target);
 *     2. replies: the node builds a status reply and signs it
 *        (wire_pack_reply); the console unpacks it (wire_unpack_reply) and
 *        runs security_verify_reply.
 *     3. the OpenSSL calls a verification makes (security.c: PEM parse of
 *        the pubcert, X509_verify_cert with the node's CA and CRL,
 *        EVP_DigestVerify) and security_sign, each timed alone, to show
 *        where a verification goes (this is why bench_bus links OpenSSL).
 *     Each step is timed with the thread's CPU clock ("per core" rates)
 *     and CLOCK_MONOTONIC (wall, shown beside).  Every verification must
 *     return SECURITY_OK: anything else is a setup error (exit 1).
 *
 *   bench_bus rtt --node N [--count N] [--warmup W] [--config FILE]
 *                 [--broker HOST:PORT] [--vhost V] [--ssldir DIR]
 *                 [--certname C] [--timeout S]
 *     The console side of `choir status NODE`: loads the choir
 *     configuration the standard way (system file, user file, --config or
 *     $CHOIR_CONFIG, CHOIR_* variables such as CHOIR_BUS_BROKERS,
 *     CHOIR_PUPPET_SSLDIR), lets the flags override it, connects one
 *     rpc_client and sends W (default 20) untimed and then N (default
 *     1000) timed sequential rpc_call `puppet status` calls directed to
 *     NODE.  Reports min, median, p90, p99, max and mean round trip in ms
 *     (nearest rank, CLOCK_MONOTONIC around rpc_call) and the console's CPU
 *     time per call.  A call without a reply (or with statuscode != 0)
 *     is counted as failed and left out of the figures; any failure exits 1
 *     after printing.
 *
 * Exit: 0 ok, 1 setup/verification/call failure, 2 usage. */
#include <getopt.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/error.h"
#include "core/xalloc.h"
#include "net/bus.h"
#include "net/netconf.h"
#include "net/rpc.h"
#include "net/security.h"
#include "net/wire.h"

#define AGENT "puppet"
#define ACTION "status"

/* A reply body shaped like the puppet agent's status reply. */
static const char reply_body[] =
    "{\"statuscode\":0,\"statusmsg\":\"OK\",\"data\":{\"applying\":false,"
    "\"daemon_present\":false,\"disable_message\":\"\",\"enabled\":true,\"idling\":false,"
    "\"lastrun\":1764000000,\"message\":\"Currently stopped; last completed run 2 minutes "
    "ago\",\"since_lastrun\":120,\"status\":\"stopped\"}}";

static const char usage_text[] =
    "usage: bench_bus crypto --ssldir-node DIR --certname-node N\n"
    "                        --ssldir-caller DIR --certname-caller C [--seconds S]\n"
    "       bench_bus rtt --node N [--count N] [--warmup W] [--config FILE]\n"
    "                     [--broker HOST:PORT] [--vhost V] [--ssldir DIR] [--certname C]\n"
    "                     [--timeout S]\n";

static int usage(const char *why)
{
    if (why)
        fprintf(stderr, "bench_bus: %s\n", why);
    fputs(usage_text, stderr);
    return 2;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static double cpu_s(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

static int fail(const struct choir_error *err)
{
    fprintf(stderr, "bench_bus: %s\n", err->msg);
    return 1;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (!*s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* ---- crypto ------------------------------------------------------------ */

struct crypto_opts {
    const char *ssldir_node, *certname_node, *ssldir_caller, *certname_caller;
    long seconds;
};

enum { STEP_BUILD, STEP_PACK, STEP_UNPACK, STEP_VERIFY, STEPS };

/* A point in time on both clocks. */
struct stamp {
    double wall, cpu;
};

static struct stamp stamp_now(void)
{
    struct stamp s = {now_s(), clock_s(CLOCK_THREAD_CPUTIME_ID)};

    return s;
}

/* Time spent in each step of one phase, summed over n rounds. */
struct phase {
    unsigned long n;
    double wall[STEPS], cpu[STEPS];
    double total_wall, total_cpu;
    size_t bytes;                       /* transport text of the last message */
};

static void phase_add(struct phase *ph, const struct stamp t[STEPS + 1], size_t bytes)
{
    for (int i = 0; i < STEPS; i++) {
        ph->wall[i] += t[i + 1].wall - t[i].wall;
        ph->cpu[i] += t[i + 1].cpu - t[i].cpu;
    }
    ph->n++;
    ph->bytes = bytes;
}

static int open_sec(struct security **sec, const char *ssldir, const char *certname,
                    const char *identity, struct choir_error *err)
{
    struct security_config cfg;

    security_config_init(&cfg);
    cfg.ssldir = ssldir;
    cfg.certname = certname;
    cfg.identity = identity;
    return security_open(sec, &cfg, err);
}

/* A `puppet status` request from the caller to node, as rpc_call builds it. */
static int build_request(struct wire_request *rq, struct security *caller, const char *node,
                         struct choir_error *err)
{
    const char *me = security_certname(caller);
    json_t *body;
    char *text;
    int rc;

    wire_request_clear(rq);
    if (wire_envelope_init(&rq->env, me, me, SECURITY_COLLECTIVE_DEFAULT, AGENT, 0, err) < 0)
        return -1;
    wire_filter_add_identity(&rq->env.filter, node);
    wire_filter_add_agent(&rq->env.filter, AGENT);
    body = json_pack("{s:s, s:s, s:s, s:o}", "agent", AGENT, "action", ACTION, "caller",
                     rq->env.callerid, "data", json_object());
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    rc = wire_request_set_body(rq, text, strlen(text), err);
    free(text);
    return rc;
}

/* One request signed by the caller, unpacked and verified by the node. */
static int request_once(struct security *caller, struct security *node, struct phase *ph,
                        struct choir_error *err)
{
    static const char *const agents[] = {AGENT};
    struct security_check check = {agents, 1, ACTION, 0, NULL};
    struct wire_signer signer = security_signer(caller);
    struct wire_headers headers = {0};
    struct wire_request rq = {0}, got = {0};
    struct wire_transport t = {0};
    struct wire_secure s = {0};
    struct stamp ts[STEPS + 1];
    char reason[SECURITY_REASON_SIZE], *out = NULL;
    enum security_verdict v;
    size_t len = 0;
    int rc = -1;

    snprintf(headers.reply_to, sizeof(headers.reply_to), "amq.gen-bench");
    snprintf(headers.sender, sizeof(headers.sender), "%s", security_certname(caller));
    ts[0] = stamp_now();
    if (build_request(&rq, caller, security_certname(node), err) < 0)
        goto out;
    ts[1] = stamp_now();
    if (wire_pack_request(&rq, &signer, &headers, &out, &len, err) < 0)
        goto out;
    ts[2] = stamp_now();
    if (wire_unpack_request(out, len, &t, &s, &got, err) < 0)
        goto out;
    ts[3] = stamp_now();
    v = security_verify_request(node, &s, &got, &check, reason, sizeof(reason));
    ts[4] = stamp_now();
    if (v != SECURITY_OK) {
        error_set(err, CHOIR_EXIT_INTERNAL, "the node refused the request: %s: %s",
                  security_verdict_name(v), reason);
        goto out;
    }
    phase_add(ph, ts, len);
    rc = 0;
out:
    free(out);
    wire_request_clear(&rq);
    wire_request_clear(&got);
    wire_secure_clear(&s);
    wire_transport_clear(&t);
    return rc;
}

/* One status reply signed by the node, unpacked and verified by the console. */
static int reply_once(struct security *node, struct security *console, struct phase *ph,
                      struct choir_error *err)
{
    struct wire_signer signer = security_signer(node);
    struct wire_headers headers = {0};
    struct wire_reply rep = {0}, got = {0};
    struct wire_transport t = {0};
    struct wire_secure s = {0};
    struct stamp ts[STEPS + 1];
    char reason[SECURITY_REASON_SIZE], *out = NULL;
    enum security_verdict v;
    size_t len = 0;
    int rc = -1;

    snprintf(headers.sender, sizeof(headers.sender), "%s", security_certname(node));
    ts[0] = stamp_now();
    if (wire_requestid_new(rep.requestid, err) < 0)
        goto out;
    snprintf(rep.senderid, sizeof(rep.senderid), "%s", security_certname(node));
    snprintf(rep.agent, sizeof(rep.agent), "%s", AGENT);
    rep.time = (long long)time(NULL);
    if (wire_reply_set_body(&rep, reply_body, strlen(reply_body), err) < 0)
        goto out;
    ts[1] = stamp_now();
    if (wire_pack_reply(&rep, &signer, &headers, &out, &len, err) < 0)
        goto out;
    ts[2] = stamp_now();
    if (wire_unpack_reply(out, len, &t, &s, &got, err) < 0)
        goto out;
    ts[3] = stamp_now();
    v = security_verify_reply(console, &s, &got, reason, sizeof(reason));
    ts[4] = stamp_now();
    if (v != SECURITY_OK) {
        error_set(err, CHOIR_EXIT_INTERNAL, "the console refused the reply: %s: %s",
                  security_verdict_name(v), reason);
        goto out;
    }
    phase_add(ph, ts, len);
    rc = 0;
out:
    free(out);
    wire_reply_clear(&rep);
    wire_reply_clear(&got);
    wire_secure_clear(&s);
    wire_transport_clear(&t);
    return rc;
}

typedef int once_fn(struct security *a, struct security *b, struct phase *ph,
                    struct choir_error *err);

/* Runs fn for `seconds` after a short warm-up. */
static int run_phase(once_fn *fn, struct security *a, struct security *b, double seconds,
                     struct phase *ph, struct choir_error *err)
{
    struct phase warm = {0};
    struct stamp t0, t1;
    double end;

    for (int i = 0; i < 20; i++)
        if (fn(a, b, &warm, err) < 0)
            return -1;
    memset(ph, 0, sizeof(*ph));
    t0 = stamp_now();
    end = t0.wall + seconds;
    do {
        if (fn(a, b, ph, err) < 0)
            return -1;
    } while (now_s() < end);
    t1 = stamp_now();
    ph->total_wall = t1.wall - t0.wall;
    ph->total_cpu = t1.cpu - t0.cpu;
    return 0;
}

static double per_s(unsigned long n, double s)
{
    return s > 0 ? (double)n / s : 0;
}

static double us_each(double s, unsigned long n)
{
    return n ? s * 1e6 / (double)n : 0;
}

static void print_step(const char *what, const struct phase *ph, int step)
{
    double total = 0;

    for (int i = 0; i < STEPS; i++)
        total += ph->cpu[i];
    printf("  %-40s %8.1f us %8.1f us %9.0f /s %5.1f %%\n", what, us_each(ph->cpu[step], ph->n),
           us_each(ph->wall[step], ph->n), per_s(ph->n, ph->cpu[step]),
           total > 0 ? 100 * ph->cpu[step] / total : 0);
}

static void print_phase_head(const char *what, const struct phase *ph)
{
    printf("%s: %lu rounds, %zu bytes on the wire each\n", what, ph->n, ph->bytes);
    printf("  %-40s %11s %11s %11s %7s\n", "step", "cpu each", "wall each", "per core",
           "share");
}

/* ---- the OpenSSL calls under security_verify_* ---------------------------- */

/* Times the OpenSSL steps a verification makes (security.c: verify_cert,
 * verify_chain, verify_signature), one at a time, against the node's CA
 * store and the caller's certificate: where does a verify go? */
struct ossl_steps {
    double pem, chain, sig, sign; /* CPU microseconds each */
};

static double ossl_loop_us(int what, X509_STORE *store, const char *pem, X509 *cert,
                           struct security *caller, const unsigned char *msg, size_t msg_len,
                           const unsigned char *sig, size_t sig_len, double seconds)
{
    double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), end = now_s() + seconds;
    unsigned long n = 0;
    int ok = 1;

    do {
        if (what == 0) {
            BIO *bio = BIO_new_mem_buf(pem, -1);
            X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

            ok &= x != NULL;
            X509_free(x);
            BIO_free(bio);
        } else if (what == 1) {
            X509_STORE_CTX *ctx = X509_STORE_CTX_new();

            ok &= ctx && X509_STORE_CTX_init(ctx, store, cert, NULL) == 1 &&
                  X509_verify_cert(ctx) == 1;
            X509_STORE_CTX_free(ctx);
        } else if (what == 2) {
            EVP_MD_CTX *md = EVP_MD_CTX_new();

            ok &= md &&
                  EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(cert)) == 1 &&
                  EVP_DigestVerify(md, sig, sig_len, msg, msg_len) == 1;
            EVP_MD_CTX_free(md);
        } else {
            struct choir_error err = {0};
            unsigned char *s = NULL;
            size_t sl = 0;

            ok &= security_sign(caller, msg, msg_len, &s, &sl, &err) == 0;
            free(s);
        }
        n++;
    } while (now_s() < end);
    if (!ok)
        return -1;
    return (clock_s(CLOCK_THREAD_CPUTIME_ID) - c0) * 1e6 / (double)n;
}

static int ossl_steps(const char *ssldir_node, struct security *caller, double seconds,
                      struct ossl_steps *out, struct choir_error *err)
{
    static const char *const files[] = {"certs/ca.pem", "crl.pem"};
    const char *pem = security_pubcert_pem(caller);
    unsigned char msg[700], *sig = NULL;
    size_t sig_len = 0;
    X509_STORE *store = X509_STORE_new();
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    char path[4096];
    int rc = -1;

    BIO_free(bio);
    memset(msg, 'x', sizeof(msg));
    for (size_t i = 0; store && i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", ssldir_node, files[i]);
        if (X509_STORE_load_file(store, path) != 1) {
            error_set(err, CHOIR_EXIT_INTERNAL, "openssl breakdown: cannot load %s", path);
            goto out;
        }
    }
    if (!store || !cert || security_sign(caller, msg, sizeof(msg), &sig, &sig_len, err) < 0)
        goto out;
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    out->pem = ossl_loop_us(0, store, pem, cert, caller, msg, sizeof(msg), sig, sig_len, seconds);
    out->chain = ossl_loop_us(1, store, pem, cert, caller, msg, sizeof(msg), sig, sig_len, seconds);
    out->sig = ossl_loop_us(2, store, pem, cert, caller, msg, sizeof(msg), sig, sig_len, seconds);
    out->sign = ossl_loop_us(3, store, pem, cert, caller, msg, sizeof(msg), sig, sig_len, seconds);
    if (out->pem < 0 || out->chain < 0 || out->sig < 0 || out->sign < 0) {
        error_set(err, CHOIR_EXIT_INTERNAL, "openssl breakdown: a step failed");
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    free(sig);
    X509_free(cert);
    X509_STORE_free(store);
    return rc;
}

static int crypto_main(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"ssldir-node", required_argument, NULL, 'n'},
        {"certname-node", required_argument, NULL, 'N'},
        {"ssldir-caller", required_argument, NULL, 'c'},
        {"certname-caller", required_argument, NULL, 'C'},
        {"seconds", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct crypto_opts o = {.seconds = 3};
    struct choir_error err = {0};
    struct security *node = NULL, *caller = NULL;
    struct phase rq, rp;
    struct ossl_steps os;
    double rq_sign, rq_verify, rp_sign, rp_verify, node_us, vrq_us, vrp_us;
    int c, rc = 1;

    while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        switch (c) {
        case 'n': o.ssldir_node = optarg; break;
        case 'N': o.certname_node = optarg; break;
        case 'c': o.ssldir_caller = optarg; break;
        case 'C': o.certname_caller = optarg; break;
        case 's':
            if (parse_long(optarg, 1, 3600, &o.seconds) < 0)
                return usage("--seconds takes 1..3600");
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return usage(NULL);
        }
    }
    if (optind != argc || !o.ssldir_node || !o.certname_node || !o.ssldir_caller ||
        !o.certname_caller)
        return usage("crypto needs --ssldir-node, --certname-node, --ssldir-caller and "
                     "--certname-caller");
    if (open_sec(&node, o.ssldir_node, o.certname_node, o.certname_node, &err) < 0 ||
        open_sec(&caller, o.ssldir_caller, o.certname_caller, NULL, &err) < 0) {
        rc = fail(&err);
        goto out;
    }
    printf("== crypto: one thread, no broker, %ld s per phase; caller %s, node %s\n",
           o.seconds, o.certname_caller, o.certname_node);
    printf("(cpu = this thread's CPU time, so \"per core\" rates; wall includes any "
           "preemption)\n\n");
    if (run_phase(request_once, caller, node, (double)o.seconds, &rq, &err) < 0 ||
        run_phase(reply_once, node, caller, (double)o.seconds, &rp, &err) < 0 ||
        ossl_steps(o.ssldir_node, caller, (double)o.seconds / 4, &os, &err) < 0) {
        rc = fail(&err);
        goto out;
    }

    print_phase_head("requests (caller -> node)", &rq);
    print_step("caller: build envelope + RPC body", &rq, STEP_BUILD);
    print_step("caller: wire_pack_request (signs)", &rq, STEP_PACK);
    print_step("node: wire_unpack_request", &rq, STEP_UNPACK);
    print_step("node: security_verify_request", &rq, STEP_VERIFY);
    rq_sign = rq.cpu[STEP_BUILD] + rq.cpu[STEP_PACK];
    rq_verify = rq.cpu[STEP_UNPACK] + rq.cpu[STEP_VERIFY];
    printf("  all four: %.0f requests signed+verified per CPU-second (%.0f /s wall over "
           "%.2f s)\n\n",
           per_s(rq.n, rq_sign + rq_verify), per_s(rq.n, rq.total_wall), rq.total_wall);

    print_phase_head("replies (node -> console)", &rp);
    print_step("node: build reply + body", &rp, STEP_BUILD);
    print_step("node: wire_pack_reply (hashes, signs)", &rp, STEP_PACK);
    print_step("console: wire_unpack_reply (checks hash)", &rp, STEP_UNPACK);
    print_step("console: security_verify_reply", &rp, STEP_VERIFY);
    rp_sign = rp.cpu[STEP_BUILD] + rp.cpu[STEP_PACK];
    rp_verify = rp.cpu[STEP_UNPACK] + rp.cpu[STEP_VERIFY];
    printf("  all four: %.0f replies signed+verified per CPU-second (%.0f /s wall over "
           "%.2f s)\n\n",
           per_s(rp.n, rp_sign + rp_verify), per_s(rp.n, rp.total_wall), rp.total_wall);

    vrq_us = us_each(rq.cpu[STEP_VERIFY], rq.n);
    vrp_us = us_each(rp.cpu[STEP_VERIFY], rp.n);
    printf("OpenSSL calls a verification makes, timed alone (cpu each):\n");
    printf("  PEM_read_bio_X509 (the pubcert)          %8.1f us\n", os.pem);
    printf("  X509_verify_cert (chain + CRL)           %8.1f us\n", os.chain);
    printf("  EVP_DigestVerify RSA-2048/SHA-256        %8.1f us\n", os.sig);
    printf("  sum                                      %8.1f us = %.2f of security_verify_request, "
           "%.2f of security_verify_reply\n",
           os.pem + os.chain + os.sig, vrq_us > 0 ? (os.pem + os.chain + os.sig) / vrq_us : 0,
           vrp_us > 0 ? (os.pem + os.chain + os.sig) / vrp_us : 0);
    printf("  the message's RSA verify alone           %8.1f us = %.2f of security_verify_request\n",
           os.sig, vrq_us > 0 ? os.sig / vrq_us : 0);
    printf("  security_sign of 700 bytes (RSA-2048)    %8.1f us = %.2f of wire_pack_request\n\n",
           os.sign,
           rq.n && rq.cpu[STEP_PACK] > 0 ? os.sign / us_each(rq.cpu[STEP_PACK], rq.n) : 0);

    node_us = us_each(rq_verify, rq.n) + us_each(rp_sign, rp.n);
    printf("summary (per core):\n");
    printf("  requests signed+verified per second: %.0f (sign %.0f /s, verify %.0f /s; "
           "a verify costs %.2f of a sign)\n",
           per_s(rq.n, rq_sign + rq_verify), per_s(rq.n, rq_sign), per_s(rq.n, rq_verify),
           rq_sign > 0 ? rq_verify / rq_sign : 0);
    printf("  replies the console can verify per second: %.0f (unpack + verify; "
           "10 000 replies = %.2f s of console CPU)\n",
           per_s(rp.n, rp_verify), rp.n ? rp_verify / (double)rp.n * 10000 : 0);
    printf("  node crypto per status request (unpack + verify request, build + sign reply): "
           "%.0f us, so %.0f requests/s\n",
           node_us, node_us > 0 ? 1e6 / node_us : 0);
    rc = 0;
out:
    security_free(node);
    security_free(caller);
    return rc;
}

/* ---- rtt --------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p of the sample at or below it. */
static double percentile(const double *sorted, size_t n, double p)
{
    double want = p * (double)n;
    size_t rank = (size_t)want;

    if ((double)rank < want)
        rank++;
    if (n == 0)
        return 0;
    return sorted[rank ? rank - 1 : 0];
}

/* One status call; returns its round trip in ms, or -1 when it failed. */
static double status_call(struct rpc_client *client, const struct rpc_call_opts *o,
                          unsigned long *lost, struct choir_error *err)
{
    struct rpc_result res = {0};
    const struct rpc_reply *r;
    double t0 = now_s(), ms;

    if (rpc_call(client, o, &res, err) < 0)
        return -2;
    ms = (now_s() - t0) * 1000;
    r = rpc_result_find(&res, o->nodes[0]);
    if (!r || r->statuscode != 0) {
        (*lost)++;
        if (r)
            fprintf(stderr, "bench_bus: %s answered statuscode %d: %s\n", o->nodes[0],
                    r->statuscode, r->statusmsg);
        ms = -1;
    }
    rpc_result_clear(&res);
    return ms;
}

static int rtt_main(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"node", required_argument, NULL, 'n'},
        {"count", required_argument, NULL, 'c'},
        {"warmup", required_argument, NULL, 'w'},
        {"config", required_argument, NULL, 'f'},
        {"broker", required_argument, NULL, 'b'},
        {"vhost", required_argument, NULL, 'v'},
        {"ssldir", required_argument, NULL, 's'},
        {"certname", required_argument, NULL, 'C'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const struct {
        int opt;
        const char *key, *flag;
    } flag_keys[] = {
        {'b', "bus.brokers", "--broker"},
        {'v', "bus.vhost", "--vhost"},
        {'s', "puppet.ssldir", "--ssldir"},
        {'C', "puppet.certname", "--certname"},
    };
    const char *flag_val[4] = {NULL};
    const char *node = NULL, *config_file = NULL;
    long count = 1000, warmup = 20, timeout = 0;
    struct choir_error err = {0};
    struct config *cfg = NULL;
    struct security *sec = NULL;
    struct bus *bus = NULL;
    struct rpc_client client;
    struct rpc_call_opts o = {.agent = AGENT, .action = ACTION, .idempotent = 1};
    struct netconf nc;
    double *ms = NULL, sum = 0, first = 0, c0, w0, cpu, wall;
    unsigned long lost = 0;
    size_t n = 0;
    int c, rc = 1;

    while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        switch (c) {
        case 'n': node = optarg; break;
        case 'c':
            if (parse_long(optarg, 1, 10000000, &count) < 0)
                return usage("--count takes 1..10000000");
            break;
        case 'w':
            if (parse_long(optarg, 0, 1000000, &warmup) < 0)
                return usage("--warmup takes 0..1000000");
            break;
        case 't':
            if (parse_long(optarg, 1, 3600, &timeout) < 0)
                return usage("--timeout takes 1..3600 seconds");
            break;
        case 'f': config_file = optarg; break;
        case 'b': case 'v': case 's': case 'C':
            for (size_t i = 0; i < sizeof(flag_keys) / sizeof(flag_keys[0]); i++)
                if (flag_keys[i].opt == c)
                    flag_val[i] = optarg;
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return usage(NULL);
        }
    }
    if (optind != argc || !node)
        return usage("rtt needs --node");

    cfg = config_new(CONFIG_CHOIR);
    if (config_load_standard(cfg, config_file, &err) < 0)
        goto failed;
    for (size_t i = 0; i < sizeof(flag_keys) / sizeof(flag_keys[0]); i++)
        if (flag_val[i] && config_set(cfg, flag_keys[i].key, flag_val[i], CONFIG_SRC_FLAG,
                                      flag_keys[i].flag, &err) < 0)
            goto failed;
    netconf_init(&nc, cfg, NULL);
    if (security_open(&sec, &nc.sec, &err) < 0 || bus_open(&bus, &nc.bus, &err) < 0 ||
        rpc_client_init(&client, bus, sec, nc.bus.collective, &err) < 0)
        goto failed;
    o.nodes = &node;
    o.nnodes = 1;
    o.ttl = config_get_int(cfg, "rpc.ttl");
    o.timeout_ms = (int)(timeout ? timeout : config_get_int(cfg, "rpc.timeout")) * 1000;

    printf("== rtt: %ld sequential `%s %s` calls to %s via %s (tls %s), %ld untimed first\n",
           count, AGENT, ACTION, node, bus_broker(bus), nc.bus.tls ? "on" : "off", warmup);
    for (long i = 0; i < warmup; i++)
        if (status_call(&client, &o, &lost, &err) == -2)
            goto failed;
    if (lost) {
        fprintf(stderr, "bench_bus: %lu of %ld warm-up calls got no good reply from %s "
                "(timeout %d ms)\n", lost, warmup, node, o.timeout_ms);
        goto out;
    }
    ms = xcalloc((size_t)count, sizeof(*ms));
    w0 = now_s();
    c0 = cpu_s();
    for (long i = 0; i < count; i++) {
        double t = status_call(&client, &o, &lost, &err);

        if (t == -2)
            goto failed;
        if (t < 0)
            continue;
        if (n == 0)
            first = t;
        ms[n++] = t;
        sum += t;
    }
    wall = now_s() - w0;
    cpu = cpu_s() - c0;
    qsort(ms, n, sizeof(*ms), cmp_double);
    printf("calls: %zu answered, %lu failed, %lu replies rejected, %lu reconnections\n", n, lost,
           client.rejected, bus_reconnect_count(bus));
    if (n) {
        printf("round trip ms: min %.3f  median %.3f  p90 %.3f  p99 %.3f  max %.3f  mean %.3f"
               "  (first timed %.3f)\n",
               ms[0], percentile(ms, n, 0.5), percentile(ms, n, 0.9), percentile(ms, n, 0.99),
               ms[n - 1], sum / (double)n, first);
        printf("sequential throughput: %.0f calls/s; console CPU %.0f us per call "
               "(%.0f %% of the round trip)\n",
               (double)(n + lost) / wall, cpu * 1e6 / (double)(n + lost),
               100 * cpu / wall);
        printf("summary: status round trip to 1 node over TLS: median %.3f ms, p99 %.3f ms\n",
               percentile(ms, n, 0.5), percentile(ms, n, 0.99));
    }
    rc = lost ? 1 : 0;
    goto out;
failed:
    rc = fail(&err);
out:
    free(ms);
    bus_free(bus);
    security_free(sec);
    config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(NULL);
    if (strcmp(argv[1], "crypto") == 0)
        return crypto_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "rtt") == 0)
        return rtt_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    return usage("the mode is crypto or rtt");
}
