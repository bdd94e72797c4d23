/*
 * test_rules_hostile.c: rule files written to break the loader (found by adversarial testing
 * and fuzzing). Each must load, or fail with one clear error naming file:line, in little time
 * and memory: never crash, never over-read, never fail later at match time. Also the default
 * pack compiled into the binary.
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

#include "decode.h"
#include "rules.h"
#include "rules_int.h"

static const char *const EVENT =
    "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Request\","
    "\"auditID\":\"h1\",\"stage\":\"ResponseComplete\",\"verb\":\"get\","
    "\"requestURI\":\"/api/v1/namespaces/web/secrets/s\",\"user\":{\"username\":\"alice\"},"
    "\"sourceIPs\":[\"10.0.0.1\"],\"objectRef\":{\"resource\":\"secrets\",\"namespace\":"
    "\"web\",\"name\":\"s\"},\"responseStatus\":{\"code\":200},"
    "\"requestObject\":{\"@\":\"at\",\"spec\":{\"x\":1}},"
    "\"stageTimestamp\":\"2024-05-01T00:00:00.000001Z\"}";

/* Load yaml (from a temporary file) into *rs; 0, or the error code with err filled. */
static int load(const char *yaml, struct kt_ruleset **rs, char *err, size_t errlen)
{
    char path[] = "/tmp/kt-hostile-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(yaml);
    assert_int_equal(write(fd, yaml, len), (ssize_t)len);
    close(fd);
    const char *files[1] = {path};
    int rc = kt_ruleset_load(files, 1, NULL, rs, err, errlen);
    unlink(path);
    return rc;
}

/* The load error of yaml, with the temporary file's name cut off ("FILE:LINE: ..." becomes
 * ":LINE: ..."); "" when it loaded. */
static const char *error_of(const char *yaml)
{
    static char err[1024];
    struct kt_ruleset *rs = NULL;
    err[0] = '\0';
    if (load(yaml, &rs, err, sizeof(err)) == 0) {
        kt_ruleset_destroy(rs);
        return "";
    }
    assert_null(rs);
    const char *colon = strchr(err, ':');
    return colon != NULL ? colon : err;
}

/* How many alerts yaml raises on EVENT (it must load). */
static size_t alerts_on_event(const char *yaml)
{
    struct kt_ruleset *rs = NULL;
    char err[1024] = "";
    if (load(yaml, &rs, err, sizeof(err)) != 0) {
        fail_msg("load failed: %s", err);
    }
    struct kt_batch *b = kt_batch_create();
    size_t len = strlen(EVENT);
    assert_int_equal(kt_batch_reserve(b, len), 0);
    memcpy(b->buf, EVENT, len);
    b->len = len;
    kt_batch_add_record(b)->len = len;
    struct kt_decoder *d = kt_decoder_create();
    assert_int_equal(kt_decode_batch(d, b), 0);
    kt_decoder_destroy(d);
    struct kt_matcher *m = kt_matcher_create(rs);
    assert_int_equal(kt_matcher_run(m, b), 0);
    size_t n = b->nalerts;
    kt_matcher_destroy(m);
    kt_batch_destroy(b);
    kt_ruleset_destroy(rs);
    return n;
}

/* A rule named r with condition cond (a heap string the caller frees). */
static char *rule_with(const char *cond)
{
#define RULE_FMT                                                                                   \
    "- rule: r\n  desc: d\n  condition: '%s'\n  output: o %%ka.verb\n  priority: WARNING\n"
    size_t n = sizeof(RULE_FMT) + strlen(cond);
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, RULE_FMT, cond);
#undef RULE_FMT
    return s;
}

/* s repeated n times, then tail (heap). */
static char *repeat(const char *s, size_t n, const char *tail)
{
    size_t len = strlen(s) * n + strlen(tail) + 1;
    char *out = malloc(len), *p = out;
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        p = stpcpy(p, s);
    }
    strcpy(p, tail);
    return out;
}

/* A rule whose condition is open repeated n times, inner, then n closing parentheses (heap). */
static char *nested_rule(const char *open, size_t n, const char *inner)
{
    char *head = repeat(open, n, inner), *close = repeat(")", n, "");
    char *cond = malloc(strlen(head) + strlen(close) + 1);
    assert_non_null(cond);
    strcat(strcpy(cond, head), close);
    char *yaml = rule_with(cond);
    free(cond);
    free(close);
    free(head);
    return yaml;
}

