/* puppet_ca.c - obtain a certificate from a Puppet CA.
 *
 * Contract: see puppet_ca.h.  Layout of this file: the ssldir (paths,
 * directories, files written with O_EXCL), the crypto (key, CSR, checks on
 * what the CA returns, with OpenSSL 3's EVP API), HTTP (one libcurl request,
 * failures in words), the CA steps (CA certificate, submit, poll, CRL), and
 * the progress printer.  Like puppet_http.c, redirects are never followed,
 * only https is allowed and the proxy environment is ignored: this is the
 * channel that establishes trust in the site's own CA. */
#include "net/puppet_ca.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/file.h"
#include "core/hostport.h"
#include "core/names.h"
#include "core/text.h"
#include "net/http_body.h"
#include "net/srv.h"

#define CA_DEFAULT_PORT 8140
#define CA_FALLBACK_HOST "puppet"
#define CA_SRV_PREFIX "_x-puppet-ca._tcp."
#define CA_API "/puppet-ca/v1"
#define KEY_BITS 2048
#define MAX_BODY ((size_t)16 << 20)     /* CRLs of big sites are the largest answers */
#define MAX_PEM_FILE ((size_t)1 << 20)
#define DEFAULT_CONNECT_TIMEOUT 10L
#define DEFAULT_TIMEOUT 60L
#define DEFAULT_POLL 5L
#define PATH_SIZE 4096
#define URL_SIZE 512
#define SERVER_TEXT_MAX 300

#ifdef CHOIR_VERSION
#define USER_AGENT "choir/" CHOIR_VERSION
#else
#define USER_AGENT "choir"
#endif

struct ca_paths {
    const char *dir;
    char key[PATH_SIZE], csr[PATH_SIZE], cert[PATH_SIZE], ca[PATH_SIZE], crl[PATH_SIZE];
};

/* The CA server we talk to, and whether its certificate is checked yet. */
struct ca_conn {
    char host[HOSTPORT_HOST_MAX + 1];
    unsigned port;
    char base[URL_SIZE];          /* https://host:port */
    const char *cafile;           /* NULL: first contact, no verification */
    long connect_timeout, timeout;
};

struct reply {
    char url[URL_SIZE];
    char errbuf[CURL_ERROR_SIZE];
    struct http_body body;
    long status;
    int unreachable;              /* could not reach the server: try the next one */
};

struct flow {
    const struct puppet_ca_opts *o;
    struct ca_paths p;
    struct ca_conn conn;
    STACK_OF(X509) *cas;
    EVP_PKEY *key;
    X509_REQ *csr;
    char *csr_pem;
    size_t csr_len;
};

/* ---- small helpers ----------------------------------------------------- */

static void emit(const struct flow *f, struct puppet_ca_event ev)
{
    if (!f->o->progress)
        return;
    ev.certname = f->o->certname;
    f->o->progress(f->o->progress_ctx, &ev);
}

/* The OpenSSL error queue's last reason, for messages; clears the queue. */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return r ? r : "unknown OpenSSL error";
}

static double monotonic_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the ssldir ------------------------------------------------------- */

static int paths_init(struct ca_paths *p, const char *dir, const char *certname,
                      struct choir_error *err)
{
    int bad = 0;

    p->dir = dir;
    bad |= snprintf(p->key, PATH_SIZE, "%s/private_keys/%s.pem", dir, certname) >= PATH_SIZE;
    bad |= snprintf(p->csr, PATH_SIZE, "%s/certificate_requests/%s.pem", dir, certname) >= PATH_SIZE;
    bad |= snprintf(p->cert, PATH_SIZE, "%s/certs/%s.pem", dir, certname) >= PATH_SIZE;
    bad |= snprintf(p->ca, PATH_SIZE, "%s/certs/ca.pem", dir) >= PATH_SIZE;
    bad |= snprintf(p->crl, PATH_SIZE, "%s/crl.pem", dir) >= PATH_SIZE;
    if (!bad)
        return 0;
    error_set(err, CHOIR_EXIT_INPUT, "ssldir %s: path too long", dir);
    return -1;
}

static int exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

/* mkdir -p; the last component gets `mode` exactly when we create it. */
static int make_dir(const char *path, mode_t mode, struct choir_error *err)
{
    char buf[PATH_SIZE];
    struct stat st;

    text_copy(buf, sizeof(buf), path);
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            goto fail;
        *s = '/';
    }
    if (mkdir(buf, mode) == 0)
        return chmod(buf, mode) == 0 ? 0 : (error_set(err, CHOIR_EXIT_INPUT, "chmod %s: %s",
                                                      buf, strerror(errno)), -1);
    if (errno == EEXIST && stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (errno == EEXIST)
        errno = ENOTDIR;
fail:
    error_set(err, CHOIR_EXIT_INPUT, "cannot create directory %s: %s", buf, strerror(errno));
    return -1;
}

static int make_dirs(const struct ca_paths *p, struct choir_error *err)
{
    static const struct { const char *sub; mode_t mode; } dirs[] = {
        {"", 0755}, {"/certs", 0755}, {"/certificate_requests", 0755}, {"/private_keys", 0700},
    };
    char path[PATH_SIZE];

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", p->dir, dirs[i].sub);
        if (make_dir(path, dirs[i].mode, err) < 0)
            return -1;
    }
    return 0;
}

