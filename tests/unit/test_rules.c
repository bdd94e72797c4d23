/*
 * test_rules.c: the rule language end to end: YAML items, conditions, fields, operators,
 * list semantics, overrides, exceptions, errors, outputs. Events are real JSON, decoded by
 * the decoder, so fields are read exactly as in the pipeline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "decode.h"
#include "rules.h"
#include "rules_int.h"

static const char *const POD_EVENT =
    "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"RequestResponse\","
    "\"auditID\":\"a1\",\"stage\":\"ResponseComplete\",\"verb\":\"create\","
    "\"requestURI\":\"/api/v1/namespaces/web/pods/p/exec?command=sh&command=-c&command=id%20-u"
    "&container=app\",\"user\":{\"username\":\"alice\",\"groups\":[\"dev\",\"system:"
    "authenticated\"]},"
    "\"sourceIPs\":[\"10.0.0.1\"],\"userAgent\":\"kubectl/v1.29\","
    "\"objectRef\":{\"resource\":\"pods\",\"namespace\":\"web\",\"name\":\"p\"},"
    "\"responseStatus\":{\"code\":201},"
    "\"requestObject\":{\"metadata\":{\"name\":\"p\",\"labels\":{\"a/b\":\"x\"}},\"spec\":{"
    "\"hostNetwork\":true,\"containers\":[{\"name\":\"c0\",\"image\":\"nginx\","
    "\"securityContext\":{\"privileged\":true}},{\"name\":\"c1\",\"image\":\"busybox\"}],"
    "\"volumes\":[{\"name\":\"h\",\"hostPath\":{\"path\":\"/etc\"}}]}},"
    "\"stageTimestamp\":\"2024-05-01T00:00:00.000001Z\","
    "\"annotations\":{\"authorization.k8s.io/decision\":\"allow\"}}";

static void write_rules(const char *path, const char *yaml)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(yaml, fp);
    fclose(fp);
}

/* One run of rules on one event: the loaded rules and the batch with its alerts. */
struct run {
    struct kt_ruleset *rs;
    struct kt_batch *b;
    char err[512]; /* the load error, when loading failed */
};

/* Load yaml (then yaml2, when not NULL) and run it on event. 0, or the load error. */
static int run_rules(struct run *r, const char *yaml, const char *yaml2, const char *event,
                     int min_prio)
{
    char first[] = "/tmp/kt-rules-XXXXXX", second[64];
    int fd = mkstemp(first);
    assert_true(fd >= 0);
    close(fd);
    write_rules(first, yaml);
    snprintf(second, sizeof(second), "%s-2", first);
    if (yaml2 != NULL) {
        write_rules(second, yaml2);
    }
    const char *files[2] = {first, second};
    struct kt_rules_opts o = {.min_priority = min_prio};
    memset(r, 0, sizeof(*r));
    int rc = kt_ruleset_load(files, yaml2 != NULL ? 2 : 1, &o, &r->rs, r->err, sizeof(r->err));
    unlink(first);
    unlink(second);
    if (rc != 0) {
        return rc;
    }
    r->b = kt_batch_create();
    size_t len = strlen(event);
    assert_int_equal(kt_batch_reserve(r->b, len), 0);
    memcpy(r->b->buf, event, len);
    r->b->len = len;
    kt_batch_add_record(r->b)->len = len;
    struct kt_decoder *d = kt_decoder_create();
    assert_int_equal(kt_decode_batch(d, r->b), 0);
    kt_decoder_destroy(d);
    struct kt_matcher *m = kt_matcher_create(r->rs);
    assert_int_equal(kt_matcher_run(m, r->b), 0);
    kt_matcher_destroy(m);
    return 0;
}

static void run_done(struct run *r)
{
    kt_batch_destroy(r->b);
    kt_ruleset_destroy(r->rs);
}

/* The rules that fired, joined with ',', or "ERROR <load error>". */
static char *fire2(const char *yaml, const char *yaml2, const char *event, int min_prio)
{
    static char out[1024];
    struct run r;
    if (run_rules(&r, yaml, yaml2, event, min_prio) != 0) {
        snprintf(out, sizeof(out), "ERROR %s", r.err);
        return out;
    }
    out[0] = '\0';
    for (size_t i = 0; i < r.b->nalerts; i++) {
        size_t n = strlen(out);
        snprintf(out + n, sizeof(out) - n, "%s%s", i ? "," : "", r.b->alerts[i].rule);
    }
    run_done(&r);
    return out;
}

static char *fire(const char *yaml, const char *event)
{
    return fire2(yaml, NULL, event, KT_PRIO_DEBUG);
}

/* A file of one rule per condition, named r0, r1, ...; returns which fired on event. */
static char *conds_on(const char *const *c, size_t n, const char *event)
{
    static char yaml[8192];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(yaml + len, sizeof(yaml) - len,
                                "- rule: r%zu\n  desc: d\n  condition: %s\n  output: o\n"
                                "  priority: WARNING\n",
                                i, c[i]);
    }
    return fire(yaml, event);
}

static char *conds(const char *const *c, size_t n)
{
    return conds_on(c, n, POD_EVENT);
}

/* The verb/resource prefilter (prefilter.c) skips only rules that could not match. */
static void test_rules_prefilter_never_skips_a_match(void **state)
{
    (void)state;
    const char *const c[] = {
        "ka.verb=create and ka.target.resource=pods",
        "ka.verb in (get, list) and ka.target.resource=pods",
        "ka.verb=create and ka.target.resource in (secrets, configmaps)",
        "not ka.verb=get",
        "ka.verb=get or ka.target.resource=pods",
        "ka.verb in (create, proxy) and (ka.target.resource=pods or ka.target.resource=x)",
        "ka.target.resource=pods and ka.verb=CREATE",
        "ka.user.name=alice and ka.target.resource in (pods, secrets) and ka.verb!=get",
    };
    assert_string_equal(conds(c, 8), "r0,r3,r4,r5,r7");
    /* an uncommon verb and no objectRef */
    const char *ev = "{\"auditID\":\"p1\",\"stage\":\"ResponseComplete\",\"verb\":\"impersonate\","
                     "\"requestURI\":\"/x\",\"user\":{\"username\":\"bob\"},"
                     "\"stageTimestamp\":\"2024-05-01T00:00:00.000001Z\"}";
    const char *const c2[] = {
        "ka.verb=impersonate",           "ka.verb=impersonate and ka.target.resource=pods",
        "ka.verb in (impersonate, get)", "ka.verb in (get, list)",
        "not ka.target.resource=pods",
    };
    assert_string_equal(conds_on(c2, 5, ev), "r0,r2,r4");
    /* stages: known names, a list, and a stage text the decoder does not know */
    const char *const c3[] = {
        "ka.stage=ResponseComplete and ka.verb=impersonate",
        "ka.stage=ResponseStarted",
        "ka.stage in (Panic, ResponseComplete)",
        "ka.stage=Weird",
        "not ka.stage=ResponseStarted",
    };
    assert_string_equal(conds_on(c3, 5, ev), "r0,r2,r4");
    const char *weird = "{\"auditID\":\"p2\",\"stage\":\"Weird\",\"verb\":\"get\","
                        "\"requestURI\":\"/x\",\"user\":{\"username\":\"bob\"},"
                        "\"stageTimestamp\":\"2024-05-01T00:00:00.000001Z\"}";
    assert_string_equal(conds_on(c3, 5, weird), "r3,r4");
}

