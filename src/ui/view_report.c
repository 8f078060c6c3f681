/* view_report.c - a node's last report (enter on a node): asks the job
 * for it ("report NODE") unless a report newer than the node's last change
 * is at hand, and shows it when the "report" event comes: the identity
 * (status, job id, transaction uuid, cached catalog status), failed
 * resources first with their events' messages, changed resources with
 * their events, the logs by level (most severe first) and the metrics.
 * Scrolls and searches like every text view. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "ui/view.h"

struct report_view {
    struct text_view tv;
    uint32_t node;
    const json_t *shown;           /* the report event drawn, or NULL */
    unsigned long operators;       /* model.operators when it was asked for */
    int asked;
};

static const enum keymap_action report_hints[] = {
    KA_BACK, KA_UP, KA_DOWN, KA_PAGE_DOWN, KA_FILTER, KA_NEXT, KA_HELP,
};

static const char *s_of(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : json_is_null(v) || !v ? "-" : "?";
}

/* A JSON value as short text: strings bare, the rest compact JSON. */
static void value_text(const json_t *v, char *buf, size_t size)
{
    char *dump;

    if (!v || json_is_null(v)) {
        snprintf(buf, size, "-");
    } else if (json_is_string(v)) {
        snprintf(buf, size, "%s", json_string_value(v));
    } else if ((dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY))) {
        snprintf(buf, size, "%s", dump);
        free(dump);
    }
}

static void add_resource(struct text_view *tv, const json_t *r, int failed)
{
    const json_t *ev, *file = json_object_get(r, "file");
    size_t i;

    if (json_is_string(file))
        text_add(tv, failed ? THEME_NODE_FAILED : THEME_NODE, 1, "%s  (%s:%lld)", s_of(r, "resource"),
                 json_string_value(file), (long long)json_integer_value(json_object_get(r, "line")));
    else
        text_add(tv, failed ? THEME_NODE_FAILED : THEME_NODE, 1, "%s", s_of(r, "resource"));
    json_array_foreach(json_object_get(r, "events"), i, ev) {
        char prev[256], want[256];
        int bad = !strcmp(s_of(ev, "status"), "failure");

        value_text(json_object_get(ev, "previous_value"), prev, sizeof(prev));
        value_text(json_object_get(ev, "desired_value"), want, sizeof(want));
        text_add(tv, bad ? THEME_LOG_ERROR : THEME_PLAIN, 2, "%s %s: %s", s_of(ev, "property"),
                 s_of(ev, "status"), s_of(ev, "message"));
        if (!bad && strcmp(prev, "-") != 0)
            text_add(tv, THEME_PLAIN, 3, "%s -> %s", prev, want);
    }
    if (json_is_true(json_object_get(r, "events_truncated")))
        text_add(tv, THEME_PLAIN, 2, "(%lld events in all)",
                 (long long)json_integer_value(json_object_get(r, "events_total")));
}

static void add_resources(struct text_view *tv, const json_t *data, const char *key,
                          const char *count, const char *title, int failed)
{
    const json_t *list = json_object_get(data, key), *r;
    size_t i;

    text_add(tv, failed && json_array_size(list) ? THEME_NODE_FAILED : THEME_GROUP, 0, "%s (%lld)",
             title, (long long)json_integer_value(json_object_get(data, count)));
    json_array_foreach(list, i, r)
        add_resource(tv, r, failed);
    if (json_array_size(list) == 0)
        text_add(tv, THEME_PLAIN, 1, "none");
    text_add(tv, THEME_PLAIN, 0, "%s", "");
}

static void add_logs(struct text_view *tv, const json_t *data)
{
    static const enum ui_level order[] = {UI_LEVEL_ERR, UI_LEVEL_WARNING, UI_LEVEL_NOTICE,
                                          UI_LEVEL_INFO, UI_LEVEL_DEBUG, UI_LEVEL_OUTPUT};
    const json_t *logs = json_object_get(data, "logs"), *l;
    size_t i;

    text_add(tv, THEME_GROUP, 0, "Logs (%zu%s), most severe first", json_array_size(logs),
             json_is_true(json_object_get(data, "logs_truncated")) ? ", cut" : "");
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++)
        json_array_foreach(logs, i, l) {
            enum ui_level lv = ui_level_parse(s_of(l, "level"));

            if (lv == order[k])
                text_add(tv, tui_level_role(lv), 1, "%-7s %s: %s", s_of(l, "level"),
                         s_of(l, "source"), s_of(l, "message"));
        }
    text_add(tv, THEME_PLAIN, 0, "%s", "");
}

static void add_metric_group(struct text_view *tv, const char *name, const json_t *g)
{
    char line[1024];
    size_t len = 0;
    const char *key;
    const json_t *v;

    line[0] = '\0';
    json_object_foreach((json_t *)g, key, v) {
        if (len >= sizeof(line))
            break;
        if (json_is_integer(v))
            len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s %lld", len ? ", " : "",
                                    key, (long long)json_integer_value(v));
        else if (json_is_number(v))
            len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s %.2f%s", len ? ", " : "",
                                    key, json_number_value(v), strcmp(name, "time") ? "" : " s");
    }
    text_add(tv, THEME_PLAIN, 1, "%-9s %s", name, line);
}

