/* choir_jobs.c - the job commands of choir: run, resume, jobs, show, ctl,
 * unlock.  Argument parsing and wiring only: the engine (core/engine.h)
 * runs the job, the journal (core/journal.h) keeps it, ui/job_render.h
 * prints it. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "choir.h"
#include "core/ctl.h"
#include "core/engine.h"
#include "core/exitcode.h"
#include "core/job.h"
#include "core/journal.h"
#include "core/names.h"
#include "ui/job_render.h"
#include "ui/plan_render.h"
#include "ui/theme.h"
#include "ui/tui.h"

#define EVENTS_PER_TAKE 512

/* ---- options ---------------------------------------------------------------------- */

enum {
    OPT_CANARY = OPT_HELP + 1, OPT_MAXFAIL, OPT_CONTAIN, OPT_NOOP, OPT_YES, OPT_NOTUI, OPT_JOBID, OPT_OUTPUT, OPT_JOURNAL,
    OPT_START_TIMEOUT, OPT_RUN_TIMEOUT, OPT_RETRY,
};

static const char run_usage[] =
    "usage: choir run [--site FILE | --environment ENV] [--instance APP] [--batch N]\n"
    "                 [--canary N] [--max-failures N|P%] [--contain] [--noop]\n"
    "                 [--yes] [--no-tui] [--json] [--output] [--job-id ID]\n"
    "                 [--start-timeout S] [--run-timeout S] [--journal FILE]\n"
    "                 [--server HOST[:PORT]] [--ssldir DIR] [--certname NAME]\n"
    "                 [--config FILE] [--color WHEN] [--theme NAME]\n"
    "\n"
    "Runs a site plan: shows it and asks (unless --yes), checks every node\n"
    "(unreachable, disabled by someone else or applying: refused), disables\n"
    "Puppet on all of them, then runs the groups in order, step by step:\n"
    "enable, runonce with the job id, wait for each node's verdict, disable.\n"
    "Nodes that succeeded get Puppet back at the end; the others stay disabled\n"
    "by the job until 'choir unlock JOB'.  Everything goes to the journal, so\n"
    "'choir resume JOB' goes on after a crash.  While it runs, 'choir ctl JOB\n"
    "pause|resume|abort|retry|skip NODE|unlock|status' steers it; Ctrl-C aborts\n"
    "(runs in flight finish), a second Ctrl-C leaves at once (resumable).\n"
    "\n"
    "  --batch N          at most N nodes of a group at a time\n"
    "  --canary N         the first N nodes alone, then pause until 'choir ctl JOB resume'\n"
    "  --max-failures N|P%  go on until more than N nodes (or P% of all) failed;\n"
    "                     default: stop after the step with the first failure\n"
    "  --contain          a failure skips only the nodes that depend on the failed one\n"
    "  --noop             noop runs: report what would change\n"
    "  --yes              do not ask before running\n"
    "  --no-tui           the plain log even on a terminal (default there: the console)\n"
    "  --json             one JSON event per line (docs/protocol.md §12)\n"
    "  --output           every output line of every run (default: warnings and errors)\n"
    "  --job-id ID        the job id (default: the time and 6 random hex digits)\n"
    "  --start-timeout S  seconds from runonce to a started run (job.start_timeout)\n"
    "  --run-timeout S    seconds a run may take (job.run_timeout)\n"
    "  --journal FILE     the journal (job.journal)\n"
    "  plan options: see 'choir plan --help'\n";

struct run_args {
    struct plan_args plan;
    struct job_options opt;
    int yes, json, output, retry, no_tui;
    const char *job_id;
    const char *id_arg;          /* resume, show, ctl, unlock: the job */
};

