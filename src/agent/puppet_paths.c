/* puppet_paths.c - see puppet_paths.h. */
#include "agent/puppet_paths.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/xalloc.h"

#define PUPPET_AIO_PROGRAM "/opt/puppetlabs/bin/puppet"
#define PUPPET_DEFAULT_PROGRAM "puppet"
#define PATHS_MAX_EXTRA_ARGS 64
#define PATHS_STDERR_KEEP 512   /* bytes of puppet's stderr quoted in errors */

static const char *const paths_names[PUPPET_PATHS_COUNT] = {
#define PUPPET_PATHS_NAME(name) #name,
    PUPPET_PATHS_SETTINGS(PUPPET_PATHS_NAME)
#undef PUPPET_PATHS_NAME
};

/* The field for index i (the struct is the X-macro's order). */
static char **paths_slot(struct puppet_paths *p, size_t i)
{
    char **slots[PUPPET_PATHS_COUNT] = {
#define PUPPET_PATHS_SLOT(name) &p->name,
        PUPPET_PATHS_SETTINGS(PUPPET_PATHS_SLOT)
#undef PUPPET_PATHS_SLOT
    };

    return slots[i];
}

void puppet_paths_init(struct puppet_paths *p)
{
    memset(p, 0, sizeof(*p));
}

void puppet_paths_done(struct puppet_paths *p)
{
    size_t i;

    for (i = 0; i < PUPPET_PATHS_COUNT; i++) {
        free(*paths_slot(p, i));
        *paths_slot(p, i) = NULL;
    }
}

const char *puppet_paths_name(size_t i)
{
    return i < PUPPET_PATHS_COUNT ? paths_names[i] : NULL;
}

const char *puppet_paths_get(const struct puppet_paths *p, size_t i)
{
    if (i >= PUPPET_PATHS_COUNT)
        return NULL;
    return *paths_slot((struct puppet_paths *)p, i);
}

int puppet_paths_complete(const struct puppet_paths *p)
{
    size_t i;

    for (i = 0; i < PUPPET_PATHS_COUNT; i++)
        if (!puppet_paths_get(p, i))
            return 0;
    return 1;
}

static int paths_index(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < PUPPET_PATHS_COUNT; i++)
        if (strlen(paths_names[i]) == len && memcmp(paths_names[i], name, len) == 0)
            return (int)i;
    return -1;
}

/* An absolute path of sane length without control characters. */
static int path_check(const char *name, const char *value, struct choir_error *err)
{
    const char *c;

    if (value[0] != '/') {
        error_set(err, CHOIR_EXIT_INPUT, "%s: '%.200s' is not an absolute path", name, value);
        return -1;
    }
    if (strlen(value) > PUPPET_PATHS_MAX_PATH) {
        error_set(err, CHOIR_EXIT_INPUT, "%s: path longer than %d bytes", name,
                  PUPPET_PATHS_MAX_PATH);
        return -1;
    }
    for (c = value; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            error_set(err, CHOIR_EXIT_INPUT, "%s: path holds a control character", name);
            return -1;
        }
    return 0;
}

int puppet_paths_set(struct puppet_paths *p, const char *name, const char *value,
                     struct choir_error *err)
{
    int i = paths_index(name, strlen(name));
    char **slot;

    if (i < 0) {
        error_set(err, CHOIR_EXIT_INPUT, "unknown Puppet path setting '%.100s'", name);
        return -1;
    }
    if (path_check(name, value, err) < 0)
        return -1;
    slot = paths_slot(p, (size_t)i);
    free(*slot);
    *slot = xstrdup(value);
    return 0;
}

/* ---- Puppet's default layout --------------------------------------------- */

static char *path_join(const char *dir, const char *file)
{
    size_t dl = strlen(dir), fl = strlen(file);
    char *s;

    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    s = xmalloc(dl + fl + 2);
    memcpy(s, dir, dl);
    s[dl] = '/';
    memcpy(s + dl + 1, file, fl + 1);
    return s;
}

/* Moves every path of src into dst (replacing dst's), emptying src. */
static void paths_move(struct puppet_paths *dst, struct puppet_paths *src)
{
    puppet_paths_done(dst);
    *dst = *src;
    puppet_paths_init(src);
}

