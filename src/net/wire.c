/* wire.c - the Choria protocol v1 message layers (see wire.h).
 *
 * Decoding is always: bound the size, parse with jansson rejecting
 * duplicate keys, check "protocol" first (so a document of the wrong
 * layer says so), then the exact key set, then each field's type and
 * bounds while copying it out, then the meaning of the copied fields
 * (the same *_check functions the encoders run, so whatever we encode we
 * also accept). */
#include "net/wire.h"

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/names.h"
#include "core/xalloc.h"

#define QUOTE_SIZE 72
#define PROTOCOL_MAX 64

/* One allowed key of a JSON object. */
struct wire_key {
    const char *name;
    int required;
};

/* ---- errors -------------------------------------------------------------- */

static int wire_fail(struct choir_error *err, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int wire_fail(struct choir_error *err, const char *what, const char *fmt, ...)
{
    char why[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    error_set(err, CHOIR_EXIT_INPUT, "%s: %s", what, why);
    return -1;
}

/* Appends the escape of byte c to out; returns its length (1..4). */
static size_t wire_quote_char(unsigned char c, char *out)
{
    if (c == '"' || c == '\\') {
        out[0] = '\\';
        out[1] = (char)c;
        return 2;
    }
    if (c >= 0x20 && c < 0x7f) {
        out[0] = (char)c;
        return 1;
    }
    snprintf(out, 5, "\\x%02x", c);
    return 4;
}

void wire_quote(const char *s, size_t len, char *buf, size_t size)
{
    size_t o = 0;

    if (size < 8) {
        if (size)
            buf[0] = '\0';
        return;
    }
    buf[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        char esc[5];
        size_t n = wire_quote_char((unsigned char)s[i], esc);

        if (o + n + 5 > size) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, esc, n);
        o += n;
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

/* Replaces non-printable bytes of a library message so it stays one line. */
static void wire_printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

/* ---- base64 -------------------------------------------------------------- */

static const char wire_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *wire_base64_encode(const void *data, size_t len, size_t *out_len)
{
    const unsigned char *in = data;
    char *out, *p;
    size_t i;

    if (len > SIZE_MAX / 4 * 3 - 3)
        abort(); /* cannot be sized; callers bound their input far below */
    out = p = xmalloc((len + 2) / 3 * 4 + 1);
    for (i = 0; i + 2 < len; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];

        *p++ = wire_b64[v >> 18 & 63];
        *p++ = wire_b64[v >> 12 & 63];
        *p++ = wire_b64[v >> 6 & 63];
        *p++ = wire_b64[v & 63];
    }
    if (i < len) {
        unsigned long v = (unsigned long)in[i] << 16;

        if (i + 1 < len)
            v |= (unsigned long)in[i + 1] << 8;

        *p++ = wire_b64[v >> 18 & 63];
        *p++ = wire_b64[v >> 12 & 63];
        *p++ = i + 1 < len ? wire_b64[v >> 6 & 63] : '=';
        *p++ = '=';
    }
    *p = '\0';
    if (out_len)
        *out_len = (size_t)(p - out);
    return out;
}

static int wire_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Writes the 1 or 2 bytes of a final group of `digits` (2 or 3) digits;
 * `pad` must complete the group to 4. */
static int wire_b64_tail(unsigned long acc, size_t digits, size_t pad, unsigned char *out,
                         size_t *o)
{
    if (digits == 0)
        return pad == 0 ? 0 : -1;
    if (digits + pad != 4 || digits < 2)
        return -1;
    acc <<= 6 * pad;
    out[(*o)++] = (unsigned char)(acc >> 16);
    if (digits == 3)
        out[(*o)++] = (unsigned char)(acc >> 8);
    return 0;
}

int wire_base64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len)
{
    unsigned char *buf = xmalloc(len / 4 * 3 + 4);
    unsigned long acc = 0;
    size_t digits = 0, pad = 0, o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        int v = wire_b64_value(c);

        if (c == '\n' || c == '\r')
            continue;
        if (c == '=' && ++pad <= 2)
            continue;
        if (v < 0 || pad)
            goto bad;
        acc = acc << 6 | (unsigned long)v;
        if (++digits == 4) {
            buf[o++] = (unsigned char)(acc >> 16);
            buf[o++] = (unsigned char)(acc >> 8);
            buf[o++] = (unsigned char)acc;
            acc = 0;
            digits = 0;
        }
    }
    if (wire_b64_tail(acc, digits, pad, buf, &o) < 0)
        goto bad;
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return 0;
bad:
    free(buf);
    *out = NULL;
    *out_len = 0;
    return -1;
}

/* ---- small predicates ---------------------------------------------------- */

int wire_requestid_ok(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == WIRE_REQUESTID_LEN;
}

/* Agent and collective names: 1..WIRE_NAME_MAX of [A-Za-z0-9_-]. */
static int wire_token_ok(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return i >= 1 && i <= WIRE_NAME_MAX;
}

static int wire_certname_ok(const char *s)
{
    return names_certname_ok(s, strlen(s));
}

/* AMQP queue names choir uses: printable ASCII without spaces. */
static int wire_queue_ok(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return i >= 1 && i <= WIRE_NAME_MAX;
}

static int wire_callerid_ok(const char *s)
{
    size_t n = strlen(WIRE_CALLERID_PREFIX);

    return strncmp(s, WIRE_CALLERID_PREFIX, n) == 0 && wire_certname_ok(s + n);
}

static int wire_sha256(const void *data, size_t len, unsigned char md[WIRE_HASH_LEN])
{
    unsigned int n = 0;

    return EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) == 1 && n == WIRE_HASH_LEN ? 0 : -1;
}

/* ---- requestid, envelope, bodies ----------------------------------------- */

