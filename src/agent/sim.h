/* sim.h - `choird --simulate N`: N fake nodes served from one process,
 * so the console can be tested and benchmarked against 10,000 nodes on
 * one machine (docs/operator-guide.md "Simulated nodes").
 *
 * Contract:
 * - Identities are sim-00001 ... sim-N (N <= SIM_MAX).  Each answers with
 *   its own certificate, <ssldir>/certs/sim-NNNNN.pem, issued by the
 *   Puppet CA for THIS process's key (security_identity_open); it is
 *   loaded and checked the first time the identity answers, and sim_open
 *   checks the first and the last one at start-up.
 * - Each node has real Puppet files under <run.state_dir>/sim/<name>/
 *   (puppet_paths_from_dir layout, made when first needed): disable,
 *   enable and status use the same code as a real node, and a finished run
 *   writes last_run_summary.yaml and last_run_report.yaml (with the job
 *   id) that last_run_summary / last_run_report read back.
 * - runonce takes the same inputs and refusals as a real node; a run
 *   lasts a uniformly random time in [dur_min_ms, dur_max_ms], fails with
 *   probability fail_rate (exit 6, one failed resource; else exit 2, one
 *   changed resource; noop: exit 0, nothing changed), streams a started,
 *   an output and a finished event (the verdict from the files it wrote,
 *   by runner_judge), signed as that node.
 * - Runs do not outlive the process, and a finished event that cannot be
 *   published is logged and dropped (real nodes keep them: run.h).
 * - The random generator is seeded from sim_opts.seed (0: the time), so a
 *   benchmark can repeat a run of failures. */
#ifndef CHOIR_SIM_H
#define CHOIR_SIM_H

#include <stddef.h>

#include "core/config.h"
#include "core/error.h"
#include "net/rpc.h"
#include "net/security.h"

#define SIM_MAX 99999
#define SIM_PREFIX "sim-"

struct sim_opts {
    size_t count;
    long dur_min_ms, dur_max_ms;
    double fail_rate;
    unsigned long seed;
};

struct sim;

/* srv is where events go (its bus and security); names are for bus_serve_many. */
int sim_open(struct sim **out, const struct sim_opts *o, const char *state_dir,
             struct security *sec, struct rpc_server *srv, struct choir_error *err);
void sim_free(struct sim *s);
const char *const *sim_names(const struct sim *s);
size_t sim_count(const struct sim *s);

/* For struct rpc_server: identity lookup and the request handler (ctx =
 * the identity's node). */
rpc_identity_find_fn sim_identity_find;
rpc_identity_at_fn sim_identity_at;
rpc_handler_fn sim_handle;

/* Ends the runs that are due; ms until the next one (-1: none going). */
long sim_tick(struct sim *s);

/* Parses "MIN:MAX" seconds (decimals allowed) into ms; -1 with why. */
int sim_parse_duration(const char *text, long *min_ms, long *max_ms, char *why, size_t n);

#endif
