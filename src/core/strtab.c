/* strtab.c - see strtab.h.  Strings live in 64 KiB chunks (larger strings
 * get a chunk of their own), each preceded by its 32-bit length, so
 * interning 100,000 names costs a handful of allocations. */
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
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* Eight bytes at a time, then a 64-bit finaliser (MurmurHash3's fmix64). */
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

static uint32_t strtab_stored_len(const char *str)
{
    uint32_t len;

    memcpy(&len, str - sizeof(len), sizeof(len));
    return len;
}

uint32_t strtab_len(const struct strtab *t, uint32_t id)
{
    return strtab_stored_len(t->strs[id]);
}

static struct strtab_slot *strtab_slot(const struct strtab *t, const char *s, size_t len, uint32_t h)
{
    uint32_t mask = t->nslots - 1;

    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        struct strtab_slot *slot = &t->slots[i];

        if (!slot->str)
            return slot;
        if (slot->hash == h && strtab_stored_len(slot->str) == len && memcmp(slot->str, s, len) == 0)
            return slot;
    }
}

static void strtab_resize(struct strtab *t, uint32_t n)
{
    struct strtab_slot *old = t->slots;
    uint32_t oldn = t->nslots;

    t->slots = xcalloc(n, sizeof(*t->slots));
    t->nslots = n;
    for (uint32_t k = 0; k < oldn; k++) {
        uint32_t i = old[k].hash & (n - 1);

        if (!old[k].str)
            continue;
        while (t->slots[i].str)
            i = (i + 1) & (n - 1);
        t->slots[i] = old[k];
    }
    free(old);
}

static void strtab_grow_slots(struct strtab *t)
{
    strtab_resize(t, t->nslots ? t->nslots * 2 : 64);
}

void strtab_reserve(struct strtab *t, uint32_t count)
{
    uint32_t n = 64;

    while (n < count * 2 && n < (1u << 30))
        n *= 2;
    if (n > t->nslots)
        strtab_resize(t, n);
}

/* Copies s into a chunk after its length; returns the string. */
static char *strtab_store(struct strtab *t, const char *s, size_t len)
{
    struct strtab_chunk *c = t->chunks;
    uint32_t len32 = (uint32_t)len;
    size_t need = sizeof(len32) + len + 1;
    char *p;

    if (!c || c->size - c->used < need) {
        size_t size = need > STRTAB_CHUNK ? need : STRTAB_CHUNK;

        c = xmalloc(sizeof(*c) + size);
        c->used = 0;
        c->size = size;
        c->next = t->chunks;
        t->chunks = c;
    }
    p = c->data + c->used;
    memcpy(p, &len32, sizeof(len32));
    p += sizeof(len32);
    memcpy(p, s, len);
    p[len] = '\0';
    c->used += need;
    return p;
}

const char *strtab_keep(struct strtab *t, const char *s, size_t len)
{
    return strtab_store(t, s, len);
}

uint32_t strtab_find(const struct strtab *t, const char *s, size_t len)
{
    struct strtab_slot *slot;

    if (!t->nslots)
        return STRTAB_NONE;
    slot = strtab_slot(t, s, len, strtab_hash(s, len));
    return slot->str ? slot->id : STRTAB_NONE;
}

uint32_t strtab_intern(struct strtab *t, const char *s, size_t len)
{
    uint32_t h = strtab_hash(s, len);
    struct strtab_slot *slot;

    if ((uint64_t)(t->count + 1) * 2 > t->nslots)
        strtab_grow_slots(t);
    slot = strtab_slot(t, s, len, h);
    if (slot->str)
        return slot->id;
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->strs = xreallocarray(t->strs, t->cap, sizeof(*t->strs));
    }
    t->strs[t->count] = strtab_store(t, s, len);
    *slot = (struct strtab_slot){t->strs[t->count], h, t->count};
    return t->count++;
}
