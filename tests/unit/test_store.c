/*
 * test_store.c: schema and migrations, dedupe, rejects, checkpoints in the batch's
 * transaction, raw JSON, alerts, and the writer thread.
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
#include <sqlite3.h>

#include "alert.h"
#include "event.h"
#include "store.h"

struct fx {
    char path[64];
    struct kt_store *st;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    strcpy(f->path, "/tmp/kt-store-XXXXXX");
    int fd = mkstemp(f->path);
    if (fd < 0) {
        return -1;
    }
    close(fd);
    unlink(f->path);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char p[80];
    kt_store_close(f->st);
    unlink(f->path);
    snprintf(p, sizeof(p), "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", f->path);
    unlink(p);
    free(f);
    return 0;
}

static void open_store(struct fx *f, int keep_raw_all)
{
    struct kt_store_opts o = {.keep_raw_all = keep_raw_all};
    char err[256] = "";
    int rc = kt_store_open(f->path, &o, &f->st, err, sizeof(err));
    if (rc != 0) {
        fail_msg("open: %s", err);
    }
}

/* One value of a SQL query on a separate connection, as text ("" for NULL). */
static char *query(const char *path, const char *sql)
{
    static char out[4096];
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    out[0] = '\0';
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) {
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    }
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0) != NULL) {
        snprintf(out, sizeof(out), "%s", (const char *)sqlite3_column_text(q, 0));
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return out;
}

static const struct kt_str groups_v[] = {{"system:authenticated", 20}, {"dev", 3}};
static const struct kt_str ips_v[] = {{"10.0.0.1", 8}, {"192.0.2.7", 9}};

/* A batch of n events (ids "id-<i>"), a reject after them when with_reject. */
static struct kt_batch *make_batch(int n, int with_reject, int first)
{
    struct kt_batch *b = kt_batch_create();
    int origin = kt_batch_origin(b, "/var/log/audit.log");
    b->capevents = (size_t)n + 1;
    b->events = calloc(b->capevents, sizeof(*b->events));
    for (int i = 0; i < n + with_reject; i++) {
        char raw[128];
        int len = snprintf(raw, sizeof(raw), "{\"auditID\":\"id-%d\",\"raw\":true}", first + i);
        kt_batch_reserve(b, (size_t)len);
        struct kt_record *r = kt_batch_add_record(b);
        memcpy(b->buf + b->len, raw, (size_t)len);
        r->pos = b->len;
        r->len = (size_t)len;
        b->len += (size_t)len;
        r->off = (uint64_t)(1000 + 100 * i);
        r->line = (uint64_t)(i + 1);
        r->origin = (uint32_t)origin;
        struct kt_event *ev = &b->events[i];
        ev->rec = (uint32_t)i;
        if (i == n) {
            ev->reject = "invalid JSON: test";
            continue;
        }
        char id[16];
        int idlen = snprintf(id, sizeof(id), "id-%d", first + i);
        ev->f[KT_F_AUDIT_ID] =
            (struct kt_str){kt_arena_dup(&b->arena, id, (size_t)idlen), (size_t)idlen};
        ev->f[KT_F_STAGE] = KT_STR_LIT("ResponseComplete");
        ev->f[KT_F_LEVEL] = KT_STR_LIT("Metadata");
        ev->f[KT_F_VERB] = KT_STR_LIT("get");
        ev->f[KT_F_USER] = i % 2 ? KT_STR_LIT("alice") : KT_STR_LIT("bob");
        ev->f[KT_F_RESOURCE] = KT_STR_LIT("secrets");
        ev->f[KT_F_NAMESPACE] = KT_STR_LIT("default");
        ev->f[KT_F_URI] = KT_STR_LIT("/api/v1/namespaces/default/secrets/x");
        ev->groups = (struct kt_strlist){(struct kt_str *)groups_v, 2};
        ev->source_ips = (struct kt_strlist){(struct kt_str *)ips_v, 2};
        ev->code = 200;
        ev->ts_us = 1714521600123456LL + (first + i); /* 2024-05-01T00:00:00.123456Z + i us */
    }
    return b;
}

static void test_store_fresh_database_has_schema_and_version(void **state)
{
    struct fx *f = *state;
    open_store(f, 0);
    char want[8];
    snprintf(want, sizeof(want), "%d", kt_store_schema_version());
    assert_string_equal(query(f->path, "PRAGMA user_version"), want);
    assert_string_equal(query(f->path,
                              "SELECT group_concat(name, ' ') FROM (SELECT name FROM "
                              "sqlite_schema WHERE type IN ('table','view') ORDER BY name)"),
                        "alerts ckpt_file events raw rejects strings v_alerts v_events v_rejects");
    assert_string_equal(query(f->path, "PRAGMA journal_mode"), "wal");
    kt_store_close(f->st);
    f->st = NULL;
    open_store(f, 0); /* reopening migrates nothing and works */
    assert_string_equal(query(f->path, "PRAGMA user_version"), want);
}

