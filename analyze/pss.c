/*
 * pss.c: Pod Security Standards, evaluated by ktrail on any pod spec (a pod's, a workload
 * template's, a cronjob's), whatever the cluster enforces: the list of checks a spec violates
 * for the baseline and the restricted levels, named as the published standard names them.
 *
 * One walk over the body collects every setting the checks read (field_walk with many
 * pointers); the checks then run on those values.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

/* What the checks read, relative to the pod spec. C() expands over the container groups. */
enum {
    P_HOST_NET,
    P_HOST_PID,
    P_HOST_IPC,
    P_HOSTPATH,
    P_SECCOMP,
    P_RUN_AS_NON_ROOT,
    P_RUN_AS_USER,
    P_SELINUX_TYPE,
    P_SELINUX_USER,
    P_SELINUX_ROLE,
    P_APPARMOR,
    P_SYSCTLS,
    P_WIN_HOSTPROCESS,
    P_VOLUMES, /* each volume, as JSON text, for its type */
    P_GROUP0,  /* then per container group (containers, initContainers, ephemeralContainers): */
};
enum {
    C_PRIVILEGED,
    C_ADD_CAPS,
    C_DROP_CAPS,
    C_HOST_PORTS,
    C_PROC_MOUNT,
    C_SECCOMP,
    C_ESCALATION,
    C_RUN_AS_NON_ROOT,
    C_RUN_AS_USER,
    C_SELINUX_TYPE,
    C_SELINUX_USER,
    C_SELINUX_ROLE,
    C_APPARMOR,
    C_WIN_HOSTPROCESS,
    C_NAME,
    C_COUNT,
};
enum { NPTR = P_GROUP0 + 3 * C_COUNT };

static const char *const pod_rel[P_GROUP0] = {
    "/hostNetwork",
    "/hostPID",
    "/hostIPC",
    "/volumes/*/hostPath/path",
    "/securityContext/seccompProfile/type",
    "/securityContext/runAsNonRoot",
    "/securityContext/runAsUser",
    "/securityContext/seLinuxOptions/type",
    "/securityContext/seLinuxOptions/user",
    "/securityContext/seLinuxOptions/role",
    "/securityContext/appArmorProfile/type",
    "/securityContext/sysctls/*/name",
    "/securityContext/windowsOptions/hostProcess",
    "/volumes/*",
};
static const char *const cont_rel[C_COUNT] = {
    "/securityContext/privileged",
    "/securityContext/capabilities/add/*",
    "/securityContext/capabilities/drop/*",
    "/ports/*/hostPort",
    "/securityContext/procMount",
    "/securityContext/seccompProfile/type",
    "/securityContext/allowPrivilegeEscalation",
    "/securityContext/runAsNonRoot",
    "/securityContext/runAsUser",
    "/securityContext/seLinuxOptions/type",
    "/securityContext/seLinuxOptions/user",
    "/securityContext/seLinuxOptions/role",
    "/securityContext/appArmorProfile/type",
    "/securityContext/windowsOptions/hostProcess",
    "/name",
};
static const char *const groups[3] = {"/containers/*", "/initContainers/*",
                                      "/ephemeralContainers/*"};

static int is(struct kt_str s, const char *lit)
{
    return kt_str_eq(s, lit, strlen(lit));
}

static int any_is(const struct kt_value *v, const char *lit)
{
    if (v->kind == KT_V_STR) {
        return is(v->s, lit);
    }
    for (uint32_t i = 0; v->kind == KT_V_LIST && i < v->n; i++) {
        if (is(v->v[i], lit)) {
            return 1;
        }
    }
    return 0;
}

static int in_set(struct kt_str s, const char *const *set)
{
    for (; *set != NULL; set++) {
        if (is(s, *set)) {
            return 1;
        }
    }
    return 0;
}

