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
#include <zlib.h>

#include "frame.h"
#include "envelope.h"

#define EV1 "{\"kind\":\"Event\",\"auditID\":\"a-1\",\"stage\":\"ResponseComplete\"}"
#define EV2 "{\"auditID\":\"a-2\",\"stage\":\"ResponseComplete\",\"verb\":\"get\"}"
/* EV1 as a JSON string's body */
#define EV1_ESC                                                                                    \
    "{\\\"kind\\\":\\\"Event\\\",\\\"auditID\\\":\\\"a-1\\\",\\\"stage\\\":"                       \
    "\\\"ResponseComplete\\\"}"

struct out {
    char text[65536];
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

/* ---- cloud shapes ---- */

/* gzip of p[0, n) into out (cap bytes); its length. */
static size_t gz(const char *p, size_t n, char *out, size_t cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)p;
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t len = cap - zs.avail_out;
    deflateEnd(&zs);
    return len;
}

/* base64 of p[0, n) into out, NUL-terminated. */
static void b64(const char *p, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)p[i] << 16;
        v |= i + 1 < n ? (uint32_t)(unsigned char)p[i + 1] << 8 : 0;
        v |= i + 2 < n ? (uint32_t)(unsigned char)p[i + 2] : 0;
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

#define DATA_MESSAGE                                                                               \
    "{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"123456789012\",\"logGroup\":"                   \
    "\"/aws/eks/prod-eu/cluster\",\"logStream\":\"kube-apiserver-audit-0a1b\","                    \
    "\"subscriptionFilters\":[\"ktrail\"],\"logEvents\":[{\"id\":\"1\",\"timestamp\":"             \
    "1715490781000,\"message\":\"" EV1_ESC "\"},{\"id\":\"2\",\"timestamp\":1715490782000,"        \
    "\"message\":\"" EV1_ESC "\"}]}"

static void test_envelope_eks_data_message_gives_its_events_with_the_cluster(void **state)
{
    (void)state;
    assert_string_equal(unwrap(DATA_MESSAGE), "E{c=prod-eu} " EV1 "\nE{c=prod-eu} " EV1);
}

static void test_envelope_eks_control_message_and_other_streams_are_skipped(void **state)
{
    (void)state;
    struct out o;
    const char *m = "{\"messageType\":\"CONTROL_MESSAGE\",\"owner\":\"CloudwatchLogs\","
                    "\"logGroup\":\"\",\"logStream\":\"\",\"subscriptionFilters\":[],"
                    "\"logEvents\":[{\"id\":\"\",\"timestamp\":1,\"message\":\"CWL CONTROL "
                    "MESSAGE: Checking health of destination Firehose.\"}]}";
    unwrap_n(m, strlen(m), 0, &o);
    assert_string_equal(o.text, "");
    assert_int_equal(o.c.skipped, 1);
    m = "{\"messageType\":\"DATA_MESSAGE\",\"logGroup\":\"/aws/eks/p/cluster\",\"logStream\":"
        "\"authenticator-0a1b\",\"logEvents\":[{\"id\":\"1\",\"timestamp\":1,\"message\":"
        "\"time=x level=info msg=access granted\"},{\"id\":\"2\",\"timestamp\":1,\"message\":"
        "\"y\"}]}";
    unwrap_n(m, strlen(m), 0, &o);
    assert_string_equal(o.text, "");
    assert_int_equal(o.c.skipped, 2);
}

static void test_envelope_gzip_base64_lambda_and_firehose_bodies_are_opened(void **state)
{
    (void)state;
    static char z[4096], b[6000], m[16384];
    size_t zn = gz(DATA_MESSAGE, strlen(DATA_MESSAGE), z, sizeof(z));
    struct out o;
    unwrap_n(z, zn, 0, &o); /* a Kinesis / Firehose record: gzip bytes */
    assert_string_equal(o.text, "E{c=prod-eu} " EV1 "\nE{c=prod-eu} " EV1);
    b64(z, zn, b);
    snprintf(m, sizeof(m), "{\"awslogs\":{\"data\":\"%s\"}}", b);
    assert_string_equal(unwrap(m), "E{c=prod-eu} " EV1 "\nE{c=prod-eu} " EV1);
    snprintf(m, sizeof(m),
             "{\"requestId\":\"ed4acda5-034f-9f42-bba1-f29aea6d7d8f\",\"timestamp\":1578090901599,"
             "\"records\":[{\"data\":\"%s\"},{\"data\":\"%s\"}]}",
             b, b);
    unwrap_n(m, strlen(m), 0, &o);
    assert_int_equal(o.c.records, 4);
    assert_int_equal(o.c.rejects, 0);
    /* Firehose to S3: gzip members concatenated, each a DATA_MESSAGE, no separator */
    memcpy(z + zn, z, zn);
    unwrap_n(z, 2 * zn, 0, &o);
    assert_int_equal(o.c.records, 4);
    assert_int_equal(o.c.rejects, 0);
    /* a corrupt one is a reject saying so */
    unwrap_n(z, zn - 5, 0, &o);
    assert_int_equal(o.c.rejects, 1);
    assert_non_null(strstr(o.text, "invalid gzip data"));
}

