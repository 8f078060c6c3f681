/* test_model.c - the console's model of a job (src/ui/model.h): the tree
 * a plan event builds, counts, many node events coalescing into the
 * latest state, the filter, the output ring's cap, reports, and malformed
 * events. */
#include "cmocka_setup.h"

#include <stdio.h>
#include <string.h>

#include "ui/model.h"

static void apply(struct ui_model *m, const char *json)
{
    json_error_t je;
    json_t *ev = json_loads(json, 0, &je);

    if (!ev)
        fail_msg("bad test JSON: %s: %s", je.text, json);
    assert_int_equal(model_apply(m, ev, 1000), 0);
    json_decref(ev);
}

static int apply_rc(struct ui_model *m, const char *json)
{
    json_t *ev = json_loads(json, 0, NULL);
    int rc = model_apply(m, ev, 1000);

    json_decref(ev);
    return rc;
}

/* Four nodes: a serves two applications, b one, c none; d is in group 1
 * with b.  Batches of 1. */
static const char plan_json[] =
    "{\"v\":1,\"type\":\"plan\",\"time\":100,\"job\":\"J1\",\"groups\":2,\"caller\":\"alice\","
    "\"environment\":\"production\",\"options\":{\"batch\":1,\"canary\":0,\"max_failures\":-1},"
    "\"nodes\":["
    "{\"node\":\"a.example\",\"group\":0,\"apps\":\"Lamp[x], Lamp[y]\",\"state\":\"waiting\","
    "\"reason\":\"\",\"verdict\":\"\",\"locked\":false,\"step\":0},"
    "{\"node\":\"b.example\",\"group\":1,\"apps\":\"Lamp[x]\",\"state\":\"waiting\","
    "\"reason\":\"\",\"verdict\":\"\",\"locked\":false,\"step\":0},"
    "{\"node\":\"d.example\",\"group\":1,\"apps\":\"Lamp[x]\",\"state\":\"waiting\","
    "\"reason\":\"\",\"verdict\":\"\",\"locked\":true,\"step\":0},"
    "{\"node\":\"c.example\",\"group\":1,\"apps\":\"\",\"state\":\"waiting\","
    "\"reason\":\"\",\"verdict\":\"\",\"locked\":false,\"step\":0}]}";

static void node_event(struct ui_model *m, const char *node, int group, const char *state,
                       int locked)
{
    char buf[512];

    snprintf(buf, sizeof(buf), "{\"v\":1,\"type\":\"node\",\"time\":200,\"job\":\"J1\","
             "\"node\":\"%s\",\"group\":%d,\"state\":\"%s\",\"reason\":\"r-%s\",\"locked\":%s}",
             node, group, state, state, locked ? "true" : "false");
    apply(m, buf);
}

/* "A>G1>b1>a.example ..." : the tree as text, for comparing shapes. */
static void tree_text(struct ui_model *m, char *out, size_t size)
{
    uint32_t n;
    const struct ui_row *rows = model_rows(m, &n);
    size_t len = 0;

    out[0] = '\0';
    for (uint32_t i = 0; i < n && len < size; i++) {
        const struct ui_row *r = &rows[i];

        switch (r->kind) {
        case UI_ROW_APP: len += (size_t)snprintf(out + len, size - len, "[%s]", m->apps[r->app]); break;
        case UI_ROW_GROUP: len += (size_t)snprintf(out + len, size - len, " G%u", r->group + 1); break;
        case UI_ROW_BATCH:
            if (r->batch_key & UI_BATCH_PLANNED)
                len += (size_t)snprintf(out + len, size - len, " b%u", (r->batch_key & ~UI_BATCH_PLANNED) + 1);
            else
                len += (size_t)snprintf(out + len, size - len, " s%u", r->batch_key);
            break;
        case UI_ROW_NODE:
            len += (size_t)snprintf(out + len, size - len, " %c", m->nodes[r->node].name[0]);
            break;
        }
    }
}

static void test_tree_from_plan(void **state)
{
    struct ui_model m;
    char text[512];

    (void)state;
    model_init(&m);
    apply(&m, plan_json);
    assert_int_equal(m.nnodes, 4);
    assert_string_equal(m.job_id, "J1");
    assert_string_equal(m.environment, "production");
    assert_int_equal(m.ngroups, 2);
    assert_int_equal(m.napps, 3);
    assert_string_equal(m.apps[0], "Lamp[x]");
    assert_string_equal(m.apps[1], "Lamp[y]");
    assert_string_equal(m.apps[2], UI_NO_APP);
    tree_text(&m, text, sizeof(text));
    /* a under both applications; c under "(no application)"; planned
     * batches of one node each inside group 2 */
    assert_string_equal(text, "[Lamp[x]] G1 b1 a G2 b1 b b2 d[Lamp[y]] G1 b1 a[(no application)] G2 b3 c");
    assert_int_equal(m.locked, 1);
    assert_int_equal(m.count[NODE_WAITING], 4);
    model_done(&m);
}

