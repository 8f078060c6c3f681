/* choir.c - the operator's console: argument parsing and wiring only.
 *
 * Each subcommand parses its own options, loads the layered configuration
 * (flags win), calls into core/net/ui, and maps the error class to an exit
 * code (core/exitcode.h).  Nothing below main prints errors or exits. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "choir.h"
#include "core/config.h"
#include "core/error.h"
#include "core/names.h"
#include "core/plan.h"
#include "core/runonce.h"
#include "core/site.h"
#include "net/netconf.h"
#include "net/puppet_ca.h"
#include "net/puppet_http.h"
#include "net/rpc.h"
#include "ui/plan_render.h"
#include "ui/run_render.h"
#include "ui/status_render.h"
#include "ui/term.h"
#include "ui/theme.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static int cmd_plan(int argc, char **argv);
static int cmd_status(int argc, char **argv);
static int cmd_enable(int argc, char **argv);
static int cmd_disable(int argc, char **argv);
static int cmd_runonce(int argc, char **argv);
static int cmd_config(int argc, char **argv);
static int cmd_request_cert(int argc, char **argv);
static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct command commands[] = {
    {"plan", cmd_plan, "show the node groups and run order of a Puppet site"},
    {"status", cmd_status, "ask nodes for their Puppet agent status (all nodes when none is named)"},
    {"disable", cmd_disable, "disable the Puppet agent on nodes, with a message"},
    {"enable", cmd_enable, "enable the Puppet agent on nodes"},
    {"run", cmd_run, "run a site plan: preflight, lock, run the groups in order, with a journal"},
    {"resume", cmd_resume, "go on with a job from the journal (after a crash, an abort or a stop)"},
    {"jobs", cmd_jobs, "list the jobs in the journal"},
    {"show", cmd_show, "show one job's nodes: group, state, verdict, times, failed resources"},
    {"ctl", cmd_ctl, "steer a running job: pause, resume, abort, retry, skip NODE, unlock, status"},
    {"unlock", cmd_unlock, "enable Puppet again on the nodes a job still holds"},
    {"keys", cmd_keys, "print the console's keys as a table (README and help come from it)"},
    {"replay", cmd_replay, "show a recorded job (choir run --json output) in the console"},
    {"runonce", cmd_runonce, "run Puppet now on nodes and follow each run to its verdict"},
    {"config", cmd_config, "show the effective configuration and where each value comes from"},
    {"request-cert", cmd_request_cert, "get your certificate from the Puppet CA (key, request, wait for signing)"},
    {"help", cmd_help, "show this help, or a command's help"},
    {"version", cmd_version, "print the version"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char plan_usage[] =
    "usage: choir plan [--site FILE | --environment ENV] [--instance APP] [--batch N] [--json]\n"
    "                  [--server HOST[:PORT]] [--ssldir DIR] [--certname NAME]\n"
    "                  [--config FILE] [--color WHEN] [--theme NAME]\n"
    "\n"
    "Shows the node groups of a Puppet site in run order: every node of a group\n"
    "runs only after all the nodes it consumes capabilities from have run.\n"
    "\n"
    "  --site FILE          read the /puppet/v3/environment JSON from FILE ('-' = stdin)\n"
    "  --environment ENV    fetch it from PuppetServer (default: puppet.environment,\n"
    "                       production) over mutual TLS with the Puppet ssldir\n"
    "  --instance APP       plan one application instance only, e.g. 'Lamp[app1]'\n"
    "  --batch N            run at most N nodes of a group at a time\n"
    "  --json               print one JSON object (schema: docs/protocol.md)\n"
    "  --server HOST[:PORT] PuppetServer (puppet.server; default: SRV record\n"
    "                       _x-puppet._tcp.DOMAIN, then puppet:8140)\n"
    "  --ssldir DIR         Puppet ssldir (puppet.ssldir)\n"
    "  --certname NAME      our certificate name (puppet.certname)\n"
    "  --config FILE        read FILE after the system and user configuration\n"
    "  --color WHEN         auto, always or never (color)\n"
    "  --theme NAME         colour theme name or file (theme)\n";

static void print_exit_codes(FILE *out)
{
    fputs("Exit codes:\n", out);
    for (const struct exitcode_info *e = exitcode_table; e->name; e++)
        fprintf(out, "  %-3d %s\n", e->code, e->meaning);
}

static void print_usage(FILE *out)
{
    fputs("usage: choir COMMAND [OPTIONS]\n\n"
          "choir plans Puppet site deployments and steers the Puppet agents on the nodes.\n"
          "Commands:\n",
          out);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fputs("\n'choir COMMAND --help' shows a command's options; docs/ and choir(1) have the rest.\n"
          "Configuration: /etc/choir/choir.conf, ~/.config/choir/choir.conf, --config FILE,\n"
          "CHOIR_* environment variables; flags win (docs/configuration.md).\n\n",
          out);
    print_exit_codes(out);
}

int fail(const struct choir_error *err)
{
    fprintf(stderr, "%s\n", err->msg);
    return err->code ? (int)err->code : CHOIR_EXIT_INTERNAL;
}

int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "choir %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'choir %s --help')\n", cmd);
    return CHOIR_EXIT_INPUT;
}

void cmdline_flag(struct cmdline *cl, const char *key, const char *option, const char *value)
{
    if (cl->nflags < (int)(sizeof(cl->flags) / sizeof(cl->flags[0])))
        cl->flags[cl->nflags++] = (struct flag){key, option, value};
}

struct config *load_config(const struct cmdline *cl, struct choir_error *err)
{
    struct config *cfg = config_new(CONFIG_CHOIR);

    if (config_load_standard(cfg, cl->config_file, err) < 0)
        goto fail;
    for (int i = 0; i < cl->nflags; i++)
        if (config_set(cfg, cl->flags[i].key, cl->flags[i].value, CONFIG_SRC_FLAG,
                       cl->flags[i].option, err) < 0)
            goto fail;
    return cfg;
fail:
    config_free(cfg);
    return NULL;
}

int parse_count(const char *s, unsigned long max, uint32_t *out)
{
    char *end;
    unsigned long v;

    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v < 1 || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}


static const struct option plan_options_long[] = {
    {"site", required_argument, NULL, OPT_SITE},
    {"environment", required_argument, NULL, OPT_ENV},
    {"instance", required_argument, NULL, OPT_INSTANCE},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"json", no_argument, NULL, OPT_JSON},
    {"server", required_argument, NULL, OPT_SERVER},
    {"ssldir", required_argument, NULL, OPT_SSLDIR},
    {"certname", required_argument, NULL, OPT_CERTNAME},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"color", required_argument, NULL, OPT_COLOR},
    {"theme", required_argument, NULL, OPT_THEME},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};


/* Returns -1 to continue, or an exit code. */
int plan_flag(const char *cmd, int c, struct plan_args *a, char **argv)
{
    switch (c) {
    case OPT_SITE: a->site_file = optarg; return -1;
    case OPT_ENV: a->from_server = 1; cmdline_flag(&a->cl, "puppet.environment", "--environment", optarg); return -1;
    case OPT_INSTANCE: a->opts.instance = optarg; return -1;
    case OPT_BATCH:
        if (parse_count(optarg, 1000000, &a->opts.batch) < 0)
            return usage_error(cmd, "--batch: \"%s\" is not a number from 1 to 1000000", optarg);
        return -1;
    case OPT_SERVER: cmdline_flag(&a->cl, "puppet.server", "--server", optarg); return -1;
    case OPT_SSLDIR: cmdline_flag(&a->cl, "puppet.ssldir", "--ssldir", optarg); return -1;
    case OPT_CERTNAME: cmdline_flag(&a->cl, "puppet.certname", "--certname", optarg); return -1;
    case OPT_CONFIG: a->cl.config_file = optarg; return -1;
    case OPT_COLOR: cmdline_flag(&a->cl, "color", "--color", optarg); return -1;
    case OPT_THEME: cmdline_flag(&a->cl, "theme", "--theme", optarg); return -1;
    case ':': return usage_error(cmd, "%s needs a value", argv[optind - 1]);
    default: return PLAN_FLAG_OTHER;
    }
}

