/*
 * rules_load.c: reading rule files (libyaml) and merging their items as Falco does, then
 * compiling every rule. An error anywhere loads nothing.
 *
 * Items: `- list: NAME` with items; `- macro: NAME` with condition; `- rule: NAME` with desc,
 * condition, output, priority, tags, enabled, source, exceptions. A later item of the same
 * name replaces the earlier one, or with `append: true` (or `override: {KEY: append}`) adds
 * to it: list items, condition text, exceptions. A rule item with only `enabled` toggles it.
 *
 * Correlations: `- count: NAME`, `- distinct:`, `- sequence:`, `- first_seen:` (struct corr):
 * steps that reference a rule by name (its compiled condition is reused, enabled or not) or
 * give an inline condition, with their group-by fields, windows and thresholds. They are
 * compiled after every rule, so a step may name a rule defined in any file.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "rules_int.h"

struct loader {
    struct kt_ruleset *rs;
    yaml_document_t doc;
    const char *file;
    char *err;
    size_t errlen;
};

static const char *scalar(yaml_document_t *doc, yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE) {
        return NULL;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = scalar(doc, yaml_document_get_node(doc, p->key));
        if (k != NULL && strcmp(k, key) == 0) {
            return yaml_document_get_node(doc, p->value);
        }
    }
    return NULL;
}

static int fail(struct loader *ld, yaml_node_t *n, const char *item, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void free_strings(char **v, size_t n);

static int fail(struct loader *ld, yaml_node_t *n, const char *item, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ld->err, ld->errlen, "%s:%lu: %s%s%s", ld->file,
             n != NULL ? (unsigned long)n->start_mark.line + 1 : 0UL, item ? "item " : "",
             item ? item : "", msg);
    return KT_EPARSE;
}

/*
 * The sequence seq of plain values (scalars) as a NULL-terminated heap array in *out, count in
 * *n; what names the key in errors. No seq: an empty result (*out NULL). Anything else than a
 * sequence of scalars (a mapping among the items, a nested list) is a rule error here, at
 * load, so that nothing later sees an item that is not a string. 0, KT_EPARSE or KT_ENOMEM.
 */
static int strings_at(struct loader *ld, yaml_node_t *seq, const char *item, const char *what,
                      char ***out, size_t *n)
{
    yaml_document_t *doc = &ld->doc;
    *out = NULL;
    *n = 0;
    if (seq == NULL) {
        return 0;
    }
    if (seq->type != YAML_SEQUENCE_NODE) {
        return fail(ld, seq, item, ": %s: is a list of values", what);
    }
    size_t cap = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    char **v = calloc(cap + 1, sizeof(*v));
    if (v == NULL) {
        return KT_ENOMEM;
    }
    for (size_t i = 0; i < cap; i++) {
        yaml_node_t *x = yaml_document_get_node(doc, seq->data.sequence.items.start[i]);
        const char *s = scalar(doc, x);
        if (s == NULL || (v[i] = strdup(s)) == NULL) {
            free_strings(v, i);
            return s == NULL ? fail(ld, x, item, ": %s: item %zu is a %s, not a value", what, i + 1,
                                    x->type == YAML_MAPPING_NODE ? "mapping" : "list")
                             : KT_ENOMEM;
        }
    }
    *out = v;
    *n = cap;
    return 0;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

/* ---- names to positions (struct name_index) ---- */

typedef const char *(*name_fn)(const struct kt_ruleset *rs, size_t i);

static const char *list_name(const struct kt_ruleset *rs, size_t i)
{
    return rs->lists[i].name;
}

static const char *macro_name(const struct kt_ruleset *rs, size_t i)
{
    return rs->macros[i].name;
}

static const char *rule_name(const struct kt_ruleset *rs, size_t i)
{
    return rs->rules[i].name;
}

static size_t name_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return (size_t)h;
}

/* The position of the item called name, or SIZE_MAX. */
static size_t index_find(const struct kt_ruleset *rs, const struct name_index *ix, name_fn name_of,
                         const char *name)
{
    for (size_t h = name_hash(name); ix->cap > 0; h++) {
        size_t pos = ix->pos[h & (ix->cap - 1)];
        if (pos == 0) {
            break;
        }
        if (strcmp(name_of(rs, pos - 1), name) == 0) {
            return pos - 1;
        }
    }
    return SIZE_MAX;
}

static void index_place(const struct kt_ruleset *rs, struct name_index *ix, name_fn name_of,
                        size_t i)
{
    size_t h = name_hash(name_of(rs, i));
    while (ix->pos[h & (ix->cap - 1)] != 0) {
        h++;
    }
    ix->pos[h & (ix->cap - 1)] = i + 1;
}

/* Record the item at position n - 1 (named: it is the last of n), growing the table when half
 * full. 0 or KT_ENOMEM. */
static int index_add(const struct kt_ruleset *rs, struct name_index *ix, name_fn name_of, size_t n)
{
    if (2 * n <= ix->cap) {
        index_place(rs, ix, name_of, n - 1);
        return 0;
    }
    size_t cap = ix->cap > 0 ? 2 * ix->cap : 64;
    size_t *pos = calloc(cap, sizeof(*pos));
    if (pos == NULL) {
        return KT_ENOMEM;
    }
    free(ix->pos);
    ix->pos = pos;
    ix->cap = cap;
    for (size_t i = 0; i < n; i++) {
        index_place(rs, ix, name_of, i);
    }
    return 0;
}

static void index_free(struct name_index *ix)
{
    free(ix->pos);
    ix->pos = NULL;
    ix->cap = 0;
}

static struct item *list_find(struct kt_ruleset *rs, const char *name)
{
    size_t i = index_find(rs, &rs->ix_lists, list_name, name);
    return i != SIZE_MAX ? &rs->lists[i] : NULL;
}

static struct item *macro_find(struct kt_ruleset *rs, const char *name)
{
    size_t i = index_find(rs, &rs->ix_macros, macro_name, name);
    return i != SIZE_MAX ? &rs->macros[i] : NULL;
}

static struct rule *rule_find(const struct kt_ruleset *rs, const char *name)
{
    size_t i = index_find(rs, &rs->ix_rules, rule_name, name);
    return i != SIZE_MAX ? &rs->rules[i] : NULL;
}

/* A new item called name at the end of *items, recorded in ix; NULL out of memory. */
static struct item *item_add(struct kt_ruleset *rs, struct item **items, size_t *n,
                             struct name_index *ix, name_fn name_of, const char *name)
{
    struct item *it = realloc(*items, (*n + 1) * sizeof(**items));
    if (it == NULL) {
        return NULL;
    }
    *items = it;
    memset(&it[*n], 0, sizeof(it[*n]));
    if ((it[*n].name = strdup(name)) == NULL) {
        return NULL;
    }
    (*n)++;
    return index_add(rs, ix, name_of, *n) == 0 ? &it[*n - 1] : NULL;
}

