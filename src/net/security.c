/* security.c - x509 identities and the caller rules (see security.h).
 *
 * Layout: the verdict table; OpenSSL errors into words; the ssldir
 * loader; signing; the replay cache (a ring of entries in arrival order
 * plus an open-addressing index, linear probing with backward-shift
 * deletion); the action policy; verification as a chain of small steps,
 * each returning SECURITY_OK or the verdict that stops it; then the other
 * identities a process may serve, checked with those same steps. */
#include "net/security.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/x509_vfy.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/file.h"
#include "core/kvfile.h"
#include "core/names.h"
#include "core/xalloc.h"

#define PATH_SIZE 4096
#define PEM_FILE_MAX ((size_t)16 << 20)  /* CA bundles and CRLs */
#define KEY_FILE_MAX ((size_t)1 << 20)
#define POLICY_FILE_MAX ((size_t)1 << 20)
#define POLICY_LINE_MAX 4096
#define POLICY_RULES_MAX 10000
#define POLICY_FIELD_MAX 1024
#define QUOTE_SIZE 72
#define SSL_WHY_SIZE 256

/* ---- verdicts ------------------------------------------------------------ */

static const char *const security_names[] = {
#define SECURITY_VERDICT_NAME(id, name, meaning) name,
    SECURITY_VERDICTS(SECURITY_VERDICT_NAME)
#undef SECURITY_VERDICT_NAME
};

static const char *const security_meanings[] = {
#define SECURITY_VERDICT_MEANING(id, name, meaning) meaning,
    SECURITY_VERDICTS(SECURITY_VERDICT_MEANING)
#undef SECURITY_VERDICT_MEANING
};

const char *security_verdict_name(enum security_verdict v)
{
    return (unsigned)v < SECURITY_VERDICT_COUNT ? security_names[v] : NULL;
}

const char *security_verdict_meaning(enum security_verdict v)
{
    return (unsigned)v < SECURITY_VERDICT_COUNT ? security_meanings[v] : NULL;
}

/* ---- the context ----------------------------------------------------------- */

struct replay_entry {
    unsigned char id[16];
    long long expires;
};

struct replay {
    struct replay_entry *ring;  /* arrival order: head is the oldest */
    size_t cap, head, count;
    uint32_t *slots;            /* 0 empty, else ring index + 1 */
    size_t mask;
    uint64_t seed[2];
};

struct policy_rule {
    int allow;
    regex_t caller;
    char *agent;                /* "*" or a name */
    char *action;
    unsigned line;
};

struct security_policy {
    struct policy_rule *rules;
    size_t count;
};

/* A certificate that parsed and chained, by the SHA-256 of its PEM: every
 * node signs every message with the same certificate, and parsing it
 * again each time was most of the console's CPU. */
#define SECURITY_CERT_CACHE 16384        /* slots, a power of two */
#define SECURITY_CERT_RECHECK 60         /* seconds before the chain is checked again */

struct cert_cache_entry {
    unsigned char hash[32];
    X509 *cert;                          /* NULL: empty slot */
    char cn[NAMES_MAX + 1];
    time_t checked;
};

struct security {
    X509_STORE *store;
    X509 *cert;
    EVP_PKEY *key;
    char *pubcert;
    char *ssldir;
    char certname[NAMES_MAX + 1];
    char collective[WIRE_NAME_MAX + 1];
    char identity[NAMES_MAX + 1];
    regex_t allow, privileged;
    int has_allow, has_privileged;
    long clock_skew;
    struct security_policy *policy;
    char policy_file[PATH_SIZE];
    struct replay replay;
    unsigned long long counters[SECURITY_VERDICT_COUNT];
    struct cert_cache_entry *certs;   /* SECURITY_CERT_CACHE slots, NULL until used */
    size_t ncerts;
};

/* Agent and collective names, as net/wire.c checks them: [A-Za-z0-9_-]. */
static int security_token_ok(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return 0;
    return i >= 1 && i <= WIRE_NAME_MAX;
}

/* ---- OpenSSL errors into words ------------------------------------------- */

/* The newest OpenSSL error as text; clears the queue. */
static const char *security_ssl_why(char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();

    if (e)
        ERR_error_string_n(e, buf, size);
    else
        snprintf(buf, size, "unknown OpenSSL error");
    ERR_clear_error();
    return buf;
}

