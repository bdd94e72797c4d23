/*
 * test_salvage.c: an audit event cut anywhere by its transport is repaired into valid JSON
 * that keeps every member complete before the cut, and gets its timestamps when they were cut.
 *
 * Every output is parsed with yajl_tree (the assertion is in salvage()), and the cases check
 * the surviving fields by path. The last cases cut a realistic event at every length.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "salvage.h"

/* 2024-05-12T05:13:01.123456Z */
#define T_US INT64_C(1715490781123456)
#define T_TEXT "2024-05-12T05:13:01.123456Z"

/* A realistic RequestResponse event (from the sample log, with numbers, literals and escapes
 * added), timestamps near the end as the API server writes them. */
static const char EVENT[] =
    "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"RequestResponse\",\"audit"
    "ID\":\"fef5a509-7203-4778-a628-bae206b35959\",\"stage\":\"ResponseComplete\",\"requestURI\":"
    "\"/apis/apps/v1/namespaces/kube-system/deployments\",\"verb\":\"create\",\"user\":{\"usernam"
    "e\":\"zoë@example.com\",\"uid\":\"cb4ec739-780d-4626-91dd-090abb8dd9ba\",\"groups\":[\"devel"
    "opers\",\"system:authenticated\"]},\"sourceIPs\":[\"10.0.0.10\"],\"userAgent\":\"helm/v3.14."
    "0\",\"objectRef\":{\"resource\":\"deployments\",\"namespace\":\"kube-system\",\"name\":\"api"
    "-21\",\"apiGroup\":\"apps\",\"apiVersion\":\"v1\"},\"responseStatus\":{\"metadata\":{},\"cod"
    "e\":201},\"requestObject\":{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\",\"metadata\":"
    "{\"name\":\"api-21\",\"namespace\":\"kube-system\",\"labels\":{\"app\":\"web\",\"team\":\"pa"
    "yments\"},\"annotations\":{\"note\":\"\\u003cb\\u003etab\\there</b> \\\\ backé /slash\"}},\""
    "spec\":{\"replicas\":3,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{\"meta"
    "data\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"c0\",\"image\":"
    "\"busybox\",\"ports\":[{\"containerPort\":8080,\"protocol\":\"TCP\"}],\"resources\":{\"limit"
    "s\":{\"cpu\":\"500m\",\"memory\":\"256Mi\"}},\"env\":[{\"name\":\"MODE\",\"value\":\"product"
    "ion\"},{\"name\":\"MSG\",\"value\":\"say \\\"hi\\\"\"}],\"securityContext\":{\"allowPrivileg"
    "eEscalation\":false,\"readOnlyRootFilesystem\":true,\"capabilities\":{\"drop\":[\"ALL\"]}},"
    "\"volumeMounts\":[{\"name\":\"config\",\"mountPath\":\"/etc/app\"}]},{\"name\":\"c1\",\"imag"
    "e\":\"registry.example.com:5000/team/api:2.1\",\"ports\":[{\"containerPort\":8080,\"protocol"
    "\":\"TCP\"}],\"resources\":{\"limits\":{\"cpu\":\"500m\",\"memory\":\"256Mi\"}},\"env\":[{\""
    "name\":\"MODE\",\"value\":\"production\"},{\"name\":\"MSG\",\"value\":\"say \\\"hi\\\"\"}],"
    "\"securityContext\":{\"allowPrivilegeEscalation\":false,\"readOnlyRootFilesystem\":true,\"ca"
    "pabilities\":{\"drop\":[\"ALL\"]}},\"volumeMounts\":[{\"name\":\"config\",\"mountPath\":\"/e"
    "tc/app\"}]}],\"volumes\":[{\"name\":\"config\",\"configMap\":{\"name\":\"app-config\"}}],\"r"
    "estartPolicy\":\"Always\",\"serviceAccountName\":\"default\",\"terminationGracePeriodSeconds"
    "\":30}},\"minReadySeconds\":0,\"progressDeadlineSeconds\":650.0,\"paused\":false,\"revisionH"
    "istoryLimit\":null,\"scale\":[-1.25,0,0.001,[true,null,[]],{}]}},\"responseObject\":{\"kind"
    "\":\"Deployment\",\"apiVersion\":\"apps/v1\",\"metadata\":{\"name\":\"api-21\",\"namespace\""
    ":\"kube-system\",\"labels\":{\"app\":\"web\",\"team\":\"payments\"},\"uid\":\"2cd641a4-5e2e-"
    "4bc4-bf09-3dde707a565e\",\"resourceVersion\":\"146751\"}},\"requestReceivedTimestamp\":\"202"
    "4-05-01T00:00:00.000000Z\",\"stageTimestamp\":\"2024-05-01T00:00:00.053831Z\",\"annotations"
    "\":{\"authorization.k8s.io/decision\":\"allow\",\"authorization.k8s.io/reason\":\"RBAC: allo"
    "wed by RoleBinding \\\"dev-edit/default\\\" of ClusterRole \\\"edit\\\" to Group \\\"develop"
    "ers\\\"\"}}";

