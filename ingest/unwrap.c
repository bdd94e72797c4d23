/*
 * unwrap.c: message shapes (see unwrap.h).
 *
 * Each level of text (the message, then the unescaped payload of a wrapper inside it, and so
 * on) has its own framer and scratch buffer, so a wrapper can be opened while the level
 * holding it is still being framed. Classifying a value only scans its top-level keys and
 * stops at the first one that only an audit event has, which for a bare event is its first
 * key ("kind" or "apiVersion"): the event itself is parsed once, later, by the decoder.
 */
#include "unwrap.h"

#include <stdlib.h>

#include "frame.h"

enum {
    MAX_DEPTH = 4,      /* levels of text: the message and three nested wrappers */
    REJECT_HEAD = 1024, /* bytes of a rejected value kept (the store keeps as much) */
};

struct kt_unwrapper {
    size_t max_event;               /* largest value accepted */
    struct kt_framer fr[MAX_DEPTH]; /* one framer per level of text */
    char *scratch[MAX_DEPTH];       /* unescaped wrapper payloads, per level */
    size_t scratchcap[MAX_DEPTH];   /* their sizes */
    struct kt_unwrap_counts counts; /* of the message being unwrapped */
    struct kt_batch *b;             /* the batch being appended to */
    uint32_t origin;                /* record origin */
    uint64_t off;                   /* record offset */
};

/* A value's bytes in its text: [start, end); end == 0 when absent. */
struct span {
    size_t start;
    size_t end;
};

struct kt_unwrapper *kt_unwrapper_create(size_t max_event)
{
    struct kt_unwrapper *u = calloc(1, sizeof(*u));
    if (u != NULL) {
        u->max_event = max_event > 0 ? max_event : 16u << 20;
    }
    return u;
}

void kt_unwrapper_destroy(struct kt_unwrapper *u)
{
    if (u == NULL) {
        return;
    }
    for (int i = 0; i < MAX_DEPTH; i++) {
        free(u->scratch[i]);
    }
    free(u);
}

/* ---- appending records ---- */

static int add_record(struct kt_unwrapper *u, const char *p, size_t len, const char *reject)
{
    struct kt_batch *b = u->b;
    if (reject != NULL && len > REJECT_HEAD) {
        len = REJECT_HEAD;
    }
    if (kt_batch_reserve(b, len) != 0) {
        return KT_ENOMEM;
    }
    struct kt_record *r = kt_batch_add_record(b);
    if (r == NULL) {
        return KT_ENOMEM;
    }
    if (len > 0) {
        memcpy(b->buf + b->len, p, len);
    }
    r->pos = b->len;
    r->len = len;
    b->len += len;
    r->off = u->off;
    r->line = 0;
    r->origin = u->origin;
    r->reject = reject;
    u->counts.records++;
    u->counts.rejects += reject != NULL;
    return 0;
}

/* ---- scanning JSON without parsing it ---- */

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t skip_ws(const char *p, size_t i, size_t n)
{
    while (i < n && is_ws(p[i])) {
        i++;
    }
    return i;
}

/* p[i] is '"': the index just past the closing quote, or 0 when the string is unterminated. */
static size_t skip_string(const char *p, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        const char *q = memchr(p + i, '"', n - i);
        if (q == NULL) {
            return 0;
        }
        size_t j = (size_t)(q - p), bs = 0;
        while (j - bs > i && p[j - bs - 1] == '\\') {
            bs++;
        }
        if (bs % 2 == 0) {
            return j + 1;
        }
        i = j;
    }
    return 0;
}