static int plan_parse_args(int argc, char **argv, struct plan_args *a)
{
    int c, rc;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", plan_options_long, NULL)) != -1) {
        if (c == OPT_JSON) {
            a->json = 1;
            continue;
        }
        if (c == OPT_HELP) {
            fputs(plan_usage, stdout);
            return CHOIR_EXIT_OK;
        }
        rc = plan_flag("plan", c, a, argv);
        if (rc == PLAN_FLAG_OTHER)
            return usage_error("plan", "unknown option %s", argv[optind - 1]);
        if (rc >= 0)
            return rc;
    }
    if (optind < argc)
        return usage_error("plan", "unexpected argument \"%s\"", argv[optind]);
    if (a->site_file && a->from_server)
        return usage_error("plan", "%s", "--site and --environment exclude each other");
    return -1;
}

static int plan_fetch(const struct config *cfg, struct site **site, struct choir_error *err)
{
    struct puppet_http_opts o = {
        .server = config_get(cfg, "puppet.server"),
        .srv_domain = config_get(cfg, "puppet.srv_domain"),
        .ssldir = config_get(cfg, "puppet.ssldir"),
        .certname = config_get(cfg, "puppet.certname"),
        .connect_timeout = config_get_int(cfg, "http.connect_timeout"),
        .timeout = config_get_int(cfg, "http.timeout"),
        .max_bytes = (size_t)config_get_int(cfg, "site.max_bytes"),
    };
    char url[1024], *body;
    size_t len;
    int rc;

    if (puppet_fetch_environment(&o, config_get(cfg, "puppet.environment"), &body, &len, url,
                                 sizeof(url), err) < 0)
        return -1;
    rc = site_parse(site, body, len, url, err);
    free(body);
    return rc;
}

