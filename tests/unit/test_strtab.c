/* test_strtab.c - string interning: ids, lookups, growth, stability. */
#include "cmocka_setup.h"

#include <stdio.h>
#include <string.h>

#include "core/strtab.h"

static void test_intern_gives_dense_ids_in_insertion_order(void **state)
{
    struct strtab t;

    (void)state;
    strtab_init(&t);
    assert_int_equal(strtab_intern(&t, "dev1", 4), 0);
    assert_int_equal(strtab_intern(&t, "dev2", 4), 1);
    assert_int_equal(strtab_intern(&t, "dev1", 4), 0);
    assert_int_equal(strtab_count(&t), 2);
    assert_string_equal(strtab_str(&t, 1), "dev2");
    assert_int_equal(strtab_len(&t, 1), 4);
    strtab_done(&t);
}

static void test_find_does_not_insert(void **state)
{
    struct strtab t;

    (void)state;
    strtab_init(&t);
    assert_int_equal(strtab_find(&t, "x", 1), STRTAB_NONE);
    strtab_intern(&t, "x", 1);
    assert_int_equal(strtab_find(&t, "x", 1), 0);
    assert_int_equal(strtab_find(&t, "xy", 2), STRTAB_NONE);
    assert_int_equal(strtab_count(&t), 1);
    strtab_done(&t);
}

static void test_prefixes_and_lengths_are_distinct(void **state)
{
    struct strtab t;

    (void)state;
    strtab_init(&t);
    assert_int_equal(strtab_intern(&t, "abc", 3), 0);
    assert_int_equal(strtab_intern(&t, "abc", 2), 1);
    assert_string_equal(strtab_str(&t, 1), "ab");
    assert_int_equal(strtab_intern(&t, "", 0), 2);
    assert_string_equal(strtab_str(&t, 2), "");
    strtab_done(&t);
}

static void test_strings_survive_growth(void **state)
{
    struct strtab t;
    const char *first;
    char name[32];

    (void)state;
    strtab_init(&t);
    strtab_intern(&t, "node-0", 6);
    first = strtab_str(&t, 0);
    for (int i = 1; i < 50000; i++) {
        int n = snprintf(name, sizeof(name), "node-%d", i);
        assert_int_equal(strtab_intern(&t, name, (size_t)n), (uint32_t)i);
    }
    assert_ptr_equal(strtab_str(&t, 0), first);
    assert_string_equal(first, "node-0");
    for (int i = 0; i < 50000; i += 997) {
        int n = snprintf(name, sizeof(name), "node-%d", i);
        assert_int_equal(strtab_find(&t, name, (size_t)n), (uint32_t)i);
    }
    strtab_done(&t);
}

static void test_long_string_gets_its_own_chunk(void **state)
{
    static char big[200000];
    struct strtab t;

    (void)state;
    memset(big, 'a', sizeof(big) - 1);
    strtab_init(&t);
    strtab_intern(&t, "small", 5);
    assert_int_equal(strtab_intern(&t, big, sizeof(big) - 1), 1);
    assert_int_equal(strlen(strtab_str(&t, 1)), sizeof(big) - 1);
    assert_string_equal(strtab_str(&t, 0), "small");
    strtab_done(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intern_gives_dense_ids_in_insertion_order),
        cmocka_unit_test(test_find_does_not_insert),
        cmocka_unit_test(test_prefixes_and_lengths_are_distinct),
        cmocka_unit_test(test_strings_survive_growth),
        cmocka_unit_test(test_long_string_gets_its_own_chunk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
