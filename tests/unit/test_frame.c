/*
 * test_frame.c: the JSON framer finds every value, whatever the shape, chunking or damage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "../fuzz/frame_oracle.h"

/* What framing produced, flattened into text: "V off line text" or "R off line reason". */
struct result {
    char text[16384];
    size_t len;
    int values;
    int rejects;
};

static void note(struct result *r, const struct kt_frame *f)
{
    if (f->kind == KT_FRAME_VALUE) {
        r->values++;
        r->len += (size_t)snprintf(r->text + r->len, sizeof(r->text) - r->len, "V %llu %llu %.*s\n",
                                   (unsigned long long)f->off, (unsigned long long)f->line,
                                   (int)f->len, f->ptr);
    } else {
        r->rejects++;
        r->len +=
            (size_t)snprintf(r->text + r->len, sizeof(r->text) - r->len, "R %llu %llu %s\n",
                             (unsigned long long)f->off, (unsigned long long)f->line, f->reason);
    }
}

/* Frame input fed in chunks of `chunk` bytes (0: all at once), as a source would. */
static void frame(const char *in, size_t chunk, size_t max, int mode, struct result *r)
{
    struct kt_framer fr;
    size_t n = strlen(in), fed = 0;
    char *win = malloc(n + 1);
    size_t wlen = 0;
    memset(r, 0, sizeof(*r));
    kt_framer_init(&fr, mode, max, 0, 1);
    for (;;) {
        struct kt_frame f;
        int eof = fed == n;
        kt_framer_next(&fr, win, wlen, eof, &f);
        if (f.kind != KT_FRAME_MORE) {
            note(r, &f);
            continue;
        }
        if (eof) {
            break;
        }
        size_t keep = kt_framer_keep(&fr);
        memmove(win, win + keep, wlen - keep);
        wlen -= keep;
        kt_framer_shift(&fr, keep);
        size_t take = chunk == 0 || n - fed < chunk ? n - fed : chunk;
        memcpy(win + wlen, in + fed, take);
        wlen += take;
        fed += take;
    }
    free(win);
}

static const char *const EV1 = "{\"auditID\":\"a\",\"msg\":\"brace } and \\\" quote\"}";
static const char *const EV2 = "{\"auditID\":\"b\",\"nested\":{\"x\":[1,{\"y\":2}]}}";

static void test_frame_json_lines_with_offsets_and_lines(void **state)
{
    (void)state;
    char in[512];
    snprintf(in, sizeof(in), "%s\n%s\n", EV1, EV2);
    struct result r;
    frame(in, 0, 1 << 20, KT_FRAME_TOP, &r);
    char want[512];
    snprintf(want, sizeof(want), "V 0 1 %s\nV %zu 2 %s\n", EV1, strlen(EV1) + 1, EV2);
    assert_string_equal(r.text, want);
}

static void test_frame_every_chunk_size_gives_the_same_frames(void **state)
{
    (void)state;
    char in[2048];
    snprintf(in, sizeof(in),
             "%s\n{\n  \"auditID\": \"p\",\n  \"list\": [\n    {}\n  ]\n}\n"
             "[%s,\n%s]\n{\"kind\":\"EventList\",\"items\":[%s,%s],\"metadata\":{\"x\":\"]}\"}}\n"
             "garbage here\n%s\n",
             EV1, EV1, EV2, EV2, EV1, EV2);
    struct result whole, part;
    frame(in, 0, 1 << 20, KT_FRAME_TOP, &whole);
    assert_int_equal(whole.values, 7);
    assert_int_equal(whole.rejects, 1);
    for (size_t chunk = 1; chunk < 64; chunk++) {
        frame(in, chunk, 1 << 20, KT_FRAME_TOP, &part);
        assert_string_equal(part.text, whole.text);
    }
}

static void test_frame_pretty_printed_value_spans_lines(void **state)
{
    (void)state;
    const char *in = "{\n  \"auditID\": \"p\",\n  \"user\": {\n    \"username\": \"x\"\n  }\n}\n";
    struct result r;
    frame(in, 0, 1 << 20, KT_FRAME_TOP, &r);
    assert_int_equal(r.values, 1);
    assert_int_equal(r.rejects, 0);
}

static void test_frame_eventlist_items_before_kind(void **state)
{
    (void)state;
    char in[512];
    snprintf(in, sizeof(in), "{\"items\":[%s,%s],\"kind\":\"EventList\"}\n%s\n", EV1, EV2, EV1);
    struct result r;
    frame(in, 0, 1 << 20, KT_FRAME_TOP, &r);
    assert_int_equal(r.values, 3);
    assert_int_equal(r.rejects, 0);
    assert_non_null(strstr(r.text, EV2));
}

