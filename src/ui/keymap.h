/* keymap.h - the console's keys: one table of actions (name, default keys,
 * help, whether it asks first), the key names, and rebinding from the
 * configuration (tui.keys).  No curses: keys are numbers of their own
 * (KEYMAP_*), which the terminal layer maps curses keys to.
 *
 * Contract:
 * - KEYMAP_ACTIONS is the one table; the footer hints, the help overlay
 *   and the docs' key table come from it.
 * - Key names: one character ("p", "A", "/", "?"), "C-x" (Ctrl and a
 *   letter), and enter, esc, tab, space, backspace, up, down, left, right,
 *   pgup, pgdn, home, end (any case).  keymap_key_name gives the canonical
 *   name back.
 * - keymap_bind applies "ACTION=KEY[,KEY...] ..." (blank-separated) over
 *   the current bindings: the action gets exactly those keys, and a key it
 *   takes is taken from any other action that had it by default.  Unknown
 *   actions or keys, a key given to two actions, and an action left
 *   without any key are errors naming the word, with `origin` first (e.g.
 *   "tui.keys (x.conf:3)"); on error nothing changes.
 * - keymap_action: the action of a key, or -1. */
#ifndef CHOIR_UI_KEYMAP_H
#define CHOIR_UI_KEYMAP_H

#include <stddef.h>
#include <stdio.h>

#include "core/error.h"

/* X(id, name, default keys, help, asks first) */
#define KEYMAP_ACTIONS(X)                                                                    \
    X(KA_UP, "up", "up k", "move up", 0)                                                     \
    X(KA_DOWN, "down", "down j", "move down", 0)                                             \
    X(KA_TOP, "top", "g home", "go to the top", 0)                                           \
    X(KA_BOTTOM, "bottom", "G end", "go to the bottom", 0)                                   \
    X(KA_PAGE_UP, "page-up", "pgup", "one page up", 0)                                       \
    X(KA_PAGE_DOWN, "page-down", "pgdn", "one page down", 0)                                 \
    X(KA_OPEN, "open", "enter", "open the node's report; fold or unfold a group", 0)        \
    X(KA_BACK, "back", "esc", "back to the previous view", 0)                                \
    X(KA_PANE, "pane", "tab", "switch between the tree and the node pane", 0)                \
    X(KA_FILTER, "filter", "/", "filter nodes by name or state (failed, running, ok, locked); search a report", 0) \
    X(KA_NEXT, "next", "n", "next search match", 0)                                          \
    X(KA_FOLLOW, "follow", "f", "follow the nodes that run (any move stops it)", 0)          \
    X(KA_HELP, "help", "?", "this help", 0)                                                  \
    X(KA_PAUSE, "pause", "p", "pause: runs in flight finish, no new step starts", 0)         \
    X(KA_CONTINUE, "continue", "c", "continue a paused job", 0)                              \
    X(KA_ABORT, "abort", "A", "abort the job: runs in flight finish, it stays resumable", 1)  \
    X(KA_RETRY, "retry", "R", "run the failed nodes again", 1)                               \
    X(KA_SKIP, "skip", "s", "skip the selected node (it must be waiting)", 1)                \
    X(KA_UNLOCK, "unlock", "U", "release the Puppet locks the job holds", 1)                 \
    X(KA_LOG, "log", "L", "the job log", 0)                                                  \
    X(KA_QUIT, "quit", "q C-c", "close a view; leave (a running job is paused, resumable)", 1)

enum keymap_action {
#define KEYMAP_ENUM(id, name, keys, help, confirm) id,
    KEYMAP_ACTIONS(KEYMAP_ENUM)
#undef KEYMAP_ENUM
    KA_COUNT
};

/* Key numbers: characters are their Unicode code points (Ctrl-x is 1..26,
 * enter 13, tab 9, esc 27, backspace 127); the others are above Unicode. */
enum {
    KEYMAP_ENTER = 13,
    KEYMAP_TAB = 9,
    KEYMAP_ESC = 27,
    KEYMAP_BACKSPACE = 127,
    KEYMAP_UP = 0x110000,
    KEYMAP_DOWN,
    KEYMAP_LEFT,
    KEYMAP_RIGHT,
    KEYMAP_PGUP,
    KEYMAP_PGDN,
    KEYMAP_HOME,
    KEYMAP_END,
};

#define KEYMAP_CTRL(c) ((c) & 0x1f)
#define KEYMAP_KEYS_MAX 4

struct keymap {
    int keys[KA_COUNT][KEYMAP_KEYS_MAX];
    int nkeys[KA_COUNT];
};

void keymap_default(struct keymap *km);
int keymap_bind(struct keymap *km, const char *spec, const char *origin, struct choir_error *err);
int keymap_action(const struct keymap *km, int key);

/* 0 and *key set, or -1. */
int keymap_parse_key(const char *name, int *key);
void keymap_key_name(int key, char *buf, size_t size);
/* The action's keys, blank-separated ("up k"); "" when it has none. */
void keymap_keys_text(const struct keymap *km, enum keymap_action a, char *buf, size_t size);

const char *keymap_action_name(enum keymap_action a);
const char *keymap_action_help(enum keymap_action a);
int keymap_action_confirms(enum keymap_action a);
int keymap_action_find(const char *name);

/* "KEY:name  KEY:name ..." for the actions given, the first key of each
 * (just "name" when the key's name is the action's); actions without a
 * key are left out. */
/* The default keys as a Markdown table (| keys | action | what it does |),
 * one row per action: the README's key table is this output. */
void keymap_table_markdown(FILE *out);
void keymap_hints(const struct keymap *km, const enum keymap_action *acts, size_t n, char *buf,
                  size_t size);

#endif
