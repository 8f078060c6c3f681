/* validate.c - see validate.h. */
#include "agent/validate.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/names.h"

#define VALIDATE_HOST_MAX 253  /* longest DNS name */
#define VALIDATE_LABEL_MAX 63  /* longest DNS label */
#define VALIDATE_PIECE_MAX 255 /* longest tag piece we copy */

static int fail(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Writes the reason and returns -1. */
static int fail(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;

    if (why && n) {
        va_start(ap, fmt);
        vsnprintf(why, n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(char c)
{
    return is_alpha(c) || is_digit(c);
}

/* ---- shellsafe ---------------------------------------------------------- */

int validate_shellsafe(const char *s, char *why, size_t n)
{
    static const char *const bad[] = {"`", "$", ";", "|", "&&", ">", "<"};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (strstr(s, bad[i]))
            return fail(why, n, "should not contain the shell metacharacter '%s'", bad[i]);
    return 0;
}

/* ---- puppet_variable and tags ------------------------------------------- */

/* The puppet_variable rule over s[0..len). */
static int variable_ok(const char *s, size_t len)
{
    size_t i;

    if (len == 0)
        return 0;
    if (len == 1)
        return is_alpha(s[0]);
    for (i = 0; i < len; i++)
        if (!is_alnum(s[i]) && s[i] != '_')
            return 0;
    return 1;
}

int validate_puppet_variable(const char *s, char *why, size_t n)
{
    if (variable_ok(s, strlen(s)))
        return 0;
    if (!*s)
        return fail(why, n, "should not be empty");
    if (!s[1])
        return fail(why, n, "a one-character name must be a letter");
    return fail(why, n, "should contain only letters, digits and '_'");
}

/* Checks the "::"-separated pieces of one comma-separated tag. */
static int tag_ok(const char *tag, size_t len, char *why, size_t n)
{
    const char *end = tag + len, *p = tag;

    for (;;) {
        const char *sep = p;

        while (sep < end && !(sep + 1 < end && sep[0] == ':' && sep[1] == ':'))
            sep++;
        if (!variable_ok(p, (size_t)(sep - p))) {
            int shown = (int)(len > VALIDATE_PIECE_MAX ? VALIDATE_PIECE_MAX : len);

            return fail(why, n, "tag '%.*s' is not made of Puppet names ([a-zA-Z0-9_]+ "
                        "joined by '::')", shown, tag);
        }
        if (sep >= end)
            return 0;
        p = sep + 2;
    }
}

int validate_tags(const char *s, char *why, size_t n)
{
    const char *p = s;

    if (validate_shellsafe(s, why, n) < 0)
        return -1;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        if (tag_ok(p, len, why, n) < 0)
            return -1;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* ---- server ------------------------------------------------------------- */

/* One DNS label s[0..len): [A-Za-z0-9-], no '-' at either end. */
static int label_ok(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > VALIDATE_LABEL_MAX || s[0] == '-' || s[len - 1] == '-')
        return 0;
    for (i = 0; i < len; i++)
        if (!is_alnum(s[i]) && s[i] != '-')
            return 0;
    return 1;
}

/* A DNS name whose last label starts with a letter (so no bare numbers). */
static int dns_name_ok(const char *s, size_t len)
{
    const char *end = s + len, *p = s, *last = s;

    if (len == 0 || len > VALIDATE_HOST_MAX)
        return 0;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        const char *stop = dot ? dot : end;

        if (!label_ok(p, (size_t)(stop - p)))
            return 0;
        last = p;
        if (!dot)
            break;
        p = dot + 1;
    }
    return is_alpha(*last);
}

/* The address text s[0..len) parsed for family af. */
static int address_ok(int af, const char *s, size_t len)
{
    char buf[64];
    unsigned char out[16];

    if (len == 0 || len >= sizeof(buf))
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(af, buf, out) == 1;
}

/* Decimal 1..65535, no sign, no spaces. */
static int port_ok(const char *s)
{
    long v = 0;
    size_t i;

    for (i = 0; s[i]; i++) {
        if (!is_digit(s[i]) || i >= 5)
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return i > 0 && v >= 1 && v <= 65535;
}

static int check_port(const char *port, char *why, size_t n)
{
    if (port_ok(port))
        return 0;
    return fail(why, n, "port '%.16s' is not a number from 1 to 65535", port);
}

/* "[IPv6]" or "[IPv6]:port". */
static int server_bracketed(const char *s, char *why, size_t n)
{
    const char *close = strchr(s, ']');

    if (!close || !address_ok(AF_INET6, s + 1, (size_t)(close - s - 1)))
        return fail(why, n, "'[...]' should hold an IPv6 address");
    if (!close[1])
        return 0;
    if (close[1] != ':')
        return fail(why, n, "only ':port' may follow ']'");
    return check_port(close + 2, why, n);
}

int validate_server(const char *s, char *why, size_t n)
{
    const char *colon = strchr(s, ':');
    size_t hostlen;

    if (!*s)
        return fail(why, n, "should not be empty");
    if (s[0] == '[')
        return server_bracketed(s, why, n);
    if (colon && strchr(colon + 1, ':')) {
        if (address_ok(AF_INET6, s, strlen(s)))
            return 0;
        return fail(why, n, "is neither host[:port] nor an IPv6 address");
    }
    hostlen = colon ? (size_t)(colon - s) : strlen(s);
    if (!address_ok(AF_INET, s, hostlen) && !dns_name_ok(s, hostlen))
        return fail(why, n, "'%.*s' is not a valid host name or IPv4 address",
                    (int)(hostlen > 64 ? 64 : hostlen), s);
    return colon ? check_port(colon + 1, why, n) : 0;
}

/* ---- boolean and length ------------------------------------------------- */

int validate_boolean(const json_t *v, char *why, size_t n)
{
    if (v && json_is_boolean(v))
        return 0;
    return fail(why, n, "should be true or false");
}

/* The length of the UTF-8 sequence starting with byte c, 0 when c cannot
 * start one. */
static size_t utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}

/* Code points in s, or (size_t)-1 for invalid UTF-8 (overlong forms and
 * surrogates included). */
static size_t utf8_count(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t count = 0;

    while (*p) {
        size_t len = utf8_seq_len(*p), i;

        if (len == 0)
            return (size_t)-1;
        for (i = 1; i < len; i++)
            if ((p[i] & 0xc0) != 0x80)
                return (size_t)-1;
        if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
            (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
            return (size_t)-1;
        p += len;
        count++;
    }
    return count;
}

int validate_length(const char *s, size_t max, char *why, size_t n)
{
    size_t count = utf8_count(s);

    if (count == (size_t)-1)
        return fail(why, n, "is not valid UTF-8");
    if (count > max)
        return fail(why, n, "is %zu characters long, more than the %zu allowed", count, max);
    return 0;
}

int validate_job_id(const char *s, char *why, size_t n)
{
    if (!names_job_id_ok(s))
        return fail(why, n, "should be a job id of [A-Za-z0-9_-]");
    return 0;
}

int validate_count(const json_t *v, char *why, size_t n)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return fail(why, n, "should be a non-negative integer");
    return 0;
}