/* Is KEY appended: `append: true`, or `override: {KEY: append}`? */
static int appends(struct loader *ld, yaml_node_t *m, const char *key)
{
    const char *a = scalar(&ld->doc, map_get(&ld->doc, m, "append"));
    if (a != NULL && strcmp(a, "true") == 0) {
        return 1;
    }
    const char *o = scalar(&ld->doc, map_get(&ld->doc, map_get(&ld->doc, m, "override"), key));
    return o != NULL && strcmp(o, "append") == 0;
}

static char *concat(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s != NULL) {
        snprintf(s, n, "%s %s", a, b);
    }
    return s;
}

/* Every key of mapping m is one of allowed (at most 64), and none is given twice. */
static int check_keys(struct loader *ld, yaml_node_t *m, const char *item,
                      const char *const *allowed)
{
    uint64_t seen = 0;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(&ld->doc, p->key);
        const char *k = scalar(&ld->doc, kn);
        int at = -1;
        for (int i = 0; allowed[i] != NULL && k != NULL && at < 0; i++) {
            at = strcmp(allowed[i], k) == 0 ? i : -1;
        }
        if (at < 0) {
            return fail(ld, kn, item, ": unknown key '%s'", k != NULL ? k : "?");
        }
        if (seen & (1ull << at)) {
            return fail(ld, kn, item, ": key '%s' given twice", k);
        }
        seen |= 1ull << at;
        /* a flag is true or false: anything else (yes, maybe) would be read as one silently */
        yaml_node_t *vn = yaml_document_get_node(&ld->doc, p->value);
        const char *v = scalar(&ld->doc, vn);
        if ((strcmp(k, "enabled") == 0 || strcmp(k, "append") == 0 || strcmp(k, "ordered") == 0) &&
            (v == NULL || (strcmp(v, "true") != 0 && strcmp(v, "false") != 0))) {
            return fail(ld, vn, item, ": %s: is true or false", k);
        }
    }
    return 0;
}

static int load_list(struct loader *ld, yaml_node_t *m, const char *name)
{
    static const char *const keys[] = {"list", "items", "append", "override", NULL};
    struct kt_ruleset *rs = ld->rs;
    if (check_keys(ld, m, name, keys) != 0) {
        return KT_EPARSE;
    }
    size_t n = 0;
    char **vals = NULL;
    int rc = strings_at(ld, map_get(&ld->doc, m, "items"), name, "items", &vals, &n);
    if (rc != 0) {
        return rc;
    }
    struct item *it = list_find(rs, name);
    if (appends(ld, m, "items")) {
        if (it == NULL) {
            free_strings(vals, n);
            return fail(ld, m, name, ": append to an undefined list");
        }
        char **nv = realloc(it->values, (it->nvalues + n + 1) * sizeof(*nv));
        if (nv == NULL) {
            free_strings(vals, n);
            return KT_ENOMEM;
        }
        if (n > 0) { /* an append without items has none (vals is NULL) */
            memcpy(nv + it->nvalues, vals, n * sizeof(*nv));
        }
        it->values = nv;
        it->nvalues += n;
        free(vals);
        return 0;
    }
    if (it == NULL &&
        (it = item_add(rs, &rs->lists, &rs->nlists, &rs->ix_lists, list_name, name)) == NULL) {
        free_strings(vals, n);
        return KT_ENOMEM;
    }
    free_strings(it->values, it->nvalues);
    it->values = vals;
    it->nvalues = n;
    return 0;
}

static int load_macro(struct loader *ld, yaml_node_t *m, const char *name)
{
    static const char *const keys[] = {"macro", "condition", "append", "override", NULL};
    struct kt_ruleset *rs = ld->rs;
    if (check_keys(ld, m, name, keys) != 0) {
        return KT_EPARSE;
    }
    const char *cond = scalar(&ld->doc, map_get(&ld->doc, m, "condition"));
    if (cond == NULL) {
        return fail(ld, m, name, ": a macro needs a condition");
    }
    struct item *it = macro_find(rs, name);
    char *text = NULL;
    if (appends(ld, m, "condition")) {
        if (it == NULL) {
            return fail(ld, m, name, ": append to an undefined macro");
        }
        text = concat(it->cond, cond);
    } else {
        if (it == NULL && (it = item_add(rs, &rs->macros, &rs->nmacros, &rs->ix_macros, macro_name,
                                         name)) == NULL) {
            return KT_ENOMEM;
        }
        text = strdup(cond);
    }
    if (text == NULL) {
        return KT_ENOMEM;
    }
    free(it->cond);
    it->cond = text;
    snprintf(it->where, sizeof(it->where), "%s:%lu", ld->file,
             (unsigned long)m->start_mark.line + 1);
    return 0;
}

/* Free an array of n resolved field references and their arguments; accepts NULL. */
static void frefs_free(struct fref *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].arg);
    }
    free(f);
}

static void suppress_free(struct suppress *sp)
{
    frefs_free(sp->byf, sp->byf != NULL ? sp->nby : 0);
    free_strings(sp->by, sp->nby);
    memset(sp, 0, sizeof(*sp));
}

static void rule_free_fields(struct rule *r)
{
    free(r->name);
    free(r->desc);
    free(r->cond);
    free(r->output);
    free(r->tags);
    free(r->source);
    free_strings(r->exc, r->nexc);
    node_free(r->root);
    frefs_free(r->outf, r->noutf);
    suppress_free(&r->sup);
    free(r->fmt);
}

/* v as a quoted condition value, '"' and '\' escaped as parse_value reads them. */
static void put_quoted(FILE *fp, const char *v)
{
    fputc('"', fp);
    for (; *v != '\0'; v++) {
        if (*v == '"' || *v == '\\') {
            fputc('\\', fp);
        }
        fputc(*v, fp);
    }
    fputc('"', fp);
}

/* One term "FIELD COMP VALUE" of an exception; a set operator takes a value or a list of
 * them, written ("a", "b"), any other one value. 0 or KT_EPARSE. */
static int put_term(struct loader *ld, FILE *fp, const char *name, const char *field,
                    const char *comp, yaml_node_t *v)
{
    yaml_document_t *doc = &ld->doc;
    int set = cond_op_is_set(comp);
    fprintf(fp, "%s %s ", field, comp);
    if (scalar(doc, v) != NULL) {
        fputs(set ? "(" : "", fp);
        put_quoted(fp, scalar(doc, v));
        fputs(set ? ")" : "", fp);
        return 0;
    }
    if (!set || v->type != YAML_SEQUENCE_NODE) {
        return fail(ld, v, name, ": exception value for %s %s: %s", field, comp,
                    set ? "a value or a list of values" : "one value");
    }
    fputc('(', fp);
    for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
        const char *x = scalar(doc, yaml_document_get_node(doc, *i));
        if (x == NULL) {
            return fail(ld, v, name, ": exception values for %s %s: a list of plain values", field,
                        comp);
        }
        fputs(i > v->data.sequence.items.start ? ", " : "", fp);
        put_quoted(fp, x);
    }
    fputc(')', fp);
    return 0;
}

