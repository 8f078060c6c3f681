/* tui.c - see tui.h and view.h: the terminal, the loop (poll on the
 * keyboard, the source and a signal pipe; a frame at most every
 * TUI_FRAME_MS), the view stack, the title, message and footer lines,
 * questions and commands.  The drawing helpers are in tui_draw.c. */
#include "ui/tui.h"

#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "core/xalloc.h"
#include "ui/view.h"

#define EVENTS_PER_TAKE 256     /* between two looks at the keyboard */
#define APPLY_BUDGET_MS 12       /* events applied between two looks at the keyboard */
#define FLASH_TICK_MS 100
#define LEAVE_WAIT_MS 3000       /* for pause's answer before leaving */

static int sig_pipe[2] = {-1, -1};

static void tui_on_signal(int sig)
{
    char c = (char)sig;

    if (write(sig_pipe[1], &c, 1) < 0) {
        /* the pipe is full: a signal is already waiting */
    }
}

/* ---- clocks --------------------------------------------------------------------------- */

long long tui_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static long long thread_cpu_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long long tui_clock_ms(const struct tui *t)
{
    struct timespec ts;

    if (t->src && t->src->clock_ms)
        return t->src->clock_ms(t->src->ctx);
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- views ---------------------------------------------------------------------------- */

void tui_push(struct tui *t, struct view *v)
{
    if (t->depth == TUI_STACK_MAX) {
        v->ops->free(v);
        return;
    }
    t->stack[t->depth++] = v;
    t->need_draw = 1;
}

void tui_pop(struct tui *t)
{
    if (t->depth <= 1)
        return;
    t->depth--;
    t->stack[t->depth]->ops->free(t->stack[t->depth]);
    t->need_draw = 1;
}

static struct view *top_view(const struct tui *t)
{
    return t->depth ? t->stack[t->depth - 1] : NULL;
}

void tui_message(struct tui *t, int role, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(t->msg, sizeof(t->msg), fmt, ap);
    va_end(ap);
    t->msg_role = role;
    t->need_draw = 1;
}

/* ---- commands and questions ---------------------------------------------------------- */

void tui_command(struct tui *t, const char *command, const char *arg)
{
    if (t->src && t->src->command) {
        t->src->command(t->src->ctx, command, arg ? arg : "");
        tui_message(t, THEME_PLAIN, "%s%s%s: sent", command, arg && *arg ? " " : "",
                    arg ? arg : "");
    } else {
        tui_message(t, THEME_PROMPT, "%s%s%s (replay: not sent)", command, arg && *arg ? " " : "",
                    arg ? arg : "");
    }
}

static void tui_leave(struct tui *t)
{
    if (t->src && t->src->command && t->model.state == JOB_RUNNING) {
        t->operator_seen = t->model.operators;
        tui_command(t, "pause", "");
        tui_message(t, THEME_PROMPT, "pausing job %s before leaving ...",
                    t->model.job_id ? t->model.job_id : "");
        t->leaving = 1;
        t->leave_deadline = tui_now_ms() + LEAVE_WAIT_MS;
        return;
    }
    if (t->src && t->src->command == NULL)
        tui_message(t, THEME_PROMPT, "quit (replay: not sent)");
    t->left_running = !model_final(&t->model);
    t->done = 1;
}

static int source_over(const struct tui *t)
{
    return !t->src || (t->src->finished && t->src->finished(t->src->ctx));
}

static void tui_do(struct tui *t, enum keymap_action a, const char *arg)
{
    switch (a) {
    case KA_PAUSE: tui_command(t, "pause", ""); break;
    case KA_CONTINUE: tui_command(t, "resume", ""); break;
    case KA_ABORT: tui_command(t, "abort", ""); break;
    case KA_RETRY: tui_command(t, "retry", ""); break;
    case KA_SKIP: tui_command(t, "skip", arg); break;
    case KA_UNLOCK: tui_command(t, "unlock", ""); break;
    case KA_QUIT: tui_leave(t); break;
    default: break;
    }
}

void tui_confirm(struct tui *t, enum keymap_action action, const char *arg, const char *question)
{
    t->prompt.kind = PROMPT_CONFIRM;
    t->prompt.action = action;
    snprintf(t->prompt.arg, sizeof(t->prompt.arg), "%s", arg ? arg : "");
    snprintf(t->prompt.label, sizeof(t->prompt.label), "%s [y/N] ", question);
    t->need_draw = 1;
}

void tui_input(struct tui *t, const char *label, const char *initial, tui_text_fn *fn)
{
    t->prompt.kind = PROMPT_TEXT;
    snprintf(t->prompt.label, sizeof(t->prompt.label), "%s", label);
    snprintf(t->prompt.text, sizeof(t->prompt.text), "%s", initial ? initial : "");
    t->prompt.len = strlen(t->prompt.text);
    t->prompt.on_text = fn;
    t->need_draw = 1;
}

void tui_job_action(struct tui *t, enum keymap_action a, const char *node)
{
    const char *job = t->model.job_id ? t->model.job_id : "";
    char q[256];

    if (!t->src)
        return;
    switch (a) {
    case KA_ABORT:
        snprintf(q, sizeof(q), "Abort job %s? Runs in flight finish; 'choir resume %s' goes on.",
                 job, job);
        break;
    case KA_RETRY: snprintf(q, sizeof(q), "Run the failed nodes of job %s again?", job); break;
    case KA_SKIP:
        if (!node) {
            tui_message(t, THEME_ERROR, "skip: select a node first");
            return;
        }
        snprintf(q, sizeof(q), "Skip %s? It will not run in this job.", node);
        break;
    case KA_UNLOCK:
        snprintf(q, sizeof(q), "Release the Puppet locks job %s holds (enable Puppet on them)?", job);
        break;
    case KA_QUIT:
        if (model_final(&t->model) || source_over(t)) {
            t->done = 1;
            return;
        }
        if (t->model.state == JOB_RUNNING)
            snprintf(q, sizeof(q), "Leave? Job %s will be paused (runs in flight finish); 'choir "
                     "resume %s' goes on.", job, job);
        else
            snprintf(q, sizeof(q), "Leave job %s while it is %s? 'choir resume %s' goes on.", job,
                     job_state_name(t->model.state), job);
        break;
    default:
        tui_do(t, a, node);
        return;
    }
    tui_confirm(t, a, node, q);
}

static void confirm_key(struct tui *t, int key)
{
    enum keymap_action a = t->prompt.action;
    char arg[sizeof(t->prompt.arg)];

    t->prompt.kind = PROMPT_NONE;
    snprintf(arg, sizeof(arg), "%s", t->prompt.arg);
    if (key == 'y' || key == 'Y')
        tui_do(t, a, arg);
    else
        tui_message(t, THEME_PLAIN, "%s: cancelled", keymap_action_name(a));
}

static void utf8_append(char *buf, size_t size, size_t *len, int cp)
{
    char enc[8];
    size_t n;

    if (cp < 0x80) {
        enc[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        enc[0] = (char)(0xc0 | (cp >> 6)), enc[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        enc[0] = (char)(0xe0 | (cp >> 12)), enc[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        enc[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        enc[0] = (char)(0xf0 | (cp >> 18)), enc[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        enc[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), enc[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    }
    if (*len + n >= size)
        return;
    memcpy(buf + *len, enc, n);
    *len += n;
    buf[*len] = '\0';
}

static void input_key(struct tui *t, int key)
{
    tui_text_fn *fn = t->prompt.on_text;
    char text[sizeof(t->prompt.text)];

    if (key == KEYMAP_ENTER || key == KEYMAP_ESC || key == KEYMAP_CTRL('c')) {
        t->prompt.kind = PROMPT_NONE;
        snprintf(text, sizeof(text), "%s", t->prompt.text);
        fn(t, text, key == KEYMAP_ENTER ? 1 : -1);
        return;
    }
    if (key == KEYMAP_BACKSPACE) {
        while (t->prompt.len > 0 && (t->prompt.text[--t->prompt.len] & 0xc0) == 0x80)
            ;
        t->prompt.text[t->prompt.len] = '\0';
    } else if (key == KEYMAP_CTRL('u')) {
        t->prompt.len = 0;
        t->prompt.text[0] = '\0';
    } else if (key >= 0x20 && key < 0x110000 && key != 0x7f) {
        utf8_append(t->prompt.text, sizeof(t->prompt.text), &t->prompt.len, key);
    } else {
        return;
    }
    fn(t, t->prompt.text, 0);
}

/* ---- keys ------------------------------------------------------------------------------ */

static int curses_key(wint_t k)
{
    switch (k) {
    case KEY_UP: return KEYMAP_UP;
    case KEY_DOWN: return KEYMAP_DOWN;
    case KEY_LEFT: return KEYMAP_LEFT;
    case KEY_RIGHT: return KEYMAP_RIGHT;
    case KEY_PPAGE: return KEYMAP_PGUP;
    case KEY_NPAGE: return KEYMAP_PGDN;
    case KEY_HOME: return KEYMAP_HOME;
    case KEY_END: return KEYMAP_END;
    case KEY_ENTER: return KEYMAP_ENTER;
    case KEY_BACKSPACE: return KEYMAP_BACKSPACE;
    default: return -1;
    }
}

static int too_small(void)
{
    return COLS < TUI_MIN_COLS || LINES < TUI_MIN_ROWS;
}

static void tui_global_key(struct tui *t, int a)
{
    struct view *v = top_view(t);

    switch (a) {
    case KA_HELP:
        if (strcmp(v->ops->name, "help") != 0)
            tui_push(t, view_help_new(t));
        break;
    case KA_LOG:
        if (strcmp(v->ops->name, "log") != 0 && t->src)
            tui_push(t, view_log_new(t));
        break;
    case KA_BACK:
        tui_pop(t);
        break;
    case KA_QUIT:
        if (t->depth > 1)
            tui_pop(t);
        else
            tui_job_action(t, KA_QUIT, NULL);
        break;
    case KA_PAUSE: case KA_CONTINUE: case KA_ABORT: case KA_RETRY: case KA_UNLOCK:
        tui_job_action(t, a, NULL);
        break;
    default:
        break;
    }
}

static void tui_key(struct tui *t, int key)
{
    struct view *v = top_view(t);
    int a;

    if (t->prompt.kind == PROMPT_CONFIRM) {
        confirm_key(t, key);
        return;
    }
    if (t->prompt.kind == PROMPT_TEXT) {
        input_key(t, key);
        return;
    }
    a = keymap_action(&t->keys, key);
    if (too_small()) {
        if (a == KA_QUIT)
            tui_job_action(t, KA_QUIT, NULL);
        return;
    }
    if (!v || (v->ops->key && v->ops->key(t, v, a, key)))
        return;
    tui_global_key(t, a);
}

static void tui_resize(struct tui *t)
{
    for (int i = 0; i < t->depth; i++)
        if (t->stack[i]->ops->resize)
            t->stack[i]->ops->resize(t, t->stack[i]);
    clearok(curscr, TRUE);
    t->need_draw = 1;
    t->last_frame_ms = 0; /* at once */
}

static void tui_keys(struct tui *t)
{
    wint_t wc;
    int r;

    while ((r = get_wch(&wc)) != ERR) {
        int key;

        if (r == KEY_CODE_YES) {
            if (wc == KEY_RESIZE) {
                tui_resize(t);
                continue;
            }
            if ((key = curses_key(wc)) < 0)
                continue;
        } else {
            key = (int)wc;
            if (key == '\n')
                key = KEYMAP_ENTER;
            else if (key == 8)
                key = KEYMAP_BACKSPACE;
        }
        t->stats.keys++;
        if (!t->key_at_ms)
            t->key_at_ms = tui_now_ms();
        tui_key(t, key);
        t->need_draw = 1;
    }
}

/* ---- events ---------------------------------------------------------------------------- */

/* A key typed while events are applied goes first. */
static int key_waiting(void)
{
    struct pollfd p = {STDIN_FILENO, POLLIN, 0};

    return poll(&p, 1, 0) > 0;
}

static int tui_take(struct tui *t, int readable)
{
    const struct tui_source *s = t->src;
    double start = now_us();
    json_t *evs[EVENTS_PER_TAKE];
    size_t n;
    int more = 0;

    if (s->due_ms ? s->due_ms(s->ctx) != 0 : !readable)
        return 0;
    while ((n = s->take(s->ctx, evs, EVENTS_PER_TAKE)) > 0) {
        long long now = tui_now_ms();

        for (size_t i = 0; i < n; i++) {
            model_apply(&t->model, evs[i], now);
            json_decref(evs[i]);
        }
        t->stats.events += n;
        if (now_us() - start > APPLY_BUDGET_MS * 1000.0 || key_waiting()) {
            more = 1;
            break;
        }
        if (s->due_ms && s->due_ms(s->ctx) != 0)
            break;
    }
    t->stats.apply_ms_total += (now_us() - start) / 1000.0;
    if (t->flash_ms > 0 && (t->model.dirty & MODEL_DIRTY_TREE))
        t->flash_until = tui_now_ms() + t->flash_ms; /* rows may flash: fade them */
    return more;
}

static void tui_signals(struct tui *t)
{
    char c;

    while (read(sig_pipe[0], &c, 1) == 1) {
        if (c == SIGINT && !t->done) {
            tui_key(t, KEYMAP_CTRL('c'));
        } else if (!t->done && !t->leaving) {
            /* SIGTERM, SIGHUP: no one to ask; leave as a confirmed quit */
            t->prompt.kind = PROMPT_NONE;
            if (t->src)
                tui_leave(t);
            else
                t->done = 1;
        }
    }
}

static void tui_leave_check(struct tui *t)
{
    if (!t->leaving)
        return;
    if (t->model.operators > t->operator_seen && !strcmp(t->model.last_command, "pause")) {
        t->paused = strncmp(t->model.last_reply, "ok", 2) == 0;
        t->left_running = 1;
        t->done = 1;
    } else if (tui_now_ms() >= t->leave_deadline || model_final(&t->model)) {
        t->left_running = !model_final(&t->model);
        t->done = 1;
    }
}

/* ---- drawing --------------------------------------------------------------------------- */

static void draw_title(struct tui *t, struct view *v)
{
    const struct ui_model *m = &t->model;
    char elapsed[32], extra[256] = "";
    long long ms = model_elapsed_ms(m, tui_clock_ms(t)) / 1000;
    int x, right;

    tui_fill(t, 0, 0, COLS, THEME_TITLE);
    if (ms >= 3600)
        snprintf(elapsed, sizeof(elapsed), "%lld:%02lld:%02lld", ms / 3600, (ms / 60) % 60, ms % 60);
    else
        snprintf(elapsed, sizeof(elapsed), "%lld:%02lld", ms / 60, ms % 60);
    if (v && v->ops->title)
        v->ops->title(t, v, extra, sizeof(extra));
    right = tui_width(t, extra) + (t->src && t->src->label ? (int)strlen(t->src->label) + 3 : 0);
    if (!t->src)
        x = tui_putf(t, 0, 0, COLS - right - 2, THEME_TITLE, " choir · %s · the plan",
                     m->environment ? m->environment : "-");
    else {
        char line[512];

        snprintf(line, sizeof(line), " choir · %s · job %s · %s · %s · %s",
                 m->environment ? m->environment : "-", m->job_id ? m->job_id : "-",
                 m->caller ? m->caller : "-", elapsed, job_state_name(m->state));
        if (tui_width(t, line) > COLS - right - 2) /* the caller gives way first */
            snprintf(line, sizeof(line), " choir · %s · job %s · %s · %s",
                     m->environment ? m->environment : "-", m->job_id ? m->job_id : "-", elapsed,
                     job_state_name(m->state));
        if (tui_width(t, line) > COLS - right - 2) /* then the name of the program */
            snprintf(line, sizeof(line), " %s · job %s · %s · %s",
                     m->environment ? m->environment : "-", m->job_id ? m->job_id : "-", elapsed,
                     job_state_name(m->state));
        x = tui_put(t, 0, 0, COLS - right - 2, THEME_TITLE, line);
    }
    (void)x;
    if (right > 0) {
        int rx = COLS - right - 1;

        if (t->src && t->src->label)
            rx += tui_putf(t, 0, rx, COLS - rx, THEME_PROMPT, "[%s] ", t->src->label);
        tui_put(t, 0, rx, COLS - rx, THEME_TITLE, extra);
    }
}

static void draw_message(struct tui *t)
{
    int y = LINES - 2, x;

    if (t->prompt.kind != PROMPT_NONE) {
        x = tui_put(t, y, 0, COLS, THEME_PROMPT, t->prompt.label);
        if (t->prompt.kind == PROMPT_TEXT) {
            x += tui_put(t, y, x, COLS - x - 1, THEME_PLAIN, t->prompt.text);
            tui_put(t, y, x, 1, THEME_CURSOR, " ");
        }
        return;
    }
    tui_put(t, y, 0, COLS, t->msg_role, t->msg);
}

static void draw_footer(struct tui *t, struct view *v)
{
    char hints[512] = "";

    tui_fill(t, LINES - 1, 0, COLS, THEME_FOOTER);
    if (v && v->ops->nhints)
        keymap_hints(&t->keys, v->ops->hints, v->ops->nhints, hints, sizeof(hints));
    tui_put(t, LINES - 1, 1, COLS - 1, THEME_FOOTER, hints);
}

static void draw_small(struct tui *t)
{
    char line[160];
    int y = LINES / 2 - 1;

    snprintf(line, sizeof(line), "This terminal is %dx%d: choir needs at least %dx%d.", COLS,
             LINES, TUI_MIN_COLS, TUI_MIN_ROWS);
    tui_put(t, y < 0 ? 0 : y, 0, COLS, THEME_ERROR, line);
    tui_put(t, y + 1, 0, COLS, THEME_PLAIN, "Make it larger (q leaves).");
    if (t->prompt.kind != PROMPT_NONE)
        draw_message(t);
}

static void sync_message(struct tui *t)
{
    if (!(t->model.dirty & MODEL_DIRTY_MESSAGE))
        return;
    snprintf(t->msg, sizeof(t->msg), "%s", t->model.message);
    t->msg_role = t->model.message_level == UI_LEVEL_ERR ? THEME_ERROR
                  : t->model.message_level == UI_LEVEL_WARNING ? THEME_LOG_WARNING : THEME_PLAIN;
}

static void tui_draw(struct tui *t)
{
    double start = now_us(), ms;
    struct view *v = top_view(t);
    long long now;

    sync_message(t);
    if (t->src && t->src->error && t->src->error(t->src->ctx)) {
        snprintf(t->msg, sizeof(t->msg), "%s", t->src->error(t->src->ctx));
        t->msg_role = THEME_ERROR;
    }
    erase();
    if (too_small()) {
        draw_small(t);
    } else {
        if (v && v->ops->overlay && t->depth > 1)
            t->stack[t->depth - 2]->ops->draw(t, t->stack[t->depth - 2], 1, LINES - 3);
        if (v)
            v->ops->draw(t, v, 1, LINES - 3);
        draw_title(t, v);
        draw_message(t);
        draw_footer(t, v);
    }
    wnoutrefresh(stdscr);
    doupdate();
    now = tui_now_ms();
    t->model.dirty &= MODEL_DIRTY_ROWS;
    t->need_draw = 0;
    t->last_frame_ms = now;
    ms = (now_us() - start) / 1000.0;
    t->stats.frames++;
    t->stats.frame_ms_total += ms;
    if (ms > t->stats.frame_ms_max)
        t->stats.frame_ms_max = ms;
    if (t->key_at_ms) {
        double k = (double)(now - t->key_at_ms);

        t->stats.key_ms_total += k;
        if (k > t->stats.key_ms_max)
            t->stats.key_ms_max = k;
        t->key_at_ms = 0;
    }
}

/* ---- the loop -------------------------------------------------------------------------- */

static long long min_due(long long a, long long b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* When something must be drawn even if nothing arrives: the elapsed
 * clock of a job that runs, fading flashes. */
static long long next_tick(const struct tui *t, long long now)
{
    if (now < t->flash_until + FLASH_TICK_MS)
        return now + FLASH_TICK_MS;
    if (t->src && !model_final(&t->model) && t->model.started_ms && !source_over(t))
        return now + 1000 - tui_clock_ms(t) % 1000;
    return -1;
}

static int tui_timeout(struct tui *t, long long now, int more, long long tick)
{
    long long due = -1;

    if (more || t->done)
        return 0;
    if (t->need_draw || (t->model.dirty & ~(unsigned)MODEL_DIRTY_ROWS)) {
        due = t->last_frame_ms + TUI_FRAME_MS - now;
        if (due < 0)
            due = 0;
    }
    if (tick >= 0)
        due = min_due(due, tick > now ? tick - now : 0);
    if (t->src && t->src->due_ms)
        due = min_due(due, t->src->due_ms(t->src->ctx));
    if (t->leaving)
        due = min_due(due, t->leave_deadline > now ? t->leave_deadline - now : 0);
    if (t->exit_at_end && source_over(t))
        due = min_due(due, 50);
    return due < 0 ? -1 : due > INT_MAX ? INT_MAX : (int)due;
}

/* Whether a frame is due for what changed: a change the top view does
 * not show is dropped without drawing. */
static int tui_stale(struct tui *t)
{
    struct view *v = top_view(t);

    if (t->need_draw)
        return 1;
    if (!(t->model.dirty & ~(unsigned)MODEL_DIRTY_ROWS))
        return 0;
    if (v && v->ops->stale && !too_small() && !v->ops->stale(t, v)) {
        t->model.dirty &= MODEL_DIRTY_ROWS;
        return 0;
    }
    return 1;
}

static void tui_loop(struct tui *t)
{
    int more = 0;
    long long tick = -1;

    t->need_draw = 1;
    while (!t->done) {
        struct pollfd fds[3];
        int n = 0, sfd = -1, gfd = -1;
        long long now = tui_now_ms();

        fds[n++] = (struct pollfd){STDIN_FILENO, POLLIN, 0};
        if (t->src && t->src->fd >= 0) {
            sfd = n;
            fds[n++] = (struct pollfd){t->src->fd, POLLIN, 0};
        }
        if (sig_pipe[0] >= 0) {
            gfd = n;
            fds[n++] = (struct pollfd){sig_pipe[0], POLLIN, 0};
        }
        if (poll(fds, (nfds_t)n, tui_timeout(t, now, more, tick)) < 0 && errno != EINTR)
            break;
        if (gfd >= 0 && (fds[gfd].revents & POLLIN))
            tui_signals(t);
        tui_keys(t);
        /* a key is answered on screen before more events are taken */
        if (t->src && !t->key_at_ms)
            more = tui_take(t, more || (sfd >= 0 && (fds[sfd].revents & POLLIN)));
        else if (t->src && sfd >= 0 && (fds[sfd].revents & POLLIN))
            more = 1;
        tui_leave_check(t);
        now = tui_now_ms();
        if (tick >= 0 && now >= tick)
            t->need_draw = 1;
        if ((t->key_at_ms || now - t->last_frame_ms >= TUI_FRAME_MS || t->done) && tui_stale(t)) {
            tui_draw(t);
            tick = next_tick(t, tui_now_ms());
        }
        if (t->exit_at_end && source_over(t) && !more && !t->need_draw &&
            !(t->model.dirty & ~(unsigned)MODEL_DIRTY_ROWS))
            t->done = 1;
    }
}

static void tui_signals_on(void)
{
    struct sigaction sa;

    if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = tui_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ---- public ---------------------------------------------------------------------------- */

int tui_open(struct tui **out, const struct tui_options *o, struct choir_error *err)
{
    struct tui *t = xcalloc(1, sizeof(*t));
    char origin[300];
    SCREEN *scr;

    *out = NULL;
    keymap_default(&t->keys);
    snprintf(origin, sizeof(origin), "tui.keys (%s)", o->keys_origin ? o->keys_origin : "configuration");
    if (o->keys && *o->keys && keymap_bind(&t->keys, o->keys, origin, err) < 0) {
        free(t);
        return -1;
    }
    if (o->theme)
        t->theme = *o->theme;
    else
        theme_default(&t->theme);
    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C"); /* numbers stay "18.9" in the journal and on screen */
    t->utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    if (!(scr = newterm(NULL, stdout, stdin))) {
        error_set(err, CHOIR_EXIT_INPUT, "cannot drive this terminal (TERM=%s): use --no-tui",
                  getenv("TERM") ? getenv("TERM") : "");
        free(t);
        return -1;
    }
    set_term(scr);
    raw();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25);
    tui_looks(t, o->color);
    model_init(&t->model);
    t->flash_ms = TUI_FLASH_MS;
    t->stats_file = o->stats_file;
    t->exit_at_end = o->exit_at_end;
    t->stats.cpu_start_us = thread_cpu_us();
    tui_signals_on();
    *out = t;
    return 0;
}

int tui_plan(struct tui *t, const struct plan *plan, const struct job_options *opt,
             const char *environment)
{
    t->plan_answer = 0;
    t->done = 0;
    free(t->model.environment);
    t->model.environment = xstrdup(environment ? environment : plan->site->environment);
    tui_push(t, view_plan_new(t, plan, opt, environment));
    tui_loop(t);
    while (t->depth > 0) {
        t->depth--;
        t->stack[t->depth]->ops->free(t->stack[t->depth]);
    }
    t->done = 0;
    return t->plan_answer;
}

void tui_status(struct tui *t, const char *text)
{
    tui_message(t, THEME_PROMPT, "%s", text);
    tui_draw(t);
}

void tui_run(struct tui *t, const struct tui_source *src, struct tui_end *end)
{
    t->src = src;
    t->done = 0;
    if (src->fast)
        t->flash_ms = 0;
    tui_push(t, view_run_new(t));
    tui_loop(t);
    memset(end, 0, sizeof(*end));
    end->left_running = t->left_running;
    end->paused = t->paused;
    end->result = t->model.result ? json_incref(t->model.result) : NULL;
    snprintf(end->state, sizeof(end->state), "%s", job_state_name(t->model.state));
}

static void tui_write_stats(const struct tui *t)
{
    const struct tui_stats *s = &t->stats;
    FILE *f = fopen(t->stats_file, "w");

    if (!f)
        return;
    fprintf(f, "frames %lu\nframe_ms_avg %.3f\nframe_ms_max %.3f\nkeys %lu\nkey_ms_avg %.3f\n"
            "key_ms_max %.3f\nevents %lu\napply_ms %.3f\ncpu_ms %.3f\n",
            s->frames, s->frames ? s->frame_ms_total / (double)s->frames : 0.0, s->frame_ms_max,
            s->keys, s->keys ? s->key_ms_total / (double)s->keys : 0.0, s->key_ms_max, s->events,
            s->apply_ms_total, (double)(thread_cpu_us() - s->cpu_start_us) / 1000.0);
    fclose(f);
}

void tui_close(struct tui *t)
{
    struct sigaction sa;

    if (!t)
        return;
    while (t->depth > 0) {
        t->depth--;
        t->stack[t->depth]->ops->free(t->stack[t->depth]);
    }
    endwin();
    if (t->stats_file && *t->stats_file)
        tui_write_stats(t);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    model_done(&t->model);
    free(t);
}
