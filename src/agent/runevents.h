/* runevents.h - a Puppet run's stdout/stderr as bounded "output" run events.
 *
 * Contract: choird feeds the child's combined output, in whatever chunks
 * read() returned, and takes events to publish on the bus.  Nothing here
 * does I/O or reads the clock: every call that needs time gets now_ms, a
 * monotonic millisecond time.  The result does not depend on how the
 * bytes were chunked.  Memory is bounded by the limits whatever the input.
 *
 * Lines: split on '\n'; a trailing '\r' is removed; ANSI colour sequences
 * (ESC '[' parameters final-byte) are removed; bytes that are not
 * well-formed UTF-8 become U+FFFD (one per maximal invalid subpart); other
 * control characters than tab (C0, DEL and C1) become '?'.  Empty lines
 * are kept.  At most line_max bytes of the cleaned line are kept, cut at
 * a character boundary and marked with the suffix " [cut]"; the rest of
 * the line is discarded as it arrives.  runevents_eof ends a final line
 * that has no '\n' (any byte after the last '\n' makes one).
 *
 * Levels: Puppet's "Debug: ", "Info: ", "Notice: ", "Warning: ",
 * "Error: ", "Critical: ", "Alert: ", "Emergency: " give debug, info,
 * notice, warning, err, crit, alert, emerg and are removed from the text;
 * any other line is level "output" with its whole text.
 *
 * Flow: each line takes a token from a bucket of rate_lines tokens
 * (refilled continuously at rate_lines per second of now_ms, full at the
 * start) or is skipped.  A line with a token joins the pending batch
 * unless the batch holds batch_lines lines or the line's text does not fit
 * in batch_bytes; then it is skipped too and the batch counts as full.
 *
 * runevents_take returns NULL when nothing is pending (no line and no
 * skip since the previous event).  Otherwise it returns the event when
 * force is set, the batch is full, no event was taken yet, or batch_ms
 * passed since the previous one was taken:
 *
 *   {"lines": [{"level": "notice", "text": "..."}, ...],
 *    "first_line": N, "skipped": K}
 *
 * first_line is the 1-based number among all lines seen (skipped ones
 * included) of the event's first line, 0 when it has none; skipped is how
 * many lines were dropped since the previous event.  The caller owns the
 * event.  runevents_due_in says when take would return one. */
#ifndef CHOIR_RUNEVENTS_H
#define CHOIR_RUNEVENTS_H

#include <stddef.h>

#include <jansson.h>

/* Values out of range are clamped: batch_ms 0..60000, batch_lines
 * 1..65536, rate_lines 1..1000000, line_max 4..1 MiB, batch_bytes up to
 * 64 MiB and at least line_max + 6 so that any one line fits. */
struct runevents_limits {
    long batch_ms;      /* at most one output event per batch_ms (default 200) */
    size_t batch_lines; /* at most this many lines per event (default 256) */
    size_t batch_bytes; /* at most this many bytes of text per event (default 32 KiB) */
    size_t rate_lines;  /* lines per second that may be sent (default 2000) */
    size_t line_max;    /* bytes of one line kept (default 2048) */
};

#define RUNEVENTS_CUT " [cut]"

struct runevents;

void runevents_limits_default(struct runevents_limits *l);

/* lim NULL: the defaults. */
struct runevents *runevents_new(const struct runevents_limits *lim);
void runevents_free(struct runevents *r);

void runevents_feed(struct runevents *r, const char *buf, size_t len, long long now_ms);

/* Feeds bytes only while the pending batch has room: returns how many it
 * took (all of them, or fewer once the batch is full; take the event and
 * feed the rest), so a caller that takes events in between never has a
 * line skipped for want of room, only by the rate limit. */
size_t runevents_feed_some(struct runevents *r, const char *buf, size_t len, long long now_ms);

/* Ends the final line; feeding may go on after it. */
void runevents_eof(struct runevents *r, long long now_ms);

json_t *runevents_take(struct runevents *r, long long now_ms, int force);

/* Milliseconds until take (without force) would return an event: 0 now,
 * -1 nothing pending. */
long runevents_due_in(const struct runevents *r, long long now_ms);

/* Lines seen and lines dropped, in total; lines = sent + skipped once
 * the pending batch was taken. */
unsigned long long runevents_lines(const struct runevents *r);
unsigned long long runevents_skipped(const struct runevents *r);

/* The level of one cleaned line and the length of its prefix (0 for
 * "output"); prefix_len may be NULL. */
const char *runevents_level(const char *line, size_t len, size_t *prefix_len);

#endif