static void test_frame_truncated_line_rejected_next_line_kept(void **state)
{
    (void)state;
    char in[512];
    snprintf(in, sizeof(in), "{\"auditID\":\"cut\",\"user\":{\"username\":\"x\"\n%s\n", EV2);
    struct result r;
    frame(in, 0, 1 << 20, KT_FRAME_TOP, &r);
    assert_int_equal(r.rejects, 1);
    assert_int_equal(r.values, 1);
    assert_non_null(strstr(r.text, "R 0 1 truncated JSON"));
    char want[256];
    snprintf(want, sizeof(want), "V 40 2 %s", EV2);
    assert_non_null(strstr(r.text, want));
}

static void test_frame_newline_inside_string_is_a_reject(void **state)
{
    (void)state;
    char in[512];
    snprintf(in, sizeof(in), "{\"auditID\":\"cut\n%s\n", EV1);
    struct result r;
    frame(in, 0, 1 << 20, KT_FRAME_TOP, &r);
    assert_int_equal(r.rejects, 1);
    assert_int_equal(r.values, 1);
    assert_non_null(strstr(r.text, "line break inside a string"));
}

static void test_frame_garbage_lines_rejected_one_each(void **state)
{
    (void)state;
    char in[512];
    snprintf(in, sizeof(in), "hello\nworld ]\n%s\n", EV1);
    struct result r;
    frame(in, 0, 1 << 20, KT_FRAME_TOP, &r);
    assert_int_equal(r.rejects, 2);
    assert_int_equal(r.values, 1);
    assert_non_null(strstr(r.text, "R 0 1 not JSON"));
    assert_non_null(strstr(r.text, "R 6 2 not JSON"));
}

static void test_frame_oversized_value_rejected_with_first_kb(void **state)
{
    (void)state;
    static char in[20000];
    size_t n = (size_t)snprintf(in, sizeof(in), "{\"auditID\":\"big\",\"pad\":\"");
    memset(in + n, 'x', 5000);
    n += 5000;
    n += (size_t)snprintf(in + n, sizeof(in) - n, "\"}\n%s\n", EV1);
    struct kt_framer fr;
    struct kt_frame f;
    kt_framer_init(&fr, KT_FRAME_TOP, 1000, 0, 1);
    kt_framer_next(&fr, in, n, 1, &f);
    assert_int_equal(f.kind, KT_FRAME_REJECT);
    assert_string_equal(f.reason, "event larger than --max-event-size");
    assert_int_equal(f.off, 0);
    assert_int_equal(f.len, 1024);
    assert_memory_equal(f.ptr, "{\"auditID\":\"big\"", 16);
    kt_framer_next(&fr, in, n, 1, &f);
    assert_int_equal(f.kind, KT_FRAME_VALUE);
    assert_int_equal(f.len, strlen(EV1));
    /* and in small chunks the framer never asks to keep more than max of the value */
    struct result r;
    frame(in, 7, 1000, KT_FRAME_TOP, &r);
    assert_int_equal(r.rejects, 1);
    assert_int_equal(r.values, 1);
}

static void test_frame_truncated_at_eof_is_a_reject(void **state)
{
    (void)state;
    struct result r;
    frame("{\"auditID\":\"a\",\"x\":[1,2", 0, 1 << 20, KT_FRAME_TOP, &r);
    assert_int_equal(r.rejects, 1);
    assert_non_null(strstr(r.text, "truncated JSON at end of input"));
}

static void test_frame_resume_inside_items_from_checkpoint(void **state)
{
    (void)state;
    char in[512];
    int n =
        snprintf(in, sizeof(in), "{\"kind\":\"EventList\",\"items\":[%s,%s]}\n%s\n", EV1, EV2, EV1);
    /* frame the first item, then take the checkpoint */
    struct kt_framer fr;
    struct kt_frame f;
    kt_framer_init(&fr, KT_FRAME_TOP, 1 << 20, 0, 1);
    kt_framer_next(&fr, in, (size_t)n, 1, &f);
    assert_int_equal(f.kind, KT_FRAME_VALUE);
    struct kt_frame_at at;
    kt_framer_at(&fr, &at);
    assert_int_equal(at.mode, KT_FRAME_ITEMS);
    /* a new framer resumes there, in ITEMS mode, on the rest of the stream */
    struct result r;
    frame(in + at.off, 0, 1 << 20, KT_FRAME_ITEMS, &r);
    assert_int_equal(r.values, 2);
    assert_int_equal(r.rejects, 0);
    assert_non_null(strstr(r.text, EV2));
}

