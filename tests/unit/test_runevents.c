/* test_runevents.c - Puppet output as bounded run events
 * (src/agent/runevents.h): cleaning and levels on real Puppet lines,
 * chunking, cut lines, the rate limit, batching, eof and numbering. */
#include "cmocka_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/runevents.h"

#define FEED(r, s, now) runevents_feed(r, s, sizeof(s) - 1, now)

/* Real Puppet 7 output (puppet apply -e 'notify {"hello": }' --color ansi,
 * then a bad option), CRLF, broken UTF-8, a control byte, a line cut at
 * line_max 40 in the middle of a 3-byte character, empty lines. */
static const char sample[] =
    "\033[mNotice: Compiled catalog for node1.example.com in environment production in 0.01 seconds\033[0m\n"
    "\033[0;32mInfo: Using environment 'production'\033[0m\r\n"
    "\033[mNotice: /Stage[main]/Main/Notify[hello]/message: defined 'message' as 'hello'\033[0m\n"
    "\n"
    "\033[1;31mError: Could not parse application options: invalid option: --job-id\033[0m\r\n"
    "caf\xc3\xa9 \xe2\x82 na\xefve \xff\x01\tend\r\n"
    "\r\n"
    "Warning: \xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
    "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac and more\n"
    "last \xf0\x9f\x98"; /* no '\n', an unfinished emoji */

static struct runevents *small(size_t line_max)
{
    struct runevents_limits l;

    runevents_limits_default(&l);
    l.line_max = line_max;
    return runevents_new(&l);
}

/* Forced take: must return an event. */
static json_t *take(struct runevents *r, long long now)
{
    json_t *ev = runevents_take(r, now, 1);

    assert_non_null(ev);
    return ev;
}

static const char *line_field(const json_t *ev, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(ev, "lines"), i), key));
}

static size_t line_count(const json_t *ev)
{
    return json_array_size(json_object_get(ev, "lines"));
}

static long long field(const json_t *ev, const char *key)
{
    return (long long)json_integer_value(json_object_get(ev, key));
}

static void assert_line(const json_t *ev, size_t i, const char *level, const char *text)
{
    assert_string_equal(line_field(ev, i, "level"), level);
    assert_string_equal(line_field(ev, i, "text"), text);
}

/* All of sample through line_max 40, fed as given by cuts (offsets). */
static json_t *sample_events(const size_t *cuts, size_t ncuts)
{
    struct runevents *r = small(40);
    size_t at = 0, i, len = sizeof(sample) - 1;
    json_t *ev;

    for (i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;

        runevents_feed(r, sample + at, to - at, 0);
        at = to;
    }
    runevents_eof(r, 0);
    ev = take(r, 0);
    assert_null(runevents_take(r, 0, 1));
    runevents_free(r);
    return ev;
}

static void test_sample_whole(void **state)
{
    json_t *ev = sample_events(NULL, 0);

    (void)state;
    assert_int_equal(line_count(ev), 9);
    assert_line(ev, 0, "notice", "Compiled catalog for node1.examp [cut]");
    assert_line(ev, 1, "info", "Using environment 'production'");
    assert_line(ev, 2, "notice", "/Stage[main]/Main/Notify[hello]/ [cut]");
    assert_line(ev, 3, "output", "");
    assert_line(ev, 4, "err", "Could not parse application optio [cut]");
    assert_line(ev, 5, "output", "caf\xc3\xa9 \xef\xbf\xbd na\xef\xbf\xbdve \xef\xbf\xbd?\tend");
    assert_line(ev, 6, "output", "");
    /* 9 + 10 * 3 = 39 bytes; the 11th euro does not fit in 40 */
    assert_line(ev, 7, "warning",
                "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
                "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac [cut]");
    assert_line(ev, 8, "output", "last \xef\xbf\xbd");
    assert_int_equal(field(ev, "first_line"), 1);
    assert_int_equal(field(ev, "skipped"), 0);
    json_decref(ev);
}

static void test_chunking(void **state)
{
    json_t *whole = sample_events(NULL, 0), *ev;
    size_t i, j, len = sizeof(sample) - 1, *every;

    (void)state;
    for (i = 0; i <= len; i++) {
        ev = sample_events(&i, 1);
        if (!json_equal(ev, whole))
            fail_msg("split at byte %zu gives other events", i);
        json_decref(ev);
    }
    every = malloc(len * sizeof(*every));
    for (j = 0; j < len; j++)
        every[j] = j;
    ev = sample_events(every, len);
    assert_true(json_equal(ev, whole));
    json_decref(ev);
    free(every);
    json_decref(whole);
}

