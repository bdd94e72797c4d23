/*
 * decode.c: one audit event from its JSON text, with yajl's streaming callbacks.
 *
 * This is the hot path of the pipeline: every framed record goes through it once. The
 * callbacks run a small state machine instead of building a tree. A stack of contexts
 * (top level, user, user.extra, impersonatedUser, objectRef, responseStatus, annotations
 * and the three arrays we read: user.groups, sourceIPs, an extra value) says where we are;
 * a map key sets a slot (what the next value means); any container that is not one of
 * those is skipped by counting its depth, so bodies and unknown fields cost yajl's
 * lexing and one branch per token. requestObject and responseObject are not decoded at
 * all: their byte spans are taken from yajl_get_bytes_consumed() at their first and last
 * token, and the rule engine parses them later only if a loaded rule needs them.
 *
 * Strings are slices into the input when yajl hands us a pointer inside it (no escapes);
 * otherwise the text was unescaped into yajl's own buffer, valid only during the callback,
 * and it is copied into the batch arena.
 *
 * Memory: yajl 2.1 cannot reset a handle, so each event gets a fresh handle, but through
 * allocator callbacks that bump a region owned by the decoder and rewound per event: in a
 * steady state decoding allocates nothing from the heap. Allocations that do not fit the
 * region (escaped strings of tens of KiB) fall back to malloc and are freed with the handle.
 */
#include "decode.h"
#include "rules_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <yajl/yajl_parse.h>

/* Where the parser stands: the kind of container it is directly inside. */
enum ctx {
    C_TOP,        /* the event object */
    C_USER,       /* user */
    C_EXTRA,      /* user.extra */
    C_EXTRA_VALS, /* one user.extra value (an array of strings) */
    C_IMP,        /* impersonatedUser */
    C_OBJREF,     /* objectRef */
    C_STATUS,     /* responseStatus */
    C_ANNOT,      /* annotations */
    C_GROUPS,     /* user.groups */
    C_SOURCE_IPS, /* sourceIPs */
};

/* What the next value in an object means. Below KT_F_COUNT: a string field of the event. */
enum slot {
    S_NONE = KT_F_COUNT, /* nothing we read: skip it */
    S_KIND,              /* kind */
    S_CODE,              /* responseStatus.code */
    S_USER,              /* user object */
    S_IMP,               /* impersonatedUser object */
    S_OBJREF,            /* objectRef object */
    S_STATUS,            /* responseStatus object */
    S_ANNOT,             /* annotations object */
    S_EXTRA,             /* user.extra object */
    S_GROUPS,            /* user.groups array */
    S_SOURCE_IPS,        /* sourceIPs array */
    S_REQ_OBJ,           /* requestObject: record its span */
    S_RESP_OBJ,          /* responseObject: record its span */
};

/* Deepest context we track: top > user > extra > extra value. Deeper containers are skipped. */
enum { MAX_CTX = 8 };

/* The region yajl allocates from; see ymem_malloc(). */
enum { YMEM_SIZE = 64 * 1024, YMEM_ALIGN = 16 };

struct ymem {
    char *base;  /* region, YMEM_SIZE bytes, 16-aligned (malloc) */
    size_t used; /* bytes handed out since the last rewind */
    char *last;  /* most recent allocation in the region: realloc grows it in place */
};

struct kt_decoder {
    /* per event (set by kt_decode_event) */
    const char *json;       /* input text, borrowed */
    size_t len;             /* its length */
    struct kt_arena *arena; /* where escaped strings, lists and reasons go */
    struct kt_event *ev;    /* output */
    yajl_handle h;          /* the handle parsing this event, for bytes consumed */

