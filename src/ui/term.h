/* term.h - styling for line-oriented output (plan text, plain logs).
 *
 * Contract: term_style_init decides once whether output to `fd` gets
 * colour: mode "never" -> no; "always" -> yes; "auto" -> only when fd is a
 * terminal, NO_COLOR is unset or empty, and terminfo knows $TERM.  The
 * escape sequences come from terminfo (bold, setaf, sgr0), never hard-coded,
 * and each semantic role maps to attributes in one table (term.c).  With
 * colour off every sequence is "". */
#ifndef CHOIR_TERM_H
#define CHOIR_TERM_H

#define TERM_ROLES(X)        \
    X(TERM_PLAIN, "plain")   \
    X(TERM_TITLE, "title")   \
    X(TERM_COUNT, "count")   \
    X(TERM_RULE, "rule")     \
    X(TERM_GROUP, "group")   \
    X(TERM_NODE, "node")     \
    X(TERM_ERROR, "error")

enum term_role {
#define TERM_ROLE_ENUM(id, name) id,
    TERM_ROLES(TERM_ROLE_ENUM)
#undef TERM_ROLE_ENUM
    TERM_NROLES
};

#define TERM_SEQ_MAX 64

struct term_style {
    int enabled;
    char on[TERM_NROLES][TERM_SEQ_MAX];
    char off[TERM_SEQ_MAX];
};

void term_style_init(struct term_style *st, int fd, const char *mode);

static inline const char *term_on(const struct term_style *st, enum term_role r)
{
    return st->enabled ? st->on[r] : "";
}

static inline const char *term_off(const struct term_style *st)
{
    return st->enabled ? st->off : "";
}

#endif
