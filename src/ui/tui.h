/* tui.h - the ncurses console: the plan screen, the live run screen (tree,
 * node pane, report, job log, help), fed by the job event stream.  The
 * caller wires a source of events (the engine, or a replayed file); curses
 * stays inside src/ui.
 *
 * Contract:
 * - tui_open parses the keymap (tui.keys: errors name the key's origin
 *   and the bad word, before the screen is touched), sets the locale
 *   (UTF-8 glyphs when the codeset is UTF-8, ASCII otherwise), takes the
 *   terminal (raw: Ctrl-C is a key, and asks like q) and sets the colours
 *   of the theme's roles (none with color = never, or NO_COLOR under
 *   auto, or a terminal without colours).  tui_close gives the terminal
 *   back and writes CHOIR_TUI_STATS (frames, frame times, key-to-screen
 *   times, events, CPU time of the UI thread) when that was set.
 * - tui_plan shows a plan and asks "Run this plan? (y/n)": 1 for y, 0
 *   for n, q, esc or Ctrl-C (nothing was touched).
 * - tui_run draws the job from src until the operator leaves: it only
 *   takes events when the source says they wait, never blocks the source,
 *   redraws at most every TUI_FRAME_MS and only when something changed,
 *   and re-lays out at once on resize.  Destructive commands (abort,
 *   retry, skip, unlock) and leaving a job that is not over ask first,
 *   Cancel being the default; leaving a running job sends pause first and
 *   waits briefly for its answer.  With src->command NULL (a replay),
 *   commands are not sent: the message line says "(replay: not sent)".
 * - tui_status draws a one-line message at once (e.g. while connecting). */
#ifndef CHOIR_UI_TUI_H
#define CHOIR_UI_TUI_H

#include <stddef.h>

#include <jansson.h>

#include "core/error.h"
#include "core/job.h"
#include "core/plan.h"
#include "ui/theme.h"

#define TUI_FRAME_MS 33

struct tui_source {
    void *ctx;
    int fd;                        /* readable when events wait; -1: use due_ms */
    /* ms until events wait (0: now), or -1 when none will come; NULL: use fd */
    long long (*due_ms)(void *ctx);
    size_t (*take)(void *ctx, json_t **evs, size_t max);
    int (*finished)(void *ctx);    /* no event will come any more */
    void (*command)(void *ctx, const char *command, const char *arg);  /* NULL: replay */
    long long (*clock_ms)(void *ctx);  /* the job's clock (ms since the epoch) */
    const char *(*error)(void *ctx);   /* why the source stopped early, or NULL */
    const char *label;             /* shown in the title ("replay"), or NULL */
    int fast;                      /* events come as fast as they can: no flashing */
};

struct tui_options {
    const struct theme *theme;
    const char *color;             /* auto, always or never */
    const char *keys;              /* tui.keys, or NULL */
    const char *keys_origin;       /* where tui.keys came from */
    const char *stats_file;        /* CHOIR_TUI_STATS, or NULL */
    int exit_at_end;               /* leave by itself once the source is over */
};

struct tui_end {
    int left_running;              /* the operator left a job that was not over */
    int paused;                    /* ... after it answered pause */
    json_t *result;                /* the result event (a reference), or NULL */
    char state[32];                /* the job's last state */
};

struct tui;

int tui_open(struct tui **out, const struct tui_options *o, struct choir_error *err);
int tui_plan(struct tui *t, const struct plan *plan, const struct job_options *opt,
             const char *environment);
void tui_status(struct tui *t, const char *text);
void tui_run(struct tui *t, const struct tui_source *src, struct tui_end *end);
void tui_close(struct tui *t);

#endif