int puppet_paths_from_dir(struct puppet_paths *p, const char *vardir, const char *rundir,
                          const char *publicdir, struct choir_error *err)
{
    struct puppet_paths tmp;
    char *statedir, *public;
    size_t i;

    if (path_check("vardir", vardir, err) < 0 || path_check("rundir", rundir, err) < 0 ||
        (publicdir && path_check("publicdir", publicdir, err) < 0))
        return -1;
    statedir = path_join(vardir, "state");
    public = publicdir ? xstrdup(publicdir) : path_join(vardir, "public");
    puppet_paths_init(&tmp);
    tmp.lastrunfile = path_join(public, "last_run_summary.yaml");
    tmp.lastrunreport = path_join(statedir, "last_run_report.yaml");
    tmp.agent_catalog_run_lockfile = path_join(statedir, "agent_catalog_run.lock");
    tmp.agent_disabled_lockfile = path_join(statedir, "agent_disabled.lock");
    tmp.pidfile = path_join(rundir, "agent.pid");
    free(statedir);
    free(public);
    for (i = 0; i < PUPPET_PATHS_COUNT; i++)
        if (path_check(paths_names[i], puppet_paths_get(&tmp, i), err) < 0) {
            puppet_paths_done(&tmp);
            return -1;
        }
    paths_move(p, &tmp);
    return 0;
}

/* ---- parsing `puppet config print` ------------------------------------------ */

/* One "name = value" line; other lines are ignored. */
static int parse_line(struct puppet_paths *tmp, const char *line, size_t len,
                      struct choir_error *err)
{
    const char *eq = NULL;
    char *value;
    size_t i;
    int idx, rc;

    for (i = 0; i + 3 <= len; i++)
        if (memcmp(line + i, " = ", 3) == 0) {
            eq = line + i;
            break;
        }
    if (!eq || (idx = paths_index(line, (size_t)(eq - line))) < 0)
        return 0;
    value = xstrndup(eq + 3, len - (size_t)(eq + 3 - line));
    if (!*value) {
        error_set(err, CHOIR_EXIT_INPUT, "%s: no value",
                  paths_names[idx]);
        free(value);
        return -1;
    }
    rc = puppet_paths_set(tmp, paths_names[idx], value, err);
    free(value);
    return rc;
}

int puppet_paths_parse(struct puppet_paths *p, const char *out, size_t len,
                       struct choir_error *err)
{
    struct puppet_paths tmp;
    const char *end = out + len, *line = out;
    size_t i;

    puppet_paths_init(&tmp);
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = (size_t)((nl ? nl : end) - line);

        if (n && line[n - 1] == '\r')
            n--;
        if (memchr(line, '\0', n)) {
            error_set(err, CHOIR_EXIT_INPUT, "output holds a NUL byte");
            puppet_paths_done(&tmp);
            return -1;
        }
        if (parse_line(&tmp, line, n, err) < 0) {
            puppet_paths_done(&tmp);
            return -1;
        }
        line = nl ? nl + 1 : end;
    }
    for (i = 0; i < PUPPET_PATHS_COUNT; i++)
        if (!puppet_paths_get(&tmp, i)) {
            error_set(err, CHOIR_EXIT_INPUT, "did not report %s",
                      paths_names[i]);
            puppet_paths_done(&tmp);
            return -1;
        }
    paths_move(p, &tmp);
    return 0;
}

/* ---- running puppet --------------------------------------------------------- */

enum { CAPTURE_TIMEOUT = 1, CAPTURE_OVERFLOW = 2 };

