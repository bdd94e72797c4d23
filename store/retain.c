/*
 * retain.c: retention (see retain.h).
 *
 * Each phase reads a chunk of candidates with a plain SELECT (a read: no lock that blocks
 * the writer), then deletes them by key in one short write transaction, then pauses. Chunks
 * walk their table in index order from where the last one stopped (keyset), so a pass reads
 * each old row once whatever is kept. Alerts go first: an old event is kept only while an
 * alert still names it.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "retain.h"
#include "store.h"

#define MOD "store:retain"

struct pass {
    sqlite3 *db;
    int chunk;
    int pause_ms;
    const volatile int *stop;
    struct kt_prune_stats *st;
    char *errstr;
    size_t errlen;
};

/* clang-format off */
#define SQL_OLD_ALERTS "SELECT id FROM alerts WHERE ts < ?1 AND id > ?2 ORDER BY id LIMIT ?3"
#define SQL_DEL_LINKS "DELETE FROM alert_events WHERE alert_id = ?1"
#define SQL_DEL_ALERT "DELETE FROM alerts WHERE id = ?1"
/* suppression windows of deleted alerts, or long closed */
#define SQL_DEL_GROUPS                                                                             \
    "DELETE FROM alert_groups WHERE until_ts < ?1"                                                 \
    " OR NOT EXISTS (SELECT 1 FROM alerts WHERE id = alert_groups.alert_id)"
/* in time order along the (ts, ...) unique index; kept: an alert names the event */
#define SQL_OLD_EVENTS                                                                             \
    "SELECT e.id, e.ts, EXISTS (SELECT 1 FROM alerts a WHERE a.event_id = e.id)"                  \
    " OR EXISTS (SELECT 1 FROM alert_events ae WHERE ae.event_id = e.id)"                          \
    " FROM events e WHERE e.ts < ?1 AND e.ts >= ?2 ORDER BY e.ts LIMIT ?3"
#define SQL_DEL_RAW "DELETE FROM raw WHERE event_id = ?1"
#define SQL_RAW_BLOCK "SELECT block FROM raw WHERE event_id = ?1"
/* blocks of raw JSON up to ?1 that no raw row names any more */
#define SQL_OLD_BLOCKS                                                                             \
    "SELECT b.id FROM raw_blocks b WHERE b.id <= ?1 AND b.id > ?2"                                 \
    " AND NOT EXISTS (SELECT 1 FROM raw r WHERE r.block = b.id) ORDER BY b.id LIMIT ?3"
#define SQL_DEL_BLOCK "DELETE FROM raw_blocks WHERE id = ?1"
#define SQL_DEL_EVENT "DELETE FROM events WHERE id = ?1"
#define SQL_OLD_REJECTS                                                                            \
    "SELECT id FROM rejects WHERE ingested_at < ?1 AND id > ?2 ORDER BY id LIMIT ?3"
#define SQL_DEL_REJECT "DELETE FROM rejects WHERE id = ?1"
#define SQL_OLD_KEYS(table, key)                                                                   \
    "SELECT rule, " key " FROM " table " WHERE last_ts < ?1 AND (rule, " key ") > (?2, ?3)"       \
    " ORDER BY rule, " key " LIMIT ?4"
#define SQL_DEL_KEY(table, key) "DELETE FROM " table " WHERE rule = ?1 AND " key " = ?2"
#define SQL_COUNT_KEPT "SELECT count(*) FROM events WHERE ts < ?1"
/* clang-format on */

static int fail(struct pass *p, const char *what)
{
    snprintf(p->errstr, p->errlen, "retention: %s: %s", what, sqlite3_errmsg(p->db));
    return KT_EIO;
}

static int stopped(const struct pass *p)
{
    return p->stop != NULL && *p->stop;
}

/* After a write transaction that took took_us: pause_ms, or as long as it took when longer,
 * so that a prune holds the write lock at most half the time whatever its disk (no pause at
 * all when pause_ms is 0: a one-shot prune). */
static void pause_between(const struct pass *p, int64_t took_us)
{
    if (p->pause_ms > 0) {
        int64_t us = took_us > (int64_t)p->pause_ms * 1000 ? took_us : (int64_t)p->pause_ms * 1000;
        struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000L};
        nanosleep(&ts, NULL);
    }
}

static int exec(struct pass *p, const char *sql)
{
    return sqlite3_exec(p->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : fail(p, sql);
}

/* Run st (one integer parameter) for each of ids[0, n). */
static int delete_each(struct pass *p, sqlite3_stmt *st, const int64_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(st, 1, ids[i]);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            return fail(p, "deleting");
        }
    }
    return 0;
}

