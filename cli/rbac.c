/*
 * rbac.c: `ktrail rbac`, least privilege from what an identity really used: the Role and
 * ClusterRole (and their bindings) granting exactly the verbs on the resources, subresources
 * and, where few, names that it used successfully; with --compare, what a current Role grants
 * that it never used. The requests come from store/query.c (kt_query_permissions).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "cli.h"
#include "query.h"

enum { MAX_NAMES = 5 }; /* more names than this: the rule grants the resource whole */

/* One permission used: a verb on a resource (or a non-resource path) in a scope. */
struct perm {
    char *group, *resource, *ns, *name, *verb, *path;
};

struct perms {
    struct perm *p;
    size_t n, cap;
    unsigned long long requests;
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static int keep_perm(void *ctx, size_t n, const char *const *names, const char *const *v)
{
    struct perms *ps = ctx;
    (void)names;
    if (n < 8) {
        return 1;
    }
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 64;
        struct perm *p = realloc(ps->p, cap * sizeof(*p));
        if (p == NULL) {
            return 1;
        }
        ps->p = p;
        ps->cap = cap;
    }
    struct perm *p = &ps->p[ps->n++];
    char *res = NULL;
    if (v[1] != NULL) { /* resource/subresource, as RBAC names them */
        res = malloc(strlen(v[1]) + (v[2] != NULL ? strlen(v[2]) + 1 : 0) + 1);
        if (res != NULL) {
            sprintf(res, "%s%s%s", v[1], v[2] != NULL ? "/" : "", v[2] != NULL ? v[2] : "");
        }
    }
    *p = (struct perm){dup_or_null(v[0]), res,
                       dup_or_null(v[3]), dup_or_null(v[4]),
                       dup_or_null(v[5]), dup_or_null(v[6])};
    ps->requests += strtoull(v[7], NULL, 10);
    return 0;
}

static void perms_free(struct perms *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        struct perm *p = &ps->p[i];
        free(p->group), free(p->resource), free(p->ns), free(p->name), free(p->verb);
        free(p->path);
    }
    free(ps->p);
}

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Verbs in the order kubectl describes them, others after, by name. */
static int verb_rank(const char *v)
{
    static const char *const order[] = {"get",    "list",  "watch",  "create",
                                        "update", "patch", "delete", "deletecollection"};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (strcmp(v, order[i]) == 0) {
            return (int)i;
        }
    }
    return 100;
}

/* RBAC can restrict these verbs to resourceNames; create, list, watch have no name to check. */
static int nameable(const char *verb)
{
    return strcmp(verb, "get") == 0 || strcmp(verb, "update") == 0 || strcmp(verb, "patch") == 0 ||
           strcmp(verb, "delete") == 0;
}

/* A set of strings, kept sorted by cmp. */
struct set {
    const char *v[64];
    size_t n;
};

static int set_add(struct set *s, const char *x, int (*cmp)(const char *, const char *))
{
    size_t i = 0;
    while (i < s->n && cmp(s->v[i], x) < 0) {
        i++;
    }
    if (i < s->n && cmp(s->v[i], x) == 0) {
        return 0;
    }
    if (s->n == sizeof(s->v) / sizeof(s->v[0])) {
        return -1;
    }
    memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(s->v[0]));
    s->v[i] = x;
    s->n++;
    return 1;
}

static int by_name(const char *a, const char *b)
{
    return strcmp(a, b);
}

static int by_verb(const char *a, const char *b)
{
    int d = verb_rank(a) - verb_rank(b);
    return d != 0 ? d : strcmp(a, b);
}

static int sets_equal(const struct set *a, const struct set *b)
{
    if (a->n != b->n) {
        return 0;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->v[i], b->v[i]) != 0) {
            return 0;
        }
    }
    return 1;
}

/* One rule of a role: apiGroup, resources (or nonResourceURLs), resourceNames, verbs. */
struct rule {
    const char *group; /* NULL: a nonResourceURLs rule */
    struct set resources, names, verbs;
};

