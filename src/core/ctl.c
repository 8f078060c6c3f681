/* ctl.c - the control socket of a running job (ctl.h).
 *
 * The server holds a listening socket and at most CTL_CLIENTS_MAX
 * clients, each with a line buffer.  ctl_server_poll accepts, reads what
 * is there, answers a complete line with one write and closes: a reply
 * is at most CTL_LINE_MAX bytes and goes into the empty send buffer of a
 * fresh connection, so it never has to wait for the client to read. */
#include "core/clock.h"
#include "core/ctl.h"

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/names.h"
#include "core/text.h"
#include "core/utf8.h"
#include "core/xalloc.h"

#define CTL_ACCEPT_BURST 64 /* accepts per poll call: a flood cannot starve the caller */
#define CTL_ACTOR_MAX 160

static int ctl_timeout_ms = CTL_TIMEOUT_MS;

struct ctl_client {
    int fd;
    long long since_ms;          /* when it was accepted */
    size_t len;                  /* bytes in buf */
    char buf[CTL_LINE_MAX + 1];  /* the line so far, NUL-terminated when used */
    char actor[CTL_ACTOR_MAX];
};

struct ctl_server {
    int fd;
    char *path;
    char *job_id;
    dev_t dev; /* the socket file we bound, so close removes only ours */
    ino_t ino;
    ctl_command_fn *fn;
    void *ctx;
    size_t nclients;
    struct ctl_client clients[CTL_CLIENTS_MAX];
};

void ctl_set_timeout_ms(int ms)
{
    ctl_timeout_ms = ms > 0 ? ms : CTL_TIMEOUT_MS;
}

/* ---- the directory and the path ----------------------------------------- */

/* $XDG_RUNTIME_DIR/choir when that is an absolute path, else /tmp/choir-UID. */
static int ctl_dir_name(char *buf, size_t size)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;

    if (xdg && xdg[0] == '/')
        n = snprintf(buf, size, "%s/choir", xdg);
    else
        n = snprintf(buf, size, "/tmp/choir-%u", (unsigned)geteuid());
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Creates dir (0700) when missing; refuses one that is not a directory,
 * not ours, or open to group or others. */
static int ctl_dir_ensure(const char *dir, struct choir_error *err)
{
    struct stat st;

    if (mkdir(dir, 0700) == 0) {
        if (chmod(dir, 0700) != 0) {
            error_set(err, CHOIR_EXIT_INPUT, "control directory %s: %s", dir, strerror(errno));
            return -1;
        }
    } else if (errno != EEXIST) {
        error_set(err, CHOIR_EXIT_INPUT, "cannot create control directory %s: %s", dir,
                  strerror(errno));
        return -1;
    }
    if (lstat(dir, &st) != 0) {
        error_set(err, CHOIR_EXIT_INPUT, "control directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        error_set(err, CHOIR_EXIT_INPUT, "control directory %s is not a directory (refused)", dir);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        error_set(err, CHOIR_EXIT_INPUT, "control directory %s is owned by uid %u, not you (refused)",
                  dir, (unsigned)st.st_uid);
        return -1;
    }
    if (st.st_mode & 077) {
        error_set(err, CHOIR_EXIT_INPUT,
                  "control directory %s has mode %04o, open to others (refused; want 0700)", dir,
                  (unsigned)(st.st_mode & 07777));
        return -1;
    }
    return 0;
}

char *ctl_path(const char *job_id, struct choir_error *err)
{
    struct sockaddr_un addr;
    char dir[sizeof(addr.sun_path)];
    char path[sizeof(addr.sun_path) + NAMES_JOB_ID_MAX + 16];
    int n;

    if (!names_job_id_ok(job_id)) {
        error_set(err, CHOIR_EXIT_INPUT, "bad job id (want 1-%d of A-Z a-z 0-9 _ -)",
                  NAMES_JOB_ID_MAX);
        return NULL;
    }
    n = ctl_dir_name(dir, sizeof(dir)) == 0 ? snprintf(path, sizeof(path), "%s/%s.sock", dir, job_id)
                                             : -1;
    if (n < 0 || (size_t)n >= sizeof(addr.sun_path)) {
        error_set(err, CHOIR_EXIT_INPUT,
                  "control socket path for job %s is too long (max %zu bytes; set XDG_RUNTIME_DIR "
                  "to a shorter directory)",
                  job_id, sizeof(addr.sun_path) - 1);
        return NULL;
    }
    if (ctl_dir_ensure(dir, err) != 0)
        return NULL;
    return xstrdup(path);
}

