/* test_wire.c - the Choria v1 layers of net/wire.c: round trips of every
 * layer, the exact error of each kind of bad input, and that decoding
 * keeps the exact bytes of `message` (what signatures are made over).
 * No certificates here: a stub signer stands in for net/security.c. */
#include "cmocka_setup.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/wire.h"

#define RID "0123456789abcdef0123456789abcdef"
#define BODY                                                                     \
    "{\"agent\":\"puppet\",\"action\":\"status\",\"caller\":\"choria=alice.mcollective\"," \
    "\"data\":{}}"
#define FAKE_PEM "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"

/* ---- helpers --------------------------------------------------------------- */

/* A stub signature: the first 16 bytes of the data, reversed. */
static int stub_sign(void *ctx, const void *data, size_t len, unsigned char **sig, size_t *sig_len,
                     struct choir_error *err)
{
    const unsigned char *d = data;
    size_t n = len < 16 ? len : 16;

    (void)ctx;
    (void)err;
    *sig = malloc(n);
    for (size_t i = 0; i < n; i++)
        (*sig)[i] = d[n - 1 - i];
    *sig_len = n;
    return 0;
}

static const struct wire_signer stub_signer = {stub_sign, NULL, FAKE_PEM};

static json_t *base_envelope(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:{s:[], s:[], s:[s], s:[s], s:[]}}",
                     "requestid", RID, "senderid", "console.example.com", "callerid",
                     "choria=alice.mcollective", "collective", "mcollective", "agent", "puppet",
                     "ttl", 60, "time", (json_int_t)1700000000, "filter", "fact", "cf_class",
                     "agent", "puppet", "identity", "node1.example.com", "compound");
}

/* A request document whose envelope has key set to the JSON `value`
 * (NULL: key removed). */
static char *request_doc(const char *key, const char *value)
{
    json_t *env = base_envelope(), *doc;
    char *text;

    if (key && strcmp(key, "protocol") == 0) { /* a reply's protocol instead */
        doc = json_pack("{s:s, s:s, s:o}", "protocol", "choria:reply:1", "message", BODY,
                        "envelope", env);
        text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        return text;
    }
    if (key && value)
        json_object_set_new(env, key, json_loads(value, JSON_DECODE_ANY, NULL));
    else if (key)
        json_object_del(env, key);
    doc = json_pack("{s:s, s:s, s:o}", "protocol", "choria:request:1", "message", BODY,
                    "envelope", env);
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

static void expect_request_error(const char *doc, const char *msg)
{
    struct wire_request req;
    struct choir_error err = {0};

    assert_int_equal(wire_request_decode(doc, strlen(doc), &req, &err), -1);
    assert_string_equal(err.msg, msg);
    assert_int_equal(err.code, CHOIR_EXIT_INPUT);
    assert_null(req.body);
}

static void expect_envelope_error(const char *key, const char *value, const char *msg)
{
    char *doc = request_doc(key, value);

    expect_request_error(doc, msg);
    free(doc);
}

static void expect_transport_error(const char *doc, const char *msg)
{
    struct wire_transport t;
    struct choir_error err = {0};

    assert_int_equal(wire_transport_decode(doc, strlen(doc), &t, &err), -1);
    assert_string_equal(err.msg, msg);
    assert_null(t.data);
}

static void expect_secure_error(const char *doc, enum wire_secure_kind kind, const char *msg)
{
    struct wire_secure s;
    struct choir_error err = {0};

    assert_int_equal(wire_secure_decode(doc, strlen(doc), kind, &s, &err), -1);
    assert_string_equal(err.msg, msg);
    assert_null(s.message);
}

static void make_request(struct wire_request *req)
{
    struct choir_error err = {0};

    memset(req, 0, sizeof(*req));
    assert_int_equal(wire_envelope_init(&req->env, "console.example.com", "alice.mcollective",
                                        "mcollective", "puppet", 0, &err), 0);
    wire_filter_add_identity(&req->env.filter, "node1.example.com");
    wire_filter_add_identity(&req->env.filter, "node2.example.com");
    wire_filter_add_agent(&req->env.filter, "puppet");
    assert_int_equal(wire_request_set_body(req, BODY, strlen(BODY), &err), 0);
}

static void make_reply(struct wire_reply *rep)
{
    static const char body[] =
        "{\"statuscode\":0,\"statusmsg\":\"OK\",\"data\":{\"applying\":false}}";
    struct choir_error err = {0};

    memset(rep, 0, sizeof(*rep));
    strcpy(rep->requestid, RID);
    strcpy(rep->senderid, "node1.example.com");
    strcpy(rep->agent, "puppet");
    rep->time = 1700000001;
    assert_int_equal(wire_reply_set_body(rep, body, strlen(body), &err), 0);
}

static void assert_same_envelope(const struct wire_envelope *a, const struct wire_envelope *b)
{
    assert_string_equal(a->requestid, b->requestid);
    assert_string_equal(a->senderid, b->senderid);
    assert_string_equal(a->callerid, b->callerid);
    assert_string_equal(a->collective, b->collective);
    assert_string_equal(a->agent, b->agent);
    assert_int_equal(a->ttl, b->ttl);
    assert_int_equal(a->time, b->time);
    assert_int_equal(a->filter.identity_count, b->filter.identity_count);
    for (size_t i = 0; i < a->filter.identity_count; i++)
        assert_string_equal(a->filter.identity[i], b->filter.identity[i]);
    assert_int_equal(a->filter.agent_count, b->filter.agent_count);
    for (size_t i = 0; i < a->filter.agent_count; i++)
        assert_string_equal(a->filter.agent[i], b->filter.agent[i]);
    assert_int_equal(a->filter.other_count, b->filter.other_count);
}

/* ---- base64 and request ids ------------------------------------------------ */

static void test_base64_vectors(void **state)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                        "Zm9vYmFy"};

    (void)state;
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        unsigned char *raw;
        size_t n, len;
        char *text = wire_base64_encode(plain[i], strlen(plain[i]), &n);

        assert_string_equal(text, coded[i]);
        assert_int_equal(n, strlen(coded[i]));
        assert_int_equal(wire_base64_decode(text, n, &raw, &len), 0);
        assert_int_equal(len, strlen(plain[i]));
        assert_memory_equal(raw, plain[i], len);
        free(raw);
        free(text);
    }
}

