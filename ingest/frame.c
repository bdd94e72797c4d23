/*
 * frame.c: the framing state machine (see frame.h for the rules on broken input).
 *
 * Every decision depends on the bytes and their stream positions alone, never on where the
 * caller's window begins or ends: a rule that needs bytes not yet read (a timestamp prefix)
 * asks for more without consuming anything, and the size limit is judged on a frame's
 * extent in stream offsets. That is what makes frames the same for every chunking and every
 * resume point; tests/fuzz/fuzz_frame.c holds the framer to it.
 */
#include "frame.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum state {
    S_BETWEEN, /* between values */
    S_VALUE,   /* inside a value, outside strings */
    S_STRING,  /* inside a string */
    S_ESCAPE,  /* after a backslash in a string */
    S_LINE,    /* inside a value, in the blanks that begin a line: does it start a value? */
    S_SKIP,    /* inside a broken value: skipping to the end of the line */
    S_JUNK,    /* inside a line of text that is not a value */
};

enum { HEAD = 1024 };

static const char R_JUNK[] = "not JSON: text outside any JSON value";
static const char R_CUT[] = "truncated JSON: the next line starts a new value";
static const char R_NEWLINE[] = "invalid JSON: line break inside a string (truncated?)";
static const char R_EOF[] = "truncated JSON at end of input";

void kt_framer_resume(struct kt_framer *f, size_t max, const struct kt_frame_at *at)
{
    memset(f, 0, sizeof(*f));
    f->mode = at->mode;
    f->state = S_BETWEEN;
    f->max = max;
    f->lim = max > HEAD ? max : HEAD;
    f->base = at->off;
    f->line = at->line > 0 ? at->line : 1;
    f->linestart = at->col <= at->off ? at->off - at->col : 0;
}

void kt_framer_init(struct kt_framer *f, int mode, size_t max, uint64_t off, uint64_t line)
{
    struct kt_frame_at at = {off, line, 0, mode};
    kt_framer_resume(f, max, &at);
}

static uint64_t here(const struct kt_framer *f)
{
    return f->base + f->pos;
}

static int in_frame(const struct kt_framer *f)
{
    return f->state != S_BETWEEN;
}

size_t kt_framer_keep(const struct kt_framer *f)
{
    return in_frame(f) && !f->dropping ? f->vstart - f->vpre : f->pos;
}

void kt_framer_shift(struct kt_framer *f, size_t n)
{
    f->base += n;
    f->pos -= n;
    f->vstart = f->vstart >= n ? f->vstart - n : 0;
    f->sstart = f->sstart >= n ? f->sstart - n : 0;
}

void kt_framer_at(const struct kt_framer *f, struct kt_frame_at *out)
{
    if (in_frame(f)) {
        *out = f->at;
        return;
    }
    out->off = here(f);
    out->line = f->line;
    out->col = here(f) - f->linestart;
    out->mode = f->mode;
}

/* Begin a frame at buf[pos] in state, its value after a timestamp prefix of pre bytes. */
static void begin(struct kt_framer *f, const char *buf, int state, size_t pre)
{
    kt_framer_at(f, &f->at);
    f->stamplen = pre > 0 ? pre - 1 : 0;
    memcpy(f->stamp, buf + f->pos, f->stamplen);
    f->state = state;
    f->pos += pre;
    f->vpre = pre;
    f->vstart = f->pos;
    f->voff = here(f);
    f->vline = f->line;
    f->vcol = here(f) - f->linestart;
    f->depth = 0;
    f->items = 0;
    f->rest = 0;
    f->dropping = 0;
    f->broken = NULL;
}

static void between(struct kt_framer *f)
{
    f->state = S_BETWEEN;
    f->dropping = 0;
    f->broken = NULL;
    if (f->rest) {
        f->rest = 0;
        f->mode = KT_FRAME_TOP; /* the EventList has ended, whole or broken */
    }
}

/*
 * The frame ends at stream offset end: a value when reason is NULL and it fits in max,
 * else a reject (an oversized frame is rejected for its size, whatever else is wrong).
 */
static void emit(struct kt_framer *f, const char *buf, uint64_t end, const char *reason,
                 struct kt_frame *out)
{
    uint64_t extent = end - f->voff;
    out->off = f->voff;
    out->line = f->vline;
    if (f->stamplen > 0) {
        out->stamp = f->stamp;
        out->stamplen = f->stamplen;
    }
    if (extent > f->max) {
        reason = KT_FRAME_OVERSIZE;
    }
    out->reason = reason;
    if (reason == NULL) {
        out->kind = KT_FRAME_VALUE;
        out->ptr = buf + f->vstart;
        out->len = (size_t)extent;
    } else {
        out->kind = KT_FRAME_REJECT;
        out->ptr = f->dropping ? f->head : buf + f->vstart;
        out->len = extent < HEAD ? (size_t)extent : HEAD;
    }
    between(f);
}

/* The frame passed lim: keep its first KB (all a reject shows) and let the caller drop the
 * rest as it is scanned, so that an oversized value costs no more memory than lim. */
