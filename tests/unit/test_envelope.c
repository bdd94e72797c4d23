/*
 * test_envelope.c: every shape a cloud or a shipper delivers gives the events inside it, and
 * anything else gives a reject with a reason, never a lost or invented record.
 *
 * Each case opens one message (kt_envelope_open_text, as the Kafka source does; files and
 * the webhook open each framed value the same way) into a fresh batch and compares the
 * records, flattened to text: "E <bytes>" for a record handed to the decoder (with
 * "E{c=CLUSTER} " when its envelope named a cluster, "E{t} " when it was salvaged),
 * "R <reason> | <bytes>" for a reject, one per line.
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
#include "envelope.h"

#define EV1 "{\"kind\":\"Event\",\"auditID\":\"a-1\",\"stage\":\"ResponseComplete\"}"
#define EV2 "{\"auditID\":\"a-2\",\"stage\":\"ResponseComplete\",\"verb\":\"get\"}"
/* EV1 as a JSON string's body */
#define EV1_ESC                                                                                    \
    "{\\\"kind\\\":\\\"Event\\\",\\\"auditID\\\":\\\"a-1\\\",\\\"stage\\\":"                       \
    "\\\"ResponseComplete\\\"}"

struct out {
    char text[8192];
    struct kt_env_counts c;
    int rc;
};

/* Open msg (len bytes) with max_event and flatten the records into o->text. */
static void unwrap_n(const char *msg, size_t len, size_t max_event, struct out *o)
{
    struct kt_envelope *u = kt_envelope_create(max_event);
    struct kt_batch *b = kt_batch_create();
    size_t n = 0;

    assert_non_null(u);
    assert_non_null(b);
    memset(o, 0, sizeof(*o));
    int origin = kt_batch_origin(b, "kafka:audit/3");
    struct kt_env_batch eb = {b, (uint32_t)origin};
    struct kt_env_sink sink = {kt_env_batch_add, &eb};
    o->rc = kt_envelope_open_text(u, msg, len, 41, &sink, &o->c);
    assert_int_equal(o->c.records, b->nrecs);
    for (size_t i = 0; i < b->nrecs && n < sizeof(o->text); i++) {
        const struct kt_record *r = &b->recs[i];
        assert_int_equal(r->off, 41);
        assert_int_equal(r->line, 0);
        assert_int_equal(r->origin, (uint32_t)origin);
        struct kt_str c = kt_batch_record_cluster(b, r);
        if (r->reject != NULL) {
            n += (size_t)snprintf(o->text + n, sizeof(o->text) - n, "%sR %s | %.*s", n ? "\n" : "",
                                  r->reject, (int)r->len, b->buf + r->pos);
        } else if (c.ptr != NULL || r->truncated) {
            n += (size_t)snprintf(o->text + n, sizeof(o->text) - n, "%sE{%s%.*s%s} %.*s",
                                  n ? "\n" : "", c.ptr != NULL ? "c=" : "", (int)c.len,
                                  c.ptr != NULL ? c.ptr : "", r->truncated ? "t" : "", (int)r->len,
                                  b->buf + r->pos);
        } else {
            n += (size_t)snprintf(o->text + n, sizeof(o->text) - n, "%sE %.*s", n ? "\n" : "",
                                  (int)r->len, b->buf + r->pos);
        }
    }
    kt_batch_destroy(b);
    kt_envelope_destroy(u);
}

static const char *unwrap(const char *msg)
{
    static struct out o;
    unwrap_n(msg, strlen(msg), 0, &o);
    assert_int_equal(o.rc, 0);
    return o.text;
}

static void test_unwrap_bare_event_is_one_record_as_is(void **state)
{
    (void)state;
    assert_string_equal(unwrap(EV1), "E " EV1);
    assert_string_equal(unwrap("  " EV2 "\n"), "E " EV2);
}

static void test_unwrap_event_with_shipper_keys_first_is_still_the_event(void **state)
{
    (void)state;
    const char *m = "{\"@timestamp\":1714564800.1,\"log_type\":\"audit\",\"message\":\"x\","
                    "\"auditID\":\"a-3\",\"stage\":\"ResponseComplete\"}";
    /* "message" is a shipper key, but auditID says the object is the event (merged) */
    char want[512];
    snprintf(want, sizeof(want), "E %s", m);
    assert_string_equal(unwrap(m), want);
}

