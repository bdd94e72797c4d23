/*
 * store_int.h: what store.c, dict.c and the store's tests share, and nothing else includes.
 *
 * The connection tuning is a struct so that tests can force the rare paths (a tiny dictionary
 * cache that must be evicted, a short busy timeout so a locked database fails fast) and a
 * benchmark can compare settings, without globals and without widening store.h.
 */
#ifndef KT_STORE_STORE_INT_H
#define KT_STORE_STORE_INT_H

#include <pthread.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store.h"

/* Connection settings; store_tuning_default() gives what kt_store_open() uses. */
struct store_tuning {
    int busy_ms;             /* busy_timeout: how long to wait for another writer's lock */
    int cache_kib;           /* page cache of the writer connection, KiB */
    int page_size;           /* bytes per page, applied when the database is created */
    long long mmap_bytes;    /* mmap_size; 0 reads through the page cache only */
    int ckpt_pages;          /* WAL pages after a commit that wake the checkpointer thread */
    int ckpt_hard_pages;     /* WAL pages past which the writer checkpoints and restarts the
                                WAL between commits, when no reader holds an older snapshot */
    int wal_max_pages;       /* WAL pages past which writes wait until the WAL can restart */
    int retry_ms;            /* how long the writer retries a transiently failed batch */
    size_t dict_max_entries; /* dictionary cache: entries before it is cleared */
    size_t dict_max_bytes;   /* dictionary cache: string bytes before it is cleared */
    size_t max_text;         /* longest raw JSON kept; 0: SQLite's limit (SQLITE_LIMIT_LENGTH) */
};

void store_tuning_default(struct store_tuning *t);

/*
 * Raw JSON in compressed blocks (rawpack.c): a transaction adds the JSON it keeps, and
 * flushes a block (one raw_blocks row, one raw row per event naming its span) when it is full
 * and before commit. SQL_RAW_BLOCK_INSERT and SQL_RAW_INSERT are the statements. A full block
 * is compressed on the packer's own thread while the writer goes on; the writer inserts it
 * (SQLite stays on the writer's thread) at a later flush, oldest first.
 */
struct rawpack_ent {
    int64_t event_id;
    uint32_t off, len; /* the event's span in the block */
};
struct rawpack_block {
    struct kt_buf text; /* the JSON of the block, concatenated */
    struct kt_buf z;    /* compressed (the compressor's), or empty: keep text as it is */
    struct rawpack_ent *ents;
    size_t n, cap;
    int state; /* RAW_FREE, RAW_FILLING, RAW_QUEUED, RAW_DONE (rawpack.c) */
};
enum { RAWPACK_BLOCKS = 3 }; /* one being filled, two in the compressor's hands */
struct rawpack {
    struct rawpack_block b[RAWPACK_BLOCKS]; /* a ring: b[fill] is being filled, the ones before
                                               it (from oldest) are queued or compressed */
    size_t fill, oldest, queued;            /* queued: blocks handed over, not yet inserted */
    pthread_t thread;                       /* the compressor, started at the first block */
    pthread_mutex_t mu;                     /* guards state and quit, once started */
    pthread_cond_t cv;                      /* a block was queued or compressed */
    int started, quit;
};
/* Add one event's JSON (copied): 0 or KT_ENOMEM. */
int rawpack_add(struct rawpack *p, int64_t event_id, const char *json, size_t len);
/* The block should be flushed before more is added. */
int rawpack_full(const struct rawpack *p);
/* Hand the block being filled to the compressor and insert the blocks it has finished
 * (waiting for one only when all are taken); with all set, wait for every block and insert
 * them: before commit. 0, KT_EIO, KT_ENOMEM. */
int rawpack_flush(struct rawpack *p, sqlite3_stmt *block, sqlite3_stmt *raw, int all);
/* Forget what was added (after a rollback). */
void rawpack_clear(struct rawpack *p);
void rawpack_free(struct rawpack *p);
/* Register sqlar_uncompress(Z, N) on db, as the sqlite3 shell has it, so that v_events.raw
 * reads in ktrail's own connections too. 0 or KT_EIO. */
int kt_raw_register(sqlite3 *db);

