/* view_run.c - the run screen: the tree (application -> group -> batch ->
 * node, a glyph, colour and reason per node, counts per header) and the
 * pane of the selected node (state, lock, timings, reason, failed
 * resources, report figures, the live tail of its output).  Below 140
 * columns the pane is under the tree, else beside it; tab gives the pane
 * the keys (and, stacked, most of the rows). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "ui/view.h"

#define NONE UINT32_MAX
#define SIDE_BY_SIDE_COLS 140
#define NAME_MAX_CELLS 40
#define STATE_CELLS 9
#define VERDICT_CELLS 16

struct run_view {
    struct view base;
    uint32_t sel, sel_node, top;
    int follow;
    int pane_focus;
    long pane_scroll;              /* output lines up from the end */
    int tree_h, pane_h;
    unsigned long shown_serial;    /* of the node in the pane at the last draw */
    char filter_before[128];
};

static const enum keymap_action run_hints[] = {
    KA_HELP, KA_QUIT, KA_OPEN, KA_FILTER, KA_PAUSE, KA_CONTINUE, KA_ABORT, KA_RETRY, KA_SKIP,
    KA_UNLOCK, KA_LOG, KA_PANE,
};

/* ---- selection --------------------------------------------------------------------- */

static uint32_t first_failed_row(const struct ui_model *m, const struct ui_row *rows, uint32_t n)
{
    for (uint32_t r = 0; r < n; r++)
        if (rows[r].kind == UI_ROW_NODE && m->nodes[rows[r].node].state == NODE_FAILED)
            return r;
    return NONE;
}

static void run_select(struct run_view *rv, struct ui_model *m, const struct ui_row *rows,
                       uint32_t n)
{
    uint32_t r = NONE;

    if (rv->follow) {
        if (model_final(m))
            r = first_failed_row(m, rows, n);
        if (r == NONE && m->last_active != NONE)
            r = model_node_row(m, m->last_active);
    }
    if (r == NONE && rv->sel_node != NONE)
        r = model_node_row(m, rv->sel_node);
    if (r != NONE)
        rv->sel = r;
    if (n == 0)
        rv->sel = 0;
    else if (rv->sel >= n)
        rv->sel = n - 1;
    if (n == 0) {
        rv->sel_node = NONE;
        return;
    }
    if (rv->sel == 0 && rv->sel_node == NONE && rows[0].kind != UI_ROW_NODE) {
        /* start on the first node rather than on a header */
        for (uint32_t k = 0; k < n && k < 4; k++)
            if (rows[k].kind == UI_ROW_NODE) {
                rv->sel = k;
                break;
            }
    }
    rv->sel_node = rows[rv->sel].kind == UI_ROW_NODE ? rows[rv->sel].node : NONE;
}

static const struct ui_node *selected(const struct tui *t, const struct run_view *rv)
{
    return rv->sel_node != NONE && rv->sel_node < t->model.nnodes ? &t->model.nodes[rv->sel_node]
                                                                    : NULL;
}

/* ---- the tree ------------------------------------------------------------------------ */

/* "ok 3  failed 1  running 0  waiting 2  skipped 1", right-aligned at x + w. */
static void draw_counts(struct tui *t, int y, int x, int w, const uint32_t *count, int cursor)
{
    static const struct {
        const char *label;
        enum node_state s;
    } parts[] = {{"ok", NODE_SUCCEEDED}, {"failed", NODE_FAILED}, {"running", NODE_RUNNING},
                 {"waiting", NODE_WAITING}, {"skipped", NODE_SKIPPED}};
    char buf[5][32];
    int widths = 0, nparts = 0, cx;

    for (size_t i = 0; i < 5; i++) {
        uint32_t c = count[parts[i].s] + (parts[i].s == NODE_RUNNING ? count[NODE_STARTING] : 0);

        snprintf(buf[i], sizeof(buf[i]), "%s%s %u", nparts ? "  " : "", parts[i].label, c);
        widths += (int)strlen(buf[i]);
        nparts++;
    }
    if (widths > w)
        return;
    cx = x + w - widths;
    for (size_t i = 0; i < 5; i++) {
        uint32_t c = count[parts[i].s] + (parts[i].s == NODE_RUNNING ? count[NODE_STARTING] : 0);
        int role = cursor ? THEME_CURSOR : c ? tui_state_role(parts[i].s) : THEME_PLAIN;

        if (!buf[i][0])
            continue;
        if (parts[i].s == NODE_WAITING && c && !cursor)
            role = THEME_COUNT;
        cx += tui_put(t, y, cx, (int)strlen(buf[i]), role, buf[i]);
    }
}

