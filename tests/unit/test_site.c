/* test_site.c - the site graph parser: the real responses, every
 * validation message, and file loading bounds. */
#include "cmocka_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/names.h"
#include "core/site.h"

#define SAMPLE CHOIR_SOURCE_DIR "/examples/sample_app.json"

static struct site *parse_ok(const char *json)
{
    struct choir_error err = {0};
    struct site *s = NULL;

    if (site_parse(&s, json, strlen(json), "t.json", &err) < 0)
        fail_msg("unexpected error: %s", err.msg);
    return s;
}

/* Parses json, expects failure with exactly `msg`. */
static void expect_error(const char *json, const char *msg)
{
    struct choir_error err = {0};
    struct site *s = (struct site *)1;

    assert_int_equal(site_parse(&s, json, strlen(json), "t.json", &err), -1);
    assert_null(s);
    assert_int_equal(err.code, CHOIR_EXIT_INPUT);
    assert_string_equal(err.msg, msg);
}

static void test_sample_app_parses(void **state)
{
    struct choir_error err = {0};
    struct site *s;

    (void)state;
    assert_int_equal(site_load_file(&s, SAMPLE, 1 << 20, &err), 0);
    assert_string_equal(s->environment, "production");
    assert_null(s->code_id);
    assert_int_equal(s->napps, 2);
    assert_string_equal(s->apps[0].name, "Lamp[app1]");
    assert_string_equal(s->apps[1].name, "Lamp[app2]");
    assert_int_equal(s->apps[0].ncomps, 4);
    assert_int_equal(s->ncomps, 8);
    assert_string_equal(s->apps[0].comps[0].name, "Lamp::Mysql[app1]");
    assert_string_equal(s->apps[0].comps[3].name, "Lamp::Webapp[app1-3]");
    assert_string_equal(strtab_str(&s->nodes, s->apps[0].comps[0].node), "dev1.devco.net");
    assert_int_equal(s->apps[0].comps[0].nproduces, 1);
    assert_int_equal(s->apps[0].comps[0].nconsumes, 0);
    assert_string_equal(strtab_str(&s->caps, site_comp_caps(s, &s->apps[0].comps[0])[0]), "Sql[app1]");
    assert_int_equal(s->apps[0].comps[1].nconsumes, 1);
    assert_int_equal(strtab_count(&s->nodes), 4);
    assert_int_equal(strtab_count(&s->caps), 2);
    assert_non_null(site_find_app(s, "Lamp[app2]"));
    assert_null(site_find_app(s, "Lamp[app3]"));
    site_free(s);
}

static void test_code_id_and_optional_lists(void **state)
{
    struct site *s;

    (void)state;
    s = parse_ok("{\"environment\":\"dev\",\"code_id\":\"abc123\",\"applications\":"
                 "{\"A[x]\":{\"C[y]\":{\"node\":\"n1\"}}},\"extra\":[1]}");
    assert_string_equal(s->code_id, "abc123");
    assert_int_equal(s->apps[0].comps[0].nproduces, 0);
    assert_int_equal(s->apps[0].comps[0].nconsumes, 0);
    site_free(s);
}

static void test_empty_applications_parse(void **state)
{
    struct site *s;

    (void)state;
    s = parse_ok("{\"environment\":\"production\",\"applications\":{},\"code_id\":null}");
    assert_int_equal(s->napps, 0);
    site_free(s);
}

static void test_structure_errors(void **state)
{
    (void)state;
    expect_error("[]", "t.json: expected a JSON object at the top level, got array");
    expect_error("{\"applications\":{}}", "t.json: \"environment\" is missing");
    expect_error("{\"environment\":1,\"applications\":{}}",
                 "t.json: environment: expected a string, got number");
    expect_error("{\"environment\":\"\",\"applications\":{}}", "t.json: environment: must not be empty");
    expect_error("{\"environment\":\"p\"}", "t.json: \"applications\" is missing");
    expect_error("{\"environment\":\"p\",\"applications\":[]}",
                 "t.json: applications: expected an object of application instances, got array");
    expect_error("{\"environment\":\"p\",\"applications\":{},\"code_id\":5}",
                 "t.json: code_id: expected a string or null, got number");
    expect_error("{\"environment\":\"p\",\"applications\":{\"Lamp[app1]\":[]}}",
                 "t.json: applications.\"Lamp[app1]\": expected an object of components, got array");
}

