/*
 * rules_compile.c: condition text to a tree. Macros are inlined, lists expanded, field names
 * resolved to accessor ids and regexes compiled here, once, so evaluation does no lookups.
 *
 * Grammar: expr = and {"or" and}; and = unary {"and" unary}; unary = "not" unary | primary;
 * primary = "(" expr ")" | MACRO | FIELD OP [VALUE | "(" VALUE {"," VALUE} ")"].
 *
 * Rule files are input: a condition must not be able to overflow the stack or exhaust memory.
 * The parser counts its nesting (parentheses, `not`, macros inlined) and each node its height,
 * and both stop at COND_MAX_DEPTH, so neither the parser nor any later walk of a tree
 * (evaluation, prefilter, freeing) recurses deeper than that, whatever the file. A chain of
 * `and` (or `or`) terms becomes a balanced tree, so its length adds only log2(terms) to the
 * height: 40000 terms are 16 levels, not 40000. Macro inlining and list expansion can grow
 * a small file exponentially (a macro naming the previous one twice, 24 times), so the rule
 * set counts the nodes, values and regexes it builds and stops at COND_MAX_NODES,
 * COND_MAX_VALUES and COND_MAX_REGEXES (each some hundred times what the default pack needs:
 * 1770 nodes, 1815 values, 5 regexes; at most about 30 MB, built in a twentieth of a second).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

struct parser {
    struct kt_ruleset *rs;
    const char *p; /* next character */
    char *err;     /* message buffer */
    size_t errlen;
    int depth; /* macro nesting, to catch cycles */
    int nest;  /* parentheses, `not`s and macros open (COND_MAX_DEPTH) */
};

/* Enter one level of nesting; -1 (with the error set) past COND_MAX_DEPTH. */
static int nest_enter(struct parser *ps)
{
    if (++ps->nest > COND_MAX_DEPTH) {
        snprintf(ps->err, ps->errlen,
                 "condition nested deeper than %d (parentheses, not, macros) near '%.20s'",
                 COND_MAX_DEPTH, ps->p);
        return -1;
    }
    return 0;
}

/* Count one more value built (lists expanded); -1 (with the error set) past the budget. */
static int values_budget(struct parser *ps)
{
    if (++ps->rs->cond_values > COND_MAX_VALUES) {
        snprintf(ps->err, ps->errlen,
                 "lists expand to more than %d values in the rule set (lists nested in lists?)",
                 COND_MAX_VALUES);
        return -1;
    }
    return 0;
}

static void skip_ws(struct parser *ps)
{
    while (isspace((unsigned char)*ps->p)) {
        ps->p++;
    }
}

static int is_word(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-' || c == ':' || c == '/' ||
           c == '*' || c == '@' || c == '%';
}

/* A word; with brackets for field names like ka.uri.param[command] (bracket text kept). */
static size_t word_len(const char *p)
{
    size_t n = 0;
    while (is_word(p[n])) {
        n++;
    }
    if (n > 0 && p[n] == '[') {
        const char *close = strchr(p + n, ']');
        if (close != NULL) {
            n = (size_t)(close - p) + 1;
        }
    }
    return n;
}

static int keyword(struct parser *ps, const char *kw)
{
    size_t n = strlen(kw);
    skip_ws(ps);
    if (strncmp(ps->p, kw, n) == 0 && !is_word(ps->p[n]) && ps->p[n] != '[') {
        ps->p += n;
        return 1;
    }
    return 0;
}

static const struct {
    const char *text;
    int op;
} ops[] = {
    {"==", OP_EQ},
    {"=", OP_EQ},
    {"!=", OP_NE},
    {"<=", OP_LE},
    {"<", OP_LT},
    {">=", OP_GE},
    {">", OP_GT},
    {"contains", OP_CONTAINS},
    {"icontains", OP_ICONTAINS},
    {"startswith", OP_STARTSWITH},
    {"endswith", OP_ENDSWITH},
    {"glob", OP_GLOB},
    {"in_cidr", OP_IN_CIDR},
    {"in", OP_IN},
    {"intersects", OP_INTERSECTS},
    {"pmatch", OP_PMATCH},
    {"exists", OP_EXISTS},
    {"regex", OP_REGEX},
};

/* The operator named exactly text, or -1. */
static int op_named(const char *text)
{
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(ops[i].text, text) == 0) {
            return ops[i].op;
        }
    }
    return -1;
}

