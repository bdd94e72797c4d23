/*
 * rules_int.h: what the rule loader, compiler and evaluator share (module-private).
 */
#ifndef KT_ANALYZE_RULES_INT_H
#define KT_ANALYZE_RULES_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "corr.h"
#include "event.h"
#include "rules.h"
#include "value.h"

/* Where a pod spec sits in an object: a pod, a workload template, a cronjob's job template. */
enum { POD_PREFIXES = 3 };
extern const char *const pod_spec_prefix[POD_PREFIXES];

/* Pointer fields read one of three texts. */
enum { BODY_REQ = 0, BODY_RESP = 1, BODY_EVENT = 2, BODY_COUNT = 3 };

/* A list or macro item as loaded (before compilation). */
struct item {
    char *name;      /* item name */
    char *cond;      /* macro: condition text */
    char **values;   /* list: items (may name other lists) */
    size_t nvalues;  /* count */
    char where[256]; /* "file:line" of its definition, for errors */
};

enum op {
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_CONTAINS,
    OP_ICONTAINS,
    OP_STARTSWITH,
    OP_ENDSWITH,
    OP_GLOB,
    OP_IN,
    OP_INTERSECTS,
    OP_PMATCH,
    OP_EXISTS,
    OP_REGEX,
    OP_IN_CIDR,
};

/* An address prefix of in_cidr, parsed once at compile time. */
struct cidr {
    uint8_t family;   /* 4 or 6 */
    uint8_t bits;     /* prefix length: 0..32 or 0..128 */
    uint8_t addr[16]; /* network address (4 or 16 bytes), host bits cleared */
};

/* Parse an address ("10.1.2.3", "2001:db8::1", "::ffff:10.1.2.3" as IPv4) into out[16];
 * returns 4 or 6, or 0 when s is not an address. Reads len bytes, allocates nothing. */
int cidr_addr_parse(const char *s, size_t len, uint8_t out[16]);
/* Parse "ADDR/BITS" or a bare ADDR (one host) into c. 0, or -1 when it is not a prefix. */
int cidr_parse(const char *s, size_t len, struct cidr *c);
/* Is the address text s inside any of the n prefixes? Not an address: 0. Allocates nothing. */
int cidr_match(const struct cidr *c, size_t n, struct kt_str s);

enum node_kind { N_AND, N_OR, N_NOT, N_CMP, N_TRUE };

/* Limits on what rule files can make the compiler build (rules_compile.c says why and how):
 * the nesting of one condition, and the terms and values of all conditions of a rule set
 * once macros are inlined and lists expanded. */
enum {
    COND_MAX_DEPTH = 256,
    COND_MAX_NODES = 100000,
    COND_MAX_VALUES = 250000,
    COND_MAX_REGEXES = 4096,
};
/* Distinct fields (with their [ARG]) a rule set reads: resolving one searches the others, and
 * every event walks every pointer among them (the pack reads about 140). */
#define COND_MAX_FIELDS 4096
#define COND_STR(x) COND_STR_(x)
#define COND_STR_(x) #x

/* A field reference, resolved at compile time: no name lookups per event. */
struct fref {
    int id;          /* index in the field table (fields.c) */
    char *arg;       /* [ARG] of fields that take one, or NULL */
    char *ptr;       /* JSON pointer these fields read (jevt.value, body fields), or NULL */
    int slot;        /* per-event cache slot in the matcher */
    int body;        /* pointer fields: BODY_* they read, else -1 */
    int nalt;        /* object fields ("@pod", "@obj"): alternatives, first present wins */
    int alt_slot[6]; /* their cache slots */
    int alt_body[6]; /* BODY_REQ, or BODY_RESP (read for patch: the result, not the patch) */
    const char *rel; /* pointer fields: the pointer relative to that body */
};

/* The pointer fields of a rule set, grouped by the text they read (one walk per group). */
struct ptr_group {
    const char **rel;            /* relative pointers */
    int *slot;                   /* their cache slots */
    int n;                       /* count */
    struct field_walker *walker; /* the pointers, split once (after loading) */
};

