/* bench_stamp.c - the command a benchmark's Puppet run executes instead of
 * Puppet (bench/runs sets run.command to it).
 *
 * Contract: bench_stamp STAMPFILE [N | @FILE]
 *   1. First, before anything else: reads CLOCK_REALTIME and writes it as
 *      decimal nanoseconds since the epoch and '\n' to STAMPFILE (created
 *      or truncated): the moment the run's command began.
 *   2. With N (a decimal count), or @FILE (a file holding the count; a
 *      missing FILE means 0, so one run.command template serves every
 *      size: the benchmark writes FILE named after the job id before it
 *      asks for the run), it then writes N lines "Notice: bench line I\n"
 *      (I = 1..N) to stdout as fast as it can (64 KiB writes), and appends
 *      a second line to STAMPFILE: CLOCK_REALTIME after the last line.
 * Exit: 0 ok, 1 when STAMPFILE or stdout cannot be written, 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OUT_BUF (64 * 1024)
#define LINE_MAX_LEN 48

static long long realtime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Writes "NS\n" to path, truncating it or appending to it. */
static int stamp(const char *path, long long ns, int append)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%lld\n", ns);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0600);
    int rc;

    if (fd < 0)
        return -1;
    rc = write_all(fd, text, (size_t)n);
    return close(fd) < 0 ? -1 : rc;
}

static int parse_count(const char *s, unsigned long *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (!*s || *s == '-' || (*end && *end != '\n') || errno)
        return -1;
    *out = v;
    return 0;
}

/* The count: N itself, or what @FILE holds (0 when FILE is missing). */
static int read_count(const char *arg, unsigned long *out)
{
    char text[32] = "";
    FILE *f;

    if (arg[0] != '@')
        return parse_count(arg, out);
    f = fopen(arg + 1, "re");
    if (!f) {
        *out = 0;
        return errno == ENOENT ? 0 : -1;
    }
    if (!fgets(text, sizeof(text), f))
        text[0] = '\0';
    fclose(f);
    return parse_count(text, out);
}

static int print_lines(unsigned long n)
{
    static char buf[OUT_BUF + LINE_MAX_LEN];
    size_t len = 0;

    for (unsigned long i = 1; i <= n; i++) {
        len += (size_t)snprintf(buf + len, LINE_MAX_LEN, "Notice: bench line %lu\n", i);
        if (len >= OUT_BUF) {
            if (write_all(STDOUT_FILENO, buf, len) < 0)
                return -1;
            len = 0;
        }
    }
    return write_all(STDOUT_FILENO, buf, len);
}

int main(int argc, char **argv)
{
    long long t0 = realtime_ns();
    unsigned long n = 0;

    if (argc < 2 || argc > 3) {
        fputs("usage: bench_stamp STAMPFILE [N | @FILE]\n", stderr);
        return 2;
    }
    if (stamp(argv[1], t0, 0) < 0) {
        fprintf(stderr, "bench_stamp: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    if (argc < 3)
        return 0;
    if (read_count(argv[2], &n) < 0) {
        fprintf(stderr, "bench_stamp: %s is not a count of lines\n", argv[2]);
        return 2;
    }
    if (print_lines(n) < 0) {
        fprintf(stderr, "bench_stamp: stdout: %s\n", strerror(errno));
        return 1;
    }
    return stamp(argv[1], realtime_ns(), 1) < 0 ? 1 : 0;
}