static void test_unwrap_eventlist_array_and_json_lines_give_each_event(void **state)
{
    (void)state;
    assert_string_equal(
        unwrap("{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{},"
               "\"items\":[" EV1 "," EV2 "]}"),
        "E " EV1 "\nE " EV2);
    assert_string_equal(unwrap("[" EV1 ",\n " EV2 "]"), "E " EV1 "\nE " EV2);
    assert_string_equal(unwrap(EV1 "\n" EV2 "\n"), "E " EV1 "\nE " EV2);
}

static void test_unwrap_log_and_message_strings_are_unescaped(void **state)
{
    (void)state;
    assert_string_equal(unwrap("{\"log\":\"" EV1_ESC "\\n\",\"stream\":\"stdout\"}"), "E " EV1);
    assert_string_equal(unwrap("{\"@timestamp\":\"2024-05-01T12:00:00Z\",\"host\":\"n1\","
                               "\"message\":\"" EV1_ESC "\",\"source_type\":\"file\"}"),
                        "E " EV1);
}

static void test_unwrap_log_object_is_the_event(void **state)
{
    (void)state;
    assert_string_equal(unwrap("{\"log\":" EV1 ",\"time\":\"t\"}"), "E " EV1);
    assert_string_equal(unwrap("{\"message\":[" EV1 "," EV2 "]}"), "E " EV1 "\nE " EV2);
}

static void test_unwrap_wrapped_eventlist_gives_its_items(void **state)
{
    (void)state;
    assert_string_equal(
        unwrap("{\"log\":\"{\\\"kind\\\":\\\"EventList\\\",\\\"items\\\":[" EV1_ESC "]}\"}"),
        "E " EV1);
}

static void test_unwrap_unicode_escapes_become_utf8(void **state)
{
    (void)state;
    /* é, an emoji as a surrogate pair, a lone surrogate (U+FFFD), an escaped backslash */
    assert_string_equal(unwrap("{\"log\":\"{\\\"auditID\\\":\\\"\\u00e9\\ud83d\\ude00\\ud800"
                               "\\\\\\\\\\\"}\"}"),
                        "E {\"auditID\":\"\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbd\\\\\"}");
}

static void test_unwrap_aks_envelope_keeps_audit_records_skips_other_categories(void **state)
{
    (void)state;
    struct out o;
    const char *m =
        "{\"records\":[{\"time\":\"t\",\"category\":\"kube-audit\",\"properties\":{\"log\":"
        "\"" EV1_ESC "\",\"stream\":\"stdout\",\"pod\":\"kube-apiserver-1\"}},"
        "{\"category\":\"kube-apiserver\",\"properties\":{\"log\":\"I0501 12:00:00 plain text\"}},"
        "{\"category\":\"kube-audit-admin\",\"properties\":{\"log\":" EV2 "}}]}";
    unwrap_n(m, strlen(m), 0, &o);
    assert_int_equal(o.rc, 0);
    assert_string_equal(o.text, "E " EV1 "\nE " EV2);
    assert_int_equal(o.c.records, 2);
    assert_int_equal(o.c.rejects, 0);
    assert_int_equal(o.c.skipped, 1);
    /* only other categories: nothing to store, nothing to reject */
    m = "{\"records\":[{\"category\":\"guard\",\"properties\":{\"log\":\"x\"}}]}";
    unwrap_n(m, strlen(m), 0, &o);
    assert_string_equal(o.text, "");
    assert_int_equal(o.c.skipped, 1);
}

static void test_unwrap_aks_audit_record_that_is_not_an_event_is_rejected(void **state)
{
    (void)state;
    assert_string_equal(
        unwrap("{\"records\":[{\"category\":\"kube-audit\",\"properties\":{\"log\":\"hello\"}},"
               "{\"category\":\"kube-audit\",\"properties\":{}},7]}"),
        "R not JSON: text outside any JSON value | hello\n"
        "R \"records\" element without properties.log | {\"category\":\"kube-audit\","
        "\"properties\":{}}\n"
        "R envelope array element is not an object | 7");
}

