/*
 * test_convert.c: GKE LogEntries and AKSAudit rows become the audit Events they stand for,
 * field by field, and no input (malformed, of wrong types, cut anywhere) crashes a converter
 * or gives anything but an Event, a skip or KT_EPARSE.
 *
 * Records are written with single quotes for readability and turned into JSON before the
 * call. Each case parses the Event produced with yajl_tree and asserts on its fields.
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

#include "convert.h"

/* One conversion: its return code, output and the Event parsed back. */
struct conv {
    int rc;                    /* what the converter returned */
    const char *why;           /* its reason on KT_EPARSE */
    struct kt_convert_out out; /* its output */
    yajl_val ev;               /* the Event parsed back, NULL when none was written */
};

/* s with every ' turned into " (heap, caller frees). */
static char *dq(const char *s)
{
    char *d = strdup(s);

    assert_non_null(d);
    for (char *q = d; *q != '\0'; q++) {
        if (*q == '\'') {
            *q = '"';
        }
    }
    return d;
}

/* Convert the single-quoted record rec with fn into c; the Event, if any, must be JSON. */
static void run(int (*fn)(const char *, size_t, struct kt_convert_out *, const char **),
                const char *rec, struct conv *c)
{
    char *json = dq(rec);
    char err[256];

    memset(c, 0, sizeof(*c));
    c->rc = fn(json, strlen(json), &c->out, &c->why);
    free(json);
    if (c->rc == 0 && c->out.skip == NULL) {
        char *text = NULL;
        assert_true(c->out.json.len > 0);
        text = strndup(c->out.json.p, c->out.json.len);
        assert_non_null(text);
        c->ev = yajl_tree_parse(text, err, sizeof(err));
        if (c->ev == NULL) {
            fail_msg("converter wrote invalid JSON (%s): %s", err, text);
        }
        free(text);
    } else {
        assert_int_equal(c->out.json.len, 0);
    }
}

static void done(struct conv *c)
{
    yajl_tree_free(c->ev);
    kt_buf_free(&c->out.json);
}

/* The value at the '.'-separated path of the Event ("objectRef.name"), or NULL. */
static yajl_val at(const struct conv *c, const char *path)
{
    const char *parts[8];
    char buf[256];
    size_t n = 0;

    assert_true(strlen(path) < sizeof(buf));
    strcpy(buf, path);
    for (char *tok = strtok(buf, "."); tok != NULL && n < 7; tok = strtok(NULL, ".")) {
        parts[n++] = tok;
    }
    parts[n] = NULL;
    return yajl_tree_get(c->ev, parts, yajl_t_any);
}