static void test_base64_newlines_and_errors(void **state)
{
    static const char *const bad[] = {"Zm9", "Zm9v=", "Zm===", "Zm9v!", "Z=m9", "Zm9vY===",
                                      "Z===", "Zm 9v", "Zg=a"};
    unsigned char *raw;
    size_t len;

    (void)state;
    assert_int_equal(wire_base64_decode("Zm9v\nYmFy\r\n", 11, &raw, &len), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(raw, "foobar", 6);
    free(raw);
    assert_int_equal(wire_base64_decode("Zg=\n=\n", 6, &raw, &len), 0);
    assert_int_equal(len, 1);
    free(raw);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(wire_base64_decode(bad[i], strlen(bad[i]), &raw, &len), -1);
        assert_null(raw);
    }
}

static void test_requestid(void **state)
{
    char a[WIRE_REQUESTID_LEN + 1], b[WIRE_REQUESTID_LEN + 1];
    struct choir_error err = {0};

    (void)state;
    assert_int_equal(wire_requestid_new(a, &err), 0);
    assert_int_equal(wire_requestid_new(b, &err), 0);
    assert_int_equal(strlen(a), 32);
    assert_true(wire_requestid_ok(a));
    assert_int_equal(a[12], '4');
    assert_non_null(strchr("89ab", a[16]));
    assert_string_not_equal(a, b);
    assert_false(wire_requestid_ok("0123456789ABCDEF0123456789abcdef"));
    assert_false(wire_requestid_ok("0123456789abcdef0123456789abcde"));
}

static void test_quote(void **state)
{
    char buf[16];

    (void)state;
    wire_quote("a\"b\n", 4, buf, sizeof(buf));
    assert_string_equal(buf, "\"a\\\"b\\x0a\"");
    wire_quote("abcdefghijklmnopqrstuvwxyz", 26, buf, sizeof(buf));
    assert_string_equal(buf, "\"abcdefghij...\"");
}

/* ---- round trips ----------------------------------------------------------- */