/* One write transaction: for each statement of dels, delete_each(ids). */
static int delete_chunk(struct pass *p, sqlite3_stmt *const *dels, size_t ndels, const int64_t *ids,
                        size_t n)
{
    if (n == 0) {
        return 0;
    }
    int64_t t0 = kt_now_mono_us();
    int rc = exec(p, "BEGIN IMMEDIATE");
    for (size_t d = 0; rc == 0 && d < ndels; d++) {
        rc = delete_each(p, dels[d], ids, n);
    }
    if (rc == 0) {
        rc = exec(p, "COMMIT");
    }
    if (rc != 0) {
        sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    p->st->chunks++;
    pause_between(p, kt_now_mono_us() - t0);
    return 0;
}

static int prepare(struct pass *p, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(p->db, sql, -1, st, NULL) == SQLITE_OK ? 0 : fail(p, sql);
}

/* Rows of a table keyed by an integer id, selected by sel (?1 horizon, ?2 after id, ?3 limit),
 * deleted by dels; counted in *count. */
static int prune_by_id(struct pass *p, const char *sel, const char *const *dels, size_t ndels,
                       int64_t before, uint64_t *count)
{
    sqlite3_stmt *q = NULL, *d[4] = {NULL};
    int64_t *ids = calloc((size_t)p->chunk, sizeof(*ids));
    int rc = ids != NULL ? prepare(p, sel, &q) : KT_ENOMEM;
    for (size_t i = 0; rc == 0 && i < ndels; i++) {
        rc = prepare(p, dels[i], &d[i]);
    }
    int64_t after = 0;
    while (rc == 0 && !stopped(p)) {
        size_t n = 0;
        sqlite3_bind_int64(q, 1, before);
        sqlite3_bind_int64(q, 2, after);
        sqlite3_bind_int(q, 3, p->chunk);
        while (sqlite3_step(q) == SQLITE_ROW) {
            ids[n++] = sqlite3_column_int64(q, 0);
        }
        sqlite3_reset(q);
        if (n == 0) {
            break;
        }
        after = ids[n - 1];
        rc = delete_chunk(p, d, ndels, ids, n);
        *count += rc == 0 ? n : 0;
    }
    for (size_t i = 0; i < ndels; i++) {
        sqlite3_finalize(d[i]);
    }
    sqlite3_finalize(q);
    free(ids);
    return rc;
}

/* The newest block of raw JSON that the events ids[0, n) have, in *upto. */
static void note_blocks(sqlite3_stmt *q, const int64_t *ids, size_t n, int64_t *upto)
{
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(q, 1, ids[i]);
        if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0) > *upto) {
            *upto = sqlite3_column_int64(q, 0);
        }
        sqlite3_reset(q);
    }
}

/* Events in time order: those no alert names are deleted with their raw JSON; *upto gets the
 * newest raw block they had (the blocks left without rows go after). */
static int prune_events(struct pass *p, int64_t before, int64_t *upto)
{
    sqlite3_stmt *q = NULL, *d[2] = {NULL}, *blk = NULL;
    int64_t *ids = calloc((size_t)p->chunk, sizeof(*ids));
    int rc = ids != NULL ? prepare(p, SQL_OLD_EVENTS, &q) : KT_ENOMEM;
    rc = rc != 0 ? rc : prepare(p, SQL_DEL_RAW, &d[0]);
    rc = rc != 0 ? rc : prepare(p, SQL_DEL_EVENT, &d[1]);
    rc = rc != 0 ? rc : prepare(p, SQL_RAW_BLOCK, &blk);
    int64_t from = INT64_MIN;
    while (rc == 0 && !stopped(p)) {
        size_t n = 0, rows = 0;
        int64_t last = from;
        sqlite3_bind_int64(q, 1, before);
        sqlite3_bind_int64(q, 2, from);
        sqlite3_bind_int(q, 3, p->chunk);
        while (sqlite3_step(q) == SQLITE_ROW) {
            rows++;
            last = sqlite3_column_int64(q, 1);
            if (!sqlite3_column_int(q, 2)) {
                ids[n++] = sqlite3_column_int64(q, 0);
            }
        }
        sqlite3_reset(q);
        if (rows == 0) {
            break;
        }
        /* Deleted rows do not come back, kept ones of the last time do: go on from that time,
         * or past it when a whole chunk of one time is kept. */
        from = n == 0 && last == from ? last + 1 : last;
        note_blocks(blk, ids, n, upto);
        rc = delete_chunk(p, d, 2, ids, n);
        p->st->events += rc == 0 ? n : 0;
    }
    sqlite3_finalize(d[0]);
    sqlite3_finalize(d[1]);
    sqlite3_finalize(blk);
    sqlite3_finalize(q);
    free(ids);
    if (rc == 0 && !stopped(p) && prepare(p, SQL_COUNT_KEPT, &q) == 0) {
        sqlite3_bind_int64(q, 1, before);
        if (sqlite3_step(q) == SQLITE_ROW) {
            p->st->kept = (uint64_t)sqlite3_column_int64(q, 0);
        }
        sqlite3_finalize(q);
    }
    return rc;
}