static void header_label(const struct tui *t, const struct ui_row *r, char *buf, size_t size)
{
    const struct ui_model *m = &t->model;

    switch (r->kind) {
    case UI_ROW_APP: snprintf(buf, size, "%s", m->apps[r->app]); break;
    case UI_ROW_GROUP: snprintf(buf, size, "Group %u", r->group + 1); break;
    default:
        if (!(r->batch_key & UI_BATCH_PLANNED))
            snprintf(buf, size, "step %u", r->batch_key);
        else if (m->batch_size)
            snprintf(buf, size, "batch %u (not run yet)", (r->batch_key & ~UI_BATCH_PLANNED) + 1);
        else
            snprintf(buf, size, "not run yet");
        break;
    }
}

static void draw_header(struct tui *t, const struct ui_row *r, int y, int x, int w, int cursor)
{
    char label[300];
    int used, role = cursor ? THEME_CURSOR : r->kind == UI_ROW_BATCH ? THEME_PLAIN : THEME_GROUP;

    header_label(t, r, label, sizeof(label));
    if (cursor)
        tui_fill(t, y, x, w, THEME_CURSOR);
    used = (int)r->depth * 2;
    used += tui_putf(t, y, x + used, w - used, role, "%s %s", tui_fold_glyph(t, r->collapsed), label);
    used += tui_putf(t, y, x + used, w - used, cursor ? THEME_CURSOR : THEME_PLAIN, "  (%u)", r->nodes);
    draw_counts(t, y, x + used + 2, w - used - 2, r->count, cursor);
}

static void draw_node(struct tui *t, const struct ui_row *r, int y, int x, int w, int cursor,
                      int name_w)
{
    const struct ui_node *n = &t->model.nodes[r->node];
    int flash = !cursor && tui_flashing(t, n);
    int base = cursor ? THEME_CURSOR : flash ? THEME_FLASH : -1;
    int cx = x + (int)r->depth * 2, end = x + w;

    if (base >= 0)
        tui_fill(t, y, x, w, base);
    cx += tui_put(t, y, cx, end - cx, base >= 0 ? base : tui_state_role(n->state),
                  tui_glyph(t, n->state));
    cx++;
    tui_put(t, y, cx, name_w < end - cx ? name_w : end - cx, base >= 0 ? base : THEME_NODE, n->name);
    cx += name_w + 1;
    if (cx >= end)
        return;
    tui_put(t, y, cx, STATE_CELLS < end - cx ? STATE_CELLS : end - cx,
            base >= 0 ? base : tui_state_role(n->state), node_state_name(n->state));
    cx += STATE_CELLS + 1;
    if (cx >= end)
        return;
    tui_put(t, y, cx, 1, base >= 0 ? base : n->locked ? THEME_LOCKED : THEME_PLAIN,
            n->locked ? "L" : " ");
    cx += 2;
    if (cx >= end)
        return;
    if (*n->verdict && strcmp(n->verdict, node_state_name(n->state)) != 0) {
        cx += tui_put(t, y, cx, VERDICT_CELLS < end - cx ? VERDICT_CELLS : end - cx,
                      base >= 0 ? base : THEME_PLAIN, n->verdict);
        cx++;
    }
    if (cx < end && *n->reason && strcmp(n->reason, node_state_name(n->state)) != 0)
        tui_put(t, y, cx, end - cx, base >= 0 ? base : THEME_PLAIN, n->reason);
}