static void test_frame_resume_inside_array(void **state)
{
    (void)state;
    char in[512];
    snprintf(in, sizeof(in), ",\n%s\n]\n%s\n", EV2, EV1);
    struct result r;
    frame(in, 0, 1 << 20, KT_FRAME_ARRAY, &r);
    assert_int_equal(r.values, 2);
    assert_int_equal(r.rejects, 0);
}

/* A pretty-printed Event as jq prints it, with its auditID. */
static size_t pretty(char *out, size_t cap, const char *id)
{
    return (size_t)snprintf(out, cap,
                            "{\n  \"kind\": \"Event\",\n  \"auditID\": \"%s\",\n  \"user\": {\n"
                            "    \"username\": \"x\",\n    \"groups\": [\n      \"g\"\n    ]\n"
                            "  },\n  \"verb\": \"get\"\n}\n",
                            id);
}

static void test_frame_pretty_event_cut_midway_loses_none_after_it(void **state)
{
    (void)state;
    char one[512], in[4096];
    size_t n = pretty(one, sizeof(one), "p0");
    /* cut inside a string, then cut right after a comma at a line's end */
    static const char *const cuts[] = {"\"user", "\"username\": \"x\",\n"};
    for (size_t c = 0; c < 2; c++) {
        size_t len = (size_t)(strstr(one, cuts[c]) - one) + strlen(cuts[c]);
        memcpy(in, one, len);
        if (in[len - 1] != '\n') {
            in[len++] = '\n'; /* the writer died mid-line; the next one starts afresh */
        }
        for (int i = 1; i <= 3; i++) {
            char id[8];
            snprintf(id, sizeof(id), "p%d", i);
            len += pretty(in + len, sizeof(in) - len, id);
        }
        in[len] = '\0';
        struct result r;
        frame(in, 0, 1 << 20, KT_FRAME_TOP, &r);
        assert_int_equal(r.rejects, 1);
        assert_int_equal(r.values, 3);
        assert_non_null(strstr(r.text, "R 0 1 "));
        char want[32];
        snprintf(want, sizeof(want), "V %zu ", len - 3 * n);
        assert_non_null(strstr(r.text, want));
    }
}

static void test_frame_value_cut_after_another_on_its_line_loses_none_after_it(void **state)
{
    (void)state;
    static char in[8192];
    size_t len = (size_t)snprintf(in, sizeof(in), "%s {\"auditID\":\"cut\",\"x\":\n", EV1);
    for (int i = 0; i < 48; i++) {
        len += (size_t)snprintf(in + len, sizeof(in) - len, "{\"auditID\":\"e%d\"}\n", i);
    }
    struct result r;
    frame(in, 0, 1 << 20, KT_FRAME_TOP, &r);
    assert_int_equal(r.values, 49);
    assert_int_equal(r.rejects, 1);
    char want[64];
    snprintf(want, sizeof(want), "R %zu 1 truncated JSON: the next line", strlen(EV1) + 1);
    assert_non_null(strstr(r.text, want));
    assert_non_null(strstr(r.text, "2 {\"auditID\":\"e0\"}"));
}

static void test_frame_broken_items_and_stamped_lines_lose_none_after_them(void **state)
{
    (void)state;
    /* an EventList with a broken element; a pretty array with one; CloudWatch lines, one cut */
    const char *in = "{\"kind\":\"EventList\",\"items\":[{\"a\":1},{\"a\":\n"
                     "{\"a\":3}\n"
                     "[\n  {\n    \"a\": 4,\n    \"b\": [\n  {\n    \"a\": 5\n  }\n]\n"
                     "2024-05-01T00:00:00.000Z {\"a\":6,\"b\":\"cut\n"
                     "2024-05-01T00:00:01.000Z {\"a\":7}\n";
    struct result r;
    frame(in, 0, 1 << 20, KT_FRAME_TOP, &r);
    assert_string_equal(r.text, "V 29 1 {\"a\":1}\n"
                                "R 37 1 truncated JSON: the next line starts a new value\n"
                                "V 43 2 {\"a\":3}\n"
                                "R 55 4 truncated JSON: the next line starts a new value\n"
                                "V 82 7 {\n    \"a\": 5\n  }\n"
                                "R 126 11 invalid JSON: line break inside a string (truncated?)\n"
                                "V 167 12 {\"a\":7}\n");
}

/* A value of exactly len bytes: {"p":"xxx...x"}. */
static size_t value_of(char *out, size_t len)
{
    memcpy(out, "{\"p\":\"", 6);
    memset(out + 6, 'x', len - 8);
    memcpy(out + len - 2, "\"}", 2);
    return len;
}