    /* parse state */
    int depth;            /* contexts on the stack (0: outside the top-level value) */
    uint8_t ctx[MAX_CTX]; /* enum ctx, by depth - 1 */
    int slot;             /* enum slot or kt_field: meaning of the next object value */
    uint32_t skip;        /* > 0: inside ignored containers, this many levels deep */
    int capture;          /* S_REQ_OBJ or S_RESP_OBJ while skipping a body, else 0 */
    size_t cap_start;     /* offset of that body's first byte */
    int extra_field;      /* field an extra value array fills (its element 0) */
    uint32_t extra_idx;   /* elements seen in that array */
    int done;             /* the top-level object was closed */
    size_t end;           /* offset just past it */
    int err;              /* KT_ENOMEM seen in a callback */
    const char *reason;   /* reject found in a callback (static) */
    struct kt_str kind;   /* kind, if present */

    /* scratch for the list being read (groups, sourceIPs), copied to the arena at its end */
    struct kt_str *list; /* values */
    uint32_t nlist;      /* used */
    uint32_t caplist;    /* allocated */

    struct ymem mem;      /* yajl's memory */
    yajl_alloc_funcs afs; /* allocator callbacks over mem */

    struct field_walker *name_walker; /* /metadata/name, for the names of created objects */
};

/* ---- yajl's allocator: a bump region rewound per event ---- */

/* Block header: the size asked for, so realloc can copy. Keeps payloads 16-aligned. */
struct yhdr {
    size_t size;                   /* bytes requested */
    _Alignas(YMEM_ALIGN) char p[]; /* payload */
};

static int ymem_owns(const struct ymem *m, const void *p)
{
    return (uintptr_t)p - (uintptr_t)m->base < YMEM_SIZE;
}

static void *ymem_malloc(void *ctx, size_t sz)
{
    struct ymem *m = ctx;
    if (sz <= YMEM_SIZE) {
        size_t need = sizeof(struct yhdr) + ((sz + YMEM_ALIGN - 1) & ~(size_t)(YMEM_ALIGN - 1));
        if (need <= YMEM_SIZE - m->used) {
            struct yhdr *hd = (struct yhdr *)(m->base + m->used);
            hd->size = sz;
            m->used += need;
            m->last = hd->p;
            return hd->p;
        }
    }
    return malloc(sz);
}

static void ymem_free(void *ctx, void *p)
{
    struct ymem *m = ctx;
    if (p != NULL && !ymem_owns(m, p)) {
        free(p);
    }
    /* Region blocks are reclaimed all at once by the rewind. */
}

static void *ymem_realloc(void *ctx, void *p, size_t sz)
{
    struct ymem *m = ctx;
    if (p == NULL) {
        return ymem_malloc(ctx, sz);
    }
    if (!ymem_owns(m, p)) {
        return realloc(p, sz);
    }
    struct yhdr *hd = (struct yhdr *)((char *)p - offsetof(struct yhdr, p));
    size_t old = hd->size;
    if (p == m->last) {
        /* The newest block (typically yajl's string buffer): grow or shrink in place. */
        size_t off = (size_t)((char *)p - m->base);
        size_t need = (sz + YMEM_ALIGN - 1) & ~(size_t)(YMEM_ALIGN - 1);
        if (sz <= YMEM_SIZE && need <= YMEM_SIZE - off) {
            hd->size = sz;
            m->used = off + need;
            return p;
        }
    } else if (sz <= old) {
        hd->size = sz;
        return p;
    }
    void *q = ymem_malloc(ctx, sz);
    if (q != NULL) {
        memcpy(q, p, old < sz ? old : sz);
    }
    return q;
}

static void ymem_rewind(struct ymem *m)
{
    m->used = 0;
    m->last = NULL;
}

/* ---- helpers for the callbacks ---- */

static inline struct kt_decoder *dec(void *ctx)
{
    return ctx;
}

/* A string value as a slice: into the input when yajl passed a pointer into it, else (the
 * text had escapes and lives in yajl's buffer until the callback returns) a copy in the
 * arena. 0, or KT_ENOMEM. */
