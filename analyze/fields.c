/*
 * fields.c: the ka.* and jevt.* fields rules can name, and how each is read from an event.
 *
 * Top-level fields read struct kt_event directly. Body fields and jevt.value read a JSON
 * pointer (with '*' matching every array element or object member) by walking only the
 * body they need (requestObject or responseObject, whose spans the decoder recorded) with
 * yajl callbacks; a '*' makes the field a list.
 */
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "rules_int.h"

enum getter {
    G_STR,    /* a scalar of struct kt_event: f[arg] */
    G_GROUPS, /* user.groups */
    G_SOURCEIPS,
    G_CODE,       /* responseStatus.code as text */
    G_STAGE_TS,   /* jevt.rawtime */
    G_CLUSTER,    /* batch tag, else annotation */
    G_URI_PARAM,  /* first value of a query parameter */
    G_URI_PARAMS, /* every value of a query parameter, a list */
    G_EXEC_CMD,   /* exec command= parameters joined by spaces */
    G_POINTER,    /* a JSON pointer into the event */
    G_OBJ,        /* jevt.obj: the whole event text */
    G_IMAGE_REPO, /* container images without tag or digest (ptr: pod-relative images) */
    G_SUBJECTS,   /* binding subjects of one kind (ptr: the kind; ev_field: with namespace) */
    G_HOSTPATH,   /* ka.req.volume.hostpath[PATH]: "true" or "false" */
    G_PSS,        /* Pod Security Standards violations (ev_field: 1 for restricted) */
    G_EFF,        /* effective per-container value: the container's, else the pod's (eff[]) */
};

struct field {
    const char *name; /* as rules write it */
    int getter;       /* enum getter */
    int ev_field;     /* G_STR: enum kt_field */
    int takes_arg;    /* name[ARG] */
    const char *ptr;  /* G_POINTER: the pointer ("" for jevt.value[ARG]) */
};

/* Effective settings: per container, the container's value, else the pod's, else a default
 * (NULL: a missing entry). */
static const struct {
    const char *setting; /* below securityContext, in the container and in the pod */
    const char *dflt;    /* when neither sets it */
} eff[] = {
    {"/runAsUser", "0"},
    {"/runAsGroup", "0"},
    {"/seccompProfile/type", NULL},
    {"/runAsNonRoot", "false"},
};