/* first_seen or corr_state: WITHOUT ROWID tables keyed by (rule, key text). */
static int prune_keys(struct pass *p, const char *sel, const char *del, int64_t before,
                      uint64_t *count)
{
    sqlite3_stmt *q = NULL, *d = NULL;
    char **rules = calloc((size_t)p->chunk, sizeof(*rules));
    char **keys = calloc((size_t)p->chunk, sizeof(*keys));
    int rc = rules != NULL && keys != NULL ? prepare(p, sel, &q) : KT_ENOMEM;
    rc = rc != 0 ? rc : prepare(p, del, &d);
    char *after_rule = strdup(""), *after_key = strdup("");
    rc = rc != 0 ? rc : after_rule != NULL && after_key != NULL ? 0 : KT_ENOMEM;
    while (rc == 0 && !stopped(p)) {
        size_t n = 0;
        sqlite3_bind_int64(q, 1, before);
        sqlite3_bind_text(q, 2, after_rule, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 3, after_key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(q, 4, p->chunk);
        while (rc == 0 && sqlite3_step(q) == SQLITE_ROW) {
            rules[n] = strdup((const char *)sqlite3_column_text(q, 0));
            keys[n] = strdup((const char *)sqlite3_column_text(q, 1));
            rc = rules[n] != NULL && keys[n] != NULL ? 0 : KT_ENOMEM;
            n++;
        }
        sqlite3_reset(q);
        if (rc != 0 || n == 0) {
            for (size_t i = 0; i < n; i++) {
                free(rules[i]);
                free(keys[i]);
            }
            break;
        }
        int64_t t0 = kt_now_mono_us();
        rc = exec(p, "BEGIN IMMEDIATE");
        for (size_t i = 0; rc == 0 && i < n; i++) {
            sqlite3_bind_text(d, 1, rules[i], -1, SQLITE_STATIC);
            sqlite3_bind_text(d, 2, keys[i], -1, SQLITE_STATIC);
            rc = sqlite3_step(d) == SQLITE_DONE ? 0 : fail(p, "deleting keys");
            sqlite3_reset(d);
        }
        rc = rc != 0 ? rc : exec(p, "COMMIT");
        if (rc != 0) {
            sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
        } else {
            *count += n;
            p->st->chunks++;
        }
        free(after_rule);
        free(after_key);
        after_rule = rules[n - 1];
        after_key = keys[n - 1];
        for (size_t i = 0; i + 1 < n; i++) {
            free(rules[i]);
            free(keys[i]);
        }
        pause_between(p, kt_now_mono_us() - t0);
    }
    free(after_rule);
    free(after_key);
    free(rules);
    free(keys);
    sqlite3_finalize(d);
    sqlite3_finalize(q);
    return rc;
}

int kt_prune(const char *db_path, int64_t events_before, int64_t alerts_before, int chunk,
             int pause_ms, const volatile int *stop, struct kt_prune_stats *st, char *errstr,
             size_t errlen)
{
    struct pass p = {.chunk = chunk > 0 ? chunk : 1000,
                     .pause_ms = pause_ms,
                     .stop = stop,
                     .st = st,
                     .errstr = errstr,
                     .errlen = errlen};
    if (alerts_before > events_before) {
        alerts_before = events_before;
    }
    if (sqlite3_open_v2(db_path, &p.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        int rc = fail(&p, db_path);
        sqlite3_close(p.db);
        return rc;
    }
    sqlite3_busy_timeout(p.db, 10000);
    static const char *const del_alert[] = {SQL_DEL_LINKS, SQL_DEL_ALERT};
    static const char *const del_reject[] = {SQL_DEL_REJECT};
    int rc = prune_by_id(&p, SQL_OLD_ALERTS, del_alert, 2, alerts_before, &st->alerts);
    if (rc == 0) {
        sqlite3_stmt *g = NULL;
        rc = prepare(&p, SQL_DEL_GROUPS, &g);
        if (rc == 0) {
            sqlite3_bind_int64(g, 1, alerts_before);
            rc = sqlite3_step(g) == SQLITE_DONE ? 0 : fail(&p, "alert_groups");
        }
        sqlite3_finalize(g);
    }
    int64_t upto = 0;
    uint64_t blocks = 0;
    static const char *const del_block[] = {SQL_DEL_BLOCK};
    rc = rc != 0 ? rc : prune_events(&p, events_before, &upto);
    rc = rc != 0 || upto == 0 ? rc : prune_by_id(&p, SQL_OLD_BLOCKS, del_block, 1, upto, &blocks);
    rc =
        rc != 0 ? rc : prune_by_id(&p, SQL_OLD_REJECTS, del_reject, 1, events_before, &st->rejects);
    rc = rc != 0 ? rc
                 : prune_keys(&p, SQL_OLD_KEYS("first_seen", "key"),
                              SQL_DEL_KEY("first_seen", "key"), events_before, &st->first_seen);
    rc = rc != 0
             ? rc
             : prune_keys(&p, SQL_OLD_KEYS("corr_state", "group_key"),
                          SQL_DEL_KEY("corr_state", "group_key"), events_before, &st->corr_state);
    sqlite3_close(p.db);
    return rc;
}

/* ---- background retention ---- */

struct kt_retain {
    char *db_path;
    struct kt_retain_opts o;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    volatile int stop;
    struct kt_prune_stats total; /* under mu */
};

static void add_stats(struct kt_prune_stats *to, const struct kt_prune_stats *a)
{
    to->events += a->events;
    to->alerts += a->alerts;
    to->kept = a->kept;
    to->rejects += a->rejects;
    to->first_seen += a->first_seen;
    to->corr_state += a->corr_state;
    to->chunks += a->chunks;
}

static void *retain_main(void *arg)
{
    struct kt_retain *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        pthread_mutex_unlock(&r->mu);
        struct kt_prune_stats st = {0};
        char err[512] = "", when[32];
        int64_t now = kt_now_wall_us(), t0 = kt_now_mono_us();
        int64_t events_before = now - r->o.events_us, alerts_before = now - r->o.alerts_us;
        /* transactions of 200 rows, each followed by a pause as long (10 ms at least): the
         * writer waits for one at most, and a request's commit for a few ms (with 1000 rows
         * and 10 ms, on a database of 10 million old events three times SQLite's cache, a
         * transaction took 70 ms and the webhook's p99 went from 66 to 149 ms) */
        int rc = kt_prune(r->db_path, events_before, alerts_before, 200, 10, &r->stop, &st, err,
                          sizeof(err));
        if (rc != 0) {
            kt_warn(MOD, "%s (the next pass retries)", err);
        } else if (st.events + st.alerts + st.rejects + st.first_seen + st.corr_state > 0) {
            kt_format_rfc3339(events_before, when);
            kt_info(MOD,
                    "deleted %llu events, %llu alerts, %llu rejects, %llu first_seen keys, %llu "
                    "correlation groups older than %s in %.1f s",
                    (unsigned long long)st.events, (unsigned long long)st.alerts,
                    (unsigned long long)st.rejects, (unsigned long long)st.first_seen,
                    (unsigned long long)st.corr_state, when, (double)(kt_now_mono_us() - t0) / 1e6);
        }
        pthread_mutex_lock(&r->mu);
        add_stats(&r->total, &st);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += r->o.interval_s;
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0) {
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int kt_retain_start(const char *db_path, const struct kt_retain_opts *o, struct kt_retain **out)
{
    *out = NULL;
    if (o->events_us <= 0) {
        return KT_EINVAL;
    }
    struct kt_retain *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->db_path = strdup(db_path)) == NULL) {
        free(r);
        return KT_ENOMEM;
    }
    r->o = *o;
    if (r->o.alerts_us < r->o.events_us) {
        r->o.alerts_us = r->o.events_us;
    }
    if (r->o.interval_s <= 0) {
        r->o.interval_s = 600;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&r->thread, NULL, retain_main, r) != 0) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r->db_path);
        free(r);
        return KT_ENOMEM;
    }
    *out = r;
    return 0;
}

void kt_retain_stats(struct kt_retain *r, struct kt_prune_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->total;
    pthread_mutex_unlock(&r->mu);
}

void kt_retain_stop(struct kt_retain *r)
{
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r->db_path);
    free(r);
}
