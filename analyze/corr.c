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
    struct group *dprev, *dnext; /* the dirty list, while dirty */
    uint64_t h;                  /* hash of the key */
    char *key;                   /* the key (owned) */
    size_t klen;                 /* its length */
    int64_t clock;               /* newest event time seen in the group */
    int64_t first;               /* first_seen: event time the key was first seen */
    struct obs *o;               /* observations */
    uint32_t n;                  /* used */
    uint32_t def;                /* the correlation it belongs to */
    int dirty;                   /* changed since the last checkpoint */
};

/* A group removed (evicted) since the last checkpoint: its stored state must go too. */
struct removed {
    size_t def; /* the correlation */
    char *key;  /* its key (owned) */
    size_t len; /* key length */
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
    struct cdef *defs;       /* the correlations */
    size_t n;                /* how many */
    struct kt_corr_stats st; /* counters */
    uint64_t *refs;          /* a firing's references, handed out until the next feed */
    size_t caprefs;          /* refs allocated */
    struct group *dirty;     /* groups changed since the last checkpoint (dprev/dnext) */
    struct removed *rm;      /* groups removed since the last checkpoint */
    size_t nrm, caprm;       /* used, allocated */
    int track;               /* keep the dirty list and removals (kt_corr_track) */
    unsigned char *blob;     /* checkpoint scratch: one serialized group */
    size_t capblob;          /* its size */
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
        c->st.bytes += cd->nbuckets * sizeof(*cd->buckets);
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
    for (size_t i = 0; i < c->nrm; i++) {
        free(c->rm[i].key);
    }
    free(c->rm);
    free(c->blob);
    free(c->defs);
    free(c->refs);
    free(c);
}

static size_t group_bytes(const struct cdef *cd, const struct group *g)
{
    return sizeof(*g) + g->klen + 1 + (size_t)cd->cap * sizeof(struct obs);
}

static void mark_dirty(struct kt_corr *c, struct group *g)
{
    if (g->dirty || !c->track) {
        return;
    }
    g->dirty = 1;
    g->dprev = NULL;
    g->dnext = c->dirty;
    if (c->dirty != NULL) {
        c->dirty->dprev = g;
    }
    c->dirty = g;
}

static void unmark_dirty(struct kt_corr *c, struct group *g)
{
    if (!g->dirty) {
        return;
    }
    if (g->dprev != NULL) {
        g->dprev->dnext = g->dnext;
    } else {
        c->dirty = g->dnext;
    }
    if (g->dnext != NULL) {
        g->dnext->dprev = g->dprev;
    }
    g->dirty = 0;
    g->dprev = g->dnext = NULL;
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
    unmark_dirty(c, g);
    cd->ngroups--;
    c->st.groups--;
    c->st.bytes -= group_bytes(cd, g);
    group_free(g);
}

static void grow(struct kt_corr *c, struct cdef *cd)
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
    c->st.bytes += (nb - cd->nbuckets) * sizeof(*b);
    cd->buckets = b;
    cd->nbuckets = nb;
}

/* Remember that the stalest group of cd goes, so the next checkpoint deletes its state. A
 * first_seen key is not deleted: its durable row is the truth, memory only a cache. */
static void evict(struct kt_corr *c, struct cdef *cd, int expired)
{
    struct group *g = cd->oldest;
    if (cd->d.kind != KT_CORR_FIRST_SEEN && c->track) {
        if (c->nrm == c->caprm) {
            size_t cap = c->caprm ? c->caprm * 2 : 64;
            struct removed *r = realloc(c->rm, cap * sizeof(*r));
            if (r != NULL) {
                c->rm = r;
                c->caprm = cap;
            }
        }
        char *k = c->nrm < c->caprm ? malloc(g->klen + 1) : NULL;
        if (k != NULL) {
            memcpy(k, g->key, g->klen + 1);
            c->rm[c->nrm++] = (struct removed){g->def, k, g->klen};
        } /* else: its stored state outlives it, and a restore evicts it again */
    }
    remove_group(c, cd, g);
    if (expired) {
        c->st.expired++;
    } else {
        c->st.evicted++;
    }
}

/*
 * The group of key, created if new: first dropping (at most two) stalest groups whose window
 * has passed for good, their clock being more than window + lateness behind ts (nothing they
 * hold can count again), then evicting the stalest when full. ts INT64_MIN drops none.
 * NULL on ENOMEM.
 */
