/* ctl.h - the control socket of a running job: `choir ctl JOB pause` from
 * a second terminal or a script steers the job like the keys do.
 *
 * Contract:
 * - One Unix stream socket per job, at ctl_path(job): in a directory of
 *   mode 0700 owned by the user ($XDG_RUNTIME_DIR/choir/, else
 *   /tmp/choir-UID/, created when missing; an existing directory owned by
 *   someone else or open to others is refused), the socket itself 0600.
 *   Only the same user may connect: the server checks SO_PEERCRED and
 *   answers anyone else "error: not allowed" and closes.
 * - Protocol: the client sends ONE line (at most CTL_LINE_MAX bytes with
 *   its '\n'): a command word and an optional argument ("pause",
 *   "resume", "abort", "retry", "skip NODE", "unlock", "status"); the
 *   server answers ONE line, "ok: ..." or "error: ...", and closes.
 * - The server never blocks its caller: ctl_server_poll does only
 *   non-blocking accept/read/write; a client that connects and says
 *   nothing, or a line that is too long or not text, is dropped after
 *   CTL_TIMEOUT_MS or at once, with an error line when possible.  At most
 *   CTL_CLIENTS_MAX connections are held; more are refused.
 * - The command callback gets the command, the argument ("" when none)
 *   and the actor ("user NAME (uid N, pid P)") and fills the reply line.
 * - ctl_server_close removes the socket file.  A stale socket file left by
 *   a crashed console is replaced when nothing listens on it; a live one
 *   is an error ("job J is already controlled by another console").
 * Errors are one line in err (class CHOIR_EXIT_INPUT). */
#ifndef CHOIR_CTL_H
#define CHOIR_CTL_H

#include <stddef.h>

#include "core/error.h"

#define CTL_LINE_MAX 512
#define CTL_TIMEOUT_MS 5000
#define CTL_CLIENTS_MAX 16

typedef void ctl_command_fn(void *ctx, const char *command, const char *arg, const char *actor,
                            char *reply, size_t reply_size);

struct ctl_server;

/* The socket path of a job (heap string), or NULL with err when it would
 * not fit in a sockaddr_un or the directory is unsafe. */
char *ctl_path(const char *job_id, struct choir_error *err);

int ctl_server_open(struct ctl_server **out, const char *job_id, ctl_command_fn *fn, void *ctx,
                    struct choir_error *err);
void ctl_server_close(struct ctl_server *s);
/* The descriptors to poll for POLLIN (the listening socket and the
 * clients): writes up to max into fds, returns how many. */
size_t ctl_server_fds(const struct ctl_server *s, int *fds, size_t max);
/* Accepts, reads, answers what is ready; call when a descriptor is
 * readable or at least every second (for the timeouts). */
void ctl_server_poll(struct ctl_server *s);

/* Client: sends one command line to job's socket and reads the answer
 * into reply.  0 with reply "ok: ..." or "error: ...", or -1 with err
 * (no such job running, permission, timeout). */
int ctl_send(const char *job_id, const char *line, char *reply, size_t reply_size,
             struct choir_error *err);

/* Tests only: the idle timeout of server clients and of ctl_send, in ms
 * (CTL_TIMEOUT_MS again when ms <= 0).  Applies to clients already held. */
void ctl_set_timeout_ms(int ms);

#endif