/* Writes a new file (never replacing one) with exactly `mode`. */
static int write_new(const char *path, mode_t mode, const char *data, size_t len,
                     struct choir_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    size_t done = 0;

    if (fd < 0) {
        error_set(err, CHOIR_EXIT_INPUT, errno == EEXIST ? "%s already exists: refusing to "
                  "overwrite it" : "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (fchmod(fd, mode) != 0)
        goto fail;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        done += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    return 0;
fail:
    error_set(err, CHOIR_EXIT_INPUT, "cannot write %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    unlink(path);
    return -1;
}

/* Replaces a file atomically (for crl.pem, which is refreshed). */
static int write_replace(const char *path, mode_t mode, const char *data, size_t len,
                         struct choir_error *err)
{
    char tmp[PATH_SIZE + 16];

    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    unlink(tmp);
    if (write_new(tmp, mode, data, len, err) < 0)
        return -1;
    if (rename(tmp, path) == 0)
        return 0;
    error_set(err, CHOIR_EXIT_INPUT, "cannot replace %s: %s", path, strerror(errno));
    unlink(tmp);
    return -1;
}

/* Reads a whole PEM file into a memory BIO. */
static BIO *read_bio(const char *path, struct choir_error *err)
{
    char *buf;
    size_t len;
    int e = file_read(path, MAX_PEM_FILE, &buf, &len);
    BIO *bio;

    if (e) {
        error_set(err, CHOIR_EXIT_INPUT, "cannot read %s: %s", path, strerror(e));
        return NULL;
    }
    bio = BIO_new(BIO_s_mem());
    if (!bio || BIO_write(bio, buf, (int)len) != (int)len) {
        BIO_free(bio);
        bio = NULL;
        error_set(err, CHOIR_EXIT_INTERNAL, "out of memory reading %s", path);
    }
    free(buf);
    return bio;
}

/* The contents of a memory BIO as a malloc'd string. */
static char *bio_text(BIO *bio, size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *copy = n >= 0 ? malloc((size_t)n + 1) : NULL;

    if (!copy)
        return NULL;
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    *len = (size_t)n;
    return copy;
}

/* ---- crypto ----------------------------------------------------------- */

static void fingerprint(const unsigned char *md, unsigned n, char *buf, size_t size)
{
    size_t o = 0;

    buf[0] = '\0';
    for (unsigned i = 0; i < n && o + 4 <= size; i++)
        o += (size_t)snprintf(buf + o, size - o, i ? ":%02X" : "%02X", md[i]);
}

static void cert_fingerprint(X509 *x, char *buf, size_t size)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;

    if (X509_digest(x, EVP_sha256(), md, &n) != 1)
        n = 0;
    fingerprint(md, n, buf, size);
}

static void csr_fingerprint(X509_REQ *req, char *buf, size_t size)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;

    if (X509_REQ_digest(req, EVP_sha256(), md, &n) != 1)
        n = 0;
    fingerprint(md, n, buf, size);
}

static void subject_text(X509_NAME *name, char *buf, size_t size)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;

    buf[0] = '\0';
    if (!bio)
        return;
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    n = BIO_get_mem_data(bio, &data);
    text_printable(buf, size, data, n > 0 ? (size_t)n : 0);
    BIO_free(bio);
}

/* The subject's CN, or "" when there is none. */
static void common_name(X509_NAME *name, char *buf, size_t size)
{
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    ASN1_STRING *s = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)) : NULL;

    buf[0] = '\0';
    if (s)
        text_printable(buf, size, (const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
}

/* Every certificate of a PEM text; NULL when there is none. */
static STACK_OF(X509) *parse_certs(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *x;

    while (bio && certs && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
        if (!sk_X509_push(certs, x))
            X509_free(x);
    ERR_clear_error();
    BIO_free(bio);
    if (certs && sk_X509_num(certs) == 0) {
        sk_X509_free(certs);
        certs = NULL;
    }
    return certs;
}

static char *certs_pem(STACK_OF(X509) *certs, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *text = NULL;
    int ok = bio != NULL;

    for (int i = 0; ok && i < sk_X509_num(certs); i++)
        ok = PEM_write_bio_X509(bio, sk_X509_value(certs, i)) == 1;
    if (ok)
        text = bio_text(bio, len);
    BIO_free(bio);
    return text;
}

static EVP_PKEY *make_key(struct choir_error *err)
{
    EVP_PKEY *key = EVP_RSA_gen(KEY_BITS);

    if (!key)
        error_set(err, CHOIR_EXIT_INTERNAL, "cannot generate an RSA %d key: %s", KEY_BITS,
                  ssl_reason());
    return key;
}

static X509_REQ *make_csr(EVP_PKEY *key, const char *certname, struct choir_error *err)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();

    if (!req || !name || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                   (const unsigned char *)certname, -1, -1, 0) != 1 ||
        X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
        X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
        error_set(err, CHOIR_EXIT_INTERNAL, "cannot make a certificate request: %s", ssl_reason());
        X509_REQ_free(req);
        req = NULL;
    }
    X509_NAME_free(name);
    return req;
}

static EVP_PKEY *load_key(const char *path, struct choir_error *err)
{
    BIO *bio = read_bio(path, err);
    /* "" as the passphrase: OpenSSL must never prompt on the terminal. */
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"") : NULL;

    if (bio && !key)
        error_set(err, CHOIR_EXIT_INPUT, "%s: not an unencrypted PEM private key (%s)", path,
                  ssl_reason());
    BIO_free(bio);
    return key;
}