/* One row of an exception's values as condition text in *out (heap): "(f1 c1 v1 and ...)",
 * or for a single (scalar) field "f c v". 0, KT_EPARSE or KT_ENOMEM. */
static int exception_row(struct loader *ld, const char *name, char **fields, size_t nf,
                         char **comps, size_t nc, int single, yaml_node_t *row, char **out)
{
    size_t size = 0;
    FILE *fp = open_memstream(out, &size);
    int rc = 0;
    if (fp == NULL) {
        return KT_ENOMEM;
    }
    if (single) {
        rc = put_term(ld, fp, name, fields[0], nc > 0 ? comps[0] : "in", row);
    } else if (row->type != YAML_SEQUENCE_NODE ||
               (size_t)(row->data.sequence.items.top - row->data.sequence.items.start) != nf) {
        rc = fail(ld, row, name, ": an exception's values row needs %zu values, one per field", nf);
    }
    for (size_t k = 0; !single && rc == 0 && k < nf; k++) {
        fputs(k == 0 ? "(" : " and ", fp);
        yaml_node_t *v = yaml_document_get_node(&ld->doc, row->data.sequence.items.start[k]);
        rc = put_term(ld, fp, name, fields[k], nc > 0 ? comps[k] : "=", v);
    }
    fputs(single ? "" : ")", fp);
    if (fclose(fp) != 0 && rc == 0) {
        rc = KT_ENOMEM;
    }
    if (rc != 0) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/*
 * Exceptions as condition text appended to *out: one "(f1 c1 v1 and f2 c2 v2)" per values
 * row. Each exception is {name, fields, comps, values}: fields a field or a list of them,
 * comps as many operators (default `=`, or `in` for a single field), values rows of one
 * value per field. Anything else is a rule error here. 0, KT_EPARSE or KT_ENOMEM.
 */
static int exceptions_text(struct loader *ld, yaml_node_t *list, const char *name, char ***out,
                           size_t *nout)
{
    static const char *const keys[] = {"name", "fields", "comps", "values", NULL};
    yaml_document_t *doc = &ld->doc;
    if (list == NULL) {
        return 0;
    }
    if (list->type != YAML_SEQUENCE_NODE) {
        return fail(ld, list, name, ": exceptions: is a list of {name, fields, comps, values}");
    }
    int rc = 0;
    for (yaml_node_item_t *it = list->data.sequence.items.start;
         rc == 0 && it < list->data.sequence.items.top; it++) {
        yaml_node_t *e = yaml_document_get_node(doc, *it);
        if (e->type != YAML_MAPPING_NODE) {
            return fail(ld, e, name, ": an exception is a mapping {name, fields, comps, values}");
        }
        if ((rc = check_keys(ld, e, name, keys)) != 0) {
            return rc;
        }
        yaml_node_t *fn = map_get(doc, e, "fields"), *cn = map_get(doc, e, "comps");
        yaml_node_t *values = map_get(doc, e, "values");
        const char *single = scalar(doc, fn), *scomp = scalar(doc, cn);
        char **fields = NULL, **comps = NULL, *text = NULL;
        size_t nf = 0, nc = 0;
        if (single != NULL) {
            rc = (fields = calloc(2, sizeof(*fields))) == NULL ||
                         (fields[0] = strdup(single)) == NULL
                     ? KT_ENOMEM
                     : 0;
            nf = 1;
        } else {
            rc = strings_at(ld, fn, name, "exception fields", &fields, &nf);
        }
        if (rc == 0 && scomp != NULL) {
            rc = (comps = calloc(2, sizeof(*comps))) == NULL || (comps[0] = strdup(scomp)) == NULL
                     ? KT_ENOMEM
                     : 0;
            nc = 1;
        } else if (rc == 0) {
            rc = strings_at(ld, cn, name, "exception comps", &comps, &nc);
        }
        if (rc == 0 && nf == 0) {
            rc = fail(ld, e, name, ": an exception needs fields:");
        } else if (rc == 0 && nc > 0 && nc != nf) {
            rc = fail(ld, cn, name, ": an exception needs one comps: operator per field");
        } else if (rc == 0 && values != NULL && values->type != YAML_SEQUENCE_NODE) {
            rc = fail(ld, values, name, ": exception values: is a list of rows");
        }
        for (size_t k = 0; rc == 0 && k < nf; k++) {
            if (!cond_field_known(fields[k])) {
                rc = fail(ld, fn, name, ": exception fields: unknown field '%s'", fields[k]);
            }
        }
        for (size_t k = 0; rc == 0 && k < nc; k++) {
            if (!cond_op_known(comps[k])) {
                rc = fail(ld, cn, name, ": exception comps: unknown operator '%s'", comps[k]);
            }
        }
        for (yaml_node_item_t *vi = values != NULL ? values->data.sequence.items.start : NULL;
             rc == 0 && vi != NULL && vi < values->data.sequence.items.top; vi++) {
            yaml_node_t *row = yaml_document_get_node(doc, *vi);
            char **nx = realloc(*out, (*nout + 1) * sizeof(*nx));
            if (nx == NULL) {
                rc = KT_ENOMEM;
                break;
            }
            *out = nx;
            if ((rc = exception_row(ld, name, fields, nf, comps, nc, single != NULL, row, &text)) ==
                0) {
                (*out)[(*nout)++] = text;
            }
        }
        free_strings(fields, nf);
        free_strings(comps, nc);
    }
    return rc;
}

/* The item's tags: joined with ',' into buf (cut at its size). 0, KT_EPARSE or KT_ENOMEM. */
static int tags_text(struct loader *ld, yaml_node_t *m, const char *name, char *buf, size_t size)
{
    char **tags = NULL;
    size_t nt = 0;
    int rc = strings_at(ld, map_get(&ld->doc, m, "tags"), name, "tags", &tags, &nt);
    buf[0] = '\0';
    for (size_t i = 0, len = 0; rc == 0 && i < nt && len < size; i++) {
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? "," : "", tags[i]);
    }
    free_strings(tags, nt);
    return rc;
}

static int load_suppress(struct loader *ld, yaml_node_t *m, const char *name, struct suppress *sp);

