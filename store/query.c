/*
 * query.c: the analyst's questions (see query.h).
 *
 * The SQL is built from the filter so that each answer walks one index: the time index
 * (events' unique key, alerts_ts), (user, ts) or events_name, the strings looked up first. A
 * source address has no index of its own (one more index to insert at random slows every
 * replay): it is matched on the rows of the time range, so --ip is quick with --since. Rows
 * come from the base tables joined to the dictionary, not from the views, so the planner sees
 * the indexed columns.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "store_int.h"
#include "store_sql.h"

struct kt_query {
    sqlite3 *db;
    char error[512];
};

/* An object as resource[/namespace]/name[/subresource], from the dictionary joins r, ns, nm, sr */
#define SQL_OBJECT                                                                                 \
    "coalesce(r.s, '') || CASE WHEN ns.s IS NOT NULL THEN '/' || ns.s ELSE '' END"                 \
    " || CASE WHEN nm.s IS NOT NULL THEN '/' || nm.s ELSE '' END"                                  \
    " || CASE WHEN sr.s IS NOT NULL THEN '/' || sr.s ELSE '' END"
/* the last of the comma-separated sourceIPs: the address the apiserver saw */
#define SQL_LAST_IP "replace(ip.s, rtrim(ip.s, replace(ip.s, ',', '')), '')"
#define SQL_JOINS                                                                                  \
    " LEFT JOIN strings u ON u.id = e.user LEFT JOIN strings ip ON ip.id = e.source_ips"           \
    " LEFT JOIN strings ua ON ua.id = e.user_agent LEFT JOIN strings v ON v.id = e.verb"           \
    " LEFT JOIN strings r ON r.id = e.resource LEFT JOIN strings ns ON ns.id = e.namespace"        \
    " LEFT JOIN strings nm ON nm.id = e.name LEFT JOIN strings sr ON sr.id = e.subresource"

static int fail(struct kt_query *q, const char *what)
{
    snprintf(q->error, sizeof(q->error), "%s: %s", what, sqlite3_errmsg(q->db));
    return KT_EIO;
}

int kt_query_open(const char *path, struct kt_query **out, char *errstr, size_t errlen)
{
    struct kt_query *q = calloc(1, sizeof(*q));
    *out = NULL;
    if (q == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return KT_ENOMEM;
    }
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
             sqlite3_prepare_v2(q->db, "SELECT 1 FROM events, alerts LIMIT 0", -1, &st, NULL) ==
                 SQLITE_OK;
    sqlite3_finalize(st);
    if (!ok) {
        snprintf(errstr, errlen, "%s: not a ktrail database (%s)", path,
                 q->db != NULL ? sqlite3_errmsg(q->db) : "out of memory");
        kt_query_close(q);
        return KT_EIO;
    }
    sqlite3_busy_timeout(q->db, 5000);
    kt_raw_register(q->db);
    *out = q;
    return 0;
}

void kt_query_close(struct kt_query *q)
{
    if (q != NULL) {
        sqlite3_close(q->db);
        free(q);
    }
}

const char *kt_query_error(const struct kt_query *q)
{
    return q->error;
}

/* Run sql with its parameters (texts, NULL for none; integers as text are bound as such),
 * each row to cb. */
static int run(struct kt_query *q, const char *sql, const char *const *texts, size_t ntexts,
               const int64_t *ints, size_t nints, kt_row_fn cb, void *ctx, size_t *rows)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return fail(q, "query");
    }
    /* texts are ?1.., integers follow them */
    for (size_t i = 0; i < ntexts; i++) {
        sqlite3_bind_text(st, (int)i + 1, texts[i], -1, SQLITE_STATIC);
    }
    for (size_t i = 0; i < nints; i++) {
        sqlite3_bind_int64(st, (int)(ntexts + i) + 1, ints[i]);
    }
    int n = sqlite3_column_count(st), rc;
    const char *names[32], *values[32];
    if (n > 32) {
        n = 32;
    }
    for (int i = 0; i < n; i++) {
        names[i] = sqlite3_column_name(st, i);
    }
    size_t count = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < n; i++) {
            values[i] = (const char *)sqlite3_column_text(st, i);
        }
        count++;
        if (cb != NULL && cb(ctx, (size_t)n, names, values) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rows != NULL) {
        *rows = count;
    }
    rc = rc == SQLITE_DONE ? 0 : fail(q, "query");
    sqlite3_finalize(st);
    return rc;
}

