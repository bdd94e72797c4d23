/*
 * store.c: the SQLite store (see store.h): open and migrate, the dictionary of repeated
 * strings, one transaction per batch, checkpoints.
 *
 * The dictionary keeps an in-memory open-addressing table from string to id in front of the
 * strings table, so a steady state does no SQL lookups for users, verbs or resources. It is
 * bounded: past DICT_MAX_ENTRIES it is cleared and refilled from misses.
 */
#include "store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "../analyze/alert.h"
#include "../analyze/event.h"
#include "store_sql.h"

enum { SCHEMA_VERSION = 1 };

static const char *const migrations[SCHEMA_VERSION] = {SQL_SCHEMA_V1};

enum { DICT_MAX_ENTRIES = 1 << 18, REJECT_TEXT = 1024 };

struct dict_entry {
    uint64_t hash; /* kt_hash64 of the string; 0 marks an empty slot */
    char *s;       /* the string (heap), NUL-terminated */
    uint32_t len;  /* its length */
    int64_t id;    /* strings.id */
};

struct dict {
    struct dict_entry *slots; /* open addressing, linear probing */
    size_t cap;               /* slots, a power of two */
    size_t n;                 /* used */
};

/* Statements, prepared once. */
enum {
    ST_DICT_GET,
    ST_DICT_ADD,
    ST_EVENT,
    ST_EVENT_ID,
    ST_RAW,
    ST_ALERT,
    ST_REJECT,
    ST_CKPT_UPSERT,
    ST_CKPT_GET,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    SQL_DICT_GET,   SQL_DICT_ADD,     SQL_EVENT_INSERT,  SQL_EVENT_ID,
    SQL_RAW_INSERT, SQL_ALERT_INSERT, SQL_REJECT_INSERT, SQL_CKPT_UPSERT,
    SQL_CKPT_GET,   SQL_BEGIN,        SQL_COMMIT,        SQL_ROLLBACK,
};

struct kt_store {
    sqlite3 *db;                  /* the one connection */
    pthread_mutex_t mu;           /* serializes use of db (writer thread, checkpoint lookups) */
    sqlite3_stmt *st[ST_COUNT];   /* prepared statements */
    struct dict dict;             /* string -> id cache */
    struct kt_store_opts opts;    /* copy of the options */
    struct kt_store_stats totals; /* since open */
    char *join;                   /* scratch for joined lists */
    size_t joincap;               /* its size */

    /* the checkpointer: copies the WAL into the database off the writer's path */
    sqlite3 *ckdb;        /* its own connection */
    pthread_t ckthread;   /* the thread, when ckrunning */
    int ckrunning;        /* the thread was started */
    pthread_mutex_t ckmu; /* guards ckpages, ckquit */
    pthread_cond_t ckcv;  /* the WAL grew, or quit */
    int ckpages;          /* WAL pages at the last commit */
    int ckquit;           /* close() asks the thread to end */
};

enum { CKPT_PAGES = 4096 }; /* checkpoint once the WAL holds this many pages */

/* ---- dictionary ---- */

static void dict_clear(struct dict *d)
{
    for (size_t i = 0; i < d->cap; i++) {
        free(d->slots[i].s);
    }
    memset(d->slots, 0, d->cap * sizeof(*d->slots));
    d->n = 0;
}

static void dict_free(struct dict *d)
{
    if (d->slots != NULL) {
        dict_clear(d);
    }
    free(d->slots);
    d->slots = NULL;
    d->cap = 0;
}

static struct dict_entry *dict_find(struct dict *d, const char *s, size_t len, uint64_t h)
{
    size_t mask = d->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct dict_entry *e = &d->slots[i];
        if (e->hash == 0 || (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0)) {
            return e;
        }
    }
}

