/*
 * retain.h: retention. What is older than a horizon is deleted, in small transactions on a
 * connection of its own, so ingest waits at most for one of them.
 *
 * Two horizons: events (their raw JSON, rejects, first_seen keys and correlation state) and
 * alerts (their links and suppression groups), by event time (rejects by the time they were
 * stored). An event older than the events horizon is kept while an alert newer than the
 * alerts horizon names it, as its own event or as evidence (alert_events), so alerts can be
 * kept longer than events with what they link to. Deleted pages go to SQLite's free list and
 * are reused by new rows: at a steady rate the file stops growing (it does not shrink).
 */
#ifndef KT_STORE_RETAIN_H
#define KT_STORE_RETAIN_H

#include <stdint.h>

struct kt_prune_stats {
    uint64_t events;     /* event rows deleted (with their raw JSON) */
    uint64_t alerts;     /* alert rows deleted (with their alert_events links) */
    uint64_t kept;       /* old events kept as evidence of alerts still retained */
    uint64_t rejects;    /* reject rows deleted */
    uint64_t first_seen; /* first_seen keys deleted (not seen since the horizon) */
    uint64_t corr_state; /* correlation groups deleted (no event since the horizon) */
    uint64_t chunks;     /* write transactions used */
};

/*
 * One pass over the database at db_path: delete events older than events_before and alerts
 * older than alerts_before (microseconds since the epoch; alerts_before <= events_before),
 * in transactions of at most chunk rows (0: 1000), pausing pause_ms between them. *stop,
 * when not NULL, ends the pass early between transactions. Adds to *st. 0, or KT_EIO
 * (errstr says why; what was deleted before stays deleted).
 */
int kt_prune(const char *db_path, int64_t events_before, int64_t alerts_before, int chunk,
             int pause_ms, const volatile int *stop, struct kt_prune_stats *st, char *errstr,
             size_t errlen);

/* Background retention for a long-running sink: a pass at start, then every interval. */
struct kt_retain;
struct kt_retain_opts {
    int64_t events_us; /* keep this long (> 0) */
    int64_t alerts_us; /* keep alerts this long (0: events_us; never less than events_us) */
    int interval_s;    /* between passes (0: 600) */
};
/* Start the thread (the database must exist). 0, KT_EINVAL or KT_ENOMEM. */
int kt_retain_start(const char *db_path, const struct kt_retain_opts *o, struct kt_retain **out);
/* Totals since start. Thread-safe. */
void kt_retain_stats(struct kt_retain *r, struct kt_prune_stats *out);
/* Stop (ends a pass between transactions) and free. Accepts NULL. */
void kt_retain_stop(struct kt_retain *r);

#endif
