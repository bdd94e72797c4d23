/*
 * rawpack.c: raw JSON kept compressed, in blocks (see store_int.h).
 *
 * The JSON of up to RAW_BLOCK_EVENTS events (or RAW_BLOCK_BYTES) is concatenated and
 * compressed as one zlib stream (compress2, what the sqlite3 shell's sqlar_uncompress()
 * takes), and each event's raw row names its block and its span. Audit events of a cluster
 * repeat each other's keys, users, namespaces and bodies: a block of 128 compresses about 8
 * times at level 1, where one event alone compresses 2 times (measured on the bench corpus:
 * a preset dictionary reaches 7 to 9 times per event, but no stock SQLite tool can read it).
 *
 * Compressing is most of a block's cost (15% of the writer thread's instructions in a replay
 * with the default pack), and the writer is the pipeline's one stage that cannot be split:
 * so a full block goes to a compressor thread of the store's, and the writer inserts it at
 * one of its next flushes. Blocks keep their order. The states: a block is RAW_FREE while the
 * writer fills it, RAW_QUEUED once handed over (the compressor's until it is RAW_DONE), then
 * the writer's again, to insert it and empty it. The mutex orders the hand-overs; the bytes
 * themselves are only touched by the side that owns the block.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "store_int.h"

enum {
    RAW_BLOCK_EVENTS = 128,
    RAW_BLOCK_BYTES = 128 * 1024,
    RAW_LEVEL = 1, /* level 6 gains 25% more on the corpus at a third of the speed */
};

enum { RAW_FREE, RAW_QUEUED, RAW_DONE };

int rawpack_add(struct rawpack *p, int64_t event_id, const char *json, size_t len)
{
    struct rawpack_block *k = &p->b[p->fill];
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : RAW_BLOCK_EVENTS;
        struct rawpack_ent *e = realloc(k->ents, cap * sizeof(*e));
        if (e == NULL) {
            return KT_ENOMEM;
        }
        k->ents = e;
        k->cap = cap;
    }
    k->ents[k->n++] = (struct rawpack_ent){event_id, (uint32_t)k->text.len, (uint32_t)len};
    return kt_buf_append(&k->text, json, len);
}

int rawpack_full(const struct rawpack *p)
{
    const struct rawpack_block *k = &p->b[p->fill];
    return k->n >= RAW_BLOCK_EVENTS || k->text.len >= RAW_BLOCK_BYTES;
}

/* Compress k->text into k->z; z left empty when that fails or gains nothing (the block is
 * then kept as it is, which sqlar_uncompress() returns unchanged). */
static void compress_block(struct rawpack_block *k)
{
    uLongf zlen = compressBound((uLong)k->text.len);
    k->z.len = 0;
    if (kt_buf_reserve(&k->z, zlen) == 0 &&
        compress2((Bytef *)k->z.p, &zlen, (const Bytef *)k->text.p, (uLong)k->text.len,
                  RAW_LEVEL) == Z_OK &&
        zlen < k->text.len) {
        k->z.len = zlen;
    }
}

static void *compressor_main(void *arg)
{
    struct rawpack *p = arg;

    pthread_setname_np(pthread_self(), "kt-rawpack");
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct rawpack_block *k = NULL;
        for (size_t i = 0; i < RAWPACK_BLOCKS && k == NULL; i++) {
            if (p->b[i].state == RAW_QUEUED) {
                k = &p->b[i];
            }
        }
        if (k == NULL) {
            if (p->quit) {
                break;
            }
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        compress_block(k);
        pthread_mutex_lock(&p->mu);
        k->state = RAW_DONE;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Hand the block being filled over (compressed here when the thread cannot be had). */
static void queue_block(struct rawpack *p)
{
    struct rawpack_block *k = &p->b[p->fill];

    if (!p->started && pthread_mutex_init(&p->mu, NULL) == 0) {
        if (pthread_cond_init(&p->cv, NULL) != 0) {
            pthread_mutex_destroy(&p->mu);
        } else if (pthread_create(&p->thread, NULL, compressor_main, p) != 0) {
            pthread_cond_destroy(&p->cv);
            pthread_mutex_destroy(&p->mu);
        } else {
            p->started = 1;
        }
    }
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        k->state = RAW_QUEUED;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    } else {
        compress_block(k);
        k->state = RAW_DONE;
    }
    p->queued++;
    p->fill = (p->fill + 1) % RAWPACK_BLOCKS;
}

/* Wait until block k is compressed when wait is set; 1 when it is. */
static int block_done(struct rawpack *p, struct rawpack_block *k, int wait)
{
    if (!p->started) {
        return k->state == RAW_DONE;
    }
    pthread_mutex_lock(&p->mu);
    while (wait && k->state != RAW_DONE) {
        pthread_cond_wait(&p->cv, &p->mu);
    }
    int done = k->state == RAW_DONE;
    pthread_mutex_unlock(&p->mu);
    return done;
}

/* Empty block k, the writer's again (the compressor reads every block's state). */
static void empty_block(struct rawpack *p, struct rawpack_block *k)
{
    k->n = 0;
    k->text.len = 0;
    k->z.len = 0;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
    }
    k->state = RAW_FREE;
    if (p->started) {
        pthread_mutex_unlock(&p->mu);
    }
}

