/* run_render.c - see run_render.h. */
#include "ui/run_render.h"

#include <string.h>
#include <time.h>

static void stamp(struct run_render *r, const char *node)
{
    char when[16];
    time_t now = time(NULL);
    struct tm tm;

    localtime_r(&now, &tm);
    strftime(when, sizeof(when), "%H:%M:%S", &tm);
    fprintf(r->out, "%s %s%s%s: ", when, term_on(r->st, THEME_NODE), node, term_off(r->st));
}

static void emit_json(struct run_render *r, json_t *o)
{
    json_dumpf(o, r->out, JSON_COMPACT);
    fputc('\n', r->out);
    fflush(r->out);
    json_decref(o);
}

void run_render_reply(struct run_render *r, const char *node, int statuscode,
                      const char *statusmsg)
{
    if (r->json) {
        emit_json(r, json_pack("{s:s, s:{s:i, s:s}}", "node", node, "reply", "statuscode",
                               statuscode, "statusmsg", statusmsg ? statusmsg : ""));
        return;
    }
    if (statuscode == 0)
        return;
    stamp(r, node);
    fprintf(r->out, "%srefused%s: %s\n", term_on(r->st, THEME_NODE_FAILED), term_off(r->st),
            statusmsg);
    fflush(r->out);
}

static enum theme_role level_role(const char *level)
{
    if (strcmp(level, "err") == 0 || strcmp(level, "crit") == 0 || strcmp(level, "alert") == 0 ||
        strcmp(level, "emerg") == 0)
        return THEME_LOG_ERROR;
    return strcmp(level, "warning") == 0 ? THEME_LOG_WARNING : THEME_PLAIN;
}

static void render_output(struct run_render *r, const char *node, const json_t *event)
{
    json_int_t skipped = json_integer_value(json_object_get(event, "skipped"));
    const json_t *line;
    size_t i;

    json_array_foreach(json_object_get(event, "lines"), i, line) {
        const char *level = json_string_value(json_object_get(line, "level"));
        const char *text = json_string_value(json_object_get(line, "text"));

        level = level ? level : "output";
        stamp(r, node);
        fprintf(r->out, "%s%s%s%s%s\n", term_on(r->st, level_role(level)),
                strcmp(level, "output") == 0 ? "" : level, strcmp(level, "output") == 0 ? "" : ": ",
                text ? text : "", term_off(r->st));
    }
    if (skipped > 0) {
        stamp(r, node);
        fprintf(r->out, "[%lld lines skipped: the run's output is over the node's rate limit]\n",
                (long long)skipped);
    }
}

static void render_finished(struct run_render *r, const char *node, const json_t *event)
{
    const json_t *v = json_object_get(event, "verdict"), *s = json_object_get(event, "summary");
    int ok = json_is_true(json_object_get(v, "success"));

    stamp(r, node);
    fprintf(r->out, "%s%s%s in %.1fs, exit code %lld: %s", term_on(r->st, ok ? THEME_NODE_OK : THEME_NODE_FAILED),
            json_string_value(json_object_get(v, "verdict")), term_off(r->st),
            (double)json_integer_value(json_object_get(event, "duration_ms")) / 1000.0,
            (long long)json_integer_value(json_object_get(event, "exit_code")),
            json_string_value(json_object_get(v, "reason")));
    if (json_is_object(s))
        fprintf(r->out, " (%lld resources, %lld changed, %lld failed)",
                (long long)json_integer_value(json_object_get(s, "total_resources")),
                (long long)json_integer_value(json_object_get(s, "changed_resources")),
                (long long)json_integer_value(json_object_get(s, "failed_resources")));
    fputc('\n', r->out);
}

void run_render_event(struct run_render *r, const char *node, const json_t *event)
{
    const char *kind = json_string_value(json_object_get(event, "event"));

    if (r->json) {
        emit_json(r, json_pack("{s:s, s:O}", "node", node, "event", event));
        return;
    }
    if (strcmp(kind, "started") == 0) {
        stamp(r, node);
        fprintf(r->out, "%sstarted%s %s\n", term_on(r->st, THEME_NODE_RUNNING), term_off(r->st),
                json_string_value(json_object_get(event, "command")));
    } else if (strcmp(kind, "output") == 0) {
        render_output(r, node, event);
    } else if (strcmp(kind, "finished") == 0) {
        render_finished(r, node, event);
    }
    fflush(r->out);
}

void run_render_note(struct run_render *r, const char *node, const char *state, const char *text)
{
    if (r->json) {
        emit_json(r, json_pack("{s:s, s:s, s:s}", "node", node, "state", state, "message", text));
        return;
    }
    stamp(r, node);
    fprintf(r->out, "%s%s%s: %s\n", term_on(r->st, THEME_NODE_FAILED), state, term_off(r->st),
            text);
    fflush(r->out);
}

void run_render_summary(struct run_render *r, const char *job_id, size_t succeeded,
                        size_t failed, size_t total)
{
    if (r->json) {
        emit_json(r, json_pack("{s:s, s:I, s:I, s:I}", "job_id", job_id, "nodes",
                               (json_int_t)total, "succeeded", (json_int_t)succeeded, "failed",
                               (json_int_t)failed));
        return;
    }
    fprintf(r->out, "job %s: %zu of %zu nodes succeeded, %zu failed\n", job_id, succeeded, total,
            failed);
}
