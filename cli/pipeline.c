/*
 * pipeline.c: see pipeline.h.
 *
 * Batches move loop -> analyzers -> writer -> (on_done, writer thread) -> free list -> loop.
 * The loop thread only fills batches from the source and numbers them; analyzer threads
 * (each with its own decoder and matcher) decode and match them in parallel, then hand them
 * to the writer strictly in their numbers' order, so the store commits, and sources see
 * acknowledgements, in input order (a file checkpoint never goes backwards). One mutex guards
 * the free list, the analyzers' queue and the submission turn. Once a batch could not be
 * stored the writer fails every later one, so the loop stops reading (see store.h).
 */
#include "pipeline.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "decode.h"

/* A filled batch waiting for an analyzer, and its place in input order. */
struct item {
    struct kt_batch *b;
    uint64_t seq;
};

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;              /* free list, analyzer queue or turn changed */
    struct kt_batch **free;         /* batches ready for the loop */
    size_t nfree;                   /* how many */
    size_t nall;                    /* batches owned by the pool */
    struct kt_batch **all;          /* every batch, for destruction */
    struct item *q;                 /* filled batches for the analyzers (ring of nall) */
    size_t qhead;                   /* oldest */
    size_t qn;                      /* queued */
    uint64_t turn;                  /* seq of the next batch to submit to the writer */
    int quit;                       /* the loop is done: analyzers end once the queue is empty */
    int fatal;                      /* an analyzer failed (out of memory): the loop stops */
    struct kt_writer *w;            /* the store's writer */
    volatile sig_atomic_t *stop;    /* the run's stop flag, or NULL */
    struct kt_source *src;          /* acknowledged after commit */
    const struct kt_ruleset *rules; /* or NULL */
    int first_error;                /* first failed write */
    FILE *alerts;                   /* print committed alerts here, or NULL */
    int alerts_json;                /* as JSON lines */
    void (*committed)(const struct kt_batch *b, int status, void *ctx); /* or NULL */
    void *committed_ctx;
};

/* A free batch for the loop. While none is free the store is behind: the source is paused,
 * and told again every PAUSE_TICK_MS while the wait lasts, then resumed. A stop asked for
 * meanwhile reaches the writer at once: it may be waiting for a reader to let the WAL go. */
static struct kt_batch *pool_get(struct pool *p)
{
    enum { PAUSE_TICK_MS = 100 };
    int paused = 0;

    pthread_mutex_lock(&p->mu);
    while (p->nfree == 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += PAUSE_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&p->cv, &p->mu, &until) != 0 && p->nfree == 0) {
            pthread_mutex_unlock(&p->mu);
            if (p->stop != NULL && *p->stop) {
                kt_writer_stop(p->w);
            }
            kt_source_pause(p->src);
            paused = 1;
            pthread_mutex_lock(&p->mu);
        }
    }
    struct kt_batch *b = p->free[--p->nfree];
    pthread_mutex_unlock(&p->mu);
    if (paused) {
        kt_source_resume(p->src);
    }
    return b;
}

/* A batch could not be stored (the writer gave up, and fails every later batch): reading
 * on would only fill batches that cannot be stored, so the loop stops. */
static int pool_write_failed(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    int failed = p->first_error != 0;
    pthread_mutex_unlock(&p->mu);
    return failed;
}

static void pool_put(struct pool *p, struct kt_batch *b, int status)
{
    kt_batch_reset(b);
    pthread_mutex_lock(&p->mu);
    if (status != 0 && p->first_error == 0) {
        p->first_error = status;
    }
    p->free[p->nfree++] = b;
    pthread_cond_broadcast(&p->cv);
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
            if (b->alerts[i].stored) { /* not again for a duplicate event */
                kt_alert_print(p->alerts, b, &b->alerts[i], p->alerts_json);
            }
        }
        fflush(p->alerts);
    }
    if (p->committed != NULL) {
        p->committed(b, status, p->committed_ctx);
    }
    pool_put(p, b, status);
}

/* Analyzer thread: decode and match queued batches, submit them in order. */
static void *analyzer_main(void *arg)
{
    struct pool *p = arg;
    struct kt_decoder *dec = kt_decoder_create();
    struct kt_matcher *matcher = p->rules != NULL ? kt_matcher_create(p->rules) : NULL;
    int broken = dec == NULL || (p->rules != NULL && matcher == NULL);

    pthread_setname_np(pthread_self(), "kt-analyze");
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->qn == 0 && !p->quit) {
            pthread_cond_wait(&p->cv, &p->mu);
        }
        if (p->qn == 0) {
            break;
        }
        struct item it = p->q[p->qhead];
        p->qhead = (p->qhead + 1) % p->nall;
        p->qn--;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);

        int rc = broken ? KT_ENOMEM : kt_decode_batch(dec, it.b);
        if (rc == 0 && matcher != NULL) {
            rc = kt_matcher_run(matcher, it.b);
        }

        pthread_mutex_lock(&p->mu);
        while (p->turn != it.seq) {
            pthread_cond_wait(&p->cv, &p->mu);
        }
        if (rc == 0 && !p->fatal) {
            it.b->on_done = batch_done;
            it.b->on_done_ctx = p;
            /* in turn, so the writer sees input order; it may block (backpressure) */
            pthread_mutex_unlock(&p->mu);
            rc = kt_writer_submit(p->w, it.b);
            pthread_mutex_lock(&p->mu);
        }
        if (rc != 0 || p->fatal) {
            /* not submitted: recycle it, and stop the run on a real failure */
            if (rc != 0 && p->fatal == 0) {
                p->fatal = rc;
            }
            pthread_mutex_unlock(&p->mu);
            pool_put(p, it.b, 0);
            pthread_mutex_lock(&p->mu);
        }
        p->turn++;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    kt_matcher_destroy(matcher);
    kt_decoder_destroy(dec);
    return NULL;
}

