/*
 * convert.c: GKE LogEntries and AKSAudit rows rewritten as audit Event JSON (see convert.h).
 *
 * A record is checked first by yajl's streaming parser with counting callbacks (strict JSON,
 * no comments, nesting bounded by MAX_DEPTH so that neither the tree's recursive free nor
 * yajl_gen's own depth limit can be reached), then parsed into a yajl_tree from a
 * NUL-terminated copy, and the Event is written with yajl_gen, which escapes strings; numbers
 * are written as the text the record held. Conversions are rare next to bare events, so the
 * tree's cost is fine here. The Event is generated into yajl_gen's buffer and appended to
 * out->json only once complete, so a failed conversion leaves out->json as it was.
 */
#include "convert.h"

#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

enum {
    MAX_DEPTH = 120, /* nesting accepted in one JSON text: the Event nests at most one level
                        deeper than any text it is made of, under yajl_gen's 128 */
    MAX_PARTS = 8,   /* '/'-separated parts of a GKE resourceName looked at */
};

/* The Event being written: the generator and its first failure. */
struct gen {
    yajl_gen g; /* the Event's generator */
    int failed; /* a yajl_gen call failed (depth, allocation): the Event is dropped */
};

/* ---- parsing ---------------------------------------------------------------------------- */

/* Depth of the validation pass: yajl callbacks count open maps and arrays. */
struct depth {
    int cur;     /* containers open now */
    int too_big; /* MAX_DEPTH was exceeded: the parse was cancelled */
};

static int depth_open(void *ctx)
{
    struct depth *d = ctx;

    if (++d->cur > MAX_DEPTH) {
        d->too_big = 1;
        return 0;
    }
    return 1;
}

static int depth_open_map(void *ctx)
{
    return depth_open(ctx);
}

static int depth_close(void *ctx)
{
    struct depth *d = ctx;

    d->cur--;
    return 1;
}

/*
 * Parse the JSON text p[0, n) (borrowed) into a tree returned in *root (owned: yajl_tree_free).
 * 0; KT_EPARSE with a static reason in *why (not JSON, nested too deeply); KT_ENOMEM.
 */
static int parse_tree(const char *p, size_t n, yajl_val *root, const char **why)
{
    static const yajl_callbacks cb = {
        .yajl_start_map = depth_open_map,
        .yajl_end_map = depth_close,
        .yajl_start_array = depth_open,
        .yajl_end_array = depth_close,
    };
    struct depth d = {0, 0};
    yajl_handle h = NULL;
    char *copy = NULL;
    char err[16];
    int rc = 0;

    *root = NULL;
    h = yajl_alloc(&cb, NULL, &d);
    if (h == NULL) {
        rc = KT_ENOMEM;
        goto out;
    }
    if (yajl_parse(h, (const unsigned char *)p, n) != yajl_status_ok ||
        yajl_complete_parse(h) != yajl_status_ok) {
        *why = d.too_big ? "JSON nested too deeply" : "not JSON";
        rc = KT_EPARSE;
        goto out;
    }
    copy = malloc(n + 1);
    if (copy == NULL) {
        rc = KT_ENOMEM;
        goto out;
    }
    memcpy(copy, p, n);
    copy[n] = '\0';
    *root = yajl_tree_parse(copy, err, sizeof(err));
    if (*root == NULL) {
        /* valid JSON the tree refused: only an allocation failure is left */
        rc = KT_ENOMEM;
        goto out;
    }
out:
    free(copy);
    if (h != NULL) {
        yajl_free(h);
    }
    return rc;
}

/* The record p[0, n) parsed as a JSON object (*root owned, as parse_tree); not_object is the
 * reason when it parses but is no object. */
static int parse_object(const char *p, size_t n, yajl_val *root, const char **why,
                        const char *not_object)
{
    int rc = parse_tree(p, n, root, why);
    if (rc == 0 && !YAJL_IS_OBJECT(*root)) {
        *why = not_object;
        rc = KT_EPARSE;
    }
    return rc;
}

