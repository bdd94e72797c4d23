/*
 * test_store.c: the store's contract, checked on real SQLite files. Schema and migrations,
 * events read back through the views, duplicates, rejects, checkpoints in the batch's
 * transaction, raw JSON, alerts, the dictionary cache under eviction, and the writer thread.
 *
 * Events are built by hand (struct kt_event filled directly), never by the decoder, so these
 * tests only depend on the store. Rows are read back on a separate connection, as an analyst
 * would, and printed like the sqlite3 shell does: columns joined with '|', rows with '\n',
 * NULL as "NULL".
 *
 * Throughput is not measured here (unit tests must not depend on the machine); the program
 * used for the figures in store.c was a throwaway that wrote 200,000 hand-built events of
 * realistic shape through kt_store_write in batches of 4096 and timed it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>

#include "alert.h"
#include "event.h"
#include "rules.h"
#include "store.h"
#include "store_int.h"
#include "store_sql.h"

/* 2024-05-01T12:00:00.123456Z */
#define T0 1714564800123456LL

struct fx {
    char path[64];
    struct kt_store *st;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    int fd;

    if (f == NULL) {
        return -1;
    }
    strcpy(f->path, "/tmp/kt-store-XXXXXX");
    fd = mkstemp(f->path);
    if (fd < 0) {
        free(f);
        return -1;
    }
    close(fd);
    unlink(f->path); /* the store creates it */
    *state = f;
    return 0;
}

static void remove_db(const char *path)
{
    char p[96];

    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

static int teardown(void **state)
{
    struct fx *f = *state;

    kt_store_close(f->st);
    remove_db(f->path);
    free(f);
    return 0;
}

static void open_tuned(struct fx *f, int keep_raw_all, const struct store_tuning *t)
{
    struct kt_store_opts o = {.keep_raw_all = keep_raw_all};
    char err[256] = "";

    if (store_open_tuned(f->path, &o, t, &f->st, err, sizeof(err)) != 0) {
        fail_msg("open: %s", err);
    }
}

static void open_store(struct fx *f, int keep_raw_all)
{
    struct store_tuning t;

    store_tuning_default(&t);
    open_tuned(f, keep_raw_all, &t);
}

static void close_store(struct fx *f)
{
    kt_store_close(f->st);
    f->st = NULL;
}

/* All rows of sql on a separate connection, sqlite3-shell style (the shell's
 * sqlar_uncompress() included). Static buffer. */
static const char *query(const char *path, const char *sql)
{
    static char out[8192];
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    size_t n = 0;

    out[0] = '\0';
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        kt_raw_register(db) != 0 || sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) {
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    }
    while (sqlite3_step(q) == SQLITE_ROW) {
        if (n > 0 && n < sizeof(out)) {
            n += (size_t)snprintf(out + n, sizeof(out) - n, "\n");
        }
        for (int c = 0; c < sqlite3_column_count(q) && n < sizeof(out); c++) {
            const char *v = (const char *)sqlite3_column_text(q, c);
            n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", c > 0 ? "|" : "",
                                  v != NULL ? v : "NULL");
        }
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return out;
}

static void exec_on(const char *path, const char *sql)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    }
    sqlite3_close(db);
}

/* ---- building batches by hand ---- */

static struct kt_str S(const char *s) {
    return (struct kt_str){s, s != NULL ? strlen(s) : 0};
}

/* Append a record holding raw (its JSON) from origin at off/line, with a zeroed event. */
static struct kt_event *
add_record(struct kt_batch *b, const char *origin, const char *raw, uint64_t off, uint64_t line)
{
    size_t len = strlen(raw);
    struct kt_record *r = NULL;
    struct kt_event *ev = NULL;
    int o = kt_batch_origin(b, origin);

    assert_true(o >= 0);
    assert_int_equal(kt_batch_reserve(b, len), 0);
    r = kt_batch_add_record(b);
    assert_non_null(r);
    memcpy(b->buf + b->len, raw, len);
    r->pos = b->len;
    r->len = len;
    r->off = off;
    r->line = line;
    r->origin = (uint32_t)o;
    b->len += len;
    if (b->nrecs > b->capevents) {
        size_t cap = b->capevents ? b->capevents * 2 : 16;
        struct kt_event *e = realloc(b->events, cap * sizeof(*e));
        assert_non_null(e);
        b->events = e;
        b->capevents = cap;
    }
    ev = &b->events[b->nrecs - 1];
    memset(ev, 0, sizeof(*ev));
    ev->rec = (uint32_t)(b->nrecs - 1);
    return ev;
}

/* A typical ResponseComplete secret read by user at T0 + us, audit ID id. */
static struct kt_event *add_event(struct kt_batch *b, const char *id, const char *user, int64_t us)
{
    static struct kt_str groups[] = {{"system:authenticated", 20}, {"dev", 3}};
    static struct kt_str ips[] = {{"10.0.0.1", 8}, {"192.0.2.7", 9}};
    char raw[160];
    struct kt_event *ev = NULL;
    char *idcopy = NULL;

    snprintf(raw, sizeof(raw), "{\"auditID\":\"%s\",\"user\":{\"username\":\"%s\"}}", id, user);
    ev = add_record(b, "/var/log/audit.log", raw, 1000 + 100 * (uint64_t)b->nrecs, b->nrecs + 1);
    idcopy = kt_arena_dup(&b->arena, id, strlen(id));
    assert_non_null(idcopy);
    ev->f[KT_F_AUDIT_ID] = S(idcopy);
    ev->stage = KT_STAGE_RESPONSE_COMPLETE;
    ev->f[KT_F_STAGE] = S("ResponseComplete");
    ev->level = KT_LEVEL_METADATA;
    ev->f[KT_F_LEVEL] = S("Metadata");
    ev->f[KT_F_VERB] = S("get");
    ev->f[KT_F_USER] = S(user);
    ev->f[KT_F_USER_AGENT] = S("kubectl/v1.30.0 (linux/amd64) kubernetes/7c48c2b");
    ev->f[KT_F_RESOURCE] = S("secrets");
    ev->f[KT_F_NAMESPACE] = S("default");
    ev->f[KT_F_NAME] = S("db-password");
    ev->f[KT_F_API_VERSION] = S("v1");
    ev->f[KT_F_URI] = S("/api/v1/namespaces/default/secrets/db-password");
    ev->f[KT_F_DECISION] = S("allow");
    ev->f[KT_F_AUTHZ_REASON] = S("RBAC: allowed by RoleBinding \"dev\"");
    ev->groups = (struct kt_strlist){groups, 2};
    ev->source_ips = (struct kt_strlist){ips, 2};
    ev->code = 200;
    ev->ts_us = T0 + us;
    ev->recv_us = T0 + us - 1500;
    return ev;
}

static struct kt_alert *add_alert(struct kt_batch *b, uint32_t event, const char *rule)
{
    struct kt_alert *a = NULL;

    if (b->nalerts == b->capalerts) {
        size_t cap = b->capalerts ? b->capalerts * 2 : 4;
        a = realloc(b->alerts, cap * sizeof(*a));
        assert_non_null(a);
        b->alerts = a;
        b->capalerts = cap;
    }
    a = &b->alerts[b->nalerts++];
    *a = (struct kt_alert){.event = event,
                           .rule = rule,
                           .priority = KT_PRIO_WARNING,
                           .tags = "k8s,T1552",
                           .output = S("secret read"),
                           .fields = S("{\"ka.user.name\":\"alice\"}")};
    return a;
}

/* Make b's write fail midway: its events are written, then an alert names the record at
 * index event, which b must not have (a broken batch), and the transaction rolls back. */
static void write_fails_midway(struct fx *f, struct kt_batch *b, uint32_t event,
                               struct kt_store_stats *d)
{
    add_alert(b, event, "Broken rule");
    kt_log_level = -1;
    assert_int_equal(kt_store_write(f->st, b, d), KT_EINVAL);
    kt_log_level = KT_LOG_INFO;
}

/* Three events: e-0 by bob, e-1 by alice, e-2 by bob, 1 us apart. */
static struct kt_batch *three_events(void)
{
    struct kt_batch *b = kt_batch_create();

    assert_non_null(b);
    add_event(b, "e-0", "bob", 0);
    add_event(b, "e-1", "alice", 1);
    add_event(b, "e-2", "bob", 2);
    return b;
}

/* ---- schema and migrations ---- */

static const char *const all_objects =
    "index|alert_events_event\nindex|alerts_request\nindex|alerts_rule_ts\nindex|alerts_ts\n"
    "index|events_name\nindex|events_resource_verb_ts\nindex|events_user_ts\nindex|raw_"
    "block\ntable|alert_events\n"
    "table|alert_groups\ntable|alerts\n"
    "table|ckpt_file\ntable|ckpt_kafka\ntable|corr_state\ntable|events\ntable|first_seen\n"
    "table|raw\ntable|raw_blocks\n"
    "table|rejects\ntable|strings\nview|v_alerts\nview|v_events\nview|v_events_lite\n"
    "view|v_rejects";
#define OBJECTS_SQL                                                                                \
    "SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"

static void test_store_fresh_database_gets_current_version_and_all_objects(void **state)
{
    struct fx *f = *state;
    char want[16];

    open_store(f, 0);
    snprintf(want, sizeof(want), "%d", kt_store_schema_version());
    assert_true(kt_store_schema_version() >= 1);
    assert_string_equal(query(f->path, "PRAGMA user_version"), want);
    assert_string_equal(query(f->path, "PRAGMA application_id"), "1802793580"); /* 'ktrl' */
    assert_string_equal(query(f->path, "PRAGMA journal_mode"), "wal");
    assert_string_equal(query(f->path, OBJECTS_SQL), all_objects);
    /* the columns document themselves */
    assert_non_null(strstr(query(f->path, "SELECT sql FROM sqlite_schema WHERE name = 'events'"),
                           "-- stageTimestamp, microseconds since the epoch (UTC)"));
}

static void test_store_reopen_migrates_nothing_and_keeps_rows(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();
    char schema[8192];

    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    snprintf(schema, sizeof(schema), "%s", query(f->path, "SELECT sql FROM sqlite_schema"));
    close_store(f);
    open_store(f, 0);
    assert_string_equal(query(f->path, "SELECT sql FROM sqlite_schema"), schema);
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "3");
    /* and it still writes */
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "3");
    kt_batch_destroy(b);
}