/* The index just past the value at p[i], or 0 when it is malformed or cut short. */
static size_t skip_value(const char *p, size_t i, size_t n)
{
    if (i >= n) {
        return 0;
    }
    if (p[i] == '"') {
        return skip_string(p, i, n);
    }
    if (p[i] == '{' || p[i] == '[') {
        size_t depth = 0;
        while (i < n) {
            char c = p[i];
            if (c == '"') {
                i = skip_string(p, i, n);
                if (i == 0) {
                    return 0;
                }
                continue;
            }
            if (c == '{' || c == '[') {
                depth++;
            } else if ((c == '}' || c == ']') && --depth == 0) {
                return i + 1;
            }
            i++;
        }
        return 0;
    }
    size_t j = i;
    while (j < n && !is_ws(p[j]) && p[j] != ',' && p[j] != '}' && p[j] != ']') {
        j++;
    }
    return j > i ? j : 0;
}

static int key_is(const char *p, struct span k, const char *lit)
{
    size_t n = strlen(lit);
    return k.end - k.start == n && memcmp(p + k.start, lit, n) == 0;
}

static int value_is(const char *p, struct span v, const char *lit)
{
    size_t n = strlen(lit);
    return v.end - v.start == n + 2 && p[v.start] == '"' && memcmp(p + v.start + 1, lit, n) == 0;
}

static int value_starts(const char *p, struct span v, const char *lit)
{
    size_t n = strlen(lit);
    return v.end - v.start >= n + 2 && p[v.start] == '"' && memcmp(p + v.start + 1, lit, n) == 0;
}

/* Keys that an audit event has and a shipper's record does not. */
static int event_key(const char *p, struct span k, struct span v)
{
    static const char *const keys[] = {
        "auditID",        "stage",
        "stageTimestamp", "requestReceivedTimestamp",
        "requestURI",     "verb",
        "objectRef",      "responseStatus",
        "sourceIPs",      "impersonatedUser",
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (key_is(p, k, keys[i])) {
            return 1;
        }
    }
    return (key_is(p, k, "kind") && value_is(p, v, "Event")) ||
           (key_is(p, k, "apiVersion") && value_starts(p, v, "audit.k8s.io/"));
}

enum shape {
    SH_OTHER,   /* not an object, malformed, or no key we know: for the decoder to judge */
    SH_EVENT,   /* has a key only events have */
    SH_WRAPPER, /* no event key, a "log" or "message" value: the event inside */
    SH_RECORDS, /* no event key, a "records" array: an Azure diagnostic envelope */
};

/* Wanted keys of an object and their values' spans. */
struct wanted {
    const char *const *names; /* key names */
    struct span *vals;        /* their values, end == 0 when absent (first occurrence wins) */
    size_t n;                 /* how many */
};

/*
 * Scan the object at p[0, n) key by key, filling w. With stop_at_event, return SH_EVENT at
 * the first event key. SH_OTHER when p is not an object or is malformed, else SH_WRAPPER
 * (meaning only: scanned to the end).
 */
static int scan_object(const char *p, size_t n, struct wanted *w, int stop_at_event)
{
    size_t i = skip_ws(p, 0, n);
    if (i >= n || p[i] != '{') {
        return SH_OTHER;
    }
    i = skip_ws(p, i + 1, n);
    if (i < n && p[i] == '}') {
        return SH_WRAPPER;
    }
    while (i < n) {
        if (p[i] != '"') {
            return SH_OTHER;
        }
        size_t kend = skip_string(p, i, n);
        if (kend == 0) {
            return SH_OTHER;
        }
        struct span k = {i + 1, kend - 1};
        i = skip_ws(p, kend, n);
        if (i >= n || p[i] != ':') {
            return SH_OTHER;
        }
        i = skip_ws(p, i + 1, n);
        size_t vend = skip_value(p, i, n);
        if (vend == 0) {
            return SH_OTHER;
        }
        struct span v = {i, vend};
        if (stop_at_event && event_key(p, k, v)) {
            return SH_EVENT;
        }
        for (size_t j = 0; j < w->n; j++) {
            if (w->vals[j].end == 0 && key_is(p, k, w->names[j])) {
                w->vals[j] = v;
            }
        }
        i = skip_ws(p, vend, n);
        if (i < n && p[i] == '}') {
            return SH_WRAPPER;
        }
        if (i >= n || p[i] != ',') {
            return SH_OTHER;
        }
        i = skip_ws(p, i + 1, n);
    }
    return SH_OTHER;
}

