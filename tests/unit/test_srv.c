/* test_srv.c - srv_parse_answer() and srv_order() on DNS answer packets
 * written out byte by byte (no resolver, no network). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/srv.h"

/* Header: id 0x1234, flags QR RD RA, rcode `rc`; 1 question, `an` answers. */
#define HDR(rc, an) 0x12, 0x34, 0x81, 0x80 | (rc), 0, 1, 0, (an), 0, 0, 0, 0

/* Question at offset 12: _x-puppet._tcp.example.com IN SRV.  "example" is
 * at offset 27 (0x1b), so a pointer 0xc0 0x1b means "example.com". */
#define QUESTION                                                        \
    9, '_', 'x', '-', 'p', 'u', 'p', 'p', 'e', 't', 4, '_', 't', 'c', 'p', \
    7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,          \
    0, 33, 0, 1

/* Answer owner = pointer to the question name, TTL 3600, then RDLENGTH. */
#define RR(type, rdlen) 0xc0, 0x0c, 0, (type), 0, 1, 0, 0, 0x0e, 0x10, 0, (rdlen)
#define SRV_RR(rdlen) RR(33, rdlen)
#define U16(v) ((v) >> 8) & 0xff, (v) & 0xff

/* Three SRV records, in this packet order:
 *   20 0 8140 pm3.example.com   (target compressed: "pm3" + pointer)
 *   10 60 8140 pm1.example.com  (target compressed)
 *   10 40 8141 pm2.example.com. (target written out in full) */
static const unsigned char three_srv[] = {
    HDR(0, 3),
    QUESTION,
    SRV_RR(12), U16(20), U16(0), U16(8140), 3, 'p', 'm', '3', 0xc0, 0x1b,
    SRV_RR(12), U16(10), U16(60), U16(8140), 3, 'p', 'm', '1', 0xc0, 0x1b,
    SRV_RR(23), U16(10), U16(40), U16(8141),
    3, 'p', 'm', '2', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
};

static void assert_target(const struct srv_target *t, const char *host, unsigned port,
                          unsigned priority, unsigned weight)
{
    assert_string_equal(t->host, host);
    assert_int_equal(t->port, port);
    assert_int_equal(t->priority, priority);
    assert_int_equal(t->weight, weight);
}

