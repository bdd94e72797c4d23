/*
 * rules_eval.c: evaluating compiled rules on decoded events, rendering outputs and alerts.
 *
 * Each field reference has a cache slot: within one event a field is read once however
 * many rules name it. Conditions short-circuit, so body fields are only read for events
 * whose cheap top-level tests (verb, resource) already passed.
 */
#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules_int.h"

struct slot {
    uint64_t gen;        /* event generation the value belongs to */
    struct kt_value val; /* the cached value */
};

/* A first_seen key recorded in the batch being run (hash of the correlation and key). */
struct seen_key {
    uint64_t h;   /* the hash, 0: free */
    uint64_t gen; /* the batch (kt_matcher.bgen) it belongs to */
};
enum { SEEN_SLOTS = 8192 }; /* a power of two, twice a full batch */

struct kt_matcher {
    const struct kt_ruleset *rs; /* borrowed */
    struct slot *slots;          /* one per field reference */
    uint64_t gen;                /* current event generation */
    pcre2_match_data *md;        /* for regex */
    pcre2_match_context *mctx;   /* match and depth limits */
    const struct kt_batch *b;    /* the batch being evaluated */
    const struct kt_event *ev;   /* the event being evaluated */
    int err;                     /* KT_ENOMEM seen */
    struct field_memo memo;      /* per-event results shared by fields */
    struct kt_value *outs;       /* scratch for a body walk's results */
    int nouts;                   /* its size */
    uint64_t bgen;               /* batches run: tags seen[] entries of the current one */
    struct seen_key *seen;       /* first_seen keys already recorded in this batch */
    uint64_t *rgen;              /* per rule: the generation its result below is for */
    unsigned char *rhit;         /* per rule: it matched that event (correlations reuse it) */
};

static const char *const prio_names[] = {"Emergency", "Alert",  "Critical",      "Error",
                                         "Warning",   "Notice", "Informational", "Debug"};

int kt_priority_parse(const char *s)
{
    for (int i = 0; i < 8; i++) {
        if (strcasecmp(s, prio_names[i]) == 0) {
            return i;
        }
    }
    return strcasecmp(s, "info") == 0 ? KT_PRIO_INFORMATIONAL : -1;
}

const char *kt_priority_name(int prio)
{
    return prio >= 0 && prio < 8 ? prio_names[prio] : "Unknown";
}

struct kt_matcher *kt_matcher_create(const struct kt_ruleset *rs)
{
    struct kt_matcher *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    m->rs = rs;
    m->slots = calloc((size_t)rs->nslots + 1, sizeof(*m->slots));
    m->md = pcre2_match_data_create(8, NULL);
    m->mctx = pcre2_match_context_create(NULL);
    m->rgen = calloc(rs->nrules + 1, sizeof(*m->rgen));
    m->rhit = calloc(rs->nrules + 1, 1);
    m->seen = rs->ncorrs > 0 ? calloc(SEEN_SLOTS, sizeof(*m->seen)) : NULL;
    if (m->slots == NULL || m->md == NULL || m->mctx == NULL || m->rgen == NULL ||
        m->rhit == NULL || (rs->ncorrs > 0 && m->seen == NULL)) {
        kt_matcher_destroy(m);
        return NULL;
    }
    /* no pattern may hang the pipeline: bound backtracking and recursion */
    pcre2_set_match_limit(m->mctx, 100000);
    pcre2_set_depth_limit(m->mctx, 1000);
    return m;
}

void kt_matcher_destroy(struct kt_matcher *m)
{
    if (m == NULL) {
        return;
    }
    free(m->slots);
    free(m->outs);
    free(m->rgen);
    free(m->rhit);
    free(m->seen);
    pcre2_match_data_free(m->md);
    pcre2_match_context_free(m->mctx);
    free(m);
}

