/* term.c - see term.h.  Uses ncurses' terminfo layer only (setupterm,
 * tigetstr, tiparm): no screen is initialised. */
#include "ui/term.h"

#include <curses.h>
#include <stdlib.h>
#include <string.h>
#include <term.h>
#include <unistd.h>

/* Attribute bits and the terminfo capability that turns each on. */
static const struct {
    unsigned attr;
    const char *cap;
} term_attr_caps[] = {
    {THEME_BOLD, "bold"},       {THEME_DIM, "dim"},       {THEME_UNDERLINE, "smul"},
    {THEME_REVERSE, "rev"},     {THEME_STANDOUT, "smso"}, {THEME_BLINK, "blink"},
};

int term_colour_wanted(int fd, const char *mode)
{
    const char *no_color = getenv("NO_COLOR");

    if (mode && strcmp(mode, "never") == 0)
        return 0;
    if (mode && strcmp(mode, "always") == 0)
        return 1;
    return isatty(fd) && !(no_color && *no_color);
}

static int term_cap_ok(const char *seq)
{
    return seq && seq != (char *)-1;
}

static void term_append(char *dst, const char *seq)
{
    size_t n = strlen(dst);

    if (term_cap_ok(seq) && n + strlen(seq) < TERM_SEQ_MAX)
        strcpy(dst + n, seq);
}

static void term_colour(char *dst, const char *capname, int colour, int colours)
{
    const char *cap = tigetstr(capname);

    if (colour >= 0 && colour < colours && term_cap_ok(cap))
        term_append(dst, tiparm(cap, colour));
}

void term_style_init(struct term_style *st, int fd, const char *mode, const struct theme *theme)
{
    int errret = 0, colours;
    TERMINAL *screen_term = cur_term; /* the console's, when it runs: kept */

    memset(st, 0, sizeof(*st));
    if (!term_colour_wanted(fd, mode) || setupterm(NULL, fd, &errret) != OK) {
        set_curterm(screen_term);
        return;
    }
    if (term_cap_ok(tigetstr("sgr0"))) {
        st->enabled = 1;
        term_append(st->off, tigetstr("sgr0"));
        colours = tigetnum("colors");
        for (int r = 0; r < THEME_NROLES; r++) {
            const struct theme_look *look = &theme->look[r];

            for (size_t i = 0; i < sizeof(term_attr_caps) / sizeof(term_attr_caps[0]); i++)
                if (look->attrs & term_attr_caps[i].attr)
                    term_append(st->on[r], tigetstr(term_attr_caps[i].cap));
            term_colour(st->on[r], "setaf", look->fg, colours);
            term_colour(st->on[r], "setab", look->bg, colours);
        }
    }
    del_curterm(cur_term);
    set_curterm(screen_term);
}