static void draw_tree(struct tui *t, struct run_view *rv, const struct ui_row *rows, uint32_t n,
                      int y, int x, int h, int w)
{
    const struct ui_model *m = &t->model;
    int name_w = 8;

    if (n == 0) {
        if (m->filter[0])
            tui_putf(t, y, x + 1, w - 1, THEME_PLAIN, "no node matches the filter \"%s\" (esc "
                     "clears it)", m->filter);
        else
            tui_put(t, y, x + 1, w - 1, THEME_PLAIN, m->nnodes ? "" : "waiting for the plan ...");
        return;
    }
    if (rv->sel < rv->top)
        rv->top = rv->sel;
    if (rv->sel >= rv->top + (uint32_t)h)
        rv->top = rv->sel - (uint32_t)h + 1;
    if (rv->top + (uint32_t)h > n)
        rv->top = n > (uint32_t)h ? n - (uint32_t)h : 0;
    for (uint32_t r = rv->top; r < n && r < rv->top + (uint32_t)h; r++)
        if (rows[r].kind == UI_ROW_NODE) {
            int nw = tui_width(t, m->nodes[rows[r].node].name);

            if (nw > name_w)
                name_w = nw;
        }
    if (name_w > NAME_MAX_CELLS)
        name_w = NAME_MAX_CELLS;
    for (int i = 0; i < h && rv->top + (uint32_t)i < n; i++) {
        const struct ui_row *r = &rows[rv->top + (uint32_t)i];
        int cursor = rv->top + (uint32_t)i == rv->sel;

        if (r->kind == UI_ROW_NODE)
            draw_node(t, r, y + i, x, w, cursor && !rv->pane_focus, name_w);
        else
            draw_header(t, r, y + i, x, w, cursor && !rv->pane_focus);
    }
}

/* ---- the pane ------------------------------------------------------------------------ */

/* "report: 10 resources, 3 changed, 1 failed; 2.1 s" from a report event. */
static void report_figures(const json_t *ev, char *buf, size_t size)
{
    const json_t *data = json_object_get(ev, "data");
    const json_t *res = json_object_get(json_object_get(data, "metrics"), "resources");
    const json_t *time = json_object_get(json_object_get(data, "metrics"), "time");

    if (json_integer_value(json_object_get(ev, "statuscode")) != 0) {
        snprintf(buf, size, "report: %s", json_string_value(json_object_get(ev, "statusmsg")));
        return;
    }
    snprintf(buf, size, "report: %s, %lld resources, %lld changed, %lld failed, %lld out of sync; "
             "%.1f s", json_string_value(json_object_get(data, "status"))
                           ? json_string_value(json_object_get(data, "status")) : "?",
             (long long)json_integer_value(json_object_get(res, "total")),
             (long long)json_integer_value(json_object_get(res, "changed")),
             (long long)json_integer_value(json_object_get(res, "failed")),
             (long long)json_integer_value(json_object_get(res, "out_of_sync")),
             json_number_value(json_object_get(time, "total")));
}

static void failed_text(const json_t *failed, char *buf, size_t size)
{
    const json_t *v;
    size_t i, len = 0;

    buf[0] = '\0';
    json_array_foreach(failed, i, v)
        if (json_is_string(v) && len < size)
            len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "",
                                    json_string_value(v));
}

