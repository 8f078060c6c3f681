/* kvfile.c - see kvfile.h. */
#include "core/kvfile.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/utf8.h"

struct kvfile_lexer {
    const char *origin;
    unsigned line;
    kvfile_fn *fn;
    void *ctx;
    struct choir_error *err;
};

void kvfile_fail(struct choir_error *err, const char *origin, unsigned line, const char *fmt, ...)
{
    char why[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (line)
        error_set(err, CHOIR_EXIT_INPUT, "%s:%u: %s", origin, line, why);
    else
        error_set(err, CHOIR_EXIT_INPUT, "%s: %s", origin, why);
}

static char *kvfile_skip_blank(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    return s;
}

static void kvfile_trim_right(char *s)
{
    size_t len = strlen(s);

    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        s[--len] = '\0';
}

static int kvfile_lex_fail(struct kvfile_lexer *lx, const char *reason)
{
    kvfile_fail(lx->err, lx->origin, lx->line, "%s", reason);
    return -1;
}

/* Decodes the quoted value starting at s (s[0] == '"') in place. */
static int kvfile_unquote(struct kvfile_lexer *lx, char *s)
{
    char *in = s + 1, *out = s;

    for (; *in && *in != '"'; in++) {
        if (*in == '\\') {
            in++;
            if (*in != '"' && *in != '\\')
                return kvfile_lex_fail(lx, *in ? "invalid escape in quoted value (only \\\" and \\\\)"
                                               : "missing closing quote");
        }
        *out++ = *in;
    }
    if (*in != '"')
        return kvfile_lex_fail(lx, "missing closing quote");
    if (*kvfile_skip_blank(in + 1))
        return kvfile_lex_fail(lx, "text after the closing quote (comments must be on their own line)");
    *out = '\0';
    return 0;
}

static int kvfile_line(struct kvfile_lexer *lx, char *s)
{
    char *eq, *value;

    s = kvfile_skip_blank(s);
    if (!*s || *s == '#')
        return 0;
    eq = strchr(s, '=');
    if (!eq || eq == s)
        return kvfile_lex_fail(lx, "expected \"key = value\"");
    *eq = '\0';
    kvfile_trim_right(s);
    value = kvfile_skip_blank(eq + 1);
    if (*value == '"') {
        if (kvfile_unquote(lx, value) < 0)
            return -1;
    } else {
        kvfile_trim_right(value);
    }
    return lx->fn(lx->ctx, s, value, lx->line, lx->err);
}

static int kvfile_feed(struct kvfile_lexer *lx, const char *p, size_t len)
{
    char line[KVFILE_MAX_LINE + 1];

    if (len > KVFILE_MAX_LINE) {
        kvfile_fail(lx->err, lx->origin, lx->line, "line is longer than %d bytes", KVFILE_MAX_LINE);
        return -1;
    }
    if (memchr(p, '\0', len))
        return kvfile_lex_fail(lx, "contains a NUL byte");
    if (!utf8_valid(p, len))
        return kvfile_lex_fail(lx, "invalid UTF-8");
    memcpy(line, p, len);
    line[len] = '\0';
    return kvfile_line(lx, line);
}

int kvfile_parse(const char *buf, size_t len, const char *origin, kvfile_fn *fn, void *ctx,
                 struct choir_error *err)
{
    struct kvfile_lexer lx = {origin, 0, fn, ctx, err};
    size_t pos = 0;

    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;

        lx.line++;
        if (kvfile_feed(&lx, buf + pos, n) < 0)
            return -1;
        pos += n + 1;
    }
    return 0;
}
