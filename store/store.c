/*
 * store.c: the SQLite store (see store.h): open, identify and migrate the database, write
 * batches in transactions, look checkpoints up, keep the WAL checkpointed.
 *
 * One connection does all reading and writing, guarded by a mutex: the writer thread holds it
 * for a transaction, kt_store_ckpt_lookup() for one SELECT (a source opening a file waits at
 * most one transaction). Statements are prepared once and every parameter is bound on every
 * row. Repeated strings go through the dictionary (dict.c). A second connection, on its own
 * thread, copies the WAL into the database (PASSIVE checkpoints, woken by the writer's WAL
 * hook), so the writer never waits for the checkpoint's writes and fsyncs. A passive
 * checkpoint cannot finish while commits keep arriving, and the WAL only restarts from its
 * beginning after a finished one, so under sustained load the writer itself checkpoints
 * (RESTART, never waiting) between two transactions once the WAL passes ckpt_hard_pages. A
 * reader holding an older snapshot (an analyst's open BEGIN; SELECT) keeps any checkpoint
 * from copying past that snapshot and the WAL from restarting; past wal_max_pages the writer
 * then waits for it (store_wal_room) instead of growing the WAL without end.
 *
 * A failed transaction's SQLite code is kept (note_failure), so the writer can tell a cause
 * that may pass (full, busy, I/O) from one that will not, and the user is told which.
 *
 * Measured on the project's 2-core machine (one run each, runs vary by about 5%):
 * - ktrail replay of the generated corpus, storage only: 141,000 to 145,000 events/s for
 *   200,000 events, 121,000 for 1,000,000. A harsher synthetic load (2,000 users and agents,
 *   10,000 object names, random audit IDs; the writer alone, batches of 4096): 129,000.
 * - Index costs on that synthetic load (writer alone): events_user_ts 2.5 us an event (the
 *   rate goes from 189,000 without it to 129,000), events_resource_verb_ts 2.3 us (182,000
 *   to 129,000), both 318,000 to 129,000; alerts_ts and alerts_rule_ts nothing measurable
 *   at 200 alerts a batch. Appending to an index is cheap; these two insert at one hot page
 *   per user, or per (resource, verb), and each dirty page is written to the WAL at every
 *   commit. On the real pipeline: 162,000 without events_user_ts, 155,000 without
 *   events_resource_verb_ts. An index on (resource, ts) instead measured 157,000.
 * - The same load with the unique key (audit_id, stage) plus an index on ts: 83,000 at
 *   200,000 events and 40,000 at 1,000,000 (random UUIDs dirty a page per insert), against
 *   113,000 and 100,000 with the ts-led key.
 * - With a producer thread spending 4 us an event (as decoding does) and the writer thread,
 *   200,000 events: checkpoints on the writer's thread 68,000, on their own thread 107,000;
 *   then group commit 113,000 at queue depth 2, 134,000 at depth 4. page_size 8192 to 65536,
 *   a 64 MiB cache and mmap did not help at 1,000,000 events.
 * - WAL, ktrail serve under loadgen at 20,000 events/s (8 connections, 100 events a
 *   request): 56 MB at most without readers, the file truncated to 64 MiB on restarts; with a
 *   sqlite3 reader holding BEGIN; SELECT count(*) FROM events for 60 s: 135 MB (the 128 MiB
 *   bound plus one group commit) after 2 s, then flat, writes waiting; the first request
 *   after the reader let go took 0.22 s, the next ones 24 to 30 ms. Without the bound: 3.7 GB
 *   in 60 s, and 5.5 s for a request after the reader let go.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../analyze/alert.h"
#include "../analyze/event.h"
#include "../analyze/rules.h"
#include "store_int.h"
#include "store_sql.h"

enum { SCHEMA_VERSION = 7 };

/* migrations[0] makes a new database (version 0, empty) at SCHEMA_VERSION in one step; for
 * i > 0, migrations[i] takes user_version from i to i + 1. */
static const char *const migrations[SCHEMA_VERSION] = {SQL_SCHEMA,    SQL_SCHEMA_V2, SQL_SCHEMA_V3,
                                                       SQL_SCHEMA_V4, SQL_SCHEMA_V5, SQL_SCHEMA_V6,
                                                       SQL_SCHEMA_V7};

enum { REJECT_TEXT = 1024 }; /* bytes of a rejected record kept in rejects.text */

/* ids[] marker: the event was a duplicate whose row id is not looked up yet. */
#define ID_UNKNOWN (-1)

/* Statements, prepared once. */
enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_DICT_GET,
    ST_DICT_ADD,
    ST_EVENT,
    ST_EVENT_ID,
    ST_RAW,
    ST_RAW_BLOCK,
    ST_RAW_EXISTS,
    ST_ALERT,
    ST_REJECT,
    ST_CKPT_UPSERT,
    ST_CKPT_GET,
    ST_CKPT_KAFKA_UPSERT,
    ST_CKPT_KAFKA_GET,
    ST_ALERT_EVENT,
    ST_ALERT_REQUEST,
    ST_ALERT_EXISTS,
    ST_ALERT_MERGE,
    ST_GROUP_GET,
    ST_GROUP_PUT,
    ST_CORR_PUT,
    ST_CORR_DEL,
    ST_CORR_LOAD,
    ST_SEEN_PUT,
    ST_SEEN_GET,
    ST_SEEN_LOAD,
    ST_SEEN_START,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = SQL_BEGIN,
    [ST_COMMIT] = SQL_COMMIT,
    [ST_ROLLBACK] = SQL_ROLLBACK,
    [ST_DICT_GET] = SQL_DICT_GET,
    [ST_DICT_ADD] = SQL_DICT_ADD,
    [ST_EVENT] = SQL_EVENT_INSERT,
    [ST_EVENT_ID] = SQL_EVENT_ID,
    [ST_RAW] = SQL_RAW_INSERT,
    [ST_RAW_BLOCK] = SQL_RAW_BLOCK_INSERT,
    [ST_RAW_EXISTS] = SQL_RAW_EXISTS,
    [ST_ALERT] = SQL_ALERT_INSERT,
    [ST_REJECT] = SQL_REJECT_INSERT,
    [ST_CKPT_UPSERT] = SQL_CKPT_UPSERT,
    [ST_CKPT_GET] = SQL_CKPT_GET,
    [ST_CKPT_KAFKA_UPSERT] = SQL_CKPT_KAFKA_UPSERT,
    [ST_CKPT_KAFKA_GET] = SQL_CKPT_KAFKA_GET,
    [ST_ALERT_EVENT] = SQL_ALERT_EVENT_INSERT,
    [ST_ALERT_REQUEST] = SQL_ALERT_REQUEST,
    [ST_ALERT_EXISTS] = SQL_ALERT_EXISTS,
    [ST_ALERT_MERGE] = SQL_ALERT_MERGE,
    [ST_GROUP_GET] = SQL_GROUP_GET,
    [ST_GROUP_PUT] = SQL_GROUP_PUT,
    [ST_CORR_PUT] = SQL_CORR_PUT,
    [ST_CORR_DEL] = SQL_CORR_DEL,
    [ST_CORR_LOAD] = SQL_CORR_LOAD,
    [ST_SEEN_PUT] = SQL_SEEN_PUT,
    [ST_SEEN_GET] = SQL_SEEN_GET,
    [ST_SEEN_LOAD] = SQL_SEEN_LOAD,
    [ST_SEEN_START] = SQL_SEEN_START,
};

struct kt_store {
    sqlite3 *db;                  /* the one connection */
    pthread_mutex_t mu;           /* serializes all use of db and of the fields below it */
    sqlite3_stmt *st[ST_COUNT];   /* prepared statements */
    struct dict dict;             /* string -> strings.id */
    struct kt_store_opts opts;    /* copy of the options */
    int64_t *ids;                 /* per record of the batch being written: events.id */
    unsigned char *dup;           /* per record: 1 when its event was already stored */
    unsigned char *rawq;          /* per record: its JSON is in the block being filled */
    struct rawpack raw;           /* the block of raw JSON being filled */
    size_t capids;                /* ids and dup allocated */
    int64_t *origin_ids;          /* per origin of the batch being written: strings.id */
    size_t caporigins;            /* origin_ids allocated */
    char *join;                   /* scratch for lists joined with ',' */
    size_t capjoin;               /* its size */
    uint64_t commits;             /* transactions committed */
    size_t max_text;              /* longest text SQLite accepts (SQLITE_LIMIT_LENGTH) */
    pthread_mutex_t smu;          /* guards totals, so stats never wait for a transaction */
    struct kt_store_stats totals; /* since open */

    /* correlations (kt_store_attach_rules): fed by the writer inside each transaction */
    const struct kt_ruleset *rules; /* borrowed, or NULL */
    struct kt_corr *corr;           /* the engine, or NULL when the rules have none */
    struct kt_matcher *cm;          /* renders firings (the writer's own matcher) */
    const char **corr_name;         /* per correlation: its name (the rule set's) */
    int *corr_kind;                 /* per correlation: enum kt_corr_kind */
    size_t ncorr;                   /* count */
    int64_t now;                    /* wall clock of the transaction, for updated_at */

    /* failures: what the writer needs to decide on a retry, and what the user is told */
    int busy_ms;        /* the connection's busy timeout */
    int retry_ms;       /* the writer's retry budget (store_tuning) */
    int64_t max_pages;  /* max_page_count in force when max_db_bytes was given, else 0 */
    int last_code;      /* SQLite's extended code of the last failed transaction */
    char last_err[256]; /* its one-line reason, "" when none failed */
    uint64_t failures;  /* failed transactions since open (under smu: stats) */

