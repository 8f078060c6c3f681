/* test_plan.c - the planner on the real responses and on shaped graphs:
 * one-node stack, diamond, chain, missing producer, cycles, instance
 * filtering, batching, ordering. */
#include "cmocka_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/plan.h"

#define EXAMPLES CHOIR_SOURCE_DIR "/examples/"

struct fixture {
    struct site *site;
    struct plan *plan;
    struct choir_error err;
};

/* Builds a site from a compact description: components separated by ';',
 * each "app|component|node|produces,..|consumes,..". */
static char *site_json(const char *desc)
{
    static char json[16384];
    char copy[4096], *save = NULL, *comp;
    const char *last_app = "";
    size_t n;

    snprintf(copy, sizeof(copy), "%s", desc);
    n = (size_t)snprintf(json, sizeof(json), "{\"environment\":\"production\",\"applications\":{");
    for (comp = strtok_r(copy, ";", &save); comp; comp = strtok_r(NULL, ";", &save)) {
        char *f[5] = {0}, *fs = NULL;
        int i = 0;

        for (char *t = strtok_r(comp, "|", &fs); t && i < 5; t = strtok_r(NULL, "|", &fs))
            f[i++] = t;
        if (strcmp(last_app, f[0]) != 0) {
            n += (size_t)snprintf(json + n, sizeof(json) - n, "%s\"%s\":{", *last_app ? "}," : "", f[0]);
            last_app = f[0];
        } else {
            n += (size_t)snprintf(json + n, sizeof(json) - n, ",");
        }
        n += (size_t)snprintf(json + n, sizeof(json) - n, "\"%s\":{\"node\":\"%s\",\"produces\":[", f[1], f[2]);
        for (int k = 3; k < 5; k++) {
            char *cs = NULL, *list = f[k] && strcmp(f[k], "-") ? f[k] : NULL;
            int first = 1;

            for (char *c = list ? strtok_r(list, ",", &cs) : NULL; c; c = strtok_r(NULL, ",", &cs)) {
                n += (size_t)snprintf(json + n, sizeof(json) - n, "%s\"%s\"", first ? "" : ",", c);
                first = 0;
            }
            n += (size_t)snprintf(json + n, sizeof(json) - n, k == 3 ? "],\"consumes\":[" : "]}");
        }
    }
    snprintf(json + n, sizeof(json) - n, "%s}}", *last_app ? "}" : "");
    return json;
}

static int plan_desc(struct fixture *f, const char *desc, const char *instance, uint32_t batch)
{
    const char *json = site_json(desc);
    struct plan_options o = {instance, batch};

    if (site_parse(&f->site, json, strlen(json), "t.json", &f->err) < 0)
        fail_msg("site did not parse: %s\n%s", f->err.msg, json);
    return plan_compute(&f->plan, f->site, &o, &f->err);
}

static int plan_file(struct fixture *f, const char *file, const char *instance, uint32_t batch)
{
    struct plan_options o = {instance, batch};

    if (site_load_file(&f->site, file, 1 << 20, &f->err) < 0)
        fail_msg("%s", f->err.msg);
    return plan_compute(&f->plan, f->site, &o, &f->err);
}

/* "a b | c d" : the groups' certnames. */
static void describe_groups(const struct plan *p, char *buf, size_t size)
{
    size_t n = 0;

    buf[0] = '\0';
    for (uint32_t g = 0; g < p->ngroups; g++) {
        if (g)
            n += (size_t)snprintf(buf + n, size - n, " | ");
        for (uint32_t i = 0; i < p->groups[g].count; i++)
            n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? " " : "",
                                  p->nodes[p->order[p->groups[g].first + i]].name);
    }
}

static void assert_groups(const struct plan *p, const char *want)
{
    char got[4096];

    describe_groups(p, got, sizeof(got));
    assert_string_equal(got, want);
}

static int setup(void **state)
{
    *state = calloc(1, sizeof(struct fixture));
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    plan_free(f->plan);
    site_free(f->site);
    free(f);
    return 0;
}

