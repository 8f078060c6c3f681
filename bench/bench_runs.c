/* bench_runs.c - how fast does a runonce start a run, and how much run
 * output can choird stream?
 *
 * Contract: two modes, each the console side of `choir runonce NODE`
 * against one real choird whose run.command is bench_stamp (bench/runs
 * sets it to `bench_stamp DIR/{job_id}.stamp @DIR/{job_id}.lines`).  Both
 * load the choir configuration the standard way (system file, user file,
 * --config or $CHOIR_CONFIG, CHOIR_* variables), connect one rpc_client
 * and call runonce_execute with a sink that stamps every reply and event
 * with CLOCK_REALTIME as it arrives.  They print figures and never assert
 * a timing.
 *
 *   bench_runs latency --node N --stamps DIR [--count N] [--warmup W]
 *                      [--pid PID] [--config FILE] [--timeout S]
 *     W (default 3) untimed and N (default 50) timed sequential runonce
 *     calls, each with a fresh job id J and no inputs, each followed to its
 *     finished event.  The key J.# is bound first (that round trip is
 *     timed on its own and printed); t0 = CLOCK_REALTIME just before
 *     runonce_execute, which binds J.# again (a repeat, one broker round
 *     trip) and sends the request.  Per call, in ms after t0: the runonce
 *     reply, exec (the first stamp bench_stamp wrote to DIR/J.stamp: the
 *     run's command began), the started event and the finished event at
 *     the console.  Prints median, p90, p99 (nearest rank) and max of each,
 *     and with --pid the CPU time choird (utime + stime of /proc/PID/stat)
 *     spent per runonce.
 *
 *   bench_runs stream --node N --stamps DIR --lines L [--pid PID]
 *                     [--sample-ms MS] [--label TEXT] [--config FILE]
 *                     [--wait S]
 *     Writes L to DIR/J.lines and asks for one run, so bench_stamp prints
 *     L lines; follows it to its finished event (at most S seconds,
 *     default 600).  Counts at the console: events, output events, lines
 *     received, lines skipped (the events' "skipped"), and checks that the
 *     seq numbers came 1, 2, ... without a gap and that received + skipped
 *     = the finished event's output_lines = L, with output_skipped =
 *     skipped.  Prints the wall time from the started to the finished
 *     event at the console, lines and events delivered per second, the
 *     producer's own time (DIR/J.stamp's two stamps), and with --pid:
 *     choird's CPU seconds during the run, its VmRSS just before the run,
 *     sampled every MS ms (default 50) by a thread while the run goes
 *     (min, median, max) and right after, and VmHWM before and after.
 *
 * Exit: 0 ok; 1 setup failure, a run refused, not finished in time, or
 * (stream) an event missing or the counts not adding up; 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "core/runonce.h"
#include "core/xalloc.h"
#include "net/bus.h"
#include "net/netconf.h"
#include "net/rpc.h"
#include "net/security.h"

static const char usage_text[] =
    "usage: bench_runs latency --node N --stamps DIR [--count N] [--warmup W] [--pid PID]\n"
    "                          [--config FILE] [--timeout S]\n"
    "       bench_runs stream --node N --stamps DIR --lines L [--pid PID] [--sample-ms MS]\n"
    "                         [--label TEXT] [--config FILE] [--wait S]\n";

static int usage(const char *why)
{
    if (why)
        fprintf(stderr, "bench_runs: %s\n", why);
    fputs(usage_text, stderr);
    return 2;
}

static long long realtime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (!*s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static double mb(long kb)
{
    return (double)kb * 1024 / 1e6;
}

/* ---- /proc --------------------------------------------------------------- */