static int pane_details(struct tui *t, const struct ui_node *n, int y, int x, int w, int h)
{
    char a[64], b[64], c[64], buf[1024];
    long long now = tui_clock_ms(t);
    int line = 0;

    if (line < h) {
        int cx = x + tui_put(t, y + line, x, w, tui_state_role(n->state), tui_glyph(t, n->state));

        cx += 1;
        cx += tui_put(t, y + line, cx, x + w - cx, tui_state_role(n->state), node_state_name(n->state));
        snprintf(buf, sizeof(buf), "%s%s · group %u%s", *n->verdict ? " · " : "", n->verdict,
                 n->group + 1, n->step ? "" : " · not run yet");
        if (n->step)
            snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " · step %u", n->step);
        if (n->exit_code >= 0)
            snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " · exit %d", n->exit_code);
        cx += tui_put(t, y + line, cx, x + w - cx, THEME_PLAIN, buf);
        tui_put(t, y + line, cx, x + w - cx, n->locked ? THEME_LOCKED : THEME_PLAIN,
                n->locked ? " · locked: the job holds its Puppet lock" : " · lock: not held");
        line++;
    }
    if (line < h) {
        tui_time_text(n->started_ms, a, sizeof(a));
        tui_time_text(n->finished_ms, b, sizeof(b));
        if (n->started_ms && n->finished_ms)
            tui_duration_text(n->finished_ms - n->started_ms, c, sizeof(c));
        else if (n->started_ms)
            tui_duration_text(now - n->started_ms, c, sizeof(c));
        if (n->started_ms && n->finished_ms)
            tui_putf(t, y + line++, x, w, THEME_PLAIN, "started %s · finished %s (%s) · %s", a, b,
                     c, *n->apps ? n->apps : UI_NO_APP);
        else if (n->started_ms)
            tui_putf(t, y + line++, x, w, THEME_PLAIN, "started %s · running for %s · %s", a, c,
                     *n->apps ? n->apps : UI_NO_APP);
        else
            tui_putf(t, y + line++, x, w, THEME_PLAIN, "not started · %s",
                     *n->apps ? n->apps : UI_NO_APP);
    }
    if (line < h && *n->reason)
        tui_putf(t, y + line++, x, w, n->state == NODE_FAILED ? THEME_NODE_FAILED : THEME_PLAIN,
                 "%s", n->reason);
    if (line < h && n->failed) {
        failed_text(n->failed, buf, sizeof(buf));
        tui_putf(t, y + line++, x, w, THEME_NODE_FAILED, "failed: %s", buf);
    }
    if (line < h) {
        if (n->report)
            report_figures(n->report, buf, sizeof(buf));
        else
            snprintf(buf, sizeof(buf), "report: enter fetches it");
        tui_put(t, y + line++, x, w, THEME_PLAIN, buf);
    }
    return line;
}

static void pane_output(struct tui *t, struct run_view *rv, const struct ui_node *n, int y, int x,
                        int w, int h)
{
    const struct ui_ring *out = &n->out;
    long last, first;

    if (h <= 0)
        return;
    tui_putf(t, y, x, w, THEME_RULE, "output: %lu lines%s%lu skipped%s", out->total,
             out->total > out->count ? " (the last kept), " : ", ", out->skipped,
             rv->pane_scroll ? " · scrolled (G: the end)" : "");
    h--;
    if (rv->pane_scroll > (long)out->count - h)
        rv->pane_scroll = (long)out->count - h > 0 ? (long)out->count - h : 0;
    last = (long)out->count - rv->pane_scroll;
    first = last - h > 0 ? last - h : 0;
    for (long i = first; i < last; i++) {
        const struct ui_line *l = ring_at(out, (uint32_t)i);
        int cx = x;

        if (l->level != UI_LEVEL_OUTPUT)
            cx += tui_putf(t, y + 1 + (int)(i - first), cx, w, tui_level_role(l->level), "%s: ",
                           ui_level_name(l->level));
        tui_put(t, y + 1 + (int)(i - first), cx, x + w - cx, tui_level_role(l->level), l->text);
    }
}

static void pane_job(struct tui *t, const struct ui_row *r, int y, int x, int w, int h)
{
    const struct ui_model *m = &t->model;
    char buf[1024];
    int line = 0;

    if (r && r->kind != UI_ROW_NODE) {
        header_label(t, r, buf, sizeof(buf));
        tui_putf(t, y + line++, x, w, THEME_GROUP, "%s: %u nodes here%s", buf, r->nodes,
                 r->kind == UI_ROW_NODE ? "" : " (enter folds or unfolds)");
    }
    if (line < h)
        tui_putf(t, y + line++, x, w, THEME_PLAIN, "job %s%s%s", job_state_name(m->state),
                 m->reason && *m->reason ? ": " : "", m->reason ? m->reason : "");
    if (line < h)
        tui_putf(t, y + line++, x, w, THEME_PLAIN, "%u nodes: %u succeeded, %u failed, %u running, "
                 "%u waiting, %u skipped; the job holds %u locks", m->nnodes,
                 m->count[NODE_SUCCEEDED], m->count[NODE_FAILED],
                 m->count[NODE_RUNNING] + m->count[NODE_STARTING], m->count[NODE_WAITING],
                 m->count[NODE_SKIPPED], m->locked);
    if (line < h && m->options) {
        const json_t *o = m->options;
        json_int_t maxf = json_integer_value(json_object_get(o, "max_failures"));
        char budget[64];

        if (maxf < 0)
            snprintf(budget, sizeof(budget), "none (stop after the first failure)");
        else
            snprintf(budget, sizeof(budget), "%lld%s", (long long)maxf,
                     json_is_true(json_object_get(o, "max_failures_pct")) ? "%" : "");
        tui_putf(t, y + line++, x, w, THEME_PLAIN, "batch %lld · canary %lld · max failures %s · "
                 "%s · %s", (long long)json_integer_value(json_object_get(o, "batch")),
                 (long long)json_integer_value(json_object_get(o, "canary")), budget,
                 json_is_true(json_object_get(o, "contain")) ? "contain" : "no contain",
                 json_is_true(json_object_get(o, "noop")) ? "noop" : "no noop");
    }
}