static int load_rule(struct loader *ld, yaml_node_t *m, const char *name)
{
    static const char *const keys[] = {"rule",
                                       "desc",
                                       "condition",
                                       "output",
                                       "priority",
                                       "tags",
                                       "enabled",
                                       "source",
                                       "exceptions",
                                       "suppress",
                                       "append",
                                       "override",
                                       "warn_evttypes",
                                       "skip-if-unknown-filter",
                                       NULL};
    struct kt_ruleset *rs = ld->rs;
    yaml_document_t *doc = &ld->doc;
    if (check_keys(ld, m, name, keys) != 0) {
        return KT_EPARSE;
    }
    const char *source = scalar(doc, map_get(doc, m, "source"));
    if (source != NULL && strcmp(source, "k8s_audit") != 0) {
        kt_info("rules", "%s: rule %s is for source %s, skipped", ld->file, name, source);
        return 0;
    }
    struct rule *r = rule_find(rs, name);
    const char *cond = scalar(doc, map_get(doc, m, "condition"));
    const char *enabled = scalar(doc, map_get(doc, m, "enabled"));
    int append = appends(ld, m, "condition") || appends(ld, m, "exceptions");
    if (r != NULL && (append || cond == NULL)) {
        /* append to, or enable/disable, an existing rule */
        if (cond != NULL) {
            char *c = concat(r->cond, cond);
            if (c == NULL) {
                return KT_ENOMEM;
            }
            free(r->cond);
            r->cond = c;
        }
        if (enabled != NULL) {
            r->enabled = strcmp(enabled, "false") != 0;
        }
        if (map_get(doc, m, "suppress") != NULL) {
            suppress_free(&r->sup);
            if (load_suppress(ld, m, name, &r->sup) != 0) {
                return KT_EPARSE;
            }
        }
        return exceptions_text(ld, map_get(doc, m, "exceptions"), name, &r->exc, &r->nexc);
    }
    if (r == NULL && (append || cond == NULL)) {
        return fail(ld, m, name, ": %s an undefined rule",
                    append ? "append to" : "no condition, or changes");
    }
    const char *output = scalar(doc, map_get(doc, m, "output"));
    const char *prio = scalar(doc, map_get(doc, m, "priority"));
    int p = prio != NULL ? kt_priority_parse(prio) : -1;
    if (output == NULL || p < 0) {
        return fail(ld, m, name, ": a rule needs an output and a priority (emergency ... debug)%s",
                    prio != NULL && p < 0 ? ", not that priority" : "");
    }
    char tagbuf[1024];
    int rc = tags_text(ld, m, name, tagbuf, sizeof(tagbuf));
    if (rc != 0) {
        return rc;
    }
    int added = r == NULL;
    if (r == NULL) {
        struct rule *nr = realloc(rs->rules, (rs->nrules + 1) * sizeof(*nr));
        if (nr == NULL) {
            return KT_ENOMEM;
        }
        rs->rules = nr;
        r = &rs->rules[rs->nrules++];
    } else {
        rule_free_fields(r);
    }
    memset(r, 0, sizeof(*r));
    char where[300];
    snprintf(where, sizeof(where), "%s:%lu", ld->file, (unsigned long)m->start_mark.line + 1);
    const char *desc = scalar(doc, map_get(doc, m, "desc"));
    r->name = strdup(name);
    r->desc = strdup(desc != NULL ? desc : "");
    r->cond = strdup(cond);
    r->output = strdup(output);
    r->tags = strdup(tagbuf);
    r->source = strdup(where);
    r->priority = p;
    r->enabled = enabled == NULL || strcmp(enabled, "false") != 0;
    if (!r->name || !r->desc || !r->cond || !r->output || !r->tags || !r->source ||
        (added && index_add(rs, &rs->ix_rules, rule_name, rs->nrules) != 0)) {
        return KT_ENOMEM;
    }
    if (load_suppress(ld, m, name, &r->sup) != 0) {
        return KT_EPARSE;
    }
    return exceptions_text(ld, map_get(doc, m, "exceptions"), name, &r->exc, &r->nexc);
}

/* ---- correlations ---- */

static const char *const corr_kinds[] = {"count", "distinct", "sequence", "first_seen", NULL};

static void cstep_free(struct cstep *st)
{
    free(st->ref);
    free(st->cond);
    free_strings(st->by, st->nby);
    node_free(st->root);
    frefs_free(st->byf, st->byf != NULL ? st->nby : 0);
}

static void corr_free_fields(struct corr *c)
{
    suppress_free(&c->sup);
    free(c->name);
    free(c->desc);
    free(c->output);
    free(c->tags);
    free(c->source);
    free(c->field);
    free(c->fieldf.arg);
    for (size_t i = 0; i < c->nsteps; i++) {
        cstep_free(&c->steps[i]);
    }
    free(c->steps);
    frefs_free(c->outf, c->noutf);
}

/* A step from a mapping with rule: or condition:, and by: (else the item's by). */
static int load_step(struct loader *ld, yaml_node_t *m, const char *name, yaml_node_t *by_default,
                     struct cstep *st)
{
    yaml_document_t *doc = &ld->doc;
    const char *ref = scalar(doc, map_get(doc, m, "rule"));
    const char *cond = scalar(doc, map_get(doc, m, "condition"));
    yaml_node_t *by = map_get(doc, m, "by");
    if ((ref == NULL) == (cond == NULL)) {
        return fail(ld, m, name, ": a step needs either rule: NAME or condition: TEXT");
    }
    if (by == NULL) {
        by = by_default;
    }
    if (by == NULL || by->type != YAML_SEQUENCE_NODE ||
        by->data.sequence.items.top == by->data.sequence.items.start) {
        return fail(ld, by != NULL ? by : m, name, ": by: needs a list of fields to group by");
    }
    st->rule = -1;
    st->ref = ref != NULL ? strdup(ref) : NULL;
    st->cond = cond != NULL ? strdup(cond) : NULL;
    if ((ref != NULL && st->ref == NULL) || (cond != NULL && st->cond == NULL)) {
        return KT_ENOMEM;
    }
    int rc = strings_at(ld, by, name, "by", &st->by, &st->nby);
    if (rc != 0) {
        return rc;
    }
    if (st->nby > 8) {
        return fail(ld, by, name, ": by: names at most 8 fields");
    }
    return 0;
}

static int get_duration(struct loader *ld, yaml_node_t *m, const char *name, const char *key,
                        int64_t dflt, int64_t *out)
{
    yaml_node_t *n = map_get(&ld->doc, m, key);
    const char *v = scalar(&ld->doc, n);
    *out = dflt;
    if (n == NULL) {
        return 0;
    }
    if (v == NULL || kt_parse_duration(v, out) != 0) {
        return fail(ld, n, name, ": %s: not a duration (60s, 5m, 1h, 7d, 500ms)", key);
    }
    return 0;
}

