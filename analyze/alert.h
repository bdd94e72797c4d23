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
};

#endif
