/* srv.c - DNS SRV discovery (RFC 2782) with libresolv.
 *
 * Contract (see srv.h): srv_lookup() queries on a private res_state with a
 * short timeout (2 s, 1 attempt) and returns targets in try order; "no such
 * name" and "no SRV data" are an empty answer, not an error.  The packet
 * parser and the ordering are pure functions (no I/O) so they can be tested
 * byte by byte; the random source of the weighted selection is injectable. */
#include "net/srv.h"

#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/text.h"

#define SRV_TIMEOUT_SECONDS 2
#define SRV_ATTEMPTS 1

static unsigned get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* Strips one trailing dot ("host.example." -> "host.example"). */
static void strip_dot(char *name)
{
    size_t len = strlen(name);

    if (len > 0 && name[len - 1] == '.')
        name[len - 1] = '\0';
}

/* Reads the RDATA of one SRV record: priority, weight, port, target. */
static int parse_srv_rdata(const ns_msg *handle, const ns_rr *rr, struct srv_target *t)
{
    const unsigned char *rdata = ns_rr_rdata(*rr);
    unsigned rdlen = ns_rr_rdlen(*rr);
    int used;

    if (rdlen < 7)
        return -1;
    t->priority = (unsigned short)get16(rdata);
    t->weight = (unsigned short)get16(rdata + 2);
    t->port = (unsigned short)get16(rdata + 4);
    used = dn_expand(ns_msg_base(*handle), ns_msg_end(*handle), rdata + 6, t->host,
                     (int)sizeof(t->host));
    if (used < 0 || (unsigned)used > rdlen - 6)
        return -1;
    strip_dot(t->host);
    return 0;
}

int srv_parse_answer(const unsigned char *msg, size_t len, struct srv_target *out, size_t max,
                     size_t *n, struct choir_error *err)
{
    ns_msg handle;
    ns_rr rr;
    int count;

    *n = 0;
    if (len > NS_MAXMSG || ns_initparse(msg, (int)len, &handle) < 0) {
        error_set(err, CHOIR_EXIT_SERVER, "malformed DNS answer (%zu bytes)", len);
        return -1;
    }
    count = ns_msg_count(handle, ns_s_an);
    for (int i = 0; i < count && *n < max; i++) {
        struct srv_target t;

        if (ns_parserr(&handle, ns_s_an, i, &rr) < 0) {
            error_set(err, CHOIR_EXIT_SERVER, "malformed DNS answer: record %d of %d", i + 1, count);
            return -1;
        }
        if (ns_rr_type(rr) != ns_t_srv || ns_rr_class(rr) != ns_c_in)
            continue;
        memset(&t, 0, sizeof(t));
        if (parse_srv_rdata(&handle, &rr, &t) < 0) {
            error_set(err, CHOIR_EXIT_SERVER, "malformed DNS answer: bad SRV record %d", i + 1);
            return -1;
        }
        if (t.host[0] == '\0')   /* "." : the service is not offered here */
            continue;
        out[(*n)++] = t;
    }
    return 0;
}

static unsigned default_rnd(void *ctx)
{
    unsigned r;

    (void)ctx;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
        return r;
    return (unsigned)time(NULL) ^ (unsigned)getpid();
}

/* Sort key: priority, and inside one priority the weight-0 records first
 * (RFC 2782 puts them at the start of the list before selecting). */
static unsigned long order_key(const struct srv_target *t)
{
    return (unsigned long)t->priority << 1 | (t->weight != 0);
}

/* Stable insertion sort: n is small (a few dozen at most). */
static void sort_by_priority(struct srv_target *t, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct srv_target cur = t[i];
        size_t j = i;

        while (j > 0 && order_key(&t[j - 1]) > order_key(&cur)) {
            t[j] = t[j - 1];
            j--;
        }
        t[j] = cur;
    }
}

/* Moves t[from] to t[to] (to <= from), keeping the others' order. */
static void move_to(struct srv_target *t, size_t from, size_t to)
{
    struct srv_target chosen = t[from];

    memmove(&t[to + 1], &t[to], (from - to) * sizeof(*t));
    t[to] = chosen;
}

/* RFC 2782 weighted selection over t[0..n), all of one priority. */
static void order_by_weight(struct srv_target *t, size_t n, unsigned (*rnd)(void *), void *ctx)
{
    for (size_t pos = 0; pos + 1 < n; pos++) {
        unsigned long sum = 0, running = 0, pick;
        size_t j;

        for (j = pos; j < n; j++)
            sum += t[j].weight;
        pick = sum ? rnd(ctx) % (sum + 1) : 0;
        for (j = pos; j < n; j++) {
            running += t[j].weight;
            if (running >= pick)
                break;
        }
        move_to(t, j < n ? j : n - 1, pos);
    }
}

