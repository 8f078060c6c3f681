/* file.h - bounded whole-file reads.
 *
 * Contract: file_read reads all of `path` into a NUL-terminated heap
 * buffer, refusing more than max_bytes.  It returns 0, or an errno value:
 * EFBIG when the file is larger than max_bytes, EISDIR for a directory,
 * or what open/read said.  Callers turn the value into their own message
 * (they know which setting bounds the size).  file_write_atomic is the
 * matching all-or-nothing write. */
#ifndef CHOIR_FILE_H
#define CHOIR_FILE_H

#include <stddef.h>

int file_read(const char *path, size_t max_bytes, char **buf, size_t *len);

/* 0 when path opens for reading and is not a directory, else the errno
 * value (EISDIR for a directory): lets callers name an unreadable file
 * before a library fails on it with vaguer words. */
int file_readable(const char *path);

/* Replaces path with data whole or not at all: a temporary file beside
 * it, fsync, rename(2), then an fsync of the directory.  Returns 0 or an
 * errno value. */
int file_write_atomic(const char *path, const void *data, size_t len, unsigned mode);

#endif
