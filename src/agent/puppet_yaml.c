/* puppet_yaml.c - see puppet_yaml.h. */
#include "agent/puppet_yaml.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "core/xalloc.h"

#define SUMMARY_NODES 8192   /* nodes kept of a summary (theforeman's has ~70) */
#define SMALL_NODES 64       /* nodes kept of one log, event or resource field */
#define METRICS_NODES 4096   /* nodes kept of the metrics section */
#define TYPES_MAX 1000       /* resource types counted */
#define KEY_MAX 1024         /* bytes kept of a mapping key, at least */

/* ---- the event walker ------------------------------------------------------ */

struct walk {
    yaml_parser_t parser;
    const struct puppet_yaml_limits *lim;
    const char *name;
    struct choir_error *err;
    FILE *fp;                  /* input: a file ... */
    const unsigned char *mem;  /* ... or memory */
    size_t mem_len, mem_pos;
    size_t total;              /* bytes handed to libyaml */
    size_t since_event;        /* of which since the last event */
    bool too_big, too_long;    /* why the read handler stopped */
    size_t depth;
    bool truncated;            /* a capture ran out of budget */
};

static int walk_read(void *data, unsigned char *buf, size_t size, size_t *got)
{
    struct walk *w = data;
    size_t room = w->lim->file_max - w->total + 1, n;

    *got = 0;
    if (w->since_event > w->lim->token_max) {
        w->too_long = true;
        return 0;
    }
    if (size > room)
        size = room;
    if (w->fp) {
        n = fread(buf, 1, size, w->fp);
        if (n == 0 && ferror(w->fp))
            return 0;
    } else {
        n = w->mem_len - w->mem_pos < size ? w->mem_len - w->mem_pos : size;
        memcpy(buf, w->mem + w->mem_pos, n);
        w->mem_pos += n;
    }
    w->total += n;
    w->since_event += n;
    if (w->total > w->lim->file_max) {
        w->too_big = true;
        return 0;
    }
    *got = n;
    return 1;
}

static void walk_parser_error(struct walk *w)
{
    yaml_parser_t *p = &w->parser;

    if (w->too_big)
        error_set(w->err, CHOIR_EXIT_INPUT, "%s: more than the limit of %zu bytes", w->name,
                  w->lim->file_max);
    else if (w->too_long)
        error_set(w->err, CHOIR_EXIT_INPUT,
                  "%s:%zu: a YAML token longer than the limit of %zu bytes", w->name,
                  p->mark.line + 1, w->lim->token_max);
    else if (p->error == YAML_READER_ERROR)
        error_set(w->err, CHOIR_EXIT_INPUT, "%s: %s at byte %zu", w->name,
                  p->problem ? p->problem : "read error", p->problem_offset);
    else if (p->context)
        error_set(w->err, CHOIR_EXIT_INPUT, "%s:%zu:%zu: %s (%s at line %zu)", w->name,
                  p->problem_mark.line + 1, p->problem_mark.column + 1,
                  p->problem ? p->problem : "YAML error", p->context, p->context_mark.line + 1);
    else
        error_set(w->err, CHOIR_EXIT_INPUT, "%s:%zu:%zu: %s", w->name,
                  p->problem_mark.line + 1, p->problem_mark.column + 1,
                  p->problem ? p->problem : "YAML error");
}

/* The next event, with the depth limit applied; 0 or -1 (err filled, ev
 * empty). */
static int walk_next(struct walk *w, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&w->parser, ev)) {
        walk_parser_error(w);
        return -1;
    }
    w->since_event = 0;
    if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) {
        if (++w->depth > w->lim->depth_max) {
            error_set(w->err, CHOIR_EXIT_INPUT, "%s:%zu: nesting deeper than %zu levels", w->name,
                      ev->start_mark.line + 1, w->lim->depth_max);
            yaml_event_delete(ev);
            return -1;
        }
    } else if (ev->type == YAML_MAPPING_END_EVENT || ev->type == YAML_SEQUENCE_END_EVENT) {
        w->depth--;
    }
    return 0;
}