static void test_levels(void **state)
{
    static const struct {
        const char *line, *level, *text;
    } cases[] = {
        {"Notice: /Stage[main]/Main/Notify[hello]/message: defined 'message' as 'hello'", "notice",
         "/Stage[main]/Main/Notify[hello]/message: defined 'message' as 'hello'"},
        {"Error: Could not parse application options: invalid option: --job-id", "err",
         "Could not parse application options: invalid option: --job-id"},
        {"Info: Using environment 'production'", "info", "Using environment 'production'"},
        {"Debug: Loading facts", "debug", "Loading facts"},
        {"Warning: Facter: error while resolving custom facts", "warning",
         "Facter: error while resolving custom facts"},
        {"Critical: x", "crit", "x"},
        {"Alert: y", "alert", "y"},
        {"Emergency: z", "emerg", "z"},
        {"Notice: ", "notice", ""},
        {"Notice:x", "output", "Notice:x"},
        {"notice: lower case", "output", "notice: lower case"},
        {"Error:", "output", "Error:"},
        {" Info: indented", "output", " Info: indented"},
        {"Noticeable: no", "output", "Noticeable: no"},
    };
    size_t i, plen;
    char buf[256];
    json_t *ev;
    struct runevents *r = runevents_new(NULL);

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(buf, sizeof(buf), "%s\n", cases[i].line);
        runevents_feed(r, buf, strlen(buf), 0);
        ev = take(r, 0);
        assert_line(ev, 0, cases[i].level, cases[i].text);
        json_decref(ev);
        assert_string_equal(runevents_level(cases[i].line, strlen(cases[i].line), &plen),
                            cases[i].level);
        assert_int_equal(plen, strlen(cases[i].line) - strlen(cases[i].text));
    }
    /* the length bounds the match, not a NUL */
    assert_string_equal(runevents_level("Info: x", 5, &plen), "output");
    assert_int_equal(plen, 0);
    assert_string_equal(runevents_level(NULL, 0, NULL), "output");
    runevents_free(r);
}

/* The one line that feeding text (plus eof) gives, with its level. */
static void assert_clean(const char *in, size_t len, const char *level, const char *want)
{
    struct runevents *r = runevents_new(NULL);
    json_t *ev;

    runevents_feed(r, in, len, 0);
    runevents_eof(r, 0);
    ev = take(r, 0);
    assert_int_equal(line_count(ev), 1);
    assert_line(ev, 0, level, want);
    json_decref(ev);
    runevents_free(r);
}

#define CLEAN(in, want) assert_clean(in, sizeof(in) - 1, "output", want)
#define CLEAN_AS(in, level, want) assert_clean(in, sizeof(in) - 1, level, want)

static void test_crlf(void **state)
{
    struct runevents *r = runevents_new(NULL);
    json_t *ev;

    (void)state;
    FEED(r, "Notice: a\r\nb\r\n\r\nc\n", 0);
    ev = take(r, 0);
    assert_int_equal(line_count(ev), 4);
    assert_line(ev, 0, "notice", "a");
    assert_line(ev, 1, "output", "b");
    assert_line(ev, 2, "output", "");
    assert_line(ev, 3, "output", "c");
    json_decref(ev);
    runevents_free(r);
    CLEAN("x\ry\n", "x?y");    /* only a trailing CR goes */
    CLEAN("z\r\r\n", "z?");
    CLEAN("eof\r", "eof");     /* trailing at eof too */
    CLEAN("\r\033[0mq\n", "?q");
}

