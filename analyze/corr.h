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
 * ago is evicted (counted), never a failure.
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

#endif