int wire_requestid_new(char id[WIRE_REQUESTID_LEN + 1], struct choir_error *err)
{
    unsigned char b[16];

    if (RAND_bytes(b, sizeof(b)) != 1) {
        char why[256];

        ERR_error_string_n(ERR_get_error(), why, sizeof(why));
        ERR_clear_error();
        error_set(err, CHOIR_EXIT_INTERNAL, "cannot make a request id: %s", why);
        return -1;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    for (size_t i = 0; i < sizeof(b); i++)
        snprintf(id + 2 * i, 3, "%02x", b[i]);
    return 0;
}

/* Copies s into a fixed field; fails when it does not fit. */
static int wire_copy(char *dst, size_t size, const char *s, const char *what, const char *field,
                     struct choir_error *err)
{
    size_t len = s ? strlen(s) : 0;

    if (len >= size)
        return wire_fail(err, what, "\"%s\" is longer than %zu bytes", field, size - 1);
    memcpy(dst, s ? s : "", len + 1);
    return 0;
}

static void wire_list_add(char ***list, size_t *count, const char *s)
{
    *list = xreallocarray(*list, *count + 1, sizeof(**list));
    (*list)[(*count)++] = xstrdup(s);
}

void wire_filter_add_identity(struct wire_filter *f, const char *identity)
{
    wire_list_add(&f->identity, &f->identity_count, identity);
}

void wire_filter_add_agent(struct wire_filter *f, const char *agent)
{
    wire_list_add(&f->agent, &f->agent_count, agent);
}

static int wire_envelope_check(const struct wire_envelope *env, struct choir_error *err);

int wire_envelope_init(struct wire_envelope *env, const char *senderid, const char *certname,
                       const char *collective, const char *agent, long long ttl,
                       struct choir_error *err)
{
    const char *what = "request envelope";
    char callerid[WIRE_CALLERID_MAX + 2];

    memset(env, 0, sizeof(*env));
    snprintf(callerid, sizeof(callerid), "%s%s", WIRE_CALLERID_PREFIX, certname ? certname : "");
    if (wire_requestid_new(env->requestid, err) < 0 ||
        wire_copy(env->senderid, sizeof(env->senderid), senderid, what, "senderid", err) < 0 ||
        wire_copy(env->callerid, sizeof(env->callerid), callerid, what, "callerid", err) < 0 ||
        wire_copy(env->collective, sizeof(env->collective), collective, what, "collective",
                  err) < 0 ||
        wire_copy(env->agent, sizeof(env->agent), agent, what, "agent", err) < 0)
        return -1;
    env->ttl = ttl ? ttl : WIRE_TTL_DEFAULT;
    env->time = (long long)time(NULL);
    return wire_envelope_check(env, err);
}

/* ---- JSON helpers -------------------------------------------------------- */

static json_t *wire_load(const char *text, size_t len, const char *what, struct choir_error *err)
{
    json_error_t jerr;
    json_t *root;

    if (len > WIRE_MAX_BYTES) {
        wire_fail(err, what, "document is %zu bytes, more than the limit of %zu", len,
                  WIRE_MAX_BYTES);
        return NULL;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        wire_printable(jerr.text);
        wire_fail(err, what, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                  jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        wire_fail(err, what, "not a JSON object");
        return NULL;
    }
    return root;
}

static int wire_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int wire_starts_object(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len && wire_is_blank(s[i]))
        i++;
    return i < len && s[i] == '{';
}

/* JSON text may come as base64 of itself: when *s does not start with
 * '{', replaces it by its decoding (kept in *owned), which must. */
static int wire_unwrap(const char **s, size_t *len, unsigned char **owned)
{
    size_t n;

    *owned = NULL;
    if (wire_starts_object(*s, *len))
        return 0;
    if (wire_base64_decode(*s, *len, owned, &n) < 0)
        return -1;
    if (!wire_starts_object((const char *)*owned, n)) {
        free(*owned);
        *owned = NULL;
        return -1;
    }
    *s = (const char *)*owned;
    *len = n;
    return 0;
}

/* Unwraps and parses a document that may be base64 of JSON. */
static json_t *wire_load_unwrapped(const char *text, size_t len, const char *what,
                                   struct choir_error *err)
{
    unsigned char *owned;
    json_t *root;

    if (len > WIRE_MAX_BYTES) {
        wire_fail(err, what, "document is %zu bytes, more than the limit of %zu", len,
                  WIRE_MAX_BYTES);
        return NULL;
    }
    if (wire_unwrap(&text, &len, &owned) < 0) {
        wire_fail(err, what, "neither a JSON object nor base64 of one");
        return NULL;
    }
    root = wire_load(text, len, what, err);
    free(owned);
    return root;
}

static void wire_quote_key(const char *key, char *buf, size_t size)
{
    wire_quote(key, strlen(key), buf, size);
}

/* Every key of obj must be in keys; every required one must be there. */
static int wire_check_keys(json_t *obj, const struct wire_key *keys, const char *what,
                           struct choir_error *err)
{
    const char *key;
    json_t *value;
    size_t i;

    json_object_foreach(obj, key, value) {
        char q[QUOTE_SIZE];

        for (i = 0; keys[i].name && strcmp(keys[i].name, key) != 0; i++)
            ;
        if (!keys[i].name) {
            wire_quote_key(key, q, sizeof(q));
            return wire_fail(err, what, "unexpected key %s", q);
        }
    }
    for (i = 0; keys[i].name; i++)
        if (keys[i].required && !json_object_get(obj, keys[i].name))
            return wire_fail(err, what, "missing key \"%s\"", keys[i].name);
    return 0;
}

/* A string field of max bytes at most; empty strings are refused. */
static int wire_get_string(json_t *obj, const char *key, size_t max, const char **s, size_t *len,
                           const char *what, struct choir_error *err)
{
    json_t *v = json_object_get(obj, key);

    *s = "";
    *len = 0;
    if (!v)
        return wire_fail(err, what, "missing key \"%s\"", key);
    if (!json_is_string(v))
        return wire_fail(err, what, "\"%s\" is not a string", key);
    *s = json_string_value(v);
    *len = json_string_length(v);
    if (*len == 0)
        return wire_fail(err, what, "\"%s\" is empty", key);
    if (*len > max)
        return wire_fail(err, what, "\"%s\" is longer than %zu bytes", key, max);
    return 0;
}

static int wire_get_fixed(json_t *obj, const char *key, char *buf, size_t size, const char *what,
                          struct choir_error *err)
{
    const char *s;
    size_t len;

    if (wire_get_string(obj, key, size - 1, &s, &len, what, err) < 0)
        return -1;
    memcpy(buf, s, len + 1);
    return 0;
}

static int wire_get_int(json_t *obj, const char *key, long long *out, const char *what,
                        struct choir_error *err)
{
    json_t *v = json_object_get(obj, key);

    if (!v)
        return wire_fail(err, what, "missing key \"%s\"", key);
    if (!json_is_integer(v))
        return wire_fail(err, what, "\"%s\" is not an integer", key);
    *out = (long long)json_integer_value(v);
    return 0;
}

/* "protocol" first, so a document of another layer says what it is. */
static int wire_check_protocol(json_t *root, const char *expected, const char *what,
                               struct choir_error *err)
{
    const char *s;
    size_t len;
    char q[QUOTE_SIZE];

    if (wire_get_string(root, "protocol", PROTOCOL_MAX, &s, &len, what, err) < 0)
        return -1;
    if (strcmp(s, expected) == 0)
        return 0;
    wire_quote(s, len, q, sizeof(q));
    return wire_fail(err, what, "\"protocol\" is %s, expected \"%s\"", q, expected);
}

static int wire_check_doc(json_t *root, const char *protocol, const struct wire_key *keys,
                          const char *what, struct choir_error *err)
{
    if (wire_check_protocol(root, protocol, what, err) < 0)
        return -1;
    return wire_check_keys(root, keys, what, err);
}

/* The RPC body in "message": a JSON object text, or base64 of one. */
static int wire_get_body(json_t *root, char **body, size_t *body_len, const char *what,
                         struct choir_error *err)
{
    char sub[64];
    const char *s;
    unsigned char *owned;
    size_t len;
    json_t *obj;

    if (wire_get_string(root, "message", WIRE_MAX_BYTES, &s, &len, what, err) < 0)
        return -1;
    if (wire_unwrap(&s, &len, &owned) < 0)
        return wire_fail(err, what, "\"message\" is neither a JSON object nor base64 of one");
    snprintf(sub, sizeof(sub), "%s \"message\"", what);
    obj = wire_load(s, len, sub, err);
    if (obj) {
        json_decref(obj);
        *body = xstrndup(s, len);
        *body_len = len;
    }
    free(owned);
    return obj ? 0 : -1;
}

/* Compact text of root, bounded; takes the reference of root. */
static int wire_dump(json_t *root, char **out, size_t *out_len, const char *what,
                     struct choir_error *err)
{
    char *text;

    if (!root)
        return wire_fail(err, what, "cannot encode (a string is not valid UTF-8)");
    text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text)
        return wire_fail(err, what, "cannot encode (out of memory)");
    *out_len = strlen(text);
    if (*out_len > WIRE_MAX_BYTES) {
        free(text);
        return wire_fail(err, what, "encoded document is %zu bytes, more than the limit of %zu",
                         *out_len, WIRE_MAX_BYTES);
    }
    *out = text;
    return 0;
}

