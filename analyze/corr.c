/*
 * corr.c: the correlation engine (see corr.h).
 *
 * Per correlation: a chained hash table of groups by key and a list of the groups in order
 * of their last update (the head is evicted first). A group holds its observations in a small
 * array: for count, one per matching event (at most threshold); for distinct, one per value
 * (a repeated value refreshes its entry); for sequence, the latest match of each step; for
 * first_seen, nothing but the time the key was last seen.
 */
#include "corr.h"

#include <stdlib.h>
#include <string.h>

/* One observation kept in a group. */
struct obs {
    int64_t ts;    /* event time */
    uint64_t ref;  /* the event */
    uint64_t vh;   /* distinct: hash of the value */
    uint32_t step; /* sequence: the step it matched */
};

struct group {
    struct group *hnext;         /* hash chain */
    struct group *older, *newer; /* update order */
    uint64_t h;                  /* hash of the key */
    char *key;                   /* the key (owned) */
    size_t klen;
    int64_t clock; /* newest event time seen in the group */
    struct obs *o; /* observations */
    uint32_t n;    /* used */
};

struct cdef {
    struct kt_corr_def d;   /* the definition */
    uint32_t cap;           /* observations a group holds at most */
    struct group **buckets; /* hash table */
    size_t nbuckets;        /* a power of two */
    size_t ngroups;         /* groups held */
    struct group *oldest;   /* update order: evicted first */
    struct group *newest;
    int64_t t0; /* first_seen: the first event time observed, or INT64_MIN */
};

struct kt_corr {
    struct cdef *defs;
    size_t n;
    struct kt_corr_stats st;
    uint64_t *refs; /* a firing's references, handed out until the next feed */
    size_t caprefs;
};

enum { DEFAULT_MAX_GROUPS = 100000 };

struct kt_corr *kt_corr_create(const struct kt_corr_def *defs, size_t n)
{
    struct kt_corr *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->defs = calloc(n + 1, sizeof(*c->defs))) == NULL) {
        free(c);
        return NULL;
    }
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        struct cdef *cd = &c->defs[i];
        cd->d = defs[i];
        if (cd->d.max_groups == 0) {
            cd->d.max_groups = DEFAULT_MAX_GROUPS;
        }
        switch (cd->d.kind) {
        case KT_CORR_COUNT:
        case KT_CORR_DISTINCT:
            cd->cap = cd->d.threshold;
            break;
        case KT_CORR_SEQUENCE:
            cd->cap = cd->d.steps;
            break;
        case KT_CORR_FIRST_SEEN:
            cd->cap = 0;
            break;
        default:
            cd->cap = UINT32_MAX; /* invalid below */
        }
        if (cd->cap == UINT32_MAX || (cd->d.kind != KT_CORR_FIRST_SEEN && cd->cap == 0) ||
            cd->cap > 100000 || (cd->d.kind == KT_CORR_SEQUENCE && cd->cap > 16)) {
            kt_corr_destroy(c);
            return NULL;
        }
        cd->nbuckets = 64;
        cd->buckets = calloc(cd->nbuckets, sizeof(*cd->buckets));
        cd->t0 = INT64_MIN;
        if (cd->buckets == NULL) {
            kt_corr_destroy(c);
            return NULL;
        }
    }
    return c;
}

static void group_free(struct group *g)
{
    free(g->key);
    free(g->o);
    free(g);
}

void kt_corr_destroy(struct kt_corr *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        struct group *g = c->defs[i].oldest;
        while (g != NULL) {
            struct group *next = g->newer;
            group_free(g);
            g = next;
        }
        free(c->defs[i].buckets);
    }
    free(c->defs);
    free(c->refs);
    free(c);
}

static size_t group_bytes(const struct cdef *cd, const struct group *g)
{
    return sizeof(*g) + g->klen + (size_t)cd->cap * sizeof(struct obs);
}

static void unlink_order(struct cdef *cd, struct group *g)
{
    if (g->older != NULL) {
        g->older->newer = g->newer;
    } else {
        cd->oldest = g->newer;
    }
    if (g->newer != NULL) {
        g->newer->older = g->older;
    } else {
        cd->newest = g->older;
    }
    g->older = g->newer = NULL;
}

static void link_newest(struct cdef *cd, struct group *g)
{
    g->older = cd->newest;
    g->newer = NULL;
    if (cd->newest != NULL) {
        cd->newest->newer = g;
    } else {
        cd->oldest = g;
    }
    cd->newest = g;
}

