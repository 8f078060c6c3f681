/* test_security.c - net/security.c against a real throwaway Puppet CA.
 *
 * The group setup runs the project's scripts/testca into a temporary
 * directory (two nodes, an allowed client, a privileged client, a client
 * outside the allow list, a foreign-CA client, a revoked and an expired
 * one, and with --sim 3 the simulator's identity choird-sim with
 * certificates sim-00001..3 for its key, made by the simcerts tool) and
 * adds a certificate that is not valid yet with the openssl CLI.  Each
 * test signs real requests or replies with one identity's context and
 * verifies them with another's, checking the verdict, its counter and the
 * reason. */
#include "cmocka_setup.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/security.h"

#ifndef CHOIR_SOURCE_DIR
#error "CHOIR_SOURCE_DIR must name the source tree (scripts/testca)"
#endif
#ifndef CHOIR_SIMCERTS
#error "CHOIR_SIMCERTS must name the built simcerts tool"
#endif

#define NODE "node1.example.com"
#define SIM_HOST "choird-sim"
/* scripts/testca's arguments after DIR, less --sim. */
#define TESTCA_ARGS                                                                \
    "--hosts '" NODE " node2.example.com' --clients "                              \
    "'alice.mcollective admin.privileged.mcollective bob.example.com'"
#define BODY "{\"agent\":\"puppet\",\"action\":\"status\",\"caller\":\"choria=x\",\"data\":{}}"

static char dir[256];

/* The identities, opened once by the group setup. */
static struct security *node1, *node2, *alice, *admin, *bob, *mallory, *revoked, *expired,
    *future, *sim;

static const char *const served[] = {"puppet"};
static const struct security_check check_status = {served, 1, "status", 0, NULL};

/* ---- fixtures ---------------------------------------------------------------- */

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* A certificate of the test CA valid only from 2099. */
static int make_future_cert(void)
{
    return run("set -e; d='%s'; s=$d/future.mcollective/ssl; mkdir -p $s/certs $s/private_keys;"
               "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
               "-out $s/private_keys/future.mcollective.pem 2>/dev/null;"
               "openssl req -new -key $s/private_keys/future.mcollective.pem "
               "-subj /CN=future.mcollective -out $s/f.csr;"
               "openssl ca -config $d/ca/openssl.cnf -batch -notext -in $s/f.csr "
               "-startdate 20990101000000Z -enddate 21000101000000Z "
               "-out $s/certs/future.mcollective.pem 2>/dev/null;"
               "cp $d/ca/ca_crt.pem $s/certs/ca.pem; cp $d/ca/ca_crl.pem $s/crl.pem",
               dir);
}

static struct security *open_as(const char *name, const char *identity, const char *policy)
{
    struct security_config cfg;
    struct choir_error err = {0};
    struct security *sec;
    char ssldir[512];

