/* term.h - styling for line-oriented output (plan text, plain logs).
 *
 * Contract: term_style_init decides once whether output to `fd` gets
 * colour: mode "never" -> no; "always" -> yes; "auto" -> only when fd is a
 * terminal and NO_COLOR is unset or empty.  Colour also needs terminfo to
 * know $TERM.  The escape sequences come from terminfo (bold, dim, smul,
 * rev, smso, blink, setaf, setab, sgr0), never hard-coded, and each
 * semantic role gets the look its theme gives it.  With colour off every
 * sequence is "". */
#ifndef CHOIR_TERM_H
#define CHOIR_TERM_H

#include "ui/theme.h"

#define TERM_SEQ_MAX 96

struct term_style {
    int enabled;
    char on[THEME_NROLES][TERM_SEQ_MAX];
    char off[TERM_SEQ_MAX];
};

void term_style_init(struct term_style *st, int fd, const char *mode, const struct theme *theme);

/* Whether output to fd should be coloured under mode (the rule above,
 * without terminfo): the console (tui.h) asks it too. */
int term_colour_wanted(int fd, const char *mode);

static inline const char *term_on(const struct term_style *st, enum theme_role r)
{
    return st->enabled ? st->on[r] : "";
}

static inline const char *term_off(const struct term_style *st)
{
    return st->enabled ? st->off : "";
}

#endif