/* ---- unescaping a JSON string ---- */

static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Four hex digits at p (n bytes available); -1 when they are not. */
static int32_t hex4(const char *p, size_t n)
{
    int32_t v = 0;
    if (n < 4) {
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

/*
 * Unescape the body of a JSON string, in[0, n) without its quotes, into out (at least n
 * bytes: the text never grows; \u escapes of 6 bytes give at most 4, a surrogate pair of 12
 * gives 4). Lone surrogates become U+FFFD. Returns the length, or -1 on a bad escape.
 */
static ssize_t unescape(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        const char *bs = memchr(in + i, '\\', n - i);
        size_t run = bs != NULL ? (size_t)(bs - in) - i : n - i;
        memcpy(out + o, in + i, run);
        o += run;
        i += run;
        if (i >= n) {
            break;
        }
        if (i + 1 >= n) {
            return -1;
        }
        char c = in[i + 1];
        i += 2;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            out[o++] = c;
            break;
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            int32_t cp = hex4(in + i, n - i);
            if (cp < 0) {
                return -1;
            }
            i += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                int32_t lo = i + 1 < n && in[i] == '\\' && in[i + 1] == 'u'
                                 ? hex4(in + i + 2, n - i - 2)
                                 : -1;
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 6;
                } else {
                    cp = 0xfffd;
                }
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                cp = 0xfffd;
            }
            o += put_utf8(out + o, (uint32_t)cp);
            break;
        }
        default:
            return -1;
        }
    }
    return (ssize_t)o;
}

/* ---- the levels ---- */

static int unwrap_text(struct kt_unwrapper *u, int depth, const char *p, size_t n);

/*
 * The payload of a wrapper: v, a value in p. A string is unescaped into the next level's
 * scratch buffer and framed there; an object or array is framed in place. what names the
 * wrapper in reject reasons.
 */
static int open_payload(struct kt_unwrapper *u, int depth, const char *p, struct span v,
                        const char *too_deep, const char *bad_escape, const char *not_json)
{
    const char *vp = p + v.start;
    size_t vn = v.end - v.start;
    if (depth + 1 >= MAX_DEPTH) {
        return add_record(u, vp, vn, too_deep);
    }
    if (vp[0] == '{' || vp[0] == '[') {
        return unwrap_text(u, depth + 1, vp, vn);
    }
    if (vp[0] != '"') {
        return add_record(u, vp, vn, not_json);
    }
    int d = depth + 1;
    if (u->scratchcap[d] < vn) {
        char *s = realloc(u->scratch[d], vn);
        if (s == NULL) {
            return KT_ENOMEM;
        }
        u->scratch[d] = s;
        u->scratchcap[d] = vn;
    }
    ssize_t len = unescape(vp + 1, vn - 2, u->scratch[d]);
    if (len < 0) {
        return add_record(u, vp, vn, bad_escape);
    }
    return unwrap_text(u, d, u->scratch[d], (size_t)len);
}