static int security_file_fail(struct choir_error *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int security_file_fail(struct choir_error *err, const char *path, const char *fmt, ...)
{
    char why[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    error_set(err, CHOIR_EXIT_INPUT, "%s: %s", path, why);
    return -1;
}

static int security_ssl_fail(struct choir_error *err, const char *path, const char *what)
{
    char why[SSL_WHY_SIZE];

    return security_file_fail(err, path, "%s: %s", what, security_ssl_why(why, sizeof(why)));
}

/* ---- loading the ssldir ---------------------------------------------------- */

/* Never prompt for a passphrase (OpenSSL's default callback reads the
 * terminal, even for an "encrypted" certificate sent by a peer). */
static int security_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static int security_read(const char *path, size_t max, char **buf, size_t *len,
                         struct choir_error *err)
{
    int e = file_read(path, max, buf, len);

    if (e == EFBIG)
        return security_file_fail(err, path, "larger than %zu bytes", max);
    if (e)
        return security_file_fail(err, path, "cannot read: %s", strerror(e));
    return 0;
}

/* Adds every certificate (want_crl 0) or CRL (want_crl 1) of a PEM file
 * to the store. */
static int security_load_store(X509_STORE *store, const char *path, int want_crl,
                               struct choir_error *err)
{
    STACK_OF(X509_INFO) *infos;
    BIO *bio;
    char *buf;
    size_t len;
    int added = 0, ok = 1;

    if (security_read(path, PEM_FILE_MAX, &buf, &len, err) < 0)
        return -1;
    bio = BIO_new_mem_buf(buf, (int)len);
    infos = bio ? PEM_X509_INFO_read_bio(bio, NULL, security_no_passphrase, NULL) : NULL;
    BIO_free(bio);
    free(buf);
    if (!infos)
        return security_ssl_fail(err, path, "not a PEM file");
    for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *info = sk_X509_INFO_value(infos, i);

        if (!want_crl && info->x509) {
            ok &= X509_STORE_add_cert(store, info->x509) == 1;
            added++;
        }
        if (want_crl && info->crl) {
            ok &= X509_STORE_add_crl(store, info->crl) == 1;
            added++;
        }
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    if (!ok)
        return security_ssl_fail(err, path, "cannot use");
    if (!added)
        return security_file_fail(err, path, "no %s in the file", want_crl ? "CRL" : "certificate");
    return 0;
}

static void security_path(char *buf, const char *ssldir, const char *sub, const char *name)
{
    snprintf(buf, PATH_SIZE, "%s/%s%s%s", ssldir, sub, name ? name : "", name ? ".pem" : "");
}

/* The CA (and the CRL when the ssldir has one) into a new store. */
static int security_load_ca(struct security *sec, const char *ssldir, struct choir_error *err)
{
    char ca[PATH_SIZE], crl[PATH_SIZE];
    FILE *f;

    security_path(ca, ssldir, "certs/ca.pem", NULL);
    security_path(crl, ssldir, "crl.pem", NULL);
    sec->store = X509_STORE_new();
    if (!sec->store)
        return security_ssl_fail(err, ca, "cannot make a certificate store");
    if (security_load_store(sec->store, ca, 0, err) < 0)
        return -1;
    f = fopen(crl, "r");
    if (!f && errno == ENOENT)
        return 0;
    if (f)
        fclose(f);
    if (security_load_store(sec->store, crl, 1, err) < 0)
        return -1;
    X509_STORE_set_flags(sec->store, X509_V_FLAG_CRL_CHECK);
    return 0;
}

/* The CN of cert into buf; -1 when there is none, several, or too long. */
static int security_cn(X509 *cert, char *buf, size_t size)
{
    X509_NAME *name = X509_get_subject_name(cert);
    int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    unsigned char *utf8 = NULL;
    int n;

    if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
        return -1;
    n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n < 0 || (size_t)n >= size || memchr(utf8, '\0', (size_t)n)) {
        OPENSSL_free(utf8);
        ERR_clear_error();
        return -1;
    }
    memcpy(buf, utf8, (size_t)n);
    buf[n] = '\0';
    OPENSSL_free(utf8);
    return 0;
}

static int security_is_rsa(EVP_PKEY *key)
{
    return key && EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA;
}

/* The certificate read from path must name certname in its CN. */
static int security_cn_is(X509 *cert, const char *path, const char *certname,
                          struct choir_error *err)
{
    char cn[NAMES_MAX + 1], q[QUOTE_SIZE];

    if (security_cn(cert, cn, sizeof(cn)) < 0)
        return security_file_fail(err, path, "the certificate has no usable CN");
    if (strcmp(cn, certname) != 0) {
        wire_quote(cn, strlen(cn), q, sizeof(q));
        return security_file_fail(err, path, "CN is %s, expected \"%s\"", q, certname);
    }
    return 0;
}

static int security_load_cert(struct security *sec, const char *ssldir, const char *certname,
                              struct choir_error *err)
{
    char path[PATH_SIZE];
    char *buf;
    size_t len;
    BIO *bio;

    security_path(path, ssldir, "certs/", certname);
    if (security_read(path, PEM_FILE_MAX, &buf, &len, err) < 0)
        return -1;
    bio = BIO_new_mem_buf(buf, (int)len);
    sec->cert = bio ? PEM_read_bio_X509(bio, NULL, security_no_passphrase, NULL) : NULL;
    BIO_free(bio);
    free(buf);
    if (!sec->cert)
        return security_ssl_fail(err, path, "not a PEM certificate");
    return security_cn_is(sec->cert, path, certname, err);
}

static int security_load_key(struct security *sec, const char *ssldir, const char *certname,
                             struct choir_error *err)
{
    char path[PATH_SIZE], cert[PATH_SIZE];
    char *buf;
    size_t len;
    BIO *bio;

    security_path(path, ssldir, "private_keys/", certname);
    security_path(cert, ssldir, "certs/", certname);
    if (security_read(path, KEY_FILE_MAX, &buf, &len, err) < 0)
        return -1;
    bio = BIO_new_mem_buf(buf, (int)len);
    sec->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, security_no_passphrase, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (!sec->key)
        return security_ssl_fail(err, path, "not an unencrypted PEM private key");
    if (!security_is_rsa(sec->key))
        return security_file_fail(err, path, "not an RSA key (Choria signatures are RSA)");
    if (X509_check_private_key(sec->cert, sec->key) != 1) {
        ERR_clear_error();
        return security_file_fail(err, path, "does not match the certificate %s", cert);
    }
    return 0;
}

/* cert as PEM text into *pem (heap); what names it in errors. */
static int security_make_pem(X509 *cert, const char *what, char **pem, struct choir_error *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;

    if (!bio || PEM_write_bio_X509(bio, cert) != 1) {
        BIO_free(bio);
        return security_ssl_fail(err, what, "cannot write the certificate as PEM");
    }
    n = BIO_get_mem_data(bio, &data);
    *pem = xstrndup(data, (size_t)n);
    BIO_free(bio);
    return 0;
}

/* ---- regexes --------------------------------------------------------------- */

/* Compiles pattern; an empty pattern leaves *has 0 (matches nothing). */
static int security_regcomp(regex_t *re, int *has, const char *pattern, const char *what,
                            struct choir_error *err)
{
    char why[256], q[QUOTE_SIZE];
    int rc;

    *has = 0;
    if (!pattern[0])
        return 0;
    rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        regerror(rc, re, why, sizeof(why));
        wire_quote(pattern, strlen(pattern), q, sizeof(q));
        error_set(err, CHOIR_EXIT_INPUT, "%s %s: %s", what, q, why);
        return -1;
    }
    *has = 1;
    return 0;
}

static int security_matches(const regex_t *re, int has, const char *s)
{
    return has && regexec(re, s, 0, NULL, 0) == 0;
}

/* ---- replay cache ---------------------------------------------------------- */