static void test_store_refuses_database_of_a_newer_ktrail(void **state)
{
    struct fx *f = *state;
    char err[256] = "";

    open_store(f, 0);
    close_store(f);
    exec_on(f->path, "PRAGMA user_version=99");
    assert_int_equal(kt_store_open(f->path, NULL, &f->st, err, sizeof(err)), KT_EIO);
    assert_null(f->st);
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, "schema version 99 is newer than this ktrail knows"));
}

static void test_store_refuses_foreign_database_and_leaves_it_untouched(void **state)
{
    struct fx *f = *state;
    char err[256] = "";

    exec_on(f->path, "CREATE TABLE other (x); INSERT INTO other VALUES (1)");
    assert_int_equal(kt_store_open(f->path, NULL, &f->st, err, sizeof(err)), KT_EIO);
    assert_null(f->st);
    assert_non_null(strstr(err, "not a ktrail database"));
    assert_string_equal(query(f->path, "PRAGMA journal_mode"), "delete");
    assert_string_equal(query(f->path, "SELECT type, name FROM sqlite_schema"), "table|other");
    /* another program's versioned database is no more ours */
    exec_on(f->path, "PRAGMA user_version=1");
    assert_int_equal(kt_store_open(f->path, NULL, &f->st, err, sizeof(err)), KT_EIO);
    assert_non_null(strstr(err, "not a ktrail database"));
}

static void test_store_refuses_file_that_is_not_sqlite(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    FILE *fp = fopen(f->path, "w");

    assert_non_null(fp);
    for (int i = 0; i < 100; i++) {
        fputs("{\"kind\":\"Event\",\"auditID\":\"not a database\"}\n", fp);
    }
    fclose(fp);
    assert_int_equal(kt_store_open(f->path, NULL, &f->st, err, sizeof(err)), KT_EIO);
    assert_non_null(strstr(err, "not a SQLite database"));
}

/* ---- events ---- */

static void test_store_event_reads_back_through_v_events_with_every_value(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();
    struct kt_event *ev = &b->events[1];
    struct kt_store_stats d = {0};

    ev->f[KT_F_IMP_USER] = S("system:serviceaccount:kube-system:deployer");
    ev->f[KT_F_SUBRESOURCE] = S("status");
    ev->f[KT_F_API_GROUP] = S("apps");
    ev->f[KT_F_CLUSTER_ANNOT] = S("prod-eu");
    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(d.events, 3);
    assert_int_equal(d.duplicates, 0);
    assert_int_equal(d.batches, 1);
    assert_string_equal(
        query(f->path, "SELECT time, ts, received_ts, audit_id, stage, level, verb, user, groups,"
                       " imp_user, source_ips, user_agent, resource, subresource, namespace, name,"
                       " api_group, api_version, code, decision, authz_reason, request_uri,"
                       " cluster, origin, offset, raw FROM v_events WHERE audit_id = 'e-1'"),
        "2024-05-01T12:00:00.123457Z|1714564800123457|1714564800121957|e-1|ResponseComplete|"
        "Metadata|get|alice|system:authenticated,dev|system:serviceaccount:kube-system:deployer|"
        "10.0.0.1,192.0.2.7|kubectl/v1.30.0 (linux/amd64) kubernetes/7c48c2b|secrets|status|"
        "default|db-password|apps|v1|200|allow|RBAC: allowed by RoleBinding \"dev\"|"
        "/api/v1/namespaces/default/secrets/db-password|prod-eu|/var/log/audit.log|1100|NULL");
    /* repeated strings are stored once, the URI too (watches and leases repeat theirs); the
     * audit ID is not a dictionary value */
    assert_string_equal(query(f->path, "SELECT count(*) FROM strings WHERE s = 'secrets'"), "1");
    assert_string_equal(query(f->path, "SELECT count(*) FROM strings WHERE s LIKE 'e-%'"), "0");
    assert_string_equal(query(f->path, "SELECT count(*) FROM strings WHERE s LIKE '/api/%'"), "1");
    assert_string_equal(query(f->path, "SELECT count(*) FROM events WHERE request_uri IS NOT NULL"
                                       " OR uri IS NULL"),
                        "0");
    kt_batch_destroy(b);
}

static void test_store_absent_values_are_null_in_v_events(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = kt_batch_create();
    struct kt_event *ev = add_record(b, "-", "{}", 0, 0);

    ev->f[KT_F_AUDIT_ID] = S("bare");
    ev->f[KT_F_STAGE] = S("ResponseComplete");
    ev->ts_us = T0;
    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT received_ts, level, verb, user, groups, source_ips,"
                                       " code, request_uri, cluster, origin, offset FROM v_events"),
                        "NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|-|0");
    kt_batch_destroy(b);
}

static void test_store_source_cluster_tag_wins_over_annotation(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();

    b->events[0].f[KT_F_CLUSTER_ANNOT] = S("from-annotation");
    b->cluster = S("from-source");
    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT DISTINCT cluster FROM v_events"), "from-source");
    kt_batch_destroy(b);
}

static void test_store_views_answer_by_name_and_time_text_using_the_index(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();

    add_event(b, "e-old", "alice", -86400LL * 1000000 * 30); /* 2024-04-01 */
    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT audit_id FROM v_events WHERE user = 'alice'"
                                       " AND time >= '2024-05-01' ORDER BY ts"),
                        "e-1");
    assert_string_equal(query(f->path, "SELECT count(*) FROM v_events WHERE user = 'alice'"), "2");
    assert_non_null(strstr(query(f->path, "EXPLAIN QUERY PLAN SELECT * FROM v_events"
                                          " WHERE user = 'alice' AND time >= '2024-05-01'"),
                           "events_user_ts"));
    /* time ranges on the base column use the unique (ts, ...) index */
    assert_non_null(strstr(query(f->path, "EXPLAIN QUERY PLAN SELECT * FROM v_events WHERE ts >="
                                          " strftime('%s', '2024-05-01') * 1000000"),
                           "sqlite_autoindex_events_1 (ts>?)"));
    kt_batch_destroy(b);
}

static void test_store_rewrite_counts_duplicates_and_stores_nothing_new(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();
    struct kt_store_stats d1 = {0}, d2 = {0}, tot = {0};
    char before[64];

    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, &d1), 0);
    snprintf(before, sizeof(before), "%s",
             query(f->path, "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM strings),"
                            " (SELECT max(id) FROM events)"));
    assert_int_equal(kt_store_write(f->st, b, &d2), 0);
    assert_int_equal(d2.events, 0);
    assert_int_equal(d2.duplicates, 3);
    assert_int_equal(d2.batches, 1);
    assert_string_equal(query(f->path, "SELECT (SELECT count(*) FROM events), (SELECT count(*)"
                                       " FROM strings), (SELECT max(id) FROM events)"),
                        before);
    kt_store_stats(f->st, &tot);
    assert_int_equal(tot.events, 3);
    assert_int_equal(tot.duplicates, 3);
    assert_int_equal(tot.batches, 2);
    kt_batch_destroy(b);
}

static void test_store_duplicate_within_one_batch_is_stored_once(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();
    struct kt_store_stats d = {0};

    add_event(b, "e-1", "alice", 1); /* a webhook batch can carry a retried event twice */
    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(d.events, 3);
    assert_int_equal(d.duplicates, 1);
    kt_batch_destroy(b);
}

/* A canonical UUID is kept as its 16 bytes, anything else as its text; the views give the
 * text back either way, and the same auditID is found again whichever form it took. */
static void test_store_audit_id_uuid_is_16_bytes_and_others_stay_text(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = kt_batch_create();
    static const char *const ids[] = {
        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", /* canonical: 16 bytes */
        "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0", /* uppercase: text, or it would come back lower */
        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fg", /* not hex */
        "0f1e2d3c-4b5a-6978-8796_a5b4c3d2e1f0", /* a dash missing */
        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f",  /* 35 characters */
    };

    assert_non_null(b);
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        add_event(b, ids[i], "alice", (int64_t)i);
    }
    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT typeof(audit_id), length(audit_id) FROM events"
                                       " ORDER BY id"),
                        "blob|16\ntext|36\ntext|36\ntext|36\ntext|35");
    assert_string_equal(
        query(f->path, "SELECT audit_id FROM v_events ORDER BY id"),
        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\n0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0\n"
        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fg\n0f1e2d3c-4b5a-6978-8796_a5b4c3d2e1f0\n"
        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f");
    /* written again: every one is known (the lookup binds the same form) */
    struct kt_store_stats st;
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    kt_store_stats(f->st, &st);
    assert_int_equal(st.events, 5);
    assert_int_equal(st.duplicates, 5);
    kt_batch_destroy(b);
}

static void test_store_reused_audit_id_at_another_time_is_another_event(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();
    struct kt_store_stats d = {0};

    /* a client can choose its auditID (Audit-ID header): reusing one must not hide a request */
    add_event(b, "e-1", "mallory", 5000000);
    b->events[3].f[KT_F_VERB] = S("delete");
    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(d.events, 4);
    assert_string_equal(query(f->path, "SELECT user, verb FROM v_events WHERE audit_id = 'e-1'"
                                       " ORDER BY ts"),
                        "alice|get\nmallory|delete");
    kt_batch_destroy(b);
}

static void test_store_same_audit_id_other_stage_is_another_event(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();
    struct kt_store_stats d = {0};
    struct kt_event *ev = add_event(b, "e-1", "alice", 1);

    ev->f[KT_F_STAGE] = S("ResponseStarted");
    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(d.events, 4);
    assert_string_equal(query(f->path, "SELECT stage FROM v_events WHERE audit_id = 'e-1'"
                                       " ORDER BY stage"),
                        "ResponseComplete\nResponseStarted");
    kt_batch_destroy(b);
}

static void test_store_event_without_stage_still_dedupes(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = kt_batch_create();
    struct kt_store_stats d = {0};
    struct kt_event *ev = add_record(b, "gke", "{}", 0, 0);

    ev->f[KT_F_AUDIT_ID] = S("no-stage");
    ev->ts_us = T0;
    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(d.events, 1);
    assert_int_equal(d.duplicates, 1);
    assert_string_equal(query(f->path, "SELECT stage FROM v_events"), "NULL");
    kt_batch_destroy(b);
}

