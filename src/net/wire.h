/* wire.h - the Choria protocol v1 message layers (PROTOCOL.md §3).
 *
 * Every bus message is one JSON document in three layers:
 *
 *   transport  {"protocol":"choria:transport:1","data":base64(secure doc),
 *               "headers":{"reply-to":..,"mc_sender":..}}
 *   secure     {"protocol":"choria:secure:request:1","message":<request>,
 *               "signature":base64,"pubcert":PEM}
 *              {"protocol":"choria:secure:reply:1","message":<reply>,
 *               "hash":base64(sha256(message)),["signature","pubcert"]}
 *   request    {"protocol":"choria:request:1","message":<RPC body>,
 *               "envelope":{requestid,senderid,callerid,collective,agent,
 *                           ttl,time,filter}}
 *   reply      {"protocol":"choria:reply:1","message":<RPC reply>,
 *               "envelope":{requestid,senderid,agent,time}}
 *
 * Contract:
 * - Encoders write the raw JSON text of the inner layer into `message`
 *   and base64 without newlines into `data`; the result is compact JSON,
 *   at most WIRE_MAX_BYTES, and always accepted by the matching decoder.
 * - Decoders take untrusted bytes.  They are strict: every layer's keys
 *   are checked (unknown keys are errors, except transport headers the
 *   Choria schema names), duplicate keys are errors, every string is
 *   bounded, every document is at most WIRE_MAX_BYTES.  They accept base64
 *   with embedded newlines (Ruby wraps at 60 columns), and a `message`
 *   that is base64 of a JSON object instead of the JSON text itself.
 * - wire_secure.message holds the EXACT bytes of the secure layer's
 *   `message` string after JSON unescaping: signatures and hashes are
 *   checked over these bytes, never over a re-serialisation.
 * - Decoders return 0, or -1 with one line in err (class
 *   CHOIR_EXIT_INPUT) naming the layer and the problem, e.g.
 *   `request envelope: unexpected key "extra"`.  Untrusted text quoted in
 *   an error is escaped and truncated.  On failure the output struct is
 *   left cleared.
 * - Nothing here touches the network, the clock (except
 *   wire_request_init) or certificates; net/security.h verifies.
 * - Structs are embedded by the caller; *_clear frees what a struct owns
 *   and zeroes it (safe on a zeroed or already cleared struct). */
#ifndef CHOIR_WIRE_H
#define CHOIR_WIRE_H

#include <stddef.h>

#include "core/error.h"

#define WIRE_MAX_BYTES ((size_t)1 << 20)   /* any one document */
#define WIRE_NAME_MAX 255                  /* identities, agents, collectives */
#define WIRE_CALLERID_MAX (7 + WIRE_NAME_MAX) /* "choria=" + certname */
#define WIRE_REQUESTID_LEN 32
#define WIRE_TTL_MIN 30
#define WIRE_TTL_DEFAULT 60
#define WIRE_TTL_MAX 86400
#define WIRE_TIME_MAX ((long long)1 << 40) /* Unix seconds; far future */
#define WIRE_FILTER_MAX 65536              /* entries in one filter list */
#define WIRE_SIG_MAX 1024                  /* RSA-8192 */
#define WIRE_PUBCERT_MAX 65536
#define WIRE_HASH_LEN 32                   /* SHA-256 */

#define WIRE_PROTO_TRANSPORT "choria:transport:1"
#define WIRE_PROTO_SECURE_REQUEST "choria:secure:request:1"
#define WIRE_PROTO_SECURE_REPLY "choria:secure:reply:1"
#define WIRE_PROTO_REQUEST "choria:request:1"
#define WIRE_PROTO_REPLY "choria:reply:1"
#define WIRE_CALLERID_PREFIX "choria="

/* The request filter.  choir evaluates identity and agent lists; fact,
 * cf_class and compound filters are only counted (other_count), because
 * a node that cannot evaluate them must not act on such a request.
 * Encoders write the three others as empty arrays. */
struct wire_filter {
    char **identity;
    size_t identity_count;
    char **agent;
    size_t agent_count;
    size_t other_count;
};

struct wire_envelope {
    char requestid[WIRE_REQUESTID_LEN + 1]; /* 32 lowercase hex */
    char senderid[WIRE_NAME_MAX + 1];       /* a certname */
    char callerid[WIRE_CALLERID_MAX + 1];   /* "choria=<certname>" */
    char collective[WIRE_NAME_MAX + 1];     /* [A-Za-z0-9_-] */
    char agent[WIRE_NAME_MAX + 1];          /* [A-Za-z0-9_-] */
    long long ttl;                          /* WIRE_TTL_MIN..WIRE_TTL_MAX */
    long long time;                         /* 0..WIRE_TIME_MAX */
    struct wire_filter filter;
};

struct wire_request {
    struct wire_envelope env;
    char *body;        /* RPC body: JSON object text, NUL-terminated */
    size_t body_len;
};

struct wire_reply {
    char requestid[WIRE_REQUESTID_LEN + 1];
    char senderid[WIRE_NAME_MAX + 1];       /* the replying node's certname */
    char agent[WIRE_NAME_MAX + 1];
    long long time;
    char *body;        /* RPC reply: JSON object text, NUL-terminated */
    size_t body_len;
};

/* Transport headers; an empty string means absent. */
struct wire_headers {
    char reply_to[WIRE_NAME_MAX + 1];       /* printable ASCII, no spaces */
    char sender[WIRE_NAME_MAX + 1];         /* mc_sender: a certname */
};