/* utime + stime of pid in seconds, -1 when unreadable. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if (!(f = fopen(path, "re")))
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* after the comm field: state is field 3, utime 14, stime 15 */
    if (!(p = strrchr(buf, ')')) ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* A field of /proc/PID/status in kB (VmRSS, VmHWM), -1 when unreadable. */
static long proc_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t flen = strlen(field);
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    if (!(f = fopen(path, "re")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            kb = strtol(line + flen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* A thread that reads VmRSS of pid every ms milliseconds until stopped. */
struct sampler {
    pid_t pid;
    long ms;
    atomic_int stop;
    long *kb;
    size_t n, cap;
    pthread_t thread;
};

static void *sampler_main(void *arg)
{
    struct sampler *s = arg;
    struct timespec pause = {s->ms / 1000, (s->ms % 1000) * 1000000L};

    while (!atomic_load(&s->stop)) {
        long kb = proc_status_kb(s->pid, "VmRSS");

        if (kb >= 0) {
            if (s->n == s->cap) {
                s->cap = s->cap ? 2 * s->cap : 256;
                s->kb = xrealloc(s->kb, s->cap * sizeof(*s->kb));
            }
            s->kb[s->n++] = kb;
        }
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static int sampler_start(struct sampler *s, pid_t pid, long ms)
{
    memset(s, 0, sizeof(*s));
    s->pid = pid;
    s->ms = ms;
    atomic_init(&s->stop, 0);
    return pthread_create(&s->thread, NULL, sampler_main, s) == 0 ? 0 : -1;
}

static void sampler_stop(struct sampler *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
}

/* ---- figures ----------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;

    return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p of the sample at or below it. */
static size_t rank_of(size_t n, double p)
{
    double want = p * (double)n;
    size_t rank = (size_t)want;

    if ((double)rank < want)
        rank++;
    return rank ? rank - 1 : 0;
}

static void print_dist(const char *what, double *v, size_t n)
{
    if (n == 0) {
        printf("  %-34s %9s\n", what, "-");
        return;
    }
    qsort(v, n, sizeof(*v), cmp_double);
    printf("  %-34s %9.2f %9.2f %9.2f %9.2f %9.2f\n", what, v[0], v[rank_of(n, 0.5)],
           v[rank_of(n, 0.9)], v[rank_of(n, 0.99)], v[n - 1]);
}

/* ---- the console ---------------------------------------------------------------- */

struct console {
    struct config *cfg;
    struct security *sec;
    struct bus *bus;
    struct rpc_client client;
    long ttl;
    int reply_timeout_ms;
};

static int console_open(struct console *c, const char *config_file, long timeout,
                        struct choir_error *err)
{
    struct netconf nc;

    memset(c, 0, sizeof(*c));
    c->cfg = config_new(CONFIG_CHOIR);
    if (config_load_standard(c->cfg, config_file, err) < 0)
        return -1;
    netconf_init(&nc, c->cfg, NULL);
    if (security_open(&c->sec, &nc.sec, err) < 0 || bus_open(&c->bus, &nc.bus, err) < 0 ||
        rpc_client_init(&c->client, c->bus, c->sec, nc.bus.collective, err) < 0)
        return -1;
    c->ttl = config_get_int(c->cfg, "rpc.ttl");
    c->reply_timeout_ms = (int)(timeout ? timeout : config_get_int(c->cfg, "rpc.timeout")) * 1000;
    return 0;
}

static void console_close(struct console *c)
{
    bus_free(c->bus);
    security_free(c->sec);
    config_free(c->cfg);
}

/* What the sink saw of one run; times are CLOCK_REALTIME ns, 0 = not seen. */
struct track {
    long long reply, started, finished;
    int statuscode;
    unsigned long events, outputs, seq_gaps;
    unsigned long long lines, skipped;
    long long last_seq;
    json_t *fin;                  /* borrowed from the result */
};

static void on_reply(void *ctx, const char *node, int statuscode, const char *statusmsg)
{
    struct track *t = ctx;

    (void)node;
    t->reply = realtime_ns();
    t->statuscode = statuscode;
    if (statuscode != 0)
        fprintf(stderr, "bench_runs: runonce refused (%d): %s\n", statuscode, statusmsg);
}

static void on_event(void *ctx, const char *node, const json_t *ev)
{
    struct track *t = ctx;
    long long now = realtime_ns();
    const char *kind = json_string_value(json_object_get(ev, "event"));
    long long seq = json_integer_value(json_object_get(ev, "seq"));

    (void)node;
    t->events++;
    if (seq != t->last_seq + 1)
        t->seq_gaps++;
    t->last_seq = seq;
    if (!kind)
        return;
    if (strcmp(kind, "started") == 0) {
        t->started = now;
    } else if (strcmp(kind, "finished") == 0) {
        t->finished = now;
    } else if (strcmp(kind, "output") == 0) {
        t->outputs++;
        t->lines += json_array_size(json_object_get(ev, "lines"));
        t->skipped += (unsigned long long)json_integer_value(json_object_get(ev, "skipped"));
    }
}

/* One runonce of job on node, followed to its end; -1 when the bus failed. */
static int run_one(struct console *c, const char *node, const char *job, long wait_s,
                   struct track *t, struct runonce_result *res, struct choir_error *err)
{
    struct runonce_sink sink = {on_reply, on_event, t};
    struct runonce_opts o = {
        .job_id = job, .inputs = NULL, .nodes = &node, .nnodes = 1, .ttl = c->ttl,
        .reply_timeout_ms = c->reply_timeout_ms, .run_timeout_ms = (int)wait_s * 1000,
    };

    memset(t, 0, sizeof(*t));
    t->statuscode = -1;
    if (runonce_execute(&c->client, &o, &sink, res, err) < 0)
        return -1;
    t->fin = res->nodes[0].finished;
    return 0;
}

/* The stamps bench_stamp wrote to DIR/JOB.stamp: how many were read. */
static int read_stamps(const char *dir, const char *job, long long *start, long long *end)
{
    char path[4096];
    FILE *f;
    int n;

    snprintf(path, sizeof(path), "%s/%s.stamp", dir, job);
    if (!(f = fopen(path, "re")))
        return 0;
    n = fscanf(f, "%lld %lld", start, end);
    fclose(f);
    return n < 0 ? 0 : n;
}

struct common_opts {
    const char *node, *stamps, *config_file, *label;
    long count, warmup, timeout, wait, lines, sample_ms;
    pid_t pid;
};

enum { OPT_NODE = 256, OPT_STAMPS, OPT_COUNT, OPT_WARMUP, OPT_PID, OPT_CONFIG, OPT_TIMEOUT,
       OPT_WAIT, OPT_LINES, OPT_SAMPLE, OPT_LABEL, OPT_HELP };

static const struct option lopts[] = {
    {"node", required_argument, NULL, OPT_NODE},
    {"stamps", required_argument, NULL, OPT_STAMPS},
    {"count", required_argument, NULL, OPT_COUNT},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"pid", required_argument, NULL, OPT_PID},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"wait", required_argument, NULL, OPT_WAIT},
    {"lines", required_argument, NULL, OPT_LINES},
    {"sample-ms", required_argument, NULL, OPT_SAMPLE},
    {"label", required_argument, NULL, OPT_LABEL},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* 0 parsed, else the exit status (usage or --help). */
static int parse_opts(int argc, char **argv, struct common_opts *o)
{
    long v;
    int c;

    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (c) {
        case OPT_NODE: o->node = optarg; break;
        case OPT_STAMPS: o->stamps = optarg; break;
        case OPT_CONFIG: o->config_file = optarg; break;
        case OPT_LABEL: o->label = optarg; break;
        case OPT_COUNT:
            if (parse_long(optarg, 1, 1000000, &o->count) < 0)
                return usage("--count takes 1..1000000");
            break;
        case OPT_WARMUP:
            if (parse_long(optarg, 0, 1000, &o->warmup) < 0)
                return usage("--warmup takes 0..1000");
            break;
        case OPT_PID:
            if (parse_long(optarg, 1, 1L << 30, &v) < 0)
                return usage("--pid takes a process id");
            o->pid = (pid_t)v;
            break;
        case OPT_TIMEOUT:
            if (parse_long(optarg, 1, 3600, &o->timeout) < 0)
                return usage("--timeout takes 1..3600 seconds");
            break;
        case OPT_WAIT:
            if (parse_long(optarg, 1, 86400, &o->wait) < 0)
                return usage("--wait takes 1..86400 seconds");
            break;
        case OPT_LINES:
            if (parse_long(optarg, 0, 1000000000L, &o->lines) < 0)
                return usage("--lines takes 0..1000000000");
            break;
        case OPT_SAMPLE:
            if (parse_long(optarg, 1, 10000, &o->sample_ms) < 0)
                return usage("--sample-ms takes 1..10000");
            break;
        case OPT_HELP: fputs(usage_text, stdout); return -1;
        default: return usage(NULL);
        }
    }
    if (optind != argc || !o->node || !o->stamps)
        return usage("--node and --stamps are required");
    return 0;
}

static int fail(const struct choir_error *err)
{
    fprintf(stderr, "bench_runs: %s\n", err->msg);
    return 1;
}

/* ---- latency --------------------------------------------------------------------- */

enum { LAT_BIND, LAT_REPLY, LAT_EXEC, LAT_STARTED, LAT_FINISHED, LAT_N };

static int latency_main(int argc, char **argv)
{
    static const char *const names[LAT_N] = {
        "bind <job>.# (before t0)", "runonce reply", "exec (bench_stamp began)",
        "started event", "finished event",
    };
    struct common_opts o = {.count = 50, .warmup = 3, .wait = 60};
    struct choir_error err = {0};
    struct console c;
    double *ms[LAT_N] = {NULL}, cpu0 = -1, cpu1 = -1, me0 = cpu_s();
    size_t n[LAT_N] = {0};
    unsigned long bad = 0, nostamp = 0;
    int rc = parse_opts(argc, argv, &o);

    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (console_open(&c, o.config_file, o.timeout, &err) < 0) {
        rc = fail(&err);
        goto out;
    }
    for (int k = 0; k < LAT_N; k++)
        ms[k] = xcalloc((size_t)o.count, sizeof(double));
    printf("== latency: %ld sequential runonce calls to %s via %s (%ld untimed first)\n", o.count,
           o.node, bus_broker(c.bus), o.warmup);
    for (long i = -o.warmup; i < o.count; i++) {
        struct runonce_result res = {0};
        struct track t;
        char job[80], key[96];
        long long b0, b1, t0, st = 0, en = 0;

        if (i == 0) {
            cpu0 = o.pid ? proc_cpu_s(o.pid) : -1;
            me0 = cpu_s();
        }
        snprintf(job, sizeof(job), "bench-lat-%ld-%ld", (long)getpid(), i + o.warmup);
        snprintf(key, sizeof(key), "%s.#", job);
        b0 = realtime_ns();
        if (bus_bind_events(c.bus, key, &err) < 0) {
            rc = fail(&err);
            goto out;
        }
        b1 = realtime_ns();
        t0 = realtime_ns();
        if (run_one(&c, o.node, job, o.wait, &t, &res, &err) < 0) {
            runonce_result_clear(&res);
            rc = fail(&err);
            goto out;
        }
        if (t.statuscode != 0 || !t.finished) {
            fprintf(stderr, "bench_runs: job %s: %s\n", job, runonce_state_name(res.nodes[0].state));
            bad++;
        } else if (i >= 0) {
            ms[LAT_BIND][n[LAT_BIND]++] = (double)(b1 - b0) / 1e6;
            ms[LAT_REPLY][n[LAT_REPLY]++] = (double)(t.reply - t0) / 1e6;
            if (t.started)
                ms[LAT_STARTED][n[LAT_STARTED]++] = (double)(t.started - t0) / 1e6;
            ms[LAT_FINISHED][n[LAT_FINISHED]++] = (double)(t.finished - t0) / 1e6;
            if (read_stamps(o.stamps, job, &st, &en) >= 1)
                ms[LAT_EXEC][n[LAT_EXEC]++] = (double)(st - t0) / 1e6;
            else
                nostamp++;
        }
        runonce_result_clear(&res);
    }
    cpu1 = o.pid ? proc_cpu_s(o.pid) : -1;
    printf("runs: %zu followed to their finished event, %lu refused or unfinished, %lu without "
           "a stamp\n", n[LAT_FINISHED], bad, nostamp);
    printf("ms after t0 (CLOCK_REALTIME just before runonce_execute; the bind is before t0):\n");
    printf("  %-34s %9s %9s %9s %9s %9s\n", "", "min", "median", "p90", "p99", "max");
    for (int k = 0; k < LAT_N; k++)
        print_dist(names[k], ms[k], n[k]);
    if (cpu0 >= 0 && cpu1 >= 0)
        printf("choird CPU per runonce (verify, fork, sign 2 events and the reply): %.2f ms\n",
               (cpu1 - cpu0) * 1000 / (double)o.count);
    printf("console CPU per runonce: %.2f ms\n", (cpu_s() - me0) * 1000 / (double)o.count);
    if (n[LAT_EXEC] && n[LAT_FINISHED])
        printf("summary: runonce to exec median %.2f ms, p99 %.2f ms; to the finished event "
               "median %.2f ms\n", ms[LAT_EXEC][rank_of(n[LAT_EXEC], 0.5)],
               ms[LAT_EXEC][rank_of(n[LAT_EXEC], 0.99)],
               ms[LAT_FINISHED][rank_of(n[LAT_FINISHED], 0.5)]);
    rc = bad || nostamp ? 1 : 0;
out:
    for (int k = 0; k < LAT_N; k++)
        free(ms[k]);
    console_close(&c);
    return rc;
}

/* ---- stream ------------------------------------------------------------------------ */

static int write_lines_file(const char *dir, const char *job, long lines)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.lines", dir, job);
    if (!(f = fopen(path, "we")))
        return -1;
    fprintf(f, "%ld\n", lines);
    return fclose(f);
}

/* Prints what the console saw; 0 when nothing is missing. */
static int stream_report(const struct common_opts *o, const struct track *t, long long st,
                         long long en, int stamps)
{
    double wall = (double)(t->finished - t->started) / 1e9;
    long long out_lines = json_integer_value(json_object_get(t->fin, "output_lines"));
    long long out_skipped = json_integer_value(json_object_get(t->fin, "output_skipped"));
    int ok = t->seq_gaps == 0 && t->lines + t->skipped == (unsigned long long)out_lines &&
             out_lines == o->lines && (unsigned long long)out_skipped == t->skipped;

    if (stamps == 2)
        printf("producer: %ld lines written in %.1f ms (%.0f lines/s); it began %.1f ms before "
               "the started event reached the console and ended %.3f s before the finished "
               "event did\n", o->lines, (double)(en - st) / 1e6,
               en > st ? (double)o->lines / ((double)(en - st) / 1e9) : 0,
               (double)(t->started - st) / 1e6, (double)(t->finished - en) / 1e9);
    printf("console: %lu events (%lu output), seq 1..%lld %s\n", t->events, t->outputs,
           t->last_seq, t->seq_gaps ? "WITH GAPS" : "without a gap");
    printf("  lines received %llu, skipped %llu; finished says output_lines %lld, "
           "output_skipped %lld, duration_ms %lld: %s\n", t->lines, t->skipped, out_lines,
           out_skipped, json_integer_value(json_object_get(t->fin, "duration_ms")),
           ok ? "received + skipped = output_lines = lines printed" : "MISMATCH");
    printf("  started -> finished at the console: %.3f s; delivered %.0f lines/s in %.1f output "
           "events/s; choird read %.0f lines/s\n", wall, wall > 0 ? (double)t->lines / wall : 0,
           wall > 0 ? (double)t->outputs / wall : 0, wall > 0 ? (double)out_lines / wall : 0);
    return ok ? 0 : 1;
}

static void rss_report(struct sampler *s, long idle, long hwm0, long after, long hwm1,
                       double cpu, const struct track *t)
{
    double wall = (double)(t->finished - t->started) / 1e9;

    if (cpu >= 0)
        printf("choird CPU (/proc ticks of %.0f ms): %.2f s during the run (%.0f %% of one "
               "core), %.0f us per output event, %.2f us per line read\n",
               1000.0 / (double)sysconf(_SC_CLK_TCK), cpu, wall > 0 ? 100 * cpu / wall : 0,
               t->outputs ? cpu * 1e6 / (double)t->outputs : 0,
               t->lines + t->skipped ? cpu * 1e6 / (double)(t->lines + t->skipped) : 0);
    if (s->n) {
        qsort(s->kb, s->n, sizeof(*s->kb), cmp_long);
        printf("choird VmRSS: %.2f MB idle before; during the run (%zu samples every %ld ms) "
               "min %.2f, median %.2f, max %.2f MB; %.2f MB right after\n", mb(idle), s->n,
               s->ms, mb(s->kb[0]), mb(s->kb[rank_of(s->n, 0.5)]), mb(s->kb[s->n - 1]),
               mb(after));
        printf("choird VmHWM: %.2f MB before, %.2f MB after (max sampled RSS - idle: %+.2f MB)\n",
               mb(hwm0), mb(hwm1), mb(s->kb[s->n - 1] - idle));
    }
}

static int stream_main(int argc, char **argv)
{
    struct common_opts o = {.lines = -1, .wait = 600, .sample_ms = 50};
    struct choir_error err = {0};
    struct runonce_result res = {0};
    struct console c;
    struct sampler s = {0};
    struct track t;
    char job[80];
    long long st = 0, en = 0;
    long idle = -1, hwm0 = -1, after = -1, hwm1 = -1;
    double cpu0 = -1, cpu1 = -1;
    int stamps, sampling = 0, rc = parse_opts(argc, argv, &o);

    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (o.lines < 0)
        return usage("stream needs --lines");
    if (console_open(&c, o.config_file, o.timeout, &err) < 0) {
        rc = fail(&err);
        goto out;
    }
    snprintf(job, sizeof(job), "bench-stream-%ld-%ld", (long)getpid(), (long)time(NULL));
    if (write_lines_file(o.stamps, job, o.lines) < 0) {
        fprintf(stderr, "bench_runs: cannot write %s/%s.lines: %s\n", o.stamps, job,
                strerror(errno));
        rc = 1;
        goto out;
    }
    printf("== stream%s%s: one run printing %ld lines on %s via %s\n", o.label ? ": " : "",
           o.label ? o.label : "", o.lines, o.node, bus_broker(c.bus));
    if (o.pid) {
        idle = proc_status_kb(o.pid, "VmRSS");
        hwm0 = proc_status_kb(o.pid, "VmHWM");
        cpu0 = proc_cpu_s(o.pid);
        sampling = sampler_start(&s, o.pid, o.sample_ms) == 0;
    }
    rc = run_one(&c, o.node, job, o.wait, &t, &res, &err);
    if (sampling)
        sampler_stop(&s);
    if (o.pid) {
        cpu1 = proc_cpu_s(o.pid);
        after = proc_status_kb(o.pid, "VmRSS");
        hwm1 = proc_status_kb(o.pid, "VmHWM");
    }
    if (rc < 0) {
        rc = fail(&err);
        goto out;
    }
    if (t.statuscode != 0 || !t.finished || !t.started) {
        fprintf(stderr, "bench_runs: job %s: %s\n", job, runonce_state_name(res.nodes[0].state));
        rc = 1;
        goto out;
    }
    stamps = read_stamps(o.stamps, job, &st, &en);
    rc = stream_report(&o, &t, st, en, stamps);
    rss_report(&s, idle, hwm0, after, hwm1, cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1, &t);
out:
    free(s.kb);
    runonce_result_clear(&res);
    console_close(&c);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(NULL);
    if (strcmp(argv[1], "latency") == 0)
        return latency_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "stream") == 0)
        return stream_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    return usage("the mode is latency or stream");
}