/* json_object_set_new that remembers a failure in *ok. */
static void wire_set(json_t *obj, const char *key, json_t *value, int *ok)
{
    if (!value || json_object_set_new(obj, key, value) < 0)
        *ok = 0;
}

static json_t *wire_string_list(char *const *list, size_t count, int *ok)
{
    json_t *a = json_array();

    for (size_t i = 0; a && i < count; i++)
        if (json_array_append_new(a, json_string(list[i])) < 0)
            *ok = 0;
    if (!a)
        *ok = 0;
    return a;
}

static int wire_body_check(const char *body, size_t len, const char *what,
                           struct choir_error *err)
{
    json_t *obj;

    if (!body || !len)
        return wire_fail(err, what, "no message body");
    obj = wire_load(body, len, what, err);
    json_decref(obj);
    return obj ? 0 : -1;
}

int wire_request_set_body(struct wire_request *req, const char *body, size_t len,
                          struct choir_error *err)
{
    if (wire_body_check(body, len, "request body", err) < 0)
        return -1;
    free(req->body);
    req->body = xstrndup(body, len);
    req->body_len = len;
    return 0;
}

int wire_reply_set_body(struct wire_reply *rep, const char *body, size_t len,
                        struct choir_error *err)
{
    if (wire_body_check(body, len, "reply body", err) < 0)
        return -1;
    free(rep->body);
    rep->body = xstrndup(body, len);
    rep->body_len = len;
    return 0;
}

/* ---- clear --------------------------------------------------------------- */

static void wire_list_free(char **list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(list[i]);
    free(list);
}

void wire_filter_clear(struct wire_filter *f)
{
    wire_list_free(f->identity, f->identity_count);
    wire_list_free(f->agent, f->agent_count);
    memset(f, 0, sizeof(*f));
}

void wire_envelope_clear(struct wire_envelope *env)
{
    wire_filter_clear(&env->filter);
    memset(env, 0, sizeof(*env));
}

void wire_request_clear(struct wire_request *req)
{
    wire_envelope_clear(&req->env);
    free(req->body);
    memset(req, 0, sizeof(*req));
}

void wire_reply_clear(struct wire_reply *rep)
{
    free(rep->body);
    memset(rep, 0, sizeof(*rep));
}

