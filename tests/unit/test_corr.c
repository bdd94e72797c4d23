/*
 * test_corr.c: the correlation engine's windows on event time: edges, out-of-order events,
 * lateness, distinct values, ordered and unordered sequences, first sightings after learning
 * and lookback, eviction under a group cap, and checkpoint/restore: a restarted engine
 * continues the windows of the one it replaces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "corr.h"

#define S(x) ((int64_t)(x)*1000000) /* seconds in microseconds */

static struct kt_str str(const char *s)
{
    return (struct kt_str){s, strlen(s)};
}

/* Feed def 0 with key k at t seconds, event ref; the firing's refs as "1,2,3", or "". */
static const char *feed(struct kt_corr *c, uint32_t step, const char *k, const char *v, int64_t t,
                        uint64_t ref)
{
    static char out[256];
    struct kt_corr_fire f;
    int rc = kt_corr_feed(c, 0, step, str(k), str(v), S(t), ref, &f);
    assert_true(rc >= 0);
    out[0] = '\0';
    for (size_t i = 0; rc == 1 && i < f.nrefs; i++) {
        size_t n = strlen(out);
        snprintf(out + n, sizeof(out) - n, "%s%llu", i ? "," : "", (unsigned long long)f.refs[i]);
    }
    return out;
}

static void test_count_threshold_window_edges(void **state)
{
    (void)state;
    struct kt_corr_def d = {.kind = KT_CORR_COUNT, .window_us = S(60), .threshold = 3};
    struct kt_corr *c = kt_corr_create(&d, 1);
    assert_non_null(c);
    assert_string_equal(feed(c, 0, "alice", "", 0, 1), "");
    assert_string_equal(feed(c, 0, "bob", "", 5, 2), ""); /* another group */
    assert_string_equal(feed(c, 0, "alice", "", 10, 3), "");
    assert_string_equal(feed(c, 0, "alice", "", 20, 4), "1,3,4");
    assert_string_equal(feed(c, 0, "alice", "", 30, 5), ""); /* started over after firing */
    /* the window: 30 expires when 91 arrives (91 - 60 > 30), so 91 and 95 are two */
    assert_string_equal(feed(c, 0, "alice", "", 91, 6), "");
    assert_string_equal(feed(c, 0, "alice", "", 95, 7), "");
    /* 151 - 60 = 91: an observation exactly a window old is still inside */
    assert_string_equal(feed(c, 0, "alice", "", 151, 8), "6,7,8");
    kt_corr_destroy(c);
}

static void test_count_exact_window_boundary(void **state)
{
    (void)state;
    struct kt_corr_def d = {.kind = KT_CORR_COUNT, .window_us = S(60), .threshold = 2};
    struct kt_corr *c = kt_corr_create(&d, 1);
    assert_string_equal(feed(c, 0, "u", "", 100, 1), "");
    assert_string_equal(feed(c, 0, "u", "", 160, 2), "1,2"); /* exactly the window: inside */
    assert_string_equal(feed(c, 0, "u", "", 200, 3), "");
    assert_string_equal(feed(c, 0, "u", "", 261, 4), ""); /* 61 s apart: outside */
    kt_corr_destroy(c);
}

static void test_out_of_order_and_lateness(void **state)
{
    (void)state;
    struct kt_corr_def d = {
        .kind = KT_CORR_COUNT, .window_us = S(60), .lateness_us = S(30), .threshold = 3};
    struct kt_corr *c = kt_corr_create(&d, 1);
    struct kt_corr_stats st;
    assert_string_equal(feed(c, 0, "u", "", 100, 1), "");
    assert_string_equal(feed(c, 0, "u", "", 50, 2), ""); /* 50 s late: dropped */
    kt_corr_stats(c, &st);
    assert_int_equal(st.late, 1);
    /* 20 s late: counted, in its place (refs come oldest first) */
    assert_string_equal(feed(c, 0, "u", "", 80, 3), "");
    assert_string_equal(feed(c, 0, "u", "", 101, 4), "3,1,4");
    kt_corr_destroy(c);
}