static void assert_error(const char *yaml, const char *want)
{
    const char *err = error_of(yaml);
    if (strstr(err, want) == NULL) {
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
    }
}

static void test_hostile_30000_parentheses_is_an_error_not_a_crash(void **state)
{
    char *yaml = nested_rule("(", 30000, "ka.verb = get");
    assert_error(yaml, ":1: rule r: condition nested deeper than 256");
    free(yaml);
}

static void test_hostile_100000_nots_is_an_error_not_a_crash(void **state)
{
    char *cond = repeat("not ", 100000, "ka.verb = get");
    char *yaml = rule_with(cond);
    assert_error(yaml, ":1: rule r: condition nested deeper than 256");
    free(yaml);
    free(cond);
}

/* Nesting near the limit loads and evaluates as written: 127 `not (` pairs, 254 levels (a
 * rule's condition sits in parentheses of its own; 127 nots are one: the event's verb is not list).
 */
static void test_hostile_nesting_at_the_limit_loads_and_matches(void **state)
{
    char *yaml = nested_rule("not (", COND_MAX_DEPTH / 2 - 1, "ka.verb = list");
    assert_int_equal(alerts_on_event(yaml), 1);
    free(yaml);
}

/* A chain of 40000 terms was a 40000-deep tree (every walk recursed that deep, and 100000
 * crashed); now a balanced one, evaluated left to right with the same answer (100000 terms are
 * past COND_MAX_NODES: an error). */
static void test_hostile_40000_term_chains_load_and_match(void **state)
{
    char *cond = repeat("ka.verb = get and ", 39999, "ka.user.name = alice");
    char *yaml = rule_with(cond);
    assert_int_equal(alerts_on_event(yaml), 1);
    free(yaml);
    free(cond);
    cond = repeat("ka.verb = list or ", 39999, "ka.user.name = alice");
    yaml = rule_with(cond);
    assert_int_equal(alerts_on_event(yaml), 1);
    free(yaml);
    free(cond);
    cond = repeat("ka.verb = get and ", 39999, "ka.user.name = bob");
    yaml = rule_with(cond);
    assert_int_equal(alerts_on_event(yaml), 0);
    free(yaml);
    free(cond);
}

/* Chains inside nesting: 150 levels (under the nesting limit) of 4-term chains are a tree of
 * some 300 levels, which the height limit stops (every walk of the tree recurses that deep). */
static void test_hostile_chains_in_nesting_stop_at_the_height_limit(void **state)
{
    char *yaml = nested_rule("ka.verb = get and ka.verb = get and ka.verb = get and (", 150,
                             "ka.verb = get");
    assert_error(
        yaml,
        ":1: rule r: condition nested deeper than 256 (parentheses, not, macros, and/or chains)");
    free(yaml);
}

/* Macros that name the previous one twice, 24 deep: 2^24 terms once inlined. */
static void test_hostile_doubling_macros_stop_at_the_node_budget(void **state)
{
    char yaml[4096];
    size_t n = (size_t)snprintf(yaml, sizeof(yaml), "- macro: m0\n  condition: ka.verb = get\n");
    for (int i = 1; i <= 24; i++) {
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "- macro: m%d\n  condition: m%d or m%d\n",
                              i, i - 1, i - 1);
    }
    snprintf(yaml + n, sizeof(yaml) - n,
             "- rule: r\n  desc: d\n  condition: m24\n  output: o\n  priority: INFO\n");
    assert_error(yaml, ": rule r: conditions have more than 100000 terms");
}

/* Lists of lists, 8 copies a level, 12 levels: 8^12 values once expanded. */
static void test_hostile_nested_lists_stop_at_the_value_budget(void **state)
{
    char yaml[8192];
    size_t n = (size_t)snprintf(yaml, sizeof(yaml), "- list: l0\n  items: [a, b, c, d]\n");
    for (int i = 1; i < 12; i++) {
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n,
                              "- list: l%d\n  items: [l%d, l%d, l%d, l%d, l%d, l%d, l%d, l%d]\n", i,
                              i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    }
    snprintf(yaml + n, sizeof(yaml) - n,
             "- rule: r\n  desc: d\n  condition: ka.verb in (l11)\n  output: o\n"
             "  priority: INFO\n");
    assert_error(yaml, ": rule r: lists expand to more than 250000 values");
}

