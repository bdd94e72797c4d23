/*
 * test_decode.c: the audit event decoder (analyze/decode.c) and RFC 3339 parsing
 * (analyze/time.c).
 *
 * Every test asserts exact values: field bytes, list contents, enum values, microsecond
 * timestamps, reject reasons, and the byte spans of requestObject / responseObject compared
 * with memcmp against the JSON text they must cover. Where it matters, tests also check
 * where a string lives: a slice of the input when it had no escapes, a copy elsewhere
 * (the arena) when it had, one that outlives the next decode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <yajl/yajl_parse.h>

#include "decode.h"

/* ---- fixture and helpers ---- */

struct fx {
    struct kt_decoder *d;  /* decoder under test */
    struct kt_arena arena; /* where escaped strings go */
    struct kt_event ev;    /* last decoded event */
    const char *json;      /* last input */
    size_t len;            /* its length */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return -1;
    }
    f->d = kt_decoder_create();
    if (f->d == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    kt_decoder_destroy(f->d);
    kt_arena_free(&f->arena);
    free(f);
    return 0;
}

static int decode_n(struct fx *f, const char *json, size_t len)
{
    f->json = json;
    f->len = len;
    return kt_decode_event(f->d, json, len, &f->arena, &f->ev);
}

static int decode(struct fx *f, const char *json)
{
    return decode_n(f, json, strlen(json));
}

/* The slice equals want (NULL: absent). A macro so failures point at the caller's line. */
#define assert_kt_str(s, want)                                                                     \
    do {                                                                                           \
        struct kt_str s_ = (s);                                                                    \
        const char *w_ = (want);                                                                   \
        if (w_ == NULL) {                                                                          \
            assert_null(s_.ptr);                                                                   \
        } else {                                                                                   \
            assert_non_null(s_.ptr);                                                               \
            assert_int_equal(s_.len, strlen(w_));                                                  \
            assert_memory_equal(s_.ptr, w_, s_.len);                                               \
        }                                                                                          \
    } while (0)

static int in_input(const struct fx *f, struct kt_str s)
{
    return s.ptr >= f->json && s.ptr + s.len <= f->json + f->len;
}

/* Span of sub inside f->json (the first occurrence, which must exist). */
static struct kt_str span_of(const struct fx *f, const char *sub)
{
    const char *p = strstr(f->json, sub);
    assert_non_null(p);
    return (struct kt_str){p, strlen(sub)};
}

/* The decoded body is exactly the JSON text sub, at its place in the input. */
#define assert_body(f, body, sub)                                                                  \
    do {                                                                                           \
        struct kt_str want_ = span_of((f), (sub));                                                 \
        assert_ptr_equal((body).ptr, want_.ptr);                                                   \
        assert_int_equal((body).len, want_.len);                                                   \
        assert_memory_equal((body).ptr, (sub), want_.len);                                         \
    } while (0)

#define EV_HEAD                                                                                    \
    "{\"auditID\":\"id-1\",\"stage\":\"ResponseComplete\","                                        \
    "\"stageTimestamp\":\"2024-05-01T12:00:00.5Z\""

#define REQ_BODY                                                                                   \
    "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"web-7d9f\"},"                \
    "\"spec\":{\"hostPID\":true,\"containers\":[{\"name\":\"c\",\"image\":\"nginx:1.25\","         \
    "\"securityContext\":{\"privileged\":true},\"command\":[\"sh\",\"-c\",\"echo }]\"]}]}}"
#define RESP_BODY "[{\"op\":\"add\",\"path\":\"/x\",\"value\":{\"a\":[1,2.5e3,null,false]}}]"

static const char full_event[] =
    "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"RequestResponse\","
    "\"auditID\":\"5f4b1e9c-1c2d-4e5f-8a9b-0c1d2e3f4a5b\",\"stage\":\"ResponseComplete\","
    "\"requestURI\":\"/api/v1/namespaces/prod/pods/web-7d9f/exec?command=sh&command=-c\","
    "\"verb\":\"create\","
    "\"user\":{\"username\":\"alice@example.com\",\"uid\":\"u-123\","
    "\"groups\":[\"system:authenticated\",\"devs\"],"
    "\"extra\":{\"other\":[\"x\"],\"authentication.kubernetes.io/pod-name\":[\"web-7d9f\",\"z\"],"
    "\"authentication.kubernetes.io/node-name\":[\"node-1\"]}},"
    "\"impersonatedUser\":{\"username\":\"system:serviceaccount:prod:deployer\","
    "\"groups\":[\"system:serviceaccounts\"]},"
    "\"sourceIPs\":[\"10.0.0.5\",\"192.168.1.10\"],"
    "\"userAgent\":\"kubectl/v1.29.0 (linux/amd64) kubernetes/abc123\","
    "\"objectRef\":{\"resource\":\"pods\",\"namespace\":\"prod\",\"name\":\"web-7d9f\","
    "\"uid\":\"p-1\",\"apiGroup\":\"\",\"apiVersion\":\"v1\",\"resourceVersion\":\"42\","
    "\"subresource\":\"exec\"},"
    "\"responseStatus\":{\"metadata\":{},\"status\":\"Failure\",\"reason\":\"Forbidden\","
    "\"message\":\"pods \\\"web-7d9f\\\" is forbidden\",\"code\":403},"
    "\"requestObject\":" REQ_BODY ","
    "\"responseObject\": " RESP_BODY " ,"
    "\"requestReceivedTimestamp\":\"2024-05-01T12:00:00.123456Z\","
    "\"stageTimestamp\":\"2024-05-01T12:00:00.234567Z\","
    "\"annotations\":{\"authorization.k8s.io/decision\":\"forbid\","
    "\"authorization.k8s.io/reason\":\"no RBAC policy matched\","
    "\"pod-security.kubernetes.io/audit-violations\":"
    "\"privileged (container \\\"c\\\" must not set securityContext.privileged=true)\","
    "\"pod-security.kubernetes.io/enforce-policy\":\"restricted:latest\","
    "\"validation.policy.admission.k8s.io/validation_failure\":\"[{\\\"message\\\":\\\"no\\\"}]\","
    "\"cluster_name\":\"prod-eu\",\"apiserver.latency.k8s.io/total\":\"12ms\"}}";

static const char metadata_event[] =
    "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\","
    "\"auditID\":\"m-1\",\"stage\":\"ResponseComplete\","
    "\"requestURI\":\"/api/v1/namespaces/kube-system/secrets/token\",\"verb\":\"get\","
    "\"user\":{\"username\":\"system:serviceaccount:kube-system:ctrl\","
    "\"groups\":[\"system:serviceaccounts\",\"system:serviceaccounts:kube-system\","
    "\"system:authenticated\"]},"
    "\"sourceIPs\":[\"172.18.0.2\"],\"userAgent\":\"curl/8.5.0\","
    "\"objectRef\":{\"resource\":\"secrets\",\"namespace\":\"kube-system\",\"name\":\"token\","
    "\"apiVersion\":\"v1\"},\"responseStatus\":{\"metadata\":{},\"code\":200},"
    "\"requestReceivedTimestamp\":\"2024-05-01T10:30:00.000001Z\","
    "\"stageTimestamp\":\"2024-05-01T10:30:00.000900Z\","
    "\"annotations\":{\"authorization.k8s.io/decision\":\"allow\","
    "\"authorization.k8s.io/reason\":\"RBAC: allowed by ClusterRoleBinding\"}}";