/* Read every pointer field of one body in a single walk, into their slots. */
static void fill_group(struct kt_matcher *m, int body)
{
    const struct ptr_group *g = &m->rs->groups[body];
    struct kt_str text = field_body_text(m->b, m->ev, body);
    struct kt_arena *a = (struct kt_arena *)&m->b->arena;
    if (g->n > m->nouts) {
        struct kt_value *o = realloc(m->outs, (size_t)g->n * sizeof(*o));
        if (o == NULL) {
            m->err = KT_ENOMEM;
            return;
        }
        m->outs = o;
        m->nouts = g->n;
    }
    if (field_walker_run(g->walker, a, text.ptr, text.len, m->outs) != 0) {
        m->err = KT_ENOMEM;
        memset(m->outs, 0, (size_t)g->n * sizeof(*m->outs));
    }
    for (int i = 0; i < g->n; i++) {
        m->slots[g->slot[i]].val = m->outs[i];
        m->slots[g->slot[i]].gen = m->gen;
    }
}

static const struct kt_value *get(struct kt_matcher *m, const struct fref *f)
{
    if (f->nalt > 0) {
        /* an object field: the first alternative present, from the request body, or from the
         * response body for a patch */
        int body = kt_str_eq(m->ev->f[KT_F_VERB], "patch", 5) ? BODY_RESP : BODY_REQ;
        const struct kt_value *v = NULL;
        for (int i = 0; i < f->nalt; i++) {
            if (f->alt_body[i] != body) {
                continue;
            }
            struct slot *s = &m->slots[f->alt_slot[i]];
            if (s->gen != m->gen) {
                fill_group(m, body);
            }
            v = &s->val;
            if (v->kind != KT_V_NONE) {
                break;
            }
        }
        return v;
    }
    struct slot *s = &m->slots[f->slot];
    if (s->gen != m->gen && f->body >= 0) {
        fill_group(m, f->body);
    }
    if (s->gen != m->gen) {
        s->gen = m->gen;
        if (field_get(f, m->b, m->ev, &m->memo, &s->val) != 0) {
            m->err = KT_ENOMEM;
            s->val.kind = KT_V_NONE;
        }
    }
    return &s->val;
}

/* Both sides numbers? Then compare numerically. */
static int as_number(struct kt_str s, double *out)
{
    char buf[64];
    if (s.len == 0 || s.len >= sizeof(buf)) {
        return 0;
    }
    if (s.len <= 15) { /* plain integers (response codes, uids) without strtod */
        size_t i = s.ptr[0] == '-' && s.len > 1;
        int64_t v = 0;
        while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9') {
            v = v * 10 + (s.ptr[i++] - '0');
        }
        if (i == s.len) {
            *out = (double)(s.ptr[0] == '-' ? -v : v);
            return 1;
        }
    }
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = '\0';
    char *end = NULL;
    *out = strtod(buf, &end);
    return end == buf + s.len;
}

static int has_prefix(struct kt_str s, const char *p, size_t n)
{
    return s.len >= n && memcmp(s.ptr, p, n) == 0;
}