static void check_drop(struct kt_framer *f, const char *buf)
{
    if (in_frame(f) && !f->dropping && f->pos - f->vstart > f->lim) {
        memcpy(f->head, buf + f->vstart, HEAD);
        f->dropping = 1;
    }
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void newline(struct kt_framer *f)
{
    f->line++;
    f->linestart = here(f);
}

/* Scan a string body quickly: stop at '"', '\\' or '\n'. Most of the input is string bodies,
 * so this loop is the framer's hot path: 16 bytes at a time with SSE2 where available. */
static size_t scan_string(const char *buf, size_t pos, size_t len)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i slash = _mm_set1_epi8('\\');
    const __m128i nl = _mm_set1_epi8('\n');
    while (pos + 16 <= len) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(buf + pos));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                                   _mm_cmpeq_epi8(v, nl));
        int mask = _mm_movemask_epi8(hit);
        if (mask != 0) {
            return pos + (size_t)__builtin_ctz((unsigned)mask);
        }
        pos += 16;
    }
#endif
    while (pos < len) {
        char c = buf[pos];
        if (c == '"' || c == '\\' || c == '\n') {
            break;
        }
        pos++;
    }
    return pos;
}

/* The end of the line from pos, or len. */
static size_t scan_line(const char *buf, size_t pos, size_t len)
{
    const char *nl = memchr(buf + pos, '\n', len - pos);
    return nl != NULL ? (size_t)(nl - buf) : len;
}

/*
 * At the start of a line in buf[pos, len): a CloudWatch Logs export prefix,
 * "YYYY-MM-DDT<time> {"? 1 with *plen the bytes before the '{', 0 when not, -1 when more
 * bytes are needed to tell.
 */
static int stamp_prefix(const char *buf, size_t pos, size_t len, int eof, size_t *plen)
{
    static const char shape[] = "dddd-dd-ddT";
    size_t i = 0;
    for (; i < sizeof(shape) - 1; i++) {
        if (pos + i >= len) {
            return eof ? 0 : -1;
        }
        char c = buf[pos + i];
        if (shape[i] == 'd' ? !is_digit(c) : c != shape[i]) {
            return 0;
        }
    }
    for (; i < 39; i++) {
        if (pos + i >= len) {
            return eof ? 0 : -1;
        }
        char c = buf[pos + i];
        if (c == ' ') {
            if (pos + i + 1 >= len) {
                return eof ? 0 : -1;
            }
            if (buf[pos + i + 1] != '{') {
                return 0;
            }
            *plen = i;
            return 1;
        }
        if (!(is_digit(c) || c == ':' || c == '.' || c == '-' || c == '+' || c == 'Z' ||
              c == 'z')) {
            return 0;
        }
    }
    return 0;
}

/* Is buf[pos], at column 0, a timestamp prefix? As stamp_prefix(). */
static int at_stamp(const struct kt_framer *f, const char *buf, size_t len, int eof, size_t *plen)
{
    if (here(f) != f->linestart || !is_digit(buf[f->pos])) {
        return 0;
    }
    return stamp_prefix(buf, f->pos, len, eof, plen);
}

/* Between values. Returns 1 when out holds a frame or MORE, 0 to scan on. */
static int step_between(struct kt_framer *f, const char *buf, size_t len, int eof,
                        struct kt_frame *out)
{
    char c = buf[f->pos];
    size_t plen = 0;
    if (c == '\n') {
        f->pos++;
        newline(f);
    } else if (is_blank(c) || (c == ',' && f->mode != KT_FRAME_TOP)) {
        f->pos++;
    } else if (c == '[' && f->mode == KT_FRAME_TOP) {
        f->mode = KT_FRAME_ARRAY;
        f->pos++;
    } else if (c == ']' && f->mode == KT_FRAME_ARRAY) {
        f->mode = KT_FRAME_TOP;
        f->pos++;
    } else if (c == ']' && f->mode == KT_FRAME_ITEMS) {
        begin(f, buf, S_VALUE, 0); /* the rest of the EventList, skipped */
        f->rest = 1;
        f->depth = 1;
        f->pos++;
    } else if (c == '{') {
        begin(f, buf, S_VALUE, 0);
        f->depth = 1;
        f->pos++;
    } else {
        int m = f->mode == KT_FRAME_TOP ? at_stamp(f, buf, len, eof, &plen) : 0;
        if (m < 0) {
            out->kind = KT_FRAME_MORE;
            return 1;
        }
        if (m > 0) {
            begin(f, buf, S_VALUE, plen + 1);
            f->depth = 1;
            f->pos++; /* the '{' */
        } else {
            begin(f, buf, S_JUNK, 0);
        }
    }
    return 0;
}

