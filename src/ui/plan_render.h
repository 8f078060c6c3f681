/* plan_render.h - the two faces of `choir plan`.
 *
 * Contract: plan_render_text writes the 2016 `mco choria plan` layout
 * (title with the environment, "N applications on M managed nodes", the
 * application list, then "Node groups and run order" with each node's
 * "App -> Component, ..." lines), styled by `st`.  plan_render_json writes
 * exactly one JSON object (schema in docs/protocol.md):
 *   {"environment", "instance", "applications", "nodes",
 *    "groups": [{"group", "batches", "nodes": [{"name", "components"}]}]}
 * Both return 0, or -1 when writing failed (errno set). */
#ifndef CHOIR_PLAN_RENDER_H
#define CHOIR_PLAN_RENDER_H

#include <stdio.h>

#include "core/plan.h"
#include "ui/term.h"

int plan_render_text(FILE *out, const struct plan *plan, const struct term_style *st);
int plan_render_json(FILE *out, const struct plan *plan);

#endif
