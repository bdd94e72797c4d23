/*
 * writer.c: the single writer thread (see store.h).
 *
 * A bounded FIFO of batch pointers sits between the pipeline and the one thread that commits
 * them. submit() blocking on a full queue is the pipeline's backpressure: a slow disk slows
 * reading instead of growing memory. Batches are written and acknowledged strictly in
 * submission order, so a source may acknowledge positions in order.
 *
 * When the thread comes back for work and finds several batches waiting, it writes them all
 * in one transaction (group commit, store_write_group): each batch is still all or nothing
 * with its checkpoint, and under load the commits get fewer and larger, which is what makes
 * the indexes affordable (see store.c). An idle pipeline still commits every batch at once. A
 * failed write does not stop the thread (the source hears the status through on_done and may retry
 * or stop); the first failure is kept for drain() to report.
 */
#include <pthread.h>
#include <stdlib.h>

#include "store_int.h"

struct kt_writer {
    struct kt_store *store; /* borrowed: outlives the writer */
    pthread_t thread;       /* the writer */
    pthread_mutex_t mu;     /* guards everything below */
    pthread_cond_t cv;      /* the queue or the thread's state changed */
    struct kt_batch **q;    /* ring of queued batches */
    struct kt_batch **take; /* the batches the thread is writing (cap entries) */
    int *status;            /* their results (cap entries) */
    size_t cap;             /* ring size: the depth */
    size_t head;            /* next to write */
    size_t n;               /* queued */
    int busy;               /* the thread is writing a batch it took off the queue */
    int quit;               /* destroy() asked the thread to end once the queue is empty */
    int first_error;        /* first failed write, 0 if none */
};

static void *writer_main(void *arg)
{
    struct kt_writer *w = arg;

    pthread_setname_np(pthread_self(), "kt-writer");
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->n == 0 && !w->quit) {
            pthread_cond_wait(&w->cv, &w->mu);
        }
        if (w->n == 0) {
            break; /* quit, and nothing left */
        }
        size_t n = w->n;
        for (size_t i = 0; i < n; i++) {
            w->take[i] = w->q[(w->head + i) % w->cap];
        }
        w->head = (w->head + n) % w->cap;
        w->n = 0;
        w->busy = 1;
        pthread_cond_broadcast(&w->cv); /* the queue has room for submit() */
        pthread_mutex_unlock(&w->mu);

        int rc = store_write_group(w->store, w->take, n, w->status);
        for (size_t i = 0; i < n; i++) {
            struct kt_batch *b = w->take[i];
            if (b->on_done != NULL) {
                b->on_done(b, w->status[i], b->on_done_ctx);
            }
        }

        pthread_mutex_lock(&w->mu);
        if (rc != 0 && w->first_error == 0) {
            w->first_error = rc;
        }
        w->busy = 0;
        pthread_cond_broadcast(&w->cv); /* drain() may be waiting for idle */
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/*
 * Start a writer for s (borrowed) with room for depth queued batches (0 is taken as 1).
 * 0 and *out set, or KT_ENOMEM (no thread started).
 */
int kt_writer_create(struct kt_store *s, size_t depth, struct kt_writer **out)
{
    struct kt_writer *w = calloc(1, sizeof(*w));

    *out = NULL;
    if (w == NULL) {
        return KT_ENOMEM;
    }
    w->store = s;
    w->cap = depth > 0 ? depth : 1;
    w->q = calloc(w->cap, sizeof(*w->q));
    w->take = calloc(w->cap, sizeof(*w->take));
    w->status = calloc(w->cap, sizeof(*w->status));
    if (w->q == NULL || w->take == NULL || w->status == NULL) {
        free(w->status);
        free(w->take);
        free(w->q);
        free(w);
        return KT_ENOMEM;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w->status);
        free(w->take);
        free(w->q);
        free(w);
        return KT_ENOMEM;
    }
    *out = w;
    return 0;
}

/*
 * Queue b (borrowed until its on_done runs; the caller must not touch it before), blocking
 * while the queue is full. 0, or KT_EINVAL for a NULL batch.
 */
int kt_writer_submit(struct kt_writer *w, struct kt_batch *b)
{
    if (b == NULL) {
        return KT_EINVAL;
    }
    pthread_mutex_lock(&w->mu);
    while (w->n == w->cap) {
        pthread_cond_wait(&w->cv, &w->mu);
    }
    w->q[(w->head + w->n) % w->cap] = b;
    w->n++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int kt_writer_drain(struct kt_writer *w)
{
    int rc;

    pthread_mutex_lock(&w->mu);
    while (w->n > 0 || w->busy) {
        pthread_cond_wait(&w->cv, &w->mu);
    }
    rc = w->first_error;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void kt_writer_destroy(struct kt_writer *w)
{
    if (w == NULL) {
        return;
    }
    kt_writer_drain(w);
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->status);
    free(w->take);
    free(w->q);
    free(w);
}