    /* the WAL's bound (see wal_hook and store_wal_room); under mu unless said otherwise */
    int64_t page_size;         /* bytes per page */
    int wal_pages;             /* frames in the WAL after the last commit (0 after a restart) */
    int wal_max_pages;         /* past it, writes wait for the WAL to restart */
    int64_t wal_clean_us;      /* wall time the WAL was last wholly checkpointed (atomic) */
    int64_t wal_blocked_since; /* mono time writes began waiting for the WAL, 0 when not */
    int64_t wal_warned;        /* mono time of the last warning about it */
    uint64_t wal_blocked_us;   /* total waited (under smu) */
    uint64_t wal_restarts;     /* WAL restarts by the writer */

    /* the checkpointer: copies the WAL into the database off the writer's path */
    int ckpt_pages;       /* WAL size (pages) that wakes it */
    int ckpt_hard_pages;  /* WAL size past which the writer checkpoints and restarts it */
    sqlite3 *ckdb;        /* its own connection */
    pthread_t ckthread;   /* the thread, when ckrunning */
    int ckrunning;        /* the thread was started */
    pthread_mutex_t ckmu; /* guards ckwake, ckquit */
    pthread_cond_t ckcv;  /* ckwake or ckquit was set */
    int ckwake;           /* the WAL grew past ckpt_pages */
    int ckquit;           /* close() asks the thread to end */
};

void store_tuning_default(struct store_tuning *t)
{
    t->busy_ms = 5000;
    t->cache_kib = 16 * 1024;
    t->page_size = 4096;
    t->mmap_bytes = 0;
    t->ckpt_pages = 4096;
    t->ckpt_hard_pages = 16384;
    t->wal_max_pages = 32768;
    t->retry_ms = 60000;
    t->dict_max_entries = 64 * 1024;
    t->dict_max_bytes = 8u << 20;
    t->max_text = 0;
}

int kt_store_schema_version(void)
{
    return SCHEMA_VERSION;
}

/* ---- open, identify, migrate, close ---- */

/* Run sql (any number of statements); on failure copy SQLite's message to err. */
static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg != NULL ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return KT_EIO;
    }
    return 0;
}

/* Run a pragma that ends in '=' with v appended. */
static int exec_pragma(sqlite3 *db, const char *pragma, long long v, char *err, size_t errlen)
{
    char sql[128];

    snprintf(sql, sizeof(sql), "%s%lld", pragma, v);
    return exec_sql(db, sql, err, errlen);
}

/* The first column of the first row of sql, as an integer. 0 or KT_EIO. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *q = NULL;
    int rc = KT_EIO;

    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW) {
        *out = sqlite3_column_int64(q, 0);
        rc = 0;
    }
    sqlite3_finalize(q);
    return rc;
}

/*
 * Decide what the file is before changing anything in it: a new database (no objects), a
 * ktrail database this build can use, or something to refuse. Nothing is written here, so a
 * refused file is left exactly as it was (not even switched to WAL).
 */
static int identify(sqlite3 *db, const char *path, int64_t *version, char *errstr, size_t errlen)
{
    int64_t app = 0, objects = 0;

    if (query_int(db, SQL_GET_USER_VERSION, version) != 0 ||
        query_int(db, SQL_GET_APP_ID, &app) != 0 ||
        query_int(db, SQL_COUNT_OBJECTS, &objects) != 0) {
        int code = sqlite3_errcode(db) & 0xff;
        snprintf(errstr, errlen, "%s: %s (%s)", path,
                 code == SQLITE_CORRUPT  ? "damaged (ktrail check --db tells more)"
                 : code == SQLITE_NOTADB ? "not a SQLite database"
                 : code == SQLITE_READONLY || code == SQLITE_CANTOPEN
                     ? "cannot write its -wal and -shm files, kept next to it: the directory"
                       " must be writable"
                     : "cannot read",
                 sqlite3_errmsg(db));
        return KT_EIO;
    }
    if (app == 0 && *version == 0 && objects == 0) {
        return 0; /* new */
    }
    if (app == 0 && *version > 0 && *version <= SCHEMA_VERSION) {
        snprintf(errstr, errlen,
                 "%s: not a ktrail database, or one from a development build before schema "
                 "version %d was final (user_version %lld, no ktrail application_id): replay "
                 "into a new database",
                 path, SCHEMA_VERSION, (long long)*version);
        return KT_EIO;
    }
    if (app != SQL_APP_ID) {
        snprintf(errstr, errlen,
                 "%s: not a ktrail database (application_id %lld, user_version %lld, %lld "
                 "schema objects): refusing to touch it",
                 path, (long long)app, (long long)*version, (long long)objects);
        return KT_EIO;
    }
    if (*version > SCHEMA_VERSION) {
        snprintf(errstr, errlen,
                 "%s: schema version %lld is newer than this ktrail knows (%d): use a newer "
                 "ktrail",
                 path, (long long)*version, SCHEMA_VERSION);
        return KT_EIO;
    }
    return 0;
}

/*
 * Bring the schema from version to SCHEMA_VERSION, one transaction per step (a new database:
 * one step). Each step re-reads the version under the write lock, so two processes opening a
 * new database at once do not both create it.
 */
static int migrate(sqlite3 *db, const char *path, int64_t version, char *errstr, size_t errlen)
{
    char err[256] = "";

    for (int64_t v = version, to; v < SCHEMA_VERSION; v = to) {
        int64_t now = 0;
        to = v == 0 ? SCHEMA_VERSION : v + 1;
        int rc = exec_sql(db, SQL_BEGIN, err, sizeof(err));
        if (rc == 0) {
            rc = query_int(db, SQL_GET_USER_VERSION, &now);
        }
        if (rc == 0 && now == v) {
            rc = exec_sql(db, migrations[v], err, sizeof(err));
            if (rc == 0) {
                rc = exec_pragma(db, SQL_SET_USER_VERSION, to, err, sizeof(err));
            }
            if (rc == 0) {
                rc = exec_pragma(db, SQL_SET_APP_ID, SQL_APP_ID, err, sizeof(err));
            }
        }
        if (rc == 0) {
            rc = exec_sql(db, SQL_COMMIT, err, sizeof(err));
        }
        if (rc != 0) {
            if (err[0] == '\0') {
                snprintf(err, sizeof(err), "%s", sqlite3_errmsg(db));
            }
            if (!sqlite3_get_autocommit(db)) {
                sqlite3_exec(db, SQL_ROLLBACK, NULL, NULL, NULL);
            }
            snprintf(errstr, errlen, "%s: migration to schema version %lld failed: %s", path,
                     (long long)to, err);
            return KT_EIO;
        }
    }
    return 0;
}

/*
 * Cap the database file at opts.max_db_bytes, rounded down to whole pages: a transaction that
 * needs more fails with SQLITE_FULL, as on a full disk. SQLite keeps max_page_count at least
 * the file's current page count, so a file already past the limit is refused here.
 */
static int limit_size(struct kt_store *st, char *err, size_t errlen)
{
    int64_t want = (int64_t)(st->opts.max_db_bytes / (uint64_t)st->page_size), got = 0;
    char sql[64];

    snprintf(sql, sizeof(sql), "%s%lld", SQL_MAX_PAGE_COUNT, (long long)(want > 0 ? want : 1));
    if (query_int(st->db, sql, &got) != 0) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(st->db));
        return KT_EIO;
    }
    if (got > want) {
        snprintf(err, errlen, "the database is already %lld bytes, more than the size limit (%llu)",
                 (long long)(got * st->page_size), (unsigned long long)st->opts.max_db_bytes);
        return KT_EIO;
    }
    st->max_pages = got;
    return 0;
}

/* Connection settings. page_size must precede WAL mode and the first table. */
static int tune(struct kt_store *st, const struct store_tuning *t, int64_t version, char *err,
                size_t errlen)
{
    sqlite3 *db = st->db;
    sqlite3_stmt *q = NULL;
    int64_t page = 0;
    int rc = 0;

    if (version == 0) {
        rc = exec_pragma(db, SQL_PAGE_SIZE, t->page_size, err, errlen);
    }
    /* journal_mode answers with the mode in force; a filesystem without shared memory
     * (some network mounts) stays in rollback mode, which still works, only slower. */
    if (rc == 0 && sqlite3_prepare_v2(db, SQL_WAL, -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(q, 0);
        if (mode != NULL && strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0) {
            kt_warn("store", "journal_mode is %s, not wal: readers will block the writer", mode);
        }
    } else if (rc == 0) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        rc = KT_EIO;
    }
    sqlite3_finalize(q);
    if (rc == 0) {
        rc = exec_sql(db, st->opts.sync_full ? SQL_SYNC_FULL : SQL_SYNC_NORMAL, err, errlen);
    }
    if (rc == 0) {
        rc = exec_pragma(db, SQL_CACHE_SIZE_KIB, t->cache_kib, err, errlen);
    }
    if (rc == 0) {
        rc = exec_sql(db, SQL_TEMP_STORE, err, errlen);
    }
    if (rc == 0) {
        rc = exec_pragma(db, SQL_MMAP_SIZE, t->mmap_bytes, err, errlen);
    }
    if (rc == 0) {
        rc = exec_sql(db, SQL_NO_AUTOCKPT, err, errlen);
    }
    if (rc == 0 && (rc = query_int(db, SQL_GET_PAGE_SIZE, &page)) != 0) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    }
    if (rc == 0) {
        rc = exec_pragma(db, SQL_JOURNAL_SIZE_LIMIT, (long long)page * t->ckpt_hard_pages, err,
                         errlen);
    }
    st->page_size = page;
    if (rc == 0 && st->opts.max_db_bytes > 0) {
        rc = limit_size(st, err, errlen);
    }
    return rc;
}