static void test_utf8(void **state)
{
    (void)state;
    CLEAN("ok \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\n", "ok \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    CLEAN("a\xff" "b\n", "a\xef\xbf\xbd" "b");
    CLEAN("\xe2\x82x\n", "\xef\xbf\xbdx");                                   /* truncated */
    CLEAN("\xc0\xaf\n", "\xef\xbf\xbd\xef\xbf\xbd");                         /* overlong */
    CLEAN("\xe0\x80\xaf\n", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");         /* overlong */
    CLEAN("\xed\xa0\x80\n", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");         /* surrogate */
    CLEAN("\xf4\x90\x80\x80\n",
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");                 /* > U+10FFFF */
    CLEAN("\xe2\xe2\x82\xac\n", "\xef\xbf\xbd\xe2\x82\xac");                 /* restart */
    CLEAN("\x80\xbf\n", "\xef\xbf\xbd\xef\xbf\xbd");                         /* lone */
    CLEAN("t\tn\x01\x7f\xc2\x9b" "d\n", "t\tn???d");                         /* controls, C1 */
    CLEAN_AS("nul\0x\n", "output", "nul?x");
}

static void test_ansi(void **state)
{
    (void)state;
    CLEAN_AS("\033[mNotice: Applied catalog in 0.02 seconds\033[0m\n", "notice",
                 "Applied catalog in 0.02 seconds");
    CLEAN_AS("\033[1;31mError: boom\033[0m\n", "err", "boom");
    CLEAN("a\033[38;5;196mb\033[0mc\n", "abc");
    CLEAN("\033[0m\n", "");                  /* only colour: an empty line */
    CLEAN("esc\033x\n", "esc?x");            /* not a CSI: ESC is a control */
    CLEAN("esc\033\n", "esc?");
    CLEAN("broken\033[12\x01x\n", "broken?x"); /* a broken sequence ends */
    CLEAN("\033[1m\033[0m\033[32mg\n", "g");
}

static void test_cut(void **state)
{
    struct runevents *r = runevents_new(NULL);
    char *big = malloc(10241), *euros = malloc(10002);
    const char *text;
    size_t i;
    json_t *ev;

    (void)state;
    memset(big, 'x', 10240);
    big[10240] = '\n';
    runevents_feed(r, big, 10241, 0);
    ev = take(r, 0);
    text = line_field(ev, 0, "text");
    assert_int_equal(strlen(text), 2048 + 6);
    assert_memory_equal(text, big, 2048);
    assert_string_equal(text + 2048, " [cut]");
    json_decref(ev);

    /* byte by byte, 3-byte characters: cut at 682 * 3 = 2046 */
    for (i = 0; i < 10000; i += 3)
        memcpy(euros + i, "\xe2\x82\xac", 3);
    euros[9999] = 'x';
    euros[10000] = '\n';
    for (i = 0; i < 10001; i++)
        runevents_feed(r, euros + i, 1, 0);
    ev = take(r, 0);
    text = line_field(ev, 0, "text");
    assert_int_equal(strlen(text), 2046 + 6);
    assert_memory_equal(text, euros, 2046);
    assert_string_equal(text + 2046, " [cut]");
    json_decref(ev);

    /* a line of exactly line_max is not cut */
    big[2048] = '\n';
    runevents_feed(r, big, 2049, 0);
    ev = take(r, 0);
    assert_int_equal(strlen(line_field(ev, 0, "text")), 2048);
    json_decref(ev);
    assert_int_equal(runevents_lines(r), 3);
    runevents_free(r);
    free(big);
    free(euros);
}

/* 100,000 lines within 1 ms, one line per feed, taking after each feed. */
static void test_flood(void **state)
{
    struct runevents_limits l;
    struct runevents *r;
    unsigned long long sent = 0, skipped = 0, i;
    long long events = 0;
    json_t *ev;

    (void)state;
    runevents_limits_default(&l);
    r = runevents_new(&l);
    for (i = 0; i < 100000; i++) {
        long long now = i < 50000 ? 0 : 1;

        FEED(r, "Info: spam\n", now);
        while ((ev = runevents_take(r, now, 0))) {
            sent += line_count(ev);
            skipped += (unsigned long long)field(ev, "skipped");
            assert_true(line_count(ev) <= l.batch_lines);
            events++;
            json_decref(ev);
        }
    }
    while ((ev = runevents_take(r, 1, 1))) {
        sent += line_count(ev);
        skipped += (unsigned long long)field(ev, "skipped");
        json_decref(ev);
    }
    assert_true(sent >= l.rate_lines);
    assert_true(sent <= l.rate_lines + l.batch_lines);
    assert_int_equal(runevents_lines(r), 100000);
    assert_int_equal(runevents_skipped(r), skipped);
    assert_int_equal(sent + skipped, 100000);
    assert_true(events < 20);
    runevents_free(r);
}

/* 100,000 lines in one feed: the batch stays bounded, the rest is skipped. */
/* feed_some stops when the batch is full: taking in between loses nothing. */
static void test_feed_some(void **state)
{
    struct runevents_limits lim;
    struct runevents *r;
    size_t i, len = 10000 * 4, off = 0, sent = 0, events = 0;
    char *buf = malloc(len);
    json_t *ev;

    (void)state;
    runevents_limits_default(&lim);
    lim.rate_lines = 1000000;
    r = runevents_new(&lim);
    for (i = 0; i < len; i += 4)
        memcpy(buf + i, "abc\n", 4);
    while (off < len) {
        off += runevents_feed_some(r, buf + off, len - off, 0);
        while ((ev = runevents_take(r, 0, 0))) {
            assert_true(line_count(ev) <= 256);
            sent += (size_t)line_count(ev);
            events++;
            json_decref(ev);
        }
    }
    if ((ev = runevents_take(r, 0, 1))) {
        sent += (size_t)line_count(ev);
        json_decref(ev);
    }
    assert_int_equal(sent, 10000);
    assert_int_equal(runevents_skipped(r), 0);
    assert_true(events >= 10000 / 256);
    runevents_free(r);
    free(buf);
}

static void test_flood_one_feed(void **state)
{
    struct runevents *r = runevents_new(NULL);
    size_t i, len = 100000 * 4;
    char *buf = malloc(len);
    json_t *ev;

    (void)state;
    for (i = 0; i < len; i += 4)
        memcpy(buf + i, "abc\n", 4);
    runevents_feed(r, buf, len, 0);
    assert_int_equal(runevents_due_in(r, 0), 0);
    ev = runevents_take(r, 0, 0);
    assert_non_null(ev);
    assert_int_equal(line_count(ev), 256);
    assert_int_equal(field(ev, "skipped"), 100000 - 256);
    assert_int_equal(runevents_lines(r), 100000);
    assert_int_equal(runevents_skipped(r), 100000 - 256);
    json_decref(ev);
    assert_null(runevents_take(r, 0, 1));
    runevents_free(r);
    free(buf);
}

/* The byte bound: a line that does not fit is skipped and the batch is due. */
static void test_batch_bytes(void **state)
{
    struct runevents_limits l;
    struct runevents *r;
    json_t *ev;

    (void)state;
    runevents_limits_default(&l);
    l.batch_bytes = 100;
    l.line_max = 60;
    r = runevents_new(&l);
    ev = runevents_take(r, 0, 1);
    assert_null(ev);
    FEED(r, "x\n", 0);
    json_decref(take(r, 0));
    FEED(r, "0123456789012345678901234567890123456789\n", 10);
    assert_int_equal(runevents_due_in(r, 10), 190);
    FEED(r, "0123456789012345678901234567890123456789\n", 10);
    assert_int_equal(runevents_due_in(r, 10), 190);
    FEED(r, "0123456789012345678901234567890123456789\n", 10);
    assert_int_equal(runevents_due_in(r, 10), 0);
    ev = runevents_take(r, 10, 0);
    assert_non_null(ev);
    assert_int_equal(line_count(ev), 2);
    assert_int_equal(field(ev, "first_line"), 2);
    assert_int_equal(field(ev, "skipped"), 1);
    json_decref(ev);
    runevents_free(r);
}

static void test_batching(void **state)
{
    struct runevents *r = runevents_new(NULL);
    json_t *ev;

    (void)state;
    assert_null(runevents_take(r, 0, 0));
    FEED(r, "one\n", 0);
    ev = runevents_take(r, 0, 0); /* the first event is due at once */
    assert_non_null(ev);
    json_decref(ev);
    FEED(r, "two\nthree\n", 10);
    assert_null(runevents_take(r, 100, 0));
    assert_null(runevents_take(r, 199, 0));
    ev = runevents_take(r, 200, 0);
    assert_non_null(ev);
    assert_int_equal(line_count(ev), 2);
    assert_line(ev, 1, "output", "three");
    json_decref(ev);
    FEED(r, "four\n", 250);
    assert_null(runevents_take(r, 250, 0));
    ev = runevents_take(r, 250, 1); /* force */
    assert_non_null(ev);
    assert_line(ev, 0, "output", "four");
    json_decref(ev);
    FEED(r, "five\n", 300);
    assert_null(runevents_take(r, 449, 0)); /* counted from the forced take */
    ev = runevents_take(r, 450, 0);
    assert_non_null(ev);
    json_decref(ev);
    assert_null(runevents_take(r, 10000, 1));
    runevents_free(r);
}

static void test_batch_lines(void **state)
{
    struct runevents_limits l;
    struct runevents *r;
    json_t *ev;

    (void)state;
    runevents_limits_default(&l);
    l.batch_lines = 3;
    r = runevents_new(&l);
    FEED(r, "a\n", 0);
    json_decref(take(r, 0));
    FEED(r, "b\nc\n", 1);
    assert_null(runevents_take(r, 1, 0));
    FEED(r, "d\n", 1);
    ev = runevents_take(r, 1, 0); /* full */
    assert_non_null(ev);
    assert_int_equal(line_count(ev), 3);
    json_decref(ev);
    runevents_free(r);
}

static void test_eof(void **state)
{
    struct runevents *r = runevents_new(NULL);
    json_t *ev;

    (void)state;
    FEED(r, "Notice: Applied catalog", 0);
    FEED(r, " in 0.01 seconds", 0);
    assert_null(runevents_take(r, 0, 1));
    assert_int_equal(runevents_due_in(r, 0), -1);
    assert_int_equal(runevents_lines(r), 0);
    runevents_eof(r, 0);
    ev = take(r, 0);
    assert_line(ev, 0, "notice", "Applied catalog in 0.01 seconds");
    json_decref(ev);
    runevents_eof(r, 0); /* nothing after the last line: no line */
    FEED(r, "done\n", 0);
    runevents_eof(r, 0);
    assert_int_equal(runevents_lines(r), 2);
    runevents_free(r);
}

static void test_numbering(void **state)
{
    struct runevents_limits l;
    struct runevents *r;
    json_t *ev;

    (void)state;
    runevents_limits_default(&l);
    l.rate_lines = 2;
    r = runevents_new(&l);
    FEED(r, "1\n2\n3\n4\n5\n", 0);
    ev = take(r, 0);
    assert_int_equal(line_count(ev), 2);
    assert_int_equal(field(ev, "first_line"), 1);
    assert_int_equal(field(ev, "skipped"), 3);
    json_decref(ev);
    FEED(r, "6\n", 100); /* bucket refilled by 0.2 of a line */
    assert_int_equal(runevents_due_in(r, 100), 100);
    ev = take(r, 100);
    assert_int_equal(line_count(ev), 0);
    assert_int_equal(field(ev, "first_line"), 0);
    assert_int_equal(field(ev, "skipped"), 1);
    json_decref(ev);
    FEED(r, "7\n8\n9\n", 1000); /* 2 tokens at most */
    ev = take(r, 1000);
    assert_int_equal(field(ev, "first_line"), 7);
    assert_line(ev, 1, "output", "8");
    assert_int_equal(field(ev, "skipped"), 1);
    json_decref(ev);
    FEED(r, "10\n", 1500); /* one token again after 500 ms */
    ev = take(r, 1500);
    assert_int_equal(field(ev, "first_line"), 10);
    assert_int_equal(field(ev, "skipped"), 0);
    json_decref(ev);
    assert_int_equal(runevents_lines(r), 10);
    assert_int_equal(runevents_skipped(r), 5);
    runevents_free(r);
}

static void test_due_in(void **state)
{
    struct runevents *r = runevents_new(NULL);
    json_t *ev;

    (void)state;
    assert_int_equal(runevents_due_in(r, 0), -1);
    FEED(r, "a\n", 1000);
    assert_int_equal(runevents_due_in(r, 1000), 0);
    json_decref(take(r, 1000));
    assert_int_equal(runevents_due_in(r, 1050), -1);
    FEED(r, "b\n", 1050);
    assert_int_equal(runevents_due_in(r, 1050), 150);
    assert_int_equal(runevents_due_in(r, 1199), 1);
    assert_int_equal(runevents_due_in(r, 1200), 0);
    assert_int_equal(runevents_due_in(r, 999), 200); /* a clock that went back */
    ev = runevents_take(r, 1200, 0);
    assert_non_null(ev);
    json_decref(ev);
    runevents_free(r);
}

static void test_limits(void **state)
{
    struct runevents_limits l;
    struct runevents *r;
    json_t *ev;

    (void)state;
    runevents_limits_default(&l);
    assert_int_equal(l.batch_ms, 200);
    assert_int_equal(l.batch_lines, 256);
    assert_int_equal(l.batch_bytes, 32 * 1024);
    assert_int_equal(l.rate_lines, 2000);
    assert_int_equal(l.line_max, 2048);
    memset(&l, 0, sizeof(l)); /* all clamped to something usable */
    l.batch_ms = -5;
    r = runevents_new(&l);
    FEED(r, "\xe2\x82\xac\xe2\x82\xac\n", 0);
    ev = take(r, 0);
    assert_line(ev, 0, "output", "\xe2\x82\xac [cut]");
    json_decref(ev);
    runevents_free(r);
    runevents_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_whole),  cmocka_unit_test(test_chunking),
        cmocka_unit_test(test_levels),        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_utf8),          cmocka_unit_test(test_ansi),
        cmocka_unit_test(test_cut),           cmocka_unit_test(test_flood),
        cmocka_unit_test(test_flood_one_feed), cmocka_unit_test(test_batch_bytes),
        cmocka_unit_test(test_batching),      cmocka_unit_test(test_batch_lines),
        cmocka_unit_test(test_eof),           cmocka_unit_test(test_numbering),
        cmocka_unit_test(test_due_in),        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_feed_some),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
