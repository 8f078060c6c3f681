/* file.c - see file.h. */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
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
