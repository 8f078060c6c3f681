/* model.h - the console's picture of a job, built from the job event
 * stream (docs/protocol.md §12).  No curses: the views (tui.h) draw it.
 *
 * Contract:
 * - model_apply takes the events in order (plan, job, preflight, step,
 *   node, output, operator, warning, report, result) and keeps: the job
 *   (id, state, reason, caller, environment, options, start, result), the
 *   nodes (name, applications, group, step, state, reason, verdict, lock,
 *   exit code, failed resources, the last UI_OUTPUT_MAX output lines with
 *   their level, the last report asked for, when the state last changed),
 *   per-group and job-wide counts by state, and the job log (job, step,
 *   operator, preflight, warning and result events as lines, the last
 *   UI_LOG_MAX of them).  A malformed event is counted and changes
 *   nothing; a node event for a node the plan did not name adds it.
 *   Applying many node events leaves each node in its latest state, with
 *   counts that always add up to the number of nodes.
 * - The tree (model_rows): application -> group -> batch -> node, in run
 *   order.  A node serving two applications appears under each, a node
 *   with none under "(no application)".  The batch of a node that ran is
 *   its step ("step 3"); of one that did not, its planned batch (chunks of
 *   options.batch in run order, "batch 2").  Header rows carry the counts
 *   of the nodes below them (after the filter).  Rows are rebuilt lazily
 *   when the structure changed (plan, step, filter, collapse); a state
 *   change only updates the counts of the rows above the node.
 * - The filter keeps nodes whose name contains the text (any case), or,
 *   when the text is a state name ("failed", "running", "ok", "locked"),
 *   the nodes in that state.
 * - dirty: what changed since the views last cleared it (MODEL_DIRTY_*);
 *   each node also has a serial that moves on every change to it, so a
 *   pane redraws only when its node changed. */
#ifndef CHOIR_UI_MODEL_H
#define CHOIR_UI_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/job.h"
#include "core/strtab.h"

#define UI_OUTPUT_MAX 200          /* output lines kept per node */
#define UI_LOG_MAX 10000           /* job log lines kept */
#define UI_LINE_MAX 1024           /* bytes kept of one line */
#define UI_NSTATES (NODE_SKIPPED + 1)
#define UI_NO_APP "(no application)"

/* Output levels, most severe last. */
#define UI_LEVELS(X)                \
    X(UI_LEVEL_OUTPUT, "output")    \
    X(UI_LEVEL_DEBUG, "debug")      \
    X(UI_LEVEL_INFO, "info")        \
    X(UI_LEVEL_NOTICE, "notice")    \
    X(UI_LEVEL_WARNING, "warning")  \
    X(UI_LEVEL_ERR, "err")

enum ui_level {
#define UI_LEVEL_ENUM(id, name) id,
    UI_LEVELS(UI_LEVEL_ENUM)
#undef UI_LEVEL_ENUM
};

enum model_dirty {
    MODEL_DIRTY_TITLE = 1 << 0,    /* job state, reason, options */
    MODEL_DIRTY_TREE = 1 << 1,     /* a node's row or counts */
    MODEL_DIRTY_ROWS = 1 << 2,     /* the tree's structure: rows must be rebuilt */
    MODEL_DIRTY_NODE = 1 << 3,     /* some node's details (see ui_node.serial) */
    MODEL_DIRTY_LOG = 1 << 4,      /* the job log */
    MODEL_DIRTY_REPORT = 1 << 5,   /* a report arrived */
    MODEL_DIRTY_MESSAGE = 1 << 6,  /* an operator reply or warning for the message line */
};

struct ui_line {
    long long time_ms;
    enum ui_level level;
    char *text;
};

/* The last `cap` lines: line i (0 = oldest kept) is ring_at(r, i). */
struct ui_ring {
    struct ui_line *lines;
    uint32_t cap, head, count;
    unsigned long total;           /* lines ever pushed */
    unsigned long skipped;         /* lines the node did not send (rate limit) */
};

struct ui_node {
    char *name;
    char *apps;                    /* ", "-joined, as in the plan event */
    uint32_t group, step, batch;   /* batch: planned, 0-based inside the group */
    uint32_t order;                /* run order */
    enum node_state state;
    char *reason, *verdict;
    int locked;
    int exit_code;                 /* -1: unknown */
    json_t *failed;                /* failed resource names, or NULL */
    long long started_ms, finished_ms;   /* event times, 0 = not yet */
    long long changed_at_ms;       /* model clock when the state last changed; 0 = never */
    struct ui_ring out;
    json_t *report;                /* the last "report" event, or NULL */
    long long report_ms;           /* model clock when it came */
    unsigned long serial;
};

