/*
 * corr.h: stateful detection across events: thresholds (count), distinct counts (distinct),
 * ordered or unordered sequences (sequence) and first sightings (first_seen), on event time.
 *
 * The engine knows nothing of rules or JSON: the caller feeds it, in input order, one
 * observation per (correlation, step) an event matched: the group key the correlation is
 * keyed by (the `by` fields, joined), the value it counts distinct (distinct), the event time
 * and an opaque reference to the event (the store's row id). When a correlation completes,
 * feed() returns a firing with the references of every contributing event.
 *
 * Windows run on event time: an observation advances its group's clock; observations older
 * than the group's newest minus the window are forgotten; an observation that arrives later
 * than `lateness` behind the group's newest is dropped (counted), anything later than that
 * still counts, in its place. After a firing the group starts over, so one burst alerts once.
 *
 * Memory is bounded twice: a group holds at most `threshold` observations (or one per step),
 * and a correlation holds at most `max_groups` groups; past that, the group updated longest
 * ago is evicted (counted), never a failure. Groups whose window has passed for good (their
 * clock more than window + lateness behind a new group's event) are dropped as new groups
 * come (counted as expired), so memory follows the active groups, not every key ever seen.
 */
#ifndef KT_ANALYZE_CORR_H
#define KT_ANALYZE_CORR_H

#include "../ingest/kt.h"

enum kt_corr_kind { KT_CORR_COUNT, KT_CORR_DISTINCT, KT_CORR_SEQUENCE, KT_CORR_FIRST_SEEN };

struct kt_corr_def {
    int kind;            /* enum kt_corr_kind */
    int64_t window_us;   /* count, distinct, sequence: the window */
    int64_t lateness_us; /* how far behind its group's clock an observation still counts */
    uint32_t threshold;  /* count, distinct: observations (values) that fire; >= 1 */
    uint32_t steps;      /* sequence: steps (2 to 16) */
    int ordered;         /* sequence: steps must come in order */
    int64_t learning_us; /* first_seen: nothing fires until this long after the first event */
    int64_t lookback_us; /* first_seen: a key unseen this long is new again (0: never) */
    size_t max_groups;   /* groups (keys) kept at most; default 100000 */
};

/* A completed correlation. refs and keys point into the engine: valid until the next feed. */
struct kt_corr_fire {
    size_t def;           /* which correlation */
    struct kt_str key;    /* its group key */
    uint32_t count;       /* observations (count), distinct values (distinct), steps */
    const uint64_t *refs; /* the contributing events, oldest first */
    size_t nrefs;         /* how many */
    int64_t first_ts;     /* event time of the first contributing event */
    int64_t last_ts;      /* and of the last */
};

struct kt_corr_stats {
    uint64_t groups;  /* groups held now, all correlations */
    uint64_t evicted; /* groups evicted by max_groups */
    uint64_t expired; /* groups dropped once their window had passed for good */
    uint64_t late;    /* observations dropped for arriving later than lateness */
    uint64_t fired;   /* firings */
    uint64_t bytes;   /* memory held by the state, about */
};

struct kt_corr;

/* An engine for n correlations (copied). NULL on allocation failure or a bad definition. */
struct kt_corr *kt_corr_create(const struct kt_corr_def *defs, size_t n);
void kt_corr_destroy(struct kt_corr *c);

/*
 * Observe: correlation def's step (0 unless a sequence) matched the event ref at time ts, in
 * group key, with value (distinct; ignored otherwise). Returns 1 and fills *fire when the
 * correlation completed, 0 when not, KT_ENOMEM.
 */
int kt_corr_feed(struct kt_corr *c, size_t def, uint32_t step, struct kt_str key,
                 struct kt_str value, int64_t ts, uint64_t ref, struct kt_corr_fire *fire);

void kt_corr_stats(const struct kt_corr *c, struct kt_corr_stats *out);
/* The most memory the state can hold (what stats.bytes counts) with every correlation at
 * max_groups and keys of keylen bytes: the cap the bounds imply. */
uint64_t kt_corr_cap_bytes(const struct kt_corr *c, size_t keylen);

/*
 * Durability. The state of one group as the caller stores it: count, distinct and sequence
 * groups as an opaque blob (their observations and clock), first_seen keys as their first
 * and last sighting (no blob), so that a first_seen table can be read by people.
 */
struct kt_corr_state {
    size_t def;        /* the correlation */
    struct kt_str key; /* the group key */
    const void *blob;  /* count, distinct, sequence: the serialized group; else NULL */
    size_t len;        /* its length */
    int64_t first_ts;  /* first_seen: event time first seen */
    int64_t last_ts;   /* event time last seen (the group's clock) */
};
/* Keep track of what changed, for checkpoints (off by default: an engine nobody checkpoints
 * must not remember its evictions). */
void kt_corr_track(struct kt_corr *c, int on);
typedef int (*kt_corr_put_fn)(void *ctx, const struct kt_corr_state *s);
typedef int (*kt_corr_del_fn)(void *ctx, size_t def, struct kt_str key);

/*
 * Hand every group changed since the last checkpoint to put (borrowed views, valid during
 * the call) and every group evicted since to del (first_seen keys are never deleted: their
 * stored row stays the truth, memory is a cache of it), then forget the changes. The first
 * non-zero return of a callback stops it and is returned; nothing is forgotten then.
 */
int kt_corr_checkpoint(struct kt_corr *c, kt_corr_put_fn put, kt_corr_del_fn del, void *ctx);
/* Forget the changes without writing them (they were written another way). */
void kt_corr_checkpoint_done(struct kt_corr *c);
/*
 * Put one stored group back (as written by checkpoint; s borrowed). A blob that does not fit
 * the correlation's current definition (another kind, too many observations) is dropped: the
 * group starts over. Restoring more than max_groups evicts as feeding does. 0 or KT_ENOMEM.
 */
int kt_corr_restore(struct kt_corr *c, const struct kt_corr_state *s);
/* Is key's group in memory? (first_seen: the caller looks a missing key up in its store.) */
int kt_corr_has(const struct kt_corr *c, size_t def, struct kt_str key);
/* first_seen: the learning period started at t0 (the earliest stored sighting). */
void kt_corr_set_start(struct kt_corr *c, size_t def, int64_t t0);
/* Drop every group and the learning starts, e.g. to restore again after a rollback. */
void kt_corr_clear(struct kt_corr *c);

#endif
