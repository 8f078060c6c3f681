/* view_log.c - the job log (L): the job's state changes, steps, preflight
 * problems, operator actions and their answers, warnings and the result,
 * with their times, as the model keeps them (model.h); it stays at the end
 * while new lines come unless scrolled up. */
#include <stdio.h>
#include <stdlib.h>

#include "core/xalloc.h"
#include "ui/view.h"

struct log_view {
    struct text_view tv;
    unsigned long shown;           /* model.log.total when built */
};

static const enum keymap_action log_hints[] = {
    KA_BACK, KA_UP, KA_DOWN, KA_TOP, KA_BOTTOM, KA_FILTER, KA_NEXT, KA_HELP,
};

static void log_draw(struct tui *t, struct view *v, int top, int height)
{
    struct log_view *lv = (struct log_view *)v;
    const struct ui_ring *log = &t->model.log;

    if (lv->shown != log->total || lv->tv.n == 0) {
        text_clear(&lv->tv);
        if (log->total > log->count)
            text_add(&lv->tv, THEME_PLAIN, 0, "(%lu earlier lines not kept; 'choir show' has the "
                     "journal)", log->total - log->count);
        for (uint32_t i = 0; i < log->count; i++) {
            const struct ui_line *l = ring_at(log, i);
            char when[32];

            tui_time_text(l->time_ms, when, sizeof(when));
            text_add(&lv->tv, tui_level_role(l->level), 0, "%s %s", when, l->text);
        }
        if (log->count == 0)
            text_add(&lv->tv, THEME_PLAIN, 0, "nothing yet");
        lv->shown = log->total;
    }
    text_draw(t, &lv->tv, top, height);
}

static int log_key(struct tui *t, struct view *v, int a, int key)
{
    (void)key;
    return text_key(t, &((struct log_view *)v)->tv, a);
}

static void log_title(struct tui *t, struct view *v, char *buf, size_t size)
{
    struct log_view *lv = (struct log_view *)v;

    (void)t;
    snprintf(buf, size, "job log  %ld/%zu ", lv->tv.n ? lv->tv.top + 1 : 0, lv->tv.n);
}

static void log_free(struct view *v)
{
    text_done(&((struct log_view *)v)->tv);
    free(v);
}

static const struct view_ops log_ops = {
    .name = "log", .draw = log_draw, .key = log_key, .title = log_title, .free = log_free,
    .hints = log_hints, .nhints = sizeof(log_hints) / sizeof(log_hints[0]),
};

struct view *view_log_new(struct tui *t)
{
    struct log_view *lv = xcalloc(1, sizeof(*lv));

    (void)t;
    text_init(&lv->tv, &log_ops);
    lv->tv.follow = 1;
    lv->shown = (unsigned long)-1;
    return &lv->tv.base;
}