/* The string at path, or NULL when absent or not a string. */
static const char *str(const struct conv *c, const char *path)
{
    yajl_val v = at(c, path);

    return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

/* The integer at path; the test fails when it is not one. */
static long long num(const struct conv *c, const char *path)
{
    yajl_val v = at(c, path);

    if (!YAJL_IS_INTEGER(v)) {
        fail_msg("%s is not an integer", path);
    }
    return v->u.number.i;
}

/* An annotation's value (keys hold dots, so no path). */
static const char *annotation(const struct conv *c, const char *key)
{
    const char *path[] = {"annotations", key, NULL};
    yajl_val v = yajl_tree_get(c->ev, path, yajl_t_string);

    return v != NULL ? v->u.string : NULL;
}

/* s, or "(absent)" for NULL, so that a missing field fails with a message. */
static const char *shown(const char *s)
{
    return s != NULL ? s : "(absent)";
}

#define assert_str(c, path, want) assert_string_equal(shown(str((c), (path))), (want))
#define assert_absent(c, path) assert_null(at((c), (path)))

/* A LogEntry of GKE: resource type, AuditLog members, labels and operation to fill in. */
#define GKE(pp, extra)                                                                             \
    "{'insertId':'ins-1','logName':'projects/p/logs/cloudaudit.googleapis.com/activity',"          \
    "'resource':{'type':'k8s_cluster','labels':{'project_id':'p','location':'europe-west1',"       \
    "'cluster_name':'prod-eu'}},'timestamp':'2024-05-12T05:13:01.123456Z',"                        \
    "'receiveTimestamp':'2024-05-12T05:13:09Z','protoPayload':{'@type':"                           \
    "'type.googleapis.com/google.cloud.audit.AuditLog','serviceName':'k8s.io',"                    \
    "'authenticationInfo':{'principalEmail':'alice@example.com'},'requestMetadata':{"              \
    "'callerIp':'203.0.113.7','callerSuppliedUserAgent':'kubectl/v1.29.0'}," pp "}" extra "}"

static void test_gke_pod_create_is_201_request_response_without_type(void **state)
{
    struct conv c;

    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.core.v1.pods.create','resourceName':"
            "'core/v1/namespaces/default/pods/web-1','status':{},'request':{'@type':"
            "'core.k8s.io/v1.Pod','apiVersion':'v1','kind':'Pod','metadata':{'name':'web-1',"
            "'@type':'kept below the top'},'spec':{'replicas':3,'ratio':1.50}},'response':{"
            "'@type':'core.k8s.io/v1.Pod','kind':'Pod','metadata':{'uid':'u-1'}}",
            ",'operation':{'id':'op-1','producer':'k8s.io','first':true,'last':true}"),
        &c);
    assert_int_equal(c.rc, 0);
    assert_null(c.out.skip);
    assert_str(&c, "kind", "Event");
    assert_str(&c, "apiVersion", "audit.k8s.io/v1");
    assert_str(&c, "auditID", "op-1");
    assert_str(&c, "stage", "ResponseComplete");
    assert_str(&c, "level", "RequestResponse");
    assert_str(&c, "verb", "create");
    assert_str(&c, "requestURI", "/api/v1/namespaces/default/pods"); /* posted to its collection */
    assert_str(&c, "objectRef.resource", "pods");
    assert_str(&c, "objectRef.namespace", "default");
    assert_str(&c, "objectRef.name", "web-1");
    assert_str(&c, "objectRef.apiVersion", "v1");
    assert_absent(&c, "objectRef.apiGroup");
    assert_absent(&c, "objectRef.subresource");
    assert_str(&c, "user.username", "alice@example.com");
    assert_str(&c, "userAgent", "kubectl/v1.29.0");
    assert_true(YAJL_IS_ARRAY(at(&c, "sourceIPs")));
    assert_int_equal(at(&c, "sourceIPs")->u.array.len, 1);
    assert_string_equal(at(&c, "sourceIPs")->u.array.values[0]->u.string, "203.0.113.7");
    assert_int_equal(num(&c, "responseStatus.code"), 201);
    assert_absent(&c, "responseStatus.status");
    assert_str(&c, "requestReceivedTimestamp", "2024-05-12T05:13:01.123456Z");
    assert_str(&c, "stageTimestamp", "2024-05-12T05:13:01.123456Z");
    assert_absent(&c, "requestObject.@type");
    assert_str(&c, "requestObject.kind", "Pod");
    assert_str(&c, "requestObject.metadata.@type", "kept below the top");
    assert_int_equal(num(&c, "requestObject.spec.replicas"), 3);
    assert_absent(&c, "responseObject.@type");
    assert_str(&c, "responseObject.metadata.uid", "u-1");
    assert_absent(&c, "annotations");
    assert_string_equal(c.out.cluster, "prod-eu");
    assert_int_equal(c.out.truncated, 0);
    /* numbers keep their text */
    assert_non_null(memmem(c.out.json.p, c.out.json.len, "\"ratio\":1.50", 12));
    done(&c);
}

static void test_gke_refused_get_stays_403_with_annotations(void **state)
{
    struct conv c;

    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.core.v1.secrets.get','resourceName':"
            "'core/v1/namespaces/kube-system/secrets/admin-token','status':{'code':7,'message':"
            "'secrets \\'admin-token\\' is forbidden'}",
            ",'labels':{'authorization.k8s.io/decision':'forbid','authorization.k8s.io/reason':"
            "'','n':1},'operation':{'id':'op-2','first':true,'last':true}"),
        &c);
    assert_int_equal(c.rc, 0);
    assert_str(&c, "verb", "get");
    assert_str(&c, "level", "Metadata");
    assert_int_equal(num(&c, "responseStatus.code"), 403);
    assert_str(&c, "responseStatus.status", "Failure");
    assert_str(&c, "responseStatus.message", "secrets \"admin-token\" is forbidden");
    assert_string_equal(annotation(&c, "authorization.k8s.io/decision"), "forbid");
    assert_string_equal(annotation(&c, "authorization.k8s.io/reason"), "");
    assert_null(annotation(&c, "n")); /* annotations are strings only */
    assert_absent(&c, "requestObject");
    assert_absent(&c, "responseObject");
    done(&c);
}

static void test_gke_refused_create_stays_403(void **state)
{
    struct conv c;

    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.rbac.v1.clusterrolebindings.create','resourceName':"
            "'rbac.authorization.k8s.io/v1/clusterrolebindings/evil','status':{'code':7},"
            "'request':{'kind':'ClusterRoleBinding'}",
            ""),
        &c);
    assert_int_equal(c.rc, 0);
    assert_int_equal(num(&c, "responseStatus.code"), 403);
    assert_str(&c, "responseStatus.status", "Failure");
    assert_absent(&c, "responseStatus.message");
    assert_str(&c, "level", "Request");
    assert_str(&c, "auditID", "ins-1"); /* no operation: insertId */
    assert_str(&c, "objectRef.apiGroup", "rbac.authorization.k8s.io");
    assert_str(&c, "requestURI", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings");
    done(&c);
}

