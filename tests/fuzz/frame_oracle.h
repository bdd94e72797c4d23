/*
 * frame_oracle.h: the framer's invariance check, shared by tests/unit/test_frame.c and
 * tests/fuzz/fuzz_frame.c. One input is framed as a source would frame it, in one piece,
 * byte by byte, or in chunks of pseudo-random sizes with restarts at pseudo-random points (a
 * fresh framer resumed from kt_framer_at(), as ingest/file.c does from a checkpoint); every
 * way must give the same frames. Along the way it checks what must hold of each frame and of
 * the window: no value over max, values that start with '{' and end with a closing bracket, and a
 * window that never keeps more than the limit of an oversized value.
 *
 * Header-only (static inline) so that each test program links just the framer.
 */
#ifndef KT_TESTS_FRAME_ORACLE_H
#define KT_TESTS_FRAME_ORACLE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

/* One frame, as compared. */
struct fo_frame {
    int kind;           /* enum kt_frame_kind */
    uint64_t off;       /* stream offset */
    uint64_t line;      /* line */
    size_t len;         /* bytes shown */
    uint64_t hash;      /* of those bytes and the stamp */
    const char *reason; /* static reason, or NULL */
};

struct fo_run {
    struct fo_frame *v; /* frames in order */
    size_t n;           /* used */
    size_t cap;         /* allocated */
    uint64_t end;       /* offset past the last value, or just past the last reject's start */
    int broken;         /* an invariant of a frame or of the window failed */
    char why[160];      /* which, for the failure message */
};

/* How an input is fed: FO_WHOLE, FO_BYTES, or any other value seeds random chunks and
 * restarts. */
enum { FO_WHOLE = 0, FO_BYTES = 1 };

static inline uint64_t fo_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static inline void fo_fail(struct fo_run *r, const char *why, uint64_t off)
{
    if (!r->broken) {
        r->broken = 1;
        snprintf(r->why, sizeof(r->why), "%s (frame at offset %llu)", why, (unsigned long long)off);
    }
}

static inline void fo_push(struct fo_run *r, const struct kt_frame *f, size_t max)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct fo_frame *v = realloc(r->v, cap * sizeof(*v));
        if (v == NULL) {
            abort();
        }
        r->v = v;
        r->cap = cap;
    }
    if (f->off < r->end) {
        fo_fail(r, "frames out of order or overlapping", f->off);
    }
    r->end = f->off + (f->kind == KT_FRAME_VALUE ? f->len : 1);
    struct fo_frame *o = &r->v[r->n++];
    o->kind = f->kind;
    o->off = f->off;
    o->line = f->line;
    o->len = f->len;
    o->reason = f->reason;
    o->hash = f->len > 0 ? kt_hash64(f->ptr, f->len) : 0;
    if (f->stamplen > 0) {
        o->hash ^= kt_hash64(f->stamp, f->stamplen) * 31;
    }
    if (f->kind == KT_FRAME_VALUE && (f->len > max || f->len < 2 || f->ptr[0] != '{' ||
                                      (f->ptr[f->len - 1] != '}' && f->ptr[f->len - 1] != ']'))) {
        /* brackets are matched, not paired: "{]" is framed, and the decoder rejects it */
        fo_fail(r, "a value over max or not bracketed", f->off);
    }
    if (f->kind == KT_FRAME_REJECT && (f->len > 1024 || f->reason == NULL)) {
        fo_fail(r, "a reject over 1 KB or without a reason", f->off);
    }
}

/*
 * Frame in[0, n) from the start of a stream in mode, with the size limit max, fed as way
 * says; the frames go to r (emptied first), and must come in order without overlapping. The
 * caller frees r->v.
 */
static inline void fo_frame(const char *in, size_t n, size_t max, int mode, uint64_t way,
                            struct fo_run *r)
{
    struct kt_framer fr;
    struct kt_frame_at at = {0, 1, 0, mode};
    char *win = malloc(n + 1);
    size_t wlen = 0, fed = 0, lim = max > 1024 ? max : 1024;
    uint64_t rng = way * 0x9e3779b97f4a7c15ULL + 1;
    int fresh = 1; /* no bytes fed since the last restart: do not restart again */
    r->n = 0;
    r->end = 0;
    if (win == NULL) {
        abort();
    }
    kt_framer_resume(&fr, max, &at);
    for (;;) {
        struct kt_frame f;
        int eof = fed == n;
        kt_framer_next(&fr, win, wlen, eof, &f);
        if (f.kind != KT_FRAME_MORE) {
            fo_push(r, &f, max);
        } else if (eof) {
            break;
        }
        int restart = way > FO_BYTES && !fresh && fo_rand(&rng) % 8 == 0;
        if (restart) {
            /* a new framer from the checkpoint, as after a crash: the window is gone */
            kt_framer_at(&fr, &at);
            kt_framer_resume(&fr, max, &at);
            wlen = 0;
            fed = (size_t)at.off;
            fresh = 1;
            continue;
        }
        if (f.kind != KT_FRAME_MORE) {
            continue;
        }
        size_t keep = kt_framer_keep(&fr);
        if (keep > 0) {
            memmove(win, win + keep, wlen - keep);
            wlen -= keep;
            kt_framer_shift(&fr, keep);
        }
        if (wlen > lim + 128) {
            fo_fail(r, "the window keeps more than the size limit", fr.base);
        }
        size_t take = n - fed;
        if (way == FO_BYTES) {
            take = take > 0 ? 1 : 0;
        } else if (way > FO_BYTES && take > 0) {
            take = 1 + (size_t)(fo_rand(&rng) % (fo_rand(&rng) % 4 == 0 ? take : 64));
            take = take < n - fed ? take : n - fed;
        }
        memcpy(win + wlen, in + fed, take);
        wlen += take;
        fed += take;
        fresh = 0;
    }
    free(win);
}

/* The first frame where a and b differ (a->n or b->n past the end), or SIZE_MAX. */
static inline size_t fo_diff(const struct fo_run *a, const struct fo_run *b)
{
    size_t i = 0;
    for (; i < a->n && i < b->n; i++) {
        const struct fo_frame *x = &a->v[i], *y = &b->v[i];
        if (x->kind != y->kind || x->off != y->off || x->line != y->line || x->len != y->len ||
            x->hash != y->hash || (x->reason == NULL) != (y->reason == NULL) ||
            (x->reason != NULL && strcmp(x->reason, y->reason) != 0)) {
            return i;
        }
    }
    return a->n == b->n ? SIZE_MAX : i;
}

#endif
