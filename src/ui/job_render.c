/* job_render.c - see job_render.h. */
#include "ui/job_render.h"

#include <string.h>
#include <time.h>

void job_render_init(struct job_render *r, FILE *out, int json, int show_output,
                     const struct term_style *st)
{
    memset(r, 0, sizeof(*r));
    r->out = out;
    r->json = json;
    r->show_output = show_output;
    r->st = st;
    r->group = -1;
}

static const char *str(const json_t *ev, const char *key)
{
    const char *s = json_string_value(json_object_get(ev, key));

    return s ? s : "";
}

static long long num(const json_t *ev, const char *key)
{
    return json_integer_value(json_object_get(ev, key));
}

static void stamp(struct job_render *r, const json_t *ev)
{
    time_t t = (time_t)(num(ev, "time") / 1000);
    struct tm tm;
    char when[16];

    localtime_r(&t, &tm);
    strftime(when, sizeof(when), "%H:%M:%S", &tm);
    fprintf(r->out, "%s ", when);
}

static void group_done(struct job_render *r, const json_t *ev)
{
    if (r->group < 0)
        return;
    stamp(r, ev);
    fprintf(r->out, "group %lld done in %.1f s\n", r->group + 1,
            (double)(num(ev, "time") - r->group_started_ms) / 1000.0);
    r->group = -1;
}

static void render_step(struct job_render *r, const json_t *ev)
{
    const json_t *nodes = json_object_get(ev, "nodes"), *n;
    long long g = num(ev, "group");
    size_t i;

    if (g != r->group) {
        group_done(r, ev);
        r->group = g;
        r->group_started_ms = num(ev, "time");
    }
    stamp(r, ev);
    fprintf(r->out, "%sRunning node group %lld%s with %zu node%s:", term_on(r->st, THEME_GROUP),
            g + 1, term_off(r->st), json_array_size(nodes), json_array_size(nodes) == 1 ? "" : "s");
    json_array_foreach(nodes, i, n) {
        if (i == 8) {
            fprintf(r->out, " ... (%zu more)", json_array_size(nodes) - 8);
            break;
        }
        fprintf(r->out, " %s", json_string_value(n));
    }
    fputc('\n', r->out);
}

static enum theme_role node_role(const char *state)
{
    if (!strcmp(state, "succeeded"))
        return THEME_NODE_OK;
    if (!strcmp(state, "failed"))
        return THEME_NODE_FAILED;
    if (!strcmp(state, "skipped"))
        return THEME_NODE_SKIPPED;
    return !strcmp(state, "waiting") ? THEME_NODE_WAITING : THEME_NODE_RUNNING;
}

static void render_node(struct job_render *r, const json_t *ev)
{
    const char *state = str(ev, "state"), *verdict = str(ev, "verdict");

    if (!strcmp(state, "waiting") || !strcmp(state, "starting"))
        return; /* the step line says it; "not reached" is in the summary */
    stamp(r, ev);
    fprintf(r->out, "  %s%s%s: %s%s%s%s%s\n", term_on(r->st, THEME_NODE), str(ev, "node"),
            term_off(r->st), term_on(r->st, node_role(state)), *verdict ? verdict : state,
            term_off(r->st), *str(ev, "reason") ? ": " : "", str(ev, "reason"));
}

static int level_shown(const struct job_render *r, const char *level)
{
    return r->show_output || !strcmp(level, "warning") || !strcmp(level, "err") ||
           !strcmp(level, "crit") || !strcmp(level, "alert") || !strcmp(level, "emerg");
}

static void render_output(struct job_render *r, const json_t *ev)
{
    const json_t *line;
    size_t i;

    json_array_foreach(json_object_get(ev, "lines"), i, line) {
        const char *level = str(line, "level");

        if (!level_shown(r, level))
            continue;
        stamp(r, ev);
        fprintf(r->out, "    %s %s%s%s%s\n", str(ev, "node"),
                term_on(r->st, strcmp(level, "warning") ? THEME_LOG_ERROR : THEME_LOG_WARNING),
                strcmp(level, "output") ? level : "", strcmp(level, "output") ? ": " : "",
                str(line, "text"));
        fputs(term_off(r->st), r->out);
    }
}

static void render_preflight(struct job_render *r, const json_t *ev)
{
    const json_t *p;
    size_t i, n = json_array_size(json_object_get(ev, "problems"));

    stamp(r, ev);
    fprintf(r->out, "preflight: %lld nodes, %zu cannot take part\n", num(ev, "nodes"), n);
    json_array_foreach(json_object_get(ev, "problems"), i, p)
        fprintf(r->out, "  %s%s%s: %s\n", term_on(r->st, THEME_NODE_FAILED), str(p, "node"),
                term_off(r->st), str(p, "problem"));
}

static void render_result(struct job_render *r, const json_t *ev)
{
    group_done(r, ev);
    stamp(r, ev);
    fprintf(r->out, "job %s %s%s%s in %.1f s: %lld nodes, %lld succeeded, %lld failed, %lld "
            "skipped, %lld not reached (exit %lld)\n",
            str(ev, "job"), term_on(r->st, !strcmp(str(ev, "state"), "succeeded") ? THEME_NODE_OK
                                                                                 : THEME_NODE_FAILED),
            str(ev, "state"), term_off(r->st), (double)num(ev, "elapsed_ms") / 1000.0,
            num(ev, "nodes"), num(ev, "succeeded"), num(ev, "failed"), num(ev, "skipped"),
            num(ev, "not_reached"), num(ev, "exit_code"));
    if (*str(ev, "reason"))
        fprintf(r->out, "  %s\n", str(ev, "reason"));
    if (num(ev, "locked") > 0)
        fprintf(r->out, "  %lld nodes stay disabled by this job: choir show %s; choir unlock %s "
                "releases them, choir resume %s goes on\n",
                num(ev, "locked"), str(ev, "job"), str(ev, "job"), str(ev, "job"));
}

void job_render_event(struct job_render *r, const json_t *ev)
{
    const char *type = str(ev, "type");

    if (r->json) {
        json_dumpf(ev, r->out, JSON_COMPACT);
        fputc('\n', r->out);
    } else if (!strcmp(type, "job")) {
        stamp(r, ev);
        fprintf(r->out, "job %s: %s\n", str(ev, "state"), str(ev, "reason"));
    } else if (!strcmp(type, "preflight")) {
        render_preflight(r, ev);
    } else if (!strcmp(type, "step")) {
        render_step(r, ev);
    } else if (!strcmp(type, "node")) {
        render_node(r, ev);
    } else if (!strcmp(type, "output")) {
        render_output(r, ev);
    } else if (!strcmp(type, "operator")) {
        stamp(r, ev);
        fprintf(r->out, "operator %s: %s%s%s -> %s\n", str(ev, "actor"), str(ev, "command"),
                *str(ev, "arg") ? " " : "", str(ev, "arg"), str(ev, "reply"));
    } else if (!strcmp(type, "warning")) {
        stamp(r, ev);
        fprintf(r->out, "%swarning%s: %s\n", term_on(r->st, THEME_LOG_WARNING), term_off(r->st),
                str(ev, "message"));
    } else if (!strcmp(type, "result")) {
        render_result(r, ev);
    }
    fflush(r->out);
}