static const struct option run_options[] = {
    {"site", required_argument, NULL, OPT_SITE},
    {"environment", required_argument, NULL, OPT_ENV},
    {"instance", required_argument, NULL, OPT_INSTANCE},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"canary", required_argument, NULL, OPT_CANARY},
    {"max-failures", required_argument, NULL, OPT_MAXFAIL},
    {"contain", no_argument, NULL, OPT_CONTAIN},
    {"noop", no_argument, NULL, OPT_NOOP},
    {"yes", no_argument, NULL, OPT_YES},
    {"no-tui", no_argument, NULL, OPT_NOTUI},
    {"json", no_argument, NULL, OPT_JSON},
    {"output", no_argument, NULL, OPT_OUTPUT},
    {"job-id", required_argument, NULL, OPT_JOBID},
    {"journal", required_argument, NULL, OPT_JOURNAL},
    {"start-timeout", required_argument, NULL, OPT_START_TIMEOUT},
    {"run-timeout", required_argument, NULL, OPT_RUN_TIMEOUT},
    {"retry", no_argument, NULL, OPT_RETRY},
    {"server", required_argument, NULL, OPT_SERVER},
    {"ssldir", required_argument, NULL, OPT_SSLDIR},
    {"certname", required_argument, NULL, OPT_CERTNAME},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"color", required_argument, NULL, OPT_COLOR},
    {"theme", required_argument, NULL, OPT_THEME},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* "3" or "10%". */
static int parse_budget(const char *s, struct job_options *o)
{
    size_t len = strlen(s);
    char num[16];
    uint32_t v;

    o->max_failures_pct = len > 1 && s[len - 1] == '%';
    if (len == 0 || len - o->max_failures_pct >= sizeof(num))
        return -1;
    memcpy(num, s, len - o->max_failures_pct);
    num[len - o->max_failures_pct] = '\0';
    if (strcmp(num, "0") == 0) {
        o->max_failures = 0;
        return 0;
    }
    if (parse_count(num, o->max_failures_pct ? 100 : 1000000, &v) < 0)
        return -1;
    o->max_failures = v;
    return 0;
}

/* The flags of run that are not the plan's; -1 to go on, or an exit code. */
static int run_option(const char *cmd, int c, struct run_args *a, char **argv)
{
    struct cmdline *cl = &a->plan.cl;
    uint32_t v;

    switch (c) {
    case OPT_CANARY:
        if (parse_count(optarg, 1000000, &a->opt.canary) < 0)
            return usage_error(cmd, "--canary: \"%s\" is not a number from 1 to 1000000", optarg);
        return -1;
    case OPT_MAXFAIL:
        if (parse_budget(optarg, &a->opt) < 0)
            return usage_error(cmd, "--max-failures: \"%s\" is not N or P%% (0 to 100)", optarg);
        return -1;
    case OPT_START_TIMEOUT:
    case OPT_RUN_TIMEOUT:
        if (parse_count(optarg, 604800, &v) < 0)
            return usage_error(cmd, "%s: \"%s\" is not a number of seconds", argv[optind - 1], optarg);
        cmdline_flag(cl, c == OPT_START_TIMEOUT ? "job.start_timeout" : "job.run_timeout",
                     argv[optind - 1], optarg);
        return -1;
    case OPT_CONTAIN: a->opt.contain = 1; return -1;
    case OPT_NOOP: a->opt.noop = 1; return -1;
    case OPT_YES: a->yes = 1; return -1;
    case OPT_NOTUI: a->no_tui = 1; return -1;
    case OPT_JSON: a->json = 1; return -1;
    case OPT_OUTPUT: a->output = 1; return -1;
    case OPT_RETRY: a->retry = 1; return -1;
    case OPT_JOBID:
        if (!names_job_id_ok(optarg))
            return usage_error(cmd, "--job-id: \"%s\" is not 1 to 64 of [A-Za-z0-9_-]", optarg);
        a->job_id = optarg;
        return -1;
    case OPT_JOURNAL: cmdline_flag(cl, "job.journal", "--journal", optarg); return -1;
    default: return usage_error(cmd, "unknown option %s", argv[optind - 1]);
    }
}

/* The plan's flags and the common ones; -1 to go on, or an exit code. */
static int plan_option(const char *cmd, int c, struct run_args *a, char **argv)
{
    int rc = plan_flag(cmd, c, &a->plan, argv);

    a->opt.batch = a->plan.opts.batch;
    return rc == PLAN_FLAG_OTHER ? run_option(cmd, c, a, argv) : rc;
}

