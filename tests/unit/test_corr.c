/*
 * test_corr.c: the correlation engine's windows on event time: edges, out-of-order events,
 * lateness, distinct values, ordered and unordered sequences, first sightings after learning
 * and lookback, and eviction under a group cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
