/* puppet_http.c - PuppetServer over mutual TLS (libcurl).
 *
 * Contract (see puppet_http.h): one call fetches
 * `GET https://HOST:PORT/puppet/v3/environment/ENV` with
 * `Accept: application/json`, presenting the ssldir's certs/<certname>.pem
 * and private_keys/<certname>.pem, trusting only certs/ca.pem (peer and
 * host name are verified) and checking the server against crl.pem when that
 * file exists.  Every failure becomes one line that names the URL and what
 * went wrong in the user's terms (which file, which TLS check, which HTTP
 * status with Puppet's "message"); library error codes never leak out bare.
 *
 * Server choice: opts->server; else the SRV targets of
 * _x-puppet._tcp.<domain> in RFC 2782 order, moving to the next one only
 * when a target cannot be reached; else puppet:8140.  Redirects are never
 * followed, only https is allowed, and the body is bounded by
 * opts->max_bytes (default 64 MiB).
 *
 * Proxies: the proxy environment (https_proxy, all_proxy) is deliberately
 * ignored.  This is an authenticated, certificate-pinned channel to the
 * site's own PuppetServer; a corporate proxy cannot carry mutual TLS
 * through anyway and must not see the traffic, and Puppet's agent itself
 * only uses a proxy configured in puppet.conf. */
#include "net/puppet_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "core/hostport.h"
#include "core/text.h"
#include "net/http_body.h"
#include "net/srv.h"

#define PUPPET_DEFAULT_PORT 8140
#define PUPPET_FALLBACK_HOST "puppet"
#define PUPPET_SRV_PREFIX "_x-puppet._tcp."
#define DEFAULT_MAX_BYTES ((size_t)64 << 20)
#define DEFAULT_CONNECT_TIMEOUT 10L
#define DEFAULT_TIMEOUT 60L
#define ENVIRONMENT_MAX 255
#define PATH_SIZE 4096
#define URL_SIZE 512
#define SERVER_TEXT_MAX 300   /* how much of a server's own message we quote */

#ifdef CHOIR_VERSION
#define USER_AGENT "choir/" CHOIR_VERSION
#else
#define USER_AGENT "choir"
#endif

/* The ssldir files of one identity. */
struct ssl_files {
    const char *dir;
    const char *certname;
    char cert[PATH_SIZE];
    char key[PATH_SIZE];
    char ca[PATH_SIZE];
    char crl[PATH_SIZE];
    int have_crl;
};

struct endpoint {
    char host[256];
    unsigned port;
};

/* One request to one server. */
struct fetch {
    const struct ssl_files *files;
    const struct endpoint *ep;
    char url[URL_SIZE];
    char errbuf[CURL_ERROR_SIZE];
    struct http_body body;
    long status;
    int reachable_failure;   /* could not reach the server: try the next one */
};

/* ---- curl's global state, once per process ---------------------------- */



/* ---- input checks ----------------------------------------------------- */

static int check_environment(const char *env, struct choir_error *err)
{
    size_t len = env ? strlen(env) : 0;
    char shown[80];

    if (len == 0) {
        error_set(err, CHOIR_EXIT_INPUT, "no environment name given");
        return -1;
    }
    if (len <= ENVIRONMENT_MAX && strspn(env, "abcdefghijklmnopqrstuvwxyz0123456789_") == len)
        return 0;
    text_printable(shown, sizeof(shown), env, len);
    error_set(err, CHOIR_EXIT_INPUT,
              "invalid environment name '%s': Puppet environment names are lowercase letters, "
              "digits and '_'", shown);
    return -1;
}

static int check_certname(const char *certname, struct choir_error *err)
{
    char shown[80];

    if (!certname || !*certname) {
        error_set(err, CHOIR_EXIT_INPUT, "no certname configured (set puppet.certname)");
        return -1;
    }
    if (certname[0] != '.' && !strchr(certname, '/') && strlen(certname) < 256) {
        size_t i;

        for (i = 0; certname[i] && (unsigned char)certname[i] > 0x20; i++)
            ;
        if (!certname[i])
            return 0;
    }
    text_printable(shown, sizeof(shown), certname, strlen(certname));
    error_set(err, CHOIR_EXIT_INPUT, "invalid certname '%s'", shown);
    return -1;
}

