/* view_help.c - the help overlay (?): every action of the keymap with its
 * keys and help text (keymap.h's table, rebindings included), and what the
 * glyphs mean.  Up and down scroll it; any other key closes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "ui/view.h"

struct help_view {
    struct text_view tv;
};

static void help_build(struct tui *t, struct text_view *tv)
{
    char keys[64], legend[256];

    text_add(tv, THEME_TITLE, 0, "Keys (tui.keys rebinds them: ACTION=KEY,...)");
    for (int a = 0; a < KA_COUNT; a++) {
        keymap_keys_text(&t->keys, (enum keymap_action)a, keys, sizeof(keys));
        text_add(tv, THEME_PLAIN, 0, "%-12s %-10s %s%s", keys, keymap_action_name((enum keymap_action)a),
                 keymap_action_help((enum keymap_action)a),
                 keymap_action_confirms((enum keymap_action)a) ? " (asks)" : "");
    }
    text_add(tv, THEME_PLAIN, 0, "%s", "");
    snprintf(legend, sizeof(legend), "%s waiting  %s starting  %s running  %s succeeded  %s failed  "
             "%s skipped", tui_glyph(t, NODE_WAITING), tui_glyph(t, NODE_STARTING),
             tui_glyph(t, NODE_RUNNING), tui_glyph(t, NODE_SUCCEEDED), tui_glyph(t, NODE_FAILED),
             tui_glyph(t, NODE_SKIPPED));
    text_add(tv, THEME_TITLE, 0, "Glyphs");
    text_add(tv, THEME_PLAIN, 0, "%s", legend);
    text_add(tv, THEME_PLAIN, 0, "L: the job holds the node's Puppet lock (Puppet is disabled there)");
    text_add(tv, THEME_PLAIN, 0, "A job left with q is paused; 'choir resume JOB' goes on.");
}

static void help_draw(struct tui *t, struct view *v, int top, int height)
{
    struct text_view *tv = &((struct help_view *)v)->tv;
    int w = COLS - 8 < 100 ? COLS - 8 : 100, h = height - 2, x = (COLS - w) / 2, y = top + 1;
    long max;

    if (tv->n == 0)
        help_build(t, tv);
    max = (long)tv->n - (h - 2);
    if (tv->top > max)
        tv->top = max > 0 ? max : 0;
    if (tv->top < 0)
        tv->top = 0;
    tv->height = h - 2;
    for (int i = 0; i < h; i++)
        tui_fill(t, y + i, x, w, THEME_PLAIN);
    tui_fill(t, y, x, w, THEME_PANE_TITLE);
    tui_put(t, y, x + 1, w - 1, THEME_PANE_TITLE, "Help: up and down scroll, any other key closes");
    for (int i = 0; i < h - 2 && tv->top + i < (long)tv->n; i++) {
        const struct text_line *l = &tv->lines[tv->top + i];

        tui_put(t, y + 1 + i, x + 2, w - 3, l->role, l->text);
    }
    tui_fill(t, y + h - 1, x, w, THEME_PANE_TITLE);
}

static int help_key(struct tui *t, struct view *v, int a, int key)
{
    struct text_view *tv = &((struct help_view *)v)->tv;

    (void)key;
    if (a == KA_UP || a == KA_DOWN || a == KA_PAGE_UP || a == KA_PAGE_DOWN) {
        tv->top += a == KA_UP ? -1 : a == KA_DOWN ? 1 : a == KA_PAGE_UP ? -tv->height : tv->height;
        return 1;
    }
    tui_pop(t);
    return 1;
}

static void help_title(struct tui *t, struct view *v, char *buf, size_t size)
{
    (void)t;
    (void)v;
    snprintf(buf, size, "help ");
}

static void help_free(struct view *v)
{
    text_done(&((struct help_view *)v)->tv);
    free(v);
}

static const enum keymap_action help_hints[] = {KA_UP, KA_DOWN, KA_BACK};

static const struct view_ops help_ops = {
    .name = "help", .draw = help_draw, .key = help_key, .title = help_title, .free = help_free,
    .hints = help_hints, .nhints = sizeof(help_hints) / sizeof(help_hints[0]), .overlay = 1,
};

struct view *view_help_new(struct tui *t)
{
    struct help_view *hv = xcalloc(1, sizeof(*hv));

    (void)t;
    text_init(&hv->tv, &help_ops);
    return &hv->tv.base;
}
