/*
 * pipeline.c: see pipeline.h. The batch pool is a free list guarded by a mutex; batches move
 * loop -> writer -> (on_done, writer thread) -> free list -> loop.
 */
#include "pipeline.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "decode.h"

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct kt_batch **free; /* batches ready for the loop */
    size_t nfree;           /* how many */
    size_t nall;            /* batches owned by the pool */
    struct kt_batch **all;  /* every batch, for destruction */
    struct kt_source *src;  /* acknowledged after commit */
    int first_error;        /* first failed write */
    FILE *alerts;           /* print committed alerts here, or NULL */
    int alerts_json;        /* as JSON lines */
    void (*committed)(const struct kt_batch *b, int status, void *ctx); /* or NULL */
    void *committed_ctx;
};

static struct kt_batch *pool_get(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->nfree == 0) {
        pthread_cond_wait(&p->cv, &p->mu);
    }
    struct kt_batch *b = p->free[--p->nfree];
    pthread_mutex_unlock(&p->mu);
    return b;
}

static void pool_put(struct pool *p, struct kt_batch *b, int status)
{
    kt_batch_reset(b);
    pthread_mutex_lock(&p->mu);
    if (status != 0 && p->first_error == 0) {
        p->first_error = status;
    }
    p->free[p->nfree++] = b;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Writer thread, after the batch's transaction. */
static void batch_done(struct kt_batch *b, int status, void *ctx)
{
    struct pool *p = ctx;
    kt_source_ack(p->src, b, status);
    if (status == 0 && p->alerts != NULL) {
        /* printed once durable: what is printed is in the database */
        for (size_t i = 0; i < b->nalerts; i++) {
            kt_alert_print(p->alerts, b, &b->alerts[i], p->alerts_json);
        }
        fflush(p->alerts);
    }
    if (p->committed != NULL) {
        p->committed(b, status, p->committed_ctx);
    }
    pool_put(p, b, status);
}

static void progress_line(const struct kt_source *src, uint64_t records, int64_t t0, int final)
{
    double secs = (double)(kt_now_mono_us() - t0) / 1e6;
    double rate = secs > 0 ? (double)records / secs : 0;
    double mb = (double)src->bytes_done / 1e6;
    if (src->bytes_total > 0) {
        double total = (double)src->bytes_total / 1e6;
        double frac = total > 0 ? mb / total : 1;
        double eta = frac > 0 ? secs / frac - secs : 0;
        fprintf(stderr, "\r\033[K%.1f / %.1f MB (%.0f%%)  %.0f events/s  ETA %d:%02d", mb, total,
                frac * 100, rate, (int)eta / 60, (int)eta % 60);
    } else {
        fprintf(stderr, "\r\033[K%.1f MB  %.0f events/s", mb, rate);
    }
    if (final) {
        fputs("\r\033[K", stderr);
    }
    fflush(stderr);
}

int kt_pipeline_run(struct kt_source *src, struct kt_store *store,
                    const struct kt_pipeline_opts *opts, struct kt_pipeline_result *res)
{
    struct pool p = {.src = src,
                     .alerts = opts->alerts,
                     .alerts_json = opts->alerts_json,
                     .committed = opts->committed,
                     .committed_ctx = opts->committed_ctx};
    struct kt_decoder *dec = NULL;
    struct kt_matcher *matcher = NULL;
    struct kt_writer *w = NULL;
    int rc = 0;
    size_t depth = opts->depth ? opts->depth : 2;
    int64_t t0 = kt_now_mono_us(), last_progress = t0;
    struct kt_store_stats before;

    memset(res, 0, sizeof(*res));
    kt_store_stats(store, &before);
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    /* depth queued + one being written + one being filled */
    p.nall = depth + 2;
    p.all = calloc(p.nall, sizeof(*p.all));
    p.free = calloc(p.nall, sizeof(*p.free));
    if (p.all == NULL || p.free == NULL) {
        rc = KT_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < p.nall; i++) {
        p.all[i] = kt_batch_create();
        if (p.all[i] == NULL) {
            rc = KT_ENOMEM;
            goto out;
        }
        p.free[p.nfree++] = p.all[i];
    }
    dec = kt_decoder_create();
    if (dec == NULL) {
        rc = KT_ENOMEM;
        goto out;
    }
    if (opts->rules != NULL && (matcher = kt_matcher_create(opts->rules)) == NULL) {
        rc = KT_ENOMEM;
        goto out;
    }
    rc = kt_writer_create(store, depth, &w);
    if (rc != 0) {
        goto out;
    }

    int stopping = 0;
    for (;;) {
        if (!stopping && opts->stop != NULL && *opts->stop) {
            kt_source_stop(src);
            stopping = 1;
        }
        struct kt_batch *b = pool_get(&p);
        int n = kt_source_next(src, b, 200);
        if (n == KT_EAGAIN || n == KT_EOF || n < 0) {
            pool_put(&p, b, 0);
            if (n == KT_EOF) {
                break;
            }
            if (n < 0 && n != KT_EAGAIN) {
                res->source_error = n;
                rc = n;
                break;
            }
        } else {
            rc = kt_decode_batch(dec, b);
            if (rc == 0 && matcher != NULL) {
                rc = kt_matcher_run(matcher, b);
            }
            if (rc != 0) {
                pool_put(&p, b, 0);
                break;
            }
            res->records += b->nrecs;
            b->on_done = batch_done;
            b->on_done_ctx = &p;
            rc = kt_writer_submit(w, b);
            if (rc != 0) {
                pool_put(&p, b, 0);
                break;
            }
        }
        if (opts->progress && kt_now_mono_us() - last_progress > 250000) {
            last_progress = kt_now_mono_us();
            progress_line(src, res->records, t0, 0);
        }
    }
    int wrc = kt_writer_drain(w);
    if (wrc != 0) {
        res->write_error = wrc;
        if (rc == 0) {
            rc = wrc;
        }
    }
    if (opts->progress) {
        progress_line(src, res->records, t0, 1);
    }

out:
    kt_writer_destroy(w);
    kt_matcher_destroy(matcher);
    kt_decoder_destroy(dec);
    if (p.all != NULL) {
        for (size_t i = 0; i < p.nall; i++) {
            kt_batch_destroy(p.all[i]);
        }
    }
    free(p.all);
    free(p.free);
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    struct kt_store_stats after;
    kt_store_stats(store, &after);
    res->st.events = after.events - before.events;
    res->st.duplicates = after.duplicates - before.duplicates;
    res->st.rejects = after.rejects - before.rejects;
    res->st.alerts = after.alerts - before.alerts;
    res->st.batches = after.batches - before.batches;
    res->seconds = (double)(kt_now_mono_us() - t0) / 1e6;
    if (rc == 0 && p.first_error != 0) {
        rc = p.first_error;
        res->write_error = p.first_error;
    }
    return rc;
}