static uint64_t replay_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static size_t replay_home(const struct replay *r, const unsigned char id[16])
{
    uint64_t a, b;

    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    return (size_t)(replay_mix(a ^ r->seed[0]) ^ replay_mix(b ^ r->seed[1])) & r->mask;
}

static void replay_init(struct replay *r, size_t cap)
{
    size_t slots = 1;

    while (slots < cap * 2)
        slots <<= 1;
    r->ring = xcalloc(cap, sizeof(*r->ring));
    r->slots = xcalloc(slots, sizeof(*r->slots));
    r->cap = cap;
    r->mask = slots - 1;
    if (RAND_bytes((unsigned char *)r->seed, sizeof(r->seed)) != 1) {
        ERR_clear_error();
        r->seed[0] = (uint64_t)time(NULL);
        r->seed[1] = (uint64_t)(uintptr_t)r;
    }
}

static void replay_done(struct replay *r)
{
    free(r->ring);
    free(r->slots);
    memset(r, 0, sizeof(*r));
}

/* The slot holding id, or the empty slot where it would go. */
static size_t replay_find(const struct replay *r, const unsigned char id[16])
{
    size_t i = replay_home(r, id);

    while (r->slots[i] && memcmp(r->ring[r->slots[i] - 1].id, id, 16) != 0)
        i = (i + 1) & r->mask;
    return i;
}

/* Empties slot i, moving later entries of the probe run back. */
static void replay_unslot(struct replay *r, size_t i)
{
    size_t j = i;

    for (;;) {
        size_t home;

        r->slots[i] = 0;
        do {
            j = (j + 1) & r->mask;
            if (!r->slots[j])
                return;
            home = replay_home(r, r->ring[r->slots[j] - 1].id);
        } while (i <= j ? (i < home && home <= j) : (i < home || home <= j));
        r->slots[i] = r->slots[j];
        i = j;
    }
}

static void replay_evict_oldest(struct replay *r)
{
    replay_unslot(r, replay_find(r, r->ring[r->head].id));
    r->head = (r->head + 1) % r->cap;
    r->count--;
}

/* 1 when id was seen and has not expired; else remembers it until expires. */
static int replay_seen(struct replay *r, const unsigned char id[16], long long expires,
                       long long now)
{
    size_t slot, idx;

    while (r->count && r->ring[r->head].expires < now)
        replay_evict_oldest(r);
    slot = replay_find(r, id);
    if (r->slots[slot]) {
        struct replay_entry *e = &r->ring[r->slots[slot] - 1];

        if (e->expires >= now)
            return 1;
        e->expires = expires;
        return 0;
    }
    if (r->count == r->cap) {
        replay_evict_oldest(r);
        slot = replay_find(r, id);
    }
    idx = (r->head + r->count++) % r->cap;
    memcpy(r->ring[idx].id, id, 16);
    r->ring[idx].expires = expires;
    r->slots[slot] = (uint32_t)(idx + 1);
    return 0;
}

/* ---- policy ---------------------------------------------------------------- */

void security_policy_free(struct security_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++) {
        regfree(&p->rules[i].caller);
        free(p->rules[i].agent);
        free(p->rules[i].action);
    }
    free(p->rules);
    free(p);
}