/* ---- rejects ---- */

static void test_store_rejects_keep_position_reason_and_first_kb_once(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();
    struct kt_store_stats d = {0};
    char big[2001];
    struct kt_event *ev = NULL;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ev = add_record(b, "/var/log/audit.log", big, 123456, 77);
    ev->reject = "invalid JSON: unterminated string";
    ev = add_record(b, "/var/log/audit.log", "{\"kind\":\"Event\"}", 130000, 78);
    ev->f[KT_F_STAGE] = S("ResponseComplete"); /* decoded partly, then refused */
    ev->reject = "no auditID";
    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(d.events, 3);
    assert_int_equal(d.rejects, 2);
    assert_string_equal(query(f->path, "SELECT origin, offset, line, reason, length(text),"
                                       " substr(time, 1, 2) FROM v_rejects ORDER BY offset"),
                        "/var/log/audit.log|123456|77|invalid JSON: unterminated string|1024|20\n"
                        "/var/log/audit.log|130000|78|no auditID|16|20");
    assert_string_equal(query(f->path, "SELECT text FROM rejects WHERE line = 78"),
                        "{\"kind\":\"Event\"}");
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "3");
    /* a replay does not add them again */
    memset(&d, 0, sizeof(d));
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(d.rejects, 0);
    assert_string_equal(query(f->path, "SELECT count(*) FROM rejects"), "2");
    kt_batch_destroy(b);
}

static void test_store_reject_text_is_not_cut_inside_a_character(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = kt_batch_create();
    char text[1100];
    struct kt_event *ev = NULL;

    /* 1023 ASCII bytes, then 'é' (2 bytes) straddling the 1024-byte limit */
    memset(text, 'a', 1023);
    memcpy(text + 1023, "\xc3\xa9zz", 5);
    ev = add_record(b, "-", text, 0, 1);
    ev->reject = "not an audit event";
    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT length(CAST(text AS BLOB)), substr(text, -1)"
                                       " FROM rejects"),
                        "1023|a");
    kt_batch_destroy(b);
}

static void test_store_event_without_audit_id_is_a_reject_not_a_failed_batch(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();
    struct kt_store_stats d = {0};

    b->events[1].f[KT_F_AUDIT_ID] = KT_STR_NULL;
    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(d.events, 2);
    assert_int_equal(d.rejects, 1);
    assert_string_equal(query(f->path, "SELECT offset, reason FROM rejects"), "1100|no auditID");
    kt_batch_destroy(b);
}

/* ---- checkpoints and transactions ---- */

static void test_store_checkpoint_is_upserted_and_looked_up(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = kt_batch_create();
    struct kt_ckpt_file c = {0};

    open_store(f, 0);
    assert_int_equal(kt_store_ckpt_lookup(f->st, UINT64_MAX - 5, &c), KT_ENOENT);
    /* a batch may carry a checkpoint and no records (end of file reached) */
    b->ckpt_kind = KT_CKPT_FILE;
    b->ckpt_file = (struct kt_ckpt_file){.fingerprint = UINT64_MAX - 5, /* needs all 64 bits */
                                         .path = strdup("/var/log/audit.log"),
                                         .offset = 777,
                                         .mode = 2,
                                         .line = 12,
                                         .col = 34,
                                         .done = 0};
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_int_equal(kt_store_ckpt_lookup(f->st, UINT64_MAX - 5, &c), 0);
    assert_int_equal(c.offset, 777);
    assert_int_equal(c.mode, 2);
    assert_int_equal(c.line, 12);
    assert_int_equal(c.col, 34);
    assert_int_equal(c.done, 0);
    b->ckpt_file.offset = 900;
    b->ckpt_file.mode = 0;
    b->ckpt_file.line = 40;
    b->ckpt_file.col = 0;
    b->ckpt_file.done = 1;
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_int_equal(kt_store_ckpt_lookup(f->st, UINT64_MAX - 5, &c), 0);
    assert_int_equal(c.offset, 900);
    assert_int_equal(c.mode, 0);
    assert_int_equal(c.line, 40);
    assert_int_equal(c.col, 0);
    assert_int_equal(c.done, 1);
    assert_int_equal(kt_store_ckpt_lookup(f->st, 42, &c), KT_ENOENT);
    assert_string_equal(query(f->path, "SELECT count(*), path FROM ckpt_file"),
                        "1|/var/log/audit.log");
    kt_batch_destroy(b);
}

static void test_store_kafka_checkpoints_are_upserted_per_partition_and_looked_up(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = kt_batch_create();
    int64_t next = -1;

    open_store(f, 0);
    assert_int_equal(kt_store_kafka_lookup(f->st, "audit", 0, &next), KT_ENOENT);
    /* two partitions of one topic and one of another; a repeated partition moves forward */
    add_event(b, "k-0", "alice", 0);
    assert_int_equal(kt_batch_ckpt_kafka(b, "audit", 0, 10), 0);
    assert_int_equal(kt_batch_ckpt_kafka(b, "audit", 3, 7), 0);
    assert_int_equal(kt_batch_ckpt_kafka(b, "audit", 0, 12), 0);
    assert_int_equal(kt_batch_ckpt_kafka(b, "audit-eu", 0, 3000000000LL), 0);
    assert_int_equal(b->ckpt_kind, KT_CKPT_KAFKA);
    assert_int_equal(b->nckpt_kafka, 3);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_int_equal(kt_store_kafka_lookup(f->st, "audit", 0, &next), 0);
    assert_int_equal(next, 12);
    assert_int_equal(kt_store_kafka_lookup(f->st, "audit", 3, &next), 0);
    assert_int_equal(next, 7);
    assert_int_equal(kt_store_kafka_lookup(f->st, "audit-eu", 0, &next), 0);
    assert_int_equal(next, 3000000000LL); /* offsets need 64 bits */
    assert_int_equal(kt_store_kafka_lookup(f->st, "audit", 1, &next), KT_ENOENT);
    assert_int_equal(kt_store_kafka_lookup(f->st, "audi", 0, &next), KT_ENOENT);
    /* a later batch, with a checkpoint and no records, overwrites only its partition */
    kt_batch_reset(b);
    assert_int_equal(b->nckpt_kafka, 0);
    assert_int_equal(b->ckpt_kind, KT_CKPT_NONE);
    assert_int_equal(kt_batch_ckpt_kafka(b, "audit", 3, 9), 0);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT topic, partition, next_offset FROM ckpt_kafka"
                                       " ORDER BY 1, 2"),
                        "audit|0|12\naudit|3|9\naudit-eu|0|3000000000");
    assert_int_equal(kt_store_kafka_lookup(f->st, "audit", 0, &next), 0);
    assert_int_equal(next, 12);
    kt_batch_destroy(b);
}

static void test_store_kafka_checkpoint_dropped_from_batch_is_not_written(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = kt_batch_create();
    int64_t next = -1;

    open_store(f, 0);
    assert_int_equal(kt_batch_ckpt_kafka(b, "audit", 0, 5), 0);
    assert_int_equal(kt_batch_ckpt_kafka(b, "audit", 1, 6), 0);
    assert_int_equal(kt_batch_ckpt_kafka(b, "audit", 2, 7), 0);
    kt_batch_ckpt_kafka_drop(b, "audit", 1); /* revoked while the batch was being filled */
    kt_batch_ckpt_kafka_drop(b, "audit", 9); /* not there: nothing happens */
    assert_int_equal(b->nckpt_kafka, 2);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_int_equal(kt_store_kafka_lookup(f->st, "audit", 1, &next), KT_ENOENT);
    assert_string_equal(query(f->path, "SELECT partition, next_offset FROM ckpt_kafka"
                                       " ORDER BY 1"),
                        "0|5\n2|7");
    kt_batch_destroy(b);
}

static void test_store_kafka_checkpoint_rolls_back_with_its_events(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();
    struct store_tuning t;
    sqlite3 *other = NULL;
    int64_t next = -1;

    store_tuning_default(&t);
    t.busy_ms = 10;
    open_tuned(f, 0, &t);
    assert_int_equal(kt_batch_ckpt_kafka(b, "audit", 4, 100), 0);
    /* another connection holds the write lock: the batch fails, events and offset alike */
    assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(kt_store_write(f->st, b, NULL), KT_EIO);
    assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(kt_store_kafka_lookup(f->st, "audit", 4, &next), KT_ENOENT);
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "0");
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_int_equal(kt_store_kafka_lookup(f->st, "audit", 4, &next), 0);
    assert_int_equal(next, 100);
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "3");
    kt_batch_destroy(b);
}

static void test_store_version_1_database_migrates_to_kafka_checkpoints(void **state)
{
    struct fx *f = *state;
    char sql[64];
    int64_t next = -1;

    /* a database as ktrail 0.1 (schema version 1) left it, with a row */
    exec_on(f->path, SQL_SCHEMA_V1);
    snprintf(sql, sizeof(sql), "PRAGMA application_id=%d", SQL_APP_ID);
    exec_on(f->path, sql);
    exec_on(f->path, "PRAGMA user_version=1");
    exec_on(f->path, "INSERT INTO ckpt_file VALUES (1, '/var/log/audit.log', 10, 0, 0, 0)");
    open_store(f, 0);
    assert_string_equal(query(f->path, "PRAGMA user_version"), "7");
    assert_string_equal(query(f->path, OBJECTS_SQL), all_objects);
    assert_string_equal(query(f->path, "SELECT path, offset, line, col FROM ckpt_file"),
                        "/var/log/audit.log|10|0|0");
    assert_int_equal(kt_store_kafka_lookup(f->st, "audit", 0, &next), KT_ENOENT);
}

/* The parts of a schema that make its behaviour, for schema X: every column of every table and
 * view, each table's kind, every index's columns and flags, the SQL of indexes and views, the
 * foreign keys. */
