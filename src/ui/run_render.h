/* run_render.h - the plain and NDJSON faces of run events (`choir
 * runonce`; the job engine's headless log builds on them).
 *
 * Contract: plain lines are "HH:MM:SS NODE: text", one per reply, output
 * line and state change, styled by st (errors and warnings by level,
 * verdicts by success); nothing is printed for a started event but the
 * command, and nothing for the output event itself but its lines (and a
 * "[N lines skipped]" note).  NDJSON writes one object per line:
 * {"node", "reply": {"statuscode", "statusmsg"}} for replies and
 * {"node", "event": <the event object as the node sent it>} for events.
 * run_render_summary prints one closing line (plain) or object (json). */
#ifndef CHOIR_RUN_RENDER_H
#define CHOIR_RUN_RENDER_H

#include <stdio.h>

#include <jansson.h>

#include "ui/term.h"

struct run_render {
    FILE *out;
    int json;
    const struct term_style *st;
};

void run_render_reply(struct run_render *r, const char *node, int statuscode,
                      const char *statusmsg);
void run_render_event(struct run_render *r, const char *node, const json_t *event);
/* A node's end that no event told: "no reply", "timed out"... */
void run_render_note(struct run_render *r, const char *node, const char *state, const char *text);
void run_render_summary(struct run_render *r, const char *job_id, size_t succeeded,
                        size_t failed, size_t total);

#endif