static void test_gke_status_response_code_wins_over_rpc_code(void **state)
{
    struct conv c;

    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.core.v1.pods.delete','resourceName':"
            "'core/v1/namespaces/default/pods/gone','status':{'code':5},'response':{'@type':"
            "'core.k8s.io/v1.Status','status':'Failure','reason':'NotFound','message':"
            "'pods gone not found','code':404}",
            ""),
        &c);
    assert_int_equal(c.rc, 0);
    assert_int_equal(num(&c, "responseStatus.code"), 404);
    assert_str(&c, "responseStatus.reason", "NotFound");
    assert_str(&c, "responseStatus.message", "pods gone not found");
    assert_str(&c, "level", "RequestResponse");
    assert_str(&c, "responseObject.reason", "NotFound");
    done(&c);

    /* a Status said by kind, its code wins over a missing rpc code */
    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.core.v1.pods.create','resourceName':"
            "'core/v1/namespaces/default/pods/x','response':{'kind':'Status','code':422}",
            ""),
        &c);
    assert_int_equal(num(&c, "responseStatus.code"), 422);
    assert_str(&c, "responseStatus.status", "Failure");
    done(&c);
}

static void test_gke_rpc_codes_map_to_http(void **state)
{
    static const struct {
        const char *code;
        long long http;
    } cases[] = {
        {"0", 200},    {"3", 400},   {"4", 504},  {"5", 404},    {"6", 409},
        {"7", 403},    {"8", 429},   {"10", 409}, {"13", 500},   {"14", 503},
        {"16", 401},   {"2", 500},   {"99", 500}, {"-1", 500},   {"'7'", 500},
        {"null", 200}, {"7.0", 500}, {"{}", 500}, {"true", 500},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char rec[2048];
        struct conv c;
        snprintf(rec, sizeof(rec),
                 GKE("'methodName':'io.k8s.core.v1.pods.get','resourceName':"
                     "'core/v1/namespaces/a/pods/b','status':{'code':%s}",
                     ""),
                 cases[i].code);
        run(kt_convert_gke, rec, &c);
        assert_int_equal(c.rc, 0);
        if (num(&c, "responseStatus.code") != cases[i].http) {
            fail_msg("status.code %s gave %lld", cases[i].code, num(&c, "responseStatus.code"));
        }
        done(&c);
    }
}

static void test_gke_exec_started_on_subresource_exec(void **state)
{
    struct conv c;

    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.core.v1.pods.exec.create','resourceName':"
            "'core/v1/namespaces/default/pods/web-1/exec'",
            ",'operation':{'id':'op-3','first':true}"),
        &c);
    assert_int_equal(c.rc, 0);
    assert_str(&c, "stage", "ResponseStarted");
    assert_str(&c, "verb", "create");
    assert_str(&c, "objectRef.resource", "pods");
    assert_str(&c, "objectRef.name", "web-1");
    assert_str(&c, "objectRef.subresource", "exec");
    assert_str(&c, "requestURI", "/api/v1/namespaces/default/pods/web-1/exec");
    assert_int_equal(num(&c, "responseStatus.code"), 201);
    done(&c);

    /* the same request's completion */
    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.core.v1.pods.exec.create','resourceName':"
            "'core/v1/namespaces/default/pods/web-1/exec'",
            ",'operation':{'id':'op-3','last':true}"),
        &c);
    assert_str(&c, "stage", "ResponseComplete");
    done(&c);
}

static void test_gke_exec_subresource_from_method_name(void **state)
{
    struct conv c;

    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.core.v1.pods.attach.create','resourceName':"
            "'core/v1/namespaces/default/pods/web-1'",
            ""),
        &c);
    assert_int_equal(c.rc, 0);
    assert_str(&c, "objectRef.subresource", "attach");
    assert_str(&c, "requestURI", "/api/v1/namespaces/default/pods/web-1/attach");
    done(&c);

    /* a plain method adds nothing */
    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.core.v1.pods.get','resourceName':"
            "'core/v1/namespaces/default/pods/web-1'",
            ""),
        &c);
    assert_absent(&c, "objectRef.subresource");
    done(&c);
}

static void test_gke_namespace_itself(void **state)
{
    struct conv c;

    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.core.v1.namespaces.delete','resourceName':"
            "'core/v1/namespaces/team-a'",
            ""),
        &c);
    assert_int_equal(c.rc, 0);
    assert_str(&c, "objectRef.resource", "namespaces");
    assert_str(&c, "objectRef.name", "team-a");
    assert_absent(&c, "objectRef.namespace");
    assert_str(&c, "requestURI", "/api/v1/namespaces/team-a");
    assert_int_equal(num(&c, "responseStatus.code"), 200);
    done(&c);

    /* its finalize subresource, and a list of pods inside it */
    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.core.v1.namespaces.finalize.update','resourceName':"
            "'core/v1/namespaces/team-a/finalize'",
            ""),
        &c);
    assert_str(&c, "objectRef.name", "team-a");
    assert_str(&c, "objectRef.subresource", "finalize");
    assert_absent(&c, "objectRef.namespace");
    done(&c);
    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.core.v1.pods.list','resourceName':"
            "'core/v1/namespaces/team-a/pods'",
            ""),
        &c);
    assert_str(&c, "objectRef.namespace", "team-a");
    assert_str(&c, "objectRef.resource", "pods");
    assert_absent(&c, "objectRef.name");
    assert_str(&c, "requestURI", "/api/v1/namespaces/team-a/pods");
    done(&c);
}

