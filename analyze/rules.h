/*
 * rules.h: the streaming rule matcher. Falco-compatible k8s_audit rule files (list, macro and
 * rule items, append/override, exceptions, %field outputs) compiled once into trees whose
 * field references are resolved to accessor ids, then evaluated on every decoded event.
 */
#ifndef KT_ANALYZE_RULES_H
#define KT_ANALYZE_RULES_H

#include <stdio.h>

#include "../ingest/batch.h"
#include "alert.h"
#include "corr.h"

struct kt_ruleset;
struct kt_matcher;

struct kt_rules_opts {
    int min_priority; /* rules less severe than this are not evaluated (KT_PRIO_DEBUG: all) */
};

/*
 * Load and compile rule files in order: later files append to or override earlier items, as
 * in Falco. On any error nothing is loaded: *out stays NULL and errstr says
 * "file:line: item NAME: what". Returns 0, KT_EPARSE (a rule error) or KT_ENOMEM.
 */
int kt_ruleset_load(const char *const *files, size_t nfiles, const struct kt_rules_opts *opts,
                    struct kt_ruleset **out, char *errstr, size_t errlen);
/* A rule file for kt_ruleset_load_srcs: read from its name, or held in memory. */
struct kt_rules_src {
    const char *name; /* the file; with text, what errors call it */
    const char *text; /* its text (borrowed), or NULL to read the file */
    size_t len;       /* the text's length */
};
/* kt_ruleset_load for files and texts in memory alike. */
int kt_ruleset_load_srcs(const struct kt_rules_src *srcs, size_t nsrcs,
                         const struct kt_rules_opts *opts, struct kt_ruleset **out, char *errstr,
                         size_t errlen);
/* The default pack compiled into the binary at build time (rules/k8s_audit_rules.yaml),
 * named KT_RULES_BUILTIN in errors. Static: never freed. */
#define KT_RULES_BUILTIN "<builtin>/k8s_audit_rules.yaml"
const struct kt_rules_src *kt_rules_builtin(void);
void kt_ruleset_destroy(struct kt_ruleset *rs);

/* Rules, in load order, then correlations, in load order, for `ktrail rules list`. */
struct kt_rule_info {
    const char *name;   /* rule name */
    const char *desc;   /* description, or "" */
    const char *tags;   /* tags joined with ',' , or "" */
    const char *source; /* file:line where it was defined */
    int priority;       /* enum kt_priority */
    int enabled;        /* 0 when disabled */
    const char *kind;   /* "rule", "count", "distinct", "sequence", "first_seen" */
};
/* Rules and correlations: correlation j is entry rules + j. */
size_t kt_ruleset_count(const struct kt_ruleset *rs);
void kt_ruleset_info(const struct kt_ruleset *rs, size_t i, struct kt_rule_info *out);

/*
 * Correlations (count, distinct, sequence, first_seen items). Their steps are evaluated by
 * kt_matcher_run, which records hits in the batch (b->hits); the engine for their state is
 * made here (one per rule set, owned by the caller, fed by one thread in input order), and a
 * firing becomes an alert with kt_matcher_fire.
 */
size_t kt_ruleset_ncorr(const struct kt_ruleset *rs);
/* A new engine for the rule set's correlations (indexes as in b->hits); NULL on ENOMEM. */
struct kt_corr *kt_ruleset_corr_engine(const struct kt_ruleset *rs);

/* A per-thread evaluator over a loaded rule set (borrowed: it must outlive the matcher). */
struct kt_matcher *kt_matcher_create(const struct kt_ruleset *rs);
void kt_matcher_destroy(struct kt_matcher *m);

/*
 * Evaluate every enabled rule on every decoded event of b (events without a reject). Each
 * match appends a struct kt_alert to b->alerts, with output text and output fields JSON in
 * b->arena, and flags the event KT_EV_KEEP_RAW. Returns 0 or KT_ENOMEM.
 */
int kt_matcher_run(struct kt_matcher *m, struct kt_batch *b);

/*
 * Append the alert of a correlation firing to b->alerts: the correlation of hit h fired on
 * h's event, with f (the engine's view: copied, with the contributing events' references, into
 * b->arena). The output renders %group, %count and the fields of that event. 0 or KT_ENOMEM.
 */
int kt_matcher_fire(struct kt_matcher *m, struct kt_batch *b, const struct kt_corr_hit *h,
                    const struct kt_corr_fire *f);

/* Priority names (Falco's, case-insensitive; "info" accepted): enum, or -1. */
int kt_priority_parse(const char *s);
const char *kt_priority_name(int prio);

/*
 * Run the test cases of a YAML file (name, event, fires, not_fires) against rs, printing a
 * "FAIL file:line: ..." line per broken expectation to out and counting cases. When cover is
 * not NULL (one byte per rule of rs), it records which rules have a case that must fire (1)
 * and one that must not (2). Returns 0, KT_EIO, KT_EPARSE (errstr says where) or KT_ENOMEM.
 */
int kt_rules_test_file(const struct kt_ruleset *rs, const char *file, FILE *out, int *passed,
                       int *failed, unsigned char *cover, char *errstr, size_t errlen);

/* One alert's fields, wherever they are held (a batch, a database row). */
struct kt_alert_doc {
    struct kt_str time;     /* the event's stageTimestamp, RFC 3339 */
    const char *rule;       /* rule name */
    int priority;           /* enum kt_priority */
    struct kt_str output;   /* rendered output */
    struct kt_str fields;   /* output fields, a JSON object (empty: {}) */
    struct kt_str tags;     /* tags joined with ',' (may be empty) */
    struct kt_str audit_id; /* the event's auditID */
    struct kt_str stage;    /* the event's stage */
    const char *hostname;   /* the host that raised it, or NULL to leave it out */
};
/* Append the alert as Falco's JSON alert (time, rule, priority, output, output_fields,
 * tags, source "k8s_audit", hostname) plus audit_id and stage, without a newline: what
 * --alerts json prints and --alerts-http posts. 0 or KT_ENOMEM. */
int kt_alert_json(struct kt_buf *out, const struct kt_alert_doc *d);

/* Print one alert as a JSON line (kt_alert_json) or as text. */
void kt_alert_print(FILE *out, const struct kt_batch *b, const struct kt_alert *a, int json);

#endif
