/* choir_tui.c - the console's wiring: `choir run` and `choir resume` on a
 * terminal (the engine as the console's source of events and taker of
 * commands), and `choir replay` (a recorded stream as the source).
 * Argument parsing and wiring only: ui/tui.h draws, core/engine.h runs. */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "choir.h"
#include "core/engine.h"
#include "core/exitcode.h"
#include "ui/job_render.h"
#include "ui/keymap.h"
#include "ui/replay.h"
#include "ui/tui.h"

int console_wanted(int json, int no_tui)
{
    return !json && !no_tui && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
}

int console_open(struct tui **out, const struct config *cfg, const struct theme *theme,
                 int exit_at_end, struct choir_error *err)
{
    struct tui_options o = {
        .theme = theme,
        .color = config_get(cfg, "color"),
        .keys = config_get(cfg, "tui.keys"),
        .keys_origin = config_origin(cfg, "tui.keys"),
        .stats_file = getenv("CHOIR_TUI_STATS"),
        .exit_at_end = exit_at_end,
    };

    return tui_open(out, &o, err);
}

void console_close(struct tui **t)
{
    tui_close(*t);
    *t = NULL;
}

/* ---- the engine as a source -------------------------------------------------------------- */

static char console_actor[160];

static size_t engine_src_take(void *ctx, json_t **evs, size_t max)
{
    return engine_take(ctx, evs, max);
}

static int engine_src_finished(void *ctx)
{
    return engine_finished(ctx);
}

static void engine_src_command(void *ctx, const char *command, const char *arg)
{
    engine_command(ctx, command, arg, console_actor);
}