/* Tell the n analyzers to finish what was filled and end, and wait for them. */
static void stop_analyzers(struct pool *p, pthread_t *threads, size_t n)
{
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < n; i++) {
        pthread_join(threads[i], NULL);
    }
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
                     .stop = opts->stop,
                     .rules = opts->rules,
                     .alerts = opts->alerts,
                     .alerts_json = opts->alerts_json,
                     .committed = opts->committed,
                     .committed_ctx = opts->committed_ctx};
    pthread_t threads[16];
    size_t nthreads = 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    /* The writer is the one stage that cannot be split, and it takes most of the work (55%
     * of the CPU on the bench corpus with the default pack): it is given a core of its own.
     * On 2 cores, one analyzer beside the reading loop rather than two took a replay with
     * rules from 2.70 s to 2.48 s (medians of 6, the 200,000-event corpus). */
    size_t nanalyzers = opts->analyzers > 0 ? opts->analyzers : ncpu > 1 ? (size_t)ncpu - 1 : 1;
    int rc = 0;
    size_t depth = opts->depth ? opts->depth : 2;
    int64_t t0 = kt_now_mono_us(), last_progress = t0;
    uint64_t seq = 0;
    struct kt_store_stats before;

    if (nanalyzers > sizeof(threads) / sizeof(threads[0])) {
        nanalyzers = sizeof(threads) / sizeof(threads[0]);
    }
    memset(res, 0, sizeof(*res));
    kt_store_stats(store, &before);
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    /* depth queued + one being written + one per analyzer + one being filled */
    p.nall = depth + 2 + nanalyzers;
    p.all = calloc(p.nall, sizeof(*p.all));
    p.free = calloc(p.nall, sizeof(*p.free));
    p.q = calloc(p.nall, sizeof(*p.q));
    if (p.all == NULL || p.free == NULL || p.q == NULL) {
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
    if (opts->rules != NULL) {
        char err[256] = "";
        /* the writer runs the correlations, in input order, inside each transaction */
        if ((rc = kt_store_attach_rules(store, opts->rules, err, sizeof(err))) != 0) {
            kt_error("pipeline", "%s", err);
            goto out;
        }
    }
    rc = kt_writer_create(store, depth, &p.w);
    if (rc != 0) {
        goto out;
    }
    for (; nthreads < nanalyzers; nthreads++) {
        if (pthread_create(&threads[nthreads], NULL, analyzer_main, &p) != 0) {
            rc = KT_ENOMEM;
            break;
        }
    }

    int stopping = 0;
    while (rc == 0 && !pool_write_failed(&p)) {
        if (!stopping && opts->stop != NULL && *opts->stop) {
            kt_source_stop(src);
            /* the source may wait for commits that wait for a reader: they go now */
            kt_writer_stop(p.w);
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
            res->records += b->nrecs;
            pthread_mutex_lock(&p.mu);
            /* the pool has nall batches, so the ring (nall entries) never overflows */
            p.q[(p.qhead + p.qn) % p.nall] = (struct item){b, seq++};
            p.qn++;
            pthread_cond_broadcast(&p.cv);
            if (p.fatal != 0) {
                rc = p.fatal;
            }
            pthread_mutex_unlock(&p.mu);
        }
        if (opts->progress && kt_now_mono_us() - last_progress > 250000) {
            last_progress = kt_now_mono_us();
            progress_line(src, res->records, t0, 0);
        }
    }
    /* let the analyzers finish what was filled, then the writer what was submitted */
    stop_analyzers(&p, threads, nthreads);
    nthreads = 0;
    if (rc == 0 && p.fatal != 0) {
        rc = p.fatal;
    }
    if (p.w != NULL) {
        int wrc = kt_writer_drain(p.w);
        if (wrc != 0) {
            res->write_error = wrc;
            if (rc == 0) {
                rc = wrc;
            }
        }
    }
    if (opts->progress) {
        progress_line(src, res->records, t0, 1);
    }

out:
    stop_analyzers(&p, threads, nthreads);
    kt_writer_destroy(p.w);
    if (p.all != NULL) {
        for (size_t i = 0; i < p.nall; i++) {
            kt_batch_destroy(p.all[i]);
        }
    }
    free(p.all);
    free(p.free);
    free(p.q);
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