static void test_frame_max_event_size_is_exact_whatever_the_chunking(void **state)
{
    (void)state;
    static char in[8192];
    size_t len = value_of(in, 2048);
    in[len++] = '\n';
    len += value_of(in + len, 2049);
    in[len++] = '\n';
    in[len] = '\0';
    for (uint64_t way = 0; way < 40; way++) {
        struct fo_run r = {0};
        fo_frame(in, len, 2048, KT_FRAME_TOP, way, &r);
        assert_false(r.broken);
        assert_int_equal(r.n, 2);
        assert_int_equal(r.v[0].kind, KT_FRAME_VALUE);
        assert_int_equal(r.v[0].len, 2048);
        assert_int_equal(r.v[1].kind, KT_FRAME_REJECT);
        assert_string_equal(r.v[1].reason, KT_FRAME_OVERSIZE);
        free(r.v);
    }
}

static void test_frame_nothing_inside_an_oversized_value_is_emitted(void **state)
{
    (void)state;
    /* an inner object that would pass for an Event, across every read boundary */
    static char in[4096];
    size_t len = (size_t)snprintf(in, sizeof(in), "{\"p\":\"%01500d\",\"inner\":", 0);
    len += (size_t)snprintf(in + len, sizeof(in) - len,
                            "{\"kind\":\"Event\",\"auditID\":\"forged\"},\"q\":\"%01500d\"}\n%s\n",
                            0, EV1);
    for (uint64_t way = 0; way < 200; way++) {
        struct fo_run r = {0};
        fo_frame(in, len, 2048, KT_FRAME_TOP, way, &r);
        assert_false(r.broken);
        assert_int_equal(r.n, 2);
        assert_int_equal(r.v[0].kind, KT_FRAME_REJECT);
        assert_string_equal(r.v[0].reason, KT_FRAME_OVERSIZE);
        assert_int_equal(r.v[0].len, 1024);
        assert_int_equal(r.v[1].kind, KT_FRAME_VALUE);
        assert_int_equal(r.v[1].len, strlen(EV1));
        free(r.v);
    }
}

static void test_frame_resumed_framer_goes_on_with_lines_and_columns(void **state)
{
    (void)state;
    char in[512];
    int n = snprintf(in, sizeof(in), "%s\n%s {\"cut\":\n\ngarbage\n%s\n", EV1, EV2, EV1);
    /* take the checkpoint after the second value, mid-line */
    struct kt_framer fr;
    struct kt_frame f;
    struct kt_frame_at at;
    kt_framer_init(&fr, KT_FRAME_TOP, 1 << 20, 0, 1);
    kt_framer_next(&fr, in, (size_t)n, 1, &f);
    kt_framer_next(&fr, in, (size_t)n, 1, &f);
    kt_framer_at(&fr, &at);
    assert_int_equal(at.off, strlen(EV1) + 1 + strlen(EV2));
    assert_int_equal(at.line, 2);
    assert_int_equal(at.col, strlen(EV2));
    /* a fresh framer from there: lines go on, and "{"cut": is cut where it was */
    kt_framer_resume(&fr, 1 << 20, &at);
    struct result r = {0};
    for (;;) {
        kt_framer_next(&fr, in + at.off, (size_t)n - at.off, 1, &f);
        if (f.kind == KT_FRAME_MORE) {
            break;
        }
        note(&r, &f);
    }
    /* garbage is inside the cut value: only a '{' at its column or left of it ends it */
    assert_int_equal(r.rejects, 1);
    assert_int_equal(r.values, 1);
    char want[512];
    snprintf(want, sizeof(want), "R %llu 2 truncated JSON: the next line starts a new value",
             (unsigned long long)at.off + 1);
    assert_non_null(strstr(r.text, want));
    snprintf(want, sizeof(want), "V %llu 5 %s", (unsigned long long)at.off + 18, EV1);
    assert_non_null(strstr(r.text, want));
}

/* Good and broken inputs: every one is framed the same in one piece, byte by byte, and in
 * random chunks with random restarts, with a large and a small size limit. */