static long long engine_src_clock(void *ctx)
{
    struct timespec ts;

    (void)ctx;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The operator in the journal: "user alice (uid 1000, pid 4242) at the console". */
static void console_name_actor(void)
{
    struct passwd *pw = getpwuid(getuid());

    snprintf(console_actor, sizeof(console_actor), "user %s (uid %u, pid %d) at the console",
             pw ? pw->pw_name : "?", (unsigned)getuid(), (int)getpid());
}

/* After the console closed: the job's result as the plain log says it. */
static void console_epilogue(const struct tui_end *end, const char *job_id,
                             const struct term_style *st)
{
    struct job_render r;

    if (end->result) {
        job_render_init(&r, stdout, 0, 0, st);
        job_render_event(&r, end->result);
    }
    if (end->left_running)
        fprintf(stderr, "choir: left job %s while it was %s; 'choir resume %s' goes on\n", job_id,
                end->paused ? "paused" : end->state, job_id);
}

int console_follow(struct tui *t, struct engine *e, const char *job_id,
                   const struct term_style *st)
{
    struct tui_source src = {
        .ctx = e, .fd = engine_wake_fd(e), .take = engine_src_take,
        .finished = engine_src_finished, .command = engine_src_command,
        .clock_ms = engine_src_clock,
    };
    struct tui_end end;

    console_name_actor();
    tui_run(t, &src, &end);
    tui_close(t);
    console_epilogue(&end, job_id, st);
    json_decref(end.result);
    if (engine_dropped(e))
        fprintf(stderr, "choir: %lu events were not shown (the console was too slow); the "
                "journal has every state change\n", engine_dropped(e));
    fflush(stdout);
    if (end.left_running)
        return CHOIR_EXIT_ABORTED;
    return engine_wait(e);
}

/* ---- replay ------------------------------------------------------------------------------ */

static const char replay_usage[] =
    "usage: choir replay FILE [--speed X | --fast] [--exit] [--theme NAME]\n"
    "                    [--color WHEN] [--config FILE]\n"
    "\n"
    "Shows a recorded job (the output of 'choir run --json' or 'choir resume\n"
    "--json', docs/protocol.md §12) in the console, at the pace it was recorded.\n"
    "Nothing is sent to any node: commands typed are shown as '(replay: not\n"
    "sent)'.  For tests, benchmarks and looking at a past job.  With\n"
    "CHOIR_TUI_STATS=FILE the console writes its frame and CPU figures to FILE\n"
    "when it ends.\n"
    "\n"
    "  --speed X     X times as fast as recorded (default 1)\n"
    "  --fast        as fast as the console takes the events (no flashing rows:\n"
    "                the same screen every time)\n"
    "  --exit        leave by itself once the whole file was shown\n"
    "  --theme NAME  colour theme (theme)\n"
    "  --color WHEN  auto, always or never (color)\n"
    "  --config FILE read FILE after the system and user configuration\n";

enum { ROPT_SPEED = 256, ROPT_FAST, ROPT_EXIT, ROPT_THEME, ROPT_COLOR, ROPT_CONFIG, ROPT_HELP };

struct replay_args {
    struct cmdline cl;
    const char *file;
    double speed;
    int exit_at_end;
};

static int replay_parse(int argc, char **argv, struct replay_args *a)
{
    static const struct option opts[] = {
        {"speed", required_argument, NULL, ROPT_SPEED}, {"fast", no_argument, NULL, ROPT_FAST},
        {"exit", no_argument, NULL, ROPT_EXIT},         {"theme", required_argument, NULL, ROPT_THEME},
        {"color", required_argument, NULL, ROPT_COLOR}, {"config", required_argument, NULL, ROPT_CONFIG},
        {"help", no_argument, NULL, ROPT_HELP},         {NULL, 0, NULL, 0},
    };
    char *end;
    int c;

    a->speed = 1;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case ROPT_SPEED:
            errno = 0;
            a->speed = strtod(optarg, &end);
            if (errno || *end || !(a->speed > 0 && a->speed <= 1e6))
                return usage_error("replay", "--speed: \"%s\" is not a number above 0", optarg);
            break;
        case ROPT_FAST: a->speed = 0; break;
        case ROPT_EXIT: a->exit_at_end = 1; break;
        case ROPT_THEME: cmdline_flag(&a->cl, "theme", "--theme", optarg); break;
        case ROPT_COLOR: cmdline_flag(&a->cl, "color", "--color", optarg); break;
        case ROPT_CONFIG: a->cl.config_file = optarg; break;
        case ROPT_HELP: fputs(replay_usage, stdout); return CHOIR_EXIT_OK;
        case ':': return usage_error("replay", "%s needs a value", argv[optind - 1]);
        default: return usage_error("replay", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("replay", "%s", "name the file to replay");
    if (optind + 1 < argc)
        return usage_error("replay", "unexpected argument \"%s\"", argv[optind + 1]);
    a->file = argv[optind];
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
        return usage_error("replay", "%s", "the console needs a terminal (standard input and output)");
    return -1;
}

int cmd_replay(int argc, char **argv)
{
    struct replay_args a = {0};
    struct choir_error err = {0};
    struct config *cfg;
    struct theme theme;
    struct replay *r = NULL;
    struct tui *t = NULL;
    struct tui_source src;
    struct tui_end end;
    int rc = replay_parse(argc, argv, &a);

    if (rc >= 0)
        return rc;
    if (!(cfg = load_config(&a.cl, &err)))
        return fail(&err);
    if (theme_load(&theme, config_get(cfg, "theme"), &err) < 0 ||
        replay_open(&r, a.file, a.speed, &err) < 0 ||
        console_open(&t, cfg, &theme, a.exit_at_end, &err) < 0) {
        rc = fail(&err);
    } else {
        replay_source(r, &src);
        tui_run(t, &src, &end);
        console_close(&t);
        json_decref(end.result);
        rc = CHOIR_EXIT_OK;
        if (replay_error(r)) {
            fprintf(stderr, "choir replay: %s\n", replay_error(r));
            rc = CHOIR_EXIT_INPUT;
        }
    }
    replay_free(r);
    config_free(cfg);
    return rc;
}

int cmd_keys(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fputs("usage: choir keys\n\nPrints the console's default keys as a Markdown table; "
              "tui.keys rebinds them.\n", argc == 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
        return argc == 2 && !strcmp(argv[1], "--help") ? CHOIR_EXIT_OK : CHOIR_EXIT_INPUT;
    }
    keymap_table_markdown(stdout);
    return CHOIR_EXIT_OK;
}
