/*
 * rawpack.c: raw JSON kept compressed, in blocks (see store_int.h).
 *
 * The JSON of up to RAW_BLOCK_EVENTS events (or RAW_BLOCK_BYTES) is concatenated and
 * compressed as one zlib stream (compress2, what the sqlite3 shell's sqlar_uncompress()
 * takes), and each event's raw row names its block and its span. Audit events of a cluster
 * repeat each other's keys, users, namespaces and bodies: a block of 128 compresses about 8
 * times at level 1, where one event alone compresses 2 times (measured on the bench corpus:
 * a preset dictionary reaches 7 to 9 times per event, but no stock SQLite tool can read it).
 */
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

int rawpack_add(struct rawpack *p, int64_t event_id, const char *json, size_t len)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : RAW_BLOCK_EVENTS;
        struct rawpack_ent *e = realloc(p->ents, cap * sizeof(*e));
        if (e == NULL) {
            return KT_ENOMEM;
        }
        p->ents = e;
        p->cap = cap;
    }
    p->ents[p->n++] = (struct rawpack_ent){event_id, (uint32_t)p->text.len, (uint32_t)len};
    return kt_buf_append(&p->text, json, len);
}

int rawpack_full(const struct rawpack *p)
{
    return p->n >= RAW_BLOCK_EVENTS || p->text.len >= RAW_BLOCK_BYTES;
}

int rawpack_flush(struct rawpack *p, sqlite3_stmt *block, sqlite3_stmt *raw)
{
    if (p->n == 0) {
        return 0;
    }
    uLongf zlen = compressBound((uLong)p->text.len);
    p->z.len = 0;
    if (kt_buf_reserve(&p->z, zlen) != 0) {
        return KT_ENOMEM;
    }
    const void *data = p->z.p;
    if (compress2((Bytef *)p->z.p, &zlen, (const Bytef *)p->text.p, (uLong)p->text.len,
                  RAW_LEVEL) != Z_OK ||
        zlen >= p->text.len) {
        /* sqlar_uncompress() returns a block as it is when its size is the length */
        data = p->text.p;
        zlen = (uLongf)p->text.len;
    }
    sqlite3_bind_blob(block, 1, data, (int)zlen, SQLITE_STATIC);
    sqlite3_bind_int64(block, 2, (sqlite3_int64)p->text.len);
    int rc = sqlite3_step(block);
    sqlite3_reset(block);
    sqlite3_clear_bindings(block);
    if (rc != SQLITE_DONE) {
        return KT_EIO;
    }
    int64_t id = sqlite3_last_insert_rowid(sqlite3_db_handle(block));
    for (size_t i = 0; i < p->n; i++) {
        sqlite3_bind_int64(raw, 1, p->ents[i].event_id);
        sqlite3_bind_int64(raw, 2, id);
        sqlite3_bind_int64(raw, 3, p->ents[i].off);
        sqlite3_bind_int64(raw, 4, p->ents[i].len);
        rc = sqlite3_step(raw);
        sqlite3_reset(raw);
        if (rc != SQLITE_DONE) {
            return KT_EIO;
        }
    }
    rawpack_clear(p);
    return 0;
}

void rawpack_clear(struct rawpack *p)
{
    p->n = 0;
    p->text.len = 0;
}

void rawpack_free(struct rawpack *p)
{
    kt_buf_free(&p->text);
    kt_buf_free(&p->z);
    free(p->ents);
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