static const char *const shape_sql[] = {
    "SELECT m.type, m.name, p.cid, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk, p.hidden"
    " FROM X.sqlite_schema m JOIN pragma_table_xinfo(m.name, 'X') p"
    " WHERE m.type IN ('table', 'view')",
    "SELECT name, type, wr, strict FROM pragma_table_list WHERE schema = 'X'"
    " AND name NOT LIKE 'sqlite_%'",
    "SELECT m.name, il.name, il.\"unique\", il.origin, il.partial, ii.seqno, ii.cid, ii.name"
    " FROM X.sqlite_schema m JOIN pragma_index_list(m.name, 'X') il"
    " JOIN pragma_index_info(il.name, 'X') ii WHERE m.type = 'table'",
    "SELECT type, name, tbl_name, sql FROM X.sqlite_schema WHERE type IN ('index', 'view',"
    " 'trigger') AND sql IS NOT NULL",
    "SELECT m.name, f.id, f.seq, f.\"table\", f.\"from\", f.\"to\" FROM X.sqlite_schema m"
    " JOIN pragma_foreign_key_list(m.name, 'X') f WHERE m.type = 'table'",
};

/* shape_sql[i] for schema name x. Static buffer. */
static const char *shape_of(size_t i, const char *x)
{
    static char out[1024];
    size_t n = 0;

    for (const char *p = shape_sql[i]; *p != '\0' && n + 8 < sizeof(out); p++) {
        if (*p == 'X' && (p[1] == '.' || p[1] == '\'')) {
            n += (size_t)snprintf(out + n, sizeof(out) - n, "%s", x);
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    return out;
}

/* Rows of the shapes of a's and b's schemas that are not in both ("a|..." or "b|..."), into
 * diff; *rows gets how many rows a's shapes have. */
static void schema_diff(const char *a, const char *b, char *diff, size_t len, int *rows)
{
    sqlite3 *db = NULL;
    char sql[8192];
    size_t n = 0;

    diff[0] = '\0';
    *rows = 0;
    assert_int_equal(sqlite3_open_v2(a, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(kt_raw_register(db), 0); /* v_events reads through it */
    snprintf(sql, sizeof(sql), "ATTACH '%s' AS other", b);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    for (size_t i = 0; i < sizeof(shape_sql) / sizeof(shape_sql[0]); i++) {
        char qa[1024], qb[1024];
        sqlite3_stmt *q = NULL;
        snprintf(qa, sizeof(qa), "%s", shape_of(i, "main"));
        snprintf(qb, sizeof(qb), "%s", shape_of(i, "other"));
        snprintf(sql, sizeof(sql),
                 "SELECT 0, 'a', * FROM (%s) UNION ALL SELECT 1, 'a', * FROM (%s EXCEPT %s)"
                 " UNION ALL SELECT 1, 'b', * FROM (%s EXCEPT %s)",
                 qa, qa, qb, qb, qa);
        if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) {
            fail_msg("%s: %s", sql, sqlite3_errmsg(db));
        }
        while (sqlite3_step(q) == SQLITE_ROW) {
            if (sqlite3_column_int(q, 0) == 0) {
                (*rows)++;
                continue;
            }
            for (int c = 1; c < sqlite3_column_count(q) && n < len; c++) {
                const char *v = (const char *)sqlite3_column_text(q, c);
                n += (size_t)snprintf(diff + n, len - n, "%s%s", c > 1 ? "|" : "",
                                      v != NULL ? v : "NULL");
            }
            if (n < len) {
                n += (size_t)snprintf(diff + n, len - n, "\n");
            }
        }
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
}

static void test_store_new_database_is_what_the_migrations_make(void **state)
{
    struct fx *f = *state;
    struct fx other = {.st = NULL};
    const char *old = other.path;
    char sql[64], diff[4096];
    int rows = 0;

    /* a version 1 database, migrated step by step */
    snprintf(other.path, sizeof(other.path), "%.56s-v1", f->path);
    exec_on(old, SQL_SCHEMA_V1);
    snprintf(sql, sizeof(sql), "PRAGMA application_id=%d", SQL_APP_ID);
    exec_on(old, sql);
    exec_on(old, "PRAGMA user_version=1");
    open_store(&other, 0);
    close_store(&other);
    /* and a new one, made in one step */
    open_store(f, 0);
    close_store(f);
    assert_string_equal(query(old, "PRAGMA user_version"), query(f->path, "PRAGMA user_version"));
    schema_diff(f->path, old, diff, sizeof(diff), &rows);
    remove_db(old);
    if (diff[0] != '\0') {
        fail_msg("the new and the migrated schemas differ (a: new, b: migrated):\n%s", diff);
    }
    print_message("%d rows of shape\n", rows);
    assert_true(rows > 200); /* the shapes are not empty: 13 tables, 4 views, 13 indexes */
}

/* In a new database's schema, each column of each table sits on a line of its own, with the
 * comment that says what it holds (keys and references excepted). */
static void test_store_new_database_schema_documents_every_column(void **state)
{
    struct fx *f = *state;
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int columns = 0;

    open_store(f, 0);
    close_store(f);
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT m.name, m.sql, p.name, p.pk > 0 OR EXISTS (SELECT 1 FROM"
                           " pragma_foreign_key_list(m.name) k WHERE k.\"from\" = p.name)"
                           " FROM sqlite_schema m JOIN pragma_table_info(m.name) p"
                           " WHERE m.type = 'table'",
                           -1, &q, NULL),
        SQLITE_OK);
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *table = (const char *)sqlite3_column_text(q, 0);
        const char *text = (const char *)sqlite3_column_text(q, 1);
        const char *col = (const char *)sqlite3_column_text(q, 2);
        char start[64];
        snprintf(start, sizeof(start), "\n  %s ", col);
        const char *line = strstr(text, start);
        if (line == NULL) {
            fail_msg("%s.%s has no line of its own:\n%s", table, col, text);
        }
        const char *end = strchr(line + 1, '\n');
        const char *dash = strstr(line, "--");
        if (!sqlite3_column_int(q, 3) && (dash == NULL || (end != NULL && dash > end))) {
            fail_msg("%s.%s has no comment on its line:\n%s", table, col, text);
        }
        columns++;
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    assert_true(columns > 60);
}

static void test_store_locked_database_fails_the_batch_whole_and_recovers(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();
    struct store_tuning t;
    sqlite3 *other = NULL;

    store_tuning_default(&t);
    t.busy_ms = 20;
    open_tuned(f, 0, &t);
    b->ckpt_kind = KT_CKPT_FILE;
    b->ckpt_file = (struct kt_ckpt_file){.fingerprint = 7, .offset = 10};
    /* another writer holds the lock past the busy timeout */
    assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    kt_log_level = -1;
    assert_int_equal(kt_store_write(f->st, b, NULL), KT_EIO);
    kt_log_level = KT_LOG_INFO;
    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_string_equal(query(f->path, "SELECT (SELECT count(*) FROM events), (SELECT count(*)"
                                       " FROM strings), (SELECT count(*) FROM ckpt_file)"),
                        "0|0|0");
    /* the next attempt stores all of it */
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT (SELECT count(*) FROM events), (SELECT count(*)"
                                       " FROM ckpt_file)"),
                        "3|1");
    kt_batch_destroy(b);
}

static void test_store_batch_failing_midway_rolls_back_and_forgets_cached_ids(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();
    struct kt_store_stats d = {0}, tot = {0};

    open_store(f, 0);
    b->ckpt_kind = KT_CKPT_FILE;
    b->ckpt_file = (struct kt_ckpt_file){.fingerprint = 9, .offset = 300};
    /* events and strings are written, then an alert names an event the batch does not have */
    write_fails_midway(f, b, 3, &d);
    assert_int_equal(d.events, 0);
    assert_string_equal(query(f->path, "SELECT (SELECT count(*) FROM events), (SELECT count(*)"
                                       " FROM strings), (SELECT count(*) FROM ckpt_file)"),
                        "0|0|0");
    /* the string ids cached during the failed transaction must not be reused */
    b->nalerts = 0;
    add_event(b, "e-3", "carol", 3);
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(d.events, 4);
    assert_string_equal(query(f->path, "SELECT group_concat(user, ',') FROM (SELECT user FROM"
                                       " v_events ORDER BY ts)"),
                        "bob,alice,bob,carol");
    kt_store_stats(f->st, &tot);
    assert_int_equal(tot.batches, 1);
    kt_batch_destroy(b);
}

/* ---- raw JSON and alerts ---- */

static void test_store_raw_kept_for_flagged_events_only(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();

    b->events[1].flags |= KT_EV_KEEP_RAW;
    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT audit_id, raw FROM v_events WHERE raw IS NOT NULL"),
                        "e-1|{\"auditID\":\"e-1\",\"user\":{\"username\":\"alice\"}}");
    kt_batch_destroy(b);
}

/* Raw JSON of 1,000 events in one transaction: blocks of 128 are compressed beside the
 * writer and inserted in order; a rollback while some are in the compressor's hands leaves
 * none behind, and the retry keeps each event's own JSON, once. */
static void test_store_raw_blocks_compressed_beside_the_writer_survive_rollback(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = kt_batch_create();
    char id[32];

    assert_non_null(b);
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "e-%d", i);
        add_event(b, id, i % 3 == 0 ? "alice" : "bob", i)->flags |= KT_EV_KEEP_RAW;
    }
    open_store(f, 0);
    write_fails_midway(f, b, 1000, NULL);
    assert_string_equal(query(f->path, "SELECT (SELECT count(*) FROM raw), (SELECT count(*) FROM"
                                       " raw_blocks)"),
                        "0|0");
    b->nalerts = 0;
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(
        query(f->path, "SELECT (SELECT count(*) FROM raw), (SELECT count(*) FROM raw_blocks),"
                       " (SELECT count(*) FROM raw_blocks WHERE length(z) < n),"
                       " (SELECT count(*) FROM v_events WHERE raw = '{\"auditID\":\"' ||"
                       " audit_id || '\",\"user\":{\"username\":\"' || user || '\"}}')"),
        "1000|8|8|1000");
    /* blocks in event order: each block's events follow the previous block's */
    assert_string_equal(query(f->path, "SELECT count(*) FROM raw r JOIN raw p ON p.block ="
                                       " r.block - 1 WHERE p.event_id > r.event_id"),
                        "0");
    kt_batch_destroy(b);
}

static void test_store_keep_raw_all_keeps_every_event_even_on_replay(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();

    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT count(*) FROM raw"), "0");
    close_store(f);
    /* replaying with keep_raw_all fills in the raw JSON of events stored without it */
    open_store(f, 1);
    add_event(b, "e-3", "carol", 3);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT count(*) FROM v_events WHERE raw LIKE"
                                       " '{\"auditID\":\"' || audit_id || '\"%'"),
                        "4");
    kt_batch_destroy(b);
}