static void test_parse_several(void **state)
{
    struct srv_target t[SRV_MAX_TARGETS];
    struct choir_error err;
    size_t n = 99;

    (void)state;
    assert_int_equal(srv_parse_answer(three_srv, sizeof(three_srv), t, SRV_MAX_TARGETS, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_target(&t[0], "pm3.example.com", 8140, 20, 0);
    assert_target(&t[1], "pm1.example.com", 8140, 10, 60);
    assert_target(&t[2], "pm2.example.com", 8141, 10, 40);
}

static void test_parse_respects_max(void **state)
{
    struct srv_target t[2];
    struct choir_error err;
    size_t n = 99;

    (void)state;
    assert_int_equal(srv_parse_answer(three_srv, sizeof(three_srv), t, 2, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_target(&t[1], "pm1.example.com", 8140, 10, 60);
}

static void test_parse_truncated(void **state)
{
    struct srv_target t[SRV_MAX_TARGETS];
    struct choir_error err;
    size_t n = 99;

    (void)state;
    /* The last record's target name is cut in the middle. */
    assert_int_equal(srv_parse_answer(three_srv, sizeof(three_srv) - 5, t, SRV_MAX_TARGETS, &n, &err), -1);
    assert_int_equal(n, 0);
    assert_int_equal(err.code, CHOIR_EXIT_SERVER);
    assert_non_null(strstr(err.msg, "malformed DNS answer"));
    /* Not even a whole header. */
    assert_int_equal(srv_parse_answer(three_srv, 5, t, SRV_MAX_TARGETS, &n, &err), -1);
    assert_int_equal(n, 0);
}

static void test_parse_short_rdata(void **state)
{
    static const unsigned char pkt[] = {
        HDR(0, 1), QUESTION,
        SRV_RR(5), U16(10), U16(5), 0x1f,   /* 5 bytes: no port, no target */
    };
    struct srv_target t[4];
    struct choir_error err;
    size_t n = 99;

    (void)state;
    assert_int_equal(srv_parse_answer(pkt, sizeof(pkt), t, 4, &n, &err), -1);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err.msg, "bad SRV record 1"));
}

static void test_parse_cname_only(void **state)
{
    /* A CNAME pointing at pm.example.com instead of SRV records. */
    static const unsigned char pkt[] = {
        HDR(0, 1), QUESTION,
        RR(5, 5), 2, 'p', 'm', 0xc0, 0x1b,
    };
    struct srv_target t[4];
    struct choir_error err;
    size_t n = 99;

    (void)state;
    assert_int_equal(srv_parse_answer(pkt, sizeof(pkt), t, 4, &n, &err), 0);
    assert_int_equal(n, 0);
}

static void test_parse_cname_then_srv(void **state)
{
    static const unsigned char pkt[] = {
        HDR(0, 2), QUESTION,
        RR(5, 5), 2, 'p', 'm', 0xc0, 0x1b,
        SRV_RR(11), U16(0), U16(0), U16(8140), 2, 'p', 'm', 0xc0, 0x1b,
    };
    struct srv_target t[4];
    struct choir_error err;
    size_t n = 99;

    (void)state;
    assert_int_equal(srv_parse_answer(pkt, sizeof(pkt), t, 4, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_target(&t[0], "pm.example.com", 8140, 0, 0);
}

static void test_parse_zero_answers(void **state)
{
    static const unsigned char nodata[] = { HDR(0, 0), QUESTION };
    static const unsigned char nxdomain[] = { HDR(3, 0), QUESTION };
    struct srv_target t[4];
    struct choir_error err;
    size_t n = 99;

    (void)state;
    assert_int_equal(srv_parse_answer(nodata, sizeof(nodata), t, 4, &n, &err), 0);
    assert_int_equal(n, 0);
    n = 99;
    assert_int_equal(srv_parse_answer(nxdomain, sizeof(nxdomain), t, 4, &n, &err), 0);
    assert_int_equal(n, 0);
}

static void test_parse_root_target_dropped(void **state)
{
    /* RFC 2782: target "." = the service is decidedly not available. */
    static const unsigned char pkt[] = {
        HDR(0, 1), QUESTION,
        SRV_RR(7), U16(0), U16(0), U16(0), 0,
    };
    struct srv_target t[4];
    struct choir_error err;
    size_t n = 99;

    (void)state;
    assert_int_equal(srv_parse_answer(pkt, sizeof(pkt), t, 4, &n, &err), 0);
    assert_int_equal(n, 0);
}

/* Random source: returns the values of a list in turn, counting calls. */
struct script {
    const unsigned *values;
    size_t count, calls;
};

static unsigned scripted(void *ctx)
{
    struct script *s = ctx;

    assert_true(s->calls < s->count);
    return s->values[s->calls++];
}

static void parse_three(struct srv_target *t, size_t *n)
{
    struct choir_error err;

    assert_int_equal(srv_parse_answer(three_srv, sizeof(three_srv), t, SRV_MAX_TARGETS, n, &err), 0);
    assert_int_equal(*n, 3);
}

static void test_order_priority_then_weight(void **state)
{
    struct srv_target t[SRV_MAX_TARGETS];
    size_t n;

    (void)state;
    /* Weights 60 and 40 (sum 100): pick = r % 101; 0..60 -> pm1, 61..100 -> pm2. */
    for (unsigned r = 0; r <= 100; r++) {
        struct script s = { &r, 1, 0 };

        parse_three(t, &n);
        srv_order(t, n, scripted, &s);
        assert_int_equal(s.calls, 1);   /* only one choice inside priority 10 */
        assert_string_equal(t[0].host, r <= 60 ? "pm1.example.com" : "pm2.example.com");
        assert_string_equal(t[1].host, r <= 60 ? "pm2.example.com" : "pm1.example.com");
        assert_string_equal(t[2].host, "pm3.example.com");   /* priority 20 last */
    }
}

static void test_order_zero_weight_first(void **state)
{
    struct srv_target t[] = {
        { "a", 1, 5, 0 },
        { "b", 2, 5, 10 },
        { "c", 3, 5, 0 },
        { "d", 4, 1, 7 },
    };
    /* Priority 1: only d, no draw.  Priority 5 after sorting: a(0) c(0) b(10).
     * Draw 1: sum 10, pick 0 -> a.  Draw 2: c(0) b(10), pick 5 -> b. */
    const unsigned values[] = { 0, 5 };
    struct script s = { values, 2, 0 };

    (void)state;
    srv_order(t, 4, scripted, &s);
    assert_int_equal(s.calls, 2);
    assert_string_equal(t[0].host, "d");
    assert_string_equal(t[1].host, "a");
    assert_string_equal(t[2].host, "b");
    assert_string_equal(t[3].host, "c");
}

static void test_order_all_zero_weights_keeps_order(void **state)
{
    struct srv_target t[] = {
        { "x", 1, 3, 0 },
        { "y", 2, 3, 0 },
        { "z", 3, 3, 0 },
    };
    struct script s = { NULL, 0, 0 };

    (void)state;
    srv_order(t, 3, scripted, &s);
    assert_int_equal(s.calls, 0);   /* no weight: nothing to draw */
    assert_string_equal(t[0].host, "x");
    assert_string_equal(t[1].host, "y");
    assert_string_equal(t[2].host, "z");
}

static void test_order_default_rnd(void **state)
{
    struct srv_target t[SRV_MAX_TARGETS];
    size_t n;

    (void)state;
    parse_three(t, &n);
    srv_order(t, n, NULL, NULL);
    assert_int_equal(t[0].priority, 10);
    assert_int_equal(t[1].priority, 10);
    assert_string_equal(t[2].host, "pm3.example.com");
    srv_order(t, 0, NULL, NULL);   /* empty list is fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_several),
        cmocka_unit_test(test_parse_respects_max),
        cmocka_unit_test(test_parse_truncated),
        cmocka_unit_test(test_parse_short_rdata),
        cmocka_unit_test(test_parse_cname_only),
        cmocka_unit_test(test_parse_cname_then_srv),
        cmocka_unit_test(test_parse_zero_answers),
        cmocka_unit_test(test_parse_root_target_dropped),
        cmocka_unit_test(test_order_priority_then_weight),
        cmocka_unit_test(test_order_zero_weight_first),
        cmocka_unit_test(test_order_all_zero_weights_keeps_order),
        cmocka_unit_test(test_order_default_rnd),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