void srv_order(struct srv_target *t, size_t n, unsigned (*rnd)(void *ctx), void *ctx)
{
    size_t start = 0;

    if (!rnd)
        rnd = default_rnd;
    sort_by_priority(t, n);
    while (start < n) {
        size_t end = start + 1;

        while (end < n && t[end].priority == t[start].priority)
            end++;
        order_by_weight(t + start, end - start, rnd, ctx);
        start = end;
    }
}

/* "No such name" and "no data" are answers, everything else a failure. */
static int lookup_failed(const struct __res_state *rs, const char *name, struct choir_error *err)
{
    switch (rs->res_h_errno) {
    case HOST_NOT_FOUND:
    case NO_DATA:
        return 0;
    case TRY_AGAIN:
        error_set(err, CHOIR_EXIT_SERVER, "SRV lookup of %s: no answer from the DNS server", name);
        return -1;
    default:
        error_set(err, CHOIR_EXIT_SERVER, "SRV lookup of %s: %s", name, hstrerror(rs->res_h_errno));
        return -1;
    }
}

int srv_lookup(const char *name, struct srv_target *out, size_t max, size_t *n,
               struct choir_error *err)
{
    struct __res_state rs;
    unsigned char *answer;
    int len, rc;

    *n = 0;
    memset(&rs, 0, sizeof(rs));
    if (res_ninit(&rs) != 0) {
        error_set(err, CHOIR_EXIT_SERVER, "SRV lookup of %s: cannot start the DNS resolver", name);
        return -1;
    }
    rs.retrans = SRV_TIMEOUT_SECONDS;
    rs.retry = SRV_ATTEMPTS;
    answer = malloc(NS_MAXMSG);
    if (!answer) {
        res_nclose(&rs);
        error_set(err, CHOIR_EXIT_INTERNAL, "SRV lookup of %s: out of memory", name);
        return -1;
    }
    len = res_nquery(&rs, name, ns_c_in, ns_t_srv, answer, NS_MAXMSG);
    if (len < 0)
        rc = lookup_failed(&rs, name, err);
    else
        rc = srv_parse_answer(answer, (size_t)len, out, max, n, err);
    if (rc < 0 && len >= 0)
        error_prefix(err, "SRV lookup of %s", name);
    free(answer);
    res_nclose(&rs);
    if (rc == 0)
        srv_order(out, *n, NULL, NULL);
    return rc;
}

static int copy_domain(char *buf, size_t size, const char *domain)
{
    size_t len = strlen(domain);

    if (len > 0 && domain[len - 1] == '.')
        len--;
    if (len == 0 || len >= size)
        return -1;
    memcpy(buf, domain, len);
    buf[len] = '\0';
    return 0;
}

int srv_host_domain(char *buf, size_t size)
{
    char host[256];
    struct __res_state rs;
    int rc = -1;

    if (gethostname(host, sizeof(host)) == 0) {
        char *dot;

        host[sizeof(host) - 1] = '\0';
        dot = strchr(host, '.');
        if (dot && copy_domain(buf, size, dot + 1) == 0)
            return 0;
    }
    memset(&rs, 0, sizeof(rs));
    if (res_ninit(&rs) != 0)
        return -1;
    rc = copy_domain(buf, size, rs.defdname);
    res_nclose(&rs);
    return rc;
}

void srv_discover(const char *prefix, const char *domain, struct srv_target *t, size_t max,
                  size_t *n, char *name, size_t name_size, char *why, size_t why_size)
{
    struct choir_error err = {CHOIR_EXIT_OK, ""};
    char own[256];

    *n = 0;
    why[0] = '\0';
    if (domain && *domain)
        text_copy(own, sizeof(own), domain);
    else if (srv_host_domain(own, sizeof(own)) < 0)
        own[0] = '\0';
    snprintf(name, name_size, "%s%s", prefix, own);
    if (!own[0])
        snprintf(why, why_size, "no DNS domain to look up %s<domain> in", prefix);
    else if (srv_lookup(name, t, max, n, &err) < 0)
        text_copy(why, why_size, err.msg);
    else if (*n == 0)
        snprintf(why, why_size, "no SRV record for %s", name);
}