/* by: [c: ] passed the load and crashed on the first matching event (a -1-length key). */
static void test_hostile_field_lists_hold_only_values(void **state)
{
    static const char *const corr =
        "- count: c\n  desc: d\n  condition: ka.verb = get\n  by: [c: ]\n  window: 1m\n"
        "  threshold: 2\n  output: o\n  priority: INFO\n";
    assert_error(corr, ":4: item c: by: item 1 is a mapping, not a value");
    static const char *const seq =
        "- sequence: s\n  desc: d\n  window: 1m\n  output: o\n  priority: INFO\n  steps:\n"
        "    - condition: ka.verb = get\n      by: [ka.user.name]\n"
        "    - condition: ka.verb = list\n      by: [[ka.user.name]]\n";
    assert_error(seq, ":10: item s: by: item 1 is a list, not a value");
    static const char *const sup =
        "- rule: r\n  desc: d\n  condition: ka.verb = get\n  output: o\n  priority: INFO\n"
        "  suppress: {for: 1m, by: [{a: b}]}\n";
    assert_error(sup, ":6: item r: suppress: by: item 1 is a mapping");
    static const char *const list = "- list: l\n  items: [a, {b: c}]\n";
    assert_error(list, ":2: item l: items: item 2 is a mapping");
    static const char *const tags =
        "- rule: r\n  desc: d\n  condition: ka.verb = get\n  output: o\n  priority: INFO\n"
        "  tags: [a, [b]]\n";
    assert_error(tags, ":6: item r: tags: item 2 is a list");
    static const char *const exc =
        "- rule: r\n  desc: d\n  condition: ka.verb = get\n  output: o\n  priority: INFO\n"
        "  exceptions:\n    - name: e\n      fields: [ka.user.name, {x: y}]\n"
        "      values: [[a, b]]\n";
    assert_error(exc, ":8: item r: exception fields: item 2 is a mapping");
    static const char *const distinct =
        "- distinct: d\n  desc: d\n  condition: ka.verb = get\n  by: [ka.user.name]\n"
        "  field: [ka.target.name]\n  window: 1m\n  threshold: 2\n  output: o\n"
        "  priority: INFO\n";
    assert_error(distinct, "a distinct needs a field:");
    static const char *const unknown =
        "- count: c\n  desc: d\n  condition: ka.verb = get\n  by: [ka.nothing]\n  window: 1m\n"
        "  threshold: 2\n  output: o\n  priority: INFO\n";
    assert_error(unknown, "unknown field in by: ka.nothing");
}

/* jevt.value[@]: '@' marks the table's object fields; a user's pointer is only a pointer. */
static void test_hostile_user_pointers_are_never_internal_markers(void **state)
{
    char *yaml = rule_with("jevt.value[@] exists or jevt.value[@pod] exists");
    assert_int_equal(alerts_on_event(yaml), 0);
    free(yaml);
    yaml = rule_with("jevt.value[/requestObject/@] = at");
    assert_int_equal(alerts_on_event(yaml), 1);
    free(yaml);
}

/* Exceptions were written into a 4096-byte buffer with snprintf's return added up (past
 * the end), and values were pasted in quotes unescaped. */
static void test_hostile_exception_values_of_any_length_and_text(void **state)
{
    char *name = repeat("a", 6000, "");
#define EXC_FMT                                                                                    \
    "- rule: r\n  desc: d\n  condition: ka.verb = get\n  output: o\n  priority: INFO\n"            \
    "  exceptions:\n    - name: e\n      fields: [ka.user.name, ka.target.name]\n"                 \
    "      comps: [=, in]\n      values:\n        - [%s, [x]]\n"                                   \
    "        - [alice, ['s\" or ka.verb = \"get']]\n"
    char *yaml = malloc(sizeof(EXC_FMT) + strlen(name));
    assert_non_null(yaml);
    sprintf(yaml, EXC_FMT, name);
#undef EXC_FMT
    /* neither row excepts the event: the quote is part of a value, not condition text */
    assert_int_equal(alerts_on_event(yaml), 1);
    free(yaml);
    free(name);
    static const char *const excepted =
        "- rule: r\n  desc: d\n  condition: ka.verb = get\n  output: o\n  priority: INFO\n"
        "  exceptions:\n    - name: e\n      fields: ka.user.name\n      comps: =\n"
        "      values: [bob, alice]\n";
    assert_int_equal(alerts_on_event(excepted), 0);
}

