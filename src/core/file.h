/* file.h - bounded whole-file reads.
 *
 * Contract: file_read reads all of `path` into a NUL-terminated heap
 * buffer, refusing more than max_bytes.  It returns 0, or an errno value:
 * EFBIG when the file is larger than max_bytes, EISDIR for a directory,
 * or what open/read said.  Callers turn the value into their own message
 * (they know which setting bounds the size). */
#ifndef CHOIR_FILE_H
#define CHOIR_FILE_H

#include <stddef.h>

int file_read(const char *path, size_t max_bytes, char **buf, size_t *len);

/* 0 when path opens for reading and is not a directory, else the errno
 * value (EISDIR for a directory): lets callers name an unreadable file
 * before a library fails on it with vaguer words. */
int file_readable(const char *path);

#endif
