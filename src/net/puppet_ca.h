/* puppet_ca.h - obtain a certificate from a Puppet CA (Puppet CA v1, HTTPS,
 * libcurl + OpenSSL 3), the way `puppet agent` bootstraps its ssldir.
 *
 * puppet_ca_request_cert() fills the Puppet ssldir layout (PROTOCOL.md §2):
 *   1. refuses when certs/<certname>.pem already exists (never overwritten);
 *   2. finds the CA: opts->server ("host[:port]", port 8140 by default); else
 *      the SRV targets of _x-puppet-ca._tcp.<domain>, then puppet:8140;
 *   3. trusts certs/ca.pem when it exists; else (first contact) fetches
 *      GET /puppet-ca/v1/certificate/ca without verifying the server (trust
 *      on first use, as Puppet does), reports the SHA-256 fingerprint of
 *      every CA certificate and saves certs/ca.pem; every later request
 *      verifies the server's certificate and host name against it;
 *   4. makes an RSA 2048 key, private_keys/<certname>.pem (0600, created
 *      with O_EXCL), and a CSR (CN = certname, SHA-256),
 *      certificate_requests/<certname>.pem -- or, when the key exists but
 *      the certificate does not, resumes with that key and its CSR;
 *   5. PUT /puppet-ca/v1/certificate_request/<certname> (a request the CA
 *      already holds for the same key is accepted as submitted);
 *   6. polls GET /puppet-ca/v1/certificate/<certname> (404 until signed)
 *      every opts->poll_interval seconds for at most opts->wait seconds;
 *   7. checks that the certificate is for our key and certname and chains
 *      to the CA, writes certs/<certname>.pem (O_EXCL), then fetches the CRL
 *      (GET /puppet-ca/v1/certificate_revocation_list/ca) into crl.pem when
 *      the CA serves one (a failure there is reported, not fatal).
 * Directories are made like Puppet's: the ssldir and certs/,
 * certificate_requests/ 0755 and private_keys/ 0700.
 *
 * The flow never prints: it reports progress through opts->progress.
 * puppet_ca_print_progress() is a ready-made reporter writing to a FILE
 * (a countdown rewritten in place on a terminal, plain lines otherwise).
 *
 * Errors are one line naming the file, or the URL and the HTTP status with
 * the CA's own message.  Classes: CHOIR_EXIT_INPUT for what the operator
 * must change (a bad certname or server, existing files, a key or request
 * that does not match, a request the CA refuses with 400, e.g. a name it
 * already signed); CHOIR_EXIT_SERVER when the CA cannot be reached or
 * verified, fails, answers nonsense, or has not signed within opts->wait
 * (the key and request stay, so a later run resumes). */
#ifndef CHOIR_PUPPET_CA_H
#define CHOIR_PUPPET_CA_H

#include <stdio.h>

#include "core/error.h"

enum puppet_ca_event_kind {
    PUPPET_CA_FIRST_CONTACT,  /* url: the CA answered; no ca.pem yet (trust on first use) */
    PUPPET_CA_FINGERPRINT,    /* text: "SUBJECT", detail: SHA-256 fingerprint of a CA certificate */
    PUPPET_CA_CA_SAVED,       /* path: certs/ca.pem written */
    PUPPET_CA_CA_TRUSTED,     /* url, path: the existing ca.pem is trusted for url */
    PUPPET_CA_KEY_CREATED,    /* path */
    PUPPET_CA_KEY_REUSED,     /* path: resuming with an existing key */
    PUPPET_CA_CSR_CREATED,    /* path, detail: the CSR's SHA-256 fingerprint */
    PUPPET_CA_CSR_REUSED,     /* path, detail */
    PUPPET_CA_CSR_SUBMITTED,  /* url; text: NULL, or the CA's words when it already held it */
    PUPPET_CA_WAITING,        /* url, remaining seconds, polled: a check just answered 404 */
    PUPPET_CA_CERT_SAVED,     /* path; text: the certificate's subject */
    PUPPET_CA_CRL_SAVED,      /* path */
    PUPPET_CA_CRL_SKIPPED,    /* text: why (one line) */
};

struct puppet_ca_event {
    enum puppet_ca_event_kind kind;
    const char *certname;
    const char *url;
    const char *path;
    const char *text;
    const char *detail;
    long remaining;           /* PUPPET_CA_WAITING: seconds left */
    long interval;            /* PUPPET_CA_WAITING: seconds between checks */
    int polled;
};

typedef void (*puppet_ca_progress_fn)(void *ctx, const struct puppet_ca_event *ev);

struct puppet_ca_opts {
    const char *server;       /* "host[:port]" or NULL */
    const char *srv_domain;   /* NULL: the host's domain */
    const char *ssldir;
    const char *certname;
    long connect_timeout;     /* seconds, default 10 */
    long timeout;             /* seconds per request, default 60 */
    long wait;                /* seconds to wait for the signature; 0: check once */
    long poll_interval;       /* seconds between checks, default 5 */
    puppet_ca_progress_fn progress;   /* NULL: silent */
    void *progress_ctx;
};

/* Runs the whole flow; 0 once certs/<certname>.pem is written.  `cert`
 * (if not NULL) receives that path. */
int puppet_ca_request_cert(const struct puppet_ca_opts *opts, char *cert, size_t certsize,
                           struct choir_error *err);

/* A reporter for opts->progress: ctx is a struct puppet_ca_printer.  With
 * tty set, the wait is one line counting down in place ("\r", erase to end
 * of line); otherwise one line per check. */
struct puppet_ca_printer {
    FILE *out;
    int tty;
    int open_line;            /* a countdown line is being rewritten */
};

void puppet_ca_print_progress(void *ctx, const struct puppet_ca_event *ev);

/* Ends an open countdown line (call before printing anything else). */
void puppet_ca_printer_finish(struct puppet_ca_printer *p);

#endif