static X509_REQ *load_csr(const char *path, struct choir_error *err)
{
    BIO *bio = read_bio(path, err);
    X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;

    if (bio && !req)
        error_set(err, CHOIR_EXIT_INPUT, "%s: not a PEM certificate request (%s)", path,
                  ssl_reason());
    BIO_free(bio);
    return req;
}

/* A CSR text is ours when it carries our public key. */
static int csr_pem_is_ours(const char *pem, size_t len, EVP_PKEY *key)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    int ours = req && EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key) == 1;

    ERR_clear_error();
    X509_REQ_free(req);
    BIO_free(bio);
    return ours;
}

static int csr_to_pem(struct flow *f, struct choir_error *err)
{
    BIO *bio = BIO_new(BIO_s_mem());

    if (bio && PEM_write_bio_X509_REQ(bio, f->csr) == 1)
        f->csr_pem = bio_text(bio, &f->csr_len);
    BIO_free(bio);
    if (f->csr_pem)
        return 0;
    error_set(err, CHOIR_EXIT_INTERNAL, "cannot encode the certificate request");
    return -1;
}

/* Checks a certificate from the CA: our key, our name, the CA's signature. */
static int check_cert(const struct flow *f, X509 *cert, const char *url, struct choir_error *err)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    char cn[300];
    int ok = -1, vr;

    common_name(X509_get_subject_name(cert), cn, sizeof(cn));
    if (X509_check_private_key(cert, f->key) != 1) {
        error_set(err, CHOIR_EXIT_INPUT, "%s: the CA holds a certificate for %s that is not for "
                  "our key %s (signed for an earlier key? ask the CA admin to run 'puppetserver "
                  "ca clean --certname %s', then run again)", url, f->o->certname, f->p.key,
                  f->o->certname);
    } else if (strcmp(cn, f->o->certname) != 0) {
        error_set(err, CHOIR_EXIT_SERVER, "%s: the certificate is for CN \"%s\", not %s", url, cn,
                  f->o->certname);
    } else if (!store || !ctx) {
        error_set(err, CHOIR_EXIT_INTERNAL, "out of memory checking the certificate");
    } else {
        for (int i = 0; i < sk_X509_num(f->cas); i++)
            X509_STORE_add_cert(store, sk_X509_value(f->cas, i));
        if (X509_STORE_CTX_init(ctx, store, cert, NULL) == 1 && X509_verify_cert(ctx) == 1) {
            ok = 0;
        } else {
            vr = X509_STORE_CTX_get_error(ctx);
            error_set(err, CHOIR_EXIT_SERVER, "%s: the certificate for %s does not chain to the "
                      "CA in %s: %s", url, f->o->certname, f->p.ca,
                      X509_verify_cert_error_string(vr));
        }
    }
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

/* ---- HTTP ------------------------------------------------------------- */




static int setup_curl(CURL *curl, const struct ca_conn *c, struct reply *r,
                      struct curl_slist *headers)
{
    CURLcode rc = CURLE_OK;
    long verify = c->cafile ? 1L : 0L;

#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(curl, opt, val)
    SET(CURLOPT_URL, r->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "https");
#else
    SET(CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOPROXY, "*");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT, c->connect_timeout);
    SET(CURLOPT_TIMEOUT, c->timeout);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_USERAGENT, USER_AGENT);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_BODY);
    r->body.max = MAX_BODY;
    SET(CURLOPT_WRITEFUNCTION, http_body_write);
    SET(CURLOPT_WRITEDATA, &r->body);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    /* First contact: nothing to verify against yet (trust on first use,
     * the fingerprint is shown); afterwards only the Puppet CA is trusted. */
    SET(CURLOPT_SSL_VERIFYPEER, verify);
    SET(CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (c->cafile) {
        SET(CURLOPT_CAINFO, c->cafile);
        SET(CURLOPT_CAPATH, (char *)NULL);
    }
#undef SET
    return rc == CURLE_OK ? 0 : -1;
}

static int contains(const char *text, const char *word)
{
    return strcasestr(text, word) != NULL;
}

static void curl_failed(CURL *curl, const struct ca_conn *c, struct reply *r, CURLcode rc,
                        struct choir_error *err)
{
    const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
    long os_errno = 0;

    curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        r->unreachable = 1;
        error_set(err, CHOIR_EXIT_SERVER, "%s: could not resolve host %s", r->url, c->host);
        break;
    case CURLE_COULDNT_CONNECT:
        r->unreachable = 1;
        error_set(err, CHOIR_EXIT_SERVER, "%s: %s", r->url, os_errno == ECONNREFUSED ?
                  "connection refused" : os_errno ? strerror((int)os_errno) : detail);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        r->unreachable = contains(detail, "connect");
        error_set(err, CHOIR_EXIT_SERVER, "%s: timeout: %s", r->url, detail);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
        if (contains(detail, "subject name") || contains(detail, "host name"))
            error_set(err, CHOIR_EXIT_SERVER, "%s: the server's certificate does not name %s: %s "
                      "(name the CA server as its certificate does)", r->url, c->host, detail);
        else
            error_set(err, CHOIR_EXIT_SERVER, "%s: the server's certificate is not trusted by %s: "
                      "%s (if the CA was replaced, remove %s and run again)", r->url, c->cafile,
                      detail, c->cafile);
        break;
    case CURLE_SSL_CACERT_BADFILE:
        error_set(err, CHOIR_EXIT_INPUT, "%s: cannot load %s: %s", r->url, c->cafile, detail);
        break;
    case CURLE_SSL_CONNECT_ERROR:
        error_set(err, CHOIR_EXIT_SERVER, "%s: TLS handshake failed: %s%s", r->url, detail,
                  contains(detail, "wrong version number") ? " (plain HTTP?)" : "");
        break;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (r->body.no_memory)
            error_set(err, CHOIR_EXIT_INTERNAL, "%s: out of memory", r->url);
        else
            error_set(err, CHOIR_EXIT_SERVER, "%s: answer larger than %zu bytes", r->url, MAX_BODY);
        break;
    default:
        error_set(err, CHOIR_EXIT_SERVER, "%s: %s", r->url, detail);
        break;
    }
}