/* Checks that ssldir/rel can be opened for reading. */
static int check_readable(const struct ssl_files *f, const char *path, const char *rel,
                          const char *hint, struct choir_error *err)
{
    int e = file_readable(path);

    if (!e)
        return 0;
    error_set(err, CHOIR_EXIT_SERVER, "ssldir %s: %s: %s%s", f->dir, rel, strerror(e), hint);
    return -1;
}

static int ssl_path(char *buf, const struct ssl_files *f, const char *rel,
                    struct choir_error *err)
{
    if (snprintf(buf, PATH_SIZE, "%s/%s", f->dir, rel) < PATH_SIZE)
        return 0;
    error_set(err, CHOIR_EXIT_INPUT, "ssldir %s: path too long", f->dir);
    return -1;
}

static int check_ssldir(const char *dir, struct choir_error *err)
{
    struct stat st;
    int e;

    if (!dir || !*dir) {
        error_set(err, CHOIR_EXIT_INPUT, "no ssldir configured (set puppet.ssldir)");
        return -1;
    }
    e = stat(dir, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    if (!e)
        return 0;
    error_set(err, CHOIR_EXIT_SERVER, "ssldir %s: %s (run 'choir request-cert' or set "
              "puppet.ssldir)", dir, strerror(e));
    return -1;
}

/* Fills the paths of the ssldir files and checks the required ones. */
static int ssl_files_init(struct ssl_files *f, const char *dir, const char *certname,
                          struct choir_error *err)
{
    static const char hint[] = " (run 'choir request-cert' or set puppet.certname)";
    char cert_rel[300], key_rel[300];
    struct stat st;

    memset(f, 0, sizeof(*f));
    f->dir = dir;
    f->certname = certname;
    if (check_ssldir(dir, err) < 0)
        return -1;
    snprintf(cert_rel, sizeof(cert_rel), "certs/%s.pem", certname);
    snprintf(key_rel, sizeof(key_rel), "private_keys/%s.pem", certname);
    if (ssl_path(f->cert, f, cert_rel, err) || ssl_path(f->key, f, key_rel, err) ||
        ssl_path(f->ca, f, "certs/ca.pem", err) || ssl_path(f->crl, f, "crl.pem", err))
        return -1;
    if (check_readable(f, f->cert, cert_rel, hint, err) ||
        check_readable(f, f->key, key_rel, hint, err) ||
        check_readable(f, f->ca, "certs/ca.pem", " (run 'choir request-cert')", err))
        return -1;
    if (stat(f->crl, &st) != 0 && errno == ENOENT)
        return 0;   /* the CRL is optional */
    if (check_readable(f, f->crl, "crl.pem", "", err))
        return -1;
    f->have_crl = 1;
    return 0;
}

/* ---- servers ---------------------------------------------------------- */

/* "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address. */
static int parse_server(const char *server, struct endpoint *ep, struct choir_error *err)
{
    struct hostport hp;
    char shown[80];

    if (hostport_parse(server, PUPPET_DEFAULT_PORT, &hp) == 0) {
        memcpy(ep->host, hp.host, sizeof(ep->host));
        ep->port = hp.port;
        return 0;
    }
    text_printable(shown, sizeof(shown), server, strlen(server));
    error_set(err, CHOIR_EXIT_INPUT, "invalid server '%s': expected HOST, HOST:PORT or [IPV6]:PORT",
              shown);
    return -1;
}

/* "host:port" or "[v6]:port", as written in URLs and messages. */
static void endpoint_text(const struct endpoint *ep, char *buf, size_t size)
{
    if (strchr(ep->host, ':'))
        snprintf(buf, size, "[%s]:%u", ep->host, ep->port);
    else
        snprintf(buf, size, "%s:%u", ep->host, ep->port);
}

/* ---- the transfer ----------------------------------------------------- */


static int setup_tls(CURL *curl, const struct ssl_files *files)
{
    CURLcode rc = CURLE_OK;

#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(curl, opt, val)
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SET(CURLOPT_CAINFO, files->ca);
    SET(CURLOPT_CAPATH, (char *)NULL);   /* trust the Puppet CA only, not the system's */
    SET(CURLOPT_SSLCERT, files->cert);
    SET(CURLOPT_SSLCERTTYPE, "PEM");
    SET(CURLOPT_SSLKEY, files->key);
    SET(CURLOPT_SSLKEYTYPE, "PEM");
    SET(CURLOPT_KEYPASSWD, "");   /* an encrypted key fails; OpenSSL never prompts */
    if (files->have_crl)
        SET(CURLOPT_CRLFILE, files->crl);
#undef SET
    return rc == CURLE_OK ? 0 : -1;
}

static int setup_request(CURL *curl, struct fetch *f, const struct puppet_http_opts *opts,
                         struct curl_slist *headers)
{
    long connect_timeout = opts->connect_timeout > 0 ? opts->connect_timeout : DEFAULT_CONNECT_TIMEOUT;
    long timeout = opts->timeout > 0 ? opts->timeout : DEFAULT_TIMEOUT;
    CURLcode rc = CURLE_OK;

#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(curl, opt, val)
    SET(CURLOPT_URL, f->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "https");
#else
    SET(CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOPROXY, "*");   /* see the header comment: no proxy */
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT, connect_timeout);
    SET(CURLOPT_TIMEOUT, timeout);
    SET(CURLOPT_ERRORBUFFER, f->errbuf);
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_USERAGENT, USER_AGENT);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->body.max);
    SET(CURLOPT_WRITEFUNCTION, http_body_write);
    SET(CURLOPT_WRITEDATA, &f->body);
