/*
 * bench_decode.c: how fast is the decoder next to yajl itself?
 *
 *   bench-decode FILE
 *
 * Reads a JSON-lines file of audit events fully into memory, then measures on one core:
 *   yajl_bare  yajl's callback parser with no-op callbacks (all set, returning 1), a handle
 *              allocated and freed per event with the default allocator: the floor any
 *              callback decoder built on yajl stands on;
 *   decoder    kt_decode_event() on the same lines (arena reset every 4096 events, as a
 *              batch would be).
 * For reference it also measures yajl_bare_reuse: the same no-op parse through one handle
 * for the whole corpus (yajl_allow_multiple_values), which allocates nothing per event and
 * is the strictest floor; and the cost of one yajl_alloc + yajl_free pair with the default
 * allocator (what the decoder's reusable region saves per event).
 * Each is run over the whole corpus repeatedly until at least one second has passed, after
 * one untimed warm-up pass; three rounds alternate them and the best round of each is kept,
 * so that a noisy neighbour skews the ratios less. MB are 10^6 bytes of JSON text, newlines
 * excluded.
 *
 * Exit codes: 0 ok, 1 runtime failure, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_parse.h>

#include "decode.h"

struct line {
    const char *p; /* first byte */
    size_t len;    /* bytes, newline excluded */
};

struct corpus {
    char *buf;          /* the file */
    size_t len;         /* its size */
    struct line *lines; /* non-empty lines */
    size_t n;           /* their count */
    size_t bytes;       /* their total length */
};

struct result {
    double secs;      /* timed seconds */
    uint64_t events;  /* events parsed in that time */
    uint64_t bytes;   /* bytes parsed in that time */
    uint64_t rejects; /* events that did not parse or decode */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read path fully and split it into lines. 0, or -1 with a message printed. */
static int corpus_load(struct corpus *c, const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        perror(path);
        return -1;
    }
    size_t cap = 1 << 20;
    c->buf = malloc(cap);
    int rc = -1;
    while (c->buf != NULL) {
        c->len += fread(c->buf + c->len, 1, cap - c->len, fp);
        if (c->len < cap) {
            break;
        }
        cap *= 2;
        char *b = realloc(c->buf, cap);
        if (b == NULL) {
            break;
        }
        c->buf = b;
    }
    if (c->buf == NULL || ferror(fp)) {
        fprintf(stderr, "bench-decode: cannot read %s\n", path);
        goto out;
    }
    size_t caplines = 1024;
    c->lines = malloc(caplines * sizeof(*c->lines));
    for (size_t pos = 0; c->lines != NULL && pos < c->len;) {
        const char *nl = memchr(c->buf + pos, '\n', c->len - pos);
        size_t end = nl != NULL ? (size_t)(nl - c->buf) : c->len;
        size_t len = end - pos;
        if (len > 0 && c->buf[end - 1] == '\r') {
            len--;
        }
        if (len > 0) {
            if (c->n == caplines) {
                caplines *= 2;
                struct line *l = realloc(c->lines, caplines * sizeof(*l));
                if (l == NULL) {
                    break;
                }
                c->lines = l;
            }
            c->lines[c->n++] = (struct line){c->buf + pos, len};
            c->bytes += len;
        }
        pos = end + 1;
    }
    if (c->lines == NULL || c->n == 0) {
        fprintf(stderr, "bench-decode: %s: no lines (or out of memory)\n", path);
        goto out;
    }
    rc = 0;
out:
    fclose(fp);
    return rc;
}

static int noop(void *ctx)
{
    return 1;
}
static int noop_bool(void *ctx, int v)
{
    return 1;
}
static int noop_int(void *ctx, long long v)
{
    return 1;
}
static int noop_double(void *ctx, double v)
{
    return 1;
}
static int noop_number(void *ctx, const char *s, size_t len)
{
    return 1;
}
static int noop_str(void *ctx, const unsigned char *s, size_t len)
{
    return 1;
}

static const yajl_callbacks noop_callbacks = {
    .yajl_null = noop,
    .yajl_boolean = noop_bool,
    .yajl_integer = noop_int,
    .yajl_double = noop_double,
    .yajl_number = noop_number,
    .yajl_string = noop_str,
    .yajl_start_map = noop,
    .yajl_map_key = noop_str,
    .yajl_end_map = noop,
    .yajl_start_array = noop,
    .yajl_end_array = noop,
};

/* One pass of bare yajl over the corpus; returns lines that failed to parse. */
static uint64_t pass_bare(const struct corpus *c)
{
    uint64_t bad = 0;
    for (size_t i = 0; i < c->n; i++) {
        yajl_handle h = yajl_alloc(&noop_callbacks, NULL, NULL);
        if (h == NULL) {
            return c->n;
        }
        yajl_status st = yajl_parse(h, (const unsigned char *)c->lines[i].p, c->lines[i].len);
        if (st == yajl_status_ok) {
            st = yajl_complete_parse(h);
        }
        bad += st != yajl_status_ok;
        yajl_free(h);
    }
    return bad;
}

/* One pass of bare yajl through a single handle that accepts one value after another. */
static uint64_t pass_bare_reuse(const struct corpus *c, yajl_handle *hp)
{
    uint64_t bad = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (yajl_parse(*hp, (const unsigned char *)c->lines[i].p, c->lines[i].len) !=
            yajl_status_ok) {
            /* The handle is stuck after an error: start over with a fresh one. */
            bad++;
            yajl_free(*hp);
            *hp = yajl_alloc(&noop_callbacks, NULL, NULL);
            if (*hp == NULL) {
                return c->n;
            }
            yajl_config(*hp, yajl_allow_multiple_values, 1);
        }
    }
    return bad;
}

