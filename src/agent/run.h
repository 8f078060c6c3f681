/* run.h - the one Puppet run a node may have going, owned by choird but
 * able to outlive it (PROTOCOL.md §5 runonce, docs/protocol.md §11).
 *
 * Contract:
 * - run_start spawns a *keeper*: a forked process in a session of its own
 *   that closes every inherited descriptor, forks the run's command (argv,
 *   execvp, no shell) with stdin /dev/null and stdout+stderr appended to
 *   STATE_DIR/run.log, waits for it and writes "EXIT SIGNAL\n" to
 *   STATE_DIR/run.exit (atomically) before it exits.  choird itself
 *   records the run in STATE_DIR/run.json (atomically) before run_start
 *   returns.  Because nothing of choird is shared with the keeper, a run
 *   goes on when choird stops or dies; with systemd the unit needs
 *   KillMode=process.
 * - run_mgr_open reads run.json: a run whose keeper is still alive (the
 *   pid AND its start time in /proc match, so a reused pid is not taken
 *   for it) is adopted: its output is read again from the start and its
 *   end is seen by polling.  A run that ended unreported is reported.
 * - run_mgr_poll is called from choird's loop: it hands new output bytes
 *   to the callback (at most RUN_READ_MAX bytes per call while the run is
 *   going, everything left once it ended) and returns RUN_ENDED on every
 *   call from the end of a run until run_mgr_mark_reported (the end is
 *   saved in run.json as soon as it is seen); the caller publishes the
 *   finished event and then marks it, which is persisted, so a run is
 *   reported until that succeeds (also after a restart) and never again.
 * - Only one run at a time: run_start refuses while one is going.
 * - A keeper that vanished without writing run.exit (killed) ends the run
 *   with exit code -1 and the reason in info.lost.
 * Errors are one line in err (class CHOIR_EXIT_INPUT for the state
 * directory, CHOIR_EXIT_INTERNAL for fork). */
#ifndef CHOIR_RUN_H
#define CHOIR_RUN_H

#include <stddef.h>
#include <sys/types.h>

#include "agent/runcmd.h"
#include "core/error.h"
#include "net/wire.h"

#define RUN_READ_MAX (256 * 1024)
#define RUN_STATE_MAX (64 * 1024)   /* largest run.json read */
#define RUN_COMMAND_SHOWN 1024

/* RUN_MORE: going, and more output was waiting than one poll reads. */
enum run_poll { RUN_IDLE, RUN_GOING, RUN_MORE, RUN_ENDED };

struct run_info {
    char run_id[WIRE_REQUESTID_LEN + 1];   /* 32 hex, the events' request id */
    char job_id[RUNCMD_JOB_ID_MAX + 1];
    char command[RUN_COMMAND_SHOWN];
    int carries_job_id;                    /* the command passed the job id */
    pid_t keeper;
    unsigned long long keeper_start;       /* /proc/PID/stat starttime */
    long long started_ms;                  /* wall clock, ms since the epoch */
    long long ended_ms;                    /* 0 while going */
    int exit_code;                         /* -1: killed by a signal or lost */
    int signal;
    int adopted;                           /* taken over from an earlier choird */
    int reported;
    char lost[128];                        /* why the end is unknown, or "" */
};

typedef void run_output_fn(void *ctx, const char *buf, size_t len);

struct run_mgr;

/* Creates STATE_DIR (0700) when missing and adopts what run.json holds. */
int run_mgr_open(struct run_mgr **out, const char *state_dir, struct choir_error *err);
void run_mgr_free(struct run_mgr *m);

/* The current or last run, NULL when there never was one. */
const struct run_info *run_mgr_info(const struct run_mgr *m);
/* True while a run is going (not ended). */
int run_mgr_busy(const struct run_mgr *m);
/* True when a run ended and is not yet reported. */
int run_mgr_unreported(const struct run_mgr *m);

/* Starts argv for job_id; info is then the new run's. */
int run_start(struct run_mgr *m, char *const *argv, const char *job_id, int carries_job_id,
              struct choir_error *err);
enum run_poll run_mgr_poll(struct run_mgr *m, run_output_fn *out, void *ctx);
int run_mgr_mark_reported(struct run_mgr *m, struct choir_error *err);

/* The starttime field of /proc/PID/stat, 0 when the process is gone or a
 * zombie. */
unsigned long long run_proc_start(pid_t pid);

#endif