int cond_op_known(const char *text)
{
    return op_named(text) >= 0 && op_named(text) != OP_EXISTS;
}

int cond_op_is_set(const char *text)
{
    int op = op_named(text);
    return op == OP_IN || op == OP_INTERSECTS || op == OP_PMATCH || op == OP_IN_CIDR;
}

/* The operator at ps->p, or -1 (not consumed). */
static int parse_op(struct parser *ps)
{
    skip_ws(ps);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        size_t n = strlen(ops[i].text);
        if (strncmp(ps->p, ops[i].text, n) != 0) {
            continue;
        }
        if (isalpha((unsigned char)ops[i].text[0]) && is_word(ps->p[n])) {
            continue;
        }
        ps->p += n;
        return ops[i].op;
    }
    return -1;
}

/* Order items by name, for find: NUL-terminated names compare as (name, len) keys do. */
static int item_cmp(const void *a, const void *b)
{
    return strcmp(((const struct item *)a)->name, ((const struct item *)b)->name);
}

void items_sort(struct item *items, size_t n)
{
    if (n > 1) {
        qsort(items, n, sizeof(*items), item_cmp);
    }
}

/* The item named name[0 .. len) among items sorted by items_sort, or NULL: a binary search,
 * since every value of every `in (...)` is looked up as a possible list name. */
static struct item *find(struct item *items, size_t n, const char *name, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *k = items[mid].name;
        int c = strncmp(k, name, len);
        if (c == 0 && k[len] == '\0') {
            return &items[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid; /* c > 0, or k is longer: name, a prefix of it, sorts first */
        }
    }
    return NULL;
}

/* Append a copy of s to the node's values; arrays grow by doubling (their capacity is the
 * next power of two of nvals), so a long expanded list costs linear time. */
static int push_val(struct parser *ps, struct node *nd, const char *s, size_t len)
{
    if (values_budget(ps) != 0) {
        return -1;
    }
    if ((nd->nvals & (nd->nvals - 1)) == 0) { /* 0, 1, 2, 4...: full */
        size_t cap = nd->nvals == 0 ? 1 : 2 * nd->nvals;
        char **v = realloc(nd->vals, cap * sizeof(*v));
        if (v == NULL) {
            return -1;
        }
        nd->vals = v;
        size_t *l = realloc(nd->lens, cap * sizeof(*l));
        if (l == NULL) {
            return -1;
        }
        nd->lens = l;
    }
    nd->lens[nd->nvals] = len;
    nd->vals[nd->nvals] = strndup(s, len);
    return nd->vals[nd->nvals++] != NULL ? 0 : -1;
}

/* Add a value, expanding list names (recursively, at most 16 lists deep: deeper is a list
 * that names itself, through others or not). */
static int add_value(struct parser *ps, struct node *nd, const char *s, size_t len, int depth)
{
    struct item *l = find(ps->rs->lists, ps->rs->nlists, s, len);
    if (l == NULL) {
        return push_val(ps, nd, s, len);
    }
    if (depth >= 16) {
        snprintf(ps->err, ps->errlen, "lists nested deeper than 16 (list %s names itself?)",
                 l->name);
        return -1;
    }
    for (size_t i = 0; i < l->nvalues; i++) {
        if (add_value(ps, nd, l->values[i], strlen(l->values[i]), depth + 1) != 0) {
            return -1;
        }
    }
    return 0;
}

/* One value: a quoted string or a bare word. */
static int parse_value(struct parser *ps, struct node *nd, int expand)
{
    skip_ws(ps);
    char q = *ps->p;
    if (q == '"' || q == '\'') {
        const char *s = ++ps->p;
        char *buf = malloc(strlen(s) + 1);
        size_t n = 0;
        if (buf == NULL) {
            return -1;
        }
        while (*ps->p != '\0' && *ps->p != q) {
            if (*ps->p == '\\' && ps->p[1] != '\0') {
                ps->p++;
            }
            buf[n++] = *ps->p++;
        }
        if (*ps->p != q) {
            free(buf);
            snprintf(ps->err, ps->errlen, "unterminated string");
            return -1;
        }
        ps->p++;
        int rc = push_val(ps, nd, buf, n);
        free(buf);
        return rc;
    }
    size_t n = 0;
    while (ps->p[n] != '\0' && !isspace((unsigned char)ps->p[n]) && ps->p[n] != ',' &&
           ps->p[n] != ')' && ps->p[n] != '(') {
        n++;
    }
    if (n == 0) {
        snprintf(ps->err, ps->errlen, "expected a value near '%.20s'", ps->p);
        return -1;
    }
    int rc = expand ? add_value(ps, nd, ps->p, n, 0) : push_val(ps, nd, ps->p, n);
    ps->p += n;
    return rc;
}

