/*
 * fields.c: the ka.* and jevt.* fields rules can name, and how each is read from an event.
 *
 * Top-level fields read struct kt_event directly. Body fields and jevt.value read a JSON
 * pointer (with '*' matching every array element or object member) by walking only the
 * body they need (requestObject or responseObject, whose spans the decoder recorded) in one
 * pass (walk.c); a '*' makes the field a list.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

enum getter {
    G_STR,    /* a scalar of struct kt_event: f[arg] */
    G_GROUPS, /* user.groups */
    G_SOURCEIPS,
    G_SOURCEIP,   /* the last sourceIP: the address the apiserver saw */
    G_NA,         /* deprecated in Falco, answered as Falco does: always "N/A" */
    G_NTH,        /* Falco's deprecated ka.req.container.*[N]: container N (ev_field: NTH_*) */
    G_CODE,       /* responseStatus.code as text */
    G_STAGE_TS,   /* jevt.rawtime */
    G_CLUSTER,    /* batch tag, else annotation */
    G_TRUNCATED,  /* ka.truncated: "true" or "false" */
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
    int takes_arg;    /* name[ARG]: 0 none, 1 required, 2 optional, 3 optional index */
    const char *ptr;  /* G_POINTER: the pointer ("" for jevt.value[ARG]) */
};

/* What G_NTH answers about container N (default 0) of the pod spec. */
enum { NTH_VALUE, NTH_REPOSITORY, NTH_PRIVILEGED };

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
    {"ka.sourceip", G_SOURCEIP, 0, 0, NULL},
    {"ka.auth.decision", G_STR, KT_F_DECISION, 0, NULL},
    {"ka.auth.reason", G_STR, KT_F_AUTHZ_REASON, 0, NULL},
    {"ka.validations.admission.policy.failure", G_STR, KT_F_ADMISSION_FAIL, 0, NULL},
    {"ka.security.pod.violations", G_STR, KT_F_PSS_VIOLATIONS, 0, NULL},
    {"ka.cluster.name", G_CLUSTER, 0, 0, NULL},
    {"ka.truncated", G_TRUNCATED, 0, 0, NULL},
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
    /* as in Falco's plugin: the first container, or container N with [N]; privileged is "true"
     * when any container is (container N with [N]), else "false" */
    {"ka.req.container.image", G_NTH, NTH_VALUE, 3, "/containers/*/image"},
    {"ka.req.container.image.repository", G_NTH, NTH_REPOSITORY, 3, "/containers/*/image"},
    {"ka.req.container.privileged", G_NTH, NTH_PRIVILEGED, 3,
     "/containers/*/securityContext/privileged"},
    {"ka.req.container.host_network", G_POINTER, 0, 0, POD "/hostNetwork"},
    /* Falco's plugin keeps it for old rule files and always answers "N/A"; it takes a
     * subject name, which it ignores (as does ktrail, which also accepts it without) */
    {"ka.req.binding.subject.has_name", G_NA, 0, 2, NULL},
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

/* "100101102...599": responseStatus.code as text without formatting it per event. */
static char code_text[500 * 3];
static pthread_once_t code_text_once = PTHREAD_ONCE_INIT;

static void code_text_init(void)
{
    for (int c = 100; c < 600; c++) {
        char *p = code_text + (c - 100) * 3;
        p[0] = (char)('0' + c / 100);
        p[1] = (char)('0' + c / 10 % 10);
        p[2] = (char)('0' + c % 10);
    }
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
    case G_SOURCEIP:
        /* the others come from X-Forwarded-For, which the client writes */
        if (ev->source_ips.n > 0) {
            from_str(ev->source_ips.v[ev->source_ips.n - 1], out);
        }
        return 0;
    case G_NA:
        from_str(KT_STR_LIT("N/A"), out);
        return 0;
    case G_CODE:
        if (ev->code >= 100 && ev->code < 600) {
            /* the HTTP codes as text, made once: correlations read the code of nearly every
             * event, which must cost neither a format nor an arena copy */
            pthread_once(&code_text_once, code_text_init);
            from_str((struct kt_str){code_text + (ev->code - 100) * 3, 3}, out);
        } else if (ev->code != 0) {
            /* by hand, not snprintf */
            char num[16], *p = num + sizeof(num);
            uint32_t v = ev->code < 0 ? (uint32_t)0 - (uint32_t)ev->code : (uint32_t)ev->code;
            do {
                *--p = (char)('0' + v % 10);
                v /= 10;
            } while (v > 0);
            if (ev->code < 0) {
                *--p = '-';
            }
            size_t n = (size_t)(num + sizeof(num) - p);
            from_str((struct kt_str){kt_arena_dup(a, p, n), n}, out);
        }
        return 0;
    case G_STAGE_TS:
        from_str(ev->f[KT_F_STAGE_TS], out);
        return 0;
    case G_CLUSTER:
        from_str(b->cluster.ptr != NULL ? b->cluster : ev->f[KT_F_CLUSTER_ANNOT], out);
        return 0;
    case G_TRUNCATED:
        from_str((ev->flags & KT_EV_TRUNCATED) ? KT_STR_LIT("true") : KT_STR_LIT("false"), out);
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
    case G_NTH: {
        struct kt_value all;
        int rc = pod_values(b, ev, fd->ptr, &all);
        if (rc != 0 || all.kind != KT_V_LIST) {
            return rc; /* no containers: missing */
        }
        uint32_t n = 0; /* the index, checked when the rules loaded */
        for (const char *p = f->arg != NULL ? f->arg : ""; *p != '\0' && n <= all.n; p++) {
            n = n * 10 + (uint32_t)(*p - '0');
        }
        if (fd->ev_field == NTH_PRIVILEGED && f->arg == NULL) {
            int any = 0;
            for (uint32_t i = 0; i < all.n; i++) {
                any |= kt_str_eq(all.v[i], "true", 4);
            }
            from_str(any ? KT_STR_LIT("true") : KT_STR_LIT("false"), out);
        } else if (n < all.n && fd->ev_field == NTH_PRIVILEGED) {
            from_str(kt_str_eq(all.v[n], "true", 4) ? KT_STR_LIT("true") : KT_STR_LIT("false"),
                     out);
        } else if (n < all.n) {
            from_str(fd->ev_field == NTH_REPOSITORY ? image_repository(all.v[n]) : all.v[n], out);
        }
        return 0;
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