static int take_str(struct kt_decoder *d, const unsigned char *s, size_t len, struct kt_str *out)
{
    if ((uintptr_t)s - (uintptr_t)d->json < d->len) {
        out->ptr = (const char *)s;
        out->len = len;
        return 0;
    }
    char *copy = kt_arena_dup(d->arena, (const char *)s, len);
    if (copy == NULL) {
        d->err = KT_ENOMEM;
        return KT_ENOMEM;
    }
    out->ptr = copy;
    out->len = len;
    return 0;
}

/* Cancel the parse: the top-level value is not an object. */
static int not_an_object(struct kt_decoder *d)
{
    d->reason = "not an audit event: JSON value is not an object";
    return 0;
}

/* An int32 from a JSON number's text ("403"); anything else (fractions, exponents,
 * overflow) leaves *out alone. */
static void parse_code(const unsigned char *s, size_t len, int32_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (len > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == len || len - i > 10) {
        return;
    }
    int64_t v = 0;
    for (; i < len; i++) {
        unsigned c = (unsigned)s[i] - '0';
        if (c > 9) {
            return;
        }
        v = v * 10 + c;
    }
    v = neg ? -v : v;
    if (v >= INT32_MIN && v <= INT32_MAX) {
        *out = (int32_t)v;
    }
}

/* ---- key dispatch: a key's slot in the current context ---- */

#define KEY_IS(lit) (len == sizeof(lit) - 1 && memcmp(k, lit, sizeof(lit) - 1) == 0)

static int top_slot(const unsigned char *k, size_t len)
{
    switch (len) {
    case 4:
        if (KEY_IS("verb")) {
            return KT_F_VERB;
        }
        if (KEY_IS("user")) {
            return S_USER;
        }
        if (KEY_IS("kind")) {
            return S_KIND;
        }
        break;
    case 5:
        if (KEY_IS("stage")) {
            return KT_F_STAGE;
        }
        if (KEY_IS("level")) {
            return KT_F_LEVEL;
        }
        break;
    case 7:
        if (KEY_IS("auditID")) {
            return KT_F_AUDIT_ID;
        }
        break;
    case 9:
        if (KEY_IS("userAgent")) {
            return KT_F_USER_AGENT;
        }
        if (KEY_IS("sourceIPs")) {
            return S_SOURCE_IPS;
        }
        if (KEY_IS("objectRef")) {
            return S_OBJREF;
        }
        break;
    case 10:
        if (KEY_IS("requestURI")) {
            return KT_F_URI;
        }
        break;
    case 11:
        if (KEY_IS("annotations")) {
            return S_ANNOT;
        }
        break;
    case 13:
        if (KEY_IS("requestObject")) {
            return S_REQ_OBJ;
        }
        break;
    case 14:
        if (KEY_IS("stageTimestamp")) {
            return KT_F_STAGE_TS;
        }
        if (KEY_IS("responseStatus")) {
            return S_STATUS;
        }
        if (KEY_IS("responseObject")) {
            return S_RESP_OBJ;
        }
        break;
    case 16:
        if (KEY_IS("impersonatedUser")) {
            return S_IMP;
        }
        break;
    case 24:
        if (KEY_IS("requestReceivedTimestamp")) {
            return KT_F_RECV_TS;
        }
        break;
    default:
        break;
    }
    return S_NONE;
}

static int user_slot(const unsigned char *k, size_t len)
{
    if (KEY_IS("username")) {
        return KT_F_USER;
    }
    if (KEY_IS("uid")) {
        return KT_F_USER_UID;
    }
    if (KEY_IS("groups")) {
        return S_GROUPS;
    }
    if (KEY_IS("extra")) {
        return S_EXTRA;
    }
    return S_NONE;
}