static bool is_start(const yaml_event_t *ev)
{
    return ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT;
}

/* Consumes the rest of the node that `first` began (first is not freed). */
static int walk_skip(struct walk *w, const yaml_event_t *first)
{
    size_t level = is_start(first) ? 1 : 0;
    yaml_event_t ev;

    while (level > 0) {
        if (walk_next(w, &ev) < 0)
            return -1;
        if (is_start(&ev))
            level++;
        else if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT)
            level--;
        yaml_event_delete(&ev);
    }
    return 0;
}

/* ---- scalars ------------------------------------------------------------------ */

/* A JSON string of at most max bytes of s, cut on a UTF-8 boundary;
 * invalid UTF-8 bytes become '?'. */
static json_t *text_json(const char *s, size_t len, size_t max)
{
    json_t *j;
    char *copy;
    size_t i;

    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
            len--;
    }
    if ((j = json_stringn(s, len)))
        return j;
    copy = xstrndup(s, len);
    for (i = 0; i < len; i++)
        if ((unsigned char)copy[i] >= 0x80 || copy[i] == '\0')
            copy[i] = '?';
    j = json_stringn(copy, len);
    free(copy);
    return j;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* [-+]?digits */
static bool is_int(const char *s)
{
    return all_digits(s + (*s == '-' || *s == '+'));
}

/* [-+]?(digits(.digits?)?|.digits)([eE][-+]?digits)? */
static bool is_float(const char *s)
{
    size_t whole = 0, frac = 0;

    s += *s == '-' || *s == '+';
    for (; isdigit((unsigned char)*s); s++)
        whole++;
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s); s++)
            frac++;
    if (!whole && !frac)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        s += *s == '-' || *s == '+';
        if (!all_digits(s))
            return false;
        return true;
    }
    return *s == '\0';
}

/* A plain, untagged scalar typed by YAML's core schema, or NULL for text. */
static json_t *plain_json(const char *s)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    static const char *const trues[] = {"true", "True", "TRUE"};
    static const char *const falses[] = {"false", "False", "FALSE"};
    size_t i;

    for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (!strcmp(s, nulls[i]))
            return json_null();
    for (i = 0; i < 3; i++) {
        if (!strcmp(s, trues[i]))
            return json_true();
        if (!strcmp(s, falses[i]))
            return json_false();
    }
    if (is_int(s)) {
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        if (!errno)
            return json_integer(v);
    }
    if (is_float(s))
        return json_real(strtod(s, NULL));
    return NULL;
}

static json_t *scalar_json(struct walk *w, const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    json_t *typed = NULL;

    if (ev->data.scalar.plain_implicit && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        !ev->data.scalar.tag && len < 64 && strlen(s) == len)
        typed = plain_json(s);
    if (typed)
        return typed;
    if (len > w->lim->string_max)
        w->truncated = true;
    return text_json(s, len, w->lim->string_max);
}

/* ---- bounded capture of a subtree -------------------------------------------- */

static json_t *capture(struct walk *w, const yaml_event_t *first, size_t *budget);

/* The key of a mapping entry as text (a non-scalar key reads as "?"). */
static char *key_text(struct walk *w, const yaml_event_t *ev, int *rc)
{
    json_t *j;
    char *out;

    *rc = 0;
    if (ev->type != YAML_SCALAR_EVENT) {
        *rc = walk_skip(w, ev);
        return xstrdup("?");
    }
    j = text_json((const char *)ev->data.scalar.value, ev->data.scalar.length,
                  w->lim->string_max > KEY_MAX ? w->lim->string_max : KEY_MAX);
    out = xstrdup(j ? json_string_value(j) : "?");
    json_decref(j);
    return out;
}

typedef int walk_key_fn(struct walk *w, const char *key, const yaml_event_t *value, void *ctx);

/* Runs on_key for each entry of a mapping whose start event was read, up
 * to and including its end; on_key must consume the value's node. */
