/* test_ctl.c - the control socket of a running job (src/core/ctl.h), with
 * real sockets in a temporary $XDG_RUNTIME_DIR: a forked child runs
 * ctl_send (or a raw client) while this process serves with poll() and
 * ctl_server_poll, so the server never waits on its clients.  Commands and
 * arguments, the actor, bad lines, idle clients and their timeout, too
 * many clients, directory and file modes, stale and live sockets, no
 * server, a path too long, and (as root) another user refused.  Loops
 * that wait are only bounded, never timed. */
#include "cmocka_setup.h"
#include "test_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/ctl.h"
#include "core/error.h"

#define POLL_ROUNDS 3000 /* x 10 ms: only a bound, never an expectation */
#define JOB "job-1"

/* ---- fixture --------------------------------------------------------------- */

struct calls {
    int n;
    char command[CTL_LINE_MAX];
    char arg[CTL_LINE_MAX];
    char actor[256];
};

struct fx {
    char root[64];
    char dir[128];
    struct calls calls;
    struct ctl_server *s;
};

static void on_command(void *ctx, const char *command, const char *arg, const char *actor,
                       char *reply, size_t reply_size)
{
    struct calls *c = ctx;

    c->n++;
    snprintf(c->command, sizeof(c->command), "%s", command);
    snprintf(c->arg, sizeof(c->arg), "%s", arg);
    snprintf(c->actor, sizeof(c->actor), "%s", actor);
    if (!strcmp(command, "pause"))
        snprintf(reply, reply_size, "ok: paused");
    else if (!strcmp(command, "skip"))
        snprintf(reply, reply_size, "ok: skipping %s", arg);
    else
        snprintf(reply, reply_size, "error: unknown command %s", command);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->root, sizeof(f->root), "/tmp/test_ctl-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->dir, sizeof(f->dir), "%s/choir", f->root);
    assert_int_equal(setenv("XDG_RUNTIME_DIR", f->root, 1), 0);
    ctl_set_timeout_ms(0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    ctl_server_close(f->s);
    ctl_set_timeout_ms(0);
    remove_tree(f->root);
    free(f);
    return 0;
}

static void server_open(struct fx *f)
{
    struct choir_error err = { 0 };

    if (ctl_server_open(&f->s, JOB, on_command, &f->calls, &err) != 0)
        fail_msg("ctl_server_open: %s", err.msg);
}

static char *sock_path(void)
{
    struct choir_error err = { 0 };
    char *p = ctl_path(JOB, &err);

    if (!p)
        fail_msg("ctl_path: %s", err.msg);
    return p;
}

/* One round of the caller's loop: poll the server's descriptors and extra
 * (when >= 0) for 10 ms, then let the server work. */
static void serve_round(struct ctl_server *s, int extra)
{
    int fds[CTL_CLIENTS_MAX + 2];
    struct pollfd p[CTL_CLIENTS_MAX + 3];
    size_t n = ctl_server_fds(s, fds, CTL_CLIENTS_MAX + 2);

    for (size_t i = 0; i < n; i++)
        p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
    if (extra >= 0)
        p[n++] = (struct pollfd){ .fd = extra, .events = POLLIN };
    poll(p, n, 10);
    ctl_server_poll(s);
}

static size_t held(const struct ctl_server *s)
{
    int fds[CTL_CLIENTS_MAX + 8];

    return ctl_server_fds(s, fds, CTL_CLIENTS_MAX + 8) - 1;
}

/* Reads what fd (non-blocking) has into buf at *len; 1 at EOF or error. */
static int drain(int fd, char *buf, size_t size, size_t *len)
{
    ssize_t n = read(fd, buf + *len, size - 1 - *len);

    if (n > 0) {
        *len += (size_t)n;
        buf[*len] = '\0';
        return *len == size - 1;
    }
    return n == 0 || (errno != EAGAIN && errno != EINTR);
}

/* Serves until fd is at its end; what it said is in buf. */
static void serve_until_eof(struct ctl_server *s, int fd, char *buf, size_t size)
{
    size_t len = 0;
    int done = 0;

    buf[0] = '\0';
    for (int i = 0; i < POLL_ROUNDS && !done; i++) {
        serve_round(s, fd);
        done = drain(fd, buf, size, &len);
    }
    assert_true(done);
}

/* ---- clients --------------------------------------------------------------- */

/* A forked child runs ctl_send(job, line) and writes "RC TEXT" (the reply
 * or the error) to a pipe while this process serves (s may be NULL). */
static int run_client(struct ctl_server *s, const char *job, const char *line, char *text,
                      size_t size, pid_t *pid_out)
{
    int pfd[2];
    pid_t pid;
    char buf[2048];
    int status, rc = -99, off = 0;

    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char reply[CTL_LINE_MAX];
        struct choir_error err = { 0 };
        int r = ctl_send(job, line, reply, sizeof(reply), &err);

        close(pfd[0]);
        dprintf(pfd[1], "%d %s", r, r == 0 ? reply : err.msg);
        _exit(0);
    }
    close(pfd[1]);
    if (s) {
        fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        serve_until_eof(s, pfd[0], buf, sizeof(buf));
    } else {
        size_t len = 0;
        ssize_t n;

        while (len < sizeof(buf) - 1 && (n = read(pfd[0], buf + len, sizeof(buf) - 1 - len)) > 0)
            len += (size_t)n;
        buf[len] = '\0';
    }
    close(pfd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(sscanf(buf, "%d %n", &rc, &off), 1);
    snprintf(text, size, "%s", buf + off);
    if (pid_out)
        *pid_out = pid;
    return rc;
}

/* A non-blocking raw connection to the job's socket. */
static int raw_connect(void)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    char *path = sock_path();
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    free(path);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

/* Sends bytes on a raw connection, ends its side and serves until the
 * server closes it. */
static void raw_exchange(struct ctl_server *s, const char *bytes, size_t len, char *reply,
                         size_t size)
{
    int fd = raw_connect();

    assert_int_equal(send(fd, bytes, len, MSG_NOSIGNAL), (ssize_t)len);
    shutdown(fd, SHUT_WR);
    serve_until_eof(s, fd, reply, size);
    close(fd);
}

static void expected_actor(char *buf, size_t size, pid_t pid)
{
    struct passwd *pw = getpwuid(getuid());
    char name[64];

    if (pw)
        snprintf(name, sizeof(name), "%s", pw->pw_name);
    else
        snprintf(name, sizeof(name), "%u", (unsigned)getuid());
    snprintf(buf, size, "user %s (uid %u, pid %ld)", name, (unsigned)getuid(), (long)pid);
}

/* ---- commands -------------------------------------------------------------- */

static void test_pause(void **state)
{
    struct fx *f = *state;
    char text[1024], actor[256];
    pid_t pid;

    server_open(f);
    assert_int_equal(run_client(f->s, JOB, "pause", text, sizeof(text), &pid), 0);
    assert_string_equal(text, "ok: paused");
    assert_int_equal(f->calls.n, 1);
    assert_string_equal(f->calls.command, "pause");
    assert_string_equal(f->calls.arg, "");
    expected_actor(actor, sizeof(actor), pid);
    assert_string_equal(f->calls.actor, actor);
    assert_int_equal(held(f->s), 0);
}

static void test_argument(void **state)
{
    struct fx *f = *state;
    char text[1024], reply[1024];

    server_open(f);
    assert_int_equal(run_client(f->s, JOB, "skip dev1.example.net", text, sizeof(text), NULL), 0);
    assert_string_equal(text, "ok: skipping dev1.example.net");
    assert_string_equal(f->calls.command, "skip");
    assert_string_equal(f->calls.arg, "dev1.example.net");

    /* blanks around words are not part of them; CRLF is a line end */
    raw_exchange(f->s, " \tskip  \tdev2.example.net \r\n", 28, reply, sizeof(reply));
    assert_string_equal(reply, "ok: skipping dev2.example.net\n");
    assert_string_equal(f->calls.arg, "dev2.example.net");

    /* a line ended by the end of the stream still counts */
    raw_exchange(f->s, "pause", 5, reply, sizeof(reply));
    assert_string_equal(reply, "ok: paused\n");
    assert_int_equal(f->calls.n, 3);
}

static void test_bad_lines(void **state)
{
    struct fx *f = *state;
    char long_line[CTL_LINE_MAX + 100], reply[1024], text[1024];
    struct choir_error err = { 0 };

    server_open(f);
    memset(long_line, 'a', sizeof(long_line));
    raw_exchange(f->s, long_line, sizeof(long_line), reply, sizeof(reply));
    assert_string_equal(reply, "error: command line too long (max 511 bytes)\n");

    raw_exchange(f->s, "pa\001use\n", 7, reply, sizeof(reply));
    assert_string_equal(reply, "error: command is not text\n");
    raw_exchange(f->s, "pa\0use\n", 7, reply, sizeof(reply));
    assert_string_equal(reply, "error: command is not text\n");
    raw_exchange(f->s, "\xff\xfe\n", 3, reply, sizeof(reply));
    assert_string_equal(reply, "error: command is not text\n");
    raw_exchange(f->s, "  \n", 3, reply, sizeof(reply));
    assert_string_equal(reply, "error: empty command\n");
    assert_int_equal(f->calls.n, 0);

    /* the callback's own refusal goes through as it is */
    raw_exchange(f->s, "frobnicate\n", 11, reply, sizeof(reply));
    assert_string_equal(reply, "error: unknown command frobnicate\n");

    /* and the server still works */
    assert_int_equal(run_client(f->s, JOB, "pause", text, sizeof(text), NULL), 0);
    assert_string_equal(text, "ok: paused");

    /* ctl_send refuses to send what is not one short line */
    long_line[CTL_LINE_MAX] = '\0';
    assert_int_equal(ctl_send(JOB, long_line, text, sizeof(text), &err), -1);
    assert_non_null(strstr(err.msg, "one line"));
    assert_int_equal(ctl_send(JOB, "pause\nabort", text, sizeof(text), &err), -1);
    assert_int_equal(ctl_send(JOB, "", text, sizeof(text), &err), -1);
}

/* ---- idle and too many clients ----------------------------------------------- */

static void test_idle_client(void **state)
{
    struct fx *f = *state;
    char text[1024], reply[1024];
    int idle;

    server_open(f);
    idle = raw_connect();
    for (int i = 0; i < POLL_ROUNDS && held(f->s) == 0; i++)
        serve_round(f->s, -1);
    assert_int_equal(held(f->s), 1);

    /* others are served while it says nothing */
    assert_int_equal(run_client(f->s, JOB, "pause", text, sizeof(text), NULL), 0);
    assert_string_equal(text, "ok: paused");
    assert_int_equal(run_client(f->s, JOB, "skip n1", text, sizeof(text), NULL), 0);
    assert_string_equal(text, "ok: skipping n1");
    assert_int_equal(held(f->s), 1);
    assert_int_equal(recv(idle, reply, sizeof(reply), MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);

    /* past the timeout it is told so and dropped */
    ctl_set_timeout_ms(1);
    serve_until_eof(f->s, idle, reply, sizeof(reply));
    assert_string_equal(reply, "error: no command within the time limit\n");
    assert_int_equal(held(f->s), 0);
    close(idle);
    assert_int_equal(f->calls.n, 2);
}

static void test_too_many_clients(void **state)
{
    struct fx *f = *state;
    int idle[CTL_CLIENTS_MAX];
    char text[1024];

    server_open(f);
    for (int i = 0; i < CTL_CLIENTS_MAX; i++) {
        idle[i] = raw_connect();
        for (int r = 0; r < POLL_ROUNDS && held(f->s) < (size_t)i + 1; r++)
            serve_round(f->s, -1);
    }
    assert_int_equal(held(f->s), CTL_CLIENTS_MAX);

    assert_int_equal(run_client(f->s, JOB, "pause", text, sizeof(text), NULL), 0);
    assert_string_equal(text, "error: too many control connections, try again");
    assert_int_equal(held(f->s), CTL_CLIENTS_MAX);
    assert_int_equal(f->calls.n, 0);

    for (int i = 0; i < CTL_CLIENTS_MAX; i++)
        close(idle[i]);
    for (int r = 0; r < POLL_ROUNDS && held(f->s) > 0; r++)
        serve_round(f->s, -1);
    assert_int_equal(held(f->s), 0);
    assert_int_equal(run_client(f->s, JOB, "pause", text, sizeof(text), NULL), 0);
    assert_string_equal(text, "ok: paused");
}

/* ---- files ----------------------------------------------------------------- */

static void test_modes(void **state)
{
    struct fx *f = *state;
    struct stat st;
    char *path;
    mode_t old = umask(0); /* the modes must not depend on the caller's umask */

    server_open(f);
    umask(old);
    path = sock_path();
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(lstat(f->dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);

    ctl_server_close(f->s);
    f->s = NULL;
    assert_int_equal(lstat(path, &st), -1);
    assert_int_equal(errno, ENOENT);
    free(path);
}

static void expect_open_fails(struct fx *f, const char *needle1, const char *needle2)
{
    struct choir_error err = { 0 };
    char text[1024];

    assert_int_equal(ctl_server_open(&f->s, JOB, on_command, &f->calls, &err), -1);
    assert_null(f->s);
    if (!strstr(err.msg, needle1) || !strstr(err.msg, needle2))
        fail_msg("want \"%s\" and \"%s\" in: %s", needle1, needle2, err.msg);
    assert_int_equal(err.code, CHOIR_EXIT_INPUT);
    /* the client will not use such a directory either */
    assert_int_equal(run_client(NULL, JOB, "pause", text, sizeof(text), NULL), -1);
    assert_non_null(strstr(text, needle1));
}

static void test_unsafe_dir(void **state)
{
    struct fx *f = *state;
    char link_target[128];

    assert_int_equal(mkdir(f->dir, 0700), 0);
    assert_int_equal(chmod(f->dir, 0777), 0);
    expect_open_fails(f, f->dir, "0777");
    assert_int_equal(chmod(f->dir, 0750), 0);
    expect_open_fails(f, f->dir, "0750");

    if (getuid() == 0) {
        assert_int_equal(chmod(f->dir, 0700), 0);
        assert_int_equal(chown(f->dir, 65534, 65534), 0);
        expect_open_fails(f, f->dir, "owned by uid 65534");
    } else {
        printf("note: not root, the directory owned by another user is not tested\n");
    }

    assert_int_equal(rmdir(f->dir), 0);
    snprintf(link_target, sizeof(link_target), "%s/real", f->root);
    assert_int_equal(mkdir(link_target, 0700), 0);
    assert_int_equal(symlink(link_target, f->dir), 0);
    expect_open_fails(f, f->dir, "not a directory");
}

/* A socket file nobody listens on, as a crashed console leaves it. */
static void make_stale(void)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    char *path = sock_path();
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(fd, 1), 0);
    close(fd);
    free(path);
}

static void test_stale_socket(void **state)
{
    struct fx *f = *state;
    char text[1024];

    make_stale();
    assert_int_equal(run_client(NULL, JOB, "pause", text, sizeof(text), NULL), -1);
    assert_non_null(strstr(text, "no running job " JOB));

    server_open(f);
    assert_int_equal(run_client(f->s, JOB, "pause", text, sizeof(text), NULL), 0);
    assert_string_equal(text, "ok: paused");
}

static void test_live_socket(void **state)
{
    struct fx *f = *state;
    struct ctl_server *second = NULL;
    struct choir_error err = { 0 };
    char text[1024], *path;
    int fd;

    server_open(f);
    assert_int_equal(ctl_server_open(&second, JOB, on_command, &f->calls, &err), -1);
    assert_null(second);
    assert_non_null(strstr(err.msg, "job " JOB " is already controlled by another console"));
    assert_int_equal(run_client(f->s, JOB, "pause", text, sizeof(text), NULL), 0);
    assert_string_equal(text, "ok: paused");

    /* another job is another socket */
    assert_int_equal(ctl_server_open(&second, "job-2", on_command, &f->calls, &err), 0);
    ctl_server_close(second);

    /* a file that is not a socket is not removed */
    ctl_server_close(f->s);
    f->s = NULL;
    path = sock_path();
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    expect_open_fails(f, path, "not a socket");
    assert_int_equal(access(path, F_OK), 0);
    free(path);
}

static void test_no_server(void **state)
{
    struct fx *f = *state;
    char reply[64];
    struct choir_error err = { 0 };

    (void)f;
    assert_int_equal(ctl_send("nojob", "pause", reply, sizeof(reply), &err), -1);
    assert_non_null(strstr(err.msg, "no running job nojob"));
    assert_int_equal(err.code, CHOIR_EXIT_INPUT);
    assert_int_equal(ctl_send("../x", "pause", reply, sizeof(reply), &err), -1);
    assert_non_null(strstr(err.msg, "bad job id"));
}

static void test_path_too_long(void **state)
{
    struct fx *f = *state;
    char longdir[200];
    struct choir_error err = { 0 };
    char *path;

    (void)f;
    snprintf(longdir, sizeof(longdir), "/%0120d", 0);
    assert_int_equal(setenv("XDG_RUNTIME_DIR", longdir, 1), 0);
    assert_null(ctl_path(JOB, &err));
    assert_non_null(strstr(err.msg, "too long"));
    assert_int_equal(ctl_server_open(&f->s, JOB, on_command, &f->calls, &err), -1);
    assert_non_null(strstr(err.msg, "too long"));

    /* without XDG_RUNTIME_DIR: /tmp/choir-UID */
    assert_int_equal(unsetenv("XDG_RUNTIME_DIR"), 0);
    path = ctl_path(JOB, &err);
    assert_non_null(path);
    snprintf(longdir, sizeof(longdir), "/tmp/choir-%u/" JOB ".sock", (unsigned)geteuid());
    assert_string_equal(path, longdir);
    *strrchr(longdir, '/') = '\0';
    rmdir(longdir); /* when empty: a real console may be using it */
    free(path);
}

/* ---- another user ------------------------------------------------------------ */

static void test_other_user(void **state)
{
    struct fx *f = *state;
    int pfd[2], status;
    char buf[256], *path;
    pid_t pid;

    if (getuid() != 0) {
        printf("note: not root, refusal of another uid (SO_PEERCRED) is not tested\n");
        return;
    }
    server_open(f);
    path = sock_path();
    /* let uid 65534 reach the socket, so the peer check is what refuses */
    assert_int_equal(chmod(f->root, 0711), 0);
    assert_int_equal(chmod(f->dir, 0711), 0);
    assert_int_equal(chmod(path, 0666), 0);
    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        char reply[128] = "";
        ssize_t n = 0, r;
        int fd;

        close(pfd[0]);
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
            dprintf(pfd[1], "connect: %s", strerror(errno));
            _exit(0);
        }
        if (send(fd, "pause\n", 6, MSG_NOSIGNAL) != 6) {
            /* the server may have answered and closed already */
        }
        while ((r = read(fd, reply + n, sizeof(reply) - 1 - (size_t)n)) > 0)
            n += r;
        reply[n] = '\0';
        dprintf(pfd[1], "%s", reply);
        _exit(0);
    }
    close(pfd[1]);
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    serve_until_eof(f->s, pfd[0], buf, sizeof(buf));
    close(pfd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_string_equal(buf, "error: not allowed\n");
    assert_int_equal(f->calls.n, 0);
    assert_int_equal(held(f->s), 0);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_argument, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_user, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