/* A node over a and b (owned); NULL (with the error set) out of memory or past the rule set's
 * COND_MAX_NODES, and then a and b are freed. */
static struct node *new_node(struct parser *ps, int kind, struct node *a, struct node *b)
{
    struct node *n = NULL;
    if (++ps->rs->cond_nodes > COND_MAX_NODES) {
        snprintf(ps->err, ps->errlen,
                 "conditions have more than %d terms in the rule set once macros are inlined "
                 "(macros that use others several times?)",
                 COND_MAX_NODES);
    } else {
        n = calloc(1, sizeof(*n));
    }
    int ha = a != NULL ? a->height : 0, hb = b != NULL ? b->height : 0;
    int height = 1 + (ha > hb ? ha : hb);
    if (n != NULL && height > COND_MAX_DEPTH) {
        snprintf(ps->err, ps->errlen,
                 "condition nested deeper than %d (parentheses, not, macros, and/or chains)",
                 COND_MAX_DEPTH);
        free(n);
        n = NULL;
    }
    if (n == NULL) {
        node_free(a);
        node_free(b);
        return NULL;
    }
    n->height = height;
    n->kind = kind;
    n->a = a;
    n->b = b;
    return n;
}

void node_free(struct node *n)
{
    if (n == NULL) {
        return;
    }
    node_free(n->a);
    node_free(n->b);
    for (size_t i = 0; i < n->nvals; i++) {
        free(n->vals[i]);
    }
    free(n->vals);
    free(n->lens);
    free(n->f.arg);
    pcre2_code_free(n->re);
    free(n->cidrs);
    free(n);
}

/* Pointer fields of one body are read together, in one walk: register rel under slot. */
static int group_add(struct kt_ruleset *rs, int body, const char *rel, int slot)
{
    struct ptr_group *g = &rs->groups[body];
    const char **nrel = realloc(g->rel, (size_t)(g->n + 1) * sizeof(*nrel));
    if (nrel == NULL) {
        return -1;
    }
    g->rel = nrel;
    int *nslot = realloc(g->slot, (size_t)(g->n + 1) * sizeof(*nslot));
    if (nslot == NULL) {
        return -1;
    }
    g->slot = nslot;
    g->rel[g->n] = rel;
    g->slot[g->n++] = slot;
    return 0;
}

static int fref_new(struct kt_ruleset *rs, struct fref *f, char *arg, const char *ptr);

/* The field table's id of name[0 .. len) ("ka.verb", "ka.uri.param[command]"), with its
 * pointer in *ptr and its "[ARG]" in *br (NULL without one); -1 when it names no field or
 * takes no such argument. Allocates nothing. */
static int fref_check(const char *name, size_t len, const char **ptr, const char **br)
{
    *br = memchr(name, '[', len);
    size_t base = *br != NULL ? (size_t)(*br - name) : len;
    int takes_arg = 0;
    int id = field_lookup(name, base, &takes_arg, ptr);
    if (id < 0 || (takes_arg < 2 && takes_arg != (*br != NULL))) {
        return -1;
    }
    if (*br != NULL && (len - base < 2 || name[len - 1] != ']')) {
        return -1; /* "[" without its "]" (a by: list's item is any text) */
    }
    if (takes_arg == 3 && *br != NULL) { /* an optional index: digits */
        if (len - base <= 2 || len - base > 8) {
            return -1;
        }
        for (const char *p = *br + 1; p < name + len - 1; p++) {
            if (*p < '0' || *p > '9') {
                return -1;
            }
        }
    }
    return id;
}

int cond_field_known(const char *name)
{
    const char *ptr = NULL, *br = NULL;
    size_t len = strlen(name);
    return fref_check(name, len, &ptr, &br) >= 0 && memchr(name, ' ', len) == NULL &&
           (br == NULL || memchr(br + 1, '[', len - (size_t)(br + 1 - name)) == NULL) &&
           (br == NULL || memchr(br, ']', len - (size_t)(br - name) - 1) == NULL);
}

