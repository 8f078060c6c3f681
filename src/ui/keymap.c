/* keymap.c - see keymap.h. */
#include "ui/keymap.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/utf8.h"

static const struct {
    const char *name, *keys, *help;
    int confirm;
} actions[KA_COUNT] = {
#define KEYMAP_ROW(id, name, keys, help, confirm) [id] = {name, keys, help, confirm},
    KEYMAP_ACTIONS(KEYMAP_ROW)
#undef KEYMAP_ROW
};

static const struct {
    const char *name;
    int key;
} named_keys[] = {
    {"enter", KEYMAP_ENTER}, {"esc", KEYMAP_ESC},     {"tab", KEYMAP_TAB},
    {"space", ' '},          {"backspace", KEYMAP_BACKSPACE},
    {"up", KEYMAP_UP},       {"down", KEYMAP_DOWN},   {"left", KEYMAP_LEFT},
    {"right", KEYMAP_RIGHT}, {"pgup", KEYMAP_PGUP},   {"pgdn", KEYMAP_PGDN},
    {"home", KEYMAP_HOME},   {"end", KEYMAP_END},
};

#define NNAMED (sizeof(named_keys) / sizeof(named_keys[0]))

const char *keymap_action_name(enum keymap_action a)
{
    return actions[a].name;
}

const char *keymap_action_help(enum keymap_action a)
{
    return actions[a].help;
}

int keymap_action_confirms(enum keymap_action a)
{
    return actions[a].confirm;
}

int keymap_action_find(const char *name)
{
    for (int a = 0; a < KA_COUNT; a++)
        if (strcmp(actions[a].name, name) == 0)
            return a;
    return -1;
}

/* The code point of a one-character UTF-8 string, or -1. */
static int one_char(const char *s)
{
    size_t n = strlen(s), len;
    const unsigned char *u = (const unsigned char *)s;
    int cp;

    if (n == 0 || !(len = utf8_char_len(u, u + n)) || len != n)
        return -1;
    if (len == 1)
        return u[0] >= 0x20 && u[0] < 0x7f ? u[0] : -1;
    cp = u[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++)
        cp = (cp << 6) | (u[i] & 0x3f);
    return cp;
}

int keymap_parse_key(const char *name, int *key)
{
    int c;

    for (size_t i = 0; i < NNAMED; i++)
        if (strcasecmp(name, named_keys[i].name) == 0) {
            *key = named_keys[i].key;
            return 0;
        }
    if ((name[0] == 'C' || name[0] == 'c') && name[1] == '-' && name[2] && !name[3]) {
        c = name[2] | 0x20;
        if (c < 'a' || c > 'z')
            return -1;
        *key = KEYMAP_CTRL(c);
        return 0;
    }
    if ((c = one_char(name)) < 0)
        return -1;
    *key = c;
    return 0;
}

void keymap_key_name(int key, char *buf, size_t size)
{
    for (size_t i = 0; i < NNAMED; i++)
        if (named_keys[i].key == key) {
            snprintf(buf, size, "%s", named_keys[i].name);
            return;
        }
    if (key >= 1 && key <= 26) {
        snprintf(buf, size, "C-%c", 'a' + key - 1);
    } else if (key < 0x80) {
        snprintf(buf, size, "%c", key);
    } else if (key < 0x800) {
        snprintf(buf, size, "%c%c", 0xc0 | (key >> 6), 0x80 | (key & 0x3f));
    } else if (key < 0x10000) {
        snprintf(buf, size, "%c%c%c", 0xe0 | (key >> 12), 0x80 | ((key >> 6) & 0x3f),
                 0x80 | (key & 0x3f));
    } else if (key < 0x110000) {
        snprintf(buf, size, "%c%c%c%c", 0xf0 | (key >> 18), 0x80 | ((key >> 12) & 0x3f),
                 0x80 | ((key >> 6) & 0x3f), 0x80 | (key & 0x3f));
    } else {
        snprintf(buf, size, "?");
    }
}

/* Parses "a b" or "a,b" into keys; -1 with the bad word in `bad`. */
static int parse_keys(const char *text, int *keys, int *n, char *bad, size_t badsize)
{
    char copy[256], *save = NULL;

    *n = 0;
    snprintf(copy, sizeof(copy), "%s", text);
    for (char *w = strtok_r(copy, " ,", &save); w; w = strtok_r(NULL, " ,", &save)) {
        if (*n == KEYMAP_KEYS_MAX) {
            snprintf(bad, badsize, "more than %d keys", KEYMAP_KEYS_MAX);
            return -1;
        }
        if (keymap_parse_key(w, &keys[*n]) < 0) {
            snprintf(bad, badsize, "\"%.40s\" is not a key (one character, C-x, enter, esc, tab, "
                     "space, backspace, up, down, left, right, pgup, pgdn, home, end)", w);
            return -1;
        }
        for (int i = 0; i < *n; i++)
            if (keys[i] == keys[*n])
                (*n)--;
        (*n)++;
    }
    return 0;
}

void keymap_default(struct keymap *km)
{
    char bad[160];

    memset(km, 0, sizeof(*km));
    for (int a = 0; a < KA_COUNT; a++)
        parse_keys(actions[a].keys, km->keys[a], &km->nkeys[a], bad, sizeof(bad));
}