static void test_distinct_values(void **state)
{
    (void)state;
    struct kt_corr_def d = {.kind = KT_CORR_DISTINCT, .window_us = S(300), .threshold = 3};
    struct kt_corr *c = kt_corr_create(&d, 1);
    assert_string_equal(feed(c, 0, "alice", "s1", 0, 1), "");
    assert_string_equal(feed(c, 0, "alice", "s1", 10, 2), ""); /* same secret: still one */
    assert_string_equal(feed(c, 0, "alice", "s2", 20, 3), "");
    assert_string_equal(feed(c, 0, "bob", "s3", 25, 4), "");
    assert_string_equal(feed(c, 0, "alice", "s3", 30, 5), "2,3,5");
    /* values expire with the window */
    assert_string_equal(feed(c, 0, "alice", "a", 1000, 6), "");
    assert_string_equal(feed(c, 0, "alice", "b", 1100, 7), "");
    assert_string_equal(feed(c, 0, "alice", "c", 1301, 8), ""); /* a is 301 s old */
    assert_string_equal(feed(c, 0, "alice", "d", 1302, 9), "7,8,9");
    kt_corr_destroy(c);
}

static void test_sequences(void **state)
{
    (void)state;
    struct kt_corr_def d[2] = {
        {.kind = KT_CORR_SEQUENCE, .window_us = S(300), .steps = 2, .ordered = 1},
        {.kind = KT_CORR_SEQUENCE, .window_us = S(300), .steps = 2, .ordered = 0},
    };
    struct kt_corr *c = kt_corr_create(d, 2);
    assert_non_null(c);
    /* ordered: step 1 before step 0 does not count */
    assert_string_equal(feed(c, 1, "u", "", 0, 1), "");
    assert_string_equal(feed(c, 0, "u", "", 10, 2), "");
    assert_string_equal(feed(c, 1, "u", "", 20, 3), "2,3");
    /* too far apart */
    assert_string_equal(feed(c, 0, "v", "", 0, 4), "");
    assert_string_equal(feed(c, 1, "v", "", 301, 5), "");
    /* unordered (def 1): either order */
    struct kt_corr_fire f;
    assert_int_equal(kt_corr_feed(c, 1, 1, str("w"), str(""), S(0), 6, &f), 0);
    assert_int_equal(kt_corr_feed(c, 1, 0, str("w"), str(""), S(5), 7, &f), 1);
    assert_int_equal(f.def, 1);
    assert_int_equal(f.nrefs, 2);
    assert_int_equal(f.refs[0], 6);
    assert_int_equal(f.count, 2);
    assert_memory_equal(f.key.ptr, "w", 1);
    kt_corr_destroy(c);
}

static void test_first_seen_learning_and_lookback(void **state)
{
    (void)state;
    struct kt_corr_def d = {
        .kind = KT_CORR_FIRST_SEEN, .learning_us = S(3600), .lookback_us = S(7 * 86400)};
    struct kt_corr *c = kt_corr_create(&d, 1);
    assert_string_equal(feed(c, 0, "sa|curl", "", 0, 1), ""); /* learning */
    assert_string_equal(feed(c, 0, "sa|kubectl", "", 1800, 2), "");
    assert_string_equal(feed(c, 0, "sa|curl", "", 7200, 3), ""); /* seen while learning */
    assert_string_equal(feed(c, 0, "sa|python", "", 7300, 4), "4");
    assert_string_equal(feed(c, 0, "sa|python", "", 7400, 5), "");
    assert_string_equal(feed(c, 0, "sa|python", "", 7400 + 8 * 86400, 6), "6"); /* forgotten */
    kt_corr_destroy(c);
}

