/* tui_draw.c - the console's drawing helpers (view.h): the curses look
 * of each theme role, the state glyphs (UTF-8 or ASCII), UTF-8 text cut to
 * a number of cells, times and durations as text. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "core/utf8.h"
#include "ui/term.h"
#include "ui/view.h"

void tui_time_text(long long ms, char *buf, size_t size)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0) {
        snprintf(buf, size, "-");
        return;
    }
    localtime_r(&s, &tm);
    strftime(buf, size, "%H:%M:%S", &tm);
}

void tui_duration_text(long long ms, char *buf, size_t size)
{
    long long s = ms / 1000;

    if (ms < 0)
        ms = 0;
    if (ms < 60000)
        snprintf(buf, size, "%.1f s", (double)ms / 1000.0);
    else if (s < 3600)
        snprintf(buf, size, "%lld m %02lld s", s / 60, s % 60);
    else
        snprintf(buf, size, "%lld h %02lld m", s / 3600, (s / 60) % 60);
}

/* ---- looks ---------------------------------------------------------------------------- */

static const struct {
    unsigned theme;
    attr_t curses;
} attr_map[] = {
    {THEME_BOLD, A_BOLD},         {THEME_DIM, A_DIM},           {THEME_UNDERLINE, A_UNDERLINE},
    {THEME_REVERSE, A_REVERSE},   {THEME_STANDOUT, A_STANDOUT}, {THEME_BLINK, A_BLINK},
};

static int fit_colour(int c, int defaults)
{
    if (c >= COLORS)
        return -1;
    return c < 0 && !defaults ? -2 : c;
}

void tui_looks(struct tui *t, const char *mode)
{
    int defaults;

    t->colour = term_colour_wanted(STDOUT_FILENO, mode) && has_colors() && start_color() == OK;
    defaults = t->colour && use_default_colors() == OK;
    for (int r = 0; r < THEME_NROLES; r++) {
        const struct theme_look *l = &t->theme.look[r];
        attr_t a = 0;

        for (size_t i = 0; i < sizeof(attr_map) / sizeof(attr_map[0]); i++)
            if (l->attrs & attr_map[i].theme)
                a |= attr_map[i].curses;
        if (t->colour && (l->fg >= 0 || l->bg >= 0)) {
            int fg = fit_colour(l->fg, defaults), bg = fit_colour(l->bg, defaults);

            if (init_pair((short)(r + 1), (short)(fg == -2 ? COLOR_WHITE : fg),
                          (short)(bg == -2 ? COLOR_BLACK : bg)) == OK)
                a |= COLOR_PAIR(r + 1);
        } else if (!t->colour && l->bg >= 0 && l->attrs == 0) {
            a |= A_REVERSE; /* a background is a highlight: keep it visible */
        }
        t->role_attr[r] = a;
    }
}

const char *tui_glyph(const struct tui *t, enum node_state s)
{
    static const char *const utf8[] = {"·", "○", "●", "✓", "✗", "⊘"};
    static const char *const ascii[] = {".", "o", "*", "+", "X", "-"};

    return (t->utf8 ? utf8 : ascii)[s];
}

const char *tui_fold_glyph(const struct tui *t, int collapsed)
{
    if (t->utf8)
        return collapsed ? "▸" : "▾";
    return collapsed ? "+" : "-";
}

int tui_state_role(enum node_state s)
{
    switch (s) {
    case NODE_SUCCEEDED: return THEME_NODE_OK;
    case NODE_FAILED: return THEME_NODE_FAILED;
    case NODE_SKIPPED: return THEME_NODE_SKIPPED;
    case NODE_WAITING: return THEME_NODE_WAITING;
    default: return THEME_NODE_RUNNING;
    }
}

int tui_level_role(enum ui_level l)
{
    if (l == UI_LEVEL_ERR)
        return THEME_LOG_ERROR;
    if (l == UI_LEVEL_WARNING)
        return THEME_LOG_WARNING;
    return l == UI_LEVEL_DEBUG ? THEME_NODE_SKIPPED : THEME_PLAIN;
}

