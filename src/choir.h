/* choir.h - what the parts of the choir program (choir.c, choir_jobs.c)
 * share: option plumbing, error printing, the plan loader and the bus
 * connection of the fleet commands.  Program-internal: nothing in src/core,
 * src/net or src/ui includes it. */
#ifndef CHOIR_PROGRAM_H
#define CHOIR_PROGRAM_H

#include <stdint.h>

#include "core/config.h"
#include "core/error.h"
#include "core/plan.h"
#include "core/site.h"
#include "net/bus.h"
#include "net/rpc.h"
#include "net/security.h"
#include "ui/term.h"

/* Options every command shares, applied to the configuration as flags. */
struct flag {
    const char *key;           /* config key, or NULL */
    const char *option;        /* "--server" */
    const char *value;
};

struct cmdline {
    const char *config_file;
    struct flag flags[16];
    int nflags;
};

struct plan_args {
    struct cmdline cl;
    const char *site_file;
    int from_server;
    int json;
    struct plan_options opts;
};

/* The console's side of the bus: our certificate, the broker, a reply queue. */
struct fleet {
    struct config *cfg;
    struct security *sec;
    struct bus *bus;
    struct rpc_client client;
    struct term_style st;
};

/* Long options of the commands that load a plan (plan, run); the others
 * number theirs from 300 up. */
enum {
    OPT_SITE = 256, OPT_ENV, OPT_INSTANCE, OPT_BATCH, OPT_JSON, OPT_SERVER, OPT_SSLDIR,
    OPT_CERTNAME, OPT_CONFIG, OPT_COLOR, OPT_THEME, OPT_HELP,
};

/* Applies one plan or common flag (site, environment, instance, batch,
 * server, ssldir, certname, config, color, theme, or a missing value):
 * -1 to go on, an exit code, or PLAN_FLAG_OTHER when c is none of them. */
#define PLAN_FLAG_OTHER (-2)
int plan_flag(const char *cmd, int c, struct plan_args *a, char **argv);

/* Prints err and returns its exit code. */
int fail(const struct choir_error *err);
/* "choir CMD: ..." and the help hint on stderr; returns CHOIR_EXIT_INPUT. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cmdline_flag(struct cmdline *cl, const char *key, const char *option, const char *value);
struct config *load_config(const struct cmdline *cl, struct choir_error *err);
/* 1..max in decimal; -1 otherwise. */
int parse_count(const char *s, unsigned long max, uint32_t *out);
/* The site of a plan: --site FILE, stdin, or PuppetServer. */
int plan_load(const struct plan_args *a, const struct config *cfg, struct site **site,
              struct choir_error *err);
/* A job id nobody named: UTC time and 6 random hex digits. */
void make_job_id(char *buf, size_t size);
int fleet_open(struct fleet *f, const struct cmdline *cl, struct choir_error *err);
void fleet_close(struct fleet *f);

/* The job commands (choir_jobs.c). */
int cmd_run(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_ctl(int argc, char **argv);
int cmd_unlock(int argc, char **argv);

/* The console (choir_tui.c): whether run/resume use it (stdin and stdout
 * are terminals, no --json, no --no-tui), opening it with the
 * configuration's color, theme and tui.keys, following an engine in it
 * (closes it; the job's exit code, or CHOIR_EXIT_ABORTED when the operator
 * left a job that was not over), and `choir replay`. */
struct tui;
struct engine;
int console_wanted(int json, int no_tui);
int console_open(struct tui **out, const struct config *cfg, const struct theme *theme,
                 int exit_at_end, struct choir_error *err);
void console_close(struct tui **t);
int console_follow(struct tui *t, struct engine *e, const char *job_id,
                   const struct term_style *st);
int cmd_replay(int argc, char **argv);
int cmd_keys(int argc, char **argv);

#endif