static void test_group_cap_evicts_the_stalest(void **state)
{
    (void)state;
    struct kt_corr_def d = {
        .kind = KT_CORR_COUNT, .window_us = S(60), .threshold = 2, .max_groups = 1000};
    struct kt_corr *c = kt_corr_create(&d, 1);
    struct kt_corr_stats st;
    char key[32];
    assert_string_equal(feed(c, 0, "first", "", 0, 1), "");
    for (int i = 0; i < 1000000; i++) {
        snprintf(key, sizeof(key), "user-%d", i);
        struct kt_corr_fire f;
        assert_int_equal(kt_corr_feed(c, 0, 0, str(key), str(""), S(1), (uint64_t)i, &f), 0);
    }
    kt_corr_stats(c, &st);
    assert_int_equal(st.groups, 1000);
    assert_true(st.evicted >= 999000);
    assert_true(st.bytes < 1000 * 256);
    /* "first" was the stalest group long ago: evicted, so one more sighting does not fire */
    assert_string_equal(feed(c, 0, "first", "", 1, 2), "");
    kt_corr_destroy(c);
}

static void test_bad_definitions_are_refused(void **state)
{
    (void)state;
    struct kt_corr_def d = {.kind = KT_CORR_COUNT, .window_us = S(60), .threshold = 0};
    assert_null(kt_corr_create(&d, 1));
    struct kt_corr_def s = {.kind = KT_CORR_SEQUENCE, .window_us = S(60), .steps = 17};
    assert_null(kt_corr_create(&s, 1));
}

/* A fake store for checkpoints: rows of (def, key, blob or first/last), by key. */
struct row {
    size_t def;
    char key[64];
    unsigned char blob[1024];
    size_t len;
    int64_t first, last;
    int used;
};
struct fake_db {
    struct row rows[64];
    int puts, dels;
};

static struct row *db_find(struct fake_db *db, size_t def, struct kt_str key, int add)
{
    for (int i = 0; i < 64; i++) {
        struct row *r = &db->rows[i];
        if (r->used && r->def == def && strlen(r->key) == key.len &&
            memcmp(r->key, key.ptr, key.len) == 0) {
            return r;
        }
    }
    for (int i = 0; add && i < 64; i++) {
        if (!db->rows[i].used) {
            db->rows[i].used = 1;
            db->rows[i].def = def;
            snprintf(db->rows[i].key, sizeof(db->rows[i].key), "%.*s", (int)key.len, key.ptr);
            return &db->rows[i];
        }
    }
    return NULL;
}

static int db_put(void *ctx, const struct kt_corr_state *s)
{
    struct fake_db *db = ctx;
    struct row *r = db_find(db, s->def, s->key, 1);
    assert_non_null(r);
    assert_true(s->len <= sizeof(r->blob));
    if (s->len > 0) {
        memcpy(r->blob, s->blob, s->len);
    }
    r->len = s->len;
    r->first = s->first_ts;
    r->last = s->last_ts;
    db->puts++;
    return 0;
}

static int db_del(void *ctx, size_t def, struct kt_str key)
{
    struct fake_db *db = ctx;
    struct row *r = db_find(db, def, key, 0);
    if (r != NULL) {
        r->used = 0;
    }
    db->dels++;
    return 0;
}

/* A new engine restored from every row of db (first_seen defs get their learning start). */
static struct kt_corr *restart(const struct kt_corr_def *d, size_t n, struct fake_db *db)
{
    struct kt_corr *c = kt_corr_create(d, n);
    assert_non_null(c);
    kt_corr_track(c, 1);
    for (int i = 0; i < 64; i++) {
        struct row *r = &db->rows[i];
        if (!r->used) {
            continue;
        }
        struct kt_corr_state s = {.def = r->def,
                                  .key = str(r->key),
                                  .blob = r->len ? r->blob : NULL,
                                  .len = r->len,
                                  .first_ts = r->first,
                                  .last_ts = r->last};
        assert_int_equal(kt_corr_restore(c, &s), 0);
        if (d[r->def].kind == KT_CORR_FIRST_SEEN) {
            kt_corr_set_start(c, r->def, r->first);
        }
    }
    return c;
}

