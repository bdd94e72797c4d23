/*
 * source.h: the one small interface every input sits behind (files, webhook, Kafka).
 *
 * The pipeline pulls: next() fills an empty batch with framed records and the checkpoint
 * that describes the position just past them. After the store commits the batch, the
 * pipeline calls ack() so the source can release what it held (answer an HTTP request,
 * store Kafka offsets). pause()/resume() are backpressure; stop() asks next() to finish
 * promptly (it returns KT_EOF once nothing is pending). A source never interprets events.
 */
#ifndef KT_INGEST_SOURCE_H
#define KT_INGEST_SOURCE_H

#include "batch.h"

struct kt_source;

struct kt_source_ops {
    const char *name; /* "file", "webhook", "kafka": used in log prefixes */
    /* Fill b (empty on entry). 0: b has records or a checkpoint to commit; KT_EAGAIN: nothing
     * within timeout_ms; KT_EOF: input exhausted or stopped; other negative: fatal error, with
     * a message from kt_source_error(). */
    int (*next)(struct kt_source *src, struct kt_batch *b, int timeout_ms);
    /* The batch is durable (status 0) or could not be stored (status < 0). */
    void (*ack)(struct kt_source *src, struct kt_batch *b, int status);
    /* Backpressure, both from the loop thread and may be NULL: pause() when the pipeline
     * must wait for the store, and again every 100 ms while it waits (so a source can keep
     * its sessions alive without reading); resume() once it goes on. */
    void (*pause)(struct kt_source *src);
    void (*resume)(struct kt_source *src);
    void (*stop)(struct kt_source *src); /* async-signal-unsafe; call from the loop */
    void (*destroy)(struct kt_source *src);
};

/* Base of every source; each implementation embeds it first. */
struct kt_source {
    const struct kt_source_ops *ops; /* the implementation */
    char error[512];                 /* last fatal error, one line, for the user */
    uint64_t bytes_total;            /* input size when known (progress), else 0 */
    uint64_t bytes_done;             /* input consumed so far */
    uint64_t skipped;                /* envelope entries that hold no audit event (other log
                                        streams or categories, control messages): dropped and
                                        counted here; updated with __atomic builtins */
};

/*
 * Checkpoint lookup, supplied by whoever owns durability (the store) so that ingest never
 * depends on it. Returns 0 and fills out (all but fingerprint and path) when a checkpoint for
 * fingerprint exists, KT_ENOENT when none, another KT_E* code on failure.
 */
typedef int (*kt_ckpt_lookup_fn)(void *ctx, uint64_t fingerprint, struct kt_ckpt_file *out);

static inline int kt_source_next(struct kt_source *s, struct kt_batch *b, int timeout_ms)
{
    return s->ops->next(s, b, timeout_ms);
}
static inline void kt_source_ack(struct kt_source *s, struct kt_batch *b, int status)
{
    if (s->ops->ack != NULL) {
        s->ops->ack(s, b, status);
    }
}
static inline void kt_source_pause(struct kt_source *s)
{
    if (s->ops->pause != NULL) {
        s->ops->pause(s);
    }
}
static inline void kt_source_resume(struct kt_source *s)
{
    if (s->ops->resume != NULL) {
        s->ops->resume(s);
    }
}
static inline void kt_source_stop(struct kt_source *s)
{
    s->ops->stop(s);
}
static inline void kt_source_destroy(struct kt_source *s)
{
    if (s != NULL) {
        s->ops->destroy(s);
    }
}
static inline const char *kt_source_error(const struct kt_source *s)
{
    return s->error;
}

#endif
