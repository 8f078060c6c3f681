/* file.c - see file.h. */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/xalloc.h"

/* The first buffer: the file's size when known and allowed, else 64 KiB. */
static size_t file_first_size(int fd, size_t max_bytes)
{
    struct stat st;

    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size <= max_bytes)
        return (size_t)st.st_size + 1;
    return 65536;
}

int file_read(const char *path, size_t max_bytes, char **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), e = 0;
    struct stat st;
    size_t used = 0, cap;
    char *data;

    if (fd < 0)
        return errno;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return EISDIR;
    }
    cap = file_first_size(fd, max_bytes);
    data = xmalloc(cap);
    for (;;) {
        ssize_t n;

        if (used + 1 >= cap)
            data = xrealloc(data, cap *= 2);
        n = read(fd, data + used, cap - used - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            e = n < 0 ? errno : 0;
            break;
        }
        used += (size_t)n;
        if (used > max_bytes) {
            e = EFBIG;
            break;
        }
    }
    close(fd);
    if (e) {
        free(data);
        return e;
    }
    data[used] = '\0';
    *buf = data;
    *len = used;
    return 0;
}

int file_readable(const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), e;

    if (fd < 0)
        return errno;
    e = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) ? EISDIR : 0;
    close(fd);
    return e;
}

static int file_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? xstrndup(path, slash == path ? 1 : (size_t)(slash - path)) : xstrdup(".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), e = 0;

    if (fd < 0 || fsync(fd) < 0)
        e = errno;
    if (fd >= 0)
        close(fd);
    free(dir);
    return e;
}

int file_write_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
    size_t plen = strlen(path);
    char *tmp = xmalloc(plen + 16);
    const char *p = data;
    int fd, e = 0;

    snprintf(tmp, plen + 16, "%s.tmp%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
    if (fd < 0) {
        e = errno;
        free(tmp);
        return e;
    }
    while (len > 0 && e == 0) {
        ssize_t w = write(fd, p, len);

        if (w < 0 && errno != EINTR)
            e = errno;
        else if (w > 0) {
            p += w;
            len -= (size_t)w;
        }
    }
    if (e == 0 && fsync(fd) < 0)
        e = errno;
    if (close(fd) < 0 && e == 0)
        e = errno;
    if (e == 0 && rename(tmp, path) < 0)
        e = errno;
    if (e)
        unlink(tmp);
    else
        e = file_sync_dir(path);
    free(tmp);
    return e;
}
