/* choird.c - the node daemon: argument parsing and wiring only.  The
 * serving loop is agent/daemon.c. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "agent/daemon.h"
#include "core/config.h"
#include "core/error.h"

static const char usage[] =
    "usage: choird [--config FILE] [--foreground] [--check-config]\n"
    "\n"
    "The choir node daemon: serves the puppet agent's status, enable, disable,\n"
    "last_run_summary and last_run_report actions over the RabbitMQ bus until\n"
    "SIGTERM, SIGINT or SIGHUP.\n"
    "\n"
    "  --config FILE    read FILE after /etc/choir/choird.conf\n"
    "  --foreground     stay in the foreground, log to stderr\n"
    "  --check-config   load the configuration, print it, and exit\n"
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

static int serve(const char *file, int foreground)
{
    struct choir_error err = {0};
    struct config *cfg = config_new(CONFIG_CHOIRD);
    struct daemon_opts opts = {foreground};
    int rc = CHOIR_EXIT_OK;

    if (config_load_standard(cfg, file, &err) < 0 || daemon_run(cfg, &opts, &err) < 0) {
        fprintf(stderr, "choird: %s\n", err.msg);
        rc = err.code ? (int)err.code : CHOIR_EXIT_INTERNAL;
    }
    config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"foreground", no_argument, NULL, 'f'},
        {"check-config", no_argument, NULL, 'C'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL;
    int c, check = 0, foreground = 0;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 'f': foreground = 1; break;
        case 'C': check = 1; break;
        case 'V': printf("choird %s\n", CHOIR_VERSION); return CHOIR_EXIT_OK;
        case 'h': fputs(usage, stdout); return CHOIR_EXIT_OK;
        default:
            fprintf(stderr, "choird: bad option %s (see 'choird --help')\n", argv[optind - 1]);
            return CHOIR_EXIT_INPUT;
        }
    }
    return check ? check_config(file) : serve(file, foreground);
}
