/* fuzz_site.c - libFuzzer target for the site parser and the planner.
 *
 * Contract: LLVMFuzzerTestOneInput feeds the bytes to site_parse (origin
 * "fuzz.json"); when they parse, it plans them three ways (no options,
 * --instance of the first application, --batch 3) and checks the plan's
 * invariants, calling abort() on any violation so libFuzzer (or the replay
 * main) reports it:
 *   - the site: applications and their components strictly sorted by name,
 *     ids in range, certnames valid;
 *   - plan->nodes strictly sorted by certname; every node appears exactly
 *     once in plan->order; groups are non-empty and partition order; nodes
 *     in a group are in strictly increasing certname order and carry that
 *     group's index;
 *   - refs partition the selected components, each on its own node, by
 *     application then component;
 *   - every consumed capability has a producer, and every node producing a
 *     capability a node consumes (other than itself) is in an earlier group;
 *   - batches cover each group in order, none larger than the batch size.
 * A failure must come with a non-empty message of class CHOIR_EXIT_INPUT,
 * one line without control characters, and no result.  Everything is
 * freed (LeakSanitizer). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/names.h"
#include "core/plan.h"
#include "core/site.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                               \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_site: invariant violated at %s:%d: %s\n", __FILE__, \
                    __LINE__, #cond);                                                   \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* A message is printed to a terminal: one line, no control characters
 * (an ESC from the input must not reach the operator's screen). */