/*
 * suppress: {by: [FIELD...], for: DURATION}, or suppress: false. Further matches of the same
 * group (the by-values; none: the whole rule, or a correlation's own group) within `for` of
 * the group's first alert are merged into it. false (only useful on count and distinct
 * correlations, which suppress by their group for their window unless told not to) is kept
 * as for_us = -1 until compiled. Absent: nothing set.
 */
static int load_suppress(struct loader *ld, yaml_node_t *m, const char *name, struct suppress *sp)
{
    static const char *const keys[] = {"by", "for", NULL};
    yaml_document_t *doc = &ld->doc;
    yaml_node_t *n = map_get(doc, m, "suppress");
    if (n == NULL) {
        return 0;
    }
    const char *v = scalar(doc, n);
    if (v != NULL && (strcmp(v, "false") == 0 || strcmp(v, "off") == 0)) {
        sp->for_us = -1;
        return 0;
    }
    if (n->type != YAML_MAPPING_NODE || check_keys(ld, n, name, keys) != 0) {
        return n->type != YAML_MAPPING_NODE
                   ? fail(ld, n, name, ": suppress: is {by: [fields], for: 10m} or false")
                   : KT_EPARSE;
    }
    if (get_duration(ld, n, name, "for", 0, &sp->for_us) != 0) {
        return KT_EPARSE;
    }
    if (sp->for_us <= 0) {
        return fail(ld, n, name, ": suppress: needs for: a duration (10m, 1h...)");
    }
    yaml_node_t *by = map_get(doc, n, "by");
    if (by != NULL && by->type != YAML_SEQUENCE_NODE) {
        return fail(ld, by, name, ": suppress: by: is a list of fields");
    }
    if (by != NULL) {
        int rc = strings_at(ld, by, name, "suppress: by", &sp->by, &sp->nby);
        if (rc != 0) {
            return rc;
        }
        if (sp->nby > 8) {
            return fail(ld, by, name, ": suppress: by: names at most 8 fields");
        }
    }
    return 0;
}

static int get_uint(struct loader *ld, yaml_node_t *m, const char *name, const char *key,
                    unsigned long long lo, unsigned long long hi, unsigned long long *out)
{
    yaml_node_t *n = map_get(&ld->doc, m, key);
    const char *v = scalar(&ld->doc, n);
    char *end = NULL;
    if (n == NULL) {
        return 0;
    }
    errno = 0;
    unsigned long long x = v != NULL ? strtoull(v, &end, 10) : 0;
    if (v == NULL || end == v || *end != '\0' || errno != 0 || x < lo || x > hi) {
        return fail(ld, n, name, ": %s: needs a whole number from %llu to %llu", key, lo, hi);
    }
    *out = x;
    return 0;
}

/*
 * `- count: NAME` (and distinct, sequence, first_seen): see the README's "Stateful
 * detection". Replaces an earlier correlation of the same name; `append: true` with a
 * condition appends to a one-step correlation's inline condition; `enabled` alone toggles.
 */
