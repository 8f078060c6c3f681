/* simcerts.c - many CA-signed certificates for one key (choird --simulate).
 *
 * Usage: simcerts CA_CERT CA_KEY KEY_PEM OUTDIR PREFIX COUNT [DAYS]
 *
 * Contract:
 * - Issues COUNT (1-99999) X.509 v3 certificates, CN=<PREFIX><index> with
 *   the index from 1, zero-padded to 5 digits, all for the public key in
 *   KEY_PEM (a private or a public key, PEM), signed by the CA (CA_CERT
 *   and its unencrypted key CA_KEY, which must match) with SHA-256.  Each
 *   has a random 128-bit serial, basicConstraints CA:false, keyUsage
 *   digitalSignature+keyEncipherment, extendedKeyUsage serverAuth+clientAuth,
 *   subject and authority key identifiers, and is valid from an hour ago
 *   (clock skew) for DAYS days (1-36500, default 365).
 * - Writes OUTDIR/<CN>.pem (PEM only, mode 0644) through a temporary file
 *   renamed into place, so a file that exists is complete; existing files
 *   are replaced.  OUTDIR must exist.  Every <CN> must be a certname
 *   (lower case letters, digits, '.', '-', '_'; not starting with '.' or
 *   '-'; at most 255 bytes).
 * - The CA key is loaded once and the extensions built once, so the cost
 *   is one RSA signature and one file per certificate.
 * - Quiet on success.  Errors are one line on stderr naming the file and
 *   the reason; exit 1 on failure, 2 on bad usage. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COUNT_MAX 99999
#define DAYS_DEFAULT 365
#define DAYS_MAX 36500
#define NAME_MAX_LEN 255
#define INDEX_DIGITS 5
#define SERIAL_BITS 128
#define BACKDATE_SECONDS 3600

static const char usage_text[] =
    "usage: simcerts CA_CERT CA_KEY KEY_PEM OUTDIR PREFIX COUNT [DAYS]";

/* What every certificate shares. */
struct issuer {
    X509 *ca;
    EVP_PKEY *ca_key;
    EVP_PKEY *subject_key;
    STACK_OF(X509_EXTENSION) *exts;
    long days;
};

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
    va_list ap;

    fputs("simcerts: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* The newest OpenSSL error as text. */
static const char *ssl_why(void)
{
    static char buf[256];
    unsigned long e = ERR_peek_last_error();

    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    else
        snprintf(buf, sizeof(buf), "unknown OpenSSL error");
    ERR_clear_error();
    return buf;
}

/* Never prompt for a passphrase: encrypted keys are refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static BIO *open_file(const char *path)
{
    BIO *bio;

    errno = 0;
    bio = BIO_new_file(path, "r");
    if (!bio)
        fail("%s: cannot read: %s", path, errno ? strerror(errno) : ssl_why());
    return bio;
}

static X509 *load_cert(const char *path)
{
    BIO *bio = open_file(path);
    X509 *cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);

    BIO_free(bio);
    if (!cert)
        fail("%s: not a PEM certificate: %s", path, ssl_why());
    return cert;
}

/* A private key, or with allow_public a public key ("PUBLIC KEY"). */
static EVP_PKEY *load_key(const char *path, int allow_public)
{
    BIO *bio = open_file(path);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);

    if (!key && allow_public && BIO_reset(bio) == 0) {
        ERR_clear_error();
        key = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    }
    BIO_free(bio);
    if (!key)
        fail("%s: not an unencrypted PEM %s: %s", path,
             allow_public ? "private or public key" : "private key", ssl_why());
    return key;
}

/* 1 when s is a certname (see the contract). */
static int certname_ok(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > NAME_MAX_LEN || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
              s[i] == '-' || s[i] == '_'))
            return 0;
    return 1;
}

static long parse_number(const char *s, const char *what, long min, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "simcerts: %s must be a number from %ld to %ld, got \"%s\"\n", what, min,
                max, s);
        exit(2);
    }
    return v;
}

/* ---- one certificate ------------------------------------------------------- */

static void add_ext(STACK_OF(X509_EXTENSION) *exts, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

    if (!ext || !sk_X509_EXTENSION_push(exts, ext))
        fail("cannot make the extension %s = %s: %s", OBJ_nid2sn(nid), value, ssl_why());
}

/* The extensions of every certificate (they depend only on the key and
 * the CA, so they are made once). */
