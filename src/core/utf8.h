/* utf8.h - UTF-8 validation for untrusted text.
 *
 * Contract: utf8_char_len returns the length (1-4) of the well-formed
 * UTF-8 sequence at p (p < end), or 0 when it is not one: no overlong
 * forms, no surrogates, nothing above U+10FFFF.  utf8_valid checks a whole
 * buffer. */
#ifndef CHOIR_UTF8_H
#define CHOIR_UTF8_H

#include <stddef.h>

size_t utf8_char_len(const unsigned char *p, const unsigned char *end);
int utf8_valid(const char *s, size_t len);

#endif