#undef SET
    if (rc != CURLE_OK)
        return -1;
    return setup_tls(curl, f->files);
}

/* ---- curl failures in words ------------------------------------------- */

static int contains(const char *text, const char *word)
{
    return strcasestr(text, word) != NULL;
}

/* A TLS alert from the server about our certificate, or NULL. */
static const char *client_cert_alert(const char *detail)
{
    if (contains(detail, "certificate revoked"))
        return "it is revoked";
    if (contains(detail, "certificate expired"))
        return "it has expired";
    if (contains(detail, "unknown ca"))
        return "it is signed by a CA the server does not trust";
    if (contains(detail, "bad certificate") || contains(detail, "certificate required") ||
        contains(detail, "certificate unknown") || contains(detail, "unsupported certificate") ||
        contains(detail, "access denied"))
        return "signed by another CA, revoked, or expired";
    return NULL;
}

static void client_cert_rejected(struct fetch *f, const char *why, const char *detail,
                                 struct choir_error *err)
{
    error_set(err, CHOIR_EXIT_SERVER,
              "%s: the server did not accept our client certificate %s (%s)%s%s", f->url,
              f->files->cert, why, *detail ? ": " : "", detail);
}

static void tls_failed(struct fetch *f, const char *hp, const char *detail, struct choir_error *err)
{
    const char *why = client_cert_alert(detail);

    if (why)
        client_cert_rejected(f, why, detail, err);
    else if (contains(detail, "wrong version number") || contains(detail, "packet length too long"))
        error_set(err, CHOIR_EXIT_SERVER, "%s: %s does not speak TLS (plain HTTP?): %s",
                  f->url, hp, detail);
    else
        error_set(err, CHOIR_EXIT_SERVER, "%s: TLS handshake with %s failed: %s", f->url, hp, detail);
}

static void server_cert_failed(CURL *curl, struct fetch *f, const char *detail,
                               struct choir_error *err)
{
    long vr = X509_V_OK;
    const char *dir = f->files->dir;