int plan_load(const struct plan_args *a, const struct config *cfg, struct site **site,
                     struct choir_error *err)
{
    size_t max = (size_t)config_get_int(cfg, "site.max_bytes");

    if (!a->site_file)
        return plan_fetch(cfg, site, err);
    if (strcmp(a->site_file, "-") == 0)
        return site_load_file(site, "/dev/stdin", max, err);
    return site_load_file(site, a->site_file, max, err);
}

static int cmd_plan(int argc, char **argv)
{
    struct plan_args a = {0};
    struct choir_error err = {0};
    struct config *cfg;
    struct site *site = NULL;
    struct plan *plan = NULL;
    struct term_style st;
    struct theme theme;
    int rc = plan_parse_args(argc, argv, &a);

    if (rc >= 0)
        return rc;
    if (!(cfg = load_config(&a.cl, &err)))
        return fail(&err);
    if (theme_load(&theme, config_get(cfg, "theme"), &err) < 0 ||
        plan_load(&a, cfg, &site, &err) < 0 || plan_compute(&plan, site, &a.opts, &err) < 0) {
        rc = fail(&err);
    } else {
        term_style_init(&st, STDOUT_FILENO, config_get(cfg, "color"), &theme);
        rc = a.json ? plan_render_json(stdout, plan) : plan_render_text(stdout, plan, &st);
        if (rc < 0) {
            fprintf(stderr, "choir plan: writing the plan: %s\n", strerror(errno));
            rc = CHOIR_EXIT_INTERNAL;
        }
    }
    plan_free(plan);
    site_free(site);
    config_free(cfg);
    return rc;
}

/* ---- status, enable, disable ------------------------------------------ */

static const char fleet_usage[] =
    "usage: choir status [--json] [NODE ...]\n"
    "       choir disable [--message TEXT] NODE ...\n"
    "       choir enable NODE ...\n"
    "  common: [--config FILE] [--timeout SECONDS] [--color WHEN] [--theme NAME]\n"
    "\n"
    "Talks to choird on the nodes over the bus (bus.brokers), signed with your\n"
    "Puppet certificate.  status with no NODE asks every node (broadcast) and\n"
    "waits rpc.discovery_timeout seconds; with NODEs it waits for them, at most\n"
    "rpc.timeout seconds.  disable writes Puppet's own lock with the message, so\n"
    "Puppet itself refuses scheduled runs until enable.\n"
    "  --json          status: one JSON object per node per line\n"
    "  --message TEXT  disable: the reason shown to others (at most 120 characters)\n"
    "  --timeout S     seconds to wait for replies\n";

struct fleet_args {
    struct cmdline cl;
    int json;
    const char *message;
    long timeout;              /* 0: from the configuration */
    char **nodes;
    size_t nnodes;
};