struct capture {
    char *out;            /* stdout, NUL-terminated */
    size_t out_len;
    int out_overflow;
    char err[PATHS_STDERR_KEEP + 1];
    size_t err_len;
};

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* In the child: wire the pipes and exec; never returns. */
static void child_exec(char *const argv[], int use_fallback, int out_fd, int err_fd, int exec_fd)
{
    int devnull = open("/dev/null", O_RDONLY);
    sigset_t none;
    int e;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    setpgid(0, 0);
    if (devnull >= 0)
        dup2(devnull, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    execvp(argv[0], argv);
    e = errno;
    if (use_fallback && e == ENOENT) {
        execv(PUPPET_AIO_PROGRAM, argv);
        e = errno;
    }
    if (write(exec_fd, &e, sizeof(e)) < 0)
        _exit(127);
    _exit(127);
}

/* Reads what is available on fd into the capture; returns 0 at EOF. */
static int capture_read(struct capture *c, int fd, int is_out)
{
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));

    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : 0;
    if (n == 0)
        return 0;
    if (is_out) {
        if (c->out_len + (size_t)n > PUPPET_PATHS_MAX_OUTPUT) {
            c->out_overflow = 1;
            return 1;
        }
        c->out = xrealloc(c->out, c->out_len + (size_t)n + 1);
        memcpy(c->out + c->out_len, buf, (size_t)n);
        c->out_len += (size_t)n;
        c->out[c->out_len] = '\0';
    } else if (c->err_len < PATHS_STDERR_KEEP) {
        size_t take = (size_t)n < PATHS_STDERR_KEEP - c->err_len ? (size_t)n
                                                                : PATHS_STDERR_KEEP - c->err_len;
        memcpy(c->err + c->err_len, buf, take);
        c->err_len += take;
        c->err[c->err_len] = '\0';
    }
    return 1;
}

/* Drains both pipes until EOF: 0, or CAPTURE_TIMEOUT / CAPTURE_OVERFLOW. */
static int capture_pipes(struct capture *c, int out_fd, int err_fd, long deadline)
{
    struct pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    int open_count = 2;

    while (open_count > 0) {
        long left = deadline - now_ms();
        int i, r;

        if (left <= 0)
            return CAPTURE_TIMEOUT;
        r = poll(fds, 2, (int)left);
        if (r < 0 && errno != EINTR)
            return CAPTURE_TIMEOUT;
        for (i = 0; r > 0 && i < 2; i++)
            if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
                !capture_read(c, fds[i].fd, i == 0)) {
                fds[i].fd = -1;
                open_count--;
            }
        if (c->out_overflow)
            return CAPTURE_OVERFLOW;
    }
    return 0;
}

/* Waits for pid until the deadline, then kills its process group. */
static int reap(pid_t pid, long deadline, int *status)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);

        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_ms() >= deadline) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, status, 0) < 0 && errno == EINTR)
                ;
            return -1;
        }
        poll(NULL, 0, 10);
    }
}

/* The first line of puppet's stderr, for error messages. */
static const char *first_line(char *text)
{
    text[strcspn(text, "\r\n")] = '\0';
    return text[0] ? text : "no message";
}

/* Interprets how the child ended; 0 when it exited 0. */
static int check_exit(const char *prog, int status, struct capture *c, struct choir_error *err)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        error_set(err, CHOIR_EXIT_INPUT, "%s config print exited with status %d: %s", prog,
                  WEXITSTATUS(status), first_line(c->err));
    else
        error_set(err, CHOIR_EXIT_INPUT, "%s config print was killed by signal %d", prog,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return -1;
}

static void close_pair(int fds[2])
{
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    fds[0] = fds[1] = -1;
}

/* Waits for the exec report: 0 when the program started. */
static int exec_result(int exec_fd, const char *prog, struct choir_error *err)
{
    int e = 0;
    ssize_t n;

    while ((n = read(exec_fd, &e, sizeof(e))) < 0 && errno == EINTR)
        ;
    if (n == (ssize_t)sizeof(e)) {
        error_set(err, CHOIR_EXIT_INPUT, "cannot run %s: %s", prog, strerror(e));
        return -1;
    }
    return 0;
}

/* Collects the output of the started child and checks how it ended; a
 * child that overran the time or the output bound is killed at once. */
static int run_collect(pid_t pid, const char *prog, int out_fd, int err_fd, int timeout_ms,
                       struct capture *c, struct choir_error *err)
{
    long deadline = now_ms() + timeout_ms;
    int status = 0, bad = capture_pipes(c, out_fd, err_fd, deadline);

