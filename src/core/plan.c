/* plan.c - see plan.h.
 *
 * Nodes get dense ids in certname order, so "sorted by certname" is a sort
 * of small integers.  Producers and dependency edges are kept as CSR
 * arrays (start offsets + flat lists) built by counting, with duplicates
 * removed by a stamp array; layering is Kahn's algorithm one layer at a
 * time. */
#include "core/plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

#define PLAN_NONE UINT32_MAX

/* Flat adjacency: the neighbours of v are list[start[v] .. start[v+1]). */
struct plan_csr {
    uint32_t *start;
    uint32_t *list;
};

struct plan_build {
    const struct site *site;
    struct plan *plan;
    struct choir_error *err;
    uint32_t *site2plan;       /* site node id -> plan node id */
    struct plan_csr producers; /* capability id -> producing plan nodes */
    struct plan_csr succ;      /* plan node -> nodes that depend on it */
    uint32_t *indeg;
    uint32_t *cursor;          /* fill position per node while building succ */
};

static void plan_csr_free(struct plan_csr *c)
{
    free(c->start);
    free(c->list);
}

/* Removes duplicates inside each list of c (n lists), compacting in place.
 * `stamp` is scratch of one slot per possible value, zeroed. */
static void plan_csr_dedupe(struct plan_csr *c, uint32_t n, uint32_t *stamp)
{
    uint32_t out = 0;

    for (uint32_t v = 0; v < n; v++) {
        uint32_t begin = c->start[v], end = c->start[v + 1];

        c->start[v] = out;
        for (uint32_t i = begin; i < end; i++) {
            uint32_t w = c->list[i];

            if (stamp[w] != v + 1) {
                stamp[w] = v + 1;
                c->list[out++] = w;
            }
        }
    }
    c->start[n] = out;
}

static int plan_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

