/* replay.h - a recorded job event stream (`choir run --json` output,
 * NDJSON, docs/protocol.md §12) as a source for the console (tui.h), for
 * tests, benchmarks and looking at a past job.
 *
 * Contract: replay_open opens FILE (errors: "FILE: reason").  Events are
 * due at their recorded times scaled by speed (1 = as they happened, 2 =
 * twice as fast), counted from the first event; speed 0 means as fast as
 * the console takes them.  The job's clock is the recorded clock (the
 * first event's time plus the scaled time since the start, never past the
 * last event taken), so a replay draws the same elapsed times every time.
 * Lines are read one at a time (at most REPLAY_LINE_MAX bytes); blank
 * lines are skipped; a line that is not a JSON object with a "type" and a
 * "time" stops the replay there, and replay_error says "FILE:LINE: why".
 * Commands are never sent (the source has no command function). */
#ifndef CHOIR_UI_REPLAY_H
#define CHOIR_UI_REPLAY_H

#include "core/error.h"
#include "ui/tui.h"

#define REPLAY_LINE_MAX (64 * 1024 * 1024)

struct replay;

int replay_open(struct replay **out, const char *path, double speed, struct choir_error *err);
/* Fills src to read from r (r must outlive it). */
void replay_source(struct replay *r, struct tui_source *src);
const char *replay_error(const struct replay *r);
unsigned long replay_events(const struct replay *r);
void replay_free(struct replay *r);

#endif