/* Append a time range on col (?N numbered from *next) to sql, and its values to ints. */
static void time_range(struct kt_buf *sql, const char *col, int64_t since, int64_t until,
                       int64_t *ints, size_t *nints, int *next)
{
    char part[96];
    if (since != 0) {
        snprintf(part, sizeof(part), " AND %s >= ?%d", col, (*next)++);
        kt_buf_puts(sql, part);
        ints[(*nints)++] = since;
    }
    if (until != 0) {
        snprintf(part, sizeof(part), " AND %s < ?%d", col, (*next)++);
        kt_buf_puts(sql, part);
        ints[(*nints)++] = until;
    }
}

int kt_query_alerts(struct kt_query *q, const struct kt_alert_filter *f, kt_row_fn cb, void *ctx)
{
    struct kt_buf sql = {0};
    const char *texts[1];
    size_t ntexts = 0, nints = 0;
    int64_t ints[4];
    int next = 1;
    kt_buf_puts(&sql, "SELECT a.id, a.ts, a.priority, a.rule, a.count,"
                      " (SELECT count(*) FROM alert_events ae WHERE ae.alert_id = a.id)"
                      " AS evidence, a.user,"
                      " replace(a.source_ips, rtrim(a.source_ips, replace(a.source_ips, ',', '')),"
                      " '') AS source_ip, a.verb,"
                      " coalesce(a.resource, '') || CASE WHEN a.namespace IS NOT NULL THEN '/' ||"
                      " a.namespace ELSE '' END || CASE WHEN a.name IS NOT NULL THEN '/' || a.name"
                      " ELSE '' END AS object, a.code, a.output FROM v_alerts a WHERE 1");
    if (f->rule != NULL) {
        texts[ntexts++] = f->rule;
        kt_buf_puts(&sql, " AND a.rule = ?1");
        next = 2;
    }
    time_range(&sql, "a.ts", f->since, f->until, ints, &nints, &next);
    char part[160];
    snprintf(part, sizeof(part), " AND a.priority_num <= ?%d", next++);
    kt_buf_puts(&sql, part);
    ints[nints++] = f->min_priority;
    if (f->open) {
        kt_buf_puts(&sql, " AND EXISTS (SELECT 1 FROM alert_groups g WHERE g.alert_id = a.id"
                          " AND g.until_ts > (SELECT max(ts) FROM events))");
    }
    kt_buf_puts(&sql, " ORDER BY a.ts, a.id");
    if (f->limit > 0) {
        snprintf(part, sizeof(part), " LIMIT %zu", f->limit);
        kt_buf_puts(&sql, part);
    }
    int rc = kt_buf_append(&sql, "", 1) != 0
                 ? KT_ENOMEM
                 : run(q, sql.p, texts, ntexts, ints, nints, cb, ctx, NULL);
    kt_buf_free(&sql);
    return rc;
}

/* ts and user of alert (by KT_TL_ALERT) or event id: 0, KT_ENOENT or KT_EIO. */
static int anchor(struct kt_query *q, int alert, int64_t id, int64_t *ts, int64_t *user)
{
    const char *sql = alert ? "SELECT a.ts, e.user FROM alerts a JOIN events e ON e.id ="
                              " a.event_id WHERE a.id = ?1"
                            : "SELECT ts, user FROM events WHERE id = ?1";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return fail(q, "query");
    }
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *ts = sqlite3_column_int64(st, 0);
        *user = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) {
        snprintf(q->error, sizeof(q->error), "no %s %lld", alert ? "alert" : "event",
                 (long long)id);
        return KT_ENOENT;
    }
    return rc == SQLITE_ROW ? 0 : fail(q, "query");
}

