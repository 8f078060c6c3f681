/* replay_main.c - runs a fuzz target over files, for builds without
 * libFuzzer.
 *
 * Contract: `fuzz_X PATH...` calls LLVMFuzzerTestOneInput once per input:
 * a PATH that is a file is one input; a PATH that is a directory gives
 * each regular file directly inside it (no recursion, no dot files; in
 * name order, so runs are reproducible).  Each input is read into a
 * buffer of exactly its size, so sanitizers catch reads past the end.
 * Prints "replayed N inputs" and returns 0; returns 1 when an input cannot
 * be read or when no input was found, so an empty or missing corpus fails
 * loudly.  A target reports a bug by aborting: the input being replayed is
 * then named on stderr before the process dies of SIGABRT (sanitizer
 * reports carry their own stack). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *current_input;

/* Names the input that made the target abort, then dies of the signal. */
static void on_fatal_signal(int sig)
{
    static const char msg[] = "replay: died on input ";

    if (current_input) {
        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)!write(STDERR_FILENO, current_input, strlen(current_input));
        (void)!write(STDERR_FILENO, "\n", 1);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads the whole file; *data is NULL for an empty file. */
static int read_input(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    struct stat st;

    *data = NULL;
    *size = 0;
    if (!f || fstat(fileno(f), &st) < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    if (st.st_size > 0) {
        *size = (size_t)st.st_size;
        *data = malloc(*size);
        if (!*data || fread(*data, 1, *size, f) != *size) {
            fprintf(stderr, "replay: %s: short read\n", path);
            free(*data);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

static int replay_file(const char *path)
{
    uint8_t *data;
    size_t size;

    if (read_input(path, &data, &size) < 0)
        return -1;
    current_input = path;
    LLVMFuzzerTestOneInput(data, size);
    current_input = NULL;
    free(data);
    return 0;
}

static int is_regular(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Replays the regular files of dir; adds to *count. */
static int replay_dir(const char *dir, unsigned *count)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort), rc = 0;

    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && is_regular(path)) {
            if (replay_file(path) < 0)
                rc = -1;
            else
                (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned count = 0;
    int rc = 0;

    signal(SIGABRT, on_fatal_signal); /* SIGSEGV stays with the sanitizers */
    for (int i = 1; i < argc; i++) {
        struct stat st;

        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (replay_dir(argv[i], &count) < 0)
                rc = 1;
        } else if (replay_file(argv[i]) < 0) {
            rc = 1;
        } else {
            count++;
        }
    }
    printf("replayed %u inputs\n", count);
    if (count == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    return rc;
}