struct node {
    int kind;           /* enum node_kind */
    int height;         /* levels from here down (at most COND_MAX_DEPTH: every recursive
                           walk of a tree is that shallow) */
    struct node *a, *b; /* children (NOT: a only) */
    int op;             /* N_CMP: enum op */
    struct fref f;      /* N_CMP: the field */
    char **vals;        /* N_CMP: the value(s), lists expanded */
    size_t *lens;       /* their lengths */
    size_t nvals;       /* count */
    pcre2_code *re;     /* OP_REGEX: compiled (and JIT-compiled) pattern */
    struct cidr *cidrs; /* OP_IN_CIDR: the values as prefixes (nvals of them) */
};

/* suppress: further matches of one group within a window are merged into its first alert. */
struct suppress {
    char **by;        /* group fields (a correlation's: none means its own group) */
    size_t nby;       /* count */
    struct fref *byf; /* compiled */
    int64_t for_us;   /* the window; 0: no suppression */
};

/* A compiled rule. */
struct rule {
    char *name, *desc, *cond, *output, *tags, *source;
    int priority;      /* enum kt_priority */
    int enabled;       /* 0: skipped */
    struct node *root; /* compiled condition (with exceptions) */
    struct fref *outf; /* fields named in the output, in order */
    size_t noutf;
    char **exc; /* exceptions: compiled into root, kept as text for appends */
    size_t nexc;
    uint32_t pf_verbs;   /* prefilter.c: verbs the rule can match (bit per verb, all: any) */
    uint64_t pf_res;     /* resources it can match (bit per interned resource, all: any) */
    uint32_t pf_stage;   /* stages it can match (bit per enum kt_stage, all: any) */
    struct suppress sup; /* suppress: */
    char *fmt;           /* the compact form's format of its alerts (kt_rule_format) */
};

/* One step of a correlation (count, distinct and first_seen have one). */
struct cstep {
    char *ref;         /* the rule it reuses, by name, or NULL */
    char *cond;        /* or an inline condition, as text */
    char **by;         /* the group-by (join key) field names */
    size_t nby;        /* count */
    int rule;          /* compiled: index of the referenced rule, or -1 */
    struct node *root; /* compiled: the inline condition (owned), else NULL */
    struct fref *byf;  /* compiled: the by fields */
    uint32_t pf_verbs; /* prefilter masks of the condition (see struct rule) */
    uint64_t pf_res;   /* ... */
    uint32_t pf_stage; /* ... */
};

/* A correlation item: count, distinct, sequence or first_seen (see corr.h). */
struct corr {
    char *name, *desc, *output, *tags, *source;
    int priority;           /* enum kt_priority */
    int enabled;            /* 0: not evaluated */
    struct kt_corr_def def; /* kind, window, threshold... for the engine */
    struct cstep *steps;    /* steps, in order */
    size_t nsteps;          /* count (1 unless a sequence) */
    char *field;            /* distinct: the field whose values are counted */
    struct fref fieldf;     /* compiled */
    struct fref *outf;      /* fields named in the output (not %group, %count), in order */
    size_t noutf;           /* count */
    struct suppress sup;    /* suppress: (count and distinct: their group for their window,
                               unless suppress: false) */
};

/* Names to positions (of lists, macros, rules), so that loading 20000 items does not compare
 * each name with every earlier one: open addressing on the name's hash (rules_load.c). */
struct name_index {
    size_t *pos; /* per slot: an item's position + 1, 0 when empty */
    size_t cap;  /* slots: 0, or a power of two at least twice the names */
};

struct kt_ruleset {
    struct rule *rules; /* in load order */
    size_t nrules;
    struct corr *corrs; /* correlations, in load order */
    size_t ncorrs;
    struct item *lists; /* lists by name */
    size_t nlists;
    struct item *macros; /* macros by name */
    size_t nmacros;
    struct name_index ix_lists, ix_macros; /* while loading (lists and macros are then sorted) */
    struct name_index ix_rules;            /* rules by name */
    int nslots;                            /* field references (cache slots) */
    struct ptr_group groups[BODY_COUNT];   /* pointer fields by body */
    struct fref *refs;                     /* each distinct field reference, resolved once */
    size_t nrefs;                          /* count */
    char **owned;                          /* strings pointers point into (arguments, paths) */
    size_t nowned;                         /* count */
    struct kt_rules_opts opts;
    size_t cond_nodes;      /* condition nodes built, all conditions (COND_MAX_NODES) */
    size_t cond_values;     /* values built, lists expanded (COND_MAX_VALUES) */
    size_t cond_regexes;    /* regexes compiled (COND_MAX_REGEXES) */
    const char *pf_res[62]; /* prefilter.c: resources rules name, by bit */
    size_t pf_reslen[62];   /* their lengths */
    int npf_res;            /* count */
};

