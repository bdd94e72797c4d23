/*
 * deliver.c: alerts from the database to HTTP receivers (see deliver.h).
 *
 * A destination's thread repeats: read up to FETCH alerts after its cursor (one short read
 * transaction, rendered into memory and ended before any network I/O, so a slow receiver
 * never holds a snapshot that would keep the WAL from being checkpointed), POST them one by
 * one in order, move the cursor. libcurl keeps the connection alive between POSTs.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"
#include "rules.h"

#define MOD "store:deliver"

enum {
    FETCH = 64,             /* alerts read per round */
    IDLE_MS = 250,          /* wait for new alerts when there are none */
    SAVE_MS = 1000,         /* cursor written at most this often */
    BACKOFF_MIN_MS = 1000,  /* first retry */
    BACKOFF_MAX_MS = 60000, /* longest wait between retries */
    TIMEOUT_MS = 10000,     /* one POST, connection included */
    CONNECT_TIMEOUT_MS = 5000,
};

#define SQL_DELIVERIES                                                                             \
    "CREATE TABLE IF NOT EXISTS deliveries (\n"                                                    \
    "  -- where each --alerts-http destination stands: every alert up to last_alert was\n"         \
    "  -- delivered (or refused for good by the receiver)\n"                                       \
    "  dest       TEXT PRIMARY KEY, -- the URL, without user info; a query as its hash\n"          \
    "  last_alert INTEGER NOT NULL, -- alerts.id\n"                                                \
    "  updated_at INTEGER NOT NULL  -- wall clock, microseconds since the epoch\n"                 \
    ")"
#define SQL_DEST_ADD                                                                               \
    "INSERT OR IGNORE INTO deliveries (dest, last_alert, updated_at)"                              \
    " VALUES (?1, (SELECT coalesce(max(id), 0) FROM alerts), ?2)"
#define SQL_DEST_GET "SELECT last_alert FROM deliveries WHERE dest = ?1"
#define SQL_DEST_SAVE "UPDATE deliveries SET last_alert = ?2, updated_at = ?3 WHERE dest = ?1"
/* v_alerts puts an alert's output, fields and tags together (the joins it does not need are
 * left out by SQLite) */
#define SQL_NEXT                                                                                   \
    "SELECT id, ts, rule, priority_num, tags, output, fields, audit_id, stage FROM v_alerts"       \
    " WHERE id > ?1 AND priority_num <= ?2 ORDER BY id LIMIT ?3"
#define SQL_PENDING "SELECT count(*) FROM alerts WHERE id > ?1 AND priority <= ?2"

struct item {
    int64_t id;
    struct kt_buf body; /* the JSON posted */
};

struct dest {
    struct kt_deliver *d;
    char *url;
    char *name; /* key in deliveries, metric label */
    struct curl_slist *headers;
    char *ca_file;
    int min_priority;
    pthread_t thread;
    int started;
    sqlite3 *db;
    CURL *curl;
    int64_t cursor;   /* last alert delivered or refused for good */
    int64_t saved;    /* the cursor as last written */
    int64_t saved_at; /* monotonic us of that write */
    struct item items[FETCH];
    size_t nitems;
    struct kt_deliver_stats st; /* under d->mu */
    uint64_t idle_epoch;        /* d->epoch when its last round, begun in that epoch, found
                                   nothing to send (under d->mu) */
    char last_error[256];
};

struct kt_deliver {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC: stop, drain */
    int stopping;
    uint64_t epoch; /* bumped by a drain: rounds begun before it do not count */
    char hostname[256];
    size_t n;
    struct dest *dests;
};

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Sleep up to ms unless stopping; returns stopping. */
static int nap(struct kt_deliver *d, int ms)
{
    struct timespec ts;
    deadline_after(&ts, ms);
    pthread_mutex_lock(&d->mu);
    while (!d->stopping && pthread_cond_timedwait(&d->cv, &d->mu, &ts) == 0) {
    }
    int stop = d->stopping;
    pthread_mutex_unlock(&d->mu);
    return stop;
}

static int stopping(struct kt_deliver *d)
{
    pthread_mutex_lock(&d->mu);
    int stop = d->stopping;
    pthread_mutex_unlock(&d->mu);
    return stop;
}

/* ---- the database side ---- */

static int exec_bind(sqlite3 *db, const char *sql, const char *dest, int64_t a, int64_t b,
                     int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, a);
        if (sqlite3_bind_parameter_count(st) >= 3) {
            sqlite3_bind_int64(st, 3, b);
        }
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && out != NULL) {
            *out = sqlite3_column_int64(st, 0);
        }
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    return rc;
}

