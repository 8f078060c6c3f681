/* text.h - small string helpers for messages built from outside text.
 *
 * Contract: text_copy copies src into dst (size >= 1), cut to fit and
 * always NUL-terminated.  text_printable copies at most len bytes of text
 * (stopping at a NUL) into buf with control bytes replaced by spaces, cut
 * to fit: safe to put in a one-line message. */
#ifndef CHOIR_TEXT_H
#define CHOIR_TEXT_H

#include <stddef.h>

void text_copy(char *dst, size_t size, const char *src);
void text_printable(char *buf, size_t size, const char *text, size_t len);

#endif