static void test_envelope_filter_log_events_and_export_lines(void **state)
{
    (void)state;
    const char *m = "{\"events\":[{\"logStreamName\":\"kube-apiserver-audit-1\",\"timestamp\":1,"
                    "\"message\":\"" EV1_ESC "\",\"ingestionTime\":2,\"eventId\":\"3\"},"
                    "{\"logStreamName\":\"kube-scheduler-1\",\"timestamp\":1,\"message\":\"I0501\","
                    "\"ingestionTime\":2,\"eventId\":\"4\"}],\"nextToken\":\"abc\"}";
    assert_string_equal(unwrap(m), "E " EV1);
    assert_string_equal(unwrap("2024-05-12T05:13:01.000Z " EV1 "\n2024-05-12T05:13:02.000Z " EV2),
                        "E " EV1 "\nE " EV2);
}

static void test_envelope_gke_log_entries_are_converted_others_skipped(void **state)
{
    (void)state;
    struct out o;
    const char *m =
        "{\"insertId\":\"i-1\",\"operation\":{\"id\":\"op-1\",\"first\":true,\"last\":true},"
        "\"protoPayload\":{\"@type\":\"type.googleapis.com/google.cloud.audit.AuditLog\","
        "\"authenticationInfo\":{\"principalEmail\":\"a@example.com\"},\"methodName\":"
        "\"io.k8s.core.v1.secrets.get\",\"resourceName\":\"core/v1/namespaces/ns/secrets/s\","
        "\"serviceName\":\"k8s.io\",\"status\":{\"code\":7}},\"resource\":{\"type\":\"k8s_"
        "cluster\","
        "\"labels\":{\"cluster_name\":\"prod-gke\"}},\"timestamp\":\"2026-11-30T10:00:00Z\"}\n"
        "{\"insertId\":\"i-2\",\"protoPayload\":{\"serviceName\":\"compute.googleapis.com\","
        "\"methodName\":\"v1.compute.instances.insert\"},\"resource\":{\"type\":\"gce_instance\"}}";
    unwrap_n(m, strlen(m), 0, &o);
    assert_int_equal(o.c.records, 1);
    assert_int_equal(o.c.skipped, 1);
    assert_non_null(strstr(o.text, "E{c=prod-gke} {"));
    assert_non_null(strstr(o.text, "\"auditID\":\"op-1\""));
    assert_non_null(strstr(o.text, "\"code\":403"));
    /* the same entry in a Pub/Sub push body: base64 in message.data */
    static char b[4096], body[8192];
    const char *nl = strchr(m, '\n');
    b64(m, (size_t)(nl - m), b);
    snprintf(body, sizeof(body),
             "{\"message\":{\"data\":\"%s\",\"attributes\":{},\"messageId\":\"1\"},"
             "\"subscription\":\"projects/p/subscriptions/s\"}",
             b);
    unwrap_n(body, strlen(body), 0, &o);
    assert_int_equal(o.c.records, 1);
    assert_non_null(strstr(o.text, "\"auditID\":\"op-1\""));
}

static void test_envelope_aks_record_names_its_cluster_lower_cased(void **state)
{
    (void)state;
    assert_string_equal(
        unwrap(
            "{\"time\":\"2026-11-30T10:00:00Z\",\"resourceId\":\"/SUBSCRIPTIONS/0/RESOURCEGROUPS/"
            "RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/PROD-AKS\",\"category\":"
            "\"kube-audit\",\"properties\":{\"log\":\"" EV1_ESC "\",\"stream\":\"stdout\"}}"),
        "E{c=prod-aks} " EV1);
}

