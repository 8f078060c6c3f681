/* choird.c - the node daemon: argument parsing and wiring only.  The
 * serving loop is agent/daemon.c. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "agent/daemon.h"
#include "core/config.h"
#include "core/error.h"

static const char usage[] =
    "usage: choird [--config FILE] [--foreground] [--check-config]\n"
    "       choird --simulate N [--sim-duration MIN:MAX] [--sim-fail RATE] [--sim-seed S] ...\n"
    "\n"
    "The choir node daemon: serves the puppet agent's status, enable, disable,\n"
    "runonce, last_run_summary and last_run_report actions over the RabbitMQ bus\n"
    "until SIGTERM, SIGINT or SIGHUP.  runonce starts run.command and streams\n"
    "the run's output and verdict as signed events; a run outlives a restart.\n"
    "\n"
    "  --config FILE    read FILE after /etc/choir/choird.conf\n"
    "  --foreground     stay in the foreground, log to stderr\n"
    "  --check-config   load the configuration, print it, and exit\n"
    "  --simulate N     serve N simulated nodes sim-00001...: same protocol, locks,\n"
    "                   events and reports, no Puppet (certificates: choird(8))\n"
    "  --sim-duration MIN:MAX  seconds a simulated run lasts (default 2:10)\n"
    "  --sim-fail RATE  share of simulated runs that fail, 0 to 1 (default 0)\n"
    "  --sim-seed S     seed of the simulation's random numbers (default: the time)\n"
    "  --version        print the version\n"
    "\n"
    "Exit codes: 0 stopped by SIGTERM/SIGINT or --check-config ok, 2 bad\n"
    "configuration or usage, 4 could not reach the broker at start-up, 70 internal error.\n";

static int check_config(const char *file)
{
    struct choir_error err = {0};
    struct config *cfg = config_new(CONFIG_CHOIRD);
    int rc = CHOIR_EXIT_OK;

    if (config_load_standard(cfg, file, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        rc = err.code;
    } else {
        for (size_t i = 0; i < config_key_count(); i++) {
            const struct config_key *k = config_key_at(i);

            if (k->programs & (1u << CONFIG_CHOIRD)) {
                const char *v = config_get(cfg, k->name);

                printf("%s = %s\t# %s\n", k->name, v ? v : "(unset)", config_origin(cfg, k->name));
            }
        }
    }
    config_free(cfg);
    return rc;
}

static int serve(const char *file, const struct daemon_opts *opts)
{
    struct choir_error err = {0};
    struct config *cfg = config_new(CONFIG_CHOIRD);
    int rc = CHOIR_EXIT_OK;

    if (config_load_standard(cfg, file, &err) < 0 || daemon_run(cfg, opts, &err) < 0) {
        fprintf(stderr, "choird: %s\n", err.msg);
        rc = err.code ? (int)err.code : CHOIR_EXIT_INTERNAL;
    }
    config_free(cfg);
    return rc;
}

static int bad_value(const char *option, const char *why)
{
    fprintf(stderr, "choird: %s: %s (see 'choird --help')\n", option, why);
    return CHOIR_EXIT_INPUT;
}

/* One simulation option; 0, or an exit code. */
static int sim_option(int c, const char *arg, struct sim_opts *o)
{
    char why[160], *end;
    double rate;

    errno = 0;
    switch (c) {
    case 'S':
        o->count = (size_t)strtoul(arg, &end, 10);
        if (*end || errno || !isdigit((unsigned char)arg[0]) || o->count < 1 || o->count > SIM_MAX) {
            snprintf(why, sizeof(why), "\"%s\" is not a number of nodes from 1 to %d", arg, SIM_MAX);
            return bad_value("--simulate", why);
        }
        return 0;
    case 'D':
        return sim_parse_duration(arg, &o->dur_min_ms, &o->dur_max_ms, why, sizeof(why)) < 0
                   ? bad_value("--sim-duration", why) : 0;
    case 'F':
        rate = strtod(arg, &end);
        if (end == arg || *end || !(rate >= 0 && rate <= 1))
            return bad_value("--sim-fail", "give a rate from 0 to 1, such as 0.05");
        o->fail_rate = rate;
        return 0;
    default:
        o->seed = strtoul(arg, &end, 10);
        return *end || !isdigit((unsigned char)arg[0]) || errno ? bad_value("--sim-seed", "give a whole number") : 0;
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"foreground", no_argument, NULL, 'f'},
        {"check-config", no_argument, NULL, 'C'},
        {"simulate", required_argument, NULL, 'S'},
        {"sim-duration", required_argument, NULL, 'D'},
        {"sim-fail", required_argument, NULL, 'F'},
        {"sim-seed", required_argument, NULL, 'R'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL;
    struct daemon_opts dopts = {0, {0, 2000, 10000, 0.0, 0}};
    int c, check = 0, sim_flags = 0, rc;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 'f': dopts.foreground = 1; break;
        case 'S': case 'D': case 'F': case 'R':
            if ((rc = sim_option(c, optarg, &dopts.sim)) != 0)
                return rc;
            sim_flags |= c != 'S';
            break;
        case 'C': check = 1; break;
        case 'V': printf("choird %s\n", CHOIR_VERSION); return CHOIR_EXIT_OK;
        case 'h': fputs(usage, stdout); return CHOIR_EXIT_OK;
        default:
            fprintf(stderr, "choird: bad option %s (see 'choird --help')\n", argv[optind - 1]);
            return CHOIR_EXIT_INPUT;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "choird: unexpected argument %s (see 'choird --help')\n", argv[optind]);
        return CHOIR_EXIT_INPUT;
    }
    if (sim_flags && !dopts.sim.count)
        return bad_value("--sim-duration/--sim-fail/--sim-seed", "they need --simulate N");
    return check ? check_config(file) : serve(file, &dopts);
}