/* ---- yajl behaviour the decoder relies on ---- */

struct offsets {
    yajl_handle h; /* the parsing handle */
    size_t at[16]; /* bytes consumed at each container token */
    int n;         /* tokens seen */
};

static int record_offset(void *ctx)
{
    struct offsets *o = ctx;
    if (o->n < 16) {
        o->at[o->n++] = yajl_get_bytes_consumed(o->h);
    }
    return 1;
}

static void test_yajl_bytes_consumed_is_just_past_the_token(void **state)
{
    static const char json[] = " {\"a\": [1, {\"b\":\"}\"}] , \"c\":{ } }  ";
    yajl_callbacks cb = {.yajl_start_map = record_offset,
                         .yajl_end_map = record_offset,
                         .yajl_start_array = record_offset,
                         .yajl_end_array = record_offset};
    struct offsets o = {0};
    o.h = yajl_alloc(&cb, NULL, &o);
    assert_non_null(o.h);
    assert_int_equal(yajl_parse(o.h, (const unsigned char *)json, sizeof(json) - 1),
                     yajl_status_ok);
    assert_int_equal(yajl_complete_parse(o.h), yajl_status_ok);
    yajl_free(o.h);

    /* {  [  {  }  ]  {  }  } : each offset is one past the bracket it reports. */
    static const char brackets[] = "{[{}]{}}";
    assert_int_equal(o.n, 8);
    const size_t want[8] = {2, 8, 12, 20, 21, 29, 31, 33};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(o.at[i], want[i]);
        assert_int_equal(json[o.at[i] - 1], brackets[i]);
    }
}

/* ---- whole events ---- */

static void test_decode_request_response_event_fills_every_field(void **state)
{
    struct fx *f = *state;
    assert_int_equal(decode(f, full_event), 0);
    const struct kt_event *ev = &f->ev;

    assert_null(ev->reject);
    assert_int_equal(ev->stage, KT_STAGE_RESPONSE_COMPLETE);
    assert_int_equal(ev->level, KT_LEVEL_REQUEST_RESPONSE);
    assert_int_equal(ev->flags, 0);
    assert_int_equal(ev->ts_us, INT64_C(1714564800234567));
    assert_int_equal(ev->recv_us, INT64_C(1714564800123456));
    assert_int_equal(ev->code, 403);

    assert_kt_str(ev->f[KT_F_AUDIT_ID], "5f4b1e9c-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
    assert_kt_str(ev->f[KT_F_STAGE], "ResponseComplete");
    assert_kt_str(ev->f[KT_F_LEVEL], "RequestResponse");
    assert_kt_str(ev->f[KT_F_VERB], "create");
    assert_kt_str(ev->f[KT_F_URI],
                  "/api/v1/namespaces/prod/pods/web-7d9f/exec?command=sh&command=-c");
    assert_kt_str(ev->f[KT_F_USER], "alice@example.com");
    assert_kt_str(ev->f[KT_F_USER_UID], "u-123");
    assert_kt_str(ev->f[KT_F_IMP_USER], "system:serviceaccount:prod:deployer");
    assert_kt_str(ev->f[KT_F_USER_AGENT], "kubectl/v1.29.0 (linux/amd64) kubernetes/abc123");
    assert_kt_str(ev->f[KT_F_RESOURCE], "pods");
    assert_kt_str(ev->f[KT_F_SUBRESOURCE], "exec");
    assert_kt_str(ev->f[KT_F_NAMESPACE], "prod");
    assert_kt_str(ev->f[KT_F_NAME], "web-7d9f");
    assert_kt_str(ev->f[KT_F_API_GROUP], ""); /* present and empty: not absent */
    assert_kt_str(ev->f[KT_F_API_VERSION], "v1");
    assert_kt_str(ev->f[KT_F_RESP_STATUS], "Failure");
    assert_kt_str(ev->f[KT_F_RESP_REASON], "Forbidden");
    assert_kt_str(ev->f[KT_F_RESP_MESSAGE], "pods \"web-7d9f\" is forbidden");
    assert_kt_str(ev->f[KT_F_DECISION], "forbid");
    assert_kt_str(ev->f[KT_F_AUTHZ_REASON], "no RBAC policy matched");
    assert_kt_str(ev->f[KT_F_PSS_VIOLATIONS],
                  "privileged (container \"c\" must not set securityContext.privileged=true)");
    assert_kt_str(ev->f[KT_F_PSS_ENFORCE], "restricted:latest");
    assert_kt_str(ev->f[KT_F_ADMISSION_FAIL], "[{\"message\":\"no\"}]");
    assert_kt_str(ev->f[KT_F_CLUSTER_ANNOT], "prod-eu");
    assert_kt_str(ev->f[KT_F_POD_NAME_EXTRA], "web-7d9f");
    assert_kt_str(ev->f[KT_F_NODE_NAME_EXTRA], "node-1");
    assert_kt_str(ev->f[KT_F_STAGE_TS], "2024-05-01T12:00:00.234567Z");
    assert_kt_str(ev->f[KT_F_RECV_TS], "2024-05-01T12:00:00.123456Z");

    assert_int_equal(ev->groups.n, 2);
    assert_kt_str(ev->groups.v[0], "system:authenticated");
    assert_kt_str(ev->groups.v[1], "devs");
    assert_int_equal(ev->source_ips.n, 2);
    assert_kt_str(ev->source_ips.v[0], "10.0.0.5");
    assert_kt_str(ev->source_ips.v[1], "192.168.1.10");

    assert_body(f, ev->req_obj, REQ_BODY);
    assert_body(f, ev->resp_obj, RESP_BODY);

    /* Strings without escapes are slices of the input; those with escapes are not. */
    assert_true(in_input(f, ev->f[KT_F_USER_AGENT]));
    assert_true(in_input(f, ev->groups.v[1]));
    assert_false(in_input(f, ev->f[KT_F_RESP_MESSAGE]));
    assert_false(in_input(f, ev->f[KT_F_PSS_VIOLATIONS]));
}

/* A create without objectRef.name (generateName, controllers) gets the created object's
 * name: the responseObject's metadata.name (assigned by the apiserver), else the
 * requestObject's; never for other verbs, subresources, or a name objectRef already gives. */
static void test_decode_created_object_name_comes_from_the_body(void **state)
{
    struct fx *f = *state;
#define CREATE(objref, bodies)                                                                     \
    EV_HEAD                                                                                        \
    ",\"verb\":\"create\",\"objectRef\":{\"resource\":\"pods\",\"namespace\":\"web\"" objref       \
    "}" bodies "}"
    static const struct {
        const char *json; /* the event */
        const char *name; /* KT_F_NAME after decoding, NULL: absent */
        int in_input;     /* a slice of the input (no escapes) */
    } cases[] = {
        {CREATE("", ",\"requestObject\":{\"metadata\":{\"generateName\":\"web-\"}},"
                    "\"responseObject\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-x7k2p\","
                    "\"generateName\":\"web-\"},\"spec\":{}}"),
         "web-x7k2p", 1},
        /* level Request: only the request body */
        {CREATE("", ",\"requestObject\":{\"spec\":{},\"metadata\":{\"name\":\"given\"}}"), "given",
         1},
        /* an empty name is no name */
        {CREATE(",\"name\":\"\"", ",\"responseObject\":{\"metadata\":{\"name\":\"r\"}}"), "r", 1},
        /* escapes are unescaped into the arena */
        {CREATE("", ",\"responseObject\":{\"metadata\":{\"name\":\"web-\\u0061\"}}"), "web-a", 0},
        /* a failed create answers a Status, which has no metadata.name; generateName is not a
         * name */
        {CREATE("", ",\"requestObject\":{\"metadata\":{\"generateName\":\"web-\"}},"
                    "\"responseObject\":{\"kind\":\"Status\",\"metadata\":{},\"code\":409}"),
         NULL, 0},
        /* a name deeper in the body is not the object's */
        {CREATE("", ",\"requestObject\":{\"spec\":{\"template\":{\"metadata\":{\"name\":"
                    "\"t\"}}}}"),
         NULL, 0},
        /* objectRef's name wins */
        {CREATE(",\"name\":\"p\"", ",\"responseObject\":{\"metadata\":{\"name\":\"q\"}}"), "p", 1},
        /* a subresource's body is another kind of object */
        {CREATE(",\"subresource\":\"binding\"",
                ",\"requestObject\":{\"metadata\":{\"name\":\"b\"}}"),
         NULL, 0},
        /* other verbs keep objectRef as it is */
        {EV_HEAD ",\"verb\":\"update\",\"objectRef\":{\"resource\":\"pods\"},"
                 "\"requestObject\":{\"metadata\":{\"name\":\"u\"}}}",
         NULL, 0},
        /* no objectRef: not an object create */
        {EV_HEAD ",\"verb\":\"create\",\"requestObject\":{\"metadata\":{\"name\":\"n\"}}}", NULL,
         0},
    };
#undef CREATE
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (decode(f, cases[i].json) != 0) {
            fail_msg("case %zu: %s", i, f->ev.reject);
        }
        if (cases[i].name == NULL && f->ev.f[KT_F_NAME].len > 0) {
            fail_msg("case %zu: want no name, got %.*s", i, (int)f->ev.f[KT_F_NAME].len,
                     f->ev.f[KT_F_NAME].ptr);
        }
        if (cases[i].name != NULL) {
            assert_kt_str(f->ev.f[KT_F_NAME], cases[i].name);
            assert_int_equal(in_input(f, f->ev.f[KT_F_NAME]), cases[i].in_input);
        }
    }
}