/* Inside a value, outside strings. Returns 1 when out holds the value. */
static int step_value(struct kt_framer *f, const char *buf, struct kt_frame *out)
{
    char c = buf[f->pos++];
    if (f->items == 1 && !is_blank(c) && c != '\n') {
        f->items = c == ':' ? 2 : 0;
        if (c == ':') {
            return 0;
        }
    } else if (f->items == 2 && !is_blank(c) && c != '\n') {
        f->items = 0;
        if (c == '[') {
            /* an EventList: its items are the values */
            f->mode = KT_FRAME_ITEMS;
            between(f);
            return 0;
        }
    }
    if (c == '"') {
        f->state = S_STRING;
        f->sstart = f->pos;
    } else if (c == '{' || c == '[') {
        f->depth++;
    } else if (c == '}' || c == ']') {
        if (--f->depth == 0) {
            if (f->rest) {
                between(f);
                return 0;
            }
            emit(f, buf, here(f), NULL, out);
            return 1;
        }
    } else if (c == '\n') {
        newline(f);
        f->state = S_LINE;
    }
    return 0;
}

static void step_string(struct kt_framer *f, const char *buf, size_t len)
{
    f->pos = scan_string(buf, f->pos, len);
    if (f->pos >= len) {
        return;
    }
    char c = buf[f->pos++];
    if (c == '"') {
        f->state = S_VALUE;
        /* a key "items" directly inside a top-level object (and not yet dropped)? */
        if (f->mode == KT_FRAME_TOP && f->depth == 1 && !f->rest && f->pos - f->sstart == 6 &&
            here(f) - f->voff <= f->lim && memcmp(buf + f->sstart, "items", 5) == 0) {
            f->items = 1;
        }
    } else if (c == '\\') {
        f->state = S_ESCAPE;
    } else { /* a raw newline: the string, and the value, are broken */
        f->broken = R_NEWLINE;
        newline(f);
        f->state = S_LINE;
    }
}

/* In the blanks that begin a line inside a value: a '{' at or left of the value's column,
 * or a timestamp prefix, ends the value as broken (frame.h); at column 0 it also ends the
 * array or EventList the value was in. Returns 1 when out holds the reject or MORE. */
static int step_line(struct kt_framer *f, const char *buf, size_t len, int eof,
                     struct kt_frame *out)
{
    char c = buf[f->pos];
    size_t plen = 0;
    if (is_blank(c)) {
        f->pos++;
        return 0;
    }
    if (c == '\n') {
        f->pos++;
        newline(f);
        return 0;
    }
    int starts = c == '{' && here(f) - f->linestart <= f->vcol;
    if (!starts) {
        int m = at_stamp(f, buf, len, eof, &plen);
        if (m < 0) {
            out->kind = KT_FRAME_MORE;
            return 1;
        }
        starts = m > 0;
    }
    if (starts) {
        /* the reject ends with the line before; buf[pos] is framed afresh */
        emit(f, buf, f->linestart - 1, f->broken != NULL ? f->broken : R_CUT, out);
        if (here(f) == f->linestart) {
            f->mode = KT_FRAME_TOP; /* a top-level value: the array or EventList is over too */
        }
        return 1;
    }
    f->state = f->broken != NULL ? S_SKIP : S_VALUE;
    return 0;
}

/* At the end of input, inside a frame: it is rejected. */
static void finish(struct kt_framer *f, const char *buf, size_t len, struct kt_frame *out)
{
    if (f->state == S_JUNK) {
        emit(f, buf, f->base + len, R_JUNK, out);
        return;
    }
    /* a value: up to the last line with something on it */
    uint64_t end = f->state == S_LINE ? f->linestart - 1 : f->base + len;
    emit(f, buf, end, f->broken != NULL ? f->broken : R_EOF, out);
}

void kt_framer_next(struct kt_framer *f, const char *buf, size_t len, int eof, struct kt_frame *out)
{
    memset(out, 0, sizeof(*out));
    while (f->pos < len) {
        check_drop(f, buf);
        switch (f->state) {
        case S_BETWEEN:
            if (step_between(f, buf, len, eof, out)) {
                return;
            }
            continue;
        case S_VALUE:
            if (step_value(f, buf, out)) {
                return;
            }
            continue;
        case S_STRING:
            step_string(f, buf, len);
            continue;
        case S_ESCAPE:
            if (buf[f->pos] != '\n') {
                f->pos++; /* a raw newline is left for S_STRING to reject */
            }
            f->state = S_STRING;
            continue;
        case S_LINE:
            if (step_line(f, buf, len, eof, out)) {
                return;
            }
            continue;
        case S_SKIP:
            f->pos = scan_line(buf, f->pos, len);
            if (f->pos < len) {
                f->pos++;
                newline(f);
                f->state = S_LINE;
            }
            continue;
        case S_JUNK:
            f->pos = scan_line(buf, f->pos, len);
            if (f->pos < len) {
                emit(f, buf, here(f), R_JUNK, out);
                f->pos++;
                newline(f);
                return;
            }
            continue;
        }
    }
    check_drop(f, buf);
    if (eof && in_frame(f)) {
        finish(f, buf, len, out);
        return;
    }
    out->kind = KT_FRAME_MORE;
}
