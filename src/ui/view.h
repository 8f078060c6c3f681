/* view.h - what the console's views share (private to src/ui): the view
 * ops table, the console state they draw from, and the drawing helpers.
 *
 * A view is a struct whose first member is `struct view`; its ops draw
 * the body (the rows between the title line and the message line), take
 * keys (returning 1 when they used the key), re-lay out after a resize,
 * and name the view in the title.  Views are stacked: the run view at the
 * bottom, the report, the job log and the help overlay on top; back (esc)
 * or q pops one. */
#ifndef CHOIR_UI_VIEW_H
#define CHOIR_UI_VIEW_H

#include <stdarg.h>
#include <stddef.h>

#include <curses.h>

#include "ui/keymap.h"
#include "ui/model.h"
#include "ui/theme.h"
#include "ui/tui.h"

#define TUI_MIN_COLS 80
#define TUI_MIN_ROWS 24
#define TUI_STACK_MAX 8
#define TUI_FLASH_MS 700

struct tui;
struct view;

struct view_ops {
    const char *name;
    void (*draw)(struct tui *t, struct view *v, int top, int height);
    int (*key)(struct tui *t, struct view *v, int action, int key);
    void (*resize)(struct tui *t, struct view *v);
    void (*title)(struct tui *t, struct view *v, char *buf, size_t size);
    void (*free)(struct view *v);
    /* Whether what changed in the model (model.dirty) shows in this view;
     * NULL: any change does. */
    int (*stale)(struct tui *t, struct view *v);
    const enum keymap_action *hints;
    size_t nhints;
    int overlay;                   /* drawn over the view below it */
};

struct view {
    const struct view_ops *ops;
};

enum tui_prompt_kind { PROMPT_NONE, PROMPT_CONFIRM, PROMPT_TEXT };

typedef void tui_text_fn(struct tui *t, const char *text, int done);

struct tui_stats {
    unsigned long frames, keys, events;
    double frame_ms_total, frame_ms_max, key_ms_total, key_ms_max, apply_ms_total;
    long long cpu_start_us;
};

struct tui {
    struct keymap keys;
    struct theme theme;
    int colour, utf8;
    attr_t role_attr[THEME_NROLES];
    struct ui_model model;
    const struct tui_source *src;
    struct view *stack[TUI_STACK_MAX];
    int depth;
    /* the message line */
    char msg[UI_LINE_MAX + 64];
    int msg_role;
    /* a question or a line of input on the message line */
    struct {
        enum tui_prompt_kind kind;
        enum keymap_action action;
        char arg[256];
        char label[320];
        char text[128];
        size_t len;
        tui_text_fn *on_text;
    } prompt;
    /* the loop */
    int done, plan_answer;
    int leaving;                   /* waiting for pause's answer before leaving */
    long long leave_deadline;
    unsigned long operator_seen;
    int left_running, paused;
    int need_draw;
    long long last_frame_ms, key_at_ms, flash_until;
    int flash_ms;
    int exit_at_end;
    const char *stats_file;
    struct tui_stats stats;
};

/* ---- the console (tui.c) ---- */
long long tui_now_ms(void);
long long tui_clock_ms(const struct tui *t);
void tui_push(struct tui *t, struct view *v);
void tui_pop(struct tui *t);
void tui_message(struct tui *t, int role, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sends a command to the job (or says it was not sent, in a replay). */
void tui_command(struct tui *t, const char *command, const char *arg);
/* Asks "question [y/N]"; y runs `action` with arg. */
void tui_confirm(struct tui *t, enum keymap_action action, const char *arg, const char *question);
/* A line of input on the message line; fn sees every change (done 0),
 * then the end (done 1 for enter, -1 for esc). */
void tui_input(struct tui *t, const char *label, const char *initial, tui_text_fn *fn);
/* Runs a job command action (pause, abort, ...) for the node `node`. */
void tui_job_action(struct tui *t, enum keymap_action a, const char *node);

/* ---- drawing helpers (tui_draw.c) ---- */
/* The curses attributes of every theme role (colours unless mode or the
 * terminal says no). */
void tui_looks(struct tui *t, const char *mode);
/* Draws UTF-8 text at (y, x) in at most `width` cells; returns the cells used. */
int tui_put(struct tui *t, int y, int x, int width, int role, const char *text);
int tui_putf(struct tui *t, int y, int x, int width, int role, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Paints `width` cells of the role (a bar). */
void tui_fill(struct tui *t, int y, int x, int width, int role);
/* Display cells of UTF-8 text as tui_put would draw it. */
int tui_width(const struct tui *t, const char *text);
const char *tui_glyph(const struct tui *t, enum node_state s);
const char *tui_fold_glyph(const struct tui *t, int collapsed);
int tui_state_role(enum node_state s);
int tui_level_role(enum ui_level l);
int tui_flashing(const struct tui *t, const struct ui_node *n);
void tui_time_text(long long ms, char *buf, size_t size);
void tui_duration_text(long long ms, char *buf, size_t size);

/* ---- text views: lines with a role, scrolling, search (view_text.c) ---- */
struct text_line {
    int role;
    int indent;
    char *text;
};

struct text_view {
    struct view base;
    struct text_line *lines;
    size_t n, cap;
    long top;                      /* first line shown */
    int height;                    /* body rows at the last draw */
    int follow;                    /* stay at the end as lines come */
    char search[128];
    long match;                    /* line of the current match, -1 none */
};

void text_init(struct text_view *tv, const struct view_ops *ops);
void text_clear(struct text_view *tv);
void text_add(struct text_view *tv, int role, int indent, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void text_draw(struct tui *t, struct text_view *tv, int top, int height);
/* Scrolling and search keys; 1 when used. */
int text_key(struct tui *t, struct text_view *tv, int action);
void text_done(struct text_view *tv);

/* ---- the views ---- */
struct view *view_run_new(struct tui *t);
struct view *view_report_new(struct tui *t, uint32_t node);
struct view *view_log_new(struct tui *t);
struct view *view_help_new(struct tui *t);
struct view *view_plan_new(struct tui *t, const struct plan *plan, const struct job_options *opt,
                           const char *environment);

#endif
