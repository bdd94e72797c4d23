/*
 * walk.c: JSON pointers (with '*') read from a body in one pass, many at once.
 *
 * Rules read a few dozen settings from request bodies that are mostly other things
 * (metadata.managedFields, status, annotations, env...). The walk is a small recursive
 * scanner over the text: before each value it asks whether any pointer's path goes through
 * it, and when none does it skips the value without looking inside (string bodies 16 bytes at
 * a time), so its cost follows the parts of the body the rules read, not the body's size.
 * Recursion only follows pointers, so it is at most MAX_SEGS deep whatever the input.
 *
 * The body spans come from the decoder, which parsed the whole event with yajl, so the text
 * is valid JSON; the scanner still checks every bound and stops (keeping what it found) on
 * anything unexpected.
 *
 * Pointer semantics (RFC 6901, '~0' '~1' escapes): a segment matches an object member by key
 * or an array element by index; '*' matches every member or element and makes the value a
 * list. With a single '*' that is not the last segment, the list has one entry per element of
 * that array, a missing entry (ptr NULL) where the element lacks the rest of the path, so
 * lists of settings read per container stay aligned. A pointer naming a container yields its
 * JSON text.
 */
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "rules_int.h"

enum { MAX_SEGS = 16 };

/* A pointer, split once. */
struct tdef {
    const char *segs[MAX_SEGS]; /* segments, unescaped */
    size_t seglen[MAX_SEGS];
    long segidx[MAX_SEGS]; /* a segment's array index when it is a number, -2 for '*', else -1 */
    int nsegs;             /* -1: a pointer that never matches */
    int wild;              /* has a '*': the value is a list */
    int wseg;              /* the only '*' segment when not last (aligned entries), else -1 */
};

/* A pointer's progress in one walk. */
struct target {
    const struct tdef *d;
    int matched;         /* leading depths whose path matches */
    int key_ok;          /* the last key matched its segment */
    int cap_depth;       /* depth of a matched container being captured, or -1 */
    int elem_depth;      /* depth of the element of the '*' array being walked, or -1 */
    int elem_hit;        /* that element produced a value */
    size_t cap_start;    /* first byte of the captured container */
    struct kt_str *vals; /* collected values (arena) */
    uint32_t n, cap;
};

struct walk {
    const char *json;           /* text walked */
    const char *p;              /* next byte */
    const char *end;            /* one past the last byte */
    int depth;                  /* containers entered */
    int in_array[MAX_SEGS + 2]; /* per depth: array (1) or object (0) */
    long index[MAX_SEGS + 2];   /* per depth: next array index */
    struct target *t;           /* pointers looked for */
    int nt;
    uint16_t *act[MAX_SEGS + 2]; /* per depth: the targets whose path enters that container */
    int nact[MAX_SEGS + 2];      /* (depth 0: all of them), so values only visit those */
    struct kt_arena *arena;
    int err;       /* KT_ENOMEM */
    int stop;      /* malformed text: stop, keep what was found */
    char key[256]; /* the current key, when it had escapes */
};

/* ---- scanning ---- */

static void ws(struct walk *w)
{
    while (w->p < w->end && (*w->p == ' ' || *w->p == '\n' || *w->p == '\r' || *w->p == '\t')) {
        w->p++;
    }
}

/* From just after an opening quote to the closing one; NULL if there is none. */
static const char *string_end(const char *p, const char *end, int *escaped)
{
    for (;;) {
#ifdef __SSE2__
        const __m128i quote = _mm_set1_epi8('"');
        const __m128i slash = _mm_set1_epi8('\\');
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            int mask =
                _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)));
            if (mask != 0) {
                p += __builtin_ctz((unsigned)mask);
                break;
            }
            p += 16;
        }
#endif
        while (p < end && *p != '"' && *p != '\\') {
            p++;
        }
        if (p >= end) {
            return NULL;
        }
        if (*p == '"') {
            return p;
        }
        *escaped = 1;
        p += 2; /* the backslash and the character it escapes */
        if (p > end) {
            return NULL;
        }
    }
}

