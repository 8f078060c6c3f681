/* site.c - parse and validate the site graph (see site.h).
 *
 * jansson builds the document tree; this file walks it once, checking every
 * type and name and copying what it keeps into the site model, then drops
 * the tree.  Each error message carries the JSON path of the offending
 * value, built on the way down. */
#include "core/site.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/names.h"
#include "core/xalloc.h"

#define SITE_PATH_MAX 600

struct site_parser {
    struct site *site;
    const char *origin;
    struct choir_error *err;
    char path[SITE_PATH_MAX];
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

static const char *site_json_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

/* "origin: path: " prefix helpers.  `where` is the path of the value, or ""
 * for the document itself. */
static int site_fail(struct site_parser *p, const char *where, const char *what)
{
    if (*where)
        error_set(p->err, CHOIR_EXIT_INPUT, "%s: %s: %s", p->origin, where, what);
    else
        error_set(p->err, CHOIR_EXIT_INPUT, "%s: %s", p->origin, what);
    return -1;
}

static int site_fail_type(struct site_parser *p, const char *where, const char *want,
                          const json_t *got)
{
    char what[64];

    snprintf(what, sizeof(what), "expected %s, got %s", want, site_json_type(got));
    return site_fail(p, where, what);
}

/* Checks a name: non-empty, bounded, no control characters. */
static int site_check_name(struct site_parser *p, const char *where, const char *s, size_t len)
{
    if (len == 0)
        return site_fail(p, where, "must not be empty");
    if (len > SITE_MAX_NAME)
        return site_fail(p, where, "is longer than 1024 bytes");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return site_fail(p, where, "contains a control character");
    return 0;
}

/* Appends the ids of the capability list `key` ("produces"/"consumes") of
 * a component to site->capids; returns the count or -1. */
static long site_parse_caps(struct site_parser *p, const json_t *comp, const char *key,
                            const char *cpath)
{
    struct site *s = p->site;
    char where[SITE_PATH_MAX];
    const json_t *arr = json_object_get(comp, key), *v;
    size_t i;

    if (snprintf(where, sizeof(where), "%s.\"%s\"", cpath, key) >= (int)sizeof(where))
        where[sizeof(where) - 1] = '\0';
    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return site_fail_type(p, where, "an array of capability references", arr);
    if (s->ncapids + json_array_size(arr) > s->capidcap) {
        s->capidcap = (s->ncapids + json_array_size(arr)) * 2;
        s->capids = xreallocarray(s->capids, s->capidcap, sizeof(*s->capids));
    }
    json_array_foreach(arr, i, v) {
        char elem[SITE_PATH_MAX];

        if (snprintf(elem, sizeof(elem), "%s[%zu]", where, i) >= (int)sizeof(elem))
            elem[sizeof(elem) - 1] = '\0'; /* a cut path is still a useful path */
        if (!json_is_string(v))
            return site_fail_type(p, elem, "a string", v);
        if (site_check_name(p, elem, json_string_value(v), json_string_length(v)) < 0)
            return -1;
        s->capids[s->ncapids + i] = strtab_intern(&s->caps, json_string_value(v),
                                                  json_string_length(v));
    }
    s->ncapids += json_array_size(arr);
    return (long)json_array_size(arr);
}

static int site_parse_component(struct site_parser *p, const char *name, const json_t *v,
                                const char *apath, struct site_component *c)
{
    char cpath[SITE_PATH_MAX], where[SITE_PATH_MAX];
    const json_t *node;
    long np, nc;

    snprintf(cpath, sizeof(cpath), "%s.", apath);
    site_path_quote(cpath, sizeof(cpath), name);
    if (site_check_name(p, cpath, name, strlen(name)) < 0)
        return -1;
    if (!json_is_object(v))
        return site_fail_type(p, cpath, "an object", v);
    node = json_object_get(v, "node");
    if (snprintf(where, sizeof(where), "%s.\"node\"", cpath) >= (int)sizeof(where))
        where[sizeof(where) - 1] = '\0';
    if (!node)
        return site_fail(p, cpath, "\"node\" is missing");
    if (!json_is_string(node))
        return site_fail_type(p, where, "a certname string", node);
    if (!names_certname_ok(json_string_value(node), json_string_length(node))) {
        char what[SITE_PATH_MAX];

        what[0] = '\0';
        site_path_quote(what, sizeof(what), json_string_value(node));
        strncat(what, " is not a valid certname (1-255 of a-z 0-9 . - _)",
                sizeof(what) - strlen(what) - 1);
        return site_fail(p, where, what);
    }
    c->caps_at = (uint32_t)p->site->ncapids;
    if ((np = site_parse_caps(p, v, "produces", cpath)) < 0 ||
        (nc = site_parse_caps(p, v, "consumes", cpath)) < 0)
        return -1;
    c->name = strtab_str(&p->site->names, strtab_intern(&p->site->names, name, strlen(name)));
    c->node = strtab_intern(&p->site->nodes, json_string_value(node), json_string_length(node));
    c->nproduces = (uint32_t)np;
    c->nconsumes = (uint32_t)nc;
    return 0;
}

static int site_cmp_component(const void *a, const void *b)
{
    return strcmp(((const struct site_component *)a)->name, ((const struct site_component *)b)->name);
}

static int site_cmp_app(const void *a, const void *b)
{
    return strcmp(((const struct site_app *)a)->name, ((const struct site_app *)b)->name);
}

static int site_parse_app(struct site_parser *p, const char *name, const json_t *v,
                          struct site_app *app)
{
    char apath[SITE_PATH_MAX] = "applications.";
    const char *cname;
    const json_t *cv;

