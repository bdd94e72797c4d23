/*
 * query.h: the analyst's questions, asked of a database read-only (ktrail alerts, ktrail
 * timeline). Each answer is one short read transaction, so a running sink on the same
 * database is never blocked and its WAL never held for long. Rows are handed to a callback as
 * strings (NULL when absent), valid during the call.
 */
#ifndef KT_STORE_QUERY_H
#define KT_STORE_QUERY_H

#include <stddef.h>
#include <stdint.h>

struct kt_query;

/* Open path read-only. 0, or KT_EIO (errstr says why: no such file, not a ktrail database). */
int kt_query_open(const char *path, struct kt_query **out, char *errstr, size_t errlen);
void kt_query_close(struct kt_query *q);
/* The last error, one line. */
const char *kt_query_error(const struct kt_query *q);

/* What the callbacks get: column names and values, n of each. Return nonzero to stop. */
typedef int (*kt_row_fn)(void *ctx, size_t n, const char *const *names, const char *const *values);

struct kt_alert_filter {
    int64_t since, until; /* event time, microseconds; 0: unbounded */
    int min_priority;     /* alerts of this priority or more severe (0..7) */
    const char *rule;     /* exact rule name, or NULL */
    int open;             /* only alerts whose suppression window is still open */
    size_t limit;         /* at most this many rows (0: no limit) */
};
/* Alerts in time order: id, ts (microseconds), priority, rule, count (matches merged), evidence
 * (linked events), user, source_ip, verb, object, code, output. 0, or KT_EIO. */
int kt_query_alerts(struct kt_query *q, const struct kt_alert_filter *f, kt_row_fn cb, void *ctx);

enum kt_timeline_by { KT_TL_USER, KT_TL_IP, KT_TL_OBJECT, KT_TL_ALERT, KT_TL_AROUND };
struct kt_timeline_filter {
    int by;                /* enum kt_timeline_by */
    const char *user;      /* KT_TL_USER */
    const char *ip;        /* KT_TL_IP: one of the event's sourceIPs */
    const char *resource;  /* KT_TL_OBJECT: resource, namespace (NULL: cluster-scoped or any), */
    const char *namespace; /* name */
    const char *name;
    int64_t id;           /* KT_TL_ALERT: the alert; KT_TL_AROUND: the event */
    int64_t window;       /* KT_TL_ALERT, KT_TL_AROUND: microseconds either side */
    int64_t since, until; /* event time, microseconds; 0: unbounded (also narrows the rest) */
    size_t limit;         /* at most this many rows (0: no limit) */
};
/* Requests in time order: id, ts (microseconds), time, user, source_ip, user_agent, verb,
 * object, code, alerts (the rules they raised, ';'-joined). 0, KT_ENOENT (no such alert or
 * event), or KT_EIO. */
int kt_query_timeline(struct kt_query *q, const struct kt_timeline_filter *f, kt_row_fn cb,
                      void *ctx);

/* What an identity did successfully (HTTP status below 400, a response stage), once per
 * distinct (api_group, resource, subresource, namespace, name, verb, path): api_group ('' for
 * core), resource (NULL for a non-resource URL), subresource, namespace, name, verb, path
 * (the URL path without its query, for non-resource URLs), n (requests). 0 or KT_EIO. */
int kt_query_permissions(struct kt_query *q, const char *user, int64_t since, int64_t until,
                         kt_row_fn cb, void *ctx);

/* Any read-only SQL over the views (the report's): integers bound as ?1, ?2, ... 0 or KT_EIO. */
int kt_query_rows(struct kt_query *q, const char *sql, const int64_t *ints, size_t nints,
                  kt_row_fn cb, void *ctx);

#endif