    snprintf(ssldir, sizeof(ssldir), "%s/%s/ssl", dir, name);
    security_config_init(&cfg);
    cfg.ssldir = ssldir;
    cfg.certname = name;
    cfg.identity = identity;
    cfg.policy_file = policy;
    if (security_open(&sec, &cfg, &err) < 0) {
        fprintf(stderr, "security_open %s: %s\n", name, err.msg);
        return NULL;
    }
    return sec;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/choir-test-security-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    if (run("CHOIR_SIMCERTS='%s' %s/scripts/testca %s " TESTCA_ARGS " --sim 3", CHOIR_SIMCERTS,
            CHOIR_SOURCE_DIR, dir) != 0 ||
        make_future_cert() != 0)
        return -1;
    node1 = open_as(NODE, NODE, NULL);
    node2 = open_as("node2.example.com", "node2.example.com", NULL);
    alice = open_as("alice.mcollective", NULL, NULL);
    admin = open_as("admin.privileged.mcollective", NULL, NULL);
    bob = open_as("bob.example.com", NULL, NULL);
    mallory = open_as("mallory.mcollective", NULL, NULL);
    revoked = open_as("revoked.mcollective", NULL, NULL);
    expired = open_as("expired.mcollective", NULL, NULL);
    future = open_as("future.mcollective", NULL, NULL);
    sim = open_as(SIM_HOST, NULL, NULL);
    return node1 && node2 && alice && admin && bob && mallory && revoked && expired && future &&
                   sim
               ? 0
               : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int group_teardown(void **state)
{
    (void)state;
    security_free(node1);
    security_free(node2);
    security_free(alice);
    security_free(admin);
    security_free(bob);
    security_free(mallory);
    security_free(revoked);
    security_free(expired);
    security_free(future);
    security_free(sim);
    if (dir[0])
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------- */

/* A request from caller (the callerid certname) to the puppet agent of NODE. */
static void new_request(struct wire_request *req, const char *caller)
{
    struct choir_error err = {0};

    memset(req, 0, sizeof(*req));
    assert_int_equal(wire_envelope_init(&req->env, "console.example.com", caller, "mcollective",
                                        "puppet", 60, &err), 0);
    wire_filter_add_identity(&req->env.filter, NODE);
    wire_filter_add_agent(&req->env.filter, "puppet");
    assert_int_equal(wire_request_set_body(req, BODY, strlen(BODY), &err), 0);
}

/* req packed and signed by signer; frees req. */
static char *pack(struct security *signer, struct wire_request *req)
{
    struct wire_signer s = security_signer(signer);
    struct wire_headers h = {"amq.gen-test", "console.example.com"};
    struct choir_error err = {0};
    char *text;
    size_t len;

    assert_int_equal(wire_pack_request(req, &s, &h, &text, &len, &err), 0);
    wire_request_clear(req);
    return text;
}

/* Unpacks text, verifies it as node and checks the verdict and counter. */
static void expect_verdict(struct security *node, const char *text,
                           const struct security_check *check, enum security_verdict want,
                           const char *reason_part)
{
    unsigned long long before = security_counter(node, want);
    char reason[SECURITY_REASON_SIZE];
    struct wire_transport t;
    struct wire_secure sec;
    struct wire_request req;
    struct choir_error err = {0};
    enum security_verdict got;

    assert_int_equal(wire_unpack_request(text, strlen(text), &t, &sec, &req, &err), 0);
    got = security_verify_request(node, &sec, &req, check, reason, sizeof(reason));
    if (got != want)
        fprintf(stderr, "verdict %s (%s), expected %s\n", security_verdict_name(got), reason,
                security_verdict_name(want));
    assert_int_equal(got, want);
    assert_int_equal(security_counter(node, want), before + 1);
    if (reason_part && !strstr(reason, reason_part))
        fail_msg("reason \"%s\" lacks \"%s\"", reason, reason_part);
    assert_null(strchr(reason, '\n'));
    wire_transport_clear(&t);
    wire_secure_clear(&sec);
    wire_request_clear(&req);
}

/* A request from `as` signed by signer, verified by node1. */
static void expect_request(struct security *signer, const char *as, enum security_verdict want,
                           const char *reason_part)
{
    struct wire_request req;
    char *text;

    new_request(&req, as);
    text = pack(signer, &req);
    expect_verdict(node1, text, &check_status, want, reason_part);
    free(text);
}

/* Like expect_request with the envelope time moved by `delta` seconds. */
static void expect_time(long long delta, enum security_verdict want)
{
    struct wire_request req;
    char *text;

    new_request(&req, "alice.mcollective");
    req.env.time += delta;
    text = pack(alice, &req);
    expect_verdict(node1, text, &check_status, want, NULL);
    free(text);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- opening ----------------------------------------------------------------- */

static void expect_open_error(const char *ssldir, const char *certname, const char *want)
{
    struct security_config cfg;
    struct choir_error err = {0};
    struct security *sec = (struct security *)1;

    security_config_init(&cfg);
    cfg.ssldir = ssldir;
    cfg.certname = certname;
    assert_int_equal(security_open(&sec, &cfg, &err), -1);
    assert_null(sec);
    if (!strstr(err.msg, want))
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, want);
}

static void test_open_errors(void **state)
{
    char ssldir[300], want[1400];

    (void)state;
    snprintf(ssldir, sizeof(ssldir), "%s/nowhere/ssl", dir);
    snprintf(want, sizeof(want), "%s/certs/ca.pem: cannot read: No such file or directory", ssldir);
    expect_open_error(ssldir, "alice.mcollective", want);
    expect_open_error(ssldir, "Alice", "security: invalid certname \"Alice\"");
    expect_open_error(ssldir, "a\nb", "security: invalid certname \"a\\x0ab\"");
    /* a key that is not the certificate's */
    snprintf(ssldir, sizeof(ssldir), "%s/mix/ssl", dir);
    assert_int_equal(run("mkdir -p %s/certs %s/private_keys && cp %s/alice.mcollective/ssl/certs/* "
                         "%s/certs/ && cp %s/bob.example.com/ssl/private_keys/bob.example.com.pem "
                         "%s/private_keys/alice.mcollective.pem",
                         ssldir, ssldir, dir, ssldir, dir, ssldir), 0);
    snprintf(want, sizeof(want), "%s/private_keys/alice.mcollective.pem: does not match the "
             "certificate %s/certs/alice.mcollective.pem", ssldir, ssldir);
    expect_open_error(ssldir, "alice.mcollective", want);
    /* a certificate whose CN is another name */
    assert_int_equal(run("cp %s/bob.example.com/ssl/certs/bob.example.com.pem "
                         "%s/certs/carol.mcollective.pem", dir, ssldir), 0);
    snprintf(want, sizeof(want), "%s/certs/carol.mcollective.pem: CN is \"bob.example.com\", "
             "expected \"carol.mcollective\"", ssldir);
    expect_open_error(ssldir, "carol.mcollective", want);
    /* a file that is not PEM */
    assert_int_equal(run("echo garbage > %s/certs/dave.mcollective.pem", ssldir), 0);
    snprintf(want, sizeof(want), "%s/certs/dave.mcollective.pem: not a PEM certificate: ", ssldir);
    expect_open_error(ssldir, "dave.mcollective", want);
}

static void test_open_bad_regex(void **state)
{
    struct security_config cfg;
    struct choir_error err = {0};
    struct security *sec;
    char ssldir[512];

    (void)state;
    snprintf(ssldir, sizeof(ssldir), "%s/alice.mcollective/ssl", dir);
    security_config_init(&cfg);
    cfg.ssldir = ssldir;
    cfg.certname = "alice.mcollective";
    cfg.allow_regex = "(";
    assert_int_equal(security_open(&sec, &cfg, &err), -1);
    assert_memory_equal(err.msg, "allow regex \"(\": ", 17);
    cfg.allow_regex = NULL;
    cfg.clock_skew = -1;
    assert_int_equal(security_open(&sec, &cfg, &err), -1);
    assert_string_equal(err.msg, "security: clock skew -1 out of range 0..3600");
}

static void test_accessors(void **state)
{
    (void)state;
    assert_string_equal(security_certname(alice), "alice.mcollective");
    assert_memory_equal(security_pubcert_pem(alice), "-----BEGIN CERTIFICATE-----\n", 28);
    assert_string_equal(security_verdict_name(SECURITY_REPLY_IDENTITY_MISMATCH),
                        "reply_identity_mismatch");
    assert_string_equal(security_verdict_name(SECURITY_OK), "ok");
    assert_null(security_verdict_name(SECURITY_VERDICT_COUNT));
    assert_non_null(security_verdict_meaning(SECURITY_BAD_HASH));
}

/* ---- requests ---------------------------------------------------------------- */

static void test_sign_verify_ok(void **state)
{
    (void)state;
    expect_request(alice, "alice.mcollective", SECURITY_OK, "ok");
}

static void test_certificate_verdicts(void **state)
{
    (void)state;
    expect_request(mallory, "mallory.mcollective", SECURITY_UNTRUSTED_CERTIFICATE,
                   "does not chain to the Puppet CA");
    expect_request(revoked, "revoked.mcollective", SECURITY_REVOKED, "revoked");
    expect_request(expired, "expired.mcollective", SECURITY_CERTIFICATE_EXPIRED, "expired");
    expect_request(future, "future.mcollective", SECURITY_CERTIFICATE_NOT_YET_VALID,
                   "not valid yet");
}

static void test_bad_signature(void **state)
{
    unsigned long long before = security_counter(node1, SECURITY_BAD_SIGNATURE);
    struct wire_request req, dec;
    struct wire_transport t;
    struct wire_secure sec;
    struct choir_error err = {0};
    char *text, *p;

    (void)state;
    new_request(&req, "alice.mcollective");
    text = pack(alice, &req);
    assert_int_equal(wire_unpack_request(text, strlen(text), &t, &sec, &dec, &err), 0);
    sec.signature[10] ^= 0x01;
    assert_int_equal(security_verify_request(node1, &sec, &dec, &check_status, NULL, 0),
                     SECURITY_BAD_SIGNATURE);
    sec.signature[10] ^= 0x01;
    p = strstr(sec.message, "status"); /* the signed bytes, not the decoded copy */
    assert_non_null(p);
    p[0] = 'S';
    assert_int_equal(security_verify_request(node1, &sec, &dec, &check_status, NULL, 0),
                     SECURITY_BAD_SIGNATURE);
    assert_int_equal(security_counter(node1, SECURITY_BAD_SIGNATURE), before + 2);
    p[0] = 's';
    assert_int_equal(security_verify_request(node1, &sec, &dec, &check_status, NULL, 0),
                     SECURITY_OK);
    wire_transport_clear(&t);
    wire_secure_clear(&sec);
    wire_request_clear(&dec);
    free(text);
}

static void test_caller_rules(void **state)
{
    (void)state;
    expect_request(alice, "carol.mcollective", SECURITY_CALLERID_MISMATCH,
                   "callerid \"carol.mcollective\" is not the certificate's name "
                   "\"alice.mcollective\"");
    expect_request(bob, "bob.example.com", SECURITY_CALLER_NOT_ALLOWED,
                   "caller \"bob.example.com\" is not in the allow list");
    /* a privileged certificate may act for any callerid */
    expect_request(admin, "alice.mcollective", SECURITY_OK, NULL);
    expect_request(admin, "anyone.example.com", SECURITY_OK, NULL);
    expect_request(admin, "admin.privileged.mcollective", SECURITY_OK, NULL);
}

static void test_time_window(void **state)
{
    (void)state;
    expect_time(-200, SECURITY_EXPIRED);       /* ttl 60 + skew 60 < 200 */
    expect_time(-100, SECURITY_OK);            /* within ttl + skew */
    expect_time(300, SECURITY_FROM_THE_FUTURE);
    expect_time(30, SECURITY_OK);              /* within the skew */
}

static void test_replay(void **state)
{
    struct wire_request req;
    char *text;

    (void)state;
    new_request(&req, "alice.mcollective");
    text = pack(alice, &req);
    expect_verdict(node1, text, &check_status, SECURITY_OK, NULL);
    expect_verdict(node1, text, &check_status, SECURITY_REPLAYED, "was seen before");
    expect_verdict(node1, text, &check_status, SECURITY_REPLAYED, NULL);
    /* another node has its own cache */
    free(text);
}

/* A cache of two entries: the oldest is evicted (and may then be replayed). */
static void test_replay_eviction(void **state)
{
    struct security_config cfg;
    struct choir_error err = {0};
    struct security *node;
    struct wire_request req;
    char ssldir[300], *text[3];

    (void)state;
    snprintf(ssldir, sizeof(ssldir), "%s/" NODE "/ssl", dir);
    security_config_init(&cfg);
    cfg.ssldir = ssldir;
    cfg.certname = NODE;
    cfg.identity = NODE;
    cfg.replay_max = 2;
    assert_int_equal(security_open(&node, &cfg, &err), 0);
    for (int i = 0; i < 3; i++) {
        new_request(&req, "alice.mcollective");
        text[i] = pack(alice, &req);
        expect_verdict(node, text[i], &check_status, SECURITY_OK, NULL);
    }
    expect_verdict(node, text[2], &check_status, SECURITY_REPLAYED, NULL);
    expect_verdict(node, text[1], &check_status, SECURITY_REPLAYED, NULL);
    expect_verdict(node, text[0], &check_status, SECURITY_OK, NULL); /* evicted */
    expect_verdict(node, text[0], &check_status, SECURITY_REPLAYED, NULL);
    expect_verdict(node, text[2], &check_status, SECURITY_REPLAYED, NULL);
    for (int i = 0; i < 3; i++)
        free(text[i]);
    security_free(node);
}

static void test_target_rules(void **state)
{
    static const char *const other[] = {"shell"};
    const struct security_check check_shell = {other, 1, NULL, 0, NULL};
    struct wire_request req;
    char *text;

    (void)state;
    new_request(&req, "alice.mcollective");
    strcpy(req.env.collective, "other");
    text = pack(alice, &req);
    expect_verdict(node1, text, &check_status, SECURITY_WRONG_COLLECTIVE,
                   "collective \"other\" is not \"mcollective\"");
    free(text);

    new_request(&req, "alice.mcollective");
    wire_filter_clear(&req.env.filter);
    text = pack(alice, &req);
    expect_verdict(node1, text, &check_shell, SECURITY_UNKNOWN_AGENT,
                   "agent \"puppet\" is not served here");
    free(text);

    new_request(&req, "alice.mcollective");
    wire_filter_clear(&req.env.filter);
    wire_filter_add_identity(&req.env.filter, "node2.example.com");
    text = pack(alice, &req);
    expect_verdict(node1, text, &check_status, SECURITY_NOT_FOR_THIS_NODE,
                   "identity filter does not name \"" NODE "\"");
    expect_verdict(node2, text, &check_status, SECURITY_OK, NULL);
    free(text);

    new_request(&req, "alice.mcollective");
    wire_filter_add_agent(&req.env.filter, "shell");
    text = pack(alice, &req);
    expect_verdict(node1, text, &check_status, SECURITY_NOT_FOR_THIS_NODE, "agent filter");
    free(text);

    new_request(&req, "alice.mcollective"); /* no filter at all: every node */
    wire_filter_clear(&req.env.filter);
    text = pack(alice, &req);
    expect_verdict(node1, text, &check_status, SECURITY_OK, NULL);
    free(text);
}

static void test_null_and_sizes(void **state)
{
    struct wire_secure sec = {0};
    struct wire_request req = {0};
    char reason[64], msg[] = "{}";
    char pem[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

    (void)state;
    assert_int_equal(security_verify_request(NULL, &sec, &req, &check_status, reason,
                                             sizeof(reason)),
                     SECURITY_MALFORMED);
    assert_string_equal(reason, "nothing to verify with");
    assert_int_equal(security_verify_reply(NULL, NULL, NULL, NULL, 0), SECURITY_MALFORMED);
    sec.message = msg;
    sec.message_len = WIRE_MAX_BYTES + 1;
    assert_int_equal(security_verify_request(node1, &sec, &req, &check_status, reason,
                                             sizeof(reason)),
                     SECURITY_TOO_LARGE);
    sec.message_len = 2;
    assert_int_equal(security_verify_request(node1, &sec, &req, &check_status, reason,
                                             sizeof(reason)),
                     SECURITY_BAD_CERTIFICATE);
    sec.pubcert = pem;
    sec.pubcert_len = strlen(sec.pubcert);
    assert_int_equal(security_verify_request(node1, &sec, &req, &check_status, reason,
                                             sizeof(reason)),
                     SECURITY_BAD_CERTIFICATE);
    /* an "encrypted" certificate must not make OpenSSL prompt for a passphrase */
    {
        char enc[] = "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n"
                     "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n"
                     "AAAAAAAAAAAAAAAAAAAAAA==\n-----END CERTIFICATE-----\n";

        sec.pubcert = enc;
        sec.pubcert_len = strlen(enc);
        assert_int_equal(security_verify_request(node1, &sec, &req, &check_status, reason,
                                                 sizeof(reason)),
                         SECURITY_BAD_CERTIFICATE);
    }
    assert_int_equal(security_counter(NULL, SECURITY_OK), 0);
}

/* ---- policy ------------------------------------------------------------------ */

static const char policy_text[] = "# who may do what\n"
                                  "deny ^alice\\.mcollective$ puppet runonce\n"
                                  "allow ^alice\\. puppet *\n"
                                  "  allow .* puppet status  \r\n"
                                  "\n";

static void test_policy_rules(void **state)
{
    struct security *node;
    unsigned line = 99;
    char path[512];
    struct wire_request req;
    char *text;
    static const struct security_check runonce = {served, 1, "runonce", 0, NULL};

    (void)state;
    snprintf(path, sizeof(path), "%s/policy", dir);
    write_file(path, policy_text);
    node = open_as(NODE, NODE, path);
    assert_non_null(node);
    assert_true(security_policy_allows(node, "alice.mcollective", "puppet", "status", &line));
    assert_int_equal(line, 3);
    assert_false(security_policy_allows(node, "alice.mcollective", "puppet", "runonce", &line));
    assert_int_equal(line, 2);
    assert_true(security_policy_allows(node, "carol.mcollective", "puppet", "status", &line));
    assert_int_equal(line, 4);
    assert_false(security_policy_allows(node, "carol.mcollective", "puppet", "runonce", &line));
    assert_int_equal(line, 0); /* default deny */
    assert_false(security_policy_allows(node, "carol.mcollective", "shell", "status", &line));
    /* no policy: everything allowed */
    assert_true(security_policy_allows(node1, "carol.mcollective", "puppet", "runonce", &line));
    assert_int_equal(line, 0);

    new_request(&req, "alice.mcollective");
    text = pack(alice, &req);
    expect_verdict(node, text, &runonce, SECURITY_POLICY_DENIED, "policy:2");
    free(text);
    new_request(&req, "admin.privileged.mcollective");
    text = pack(admin, &req);
    expect_verdict(node, text, &runonce, SECURITY_POLICY_DENIED, "no rule of");
    free(text);
    new_request(&req, "alice.mcollective");
    text = pack(alice, &req);
    expect_verdict(node, text, &check_status, SECURITY_OK, NULL);
    free(text);
    security_free(node);
}

static void expect_policy_error(const char *text, const char *want)
{
    struct security_policy *p = (struct security_policy *)1;
    struct choir_error err = {0};

    assert_int_equal(security_policy_parse(text, strlen(text), "pol", &p, &err), -1);
    assert_null(p);
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("error \"%s\" is not \"%s...\"", err.msg, want);
}

static void test_policy_errors(void **state)
{
    struct security_config cfg;
    struct choir_error err = {0};
    struct security *sec;
    char ssldir[300], path[300], want[1400];

    (void)state;
    expect_policy_error("allow x puppet\n", "pol:1: expected 4 fields: allow|deny CALLER_REGEX "
                                            "AGENT ACTION");
    expect_policy_error("# c\n\npermit .* puppet status\n",
                        "pol:3: expected \"allow\" or \"deny\", got \"permit\"");
    expect_policy_error("allow .* puppet status\nallow ( puppet status\n",
                        "pol:2: invalid caller regex \"(\": ");
    expect_policy_error("allow .* pup.pet status\n", "pol:1: agent and action must be names");
    expect_policy_error("allow .* puppet status extra\n", "pol:1: expected 4 fields");
    expect_policy_error("allow .*\x01 puppet status\n", "pol:1: control character");

    snprintf(ssldir, sizeof(ssldir), "%s/" NODE "/ssl", dir);
    snprintf(path, sizeof(path), "%s/badpolicy", dir);
    write_file(path, "allow .* puppet status\n\ndeny\n");
    security_config_init(&cfg);
    cfg.ssldir = ssldir;
    cfg.certname = NODE;
    cfg.policy_file = path;
    assert_int_equal(security_open(&sec, &cfg, &err), -1);
    snprintf(want, sizeof(want), "%s:3: expected 4 fields: allow|deny CALLER_REGEX AGENT ACTION",
             path);
    assert_string_equal(err.msg, want);
    snprintf(path, sizeof(path), "%s/nopolicy", dir);
    assert_int_equal(security_open(&sec, &cfg, &err), -1);
    snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", path);
    assert_string_equal(err.msg, want);
}

/* ---- replies ----------------------------------------------------------------- */

/* A reply claiming to come from senderid, signed with s (NULL: unsigned). */
static char *pack_reply_with(const struct wire_signer *s, const char *senderid)
{
    static const char body[] =
        "{\"statuscode\":0,\"statusmsg\":\"OK\",\"data\":{\"summary\":\"ok\"}}";
    struct wire_headers h = {"", ""};
    struct wire_reply rep = {0};
    struct choir_error err = {0};
    char *text;
    size_t len;

    assert_int_equal(wire_requestid_new(rep.requestid, &err), 0);
    snprintf(rep.senderid, sizeof(rep.senderid), "%s", senderid);
    strcpy(rep.agent, "puppet");
    rep.time = (long long)time(NULL);
    assert_int_equal(wire_reply_set_body(&rep, body, strlen(body), &err), 0);
    assert_int_equal(wire_pack_reply(&rep, s, &h, &text, &len, &err), 0);
    wire_reply_clear(&rep);
    return text;
}

/* A reply claiming to come from senderid, signed by signer (NULL: unsigned). */
static char *pack_reply(struct security *signer, const char *senderid)
{
    struct wire_signer s = security_signer(signer);

    return pack_reply_with(signer ? &s : NULL, senderid);
}

static enum security_verdict verify_reply_text(const char *text, int tamper_hash, char *reason)
{
    struct wire_transport t;
    struct wire_secure sec;
    struct wire_reply rep;
    struct choir_error err = {0};
    enum security_verdict v;

    assert_int_equal(wire_unpack_reply(text, strlen(text), &t, &sec, &rep, &err), 0);
    if (tamper_hash)
        sec.hash[0] ^= 1;
    v = security_verify_reply(alice, &sec, &rep, reason, SECURITY_REASON_SIZE);
    wire_transport_clear(&t);
    wire_secure_clear(&sec);
    wire_reply_clear(&rep);
    return v;
}

static void test_replies(void **state)
{
    unsigned long long ok = security_counter(alice, SECURITY_OK);
    unsigned long long forged = security_counter(alice, SECURITY_REPLY_IDENTITY_MISMATCH);
    char reason[SECURITY_REASON_SIZE];
    char *text;

    (void)state;
    text = pack_reply(node1, NODE);
    assert_int_equal(verify_reply_text(text, 0, reason), SECURITY_OK);
    assert_int_equal(verify_reply_text(text, 1, reason), SECURITY_BAD_HASH);
    free(text);
    /* node2 forging "run succeeded" for node1 */
    text = pack_reply(node2, NODE);
    assert_int_equal(verify_reply_text(text, 0, reason), SECURITY_REPLY_IDENTITY_MISMATCH);
    assert_string_equal(reason, "reply from \"" NODE "\" is signed by \"node2.example.com\"");
    free(text);
    text = pack_reply(NULL, NODE);
    assert_int_equal(verify_reply_text(text, 0, reason), SECURITY_BAD_SIGNATURE);
    assert_string_equal(reason, "reply is not signed");
    free(text);
    text = pack_reply(mallory, "mallory.mcollective");
    assert_int_equal(verify_reply_text(text, 0, reason), SECURITY_UNTRUSTED_CERTIFICATE);
    free(text);
    text = pack_reply(revoked, "revoked.mcollective");
    assert_int_equal(verify_reply_text(text, 0, reason), SECURITY_REVOKED);
    free(text);
    assert_int_equal(security_counter(alice, SECURITY_OK), ok + 1);
    assert_int_equal(security_counter(alice, SECURITY_REPLY_IDENTITY_MISMATCH), forged + 1);
}

static void test_sign_direct(void **state)
{
    unsigned char *sig;
    size_t len;
    struct choir_error err = {0};

    (void)state;
    assert_int_equal(security_sign(alice, "abc", 3, &sig, &len, &err), 0);
    assert_int_equal(len, 256); /* RSA-2048 */
    free(sig);
}

/* ---- identities served by one process (choird --simulate) -------------------- */

static struct security_identity *open_identity(const char *certname)
{
    struct security_identity *id = NULL;
    struct choir_error err = {0};

    if (security_identity_open(sim, certname, &id, &err) < 0)
        fail_msg("security_identity_open %s: %s", certname, err.msg);
    assert_string_equal(security_identity_name(id), certname);
    return id;
}

/* A reply from id's name signed with id's signer, verified by the console
 * (alice) as from senderid. */
static enum security_verdict identity_reply(struct security_identity *id, const char *senderid,
                                            char *reason)
{
    struct wire_signer s = security_identity_signer(id);
    enum security_verdict v;
    char *text = pack_reply_with(&s, senderid);

    v = verify_reply_text(text, 0, reason);
    free(text);
    return v;
}

static void test_identity_replies(void **state)
{
    struct security_identity *one = open_identity("sim-00001"), *two = open_identity("sim-00002");
    struct wire_signer s = security_identity_signer(one);
    char reason[SECURITY_REASON_SIZE];

    (void)state;
    assert_memory_equal(s.pubcert, "-----BEGIN CERTIFICATE-----\n", 28);
    assert_string_not_equal(s.pubcert, security_pubcert_pem(sim));
    assert_string_not_equal(s.pubcert, security_identity_signer(two).pubcert);
    assert_int_equal(identity_reply(one, "sim-00001", reason), SECURITY_OK);
    assert_int_equal(identity_reply(two, "sim-00002", reason), SECURITY_OK);
    /* one simulated node cannot answer for another */
    assert_int_equal(identity_reply(one, "sim-00002", reason), SECURITY_REPLY_IDENTITY_MISMATCH);
    assert_string_equal(reason, "reply from \"sim-00002\" is signed by \"sim-00001\"");
    /* nor for the simulator itself */
    assert_int_equal(identity_reply(two, SIM_HOST, reason), SECURITY_REPLY_IDENTITY_MISMATCH);
    security_identity_free(one);
    security_identity_free(two);
    security_identity_free(NULL);
}

/* One request to sim-00001 and sim-00002 reaches the simulator once per
 * named node: each directed copy verifies once, as its target. */
static void test_identity_requests(void **state)
{
    const struct security_check as_one = {served, 1, "status", 1, "sim-00001"};
    const struct security_check as_two = {served, 1, "status", 1, "sim-00002"};
    struct wire_request req;
    char *text;

    (void)state;
    new_request(&req, "alice.mcollective");
    wire_filter_clear(&req.env.filter);
    wire_filter_add_identity(&req.env.filter, "sim-00001");
    wire_filter_add_identity(&req.env.filter, "sim-00002");
    wire_filter_add_agent(&req.env.filter, "puppet");
    text = pack(alice, &req);
    expect_verdict(sim, text, &as_one, SECURITY_OK, NULL);
    expect_verdict(sim, text, &as_two, SECURITY_OK, NULL);
    expect_verdict(sim, text, &as_one, SECURITY_REPLAYED, "was seen before");
    expect_verdict(sim, text, &as_two, SECURITY_REPLAYED, NULL);
    /* a node serving only itself still needs its name in the filter */
    expect_verdict(node1, text, &check_status, SECURITY_NOT_FOR_THIS_NODE,
                   "identity filter does not name \"" NODE "\"");
    free(text);
}

/* Opening certname fails with an error that contains want (a path is
 * put in front of want when it starts with '/': the sim ssldir's file). */
static void expect_identity_error(const char *certname, const char *want)
{
    struct security_identity *id = (struct security_identity *)1;
    struct choir_error err = {0};

    assert_int_equal(security_identity_open(sim, certname, &id, &err), -1);
    assert_null(id);
    assert_int_equal(err.code, CHOIR_EXIT_INPUT);
    assert_null(strchr(err.msg, '\n'));
    if (!strstr(err.msg, want))
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, want);
}

/* Copies <dir>/<from>/ssl/certs/<name>.pem to the sim ssldir as <as>.pem. */
static void copy_cert(const char *from, const char *name, const char *as)
{
    assert_int_equal(run("cp %s/%s/ssl/certs/%s.pem %s/" SIM_HOST "/ssl/certs/%s.pem", dir, from,
                         name, dir, as), 0);
}

static void test_identity_errors(void **state)
{
    char want[1400], certs[400];

    (void)state;
    snprintf(certs, sizeof(certs), "%s/" SIM_HOST "/ssl/certs", dir);
    snprintf(want, sizeof(want), "%s/sim-00099.pem: cannot read: No such file or directory",
             certs);
    expect_identity_error("sim-00099", want);
    expect_identity_error("Sim-1", "security: invalid certname \"Sim-1\"");
    /* a good certificate, but for another key */
    copy_cert("alice.mcollective", "alice.mcollective", "alice.mcollective");
    snprintf(want, sizeof(want), "%s/alice.mcollective.pem: certifies another key, not this "
             "process's private key %s/" SIM_HOST "/ssl/private_keys/" SIM_HOST ".pem", certs, dir);
    expect_identity_error("alice.mcollective", want);
    /* a certificate under another identity's file name */
    copy_cert(SIM_HOST, "sim-00001", "sim-00042");
    snprintf(want, sizeof(want), "%s/sim-00042.pem: CN is \"sim-00001\", expected \"sim-00042\"",
             certs);
    expect_identity_error("sim-00042", want);
    /* the console's pubcert checks */
    copy_cert("mallory.mcollective", "mallory.mcollective", "mallory.mcollective");
    snprintf(want, sizeof(want), "%s/mallory.mcollective.pem: certificate of "
             "\"mallory.mcollective\" does not chain to the Puppet CA: ", certs);
    expect_identity_error("mallory.mcollective", want);
    copy_cert("revoked.mcollective", "revoked.mcollective", "revoked.mcollective");
    expect_identity_error("revoked.mcollective", "revoked.mcollective.pem: certificate of "
                          "\"revoked.mcollective\" is revoked");
    copy_cert("expired.mcollective", "expired.mcollective", "expired.mcollective");
    expect_identity_error("expired.mcollective", "has expired");
    assert_int_equal(run("echo garbage > %s/sim-00043.pem", certs), 0);
    expect_identity_error("sim-00043", "sim-00043.pem: certificate does not parse: ");
}

/* testca --sim again, with the openssl CLI: the missing certificates are
 * added, the existing ones kept. */
static void test_identity_testca_openssl(void **state)
{
    struct security_identity *before = open_identity("sim-00003"), *after, *five;
    char reason[SECURITY_REASON_SIZE];

    (void)state;
    assert_int_equal(run("env -u CHOIR_SIMCERTS %s/scripts/testca %s " TESTCA_ARGS " --sim 5",
                         CHOIR_SOURCE_DIR, dir), 0);
    after = open_identity("sim-00003");
    assert_string_equal(security_identity_signer(before).pubcert,
                        security_identity_signer(after).pubcert);
    five = open_identity("sim-00005");
    assert_int_equal(identity_reply(five, "sim-00005", reason), SECURITY_OK);
    assert_int_equal(identity_reply(five, "sim-00004", reason), SECURITY_REPLY_IDENTITY_MISMATCH);
    security_identity_free(before);
    security_identity_free(after);
    security_identity_free(five);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_open_bad_regex),
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_sign_verify_ok),
        cmocka_unit_test(test_certificate_verdicts),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_caller_rules),
        cmocka_unit_test(test_time_window),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_replay_eviction),
        cmocka_unit_test(test_target_rules),
        cmocka_unit_test(test_null_and_sizes),
        cmocka_unit_test(test_policy_rules),
        cmocka_unit_test(test_policy_errors),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_sign_direct),
        cmocka_unit_test(test_identity_replies),
        cmocka_unit_test(test_identity_requests),
        cmocka_unit_test(test_identity_errors),
        cmocka_unit_test(test_identity_testca_openssl),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