/* The elements of an Azure "records" array (at v in p): properties.log of audit categories. */
static int open_records(struct kt_unwrapper *u, int depth, const char *p, struct span v)
{
    static const char *const elem_keys[] = {"category", "properties"};
    static const char *const prop_keys[] = {"log"};
    size_t n = v.end;
    size_t i = skip_ws(p, v.start + 1, n);
    int rc = 0;

    while (rc == 0 && i < n && p[i] != ']') {
        size_t end = skip_value(p, i, n);
        if (end == 0) {
            return add_record(u, p + i, n - i, "invalid JSON in a \"records\" envelope");
        }
        struct span ev[2] = {{0, 0}, {0, 0}};
        struct wanted we = {elem_keys, ev, 2};
        if (scan_object(p + i, end - i, &we, 0) != SH_WRAPPER) {
            rc = add_record(u, p + i, end - i, "\"records\" element is not an object");
        } else if (ev[0].end != 0 && !value_starts(p + i, ev[0], "kube-audit")) {
            u->counts.skipped++; /* kube-apiserver, guard, ... logs on the same stream */
        } else {
            struct span pv[1] = {{0, 0}};
            struct wanted wp = {prop_keys, pv, 1};
            const char *props = p + i + ev[1].start;
            if (ev[1].end == 0 ||
                scan_object(props, ev[1].end - ev[1].start, &wp, 0) != SH_WRAPPER ||
                pv[0].end == 0) {
                rc = add_record(u, p + i, end - i, "\"records\" element without properties.log");
            } else {
                rc = open_payload(u, depth, props, pv[0], "properties.log nested too deeply",
                                  "properties.log: invalid JSON string escape",
                                  "properties.log is neither an event nor a JSON string");
            }
        }
        i = skip_ws(p, end, n);
        if (i < n && p[i] == ',') {
            i = skip_ws(p, i + 1, n);
        }
    }
    return rc;
}

/* One value framed at this level: an event, a wrapper to open, or the decoder's to judge. */
static int classify(struct kt_unwrapper *u, int depth, const char *p, size_t n)
{
    static const char *const keys[] = {"log", "message", "records"};
    struct span vals[3] = {{0, 0}, {0, 0}, {0, 0}};
    struct wanted w = {keys, vals, 3};
    int shape = scan_object(p, n, &w, 1);

    if (shape == SH_WRAPPER) {
        if (vals[0].end != 0) {
            return open_payload(u, depth, p, vals[0], "\"log\" nested too deeply",
                                "\"log\": invalid JSON string escape",
                                "\"log\" is neither an event nor a JSON string");
        }
        if (vals[1].end != 0) {
            return open_payload(u, depth, p, vals[1], "\"message\" nested too deeply",
                                "\"message\": invalid JSON string escape",
                                "\"message\" is neither an event nor a JSON string");
        }
        if (vals[2].end != 0 && p[vals[2].start] == '[') {
            return open_records(u, depth, p, vals[2]);
        }
    }
    return add_record(u, p, n, NULL);
}

/* Frame p[0, n) at level depth and handle each value. */
static int unwrap_text(struct kt_unwrapper *u, int depth, const char *p, size_t n)
{
    struct kt_framer *f = &u->fr[depth];
    size_t before = u->counts.records + u->counts.skipped;
    int rc = 0;

    kt_framer_init(f, KT_FRAME_TOP, u->max_event, 0, 1);
    while (rc == 0) {
        struct kt_frame fr;
        kt_framer_next(f, p, n, 1, &fr);
        if (fr.kind == KT_FRAME_MORE) {
            break;
        }
        if (fr.kind == KT_FRAME_REJECT) {
            rc = add_record(u, fr.ptr, fr.len, fr.reason);
        } else {
            rc = classify(u, depth, fr.ptr, fr.len);
        }
    }
    if (rc == 0 && u->counts.records + u->counts.skipped == before) {
        rc = add_record(u, p, n, depth == 0 ? "empty message" : "empty wrapped value");
    }
    return rc;
}

int kt_unwrap(struct kt_unwrapper *u, const char *msg, size_t len, struct kt_batch *b,
              uint32_t origin, uint64_t off, struct kt_unwrap_counts *counts)
{
    memset(&u->counts, 0, sizeof(u->counts));
    u->b = b;
    u->origin = origin;
    u->off = off;
    int rc = unwrap_text(u, 0, msg != NULL ? msg : "", msg != NULL ? len : 0);
    if (counts != NULL) {
        *counts = u->counts;
    }
    u->b = NULL;
    return rc;
}