/* Id of string s, adding it to the strings table when new. 0 and *id set, or KT_EIO. */
static int dict_id(struct kt_store *st, const char *s, size_t len, int64_t *id)
{
    struct dict *d = &st->dict;
    uint64_t h = kt_hash64(s, len) | 1;
    struct dict_entry *e = dict_find(d, s, len, h);
    if (e->hash != 0) {
        *id = e->id;
        return 0;
    }
    sqlite3_stmt *q = st->st[ST_DICT_GET];
    sqlite3_bind_text(q, 1, s, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(q, 0);
        sqlite3_reset(q);
    } else {
        sqlite3_reset(q);
        if (rc != SQLITE_DONE) {
            return KT_EIO;
        }
        sqlite3_stmt *a = st->st[ST_DICT_ADD];
        sqlite3_bind_text(a, 1, s, (int)len, SQLITE_STATIC);
        rc = sqlite3_step(a);
        sqlite3_reset(a);
        if (rc != SQLITE_DONE) {
            return KT_EIO;
        }
        *id = sqlite3_last_insert_rowid(st->db);
    }
    /* Cache it; when full, start over (bounded memory, the table keeps the truth). */
    if (d->n + 1 > d->cap / 2) {
        dict_clear(d);
        e = dict_find(d, s, len, h);
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return 0; /* not cached: still correct */
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    e->hash = h;
    e->s = copy;
    e->len = (uint32_t)len;
    e->id = *id;
    d->n++;
    return 0;
}

/* Bind dictionary id of v to parameter i (NULL when absent). */
static int bind_dict(struct kt_store *st, sqlite3_stmt *q, int i, struct kt_str v)
{
    if (v.ptr == NULL) {
        sqlite3_bind_null(q, i);
        return 0;
    }
    int64_t id = 0;
    int rc = dict_id(st, v.ptr, v.len, &id);
    if (rc == 0) {
        sqlite3_bind_int64(q, i, id);
    }
    return rc;
}

/* Join a list with ',' into st->join; returns the slice (NULL ptr for an absent list). */
static int join_list(struct kt_store *st, const struct kt_strlist *l, struct kt_str *out)
{
    *out = KT_STR_NULL;
    if (l->v == NULL || l->n == 0) {
        return 0;
    }
    size_t need = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        need += l->v[i].len + 1;
    }
    if (need > st->joincap) {
        char *p = realloc(st->join, need);
        if (p == NULL) {
            return KT_ENOMEM;
        }
        st->join = p;
        st->joincap = need;
    }
    size_t n = 0;
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

/* ---- open, migrate, close ---- */

static int exec_sql(sqlite3 *db, const char *sql, char *errstr, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(errstr, errlen, "%s", msg != NULL ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return KT_EIO;
    }
    return 0;
}

static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
    if (rc == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW) {
        *out = sqlite3_column_int64(q, 0);
        rc = SQLITE_OK;
    } else {
        rc = SQLITE_ERROR;
    }
    sqlite3_finalize(q);
    return rc == SQLITE_OK ? 0 : KT_EIO;
}

static int migrate(sqlite3 *db, const char *path, char *errstr, size_t errlen)
{
    int64_t version = 0, tables = 0;
    if (query_int(db, "PRAGMA user_version", &version) != 0 ||
        query_int(db, "SELECT count(*) FROM sqlite_schema", &tables) != 0) {
        snprintf(errstr, errlen, "%s: not a SQLite database: %s", path, sqlite3_errmsg(db));
        return KT_EIO;
    }
    if (version > SCHEMA_VERSION) {
        snprintf(errstr, errlen,
                 "%s: schema version %lld is newer than this ktrail knows (%d): upgrade ktrail",
                 path, (long long)version, SCHEMA_VERSION);
        return KT_EIO;
    }
    if (version == 0 && tables > 0) {
        snprintf(errstr, errlen, "%s: has tables but is not a ktrail database", path);
        return KT_EIO;
    }
    for (int64_t v = version; v < SCHEMA_VERSION; v++) {
        char sql[64];
        char err[256] = "";
        snprintf(sql, sizeof(sql), "PRAGMA user_version=%lld", (long long)(v + 1));
        if (exec_sql(db, "BEGIN IMMEDIATE", err, sizeof(err)) != 0 ||
            exec_sql(db, migrations[v], err, sizeof(err)) != 0 ||
            exec_sql(db, sql, err, sizeof(err)) != 0 ||
            exec_sql(db, "COMMIT", err, sizeof(err)) != 0) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            snprintf(errstr, errlen, "%s: migration to schema version %lld failed: %s", path,
                     (long long)(v + 1), err);
            return KT_EIO;
        }
    }
    return 0;
}

