/*
 * fuzz_frame.c: libFuzzer harness for the framer (ingest/frame.c) and the decoder it feeds
 * (analyze/decode.c). The first byte picks the size limit (bits 0-1), the framer's starting
 * mode (bits 2-3) and whether each '~' of the stream stands for 1100 'x' (bit 6: frames past
 * the 1 KB the framer keeps of an oversized value, from short inputs); the rest is the stream. The
 * oracle is frame_oracle.h: framed in one piece, byte by byte and in pseudo-random chunks with
 * restarts from kt_framer_at() checkpoints, the stream must give the same frames (kind, offset,
 * line, length, bytes, reason), every value within the limit, and a window that never keeps an
 * oversized value; any difference aborts. The values framed are then decoded with
 * kt_decode_batch(), under AddressSanitizer and UBSan.
 *
 * Build: CC=clang scripts/build build-fuzz -DKT_FUZZ=ON; run: build-fuzz/fuzz-frame
 * -max_total_time=60 CORPUS tests/fuzz/corpus/frame (seeds: tests/fuzz/corpus/frame, made from
 * the fixtures; crash inputs found are kept in tests/fuzz/regress/frame and replayed by
 * running the harness on that directory).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "frame_oracle.h"

static const size_t limits[4] = {1u << 20, 2048, 1025, 64};

static void differ(const char *what, const struct fo_run *a, const struct fo_run *b, size_t i)
{
    fprintf(stderr, "fuzz-frame: %s: frame %zu differs (%zu against %zu frames) %s\n", what, i,
            a->n, b->n, b->why);
    abort();
}

/* Frame the stream whole into a batch of records (values and rejects) and decode them. */
static void decode_all(struct kt_decoder *d, struct kt_batch *b, const char *in, size_t n,
                       size_t max, int mode)
{
    struct kt_framer fr;
    struct kt_frame f;
    kt_batch_reset(b);
    kt_framer_init(&fr, mode, max, 0, 1);
    for (;;) {
        kt_framer_next(&fr, in, n, 1, &f);
        if (f.kind == KT_FRAME_MORE) {
            break;
        }
        if (kt_batch_reserve(b, f.len) != 0) {
            abort();
        }
        struct kt_record *r = kt_batch_add_record(b);
        if (r == NULL) {
            abort();
        }
        memcpy(b->buf + b->len, f.ptr, f.len);
        r->pos = b->len;
        r->len = f.len;
        r->off = f.off;
        r->line = f.line;
        r->reject = f.kind == KT_FRAME_REJECT ? f.reason : NULL;
        b->len += f.len;
    }
    if (kt_decode_batch(d, b) != 0) {
        abort();
    }
}

enum { WIDE = 1100 }; /* bytes a '~' stands for, when expanding */

/* The stream: a copy of exactly its bytes (over-reads are caught), each '~' widened to WIDE
 * 'x' when wide. NULL when out of memory. */
static char *expand(const uint8_t *p, size_t n, int wide, size_t *outlen)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        len += wide && p[i] == '~' ? WIDE : 1;
    }
    char *out = malloc(len > 0 ? len : 1);
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0, o = 0; i < n; i++) {
        if (wide && p[i] == '~') {
            memset(out + o, 'x', WIDE);
            o += WIDE;
        } else {
            out[o++] = (char)p[i];
        }
    }
    *outlen = len;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct kt_decoder *d;
    static struct kt_batch *b;
    if (d == NULL) {
        d = kt_decoder_create();
        b = kt_batch_create();
        if (d == NULL || b == NULL) {
            abort();
        }
    }
    if (size == 0) {
        return 0;
    }
    size_t max = limits[data[0] & 3];
    int mode = ((data[0] >> 2) & 3) % 3;
    size_t n = 0;
    char *in = expand(data + 1, size - 1, data[0] & 0x40, &n);
    if (in == NULL) {
        return 0;
    }

    struct fo_run whole = {0}, other = {0};
    fo_frame(in, n, max, mode, FO_WHOLE, &whole);
    if (whole.broken) {
        differ(whole.why, &whole, &whole, 0);
    }
    uint64_t seed = kt_hash64(in, n) | 2; /* reproducible, and never FO_WHOLE or FO_BYTES */
    for (int i = 0; i < 4; i++) {
        uint64_t way = i == 0 ? FO_BYTES : seed + (uint64_t)i;
        fo_frame(in, n, max, mode, way, &other);
        size_t at = fo_diff(&whole, &other);
        if (other.broken || at != SIZE_MAX) {
            differ(i == 0 ? "byte by byte" : "random chunks and restarts", &whole, &other, at);
        }
    }
    free(whole.v);
    free(other.v);

    decode_all(d, b, in, n, max, mode);
    free(in);
    return 0;
}