static void draw_pane(struct tui *t, struct run_view *rv, const struct ui_row *r, int y, int x,
                      int h, int w)
{
    const struct ui_node *n = selected(t, rv);
    int used;

    tui_fill(t, y, x, w, THEME_PANE_TITLE);
    tui_putf(t, y, x + 1, w - 1, THEME_PANE_TITLE, "%s%s", n ? n->name : "the job",
             rv->pane_focus ? "  [keys here: tab gives them back]" : "");
    if (!n) {
        pane_job(t, r, y + 1, x + 1, w - 1, h - 1);
        return;
    }
    used = pane_details(t, n, y + 1, x + 1, w - 1, h - 1);
    pane_output(t, rv, n, y + 1 + used, x + 1, w - 1, h - 1 - used);
}

/* ---- the view ---------------------------------------------------------------------------- */

static void run_draw(struct tui *t, struct view *v, int top, int height)
{
    struct run_view *rv = (struct run_view *)v;
    uint32_t n;
    const struct ui_row *rows = model_rows(&t->model, &n);

    run_select(rv, &t->model, rows, n);
    rv->shown_serial = selected(t, rv) ? selected(t, rv)->serial : 0;
    if (COLS >= SIDE_BY_SIDE_COLS) {
        int tw = COLS * 55 / 100;

        rv->tree_h = height;
        rv->pane_h = height;
        draw_tree(t, rv, rows, n, top, 0, height, tw);
        for (int i = 0; i < height; i++)
            tui_put(t, top + i, tw, 1, THEME_RULE, t->utf8 ? "│" : "|");
        draw_pane(t, rv, n ? &rows[rv->sel] : NULL, top, tw + 1, height, COLS - tw - 1);
        return;
    }
    rv->pane_h = rv->pane_focus ? height - 5 : height * 2 / 5 > 8 ? height * 2 / 5 : 8;
    rv->tree_h = height - rv->pane_h;
    draw_tree(t, rv, rows, n, top, 0, rv->tree_h, COLS);
    draw_pane(t, rv, n ? &rows[rv->sel] : NULL, top + rv->tree_h, 0, rv->pane_h, COLS);
}

static void run_move(struct tui *t, struct run_view *rv, long delta, int to)
{
    uint32_t n;
    const struct ui_row *rows = model_rows(&t->model, &n);
    long sel = to ? (delta < 0 ? 0 : (long)n - 1) : (long)rv->sel + delta;

    rv->follow = 0;
    rv->pane_scroll = 0;
    if (n == 0)
        return;
    if (sel < 0)
        sel = 0;
    if (sel >= (long)n)
        sel = (long)n - 1;
    rv->sel = (uint32_t)sel;
    rv->sel_node = rows[rv->sel].kind == UI_ROW_NODE ? rows[rv->sel].node : NONE;
}

static int pane_key(struct run_view *rv, int a)
{
    long page = rv->pane_h > 4 ? rv->pane_h - 4 : 1;

    switch (a) {
    case KA_UP: rv->pane_scroll++; return 1;
    case KA_DOWN: rv->pane_scroll = rv->pane_scroll > 0 ? rv->pane_scroll - 1 : 0; return 1;
    case KA_PAGE_UP: rv->pane_scroll += page; return 1;
    case KA_PAGE_DOWN: rv->pane_scroll = rv->pane_scroll > page ? rv->pane_scroll - page : 0; return 1;
    case KA_TOP: rv->pane_scroll = UI_OUTPUT_MAX; return 1;
    case KA_BOTTOM: rv->pane_scroll = 0; return 1;
    default: return 0;
    }
}