static void remove_group(struct kt_corr *c, struct cdef *cd, struct group *g)
{
    struct group **pp = &cd->buckets[g->h & (cd->nbuckets - 1)];
    while (*pp != g) {
        pp = &(*pp)->hnext;
    }
    *pp = g->hnext;
    unlink_order(cd, g);
    cd->ngroups--;
    c->st.groups--;
    c->st.bytes -= group_bytes(cd, g);
    group_free(g);
}

static void grow(struct cdef *cd)
{
    size_t nb = cd->nbuckets * 2;
    struct group **b = calloc(nb, sizeof(*b));
    if (b == NULL) {
        return; /* longer chains, still correct */
    }
    for (size_t i = 0; i < cd->nbuckets; i++) {
        struct group *g = cd->buckets[i];
        while (g != NULL) {
            struct group *next = g->hnext;
            g->hnext = b[g->h & (nb - 1)];
            b[g->h & (nb - 1)] = g;
            g = next;
        }
    }
    free(cd->buckets);
    cd->buckets = b;
    cd->nbuckets = nb;
}

/* The group of key, created (evicting the stalest when full) if new; NULL on ENOMEM. */
static struct group *group_get(struct kt_corr *c, struct cdef *cd, struct kt_str key, int *fresh)
{
    uint64_t h = kt_hash64(key.ptr != NULL ? key.ptr : "", key.len);
    *fresh = 0;
    for (struct group *g = cd->buckets[h & (cd->nbuckets - 1)]; g != NULL; g = g->hnext) {
        if (g->h == h && g->klen == key.len && memcmp(g->key, key.ptr, key.len) == 0) {
            return g;
        }
    }
    if (cd->ngroups >= cd->d.max_groups && cd->oldest != NULL) {
        remove_group(c, cd, cd->oldest);
        c->st.evicted++;
    }
    struct group *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        return NULL;
    }
    g->key = malloc(key.len + 1);
    g->o = cd->cap > 0 ? calloc(cd->cap, sizeof(*g->o)) : NULL;
    if (g->key == NULL || (cd->cap > 0 && g->o == NULL)) {
        group_free(g);
        return NULL;
    }
    if (key.len > 0) {
        memcpy(g->key, key.ptr, key.len);
    }
    g->key[key.len] = '\0';
    g->klen = key.len;
    g->h = h;
    g->clock = INT64_MIN;
    if (cd->ngroups + 1 > cd->nbuckets) {
        grow(cd);
    }
    g->hnext = cd->buckets[h & (cd->nbuckets - 1)];
    cd->buckets[h & (cd->nbuckets - 1)] = g;
    link_newest(cd, g);
    cd->ngroups++;
    c->st.groups++;
    c->st.bytes += group_bytes(cd, g);
    *fresh = 1;
    return g;
}

/* Forget observations older than the window behind the group's clock. */
static void expire(const struct cdef *cd, struct group *g)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < g->n; i++) {
        if (g->o[i].ts >= g->clock - cd->d.window_us) {
            g->o[k++] = g->o[i];
        }
    }
    g->n = k;
}

/* Observations are kept in time order: insert o in its place (late ones go before). */
static void insert_sorted(struct group *g, struct obs o)
{
    uint32_t i = g->n;
    while (i > 0 && g->o[i - 1].ts > o.ts) {
        g->o[i] = g->o[i - 1];
        i--;
    }
    g->o[i] = o;
    g->n++;
}

static int fire_with(struct kt_corr *c, size_t def, struct group *g, uint32_t count,
                     struct kt_corr_fire *f)
{
    if (c->caprefs < g->n + 1) {
        uint64_t *r = realloc(c->refs, (g->n + 1) * sizeof(*r));
        if (r == NULL) {
            return KT_ENOMEM;
        }
        c->refs = r;
        c->caprefs = g->n + 1;
    }
    for (uint32_t i = 0; i < g->n; i++) {
        c->refs[i] = g->o[i].ref;
    }
    f->def = def;
    f->key = (struct kt_str){g->key, g->klen};
    f->count = count;
    f->refs = c->refs;
    f->nrefs = g->n;
    f->first_ts = g->n > 0 ? g->o[0].ts : 0;
    f->last_ts = g->n > 0 ? g->o[g->n - 1].ts : 0;
    g->n = 0; /* start over: one burst, one alert */
    c->st.fired++;
    return 1;
}

