/* bench_plan.c - how fast and how lean is site_parse + plan_compute?
 *
 * Contract: generates in memory, from a seeded PRNG (same options, same
 * bytes), a Puppet site graph JSON text shaped like
 * /puppet/v3/environment output (examples/sample_app.json), then times
 * site_parse and plan_compute (median of --repeat runs, CLOCK_MONOTONIC)
 * and reports the figures, peak RSS (getrusage ru_maxrss) and their ratios
 * to the targets: parse + plan within 100 ms, peak RSS within 100 MB
 * (1 MB = 10^6 bytes).  Process CPU time is shown beside wall time, as it
 * moves less when other work shares the machine.  It never asserts
 * timings.
 *
 * The graph is a layered DAG: node i sits on layer i % L; every component
 * produces 0..2 capabilities (each capability name is produced exactly
 * once) and a component on layer k consumes 0..3 capabilities produced on
 * layers < k.  Each node's first component ("anchor") produces one
 * capability and, above layer 0, consumes one capability of layer k-1.  So
 * a node's longest dependency chain has length exactly its layer, the
 * planner must find one group per non-empty layer, and node i must land in
 * group i % L: both are checked, and a mismatch exits 1.
 *
 * Exit: 0 ok, 1 check mismatch or planner error, 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/error.h"
#include "core/plan.h"
#include "core/site.h"
#include "core/xalloc.h"

#define TARGET_MS 100.0
#define TARGET_MB 100.0
#define MAX_CONSUMES 3
#define NAME_MIX 2654435761u   /* odd, so i * NAME_MIX is a bijection on uint32 */

struct options {
    uint32_t nodes, comps, layers, apps, repeat;
    uint64_t seed;
    const char *write_file;
    int compact;
};

/* ---- deterministic PRNG (splitmix64) ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform-enough in [0, n), n > 0. */
static uint32_t rng_below(uint32_t n)
{
    return (uint32_t)(rng_next() % n);
}

/* ---- growing text buffer ---- */

struct sbuf {
    char *p;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3)))
static void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len)
            break;
        b->cap = b->cap ? b->cap * 2 : 1 << 20;
        b->p = xrealloc(b->p, b->cap);
    }
    b->len += (size_t)n;
}

/* ---- the generated graph ---- */

struct comp {
    uint32_t node, app;
    uint32_t first_cap, nproduces;   /* produced capability ids are consecutive */
    uint32_t consumes[MAX_CONSUMES], nconsumes;
};

struct graph {
    const struct options *opt;
    struct comp *comps;
    uint32_t ncaps;
};

static uint32_t node_layer(const struct options *o, uint32_t node)
{
    return node % o->layers;
}

/* Component c's node: the first N components are the nodes' anchors. */
static void graph_place(struct graph *g)
{
    const struct options *o = g->opt;

    for (uint32_t c = 0; c < o->comps; c++) {
        g->comps[c].node = c < o->nodes ? c : rng_below(o->nodes);
        g->comps[c].app = rng_below(o->apps);
    }
}

/* Fills produces/consumes of one component on layer k; caps_below is the
 * number of capabilities produced on layers < k, layer_prev the first
 * capability of layer k-1. */
static void graph_wire(struct graph *g, struct comp *c, int anchor, uint32_t k, uint32_t layer_prev,
                       uint32_t caps_below)
{
    uint32_t want = rng_below(MAX_CONSUMES + 1);

    c->first_cap = g->ncaps;
    c->nproduces = anchor ? 1 : rng_below(3);
    g->ncaps += c->nproduces;
    c->nconsumes = 0;
    if (k == 0)
        return;
    if (anchor) {
        c->consumes[c->nconsumes++] = layer_prev + rng_below(caps_below - layer_prev);
        want = rng_below(MAX_CONSUMES);
    }
    while (want-- > 0)
        c->consumes[c->nconsumes++] = rng_below(caps_below);
}

/* Wires the components layer by layer, so the capabilities of layers < k
 * are exactly ids [0, layer_start[k]). */