static void test_hostile_malformed_exceptions_are_errors(void **state)
{
    static const char *const head =
        "- rule: r\n  desc: d\n  condition: ka.verb = get\n  output: o\n  priority: INFO\n";
    static const struct {
        const char *exc, *want;
    } cases[] = {
        {"  exceptions:\n    - name: e\n      fields: [ka.user.name, ka.verb]\n"
         "      values: [[alice]]\n",
         ":9: item r: an exception's values row needs 2 values"},
        {"  exceptions:\n    - name: e\n      fields: [ka.user.name]\n      comps: [\"= x or\"]\n"
         "      values: [[alice]]\n",
         "exception comps: unknown operator '= x or'"},
        {"  exceptions:\n    - name: e\n      fields: [ka.user.name]\n      comps: [=, =]\n"
         "      values: [[alice]]\n",
         "one comps: operator per field"},
        {"  exceptions:\n    - name: e\n      values: [[alice]]\n", "an exception needs fields:"},
        {"  exceptions:\n    - name: e\n      fields: [\"ka.verb = x or ka.verb\"]\n"
         "      values: [[alice]]\n",
         ":8: item r: exception fields: unknown field 'ka.verb = x or ka.verb'"},
        {"  exceptions:\n    - name: e\n      fields: [\"ka.uri.param[a] or ka.uri.param[b]\"]\n"
         "      values: [[alice]]\n",
         "exception fields: unknown field"},
        {"  exceptions: {name: e}\n", "exceptions: is a list"},
        {"  exceptions:\n    - [a]\n", "an exception is a mapping"},
        {"  exceptions:\n    - name: e\n      fields: [ka.user.name]\n      values: [[[a]]]\n",
         "exception value for ka.user.name =: one value"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml), "%s%s", head, cases[i].exc);
        assert_error(yaml, cases[i].want);
    }
}

/* Careless files: what used to load silently wrong now says so. */
static void test_hostile_careless_files_are_errors(void **state)
{
    assert_error("- rule: r\n  desc: d\n  condition: ka.verb = get\n  condition: ka.verb = list\n"
                 "  output: o\n  priority: INFO\n",
                 ":4: item r: key 'condition' given twice");
    assert_error("- rule: r\n  desc: d\n  condition: ka.verb = get\n  output: o\n"
                 "  priority: INFO\n---\n- rule: s\n",
                 ": a rules file is one YAML document");
    assert_error("- count: c\n  desc: d\n  condition: ka.verb = get\n  by: [ka.user.name]\n"
                 "  window: nan\n  threshold: 2\n  output: o\n  priority: INFO\n",
                 ":5: item c: window: not a duration");
    assert_error("- count: c\n  desc: d\n  condition: ka.verb = get\n  by: [ka.user.name]\n"
                 "  window: 1e300d\n  threshold: 2\n  output: o\n  priority: INFO\n",
                 "window: not a duration");
    assert_error("- count: c\n  desc: d\n  condition: ka.verb = get\n  by: [ka.user.name]\n"
                 "  window: 1m\n  threshold: 99999999999999999999999\n  output: o\n"
                 "  priority: INFO\n",
                 "threshold: needs a whole number");
    assert_error("- list: l\n  items: [a]\n  append: true\n", ": item l: append to an undefined");
    assert_error("- count: c\n  desc: d\n  condition: ka.verb = get\n  by: [\"ka.uri.param[x\"]\n"
                 "  window: 1m\n  threshold: 2\n  output: o\n  priority: INFO\n",
                 "unknown field in by: ka.uri.param[x");
    assert_error("- list: l\n  items: [a]\n  append: yes\n",
                 ":3: item l: append: is true or false");
    assert_error("- rule: \n  desc: d\n  condition: ka.verb = get\n  output: o\n  priority: INFO\n",
                 ":1: a rule needs a name");
    assert_error("- list: a\n  items: [b]\n- list: b\n  items: [a]\n- rule: r\n  desc: d\n"
                 "  condition: ka.verb in (a)\n  output: o\n  priority: INFO\n",
                 ":5: rule r: lists nested deeper than 16 (list a names itself?)");
    assert_error("- rule: r\n  condition: ka.verb = get\n  append: true\n",
                 ": item r: append to an undefined rule");
    assert_error(
        "- rule: r\n  desc: d\n  condition: ka.verb regex \"(\"\n  output: o\n  priority: INFO\n",
        "bad regex");
    assert_error(
        "- rule: r\n  desc: d\n  condition: ka.verb ~= get\n  output: o\n  priority: INFO\n",
        "undefined macro or missing operator");
    assert_error("- rule: \"\\xff\xff\"\n", ": malformed YAML");
    assert_string_equal(error_of("- list: l\n  items: []\n- rule: r\n  desc: d\n"
                                 "  condition: ka.verb in (l)\n  output: o\n  priority: INFO\n"),
                        ""); /* an empty list is a list */
}

