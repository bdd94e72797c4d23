/*
 * store.h: durability. The SQLite schema, its migrations, the dictionary of repeated strings,
 * checkpoints and the single writer.
 *
 * A batch is written in one transaction: its events (INSERT OR IGNORE on (ts, audit_id,
 * stage): see store_sql.h for why the time is part of the key), the raw JSON of events
 * flagged KT_EV_KEEP_RAW or alerted on, its rejects, its alerts and the source's checkpoint.
 * Nothing in this header exposes SQLite.
 */
#ifndef KT_STORE_STORE_H
#define KT_STORE_STORE_H

#include "../ingest/batch.h"

struct kt_store;

struct kt_store_opts {
    int keep_raw_all; /* keep raw JSON for every event, not only flagged ones */
    int sync_full;    /* PRAGMA synchronous=FULL instead of NORMAL (WAL) */
};

/* Counters, cumulative per store, also returned per batch. */
struct kt_store_stats {
    uint64_t events;     /* events inserted */
    uint64_t duplicates; /* events already present (same ts, audit_id, stage) */
    uint64_t rejects;    /* records kept in rejects */
    uint64_t alerts;     /* alerts inserted (a rule already stored for the event not counted) */
    uint64_t batches;    /* batches committed (the writer may commit several in one transaction) */
    /* correlations, as of the last commit (totals only: not summed per batch) */
    uint64_t corr_groups;  /* groups held in memory */
    uint64_t corr_bytes;   /* memory they hold, about */
    uint64_t corr_evicted; /* groups evicted by max_groups since open */
    uint64_t corr_expired; /* groups dropped since open, their window having passed */
    uint64_t corr_late;    /* observations dropped for arriving later than their lateness */
};

/*
 * Open (creating and migrating as needed) the database at path. errstr receives a one-line
 * reason on failure. Returns 0, KT_EIO (cannot open, not a ktrail database, newer schema) or
 * KT_ENOMEM.
 */
int kt_store_open(const char *path, const struct kt_store_opts *opts, struct kt_store **out,
                  char *errstr, size_t errlen);
/* Close; accepts NULL. */
void kt_store_close(struct kt_store *s);

/*
 * Write b in one transaction (see above) and commit. Borrows b. Adds what was written to
 * *delta when not NULL. Returns 0, KT_EIO (rolled back: nothing of b is stored) or KT_EINVAL
 * (b is inconsistent: records without events, an alert naming no event; nothing stored).
 */
int kt_store_write(struct kt_store *s, struct kt_batch *b, struct kt_store_stats *delta);

/*
 * Run the correlations of rs (borrowed: it must outlive the store) in the writer: restores
 * their state stored by earlier runs, then each transaction feeds the engine the hits of the
 * events it inserts, stores firings as alerts with their alert_events, and checkpoints the
 * state it changed. A rule set without correlations, or the one already attached, is a no-op.
 * Call before writing. 0, KT_EIO or KT_ENOMEM (errstr says why).
 */
struct kt_ruleset;
int kt_store_attach_rules(struct kt_store *s, const struct kt_ruleset *rs, char *errstr,
                          size_t errlen);

/* A kt_ckpt_lookup_fn over the ckpt_file table; ctx is the struct kt_store. Thread-safe. */
int kt_store_ckpt_lookup(void *ctx, uint64_t fingerprint, struct kt_ckpt_file *out);

/* The next offset stored for a Kafka partition (the ckpt_kafka table; a kt_kafka_lookup_fn of
 * ingest/kafka.h, ctx is the struct kt_store). Thread-safe: the source calls it from its
 * rebalance callback while the writer writes. 0, KT_ENOENT when none is stored, or KT_EIO. */
int kt_store_kafka_lookup(void *ctx, const char *topic, int32_t partition, int64_t *next_offset);

/* Totals since open. */
void kt_store_stats(struct kt_store *s, struct kt_store_stats *out);

/* The schema version this build writes (PRAGMA user_version). */
int kt_store_schema_version(void);

/*
 * The writer: one thread that owns all writes. submit() queues a batch, blocking while
 * `depth` batches wait (that is the backpressure); after the batch's transaction the writer
 * calls b->on_done(b, status, b->on_done_ctx) from its thread, in submission order. Batches
 * that queued up while it was busy are committed together in one transaction (each one still
 * all or nothing with its checkpoint; a failed group is retried batch by batch).
 */
struct kt_writer;
int kt_writer_create(struct kt_store *s, size_t depth, struct kt_writer **out);
int kt_writer_submit(struct kt_writer *w, struct kt_batch *b);
/* Wait until every submitted batch is done; returns the first write error, or 0. */
int kt_writer_drain(struct kt_writer *w);
/* Drain, stop the thread and free; accepts NULL. */
void kt_writer_destroy(struct kt_writer *w);

#endif