    /* curl checks the host name itself, after OpenSSL accepted the chain;
     * the verify result is then not X509_V_OK but curl's "unset" value. */
    curl_easy_getinfo(curl, CURLINFO_SSL_VERIFYRESULT, &vr);
    if (contains(detail, "target host name") || contains(detail, "subject name"))
        error_set(err, CHOIR_EXIT_SERVER, "%s: server name mismatch: the server's certificate is not "
                  "for %s: %s", f->url, f->ep->host, detail);
    else if (vr == X509_V_ERR_CERT_REVOKED)
        error_set(err, CHOIR_EXIT_SERVER, "%s: the server's certificate is revoked (%s/crl.pem)",
                  f->url, dir);
    else if (vr == X509_V_ERR_CERT_HAS_EXPIRED)
        error_set(err, CHOIR_EXIT_SERVER, "%s: the server's certificate has expired", f->url);
    else if (vr == X509_V_ERR_UNABLE_TO_GET_CRL)
        error_set(err, CHOIR_EXIT_SERVER, "%s: %s/crl.pem holds no CRL of the CA that signed the "
                  "server's certificate", f->url, dir);
    else if (vr == X509_V_ERR_CRL_HAS_EXPIRED)
        error_set(err, CHOIR_EXIT_SERVER, "%s: %s/crl.pem has expired (fetch a fresh one from the "
                  "Puppet CA)", f->url, dir);
    else
        error_set(err, CHOIR_EXIT_SERVER, "%s: server certificate not trusted by %s: %s",
                  f->url, f->files->ca, detail);
}

/* Reads the first PEM object of a file with `reader` (PEM_read_X509...). */
static void *read_pem(const char *path, void *(*reader)(FILE *))
{
    FILE *fp = fopen(path, "r");
    void *obj;

    if (!fp)
        return NULL;
    obj = reader(fp);
    fclose(fp);
    return obj;
}

static void *read_x509(FILE *fp)
{
    return PEM_read_X509(fp, NULL, NULL, NULL);
}

static void *read_key(FILE *fp)
{
    /* An empty passphrase: Puppet's keys are not encrypted, and OpenSSL
     * must never prompt on the terminal. */
    return PEM_read_PrivateKey(fp, NULL, NULL, (void *)"");
}

/* curl only says "unable to set private key file": find out why. */
static const char *diagnose_cert_and_key(const struct ssl_files *files, const char **path)
{
    X509 *cert = read_pem(files->cert, read_x509);
    EVP_PKEY *key = read_pem(files->key, read_key);
    const char *why = NULL;

    ERR_clear_error();
    if (!cert) {
        *path = files->cert;
        why = "not a PEM certificate";
    } else if (!key) {
        *path = files->key;
        why = "not an unencrypted PEM private key";
    } else if (X509_check_private_key(cert, key) != 1) {
        why = "key does not match certificate";
    }
    ERR_clear_error();
    X509_free(cert);
    EVP_PKEY_free(key);
    return why;
}

static void our_cert_failed(struct fetch *f, const char *detail, struct choir_error *err)
{
    const char *path = NULL;
    const char *why = diagnose_cert_and_key(f->files, &path);

    if (why && path)
        error_set(err, CHOIR_EXIT_SERVER, "%s: cannot use %s: %s", f->url, path, why);
    else if (why)
        error_set(err, CHOIR_EXIT_SERVER, "%s: key does not match certificate: %s is not the key "
                  "of %s", f->url, f->files->key, f->files->cert);
    else
        error_set(err, CHOIR_EXIT_SERVER, "%s: cannot use our certificate %s and key %s: %s",
                  f->url, f->files->cert, f->files->key, detail);
}

/* curl counts the TLS handshake as part of connecting and records no
 * connect time until it is done, so its own words tell the phases apart. */
static void timed_out(CURL *curl, struct fetch *f, const char *hp, const char *detail,
                      struct choir_error *err)
{
    curl_off_t handshaken = 0;

