/*
 * writer.c: the single writer thread (see store.h). A bounded FIFO of batches between the
 * pipeline and the thread that commits them; submit() blocking on a full queue is the
 * pipeline's backpressure.
 */
#include "store.h"

#include <pthread.h>
#include <stdlib.h>

struct kt_writer {
    struct kt_store *store; /* borrowed */
    pthread_t thread;       /* the writer */
    pthread_mutex_t mu;     /* guards everything below */
    pthread_cond_t cv;      /* queue changed */
    struct kt_batch **q;    /* ring of queued batches */
    size_t cap;             /* ring size (depth) */
    size_t head;            /* next to write */
    size_t n;               /* queued */
    int busy;               /* the thread is writing a batch */
    int quit;               /* destroy() asked the thread to end */
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
            break;
        }
        struct kt_batch *b = w->q[w->head];
        w->head = (w->head + 1) % w->cap;
        w->n--;
        w->busy = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);

        int rc = kt_store_write(w->store, b, NULL);
        if (b->on_done != NULL) {
            b->on_done(b, rc, b->on_done_ctx);
        }

        pthread_mutex_lock(&w->mu);
        if (rc != 0 && w->first_error == 0) {
            w->first_error = rc;
        }
        w->busy = 0;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

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
    if (w->q == NULL) {
        free(w);
        return KT_ENOMEM;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w->q);
        free(w);
        return KT_ENOMEM;
    }
    *out = w;
    return 0;
}

int kt_writer_submit(struct kt_writer *w, struct kt_batch *b)
{
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
    pthread_mutex_lock(&w->mu);
    while (w->n > 0 || w->busy) {
        pthread_cond_wait(&w->cv, &w->mu);
    }
    int rc = w->first_error;
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
    free(w->q);
    free(w);
}
