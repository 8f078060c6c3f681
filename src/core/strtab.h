/* strtab.h - string interning.
 *
 * Contract: a strtab maps byte strings to dense ids 0..count-1 in order of
 * first insertion, and ids back to NUL-terminated strings that stay valid
 * (and unmoved) until strtab_done.  Lookup and insertion are O(1) expected
 * (open addressing).  Strings may contain any byte but NUL.  strtab_keep
 * stores a string in the same memory without interning it. */
#ifndef CHOIR_STRTAB_H
#define CHOIR_STRTAB_H

#include <stddef.h>
#include <stdint.h>

#define STRTAB_NONE UINT32_MAX

struct strtab_chunk;

/* A probe reads one slot and, only when the hash matches, the string
 * itself (its length is stored just before it): two cache misses at most
 * for a lookup in a table of hundreds of thousands of names. */
struct strtab_slot {
    const char *str;           /* NULL = empty */
    uint32_t hash;
    uint32_t id;
};

struct strtab {
    const char **strs;         /* id -> string */
    uint32_t count, cap;
    struct strtab_slot *slots;
    uint32_t nslots;           /* power of two */
    struct strtab_chunk *chunks;
};

void strtab_init(struct strtab *t);
void strtab_done(struct strtab *t);

/* Sizes the table for about `count` strings at once, saving the rehashes
 * of growing to it one doubling at a time. */
void strtab_reserve(struct strtab *t, uint32_t count);

/* The id of s[0..len), inserting it if new. */
uint32_t strtab_intern(struct strtab *t, const char *s, size_t len);
/* A copy of s[0..len) that lives as long as t, without interning it (no
 * id, no lookup): for names that are many and need no deduplication. */
const char *strtab_keep(struct strtab *t, const char *s, size_t len);

/* The id of s[0..len), or STRTAB_NONE. */
uint32_t strtab_find(const struct strtab *t, const char *s, size_t len);

static inline const char *strtab_str(const struct strtab *t, uint32_t id) { return t->strs[id]; }
uint32_t strtab_len(const struct strtab *t, uint32_t id);
static inline uint32_t strtab_count(const struct strtab *t) { return t->count; }

#endif