static void test_decode_metadata_event_has_no_bodies(void **state)
{
    struct fx *f = *state;
    assert_int_equal(decode(f, metadata_event), 0);
    const struct kt_event *ev = &f->ev;
    assert_null(ev->reject);
    assert_int_equal(ev->level, KT_LEVEL_METADATA);
    assert_int_equal(ev->stage, KT_STAGE_RESPONSE_COMPLETE);
    assert_int_equal(ev->code, 200);
    assert_int_equal(ev->ts_us, INT64_C(1714559400000900));
    assert_int_equal(ev->recv_us, INT64_C(1714559400000001));
    assert_kt_str(ev->f[KT_F_VERB], "get");
    assert_kt_str(ev->f[KT_F_RESOURCE], "secrets");
    assert_kt_str(ev->f[KT_F_USER_AGENT], "curl/8.5.0");
    assert_kt_str(ev->f[KT_F_DECISION], "allow");
    assert_kt_str(ev->f[KT_F_AUTHZ_REASON], "RBAC: allowed by ClusterRoleBinding");
    assert_int_equal(ev->groups.n, 3);
    assert_kt_str(ev->groups.v[2], "system:authenticated");
    assert_int_equal(ev->source_ips.n, 1);
    assert_kt_str(ev->source_ips.v[0], "172.18.0.2");
    assert_null(ev->req_obj.ptr);
    assert_int_equal(ev->req_obj.len, 0);
    assert_null(ev->resp_obj.ptr);
    /* Absent fields stay absent. */
    assert_kt_str(ev->f[KT_F_IMP_USER], NULL);
    assert_kt_str(ev->f[KT_F_SUBRESOURCE], NULL);
    assert_kt_str(ev->f[KT_F_API_GROUP], NULL);
    assert_kt_str(ev->f[KT_F_RESP_STATUS], NULL);
    assert_kt_str(ev->f[KT_F_POD_NAME_EXTRA], NULL);
    assert_kt_str(ev->f[KT_F_PSS_VIOLATIONS], NULL);
}

static void test_decode_webhook_item_without_kind_or_api_version(void **state)
{
    struct fx *f = *state;
    assert_int_equal(decode(f, "{\"level\":\"Request\",\"auditID\":\"w-1\",\"stage\":\"Panic\","
                               "\"verb\":\"watch\",\"stageTimestamp\":\"2024-05-01T12:00:00Z\","
                               "\"requestObject\":{\"a\":1}}"),
                     0);
    assert_null(f->ev.reject);
    assert_int_equal(f->ev.stage, KT_STAGE_PANIC);
    assert_int_equal(f->ev.level, KT_LEVEL_REQUEST);
    assert_int_equal(f->ev.ts_us, INT64_C(1714564800000000));
    assert_int_equal(f->ev.recv_us, 0);
    assert_int_equal(f->ev.code, 0);
    assert_kt_str(f->ev.f[KT_F_AUDIT_ID], "w-1");
    assert_kt_str(f->ev.f[KT_F_VERB], "watch");
    assert_body(f, f->ev.req_obj, "{\"a\":1}");
    assert_int_equal(f->ev.groups.n, 0);
    assert_null(f->ev.groups.v);
}

static void test_decode_v1beta1_event_uses_stage_timestamp(void **state)
{
    struct fx *f = *state;
    assert_int_equal(
        decode(f, "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1beta1\","
                  "\"metadata\":{\"creationTimestamp\":\"2019-01-01T00:00:00Z\"},"
                  "\"level\":\"Metadata\",\"timestamp\":\"2019-01-01T00:00:00Z\","
                  "\"auditID\":\"b-1\",\"stage\":\"RequestReceived\",\"requestURI\":\"/version\","
                  "\"verb\":\"get\",\"user\":{\"username\":\"bob\",\"groups\":[]},"
                  "\"sourceIPs\":[\"::1\"],\"objectRef\":{\"resource\":\"namespaces\"},"
                  "\"requestReceivedTimestamp\":\"2016-12-31T23:59:59.999999Z\","
                  "\"stageTimestamp\":\"2017-01-01T00:00:00.000000Z\"}"),
        0);
    assert_null(f->ev.reject);
    assert_int_equal(f->ev.stage, KT_STAGE_REQUEST_RECEIVED);
    assert_int_equal(f->ev.ts_us, INT64_C(1483228800000000));
    assert_int_equal(f->ev.recv_us, INT64_C(1483228799999999));
    assert_kt_str(f->ev.f[KT_F_USER], "bob");
    assert_int_equal(f->ev.groups.n, 0); /* present and empty */
    assert_non_null(f->ev.groups.v);
    assert_kt_str(f->ev.source_ips.v[0], "::1");
    assert_kt_str(f->ev.f[KT_F_RESOURCE], "namespaces");
}