/* The member key of object v (borrowed), or NULL when v is no object or has no such key. The
 * last of duplicate keys wins, as in Go's decoder that wrote or reads the record. */
static yajl_val get(yajl_val v, const char *key)
{
    yajl_val found = NULL;

    if (!YAJL_IS_OBJECT(v)) {
        return NULL;
    }
    for (size_t i = 0; i < v->u.object.len; i++) {
        if (strcmp(v->u.object.keys[i], key) == 0) {
            found = v->u.object.values[i];
        }
    }
    return found;
}

/* The string member key of v, or NULL when absent or not a string. */
static const char *get_str(yajl_val v, const char *key)
{
    yajl_val s = get(v, key);

    return YAJL_IS_STRING(s) ? s->u.string : NULL;
}

/* The non-empty string member key of v, or NULL. */
static const char *get_nonempty(yajl_val v, const char *key)
{
    const char *s = get_str(v, key);

    return s != NULL && s[0] != '\0' ? s : NULL;
}

/* Whether member key of v is the JSON true. */
static int get_true(yajl_val v, const char *key)
{
    return YAJL_IS_TRUE(get(v, key));
}

/* ---- writing ---------------------------------------------------------------------------- */

static void gen_check(struct gen *w, yajl_gen_status st)
{
    if (st != yajl_gen_status_ok) {
        w->failed = 1;
    }
}

static void gen_str(struct gen *w, const char *s)
{
    gen_check(w, yajl_gen_string(w->g, (const unsigned char *)s, strlen(s)));
}

static void gen_strn(struct gen *w, const char *s, size_t n)
{
    gen_check(w, yajl_gen_string(w->g, (const unsigned char *)s, n));
}

/* Write "key": "s" when s is not NULL. */
static void gen_kv(struct gen *w, const char *key, const char *s)
{
    if (s != NULL) {
        gen_str(w, key);
        gen_str(w, s);
    }
}

/*
 * Write the tree value v (borrowed) as it is, numbers as their text; at its top level an
 * object loses its "@type" key when drop_type is set (the protobuf type of a GKE body).
 * Recursion is bounded by MAX_DEPTH, checked when the text was parsed.
 */
static void gen_value(struct gen *w, yajl_val v, int drop_type)
{
    if (v == NULL || YAJL_IS_NULL(v)) {
        gen_check(w, yajl_gen_null(w->g));
    } else if (YAJL_IS_STRING(v)) {
        gen_str(w, v->u.string);
    } else if (YAJL_IS_NUMBER(v)) {
        gen_check(w, yajl_gen_number(w->g, v->u.number.r, strlen(v->u.number.r)));
    } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        gen_check(w, yajl_gen_bool(w->g, YAJL_IS_TRUE(v)));
    } else if (YAJL_IS_ARRAY(v)) {
        gen_check(w, yajl_gen_array_open(w->g));
        for (size_t i = 0; i < v->u.array.len; i++) {
            gen_value(w, v->u.array.values[i], 0);
        }
        gen_check(w, yajl_gen_array_close(w->g));
    } else {
        gen_check(w, yajl_gen_map_open(w->g));
        for (size_t i = 0; i < v->u.object.len; i++) {
            if (drop_type && strcmp(v->u.object.keys[i], "@type") == 0) {
                continue;
            }
            gen_str(w, v->u.object.keys[i]);
            gen_value(w, v->u.object.values[i], 0);
        }
        gen_check(w, yajl_gen_map_close(w->g));
    }
}

/* Write "annotations": the string members of object v (an Event's annotations are strings
 * only: members of other types are left out). Nothing when v is no object or has none. */