static int objref_slot(const unsigned char *k, size_t len)
{
    switch (len) {
    case 4:
        return KEY_IS("name") ? KT_F_NAME : S_NONE;
    case 8:
        if (KEY_IS("resource")) {
            return KT_F_RESOURCE;
        }
        return KEY_IS("apiGroup") ? KT_F_API_GROUP : S_NONE;
    case 9:
        return KEY_IS("namespace") ? KT_F_NAMESPACE : S_NONE;
    case 10:
        return KEY_IS("apiVersion") ? KT_F_API_VERSION : S_NONE;
    case 11:
        return KEY_IS("subresource") ? KT_F_SUBRESOURCE : S_NONE;
    default:
        return S_NONE;
    }
}

static int status_slot(const unsigned char *k, size_t len)
{
    if (KEY_IS("code")) {
        return S_CODE;
    }
    if (KEY_IS("status")) {
        return KT_F_RESP_STATUS;
    }
    if (KEY_IS("reason")) {
        return KT_F_RESP_REASON;
    }
    if (KEY_IS("message")) {
        return KT_F_RESP_MESSAGE;
    }
    return S_NONE;
}

struct named_slot {
    const char *name; /* key */
    size_t len;       /* its length */
    int slot;         /* enum kt_field */
};
#define NAMED(lit, slot)                                                                           \
    {                                                                                              \
        lit, sizeof(lit) - 1, slot                                                                 \
    }

static const struct named_slot annot_keys[] = {
    NAMED("authorization.k8s.io/decision", KT_F_DECISION),
    NAMED("authorization.k8s.io/reason", KT_F_AUTHZ_REASON),
    NAMED("pod-security.kubernetes.io/audit-violations", KT_F_PSS_VIOLATIONS),
    NAMED("pod-security.kubernetes.io/enforce-policy", KT_F_PSS_ENFORCE),
    NAMED("validation.policy.admission.k8s.io/validation_failure", KT_F_ADMISSION_FAIL),
    NAMED("cluster_name", KT_F_CLUSTER_ANNOT),
};

static const struct named_slot extra_keys[] = {
    NAMED("authentication.kubernetes.io/pod-name", KT_F_POD_NAME_EXTRA),
    NAMED("authentication.kubernetes.io/node-name", KT_F_NODE_NAME_EXTRA),
};

static int named_lookup(const struct named_slot *t, size_t n, const unsigned char *k, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i].len == len && memcmp(t[i].name, k, len) == 0) {
            return t[i].slot;
        }
    }
    return S_NONE;
}

/* ---- callbacks ---- */

static int cb_map_key(void *ctx, const unsigned char *k, size_t len)
{
    struct kt_decoder *d = dec(ctx);
    if (d->skip) {
        return 1;
    }
    switch (d->ctx[d->depth - 1]) {
    case C_TOP:
        d->slot = top_slot(k, len);
        break;
    case C_USER:
        d->slot = user_slot(k, len);
        break;
    case C_IMP:
        d->slot = KEY_IS("username") ? KT_F_IMP_USER : S_NONE;
        break;
    case C_OBJREF:
        d->slot = objref_slot(k, len);
        break;
    case C_STATUS:
        d->slot = status_slot(k, len);
        break;
    case C_ANNOT:
        d->slot = named_lookup(annot_keys, sizeof(annot_keys) / sizeof(annot_keys[0]), k, len);
        break;
    case C_EXTRA:
        d->slot = named_lookup(extra_keys, sizeof(extra_keys) / sizeof(extra_keys[0]), k, len);
        break;
    default:
        d->slot = S_NONE;
        break;
    }
    return 1;
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    struct kt_decoder *d = dec(ctx);
    if (d->skip) {
        return 1;
    }
    if (d->depth == 0) {
        return not_an_object(d);
    }
    switch (d->ctx[d->depth - 1]) {
    case C_GROUPS:
    case C_SOURCE_IPS:
        if (d->nlist == d->caplist) {
            uint32_t cap = d->caplist ? d->caplist * 2 : 16;
            struct kt_str *v = realloc(d->list, cap * sizeof(*v));
            if (v == NULL) {
                d->err = KT_ENOMEM;
                return 0;
            }
            d->list = v;
            d->caplist = cap;
        }
        return take_str(d, s, len, &d->list[d->nlist++]) == 0;
    case C_EXTRA_VALS:
        if (d->extra_idx++ == 0) {
            return take_str(d, s, len, &d->ev->f[d->extra_field]) == 0;
        }
        return 1;
    default:
        if (d->slot < KT_F_COUNT) {
            return take_str(d, s, len, &d->ev->f[d->slot]) == 0;
        }
        if (d->slot == S_KIND) {
            return take_str(d, s, len, &d->kind) == 0;
        }
        return 1;
    }
}