static void test_checkpoint_restore_continues_the_window(void **state)
{
    (void)state;
    struct fake_db db = {0};
    struct kt_corr_def d = {.kind = KT_CORR_COUNT, .window_us = S(60), .threshold = 3};
    struct kt_corr *c = kt_corr_create(&d, 1);
    kt_corr_track(c, 1);
    assert_string_equal(feed(c, 0, "alice", "", 0, 1), "");
    assert_string_equal(feed(c, 0, "alice", "", 10, 2), "");
    assert_string_equal(feed(c, 0, "bob", "", 10, 3), "");
    assert_int_equal(kt_corr_checkpoint(c, db_put, db_del, &db), 0);
    assert_int_equal(db.puts, 2);
    /* nothing changed: a second checkpoint writes nothing */
    assert_int_equal(kt_corr_checkpoint(c, db_put, db_del, &db), 0);
    assert_int_equal(db.puts, 2);
    kt_corr_destroy(c);

    c = restart(&d, 1, &db);
    /* the restored group still holds 1 and 2: the third sighting fires with all three */
    assert_string_equal(feed(c, 0, "alice", "", 20, 4), "1,2,4");
    /* and the window still runs on event time: bob's 10 s is gone by 71 */
    assert_string_equal(feed(c, 0, "bob", "", 71, 5), "");
    assert_string_equal(feed(c, 0, "bob", "", 72, 6), "");
    kt_corr_destroy(c);
}

static void test_checkpoint_restore_distinct_and_sequence(void **state)
{
    (void)state;
    struct fake_db db = {0};
    struct kt_corr_def d[2] = {
        {.kind = KT_CORR_DISTINCT, .window_us = S(300), .threshold = 3},
        {.kind = KT_CORR_SEQUENCE, .window_us = S(300), .steps = 2, .ordered = 1},
    };
    struct kt_corr *c = kt_corr_create(d, 2);
    kt_corr_track(c, 1);
    struct kt_corr_fire f;
    assert_string_equal(feed(c, 0, "alice", "s1", 0, 1), "");
    assert_string_equal(feed(c, 0, "alice", "s2", 5, 2), "");
    assert_int_equal(kt_corr_feed(c, 1, 0, str("ns|pod"), str(""), S(1), 10, &f), 0);
    assert_int_equal(kt_corr_checkpoint(c, db_put, db_del, &db), 0);
    kt_corr_destroy(c);

    c = restart(d, 2, &db);
    /* a value seen before the restart is still the same value */
    assert_string_equal(feed(c, 0, "alice", "s2", 6, 3), "");
    assert_string_equal(feed(c, 0, "alice", "s3", 7, 4), "1,3,4");
    /* step 0 before the restart, step 1 after: the sequence completes */
    assert_int_equal(kt_corr_feed(c, 1, 1, str("ns|pod"), str(""), S(30), 11, &f), 1);
    assert_int_equal(f.nrefs, 2);
    assert_int_equal(f.refs[0], 10);
    assert_int_equal(f.refs[1], 11);
    kt_corr_destroy(c);
}

