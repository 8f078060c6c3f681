/* theme.c - see theme.h.  The theme path is, in order: $CHOIR_THEME_DIR,
 * $XDG_CONFIG_HOME/choir/themes (or ~/.config/choir/themes), the installed
 * themes directory, and the source tree's themes/ (for running from a
 * build directory). */
#include "ui/theme.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "core/kvfile.h"

#define THEME_MAX_BYTES (64 * 1024)

static const char *const theme_role_names[THEME_NROLES] = {
#define THEME_ROLE_NAME(id, name) [id] = name,
    THEME_ROLES(THEME_ROLE_NAME)
#undef THEME_ROLE_NAME
};

static const struct {
    const char *word;
    unsigned attr;
} theme_attr_words[] = {
    {"bold", THEME_BOLD},           {"dim", THEME_DIM},     {"underline", THEME_UNDERLINE},
    {"reverse", THEME_REVERSE},     {"standout", THEME_STANDOUT}, {"blink", THEME_BLINK},
    {"normal", 0},
};

static const char *const theme_colour_names[] = {"black", "red", "green", "yellow",
                                                 "blue", "magenta", "cyan", "white"};

const char *theme_role_name(enum theme_role r)
{
    return theme_role_names[r];
}

int theme_role_find(const char *name)
{
    for (int r = 0; r < THEME_NROLES; r++)
        if (strcmp(theme_role_names[r], name) == 0)
            return r;
    return -1;
}

void theme_default(struct theme *t)
{
    static const struct theme_look looks[THEME_NROLES] = {
        [THEME_PLAIN] = {0, -1, -1},          [THEME_TITLE] = {THEME_BOLD, -1, -1},
        [THEME_COUNT] = {THEME_BOLD, -1, -1}, [THEME_RULE] = {0, 2, -1},
        [THEME_GROUP] = {THEME_BOLD, -1, -1}, [THEME_NODE] = {THEME_BOLD, -1, -1},
        [THEME_ERROR] = {THEME_BOLD, 1, -1},  [THEME_NODE_OK] = {0, 2, -1},
        [THEME_NODE_FAILED] = {THEME_BOLD, 1, -1}, [THEME_NODE_RUNNING] = {THEME_BOLD, 3, -1},
        [THEME_NODE_WAITING] = {0, -1, -1},   [THEME_NODE_SKIPPED] = {THEME_DIM, -1, -1},
        [THEME_LOCKED] = {0, 5, -1},          [THEME_CURSOR] = {THEME_REVERSE, -1, -1},
        [THEME_FOOTER] = {THEME_REVERSE, -1, -1}, [THEME_LOG_ERROR] = {0, 1, -1},
        [THEME_LOG_WARNING] = {0, 3, -1},     [THEME_FLASH] = {0, 0, 3},
        [THEME_PANE_TITLE] = {THEME_BOLD | THEME_UNDERLINE, -1, -1},
        [THEME_MATCH] = {0, 0, 3},            [THEME_PROMPT] = {THEME_BOLD, 3, -1},
    };

    snprintf(t->name, sizeof(t->name), "default");
    memcpy(t->look, looks, sizeof(looks));
}

/* "red", "default", "color196" -> 1, -1, 196; -2 when not a colour. */
static int theme_colour(const char *word)
{
    char *end;
    long n;

    if (strcmp(word, "default") == 0)
        return THEME_COLOR_DEFAULT;
    for (int i = 0; i < 8; i++)
        if (strcmp(word, theme_colour_names[i]) == 0)
            return i;
    if (strncmp(word, "color", 5) != 0 || word[5] < '0' || word[5] > '9')
        return -2;
    n = strtol(word + 5, &end, 10);
    return *end || n > 255 ? -2 : (int)n;
}

static int theme_attr_word(const char *word, unsigned *attrs)
{
    for (size_t i = 0; i < sizeof(theme_attr_words) / sizeof(theme_attr_words[0]); i++) {
        if (strcmp(word, theme_attr_words[i].word) == 0) {
            *attrs |= theme_attr_words[i].attr;
            return 0;
        }
    }
    return -1;
}