const char *fref_strerror(int rc)
{
    return rc == KT_EFULL
               ? "more than " COND_STR(COND_MAX_FIELDS) " distinct fields in the rule set"
               : "unknown field";
}

int fref_resolve(struct kt_ruleset *rs, const char *name, size_t len, struct fref *f)
{
    const char *ptr = NULL, *br = NULL;
    memset(f, 0, sizeof(*f));
    f->id = fref_check(name, len, &ptr, &br);
    if (f->id < 0) {
        return -1;
    }
    size_t base = br != NULL ? (size_t)(br - name) : len;
    char *arg = NULL; /* the ruleset's copy: pointers into it live as long as the ruleset */
    if (br != NULL) {
        char **owned = realloc(rs->owned, (rs->nowned + 1) * sizeof(*owned));
        if (owned == NULL) {
            return -1;
        }
        rs->owned = owned;
        if ((arg = owned[rs->nowned] = strndup(br + 1, len - base - 2)) == NULL) {
            return -1;
        }
        rs->nowned++;
    }
    /* the same field (and argument) named again shares its cache slot and its walk target:
     * read once per event however many rules name it */
    for (size_t i = 0; i < rs->nrefs; i++) {
        const struct fref *r = &rs->refs[i];
        if (r->id == f->id &&
            (r->arg == NULL ? arg == NULL : arg != NULL && strcmp(r->arg, arg) == 0)) {
            *f = *r;
            f->arg = arg != NULL ? strdup(arg) : NULL; /* the node's own copy */
            return arg != NULL && f->arg == NULL ? -1 : 0;
        }
    }
    if (rs->nrefs == COND_MAX_FIELDS) {
        return KT_EFULL; /* the search above is linear, and each event walks every pointer */
    }
    int rc = fref_new(rs, f, arg, ptr);
    if (rc != 0) {
        return rc;
    }
    struct fref *refs = realloc(rs->refs, (rs->nrefs + 1) * sizeof(*refs));
    if (refs == NULL) {
        return -1;
    }
    rs->refs = refs;
    refs[rs->nrefs] = *f;
    refs[rs->nrefs++].arg = arg;
    f->arg = arg != NULL ? strdup(arg) : NULL;
    return arg != NULL && f->arg == NULL ? -1 : 0;
}

/* Resolve a field seen for the first time: its cache slot and, for pointer fields, its walk
 * targets. arg is the ruleset's copy. */
static int fref_new(struct kt_ruleset *rs, struct fref *f, char *arg, const char *ptr)
{
    /* "@pod" and "@obj" mark the table's object fields; a pointer the rule gives
     * (jevt.value[ARG]) is never one, whatever its text */
    int object = ptr != NULL && ptr[0] == '@';
    f->arg = arg;
    f->ptr = ptr != NULL && ptr[0] == '\0' ? arg : (char *)ptr;
    f->slot = rs->nslots++;
    f->body = -1;
    if (object) {
        /* An object field: the pod spec of a pod, a workload template or a cronjob ("@pod"),
         * or the object itself ("@obj"); in the request body, or for patch in the response
         * body (the request is then a patch document). */
        static const char *const obj_prefix[] = {""};
        int pod = strncmp(f->ptr, "@pod", 4) == 0;
        const char *const *prefix = pod ? pod_spec_prefix : obj_prefix;
        int np = pod ? POD_PREFIXES : 1;
        for (int body = BODY_REQ; body <= BODY_RESP; body++) {
            for (int i = 0; i < np; i++) {
                char buf[512];
                snprintf(buf, sizeof(buf), "%s%s", prefix[i], f->ptr + 4);
                char **owned = realloc(rs->owned, (rs->nowned + 1) * sizeof(*owned));
                if (owned == NULL) {
                    return -1;
                }
                rs->owned = owned;
                if ((owned[rs->nowned] = strdup(buf)) == NULL) {
                    return -1;
                }
                int slot = rs->nslots++;
                if (group_add(rs, body, owned[rs->nowned++], slot) != 0) {
                    return -1;
                }
                f->alt_slot[f->nalt] = slot;
                f->alt_body[f->nalt++] = body;
            }
        }
        return 0;
    }
    f->body = field_body(f->ptr, &f->rel);
    if (f->body >= 0 && group_add(rs, f->body, f->rel, f->slot) != 0) {
        return -1;
    }
    return 0;
}