    curl_easy_getinfo(curl, CURLINFO_APPCONNECT_TIME_T, &handshaken);
    if (contains(detail, "SSL connection timeout")) {
        f->reachable_failure = 1;
        error_set(err, CHOIR_EXIT_SERVER, "%s: timeout in the TLS handshake with %s", f->url, hp);
    } else if (handshaken == 0) {
        f->reachable_failure = 1;
        error_set(err, CHOIR_EXIT_SERVER, "%s: timeout connecting to %s", f->url, hp);
    } else {
        error_set(err, CHOIR_EXIT_SERVER, "%s: timeout waiting for the answer of %s", f->url, hp);
    }
}

static void connect_failed(CURL *curl, struct fetch *f, const char *hp, const char *detail,
                           struct choir_error *err)
{
    long os_errno = 0;

    curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
    f->reachable_failure = 1;
    if (os_errno == ECONNREFUSED)
        error_set(err, CHOIR_EXIT_SERVER, "%s: connection refused by %s", f->url, hp);
    else if (os_errno)
        error_set(err, CHOIR_EXIT_SERVER, "%s: cannot connect to %s: %s", f->url, hp,
                  strerror((int)os_errno));
    else
        error_set(err, CHOIR_EXIT_SERVER, "%s: cannot connect to %s: %s", f->url, hp, detail);
}

static void curl_failed(CURL *curl, struct fetch *f, CURLcode rc, struct choir_error *err)
{
    const char *detail = f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc);
    char hp[300];

    endpoint_text(f->ep, hp, sizeof(hp));
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        f->reachable_failure = 1;
        error_set(err, CHOIR_EXIT_SERVER, "%s: could not resolve host %s", f->url, f->ep->host);
        break;
    case CURLE_COULDNT_CONNECT:
        connect_failed(curl, f, hp, detail, err);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        timed_out(curl, f, hp, detail, err);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
        server_cert_failed(curl, f, detail, err);
        break;
    case CURLE_SSL_CERTPROBLEM:
        our_cert_failed(f, detail, err);
        break;
    case CURLE_SSL_CACERT_BADFILE:
        error_set(err, CHOIR_EXIT_SERVER, "%s: cannot load %s: %s", f->url, f->files->ca, detail);
        break;
    case CURLE_SSL_CRL_BADFILE:
        error_set(err, CHOIR_EXIT_SERVER, "%s: cannot load %s: %s", f->url, f->files->crl, detail);
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        tls_failed(f, hp, detail, err);
        break;
    case CURLE_GOT_NOTHING:
        error_set(err, CHOIR_EXIT_SERVER, "%s: %s closed the connection without answering",
                  f->url, hp);
        break;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (f->body.no_memory) {
            error_set(err, CHOIR_EXIT_INTERNAL, "%s: out of memory", f->url);
            break;
        }
        error_set(err, CHOIR_EXIT_SERVER, "%s: response larger than %zu bytes", f->url, f->body.max);
        break;
    default:
        error_set(err, CHOIR_EXIT_SERVER, "%s: %s: %s", f->url, curl_easy_strerror(rc), detail);
        break;
    }
}

/* ---- HTTP answers that are not 200 ------------------------------------ */

/* Drops the "400 " that nginx puts before its page titles. */
static void strip_status(char *title, long status)
{
    char code[32];
    size_t n = (size_t)snprintf(code, sizeof(code), "%ld ", status);

    if (strncmp(title, code, n) == 0)
        memmove(title, title + n, strlen(title + n) + 1);
}

/* Puppet's JSON error {"message": ...}, else an HTML <title>, else the
 * first line of the body; "" when there is nothing to quote. */