static void test_restore_drops_state_of_another_definition(void **state)
{
    (void)state;
    struct fake_db db = {0};
    struct kt_corr_def d = {.kind = KT_CORR_COUNT, .window_us = S(60), .threshold = 5};
    struct kt_corr *c = kt_corr_create(&d, 1);
    kt_corr_track(c, 1);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(feed(c, 0, "u", "", i, (uint64_t)i + 1), "");
    }
    assert_int_equal(kt_corr_checkpoint(c, db_put, db_del, &db), 0);
    kt_corr_destroy(c);
    /* the rule now has a threshold of 2: four stored observations do not fit, start over */
    struct kt_corr_def d2 = {.kind = KT_CORR_COUNT, .window_us = S(60), .threshold = 2};
    c = restart(&d2, 1, &db);
    assert_string_equal(feed(c, 0, "u", "", 5, 9), "");
    assert_string_equal(feed(c, 0, "u", "", 6, 10), "9,10");
    kt_corr_destroy(c);
    /* a garbled blob is dropped too */
    struct kt_corr_state s = {.def = 0, .key = str("x"), .blob = "junk", .len = 4};
    c = kt_corr_create(&d, 1);
    assert_int_equal(kt_corr_restore(c, &s), 0);
    assert_int_equal(kt_corr_has(c, 0, str("x")), 0);
    kt_corr_destroy(c);
}

static void test_checkpoint_deletes_evicted_groups(void **state)
{
    (void)state;
    struct fake_db db = {0};
    struct kt_corr_def d = {
        .kind = KT_CORR_COUNT, .window_us = S(60), .threshold = 9, .max_groups = 2};
    struct kt_corr *c = kt_corr_create(&d, 1);
    kt_corr_track(c, 1);
    assert_string_equal(feed(c, 0, "a", "", 0, 1), "");
    assert_string_equal(feed(c, 0, "b", "", 1, 2), "");
    assert_int_equal(kt_corr_checkpoint(c, db_put, db_del, &db), 0);
    assert_string_equal(feed(c, 0, "c", "", 2, 3), ""); /* evicts a */
    assert_int_equal(kt_corr_checkpoint(c, db_put, db_del, &db), 0);
    assert_int_equal(db.dels, 1);
    assert_null(db_find(&db, 0, str("a"), 0));
    assert_non_null(db_find(&db, 0, str("b"), 0));
    assert_non_null(db_find(&db, 0, str("c"), 0));
    struct kt_corr_stats st;
    kt_corr_stats(c, &st);
    assert_int_equal(st.evicted, 1);
    assert_int_equal(st.groups, 2);
    kt_corr_destroy(c);
}

static void test_first_seen_survives_a_restart(void **state)
{
    (void)state;
    struct fake_db db = {0};
    struct kt_corr_def d = {.kind = KT_CORR_FIRST_SEEN, .learning_us = S(3600)};
    struct kt_corr *c = kt_corr_create(&d, 1);
    kt_corr_track(c, 1);
    assert_string_equal(feed(c, 0, "sa|kubectl", "", 0, 1), "");
    assert_int_equal(kt_corr_checkpoint(c, db_put, db_del, &db), 0);
    struct row *r = db_find(&db, 0, str("sa|kubectl"), 0);
    assert_non_null(r);
    assert_int_equal(r->first, S(0));
    assert_int_equal(r->len, 0); /* first_seen keeps times, no blob */
    kt_corr_destroy(c);

    c = restart(&d, 1, &db);
    /* the learning period started before the restart: it is over at 3600 s */
    assert_string_equal(feed(c, 0, "sa|kubectl", "", 4000, 2), ""); /* known */
    assert_string_equal(feed(c, 0, "sa|curl", "", 4001, 3), "3");   /* new */
    assert_int_equal(kt_corr_checkpoint(c, db_put, db_del, &db), 0);
    r = db_find(&db, 0, str("sa|kubectl"), 0);
    assert_int_equal(r->first, S(0));
    assert_int_equal(r->last, S(4000));
    kt_corr_destroy(c);
}

static void test_clear_forgets_everything(void **state)
{
    (void)state;
    struct kt_corr_def d = {.kind = KT_CORR_COUNT, .window_us = S(60), .threshold = 2};
    struct kt_corr *c = kt_corr_create(&d, 1);
    assert_string_equal(feed(c, 0, "u", "", 0, 1), "");
    kt_corr_clear(c);
    struct kt_corr_stats st;
    kt_corr_stats(c, &st);
    assert_int_equal(st.groups, 0);
    assert_string_equal(feed(c, 0, "u", "", 1, 2), ""); /* 1 was forgotten */
    assert_string_equal(feed(c, 0, "u", "", 2, 3), "2,3");
    kt_corr_destroy(c);
}