/* Billion laughs: aliases are shared nodes in libyaml, and a list of lists is an error. */
static void test_hostile_aliases_do_not_multiply(void **state)
{
    char yaml[4096];
    size_t n = (size_t)snprintf(yaml, sizeof(yaml), "- list: l0\n  items: &a0 [x, x, x, x]\n");
    for (int i = 1; i < 10; i++) {
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n,
                              "- list: l%d\n  items: &a%d [*a%d, *a%d, *a%d, *a%d]\n", i, i, i - 1,
                              i - 1, i - 1, i - 1);
    }
    assert_error(yaml, "item l1: items: item 1 is a list, not a value");
    assert_string_equal(error_of("- list: l\n  items: &x [a, b]\n- list: m\n  items: *x\n"
                                 "- rule: r\n  desc: d\n  condition: ka.verb in (m)\n"
                                 "  output: o\n  priority: INFO\n"),
                        "");
}

/* 70000 distinct pointers took 14 s to load (each searched the others) and then failed every
 * event (the walker takes at most 65535): the rule set reads at most COND_MAX_FIELDS fields. */
static void test_hostile_distinct_fields_are_bounded(void **state)
{
    size_t cap = 5000 * 48 + 256, n = 0;
    char *cond = malloc(cap);
    assert_non_null(cond);
    for (int i = 0; i < 5000; i++) {
        n += (size_t)snprintf(cond + n, cap - n, "%sjevt.value[/requestObject/a%d] exists",
                              i > 0 ? " or " : "", i);
    }
    char *yaml = rule_with(cond);
    assert_error(yaml, ":1: rule r: more than 4096 distinct fields in the rule set: "
                       "jevt.value[/requestObject/a4096]");
    free(yaml);
    free(cond);
}

/* Items are found by name through a hash index (20000 lists took 2 s to load, each name
 * compared with every earlier one): appends, overrides and references still find theirs. */
static void test_hostile_many_items_found_by_name(void **state)
{
    enum { N = 5000 };
    size_t cap = (size_t)N * 200 + 1024, n = 0;
    char *yaml = malloc(cap);
    assert_non_null(yaml);
    for (int i = 0; i < N; i++) {
        n += (size_t)snprintf(yaml + n, cap - n,
                              "- list: l%d\n  items: [x%d]\n- rule: r%d\n  desc: d\n"
                              "  condition: ka.verb in (l%d)\n  output: o\n  priority: INFO\n",
                              i, i, i, i);
    }
    snprintf(yaml + n, cap - n,
             "- list: l17\n  items: [get]\n  append: true\n"
             "- rule: r4999\n  desc: d\n  condition: ka.verb = get\n  output: o\n"
             "  priority: INFO\n"
             "- count: c\n  desc: d\n  rule: r17\n  by: [ka.user.name]\n  window: 1m\n"
             "  threshold: 1\n  output: o\n  priority: INFO\n");
    struct kt_ruleset *rs = NULL;
    char err[512];
    assert_int_equal(load(yaml, &rs, err, sizeof(err)), 0);
    assert_int_equal(kt_ruleset_count(rs), N + 1); /* r4999 replaced, not added */
    kt_ruleset_destroy(rs);
    assert_int_equal(alerts_on_event(yaml), 2); /* r17 (its list appended to) and r4999 */
    free(yaml);
}