static void graph_wire_all(struct graph *g)
{
    const struct options *o = g->opt;
    uint32_t *order = xmalloc((size_t)o->comps * sizeof(*order));
    uint32_t *start = xcalloc((size_t)o->layers + 1, sizeof(*start));
    uint32_t prev = 0;

    for (uint32_t c = 0; c < o->comps; c++)
        start[node_layer(o, g->comps[c].node) + 1]++;
    for (uint32_t k = 0; k < o->layers; k++)
        start[k + 1] += start[k];
    for (uint32_t c = 0; c < o->comps; c++)
        order[start[node_layer(o, g->comps[c].node)]++] = c;
    /* start[k] is now the end of layer k in order[]. */
    for (uint32_t k = 0, i = 0; k < o->layers; k++) {
        uint32_t below = g->ncaps;

        for (; i < start[k]; i++) {
            uint32_t c = order[i];

            graph_wire(g, &g->comps[c], c < o->nodes, k, prev, below);
        }
        prev = below;
    }
    free(start);
    free(order);
}

static const char *const cap_types[] = {"Sql", "Http", "Amqp", "Redis", "Ldap"};

static void emit_cap(struct sbuf *b, uint32_t cap)
{
    sbuf_printf(b, "\"%s[cap%u]\"", cap_types[cap % 5], cap);
}

static void emit_node_name(struct sbuf *b, uint32_t node)
{
    sbuf_printf(b, "\"node-%08x.example.net\"", node * NAME_MIX);
}

/* One "produces"/"consumes" array; `ind` is the indentation of the key. */
static void emit_caps(struct sbuf *b, const struct options *o, const char *key, const uint32_t *ids,
                      uint32_t first, uint32_t n, const char *ind)
{
    sbuf_printf(b, "%s\"%s\":%s[", ind, key, o->compact ? "" : " ");
    for (uint32_t i = 0; i < n; i++) {
        sbuf_printf(b, "%s%s%s", i ? "," : "", o->compact ? "" : "\n", o->compact ? "" : ind);
        if (!o->compact)
            sbuf_printf(b, "    ");
        emit_cap(b, ids ? ids[i] : first + i);
    }
    sbuf_printf(b, "%s%s],", o->compact ? "" : "\n", o->compact ? "" : ind);
}

static void emit_comp(struct sbuf *b, const struct options *o, const struct comp *c, uint32_t id,
                      int first)
{
    const char *nl = o->compact ? "" : "\n", *ind = o->compact ? "" : "                ";

    sbuf_printf(b, "%s%s%s\"Stack::Role%u[c%u]\":%s{%s", first ? "" : ",", nl,
                o->compact ? "" : "            ", id % 17, id, o->compact ? "" : " ", nl);
    emit_caps(b, o, "produces", NULL, c->first_cap, c->nproduces, ind);
    sbuf_printf(b, "%s", nl);
    emit_caps(b, o, "consumes", c->consumes, 0, c->nconsumes, ind);
    sbuf_printf(b, "%s%s\"node\":%s", nl, ind, o->compact ? "" : " ");
    emit_node_name(b, c->node);
    sbuf_printf(b, "%s%s}", nl, o->compact ? "" : "            ");
}