/* "KEY: [\"a\", \"b\"]" after lead ("- " for the first key of a rule, else "  ") */
static void print_list(const char *lead, const char *key, const struct set *s)
{
    struct kt_buf b = {0};
    printf("%s%s: [", lead, key);
    for (size_t i = 0; i < s->n; i++) {
        b.len = 0;
        kt_buf_json_str(&b, s->v[i], strlen(s->v[i]));
        printf("%s%.*s", i ? ", " : "", (int)b.len, b.p);
    }
    puts("]");
    kt_buf_free(&b);
}

/* The rules of one scope (namespace ns, NULL for the cluster) from the permissions. */
static size_t build_rules(const struct perms *ps, const char *ns, struct rule *rules, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < ps->n; i++) {
        const struct perm *p = &ps->p[i];
        if (!same(p->ns, ns) || (p->resource == NULL && ns != NULL)) {
            continue;
        }
        /* the names this verb was used on, unless used without one or on too many */
        struct set names = {.n = 0};
        int whole = !nameable(p->verb) || p->resource == NULL;
        for (size_t k = 0; !whole && k < ps->n; k++) {
            const struct perm *q = &ps->p[k];
            if (same(q->ns, ns) && same(q->group, p->group) && same(q->resource, p->resource) &&
                strcmp(q->verb, p->verb) == 0) {
                whole = q->name == NULL || set_add(&names, q->name, by_name) < 0;
            }
        }
        if (whole || names.n > MAX_NAMES) {
            names.n = 0;
        }
        /* the rule for (group, resource, names): add the verb */
        struct rule *r = NULL;
        for (size_t k = 0; k < n && r == NULL; k++) {
            if (same(rules[k].group, p->resource != NULL ? p->group : NULL) &&
                rules[k].resources.n == 1 &&
                strcmp(rules[k].resources.v[0], p->resource != NULL ? p->resource : p->path) == 0 &&
                sets_equal(&rules[k].names, &names)) {
                r = &rules[k];
            }
        }
        if (r == NULL && n < cap) {
            r = &rules[n++];
            memset(r, 0, sizeof(*r));
            r->group = p->resource != NULL ? p->group : NULL;
            set_add(&r->resources, p->resource != NULL ? p->resource : p->path, by_name);
            r->names = names;
        }
        if (r != NULL) {
            set_add(&r->verbs, p->verb, by_verb);
        }
    }
    /* rules of one group with the same verbs and no names become one */
    for (size_t a = 0; a < n; a++) {
        for (size_t b = a + 1; b < n;) {
            if (same(rules[a].group, rules[b].group) && rules[a].names.n == 0 &&
                rules[b].names.n == 0 && sets_equal(&rules[a].verbs, &rules[b].verbs)) {
                for (size_t k = 0; k < rules[b].resources.n; k++) {
                    set_add(&rules[a].resources, rules[b].resources.v[k], by_name);
                }
                memmove(&rules[b], &rules[b + 1], (n - b - 1) * sizeof(rules[0]));
                n--;
            } else {
                b++;
            }
        }
    }
    return n;
}

/* A Kubernetes object name from an identity: lowercase, [a-z0-9.-], at most 63. */
static void object_name(const char *who, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "ktrail-");
    for (const char *p = who; *p != '\0' && n + 1 < cap && n < 63; p++) {
        char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
        out[n++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ? c : '-';
    }
    while (n > 0 && (out[n - 1] == '-' || out[n - 1] == '.')) {
        n--;
    }
    out[n] = '\0';
}

static void print_role(const char *kind, const char *name, const char *ns, const struct rule *rules,
                       size_t n)
{
    printf("---\napiVersion: rbac.authorization.k8s.io/v1\nkind: %s\nmetadata:\n  name: %s\n", kind,
           name);
    if (ns != NULL) {
        printf("  namespace: %s\n", ns);
    }
    puts("rules:");
    for (size_t i = 0; i < n; i++) {
        const struct rule *r = &rules[i];
        if (r->group == NULL) {
            print_list("- ", "nonResourceURLs", &r->resources);
        } else {
            struct set g = {.n = 1, .v = {r->group}};
            print_list("- ", "apiGroups", &g);
            print_list("  ", "resources", &r->resources);
            if (r->names.n > 0) {
                print_list("  ", "resourceNames", &r->names);
            }
        }
        print_list("  ", "verbs", &r->verbs);
    }
}