/* One request.  0 when an HTTP answer came (any status: r->status, r->body.buf);
 * -1 with err set when none did. */
static int http(const struct ca_conn *c, const char *method, const char *path, const char *body,
                size_t body_len, struct reply *r, struct choir_error *err)
{
    struct curl_slist *h = NULL;
    CURL *curl;
    CURLcode rc;
    int ret = -1;

    memset(r, 0, sizeof(*r));
    if (snprintf(r->url, sizeof(r->url), "%s%s", c->base, path) >= (int)sizeof(r->url)) {
        error_set(err, CHOIR_EXIT_INPUT, "URL %s%s too long", c->base, path);
        return -1;
    }
    curl = curl_easy_init();
    h = curl_slist_append(h, "Accept: text/plain");
    if (body && h)
        h = curl_slist_append(h, "Content-Type: text/plain");
    if (h)
        h = curl_slist_append(h, "Expect:");   /* no 100-continue round trip */
    if (!curl || !h || setup_curl(curl, c, r, h) < 0 ||
        (body && (curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK ||
                  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) != CURLE_OK ||
                  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body) != CURLE_OK))) {
        error_set(err, CHOIR_EXIT_INTERNAL, "%s: cannot set up libcurl", r->url);
        goto done;
    }
    rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        curl_failed(curl, c, r, rc, err);
        goto done;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    ret = 0;
done:
    curl_slist_free_all(h);
    curl_easy_cleanup(curl);
    return ret;
}

static void reply_free(struct reply *r)
{
    free(r->body.buf);
    r->body.buf = NULL;
}

/* The CA's own words: a JSON "message", else the first line of the body. */
static void server_message(const struct reply *r, char *buf, size_t size)
{
    json_t *doc = r->body.len ? json_loadb(r->body.buf, r->body.len, 0, NULL) : NULL;
    const char *text;

    buf[0] = '\0';
    if (doc) {
        const char *msg = json_string_value(json_object_get(doc, "message"));

        if (msg)
            text_printable(buf, size, msg, strlen(msg));
        json_decref(doc);
        if (msg)
            return;
    }
    if (!r->body.len)
        return;
    text = r->body.buf + strspn(r->body.buf, " \t\r\n");
    text_printable(buf, size, text, strcspn(text, "\r\n"));
}

/* An answer that is not the expected one, in one line. */
static void http_failed(const struct reply *r, enum choir_exit code, struct choir_error *err)
{
    char msg[SERVER_TEXT_MAX];

    server_message(r, msg, sizeof(msg));
    if (r->status >= 300 && r->status < 400)
        error_set(err, CHOIR_EXIT_SERVER, "%s: HTTP %ld: redirected (redirects are not followed: "
                  "name the CA server itself with --ca)", r->url, r->status);
    else
        error_set(err, code, "%s: HTTP %ld%s%s", r->url, r->status, msg[0] ? ": " : "", msg);
}

/* ---- the CA's certificate ---------------------------------------------- */

static int conn_init(struct ca_conn *c, const char *host, unsigned port, const struct puppet_ca_opts *o)
{
    memset(c, 0, sizeof(*c));
    text_copy(c->host, sizeof(c->host), host);
    c->port = port;
    c->connect_timeout = o->connect_timeout > 0 ? o->connect_timeout : DEFAULT_CONNECT_TIMEOUT;
    c->timeout = o->timeout > 0 ? o->timeout : DEFAULT_TIMEOUT;
    if (strchr(host, ':'))
        return snprintf(c->base, sizeof(c->base), "https://[%s]:%u", host, port) < (int)sizeof(c->base) ? 0 : -1;
    return snprintf(c->base, sizeof(c->base), "https://%s:%u", host, port) < (int)sizeof(c->base) ? 0 : -1;
}

static void report_fingerprints(const struct flow *f, const char *url)
{
    char subject[300], fp[200];

    emit(f, (struct puppet_ca_event){.kind = PUPPET_CA_FIRST_CONTACT, .url = url});
    for (int i = 0; i < sk_X509_num(f->cas); i++) {
        X509 *x = sk_X509_value(f->cas, i);

        subject_text(X509_get_subject_name(x), subject, sizeof(subject));
        cert_fingerprint(x, fp, sizeof(fp));
        emit(f, (struct puppet_ca_event){.kind = PUPPET_CA_FINGERPRINT, .url = url,
                                         .text = subject, .detail = fp});
    }
}

