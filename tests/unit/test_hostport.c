/* test_hostport.c - host[:port] parsing shared by the bus and PuppetServer. */
#include "cmocka_setup.h"

#include <string.h>

#include "core/hostport.h"

static void expect(const char *text, const char *host, unsigned port, int ipv6)
{
    struct hostport hp;

    if (hostport_parse(text, 8140, &hp) != 0)
        fail_msg("rejected %s", text);
    assert_string_equal(hp.host, host);
    assert_int_equal(hp.port, port);
    assert_int_equal(hp.ipv6, ipv6);
}

static void test_accepted(void **state)
{
    (void)state;
    expect("puppet", "puppet", 8140, 0);
    expect("puppet.example.com:8141", "puppet.example.com", 8141, 0);
    expect("127.0.0.1:1", "127.0.0.1", 1, 0);
    expect("[::1]:5671", "::1", 5671, 1);
    expect("[fe80::1%eth0]", "fe80::1%eth0", 8140, 1);
    expect("fe80::1", "fe80::1", 8140, 1);
    expect("mq_1:65535", "mq_1", 65535, 0);
}

static void test_rejected(void **state)
{
    static const char *const bad[] = {
        "", ":8140", "host:", "host:0", "host:65536", "host:99999999999", "host:8a", "[::1",
        "[::1]x", "[]:80", "ho st", "host;rm", "h/ost:80", "[::1]:", "[zz::1]:80", "[::1%]:80",
        "[::1%e;th]:80",
    };
    struct hostport hp;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (hostport_parse(bad[i], 8140, &hp) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
}

static void test_host_length(void **state)
{
    char text[HOSTPORT_HOST_MAX + 8];
    struct hostport hp;

    (void)state;
    memset(text, 'a', HOSTPORT_HOST_MAX);
    text[HOSTPORT_HOST_MAX] = '\0';
    assert_int_equal(hostport_parse(text, 1, &hp), 0);
    strcat(text, "a");
    assert_int_equal(hostport_parse(text, 1, &hp), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_rejected),
        cmocka_unit_test(test_host_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