/* Insert the oldest block handed over (compressed) and its raw rows, and free it. */
static int insert_oldest(struct rawpack *p, sqlite3_stmt *block, sqlite3_stmt *raw)
{
    struct rawpack_block *k = &p->b[p->oldest];
    const struct kt_buf *data = k->z.len > 0 ? &k->z : &k->text;

    sqlite3_bind_blob(block, 1, data->p, (int)data->len, SQLITE_STATIC);
    sqlite3_bind_int64(block, 2, (sqlite3_int64)k->text.len);
    int rc = sqlite3_step(block);
    sqlite3_reset(block);
    sqlite3_clear_bindings(block);
    if (rc != SQLITE_DONE) {
        return KT_EIO;
    }
    int64_t id = sqlite3_last_insert_rowid(sqlite3_db_handle(block));
    for (size_t i = 0; i < k->n; i++) {
        sqlite3_bind_int64(raw, 1, k->ents[i].event_id);
        sqlite3_bind_int64(raw, 2, id);
        sqlite3_bind_int64(raw, 3, k->ents[i].off);
        sqlite3_bind_int64(raw, 4, k->ents[i].len);
        rc = sqlite3_step(raw);
        sqlite3_reset(raw);
        if (rc != SQLITE_DONE) {
            return KT_EIO;
        }
    }
    empty_block(p, k);
    p->oldest = (p->oldest + 1) % RAWPACK_BLOCKS;
    p->queued--;
    return 0;
}

int rawpack_flush(struct rawpack *p, sqlite3_stmt *block, sqlite3_stmt *raw, int all)
{
    if (p->b[p->fill].n > 0) {
        queue_block(p);
    }
    while (p->queued > 0) {
        /* the block to fill next must be free: wait for it when every block is taken */
        int wait = all || p->queued == RAWPACK_BLOCKS;
        if (!block_done(p, &p->b[p->oldest], wait)) {
            break;
        }
        int rc = insert_oldest(p, block, raw);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Wait until the compressor holds no block. */
static void quiesce(struct rawpack *p)
{
    if (!p->started) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < RAWPACK_BLOCKS; i++) {
        while (p->b[i].state == RAW_QUEUED) {
            pthread_cond_wait(&p->cv, &p->mu);
        }
    }
    pthread_mutex_unlock(&p->mu);
}

void rawpack_clear(struct rawpack *p)
{
    quiesce(p);
    for (size_t i = 0; i < RAWPACK_BLOCKS; i++) {
        empty_block(p, &p->b[i]);
    }
    p->fill = 0;
    p->oldest = 0;
    p->queued = 0;
}

void rawpack_free(struct rawpack *p)
{
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->quit = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
    }
    for (size_t i = 0; i < RAWPACK_BLOCKS; i++) {
        kt_buf_free(&p->b[i].text);
        kt_buf_free(&p->b[i].z);
        free(p->b[i].ents);
    }
    memset(p, 0, sizeof(*p));
}

/* sqlar_uncompress(Z, N): Z as it is when its length is N, else Z inflated (zlib) to N
 * bytes; the sqlite3 shell's function of that name, for ktrail's own connections. */
static void sqlar_uncompress(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const void *z = sqlite3_value_blob(argv[0]);
    int zlen = sqlite3_value_bytes(argv[0]);
    sqlite3_int64 n = sqlite3_value_int64(argv[1]);
    if (z == NULL || n <= 0 || n == zlen) {
        sqlite3_result_value(ctx, argv[0]);
        return;
    }
    void *out = sqlite3_malloc64((sqlite3_uint64)n);
    uLongf outlen = (uLongf)n;
    if (out == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    if (uncompress(out, &outlen, z, (uLong)zlen) != Z_OK) {
        sqlite3_free(out);
        sqlite3_result_error(ctx, "sqlar_uncompress: not a zlib stream of that length", -1);
        return;
    }
    sqlite3_result_blob64(ctx, out, outlen, sqlite3_free);
}

int kt_raw_register(sqlite3 *db)
{
    return sqlite3_create_function(db, "sqlar_uncompress", 2,
                                   SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                   sqlar_uncompress, NULL, NULL) == SQLITE_OK
               ? 0
               : KT_EIO;
}