static void test_store_raw_too_long_for_sqlite_is_skipped_not_failing_the_batch(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();
    struct store_tuning t;
    struct kt_store_stats d = {0};

    store_tuning_default(&t);
    t.max_text = 44; /* stands for SQLite's 1 GB limit; e-1's JSON is 45 bytes */
    open_tuned(f, 1, &t);
    kt_log_level = -1;
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    kt_log_level = KT_LOG_INFO;
    assert_int_equal(d.events, 3);
    assert_string_equal(query(f->path, "SELECT group_concat(audit_id) FROM v_events WHERE raw IS"
                                       " NOT NULL"),
                        "e-0,e-2");
    kt_batch_destroy(b);
}

static void test_store_alerts_link_to_their_event_and_never_repeat(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();
    struct kt_store_stats d = {0};

    add_alert(b, 1, "Secret read");
    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(d.alerts, 1);
    assert_string_equal(query(f->path, "SELECT time, rule, priority, priority_num, tags, output,"
                                       " fields, audit_id, stage, user, verb, resource, namespace,"
                                       " name, source_ips, user_agent, code FROM v_alerts"),
                        "2024-05-01T12:00:00.123457Z|Secret read|Warning|4|k8s,T1552|secret read|"
                        "{\"ka.user.name\":\"alice\"}|e-1|ResponseComplete|alice|get|secrets|"
                        "default|db-password|10.0.0.1,192.0.2.7|"
                        "kubectl/v1.30.0 (linux/amd64) kubernetes/7c48c2b|200");
    assert_string_equal(query(f->path, "SELECT count(*) FROM alerts a JOIN events e"
                                       " ON e.id = a.event_id WHERE e.audit_id = 'e-1'"),
                        "1");
    /* the alerted event's JSON is kept as evidence */
    assert_string_equal(query(f->path, "SELECT audit_id FROM v_events WHERE raw IS NOT NULL"),
                        "e-1");
    /* a replay: the event is a duplicate and the alert is not stored twice */
    memset(&d, 0, sizeof(d));
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(d.duplicates, 3);
    assert_int_equal(d.alerts, 0);
    assert_string_equal(query(f->path, "SELECT count(*) FROM alerts"), "1");
    kt_batch_destroy(b);
}

static void test_store_new_alert_on_duplicate_event_links_to_stored_row(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = three_events();
    struct kt_store_stats d = {0};
    char id[32];

    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0); /* stored without rules */
    snprintf(id, sizeof(id), "%s", query(f->path, "SELECT id FROM events WHERE audit_id = 'e-2'"));
    add_alert(b, 2, "New rule");
    assert_int_equal(kt_store_write(f->st, b, &d), 0); /* replayed with a new rule */
    assert_int_equal(d.duplicates, 3);
    assert_int_equal(d.alerts, 1);
    assert_string_equal(query(f->path, "SELECT event_id FROM alerts WHERE rule = 'New rule'"), id);
    assert_string_equal(query(f->path, "SELECT user, audit_id FROM v_alerts"), "bob|e-2");
    assert_string_equal(query(f->path, "SELECT count(*) FROM raw"), "1");
    kt_batch_destroy(b);
}

/* ---- the dictionary ---- */

static void test_store_dictionary_cache_eviction_keeps_ids_right(void **state)
{
    struct fx *f = *state;
    struct store_tuning t;
    struct store_counters c = {0};
    char name[64];

    store_tuning_default(&t);
    t.dict_max_entries = 20; /* fewer than the 42 distinct values below */
    t.dict_max_bytes = 256;
    open_tuned(f, 0, &t);
    for (int batch = 0; batch < 4; batch++) {
        struct kt_batch *b = kt_batch_create();
        for (int i = 0; i < 50; i++) {
            int n = batch * 50 + i;
            struct kt_event *ev = NULL;
            snprintf(name, sizeof(name), "id-%d", n);
            ev = add_event(b, name, "placeholder", n);
            /* cycle through 13 users, 11 agents and 7 namespaces */
            snprintf(name, sizeof(name), "user-%d", n % 13);
            ev->f[KT_F_USER] = S(kt_arena_dup(&b->arena, name, strlen(name)));
            snprintf(name, sizeof(name), "agent-%d", n % 11);
            ev->f[KT_F_USER_AGENT] = S(kt_arena_dup(&b->arena, name, strlen(name)));
            snprintf(name, sizeof(name), "ns-%d", n % 7);
            ev->f[KT_F_NAMESPACE] = S(kt_arena_dup(&b->arena, name, strlen(name)));
        }
        assert_int_equal(kt_store_write(f->st, b, NULL), 0);
        kt_batch_destroy(b);
    }
    store_counters(f->st, &c);
    print_message("dictionary: %llu hits, %llu misses, %llu clears\n",
                  (unsigned long long)c.dict_hits, (unsigned long long)c.dict_misses,
                  (unsigned long long)c.dict_clears);
    assert_true(c.dict_clears > 10);
    assert_true(c.dict_hits > 0);
    assert_string_equal(query(f->path, "SELECT count(*) FROM v_events WHERE"
                                       " user = 'user-' || ((ts - 1714564800123456) % 13) AND"
                                       " user_agent = 'agent-' || ((ts - 1714564800123456) % 11)"
                                       " AND namespace = 'ns-' || ((ts - 1714564800123456) % 7)"),
                        "200");
    assert_string_equal(query(f->path, "SELECT count(*) FROM strings WHERE s LIKE 'user-%'"), "13");
}

/* ---- group commit and the WAL ---- */

/* A batch of n events with audit IDs "<prefix>-<k>", checkpoint offset off for file fp. */
static struct kt_batch *batch_of(const char *prefix, int n, uint64_t fp, uint64_t off)
{
    struct kt_batch *b = kt_batch_create();
    char id[32];

    assert_non_null(b);
    for (int k = 0; k < n; k++) {
        snprintf(id, sizeof(id), "%s-%d", prefix, k);
        add_event(b, id, "alice", k);
    }
    b->ckpt_kind = KT_CKPT_FILE;
    b->ckpt_file = (struct kt_ckpt_file){.fingerprint = fp, .offset = off};
    return b;
}

static void test_store_group_commits_several_batches_in_one_transaction(void **state)
{
    struct fx *f = *state;
    struct kt_batch *bs[3] = {batch_of("g0", 2, 1, 10), batch_of("g1", 2, 1, 20),
                              batch_of("g2", 2, 2, 30)};
    struct store_counters c = {0};
    struct kt_store_stats tot = {0};
    int status[3] = {-1, -1, -1};
    size_t committed = 0;

    open_store(f, 0);
    assert_int_equal(store_write_group(f->st, bs, 3, status, &committed), 0);
    assert_int_equal(committed, 3);
    assert_int_equal(status[0], 0);
    assert_int_equal(status[1], 0);
    assert_int_equal(status[2], 0);
    store_counters(f->st, &c);
    assert_int_equal(c.commits, 1);
    kt_store_stats(f->st, &tot);
    assert_int_equal(tot.batches, 3);
    assert_int_equal(tot.events, 6);
    /* checkpoints apply in batch order: the later batch's offset wins */
    assert_string_equal(query(f->path, "SELECT fingerprint, offset FROM ckpt_file ORDER BY 1"),
                        "1|20\n2|30");
    for (int i = 0; i < 3; i++) {
        kt_batch_destroy(bs[i]);
    }
}

/* The batches before a bad one commit; none after it may (its checkpoint would pass over the
 * bad batch's records), so they fail with it, unattempted. */
static void test_store_group_failure_commits_up_to_the_bad_batch_and_none_after(void **state)
{
    struct fx *f = *state;
    struct kt_batch *bs[3] = {batch_of("ok0", 2, 1, 10), batch_of("bad", 2, 1, 20),
                              batch_of("ok1", 2, 1, 30)};
    int status[3] = {-1, -1, -1};
    size_t committed = 9;

    add_alert(bs[1], 7, "Broken rule");
    open_store(f, 0);
    kt_log_level = -1;
    assert_int_equal(store_write_group(f->st, bs, 3, status, &committed), KT_EINVAL);
    kt_log_level = KT_LOG_INFO;
    assert_int_equal(committed, 1);
    assert_int_equal(status[0], 0);
    assert_int_equal(status[1], KT_EINVAL);
    assert_int_equal(status[2], KT_EINVAL);
    assert_string_equal(query(f->path, "SELECT group_concat(audit_id) FROM (SELECT audit_id FROM"
                                       " events ORDER BY id)"),
                        "ok0-0,ok0-1");
    assert_string_equal(query(f->path, "SELECT fingerprint, offset FROM ckpt_file"), "1|10");
    for (int i = 0; i < 3; i++) {
        kt_batch_destroy(bs[i]);
    }
}

static long file_size(const char *path, const char *suffix)
{
    char p[96];
    FILE *fp = NULL;
    long n = 0;

    snprintf(p, sizeof(p), "%s%s", path, suffix);
    fp = fopen(p, "rb");
    if (fp != NULL) {
        fseek(fp, 0, SEEK_END);
        n = ftell(fp);
        fclose(fp);
    }
    return n;
}

static void test_store_wal_stays_bounded_under_sustained_writes(void **state)
{
    struct fx *f = *state;
    struct store_tuning t;
    long most = 0;
    char prefix[16];

    store_tuning_default(&t);
    t.ckpt_pages = 1 << 30; /* the checkpointer thread never wakes: only the cap acts */
    t.ckpt_hard_pages = 64;
    open_tuned(f, 0, &t);
    for (int i = 0; i < 20; i++) {
        struct kt_batch *b = NULL;
        snprintf(prefix, sizeof(prefix), "w%d", i);
        b = batch_of(prefix, 500, 1, (uint64_t)i);
        assert_int_equal(kt_store_write(f->st, b, NULL), 0);
        kt_batch_destroy(b);
        if (file_size(f->path, "-wal") > most) {
            most = file_size(f->path, "-wal");
        }
    }
    /* 10,000 events take about 1.5 MB: without checkpoints the WAL would hold more than that */
    print_message("largest WAL %ld bytes, database %ld bytes\n", most, file_size(f->path, ""));
    assert_true(most < 1024 * 1024);
    assert_true(file_size(f->path, "") > 1280 * 1024);
}

