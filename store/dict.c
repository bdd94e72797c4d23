/*
 * dict.c: the dictionary of repeated strings (users, verbs, resources, user agents...).
 *
 * Every such value is stored once in the strings table and events hold its id. An
 * open-addressing hash table in memory answers most lookups, so a steady state runs no SQL
 * for them. It is bounded by entries and by string bytes: when either bound would be passed,
 * it is emptied and refilled from misses (the table holds the truth, so forgetting is always
 * safe). High-cardinality values (object names, source addresses) come and go; a clear costs
 * a memset of the slots, and the frequent values are back after a few misses.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

struct dict_entry {
    uint64_t hash; /* kt_hash64 of the string with the low bit set; 0 marks a free slot */
    const char *s; /* the string, in the dictionary's arena */
    uint32_t len;  /* its length */
    int64_t id;    /* strings.id */
};

int dict_init(struct dict *d, sqlite3 *db, sqlite3_stmt *get, sqlite3_stmt *add, size_t max_entries,
              size_t max_bytes)
{
    size_t cap = 16;

    memset(d, 0, sizeof(*d));
    d->max_entries = max_entries > 0 ? max_entries : 1;
    d->max_bytes = max_bytes > 0 ? max_bytes : 1;
    /* at most half full, so probes stay short */
    while (cap < d->max_entries * 2) {
        cap *= 2;
    }
    d->slots = calloc(cap, sizeof(*d->slots));
    if (d->slots == NULL) {
        return KT_ENOMEM;
    }
    d->mask = cap - 1;
    d->db = db;
    d->get = get;
    d->add = add;
    return 0;
}

void dict_forget(struct dict *d)
{
    if (d->slots != NULL) {
        memset(d->slots, 0, (d->mask + 1) * sizeof(*d->slots));
    }
    d->n = 0;
    d->bytes = 0;
    kt_arena_reset(&d->strs);
}

void dict_free(struct dict *d)
{
    free(d->slots);
    d->slots = NULL;
    kt_arena_free(&d->strs);
}

/* The slot holding s, or the free slot where it belongs. */
static struct dict_entry *find(struct dict *d, const char *s, size_t len, uint64_t h)
{
    for (size_t i = h & d->mask;; i = (i + 1) & d->mask) {
        struct dict_entry *e = &d->slots[i];
        if (e->hash == 0 || (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0)) {
            return e;
        }
    }
}

/* The id of s from the strings table, inserting it when new. 0 or KT_EIO. */
static int lookup_sql(struct dict *d, const char *s, size_t len, int64_t *id)
{
    int rc;

    sqlite3_bind_text(d->get, 1, s, (int)len, SQLITE_STATIC);
    rc = sqlite3_step(d->get);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(d->get, 0);
    }
    sqlite3_reset(d->get);
    if (rc == SQLITE_ROW) {
        return 0;
    }
    if (rc != SQLITE_DONE) {
        return KT_EIO;
    }
    sqlite3_bind_text(d->add, 1, s, (int)len, SQLITE_STATIC);
    rc = sqlite3_step(d->add);
    sqlite3_reset(d->add);
    if (rc != SQLITE_DONE) {
        return KT_EIO;
    }
    *id = sqlite3_last_insert_rowid(d->db);
    return 0;
}

int dict_id(struct dict *d, const char *s, size_t len, int64_t *id)
{
    uint64_t h = kt_hash64(s, len) | 1;
    struct dict_entry *e = find(d, s, len, h);
    char *copy = NULL;
    int rc;

    if (e->hash != 0) {
        d->hits++;
        *id = e->id;
        return 0;
    }
    d->misses++;
    rc = lookup_sql(d, s, len, id);
    if (rc != 0 || len > UINT32_MAX) {
        return rc;
    }
    if (d->n + 1 > d->max_entries || d->bytes + len + 1 > d->max_bytes) {
        dict_forget(d);
        d->clears++;
        e = find(d, s, len, h);
    }
    /* A value larger than the whole byte budget is never cached; still correct, just slower. */
    if (len + 1 > d->max_bytes || (copy = kt_arena_dup(&d->strs, s, len)) == NULL) {
        return 0;
    }
    e->hash = h;
    e->s = copy;
    e->len = (uint32_t)len;
    e->id = *id;
    d->n++;
    d->bytes += len + 1;
    return 0;
}
