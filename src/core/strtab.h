/* strtab.h - string interning.
 *
 * Contract: a strtab maps byte strings to dense ids 0..count-1 in order of
 * first insertion, and ids back to NUL-terminated strings that stay valid
 * (and unmoved) until strtab_done.  Lookup and insertion are O(1) expected
 * (open addressing, FNV-1a).  Strings may contain any byte but NUL. */
#ifndef CHOIR_STRTAB_H
#define CHOIR_STRTAB_H

#include <stddef.h>
#include <stdint.h>

#define STRTAB_NONE UINT32_MAX

struct strtab_chunk;

struct strtab {
    const char **strs;         /* id -> string */
    uint32_t *lens;            /* id -> length */
    uint32_t *hashes;          /* id -> hash */
    uint32_t count, cap;
    uint64_t *slots;           /* (hash << 32) | (id + 1), 0 = empty */
    uint32_t nslots;           /* power of two */
    struct strtab_chunk *chunks;
};

void strtab_init(struct strtab *t);
void strtab_done(struct strtab *t);

/* The id of s[0..len), inserting it if new. */
uint32_t strtab_intern(struct strtab *t, const char *s, size_t len);
/* The id of s[0..len), or STRTAB_NONE. */
uint32_t strtab_find(const struct strtab *t, const char *s, size_t len);

static inline const char *strtab_str(const struct strtab *t, uint32_t id) { return t->strs[id]; }
static inline uint32_t strtab_len(const struct strtab *t, uint32_t id) { return t->lens[id]; }
static inline uint32_t strtab_count(const struct strtab *t) { return t->count; }

#endif
