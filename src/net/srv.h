/* srv.h - DNS SRV discovery (RFC 2782) with libresolv.
 *
 * srv_lookup() asks the system resolver for the SRV records of a name such
 * as "_x-puppet._tcp.example.com" on a private res_state (2 s, 1 attempt,
 * so a missing DNS server costs little) and returns the targets in the
 * order a client must try them.  The two halves are separate and pure so
 * tests need no DNS: srv_parse_answer() reads the SRV records out of a DNS
 * answer packet (records of other types, e.g. a CNAME, are skipped), and
 * srv_order() sorts them by priority and, inside one priority, by the RFC
 * 2782 weighted random selection with an injectable random source.
 *
 * A target of "." means "no such service here" (RFC 2782) and is dropped.
 * A name with no SRV records is not an error: *n is 0.  Errors (a resolver
 * that cannot start, a malformed packet) are CHOIR_EXIT_SERVER. */
#ifndef CHOIR_SRV_H
#define CHOIR_SRV_H

#include <stddef.h>

#include "core/error.h"

#define SRV_MAX_TARGETS 32

struct srv_target {
    char host[256];          /* target name, no trailing dot */
    unsigned short port;
    unsigned short priority;
    unsigned short weight;
};

/* Looks up the SRV records of `name`; fills out[0..*n) in try order.
 * No records (NXDOMAIN, no data) gives 0 and *n = 0. */
int srv_lookup(const char *name, struct srv_target *out, size_t max, size_t *n,
               struct choir_error *err);

/* Parses the SRV answers of one DNS response packet into out[0..*n), in
 * packet order (no ordering), at most `max` of them. */
int srv_parse_answer(const unsigned char *msg, size_t len, struct srv_target *out, size_t max,
                     size_t *n, struct choir_error *err);

/* Orders t[0..n) for trying: ascending priority, then RFC 2782 weighted
 * selection inside each priority.  rnd(ctx) returns a random unsigned; NULL
 * uses the system's random source. */
void srv_order(struct srv_target *t, size_t n, unsigned (*rnd)(void *ctx), void *ctx);

/* The host's DNS domain: the part of the host name after the first dot, or
 * else the resolver's default domain.  Returns -1 when there is none. */
int srv_host_domain(char *buf, size_t size);

/* Discovery as PuppetServer's and the CA's clients do it: the SRV targets
 * of prefix + domain (domain NULL or "": the host's own, srv_host_domain)
 * into t[0..*n), the name looked up into name; when there is none, why
 * says why (no domain, the resolver's error, no record).  Never fails. */
void srv_discover(const char *prefix, const char *domain, struct srv_target *t, size_t max,
                  size_t *n, char *name, size_t name_size, char *why, size_t why_size);

#endif