/* The output of one salvage, and its tree when it succeeded. */
struct res {
    int rc;        /* kt_salvage_event's return */
    char *text;    /* the output, NUL-terminated (owned), or NULL on error */
    yajl_val tree; /* the output parsed (owned), or NULL on error */
};

/* Salvage p[0, n) with time_us; on success, assert the output parses with yajl_tree. */
static struct res salvage_n(const char *p, size_t n, int64_t time_us)
{
    struct kt_buf out = {0};
    struct res r = {0};
    char err[256];

    r.rc = kt_salvage_event(p, n, time_us, &out);
    if (r.rc == 0) {
        r.text = calloc(1, out.len + 1);
        assert_non_null(r.text);
        memcpy(r.text, out.p, out.len);
        r.tree = yajl_tree_parse(r.text, err, sizeof(err));
        if (r.tree == NULL) {
            fail_msg("salvage of %zu bytes gave invalid JSON (%s): %s", n, err, r.text);
        }
        assert_true(YAJL_IS_OBJECT(r.tree));
    } else {
        assert_int_equal(out.len, 0); /* nothing appended on error */
    }
    kt_buf_free(&out);
    return r;
}

static struct res salvage(const char *s, int64_t time_us)
{
    return salvage_n(s, strlen(s), time_us);
}

static void res_free(struct res *r)
{
    free(r->text);
    yajl_tree_free(r->tree);
}

/* The string at a dotted path ("objectRef.name"), or NULL when absent or not a string. */
static const char *str_at(yajl_val tree, const char *dotted)
{
    const char *path[8];
    char buf[128];
    size_t np = 0;

    snprintf(buf, sizeof(buf), "%s", dotted);
    for (char *tok = strtok(buf, "."); tok != NULL && np < 7; tok = strtok(NULL, ".")) {
        path[np++] = tok;
    }
    path[np] = NULL;
    yajl_val v = yajl_tree_get(tree, path, yajl_t_string);
    return v != NULL ? YAJL_GET_STRING(v) : NULL;
}

/* Whether the top-level object has key k. */
static int has_key(yajl_val tree, const char *k)
{
    const char *path[] = {k, NULL};
    return yajl_tree_get(tree, path, yajl_t_any) != NULL;
}

/* ---- cuts at each kind of position ---- */

static void test_salvage_cut_inside_string_value_drops_that_member(void **state)
{
    struct res r = salvage("{\"kind\":\"Event\",\"auditID\":\"a-1\",\"verb\":\"cre", 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.text, "{\"kind\":\"Event\",\"auditID\":\"a-1\"}");
    assert_string_equal(str_at(r.tree, "auditID"), "a-1");
    assert_false(has_key(r.tree, "verb"));
    res_free(&r);
}

static void test_salvage_cut_inside_key_drops_the_key(void **state)
{
    struct res r = salvage("{\"auditID\":\"a-1\",\"verb\":\"get\",\"objectR", 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.text, "{\"auditID\":\"a-1\",\"verb\":\"get\"}");
    assert_string_equal(str_at(r.tree, "verb"), "get");
    res_free(&r);
}

