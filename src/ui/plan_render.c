/* plan_render.c - see plan_render.h. */
#include "ui/plan_render.h"

#include <jansson.h>

static const char *plan_plural(uint32_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* "\t\tLamp[app1] -> Lamp::Mysql[app1], Lamp::Other[x]" per application. */
static void plan_text_node(FILE *out, const struct plan *plan, const struct plan_node *node,
                           const struct term_style *st)
{
    const struct site *s = plan->site;
    const struct plan_ref *refs = plan->refs + node->first_ref;

    fprintf(out, "\t%s%s%s\n", term_on(st, THEME_NODE), node->name, term_off(st));
    for (uint32_t r = 0; r < node->nrefs; r++) {
        const struct site_app *app = &s->apps[refs[r].app];

        if (r == 0 || refs[r].app != refs[r - 1].app)
            fprintf(out, "\t\t%s -> ", app->name);
        else
            fputs(", ", out);
        fputs(app->comps[refs[r].comp].name, out);
        if (r + 1 == node->nrefs || refs[r + 1].app != refs[r].app)
            fputc('\n', out);
    }
    fputc('\n', out);
}

static void plan_text_group(FILE *out, const struct plan *plan, uint32_t g,
                            const struct term_style *st)
{
    uint32_t nbatches = plan_group_batches(plan, g);

    fprintf(out, "   %s   ---%s %sGroup %u%s %s--------------------------------------%s\n\n",
            term_on(st, THEME_RULE), term_off(st), term_on(st, THEME_GROUP), g + 1, term_off(st),
            term_on(st, THEME_RULE), term_off(st));
    for (uint32_t b = 0; b < nbatches; b++) {
        uint32_t first, count;

        plan_batch_range(plan, g, b, &first, &count);
        if (plan->batch)
            fprintf(out, "\t%sbatch %u of %u%s (%u %s)\n\n", term_on(st, THEME_GROUP), b + 1,
                    nbatches, term_off(st), count, plan_plural(count, "node", "nodes"));
        for (uint32_t i = first; i < first + count; i++)
            plan_text_node(out, plan, &plan->nodes[plan->order[i]], st);
    }
}

int plan_render_text(FILE *out, const struct plan *plan, const struct term_style *st)
{
    const struct site *s = plan->site;

    fprintf(out, "Puppet Site Plan for the %s%s%s Environment\n\n", term_on(st, THEME_TITLE),
            s->environment, term_off(st));
    if (plan->instance)
        fprintf(out, "Application instance %s%s%s only\n\n", term_on(st, THEME_TITLE),
                plan->instance, term_off(st));
    fprintf(out, "%s%u%s %s on %s%u%s managed %s:\n\n", term_on(st, THEME_COUNT), plan->napps,
            term_off(st), plan_plural(plan->napps, "application", "applications"),
            term_on(st, THEME_COUNT), plan->nnodes, term_off(st),
            plan_plural(plan->nnodes, "node", "nodes"));
    for (uint32_t a = 0; a < plan->napps; a++)
        fprintf(out, "\t%s\n", s->apps[plan->apps[a]].name);
    fputs("\nNode groups and run order:\n", out);
    for (uint32_t g = 0; g < plan->ngroups; g++)
        plan_text_group(out, plan, g, st);
    return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}

static json_t *plan_json_node(const struct plan *plan, const struct plan_node *node)
{
    const struct site *s = plan->site;
    json_t *components = json_object(), *list = NULL;

    for (uint32_t r = node->first_ref; r < node->first_ref + node->nrefs; r++) {
        const struct site_app *app = &s->apps[plan->refs[r].app];

        if (r == node->first_ref || plan->refs[r].app != plan->refs[r - 1].app) {
            list = json_array();
            json_object_set_new(components, app->name, list);
        }
        json_array_append_new(list, json_string(app->comps[plan->refs[r].comp].name));
    }
    return json_pack("{s:s, s:o}", "name", node->name, "components", components);
}

static json_t *plan_json_group(const struct plan *plan, uint32_t g)
{
    const struct plan_group *grp = &plan->groups[g];
    json_t *batches = json_array(), *nodes = json_array();
    uint32_t nbatches = plan_group_batches(plan, g);

    for (uint32_t b = 0; b < nbatches; b++) {
        uint32_t first, count;
        json_t *batch = json_array();

        plan_batch_range(plan, g, b, &first, &count);
        for (uint32_t i = first; i < first + count; i++)
            json_array_append_new(batch, json_string(plan->nodes[plan->order[i]].name));
        json_array_append_new(batches, batch);
    }
    for (uint32_t i = grp->first; i < grp->first + grp->count; i++)
        json_array_append_new(nodes, plan_json_node(plan, &plan->nodes[plan->order[i]]));
    return json_pack("{s:I, s:o, s:o}", "group", (json_int_t)g + 1, "batches", batches, "nodes",
                     nodes);
}

int plan_render_json(FILE *out, const struct plan *plan)
{
    const struct site *s = plan->site;
    json_t *apps = json_array(), *groups = json_array(), *root;
    int rc;

    for (uint32_t a = 0; a < plan->napps; a++)
        json_array_append_new(apps, json_string(s->apps[plan->apps[a]].name));
    for (uint32_t g = 0; g < plan->ngroups; g++)
        json_array_append_new(groups, plan_json_group(plan, g));
    root = json_pack("{s:s, s:s?, s:o, s:I, s:o}", "environment", s->environment, "instance",
                     plan->instance, "applications", apps, "nodes", (json_int_t)plan->nnodes,
                     "groups", groups);
    rc = json_dumpf(root, out, JSON_INDENT(2));
    json_decref(root);
    if (rc == 0 && fputc('\n', out) != EOF && fflush(out) == 0 && !ferror(out))
        return 0;
    return -1;
}