static void test_request_round_trip(void **state)
{
    struct wire_request req, back;
    struct choir_error err = {0};
    char *text;
    size_t len;

    (void)state;
    make_request(&req);
    assert_int_equal(req.env.ttl, WIRE_TTL_DEFAULT);
    assert_string_equal(req.env.callerid, "choria=alice.mcollective");
    assert_int_equal(wire_request_encode(&req, &text, &len, &err), 0);
    assert_int_equal(len, strlen(text));
    assert_non_null(strstr(text, "\"protocol\":\"choria:request:1\""));
    assert_non_null(strstr(text, "\"fact\":[],\"cf_class\":[],\"agent\":[\"puppet\"]"));
    assert_int_equal(wire_request_decode(text, len, &back, &err), 0);
    assert_same_envelope(&req.env, &back.env);
    assert_int_equal(back.body_len, strlen(BODY));
    assert_string_equal(back.body, BODY);
    free(text);
    wire_request_clear(&back);
    wire_request_clear(&req);
    wire_request_clear(&req); /* clearing twice is safe */
}

static void test_reply_round_trip(void **state)
{
    struct wire_reply rep, back;
    struct choir_error err = {0};
    char *text;
    size_t len;

    (void)state;
    make_reply(&rep);
    assert_int_equal(wire_reply_encode(&rep, &text, &len, &err), 0);
    assert_int_equal(wire_reply_decode(text, len, &back, &err), 0);
    assert_string_equal(back.requestid, rep.requestid);
    assert_string_equal(back.senderid, rep.senderid);
    assert_string_equal(back.agent, rep.agent);
    assert_int_equal(back.time, rep.time);
    assert_string_equal(back.body, rep.body);
    free(text);
    wire_reply_clear(&back);
    wire_reply_clear(&rep);
}

static void test_secure_request_round_trip(void **state)
{
    static const unsigned char sig[] = {0, 1, 2, 0xff, 0xfe, 'x'};
    struct wire_secure s = {0}, back;
    struct choir_error err = {0};
    char *text;
    size_t len;

    (void)state;
    s.kind = WIRE_SECURE_REQUEST;
    s.message = strdup(BODY);
    s.message_len = strlen(BODY);
    s.signature = malloc(sizeof(sig));
    memcpy(s.signature, sig, sizeof(sig));
    s.sig_len = sizeof(sig);
    s.pubcert = strdup(FAKE_PEM);
    s.pubcert_len = strlen(FAKE_PEM);
    assert_int_equal(wire_secure_encode(&s, &text, &len, &err), 0);
    assert_int_equal(wire_secure_decode(text, len, WIRE_SECURE_REQUEST, &back, &err), 0);
    assert_int_equal(back.message_len, s.message_len);
    assert_memory_equal(back.message, s.message, s.message_len);
    assert_int_equal(back.sig_len, sizeof(sig));
    assert_memory_equal(back.signature, sig, sizeof(sig));
    assert_string_equal(back.pubcert, FAKE_PEM);
    assert_false(back.has_hash);
    free(text);
    wire_secure_clear(&back);
    wire_secure_clear(&s);
}

static void test_secure_reply_round_trip(void **state)
{
    struct wire_secure s = {0}, back;
    struct choir_error err = {0};
    char *text;
    size_t len;

    (void)state;
    s.kind = WIRE_SECURE_REPLY;
    s.message = strdup(BODY);
    s.message_len = strlen(BODY);
    /* unsigned: plain Choria v1 */
    assert_int_equal(wire_secure_encode(&s, &text, &len, &err), 0);
    assert_null(strstr(text, "signature"));
    assert_int_equal(wire_secure_decode(text, len, WIRE_SECURE_REPLY, &back, &err), 0);
    assert_true(back.has_hash);
    assert_int_equal(back.sig_len, 0);
    assert_null(back.pubcert);
    assert_string_equal(back.message, BODY);
    free(text);
    wire_secure_clear(&back);
    /* signed: choir's addition */
    assert_int_equal(stub_sign(NULL, BODY, 5, &s.signature, &s.sig_len, &err), 0);
    s.pubcert = strdup(FAKE_PEM);
    assert_int_equal(wire_secure_encode(&s, &text, &len, &err), 0);
    assert_int_equal(wire_secure_decode(text, len, WIRE_SECURE_REPLY, &back, &err), 0);
    assert_int_equal(back.sig_len, 5);
    assert_string_equal(back.pubcert, FAKE_PEM);
    free(text);
    wire_secure_clear(&back);
    wire_secure_clear(&s);
}

