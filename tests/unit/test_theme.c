/* test_theme.c - theme files: looks, errors with file:line, the shipped
 * themes, and the theme path. */
#include "cmocka_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/theme.h"

static int parse(struct theme *t, const char *text, struct choir_error *err)
{
    theme_default(t);
    return theme_parse(t, text, strlen(text), "x.theme", err);
}

static void test_looks(void **state)
{
    struct choir_error err = {0};
    struct theme t;

    (void)state;
    assert_int_equal(parse(&t, "# comment\nnode-failed = bold underline red\n"
                               "footer = black on cyan\ncursor = color250 on color17\n"
                               "title = normal\n", &err), 0);
    assert_int_equal(t.look[THEME_NODE_FAILED].attrs, THEME_BOLD | THEME_UNDERLINE);
    assert_int_equal(t.look[THEME_NODE_FAILED].fg, 1);
    assert_int_equal(t.look[THEME_NODE_FAILED].bg, THEME_COLOR_DEFAULT);
    assert_int_equal(t.look[THEME_FOOTER].fg, 0);
    assert_int_equal(t.look[THEME_FOOTER].bg, 6);
    assert_int_equal(t.look[THEME_CURSOR].fg, 250);
    assert_int_equal(t.look[THEME_CURSOR].bg, 17);
    assert_int_equal(t.look[THEME_TITLE].attrs, 0);
    /* roles the file leaves out keep the default look */
    assert_int_equal(t.look[THEME_NODE_OK].fg, 2);
}

static void test_errors_name_file_and_line(void **state)
{
    struct choir_error err = {0};
    struct theme t;

    (void)state;
    assert_int_equal(parse(&t, "title = bold\nnode-fail = red\n", &err), -1);
    assert_string_equal(err.msg, "x.theme:2: unknown role \"node-fail\"");
    assert_int_equal(err.code, CHOIR_EXIT_INPUT);
    assert_int_equal(parse(&t, "title = bold purple\n", &err), -1);
    assert_non_null(strstr(err.msg, "x.theme:1: title: \"purple\" is not an attribute or colour"));
    assert_int_equal(parse(&t, "title = red on\n", &err), -1);
    assert_string_equal(err.msg, "x.theme:1: title: \"on\" must be followed by a background colour");
    assert_int_equal(parse(&t, "title = color256\n", &err), -1);
    assert_int_equal(parse(&t, "title = red green\n", &err), -1);
    assert_int_equal(parse(&t, "title bold\n", &err), -1);
    assert_string_equal(err.msg, "x.theme:1: expected \"key = value\"");
}

static void test_failed_parse_changes_nothing(void **state)
{
    struct choir_error err = {0};
    struct theme t;

    (void)state;
    theme_default(&t);
    assert_int_equal(theme_parse(&t, "title = red\nbogus = red\n", 23, "x.theme", &err), -1);
    assert_int_equal(t.look[THEME_TITLE].fg, THEME_COLOR_DEFAULT);
}

static void test_shipped_themes_load(void **state)
{
    static const char *const names[] = {"default", "mono", "high-contrast", "dark256"};
    struct choir_error err = {0};
    struct theme t;

    (void)state;
    setenv("CHOIR_THEME_DIR", CHOIR_SOURCE_DIR "/themes", 1);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (theme_load(&t, names[i], &err) < 0)
            fail_msg("%s: %s", names[i], err.msg);
        assert_string_equal(t.name, names[i]);
    }
    assert_int_equal(theme_load(&t, "mono", &err), 0);
    for (int r = 0; r < THEME_NROLES; r++) {
        assert_int_equal(t.look[r].fg, THEME_COLOR_DEFAULT);
        assert_int_equal(t.look[r].bg, THEME_COLOR_DEFAULT);
    }
    unsetenv("CHOIR_THEME_DIR");
}

static void test_names_and_paths(void **state)
{
    struct choir_error err = {0};
    struct theme t;

    (void)state;
    setenv("CHOIR_THEME_DIR", "/nonexistent", 1);
    assert_int_equal(theme_load(&t, "no-such-theme", &err), -1);
    assert_non_null(strstr(err.msg, "theme \"no-such-theme\" not found (looked for no-such-theme.theme in /nonexistent"));
    assert_int_equal(theme_load(&t, "../etc/passwd", &err), -1);
    assert_int_equal(theme_load(&t, "Bad Name", &err), -1);
    assert_non_null(strstr(err.msg, "a theme name is a-z, 0-9, - and _"));
    assert_int_equal(theme_load(&t, CHOIR_SOURCE_DIR "/themes/mono.theme", &err), 0);
    assert_int_equal(t.look[THEME_NODE_OK].fg, THEME_COLOR_DEFAULT);
    assert_int_equal(theme_load(&t, "/nonexistent/x.theme", &err), -1);
    assert_string_equal(err.msg, "/nonexistent/x.theme: No such file or directory");
    unsetenv("CHOIR_THEME_DIR");
}

static void test_role_names_round_trip(void **state)
{
    (void)state;
    for (int r = 0; r < THEME_NROLES; r++)
        assert_int_equal(theme_role_find(theme_role_name((enum theme_role)r)), r);
    assert_int_equal(theme_role_find("nope"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_looks),
        cmocka_unit_test(test_errors_name_file_and_line),
        cmocka_unit_test(test_failed_parse_changes_nothing),
        cmocka_unit_test(test_shipped_themes_load),
        cmocka_unit_test(test_names_and_paths),
        cmocka_unit_test(test_role_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
