/* runevents.c - see runevents.h. */
#include "agent/runevents.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define CUT_LEN (sizeof(RUNEVENTS_CUT) - 1)
#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

enum scan_state { SCAN_TEXT, SCAN_ESC, SCAN_CSI };

struct runevents {
    struct runevents_limits lim;

    /* the line being read, already cleaned */
    char *line;
    size_t line_len;
    bool line_cut, line_open, cr;
    enum scan_state scan;
    unsigned char u8[4];
    size_t u8_len, u8_want;

    /* the token bucket, in thousandths of a line */
    unsigned long long tokens;
    long long refilled_ms;
    bool clock_set;

    /* the pending batch */
    json_t *batch;
    size_t batch_bytes;
    bool batch_refused;
    unsigned long long first_line, pending_skipped;
    long long taken_ms;
    bool taken_any;

    unsigned long long lines, skipped;
};

static const struct {
    const char *prefix, *level;
} levels[] = {
    {"Debug: ", "debug"},     {"Info: ", "info"},         {"Notice: ", "notice"},
    {"Warning: ", "warning"}, {"Error: ", "err"},         {"Critical: ", "crit"},
    {"Alert: ", "alert"},     {"Emergency: ", "emerg"},
};

const char *runevents_level(const char *line, size_t len, size_t *prefix_len)
{
    size_t i, n;

    for (i = 0; i < COUNT(levels); i++) {
        n = strlen(levels[i].prefix);
        if (len >= n && !memcmp(line, levels[i].prefix, n)) {
            if (prefix_len)
                *prefix_len = n;
            return levels[i].level;
        }
    }
    if (prefix_len)
        *prefix_len = 0;
    return "output";
}

/* ---- limits ------------------------------------------------------------------ */

void runevents_limits_default(struct runevents_limits *l)
{
    l->batch_ms = 200;
    l->batch_lines = 256;
    l->batch_bytes = 32 * 1024;
    l->rate_lines = 2000;
    l->line_max = 2048;
}