/* Parses "bold red on blue" into a look. */
static int theme_parse_look(const char *value, struct theme_look *look, char *why, size_t n)
{
    char copy[256], *save = NULL;
    int colours = 0, want_bg = 0;

    *look = (struct theme_look){0, THEME_COLOR_DEFAULT, THEME_COLOR_DEFAULT};
    snprintf(copy, sizeof(copy), "%s", value);
    for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        int c = theme_colour(w);

        if (strcmp(w, "on") == 0 && !want_bg) {
            want_bg = 1;
        } else if (c != -2 && want_bg) {
            look->bg = c;
            want_bg = 2;
        } else if (c != -2 && colours++ == 0) {
            look->fg = c;
        } else if (c != -2 || theme_attr_word(w, &look->attrs) < 0) {
            snprintf(why, n, "\"%.40s\" is not an attribute or colour (bold, dim, underline, reverse, "
                     "standout, blink, normal; default, black..white, color0..color255; FG on BG)", w);
            return -1;
        }
    }
    if (want_bg == 1) {
        snprintf(why, n, "\"on\" must be followed by a background colour");
        return -1;
    }
    return 0;
}

struct theme_parser {
    struct theme theme;
    const char *origin;
};

static int theme_pair(void *ctx, const char *key, const char *value, unsigned line,
                      struct choir_error *err)
{
    struct theme_parser *tp = ctx;
    int role = theme_role_find(key);
    char why[400];

    if (role < 0) {
        kvfile_fail(err, tp->origin, line, "unknown role \"%.60s\"", key);
        return -1;
    }
    if (theme_parse_look(value, &tp->theme.look[role], why, sizeof(why)) < 0) {
        kvfile_fail(err, tp->origin, line, "%s: %s", key, why);
        return -1;
    }
    return 0;
}

int theme_parse(struct theme *t, const char *buf, size_t len, const char *origin,
                struct choir_error *err)
{
    struct theme_parser tp = {*t, origin};

    if (len > THEME_MAX_BYTES) {
        kvfile_fail(err, origin, 0, "larger than %d bytes", THEME_MAX_BYTES);
        return -1;
    }
    if (kvfile_parse(buf, len, origin, theme_pair, &tp, err) < 0)
        return -1;
    *t = tp.theme;
    return 0;
}

static int theme_load_file(struct theme *t, const char *path, struct choir_error *err)
{
    char *buf;
    size_t len;
    int e = file_read(path, THEME_MAX_BYTES, &buf, &len), rc;

    if (e) {
        kvfile_fail(err, path, 0, "%s", e == EFBIG ? "theme file too large" : strerror(e));
        return -1;
    }
    rc = theme_parse(t, buf, len, path, err);
    free(buf);
    return rc;
}

/* Fills dirs with the theme path; returns how many. */
static int theme_dirs(char dirs[4][1024])
{
    const char *env = getenv("CHOIR_THEME_DIR"), *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n = 0;

    if (env && *env)
        snprintf(dirs[n++], 1024, "%s", env);
    if (xdg && xdg[0] == '/')
        snprintf(dirs[n++], 1024, "%s/choir/themes", xdg);
    else if (home && *home)
        snprintf(dirs[n++], 1024, "%s/.config/choir/themes", home);
    snprintf(dirs[n++], 1024, "%s", CHOIR_THEME_DIR_INSTALLED);
    snprintf(dirs[n++], 1024, "%s", CHOIR_THEME_DIR_SOURCE);
    return n;
}

static int theme_name_ok(const char *name)
{
    size_t len = strlen(name);

    return len > 0 && len < 64 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-_") == len;
}

int theme_load(struct theme *t, const char *name, struct choir_error *err)
{
    char dirs[4][1024], path[1200];
    int n;

    theme_default(t);
    if (strchr(name, '/'))
        return theme_load_file(t, name, err);
    if (!theme_name_ok(name)) {
        error_set(err, CHOIR_EXIT_INPUT, "theme \"%.80s\": a theme name is a-z, 0-9, - and _", name);
        return -1;
    }
    n = theme_dirs(dirs);
    for (int i = 0; i < n; i++) {
        if (snprintf(path, sizeof(path), "%s/%s.theme", dirs[i], name) >= (int)sizeof(path))
            continue;
        if (access(path, F_OK) == 0) {
            snprintf(t->name, sizeof(t->name), "%s", name);
            return theme_load_file(t, path, err);
        }
    }
    if (strcmp(name, "default") == 0)
        return 0;
    error_set(err, CHOIR_EXIT_INPUT, "theme \"%s\" not found (looked for %s.theme in %s, %s, %s%s%s)",
              name, name, dirs[0], dirs[1], dirs[2], n > 3 ? ", " : "", n > 3 ? dirs[3] : "");
    return -1;
}
