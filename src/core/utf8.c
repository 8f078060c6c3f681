/* utf8.c - see utf8.h. */
#include "core/utf8.h"

size_t utf8_char_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], cp, min;
    size_t more;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        more = 1, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        more = 2, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        more = 3, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if ((size_t)(end - p) <= more)
        return 0;
    for (size_t i = 1; i <= more; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return more + 1;
}

int utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    while (p < end) {
        size_t n = utf8_char_len(p, end);

        if (n == 0)
            return 0;
        p += n;
    }
    return 1;
}
