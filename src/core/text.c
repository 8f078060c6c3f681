/* text.c - see text.h. */
#include "core/text.h"

#include <string.h>

void text_copy(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

void text_printable(char *buf, size_t size, const char *text, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len && text[i] && o + 1 < size; i++) {
        unsigned char c = (unsigned char)text[i];

        buf[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    buf[o] = '\0';
}