/* First contact: GET the CA certificate unverified, show it, save it. */
static int fetch_ca(struct flow *f, struct reply *r, struct choir_error *err)
{
    char *pem;
    size_t len;
    int rc;

    if (http(&f->conn, "GET", CA_API "/certificate/ca", NULL, 0, r, err) < 0)
        return -1;
    if (r->status != 200) {
        http_failed(r, CHOIR_EXIT_SERVER, err);
        error_prefix(err, "not a Puppet CA");
        return -1;
    }
    if (!(f->cas = parse_certs(r->body.buf ? r->body.buf : "", r->body.len))) {
        error_set(err, CHOIR_EXIT_SERVER, "%s: the answer holds no PEM certificate", r->url);
        return -1;
    }
    report_fingerprints(f, r->url);
    if (!(pem = certs_pem(f->cas, &len))) {
        error_set(err, CHOIR_EXIT_INTERNAL, "cannot encode the CA certificate");
        return -1;
    }
    rc = write_new(f->p.ca, 0644, pem, len, err);
    free(pem);
    if (rc == 0)
        emit(f, (struct puppet_ca_event){.kind = PUPPET_CA_CA_SAVED, .path = f->p.ca});
    return rc;
}

/* ca.pem (existing, or just saved): trusted, and the server must prove it
 * belongs to it before any key is made. */
static int trust_ca(struct flow *f, struct reply *r, struct choir_error *err)
{
    BIO *bio = read_bio(f->p.ca, err);
    char *text;
    size_t len;

    if (!bio)
        return -1;
    text = bio_text(bio, &len);
    BIO_free(bio);
    f->cas = text ? parse_certs(text, len) : NULL;
    free(text);
    if (!f->cas) {
        error_set(err, CHOIR_EXIT_INPUT, "%s: no PEM certificate in it (remove it to fetch the "
                  "CA certificate again)", f->p.ca);
        return -1;
    }
    f->conn.cafile = f->p.ca;
    /* A verified round trip now, so a wrong server fails before any key is made. */
    if (http(&f->conn, "GET", CA_API "/certificate/ca", NULL, 0, r, err) < 0)
        return -1;
    if (r->status != 200) {
        http_failed(r, CHOIR_EXIT_SERVER, err);
        return -1;
    }
    emit(f, (struct puppet_ca_event){.kind = PUPPET_CA_CA_TRUSTED, .url = r->url, .path = f->p.ca});
    return 0;
}

/* Talks to one server; *unreachable tells whether another may be tried. */
static int contact(struct flow *f, const char *host, unsigned port, int *unreachable,
                   struct choir_error *err)
{
    struct reply r = {0};
    int rc;

    *unreachable = 0;
    if (conn_init(&f->conn, host, port, f->o) < 0) {
        error_set(err, CHOIR_EXIT_INPUT, "CA server name %s too long", host);
        return -1;
    }
    sk_X509_pop_free(f->cas, X509_free);
    f->cas = NULL;
    rc = exists(f->p.ca) ? 0 : fetch_ca(f, &r, err);
    *unreachable = rc < 0 && r.unreachable;
    reply_free(&r);
    if (rc == 0) {
        sk_X509_pop_free(f->cas, X509_free);
        f->cas = NULL;
        memset(&r, 0, sizeof(r));
        rc = trust_ca(f, &r, err);
        *unreachable = rc < 0 && r.unreachable;
        reply_free(&r);
    }
    if (rc == 0)
        f->conn.cafile = f->p.ca;
    return rc;
}

/* No server named: the SRV targets of _x-puppet-ca._tcp, then puppet:8140. */
static int contact_discovered(struct flow *f, struct choir_error *err)
{
    struct srv_target t[SRV_MAX_TARGETS];
    char name[300], why[700];
    size_t n = 0;
    int unreachable = 0;

    srv_discover(CA_SRV_PREFIX, f->o->srv_domain, t, SRV_MAX_TARGETS, &n, name, sizeof(name), why,
                 sizeof(why));
    for (size_t i = 0; i < n; i++) {
        if (contact(f, t[i].host, t[i].port, &unreachable, err) == 0)
            return 0;
        if (!unreachable)
            return -1;   /* it answered: its answer is the result */
        snprintf(why, sizeof(why), "none of the %zu servers of SRV %s answered", n, name);
    }
    if (contact(f, CA_FALLBACK_HOST, CA_DEFAULT_PORT, &unreachable, err) == 0)
        return 0;
    if (unreachable)
        error_prefix(err, "no CA server given (--ca, puppet.server), %s, and %s:%d failed", why,
                     CA_FALLBACK_HOST, CA_DEFAULT_PORT);
    return -1;
}

static int contact_ca(struct flow *f, struct choir_error *err)
{
    struct hostport hp;
    char shown[80];
    int unreachable;

    if (!f->o->server || !*f->o->server)
        return contact_discovered(f, err);
    if (hostport_parse(f->o->server, CA_DEFAULT_PORT, &hp) == 0)
        return contact(f, hp.host, hp.port, &unreachable, err);
    text_printable(shown, sizeof(shown), f->o->server, strlen(f->o->server));
    error_set(err, CHOIR_EXIT_INPUT, "invalid CA server '%s': expected HOST, HOST:PORT or "
              "[IPV6]:PORT", shown);
    return -1;
}

/* ---- key and request --------------------------------------------------- */