/* Per-event scratch the matcher lends to field getters: results shared by several fields. */
struct field_memo {
    uint64_t gen;           /* the event being evaluated (the matcher's generation) */
    uint64_t pss_gen;       /* pss[] belongs to this generation */
    struct kt_value pss[2]; /* Pod Security Standards: baseline, restricted */
};

/* Prefilter (prefilter.c): rule masks from their verb and resource conjuncts, at load; an
 * event's verb and resource bits. A rule can match only if both masks share a bit. */
void prefilter_compile(struct kt_ruleset *rs);
void prefilter_event(const struct kt_ruleset *rs, const struct kt_event *ev, uint32_t *verb,
                     uint64_t *res, uint32_t *stage);

/* Fields (fields.c). */
/* Which text ptr reads, and the pointer relative to it. -1 when ptr is NULL. */
int field_body(const char *ptr, const char **rel);
struct kt_str field_body_text(const struct kt_batch *b, const struct kt_event *ev, int body);
/* Pointers split once, walked many times (walk.c). */
struct field_walker;
struct field_walker *field_walker_create(const char *const *ptrs, int n);
void field_walker_destroy(struct field_walker *fw);
/* Walk json once for the walker's pointers, filling outs[0 .. n). 0 or KT_ENOMEM. */
int field_walker_run(const struct field_walker *fw, struct kt_arena *a, const char *json,
                     size_t len, struct kt_value *outs);
/* Walk json once for n (at most 64) pointers (relative to it), filling outs[i]. 0 or KT_ENOMEM. */
int field_walk(struct kt_arena *a, const char *json, size_t len, const char *const *ptrs, int n,
               struct kt_value *outs);
int field_lookup(const char *name, size_t len, int *takes_arg, const char **ptr);
/* Fill the value of f for ev; borrowed strings point into the batch or its arena. */
int field_get(const struct fref *f, const struct kt_batch *b, const struct kt_event *ev,
              struct field_memo *memo, struct kt_value *out);
const char *field_name(int id);
/* Pod Security Standards checks the event's pod spec violates (pss.c): out[0] baseline,
 * out[1] restricted (which includes baseline's); a list, empty when compliant; missing when
 * the event has no pod spec. */
int pss_evaluate(const struct kt_batch *b, const struct kt_event *ev, struct kt_value out[2]);

/* Compile condition text into a tree; errors go to err ("item: message"). */
struct node *cond_compile(struct kt_ruleset *rs, const char *text, char *err, size_t errlen);
void node_free(struct node *n);
/* Sort lists or macros by name, once loaded: conditions look them up by binary search. */
void items_sort(struct item *items, size_t n);
/* Is text a comparison operator taking a value ("=", "startswith", "in"...)? Of those, one
 * taking a list in ( ) ("in", "intersects", "pmatch", "in_cidr")? For exceptions' comps. */
int cond_op_known(const char *text);
int cond_op_is_set(const char *text);
/* Does name, whole, name a field (with its [ARG] where it takes one)? For exceptions'
 * fields, which are written into condition text: one field, nothing else. */
int cond_field_known(const char *name);
/* Resolve a field name (with [arg]) into f, assigning a cache slot. 0, -1 (unknown, or out of
 * memory) or KT_EFULL (past COND_MAX_FIELDS); fref_strerror says which for errors. */
int fref_resolve(struct kt_ruleset *rs, const char *name, size_t len, struct fref *f);
const char *fref_strerror(int rc);
/* The format of a rule's alerts in their compact form (struct kt_alert: fmt), made once at
 * load from its output, fields and tags: malloc'd, NULL when out of memory. */
char *kt_rule_format(const char *output, const struct fref *outf, size_t noutf, const char *tags);

#endif