static void test_late_beyond_window_within_lateness(void **state)
{
    (void)state;
    /* lateness longer than the window: a late event inside lateness but outside the window of
     * the group's clock is not counted (it could never be in a window with the newest) */
    struct kt_corr_def d = {
        .kind = KT_CORR_COUNT, .window_us = S(10), .lateness_us = S(100), .threshold = 2};
    struct kt_corr *c = kt_corr_create(&d, 1);
    struct kt_corr_stats st;
    assert_string_equal(feed(c, 0, "u", "", 100, 1), "");
    assert_string_equal(feed(c, 0, "u", "", 50, 2), "");
    kt_corr_stats(c, &st);
    assert_int_equal(st.late, 0);
    assert_string_equal(feed(c, 0, "u", "", 95, 3), "3,1"); /* 5 s late, inside */
    kt_corr_destroy(c);
}

static void test_groups_expire_once_their_window_has_passed(void **state)
{
    (void)state;
    struct fake_db db = {0};
    struct kt_corr_def d = {
        .kind = KT_CORR_COUNT, .window_us = S(60), .lateness_us = S(10), .threshold = 5};
    struct kt_corr *c = kt_corr_create(&d, 1);
    struct kt_corr_stats st;
    kt_corr_track(c, 1);
    assert_string_equal(feed(c, 0, "a", "", 0, 1), "");
    assert_string_equal(feed(c, 0, "b", "", 30, 2), "");
    assert_int_equal(kt_corr_checkpoint(c, db_put, db_del, &db), 0);
    /* 70 s: a (clock 0) is exactly window + lateness behind: it could still take a late
     * event that shares a window with what it holds, so it stays */
    assert_string_equal(feed(c, 0, "c", "", 70, 3), "");
    kt_corr_stats(c, &st);
    assert_int_equal(st.groups, 3);
    /* 101 s: a is past for good and goes (b, 71 s behind, too); the new group stays */
    assert_string_equal(feed(c, 0, "d", "", 101, 4), "");
    kt_corr_stats(c, &st);
    assert_int_equal(st.expired, 2);
    assert_int_equal(st.evicted, 0);
    assert_int_equal(st.groups, 2);
    assert_int_equal(kt_corr_has(c, 0, str("a")), 0);
    assert_int_equal(kt_corr_has(c, 0, str("c")), 1);
    /* and its stored state is deleted with the next checkpoint */
    assert_int_equal(kt_corr_checkpoint(c, db_put, db_del, &db), 0);
    assert_null(db_find(&db, 0, str("a"), 0));
    assert_null(db_find(&db, 0, str("b"), 0));
    assert_non_null(db_find(&db, 0, str("d"), 0));
    kt_corr_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_threshold_window_edges),
        cmocka_unit_test(test_count_exact_window_boundary),
        cmocka_unit_test(test_out_of_order_and_lateness),
        cmocka_unit_test(test_distinct_values),
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_first_seen_learning_and_lookback),
        cmocka_unit_test(test_group_cap_evicts_the_stalest),
        cmocka_unit_test(test_bad_definitions_are_refused),
        cmocka_unit_test(test_checkpoint_restore_continues_the_window),
        cmocka_unit_test(test_checkpoint_restore_distinct_and_sequence),
        cmocka_unit_test(test_restore_drops_state_of_another_definition),
        cmocka_unit_test(test_checkpoint_deletes_evicted_groups),
        cmocka_unit_test(test_first_seen_survives_a_restart),
        cmocka_unit_test(test_clear_forgets_everything),
        cmocka_unit_test(test_late_beyond_window_within_lateness),
        cmocka_unit_test(test_groups_expire_once_their_window_has_passed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
