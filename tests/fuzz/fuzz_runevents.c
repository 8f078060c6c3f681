/* fuzz_runevents.c - libFuzzer target for the run output batcher: any
 * bytes, fed in two chunks split where the first byte says, give events
 * whose lines are valid UTF-8 without control characters, and every line
 * is either sent or counted as skipped. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/runevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t check_event(json_t *ev)
{
    const json_t *line;
    size_t i, n = json_array_size(json_object_get(ev, "lines"));

    json_array_foreach(json_object_get(ev, "lines"), i, line) {
        const char *text = json_string_value(json_object_get(line, "text"));

        if (!text || !json_string_value(json_object_get(line, "level")))
            abort();
        for (const char *c = text; *c; c++)
            if ((unsigned char)*c < 0x20 && *c != '\t')
                abort();
    }
    return n + (size_t)json_integer_value(json_object_get(ev, "skipped"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct runevents_limits lim;
    struct runevents *r;
    size_t split = size ? data[0] % (size + 1) : 0, counted = 0;
    json_t *ev;

    runevents_limits_default(&lim);
    lim.line_max = 64;
    lim.batch_lines = 8;
    r = runevents_new(&lim);
    runevents_feed(r, (const char *)data, split, 0);
    while ((ev = runevents_take(r, 0, 1))) {
        counted += check_event(ev);
        json_decref(ev);
    }
    runevents_feed(r, (const char *)data + split, size - split, 10);
    runevents_eof(r, 20);
    while ((ev = runevents_take(r, 20, 1))) {
        counted += check_event(ev);
        json_decref(ev);
    }
    if (counted != runevents_lines(r))
        abort();
    runevents_free(r);
    return 0;
}