int keymap_action(const struct keymap *km, int key)
{
    for (int a = 0; a < KA_COUNT; a++)
        for (int i = 0; i < km->nkeys[a]; i++)
            if (km->keys[a][i] == key)
                return a;
    return -1;
}

static void take_key(struct keymap *km, int key, int keep)
{
    for (int a = 0; a < KA_COUNT; a++) {
        if (a == keep)
            continue;
        for (int i = 0; i < km->nkeys[a]; i++)
            if (km->keys[a][i] == key) {
                memmove(&km->keys[a][i], &km->keys[a][i + 1],
                        (size_t)(km->nkeys[a] - i - 1) * sizeof(int));
                km->nkeys[a]--;
                i--;
            }
    }
}

static void all_actions(char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (int a = 0; a < KA_COUNT && len < size; a++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", a ? " " : "", actions[a].name);
}

/* One "ACTION=KEYS" word into km; `given` marks the keys bound so far. */
static int bind_one(struct keymap *km, char *word, int *given_by, const char *origin,
                    struct choir_error *err)
{
    char *eq = strchr(word, '='), bad[200], names[400];
    int a, keys[KEYMAP_KEYS_MAX], n;

    if (!eq) {
        error_set(err, CHOIR_EXIT_INPUT, "%s: \"%.60s\" is not ACTION=KEY[,KEY...]", origin, word);
        return -1;
    }
    *eq = '\0';
    if ((a = keymap_action_find(word)) < 0) {
        all_actions(names, sizeof(names));
        error_set(err, CHOIR_EXIT_INPUT, "%s: unknown action \"%.40s\" (actions: %s)", origin,
                  word, names);
        return -1;
    }
    if (parse_keys(eq + 1, keys, &n, bad, sizeof(bad)) < 0) {
        error_set(err, CHOIR_EXIT_INPUT, "%s: %s: %s", origin, word, bad);
        return -1;
    }
    if (n == 0) {
        error_set(err, CHOIR_EXIT_INPUT, "%s: %s: no key given", origin, word);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char kn[16];

        keymap_key_name(keys[i], kn, sizeof(kn));
        for (int b = 0; b < KA_COUNT; b++)
            if (b != a && given_by[b]) {
                for (int k = 0; k < km->nkeys[b]; k++)
                    if (km->keys[b][k] == keys[i]) {
                        error_set(err, CHOIR_EXIT_INPUT, "%s: key %s is given to both %s and %s",
                                  origin, kn, actions[b].name, word);
                        return -1;
                    }
            }
        take_key(km, keys[i], a);
    }
    memcpy(km->keys[a], keys, sizeof(keys));
    km->nkeys[a] = n;
    given_by[a] = 1;
    return 0;
}

int keymap_bind(struct keymap *km, const char *spec, const char *origin, struct choir_error *err)
{
    struct keymap work = *km;
    int given_by[KA_COUNT] = {0};
    char copy[1024], *save = NULL;

    if (strlen(spec) >= sizeof(copy)) {
        error_set(err, CHOIR_EXIT_INPUT, "%s: longer than %zu bytes", origin, sizeof(copy) - 1);
        return -1;
    }
    snprintf(copy, sizeof(copy), "%s", spec);
    for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
        if (bind_one(&work, w, given_by, origin, err) < 0)
            return -1;
    for (int a = 0; a < KA_COUNT; a++)
        if (work.nkeys[a] == 0) {
            error_set(err, CHOIR_EXIT_INPUT, "%s: %s would have no key left: give it one (%s=KEY)",
                      origin, actions[a].name, actions[a].name);
            return -1;
        }
    *km = work;
    return 0;
}

void keymap_keys_text(const struct keymap *km, enum keymap_action a, char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (int i = 0; i < km->nkeys[a] && len < size; i++) {
        char kn[16];

        keymap_key_name(km->keys[a][i], kn, sizeof(kn));
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? " " : "", kn);
    }
}

void keymap_hints(const struct keymap *km, const enum keymap_action *acts, size_t n, char *buf,
                  size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && len < size; i++) {
        char kn[16];

        if (km->nkeys[acts[i]] == 0)
            continue;
        keymap_key_name(km->keys[acts[i]][0], kn, sizeof(kn));
        if (strcmp(kn, actions[acts[i]].name) == 0)
            len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? "  " : "", kn);
        else
            len += (size_t)snprintf(buf + len, size - len, "%s%s:%s", len ? "  " : "", kn,
                                    actions[acts[i]].name);
    }
}

void keymap_table_markdown(FILE *out)
{
    struct keymap km;
    char keys[64];

    keymap_default(&km);
    fputs("| keys | action | what it does |\n|---|---|---|\n", out);
    for (int a = 0; a < KA_COUNT; a++) {
        keymap_keys_text(&km, (enum keymap_action)a, keys, sizeof(keys));
        fprintf(out, "| `%s` | %s | %s%s |\n", keys, keymap_action_name((enum keymap_action)a),
                keymap_action_help((enum keymap_action)a),
                keymap_action_confirms((enum keymap_action)a) ? " (asks first)" : "");
    }
}