static const char *const corpus[] = {
    "{\"a\":1}\n{\"a\":2}\n",
    "{\"a\":1}\r\n{\"a\":\"x\\\"}\\\\\"}\r\n",
    "{\"a\":1} {\"b\":\n{\"c\":3}\n",
    "{\n  \"a\": {\n    \"b\": \"cut\n{\n  \"a\": 2\n}\n",
    "{\n  \"a\": 1,\n{\n  \"a\": 2\n}\n",
    "[\n  {\"a\":1},\n  {\"a\":\n  {\"a\":3}\n]\n{\"a\":4}\n",
    "{\"kind\":\"EventList\",\"items\":[{\"a\":1},{\"a\":2}],\"metadata\":{\"x\":\"]}\"}}\n{\"a\":"
    "3}\n",
    "{\"kind\":\"EventList\",\"items\":[{\"a\":1}],\"meta\n{\"a\":3}\n",
    "{\n  \"items\": [\n    {\"a\": 1},\n    {\"a\": \"cut\n    {\"a\": 3}\n  ],\n  \"x\": 1\n}\n",
    "2024-05-01T00:00:00Z {\"a\":1}\n2024-05-01T00:00:00Z {\"a\":\n2024-05-01T00:00:00Z {}\n",
    "2024-05-01T00:00:00Z not json\n2024-05-01 {}\n20\n",
    "garbage\n\n  {\"a\":1}\n}\n]\n,\n[1,2]\n{\"a\":\"\\\n\"}\n",
    "{\"a\":\"\\",
    "{",
    "[",
    "{\"a\":[{\"b\":{\"c\":[]}}]}}{\"d\":1}",
    "\n\n\n{\"a\":1}\n\n\n",
    "{\n\"a\": [\n{\n\"b\": 1\n}\n]\n}\n",
};

static void test_frame_corpus_same_frames_however_read_or_resumed(void **state)
{
    (void)state;
    static char big[3][4096];
    /* long ones, past the kept limit: a value with an inner object, a junk line, a cut value */
    snprintf(big[0], sizeof(big[0]), "{\"p\":\"%01500d\",\"i\":{\"a\":1},\"q\":\"%01500d\"}\n{}\n",
             0, 0);
    snprintf(big[1], sizeof(big[1]), "%03000d\n{\"a\":1}\n", 0);
    snprintf(big[2], sizeof(big[2]), "{\"p\":\"%03000d\n{\"a\":1}\n", 0);
    static const size_t maxes[] = {1 << 20, 1500, 16};
    unsigned checks = 0;
    for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]) + 3; i++) {
        const char *in = i < 3 ? big[i] : corpus[i - 3];
        for (size_t m = 0; m < 3; m++) {
            for (int mode = KT_FRAME_TOP; mode <= KT_FRAME_ITEMS; mode++) {
                struct fo_run whole = {0}, other = {0};
                fo_frame(in, strlen(in), maxes[m], mode, FO_WHOLE, &whole);
                assert_false(whole.broken);
                for (uint64_t way = FO_BYTES; way < 60; way++) {
                    fo_frame(in, strlen(in), maxes[m], mode, way, &other);
                    if (other.broken || fo_diff(&whole, &other) != SIZE_MAX) {
                        fail_msg("input %zu, max %zu, mode %d, way %llu: frame %zu differs %s", i,
                                 maxes[m], mode, (unsigned long long)way, fo_diff(&whole, &other),
                                 other.why);
                    }
                    checks++;
                }
                free(whole.v);
                free(other.v);
            }
        }
    }
    assert_true(checks > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_json_lines_with_offsets_and_lines),
        cmocka_unit_test(test_frame_every_chunk_size_gives_the_same_frames),
        cmocka_unit_test(test_frame_pretty_printed_value_spans_lines),
        cmocka_unit_test(test_frame_eventlist_items_before_kind),
        cmocka_unit_test(test_frame_truncated_line_rejected_next_line_kept),
        cmocka_unit_test(test_frame_newline_inside_string_is_a_reject),
        cmocka_unit_test(test_frame_garbage_lines_rejected_one_each),
        cmocka_unit_test(test_frame_oversized_value_rejected_with_first_kb),
        cmocka_unit_test(test_frame_truncated_at_eof_is_a_reject),
        cmocka_unit_test(test_frame_resume_inside_items_from_checkpoint),
        cmocka_unit_test(test_frame_resume_inside_array),
        cmocka_unit_test(test_frame_pretty_event_cut_midway_loses_none_after_it),
        cmocka_unit_test(test_frame_value_cut_after_another_on_its_line_loses_none_after_it),
        cmocka_unit_test(test_frame_broken_items_and_stamped_lines_lose_none_after_them),
        cmocka_unit_test(test_frame_max_event_size_is_exact_whatever_the_chunking),
        cmocka_unit_test(test_frame_nothing_inside_an_oversized_value_is_emitted),
        cmocka_unit_test(test_frame_resumed_framer_goes_on_with_lines_and_columns),
        cmocka_unit_test(test_frame_corpus_same_frames_however_read_or_resumed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