/* The body walker (walk.c): skipped subtrees with brackets and quotes inside strings, escapes
 * in keys and values, aligned '*' entries, captured containers, broken and deep input. */
static void test_rules_walker_skips_and_unescapes(void **state)
{
    (void)state;
    struct kt_arena a = {0};
    struct kt_value v[6];
    const char *json = "{\"skip\": {\"s\": \"}]\\\"{[\", \"n\": [1, {\"x\": \"]\"}]},"
                       " \"a\\u0062c\": \"x\\\"y\\u00e9\\ud83d\\ude00\","
                       " \"want\": [{\"k\": 1}, {\"j\": 2}, {\"k\": \"v\"}, {\"k\": null}],"
                       " \"t\": true}";
    const char *ptrs[] = {"/abc", "/want/*/k", "/skip", "/t", "/want/1/j", "/missing"};
    assert_int_equal(field_walk(&a, json, strlen(json), ptrs, 6, v), 0);
    assert_int_equal(v[0].kind, KT_V_STR);
    assert_int_equal(v[0].s.len, strlen("x\"y\xc3\xa9\xf0\x9f\x98\x80"));
    assert_memory_equal(v[0].s.ptr, "x\"y\xc3\xa9\xf0\x9f\x98\x80", v[0].s.len);
    assert_int_equal(v[1].kind, KT_V_LIST);
    assert_int_equal(v[1].n, 4); /* one entry per element: 1, missing, v, missing (null) */
    assert_memory_equal(v[1].v[0].ptr, "1", 1);
    assert_null(v[1].v[1].ptr);
    assert_memory_equal(v[1].v[2].ptr, "v", 1);
    assert_null(v[1].v[3].ptr);
    const char *skip = "{\"s\": \"}]\\\"{[\", \"n\": [1, {\"x\": \"]\"}]}";
    assert_int_equal(v[2].s.len, strlen(skip));
    assert_memory_equal(v[2].s.ptr, skip, strlen(skip));
    assert_memory_equal(v[3].s.ptr, "true", 4);
    assert_memory_equal(v[4].s.ptr, "2", 1);
    assert_int_equal(v[5].kind, KT_V_NONE);

    /* truncated text: what came before the break is kept, nothing is read past the end */
    const char *cut = "{\"abc\": \"ok\", \"want\": [{\"k\": \"v";
    assert_int_equal(field_walk(&a, cut, strlen(cut), ptrs, 2, v), 0);
    assert_memory_equal(v[0].s.ptr, "ok", 2);
    /* nesting far deeper than any pointer is skipped without recursion */
    size_t deep = 100000;
    char *d = malloc(2 * deep + 16);
    assert_non_null(d);
    size_t n = 0;
    d[n++] = '{';
    memcpy(d + n, "\"x\":", 4);
    n += 4;
    for (size_t i = 0; i < deep; i++) {
        d[n++] = '[';
    }
    for (size_t i = 0; i < deep; i++) {
        d[n++] = ']';
    }
    memcpy(d + n, ",\"abc\":7}", 9);
    n += 9;
    const char *xp[] = {"/x/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0", "/abc"};
    assert_int_equal(field_walk(&a, d, n, xp, 2, v), 0);
    assert_memory_equal(v[1].s.ptr, "7", 1);
    free(d);
    kt_arena_free(&a);
}

static void test_rules_operators(void **state)
{
    (void)state;
    static const char *const c[] = {
        "ka.verb = create",                                           /* r0 yes */
        "ka.verb != create",                                          /* r1 no */
        "ka.response.code < 300",                                     /* r2 yes: numeric */
        "ka.response.code > 1000",                                    /* r3 no */
        "ka.useragent contains ctl",                                  /* r4 yes */
        "ka.useragent icontains KUBECTL",                             /* r5 yes */
        "ka.user.name startswith ali",                                /* r6 yes */
        "ka.user.name endswith ice",                                  /* r7 yes */
        "ka.target.namespace glob \"w*b\"",                           /* r8 yes */
        "ka.target.resource in (secrets, pods)",                      /* r9 yes */
        "ka.req.pod.volumes.hostpath pmatch (/etc/kubernetes, /etc)", /* r10 yes */
        "ka.impuser.name exists",                                     /* r11 no */
        "ka.useragent regex \"^kube[a-z]+/v1\\\\.\"",                 /* r12 yes */
        "ka.response.code >= 201 and ka.response.code <= 201",        /* r13 yes */
    };
    assert_string_equal(conds(c, sizeof(c) / sizeof(c[0])), "r0,r2,r4,r5,r6,r7,r8,r9,r10,r12,r13");
}

/* in_cidr: IPv4 and IPv6 prefixes, lists of them, every value of a list field inside (like
 * in), values that are not addresses never inside; ka.sourceip is the address the apiserver
 * saw (the last sourceIP; the ones before it come from X-Forwarded-For). */