enum { OPT_MESSAGE = 300, OPT_TIMEOUT };

static int fleet_parse_args(const char *cmd, int argc, char **argv, struct fleet_args *a)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"message", required_argument, NULL, OPT_MESSAGE},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"color", required_argument, NULL, OPT_COLOR},
        {"theme", required_argument, NULL, OPT_THEME},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    uint32_t t;
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: a->json = 1; break;
        case OPT_MESSAGE: a->message = optarg; break;
        case OPT_TIMEOUT:
            if (parse_count(optarg, 3600, &t) < 0)
                return usage_error(cmd, "--timeout: \"%s\" is not a number of seconds from 1 to 3600", optarg);
            a->timeout = t;
            break;
        case OPT_CONFIG: a->cl.config_file = optarg; break;
        case OPT_COLOR: cmdline_flag(&a->cl, "color", "--color", optarg); break;
        case OPT_THEME: cmdline_flag(&a->cl, "theme", "--theme", optarg); break;
        case OPT_HELP: fputs(fleet_usage, stdout); return CHOIR_EXIT_OK;
        case ':': return usage_error(cmd, "%s needs a value", argv[optind - 1]);
        default: return usage_error(cmd, "unknown option %s", argv[optind - 1]);
        }
    }
    if ((a->json && strcmp(cmd, "status") != 0) || (a->message && strcmp(cmd, "disable") != 0))
        return usage_error(cmd, "%s", a->json ? "--json is for status" : "--message is for disable");
    a->nodes = argv + optind;
    a->nnodes = (size_t)(argc - optind);
    for (size_t i = 0; i < a->nnodes; i++)
        if (!names_certname_ok(a->nodes[i], strlen(a->nodes[i])))
            return usage_error(cmd, "\"%s\" is not a certname", a->nodes[i]);
    if (a->nnodes == 0 && strcmp(cmd, "status") != 0)
        return usage_error(cmd, "%s", "name at least one node");
    return -1;
}

int fleet_open(struct fleet *f, const struct cmdline *cl, struct choir_error *err)
{
    struct netconf nc;
    struct theme theme;

    if (!(f->cfg = load_config(cl, err)) || theme_load(&theme, config_get(f->cfg, "theme"), err) < 0)
        return -1;
    term_style_init(&f->st, STDOUT_FILENO, config_get(f->cfg, "color"), &theme);
    netconf_init(&nc, f->cfg, NULL);
    if (security_open(&f->sec, &nc.sec, err) < 0)
        return -1;
    if (bus_open(&f->bus, &nc.bus, err) < 0 ||
        rpc_client_init(&f->client, f->bus, f->sec, nc.bus.collective, err) < 0) {
        err->code = CHOIR_EXIT_SERVER;
        return -1;
    }
    return 0;
}

void fleet_close(struct fleet *f)
{
    bus_free(f->bus);
    security_free(f->sec);
    config_free(f->cfg);
}

static int fleet_cmp_row(const void *a, const void *b)
{
    return strcmp(((const struct status_row *)a)->node, ((const struct status_row *)b)->node);
}

/* One row per replying or missing node, sorted by certname. */
static struct status_row *fleet_rows(const struct rpc_result *res, size_t *n)
{
    struct status_row *rows = calloc(res->nreplies + res->nmissing + 1, sizeof(*rows));

    *n = 0;
    for (size_t i = 0; rows && i < res->nreplies; i++)
        rows[(*n)++] = (struct status_row){res->replies[i].node, 1, res->replies[i].statuscode,
                                           res->replies[i].statusmsg, res->replies[i].data};
    for (size_t i = 0; rows && i < res->nmissing; i++)
        rows[(*n)++] = (struct status_row){res->missing[i], 0, 0, "", NULL};
    if (rows && *n > 1)
        qsort(rows, *n, sizeof(*rows), fleet_cmp_row);
    return rows;
}