/* Iterates the selected applications: every one, or the instance. */
#define PLAN_FOREACH_APP(b, a)                                                           \
    for (uint32_t a##_i = 0; a##_i < (b)->plan->napps && ((a) = (b)->plan->apps[a##_i], 1); \
         a##_i++)

static int plan_select_apps(struct plan_build *b, const char *instance)
{
    const struct site *s = b->site;
    struct plan *p = b->plan;
    const struct site_app *app;

    p->apps = xcalloc(s->napps ? s->napps : 1, sizeof(*p->apps));
    if (!instance) {
        for (uint32_t a = 0; a < s->napps; a++)
            p->apps[p->napps++] = a;
        return 0;
    }
    app = site_find_app(s, instance);
    if (app) {
        p->apps[p->napps++] = (uint32_t)(app - s->apps);
        return 0;
    }
    char known[700] = "";
    for (uint32_t a = 0; a < s->napps && a < 20; a++) {
        size_t n = strlen(known);
        snprintf(known + n, sizeof(known) - n, "%s%s", a ? ", " : "", s->apps[a].name);
    }
    if (s->napps > 20) {
        size_t n = strlen(known);
        snprintf(known + n, sizeof(known) - n, " and %u more", s->napps - 20);
    }
    error_set(b->err, CHOIR_EXIT_INPUT, "%s: unknown application instance \"%s\"; known: %s",
              s->origin, instance, s->napps ? known : "(none)");
    return -1;
}

static int plan_cmp_node_name(const void *a, const void *b, void *site)
{
    const struct strtab *names = &((const struct site *)site)->nodes;

    return strcmp(strtab_str(names, *(const uint32_t *)a), strtab_str(names, *(const uint32_t *)b));
}

/* Collects the nodes of the selected components, ids in certname order. */
static int plan_collect_nodes(struct plan_build *b)
{
    const struct site *s = b->site;
    struct plan *p = b->plan;
    uint32_t nsite = strtab_count(&s->nodes), *ids, a;

    b->site2plan = xmalloc((nsite ? nsite : 1) * sizeof(*b->site2plan));
    memset(b->site2plan, 0xff, (nsite ? nsite : 1) * sizeof(*b->site2plan));
    ids = xmalloc((nsite ? nsite : 1) * sizeof(*ids));
    PLAN_FOREACH_APP(b, a) {
        for (uint32_t c = 0; c < s->apps[a].ncomps; c++) {
            uint32_t n = s->apps[a].comps[c].node;

            if (b->site2plan[n] == PLAN_NONE) {
                b->site2plan[n] = 0;
                ids[p->nnodes++] = n;
            }
        }
    }
    if (p->nnodes == 0) {
        free(ids);
        if (p->instance)
            error_set(b->err, CHOIR_EXIT_INPUT, "%s: empty site: application instance \"%s\" has no components",
                      s->origin, p->instance);
        else
            error_set(b->err, CHOIR_EXIT_INPUT, "%s: empty site: no application components to plan",
                      s->origin);
        return -1;
    }
    qsort_r(ids, p->nnodes, sizeof(*ids), plan_cmp_node_name, (void *)s);
    p->nodes = xcalloc(p->nnodes, sizeof(*p->nodes));
    for (uint32_t i = 0; i < p->nnodes; i++) {
        b->site2plan[ids[i]] = i;
        p->nodes[i].name = strtab_str(&s->nodes, ids[i]);
    }
    free(ids);
    return 0;
}

/* Lists every node's components, by application then component name. */
static void plan_collect_refs(struct plan_build *b)
{
    const struct site *s = b->site;
    struct plan *p = b->plan;
    uint32_t a, *fill;

    PLAN_FOREACH_APP(b, a) {
        for (uint32_t c = 0; c < s->apps[a].ncomps; c++)
            p->nodes[b->site2plan[s->apps[a].comps[c].node]].nrefs++;
    }
    fill = xmalloc(p->nnodes * sizeof(*fill));
    for (uint32_t i = 0; i < p->nnodes; i++) {
        p->nodes[i].first_ref = p->nrefs;
        fill[i] = p->nrefs;
        p->nrefs += p->nodes[i].nrefs;
    }
    p->refs = xmalloc((p->nrefs ? p->nrefs : 1) * sizeof(*p->refs));
    PLAN_FOREACH_APP(b, a) {
        for (uint32_t c = 0; c < s->apps[a].ncomps; c++) {
            uint32_t n = b->site2plan[s->apps[a].comps[c].node];

            p->refs[fill[n]++] = (struct plan_ref){a, c};
        }
    }
    free(fill);
}

/* producers[cap] = plan nodes producing it in the selected applications. */
static void plan_collect_producers(struct plan_build *b)
{
    const struct site *s = b->site;
    uint32_t ncaps = strtab_count(&s->caps), a, *fill, *stamp;
    struct plan_csr *pr = &b->producers;

    pr->start = xcalloc((size_t)ncaps + 1, sizeof(*pr->start));
    PLAN_FOREACH_APP(b, a) {
        for (uint32_t c = 0; c < s->apps[a].ncomps; c++)
            for (uint32_t k = 0; k < s->apps[a].comps[c].nproduces; k++)
                pr->start[site_comp_caps(s, &s->apps[a].comps[c])[k] + 1]++;
    }
    for (uint32_t k = 0; k < ncaps; k++)
        pr->start[k + 1] += pr->start[k];
    pr->list = xmalloc(((size_t)pr->start[ncaps] + 1) * sizeof(*pr->list));
    fill = xmalloc(((size_t)ncaps + 1) * sizeof(*fill));
    memcpy(fill, pr->start, ((size_t)ncaps + 1) * sizeof(*fill));
    PLAN_FOREACH_APP(b, a) {
        for (uint32_t c = 0; c < s->apps[a].ncomps; c++) {
            const struct site_component *comp = &s->apps[a].comps[c];

            const uint32_t *caps = site_comp_caps(s, comp);

            for (uint32_t k = 0; k < comp->nproduces; k++)
                pr->list[fill[caps[k]]++] = b->site2plan[comp->node];
        }
    }
    free(fill);
    stamp = xcalloc(b->plan->nnodes, sizeof(*stamp));
    plan_csr_dedupe(pr, ncaps, stamp);
    free(stamp);
}

static int plan_unresolved(struct plan_build *b, const struct site_app *app,
                           const struct site_component *comp, uint32_t cap)
{
    const struct site *s = b->site;

    if (b->plan->instance)
        error_set(b->err, CHOIR_EXIT_INPUT,
                  "%s: unresolved capability: %s on %s consumes \"%s\", which no component of instance \"%s\" produces",
                  s->origin, comp->name, strtab_str(&s->nodes, comp->node), strtab_str(&s->caps, cap),
                  app->name);
    else
        error_set(b->err, CHOIR_EXIT_INPUT,
                  "%s: unresolved capability: %s on %s consumes \"%s\", which no component produces",
                  s->origin, comp->name, strtab_str(&s->nodes, comp->node), strtab_str(&s->caps, cap));
    return -1;
}

/* Calls fn(b, from, to) for every dependency edge "to consumes what from
 * produces"; stops with -1 at the first unresolved capability. */
static int plan_each_edge(struct plan_build *b, void (*fn)(struct plan_build *, uint32_t, uint32_t))
{
    const struct site *s = b->site;
    uint32_t a;

    PLAN_FOREACH_APP(b, a) {
        for (uint32_t c = 0; c < s->apps[a].ncomps; c++) {
            const struct site_component *comp = &s->apps[a].comps[c];
            uint32_t to = b->site2plan[comp->node];

            const uint32_t *caps = site_comp_caps(s, comp);

            for (uint32_t k = comp->nproduces; k < comp->nproduces + comp->nconsumes; k++) {
                uint32_t cap = caps[k];
                uint32_t begin = b->producers.start[cap], end = b->producers.start[cap + 1];

                if (begin == end)
                    return plan_unresolved(b, &s->apps[a], comp, cap);
                for (uint32_t i = begin; i < end; i++)
                    if (b->producers.list[i] != to)
                        fn(b, b->producers.list[i], to);
            }
        }
    }
    return 0;
}

static void plan_count_edge(struct plan_build *b, uint32_t from, uint32_t to)
{
    (void)to;
    b->succ.start[from + 1]++;
}

static void plan_fill_edge(struct plan_build *b, uint32_t from, uint32_t to)
{
    b->succ.list[b->cursor[from]++] = to;
}

static int plan_collect_edges(struct plan_build *b)
{
    uint32_t n = b->plan->nnodes, *stamp;

    b->succ.start = xcalloc((size_t)n + 1, sizeof(*b->succ.start));
    if (plan_each_edge(b, plan_count_edge) < 0)
        return -1;
    for (uint32_t v = 0; v < n; v++)
        b->succ.start[v + 1] += b->succ.start[v];
    b->succ.list = xmalloc(((size_t)b->succ.start[n] + 1) * sizeof(*b->succ.list));
    b->cursor = xmalloc(((size_t)n + 1) * sizeof(*b->cursor));
    memcpy(b->cursor, b->succ.start, ((size_t)n + 1) * sizeof(*b->cursor));
    plan_each_edge(b, plan_fill_edge);
    stamp = xcalloc(n, sizeof(*stamp));
    plan_csr_dedupe(&b->succ, n, stamp);
    free(stamp);
    b->indeg = xcalloc(n, sizeof(*b->indeg));
    for (uint32_t i = 0; i < b->succ.start[n]; i++)
        b->indeg[b->succ.list[i]]++;
    return 0;
}

/* A capability that `to` consumes and `from` produces, for messages. */
static const char *plan_edge_cap(struct plan_build *b, uint32_t from, uint32_t to)
{
    const struct site *s = b->site;
    const struct plan_node *node = &b->plan->nodes[to];

    for (uint32_t r = node->first_ref; r < node->first_ref + node->nrefs; r++) {
        const struct plan_ref *ref = &b->plan->refs[r];
        const struct site_component *comp = &s->apps[ref->app].comps[ref->comp];

        const uint32_t *caps = site_comp_caps(s, comp);

        for (uint32_t k = comp->nproduces; k < comp->nproduces + comp->nconsumes; k++) {
            uint32_t cap = caps[k];

            for (uint32_t i = b->producers.start[cap]; i < b->producers.start[cap + 1]; i++)
                if (b->producers.list[i] == from)
                    return strtab_str(&s->caps, cap);
        }
    }
    return "?";
}

/* Appends to a bounded message buffer; a cut message ends in "...". */
__attribute__((format(printf, 3, 4)))
static void plan_msg_add(char *buf, size_t size, const char *fmt, ...)
{
    size_t n = strlen(buf);
    va_list ap;

    va_start(ap, fmt);
    if ((size_t)vsnprintf(buf + n, size - n, fmt, ap) >= size - n)
        memcpy(buf + size - 4, "...", 4);
    va_end(ap);
}

static void plan_cycle_message(struct plan_build *b, const uint32_t *cycle, uint32_t len)
{
    char chain[sizeof(b->err->msg)], why[sizeof(b->err->msg)] = "";
    const struct plan_node *nodes = b->plan->nodes;

    snprintf(chain, sizeof(chain), "%s", nodes[cycle[0]].name);
    for (uint32_t i = 0; i < len; i++) {
        uint32_t from = cycle[i], to = cycle[(i + 1) % len];

        plan_msg_add(chain, sizeof(chain), " -> %s", nodes[to].name);
        plan_msg_add(why, sizeof(why), "%s%s consumes %s from %s", i ? "; " : "", nodes[to].name,
                     plan_edge_cap(b, from, to), nodes[from].name);
    }
    error_set(b->err, CHOIR_EXIT_INPUT, "%s: dependency cycle: %s (%s)", b->site->origin, chain, why);
}

/* Finds one real cycle among the nodes Kahn could not place (done[v] == 0)
 * by walking predecessors, and reports it in run order starting at its
 * smallest certname. */
static int plan_cycle(struct plan_build *b, const uint8_t *done)
{
    uint32_t n = b->plan->nnodes, start = 0, len = 0, *pos, *walk, *cycle, v;
    struct plan_csr pred = {0};

    pred.start = xcalloc((size_t)n + 1, sizeof(*pred.start));
    for (uint32_t u = 0; u < n; u++)
        for (uint32_t i = b->succ.start[u]; i < b->succ.start[u + 1]; i++)
            pred.start[b->succ.list[i] + 1]++;
    for (uint32_t u = 0; u < n; u++)
        pred.start[u + 1] += pred.start[u];
    pred.list = xmalloc(((size_t)pred.start[n] + 1) * sizeof(*pred.list));
    pos = xmalloc((size_t)n * sizeof(*pos));
    memcpy(pos, pred.start, (size_t)n * sizeof(*pos));
    for (uint32_t u = 0; u < n; u++) /* u ascending, so each list is sorted */
        for (uint32_t i = b->succ.start[u]; i < b->succ.start[u + 1]; i++)
            pred.list[pos[b->succ.list[i]]++] = u;

    walk = xmalloc((size_t)n * sizeof(*walk));
    memset(pos, 0xff, (size_t)n * sizeof(*pos));
    for (v = 0; done[v]; v++)
        ;
    while (pos[v] == PLAN_NONE) {
        uint32_t i = pred.start[v];

        pos[v] = len;
        walk[len++] = v;
        while (done[pred.list[i]]) /* an unplaced node has an unplaced predecessor */
            i++;
        v = pred.list[i];
    }
    /* walk[pos[v] .. len) is the cycle, each entry running after the next. */
    cycle = xmalloc((size_t)(len - pos[v]) * sizeof(*cycle));
    for (uint32_t i = len; i-- > pos[v];)
        cycle[len - 1 - i] = walk[i];
    len -= pos[v];
    for (uint32_t i = 1; i < len; i++)
        if (cycle[i] < cycle[start])
            start = i;
    for (uint32_t i = 0; i < len; i++)
        walk[i] = cycle[(start + i) % len];
    plan_cycle_message(b, walk, len);
    free(cycle);
    free(walk);
    free(pos);
    plan_csr_free(&pred);
    return -1;
}

/* Kahn's algorithm, one dependency layer per group. */
static int plan_layers(struct plan_build *b)
{
    struct plan *p = b->plan;
    uint32_t n = p->nnodes, placed = 0, head = 0;
    int rc = 0;

    p->order = xmalloc((size_t)n * sizeof(*p->order));
    p->groups = xcalloc(n, sizeof(*p->groups));
    for (uint32_t v = 0; v < n; v++)
        if (b->indeg[v] == 0)
            p->order[placed++] = v;
    while (head < placed) {
        struct plan_group *g = &p->groups[p->ngroups];
        uint32_t layer_end = placed;

        g->first = head;
        g->count = layer_end - head;
        qsort(p->order + head, g->count, sizeof(*p->order), plan_cmp_u32);
        for (uint32_t i = head; i < layer_end; i++) {
            uint32_t u = p->order[i];

            p->nodes[u].group = p->ngroups;
            for (uint32_t e = b->succ.start[u]; e < b->succ.start[u + 1]; e++)
                if (--b->indeg[b->succ.list[e]] == 0)
                    p->order[placed++] = b->succ.list[e];
        }
        head = layer_end;
        p->ngroups++;
    }
    if (placed < n) {
        uint8_t *done = xcalloc(n, 1);

        for (uint32_t i = 0; i < placed; i++)
            done[p->order[i]] = 1;
        rc = plan_cycle(b, done);
        free(done);
    }
    return rc;
}

int plan_compute(struct plan **out, const struct site *site, const struct plan_options *opts,
                 struct choir_error *err)
{
    struct plan_build b = {.site = site, .err = err};
    int rc;

    *out = NULL;
    b.plan = xcalloc(1, sizeof(*b.plan));
    b.plan->site = site;
    b.plan->instance = opts->instance;
    b.plan->batch = opts->batch;
    rc = plan_select_apps(&b, opts->instance);
    if (rc == 0)
        rc = plan_collect_nodes(&b);
    if (rc == 0) {
        plan_collect_refs(&b);
        plan_collect_producers(&b);
        rc = plan_collect_edges(&b);
    }
    if (rc == 0)
        rc = plan_layers(&b);
    free(b.site2plan);
    free(b.indeg);
    free(b.cursor);
    plan_csr_free(&b.producers);
    b.plan->dependents_start = b.succ.start;
    b.plan->dependents = b.succ.list;
    if (rc < 0) {
        plan_free(b.plan);
        return -1;
    }
    *out = b.plan;
    return 0;
}

void plan_free(struct plan *plan)
{
    if (!plan)
        return;
    free(plan->nodes);
    free(plan->refs);
    free(plan->order);
    free(plan->groups);
    free(plan->apps);
    free(plan->dependents_start);
    free(plan->dependents);
    free(plan);
}

uint32_t plan_group_batches(const struct plan *plan, uint32_t g)
{
    uint32_t count = plan->groups[g].count;

    if (plan->batch == 0 || count == 0)
        return 1;
    return (count + plan->batch - 1) / plan->batch;
}

void plan_batch_range(const struct plan *plan, uint32_t g, uint32_t b, uint32_t *first,
                      uint32_t *count)
{
    const struct plan_group *grp = &plan->groups[g];
    uint32_t size = plan->batch ? plan->batch : grp->count;
    uint32_t offset = b * size;

    *first = grp->first + offset;
    *count = offset >= grp->count ? 0 : (grp->count - offset < size ? grp->count - offset : size);
}