/* sqlite3_wal_hook: after each commit on the writer connection, wake the checkpointer. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct kt_store *st = arg;
    (void)db;
    (void)name;
    if (pages >= CKPT_PAGES) {
        pthread_mutex_lock(&st->ckmu);
        st->ckpages = pages;
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
        while (st->ckpages < CKPT_PAGES && !st->ckquit) {
            pthread_cond_wait(&st->ckcv, &st->ckmu);
        }
        if (st->ckquit) {
            break;
        }
        st->ckpages = 0;
        pthread_mutex_unlock(&st->ckmu);
        /* PASSIVE: never blocks the writer; what it cannot copy now, a later run will. */
        if (sqlite3_wal_checkpoint_v2(st->ckdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) !=
            SQLITE_OK) {
            kt_warn("store", "WAL checkpoint: %s", sqlite3_errmsg(st->ckdb));
        }
        pthread_mutex_lock(&st->ckmu);
    }
    pthread_mutex_unlock(&st->ckmu);
    return NULL;
}

static int start_checkpointer(struct kt_store *st, const char *path, char *errstr, size_t errlen)
{
    if (sqlite3_open_v2(path, &st->ckdb, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf(errstr, errlen, "cannot open database %s: %s", path,
                 st->ckdb ? sqlite3_errmsg(st->ckdb) : "out of memory");
        return KT_EIO;
    }
    sqlite3_busy_timeout(st->ckdb, 5000);
    sqlite3_exec(st->ckdb,
                 st->opts.sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", NULL,
                 NULL, NULL);
    if (pthread_create(&st->ckthread, NULL, checkpointer_main, st) != 0) {
        snprintf(errstr, errlen, "cannot start the checkpointer thread");
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

int kt_store_schema_version(void)
{
    return SCHEMA_VERSION;
}

int kt_store_open(const char *path, const struct kt_store_opts *opts, struct kt_store **out,
                  char *errstr, size_t errlen)
{
    struct kt_store *st = calloc(1, sizeof(*st));
    int rc = KT_ENOMEM;
    *out = NULL;
    if (st == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return KT_ENOMEM;
    }
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->ckmu, NULL);
    pthread_cond_init(&st->ckcv, NULL);
    if (opts != NULL) {
        st->opts = *opts;
    }
    st->dict.cap = DICT_MAX_ENTRIES * 2;
    st->dict.slots = calloc(st->dict.cap, sizeof(*st->dict.slots));
    if (st->dict.slots == NULL) {
        snprintf(errstr, errlen, "out of memory");
        goto fail;
    }
    rc = KT_EIO;
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(errstr, errlen, "cannot open database %s: %s", path,
                 st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 5000);
    char err[256] = "";
    if (exec_sql(st->db, SQL_PRAGMAS, err, sizeof(err)) != 0) {
        snprintf(errstr, errlen, "cannot use database %s: %s", path, err);
        goto fail;
    }
    if (exec_sql(st->db,
                 st->opts.sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", err,
                 sizeof(err)) != 0) {
        snprintf(errstr, errlen, "cannot use database %s: %s", path, err);
        goto fail;
    }
    if (migrate(st->db, path, errstr, errlen) != 0) {
        goto fail;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->st[i],
                               NULL) != SQLITE_OK) {
            snprintf(errstr, errlen, "%s: %s", path, sqlite3_errmsg(st->db));
            goto fail;
        }
    }
    if (strcmp(path, ":memory:") != 0 && start_checkpointer(st, path, errstr, errlen) != 0) {
        goto fail;
    }
    *out = st;
    return 0;
fail:
    kt_store_close(st);
    return rc;
}

