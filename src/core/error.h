/* error.h - caller-owned error reports.
 *
 * Contract: a fallible function returns 0 on success and -1 on failure, and
 * on failure fills the caller's struct choir_error with one line of text (no
 * trailing newline; control bytes, which may come from outside input, are
 * replaced by '?') and the exit class that main should use.  Only main
 * turns an error into an exit; lower layers never print or exit. */
#ifndef CHOIR_ERROR_H
#define CHOIR_ERROR_H

#include "exitcode.h"

struct choir_error {
    enum choir_exit code;
    char msg[1024];
};

/* Sets the message (printf format) and the exit class. */
void error_set(struct choir_error *err, enum choir_exit code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Puts "PREFIX: " in front of the current message, keeping the class. */
void error_prefix(struct choir_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