static int fleet_run(const char *cmd, const char *action, int argc, char **argv)
{
    struct fleet_args a = {0};
    struct fleet f = {0};
    struct choir_error err = {0};
    struct rpc_result res = {0};
    struct rpc_call_opts o = {.agent = "puppet", .action = action};
    struct status_row *rows;
    size_t nrows = 0, bad = 0;
    int rc = fleet_parse_args(cmd, argc, argv, &a);

    if (rc >= 0)
        return rc;
    if (fleet_open(&f, &a.cl, &err) < 0) {
        fleet_close(&f);
        return fail(&err);
    }
    o.nodes = (const char *const *)a.nodes;
    o.nnodes = a.nnodes;
    o.ttl = config_get_int(f.cfg, "rpc.ttl");
    o.timeout_ms = (int)(a.timeout ? a.timeout : config_get_int(f.cfg, a.nnodes ? "rpc.timeout" : "rpc.discovery_timeout")) * 1000;
    o.idempotent = strcmp(action, "status") == 0;
    if (a.message)
        o.data = json_pack("{s:s}", "message", a.message);
    if (rpc_call(&f.client, &o, &res, &err) < 0) {
        rc = fail(&err);
    } else {
        rows = fleet_rows(&res, &nrows);
        for (size_t i = 0; i < nrows; i++)
            bad += !rows[i].answered || rows[i].statuscode != 0;
        if (a.json)
            status_render_json(stdout, rows, nrows);
        else if (strcmp(action, "status") == 0)
            status_render_table(stdout, rows, nrows, time(NULL), &f.st);
        else
            status_render_actions(stdout, rows, nrows, strcmp(action, "enable") == 0 ? "enabled" : "disabled", &f.st);
        if (f.client.rejected)
            fprintf(stderr, "choir %s: ignored %lu forged or malformed replies\n", cmd, f.client.rejected);
        rc = bad || (a.nnodes == 0 && nrows == 0) ? CHOIR_EXIT_PARTIAL : CHOIR_EXIT_OK;
        free(rows);
    }
    json_decref(o.data);
    rpc_result_clear(&res);
    fleet_close(&f);
    return rc;
}

static int cmd_status(int argc, char **argv)
{
    return fleet_run("status", "status", argc, argv);
}

static int cmd_enable(int argc, char **argv)
{
    return fleet_run("enable", "enable", argc, argv);
}

static int cmd_disable(int argc, char **argv)
{
    return fleet_run("disable", "disable", argc, argv);
}

/* ---- runonce ------------------------------------------------------------- */

static const char runonce_usage[] =
    "usage: choir runonce [options] NODE ...\n"
    "\n"
    "Starts one foreground Puppet run on each NODE now (choird's run.command,\n"
    "`puppet agent --onetime ... --job-id JOB` by default), streams every run's\n"
    "output as it comes and ends with each node's verdict from its own signed\n"
    "finished event.  A node that is disabled or already applying refuses.\n"
    "  --job-id ID       the job id Puppet records in its report (default: made up)\n"
    "  --noop            a noop run: report what would change\n"
    "  --tags T          only resources with these tags (a,b::c)\n"
    "  --skip-tags T     not resources with these tags\n"
    "  --environment E   the Puppet environment to run\n"
    "  --server HOST[:PORT]  the Puppet server to use\n"
    "  --json            one JSON object per reply and event per line\n"
    "  --timeout S       seconds to wait for the runonce replies (rpc.timeout)\n"
    "  --wait S          seconds to wait for the runs to finish (default 1800)\n"
    "  --config FILE  --color WHEN  --theme NAME\n";

struct runonce_args {
    struct cmdline cl;
    int json;
    const char *job_id;
    json_t *inputs;
    long timeout, wait;
    char **nodes;
    size_t nnodes;
};

enum { OPT_JOB_ID = 400, OPT_NOOP, OPT_TAGS, OPT_SKIP_TAGS, OPT_ENVIRONMENT, OPT_RSERVER, OPT_RWAIT,
       OPT_RTIMEOUT };

static const struct option runonce_options[] = {
    {"job-id", required_argument, NULL, OPT_JOB_ID},
    {"noop", no_argument, NULL, OPT_NOOP},
    {"tags", required_argument, NULL, OPT_TAGS},
    {"skip-tags", required_argument, NULL, OPT_SKIP_TAGS},
    {"environment", required_argument, NULL, OPT_ENVIRONMENT},
    {"server", required_argument, NULL, OPT_RSERVER},
    {"json", no_argument, NULL, OPT_JSON},
    {"timeout", required_argument, NULL, OPT_RTIMEOUT},
    {"wait", required_argument, NULL, OPT_RWAIT},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"color", required_argument, NULL, OPT_COLOR},
    {"theme", required_argument, NULL, OPT_THEME},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* The string inputs of runonce, by option. */
