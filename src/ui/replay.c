/* replay.c - see replay.h. */
#include "ui/replay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/xalloc.h"

struct replay {
    char *path;
    FILE *f;
    double speed;                  /* 0: as fast as possible */
    json_t *next;                  /* read ahead, not yet taken */
    long long next_time;
    long long first_time;          /* recorded time of the first event */
    long long last_taken;          /* recorded time of the last event taken */
    long long start_ms;            /* monotonic time of the first take */
    unsigned long line, events;
    int eof;
    char error[512];
    char *buf;
    size_t cap;
};

/* Reads the next event into r->next; at the end or on an error r->eof. */
static void replay_read(struct replay *r)
{
    ssize_t n;

    while (!r->next && !r->eof) {
        json_error_t je;
        json_t *ev;

        errno = 0;
        n = getline(&r->buf, &r->cap, r->f);
        if (n < 0) {
            if (errno)
                snprintf(r->error, sizeof(r->error), "%s: %s", r->path, strerror(errno));
            r->eof = 1;
            return;
        }
        r->line++;
        if (n > REPLAY_LINE_MAX) {
            snprintf(r->error, sizeof(r->error), "%s:%lu: a line over %d bytes", r->path, r->line,
                     REPLAY_LINE_MAX);
            r->eof = 1;
            return;
        }
        if (strspn(r->buf, " \t\r\n") == (size_t)n)
            continue;
        ev = json_loadb(r->buf, (size_t)n, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(ev) || !json_is_string(json_object_get(ev, "type")) ||
            !json_is_integer(json_object_get(ev, "time"))) {
            snprintf(r->error, sizeof(r->error), "%s:%lu: not a job event (%s)", r->path, r->line,
                     ev ? "a JSON object with \"type\" and \"time\" was expected" : je.text);
            json_decref(ev);
            r->eof = 1;
            return;
        }
        r->next = ev;
        r->next_time = json_integer_value(json_object_get(ev, "time"));
        if (!r->first_time)
            r->first_time = r->next_time;
    }
}

static long long replay_due(void *ctx)
{
    struct replay *r = ctx;
    long long at, now;

    replay_read(r);
    if (!r->next)
        return -1;
    if (r->speed <= 0 || !r->start_ms)
        return 0;
    at = r->start_ms + (long long)((double)(r->next_time - r->first_time) / r->speed);
    now = clock_mono_ms();
    return at > now ? at - now : 0;
}

static size_t replay_take(void *ctx, json_t **evs, size_t max)
{
    struct replay *r = ctx;
    size_t n = 0;

    if (!r->start_ms)
        r->start_ms = clock_mono_ms();
    while (n < max && replay_due(r) == 0) {
        evs[n++] = r->next;
        r->last_taken = r->next_time;
        r->next = NULL;
        r->events++;
    }
    return n;
}

static int replay_finished(void *ctx)
{
    struct replay *r = ctx;

    replay_read(r);
    return r->eof && !r->next;
}

static long long replay_clock(void *ctx)
{
    struct replay *r = ctx;
    long long t;

    if (!r->start_ms || r->speed <= 0)
        return r->last_taken;
    t = r->first_time + (long long)((double)(clock_mono_ms() - r->start_ms) * r->speed);
    if (r->eof && !r->next && t > r->last_taken)
        t = r->last_taken;
    return t;
}

static const char *replay_error_cb(void *ctx)
{
    return replay_error(ctx);
}

int replay_open(struct replay **out, const char *path, double speed, struct choir_error *err)
{
    struct replay *r;
    FILE *f = fopen(path, "r");

    *out = NULL;
    if (!f) {
        error_set(err, CHOIR_EXIT_INPUT, "%s: %s", path, strerror(errno));
        return -1;
    }
    r = xcalloc(1, sizeof(*r));
    r->path = xstrdup(path);
    r->f = f;
    r->speed = speed;
    *out = r;
    return 0;
}

void replay_source(struct replay *r, struct tui_source *src)
{
    memset(src, 0, sizeof(*src));
    src->ctx = r;
    src->fd = -1;
    src->due_ms = replay_due;
    src->take = replay_take;
    src->finished = replay_finished;
    src->command = NULL;
    src->clock_ms = replay_clock;
    src->error = replay_error_cb;
    src->label = "replay";
    src->fast = r->speed <= 0;
}

const char *replay_error(const struct replay *r)
{
    return r->error[0] ? r->error : NULL;
}

unsigned long replay_events(const struct replay *r)
{
    return r->events;
}

void replay_free(struct replay *r)
{
    if (!r)
        return;
    json_decref(r->next);
    if (r->f)
        fclose(r->f);
    free(r->buf);
    free(r->path);
    free(r);
}