static void gen_annotations(struct gen *w, yajl_val v)
{
    size_t nstr = 0;

    if (!YAJL_IS_OBJECT(v)) {
        return;
    }
    for (size_t i = 0; i < v->u.object.len; i++) {
        nstr += YAJL_IS_STRING(v->u.object.values[i]);
    }
    if (nstr == 0) {
        return;
    }
    gen_str(w, "annotations");
    gen_check(w, yajl_gen_map_open(w->g));
    for (size_t i = 0; i < v->u.object.len; i++) {
        if (YAJL_IS_STRING(v->u.object.values[i])) {
            gen_str(w, v->u.object.keys[i]);
            gen_str(w, v->u.object.values[i]->u.string);
        }
    }
    gen_check(w, yajl_gen_map_close(w->g));
}

/* Write the Event's opening: its map and kind, apiVersion. */
static void gen_event_open(struct gen *w)
{
    gen_check(w, yajl_gen_map_open(w->g));
    gen_kv(w, "kind", "Event");
    gen_kv(w, "apiVersion", "audit.k8s.io/v1");
}

/*
 * Close the Event and append its text to out->json. 0; KT_EPARSE with a static reason in *why
 * when a yajl_gen call failed; KT_ENOMEM.
 */
static int gen_finish(struct gen *w, struct kt_convert_out *out, const char **why)
{
    const unsigned char *buf = NULL;
    size_t len = 0;

    gen_check(w, yajl_gen_map_close(w->g));
    if (w->failed || yajl_gen_get_buf(w->g, &buf, &len) != yajl_gen_status_ok) {
        *why = "the Event could not be written (nested too deeply)";
        return KT_EPARSE;
    }
    return kt_buf_append(&out->json, buf, len);
}

/* Copy s into the cluster name, cut at a UTF-8 character boundary when too long, lower-cased
 * (ASCII) when lower is set. */
static void set_cluster(struct kt_convert_out *out, const char *s, size_t n, int lower)
{
    size_t max = sizeof(out->cluster) - 1;

    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
            n--; /* s[n] continues a character: cut before the character starts */
        }
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        out->cluster[i] = lower && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    out->cluster[n] = '\0';
}

static void out_reset(struct kt_convert_out *out)
{
    out->cluster[0] = '\0';
    out->truncated = 0;
    out->skip = NULL;
}

/* ---- GKE -------------------------------------------------------------------------------- */

/* A resourceName's parts, as slices of it. Absent parts have ptr NULL. */
struct gke_ref {
    struct kt_str group;       /* "core" for the core group */
    struct kt_str version;     /* v1, ... */
    struct kt_str namespace;   /* namespace of a namespaced object */
    struct kt_str resource;    /* pods, namespaces, ... */
    struct kt_str name;        /* the object's name; absent for lists */
    struct kt_str subresource; /* exec, status, ... */
    int ok;                    /* the resourceName had one of the shapes below */
};

static int str_is(struct kt_str s, const char *lit)
{
    return kt_str_eq(s, lit, strlen(lit));
}

/*
 * Split rn = GROUP/VERSION[/namespaces/NS]/RESOURCE[/NAME[/SUBRESOURCE]] into r (slices of rn,
 * borrowed). core/v1/namespaces/X is the Namespace X; core/v1/namespaces/X/status and
 * .../finalize are its subresources, where any other third part is a resource in X. Any other
 * shape (too few or too many parts, an empty part) leaves r->ok 0.
 */