static void test_gke_cluster_wide_secrets_list(void **state)
{
    struct conv c;

    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.core.v1.secrets.list','resourceName':'core/v1/secrets'", ""), &c);
    assert_int_equal(c.rc, 0);
    assert_str(&c, "verb", "list");
    assert_str(&c, "objectRef.resource", "secrets");
    assert_absent(&c, "objectRef.namespace");
    assert_absent(&c, "objectRef.name");
    assert_str(&c, "requestURI", "/api/v1/secrets");
    done(&c);
}

static void test_gke_core_and_apps_group_uris(void **state)
{
    struct conv c;

    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.apps.v1.deployments.scale.patch','resourceName':"
            "'apps/v1/namespaces/shop/deployments/cart/scale'",
            ""),
        &c);
    assert_int_equal(c.rc, 0);
    assert_str(&c, "verb", "patch");
    assert_str(&c, "objectRef.apiGroup", "apps");
    assert_str(&c, "objectRef.apiVersion", "v1");
    assert_str(&c, "objectRef.subresource", "scale");
    assert_str(&c, "requestURI", "/apis/apps/v1/namespaces/shop/deployments/cart/scale");
    done(&c);

    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.core.v1.nodes.get','resourceName':'core/v1/nodes/n-1'", ""), &c);
    assert_str(&c, "requestURI", "/api/v1/nodes/n-1");
    assert_absent(&c, "objectRef.apiGroup");
    done(&c);

    /* a non-resource URL is the requestURI itself */
    run(kt_convert_gke, GKE("'methodName':'io.k8s.get','resourceName':'/healthz'", ""), &c);
    assert_str(&c, "requestURI", "/healthz");
    assert_str(&c, "verb", "get");
    assert_absent(&c, "objectRef");
    done(&c);
}

static void test_gke_truncated_label(void **state)
{
    struct conv c;

    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.core.v1.configmaps.update','resourceName':"
            "'core/v1/namespaces/a/configmaps/big'",
            ",'labels':{'audit.k8s.io/truncated':'true'}"),
        &c);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.out.truncated, 1);
    assert_string_equal(annotation(&c, "audit.k8s.io/truncated"), "true");
    done(&c);

    run(kt_convert_gke,
        GKE("'methodName':'io.k8s.core.v1.configmaps.update','resourceName':"
            "'core/v1/namespaces/a/configmaps/big'",
            ",'labels':{'audit.k8s.io/truncated':'false'}"),
        &c);
    assert_int_equal(c.out.truncated, 0);
    done(&c);
}

static void test_gke_other_resource_type_or_service_skipped(void **state)
{
    static const char *recs[] = {
        "{'resource':{'type':'k8s_container'},'textPayload':'hello'}",
        "{'resource':{'type':'gke_cluster'},'protoPayload':{'serviceName':"
        "'container.googleapis.com','methodName':'google.container.v1.ClusterManager.Update'}}",
        "{'resource':{'type':'k8s_cluster'},'protoPayload':{'serviceName':"
        "'container.googleapis.com','methodName':'x.y'}}",
        "{'resource':{'type':'k8s_cluster'},'protoPayload':{'methodName':'io.k8s.core.v1.pods.get'}"
        "}",
        "{'protoPayload':{'serviceName':'k8s.io','methodName':'io.k8s.core.v1.pods.get'}}",
    };

    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        struct conv c;
        run(kt_convert_gke, recs[i], &c);
        assert_int_equal(c.rc, 0);
        assert_non_null(c.out.skip);
        assert_null(c.ev);
        done(&c);
    }
}

static void test_gke_malformed_entries_are_parse_errors(void **state)
{
    static const char *recs[] = {
        "",
        "not json",
        "{'resource':",
        "[]",
        "'a string'",
        "{} {}",
        "{/* comment */}",
        "{}",
        "{'resource':{'type':'k8s_cluster'},'protoPayload':'a string'}",
        "{'resource':{'type':'k8s_cluster'},'protoPayload':{'serviceName':'k8s.io'}}",
        "{'resource':{'type':'k8s_cluster'},'protoPayload':{'serviceName':'k8s.io',"
        "'methodName':7}}",
        "{'resource':{'type':'k8s_cluster'},'protoPayload':{'serviceName':'k8s.io',"
        "'methodName':''}}",
    };

    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        struct conv c;
        run(kt_convert_gke, recs[i], &c);
        if (c.rc != KT_EPARSE) {
            fail_msg("record %zu gave %d", i, c.rc);
        }
        assert_non_null(c.why);
        assert_null(c.out.skip);
        done(&c);
    }
}