static void test_salvage_cut_after_colon_drops_the_key(void **state)
{
    struct res r = salvage("{\"auditID\":\"a-1\",\"verb\": ", 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.text, "{\"auditID\":\"a-1\"}");
    res_free(&r);
    r = salvage("{\"auditID\":\"a-1\",\"verb\"", 0);
    assert_string_equal(r.text, "{\"auditID\":\"a-1\"}");
    res_free(&r);
}

static void test_salvage_cut_after_comma_drops_the_comma(void **state)
{
    struct res r = salvage("{\"auditID\":\"a-1\",\"verb\":\"get\" , ", 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.text, "{\"auditID\":\"a-1\",\"verb\":\"get\"}");
    res_free(&r);
    r = salvage("{\"sourceIPs\":[\"10.0.0.1\",", 0);
    assert_string_equal(r.text, "{\"sourceIPs\":[\"10.0.0.1\"]}");
    res_free(&r);
}

static void test_salvage_cut_inside_nested_array_of_objects_keeps_complete_elements(void **state)
{
    const char *in =
        "{\"auditID\":\"a-2\",\"objectRef\":{\"name\":\"api-21\",\"namespace\":\"ns\"},"
        "\"requestObject\":{\"spec\":{\"containers\":[{\"name\":\"c0\",\"image\":"
        "\"busybox\"},{\"name\":\"c1\",\"ports\":[{\"containerPort\":80";
    struct res r = salvage(in, 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.text,
                        "{\"auditID\":\"a-2\",\"objectRef\":{\"name\":\"api-21\",\"namespace\":"
                        "\"ns\"},\"requestObject\":{\"spec\":{\"containers\":[{\"name\":\"c0\","
                        "\"image\":\"busybox\"},{\"name\":\"c1\",\"ports\":[{}]}]}}}");
    assert_string_equal(str_at(r.tree, "objectRef.name"), "api-21");
    const char *path[] = {"requestObject", "spec", "containers", NULL};
    yajl_val arr = yajl_tree_get(r.tree, path, yajl_t_array);
    assert_non_null(arr);
    assert_int_equal(YAJL_GET_ARRAY(arr)->len, 2);
    res_free(&r);
}

static void test_salvage_cut_inside_escape_sequence_drops_the_string(void **state)
{
    struct res r = salvage("{\"auditID\":\"a-3\",\"userAgent\":\"say \\\"hi\\", 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.text, "{\"auditID\":\"a-3\"}");
    res_free(&r);
    r = salvage("{\"auditID\":\"a-3\",\"userAgent\":\"caf\\u00", 0);
    assert_string_equal(r.text, "{\"auditID\":\"a-3\"}");
    res_free(&r);
    /* complete escapes, \" and \\ included, do not end the string early */
    r = salvage("{\"auditID\":\"a-3\",\"userAgent\":\"q\\\"\\\\\\u00e9\",\"verb\":\"li", 0);
    assert_string_equal(r.text, "{\"auditID\":\"a-3\",\"userAgent\":\"q\\\"\\\\\\u00e9\"}");
    assert_string_equal(str_at(r.tree, "userAgent"), "q\"\\\xc3\xa9");
    res_free(&r);
}

static void test_salvage_number_or_literal_at_the_end_is_not_kept(void **state)
{
    /* 20 may have been 201: a number is complete only when something follows it */
    struct res r = salvage("{\"auditID\":\"a-4\",\"responseStatus\":{\"code\":20", 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.text, "{\"auditID\":\"a-4\",\"responseStatus\":{}}");
    res_free(&r);
    r = salvage("{\"auditID\":\"a-4\",\"responseStatus\":{\"code\":201}", 0);
    assert_string_equal(r.text, "{\"auditID\":\"a-4\",\"responseStatus\":{\"code\":201}}");
    res_free(&r);
    r = salvage("{\"a\":[1.5e-3 ,-0,tru", 0);
    assert_string_equal(r.text, "{\"a\":[1.5e-3 ,-0]}");
    res_free(&r);
    /* a literal is complete at its last letter */
    r = salvage("{\"a\":false", 0);
    assert_string_equal(r.text, "{\"a\":false}");
    res_free(&r);
}