/*
 * Checkpoint the whole WAL on the writer's connection and have the next transaction write it
 * from its beginning (RESTART), without waiting for anyone: the busy handler is off, so a
 * reader holding an older snapshot (or the checkpointer thread mid-copy) makes it copy what
 * it can and return SQLITE_BUSY. 1 when the WAL restarts, 0 when not. The caller holds mu.
 */
static int wal_restart(struct kt_store *st)
{
    int log = 0, done = 0;

    sqlite3_busy_timeout(st->db, 0);
    int rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done);
    sqlite3_busy_timeout(st->db, st->busy_ms);
    if (rc != SQLITE_OK) {
        return 0;
    }
    st->wal_pages = 0;
    st->wal_restarts++;
    __atomic_store_n(&st->wal_clean_us, kt_now_wall_us(), __ATOMIC_RELAXED);
    pthread_mutex_lock(&st->smu);
    st->totals.wal_bytes = 0;
    pthread_mutex_unlock(&st->smu);
    return 1;
}

/* sqlite3_wal_hook, on the writer's thread after each commit (st->mu held). */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct kt_store *st = arg;

    (void)db;
    (void)name;
    st->wal_pages = pages;
    pthread_mutex_lock(&st->smu);
    st->totals.wal_bytes = (uint64_t)pages * (uint64_t)st->page_size;
    pthread_mutex_unlock(&st->smu);
    if (pages >= st->ckpt_hard_pages) {
        /* the checkpointer cannot finish while commits keep coming (it copies up to the
         * last commit it saw), and a passive checkpoint never makes the log restart while
         * any reader is on it, so the log would only grow: copy the rest here, between two
         * transactions, and restart it. A reader on an older snapshot prevents both; past
         * wal_max_pages the writer then waits (store_wal_room). */
        wal_restart(st);
    } else if (pages >= st->ckpt_pages) {
        pthread_mutex_lock(&st->ckmu);
        st->ckwake = 1;
        pthread_cond_signal(&st->ckcv);
        pthread_mutex_unlock(&st->ckmu);
    }
    return SQLITE_OK;
}

static void *checkpointer_main(void *arg)
{
    struct kt_store *st = arg;

    pthread_mutex_lock(&st->ckmu);
    for (;;) {
        while (!st->ckwake && !st->ckquit) {
            pthread_cond_wait(&st->ckcv, &st->ckmu);
        }
        if (st->ckquit) {
            break;
        }
        st->ckwake = 0;
        pthread_mutex_unlock(&st->ckmu);
        /* PASSIVE never blocks the writer; what it cannot copy now, the next run will */
        int log = 0, done = 0;
        if (sqlite3_wal_checkpoint_v2(st->ckdb, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) !=
            SQLITE_OK) {
            kt_warn("store", "WAL checkpoint: %s", sqlite3_errmsg(st->ckdb));
        } else if (log == done) {
            __atomic_store_n(&st->wal_clean_us, kt_now_wall_us(), __ATOMIC_RELAXED);
        }
        pthread_mutex_lock(&st->ckmu);
    }
    pthread_mutex_unlock(&st->ckmu);
    return NULL;
}

static int start_checkpointer(struct kt_store *st, const char *path, char *errstr, size_t errlen)
{
    char err[256] = "";

    if (sqlite3_open_v2(path, &st->ckdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(errstr, errlen, "%s: cannot open: %s", path,
                 st->ckdb != NULL ? sqlite3_errmsg(st->ckdb) : "out of memory");
        return KT_EIO;
    }
    if (exec_sql(st->ckdb, st->opts.sync_full ? SQL_SYNC_FULL : SQL_SYNC_NORMAL, err,
                 sizeof(err)) != 0) {
        snprintf(errstr, errlen, "%s: cannot configure: %s", path, err);
        return KT_EIO;
    }
    if (pthread_create(&st->ckthread, NULL, checkpointer_main, st) != 0) {
        snprintf(errstr, errlen, "%s: cannot start the checkpointer thread", path);
        return KT_ENOMEM;
    }
    st->ckrunning = 1;
    sqlite3_wal_hook(st->db, wal_hook, st);
    return 0;
}

static void stop_checkpointer(struct kt_store *st)
{
    if (st->ckrunning) {
        pthread_mutex_lock(&st->ckmu);
        st->ckquit = 1;
        pthread_cond_signal(&st->ckcv);
        pthread_mutex_unlock(&st->ckmu);
        pthread_join(st->ckthread, NULL);
        st->ckrunning = 0;
    }
    sqlite3_close(st->ckdb);
    st->ckdb = NULL;
}

/*
 * Prove the connection can write: BEGIN IMMEDIATE (the write lock, the -wal and -shm files),
 * page 1 rewritten with the version it holds, COMMIT. SQLite opens a read-only file
 * read-only without a word, and a directory where the -wal file cannot be created fails only
 * at the first write: both are refused here, by name. A lock held by another writer past
 * the busy timeout proves nothing either way: warned, not refused.
 */
static int probe_write(struct kt_store *st, const char *path, char *errstr, size_t errlen)
{
    char err[256] = "";

    if (sqlite3_db_readonly(st->db, "main") == 1) {
        snprintf(errstr, errlen,
                 "%s: read-only (the file or its filesystem is not writable by this user): "
                 "cannot store events",
                 path);
        return KT_EIO;
    }
    int rc = exec_sql(st->db, SQL_BEGIN, err, sizeof(err));
    if (rc == 0) {
        rc = exec_pragma(st->db, SQL_PROBE_WRITE, SCHEMA_VERSION, err, sizeof(err));
    }
    if (rc == 0) {
        rc = exec_sql(st->db, SQL_COMMIT, err, sizeof(err));
    }
    if (rc == 0) {
        return 0;
    }
    int code = sqlite3_errcode(st->db);
    if (!sqlite3_get_autocommit(st->db)) {
        sqlite3_exec(st->db, SQL_ROLLBACK, NULL, NULL, NULL);
    }
    if (code == SQLITE_BUSY) {
        kt_warn("store", "%s: locked by another writer: %s", path, err);
        return 0;
    }
    snprintf(errstr, errlen,
             "%s: cannot write: %s (the file, its directory, where SQLite keeps the -wal and "
             "-shm files, and the filesystem must be writable)",
             path, err);
    return KT_EIO;
}

int store_open_tuned(const char *path, const struct kt_store_opts *opts,
                     const struct store_tuning *t, struct kt_store **out, char *errstr,
                     size_t errlen)
{
    struct kt_store *st = NULL;
    int64_t version = 0;
    char err[256] = "";
    int rc = KT_ENOMEM;

    *out = NULL;
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(errstr, errlen, "%s: out of memory", path);
        return KT_ENOMEM;
    }
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->smu, NULL);
    pthread_mutex_init(&st->ckmu, NULL);
    pthread_cond_init(&st->ckcv, NULL);
    st->ckpt_pages = t->ckpt_pages;
    st->ckpt_hard_pages = t->ckpt_hard_pages;
    st->wal_max_pages =
        t->wal_max_pages > t->ckpt_hard_pages ? t->wal_max_pages : t->ckpt_hard_pages;
    st->busy_ms = t->busy_ms;
    st->retry_ms = t->retry_ms;
    st->wal_clean_us = kt_now_wall_us();
    if (opts != NULL) {
        st->opts = *opts;
        if (opts->retry_ms != 0) {
            st->retry_ms = opts->retry_ms > 0 ? opts->retry_ms : 0;
        }
    }
    rc = KT_EIO;
    /* NOMUTEX: st->mu already serializes every use of the connection. */
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(errstr, errlen, "%s: cannot open: %s", path,
                 st->db != NULL ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, t->busy_ms);
    st->max_text = (size_t)sqlite3_limit(st->db, SQLITE_LIMIT_LENGTH, -1);
    if (t->max_text > 0 && t->max_text < st->max_text) {
        st->max_text = t->max_text;
    }
    if (kt_raw_register(st->db) != 0) {
        snprintf(errstr, errlen, "%s: %s", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (identify(st->db, path, &version, errstr, errlen) != 0) {
        goto fail;
    }
    if (tune(st, t, version, err, sizeof(err)) != 0) {
        snprintf(errstr, errlen, "%s: cannot configure: %s", path, err);
        goto fail;
    }
    if (migrate(st->db, path, version, errstr, errlen) != 0) {
        goto fail;
    }
    if (probe_write(st, path, errstr, errlen) != 0) {
        goto fail;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->st[i],
                               NULL) != SQLITE_OK) {
            snprintf(errstr, errlen, "%s: schema does not match this ktrail: %s", path,
                     sqlite3_errmsg(st->db));
            goto fail;
        }
    }
    rc = dict_init(&st->dict, st->db, st->st[ST_DICT_GET], st->st[ST_DICT_ADD], t->dict_max_entries,
                   t->dict_max_bytes);
    if (rc != 0) {
        snprintf(errstr, errlen, "%s: out of memory", path);
        goto fail;
    }
    if (strcmp(path, ":memory:") != 0 && (rc = start_checkpointer(st, path, errstr, errlen)) != 0) {
        goto fail;
    }
    *out = st;
    return 0;
fail:
    kt_store_close(st);
    return rc;
}

int kt_store_open(const char *path, const struct kt_store_opts *opts, struct kt_store **out,
                  char *errstr, size_t errlen)
{
    struct store_tuning t;

    store_tuning_default(&t);
    return store_open_tuned(path, opts, &t, out, errstr, errlen);
}