static int load_corr(struct loader *ld, yaml_node_t *m, int kind, const char *name)
{
    static const char *const keys[] = {
        "count",  "distinct", "sequence", "first_seen", "desc",     "output",   "priority",
        "tags",   "enabled",  "rule",     "condition",  "by",       "window",   "threshold",
        "field",  "steps",    "ordered",  "learning",   "lookback", "lateness", "max_groups",
        "append", "override", "source",   "suppress",   NULL};
    struct kt_ruleset *rs = ld->rs;
    yaml_document_t *doc = &ld->doc;
    if (check_keys(ld, m, name, keys) != 0) {
        return KT_EPARSE;
    }
    if (rule_find(rs, name) != NULL) {
        return fail(ld, m, name, ": a rule already has this name");
    }
    struct corr *c = NULL;
    for (size_t i = 0; i < rs->ncorrs; i++) {
        if (strcmp(rs->corrs[i].name, name) == 0) {
            c = &rs->corrs[i];
        }
    }
    const char *enabled = scalar(doc, map_get(doc, m, "enabled"));
    const char *cond = scalar(doc, map_get(doc, m, "condition"));
    int append = appends(ld, m, "condition");
    if (c != NULL && c->def.kind != kind) {
        return fail(ld, m, name, ": already defined as a %s", corr_kinds[c->def.kind]);
    }
    if (append || (c != NULL && map_get(doc, m, "output") == NULL)) {
        if (c == NULL) {
            return fail(ld, m, name, ": append to an undefined %s", corr_kinds[kind]);
        }
        if (cond != NULL) {
            if (c->nsteps != 1 || c->steps[0].cond == NULL) {
                return fail(ld, m, name, ": only an inline condition: can be appended to");
            }
            char *t = concat(c->steps[0].cond, cond);
            if (t == NULL) {
                return KT_ENOMEM;
            }
            free(c->steps[0].cond);
            c->steps[0].cond = t;
        }
        if (enabled != NULL) {
            c->enabled = strcmp(enabled, "false") != 0;
        }
        if (map_get(doc, m, "suppress") != NULL) {
            suppress_free(&c->sup);
            return load_suppress(ld, m, name, &c->sup);
        }
        return 0;
    }
    const char *output = scalar(doc, map_get(doc, m, "output"));
    const char *prio = scalar(doc, map_get(doc, m, "priority"));
    int p = prio != NULL ? kt_priority_parse(prio) : -1;
    if (output == NULL || p < 0) {
        return fail(ld, m, name, ": a %s needs an output and a priority (emergency ... debug)",
                    corr_kinds[kind]);
    }
    struct corr nc = {0};
    int rc = 0;
    unsigned long long threshold = 0, maxg = 20000;
    const char *ordered = scalar(doc, map_get(doc, m, "ordered"));
    yaml_node_t *by = map_get(doc, m, "by");
    yaml_node_t *steps = map_get(doc, m, "steps");
    nc.def.kind = kind;
    nc.def.ordered = ordered == NULL || strcmp(ordered, "false") != 0;
    if (rc == 0) {
        rc = get_duration(ld, m, name, "window", -1, &nc.def.window_us);
    }
    if (rc == 0) {
        rc = get_duration(ld, m, name, "lateness", 60000000, &nc.def.lateness_us);
    }
    if (rc == 0) {
        rc = get_duration(ld, m, name, "learning", 0, &nc.def.learning_us);
    }
    if (rc == 0) {
        rc = get_duration(ld, m, name, "lookback", 0, &nc.def.lookback_us);
    }
    if (rc == 0) {
        rc = get_uint(ld, m, name, "threshold", 1, 100000, &threshold);
    }
    if (rc == 0) {
        rc = get_uint(ld, m, name, "max_groups", 1, 100000000, &maxg);
    }
    if (rc == 0 && kind != KT_CORR_FIRST_SEEN && nc.def.window_us <= 0) {
        rc = fail(ld, m, name, ": a %s needs a window: (60s, 5m...)", corr_kinds[kind]);
    }
    if (rc == 0 && (kind == KT_CORR_COUNT || kind == KT_CORR_DISTINCT) && threshold == 0) {
        rc = fail(ld, m, name, ": a %s needs a threshold:", corr_kinds[kind]);
    }
    if (rc == 0 && kind == KT_CORR_DISTINCT && scalar(doc, map_get(doc, m, "field")) == NULL) {
        rc = fail(ld, m, name, ": a distinct needs a field: whose values it counts");
    }
    if (rc == 0 && kind != KT_CORR_DISTINCT && map_get(doc, m, "field") != NULL) {
        rc = fail(ld, m, name, ": field: is for distinct");
    }
    if (rc == 0 && kind == KT_CORR_SEQUENCE) {
        size_t n = steps != NULL && steps->type == YAML_SEQUENCE_NODE
                       ? (size_t)(steps->data.sequence.items.top - steps->data.sequence.items.start)
                       : 0;
        if (n < 2 || n > 16) {
            rc = fail(ld, steps != NULL ? steps : m, name,
                      ": a sequence needs steps: a list of 2 to 16 {rule|condition, by}");
        } else if (map_get(doc, m, "rule") != NULL || map_get(doc, m, "condition") != NULL) {
            rc = fail(ld, m, name, ": a sequence names its rules in its steps");
        } else if ((nc.steps = calloc(n, sizeof(*nc.steps))) == NULL) {
            rc = KT_ENOMEM;
        }
        for (size_t i = 0; rc == 0 && i < n; i++) {
            yaml_node_t *sm = yaml_document_get_node(doc, steps->data.sequence.items.start[i]);
            if (sm->type != YAML_MAPPING_NODE) {
                rc = fail(ld, sm, name, ": a step is a mapping {rule|condition, by}");
                break;
            }
            static const char *const skeys[] = {"rule", "condition", "by", NULL};
            if ((rc = check_keys(ld, sm, name, skeys)) == 0) {
                nc.nsteps++;
                rc = load_step(ld, sm, name, by, &nc.steps[i]);
            }
        }
        nc.def.steps = (uint32_t)nc.nsteps;
    } else if (rc == 0) {
        if (steps != NULL) {
            rc = fail(ld, steps, name, ": steps: are for sequence");
        } else if ((nc.steps = calloc(1, sizeof(*nc.steps))) == NULL) {
            rc = KT_ENOMEM;
        } else {
            nc.nsteps = 1;
            rc = load_step(ld, m, name, NULL, &nc.steps[0]);
        }
    }
    nc.def.threshold = (uint32_t)threshold;
    nc.def.max_groups = (size_t)maxg;
    if (rc == 0) {
        rc = load_suppress(ld, m, name, &nc.sup);
    }
    char tagbuf[1024];
    if (rc == 0) {
        rc = tags_text(ld, m, name, tagbuf, sizeof(tagbuf));
    }
    if (rc != 0) {
        corr_free_fields(&nc);
        return rc;
    }
    char where[300];
    snprintf(where, sizeof(where), "%s:%lu", ld->file, (unsigned long)m->start_mark.line + 1);
    const char *desc = scalar(doc, map_get(doc, m, "desc"));
    const char *field = scalar(doc, map_get(doc, m, "field"));
    nc.name = strdup(name);
    nc.desc = strdup(desc != NULL ? desc : "");
    nc.output = strdup(output);
    nc.tags = strdup(tagbuf);
    nc.source = strdup(where);
    nc.field = field != NULL ? strdup(field) : NULL;
    nc.priority = p;
    nc.enabled = enabled == NULL || strcmp(enabled, "false") != 0;
    if (!nc.name || !nc.desc || !nc.output || !nc.tags || !nc.source || (field && !nc.field)) {
        corr_free_fields(&nc);
        return KT_ENOMEM;
    }
    if (c == NULL) {
        struct corr *na = realloc(rs->corrs, (rs->ncorrs + 1) * sizeof(*na));
        if (na == NULL) {
            corr_free_fields(&nc);
            return KT_ENOMEM;
        }
        rs->corrs = na;
        c = &rs->corrs[rs->ncorrs++];
    } else {
        corr_free_fields(c);
    }
    *c = nc;
    return 0;
}

/* Is there a second YAML document after the one loaded? Only the first would be read, so a
 * `---` inside a rules file is a rule error rather than rules silently ignored. */
static int more_documents(yaml_parser_t *parser)
{
    yaml_document_t next;
    if (!yaml_parser_load(parser, &next)) {
        return 1; /* malformed after the first document */
    }
    int more = yaml_document_get_root_node(&next) != NULL;
    yaml_document_delete(&next);
    return more;
}

/* Load the items of one rule file (read from its name, or its text in memory) into rs. */
static int load_src(struct kt_ruleset *rs, const struct kt_rules_src *src, char *err, size_t errlen)
{
    const char *file = src->name;
    FILE *fp = src->text == NULL ? fopen(file, "r") : NULL;
    if (src->text == NULL && fp == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
        return KT_EPARSE;
    }
    struct loader ld = {.rs = rs, .file = file, .err = err, .errlen = errlen};
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    if (fp != NULL) {
        yaml_parser_set_input_file(&parser, fp);
    } else {
        yaml_parser_set_input_string(&parser, (const unsigned char *)src->text, src->len);
    }
    int rc = 0;
    if (!yaml_parser_load(&parser, &ld.doc)) {
        snprintf(err, errlen, "%s:%lu: malformed YAML: %s", file,
                 (unsigned long)parser.problem_mark.line + 1,
                 parser.problem != NULL ? parser.problem : "parse error");
        yaml_parser_delete(&parser);
        if (fp != NULL) {
            fclose(fp);
        }
        return KT_EPARSE;
    }
    yaml_node_t *root = yaml_document_get_root_node(&ld.doc);
    if (root != NULL && root->type != YAML_SEQUENCE_NODE) {
        rc = fail(&ld, root, NULL, "a rules file is a YAML sequence of items");
    } else if (root != NULL && more_documents(&parser)) {
        snprintf(err, errlen, "%s:%lu: a rules file is one YAML document (a second starts here)",
                 file, (unsigned long)parser.mark.line + 1);
        rc = KT_EPARSE;
    }
    for (yaml_node_item_t *it = root != NULL && rc == 0 ? root->data.sequence.items.start : NULL;
         it != NULL && it < root->data.sequence.items.top && rc == 0; it++) {
        yaml_node_t *m = yaml_document_get_node(&ld.doc, *it);
        const char *name;
        int kind = -1;
        for (int k = 0; m->type == YAML_MAPPING_NODE && corr_kinds[k] != NULL && kind < 0; k++) {
            if ((name = scalar(&ld.doc, map_get(&ld.doc, m, corr_kinds[k]))) != NULL) {
                kind = k;
            }
        }
        if (m->type != YAML_MAPPING_NODE) {
            rc = fail(&ld, m, NULL, "an item must be a mapping");
        } else if (kind >= 0 && name[0] == '\0') {
            rc = fail(&ld, m, NULL, "a %s needs a name", corr_kinds[kind]);
        } else if (kind >= 0) {
            rc = load_corr(&ld, m, kind, name);
        } else if ((name = scalar(&ld.doc, map_get(&ld.doc, m, "rule"))) != NULL) {
            rc = name[0] == '\0' ? fail(&ld, m, NULL, "a rule needs a name")
                                 : load_rule(&ld, m, name);
        } else if ((name = scalar(&ld.doc, map_get(&ld.doc, m, "macro"))) != NULL) {
            rc = name[0] == '\0' ? fail(&ld, m, NULL, "a macro needs a name")
                                 : load_macro(&ld, m, name);
        } else if ((name = scalar(&ld.doc, map_get(&ld.doc, m, "list"))) != NULL) {
            rc = name[0] == '\0' ? fail(&ld, m, NULL, "a list needs a name")
                                 : load_list(&ld, m, name);
        } else if (map_get(&ld.doc, m, "required_engine_version") == NULL &&
                   map_get(&ld.doc, m, "required_plugin_versions") == NULL) {
            rc = fail(&ld, m, NULL,
                      "unknown item (not a rule, macro, list, count, distinct, sequence or "
                      "first_seen)");
        }
    }
    yaml_document_delete(&ld.doc);
    yaml_parser_delete(&parser);
    if (fp != NULL) {
        fclose(fp);
    }
    return rc;
}