static void test_rules_in_cidr_and_sourceip(void **state)
{
    (void)state;
    static const char *const ev =
        "{\"auditID\":\"c\",\"stage\":\"ResponseComplete\",\"verb\":\"get\","
        "\"stageTimestamp\":\"2024-05-01T00:00:00Z\",\"objectRef\":{\"resource\":\"secrets\"},"
        "\"sourceIPs\":[\"203.0.113.7\",\"10.1.2.3\"],\"userAgent\":\"kubectl\","
        "\"requestObject\":{\"spec\":{\"externalIPs\":[\"2001:db8::17\",\"::ffff:192.168.4.5\","
        "\"example.com\"]}}}";
    static const char *const yaml_lists =
        "- list: private_nets\n  items: [10.0.0.0/8, 172.16.0.0/12, more_nets]\n"
        "- list: more_nets\n  items: [\"192.168.0.0/16\"]\n";
    static const char *const c[] = {
        "ka.sourceip in_cidr (10.0.0.0/8)",                     /* r0 yes: the last one */
        "ka.sourceip = 10.1.2.3",                               /* r1 yes */
        "ka.sourceips in_cidr (10.0.0.0/8)",                    /* r2 203.0.113.7 is not */
        "ka.sourceips in_cidr (10.0.0.0/8, 203.0.113.0/24)",    /* r3 every: yes */
        "ka.sourceip in_cidr (10.1.2.3)",                       /* r4 one host: yes */
        "ka.sourceip in_cidr (10.1.2.4/32, 11.0.0.0/8)",        /* r5 no */
        "ka.sourceip in_cidr (10.1.2.0/23)",                    /* r6 odd length: yes */
        "ka.sourceip in_cidr (10.1.4.0/23)",                    /* r7 no */
        "ka.sourceip in_cidr (0.0.0.0/0)",                      /* r8 any IPv4: yes */
        "ka.sourceip in_cidr (::/0)",                           /* r9 IPv6 only: no */
        "not ka.sourceip in_cidr (private_nets)",               /* r10 it is private: no */
        "ka.sourceip in_cidr (private_nets)",                   /* r11 lists expand: yes */
        "ka.req.service.external_ips intersects (example.com)", /* r12 (the values) yes */
        "ka.req.service.external_ips in_cidr (2001:db8::/32, 192.168.0.0/16)", /* r13 no: */
        /* example.com is no address, so not every value is inside */
        "jevt.value[/requestObject/spec/externalIPs/0] in_cidr (2001:db8::/32)",  /* r14 yes */
        "jevt.value[/requestObject/spec/externalIPs/0] in_cidr (2001:db9::/32)",  /* r15 no */
        "jevt.value[/requestObject/spec/externalIPs/1] in_cidr (192.168.0.0/16)", /* r16 mapped */
        "jevt.value[/requestObject/spec/externalIPs/1] in_cidr (::ffff:192.168.0.0/112)", /* r17 */
        "jevt.value[/requestObject/spec/externalIPs/2] in_cidr (0.0.0.0/0, ::/0)", /* r18 no */
        "ka.useragent in_cidr (0.0.0.0/0)",        /* r19 not an address: no */
        "ka.impuser.name in_cidr (0.0.0.0/0)",     /* r20 missing: no */
        "not ka.impuser.name in_cidr (0.0.0.0/0)", /* r21 yes */
        "ka.sourceip in_cidr (10.255.255.255/8)",  /* r22 host bits: yes */
        "jevt.value[/requestObject/spec/externalIPs/0] in_cidr (2001:db8::16/127)", /* r23 yes */
        "jevt.value[/requestObject/spec/externalIPs/0] in_cidr (2001:db8::18/127)", /* r24 no */
    };
    static char yaml[16384];
    size_t len = (size_t)snprintf(yaml, sizeof(yaml), "%s", yaml_lists);
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        len += (size_t)snprintf(yaml + len, sizeof(yaml) - len,
                                "- rule: r%zu\n  desc: d\n  condition: %s\n  output: o\n"
                                "  priority: WARNING\n",
                                i, c[i]);
    }
    assert_string_equal(fire(yaml, ev), "r0,r1,r3,r4,r6,r8,r11,r12,r14,r16,r17,r21,r22,r23");
    /* no sourceIPs: ka.sourceip is missing */
    static const char *const c2[] = {"ka.sourceip exists", "not ka.sourceip in_cidr (::/0)"};
    assert_string_equal(conds_on(c2, 2,
                                 "{\"auditID\":\"n\",\"stage\":\"ResponseComplete\",\"verb\":"
                                 "\"get\",\"stageTimestamp\":\"2024-05-01T00:00:00Z\"}"),
                        "r1");
    /* in exceptions, with comps in_cidr */
    const char *exc = "- rule: e\n  desc: d\n  condition: ka.verb = create\n  output: o\n"
                      "  priority: INFO\n  exceptions:\n  - name: office\n"
                      "    fields: [ka.sourceip, ka.user.name]\n    comps: [in_cidr, =]\n"
                      "    values:\n    - [10.0.0.0/24, alice]\n";
    assert_string_equal(fire(exc, POD_EVENT), "");
    /* the matcher (cidr.c) directly: no address, no match */
    struct cidr pfx[2];
    assert_int_equal(cidr_parse("192.0.2.0/24", 12, &pfx[0]), 0);
    assert_int_equal(cidr_parse("fe80::/10", 9, &pfx[1]), 0);
    assert_true(cidr_match(pfx, 2, (struct kt_str){"192.0.2.255", 11}));
    assert_true(cidr_match(pfx, 2, (struct kt_str){"febf::1", 7}));
    assert_false(cidr_match(pfx, 2, (struct kt_str){"fec0::1", 7}));
    assert_false(cidr_match(pfx, 2, (struct kt_str){"192.0.2.1:443", 13}));
    assert_false(cidr_match(pfx, 2, (struct kt_str){"fe80::1%eth0", 12}));
    assert_false(cidr_match(pfx, 2, (struct kt_str){"", 0}));
    assert_false(cidr_match(pfx, 2, (struct kt_str){NULL, 0}));
    assert_false(cidr_match(pfx, 2, (struct kt_str){"192.0.2.1", 8})); /* "192.0.2." */
}

static void test_rules_list_and_missing_field_semantics(void **state)
{
    (void)state;
    static const char *const c[] = {
        "ka.user.groups in (dev, system:authenticated)",      /* r0 every value: yes */
        "ka.user.groups in (dev)",                            /* r1 not every: no */
        "ka.user.groups intersects (dev, ops)",               /* r2 any: yes */
        "ka.req.pod.containers.privileged intersects (true)", /* r3 c0 is: yes */
        "ka.req.pod.containers.privileged in (true)",         /* r4 c1 leaves it unset: no */
        "ka.impuser.name = x",                                /* r5 missing: no */
        "not ka.impuser.name = x",                            /* r6 missing, negated: yes */
        "ka.req.pod.containers.image = busybox",              /* r7 any element: yes */
        "ka.user.groups exists",                              /* r8 yes */
        "ka.target.name intersects (p, q)",                   /* r9 scalar: like in: yes */
    };
    assert_string_equal(conds(c, sizeof(c) / sizeof(c[0])), "r0,r2,r3,r6,r7,r8,r9");
}

static void test_rules_precedence_not_and_or(void **state)
{
    (void)state;
    static const char *const c[] = {
        "ka.verb = get or ka.verb = create and ka.user.name = bob",     /* or(get, and(...)): no */
        "(ka.verb = get or ka.verb = create) and ka.user.name = alice", /* yes */
        "not ka.verb = get and ka.user.name = alice",                   /* (not a) and b: yes */
        "not (ka.verb = create and ka.user.name = alice)",              /* no */
    };
    assert_string_equal(conds(c, sizeof(c) / sizeof(c[0])), "r1,r2");
}

static void test_rules_fields_uri_exec_pointer_body(void **state)
{
    (void)state;
    static const char *const c[] = {
        "ka.uri.param[container] = app",                                /* r0 */
        "ka.exec.command = \"sh -c id -u\"",                            /* r1 decoded, joined */
        "ka.uri.params[command] intersects (\"id -u\")",                /* r2 */
        "jevt.value[/requestObject/metadata/labels/a~1b] = x",          /* r3 ~1 is '/' */
        "jevt.value[/requestObject/spec/containers/1/image] = busybox", /* r4 index */
        "jevt.value[/user/groups/0] = dev",                             /* r5 whole event */
        "ka.req.pod.host_network = true",                               /* r6 */
        "ka.req.pod.containers.image in (nginx, busybox)",              /* r7 */
        "jevt.value[/requestObject/spec/nothing] exists",               /* r8 no */
    };
    assert_string_equal(conds(c, sizeof(c) / sizeof(c[0])), "r0,r1,r2,r3,r4,r5,r6,r7");
}

