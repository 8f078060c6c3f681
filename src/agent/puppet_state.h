/* puppet_state.h - the node side of the `puppet` agent's status, enable and
 * disable actions (PROTOCOL.md §5), as file-system logic over Puppet's own
 * lock, pid and summary files (struct puppet_paths).
 *
 * Contract (every function expects complete paths: puppet_paths_complete;
 * an unknown path reads as a missing file):
 * - status never fails: a missing, unreadable or malformed file gives the
 *   DDL defaults.  The facts:
 *     enabled         = the disabled lockfile does not exist (stat);
 *     disable_message = its {"disabled_message": "..."} text, "" when the
 *                       file is empty (Puppet 3), not JSON, or lacks the key;
 *     applying        = the catalog run lockfile holds a pid (1..INT_MAX)
 *                       that kill(pid, 0) finds alive (EPERM counts as
 *                       alive); a disabled agent can still be applying;
 *     daemon_present  = the pidfile holds a live pid, the same way;
 *     idling          = daemon_present && !applying;
 *     lastrun         = `time: last_run:` of the summary, 0 when unknown;
 *     since_lastrun   = now - lastrun (as the Choria agent computes it).
 *   status follows the Choria agent (puppet-agent 1.x/2.x): "disabled"
 *   beats "applying a catalog", which beats "idling", else "stopped".  The
 *   message says everything at once, e.g. "Currently disabled: deploying
 *   app1 (a catalog run is still applying); last completed run 2 minutes 5
 *   seconds ago".
 * - disable writes {"disabled_message":"..."} exactly as Puppet 7 does (no
 *   newline, mode 0644): a temporary file in the lockfile's directory,
 *   fsync, then link(2) so the lock appears whole and only if absent (an
 *   existing lock, also one Puppet created meanwhile, is never replaced);
 *   rename(2) is the fallback where hard links are not supported.  The
 *   lockfile's directory is created when missing (mode 01755 like Puppet's
 *   statedir, its missing parents 0755).
 * - enable unlinks the lockfile.
 * - agent_puppet_call is the RPC face: it checks the request's inputs
 *   against the action table (src/agent/validate.h rules, DDL lengths) and
 *   answers with a statuscode (PROTOCOL.md §3: 0 OK, 1 aborted, 2 unknown
 *   action, 3 missing data, 4 invalid data, 5 unknown error), a one-line
 *   statusmsg and a data object whose keys are the DDL's output names.
 *   Inputs the action does not declare (e.g. process_results) are ignored. */
#ifndef CHOIR_PUPPET_STATE_H
#define CHOIR_PUPPET_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "agent/puppet_paths.h"
#include "core/error.h"

/* The `status` output values, in precedence order. */
#define PUPPET_STATE_STATUSES(X)                                                   \
    X(PUPPET_STATE_DISABLED, "disabled")                                           \
    X(PUPPET_STATE_APPLYING, "applying a catalog")                                 \
    X(PUPPET_STATE_IDLING, "idling")                                               \
    X(PUPPET_STATE_STOPPED, "stopped")

enum puppet_state_status {
#define PUPPET_STATE_ENUM(name, text) name,
    PUPPET_STATE_STATUSES(PUPPET_STATE_ENUM)
#undef PUPPET_STATE_ENUM
};

#define PUPPET_STATE_DISABLE_MAX 120     /* the DDL maxlength of disable's message */
#define PUPPET_STATE_LOCK_MAX (64 * 1024) /* largest disabled lockfile read */
#define PUPPET_STATE_SHOWN_MAX 1024      /* bytes of a lock message reported */
#define PUPPET_STATE_SUMMARY_MAX (16 * 1024 * 1024)

/* Statuscodes of RPC replies (PROTOCOL.md §3). */
enum agent_statuscode {
    AGENT_OK = 0,
    AGENT_ABORTED = 1,
    AGENT_UNKNOWN_ACTION = 2,
    AGENT_MISSING_DATA = 3,
    AGENT_INVALID_DATA = 4,
    AGENT_UNKNOWN_ERROR = 5,
};

struct puppet_state_info {
    bool applying, idling, enabled, daemon_present;
    long long lastrun, since_lastrun;
    enum puppet_state_status status;
    char *disable_message; /* heap, "" when none */
    char *message;         /* heap */
};

/* The status text of s ("disabled", ...). */
const char *puppet_state_status_name(enum puppet_state_status s);

/* Fills info from the files at `now`; free with puppet_state_info_done. */
void puppet_state_status(const struct puppet_paths *p, time_t now,
                         struct puppet_state_info *info);
void puppet_state_info_done(struct puppet_state_info *info);
/* Marks info as applying (a run choird started) and words it again. */
void puppet_state_mark_applying(struct puppet_state_info *info);

/* The status action's data object (DDL output names). */
json_t *puppet_state_info_json(const struct puppet_state_info *info);

/* `time: last_run:` from a summary file, 0 when missing or unreadable.  A
 * minimal bounded line reader; libyaml replaces it later. */
long long puppet_state_lastrun(const char *summary_path);

/* The same over summary text in memory (tests and fuzzing). */
long long puppet_state_lastrun_text(const char *text, size_t len);

/* "1 hour 2 seconds": seconds as words, "0 seconds" for <= 0. */
void puppet_state_duration(long long seconds, char *buf, size_t n);

/* Results of disable and enable. */
#define PUPPET_STATE_DONE 0
#define PUPPET_STATE_ALREADY 1

/* Disables Puppet with message (written as given; validate first).
 * Returns PUPPET_STATE_DONE, PUPPET_STATE_ALREADY (lock present, nothing
 * changed), or -1 with err filled. */
int puppet_state_disable(const struct puppet_paths *p, const char *message,
                         struct choir_error *err);

/* Enables Puppet: PUPPET_STATE_DONE, PUPPET_STATE_ALREADY (no lock), or -1. */
int puppet_state_enable(const struct puppet_paths *p, struct choir_error *err);

/* Runs `action` with the request data (NULL = {}).  Always sets *data_out
 * to a new object (the caller json_decref()s it), *statuscode and
 * statusmsg ("OK" on success); returns *statuscode. */
/* What agent_puppet_call serves with.  runonce gets the checked inputs
 * once Puppet is neither disabled nor applying; running tells the job id
 * of the run choird has going (NULL: none), which status reports as
 * applying (with the output "job_id") even when the command, like
 * `puppet apply`, takes no catalog run lock. */
typedef int agent_runonce_fn(void *ctx, json_t *in, json_t *out, char *msg, size_t n);
typedef const char *agent_running_fn(void *ctx);

struct puppet_agent {
    const struct puppet_paths *paths;
    agent_runonce_fn *runonce;    /* NULL: runonce is refused */
    agent_running_fn *running;    /* NULL: no runs of choird's own */
    void *ctx;
};

int agent_puppet_call(const struct puppet_agent *a, const char *action, json_t *data_in,
                      json_t **data_out, int *statuscode, char *statusmsg, size_t n);

#endif
