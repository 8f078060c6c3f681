/* fuzz_wire.c - libFuzzer target for the bus message decoders.
 *
 * Each input goes through the full request path (transport -> secure
 * request -> request) and the full reply path, and also straight into
 * each single-layer decoder and the base64 decoder.  Whatever decodes is
 * re-encoded and decoded again and must come back equal (what we accept
 * we can also send), and is then verified twice: with a NULL context
 * (must reject) and with a real node context.  The real context is made
 * once, lazily, from a throwaway CA that scripts/testca writes into a
 * temporary directory (source tree from $CHOIR_SOURCE_DIR or the
 * CHOIR_SOURCE_DIR macro); without it only the NULL path runs.  Fuzzed
 * certificates never chain to that CA, so this exercises PEM/X509 parsing
 * and the early rejections.  Every error must be one non-empty line. */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/security.h"
#include "net/wire.h"

#define FUZZ_NODE "fuzz-node.example.com"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct security *node;
static int node_tried;
static char node_dir[64];

static const char *const served[] = {"puppet"};
static const struct security_check check = {served, 1, "status", 0, NULL};

/* ---- the lazy node context ------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void node_cleanup(void)
{
    security_free(node);
    node = NULL;
    if (node_dir[0])
        nftw(node_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *source_dir(void)
{
    const char *src = getenv("CHOIR_SOURCE_DIR");

#ifdef CHOIR_SOURCE_DIR
    if (!src || !*src)
        src = CHOIR_SOURCE_DIR;
#endif
    return src && *src ? src : NULL;
}

static void node_open(const char *src)
{
    struct security_config cfg;
    struct choir_error err;
    char cmd[1024], ssldir[256];

    snprintf(node_dir, sizeof(node_dir), "/tmp/choir-fuzz-wire-XXXXXX");
    if (!mkdtemp(node_dir)) {
        node_dir[0] = '\0';
        return;
    }
    atexit(node_cleanup);
    snprintf(cmd, sizeof(cmd), "'%s/scripts/testca' '%s' --hosts " FUZZ_NODE " --clients '' "
             "--foreign '' --revoked '' --expired '' >/dev/null 2>&1", src, node_dir);
    if (system(cmd) != 0)
        return;
    snprintf(ssldir, sizeof(ssldir), "%s/" FUZZ_NODE "/ssl", node_dir);
    security_config_init(&cfg);
    cfg.ssldir = ssldir;
    cfg.certname = FUZZ_NODE;
    cfg.identity = FUZZ_NODE;
    cfg.replay_max = 1000;
    if (security_open(&node, &cfg, &err) < 0)
        fprintf(stderr, "fuzz_wire: no node context: %s\n", err.msg);
}

static struct security *node_context(void)
{
    const char *src;

    if (node_tried)
        return node;
    node_tried = 1;
    src = source_dir();
    if (src)
        node_open(src);
    if (!node)
        fprintf(stderr, "fuzz_wire: verifying with a NULL context only\n");
    return node;
}

/* ---- invariants -------------------------------------------------------------- */

static void check_one_line(const struct choir_error *err)
{
    size_t n = strnlen(err->msg, sizeof(err->msg));

    if (n == 0 || n == sizeof(err->msg) || memchr(err->msg, '\n', n))
        abort();
}

static void check_reason(const char *reason, enum security_verdict v)
{
    if (!security_verdict_name(v) || !reason[0] || strchr(reason, '\n'))
        abort();
}

static void same_string_lists(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        abort();
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            abort();
}

static void same_request(const struct wire_request *a, const struct wire_request *b)
{
    const struct wire_envelope *x = &a->env, *y = &b->env;

    if (strcmp(x->requestid, y->requestid) || strcmp(x->senderid, y->senderid) ||
        strcmp(x->callerid, y->callerid) || strcmp(x->collective, y->collective) ||
        strcmp(x->agent, y->agent) || x->ttl != y->ttl || x->time != y->time ||
        a->body_len != b->body_len || memcmp(a->body, b->body, a->body_len) != 0)
        abort();
    same_string_lists(x->filter.identity, x->filter.identity_count, y->filter.identity,
                      y->filter.identity_count);
    same_string_lists(x->filter.agent, x->filter.agent_count, y->filter.agent,
                      y->filter.agent_count);
}

static void request_round_trip(const struct wire_request *req)
{
    struct wire_request back;
    struct choir_error err;
    char *text;
    size_t len;

    if (wire_request_encode(req, &text, &len, &err) < 0) {
        if (!strstr(err.msg, "more than the limit"))
            abort();
        return;
    }
    if (wire_request_decode(text, len, &back, &err) < 0)
        abort();
    same_request(req, &back);
    wire_request_clear(&back);
    free(text);
}

static void reply_round_trip(const struct wire_reply *rep)
{
    struct wire_reply back;
    struct choir_error err;
    char *text;
    size_t len;

    if (wire_reply_encode(rep, &text, &len, &err) < 0) {
        if (!strstr(err.msg, "more than the limit"))
            abort();
        return;
    }
    if (wire_reply_decode(text, len, &back, &err) < 0 || strcmp(rep->requestid, back.requestid) ||
        strcmp(rep->senderid, back.senderid) || strcmp(rep->agent, back.agent) ||
        rep->time != back.time || rep->body_len != back.body_len ||
        memcmp(rep->body, back.body, rep->body_len) != 0)
        abort();
    wire_reply_clear(&back);
    free(text);
}