/* The pack compiled into the binary is the file's text, byte for byte, and loads alike. */
static void test_hostile_builtin_pack_is_the_file(void **state)
{
    const struct kt_rules_src *b = kt_rules_builtin();
    assert_string_equal(b->name, "<builtin>/k8s_audit_rules.yaml");
    FILE *fp = fopen(KT_TEST_FIXTURES "/../../rules/k8s_audit_rules.yaml", "rb");
    assert_non_null(fp);
    char *text = malloc(b->len + 2);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, b->len + 1, fp), b->len);
    fclose(fp);
    assert_memory_equal(text, b->text, b->len);
    free(text);
    struct kt_ruleset *from_mem = NULL, *from_file = NULL;
    char err[512];
    assert_int_equal(kt_ruleset_load_srcs(b, 1, NULL, &from_mem, err, sizeof(err)), 0);
    const char *files[1] = {KT_TEST_FIXTURES "/../../rules/k8s_audit_rules.yaml"};
    assert_int_equal(kt_ruleset_load(files, 1, NULL, &from_file, err, sizeof(err)), 0);
    assert_int_equal(kt_ruleset_count(from_mem), kt_ruleset_count(from_file));
    assert_true(kt_ruleset_count(from_mem) > 50);
    for (size_t i = 0; i < kt_ruleset_count(from_mem); i++) {
        struct kt_rule_info a, f;
        kt_ruleset_info(from_mem, i, &a);
        kt_ruleset_info(from_file, i, &f);
        assert_string_equal(a.name, f.name);
        assert_true(strncmp(a.source, "<builtin>/k8s_audit_rules.yaml:", 31) == 0);
        assert_string_equal(strchr(a.source, ':'), strrchr(f.source, ':'));
    }
    kt_ruleset_destroy(from_mem);
    kt_ruleset_destroy(from_file);
}

/* A rule file in memory is named in its errors like a file. */
static void test_hostile_errors_in_memory_name_the_source(void **state)
{
    static const char text[] = "- rule: r\n  desc: d\n  condition: ka.verb = get\n"
                               "  output: o\n  priority: LOUD\n";
    struct kt_rules_src src = {"<builtin>/k8s_audit_rules.yaml", text, sizeof(text) - 1};
    struct kt_ruleset *rs = NULL;
    char err[512];
    assert_int_equal(kt_ruleset_load_srcs(&src, 1, NULL, &rs, err, sizeof(err)), KT_EPARSE);
    assert_null(rs);
    assert_true(strncmp(err, "<builtin>/k8s_audit_rules.yaml:1: item r", 40) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_30000_parentheses_is_an_error_not_a_crash),
        cmocka_unit_test(test_hostile_100000_nots_is_an_error_not_a_crash),
        cmocka_unit_test(test_hostile_nesting_at_the_limit_loads_and_matches),
        cmocka_unit_test(test_hostile_40000_term_chains_load_and_match),
        cmocka_unit_test(test_hostile_chains_in_nesting_stop_at_the_height_limit),
        cmocka_unit_test(test_hostile_doubling_macros_stop_at_the_node_budget),
        cmocka_unit_test(test_hostile_nested_lists_stop_at_the_value_budget),
        cmocka_unit_test(test_hostile_field_lists_hold_only_values),
        cmocka_unit_test(test_hostile_user_pointers_are_never_internal_markers),
        cmocka_unit_test(test_hostile_exception_values_of_any_length_and_text),
        cmocka_unit_test(test_hostile_malformed_exceptions_are_errors),
        cmocka_unit_test(test_hostile_careless_files_are_errors),
        cmocka_unit_test(test_hostile_aliases_do_not_multiply),
        cmocka_unit_test(test_hostile_distinct_fields_are_bounded),
        cmocka_unit_test(test_hostile_many_items_found_by_name),
        cmocka_unit_test(test_hostile_builtin_pack_is_the_file),
        cmocka_unit_test(test_hostile_errors_in_memory_name_the_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