/* "@pod": the pod spec of a pod, a workload template or a cronjob (see fref_resolve). */
#define POD "@pod"
static const struct field fields[] = {
    {"ka.auditid", G_STR, KT_F_AUDIT_ID, 0, NULL},
    {"ka.stage", G_STR, KT_F_STAGE, 0, NULL},
    {"ka.verb", G_STR, KT_F_VERB, 0, NULL},
    {"ka.uri", G_STR, KT_F_URI, 0, NULL},
    {"ka.uri.param", G_URI_PARAM, 0, 1, NULL},
    {"ka.uri.params", G_URI_PARAMS, 0, 1, NULL},
    {"ka.exec.command", G_EXEC_CMD, 0, 0, NULL},
    {"ka.useragent", G_STR, KT_F_USER_AGENT, 0, NULL},
    {"ka.user.name", G_STR, KT_F_USER, 0, NULL},
    {"ka.user.groups", G_GROUPS, 0, 0, NULL},
    {"ka.user.extra.pod_name", G_STR, KT_F_POD_NAME_EXTRA, 0, NULL},
    {"ka.user.extra.node_name", G_STR, KT_F_NODE_NAME_EXTRA, 0, NULL},
    {"ka.impuser.name", G_STR, KT_F_IMP_USER, 0, NULL},
    {"ka.sourceips", G_SOURCEIPS, 0, 0, NULL},
    {"ka.auth.decision", G_STR, KT_F_DECISION, 0, NULL},
    {"ka.auth.reason", G_STR, KT_F_AUTHZ_REASON, 0, NULL},
    {"ka.validations.admission.policy.failure", G_STR, KT_F_ADMISSION_FAIL, 0, NULL},
    {"ka.security.pod.violations", G_STR, KT_F_PSS_VIOLATIONS, 0, NULL},
    {"ka.cluster.name", G_CLUSTER, 0, 0, NULL},
    {"ka.target.name", G_STR, KT_F_NAME, 0, NULL},
    {"ka.target.namespace", G_STR, KT_F_NAMESPACE, 0, NULL},
    {"ka.target.resource", G_STR, KT_F_RESOURCE, 0, NULL},
    {"ka.target.subresource", G_STR, KT_F_SUBRESOURCE, 0, NULL},
    {"ka.target.apigroup", G_STR, KT_F_API_GROUP, 0, NULL},
    {"ka.response.code", G_CODE, 0, 0, NULL},
    {"ka.response.reason", G_STR, KT_F_RESP_REASON, 0, NULL},
    {"jevt.value", G_POINTER, 0, 1, ""},
    {"json.value", G_POINTER, 0, 1, ""},
    {"jevt.obj", G_OBJ, 0, 0, NULL},
    {"jevt.rawtime", G_STAGE_TS, 0, 0, NULL},
    /* bodies: pointers into requestObject / responseObject */
    {"ka.resp.name", G_POINTER, 0, 0, "/responseObject/metadata/name"},
    {"ka.req.binding.role", G_POINTER, 0, 0, "/requestObject/roleRef/name"},
    {"ka.req.binding.subjects.name", G_POINTER, 0, 0, "/requestObject/subjects/*/name"},
    {"ka.req.binding.subjects.kind", G_POINTER, 0, 0, "/requestObject/subjects/*/kind"},
    {"ka.req.role.rules.apiGroups", G_POINTER, 0, 0, "/requestObject/rules/*/apiGroups/*"},
    {"ka.req.role.rules.resources", G_POINTER, 0, 0, "/requestObject/rules/*/resources/*"},
    {"ka.req.role.rules.verbs", G_POINTER, 0, 0, "/requestObject/rules/*/verbs/*"},
    {"ka.req.role.rules.nonResourceURLs", G_POINTER, 0, 0,
     "/requestObject/rules/*/nonResourceURLs/*"},
    {"ka.req.configmap.name", G_POINTER, 0, 0, "/requestObject/metadata/name"},
    {"ka.req.configmap.obj", G_POINTER, 0, 0, "/requestObject/data"},
    {"ka.req.service.type", G_POINTER, 0, 0, "@obj/spec/type"},
    {"ka.req.service.external_ips", G_POINTER, 0, 0, "@obj/spec/externalIPs/*"},
    {"ka.req.pod.host_network", G_POINTER, 0, 0, POD "/hostNetwork"},
    {"ka.req.pod.host_pid", G_POINTER, 0, 0, POD "/hostPID"},
    {"ka.req.pod.host_ipc", G_POINTER, 0, 0, POD "/hostIPC"},
    {"ka.req.pod.run_as_user", G_POINTER, 0, 0, POD "/securityContext/runAsUser"},
    {"ka.req.pod.run_as_group", G_POINTER, 0, 0, POD "/securityContext/runAsGroup"},
    {"ka.req.pod.fs_group", G_POINTER, 0, 0, POD "/securityContext/fsGroup"},
    {"ka.req.pod.supplemental_groups", G_POINTER, 0, 0,
     POD "/securityContext/supplementalGroups/*"},
    {"ka.req.pod.run_as_non_root", G_POINTER, 0, 0, POD "/securityContext/runAsNonRoot"},
    {"ka.req.pod.seccomp_profile", G_POINTER, 0, 0, POD "/securityContext/seccompProfile/type"},
    {"ka.req.pod.volumes.hostpath", G_POINTER, 0, 0, POD "/volumes/*/hostPath/path"},
    {"ka.req.pod.volumes.flexvolume_driver", G_POINTER, 0, 0, POD "/volumes/*/flexVolume/driver"},
    {"ka.req.pod.containers.name", G_POINTER, 0, 0, POD "/containers/*/name"},
    {"ka.req.pod.containers.image", G_POINTER, 0, 0, POD "/containers/*/image"},
    {"ka.req.pod.containers.command", G_POINTER, 0, 0, POD "/containers/*/command"},
    {"ka.req.pod.containers.args", G_POINTER, 0, 0, POD "/containers/*/args"},
    {"ka.req.pod.containers.privileged", G_POINTER, 0, 0,
     POD "/containers/*/securityContext/privileged"},
    {"ka.req.pod.containers.allow_privilege_escalation", G_POINTER, 0, 0,
     POD "/containers/*/securityContext/allowPrivilegeEscalation"},
    {"ka.req.pod.containers.read_only_fs", G_POINTER, 0, 0,
     POD "/containers/*/securityContext/readOnlyRootFilesystem"},
    {"ka.req.pod.containers.run_as_user", G_POINTER, 0, 0,
     POD "/containers/*/securityContext/runAsUser"},
    {"ka.req.pod.containers.run_as_group", G_POINTER, 0, 0,
     POD "/containers/*/securityContext/runAsGroup"},
    {"ka.req.pod.containers.run_as_non_root", G_POINTER, 0, 0,
     POD "/containers/*/securityContext/runAsNonRoot"},
    {"ka.req.pod.containers.proc_mount", G_POINTER, 0, 0,
     POD "/containers/*/securityContext/procMount"},
    {"ka.req.pod.containers.seccomp_profile", G_POINTER, 0, 0,
     POD "/containers/*/securityContext/seccompProfile/type"},
    {"ka.req.pod.containers.add_capabilities", G_POINTER, 0, 0,
     POD "/containers/*/securityContext/capabilities/add/*"},
    {"ka.req.pod.containers.drop_capabilities", G_POINTER, 0, 0,
     POD "/containers/*/securityContext/capabilities/drop/*"},
    {"ka.req.pod.containers.host_port", G_POINTER, 0, 0, POD "/containers/*/ports/*/hostPort"},
    {"ka.req.pod.initContainers.name", G_POINTER, 0, 0, POD "/initContainers/*/name"},
    {"ka.req.pod.initContainers.image", G_POINTER, 0, 0, POD "/initContainers/*/image"},
    {"ka.req.pod.initContainers.command", G_POINTER, 0, 0, POD "/initContainers/*/command"},
    {"ka.req.pod.initContainers.args", G_POINTER, 0, 0, POD "/initContainers/*/args"},
    {"ka.req.pod.initContainers.privileged", G_POINTER, 0, 0,
     POD "/initContainers/*/securityContext/privileged"},
    {"ka.req.pod.initContainers.allow_privilege_escalation", G_POINTER, 0, 0,
     POD "/initContainers/*/securityContext/allowPrivilegeEscalation"},
    {"ka.req.pod.initContainers.read_only_fs", G_POINTER, 0, 0,
     POD "/initContainers/*/securityContext/readOnlyRootFilesystem"},
    {"ka.req.pod.initContainers.run_as_user", G_POINTER, 0, 0,
     POD "/initContainers/*/securityContext/runAsUser"},
    {"ka.req.pod.initContainers.run_as_group", G_POINTER, 0, 0,
     POD "/initContainers/*/securityContext/runAsGroup"},
    {"ka.req.pod.initContainers.run_as_non_root", G_POINTER, 0, 0,
     POD "/initContainers/*/securityContext/runAsNonRoot"},
    {"ka.req.pod.initContainers.proc_mount", G_POINTER, 0, 0,
     POD "/initContainers/*/securityContext/procMount"},
    {"ka.req.pod.initContainers.seccomp_profile", G_POINTER, 0, 0,
     POD "/initContainers/*/securityContext/seccompProfile/type"},
    {"ka.req.pod.initContainers.add_capabilities", G_POINTER, 0, 0,
     POD "/initContainers/*/securityContext/capabilities/add/*"},
    {"ka.req.pod.initContainers.drop_capabilities", G_POINTER, 0, 0,
     POD "/initContainers/*/securityContext/capabilities/drop/*"},
    {"ka.req.pod.initContainers.host_port", G_POINTER, 0, 0,
     POD "/initContainers/*/ports/*/hostPort"},
    {"ka.req.pod.ephemeralContainers.name", G_POINTER, 0, 0, POD "/ephemeralContainers/*/name"},
    {"ka.req.pod.ephemeralContainers.image", G_POINTER, 0, 0, POD "/ephemeralContainers/*/image"},
    {"ka.req.pod.ephemeralContainers.command", G_POINTER, 0, 0,
     POD "/ephemeralContainers/*/command"},
    {"ka.req.pod.ephemeralContainers.args", G_POINTER, 0, 0, POD "/ephemeralContainers/*/args"},
    {"ka.req.pod.ephemeralContainers.privileged", G_POINTER, 0, 0,
     POD "/ephemeralContainers/*/securityContext/privileged"},
    {"ka.req.pod.ephemeralContainers.allow_privilege_escalation", G_POINTER, 0, 0,
     POD "/ephemeralContainers/*/securityContext/allowPrivilegeEscalation"},
    {"ka.req.pod.ephemeralContainers.read_only_fs", G_POINTER, 0, 0,
     POD "/ephemeralContainers/*/securityContext/readOnlyRootFilesystem"},
    {"ka.req.pod.ephemeralContainers.run_as_user", G_POINTER, 0, 0,
     POD "/ephemeralContainers/*/securityContext/runAsUser"},
    {"ka.req.pod.ephemeralContainers.run_as_group", G_POINTER, 0, 0,
     POD "/ephemeralContainers/*/securityContext/runAsGroup"},
    {"ka.req.pod.ephemeralContainers.run_as_non_root", G_POINTER, 0, 0,
     POD "/ephemeralContainers/*/securityContext/runAsNonRoot"},
    {"ka.req.pod.ephemeralContainers.proc_mount", G_POINTER, 0, 0,
     POD "/ephemeralContainers/*/securityContext/procMount"},
    {"ka.req.pod.ephemeralContainers.seccomp_profile", G_POINTER, 0, 0,
     POD "/ephemeralContainers/*/securityContext/seccompProfile/type"},
    {"ka.req.pod.ephemeralContainers.add_capabilities", G_POINTER, 0, 0,
     POD "/ephemeralContainers/*/securityContext/capabilities/add/*"},
    {"ka.req.pod.ephemeralContainers.drop_capabilities", G_POINTER, 0, 0,
     POD "/ephemeralContainers/*/securityContext/capabilities/drop/*"},
    {"ka.req.pod.ephemeralContainers.host_port", G_POINTER, 0, 0,
     POD "/ephemeralContainers/*/ports/*/hostPort"},
    {"ka.req.pod.containers.image.repository", G_IMAGE_REPO, 0, 0, "/containers/*/image"},
    {"ka.req.pod.initContainers.image.repository", G_IMAGE_REPO, 0, 0, "/initContainers/*/image"},
    {"ka.req.pod.ephemeralContainers.image.repository", G_IMAGE_REPO, 0, 0,
     "/ephemeralContainers/*/image"},
    {"ka.req.container.image.repository", G_IMAGE_REPO, 0, 0, "/containers/0/image"},
    {"ka.req.binding.subjects.user_names", G_SUBJECTS, 0, 0, "User"},
    {"ka.req.binding.subjects.group_names", G_SUBJECTS, 0, 0, "Group"},
    {"ka.req.binding.subjects.serviceaccount_names", G_SUBJECTS, 0, 0, "ServiceAccount"},
    {"ka.req.binding.subjects.serviceaccount_ns_names", G_SUBJECTS, 1, 0, "ServiceAccount"},
    {"ka.req.volume.hostpath", G_HOSTPATH, 0, 1, "/volumes/*/hostPath/path"},
    {"ka.req.pod.containers.eff_run_as_user", G_EFF, 0, 0, "/containers/*"},
    {"ka.req.pod.containers.eff_run_as_group", G_EFF, 1, 0, "/containers/*"},
    {"ka.req.pod.containers.eff_seccomp_profile", G_EFF, 2, 0, "/containers/*"},
    {"ka.req.pod.containers.eff_run_as_non_root", G_EFF, 3, 0, "/containers/*"},
    {"ka.req.pod.initContainers.eff_run_as_user", G_EFF, 0, 0, "/initContainers/*"},
    {"ka.req.pod.initContainers.eff_run_as_group", G_EFF, 1, 0, "/initContainers/*"},
    {"ka.req.pod.initContainers.eff_seccomp_profile", G_EFF, 2, 0, "/initContainers/*"},
    {"ka.req.pod.initContainers.eff_run_as_non_root", G_EFF, 3, 0, "/initContainers/*"},
    {"ka.req.pod.ephemeralContainers.eff_run_as_user", G_EFF, 0, 0, "/ephemeralContainers/*"},
    {"ka.req.pod.ephemeralContainers.eff_run_as_group", G_EFF, 1, 0, "/ephemeralContainers/*"},
    {"ka.req.pod.ephemeralContainers.eff_seccomp_profile", G_EFF, 2, 0, "/ephemeralContainers/*"},
    {"ka.req.pod.ephemeralContainers.eff_run_as_non_root", G_EFF, 3, 0, "/ephemeralContainers/*"},
    {"ka.req.pod.pss.baseline", G_PSS, 0, 0, NULL},
    {"ka.req.pod.pss.restricted", G_PSS, 1, 0, NULL},
    /* deprecated singletons */
    {"ka.req.container.image", G_POINTER, 0, 0, POD "/containers/0/image"},
    {"ka.req.container.privileged", G_POINTER, 0, 0,
     POD "/containers/*/securityContext/privileged"},
    {"ka.req.container.host_network", G_POINTER, 0, 0, POD "/hostNetwork"},
    /* whole items, as JSON text */
    {"ka.req.role.rules", G_POINTER, 0, 0, "/requestObject/rules/*"},
    {"ka.req.binding.subjects", G_POINTER, 0, 0, "/requestObject/subjects/*"},
    {"ka.req.service.ports", G_POINTER, 0, 0, "@obj/spec/ports/*"},
    {"ka.req.service.load_balancer_ip", G_POINTER, 0, 0, "@obj/spec/loadBalancerIP"},
};
#undef POD