static void test_rules_container_groups_and_alignment(void **state)
{
    (void)state;
    static const char *const ev =
        "{\"auditID\":\"i\",\"stage\":\"ResponseComplete\",\"verb\":\"create\","
        "\"stageTimestamp\":\"2024-05-01T00:00:00Z\",\"objectRef\":{\"resource\":\"jobs\"},"
        "\"requestObject\":{\"spec\":{\"template\":{\"spec\":{"
        "\"initContainers\":[{\"name\":\"init\",\"image\":\"busybox\",\"securityContext\":"
        "{\"capabilities\":{\"add\":[\"NET_ADMIN\"],\"drop\":[\"ALL\"]}}}],"
        "\"containers\":[{\"name\":\"a\",\"image\":\"x\",\"securityContext\":"
        "{\"allowPrivilegeEscalation\":false}},{\"name\":\"b\",\"image\":\"y\","
        "\"ports\":[{\"containerPort\":80,\"hostPort\":8080}]}]}}}}}";
    static const char *const c[] = {
        "ka.req.pod.initContainers.add_capabilities intersects (NET_ADMIN)",   /* r0 yes */
        "ka.req.pod.initContainers.drop_capabilities in (ALL)",                /* r1 yes */
        "ka.req.pod.containers.allow_privilege_escalation in (false)",         /* r2 b unset: no */
        "ka.req.pod.containers.allow_privilege_escalation intersects (false)", /* r3 yes */
        "ka.req.pod.containers.host_port intersects (8080)",                   /* r4 yes */
        "ka.req.pod.containers.name in (a, b)",                                /* r5 yes */
        "ka.req.pod.ephemeralContainers.image exists",                         /* r6 no */
        "ka.req.container.image = x",                                          /* r7 first: yes */
    };
    assert_string_equal(conds_on(c, sizeof(c) / sizeof(c[0]), ev), "r0,r1,r3,r4,r5,r7");
}

static void test_rules_derived_fields(void **state)
{
    (void)state;
    static const char *const ev =
        "{\"auditID\":\"d\",\"stage\":\"ResponseComplete\",\"verb\":\"create\","
        "\"stageTimestamp\":\"2024-05-01T00:00:00Z\",\"objectRef\":{\"resource\":\"pods\"},"
        "\"requestObject\":{\"spec\":{\"containers\":["
        "{\"image\":\"registry.example.com:5000/team/api:2.1\"},"
        "{\"image\":\"gcr.io/p/app@sha256:0123\"},{\"image\":\"busybox\"}],"
        "\"volumes\":[{\"hostPath\":{\"path\":\"/var/lib/kubelet/pods\"}}]},"
        "\"subjects\":[{\"kind\":\"User\",\"name\":\"bob\"},{\"kind\":\"Group\","
        "\"name\":\"system:masters\"},{\"kind\":\"ServiceAccount\",\"name\":\"ci\","
        "\"namespace\":\"build\"}]}}";
    static const char *const c[] = {
        "ka.req.pod.containers.image.repository in (registry.example.com:5000/team/api, "
        "gcr.io/p/app, busybox)",                                                 /* r0 yes */
        "ka.req.container.image.repository = registry.example.com:5000/team/api", /* r1 yes */
        "ka.req.binding.subjects.user_names in (bob)",                            /* r2 yes */
        "ka.req.binding.subjects.group_names intersects (system:masters)",        /* r3 yes */
        "ka.req.binding.subjects.serviceaccount_ns_names = \"build:ci\"",         /* r4 yes */
        "ka.req.binding.subjects.serviceaccount_names = ci",                      /* r5 yes */
        "ka.req.volume.hostpath[/var/lib/kubelet*] = true", /* r6 prefix: yes */
        "ka.req.volume.hostpath[/var/lib/kubelet] = true",  /* r7 exact: no */
    };
    static const char *const eff_ev =
        "{\"auditID\":\"e\",\"stage\":\"ResponseComplete\",\"verb\":\"create\","
        "\"stageTimestamp\":\"2024-05-01T00:00:00Z\",\"objectRef\":{\"resource\":\"pods\"},"
        "\"requestObject\":{\"spec\":{\"securityContext\":{\"runAsUser\":1000},\"containers\":["
        "{\"name\":\"a\",\"securityContext\":{\"runAsUser\":0,\"seccompProfile\":{\"type\":"
        "\"Unconfined\"}}},{\"name\":\"b\"}]}}}";
    static const char *const eff_c[] = {
        "ka.req.pod.containers.eff_run_as_user in (0, 1000)",           /* r0 [0, 1000]: yes */
        "ka.req.pod.containers.eff_run_as_user in (0)",                 /* r1 b has 1000: no */
        "ka.req.pod.containers.eff_run_as_group in (0)",                /* r2 default 0: yes */
        "ka.req.pod.containers.eff_seccomp_profile in (Unconfined)",    /* r3 b missing: no */
        "ka.req.pod.containers.eff_run_as_non_root intersects (false)", /* r4 default: yes */
        "ka.req.pod.initContainers.eff_run_as_user exists",             /* r5 no init: no */
    };
    assert_string_equal(conds_on(eff_c, sizeof(eff_c) / sizeof(eff_c[0]), eff_ev), "r0,r2,r4");
    assert_string_equal(conds_on(c, sizeof(c) / sizeof(c[0]), ev), "r0,r1,r2,r3,r4,r5,r6");
}

/* The rendered value of field for a pod create with the given spec JSON. */
static char *field_text(const char *field, const char *spec)
{
    static char out[1024];
    char yaml[512], event[4096];
    snprintf(yaml, sizeof(yaml),
             "- rule: show\n  desc: d\n  condition: ka.verb = create\n  output: \"%%%s\"\n"
             "  priority: INFO\n",
             field);
    snprintf(event, sizeof(event),
             "{\"auditID\":\"p\",\"stage\":\"ResponseComplete\",\"verb\":\"create\","
             "\"stageTimestamp\":\"2024-05-01T00:00:00Z\",\"objectRef\":{\"resource\":"
             "\"pods\"},\"requestObject\":{\"spec\":%s}}",
             spec);
    struct run r;
    assert_int_equal(run_rules(&r, yaml, NULL, event, KT_PRIO_DEBUG), 0);
    assert_int_equal(r.b->nalerts, 1);
    snprintf(out, sizeof(out), "%.*s", (int)r.b->alerts[0].output.len, r.b->alerts[0].output.ptr);
    run_done(&r);
    return out;
}

#define RESTRICTED_OK                                                                              \
    "\"securityContext\":{\"runAsNonRoot\":true,\"seccompProfile\":{\"type\":"                     \
    "\"RuntimeDefault\"}},\"volumes\":[{\"name\":\"c\",\"configMap\":{\"name\":\"x\"}}]"

