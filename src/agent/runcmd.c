/* runcmd.c - see runcmd.h. */
#include "agent/runcmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/names.h"
#include "core/xalloc.h"

#define RUNCMD_BLANKS " \t"

struct argv_buf {
    char **v;
    size_t n;
};

static void argv_push(struct argv_buf *a, char *word)
{
    a->v = xreallocarray(a->v, a->n + 2, sizeof(*a->v));
    a->v[a->n++] = word;
    a->v[a->n] = NULL;
}

/* word with every {job_id} replaced. */
static char *expand(const char *word, size_t len, const char *job_id)
{
    size_t var = strlen(RUNCMD_JOB_ID_VAR), idl = strlen(job_id), out = 0;
    char *s = xmalloc(len / var * idl + len + 1);

    for (size_t i = 0; i < len;) {
        if (len - i >= var && memcmp(word + i, RUNCMD_JOB_ID_VAR, var) == 0) {
            memcpy(s + out, job_id, idl);
            out += idl;
            i += var;
        } else {
            s[out++] = word[i++];
        }
    }
    s[out] = '\0';
    return s;
}

static size_t count_words(const char *tmpl)
{
    size_t words = 0;

    for (const char *p = tmpl + strspn(tmpl, RUNCMD_BLANKS); *p; p += strspn(p, RUNCMD_BLANKS)) {
        p += strcspn(p, RUNCMD_BLANKS);
        words++;
    }
    return words;
}

int runcmd_check_template(const char *tmpl, char *why, size_t n)
{
    size_t words = tmpl ? count_words(tmpl) : 0;

    if (words == 0) {
        snprintf(why, n, "the run command is empty");
        return -1;
    }
    if (words > RUNCMD_ARGS_MAX) {
        snprintf(why, n, "the run command has %zu words, more than %d", words, RUNCMD_ARGS_MAX);
        return -1;
    }
    return 0;
}

int runcmd_carries_job_id(const char *tmpl)
{
    return tmpl && strstr(tmpl, RUNCMD_JOB_ID_VAR) != NULL;
}

static void push_flag(struct argv_buf *a, const json_t *in, const char *key, const char *on,
                      const char *off)
{
    const json_t *v = json_object_get(in, key);

    if (json_is_true(v) && on)
        argv_push(a, xstrdup(on));
    else if (json_is_false(v) && off)
        argv_push(a, xstrdup(off));
}

static void push_option(struct argv_buf *a, const json_t *in, const char *key)
{
    const char *v = json_string_value(json_object_get(in, key));
    char flag[64];

    if (!v)
        return;
    snprintf(flag, sizeof(flag), "--%s", key);
    argv_push(a, xstrdup(flag));
    argv_push(a, xstrdup(v));
}

int runcmd_build(const char *tmpl, const json_t *in, const char *job_id, char ***argv, char *why,
                 size_t n)
{
    static const char *const options[] = {"tags", "skip_tags", "environment", "server"};
    struct argv_buf a = {NULL, 0};

    *argv = NULL;
    if (runcmd_check_template(tmpl, why, n) < 0)
        return -1;
    if (!names_job_id_ok(job_id)) {
        snprintf(why, n, "the job id should be 1 to %d of [A-Za-z0-9_-]", RUNCMD_JOB_ID_MAX);
        return -1;
    }
    for (const char *p = tmpl + strspn(tmpl, RUNCMD_BLANKS); *p; p += strspn(p, RUNCMD_BLANKS)) {
        size_t len = strcspn(p, RUNCMD_BLANKS);

        argv_push(&a, expand(p, len, job_id));
        p += len;
    }
    push_flag(&a, in, "noop", "--noop", "--no-noop");
    push_flag(&a, in, "use_cached_catalog", "--use_cached_catalog", NULL);
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
        push_option(&a, in, options[i]);
    *argv = a.v;
    return 0;
}

void runcmd_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

void runcmd_format(char *const *argv, char *buf, size_t size)
{
    size_t used = 0;

    if (size == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; argv && argv[i] && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? " " : "", argv[i]);

        if (w < 0)
            break;
        used += (size_t)w;
    }
    if (used >= size && size > 4)
        memcpy(buf + size - 4, "...", 4);
}