static void gke_split(const char *rn, struct gke_ref *r)
{
    struct kt_str part[MAX_PARTS + 1];
    size_t n = 0;
    const char *s = rn;

    memset(r, 0, sizeof(*r));
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t len = slash != NULL ? (size_t)(slash - s) : strlen(s);
        if (len == 0 || n > MAX_PARTS) {
            return;
        }
        part[n++] = (struct kt_str){s, len};
        if (slash == NULL) {
            break;
        }
        s = slash + 1;
    }
    if (n < 3) {
        return;
    }
    r->group = part[0];
    r->version = part[1];
    struct kt_str *rest = part + 2;
    size_t m = n - 2;
    if (str_is(rest[0], "namespaces") && m >= 2) {
        if (m == 2) {
            r->resource = rest[0];
            r->name = rest[1];
        } else if (m == 3 && str_is(r->group, "core") &&
                   (str_is(rest[2], "status") || str_is(rest[2], "finalize"))) {
            r->resource = rest[0];
            r->name = rest[1];
            r->subresource = rest[2];
        } else if (m <= 5) {
            r->namespace = rest[1];
            r->resource = rest[2];
            r->name = m >= 4 ? rest[3] : KT_STR_NULL;
            r->subresource = m == 5 ? rest[4] : KT_STR_NULL;
        } else {
            return;
        }
    } else if (m <= 3) {
        r->resource = rest[0];
        r->name = m >= 2 ? rest[1] : KT_STR_NULL;
        r->subresource = m == 3 ? rest[2] : KT_STR_NULL;
    } else {
        return;
    }
    r->ok = 1;
}

/*
 * When r names an object but no subresource, take the subresource from methodName mn:
 * io.k8s.core.v1.pods.exec.create has "pods" before "exec" before the verb.
 */
static void gke_method_subresource(const char *mn, struct gke_ref *r)
{
    const char *end = strrchr(mn, '.');
    const char *sub = NULL;
    const char *res = NULL;

    if (!r->ok || r->name.ptr == NULL || r->subresource.ptr != NULL || end == NULL ||
        end[1] == '\0') {
        return;
    }
    for (const char *q = end; q > mn;) { /* find the two parts before the verb */
        q--;
        if (*q == '.') {
            if (sub == NULL) {
                sub = q + 1;
            } else {
                res = q + 1;
                break;
            }
        }
    }
    if (sub == NULL || res == NULL) {
        return;
    }
    struct kt_str s = {sub, (size_t)(end - sub)};
    struct kt_str rs = {res, (size_t)(sub - 1 - res)};
    if (s.len > 0 && rs.len == r->resource.len && memcmp(rs.ptr, r->resource.ptr, rs.len) == 0) {
        r->subresource = s;
    }
}

/* Write "requestURI" rebuilt from r: /api/v1/... for core, /apis/GROUP/VERSION/... else. A
 * create is posted to its collection: create names no object unless on a subresource. */
static int gke_gen_uri(struct gen *w, const struct gke_ref *r, int create)
{
    struct kt_buf u = {0};
    const struct kt_str tail[] = {r->resource, r->name, r->subresource};
    int rc = 0;

    rc = kt_buf_puts(&u, str_is(r->group, "core") ? "/api" : "/apis");
    if (rc == 0 && !str_is(r->group, "core")) {
        rc = kt_buf_puts(&u, "/");
        rc = rc != 0 ? rc : kt_buf_append(&u, r->group.ptr, r->group.len);
    }
    if (rc == 0) {
        rc = kt_buf_puts(&u, "/");
        rc = rc != 0 ? rc : kt_buf_append(&u, r->version.ptr, r->version.len);
    }
    if (rc == 0 && r->namespace.ptr != NULL) {
        rc = kt_buf_puts(&u, "/namespaces/");
        rc = rc != 0 ? rc : kt_buf_append(&u, r->namespace.ptr, r->namespace.len);
    }
    for (size_t i = 0; rc == 0 && i < sizeof(tail) / sizeof(tail[0]); i++) {
        if (i == 1 && create && r->subresource.ptr == NULL) {
            continue;
        }
        if (tail[i].ptr != NULL) {
            rc = kt_buf_puts(&u, "/");
            rc = rc != 0 ? rc : kt_buf_append(&u, tail[i].ptr, tail[i].len);
        }
    }
    if (rc == 0) {
        gen_str(w, "requestURI");
        gen_strn(w, u.p, u.len);
    }
    kt_buf_free(&u);
    return rc;
}

