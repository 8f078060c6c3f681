/* job_render.h - the headless faces of a job: a plain timestamped log in
 * the spirit of the 2016 `mco choria run` output, or NDJSON (the engine's
 * events as they are, docs/protocol.md §12).
 *
 * Contract: job_render_event takes the engine's events in order.  Plain:
 * one line per job state, preflight problem, step ("Running node group 2
 * with 3 nodes: ..."), node result (verdict and reason) and operator
 * action; output lines of level warning and worse (all of them with
 * show_output); "group N done in 12.3 s" when a group's last step ends;
 * and a closing summary with the exit code's meaning and the locks the job
 * still holds.  Nothing is buffered beyond one line: each line is flushed,
 * so a log follows the job live. */
#ifndef CHOIR_JOB_RENDER_H
#define CHOIR_JOB_RENDER_H

#include <stdio.h>

#include <jansson.h>

#include "ui/term.h"

struct job_render {
    FILE *out;
    int json;
    int show_output;
    const struct term_style *st;
    /* plain: the group in progress and when it began */
    long long group, group_started_ms;
};

void job_render_init(struct job_render *r, FILE *out, int json, int show_output,
                     const struct term_style *st);
void job_render_event(struct job_render *r, const json_t *ev);

#endif