static struct group *group_get(struct kt_corr *c, struct cdef *cd, struct kt_str key, int64_t ts,
                               int *fresh)
{
    uint64_t h = kt_hash64(key.ptr != NULL ? key.ptr : "", key.len);
    *fresh = 0;
    for (struct group *g = cd->buckets[h & (cd->nbuckets - 1)]; g != NULL; g = g->hnext) {
        if (g->h == h && g->klen == key.len && memcmp(g->key, key.ptr, key.len) == 0) {
            return g;
        }
    }
    for (int k = 0; k < 2 && ts != INT64_MIN && cd->d.kind != KT_CORR_FIRST_SEEN &&
                    cd->oldest != NULL && cd->oldest->clock != INT64_MIN &&
                    cd->oldest->clock < ts - cd->d.window_us - cd->d.lateness_us;
         k++) {
        evict(c, cd, 1);
    }
    if (cd->ngroups >= cd->d.max_groups && cd->oldest != NULL) {
        evict(c, cd, 0);
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
    g->first = INT64_MIN;
    g->def = (uint32_t)(cd - c->defs);
    if (cd->ngroups + 1 > cd->nbuckets) {
        grow(c, cd);
    }
    g->hnext = cd->buckets[h & (cd->nbuckets - 1)];
    cd->buckets[h & (cd->nbuckets - 1)] = g;
    link_newest(cd, g);
    cd->ngroups++;
    c->st.groups++;
    c->st.bytes += group_bytes(cd, g);
    mark_dirty(c, g);
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
    struct group *g = group_get(c, cd, key, ts, &fresh);
    if (g == NULL) {
        return KT_ENOMEM;
    }
    int64_t last = g->clock;
    if (ts > g->clock) {
        g->clock = ts;
        mark_dirty(c, g);
    }
    if (ts < g->first || g->first == INT64_MIN) {
        g->first = ts;
        mark_dirty(c, g);
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
    if (cd->d.kind == KT_CORR_SEQUENCE && cd->d.ordered && step > 0 && !kt_corr_has(c, def, key)) {
        return 0; /* a later step with no earlier one: nothing to remember */
    }
    struct group *g = group_get(c, cd, key, ts, &fresh);
    if (g == NULL) {
        return KT_ENOMEM;
    }
    unlink_order(cd, g);
    link_newest(cd, g);
    if (g->clock != INT64_MIN && ts < g->clock - cd->d.lateness_us) {
        c->st.late++;
        return 0;
    }
    mark_dirty(c, g);
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

uint64_t kt_corr_cap_bytes(const struct kt_corr *c, size_t keylen)
{
    uint64_t total = 0;
    for (size_t i = 0; i < c->n; i++) {
        const struct cdef *cd = &c->defs[i];
        size_t nb = 64;
        while (nb < cd->d.max_groups) {
            nb *= 2;
        }
        total += (uint64_t)nb * sizeof(struct group *) +
                 (uint64_t)cd->d.max_groups *
                     (sizeof(struct group) + keylen + 1 + (size_t)cd->cap * sizeof(struct obs));
    }
    return total;
}

/* ---- checkpoint and restore ---- */

/*
 * A group's blob: a header (version, kind, observation count, clock) and the observations,
 * fixed-width fields in the machine's byte order (the database stays on the machine that
 * wrote it; a blob that does not fit its definition is dropped on restore, never trusted).
 */
enum { BLOB_VERSION = 1, BLOB_HEAD = 16, BLOB_OBS = 28 };

static int blob_of(struct kt_corr *c, const struct cdef *cd, const struct group *g, size_t *len)
{
    size_t need = BLOB_HEAD + (size_t)g->n * BLOB_OBS;
    if (need > c->capblob) {
        unsigned char *p = realloc(c->blob, need);
        if (p == NULL) {
            return KT_ENOMEM;
        }
        c->blob = p;
        c->capblob = need;
    }
    unsigned char *p = c->blob;
    uint16_t kind = (uint16_t)cd->d.kind;
    p[0] = BLOB_VERSION;
    p[1] = 0;
    memcpy(p + 2, &kind, 2);
    memcpy(p + 4, &g->n, 4);
    memcpy(p + 8, &g->clock, 8);
    for (uint32_t i = 0; i < g->n; i++) {
        unsigned char *o = p + BLOB_HEAD + (size_t)i * BLOB_OBS;
        memcpy(o, &g->o[i].ts, 8);
        memcpy(o + 8, &g->o[i].ref, 8);
        memcpy(o + 16, &g->o[i].vh, 8);
        memcpy(o + 24, &g->o[i].step, 4);
    }
    *len = need;
    return 0;
}

void kt_corr_track(struct kt_corr *c, int on)
{
    c->track = on;
}

int kt_corr_checkpoint(struct kt_corr *c, kt_corr_put_fn put, kt_corr_del_fn del, void *ctx)
{
    int rc = 0;
    /* deletions first: a key evicted and seen again since holds its new state */
    for (size_t i = 0; i < c->nrm && rc == 0; i++) {
        rc = del(ctx, c->rm[i].def, (struct kt_str){c->rm[i].key, c->rm[i].len});
    }
    for (struct group *g = c->dirty; g != NULL && rc == 0; g = g->dnext) {
        const struct cdef *cd = &c->defs[g->def];
        size_t len = 0;
        struct kt_corr_state s = {
            .def = g->def, .key = {g->key, g->klen}, .first_ts = g->first, .last_ts = g->clock};
        if (cd->d.kind != KT_CORR_FIRST_SEEN) {
            if ((rc = blob_of(c, cd, g, &len)) != 0) {
                break;
            }
            s.blob = c->blob;
            s.len = len;
        }
        rc = put(ctx, &s);
    }
    if (rc != 0) {
        return rc;
    }
    kt_corr_checkpoint_done(c);
    return 0;
}

void kt_corr_checkpoint_done(struct kt_corr *c)
{
    while (c->dirty != NULL) {
        unmark_dirty(c, c->dirty);
    }
    for (size_t i = 0; i < c->nrm; i++) {
        free(c->rm[i].key);
    }
    c->nrm = 0;
}

int kt_corr_restore(struct kt_corr *c, const struct kt_corr_state *s)
{
    if (s->def >= c->n) {
        return 0;
    }
    struct cdef *cd = &c->defs[s->def];
    const unsigned char *p = s->blob;
    uint32_t n = 0;
    uint16_t kind = 0;
    int64_t clock = s->last_ts;
    if (cd->d.kind != KT_CORR_FIRST_SEEN) {
        if (p == NULL || s->len < BLOB_HEAD || p[0] != BLOB_VERSION) {
            return 0;
        }
        memcpy(&kind, p + 2, 2);
        memcpy(&n, p + 4, 4);
        memcpy(&clock, p + 8, 8);
        if (kind != cd->d.kind || n > cd->cap || s->len != BLOB_HEAD + (size_t)n * BLOB_OBS) {
            return 0; /* written for another definition of the rule: start it over */
        }
    }
    int fresh = 0;
    struct group *g = group_get(c, cd, s->key, INT64_MIN, &fresh);
    if (g == NULL) {
        return KT_ENOMEM;
    }
    g->clock = clock;
    g->first = s->first_ts;
    g->n = 0;
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *o = p + BLOB_HEAD + (size_t)i * BLOB_OBS;
        struct obs ob;
        memcpy(&ob.ts, o, 8);
        memcpy(&ob.ref, o + 8, 8);
        memcpy(&ob.vh, o + 16, 8);
        memcpy(&ob.step, o + 24, 4);
        if (cd->d.kind == KT_CORR_SEQUENCE && ob.step >= cd->d.steps) {
            continue;
        }
        insert_sorted(g, ob);
    }
    /* what was just read is what is stored: nothing to write back */
    unmark_dirty(c, g);
    return 0;
}

int kt_corr_has(const struct kt_corr *c, size_t def, struct kt_str key)
{
    if (def >= c->n) {
        return 0;
    }
    const struct cdef *cd = &c->defs[def];
    uint64_t h = kt_hash64(key.ptr != NULL ? key.ptr : "", key.len);
    for (struct group *g = cd->buckets[h & (cd->nbuckets - 1)]; g != NULL; g = g->hnext) {
        if (g->h == h && g->klen == key.len && memcmp(g->key, key.ptr, key.len) == 0) {
            return 1;
        }
    }
    return 0;
}

void kt_corr_set_start(struct kt_corr *c, size_t def, int64_t t0)
{
    if (def < c->n && (c->defs[def].t0 == INT64_MIN || t0 < c->defs[def].t0)) {
        c->defs[def].t0 = t0;
    }
}

void kt_corr_clear(struct kt_corr *c)
{
    for (size_t i = 0; i < c->n; i++) {
        struct cdef *cd = &c->defs[i];
        while (cd->oldest != NULL) {
            remove_group(c, cd, cd->oldest);
        }
        cd->t0 = INT64_MIN;
    }
    kt_corr_checkpoint_done(c);
}