static int walk_entries(struct walk *w, walk_key_fn *on_key, void *ctx)
{
    for (;;) {
        yaml_event_t kev, vev;
        char *key;
        int rc;

        if (walk_next(w, &kev) < 0)
            return -1;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return 0;
        }
        key = key_text(w, &kev, &rc);
        yaml_event_delete(&kev);
        if (rc == 0 && (rc = walk_next(w, &vev)) == 0) {
            rc = on_key(w, key, &vev, ctx);
            yaml_event_delete(&vev);
        }
        free(key);
        if (rc < 0)
            return -1;
    }
}

struct capture_ctx {
    json_t *obj;
    size_t *budget;
};

static int capture_entry(struct walk *w, const char *key, const yaml_event_t *value, void *ctx)
{
    struct capture_ctx *c = ctx;
    json_t *v = capture(w, value, c->budget);

    if (!v)
        return -1;
    if (json_object_size(c->obj) < SUMMARY_NODES)
        json_object_set_new(c->obj, key, v);
    else
        json_decref(v);
    return 0;
}

static json_t *capture_mapping(struct walk *w, size_t *budget)
{
    struct capture_ctx c = {json_object(), budget};

    if (walk_entries(w, capture_entry, &c) < 0) {
        json_decref(c.obj);
        return NULL;
    }
    return c.obj;
}

static json_t *capture_sequence(struct walk *w, size_t *budget)
{
    json_t *arr = json_array();
    yaml_event_t ev;

    while (walk_next(w, &ev) == 0) {
        json_t *v;

        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return arr;
        }
        v = capture(w, &ev, budget);
        yaml_event_delete(&ev);
        if (!v)
            break;
        json_array_append_new(arr, v);
    }
    json_decref(arr);
    return NULL;
}

/* The node `first` begins as JSON, at most *budget nodes of it (the rest
 * is consumed and dropped, and w->truncated set); NULL on a parse error. */
static json_t *capture(struct walk *w, const yaml_event_t *first, size_t *budget)
{
    if (*budget == 0) {
        w->truncated = true;
        return walk_skip(w, first) == 0 ? json_null() : NULL;
    }
    (*budget)--;
    switch (first->type) {
    case YAML_SCALAR_EVENT:
        return scalar_json(w, first);
    case YAML_MAPPING_START_EVENT:
        return capture_mapping(w, budget);
    case YAML_SEQUENCE_START_EVENT:
        return capture_sequence(w, budget);
    default:
        return json_null(); /* an alias: never expanded */
    }
}

static json_t *capture_small(struct walk *w, const yaml_event_t *first)
{
    size_t budget = SMALL_NODES;

    return capture(w, first, &budget);
}

/* ---- documents ------------------------------------------------------------------- */

/* Runs on_key for each entry of the first document's top-level mapping;
 * on_key must consume the value's node.  kind names the file in errors. */
static int walk_document(struct walk *w, const char *kind, walk_key_fn *on_key, void *ctx)
{
    yaml_event_t ev;
    int rc = 0;

    do {
        if (walk_next(w, &ev) < 0)
            return -1;
        if (ev.type == YAML_STREAM_END_EVENT) {
            error_set(w->err, CHOIR_EXIT_INPUT, "%s: empty file, not a Puppet %s", w->name, kind);
            yaml_event_delete(&ev);
            return -1;
        }
        rc = ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT;
        if (!rc && ev.type != YAML_MAPPING_START_EVENT) {
            error_set(w->err, CHOIR_EXIT_INPUT, "%s:%zu: not a Puppet %s (the document is not a mapping)",
                      w->name, ev.start_mark.line + 1, kind);
            yaml_event_delete(&ev);
            return -1;
        }
        yaml_event_delete(&ev);
    } while (rc);
    return walk_entries(w, on_key, ctx);
}

void puppet_yaml_limits_default(struct puppet_yaml_limits *l)
{
    l->file_max = PUPPET_YAML_FILE_MAX;
    l->token_max = PUPPET_YAML_TOKEN_MAX;
    l->string_max = PUPPET_YAML_STRING_MAX;
    l->depth_max = PUPPET_YAML_DEPTH_MAX;
    l->logs_max = PUPPET_YAML_LOGS_MAX;
    l->resources_max = PUPPET_YAML_RESOURCES_MAX;
    l->events_max = PUPPET_YAML_EVENTS_MAX;
}

