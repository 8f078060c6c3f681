/* test_jscan.c - the streaming JSON reader: walking documents, string
 * decoding, skipping, and every kind of malformed input. */
#include "cmocka_setup.h"

#include <stdio.h>
#include <string.h>

#include "core/jscan.h"

/* Skips the whole text as one value; returns 0 or -1 and the message. */
static int skip_all(const char *text, char *msg, size_t size)
{
    struct jscan js;
    int rc;

    jscan_init(&js, text, strlen(text));
    rc = jscan_skip(&js);
    if (rc == 0)
        rc = jscan_finish(&js);
    jscan_error_message(&js, msg, size);
    jscan_done(&js);
    return rc;
}

static void expect_valid(const char *text)
{
    char msg[256];

    if (skip_all(text, msg, sizeof(msg)) != 0)
        fail_msg("rejected %s: %s", text, msg);
}

static void expect_invalid(const char *text, const char *want)
{
    char msg[256];

    assert_int_equal(skip_all(text, msg, sizeof(msg)), -1);
    assert_string_equal(msg, want);
}

static void test_walk_object(void **state)
{
    const char *text = "{\"a\": [1, \"x\"], \"b\": {\"c\": null}, \"d\": true}";
    const char *key, *s;
    size_t len;
    struct jscan js;

    (void)state;
    jscan_init(&js, text, strlen(text));
    assert_int_equal(jscan_peek(&js), JSCAN_OBJECT);
    assert_int_equal(jscan_object_begin(&js), 0);
    assert_int_equal(jscan_object_next(&js, &key, &len), 1);
    assert_string_equal(key, "a");
    assert_int_equal(jscan_array_begin(&js), 0);
    assert_int_equal(jscan_array_next(&js), 1);
    assert_int_equal(jscan_peek(&js), JSCAN_NUMBER);
    assert_int_equal(jscan_skip(&js), 0);
    assert_int_equal(jscan_array_next(&js), 1);
    assert_int_equal(jscan_string(&js, &s, &len), 0);
    assert_string_equal(s, "x");
    assert_int_equal(jscan_array_next(&js), 0);
    assert_int_equal(jscan_object_next(&js, &key, &len), 1);
    assert_string_equal(key, "b");
    assert_int_equal(jscan_skip(&js), 0);
    assert_int_equal(jscan_object_next(&js, &key, &len), 1);
    assert_int_equal(jscan_peek(&js), JSCAN_BOOLEAN);
    assert_int_equal(jscan_skip(&js), 0);
    assert_int_equal(jscan_object_next(&js, &key, &len), 0);
    assert_int_equal(jscan_finish(&js), 0);
    jscan_done(&js);
}

static void test_string_decoding(void **state)
{
    const char *text = "\"a\\\"b\\\\c\\/d\\n\\u00e9\\u20ac\\ud83d\\ude00 caf\xc3\xa9\"";
    const char *s;
    size_t len;
    struct jscan js;

    (void)state;
    jscan_init(&js, text, strlen(text));
    assert_int_equal(jscan_string(&js, &s, &len), 0);
    assert_string_equal(s, "a\"b\\c/d\n\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 caf\xc3\xa9");
    assert_int_equal(len, strlen(s));
    jscan_done(&js);
}

static void test_valid_documents(void **state)
{
    (void)state;
    expect_valid("{}");
    expect_valid("[]");
    expect_valid(" \n\t{ \"a\" : [ ] , \"b\" : { } } \r\n");
    expect_valid("[0, -0, 1.5, -2e10, 3E+2, 4e-3, 123456789012345678901234567890]");
    expect_valid("[true, false, null, \"\"]");
}

static void test_malformed_documents(void **state)
{
    (void)state;
    expect_invalid("", "1:1: malformed JSON: unexpected end of input");
    expect_invalid("{\"a\": 1,}", "1:9: malformed JSON: trailing comma");
    expect_invalid("[1 2]", "1:4: malformed JSON: expected ',' or ']'");
    expect_invalid("{\"a\" 1}", "1:6: malformed JSON: expected ':'");
    expect_invalid("{1: 2}", "1:2: malformed JSON: expected a string key");
    expect_invalid("{\"a\": 1}\n x", "2:2: malformed JSON: unexpected text after the JSON value");
    expect_invalid("[01]", "1:3: malformed JSON: expected ',' or ']'");
    expect_invalid("[1.]", "1:4: malformed JSON: invalid number");
    expect_invalid("[-]", "1:3: malformed JSON: invalid number");
    expect_invalid("[nul]", "1:2: malformed JSON: invalid token");
    expect_invalid("[NaN]", "1:2: malformed JSON: invalid token");
    expect_invalid("[\"a\tb\"]", "1:4: malformed JSON: control character in a string");
    expect_invalid("[\"\\x\"]", "1:4: malformed JSON: invalid escape in a string");
    expect_invalid("[\"\\u00zz\"]", "1:8: malformed JSON: invalid \\u escape");
    expect_invalid("[\"\\u0000\"]", "1:9: malformed JSON: \\u0000 is not allowed");
    expect_invalid("[\"\\ud83d\"]", "1:9: malformed JSON: lone high surrogate in \\u escape");
    expect_invalid("[\"\\ude00\"]", "1:9: malformed JSON: lone low surrogate in \\u escape");
    expect_invalid("[\"\xc3\x28\"]", "1:3: malformed JSON: invalid UTF-8 in a string");
    expect_invalid("[\"\xed\xa0\x80\"]", "1:3: malformed JSON: invalid UTF-8 in a string");
    expect_invalid("[\"abc", "1:6: malformed JSON: unexpected end of input in a string");
    expect_invalid("{\"a\": [1, {\"b\": ", "1:17: malformed JSON: unexpected end of input");
}

static void test_depth_limit(void **state)
{
    char deep[2 * JSCAN_MAX_DEPTH + 8], msg[256];
    size_t n = 0;

    (void)state;
    for (int i = 0; i <= JSCAN_MAX_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i <= JSCAN_MAX_DEPTH; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    assert_int_equal(skip_all(deep, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "too deeply nested"));
    deep[JSCAN_MAX_DEPTH] = '\0';
    memset(deep + JSCAN_MAX_DEPTH, ']', JSCAN_MAX_DEPTH);
    deep[2 * JSCAN_MAX_DEPTH] = '\0';
    expect_valid(deep);
}

static void test_first_error_sticks(void **state)
{
    const char *text = "[1 2] [3]";
    struct jscan js;
    char msg[128];

    (void)state;
    jscan_init(&js, text, strlen(text));
    assert_int_equal(jscan_skip(&js), -1);
    assert_int_equal(jscan_peek(&js), JSCAN_END);
    assert_int_equal(jscan_skip(&js), -1);
    assert_int_equal(jscan_fail(&js, "later"), -1);
    jscan_error_message(&js, msg, sizeof(msg));
    assert_string_equal(msg, "1:4: malformed JSON: expected ',' or ']'");
    jscan_done(&js);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk_object),
        cmocka_unit_test(test_string_decoding),
        cmocka_unit_test(test_valid_documents),
        cmocka_unit_test(test_malformed_documents),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_first_error_sticks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