static void test_decode_stage_and_level_names_map_to_enums(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *stage, *level;
        int want_stage, want_level;
    } cases[] = {
        {"RequestReceived", "None", KT_STAGE_REQUEST_RECEIVED, KT_LEVEL_NONE},
        {"ResponseStarted", "Metadata", KT_STAGE_RESPONSE_STARTED, KT_LEVEL_METADATA},
        {"ResponseComplete", "Request", KT_STAGE_RESPONSE_COMPLETE, KT_LEVEL_REQUEST},
        {"Panic", "RequestResponse", KT_STAGE_PANIC, KT_LEVEL_REQUEST_RESPONSE},
        {"responsecomplete", "Verbose", KT_STAGE_UNKNOWN, KT_LEVEL_UNKNOWN},
    };
    char json[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(json, sizeof(json),
                 "{\"auditID\":\"a\",\"stage\":\"%s\",\"level\":\"%s\","
                 "\"stageTimestamp\":\"2024-05-01T12:00:00Z\"}",
                 cases[i].stage, cases[i].level);
        assert_int_equal(decode(f, json), 0);
        assert_int_equal(f->ev.stage, cases[i].want_stage);
        assert_int_equal(f->ev.level, cases[i].want_level);
        assert_kt_str(f->ev.f[KT_F_STAGE], cases[i].stage);
    }
}

/* ---- strings: escapes, unicode, sizes ---- */

static void test_decode_escaped_string_goes_to_arena(void **state)
{
    struct fx *f = *state;
    static const char json[] =
        EV_HEAD ",\"userAgent\":\"say \\\"hi\\\" C:\\\\dir\\nnext caf\\u00e9 \\ud83d\\ude00 "
                "\\u0026\\/\",\"user\":{\"username\":\"jos\\u00e9\\t\",\"groups\":[\"a\\\\b\"]}}";
    assert_int_equal(decode(f, json), 0);
    const struct kt_event *ev = &f->ev;
    assert_kt_str(ev->f[KT_F_USER_AGENT],
                  "say \"hi\" C:\\dir\nnext caf\xc3\xa9 \xf0\x9f\x98\x80 &/");
    assert_kt_str(ev->f[KT_F_USER], "jos\xc3\xa9\t");
    assert_kt_str(ev->groups.v[0], "a\\b");
    assert_false(in_input(f, ev->f[KT_F_USER_AGENT]));
    assert_false(in_input(f, ev->f[KT_F_USER]));
    assert_false(in_input(f, ev->groups.v[0]));
    assert_true(f->arena.total > 0);
    /* The arena copy is NUL-terminated too (kt_arena_dup), handy for C APIs. */
    assert_int_equal(ev->f[KT_F_USER].ptr[ev->f[KT_F_USER].len], '\0');
    /* Unescaped strings of the same event are still slices of the input. */
    assert_true(in_input(f, ev->f[KT_F_AUDIT_ID]));
}

static void test_decode_escaped_strings_survive_the_next_decode(void **state)
{
    struct fx *f = *state;
    struct kt_event first;
    assert_int_equal(decode(f, EV_HEAD ",\"userAgent\":\"one\\u00e9\",\"verb\":\"g\\u0065t\"}"), 0);
    first = f->ev;
    /* Same lengths, different bytes: a slice into yajl's reused buffer would be overwritten. */
    assert_int_equal(decode(f, EV_HEAD ",\"userAgent\":\"two\\u00e8\",\"verb\":\"s\\u0065t\"}"), 0);
    assert_kt_str(first.f[KT_F_USER_AGENT], "one\xc3\xa9");
    assert_kt_str(first.f[KT_F_VERB], "get");
    assert_kt_str(f->ev.f[KT_F_USER_AGENT], "two\xc3\xa8");
    assert_kt_str(f->ev.f[KT_F_VERB], "set");
}

static void test_decode_escaped_keys_are_matched_after_unescaping(void **state)
{
    struct fx *f = *state;
    assert_int_equal(decode(f, "{\"audit\\u0049D\":\"k-1\",\"stage\":\"Panic\","
                               "\"stage\\u0054imestamp\":\"2024-05-01T12:00:00Z\","
                               "\"annotations\":{\"authorization.k8s.io\\/decision\":\"allow\"}}"),
                     0);
    assert_kt_str(f->ev.f[KT_F_AUDIT_ID], "k-1");
    assert_kt_str(f->ev.f[KT_F_DECISION], "allow");
}

static void test_decode_raw_utf8_strings_are_slices_of_the_input(void **state)
{
    struct fx *f = *state;
    static const char json[] = EV_HEAD ",\"user\":{\"username\":\"\xc3\xa9l\xc3\xa8ve-\xe6\x97\xa5"
                                       "\xe6\x9c\xac-\xf0\x9f\x98\x80\"},"
                                       "\"objectRef\":{\"name\":\"\xd0\xbf\xd0\xbe\xd0\xb4\"}}";
    assert_int_equal(decode(f, json), 0);
    assert_kt_str(f->ev.f[KT_F_USER],
                  "\xc3\xa9l\xc3\xa8ve-\xe6\x97\xa5\xe6\x9c\xac-\xf0\x9f\x98\x80");
    assert_kt_str(f->ev.f[KT_F_NAME], "\xd0\xbf\xd0\xbe\xd0\xb4");
    assert_true(in_input(f, f->ev.f[KT_F_USER]));
}

static void test_decode_invalid_utf8_is_invalid_json(void **state)
{
    struct fx *f = *state;
    assert_int_equal(decode(f, EV_HEAD ",\"userAgent\":\"bad \xff byte\"}"), KT_EPARSE);
    assert_string_equal(f->ev.reject, "invalid JSON: lexical error: invalid bytes in UTF8 string");
}

/* A JSON document of head + body + tail, body being n copies of unit. Caller frees. */
static char *build(const char *head, const char *unit, size_t n, const char *tail, size_t *len)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * n + tl + 1);
    assert_non_null(s);
    memcpy(s, head, hl);
    for (size_t i = 0; i < n; i++) {
        memcpy(s + hl + i * ul, unit, ul);
    }
    memcpy(s + hl + ul * n, tail, tl + 1);
    *len = hl + ul * n + tl;
    return s;
}

static void test_decode_one_mib_user_agent(void **state)
{
    struct fx *f = *state;
    size_t len;
    /* Plain: a slice of the input. */
    char *json = build(EV_HEAD ",\"userAgent\":\"", "0123456789abcdef", 65536, "\"}", &len);
    assert_int_equal(decode_n(f, json, len), 0);
    struct kt_str ua = f->ev.f[KT_F_USER_AGENT];
    assert_int_equal(ua.len, 1 << 20);
    assert_ptr_equal(ua.ptr, strstr(json, "0123"));
    free(json);

    /* Escaped: unescaped by yajl (beyond the decoder's 64 KiB region) and copied out. */
    json = build(EV_HEAD ",\"userAgent\":\"", "0123456789abcd\\n", 65536, "\"}", &len);
    assert_int_equal(decode_n(f, json, len), 0);
    ua = f->ev.f[KT_F_USER_AGENT];
    assert_int_equal(ua.len, 15 * 65536);
    assert_false(in_input(f, ua));
    for (size_t i = 0; i < ua.len; i += 15) {
        assert_memory_equal(ua.ptr + i, "0123456789abcd\n", 15);
    }
    free(json);
}