static void test_salvage_cut_right_after_brace_gives_empty_object(void **state)
{
    struct res r = salvage("{", 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.text, "{}");
    res_free(&r);
    r = salvage("  \n{\"", 0);
    assert_string_equal(r.text, "  \n{}");
    res_free(&r);
}

static void test_salvage_complete_object_is_unchanged(void **state)
{
    const char *in = " {\"kind\":\"Event\",\"a\":[1,{\"b\":null}],\"requestReceivedTimestamp\":"
                     "\"x\",\"stageTimestamp\":\"y\"} \n";
    struct res r = salvage(in, T_US);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.text, in);
    res_free(&r);
    r = salvage(EVENT, T_US);
    assert_string_equal(r.text, EVENT);
    res_free(&r);
    /* without a time, nothing is added even when the timestamps are missing */
    r = salvage("{\"kind\":\"Event\"}", 0);
    assert_string_equal(r.text, "{\"kind\":\"Event\"}");
    res_free(&r);
}

/* ---- timestamps ---- */

static void test_salvage_timestamps_added_only_when_missing(void **state)
{
    struct res r =
        salvage("{\"auditID\":\"a-5\",\"requestReceivedTimestamp\":\"2024-05-12T05:13:00."
                "000000Z\",\"stageTimestamp\":\"2024-05-",
                T_US);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.text, "{\"auditID\":\"a-5\",\"requestReceivedTimestamp\":\"2024-05-12T05:"
                                "13:00.000000Z\",\"stageTimestamp\":\"" T_TEXT "\"}");
    res_free(&r);
    /* both present and complete: nothing added */
    r = salvage("{\"requestReceivedTimestamp\":\"a\",\"stageTimestamp\":\"b\",\"annotations\":{\"x",
                T_US);
    assert_string_equal(r.text, "{\"requestReceivedTimestamp\":\"a\",\"stageTimestamp\":\"b\","
                                "\"annotations\":{}}");
    res_free(&r);
    /* a nested key of the same name does not count */
    r = salvage("{\"o\":{\"stageTimestamp\":\"b\"},\"requestReceivedTimestamp\":\"a\"", T_US);
    assert_string_equal(str_at(r.tree, "stageTimestamp"), T_TEXT);
    assert_string_equal(str_at(r.tree, "requestReceivedTimestamp"), "a");
    res_free(&r);
    /* a complete event without timestamps gets them before its final brace */
    r = salvage("{\"kind\":\"Event\"}\n", T_US);
    assert_string_equal(r.text, "{\"kind\":\"Event\",\"requestReceivedTimestamp\":\"" T_TEXT
                                "\",\"stageTimestamp\":\"" T_TEXT "\"}\n");
    res_free(&r);
}

static void test_salvage_timestamps_added_with_and_without_a_preceding_member(void **state)
{
    struct res r = salvage("{\"kind\":\"Ev", T_US);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.text, "{\"requestReceivedTimestamp\":\"" T_TEXT
                                "\",\"stageTimestamp\":\"" T_TEXT "\"}");
    res_free(&r);
    r = salvage("{}", T_US);
    assert_string_equal(r.text, "{\"requestReceivedTimestamp\":\"" T_TEXT
                                "\",\"stageTimestamp\":\"" T_TEXT "\"}");
    res_free(&r);
    r = salvage("{\"kind\":\"Event\",", T_US);
    assert_string_equal(r.text, "{\"kind\":\"Event\",\"requestReceivedTimestamp\":\"" T_TEXT
                                "\",\"stageTimestamp\":\"" T_TEXT "\"}");
    res_free(&r);
    /* the member still open at the cut is kept closed, so a comma follows it */
    r = salvage("{\"user\":{\"username\":\"bob\",\"gro", T_US);
    assert_string_equal(r.text,
                        "{\"user\":{\"username\":\"bob\"},\"requestReceivedTimestamp\":\"" T_TEXT
                        "\",\"stageTimestamp\":\"" T_TEXT "\"}");
    res_free(&r);
    /* before the epoch, microseconds still count forward */
    r = salvage("{", -1);
    assert_string_equal(str_at(r.tree, "stageTimestamp"), "1969-12-31T23:59:59.999999Z");
    res_free(&r);
}

