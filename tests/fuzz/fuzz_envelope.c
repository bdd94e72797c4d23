/*
 * fuzz_envelope.c: libFuzzer harness for the envelope layer (ingest/envelope.c and the
 * converters and salvage it calls): any bytes, as a Kafka message and as one framed value,
 * must open into records or rejects without a crash, a leak or an out-of-bounds read. Every
 * record's first and last bytes, and its cluster's, are read, so a slice outside its buffer
 * is caught by AddressSanitizer.
 *
 * Build: cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DKT_FUZZ=ON && cmake --build
 * build-fuzz --target fuzz-envelope; run: build-fuzz/fuzz-envelope -max_total_time=300 DIR
 * (DIR seeded with tests/fixtures/shapes/make-shapes output).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

static int touch(void *ctx, const struct kt_opened *r)
{
    size_t *n = ctx;
    volatile char c;
    if (r->len > 0) {
        c = r->ptr[0];
        c = r->ptr[r->len - 1];
    }
    if (r->cluster.ptr != NULL && r->cluster.len > 0) {
        c = r->cluster.ptr[r->cluster.len - 1];
    }
    (void)c;
    (*n)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct kt_envelope *e;
    if (e == NULL) {
        e = kt_envelope_create(1u << 20);
    }
    size_t n = 0;
    struct kt_env_sink sink = {touch, &n};
    struct kt_env_counts c = {0, 0, 0};
    char *copy = malloc(size > 0 ? size : 1); /* exactly size bytes: over-reads are caught */
    if (copy == NULL || e == NULL) {
        free(copy);
        return 0;
    }
    memcpy(copy, data, size);
    kt_envelope_open_text(e, copy, size, 0, &sink, &c);
    kt_envelope_open_value(e, copy, size, 0, 1, KT_STR_NULL, &sink, &c);
    free(copy);
    return 0;
}