static void walk_init(struct walk *w, const char *name, const struct puppet_yaml_limits *l,
                      struct choir_error *err)
{
    memset(w, 0, sizeof(*w));
    w->lim = l;
    w->name = name;
    w->err = err;
    yaml_parser_initialize(&w->parser);
    yaml_parser_set_input(&w->parser, walk_read, w);
}

/* Opens path for a walk after checking its size; 0 or -1. */
static int walk_open(struct walk *w, const char *path, int *errnum)
{
    struct stat st;

    if (!(w->fp = fopen(path, "rb")) || fstat(fileno(w->fp), &st) != 0) {
        *errnum = errno;
        error_set(w->err, CHOIR_EXIT_INPUT, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        *errnum = EISDIR;
        error_set(w->err, CHOIR_EXIT_INPUT, "%s: is a directory", path);
        return -1;
    }
    if (st.st_size > 0 && (unsigned long long)st.st_size > w->lim->file_max) {
        *errnum = EFBIG;
        error_set(w->err, CHOIR_EXIT_INPUT, "%s: %lld bytes is over the limit of %zu bytes", path,
                  (long long)st.st_size, w->lim->file_max);
        return -1;
    }
    return 0;
}

static void walk_done(struct walk *w)
{
    yaml_parser_delete(&w->parser);
    if (w->fp)
        fclose(w->fp);
}

/* ---- the summary -------------------------------------------------------------- */

struct summary_ctx {
    json_t *raw;   /* the sections as read */
    size_t budget; /* nodes left to keep */
};

static int summary_key(struct walk *w, const char *key, const yaml_event_t *value, void *ctx)
{
    struct summary_ctx *sc = ctx;
    json_t *v = capture(w, value, &sc->budget);

    if (!v)
        return -1;
    json_object_set_new(sc->raw, key, v);
    return 0;
}

static json_t *section_get(const json_t *raw, const char *section, const char *key)
{
    return json_object_get(json_object_get(raw, section), key);
}

static json_int_t int_or(const json_t *v, json_int_t dflt)
{
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v)) {
        double d = json_real_value(v); /* clamped: casting a huge double is undefined */

        return d >= 9e18 ? (json_int_t)9e18 : d <= -9e18 ? (json_int_t)-9e18 : (json_int_t)d;
    }
    return dflt;
}

static double real_or(const json_t *v, double dflt)
{
    return json_is_number(v) ? json_number_value(v) : dflt;
}

/* version.config as text (Puppet writes a number or a string). */
static json_t *version_text(const json_t *v)
{
    char buf[64];

    if (json_is_string(v))
        return json_string(json_string_value(v));
    if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        return json_string(buf);
    }
    if (json_is_real(v)) {
        snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        return json_string(buf);
    }
    return json_string("");
}

static json_t *summary_outputs(json_t *raw, time_t now)
{
    json_t *res = json_object_get(raw, "resources");
    bool present = json_is_object(res);
    json_int_t none = present ? 0 : -1;
    json_int_t lastrun = int_or(section_get(raw, "time", "last_run"), 0);

    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:o, s:O, s:{}, s:[], s:b, s:o}",
        "out_of_sync_resources", int_or(json_object_get(res, "out_of_sync"), none),
        "failed_resources", int_or(json_object_get(res, "failed"), none),
        "failed_to_restart_resources", int_or(json_object_get(res, "failed_to_restart"), none),
        "corrected_resources", int_or(json_object_get(res, "corrective_change"), none),
        "changed_resources", int_or(json_object_get(res, "changed"), none),
        "total_resources", int_or(json_object_get(res, "total"), 0),
        "config_retrieval_time", real_or(section_get(raw, "time", "config_retrieval"), -1),
        "total_time", real_or(section_get(raw, "time", "total"), 0),
        "lastrun", lastrun,
        "since_lastrun", (json_int_t)(lastrun > 0 ? (long long)now - lastrun : 0),
        "config_version", version_text(section_get(raw, "version", "config")),
        "summary", raw,
        "type_distribution",
        "logs",
        "resources_present", present,
        "puppet_version", version_text(section_get(raw, "version", "puppet")));
}

