/* site.c - parse and validate the site graph (see site.h).
 *
 * The document is read in one streaming pass (core/jscan.h: no tree is
 * built, so a 30 MB site costs its text and its model, not a DOM ten times
 * its size), checking every type and name and keeping what the model needs.
 * Each error message carries the JSON path of the offending value, built on
 * the way down.  Duplicate keys are rejected wherever the model reads them
 * (top level, applications, component fields; a duplicate component is
 * found when an application's components are sorted); values under
 * unknown keys are checked for syntax and skipped. */
#include "core/site.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/jscan.h"
#include "core/names.h"
#include "core/xalloc.h"

#define SITE_PATH_MAX 600

/* A growable list of capability ids. */
struct site_ids {
    uint32_t *v;
    size_t n, cap;
};

/* Where the parser is, for messages; the path is only formatted on error. */
struct site_at {
    const char *top;           /* "", "environment", "code_id" or "applications" */
    const char *app, *comp;    /* interned names, or NULL */
    const char *field;         /* "node", "produces", "consumes" or NULL */
    long index;                /* element of field, or -1 */
};

struct site_parser {
    struct site_at at;
    struct site *site;
    const char *origin;
    struct choir_error *err;
    struct jscan js;
    int semantic;              /* err holds a model error (not a syntax error) */
    uint32_t *app_seen;        /* names id -> 1 when used as an application name */
    size_t seen_cap;
    struct site_ids produces, consumes;
};

/* Appends s as a quoted, escaped JSON-style key, truncated to keep
 * messages short. */