enum ui_row_kind { UI_ROW_APP, UI_ROW_GROUP, UI_ROW_BATCH, UI_ROW_NODE };

#define UI_BATCH_PLANNED 0x80000000u   /* batch_key bit: a planned batch, not a step */

struct ui_row {
    enum ui_row_kind kind;
    uint32_t depth;
    uint32_t app;                  /* index in model->apps */
    uint32_t group;
    uint32_t batch_key;            /* step, or UI_BATCH_PLANNED | planned batch */
    uint32_t node;                 /* UI_ROW_NODE */
    uint32_t parent;               /* row index, UINT32_MAX at the top */
    uint32_t count[UI_NSTATES];    /* nodes below by state */
    uint32_t nodes;
    int collapsed;
};

struct ui_collapse {
    enum ui_row_kind kind;
    uint32_t app, group, batch_key;
};

struct ui_model {
    /* the job */
    char *job_id, *caller, *environment;
    enum job_state state;
    char *reason;
    json_t *options;               /* the plan event's options, or NULL */
    uint32_t batch_size;           /* options.batch */
    long long started_ms;          /* the plan event's time (or the first event's) */
    long long last_ms;             /* the latest event's time */
    json_t *result;                /* the result event, or NULL */
    int has_plan;
    /* nodes */
    struct ui_node *nodes;
    uint32_t nnodes, cap_nodes;
    struct strtab names;           /* name -> node index */
    uint32_t ngroups;
    uint32_t (*group_count)[UI_NSTATES];  /* per group */
    uint32_t count[UI_NSTATES];    /* the whole job */
    uint32_t locked;               /* nodes the job holds */
    /* applications: sorted names, then UI_NO_APP when a node has none */
    char **apps;
    uint32_t napps;
    uint32_t *node_apps_start;     /* node i serves apps node_apps[start[i] .. start[i+1]) */
    uint32_t *node_apps;
    /* the tree */
    struct ui_row *rows;
    uint32_t nrows, cap_rows;
    uint32_t *node_rows_start;     /* node i's rows: node_rows[start[i] .. start[i+1]) */
    uint32_t *node_rows;
    struct ui_collapse *collapsed;
    size_t ncollapsed;
    /* the filter */
    char filter[128];
    int filter_state;              /* -1: by name; else an enum node_state */
    int filter_locked;
    uint32_t visible;              /* nodes the filter keeps */
    /* the job log, and the latest line for the message area */
    struct ui_ring log;
    char message[UI_LINE_MAX];
    enum ui_level message_level;
    /* the latest operator event, and how many there were */
    unsigned long operators;
    char last_command[32];
    char last_reply[256];
    /* follow mode's target: the node that most recently started or failed */
    uint32_t last_active;
    /* bookkeeping */
    unsigned dirty;
    unsigned long events, bad_events;
};

void model_init(struct ui_model *m);
void model_done(struct ui_model *m);

/* Applies one event; now_ms is the model clock (flash timing, report
 * age).  0, or -1 for a malformed event (counted in bad_events). */
int model_apply(struct ui_model *m, const json_t *ev, long long now_ms);

/* The tree rows, rebuilt first when the structure changed. */
const struct ui_row *model_rows(struct ui_model *m, uint32_t *n);
/* The first row of node i (after model_rows), or UINT32_MAX when hidden. */
uint32_t model_node_row(const struct ui_model *m, uint32_t node);
/* Collapses or expands a header row (no effect on node rows). */
void model_toggle(struct ui_model *m, uint32_t row);

/* Sets the filter ("" = none); returns how many nodes it keeps. */
uint32_t model_set_filter(struct ui_model *m, const char *text);
int model_filter_keeps(const struct ui_model *m, const struct ui_node *n);

/* Node index by name, or -1. */
long model_find(const struct ui_model *m, const char *name);

/* Milliseconds since the job started: the result's elapsed_ms once there
 * is one, else now_ms - started_ms (now_ms: the job's clock). */
long long model_elapsed_ms(const struct ui_model *m, long long now_ms);
int model_final(const struct ui_model *m);

const struct ui_line *ring_at(const struct ui_ring *r, uint32_t i);
enum ui_level ui_level_parse(const char *name);
const char *ui_level_name(enum ui_level l);

#endif