static int summary_walk(struct walk *w, time_t now, json_t **out)
{
    struct summary_ctx sc = {json_object(), SUMMARY_NODES};
    int rc = walk_document(w, "summary", summary_key, &sc);

    *out = NULL;
    if (rc == 0)
        *out = summary_outputs(sc.raw, now);
    json_decref(sc.raw);
    if (rc == 0 && !*out) {
        error_set(w->err, CHOIR_EXIT_INPUT, "%s: cannot build the summary object", w->name);
        return -1;
    }
    return rc;
}

static const struct puppet_yaml_limits *limits_or_default(const struct puppet_yaml_limits *l,
                                                          struct puppet_yaml_limits *buf)
{
    if (l)
        return l;
    puppet_yaml_limits_default(buf);
    return buf;
}

int puppet_yaml_summary_file(const char *path, const struct puppet_yaml_limits *l, time_t now,
                             json_t **out, struct choir_error *err, int *errnum)
{
    struct puppet_yaml_limits dflt;
    struct walk w;
    int rc, dummy = 0;

    if (!errnum)
        errnum = &dummy;
    *errnum = 0;
    *out = NULL;
    walk_init(&w, path, limits_or_default(l, &dflt), err);
    rc = walk_open(&w, path, errnum);
    if (rc == 0)
        rc = summary_walk(&w, now, out);
    walk_done(&w);
    return rc;
}

int puppet_yaml_summary_text(const char *text, size_t len, const char *name,
                             const struct puppet_yaml_limits *l, time_t now, json_t **out,
                             struct choir_error *err)
{
    struct puppet_yaml_limits dflt;
    struct walk w;
    int rc;

    walk_init(&w, name, limits_or_default(l, &dflt), err);
    w.mem = (const unsigned char *)text;
    w.mem_len = len;
    rc = summary_walk(&w, now, out);
    walk_done(&w);
    return rc;
}

/* ---- the report ------------------------------------------------------------------ */

struct report {
    json_t *out;
    json_t *logs, *failed, *changed, *types, *metrics;
    size_t logs_total, resources_total, failed_count, changed_count;
    bool logs_truncated, resources_truncated;
};

/* Top-level scalars kept, by name. */
static const char *const report_scalars[] = {
    "status", "job_id", "transaction_uuid", "cached_catalog_status", "noop",
    "puppet_version", "configuration_version", "host", "environment", "time",
    "report_format", "catalog_uuid", "code_id", "transaction_completed", "noop_pending",
    "corrective_change", "kind",
};

static bool is_report_scalar(const char *key)
{
    size_t i;

    for (i = 0; i < sizeof(report_scalars) / sizeof(report_scalars[0]); i++)
        if (!strcmp(key, report_scalars[i]))
            return true;
    return false;
}

/* Copies the named fields of src that exist into a new object. */
static json_t *pick(const json_t *src, const char *const *names, size_t n)
{
    json_t *o = json_object();
    size_t i;

    for (i = 0; i < n; i++) {
        json_t *v = json_object_get(src, names[i]);

        json_object_set(o, names[i], v ? v : json_null());
    }
    return o;
}

/* Calls item() for each entry of the sequence `first` begins (anything
 * else is skipped). */
typedef int item_fn(struct walk *w, const yaml_event_t *item, void *ctx);

static int walk_sequence(struct walk *w, const yaml_event_t *first, item_fn *item, void *ctx)
{
    yaml_event_t ev;

    if (first->type != YAML_SEQUENCE_START_EVENT)
        return walk_skip(w, first);
    for (;;) {
        int rc;

        if (walk_next(w, &ev) < 0)
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        rc = item(w, &ev, ctx);
        yaml_event_delete(&ev);
        if (rc < 0)
            return -1;
    }
}