/* kvfile_fail's "ORIGIN:LINE: reason", returning -1. */
static int policy_fail(struct choir_error *err, const char *origin, unsigned line,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int policy_fail(struct choir_error *err, const char *origin, unsigned line,
                       const char *fmt, ...)
{
    char why[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    kvfile_fail(err, origin, line, "%s", why);
    return -1;
}

static int policy_name_ok(const char *s)
{
    return strcmp(s, "*") == 0 || security_token_ok(s);
}

/* Splits line (modified) into at most max blank-separated fields. */
static size_t policy_split(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *save = NULL;

    for (char *tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (n == max)
            return max + 1;
        fields[n++] = tok;
    }
    return n;
}

/* The four fields of a rule line, before the regex is compiled. */
static int policy_fields_check(const struct security_policy *p, char **f, size_t n,
                               const char *origin, unsigned line, struct choir_error *err)
{
    char q[QUOTE_SIZE];

    if (n != 4)
        return policy_fail(err, origin, line,
                           "expected 4 fields: allow|deny CALLER_REGEX AGENT ACTION");
    if (strcmp(f[0], "allow") != 0 && strcmp(f[0], "deny") != 0) {
        wire_quote(f[0], strlen(f[0]), q, sizeof(q));
        return policy_fail(err, origin, line, "expected \"allow\" or \"deny\", got %s", q);
    }
    if (strlen(f[1]) > POLICY_FIELD_MAX)
        return policy_fail(err, origin, line, "caller regex longer than %d bytes",
                           POLICY_FIELD_MAX);
    if (!policy_name_ok(f[2]) || !policy_name_ok(f[3]))
        return policy_fail(err, origin, line, "agent and action must be names or \"*\"");
    if (p->count == POLICY_RULES_MAX)
        return policy_fail(err, origin, line, "more than %d rules", POLICY_RULES_MAX);
    return 0;
}

static int policy_rule_parse(struct security_policy *p, char *text, const char *origin,
                             unsigned line, struct choir_error *err)
{
    char *f[4], why[256], q[QUOTE_SIZE];
    struct policy_rule *r;
    size_t n = policy_split(text, f, 4);
    int rc;

    if (n == 0 || f[0][0] == '#')
        return 0;
    if (policy_fields_check(p, f, n, origin, line, err) < 0)
        return -1;
    p->rules = xreallocarray(p->rules, p->count + 1, sizeof(*p->rules));
    r = &p->rules[p->count];
    rc = regcomp(&r->caller, f[1], REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        regerror(rc, &r->caller, why, sizeof(why));
        wire_quote(f[1], strlen(f[1]), q, sizeof(q));
        return policy_fail(err, origin, line, "invalid caller regex %s: %s", q, why);
    }
    r->allow = f[0][0] == 'a';
    r->agent = xstrdup(f[2]);
    r->action = xstrdup(f[3]);
    r->line = line;
    p->count++;
    return 0;
}

/* One line of buf at *pos into line[]; -1 with err when it is unusable. */
static int policy_next_line(const char *buf, size_t len, size_t *pos, char *line,
                            const char *origin, unsigned lineno, struct choir_error *err)
{
    size_t start = *pos, end = start, n;

    while (end < len && buf[end] != '\n')
        end++;
    *pos = end < len ? end + 1 : end;
    n = end - start;
    if (n && buf[end - 1] == '\r')
        n--;
    if (n > POLICY_LINE_MAX)
        return policy_fail(err, origin, lineno, "line longer than %d bytes", POLICY_LINE_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[start + i];

        if ((c < 0x20 && c != '\t') || c >= 0x7f)
            return policy_fail(err, origin, lineno, "control character or non-ASCII byte");
    }
    memcpy(line, buf + start, n);
    line[n] = '\0';
    return 0;
}

int security_policy_parse(const char *buf, size_t len, const char *origin,
                          struct security_policy **out, struct choir_error *err)
{
    struct security_policy *p = xcalloc(1, sizeof(*p));
    char *line = xmalloc(POLICY_LINE_MAX + 1);
    size_t pos = 0;
    unsigned lineno = 0;
    int rc = 0;

    *out = NULL;
    if (len > POLICY_FILE_MAX)
        rc = policy_fail(err, origin, 0, "larger than %zu bytes", POLICY_FILE_MAX);
    while (rc == 0 && pos < len) {
        lineno++;
        rc = policy_next_line(buf, len, &pos, line, origin, lineno, err);
        if (rc == 0)
            rc = policy_rule_parse(p, line, origin, lineno, err);
    }
    free(line);
    if (rc < 0) {
        security_policy_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

static int policy_field_matches(const char *pattern, const char *value)
{
    return strcmp(pattern, "*") == 0 || strcmp(pattern, value) == 0;
}

int security_policy_match(const struct security_policy *p, const char *certname,
                          const char *agent, const char *action, unsigned *line)
{
    if (line)
        *line = 0;
    if (!certname || !agent || !action)
        return 0;
    for (size_t i = 0; p && i < p->count; i++) {
        const struct policy_rule *r = &p->rules[i];

        if (policy_field_matches(r->agent, agent) && policy_field_matches(r->action, action) &&
            regexec(&r->caller, certname, 0, NULL, 0) == 0) {
            if (line)
                *line = r->line;
            return r->allow;
        }
    }
    return 0;
}

int security_policy_allows(const struct security *sec, const char *certname, const char *agent,
                           const char *action, unsigned *line)
{
    if (!sec || !sec->policy) {
        if (line)
            *line = 0;
        return sec != NULL;
    }
    return security_policy_match(sec->policy, certname, agent, action, line);
}

static int security_load_policy(struct security *sec, const char *path, struct choir_error *err)
{
    char *buf;
    size_t len;
    int rc;

    if (security_read(path, POLICY_FILE_MAX, &buf, &len, err) < 0)
        return -1;
    rc = security_policy_parse(buf, len, path, &sec->policy, err);
    free(buf);
    snprintf(sec->policy_file, sizeof(sec->policy_file), "%s", path);
    return rc;
}

/* ---- open / free ----------------------------------------------------------- */

void security_config_init(struct security_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->allow_regex = SECURITY_ALLOW_DEFAULT;
    cfg->privileged_regex = SECURITY_PRIVILEGED_DEFAULT;
    cfg->clock_skew = SECURITY_CLOCK_SKEW_DEFAULT;
    cfg->collective = SECURITY_COLLECTIVE_DEFAULT;
    cfg->replay_max = SECURITY_REPLAY_MAX_DEFAULT;
}

static int security_bad_name(const char *what, const char *value, struct choir_error *err)
{
    char q[QUOTE_SIZE];

    wire_quote(value ? value : "", value ? strlen(value) : 0, q, sizeof(q));
    error_set(err, CHOIR_EXIT_INPUT, "security: invalid %s %s", what, q);
    return -1;
}

static int security_check_config(const struct security_config *cfg, struct choir_error *err)
{
    const char *collective = cfg->collective ? cfg->collective : SECURITY_COLLECTIVE_DEFAULT;

    if (!cfg->ssldir || !cfg->ssldir[0] || strlen(cfg->ssldir) > PATH_SIZE - 300)
        error_set(err, CHOIR_EXIT_INPUT, "security: no ssldir, or its path is too long");
    else if (!cfg->certname || !names_certname_ok(cfg->certname, strlen(cfg->certname)))
        return security_bad_name("certname", cfg->certname, err);
    else if (cfg->identity && !names_certname_ok(cfg->identity, strlen(cfg->identity)))
        return security_bad_name("identity", cfg->identity, err);
    else if (!security_token_ok(collective))
        return security_bad_name("collective", collective, err);
    else if (cfg->clock_skew < 0 || cfg->clock_skew > SECURITY_CLOCK_SKEW_MAX)
        error_set(err, CHOIR_EXIT_INPUT, "security: clock skew %ld out of range 0..%d",
                  cfg->clock_skew, SECURITY_CLOCK_SKEW_MAX);
    else if (cfg->replay_max > SECURITY_REPLAY_MAX)
        error_set(err, CHOIR_EXIT_INPUT, "security: replay cache size %zu out of range 1..%d",
                  cfg->replay_max, SECURITY_REPLAY_MAX);
    else
        return 0;
    return -1;
}

static int security_setup(struct security *sec, const struct security_config *cfg,
                          struct choir_error *err)
{
    sec->ssldir = xstrdup(cfg->ssldir);
    snprintf(sec->certname, sizeof(sec->certname), "%s", cfg->certname);
    snprintf(sec->collective, sizeof(sec->collective), "%s",
             cfg->collective ? cfg->collective : SECURITY_COLLECTIVE_DEFAULT);
    snprintf(sec->identity, sizeof(sec->identity), "%s", cfg->identity ? cfg->identity : "");
    sec->clock_skew = cfg->clock_skew;
    replay_init(&sec->replay, cfg->replay_max ? cfg->replay_max : SECURITY_REPLAY_MAX_DEFAULT);
    if (security_regcomp(&sec->allow, &sec->has_allow,
                         cfg->allow_regex ? cfg->allow_regex : SECURITY_ALLOW_DEFAULT,
                         "allow regex", err) < 0 ||
        security_regcomp(&sec->privileged, &sec->has_privileged,
                         cfg->privileged_regex ? cfg->privileged_regex
                                               : SECURITY_PRIVILEGED_DEFAULT,
                         "privileged regex", err) < 0)
        return -1;
    if (security_load_ca(sec, cfg->ssldir, err) < 0 ||
        security_load_cert(sec, cfg->ssldir, cfg->certname, err) < 0 ||
        security_load_key(sec, cfg->ssldir, cfg->certname, err) < 0 ||
        security_make_pem(sec->cert, sec->certname, &sec->pubcert, err) < 0)
        return -1;
    return cfg->policy_file ? security_load_policy(sec, cfg->policy_file, err) : 0;
}

int security_open(struct security **out, const struct security_config *cfg,
                  struct choir_error *err)
{
    struct security *sec;

    *out = NULL;
    if (security_check_config(cfg, err) < 0)
        return -1;
    sec = xcalloc(1, sizeof(*sec));
    if (security_setup(sec, cfg, err) < 0) {
        security_free(sec);
        return -1;
    }
    *out = sec;
    return 0;
}

void security_free(struct security *sec)
{
    if (!sec)
        return;
    X509_STORE_free(sec->store);
    X509_free(sec->cert);
    EVP_PKEY_free(sec->key);
    free(sec->pubcert);
    free(sec->ssldir);
    if (sec->has_allow)
        regfree(&sec->allow);
    if (sec->has_privileged)
        regfree(&sec->privileged);
    security_policy_free(sec->policy);
    replay_done(&sec->replay);
    for (size_t i = 0; sec->certs && i < SECURITY_CERT_CACHE; i++)
        X509_free(sec->certs[i].cert);
    free(sec->certs);
    free(sec);
}

const char *security_certname(const struct security *sec)
{
    return sec->certname;
}

const char *security_pubcert_pem(const struct security *sec)
{
    return sec->pubcert;
}

unsigned long long security_counter(const struct security *sec, enum security_verdict v)
{
    return sec && (unsigned)v < SECURITY_VERDICT_COUNT ? sec->counters[v] : 0;
}

/* ---- signing ------------------------------------------------------------- */

int security_sign(struct security *sec, const void *data, size_t len, unsigned char **sig,
                  size_t *sig_len, struct choir_error *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char why[SSL_WHY_SIZE];
    size_t n = 0;

    *sig = NULL;
    *sig_len = 0;
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, sec->key) != 1 ||
        EVP_DigestSign(md, NULL, &n, data, len) != 1)
        goto fail;
    *sig = xmalloc(n);
    if (EVP_DigestSign(md, *sig, &n, data, len) != 1)
        goto fail;
    *sig_len = n;
    EVP_MD_CTX_free(md);
    return 0;
fail:
    EVP_MD_CTX_free(md);
    free(*sig);
    *sig = NULL;
    error_set(err, CHOIR_EXIT_INTERNAL, "cannot sign with %s's key: %s", sec->certname,
              security_ssl_why(why, sizeof(why)));
    return -1;
}

static int security_sign_cb(void *ctx, const void *data, size_t len, unsigned char **sig,
                            size_t *sig_len, struct choir_error *err)
{
    return security_sign(ctx, data, len, sig, sig_len, err);
}

struct wire_signer security_signer(struct security *sec)
{
    struct wire_signer s = {security_sign_cb, sec, sec ? sec->pubcert : NULL};

    return s;
}

/* ---- verification steps ---------------------------------------------------- */

/* The state of one verification. */
struct verify {
    struct security *sec;
    char *reason;
    size_t reason_size;
    X509 *cert;
    char cn[NAMES_MAX + 1];
    int privileged;
};

static enum security_verdict verify_why(struct verify *v, enum security_verdict verdict,
                                        const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum security_verdict verify_why(struct verify *v, enum security_verdict verdict,
                                        const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(v->reason, v->reason_size, fmt, ap);
    va_end(ap);
    return verdict;
}

static enum security_verdict verify_chain_error(struct verify *v, int e)
{
    const char *why = X509_verify_cert_error_string(e);

    switch (e) {
    case X509_V_ERR_CERT_REVOKED:
        return verify_why(v, SECURITY_REVOKED, "certificate of \"%s\" is revoked", v->cn);
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return verify_why(v, SECURITY_CERTIFICATE_EXPIRED, "certificate of \"%s\" has expired",
                          v->cn);
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return verify_why(v, SECURITY_CERTIFICATE_NOT_YET_VALID,
                          "certificate of \"%s\" is not valid yet", v->cn);
    default:
        return verify_why(v, SECURITY_UNTRUSTED_CERTIFICATE,
                          "certificate of \"%s\" does not chain to the Puppet CA: %s", v->cn, why);
    }
}

static enum security_verdict verify_chain(struct verify *v)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok, e;

    if (!ctx || X509_STORE_CTX_init(ctx, v->sec->store, v->cert, NULL) != 1) {
        X509_STORE_CTX_free(ctx);
        ERR_clear_error();
        return verify_why(v, SECURITY_UNTRUSTED_CERTIFICATE, "cannot check the certificate");
    }
    ok = X509_verify_cert(ctx) == 1;
    e = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return ok ? SECURITY_OK : verify_chain_error(v, e);
}

/* Parses the pubcert into v->cert and reads its CN; a usable leaf with an
 * RSA key. */
static enum security_verdict verify_parse_cert(struct verify *v, const char *pem, size_t len)
{
    char why[SSL_WHY_SIZE];
    BIO *bio;

    if (!pem || !len)
        return verify_why(v, SECURITY_BAD_CERTIFICATE, "no certificate");
    bio = BIO_new_mem_buf(pem, (int)len);
    v->cert = bio ? PEM_read_bio_X509(bio, NULL, security_no_passphrase, NULL) : NULL;
    BIO_free(bio);
    if (!v->cert)
        return verify_why(v, SECURITY_BAD_CERTIFICATE, "certificate does not parse: %s",
                          security_ssl_why(why, sizeof(why)));
    if (security_cn(v->cert, v->cn, sizeof(v->cn)) < 0 || !names_certname_ok(v->cn, strlen(v->cn)))
        return verify_why(v, SECURITY_BAD_CERTIFICATE, "certificate CN is not a certname");
    if (X509_check_ca(v->cert) != 0)
        return verify_why(v, SECURITY_BAD_CERTIFICATE, "certificate of \"%s\" is a CA", v->cn);
    if (!security_is_rsa(X509_get0_pubkey(v->cert))) {
        ERR_clear_error();
        return verify_why(v, SECURITY_BAD_CERTIFICATE, "certificate of \"%s\" has no RSA key",
                          v->cn);
    }
    return SECURITY_OK;
}

static struct cert_cache_entry *cert_cache_slot(struct security *sec, const unsigned char *h)
{
    size_t i;

    memcpy(&i, h, sizeof(i));
    if (!sec->certs)
        sec->certs = xcalloc(SECURITY_CERT_CACHE, sizeof(*sec->certs));
    return &sec->certs[i & (SECURITY_CERT_CACHE - 1)];
}

/* The cached certificate of these PEM bytes when its chain was checked
 * less than SECURITY_CERT_RECHECK seconds ago. */
static bool cert_cache_get(struct verify *v, const unsigned char *h)
{
    struct cert_cache_entry *c = cert_cache_slot(v->sec, h);

    if (!c->cert || memcmp(c->hash, h, sizeof(c->hash)) != 0 ||
        time(NULL) - c->checked >= SECURITY_CERT_RECHECK)
        return false;
    X509_up_ref(c->cert);
    v->cert = c->cert;
    snprintf(v->cn, sizeof(v->cn), "%s", c->cn);
    return true;
}

/* Keeps a certificate that passed (one slot per hash: a collision evicts). */
static void cert_cache_put(struct verify *v, const unsigned char *h)
{
    struct cert_cache_entry *c = cert_cache_slot(v->sec, h);

    X509_free(c->cert);
    X509_up_ref(v->cert);
    c->cert = v->cert;
    memcpy(c->hash, h, sizeof(c->hash));
    snprintf(c->cn, sizeof(c->cn), "%s", v->cn);
    c->checked = time(NULL);
}

/* Parses the pubcert, reads its CN, checks its chain (or finds all of it
 * in the cache). */
static enum security_verdict verify_cert(struct verify *v, const char *pem, size_t len)
{
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hlen = 0;
    bool hashed = pem && len && EVP_Digest(pem, len, h, &hlen, EVP_sha256(), NULL) == 1 &&
                  hlen == 32;
    enum security_verdict r;

    if (hashed && cert_cache_get(v, h))
        return SECURITY_OK;
    r = verify_parse_cert(v, pem, len);
    if (r == SECURITY_OK)
        r = verify_chain(v);
    if (r == SECURITY_OK && hashed)
        cert_cache_put(v, h);
    return r;
}

static enum security_verdict verify_signature(struct verify *v, const char *msg, size_t len,
                                              const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok;

    if (!sig || !sig_len)
        return verify_why(v, SECURITY_BAD_SIGNATURE, "not signed");
    ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(v->cert)) == 1 &&
         EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)msg, len) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    if (!ok)
        return verify_why(v, SECURITY_BAD_SIGNATURE, "signature does not verify with the "
                          "certificate of \"%s\"", v->cn);
    return SECURITY_OK;
}