struct wire_transport {
    char *data;        /* the decoded secure document, NUL-terminated */
    size_t data_len;
    struct wire_headers headers;
};

enum wire_secure_kind { WIRE_SECURE_REQUEST, WIRE_SECURE_REPLY };

struct wire_secure {
    enum wire_secure_kind kind;
    char *message;     /* exact bytes as sent, NUL-terminated */
    size_t message_len;
    unsigned char *signature; /* NULL/0 on an unsigned reply */
    size_t sig_len;
    char *pubcert;     /* PEM, NULL on an unsigned reply */
    size_t pubcert_len;
    unsigned char hash[WIRE_HASH_LEN]; /* replies: as sent (decoder checked it) */
    int has_hash;
};

/* Signs data for the secure layer: RSA PKCS#1 v1.5 SHA-256.  On success
 * *sig is a heap buffer (caller frees with free()). */
typedef int wire_sign_fn(void *ctx, const void *data, size_t len, unsigned char **sig,
                         size_t *sig_len, struct choir_error *err);

struct wire_signer {
    wire_sign_fn *sign;
    void *ctx;
    const char *pubcert;   /* PEM of the signing certificate */
};

/* ---- helpers ----------------------------------------------------------- */

/* Standard base64 with padding and no newlines; NUL-terminated heap text. */
char *wire_base64_encode(const void *data, size_t len, size_t *out_len);
/* Decodes standard base64 with padding; '\n' and '\r' anywhere are skipped.
 * Returns 0 with a heap buffer (NUL-terminated, caller frees), or -1. */
int wire_base64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len);

/* A fresh request id: a UUIDv4 from RAND_bytes, 32 lowercase hex. */
int wire_requestid_new(char id[WIRE_REQUESTID_LEN + 1], struct choir_error *err);
int wire_requestid_ok(const char *s);

/* Writes s[0..len) as "..." into buf with non-printable bytes, '"' and
 * '\\' escaped, truncated with "..." to fit: safe for one-line errors. */
void wire_quote(const char *s, size_t len, char *buf, size_t size);

/* Fills env for a new request: fresh requestid, time = now, callerid
 * "choria=<certname>", empty filter.  ttl 0 means WIRE_TTL_DEFAULT. */
int wire_envelope_init(struct wire_envelope *env, const char *senderid, const char *certname,
                       const char *collective, const char *agent, long long ttl,
                       struct choir_error *err);
void wire_filter_add_identity(struct wire_filter *f, const char *identity);
void wire_filter_add_agent(struct wire_filter *f, const char *agent);

/* Copies body (must be a JSON object text) into req->body. */
int wire_request_set_body(struct wire_request *req, const char *body, size_t len,
                          struct choir_error *err);
int wire_reply_set_body(struct wire_reply *rep, const char *body, size_t len,
                        struct choir_error *err);

void wire_filter_clear(struct wire_filter *f);
void wire_envelope_clear(struct wire_envelope *env);
void wire_request_clear(struct wire_request *req);
void wire_reply_clear(struct wire_reply *rep);
void wire_transport_clear(struct wire_transport *t);
void wire_secure_clear(struct wire_secure *s);

/* ---- one layer at a time ----------------------------------------------- */

/* Encoders: *out is NUL-terminated heap text of *out_len bytes. */
int wire_request_encode(const struct wire_request *req, char **out, size_t *out_len,
                        struct choir_error *err);
int wire_reply_encode(const struct wire_reply *rep, char **out, size_t *out_len,
                      struct choir_error *err);
/* A reply's hash is computed here; a reply without signature (sig_len 0)
 * carries neither signature nor pubcert (plain Choria v1). */
int wire_secure_encode(const struct wire_secure *s, char **out, size_t *out_len,
                       struct choir_error *err);
int wire_transport_encode(const struct wire_transport *t, char **out, size_t *out_len,
                          struct choir_error *err);

/* Decoders of untrusted text (need not be NUL-terminated). */
int wire_request_decode(const char *text, size_t len, struct wire_request *req,
                        struct choir_error *err);
int wire_reply_decode(const char *text, size_t len, struct wire_reply *rep,
                      struct choir_error *err);
/* A secure reply's hash is checked against its message here. */
int wire_secure_decode(const char *text, size_t len, enum wire_secure_kind kind,
                       struct wire_secure *s, struct choir_error *err);
int wire_transport_decode(const char *text, size_t len, struct wire_transport *t,
                          struct choir_error *err);

/* ---- all layers -------------------------------------------------------- */

/* request -> secure request signed by signer -> transport text. */
int wire_pack_request(const struct wire_request *req, const struct wire_signer *signer,
                      const struct wire_headers *headers, char **out, size_t *out_len,
                      struct choir_error *err);
/* reply -> secure reply (signed when signer is not NULL) -> transport. */
int wire_pack_reply(const struct wire_reply *rep, const struct wire_signer *signer,
                    const struct wire_headers *headers, char **out, size_t *out_len,
                    struct choir_error *err);

/* transport text -> the three decoded layers.  req is the decode of
 * sec->message, so verifying sec verifies req.  On failure all three are
 * cleared. */
int wire_unpack_request(const char *text, size_t len, struct wire_transport *t,
                        struct wire_secure *sec, struct wire_request *req,
                        struct choir_error *err);
int wire_unpack_reply(const char *text, size_t len, struct wire_transport *t,
                      struct wire_secure *sec, struct wire_reply *rep, struct choir_error *err);

#endif