static void test_component_errors(void **state)
{
    (void)state;
    expect_error("{\"environment\":\"p\",\"applications\":{\"Lamp[app1]\":{\"Lamp::Mysql[app1]\":"
                 "{\"produces\":[\"Sql[app1]\"],\"consumes\":[]}}}}",
                 "t.json: applications.\"Lamp[app1]\".\"Lamp::Mysql[app1]\": \"node\" is missing");
    expect_error("{\"environment\":\"p\",\"applications\":{\"A[x]\":{\"C[y]\":true}}}",
                 "t.json: applications.\"A[x]\".\"C[y]\": expected an object, got boolean");
    expect_error("{\"environment\":\"p\",\"applications\":{\"A[x]\":{\"C[y]\":{\"node\":7}}}}",
                 "t.json: applications.\"A[x]\".\"C[y]\".\"node\": expected a certname string, got number");
    expect_error("{\"environment\":\"p\",\"applications\":{\"A[x]\":{\"C[y]\":{\"node\":\"Dev 1\"}}}}",
                 "t.json: applications.\"A[x]\".\"C[y]\".\"node\": \"Dev 1\" is not a valid certname "
                 "(1-255 of a-z 0-9 . - _)");
    expect_error("{\"environment\":\"p\",\"applications\":{\"A[x]\":{\"C[y]\":"
                 "{\"node\":\"n\",\"consumes\":\"Sql[a]\"}}}}",
                 "t.json: applications.\"A[x]\".\"C[y]\".\"consumes\": expected an array of capability "
                 "references, got string");
    expect_error("{\"environment\":\"p\",\"applications\":{\"A[x]\":{\"C[y]\":"
                 "{\"node\":\"n\",\"produces\":[\"a\",2]}}}}",
                 "t.json: applications.\"A[x]\".\"C[y]\".\"produces\"[1]: expected a string, got number");
    expect_error("{\"environment\":\"p\",\"applications\":{\"A[x]\":{\"C[y]\":"
                 "{\"node\":\"n\",\"produces\":[\"\"]}}}}",
                 "t.json: applications.\"A[x]\".\"C[y]\".\"produces\"[0]: must not be empty");
}

static void test_names_are_escaped_and_checked(void **state)
{
    (void)state;
    expect_error("{\"environment\":\"p\",\"applications\":{\"A\\u0001\\\"q\":{}}}",
                 "t.json: applications.\"A\\u0001\\\"q\": contains a control character");
    expect_error("{\"environment\":\"p\",\"applications\":{\"\":{}}}",
                 "t.json: applications.\"\": must not be empty");
}

static void test_malformed_json(void **state)
{
    struct choir_error err = {0};
    struct site *s;

    (void)state;
    assert_int_equal(site_parse(&s, "{\"environment\":", 15, "t.json", &err), -1);
    assert_int_equal(err.code, CHOIR_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "t.json:1:"));
    assert_non_null(strstr(err.msg, "malformed JSON"));
    assert_int_equal(site_parse(&s, "{\"environment\":\"a\",\"environment\":\"b\",\"applications\":{}}",
                                56, "t.json", &err), -1);
    assert_non_null(strstr(err.msg, "duplicate"));
    assert_int_equal(site_parse(&s, "{\"environment\": \x1b[31m}", 23, "t.json", &err), -1);
    assert_null(strchr(err.msg, '\x1b')); /* no terminal escapes from the input */
    assert_int_equal(site_parse(&s, "", 0, "t.json", &err), -1);
    assert_non_null(strstr(err.msg, "malformed JSON"));
}

static void test_load_file_errors(void **state)
{
    struct choir_error err = {0};
    struct site *s;
    char path[] = "/tmp/choir-test-site-XXXXXX";
    int fd;

    (void)state;
    assert_int_equal(site_load_file(&s, "/nonexistent/site.json", 1024, &err), -1);
    assert_string_equal(err.msg, "/nonexistent/site.json: cannot read: No such file or directory");
    assert_int_equal(site_load_file(&s, "/tmp", 1024, &err), -1);
    assert_string_equal(err.msg, "/tmp: cannot read: Is a directory");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(write(fd, "          ", 10), 10);
    close(fd);
    assert_int_equal(site_load_file(&s, path, 999, &err), -1);
    assert_non_null(strstr(err.msg, "larger than 999 bytes"));
    assert_int_equal(site_load_file(&s, path, 1000, &err), -1);
    assert_non_null(strstr(err.msg, "malformed JSON"));
    unlink(path);
}

static void test_puppet_name_rules(void **state)
{
    (void)state;
    assert_true(names_certname_ok("dev1.devco.net", 14));
    assert_true(names_certname_ok("a_b-c", 5));
    assert_false(names_certname_ok("", 0));
    assert_false(names_certname_ok(".x", 2));
    assert_false(names_certname_ok("-x", 2));
    assert_false(names_certname_ok("Dev1", 4));
    assert_false(names_certname_ok("a/b", 3));
    assert_false(names_certname_ok("a b", 3));
    assert_true(names_environment_ok("production", 10));
    assert_true(names_environment_ok("feature_42", 10));
    assert_false(names_environment_ok("", 0));
    assert_false(names_environment_ok("prod-1", 6));
    assert_false(names_environment_ok("../etc", 6));
    assert_false(names_environment_ok("Prod", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_app_parses),
        cmocka_unit_test(test_code_id_and_optional_lists),
        cmocka_unit_test(test_empty_applications_parse),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_component_errors),
        cmocka_unit_test(test_names_are_escaped_and_checked),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_load_file_errors),
        cmocka_unit_test(test_puppet_name_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