static const char *runonce_input_name(int opt)
{
    switch (opt) {
    case OPT_TAGS: return "tags";
    case OPT_SKIP_TAGS: return "skip_tags";
    case OPT_ENVIRONMENT: return "environment";
    case OPT_RSERVER: return "server";
    default: return NULL;
    }
}

static int runonce_parse_args(int argc, char **argv, struct runonce_args *a)
{
    uint32_t t;
    int c;

    opterr = 0;
    optind = 1;
    a->inputs = json_object();
    while ((c = getopt_long(argc, argv, ":", runonce_options, NULL)) != -1) {
        if (runonce_input_name(c)) {
            json_object_set_new(a->inputs, runonce_input_name(c), json_string(optarg));
            continue;
        }
        switch (c) {
        case OPT_JOB_ID: a->job_id = optarg; break;
        case OPT_NOOP: json_object_set_new(a->inputs, "noop", json_true()); break;
        case OPT_JSON: a->json = 1; break;
        case OPT_RTIMEOUT:
        case OPT_RWAIT:
            if (parse_count(optarg, 86400, &t) < 0)
                return usage_error("runonce", "%s: \"%s\" is not a number of seconds from 1 to 86400",
                                   argv[optind - 1], optarg);
            *(c == OPT_RWAIT ? &a->wait : &a->timeout) = t;
            break;
        case OPT_CONFIG: a->cl.config_file = optarg; break;
        case OPT_COLOR: cmdline_flag(&a->cl, "color", "--color", optarg); break;
        case OPT_THEME: cmdline_flag(&a->cl, "theme", "--theme", optarg); break;
        case OPT_HELP: fputs(runonce_usage, stdout); return CHOIR_EXIT_OK;
        case ':': return usage_error("runonce", "%s needs a value", argv[optind - 1]);
        default: return usage_error("runonce", "unknown option %s", argv[optind - 1]);
        }
    }
    if (a->job_id && !names_job_id_ok(a->job_id))
        return usage_error("runonce", "--job-id: \"%s\" is not 1 to 64 of [A-Za-z0-9_-]", a->job_id);
    a->nodes = argv + optind;
    a->nnodes = (size_t)(argc - optind);
    for (size_t i = 0; i < a->nnodes; i++)
        if (!names_certname_ok(a->nodes[i], strlen(a->nodes[i])))
            return usage_error("runonce", "\"%s\" is not a certname", a->nodes[i]);
    if (a->nnodes == 0)
        return usage_error("runonce", "%s", "name at least one node");
    return -1;
}

static void runonce_on_reply(void *ctx, const char *node, int code, const char *msg)
{
    run_render_reply(ctx, node, code, msg);
}

static void runonce_on_event(void *ctx, const char *node, const json_t *event)
{
    run_render_event(ctx, node, event);
}

/* A job id for a run nobody named: the time and 6 random hex digits. */
void make_job_id(char *buf, size_t size)
{
    char id[WIRE_REQUESTID_LEN + 1] = "000000";
    struct choir_error ignored = {0};
    time_t now = time(NULL);
    struct tm tm;
    char when[32];

    wire_requestid_new(id, &ignored);
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y%m%dT%H%M%S", &tm);
    snprintf(buf, size, "%s-%.6s", when, id);
}

static void runonce_report(struct run_render *out, const struct runonce_result *res, const char *job)
{
    for (size_t i = 0; i < res->nnodes; i++) {
        const struct runonce_node *n = &res->nodes[i];

        if (n->state == RUNONCE_NO_REPLY)
            run_render_note(out, n->node, runonce_state_name(n->state), "no reply to runonce");
        else if (n->state == RUNONCE_TIMED_OUT)
            run_render_note(out, n->node, runonce_state_name(n->state), "no finished event in time");
    }
    run_render_summary(out, job, res->succeeded, res->failed, res->nnodes);
}