/* Resolve the %fields of an output into *outf (skipping the names in skip). */
static int output_fields(struct kt_ruleset *rs, const char *output, const char *const *skip,
                         struct fref **outf, size_t *noutf, const char *source, const char *name,
                         char *err, size_t errlen)
{
    for (const char *p = strchr(output, '%'); p != NULL; p = strchr(p + 1, '%')) {
        if (!isalpha((unsigned char)p[1])) {
            continue;
        }
        size_t wl = 0;
        while (isalnum((unsigned char)p[1 + wl]) || p[1 + wl] == '.' || p[1 + wl] == '_') {
            wl++;
        }
        if (p[1 + wl] == '[') {
            const char *close = strchr(p + 1 + wl, ']');
            wl = close != NULL ? (size_t)(close - p) : wl;
        }
        int skipped = 0;
        for (const char *const *k = skip; k != NULL && *k != NULL; k++) {
            skipped |= strlen(*k) == wl && memcmp(*k, p + 1, wl) == 0;
        }
        if (skipped) {
            continue;
        }
        struct fref *nf = realloc(*outf, (*noutf + 1) * sizeof(*nf));
        if (nf == NULL) {
            return KT_ENOMEM;
        }
        *outf = nf;
        int rc = fref_resolve(rs, p + 1, wl, &(*outf)[*noutf]);
        if (rc != 0) {
            snprintf(err, errlen, "%s: %s: %s in output: %.*s", source, name, fref_strerror(rc),
                     (int)wl, p + 1);
            return KT_EPARSE;
        }
        (*noutf)++;
    }
    return 0;
}