static void test_envelope_event_cut_in_transport_is_salvaged_and_kept_as_reject(void **state)
{
    (void)state;
    const char *m = "{\"time\":\"2026-11-30T10:00:00Z\",\"category\":\"kube-audit\",\"properties\":"
                    "{\"log\":\"{\\\"kind\\\":\\\"Event\\\",\\\"auditID\\\":\\\"a-1\\\","
                    "\\\"stage\\\":\\\"ResponseComplete\\\",\\\"verb\\\":\\\"create\\\","
                    "\\\"requestObject\\\":{\\\"spec\\\":{\\\"contai\"}}";
    assert_string_equal(
        unwrap(m),
        "R event cut short in transport: stored truncated, with the fields before the cut | "
        "{\"kind\":\"Event\",\"auditID\":\"a-1\",\"stage\":\"ResponseComplete\",\"verb\":"
        "\"create\",\"requestObject\":{\"spec\":{\"contai\n"
        "E{t} {\"kind\":\"Event\",\"auditID\":\"a-1\",\"stage\":\"ResponseComplete\",\"verb\":"
        "\"create\",\"requestObject\":{\"spec\":{}},\"requestReceivedTimestamp\":"
        "\"2026-11-30T10:00:00.000000Z\",\"stageTimestamp\":\"2026-11-30T10:00:00.000000Z\"}");
    /* CloudWatch's marker is taken off first */
    const char *c = "{\"logStreamName\":\"kube-apiserver-audit-1\",\"timestamp\":1715490781000,"
                    "\"message\":\"{\\\"auditID\\\":\\\"a-2\\\",\\\"stage\\\":\\\"ResponseComplete"
                    "\\\",\\\"requestObject\\\":{\\\"a\\\":[1,2[Truncated...]\"}";
    const char *t = unwrap(c);
    assert_non_null(strstr(t, "E{t} {\"auditID\":\"a-2\",\"stage\":\"ResponseComplete\","
                              "\"requestObject\":{\"a\":[1]},\"requestReceivedTimestamp\":"
                              "\"2024-05-12T05:13:01.000000Z\""));
}

static void test_envelope_openshift_record_takes_k8s_audit_level_and_cluster_id(void **state)
{
    (void)state;
    assert_string_equal(
        unwrap(
            "{\"@timestamp\":\"x\",\"auditID\":\"a-1\",\"hostname\":\"m-0\",\"k8s_audit_level\":"
            "\"Metadata\",\"level\":\"info\",\"log_type\":\"audit\",\"openshift\":{\"cluster_id\":"
            "\"5b1c\",\"sequence\":3},\"stage\":\"ResponseComplete\"}"),
        "E{c=5b1c} {\"@timestamp\":\"x\",\"auditID\":\"a-1\",\"hostname\":\"m-0\","
        "\"k8s_audit_level\":\"Metadata\",\"level\":\"Metadata\",\"log_type\":\"audit\","
        "\"openshift\":{\"cluster_id\":\"5b1c\",\"sequence\":3},\"stage\":\"ResponseComplete\"}");
}

static void test_envelope_filebeat_message_wins_over_its_log_object(void **state)
{
    (void)state;
    assert_string_equal(unwrap("{\"@timestamp\":\"x\",\"message\":\"" EV1_ESC "\",\"log\":"
                               "{\"offset\":7,\"file\":{\"path\":\"/var/log/audit.log\"}},"
                               "\"input\":{\"type\":\"filestream\"}}"),
                        "E " EV1);
}

static void test_envelope_a_value_opens_into_a_bounded_size(void **state)
{
    (void)state;
    struct out o;
    /* 20 records, each base64 of gzip of 100 events (6 KB, under max_event 8 KB): the value
     * is 4 KB but opens into 120 KB, past the budget of 4 x 8 KB */
    static char inner[8192], z[2048], b[4096], m[65536];
    size_t n = 0;
    for (int i = 0; i < 100; i++) {
        n += (size_t)snprintf(inner + n, sizeof(inner) - n, "%s\n", EV2);
    }
    b64(z, gz(inner, n, z, sizeof(z)), b);
    size_t k = (size_t)snprintf(m, sizeof(m), "{\"records\":[");
    for (int i = 0; i < 20; i++) {
        k += (size_t)snprintf(m + k, sizeof(m) - k, "%s{\"data\":\"%s\"}", i ? "," : "", b);
    }
    snprintf(m + k, sizeof(m) - k, "]}");
    assert_true(strlen(m) < 8192);
    unwrap_n(m, strlen(m), 8192, &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.c.rejects, 1);
    assert_in_range(o.c.records, 500, 600); /* 32 KB of 60-byte events, then the reject */
    assert_non_null(strstr(o.text, "R envelope opens into more than 4 x --max-event-size"));
    /* the next value starts with a fresh budget */
    assert_string_equal(unwrap(EV1), "E " EV1);
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
        cmocka_unit_test(test_envelope_eks_data_message_gives_its_events_with_the_cluster),
        cmocka_unit_test(test_envelope_eks_control_message_and_other_streams_are_skipped),
        cmocka_unit_test(test_envelope_gzip_base64_lambda_and_firehose_bodies_are_opened),
        cmocka_unit_test(test_envelope_filter_log_events_and_export_lines),
        cmocka_unit_test(test_envelope_gke_log_entries_are_converted_others_skipped),
        cmocka_unit_test(test_envelope_aks_record_names_its_cluster_lower_cased),
        cmocka_unit_test(test_envelope_event_cut_in_transport_is_salvaged_and_kept_as_reject),
        cmocka_unit_test(test_envelope_openshift_record_takes_k8s_audit_level_and_cluster_id),
        cmocka_unit_test(test_envelope_filebeat_message_wins_over_its_log_object),
        cmocka_unit_test(test_envelope_a_value_opens_into_a_bounded_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