static void secure_round_trip(const struct wire_secure *s)
{
    struct wire_secure back;
    struct choir_error err;
    char *text;
    size_t len;

    if (wire_secure_encode(s, &text, &len, &err) < 0) {
        if (!strstr(err.msg, "more than the limit"))
            abort();
        return;
    }
    if (wire_secure_decode(text, len, s->kind, &back, &err) < 0 ||
        back.message_len != s->message_len || memcmp(back.message, s->message, s->message_len) ||
        back.sig_len != s->sig_len ||
        (s->sig_len && memcmp(back.signature, s->signature, s->sig_len)) ||
        (s->pubcert && strcmp(back.pubcert, s->pubcert)) || back.has_hash != s->has_hash)
        abort();
    wire_secure_clear(&back);
    free(text);
}

static void transport_round_trip(const struct wire_transport *t)
{
    struct wire_transport back;
    struct choir_error err;
    char *text;
    size_t len;

    if (wire_transport_encode(t, &text, &len, &err) < 0) {
        if (!strstr(err.msg, "more than the limit"))
            abort();
        return;
    }
    if (wire_transport_decode(text, len, &back, &err) < 0 || back.data_len != t->data_len ||
        memcmp(back.data, t->data, t->data_len) ||
        strcmp(back.headers.reply_to, t->headers.reply_to) ||
        strcmp(back.headers.sender, t->headers.sender))
        abort();
    wire_transport_clear(&back);
    free(text);
}

/* ---- verification -------------------------------------------------------------- */

static void verify_request(const struct wire_secure *s, const struct wire_request *r)
{
    char reason[SECURITY_REASON_SIZE];
    enum security_verdict v = security_verify_request(NULL, s, r, &check, reason, sizeof(reason));

    if (v != SECURITY_MALFORMED)
        abort();
    if (!node_context())
        return;
    v = security_verify_request(node, s, r, &check, reason, sizeof(reason));
    check_reason(reason, v);
}

static void verify_reply(const struct wire_secure *s, const struct wire_reply *r)
{
    char reason[SECURITY_REASON_SIZE];
    enum security_verdict v = security_verify_reply(NULL, s, r, reason, sizeof(reason));

    if (v != SECURITY_MALFORMED)
        abort();
    if (!node_context())
        return;
    v = security_verify_reply(node, s, r, reason, sizeof(reason));
    check_reason(reason, v);
}

/* ---- paths ------------------------------------------------------------------- */

static void full_request_path(const char *text, size_t size)
{
    struct wire_transport t;
    struct wire_secure s;
    struct wire_request r;
    struct choir_error err;

    if (wire_unpack_request(text, size, &t, &s, &r, &err) < 0) {
        check_one_line(&err);
        if (t.data || s.message || r.body)
            abort();
        return;
    }
    transport_round_trip(&t);
    secure_round_trip(&s);
    request_round_trip(&r);
    verify_request(&s, &r);
    wire_transport_clear(&t);
    wire_secure_clear(&s);
    wire_request_clear(&r);
}

static void full_reply_path(const char *text, size_t size)
{
    struct wire_transport t;
    struct wire_secure s;
    struct wire_reply r;
    struct choir_error err;

    if (wire_unpack_reply(text, size, &t, &s, &r, &err) < 0) {
        check_one_line(&err);
        return;
    }
    verify_reply(&s, &r);
    reply_round_trip(&r);
    wire_transport_clear(&t);
    wire_secure_clear(&s);
    wire_reply_clear(&r);
}

/* Each layer's decoder on the raw input. */
static void single_layers(const char *text, size_t size)
{
    struct wire_transport t;
    struct wire_secure s;
    struct wire_request req;
    struct wire_reply rep;
    struct choir_error err;

    if (wire_transport_decode(text, size, &t, &err) == 0) {
        transport_round_trip(&t);
        wire_transport_clear(&t);
    } else {
        check_one_line(&err);
    }
    for (int k = WIRE_SECURE_REQUEST; k <= WIRE_SECURE_REPLY; k++) {
        if (wire_secure_decode(text, size, (enum wire_secure_kind)k, &s, &err) == 0) {
            secure_round_trip(&s);
            wire_secure_clear(&s);
        } else {
            check_one_line(&err);
        }
    }
    if (wire_request_decode(text, size, &req, &err) == 0) {
        request_round_trip(&req);
        wire_request_clear(&req);
    } else {
        check_one_line(&err);
    }
    if (wire_reply_decode(text, size, &rep, &err) == 0) {
        reply_round_trip(&rep);
        wire_reply_clear(&rep);
    } else {
        check_one_line(&err);
    }
}

static void base64_path(const char *text, size_t size)
{
    unsigned char *raw, *again;
    size_t n, m, elen;
    char *enc;

    if (wire_base64_decode(text, size, &raw, &n) == 0) {
        enc = wire_base64_encode(raw, n, &elen);
        if (wire_base64_decode(enc, elen, &again, &m) < 0 || m != n || memcmp(raw, again, n))
            abort();
        free(again);
        free(enc);
        free(raw);
    }
    enc = wire_base64_encode(text, size, &elen);
    if (wire_base64_decode(enc, elen, &raw, &n) < 0 || n != size ||
        (size && memcmp(raw, text, size)))
        abort();
    free(raw);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;

    full_request_path(text, size);
    full_reply_path(text, size);
    single_layers(text, size);
    base64_path(text, size);
    return 0;
}
