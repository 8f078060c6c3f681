/* jscan.c - see jscan.h.  Plain ASCII runs are copied in bulk; escapes and
 * multi-byte characters take the slow path. */
#include "core/jscan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "core/xalloc.h"

void jscan_init(struct jscan *js, const char *buf, size_t len)
{
    memset(js, 0, sizeof(*js));
    js->start = js->p = buf;
    js->end = buf + len;
}

void jscan_done(struct jscan *js)
{
    free(js->str);
    js->str = NULL;
}

int jscan_fail(struct jscan *js, const char *reason)
{
    if (!js->err_at) {
        js->err_at = js->p;
        snprintf(js->err, sizeof(js->err), "%s", reason);
    }
    js->p = js->end; /* nothing more will be read */
    return -1;
}

void jscan_error_message(const struct jscan *js, char *buf, size_t size)
{
    const char *at = js->err_at ? js->err_at : js->p;
    unsigned line = 1, col = 1;

    for (const char *q = js->start; q < at; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(buf, size, "%u:%u: malformed JSON: %s", line, col, js->err_at ? js->err : "no error");
}

/* Byte classes: JSON white space, and string bytes that need no
 * attention (printable ASCII other than '"' and '\\'). */
enum { JSCAN_WS = 1, JSCAN_PLAIN = 2 };

static const unsigned char jscan_class[256] = {
    ['\t'] = JSCAN_WS, ['\n'] = JSCAN_WS, ['\r'] = JSCAN_WS, [' '] = JSCAN_WS | JSCAN_PLAIN,
#define P2(c) [c] = JSCAN_PLAIN, [c + 1] = JSCAN_PLAIN
#define P8(c) P2(c), P2(c + 2), P2(c + 4), P2(c + 6)
#define P32(c) P8(c), P8(c + 8), P8(c + 16), P8(c + 24)
    ['!'] = JSCAN_PLAIN, ['#'] = JSCAN_PLAIN, P2('$'), P2('&'), P8('('), P8('0'), P8('8'),
    P8(0x40), P8(0x48), P8(0x50), P2(0x58), P2(0x5a), /* 0x5c is '\\' */ [0x5d] = JSCAN_PLAIN,
    P2(0x5e), P32(0x60),
#undef P32
#undef P8
#undef P2
};

static void jscan_ws(struct jscan *js)
{
    const char *p = js->p, *end = js->end;

    while (p < end && (jscan_class[(unsigned char)*p] & JSCAN_WS))
        p++;
    js->p = p;
}

enum jscan_type jscan_peek(struct jscan *js)
{
    jscan_ws(js);
    if (js->err_at || js->p >= js->end)
        return JSCAN_END;
    switch (*js->p) {
    case '{': return JSCAN_OBJECT;
    case '[': return JSCAN_ARRAY;
    case '"': return JSCAN_STRING;
    case 't':
    case 'f': return JSCAN_BOOLEAN;
    case 'n': return JSCAN_NULL;
    case '-': return JSCAN_NUMBER;
    default: return *js->p >= '0' && *js->p <= '9' ? JSCAN_NUMBER : JSCAN_INVALID;
    }
}

const char *jscan_type_name(enum jscan_type t)
{
    static const char *const names[] = {"end of input", "object", "array", "string", "number",
                                        "boolean", "null", "invalid token"};

    return names[t];
}

/* Consumes `c` after white space, or fails with `reason`. */
static int jscan_expect(struct jscan *js, char c, const char *reason)
{
    jscan_ws(js);
    if (js->p >= js->end || *js->p != c)
        return jscan_fail(js, js->p >= js->end ? "unexpected end of input" : reason);
    js->p++;
    return 0;
}

static int jscan_enter(struct jscan *js, char open)
{
    if (jscan_expect(js, open, open == '{' ? "expected '{'" : "expected '['") < 0)
        return -1;
    if (++js->depth > JSCAN_MAX_DEPTH)
        return jscan_fail(js, "too deeply nested");
    js->first[js->depth] = 1;
    return 0;
}

int jscan_object_begin(struct jscan *js)
{
    return jscan_enter(js, '{');
}

int jscan_array_begin(struct jscan *js)
{
    return jscan_enter(js, '[');
}

/* Shared by objects and arrays: 1 when an element follows, 0 at the close. */
static int jscan_next(struct jscan *js, char close)
{
    jscan_ws(js);
    if (js->p >= js->end)
        return jscan_fail(js, "unexpected end of input");
    if (*js->p == close) {
        js->p++;
        js->depth--;
        return 0;
    }
    if (js->first[js->depth]) {
        js->first[js->depth] = 0;
        return 1;
    }
    if (*js->p != ',')
        return jscan_fail(js, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    js->p++;
    jscan_ws(js);
    if (js->p < js->end && *js->p == close)
        return jscan_fail(js, "trailing comma");
    return 1;
}

int jscan_object_next(struct jscan *js, const char **key, size_t *len)
{
    int r = jscan_next(js, '}');

    if (r <= 0)
        return r;
    if (jscan_peek(js) != JSCAN_STRING)
        return jscan_fail(js, "expected a string key");
    if (jscan_string(js, key, len) < 0 || jscan_expect(js, ':', "expected ':'") < 0)
        return -1;
    return 1;
}

int jscan_array_next(struct jscan *js)
{
    return jscan_next(js, ']');
}

static void jscan_put(struct jscan *js, size_t *n, const char *s, size_t len)
{
    if (*n + len + 1 > js->strcap) {
        js->strcap = (*n + len + 1) * 2 + 64;
        js->str = xrealloc(js->str, js->strcap);
    }
    memcpy(js->str + *n, s, len);
    *n += len;
}

static int jscan_hex4(struct jscan *js, unsigned *out)
{
    unsigned v = 0;

    if (js->end - js->p < 4)
        return jscan_fail(js, "truncated \\u escape");
    for (int i = 0; i < 4; i++) {
        char c = *js->p++;

        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            v |= (unsigned)((c | 0x20) - 'a' + 10);
        else
            return jscan_fail(js, "invalid \\u escape");
    }
    *out = v;
    return 0;
}

/* Decodes \uXXXX (with a surrogate pair) as UTF-8. */
static int jscan_unicode(struct jscan *js, size_t *n)
{
    unsigned cp, lo;
    char out[4];
    size_t len;

    if (jscan_hex4(js, &cp) < 0)
        return -1;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return jscan_fail(js, "lone low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (js->end - js->p < 2 || js->p[0] != '\\' || js->p[1] != 'u')
            return jscan_fail(js, "lone high surrogate in \\u escape");
        js->p += 2;
        if (jscan_hex4(js, &lo) < 0)
            return -1;
        if (lo < 0xDC00 || lo > 0xDFFF)
            return jscan_fail(js, "invalid surrogate pair in \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp == 0)
        return jscan_fail(js, "\\u0000 is not allowed");
    if (cp < 0x80) {
        out[0] = (char)cp, len = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), len = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12), out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)), len = 3;
    } else {
        out[0] = (char)(0xF0 | cp >> 18), out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[3] = (char)(0x80 | (cp & 0x3F)), len = 4;
    }
    jscan_put(js, n, out, len);
    return 0;
}