static int log_item(struct walk *w, const yaml_event_t *item, void *ctx)
{
    static const char *const fields[] = {"level", "message", "source", "time"};
    struct report *r = ctx;
    json_t *log;

    r->logs_total++;
    if (json_array_size(r->logs) >= w->lim->logs_max) {
        r->logs_truncated = true;
        return walk_skip(w, item);
    }
    if (!(log = capture_small(w, item)))
        return -1;
    json_array_append_new(r->logs, pick(log, fields, 4));
    json_decref(log);
    return 0;
}

/* One resource being read: its fields, events kept and counted. */
struct resource {
    json_t *fields;
    json_t *events;
    size_t events_total;
};

static int event_item(struct walk *w, const yaml_event_t *item, void *ctx)
{
    static const char *const fields[] = {"property", "status", "name", "previous_value",
                                         "desired_value", "message"};
    struct resource *res = ctx;
    json_t *ev;

    res->events_total++;
    if (json_array_size(res->events) >= w->lim->events_max)
        return walk_skip(w, item);
    if (!(ev = capture_small(w, item)))
        return -1;
    json_array_append_new(res->events, pick(ev, fields, 6));
    json_decref(ev);
    return 0;
}

static int resource_key(struct walk *w, const char *key, const yaml_event_t *value, void *ctx)
{
    struct resource *res = ctx;
    json_t *v;

    if (!strcmp(key, "events"))
        return walk_sequence(w, value, event_item, res);
    if (!(v = capture_small(w, value)))
        return -1;
    json_object_set_new(res->fields, key, v);
    return 0;
}

/* Reads one resource_statuses value (a mapping) into res. */
static int resource_read(struct walk *w, const yaml_event_t *first, struct resource *res)
{
    if (first->type != YAML_MAPPING_START_EVENT)
        return walk_skip(w, first);
    return walk_entries(w, resource_key, res);
}

static void count_type(struct report *r, const json_t *type)
{
    const char *name = json_is_string(type) ? json_string_value(type) : "?";
    json_t *n = json_object_get(r->types, name);

    if (n)
        json_integer_set(n, json_integer_value(n) + 1);
    else if (json_object_size(r->types) < TYPES_MAX)
        json_object_set_new(r->types, name, json_integer(1));
    else
        r->resources_truncated = true;
}

static json_t *field_or_null(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return v ? v : json_null();
}

static json_t *resource_json(const struct resource *res, const char *name, size_t events_max)
{
    const json_t *f = res->fields;
    json_t *rname = json_object_get(f, "resource");

    return json_pack("{s:s, s:O, s:O, s:O, s:O, s:b, s:b, s:O, s:I, s:b}",
                     "resource", json_is_string(rname) ? json_string_value(rname) : name,
                     "type", field_or_null(f, "resource_type"),
                     "title", field_or_null(f, "title"),
                     "file", field_or_null(f, "file"),
                     "line", field_or_null(f, "line"),
                     "failed", json_is_true(json_object_get(f, "failed")),
                     "changed", json_is_true(json_object_get(f, "changed")),
                     "events", res->events,
                     "events_total", (json_int_t)res->events_total,
                     "events_truncated", res->events_total > events_max);
}

/* Keeps the resource in the failed and/or changed list when it is one. */
static void resource_keep(struct walk *w, struct report *r, const struct resource *res,
                          const char *name)
{
    bool failed = json_is_true(json_object_get(res->fields, "failed")) ||
                  json_is_true(json_object_get(res->fields, "failed_to_restart"));
    bool changed = json_is_true(json_object_get(res->fields, "changed"));
    size_t max = w->lim->resources_max;

    r->resources_total++;
    count_type(r, json_object_get(res->fields, "resource_type"));
    if (failed && r->failed_count++ < max)
        json_array_append_new(r->failed, resource_json(res, name, w->lim->events_max));
    if (changed && r->changed_count++ < max)
        json_array_append_new(r->changed, resource_json(res, name, w->lim->events_max));
    if ((failed && r->failed_count > max) || (changed && r->changed_count > max))
        r->resources_truncated = true;
}

