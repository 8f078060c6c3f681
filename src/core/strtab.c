/* strtab.c - see strtab.h.  Strings live in 64 KiB chunks (larger strings
 * get a chunk of their own), so interning 100,000 names costs a handful of
 * allocations. */
#include "core/strtab.h"

#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

#define STRTAB_CHUNK 65536

struct strtab_chunk {
    struct strtab_chunk *next;
    size_t used, size;
    char data[];
};

void strtab_init(struct strtab *t)
{
    memset(t, 0, sizeof(*t));
}

void strtab_done(struct strtab *t)
{
    struct strtab_chunk *c = t->chunks;

    while (c) {
        struct strtab_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(t->strs);
    free(t->lens);
    free(t->hashes);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* Eight bytes at a time, then a 64-bit finaliser (MurmurHash3's fmix64):
 * several times faster than byte-wise FNV on certnames and capability
 * references, with the same spread. */
static uint32_t strtab_hash(const char *s, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len, w;

    for (; len >= 8; s += 8, len -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, s, len);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (uint32_t)h;
}

/* A slot holds (hash << 32) | (id + 1), 0 when empty, so a probe reads
 * one array and touches a string only when the full hash matches. */
static uint64_t *strtab_slot(const struct strtab *t, const char *s, size_t len, uint32_t h)
{
    uint32_t mask = t->nslots - 1;

    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        uint64_t slot = t->slots[i];
        uint32_t id = (uint32_t)slot - 1;

        if (slot == 0)
            return &t->slots[i];
        if ((uint32_t)(slot >> 32) == h && t->lens[id] == len && memcmp(t->strs[id], s, len) == 0)
            return &t->slots[i];
    }
}

static void strtab_grow_slots(struct strtab *t)
{
    uint32_t n = t->nslots ? t->nslots * 2 : 64;

    free(t->slots);
    t->slots = xcalloc(n, sizeof(*t->slots));
    t->nslots = n;
    for (uint32_t id = 0; id < t->count; id++) {
        uint32_t mask = n - 1, i = t->hashes[id] & mask;

        while (t->slots[i])
            i = (i + 1) & mask;
        t->slots[i] = (uint64_t)t->hashes[id] << 32 | (id + 1);
    }
}

static char *strtab_store(struct strtab *t, const char *s, size_t len)
{
    struct strtab_chunk *c = t->chunks;
    char *p;

    if (!c || c->size - c->used < len + 1) {
        size_t size = len + 1 > STRTAB_CHUNK ? len + 1 : STRTAB_CHUNK;

        c = xmalloc(sizeof(*c) + size);
        c->used = 0;
        c->size = size;
        c->next = t->chunks;
        t->chunks = c;
    }
    p = c->data + c->used;
    memcpy(p, s, len);
    p[len] = '\0';
    c->used += len + 1;
    return p;
}

uint32_t strtab_find(const struct strtab *t, const char *s, size_t len)
{
    uint64_t *slot;

    if (!t->nslots)
        return STRTAB_NONE;
    slot = strtab_slot(t, s, len, strtab_hash(s, len));
    return *slot ? (uint32_t)*slot - 1 : STRTAB_NONE;
}

uint32_t strtab_intern(struct strtab *t, const char *s, size_t len)
{
    uint32_t h = strtab_hash(s, len);
    uint64_t *slot;

    if ((uint64_t)(t->count + 1) * 2 > t->nslots)
        strtab_grow_slots(t);
    slot = strtab_slot(t, s, len, h);
    if (*slot)
        return (uint32_t)*slot - 1;
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->strs = xreallocarray(t->strs, t->cap, sizeof(*t->strs));
        t->lens = xreallocarray(t->lens, t->cap, sizeof(*t->lens));
        t->hashes = xreallocarray(t->hashes, t->cap, sizeof(*t->hashes));
    }
    t->strs[t->count] = strtab_store(t, s, len);
    t->lens[t->count] = (uint32_t)len;
    t->hashes[t->count] = h;
    *slot = (uint64_t)h << 32 | ++t->count;
    return t->count - 1;
}
