/* fuzz_theme.c - libFuzzer target for the theme file parser: any bytes
 * either parse into a theme whose colours are in range or fail with a
 * one-line file:line message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ui/theme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct choir_error err = {0};
    struct theme t;

    theme_default(&t);
    if (theme_parse(&t, (const char *)data, size, "fuzz.theme", &err) < 0) {
        if (!err.msg[0] || strchr(err.msg, '\n') || err.code != CHOIR_EXIT_INPUT)
            abort();
        return 0;
    }
    for (int r = 0; r < THEME_NROLES; r++)
        if (t.look[r].fg < -1 || t.look[r].fg > 255 || t.look[r].bg < -1 || t.look[r].bg > 255)
            abort();
    return 0;
}