static void test_transport_round_trip(void **state)
{
    struct wire_transport t = {0}, back;
    struct choir_error err = {0};
    char *text;
    size_t len;

    (void)state;
    t.data = strdup("{\"x\":1}");
    t.data_len = 7;
    strcpy(t.headers.reply_to, "amq.gen-Xy_z");
    strcpy(t.headers.sender, "console.example.com");
    assert_int_equal(wire_transport_encode(&t, &text, &len, &err), 0);
    assert_non_null(strstr(text, "\"data\":\"eyJ4IjoxfQ==\""));
    assert_int_equal(wire_transport_decode(text, len, &back, &err), 0);
    assert_int_equal(back.data_len, 7);
    assert_string_equal(back.data, "{\"x\":1}");
    assert_string_equal(back.headers.reply_to, "amq.gen-Xy_z");
    assert_string_equal(back.headers.sender, "console.example.com");
    free(text);
    wire_transport_clear(&back);
    /* headers are optional */
    t.headers.reply_to[0] = t.headers.sender[0] = '\0';
    assert_int_equal(wire_transport_encode(&t, &text, &len, &err), 0);
    assert_non_null(strstr(text, "\"headers\":{}"));
    assert_int_equal(wire_transport_decode(text, len, &back, &err), 0);
    assert_string_equal(back.headers.reply_to, "");
    free(text);
    wire_transport_clear(&back);
    wire_transport_clear(&t);
}

static void test_pack_unpack_request(void **state)
{
    struct wire_headers h = {"amq.gen-reply", "console.example.com"};
    struct wire_request req, back;
    struct wire_transport t;
    struct wire_secure sec;
    struct choir_error err = {0};
    char *text;
    size_t len;

    (void)state;
    make_request(&req);
    assert_int_equal(wire_pack_request(&req, &stub_signer, &h, &text, &len, &err), 0);
    assert_null(strchr(text, '\n'));
    assert_int_equal(wire_unpack_request(text, len, &t, &sec, &back, &err), 0);
    assert_string_equal(t.headers.reply_to, "amq.gen-reply");
    assert_string_equal(t.headers.sender, "console.example.com");
    assert_int_equal(sec.kind, WIRE_SECURE_REQUEST);
    assert_int_equal(sec.sig_len, 16);
    {
        unsigned char *want;
        size_t want_len;

        assert_int_equal(stub_sign(NULL, sec.message, sec.message_len, &want, &want_len, &err), 0);
        assert_memory_equal(sec.signature, want, want_len);
        free(want);
    }
    assert_string_equal(sec.pubcert, FAKE_PEM);
    assert_same_envelope(&req.env, &back.env);
    assert_string_equal(back.body, BODY);
    /* the secure message is the request layer's exact text */
    assert_memory_equal(sec.message, "{\"protocol\":\"choria:request:1\"", 30);
    free(text);
    wire_transport_clear(&t);
    wire_secure_clear(&sec);
    wire_request_clear(&back);
    /* no signer: refused */
    assert_int_equal(wire_pack_request(&req, NULL, &h, &text, &len, &err), -1);
    assert_string_equal(err.msg, "secure request: no signing key");
    wire_request_clear(&req);
}

static void test_pack_unpack_reply(void **state)
{
    struct wire_headers h = {"", "node1.example.com"};
    struct wire_reply rep, back;
    struct wire_transport t;
    struct wire_secure sec;
    struct choir_error err = {0};
    char *text;
    size_t len;

    (void)state;
    make_reply(&rep);
    assert_int_equal(wire_pack_reply(&rep, &stub_signer, &h, &text, &len, &err), 0);
    assert_int_equal(wire_unpack_reply(text, len, &t, &sec, &back, &err), 0);
    assert_true(sec.has_hash);
    assert_int_equal(sec.sig_len, 16);
    assert_string_equal(back.senderid, "node1.example.com");
    assert_string_equal(back.body, rep.body);
    free(text);
    wire_transport_clear(&t);
    wire_secure_clear(&sec);
    wire_reply_clear(&back);
    /* unsigned replies are allowed by the wire layer */
    assert_int_equal(wire_pack_reply(&rep, NULL, &h, &text, &len, &err), 0);
    assert_int_equal(wire_unpack_reply(text, len, &t, &sec, &back, &err), 0);
    assert_int_equal(sec.sig_len, 0);
    free(text);
    wire_transport_clear(&t);
    wire_secure_clear(&sec);
    wire_reply_clear(&back);
    wire_reply_clear(&rep);
}

