/*
 * fuzz_rules.h: what the two rule harnesses share (fuzz_rules_load.c, fuzz_rules_eval.c):
 * run a loaded rule set over some events as the pipeline does: decode, match, feed the
 * correlation hits to an engine in order, turn firings into alerts, and touch every alert's
 * text so that a slice outside its buffer is caught by AddressSanitizer.
 */
#ifndef KT_FUZZ_RULES_H
#define KT_FUZZ_RULES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "kt.h"
#include "rules.h"

/* Put text (len bytes) into b as one record per line. 0, or -1 out of memory. */
static int fuzz_batch_fill(struct kt_batch *b, const char *text, size_t len)
{
    if (len == 0) {
        return 0;
    }
    if (kt_batch_reserve(b, len) != 0) {
        return -1;
    }
    memcpy(b->buf, text, len);
    b->len = len;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        struct kt_record *r = kt_batch_add_record(b);
        if (r == NULL) {
            return -1;
        }
        r->pos = pos;
        r->len = end - pos;
        pos = end + 1;
    }
    return 0;
}

static void fuzz_touch(struct kt_str s)
{
    volatile char c;
    if (s.ptr != NULL && s.len > 0) {
        c = s.ptr[0];
        c = s.ptr[s.len - 1];
        (void)c;
    }
}

/* Decode b's records, run rs on them, then its correlations (a new engine), as the pipeline
 * does. Errors are the input's problem, not the harness's: they end the run quietly. */
static void fuzz_rules_run(const struct kt_ruleset *rs, struct kt_batch *b)
{
    struct kt_decoder *d = kt_decoder_create();
    struct kt_matcher *m = kt_matcher_create(rs);
    struct kt_corr *c = kt_ruleset_corr_engine(rs);
    if (d == NULL || m == NULL || c == NULL || kt_decode_batch(d, b) != 0 ||
        kt_matcher_run(m, b) != 0) {
        goto out;
    }
    size_t nhits = b->nhits; /* firing appends alerts, never hits */
    for (size_t k = 0; k < nhits; k++) {
        const struct kt_corr_hit h = b->hits[k];
        struct kt_corr_fire f;
        fuzz_touch(h.key);
        fuzz_touch(h.value);
        int fired = kt_corr_feed(c, h.corr, h.step, h.key, h.value, b->events[h.event].ts_us,
                                 (uint64_t)h.event + 1, &f);
        if (fired < 0 || (fired == 1 && kt_matcher_fire(m, b, &h, &f) != 0)) {
            break;
        }
    }
    for (size_t i = 0; i < b->nalerts; i++) {
        fuzz_touch((struct kt_str){b->alerts[i].rule, strlen(b->alerts[i].rule)});
        fuzz_touch(b->alerts[i].output);
        fuzz_touch(b->alerts[i].fields);
        fuzz_touch(b->alerts[i].group);
    }
    static FILE *null;
    if (null == NULL) {
        null = fopen("/dev/null", "w");
    }
    for (size_t i = 0; null != NULL && i < b->nalerts; i++) {
        kt_alert_print(null, b, &b->alerts[i], 1);
    }
out:
    kt_corr_destroy(c);
    kt_matcher_destroy(m);
    kt_decoder_destroy(d);
}

#endif