/* null, booleans and numbers: only responseStatus.code is read; elsewhere they are ignored
 * (a null field stays absent), but they still count as array elements. */
static int scalar(struct kt_decoder *d)
{
    if (d->skip) {
        return 1;
    }
    if (d->depth == 0) {
        return not_an_object(d);
    }
    if (d->ctx[d->depth - 1] == C_EXTRA_VALS) {
        d->extra_idx++;
    }
    return 1;
}

static int cb_null(void *ctx)
{
    return scalar(dec(ctx));
}

static int cb_boolean(void *ctx, int v)
{
    return scalar(dec(ctx));
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    struct kt_decoder *d = dec(ctx);
    if (d->skip == 0 && d->depth > 0 && d->slot == S_CODE && d->ctx[d->depth - 1] == C_STATUS) {
        parse_code((const unsigned char *)s, len, &d->ev->code);
        return 1;
    }
    return scalar(d);
}

/* A container starts: enter a context we read, start capturing a body, or skip it. */
static int start(struct kt_decoder *d, int is_map)
{
    if (d->skip) {
        d->skip++;
        return 1;
    }
    if (d->depth == 0) {
        if (!is_map) {
            return not_an_object(d);
        }
        d->ctx[0] = C_TOP;
        d->depth = 1;
        return 1;
    }
    int c = d->ctx[d->depth - 1];
    int next = -1;
    if (c == C_GROUPS || c == C_SOURCE_IPS || c == C_EXTRA_VALS) {
        if (c == C_EXTRA_VALS) {
            d->extra_idx++;
        }
    } else if (is_map) {
        switch (d->slot) {
        case S_USER:
            next = C_USER;
            break;
        case S_IMP:
            next = C_IMP;
            break;
        case S_OBJREF:
            next = C_OBJREF;
            break;
        case S_STATUS:
            next = C_STATUS;
            break;
        case S_ANNOT:
            next = C_ANNOT;
            break;
        case S_EXTRA:
            next = C_EXTRA;
            break;
        default:
            break;
        }
    } else if (d->slot == S_GROUPS || d->slot == S_SOURCE_IPS) {
        next = d->slot == S_GROUPS ? C_GROUPS : C_SOURCE_IPS;
        d->nlist = 0;
    } else if (c == C_EXTRA && d->slot < KT_F_COUNT) {
        next = C_EXTRA_VALS;
        d->extra_field = d->slot;
        d->extra_idx = 0;
    }
    if (next >= 0 && d->depth < MAX_CTX) {
        d->ctx[d->depth++] = (uint8_t)next;
        return 1;
    }
    /* Skip it; a body is skipped too, but its span is recorded. */
    d->skip = 1;
    if (d->slot == S_REQ_OBJ || d->slot == S_RESP_OBJ) {
        /* bytes consumed is just past this token, the opening bracket. */
        d->capture = d->slot;
        d->cap_start = yajl_get_bytes_consumed(d->h) - 1;
    }
    return 1;
}

static int cb_start_map(void *ctx)
{
    return start(dec(ctx), 1);
}

static int cb_start_array(void *ctx)
{
    return start(dec(ctx), 0);
}