/* Skip one value of any kind, without looking inside. */
static void skip_value(struct walk *w)
{
    int depth = 0, esc = 0;
    while (w->p < w->end) {
        char c = *w->p;
        if (c == '"') {
            const char *q = string_end(w->p + 1, w->end, &esc);
            if (q == NULL) {
                w->stop = 1;
                return;
            }
            w->p = q + 1;
        } else if (c == '{' || c == '[') {
            depth++;
            w->p++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) {
                return; /* the end of the enclosing container: not ours */
            }
            depth--;
            w->p++;
        } else if (depth == 0 && (c == ',' || c == ':')) {
            return;
        } else {
            w->p++;
        }
        if (depth == 0 && (c == '"' || c == '}' || c == ']')) {
            return;
        }
    }
}

/* ---- the pointers' state machine ---- */

static int seg_match(const struct tdef *d, int i, const char *s, size_t len)
{
    /* most keys differ from the segment in length or first byte: no call for those */
    return d->segidx[i] == -2 ||
           (d->seglen[i] == len &&
            (len == 0 || (d->segs[i][0] == s[0] && memcmp(d->segs[i], s, len) == 0)));
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
    t->vals[t->n++] = (struct kt_str){s, len}; /* ptr NULL: a missing entry */
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
        return t->d->nsegs >= 0 ? 1 : 0; /* the root is on every path */
    }
    if (t->cap_depth >= 0 || t->matched < d || d > t->d->nsegs) {
        return 0;
    }
    int ok = t->key_ok;
    if (idx >= 0) {
        ok = t->d->segidx[d - 1] == -2 || t->d->segidx[d - 1] == idx;
    }
    return ok ? (d == t->d->nsegs ? 2 : 1) : 0;
}

static void value(struct walk *w);