int tui_flashing(const struct tui *t, const struct ui_node *n)
{
    return t->flash_ms > 0 && n->changed_at_ms && tui_now_ms() - n->changed_at_ms < t->flash_ms;
}

/* ---- text ------------------------------------------------------------------------------ */

/* Without a UTF-8 locale: one ASCII character for each UTF-8 one, the
 * console's own punctuation mapped to its nearest look. */
static wchar_t ascii_of(const char *p, const char *end, size_t *n)
{
    static const struct {
        unsigned cp;
        char ascii;
    } near[] = {{0xb7, '.'}, {0x2192, '>'}, {0x2502, '|'}, {0x2014, '-'}, {0xd7, 'x'}};
    const unsigned char *u = (const unsigned char *)p;
    unsigned cp;

    *n = utf8_char_len(u, (const unsigned char *)end);
    if (*n <= 1) {
        *n = 1;
        return u[0] < 0x80 ? (wchar_t)u[0] : L'?';
    }
    cp = u[0] & (0x7f >> *n);
    for (size_t i = 1; i < *n; i++)
        cp = (cp << 6) | (u[i] & 0x3f);
    for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++)
        if (near[i].cp == cp)
            return (wchar_t)near[i].ascii;
    return L'?';
}

/* Walks UTF-8 text as cells: calls put for each character that fits. */
static int text_cells(const struct tui *t, const char *text, int width,
                      void (*put)(void *, wchar_t), void *ctx)
{
    mbstate_t mb;
    const char *p = text, *end = text + strlen(text);
    int used = 0;

    memset(&mb, 0, sizeof(mb));
    while (p < end) {
        wchar_t wc;
        size_t n;
        int w;

        if (t->utf8) {
            n = mbrtowc(&wc, p, (size_t)(end - p), &mb);
            if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
                memset(&mb, 0, sizeof(mb));
                wc = L'?';
                n = 1;
            }
        } else {
            wc = ascii_of(p, end, &n);
        }
        if (wc < 0x20 || wc == 0x7f)
            wc = L'?';
        w = t->utf8 ? wcwidth(wc) : 1;
        if (w < 0) {
            wc = L'?';
            w = 1;
        }
        if (used + w > width)
            break;
        if (put)
            put(ctx, wc);
        used += w;
        p += n;
    }
    return used;
}

struct put_buf {
    wchar_t buf[256];
    int n;
};

static void put_flush(struct put_buf *b)
{
    if (b->n)
        addnwstr(b->buf, b->n);
    b->n = 0;
}

static void put_char(void *ctx, wchar_t wc)
{
    struct put_buf *b = ctx;

    if (b->n == (int)(sizeof(b->buf) / sizeof(b->buf[0])))
        put_flush(b);
    b->buf[b->n++] = wc;
}

static void put_ascii(void *ctx, wchar_t wc)
{
    (void)ctx;
    addch((chtype)wc);
}

int tui_put(struct tui *t, int y, int x, int width, int role, const char *text)
{
    struct put_buf b;
    int used;

    if (width <= 0 || y < 0 || y >= LINES || x >= COLS)
        return 0;
    if (x + width > COLS)
        width = COLS - x;
    b.n = 0;
    attrset(t->role_attr[role]);
    move(y, x);
    used = text_cells(t, text, width, t->utf8 ? put_char : put_ascii, &b);
    put_flush(&b);
    attrset(A_NORMAL);
    return used;
}

int tui_putf(struct tui *t, int y, int x, int width, int role, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return tui_put(t, y, x, width, role, buf);
}

int tui_width(const struct tui *t, const char *text)
{
    return text_cells(t, text, INT_MAX, NULL, NULL);
}

void tui_fill(struct tui *t, int y, int x, int width, int role)
{
    if (width <= 0 || y < 0 || y >= LINES)
        return;
    if (x + width > COLS)
        width = COLS - x;
    attrset(t->role_attr[role]);
    mvhline(y, x, ' ', width);
    attrset(A_NORMAL);
}