static int is_clean_line(const char *msg)
{
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

static void check_error(const struct choir_error *err, const void *result)
{
    FUZZ_ASSERT(result == NULL);
    FUZZ_ASSERT(err->msg[0] != '\0');
    FUZZ_ASSERT(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
    FUZZ_ASSERT(is_clean_line(err->msg));
    FUZZ_ASSERT(err->code == CHOIR_EXIT_INPUT);
}

static void check_site(const struct site *s)
{
    uint32_t ncomps = 0, nnodes = strtab_count(&s->nodes), ncaps = strtab_count(&s->caps);

    FUZZ_ASSERT(s->environment && s->environment[0]);
    for (uint32_t a = 0; a < s->napps; a++) {
        const struct site_app *app = &s->apps[a];

        FUZZ_ASSERT(a == 0 || strcmp(s->apps[a - 1].name, app->name) < 0);
        FUZZ_ASSERT(site_find_app(s, app->name) == app);
        for (uint32_t c = 0; c < app->ncomps; c++) {
            const struct site_component *comp = &app->comps[c];

            FUZZ_ASSERT(c == 0 || strcmp(app->comps[c - 1].name, comp->name) < 0);
            FUZZ_ASSERT(comp->node < nnodes);
            FUZZ_ASSERT(names_certname_ok(strtab_str(&s->nodes, comp->node),
                                          strtab_len(&s->nodes, comp->node)));
            FUZZ_ASSERT((size_t)comp->caps_at + comp->nproduces + comp->nconsumes <= s->ncapids);
            for (uint32_t k = 0; k < comp->nproduces + comp->nconsumes; k++)
                FUZZ_ASSERT(site_comp_caps(s, comp)[k] < ncaps);
        }
        ncomps += app->ncomps;
    }
    FUZZ_ASSERT(ncomps == s->ncomps);
}

/* Every node exactly once in order; groups partition order in certname
 * order; plan->nodes sorted by certname. */
static void check_order(const struct plan *p)
{
    uint8_t *seen = calloc(p->nnodes ? p->nnodes : 1, 1);
    uint32_t next = 0;

    FUZZ_ASSERT(seen != NULL);
    FUZZ_ASSERT(p->nnodes > 0 && p->ngroups > 0 && p->ngroups <= p->nnodes);
    for (uint32_t i = 1; i < p->nnodes; i++)
        FUZZ_ASSERT(strcmp(p->nodes[i - 1].name, p->nodes[i].name) < 0);
    for (uint32_t i = 0; i < p->nnodes; i++) {
        FUZZ_ASSERT(p->order[i] < p->nnodes);
        FUZZ_ASSERT(!seen[p->order[i]]);
        seen[p->order[i]] = 1;
    }
    for (uint32_t g = 0; g < p->ngroups; g++) {
        const struct plan_group *grp = &p->groups[g];

        FUZZ_ASSERT(grp->first == next && grp->count > 0);
        next += grp->count;
        FUZZ_ASSERT(next <= p->nnodes);
        for (uint32_t i = grp->first; i < next; i++) {
            FUZZ_ASSERT(p->nodes[p->order[i]].group == g);
            FUZZ_ASSERT(i == grp->first ||
                        strcmp(p->nodes[p->order[i - 1]].name, p->nodes[p->order[i]].name) < 0);
        }
    }
    FUZZ_ASSERT(next == p->nnodes);
    free(seen);
}

/* The component a ref points at, checked to be in the plan's apps. */
static const struct site_component *ref_comp(const struct plan *p, const struct plan_ref *r)
{
    FUZZ_ASSERT(r->app < p->site->napps);
    FUZZ_ASSERT(r->comp < p->site->apps[r->app].ncomps);
    return &p->site->apps[r->app].comps[r->comp];
}

/* Refs partition exactly the components of the selected applications. */
static void check_refs(const struct plan *p)
{
    const struct site *s = p->site;
    uint32_t want = 0, next = 0;

    FUZZ_ASSERT(p->napps > 0 && (!p->instance || p->napps == 1));
    for (uint32_t i = 0; i < p->napps; i++) {
        FUZZ_ASSERT(p->apps[i] < s->napps && (i == 0 || p->apps[i - 1] < p->apps[i]));
        want += s->apps[p->apps[i]].ncomps;
    }
    FUZZ_ASSERT(p->nrefs == want);
    for (uint32_t v = 0; v < p->nnodes; v++) {
        const struct plan_node *n = &p->nodes[v];

        FUZZ_ASSERT(n->first_ref == next && n->nrefs > 0);
        next += n->nrefs;
        FUZZ_ASSERT(next <= p->nrefs);
        for (uint32_t r = n->first_ref; r < next; r++) {
            const struct plan_ref *ref = &p->refs[r], *prev = ref - 1;
            const struct site_component *c = ref_comp(p, ref);

            FUZZ_ASSERT(strcmp(strtab_str(&s->nodes, c->node), n->name) == 0);
            FUZZ_ASSERT(r == n->first_ref || prev->app < ref->app ||
                        (prev->app == ref->app && prev->comp < ref->comp));
        }
    }
    FUZZ_ASSERT(next == p->nrefs);
}

/* producers of each capability id as a CSR over plan node ids. */
struct producers {
    uint32_t *start;           /* ncaps + 1 */
    uint32_t *list;
};

static void producers_build(const struct plan *p, struct producers *pr)
{
    uint32_t ncaps = strtab_count(&p->site->caps), *fill;

    pr->start = calloc((size_t)ncaps + 1, sizeof(*pr->start));
    FUZZ_ASSERT(pr->start != NULL);
    for (uint32_t v = 0; v < p->nnodes; v++)
        for (uint32_t r = p->nodes[v].first_ref, end = r + p->nodes[v].nrefs; r < end; r++) {
            const struct site_component *c = ref_comp(p, &p->refs[r]);

            for (uint32_t k = 0; k < c->nproduces; k++)
                pr->start[site_comp_caps(p->site, c)[k] + 1]++;
        }
    for (uint32_t k = 0; k < ncaps; k++)
        pr->start[k + 1] += pr->start[k];
    pr->list = malloc(((size_t)pr->start[ncaps] + 1) * sizeof(*pr->list));
    fill = malloc(((size_t)ncaps + 1) * sizeof(*fill));
    FUZZ_ASSERT(pr->list != NULL && fill != NULL);
    memcpy(fill, pr->start, ((size_t)ncaps + 1) * sizeof(*fill));
    for (uint32_t v = 0; v < p->nnodes; v++)
        for (uint32_t r = p->nodes[v].first_ref, end = r + p->nodes[v].nrefs; r < end; r++) {
            const struct site_component *c = ref_comp(p, &p->refs[r]);

            for (uint32_t k = 0; k < c->nproduces; k++)
                pr->list[fill[site_comp_caps(p->site, c)[k]]++] = v;
        }
    free(fill);
}

/* Every dependency of every node runs in a strictly earlier group. */
static void check_dependencies(const struct plan *p)
{
    struct producers pr;

    producers_build(p, &pr);
    for (uint32_t v = 0; v < p->nnodes; v++) {
        const struct plan_node *n = &p->nodes[v];

        for (uint32_t r = n->first_ref; r < n->first_ref + n->nrefs; r++) {
            const struct site_component *c = ref_comp(p, &p->refs[r]);

            for (uint32_t k = c->nproduces; k < c->nproduces + c->nconsumes; k++) {
                uint32_t cap = site_comp_caps(p->site, c)[k];

                FUZZ_ASSERT(pr.start[cap] < pr.start[cap + 1]); /* resolved */
                for (uint32_t i = pr.start[cap]; i < pr.start[cap + 1]; i++)
                    FUZZ_ASSERT(pr.list[i] == v || p->nodes[pr.list[i]].group < n->group);
            }
        }
    }
    free(pr.start);
    free(pr.list);
}

/* Batches slice each group in order, at most plan->batch nodes each. */
static void check_batches(const struct plan *p)
{
    for (uint32_t g = 0; g < p->ngroups; g++) {
        uint32_t nb = plan_group_batches(p, g), next = p->groups[g].first;

        FUZZ_ASSERT(nb >= 1 && nb <= p->groups[g].count);
        for (uint32_t b = 0; b < nb; b++) {
            uint32_t first, count;

            plan_batch_range(p, g, b, &first, &count);
            FUZZ_ASSERT(first == next && count > 0);
            FUZZ_ASSERT(p->batch == 0 ? count == p->groups[g].count : count <= p->batch);
            FUZZ_ASSERT(b + 1 == nb || p->batch == 0 || count == p->batch);
            next += count;
        }
        FUZZ_ASSERT(next == p->groups[g].first + p->groups[g].count);
    }
}

static void plan_and_check(const struct site *s, const char *instance, uint32_t batch)
{
    struct plan_options opts = {.instance = instance, .batch = batch};
    static struct plan poison;
    struct choir_error err;
    struct plan *p = &poison; /* plan_compute must reset it to NULL on failure */

    memset(&err, 0, sizeof(err));
    if (plan_compute(&p, s, &opts, &err) < 0) {
        check_error(&err, p);
        return;
    }
    FUZZ_ASSERT(p != NULL && p->site == s && p->batch == batch);
    check_order(p);
    check_refs(p);
    check_dependencies(p);
    check_batches(p);
    plan_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct site poison;
    struct choir_error err;
    struct site *s = &poison; /* site_parse must reset it to NULL on failure */

    memset(&err, 0, sizeof(err));
    if (site_parse(&s, (const char *)data, size, "fuzz.json", &err) < 0) {
        check_error(&err, s);
        return 0;
    }
    FUZZ_ASSERT(s != NULL);
    check_site(s);
    plan_and_check(s, NULL, 0);
    plan_and_check(s, s->napps ? s->apps[0].name : "Missing[none]", 0);
    plan_and_check(s, NULL, 3);
    site_free(s);
    return 0;
}