static void test_gke_bad_resource_names_give_event_without_object_ref(void **state)
{
    static const char *names[] = {
        "core",
        "core/v1",
        "",
        "core//pods",
        "core/v1/pods/",
        "core/v1/nodes/n-1/proxy/extra",
        "core/v1/namespaces/a/pods/b/exec/extra",
        "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p",
        "core/v1/namespaces",
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char rec[2048];
        struct conv c;
        snprintf(rec, sizeof(rec),
                 GKE("'methodName':'io.k8s.core.v1.pods.exec.create','resourceName':'%s'", ""),
                 names[i]);
        run(kt_convert_gke, rec, &c);
        assert_int_equal(c.rc, 0);
        assert_str(&c, "verb", "create");
        if (i == sizeof(names) / sizeof(names[0]) - 1) {
            /* core/v1/namespaces is the list of namespaces: it has a shape */
            assert_str(&c, "objectRef.resource", "namespaces");
        } else if (at(&c, "objectRef") != NULL || at(&c, "requestURI") != NULL) {
            fail_msg("resourceName '%s' gave an objectRef or requestURI", names[i]);
        }
        done(&c);
    }
}

static void test_gke_wrong_types_anywhere_never_crash(void **state)
{
    static const char *recs[] = {
        "{'resource':'k8s_cluster','protoPayload':{'serviceName':'k8s.io','methodName':'a.get'}}",
        "{'resource':{'type':'k8s_cluster','labels':'x'},'labels':[1,2],'operation':'op',"
        "'timestamp':5,'insertId':{},'protoPayload':{'serviceName':'k8s.io','methodName':"
        "'get','resourceName':7,'authenticationInfo':'a','requestMetadata':[],'status':'s',"
        "'request':'text','response':[1,{'@type':'x'}]}}",
        "{'resource':{'type':'k8s_cluster','labels':{'cluster_name':3}},'operation':{'id':3,"
        "'first':'true','last':1},'protoPayload':{'serviceName':'k8s.io','methodName':"
        "'io.k8s.core.v1.pods.create.','resourceName':'core/v1/namespaces/a/pods/b',"
        "'authenticationInfo':{'principalEmail':null},'requestMetadata':{'callerIp':1},"
        "'status':{'code':7,'message':7},'response':{'kind':'Status','code':'403'},"
        "'request':null}}",
        "{'resource':{'type':'k8s_cluster'},'protoPayload':{'serviceName':'k8s.io','methodName':"
        "'.','resourceName':'core/v1/namespaces/a/pods/b','response':{'@type':'.Status',"
        "'code':99999999999999999999}}}",
    };

    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        struct conv c;
        run(kt_convert_gke, recs[i], &c);
        if (c.rc == 0 && c.out.skip == NULL) {
            assert_str(&c, "kind", "Event");
            assert_non_null(at(&c, "responseStatus.code"));
        } else if (c.rc != 0) {
            assert_int_equal(c.rc, KT_EPARSE);
        }
        done(&c);
    }

    /* the third one: a Status code of the wrong type falls back to the rpc code */
    struct conv c;
    run(kt_convert_gke, recs[2], &c);
    assert_int_equal(num(&c, "responseStatus.code"), 403);
    assert_str(&c, "stage", "ResponseComplete"); /* first is not the JSON true */
    assert_str(&c, "verb", "");
    assert_absent(&c, "responseStatus.message");
    assert_absent(&c, "sourceIPs");
    assert_absent(&c, "requestObject");
    assert_string_equal(c.out.cluster, "");
    done(&c);
}

static void test_gke_every_prefix_and_byte_flip_is_safe(void **state)
{
    char *rec = dq(GKE("'methodName':'io.k8s.core.v1.pods.exec.create','resourceName':"
                       "'core/v1/namespaces/default/pods/web-1/exec','status':{'code':7},"
                       "'request':{'@type':'x','a':[1,2.5e3,{'b':null}]},'response':{'kind':"
                       "'Status','code':403}",
                       ",'labels':{'audit.k8s.io/truncated':'true'},'operation':{'id':'o',"
                       "'first':true}"));
    size_t n = strlen(rec);
    static const char flips[] = "\"{}[],:\\/.0x\x80";

    for (size_t len = 0; len <= n; len++) {
        struct kt_convert_out out = {0};
        const char *why = NULL;
        int rc = kt_convert_gke(rec, len, &out, &why);
        assert_true(rc == 0 || rc == KT_EPARSE);
        assert_true(rc != 0 || len == n);
        rc = kt_convert_aks_row(rec, len, &out, &why);
        assert_true(rc == 0 || rc == KT_EPARSE);
        kt_buf_free(&out.json);
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t f = 0; f < sizeof(flips) - 1; f++) {
            struct kt_convert_out out = {0};
            const char *why = NULL;
            char keep = rec[i];
            rec[i] = flips[f];
            int rc = kt_convert_gke(rec, n, &out, &why);
            assert_true(rc == 0 || rc == KT_EPARSE);
            rec[i] = keep;
            kt_buf_free(&out.json);
        }
    }
    free(rec);
}