/* A container ends: finish a body span, a list, or the event. */
static int end(struct kt_decoder *d)
{
    if (d->skip) {
        if (--d->skip == 0 && d->capture) {
            size_t stop = yajl_get_bytes_consumed(d->h);
            struct kt_str span = {d->json + d->cap_start, stop - d->cap_start};
            if (d->capture == S_REQ_OBJ) {
                d->ev->req_obj = span;
            } else {
                d->ev->resp_obj = span;
            }
            d->capture = 0;
        }
        return 1;
    }
    int c = d->ctx[--d->depth];
    if (c == C_GROUPS || c == C_SOURCE_IPS) {
        struct kt_strlist *out = c == C_GROUPS ? &d->ev->groups : &d->ev->source_ips;
        struct kt_str *v = kt_arena_alloc(d->arena, (d->nlist ? d->nlist : 1) * sizeof(*v));
        if (v == NULL) {
            d->err = KT_ENOMEM;
            return 0;
        }
        if (d->nlist > 0) {
            memcpy(v, d->list, d->nlist * sizeof(*v));
        }
        out->v = v;
        out->n = d->nlist;
    } else if (d->depth == 0) {
        d->done = 1;
        d->end = yajl_get_bytes_consumed(d->h);
    }
    return 1;
}

static int cb_end_map(void *ctx)
{
    return end(dec(ctx));
}

static int cb_end_array(void *ctx)
{
    return end(dec(ctx));
}

static const yajl_callbacks callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_boolean,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end_map,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end_array,
};

/* ---- public API ---- */

struct kt_decoder *kt_decoder_create(void)
{
    struct kt_decoder *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return NULL;
    }
    d->mem.base = malloc(YMEM_SIZE);
    if (d->mem.base == NULL) {
        free(d);
        return NULL;
    }
    d->afs.malloc = ymem_malloc;
    d->afs.realloc = ymem_realloc;
    d->afs.free = ymem_free;
    d->afs.ctx = &d->mem;
    static const char *const name_ptr[] = {"/metadata/name"};
    if ((d->name_walker = field_walker_create(name_ptr, 1)) == NULL) {
        kt_decoder_destroy(d);
        return NULL;
    }
    return d;
}

void kt_decoder_destroy(struct kt_decoder *d)
{
    if (d == NULL) {
        return;
    }
    field_walker_destroy(d->name_walker);
    free(d->list);
    free(d->mem.base);
    free(d);
}

/* "invalid JSON: <yajl's message>" in the arena (a static fallback if that fails). */
static const char *json_error(struct kt_decoder *d)
{
    static const char prefix[] = "invalid JSON: ";
    unsigned char *msg = yajl_get_error(d->h, 0, (const unsigned char *)d->json, d->len);
    if (msg == NULL) {
        return "invalid JSON";
    }
    size_t n = strlen((const char *)msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ' || msg[n - 1] == '.')) {
        n--;
    }
    const char *out = "invalid JSON";
    char *buf = kt_arena_alloc(d->arena, sizeof(prefix) + n);
    if (buf != NULL) {
        memcpy(buf, prefix, sizeof(prefix) - 1);
        memcpy(buf + sizeof(prefix) - 1, msg, n);
        buf[sizeof(prefix) - 1 + n] = '\0';
        out = buf;
    }
    yajl_free_error(d->h, msg);
    return out;
}

/* "not an audit event (kind X)" in the arena, X cut to 64 bytes. */
static const char *kind_error(struct kt_decoder *d)
{
    int n = d->kind.len > 64 ? 64 : (int)d->kind.len;
    size_t size = sizeof("not an audit event (kind )") + (size_t)n;
    char *buf = kt_arena_alloc(d->arena, size);
    if (buf == NULL) {
        return "not an audit event";
    }
    snprintf(buf, size, "not an audit event (kind %.*s)", n, d->kind.ptr);
    return buf;
}

