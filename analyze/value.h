/*
 * value.h: a field's value while rules evaluate one event.
 *
 * A field is missing, one string, or a list of strings (one per container, volume, subject,
 * rule...). Numbers and booleans are strings as written in the JSON ("0", "true"); the rule
 * evaluator compares numerically when both sides parse as numbers. Slices point into the
 * event's bytes or the batch arena and live as long as the batch.
 */
#ifndef KT_ANALYZE_VALUE_H
#define KT_ANALYZE_VALUE_H

#include "../ingest/kt.h"

enum kt_value_kind {
    KT_V_NONE = 0, /* the event has no such field: every comparison is false */
    KT_V_STR = 1,  /* one value in s */
    KT_V_LIST = 2, /* n values in v (n may be 0: present but empty) */
};

struct kt_value {
    int kind;               /* enum kt_value_kind */
    struct kt_str s;        /* KT_V_STR */
    const struct kt_str *v; /* KT_V_LIST: values (a list entry may have ptr NULL: missing) */
    uint32_t n;             /* KT_V_LIST: count */
};

#endif