static int cmd_runonce(int argc, char **argv)
{
    struct runonce_args a = {0};
    struct fleet f = {0};
    struct choir_error err = {0};
    struct runonce_result res = {0};
    struct run_render out = {stdout, 0, NULL};
    struct runonce_sink sink = {runonce_on_reply, runonce_on_event, &out};
    struct runonce_opts o = {0};
    char job[80];
    int rc = runonce_parse_args(argc, argv, &a);

    if (rc >= 0) {
        json_decref(a.inputs);
        return rc;
    }
    if (fleet_open(&f, &a.cl, &err) < 0) {
        rc = fail(&err);
        goto out;
    }
    if (a.job_id)
        snprintf(job, sizeof(job), "%s", a.job_id);
    else
        make_job_id(job, sizeof(job));
    o = (struct runonce_opts){
        .job_id = job, .inputs = a.inputs, .nodes = (const char *const *)a.nodes,
        .nnodes = a.nnodes, .ttl = config_get_int(f.cfg, "rpc.ttl"),
        .reply_timeout_ms = (int)(a.timeout ? a.timeout : config_get_int(f.cfg, "rpc.timeout")) * 1000,
        .run_timeout_ms = (int)(a.wait ? a.wait : 1800) * 1000,
    };
    out.json = a.json;
    out.st = &f.st;
    if (runonce_execute(&f.client, &o, &sink, &res, &err) < 0) {
        rc = fail(&err);
    } else {
        runonce_report(&out, &res, job);
        rc = res.failed ? CHOIR_EXIT_PARTIAL : CHOIR_EXIT_OK;
    }
out:
    runonce_result_clear(&res);
    json_decref(a.inputs);
    fleet_close(&f);
    return rc;
}

static const char config_usage[] =
    "usage: choir config [--config FILE] [--keys]\n"
    "\n"
    "Prints every configuration key with its effective value and where that\n"
    "value comes from (default, a file and line, an environment variable).\n"
    "  --keys     list the keys with their type and meaning instead\n";

static const char *config_type_name(enum config_type t)
{
    static const char *const names[] = {"string", "integer", "boolean", "choice", "path", "host[:port]"};

    return names[t];
}

static int cmd_config(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"keys", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct cmdline cl = {0};
    struct choir_error err = {0};
    struct config *cfg;
    int c, keys = 0;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (c == OPT_CONFIG)
            cl.config_file = optarg;
        else if (c == 'k')
            keys = 1;
        else if (c == OPT_HELP)
            return fputs(config_usage, stdout), CHOIR_EXIT_OK;
        else
            return usage_error("config", "unknown option %s", argv[optind - 1]);
    }
    if (keys) {
        for (size_t i = 0; i < config_key_count(); i++) {
            const struct config_key *k = config_key_at(i);

            printf("%-22s %-11s %s\n", k->name, config_type_name(k->type), k->help);
        }
        return CHOIR_EXIT_OK;
    }
    if (!(cfg = load_config(&cl, &err)))
        return fail(&err);
    for (size_t i = 0; i < config_key_count(); i++) {
        const char *name = config_key_at(i)->name, *v = config_get(cfg, name);

        printf("%s = %s\t# %s\n", name, v ? v : "(unset)", config_origin(cfg, name));
    }
    config_free(cfg);
    return CHOIR_EXIT_OK;
}

/* ---- request-cert ------------------------------------------------------ */

static const char request_cert_usage[] =
    "usage: choir request-cert [--ca HOST[:PORT]] [--certname NAME] [--ssldir DIR]\n"
    "                          [--wait SECONDS] [--config FILE]\n"
    "\n"
    "Gets your certificate from the Puppet CA the way 'puppet agent' does: saves\n"
    "the CA certificate (first contact: check the SHA-256 fingerprint shown), makes\n"
    "a private key (0600) and a certificate request, submits it and waits for the\n"
    "CA admin to sign it ('puppetserver ca sign --certname NAME').  Existing keys and\n"
    "certificates are never overwritten; a key without a certificate means an\n"
    "earlier run is waiting, and this run resumes it.\n"
    "\n"
    "  --ca HOST[:PORT]  the Puppet CA (default: puppet.server, then the SRV record\n"
    "                    _x-puppet-ca._tcp.DOMAIN, then puppet:8140)\n"
    "  --certname NAME   the name to request (puppet.certname, default USER.mcollective)\n"
    "  --ssldir DIR      Puppet ssldir to fill (puppet.ssldir)\n"
    "  --wait SECONDS    how long to wait for the signature (default 120; 0: check once)\n"
    "  --config FILE     read FILE after the system and user configuration\n";