static uint8_t stage_of(struct kt_str s)
{
    if (kt_str_eq(s, "ResponseComplete", 16)) {
        return KT_STAGE_RESPONSE_COMPLETE;
    }
    if (kt_str_eq(s, "RequestReceived", 15)) {
        return KT_STAGE_REQUEST_RECEIVED;
    }
    if (kt_str_eq(s, "ResponseStarted", 15)) {
        return KT_STAGE_RESPONSE_STARTED;
    }
    if (kt_str_eq(s, "Panic", 5)) {
        return KT_STAGE_PANIC;
    }
    return KT_STAGE_UNKNOWN;
}

static uint8_t level_of(struct kt_str s)
{
    if (kt_str_eq(s, "Metadata", 8)) {
        return KT_LEVEL_METADATA;
    }
    if (kt_str_eq(s, "RequestResponse", 15)) {
        return KT_LEVEL_REQUEST_RESPONSE;
    }
    if (kt_str_eq(s, "Request", 7)) {
        return KT_LEVEL_REQUEST;
    }
    if (kt_str_eq(s, "None", 4)) {
        return KT_LEVEL_NONE;
    }
    return KT_LEVEL_UNKNOWN;
}

/* The verdict once yajl is done: a reject reason or NULL for a usable event. */
static const char *verdict(struct kt_decoder *d, yajl_status st, int parsed_all)
{
    struct kt_event *ev = d->ev;
    if (d->reason != NULL) {
        return d->reason;
    }
    if (st == yajl_status_error) {
        /* Every byte was valid but the object never closed (yajl_complete_parse failed):
         * the input was cut short. Anything else is yajl's complaint. */
        return parsed_all && d->depth > 0 ? "truncated JSON" : json_error(d);
    }
    if (!d->done) {
        return "truncated JSON";
    }
    /* yajl lets an unterminated string after the value pass as unfinished input. */
    for (size_t i = d->end; i < d->len; i++) {
        char c = d->json[i];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
            return "invalid JSON: parse error: trailing garbage";
        }
    }
    if (d->kind.ptr != NULL && !kt_str_eq(d->kind, "Event", 5)) {
        return kind_error(d);
    }
    if (ev->f[KT_F_AUDIT_ID].len == 0 && ev->f[KT_F_STAGE].len == 0 &&
        ev->f[KT_F_STAGE_TS].ptr == NULL) {
        return "not an audit event: no auditID, stage or stageTimestamp";
    }
    if (ev->f[KT_F_AUDIT_ID].len == 0) {
        return "missing auditID";
    }
    if (ev->f[KT_F_STAGE].len == 0) {
        return "missing stage";
    }
    if (ev->f[KT_F_STAGE_TS].ptr == NULL) {
        return "missing stageTimestamp";
    }
    if (kt_parse_rfc3339(ev->f[KT_F_STAGE_TS].ptr, ev->f[KT_F_STAGE_TS].len, &ev->ts_us) != 0) {
        return "bad stageTimestamp";
    }
    return NULL;
}

/*
 * The name of an object being created when objectRef has none (generateName, most controller
 * creates): the name the apiserver assigned (responseObject.metadata.name), else the one the
 * client sent (requestObject.metadata.name). Only for create without a subresource, where the
 * body is the object itself (a subresource's body is another kind: Eviction, TokenRequest). A
 * failed create's response is a Status, which has no metadata.name. 0 or KT_ENOMEM.
 */
static int created_name(struct kt_decoder *d, struct kt_event *ev)
{
    const struct kt_str bodies[2] = {ev->resp_obj, ev->req_obj};
    for (int i = 0; i < 2; i++) {
        struct kt_value v;
        if (bodies[i].ptr == NULL) {
            continue;
        }
        if (field_walker_run(d->name_walker, d->arena, bodies[i].ptr, bodies[i].len, &v) != 0) {
            return KT_ENOMEM;
        }
        if (v.kind == KT_V_STR && v.s.len > 0) {
            ev->f[KT_F_NAME] = v.s;
            return 0;
        }
    }
    return 0;
}

/*
 * Fields of a rejected event are whatever was decoded before the verdict (possibly
 * partial); reject says why. An empty auditID or stage counts as missing. Scalar bodies
 * ("requestObject": null) are absent: rules only read object and array bodies.
 */