/* ---- what cannot be salvaged, and limits ---- */

static void test_salvage_invalid_text_is_a_parse_error(void **state)
{
    static const char *const bad[] = {
        "",
        "   ",
        "[1,2]",
        "\"event\"",
        "x{\"a\":1}",
        "{a:1}",                      /* a stray character where a key must be */
        "{\"a\":1,}",                 /* a comma before the brace */
        "{\"a\" 1}",                  /* no colon */
        "{\"a\":1 \"b\":2}",          /* no comma */
        "{\"a\":[1}",                 /* mismatched brackets */
        "{\"a\":01,\"b\":",           /* leading zero */
        "{\"a\":-,\"b\":",            /* minus without digits */
        "{\"a\":1.,\"b\":",           /* dot without digits */
        "{\"a\":1e,\"b\":",           /* exponent without digits */
        "{\"a\":tx",                  /* bad literal */
        "{\"a\":\"\\x\",\"b\":",      /* bad escape */
        "{\"a\":\"\\u12g4\"",         /* bad \u escape */
        "{\"a\":\"tab\there\",\"b\"", /* raw control character */
        "{\"a\":1}x",                 /* garbage after the object */
        "{\"a\":1}}",
        "{\"a\":\"\xc3(\",\"b\"", /* a UTF-8 lead byte without its continuation */
        "{\"a\":\"\xff\",\"b\"",  /* not a UTF-8 lead byte */
        "{\"a\":\"\xc3\"",        /* a closing quote inside a sequence */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct res r = salvage(bad[i], T_US);
        if (r.rc != KT_EPARSE) {
            fail_msg("case %zu (%s) gave %d: %s", i, bad[i], r.rc, r.text ? r.text : "");
        }
    }
}

static void test_salvage_nesting_beyond_limit_is_cut_there(void **state)
{
    enum { DEEP = 10000 };
    char *in = malloc(DEEP * 6 + 64);
    size_t n = 0;
    assert_non_null(in);
    n += (size_t)sprintf(in, "{\"auditID\":\"a-6\",\"x\":");
    for (int i = 0; i < DEEP; i++) {
        n += (size_t)sprintf(in + n, "[\"v\",");
    }
    struct res r = salvage_n(in, n, T_US);
    assert_int_equal(r.rc, 0);
    assert_string_equal(str_at(r.tree, "auditID"), "a-6");
    assert_string_equal(str_at(r.tree, "stageTimestamp"), T_TEXT);
    /* the 255 arrays the limit lets in are kept, with their elements */
    const char *path[] = {"x", NULL};
    yajl_val v = yajl_tree_get(r.tree, path, yajl_t_array);
    int depth = 0;
    while (v != NULL && YAJL_IS_ARRAY(v)) {
        depth++;
        v = YAJL_GET_ARRAY(v)->len == 2 ? YAJL_GET_ARRAY(v)->values[1] : NULL;
    }
    assert_int_equal(depth, 255); /* 256 levels with the top-level object */
    res_free(&r);
    free(in);
}

static void test_salvage_appends_to_out(void **state)
{
    struct kt_buf out = {0};
    assert_int_equal(kt_buf_puts(&out, "prefix:"), 0);
    assert_int_equal(kt_salvage_event("{\"a\":\"b\",\"c", 9, 0, &out), 0);
    assert_int_equal(out.len, 7 + 9);
    assert_memory_equal(out.p, "prefix:{\"a\":\"b\"}", out.len);
    assert_int_equal(kt_salvage_event("{a", 2, 0, &out), KT_EPARSE);
    assert_int_equal(out.len, 7 + 9);
    kt_buf_free(&out);
}

/* ---- every cut of a realistic event ---- */