/* Writes the whole document, applications in index order. */
static void emit_site(struct sbuf *b, const struct graph *g)
{
    const struct options *o = g->opt;
    const char *nl = o->compact ? "" : "\n";
    uint32_t *start = xcalloc((size_t)o->apps + 1, sizeof(*start)), *order;

    order = xmalloc((size_t)o->comps * sizeof(*order));
    for (uint32_t c = 0; c < o->comps; c++)
        start[g->comps[c].app + 1]++;
    for (uint32_t a = 0; a < o->apps; a++)
        start[a + 1] += start[a];
    for (uint32_t c = 0; c < o->comps; c++)
        order[start[g->comps[c].app]++] = c;
    sbuf_printf(b, "{%s%s\"environment\": \"production\",%s%s\"applications\": {", nl,
                o->compact ? "" : "    ", nl, o->compact ? "" : "    ");
    for (uint32_t a = 0, i = 0; a < o->apps; a++) {
        sbuf_printf(b, "%s%s%s\"Stack[app%03u]\": {", a ? "," : "", nl,
                    o->compact ? "" : "        ", a);
        for (uint32_t first = i; i < start[a]; i++)
            emit_comp(b, o, &g->comps[order[i]], order[i], i == first);
        sbuf_printf(b, "%s%s}", nl, o->compact ? "" : "        ");
    }
    sbuf_printf(b, "%s%s},%s%s\"code_id\": null%s}%s", nl, o->compact ? "" : "    ", nl,
                o->compact ? "" : "    ", nl, nl);
    free(order);
    free(start);
}

static void generate(const struct options *o, struct sbuf *json, uint32_t *ncaps)
{
    struct graph g = {.opt = o};

    rng_state = o->seed;
    g.comps = xcalloc(o->comps, sizeof(*g.comps));
    graph_place(&g);
    graph_wire_all(&g);
    emit_site(json, &g);
    *ncaps = g.ncaps;
    free(g.comps);
}

/* ---- measuring ---- */

static double clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