/* Write "objectRef" from r; apiGroup is left out for the core group. */
static void gke_gen_ref(struct gen *w, const struct gke_ref *r)
{
    gen_str(w, "objectRef");
    gen_check(w, yajl_gen_map_open(w->g));
    gen_str(w, "resource");
    gen_strn(w, r->resource.ptr, r->resource.len);
    if (r->namespace.ptr != NULL) {
        gen_str(w, "namespace");
        gen_strn(w, r->namespace.ptr, r->namespace.len);
    }
    if (r->name.ptr != NULL) {
        gen_str(w, "name");
        gen_strn(w, r->name.ptr, r->name.len);
    }
    if (!str_is(r->group, "core")) {
        gen_str(w, "apiGroup");
        gen_strn(w, r->group.ptr, r->group.len);
    }
    gen_str(w, "apiVersion");
    gen_strn(w, r->version.ptr, r->version.len);
    if (r->subresource.ptr != NULL) {
        gen_str(w, "subresource");
        gen_strn(w, r->subresource.ptr, r->subresource.len);
    }
    gen_check(w, yajl_gen_map_close(w->g));
}

/* HTTP status of a google.rpc.Code; 0 is OK (201 for a create). Unknown codes are 500: a
 * code we cannot read must never turn a refusal into a success. */
static long long gke_http_code(long long rpc, int create)
{
    switch (rpc) {
    case 0:
        return create ? 201 : 200;
    case 3:
        return 400; /* INVALID_ARGUMENT */
    case 4:
        return 504; /* DEADLINE_EXCEEDED */
    case 5:
        return 404; /* NOT_FOUND */
    case 6:
        return 409; /* ALREADY_EXISTS */
    case 7:
        return 403; /* PERMISSION_DENIED */
    case 8:
        return 429; /* RESOURCE_EXHAUSTED */
    case 10:
        return 409; /* ABORTED */
    case 13:
        return 500; /* INTERNAL */
    case 14:
        return 503; /* UNAVAILABLE */
    case 16:
        return 401; /* UNAUTHENTICATED */
    default:
        return 500;
    }
}

/* Whether v is a Kubernetes Status object: kind "Status", or an @type ending in ".Status". */
static int is_status(yajl_val v)
{
    const char *kind = get_str(v, "kind");
    const char *type = get_str(v, "@type");
    size_t tl = type != NULL ? strlen(type) : 0;

    if (kind != NULL && strcmp(kind, "Status") == 0) {
        return 1;
    }
    return tl >= 7 && strcmp(type + tl - 7, ".Status") == 0;
}

/*
 * Write "responseStatus" of the AuditLog pp: the code of a Status response, else the mapped
 * status.code; message from status.message (else the Status response's), reason from the
 * Status response, status "Failure" for codes of 400 and up.
 */
static void gke_gen_status(struct gen *w, yajl_val pp, int create)
{
    yajl_val resp = get(pp, "response");
    yajl_val st = get(pp, "status");
    yajl_val rpc = get(st, "code");
    yajl_val rcode = NULL;
    long long code = 0;
    const char *msg = get_nonempty(st, "message");
    const char *reason = NULL;

    if (YAJL_IS_OBJECT(resp) && is_status(resp)) {
        rcode = get(resp, "code");
        reason = get_nonempty(resp, "reason");
        if (msg == NULL) {
            msg = get_nonempty(resp, "message");
        }
    }
    if (YAJL_IS_INTEGER(rcode) && rcode->u.number.i >= 100 && rcode->u.number.i <= 599) {
        code = rcode->u.number.i;
    } else if (rpc == NULL || YAJL_IS_NULL(rpc)) {
        code = gke_http_code(0, create);
    } else if (YAJL_IS_INTEGER(rpc)) {
        code = gke_http_code(rpc->u.number.i, create);
    } else {
        code = 500; /* a code of another type: unreadable, so not a success */
    }
    gen_str(w, "responseStatus");
    gen_check(w, yajl_gen_map_open(w->g));
    gen_str(w, "code");
    gen_check(w, yajl_gen_integer(w->g, code));
    if (code >= 400) {
        gen_kv(w, "status", "Failure");
    }
    gen_kv(w, "reason", reason);
    gen_kv(w, "message", msg);
    gen_check(w, yajl_gen_map_close(w->g));
}