static void test_salvage_every_cut_of_a_realistic_event_parses(void **state)
{
    size_t full = strlen(EVENT);
    const char *audit = strstr(EVENT, "\"stage\"");    /* auditID is complete before it */
    const char *name = strstr(EVENT, ",\"apiGroup\""); /* objectRef.name is complete here */
    assert_non_null(audit);
    assert_non_null(name);
    assert_true(full > 2500);
    for (size_t n = 1; n <= full; n++) {
        struct res r = salvage_n(EVENT, n, T_US);
        assert_int_equal(r.rc, 0);
        assert_non_null(str_at(r.tree, "stageTimestamp"));
        assert_non_null(str_at(r.tree, "requestReceivedTimestamp"));
        if (n >= (size_t)(audit - EVENT)) {
            assert_string_equal(str_at(r.tree, "auditID"), "fef5a509-7203-4778-a628-bae206b35959");
            assert_string_equal(str_at(r.tree, "kind"), "Event");
        }
        if (n >= (size_t)(name - EVENT)) {
            assert_string_equal(str_at(r.tree, "verb"), "create");
            assert_string_equal(str_at(r.tree, "objectRef.name"), "api-21");
        }
        if (n == full) {
            assert_string_equal(r.text, EVENT);
        }
        res_free(&r);
        /* without a time the result still parses, and the timestamps only come from the text */
        r = salvage_n(EVENT, n, 0);
        assert_int_equal(r.rc, 0);
        if (n < (size_t)(strstr(EVENT, "\"requestReceivedTimestamp\"") - EVENT)) {
            assert_false(has_key(r.tree, "requestReceivedTimestamp"));
        }
        res_free(&r);
    }
}

/* Whatever garbage the bytes hold, salvage either refuses them or gives JSON yajl accepts. */
static void test_salvage_mutated_events_give_valid_json_or_parse_error(void **state)
{
    static const char alphabet[] = "{}[]\",:\\u0123456789eE+-.tfnrl ax\t\xc3\xa9\xff";
    size_t full = strlen(EVENT);
    char *buf = malloc(full);
    unsigned seed = 12345;
    int kept = 0;

    assert_non_null(buf);
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, EVENT, full);
        for (int m = 0; m < 1 + iter % 4; m++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % full;
            seed = seed * 1103515245u + 12345u;
            buf[at] = alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
        }
        seed = seed * 1103515245u + 12345u;
        struct res r = salvage_n(buf, 1 + (seed >> 8) % full, T_US);
        assert_true(r.rc == 0 || r.rc == KT_EPARSE);
        kept += r.rc == 0;
        res_free(&r);
    }
    assert_true(kept > 0);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_salvage_cut_inside_string_value_drops_that_member),
        cmocka_unit_test(test_salvage_cut_inside_key_drops_the_key),
        cmocka_unit_test(test_salvage_cut_after_colon_drops_the_key),
        cmocka_unit_test(test_salvage_cut_after_comma_drops_the_comma),
        cmocka_unit_test(test_salvage_cut_inside_nested_array_of_objects_keeps_complete_elements),
        cmocka_unit_test(test_salvage_cut_inside_escape_sequence_drops_the_string),
        cmocka_unit_test(test_salvage_number_or_literal_at_the_end_is_not_kept),
        cmocka_unit_test(test_salvage_cut_right_after_brace_gives_empty_object),
        cmocka_unit_test(test_salvage_complete_object_is_unchanged),
        cmocka_unit_test(test_salvage_timestamps_added_only_when_missing),
        cmocka_unit_test(test_salvage_timestamps_added_with_and_without_a_preceding_member),
        cmocka_unit_test(test_salvage_invalid_text_is_a_parse_error),
        cmocka_unit_test(test_salvage_nesting_beyond_limit_is_cut_there),
        cmocka_unit_test(test_salvage_appends_to_out),
        cmocka_unit_test(test_salvage_every_cut_of_a_realistic_event_parses),
        cmocka_unit_test(test_salvage_mutated_events_give_valid_json_or_parse_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