void wire_transport_clear(struct wire_transport *t)
{
    free(t->data);
    memset(t, 0, sizeof(*t));
}

void wire_secure_clear(struct wire_secure *s)
{
    free(s->message);
    free(s->signature);
    free(s->pubcert);
    memset(s, 0, sizeof(*s));
}

/* ---- meaning of fields (shared by encoders and decoders) ----------------- */

static int wire_bad_value(const char *field, const char *value, const char *rule, const char *what,
                          struct choir_error *err)
{
    char q[QUOTE_SIZE];

    wire_quote(value, strlen(value), q, sizeof(q));
    return wire_fail(err, what, "\"%s\" is not %s: %s", field, rule, q);
}

static int wire_check_requestid(const char *id, const char *what, struct choir_error *err)
{
    if (wire_requestid_ok(id))
        return 0;
    return wire_fail(err, what, "\"requestid\" is not 32 lowercase hex digits");
}

static int wire_check_time(long long t, const char *what, struct choir_error *err)
{
    if (t >= 0 && t <= WIRE_TIME_MAX)
        return 0;
    return wire_fail(err, what, "\"time\" is %lld, out of range 0..%lld", t, WIRE_TIME_MAX);
}

static int wire_check_ttl(long long ttl, const char *what, struct choir_error *err)
{
    if (ttl < WIRE_TTL_MIN)
        return wire_fail(err, what, "\"ttl\" is %lld, must be at least %d", ttl, WIRE_TTL_MIN);
    if (ttl > WIRE_TTL_MAX)
        return wire_fail(err, what, "\"ttl\" is %lld, must be at most %d", ttl, WIRE_TTL_MAX);
    return 0;
}

static int wire_check_filter(const struct wire_filter *f, struct choir_error *err)
{
    const char *what = "request filter";
    size_t i;

    if (f->identity_count > WIRE_FILTER_MAX || f->agent_count > WIRE_FILTER_MAX)
        return wire_fail(err, what, "more than %d entries", WIRE_FILTER_MAX);
    for (i = 0; i < f->identity_count; i++) {
        size_t len = strlen(f->identity[i]);

        if (len == 0 || len > WIRE_NAME_MAX)
            return wire_fail(err, what, "\"identity\" entry %zu is empty or longer than %d bytes",
                             i + 1, WIRE_NAME_MAX);
    }
    for (i = 0; i < f->agent_count; i++)
        if (!wire_token_ok(f->agent[i]))
            return wire_bad_value("agent", f->agent[i], "a list of agent names", what, err);
    return 0;
}

static int wire_envelope_check(const struct wire_envelope *env, struct choir_error *err)
{
    const char *what = "request envelope";

    if (wire_check_requestid(env->requestid, what, err) < 0)
        return -1;
    if (!wire_certname_ok(env->senderid))
        return wire_bad_value("senderid", env->senderid, "a certname", what, err);
    if (!wire_callerid_ok(env->callerid))
        return wire_bad_value("callerid", env->callerid, "\"choria=<certname>\"", what, err);
    if (!wire_token_ok(env->collective))
        return wire_bad_value("collective", env->collective, "a collective name", what, err);
    if (!wire_token_ok(env->agent))
        return wire_bad_value("agent", env->agent, "an agent name", what, err);
    if (wire_check_ttl(env->ttl, what, err) < 0 || wire_check_time(env->time, what, err) < 0)
        return -1;
    return wire_check_filter(&env->filter, err);
}

static int wire_reply_check(const struct wire_reply *rep, struct choir_error *err)
{
    const char *what = "reply envelope";

    if (wire_check_requestid(rep->requestid, what, err) < 0)
        return -1;
    if (!wire_certname_ok(rep->senderid))
        return wire_bad_value("senderid", rep->senderid, "a certname", what, err);
    if (!wire_token_ok(rep->agent))
        return wire_bad_value("agent", rep->agent, "an agent name", what, err);
    return wire_check_time(rep->time, what, err);
}

static int wire_headers_check(const struct wire_headers *h, struct choir_error *err)
{
    const char *what = "transport headers";

    if (h->reply_to[0] && !wire_queue_ok(h->reply_to))
        return wire_bad_value("reply-to", h->reply_to, "a queue name", what, err);
    if (h->sender[0] && !wire_certname_ok(h->sender))
        return wire_bad_value("mc_sender", h->sender, "a certname", what, err);
    return 0;
}

/* ---- request ------------------------------------------------------------- */

/* Reads the string list filter[key] into *list (when list is not NULL),
 * else only counts it into *count. */
static int wire_get_list(json_t *filter, const char *key, char ***list, size_t *count,
                         struct choir_error *err)
{
    const char *what = "request filter";
    json_t *a = json_object_get(filter, key), *item;
    size_t i;

    if (!json_is_array(a))
        return wire_fail(err, what, "\"%s\" is not an array", key);
    if (json_array_size(a) > WIRE_FILTER_MAX)
        return wire_fail(err, what, "\"%s\" has more than %d entries", key, WIRE_FILTER_MAX);
    if (!list) {
        *count += json_array_size(a);
        return 0;
    }
    json_array_foreach(a, i, item) {
        if (!json_is_string(item))
            return wire_fail(err, what, "\"%s\" entry %zu is not a string", key, i + 1);
        wire_list_add(list, count, json_string_value(item));
    }
    return 0;
}