/* Write the Event of the LogEntry root whose AuditLog is pp (both borrowed). 0 or KT_ENOMEM;
 * generator failures are left in w->failed. */
static int gke_gen_event(struct gen *w, yajl_val root, yajl_val pp, const char *method)
{
    yajl_val op = get(root, "operation");
    yajl_val meta = get(pp, "requestMetadata");
    yajl_val req = get(pp, "request");
    yajl_val resp = get(pp, "response");
    const char *verb = strrchr(method, '.');
    const char *rn = get_str(pp, "resourceName");
    const char *id = get_nonempty(op, "id");
    const char *ts = get_str(root, "timestamp");
    const char *ip = get_nonempty(meta, "callerIp");
    const char *user = get_str(get(pp, "authenticationInfo"), "principalEmail");
    struct gke_ref ref = {0};
    int rc = 0;

    verb = verb != NULL ? verb + 1 : method;
    req = YAJL_IS_NULL(req) ? NULL : req;
    resp = YAJL_IS_NULL(resp) ? NULL : resp;
    if (id == NULL) {
        id = get_nonempty(root, "insertId");
    }
    gen_event_open(w);
    gen_kv(w, "level", resp != NULL ? "RequestResponse" : req != NULL ? "Request" : "Metadata");
    gen_kv(w, "auditID", id);
    gen_kv(w, "stage",
           get_true(op, "first") && !get_true(op, "last") ? "ResponseStarted" : "ResponseComplete");
    if (rn != NULL && rn[0] == '/') {
        gen_kv(w, "requestURI", rn); /* a non-resource URL (/healthz, /version...) */
    } else if (rn != NULL) {
        gke_split(rn, &ref);
        gke_method_subresource(method, &ref);
        if (ref.ok) {
            rc = gke_gen_uri(w, &ref, verb != NULL && strcmp(verb, "create") == 0);
        }
    }
    gen_kv(w, "verb", verb);
    if (user != NULL) {
        gen_str(w, "user");
        gen_check(w, yajl_gen_map_open(w->g));
        gen_kv(w, "username", user);
        gen_check(w, yajl_gen_map_close(w->g));
    }
    if (ip != NULL) {
        gen_str(w, "sourceIPs");
        gen_check(w, yajl_gen_array_open(w->g));
        gen_str(w, ip);
        gen_check(w, yajl_gen_array_close(w->g));
    }
    gen_kv(w, "userAgent", get_str(meta, "callerSuppliedUserAgent"));
    if (ref.ok) {
        gke_gen_ref(w, &ref);
    }
    gke_gen_status(w, pp, strcmp(verb, "create") == 0);
    if (req != NULL) {
        gen_str(w, "requestObject");
        gen_value(w, req, 1);
    }
    if (resp != NULL) {
        gen_str(w, "responseObject");
        gen_value(w, resp, 1);
    }
    gen_kv(w, "requestReceivedTimestamp", ts);
    gen_kv(w, "stageTimestamp", ts);
    gen_annotations(w, get(root, "labels"));
    return rc;
}