/* ---- sockets ------------------------------------------------------------- */

static socklen_t addr_fill(struct sockaddr_un *addr, const char *path)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    text_copy(addr->sun_path, sizeof(addr->sun_path), path);
    return (socklen_t)sizeof(*addr);
}

static int socket_new(void)
{
    return socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* Connects a non-blocking socket to path: the fd, or -1 with errno. */
static int socket_connect(const char *path)
{
    struct sockaddr_un addr;
    socklen_t alen = addr_fill(&addr, path);
    int fd = socket_new();
    int e;

    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, alen) == 0)
        return fd;
    e = errno;
    close(fd);
    errno = e;
    return -1;
}

/* 1 when a server listens on path (a full backlog counts), else 0. */
static int socket_live(const char *path)
{
    int fd = socket_connect(path);

    if (fd >= 0) {
        close(fd);
        return 1;
    }
    return errno == EAGAIN;
}

/* Sends text as one line (control bytes made spaces, cut to fit) without
 * waiting: a fresh connection has room for it. */
static void line_send(int fd, const char *text)
{
    char line[CTL_LINE_MAX];
    size_t n;

    text_printable(line, sizeof(line) - 1, text, strlen(text));
    n = strlen(line);
    line[n++] = '\n';
    if (send(fd, line, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* the client is gone or stuck; it is dropped either way */
    }
}

/* ---- server -------------------------------------------------------------- */

/* Binds s->fd at path, replacing a stale socket file. */
static int server_bind(struct ctl_server *s, struct choir_error *err)
{
    struct sockaddr_un addr;
    socklen_t alen = addr_fill(&addr, s->path);
    struct stat st;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (bind(s->fd, (struct sockaddr *)&addr, alen) == 0)
            return 0;
        if (errno != EADDRINUSE)
            break;
        if (lstat(s->path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
            error_set(err, CHOIR_EXIT_INPUT, "%s exists and is not a socket (refused)", s->path);
            return -1;
        }
        if (socket_live(s->path)) {
            error_set(err, CHOIR_EXIT_INPUT, "job %s is already controlled by another console (%s)",
                      s->job_id, s->path);
            return -1;
        }
        if (unlink(s->path) != 0 && errno != ENOENT)
            break;
    }
    error_set(err, CHOIR_EXIT_INPUT, "cannot bind control socket %s: %s", s->path, strerror(errno));
    return -1;
}

static int server_listen(struct ctl_server *s, struct choir_error *err)
{
    struct stat st;

    s->fd = socket_new();
    if (s->fd < 0) {
        error_set(err, CHOIR_EXIT_INPUT, "control socket: %s", strerror(errno));
        return -1;
    }
    if (server_bind(s, err) != 0)
        return -1;
    /* the directory is 0700, so nobody else sees the file before chmod */
    if (chmod(s->path, 0600) != 0 || lstat(s->path, &st) != 0 || listen(s->fd, CTL_CLIENTS_MAX) != 0) {
        error_set(err, CHOIR_EXIT_INPUT, "control socket %s: %s", s->path, strerror(errno));
        unlink(s->path);
        return -1;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    return 0;
}

int ctl_server_open(struct ctl_server **out, const char *job_id, ctl_command_fn *fn, void *ctx,
                    struct choir_error *err)
{
    struct ctl_server *s;
    char *path = ctl_path(job_id, err);

    *out = NULL;
    if (!path)
        return -1;
    s = xcalloc(1, sizeof(*s));
    s->fd = -1;
    s->path = path;
    s->job_id = xstrdup(job_id);
    s->fn = fn;
    s->ctx = ctx;
    if (server_listen(s, err) != 0) {
        if (s->fd >= 0)
            close(s->fd);
        free(s->job_id);
        free(s->path);
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void ctl_server_close(struct ctl_server *s)
{
    struct stat st;

    if (!s)
        return;
    for (size_t i = 0; i < s->nclients; i++)
        close(s->clients[i].fd);
    /* only our file: a console that replaced a stale one keeps its own */
    if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
        unlink(s->path);
    close(s->fd);
    free(s->job_id);
    free(s->path);
    free(s);
}

size_t ctl_server_fds(const struct ctl_server *s, int *fds, size_t max)
{
    size_t n = 0;

    if (n < max)
        fds[n++] = s->fd;
    for (size_t i = 0; i < s->nclients && n < max; i++)
        fds[n++] = s->clients[i].fd;
    return n;
}

/* "user NAME (uid N, pid P)" of the peer; its uid in *uid.  -1 when the
 * kernel does not say. */
static int peer_actor(int fd, uid_t *uid, char *actor, size_t size)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    struct passwd pw, *found = NULL;
    char pwbuf[1024];

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
        return -1;
    *uid = cred.uid;
    if (getpwuid_r(cred.uid, &pw, pwbuf, sizeof(pwbuf), &found) == 0 && found)
        snprintf(actor, size, "user %s (uid %u, pid %ld)", found->pw_name, (unsigned)cred.uid,
                 (long)cred.pid);
    else
        snprintf(actor, size, "user %u (uid %u, pid %ld)", (unsigned)cred.uid, (unsigned)cred.uid,
                 (long)cred.pid);
    return 0;
}

/* Takes on a new connection, or answers and closes it. */
static void server_take(struct ctl_server *s, int fd)
{
    struct ctl_client *c;
    char actor[CTL_ACTOR_MAX];
    uid_t uid;

    if (peer_actor(fd, &uid, actor, sizeof(actor)) != 0 || uid != geteuid()) {
        line_send(fd, "error: not allowed");
        close(fd);
        return;
    }
    if (s->nclients == CTL_CLIENTS_MAX) {
        line_send(fd, "error: too many control connections, try again");
        close(fd);
        return;
    }
    c = &s->clients[s->nclients++];
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->since_ms = clock_mono_ms();
    memcpy(c->actor, actor, sizeof(actor));
}

static void server_accept(struct ctl_server *s)
{
    for (int i = 0; i < CTL_ACCEPT_BURST; i++) {
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0)
            return; /* EAGAIN, or an aborted connection: nothing to do */
        server_take(s, fd);
    }
}

static void client_drop(struct ctl_server *s, size_t i)
{
    close(s->clients[i].fd);
    s->clients[i] = s->clients[--s->nclients];
}

/* Splits line into the command word and its argument (blanks trimmed),
 * runs the callback and sends its answer. */
static void client_answer(struct ctl_server *s, struct ctl_client *c, char *line)
{
    char reply[CTL_LINE_MAX];
    char *cmd, *arg, *end;

    if (strlen(line) != c->len || !utf8_valid(line, c->len)) {
        line_send(c->fd, "error: command is not text");
        return;
    }
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            if (*p != '\t') {
                line_send(c->fd, "error: command is not text");
                return;
            }
            *p = ' ';
        }
    cmd = line + strspn(line, " ");
    arg = cmd + strcspn(cmd, " ");
    if (*arg)
        *arg++ = '\0';
    arg += strspn(arg, " ");
    for (end = arg + strlen(arg); end > arg && end[-1] == ' ';)
        *--end = '\0';
    if (!*cmd) {
        line_send(c->fd, "error: empty command");
        return;
    }
    reply[0] = '\0';
    s->fn(s->ctx, cmd, arg, c->actor, reply, sizeof(reply));
    line_send(c->fd, reply[0] ? reply : "error: internal: the command gave no answer");
}

/* Reads what client i has sent; answers a complete line.  1 when the
 * client is done with (answered, gone, or broken), 0 to keep waiting. */
static int client_read(struct ctl_server *s, struct ctl_client *c)
{
    ssize_t n = read(c->fd, c->buf + c->len, CTL_LINE_MAX - c->len);
    char *nl;

    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : 1;
    if (n == 0 && c->len == 0)
        return 1; /* closed without a word */
    nl = memchr(c->buf + c->len, '\n', (size_t)n);
    c->len += (size_t)n;
    if (nl) {
        c->len = (size_t)(nl - c->buf);
        if (c->len > 0 && c->buf[c->len - 1] == '\r')
            c->len--;
    } else if (n > 0 && c->len < CTL_LINE_MAX) {
        return 0;
    } else if (n > 0) {
        char msg[64];

        snprintf(msg, sizeof(msg), "error: command line too long (max %d bytes)", CTL_LINE_MAX - 1);
        line_send(c->fd, msg);
        return 1;
    }
    /* a newline, or the end of the stream after a partial line */
    c->buf[c->len] = '\0';
    client_answer(s, c, c->buf);
    return 1;
}

void ctl_server_poll(struct ctl_server *s)
{
    long long now;

    server_accept(s);
    now = clock_mono_ms();
    for (size_t i = s->nclients; i-- > 0;) {
        struct ctl_client *c = &s->clients[i];

        if (client_read(s, c)) {
            client_drop(s, i);
        } else if (now - c->since_ms >= ctl_timeout_ms) {
            line_send(c->fd, "error: no command within the time limit");
            client_drop(s, i);
        }
    }
}

/* ---- client -------------------------------------------------------------- */

/* Waits for events on fd until deadline: 0 ready, else -1 with errno
 * (ETIMEDOUT at the deadline). */
static int wait_fd(int fd, short events, long long deadline)
{
    struct pollfd p = { .fd = fd, .events = events };

    for (;;) {
        long long left = deadline - clock_mono_ms();
        int r;

        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static int send_all(int fd, const char *buf, size_t len, long long deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        } else if (wait_fd(fd, POLLOUT, deadline) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Reads up to one line into buf (NUL-terminated, without the newline).
 * 0, or -1 with errno (ETIMEDOUT, ECONNRESET for an empty answer). */
static int recv_line(int fd, char *buf, size_t size, long long deadline)
{
    size_t len = 0;

    for (;;) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        char *nl;

        if (n > 0) {
            nl = memchr(buf + len, '\n', (size_t)n);
            len += (size_t)n;
            if (nl || len == size - 1) {
                buf[nl ? (size_t)(nl - buf) : len] = '\0';
                return 0;
            }
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            buf[len] = '\0';
            if (len > 0)
                return 0;
            if (n == 0)
                errno = ECONNRESET;
            return -1;
        } else if (wait_fd(fd, POLLIN, deadline) != 0) {
            return -1;
        }
    }
}

static int send_connect(const char *job_id, const char *path, struct choir_error *err)
{
    int fd = socket_connect(path);

    if (fd >= 0)
        return fd;
    if (errno == ENOENT || errno == ECONNREFUSED)
        error_set(err, CHOIR_EXIT_INPUT, "no running job %s (nothing listens on %s)", job_id, path);
    else if (errno == EAGAIN)
        error_set(err, CHOIR_EXIT_INPUT, "job %s: its console is busy, try again", job_id);
    else
        error_set(err, CHOIR_EXIT_INPUT, "job %s: cannot connect to %s: %s", job_id, path,
                  strerror(errno));
    return -1;
}

static int line_check(const char *line, struct choir_error *err)
{
    size_t len = strlen(line);

    if (len == 0 || strchr(line, '\n') || len + 1 > CTL_LINE_MAX) {
        error_set(err, CHOIR_EXIT_INPUT, "control command must be one line of 1-%d bytes",
                  CTL_LINE_MAX - 1);
        return -1;
    }
    return 0;
}

int ctl_send(const char *job_id, const char *line, char *reply, size_t reply_size,
             struct choir_error *err)
{
    char buf[CTL_LINE_MAX + 1], answer[CTL_LINE_MAX + 1];
    long long deadline = clock_mono_ms() + ctl_timeout_ms;
    char *path;
    int fd, rc = -1;

    if (line_check(line, err) != 0 || !(path = ctl_path(job_id, err)))
        return -1;
    fd = send_connect(job_id, path, err);
    if (fd >= 0) {
        snprintf(buf, sizeof(buf), "%s\n", line);
        /* a server that refuses answers before it reads: a failed send
         * (but a timeout) still leaves its answer to read */
        if ((send_all(fd, buf, strlen(buf), deadline) != 0 && errno == ETIMEDOUT) ||
            recv_line(fd, answer, sizeof(answer), deadline) != 0) {
            if (errno == ETIMEDOUT)
                error_set(err, CHOIR_EXIT_INPUT, "job %s did not answer within %d ms", job_id,
                          ctl_timeout_ms);
            else
                error_set(err, CHOIR_EXIT_INPUT, "job %s: no answer on %s: %s", job_id, path,
                          strerror(errno));
        } else {
            text_printable(reply, reply_size, answer, strlen(answer));
            rc = 0;
        }
        close(fd);
    }
    free(path);
    return rc;
}