static void test_rules_pod_security_standards(void **state)
{
    (void)state;
    const char *ok_container = "{\"name\":\"a\",\"image\":\"x\",\"securityContext\":{"
                               "\"allowPrivilegeEscalation\":false,\"capabilities\":{\"drop\":"
                               "[\"ALL\"],\"add\":[\"NET_BIND_SERVICE\"]}}}";
    char spec[2048];
    snprintf(spec, sizeof(spec), "{" RESTRICTED_OK ",\"containers\":[%s]}", ok_container);
    assert_string_equal(field_text("ka.req.pod.pss.restricted", spec), "<NA>");
    assert_string_equal(field_text("ka.req.pod.pss.baseline", spec), "<NA>");

    static const struct {
        const char *spec, *baseline, *restricted;
    } cases[] = {
        {"{\"hostNetwork\":true,\"containers\":[{\"name\":\"a\"}]}", "hostNamespaces",
         "hostNamespaces,allowPrivilegeEscalation,runAsNonRoot,seccompProfile_restricted,"
         "capabilities_restricted"},
        {"{" RESTRICTED_OK ",\"containers\":[{\"name\":\"a\",\"securityContext\":{"
         "\"privileged\":true,\"allowPrivilegeEscalation\":false,\"capabilities\":"
         "{\"drop\":[\"ALL\"]}}}]}",
         "privileged", "privileged"},
        {"{" RESTRICTED_OK ",\"containers\":[{\"name\":\"a\",\"securityContext\":{"
         "\"allowPrivilegeEscalation\":false,\"capabilities\":{\"drop\":[\"ALL\"],"
         "\"add\":[\"SYS_ADMIN\"]}}}]}",
         "capabilities_baseline", "capabilities_baseline,capabilities_restricted"},
        {"{" RESTRICTED_OK ",\"containers\":[{\"name\":\"a\",\"securityContext\":{"
         "\"allowPrivilegeEscalation\":false,\"capabilities\":{\"drop\":[\"ALL\"]}}},"
         "{\"name\":\"b\",\"securityContext\":{\"capabilities\":{\"drop\":[\"ALL\"]}}}]}",
         "<NA>", "allowPrivilegeEscalation"},
        {"{\"securityContext\":{\"runAsNonRoot\":true,\"runAsUser\":0,\"seccompProfile\":"
         "{\"type\":\"RuntimeDefault\"}},\"containers\":[{\"name\":\"a\",\"securityContext\":"
         "{\"allowPrivilegeEscalation\":false,\"capabilities\":{\"drop\":[\"ALL\"]}}}],"
         "\"volumes\":[{\"name\":\"h\",\"hostPath\":{\"path\":\"/\"}}]}",
         "hostPathVolumes", "hostPathVolumes,restrictedVolumes,runAsUser"},
        {"{\"securityContext\":{\"runAsNonRoot\":true,\"seccompProfile\":{\"type\":"
         "\"Unconfined\"},\"sysctls\":[{\"name\":\"kernel.msgmax\",\"value\":\"1\"}]},"
         "\"containers\":[{\"name\":\"a\",\"ports\":[{\"hostPort\":80}],"
         "\"securityContext\":{\"allowPrivilegeEscalation\":false,\"procMount\":\"Unmasked\","
         "\"capabilities\":{\"drop\":[\"ALL\"]}}}]}",
         "seccompProfile_baseline,sysctls,hostPorts,procMount",
         "seccompProfile_baseline,sysctls,hostPorts,procMount,seccompProfile_restricted"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = field_text("ka.req.pod.pss.baseline", cases[i].spec);
        if (strcmp(got, cases[i].baseline) != 0) {
            fail_msg("case %zu baseline: got [%s] want [%s]", i, got, cases[i].baseline);
        }
        got = field_text("ka.req.pod.pss.restricted", cases[i].spec);
        if (strcmp(got, cases[i].restricted) != 0) {
            fail_msg("case %zu restricted: got [%s] want [%s]", i, got, cases[i].restricted);
        }
    }
}

static void test_rules_macros_lists_append_override_disable(void **state)
{
    (void)state;
    const char *base = "- list: base_users\n  items: [bob]\n"
                       "- list: users\n  items: [base_users, carol]\n"
                       "- macro: m_user\n  condition: ka.user.name in (users)\n"
                       "- macro: m_pod\n  condition: ka.target.resource = pods\n"
                       "- macro: m_both\n  condition: m_user and m_pod\n"
                       "- rule: by macro\n  desc: d\n  condition: m_both\n  output: o\n"
                       "  priority: WARNING\n"
                       "- rule: to replace\n  desc: d\n  condition: ka.verb = get\n  output: o\n"
                       "  priority: WARNING\n"
                       "- rule: to disable\n  desc: d\n  condition: m_pod\n  output: o\n"
                       "  priority: WARNING\n"
                       "- rule: to append\n  desc: d\n  condition: m_pod\n  output: o\n"
                       "  priority: WARNING\n";
    /* alice is not in users: nothing but the plain m_pod rules */
    assert_string_equal(fire(base, POD_EVENT), "to disable,to append");
    const char *later = "- list: base_users\n  items: [alice]\n  append: true\n"
                        "- rule: to replace\n  desc: d\n  condition: ka.verb = create\n"
                        "  output: o\n  priority: WARNING\n"
                        "- rule: to disable\n  enabled: false\n"
                        "- rule: to append\n  condition: and ka.verb = delete\n"
                        "  override:\n    condition: append\n";
    assert_string_equal(fire2(base, later, POD_EVENT, KT_PRIO_DEBUG), "by macro,to replace");
}

static void test_rules_exceptions(void **state)
{
    (void)state;
    const char *yaml = "- rule: ex\n  desc: d\n  condition: ka.verb = create\n  output: o\n"
                       "  priority: WARNING\n  exceptions:\n"
                       "  - name: known\n    fields: [ka.user.name, ka.target.namespace]\n"
                       "    comps: [=, startswith]\n    values:\n    - [bob, we]\n";
    assert_string_equal(fire(yaml, POD_EVENT), "ex");
    const char *more = "- rule: ex\n  exceptions:\n"
                       "  - name: alice_web\n    fields: [ka.user.name, ka.target.namespace]\n"
                       "    comps: [=, startswith]\n    values:\n    - [alice, we]\n"
                       "  append: true\n";
    assert_string_equal(fire2(yaml, more, POD_EVENT, KT_PRIO_DEBUG), "");
    const char *single = "- rule: ex\n  desc: d\n  condition: ka.verb = create\n  output: o\n"
                         "  priority: WARNING\n  exceptions:\n"
                         "  - name: users\n    fields: ka.user.name\n    comps: in\n"
                         "    values: [alice, bob]\n";
    assert_string_equal(fire(single, POD_EVENT), "");
}

static void test_rules_errors_name_file_line_and_item(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"- rule: r\n  desc: d\n  condition: ka.nope = 1\n  output: o\n  priority: INFO\n",
         ":1: rule r: unknown field: ka.nope"},
        {"- rule: r\n  desc: d\n  condition: no_such_macro\n  output: o\n  priority: INFO\n",
         "rule r: undefined macro or missing operator: no_such_macro"},
        {"- rule: r\n  desc: d\n  condition: ka.verb === get\n  output: o\n  priority: INFO\n",
         "rule r: "},
        {"- rule: r\n  desc: d\n  condition: ka.verb regex \"(\"\n  output: o\n"
         "  priority: INFO\n",
         "rule r: bad regex"},
        {"- rule: r\n  desc: d\n  condition: [oops\n", "malformed YAML"},
        {"- macro: m\n  condition: ka.verb = get\n  colour: red\n",
         ":3: item m: unknown key 'colour'"},
        {"- rule: r\n  desc: d\n  condition: ka.verb = get\n  output: o\n  priority: LOUD\n",
         "item r: a rule needs an output and a priority"},
        {"- rule: r\n  desc: d\n  condition: ka.verb = get\n  output: \"%ka.bogus\"\n"
         "  priority: INFO\n",
         "unknown field in output: ka.bogus"},
        {"- macro: a\n  condition: b\n- macro: b\n  condition: a\n- rule: r\n  desc: d\n"
         "  condition: a\n  output: o\n  priority: INFO\n",
         "refers to itself"},
        {"- rule: r\n  desc: d\n  condition: ka.sourceip in_cidr (10.0.0.0/33)\n  output: o\n"
         "  priority: INFO\n",
         ":1: rule r: bad CIDR \"10.0.0.0/33\""},
        {"- list: nets\n  items: [10.0.0.0/8, 10.0.0/8]\n- rule: r\n  desc: d\n"
         "  condition: ka.sourceip in_cidr (nets)\n  output: o\n  priority: INFO\n",
         "rule r: bad CIDR \"10.0.0/8\""},
        {"- rule: r\n  desc: d\n  condition: ka.sourceip in_cidr (2001:db8::/129)\n"
         "  output: o\n  priority: INFO\n",
         "bad CIDR \"2001:db8::/129\""},
        {"- rule: r\n  desc: d\n  condition: ka.sourceip in_cidr (10.0.0.0/8x)\n"
         "  output: o\n  priority: INFO\n",
         "bad CIDR \"10.0.0.0/8x\""},
        {"- rule: r\n  desc: d\n  condition: ka.sourceip in_cidr (localhost)\n"
         "  output: o\n  priority: INFO\n",
         "bad CIDR \"localhost\""},
        {"- rule: r\n  desc: d\n  condition: ka.sourceip in_cidr ()\n  output: o\n"
         "  priority: INFO\n",
         "'in_cidr' needs at least one prefix"},
        {"- rule: r\n  desc: d\n  condition: ka.sourceip in_cidr 10.0.0.0/8\n  output: o\n"
         "  priority: INFO\n",
         "'in_cidr' needs a list in ( )"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = fire(cases[i].yaml, POD_EVENT);
        if (strncmp(got, "ERROR ", 6) != 0 || strstr(got, cases[i].want) == NULL) {
            fail_msg("case %zu: got [%s], want [%s]", i, got, cases[i].want);
        }
        /* every error names the file it is in */
        assert_non_null(strstr(got, "/tmp/kt-rules-"));
    }
}