void kt_store_close(struct kt_store *st)
{
    if (st == NULL) {
        return;
    }
    stop_checkpointer(st);
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(st->st[i]);
    }
    sqlite3_close(st->db); /* the last connection: checkpoints what is left of the WAL */
    dict_free(&st->dict);
    free(st->join);
    pthread_cond_destroy(&st->ckcv);
    pthread_mutex_destroy(&st->ckmu);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* ---- writing a batch ---- */

static int step_done(sqlite3_stmt *q)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc == SQLITE_DONE ? 0 : KT_EIO;
}

/* Insert one event; *id is its row id (new or existing), *inserted 1 when new. */
static int write_event(struct kt_store *st, const struct kt_batch *b, const struct kt_event *ev,
                       int64_t *id, int *inserted)
{
    static const int dict_cols[][2] = {
        {4, KT_F_STAGE},      {5, KT_F_LEVEL},         {6, KT_F_VERB},       {7, KT_F_USER},
        {9, KT_F_IMP_USER},   {11, KT_F_USER_AGENT},   {12, KT_F_RESOURCE},  {13, KT_F_SUBRESOURCE},
        {14, KT_F_NAMESPACE}, {15, KT_F_NAME},         {16, KT_F_API_GROUP}, {17, KT_F_API_VERSION},
        {19, KT_F_DECISION},  {20, KT_F_AUTHZ_REASON},
    };
    sqlite3_stmt *q = st->st[ST_EVENT];
    const struct kt_record *r = &b->recs[ev->rec];
    struct kt_str joined;
    int rc = 0;

    sqlite3_bind_int64(q, 1, ev->ts_us);
    if (ev->recv_us != 0) {
        sqlite3_bind_int64(q, 2, ev->recv_us);
    }
    sqlite3_bind_text(q, 3, ev->f[KT_F_AUDIT_ID].ptr, (int)ev->f[KT_F_AUDIT_ID].len, SQLITE_STATIC);
    for (size_t i = 0; i < sizeof(dict_cols) / sizeof(dict_cols[0]) && rc == 0; i++) {
        rc = bind_dict(st, q, dict_cols[i][0], ev->f[dict_cols[i][1]]);
    }
    if (rc == 0 && (rc = join_list(st, &ev->groups, &joined)) == 0) {
        rc = bind_dict(st, q, 8, joined);
    }
    if (rc == 0 && (rc = join_list(st, &ev->source_ips, &joined)) == 0) {
        rc = bind_dict(st, q, 10, joined);
    }
    if (ev->code != 0) {
        sqlite3_bind_int(q, 18, ev->code);
    }
    if (ev->f[KT_F_URI].ptr != NULL) {
        sqlite3_bind_text(q, 21, ev->f[KT_F_URI].ptr, (int)ev->f[KT_F_URI].len, SQLITE_STATIC);
    }
    if (rc == 0) {
        rc = bind_dict(st, q, 22, b->cluster.ptr != NULL ? b->cluster : ev->f[KT_F_CLUSTER_ANNOT]);
    }
    if (rc == 0 && r->origin < b->norigins) {
        const char *o = b->origins[r->origin];
        rc = bind_dict(st, q, 23, (struct kt_str){o, strlen(o)});
    }
    sqlite3_bind_int64(q, 24, (int64_t)r->off);
    if (rc != 0) {
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
        return rc;
    }
    if (step_done(q) != 0) {
        return KT_EIO;
    }
    *inserted = sqlite3_changes(st->db) > 0;
    if (*inserted) {
        *id = sqlite3_last_insert_rowid(st->db);
        return 0;
    }
    /* A duplicate: find the stored row, alerts and raw JSON link to it. */
    sqlite3_stmt *g = st->st[ST_EVENT_ID];
    rc = bind_dict(st, g, 2, ev->f[KT_F_STAGE]);
    sqlite3_bind_text(g, 1, ev->f[KT_F_AUDIT_ID].ptr, (int)ev->f[KT_F_AUDIT_ID].len, SQLITE_STATIC);
    sqlite3_bind_int64(g, 3, ev->ts_us);
    *id = 0;
    if (rc == 0 && sqlite3_step(g) == SQLITE_ROW) {
        *id = sqlite3_column_int64(g, 0);
    }
    sqlite3_reset(g);
    sqlite3_clear_bindings(g);
    return rc;
}

