/* view_text.c - the scrolling, searchable text that the plan, report and
 * job log views are made of (view.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "ui/view.h"

void text_init(struct text_view *tv, const struct view_ops *ops)
{
    memset(tv, 0, sizeof(*tv));
    tv->base.ops = ops;
    tv->match = -1;
}

void text_clear(struct text_view *tv)
{
    for (size_t i = 0; i < tv->n; i++)
        free(tv->lines[i].text);
    tv->n = 0;
}

void text_done(struct text_view *tv)
{
    text_clear(tv);
    free(tv->lines);
    tv->lines = NULL;
    tv->cap = 0;
}

static void text_push(struct text_view *tv, int role, int indent, const char *s, size_t len)
{
    if (tv->n == tv->cap) {
        tv->cap = tv->cap ? tv->cap * 2 : 64;
        tv->lines = xreallocarray(tv->lines, tv->cap, sizeof(*tv->lines));
    }
    tv->lines[tv->n++] = (struct text_line){role, indent, xstrndup(s, len)};
}

void text_add(struct text_view *tv, int role, int indent, const char *fmt, ...)
{
    char buf[4096];
    const char *p = buf;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    for (;;) {
        const char *nl = strchr(p, '\n');

        text_push(tv, role, indent, p, nl ? (size_t)(nl - p) : strlen(p));
        if (!nl)
            break;
        p = nl + 1;
    }
}

static long text_max_top(const struct text_view *tv)
{
    long max = (long)tv->n - tv->height;

    return max > 0 ? max : 0;
}

void text_draw(struct tui *t, struct text_view *tv, int top, int height)
{
    tv->height = height;
    if (tv->follow || tv->top > text_max_top(tv))
        tv->top = text_max_top(tv);
    if (tv->top < 0)
        tv->top = 0;
    for (int i = 0; i < height && tv->top + i < (long)tv->n; i++) {
        const struct text_line *l = &tv->lines[tv->top + i];
        int x = l->indent * 2, role = l->role;

        if (tv->search[0] && strcasestr(l->text, tv->search))
            role = tv->top + i == tv->match ? THEME_CURSOR : THEME_MATCH;
        tui_put(t, top + i, x, COLS - x, role, l->text);
    }
}

/* The first line matching from `from` on, wrapping; -1 when none. */
static long text_find(const struct text_view *tv, long from)
{
    for (size_t k = 0; k < tv->n; k++) {
        long i = (from + (long)k) % (long)tv->n;

        if (strcasestr(tv->lines[i].text, tv->search))
            return i;
    }
    return -1;
}

static void text_show_match(struct tui *t, struct text_view *tv, long from)
{
    tv->match = tv->search[0] && tv->n ? text_find(tv, from) : -1;
    if (tv->match >= 0) {
        tv->follow = 0;
        if (tv->match < tv->top || tv->match >= tv->top + tv->height)
            tv->top = tv->match - tv->height / 3;
        tui_message(t, THEME_PLAIN, "\"%s\": line %ld of %zu", tv->search, tv->match + 1, tv->n);
    } else if (tv->search[0]) {
        tui_message(t, THEME_ERROR, "\"%s\": not found", tv->search);
    }
}

static void text_on_search(struct tui *t, const char *text, int done)
{
    struct text_view *tv = (struct text_view *)t->stack[t->depth - 1];

    snprintf(tv->search, sizeof(tv->search), "%s", done < 0 ? "" : text);
    if (done < 0) {
        tv->match = -1;
        tui_message(t, THEME_PLAIN, "search cleared");
        return;
    }
    text_show_match(t, tv, tv->top);
}

int text_key(struct tui *t, struct text_view *tv, int action)
{
    long page = tv->height > 1 ? tv->height - 1 : 1;

    switch (action) {
    case KA_UP: tv->top--; tv->follow = 0; return 1;
    case KA_DOWN: tv->top++; break;
    case KA_PAGE_UP: tv->top -= page; tv->follow = 0; return 1;
    case KA_PAGE_DOWN: tv->top += page; break;
    case KA_TOP: tv->top = 0; tv->follow = 0; return 1;
    case KA_BOTTOM: tv->top = text_max_top(tv); break;
    case KA_FILTER: tui_input(t, "search: ", tv->search, text_on_search); return 1;
    case KA_NEXT:
        if (!tv->search[0])
            tui_message(t, THEME_PLAIN, "no search: / searches");
        else
            text_show_match(t, tv, tv->match + 1);
        return 1;
    default: return 0;
    }
    if (tv->top >= text_max_top(tv)) {
        tv->top = text_max_top(tv);
        tv->follow = 1;
    }
    return 1;
}