static void server_message(const struct fetch *f, char *buf, size_t size, int *is_title)
{
    json_t *doc = f->body.len ? json_loadb(f->body.buf, f->body.len, 0, NULL) : NULL;
    const char *text = NULL, *end;
    size_t len = 0;

    *is_title = 0;
    buf[0] = '\0';
    if (doc) {
        const char *msg = json_string_value(json_object_get(doc, "message"));

        if (msg)
            text_printable(buf, size, msg, strlen(msg));
        json_decref(doc);
        return;
    }
    if (!f->body.len)
        return;
    if ((text = strcasestr(f->body.buf, "<title>")) && (end = strcasestr(text, "</title>"))) {
        text += strlen("<title>");
        len = (size_t)(end - text);
        *is_title = 1;
    } else {
        text = f->body.buf + strspn(f->body.buf, " \t\r\n");
        len = strcspn(text, "\r\n");
    }
    text_printable(buf, size, text, len);
    if (*is_title)
        strip_status(buf, f->status);
}

static void http_failed(CURL *curl, struct fetch *f, const char *certname, struct choir_error *err)
{
    char msg[SERVER_TEXT_MAX];
    char *location = NULL;
    int is_title;
    long s = f->status;

    server_message(f, msg, sizeof(msg), &is_title);
    if (s >= 300 && s < 400) {
        curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &location);
        error_set(err, CHOIR_EXIT_SERVER, "%s: HTTP %ld: redirected to %s (redirects are not "
                  "followed: set puppet.server to the real server)", f->url, s,
                  location ? location : "(no Location)");
    } else if (s == 404) {
        error_set(err, CHOIR_EXIT_INPUT, "%s: HTTP 404: %s", f->url,
                  msg[0] ? msg : "(unknown environment?)");
    } else if (s == 403) {
        error_set(err, CHOIR_EXIT_SERVER, "%s: HTTP 403: %s%sadd a rule to PuppetServer's "
                  "auth.conf allowing %s to GET /puppet/v3/environment", f->url, msg,
                  msg[0] ? "; " : "", certname);
    } else if (s == 401) {
        error_set(err, CHOIR_EXIT_SERVER, "%s: HTTP 401: %s%sPuppetServer did not authenticate "
                  "%s: check that %s is signed by its CA and that auth.conf allows %s to GET "
                  "/puppet/v3/environment", f->url, msg, msg[0] ? "; " : "", certname,
                  f->files->cert, certname);
    } else if (s == 400 && is_title && contains(msg, "SSL certificate")) {
        error_set(err, CHOIR_EXIT_SERVER, "%s: HTTP 400: %s: the server did not accept our client "
                  "certificate %s (signed by another CA, revoked, or expired)", f->url, msg,
                  f->files->cert);
    } else {
        error_set(err, CHOIR_EXIT_SERVER, "%s: HTTP %ld%s%s", f->url, s, msg[0] ? ": " : "", msg);
    }
}

/* ---- one server ------------------------------------------------------- */

static int build_url(struct fetch *f, const char *environment, struct choir_error *err)
{
    char hp[300];

    endpoint_text(f->ep, hp, sizeof(hp));
    if (snprintf(f->url, sizeof(f->url), "https://%s/puppet/v3/environment/%s", hp, environment) <
        (int)sizeof(f->url))
        return 0;
    error_set(err, CHOIR_EXIT_INPUT, "URL for %s too long", hp);
    return -1;
}

/* Asks one server.  On failure f->reachable_failure tells whether the
 * server could not be reached at all (so another one may be tried). */
static int fetch_from(struct fetch *f, const struct puppet_http_opts *opts, const char *environment,
                      struct choir_error *err)
{
    struct curl_slist *headers;
    CURL *curl;
    CURLcode rc;
    int ret = -1;

    if (build_url(f, environment, err) < 0)
        return -1;
    curl = curl_easy_init();
    headers = curl_slist_append(NULL, "Accept: application/json");
    if (!curl || !headers || setup_request(curl, f, opts, headers) < 0) {
        error_set(err, CHOIR_EXIT_INTERNAL, "%s: cannot set up libcurl", f->url);
        goto done;
    }
    rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        curl_failed(curl, f, rc, err);
        goto done;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &f->status);
    if (f->status != 200) {
        http_failed(curl, f, f->files->certname, err);
        goto done;
    }
    ret = 0;
done:
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return ret;
}