static void test_sample_app_two_groups(void **state)
{
    struct fixture *f = *state;
    const struct plan_node *dev1;

    assert_int_equal(plan_file(f, EXAMPLES "sample_app.json", NULL, 0), 0);
    assert_groups(f->plan, "dev1.devco.net | dev2.devco.net dev3.devco.net dev4.devco.net");
    assert_int_equal(f->plan->nnodes, 4);
    assert_int_equal(f->plan->napps, 2);
    dev1 = &f->plan->nodes[0];
    assert_string_equal(dev1->name, "dev1.devco.net");
    assert_int_equal(dev1->group, 0);
    assert_int_equal(dev1->nrefs, 2);
    assert_string_equal(f->site->apps[f->plan->refs[dev1->first_ref].app].name, "Lamp[app1]");
    assert_int_equal(plan_group_batches(f->plan, 1), 1);
}

static void test_cyclic_app_names_the_cycle(void **state)
{
    struct fixture *f = *state;
    const char *file = EXAMPLES "cyclic_app.json";
    char want[1024];

    assert_int_equal(plan_file(f, file, NULL, 0), -1);
    assert_null(f->plan);
    assert_int_equal(f->err.code, CHOIR_EXIT_INPUT);
    snprintf(want, sizeof(want),
             "%s: dependency cycle: dev1.devco.net -> dev3.devco.net -> dev1.devco.net "
             "(dev3.devco.net consumes Sql[app2] from dev1.devco.net; "
             "dev1.devco.net consumes Sql[app1] from dev3.devco.net)", file);
    assert_string_equal(f->err.msg, want);
}

static void test_cyclic_app_single_instance_plans(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(plan_file(f, EXAMPLES "cyclic_app.json", "Lamp[app1]", 0), 0);
    assert_groups(f->plan, "dev3.devco.net | dev1.devco.net dev2.devco.net");
}

static void test_one_node_stack_is_one_group(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(plan_desc(f, "Lamp[a]|Lamp::Mysql[a]|dev1|Sql[a]|-;"
                                  "Lamp[a]|Lamp::Webapp[a]|dev1|-|Sql[a]", NULL, 0), 0);
    assert_groups(f->plan, "dev1");
    assert_int_equal(f->plan->nodes[0].nrefs, 2);
}

static void test_diamond(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(plan_desc(f, "App[x]|Top[x]|d|-|B,C;"
                                  "App[x]|Left[x]|b|B|A;"
                                  "App[x]|Right[x]|c|C|A;"
                                  "App[x]|Root[x]|a|A|-", NULL, 0), 0);
    assert_groups(f->plan, "a | b c | d");
}

static void test_chain_and_independent_nodes(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(plan_desc(f, "A[x]|C1[x]|n1|K1|-;A[x]|C2[x]|n2|K2|K1;A[x]|C3[x]|n3|K3|K2;"
                                  "A[x]|C4[x]|n4|-|K3;A[x]|Solo[x]|z0|-|-", NULL, 0), 0);
    assert_groups(f->plan, "n1 z0 | n2 | n3 | n4");
}

static void test_group_order_is_byte_order(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(plan_desc(f, "A[x]|C1[x]|dev2|-|-;A[x]|C2[x]|dev10|-|-;A[x]|C3[x]|a_1|-|-;"
                                  "A[x]|C4[x]|a.1|-|-;A[x]|C5[x]|a-1|-|-", NULL, 0), 0);
    assert_groups(f->plan, "a-1 a.1 a_1 dev10 dev2");
}

static void test_several_producers_all_run_first(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(plan_desc(f, "A[x]|Db1[x]|db1|Sql|-;A[x]|Db2[x]|db2|Sql|-;"
                                  "A[x]|Web[x]|web|-|Sql;A[x]|Web2[x]|web|-|Sql", NULL, 0), 0);
    assert_groups(f->plan, "db1 db2 | web");
}

static void test_missing_producer(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(plan_desc(f, "Lamp[a]|Lamp::Webapp[a-1]|dev2|-|Sql[a]", NULL, 0), -1);
    assert_int_equal(f->err.code, CHOIR_EXIT_INPUT);
    assert_string_equal(f->err.msg, "t.json: unresolved capability: Lamp::Webapp[a-1] on dev2 consumes "
                                    "\"Sql[a]\", which no component produces");
}