    site_path_quote(apath, sizeof(apath), name);
    if (site_check_name(p, apath, name, strlen(name)) < 0)
        return -1;
    if (!json_is_object(v))
        return site_fail_type(p, apath, "an object of components", v);
    app->name = strtab_str(&p->site->names, strtab_intern(&p->site->names, name, strlen(name)));
    app->comps = xcalloc(json_object_size(v), sizeof(*app->comps));
    json_object_foreach((json_t *)v, cname, cv) {
        if (site_parse_component(p, cname, cv, apath, &app->comps[app->ncomps]) < 0)
            return -1;
        app->ncomps++;
    }
    qsort(app->comps, app->ncomps, sizeof(*app->comps), site_cmp_component);
    p->site->ncomps += app->ncomps;
    return 0;
}

static int site_parse_top(struct site_parser *p, const json_t *root)
{
    const json_t *env, *apps, *code_id, *v;
    const char *name;

    if (!json_is_object(root))
        return site_fail_type(p, "", "a JSON object at the top level", root);
    env = json_object_get(root, "environment");
    if (!env)
        return site_fail(p, "", "\"environment\" is missing");
    if (!json_is_string(env))
        return site_fail_type(p, "environment", "a string", env);
    if (site_check_name(p, "environment", json_string_value(env), json_string_length(env)) < 0)
        return -1;
    code_id = json_object_get(root, "code_id");
    if (code_id && !json_is_null(code_id) && !json_is_string(code_id))
        return site_fail_type(p, "code_id", "a string or null", code_id);
    apps = json_object_get(root, "applications");
    if (!apps)
        return site_fail(p, "", "\"applications\" is missing");
    if (!json_is_object(apps))
        return site_fail_type(p, "applications", "an object of application instances", apps);

    p->site->environment = xstrdup(json_string_value(env));
    if (json_is_string(code_id))
        p->site->code_id = xstrdup(json_string_value(code_id));
    p->site->apps = xcalloc(json_object_size(apps), sizeof(*p->site->apps));
    json_object_foreach((json_t *)apps, name, v) {
        /* Counted before parsing, so a half-parsed application is freed. */
        if (site_parse_app(p, name, v, &p->site->apps[p->site->napps++]) < 0)
            return -1;
    }
    qsort(p->site->apps, p->site->napps, sizeof(*p->site->apps), site_cmp_app);
    return 0;
}

static struct site *site_new(const char *origin)
{
    struct site *s = xcalloc(1, sizeof(*s));

    s->origin = xstrdup(origin);
    strtab_init(&s->nodes);
    strtab_init(&s->caps);
    strtab_init(&s->names);
    return s;
}

int site_parse(struct site **out, const char *buf, size_t len, const char *origin,
               struct choir_error *err)
{
    struct site_parser p = {.origin = origin, .err = err};
    json_error_t jerr;
    json_t *root;
    int rc;

    *out = NULL;
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        error_set(err, CHOIR_EXIT_INPUT, "%s:%d:%d: malformed JSON: %s", origin, jerr.line,
                  jerr.column, jerr.text);
        return -1;
    }
    p.site = site_new(origin);
    rc = site_parse_top(&p, root);
    json_decref(root);
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

    return bsearch(&key, s->apps, s->napps, sizeof(*s->apps), site_cmp_app);
}