/* Does any value of v fall outside set (missing entries ignored)? */
static int any_outside(const struct kt_value *v, const char *const *set)
{
    if (v->kind == KT_V_STR) {
        return !in_set(v->s, set);
    }
    for (uint32_t i = 0; v->kind == KT_V_LIST && i < v->n; i++) {
        if (v->v[i].ptr != NULL && !in_set(v->v[i], set)) {
            return 1;
        }
    }
    return 0;
}

/* Number of containers in a group (their names, one entry per container). */
static uint32_t count(const struct kt_value *names)
{
    return names->kind == KT_V_LIST ? names->n : 0;
}

/* Element i of a per-container list, or a NULL slice. */
static struct kt_str at(const struct kt_value *v, uint32_t i)
{
    return v->kind == KT_V_LIST && i < v->n ? v->v[i] : KT_STR_NULL;
}

struct found {
    struct kt_str *v; /* check names */
    uint32_t n;
};

static void add(struct found *f, const char *check)
{
    for (uint32_t i = 0; i < f->n; i++) {
        if (is(f->v[i], check)) {
            return;
        }
    }
    f->v[f->n++] = (struct kt_str){check, strlen(check)};
}

static const char *const allowed_caps_baseline[] = {
    "AUDIT_WRITE",      "CHOWN",   "DAC_OVERRIDE", "FOWNER",  "FSETID", "KILL",       "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID",       "SETPCAP", "SETUID", "SYS_CHROOT", NULL};
static const char *const selinux_types[] = {
    "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t", NULL};
static const char *const safe_sysctls[] = {"kernel.shm_rmid_forced",
                                           "net.ipv4.ip_local_port_range",
                                           "net.ipv4.ip_unprivileged_port_start",
                                           "net.ipv4.tcp_syncookies",
                                           "net.ipv4.ping_group_range",
                                           "net.ipv4.ip_local_reserved_ports",
                                           "net.ipv4.tcp_keepalive_time",
                                           "net.ipv4.tcp_fin_timeout",
                                           "net.ipv4.tcp_keepalive_intvl",
                                           "net.ipv4.tcp_keepalive_probes",
                                           NULL};
static const char *const apparmor_ok[] = {"RuntimeDefault", "Localhost", NULL};
static const char *const seccomp_ok[] = {"RuntimeDefault", "Localhost", NULL};
static const char *const only_net_bind[] = {"NET_BIND_SERVICE", NULL};
static const char *const none[] = {NULL}; /* any value set is outside it */
static const char *const restricted_volume_keys[] = {
    "configMap", "csi",    "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret", "name",        NULL};

/* Is a volume's JSON text of an allowed type (every key in the allowed list)? Keys are found
 * at depth 1 of the object text, skipping nested values. */
static int volume_allowed(struct kt_str v)
{
    int depth = 0, in_str = 0, esc = 0, key = 1;
    size_t start = 0;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.ptr[i];
        if (in_str) {
            if (esc) {
                esc = 0;
            } else if (c == '\\') {
                esc = 1;
            } else if (c == '"') {
                in_str = 0;
                if (depth == 1 && key) {
                    char name[64];
                    size_t n = i - start < sizeof(name) - 1 ? i - start : sizeof(name) - 1;
                    memcpy(name, v.ptr + start, n);
                    name[n] = '\0';
                    if (!in_set((struct kt_str){name, n}, restricted_volume_keys)) {
                        return 0;
                    }
                }
            }
            continue;
        }
        if (c == '"') {
            in_str = 1;
            start = i + 1;
        } else if (c == '{' || c == '[') {
            depth++;
            key = 1;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == ':') {
            key = 0;
        } else if (c == ',') {
            key = 1;
        }
    }
    return 1;
}

/* The settings' pointers for each place a pod spec sits, split once for the process. */
static struct field_walker *walkers[POD_PREFIXES];
static pthread_once_t walkers_once = PTHREAD_ONCE_INIT;