/* A container starts at w->p ('{' or '['), at index idx of its parent. */
static void container(struct walk *w, long idx)
{
    int array = *w->p == '[';
    size_t start = (size_t)(w->p - w->json);
    const uint16_t *pl = w->act[w->depth];
    int pn = w->nact[w->depth];
    uint16_t *cl = w->act[w->depth + 1];
    int cn = 0;
    for (int k = 0; k < pn; k++) {
        struct target *t = &w->t[pl[k]];
        int p = on_path(w, t, idx);
        if (p == 2) {
            t->cap_start = start;
            t->cap_depth = w->depth + 1;
            cl[cn++] = pl[k];
        } else if (p == 1 && t->matched == w->depth) {
            t->matched = w->depth + 1;
            if (t->d->wseg >= 0 && w->depth == t->d->wseg + 1) {
                /* an element of the '*' array: it yields a value or a missing entry */
                t->elem_depth = w->depth + 1;
                t->elem_hit = 0;
            }
            cl[cn++] = pl[k];
        }
        t->key_ok = 0;
    }
    w->nact[w->depth + 1] = cn;
    w->depth++;
    w->in_array[w->depth] = array;
    w->index[w->depth] = 0;
    w->p++;
    for (int first = 1; !w->stop && w->err == 0; first = 0) {
        ws(w);
        if (w->p >= w->end) {
            w->stop = 1;
            break;
        }
        if (*w->p == (array ? ']' : '}')) {
            w->p++;
            break;
        }
        if (!first) {
            if (*w->p != ',') {
                w->stop = 1;
                break;
            }
            w->p++;
            ws(w);
        }
        if (!array) {
            /* a key, then ':' */
            int esc = 0;
            const char *q =
                w->p < w->end && *w->p == '"' ? string_end(w->p + 1, w->end, &esc) : NULL;
            if (q == NULL) {
                w->stop = 1;
                break;
            }
            const char *k = w->p + 1;
            size_t klen = (size_t)(q - k);
            long ul;
            if (esc && klen <= sizeof(w->key) && (ul = kt_json_unescape(k, klen, w->key)) >= 0) {
                klen = (size_t)ul;
                k = w->key;
            }
            int d = w->depth;
            for (int j = 0; j < cn; j++) {
                struct target *t = &w->t[cl[j]];
                t->key_ok = t->cap_depth < 0 && t->matched >= d && d <= t->d->nsegs &&
                            seg_match(t->d, d - 1, k, klen);
            }
            w->p = q + 1;
            ws(w);
            if (w->p >= w->end || *w->p != ':') {
                w->stop = 1;
                break;
            }
            w->p++;
            ws(w);
        }
        value(w);
    }
    size_t end = (size_t)(w->p - w->json);
    for (int j = 0; j < cn; j++) {
        struct target *t = &w->t[cl[j]];
        if (t->cap_depth == w->depth) {
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
}

/* A scalar at index idx: collected by the targets it ends. */
static void scalar(struct walk *w, long idx, const char *s, size_t len)
{
    const uint16_t *al = w->act[w->depth];
    for (int k = 0; k < w->nact[w->depth]; k++) {
        struct target *t = &w->t[al[k]];
        if (s != NULL && on_path(w, t, idx) == 2) {
            collect(w, t, s, len);
        }
        t->key_ok = 0;
    }
}

/* The value at w->p. */
static void value(struct walk *w)
{
    long idx = next_index(w);
    const uint16_t *al = w->act[w->depth];
    int wanted = 0;
    for (int k = 0; k < w->nact[w->depth] && !wanted; k++) {
        wanted = on_path(w, &w->t[al[k]], idx) != 0;
    }
    if (w->p >= w->end) {
        w->stop = 1;
        return;
    }
    if (!wanted) {
        skip_value(w); /* (stale key_ok flags are rewritten before they are read) */
        return;
    }
    char c = *w->p;
    if (c == '{' || c == '[') {
        if (w->depth > MAX_SEGS) {
            skip_value(w); /* deeper than any pointer: cannot be wanted */
            return;
        }
        container(w, idx);
    } else if (c == '"') {
        int esc = 0;
        const char *q = string_end(w->p + 1, w->end, &esc);
        if (q == NULL) {
            w->stop = 1;
            return;
        }
        const char *s = w->p + 1;
        size_t len = (size_t)(q - s);
        if (esc) {
            char *u = kt_arena_alloc(w->arena, len + 1);
            if (u == NULL) {
                w->err = KT_ENOMEM;
                return;
            }
            long ul = kt_json_unescape(s, len, u);
            if (ul >= 0) { /* yajl checked the body: a bad escape cannot be, but is kept raw */
                len = (size_t)ul;
                s = u;
            }
        }
        w->p = q + 1;
        scalar(w, idx, s, len);
    } else {
        const char *s = w->p;
        while (w->p < w->end && *w->p != ',' && *w->p != '}' && *w->p != ']' && *w->p != ' ' &&
               *w->p != '\n' && *w->p != '\r' && *w->p != '\t') {
            w->p++;
        }
        size_t len = (size_t)(w->p - s);
        if (len == 0) {
            w->stop = 1;
            return;
        }
        scalar(w, idx, len == 4 && memcmp(s, "null", 4) == 0 ? NULL : s, len);
    }
}

/* ---- pointers and walkers ---- */

/* Split pointer into d->segs (RFC 6901: ~1 is '/', ~0 is '~'), into the arena. */
static int split_pointer(struct kt_arena *a, struct tdef *d, const char *ptr)
{
    memset(d, 0, sizeof(*d));
    d->wseg = -1;
    if (*ptr != '/') {
        d->nsegs = -1;
        return -1;
    }
    while (*ptr == '/' && d->nsegs < MAX_SEGS) {
        const char *s = ptr + 1, *e = strchr(s, '/');
        size_t len = e != NULL ? (size_t)(e - s) : strlen(s);
        char *seg = kt_arena_alloc(a, len + 1);
        size_t n = 0;
        if (seg == NULL) {
            d->nsegs = -1;
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
            d->wseg = d->wild ? -1 : d->nsegs; /* aligned only with a single '*' */
            d->wild = 1;
        }
        long idx = n > 0 && n < 10 ? 0 : -1;
        for (size_t i = 0; i < n && idx >= 0; i++) {
            idx = seg[i] >= '0' && seg[i] <= '9' ? idx * 10 + (seg[i] - '0') : -1;
        }
        d->segidx[d->nsegs] = n == 1 && seg[0] == '*' ? -2 : idx;
        d->segs[d->nsegs] = seg;
        d->seglen[d->nsegs++] = n;
        ptr = s + len;
    }
    if (d->wseg == d->nsegs - 1) {
        d->wseg = -1; /* a trailing '*' flattens: no entries for missing values */
    }
    return 0;
}

/* Walk json once for the n pointers defs; outs[i] gets pointer i's value. */
static int walk_run(const struct tdef *defs, int n, struct kt_arena *a, const char *json,
                    size_t len, struct kt_value *outs)
{
    struct target stack_ts[64];
    uint16_t stack_act[(MAX_SEGS + 2) * 64];
    struct target *ts = n <= 64 ? stack_ts : calloc((size_t)n, sizeof(*ts));
    uint16_t *act = n <= 64 ? stack_act : calloc((size_t)(MAX_SEGS + 2) * (size_t)n, 2);
    struct walk w;

    for (int i = 0; i < n; i++) {
        memset(&outs[i], 0, sizeof(outs[i]));
    }
    if (json == NULL || n <= 0 || n > 65535 || ts == NULL || act == NULL) {
        if (ts != stack_ts) {
            free(ts);
        }
        if (act != stack_act) {
            free(act);
        }
        return json == NULL || n <= 0 ? 0 : KT_ENOMEM;
    }
    memset(ts, 0, (size_t)n * sizeof(*ts));
    for (int d = 0; d < MAX_SEGS + 2; d++) {
        w.act[d] = act + (size_t)d * (size_t)n;
        w.nact[d] = 0;
    }
    for (int i = 0; i < n; i++) {
        ts[i].d = &defs[i];
        ts[i].cap_depth = -1;
        ts[i].elem_depth = -1;
        w.act[0][i] = (uint16_t)i;
    }
    w.nact[0] = n;
    w.json = json;
    w.p = json;
    w.end = json + len;
    w.depth = 0;
    w.t = ts;
    w.nt = n;
    w.arena = a;
    w.err = 0;
    w.stop = 0;
    ws(&w);
    value(&w);
    int rc = w.err;
    for (int i = 0; rc == 0 && i < n; i++) {
        if (defs[i].wild && ts[i].n > 0) {
            outs[i] = (struct kt_value){.kind = KT_V_LIST, .v = ts[i].vals, .n = ts[i].n};
        } else if (ts[i].n > 0) {
            outs[i] = (struct kt_value){.kind = KT_V_STR, .s = ts[i].vals[0]};
        }
    }
    if (ts != stack_ts) {
        free(ts);
    }
    if (act != stack_act) {
        free(act);
    }
    return rc;
}

int field_walk(struct kt_arena *a, const char *json, size_t len, const char *const *ptrs, int n,
               struct kt_value *outs)
{
    struct tdef defs[64];
    n = n < 64 ? n : 64;
    for (int i = 0; i < n; i++) {
        split_pointer(a, &defs[i], ptrs[i]); /* a bad pointer never matches */
    }
    return walk_run(defs, n, a, json, len, outs);
}

/* A walker keeps its pointers split once. */
struct field_walker {
    struct tdef *defs;    /* split pointers */
    int n;                /* count */
    struct kt_arena segs; /* their segments */
};

struct field_walker *field_walker_create(const char *const *ptrs, int n)
{
    struct field_walker *fw = calloc(1, sizeof(*fw));
    if (fw == NULL || (fw->defs = calloc((size_t)n + 1, sizeof(*fw->defs))) == NULL) {
        free(fw);
        return NULL;
    }
    fw->n = n;
    for (int i = 0; i < n; i++) {
        split_pointer(&fw->segs, &fw->defs[i], ptrs[i]);
    }
    return fw;
}

void field_walker_destroy(struct field_walker *fw)
{
    if (fw != NULL) {
        kt_arena_free(&fw->segs);
        free(fw->defs);
        free(fw);
    }
}

int field_walker_run(const struct field_walker *fw, struct kt_arena *a, const char *json,
                     size_t len, struct kt_value *outs)
{
    return walk_run(fw->defs, fw->n, a, json, len, outs);
}
