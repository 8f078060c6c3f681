/* jscan.h - a streaming, strict JSON reader that builds no tree.
 *
 * Contract: a pull interface over a complete JSON text in memory, for
 * parsers of large untrusted documents (the site graph) that want to walk
 * values in document order and keep only what they need.  It accepts
 * exactly RFC 8259 JSON: no comments, no trailing commas, no NaN, strict
 * numbers, valid UTF-8, no control characters in strings, no \u0000, and
 * nothing but white space after the top-level value; nesting is limited to
 * JSCAN_MAX_DEPTH.  Strings are returned decoded and NUL-terminated in a
 * scratch buffer that the next string read reuses.  The first error
 * sticks: every later call fails, and jscan_error_message gives
 * "LINE:COL: malformed JSON: reason" for it. */
#ifndef CHOIR_JSCAN_H
#define CHOIR_JSCAN_H

#include <stddef.h>

#define JSCAN_MAX_DEPTH 64

enum jscan_type {
    JSCAN_END,     /* no more input (or an error) */
    JSCAN_OBJECT,
    JSCAN_ARRAY,
    JSCAN_STRING,
    JSCAN_NUMBER,
    JSCAN_BOOLEAN,
    JSCAN_NULL,
    JSCAN_INVALID, /* the next byte cannot start a value */
};

struct jscan {
    const char *start, *p, *end;
    int depth;
    unsigned char first[JSCAN_MAX_DEPTH + 1]; /* per open container: no element yet */
    char *str;             /* scratch: the last string read */
    size_t strcap;
    const char *err_at;    /* where the first error happened, NULL = none */
    char err[160];
};

void jscan_init(struct jscan *js, const char *buf, size_t len);
void jscan_done(struct jscan *js);

/* The type of the next value, without consuming it. */
enum jscan_type jscan_peek(struct jscan *js);
/* "object", "array", "string", "number", "boolean", "null". */
const char *jscan_type_name(enum jscan_type t);

/* Objects: jscan_object_begin consumes '{'; each jscan_object_next returns
 * 1 with the next key (decoded, in the scratch buffer) and the ':' consumed,
 * 0 after the closing '}', -1 on error. */
int jscan_object_begin(struct jscan *js);
int jscan_object_next(struct jscan *js, const char **key, size_t *len);
/* Arrays: likewise, 1 when another element follows. */
int jscan_array_begin(struct jscan *js);
int jscan_array_next(struct jscan *js);

/* Reads a string value into the scratch buffer. */
int jscan_string(struct jscan *js, const char **s, size_t *len);
/* Consumes any one value, checking it. */
int jscan_skip(struct jscan *js);
/* After the top-level value: only white space may remain. */
int jscan_finish(struct jscan *js);

/* Marks an error at the current position (first error wins); returns -1. */
int jscan_fail(struct jscan *js, const char *reason);
/* "LINE:COL: malformed JSON: reason" of the first error. */
void jscan_error_message(const struct jscan *js, char *buf, size_t size);

#endif