static int wire_get_filter(json_t *env, struct wire_filter *f, struct choir_error *err)
{
    static const struct wire_key keys[] = {
        {"fact", 1}, {"cf_class", 1}, {"agent", 1}, {"identity", 1}, {"compound", 1}, {NULL, 0},
    };
    json_t *filter = json_object_get(env, "filter");

    if (!json_is_object(filter))
        return wire_fail(err, "request envelope", "\"filter\" is not an object");
    if (wire_check_keys(filter, keys, "request filter", err) < 0 ||
        wire_get_list(filter, "fact", NULL, &f->other_count, err) < 0 ||
        wire_get_list(filter, "cf_class", NULL, &f->other_count, err) < 0 ||
        wire_get_list(filter, "compound", NULL, &f->other_count, err) < 0 ||
        wire_get_list(filter, "agent", &f->agent, &f->agent_count, err) < 0)
        return -1;
    return wire_get_list(filter, "identity", &f->identity, &f->identity_count, err);
}

static int wire_get_envelope(json_t *root, struct wire_envelope *env, struct choir_error *err)
{
    static const struct wire_key keys[] = {
        {"requestid", 1}, {"senderid", 1}, {"callerid", 1}, {"collective", 1},
        {"agent", 1},     {"ttl", 1},      {"time", 1},     {"filter", 1},
        {NULL, 0},
    };
    const char *what = "request envelope";
    json_t *e = json_object_get(root, "envelope");

    if (!json_is_object(e))
        return wire_fail(err, "request", "\"envelope\" is not an object");
    if (wire_check_keys(e, keys, what, err) < 0 ||
        wire_get_fixed(e, "requestid", env->requestid, sizeof(env->requestid), what, err) < 0 ||
        wire_get_fixed(e, "senderid", env->senderid, sizeof(env->senderid), what, err) < 0 ||
        wire_get_fixed(e, "callerid", env->callerid, sizeof(env->callerid), what, err) < 0 ||
        wire_get_fixed(e, "collective", env->collective, sizeof(env->collective), what, err) < 0 ||
        wire_get_fixed(e, "agent", env->agent, sizeof(env->agent), what, err) < 0 ||
        wire_get_int(e, "ttl", &env->ttl, what, err) < 0 ||
        wire_get_int(e, "time", &env->time, what, err) < 0 ||
        wire_get_filter(e, &env->filter, err) < 0)
        return -1;
    return wire_envelope_check(env, err);
}

int wire_request_decode(const char *text, size_t len, struct wire_request *req,
                        struct choir_error *err)
{
    static const struct wire_key keys[] = {
        {"protocol", 1}, {"message", 1}, {"envelope", 1}, {NULL, 0},
    };
    const char *what = "request";
    json_t *root;
    int rc = -1;

    memset(req, 0, sizeof(*req));
    root = wire_load_unwrapped(text, len, what, err);
    if (!root)
        return -1;
    if (wire_check_doc(root, WIRE_PROTO_REQUEST, keys, what, err) == 0 &&
        wire_get_body(root, &req->body, &req->body_len, what, err) == 0 &&
        wire_get_envelope(root, &req->env, err) == 0)
        rc = 0;
    json_decref(root);
    if (rc < 0)
        wire_request_clear(req);
    return rc;
}

