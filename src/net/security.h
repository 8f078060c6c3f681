/* security.h - x509 identities and the caller rules of the signed RPC bus.
 *
 * Contract:
 * - security_open loads Puppet's ssldir layout: certs/ca.pem (the CA, may
 *   be a bundle), crl.pem (optional; when present every peer certificate
 *   is checked against it), certs/<certname>.pem and
 *   private_keys/<certname>.pem (an RSA key that must match the
 *   certificate, whose CN must be the certname).  Errors name the file.
 * - security_sign signs with RSA PKCS#1 v1.5 over SHA-256, as Choria does.
 * - security_verify_request decides whether a node may act on a request
 *   (PROTOCOL.md §3 "Who may call"): the pubcert chains to the CA, is in
 *   date and not revoked; the signature is valid over the exact message
 *   bytes; the certificate's CN is the callerid's certname unless the CN
 *   matches the privileged regex; the caller matches the allow regex (or
 *   is privileged); time is within ttl (plus clock skew) and not in the
 *   future (beyond the skew); the requestid was not seen within its ttl
 *   (replay cache, bounded, oldest evicted first); collective and agent
 *   are served; the filter selects this node; the action policy allows it.
 *   The request must be the decode of the secure request's message (as
 *   wire_unpack_request gives them).
 * - security_verify_reply decides whether the console may believe a reply
 *   or run event: the hash matches, the reply is signed by a pubcert that
 *   chains, is in date and not revoked, and whose CN is the replying
 *   identity (envelope senderid).
 * - A process may also serve other identities with its own key (choird
 *   --simulate): security_identity_open loads <ssldir>/certs/<certname>.pem
 *   for one, and refuses it unless the certificate passes the checks a
 *   console applies to a reply's pubcert (a leaf with an RSA key, chains
 *   to the CA, not revoked when crl.pem is present, in date), its CN is
 *   certname, and it certifies the context's private key.  Errors are one
 *   line naming the file and the failed check (CHOIR_EXIT_INPUT).  An
 *   identity holds only its name and certificate PEM (no replay cache or
 *   key of its own), borrows the context (so one thread at a time uses
 *   both), and must be freed before it.  Its signer signs with the
 *   context's key and sends the identity's certificate.
 * - Verdicts come from one X-macro; each verification returns one, fills
 *   a one-line human reason (untrusted text quoted) and bumps a per-verdict
 *   counter.  A NULL context verifies nothing and returns
 *   SECURITY_MALFORMED.
 * - Regexes are POSIX extended, unanchored (anchor them with ^ and $).  An
 *   empty regex matches nothing.
 * - Policy file: lines `allow|deny CALLER_REGEX AGENT ACTION` (agent and
 *   action may be `*`), blank lines and `#` comments ignored; the first
 *   matching line decides; a policy with no matching line denies; no
 *   policy file allows.  Errors are "FILE:LINE: reason".
 * - OpenSSL types and errors stay inside security.c.  A context is used by
 *   one thread at a time (the replay cache and counters are not locked). */
#ifndef CHOIR_SECURITY_H
#define CHOIR_SECURITY_H

#include <stddef.h>

#include "core/error.h"
#include "net/wire.h"

#define SECURITY_VERDICTS(X)                                                                  \
    X(SECURITY_OK, "ok", "authentic and allowed")                                             \
    X(SECURITY_MALFORMED, "malformed", "the message is incomplete or inconsistent")           \
    X(SECURITY_BAD_CERTIFICATE, "bad_certificate", "the certificate cannot be used")          \
    X(SECURITY_UNTRUSTED_CERTIFICATE, "untrusted_certificate",                                \
      "the certificate does not chain to the Puppet CA")                                      \
    X(SECURITY_REVOKED, "revoked", "the certificate is revoked")                              \
    X(SECURITY_CERTIFICATE_EXPIRED, "certificate_expired", "the certificate has expired")     \
    X(SECURITY_CERTIFICATE_NOT_YET_VALID, "certificate_not_yet_valid",                        \
      "the certificate is not valid yet")                                                     \
    X(SECURITY_BAD_SIGNATURE, "bad_signature", "the signature does not verify")               \
    X(SECURITY_CALLERID_MISMATCH, "callerid_mismatch",                                        \
      "the callerid is not the certificate's name")                                           \
    X(SECURITY_CALLER_NOT_ALLOWED, "caller_not_allowed", "the caller is not in the allow list") \
    X(SECURITY_EXPIRED, "expired", "the request is older than its ttl")                       \
    X(SECURITY_FROM_THE_FUTURE, "from_the_future", "the request time is in the future")       \
    X(SECURITY_REPLAYED, "replayed", "the request id was seen before")                       \
    X(SECURITY_WRONG_COLLECTIVE, "wrong_collective", "the collective is not served here")     \
    X(SECURITY_UNKNOWN_AGENT, "unknown_agent", "the agent is not served here")                \
    X(SECURITY_NOT_FOR_THIS_NODE, "not_for_this_node", "the filter does not select this node") \
    X(SECURITY_POLICY_DENIED, "policy_denied", "the action policy denies it")                 \
    X(SECURITY_TOO_LARGE, "too_large", "a field is larger than allowed")                      \
    X(SECURITY_REPLY_IDENTITY_MISMATCH, "reply_identity_mismatch",                            \
      "the reply is signed by another identity")                                              \
    X(SECURITY_BAD_HASH, "bad_hash", "the hash does not match the message")

