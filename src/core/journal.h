/* journal.h - the job journal: SQLite (WAL), so a console that dies can be
 * resumed and every job can be shown afterwards (DESIGN.md "Job
 * lifecycle" 7, docs/operator-guide.md "The journal").
 *
 * Contract:
 * - journal_open opens (creating when missing, mode 0600, its directory
 *   0700) the database at path, in WAL mode with synchronous=NORMAL, and
 *   creates or checks the schema (a schema_version it does not know is an
 *   error naming the file, never a silent upgrade).  A file that is not a
 *   journal is an error naming the file.  busy_timeout 5 s: `choir jobs`
 *   may read while a job writes.
 * - Writes are buffered: journal_job_put, journal_node_put and
 *   journal_event add to the current batch; journal_flush commits the
 *   batch in ONE transaction (the engine flushes before it shows a state,
 *   at most every few ms under load, so 10,000 nodes never mean 10,000
 *   fsyncs).  A put of the same job or node twice in a batch keeps the
 *   last.  Events keep their order; each gets the next seq of its job.
 * - Reads see only flushed data.  Lists come sorted: jobs by created time
 *   (newest first), nodes by (group, batch, name), events by seq.
 * - Strings are copied; structs returned are owned by the caller and freed
 *   with the matching *_free / *_clear.
 * - Errors: one line in err naming the file and SQLite's message
 *   ("journal /x/j.db: database is locked"), class CHOIR_EXIT_INPUT for a
 *   file that cannot be used, CHOIR_EXIT_INTERNAL for SQL failures. */
#ifndef CHOIR_JOURNAL_H
#define CHOIR_JOURNAL_H

#include <stddef.h>

#include "core/error.h"

#define JOURNAL_SCHEMA_VERSION 1
/* The longest string a put accepts (a plan, an event detail): 16 MiB. */
#define JOURNAL_TEXT_MAX (16u << 20)

struct journal_job {
    char *id;                /* the job id, [A-Za-z0-9_-]{1,64} */
    char *state;             /* job state name (job.h) */
    char *reason;            /* "" when none */
    char *caller;            /* certname of the operator */
    char *environment;
    char *plan;              /* JSON text: the plan and options, enough to resume */
    long long created_ms, updated_ms;
};

struct journal_node {
    char *job_id;
    char *node;
    int group, batch;        /* 0-based */
    char *state;             /* node state name (job.h) */
    char *reason;            /* "" when none */
    char *verdict;           /* verdict name, "" while none */
    char *run_id;            /* "" until a runonce was accepted */
    int exit_code;           /* -1 while unknown */
    int locked;              /* this job holds the node's Puppet lock */
    int attempts;            /* runonce requests accepted */
    char *failed;            /* JSON array text of failed resources, "[]" */
    long long started_ms, finished_ms;   /* 0 while unknown */
};

struct journal_event {
    char *job_id;
    long long seq;           /* 1, 2, ... per job */
    long long time_ms;
    char *actor;             /* "engine", or the certname/user of an operator */
    char *kind;              /* e.g. "job", "group", "node", "operator", "output" */
    char *node;              /* "" when not about one node */
    char *detail;            /* JSON object text */
};

struct journal;

int journal_open(struct journal **out, const char *path, struct choir_error *err);
void journal_close(struct journal *j);
const char *journal_path(const struct journal *j);

/* Buffered writes.  A put with a string over JOURNAL_TEXT_MAX is refused
 * (not buffered); the next journal_flush writes the rest of the batch and
 * then returns -1 naming the refused write.  NULL strings are stored as ""
 * (plan and detail as "{}", failed as "[]").  journal_close drops writes
 * that were not flushed.  A handle is used by one thread at a time. */
void journal_job_put(struct journal *j, const struct journal_job *job);
void journal_node_put(struct journal *j, const struct journal_node *node);
void journal_event(struct journal *j, const char *job_id, long long time_ms, const char *actor,
                   const char *kind, const char *node, const char *detail_json);
/* How many writes wait for the next flush. */
size_t journal_pending(const struct journal *j);
int journal_flush(struct journal *j, struct choir_error *err);

/* Reads.  A job that does not exist is an error "no job ID in FILE". */
int journal_jobs(struct journal *j, struct journal_job **out, size_t *n, struct choir_error *err);
int journal_job_get(struct journal *j, const char *id, struct journal_job *out,
                    struct choir_error *err);
int journal_nodes(struct journal *j, const char *id, struct journal_node **out, size_t *n,
                  struct choir_error *err);
/* Calls fn for every event of the job with seq > after, in order; fn
 * returns non-zero to stop.  ev and its strings live until fn returns; fn
 * may call other reads on the same handle. */
int journal_events(struct journal *j, const char *id, long long after,
                   int (*fn)(void *ctx, const struct journal_event *ev), void *ctx,
                   struct choir_error *err);

void journal_job_clear(struct journal_job *job);
void journal_jobs_free(struct journal_job *jobs, size_t n);
void journal_node_clear(struct journal_node *node);
void journal_nodes_free(struct journal_node *nodes, size_t n);

/* The default journal path: $XDG_STATE_HOME/choir/journal.db (when it is
 * absolute, as the XDG spec asks), else ~/.local/state/choir/journal.db
 * ($HOME, else the passwd entry); a heap string, NULL only when there is
 * no home directory at all. */
char *journal_default_path(void);

#endif