static void walkers_init(void)
{
    for (int p = 0; p < POD_PREFIXES; p++) {
        static char bufs[NPTR][160];
        const char *ptrs[NPTR];
        for (int i = 0; i < P_GROUP0; i++) {
            snprintf(bufs[i], sizeof(bufs[i]), "%s%s", pod_spec_prefix[p], pod_rel[i]);
            ptrs[i] = bufs[i];
        }
        for (int g = 0; g < 3; g++) {
            for (int c = 0; c < C_COUNT; c++) {
                int k = P_GROUP0 + g * C_COUNT + c;
                snprintf(bufs[k], sizeof(bufs[k]), "%s%s%s", pod_spec_prefix[p], groups[g],
                         cont_rel[c]);
                ptrs[k] = bufs[k];
            }
        }
        walkers[p] = field_walker_create(ptrs, NPTR); /* lives as long as the process */
    }
}

int pss_evaluate(const struct kt_batch *b, const struct kt_event *ev, struct kt_value out[2])
{
    struct kt_arena *a = (struct kt_arena *)&b->arena;
    struct kt_str body = kt_str_eq(ev->f[KT_F_VERB], "patch", 5) ? ev->resp_obj : ev->req_obj;
    memset(out, 0, 2 * sizeof(*out));
    if (body.ptr == NULL) {
        return 0;
    }
    /* which pod spec: a pod's, a cronjob's job template's, or a workload template's */
    struct kt_value v[NPTR];
    struct kt_str res = ev->f[KT_F_RESOURCE];
    int p = kt_str_eq(res, "pods", 4) ? 0 : kt_str_eq(res, "cronjobs", 8) ? 2 : 1;
    pthread_once(&walkers_once, walkers_init);
    if (walkers[p] == NULL) {
        return KT_ENOMEM;
    }
    int rc = field_walker_run(walkers[p], a, body.ptr, body.len, v);
    if (rc != 0) {
        return rc;
    }
    if (v[P_GROUP0 + C_NAME].kind == KT_V_NONE) {
        return 0; /* no containers: not a pod spec, the fields are missing */
    }
    struct found f = {kt_arena_alloc(a, 32 * sizeof(struct kt_str)), 0};
    if (f.v == NULL) {
        return KT_ENOMEM;
    }
    /* baseline */
    if (any_is(&v[P_HOST_NET], "true") || any_is(&v[P_HOST_PID], "true") ||
        any_is(&v[P_HOST_IPC], "true")) {
        add(&f, "hostNamespaces");
    }
    if (any_outside(&v[P_HOSTPATH], none)) {
        add(&f, "hostPathVolumes");
    }
    if (any_is(&v[P_SECCOMP], "Unconfined")) {
        add(&f, "seccompProfile_baseline");
    }
    if (any_outside(&v[P_SELINUX_TYPE], selinux_types) || v[P_SELINUX_USER].kind != KT_V_NONE ||
        v[P_SELINUX_ROLE].kind != KT_V_NONE) {
        add(&f, "seLinuxOptions");
    }
    if (any_outside(&v[P_APPARMOR], apparmor_ok)) {
        add(&f, "appArmorProfile");
    }
    if (any_outside(&v[P_SYSCTLS], safe_sysctls)) {
        add(&f, "sysctls");
    }
    if (any_is(&v[P_WIN_HOSTPROCESS], "true")) {
        add(&f, "windowsHostProcess");
    }
    for (int g = 0; g < 3; g++) {
        const struct kt_value *c = &v[P_GROUP0 + g * C_COUNT];
        if (any_is(&c[C_PRIVILEGED], "true")) {
            add(&f, "privileged");
        }
        if (any_outside(&c[C_ADD_CAPS], allowed_caps_baseline)) {
            add(&f, "capabilities_baseline");
        }
        for (uint32_t i = 0; c[C_HOST_PORTS].kind == KT_V_LIST && i < c[C_HOST_PORTS].n; i++) {
            if (c[C_HOST_PORTS].v[i].ptr != NULL && !is(c[C_HOST_PORTS].v[i], "0")) {
                add(&f, "hostPorts");
            }
        }
        static const char *const proc_default[] = {"Default", NULL};
        if (any_outside(&c[C_PROC_MOUNT], proc_default)) {
            add(&f, "procMount");
        }
        if (any_is(&c[C_SECCOMP], "Unconfined")) {
            add(&f, "seccompProfile_baseline");
        }
        if (any_outside(&c[C_SELINUX_TYPE], selinux_types) ||
            any_outside(&c[C_SELINUX_USER], none) || any_outside(&c[C_SELINUX_ROLE], none)) {
            add(&f, "seLinuxOptions");
        }
        if (any_outside(&c[C_APPARMOR], apparmor_ok)) {
            add(&f, "appArmorProfile");
        }
        if (any_is(&c[C_WIN_HOSTPROCESS], "true")) {
            add(&f, "windowsHostProcess");
        }
    }
    out[0] = (struct kt_value){.kind = KT_V_LIST, .v = f.v, .n = f.n};
    {
        /* restricted: baseline's checks, then its own */
        struct kt_str *copy = kt_arena_alloc(a, 32 * sizeof(struct kt_str));
        if (copy == NULL) {
            return KT_ENOMEM;
        }
        memcpy(copy, f.v, f.n * sizeof(*copy));
        f.v = copy;
        for (uint32_t i = 0; v[P_VOLUMES].kind == KT_V_LIST && i < v[P_VOLUMES].n; i++) {
            if (v[P_VOLUMES].v[i].ptr != NULL && !volume_allowed(v[P_VOLUMES].v[i])) {
                add(&f, "restrictedVolumes");
            }
        }
        int pod_non_root = any_is(&v[P_RUN_AS_NON_ROOT], "true");
        int pod_seccomp_ok = v[P_SECCOMP].kind == KT_V_STR && in_set(v[P_SECCOMP].s, seccomp_ok);
        if (any_is(&v[P_RUN_AS_NON_ROOT], "false")) {
            add(&f, "runAsNonRoot");
        }
        if (any_is(&v[P_RUN_AS_USER], "0")) {
            add(&f, "runAsUser");
        }
        for (int g = 0; g < 3; g++) {
            const struct kt_value *c = &v[P_GROUP0 + g * C_COUNT];
            uint32_t n = count(&c[C_NAME]);
            for (uint32_t i = 0; i < n; i++) {
                if (!is(at(&c[C_ESCALATION], i), "false")) {
                    add(&f, "allowPrivilegeEscalation");
                }
                struct kt_str nr = at(&c[C_RUN_AS_NON_ROOT], i);
                if (is(nr, "false") || (!pod_non_root && !is(nr, "true"))) {
                    add(&f, "runAsNonRoot");
                }
                struct kt_str sc = at(&c[C_SECCOMP], i);
                if ((sc.ptr != NULL && !in_set(sc, seccomp_ok)) ||
                    (sc.ptr == NULL && !pod_seccomp_ok)) {
                    add(&f, "seccompProfile_restricted");
                }
            }
            if (any_is(&c[C_RUN_AS_USER], "0")) {
                add(&f, "runAsUser");
            }
            /* capabilities: drop ALL in every container, add nothing but NET_BIND_SERVICE */
            if (any_outside(&c[C_ADD_CAPS], only_net_bind)) {
                add(&f, "capabilities_restricted");
            }
        }
        /* drop ALL: count containers whose drop list holds ALL against all containers */
        for (int g = 0; g < 3; g++) {
            const struct kt_value *c = &v[P_GROUP0 + g * C_COUNT];
            uint32_t n = count(&c[C_NAME]);
            uint32_t all = 0;
            for (uint32_t i = 0; c[C_DROP_CAPS].kind == KT_V_LIST && i < c[C_DROP_CAPS].n; i++) {
                all += is(c[C_DROP_CAPS].v[i], "ALL");
            }
            if (all < n) {
                add(&f, "capabilities_restricted");
            }
        }
    }
    out[1] = (struct kt_value){.kind = KT_V_LIST, .v = f.v, .n = f.n};
    return 0;
}
