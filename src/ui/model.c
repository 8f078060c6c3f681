/* model.c - see model.h. */
#include "ui/model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xalloc.h"

#define NONE UINT32_MAX

static const char *const level_names[] = {
#define UI_LEVEL_NAME(id, name) [id] = name,
    UI_LEVELS(UI_LEVEL_NAME)
#undef UI_LEVEL_NAME
};

const char *ui_level_name(enum ui_level l)
{
    return level_names[l];
}

enum ui_level ui_level_parse(const char *name)
{
    if (!name)
        return UI_LEVEL_OUTPUT;
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (enum ui_level)i;
    if (!strcmp(name, "crit") || !strcmp(name, "alert") || !strcmp(name, "emerg") ||
        !strcmp(name, "error"))
        return UI_LEVEL_ERR;
    return UI_LEVEL_OUTPUT;
}

/* ---- small helpers ----------------------------------------------------------------- */

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

/* A copy of outside text fit for one screen line: cut, controls as '?'. */
static char *line_copy(const char *s)
{
    size_t len = strnlen(s, UI_LINE_MAX - 1);
    char *out = xstrndup(s, len);

    for (size_t i = 0; i < len; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            out[i] = '?';
    return out;
}

static void set_text(char **dst, const char *s)
{
    if (*dst && strcmp(*dst, s) == 0)
        return; /* most events repeat the text they had */
    free(*dst);
    *dst = line_copy(s);
}

/* ---- rings ------------------------------------------------------------------------- */

static void ring_init(struct ui_ring *r, uint32_t cap)
{
    memset(r, 0, sizeof(*r));
    r->cap = cap;
}

static void ring_done(struct ui_ring *r)
{
    for (uint32_t i = 0; r->lines && i < r->count; i++)
        free(r->lines[(r->head + i) % r->cap].text);
    free(r->lines);
    r->lines = NULL;
    r->count = r->head = 0;
}

static void ring_push(struct ui_ring *r, long long time_ms, enum ui_level level, const char *text)
{
    struct ui_line *l;

    if (!r->lines)
        r->lines = xcalloc(r->cap, sizeof(*r->lines));
    if (r->count == r->cap) {
        l = &r->lines[r->head];
        free(l->text);
        r->head = (r->head + 1) % r->cap;
        r->count--;
    }
    l = &r->lines[(r->head + r->count) % r->cap];
    l->time_ms = time_ms;
    l->level = level;
    l->text = line_copy(text);
    r->count++;
    r->total++;
}

const struct ui_line *ring_at(const struct ui_ring *r, uint32_t i)
{
    return i < r->count ? &r->lines[(r->head + i) % r->cap] : NULL;
}

__attribute__((format(printf, 4, 5)))
static void log_line(struct ui_model *m, long long time_ms, enum ui_level level, const char *fmt,
                     ...)
{
    char buf[UI_LINE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    ring_push(&m->log, time_ms, level, buf);
    m->dirty |= MODEL_DIRTY_LOG;
}

__attribute__((format(printf, 3, 4)))
static void message(struct ui_model *m, enum ui_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(m->message, sizeof(m->message), fmt, ap);
    va_end(ap);
    for (char *p = m->message; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    m->message_level = level;
    m->dirty |= MODEL_DIRTY_MESSAGE;
}

/* ---- life ------------------------------------------------------------------------------ */

void model_init(struct ui_model *m)
{
    memset(m, 0, sizeof(*m));
    strtab_init(&m->names);
    ring_init(&m->log, UI_LOG_MAX);
    m->state = JOB_PLANNED;
    m->filter_state = -1;
    m->last_active = NONE;
    m->dirty = ~0u;
}

static void nodes_free(struct ui_model *m)
{
    for (uint32_t i = 0; i < m->nnodes; i++) {
        struct ui_node *n = &m->nodes[i];

        free(n->name);
        free(n->apps);
        free(n->reason);
        free(n->verdict);
        json_decref(n->failed);
        json_decref(n->report);
        ring_done(&n->out);
    }
    free(m->nodes);
    m->nodes = NULL;
    m->nnodes = m->cap_nodes = 0;
    strtab_done(&m->names);
    strtab_init(&m->names);
    for (uint32_t a = 0; a < m->napps; a++)
        free(m->apps[a]);
    free(m->apps);
    m->apps = NULL;
    m->napps = 0;
    free(m->node_apps_start);
    free(m->node_apps);
    m->node_apps_start = m->node_apps = NULL;
    free(m->group_count);
    m->group_count = NULL;
    m->ngroups = 0;
    memset(m->count, 0, sizeof(m->count));
    m->locked = 0;
    m->last_active = NONE;
}

void model_done(struct ui_model *m)
{
    nodes_free(m);
    strtab_done(&m->names);
    free(m->job_id);
    free(m->caller);
    free(m->environment);
    free(m->reason);
    json_decref(m->options);
    json_decref(m->result);
    free(m->rows);
    free(m->node_rows_start);
    free(m->node_rows);
    free(m->collapsed);
    ring_done(&m->log);
    memset(m, 0, sizeof(*m));
}

/* ---- nodes ----------------------------------------------------------------------------- */

long model_find(const struct ui_model *m, const char *name)
{
    uint32_t id = strtab_find(&m->names, name, strlen(name));

    return id == STRTAB_NONE ? -1 : (long)id;
}

static void groups_fit(struct ui_model *m, uint32_t group)
{
    if (group < m->ngroups)
        return;
    m->group_count = xreallocarray(m->group_count, group + 1, sizeof(*m->group_count));
    memset(m->group_count + m->ngroups, 0, (group + 1 - m->ngroups) * sizeof(*m->group_count));
    m->ngroups = group + 1;
}

static uint32_t node_add(struct ui_model *m, const char *name, uint32_t group, const char *apps)
{
    uint32_t id = strtab_intern(&m->names, name, strlen(name));
    struct ui_node *n;

    if (id < m->nnodes)
        return id;
    if (m->nnodes == m->cap_nodes) {
        m->cap_nodes = m->cap_nodes ? m->cap_nodes * 2 : 64;
        m->nodes = xreallocarray(m->nodes, m->cap_nodes, sizeof(*m->nodes));
    }
    n = &m->nodes[m->nnodes];
    memset(n, 0, sizeof(*n));
    n->name = line_copy(name);
    n->apps = line_copy(apps);
    n->group = group;
    n->order = m->nnodes;
    n->state = NODE_WAITING;
    n->reason = xstrdup("");
    n->verdict = xstrdup("");
    n->exit_code = -1;
    ring_init(&n->out, UI_OUTPUT_MAX);
    groups_fit(m, group);
    m->group_count[group][NODE_WAITING]++;
    m->count[NODE_WAITING]++;
    m->nnodes++;
    /* the indexes of nodes and rows are rebuilt with the tree */
    free(m->node_apps_start);
    free(m->node_rows_start);
    m->node_apps_start = m->node_rows_start = NULL;
    m->dirty |= MODEL_DIRTY_ROWS | MODEL_DIRTY_TREE | MODEL_DIRTY_TITLE;
    return id;
}

static int app_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Calls fn for each application name in "A, B, C". */
static void apps_each(const char *apps, void (*fn)(void *, const char *, size_t), void *ctx)
{
    const char *p = apps;

    while (*p) {
        const char *end = strstr(p, ", ");
        size_t len = end ? (size_t)(end - p) : strlen(p);

        if (len)
            fn(ctx, p, len);
        p += len + (end ? 2 : 0);
    }
}

static void intern_app(void *ctx, const char *s, size_t len)
{
    strtab_intern(ctx, s, len);
}

struct app_lookup {
    struct strtab *names;
    uint32_t *rank;                /* interned id -> index in m->apps */
    uint32_t *out;
    uint32_t n;
};

static void lookup_app(void *ctx, const char *s, size_t len)
{
    struct app_lookup *l = ctx;

    l->out[l->n++] = l->rank[strtab_find(l->names, s, len)];
}

static void count_app(void *ctx, const char *s, size_t len)
{
    (void)s;
    (void)len;
    ++*(uint32_t *)ctx;
}

/* The applications, sorted, and which node serves which. */
static void index_apps(struct ui_model *m)
{
    struct strtab names;
    uint32_t total = 0, *rank, noapp = 0;
    struct app_lookup l;

    for (uint32_t a = 0; a < m->napps; a++)
        free(m->apps[a]);
    free(m->apps);
    free(m->node_apps_start);
    free(m->node_apps);
    strtab_init(&names);
    for (uint32_t i = 0; i < m->nnodes; i++) {
        uint32_t k = 0;

        apps_each(m->nodes[i].apps, intern_app, &names);
        apps_each(m->nodes[i].apps, count_app, &k);
        total += k ? k : 1;
        noapp |= k == 0;
    }
    m->napps = strtab_count(&names) + noapp;
    m->apps = xcalloc(m->napps + 1, sizeof(*m->apps));
    for (uint32_t a = 0; a < strtab_count(&names); a++)
        m->apps[a] = xstrdup(strtab_str(&names, a));
    qsort(m->apps, strtab_count(&names), sizeof(*m->apps), app_cmp);
    if (noapp)
        m->apps[m->napps - 1] = xstrdup(UI_NO_APP);
    rank = xcalloc(strtab_count(&names) + 1, sizeof(*rank));
    for (uint32_t a = 0; a < strtab_count(&names); a++)
        rank[strtab_find(&names, m->apps[a], strlen(m->apps[a]))] = a;
    m->node_apps_start = xcalloc(m->nnodes + 1, sizeof(uint32_t));
    m->node_apps = xcalloc(total + 1, sizeof(uint32_t));
    l = (struct app_lookup){&names, rank, m->node_apps, 0};
    for (uint32_t i = 0; i < m->nnodes; i++) {
        m->node_apps_start[i] = l.n;
        apps_each(m->nodes[i].apps, lookup_app, &l);
        if (l.n == m->node_apps_start[i])
            m->node_apps[l.n++] = m->napps - 1;
    }
    m->node_apps_start[m->nnodes] = l.n;
    free(rank);
    strtab_done(&names);
}

/* Planned batches: chunks of batch_size inside each group, in run order. */
static void plan_batches(struct ui_model *m)
{
    uint32_t *seen = xcalloc(m->ngroups + 1, sizeof(*seen));

    for (uint32_t i = 0; i < m->nnodes; i++) {
        struct ui_node *n = &m->nodes[i];

        n->batch = m->batch_size ? seen[n->group] / m->batch_size : 0;
        seen[n->group]++;
    }
    free(seen);
}

/* ---- the tree ------------------------------------------------------------------------ */

struct entry {
    uint32_t app, group, batch_key, order, node;
};

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;

    if (x->app != y->app)
        return x->app < y->app ? -1 : 1;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    if (x->batch_key != y->batch_key)
        return x->batch_key < y->batch_key ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static uint32_t batch_key(const struct ui_node *n)
{
    return n->step ? n->step : UI_BATCH_PLANNED | n->batch;
}

static int is_collapsed(const struct ui_model *m, enum ui_row_kind kind, const struct entry *e)
{
    for (size_t i = 0; i < m->ncollapsed; i++) {
        const struct ui_collapse *c = &m->collapsed[i];

        if (c->kind == kind && c->app == e->app && (kind == UI_ROW_APP || c->group == e->group) &&
            (kind != UI_ROW_BATCH || c->batch_key == e->batch_key))
            return 1;
    }
    return 0;
}

static uint32_t row_push(struct ui_model *m, enum ui_row_kind kind, uint32_t parent,
                         const struct entry *e, int collapsed)
{
    struct ui_row *r;

    if (m->nrows == m->cap_rows) {
        m->cap_rows = m->cap_rows ? m->cap_rows * 2 : 256;
        m->rows = xreallocarray(m->rows, m->cap_rows, sizeof(*m->rows));
    }
    r = &m->rows[m->nrows];
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->depth = (uint32_t)kind;
    r->app = e->app;
    r->group = e->group;
    r->batch_key = e->batch_key;
    r->node = kind == UI_ROW_NODE ? e->node : NONE;
    r->parent = parent;
    r->collapsed = collapsed;
    return m->nrows++;
}

static void rows_count(struct ui_model *m, uint32_t row, enum node_state s, int delta)
{
    for (uint32_t r = row; r != NONE; r = m->rows[r].parent) {
        m->rows[r].count[s] += (uint32_t)delta;
        m->rows[r].nodes += (uint32_t)delta;
    }
}

/* Entries of the nodes the filter keeps, one per (node, application). */
static struct entry *tree_entries(struct ui_model *m, uint32_t *n)
{
    struct entry *es = xcalloc(m->node_apps_start[m->nnodes] + 1, sizeof(*es));
    uint32_t k = 0;

    m->visible = 0;
    for (uint32_t i = 0; i < m->nnodes; i++) {
        const struct ui_node *nd = &m->nodes[i];

        if (!model_filter_keeps(m, nd))
            continue;
        m->visible++;
        for (uint32_t a = m->node_apps_start[i]; a < m->node_apps_start[i + 1]; a++)
            es[k++] = (struct entry){m->node_apps[a], nd->group, batch_key(nd), nd->order, i};
    }
    qsort(es, k, sizeof(*es), entry_cmp);
    *n = k;
    return es;
}

/* The anchor of entry e: its node row, or the collapsed header hiding it. */
static uint32_t tree_place(struct ui_model *m, const struct entry *e, const struct entry *prev,
                           uint32_t *head)
{
    int newapp = !prev || prev->app != e->app;
    int newgroup = newapp || prev->group != e->group;
    int newbatch = newgroup || prev->batch_key != e->batch_key;

    if (newapp)
        head[0] = row_push(m, UI_ROW_APP, NONE, e, is_collapsed(m, UI_ROW_APP, e));
    if (m->rows[head[0]].collapsed)
        return head[0];
    if (newgroup)
        head[1] = row_push(m, UI_ROW_GROUP, head[0], e, is_collapsed(m, UI_ROW_GROUP, e));
    if (m->rows[head[1]].collapsed)
        return head[1];
    if (newbatch)
        head[2] = row_push(m, UI_ROW_BATCH, head[1], e, is_collapsed(m, UI_ROW_BATCH, e));
    if (m->rows[head[2]].collapsed)
        return head[2];
    return row_push(m, UI_ROW_NODE, head[2], e, 0);
}

static void tree_build(struct ui_model *m)
{
    uint32_t n, head[3] = {NONE, NONE, NONE};
    struct entry *es;

    if (!m->node_apps_start)
        index_apps(m);
    es = tree_entries(m, &n);
    m->nrows = 0;
    free(m->node_rows_start);
    free(m->node_rows);
    m->node_rows_start = xcalloc(m->nnodes + 1, sizeof(uint32_t));
    m->node_rows = xcalloc(n + 1, sizeof(uint32_t));
    /* count per node first, so each node's anchors are contiguous */
    for (uint32_t k = 0; k < n; k++)
        m->node_rows_start[es[k].node + 1]++;
    for (uint32_t i = 0; i < m->nnodes; i++)
        m->node_rows_start[i + 1] += m->node_rows_start[i];
    {
        uint32_t *fill = xcalloc(m->nnodes + 1, sizeof(*fill));

        for (uint32_t k = 0; k < n; k++) {
            uint32_t row = tree_place(m, &es[k], k ? &es[k - 1] : NULL, head);
            uint32_t node = es[k].node;

            m->node_rows[m->node_rows_start[node] + fill[node]++] = row;
            rows_count(m, row, m->nodes[node].state, 1);
        }
        free(fill);
    }
    free(es);
    m->dirty &= ~(unsigned)MODEL_DIRTY_ROWS;
    m->dirty |= MODEL_DIRTY_TREE;
}

const struct ui_row *model_rows(struct ui_model *m, uint32_t *n)
{
    if ((m->dirty & MODEL_DIRTY_ROWS) || !m->node_rows_start)
        tree_build(m);
    *n = m->nrows;
    return m->rows;
}

uint32_t model_node_row(const struct ui_model *m, uint32_t node)
{
    uint32_t r;

    if (!m->node_rows_start || node >= m->nnodes ||
        m->node_rows_start[node] == m->node_rows_start[node + 1])
        return NONE;
    r = m->node_rows[m->node_rows_start[node]];
    return m->rows[r].kind == UI_ROW_NODE && m->rows[r].node == node ? r : NONE;
}

static struct ui_collapse collapse_key(const struct ui_row *r)
{
    return (struct ui_collapse){r->kind, r->app, r->kind == UI_ROW_APP ? 0 : r->group,
                                r->kind == UI_ROW_BATCH ? r->batch_key : 0};
}

void model_toggle(struct ui_model *m, uint32_t row)
{
    struct ui_collapse k;

    if (row >= m->nrows || m->rows[row].kind == UI_ROW_NODE)
        return;
    k = collapse_key(&m->rows[row]);
    m->dirty |= MODEL_DIRTY_ROWS;
    for (size_t i = 0; i < m->ncollapsed; i++) {
        struct ui_collapse *c = &m->collapsed[i];

        if (c->kind == k.kind && c->app == k.app && c->group == k.group &&
            c->batch_key == k.batch_key) {
            *c = m->collapsed[--m->ncollapsed];
            return;
        }
    }
    m->collapsed = xreallocarray(m->collapsed, m->ncollapsed + 1, sizeof(*m->collapsed));
    m->collapsed[m->ncollapsed++] = k;
}

/* ---- the filter ------------------------------------------------------------------------ */

int model_filter_keeps(const struct ui_model *m, const struct ui_node *n)
{
    if (m->filter_locked)
        return n->locked;
    if (m->filter_state >= 0)
        return (int)n->state == m->filter_state;
    return !m->filter[0] || strcasestr(n->name, m->filter) != NULL;
}

uint32_t model_set_filter(struct ui_model *m, const char *text)
{
    enum node_state s;

    snprintf(m->filter, sizeof(m->filter), "%s", text ? text : "");
    m->filter_state = -1;
    m->filter_locked = 0;
    if (!strcasecmp(m->filter, "ok"))
        m->filter_state = NODE_SUCCEEDED;
    else if (!strcasecmp(m->filter, "locked"))
        m->filter_locked = 1;
    else if (node_state_parse(m->filter, &s) == 0)
        m->filter_state = (int)s;
    m->dirty |= MODEL_DIRTY_ROWS | MODEL_DIRTY_TITLE;
    tree_build(m);
    return m->visible;
}

/* ---- applying events ------------------------------------------------------------------- */

static void node_state_change(struct ui_model *m, uint32_t i, enum node_state s, long long t,
                              long long now_ms)
{
    struct ui_node *n = &m->nodes[i];
    enum node_state old = n->state;

    if (s == old)
        return;
    m->count[old]--;
    m->count[s]++;
    m->group_count[n->group][old]--;
    m->group_count[n->group][s]++;
    n->state = s;
    n->changed_at_ms = now_ms;
    if (s == NODE_STARTING || s == NODE_RUNNING || s == NODE_FAILED)
        m->last_active = i;
    if (s == NODE_WAITING) {
        n->started_ms = n->finished_ms = 0;
    } else if ((s == NODE_STARTING || s == NODE_RUNNING) && !n->started_ms) {
        n->started_ms = t;
    } else if (node_state_final(s)) {
        n->finished_ms = t;
    }
    if (m->filter_state >= 0 || !m->node_rows_start) {
        m->dirty |= MODEL_DIRTY_ROWS;
        return;
    }
    for (uint32_t k = m->node_rows_start[i]; k < m->node_rows_start[i + 1]; k++) {
        rows_count(m, m->node_rows[k], old, -1);
        rows_count(m, m->node_rows[k], s, 1);
    }
}

static void node_lock(struct ui_model *m, struct ui_node *n, int locked)
{
    if (locked == n->locked)
        return;
    n->locked = locked;
    m->locked += locked ? 1u : (uint32_t)-1;
    if (m->filter_locked)
        m->dirty |= MODEL_DIRTY_ROWS;
}

static uint32_t node_of(struct ui_model *m, const json_t *ev)
{
    const char *name = str(ev, "node");
    json_int_t group = json_integer_value(json_object_get(ev, "group"));
    long i = model_find(m, name);

    if (i >= 0)
        return (uint32_t)i;
    if (!*name || group < 0 || group > 100000)
        return NONE;
    return node_add(m, name, (uint32_t)group, "");
}

static int apply_node(struct ui_model *m, const json_t *ev, long long now_ms)
{
    uint32_t i = node_of(m, ev);
    enum node_state s;
    struct ui_node *n;
    const json_t *failed = json_object_get(ev, "failed"), *code = json_object_get(ev, "exit_code");

    if (i == NONE || node_state_parse(str(ev, "state"), &s) < 0)
        return -1;
    n = &m->nodes[i];
    node_state_change(m, i, s, json_integer_value(json_object_get(ev, "time")), now_ms);
    set_text(&n->reason, str(ev, "reason"));
    set_text(&n->verdict, str(ev, "verdict"));
    node_lock(m, n, json_is_true(json_object_get(ev, "locked")));
    n->exit_code = json_is_integer(code) ? (int)json_integer_value(code) : -1;
    if (!json_is_array(failed) || json_array_size(failed) == 0)
        failed = NULL;
    if (failed != n->failed) {
        json_decref(n->failed);
        n->failed = json_incref((json_t *)failed);
    }
    n->serial++;
    m->dirty |= MODEL_DIRTY_TREE | MODEL_DIRTY_NODE | MODEL_DIRTY_TITLE;
    return 0;
}

static int apply_output(struct ui_model *m, const json_t *ev)
{
    uint32_t i = node_of(m, ev);
    const json_t *lines = json_object_get(ev, "lines"), *l;
    long long t = json_integer_value(json_object_get(ev, "time"));
    struct ui_node *n;
    size_t k;

    if (i == NONE || !json_is_array(lines))
        return -1;
    n = &m->nodes[i];
    json_array_foreach(lines, k, l)
        ring_push(&n->out, t, ui_level_parse(str(l, "level")), str(l, "text"));
    n->out.skipped += (unsigned long)json_integer_value(json_object_get(ev, "skipped"));
    n->serial++;
    m->dirty |= MODEL_DIRTY_NODE;
    return 0;
}

static int apply_step(struct ui_model *m, const json_t *ev, long long t)
{
    const json_t *nodes = json_object_get(ev, "nodes"), *v;
    json_int_t step = json_integer_value(json_object_get(ev, "step"));
    char names[256] = "";
    size_t k, len = 0;

    if (!json_is_array(nodes) || step < 1 || step > 0x7fffffff)
        return -1;
    json_array_foreach(nodes, k, v) {
        long i = json_is_string(v) ? model_find(m, json_string_value(v)) : -1;

        if (i >= 0 && m->nodes[i].step != (uint32_t)step) {
            m->nodes[i].step = (uint32_t)step;
            m->nodes[i].serial++;
            m->dirty |= MODEL_DIRTY_ROWS;
        }
        if (k < 8 && json_is_string(v) && len < sizeof(names))
            len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", k ? ", " : "",
                                    json_string_value(v));
    }
    log_line(m, t, UI_LEVEL_NOTICE, "step %lld: group %lld, %zu node%s: %s%s", (long long)step,
             (long long)json_integer_value(json_object_get(ev, "group")) + 1,
             json_array_size(nodes), json_array_size(nodes) == 1 ? "" : "s", names,
             json_array_size(nodes) > 8 ? ", ..." : "");
    return 0;
}

static void plan_node(struct ui_model *m, const json_t *o, long long t)
{
    json_int_t group = json_integer_value(json_object_get(o, "group"));
    json_int_t step = json_integer_value(json_object_get(o, "step"));
    enum node_state s;
    uint32_t i;
    struct ui_node *n;

    if (!*str(o, "node") || group < 0 || group > 100000 || model_find(m, str(o, "node")) >= 0)
        return;
    i = node_add(m, str(o, "node"), (uint32_t)group, str(o, "apps"));
    n = &m->nodes[i];
    if (node_state_parse(str(o, "state"), &s) == 0)
        node_state_change(m, i, s, t, 0);
    n->changed_at_ms = n->started_ms = n->finished_ms = 0;
    set_text(&n->reason, str(o, "reason"));
    set_text(&n->verdict, str(o, "verdict"));
    node_lock(m, n, json_is_true(json_object_get(o, "locked")));
    n->step = step > 0 && step < 0x7fffffff ? (uint32_t)step : 0;
}

static int apply_plan(struct ui_model *m, const json_t *ev, long long t)
{
    const json_t *nodes = json_object_get(ev, "nodes"), *o;
    json_int_t batch, groups;
    size_t k;

    if (!json_is_array(nodes))
        return -1;
    nodes_free(m);
    free(m->node_rows_start);
    m->node_rows_start = NULL;
    set_text(&m->caller, str(ev, "caller"));
    set_text(&m->environment, str(ev, "environment"));
    json_decref(m->options);
    m->options = json_is_object(json_object_get(ev, "options"))
                     ? json_incref(json_object_get(ev, "options")) : NULL;
    batch = json_integer_value(json_object_get(m->options, "batch"));
    m->batch_size = batch > 0 && batch < 0x7fffffff ? (uint32_t)batch : 0;
    m->started_ms = t;
    m->has_plan = 1;
    json_array_foreach(nodes, k, o)
        plan_node(m, o, t);
    groups = json_integer_value(json_object_get(ev, "groups"));
    if (groups > 0 && groups <= 100000)
        groups_fit(m, (uint32_t)groups - 1);
    index_apps(m);
    plan_batches(m);
    m->dirty = ~0u;
    return 0;
}

static int apply_job(struct ui_model *m, const json_t *ev, long long t)
{
    enum job_state s;

    if (job_state_parse(str(ev, "state"), &s) < 0)
        return -1;
    m->state = s;
    set_text(&m->reason, str(ev, "reason"));
    log_line(m, t, s == JOB_FAILED || s == JOB_REFUSED || s == JOB_UNREACHABLE ? UI_LEVEL_ERR
                                                                              : UI_LEVEL_NOTICE,
             "job %s%s%s", str(ev, "state"), *str(ev, "reason") ? ": " : "", str(ev, "reason"));
    m->dirty |= MODEL_DIRTY_TITLE;
    return 0;
}

static int apply_preflight(struct ui_model *m, const json_t *ev, long long t)
{
    const json_t *problems = json_object_get(ev, "problems"), *p;
    size_t k;

    log_line(m, t, UI_LEVEL_NOTICE, "preflight: %lld nodes asked, %zu cannot take part",
             (long long)json_integer_value(json_object_get(ev, "nodes")), json_array_size(problems));
    json_array_foreach(problems, k, p) {
        long i = model_find(m, str(p, "node"));

        log_line(m, t, UI_LEVEL_ERR, "  %s: %s", str(p, "node"), str(p, "problem"));
        if (i >= 0) {
            /* shown as the node's reason until the engine says more */
            free(m->nodes[i].reason);
            m->nodes[i].reason = line_copy(str(p, "problem"));
            m->nodes[i].serial++;
            m->dirty |= MODEL_DIRTY_TREE | MODEL_DIRTY_NODE;
        }
    }
    if (json_array_size(problems))
        message(m, UI_LEVEL_ERR, "preflight: %zu node%s cannot take part (L: the job log)",
                json_array_size(problems), json_array_size(problems) == 1 ? "" : "s");
    return 0;
}

static int apply_operator(struct ui_model *m, const json_t *ev, long long t)
{
    const char *reply = str(ev, "reply");
    enum ui_level level = strncmp(reply, "error", 5) == 0 ? UI_LEVEL_ERR : UI_LEVEL_NOTICE;

    m->operators++;
    snprintf(m->last_command, sizeof(m->last_command), "%s", str(ev, "command"));
    snprintf(m->last_reply, sizeof(m->last_reply), "%s", reply);
    log_line(m, t, level, "operator %s: %s%s%s -> %s", str(ev, "actor"), str(ev, "command"),
             *str(ev, "arg") ? " " : "", str(ev, "arg"), reply);
    message(m, level, "%s%s%s: %s", str(ev, "command"), *str(ev, "arg") ? " " : "",
            str(ev, "arg"), reply);
    return 0;
}

static int apply_report(struct ui_model *m, const json_t *ev, long long now_ms)
{
    long i = model_find(m, str(ev, "node"));

    if (i < 0)
        return -1;
    json_decref(m->nodes[i].report);
    m->nodes[i].report = json_incref((json_t *)ev);
    m->nodes[i].report_ms = now_ms;
    m->nodes[i].serial++;
    m->dirty |= MODEL_DIRTY_REPORT | MODEL_DIRTY_NODE;
    return 0;
}

static long long num(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static int apply_result(struct ui_model *m, const json_t *ev, long long t)
{
    enum job_state s;

    if (job_state_parse(str(ev, "state"), &s) == 0)
        m->state = s;
    json_decref(m->result);
    m->result = json_incref((json_t *)ev);
    log_line(m, t, s == JOB_SUCCEEDED ? UI_LEVEL_NOTICE : UI_LEVEL_ERR,
             "job %s in %.1f s: %lld nodes, %lld succeeded, %lld failed, %lld skipped, %lld not "
             "reached (exit %lld)", str(ev, "state"), (double)num(ev, "elapsed_ms") / 1000.0,
             num(ev, "nodes"), num(ev, "succeeded"), num(ev, "failed"), num(ev, "skipped"),
             num(ev, "not_reached"), num(ev, "exit_code"));
    if (num(ev, "locked") > 0)
        log_line(m, t, UI_LEVEL_WARNING, "%lld nodes stay disabled by this job: choir unlock %s "
                 "releases them, choir resume %s goes on", num(ev, "locked"), str(ev, "job"),
                 str(ev, "job"));
    message(m, s == JOB_SUCCEEDED ? UI_LEVEL_NOTICE : UI_LEVEL_ERR,
            "job %s (exit %lld)%s%s: %lld succeeded, %lld failed, %lld skipped, %lld not "
            "reached%s", str(ev, "state"), num(ev, "exit_code"), *str(ev, "reason") ? ", " : "",
            str(ev, "reason"), num(ev, "succeeded"), num(ev, "failed"), num(ev, "skipped"),
            num(ev, "not_reached"), num(ev, "locked") > 0 ? "; some nodes stay locked (L)" : "");
    m->dirty |= MODEL_DIRTY_TITLE;
    return 0;
}

/* The job took or released a node's Puppet lock. */
static int apply_lock(struct ui_model *m, const json_t *ev)
{
    long i = model_find(m, str(ev, "node"));

    if (i < 0 || !json_is_boolean(json_object_get(ev, "locked")))
        return -1;
    node_lock(m, &m->nodes[i], json_is_true(json_object_get(ev, "locked")));
    m->nodes[i].serial++;
    m->dirty |= MODEL_DIRTY_TREE | MODEL_DIRTY_NODE | MODEL_DIRTY_TITLE;
    return 0;
}

static int apply_type(struct ui_model *m, const char *type, const json_t *ev, long long t,
                      long long now_ms)
{
    if (!strcmp(type, "node"))
        return apply_node(m, ev, now_ms);
    if (!strcmp(type, "lock"))
        return apply_lock(m, ev);
    if (!strcmp(type, "output"))
        return apply_output(m, ev);
    if (!strcmp(type, "step"))
        return apply_step(m, ev, t);
    if (!strcmp(type, "job"))
        return apply_job(m, ev, t);
    if (!strcmp(type, "plan"))
        return apply_plan(m, ev, t);
    if (!strcmp(type, "preflight"))
        return apply_preflight(m, ev, t);
    if (!strcmp(type, "operator"))
        return apply_operator(m, ev, t);
    if (!strcmp(type, "report"))
        return apply_report(m, ev, now_ms);
    if (!strcmp(type, "result"))
        return apply_result(m, ev, t);
    if (!strcmp(type, "warning")) {
        log_line(m, t, UI_LEVEL_WARNING, "warning: %s", str(ev, "message"));
        message(m, UI_LEVEL_WARNING, "warning: %s", str(ev, "message"));
        return 0;
    }
    return -1;
}

int model_apply(struct ui_model *m, const json_t *ev, long long now_ms)
{
    const json_t *time = json_object_get(ev, "time");
    long long t = json_integer_value(time);

    m->events++;
    if (!json_is_object(ev) || !json_is_integer(time) ||
        !json_is_string(json_object_get(ev, "type"))) {
        m->bad_events++;
        return -1;
    }
    if (!m->job_id && *str(ev, "job"))
        m->job_id = line_copy(str(ev, "job"));
    if (!m->started_ms)
        m->started_ms = t;
    if (t > m->last_ms)
        m->last_ms = t;
    if (apply_type(m, str(ev, "type"), ev, t, now_ms) < 0) {
        m->bad_events++;
        return -1;
    }
    return 0;
}

long long model_elapsed_ms(const struct ui_model *m, long long now_ms)
{
    if (m->result)
        return num(m->result, "elapsed_ms");
    return m->started_ms && now_ms > m->started_ms ? now_ms - m->started_ms : 0;
}

int model_final(const struct ui_model *m)
{
    return m->result != NULL || job_state_final(m->state);
}