/* A GKE entry whose request is depth nested arrays, in b. */
static void deep_gke(struct kt_buf *b, int depth)
{
    b->len = 0;
    assert_int_equal(kt_buf_puts(b, "{\"resource\":{\"type\":\"k8s_cluster\"},\"protoPayload\":"
                                    "{\"serviceName\":\"k8s.io\",\"methodName\":\"a.get\","
                                    "\"request\":"),
                     0);
    for (int i = 0; i < depth; i++) {
        assert_int_equal(kt_buf_puts(b, "["), 0);
    }
    for (int i = 0; i < depth; i++) {
        assert_int_equal(kt_buf_puts(b, "]"), 0);
    }
    assert_int_equal(kt_buf_puts(b, "}}"), 0);
}

static void test_gke_deep_nesting_is_a_parse_error(void **state)
{
    struct kt_buf b = {0};
    struct kt_convert_out out = {0};
    const char *why = NULL;

    deep_gke(&b, 100000);
    assert_int_equal(kt_convert_gke(b.p, b.len, &out, &why), KT_EPARSE);
    assert_string_equal(why, "JSON nested too deeply");
    assert_int_equal(out.json.len, 0);
    kt_buf_free(&b);
}

static void test_gke_deepest_accepted_body_is_written(void **state)
{
    struct kt_buf b = {0};
    struct kt_convert_out out = {0};
    const char *why = NULL;

    deep_gke(&b, 118); /* with the entry's two levels: 120, the limit */
    assert_int_equal(kt_convert_gke(b.p, b.len, &out, &why), 0);
    assert_non_null(memmem(out.json.p, out.json.len, "\"requestObject\":[[[", 19));
    kt_buf_free(&out.json);
    deep_gke(&b, 119);
    assert_int_equal(kt_convert_gke(b.p, b.len, &out, &why), KT_EPARSE);
    assert_int_equal(out.json.len, 0);
    kt_buf_free(&b);
}

static void test_gke_output_is_appended_and_kept_on_failure(void **state)
{
    struct kt_convert_out out = {0};
    const char *why = NULL;
    char *rec = dq(GKE("'methodName':'io.k8s.core.v1.pods.get','resourceName':'core/v1/pods'", ""));

    assert_int_equal(kt_buf_puts(&out.json, "prefix:"), 0);
    assert_int_equal(kt_convert_gke(rec, strlen(rec), &out, &why), 0);
    assert_memory_equal(out.json.p, "prefix:{\"kind\":\"Event\"", 22);
    size_t len = out.json.len;
    assert_int_equal(kt_convert_gke("{", 1, &out, &why), KT_EPARSE);
    assert_int_equal(out.json.len, len);
    assert_string_equal(out.cluster, "");
    kt_buf_free(&out.json);
    free(rec);
}

static void test_gke_long_cluster_name_cut_at_character_boundary(void **state)
{
    struct kt_buf b = {0};
    struct kt_convert_out out = {0};
    const char *why = NULL;

    assert_int_equal(kt_buf_puts(&b, "{\"resource\":{\"type\":\"k8s_cluster\",\"labels\":"
                                     "{\"cluster_name\":\"ab"),
                     0);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(kt_buf_puts(&b, "\xc3\xa9"), 0); /* é: 2 bytes */
    }
    assert_int_equal(kt_buf_puts(&b, "\"}},\"protoPayload\":{\"serviceName\":\"k8s.io\","
                                     "\"methodName\":\"a.get\"}}"),
                     0);
    assert_int_equal(kt_convert_gke(b.p, b.len, &out, &why), 0);
    assert_int_equal(strlen(out.cluster), 254); /* "ab" and 126 é: 255 would split one */
    assert_int_equal((unsigned char)out.cluster[253], 0xa9);
    kt_buf_free(&out.json);
    kt_buf_free(&b);
}

/* ---- AKS ---------------------------------------------------------------------------------- */