static void test_store_checkpointer_thread_copies_the_wal(void **state)
{
    struct fx *f = *state;
    struct store_tuning t;
    struct kt_batch *b = batch_of("c", 2000, 1, 1);
    long size = 0;

    store_tuning_default(&t);
    t.ckpt_pages = 16; /* wake the thread after every commit */
    open_tuned(f, 0, &t);
    size = file_size(f->path, "");
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    for (int i = 0; i < 200 && file_size(f->path, "") <= size; i++) {
        usleep(10000);
    }
    assert_true(file_size(f->path, "") > size + 100 * 1024);
    kt_batch_destroy(b);
}

/* ---- the writer thread ---- */

struct acks {
    const char *path; /* database, to check each batch is visible when acknowledged */
    int order[8];     /* first record offset of each acknowledged batch, in order */
    int status[8];    /* status of each */
    int visible[8];   /* events of that batch another connection saw at on_done */
    int n;
};

static void on_done(struct kt_batch *b, int status, void *ctx)
{
    struct acks *a = ctx;
    char sql[128];

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM events WHERE audit_id = '%.*s'",
             (int)b->events[0].f[KT_F_AUDIT_ID].len, b->events[0].f[KT_F_AUDIT_ID].ptr);
    a->order[a->n] = (int)b->recs[0].off;
    a->status[a->n] = status;
    a->visible[a->n] = atoi(query(a->path, sql));
    a->n++;
}

static void test_store_writer_acknowledges_in_order_after_commit(void **state)
{
    struct fx *f = *state;
    struct kt_writer *w = NULL;
    struct acks a = {.path = f->path};
    struct kt_batch *bs[6];
    char id[16];

    open_store(f, 0);
    assert_int_equal(kt_writer_create(f->st, 2, &w), 0);
    for (int i = 0; i < 6; i++) {
        bs[i] = kt_batch_create();
        for (int k = 0; k < 3; k++) {
            snprintf(id, sizeof(id), "w-%d-%d", i, k);
            add_event(bs[i], id, "alice", i * 10 + k);
        }
        bs[i]->recs[0].off = (uint64_t)i;
        bs[i]->on_done = on_done;
        bs[i]->on_done_ctx = &a;
        assert_int_equal(kt_writer_submit(w, bs[i]), 0);
    }
    assert_int_equal(kt_writer_drain(w), 0);
    assert_int_equal(a.n, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(a.order[i], i);
        assert_int_equal(a.status[i], 0);
        assert_int_equal(a.visible[i], 1); /* committed before it was acknowledged */
    }
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "18");
    kt_writer_destroy(w);
    for (int i = 0; i < 6; i++) {
        kt_batch_destroy(bs[i]);
    }
}

/* on_done that holds the writer in its first call until the test lets it go. */
struct gate {
    struct acks acks;   /* what on_done records */
    pthread_mutex_t mu; /* guards the flags */
    pthread_cond_t cv;  /* a flag changed */
    int entered;        /* the first on_done is running */
    int open;           /* the test lets it return */
};

static void gated_done(struct kt_batch *b, int status, void *ctx)
{
    struct gate *g = ctx;

    pthread_mutex_lock(&g->mu);
    if (!g->entered) {
        g->entered = 1;
        pthread_cond_broadcast(&g->cv);
        while (!g->open) {
            pthread_cond_wait(&g->cv, &g->mu);
        }
    }
    pthread_mutex_unlock(&g->mu);
    on_done(b, status, &g->acks);
}

static void test_store_writer_commits_waiting_batches_together_in_order(void **state)
{
    struct fx *f = *state;
    struct kt_writer *w = NULL;
    struct gate g = {.acks = {.path = f->path}};
    struct kt_batch *bs[5];
    struct store_counters c = {0};
    char prefix[16];

    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    open_store(f, 0);
    assert_int_equal(kt_writer_create(f->st, 4, &w), 0);
    for (int i = 0; i < 5; i++) {
        snprintf(prefix, sizeof(prefix), "q%d", i);
        bs[i] = batch_of(prefix, 3, 1, (uint64_t)i);
        bs[i]->recs[0].off = (uint64_t)i;
        bs[i]->on_done = gated_done;
        bs[i]->on_done_ctx = &g;
    }
    /* the writer is busy with batch 0 while 1 to 4 queue up behind it */
    assert_int_equal(kt_writer_submit(w, bs[0]), 0);
    pthread_mutex_lock(&g.mu);
    while (!g.entered) {
        pthread_cond_wait(&g.cv, &g.mu);
    }
    pthread_mutex_unlock(&g.mu);
    for (int i = 1; i < 5; i++) {
        assert_int_equal(kt_writer_submit(w, bs[i]), 0);
    }
    pthread_mutex_lock(&g.mu);
    g.open = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    assert_int_equal(kt_writer_drain(w), 0);
    store_counters(f->st, &c);
    assert_int_equal(c.commits, 2);
    assert_int_equal(g.acks.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(g.acks.order[i], i);
        assert_int_equal(g.acks.status[i], 0);
        assert_int_equal(g.acks.visible[i], 1);
    }
    assert_string_equal(query(f->path, "SELECT offset FROM ckpt_file"), "4");
    kt_writer_destroy(w);
    for (int i = 0; i < 5; i++) {
        kt_batch_destroy(bs[i]);
    }
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
}

static void test_store_writer_fails_every_batch_after_a_failed_one(void **state)
{
    struct fx *f = *state;
    struct kt_writer *w = NULL;
    struct acks a = {.path = f->path};
    struct kt_batch *bad = three_events(), *good = kt_batch_create();

    add_event(good, "good", "alice", 100);
    good->recs[0].off = 1;
    bad->recs[0].off = 0;
    add_alert(bad, 99, "Broken rule");
    bad->on_done = good->on_done = on_done;
    bad->on_done_ctx = good->on_done_ctx = &a;
    open_store(f, 0);
    assert_int_equal(kt_writer_create(f->st, 1, &w), 0);
    kt_log_level = -1;
    assert_int_equal(kt_writer_submit(w, bad), 0);
    assert_int_equal(kt_writer_submit(w, good), 0);
    assert_int_equal(kt_writer_drain(w), KT_EINVAL);
    kt_log_level = KT_LOG_INFO;
    assert_int_equal(a.n, 2);
    assert_int_equal(a.status[0], KT_EINVAL);
    assert_int_equal(a.status[1], KT_EINVAL); /* never written: nothing passes a failed batch */
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "0");
    assert_string_equal(query(f->path, "SELECT count(*) FROM ckpt_file"), "0");
    kt_writer_destroy(w);
    kt_batch_destroy(bad);
    kt_batch_destroy(good);
}

struct lookups {
    struct kt_store *st;
    int stop;     /* set by the test when the writer is done */
    int failures; /* lookups that returned neither 0 nor KT_ENOENT */
    int found;    /* lookups that found the checkpoint */
};

static void *lookup_main(void *arg)
{
    struct lookups *l = arg;
    struct kt_ckpt_file c = {0};

    while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
        int rc = kt_store_ckpt_lookup(l->st, 5, &c);
        l->failures += rc != 0 && rc != KT_ENOENT;
        l->found += rc == 0;
    }
    return NULL;
}

static void test_store_ckpt_lookup_is_safe_while_the_writer_writes(void **state)
{
    struct fx *f = *state;
    struct kt_writer *w = NULL;
    struct lookups l = {0};
    struct kt_batch *bs[4];
    pthread_t th;
    char id[16];

    open_store(f, 0);
    l.st = f->st;
    assert_int_equal(kt_writer_create(f->st, 2, &w), 0);
    assert_int_equal(pthread_create(&th, NULL, lookup_main, &l), 0);
    for (int i = 0; i < 4; i++) {
        bs[i] = kt_batch_create();
        for (int k = 0; k < 500; k++) {
            snprintf(id, sizeof(id), "c-%d-%d", i, k);
            add_event(bs[i], id, "alice", i * 1000 + k);
        }
        bs[i]->ckpt_kind = KT_CKPT_FILE;
        bs[i]->ckpt_file = (struct kt_ckpt_file){.fingerprint = 5, .offset = (uint64_t)i};
        assert_int_equal(kt_writer_submit(w, bs[i]), 0);
    }
    assert_int_equal(kt_writer_drain(w), 0);
    __atomic_store_n(&l.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    assert_int_equal(l.failures, 0);
    assert_string_equal(query(f->path, "SELECT count(*), (SELECT offset FROM ckpt_file) FROM"
                                       " events"),
                        "2000|3");
    kt_writer_destroy(w);
    for (int i = 0; i < 4; i++) {
        kt_batch_destroy(bs[i]);
    }
}

/* ---- correlations ---- */

static struct kt_ruleset *corr_rules(void)
{
    char path[] = "/tmp/kt-corr-rules-XXXXXX";
    int fd = mkstemp(path);
    static const char yaml[] = "- count: reads\n  desc: d\n  condition: ka.verb = get\n"
                               "  by: [ka.user.name]\n  window: 60s\n  threshold: 3\n"
                               "  output: \"%count reads by %group\"\n  priority: WARNING\n";
    struct kt_ruleset *rs = NULL;
    char err[256];

    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, sizeof(yaml) - 1), (ssize_t)(sizeof(yaml) - 1));
    close(fd);
    const char *files[] = {path};
    assert_int_equal(kt_ruleset_load(files, 1, NULL, &rs, err, sizeof(err)), 0);
    unlink(path);
    return rs;
}

/* Record the batch's correlation hits as the analyzers do. */
static void match(const struct kt_ruleset *rs, struct kt_batch *b)
{
    struct kt_matcher *m = kt_matcher_create(rs);
    b->nhits = 0;
    assert_int_equal(kt_matcher_run(m, b), 0);
    kt_matcher_destroy(m);
}