static int contains(struct kt_str s, const char *p, size_t n, int icase)
{
    if (n == 0) {
        return 1;
    }
    for (size_t i = 0; i + n <= s.len; i++) {
        if (icase ? strncasecmp(s.ptr + i, p, n) == 0 : memcmp(s.ptr + i, p, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static int in_set(const struct node *nd, struct kt_str s)
{
    for (size_t i = 0; i < nd->nvals; i++) {
        if (nd->lens[i] == s.len && memcmp(nd->vals[i], s.ptr, s.len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* One scalar against the node's value(s). */
static int cmp_one(struct kt_matcher *m, const struct node *nd, struct kt_str s)
{
    if (s.ptr == NULL) {
        return 0;
    }
    const char *v = nd->nvals > 0 ? nd->vals[0] : "";
    size_t vn = nd->nvals > 0 ? nd->lens[0] : 0;
    double a, b;
    switch (nd->op) {
    case OP_EQ:
        return s.len == vn && memcmp(s.ptr, v, vn) == 0;
    case OP_NE:
        return !(s.len == vn && memcmp(s.ptr, v, vn) == 0);
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE: {
        int c;
        if (as_number(s, &a) && as_number((struct kt_str){v, vn}, &b)) {
            c = a < b ? -1 : a > b;
        } else {
            size_t n = s.len < vn ? s.len : vn;
            c = memcmp(s.ptr, v, n);
            if (c == 0) {
                c = s.len < vn ? -1 : s.len > vn;
            }
        }
        return nd->op == OP_LT   ? c < 0
               : nd->op == OP_LE ? c <= 0
               : nd->op == OP_GT ? c > 0
                                 : c >= 0;
    }
    case OP_CONTAINS:
        return contains(s, v, vn, 0);
    case OP_ICONTAINS:
        return contains(s, v, vn, 1);
    case OP_STARTSWITH:
        return has_prefix(s, v, vn);
    case OP_ENDSWITH:
        return s.len >= vn && memcmp(s.ptr + s.len - vn, v, vn) == 0;
    case OP_GLOB: {
        char buf[1024];
        if (s.len >= sizeof(buf)) {
            return 0;
        }
        memcpy(buf, s.ptr, s.len);
        buf[s.len] = '\0';
        return fnmatch(v, buf, 0) == 0;
    }
    case OP_IN:
    case OP_INTERSECTS:
        return in_set(nd, s);
    case OP_PMATCH:
        for (size_t i = 0; i < nd->nvals; i++) {
            size_t n = nd->lens[i];
            if (has_prefix(s, nd->vals[i], n) &&
                (s.len == n || s.ptr[n] == '/' || (n > 0 && nd->vals[i][n - 1] == '/'))) {
                return 1;
            }
        }
        return 0;
    case OP_IN_CIDR:
        return cidr_match(nd->cidrs, nd->nvals, s);
    case OP_REGEX: {
        int rc = pcre2_match(nd->re, (PCRE2_SPTR)s.ptr, s.len, 0, 0, m->md, m->mctx);
        return rc >= 0; /* no match, and hitting a limit, are both false */
    }
    }
    return 0;
}

/* A comparison with Falco's semantics for missing and list-valued fields. */
static int eval_cmp(struct kt_matcher *m, const struct node *nd)
{
    const struct kt_value *v = get(m, &nd->f);
    if (v->kind == KT_V_NONE) {
        return 0;
    }
    if (nd->op == OP_EXISTS) { /* a list exists when some element has the value */
        if (v->kind == KT_V_STR) {
            return 1;
        }
        for (uint32_t i = 0; i < v->n; i++) {
            if (v->v[i].ptr != NULL) {
                return 1;
            }
        }
        return 0;
    }
    if (v->kind == KT_V_STR) {
        return cmp_one(m, nd, v->s);
    }
    if (nd->op == OP_IN || nd->op == OP_IN_CIDR) { /* every value is in the set */
        if (v->n == 0) {
            return 0;
        }
        for (uint32_t i = 0; i < v->n; i++) {
            if (!cmp_one(m, nd, v->v[i])) {
                return 0;
            }
        }
        return 1;
    }
    for (uint32_t i = 0; i < v->n; i++) { /* any value matches */
        if (cmp_one(m, nd, v->v[i])) {
            return 1;
        }
    }
    return 0;
}

static int eval(struct kt_matcher *m, const struct node *nd)
{
    switch (nd->kind) {
    case N_AND:
        return eval(m, nd->a) && eval(m, nd->b);
    case N_OR:
        return eval(m, nd->a) || eval(m, nd->b);
    case N_NOT:
        return !eval(m, nd->a);
    case N_CMP:
        return eval_cmp(m, nd);
    default:
        return 1;
    }
}

/* ---- output ---- */

struct sbuf {
    char *p;
    size_t len, cap;
    int err;
};

static void sb_put(struct sbuf *s, const char *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        while (cap < s->len + n + 1) {
            cap *= 2;
        }
        char *q = realloc(s->p, cap);
        if (q == NULL) {
            s->err = 1;
            return;
        }
        s->p = q;
        s->cap = cap;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void sb_json_str(struct sbuf *s, const char *p, size_t n)
{
    size_t run = 0; /* where the bytes that need no escape start */
    sb_put(s, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c != '"' && c != '\\' && c >= 0x20) {
            continue;
        }
        sb_put(s, p + run, i - run);
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(s, e, 2);
        } else {
            char e[8];
            snprintf(e, sizeof(e), "\\u%04x", c);
            sb_put(s, e, 6);
        }
        run = i + 1;
    }
    sb_put(s, p + run, n - run);
    sb_put(s, "\"", 1);
}

#define SB_LIT(sb, lit) sb_put((sb), (lit), sizeof(lit) - 1)

/* A value as text: lists joined with ',' (missing entries left out); missing as <NA>. */
static void sb_value(struct sbuf *s, const struct kt_value *v)
{
    size_t start = s->len;
    if (v->kind == KT_V_STR) {
        sb_put(s, v->s.ptr, v->s.len);
        return;
    }
    for (uint32_t i = 0; v->kind == KT_V_LIST && i < v->n; i++) {
        if (v->v[i].ptr == NULL) {
            continue;
        }
        if (s->len > start) {
            SB_LIT(s, ",");
        }
        sb_put(s, v->v[i].ptr, v->v[i].len);
    }
    if (s->len == start) {
        SB_LIT(s, "<NA>");
    }
}

/* A correlation firing's group and count, for %group and %count in its output. */
struct corr_vars {
    struct kt_str group; /* the group key (values joined with 0x1f: printed with '|') */
    uint32_t count;      /* observations, distinct values or steps */
};

/* Is the output text at p (after a '%') the variable name? */
static int is_var(const char *p, const char *name, size_t n)
{
    return strncmp(p, name, n) == 0 && !isalnum((unsigned char)p[n]) && p[n] != '.' &&
           p[n] != '_' && p[n] != '[';
}

/* What render() gives: the output text and fields JSON, and their compact form (see
 * struct kt_alert: fmt and vals), in the arena (fmt: the rule's own, when it has one). */
struct rendered {
    struct kt_str text, json, fmt, vals;
    char *made; /* the format alone (render() without a matcher), malloc'd */
};

/*
 * Render output (with its resolved fields outf) for the current event into *out; cv (or NULL)
 * gives a correlation's %group and %count (then without a compact form). The compact form's
 * format is the same for every alert of a rule: given as fmt (kt_rule_format() made it at
 * load), it is not built again. With m NULL only the format is made (no values are read),
 * into out->made.
 */
static int render(struct kt_matcher *m, const char *output, const struct fref *outf, size_t noutf,
                  const struct corr_vars *cv, const char *tags, const char *fmt, struct kt_arena *a,
                  struct rendered *out)
{
    struct sbuf t = {0}, j = {0}, p = {0}, keys = {0}, vals = {0};
    size_t k = 0, nj = 0, piece = 0; /* piece: where the text between fields starts */
    int values = m != NULL, format = fmt == NULL && cv == NULL;
    SB_LIT(&j, "{");
    if (format) {
        SB_LIT(&p, "{\"t\":");
        sb_json_str(&p, tags != NULL ? tags : "", tags != NULL ? strlen(tags) : 0);
        SB_LIT(&p, ",\"p\":[");
        SB_LIT(&keys, "],\"k\":[");
    }
    SB_LIT(&vals, "[");
    if (cv != NULL) {
        char num[16];
        SB_LIT(&j, "\"corr.group\":");
        size_t before = t.len;
        for (size_t i = 0; i < cv->group.len; i++) {
            sb_put(&t, cv->group.ptr[i] == 0x1f ? "|" : &cv->group.ptr[i], 1);
        }
        sb_json_str(&j, t.p != NULL ? t.p + before : "", t.len - before);
        t.len = before;
        snprintf(num, sizeof(num), "%u", cv->count);
        SB_LIT(&j, ",\"corr.count\":");
        sb_put(&j, num, strlen(num));
        nj = 2;
    }
    for (const char *o = output; *o != '\0';) {
        const char *pc = strchr(o, '%');
        if (pc == NULL) {
            sb_put(&t, o, strlen(o));
            break;
        }
        sb_put(&t, o, (size_t)(pc - o));
        if (!isalpha((unsigned char)pc[1])) { /* a literal '%' */
            SB_LIT(&t, "%");
            o = pc + 1;
            continue;
        }
        if (cv != NULL && (is_var(pc + 1, "group", 5) || is_var(pc + 1, "count", 5))) {
            if (pc[1] == 'g') {
                for (size_t i = 0; i < cv->group.len; i++) {
                    sb_put(&t, cv->group.ptr[i] == 0x1f ? "|" : &cv->group.ptr[i], 1);
                }
            } else {
                char num[16];
                snprintf(num, sizeof(num), "%u", cv->count);
                sb_put(&t, num, strlen(num));
            }
            o = pc + 6;
            continue;
        }
        if (k >= noutf) {
            sb_put(&t, pc, strlen(pc));
            break;
        }
        const struct fref *f = &outf[k++];
        if (format) {
            if (nj > 0) {
                SB_LIT(&p, ",");
                SB_LIT(&keys, ",");
            }
            sb_json_str(&p, t.p != NULL ? t.p + piece : "", t.len - piece);
        }
        if (nj > 0) {
            SB_LIT(&vals, ",");
        }
        if (nj++ > 0) {
            SB_LIT(&j, ",");
        }
        const char *name = field_name(f->id);
        size_t keyat = j.len;
        if (f->arg != NULL) {
            char full[256];
            snprintf(full, sizeof(full), "%s[%s]", name, f->arg);
            sb_json_str(&j, full, strlen(full));
        } else {
            sb_json_str(&j, name, strlen(name));
        }
        if (format) {
            sb_put(&keys, j.p + keyat, j.len - keyat);
        }
        SB_LIT(&j, ":");
        if (values) {
            const struct kt_value *v = get(m, f);
            size_t before = t.len, valat = j.len;
            sb_value(&t, v);
            if (v->kind == KT_V_NONE) {
                SB_LIT(&j, "null");
            } else {
                sb_json_str(&j, t.p + before, t.len - before);
            }
            sb_put(&vals, j.p + valat, j.len - valat);
        }
        piece = t.len;
        /* skip the field name in the output text */
        o = pc + 1;
        while (*o != '\0' && (isalnum((unsigned char)*o) || *o == '.' || *o == '_')) {
            o++;
        }
        if (*o == '[') {
            const char *close = strchr(o, ']');
            o = close != NULL ? close + 1 : o + strlen(o);
        }
    }
    SB_LIT(&j, "}");
    if (format) {
        if (nj > 0) {
            SB_LIT(&p, ",");
        }
        sb_json_str(&p, t.p != NULL ? t.p + piece : "", t.len - piece);
        sb_put(&p, keys.p, keys.len);
        SB_LIT(&p, "]}");
    }
    SB_LIT(&vals, "]");
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if (t.err || j.err || p.err || keys.err || vals.err) {
        rc = KT_ENOMEM;
    } else if (!values) {
        out->made = p.p;
        p.p = NULL;
    } else {
        out->text = (struct kt_str){kt_arena_dup(a, t.p != NULL ? t.p : "", t.len), t.len};
        out->json = (struct kt_str){kt_arena_dup(a, j.p, j.len), j.len};
        if (cv == NULL) { /* a firing's %group and %count are not fields: no compact form */
            out->fmt = fmt != NULL ? (struct kt_str){fmt, strlen(fmt)}
                                   : (struct kt_str){kt_arena_dup(a, p.p, p.len), p.len};
            out->vals = (struct kt_str){kt_arena_dup(a, vals.p, vals.len), vals.len};
        }
        if (out->text.ptr == NULL || out->json.ptr == NULL ||
            (cv == NULL && (out->fmt.ptr == NULL || out->vals.ptr == NULL))) {
            rc = KT_ENOMEM;
        }
    }
    free(t.p);
    free(j.p);
    free(p.p);
    free(keys.p);
    free(vals.p);
    return rc;
}

char *kt_rule_format(const char *output, const struct fref *outf, size_t noutf, const char *tags)
{
    struct rendered out;
    return render(NULL, output, outf, noutf, NULL, tags, NULL, NULL, &out) == 0 ? out.made : NULL;
}

static int add_alert(struct kt_batch *b, uint32_t ev, const struct rule *r,
                     const struct rendered *out)
{
    if (b->nalerts == b->capalerts) {
        size_t cap = b->capalerts ? b->capalerts * 2 : 64;
        struct kt_alert *na = realloc(b->alerts, cap * sizeof(*na));
        if (na == NULL) {
            return KT_ENOMEM;
        }
        b->alerts = na;
        b->capalerts = cap;
    }
    b->alerts[b->nalerts++] = (struct kt_alert){.event = ev,
                                                .rule = r->name,
                                                .priority = r->priority,
                                                .tags = r->tags,
                                                .output = out->text,
                                                .fields = out->json,
                                                .fmt = out->fmt,
                                                .vals = out->vals};
    return 0;
}

static int key_of(struct kt_batch *b, const struct kt_value *const *vs, size_t n,
                  struct kt_str *out);

/*
 * The suppression group of alert a (of the current event), when its rule or correlation
 * suppresses: the by-values joined with 0x1f; none: own, a correlation's group key (copied
 * into the arena), or "*" for a rule (all its matches). An event missing a by-field is in no
 * group: its alert stands alone. 0 or KT_ENOMEM.
 */
static int suppress_group(struct kt_matcher *m, struct kt_batch *b, const struct suppress *sp,
                          struct kt_str own, struct kt_alert *a)
{
    if (sp->for_us <= 0) {
        return 0;
    }
    if (sp->nby == 0) {
        if (own.ptr == NULL) {
            a->group = KT_STR_LIT("*");
        } else if ((a->group.ptr = kt_arena_dup(&b->arena, own.ptr, own.len)) == NULL) {
            return KT_ENOMEM;
        } else {
            a->group.len = own.len;
        }
        a->suppress_us = sp->for_us;
        return 0;
    }
    const struct kt_value *vs[8];
    for (size_t i = 0; i < sp->nby && i < 8; i++) {
        vs[i] = get(m, &sp->byf[i]);
    }
    int rc = key_of(b, vs, sp->nby < 8 ? sp->nby : 8, &a->group);
    if (rc == 1) {
        a->group = KT_STR_NULL;
        return 0;
    }
    a->suppress_us = sp->for_us;
    return rc;
}

/* Does the current event match a correlation step? A referenced rule already evaluated on
 * this event gives its result; otherwise its condition is evaluated here. */
static int step_matches(struct kt_matcher *m, const struct cstep *st)
{
    if (st->rule >= 0) {
        if (m->rgen[st->rule] == m->gen) {
            return m->rhit[st->rule];
        }
        return eval(m, m->rs->rules[st->rule].root);
    }
    return eval(m, st->root);
}

/* Bytes the text of v takes in a key (lists joined with ','), or -1 when v is missing. */
static long key_len(const struct kt_value *v)
{
    if (v->kind == KT_V_STR) {
        return v->s.ptr != NULL ? (long)v->s.len : -1;
    }
    if (v->kind != KT_V_LIST || v->n == 0) {
        return -1;
    }
    long n = (long)v->n - 1;
    for (uint32_t i = 0; i < v->n; i++) {
        n += (long)v->v[i].len;
    }
    return n;
}

/* Copy the text of v (key_len bytes) to p; returns the end. */
static char *key_put(char *p, const struct kt_value *v)
{
    if (v->kind == KT_V_STR) {
        if (v->s.len > 0) {
            memcpy(p, v->s.ptr, v->s.len);
        }
        return p + v->s.len;
    }
    for (uint32_t i = 0; i < v->n; i++) {
        if (i > 0) {
            *p++ = ',';
        }
        if (v->v[i].len > 0) {
            memcpy(p, v->v[i].ptr, v->v[i].len);
        }
        p += v->v[i].len;
    }
    return p;
}

/* The text of v for a hit: the value itself when it is one string (it lives as long as the
 * batch), else joined into the arena. 0, 1 when v is missing, KT_ENOMEM. */
static int key_of(struct kt_batch *b, const struct kt_value *const *vs, size_t n,
                  struct kt_str *out)
{
    long len = (long)n - 1;
    for (size_t i = 0; i < n; i++) {
        long l = key_len(vs[i]);
        if (l < 0) {
            return 1;
        }
        len += l;
    }
    if (n == 1 && vs[0]->kind == KT_V_STR) {
        *out = vs[0]->s;
        return 0;
    }
    char *p = kt_arena_alloc(&b->arena, (size_t)len + 1);
    if (p == NULL) {
        return KT_ENOMEM;
    }
    char *q = p;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            *q++ = 0x1f;
        }
        q = key_put(q, vs[i]);
    }
    *q = '\0';
    *out = (struct kt_str){p, (size_t)len};
    return 0;
}

static uint64_t value_hash(const struct kt_value *v)
{
    if (v->kind == KT_V_STR) {
        return kt_hash64(v->s.ptr != NULL ? v->s.ptr : "", v->s.len);
    }
    uint64_t h = 0x51ed27;
    for (uint32_t i = 0; v->kind == KT_V_LIST && i < v->n; i++) {
        h = (h ^ kt_hash64(v->v[i].ptr != NULL ? v->v[i].ptr : "", v->v[i].len)) *
            0x9e3779b97f4a7c15ULL;
    }
    return h;
}

/*
 * first_seen: was this key already recorded in the batch being run? A key's later sightings
 * in the same batch could only move its last sighting a few seconds (it is new, or not, at
 * the first one), so only the first is recorded: the analyzer copies, and the writer feeds,
 * one hit per key and batch instead of one per request of a busy service account. Keys are
 * told apart by a 64-bit hash. Records the key and returns 0 when it is new to the batch.
 */
static int seen_in_batch(struct kt_matcher *m, uint32_t k, const struct kt_value *const *vs,
                         size_t n)
{
    uint64_t h = ((uint64_t)k + 1) * 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ value_hash(vs[i])) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    h |= 1; /* 0 marks a free slot */
    for (size_t i = 0, p = h & (SEEN_SLOTS - 1); i < 16; i++, p = (p + 1) & (SEEN_SLOTS - 1)) {
        struct seen_key *e = &m->seen[p];
        if (e->gen != m->bgen) {
            *e = (struct seen_key){h, m->bgen};
            return 0;
        }
        if (e->h == h) {
            return 1;
        }
    }
    return 0; /* the neighbourhood is full: record it again, which is only slower */
}

/*
 * Record that event ev matched step s of correlation k: the group key (the step's by-values
 * joined with 0x1f) and, for distinct, the value; a single string is referenced where it
 * lies (the batch's bytes or arena), anything else joined into the arena. An event missing a
 * by-field (or the distinct field) has no group: no hit. 0 or KT_ENOMEM.
 */
static int add_hit(struct kt_matcher *m, struct kt_batch *b, uint32_t ev, uint32_t k, uint32_t s,
                   const struct corr *c, const struct cstep *st)
{
    const struct kt_value *vs[8];
    struct kt_str key, val = {"", 0};
    for (size_t i = 0; i < st->nby && i < 8; i++) {
        vs[i] = get(m, &st->byf[i]);
    }
    if (c->def.kind == KT_CORR_FIRST_SEEN && seen_in_batch(m, k, vs, st->nby < 8 ? st->nby : 8)) {
        return 0;
    }
    int rc = key_of(b, vs, st->nby < 8 ? st->nby : 8, &key);
    if (rc == 0 && c->field != NULL) {
        const struct kt_value *v = get(m, &c->fieldf);
        rc = key_of(b, &v, 1, &val);
    }
    if (rc != 0) {
        return rc == 1 ? 0 : rc;
    }
    if (b->nhits == b->caphits) {
        size_t cap = b->caphits ? b->caphits * 2 : 256;
        struct kt_corr_hit *nh = realloc(b->hits, cap * sizeof(*nh));
        if (nh == NULL) {
            return KT_ENOMEM;
        }
        b->hits = nh;
        b->caphits = cap;
    }
    b->hits[b->nhits++] =
        (struct kt_corr_hit){.event = ev, .corr = k, .step = s, .key = key, .value = val};
    return 0;
}

int kt_matcher_run(struct kt_matcher *m, struct kt_batch *b)
{
    const struct kt_ruleset *rs = m->rs;
    m->b = b;
    m->err = 0;
    m->bgen++;
    for (size_t i = 0; i < b->nrecs; i++) {
        struct kt_event *ev = &b->events[i];
        if (ev->reject != NULL) {
            continue;
        }
        m->ev = ev;
        m->gen++;
        m->memo.gen = m->gen;
        uint32_t vbit, sbit;
        uint64_t rbit;
        prefilter_event(rs, ev, &vbit, &rbit, &sbit);
        for (size_t k = 0; k < rs->nrules; k++) {
            const struct rule *r = &rs->rules[k];
            if (!r->enabled || r->priority > rs->opts.min_priority || (r->pf_verbs & vbit) == 0 ||
                (r->pf_res & rbit) == 0 || (r->pf_stage & sbit) == 0) {
                continue;
            }
            m->rgen[k] = m->gen;
            m->rhit[k] = (unsigned char)eval(m, r->root);
            if (!m->rhit[k]) {
                continue;
            }
            struct rendered out;
            if (render(m, r->output, r->outf, r->noutf, NULL, r->tags, r->fmt, &b->arena, &out) !=
                    0 ||
                add_alert(b, (uint32_t)i, r, &out) != 0 ||
                suppress_group(m, b, &r->sup, KT_STR_NULL, &b->alerts[b->nalerts - 1]) != 0) {
                return KT_ENOMEM;
            }
            ev->flags |= KT_EV_KEEP_RAW;
        }
        for (size_t k = 0; k < rs->ncorrs; k++) {
            const struct corr *c = &rs->corrs[k];
            if (!c->enabled || c->priority > rs->opts.min_priority) {
                continue;
            }
            for (size_t s = 0; s < c->nsteps; s++) {
                const struct cstep *st = &c->steps[s];
                if ((st->pf_verbs & vbit) == 0 || (st->pf_res & rbit) == 0 ||
                    (st->pf_stage & sbit) == 0 || !step_matches(m, st)) {
                    continue;
                }
                if (add_hit(m, b, (uint32_t)i, (uint32_t)k, (uint32_t)s, c, st) != 0) {
                    return KT_ENOMEM;
                }
            }
        }
        if (m->err != 0) {
            return m->err;
        }
    }
    return 0;
}

int kt_matcher_fire(struct kt_matcher *m, struct kt_batch *b, const struct kt_corr_hit *h,
                    const struct kt_corr_fire *f)
{
    const struct corr *c = &m->rs->corrs[h->corr];
    struct kt_event *ev = &b->events[h->event];
    struct corr_vars cv = {f->key, f->count};
    struct rendered out;
    m->b = b;
    m->ev = ev;
    m->gen++; /* another thread's caches, another moment: read the fields afresh */
    m->memo.gen = m->gen;
    m->err = 0;
    uint64_t *refs = kt_arena_alloc(&b->arena, (f->nrefs + 1) * sizeof(*refs));
    if (refs == NULL ||
        render(m, c->output, c->outf, c->noutf, &cv, c->tags, NULL, &b->arena, &out) != 0) {
        return KT_ENOMEM;
    }
    memcpy(refs, f->refs, f->nrefs * sizeof(*refs));
    struct rule shape = {.name = c->name, .priority = c->priority, .tags = c->tags};
    if (add_alert(b, h->event, &shape, &out) != 0) {
        return KT_ENOMEM;
    }
    b->alerts[b->nalerts - 1].refs = refs;
    b->alerts[b->nalerts - 1].nrefs = f->nrefs;
    if (suppress_group(m, b, &c->sup, f->key, &b->alerts[b->nalerts - 1]) != 0) {
        return KT_ENOMEM;
    }
    ev->flags |= KT_EV_KEEP_RAW;
    return m->err;
}

void kt_alert_print(FILE *out, const struct kt_batch *b, const struct kt_alert *a, int json)
{
    const struct kt_event *ev = &b->events[a->event];
    const struct kt_str ts = ev->f[KT_F_STAGE_TS];
    if (!json) {
        fprintf(out, "%.*s %s %s: %.*s\n", (int)ts.len, ts.ptr, kt_priority_name(a->priority),
                a->rule, (int)a->output.len, a->output.ptr);
        return;
    }
    const char *tags = a->tags != NULL ? a->tags : "";
    struct kt_alert_doc d = {.time = ts,
                             .rule = a->rule,
                             .priority = a->priority,
                             .output = a->output,
                             .fields = a->fields,
                             .tags = {tags, strlen(tags)},
                             .audit_id = ev->f[KT_F_AUDIT_ID],
                             .stage = ev->f[KT_F_STAGE]};
    struct kt_buf s = {0};
    if (kt_alert_json(&s, &d) == 0 && kt_buf_append(&s, "\n", 1) == 0) {
        fwrite(s.p, 1, s.len, out);
    }
    kt_buf_free(&s);
}