static void test_decode_five_mib_request_object_span(void **state)
{
    struct fx *f = *state;
    size_t len;
    /* The body: {"data":"<5 MiB>","n":[1,{"a":"}]"}]} */
    char *json = build(EV_HEAD ",\"requestObject\":{\"data\":\"", "x{}[]\\\"y\\\\yyyyyy", 327680,
                       "\",\"n\":[1,{\"a\":\"}]\"}]},\"verb\":\"update\"}", &len);
    assert_int_equal(decode_n(f, json, len), 0);
    const char *start = strstr(json, "{\"data\"");
    const char *stop = strstr(json, ",\"verb\"");
    assert_ptr_equal(f->ev.req_obj.ptr, start);
    assert_int_equal(f->ev.req_obj.len, (size_t)(stop - start));
    assert_true(f->ev.req_obj.len > 5 * 1024 * 1024);
    assert_int_equal(f->ev.req_obj.ptr[f->ev.req_obj.len - 1], '}');
    assert_kt_str(f->ev.f[KT_F_VERB], "update");
    assert_null(f->ev.resp_obj.ptr);
    free(json);
}

/* ---- bodies ---- */

static void test_decode_body_spans_equal_their_json_text(void **state)
{
    struct fx *f = *state;
#define B1 "{ \"s\" : \"}}{{]]\\\"}\" , \"a\" : [ [ ] , { } , \"]\" ] , \"e\":{\"\\\\\":\"\\\\\"} }"
#define B2 "[{\"op\":\"replace\",\"path\":\"/spec/template\",\"value\":\"{\\\"x\\\":1}\"}]"
    assert_int_equal(
        decode(f, EV_HEAD ",\"requestObject\" :  " B1 "  ,\"responseObject\":" B2 ",\"x\":{}}"), 0);
    assert_body(f, f->ev.req_obj, B1);
    assert_body(f, f->ev.resp_obj, B2);
#undef B1
#undef B2
    /* Empty containers are bodies too. */
    assert_int_equal(decode(f, EV_HEAD ",\"requestObject\":{},\"responseObject\":[]}"), 0);
    assert_body(f, f->ev.req_obj, "{}");
    assert_body(f, f->ev.resp_obj, "[]");
}

static void test_decode_scalar_bodies_are_absent(void **state)
{
    struct fx *f = *state;
    assert_int_equal(decode(f, EV_HEAD ",\"requestObject\":null,\"responseObject\":\"{}\"}"), 0);
    assert_null(f->ev.req_obj.ptr);
    assert_null(f->ev.resp_obj.ptr);
    assert_int_equal(decode(f, EV_HEAD ",\"requestObject\":12,\"responseObject\":true}"), 0);
    assert_null(f->ev.req_obj.ptr);
    assert_null(f->ev.resp_obj.ptr);
}

static void test_decode_deeply_nested_body_span(void **state)
{
    struct fx *f = *state;
    enum { DEPTH = 5000 };
    char *json = malloc(6 * DEPTH + 128);
    assert_non_null(json);
    size_t n = (size_t)sprintf(json, "%s,\"requestObject\":", EV_HEAD);
    const char *body = json + n;
    /* {"k":[{"k":[ ... 1 ... ]}]} */
    for (int i = 0; i < DEPTH; i++) {
        if (i % 2) {
            json[n++] = '[';
        } else {
            memcpy(json + n, "{\"k\":", 5);
            n += 5;
        }
    }
    json[n++] = '1';
    for (int i = DEPTH - 1; i >= 0; i--) {
        json[n++] = i % 2 ? ']' : '}';
    }
    size_t body_len = (size_t)(json + n - body);
    n += (size_t)sprintf(json + n, ",\"verb\":\"list\"}");
    assert_int_equal(decode_n(f, json, n), 0);
    assert_ptr_equal(f->ev.req_obj.ptr, body);
    assert_int_equal(f->ev.req_obj.len, body_len);
    assert_kt_str(f->ev.f[KT_F_VERB], "list");
    free(json);
}

/* ---- odd values in known places ---- */

static void test_decode_unexpected_types_are_ignored(void **state)
{
    struct fx *f = *state;
    assert_int_equal(decode(f, EV_HEAD
                            ",\"verb\":5,\"requestURI\":null,\"userAgent\":true,\"level\":[\"x\"],"
                            "\"user\":{\"username\":{\"a\":\"b\"},\"uid\":null,"
                            "\"groups\":[1,\"a\",null,{\"x\":\"no\"},[\"no\"],true,\"b\"],"
                            "\"extra\":{\"authentication.kubernetes.io/pod-name\":[null,\"p\"],"
                            "\"authentication.kubernetes.io/node-name\":\"n-plain\"}},"
                            "\"sourceIPs\":\"1.2.3.4\",\"impersonatedUser\":null,"
                            "\"objectRef\":[{\"resource\":\"no\"}],"
                            "\"responseStatus\":{\"code\":\"403\",\"status\":7},"
                            "\"annotations\":{\"authorization.k8s.io/decision\":false,"
                            "\"cluster_name\":[\"c\"]},\"kind\":null,\"extra\":{\"verb\":\"no\"}}"),
                     0);
    const struct kt_event *ev = &f->ev;
    assert_null(ev->reject);
    assert_kt_str(ev->f[KT_F_VERB], NULL);
    assert_kt_str(ev->f[KT_F_URI], NULL);
    assert_kt_str(ev->f[KT_F_USER_AGENT], NULL);
    assert_kt_str(ev->f[KT_F_LEVEL], NULL);
    assert_int_equal(ev->level, KT_LEVEL_UNKNOWN);
    assert_kt_str(ev->f[KT_F_USER], NULL);
    assert_kt_str(ev->f[KT_F_USER_UID], NULL);
    assert_int_equal(ev->groups.n, 2);
    assert_kt_str(ev->groups.v[0], "a");
    assert_kt_str(ev->groups.v[1], "b");
    assert_kt_str(ev->f[KT_F_POD_NAME_EXTRA], NULL); /* element 0 is null */
    assert_kt_str(ev->f[KT_F_NODE_NAME_EXTRA], "n-plain");
    assert_int_equal(ev->source_ips.n, 0);
    assert_kt_str(ev->f[KT_F_IMP_USER], NULL);
    assert_kt_str(ev->f[KT_F_RESOURCE], NULL);
    assert_int_equal(ev->code, 0);
    assert_kt_str(ev->f[KT_F_RESP_STATUS], NULL);
    assert_kt_str(ev->f[KT_F_DECISION], NULL);
    assert_kt_str(ev->f[KT_F_CLUSTER_ANNOT], NULL);
}

static void test_decode_response_code_takes_only_int32_integers(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *code;
        int32_t want;
    } cases[] = {
        {"200", 200},       {"-1", -1},   {"0", 0},   {"2147483647", 2147483647},
        {"2147483648", 0},  {"403.0", 0}, {"4e2", 0}, {"-2147483648", INT32_MIN},
        {"99999999999", 0}, {"-0", 0},
    };
    char json[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(json, sizeof(json), EV_HEAD ",\"responseStatus\":{\"code\":%s}}", cases[i].code);
        assert_int_equal(decode(f, json), 0);
        assert_int_equal(f->ev.code, cases[i].want);
    }
    /* code elsewhere is not responseStatus.code */
    assert_int_equal(decode(f, EV_HEAD ",\"code\":500,\"objectRef\":{\"code\":501}}"), 0);
    assert_int_equal(f->ev.code, 0);
}

