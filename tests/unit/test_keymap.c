/* test_keymap.c - the console's keys (src/ui/keymap.h): the defaults of
 * the one table, key names both ways, rebinding with tui.keys and its
 * errors, and the footer hints generated from the table. */
#include "cmocka_setup.h"

#include <string.h>

#include "ui/keymap.h"

static int key(const char *name)
{
    int k = -1;

    if (keymap_parse_key(name, &k) < 0)
        fail_msg("\"%s\" should be a key", name);
    return k;
}

static void test_defaults(void **state)
{
    struct keymap km;

    (void)state;
    keymap_default(&km);
    assert_int_equal(keymap_action(&km, 'p'), KA_PAUSE);
    assert_int_equal(keymap_action(&km, 'c'), KA_CONTINUE);
    assert_int_equal(keymap_action(&km, 'A'), KA_ABORT);
    assert_int_equal(keymap_action(&km, 'a'), -1);
    assert_int_equal(keymap_action(&km, 'R'), KA_RETRY);
    assert_int_equal(keymap_action(&km, 's'), KA_SKIP);
    assert_int_equal(keymap_action(&km, 'U'), KA_UNLOCK);
    assert_int_equal(keymap_action(&km, 'L'), KA_LOG);
    assert_int_equal(keymap_action(&km, 'q'), KA_QUIT);
    assert_int_equal(keymap_action(&km, KEYMAP_CTRL('c')), KA_QUIT);
    assert_int_equal(keymap_action(&km, KEYMAP_UP), KA_UP);
    assert_int_equal(keymap_action(&km, 'k'), KA_UP);
    assert_int_equal(keymap_action(&km, 'j'), KA_DOWN);
    assert_int_equal(keymap_action(&km, 'g'), KA_TOP);
    assert_int_equal(keymap_action(&km, 'G'), KA_BOTTOM);
    assert_int_equal(keymap_action(&km, KEYMAP_PGDN), KA_PAGE_DOWN);
    assert_int_equal(keymap_action(&km, KEYMAP_ENTER), KA_OPEN);
    assert_int_equal(keymap_action(&km, KEYMAP_ESC), KA_BACK);
    assert_int_equal(keymap_action(&km, KEYMAP_TAB), KA_PANE);
    assert_int_equal(keymap_action(&km, '/'), KA_FILTER);
    assert_int_equal(keymap_action(&km, '?'), KA_HELP);
    /* destructive actions ask first; moving does not */
    assert_true(keymap_action_confirms(KA_ABORT));
    assert_true(keymap_action_confirms(KA_RETRY));
    assert_true(keymap_action_confirms(KA_SKIP));
    assert_true(keymap_action_confirms(KA_UNLOCK));
    assert_true(keymap_action_confirms(KA_QUIT));
    assert_false(keymap_action_confirms(KA_PAUSE));
    assert_false(keymap_action_confirms(KA_DOWN));
    /* no key is bound twice by default */
    for (int a = 0; a < KA_COUNT; a++)
        for (int i = 0; i < km.nkeys[a]; i++)
            assert_int_equal(keymap_action(&km, km.keys[a][i]), a);
}

static void test_key_names(void **state)
{
    static const char *const names[] = {"enter", "esc", "tab", "space", "backspace", "up", "down",
                                        "left", "right", "pgup", "pgdn", "home", "end", "C-c",
                                        "p", "A", "/", "?", "é"};
    char buf[16];
    int k;

    (void)state;
    assert_int_equal(key("p"), 'p');
    assert_int_equal(key("A"), 'A');
    assert_int_equal(key("C-c"), 3);
    assert_int_equal(key("c-X"), 24);
    assert_int_equal(key("Enter"), KEYMAP_ENTER);
    assert_int_equal(key("ESC"), KEYMAP_ESC);
    assert_int_equal(key("é"), 0xe9);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        keymap_key_name(key(names[i]), buf, sizeof(buf));
        assert_string_equal(buf, names[i]);
    }
    assert_int_equal(keymap_parse_key("", &k), -1);
    assert_int_equal(keymap_parse_key("pp", &k), -1);
    assert_int_equal(keymap_parse_key("C-1", &k), -1);
    assert_int_equal(keymap_parse_key("f13", &k), -1);
    assert_int_equal(keymap_parse_key("\x01", &k), -1);
    assert_int_equal(keymap_parse_key("\xff", &k), -1);
}