void kt_store_close(struct kt_store *st)
{
    if (st == NULL) {
        return;
    }
    stop_checkpointer(st);
    kt_corr_destroy(st->corr);
    kt_matcher_destroy(st->cm);
    free(st->corr_name);
    free(st->corr_kind);
    dict_free(&st->dict);
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(st->st[i]);
    }
    /* the last connection to close checkpoints the WAL into the database and removes it */
    sqlite3_close(st->db);
    free(st->join);
    free(st->origin_ids);
    free(st->ids);
    free(st->dup);
    free(st->rawq);
    rawpack_free(&st->raw);
    pthread_cond_destroy(&st->ckcv);
    pthread_mutex_destroy(&st->ckmu);
    pthread_mutex_destroy(&st->smu);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* ---- writing a batch ---- */

/* Step a statement that returns no rows, and reset it. 0 or KT_EIO. */
static int step_done(sqlite3_stmt *q)
{
    int rc = sqlite3_step(q);

    sqlite3_reset(q);
    return rc == SQLITE_DONE ? 0 : KT_EIO;
}

static void bind_str(sqlite3_stmt *q, int i, struct kt_str v)
{
    if (v.ptr == NULL) {
        sqlite3_bind_null(q, i);
    } else {
        sqlite3_bind_text(q, i, v.ptr, (int)v.len, SQLITE_STATIC);
    }
}

/*
 * Bind an auditID: the 16 bytes of a UUID in its canonical lowercase text (what the apiserver
 * makes), so the events row and its unique index hold 16 bytes instead of 36 (v_events writes
 * the text back), or the text of any other (the client can send its own Audit-ID).
 */