static int write_reject(struct kt_store *st, const struct kt_batch *b, const struct kt_event *ev,
                        int64_t now)
{
    sqlite3_stmt *q = st->st[ST_REJECT];
    const struct kt_record *r = &b->recs[ev->rec];
    const char *origin = r->origin < b->norigins ? b->origins[r->origin] : "";
    size_t len = r->len < REJECT_TEXT ? r->len : REJECT_TEXT;
    sqlite3_bind_int64(q, 1, now);
    sqlite3_bind_text(q, 2, origin, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, (int64_t)r->off);
    if (r->line > 0) {
        sqlite3_bind_int64(q, 4, (int64_t)r->line);
    }
    sqlite3_bind_text(q, 5, ev->reject, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, b->buf + r->pos, (int)len, SQLITE_STATIC);
    return step_done(q);
}

static int write_raw(struct kt_store *st, const struct kt_batch *b, const struct kt_event *ev,
                     int64_t id)
{
    const struct kt_record *r = &b->recs[ev->rec];
    sqlite3_stmt *q = st->st[ST_RAW];
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_text(q, 2, b->buf + r->pos, (int)r->len, SQLITE_STATIC);
    return step_done(q);
}

static int write_alert(struct kt_store *st, const struct kt_batch *b, const struct kt_alert *a,
                       const int64_t *ids)
{
    const struct kt_event *ev = &b->events[a->event];
    sqlite3_stmt *q = st->st[ST_ALERT];
    if (ids[a->event] > 0) {
        sqlite3_bind_int64(q, 1, ids[a->event]);
    }
    sqlite3_bind_int64(q, 2, ev->ts_us);
    sqlite3_bind_text(q, 3, ev->f[KT_F_AUDIT_ID].ptr, (int)ev->f[KT_F_AUDIT_ID].len, SQLITE_STATIC);
    int rc = bind_dict(st, q, 4, ev->f[KT_F_STAGE]);
    sqlite3_bind_text(q, 5, a->rule, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 6, a->priority);
    if (a->tags != NULL) {
        sqlite3_bind_text(q, 7, a->tags, -1, SQLITE_STATIC);
    }
    if (a->output.ptr != NULL) {
        sqlite3_bind_text(q, 8, a->output.ptr, (int)a->output.len, SQLITE_STATIC);
    }
    if (a->fields.ptr != NULL) {
        sqlite3_bind_text(q, 9, a->fields.ptr, (int)a->fields.len, SQLITE_STATIC);
    }
    if (rc != 0) {
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
        return rc;
    }
    rc = step_done(q);
    if (rc == 0 && sqlite3_changes(st->db) > 0) {
        return 1; /* a new alert */
    }
    return rc;
}