static int resource_statuses(struct walk *w, const yaml_event_t *first, struct report *r)
{
    yaml_event_t kev, vev;
    int rc = 0;

    if (first->type != YAML_MAPPING_START_EVENT)
        return walk_skip(w, first);
    while (rc == 0) {
        struct resource res = {json_object(), json_array(), 0};
        char *key;

        if (walk_next(w, &kev) < 0)
            rc = -1;
        else if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            json_decref(res.fields);
            json_decref(res.events);
            return 0;
        } else {
            key = key_text(w, &kev, &rc);
            yaml_event_delete(&kev);
            if (rc == 0 && (rc = walk_next(w, &vev)) == 0) {
                if ((rc = resource_read(w, &vev, &res)) == 0)
                    resource_keep(w, r, &res, key);
                yaml_event_delete(&vev);
            }
            free(key);
        }
        json_decref(res.fields);
        json_decref(res.events);
    }
    return -1;
}

/* metrics: {group: {values: [[name, label, value], ...]}} -> {group: {name: value}} */
static json_t *metrics_reduce(const json_t *raw)
{
    json_t *out = json_object(), *group;
    const char *gname;

    json_object_foreach((json_t *)raw, gname, group) {
        json_t *values = json_object_get(group, "values"), *triple, *g = json_object();
        size_t i;

        json_array_foreach(values, i, triple) {
            json_t *name = json_array_get(triple, 0), *v = json_array_get(triple, 2);

            if (json_is_string(name) && v)
                json_object_set(g, json_string_value(name), v);
        }
        json_object_set_new(out, gname, g);
    }
    return out;
}

static int report_key(struct walk *w, const char *key, const yaml_event_t *value, void *ctx)
{
    struct report *r = ctx;

    if (!strcmp(key, "logs"))
        return walk_sequence(w, value, log_item, r);
    if (!strcmp(key, "resource_statuses"))
        return resource_statuses(w, value, r);
    if (!strcmp(key, "metrics")) {
        size_t budget = METRICS_NODES;
        json_t *raw = capture(w, value, &budget);

        if (!raw)
            return -1;
        json_object_set_new(r->out, "metrics", metrics_reduce(raw));
        json_decref(raw);
        return 0;
    }
    if (is_report_scalar(key) && value->type == YAML_SCALAR_EVENT) {
        json_object_set_new(r->out, key, scalar_json(w, value));
        return 0;
    }
    return walk_skip(w, value);
}

/* Fills the fields every report object has, whatever the file held. */
static void report_finish(struct walk *w, struct report *r)
{
    static const char *const text_fields[] = {"status", "transaction_uuid",
                                              "cached_catalog_status", "puppet_version", "host",
                                              "environment", "time"};
    json_t *o = r->out, *cv = json_object_get(o, "configuration_version");
    const char *t;
    size_t i;

    for (i = 0; i < sizeof(text_fields) / sizeof(text_fields[0]); i++)
        if (!json_object_get(o, text_fields[i]))
            json_object_set_new(o, text_fields[i], json_null());
    if (!json_object_get(o, "job_id"))
        json_object_set_new(o, "job_id", json_null());
    if (!json_is_boolean(json_object_get(o, "noop")))
        json_object_set_new(o, "noop", json_false());
    json_object_set_new(o, "configuration_version", cv && !json_is_null(cv) ? version_text(cv) : json_null());
    t = json_string_value(json_object_get(o, "time"));
    json_object_set_new(o, "time_epoch", json_integer(t ? puppet_yaml_time(t) : 0));
    if (!json_object_get(o, "metrics"))
        json_object_set_new(o, "metrics", json_object());
    json_object_set_new(o, "logs", r->logs);
    json_object_set_new(o, "logs_total", json_integer((json_int_t)r->logs_total));
    json_object_set_new(o, "logs_truncated", json_boolean(r->logs_truncated));
    json_object_set_new(o, "failed_resources", r->failed);
    json_object_set_new(o, "changed_resources", r->changed);
    json_object_set_new(o, "failed_count", json_integer((json_int_t)r->failed_count));
    json_object_set_new(o, "changed_count", json_integer((json_int_t)r->changed_count));
    json_object_set_new(o, "resources_total", json_integer((json_int_t)r->resources_total));
    json_object_set_new(o, "resources_truncated", json_boolean(r->resources_truncated));
    json_object_set_new(o, "type_distribution", r->types);
    json_object_set_new(o, "truncated", json_boolean(r->logs_truncated || r->resources_truncated ||
                                                     w->truncated));
}