static void print_binding(const char *kind, const char *role_kind, const char *name, const char *ns,
                          const char *user, const char *sa_ns, const char *sa_name)
{
    printf("---\napiVersion: rbac.authorization.k8s.io/v1\nkind: %s\nmetadata:\n  name: %s\n", kind,
           name);
    if (ns != NULL) {
        printf("  namespace: %s\n", ns);
    }
    printf("roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: %s\n  name: %s\n"
           "subjects:\n",
           role_kind, name);
    if (sa_name != NULL) {
        printf("- kind: ServiceAccount\n  name: %s\n  namespace: %s\n", sa_name, sa_ns);
    } else {
        struct kt_buf b = {0};
        kt_buf_json_str(&b, user, strlen(user));
        printf("- kind: User\n  apiGroup: rbac.authorization.k8s.io\n  name: %.*s\n", (int)b.len,
               b.p);
        kt_buf_free(&b);
    }
}

/* ---- --compare: what a current Role grants and the identity never used ---- */

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *m, const char *key)
{
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
         m->type == YAML_MAPPING_NODE && p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, key) == 0) {
            return yaml_document_get_node(d, p->value);
        }
    }
    return NULL;
}

/* The scalars of a sequence node into s (NULL node: empty). */
static void seq_strings(yaml_document_t *d, yaml_node_t *n, struct set *s)
{
    s->n = 0;
    for (yaml_node_item_t *i =
             n != NULL && n->type == YAML_SEQUENCE_NODE ? n->data.sequence.items.start : NULL;
         i != NULL && i < n->data.sequence.items.top && s->n < 64; i++) {
        yaml_node_t *v = yaml_document_get_node(d, *i);
        if (v != NULL && v->type == YAML_SCALAR_NODE) {
            s->v[s->n++] = (const char *)v->data.scalar.value;
        }
    }
}

static int verb_matches(const struct perm *p, const char *verb)
{
    return strcmp(verb, "*") == 0 || strcmp(p->verb, verb) == 0;
}

/* Was verb used on group/res in namespace ns (NULL: anywhere, a ClusterRole)? */
static int used_resource(const struct perms *ps, const char *ns, const char *group, const char *res,
                         const char *verb)
{
    for (size_t i = 0; i < ps->n; i++) {
        const struct perm *p = &ps->p[i];
        if (verb_matches(p, verb) && (ns == NULL || same(p->ns, ns)) && p->resource != NULL &&
            (strcmp(group, "*") == 0 || strcmp(p->group, group) == 0) &&
            (strcmp(res, "*") == 0 || strcmp(p->resource, res) == 0)) {
            return 1;
        }
    }
    return 0;
}

/* Was verb used on the non-resource URL path? */
static int used_path(const struct perms *ps, const char *path, const char *verb)
{
    for (size_t i = 0; i < ps->n; i++) {
        const struct perm *p = &ps->p[i];
        if (verb_matches(p, verb) && p->path != NULL &&
            (strcmp(path, "*") == 0 || strcmp(path, p->path) == 0)) {
            return 1;
        }
    }
    return 0;
}

