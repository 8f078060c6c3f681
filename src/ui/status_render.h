/* status_render.h - the faces of `choir status`, `enable` and `disable`.
 *
 * Contract: rows are one per node, sorted by the caller; a row with
 * answered == 0 is a node that did not reply.  status_render_table writes
 * a table (node, enabled, applying, last run age, disable message) and a
 * summary line, styled by `st`; status_render_json writes one JSON object
 * per node per line (NDJSON: {"node", "statuscode", "statusmsg", "data"},
 * or {"node", "error": "no reply"}); status_render_actions writes one line
 * per node for enable/disable ("NODE: disabled", "NODE: failed: why",
 * "NODE: no reply"). */
#ifndef CHOIR_STATUS_RENDER_H
#define CHOIR_STATUS_RENDER_H

#include <jansson.h>
#include <stdio.h>
#include <time.h>

#include "ui/term.h"

struct status_row {
    const char *node;
    int answered;
    int statuscode;
    const char *statusmsg;
    json_t *data;              /* the action's outputs */
};

void status_render_table(FILE *out, const struct status_row *rows, size_t n, time_t now,
                         const struct term_style *st);
void status_render_json(FILE *out, const struct status_row *rows, size_t n);
void status_render_actions(FILE *out, const struct status_row *rows, size_t n, const char *done,
                           const struct term_style *st);

/* "never", "12s ago", "5m 3s ago", "2h 10m ago", "3d 4h ago". */
void status_age(long long lastrun, time_t now, char *buf, size_t size);

#endif