static void test_steps_move_nodes(void **state)
{
    struct ui_model m;
    char text[512];

    (void)state;
    model_init(&m);
    apply(&m, plan_json);
    apply(&m, "{\"v\":1,\"type\":\"step\",\"time\":150,\"job\":\"J1\",\"group\":1,\"step\":2,"
              "\"nodes\":[\"b.example\",\"c.example\"]}");
    tree_text(&m, text, sizeof(text));
    assert_string_equal(text, "[Lamp[x]] G1 b1 a G2 s2 b b2 d[Lamp[y]] G1 b1 a[(no application)] G2 s2 c");
    assert_string_equal(ring_at(&m.log, m.log.count - 1)->text,
                        "step 2: group 2, 2 nodes: b.example, c.example");
    model_done(&m);
}

static void test_counts(void **state)
{
    struct ui_model m;
    uint32_t n;
    const struct ui_row *rows;

    (void)state;
    model_init(&m);
    apply(&m, plan_json);
    model_rows(&m, &n);
    node_event(&m, "a.example", 0, "running", 0);
    node_event(&m, "b.example", 1, "failed", 1);
    node_event(&m, "d.example", 1, "succeeded", 0);
    assert_int_equal(m.count[NODE_RUNNING], 1);
    assert_int_equal(m.count[NODE_FAILED], 1);
    assert_int_equal(m.count[NODE_SUCCEEDED], 1);
    assert_int_equal(m.count[NODE_WAITING], 1);
    assert_int_equal(m.group_count[1][NODE_FAILED], 1);
    assert_int_equal(m.group_count[1][NODE_WAITING], 1);
    assert_int_equal(m.group_count[0][NODE_RUNNING], 1);
    assert_int_equal(m.locked, 1); /* b taken, d released */
    rows = model_rows(&m, &n);
    /* the first application row counts a, b and d */
    assert_int_equal(rows[0].kind, UI_ROW_APP);
    assert_int_equal(rows[0].nodes, 3);
    assert_int_equal(rows[0].count[NODE_RUNNING], 1);
    assert_int_equal(rows[0].count[NODE_FAILED], 1);
    assert_int_equal(rows[0].count[NODE_SUCCEEDED], 1);
    assert_string_equal(m.nodes[model_find(&m, "b.example")].reason, "r-failed");
    model_done(&m);
}

static void test_coalescing_keeps_the_latest(void **state)
{
    static const char *const states[] = {"starting", "running", "failed", "waiting", "succeeded"};
    struct ui_model m;
    uint32_t n, total = 0;
    const struct ui_row *rows;

    (void)state;
    model_init(&m);
    apply(&m, plan_json);
    model_rows(&m, &n);
    for (int i = 0; i < 1000; i++) {
        node_event(&m, "a.example", 0, states[i % 5], i % 2);
        node_event(&m, "c.example", 1, states[(i + 2) % 5], 0);
    }
    /* i = 999: a gets states[4], c gets states[1] */
    assert_int_equal(m.nodes[model_find(&m, "a.example")].state, NODE_SUCCEEDED);
    assert_int_equal(m.nodes[model_find(&m, "c.example")].state, NODE_RUNNING);
    assert_int_equal(m.nodes[model_find(&m, "a.example")].locked, 1);
    for (int s = 0; s < UI_NSTATES; s++)
        total += m.count[s];
    assert_int_equal(total, m.nnodes);
    assert_int_equal(m.count[NODE_SUCCEEDED], 1);
    assert_int_equal(m.count[NODE_RUNNING], 1);
    assert_int_equal(m.count[NODE_WAITING], 2);
    /* incremental row counts agree with a rebuild */
    rows = model_rows(&m, &n);
    assert_int_equal(rows[0].count[NODE_SUCCEEDED], 1);
    assert_int_equal(rows[0].count[NODE_WAITING], 2);
    model_set_filter(&m, "");
    rows = model_rows(&m, &n);
    assert_int_equal(rows[0].count[NODE_SUCCEEDED], 1);
    assert_int_equal(rows[0].count[NODE_WAITING], 2);
    model_done(&m);
}