enum { OPT_CA = 320, OPT_WAIT };

struct request_cert_args {
    struct cmdline cl;
    const char *ca;
    long wait;
};

static int request_cert_parse_args(int argc, char **argv, struct request_cert_args *a)
{
    static const struct option opts[] = {
        {"ca", required_argument, NULL, OPT_CA},
        {"certname", required_argument, NULL, OPT_CERTNAME},
        {"ssldir", required_argument, NULL, OPT_SSLDIR},
        {"wait", required_argument, NULL, OPT_WAIT},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "request-cert";
    uint32_t n;
    int c;

    opterr = 0;
    optind = 1;
    a->wait = 120;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case OPT_CA: a->ca = optarg; break;
        case OPT_CERTNAME: cmdline_flag(&a->cl, "puppet.certname", "--certname", optarg); break;
        case OPT_SSLDIR: cmdline_flag(&a->cl, "puppet.ssldir", "--ssldir", optarg); break;
        case OPT_WAIT:
            if (strcmp(optarg, "0") != 0 && parse_count(optarg, 86400, &n) < 0)
                return usage_error(cmd, "--wait: \"%s\" is not a number of seconds from 0 to 86400", optarg);
            a->wait = strcmp(optarg, "0") == 0 ? 0 : (long)n;
            break;
        case OPT_CONFIG: a->cl.config_file = optarg; break;
        case OPT_HELP: fputs(request_cert_usage, stdout); return CHOIR_EXIT_OK;
        case ':': return usage_error(cmd, "%s needs a value", argv[optind - 1]);
        default: return usage_error(cmd, "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    return -1;
}

static int cmd_request_cert(int argc, char **argv)
{
    struct request_cert_args a = {0};
    struct choir_error err = {0};
    struct puppet_ca_printer pr = {stderr, isatty(STDERR_FILENO), 0};
    struct puppet_ca_opts o;
    struct config *cfg;
    char cert[4096];
    int rc = request_cert_parse_args(argc, argv, &a);

    if (rc >= 0)
        return rc;
    if (!(cfg = load_config(&a.cl, &err)))
        return fail(&err);
    o = (struct puppet_ca_opts){
        .server = a.ca ? a.ca : config_get(cfg, "puppet.server"),
        .srv_domain = config_get(cfg, "puppet.srv_domain"),
        .ssldir = config_get(cfg, "puppet.ssldir"),
        .certname = config_get(cfg, "puppet.certname"),
        .connect_timeout = config_get_int(cfg, "http.connect_timeout"),
        .timeout = config_get_int(cfg, "http.timeout"),
        .wait = a.wait,
        .progress = puppet_ca_print_progress,
        .progress_ctx = &pr,
    };
    rc = puppet_ca_request_cert(&o, cert, sizeof(cert), &err);
    puppet_ca_printer_finish(&pr);
    if (rc < 0)
        rc = fail(&err);
    else
        printf("%s: certificate saved in %s\n", o.certname, cert);
    config_free(cfg);
    return rc;
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("choir %s\n", CHOIR_VERSION);
    return CHOIR_EXIT_OK;
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int cmd_help(int argc, char **argv)
{
    const struct command *cmd = argc > 1 ? find_command(argv[1]) : NULL;
    char *help[] = {argc > 1 ? argv[1] : NULL, "--help", NULL};

    if (cmd && cmd->run != cmd_help && cmd->run != cmd_version)
        return cmd->run(2, help);
    print_usage(stdout);
    return CHOIR_EXIT_OK;
}

int main(int argc, char **argv)
{
    const struct command *cmd;

    if (argc < 2) {
        print_usage(stderr);
        return CHOIR_EXIT_INPUT;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return cmd_help(1, argv);
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(1, argv);
    cmd = find_command(argv[1]);
    if (!cmd) {
        fprintf(stderr, "choir: unknown command \"%s\" (see 'choir --help')\n", argv[1]);
        return CHOIR_EXIT_INPUT;
    }
    return cmd->run(argc - 1, argv + 1);
}
