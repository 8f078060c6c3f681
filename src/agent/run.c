/* run.c - see run.h. */
#include "agent/run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/file.h"
#include "core/xalloc.h"

struct run_mgr {
    char *dir;
    char *json_path, *log_path, *exit_path;
    struct run_info info;
    int have;          /* info holds a run */
    int is_child;      /* the keeper is our child (not adopted) */
    int logfd;         /* reading run.log, -1 when closed */
};

static char *run_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);

    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

unsigned long long run_proc_start(pid_t pid)
{
    char path[64], *buf = NULL, *p;
    size_t len;
    unsigned long long start = 0;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if (pid <= 0 || file_read(path, 4096, &buf, &len) != 0)
        return 0;
    /* fields after the parenthesised command: state is field 3, starttime 22;
     * a zombie is gone already (a PID 1 that never reaps keeps it forever) */
    p = strrchr(buf, ')');
    if (p && (p[1] != ' ' || p[2] == 'Z' || p[2] == 'X'))
        p = NULL;
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    if (p)
        start = strtoull(p + 1, NULL, 10);
    free(buf);
    return start;
}

/* ---- run.json ---------------------------------------------------------- */

static int run_save(struct run_mgr *m, struct choir_error *err)
{
    const struct run_info *i = &m->info;
    json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:i, s:i, s:b, s:s}",
                          "run_id", i->run_id, "job_id", i->job_id, "command", i->command,
                          "carries_job_id", i->carries_job_id, "keeper", (json_int_t)i->keeper,
                          "keeper_start", (json_int_t)i->keeper_start, "started_ms",
                          (json_int_t)i->started_ms, "ended_ms", (json_int_t)i->ended_ms,
                          "exit_code", i->exit_code, "signal", i->signal, "reported",
                          i->reported, "lost", i->lost);
    char *text = json_dumps(o, JSON_COMPACT);
    int e = file_write_atomic(m->json_path, text, strlen(text), 0600);

    free(text);
    json_decref(o);
    if (e) {
        error_set(err, CHOIR_EXIT_INPUT, "cannot write %s: %s", m->json_path, strerror(e));
        return -1;
    }
    return 0;
}

