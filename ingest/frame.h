/*
 * frame.h: find JSON values in a byte stream without parsing them.
 *
 * A small state machine (strings, escapes, brace depth) finds where each top-level value
 * ends, so that a value can be decoded, or rejected, on its own. Shapes are detected per
 * value: one Event per line, pretty-printed values over many lines, a top-level array (its
 * elements are emitted), an EventList (the elements of its "items" array are emitted), and
 * lines of CloudWatch Logs exports, "<RFC 3339 timestamp> <JSON value>" (the timestamp is
 * skipped and handed on with the value).
 *
 * Broken input. A value that begins at column c (bytes since its line's start) is taken to
 * be broken, and ends, at the first later line whose first non-blank byte is a '{' at column
 * c or left of it, or which starts with a CloudWatch timestamp: such a line starts the next
 * value. No well-formed JSON line and no indented pretty-printed value (jq, kubectl, Go's and
 * Python's indent >= 1) has such a line inside it: their inner lines sit right of the opening
 * brace. (Output printed with no indentation at all, whose nested objects start lines, is
 * framed as broken there.) A raw newline inside a string also breaks the value; the rest of
 * it is skipped up to such a line. Either way the broken value is one reject, from its first
 * byte to the end of the line before the next value, and nothing inside it is ever emitted.
 * Text outside any value is rejected a line at a time.
 *
 * Frames never depend on how the stream is cut into reads, nor on where framing resumed: the
 * state between frames is all in struct kt_frame_at, which a checkpoint saves and
 * kt_framer_resume() takes back. A value longer than the limit (max bytes, the '{' to the '}')
 * is one reject with its first KB; its bytes are dropped as they are scanned.
 *
 * The caller owns the bytes: it keeps a window of the stream in one buffer, calls
 * kt_framer_next() until it says KT_FRAME_MORE, then may drop the bytes before
 * kt_framer_keep() (telling the framer with kt_framer_shift()) and append more.
 */
#ifndef KT_INGEST_FRAME_H
#define KT_INGEST_FRAME_H

#include "kt.h"

/* Container state between values: saved in checkpoints, given back to resume. */
enum kt_frame_mode {
    KT_FRAME_TOP = 0,   /* between top-level values */
    KT_FRAME_ARRAY = 1, /* inside a top-level array, between elements */
    KT_FRAME_ITEMS = 2, /* inside an EventList's items array, between elements */
};

enum kt_frame_kind {
    KT_FRAME_MORE = 0,   /* need more bytes (or, at EOF, nothing is left) */
    KT_FRAME_VALUE = 1,  /* a complete value */
    KT_FRAME_REJECT = 2, /* input that is not a value: reason and the first KB */
};

/* The reason of a REJECT for a value over the size limit (the only one about a single value:
 * every other reason means the input around it is broken). */
#define KT_FRAME_OVERSIZE "event larger than --max-event-size"

struct kt_frame {
    int kind;           /* enum kt_frame_kind */
    const char *ptr;    /* VALUE: the value in the caller's buffer; REJECT: its first bytes */
    size_t len;         /* their length (a REJECT's is at most 1 KB) */
    uint64_t off;       /* stream offset of the first byte */
    uint64_t line;      /* 1-based line of the first byte */
    const char *reason; /* REJECT: static reason */
    const char *stamp;  /* the "<timestamp> " that prefixed the value's line (CloudWatch
                           export lines), without the space, or NULL */
    size_t stamplen;    /* its length */
};

/* Where the framer stands between frames: everything it needs to resume there. */
struct kt_frame_at {
    uint64_t off;  /* stream offset */
    uint64_t line; /* 1-based line of that byte */
    uint64_t col;  /* its column: bytes between the line's start and it */
    int mode;      /* enum kt_frame_mode */
};

struct kt_framer {
    int mode;              /* enum kt_frame_mode: the container we are in */
    int state;             /* scanner state (frame.c) */
    size_t max;            /* largest value accepted */
    size_t lim;            /* bytes of a frame kept in the buffer at most: max, at least 1 KB */
    uint64_t base;         /* stream offset of buf[0] */
    size_t pos;            /* next byte to scan, in the buffer */
    uint64_t line;         /* line of buf[pos] */
    uint64_t linestart;    /* stream offset of the first byte of that line */
    struct kt_frame_at at; /* in a frame: where it began (before any timestamp prefix) */
    size_t vstart;         /* start of the value or junk being scanned, in the buffer */
    size_t vpre;           /* bytes of its timestamp prefix before vstart (kept with it) */
    uint64_t voff;         /* its stream offset */
    uint64_t vline;        /* its line */
    uint64_t vcol;         /* its column: where the next value's '{' may begin a line */
    size_t sstart;         /* first byte of the string being scanned, in the buffer */
    uint32_t depth;        /* nesting inside the value */
    int items;             /* matching the key "items" of a top-level object: progress */
    int rest;              /* the value is the rest of an EventList after its items */
    int dropping;          /* the frame passed lim: its bytes are dropped as scanned */
    const char *broken;    /* the value is broken (reason): skipping to the next value */
    char head[1024];       /* a dropped frame's first KB */
    char stamp[40];        /* the timestamp prefix of the value being scanned */
    size_t stamplen;       /* its length, 0 when none */
};

/* Start framing at stream offset off, line line (1 for a fresh stream), column 0, in mode. */
void kt_framer_init(struct kt_framer *f, int mode, size_t max, uint64_t off, uint64_t line);
/* Resume framing where kt_framer_at() said a framer stood (a checkpoint). */
void kt_framer_resume(struct kt_framer *f, size_t max, const struct kt_frame_at *at);

/*
 * Next frame in buf[0, len) (the caller's window; buf[0] is at stream offset f->base).
 * eof says no more bytes will come: an unfinished value is then a reject. Borrowed buf;
 * the frame points into it or into the framer, valid until the next call.
 */
void kt_framer_next(struct kt_framer *f, const char *buf, size_t len, int eof,
                    struct kt_frame *out);

/* Bytes before this buffer offset are no longer needed. */
size_t kt_framer_keep(const struct kt_framer *f);
/* The caller dropped n bytes from the front of its buffer. */
void kt_framer_shift(struct kt_framer *f, size_t n);
/* Where to resume for the frames returned so far (to checkpoint with them). */
void kt_framer_at(const struct kt_framer *f, struct kt_frame_at *out);

#endif