static int jscan_escape(struct jscan *js, size_t *n)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit;

    if (js->p >= js->end)
        return jscan_fail(js, "unexpected end of input in a string");
    if (*js->p == 'u') {
        js->p++;
        return jscan_unicode(js, n);
    }
    hit = memchr(from, *js->p, sizeof(from) - 1);
    if (!hit)
        return jscan_fail(js, "invalid escape in a string");
    jscan_put(js, n, to + (hit - from), 1);
    js->p++;
    return 0;
}

int jscan_string(struct jscan *js, const char **s, size_t *len)
{
    size_t n = 0;

    if (jscan_expect(js, '"', "expected a string") < 0)
        return -1;
    for (;;) {
        const char *run = js->p;

        while (js->p < js->end && (jscan_class[(unsigned char)*js->p] & JSCAN_PLAIN))
            js->p++;
        jscan_put(js, &n, run, (size_t)(js->p - run));
        if (js->p >= js->end)
            return jscan_fail(js, "unexpected end of input in a string");
        if (*js->p == '"')
            break;
        if (*js->p == '\\') {
            js->p++;
            if (jscan_escape(js, &n) < 0)
                return -1;
        } else if ((unsigned char)*js->p < 0x20) {
            return jscan_fail(js, "control character in a string");
        } else {
            size_t u = utf8_char_len((const unsigned char *)js->p, (const unsigned char *)js->end);

            if (u == 0)
                return jscan_fail(js, "invalid UTF-8 in a string");
            jscan_put(js, &n, js->p, u);
            js->p += u;
        }
    }
    js->p++;
    jscan_put(js, &n, "", 0);
    js->str[n] = '\0';
    *s = js->str;
    *len = n;
    return 0;
}

static int jscan_digits(struct jscan *js)
{
    const char *at = js->p;

    while (js->p < js->end && *js->p >= '0' && *js->p <= '9')
        js->p++;
    return js->p > at ? 0 : jscan_fail(js, "invalid number");
}

static int jscan_number(struct jscan *js)
{
    if (*js->p == '-')
        js->p++;
    if (js->p < js->end && *js->p == '0')
        js->p++;
    else if (jscan_digits(js) < 0)
        return -1;
    if (js->p < js->end && *js->p == '.') {
        js->p++;
        if (jscan_digits(js) < 0)
            return -1;
    }
    if (js->p < js->end && (*js->p == 'e' || *js->p == 'E')) {
        js->p++;
        if (js->p < js->end && (*js->p == '+' || *js->p == '-'))
            js->p++;
        if (jscan_digits(js) < 0)
            return -1;
    }
    return 0;
}

static int jscan_word(struct jscan *js, const char *word)
{
    size_t len = strlen(word);

    if ((size_t)(js->end - js->p) < len || memcmp(js->p, word, len) != 0)
        return jscan_fail(js, "invalid token");
    js->p += len;
    return 0;
}

static int jscan_skip_container(struct jscan *js, int object)
{
    const char *key;
    size_t len;
    int r;

    if ((object ? jscan_object_begin(js) : jscan_array_begin(js)) < 0)
        return -1;
    while ((r = object ? jscan_object_next(js, &key, &len) : jscan_array_next(js)) == 1)
        if (jscan_skip(js) < 0)
            return -1;
    return r;
}

int jscan_skip(struct jscan *js)
{
    const char *s;
    size_t len;

    switch (jscan_peek(js)) {
    case JSCAN_OBJECT: return jscan_skip_container(js, 1);
    case JSCAN_ARRAY: return jscan_skip_container(js, 0);
    case JSCAN_STRING: return jscan_string(js, &s, &len);
    case JSCAN_NUMBER: return jscan_number(js);
    case JSCAN_BOOLEAN: return jscan_word(js, *js->p == 't' ? "true" : "false");
    case JSCAN_NULL: return jscan_word(js, "null");
    case JSCAN_END: return jscan_fail(js, "unexpected end of input");
    default: return jscan_fail(js, "invalid token");
    }
}

int jscan_finish(struct jscan *js)
{
    jscan_ws(js);
    if (js->err_at)
        return -1;
    return js->p < js->end ? jscan_fail(js, "unexpected text after the JSON value") : 0;
}