static int new_key_and_csr(struct flow *f, struct choir_error *err)
{
    BIO *bio;
    char *pem = NULL, fp[200];
    size_t len = 0;
    int rc;

    if (exists(f->p.csr)) {
        error_set(err, CHOIR_EXIT_INPUT, "%s exists but its key %s does not: refusing to "
                  "overwrite it (remove it to start again)", f->p.csr, f->p.key);
        return -1;
    }
    if (!(f->key = make_key(err)))
        return -1;
    bio = BIO_new(BIO_s_mem());
    if (bio && PEM_write_bio_PrivateKey(bio, f->key, NULL, NULL, 0, NULL, NULL) == 1)
        pem = bio_text(bio, &len);
    BIO_free(bio);
    if (!pem) {
        error_set(err, CHOIR_EXIT_INTERNAL, "cannot encode the private key");
        return -1;
    }
    rc = write_new(f->p.key, 0600, pem, len, err);
    OPENSSL_cleanse(pem, len);
    free(pem);
    if (rc < 0)
        return -1;
    emit(f, (struct puppet_ca_event){.kind = PUPPET_CA_KEY_CREATED, .path = f->p.key});
    if (!(f->csr = make_csr(f->key, f->o->certname, err)) || csr_to_pem(f, err) < 0 ||
        write_new(f->p.csr, 0644, f->csr_pem, f->csr_len, err) < 0)
        return -1;
    csr_fingerprint(f->csr, fp, sizeof(fp));
    emit(f, (struct puppet_ca_event){.kind = PUPPET_CA_CSR_CREATED, .path = f->p.csr, .detail = fp});
    return 0;
}

/* A key without a certificate: an earlier run is waiting for the CA. */
static int resume_key_and_csr(struct flow *f, struct choir_error *err)
{
    char cn[300], fp[200];
    int made = 0;

    if (!(f->key = load_key(f->p.key, err)))
        return -1;
    emit(f, (struct puppet_ca_event){.kind = PUPPET_CA_KEY_REUSED, .path = f->p.key});
    if (exists(f->p.csr)) {
        if (!(f->csr = load_csr(f->p.csr, err)))
            return -1;
        common_name(X509_REQ_get_subject_name(f->csr), cn, sizeof(cn));
        if (EVP_PKEY_eq(X509_REQ_get0_pubkey(f->csr), f->key) != 1 ||
            strcmp(cn, f->o->certname) != 0) {
            error_set(err, CHOIR_EXIT_INPUT, "%s is not a request for %s with the key %s: "
                      "refusing to overwrite it (remove it to make a new one)", f->p.csr,
                      f->o->certname, f->p.key);
            return -1;
        }
    } else if (!(f->csr = make_csr(f->key, f->o->certname, err))) {
        return -1;
    } else {
        made = 1;
    }
    if (csr_to_pem(f, err) < 0 || (made && write_new(f->p.csr, 0644, f->csr_pem, f->csr_len, err) < 0))
        return -1;
    csr_fingerprint(f->csr, fp, sizeof(fp));
    emit(f, (struct puppet_ca_event){.kind = made ? PUPPET_CA_CSR_CREATED : PUPPET_CA_CSR_REUSED,
                                     .path = f->p.csr, .detail = fp});
    return 0;
}

/* ---- submit, poll, save ------------------------------------------------ */

/* The CA already holds a request for the name: fine when it is ours. */
static int pending_is_ours(struct flow *f, struct choir_error *err)
{
    char path[URL_SIZE];
    struct reply r;
    int ours;

    snprintf(path, sizeof(path), CA_API "/certificate_request/%s", f->o->certname);
    if (http(&f->conn, "GET", path, NULL, 0, &r, err) < 0)
        return -1;
    ours = r.status == 200 && r.body.buf && csr_pem_is_ours(r.body.buf, r.body.len, f->key);
    if (!ours)
        error_set(err, CHOIR_EXIT_INPUT, "%s: the CA holds another request for %s, not for our "
                  "key %s (ask the CA admin to run 'puppetserver ca clean --certname %s', then "
                  "run again)", r.url, f->o->certname, f->p.key, f->o->certname);
    reply_free(&r);
    return ours ? 0 : -1;
}

static int submit(struct flow *f, struct choir_error *err)
{
    char path[URL_SIZE], msg[SERVER_TEXT_MAX];
    struct reply r;
    int rc = 0;

    snprintf(path, sizeof(path), CA_API "/certificate_request/%s", f->o->certname);
    if (http(&f->conn, "PUT", path, f->csr_pem, f->csr_len, &r, err) < 0)
        return -1;
    server_message(&r, msg, sizeof(msg));
    if (r.status == 200) {
        emit(f, (struct puppet_ca_event){.kind = PUPPET_CA_CSR_SUBMITTED, .url = r.url});
    } else if (r.status == 400 && contains(msg, "already has a requested certificate")) {
        rc = pending_is_ours(f, err);
        if (rc == 0)
            emit(f, (struct puppet_ca_event){.kind = PUPPET_CA_CSR_SUBMITTED, .url = r.url,
                                             .text = msg});
    } else {
        http_failed(&r, r.status >= 400 && r.status < 500 ? CHOIR_EXIT_INPUT : CHOIR_EXIT_SERVER, err);
        rc = -1;
    }
    reply_free(&r);
    return rc;
}

/* One check: 1 signed (*cert set), 0 not yet (404), -1 error. */
static int check_signed(struct flow *f, X509 **cert, char *url, struct choir_error *err)
{
    char path[URL_SIZE];
    STACK_OF(X509) *got;
    struct reply r;
    int rc = -1;

    snprintf(path, sizeof(path), CA_API "/certificate/%s", f->o->certname);
    if (http(&f->conn, "GET", path, NULL, 0, &r, err) < 0)
        return -1;
    text_copy(url, URL_SIZE, r.url);
    if (r.status == 404) {
        rc = 0;
    } else if (r.status != 200) {
        http_failed(&r, CHOIR_EXIT_SERVER, err);
    } else if (!(got = parse_certs(r.body.buf ? r.body.buf : "", r.body.len))) {
        error_set(err, CHOIR_EXIT_SERVER, "%s: the answer holds no PEM certificate", r.url);
    } else {
        *cert = sk_X509_shift(got);
        sk_X509_pop_free(got, X509_free);
        rc = 1;
    }
    reply_free(&r);
    return rc;
}