static int report_walk(struct walk *w, json_t **out)
{
    struct report r;
    int rc;

    memset(&r, 0, sizeof(r));
    r.out = json_object();
    r.logs = json_array();
    r.failed = json_array();
    r.changed = json_array();
    r.types = json_object();
    rc = walk_document(w, "report", report_key, &r);
    report_finish(w, &r);
    if (rc < 0) {
        json_decref(r.out);
        r.out = NULL;
    }
    *out = r.out;
    return rc;
}

int puppet_yaml_report_file(const char *path, const struct puppet_yaml_limits *l, json_t **out,
                            struct choir_error *err, int *errnum)
{
    struct puppet_yaml_limits dflt;
    struct walk w;
    int rc, dummy = 0;

    if (!errnum)
        errnum = &dummy;
    *errnum = 0;
    *out = NULL;
    walk_init(&w, path, limits_or_default(l, &dflt), err);
    rc = walk_open(&w, path, errnum);
    if (rc == 0)
        rc = report_walk(&w, out);
    walk_done(&w);
    return rc;
}

int puppet_yaml_report_text(const char *text, size_t len, const char *name,
                            const struct puppet_yaml_limits *l, json_t **out,
                            struct choir_error *err)
{
    struct puppet_yaml_limits dflt;
    struct walk w;
    int rc;

    walk_init(&w, name, limits_or_default(l, &dflt), err);
    w.mem = (const unsigned char *)text;
    w.mem_len = len;
    rc = report_walk(&w, out);
    walk_done(&w);
    return rc;
}

/* ---- report times --------------------------------------------------------------- */

/* Reads n digits at *s into *v; false when they are not there. */
static bool digits(const char **s, int n, int *v)
{
    int i;

    *v = 0;
    for (i = 0; i < n; i++, (*s)++) {
        if (!isdigit((unsigned char)**s))
            return false;
        *v = *v * 10 + (**s - '0');
    }
    return true;
}

/* The zone offset in seconds east, at s: "", "Z", "+HH:MM", "+HHMM", "+HH". */
static bool zone_offset(const char *s, long *off)
{
    int hh = 0, mm = 0, sign;

    while (*s == ' ')
        s++;
    *off = 0;
    if (*s == '\0' || ((*s == 'Z' || *s == 'z') && s[1] == '\0'))
        return true;
    if (*s != '+' && *s != '-')
        return false;
    sign = *s++ == '-' ? -1 : 1;
    if (!digits(&s, 2, &hh))
        return false;
    s += *s == ':';
    if (*s && !digits(&s, 2, &mm))
        return false;
    if (*s || hh > 23 || mm > 59)
        return false;
    *off = sign * (hh * 3600L + mm * 60L);
    return true;
}

long long puppet_yaml_time(const char *s)
{
    struct tm tm;
    int y, mo, d, h, mi, sec;
    long off;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) || *s++ != '-' ||
        !digits(&s, 2, &d) || (*s != 'T' && *s != 't' && *s != ' '))
        return 0;
    s++;
    if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi) || *s++ != ':' ||
        !digits(&s, 2, &sec))
        return 0;
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s); s++)
            ;
    if (!zone_offset(s, &off) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60)
        return 0;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    if ((t = timegm(&tm)) == (time_t)-1)
        return 0;
    return (long long)t - off;
}