static int feed_first_seen(struct kt_corr *c, size_t def, struct cdef *cd, struct kt_str key,
                           int64_t ts, uint64_t ref, struct kt_corr_fire *f)
{
    int fresh = 0;
    if (cd->t0 == INT64_MIN || ts < cd->t0) {
        cd->t0 = ts;
    }
    struct group *g = group_get(c, cd, key, &fresh);
    if (g == NULL) {
        return KT_ENOMEM;
    }
    int64_t last = g->clock;
    if (ts > g->clock) {
        g->clock = ts;
    }
    unlink_order(cd, g);
    link_newest(cd, g);
    int is_new = fresh || (cd->d.lookback_us > 0 && ts - last > cd->d.lookback_us);
    if (!is_new || ts < cd->t0 + cd->d.learning_us) {
        return 0; /* known, or still learning what is normal */
    }
    if (c->caprefs < 1) {
        uint64_t *r = realloc(c->refs, sizeof(*r));
        if (r == NULL) {
            return KT_ENOMEM;
        }
        c->refs = r;
        c->caprefs = 1;
    }
    c->refs[0] = ref;
    *f = (struct kt_corr_fire){.def = def,
                               .key = {g->key, g->klen},
                               .count = 1,
                               .refs = c->refs,
                               .nrefs = 1,
                               .first_ts = ts,
                               .last_ts = ts};
    c->st.fired++;
    return 1;
}

int kt_corr_feed(struct kt_corr *c, size_t def, uint32_t step, struct kt_str key,
                 struct kt_str value, int64_t ts, uint64_t ref, struct kt_corr_fire *f)
{
    if (def >= c->n) {
        return 0;
    }
    struct cdef *cd = &c->defs[def];
    if (cd->d.kind == KT_CORR_FIRST_SEEN) {
        return feed_first_seen(c, def, cd, key, ts, ref, f);
    }
    if (cd->d.kind == KT_CORR_SEQUENCE && step >= cd->d.steps) {
        return 0;
    }
    int fresh = 0;
    struct group *g = group_get(c, cd, key, &fresh);
    if (g == NULL) {
        return KT_ENOMEM;
    }
    unlink_order(cd, g);
    link_newest(cd, g);
    if (g->clock != INT64_MIN && ts < g->clock - cd->d.lateness_us) {
        c->st.late++;
        return 0;
    }
    if (ts > g->clock) {
        g->clock = ts;
    }
    expire(cd, g);
    if (ts < g->clock - cd->d.window_us) {
        return 0; /* late, and outside the window anyway */
    }
    struct obs o = {.ts = ts, .ref = ref, .step = step};
    switch (cd->d.kind) {
    case KT_CORR_COUNT:
        if (g->n == cd->cap) { /* cannot happen: a full group fires and empties */
            g->n--;
        }
        insert_sorted(g, o);
        return g->n >= cd->d.threshold ? fire_with(c, def, g, g->n, f) : 0;
    case KT_CORR_DISTINCT: {
        o.vh = kt_hash64(value.ptr != NULL ? value.ptr : "", value.len);
        for (uint32_t i = 0; i < g->n; i++) {
            if (g->o[i].vh == o.vh) {
                /* a value seen again: keep its latest sighting */
                memmove(&g->o[i], &g->o[i + 1], (g->n - i - 1) * sizeof(*g->o));
                g->n--;
                break;
            }
        }
        insert_sorted(g, o);
        return g->n >= cd->d.threshold ? fire_with(c, def, g, g->n, f) : 0;
    }
    case KT_CORR_SEQUENCE: {
        /* keep the latest match of each step; an ordered step needs its predecessor, earlier */
        if (cd->d.ordered && step > 0) {
            int have_prev = 0;
            for (uint32_t i = 0; i < g->n; i++) {
                have_prev |= g->o[i].step == step - 1 && g->o[i].ts <= ts;
            }
            if (!have_prev) {
                return 0;
            }
        }
        for (uint32_t i = 0; i < g->n; i++) {
            if (g->o[i].step == step) {
                memmove(&g->o[i], &g->o[i + 1], (g->n - i - 1) * sizeof(*g->o));
                g->n--;
                break;
            }
        }
        if (cd->d.ordered) {
            /* later steps are superseded by a new occurrence of an earlier one */
            uint32_t k = 0;
            for (uint32_t i = 0; i < g->n; i++) {
                if (g->o[i].step < step) {
                    g->o[k++] = g->o[i];
                }
            }
            g->n = k;
        }
        insert_sorted(g, o);
        return g->n == cd->d.steps ? fire_with(c, def, g, g->n, f) : 0;
    }
    default:
        return 0;
    }
}

void kt_corr_stats(const struct kt_corr *c, struct kt_corr_stats *out)
{
    *out = c->st;
}