static void test_rules_regex_limits_make_catastrophic_patterns_false(void **state)
{
    (void)state;
    char event[70000];
    char ua[60001];
    memset(ua, 'a', 60000);
    ua[60000] = '\0';
    ua[59999] = 'b';
    snprintf(event, sizeof(event),
             "{\"auditID\":\"x\",\"stage\":\"ResponseComplete\",\"stageTimestamp\":"
             "\"2024-05-01T00:00:00Z\",\"userAgent\":\"%s\"}",
             ua);
    const char *yaml = "- rule: slow\n  desc: d\n  condition: ka.useragent regex \"^(a+)+$\"\n"
                       "  output: o\n  priority: INFO\n";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_string_equal(fire(yaml, event), "");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* bounded by the match limit, not exponential (a generous bound, not a benchmark) */
    assert_true(t1.tv_sec - t0.tv_sec < 5);
}

static void test_rules_output_and_alert_json(void **state)
{
    (void)state;
    const char *yaml =
        "- rule: out\n  desc: d\n  condition: ka.verb = create\n"
        "  output: \"%ka.user.name made %ka.target.name images=%ka.req.pod.containers."
        "image as %ka.impuser.name (100%)\"\n  priority: CRITICAL\n"
        "  tags: [k8s, T1610]\n";
    struct run r;
    assert_int_equal(run_rules(&r, yaml, NULL, POD_EVENT, KT_PRIO_DEBUG), 0);
    struct kt_batch *b = r.b;
    assert_int_equal(b->nalerts, 1);
    const struct kt_alert *a = &b->alerts[0];
    assert_int_equal(a->priority, KT_PRIO_CRITICAL);
    assert_memory_equal(a->output.ptr, "alice made p images=nginx,busybox as <NA> (100%)",
                        a->output.len);
    assert_true(b->events[0].flags & KT_EV_KEEP_RAW);
    char buf[2048] = "";
    FILE *mem = fmemopen(buf, sizeof(buf), "w");
    kt_alert_print(mem, b, a, 1);
    fclose(mem);
    assert_non_null(strstr(buf, "\"rule\":\"out\",\"priority\":\"Critical\""));
    assert_non_null(strstr(buf, "\"output_fields\":{\"ka.user.name\":\"alice\",\"ka.target.name\""
                                ":\"p\",\"ka.req.pod.containers.image\":\"nginx,busybox\","
                                "\"ka.impuser.name\":null}"));
    assert_non_null(strstr(buf, "\"tags\":[\"k8s\",\"T1610\"]"));
    assert_non_null(strstr(buf, "\"audit_id\":\"a1\""));
    run_done(&r);
}

static void test_rules_min_priority_skips_lower_rules(void **state)
{
    (void)state;
    const char *yaml = "- rule: low\n  desc: d\n  condition: ka.verb = create\n  output: o\n"
                       "  priority: INFO\n"
                       "- rule: high\n  desc: d\n  condition: ka.verb = create\n  output: o\n"
                       "  priority: ERROR\n";
    assert_string_equal(fire2(yaml, NULL, POD_EVENT, KT_PRIO_WARNING), "high");
    assert_string_equal(fire2(yaml, NULL, POD_EVENT, KT_PRIO_DEBUG), "low,high");
}