static void site_path_quote(char *dst, size_t size, const char *s)
{
    size_t n = strlen(dst), limit = 120;

    if (n + 2 >= size)
        return;
    dst[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p && n + 8 < size; p++) {
        if (limit-- == 0) {
            n += (size_t)snprintf(dst + n, size - n, "...");
            break;
        }
        if (*p == '"' || *p == '\\')
            n += (size_t)snprintf(dst + n, size - n, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            n += (size_t)snprintf(dst + n, size - n, "\\u%04x", *p);
        else
            dst[n++] = (char)*p;
    }
    if (n + 1 < size)
        dst[n++] = '"';
    dst[n] = '\0';
}

/* Formats the current location as applications."A"."C"."field"[i]. */
static void site_where(const struct site_parser *p, char *buf, size_t size)
{
    const struct site_at *at = &p->at;
    const char *parts[] = {at->app, at->comp, at->field};
    size_t n;

    snprintf(buf, size, "%s", at->top);
    for (size_t i = 0; i < 3; i++) {
        if (!parts[i])
            continue;
        strncat(buf, ".", size - strlen(buf) - 1);
        site_path_quote(buf, size, parts[i]);
    }
    n = strlen(buf);
    if (at->index >= 0 && n + 24 < size)
        snprintf(buf + n, size - n, "[%ld]", at->index);
}

static int site_fail(struct site_parser *p, const char *what)
{
    char where[SITE_PATH_MAX];

    site_where(p, where, sizeof(where));
    if (*where)
        error_set(p->err, CHOIR_EXIT_INPUT, "%s: %s: %s", p->origin, where, what);
    else
        error_set(p->err, CHOIR_EXIT_INPUT, "%s: %s", p->origin, what);
    p->semantic = 1;
    return -1;
}

/* Checks that the next value is of type `want`; otherwise a model error
 * ("expected WANT_TEXT, got TYPE") or, for what is not JSON, a syntax one. */
static int site_want(struct site_parser *p, enum jscan_type want, const char *want_text)
{
    enum jscan_type got = jscan_peek(&p->js);
    char what[96];

    if (got == want)
        return 0;
    if (got == JSCAN_END || got == JSCAN_INVALID)
        return jscan_skip(&p->js);
    snprintf(what, sizeof(what), "expected %s, got %s", want_text, jscan_type_name(got));
    return site_fail(p, what);
}

static int site_duplicate(struct site_parser *p, const char *key)
{
    char msg[160] = "duplicate object key ";

    site_path_quote(msg, sizeof(msg), key);
    return jscan_fail(&p->js, msg);
}

/* Checks a name: non-empty, bounded, no control characters. */
static int site_check_name(struct site_parser *p, const char *s, size_t len)
{
    if (len == 0)
        return site_fail(p, "must not be empty");
    if (len > SITE_MAX_NAME)
        return site_fail(p, "is longer than 1024 bytes");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return site_fail(p, "contains a control character");
    return 0;
}

static void site_ids_push(struct site_ids *ids, uint32_t id)
{
    if (ids->n == ids->cap) {
        ids->cap = ids->cap ? ids->cap * 2 : 16;
        ids->v = xreallocarray(ids->v, ids->cap, sizeof(*ids->v));
    }
    ids->v[ids->n++] = id;
}

/* Reads the capability list of p->at.field into ids (null = empty). */
static int site_parse_caps(struct site_parser *p, struct site_ids *ids)
{
    int r;

    ids->n = 0;
    if (jscan_peek(&p->js) == JSCAN_NULL)
        return jscan_skip(&p->js);
    if (site_want(p, JSCAN_ARRAY, "an array of capability references") < 0 ||
        jscan_array_begin(&p->js) < 0)
        return -1;
    while ((r = jscan_array_next(&p->js)) == 1) {
        const char *cap;
        size_t len;

        p->at.index++;
        if (site_want(p, JSCAN_STRING, "a string") < 0 || jscan_string(&p->js, &cap, &len) < 0 ||
            site_check_name(p, cap, len) < 0)
            return -1;
        site_ids_push(ids, strtab_intern(&p->site->caps, cap, len));
    }
    p->at.index = -1;
    return r;
}

static int site_parse_node(struct site_parser *p, struct site_component *c)
{
    char what[SITE_PATH_MAX];
    const char *node;
    size_t len;

    if (site_want(p, JSCAN_STRING, "a certname string") < 0 || jscan_string(&p->js, &node, &len) < 0)
        return -1;
    if (!names_certname_ok(node, len)) {
        what[0] = '\0';
        site_path_quote(what, sizeof(what), node);
        strncat(what, " is not a valid certname (1-255 of a-z 0-9 . - _)",
                sizeof(what) - strlen(what) - 1);
        return site_fail(p, what);
    }
    c->node = strtab_intern(&p->site->nodes, node, len);
    return 0;
}

/* Stores the component's capabilities: produced ones, then consumed ones. */
static void site_store_caps(struct site_parser *p, struct site_component *c)
{
    struct site *s = p->site;
    size_t need = s->ncapids + p->produces.n + p->consumes.n;

    if (need > s->capidcap) {
        s->capidcap = need * 2;
        s->capids = xreallocarray(s->capids, s->capidcap, sizeof(*s->capids));
    }
    c->caps_at = (uint32_t)s->ncapids;
    c->nproduces = (uint32_t)p->produces.n;
    c->nconsumes = (uint32_t)p->consumes.n;
    if (p->produces.n)
        memcpy(s->capids + s->ncapids, p->produces.v, p->produces.n * sizeof(uint32_t));
    s->ncapids += p->produces.n;
    if (p->consumes.n)
        memcpy(s->capids + s->ncapids, p->consumes.v, p->consumes.n * sizeof(uint32_t));
    s->ncapids += p->consumes.n;
}

static int site_parse_component(struct site_parser *p, struct site_component *c)
{
    static const char *const fields[] = {"node", "produces", "consumes"};
    struct site_ids *lists[] = {NULL, &p->produces, &p->consumes};
    unsigned seen = 0;
    const char *key;
    size_t len;
    int r;

    if (site_want(p, JSCAN_OBJECT, "an object") < 0 || jscan_object_begin(&p->js) < 0)
        return -1;
    p->produces.n = p->consumes.n = 0;
    while ((r = jscan_object_next(&p->js, &key, &len)) == 1) {
        unsigned f = 0;

        while (f < 3 && strcmp(key, fields[f]) != 0)
            f++;
        if (f == 3) {
            r = jscan_skip(&p->js);
        } else if (seen & (1u << f)) {
            return site_duplicate(p, key);
        } else {
            seen |= 1u << f;
            p->at.field = fields[f];
            r = f == 0 ? site_parse_node(p, c) : site_parse_caps(p, lists[f]);
            p->at.field = NULL;
        }
        if (r < 0)
            return -1;
    }
    if (r < 0)
        return -1;
    if (!(seen & 1))
        return site_fail(p, "\"node\" is missing");
    site_store_caps(p, c);
    return 0;
}

/* Marks application name `id` as seen; 0 if it already was. */
static int site_mark_app(struct site_parser *p, uint32_t id)
{
    if (id >= p->seen_cap) {
        size_t cap = (size_t)id * 2 + 64;

        p->app_seen = xreallocarray(p->app_seen, cap, sizeof(uint32_t));
        memset(p->app_seen + p->seen_cap, 0, (cap - p->seen_cap) * sizeof(uint32_t));
        p->seen_cap = cap;
    }
    if (p->app_seen[id])
        return 0;
    p->app_seen[id] = 1;
    return 1;
}

static int site_cmp_component(const void *a, const void *b)
{
    return strcmp(((const struct site_component *)a)->name, ((const struct site_component *)b)->name);
}

static int site_cmp_app(const void *a, const void *b)
{
    return strcmp(((const struct site_app *)a)->name, ((const struct site_app *)b)->name);
}

static int site_parse_app(struct site_parser *p, struct site_app *app)
{
    size_t cap = 0, len;
    const char *name;
    int r;

    if (site_want(p, JSCAN_OBJECT, "an object of components") < 0 || jscan_object_begin(&p->js) < 0)
        return -1;
    while ((r = jscan_object_next(&p->js, &name, &len)) == 1) {
        /* Component names are many and unique: kept, not interned; a
         * duplicate shows up next to its twin once they are sorted. */
        p->at.comp = strtab_keep(&p->site->names, name, len);
        if (site_check_name(p, p->at.comp, len) < 0)
            return -1;
        if (app->ncomps == cap) {
            cap = cap ? cap * 2 : 4;
            app->comps = xreallocarray(app->comps, cap, sizeof(*app->comps));
        }
        memset(&app->comps[app->ncomps], 0, sizeof(*app->comps));
        app->comps[app->ncomps].name = p->at.comp;
        if (site_parse_component(p, &app->comps[app->ncomps++]) < 0)
            return -1;
    }
    p->at.comp = NULL;
    if (r < 0)
        return -1;
    if (app->ncomps > 1)
        qsort(app->comps, app->ncomps, sizeof(*app->comps), site_cmp_component);
    for (uint32_t i = 1; i < app->ncomps; i++) {
        if (strcmp(app->comps[i - 1].name, app->comps[i].name) == 0) {
            p->at.comp = app->comps[i].name;
            return site_fail(p, "the component appears twice in the application");
        }
    }
    p->site->ncomps += app->ncomps;
    return 0;
}

static int site_parse_apps(struct site_parser *p)
{
    struct site *s = p->site;
    size_t cap = 0, len;
    const char *name;
    int r;

    if (site_want(p, JSCAN_OBJECT, "an object of application instances") < 0 ||
        jscan_object_begin(&p->js) < 0)
        return -1;
    while ((r = jscan_object_next(&p->js, &name, &len)) == 1) {
        uint32_t id = strtab_intern(&s->names, name, len);

        p->at.app = strtab_str(&s->names, id);
        if (site_check_name(p, p->at.app, len) < 0)
            return -1;
        if (!site_mark_app(p, id))
            return site_duplicate(p, p->at.app);
        if (s->napps == cap) {
            cap = cap ? cap * 2 : 8;
            s->apps = xreallocarray(s->apps, cap, sizeof(*s->apps));
        }
        /* Counted before parsing, so a half-parsed application is freed. */
        memset(&s->apps[s->napps], 0, sizeof(*s->apps));
        s->apps[s->napps].name = p->at.app;
        s->napps++;
        if (site_parse_app(p, &s->apps[s->napps - 1]) < 0)
            return -1;
    }
    p->at.app = NULL;
    if (r < 0)
        return -1;
    if (s->napps > 1)
        qsort(s->apps, s->napps, sizeof(*s->apps), site_cmp_app);
    return 0;
}

static int site_parse_environment(struct site_parser *p)
{
    const char *env;
    size_t len;

    if (site_want(p, JSCAN_STRING, "a string") < 0 || jscan_string(&p->js, &env, &len) < 0 ||
        site_check_name(p, env, len) < 0)
        return -1;
    p->site->environment = xstrndup(env, len);
    return 0;
}

static int site_parse_code_id(struct site_parser *p)
{
    const char *id;
    size_t len;

    if (jscan_peek(&p->js) == JSCAN_NULL)
        return jscan_skip(&p->js);
    if (site_want(p, JSCAN_STRING, "a string or null") < 0 ||
        jscan_string(&p->js, &id, &len) < 0)
        return -1;
    p->site->code_id = xstrndup(id, len);
    return 0;
}

/* One top-level field: 1 when it was a known one, 0 skipped, -1 error. */
static int site_parse_field(struct site_parser *p, const char *key, unsigned *seen)
{
    static const char *const known[] = {"environment", "applications", "code_id"};

    for (unsigned i = 0; i < 3; i++) {
        if (strcmp(key, known[i]) != 0)
            continue;
        if (*seen & (1u << i))
            return site_duplicate(p, key);
        *seen |= 1u << i;
        p->at.top = known[i];
        return (i == 0 ? site_parse_environment(p) : i == 1 ? site_parse_apps(p)
                                                            : site_parse_code_id(p)) < 0 ? -1 : 1;
    }
    return jscan_skip(&p->js);
}

static int site_parse_top(struct site_parser *p)
{
    unsigned seen = 0;
    const char *key;
    size_t len;
    int r;

    if (site_want(p, JSCAN_OBJECT, "a JSON object at the top level") < 0 ||
        jscan_object_begin(&p->js) < 0)
        return -1;
    while ((r = jscan_object_next(&p->js, &key, &len)) == 1) {
        if (site_parse_field(p, key, &seen) < 0)
            return -1;
        p->at.top = "";
    }
    if (r < 0 || jscan_finish(&p->js) < 0)
        return -1;
    if (!(seen & 1))
        return site_fail(p, "\"environment\" is missing");
    if (!(seen & 2))
        return site_fail(p, "\"applications\" is missing");
    return 0;
}

static struct site *site_new(const char *origin)
{
    struct site *s = xcalloc(1, sizeof(*s));

    s->origin = xstrdup(origin);
    s->capidcap = 64; /* never NULL: site_comp_caps is pointer arithmetic on it */
    s->capids = xmalloc(s->capidcap * sizeof(*s->capids));
    strtab_init(&s->nodes);
    strtab_init(&s->caps);
    strtab_init(&s->names);
    return s;
}

int site_parse(struct site **out, const char *buf, size_t len, const char *origin,
               struct choir_error *err)
{
    struct site_parser p = {.at = {"", NULL, NULL, NULL, -1}, .origin = origin, .err = err};
    int rc;

    *out = NULL;
    p.site = site_new(origin);
    /* A capability reference costs 20 to 40 bytes of JSON; a node is
     * named by ten components or so.  Right-sizing saves the rehashes. */
    strtab_reserve(&p.site->caps, (uint32_t)(len / 128 < (1u << 24) ? len / 128 : (1u << 24)));
    strtab_reserve(&p.site->nodes, (uint32_t)(len / 2048 < (1u << 20) ? len / 2048 : (1u << 20)));
    jscan_init(&p.js, buf, len);
    rc = site_parse_top(&p);
    if (rc < 0 && !p.semantic) {
        char where[256];

        jscan_error_message(&p.js, where, sizeof(where));
        error_set(err, CHOIR_EXIT_INPUT, "%s:%s", origin, where);
    }
    jscan_done(&p.js);
    free(p.app_seen);
    free(p.produces.v);
    free(p.consumes.v);
    if (rc < 0) {
        site_free(p.site);
        return -1;
    }
    *out = p.site;
    return 0;
}

int site_load_file(struct site **out, const char *path, size_t max_bytes, struct choir_error *err)
{
    char *buf;
    size_t len;
    int rc, e;

    *out = NULL;
    if ((e = file_read(path, max_bytes, &buf, &len)) != 0) {
        if (e == EFBIG)
            error_set(err, CHOIR_EXIT_INPUT, "%s: larger than %zu bytes (site.max_bytes)", path, max_bytes);
        else
            error_set(err, CHOIR_EXIT_INPUT, "%s: cannot read: %s", path, strerror(e));
        return -1;
    }
    rc = site_parse(out, buf, len, path, err);
    free(buf);
    return rc;
}

void site_free(struct site *s)
{
    if (!s)
        return;
    for (uint32_t a = 0; a < s->napps; a++)
        free(s->apps[a].comps);
    free(s->capids);
    free(s->apps);
    strtab_done(&s->nodes);
    strtab_done(&s->caps);
    strtab_done(&s->names);
    free(s->environment);
    free(s->code_id);
    free(s->origin);
    free(s);
}

const struct site_app *site_find_app(const struct site *s, const char *name)
{
    struct site_app key = {.name = name};

    return s->napps ? bsearch(&key, s->apps, s->napps, sizeof(*s->apps), site_cmp_app) : NULL;
}