int kt_convert_gke(const char *p, size_t n, struct kt_convert_out *out, const char **why)
{
    static const char *skip_other = "GKE log entry of another resource type or service";
    const char *dummy = NULL;
    struct gen w = {NULL, 0};
    yajl_val root = NULL;
    yajl_val res = NULL;
    yajl_val pp = NULL;
    const char *rtype = NULL;
    const char *svc = NULL;
    const char *method = NULL;
    int rc = 0;

    why = why != NULL ? why : &dummy;
    out_reset(out);
    rc = parse_object(p, n, &root, why, "GKE log entry is not a JSON object");
    if (rc != 0) {
        goto out;
    }
    res = get(root, "resource");
    rtype = get_str(res, "type");
    if (rtype != NULL && strcmp(rtype, "k8s_cluster") != 0) {
        out->skip = skip_other;
        goto out;
    }
    pp = get(root, "protoPayload");
    if (!YAJL_IS_OBJECT(pp)) {
        *why = "GKE log entry without a protoPayload object";
        rc = KT_EPARSE;
        goto out;
    }
    svc = get_str(pp, "serviceName");
    if (rtype == NULL || svc == NULL || strcmp(svc, "k8s.io") != 0) {
        out->skip = skip_other;
        goto out;
    }
    method = get_nonempty(pp, "methodName");
    if (method == NULL) {
        *why = "GKE log entry without a protoPayload.methodName";
        rc = KT_EPARSE;
        goto out;
    }
    w.g = yajl_gen_alloc(NULL);
    if (w.g == NULL) {
        rc = KT_ENOMEM;
        goto out;
    }
    rc = gke_gen_event(&w, root, pp, method);
    if (rc == 0) {
        rc = gen_finish(&w, out, why);
    }
    if (rc == 0) {
        yajl_val labels = get(root, "labels");
        const char *trunc = get_str(labels, "audit.k8s.io/truncated");
        const char *cluster = get_str(get(res, "labels"), "cluster_name");
        out->truncated = trunc != NULL && strcmp(trunc, "true") == 0;
        if (cluster != NULL) {
            set_cluster(out, cluster, strlen(cluster), 0);
        }
    }
out:
    if (w.g != NULL) {
        yajl_gen_free(w.g);
    }
    yajl_tree_free(root);
    return rc;
}

/* ---- AKS -------------------------------------------------------------------------------- */

/* What a dynamic column must hold to be kept. */
enum aks_want {
    WANT_OBJECT, /* a non-empty object (User, ObjectRef...: {} stands for no value) */
    WANT_ARRAY,  /* an array (SourceIps) */
    WANT_ANY,    /* any value but null (RequestObject, ResponseObject) */
};

/* Azure's text for a body it left out. */
static const char AKS_TOO_BIG[] = "skipped-too-big-size-object";

/*
 * The value of dynamic column col of row (borrowed): itself, or the JSON its string holds
 * (parsed into *owned, which the caller frees). NULL when absent, not JSON, null or not what
 * want asks for; the text skipped-too-big-size-object sets out->truncated and gives NULL.
 * 0 or KT_ENOMEM.
 */
static int aks_dynamic(yajl_val row, const char *col, enum aks_want want, yajl_val *owned,
                       yajl_val *v, struct kt_convert_out *out)
{
    yajl_val c = get(row, col);
    const char *why = NULL;
    int rc = 0;

    *owned = NULL;
    *v = NULL;
    if (YAJL_IS_STRING(c)) {
        const char *s = c->u.string;
        if (want == WANT_ANY && strcmp(s, AKS_TOO_BIG) == 0) {
            out->truncated = 1;
            return 0;
        }
        if (s[0] == '\0') {
            return 0;
        }
        rc = parse_tree(s, strlen(s), owned, &why);
        if (rc != 0) {
            return rc == KT_EPARSE ? 0 : rc; /* not JSON: the column is as if absent */
        }
        c = *owned;
    }
    if (c == NULL || YAJL_IS_NULL(c)) {
        return 0;
    }
    if ((want == WANT_OBJECT && (!YAJL_IS_OBJECT(c) || c->u.object.len == 0)) ||
        (want == WANT_ARRAY && !YAJL_IS_ARRAY(c))) {
        return 0;
    }
    *v = c;
    return 0;
}

/* The dynamic columns of a row, with the Event key each becomes, in the Event's key order
 * (userAgent goes before objectRef, the timestamps before annotations). */