int kt_decode_event(struct kt_decoder *d, const char *json, size_t len, struct kt_arena *arena,
                    struct kt_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    d->json = json;
    d->len = len;
    d->arena = arena;
    d->ev = ev;
    d->depth = 0;
    d->slot = S_NONE;
    d->skip = 0;
    d->capture = 0;
    d->done = 0;
    d->err = 0;
    d->reason = NULL;
    d->kind = KT_STR_NULL;
    d->nlist = 0;

    ymem_rewind(&d->mem);
    d->h = yajl_alloc(&callbacks, &d->afs, d);
    if (d->h == NULL) {
        ev->reject = "out of memory";
        return KT_ENOMEM;
    }
    yajl_status st = yajl_parse(d->h, (const unsigned char *)json, len);
    int parsed_all = st == yajl_status_ok;
    if (parsed_all) {
        /* Needed for a top-level scalar, which yajl holds until it sees the end. */
        st = yajl_complete_parse(d->h);
    }
    const char *reject = d->err == 0 ? verdict(d, st, parsed_all) : NULL;
    yajl_free(d->h);
    d->h = NULL;

    if (d->err != 0) {
        ev->reject = "out of memory";
        return KT_ENOMEM;
    }
    if (reject != NULL) {
        ev->reject = reject;
        return KT_EPARSE;
    }
    ev->stage = stage_of(ev->f[KT_F_STAGE]);
    ev->level = level_of(ev->f[KT_F_LEVEL]);
    if (ev->f[KT_F_RECV_TS].ptr != NULL &&
        kt_parse_rfc3339(ev->f[KT_F_RECV_TS].ptr, ev->f[KT_F_RECV_TS].len, &ev->recv_us) != 0) {
        ev->recv_us = 0;
    }
    /* the verb first: events that are not creates, or have a name, pay one comparison */
    if (kt_str_eq(ev->f[KT_F_VERB], "create", 6) && ev->f[KT_F_NAME].len == 0 &&
        ev->f[KT_F_RESOURCE].len > 0 && ev->f[KT_F_SUBRESOURCE].ptr == NULL &&
        created_name(d, ev) != 0) {
        ev->reject = "out of memory";
        return KT_ENOMEM;
    }
    return 0;
}

int kt_decode_batch(struct kt_decoder *d, struct kt_batch *b)
{
    if (b->capevents < b->nrecs) {
        struct kt_event *evs = realloc(b->events, b->nrecs * sizeof(*evs));
        if (evs == NULL) {
            return KT_ENOMEM;
        }
        b->events = evs;
        b->capevents = b->nrecs;
    }
    for (size_t i = 0; i < b->nrecs; i++) {
        const struct kt_record *rec = &b->recs[i];
        struct kt_event *ev = &b->events[i];
        if (rec->reject != NULL) {
            memset(ev, 0, sizeof(*ev));
            ev->reject = rec->reject;
        } else if (kt_decode_event(d, b->buf + rec->pos, rec->len, &b->arena, ev) == KT_ENOMEM) {
            /* Leave the batch consistent: every later event is marked too. */
            for (size_t j = i; j < b->nrecs; j++) {
                memset(&b->events[j], 0, sizeof(b->events[j]));
                b->events[j].rec = (uint32_t)j;
                b->events[j].reject = "out of memory";
            }
            return KT_ENOMEM;
        }
        ev->rec = (uint32_t)i;
        if (ev->reject == NULL) {
            /* what the envelope said: its cluster names the event's, truncation is marked */
            struct kt_str c = kt_batch_record_cluster(b, rec);
            if (c.ptr != NULL) {
                ev->f[KT_F_CLUSTER_ANNOT] = c;
            }
            if (rec->truncated) {
                ev->flags |= KT_EV_TRUNCATED;
            }
        }
    }
    return 0;
}