/* kt_store_open() with explicit tuning (copied). Same contract otherwise. */
int store_open_tuned(const char *path, const struct kt_store_opts *opts,
                     const struct store_tuning *t, struct kt_store **out, char *errstr,
                     size_t errlen);

/*
 * The dictionary: string -> strings.id, through a bounded in-memory cache in front of the
 * strings table. Misses look the string up, and insert it when new, with the statements
 * given to dict_init (borrowed; they must outlive the dictionary). Cached ids are only true
 * once the transaction that created them commits: after a rollback, call dict_forget().
 */
struct dict_entry;
struct dict {
    struct dict_entry *slots; /* open addressing, linear probing; hash 0 marks a free slot */
    size_t mask;              /* slot count - 1 (a power of two) */
    size_t n;                 /* entries cached */
    size_t bytes;             /* bytes of their strings, NULs included */
    size_t max_entries;       /* clear the cache before exceeding this */
    size_t max_bytes;         /* or before its strings exceed this */
    struct kt_arena strs;     /* copies of the cached strings */
    sqlite3 *db;              /* for last_insert_rowid and error messages */
    sqlite3_stmt *get;        /* SQL_DICT_GET */
    sqlite3_stmt *add;        /* SQL_DICT_ADD */
    uint64_t hits;            /* lookups answered from memory */
    uint64_t misses;          /* lookups that went to SQL */
    uint64_t clears;          /* times the cache was full and emptied */
};

/* 0, or KT_ENOMEM. max_entries and max_bytes of 0 are taken as 1. */
int dict_init(struct dict *d, sqlite3 *db, sqlite3_stmt *get, sqlite3_stmt *add, size_t max_entries,
              size_t max_bytes);
/* Id of the len bytes at s, adding the string to the strings table when new. 0 or KT_EIO. */
int dict_id(struct dict *d, const char *s, size_t len, int64_t *id);
/* Drop every cached id (they may name rows of a rolled-back transaction). */
void dict_forget(struct dict *d);
void dict_free(struct dict *d);

/*
 * Write n batches (borrowed) in one transaction: the writer thread's group commit. Every
 * index page a transaction dirties is written to the WAL once per commit, and the
 * (user, ts) index alone has a hot page per active user, so two batches in one commit cost
 * much less than two commits. When the transaction fails, the batches are written one by one
 * in order up to the first that fails: status[i] (n entries) is 0 for each committed batch
 * and the failure for that one and every later one (not attempted: none may commit past a
 * failed batch). *committed is the count committed. Returns the failure, or 0.
 */
int store_write_group(struct kt_store *s, struct kt_batch *const *bs, size_t n, int *status,
                      size_t *committed);

/* Whether the last failed transaction failed for a cause that may pass (a full disk or
 * database, a lock held by another process, an I/O error), so retrying it makes sense. */
int store_failure_transient(struct kt_store *s);

/* The retry budget of the store's tuning, in milliseconds. */
int store_retry_ms(const struct kt_store *s);

/*
 * Make room in the WAL before a transaction: past ckpt_hard_pages, checkpoint it and restart
 * it from its beginning when no reader holds an older snapshot. 0 when a transaction may
 * go, KT_EFULL when the WAL is past wal_max_pages and a reader keeps it from restarting: the
 * caller waits and asks again (warned on stderr with the cause, counted in the stats).
 * Call with no transaction open (the writer thread, between transactions).
 */
int store_wal_room(struct kt_store *s);
/* The writer no longer waits for the WAL (store_wal_room had said KT_EFULL): end the
 * blocked interval in the stats; restarted is 0 when it goes on past the bound (stopping). */
void store_wal_unblocked(struct kt_store *s, int restarted);

/* What the store did inside, for tests and measurements. */
struct store_counters {
    uint64_t dict_hits;    /* dictionary lookups answered from memory */
    uint64_t dict_misses;  /* dictionary lookups that went to SQL */
    uint64_t dict_clears;  /* times the dictionary cache was full and emptied */
    uint64_t commits;      /* transactions committed (a group commit is one) */
    uint64_t wal_restarts; /* times the writer restarted the WAL past ckpt_hard_pages */
};
void store_counters(struct kt_store *s, struct store_counters *out);

#endif
