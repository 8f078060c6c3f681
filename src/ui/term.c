/* term.c - see term.h.  Uses ncurses' terminfo layer only (setupterm,
 * tigetstr, tiparm): no screen is initialised. */
#include "ui/term.h"

#include <curses.h>
#include <stdlib.h>
#include <string.h>
#include <term.h>
#include <unistd.h>

/* The look of each role: bold or not, and a colour (-1 = default). */
static const struct {
    int bold;
    int color;
} term_looks[TERM_NROLES] = {
    [TERM_PLAIN] = {0, -1},
    [TERM_TITLE] = {1, -1},
    [TERM_COUNT] = {1, -1},
    [TERM_RULE] = {0, COLOR_GREEN},
    [TERM_GROUP] = {1, -1},
    [TERM_NODE] = {1, -1},
    [TERM_ERROR] = {1, COLOR_RED},
};

static int term_wants_colour(int fd, const char *mode)
{
    const char *no_color = getenv("NO_COLOR");

    if (mode && strcmp(mode, "never") == 0)
        return 0;
    if (mode && strcmp(mode, "always") == 0)
        return 1;
    return isatty(fd) && !(no_color && *no_color);
}

static void term_append(char *dst, const char *seq)
{
    size_t n = strlen(dst);

    if (seq && seq != (char *)-1 && n + strlen(seq) < TERM_SEQ_MAX)
        strcpy(dst + n, seq);
}

void term_style_init(struct term_style *st, int fd, const char *mode)
{
    const char *bold, *setaf, *sgr0;
    int errret = 0;

    memset(st, 0, sizeof(*st));
    if (!term_wants_colour(fd, mode))
        return;
    if (setupterm(NULL, fd, &errret) != OK)
        return;
    bold = tigetstr("bold");
    setaf = tigetstr("setaf");
    sgr0 = tigetstr("sgr0");
    if (sgr0 && sgr0 != (char *)-1) {
        st->enabled = 1;
        term_append(st->off, sgr0);
        for (int r = 0; r < TERM_NROLES; r++) {
            if (term_looks[r].bold)
                term_append(st->on[r], bold);
            if (term_looks[r].color >= 0 && setaf && setaf != (char *)-1 && tigetnum("colors") >= 8)
                term_append(st->on[r], tiparm(setaf, term_looks[r].color));
        }
    }
    del_curterm(cur_term);
}