    if (bad)
        deadline = now_ms();
    if (reap(pid, deadline, &status) < 0 && !bad)
        bad = CAPTURE_TIMEOUT;
    if (bad == CAPTURE_OVERFLOW) {
        error_set(err, CHOIR_EXIT_INPUT, "%s config print wrote more than %d bytes", prog,
                  PUPPET_PATHS_MAX_OUTPUT);
        return -1;
    }
    if (bad) {
        error_set(err, CHOIR_EXIT_INPUT, "%s config print did not finish within %d ms", prog,
                  timeout_ms);
        return -1;
    }
    return check_exit(prog, status, c, err);
}

/* Runs argv with stdin from /dev/null and captures stdout (bounded). */
static int run_capture(char *const argv[], int use_fallback, int timeout_ms, struct capture *c,
                       struct choir_error *err)
{
    int out[2] = {-1, -1}, errp[2] = {-1, -1}, ex[2] = {-1, -1}, rc;
    pid_t pid;

    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || pipe2(ex, O_CLOEXEC) < 0) {
        error_set(err, CHOIR_EXIT_INPUT, "cannot create a pipe: %s", strerror(errno));
        close_pair(out), close_pair(errp), close_pair(ex);
        return -1;
    }
    pid = fork();
    if (pid == 0)
        child_exec(argv, use_fallback, out[1], errp[1], ex[1]);
    close(out[1]), close(errp[1]), close(ex[1]);
    out[1] = errp[1] = ex[1] = -1;
    if (pid < 0) {
        error_set(err, CHOIR_EXIT_INPUT, "cannot fork: %s", strerror(errno));
        rc = -1;
    } else if (exec_result(ex[0], argv[0], err) < 0) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        rc = -1;
    } else {
        rc = run_collect(pid, argv[0], out[0], errp[0], timeout_ms, c, err);
    }
    close_pair(out), close_pair(errp), close_pair(ex);
    return rc;
}

/* ---- discovery ----------------------------------------------------------- */

int puppet_paths_discover_cmd(struct puppet_paths *p, const char *program,
                              const char *const *extra, int timeout_ms, struct choir_error *err)
{
    const char *argv[PUPPET_PATHS_COUNT + PATHS_MAX_EXTRA_ARGS + 8];
    struct capture c;
    size_t n = 0, i;
    int rc;

    argv[n++] = program ? program : PUPPET_DEFAULT_PROGRAM;
    argv[n++] = "config";
    argv[n++] = "print";
    for (i = 0; i < PUPPET_PATHS_COUNT; i++)
        argv[n++] = paths_names[i];
    argv[n++] = "--section";
    argv[n++] = "agent";
    for (i = 0; extra && extra[i]; i++) {
        if (i >= PATHS_MAX_EXTRA_ARGS) {
            error_set(err, CHOIR_EXIT_INPUT, "more than %d extra puppet arguments",
                      PATHS_MAX_EXTRA_ARGS);
            return -1;
        }
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    memset(&c, 0, sizeof(c));
    rc = run_capture((char *const *)argv, program == NULL, timeout_ms > 0 ? timeout_ms : 1, &c,
                     err);
    if (rc == 0 && puppet_paths_parse(p, c.out ? c.out : "", c.out_len, err) < 0) {
        error_prefix(err, "%s config print", argv[0]);
        rc = -1;
    }
    free(c.out);
    return rc;
}

int puppet_paths_discover(struct puppet_paths *p, struct choir_error *err)
{
    const char *program = getenv("CHOIR_PUPPET");
    const char *args = getenv("CHOIR_PUPPET_ARGS");
    const char *extra[PATHS_MAX_EXTRA_ARGS + 2];
    char *copy = xstrdup(args ? args : ""), *save = NULL, *word;
    size_t n = 0;
    int rc;

    for (word = strtok_r(copy, " \t\n", &save); word; word = strtok_r(NULL, " \t\n", &save)) {
        if (n > PATHS_MAX_EXTRA_ARGS)
            break;
        extra[n++] = word;
    }
    extra[n] = NULL;
    rc = puppet_paths_discover_cmd(p, program && *program ? program : NULL, extra,
                                   PUPPET_PATHS_TIMEOUT_MS, err);
    free(copy);
    return rc;
}