static void test_unwrap_malformed_messages_are_rejects_with_reasons(void **state)
{
    (void)state;
    struct out o;
    assert_string_equal(unwrap("this is not json"),
                        "R not JSON: text outside any JSON value | this is not json");
    assert_string_equal(unwrap("{\"log\":\"plain text line\"}"),
                        "R not JSON: text outside any JSON value | plain text line");
    assert_string_equal(unwrap("{\"log\":42}"),
                        "R \"log\" is neither an event nor a JSON string | 42");
    assert_string_equal(unwrap("{\"log\":\"bad \\x escape\"}"),
                        "R envelope payload: invalid JSON string escape | \"bad \\x escape\"");
    assert_string_equal(unwrap("{\"log\":\"\"}"), "R empty wrapped value | ");
    assert_string_equal(unwrap(" \n"), "R empty message |  \n");
    unwrap_n(NULL, 0, 0, &o); /* a tombstone */
    assert_string_equal(o.text, "R empty message | ");
    assert_int_equal(o.c.rejects, 1);
    assert_string_equal(unwrap("{\"auditID\":\"a-9\""),
                        "R truncated JSON at end of input | {\"auditID\":\"a-9\"");
}

static void test_unwrap_unknown_objects_go_to_the_decoder_to_judge(void **state)
{
    (void)state;
    /* the decoder says precisely why ("not an audit event ..."), with its own reasons */
    assert_string_equal(unwrap("{\"hello\":\"world\"}"), "E {\"hello\":\"world\"}");
    assert_string_equal(unwrap("{\"records\":{\"not\":\"an array\"}}"),
                        "E {\"records\":{\"not\":\"an array\"}}");
    assert_string_equal(unwrap("{}"), "E {}");
}

static void test_unwrap_nesting_is_bounded(void **state)
{
    (void)state;
    /* three levels of wrapping in strings are opened */
    const char *m = "{\"log\":\"{\\\"log\\\":\\\"{\\\\\\\"log\\\\\\\":\\\\\\\"{}\\\\\\\"}\\\"}\"}";
    assert_string_equal(unwrap(m), "E {}");
    /* eight levels of envelopes (a Firehose body holds four): the eighth is refused */
    m = "{\"log\":{\"log\":{\"log\":{\"log\":{\"log\":{\"log\":{\"log\":{\"log\":{}}}}}}}}}";
    assert_string_equal(unwrap(m), "R envelope nested too deeply | {}");
    m = "{\"log\":{\"log\":{\"log\":{\"log\":{\"log\":{\"log\":{\"log\":{}}}}}}}}";
    assert_string_equal(unwrap(m), "E {}");
}

static void test_unwrap_oversized_value_is_rejected_and_the_rest_kept(void **state)
{
    (void)state;
    struct out o;
    char big[3000];
    int n = snprintf(big, sizeof(big), "{\"auditID\":\"big\",\"pad\":\"");
    memset(big + n, 'x', 2000);
    n += 2000;
    n += snprintf(big + n, sizeof(big) - (size_t)n, "\"}\n" EV1);
    unwrap_n(big, (size_t)n, 1024, &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.c.records, 2);
    assert_int_equal(o.c.rejects, 1);
    assert_non_null(strstr(o.text, "R " KT_FRAME_OVERSIZE " | {\"auditID\":\"big\""));
    assert_non_null(strstr(o.text, "\nE " EV1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unwrap_bare_event_is_one_record_as_is),
        cmocka_unit_test(test_unwrap_event_with_shipper_keys_first_is_still_the_event),
        cmocka_unit_test(test_unwrap_eventlist_array_and_json_lines_give_each_event),
        cmocka_unit_test(test_unwrap_log_and_message_strings_are_unescaped),
        cmocka_unit_test(test_unwrap_log_object_is_the_event),
        cmocka_unit_test(test_unwrap_wrapped_eventlist_gives_its_items),
        cmocka_unit_test(test_unwrap_unicode_escapes_become_utf8),
        cmocka_unit_test(test_unwrap_aks_envelope_keeps_audit_records_skips_other_categories),
        cmocka_unit_test(test_unwrap_aks_audit_record_that_is_not_an_event_is_rejected),
        cmocka_unit_test(test_unwrap_malformed_messages_are_rejects_with_reasons),
        cmocka_unit_test(test_unwrap_unknown_objects_go_to_the_decoder_to_judge),
        cmocka_unit_test(test_unwrap_nesting_is_bounded),
        cmocka_unit_test(test_unwrap_oversized_value_is_rejected_and_the_rest_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