/* The callerid's certname (after "choria="), or NULL. */
static const char *verify_caller(const struct wire_request *req)
{
    size_t n = strlen(WIRE_CALLERID_PREFIX);
    const char *name = req->env.callerid + n;

    if (strncmp(req->env.callerid, WIRE_CALLERID_PREFIX, n) != 0 ||
        !names_certname_ok(name, strnlen(name, sizeof(req->env.callerid) - n)))
        return NULL;
    return name;
}

static enum security_verdict verify_callerid(struct verify *v, const struct wire_request *req)
{
    const char *caller = verify_caller(req);

    if (!caller)
        return verify_why(v, SECURITY_MALFORMED, "callerid is not \"choria=<certname>\"");
    v->privileged = security_matches(&v->sec->privileged, v->sec->has_privileged, v->cn);
    if (!v->privileged && strcmp(caller, v->cn) != 0)
        return verify_why(v, SECURITY_CALLERID_MISMATCH,
                          "callerid \"%s\" is not the certificate's name \"%s\"", caller, v->cn);
    if (!v->privileged && !security_matches(&v->sec->allow, v->sec->has_allow, caller))
        return verify_why(v, SECURITY_CALLER_NOT_ALLOWED, "caller \"%s\" is not in the allow list",
                          caller);
    return SECURITY_OK;
}