/* Print every (group, resource, verb) that file's Roles grant and ps never used. */
static int compare(const char *file, const struct perms *ps)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        fprintf(stderr, "ktrail rbac: --compare %s: cannot read it\n", file);
        return -1;
    }
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    int unused = 0, docs = 0, rc = 0;
    for (;;) {
        yaml_document_t d;
        if (!yaml_parser_load(&parser, &d)) {
            fprintf(stderr, "ktrail rbac: --compare %s:%zu: %s\n", file,
                    parser.problem_mark.line + 1, parser.problem ? parser.problem : "bad YAML");
            rc = -1;
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&d);
        if (root == NULL) {
            yaml_document_delete(&d);
            break;
        }
        yaml_node_t *kind = map_get(&d, root, "kind"), *rules = map_get(&d, root, "rules");
        yaml_node_t *meta = map_get(&d, root, "metadata");
        yaml_node_t *name = meta != NULL ? map_get(&d, meta, "name") : NULL;
        yaml_node_t *nsn = meta != NULL ? map_get(&d, meta, "namespace") : NULL;
        const char *k = kind != NULL && kind->type == YAML_SCALAR_NODE
                            ? (const char *)kind->data.scalar.value
                            : "";
        if ((strcmp(k, "Role") == 0 || strcmp(k, "ClusterRole") == 0) && rules != NULL &&
            rules->type == YAML_SEQUENCE_NODE) {
            docs++;
            const char *ns = strcmp(k, "Role") == 0 && nsn != NULL && nsn->type == YAML_SCALAR_NODE
                                 ? (const char *)nsn->data.scalar.value
                                 : NULL;
            for (yaml_node_item_t *it = rules->data.sequence.items.start;
                 it < rules->data.sequence.items.top; it++) {
                yaml_node_t *r = yaml_document_get_node(&d, *it);
                struct set groups, res, verbs, urls;
                seq_strings(&d, map_get(&d, r, "apiGroups"), &groups);
                seq_strings(&d, map_get(&d, r, "resources"), &res);
                seq_strings(&d, map_get(&d, r, "verbs"), &verbs);
                seq_strings(&d, map_get(&d, r, "nonResourceURLs"), &urls);
                for (size_t v = 0; v < verbs.n; v++) {
                    for (size_t g = 0; g < groups.n; g++) {
                        for (size_t x = 0; x < res.n; x++) {
                            if (!used_resource(ps, ns, groups.v[g], res.v[x], verbs.v[v])) {
                                printf("unused: %s %s grants %s on %s%s%s\n", k,
                                       name != NULL ? (const char *)name->data.scalar.value : "?",
                                       verbs.v[v], res.v[x], groups.v[g][0] ? "." : "",
                                       groups.v[g]);
                                unused++;
                            }
                        }
                    }
                    for (size_t u = 0; u < urls.n; u++) {
                        if (!used_path(ps, urls.v[u], verbs.v[v])) {
                            printf("unused: %s %s grants %s on %s\n", k,
                                   name != NULL ? (const char *)name->data.scalar.value : "?",
                                   verbs.v[v], urls.v[u]);
                            unused++;
                        }
                    }
                }
            }
        }
        yaml_document_delete(&d);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    if (rc == 0) {
        fprintf(stderr, "ktrail rbac: %d grant%s in %d role%s of %s never used\n", unused,
                unused == 1 ? "" : "s", docs, docs == 1 ? "" : "s", file);
    }
    return rc;
}