enum { NFIELDS = sizeof(fields) / sizeof(fields[0]) };

int field_lookup(const char *name, size_t len, int *takes_arg, const char **ptr)
{
    for (int i = 0; i < NFIELDS; i++) {
        if (strlen(fields[i].name) == len && memcmp(fields[i].name, name, len) == 0) {
            *takes_arg = fields[i].takes_arg;
            *ptr = fields[i].getter == G_POINTER ? fields[i].ptr : NULL; /* walked by the matcher */
            return i;
        }
    }
    return -1;
}

const char *field_name(int id)
{
    return id >= 0 && id < NFIELDS ? fields[id].name : "?";
}

/* ---- query strings ---- */

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decode s into the arena. */
static struct kt_str url_decode(struct kt_arena *a, const char *s, size_t len)
{
    char *out = kt_arena_alloc(a, len + 1);
    size_t n = 0;
    if (out == NULL) {
        return KT_STR_NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[n++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[n++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    out[n] = '\0';
    return (struct kt_str){out, n};
}

/* Values of query parameter name in uri (all, or the first), decoded into the arena. */
static int uri_params(struct kt_arena *a, struct kt_str uri, const char *name, int all,
                      struct kt_value *out)
{
    const char *q = uri.ptr != NULL ? memchr(uri.ptr, '?', uri.len) : NULL;
    size_t nlen = strlen(name), cap = 0;
    struct kt_str *list = NULL;
    memset(out, 0, sizeof(*out));
    if (q == NULL) {
        return 0;
    }
    const char *end = uri.ptr + uri.len, *p = q + 1;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (eq != NULL && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
            struct kt_str v = url_decode(a, eq + 1, (size_t)(stop - eq - 1));
            if (!all) {
                out->kind = KT_V_STR;
                out->s = v;
                return 0;
            }
            if (out->n == cap) {
                cap = cap ? cap * 2 : 8;
                struct kt_str *nl = kt_arena_alloc(a, cap * sizeof(*nl));
                if (nl == NULL) {
                    return KT_ENOMEM;
                }
                if (out->n > 0) {
                    memcpy(nl, list, out->n * sizeof(*nl));
                }
                list = nl;
            }
            list[out->n++] = v;
            out->kind = KT_V_LIST;
            out->v = list;
        }
        p = stop + 1;
    }
    return 0;
}

/* ---- JSON pointers with '*', many at once ---- */

enum { MAX_SEGS = 16 };

/* One pointer being looked for during a walk. */
struct target {
    const char *segs[MAX_SEGS]; /* segments, unescaped (in the arena) */
    size_t seglen[MAX_SEGS];
    long segidx[MAX_SEGS]; /* a segment's array index when it is a number, -2 for '*', else -1 */
    int nsegs;
    int wild;            /* has a '*': the value is a list */
    int matched;         /* leading depths whose path matches */
    int key_ok;          /* the last key matched its segment */
    int cap_depth;       /* depth of a matched container being captured, or -1 */
    size_t cap_start;    /* its first byte */
    struct kt_str *vals; /* collected values (arena) */
    uint32_t n, cap;
    int wseg;       /* the only '*' segment when not last (one entry per element), else -1 */
    int elem_depth; /* depth of the element of that array being walked, or -1 */
    int elem_hit;   /* the element produced a value */
};

struct walk {
    const char *json, *json_end; /* text walked */
    yajl_handle h;               /* for byte offsets */
    int depth;                   /* containers entered */
    int in_array[MAX_SEGS + 2];  /* per depth: array (1) or object (0) */
    long index[MAX_SEGS + 2];    /* per depth: next array index */
    struct target *t;            /* pointers looked for */
    int nt;
    struct kt_arena *arena;
    int err;
};

static int seg_match(const struct target *t, int d, const char *s, size_t len)
{
    return (t->seglen[d] == 1 && t->segs[d][0] == '*') ||
           (t->seglen[d] == len && memcmp(t->segs[d], s, len) == 0);
}

static void collect(struct walk *w, struct target *t, const char *s, size_t len)
{
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 8;
        struct kt_str *nv = kt_arena_alloc(w->arena, cap * sizeof(*nv));
        if (nv == NULL) {
            w->err = KT_ENOMEM;
            return;
        }
        if (t->n > 0) {
            memcpy(nv, t->vals, t->n * sizeof(*nv));
        }
        t->vals = nv;
        t->cap = cap;
    }
    /* strings with escapes live in yajl's buffer: copy them (NULL: a missing entry) */
    if (s != NULL && (s < w->json || s >= w->json_end)) {
        s = kt_arena_dup(w->arena, s, len);
    }
    t->vals[t->n++] = (struct kt_str){s, len};
    t->elem_hit = 1;
}

/* The array index of the value about to come (counting it), or -1 inside an object. */
static long next_index(struct walk *w)
{
    int d = w->depth;
    return d >= 1 && d <= MAX_SEGS + 1 && w->in_array[d] ? w->index[d]++ : -1;
}

/* Is the value about to come on t's path? 2: its target, 1: on the way, 0: elsewhere. */
static int on_path(const struct walk *w, const struct target *t, long idx)
{
    int d = w->depth;
    if (d == 0) {
        return 1; /* the root is on every path */
    }
    if (t->cap_depth >= 0 || t->matched < d || d > t->nsegs) {
        return 0;
    }
    int ok = t->key_ok;
    if (idx >= 0) {
        ok = t->segidx[d - 1] == -2 || t->segidx[d - 1] == idx;
    }
    return ok ? (d == t->nsegs ? 2 : 1) : 0;
}

static int w_scalar(struct walk *w, const char *s, size_t len)
{
    long idx = next_index(w);
    for (int i = 0; i < w->nt; i++) {
        struct target *t = &w->t[i];
        if (s != NULL && on_path(w, t, idx) == 2) {
            collect(w, t, s, len);
        }
        t->key_ok = 0;
    }
    return w->err == 0;
}

static int w_null(void *ctx)
{
    return w_scalar(ctx, NULL, 0);
}
static int w_bool(void *ctx, int b)
{
    return w_scalar(ctx, b ? "true" : "false", b ? 4 : 5);
}
static int w_number(void *ctx, const char *s, size_t len)
{
    return w_scalar(ctx, s, len);
}
static int w_string(void *ctx, const unsigned char *s, size_t len)
{
    return w_scalar(ctx, (const char *)s, len);
}

static int w_start(struct walk *w, int array)
{
    long idx = next_index(w);
    for (int i = 0; i < w->nt; i++) {
        struct target *t = &w->t[i];
        int p = on_path(w, t, idx);
        if (p == 2) {
            t->cap_start = yajl_get_bytes_consumed(w->h) - 1;
            t->cap_depth = w->depth + 1;
        } else if (p == 1 && t->matched == w->depth) {
            t->matched = w->depth + 1;
            if (t->wseg >= 0 && w->depth == t->wseg + 1) {
                /* an element of the '*' array: it yields a value or a missing entry */
                t->elem_depth = w->depth + 1;
                t->elem_hit = 0;
            }
        }
        t->key_ok = 0;
    }
    w->depth++;
    if (w->depth <= MAX_SEGS + 1) {
        w->in_array[w->depth] = array;
        w->index[w->depth] = 0;
    }
    return 1;
}

static int w_end(void *ctx)
{
    struct walk *w = ctx;
    for (int i = 0; i < w->nt; i++) {
        struct target *t = &w->t[i];
        if (t->cap_depth == w->depth) {
            size_t end = yajl_get_bytes_consumed(w->h);
            collect(w, t, w->json + t->cap_start, end - t->cap_start);
            t->cap_depth = -1;
        }
        if (t->elem_depth == w->depth) {
            if (!t->elem_hit) {
                collect(w, t, NULL, 0);
            }
            t->elem_depth = -1;
        }
        if (t->matched == w->depth) {
            t->matched = w->depth - 1;
        }
        t->key_ok = 0;
    }
    w->depth--;
    return w->err == 0;
}

static int w_start_map(void *ctx)
{
    return w_start(ctx, 0);
}
static int w_start_array(void *ctx)
{
    return w_start(ctx, 1);
}
static int w_key(void *ctx, const unsigned char *s, size_t len)
{
    struct walk *w = ctx;
    int d = w->depth;
    for (int i = 0; i < w->nt; i++) {
        struct target *t = &w->t[i];
        t->key_ok = t->cap_depth < 0 && t->matched >= d && d >= 1 && d <= t->nsegs &&
                    seg_match(t, d - 1, (const char *)s, len);
    }
    return 1;
}

static const yajl_callbacks walk_cbs = {
    w_null, w_bool, NULL, NULL, w_number, w_string, w_start_map, w_key, w_end, w_start_array, w_end,
};

/* Split pointer into t->segs (RFC 6901: ~1 is '/', ~0 is '~'), into the arena. */
static int split_pointer(struct kt_arena *a, struct target *t, const char *ptr)
{
    memset(t, 0, sizeof(*t));
    t->cap_depth = -1;
    t->elem_depth = -1;
    t->wseg = -1;
    if (*ptr != '/') {
        return -1;
    }
    while (*ptr == '/' && t->nsegs < MAX_SEGS) {
        const char *s = ptr + 1, *e = strchr(s, '/');
        size_t len = e != NULL ? (size_t)(e - s) : strlen(s);
        char *seg = kt_arena_alloc(a, len + 1);
        size_t n = 0;
        if (seg == NULL) {
            return -1;
        }
        for (size_t i = 0; i < len; i++) {
            if (s[i] == '~' && i + 1 < len && (s[i + 1] == '0' || s[i + 1] == '1')) {
                seg[n++] = s[i + 1] == '1' ? '/' : '~';
                i++;
            } else {
                seg[n++] = s[i];
            }
        }
        seg[n] = '\0';
        if (n == 1 && seg[0] == '*') {
            t->wseg = t->wild ? -1 : t->nsegs; /* aligned only with a single '*' */
            t->wild = 1;
        }
        long idx = n > 0 && n < 10 ? 0 : -1;
        for (size_t i = 0; i < n && idx >= 0; i++) {
            idx = seg[i] >= '0' && seg[i] <= '9' ? idx * 10 + (seg[i] - '0') : -1;
        }
        t->segidx[t->nsegs] = n == 1 && seg[0] == '*' ? -2 : idx;
        t->segs[t->nsegs] = seg;
        t->seglen[t->nsegs++] = n;
        ptr = s + len;
    }
    if (t->wseg == t->nsegs - 1) {
        t->wseg = -1; /* a trailing '*' flattens: no entries for missing values */
    }
    return 0;
}

/* Walk json once for the n (at most 64) targets ts, which are ready (split, state reset). */
static int walk_run(struct target *ts, int n, struct kt_arena *a, const char *json, size_t len,
                    struct kt_value *outs)
{
    struct walk w;
    memset(&w, 0, sizeof(w));
    w.json = json;
    w.json_end = json + len;
    w.arena = a;
    w.t = ts;
    w.nt = n;
    for (int i = 0; i < n; i++) {
        memset(&outs[i], 0, sizeof(outs[i]));
    }
    if (json == NULL) {
        return 0;
    }
    w.h = yajl_alloc(&walk_cbs, NULL, &w);
    if (w.h == NULL) {
        return KT_ENOMEM;
    }
    if (yajl_parse(w.h, (const unsigned char *)json, len) == yajl_status_ok) {
        yajl_complete_parse(w.h);
    }
    yajl_free(w.h);
    if (w.err != 0) {
        return w.err;
    }
    for (int i = 0; i < n; i++) {
        if (ts[i].wild && ts[i].n > 0) {
            outs[i] = (struct kt_value){.kind = KT_V_LIST, .v = ts[i].vals, .n = ts[i].n};
        } else if (ts[i].n > 0) {
            outs[i] = (struct kt_value){.kind = KT_V_STR, .s = ts[i].vals[0]};
        }
    }
    return 0;
}

int field_walk(struct kt_arena *a, const char *json, size_t len, const char *const *ptrs, int n,
               struct kt_value *outs)
{
    struct target ts[64];
    n = n < 64 ? n : 64;
    for (int i = 0; i < n; i++) {
        if (split_pointer(a, &ts[i], ptrs[i]) != 0) {
            ts[i].nsegs = -1; /* never matches */
        }
    }
    return walk_run(ts, n, a, json, len, outs);
}

/* A walker keeps its pointers split once; each run copies the pristine targets. */
struct field_walker {
    struct target *tmpl;  /* split pointers, state reset */
    int n;                /* count */
    struct kt_arena segs; /* their segments */
};

struct field_walker *field_walker_create(const char *const *ptrs, int n)
{
    struct field_walker *fw = calloc(1, sizeof(*fw));
    if (fw == NULL || (fw->tmpl = calloc((size_t)n + 1, sizeof(*fw->tmpl))) == NULL) {
        free(fw);
        return NULL;
    }
    fw->n = n;
    for (int i = 0; i < n; i++) {
        if (split_pointer(&fw->segs, &fw->tmpl[i], ptrs[i]) != 0) {
            fw->tmpl[i].nsegs = -1;
        }
    }
    return fw;
}

void field_walker_destroy(struct field_walker *fw)
{
    if (fw != NULL) {
        kt_arena_free(&fw->segs);
        free(fw->tmpl);
        free(fw);
    }
}

int field_walker_run(const struct field_walker *fw, struct kt_arena *a, const char *json,
                     size_t len, struct kt_value *outs)
{
    struct target ts[64];
    for (int off = 0; off < fw->n; off += 64) {
        int n = fw->n - off < 64 ? fw->n - off : 64;
        memcpy(ts, fw->tmpl + off, (size_t)n * sizeof(*ts));
        int rc = walk_run(ts, n, a, json, len, outs + off);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int field_body(const char *ptr, const char **rel)
{
    static const char req[] = "/requestObject", resp[] = "/responseObject";
    if (ptr == NULL) {
        return -1;
    }
    if (strncmp(ptr, req, sizeof(req) - 1) == 0 && ptr[sizeof(req) - 1] == '/') {
        *rel = ptr + sizeof(req) - 1;
        return BODY_REQ;
    }
    if (strncmp(ptr, resp, sizeof(resp) - 1) == 0 && ptr[sizeof(resp) - 1] == '/') {
        *rel = ptr + sizeof(resp) - 1;
        return BODY_RESP;
    }
    *rel = ptr;
    return BODY_EVENT;
}

struct kt_str field_body_text(const struct kt_batch *b, const struct kt_event *ev, int body)
{
    if (body == BODY_REQ) {
        return ev->req_obj;
    }
    if (body == BODY_RESP) {
        return ev->resp_obj;
    }
    const struct kt_record *r = &b->recs[ev->rec];
    return (struct kt_str){b->buf + r->pos, r->len};
}

/* ---- the getter ---- */

static void from_list(const struct kt_strlist *l, struct kt_value *out)
{
    out->kind = l->v != NULL ? KT_V_LIST : KT_V_NONE;
    out->v = l->v;
    out->n = l->n;
}

static void from_str(struct kt_str s, struct kt_value *out)
{
    out->kind = s.ptr != NULL ? KT_V_STR : KT_V_NONE;
    out->s = s;
}

const char *const pod_spec_prefix[POD_PREFIXES] = {"/spec", "/spec/template/spec",
                                                   "/spec/jobTemplate/spec/template/spec"};

/* Values at a pod-spec-relative pointer: the pod's, a workload template's or a cronjob's,
 * from the request, or for patch the response. */
static int pod_values(const struct kt_batch *b, const struct kt_event *ev, const char *rel,
                      struct kt_value *out)
{
    const char *const *prefix = pod_spec_prefix;
    struct kt_arena *a = (struct kt_arena *)&b->arena;
    struct kt_str text = kt_str_eq(ev->f[KT_F_VERB], "patch", 5) ? ev->resp_obj : ev->req_obj;
    const char *ptrs[3];
    char bufs[3][256];
    struct kt_value outs[3];
    for (int i = 0; i < 3; i++) {
        snprintf(bufs[i], sizeof(bufs[i]), "%s%s", prefix[i], rel);
        ptrs[i] = bufs[i];
    }
    int rc = field_walk(a, text.ptr, text.len, ptrs, 3, outs);
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < 3 && rc == 0; i++) {
        if (outs[i].kind != KT_V_NONE) {
            *out = outs[i];
            break;
        }
    }
    return rc;
}

/* An image reference without its tag or digest: "host:5000/team/app:1.2@sha256:..." ->
 * "host:5000/team/app" (a ':' after the last '/' starts the tag; a registry port does not). */
static struct kt_str image_repository(struct kt_str img)
{
    if (img.ptr == NULL) {
        return img;
    }
    size_t n = img.len;
    const char *at = memchr(img.ptr, '@', n);
    if (at != NULL) {
        n = (size_t)(at - img.ptr);
    }
    size_t slash = 0;
    for (size_t i = 0; i < n; i++) {
        if (img.ptr[i] == '/') {
            slash = i + 1;
        }
    }
    const char *colon = memchr(img.ptr + slash, ':', n - slash);
    if (colon != NULL) {
        n = (size_t)(colon - img.ptr);
    }
    return (struct kt_str){img.ptr, n};
}

/* Subjects of one kind: their names, or "namespace:name" for service accounts with ns. */
static int subjects_of_kind(struct kt_arena *a, const struct kt_event *ev, const char *kind,
                            int with_ns, struct kt_value *out)
{
    static const char *const ptrs[] = {"/subjects/*/kind", "/subjects/*/name",
                                       "/subjects/*/namespace"};
    struct kt_value v[3];
    int rc = field_walk(a, ev->req_obj.ptr, ev->req_obj.len, ptrs, 3, v);
    memset(out, 0, sizeof(*out));
    if (rc != 0 || v[0].kind != KT_V_LIST || v[1].kind != KT_V_LIST) {
        return rc;
    }
    struct kt_str *list = kt_arena_alloc(a, (v[0].n + 1) * sizeof(*list));
    if (list == NULL) {
        return KT_ENOMEM;
    }
    uint32_t n = 0;
    size_t klen = strlen(kind);
    for (uint32_t i = 0; i < v[0].n && i < v[1].n; i++) {
        if (!kt_str_eq(v[0].v[i], kind, klen) || v[1].v[i].ptr == NULL) {
            continue;
        }
        struct kt_str name = v[1].v[i];
        if (with_ns) {
            struct kt_str ns = v[2].kind == KT_V_LIST && i < v[2].n ? v[2].v[i] : KT_STR_NULL;
            char *s = kt_arena_alloc(a, ns.len + name.len + 2);
            if (s == NULL) {
                return KT_ENOMEM;
            }
            memcpy(s, ns.ptr != NULL ? ns.ptr : "", ns.len);
            s[ns.len] = ':';
            memcpy(s + ns.len + 1, name.ptr, name.len);
            name = (struct kt_str){s, ns.len + 1 + name.len};
        }
        list[n++] = name;
    }
    *out = (struct kt_value){.kind = KT_V_LIST, .v = list, .n = n};
    return 0;
}

int field_get(const struct fref *f, const struct kt_batch *b, const struct kt_event *ev,
              struct field_memo *memo, struct kt_value *out)
{
    const struct field *fd = &fields[f->id];
    struct kt_arena *a = (struct kt_arena *)&b->arena;
    memset(out, 0, sizeof(*out));
    switch (fd->getter) {
    case G_STR:
        from_str(ev->f[fd->ev_field], out);
        return 0;
    case G_GROUPS:
        from_list(&ev->groups, out);
        return 0;
    case G_SOURCEIPS:
        from_list(&ev->source_ips, out);
        return 0;
    case G_CODE:
        if (ev->code != 0) {
            char num[16];
            int n = snprintf(num, sizeof(num), "%d", ev->code);
            from_str((struct kt_str){kt_arena_dup(a, num, (size_t)n), (size_t)n}, out);
        }
        return 0;
    case G_STAGE_TS:
        from_str(ev->f[KT_F_STAGE_TS], out);
        return 0;
    case G_CLUSTER:
        from_str(b->cluster.ptr != NULL ? b->cluster : ev->f[KT_F_CLUSTER_ANNOT], out);
        return 0;
    case G_URI_PARAM:
    case G_URI_PARAMS:
        return uri_params(a, ev->f[KT_F_URI], f->arg, fd->getter == G_URI_PARAMS, out);
    case G_EXEC_CMD: {
        struct kt_value all;
        int rc = uri_params(a, ev->f[KT_F_URI], "command", 1, &all);
        if (rc != 0 || all.kind != KT_V_LIST) {
            return rc;
        }
        size_t len = 0;
        for (uint32_t i = 0; i < all.n; i++) {
            len += all.v[i].len + 1;
        }
        char *s = kt_arena_alloc(a, len + 1);
        if (s == NULL) {
            return KT_ENOMEM;
        }
        size_t n = 0;
        for (uint32_t i = 0; i < all.n; i++) {
            if (i > 0) {
                s[n++] = ' ';
            }
            memcpy(s + n, all.v[i].ptr, all.v[i].len);
            n += all.v[i].len;
        }
        s[n] = '\0';
        from_str((struct kt_str){s, n}, out);
        return 0;
    }
    case G_POINTER: {
        const char *rel = NULL;
        int body = field_body(f->ptr, &rel);
        struct kt_str text = field_body_text(b, ev, body);
        return field_walk(a, text.ptr, text.len, &rel, 1, out);
    }
    case G_IMAGE_REPO: {
        int rc = pod_values(b, ev, fd->ptr, out);
        if (rc == 0 && out->kind == KT_V_STR) {
            out->s = image_repository(out->s);
        } else if (rc == 0 && out->kind == KT_V_LIST) {
            struct kt_str *list = kt_arena_alloc(a, (out->n + 1) * sizeof(*list));
            if (list == NULL) {
                return KT_ENOMEM;
            }
            for (uint32_t i = 0; i < out->n; i++) {
                list[i] = image_repository(out->v[i]);
            }
            out->v = list;
        }
        return rc;
    }
    case G_SUBJECTS:
        return subjects_of_kind(a, ev, fd->ptr, fd->ev_field, out);
    case G_HOSTPATH: {
        struct kt_value paths;
        int rc = pod_values(b, ev, fd->ptr, &paths);
        size_t alen = strlen(f->arg);
        int prefix = alen > 0 && f->arg[alen - 1] == '*', hit = 0;
        for (uint32_t i = 0; rc == 0 && paths.kind == KT_V_LIST && i < paths.n; i++) {
            struct kt_str p = paths.v[i];
            hit |=
                p.ptr != NULL && (prefix ? p.len >= alen - 1 && memcmp(p.ptr, f->arg, alen - 1) == 0
                                         : kt_str_eq(p, f->arg, alen));
        }
        from_str(hit ? KT_STR_LIT("true") : KT_STR_LIT("false"), out);
        return rc;
    }
    case G_EFF: {
        char cont[128], pod[64];
        struct kt_value cv, pv;
        snprintf(cont, sizeof(cont), "%s/securityContext%s", fd->ptr, eff[fd->ev_field].setting);
        snprintf(pod, sizeof(pod), "/securityContext%s", eff[fd->ev_field].setting);
        int rc = pod_values(b, ev, cont, &cv);
        if (rc == 0) {
            rc = pod_values(b, ev, pod, &pv);
        }
        if (rc != 0 || cv.kind != KT_V_LIST) {
            return rc; /* no containers in that group: missing */
        }
        struct kt_str dflt =
            eff[fd->ev_field].dflt != NULL
                ? (struct kt_str){eff[fd->ev_field].dflt, strlen(eff[fd->ev_field].dflt)}
                : KT_STR_NULL;
        struct kt_str *list = kt_arena_alloc(a, (cv.n + 1) * sizeof(*list));
        if (list == NULL) {
            return KT_ENOMEM;
        }
        for (uint32_t i = 0; i < cv.n; i++) {
            list[i] = cv.v[i].ptr != NULL ? cv.v[i] : pv.kind == KT_V_STR ? pv.s : dflt;
        }
        *out = (struct kt_value){.kind = KT_V_LIST, .v = list, .n = cv.n};
        return 0;
    }
    case G_PSS: /* both levels from one evaluation, shared by the two fields */
        if (memo->pss_gen != memo->gen) {
            int rc = pss_evaluate(b, ev, memo->pss);
            if (rc != 0) {
                return rc;
            }
            memo->pss_gen = memo->gen;
        }
        *out = memo->pss[fd->ev_field];
        return 0;
    case G_OBJ: {
        const struct kt_record *r = &b->recs[ev->rec];
        from_str((struct kt_str){b->buf + r->pos, r->len}, out);
        return 0;
    }
    }
    return 0;
}