static int write_ckpt(struct kt_store *st, const struct kt_batch *b, int64_t now)
{
    const struct kt_ckpt_file *c = &b->ckpt_file;
    sqlite3_stmt *q = st->st[ST_CKPT_UPSERT];
    sqlite3_bind_int64(q, 1, (int64_t)c->fingerprint);
    if (c->path != NULL) {
        sqlite3_bind_text(q, 2, c->path, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(q, 3, (int64_t)c->offset);
    sqlite3_bind_int(q, 4, c->mode);
    sqlite3_bind_int(q, 5, c->done);
    sqlite3_bind_int64(q, 6, now);
    return step_done(q);
}

/* The body of the transaction; the caller commits or rolls back. */
static int write_batch(struct kt_store *st, struct kt_batch *b, struct kt_store_stats *d,
                       int64_t *ids)
{
    int64_t now = kt_now_wall_us();
    int rc = 0;
    for (size_t i = 0; i < b->nrecs && rc == 0; i++) {
        const struct kt_event *ev = &b->events[i];
        ids[i] = 0;
        if (ev->reject != NULL) {
            rc = write_reject(st, b, ev, now);
            d->rejects += rc == 0 && sqlite3_changes(st->db) > 0;
            continue;
        }
        int inserted = 0;
        rc = write_event(st, b, ev, &ids[i], &inserted);
        if (rc != 0) {
            break;
        }
        if (inserted) {
            d->events++;
        } else {
            d->duplicates++;
        }
        if (ids[i] > 0 && (st->opts.keep_raw_all || (ev->flags & KT_EV_KEEP_RAW))) {
            rc = write_raw(st, b, ev, ids[i]);
        }
    }
    for (size_t i = 0; i < b->nalerts && rc == 0; i++) {
        const struct kt_alert *a = &b->alerts[i];
        int n = write_alert(st, b, a, ids);
        if (n < 0) {
            rc = n;
        } else {
            d->alerts += (uint64_t)n;
            /* the raw JSON of an alerted event is always kept */
            if (ids[a->event] > 0) {
                rc = write_raw(st, b, &b->events[a->event], ids[a->event]);
            }
        }
    }
    if (rc == 0 && b->ckpt_kind == KT_CKPT_FILE) {
        rc = write_ckpt(st, b, now);
    }
    return rc;
}

int kt_store_write(struct kt_store *st, struct kt_batch *b, struct kt_store_stats *delta)
{
    struct kt_store_stats d = {0};
    int64_t *ids = NULL;
    int rc = 0;

    if (b->nrecs > 0) {
        ids = calloc(b->nrecs, sizeof(*ids));
        if (ids == NULL) {
            return KT_ENOMEM;
        }
    }
    pthread_mutex_lock(&st->mu);
    if (step_done(st->st[ST_BEGIN]) != 0) {
        kt_error("store", "cannot begin a transaction: %s", sqlite3_errmsg(st->db));
        rc = KT_EIO;
        goto out;
    }
    rc = write_batch(st, b, &d, ids);
    if (rc == 0 && step_done(st->st[ST_COMMIT]) != 0) {
        rc = KT_EIO;
    }
    if (rc != 0) {
        kt_error("store", "batch not stored: %s", sqlite3_errmsg(st->db));
        step_done(st->st[ST_ROLLBACK]);
        /* ids cached during the failed transaction may not exist: forget them */
        dict_clear(&st->dict);
        goto out;
    }
    d.batches = 1;
    st->totals.events += d.events;
    st->totals.duplicates += d.duplicates;
    st->totals.rejects += d.rejects;
    st->totals.alerts += d.alerts;
    st->totals.batches += d.batches;
    if (delta != NULL) {
        delta->events += d.events;
        delta->duplicates += d.duplicates;
        delta->rejects += d.rejects;
        delta->alerts += d.alerts;
        delta->batches += d.batches;
    }
out:
    pthread_mutex_unlock(&st->mu);
    free(ids);
    return rc;
}

int kt_store_ckpt_lookup(void *ctx, uint64_t fingerprint, uint64_t *offset, int *mode, int *done)
{
    struct kt_store *st = ctx;
    int rc = KT_ENOENT;
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *q = st->st[ST_CKPT_GET];
    sqlite3_bind_int64(q, 1, (int64_t)fingerprint);
    int s = sqlite3_step(q);
    if (s == SQLITE_ROW) {
        *offset = (uint64_t)sqlite3_column_int64(q, 0);
        *mode = sqlite3_column_int(q, 1);
        *done = sqlite3_column_int(q, 2);
        rc = 0;
    } else if (s != SQLITE_DONE) {
        rc = KT_EIO;
    }
    sqlite3_reset(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void kt_store_stats(struct kt_store *st, struct kt_store_stats *out)
{
    pthread_mutex_lock(&st->mu);
    *out = st->totals;
    pthread_mutex_unlock(&st->mu);
}
