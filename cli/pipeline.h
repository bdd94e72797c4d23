/*
 * pipeline.h: wiring one source to the decoder, the rules and the store's writer.
 *
 * The loop runs on the caller's thread: take a free batch and let the source fill it.
 * Analyzer threads decode and match filled batches in parallel and hand them to the writer
 * in input order. The writer thread commits it and calls back; the
 * callback acknowledges the source, prints the batch's alerts and returns the batch to the
 * pool. The pool's size bounds memory: when all batches are in flight, the loop waits.
 */
#ifndef KT_CLI_PIPELINE_H
#define KT_CLI_PIPELINE_H

#include <signal.h>

#include "rules.h"
#include "source.h"
#include "store.h"

struct kt_pipeline_opts {
    int progress;                   /* draw a progress line on stderr */
    size_t depth;                   /* batches queued for the writer at most */
    size_t analyzers;               /* threads decoding and matching; 0: one per CPU but one */
    volatile sig_atomic_t *stop;    /* set by a signal handler: stop the source and finish */
    const struct kt_ruleset *rules; /* rules to run on every event, or NULL */
    FILE *alerts;                   /* where committed alerts are printed, or NULL */
    int alerts_json;                /* print them as JSON lines (else text) */
    /* Called on the writer's thread for every batch once its transaction ended (status 0:
     * committed), after the source's ack and before the batch is recycled: metrics, alert
     * forwarding. May be NULL. Must not block for long: the writer waits for it. */
    void (*committed)(const struct kt_batch *b, int status, void *ctx);
    void *committed_ctx;
};

struct kt_pipeline_result {
    uint64_t records;         /* framed values read */
    struct kt_store_stats st; /* what the store did */
    double seconds;           /* wall time of the run */
    int write_error;          /* first store error, 0 if none */
    int source_error;         /* fatal source error, 0 if none */
};

/* Run src to its end (or until *stop) into store. Borrows everything. Returns 0 or the first
 * fatal error (store or source); res is filled either way. */
int kt_pipeline_run(struct kt_source *src, struct kt_store *store,
                    const struct kt_pipeline_opts *opts, struct kt_pipeline_result *res);

#endif
