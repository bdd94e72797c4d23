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
    int keep_raw_all;      /* keep raw JSON for every event, not only flagged ones */
    int sync_full;         /* PRAGMA synchronous=FULL instead of NORMAL (WAL) */
    uint64_t max_db_bytes; /* refuse to grow the database file past this (max_page_count); 0: no
                              limit. A write that needs more fails as a full disk would */
    int retry_ms;          /* how long the writer retries a write that failed for a transient cause
                              (full disk, lock, I/O error) before it stops; 0: 60 s, negative: never */
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
    /* the write-ahead log, as of the last commit or checkpoint (totals only) */
    uint64_t wal_bytes;      /* log frames not yet reset, in bytes: what the -wal file holds */
    uint64_t wal_blocked;    /* 1 while writes wait for a reader to let the WAL restart */
    uint64_t wal_blocked_us; /* time writes waited so, since open (microseconds) */
    uint64_t write_failures; /* transactions that failed (each attempt), since open */
};

/*
 * Open (creating and migrating as needed) the database at path, and prove it writable with a
 * one-page write (a read-only file, directory or filesystem is refused here, not at the first
 * batch). errstr receives a one-line reason naming path on failure. Returns 0, KT_EIO (cannot
 * open or write, not a ktrail database, newer schema, already past max_db_bytes) or
 * KT_ENOMEM.
 */
int kt_store_open(const char *path, const struct kt_store_opts *opts, struct kt_store **out,
                  char *errstr, size_t errlen);
/* Close; accepts NULL. */
void kt_store_close(struct kt_store *s);

/*
 * Write b in one transaction (see above) and commit. Borrows b. Adds what was written to
 * *delta when not NULL. Returns 0, KT_EFULL (the disk, or max_db_bytes, is full), KT_EIO
 * (any other database failure) or KT_EINVAL (b is inconsistent: records without events, an
 * alert naming no event); nothing of b is stored on failure. kt_store_last_error() says why.
 */
int kt_store_write(struct kt_store *s, struct kt_batch *b, struct kt_store_stats *delta);

/* The last failed transaction's reason, one line (SQLite's message, and the size limit when
 * one was reached), into buf; empty when none failed. */
void kt_store_last_error(struct kt_store *s, char *buf, size_t len);

/*
 * Check the database at path without changing it: SQLite's integrity check (b-tree
 * structure, free pages, index entries against their rows) and the schema (a ktrail
 * database, a version this build knows, every statement the store uses still prepares).
 * report(ctx, line) gets one line per problem found (at most about 100). Returns 0 when
 * sound, KT_EPARSE when problems were reported, KT_EIO when the file cannot be read as a
 * SQLite database at all (errstr says why).
 */
int kt_store_check(const char *path, void (*report)(void *ctx, const char *line), void *ctx,
                   char *errstr, size_t errlen);

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
 *
 * No batch is ever committed after one that failed: a source's checkpoint in a later batch
 * would pass over the failed batch's records. A failure with a transient cause (a full disk,
 * a busy database, an I/O error) is retried with backoff, holding every later batch (more
 * backpressure), for the store's retry budget; past it, or for any other cause, the writer
 * fails that batch and every batch after it (status != 0: no source acknowledges them), and
 * drain() reports the error. Writes also wait, before a transaction, while the WAL is past
 * its bound and a reader keeps it from restarting (see store.c).
 */
struct kt_writer;
int kt_writer_create(struct kt_store *s, size_t depth, struct kt_writer **out);
int kt_writer_submit(struct kt_writer *w, struct kt_batch *b);
/* Wait until every submitted batch is done; returns the first write error, or 0. From here
 * on, writes no longer wait for the WAL (the run is ending: what is queued is written). */
int kt_writer_drain(struct kt_writer *w);
/* The run is being stopped (a signal): writes no longer wait for the WAL, and a failed
 * write is not retried (it fails with every later batch: the position is kept). */
void kt_writer_stop(struct kt_writer *w);
/* Drain, stop the thread and free; accepts NULL. */
void kt_writer_destroy(struct kt_writer *w);

#endif