static struct node *parse_expr(struct parser *ps);

/* in_cidr: every value (lists expanded) as a binary prefix, once; a bad one is a rule error. */
static int compile_cidrs(struct parser *ps, struct node *nd)
{
    if (nd->nvals == 0) {
        snprintf(ps->err, ps->errlen, "'in_cidr' needs at least one prefix");
        return -1;
    }
    if ((nd->cidrs = calloc(nd->nvals, sizeof(*nd->cidrs))) == NULL) {
        return -1;
    }
    for (size_t i = 0; i < nd->nvals; i++) {
        if (cidr_parse(nd->vals[i], nd->lens[i], &nd->cidrs[i]) != 0) {
            snprintf(ps->err, ps->errlen,
                     "bad CIDR \"%s\" (want ADDRESS/BITS, IPv4 or IPv6, or one address)",
                     nd->vals[i]);
            return -1;
        }
    }
    return 0;
}

static struct node *parse_macro(struct parser *ps, struct item *m)
{
    if (ps->depth > 32) {
        snprintf(ps->err, ps->errlen, "macro %s refers to itself", m->name);
        return NULL;
    }
    struct parser sub = {ps->rs, m->cond, ps->err, ps->errlen, ps->depth + 1, ps->nest};
    if (nest_enter(&sub) != 0) {
        return NULL;
    }
    struct node *n = parse_expr(&sub);
    skip_ws(&sub);
    if (n != NULL && *sub.p != '\0') {
        snprintf(ps->err, ps->errlen, "macro %s: unexpected '%.20s'", m->name, sub.p);
        node_free(n);
        return NULL;
    }
    return n;
}

static struct node *parse_primary(struct parser *ps)
{
    skip_ws(ps);
    if (*ps->p == '(') {
        if (nest_enter(ps) != 0) {
            return NULL;
        }
        ps->p++;
        struct node *n = parse_expr(ps);
        ps->nest--;
        skip_ws(ps);
        if (n == NULL || *ps->p != ')') {
            if (n != NULL) {
                snprintf(ps->err, ps->errlen, "missing ')' near '%.20s'", ps->p);
            }
            node_free(n);
            return NULL;
        }
        ps->p++;
        return n;
    }
    size_t len = word_len(ps->p);
    if (len == 0) {
        snprintf(ps->err, ps->errlen, "expected a field or macro near '%.20s'", ps->p);
        return NULL;
    }
    const char *name = ps->p;
    ps->p += len;
    const char *after = ps->p;
    int op = parse_op(ps);
    if (op < 0) {
        /* a bare name: a macro */
        ps->p = after;
        struct item *m = find(ps->rs->macros, ps->rs->nmacros, name, len);
        if (m == NULL) {
            snprintf(ps->err, ps->errlen, "undefined macro or missing operator: %.*s", (int)len,
                     name);
            return NULL;
        }
        return parse_macro(ps, m);
    }
    struct node *n = new_node(ps, N_CMP, NULL, NULL);
    if (n == NULL) {
        return NULL;
    }
    n->op = op;
    int rc = fref_resolve(ps->rs, name, len, &n->f);
    if (rc != 0) {
        snprintf(ps->err, ps->errlen, "%s: %.*s", fref_strerror(rc), (int)len, name);
        node_free(n);
        return NULL;
    }
    if (op == OP_EXISTS) {
        return n;
    }
    skip_ws(ps);
    if (op == OP_IN || op == OP_INTERSECTS || op == OP_PMATCH || op == OP_IN_CIDR) {
        if (*ps->p != '(') {
            for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
                if (ops[i].op == op) {
                    snprintf(ps->err, ps->errlen, "'%s' needs a list in ( ) after %.*s",
                             ops[i].text, (int)len, name);
                }
            }
            node_free(n);
            return NULL;
        }
        ps->p++;
        skip_ws(ps);
        while (*ps->p != ')') {
            if (parse_value(ps, n, 1) != 0) {
                node_free(n);
                return NULL;
            }
            skip_ws(ps);
            if (*ps->p == ',') {
                ps->p++;
            } else if (*ps->p != ')') {
                snprintf(ps->err, ps->errlen, "expected ',' or ')' near '%.20s'", ps->p);
                node_free(n);
                return NULL;
            }
            skip_ws(ps);
        }
        ps->p++;
        if (op == OP_IN_CIDR && compile_cidrs(ps, n) != 0) {
            node_free(n);
            return NULL;
        }
        return n;
    }
    if (parse_value(ps, n, 0) != 0) {
        node_free(n);
        return NULL;
    }
    if (op == OP_REGEX && ++ps->rs->cond_regexes > COND_MAX_REGEXES) {
        snprintf(ps->err, ps->errlen,
                 "more than %d regexes in the rule set once macros are inlined", COND_MAX_REGEXES);
        node_free(n);
        return NULL;
    }
    if (op == OP_REGEX) {
        int code = 0;
        PCRE2_SIZE at = 0;
        n->re = pcre2_compile((PCRE2_SPTR)n->vals[0], PCRE2_ZERO_TERMINATED, 0, &code, &at, NULL);
        if (n->re == NULL) {
            char msg[128];
            pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof(msg));
            snprintf(ps->err, ps->errlen, "bad regex \"%s\" at offset %zu: %s", n->vals[0],
                     (size_t)at, msg);
            node_free(n);
            return NULL;
        }
        pcre2_jit_compile(n->re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    }
    return n;
}