static enum security_verdict verify_time(struct verify *v, const struct wire_envelope *env,
                                         long long now)
{
    long long skew = v->sec->clock_skew;

    if (env->time < 0 || env->time > WIRE_TIME_MAX || env->ttl < WIRE_TTL_MIN ||
        env->ttl > WIRE_TTL_MAX)
        return verify_why(v, SECURITY_MALFORMED, "time or ttl out of range");
    if (env->time > now + skew)
        return verify_why(v, SECURITY_FROM_THE_FUTURE,
                          "request time is %lld s in the future (clock skew allowed: %lld s)",
                          env->time - now, skew);
    if (now - env->time > env->ttl + skew)
        return verify_why(v, SECURITY_EXPIRED,
                          "request is %lld s old, its ttl is %lld s (clock skew allowed: %lld s)",
                          now - env->time, env->ttl, skew);
    return SECURITY_OK;
}

static int verify_listed(const char *name, const char *const *list, size_t count)
{
    for (size_t i = 0; list && i < count; i++)
        if (list[i] && strcmp(list[i], name) == 0)
            return 1;
    return 0;
}

static enum security_verdict verify_filter(struct verify *v, const struct wire_filter *f,
                                           const struct security_check *check)
{
    const char *id = v->sec->identity;

    if (f->other_count)
        return verify_why(v, SECURITY_NOT_FOR_THIS_NODE,
                          "fact, class and compound filters are not supported");
    if (f->identity_count && !check->any_identity &&
        !verify_listed(id, (const char *const *)f->identity,
                                            f->identity_count))
        return verify_why(v, SECURITY_NOT_FOR_THIS_NODE, "identity filter does not name \"%s\"",
                          id);
    for (size_t i = 0; i < f->agent_count; i++)
        if (!verify_listed(f->agent[i], check->agents, check->agent_count))
            return verify_why(v, SECURITY_NOT_FOR_THIS_NODE,
                              "agent filter names an agent not served here");
    return SECURITY_OK;
}