static void test_store_refuses_newer_and_foreign_databases(void **state)
{
    struct fx *f = *state;
    sqlite3 *db = NULL;
    char err[256] = "";
    sqlite3_open(f->path, &db);
    sqlite3_exec(db, "PRAGMA user_version=999", NULL, NULL, NULL);
    sqlite3_close(db);
    assert_int_equal(kt_store_open(f->path, NULL, &f->st, err, sizeof(err)), KT_EIO);
    assert_non_null(strstr(err, "newer"));
    unlink(f->path);
    sqlite3_open(f->path, &db);
    sqlite3_exec(db, "CREATE TABLE other(x)", NULL, NULL, NULL);
    sqlite3_close(db);
    assert_int_equal(kt_store_open(f->path, NULL, &f->st, err, sizeof(err)), KT_EIO);
    assert_non_null(strstr(err, "not a ktrail database"));
}

static void test_store_write_then_read_back_through_views(void **state)
{
    struct fx *f = *state;
    open_store(f, 0);
    struct kt_batch *b = make_batch(3, 0, 0);
    struct kt_store_stats d = {0};
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(d.events, 3);
    assert_int_equal(d.duplicates, 0);
    assert_string_equal(
        query(f->path, "SELECT time || ' ' || stage || ' ' || user || ' ' || groups || ' ' || "
                       "source_ips || ' ' || verb || ' ' || resource || ' ' || code || ' ' || "
                       "origin || ' ' || offset FROM v_events WHERE audit_id = 'id-1'"),
        "2024-05-01T00:00:00.123457Z ResponseComplete alice system:authenticated,dev "
        "10.0.0.1,192.0.2.7 get secrets 200 /var/log/audit.log 1100");
    assert_string_equal(query(f->path, "SELECT count(*) FROM v_events WHERE user = 'bob'"), "2");
    /* repeated strings are stored once */
    assert_string_equal(query(f->path, "SELECT count(*) FROM strings WHERE s = 'secrets'"), "1");
    assert_string_equal(query(f->path, "SELECT count(*) FROM raw"), "0");
    kt_batch_destroy(b);
}

static void test_store_second_write_counts_duplicates_stores_nothing(void **state)
{
    struct fx *f = *state;
    open_store(f, 0);
    struct kt_batch *b = make_batch(4, 1, 0);
    struct kt_store_stats d = {0};
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(d.events, 4);
    assert_int_equal(d.duplicates, 4);
    assert_int_equal(d.rejects, 1); /* the same reject is not kept twice */
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "4");
    assert_string_equal(query(f->path, "SELECT count(*) FROM rejects"), "1");
    assert_string_equal(query(f->path, "SELECT origin || ' ' || offset || ' ' || line || ' ' || "
                                       "reason || ' ' || text FROM v_rejects"),
                        "/var/log/audit.log 1400 5 invalid JSON: test {\"auditID\":\"id-4\","
                        "\"raw\":true}");
    kt_batch_destroy(b);
}

static void test_store_checkpoint_written_with_batch_and_looked_up(void **state)
{
    struct fx *f = *state;
    open_store(f, 0);
    uint64_t off = 0;
    int mode = -1, done = -1;
    assert_int_equal(kt_store_ckpt_lookup(f->st, 42, &off, &mode, &done), KT_ENOENT);
    struct kt_batch *b = make_batch(2, 0, 0);
    b->ckpt_kind = KT_CKPT_FILE;
    b->ckpt_file = (struct kt_ckpt_file){.fingerprint = UINT64_MAX - 5,
                                         .path = strdup("/x.log"),
                                         .offset = 777,
                                         .mode = 2,
                                         .done = 0};
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_int_equal(kt_store_ckpt_lookup(f->st, UINT64_MAX - 5, &off, &mode, &done), 0);
    assert_int_equal(off, 777);
    assert_int_equal(mode, 2);
    assert_int_equal(done, 0);
    b->ckpt_file.offset = 900;
    b->ckpt_file.done = 1;
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_int_equal(kt_store_ckpt_lookup(f->st, UINT64_MAX - 5, &off, &mode, &done), 0);
    assert_int_equal(off, 900);
    assert_int_equal(done, 1);
    kt_batch_destroy(b);
}

static void test_store_failed_transaction_stores_nothing_of_the_batch(void **state)
{
    struct fx *f = *state;
    open_store(f, 0);
    /* another writer holds the database: the batch (events and checkpoint) must not land */
    sqlite3 *other = NULL;
    sqlite3_open(f->path, &other);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    struct kt_batch *b = make_batch(2, 0, 0);
    b->ckpt_kind = KT_CKPT_FILE;
    b->ckpt_file = (struct kt_ckpt_file){.fingerprint = 7, .offset = 10};
    kt_log_level = -1;
    assert_int_equal(kt_store_write(f->st, b, NULL), KT_EIO);
    kt_log_level = KT_LOG_INFO;
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "0");
    assert_string_equal(query(f->path, "SELECT count(*) FROM ckpt_file"), "0");
    /* and the store still works afterwards */
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "2");
    kt_batch_destroy(b);
}