int cli_cmd_rbac(int argc, char **argv)
{
    const char *db = NULL, *user = NULL, *sa = NULL, *since = NULL, *until = NULL;
    const char *cmp = NULL;
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"user", required_argument, NULL, 'U'},
        {"serviceaccount", required_argument, NULL, 'S'},
        {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'},
        {"compare", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            continue;
        case 'U':
            user = optarg;
            continue;
        case 'S':
            sa = optarg;
            continue;
        case 's':
            since = optarg;
            continue;
        case 'u':
            until = optarg;
            continue;
        case 'c':
            cmp = optarg;
            continue;
        default:
            break;
        }
        FILE *out = c == 'h' ? stdout : stderr;
        fputs("usage: ktrail rbac --db FILE (--user U | --serviceaccount NS/NAME) [--since T]\n"
              "                   [--until T] [--compare ROLE.yaml]\n"
              "the Role, ClusterRole and bindings (YAML) granting exactly what the identity used\n"
              "successfully in the window: verbs on resources and subresources, names where at\n"
              "most 5, non-resource URLs; --compare: what the Roles in the file grant that it\n"
              "never used\n",
              out);
        return c == 'h' ? EXIT_OK : EXIT_USAGE;
    }
    char sa_user[600], *sa_ns = NULL, *sa_name = NULL, sa_copy[512];
    if ((user == NULL) == (sa == NULL) || db == NULL) {
        fputs("ktrail rbac: needs --db and one of --user or --serviceaccount\n", stderr);
        return EXIT_USAGE;
    }
    if (sa != NULL) {
        snprintf(sa_copy, sizeof(sa_copy), "%s", sa);
        sa_name = strchr(sa_copy, '/');
        if (sa_name == NULL || sa_name == sa_copy || sa_name[1] == '\0' ||
            strchr(sa_name + 1, '/') != NULL) {
            fprintf(stderr, "ktrail rbac: --serviceaccount takes NAMESPACE/NAME, not '%s'\n", sa);
            return EXIT_USAGE;
        }
        *sa_name++ = '\0';
        sa_ns = sa_copy;
        snprintf(sa_user, sizeof(sa_user), "system:serviceaccount:%s:%s", sa_ns, sa_name);
        user = sa_user;
    }
    static const char sa_prefix[] = "system:serviceaccount:";
    if (sa == NULL && strncmp(user, sa_prefix, sizeof(sa_prefix) - 1) == 0) {
        /* a service account's username: its subject is the ServiceAccount */
        snprintf(sa_copy, sizeof(sa_copy), "%s", user + sizeof(sa_prefix) - 1);
        sa_name = strchr(sa_copy, ':');
        if (sa_name != NULL && sa_name != sa_copy && sa_name[1] != '\0') {
            *sa_name++ = '\0';
            sa_ns = sa_copy;
        } else {
            sa_name = NULL;
        }
    }
    int64_t t0 = 0, t1 = 0;
    struct kt_query *q = NULL;
    int rc = cli_open_period("ktrail rbac", db, since, until, 0, &t0, &t1, &q);
    if (rc != 0) {
        return rc;
    }
    struct perms ps = {0};
    int code = EXIT_OK;
    if (kt_query_permissions(q, user, t0, t1, keep_perm, &ps) != 0) {
        fprintf(stderr, "ktrail rbac: %s\n", kt_query_error(q));
        code = EXIT_RUNTIME;
    } else if (ps.n == 0) {
        fprintf(stderr, "ktrail rbac: no successful request by %s in the window\n", user);
        code = EXIT_RUNTIME;
    } else if (cmp != NULL) {
        code = compare(cmp, &ps) == 0 ? EXIT_OK : EXIT_USAGE;
    } else {
        char name[80];
        object_name(sa_name != NULL ? sa_name : user, name, sizeof(name));
        printf("# ktrail rbac: what %s used successfully: %llu requests\n", user, ps.requests);
        /* the cluster scope first (ClusterRole), then each namespace (Role) */
        const char *scopes[256];
        size_t nscopes = 0;
        for (size_t i = 0; i < ps.n && nscopes < 256; i++) {
            const char *ns = ps.p[i].resource != NULL ? ps.p[i].ns : NULL;
            int seen = 0;
            for (size_t k = 0; k < nscopes && !seen; k++) {
                seen = same(scopes[k], ns);
            }
            if (!seen) {
                size_t k = nscopes++;
                for (; k > 0 &&
                       (ns == NULL || (scopes[k - 1] != NULL && strcmp(scopes[k - 1], ns) > 0));
                     k--) {
                    scopes[k] = scopes[k - 1];
                }
                scopes[k] = ns;
            }
        }
        struct rule *rules = calloc(ps.n + 1, sizeof(*rules));
        for (size_t s = 0; rules != NULL && s < nscopes; s++) {
            size_t n = build_rules(&ps, scopes[s], rules, ps.n + 1);
            if (n == 0) {
                continue;
            }
            const char *kind = scopes[s] == NULL ? "ClusterRole" : "Role";
            print_role(kind, name, scopes[s], rules, n);
            print_binding(scopes[s] == NULL ? "ClusterRoleBinding" : "RoleBinding", kind, name,
                          scopes[s], user, sa_ns, sa_name);
        }
        free(rules);
    }
    perms_free(&ps);
    kt_query_close(q);
    return code;
}