static void save_cursor(struct dest *t)
{
    if (t->cursor == t->saved) {
        return;
    }
    int rc = exec_bind(t->db, SQL_DEST_SAVE, t->name, t->cursor, kt_now_wall_us(), NULL);
    if (rc != SQLITE_OK) {
        /* kept in memory: written with the next one (a crash resends from the older one) */
        kt_warn(MOD, "%s: cannot save the cursor: %s", t->name, sqlite3_errmsg(t->db));
        return;
    }
    t->saved = t->cursor;
    t->saved_at = kt_now_mono_us();
}

static struct kt_str column(sqlite3_stmt *st, int i)
{
    const char *p = (const char *)sqlite3_column_text(st, i);
    return (struct kt_str){p != NULL ? p : "", p != NULL ? (size_t)sqlite3_column_bytes(st, i) : 0};
}

/* Render the next alerts after the cursor into t->items; the read transaction ends here. */
static int fetch(struct dest *t)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(t->db, SQL_NEXT, -1, &st, NULL);
    t->nitems = 0;
    if (rc != SQLITE_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, t->cursor);
    sqlite3_bind_int(st, 2, t->min_priority);
    sqlite3_bind_int(st, 3, FETCH);
    while (t->nitems < FETCH && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        char time[32];
        struct kt_alert_doc doc = {
            .time = {time, kt_format_rfc3339(sqlite3_column_int64(st, 1), time)},
            .rule = (const char *)sqlite3_column_text(st, 2),
            .priority = sqlite3_column_int(st, 3),
            .tags = column(st, 4),
            .output = column(st, 5),
            .fields = column(st, 6),
            .audit_id = column(st, 7),
            .stage = column(st, 8),
            .hostname = t->d->hostname,
        };
        struct item *it = &t->items[t->nitems];
        it->id = sqlite3_column_int64(st, 0);
        it->body.len = 0;
        if (doc.rule == NULL || kt_alert_json(&it->body, &doc) != 0) {
            rc = SQLITE_NOMEM;
            break;
        }
        t->nitems++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static uint64_t count_pending(struct dest *t)
{
    sqlite3_stmt *st = NULL;
    uint64_t n = 0;
    if (sqlite3_prepare_v2(t->db, SQL_PENDING, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, t->cursor);
        sqlite3_bind_int(st, 2, t->min_priority);
        if (sqlite3_step(st) == SQLITE_ROW) {
            n = (uint64_t)sqlite3_column_int64(st, 0);
        }
    }
    sqlite3_finalize(st);
    return n;
}

/* ---- the HTTP side ---- */

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

enum post_result { POST_OK, POST_RETRY, POST_REFUSED };

/* The receiver's verdict on one alert. */
static int post(struct dest *t, const struct kt_buf *body)
{
    curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, body->p);
    curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    CURLcode cc = curl_easy_perform(t->curl);
    if (cc != CURLE_OK) {
        snprintf(t->last_error, sizeof(t->last_error), "%s", curl_easy_strerror(cc));
        return POST_RETRY;
    }
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300) {
        return POST_OK;
    }
    snprintf(t->last_error, sizeof(t->last_error), "HTTP %ld", code);
    /* The alert itself is refused: sending it again cannot help. Everything else (5xx,
     * 408, 429, and 401/403/404 that a fixed credential or route cures) is retried. */
    return code == 400 || code == 413 || code == 415 || code == 422 ? POST_REFUSED : POST_RETRY;
}

static void count(struct dest *t, uint64_t *counter, int up)
{
    pthread_mutex_lock(&t->d->mu);
    (*counter)++;
    t->st.up = up;
    pthread_mutex_unlock(&t->d->mu);
}

/* Deliver one alert, retrying with backoff until it is taken or refused, or ktrail stops
 * (returns 0 then: the cursor stays before it). */