/* ---- exact errors ---------------------------------------------------------- */

static void test_wrong_protocol(void **state)
{
    char *doc;

    (void)state;
    expect_transport_error("{\"protocol\":\"x\",\"data\":\"e30=\",\"headers\":{}}",
                           "transport: \"protocol\" is \"x\", expected \"choria:transport:1\"");
    expect_transport_error("{\"data\":\"e30=\",\"headers\":{}}",
                           "transport: missing key \"protocol\"");
    expect_secure_error("{\"protocol\":\"choria:secure:reply:1\",\"message\":\"{}\","
                        "\"hash\":\"x\"}",
                        WIRE_SECURE_REQUEST,
                        "secure request: \"protocol\" is \"choria:secure:reply:1\", expected "
                        "\"choria:secure:request:1\"");
    doc = request_doc("protocol", NULL);
    expect_request_error(doc, "request: \"protocol\" is \"choria:reply:1\", expected "
                              "\"choria:request:1\"");
    free(doc);
    expect_transport_error("{\"protocol\":\"a\\nb\",\"data\":\"e30=\",\"headers\":{}}",
                           "transport: \"protocol\" is \"a\\x0ab\", expected "
                           "\"choria:transport:1\"");
}

static void test_missing_and_extra_keys(void **state)
{
    (void)state;
    expect_envelope_error("ttl", NULL, "request envelope: missing key \"ttl\"");
    expect_envelope_error("filter", NULL, "request envelope: missing key \"filter\"");
    expect_envelope_error("extra", "1", "request envelope: unexpected key \"extra\"");
    expect_request_error("{\"protocol\":\"choria:request:1\",\"message\":\"{}\"}",
                         "request: missing key \"envelope\"");
    expect_transport_error("{\"protocol\":\"choria:transport:1\",\"data\":\"e30=\"}",
                           "transport: missing key \"headers\"");
    expect_transport_error(
        "{\"protocol\":\"choria:transport:1\",\"data\":\"e30=\",\"headers\":{\"x-evil\":\"1\"}}",
        "transport headers: unexpected key \"x-evil\"");
    expect_secure_error("{\"protocol\":\"choria:secure:request:1\",\"message\":\"{}\","
                        "\"signature\":\"AAAA\"}",
                        WIRE_SECURE_REQUEST, "secure request: missing key \"pubcert\"");
    expect_secure_error("{\"protocol\":\"choria:secure:request:1\",\"message\":\"{}\","
                        "\"signature\":\"AAAA\",\"pubcert\":\"x\",\"hash\":\"AAAA\"}",
                        WIRE_SECURE_REQUEST, "secure request: unexpected key \"hash\"");
    expect_envelope_error("filter", "{\"fact\":[],\"cf_class\":[],\"agent\":[],\"identity\":[]}",
                          "request filter: missing key \"compound\"");
}

