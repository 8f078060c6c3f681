/* daemon.c - see daemon.h. */
#include "agent/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "agent/puppet_paths.h"
#include "agent/puppet_state.h"
#include "agent/runner.h"
#include "net/netconf.h"
#include "net/rpc.h"

static const char *const daemon_agents[] = {"puppet"};

struct daemon {
    const char *identity;
    int use_syslog;
    struct puppet_paths paths;
    struct puppet_agent agent;
    struct runner *runner;
    struct sim *sim;
    struct security *sec;
    struct bus *bus;
    struct rpc_server srv;
};

static volatile sig_atomic_t daemon_stop;

static void daemon_on_signal(int sig)
{
    daemon_stop = sig;
}

__attribute__((format(printf, 2, 3)))
static void daemon_log(struct daemon *d, const char *fmt, ...)
{
    char line[1200], stamp[32];
    time_t now = time(NULL);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (d->use_syslog) {
        syslog(LOG_INFO, "%s", line);
        return;
    }
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S%z", localtime(&now));
    fprintf(stderr, "%s choird[%ld]: %s\n", stamp, (long)getpid(), line);
}

static void daemon_log_line(void *ctx, const char *line)
{
    daemon_log(ctx, "%s", line);
}

static void daemon_handle(void *ctx, const char *caller, const char *agent, const char *action,
                          json_t *data, json_t **out, int *statuscode, char *statusmsg,
                          size_t msgsize)
{
    struct daemon *d = ctx;

    if (strcmp(agent, "puppet") != 0) {
        *statuscode = RPC_UNKNOWN_ACTION;
        snprintf(statusmsg, msgsize, "unknown agent %s", agent);
        return;
    }
    agent_puppet_call(&d->agent, action, data, out, statuscode, statusmsg, msgsize);
    daemon_log(d, "%s called puppet.%s: %d %s", caller, action, *statuscode, statusmsg);
}

static const char *const daemon_path_keys[][2] = {
    {"puppet.lastrunfile", "lastrunfile"},
    {"puppet.lastrunreport", "lastrunreport"},
    {"puppet.agent_catalog_run_lockfile", "agent_catalog_run_lockfile"},
    {"puppet.agent_disabled_lockfile", "agent_disabled_lockfile"},
    {"puppet.pidfile", "pidfile"},
};

/* Configured paths win; Puppet is asked only when one is missing. */
static int daemon_paths(struct daemon *d, const struct config *cfg, struct choir_error *err)
{
    size_t n = sizeof(daemon_path_keys) / sizeof(daemon_path_keys[0]), set = 0;

    puppet_paths_init(&d->paths);
    for (size_t i = 0; i < n; i++)
        set += config_get(cfg, daemon_path_keys[i][0]) != NULL;
    if (set < n) {
        const char *cmd = config_get(cfg, "puppet.command");
        int rc = cmd ? puppet_paths_discover_cmd(&d->paths, cmd, NULL, 30000, err)
                     : puppet_paths_discover(&d->paths, err);

        if (rc < 0)
            return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = config_get(cfg, daemon_path_keys[i][0]);

        if (v && puppet_paths_set(&d->paths, daemon_path_keys[i][1], v, err) < 0)
            return -1;
    }
    return 0;
}

static int daemon_publish(void *ctx, const char *run_id, const char *job_id, const json_t *event,
                          struct choir_error *err)
{
    struct daemon *d = ctx;

    return d->bus ? rpc_publish_event(&d->srv, NULL, NULL, run_id, job_id, event, err) : -1;
}

static int daemon_runner(struct daemon *d, const struct config *cfg, struct choir_error *err)
{
    struct runner_config rc = {
        .paths = &d->paths,
        .state_dir = config_get(cfg, "run.state_dir"),
        .command = config_get(cfg, "run.command"),
        .rate = (size_t)config_get_int(cfg, "run.output_rate"),
        .publish = daemon_publish,
        .log = daemon_log_line,
        .ctx = d,
    };

    if (runner_open(&d->runner, &rc, err) < 0)
        return -1;
    d->agent = (struct puppet_agent){&d->paths, runner_runonce, runner_running, d->runner};
    return 0;
}

