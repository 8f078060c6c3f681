/* theme.h - semantic colour roles and theme files.
 *
 * Contract: a theme maps every role (node-ok, node-failed, title, ...) to a
 * look: attributes (bold, dim, underline, reverse, standout, blink) and a
 * foreground and background colour (default, black, red, green, yellow,
 * blue, magenta, cyan, white, or color0..color255).  Theme files use the
 * shared `key = value` format, one role per line, e.g.
 *     node-failed = bold red
 *     cursor      = reverse
 *     footer      = black on cyan
 * Roles a file leaves out keep the built-in default look; an unknown role,
 * word or colour is an error "FILE:LINE: reason".  theme_load finds a theme
 * by name in the theme path (theme_dirs) or takes a path containing '/'.
 * The name "default" always works: without a file it is built in. */
#ifndef CHOIR_THEME_H
#define CHOIR_THEME_H

#include <stddef.h>

#include "core/error.h"

#define THEME_ROLES(X)                 \
    X(THEME_PLAIN, "plain")            \
    X(THEME_TITLE, "title")            \
    X(THEME_COUNT, "count")            \
    X(THEME_RULE, "rule")              \
    X(THEME_GROUP, "group")            \
    X(THEME_NODE, "node")              \
    X(THEME_ERROR, "error")            \
    X(THEME_NODE_OK, "node-ok")        \
    X(THEME_NODE_FAILED, "node-failed") \
    X(THEME_NODE_RUNNING, "node-running") \
    X(THEME_NODE_WAITING, "node-waiting") \
    X(THEME_NODE_SKIPPED, "node-skipped") \
    X(THEME_LOCKED, "locked")          \
    X(THEME_CURSOR, "cursor")          \
    X(THEME_FOOTER, "footer")          \
    X(THEME_LOG_ERROR, "log-error")    \
    X(THEME_LOG_WARNING, "log-warning") \
    X(THEME_FLASH, "flash")            \
    X(THEME_PANE_TITLE, "pane-title")  \
    X(THEME_MATCH, "match")            \
    X(THEME_PROMPT, "prompt")

enum theme_role {
#define THEME_ROLE_ENUM(id, name) id,
    THEME_ROLES(THEME_ROLE_ENUM)
#undef THEME_ROLE_ENUM
    THEME_NROLES
};

enum theme_attr {
    THEME_BOLD = 1 << 0,
    THEME_DIM = 1 << 1,
    THEME_UNDERLINE = 1 << 2,
    THEME_REVERSE = 1 << 3,
    THEME_STANDOUT = 1 << 4,
    THEME_BLINK = 1 << 5,
};

#define THEME_COLOR_DEFAULT (-1)

struct theme_look {
    unsigned attrs;            /* enum theme_attr bits */
    int fg, bg;                /* 0..255 or THEME_COLOR_DEFAULT */
};

struct theme {
    char name[64];
    struct theme_look look[THEME_NROLES];
};

/* The built-in default theme. */
void theme_default(struct theme *t);

/* Parses theme text over the defaults; `origin` names it in errors. */
int theme_parse(struct theme *t, const char *buf, size_t len, const char *origin,
                struct choir_error *err);

/* Loads NAME (searched in the theme path) or a path; see the contract. */
int theme_load(struct theme *t, const char *name, struct choir_error *err);

/* The role's name, and the role of a name (-1 if unknown). */
const char *theme_role_name(enum theme_role r);
int theme_role_find(const char *name);

#endif