static void make_exts(struct issuer *is)
{
    X509 *tmpl = X509_new();
    X509V3_CTX ctx;

    is->exts = sk_X509_EXTENSION_new_null();
    if (!tmpl || !is->exts || X509_set_pubkey(tmpl, is->subject_key) != 1)
        fail("cannot make a certificate template: %s", ssl_why());
    X509V3_set_ctx(&ctx, is->ca, tmpl, NULL, NULL, 0);
    add_ext(is->exts, &ctx, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(is->exts, &ctx, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_ext(is->exts, &ctx, NID_ext_key_usage, "serverAuth,clientAuth");
    add_ext(is->exts, &ctx, NID_subject_key_identifier, "hash");
    add_ext(is->exts, &ctx, NID_authority_key_identifier, "keyid,issuer");
    X509_free(tmpl);
}

static int set_serial(X509 *cert)
{
    BIGNUM *bn = BN_new();
    ASN1_INTEGER *serial = NULL;
    int ok;

    do
        ok = bn && BN_rand(bn, SERIAL_BITS, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1;
    while (ok && BN_is_zero(bn));
    ok = ok && (serial = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
         X509_set_serialNumber(cert, serial) == 1;
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return ok;
}

static int set_subject(X509 *cert, const char *cn)
{
    X509_NAME *name = X509_NAME_new();
    int ok = name &&
             X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC,
                                        (const unsigned char *)cn, -1, -1, 0) == 1 &&
             X509_set_subject_name(cert, name) == 1;

    X509_NAME_free(name);
    return ok;
}

static int set_fields(X509 *cert, const struct issuer *is, const char *cn)
{
    int ok = X509_set_version(cert, X509_VERSION_3) == 1 && set_serial(cert) &&
             set_subject(cert, cn) &&
             X509_set_issuer_name(cert, X509_get_subject_name(is->ca)) == 1 &&
             X509_gmtime_adj(X509_getm_notBefore(cert), -BACKDATE_SECONDS) != NULL &&
             X509_time_adj_ex(X509_getm_notAfter(cert), (int)is->days, 0, NULL) != NULL &&
             X509_set_pubkey(cert, is->subject_key) == 1;

    for (int i = 0; ok && i < sk_X509_EXTENSION_num(is->exts); i++)
        ok = X509_add_ext(cert, sk_X509_EXTENSION_value(is->exts, i), -1) == 1;
    return ok;
}

static X509 *issue(const struct issuer *is, const char *cn)
{
    X509 *cert = X509_new();

    if (!cert || !set_fields(cert, is, cn))
        fail("cannot make the certificate %s: %s", cn, ssl_why());
    if (X509_sign(cert, is->ca_key, EVP_sha256()) <= 0)
        fail("cannot sign the certificate %s with the CA key: %s", cn, ssl_why());
    return cert;
}

/* Writes all of data to fd; 0 or an errno. */
static int write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : EIO;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* cert as PEM into path, through tmp renamed into place. */
static void write_cert(X509 *cert, const char *path, const char *tmp)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *data;
    long len;
    int fd, e;

    if (!mem || PEM_write_bio_X509(mem, cert) != 1)
        fail("%s: cannot write the certificate as PEM: %s", path, ssl_why());
    len = BIO_get_mem_data(mem, &data);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        fail("%s: cannot create: %s", tmp, strerror(errno));
    e = write_all(fd, data, (size_t)len);
    if (!e && fchmod(fd, 0644) < 0)
        e = errno;
    if (close(fd) < 0 && !e)
        e = errno;
    BIO_free(mem);
    if (e) {
        unlink(tmp);
        fail("%s: cannot write: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) < 0) {
        e = errno;
        unlink(tmp);
        fail("%s: cannot rename to %s: %s", tmp, path, strerror(e));
    }
}

static void issue_all(const struct issuer *is, const char *outdir, const char *prefix,
                      long count)
{
    char cn[NAME_MAX_LEN + 16], path[PATH_MAX], tmp[PATH_MAX];

    for (long i = 1; i <= count; i++) {
        X509 *cert;

        snprintf(cn, sizeof(cn), "%s%0*ld", prefix, INDEX_DIGITS, i);
        if ((size_t)snprintf(path, sizeof(path), "%s/%s.pem", outdir, cn) >= sizeof(path) ||
            (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.pem.tmp", outdir, cn) >= sizeof(tmp))
            fail("%s: path too long", outdir);
        cert = issue(is, cn);
        write_cert(cert, path, tmp);
        X509_free(cert);
    }
}

/* ---- main ---------------------------------------------------------------- */

static void check_args(const char *outdir, const char *prefix, long count)
{
    char last[NAME_MAX_LEN + 16];
    struct stat st;

    snprintf(last, sizeof(last), "%s%0*ld", prefix, INDEX_DIGITS, count);
    if (strlen(prefix) > NAME_MAX_LEN || !certname_ok(last)) {
        fprintf(stderr, "simcerts: PREFIX \"%s\" does not make certnames (lower case letters, "
                "digits, '.', '-', '_')\n", prefix);
        exit(2);
    }
    if (stat(outdir, &st) < 0)
        fail("%s: %s", outdir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        fail("%s: not a directory", outdir);
}

int main(int argc, char **argv)
{
    struct issuer is = {0};
    long count;

    if (argc != 7 && argc != 8) {
        fprintf(stderr, "%s\n", usage_text);
        return 2;
    }
    count = parse_number(argv[6], "COUNT", 1, COUNT_MAX);
    is.days = argc == 8 ? parse_number(argv[7], "DAYS", 1, DAYS_MAX) : DAYS_DEFAULT;
    check_args(argv[4], argv[5], count);
    is.ca = load_cert(argv[1]);
    is.ca_key = load_key(argv[2], 0);
    if (X509_check_private_key(is.ca, is.ca_key) != 1)
        fail("%s: not the key of the CA certificate %s", argv[2], argv[1]);
    is.subject_key = load_key(argv[3], 1);
    make_exts(&is);
    issue_all(&is, argv[4], argv[5], count);
    sk_X509_EXTENSION_pop_free(is.exts, X509_EXTENSION_free);
    EVP_PKEY_free(is.subject_key);
    EVP_PKEY_free(is.ca_key);
    X509_free(is.ca);
    return 0;
}