static void test_aks_row_with_string_dynamic_columns(void **state)
{
    struct conv c;

    run(kt_convert_aks_row,
        "{'TenantId':'t','TimeGenerated':'2024-05-12T05:13:02.5Z','AuditId':'a-1','Stage':"
        "'ResponseComplete','Level':'RequestResponse','RequestUri':"
        "'/api/v1/namespaces/default/pods?limit=500','Verb':'list','User':"
        "'{\\'username\\':\\'alice\\',\\'groups\\':[\\'system:authenticated\\']}',"
        "'ImpersonatedUser':'','SourceIps':'[\\'10.0.0.1\\',\\'10.0.0.2\\']','UserAgent':"
        "'kubectl/v1.29','ObjectRef':'{\\'resource\\':\\'pods\\',\\'namespace\\':"
        "\\'default\\',\\'apiVersion\\':\\'v1\\'}','ResponseStatus':"
        "'{\\'metadata\\':{},\\'code\\':200}','RequestObject':'','ResponseObject':"
        "'{\\'kind\\':\\'PodList\\',\\'items\\':[]}','RequestReceivedTime':"
        "'2024-05-12T05:13:01.100000Z','StageReceivedTime':'2024-05-12T05:13:01.200000Z',"
        "'Annotations':'{\\'authorization.k8s.io/decision\\':\\'allow\\'}','PodName':"
        "'kube-apiserver-1','_ResourceId':'/subscriptions/s/resourcegroups/rg/providers/"
        "microsoft.containerservice/managedclusters/prod-aks','Type':'AKSAudit'}",
        &c);
    assert_int_equal(c.rc, 0);
    assert_null(c.out.skip);
    assert_str(&c, "kind", "Event");
    assert_str(&c, "apiVersion", "audit.k8s.io/v1");
    assert_str(&c, "auditID", "a-1");
    assert_str(&c, "stage", "ResponseComplete");
    assert_str(&c, "level", "RequestResponse");
    assert_str(&c, "requestURI", "/api/v1/namespaces/default/pods?limit=500");
    assert_str(&c, "verb", "list");
    assert_str(&c, "user.username", "alice");
    assert_true(YAJL_IS_ARRAY(at(&c, "user.groups")));
    assert_absent(&c, "impersonatedUser");
    assert_int_equal(at(&c, "sourceIPs")->u.array.len, 2);
    assert_str(&c, "userAgent", "kubectl/v1.29");
    assert_str(&c, "objectRef.resource", "pods");
    assert_int_equal(num(&c, "responseStatus.code"), 200);
    assert_absent(&c, "requestObject");
    assert_str(&c, "responseObject.kind", "PodList");
    assert_str(&c, "requestReceivedTimestamp", "2024-05-12T05:13:01.100000Z");
    assert_str(&c, "stageTimestamp", "2024-05-12T05:13:01.200000Z");
    assert_string_equal(annotation(&c, "authorization.k8s.io/decision"), "allow");
    assert_absent(&c, "PodName");
    assert_absent(&c, "TimeGenerated");
    assert_string_equal(c.out.cluster, "prod-aks");
    assert_int_equal(c.out.truncated, 0);
    done(&c);
}

static void test_aks_row_with_object_columns(void **state)
{
    struct conv c;

    run(kt_convert_aks_row,
        "{'TimeGenerated':'2024-05-12T05:13:02Z','AuditId':'a-2','Stage':'ResponseStarted',"
        "'Level':'Request','Verb':'create','RequestUri':'/api/v1/namespaces/a/pods/b/exec?"
        "command=sh','User':{'username':'bob'},'ImpersonatedUser':{'username':'system:admin'},"
        "'SourceIps':['192.0.2.1'],'ObjectRef':{'resource':'pods','namespace':'a','name':'b',"
        "'subresource':'exec'},'ResponseStatus':{'code':101},'RequestObject':{'n':1.0e2},"
        "'Annotations':{'k':'v','n':3}}",
        &c);
    assert_int_equal(c.rc, 0);
    assert_str(&c, "stage", "ResponseStarted");
    assert_str(&c, "user.username", "bob");
    assert_str(&c, "impersonatedUser.username", "system:admin");
    assert_string_equal(at(&c, "sourceIPs")->u.array.values[0]->u.string, "192.0.2.1");
    assert_str(&c, "objectRef.subresource", "exec");
    assert_int_equal(num(&c, "responseStatus.code"), 101);
    assert_absent(&c, "responseObject");
    assert_absent(&c, "requestReceivedTimestamp");
    assert_str(&c, "stageTimestamp", "2024-05-12T05:13:02Z"); /* TimeGenerated */
    assert_string_equal(annotation(&c, "k"), "v");
    assert_null(annotation(&c, "n"));
    assert_non_null(memmem(c.out.json.p, c.out.json.len, "\"n\":1.0e2", 9));
    assert_string_equal(c.out.cluster, "");
    done(&c);
}

static void test_aks_row_skipped_too_big_object_is_truncated(void **state)
{
    struct conv c;

    run(kt_convert_aks_row,
        "{'AuditId':'a-3','Verb':'update','RequestObject':'skipped-too-big-size-object',"
        "'ResponseObject':'skipped-too-big-size-object','User':'skipped-too-big-size-object'}",
        &c);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.out.truncated, 1);
    assert_absent(&c, "requestObject");
    assert_absent(&c, "responseObject");
    assert_absent(&c, "user");
    assert_str(&c, "verb", "update");
    done(&c);

    /* only the bodies say so */
    run(kt_convert_aks_row, "{'AuditId':'a-3','User':'skipped-too-big-size-object'}", &c);
    assert_int_equal(c.out.truncated, 0);
    done(&c);
}