static void test_decode_duplicate_keys_last_one_wins(void **state)
{
    struct fx *f = *state;
    assert_int_equal(decode(f, EV_HEAD ",\"verb\":\"get\",\"verb\":\"delete\","
                                       "\"sourceIPs\":[\"1.1.1.1\",\"2.2.2.2\"],"
                                       "\"sourceIPs\":[\"3.3.3.3\"]}"),
                     0);
    assert_kt_str(f->ev.f[KT_F_VERB], "delete");
    assert_int_equal(f->ev.source_ips.n, 1);
    assert_kt_str(f->ev.source_ips.v[0], "3.3.3.3");
}

static void test_decode_many_escaped_groups(void **state)
{
    struct fx *f = *state;
    size_t len;
    char *json =
        build(EV_HEAD ",\"user\":{\"groups\":[", "\"g\\u00e9\",", 3000, "\"last\"]}}", &len);
    assert_int_equal(decode_n(f, json, len), 0);
    assert_int_equal(f->ev.groups.n, 3001);
    for (uint32_t i = 0; i < 3000; i++) {
        assert_kt_str(f->ev.groups.v[i], "g\xc3\xa9");
    }
    assert_kt_str(f->ev.groups.v[3000], "last");
    free(json);
}

/* ---- rejects ---- */

static void test_decode_not_json_is_rejected_with_yajl_reason(void **state)
{
    struct fx *f = *state;
    assert_int_equal(decode(f, "hello world"), KT_EPARSE);
    assert_string_equal(f->ev.reject, "invalid JSON: lexical error: invalid char in json text");
    assert_int_equal(decode(f, "{\"auditID\" \"x\"}"), KT_EPARSE);
    assert_string_equal(f->ev.reject, "invalid JSON: parse error: object key and value must be "
                                      "separated by a colon (':')");
    assert_int_equal(decode(f, ""), KT_EPARSE);
    assert_string_equal(f->ev.reject, "invalid JSON: parse error: premature EOF");
    assert_int_equal(decode(f, " \n "), KT_EPARSE);
    assert_string_equal(f->ev.reject, "invalid JSON: parse error: premature EOF");
    assert_int_equal(decode(f, EV_HEAD "} trailing"), KT_EPARSE);
    assert_string_equal(f->ev.reject, "invalid JSON: parse error: trailing garbage");
    assert_int_equal(decode(f, EV_HEAD "} \"unterminated"), KT_EPARSE);
    assert_string_equal(f->ev.reject, "invalid JSON: parse error: trailing garbage");
    assert_int_equal(decode(f, EV_HEAD "}" EV_HEAD "}"), KT_EPARSE);
    assert_string_equal(f->ev.reject, "invalid JSON: parse error: trailing garbage");
    /* Whitespace after the object is fine. */
    assert_int_equal(decode(f, EV_HEAD "}\r\n"), 0);
    assert_null(f->ev.reject);
}

static void test_decode_every_truncation_is_truncated_json(void **state)
{
    struct fx *f = *state;
    /* Every proper prefix of a valid event (escapes, UTF-8, numbers, literals included). */
    static const char json[] =
        "{\"auditID\":\"t\\u00e9\\ud83d\\ude00\",\"stage\":\"ResponseComplete\",\"x\":[true,"
        "false,null,-12.5e+3],\"userAgent\":\"\xc3\xa9\xf0\x9f\x98\x80\\n\","
        "\"responseStatus\":{\"code\":403},"
        "\"stageTimestamp\":\"2024-05-01T12:00:00Z\",\"requestObject\":{\"a\":[1]}}";
    for (size_t n = 1; n < sizeof(json) - 1; n++) {
        assert_int_equal(decode_n(f, json, n), KT_EPARSE);
        if (strcmp(f->ev.reject, "truncated JSON") != 0) {
            fail_msg("prefix of %zu bytes: %s", n, f->ev.reject);
        }
    }
    assert_int_equal(decode_n(f, json, sizeof(json) - 1), 0);
    assert_int_equal(f->ev.code, 403);
}

static void test_decode_non_object_is_not_an_audit_event(void **state)
{
    struct fx *f = *state;
    static const char *const inputs[] = {
        "[" EV_HEAD "}]", "[]", "\"event\"", "42", "null", "true", " [1, 2", "[ {",
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        assert_int_equal(decode(f, inputs[i]), KT_EPARSE);
        assert_string_equal(f->ev.reject, "not an audit event: JSON value is not an object");
    }
}

static void test_decode_event_list_is_rejected_by_kind(void **state)
{
    struct fx *f = *state;
    assert_int_equal(decode(f, "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\","
                               "\"metadata\":{},\"items\":[" EV_HEAD "}]}"),
                     KT_EPARSE);
    assert_string_equal(f->ev.reject, "not an audit event (kind EventList)");
    /* Even with every required field present, another kind is not an event. */
    assert_int_equal(decode(f, EV_HEAD ",\"kind\":\"Pod\"}"), KT_EPARSE);
    assert_string_equal(f->ev.reject, "not an audit event (kind Pod)");
    /* A long kind is cut in the message. */
    size_t len;
    char *json = build("{\"kind\":\"", "K", 1000, "\"}", &len);
    assert_int_equal(decode_n(f, json, len), KT_EPARSE);
    assert_int_equal(strlen(f->ev.reject), strlen("not an audit event (kind )") + 64);
    free(json);
}

static void test_decode_missing_required_fields_are_rejected(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *json, *reason;
    } cases[] = {
        {"{}", "not an audit event: no auditID, stage or stageTimestamp"},
        {"{\"stage\":\"Panic\",\"stageTimestamp\":\"2024-05-01T12:00:00Z\"}", "missing auditID"},
        {"{\"auditID\":\"\",\"stage\":\"Panic\",\"stageTimestamp\":\"2024-05-01T12:00:00Z\"}",
         "missing auditID"},
        {"{\"auditID\":null,\"stage\":\"Panic\",\"stageTimestamp\":\"2024-05-01T12:00:00Z\"}",
         "missing auditID"},
        {"{\"auditID\":\"a\",\"stageTimestamp\":\"2024-05-01T12:00:00Z\"}", "missing stage"},
        {"{\"auditID\":\"a\",\"stage\":5,\"stageTimestamp\":\"2024-05-01T12:00:00Z\"}",
         "missing stage"},
        {"{\"auditID\":\"a\",\"stage\":\"Panic\"}", "missing stageTimestamp"},
        {"{\"auditID\":\"a\",\"stage\":\"Panic\",\"timestamp\":\"2024-05-01T12:00:00Z\"}",
         "missing stageTimestamp"},
        {"{\"auditID\":\"a\",\"stage\":\"Panic\",\"stageTimestamp\":\"yesterday\"}",
         "bad stageTimestamp"},
        {"{\"auditID\":\"a\",\"stage\":\"Panic\",\"stageTimestamp\":\"2024-02-30T12:00:00Z\"}",
         "bad stageTimestamp"},
        {"{\"auditID\":\"a\",\"stage\":\"Panic\",\"stageTimestamp\":\"\"}", "bad stageTimestamp"},
        {"{\"auditID\":\"a\",\"stage\":\"Panic\",\"stageTimestamp\":1714564800}",
         "missing stageTimestamp"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(decode(f, cases[i].json), KT_EPARSE);
        assert_string_equal(f->ev.reject, cases[i].reason);
    }
}