static void add_metrics(struct text_view *tv, const json_t *data)
{
    static const char *const groups[] = {"time", "resources", "events", "changes"};
    const json_t *metrics = json_object_get(data, "metrics");

    text_add(tv, THEME_GROUP, 0, "Metrics");
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        if (json_is_object(json_object_get(metrics, groups[i])))
            add_metric_group(tv, groups[i], json_object_get(metrics, groups[i]));
}

static void report_build(struct tui *t, struct report_view *rv)
{
    const struct ui_node *n = &t->model.nodes[rv->node];
    const json_t *ev = n->report, *data = json_object_get(ev, "data");
    struct text_view *tv = &rv->tv;
    char when[32];

    text_clear(tv);
    rv->shown = ev;
    tui_time_text(json_integer_value(json_object_get(ev, "time")), when, sizeof(when));
    text_add(tv, THEME_TITLE, 0, "Report of %s (fetched %s)", n->name, when);
    if (json_integer_value(json_object_get(ev, "statuscode")) != 0) {
        text_add(tv, THEME_ERROR, 0, "%s did not give its report: %s", n->name,
                 s_of(ev, "statusmsg"));
        return;
    }
    text_add(tv, THEME_PLAIN, 0, "status %s · puppet %s · environment %s · noop %s · %s",
             s_of(data, "status"), s_of(data, "puppet_version"), s_of(data, "environment"),
             json_is_true(json_object_get(data, "noop")) ? "yes" : "no", s_of(data, "time"));
    text_add(tv, THEME_PLAIN, 0, "job_id %s · transaction_uuid %s · cached_catalog_status %s",
             s_of(data, "job_id"), s_of(data, "transaction_uuid"),
             s_of(data, "cached_catalog_status"));
    text_add(tv, THEME_PLAIN, 0, "configuration_version %s · %lld resources",
             s_of(data, "configuration_version"),
             (long long)json_integer_value(json_object_get(data, "resources_total")));
    text_add(tv, THEME_PLAIN, 0, "%s", "");
    add_resources(tv, data, "failed_resources", "failed_count", "Failed resources", 1);
    add_resources(tv, data, "changed_resources", "changed_count", "Changed resources", 0);
    add_logs(tv, data);
    add_metrics(tv, data);
}

static void report_draw(struct tui *t, struct view *v, int top, int height)
{
    struct report_view *rv = (struct report_view *)v;
    const struct ui_node *n = rv->node < t->model.nnodes ? &t->model.nodes[rv->node] : NULL;

    if (!n) {
        text_clear(&rv->tv);
        text_add(&rv->tv, THEME_ERROR, 0, "this node is no longer in the job");
    } else if (n->report && n->report != rv->shown) {
        report_build(t, rv);
    } else if (!n->report) {
        text_clear(&rv->tv);
        if (rv->asked && t->model.operators > rv->operators &&
            !strcmp(t->model.last_command, "report") && strncmp(t->model.last_reply, "ok", 2))
            text_add(&rv->tv, THEME_ERROR, 0, "%s", t->model.last_reply);
        else if (rv->asked)
            text_add(&rv->tv, THEME_PLAIN, 0, "asking %s for its last report ...", n->name);
        else
            text_add(&rv->tv, THEME_PLAIN, 0, "no report of %s in this replay (a replay cannot "
                     "ask nodes)", n->name);
    }
    text_draw(t, &rv->tv, top, height);
}

static int report_key(struct tui *t, struct view *v, int a, int key)
{
    (void)key;
    return text_key(t, &((struct report_view *)v)->tv, a);
}

static void report_title(struct tui *t, struct view *v, char *buf, size_t size)
{
    struct report_view *rv = (struct report_view *)v;

    snprintf(buf, size, "report %s  %ld/%zu ",
             rv->node < t->model.nnodes ? t->model.nodes[rv->node].name : "-",
             rv->tv.n ? rv->tv.top + 1 : 0, rv->tv.n);
}

static void report_free(struct view *v)
{
    text_done(&((struct report_view *)v)->tv);
    free(v);
}

static const struct view_ops report_ops = {
    .name = "report", .draw = report_draw, .key = report_key, .title = report_title,
    .free = report_free, .hints = report_hints,
    .nhints = sizeof(report_hints) / sizeof(report_hints[0]),
};

struct view *view_report_new(struct tui *t, uint32_t node)
{
    struct report_view *rv = xcalloc(1, sizeof(*rv));
    const struct ui_node *n = &t->model.nodes[node];

    text_init(&rv->tv, &report_ops);
    rv->node = node;
    /* a report older than the node's last change may be the previous run's */
    if (!n->report || (n->changed_at_ms && n->report_ms < n->changed_at_ms)) {
        rv->operators = t->model.operators;
        rv->asked = t->src && t->src->command != NULL;
        tui_command(t, "report", n->name);
    }
    return &rv->tv.base;
}