static void test_filter(void **state)
{
    struct ui_model m;
    char text[512];

    (void)state;
    model_init(&m);
    apply(&m, plan_json);
    node_event(&m, "b.example", 1, "failed", 1);
    node_event(&m, "a.example", 0, "succeeded", 0);
    assert_int_equal(model_set_filter(&m, "failed"), 1);
    tree_text(&m, text, sizeof(text));
    assert_string_equal(text, "[Lamp[x]] G2 b1 b");
    /* a node that fails later joins the filtered tree */
    node_event(&m, "c.example", 1, "failed", 0);
    tree_text(&m, text, sizeof(text));
    assert_string_equal(text, "[Lamp[x]] G2 b1 b[(no application)] G2 b3 c");
    assert_int_equal(model_set_filter(&m, "ok"), 1);
    assert_int_equal(model_set_filter(&m, "locked"), 2); /* b and d */
    assert_int_equal(model_set_filter(&m, "D.EXAM"), 1);
    tree_text(&m, text, sizeof(text));
    assert_string_equal(text, "[Lamp[x]] G2 b2 d");
    assert_int_equal(model_set_filter(&m, "nothing-like-it"), 0);
    tree_text(&m, text, sizeof(text));
    assert_string_equal(text, "");
    assert_int_equal(model_set_filter(&m, ""), 4);
    model_done(&m);
}

static void test_collapse(void **state)
{
    struct ui_model m;
    char text[512];
    uint32_t n;

    (void)state;
    model_init(&m);
    apply(&m, plan_json);
    model_rows(&m, &n);
    model_toggle(&m, 0); /* Lamp[x] */
    tree_text(&m, text, sizeof(text));
    assert_string_equal(text, "[Lamp[x]][Lamp[y]] G1 b1 a[(no application)] G2 b3 c");
    /* a folded application still counts its nodes */
    node_event(&m, "d.example", 1, "failed", 0);
    assert_int_equal(model_rows(&m, &n)[0].count[NODE_FAILED], 1);
    assert_int_equal(model_rows(&m, &n)[0].nodes, 3);
    model_toggle(&m, 0);
    tree_text(&m, text, sizeof(text));
    assert_string_equal(text, "[Lamp[x]] G1 b1 a G2 b1 b b2 d[Lamp[y]] G1 b1 a[(no application)] G2 b3 c");
    model_done(&m);
}

static void test_output_ring_is_capped(void **state)
{
    struct ui_model m;
    const struct ui_node *a;
    char buf[256];

    (void)state;
    model_init(&m);
    apply(&m, plan_json);
    for (int i = 0; i < UI_OUTPUT_MAX + 50; i++) {
        snprintf(buf, sizeof(buf), "{\"v\":1,\"type\":\"output\",\"time\":300,\"job\":\"J1\","
                 "\"node\":\"a.example\",\"lines\":[{\"level\":\"%s\",\"text\":\"line %d\\u0007\"}],"
                 "\"skipped\":%d}", i % 2 ? "err" : "notice", i, i == 0 ? 7 : 0);
        apply(&m, buf);
    }
    a = &m.nodes[model_find(&m, "a.example")];
    assert_int_equal(a->out.count, UI_OUTPUT_MAX);
    assert_int_equal(a->out.total, UI_OUTPUT_MAX + 50);
    assert_int_equal(a->out.skipped, 7);
    assert_string_equal(ring_at(&a->out, 0)->text, "line 50?"); /* controls shown as '?' */
    assert_int_equal(ring_at(&a->out, 0)->level, UI_LEVEL_NOTICE);
    assert_int_equal(ring_at(&a->out, 1)->level, UI_LEVEL_ERR);
    assert_string_equal(ring_at(&a->out, UI_OUTPUT_MAX - 1)->text, "line 249?");
    assert_null(ring_at(&a->out, UI_OUTPUT_MAX));
    model_done(&m);
}