static void test_decode_bad_request_received_timestamp_is_zero_not_a_reject(void **state)
{
    struct fx *f = *state;
    assert_int_equal(decode(f, EV_HEAD ",\"requestReceivedTimestamp\":\"soon\"}"), 0);
    assert_int_equal(f->ev.recv_us, 0);
    assert_int_equal(f->ev.ts_us, INT64_C(1714564800500000));
    assert_kt_str(f->ev.f[KT_F_RECV_TS], "soon");
}

static void test_decode_reuse_after_rejects_gives_identical_results(void **state)
{
    struct fx *f = *state;
    struct kt_event first, again;
    assert_int_equal(decode(f, full_event), 0);
    first = f->ev;
    static const char *const bad[] = {"[1,2]", "{\"a\":", "nope", "{\"kind\":\"X\"}", "42"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(decode(f, bad[i]), KT_EPARSE);
    }
    assert_int_equal(decode(f, full_event), 0);
    again = f->ev;
    assert_int_equal(again.ts_us, first.ts_us);
    assert_int_equal(again.code, first.code);
    for (int i = 0; i < KT_F_COUNT; i++) {
        assert_int_equal(again.f[i].len, first.f[i].len);
        if (first.f[i].ptr != NULL) {
            assert_memory_equal(again.f[i].ptr, first.f[i].ptr, first.f[i].len);
        }
    }
    assert_ptr_equal(again.req_obj.ptr, first.req_obj.ptr);
    assert_int_equal(again.req_obj.len, first.req_obj.len);
    assert_ptr_equal(again.resp_obj.ptr, first.resp_obj.ptr);
    assert_int_equal(again.resp_obj.len, first.resp_obj.len);
}

/* ---- batches ---- */

static struct kt_record *add_record(struct kt_batch *b, const char *json)
{
    size_t len = strlen(json);
    assert_int_equal(kt_batch_reserve(b, len), 0);
    memcpy(b->buf + b->len, json, len);
    struct kt_record *rec = kt_batch_add_record(b);
    assert_non_null(rec);
    rec->pos = b->len;
    rec->len = len;
    b->len += len;
    return rec;
}

static void test_decode_batch_mixes_good_bad_and_framer_rejects(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = kt_batch_create();
    assert_non_null(b);
    add_record(b, metadata_event);
    add_record(b, "<not json>");
    add_record(b, "{\"auditID\":\"x\",\"stag")->reject = "value larger than --max-event-size";
    add_record(b, EV_HEAD ",\"userAgent\":\"esc\\u00e9\"}");
    add_record(b, "{\"auditID\":\"a\",\"stageTimestamp\":\"2024-05-01T12:00:00Z\"}");
    add_record(b, full_event);

    assert_int_equal(kt_decode_batch(f->d, b), 0);
    assert_true(b->capevents >= 6);
    for (uint32_t i = 0; i < 6; i++) {
        assert_int_equal(b->events[i].rec, i);
    }
    assert_null(b->events[0].reject);
    assert_kt_str(b->events[0].f[KT_F_AUDIT_ID], "m-1");
    assert_ptr_equal(b->events[0].f[KT_F_AUDIT_ID].ptr, memmem(b->buf, b->len, "m-1", 3));
    assert_string_equal(b->events[1].reject,
                        "invalid JSON: lexical error: invalid char in json text");
    assert_string_equal(b->events[2].reject, "value larger than --max-event-size");
    assert_kt_str(b->events[2].f[KT_F_AUDIT_ID], NULL); /* not decoded at all */
    assert_null(b->events[3].reject);
    assert_kt_str(b->events[3].f[KT_F_USER_AGENT], "esc\xc3\xa9");
    assert_string_equal(b->events[4].reject, "missing stage");
    assert_null(b->events[5].reject);
    assert_int_equal(b->events[5].code, 403);
    assert_true(b->arena.total > 0);

    /* Reused for a bigger batch: events grow to match. */
    kt_batch_reset(b);
    for (int i = 0; i < 700; i++) {
        add_record(b, i % 7 == 3 ? "[]" : metadata_event);
    }
    assert_int_equal(kt_decode_batch(f->d, b), 0);
    assert_true(b->capevents >= 700);
    for (uint32_t i = 0; i < 700; i++) {
        assert_int_equal(b->events[i].rec, i);
        if (i % 7 == 3) {
            assert_string_equal(b->events[i].reject,
                                "not an audit event: JSON value is not an object");
        } else {
            assert_null(b->events[i].reject);
            assert_int_equal(b->events[i].ts_us, INT64_C(1714559400000900));
        }
    }
    kt_batch_destroy(b);
}

static void test_decode_empty_batch_is_fine(void **state)
{
    struct fx *f = *state;
    struct kt_batch *b = kt_batch_create();
    assert_non_null(b);
    assert_int_equal(kt_decode_batch(f->d, b), 0);
    kt_batch_destroy(b);
}

/* ---- RFC 3339 ---- */

static void test_rfc3339_valid_timestamps(void **state)
{
    static const struct {
        const char *s;
        int64_t us;
    } cases[] = {
        {"2024-05-01T12:00:00.123456Z", INT64_C(1714564800123456)},
        {"2024-05-01T12:00:00Z", INT64_C(1714564800000000)},
        {"2024-05-01t12:00:00z", INT64_C(1714564800000000)},
        {"2024-05-01T12:00:00.1Z", INT64_C(1714564800100000)},
        {"2024-05-01T12:00:00.123456789Z", INT64_C(1714564800123456)}, /* truncated to us */
        {"2024-05-01T12:00:00.000000999Z", INT64_C(1714564800000000)},
        {"2024-05-01T14:00:00.5+02:00", INT64_C(1714564800500000)},
        {"2024-05-01T17:30:00+05:30", INT64_C(1714564800000000)},
        {"2024-05-01T04:00:00-08:00", INT64_C(1714564800000000)},
        {"2024-05-02T00:00:00+12:00", INT64_C(1714564800000000)},
        {"2024-05-01T12:00:00+00:00", INT64_C(1714564800000000)},
        {"2024-05-01T12:00:00-00:00", INT64_C(1714564800000000)},
        {"2024-02-29T23:59:59Z", INT64_C(1709251199000000)}, /* leap year */
        {"2000-02-29T00:00:00Z", INT64_C(951782400000000)},  /* divisible by 400 */
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59.5Z", INT64_C(-500000)},
        {"0000-01-01T00:00:00Z", INT64_C(-62167219200000000)},
        {"9999-12-31T23:59:59Z", INT64_C(253402300799000000)},
        {"2016-12-31T23:59:60Z", INT64_C(1483228800000000)},      /* leap second */
        {"2024-01-01T00:00:00+01:00", INT64_C(1704063600000000)}, /* crosses the year */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t us = 12345;
        int rc = kt_parse_rfc3339(cases[i].s, strlen(cases[i].s), &us);
        if (rc != 0 || us != cases[i].us) {
            fail_msg("%s: rc %d, %lld us, want %lld", cases[i].s, rc, (long long)us,
                     (long long)cases[i].us);
        }
    }
}