static void copy_str(char *dst, size_t size, const json_t *v)
{
    snprintf(dst, size, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static long long get_int(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* Reads run.json; a missing file is no run, a bad one an error. */
static int run_load(struct run_mgr *m, struct choir_error *err)
{
    char *text = NULL;
    size_t len;
    json_t *o;
    int e = file_read(m->json_path, RUN_STATE_MAX, &text, &len);
    struct run_info *i = &m->info;
    const char *run_id;

    if (e == ENOENT)
        return 0;
    o = e ? NULL : json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    free(text);
    run_id = json_string_value(json_object_get(o, "run_id"));
    if (!json_is_object(o) || !run_id || !wire_requestid_ok(run_id)) {
        error_set(err, CHOIR_EXIT_INPUT, "%s: %s", m->json_path,
                  e ? strerror(e) : "not a run record (remove it to start afresh)");
        json_decref(o);
        return -1;
    }
    copy_str(i->run_id, sizeof(i->run_id), json_object_get(o, "run_id"));
    copy_str(i->job_id, sizeof(i->job_id), json_object_get(o, "job_id"));
    copy_str(i->command, sizeof(i->command), json_object_get(o, "command"));
    copy_str(i->lost, sizeof(i->lost), json_object_get(o, "lost"));
    i->carries_job_id = json_is_true(json_object_get(o, "carries_job_id"));
    i->keeper = (pid_t)get_int(o, "keeper");
    i->keeper_start = (unsigned long long)get_int(o, "keeper_start");
    i->started_ms = get_int(o, "started_ms");
    i->ended_ms = get_int(o, "ended_ms");
    i->exit_code = (int)get_int(o, "exit_code");
    i->signal = (int)get_int(o, "signal");
    i->reported = json_is_true(json_object_get(o, "reported"));
    m->have = 1;
    json_decref(o);
    return 0;
}

/* ---- the keeper ---------------------------------------------------------- */

static void keeper_write_exit(const char *path, int status)
{
    char line[64];
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;

    snprintf(line, sizeof(line), "%d %d\n", code, sig);
    file_write_atomic(path, line, strlen(line), 0600);
}

static void child_exec(char *const *argv)
{
    sigset_t none;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    execvp(argv[0], argv);
    dprintf(2, "Error: choird: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* In the keeper: descriptors 0-2 are /dev/null and the log, nothing else. */
static void keeper_main(char *const *argv, int nullfd, int logfd, const char *exit_path)
{
    pid_t child;
    int status = 0;

    setsid();
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    dup2(nullfd, 0);
    dup2(logfd, 1);
    dup2(logfd, 2);
    close_range(3, ~0U, 0);
    child = fork();
    if (child == 0)
        child_exec(argv);
    if (child < 0) {
        dprintf(2, "Error: choird: cannot fork the run: %s\n", strerror(errno));
        status = 127 << 8;
    } else {
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
            ;
    }
    keeper_write_exit(exit_path, status);
    _exit(0);
}

int run_start(struct run_mgr *m, char *const *argv, const char *job_id, int carries_job_id,
              struct choir_error *err)
{
    struct run_info *i = &m->info;
    int logfd, nullfd;
    pid_t pid;

    if (run_mgr_busy(m)) {
        error_set(err, CHOIR_EXIT_INPUT, "job %s is still running", i->job_id);
        return -1;
    }
    if (unlink(m->exit_path) < 0 && errno != ENOENT) {
        error_set(err, CHOIR_EXIT_INPUT, "cannot remove %s: %s", m->exit_path, strerror(errno));
        return -1;
    }
    logfd = open(m->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (logfd < 0 || nullfd < 0) {
        error_set(err, CHOIR_EXIT_INPUT, "cannot open %s: %s", m->log_path, strerror(errno));
        if (logfd >= 0)
            close(logfd);
        return -1;
    }
    memset(i, 0, sizeof(*i));
    if (wire_requestid_new(i->run_id, err) < 0) {
        close(logfd);
        close(nullfd);
        return -1;
    }
    snprintf(i->job_id, sizeof(i->job_id), "%s", job_id);
    runcmd_format(argv, i->command, sizeof(i->command));
    i->carries_job_id = carries_job_id;
    i->started_ms = clock_wall_ms();
    fflush(NULL);
    pid = fork();
    if (pid == 0)
        keeper_main(argv, nullfd, logfd, m->exit_path);
    close(logfd);
    close(nullfd);
    if (pid < 0) {
        error_set(err, CHOIR_EXIT_INTERNAL, "cannot fork: %s", strerror(errno));
        return -1;
    }
    i->keeper = pid;
    i->keeper_start = run_proc_start(pid);
    m->have = 1;
    m->is_child = 1;
    if (m->logfd >= 0)
        close(m->logfd);
    m->logfd = open(m->log_path, O_RDONLY | O_CLOEXEC);
    return run_save(m, err);
}

/* ---- watching it --------------------------------------------------------- */

/* Reads up to max bytes of new output into the callback; 1 when more is left. */
static int run_read(struct run_mgr *m, size_t max, run_output_fn *out, void *ctx)
{
    char buf[16384];
    size_t total = 0;

    if (m->logfd < 0)
        return 0;
    while (total < max) {
        ssize_t r = read(m->logfd, buf, sizeof(buf));

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        total += (size_t)r;
        if (out)
            out(ctx, buf, (size_t)r);
    }
    return 1;
}

static int run_keeper_alive(struct run_mgr *m)
{
    const struct run_info *i = &m->info;

    if (m->is_child) {
        int status;
        pid_t r = waitpid(i->keeper, &status, WNOHANG);

        if (r == i->keeper || (r < 0 && errno == ECHILD)) {
            m->is_child = 0;
            return 0;
        }
        return 1;
    }
    return i->keeper_start && run_proc_start(i->keeper) == i->keeper_start;
}

/* Takes the end from run.exit, or records that it is unknown. */
static void run_take_end(struct run_mgr *m)
{
    struct run_info *i = &m->info;
    char *text = NULL;
    size_t len;

    i->ended_ms = clock_wall_ms();
    if (file_read(m->exit_path, 64, &text, &len) == 0 &&
        sscanf(text, "%d %d", &i->exit_code, &i->signal) == 2) {
        free(text);
        return;
    }
    free(text);
    i->exit_code = -1;
    i->signal = 0;
    snprintf(i->lost, sizeof(i->lost), "the run's keeper (pid %ld) ended without an exit status",
             (long)i->keeper);
}

enum run_poll run_mgr_poll(struct run_mgr *m, run_output_fn *out, void *ctx)
{
    struct choir_error err;

    if (!m->have || m->info.reported)
        return RUN_IDLE;
    if (m->info.ended_ms)
        return RUN_ENDED;
    if (run_read(m, RUN_READ_MAX, out, ctx))
        return RUN_MORE;
    /* our own keeper is going until reaped (run.exit comes just before its
     * exit, and an end taken then would leave it a zombie) */
    if (m->is_child ? run_keeper_alive(m) : access(m->exit_path, F_OK) != 0 && run_keeper_alive(m))
        return RUN_GOING;
    while (run_read(m, RUN_READ_MAX, out, ctx))
        ;
    run_take_end(m);
    run_save(m, &err); /* best effort: unsaved, a reopen takes the end again */
    return RUN_ENDED;
}

int run_mgr_mark_reported(struct run_mgr *m, struct choir_error *err)
{
    if (!m->have)
        return 0;
    m->info.reported = 1;
    if (m->logfd >= 0) {
        close(m->logfd);
        m->logfd = -1;
    }
    return run_save(m, err);
}

/* ---- the manager ----------------------------------------------------------- */

static int run_mkdir(const char *dir, struct choir_error *err)
{
    struct stat st;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        error_set(err, CHOIR_EXIT_INPUT, "cannot create the run state directory %s: %s", dir,
                  strerror(errno));
        return -1;
    }
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        error_set(err, CHOIR_EXIT_INPUT, "the run state directory %s is not a directory", dir);
        return -1;
    }
    return 0;
}

/* An adopted run: going when its keeper is; ended otherwise. */
static void run_adopt(struct run_mgr *m)
{
    struct run_info *i = &m->info;

    if (i->reported || i->ended_ms)
        return;
    i->adopted = 1;
    m->logfd = open(m->log_path, O_RDONLY | O_CLOEXEC);
}

int run_mgr_open(struct run_mgr **out, const char *state_dir, struct choir_error *err)
{
    struct run_mgr *m = xcalloc(1, sizeof(*m));

    *out = NULL;
    m->logfd = -1;
    m->dir = xstrdup(state_dir);
    m->json_path = run_path(state_dir, "run.json");
    m->log_path = run_path(state_dir, "run.log");
    m->exit_path = run_path(state_dir, "run.exit");
    if (run_mkdir(state_dir, err) < 0 || run_load(m, err) < 0) {
        run_mgr_free(m);
        return -1;
    }
    if (m->have)
        run_adopt(m);
    *out = m;
    return 0;
}

void run_mgr_free(struct run_mgr *m)
{
    if (!m)
        return;
    if (m->logfd >= 0)
        close(m->logfd);
    free(m->dir);
    free(m->json_path);
    free(m->log_path);
    free(m->exit_path);
    free(m);
}

const struct run_info *run_mgr_info(const struct run_mgr *m)
{
    return m->have ? &m->info : NULL;
}

int run_mgr_busy(const struct run_mgr *m)
{
    return m->have && !m->info.reported && !m->info.ended_ms;
}

int run_mgr_unreported(const struct run_mgr *m)
{
    return m->have && !m->info.reported && m->info.ended_ms;
}
