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
 * the indexes affordable (see store.c). An idle pipeline still commits every batch at once.
 *
 * No batch commits after one that failed: a file batch's checkpoint covers every record read
 * before it, so committing it past a failed batch would skip that batch's records for good.
 * A transient failure (store_failure_transient) is retried with doubling waits for the
 * store's retry budget, the failed batch and all after it held (the queue fills, submit()
 * blocks: backpressure). Past the budget, or on a permanent failure, the writer is failed
 * for good: that batch and every later one are called back with the error, unwritten, so no
 * source acknowledges past the last commit; drain() reports it and the pipeline stops.
 *
 * Before each transaction the writer asks the store for room in the WAL (store_wal_room) and
 * waits while a reader keeps the WAL past its bound, except once drain() or stop() was called
 * (the source has ended or is ending: what is queued is bounded, and a webhook request
 * waiting for its commit must not hold a shutdown). stop() ends retries too.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

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
    int draining;           /* drain() or stop() was called: no more waiting for the WAL */
    int stopping;           /* stop() was called: no more retries either */
    int first_error;        /* first failed write, 0 if none: every later batch fails too */
};

enum {
    RETRY_FIRST_MS = 50,  /* the first wait after a transient failure, doubled each time */
    RETRY_MOST_MS = 5000, /* the longest wait between two attempts */
    WAL_POLL_MS = 100     /* how often a blocked WAL is tried again */
};

/* Wait ms on the writer's condition (drain() wakes it early). Called with w->mu held. */
static void writer_sleep(struct kt_writer *w, int ms)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&w->cv, &w->mu, &until);
}

/* Wait while the WAL is past its bound and a reader keeps it there, unless draining. */
static void wait_for_wal(struct kt_writer *w)
{
    while (store_wal_room(w->store) != 0) {
        pthread_mutex_lock(&w->mu);
        int draining = w->draining;
        if (!draining) {
            writer_sleep(w, WAL_POLL_MS);
        }
        pthread_mutex_unlock(&w->mu);
        if (draining) {
            /* the source has stopped: what is queued is bounded, write it past the bound */
            store_wal_unblocked(w->store, 0);
            return;
        }
    }
}

/*
 * Write the n batches in w->take, in order, retrying a transient failure (from the first
 * batch not committed) for the store's retry budget. w->status gets each one's result:
 * 0 for the committed ones, the failure for the rest. Returns the failure, or 0.
 */
static int write_taken(struct kt_writer *w, size_t n)
{
    int64_t give_up = kt_now_mono_us() + (int64_t)store_retry_ms(w->store) * 1000;
    int wait_ms = RETRY_FIRST_MS;
    size_t done = 0;
    int rc;

    for (;;) {
        size_t committed = 0;
        wait_for_wal(w);
        rc = store_write_group(w->store, w->take + done, n - done, w->status + done, &committed);
        done += committed;
        int64_t left_ms = (give_up - kt_now_mono_us()) / 1000;
        pthread_mutex_lock(&w->mu);
        int stopping = w->stopping;
        pthread_mutex_unlock(&w->mu);
        if (rc == 0 || !store_failure_transient(w->store) || left_ms <= 0 || stopping) {
            break;
        }
        if (wait_ms > left_ms) {
            wait_ms = (int)left_ms;
        }
        kt_warn("store", "retrying in %.2f s (%.0f s left before giving up); %zu batch(es) held",
                wait_ms / 1e3, left_ms / 1e3, n - done);
        pthread_mutex_lock(&w->mu);
        writer_sleep(w, wait_ms);
        pthread_mutex_unlock(&w->mu);
        wait_ms = wait_ms * 2 < RETRY_MOST_MS ? wait_ms * 2 : RETRY_MOST_MS;
    }
    return rc;
}

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

        int rc = w->first_error;
        if (rc == 0) {
            rc = write_taken(w, n);
        } else {
            /* failed for good: nothing may commit past the batch that failed */
            for (size_t i = 0; i < n; i++) {
                w->status[i] = rc;
            }
        }
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

/* Everything but the thread: it has ended, or was never started. */
static void writer_free(struct kt_writer *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->status);
    free(w->take);
    free(w->q);
    free(w);
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
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (w->q == NULL || w->take == NULL || w->status == NULL ||
        pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        writer_free(w);
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

void kt_writer_stop(struct kt_writer *w)
{
    pthread_mutex_lock(&w->mu);
    w->draining = 1;
    w->stopping = 1;
    pthread_cond_broadcast(&w->cv); /* a wait in progress ends */
    pthread_mutex_unlock(&w->mu);
}

int kt_writer_drain(struct kt_writer *w)
{
    int rc;

    pthread_mutex_lock(&w->mu);
    w->draining = 1;
    pthread_cond_broadcast(&w->cv); /* a WAL wait in progress ends */
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
    writer_free(w);
}