static void test_report_attaches_to_its_node(void **state)
{
    struct ui_model m;
    const struct ui_node *b;
    const json_t *failed;

    (void)state;
    model_init(&m);
    apply(&m, plan_json);
    m.dirty = 0;
    apply(&m, "{\"v\":1,\"type\":\"report\",\"time\":400,\"job\":\"J1\",\"node\":\"b.example\","
              "\"statuscode\":0,\"statusmsg\":\"OK\",\"data\":{\"status\":\"failed\","
              "\"failed_resources\":[{\"resource\":\"Exec[boom]\"}]}}");
    b = &m.nodes[model_find(&m, "b.example")];
    assert_non_null(b->report);
    assert_true(m.dirty & MODEL_DIRTY_REPORT);
    failed = json_object_get(json_object_get(b->report, "data"), "failed_resources");
    assert_string_equal(json_string_value(json_object_get(json_array_get(failed, 0), "resource")),
                        "Exec[boom]");
    assert_null(m.nodes[model_find(&m, "a.example")].report);
    /* a report of a node the job does not have is refused */
    assert_int_equal(apply_rc(&m, "{\"v\":1,\"type\":\"report\",\"time\":400,\"job\":\"J1\","
                                  "\"node\":\"zz\",\"statuscode\":0,\"data\":{}}"), -1);
    model_done(&m);
}

static void test_job_log_and_result(void **state)
{
    struct ui_model m;

    (void)state;
    model_init(&m);
    apply(&m, plan_json);
    apply(&m, "{\"v\":1,\"type\":\"job\",\"time\":110,\"job\":\"J1\",\"state\":\"running\","
              "\"reason\":\"running 4 nodes in 2 groups\"}");
    assert_int_equal(m.state, JOB_RUNNING);
    assert_false(model_final(&m));
    assert_int_equal(model_elapsed_ms(&m, 1100), 1000);
    apply(&m, "{\"v\":1,\"type\":\"operator\",\"time\":120,\"job\":\"J1\",\"actor\":\"user a\","
              "\"command\":\"pause\",\"reply\":\"ok: paused\"}");
    assert_int_equal(m.operators, 1);
    assert_string_equal(m.last_command, "pause");
    assert_string_equal(m.message, "pause: ok: paused");
    apply(&m, "{\"v\":1,\"type\":\"result\",\"time\":130,\"job\":\"J1\",\"state\":\"failed\","
              "\"reason\":\"\",\"exit_code\":1,\"elapsed_ms\":18918,\"nodes\":4,\"succeeded\":3,"
              "\"failed\":1,\"skipped\":0,\"not_reached\":0,\"locked\":1}");
    assert_true(model_final(&m));
    assert_int_equal(model_elapsed_ms(&m, 999999), 18918);
    assert_string_equal(ring_at(&m.log, 0)->text, "job running: running 4 nodes in 2 groups");
    assert_string_equal(ring_at(&m.log, 1)->text, "operator user a: pause -> ok: paused");
    assert_string_equal(ring_at(&m.log, 2)->text, "job failed in 18.9 s: 4 nodes, 3 succeeded, "
                        "1 failed, 0 skipped, 0 not reached (exit 1)");
    assert_int_equal(ring_at(&m.log, 3)->level, UI_LEVEL_WARNING);
    model_done(&m);
}

static void test_malformed_events_change_nothing(void **state)
{
    struct ui_model m;

    (void)state;
    model_init(&m);
    apply(&m, plan_json);
    assert_int_equal(apply_rc(&m, "{\"type\":\"node\",\"node\":\"a.example\",\"state\":\"failed\"}"), -1);
    assert_int_equal(apply_rc(&m, "{\"type\":\"node\",\"time\":1,\"node\":\"a.example\","
                                  "\"state\":\"exploded\"}"), -1);
    assert_int_equal(apply_rc(&m, "{\"type\":\"nonsense\",\"time\":1}"), -1);
    assert_int_equal(apply_rc(&m, "[1,2]"), -1);
    assert_int_equal(apply_rc(&m, "{\"type\":\"output\",\"time\":1,\"node\":\"a.example\","
                                  "\"lines\":\"x\"}"), -1);
    assert_int_equal(m.bad_events, 5);
    assert_int_equal(m.nodes[model_find(&m, "a.example")].state, NODE_WAITING);
    /* a node event for a node the plan did not name adds it */
    node_event(&m, "new.example", 1, "running", 0);
    assert_int_equal(m.nnodes, 5);
    assert_int_equal(m.count[NODE_RUNNING], 1);
    model_done(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_from_plan),
        cmocka_unit_test(test_steps_move_nodes),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_coalescing_keeps_the_latest),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_collapse),
        cmocka_unit_test(test_output_ring_is_capped),
        cmocka_unit_test(test_report_attaches_to_its_node),
        cmocka_unit_test(test_job_log_and_result),
        cmocka_unit_test(test_malformed_events_change_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
