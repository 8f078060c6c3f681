/* status_render.c - see status_render.h. */
#include "ui/status_render.h"

#include <string.h>

void status_age(long long lastrun, time_t now, char *buf, size_t size)
{
    long long s = (long long)now - lastrun;

    if (lastrun <= 0)
        snprintf(buf, size, "never");
    else if (s < 0)
        snprintf(buf, size, "in the future");
    else if (s < 60)
        snprintf(buf, size, "%llds ago", s);
    else if (s < 3600)
        snprintf(buf, size, "%lldm %llds ago", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, size, "%lldh %lldm ago", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, size, "%lldd %lldh ago", s / 86400, s % 86400 / 3600);
}

static const char *status_yes_no(json_t *data, const char *key)
{
    json_t *v = json_object_get(data, key);

    return json_is_boolean(v) ? (json_is_true(v) ? "yes" : "no") : "?";
}

/* The role that colours a node's row. */
static enum theme_role status_role(const struct status_row *r)
{
    if (!r->answered || r->statuscode != 0)
        return THEME_NODE_FAILED;
    if (json_is_true(json_object_get(r->data, "applying")))
        return THEME_NODE_RUNNING;
    if (json_is_false(json_object_get(r->data, "enabled")))
        return THEME_LOCKED;
    return THEME_NODE_OK;
}

static void status_table_row(FILE *out, const struct status_row *r, int width, time_t now,
                             const struct term_style *st)
{
    const char *msg;
    char age[32];

    fprintf(out, "%s%-*s%s  ", term_on(st, status_role(r)), width, r->node, term_off(st));
    if (!r->answered) {
        fprintf(out, "%-7s  %-8s  %-12s  %s\n", "-", "-", "-", "no reply");
        return;
    }
    if (r->statuscode != 0) {
        fprintf(out, "%-7s  %-8s  %-12s  error %d: %s\n", "-", "-", "-", r->statuscode, r->statusmsg);
        return;
    }
    status_age(json_integer_value(json_object_get(r->data, "lastrun")), now, age, sizeof(age));
    msg = json_string_value(json_object_get(r->data, "disable_message"));
    fprintf(out, "%-7s  %-8s  %-12s  %s\n", status_yes_no(r->data, "enabled"),
            status_yes_no(r->data, "applying"), age, msg ? msg : "");
}

void status_render_table(FILE *out, const struct status_row *rows, size_t n, time_t now,
                         const struct term_style *st)
{
    size_t enabled = 0, disabled = 0, applying = 0, failed = 0, silent = 0;
    int width = 4;

    for (size_t i = 0; i < n; i++)
        if ((int)strlen(rows[i].node) > width)
            width = (int)strlen(rows[i].node);
    fprintf(out, "%s%-*s  %-7s  %-8s  %-12s  %s%s\n", term_on(st, THEME_TITLE), width, "NODE",
            "ENABLED", "APPLYING", "LAST RUN", "MESSAGE", term_off(st));
    for (size_t i = 0; i < n; i++) {
        const struct status_row *r = &rows[i];
        int ok = r->answered && r->statuscode == 0;

        status_table_row(out, r, width, now, st);
        enabled += ok && json_is_true(json_object_get(r->data, "enabled"));
        disabled += ok && json_is_false(json_object_get(r->data, "enabled"));
        applying += ok && json_is_true(json_object_get(r->data, "applying"));
        failed += r->answered && !ok;
        silent += !r->answered;
    }
    fprintf(out, "\n%zu %s: %zu enabled, %zu disabled, %zu applying", n, n == 1 ? "node" : "nodes",
            enabled, disabled, applying);
    if (failed)
        fprintf(out, "; %s%zu answered with an error%s", term_on(st, THEME_ERROR), failed, term_off(st));
    if (silent) {
        fprintf(out, "; %s%zu did not answer%s:", term_on(st, THEME_ERROR), silent, term_off(st));
        for (size_t i = 0; i < n; i++)
            if (!rows[i].answered)
                fprintf(out, " %s", rows[i].node);
    }
    fputc('\n', out);
}

void status_render_json(FILE *out, const struct status_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *o = rows[i].answered
                        ? json_pack("{s:s, s:i, s:s, s:O}", "node", rows[i].node, "statuscode",
                                    rows[i].statuscode, "statusmsg", rows[i].statusmsg, "data",
                                    rows[i].data)
                        : json_pack("{s:s, s:s}", "node", rows[i].node, "error", "no reply");

        json_dumpf(o, out, JSON_COMPACT);
        fputc('\n', out);
        json_decref(o);
    }
}

void status_render_actions(FILE *out, const struct status_row *rows, size_t n, const char *done,
                           const struct term_style *st)
{
    for (size_t i = 0; i < n; i++) {
        const struct status_row *r = &rows[i];

        if (!r->answered)
            fprintf(out, "%s%s%s: no reply\n", term_on(st, THEME_NODE_FAILED), r->node, term_off(st));
        else if (r->statuscode != 0)
            fprintf(out, "%s%s%s: failed: %s\n", term_on(st, THEME_NODE_FAILED), r->node,
                    term_off(st), r->statusmsg);
        else
            fprintf(out, "%s%s%s: %s\n", term_on(st, THEME_NODE_OK), r->node, term_off(st), done);
    }
}