static void fetch_init(struct fetch *f, const struct ssl_files *files, const struct endpoint *ep,
                       size_t max)
{
    memset(f, 0, sizeof(*f));
    f->files = files;
    f->ep = ep;
    f->body.max = max;
}

/* Tries one endpoint; on success hands the body to the caller. */
static int try_endpoint(const struct endpoint *ep, const struct ssl_files *files,
                        const struct puppet_http_opts *opts, const char *environment,
                        char **body, size_t *len, char *url, size_t urlsize, int *unreachable,
                        struct choir_error *err)
{
    struct fetch f;
    size_t max = opts->max_bytes ? opts->max_bytes : DEFAULT_MAX_BYTES;
    int rc;

    fetch_init(&f, files, ep, max);
    rc = fetch_from(&f, opts, environment, err);
    *unreachable = f.reachable_failure;
    if (url && urlsize)
        text_copy(url, urlsize, f.url);
    if (rc < 0) {
        free(f.body.buf);
        return -1;
    }
    if (!f.body.buf && !(f.body.buf = calloc(1, 1))) {
        error_set(err, CHOIR_EXIT_INTERNAL, "%s: out of memory", f.url);
        return -1;
    }
    *body = f.body.buf;
    *len = f.body.len;
    return 0;
}

/* ---- discovery -------------------------------------------------------- */

/* No server configured: the SRV targets in order, then puppet:8140. */
static int fetch_discovered(const struct ssl_files *files, const struct puppet_http_opts *opts,
                            const char *environment, char **body, size_t *len, char *url,
                            size_t urlsize, struct choir_error *err)
{
    struct srv_target targets[SRV_MAX_TARGETS];
    char name[300], why[700];
    struct endpoint ep;
    size_t n = 0;
    int unreachable = 0;

    srv_discover(PUPPET_SRV_PREFIX, opts->srv_domain, targets, SRV_MAX_TARGETS, &n, name,
                 sizeof(name), why, sizeof(why));

    for (size_t i = 0; i < n; i++) {
        text_copy(ep.host, sizeof(ep.host), targets[i].host);
        ep.port = targets[i].port;
        if (try_endpoint(&ep, files, opts, environment, body, len, url, urlsize, &unreachable,
                         err) == 0)
            return 0;
        if (!unreachable)
            return -1;   /* it answered: its answer is the result */
        if (snprintf(why, sizeof(why), "none of the %zu servers of SRV %s answered (last: %s)", n,
                     name, err->msg) >= (int)sizeof(why))
            text_copy(why + sizeof(why) - 5, 5, "...)");
    }
    text_copy(ep.host, sizeof(ep.host), PUPPET_FALLBACK_HOST);
    ep.port = PUPPET_DEFAULT_PORT;
    if (try_endpoint(&ep, files, opts, environment, body, len, url, urlsize, &unreachable, err) == 0)
        return 0;
    if (unreachable)
        error_prefix(err, "no server configured, %s, and %s:%d failed", why, PUPPET_FALLBACK_HOST,
                     PUPPET_DEFAULT_PORT);
    return -1;
}

int puppet_fetch_environment(const struct puppet_http_opts *opts, const char *environment,
                             char **body, size_t *len, char *url, size_t urlsize,
                             struct choir_error *err)
{
    struct ssl_files files;
    struct endpoint ep;
    int unreachable;

    *body = NULL;
    *len = 0;
    if (url && urlsize)
        url[0] = '\0';
    if (check_environment(environment, err) < 0 || check_certname(opts->certname, err) < 0)
        return -1;
    if (opts->server && *opts->server && parse_server(opts->server, &ep, err) < 0)
        return -1;
    if (ssl_files_init(&files, opts->ssldir, opts->certname, err) < 0)
        return -1;
    if (http_global_init(err) < 0)
        return -1;
    if (opts->server && *opts->server)
        return try_endpoint(&ep, &files, opts, environment, body, len, url, urlsize,
                            &unreachable, err);
    return fetch_discovered(&files, opts, environment, body, len, url, urlsize, err);
}