static const struct {
    const char *col;    /* the AKSAudit column */
    const char *key;    /* the Event's key */
    enum aks_want want; /* what the column must hold */
} aks_dyn[] = {
    {"User", "user", WANT_OBJECT},
    {"ImpersonatedUser", "impersonatedUser", WANT_OBJECT},
    {"SourceIps", "sourceIPs", WANT_ARRAY},
    {"ObjectRef", "objectRef", WANT_OBJECT},
    {"ResponseStatus", "responseStatus", WANT_OBJECT},
    {"RequestObject", "requestObject", WANT_ANY},
    {"ResponseObject", "responseObject", WANT_ANY},
    {"Annotations", "annotations", WANT_OBJECT},
};

enum { AKS_NDYN = sizeof(aks_dyn) / sizeof(aks_dyn[0]) };

int kt_convert_aks_row(const char *p, size_t n, struct kt_convert_out *out, const char **why)
{
    const char *dummy = NULL;
    struct gen w = {NULL, 0};
    yajl_val root = NULL;
    yajl_val owned[AKS_NDYN] = {NULL};
    yajl_val val[AKS_NDYN] = {NULL};
    const char *id = NULL;
    const char *stage_ts = NULL;
    int rc = 0;

    why = why != NULL ? why : &dummy;
    out_reset(out);
    rc = parse_object(p, n, &root, why, "AKSAudit row is not a JSON object");
    if (rc != 0) {
        goto out;
    }
    id = get_nonempty(root, "AuditId");
    if (id == NULL) {
        *why = "AKSAudit row without an AuditId";
        rc = KT_EPARSE;
        goto out;
    }
    for (size_t i = 0; i < AKS_NDYN; i++) {
        rc = aks_dynamic(root, aks_dyn[i].col, aks_dyn[i].want, &owned[i], &val[i], out);
        if (rc != 0) {
            goto out;
        }
    }
    w.g = yajl_gen_alloc(NULL);
    if (w.g == NULL) {
        rc = KT_ENOMEM;
        goto out;
    }
    stage_ts = get_nonempty(root, "StageReceivedTime");
    gen_event_open(&w);
    gen_kv(&w, "level", get_nonempty(root, "Level"));
    gen_kv(&w, "auditID", id);
    gen_kv(&w, "stage", get_nonempty(root, "Stage"));
    gen_kv(&w, "requestURI", get_nonempty(root, "RequestUri"));
    gen_kv(&w, "verb", get_nonempty(root, "Verb"));
    for (size_t i = 0; i < AKS_NDYN; i++) {
        if (strcmp(aks_dyn[i].col, "ObjectRef") == 0) {
            gen_kv(&w, "userAgent", get_nonempty(root, "UserAgent"));
        } else if (strcmp(aks_dyn[i].col, "Annotations") == 0) {
            gen_kv(&w, "requestReceivedTimestamp", get_nonempty(root, "RequestReceivedTime"));
            gen_kv(&w, "stageTimestamp",
                   stage_ts != NULL ? stage_ts : get_nonempty(root, "TimeGenerated"));
            gen_annotations(&w, val[i]);
            continue;
        }
        if (val[i] != NULL) {
            gen_str(&w, aks_dyn[i].key);
            gen_value(&w, val[i], 0);
        }
    }
    rc = gen_finish(&w, out, why);
    if (rc == 0) {
        const char *rid = get_nonempty(root, "_ResourceId");
        rid = rid != NULL ? rid : get_nonempty(root, "ResourceId");
        if (rid != NULL) {
            size_t len = strlen(rid);
            while (len > 0 && rid[len - 1] == '/') {
                len--;
            }
            size_t start = len;
            while (start > 0 && rid[start - 1] != '/') {
                start--;
            }
            set_cluster(out, rid + start, len - start, 1);
        }
    }
out:
    if (w.g != NULL) {
        yajl_gen_free(w.g);
    }
    for (size_t i = 0; i < AKS_NDYN; i++) {
        yajl_tree_free(owned[i]);
    }
    yajl_tree_free(root);
    return rc;
}