/* Resolve a suppress's by fields; what names the item in errors. 0 or KT_EPARSE. */
static int suppress_compile(struct kt_ruleset *rs, struct suppress *sp, const char *source,
                            const char *what, char *err, size_t errlen)
{
    if (sp->nby == 0 || sp->byf != NULL) {
        return 0;
    }
    if ((sp->byf = calloc(sp->nby, sizeof(*sp->byf))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return KT_EPARSE;
    }
    for (size_t i = 0; i < sp->nby; i++) {
        int rc = fref_resolve(rs, sp->by[i], strlen(sp->by[i]), &sp->byf[i]);
        if (rc != 0) {
            snprintf(err, errlen, "%s: %s: %s in suppress: by: %s", source, what, fref_strerror(rc),
                     sp->by[i]);
            return KT_EPARSE;
        }
    }
    return 0;
}

/* Compile one rule: condition and exceptions into a tree, output fields resolved. */
static int compile_rule(struct kt_ruleset *rs, struct rule *r, char *err, size_t errlen)
{
    char msg[512];
    size_t len = strlen(r->cond) + 16;
    for (size_t i = 0; i < r->nexc; i++) {
        len += strlen(r->exc[i]) + 8;
    }
    char *text = malloc(len);
    if (text == NULL) {
        return KT_ENOMEM;
    }
    size_t n = (size_t)snprintf(text, len, "(%s)", r->cond);
    for (size_t i = 0; i < r->nexc; i++) {
        n += (size_t)snprintf(text + n, len - n, "%s%s", i == 0 ? " and not (" : " or ", r->exc[i]);
    }
    if (r->nexc > 0) {
        snprintf(text + n, len - n, ")");
    }
    r->root = cond_compile(rs, text, msg, sizeof(msg));
    free(text);
    if (r->root == NULL) {
        snprintf(err, errlen, "%s: rule %s: %s", r->source, r->name, msg);
        return KT_EPARSE;
    }
    char what[600];
    snprintf(what, sizeof(what), "rule %s", r->name);
    if (suppress_compile(rs, &r->sup, r->source, what, err, errlen) != 0) {
        return KT_EPARSE;
    }
    int rc = output_fields(rs, r->output, NULL, &r->outf, &r->noutf, r->source, what, err, errlen);
    if (rc != 0) {
        return rc;
    }
    free(r->fmt); /* compiled again (an append, a reload) */
    if ((r->fmt = kt_rule_format(r->output, r->outf, r->noutf, r->tags)) == NULL) {
        snprintf(err, errlen, "%s: rule %s: out of memory", r->source, r->name);
        return KT_ENOMEM;
    }
    return 0;
}

/* Compile one correlation: steps (referenced rules found, inline conditions compiled), by
 * fields, the distinct field and the output's fields resolved. */
static int compile_corr(struct kt_ruleset *rs, struct corr *c, char *err, size_t errlen)
{
    static const char *const special[] = {"group", "count", NULL};
    char msg[512];
    const char *kind = corr_kinds[c->def.kind];
    const struct rule *same = rule_find(rs, c->name);
    if (same != NULL) {
        snprintf(err, errlen, "%s: %s %s: a rule has the same name (%s)", c->source, kind, c->name,
                 same->source);
        return KT_EPARSE;
    }
    for (size_t k = 0; k < c->nsteps; k++) {
        struct cstep *st = &c->steps[k];
        if (st->ref != NULL) {
            const struct rule *ref = rule_find(rs, st->ref);
            st->rule = ref != NULL ? (int)(ref - rs->rules) : -1;
            if (st->rule < 0) {
                snprintf(err, errlen, "%s: %s %s: unknown rule referenced: %s", c->source, kind,
                         c->name, st->ref);
                return KT_EPARSE;
            }
        } else if ((st->root = cond_compile(rs, st->cond, msg, sizeof(msg))) == NULL) {
            snprintf(err, errlen, "%s: %s %s: %s", c->source, kind, c->name, msg);
            return KT_EPARSE;
        }
        if ((st->byf = calloc(st->nby, sizeof(*st->byf))) == NULL) {
            return KT_ENOMEM;
        }
        for (size_t i = 0; i < st->nby; i++) {
            int rc = fref_resolve(rs, st->by[i], strlen(st->by[i]), &st->byf[i]);
            if (rc != 0) {
                snprintf(err, errlen, "%s: %s %s: %s in by: %s", c->source, kind, c->name,
                         fref_strerror(rc), st->by[i]);
                return KT_EPARSE;
            }
        }
    }
    int frc = c->field != NULL ? fref_resolve(rs, c->field, strlen(c->field), &c->fieldf) : 0;
    if (frc != 0) {
        snprintf(err, errlen, "%s: %s %s: %s: %s", c->source, kind, c->name, fref_strerror(frc),
                 c->field);
        return KT_EPARSE;
    }
    char name[600];
    snprintf(name, sizeof(name), "%s %s", kind, c->name);
    if (c->sup.for_us == 0 && (c->def.kind == KT_CORR_COUNT || c->def.kind == KT_CORR_DISTINCT)) {
        c->sup.for_us = c->def.window_us; /* a burst is told once: its group, its window */
    } else if (c->sup.for_us < 0) {
        c->sup.for_us = 0;
    }
    if (suppress_compile(rs, &c->sup, c->source, name, err, errlen) != 0) {
        return KT_EPARSE;
    }
    return output_fields(rs, c->output, special, &c->outf, &c->noutf, c->source, name, err, errlen);
}

int kt_ruleset_load(const char *const *files, size_t nfiles, const struct kt_rules_opts *opts,
                    struct kt_ruleset **out, char *errstr, size_t errlen)
{
    struct kt_rules_src *srcs = calloc(nfiles + 1, sizeof(*srcs));
    *out = NULL;
    if (srcs == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return KT_ENOMEM;
    }
    for (size_t i = 0; i < nfiles; i++) {
        srcs[i].name = files[i];
    }
    int rc = kt_ruleset_load_srcs(srcs, nfiles, opts, out, errstr, errlen);
    free(srcs);
    return rc;
}

int kt_ruleset_load_srcs(const struct kt_rules_src *srcs, size_t nsrcs,
                         const struct kt_rules_opts *opts, struct kt_ruleset **out, char *errstr,
                         size_t errlen)
{
    struct kt_ruleset *rs = calloc(1, sizeof(*rs));
    int rc = 0;
    *out = NULL;
    if (rs == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return KT_ENOMEM;
    }
    rs->opts.min_priority = opts != NULL ? opts->min_priority : KT_PRIO_DEBUG;
    for (size_t i = 0; i < nsrcs && rc == 0; i++) {
        rc = load_src(rs, &srcs[i], errstr, errlen);
    }
    index_free(&rs->ix_lists); /* the sort moves them */
    index_free(&rs->ix_macros);
    items_sort(rs->lists, rs->nlists);
    items_sort(rs->macros, rs->nmacros);
    for (size_t i = 0; i < rs->nrules && rc == 0; i++) {
        rc = compile_rule(rs, &rs->rules[i], errstr, errlen);
    }
    for (size_t i = 0; i < rs->ncorrs && rc == 0; i++) {
        rc = compile_corr(rs, &rs->corrs[i], errstr, errlen);
    }
    if (rc == 0) {
        prefilter_compile(rs);
    }
    for (int i = 0; i < BODY_COUNT && rc == 0; i++) {
        struct ptr_group *g = &rs->groups[i];
        if (g->n > 0 && (g->walker = field_walker_create(g->rel, g->n)) == NULL) {
            snprintf(errstr, errlen, "out of memory");
            rc = KT_ENOMEM;
        }
    }
    if (rc != 0) {
        kt_ruleset_destroy(rs);
        return rc;
    }
    *out = rs;
    return 0;
}

static void items_free(struct item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].name);
        free(items[i].cond);
        free_strings(items[i].values, items[i].nvalues);
    }
    free(items);
}

void kt_ruleset_destroy(struct kt_ruleset *rs)
{
    if (rs == NULL) {
        return;
    }
    for (size_t i = 0; i < rs->nrules; i++) {
        rule_free_fields(&rs->rules[i]);
    }
    free(rs->rules);
    for (size_t i = 0; i < rs->ncorrs; i++) {
        corr_free_fields(&rs->corrs[i]);
    }
    free(rs->corrs);
    items_free(rs->lists, rs->nlists);
    items_free(rs->macros, rs->nmacros);
    index_free(&rs->ix_lists);
    index_free(&rs->ix_macros);
    index_free(&rs->ix_rules);
    for (int i = 0; i < BODY_COUNT; i++) {
        free(rs->groups[i].rel);
        free(rs->groups[i].slot);
        field_walker_destroy(rs->groups[i].walker);
    }
    for (size_t i = 0; i < rs->nowned; i++) {
        free(rs->owned[i]);
    }
    free(rs->owned);
    free(rs->refs);
    free(rs);
}

size_t kt_ruleset_count(const struct kt_ruleset *rs)
{
    return rs->nrules + rs->ncorrs;
}

void kt_ruleset_info(const struct kt_ruleset *rs, size_t i, struct kt_rule_info *out)
{
    if (i >= rs->nrules) {
        const struct corr *c = &rs->corrs[i - rs->nrules];
        *out = (struct kt_rule_info){
            c->name, c->desc, c->tags, c->source, c->priority, c->enabled, corr_kinds[c->def.kind]};
        return;
    }
    const struct rule *r = &rs->rules[i];
    *out = (struct kt_rule_info){r->name,     r->desc,    r->tags, r->source,
                                 r->priority, r->enabled, "rule"};
}

size_t kt_ruleset_ncorr(const struct kt_ruleset *rs)
{
    return rs->ncorrs;
}

struct kt_corr *kt_ruleset_corr_engine(const struct kt_ruleset *rs)
{
    struct kt_corr_def *defs = calloc(rs->ncorrs + 1, sizeof(*defs));
    struct kt_corr *c = NULL;
    if (defs != NULL) {
        for (size_t i = 0; i < rs->ncorrs; i++) {
            defs[i] = rs->corrs[i].def;
        }
        c = kt_corr_create(defs, rs->ncorrs);
    }
    free(defs);
    return c;
}
