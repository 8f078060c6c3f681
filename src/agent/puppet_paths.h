/* puppet_paths.h - where Puppet keeps the files choird reads and writes.
 *
 * Contract: a struct puppet_paths holds five absolute paths, each a heap
 * string or NULL while unknown:
 *
 *   lastrunfile                 last_run_summary.yaml
 *   lastrunreport               last_run_report.yaml
 *   agent_catalog_run_lockfile  pid of the agent applying a catalog
 *   agent_disabled_lockfile     {"disabled_message": "..."} while disabled
 *   pidfile                     pid of the agent daemon
 *
 * They come from three places, strongest last:
 *   1. puppet_paths_discover: runs `puppet config print <the five names>
 *      --section agent` once, without a shell, with a bounded output and a
 *      timeout, and parses its `name = value` lines (on Debian's Puppet
 *      7.23 this takes about 1.2 s of Ruby start-up, so choird does it once
 *      at start, and not at all when the configuration names every path);
 *   2. puppet_paths_from_dir: Puppet's default layout under a vardir, a
 *      rundir and a publicdir (tests, and hosts without Puppet installed);
 *   3. puppet_paths_set: one path by its Puppet setting name, for choird's
 *      configuration keys puppet.lastrunfile, puppet.lastrunreport,
 *      puppet.agent_catalog_run_lockfile, puppet.agent_disabled_lockfile and
 *      puppet.pidfile, which override what discovery found.
 *
 * The discovery command is `puppet` found in PATH (then
 * /opt/puppetlabs/bin/puppet) unless CHOIR_PUPPET names the program;
 * CHOIR_PUPPET_ARGS adds whitespace-separated arguments after
 * `--section agent` (e.g. "--confdir /x/conf --vardir /x/var"; no quoting,
 * so no spaces inside one argument).  The puppet_paths_discover_cmd form
 * takes both explicitly.  Errors fill a struct choir_error (class
 * CHOIR_EXIT_INPUT) and leave the struct as it was. */
#ifndef CHOIR_PUPPET_PATHS_H
#define CHOIR_PUPPET_PATHS_H

#include <stddef.h>

#include "core/error.h"

/* The setting names, in the order of struct puppet_paths. */
#define PUPPET_PATHS_SETTINGS(X)                                                   \
    X(lastrunfile)                                                                 \
    X(lastrunreport)                                                               \
    X(agent_catalog_run_lockfile)                                                  \
    X(agent_disabled_lockfile)                                                     \
    X(pidfile)

struct puppet_paths {
#define PUPPET_PATHS_FIELD(name) char *name;
    PUPPET_PATHS_SETTINGS(PUPPET_PATHS_FIELD)
#undef PUPPET_PATHS_FIELD
};

#define PUPPET_PATHS_COUNT 5
#define PUPPET_PATHS_TIMEOUT_MS 30000      /* default limit for `puppet config print` */
#define PUPPET_PATHS_MAX_OUTPUT (64 * 1024) /* bytes of its stdout we accept */
#define PUPPET_PATHS_MAX_PATH 4095

void puppet_paths_init(struct puppet_paths *p);
void puppet_paths_done(struct puppet_paths *p);

/* Setting names by index 0..PUPPET_PATHS_COUNT-1, and the field of one. */
const char *puppet_paths_name(size_t i);
const char *puppet_paths_get(const struct puppet_paths *p, size_t i);

/* Sets one path by setting name; it must be absolute and at most
 * PUPPET_PATHS_MAX_PATH bytes.  An unknown name is an error. */
int puppet_paths_set(struct puppet_paths *p, const char *name, const char *value,
                     struct choir_error *err);

/* True when all five paths are known. */
int puppet_paths_complete(const struct puppet_paths *p);

/* Puppet's default layout: VARDIR/state/{agent_catalog_run.lock,
 * agent_disabled.lock,last_run_report.yaml}, RUNDIR/agent.pid and
 * PUBLICDIR/last_run_summary.yaml (PUBLICDIR NULL: VARDIR/public, as in
 * Puppet 7; Puppet <= 6 kept the summary in VARDIR/state). */
int puppet_paths_from_dir(struct puppet_paths *p, const char *vardir, const char *rundir,
                          const char *publicdir, struct choir_error *err);

/* Discovery with CHOIR_PUPPET / CHOIR_PUPPET_ARGS and the default timeout. */
int puppet_paths_discover(struct puppet_paths *p, struct choir_error *err);

/* Discovery with an explicit program (NULL: the default search) and extra
 * arguments (NULL-terminated, may be NULL). */
int puppet_paths_discover_cmd(struct puppet_paths *p, const char *program,
                              const char *const *extra, int timeout_ms, struct choir_error *err);

/* Parses `puppet config print` output: `name = value` lines; other lines
 * and unknown names are ignored; every one of the five must appear with an
 * absolute path.  Exposed for tests and fuzzing. */
int puppet_paths_parse(struct puppet_paths *p, const char *out, size_t len,
                       struct choir_error *err);

#endif
