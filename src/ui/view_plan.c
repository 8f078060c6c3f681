/* view_plan.c - the plan screen before a run: the applications, the
 * options in force, then each group with its batches and nodes and the
 * components each node serves, under the question "Run this plan?".
 * y runs it; n, q, esc and Ctrl-C leave without touching a node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "ui/view.h"

struct plan_view {
    struct text_view tv;
    char question[160];
};

static const enum keymap_action plan_hints[] = {
    KA_UP, KA_DOWN, KA_PAGE_DOWN, KA_FILTER, KA_NEXT, KA_HELP, KA_QUIT,
};

static void plan_view_options(struct text_view *tv, const struct job_options *o)
{
    char batch[32], canary[32], budget[64];

    snprintf(batch, sizeof(batch), o->batch ? "%u nodes" : "whole groups", o->batch);
    snprintf(canary, sizeof(canary), o->canary ? "%u nodes, then pause" : "none", o->canary);
    if (o->max_failures < 0)
        snprintf(budget, sizeof(budget), "none (stop after the step with the first failure)");
    else
        snprintf(budget, sizeof(budget), "%ld%s", o->max_failures, o->max_failures_pct ? "%" : "");
    text_add(tv, THEME_PLAIN, 0, "options: batch %s · canary %s · max failures %s", batch, canary,
             budget);
    text_add(tv, THEME_PLAIN, 0, "         %s · %s · timeouts: start %ld s, run %ld s",
             o->contain ? "contain (a failure skips only its dependents)" : "no contain",
             o->noop ? "noop runs" : "real runs (not noop)", o->start_timeout_s, o->run_timeout_s);
}

static void plan_view_node(struct text_view *tv, const struct plan *plan, const struct plan_node *node)
{
    const struct site *s = plan->site;
    const struct plan_ref *refs = plan->refs + node->first_ref;
    char line[2048];
    size_t len = 0;

    text_add(tv, THEME_NODE, 2, "%s", node->name);
    for (uint32_t r = 0; r < node->nrefs; r++) {
        const struct site_app *app = &s->apps[refs[r].app];

        if (r == 0 || refs[r].app != refs[r - 1].app)
            len = (size_t)snprintf(line, sizeof(line), "%s -> ", app->name);
        else if (len < sizeof(line))
            len += (size_t)snprintf(line + len, sizeof(line) - len, ", ");
        if (len < sizeof(line))
            len += (size_t)snprintf(line + len, sizeof(line) - len, "%s", app->comps[refs[r].comp].name);
        if (r + 1 == node->nrefs || refs[r + 1].app != refs[r].app)
            text_add(tv, THEME_PLAIN, 3, "%s", line);
    }
}

static void plan_view_build(struct text_view *tv, const struct plan *plan, const struct job_options *o,
                       const char *environment)
{
    const struct site *s = plan->site;
    char apps[1024];
    size_t len = 0;

    text_add(tv, THEME_TITLE, 0, "Puppet Site Plan for the %s Environment",
             environment ? environment : s->environment);
    if (plan->instance)
        text_add(tv, THEME_TITLE, 0, "Application instance %s only", plan->instance);
    apps[0] = '\0';
    for (uint32_t a = 0; a < plan->napps && len < sizeof(apps); a++)
        len += (size_t)snprintf(apps + len, sizeof(apps) - len, "%s%s", a ? ", " : "",
                                s->apps[plan->apps[a]].name);
    text_add(tv, THEME_PLAIN, 0, "%u application%s on %u managed node%s: %s", plan->napps,
             plan->napps == 1 ? "" : "s", plan->nnodes, plan->nnodes == 1 ? "" : "s", apps);
    plan_view_options(tv, o);
    for (uint32_t g = 0; g < plan->ngroups; g++) {
        uint32_t nb = plan_group_batches(plan, g);

        text_add(tv, THEME_PLAIN, 0, "%s", "");
        text_add(tv, THEME_GROUP, 0, "Group %u (%u node%s)", g + 1, plan->groups[g].count,
                 plan->groups[g].count == 1 ? "" : "s");
        for (uint32_t b = 0; b < nb; b++) {
            uint32_t first, count;

            plan_batch_range(plan, g, b, &first, &count);
            if (nb > 1)
                text_add(tv, THEME_GROUP, 1, "batch %u of %u (%u node%s)", b + 1, nb, count,
                         count == 1 ? "" : "s");
            for (uint32_t i = first; i < first + count; i++)
                plan_view_node(tv, plan, &plan->nodes[plan->order[i]]);
        }
    }
}

static void plan_view_draw(struct tui *t, struct view *v, int top, int height)
{
    struct plan_view *pv = (struct plan_view *)v;

    if (t->prompt.kind == PROMPT_NONE)
        tui_message(t, THEME_PROMPT, "%s", pv->question);
    text_draw(t, &pv->tv, top, height);
}

static int plan_view_key(struct tui *t, struct view *v, int a, int key)
{
    struct plan_view *pv = (struct plan_view *)v;

    if (key == 'y' || key == 'Y' || key == 'n' || key == 'N' || a == KA_QUIT || a == KA_BACK) {
        t->plan_answer = key == 'y' || key == 'Y';
        t->done = 1;
        return 1;
    }
    return text_key(t, &pv->tv, a);
}

static void plan_view_title(struct tui *t, struct view *v, char *buf, size_t size)
{
    (void)t;
    (void)v;
    snprintf(buf, size, "plan ");
}

static void plan_view_free(struct view *v)
{
    text_done(&((struct plan_view *)v)->tv);
    free(v);
}

static const struct view_ops plan_ops = {
    .name = "plan", .draw = plan_view_draw, .key = plan_view_key, .title = plan_view_title, .free = plan_view_free,
    .hints = plan_hints, .nhints = sizeof(plan_hints) / sizeof(plan_hints[0]),
};

struct view *view_plan_new(struct tui *t, const struct plan *plan, const struct job_options *opt,
                           const char *environment)
{
    struct plan_view *pv = xcalloc(1, sizeof(*pv));

    (void)t;
    text_init(&pv->tv, &plan_ops);
    plan_view_build(&pv->tv, plan, opt, environment);
    snprintf(pv->question, sizeof(pv->question), "Run this plan on %u node%s in %u group%s? (y/n)",
             plan->nnodes, plan->nnodes == 1 ? "" : "s", plan->ngroups,
             plan->ngroups == 1 ? "" : "s");
    return &pv->tv.base;
}
