/* daemon.h - choird's serving loop.
 *
 * Contract: daemon_run opens the node's security context (its own Puppet
 * certificate; identity = puppet.certname), the Puppet paths (from the
 * puppet.* path keys when all five are set, else one `puppet config print`
 * with the configured ones on top), and the bus; then serves the `puppet`
 * agent until SIGTERM, SIGINT or SIGHUP, after which it closes cleanly and
 * returns 0.  A lost broker connection is reconnected with backoff for as
 * long as it takes, in attempts of a few seconds so a signal is honoured
 * promptly.  Every start, connection, rejection (with its reason) and
 * served action is logged, to stderr or syslog (`log`).  Failures to start
 * return -1 with err (class CHOIR_EXIT_INPUT for configuration,
 * CHOIR_EXIT_SERVER for the broker).  With opts->sim.count it serves the
 * simulated nodes of sim.h instead of this node, as the identity
 * puppet.certname's key holder, with one node queue for all of them. */
#ifndef CHOIR_DAEMON_H
#define CHOIR_DAEMON_H

#include "agent/sim.h"
#include "core/config.h"
#include "core/error.h"

struct daemon_opts {
    int foreground;
    struct sim_opts sim;         /* sim.count > 0: choird --simulate (sim.h) */
};

int daemon_run(const struct config *cfg, const struct daemon_opts *opts, struct choir_error *err);

#endif