static void test_field_values(void **state)
{
    (void)state;
    expect_envelope_error("requestid", "\"0123456789ABCDEF0123456789abcdef\"",
                          "request envelope: \"requestid\" is not 32 lowercase hex digits");
    expect_envelope_error("requestid", "\"abc\"",
                          "request envelope: \"requestid\" is not 32 lowercase hex digits");
    expect_envelope_error("requestid", "\"0123456789abcdef0123456789abcdef00\"",
                          "request envelope: \"requestid\" is longer than 32 bytes");
    expect_envelope_error("ttl", "10", "request envelope: \"ttl\" is 10, must be at least 30");
    expect_envelope_error("ttl", "86401",
                          "request envelope: \"ttl\" is 86401, must be at most 86400");
    expect_envelope_error("time", "-1",
                          "request envelope: \"time\" is -1, out of range 0..1099511627776");
    expect_envelope_error("callerid", "\"alice.mcollective\"",
                          "request envelope: \"callerid\" is not \"choria=<certname>\": "
                          "\"alice.mcollective\"");
    expect_envelope_error("senderid", "\"Bad Host\"",
                          "request envelope: \"senderid\" is not a certname: \"Bad Host\"");
    expect_envelope_error("agent", "\"pup pet\"",
                          "request envelope: \"agent\" is not an agent name: \"pup pet\"");
    expect_envelope_error("senderid", "\"\"", "request envelope: \"senderid\" is empty");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_envelope_error("ttl", "\"60\"", "request envelope: \"ttl\" is not an integer");
    expect_envelope_error("ttl", "60.0", "request envelope: \"ttl\" is not an integer");
    expect_envelope_error("time", "null", "request envelope: \"time\" is not an integer");
    expect_envelope_error("senderid", "5", "request envelope: \"senderid\" is not a string");
    expect_envelope_error("filter", "[]", "request envelope: \"filter\" is not an object");
    expect_envelope_error("filter",
                          "{\"fact\":{},\"cf_class\":[],\"agent\":[],\"identity\":[],"
                          "\"compound\":[]}",
                          "request filter: \"fact\" is not an array");
    expect_envelope_error("filter",
                          "{\"fact\":[],\"cf_class\":[],\"agent\":[],\"identity\":[1],"
                          "\"compound\":[]}",
                          "request filter: \"identity\" entry 1 is not a string");
    expect_request_error("{\"protocol\":\"choria:request:1\",\"message\":\"{}\",\"envelope\":[]}",
                         "request: \"envelope\" is not an object");
    expect_request_error("[1]", "request: neither a JSON object nor base64 of one");
    expect_transport_error("[1]", "transport: not a JSON object");
    expect_transport_error("{\"protocol\":1}", "transport: \"protocol\" is not a string");
    expect_transport_error("{\"protocol\":\"choria:transport:1\",\"data\":\"e30=\",\"headers\":[]}",
                           "transport: \"headers\" is not an object");
}

static void test_bad_base64(void **state)
{
    (void)state;
    expect_secure_error("{\"protocol\":\"choria:secure:request:1\",\"message\":\"{}\","
                        "\"signature\":\"!!!!\",\"pubcert\":\"x\"}",
                        WIRE_SECURE_REQUEST, "secure request: \"signature\" is not valid base64");
    expect_transport_error("{\"protocol\":\"choria:transport:1\",\"data\":\"e30\",\"headers\":{}}",
                           "transport: \"data\" is not valid base64");
    expect_secure_error("{\"protocol\":\"choria:secure:reply:1\",\"message\":\"{}\","
                        "\"hash\":\"AAAA\"}",
                        WIRE_SECURE_REPLY,
                        "secure reply: \"hash\" is not a SHA-256 digest (3 bytes)");
    expect_secure_error("{\"protocol\":\"choria:secure:reply:1\",\"message\":\"{}\","
                        "\"hash\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
                        WIRE_SECURE_REPLY, "secure reply: hash does not match message");
    expect_request_error("{\"protocol\":\"choria:request:1\",\"message\":\"not base64!\","
                         "\"envelope\":{}}",
                         "request: \"message\" is neither a JSON object nor base64 of one");
}

/* Ruby's Base64.encode64 writes a newline every 60 characters. */
static void test_wrapped_base64_accepted(void **state)
{
    struct wire_request req, back;
    struct wire_transport t;
    struct choir_error err = {0};
    char *inner, *b64, *wrapped, *doc;
    size_t len, n, o = 0;

    (void)state;
    make_request(&req);
    assert_int_equal(wire_request_encode(&req, &inner, &len, &err), 0);
    b64 = wire_base64_encode(inner, len, &n);
    wrapped = malloc(n + n / 60 * 2 + 8);
    for (size_t i = 0; i < n; i++) {
        wrapped[o++] = b64[i];
        if (i % 60 == 59) {
            wrapped[o++] = '\\';
            wrapped[o++] = 'n';
        }
    }
    strcpy(wrapped + o, "\\n");
    assert_true(asprintf(&doc, "{\"protocol\":\"choria:transport:1\",\"data\":\"%s\","
                               "\"headers\":{\"mc_sender\":\"x.example.com\"}}", wrapped) > 0);
    assert_int_equal(wire_transport_decode(doc, strlen(doc), &t, &err), 0);
    assert_int_equal(t.data_len, len);
    assert_memory_equal(t.data, inner, len);
    /* the secure message given as wrapped base64 of the request: accepted */
    assert_int_equal(wire_request_decode(wrapped, strlen(wrapped), &back, &err), -1);
    free(doc);
    assert_true(asprintf(&doc, "\"%s\"", wrapped) > 0);
    {
        json_t *s = json_loads(doc, JSON_DECODE_ANY, NULL);

        assert_non_null(s);
        assert_int_equal(wire_request_decode(json_string_value(s), json_string_length(s), &back,
                                             &err), 0);
        assert_same_envelope(&req.env, &back.env);
        json_decref(s);
    }
    wire_request_clear(&back);
    wire_transport_clear(&t);
    free(doc);
    free(wrapped);
    free(b64);
    free(inner);
    wire_request_clear(&req);
}