static void test_rebinding(void **state)
{
    struct keymap km;
    struct choir_error err = {0};

    (void)state;
    keymap_default(&km);
    assert_int_equal(keymap_bind(&km, "pause=P abort=X,C-x", "tui.keys (x.conf:3)", &err), 0);
    assert_int_equal(keymap_action(&km, 'P'), KA_PAUSE);
    assert_int_equal(keymap_action(&km, 'p'), -1);
    assert_int_equal(keymap_action(&km, 'X'), KA_ABORT);
    assert_int_equal(keymap_action(&km, KEYMAP_CTRL('x')), KA_ABORT);
    assert_int_equal(keymap_action(&km, 'A'), -1);
    /* a key bound here leaves the action that had it by default */
    assert_int_equal(keymap_bind(&km, "down=j,down,space up=k", "o", &err), 0);
    assert_int_equal(keymap_action(&km, ' '), KA_DOWN);
    assert_int_equal(keymap_bind(&km, "log=p pause=P", "o", &err), 0);
    assert_int_equal(keymap_action(&km, 'p'), KA_LOG);
    assert_int_equal(keymap_action(&km, 'L'), -1);
    /* taking q from quit is fine while C-c remains */
    assert_int_equal(keymap_bind(&km, "help=q", "o", &err), 0);
    assert_int_equal(keymap_action(&km, 'q'), KA_HELP);
    assert_int_equal(keymap_action(&km, KEYMAP_CTRL('c')), KA_QUIT);
}

static void bind_fails(const char *spec, const char *why)
{
    struct keymap km, before;
    struct choir_error err = {0};

    keymap_default(&km);
    before = km;
    assert_int_equal(keymap_bind(&km, spec, "tui.keys (x.conf:3)", &err), -1);
    if (!strstr(err.msg, why) || strncmp(err.msg, "tui.keys (x.conf:3): ", 21) != 0)
        fail_msg("\"%s\": \"%s\" does not say \"%s\"", spec, err.msg, why);
    assert_int_equal(err.code, CHOIR_EXIT_INPUT);
    assert_memory_equal(&km, &before, sizeof(km));
}

static void test_rebinding_errors(void **state)
{
    (void)state;
    bind_fails("pause=P nope=x", "unknown action \"nope\" (actions: up down");
    bind_fails("pause", "\"pause\" is not ACTION=KEY[,KEY...]");
    bind_fails("pause=", "pause: no key given");
    bind_fails("pause=F13", "pause: \"F13\" is not a key");
    bind_fails("pause=P abort=P", "key P is given to both pause and abort");
    bind_fails("log=p", "pause would have no key left: give it one (pause=KEY)");
    bind_fails("abort=q,C-c", "quit would have no key left");
}

static void test_hints_come_from_the_table(void **state)
{
    static const enum keymap_action acts[] = {KA_HELP, KA_PAUSE, KA_UP, KA_OPEN};
    struct keymap km;
    struct choir_error err = {0};
    char buf[256], keys[64];

    (void)state;
    keymap_default(&km);
    keymap_hints(&km, acts, 4, buf, sizeof(buf));
    assert_string_equal(buf, "?:help  p:pause  up  enter:open");
    assert_int_equal(keymap_bind(&km, "pause=P,C-p", "o", &err), 0);
    keymap_hints(&km, acts, 2, buf, sizeof(buf));
    assert_string_equal(buf, "?:help  P:pause");
    keymap_keys_text(&km, KA_PAUSE, keys, sizeof(keys));
    assert_string_equal(keys, "P C-p");
    keymap_keys_text(&km, KA_QUIT, keys, sizeof(keys));
    assert_string_equal(keys, "q C-c");
    assert_string_equal(keymap_action_name(KA_PAGE_DOWN), "page-down");
    assert_int_equal(keymap_action_find("page-down"), KA_PAGE_DOWN);
    assert_int_equal(keymap_action_find("nope"), -1);
    assert_non_null(strstr(keymap_action_help(KA_ABORT), "resumable"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_key_names),
        cmocka_unit_test(test_rebinding),
        cmocka_unit_test(test_rebinding_errors),
        cmocka_unit_test(test_hints_come_from_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