static void test_store_raw_kept_for_flagged_or_all(void **state)
{
    struct fx *f = *state;
    open_store(f, 0);
    struct kt_batch *b = make_batch(3, 0, 0);
    b->events[1].flags |= KT_EV_KEEP_RAW;
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT group_concat(audit_id) FROM v_events WHERE raw "
                                       "IS NOT NULL"),
                        "id-1");
    assert_string_equal(query(f->path, "SELECT raw FROM v_events WHERE audit_id = 'id-1'"),
                        "{\"auditID\":\"id-1\",\"raw\":true}");
    kt_batch_destroy(b);
    kt_store_close(f->st);
    f->st = NULL;
    open_store(f, 1);
    b = make_batch(2, 0, 10);
    assert_int_equal(kt_store_write(f->st, b, NULL), 0);
    assert_string_equal(query(f->path, "SELECT count(*) FROM raw"), "3");
    kt_batch_destroy(b);
}

static void test_store_alerts_linked_and_never_twice(void **state)
{
    struct fx *f = *state;
    open_store(f, 0);
    struct kt_batch *b = make_batch(2, 0, 0);
    b->alerts = calloc(2, sizeof(*b->alerts));
    b->capalerts = 2;
    b->nalerts = 1;
    b->alerts[0] = (struct kt_alert){.event = 1,
                                     .rule = "Secret read",
                                     .priority = KT_PRIO_WARNING,
                                     .tags = "k8s,T1552",
                                     .output = KT_STR_LIT("alice read a secret"),
                                     .fields = KT_STR_LIT("{\"ka.user.name\":\"alice\"}")};
    struct kt_store_stats d = {0};
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_int_equal(kt_store_write(f->st, b, &d), 0); /* a replay: event and alert duplicates */
    assert_int_equal(d.alerts, 1);
    assert_string_equal(query(f->path, "SELECT count(*) FROM alerts"), "1");
    assert_string_equal(query(f->path, "SELECT rule || ' ' || priority || ' ' || user || ' ' || "
                                       "audit_id || ' ' || output FROM v_alerts"),
                        "Secret read Warning alice id-1 alice read a secret");
    /* the flagged event's raw JSON is kept */
    assert_string_equal(query(f->path, "SELECT count(*) FROM raw"), "1");
    /* a new rule on a duplicate event still links to the stored event */
    b->alerts[0].rule = "Another rule";
    assert_int_equal(kt_store_write(f->st, b, &d), 0);
    assert_string_equal(query(f->path, "SELECT count(*) FROM v_alerts WHERE rule = 'Another "
                                       "rule' AND user = 'alice'"),
                        "1");
    kt_batch_destroy(b);
}

/* on_done records the order batches were acknowledged in. */
struct acks {
    int order[8];
    int n;
    int status;
};

static void on_done(struct kt_batch *b, int status, void *ctx)
{
    struct acks *a = ctx;
    a->order[a->n++] = (int)b->recs[0].off; /* first record offset identifies the batch */
    a->status |= status;
}

static void test_store_writer_acknowledges_in_order_after_commit(void **state)
{
    struct fx *f = *state;
    open_store(f, 0);
    struct kt_writer *w = NULL;
    assert_int_equal(kt_writer_create(f->st, 2, &w), 0);
    struct acks a = {0};
    struct kt_batch *bs[5];
    for (int i = 0; i < 5; i++) {
        bs[i] = make_batch(3, 0, i * 10);
        bs[i]->recs[0].off = (uint64_t)i;
        bs[i]->on_done = on_done;
        bs[i]->on_done_ctx = &a;
        assert_int_equal(kt_writer_submit(w, bs[i]), 0);
    }
    assert_int_equal(kt_writer_drain(w), 0);
    assert_int_equal(a.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(a.order[i], i);
    }
    assert_int_equal(a.status, 0);
    assert_string_equal(query(f->path, "SELECT count(*) FROM events"), "15");
    kt_writer_destroy(w);
    for (int i = 0; i < 5; i++) {
        kt_batch_destroy(bs[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_fresh_database_has_schema_and_version, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_refuses_newer_and_foreign_databases, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_write_then_read_back_through_views, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_second_write_counts_duplicates_stores_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_checkpoint_written_with_batch_and_looked_up,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_failed_transaction_stores_nothing_of_the_batch,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_raw_kept_for_flagged_or_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_alerts_linked_and_never_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_writer_acknowledges_in_order_after_commit, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