static void test_base64_message_accepted(void **state)
{
    struct wire_request back;
    struct choir_error err = {0};
    char *b64 = wire_base64_encode(BODY, strlen(BODY), NULL);
    char *doc = request_doc(NULL, NULL);
    json_t *j = json_loads(doc, 0, NULL);
    char *text;

    (void)state;
    json_object_set_new(j, "message", json_string(b64));
    text = json_dumps(j, JSON_COMPACT);
    assert_int_equal(wire_request_decode(text, strlen(text), &back, &err), 0);
    assert_string_equal(back.body, BODY);
    assert_int_equal(back.body_len, strlen(BODY));
    wire_request_clear(&back);
    free(text);
    /* base64 of something that is not a JSON object: refused */
    free(b64);
    b64 = wire_base64_encode("[1,2]", 5, NULL);
    json_object_set_new(j, "message", json_string(b64));
    text = json_dumps(j, JSON_COMPACT);
    expect_request_error(text, "request: \"message\" is neither a JSON object nor base64 of one");
    free(text);
    /* a JSON object text that does not parse */
    json_object_set_new(j, "message", json_string("{\"a\":}"));
    text = json_dumps(j, JSON_COMPACT);
    expect_request_error(text, "request \"message\": invalid JSON at line 1, column 6: "
                               "unexpected token near '}'");
    free(text);
    json_decref(j);
    free(doc);
    free(b64);
}

static void test_too_large(void **state)
{
    size_t n = WIRE_MAX_BYTES + 1;
    char *doc = malloc(n + 1);
    struct wire_transport t;
    struct wire_request r;
    struct choir_error err = {0};

    (void)state;
    memset(doc, ' ', n);
    doc[0] = '{';
    doc[n - 1] = '}';
    doc[n] = '\0';
    assert_int_equal(wire_transport_decode(doc, n, &t, &err), -1);
    assert_string_equal(err.msg, "transport: document is 1048577 bytes, more than the limit of "
                                 "1048576");
    assert_int_equal(wire_request_decode(doc, n, &r, &err), -1);
    assert_string_equal(err.msg, "request: document is 1048577 bytes, more than the limit of "
                                 "1048576");
    /* exactly the limit is parsed (and here is an empty object) */
    doc[n - 2] = '}';
    doc[n - 1] = '\0';
    assert_int_equal(wire_transport_decode(doc, n - 1, &t, &err), -1);
    assert_string_equal(err.msg, "transport: missing key \"protocol\"");
    free(doc);
}

static void test_duplicate_keys(void **state)
{
    char *doc;

    (void)state;
    expect_transport_error("{\"protocol\":\"choria:transport:1\","
                           "\"protocol\":\"choria:transport:1\","
                           "\"data\":\"e30=\",\"headers\":{}}",
                           "transport: invalid JSON at line 1, column 43: duplicate object key "
                           "near '\"protocol\"'");
    doc = request_doc(NULL, NULL);
    {
        char *p = strstr(doc, "\"senderid\"");
        char *dup;

        assert_true(asprintf(&dup, "%.*s\"ttl\":60,%s", (int)(p - doc), doc, p) > 0);
        expect_request_error(dup, "request: invalid JSON at line 1, column 328: duplicate object "
                                  "key near '\"ttl\"'");
        free(dup);
    }
    free(doc);
}

/* The message bytes are the JSON string after one unescape: escapes of
 * the inner text stay as they were sent. */