static void test_rules_falco_style_file_loads_unchanged(void **state)
{
    (void)state;
    const char *files[] = {KT_TEST_FIXTURES "/rules/falco_style.yaml"};
    struct kt_ruleset *rs = NULL;
    char err[512] = "";
    if (kt_ruleset_load(files, 1, NULL, &rs, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    /* the syscall rule is skipped; the disabled one is loaded, disabled */
    assert_int_equal(kt_ruleset_count(rs), 3);
    struct kt_rule_info ri;
    kt_ruleset_info(rs, 2, &ri);
    assert_string_equal(ri.name, "Disabled example");
    assert_int_equal(ri.enabled, 0);
    kt_ruleset_destroy(rs);
    /* nginx and busybox were appended to falco_privileged_images at the end of the file:
     * every image of the privileged pod is allowed (`in` means every), the host network pod
     * is not */
    FILE *fp = fopen(files[0], "r");
    assert_non_null(fp);
    static char yaml[16384];
    size_t n = fread(yaml, 1, sizeof(yaml) - 1, fp);
    fclose(fp);
    yaml[n] = '\0';
    assert_string_equal(fire(yaml, POD_EVENT), "Create HostNetwork Pod");
}

/* Fields Falco's k8saudit plugin keeps for old rule files, marked deprecated, answer as the
 * plugin does: has_name is always "N/A"; ka.req.container.* read the first container (or
 * [N]); privileged is "true" when any container is, else "false". */
static void test_rules_deprecated_falco_fields_answer_as_falco(void **state)
{
    (void)state;
    static const char *const c[] = {
        "ka.req.binding.subject.has_name[alice] = N/A",   /* r0 yes, even on a pod */
        "ka.req.binding.subject.has_name = N/A",          /* r1 yes, without the name too */
        "ka.req.binding.subject.has_name[alice] = true",  /* r2 no */
        "not ka.req.binding.subject.has_name[bob] = N/A", /* r3 no */
        "ka.req.container.privileged = true",             /* r4 c0 is: yes */
        "ka.req.container.privileged = false",            /* r5 no */
        "ka.req.container.privileged[0] = true",          /* r6 yes */
        "ka.req.container.privileged[1] = false",         /* r7 c1 unset: false, yes */
        "ka.req.container.privileged[2] exists",          /* r8 no such container: no */
        "ka.req.container.image = nginx",                 /* r9 the first: yes */
        "ka.req.container.image[1] = busybox",            /* r10 yes */
        "ka.req.container.image.repository[1] = busybox", /* r11 yes */
        "ka.req.container.host_network = true",           /* r12 yes */
        "ka.req.volume.hostpath[/etc] = true",            /* r13 yes */
        "ka.req.volume.hostpath[/e*] = true",             /* r14 yes */
        "ka.req.volume.hostpath[/proc*] = false",         /* r15 yes */
    };
    assert_string_equal(conds(c, sizeof(c) / sizeof(c[0])),
                        "r0,r1,r4,r6,r7,r9,r10,r11,r12,r13,r14,r15");
    /* no containers: the container fields are missing, has_name is not */
    static const char *const none =
        "{\"auditID\":\"n\",\"stage\":\"ResponseComplete\",\"verb\":\"create\","
        "\"stageTimestamp\":\"2024-05-01T00:00:00Z\",\"objectRef\":{\"resource\":"
        "\"clusterrolebindings\"},\"requestObject\":{\"roleRef\":{\"name\":\"view\"},"
        "\"subjects\":[{\"kind\":\"User\",\"name\":\"alice\"}]}}";
    static const char *const c2[] = {
        "ka.req.container.privileged exists",
        "ka.req.container.image exists",
        "ka.req.binding.subject.has_name[alice] = N/A",
    };
    assert_string_equal(conds_on(c2, 3, none), "r2");
    /* the index must be a number; the plugin requires the path of hostpath */
    static const char *const bad[] = {"ka.req.container.image[x] exists",
                                      "ka.req.container.privileged[] exists",
                                      "ka.req.volume.hostpath = true"};
    for (size_t i = 0; i < 3; i++) {
        const char *got = conds_on(&bad[i], 1, POD_EVENT);
        if (strstr(got, "unknown field") == NULL) {
            fail_msg("case %zu: got [%s]", i, got);
        }
    }
    /* an older Falco rules file using them loads (tests/integration/rules.sh runs its cases) */
    const char *files[] = {KT_TEST_FIXTURES "/rules/falco_deprecated.yaml"};
    struct kt_ruleset *rs = NULL;
    char err[512] = "";
    if (kt_ruleset_load(files, 1, NULL, &rs, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_int_equal(kt_ruleset_count(rs), 9);
    kt_ruleset_destroy(rs);
}

static void test_rules_default_pack_loads_and_fires(void **state)
{
    (void)state;
    const char *files[] = {KT_TEST_FIXTURES "/../../rules/k8s_audit_rules.yaml"};
    struct kt_ruleset *rs = NULL;
    char err[512] = "";
    if (kt_ruleset_load(files, 1, NULL, &rs, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_true(kt_ruleset_count(rs) >= 40);
    for (size_t i = 0; i < kt_ruleset_count(rs); i++) {
        struct kt_rule_info ri;
        kt_ruleset_info(rs, i, &ri);
        assert_true(strlen(ri.desc) > 0);
        assert_true(strlen(ri.tags) > 0);
    }
    kt_ruleset_destroy(rs);
}

/* ---- correlations: items, hits, firings ---- */

static const char *const CORR_YAML =
    "- rule: creates\n  desc: d\n  condition: ka.verb = create\n  output: o\n"
    "  priority: INFO\n  enabled: false\n"
    "- count: by user and ip\n  desc: d\n  rule: creates\n  by: [ka.user.name, ka.sourceips]\n"
    "  window: 60s\n  threshold: 2\n  output: \"%count creates by %group, last %ka.target.name\"\n"
    "  priority: WARNING\n  tags: [t]\n"
    "- distinct: names\n  desc: d\n  condition: ka.target.resource = pods\n"
    "  field: ka.target.name\n  by: [ka.user.name]\n  window: 5m\n  threshold: 3\n"
    "  output: o\n  priority: NOTICE\n"
    "- sequence: seq\n  desc: d\n  window: 1h\n  ordered: false\n  steps:\n"
    "    - {condition: ka.verb = delete, by: [ka.target.name]}\n"
    "    - {rule: creates, by: [ka.target.namespace, ka.target.name]}\n"
    "  output: o\n  priority: NOTICE\n"
    "- count: nobody\n  desc: d\n  rule: creates\n  by: [ka.impuser.name]\n  window: 60s\n"
    "  threshold: 1\n  output: o\n  priority: NOTICE\n";

static void test_corr_items_record_hits_with_keys(void **state)
{
    (void)state;
    struct run r;
    assert_int_equal(run_rules(&r, CORR_YAML, NULL, POD_EVENT, KT_PRIO_DEBUG), 0);
    /* the referenced rule is disabled: it does not alert, but its condition is used */
    assert_int_equal(r.b->nalerts, 0);
    assert_int_equal(kt_ruleset_count(r.rs), 5);
    assert_int_equal(kt_ruleset_ncorr(r.rs), 4);
    struct kt_rule_info ri;
    kt_ruleset_info(r.rs, 2, &ri);
    assert_string_equal(ri.name, "names");
    assert_string_equal(ri.kind, "distinct");
    /* count, distinct, and step 1 of the sequence; "nobody" has no impersonated user: no
     * group, no hit; the delete step does not match */
    assert_int_equal(r.b->nhits, 3);
    const struct kt_corr_hit *h = r.b->hits;
    assert_int_equal(h[0].corr, 0);
    assert_int_equal(h[0].key.len, strlen("alice\x1f"
                                          "10.0.0.1"));
    assert_memory_equal(h[0].key.ptr,
                        "alice\x1f"
                        "10.0.0.1",
                        h[0].key.len);
    assert_int_equal(h[1].corr, 1);
    assert_memory_equal(h[1].key.ptr, "alice", 5);
    assert_int_equal(h[1].value.len, 1);
    assert_memory_equal(h[1].value.ptr, "p", 1);
    assert_int_equal(h[2].corr, 2);
    assert_int_equal(h[2].step, 1);
    assert_memory_equal(h[2].key.ptr, "web\x1fp", 5);

    /* two sightings fire the count: the alert renders %count and %group and the last
     * event's fields, links both events, and names the correlation */
    struct kt_corr *c = kt_ruleset_corr_engine(r.rs);
    struct kt_matcher *m = kt_matcher_create(r.rs);
    struct kt_corr_fire f;
    assert_int_equal(kt_corr_feed(c, 0, 0, h[0].key, h[0].value, 0, 7, &f), 0);
    assert_int_equal(kt_corr_feed(c, 0, 0, h[0].key, h[0].value, 1000, 8, &f), 1);
    assert_int_equal(kt_matcher_fire(m, r.b, &h[0], &f), 0);
    assert_int_equal(r.b->nalerts, 1);
    const struct kt_alert *a = &r.b->alerts[0];
    assert_string_equal(a->rule, "by user and ip");
    assert_int_equal(a->priority, KT_PRIO_WARNING);
    assert_int_equal(a->nrefs, 2);
    assert_int_equal(a->refs[0], 7);
    assert_int_equal(a->refs[1], 8);
    assert_int_equal(a->output.len, strlen("2 creates by alice|10.0.0.1, last p"));
    assert_memory_equal(a->output.ptr, "2 creates by alice|10.0.0.1, last p", a->output.len);
    assert_non_null(strstr(a->fields.ptr, "\"corr.group\":\"alice|10.0.0.1\""));
    assert_non_null(strstr(a->fields.ptr, "\"corr.count\":2"));
    kt_matcher_destroy(m);
    kt_corr_destroy(c);
    run_done(&r);
}

static void test_corr_first_seen_one_hit_per_key_and_batch(void **state)
{
    (void)state;
    static const char *const yaml =
        "- first_seen: new agent\n  desc: d\n  condition: ka.verb = create\n"
        "  by: [ka.user.name, ka.useragent]\n  output: o\n  priority: NOTICE\n";
    struct run r;
    assert_int_equal(run_rules(&r, yaml, NULL, POD_EVENT, KT_PRIO_DEBUG), 0);
    assert_int_equal(r.b->nhits, 1);
    /* the same key three times, then another agent, in one batch: two hits */
    kt_batch_reset(r.b);
    size_t len = strlen(POD_EVENT);
    for (int i = 0; i < 4; i++) {
        const char *ev = POD_EVENT;
        char other[4096];
        if (i == 3) {
            const char *ua = strstr(POD_EVENT, "kubectl/v1.29");
            snprintf(other, sizeof(other), "%.*scurl/8.5.0%s", (int)(ua - POD_EVENT), POD_EVENT,
                     ua + strlen("kubectl/v1.29"));
            ev = other;
        }
        len = strlen(ev);
        assert_int_equal(kt_batch_reserve(r.b, len), 0);
        struct kt_record *rec = kt_batch_add_record(r.b);
        memcpy(r.b->buf + r.b->len, ev, len);
        rec->pos = r.b->len;
        rec->len = len;
        r.b->len += len;
    }
    struct kt_decoder *d = kt_decoder_create();
    struct kt_matcher *m = kt_matcher_create(r.rs);
    assert_int_equal(kt_decode_batch(d, r.b), 0);
    assert_int_equal(kt_matcher_run(m, r.b), 0);
    assert_int_equal(r.b->nhits, 2);
    assert_int_equal(r.b->hits[0].event, 0);
    assert_int_equal(r.b->hits[1].event, 3);
    /* the next batch records the key again */
    r.b->nhits = 0;
    assert_int_equal(kt_matcher_run(m, r.b), 0);
    assert_int_equal(r.b->nhits, 2);
    kt_matcher_destroy(m);
    kt_decoder_destroy(d);
    run_done(&r);
}

static void test_corr_errors_name_file_line_and_item(void **state)
{
    (void)state;
    static const char *const base = "  desc: d\n  output: o\n  priority: INFO\n";
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"- count: c\n  rule: nope\n  by: [ka.user.name]\n  window: 60s\n  threshold: 2\n",
         ":1: count c: unknown rule referenced: nope"},
        {"- count: c\n  condition: ka.verb = get\n  by: [ka.user.name]\n  window: 1y\n"
         "  threshold: 2\n",
         ":4: item c: window: not a duration"},
        {"- count: c\n  condition: ka.verb = get\n  by: [ka.user.name]\n  window: 60s\n",
         ":1: item c: a count needs a threshold:"},
        {"- count: c\n  condition: ka.verb = get\n  window: 60s\n  threshold: 2\n",
         ":1: item c: by: needs a list of fields"},
        {"- count: c\n  condition: ka.verb = get\n  by: [ka.nope]\n  window: 60s\n"
         "  threshold: 2\n",
         ":1: count c: unknown field in by: ka.nope"},
        {"- distinct: c\n  condition: ka.verb = get\n  by: [ka.user.name]\n  window: 60s\n"
         "  threshold: 2\n",
         ":1: item c: a distinct needs a field:"},
        {"- sequence: c\n  window: 60s\n  steps: [{condition: ka.verb = get, by: [ka.verb]}]\n",
         ":3: item c: a sequence needs steps:"},
        {"- count: c\n  condition: ka.verb ==== get\n  by: [ka.user.name]\n  window: 60s\n"
         "  threshold: 2\n",
         ":1: count c: "},
        {"- count: c\n  condition: ka.verb = get\n  by: [ka.user.name]\n  window: 60s\n"
         "  threshold: 2\n  bogus: 1\n",
         ":6: item c: unknown key 'bogus'"},
        {"- first_seen: c\n  condition: ka.verb = get\n  by: [ka.user.name]\n  learning: x\n",
         ":4: item c: learning: not a duration"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml), "%s%s", cases[i].yaml, base);
        const char *got = fire(yaml, POD_EVENT);
        if (strncmp(got, "ERROR ", 6) != 0 || strstr(got, cases[i].want) == NULL) {
            fail_msg("case %zu: want \"%s\", got \"%s\"", i, cases[i].want, got);
        }
    }
    /* a correlation may not take a rule's name */
    const char *got = fire("- rule: c\n  desc: d\n  condition: ka.verb = get\n  output: o\n"
                           "  priority: INFO\n- count: c\n  condition: ka.verb = get\n"
                           "  by: [ka.user.name]\n  window: 60s\n  threshold: 2\n  desc: d\n"
                           "  output: o\n  priority: INFO\n",
                           POD_EVENT);
    assert_non_null(strstr(got, ":6: item c: a rule already has this name"));
    /* appending to and disabling a correlation from a later file */
    static const char *const one =
        "- count: c\n  condition: ka.verb = create\n  by: [ka.user.name]\n  window: 60s\n"
        "  threshold: 2\n  desc: d\n  output: o\n  priority: INFO\n";
    struct run r;
    assert_int_equal(run_rules(&r, one,
                               "- count: c\n  condition: and ka.user.name = bob\n"
                               "  append: true\n",
                               POD_EVENT, KT_PRIO_DEBUG),
                     0);
    assert_int_equal(r.b->nhits, 0);
    run_done(&r);
    assert_int_equal(run_rules(&r, one, "- count: c\n  enabled: false\n", POD_EVENT, KT_PRIO_DEBUG),
                     0);
    assert_int_equal(r.b->nhits, 0);
    run_done(&r);
    assert_int_equal(run_rules(&r, one, NULL, POD_EVENT, KT_PRIO_DEBUG), 0);
    assert_int_equal(r.b->nhits, 1);
    run_done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_walker_skips_and_unescapes),
        cmocka_unit_test(test_rules_prefilter_never_skips_a_match),
        cmocka_unit_test(test_rules_operators),
        cmocka_unit_test(test_rules_list_and_missing_field_semantics),
        cmocka_unit_test(test_rules_in_cidr_and_sourceip),
        cmocka_unit_test(test_rules_precedence_not_and_or),
        cmocka_unit_test(test_rules_fields_uri_exec_pointer_body),
        cmocka_unit_test(test_rules_container_groups_and_alignment),
        cmocka_unit_test(test_rules_derived_fields),
        cmocka_unit_test(test_rules_pod_security_standards),
        cmocka_unit_test(test_rules_macros_lists_append_override_disable),
        cmocka_unit_test(test_rules_exceptions),
        cmocka_unit_test(test_rules_errors_name_file_line_and_item),
        cmocka_unit_test(test_rules_regex_limits_make_catastrophic_patterns_false),
        cmocka_unit_test(test_rules_output_and_alert_json),
        cmocka_unit_test(test_rules_min_priority_skips_lower_rules),
        cmocka_unit_test(test_rules_falco_style_file_loads_unchanged),
        cmocka_unit_test(test_rules_deprecated_falco_fields_answer_as_falco),
        cmocka_unit_test(test_rules_default_pack_loads_and_fires),
        cmocka_unit_test(test_corr_items_record_hits_with_keys),
        cmocka_unit_test(test_corr_first_seen_one_hit_per_key_and_batch),
        cmocka_unit_test(test_corr_errors_name_file_line_and_item),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