static void run_on_filter(struct tui *t, const char *text, int done)
{
    struct run_view *rv = (struct run_view *)t->stack[0];
    uint32_t kept = model_set_filter(&t->model, done < 0 ? rv->filter_before : text);

    if (done < 0 && !rv->filter_before[0])
        tui_message(t, THEME_PLAIN, "no filter");
    else if (t->model.filter[0])
        tui_message(t, kept ? THEME_PLAIN : THEME_ERROR, "filter \"%s\": %u of %u nodes%s",
                    t->model.filter, kept, t->model.nnodes, done > 0 ? " (esc clears it)" : "");
    else
        tui_message(t, THEME_PLAIN, "no filter");
}

static void run_open(struct tui *t, struct run_view *rv)
{
    uint32_t n;

    model_rows(&t->model, &n);
    if (n == 0)
        return;
    if (rv->sel_node != NONE) {
        tui_push(t, view_report_new(t, rv->sel_node));
        return;
    }
    model_toggle(&t->model, rv->sel);
}

static int run_key(struct tui *t, struct view *v, int a, int key)
{
    struct run_view *rv = (struct run_view *)v;
    const struct ui_node *n = selected(t, rv);
    long page = rv->tree_h > 2 ? rv->tree_h - 1 : 1;

    (void)key;
    if (rv->pane_focus && pane_key(rv, a))
        return 1;
    switch (a) {
    case KA_UP: run_move(t, rv, -1, 0); return 1;
    case KA_DOWN: run_move(t, rv, 1, 0); return 1;
    case KA_PAGE_UP: run_move(t, rv, -page, 0); return 1;
    case KA_PAGE_DOWN: run_move(t, rv, page, 0); return 1;
    case KA_TOP: run_move(t, rv, -1, 1); return 1;
    case KA_BOTTOM: run_move(t, rv, 1, 1); return 1;
    case KA_OPEN: run_open(t, rv); return 1;
    case KA_PANE: rv->pane_focus = !rv->pane_focus; return 1;
    case KA_FILTER:
        snprintf(rv->filter_before, sizeof(rv->filter_before), "%s", t->model.filter);
        tui_input(t, "filter (a name, or failed, running, waiting, ok, skipped, locked): ",
                  t->model.filter, run_on_filter);
        return 1;
    case KA_BACK:
        if (rv->pane_focus)
            rv->pane_focus = 0;
        else if (t->model.filter[0]) {
            model_set_filter(&t->model, "");
            tui_message(t, THEME_PLAIN, "filter cleared");
        }
        return 1;
    case KA_FOLLOW:
        rv->follow = 1;
        tui_message(t, THEME_PLAIN, "following the nodes that run (a move stops it)");
        return 1;
    case KA_SKIP: tui_job_action(t, KA_SKIP, n ? n->name : NULL); return 1;
    default: return 0;
    }
}

/* Output and details of nodes other than the selected one do not show. */
static int run_stale(struct tui *t, struct view *v)
{
    struct run_view *rv = (struct run_view *)v;
    const struct ui_node *n = selected(t, rv);

    if (t->model.dirty & ~(unsigned)MODEL_DIRTY_NODE)
        return 1;
    return (n ? n->serial : 0) != rv->shown_serial;
}

static void run_title(struct tui *t, struct view *v, char *buf, size_t size)
{
    (void)v;
    if (t->model.filter[0])
        snprintf(buf, size, "filter \"%s\": %u ", t->model.filter, t->model.visible);
    else
        buf[0] = '\0';
}

static void run_free(struct view *v)
{
    free(v);
}

static const struct view_ops run_ops = {
    .name = "run", .draw = run_draw, .key = run_key, .title = run_title, .free = run_free,
    .stale = run_stale,
    .hints = run_hints, .nhints = sizeof(run_hints) / sizeof(run_hints[0]),
};

struct view *view_run_new(struct tui *t)
{
    struct run_view *rv = xcalloc(1, sizeof(*rv));

    (void)t;
    rv->base.ops = &run_ops;
    rv->sel_node = NONE;
    rv->follow = 1;
    return &rv->base;
}