struct dec_state {
    struct kt_decoder *d;  /* the decoder */
    struct kt_arena arena; /* reset every 4096 events, like a batch */
    struct kt_event ev;    /* output, overwritten */
    int enomem;            /* an allocation failed */
};

/* One pass of the decoder over the corpus; returns rejected lines. */
static uint64_t pass_decoder(const struct corpus *c, struct dec_state *s)
{
    uint64_t bad = 0;
    for (size_t i = 0; i < c->n; i++) {
        if ((i & 4095) == 4095) {
            kt_arena_reset(&s->arena);
        }
        int rc = kt_decode_event(s->d, c->lines[i].p, c->lines[i].len, &s->arena, &s->ev);
        bad += rc != 0;
        s->enomem |= rc == KT_ENOMEM;
    }
    kt_arena_reset(&s->arena);
    return bad;
}

enum mode { BARE, BARE_REUSE, DECODER, NMODES };

struct bench {
    const struct corpus *c; /* input */
    struct dec_state dec;   /* for DECODER */
    yajl_handle reuse;      /* for BARE_REUSE */
};

static uint64_t pass(struct bench *b, enum mode m)
{
    switch (m) {
    case BARE:
        return pass_bare(b->c);
    case BARE_REUSE:
        return pass_bare_reuse(b->c, &b->reuse);
    default:
        return pass_decoder(b->c, &b->dec);
    }
}

/* Warm up once, then repeat whole passes until at least one second has gone by. */
static struct result run(struct bench *b, enum mode m)
{
    struct result r = {0};
    pass(b, m);
    double t0 = now_s();
    do {
        r.rejects = pass(b, m);
        r.events += b->c->n;
        r.bytes += b->c->bytes;
        r.secs = now_s() - t0;
    } while (r.secs < 1.0);
    return r;
}

static double per_s(uint64_t n, double secs)
{
    return (double)n / secs;
}

int main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: bench-decode FILE   (JSON lines, one audit event a line)\n");
        return 2;
    }
    struct corpus c = {0};
    struct bench b = {.c = &c};
    int rc = 1;
    if (corpus_load(&c, argv[1]) != 0) {
        goto out;
    }
    b.dec.d = kt_decoder_create();
    b.reuse = yajl_alloc(&noop_callbacks, NULL, NULL);
    if (b.dec.d == NULL || b.reuse == NULL) {
        fprintf(stderr, "bench-decode: out of memory\n");
        goto out;
    }
    yajl_config(b.reuse, yajl_allow_multiple_values, 1);
    printf("corpus events=%zu mb=%.1f avg_bytes=%.0f\n", c.n, (double)c.bytes / 1e6,
           (double)c.bytes / (double)c.n);

    /* What a fresh handle per event costs with the default allocator. */
    enum { PAIRS = 1000000 };
    double t0 = now_s();
    for (int i = 0; i < PAIRS; i++) {
        yajl_handle h = yajl_alloc(&noop_callbacks, NULL, NULL);
        if (h == NULL) {
            fprintf(stderr, "bench-decode: out of memory\n");
            goto out;
        }
        /* Parse one byte so the lazily allocated lexer is part of the cost too. */
        yajl_parse(h, (const unsigned char *)"{", 1);
        yajl_free(h);
    }
    printf("yajl_alloc_free ns_per_event=%.1f\n", (now_s() - t0) * 1e9 / PAIRS);

    struct result best[NMODES] = {{0}};
    double eps[NMODES] = {0};
    for (int round = 0; round < 3; round++) {
        for (int m = 0; m < NMODES; m++) {
            struct result r = run(&b, (enum mode)m);
            if (per_s(r.events, r.secs) > eps[m]) {
                best[m] = r;
                eps[m] = per_s(r.events, r.secs);
            }
        }
    }
    if (b.dec.enomem) {
        fprintf(stderr, "bench-decode: out of memory while decoding\n");
        goto out;
    }
    printf("yajl_bare events_per_s=%.0f mb_per_s=%.1f invalid=%llu\n", eps[BARE],
           per_s(best[BARE].bytes, best[BARE].secs) / 1e6, (unsigned long long)best[BARE].rejects);
    printf("yajl_bare_reuse events_per_s=%.0f mb_per_s=%.1f invalid=%llu\n", eps[BARE_REUSE],
           per_s(best[BARE_REUSE].bytes, best[BARE_REUSE].secs) / 1e6,
           (unsigned long long)best[BARE_REUSE].rejects);
    printf("decoder events_per_s=%.0f mb_per_s=%.1f ratio_vs_bare=%.2f ratio_vs_bare_reuse=%.2f "
           "rejects=%llu\n",
           eps[DECODER], per_s(best[DECODER].bytes, best[DECODER].secs) / 1e6,
           eps[DECODER] / eps[BARE], eps[DECODER] / eps[BARE_REUSE],
           (unsigned long long)best[DECODER].rejects);
    rc = 0;
out:
    if (b.reuse != NULL) {
        yajl_free(b.reuse);
    }
    kt_decoder_destroy(b.dec.d);
    kt_arena_free(&b.dec.arena);
    free(c.lines);
    free(c.buf);
    return rc;
}
