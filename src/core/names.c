/* names.c - see names.h. */
#include "core/names.h"

#include <string.h>

static int names_all_of(const char *s, size_t len, int allow_dot_dash)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
            continue;
        if (allow_dot_dash && (c == '.' || c == '-'))
            continue;
        return 0;
    }
    return 1;
}

int names_certname_ok(const char *s, size_t len)
{
    return len >= 1 && len <= NAMES_MAX && s[0] != '.' && s[0] != '-' && names_all_of(s, len, 1);
}

int names_environment_ok(const char *s, size_t len)
{
    return len >= 1 && len <= NAMES_MAX && names_all_of(s, len, 0);
}

int names_job_id_ok(const char *s)
{
    size_t len = s ? strlen(s) : 0;

    return len > 0 && len <= NAMES_JOB_ID_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}
