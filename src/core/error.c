/* error.c - see error.h. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const struct exitcode_info exitcode_table[] = {
#define CHOIR_EXIT_ROW(name, value, meaning) {name, #name, meaning},
    CHOIR_EXIT_CODES(CHOIR_EXIT_ROW)
#undef CHOIR_EXIT_ROW
    {0, NULL, NULL},
};

/* Messages are one line for a terminal: control bytes that came from
 * outside input (an ESC in a site file, a newline in a header) become '?'. */
static void error_sanitize(char *msg)
{
    for (unsigned char *p = (unsigned char *)msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
}

void error_set(struct choir_error *err, enum choir_exit code, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    error_sanitize(err->msg);
}

void error_prefix(struct choir_error *err, const char *fmt, ...)
{
    char prefix[512];
    char rest[sizeof(err->msg)];
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(rest, err->msg, sizeof(rest));
    if (snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, rest) >= (int)sizeof(err->msg))
        memcpy(err->msg + sizeof(err->msg) - 4, "...", 4);
    error_sanitize(err->msg);
}