/* The simulated nodes answer for themselves (sim.h). */
static int daemon_sim(struct daemon *d, const struct config *cfg, const struct sim_opts *o,
                      struct choir_error *err)
{
    if (sim_open(&d->sim, o, config_get(cfg, "run.state_dir"), d->sec, &d->srv, err) < 0)
        return -1;
    d->srv.handle = sim_handle;
    d->srv.nidentities = sim_count(d->sim);
    d->srv.identity_find = sim_identity_find;
    d->srv.identity_at = sim_identity_at;
    d->srv.identities_ctx = d->sim;
    return 0;
}

static int daemon_serve(struct daemon *d, struct choir_error *err)
{
    int rc = d->sim ? bus_serve_many(d->bus, d->identity, sim_names(d->sim), sim_count(d->sim),
                                     daemon_agents, 1, err)
                    : bus_serve(d->bus, d->identity, daemon_agents, 1, err);

    if (rc != 0)
        err->code = CHOIR_EXIT_SERVER;
    return rc;
}

static int daemon_open(struct daemon *d, const struct config *cfg,
                       const struct daemon_opts *opts, struct choir_error *err)
{
    struct netconf nc;

    netconf_init(&nc, cfg, d->identity);
    if (security_open(&d->sec, &nc.sec, err) < 0)
        return -1;
    d->srv = (struct rpc_server){
        .sec = d->sec, .identity = d->identity, .agents = daemon_agents, .nagents = 1,
        .handle = daemon_handle, .ctx = d, .log = daemon_log_line,
    };
    if (opts->sim.count ? daemon_sim(d, cfg, &opts->sim, err) < 0
                        : daemon_paths(d, cfg, err) < 0 || daemon_runner(d, cfg, err) < 0)
        return -1;
    if (bus_open(&d->bus, &nc.bus, err) < 0) {
        err->code = CHOIR_EXIT_SERVER;
        return -1;
    }
    d->srv.bus = d->bus;
    if (daemon_serve(d, err) < 0)
        return -1;
    if (d->sim)
        daemon_log(d, "serving puppet as %zu simulated nodes (%s ... %s) on %s", sim_count(d->sim),
                   sim_names(d->sim)[0], sim_names(d->sim)[sim_count(d->sim) - 1],
                   bus_broker(d->bus));
    else
        daemon_log(d, "serving puppet as %s on %s", d->identity, bus_broker(d->bus));
    return 0;
}

static long daemon_tick(struct daemon *d)
{
    return d->sim ? sim_tick(d->sim) : runner_tick(d->runner);
}

static void daemon_reconnect(struct daemon *d)
{
    struct choir_error err = {0};

    while (!daemon_stop && bus_reconnect(d->bus, &err) < 0)
        daemon_log(d, "still no broker: %s", err.msg);
    if (!daemon_stop)
        daemon_log(d, "reconnected to %s", bus_broker(d->bus));
}

static void daemon_loop(struct daemon *d)
{
    long wait = daemon_tick(d);

    while (!daemon_stop) {
        struct bus_message m = {0};
        struct choir_error err = {0};
        int r = bus_receive(d->bus, &m, wait < 0 || wait > 1000 ? 1000 : (int)wait, &err);

        if (r == 1)
            r = rpc_serve_one(&d->srv, &m, &err);
        bus_message_clear(&m);
        if (r == BUS_LOST || (r < 0 && !bus_connected(d->bus))) {
            daemon_log(d, "lost the broker: %s", err.msg);
            daemon_reconnect(d);
        } else if (r < 0) {
            daemon_log(d, "%s", err.msg);
        }
        wait = daemon_tick(d);
    }
}

static void daemon_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = daemon_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int daemon_run(const struct config *cfg, const struct daemon_opts *opts, struct choir_error *err)
{
    struct daemon d = {.identity = config_get(cfg, "puppet.certname")};
    const char *log = config_get(cfg, "log");
    int rc = 0;

    d.use_syslog = strcmp(log, "syslog") == 0 || (strcmp(log, "auto") == 0 && !opts->foreground);
    if (d.use_syslog)
        openlog("choird", LOG_PID, LOG_DAEMON);
    daemon_signals();
    if (daemon_open(&d, cfg, opts, err) < 0) {
        rc = -1;
    } else {
        daemon_loop(&d);
        daemon_log(&d, "stopping on signal %d: served %lu, rejected %lu, dropped %lu oversized",
                   (int)daemon_stop, d.srv.served, d.srv.rejected, bus_dropped_count(d.bus));
    }
    runner_free(d.runner);
    sim_free(d.sim);
    bus_free(d.bus);
    security_free(d.sec);
    puppet_paths_done(&d.paths);
    if (d.use_syslog)
        closelog();
    return rc;
}