/* nargs: how many positional arguments the command takes (0 or 1, the
 * job id; ctl takes more and checks them itself). */
static int job_parse_args(const char *cmd, const char *usage, int argc, char **argv,
                          struct run_args *a, int nargs)
{
    int c, rc;

    job_options_default(&a->opt);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", run_options, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(usage, stdout);
            return CHOIR_EXIT_OK;
        }
        if ((rc = plan_option(cmd, c, a, argv)) >= 0)
            return rc;
    }
    if (nargs == 0 && optind < argc)
        return usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (nargs > 0) {
        if (optind >= argc)
            return usage_error(cmd, "%s", "name the job (see 'choir jobs')");
        a->id_arg = argv[optind];
        if (!names_job_id_ok(a->id_arg))
            return usage_error(cmd, "\"%s\" is not a job id", a->id_arg);
        if (nargs == 1 && optind + 1 < argc)
            return usage_error(cmd, "unexpected argument \"%s\"", argv[optind + 1]);
    }
    if (a->plan.site_file && a->plan.from_server)
        return usage_error(cmd, "%s", "--site and --environment exclude each other");
    return -1;
}

/* ---- following a job ----------------------------------------------------------------- */

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    char c = (char)sig;

    if (write(sig_pipe[1], &c, 1) < 0) {
        /* nothing more a handler can do */
    }
}