static json_t *wire_filter_json(const struct wire_filter *f)
{
    json_t *o = json_object();
    int ok = o != NULL;

    if (o) {
        wire_set(o, "fact", json_array(), &ok);
        wire_set(o, "cf_class", json_array(), &ok);
        wire_set(o, "agent", wire_string_list(f->agent, f->agent_count, &ok), &ok);
        wire_set(o, "identity", wire_string_list(f->identity, f->identity_count, &ok), &ok);
        wire_set(o, "compound", json_array(), &ok);
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *wire_envelope_json(const struct wire_envelope *env)
{
    json_t *o = json_object();
    int ok = o != NULL;

    if (o) {
        wire_set(o, "requestid", json_string(env->requestid), &ok);
        wire_set(o, "senderid", json_string(env->senderid), &ok);
        wire_set(o, "callerid", json_string(env->callerid), &ok);
        wire_set(o, "collective", json_string(env->collective), &ok);
        wire_set(o, "agent", json_string(env->agent), &ok);
        wire_set(o, "ttl", json_integer(env->ttl), &ok);
        wire_set(o, "time", json_integer(env->time), &ok);
        wire_set(o, "filter", wire_filter_json(&env->filter), &ok);
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* {"protocol":P,"message":BODY,"envelope":ENV}; takes env's reference. */
static json_t *wire_layer_json(const char *protocol, const char *body, size_t body_len,
                               json_t *env)
{
    json_t *o = json_object();
    int ok = o != NULL && env != NULL;

    if (o) {
        wire_set(o, "protocol", json_string(protocol), &ok);
        wire_set(o, "message", json_stringn(body, body_len), &ok);
        wire_set(o, "envelope", env, &ok);
    } else {
        json_decref(env);
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int wire_request_encode(const struct wire_request *req, char **out, size_t *out_len,
                        struct choir_error *err)
{
    if (wire_envelope_check(&req->env, err) < 0 ||
        wire_body_check(req->body, req->body_len, "request body", err) < 0)
        return -1;
    return wire_dump(wire_layer_json(WIRE_PROTO_REQUEST, req->body, req->body_len,
                                     wire_envelope_json(&req->env)),
                     out, out_len, "request", err);
}

/* ---- reply --------------------------------------------------------------- */

static int wire_get_reply_envelope(json_t *root, struct wire_reply *rep, struct choir_error *err)
{
    static const struct wire_key keys[] = {
        {"requestid", 1}, {"senderid", 1}, {"agent", 1}, {"time", 1}, {NULL, 0},
    };
    const char *what = "reply envelope";
    json_t *e = json_object_get(root, "envelope");

    if (!json_is_object(e))
        return wire_fail(err, "reply", "\"envelope\" is not an object");
    if (wire_check_keys(e, keys, what, err) < 0 ||
        wire_get_fixed(e, "requestid", rep->requestid, sizeof(rep->requestid), what, err) < 0 ||
        wire_get_fixed(e, "senderid", rep->senderid, sizeof(rep->senderid), what, err) < 0 ||
        wire_get_fixed(e, "agent", rep->agent, sizeof(rep->agent), what, err) < 0 ||
        wire_get_int(e, "time", &rep->time, what, err) < 0)
        return -1;
    return wire_reply_check(rep, err);
}

int wire_reply_decode(const char *text, size_t len, struct wire_reply *rep,
                      struct choir_error *err)
{
    static const struct wire_key keys[] = {
        {"protocol", 1}, {"message", 1}, {"envelope", 1}, {NULL, 0},
    };
    const char *what = "reply";
    json_t *root;
    int rc = -1;

    memset(rep, 0, sizeof(*rep));
    root = wire_load_unwrapped(text, len, what, err);
    if (!root)
        return -1;
    if (wire_check_doc(root, WIRE_PROTO_REPLY, keys, what, err) == 0 &&
        wire_get_body(root, &rep->body, &rep->body_len, what, err) == 0 &&
        wire_get_reply_envelope(root, rep, err) == 0)
        rc = 0;
    json_decref(root);
    if (rc < 0)
        wire_reply_clear(rep);
    return rc;
}

static json_t *wire_reply_envelope_json(const struct wire_reply *rep)
{
    json_t *o = json_object();
    int ok = o != NULL;

    if (o) {
        wire_set(o, "requestid", json_string(rep->requestid), &ok);
        wire_set(o, "senderid", json_string(rep->senderid), &ok);
        wire_set(o, "agent", json_string(rep->agent), &ok);
        wire_set(o, "time", json_integer(rep->time), &ok);
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int wire_reply_encode(const struct wire_reply *rep, char **out, size_t *out_len,
                      struct choir_error *err)
{
    if (wire_reply_check(rep, err) < 0 ||
        wire_body_check(rep->body, rep->body_len, "reply body", err) < 0)
        return -1;
    return wire_dump(wire_layer_json(WIRE_PROTO_REPLY, rep->body, rep->body_len,
                                     wire_reply_envelope_json(rep)),
                     out, out_len, "reply", err);
}

/* ---- secure -------------------------------------------------------------- */

static int wire_get_signature(json_t *root, struct wire_secure *s, const char *what,
                              struct choir_error *err)
{
    const char *text;
    size_t len;

    if (wire_get_string(root, "signature", WIRE_SIG_MAX * 2, &text, &len, what, err) < 0)
        return -1;
    if (wire_base64_decode(text, len, &s->signature, &s->sig_len) < 0)
        return wire_fail(err, what, "\"signature\" is not valid base64");
    if (s->sig_len == 0 || s->sig_len > WIRE_SIG_MAX)
        return wire_fail(err, what, "\"signature\" is %zu bytes, expected 1..%d", s->sig_len,
                         WIRE_SIG_MAX);
    return 0;
}

static int wire_get_pubcert(json_t *root, struct wire_secure *s, const char *what,
                            struct choir_error *err)
{
    const char *text;
    size_t len;

    if (wire_get_string(root, "pubcert", WIRE_PUBCERT_MAX, &text, &len, what, err) < 0)
        return -1;
    s->pubcert = xstrndup(text, len);
    s->pubcert_len = len;
    return 0;
}

static int wire_get_hash(json_t *root, struct wire_secure *s, const char *what,
                         struct choir_error *err)
{
    unsigned char md[WIRE_HASH_LEN], *raw;
    const char *text;
    size_t len, n;

    if (wire_get_string(root, "hash", 128, &text, &len, what, err) < 0)
        return -1;
    if (wire_base64_decode(text, len, &raw, &n) < 0)
        return wire_fail(err, what, "\"hash\" is not valid base64");
    if (n == WIRE_HASH_LEN)
        memcpy(s->hash, raw, WIRE_HASH_LEN);
    free(raw);
    if (n != WIRE_HASH_LEN)
        return wire_fail(err, what, "\"hash\" is not a SHA-256 digest (%zu bytes)", n);
    s->has_hash = 1;
    if (wire_sha256(s->message, s->message_len, md) < 0)
        return wire_fail(err, what, "cannot compute SHA-256");
    if (memcmp(md, s->hash, WIRE_HASH_LEN) != 0)
        return wire_fail(err, what, "hash does not match message");
    return 0;
}

/* A reply's signature and pubcert are choir's addition: both or neither. */
static int wire_get_reply_signature(json_t *root, struct wire_secure *s, const char *what,
                                    struct choir_error *err)
{
    int has_sig = json_object_get(root, "signature") != NULL;
    int has_cert = json_object_get(root, "pubcert") != NULL;

    if (has_sig != has_cert)
        return wire_fail(err, what, "\"%s\" without \"%s\"", has_sig ? "signature" : "pubcert",
                         has_sig ? "pubcert" : "signature");
    if (!has_sig)
        return 0;
    if (wire_get_signature(root, s, what, err) < 0)
        return -1;
    return wire_get_pubcert(root, s, what, err);
}

static int wire_get_message(json_t *root, struct wire_secure *s, const char *what,
                            struct choir_error *err)
{
    const char *text;
    size_t len;

    if (wire_get_string(root, "message", WIRE_MAX_BYTES, &text, &len, what, err) < 0)
        return -1;
    s->message = xstrndup(text, len);
    s->message_len = len;
    return 0;
}

static int wire_secure_fields(json_t *root, struct wire_secure *s, const char *what,
                              struct choir_error *err)
{
    static const struct wire_key request_keys[] = {
        {"protocol", 1}, {"message", 1}, {"signature", 1}, {"pubcert", 1}, {NULL, 0},
    };
    static const struct wire_key reply_keys[] = {
        {"protocol", 1}, {"message", 1}, {"hash", 1}, {"signature", 0}, {"pubcert", 0}, {NULL, 0},
    };

    if (s->kind == WIRE_SECURE_REQUEST) {
        if (wire_check_doc(root, WIRE_PROTO_SECURE_REQUEST, request_keys, what, err) < 0 ||
            wire_get_message(root, s, what, err) < 0 || wire_get_signature(root, s, what, err) < 0)
            return -1;
        return wire_get_pubcert(root, s, what, err);
    }
    if (wire_check_doc(root, WIRE_PROTO_SECURE_REPLY, reply_keys, what, err) < 0 ||
        wire_get_message(root, s, what, err) < 0 || wire_get_hash(root, s, what, err) < 0)
        return -1;
    return wire_get_reply_signature(root, s, what, err);
}

static const char *wire_secure_what(enum wire_secure_kind kind)
{
    return kind == WIRE_SECURE_REQUEST ? "secure request" : "secure reply";
}

int wire_secure_decode(const char *text, size_t len, enum wire_secure_kind kind,
                       struct wire_secure *s, struct choir_error *err)
{
    const char *what = wire_secure_what(kind);
    json_t *root;
    int rc;

    memset(s, 0, sizeof(*s));
    s->kind = kind;
    root = wire_load(text, len, what, err);
    if (!root)
        return -1;
    rc = wire_secure_fields(root, s, what, err);
    json_decref(root);
    if (rc < 0)
        wire_secure_clear(s);
    return rc;
}

/* Adds "signature" and "pubcert" to o. */
static int wire_secure_sign_json(json_t *o, const struct wire_secure *s, const char *what,
                                 struct choir_error *err)
{
    char *sig;
    int ok = 1;

    if (!s->sig_len || s->sig_len > WIRE_SIG_MAX || !s->pubcert || !s->pubcert[0])
        return wire_fail(err, what, "no signature or no certificate to send");
    sig = wire_base64_encode(s->signature, s->sig_len, NULL);
    wire_set(o, "signature", json_string(sig), &ok);
    wire_set(o, "pubcert", json_string(s->pubcert), &ok);
    free(sig);
    return ok ? 0 : wire_fail(err, what, "cannot encode the certificate (not UTF-8)");
}

static int wire_secure_hash_json(json_t *o, const struct wire_secure *s, const char *what,
                                 struct choir_error *err)
{
    unsigned char md[WIRE_HASH_LEN];
    char *hash;
    int ok = 1;

    if (wire_sha256(s->message, s->message_len, md) < 0)
        return wire_fail(err, what, "cannot compute SHA-256");
    hash = wire_base64_encode(md, sizeof(md), NULL);
    wire_set(o, "hash", json_string(hash), &ok);
    free(hash);
    return ok ? 0 : wire_fail(err, what, "cannot encode (out of memory)");
}

static int wire_secure_fill(json_t *o, const struct wire_secure *s, const char *what,
                            struct choir_error *err)
{
    int ok = 1;

    wire_set(o, "protocol", json_string(s->kind == WIRE_SECURE_REQUEST ? WIRE_PROTO_SECURE_REQUEST
                                                                       : WIRE_PROTO_SECURE_REPLY),
             &ok);
    wire_set(o, "message", json_stringn(s->message, s->message_len), &ok);
    if (!ok)
        return wire_fail(err, what, "cannot encode the message (not UTF-8)");
    if (s->kind == WIRE_SECURE_REQUEST)
        return wire_secure_sign_json(o, s, what, err);
    if (wire_secure_hash_json(o, s, what, err) < 0)
        return -1;
    return s->sig_len ? wire_secure_sign_json(o, s, what, err) : 0;
}

int wire_secure_encode(const struct wire_secure *s, char **out, size_t *out_len,
                       struct choir_error *err)
{
    const char *what = wire_secure_what(s->kind);
    json_t *o;

    if (!s->message || !s->message_len)
        return wire_fail(err, what, "no message");
    o = json_object();
    if (o && wire_secure_fill(o, s, what, err) < 0) {
        json_decref(o);
        return -1;
    }
    return wire_dump(o, out, out_len, what, err);
}

/* ---- transport ----------------------------------------------------------- */

static int wire_get_data(json_t *root, struct wire_transport *t, const char *what,
                         struct choir_error *err)
{
    unsigned char *raw;
    const char *text;
    size_t len;

    if (wire_get_string(root, "data", WIRE_MAX_BYTES, &text, &len, what, err) < 0)
        return -1;
    if (wire_base64_decode(text, len, &raw, &t->data_len) < 0)
        return wire_fail(err, what, "\"data\" is not valid base64");
    t->data = (char *)raw;
    if (t->data_len == 0)
        return wire_fail(err, what, "\"data\" is empty");
    return 0;
}

static int wire_get_headers(json_t *root, struct wire_headers *h, struct choir_error *err)
{
    static const struct wire_key keys[] = {
        {"reply-to", 0}, {"mc_sender", 0}, {"seen-by", 0}, {"federation", 0}, {NULL, 0},
    };
    const char *what = "transport headers";
    json_t *o = json_object_get(root, "headers");

    if (!json_is_object(o))
        return wire_fail(err, "transport", "\"headers\" is not an object");
    if (wire_check_keys(o, keys, what, err) < 0)
        return -1;
    if (json_object_get(o, "reply-to") &&
        wire_get_fixed(o, "reply-to", h->reply_to, sizeof(h->reply_to), what, err) < 0)
        return -1;
    if (json_object_get(o, "mc_sender") &&
        wire_get_fixed(o, "mc_sender", h->sender, sizeof(h->sender), what, err) < 0)
        return -1;
    return wire_headers_check(h, err);
}

int wire_transport_decode(const char *text, size_t len, struct wire_transport *t,
                          struct choir_error *err)
{
    static const struct wire_key keys[] = {
        {"protocol", 1}, {"data", 1}, {"headers", 1}, {NULL, 0},
    };
    const char *what = "transport";
    json_t *root;
    int rc = -1;

    memset(t, 0, sizeof(*t));
    root = wire_load(text, len, what, err);
    if (!root)
        return -1;
    if (wire_check_doc(root, WIRE_PROTO_TRANSPORT, keys, what, err) == 0 &&
        wire_get_data(root, t, what, err) == 0 && wire_get_headers(root, &t->headers, err) == 0)
        rc = 0;
    json_decref(root);
    if (rc < 0)
        wire_transport_clear(t);
    return rc;
}

static json_t *wire_headers_json(const struct wire_headers *h)
{
    json_t *o = json_object();
    int ok = o != NULL;

    if (o && h->reply_to[0])
        wire_set(o, "reply-to", json_string(h->reply_to), &ok);
    if (o && h->sender[0])
        wire_set(o, "mc_sender", json_string(h->sender), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int wire_transport_encode(const struct wire_transport *t, char **out, size_t *out_len,
                          struct choir_error *err)
{
    json_t *o;
    char *data;
    int ok;

    if (!t->data || !t->data_len)
        return wire_fail(err, "transport", "no data");
    if (t->data_len > WIRE_MAX_BYTES)
        return wire_fail(err, "transport", "data is %zu bytes, more than the limit of %zu",
                         t->data_len, WIRE_MAX_BYTES);
    if (wire_headers_check(&t->headers, err) < 0)
        return -1;
    o = json_object();
    ok = o != NULL;
    data = wire_base64_encode(t->data, t->data_len, NULL);
    if (o) {
        wire_set(o, "protocol", json_string(WIRE_PROTO_TRANSPORT), &ok);
        wire_set(o, "data", json_string(data), &ok);
        wire_set(o, "headers", wire_headers_json(&t->headers), &ok);
    }
    free(data);
    if (!ok) {
        json_decref(o);
        o = NULL;
    }
    return wire_dump(o, out, out_len, "transport", err);
}

/* ---- all layers ---------------------------------------------------------- */

static int wire_sign(const struct wire_signer *signer, struct wire_secure *s, const char *what,
                     struct choir_error *err)
{
    if (!signer || !signer->sign || !signer->pubcert || !signer->pubcert[0])
        return wire_fail(err, what, "no signing key");
    if (signer->sign(signer->ctx, s->message, s->message_len, &s->signature, &s->sig_len, err) < 0)
        return -1;
    if (s->sig_len == 0 || s->sig_len > WIRE_SIG_MAX)
        return wire_fail(err, what, "signature is %zu bytes, expected 1..%d", s->sig_len,
                         WIRE_SIG_MAX);
    s->pubcert = xstrdup(signer->pubcert);
    s->pubcert_len = strlen(s->pubcert);
    return 0;
}

/* inner text (taken) -> secure (signed if signer) -> transport text. */
static int wire_pack(char *inner, size_t inner_len, enum wire_secure_kind kind,
                     const struct wire_signer *signer, const struct wire_headers *headers,
                     char **out, size_t *out_len, struct choir_error *err)
{
    struct wire_secure s = {.kind = kind, .message = inner, .message_len = inner_len};
    struct wire_transport t = {0};
    int rc = -1;

    if (kind == WIRE_SECURE_REQUEST || signer)
        if (wire_sign(signer, &s, wire_secure_what(kind), err) < 0)
            goto done;
    if (wire_secure_encode(&s, &t.data, &t.data_len, err) == 0) {
        if (headers)
            t.headers = *headers;
        rc = wire_transport_encode(&t, out, out_len, err);
    }
done:
    wire_transport_clear(&t);
    wire_secure_clear(&s);
    return rc;
}

int wire_pack_request(const struct wire_request *req, const struct wire_signer *signer,
                      const struct wire_headers *headers, char **out, size_t *out_len,
                      struct choir_error *err)
{
    char *inner;
    size_t len;

    if (wire_request_encode(req, &inner, &len, err) < 0)
        return -1;
    return wire_pack(inner, len, WIRE_SECURE_REQUEST, signer, headers, out, out_len, err);
}

int wire_pack_reply(const struct wire_reply *rep, const struct wire_signer *signer,
                    const struct wire_headers *headers, char **out, size_t *out_len,
                    struct choir_error *err)
{
    char *inner;
    size_t len;

    if (wire_reply_encode(rep, &inner, &len, err) < 0)
        return -1;
    return wire_pack(inner, len, WIRE_SECURE_REPLY, signer, headers, out, out_len, err);
}

int wire_unpack_request(const char *text, size_t len, struct wire_transport *t,
                        struct wire_secure *sec, struct wire_request *req,
                        struct choir_error *err)
{
    memset(sec, 0, sizeof(*sec));
    memset(req, 0, sizeof(*req));
    if (wire_transport_decode(text, len, t, err) == 0 &&
        wire_secure_decode(t->data, t->data_len, WIRE_SECURE_REQUEST, sec, err) == 0 &&
        wire_request_decode(sec->message, sec->message_len, req, err) == 0)
        return 0;
    wire_transport_clear(t);
    wire_secure_clear(sec);
    wire_request_clear(req);
    return -1;
}

int wire_unpack_reply(const char *text, size_t len, struct wire_transport *t,
                      struct wire_secure *sec, struct wire_reply *rep, struct choir_error *err)
{
    memset(sec, 0, sizeof(*sec));
    memset(rep, 0, sizeof(*rep));
    if (wire_transport_decode(text, len, t, err) == 0 &&
        wire_secure_decode(t->data, t->data_len, WIRE_SECURE_REPLY, sec, err) == 0 &&
        wire_reply_decode(sec->message, sec->message_len, rep, err) == 0)
        return 0;
    wire_transport_clear(t);
    wire_secure_clear(sec);
    wire_reply_clear(rep);
    return -1;
}