static void test_three_cycle_with_tail(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(plan_desc(f, "A[x]|C1[x]|n2|K2|K1;A[x]|C2[x]|n3|K3|K2;A[x]|C3[x]|n1|K1|K3;"
                                  "A[x]|C4[x]|n0|-|K3;A[x]|C5[x]|m|-|-", NULL, 0), -1);
    assert_string_equal(f->err.msg, "t.json: dependency cycle: n1 -> n2 -> n3 -> n1 "
                                    "(n2 consumes K1 from n1; n3 consumes K2 from n2; n1 consumes K3 from n3)");
}

static void test_instance_filter(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(plan_file(f, EXAMPLES "sample_app.json", "Lamp[app2]", 0), 0);
    assert_string_equal(f->plan->instance, "Lamp[app2]");
    assert_int_equal(f->plan->napps, 1);
    assert_groups(f->plan, "dev1.devco.net | dev2.devco.net dev3.devco.net dev4.devco.net");
    for (uint32_t i = 0; i < f->plan->nnodes; i++) {
        const struct plan_node *n = &f->plan->nodes[i];

        assert_int_equal(n->nrefs, 1);
        assert_string_equal(f->site->apps[f->plan->refs[n->first_ref].app].name, "Lamp[app2]");
    }
}

static void test_instance_filter_drops_other_nodes(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(plan_desc(f, "A[1]|C[1]|n1|-|-;B[2]|C[2]|n2|-|-", "B[2]", 0), 0);
    assert_groups(f->plan, "n2");
}

static void test_instance_unresolved_mentions_instance(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(plan_desc(f, "A[1]|Db[1]|n1|Sql|-;B[2]|Web[2]|n2|-|Sql", "B[2]", 0), -1);
    assert_string_equal(f->err.msg, "t.json: unresolved capability: Web[2] on n2 consumes \"Sql\", "
                                    "which no component of instance \"B[2]\" produces");
}

static void test_unknown_instance_lists_known(void **state)
{
    struct fixture *f = *state;
    char want[1024];

    assert_int_equal(plan_file(f, EXAMPLES "sample_app.json", "Lamp[app9]", 0), -1);
    snprintf(want, sizeof(want), "%s: unknown application instance \"Lamp[app9]\"; known: "
             "Lamp[app1], Lamp[app2]", EXAMPLES "sample_app.json");
    assert_string_equal(f->err.msg, want);
}

static void test_empty_site(void **state)
{
    struct fixture *f = *state;
    const char *json = "{\"environment\":\"production\",\"applications\":{},\"code_id\":null}";
    struct plan_options o = {0};

    assert_int_equal(site_parse(&f->site, json, strlen(json), "t.json", &f->err), 0);
    assert_int_equal(plan_compute(&f->plan, f->site, &o, &f->err), -1);
    assert_string_equal(f->err.msg, "t.json: empty site: no application components to plan");
}

static void test_batches_slice_groups_in_order(void **state)
{
    struct fixture *f = *state;
    uint32_t first, count;

    assert_int_equal(plan_desc(f, "A[x]|Db[x]|db|S|-;A[x]|W1[x]|w1|-|S;A[x]|W2[x]|w2|-|S;"
                                  "A[x]|W3[x]|w3|-|S;A[x]|W4[x]|w4|-|S;A[x]|W5[x]|w5|-|S", NULL, 2), 0);
    assert_int_equal(plan_group_batches(f->plan, 0), 1);
    assert_int_equal(plan_group_batches(f->plan, 1), 3);
    plan_batch_range(f->plan, 1, 0, &first, &count);
    assert_int_equal(count, 2);
    assert_string_equal(f->plan->nodes[f->plan->order[first]].name, "w1");
    plan_batch_range(f->plan, 1, 1, &first, &count);
    assert_int_equal(count, 2);
    assert_string_equal(f->plan->nodes[f->plan->order[first]].name, "w3");
    plan_batch_range(f->plan, 1, 2, &first, &count);
    assert_int_equal(count, 1);
    assert_string_equal(f->plan->nodes[f->plan->order[first]].name, "w5");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sample_app_two_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cyclic_app_names_the_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cyclic_app_single_instance_plans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_node_stack_is_one_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diamond, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_and_independent_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_order_is_byte_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_producers_all_run_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_producer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_three_cycle_with_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instance_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instance_filter_drops_other_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instance_unresolved_mentions_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_instance_lists_known, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_site, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches_slice_groups_in_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