static void test_exact_message_bytes(void **state)
{
    static const char doc[] =
        "{\"protocol\":\"choria:secure:request:1\","
        "\"message\":\"{\\\"a\\\":\\\"caf\\\\u00e9 \\\\/x\\\",\\\"b\\\":\\\"\\u00e9\\/\\\"}\","
        "\"signature\":\"AAAA\",\"pubcert\":\"-----BEGIN\"}";
    static const char want[] = "{\"a\":\"caf\\u00e9 \\/x\",\"b\":\"\xc3\xa9/\"}";
    struct wire_secure s;
    struct choir_error err = {0};

    (void)state;
    assert_int_equal(wire_secure_decode(doc, strlen(doc), WIRE_SECURE_REQUEST, &s, &err), 0);
    assert_int_equal(s.message_len, strlen(want));
    assert_memory_equal(s.message, want, s.message_len);
    wire_secure_clear(&s);
}

static void test_request_body_exact(void **state)
{
    /* body with escapes and extra spaces comes back byte for byte */
    static const char body[] = "{ \"data\" : {\"m\":\"\\u00e9\\/\"} }";
    struct wire_request req, back;
    struct choir_error err = {0};
    char *text;
    size_t len;

    (void)state;
    make_request(&req);
    assert_int_equal(wire_request_set_body(&req, body, strlen(body), &err), 0);
    assert_int_equal(wire_request_encode(&req, &text, &len, &err), 0);
    assert_int_equal(wire_request_decode(text, len, &back, &err), 0);
    assert_int_equal(back.body_len, strlen(body));
    assert_memory_equal(back.body, body, back.body_len);
    free(text);
    wire_request_clear(&back);
    /* bodies must be JSON objects */
    assert_int_equal(wire_request_set_body(&req, "[1]", 3, &err), -1);
    assert_string_equal(err.msg, "request body: not a JSON object");
    wire_request_clear(&req);
}

static void test_encoder_refuses_invalid(void **state)
{
    struct wire_request req;
    struct choir_error err = {0};
    char *text = NULL;
    size_t len;

    (void)state;
    make_request(&req);
    req.env.ttl = 5;
    assert_int_equal(wire_request_encode(&req, &text, &len, &err), -1);
    assert_string_equal(err.msg, "request envelope: \"ttl\" is 5, must be at least 30");
    req.env.ttl = 60;
    strcpy(req.env.collective, "bad collective");
    assert_int_equal(wire_request_encode(&req, &text, &len, &err), -1);
    assert_string_equal(err.msg, "request envelope: \"collective\" is not a collective name: "
                                 "\"bad collective\"");
    assert_null(text);
    wire_request_clear(&req);
    assert_int_equal(wire_envelope_init(&req.env, "console", "Alice", "mcollective", "puppet", 0,
                                        &err), -1);
    assert_string_equal(err.msg, "request envelope: \"callerid\" is not \"choria=<certname>\": "
                                 "\"choria=Alice\"");
    wire_request_clear(&req);
}

static void test_filter_other_counted(void **state)
{
    struct wire_request back;
    struct choir_error err = {0};
    char *doc = request_doc("filter", "{\"fact\":[{\"fact\":\"os\",\"operator\":\"==\",\"value\":"
                                      "\"linux\"}],\"cf_class\":[\"web\"],\"agent\":[],"
                                      "\"identity\":[],\"compound\":[]}");

    (void)state;
    assert_int_equal(wire_request_decode(doc, strlen(doc), &back, &err), 0);
    assert_int_equal(back.env.filter.other_count, 2);
    assert_int_equal(back.env.filter.identity_count, 0);
    wire_request_clear(&back);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_newlines_and_errors),
        cmocka_unit_test(test_requestid),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_reply_round_trip),
        cmocka_unit_test(test_secure_request_round_trip),
        cmocka_unit_test(test_secure_reply_round_trip),
        cmocka_unit_test(test_transport_round_trip),
        cmocka_unit_test(test_pack_unpack_request),
        cmocka_unit_test(test_pack_unpack_reply),
        cmocka_unit_test(test_wrong_protocol),
        cmocka_unit_test(test_missing_and_extra_keys),
        cmocka_unit_test(test_field_values),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bad_base64),
        cmocka_unit_test(test_wrapped_base64_accepted),
        cmocka_unit_test(test_base64_message_accepted),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_exact_message_bytes),
        cmocka_unit_test(test_request_body_exact),
        cmocka_unit_test(test_encoder_refuses_invalid),
        cmocka_unit_test(test_filter_other_counted),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