static int deliver_one(struct dest *t, const struct item *it)
{
    int backoff = BACKOFF_MIN_MS;
    int failing = 0;
    for (;;) {
        int r = post(t, &it->body);
        if (r == POST_OK) {
            count(t, &t->st.delivered, 1);
            if (failing) {
                kt_info(MOD, "%s: delivering again", t->name);
            }
            return 1;
        }
        if (r == POST_REFUSED) {
            count(t, &t->st.rejected, 1);
            kt_warn(MOD, "%s: alert %lld refused (%s): skipped", t->name, (long long)it->id,
                    t->last_error);
            return 1;
        }
        count(t, &t->st.failures, 0);
        if (!failing) {
            kt_warn(MOD, "%s: %s; retrying with backoff, alerts kept in the database", t->name,
                    t->last_error);
            failing = 1;
        }
        save_cursor(t);
        if (nap(t->d, backoff)) {
            return 0;
        }
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
}

static void *dest_main(void *arg)
{
    struct dest *t = arg;
    while (!stopping(t->d)) {
        pthread_mutex_lock(&t->d->mu);
        uint64_t epoch = t->d->epoch;
        pthread_mutex_unlock(&t->d->mu);
        int rc = fetch(t);
        if (rc != SQLITE_OK) {
            kt_warn(MOD, "%s: reading alerts: %s", t->name, sqlite3_errmsg(t->db));
        }
        uint64_t pending = count_pending(t);
        pthread_mutex_lock(&t->d->mu);
        t->st.pending = pending;
        if (rc == SQLITE_OK && t->nitems == 0) {
            t->idle_epoch = epoch;
            pthread_cond_broadcast(&t->d->cv); /* a drain may be waiting for it */
        }
        pthread_mutex_unlock(&t->d->mu);
        if (rc != SQLITE_OK || t->nitems == 0) {
            save_cursor(t);
            nap(t->d, rc != SQLITE_OK ? BACKOFF_MIN_MS : IDLE_MS);
            continue;
        }
        for (size_t i = 0; i < t->nitems && !stopping(t->d); i++) {
            if (!deliver_one(t, &t->items[i])) {
                break;
            }
            t->cursor = t->items[i].id;
            if (kt_now_mono_us() - t->saved_at >= (int64_t)SAVE_MS * 1000) {
                save_cursor(t);
            }
        }
    }
    save_cursor(t);
    return NULL;
}

/* ---- set-up ---- */

/* The URL without user info, and its query as a hash: a key that keeps no secret. */
static char *dest_name(const char *url)
{
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end != NULL ? scheme_end + 3 : url;
    const char *path = host + strcspn(host, "/?#");
    const char *at = memchr(host, '@', (size_t)(path - host));
    if (at != NULL) {
        host = at + 1;
    }
    size_t pathlen = strcspn(path, "?#");
    const char *query = path[pathlen] == '?' ? path + pathlen + 1 : NULL;
    char *out = malloc(strlen(url) + 32);
    if (out == NULL) {
        return NULL;
    }
    int n = sprintf(out, "%.*s%.*s%.*s", (int)(scheme_end != NULL ? scheme_end + 3 - url : 0), url,
                    (int)(path - host), host, (int)pathlen, path);
    if (query != NULL) {
        size_t qlen = strcspn(query, "#");
        sprintf(out + n, "?#%016llx", (unsigned long long)kt_hash64(query, qlen));
    }
    return out;
}

static int dest_init(struct kt_deliver *d, struct dest *t, const char *db_path,
                     const struct kt_deliver_dest *o, char *errstr, size_t errlen)
{
    t->d = d;
    t->min_priority = o->min_priority;
    t->url = strdup(o->url);
    t->name = dest_name(o->url);
    t->ca_file = o->ca_file != NULL ? strdup(o->ca_file) : NULL;
    t->curl = curl_easy_init();
    if (t->url == NULL || t->name == NULL || t->curl == NULL ||
        (o->ca_file != NULL && t->ca_file == NULL)) {
        snprintf(errstr, errlen, "out of memory");
        return KT_ENOMEM;
    }
    if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0) {
        snprintf(errstr, errlen, "--alerts-http %s: not an http:// or https:// URL", t->name);
        return KT_EINVAL;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    for (size_t i = 0; h != NULL && i < o->nheaders; i++) {
        h = curl_slist_append(h, o->headers[i]);
    }
    if (h != NULL && o->bearer != NULL) {
        char *auth = malloc(strlen(o->bearer) + 32);
        if (auth != NULL) {
            sprintf(auth, "Authorization: Bearer %s", o->bearer);
            h = curl_slist_append(h, auth);
            free(auth);
        }
    }
    if (h == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return KT_ENOMEM;
    }
    t->headers = h;
    curl_easy_setopt(t->curl, CURLOPT_URL, t->url);
    curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, (long)TIMEOUT_MS);
    curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(t->curl, CURLOPT_USERAGENT, "ktrail");
    curl_easy_setopt(t->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (t->ca_file != NULL) {
        curl_easy_setopt(t->curl, CURLOPT_CAINFO, t->ca_file);
    }

    if (sqlite3_open_v2(db_path, &t->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(errstr, errlen, "%s: %s", db_path, sqlite3_errmsg(t->db));
        return KT_EIO;
    }
    sqlite3_busy_timeout(t->db, 5000);
    int64_t now = kt_now_wall_us();
    if (sqlite3_exec(t->db, SQL_DELIVERIES, NULL, NULL, NULL) != SQLITE_OK ||
        exec_bind(t->db, SQL_DEST_ADD, t->name, now, 0, NULL) != SQLITE_OK ||
        exec_bind(t->db, SQL_DEST_GET, t->name, 0, 0, &t->cursor) != SQLITE_OK) {
        snprintf(errstr, errlen, "%s: the delivery cursor of %s: %s", db_path, t->name,
                 sqlite3_errmsg(t->db));
        return KT_EIO;
    }
    t->saved = t->cursor;
    t->saved_at = kt_now_mono_us();
    return 0;
}

static void dest_free(struct dest *t)
{
    for (size_t i = 0; i < FETCH; i++) {
        kt_buf_free(&t->items[i].body);
    }
    if (t->curl != NULL) {
        curl_easy_cleanup(t->curl);
    }
    curl_slist_free_all(t->headers);
    sqlite3_close(t->db);
    free(t->url);
    free(t->name);
    free(t->ca_file);
}

static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int kt_deliver_start(const char *db_path, const struct kt_deliver_dest *dests, size_t n,
                     struct kt_deliver **out, char *errstr, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    *out = NULL;
    if (n == 0) {
        return 0;
    }
    pthread_once(&once, curl_init);
    struct kt_deliver *d = calloc(1, sizeof(*d));
    if (d == NULL || (d->dests = calloc(n, sizeof(*d->dests))) == NULL) {
        free(d);
        snprintf(errstr, errlen, "out of memory");
        return KT_ENOMEM;
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (gethostname(d->hostname, sizeof(d->hostname) - 1) != 0) {
        strcpy(d->hostname, "ktrail");
    }
    d->n = n;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = dest_init(d, &d->dests[i], db_path, &dests[i], errstr, errlen);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (pthread_create(&d->dests[i].thread, NULL, dest_main, &d->dests[i]) != 0) {
            snprintf(errstr, errlen, "cannot start a delivery thread");
            rc = KT_ENOMEM;
            break;
        }
        d->dests[i].started = 1;
    }
    if (rc != 0) {
        kt_deliver_stop(d, 0);
        return rc;
    }
    *out = d;
    return 0;
}

size_t kt_deliver_count(const struct kt_deliver *d)
{
    return d != NULL ? d->n : 0;
}

const char *kt_deliver_name(const struct kt_deliver *d, size_t i)
{
    return d->dests[i].name;
}

void kt_deliver_stats(struct kt_deliver *d, size_t i, struct kt_deliver_stats *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->dests[i].st;
    pthread_mutex_unlock(&d->mu);
}

/* Every destination found nothing left to send in its last round. */
static int all_idle(const struct kt_deliver *d)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->dests[i].started && d->dests[i].idle_epoch != d->epoch) {
            return 0;
        }
    }
    return 1;
}

int kt_deliver_drain(struct kt_deliver *d, int ms)
{
    if (d == NULL) {
        return 1;
    }
    struct timespec ts;
    deadline_after(&ts, ms);
    pthread_mutex_lock(&d->mu);
    d->epoch++; /* only a round that begins after this call can end the drain */
    while (!all_idle(d) && pthread_cond_timedwait(&d->cv, &d->mu, &ts) == 0) {
    }
    int done = all_idle(d);
    pthread_mutex_unlock(&d->mu);
    return done;
}

void kt_deliver_stop(struct kt_deliver *d, int drain_ms)
{
    if (d == NULL) {
        return;
    }
    if (drain_ms > 0) {
        kt_deliver_drain(d, drain_ms);
    }
    pthread_mutex_lock(&d->mu);
    d->stopping = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    for (size_t i = 0; i < d->n; i++) {
        struct dest *t = &d->dests[i];
        if (t->started) {
            pthread_join(t->thread, NULL);
        }
        dest_free(t);
    }
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d->dests);
    free(d);
}