static void test_rfc3339_rejects_garbage_and_out_of_range(void **state)
{
    static const char *const bad[] = {
        "",
        "2024",
        "yesterday at noon",
        "2024-05-01",
        "2024-05-01T12:00:00",             /* no zone */
        "2024-05-01 12:00:00Z",            /* space separator */
        "2024-05-01T12:00Z",               /* no seconds */
        "2024-5-01T12:00:00Z",             /* one-digit month */
        "2024-00-01T12:00:00Z",            /* month 0 */
        "2024-13-01T12:00:00Z",            /* month 13 */
        "2024-05-00T12:00:00Z",            /* day 0 */
        "2024-05-32T12:00:00Z",            /* day 32 */
        "2024-04-31T12:00:00Z",            /* April has 30 */
        "2023-02-29T12:00:00Z",            /* not a leap year */
        "1900-02-29T12:00:00Z",            /* divisible by 100 */
        "2024-05-01T24:00:00Z",            /* hour 24 */
        "2024-05-01T12:60:00Z",            /* minute 60 */
        "2024-05-01T12:00:61Z",            /* second 61 */
        "2024-05-01T12:00:00.Z",           /* dot without digits */
        "2024-05-01T12:00:00.1234567890Z", /* ten fraction digits */
        "2024-05-01T12:00:00ZZ",           /* trailing bytes */
        "2024-05-01T12:00:00Z ",
        "2024-05-01T12:00:00+0530", /* offset without colon */
        "2024-05-01T12:00:00+05",
        "2024-05-01T12:00:00+24:00", /* offset hours */
        "2024-05-01T12:00:00+05:60", /* offset minutes */
        "2024-05-01T12:00:00+05:3a",
        "2024-05-01X12:00:00Z",
        "2024/05/01T12:00:00Z",
        "2024-05-01T12-00-00Z",
        "+024-05-01T12:00:00Z",
        "2024-05-01T12:00:00.12a4Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t us = 777;
        if (kt_parse_rfc3339(bad[i], strlen(bad[i]), &us) != KT_EPARSE) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
        assert_int_equal(us, 777); /* untouched on failure */
    }
    int64_t us = 0;
    assert_int_equal(kt_parse_rfc3339(NULL, 0, &us), KT_EPARSE);
}

static void test_rfc3339_respects_length_not_nul(void **state)
{
    /* The slice ends before the zone: it must not read on into the Z. */
    static const char s[] = "2024-05-01T12:00:00.123Z";
    int64_t us = 0;
    assert_int_equal(kt_parse_rfc3339(s, sizeof(s) - 2, &us), KT_EPARSE);
    assert_int_equal(kt_parse_rfc3339(s, sizeof(s) - 1, &us), 0);
    assert_int_equal(us, INT64_C(1714564800123000));
}

/* Formatting is the inverse of parsing, before and after the epoch; years past 9999 give
 * nothing rather than a wrong date. */
static void test_rfc3339_format_round_trips(void **state)
{
    (void)state;
    static const int64_t times[] = {0,
                                    1,
                                    -1,
                                    INT64_C(1714564800123456),
                                    INT64_C(951782400000000),
                                    -INT64_C(62135596800000000),
                                    INT64_C(253402300799999999)};
    char buf[32];
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        int64_t back = 0;
        assert_int_equal(kt_format_rfc3339(times[i], buf), 27);
        assert_int_equal(kt_parse_rfc3339(buf, 27, &back), 0);
        assert_true(back == times[i]);
    }
    kt_format_rfc3339(INT64_C(1714564800123456), buf);
    assert_string_equal(buf, "2024-05-01T12:00:00.123456Z");
    kt_format_rfc3339(-1, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
    assert_int_equal(kt_format_rfc3339(INT64_C(253402300800000000), buf), 0);
    assert_string_equal(buf, "");
}

/* The arena keeps its standard blocks across resets: a steady state allocates nothing. */
static void test_arena_reset_reuses_blocks(void **state)
{
    (void)state;
    struct kt_arena a = {0};
    for (int i = 0; i < 40; i++) {
        assert_non_null(kt_arena_alloc(&a, 10000)); /* about 7 blocks of 64 KiB */
    }
    char *big = kt_arena_alloc(&a, 300000); /* an oversized block: freed by reset */
    assert_non_null(big);
    size_t held = a.total;
    kt_arena_reset(&a);
    assert_true(a.total < held);
    size_t kept = a.total;
    assert_true(kept >= 6 * 64 * 1024);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 40; i++) {
            char *p = kt_arena_alloc(&a, 10000);
            assert_non_null(p);
            memset(p, round, 10000);
        }
        assert_int_equal(a.total, kept); /* no new block */
        kt_arena_reset(&a);
    }
    kt_arena_free(&a);
    assert_int_equal(a.total, 0);
    assert_null(a.spare);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_reset_reuses_blocks),
        cmocka_unit_test(test_yajl_bytes_consumed_is_just_past_the_token),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_decode_request_response_event_fills_every_field),
        T(test_decode_metadata_event_has_no_bodies),
        T(test_decode_created_object_name_comes_from_the_body),
        T(test_decode_webhook_item_without_kind_or_api_version),
        T(test_decode_v1beta1_event_uses_stage_timestamp),
        T(test_decode_stage_and_level_names_map_to_enums),
        T(test_decode_escaped_string_goes_to_arena),
        T(test_decode_escaped_strings_survive_the_next_decode),
        T(test_decode_escaped_keys_are_matched_after_unescaping),
        T(test_decode_raw_utf8_strings_are_slices_of_the_input),
        T(test_decode_invalid_utf8_is_invalid_json),
        T(test_decode_one_mib_user_agent),
        T(test_decode_five_mib_request_object_span),
        T(test_decode_body_spans_equal_their_json_text),
        T(test_decode_scalar_bodies_are_absent),
        T(test_decode_deeply_nested_body_span),
        T(test_decode_unexpected_types_are_ignored),
        T(test_decode_response_code_takes_only_int32_integers),
        T(test_decode_duplicate_keys_last_one_wins),
        T(test_decode_many_escaped_groups),
        T(test_decode_not_json_is_rejected_with_yajl_reason),
        T(test_decode_every_truncation_is_truncated_json),
        T(test_decode_non_object_is_not_an_audit_event),
        T(test_decode_event_list_is_rejected_by_kind),
        T(test_decode_missing_required_fields_are_rejected),
        T(test_decode_bad_request_received_timestamp_is_zero_not_a_reject),
        T(test_decode_reuse_after_rejects_gives_identical_results),
        T(test_decode_batch_mixes_good_bad_and_framer_rejects),
        T(test_decode_empty_batch_is_fine),
#undef T
        cmocka_unit_test(test_rfc3339_valid_timestamps),
        cmocka_unit_test(test_rfc3339_rejects_garbage_and_out_of_range),
        cmocka_unit_test(test_rfc3339_respects_length_not_nul),
        cmocka_unit_test(test_rfc3339_format_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