static double peak_rss_mb(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0 / 1e6; /* ru_maxrss is in KiB on Linux */
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median_of(double *v, uint32_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Wall time (CLOCK_MONOTONIC) and CPU time (CLOCK_PROCESS_CPUTIME_ID) of
 * repeated runs; CPU time is the steadier figure on a shared machine. */
struct timer {
    double *wall, *cpu;
    uint32_t n;
    double wall0, cpu0;
};

struct stats {
    double median, min, max;   /* wall */
    double cpu_median;
};

static void timer_init(struct timer *t, uint32_t runs)
{
    *t = (struct timer){0};
    t->wall = xcalloc(runs, sizeof(*t->wall));
    t->cpu = xcalloc(runs, sizeof(*t->cpu));
}

static void timer_start(struct timer *t)
{
    t->wall0 = now_ms();
    t->cpu0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
}

static void timer_stop(struct timer *t)
{
    t->cpu[t->n] = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - t->cpu0;
    t->wall[t->n++] = now_ms() - t->wall0;
}

/* The figures, and frees the samples. */
static struct stats timer_done(struct timer *t)
{
    struct stats st = {0};

    if (t->n > 0) {
        st.median = median_of(t->wall, t->n);
        st.min = t->wall[0];
        st.max = t->wall[t->n - 1];
        st.cpu_median = median_of(t->cpu, t->n);
    }
    free(t->wall);
    free(t->cpu);
    return st;
}

/* Parses R times, keeping the last site; returns -1 on a parse error. */
static int time_parse(const struct options *o, const struct sbuf *json, struct site **site,
                      struct stats *st)
{
    struct choir_error err = {0};
    struct timer t;
    int rc = 0;

    timer_init(&t, o->repeat);
    *site = NULL;
    for (uint32_t r = 0; r < o->repeat && rc == 0; r++) {
        site_free(*site);
        timer_start(&t);
        rc = site_parse(site, json->p, json->len, "bench.json", &err);
        timer_stop(&t);
    }
    if (rc < 0)
        fprintf(stderr, "bench_plan: site_parse: %s\n", err.msg);
    *st = timer_done(&t);
    return rc;
}

/* The share of jansson alone: json_loadb + json_decref, as site_parse
 * calls it. */
static struct stats time_jansson(const struct options *o, const struct sbuf *json)
{
    struct timer t;

    timer_init(&t, o->repeat);
    for (uint32_t r = 0; r < o->repeat; r++) {
        json_error_t jerr;
        json_t *root;

        timer_start(&t);
        root = json_loadb(json->p, json->len, JSON_REJECT_DUPLICATES, &jerr);
        json_decref(root);
        timer_stop(&t);
    }
    return timer_done(&t);
}

static int time_plan(const struct options *o, const struct site *site, struct plan **plan,
                     struct stats *st)
{
    struct plan_options popt = {0};
    struct choir_error err = {0};
    struct timer t;
    int rc = 0;

    timer_init(&t, o->repeat);
    *plan = NULL;
    for (uint32_t r = 0; r < o->repeat && rc == 0; r++) {
        plan_free(*plan);
        timer_start(&t);
        rc = plan_compute(plan, site, &popt, &err);
        timer_stop(&t);
    }
    if (rc < 0)
        fprintf(stderr, "bench_plan: plan_compute: %s\n", err.msg);
    *st = timer_done(&t);
    return rc;
}

/* Counts plan nodes whose group is not the layer the generator gave them
 * (the node index is recovered from the certname's hex). */
static uint32_t misplaced_nodes(const struct options *o, const struct plan *plan)
{
    uint32_t inv = NAME_MIX, bad = 0;

    for (int i = 0; i < 5; i++) /* Newton: inverse of an odd number mod 2^32 */
        inv *= 2u - NAME_MIX * inv;
    for (uint32_t i = 0; i < plan->nnodes; i++) {
        unsigned int mixed;

        if (sscanf(plan->nodes[i].name, "node-%8x.", &mixed) != 1 ||
            plan->nodes[i].group != node_layer(o, (uint32_t)mixed * inv))
            bad++;
    }
    return bad;
}

static int write_file(const char *path, const struct sbuf *json)
{
    FILE *f = fopen(path, "w");

    if (!f || fwrite(json->p, 1, json->len, f) != json->len || fclose(f) != 0) {
        fprintf(stderr, "bench_plan: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- report ---- */

static void report_stats(const char *what, const struct stats *st, uint32_t runs)
{
    printf("%-16s median %8.1f ms   (min %.1f, max %.1f over %u runs; cpu %.1f ms)\n", what,
           st->median, st->min, st->max, runs, st->cpu_median);
}

static void report_times(const struct options *o, const struct stats *parse,
                         const struct stats *jansson, const struct stats *plan)
{
    double total = parse->median + plan->median, cpu = parse->cpu_median + plan->cpu_median;

    report_stats("site_parse", parse, o->repeat);
    printf("  jansson alone  median %8.1f ms   (json_loadb + json_decref, %.0f%% of site_parse;"
           " cpu %.1f ms)\n",
           jansson->median, parse->median > 0 ? 100.0 * jansson->median / parse->median : 0.0,
           jansson->cpu_median);
    report_stats("plan_compute", plan, o->repeat);
    printf("parse + plan            %8.1f ms   (%.2f of the %.0f ms target; cpu %.1f ms)\n", total,
           total / TARGET_MS, TARGET_MS, cpu);
    printf("summary: parse %.1f ms, plan %.1f ms, total %.1f ms (%.2f of the %.0f ms target)\n",
           parse->median, plan->median, total, total / TARGET_MS, TARGET_MS);
}

static int report_checks(const struct options *o, const struct plan *plan)
{
    uint32_t expected = o->nodes < o->layers ? o->nodes : o->layers;
    uint32_t bad = misplaced_nodes(o, plan);
    int ok = plan->ngroups == expected && bad == 0;

    printf("groups: %u (expected %u) %s\n", plan->ngroups, expected,
           plan->ngroups == expected ? "ok" : "MISMATCH");
    printf("nodes in their layer's group: %u of %u %s\n", plan->nnodes - bad, plan->nnodes,
           bad == 0 ? "ok" : "MISMATCH");
    return ok ? 0 : -1;
}

static void report_memory(double before, double peak)
{
    printf("RSS before parse        %8.1f MB   (generator freed, JSON text held)\n", before);
    printf("peak RSS                %8.1f MB   (%.2f of the %.0f MB target; "
           "+%.1f MB in parse and plan)\n",
           peak, peak / TARGET_MB, TARGET_MB, peak - before);
}

static int run(const struct options *o)
{
    struct sbuf json = {0};
    struct stats parse_st, plan_st, jansson_st;
    struct site *site;
    struct plan *plan;
    uint32_t ncaps;
    double t0 = now_ms(), rss_before, rss_peak;
    int rc;

    generate(o, &json, &ncaps);
    printf("choir plan benchmark: seed %llu, %u nodes, %u components, %u layers, %u applications\n",
           (unsigned long long)o->seed, o->nodes, o->comps, o->layers, o->apps);
    printf("site JSON               %8.1f MB   (%s, %u capabilities, generated in %.0f ms)\n",
           (double)json.len / 1e6, o->compact ? "compact" : "pretty-printed", ncaps, now_ms() - t0);
    if (o->write_file && write_file(o->write_file, &json) < 0) {
        free(json.p);
        return 1;
    }
    rss_before = peak_rss_mb();
    if (time_parse(o, &json, &site, &parse_st) < 0) {
        free(json.p);
        return 1;
    }
    rc = time_plan(o, site, &plan, &plan_st);
    rss_peak = peak_rss_mb(); /* before the jansson comparison builds its tree */
    jansson_st = time_jansson(o, &json);
    if (rc == 0) {
        report_times(o, &parse_st, &jansson_st, &plan_st);
        rc = report_checks(o, plan);
        report_memory(rss_before, rss_peak);
    }
    plan_free(plan);
    site_free(site);
    free(json.p);
    return rc == 0 ? 0 : 1;
}

/* ---- options ---- */

static const char usage[] =
    "usage: bench_plan [--nodes N] [--components M] [--layers L] [--apps A] [--seed S]\n"
    "                  [--repeat R] [--compact] [--write FILE]\n"
    "\n"
    "Generates a layered random Puppet site (defaults: 10000 nodes, 100000 components,\n"
    "8 layers, 100 applications, seed 1, pretty-printed like PuppetServer's sample), then\n"
    "reports the median site_parse and plan_compute times over R runs (default 5), the\n"
    "groups found and peak RSS, against the targets (100 ms, 100 MB).\n"
    "  --write FILE   also save the JSON, e.g. for 'choir plan --site FILE'\n"
    "  --compact      emit JSON without whitespace\n";

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *s < '0' || *s > '9' || *end || v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"nodes", required_argument, NULL, 'n'},  {"components", required_argument, NULL, 'm'},
        {"layers", required_argument, NULL, 'l'}, {"apps", required_argument, NULL, 'a'},
        {"seed", required_argument, NULL, 's'},   {"repeat", required_argument, NULL, 'r'},
        {"write", required_argument, NULL, 'w'},  {"compact", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    uint32_t seed = 1;
    int ch, bad = 0;

    *o = (struct options){.nodes = 10000, .comps = 100000, .layers = 8, .apps = 100, .repeat = 5};
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n': bad |= parse_u32(optarg, 1, 10000000, &o->nodes); break;
        case 'm': bad |= parse_u32(optarg, 1, 50000000, &o->comps); break;
        case 'l': bad |= parse_u32(optarg, 1, 100000, &o->layers); break;
        case 'a': bad |= parse_u32(optarg, 1, 100000, &o->apps); break;
        case 's': bad |= parse_u32(optarg, 0, UINT32_MAX, &seed); break;
        case 'r': bad |= parse_u32(optarg, 1, 1000, &o->repeat); break;
        case 'w': o->write_file = optarg; break;
        case 'c': o->compact = 1; break;
        case 'h': fputs(usage, stdout); exit(0);
        default: bad = -1;
        }
    }
    o->seed = seed;
    if (bad || optind != argc || o->comps < o->nodes) {
        if (o->comps < o->nodes)
            fputs("bench_plan: --components must be at least --nodes\n", stderr);
        fputs(usage, stderr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;

    if (parse_options(argc, argv, &o) < 0)
        return 2;
    return run(&o);
}
