/* plan.h - the planner: site graph -> ordered node groups -> batches.
 *
 * Contract (PROTOCOL.md §1, docs/protocol.md):
 * - A node's produces/consumes are the union over its components, restricted
 *   to one application instance when opts->instance is set.
 * - Node A depends on node B (A != B) when A consumes a capability B
 *   produces; a capability a node produces itself is satisfied in its own
 *   run.
 * - A consumed capability that no node produces is an error naming the
 *   capability, the consuming component and its node.
 * - Groups are dependency layers (Kahn).  A cycle is an error naming the
 *   nodes of one real cycle in run order ("a -> b -> a").
 * - Inside a group nodes are sorted by certname (byte order); opts->batch
 *   slices each group in that order (0 = one batch per group).
 * - An unknown instance is an error listing the known ones; a plan with no
 *   node is an error ("empty site").
 * All errors are CHOIR_EXIT_INPUT.  The plan points into the site, which
 * must outlive it.  Work is O((components + capabilities + edges) log). */
#ifndef CHOIR_PLAN_H
#define CHOIR_PLAN_H

#include <stdint.h>

#include "core/error.h"
#include "core/site.h"

struct plan_options {
    const char *instance;      /* NULL: every application */
    uint32_t batch;            /* 0: no batching */
};

/* One component placed on a node. */
struct plan_ref {
    uint32_t app;              /* index in site->apps */
    uint32_t comp;             /* index in site->apps[app].comps */
};

struct plan_node {
    const char *name;          /* certname */
    uint32_t group;            /* 0-based group index */
    uint32_t first_ref;        /* its components: plan->refs[first_ref .. +nrefs), by app then component */
    uint32_t nrefs;
};

struct plan_group {
    uint32_t first;            /* plan->order[first .. first+count) */
    uint32_t count;
};

struct plan {
    const struct site *site;
    const char *instance;
    uint32_t batch;
    struct plan_node *nodes;   /* sorted by certname; index = node id */
    uint32_t nnodes;
    struct plan_ref *refs;
    uint32_t nrefs;
    uint32_t *order;           /* node ids, group after group, each group by certname */
    struct plan_group *groups;
    uint32_t ngroups;
    uint32_t *apps;            /* site app indexes in this plan, by name */
    uint32_t napps;
    /* Who depends on whom: the nodes that consume what node v produces are
     * dependents[dependents_start[v] .. dependents_start[v + 1]),
     * without duplicates (the engine's --contain follows them). */
    uint32_t *dependents_start;
    uint32_t *dependents;
};

int plan_compute(struct plan **out, const struct site *site, const struct plan_options *opts,
                 struct choir_error *err);
void plan_free(struct plan *plan);

/* Batches in group g, and the order[] range of batch b of group g. */
uint32_t plan_group_batches(const struct plan *plan, uint32_t g);
void plan_batch_range(const struct plan *plan, uint32_t g, uint32_t b, uint32_t *first,
                      uint32_t *count);

#endif