static size_t clamp(size_t v, size_t lo, size_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void limits_clamp(struct runevents_limits *l)
{
    l->batch_ms = l->batch_ms < 0 ? 0 : l->batch_ms > 60000 ? 60000 : l->batch_ms;
    l->batch_lines = clamp(l->batch_lines, 1, 65536);
    l->rate_lines = clamp(l->rate_lines, 1, 1000000);
    l->line_max = clamp(l->line_max, 4, 1 << 20);
    l->batch_bytes = clamp(l->batch_bytes, l->line_max + CUT_LEN, 64 << 20);
}

struct runevents *runevents_new(const struct runevents_limits *lim)
{
    struct runevents *r = xcalloc(1, sizeof(*r));

    if (lim)
        r->lim = *lim;
    else
        runevents_limits_default(&r->lim);
    limits_clamp(&r->lim);
    r->line = xmalloc(r->lim.line_max + CUT_LEN);
    r->tokens = r->lim.rate_lines * 1000ULL;
    return r;
}

void runevents_free(struct runevents *r)
{
    if (!r)
        return;
    json_decref(r->batch);
    free(r->line);
    free(r);
}

/* ---- the token bucket and the batch ------------------------------------------ */

static bool bucket_take(struct runevents *r, long long now_ms)
{
    unsigned long long cap = r->lim.rate_lines * 1000ULL, dt;

    if (!r->clock_set) {
        r->clock_set = true;
        r->refilled_ms = now_ms;
    } else if (now_ms > r->refilled_ms) {
        dt = (unsigned long long)now_ms - (unsigned long long)r->refilled_ms;
        r->tokens = dt >= 1000 ? cap : r->tokens + dt * r->lim.rate_lines;
        if (r->tokens > cap)
            r->tokens = cap;
        r->refilled_ms = now_ms;
    }
    if (r->tokens < 1000)
        return false;
    r->tokens -= 1000;
    return true;
}

static bool batch_full(const struct runevents *r)
{
    return r->batch_refused || r->batch_bytes >= r->lim.batch_bytes ||
           json_array_size(r->batch) >= r->lim.batch_lines;
}

static bool batch_add(struct runevents *r, const char *level, const char *text, size_t len)
{
    json_t *o;

    if (json_array_size(r->batch) >= r->lim.batch_lines || r->batch_bytes + len > r->lim.batch_bytes) {
        r->batch_refused = true;
        return false;
    }
    if (!r->batch && !(r->batch = json_array()))
        return false;
    o = json_object();
    if (!o || json_object_set_new(o, "level", json_string(level)) ||
        json_object_set_new(o, "text", json_stringn(text, len)) || json_array_append_new(r->batch, o)) {
        json_decref(o);
        return false;
    }
    if (json_array_size(r->batch) == 1)
        r->first_line = r->lines;
    r->batch_bytes += len;
    return true;
}

/* ---- cleaning a line as its bytes arrive --------------------------------------- */

static void put(struct runevents *r, const char *s, size_t n)
{
    if (r->line_cut)
        return;
    if (r->line_len + n > r->lim.line_max) {
        r->line_cut = true;
        return;
    }
    memcpy(r->line + r->line_len, s, n);
    r->line_len += n;
}

/* An unfinished UTF-8 sequence becomes one U+FFFD. */
static void utf8_flush(struct runevents *r)
{
    if (r->u8_len)
        put(r, REPLACEMENT, 3);
    r->u8_len = 0;
}

/* Whether b may follow the u8_len bytes collected so far. */
static bool utf8_continues(const struct runevents *r, unsigned char b)
{
    unsigned char lo = 0x80, hi = 0xBF;

    if (r->u8_len == 1) {
        switch (r->u8[0]) {
        case 0xE0: lo = 0xA0; break;
        case 0xED: hi = 0x9F; break; /* no surrogates */
        case 0xF0: lo = 0x90; break;
        case 0xF4: hi = 0x8F; break; /* nothing above U+10FFFF */
        default: break;
        }
    }
    return b >= lo && b <= hi;
}

static void utf8_byte(struct runevents *r, unsigned char b)
{
    if (r->u8_len && utf8_continues(r, b)) {
        r->u8[r->u8_len++] = b;
        if (r->u8_len < r->u8_want)
            return;
        if (r->u8[0] == 0xC2 && r->u8[1] < 0xA0) /* C1 controls */
            put(r, "?", 1);
        else
            put(r, (const char *)r->u8, r->u8_len);
        r->u8_len = 0;
        return;
    }
    utf8_flush(r);
    r->u8_want = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
    if (r->u8_want)
        r->u8[r->u8_len++] = b;
    else
        put(r, REPLACEMENT, 3);
}

static void end_line(struct runevents *r, long long now_ms)
{
    const char *level;
    size_t plen;

    if (r->scan == SCAN_ESC)
        put(r, "?", 1);
    r->scan = SCAN_TEXT;
    r->cr = false;
    utf8_flush(r);
    if (r->line_cut) {
        memcpy(r->line + r->line_len, RUNEVENTS_CUT, CUT_LEN);
        r->line_len += CUT_LEN;
    }
    r->lines++;
    level = runevents_level(r->line, r->line_len, &plen);
    if (!bucket_take(r, now_ms) || !batch_add(r, level, r->line + plen, r->line_len - plen)) {
        r->skipped++;
        r->pending_skipped++;
    }
    r->line_len = 0;
    r->line_cut = r->line_open = false;
}

/* Returns true when b was part of an escape sequence and is used up. */
static bool escape_byte(struct runevents *r, unsigned char b)
{
    if (r->scan == SCAN_CSI) {
        if (b >= 0x20 && b <= 0x3F) /* parameter and intermediate bytes */
            return true;
        r->scan = SCAN_TEXT;
        return b >= 0x40 && b <= 0x7E; /* else a broken sequence: b is text */
    }
    if (r->scan == SCAN_ESC) {
        r->scan = SCAN_TEXT;
        if (b == '[') {
            r->scan = SCAN_CSI;
            return true;
        }
        put(r, "?", 1); /* a lone ESC */
    }
    return false;
}

static void scan_byte(struct runevents *r, unsigned char b, long long now_ms)
{
    char c = (char)b;

    if (escape_byte(r, b))
        return;
    if (b == '\n') {
        end_line(r, now_ms);
        return;
    }
    r->line_open = true;
    if (r->cr) {
        r->cr = false;
        put(r, "?", 1);
    }
    if (b >= 0x80) {
        utf8_byte(r, b);
        return;
    }
    utf8_flush(r);
    if (b == '\r')
        r->cr = true;
    else if (b == 0x1B)
        r->scan = SCAN_ESC;
    else
        put(r, (b < 0x20 && b != '\t') || b == 0x7F ? "?" : &c, 1);
}

void runevents_feed(struct runevents *r, const char *buf, size_t len, long long now_ms)
{
    size_t i;

    for (i = 0; i < len; i++)
        scan_byte(r, (unsigned char)buf[i], now_ms);
}

size_t runevents_feed_some(struct runevents *r, const char *buf, size_t len, long long now_ms)
{
    size_t i;

    for (i = 0; i < len && !batch_full(r); i++)
        scan_byte(r, (unsigned char)buf[i], now_ms);
    return i;
}

void runevents_eof(struct runevents *r, long long now_ms)
{
    if (r->line_open)
        end_line(r, now_ms);
}

/* ---- taking events ------------------------------------------------------------- */

static bool pending(const struct runevents *r)
{
    return json_array_size(r->batch) > 0 || r->pending_skipped > 0;
}

static long long since_taken(const struct runevents *r, long long now_ms)
{
    unsigned long long dt;

    if (now_ms <= r->taken_ms)
        return 0;
    dt = (unsigned long long)now_ms - (unsigned long long)r->taken_ms;
    return dt > 3600000ULL ? 3600000LL : (long long)dt;
}

long runevents_due_in(const struct runevents *r, long long now_ms)
{
    long long dt;

    if (!pending(r))
        return -1;
    if (!r->taken_any || batch_full(r))
        return 0;
    dt = since_taken(r, now_ms);
    return dt >= r->lim.batch_ms ? 0 : (long)(r->lim.batch_ms - dt);
}

json_t *runevents_take(struct runevents *r, long long now_ms, int force)
{
    json_t *ev, *lines;

    if (!pending(r) || (!force && runevents_due_in(r, now_ms) != 0))
        return NULL;
    lines = r->batch ? r->batch : json_array();
    ev = json_object();
    if (json_object_set_new(ev, "lines", lines) ||
        json_object_set_new(ev, "first_line",
                            json_integer(r->batch ? (json_int_t)r->first_line : 0)) ||
        json_object_set_new(ev, "skipped", json_integer((json_int_t)r->pending_skipped))) {
        json_decref(ev);
        ev = NULL;
    }
    r->batch = NULL;
    r->batch_bytes = 0;
    r->batch_refused = false;
    r->first_line = r->pending_skipped = 0;
    r->taken_ms = now_ms;
    r->taken_any = true;
    return ev;
}

unsigned long long runevents_lines(const struct runevents *r)
{
    return r->lines;
}

unsigned long long runevents_skipped(const struct runevents *r)
{
    return r->skipped;
}