static struct node *parse_unary(struct parser *ps)
{
    if (keyword(ps, "not")) {
        if (nest_enter(ps) != 0) {
            return NULL;
        }
        struct node *a = parse_unary(ps);
        ps->nest--;
        return a != NULL ? new_node(ps, N_NOT, a, NULL) : NULL;
    }
    return parse_primary(ps);
}

/* The terms t[lo .. hi) joined by kind as a balanced tree, left to right; takes the terms
 * (freed on failure). Recursion and height: log2(hi - lo). */
static struct node *balance(struct parser *ps, int kind, struct node **t, size_t lo, size_t hi)
{
    if (hi - lo == 1) {
        return t[lo];
    }
    size_t mid = lo + (hi - lo) / 2;
    struct node *a = balance(ps, kind, t, lo, mid);
    if (a == NULL) {
        for (size_t i = mid; i < hi; i++) {
            node_free(t[i]);
        }
        return NULL;
    }
    struct node *b = balance(ps, kind, t, mid, hi);
    if (b == NULL) {
        node_free(a);
        return NULL;
    }
    return new_node(ps, kind, a, b);
}

/* term {KEYWORD term}, with term parsed by next, as a balanced tree of kind. */
static struct node *parse_chain(struct parser *ps, const char *kw, int kind,
                                struct node *(*next)(struct parser *))
{
    struct node *one = next(ps), **t = NULL, *n = NULL;
    size_t nt = 0;
    if (one == NULL || !keyword(ps, kw)) {
        return one; /* a single term (or a failed one): the common case, no array */
    }
    for (struct node *x = one;;) {
        if ((nt & (nt - 1)) == 0) { /* full at 0, 1, 2, 4... */
            struct node **nx = realloc(t, (nt == 0 ? 2 : 2 * nt) * sizeof(*nx));
            if (nx == NULL) {
                node_free(x);
                goto out;
            }
            t = nx;
        }
        t[nt++] = x;
        if (nt > 1 && !keyword(ps, kw)) {
            break;
        }
        if ((x = next(ps)) == NULL) {
            goto out;
        }
    }
    n = balance(ps, kind, t, 0, nt);
    nt = 0; /* taken by balance */
out:
    for (size_t i = 0; i < nt; i++) {
        node_free(t[i]);
    }
    free(t);
    return n;
}

static struct node *parse_and(struct parser *ps)
{
    return parse_chain(ps, "and", N_AND, parse_unary);
}

static struct node *parse_expr(struct parser *ps)
{
    return parse_chain(ps, "or", N_OR, parse_and);
}

struct node *cond_compile(struct kt_ruleset *rs, const char *text, char *err, size_t errlen)
{
    struct parser ps = {rs, text, err, errlen, 0, 0};
    err[0] = '\0';
    struct node *n = parse_expr(&ps);
    skip_ws(&ps);
    if (n != NULL && *ps.p != '\0') {
        snprintf(err, errlen, "unexpected '%.30s' (a bad operator?)", ps.p);
        node_free(n);
        return NULL;
    }
    if (n == NULL && err[0] == '\0') {
        snprintf(err, errlen, "out of memory");
    }
    return n;
}
