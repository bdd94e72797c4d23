/*
 * alert.h: one rule match, as the rule engine produces it and the store keeps it.
 */
#ifndef KT_ANALYZE_ALERT_H
#define KT_ANALYZE_ALERT_H

#include "../ingest/kt.h"

enum kt_priority {
    KT_PRIO_EMERGENCY = 0,
    KT_PRIO_ALERT = 1,
    KT_PRIO_CRITICAL = 2,
    KT_PRIO_ERROR = 3,
    KT_PRIO_WARNING = 4,
    KT_PRIO_NOTICE = 5,
    KT_PRIO_INFORMATIONAL = 6,
    KT_PRIO_DEBUG = 7,
};

struct kt_alert {
    uint32_t event;       /* index of the matching event in its batch */
    const char *rule;     /* rule name: owned by the rule set, outlives the batch */
    int priority;         /* enum kt_priority */
    const char *tags;     /* tags joined with ',': owned by the rule set, or NULL */
    struct kt_str output; /* rendered output text, in the batch arena */
    struct kt_str fields; /* output fields as a JSON object, in the batch arena */
    struct kt_str fmt;    /* the same, compact: what every alert of the rule shares, a JSON
                             object {"t": tags, "p": [the output's text between its fields],
                             "k": [the field names]} (a dictionary value in the store), and */
    struct kt_str vals;   /* the values of this one, a JSON array (null: the field had none,
                             <NA> in the output); both empty for a correlation's firing */
    const uint64_t *refs; /* a correlation's firing: event row ids of every contributing
                             event, oldest first (batch arena); NULL for a rule's alert */
    size_t nrefs;         /* how many */
    struct kt_str group;  /* suppression group: the suppress.by values joined with 0x1f (batch
                             arena); empty when the rule does not suppress */
    int64_t suppress_us;  /* its window: further matches of the group within it are merged */
    int stored;           /* set by the store: 1 when its transaction added the alert, 0 for
                             the alert of a duplicate event (a replay, a retried request) or
                             one merged into an earlier alert (another stage of its request,
                             its suppression group): only stored alerts are printed,
                             forwarded and counted */
};

/*
 * One correlation step an event matched, recorded by the analyzer (which must not touch the
 * correlation state: several analyzers run at once, and order matters) and fed to the
 * engine by the store's writer, in input order, only if the event was newly stored.
 */
struct kt_corr_hit {
    uint32_t event;      /* index of the event in its batch */
    uint32_t corr;       /* correlation index in the rule set */
    uint32_t step;       /* sequence: the step; else 0 */
    struct kt_str key;   /* group key: the by-values joined with 0x1f (batch arena) */
    struct kt_str value; /* distinct: the value counted; else empty (batch arena) */
};

#endif
