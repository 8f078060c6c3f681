/* site.h - the Puppet site graph (`/puppet/v3/environment/<env>` JSON).
 *
 * Contract: site_parse turns untrusted JSON text into a validated, immutable
 * model, or fails with one precise line naming the origin, the JSON path and
 * the reason:
 *   site.json: applications."Lamp[app1]"."Lamp::Mysql[app1]": "node" is missing
 * Rules (docs/protocol.md): top level is an object with "environment"
 * (string) and "applications" (object of application instances, each an
 * object of components); a component has "node" (a certname) and optional
 * "produces"/"consumes" arrays of capability strings; "code_id" is a string
 * or null; unknown keys are ignored.  Names are bounded (SITE_MAX_NAME) and
 * may not hold control characters.
 *
 * Applications are sorted by name and each application's components by
 * name, so everything derived from a site is deterministic.  Node names and
 * capability names are interned: components refer to them by id. */
#ifndef CHOIR_SITE_H
#define CHOIR_SITE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/strtab.h"

#define SITE_MAX_NAME 1024

struct site_component {
    const char *name;          /* "Lamp::Mysql[app1]" */
    uint32_t node;             /* id in site->nodes */
    uint32_t nproduces;
    uint32_t nconsumes;
    uint32_t caps_at;          /* its capability ids: site->capids[caps_at ..], nproduces
                                  produced ones, then nconsumes consumed ones */
};

struct site_app {
    const char *name;          /* "Lamp[app1]" */
    struct site_component *comps;
    uint32_t ncomps;
};

struct site {
    char *origin;              /* file name or URL, for messages */
    char *environment;
    char *code_id;             /* NULL when null or absent */
    struct site_app *apps;
    uint32_t napps;
    uint32_t ncomps;           /* over all applications */
    struct strtab nodes;       /* certnames */
    struct strtab caps;        /* capability refs */
    struct strtab names;       /* application and component names */
    uint32_t *capids;          /* every component's capability ids, back to back */
    size_t ncapids, capidcap;
};

static inline const uint32_t *site_comp_caps(const struct site *s, const struct site_component *c)
{
    return s->capids + c->caps_at;
}

int site_parse(struct site **out, const char *buf, size_t len, const char *origin,
               struct choir_error *err);

/* Reads and parses a file of at most max_bytes. */
int site_load_file(struct site **out, const char *path, size_t max_bytes, struct choir_error *err);

void site_free(struct site *s);

/* The application named `name`, or NULL. */
const struct site_app *site_find_app(const struct site *s, const char *name);

#endif
