/*
 * deliver.h: alerts delivered from the store to HTTP receivers, at least once, in order.
 *
 * Each destination has a thread of its own with its own database connection: it reads the
 * alerts stored after its cursor (alerts.id, in the `deliveries` table), POSTs each as Falco's
 * JSON alert, and moves the cursor once the receiver answered 2xx. The cursor is written at
 * most once a second (and at stop), so a crash resends at most that second's alerts, never
 * one the cursor covers. A receiver that is down, answers 5xx, 408 or 429, or refuses the
 * credentials is retried with backoff (1 s doubling to 60 s) without moving on; one that
 * refuses an alert for good (400, 413, 415, 422) has that alert counted as rejected and
 * skipped. Ingest never waits for a receiver: the writer does not know the threads exist.
 */
#ifndef KT_STORE_DELIVER_H
#define KT_STORE_DELIVER_H

#include <stddef.h>
#include <stdint.h>

struct kt_deliver_dest {
    const char *url;            /* http:// or https:// receiver */
    const char *const *headers; /* "Name: value" lines added to every POST */
    size_t nheaders;            /* how many */
    const char *bearer;         /* a token sent as "Authorization: Bearer", or NULL */
    const char *ca_file;        /* CA bundle for https, or NULL for the system's */
    int min_priority;           /* alerts above it (less severe) are not sent */
};

struct kt_deliver_stats {
    uint64_t delivered; /* alerts the receiver took (2xx) since start */
    uint64_t rejected;  /* alerts it refused for good, skipped */
    uint64_t failures;  /* attempts that failed (connection, timeout, 5xx...), retried */
    uint64_t pending;   /* alerts stored after the cursor that it will be sent */
    int up;             /* the last attempt succeeded */
};

struct kt_deliver;

/*
 * Start one thread per destination on the database at db_path (which the store has opened,
 * so the schema exists). A destination seen for the first time starts after the newest
 * alert stored so far; one already known resumes at its cursor. The strings in dests are
 * copied. 0, KT_EINVAL (a bad URL or option: errstr says which), KT_EIO or KT_ENOMEM.
 */
int kt_deliver_start(const char *db_path, const struct kt_deliver_dest *dests, size_t n,
                     struct kt_deliver **out, char *errstr, size_t errlen);

/* Number of destinations, and the name of destination i (its URL without user info or query,
 * for logs and metric labels). */
size_t kt_deliver_count(const struct kt_deliver *d);
const char *kt_deliver_name(const struct kt_deliver *d, size_t i);
/* Counters of destination i. Thread-safe. */
void kt_deliver_stats(struct kt_deliver *d, size_t i, struct kt_deliver_stats *out);

/* Wait up to ms for every destination to have sent what is stored now (a round begun after
 * the call found nothing left): 1 when they have, 0 at the timeout. Accepts NULL. */
int kt_deliver_drain(struct kt_deliver *d, int ms);

/*
 * Stop: wait up to drain_ms for every destination to deliver what is stored (0: do not
 * wait), then stop the threads, write the cursors and free. What is left stays pending in the
 * database for the next run. Accepts NULL.
 */
void kt_deliver_stop(struct kt_deliver *d, int drain_ms);

#endif