/* Sleeps until `until` (monotonic), reporting each second. */
static void count_down(const struct flow *f, const char *url, double deadline, double until,
                       long interval)
{
    double now;

    while ((now = monotonic_now()) < until) {
        double left = until - now, tick = left < 1.0 ? left : 1.0;
        struct timespec ts = {(time_t)tick, (long)((tick - (double)(time_t)tick) * 1e9)};

        nanosleep(&ts, NULL);
        now = monotonic_now();
        emit(f, (struct puppet_ca_event){.kind = PUPPET_CA_WAITING, .url = url,
                                         .remaining = deadline > now ? (long)(deadline - now + 0.5) : 0,
                                         .interval = interval});
    }
}

static int poll_cert(struct flow *f, X509 **cert, struct choir_error *err)
{
    long wait = f->o->wait > 0 ? f->o->wait : 0;
    long interval = f->o->poll_interval > 0 ? f->o->poll_interval : DEFAULT_POLL;
    double deadline = monotonic_now() + (double)wait, now;
    char url[URL_SIZE] = "";
    int rc;

    for (;;) {
        if ((rc = check_signed(f, cert, url, err)) != 0)
            return rc < 0 ? -1 : 0;
        now = monotonic_now();
        if (now >= deadline - 0.05)
            break;
        emit(f, (struct puppet_ca_event){.kind = PUPPET_CA_WAITING, .url = url, .polled = 1,
                                         .remaining = (long)(deadline - now + 0.5),
                                         .interval = interval});
        count_down(f, url, deadline, now + (double)interval < deadline ? now + (double)interval
                                                                       : deadline, interval);
    }
    error_set(err, CHOIR_EXIT_SERVER, "%s: HTTP 404: %s is not signed after %ld s; the key and "
              "request stay in %s: once the CA admin has run 'puppetserver ca sign --certname "
              "%s', run 'choir request-cert' again", url, f->o->certname, wait, f->p.dir,
              f->o->certname);
    return -1;
}

static int save_cert(struct flow *f, X509 *cert, struct choir_error *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL, subject[300];
    size_t len = 0;
    int rc;

    if (bio && PEM_write_bio_X509(bio, cert) == 1)
        pem = bio_text(bio, &len);
    BIO_free(bio);
    if (!pem) {
        error_set(err, CHOIR_EXIT_INTERNAL, "cannot encode the certificate");
        return -1;
    }
    rc = write_new(f->p.cert, 0644, pem, len, err);
    free(pem);
    if (rc < 0)
        return -1;
    subject_text(X509_get_subject_name(cert), subject, sizeof(subject));
    emit(f, (struct puppet_ca_event){.kind = PUPPET_CA_CERT_SAVED, .path = f->p.cert, .text = subject});
    return 0;
}

/* Every CRL of the answer must be signed by one of the CA certificates. */
static int crls_verified(const struct flow *f, const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509_CRL *crl;
    int n = 0, ok = bio != NULL;

    while (ok && (crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL))) {
        int signed_ok = 0;

        for (int i = 0; !signed_ok && i < sk_X509_num(f->cas); i++) {
            X509 *ca = sk_X509_value(f->cas, i);

            signed_ok = X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) == 0 &&
                        X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1;
        }
        ok = signed_ok;
        n++;
        X509_CRL_free(crl);
    }
    ERR_clear_error();
    BIO_free(bio);
    return ok && n > 0;
}

/* The CRL when the CA serves one; problems are reported, not fatal. */
static void fetch_crl(struct flow *f)
{
    struct choir_error e = {CHOIR_EXIT_OK, ""};
    char why[sizeof(e.msg) + 64];
    struct reply r = {0};

    if (http(&f->conn, "GET", CA_API "/certificate_revocation_list/ca", NULL, 0, &r, &e) < 0) {
        text_copy(why, sizeof(why), e.msg);
    } else if (r.status != 200) {
        http_failed(&r, CHOIR_EXIT_SERVER, &e);
        text_copy(why, sizeof(why), e.msg);
    } else if (!r.body.buf || !crls_verified(f, r.body.buf, r.body.len)) {
        snprintf(why, sizeof(why), "%s: not a CRL signed by the CA", r.url);
    } else if (write_replace(f->p.crl, 0644, r.body.buf, r.body.len, &e) < 0) {
        text_copy(why, sizeof(why), e.msg);
    } else {
        emit(f, (struct puppet_ca_event){.kind = PUPPET_CA_CRL_SAVED, .path = f->p.crl});
        why[0] = '\0';
    }
    if (why[0])
        emit(f, (struct puppet_ca_event){.kind = PUPPET_CA_CRL_SKIPPED, .text = why});
    reply_free(&r);
}

/* ---- the flow ---------------------------------------------------------- */

static int check_inputs(const struct puppet_ca_opts *o, struct choir_error *err)
{
    char shown[80];

    if (!o->certname || !*o->certname) {
        error_set(err, CHOIR_EXIT_INPUT, "no certname given (--certname or puppet.certname)");
        return -1;
    }
    if (!names_certname_ok(o->certname, strlen(o->certname))) {
        text_printable(shown, sizeof(shown), o->certname, strlen(o->certname));
        error_set(err, CHOIR_EXIT_INPUT, "invalid certname '%s': lowercase letters, digits, '.', "
                  "'_' and '-', not starting with '.' or '-'", shown);
        return -1;
    }
    if (!o->ssldir || !*o->ssldir) {
        error_set(err, CHOIR_EXIT_INPUT, "no ssldir given (--ssldir or puppet.ssldir)");
        return -1;
    }
    return http_global_init(err);
}