static void catch_signals(void)
{
    struct sigaction sa;

    if (pipe(sig_pipe) < 0)
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void render_pending(struct engine *e, struct job_render *r)
{
    json_t *evs[EVENTS_PER_TAKE];
    size_t n;

    while ((n = engine_take(e, evs, EVENTS_PER_TAKE)) > 0)
        for (size_t i = 0; i < n; i++) {
            job_render_event(r, evs[i]);
            json_decref(evs[i]);
        }
}

/* Prints the job's events until it is over.  The first Ctrl-C aborts (runs
 * in flight finish), the second leaves at once: the journal has it all. */
static int follow(struct engine *e, struct job_render *r, const char *job_id)
{
    int signals = 0;

    catch_signals();
    while (!engine_finished(e)) {
        struct pollfd fds[2] = {{engine_wake_fd(e), POLLIN, 0}, {sig_pipe[0], POLLIN, 0}};
        char c;

        poll(fds, sig_pipe[0] >= 0 ? 2 : 1, 1000);
        if (sig_pipe[0] >= 0 && (fds[1].revents & POLLIN) && read(sig_pipe[0], &c, 1) == 1) {
            if (++signals > 1) {
                render_pending(e, r);
                fprintf(stderr, "choir: left job %s while it was %s; 'choir resume %s' goes on\n",
                        job_id, "running", job_id);
                return CHOIR_EXIT_ABORTED;
            }
            fprintf(stderr, "choir: aborting job %s: runs in flight finish (Ctrl-C again to "
                    "leave now; the job stays resumable)\n", job_id);
            engine_command(e, "abort", "", "the console (signal)");
        }
        render_pending(e, r);
    }
    render_pending(e, r);
    if (engine_dropped(e))
        fprintf(stderr, "choir: %lu events were not shown (the output was too slow); the "
                "journal has every state change\n", engine_dropped(e));
    return engine_wait(e);
}

static struct journal *open_journal(const struct config *cfg, struct choir_error *err)
{
    const char *path = config_get(cfg, "job.journal");
    char *def = path ? NULL : journal_default_path();
    struct journal *j = NULL;

    if (!path && !def)
        error_set(err, CHOIR_EXIT_INPUT, "no journal path: set job.journal or HOME");
    else
        journal_open(&j, path ? path : def, err);
    free(def);
    return j;
}

/* Runs or resumes job (taken over) and follows it, in the console when
 * tui is set (drive closes it). */
static int drive(const struct config *cfg, struct journal *jr, struct job *job, int resume,
                 const struct run_args *a, const struct term_style *st, struct tui *tui)
{
    struct engine_config ec = {cfg, job, jr, resume, 1, tui != NULL};
    struct engine *e = NULL;
    struct choir_error err = {0};
    struct job_render r;
    char id[sizeof(job->id)];
    int rc;

    snprintf(id, sizeof(id), "%s", job->id);
    job->opt.start_timeout_s = config_get_int(cfg, "job.start_timeout");
    job->opt.run_timeout_s = config_get_int(cfg, "job.run_timeout");
    if (tui)
        tui_status(tui, "connecting to the bus ...");
    if (engine_open(&e, &ec, &err) < 0 || engine_start(e, &err) < 0) {
        console_close(&tui);
        engine_free(e);
        return fail(&err);
    }
    job_render_init(&r, stdout, a->json, a->output, st);
    if (!a->json && !tui)
        fprintf(stdout, "job %s: journal %s; steer it with 'choir ctl %s COMMAND'\n", id,
                journal_path(jr), id);
    rc = tui ? console_follow(tui, e, id, st) : follow(e, &r, id);
    if (rc == CHOIR_EXIT_ABORTED && !engine_finished(e))
        _exit(rc); /* the core thread is mid-call; the journal is consistent */
    engine_free(e);
    return rc;
}

/* ---- run ------------------------------------------------------------------------------ */

/* The plan screen: 1 to run, 0 not to. */
static int console_plan(struct tui *tui, const struct config *cfg, const struct run_args *a,
                        const struct plan *plan)
{
    struct job_options o = a->opt;

    o.start_timeout_s = config_get_int(cfg, "job.start_timeout");
    o.run_timeout_s = config_get_int(cfg, "job.run_timeout");
    return tui_plan(tui, plan, &o, config_get(cfg, "puppet.environment"));
}

/* 1 to run, 0 not to, or an exit code > 1. */
static int confirm(const struct run_args *a, const struct plan *plan)
{
    char line[32];

    if (a->yes)
        return 1;
    if (!isatty(STDIN_FILENO)) {
        usage_error("run", "%s", "standard input is not a terminal: pass --yes to run without asking");
        return CHOIR_EXIT_INPUT;
    }
    fprintf(stderr, "Run this plan on %u nodes in %u groups? (y/n) ", plan->nnodes, plan->ngroups);
    if (!fgets(line, sizeof(line), stdin))
        return 0;
    return line[0] == 'y' || line[0] == 'Y';
}

static int run_plan(struct run_args *a, struct config *cfg, struct plan *plan,
                    const struct term_style *st, struct tui *tui)
{
    struct choir_error err = {0};
    char id[NAMES_JOB_ID_MAX + 1];
    struct journal_job old = {0};
    struct journal *jr;
    struct job *job;
    int rc = tui ? a->yes || console_plan(tui, cfg, a, plan) : confirm(a, plan);

    if (rc != 1) {
        console_close(&tui);
        if (rc == 0)
            fprintf(stderr, "choir run: nothing was run\n");
        return rc == 0 ? CHOIR_EXIT_OK : rc;
    }
    if (!(jr = open_journal(cfg, &err))) {
        console_close(&tui);
        return fail(&err);
    }
    if (a->job_id)
        snprintf(id, sizeof(id), "%s", a->job_id);
    else
        make_job_id(id, sizeof(id));
    if (journal_job_get(jr, id, &old, &err) == 0) {
        journal_job_clear(&old);
        journal_close(jr);
        console_close(&tui);
        return usage_error("run", "job %s is already in the journal (choir resume %s)", id, id);
    }
    job = job_from_plan(plan, id, config_get(cfg, "puppet.certname"),
                        config_get(cfg, "puppet.environment"), &a->opt);
    rc = drive(cfg, jr, job, 0, a, st, tui);
    journal_close(jr);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    struct run_args a = {0};
    struct choir_error err = {0};
    struct config *cfg;
    struct site *site = NULL;
    struct plan *plan = NULL;
    struct term_style st;
    struct theme theme;
    struct tui *tui = NULL;
    int rc = job_parse_args("run", run_usage, argc, argv, &a, 0);

    if (rc >= 0)
        return rc;
    if (!(cfg = load_config(&a.plan.cl, &err)))
        return fail(&err);
    if (theme_load(&theme, config_get(cfg, "theme"), &err) < 0 ||
        plan_load(&a.plan, cfg, &site, &err) < 0 ||
        plan_compute(&plan, site, &a.plan.opts, &err) < 0 ||
        (console_wanted(a.json, a.no_tui) && console_open(&tui, cfg, &theme, 0, &err) < 0)) {
        rc = fail(&err);
    } else {
        term_style_init(&st, STDOUT_FILENO, config_get(cfg, "color"), &theme);
        if (!a.json && !tui)
            plan_render_text(stdout, plan, &st);
        fflush(stdout);
        rc = run_plan(&a, cfg, plan, &st, tui);
    }
    plan_free(plan);
    site_free(site);
    config_free(cfg);
    return rc;
}

/* ---- resume ------------------------------------------------------------------------------ */

static const char resume_usage[] =
    "usage: choir resume JOB [--retry] [--json] [--no-tui] [--output] [--journal FILE]\n"
    "                    [--config FILE] [--color WHEN] [--theme NAME]\n"
    "\n"
    "Goes on with a job from the journal: after the console died (even kill -9),\n"
    "after an abort, or after the job stopped on failures.  Nodes that were\n"
    "running are asked first: a run of this job that finished meanwhile is\n"
    "judged from its report, one still applying is waited for, one that never\n"
    "started runs now.  No node runs twice, and no group starts before the\n"
    "groups it depends on.  --retry also runs the failed nodes again (and the\n"
    "nodes that were skipped because they depend on them).\n";

/* The job as the journal has it. */
static struct job *load_job(struct journal *jr, const char *id, struct choir_error *err)
{
    struct journal_job jj = {0};
    struct journal_node *rows = NULL;
    size_t n = 0;
    struct job *job = NULL;

    if (journal_job_get(jr, id, &jj, err) == 0 && journal_nodes(jr, id, &rows, &n, err) == 0)
        job = job_restore(&jj, rows, n, err);
    journal_nodes_free(rows, n);
    journal_job_clear(&jj);
    return job;
}

int cmd_resume(int argc, char **argv)
{
    struct run_args a = {0};
    struct choir_error err = {0};
    struct config *cfg;
    struct journal *jr = NULL;
    struct job *job = NULL;
    struct term_style st;
    struct theme theme;
    struct tui *tui = NULL;
    int rc = job_parse_args("resume", resume_usage, argc, argv, &a, 1);

    if (rc >= 0)
        return rc;
    if (!(cfg = load_config(&a.plan.cl, &err)))
        return fail(&err);
    if (theme_load(&theme, config_get(cfg, "theme"), &err) < 0 ||
        !(jr = open_journal(cfg, &err)) || !(job = load_job(jr, a.id_arg, &err))) {
        rc = fail(&err);
    } else if (a.retry ? job_retry(job) == 0 && job_remaining(job) == 0 && job->state == JOB_SUCCEEDED
                       : job->state == JOB_SUCCEEDED) {
        printf("job %s already succeeded: nothing to resume\n", job->id);
        job_free(job);
        rc = CHOIR_EXIT_OK;
    } else if (console_wanted(a.json, a.no_tui) && console_open(&tui, cfg, &theme, 0, &err) < 0) {
        job_free(job);
        rc = fail(&err);
    } else {
        term_style_init(&st, STDOUT_FILENO, config_get(cfg, "color"), &theme);
        rc = drive(cfg, jr, job, 1, &a, &st, tui);
    }
    journal_close(jr);
    config_free(cfg);
    return rc;
}

/* ---- jobs, show ---------------------------------------------------------------------------- */

static const char jobs_usage[] =
    "usage: choir jobs [--json] [--journal FILE] [--config FILE]\n"
    "       choir show JOB [--json] [--journal FILE] [--config FILE]\n"
    "\n"
    "jobs lists the journal's jobs, newest first: id, state, when, caller, reason.\n"
    "show prints one job's nodes: group, step, state, verdict, start and end\n"
    "times, whether the job still holds its lock, failed resources, reason.\n";

static void print_time(long long ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32] = "-";

    if (ms > 0) {
        localtime_r(&t, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    }
    printf("%-19s", buf);
}

static int list_jobs(struct journal *jr, int json, struct choir_error *err)
{
    struct journal_job *jobs = NULL;
    size_t n = 0;

    if (journal_jobs(jr, &jobs, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (json) {
            json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "job", jobs[i].id,
                                  "state", jobs[i].state, "reason", jobs[i].reason, "caller",
                                  jobs[i].caller, "environment", jobs[i].environment,
                                  "created_ms", (json_int_t)jobs[i].created_ms, "updated_ms",
                                  (json_int_t)jobs[i].updated_ms);

            json_dumpf(o, stdout, JSON_COMPACT);
            putchar('\n');
            json_decref(o);
            continue;
        }
        printf("%-28s %-10s ", jobs[i].id, jobs[i].state);
        print_time(jobs[i].created_ms);
        printf(" %-24s %s\n", jobs[i].caller, jobs[i].reason);
    }
    if (!json && n == 0)
        printf("no jobs in %s\n", journal_path(jr));
    journal_jobs_free(jobs, n);
    return 0;
}

static void show_node(const struct journal_node *r, int json)
{
    if (json) {
        json_t *o = json_pack("{s:s, s:i, s:i, s:s, s:s, s:s, s:i, s:b, s:i, s:I, s:I, s:s}",
                              "node", r->node, "group", r->group + 1, "step", r->batch, "state",
                              r->state, "verdict", r->verdict, "reason", r->reason, "exit_code",
                              r->exit_code, "locked", r->locked, "attempts", r->attempts,
                              "started_ms", (json_int_t)r->started_ms, "finished_ms",
                              (json_int_t)r->finished_ms, "run_id", r->run_id);

        json_object_set_new(o, "failed", json_loads(r->failed, 0, NULL));
        json_dumpf(o, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(o);
        return;
    }
    printf("%-32s %5d %4d %-9s %-16s ", r->node, r->group + 1, r->batch, r->state,
           *r->verdict ? r->verdict : "-");
    print_time(r->started_ms);
    putchar(' ');
    print_time(r->finished_ms);
    printf(" %-6s %s", r->locked ? "locked" : "-", r->reason);
    if (strcmp(r->failed, "[]") != 0)
        printf(" failed: %s", r->failed);
    putchar('\n');
}

static int show_job(struct journal *jr, const char *id, int json, struct choir_error *err)
{
    struct journal_job jj = {0};
    struct journal_node *rows = NULL;
    size_t n = 0;

    if (journal_job_get(jr, id, &jj, err) < 0 || journal_nodes(jr, id, &rows, &n, err) < 0) {
        journal_job_clear(&jj);
        return -1;
    }
    if (!json) {
        printf("job %s: %s: %s\ncaller %s, environment %s, started ", jj.id, jj.state, jj.reason,
               jj.caller, jj.environment);
        print_time(jj.created_ms);
        printf("\n\n%-32s %5s %4s %-9s %-16s %-19s %-19s %-6s %s\n", "NODE", "GROUP", "STEP",
               "STATE", "VERDICT", "STARTED", "FINISHED", "LOCK", "REASON");
    }
    for (size_t i = 0; i < n; i++)
        show_node(&rows[i], json);
    journal_nodes_free(rows, n);
    journal_job_clear(&jj);
    return 0;
}

static int journal_command(const char *cmd, int argc, char **argv, int nargs)
{
    struct run_args a = {0};
    struct choir_error err = {0};
    struct config *cfg;
    struct journal *jr = NULL;
    int rc = job_parse_args(cmd, jobs_usage, argc, argv, &a, nargs);

    if (rc >= 0)
        return rc;
    if (!(cfg = load_config(&a.plan.cl, &err)))
        return fail(&err);
    if (!(jr = open_journal(cfg, &err)) ||
        (nargs ? show_job(jr, a.id_arg, a.json, &err) : list_jobs(jr, a.json, &err)) < 0)
        rc = fail(&err);
    else
        rc = CHOIR_EXIT_OK;
    journal_close(jr);
    config_free(cfg);
    return rc;
}

int cmd_jobs(int argc, char **argv)
{
    return journal_command("jobs", argc, argv, 0);
}

int cmd_show(int argc, char **argv)
{
    return journal_command("show", argc, argv, 1);
}

/* ---- ctl, unlock ---------------------------------------------------------------------------- */

static const char ctl_usage[] =
    "usage: choir ctl JOB pause|resume|abort|retry|unlock|status\n"
    "       choir ctl JOB skip|report NODE\n"
    "\n"
    "Steers a job that a console is running, through its control socket (only\n"
    "the same user may): pause (no new step; runs in flight finish), resume,\n"
    "abort (stop; the job stays resumable), retry (failed nodes run again),\n"
    "skip NODE (a waiting node will not run), unlock (release the job's locks\n"
    "while it is paused or over), status, report NODE (the node's last report\n"
    "goes into the job's event stream).  Every command goes to the journal\n"
    "with who sent it.  Exit 0 when the job answered ok, 1 when it refused.\n";

int cmd_ctl(int argc, char **argv)
{
    struct choir_error err = {0};
    char line[CTL_LINE_MAX], reply[CTL_LINE_MAX];

    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(ctl_usage, stdout);
        return CHOIR_EXIT_OK;
    }
    if (argc < 3 || argc > 4)
        return usage_error("ctl", "%s", "give a job and a command");
    if (!names_job_id_ok(argv[1]))
        return usage_error("ctl", "\"%s\" is not a job id", argv[1]);
    if ((argc == 4) != (!strcmp(argv[2], "skip") || !strcmp(argv[2], "report")))
        return usage_error("ctl", "%s", argc == 4 ? "only skip and report take a node"
                                                  : "skip and report need a node");
    snprintf(line, sizeof(line), "%s%s%s", argv[2], argc == 4 ? " " : "", argc == 4 ? argv[3] : "");
    if (ctl_send(argv[1], line, reply, sizeof(reply), &err) < 0)
        return fail(&err);
    printf("%s\n", reply);
    return strncmp(reply, "ok:", 3) == 0 ? CHOIR_EXIT_OK : CHOIR_EXIT_PARTIAL;
}

static const char unlock_usage[] =
    "usage: choir unlock JOB [--journal FILE] [--config FILE]\n"
    "\n"
    "Enables Puppet again on exactly the nodes job JOB still holds, as the\n"
    "journal says: each node is asked first, and a node whose lock is no longer\n"
    "this job's (someone else disabled it since) is left alone.  Then status\n"
    "checks the result.  When a console is still running the job, the command\n"
    "goes to it instead (it refuses while runs are in flight).\n";

/* One puppet action to the named nodes, with the configured ttl and timeout. */
static int unlock_call(struct fleet *f, const char *action, const char **names, size_t n,
                       struct rpc_result *res, struct choir_error *err)
{
    struct rpc_call_opts o = {.agent = "puppet", .action = action, .nodes = names, .nnodes = n,
                              .ttl = config_get_int(f->cfg, "rpc.ttl"), .idempotent = 1,
                              .timeout_ms = (int)config_get_int(f->cfg, "rpc.timeout") * 1000};

    memset(res, 0, sizeof(*res));
    return n ? rpc_call(&f->client, &o, res, err) : 0;
}

static void unlock_forget(struct journal *jr, struct journal_node *rows, size_t n,
                          const char *node)
{
    for (size_t k = 0; k < n; k++)
        if (!strcmp(rows[k].node, node)) {
            rows[k].locked = 0;
            journal_node_put(jr, &rows[k]);
        }
}

/* Which of the held nodes still carry this job's lock: they stay at the
 * front of names; the others are forgotten (no longer ours to release). */
static size_t unlock_select(struct fleet *f, const char *id, struct journal_node *rows, size_t n,
                            const char **names, struct journal *jr)
{
    struct rpc_result res;
    struct choir_error err = {0};
    size_t keep = 0;

    if (unlock_call(f, "status", names, n, &res, &err) < 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const struct rpc_reply *r = rpc_result_find(&res, names[i]);
        const char *msg = r ? json_string_value(json_object_get(r->data, "disable_message")) : NULL;

        if (!r) {
            printf("%s: no reply (still locked)\n", names[i]);
        } else if (!msg || !strstr(msg, id) || json_is_true(json_object_get(r->data, "enabled"))) {
            printf("%s: no longer locked by this job (%s)\n", names[i], msg && *msg ? msg : "enabled");
            unlock_forget(jr, rows, n, names[i]);
        } else {
            names[keep++] = names[i];
        }
    }
    rpc_result_clear(&res);
    return keep;
}

/* enable, then status: a node counts as released when status says enabled.
 * Returns how many were not. */
static size_t unlock_release(struct fleet *f, const char **names, size_t keep,
                             struct journal_node *rows, size_t held, struct journal *jr,
                             struct choir_error *err)
{
    struct rpc_result en, st;
    size_t bad = 0;

    if (unlock_call(f, "enable", names, keep, &en, err) < 0)
        return keep;
    if (unlock_call(f, "status", names, keep, &st, err) < 0) {
        rpc_result_clear(&en);
        return keep;
    }
    for (size_t i = 0; i < keep; i++) {
        const struct rpc_reply *r = rpc_result_find(&en, names[i]);
        const struct rpc_reply *s = rpc_result_find(&st, names[i]);
        int ok = s && json_is_true(json_object_get(s->data, "enabled"));

        if (ok) {
            printf("%s: enabled (status confirms)\n", names[i]);
            unlock_forget(jr, rows, held, names[i]);
        } else {
            printf("%s: failed: %s\n", names[i], !r ? "no reply" : r->statuscode ? r->statusmsg
                                                   : "status still says disabled");
        }
        bad += !ok;
    }
    rpc_result_clear(&en);
    rpc_result_clear(&st);
    return bad;
}

static int unlock_nodes(struct fleet *f, struct journal *jr, const char *id,
                        struct choir_error *err)
{
    struct journal_node *rows = NULL;
    size_t n = 0, held = 0, keep, bad;
    const char **names;

    if (journal_nodes(jr, id, &rows, &n, err) < 0)
        return -1;
    names = calloc(n + 1, sizeof(*names));
    for (size_t i = 0; i < n; i++)
        if (rows[i].locked) {
            /* swap, not copy: every row must stay once for journal_nodes_free */
            struct journal_node t = rows[held];

            rows[held] = rows[i];
            rows[i] = t;
            names[held] = rows[held].node;
            held++;
        }
    keep = unlock_select(f, id, rows, held, names, jr);
    bad = unlock_release(f, names, keep, rows, held, jr, err);
    printf("job %s: released %zu of the %zu locks it still held\n", id, keep - bad, keep);
    free(names);
    journal_event(jr, id, (long long)time(NULL) * 1000, config_get(f->cfg, "puppet.certname"),
                  "operator", "", "{\"command\":\"unlock\"}");
    journal_nodes_free(rows, n);
    if (journal_flush(jr, err) < 0)
        return -1;
    return bad ? 1 : 0;
}

int cmd_unlock(int argc, char **argv)
{
    struct run_args a = {0};
    struct choir_error err = {0};
    struct fleet f = {0};
    struct journal *jr = NULL;
    char reply[CTL_LINE_MAX];
    int rc = job_parse_args("unlock", unlock_usage, argc, argv, &a, 1);

    if (rc >= 0)
        return rc;
    if (ctl_send(a.id_arg, "unlock", reply, sizeof(reply), &err) == 0) {
        printf("%s\n", reply);
        return strncmp(reply, "ok:", 3) == 0 ? CHOIR_EXIT_OK : CHOIR_EXIT_PARTIAL;
    }
    memset(&err, 0, sizeof(err));
    if (fleet_open(&f, &a.plan.cl, &err) < 0 || !(jr = open_journal(f.cfg, &err)) ||
        (rc = unlock_nodes(&f, jr, a.id_arg, &err)) < 0)
        rc = fail(&err);
    else
        rc = rc ? CHOIR_EXIT_PARTIAL : CHOIR_EXIT_OK;
    journal_close(jr);
    fleet_close(&f);
    return rc;
}