enum security_verdict {
#define SECURITY_VERDICT_ENUM(id, name, meaning) id,
    SECURITY_VERDICTS(SECURITY_VERDICT_ENUM)
#undef SECURITY_VERDICT_ENUM
    SECURITY_VERDICT_COUNT
};

/* "ok", "bad_signature", ...; NULL for an out-of-range value. */
const char *security_verdict_name(enum security_verdict v);
const char *security_verdict_meaning(enum security_verdict v);

#define SECURITY_ALLOW_DEFAULT "\\.mcollective$"
#define SECURITY_PRIVILEGED_DEFAULT "\\.privileged\\.mcollective$"
#define SECURITY_COLLECTIVE_DEFAULT "mcollective"
#define SECURITY_CLOCK_SKEW_DEFAULT 60
#define SECURITY_CLOCK_SKEW_MAX 3600
#define SECURITY_REPLAY_MAX_DEFAULT 100000
#define SECURITY_REPLAY_MAX 10000000
#define SECURITY_REASON_SIZE 512

struct security_config {
    const char *ssldir;
    const char *certname;
    const char *allow_regex;      /* NULL: SECURITY_ALLOW_DEFAULT */
    const char *privileged_regex; /* NULL: SECURITY_PRIVILEGED_DEFAULT */
    const char *policy_file;      /* NULL: no policy, every action allowed */
    long clock_skew;              /* seconds, 0..SECURITY_CLOCK_SKEW_MAX */
    const char *collective;       /* NULL: SECURITY_COLLECTIVE_DEFAULT */
    const char *identity;         /* this node's identity; NULL on the console */
    size_t replay_max;            /* replay cache entries; 0: the default */
};

/* What the verifying program serves. */
struct security_check {
    const char *const *agents;    /* agents served here */
    size_t agent_count;
    const char *action;           /* checked against the policy; NULL: not here */
    int any_identity;             /* several identities served: the caller matches
                                     the identity filter (rpc.h) ... */
    const char *target;           /* ... and names the identity a directed copy was
                                     sent to, which joins the request id in the
                                     replay cache (NULL: a broadcast) */
};

struct security;
struct security_policy;

/* Fills cfg with the defaults (ssldir and certname NULL). */
void security_config_init(struct security_config *cfg);

int security_open(struct security **sec, const struct security_config *cfg,
                  struct choir_error *err);
void security_free(struct security *sec);

const char *security_certname(const struct security *sec);
const char *security_pubcert_pem(const struct security *sec);

/* On success *sig is a heap buffer of *sig_len bytes (caller frees). */
int security_sign(struct security *sec, const void *data, size_t len, unsigned char **sig,
                  size_t *sig_len, struct choir_error *err);
/* A signer for wire_pack_request / wire_pack_reply. */
struct wire_signer security_signer(struct security *sec);

/* Another identity served with sec's key (see the contract above). */
struct security_identity;

int security_identity_open(struct security *sec, const char *certname,
                           struct security_identity **out, struct choir_error *err);
void security_identity_free(struct security_identity *id);
const char *security_identity_name(const struct security_identity *id);
/* A signer that signs with the context's key and sends this identity's
 * certificate as pubcert. */
struct wire_signer security_identity_signer(struct security_identity *id);

/* reason: SECURITY_REASON_SIZE bytes recommended; may be NULL. */
enum security_verdict security_verify_request(struct security *sec, const struct wire_secure *sr,
                                              const struct wire_request *req,
                                              const struct security_check *check, char *reason,
                                              size_t reason_size);
/* Both verifications keep the certificates that parsed and chained, by the
 * SHA-256 of their PEM, and check a cached one's chain again after 60 s
 * (its dates; the CRL is read once at security_open): the signature of
 * every message is always checked.  A context is used by one thread. */
enum security_verdict security_verify_reply(struct security *sec, const struct wire_secure *sr,
                                            const struct wire_reply *rep, char *reason,
                                            size_t reason_size);

/* How many verifications returned v. */
unsigned long long security_counter(const struct security *sec, enum security_verdict v);

/* 1 when the policy allows certname to call agent/action, else 0.  *line
 * (if not NULL) gets the deciding line, 0 for the default. */
int security_policy_allows(const struct security *sec, const char *certname, const char *agent,
                           const char *action, unsigned *line);

/* The policy format on its own (origin names the text in errors). */
int security_policy_parse(const char *buf, size_t len, const char *origin,
                          struct security_policy **out, struct choir_error *err);
int security_policy_match(const struct security_policy *p, const char *certname,
                          const char *agent, const char *action, unsigned *line);
void security_policy_free(struct security_policy *p);

#endif