static enum security_verdict verify_target(struct verify *v, const struct wire_envelope *env,
                                           const struct security_check *check)
{
    char q[QUOTE_SIZE];

    if (strcmp(env->collective, v->sec->collective) != 0) {
        wire_quote(env->collective, strnlen(env->collective, WIRE_NAME_MAX), q, sizeof(q));
        return verify_why(v, SECURITY_WRONG_COLLECTIVE, "collective %s is not \"%s\"", q,
                          v->sec->collective);
    }
    if (!check || !verify_listed(env->agent, check->agents, check->agent_count)) {
        wire_quote(env->agent, strnlen(env->agent, WIRE_NAME_MAX), q, sizeof(q));
        return verify_why(v, SECURITY_UNKNOWN_AGENT, "agent %s is not served here", q);
    }
    return verify_filter(v, &env->filter, check);
}

static int verify_hex(const char *hex, unsigned char id[16])
{
    if (!wire_requestid_ok(hex))
        return -1;
    for (int i = 0; i < 16; i++) {
        unsigned hi = (unsigned)(hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10);
        unsigned lo =
            (unsigned)(hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' : hex[2 * i + 1] - 'a' + 10);

        id[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* A server of several identities sees one request once per identity it
 * was sent to: the replay key is then the request id with the target. */
static void replay_key_for(unsigned char id[16], const char *target)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, id, 16) &&
        EVP_DigestUpdate(ctx, target, strlen(target)) && EVP_DigestFinal_ex(ctx, md, &len) &&
        len >= 16)
        memcpy(id, md, 16);
    EVP_MD_CTX_free(ctx);
}

static enum security_verdict verify_replay(struct verify *v, const struct wire_envelope *env,
                                           const struct security_check *check, long long now)
{
    unsigned char id[16];

    if (verify_hex(env->requestid, id) < 0)
        return verify_why(v, SECURITY_MALFORMED, "requestid is not 32 lowercase hex digits");
    if (check && check->any_identity && check->target)
        replay_key_for(id, check->target);
    if (replay_seen(&v->sec->replay, id, env->time + env->ttl + v->sec->clock_skew, now))
        return verify_why(v, SECURITY_REPLAYED, "request %s was seen before", env->requestid);
    return SECURITY_OK;
}

static enum security_verdict verify_policy(struct verify *v, const struct wire_request *req,
                                           const char *action)
{
    const char *caller = verify_caller(req);
    unsigned line;
    char q[QUOTE_SIZE];

    if (!action || !v->sec->policy)
        return SECURITY_OK;
    if (security_policy_allows(v->sec, caller, req->env.agent, action, &line))
        return SECURITY_OK;
    wire_quote(action, strlen(action), q, sizeof(q));
    if (line)
        return verify_why(v, SECURITY_POLICY_DENIED, "%s.%s denied to \"%s\" by %s:%u",
                          req->env.agent, q, caller, v->sec->policy_file, line);
    return verify_why(v, SECURITY_POLICY_DENIED, "no rule of %s allows %s.%s to \"%s\"",
                      v->sec->policy_file, req->env.agent, q, caller);
}

static enum security_verdict verify_sizes(struct verify *v, const struct wire_secure *sr)
{
    if (sr->message_len > WIRE_MAX_BYTES || sr->pubcert_len > WIRE_PUBCERT_MAX ||
        sr->sig_len > WIRE_SIG_MAX)
        return verify_why(v, SECURITY_TOO_LARGE, "message, certificate or signature too large");
    if (!sr->message || !sr->message_len)
        return verify_why(v, SECURITY_MALFORMED, "no message");
    return SECURITY_OK;
}

static enum security_verdict verify_request_steps(struct verify *v, const struct wire_secure *sr,
                                                  const struct wire_request *req,
                                                  const struct security_check *check)
{
    long long now = (long long)time(NULL);
    enum security_verdict r;

    if (sr->kind != WIRE_SECURE_REQUEST)
        return verify_why(v, SECURITY_MALFORMED, "not a secure request");
    if ((r = verify_sizes(v, sr)) != SECURITY_OK ||
        (r = verify_cert(v, sr->pubcert, sr->pubcert_len)) != SECURITY_OK ||
        (r = verify_signature(v, sr->message, sr->message_len, sr->signature, sr->sig_len)) !=
            SECURITY_OK ||
        (r = verify_callerid(v, req)) != SECURITY_OK ||
        (r = verify_time(v, &req->env, now)) != SECURITY_OK ||
        (r = verify_target(v, &req->env, check)) != SECURITY_OK ||
        (r = verify_replay(v, &req->env, check, now)) != SECURITY_OK)
        return r;
    return verify_policy(v, req, check ? check->action : NULL);
}

static enum security_verdict verify_reply_steps(struct verify *v, const struct wire_secure *sr,
                                                const struct wire_reply *rep)
{
    unsigned char md[WIRE_HASH_LEN];
    unsigned int n = 0;
    enum security_verdict r;
    char q[QUOTE_SIZE];

    if (sr->kind != WIRE_SECURE_REPLY)
        return verify_why(v, SECURITY_MALFORMED, "not a secure reply");
    if ((r = verify_sizes(v, sr)) != SECURITY_OK)
        return r;
    if (!sr->has_hash ||
        EVP_Digest(sr->message, sr->message_len, md, &n, EVP_sha256(), NULL) != 1 ||
        memcmp(md, sr->hash, WIRE_HASH_LEN) != 0)
        return verify_why(v, SECURITY_BAD_HASH, "hash does not match the message");
    if (!sr->sig_len)
        return verify_why(v, SECURITY_BAD_SIGNATURE, "reply is not signed");
    if ((r = verify_cert(v, sr->pubcert, sr->pubcert_len)) != SECURITY_OK ||
        (r = verify_signature(v, sr->message, sr->message_len, sr->signature, sr->sig_len)) !=
            SECURITY_OK)
        return r;
    if (strncmp(rep->senderid, v->cn, sizeof(rep->senderid)) != 0) {
        wire_quote(rep->senderid, strnlen(rep->senderid, NAMES_MAX), q, sizeof(q));
        return verify_why(v, SECURITY_REPLY_IDENTITY_MISMATCH,
                          "reply from %s is signed by \"%s\"", q, v->cn);
    }
    return SECURITY_OK;
}

/* Sets up v; reason may be NULL. */
static void verify_begin(struct verify *v, struct security *sec, char *reason, size_t size,
                         char *fallback, size_t fallback_size)
{
    memset(v, 0, sizeof(*v));
    v->sec = sec;
    v->reason = reason && size ? reason : fallback;
    v->reason_size = reason && size ? size : fallback_size;
    v->reason[0] = '\0';
}

static enum security_verdict verify_end(struct verify *v, enum security_verdict r)
{
    X509_free(v->cert);
    if (r == SECURITY_OK)
        verify_why(v, SECURITY_OK, "ok");
    if (v->sec)
        v->sec->counters[r]++;
    return r;
}

enum security_verdict security_verify_request(struct security *sec, const struct wire_secure *sr,
                                              const struct wire_request *req,
                                              const struct security_check *check, char *reason,
                                              size_t reason_size)
{
    char fallback[SECURITY_REASON_SIZE];
    struct verify v;

    verify_begin(&v, sec, reason, reason_size, fallback, sizeof(fallback));
    if (!sec || !sr || !req)
        return verify_end(&v, verify_why(&v, SECURITY_MALFORMED, "nothing to verify with"));
    return verify_end(&v, verify_request_steps(&v, sr, req, check));
}

enum security_verdict security_verify_reply(struct security *sec, const struct wire_secure *sr,
                                            const struct wire_reply *rep, char *reason,
                                            size_t reason_size)
{
    char fallback[SECURITY_REASON_SIZE];
    struct verify v;

    verify_begin(&v, sec, reason, reason_size, fallback, sizeof(fallback));
    if (!sec || !sr || !rep)
        return verify_end(&v, verify_why(&v, SECURITY_MALFORMED, "nothing to verify with"));
    return verify_end(&v, verify_reply_steps(&v, sr, rep));
}

/* ---- identities served by this process ------------------------------------- */

struct security_identity {
    struct security *sec;   /* borrowed: its key signs for this identity */
    char *pubcert;          /* the certificate as PEM, sent with each signature */
    char name[];
};

/* The checks a console applies to a reply's pubcert (verify_parse_cert,
 * verify_chain), then the CN must be certname; each failure is one line
 * naming path.  On success *cert is the certificate. */
static int identity_check_cert(struct security *sec, const char *path, const char *pem,
                               size_t len, const char *certname, X509 **cert,
                               struct choir_error *err)
{
    char reason[SECURITY_REASON_SIZE];
    struct verify v;
    int rc = -1;

    verify_begin(&v, sec, reason, sizeof(reason), reason, sizeof(reason));
    if (verify_parse_cert(&v, pem, len) != SECURITY_OK || verify_chain(&v) != SECURITY_OK)
        security_file_fail(err, path, "%s", reason);
    else if (security_cn_is(v.cert, path, certname, err) == 0)
        rc = 0;
    if (rc == 0)
        *cert = v.cert;
    else
        X509_free(v.cert);
    return rc;
}

/* The certificate must certify the context's own private key. */
static int identity_check_key(const struct security *sec, X509 *cert, const char *path,
                              struct choir_error *err)
{
    char key[PATH_SIZE];

    if (X509_check_private_key(cert, sec->key) == 1)
        return 0;
    ERR_clear_error();
    security_path(key, sec->ssldir, "private_keys/", sec->certname);
    return security_file_fail(err, path, "certifies another key, not this process's private "
                              "key %s", key);
}

/* Reads and checks <ssldir>/certs/<certname>.pem; *pem is its PEM text. */
static int identity_load(struct security *sec, const char *certname, char **pem,
                         struct choir_error *err)
{
    char path[PATH_SIZE];
    X509 *cert = NULL;
    char *buf;
    size_t len;
    int rc;

    security_path(path, sec->ssldir, "certs/", certname);
    if (security_read(path, WIRE_PUBCERT_MAX, &buf, &len, err) < 0)
        return -1;
    rc = identity_check_cert(sec, path, buf, len, certname, &cert, err);
    free(buf);
    if (rc == 0)
        rc = identity_check_key(sec, cert, path, err);
    if (rc == 0)
        rc = security_make_pem(cert, path, pem, err);
    X509_free(cert);
    return rc;
}

int security_identity_open(struct security *sec, const char *certname,
                           struct security_identity **out, struct choir_error *err)
{
    struct security_identity *id;
    char *pem = NULL;
    size_t n;

    *out = NULL;
    if (!sec) {
        error_set(err, CHOIR_EXIT_INTERNAL, "security: no context to serve an identity with");
        return -1;
    }
    if (!certname || !names_certname_ok(certname, strlen(certname)))
        return security_bad_name("certname", certname, err);
    if (identity_load(sec, certname, &pem, err) < 0)
        return -1;
    n = strlen(certname);
    id = xcalloc(1, sizeof(*id) + n + 1);
    id->sec = sec;
    id->pubcert = pem;
    memcpy(id->name, certname, n + 1);
    *out = id;
    return 0;
}

void security_identity_free(struct security_identity *id)
{
    if (!id)
        return;
    free(id->pubcert);
    free(id);
}

const char *security_identity_name(const struct security_identity *id)
{
    return id->name;
}

struct wire_signer security_identity_signer(struct security_identity *id)
{
    struct wire_signer s = {security_sign_cb, id ? id->sec : NULL, id ? id->pubcert : NULL};

    return s;
}