static int run(struct flow *f, struct choir_error *err)
{
    X509 *cert = NULL;
    int resume, rc;

    if (paths_init(&f->p, f->o->ssldir, f->o->certname, err) < 0)
        return -1;
    if (exists(f->p.cert)) {
        error_set(err, CHOIR_EXIT_INPUT, "%s already exists: refusing to overwrite it (%s already "
                  "has a certificate; to request a new one, remove it and %s)", f->p.cert,
                  f->o->certname, f->p.key);
        return -1;
    }
    resume = exists(f->p.key);
    if (make_dirs(&f->p, err) < 0 || contact_ca(f, err) < 0)
        return -1;
    if (resume ? resume_key_and_csr(f, err) < 0 : new_key_and_csr(f, err) < 0)
        return -1;
    /* Resuming, the certificate may be signed already: look before submitting. */
    if (resume && (rc = check_signed(f, &cert, (char[URL_SIZE]){0}, err)) < 0)
        return -1;
    if (!cert && (submit(f, err) < 0 || poll_cert(f, &cert, err) < 0))
        return -1;
    rc = check_cert(f, cert, f->conn.base, err) < 0 || save_cert(f, cert, err) < 0 ? -1 : 0;
    X509_free(cert);
    if (rc == 0)
        fetch_crl(f);
    return rc;
}

int puppet_ca_request_cert(const struct puppet_ca_opts *opts, char *cert, size_t certsize,
                           struct choir_error *err)
{
    struct flow f;
    int rc;

    memset(&f, 0, sizeof(f));
    f.o = opts;
    if (cert && certsize)
        cert[0] = '\0';
    if (check_inputs(opts, err) < 0)
        return -1;
    rc = run(&f, err);
    if (rc == 0 && cert && certsize)
        text_copy(cert, certsize, f.p.cert);
    sk_X509_pop_free(f.cas, X509_free);
    EVP_PKEY_free(f.key);
    X509_REQ_free(f.csr);
    free(f.csr_pem);
    return rc;
}

/* ---- the progress printer ---------------------------------------------- */

void puppet_ca_printer_finish(struct puppet_ca_printer *p)
{
    if (p->open_line)
        fputc('\n', p->out);
    p->open_line = 0;
    fflush(p->out);
}

static void print_waiting(struct puppet_ca_printer *p, const struct puppet_ca_event *ev)
{
    if (p->tty) {
        fprintf(p->out, "\rwaiting for the CA to sign %s: %ld s left (checking every %ld s; ^C "
                "stops, a later run resumes)\033[K", ev->certname, ev->remaining, ev->interval);
        p->open_line = 1;
        fflush(p->out);
    } else if (ev->polled) {
        fprintf(p->out, "waiting for the CA to sign %s: not signed yet, %ld s left\n",
                ev->certname, ev->remaining);
        fflush(p->out);
    }
}

void puppet_ca_print_progress(void *ctx, const struct puppet_ca_event *ev)
{
    struct puppet_ca_printer *p = ctx;
    FILE *out = p->out;

    if (ev->kind == PUPPET_CA_WAITING) {
        print_waiting(p, ev);
        return;
    }
    puppet_ca_printer_finish(p);
    switch (ev->kind) {
    case PUPPET_CA_FIRST_CONTACT:
        fprintf(out, "first contact with the CA %s: trusting its certificate on first use\n", ev->url);
        break;
    case PUPPET_CA_FINGERPRINT:
        fprintf(out, "CA certificate %s\n  SHA-256 fingerprint %s\n  (compare it on the CA server: "
                "openssl x509 -noout -fingerprint -sha256 -in $(puppet config print cacert "
                "--section server))\n", ev->text, ev->detail);
        break;
    case PUPPET_CA_CA_SAVED: fprintf(out, "saved the CA certificate in %s\n", ev->path); break;
    case PUPPET_CA_CA_TRUSTED: fprintf(out, "CA %s verified with %s\n", ev->url, ev->path); break;
    case PUPPET_CA_KEY_CREATED: fprintf(out, "new private key %s\n", ev->path); break;
    case PUPPET_CA_KEY_REUSED:
        fprintf(out, "resuming with the existing private key %s\n", ev->path);
        break;
    case PUPPET_CA_CSR_CREATED:
    case PUPPET_CA_CSR_REUSED:
        fprintf(out, "%s request %s\n  SHA-256 fingerprint %s (the CA admin sees it in "
                "'puppetserver ca list')\n", ev->kind == PUPPET_CA_CSR_CREATED ? "new" : "existing",
                ev->path, ev->detail);
        break;
    case PUPPET_CA_CSR_SUBMITTED:
        fprintf(out, "submitted the request to %s%s%s\n", ev->url, ev->text ? ": " : "",
                ev->text ? ev->text : "");
        break;
    case PUPPET_CA_CERT_SAVED: fprintf(out, "signed: %s (%s)\n", ev->path, ev->text); break;
    case PUPPET_CA_CRL_SAVED: fprintf(out, "saved the CRL in %s\n", ev->path); break;
    case PUPPET_CA_CRL_SKIPPED: fprintf(out, "no CRL saved: %s\n", ev->text); break;
    case PUPPET_CA_WAITING: break;
    }
    fflush(out);
}