static void test_store_correlation_fires_once_links_events_and_survives_rollback(void **state)
{
    struct fx *f = *state;
    struct kt_ruleset *rs = corr_rules();
    struct kt_batch *b = three_events(); /* bob, alice, bob */
    char err[256];

    open_store(f, 0);
    assert_int_equal(kt_store_attach_rules(f->st, rs, err, sizeof(err)), 0);
    add_event(b, "e-3", "bob", 3); /* bob's third read fires */
    match(rs, b);
    assert_int_equal(b->nhits, 4);
    /* the batch fails after the engine was fed: rolled back, and the engine with it */
    write_fails_midway(f, b, 9, NULL);
    assert_string_equal(query(f->path, "SELECT (SELECT count(*) FROM alerts), (SELECT count(*)"
                                       " FROM alert_events), (SELECT count(*) FROM corr_state)"),
                        "0|0|0");
    b->nalerts = 0;
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    /* fired once (not twice: the rolled-back feed was forgotten), on e-3, with its three */
    assert_string_equal(query(f->path, "SELECT a.audit_id, a.output, group_concat(e.audit_id)"
                                       " FROM v_alerts a JOIN alert_events ae ON ae.alert_id = a.id"
                                       " JOIN events e ON e.id = ae.event_id GROUP BY a.id"),
                        "e-3|3 reads by bob|e-0,e-2,e-3");
    assert_int_equal(b->nalerts, 1);
    assert_int_equal(b->alerts[0].nrefs, 3);
    /* the same batch again: duplicates are not fed, nothing new */
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT count(*) FROM alerts"), "1");
    assert_string_equal(query(f->path, "SELECT group_concat(group_key) FROM (SELECT group_key"
                                       " FROM corr_state ORDER BY 1)"),
                        "alice,bob");
    kt_batch_destroy(b);

    /* a restart continues alice's window: two more reads fire with the first one */
    close_store(f);
    open_store(f, 0);
    assert_int_equal(kt_store_attach_rules(f->st, rs, err, sizeof(err)), 0);
    b = kt_batch_create();
    add_event(b, "e-4", "alice", 4);
    add_event(b, "e-5", "alice", 5);
    match(rs, b);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT group_concat(e.audit_id) FROM v_alerts a"
                                       " JOIN alert_events ae ON ae.alert_id = a.id"
                                       " JOIN events e ON e.id = ae.event_id"
                                       " WHERE a.audit_id = 'e-5'"),
                        "e-1,e-4,e-5");
    struct kt_store_stats st;
    kt_store_stats(f->st, &st);
    assert_int_equal(st.corr_groups, 2);
    assert_true(st.corr_bytes > 0);
    kt_batch_destroy(b);
    close_store(f);
    kt_ruleset_destroy(rs);
}

/* ---- failures: nothing passes a failed batch; the WAL's bound; checking ---- */

static void open_opts(struct fx *f, const struct kt_store_opts *o, const struct store_tuning *t)
{
    char err[256] = "";

    if (store_open_tuned(f->path, o, t, &f->st, err, sizeof(err)) != 0) {
        fail_msg("open: %s", err);
    }
}

/* A new database, closed: its size is the schema's. Returns that size. */
static long fresh_database(struct fx *f)
{
    open_store(f, 0);
    close_store(f);
    return file_size(f->path, "");
}

static void test_store_size_limit_fails_a_batch_as_a_full_disk_would(void **state)
{
    struct fx *f = *state;
    struct store_tuning t;
    struct kt_store_opts o = {0};
    struct kt_batch *big = batch_of("big", 3000, 1, 100), *small = batch_of("small", 2, 1, 200);
    char why[256] = "", err[256] = "";

    store_tuning_default(&t);
    o.max_db_bytes = (uint64_t)fresh_database(f) + 16 * 4096;
    open_opts(f, &o, &t);
    kt_log_level = -1;
    assert_int_equal(kt_store_write(f->st, big, NULL), KT_EFULL);
    kt_log_level = KT_LOG_INFO;
    assert_true(store_failure_transient(f->st));
    kt_store_last_error(f->st, why, sizeof(why));
    assert_non_null(strstr(why, "size limit"));
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "0");
    assert_int_equal(kt_store_write(f->st, small, NULL), 0); /* what fits still goes */
    close_store(f);

    /* a limit below what the file holds is refused at open, with both sizes */
    o.max_db_bytes = 4096;
    assert_int_equal(store_open_tuned(f->path, &o, &t, &f->st, err, sizeof(err)), KT_EIO);
    assert_non_null(strstr(err, "more than the size limit (4096)"));

    o.max_db_bytes = 64u << 20;
    open_opts(f, &o, &t);
    assert_int_equal(kt_store_write(f->st, big, NULL), 0);
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "3002");
    kt_batch_destroy(big);
    kt_batch_destroy(small);
}

/* The bug of issue 12: a big batch failed on a full disk, the small one after it committed
 * with the checkpoint at the end of the file, and the big one's records were skipped. */
static void test_store_writer_holds_later_batches_behind_a_full_database(void **state)
{
    struct fx *f = *state;
    struct store_tuning t;
    struct kt_store_opts o = {.retry_ms = -1};
    struct kt_writer *w = NULL;
    struct acks a = {.path = f->path};
    struct kt_batch *big = batch_of("big", 3000, 1, 100), *small = batch_of("small", 2, 1, 200);

    store_tuning_default(&t);
    o.max_db_bytes = (uint64_t)fresh_database(f) + 16 * 4096;
    big->on_done = small->on_done = on_done;
    big->on_done_ctx = small->on_done_ctx = &a;
    open_opts(f, &o, &t);
    assert_int_equal(kt_writer_create(f->st, 2, &w), 0);
    kt_log_level = -1;
    assert_int_equal(kt_writer_submit(w, big), 0);
    assert_int_equal(kt_writer_submit(w, small), 0);
    assert_int_equal(kt_writer_drain(w), KT_EFULL);
    kt_log_level = KT_LOG_INFO;
    assert_int_equal(a.n, 2);
    assert_int_equal(a.status[0], KT_EFULL);
    assert_int_equal(a.status[1], KT_EFULL);
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "0");
    assert_string_equal(query(f->path, "SELECT count(*) FROM ckpt_file"), "0");
    kt_writer_destroy(w);
    close_store(f);

    /* space is back: the same batches again, every event once, the checkpoint at the end */
    o.max_db_bytes = 0;
    a.n = 0;
    open_opts(f, &o, &t);
    assert_int_equal(kt_writer_create(f->st, 2, &w), 0);
    assert_int_equal(kt_writer_submit(w, big), 0);
    assert_int_equal(kt_writer_submit(w, small), 0);
    assert_int_equal(kt_writer_drain(w), 0);
    assert_int_equal(a.status[0], 0);
    assert_int_equal(a.status[1], 0);
    assert_string_equal(query(f->path, "SELECT count(*), count(DISTINCT audit_id) FROM events"),
                        "3002|3002");
    assert_string_equal(query(f->path, "SELECT fingerprint, offset FROM ckpt_file"), "1|200");
    kt_writer_destroy(w);
    kt_batch_destroy(big);
    kt_batch_destroy(small);
}

/* Another process's write lock, as sqlite3 holds it: BEGIN IMMEDIATE on its own connection. */
static sqlite3 *hold_write_lock(const char *path)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static void release(sqlite3 *db)
{
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_store_writer_retries_a_locked_database_until_the_lock_goes(void **state)
{
    struct fx *f = *state;
    struct store_tuning t;
    struct kt_writer *w = NULL;
    struct acks a = {.path = f->path};
    struct kt_batch *b = batch_of("late", 2, 1, 10);
    struct kt_store_stats ss = {0};

    store_tuning_default(&t);
    t.busy_ms = 10; /* each attempt fails fast; the budget (60 s) is far */
    b->on_done = on_done;
    b->on_done_ctx = &a;
    open_tuned(f, 0, &t);
    sqlite3 *other = hold_write_lock(f->path);
    assert_int_equal(kt_writer_create(f->st, 1, &w), 0);
    kt_log_level = -1;
    assert_int_equal(kt_writer_submit(w, b), 0);
    while (ss.write_failures < 2) { /* it failed, and failed again on its retry */
        usleep(1000);
        kt_store_stats(f->st, &ss);
    }
    release(other);
    assert_int_equal(kt_writer_drain(w), 0);
    kt_log_level = KT_LOG_INFO;
    assert_int_equal(a.n, 1);
    assert_int_equal(a.status[0], 0);
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "2");
    kt_writer_destroy(w);
    kt_batch_destroy(b);
}

static void test_store_writer_gives_up_after_its_retry_budget_and_stays_failed(void **state)
{
    struct fx *f = *state;
    struct store_tuning t;
    struct kt_writer *w = NULL;
    struct acks a = {.path = f->path};
    struct kt_batch *bs[3] = {batch_of("a", 2, 1, 10), batch_of("b", 2, 1, 20),
                              batch_of("c", 2, 1, 30)};

    store_tuning_default(&t);
    t.busy_ms = 10;
    t.retry_ms = 100;
    open_tuned(f, 0, &t);
    for (int i = 0; i < 3; i++) {
        bs[i]->on_done = on_done;
        bs[i]->on_done_ctx = &a;
    }
    sqlite3 *other = hold_write_lock(f->path);
    assert_int_equal(kt_writer_create(f->st, 2, &w), 0);
    kt_log_level = -1;
    assert_int_equal(kt_writer_submit(w, bs[0]), 0);
    assert_int_equal(kt_writer_submit(w, bs[1]), 0);
    assert_int_equal(kt_writer_drain(w), KT_EIO);
    release(other);
    /* the lock is gone, but a later batch still may not pass the failed ones */
    assert_int_equal(kt_writer_submit(w, bs[2]), 0);
    assert_int_equal(kt_writer_drain(w), KT_EIO);
    kt_log_level = KT_LOG_INFO;
    assert_int_equal(a.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a.status[i], KT_EIO);
    }
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "0");
    assert_string_equal(query(f->path, "SELECT count(*) FROM ckpt_file"), "0");
    kt_writer_destroy(w);
    for (int i = 0; i < 3; i++) {
        kt_batch_destroy(bs[i]);
    }
}

enum { NB = 8 }; /* batches the WAL tests submit */

/*
 * Open f's store with a small WAL bound (32 pages to restart, 64 to wait), have a reader
 * hold a snapshot as an analyst's BEGIN; SELECT does, and submit NB batches of 400 events, one
 * a transaction, until the writer waits for the reader. Returns the reader; *w and bs[] are
 * the test's to release.
 */