int kt_query_timeline(struct kt_query *q, const struct kt_timeline_filter *f, kt_row_fn cb,
                      void *ctx)
{
    struct kt_buf sql = {0};
    const char *texts[3];
    size_t ntexts = 0, nints = 0;
    int64_t ints[6], since = f->since, until = f->until;
    int next = 1, rc = 0;
    char part[256];

    kt_buf_puts(
        &sql,
        "SELECT e.id, e.ts, " SQL_TIME(
            "e.ts") " AS time, u.s AS user, " SQL_LAST_IP
                    " AS source_ip, ua.s AS user_agent, v.s AS verb, " SQL_OBJECT
                    " AS object, e.code,"
                    " (SELECT group_concat(a.rule, ';') FROM alerts a WHERE a.event_id = e.id)"
                    " AS alerts FROM events e" SQL_JOINS " WHERE ");
    switch (f->by) {
    case KT_TL_USER:
        texts[ntexts++] = f->user;
        kt_buf_puts(&sql, "e.user = (SELECT id FROM strings WHERE s = ?1)");
        next = 2;
        break;
    case KT_TL_IP:
        /* every dictionary string holding the address as one of its comma-separated items */
        texts[ntexts++] = f->ip;
        kt_buf_puts(&sql, "e.source_ips IN (SELECT id FROM strings WHERE s = ?1 OR s LIKE ?1 ||"
                          " ',%' OR s LIKE '%,' || ?1 OR s LIKE '%,' || ?1 || ',%')");
        next = 2;
        break;
    case KT_TL_OBJECT:
        texts[ntexts++] = f->name;
        texts[ntexts++] = f->resource;
        kt_buf_puts(&sql, "e.name = (SELECT id FROM strings WHERE s = ?1) AND e.resource ="
                          " (SELECT id FROM strings WHERE s = ?2)");
        next = 3;
        if (f->namespace != NULL) {
            texts[ntexts++] = f->namespace;
            kt_buf_puts(&sql, " AND e.namespace = (SELECT id FROM strings WHERE s = ?3)");
            next = 4;
        }
        break;
    case KT_TL_ALERT:
    case KT_TL_AROUND: {
        int64_t ts = 0, user = 0;
        rc = anchor(q, f->by == KT_TL_ALERT, f->id, &ts, &user);
        if (rc != 0) {
            kt_buf_free(&sql);
            return rc;
        }
        /* the actor of the alert or event, the window either side of it */
        snprintf(part, sizeof(part), "e.user = ?%d", next++);
        kt_buf_puts(&sql, part);
        ints[nints++] = user;
        if (since == 0 || since < ts - f->window) {
            since = ts - f->window;
        }
        if (until == 0 || until > ts + f->window + 1) {
            until = ts + f->window + 1;
        }
        break;
    }
    default:
        kt_buf_free(&sql);
        snprintf(q->error, sizeof(q->error), "no timeline filter");
        return KT_EINVAL;
    }
    time_range(&sql, "e.ts", since, until, ints, &nints, &next);
    kt_buf_puts(&sql, " ORDER BY e.ts, e.id");
    if (f->limit > 0) {
        snprintf(part, sizeof(part), " LIMIT %zu", f->limit);
        kt_buf_puts(&sql, part);
    }
    rc = kt_buf_append(&sql, "", 1) != 0 ? KT_ENOMEM
                                         : run(q, sql.p, texts, ntexts, ints, nints, cb, ctx, NULL);
    kt_buf_free(&sql);
    return rc;
}

int kt_query_permissions(struct kt_query *q, const char *user, int64_t since, int64_t until,
                         kt_row_fn cb, void *ctx)
{
    struct kt_buf sql = {0};
    const char *texts[1] = {user};
    int64_t ints[2];
    size_t nints = 0;
    int next = 2;
    kt_buf_puts(&sql, "SELECT coalesce(g.s, '') AS api_group, r.s AS resource, sr.s AS subresource,"
                      " ns.s AS namespace, nm.s AS name, v.s AS verb,"
                      " CASE WHEN e.resource IS NULL THEN rtrim(substr(coalesce(e.request_uri,"
                      " uri.s), 1, instr(coalesce(e.request_uri, uri.s) || '?', '?') - 1), '/')"
                      " END AS path, count(*) AS n FROM events e" SQL_JOINS
                      " LEFT JOIN strings g ON g.id = e.api_group"
                      " LEFT JOIN strings uri ON uri.id = e.uri"
                      " JOIN strings st ON st.id = e.stage"
                      " WHERE e.user = (SELECT id FROM strings WHERE s = ?1)"
                      " AND st.s IN ('ResponseStarted', 'ResponseComplete')"
                      " AND e.code >= 100 AND e.code < 400");
    time_range(&sql, "e.ts", since, until, ints, &nints, &next);
    kt_buf_puts(&sql, " GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 4, 1, 2, 3, 6, 5, 7");
    int rc = kt_buf_append(&sql, "", 1) != 0 ? KT_ENOMEM
                                             : run(q, sql.p, texts, 1, ints, nints, cb, ctx, NULL);
    kt_buf_free(&sql);
    return rc;
}

int kt_query_rows(struct kt_query *q, const char *sql, const int64_t *ints, size_t nints,
                  kt_row_fn cb, void *ctx)
{
    return run(q, sql, NULL, 0, ints, nints, cb, ctx, NULL);
}
