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
    assert_int_equal(kt_framer_mode(&fr), KT_FRAME_ITEMS);
    uint64_t off = kt_framer_offset(&fr);
    /* a new framer resumes there, in ITEMS mode, on the rest of the stream */
    struct result r;
    frame(in + off, 0, 1 << 20, KT_FRAME_ITEMS, &r);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