static void bind_audit_id(sqlite3_stmt *q, int i, struct kt_str v)
{
    /* one more than each lowercase hex digit's value: 0 for anything else */
    static const unsigned char hex[256] = {
        ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,
        ['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12,
        ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    };
    static const unsigned char at[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
    const unsigned char *t = (const unsigned char *)v.ptr;
    unsigned char u[16];
    int bad = 0;

    if (t == NULL || v.len != 36 || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-') {
        bind_str(q, i, v);
        return;
    }
    for (size_t k = 0; k < 16; k++) {
        unsigned hi = hex[t[at[k]]], lo = hex[t[at[k] + 1]];
        bad |= hi == 0 || lo == 0;
        u[k] = (unsigned char)((hi - 1) << 4 | (lo - 1));
    }
    if (bad) {
        bind_str(q, i, v);
    } else {
        sqlite3_bind_blob(q, i, u, 16, SQLITE_TRANSIENT);
    }
}

/* Bind the dictionary id of v to parameter i, NULL when v is absent. 0 or KT_EIO. */
static int bind_dict(struct kt_store *st, sqlite3_stmt *q, int i, struct kt_str v)
{
    int64_t id = 0;

    if (v.ptr == NULL) {
        sqlite3_bind_null(q, i);
        return 0;
    }
    if (dict_id(&st->dict, v.ptr, v.len, &id) != 0) {
        return KT_EIO;
    }
    sqlite3_bind_int64(q, i, id);
    return 0;
}

/* The dictionary id of an event's stage; 0 when it has none (see SQL_SCHEMA_V1). */
static int stage_id(struct kt_store *st, const struct kt_event *ev, int64_t *id)
{
    struct kt_str s = ev->f[KT_F_STAGE];

    *id = 0;
    return s.ptr == NULL ? 0 : dict_id(&st->dict, s.ptr, s.len, id);
}

/* Join a list with ',' into st->join; *out is NULL for an absent or empty list. */
static int join_list(struct kt_store *st, const struct kt_strlist *l, struct kt_str *out)
{
    size_t need = 0, n = 0;

    *out = KT_STR_NULL;
    if (l->v == NULL || l->n == 0) {
        return 0;
    }
    for (uint32_t i = 0; i < l->n; i++) {
        need += l->v[i].len + 1;
    }
    if (need > st->capjoin) {
        char *p = realloc(st->join, need);
        if (p == NULL) {
            return KT_ENOMEM;
        }
        st->join = p;
        st->capjoin = need;
    }
    for (uint32_t i = 0; i < l->n; i++) {
        if (i > 0) {
            st->join[n++] = ',';
        }
        if (l->v[i].len > 0) {
            memcpy(st->join + n, l->v[i].ptr, l->v[i].len);
        }
        n += l->v[i].len;
    }
    *out = (struct kt_str){st->join, n};
    return 0;
}

/* Room for the batch's per-record ids and per-origin dictionary ids. */
static int reserve(struct kt_store *st, const struct kt_batch *b)
{
    if (b->nrecs > st->capids) {
        int64_t *p = realloc(st->ids, b->nrecs * sizeof(*p));
        if (p == NULL) {
            return KT_ENOMEM;
        }
        st->ids = p;
        unsigned char *d = realloc(st->dup, b->nrecs);
        if (d == NULL) {
            return KT_ENOMEM;
        }
        st->dup = d;
        d = realloc(st->rawq, b->nrecs);
        if (d == NULL) {
            return KT_ENOMEM;
        }
        st->rawq = d;
        st->capids = b->nrecs;
    }
    if (b->norigins > st->caporigins) {
        int64_t *p = realloc(st->origin_ids, b->norigins * sizeof(*p));
        if (p == NULL) {
            return KT_ENOMEM;
        }
        st->origin_ids = p;
        st->caporigins = b->norigins;
    }
    return 0;
}

/* Why record i cannot be stored as an event, or NULL when it can. */
static const char *reject_reason(const struct kt_batch *b, size_t i)
{
    const struct kt_event *ev = &b->events[i];

    if (ev->reject != NULL) {
        return ev->reject;
    }
    if (b->recs[i].reject != NULL) {
        return b->recs[i].reject;
    }
    /* the decoder rejects these; checked again because NOT NULL would fail the whole batch */
    if (ev->f[KT_F_AUDIT_ID].ptr == NULL) {
        return "no auditID";
    }
    return NULL;
}

/* Insert record i's event. ids[i] becomes its new row id, or ID_UNKNOWN for a duplicate. */
static int write_event(struct kt_store *st, const struct kt_batch *b, size_t i)
{
    static const struct {
        int param;
        int field;
    } dict_cols[] = {
        {SQL_EV_LEVEL, KT_F_LEVEL},
        {SQL_EV_VERB, KT_F_VERB},
        {SQL_EV_USER, KT_F_USER},
        {SQL_EV_IMP_USER, KT_F_IMP_USER},
        {SQL_EV_USER_AGENT, KT_F_USER_AGENT},
        {SQL_EV_RESOURCE, KT_F_RESOURCE},
        {SQL_EV_SUBRESOURCE, KT_F_SUBRESOURCE},
        {SQL_EV_NAMESPACE, KT_F_NAMESPACE},
        {SQL_EV_NAME, KT_F_NAME},
        {SQL_EV_API_GROUP, KT_F_API_GROUP},
        {SQL_EV_API_VERSION, KT_F_API_VERSION},
        {SQL_EV_DECISION, KT_F_DECISION},
        {SQL_EV_AUTHZ_REASON, KT_F_AUTHZ_REASON},
        {SQL_EV_REQUEST_URI, KT_F_URI}, /* column uri: watches and leases repeat their URIs */
    };
    const struct kt_event *ev = &b->events[i];
    const struct kt_record *r = &b->recs[i];
    sqlite3_stmt *q = st->st[ST_EVENT];
    struct kt_str joined;
    int64_t stage = 0;
    int rc = stage_id(st, ev, &stage);

    sqlite3_bind_int64(q, SQL_EV_TS, ev->ts_us);
    if (ev->recv_us != 0) {
        sqlite3_bind_int64(q, SQL_EV_RECEIVED_TS, ev->recv_us);
    } else {
        sqlite3_bind_null(q, SQL_EV_RECEIVED_TS);
    }
    bind_audit_id(q, SQL_EV_AUDIT_ID, ev->f[KT_F_AUDIT_ID]);
    sqlite3_bind_int64(q, SQL_EV_STAGE, stage);
    for (size_t k = 0; k < sizeof(dict_cols) / sizeof(dict_cols[0]) && rc == 0; k++) {
        rc = bind_dict(st, q, dict_cols[k].param, ev->f[dict_cols[k].field]);
    }
    if (rc == 0 && (rc = join_list(st, &ev->groups, &joined)) == 0) {
        rc = bind_dict(st, q, SQL_EV_GROUPS, joined);
    }
    if (rc == 0 && (rc = join_list(st, &ev->source_ips, &joined)) == 0) {
        rc = bind_dict(st, q, SQL_EV_SOURCE_IPS, joined);
    }
    if (ev->code != 0) {
        sqlite3_bind_int(q, SQL_EV_CODE, ev->code);
    } else {
        sqlite3_bind_null(q, SQL_EV_CODE);
    }
    if (rc == 0) {
        rc = bind_dict(st, q, SQL_EV_CLUSTER,
                       b->cluster.ptr != NULL ? b->cluster : ev->f[KT_F_CLUSTER_ANNOT]);
    }
    if (r->origin < b->norigins) {
        sqlite3_bind_int64(q, SQL_EV_ORIGIN, st->origin_ids[r->origin]);
    } else {
        sqlite3_bind_null(q, SQL_EV_ORIGIN);
    }
    sqlite3_bind_int64(q, SQL_EV_OFFSET, (int64_t)r->off);
    sqlite3_bind_int(q, SQL_EV_TRUNCATED, (ev->flags & KT_EV_TRUNCATED) != 0);
    if (rc != 0) {
        return KT_EIO;
    }
    if (step_done(q) != 0) {
        return KT_EIO;
    }
    st->ids[i] = sqlite3_changes(st->db) > 0 ? sqlite3_last_insert_rowid(st->db) : ID_UNKNOWN;
    return 0;
}

/* Row id of record i's event: a duplicate's is looked up (once) by the unique key. */
static int event_row(struct kt_store *st, const struct kt_batch *b, size_t i, int64_t *id)
{
    const struct kt_event *ev = &b->events[i];
    sqlite3_stmt *q = st->st[ST_EVENT_ID];
    int64_t stage = 0;
    int rc;

    if (st->ids[i] != ID_UNKNOWN) {
        *id = st->ids[i];
        return 0;
    }
    if (stage_id(st, ev, &stage) != 0) {
        return KT_EIO;
    }
    sqlite3_bind_int64(q, 1, ev->ts_us);
    bind_audit_id(q, 2, ev->f[KT_F_AUDIT_ID]);
    sqlite3_bind_int64(q, 3, stage);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        st->ids[i] = sqlite3_column_int64(q, 0);
    }
    sqlite3_reset(q);
    if (rc != SQLITE_ROW) {
        /* INSERT OR IGNORE skipped it, so the row exists: anything else is a failure */
        kt_error("store", "duplicate event %.*s has no row", (int)ev->f[KT_F_AUDIT_ID].len,
                 ev->f[KT_F_AUDIT_ID].ptr);
        return KT_EIO;
    }
    *id = st->ids[i];
    return 0;
}

/* Keep record i's JSON for event row id (no-op when already kept): into the block being
 * filled, written when full and before commit. */
static int write_raw(struct kt_store *st, const struct kt_batch *b, size_t i, int64_t id)
{
    const struct kt_record *r = &b->recs[i];

    if (st->rawq[i]) {
        return 0;
    }
    if (st->dup[i]) { /* stored before: with its JSON? */
        int64_t found = 0;
        sqlite3_stmt *q = st->st[ST_RAW_EXISTS];
        sqlite3_bind_int64(q, 1, id);
        int s = sqlite3_step(q);
        found = s == SQLITE_ROW;
        sqlite3_reset(q);
        if (s != SQLITE_ROW && s != SQLITE_DONE) {
            return KT_EIO;
        }
        if (found) {
            return 0;
        }
    }
    if (r->len > st->max_text) {
        /* SQLite would refuse it and fail the whole batch: keep the event, not its JSON */
        kt_warn("store",
                "event at offset %llu is %zu bytes, over SQLite's limit: raw JSON not kept",
                (unsigned long long)r->off, r->len);
        return 0;
    }
    st->rawq[i] = 1;
    int rc = rawpack_add(&st->raw, id, b->buf + r->pos, r->len);
    if (rc == 0 && rawpack_full(&st->raw)) {
        rc = rawpack_flush(&st->raw, st->st[ST_RAW_BLOCK], st->st[ST_RAW], 0);
    }
    return rc;
}

/* Record i as a reject. *added is 1 unless the same reject was stored before. */
static int write_reject(struct kt_store *st, const struct kt_batch *b, size_t i, const char *reason,
                        int64_t now, int *added)
{
    const struct kt_record *r = &b->recs[i];
    const unsigned char *text = (const unsigned char *)b->buf + r->pos;
    sqlite3_stmt *q = st->st[ST_REJECT];
    size_t len = r->len;

    /* the first REJECT_TEXT bytes, not cutting a UTF-8 sequence in two */
    if (len > REJECT_TEXT) {
        len = REJECT_TEXT;
        for (int k = 0; k < 3 && len > 0 && (text[len] & 0xc0) == 0x80; k++) {
            len--;
        }
    }
    sqlite3_bind_int64(q, 1, now);
    if (r->origin < b->norigins) {
        sqlite3_bind_text(q, 2, b->origins[r->origin], -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(q, 2);
    }
    sqlite3_bind_int64(q, 3, (int64_t)r->off);
    if (r->line > 0) {
        sqlite3_bind_int64(q, 4, (int64_t)r->line);
    } else {
        sqlite3_bind_null(q, 4);
    }
    sqlite3_bind_text(q, 5, reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, (const char *)text, (int)len, SQLITE_STATIC);
    if (step_done(q) != 0) {
        return KT_EIO;
    }
    *added = sqlite3_changes(st->db) > 0;
    return 0;
}

/* Store alert a against event row id. *added is 1 unless the event already had it. */
static int write_alert(struct kt_store *st, const struct kt_batch *b, const struct kt_alert *a,
                       int64_t id, int *added)
{
    const struct kt_event *ev = &b->events[a->event];
    sqlite3_stmt *q = st->st[ST_ALERT];
    int64_t stage = 0;

    if (stage_id(st, ev, &stage) != 0) {
        return KT_EIO;
    }
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_int64(q, 2, ev->ts_us);
    sqlite3_bind_text(q, 3, "", 0, SQLITE_STATIC); /* the event's: v_alerts reads it there */
    sqlite3_bind_int64(q, 4, stage);
    sqlite3_bind_text(q, 5, a->rule, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 6, a->priority);
    if (a->fmt.len > 0) { /* the compact form: v_alerts renders output, fields and tags */
        sqlite3_bind_null(q, 7);
        sqlite3_bind_null(q, 8);
        sqlite3_bind_null(q, 9);
        if (bind_dict(st, q, 11, a->fmt) != 0) {
            return KT_EIO;
        }
        bind_str(q, 12, a->vals);
    } else {
        if (a->tags != NULL) {
            sqlite3_bind_text(q, 7, a->tags, -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_null(q, 7);
        }
        bind_str(q, 8, a->output);
        bind_str(q, 9, a->fields);
        sqlite3_bind_null(q, 11);
        sqlite3_bind_null(q, 12);
    }
    if (ev->recv_us != 0) {
        sqlite3_bind_int64(q, 10, ev->recv_us);
    } else {
        sqlite3_bind_null(q, 10);
    }
    if (step_done(q) != 0) {
        return KT_EIO;
    }
    *added = sqlite3_changes(st->db) > 0;
    return 0;
}

static int write_ckpt(struct kt_store *st, const struct kt_batch *b, int64_t now)
{
    const struct kt_ckpt_file *c = &b->ckpt_file;
    sqlite3_stmt *q = st->st[ST_CKPT_UPSERT];

    sqlite3_bind_int64(q, 1, (int64_t)c->fingerprint);
    if (c->path != NULL) {
        sqlite3_bind_text(q, 2, c->path, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(q, 2);
    }
    sqlite3_bind_int64(q, 3, (int64_t)c->offset);
    sqlite3_bind_int(q, 4, c->mode);
    sqlite3_bind_int(q, 5, c->done);
    sqlite3_bind_int64(q, 6, now);
    sqlite3_bind_int64(q, 7, (int64_t)c->line);
    sqlite3_bind_int64(q, 8, (int64_t)c->col);
    return step_done(q);
}

/* The batch's Kafka checkpoints: one row per partition it read. */
static int write_ckpt_kafka(struct kt_store *st, const struct kt_batch *b, int64_t now)
{
    sqlite3_stmt *q = st->st[ST_CKPT_KAFKA_UPSERT];
    int rc = 0;

    for (size_t i = 0; i < b->nckpt_kafka && rc == 0; i++) {
        const struct kt_ckpt_kafka *c = &b->ckpt_kafka[i];
        sqlite3_bind_text(q, 1, c->topic, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 2, c->partition);
        sqlite3_bind_int64(q, 3, c->next_offset);
        sqlite3_bind_int64(q, 4, now);
        rc = step_done(q);
    }
    return rc;
}

/* ---- one alert per request, bursts told once ---- */

/* The first column of q's one row as *out (0 when there is no row). 0 or KT_EIO; q reset. */
static int one_id(sqlite3_stmt *q, int64_t *out)
{
    int s = sqlite3_step(q);
    *out = s == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_reset(q);
    return s == SQLITE_ROW || s == SQLITE_DONE ? 0 : KT_EIO;
}

/* Link event row event_id to alert alert_id; *added 1 when the link is new. */
static int link_event(struct kt_store *st, int64_t alert_id, int64_t event_id, int *added)
{
    sqlite3_stmt *q = st->st[ST_ALERT_EVENT];
    sqlite3_bind_int64(q, 1, alert_id);
    sqlite3_bind_int64(q, 2, event_id);
    int rc = step_done(q);
    *added = rc == 0 && sqlite3_changes(st->db) > 0;
    return rc;
}

/*
 * Is alert a (on event row id) a match an earlier alert already tells? Another stage of a
 * request whose rule alerted (rules only), or a further match of an open suppression group.
 * Then it is merged there: its events are linked to that alert in alert_events (with the
 * alert's own event, so the evidence holds every stage), and the alert counts it once (a
 * replay links nothing new and counts nothing). *into is the alert merged into, 0 if none.
 */
static int merge_alert(struct kt_store *st, const struct kt_batch *b, const struct kt_alert *a,
                       int64_t id, int64_t *into)
{
    const struct kt_event *ev = &b->events[a->event];
    int64_t first_event = 0;
    sqlite3_stmt *q;
    int rc = 0, s;

    *into = 0;
    if (a->refs == NULL && ev->recv_us != 0) {
        q = st->st[ST_ALERT_REQUEST];
        bind_str(q, 1, ev->f[KT_F_AUDIT_ID]);
        sqlite3_bind_text(q, 2, a->rule, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, id);
        sqlite3_bind_int64(q, 4, ev->recv_us);
        if ((s = sqlite3_step(q)) == SQLITE_ROW) {
            *into = sqlite3_column_int64(q, 0);
            first_event = sqlite3_column_int64(q, 1);
        }
        sqlite3_reset(q);
        if (s != SQLITE_ROW && s != SQLITE_DONE) {
            return KT_EIO;
        }
    }
    if (*into == 0 && a->group.len > 0) {
        q = st->st[ST_GROUP_GET];
        sqlite3_bind_text(q, 1, a->rule, -1, SQLITE_STATIC);
        bind_str(q, 2, a->group);
        if ((s = sqlite3_step(q)) == SQLITE_ROW && ev->ts_us < sqlite3_column_int64(q, 1)) {
            *into = sqlite3_column_int64(q, 0);
            first_event = sqlite3_column_int64(q, 2);
        }
        sqlite3_reset(q);
        if (s != SQLITE_ROW && s != SQLITE_DONE) {
            return KT_EIO;
        }
    }
    if (*into == 0) {
        return 0;
    }
    int fresh = 0, added = 0;
    rc = link_event(st, *into, first_event, &added);
    if (a->refs == NULL) {
        rc = rc != 0 ? rc : link_event(st, *into, id, &fresh);
    }
    for (size_t i = 0; i < a->nrefs && rc == 0; i++) {
        rc = link_event(st, *into, (int64_t)a->refs[i], &added);
        fresh |= added;
    }
    if (rc == 0 && fresh) {
        q = st->st[ST_ALERT_MERGE];
        sqlite3_bind_int64(q, 1, *into);
        sqlite3_bind_int64(q, 2, ev->ts_us);
        rc = step_done(q);
    }
    return rc;
}

/* A suppressing rule's new alert opens its group's window. */
static int open_group(struct kt_store *st, const struct kt_batch *b, const struct kt_alert *a,
                      int64_t alert_id)
{
    sqlite3_stmt *q = st->st[ST_GROUP_PUT];
    sqlite3_bind_text(q, 1, a->rule, -1, SQLITE_STATIC);
    bind_str(q, 2, a->group);
    sqlite3_bind_int64(q, 3, alert_id);
    sqlite3_bind_int64(q, 4, b->events[a->event].ts_us + a->suppress_us);
    return step_done(q);
}

/* ---- correlations ---- */

/* Link a correlation's alert (row alert_id) to each event behind it. */
static int write_alert_events(struct kt_store *st, const struct kt_alert *a, int64_t alert_id)
{
    sqlite3_stmt *q = st->st[ST_ALERT_EVENT];
    int rc = 0;

    for (size_t i = 0; i < a->nrefs && rc == 0; i++) {
        sqlite3_bind_int64(q, 1, alert_id);
        sqlite3_bind_int64(q, 2, (int64_t)a->refs[i]);
        rc = step_done(q);
    }
    return rc;
}

/* A first_seen key not in memory: bring its stored sighting back, if any. 0 or KT_EIO. */
static int seen_lookup(struct kt_store *st, const struct kt_corr_hit *h)
{
    sqlite3_stmt *q = st->st[ST_SEEN_GET];
    int rc = 0;

    sqlite3_bind_text(q, 1, st->corr_name[h->corr], -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, h->key.ptr, (int)h->key.len, SQLITE_STATIC);
    int s = sqlite3_step(q);
    if (s == SQLITE_ROW) {
        struct kt_corr_state cs = {.def = h->corr,
                                   .key = h->key,
                                   .first_ts = sqlite3_column_int64(q, 0),
                                   .last_ts = sqlite3_column_int64(q, 1)};
        rc = kt_corr_restore(st->corr, &cs) != 0 ? KT_EIO : 0;
    } else if (s != SQLITE_DONE) {
        rc = KT_EIO;
    }
    sqlite3_reset(q);
    return rc;
}

/*
 * Feed the engine the hits of event i (from *next on: hits are in event order), just stored
 * as row id by this transaction (a duplicate was fed when it was first stored, so a replay
 * never alerts again). A firing appends its alert to b->alerts, on the event that completed
 * it, with its references. 0, KT_EIO or KT_ENOMEM.
 */
static int feed_corr(struct kt_store *st, struct kt_batch *b, size_t i, int64_t id, size_t *next)
{
    for (; *next < b->nhits && b->hits[*next].event <= i; (*next)++) {
        const struct kt_corr_hit *h = &b->hits[*next];
        struct kt_corr_fire f;
        if (h->event < i || h->corr >= st->ncorr) {
            continue; /* a duplicate's or a reject's */
        }
        if (st->corr_kind[h->corr] == KT_CORR_FIRST_SEEN &&
            !kt_corr_has(st->corr, h->corr, h->key) && seen_lookup(st, h) != 0) {
            return KT_EIO;
        }
        int rc = kt_corr_feed(st->corr, h->corr, h->step, h->key, h->value, b->events[i].ts_us,
                              (uint64_t)id, &f);
        if (rc < 0) {
            return rc;
        }
        if (rc == 1 && kt_matcher_fire(st->cm, b, h, &f) != 0) {
            return KT_ENOMEM;
        }
    }
    return 0;
}

static int corr_put(void *ctx, const struct kt_corr_state *cs)
{
    struct kt_store *st = ctx;
    sqlite3_stmt *q;

    if (st->corr_kind[cs->def] == KT_CORR_FIRST_SEEN) {
        q = st->st[ST_SEEN_PUT];
        sqlite3_bind_text(q, 1, st->corr_name[cs->def], -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, cs->key.ptr, (int)cs->key.len, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, cs->first_ts);
        sqlite3_bind_int64(q, 4, cs->last_ts);
        return step_done(q);
    }
    q = st->st[ST_CORR_PUT];
    sqlite3_bind_text(q, 1, st->corr_name[cs->def], -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, cs->key.ptr, (int)cs->key.len, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, cs->last_ts);
    sqlite3_bind_blob(q, 4, cs->blob, (int)cs->len, SQLITE_STATIC);
    sqlite3_bind_int64(q, 5, st->now);
    return step_done(q);
}

static int corr_del(void *ctx, size_t def, struct kt_str key)
{
    struct kt_store *st = ctx;
    sqlite3_stmt *q = st->st[ST_CORR_DEL];

    sqlite3_bind_text(q, 1, st->corr_name[def], -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, key.ptr, (int)key.len, SQLITE_STATIC);
    return step_done(q);
}

/*
 * (Re)build the engine's state from the database: every stored group of count, distinct and
 * sequence correlations, oldest first (so the cap evicts as it would have), and for
 * first_seen the start of learning plus the most recent keys (the rest are looked up when
 * seen). The caller holds st->mu. 0, KT_EIO or KT_ENOMEM.
 */
static int corr_restore_all(struct kt_store *st)
{
    int rc = 0;

    kt_corr_clear(st->corr);
    for (size_t j = 0; j < st->ncorr && rc == 0; j++) {
        sqlite3_stmt *q;
        int s;
        if (st->corr_kind[j] == KT_CORR_FIRST_SEEN) {
            q = st->st[ST_SEEN_START];
            sqlite3_bind_text(q, 1, st->corr_name[j], -1, SQLITE_STATIC);
            if ((s = sqlite3_step(q)) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL) {
                kt_corr_set_start(st->corr, j, sqlite3_column_int64(q, 0));
            }
            sqlite3_reset(q);
            q = st->st[ST_SEEN_LOAD];
            sqlite3_bind_text(q, 1, st->corr_name[j], -1, SQLITE_STATIC);
            sqlite3_bind_int64(q, 2, 10000);
            while (rc == 0 && (s = sqlite3_step(q)) == SQLITE_ROW) {
                struct kt_corr_state cs = {.def = j,
                                           .key = {(const char *)sqlite3_column_text(q, 0),
                                                   (size_t)sqlite3_column_bytes(q, 0)},
                                           .first_ts = sqlite3_column_int64(q, 1),
                                           .last_ts = sqlite3_column_int64(q, 2)};
                rc = kt_corr_restore(st->corr, &cs);
            }
        } else {
            q = st->st[ST_CORR_LOAD];
            sqlite3_bind_text(q, 1, st->corr_name[j], -1, SQLITE_STATIC);
            while (rc == 0 && (s = sqlite3_step(q)) == SQLITE_ROW) {
                struct kt_corr_state cs = {.def = j,
                                           .key = {(const char *)sqlite3_column_text(q, 0),
                                                   (size_t)sqlite3_column_bytes(q, 0)},
                                           .blob = sqlite3_column_blob(q, 1),
                                           .len = (size_t)sqlite3_column_bytes(q, 1),
                                           .last_ts = sqlite3_column_int64(q, 2)};
                rc = kt_corr_restore(st->corr, &cs);
            }
        }
        if (rc == 0 && s != SQLITE_DONE) {
            kt_error("store", "restoring correlation state: %s", sqlite3_errmsg(st->db));
            rc = KT_EIO;
        }
        sqlite3_reset(q);
    }
    /* restoring evicts past max_groups: those deletions are written with the next batch */
    return rc;
}

int kt_store_attach_rules(struct kt_store *st, const struct kt_ruleset *rs, char *errstr,
                          size_t errlen)
{
    int rc = 0;

    if (rs == NULL || st->rules == rs || kt_ruleset_ncorr(rs) == 0) {
        return 0;
    }
    pthread_mutex_lock(&st->mu);
    kt_corr_destroy(st->corr);
    kt_matcher_destroy(st->cm);
    free(st->corr_name);
    free(st->corr_kind);
    st->ncorr = kt_ruleset_ncorr(rs);
    st->corr = kt_ruleset_corr_engine(rs);
    st->cm = kt_matcher_create(rs);
    st->corr_name = calloc(st->ncorr, sizeof(*st->corr_name));
    st->corr_kind = calloc(st->ncorr, sizeof(*st->corr_kind));
    if (st->corr == NULL || st->cm == NULL || st->corr_name == NULL || st->corr_kind == NULL) {
        snprintf(errstr, errlen, "out of memory");
        rc = KT_ENOMEM;
    }
    size_t nrules = kt_ruleset_count(rs) - st->ncorr;
    for (size_t j = 0; rc == 0 && j < st->ncorr; j++) {
        struct kt_rule_info ri;
        kt_ruleset_info(rs, nrules + j, &ri);
        st->corr_name[j] = ri.name;
        st->corr_kind[j] = strcmp(ri.kind, "count") == 0      ? KT_CORR_COUNT
                           : strcmp(ri.kind, "distinct") == 0 ? KT_CORR_DISTINCT
                           : strcmp(ri.kind, "sequence") == 0 ? KT_CORR_SEQUENCE
                                                              : KT_CORR_FIRST_SEEN;
    }
    if (rc == 0) {
        kt_corr_track(st->corr, 1);
        st->rules = rs;
        if ((rc = corr_restore_all(st)) != 0) {
            snprintf(errstr, errlen, "cannot restore correlation state: %s",
                     sqlite3_errmsg(st->db));
        }
    }
    if (rc != 0) {
        kt_corr_destroy(st->corr);
        kt_matcher_destroy(st->cm);
        st->corr = NULL;
        st->cm = NULL;
        st->rules = NULL;
        st->ncorr = 0;
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* The body of the transaction; the caller commits or rolls back. Counts into *d. */
static int write_batch(struct kt_store *st, struct kt_batch *b, struct kt_store_stats *d)
{
    int64_t now = kt_now_wall_us();
    int rc = reserve(st, b);

    /* firings appended by an earlier attempt at this batch (rolled back) go: they come again */
    while (b->nalerts > 0 && b->alerts[b->nalerts - 1].refs != NULL) {
        b->nalerts--;
    }
    st->now = now;
    size_t next_hit = 0; /* the next correlation hit to feed (hits are in event order) */

    for (size_t o = 0; o < b->norigins && rc == 0; o++) {
        rc = dict_id(&st->dict, b->origins[o], strlen(b->origins[o]), &st->origin_ids[o]);
    }
    for (size_t i = 0; i < b->nrecs && rc == 0; i++) {
        const char *reason = reject_reason(b, i);
        int added = 0;
        st->ids[i] = 0;
        st->dup[i] = 0;
        st->rawq[i] = 0;
        if (reason != NULL) {
            rc = write_reject(st, b, i, reason, now, &added);
            d->rejects += (uint64_t)added;
            continue;
        }
        rc = write_event(st, b, i);
        if (rc != 0) {
            break;
        }
        st->dup[i] = st->ids[i] == ID_UNKNOWN;
        if (st->ids[i] == ID_UNKNOWN) {
            d->duplicates++;
        } else {
            d->events++;
            if (st->corr != NULL && (rc = feed_corr(st, b, i, st->ids[i], &next_hit)) != 0) {
                break;
            }
        }
        if (st->opts.keep_raw_all || (b->events[i].flags & KT_EV_KEEP_RAW)) {
            int64_t id = 0;
            rc = event_row(st, b, i, &id);
            if (rc == 0) {
                rc = write_raw(st, b, i, id);
            }
        }
    }
    for (size_t k = 0; k < b->nalerts && rc == 0; k++) {
        struct kt_alert *a = &b->alerts[k];
        int64_t id = 0;
        int added = 0;
        a->stored = 0;
        if (a->event >= b->nrecs) {
            kt_error("store", "alert '%s' names event %u of a batch of %zu", a->rule, a->event,
                     b->nrecs);
            return KT_EINVAL;
        }
        if (st->ids[a->event] == 0) {
            kt_warn("store", "alert '%s' on a rejected record: not stored", a->rule);
            continue;
        }
        rc = event_row(st, b, a->event, &id);
        int64_t into = 0, mine = 0;
        if (rc == 0 && a->refs == NULL && st->dup[a->event]) {
            /* a duplicate event: its own alert already (a replay)? */
            sqlite3_stmt *q = st->st[ST_ALERT_EXISTS];
            sqlite3_bind_int64(q, 1, id);
            sqlite3_bind_text(q, 2, a->rule, -1, SQLITE_STATIC);
            rc = one_id(q, &mine);
        }
        if (rc == 0 && mine == 0) {
            rc = merge_alert(st, b, a, id, &into);
        }
        if (rc == 0 && mine == 0 && into == 0) {
            rc = write_alert(st, b, a, id, &added);
            int64_t alert_id = sqlite3_last_insert_rowid(st->db);
            if (rc == 0 && added && a->refs != NULL) {
                rc = write_alert_events(st, a, alert_id);
            }
            if (rc == 0 && added && a->group.len > 0) {
                rc = open_group(st, b, a, alert_id);
            }
        }
        /* an alerted event's JSON is always kept: it is the evidence */
        if (rc == 0) {
            rc = write_raw(st, b, a->event, id);
        }
        a->stored = added;
        d->alerts += (uint64_t)added;
    }
    if (rc == 0 && b->ckpt_kind == KT_CKPT_FILE) {
        rc = write_ckpt(st, b, now);
    }
    if (rc == 0 && b->ckpt_kind == KT_CKPT_KAFKA) {
        rc = write_ckpt_kafka(st, b, now);
    }
    return rc != 0 ? KT_EIO : 0;
}

/*
 * Keep why a transaction failed (SQLite's code and message, before the rollback replaces
 * them) for store_failure_transient() and kt_store_last_error(), and count it. Returns the
 * status for the batches: KT_EFULL for a full disk or database, rc otherwise. st->mu held.
 */
static int note_failure(struct kt_store *st, int rc)
{
    int code = sqlite3_extended_errcode(st->db);

    st->last_code = code;
    if (rc != KT_EIO) {
        snprintf(st->last_err, sizeof(st->last_err), "%s", kt_strerror(rc));
    } else if ((code & 0xff) == SQLITE_FULL && st->max_pages > 0) {
        snprintf(st->last_err, sizeof(st->last_err),
                 "%s (the disk, or the database's size limit of %llu bytes)",
                 sqlite3_errmsg(st->db), (unsigned long long)st->opts.max_db_bytes);
    } else {
        snprintf(st->last_err, sizeof(st->last_err), "%s", sqlite3_errmsg(st->db));
    }
    pthread_mutex_lock(&st->smu);
    st->failures++;
    pthread_mutex_unlock(&st->smu);
    return rc == KT_EIO && (code & 0xff) == SQLITE_FULL ? KT_EFULL : rc;
}

int store_failure_transient(struct kt_store *st)
{
    pthread_mutex_lock(&st->mu);
    int code = st->last_code & 0xff;
    pthread_mutex_unlock(&st->mu);
    /* a full disk fills no less by waiting, but space can be freed (or rows deleted under a
     * size limit); locks are released; I/O errors are often a passing fault of the device */
    return code == SQLITE_FULL || code == SQLITE_BUSY || code == SQLITE_LOCKED ||
           code == SQLITE_IOERR;
}

int store_retry_ms(const struct kt_store *st)
{
    return st->retry_ms;
}

void kt_store_last_error(struct kt_store *st, char *buf, size_t len)
{
    pthread_mutex_lock(&st->mu);
    snprintf(buf, len, "%s", st->last_err);
    pthread_mutex_unlock(&st->mu);
}

static void add_stats(struct kt_store_stats *to, const struct kt_store_stats *d)
{
    to->events += d->events;
    to->duplicates += d->duplicates;
    to->rejects += d->rejects;
    to->alerts += d->alerts;
    to->batches += d->batches;
}

/*
 * One transaction holding the n batches at bs, in order. Counts into *d only what committed.
 * 0, KT_EINVAL (an inconsistent batch) or KT_EIO; on failure nothing of any batch is stored.
 * The caller holds st->mu.
 */
static int write_txn(struct kt_store *st, struct kt_batch *const *bs, size_t n,
                     struct kt_store_stats *d)
{
    struct kt_store_stats sum = {0};
    size_t recs = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        recs += bs[i]->nrecs;
        if (bs[i]->nrecs > 0 && bs[i]->events == NULL) {
            kt_error("store", "a batch of %zu records without decoded events", bs[i]->nrecs);
            return KT_EINVAL;
        }
    }
    if (step_done(st->st[ST_BEGIN]) != 0) {
        rc = note_failure(st, KT_EIO);
        kt_error("store", "cannot begin a transaction: %s", st->last_err);
        return rc;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = write_batch(st, bs[i], &sum);
    }
    if (rc == 0) {
        rc = rawpack_flush(&st->raw, st->st[ST_RAW_BLOCK], st->st[ST_RAW], 1);
    }
    /* the correlation state these batches leave, in their transaction */
    if (rc == 0 && st->corr != NULL) {
        rc = kt_corr_checkpoint(st->corr, corr_put, corr_del, st) != 0 ? KT_EIO : 0;
    }
    if (rc == 0 && step_done(st->st[ST_COMMIT]) != 0) {
        rc = KT_EIO;
    }
    if (rc != 0) {
        rc = note_failure(st, rc);
        kt_error("store", "%zu batch(es), %zu records, not stored: %s", n, recs, st->last_err);
        /* SQLite may have rolled back already (an I/O error, a full disk) */
        if (!sqlite3_get_autocommit(st->db)) {
            step_done(st->st[ST_ROLLBACK]);
        }
        /* ids cached during the transaction may name strings rows that no longer exist */
        dict_forget(&st->dict);
        rawpack_clear(&st->raw);
        /* the engine saw what was rolled back: back to the state stored with the last commit */
        if (st->corr != NULL && corr_restore_all(st) != 0) {
            kt_error("store", "correlation state not restored after a rollback: %s",
                     sqlite3_errmsg(st->db));
        }
        return rc;
    }
    sum.batches = n;
    st->commits++;
    pthread_mutex_lock(&st->smu);
    add_stats(&st->totals, &sum);
    if (st->corr != NULL) {
        struct kt_corr_stats cs;
        kt_corr_stats(st->corr, &cs);
        st->totals.corr_groups = cs.groups;
        st->totals.corr_bytes = cs.bytes;
        st->totals.corr_evicted = cs.evicted;
        st->totals.corr_expired = cs.expired;
        st->totals.corr_late = cs.late;
    }
    pthread_mutex_unlock(&st->smu);
    add_stats(d, &sum);
    return 0;
}

int kt_store_write(struct kt_store *st, struct kt_batch *b, struct kt_store_stats *delta)
{
    struct kt_store_stats d = {0};
    int rc;

    pthread_mutex_lock(&st->mu);
    rc = write_txn(st, &b, 1, &d);
    pthread_mutex_unlock(&st->mu);
    if (delta != NULL) {
        add_stats(delta, &d);
    }
    return rc;
}

int store_write_group(struct kt_store *st, struct kt_batch *const *bs, size_t n, int *status,
                      size_t *committed)
{
    struct kt_store_stats d = {0};
    size_t i = 0;
    int rc = 0;

    if (n > 1) {
        pthread_mutex_lock(&st->mu);
        rc = write_txn(st, bs, n, &d);
        pthread_mutex_unlock(&st->mu);
        i = rc == 0 ? n : 0;
    }
    /* one at a time, so that the batches before a bad one still commit */
    rc = 0;
    for (; i < n && rc == 0; i++) {
        rc = status[i] = kt_store_write(st, bs[i], NULL);
    }
    *committed = rc == 0 ? n : i - 1;
    for (size_t k = 0; k < n; k++) {
        status[k] = k < *committed ? 0 : rc;
    }
    return rc;
}

int kt_store_ckpt_lookup(void *ctx, uint64_t fingerprint, struct kt_ckpt_file *out)
{
    struct kt_store *st = ctx;
    sqlite3_stmt *q = NULL;
    int rc = KT_ENOENT;
    int s;

    pthread_mutex_lock(&st->mu);
    q = st->st[ST_CKPT_GET];
    sqlite3_bind_int64(q, 1, (int64_t)fingerprint);
    s = sqlite3_step(q);
    if (s == SQLITE_ROW) {
        out->offset = (uint64_t)sqlite3_column_int64(q, 0);
        out->mode = sqlite3_column_int(q, 1);
        out->done = sqlite3_column_int(q, 2);
        out->line = (uint64_t)sqlite3_column_int64(q, 3);
        out->col = (uint64_t)sqlite3_column_int64(q, 4);
        rc = 0;
    } else if (s != SQLITE_DONE) {
        kt_error("store", "checkpoint lookup: %s", sqlite3_errmsg(st->db));
        rc = KT_EIO;
    }
    sqlite3_reset(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int kt_store_kafka_lookup(void *ctx, const char *topic, int32_t partition, int64_t *next_offset)
{
    struct kt_store *st = ctx;
    sqlite3_stmt *q = NULL;
    int rc = KT_ENOENT;
    int s;

    pthread_mutex_lock(&st->mu);
    q = st->st[ST_CKPT_KAFKA_GET];
    sqlite3_bind_text(q, 1, topic, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, partition);
    s = sqlite3_step(q);
    if (s == SQLITE_ROW) {
        *next_offset = sqlite3_column_int64(q, 0);
        rc = 0;
    } else if (s != SQLITE_DONE) {
        kt_error("store", "Kafka checkpoint lookup: %s", sqlite3_errmsg(st->db));
        rc = KT_EIO;
    }
    sqlite3_reset(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void kt_store_stats(struct kt_store *st, struct kt_store_stats *out)
{
    int64_t since = __atomic_load_n(&st->wal_blocked_since, __ATOMIC_RELAXED);

    pthread_mutex_lock(&st->smu);
    *out = st->totals;
    out->write_failures = st->failures;
    out->wal_blocked = since != 0;
    out->wal_blocked_us = st->wal_blocked_us;
    pthread_mutex_unlock(&st->smu);
    if (since != 0) {
        out->wal_blocked_us += (uint64_t)(kt_now_mono_us() - since);
    }
}

/* ---- checking a database ---- */

/* Every statement the store uses must prepare: the tables, columns and views it names exist.
 * One report per statement that does not. */
static int check_statements(sqlite3 *db, void (*report)(void *, const char *), void *ctx)
{
    char line[512];
    int problems = 0;

    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(db, stmt_sql[i], -1, &q, NULL) != SQLITE_OK) {
            snprintf(line, sizeof(line), "schema: %s", sqlite3_errmsg(db));
            report(ctx, line);
            problems++;
        }
        sqlite3_finalize(q);
    }
    return problems;
}

/* SQLite's integrity check; one report per problem row ("ok" alone means none). */
static int check_integrity(sqlite3 *db, void (*report)(void *, const char *), void *ctx)
{
    sqlite3_stmt *q = NULL;
    int problems = 0, s;

    if (sqlite3_prepare_v2(db, SQL_INTEGRITY_CHECK, -1, &q, NULL) != SQLITE_OK) {
        report(ctx, sqlite3_errmsg(db));
        return 1;
    }
    while ((s = sqlite3_step(q)) == SQLITE_ROW) {
        const char *row = (const char *)sqlite3_column_text(q, 0);
        if (row != NULL && strcmp(row, "ok") != 0) {
            report(ctx, row);
            problems++;
        }
    }
    if (s != SQLITE_DONE) {
        report(ctx, sqlite3_errmsg(db));
        problems++;
    }
    sqlite3_finalize(q);
    return problems;
}

int kt_store_check(const char *path, void (*report)(void *ctx, const char *line), void *ctx,
                   char *errstr, size_t errlen)
{
    sqlite3 *db = NULL;
    int64_t version = 0;
    int problems = 0, rc = KT_EIO;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(errstr, errlen, "%s: cannot open: %s", path,
                 db != NULL ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    if (identify(db, path, &version, errstr, errlen) != 0) {
        if ((sqlite3_errcode(db) & 0xff) == SQLITE_CORRUPT) {
            /* a SQLite file, damaged where its schema is read: a finding, not a refusal */
            report(ctx, sqlite3_errmsg(db));
            rc = KT_EPARSE;
        }
        goto out;
    }
    if (version == 0) {
        report(ctx, "schema: no ktrail tables (an empty database)");
        problems++;
    } else if (version == SCHEMA_VERSION) {
        /* an older version is migrated by the next ktrail that writes it */
        problems += check_statements(db, report, ctx);
    }
    problems += check_integrity(db, report, ctx);
    rc = problems > 0 ? KT_EPARSE : 0;
out:
    sqlite3_close(db);
    return rc;
}

/* ---- the WAL's bound ---- */

/* Say, at most every WARN_EVERY_US while writes wait, how big the WAL is and why. */
static void warn_wal_blocked(struct kt_store *st, int64_t now)
{
    enum { WARN_AFTER_US = 1000000 };
    static const int64_t WARN_EVERY_US = 30000000;
    char when[32] = "?";

    if (now - st->wal_blocked_since < WARN_AFTER_US ||
        (st->wal_warned != 0 && now - st->wal_warned < WARN_EVERY_US)) {
        return;
    }
    st->wal_warned = now;
    /* the reader's snapshot began after the WAL was last wholly copied, or the copy would
     * have gone on: that time bounds it from below */
    time_t t = (time_t)(__atomic_load_n(&st->wal_clean_us, __ATOMIC_RELAXED) / 1000000);
    struct tm tm;
    if (gmtime_r(&t, &tm) != NULL) {
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    kt_warn("store",
            "the WAL holds %lld MiB, its bound: a read transaction open since %s or later "
            "keeps SQLite from checkpointing it; storing waits (backpressure) for %.0f s now, "
            "until that reader ends",
            (long long)((int64_t)st->wal_pages * st->page_size >> 20), when,
            (double)(now - st->wal_blocked_since) / 1e6);
}

int store_wal_room(struct kt_store *st)
{
    int rc = 0;

    pthread_mutex_lock(&st->mu);
    if (st->wal_pages >= st->wal_max_pages && !wal_restart(st)) {
        int64_t now = kt_now_mono_us();
        if (st->wal_blocked_since == 0) {
            __atomic_store_n(&st->wal_blocked_since, now, __ATOMIC_RELAXED);
            st->wal_warned = 0;
        }
        warn_wal_blocked(st, now);
        rc = KT_EFULL;
    }
    pthread_mutex_unlock(&st->mu);
    if (rc == 0) {
        store_wal_unblocked(st, 1);
    }
    return rc;
}

void store_wal_unblocked(struct kt_store *st, int restarted)
{
    pthread_mutex_lock(&st->mu);
    int64_t since = st->wal_blocked_since;
    if (since != 0) {
        int64_t waited = kt_now_mono_us() - since;
        __atomic_store_n(&st->wal_blocked_since, 0, __ATOMIC_RELAXED);
        pthread_mutex_lock(&st->smu);
        st->wal_blocked_us += (uint64_t)waited;
        pthread_mutex_unlock(&st->smu);
        if (st->wal_warned != 0 && restarted) {
            kt_info("store", "the WAL restarted: storing goes on after waiting %.1f s",
                    (double)waited / 1e6);
        } else if (!restarted) {
            kt_info("store", "stopping: what is queued is written past the WAL's bound");
        }
    }
    pthread_mutex_unlock(&st->mu);
}

void store_counters(struct kt_store *st, struct store_counters *out)
{
    pthread_mutex_lock(&st->mu);
    out->dict_hits = st->dict.hits;
    out->dict_misses = st->dict.misses;
    out->dict_clears = st->dict.clears;
    out->commits = st->commits;
    out->wal_restarts = st->wal_restarts;
    pthread_mutex_unlock(&st->mu);
}