static sqlite3 *block_on_reader(struct fx *f, struct kt_writer **w, struct kt_batch **bs)
{
    struct store_tuning t;
    struct kt_store_stats ss = {0};
    sqlite3 *reader = NULL;
    char prefix[16];

    store_tuning_default(&t);
    t.ckpt_pages = 1 << 30; /* the checkpointer thread never wakes: only the writer acts */
    t.ckpt_hard_pages = 32;
    t.wal_max_pages = 64;
    open_tuned(f, 0, &t);
    struct kt_batch *first = batch_of("first", 1, 1, 1);
    assert_int_equal(kt_store_write(f->st, first, NULL), 0);
    kt_batch_destroy(first);
    assert_int_equal(sqlite3_open(f->path, &reader), SQLITE_OK);
    assert_int_equal(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM events", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(kt_writer_create(f->st, NB, w), 0);
    kt_log_level = -1;
    /* each waits for the one before to be stored, or for the writer to be blocked */
    for (int i = 0; i < NB; i++) {
        snprintf(prefix, sizeof(prefix), "r%d", i);
        bs[i] = batch_of(prefix, 400, 1, (uint64_t)(10 + i));
        assert_int_equal(kt_writer_submit(*w, bs[i]), 0);
        while (!ss.wal_blocked && ss.batches < (uint64_t)i + 2) {
            usleep(1000);
            kt_store_stats(f->st, &ss);
        }
    }
    return reader;
}

static void release_batches(struct kt_writer *w, struct kt_batch **bs)
{
    kt_log_level = KT_LOG_INFO;
    kt_writer_destroy(w);
    for (int i = 0; i < NB; i++) {
        kt_batch_destroy(bs[i]);
    }
}

/* An analyst's open read transaction keeps SQLite from checkpointing past its snapshot and
 * from restarting the WAL: past wal_max_pages the writer waits instead of growing it. */
static void test_store_writer_waits_while_a_reader_keeps_the_wal_past_its_bound(void **state)
{
    struct fx *f = *state;
    struct kt_writer *w = NULL;
    struct kt_batch *bs[NB];
    struct kt_store_stats ss = {0};
    sqlite3 *reader = block_on_reader(f, &w, bs);

    usleep(50000); /* no assert on time: it only gives a writer that would go on the chance */
    kt_store_stats(f->st, &ss);
    print_message("blocked at WAL %ld bytes (%llu in the stats), %llu of %d batches stored\n",
                  file_size(f->path, "-wal"), (unsigned long long)ss.wal_bytes,
                  (unsigned long long)ss.batches, NB + 1);
    assert_true(ss.wal_blocked);
    assert_true(ss.batches < NB + 1);
    assert_true(ss.wal_bytes >= 64 * 4096);
    assert_int_equal(sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(reader);
    assert_int_equal(kt_writer_drain(w), 0);
    kt_store_stats(f->st, &ss);
    assert_int_equal(ss.batches, NB + 1);
    assert_false(ss.wal_blocked);
    assert_true(ss.wal_blocked_us > 0);
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "3201");
    release_batches(w, bs);
}

/* A run being stopped (SIGTERM) does not hang on a reader: what is queued is written. */
static void test_store_writer_stop_ends_a_wait_for_the_wal(void **state)
{
    struct fx *f = *state;
    struct kt_writer *w = NULL;
    struct kt_batch *bs[NB];
    struct kt_store_stats ss = {0};
    sqlite3 *reader = block_on_reader(f, &w, bs);

    kt_writer_stop(w);
    assert_int_equal(kt_writer_drain(w), 0); /* the reader still holds its snapshot */
    kt_store_stats(f->st, &ss);
    assert_int_equal(ss.batches, NB + 1);
    assert_false(ss.wal_blocked);
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "3201");
    assert_int_equal(sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(reader);
    release_batches(w, bs);
}

/* Nor on a retry: the failed batch and the ones after it fail at once, the position kept. */
static void test_store_writer_stop_ends_retrying(void **state)
{
    struct fx *f = *state;
    struct store_tuning t;
    struct kt_writer *w = NULL;
    struct acks a = {.path = f->path};
    struct kt_batch *b = batch_of("held", 2, 1, 10);
    struct kt_store_stats ss = {0};

    store_tuning_default(&t);
    t.busy_ms = 10; /* the retry budget stays 60 s: only stop() ends it early */
    b->on_done = on_done;
    b->on_done_ctx = &a;
    open_tuned(f, 0, &t);
    sqlite3 *other = hold_write_lock(f->path);
    assert_int_equal(kt_writer_create(f->st, 1, &w), 0);
    kt_log_level = -1;
    assert_int_equal(kt_writer_submit(w, b), 0);
    while (ss.write_failures < 1) {
        usleep(1000);
        kt_store_stats(f->st, &ss);
    }
    kt_writer_stop(w);
    assert_int_equal(kt_writer_drain(w), KT_EIO);
    kt_log_level = KT_LOG_INFO;
    assert_int_equal(a.status[0], KT_EIO);
    release(other);
    assert_string_equal(query(f->path, "SELECT count(*) FROM ckpt_file"), "0");
    kt_writer_destroy(w);
    kt_batch_destroy(b);
}

static void count_report(void *ctx, const char *line)
{
    (void)line;
    (*(int *)ctx)++;
}

/* Copy the file at from to to, with byte `at` of every `step`-th page from page `first` on
 * inverted (at 3: inside the b-tree page header, its cell count). */
static void copy_flipping_pages(const char *from, const char *to, int first, int at, int step)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    unsigned char page[4096];
    int n = 0;

    assert_non_null(in);
    assert_non_null(out);
    while (fread(page, 1, sizeof(page), in) == sizeof(page)) {
        if (n >= first && n % step == 0) {
            page[at] ^= 0xff;
        }
        assert_int_equal(fwrite(page, 1, sizeof(page), out), sizeof(page));
        n++;
    }
    fclose(in);
    fclose(out);
}

static void test_store_check_finds_flipped_bytes_and_a_missing_table(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = batch_of("c", 3000, 1, 1);
    char copy[96], err[256] = "";
    int problems = 0;

    open_store(f, 0);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    close_store(f);
    assert_int_equal(kt_store_check(f->path, count_report, &problems, err, sizeof(err)), 0);
    assert_int_equal(problems, 0);

    snprintf(copy, sizeof(copy), "%s-flipped", f->path);
    /* past the first pages (the schema's), among the events' and their indexes' */
    copy_flipping_pages(f->path, copy, 40, 3, 7);
    assert_int_equal(kt_store_check(copy, count_report, &problems, err, sizeof(err)), KT_EPARSE);
    print_message("%d problems in the flipped copy\n", problems);
    assert_true(problems > 0);
    unlink(copy);

    exec_on(f->path, "DROP TABLE rejects");
    problems = 0;
    assert_int_equal(kt_store_check(f->path, count_report, &problems, err, sizeof(err)), KT_EPARSE);
    assert_true(problems > 0);
    kt_batch_destroy(b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_store_fresh_database_gets_current_version_and_all_objects),
        T(test_store_correlation_fires_once_links_events_and_survives_rollback),
        T(test_store_reopen_migrates_nothing_and_keeps_rows),
        T(test_store_refuses_database_of_a_newer_ktrail),
        T(test_store_refuses_foreign_database_and_leaves_it_untouched),
        T(test_store_refuses_file_that_is_not_sqlite),
        T(test_store_event_reads_back_through_v_events_with_every_value),
        T(test_store_absent_values_are_null_in_v_events),
        T(test_store_source_cluster_tag_wins_over_annotation),
        T(test_store_views_answer_by_name_and_time_text_using_the_index),
        T(test_store_rewrite_counts_duplicates_and_stores_nothing_new),
        T(test_store_duplicate_within_one_batch_is_stored_once),
        T(test_store_audit_id_uuid_is_16_bytes_and_others_stay_text),
        T(test_store_reused_audit_id_at_another_time_is_another_event),
        T(test_store_same_audit_id_other_stage_is_another_event),
        T(test_store_event_without_stage_still_dedupes),
        T(test_store_rejects_keep_position_reason_and_first_kb_once),
        T(test_store_reject_text_is_not_cut_inside_a_character),
        T(test_store_event_without_audit_id_is_a_reject_not_a_failed_batch),
        T(test_store_checkpoint_is_upserted_and_looked_up),
        T(test_store_kafka_checkpoints_are_upserted_per_partition_and_looked_up),
        T(test_store_kafka_checkpoint_dropped_from_batch_is_not_written),
        T(test_store_kafka_checkpoint_rolls_back_with_its_events),
        T(test_store_version_1_database_migrates_to_kafka_checkpoints),
        T(test_store_new_database_is_what_the_migrations_make),
        T(test_store_new_database_schema_documents_every_column),
        T(test_store_locked_database_fails_the_batch_whole_and_recovers),
        T(test_store_batch_failing_midway_rolls_back_and_forgets_cached_ids),
        T(test_store_raw_kept_for_flagged_events_only),
        T(test_store_raw_blocks_compressed_beside_the_writer_survive_rollback),
        T(test_store_keep_raw_all_keeps_every_event_even_on_replay),
        T(test_store_raw_too_long_for_sqlite_is_skipped_not_failing_the_batch),
        T(test_store_alerts_link_to_their_event_and_never_repeat),
        T(test_store_new_alert_on_duplicate_event_links_to_stored_row),
        T(test_store_dictionary_cache_eviction_keeps_ids_right),
        T(test_store_group_commits_several_batches_in_one_transaction),
        T(test_store_group_failure_commits_up_to_the_bad_batch_and_none_after),
        T(test_store_wal_stays_bounded_under_sustained_writes),
        T(test_store_checkpointer_thread_copies_the_wal),
        T(test_store_writer_acknowledges_in_order_after_commit),
        T(test_store_writer_commits_waiting_batches_together_in_order),
        T(test_store_writer_fails_every_batch_after_a_failed_one),
        T(test_store_ckpt_lookup_is_safe_while_the_writer_writes),
        T(test_store_size_limit_fails_a_batch_as_a_full_disk_would),
        T(test_store_writer_holds_later_batches_behind_a_full_database),
        T(test_store_writer_retries_a_locked_database_until_the_lock_goes),
        T(test_store_writer_gives_up_after_its_retry_budget_and_stays_failed),
        T(test_store_writer_waits_while_a_reader_keeps_the_wal_past_its_bound),
        T(test_store_writer_stop_ends_a_wait_for_the_wal),
        T(test_store_writer_stop_ends_retrying),
        T(test_store_check_finds_flipped_bytes_and_a_missing_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