static void test_aks_row_cluster_is_lower_cased_last_segment(void **state)
{
    static const char *recs[] = {
        "{'AuditId':'a','_ResourceId':'/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/"
        "MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/Prod-AKS'}",
        "{'AuditId':'a','ResourceId':'/subscriptions/s/managedClusters/prod-aks/'}",
        "{'AuditId':'a','_ResourceId':'','ResourceId':'PROD-AKS'}",
    };

    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        struct conv c;
        run(kt_convert_aks_row, recs[i], &c);
        assert_int_equal(c.rc, 0);
        assert_string_equal(c.out.cluster, "prod-aks");
        done(&c);
    }
}

static void test_aks_row_unreadable_columns_are_absent(void **state)
{
    struct conv c;

    run(kt_convert_aks_row,
        "{'AuditId':'a-4','User':'not json','ImpersonatedUser':'{}','ObjectRef':'[1]',"
        "'SourceIps':'{\\'a\\':1}','ResponseStatus':'{\\'code\\':','RequestObject':'null',"
        "'ResponseObject':'\\'text body\\'','Annotations':7,'Stage':3,'Verb':'','Level':null}",
        &c);
    assert_int_equal(c.rc, 0);
    assert_absent(&c, "user");
    assert_absent(&c, "impersonatedUser");
    assert_absent(&c, "objectRef");
    assert_absent(&c, "sourceIPs");
    assert_absent(&c, "responseStatus");
    assert_absent(&c, "requestObject");
    assert_str(&c, "responseObject", "text body"); /* a JSON string is a value */
    assert_absent(&c, "annotations");
    assert_absent(&c, "stage");
    assert_absent(&c, "verb");
    assert_absent(&c, "level");
    assert_str(&c, "auditID", "a-4");
    done(&c);
}

static void test_aks_row_malformed_is_a_parse_error(void **state)
{
    static const char *recs[] = {
        "",
        "nope",
        "[{'AuditId':'a'}]",
        "{'AuditId':",
        "{'Verb':'get'}",
        "{'AuditId':7}",
        "{'AuditId':''}",
    };

    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        struct conv c;
        run(kt_convert_aks_row, recs[i], &c);
        if (c.rc != KT_EPARSE) {
            fail_msg("row %zu gave %d", i, c.rc);
        }
        assert_non_null(c.why);
        done(&c);
    }
}

static void test_aks_row_deeply_nested_string_column_is_absent(void **state)
{
    struct kt_buf b = {0};
    struct kt_convert_out out = {0};
    const char *why = NULL;

    assert_int_equal(kt_buf_puts(&b, "{\"AuditId\":\"a\",\"RequestObject\":\""), 0);
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(kt_buf_puts(&b, "["), 0);
    }
    assert_int_equal(kt_buf_puts(&b, "\"}"), 0);
    assert_int_equal(kt_convert_aks_row(b.p, b.len, &out, &why), 0);
    assert_null(memmem(out.json.p, out.json.len, "requestObject", 13));
    kt_buf_free(&out.json);
    kt_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gke_pod_create_is_201_request_response_without_type),
        cmocka_unit_test(test_gke_refused_get_stays_403_with_annotations),
        cmocka_unit_test(test_gke_refused_create_stays_403),
        cmocka_unit_test(test_gke_status_response_code_wins_over_rpc_code),
        cmocka_unit_test(test_gke_rpc_codes_map_to_http),
        cmocka_unit_test(test_gke_exec_started_on_subresource_exec),
        cmocka_unit_test(test_gke_exec_subresource_from_method_name),
        cmocka_unit_test(test_gke_namespace_itself),
        cmocka_unit_test(test_gke_cluster_wide_secrets_list),
        cmocka_unit_test(test_gke_core_and_apps_group_uris),
        cmocka_unit_test(test_gke_truncated_label),
        cmocka_unit_test(test_gke_other_resource_type_or_service_skipped),
        cmocka_unit_test(test_gke_malformed_entries_are_parse_errors),
        cmocka_unit_test(test_gke_bad_resource_names_give_event_without_object_ref),
        cmocka_unit_test(test_gke_wrong_types_anywhere_never_crash),
        cmocka_unit_test(test_gke_every_prefix_and_byte_flip_is_safe),
        cmocka_unit_test(test_gke_deep_nesting_is_a_parse_error),
        cmocka_unit_test(test_gke_deepest_accepted_body_is_written),
        cmocka_unit_test(test_gke_output_is_appended_and_kept_on_failure),
        cmocka_unit_test(test_gke_long_cluster_name_cut_at_character_boundary),
        cmocka_unit_test(test_aks_row_with_string_dynamic_columns),
        cmocka_unit_test(test_aks_row_with_object_columns),
        cmocka_unit_test(test_aks_row_skipped_too_big_object_is_truncated),
        cmocka_unit_test(test_aks_row_cluster_is_lower_cased_last_segment),
        cmocka_unit_test(test_aks_row_unreadable_columns_are_absent),
        cmocka_unit_test(test_aks_row_malformed_is_a_parse_error),
        cmocka_unit_test(test_aks_row_deeply_nested_string_column_is_absent),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
